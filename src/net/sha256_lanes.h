#pragma once
// SHA-256 of many files at once, side by side in SIMD lanes (16 with AVX-512, 8 in 256-bit
// registers with AVX-512VL or AVX2).
//
// Why: a wave of finished jobs brings dozens of videos in the same few hundred ms, and each
// must be hashed for the state store (issue 4). One stream at a time, OpenSSL does 200-250
// MB/s on this project's CPUs (no SHA extensions): 4-5 ms per MiB, the largest part of the
// client's CPU in a burst (bench/README.md). The rounds of SHA-256 cannot be parallelized
// within one stream, but independent streams can share vector instructions: 16 files cost
// about what 4 cost one at a time, 8 about what 2.5 cost. No Debian library offers this
// incrementally (OpenSSL's multi-block code is internal to its TLS ciphers; intel-ipsec-mb
// hashes whole messages only).
// The result is plain SHA-256, checked against OpenSSL in tests/unit/net/test_sha256_lanes.cpp.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "net/sha256.h"

namespace kr::net {

// A stretch of bytes for a stream. Several pieces may name the same stream: they are hashed in
// the order given.
struct Sha256Piece {
  Sha256* stream;
  const unsigned char* data;
  std::size_t size;
};

// `best`: what this CPU does best; with AVX-512VL that is 16 lanes for 9 streams or more and
// 8 narrower ones for 3-8 (bench/sha256_lanes prints what each costs).
enum class Sha256Kernel { best, openssl, avx2, avx512vl, avx512 };
bool sha256_kernel_available(Sha256Kernel k);
const char* sha256_kernel_name(Sha256Kernel k);  // "avx512 x16" …; for `best`, the ones chosen here
// How many streams sha256_update needs to hash side by side (SIZE_MAX: never); with fewer it
// hashes them one after another.
std::size_t sha256_lanes_from(Sha256Kernel k = Sha256Kernel::best);

// Hashes every piece into its stream, as many streams at a time as the kernel has lanes.
// `k` is for tests and benchmarks; an unavailable kernel falls back to openssl (one stream at a time).
void sha256_update(std::span<const Sha256Piece> pieces, Sha256Kernel k = Sha256Kernel::best);

}  // namespace kr::net
