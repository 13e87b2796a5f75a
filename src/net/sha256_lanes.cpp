#include "net/sha256_lanes.h"

#include <algorithm>
#include <cstring>
#include <vector>


#if defined(KR_SHA256_LANES)
// Defined in sha256_lanes_avx2.cpp and sha256_lanes_avx512.cpp, which CMake builds with their
// -m flags on x86-64 (and then defines KR_SHA256_LANES); elsewhere only OpenSSL is used.
void kr_sha256_blocks_x8_avx2(std::uint32_t* const* state, const unsigned char* const* data, std::size_t blocks);
void kr_sha256_blocks_x16_avx512(std::uint32_t* const* state, const unsigned char* const* data, std::size_t blocks);
#endif

namespace kr::net {

namespace {

using LaneFn = void (*)(std::uint32_t* const*, const unsigned char* const*, std::size_t);

struct Kernel {
  Sha256Kernel kind;
  LaneFn fn;        // null: OpenSSL, one stream at a time
  int lanes;
  // Below this many streams, one at a time: a lane set costs about what 4 files cost OpenSSL
  // (bench/sha256_lanes: 0.8-0.9x at 3 streams, 1.3x at 4, 1.5-1.6x at 5), and one at a time
  // also has the first file done sooner.
  int min_streams;
};

bool cpu_has(Sha256Kernel k) {
#if defined(KR_SHA256_LANES)
  if (k == Sha256Kernel::avx2) return __builtin_cpu_supports("avx2");
  if (k == Sha256Kernel::avx512) return __builtin_cpu_supports("avx512f");
#endif
  return k == Sha256Kernel::openssl;
}

Kernel kernel_for(Sha256Kernel k) {
  if (k == Sha256Kernel::best) {
    static const Sha256Kernel best = cpu_has(Sha256Kernel::avx512) ? Sha256Kernel::avx512
                                     : cpu_has(Sha256Kernel::avx2) ? Sha256Kernel::avx2
                                                                   : Sha256Kernel::openssl;
    k = best;
  }
  if (!cpu_has(k)) k = Sha256Kernel::openssl;
#if defined(KR_SHA256_LANES)
  if (k == Sha256Kernel::avx512) return {k, kr_sha256_blocks_x16_avx512, 16, 5};
  if (k == Sha256Kernel::avx2) return {k, kr_sha256_blocks_x8_avx2, 8, 5};
#endif
  return {Sha256Kernel::openssl, nullptr, 1, 2};
}

// One stream's pieces within a call, walked piece by piece: the head of a piece completes the
// stream's buffered block (OpenSSL), its whole blocks go to a lane, its tail is buffered.
struct Walk {
  Sha256* s;
  std::vector<const Sha256Piece*> pieces;
  std::size_t next = 0;
  const unsigned char* p = nullptr;  // the whole blocks not hashed yet
  std::size_t blocks = 0;
  const unsigned char* tail = nullptr;
  std::size_t tail_size = 0;

  // Moves to the next piece with whole blocks to hash; false when every piece is done.
  bool advance() {
    while (next < pieces.size()) {
      const Sha256Piece& pc = *pieces[next++];
      const unsigned char* d = pc.data;
      std::size_t n = pc.size;
      s->bytes += n;
      if (s->buffered > 0) {
        const std::size_t take = std::min(64 - s->buffered, n);
        std::memcpy(s->buf + s->buffered, d, take);
        s->buffered += take;
        d += take;
        n -= take;
        if (s->buffered < 64) continue;  // the piece fit in the buffer
        sha256_blocks(s->h, s->buf, 1);
        s->buffered = 0;
      }
      p = d;
      blocks = n / 64;
      tail = d + blocks * 64;
      tail_size = n % 64;
      if (blocks > 0) return true;
      end_piece();
    }
    return false;
  }
  // The piece's whole blocks are hashed: buffer its tail.
  void end_piece() {
    std::memcpy(s->buf, tail, tail_size);
    s->buffered = tail_size;
    tail_size = 0;
  }
};

}  // namespace

bool sha256_kernel_available(Sha256Kernel k) { return k == Sha256Kernel::best || cpu_has(k); }

std::size_t sha256_lanes_from(Sha256Kernel k) {
  const Kernel kern = kernel_for(k);
  return kern.fn ? static_cast<std::size_t>(kern.min_streams) : SIZE_MAX;
}

const char* sha256_kernel_name(Sha256Kernel k) {
  switch (kernel_for(k).kind) {
    case Sha256Kernel::avx512: return "avx512 x16";
    case Sha256Kernel::avx2: return "avx2 x8";
    default: return "openssl x1";
  }
}

void sha256_update(std::span<const Sha256Piece> pieces, Sha256Kernel k) {
  const Kernel kern = kernel_for(k);
  std::vector<Walk> walks;
  for (const Sha256Piece& pc : pieces) {
    auto it = std::find_if(walks.begin(), walks.end(), [&](const Walk& w) { return w.s == pc.stream; });
    if (it == walks.end()) it = walks.insert(walks.end(), Walk{pc.stream, {}});
    it->pieces.push_back(&pc);
  }
  std::vector<Walk*> ready;
  for (Walk& w : walks)
    if (w.advance()) ready.push_back(&w);

  std::uint32_t spare[16][8] = {};  // states for unused lanes (their result is dropped)
  std::uint32_t* states[16];
  const unsigned char* data[16];
  while (!ready.empty()) {
    if (!kern.fn || static_cast<int>(ready.size()) < kern.min_streams) {
      Walk& w = *ready.back();
      sha256_blocks(w.s->h, w.p, w.blocks);
      w.end_piece();
      if (!w.advance()) ready.pop_back();
      continue;
    }
    const int used = std::min<int>(kern.lanes, static_cast<int>(ready.size()));
    std::size_t n = ready[0]->blocks;
    for (int l = 0; l < used; ++l) n = std::min(n, ready[l]->blocks);
    for (int l = 0; l < kern.lanes; ++l) {
      states[l] = l < used ? ready[l]->s->h : spare[l];
      data[l] = l < used ? ready[l]->p : ready[0]->p;  // a spare lane rehashes lane 0's bytes
    }
    kern.fn(states, data, n);
    for (int l = 0; l < used; ++l) {
      Walk& w = *ready[l];
      w.p += n * 64;
      w.blocks -= n;
      if (w.blocks == 0) {
        w.end_piece();
        if (!w.advance()) ready[l] = nullptr;
      }
    }
    std::erase(ready, nullptr);
  }
}

}  // namespace kr::net
