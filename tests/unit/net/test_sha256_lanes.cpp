// sha256_lanes must be plain SHA-256 whatever the kernel, the number of streams, and how
// their bytes are cut into pieces: every case is checked against OpenSSL's EVP API
// (tests/support/sha256.h), independent of klingrun's own code.
#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <vector>

#include "net/sha256_lanes.h"
#include "sha256.h"

using namespace kr::net;

namespace {

std::vector<Sha256Kernel> kernels_here() {
  // `best` mixes kernels by the number of streams (16 lanes, then 8 as streams run out).
  std::vector<Sha256Kernel> ks{Sha256Kernel::openssl, Sha256Kernel::best};
  for (auto k : {Sha256Kernel::avx2, Sha256Kernel::avx512vl, Sha256Kernel::avx512})
    if (sha256_kernel_available(k)) ks.push_back(k);
    else WARN("this CPU cannot run the " << sha256_kernel_name(k) << " kernel: not tested here");
  return ks;
}

// The digest of `s`, hashed as 16 streams at once (so the SIMD kernels run: below 3 streams
// sha256_update hashes one at a time); every stream must agree.
std::string digest(const std::string& s, Sha256Kernel k) {
  std::vector<Sha256> st(16);
  std::vector<Sha256Piece> pieces;
  for (auto& one : st) pieces.push_back({&one, reinterpret_cast<const unsigned char*>(s.data()), s.size()});
  sha256_update(pieces, k);
  const std::string first = st[0].hex();
  for (std::size_t i = 1; i < st.size(); ++i) CHECK(st[i].hex() == first);
  return first;
}

}  // namespace

TEST_CASE("sha256 lanes: the standard test vectors") {
  for (auto k : kernels_here()) {
    INFO("kernel " << sha256_kernel_name(k));
    CHECK(digest("", k) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(digest("abc", k) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(digest("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", k) ==
          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    CHECK(digest(std::string(1000000, 'a'), k) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  }
}

TEST_CASE("sha256 lanes: many streams cut into pieces in any order match OpenSSL") {
  for (auto k : kernels_here()) {
    for (int streams : {1, 2, 3, 7, 8, 9, 16, 17, 40}) {
      INFO("kernel " << sha256_kernel_name(k) << ", " << streams << " streams");
      std::mt19937 rng(1000u * static_cast<unsigned>(streams) + static_cast<unsigned>(k));
      std::vector<std::string> data(streams);
      for (auto& d : data) {
        // Lengths around block and padding edges, and some of many blocks.
        const std::size_t len = rng() % 4 == 0 ? 64 * (rng() % 3) + 55 + rng() % 3 : rng() % 300000;
        d.resize(len);
        for (auto& c : d) c = static_cast<char>(rng());
      }
      // Cut every stream into pieces (some empty, some within a block, some of many blocks),
      // queue them in a random interleaving that keeps each stream's own order, and hash the
      // queue in three calls: a stream's state carries over from one call to the next.
      std::vector<std::vector<Sha256Piece>> cut(streams);
      std::vector<Sha256> st(streams);
      for (int i = 0; i < streams; ++i) {
        const auto* p = reinterpret_cast<const unsigned char*>(data[i].data());
        for (std::size_t at = 0; at < data[i].size() || cut[i].empty();) {
          const std::size_t want = rng() % 5 == 0 ? 0 : rng() % 2 ? rng() % 70000 : rng() % 130;
          const std::size_t n = std::min(data[i].size() - at, want);
          cut[i].push_back({&st[i], p + at, n});
          at += n;
        }
      }
      std::vector<Sha256Piece> queue;
      std::vector<std::size_t> next(streams, 0);
      for (;;) {
        std::vector<int> open;
        for (int i = 0; i < streams; ++i)
          if (next[i] < cut[i].size()) open.push_back(i);
        if (open.empty()) break;
        const int i = open[rng() % open.size()];
        queue.push_back(cut[i][next[i]++]);
      }
      const std::size_t a = rng() % (queue.size() + 1), b = a + rng() % (queue.size() - a + 1);
      const std::span<const Sha256Piece> all(queue);
      sha256_update(all.subspan(0, a), k);
      sha256_update(all.subspan(a, b - a), k);
      sha256_update(all.subspan(b), k);
      for (int i = 0; i < streams; ++i) CHECK(st[i].hex() == krt::sha256_hex(data[i]));
    }
  }
}
