// Prints how fast downloaded videos are hashed: OpenSSL one stream at a time (the baseline,
// what FileSink did before) against net::sha256_update with each kernel this CPU has, for a
// burst of N videos of 1 MiB arriving in 256 KiB pieces, as FileSink hands them over; then what
// one step over all of each kernel's lanes costs, in one-stream blocks.
//   build/bench/sha256_lanes [videos [MiB each]]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include <openssl/evp.h>

#include "net/sha256_lanes.h"

using namespace kr::net;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  const int videos = argc > 1 ? std::atoi(argv[1]) : 50;
  const std::size_t size = (argc > 2 ? std::atoi(argv[2]) : 1) * std::size_t(1 << 20);
  const std::size_t piece = 256 * 1024;
  std::vector<std::string> data(videos, std::string(size, '\0'));
  std::mt19937 rng(7);
  for (auto& d : data)
    for (auto& c : d) c = static_cast<char>(rng());
  const double mib = double(videos) * double(size) / (1 << 20);

  auto best_of = [](auto&& f) {
    double best = 1e9;
    for (int r = 0; r < 5; ++r) {
      const auto t0 = Clock::now();
      f();
      best = std::min(best, std::chrono::duration<double>(Clock::now() - t0).count());
    }
    return best;
  };

  std::string check;
  const double base = best_of([&] {
    for (auto& d : data) {
      EVP_MD_CTX* c = EVP_MD_CTX_new();
      EVP_DigestInit_ex(c, EVP_sha256(), nullptr);
      for (std::size_t at = 0; at < size; at += piece) EVP_DigestUpdate(c, d.data() + at, std::min(piece, size - at));
      unsigned char md[32];
      EVP_DigestFinal_ex(c, md, nullptr);
      EVP_MD_CTX_free(c);
      static const char* hexd = "0123456789abcdef";
      check.clear();
      for (unsigned char b : md) { check += hexd[b >> 4]; check += hexd[b & 15]; }
    }
  });
  std::printf("%d videos of %zu MiB in %zu KiB pieces, best of 5 rounds\n", videos, size >> 20, piece >> 10);
  std::printf("%-28s %8.1f ms %8.0f MB/s   1.00x\n", "openssl EVP, one at a time", base * 1e3, mib * 1.048576 / base);

  for (auto k : {Sha256Kernel::openssl, Sha256Kernel::avx2, Sha256Kernel::avx512vl, Sha256Kernel::avx512,
                 Sha256Kernel::best}) {
    if (!sha256_kernel_available(k)) {
      std::printf("%-28s (not on this CPU)\n", sha256_kernel_name(k));
      continue;
    }
    std::string last;
    const double t = best_of([&] {
      std::vector<Sha256> st(videos);
      std::vector<Sha256Piece> pieces;
      for (std::size_t at = 0; at < size; at += piece)  // the order FileSink sees: interleaved
        for (int i = 0; i < videos; ++i)
          pieces.push_back({&st[i], reinterpret_cast<const unsigned char*>(data[i].data()) + at, std::min(piece, size - at)});
      sha256_update(pieces, k);
      last = st[videos - 1].hex();
    });
    std::printf("%-28s %8.1f ms %8.0f MB/s %6.2fx%s\n", sha256_kernel_name(k), t * 1e3, mib * 1.048576 / t, base / t,
                last == check ? "" : "   WRONG DIGEST");
  }

  // What one step over all of a kernel's lanes costs, in blocks of one stream through OpenSSL:
  // from about that many streams the lanes pay (LaneSet in src/net/sha256_lanes.cpp).
  auto hash_streams = [&](int n, Sha256Kernel k) {
    return best_of([&] {
      std::vector<Sha256> st(n);
      std::vector<Sha256Piece> pieces;
      for (int i = 0; i < n; ++i)
        pieces.push_back({&st[i], reinterpret_cast<const unsigned char*>(data[i % videos].data()), size});
      sha256_update(pieces, k);
    });
  };
  const double one = hash_streams(1, Sha256Kernel::openssl);
  std::printf("\nstep cost, all lanes full, in one-stream OpenSSL blocks:");
  for (auto [k, lanes] : {std::pair{Sha256Kernel::avx2, 8}, {Sha256Kernel::avx512vl, 8}, {Sha256Kernel::avx512, 16}})
    if (sha256_kernel_available(k)) std::printf("  %s %.2f", sha256_kernel_name(k), hash_streams(lanes, k) / one);
  std::printf("\n");
}
