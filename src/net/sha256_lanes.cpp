#include "net/sha256_lanes.h"

#include <algorithm>
#include <cstring>
#include <vector>


#if defined(KR_SHA256_LANES)
// Defined in sha256_lanes_avx2.cpp, _avx512vl.cpp and _avx512.cpp, which CMake builds with their
// -m flags on x86-64 (and then defines KR_SHA256_LANES); elsewhere only OpenSSL is used.
void kr_sha256_blocks_x8_avx2(std::uint32_t* const* state, const unsigned char* const* data, std::size_t blocks);
void kr_sha256_blocks_x8_avx512vl(std::uint32_t* const* state, const unsigned char* const* data, std::size_t blocks);
void kr_sha256_blocks_x16_avx512(std::uint32_t* const* state, const unsigned char* const* data, std::size_t blocks);
#endif

namespace kr::net {

namespace {

using LaneFn = void (*)(std::uint32_t* const*, const unsigned char* const*, std::size_t);

// One SIMD kernel and the fewest streams worth giving it. What a step over all its lanes costs,
// in blocks of one stream through OpenSSL (build/bench/sha256_lanes prints it; on this
// project's AVX-512 Xeon): avx2 x8 3.3-3.9, avx512vl x8 2.3-2.5, avx512 x16 3.4-3.7. Below
// about that many streams, one at a time is cheaper; and one at a time finishes the first file
// sooner, so each set starts a little above it. The narrow 8 start at 3 streams: 0.8 of the
// CPU of one at a time, the files done a little later on average (2.4 blocks against 2), and
// in a burst the CPU is what every file waits for (bench/README.md, "Fourth round": in 12
// alternating transport runs the median was lower in 9 than with 4).
struct LaneSet {
  LaneFn fn = nullptr;  // null: none
  int lanes = 1;
  int min_streams = 0;
};

struct Kernel {
  Sha256Kernel kind;
  LaneSet wide;    // tried first
  LaneSet narrow;  // when fewer streams are ready than `wide` wants
  // The set for `ready` streams; null: one at a time with OpenSSL.
  const LaneSet* pick(std::size_t ready) const {
    if (wide.fn && ready >= static_cast<std::size_t>(wide.min_streams)) return &wide;
    if (narrow.fn && ready >= static_cast<std::size_t>(narrow.min_streams)) return &narrow;
    return nullptr;
  }
};

bool cpu_has(Sha256Kernel k) {
#if defined(KR_SHA256_LANES)
  if (k == Sha256Kernel::avx2) return __builtin_cpu_supports("avx2");
  if (k == Sha256Kernel::avx512vl) return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl");
  if (k == Sha256Kernel::avx512) return __builtin_cpu_supports("avx512f");
#endif
  return k == Sha256Kernel::openssl;
}

Kernel kernel_for(Sha256Kernel k) {
#if defined(KR_SHA256_LANES)
  const LaneSet x16{kr_sha256_blocks_x16_avx512, 16, 5};
  const LaneSet x8vl{kr_sha256_blocks_x8_avx512vl, 8, 3};
  const LaneSet x8{kr_sha256_blocks_x8_avx2, 8, 5};
  if (k == Sha256Kernel::best) {
    // 16 lanes when at least 9 streams fill them (one x8 step plus one stream alone costs as
    // much), the 8 narrow ones below that.
    if (cpu_has(Sha256Kernel::avx512vl)) return {k, {x16.fn, 16, 9}, x8vl};
    k = cpu_has(Sha256Kernel::avx512) ? Sha256Kernel::avx512 : Sha256Kernel::avx2;
  }
  if (cpu_has(k)) {
    if (k == Sha256Kernel::avx512) return {k, x16, {}};
    if (k == Sha256Kernel::avx512vl) return {k, x8vl, {}};
    if (k == Sha256Kernel::avx2) return {k, x8, {}};
  }
#endif
  (void)k;
  return {Sha256Kernel::openssl, {}, {}};
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
  if (kern.narrow.fn) return static_cast<std::size_t>(kern.narrow.min_streams);
  return kern.wide.fn ? static_cast<std::size_t>(kern.wide.min_streams) : SIZE_MAX;
}

const char* sha256_kernel_name(Sha256Kernel k) {
  if (k == Sha256Kernel::best) {
    k = kernel_for(k).kind;
    if (k == Sha256Kernel::best) return "avx512 x16 + avx512vl x8";
  }
  switch (k) {
    case Sha256Kernel::avx512: return "avx512 x16";
    case Sha256Kernel::avx512vl: return "avx512vl x8";
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
    const LaneSet* set = kern.pick(ready.size());
    if (!set) {
      Walk& w = *ready.back();
      sha256_blocks(w.s->h, w.p, w.blocks);
      w.end_piece();
      if (!w.advance()) ready.pop_back();
      continue;
    }
    const int used = std::min<int>(set->lanes, static_cast<int>(ready.size()));
    std::size_t n = ready[0]->blocks;
    for (int l = 0; l < used; ++l) n = std::min(n, ready[l]->blocks);
    for (int l = 0; l < set->lanes; ++l) {
      states[l] = l < used ? ready[l]->s->h : spare[l];
      data[l] = l < used ? ready[l]->p : ready[0]->p;  // a spare lane rehashes lane 0's bytes
    }
    set->fn(states, data, n);
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
