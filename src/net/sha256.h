#pragma once
// Streaming SHA-256: files are hashed in pieces, never loaded whole. The state is plain data
// (the chaining value, the byte count, a partial block) so that sha256_lanes.h can hash many
// streams side by side in SIMD lanes; one stream alone runs OpenSSL's block function.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kr::net {

struct Sha256 {
  std::uint32_t h[8];
  std::uint64_t bytes = 0;  // total so far
  unsigned char buf[64];    // the bytes of an incomplete block
  std::size_t buffered = 0;

  Sha256();
  void update(const void* data, std::size_t n);
  void update(std::string_view s) { update(s.data(), s.size()); }
  std::string hex();  // finishes; the object then starts over
  void reset() { *this = Sha256(); }
};

// `blocks` whole 64-byte blocks into the chaining value `h` (OpenSSL's assembly).
void sha256_blocks(std::uint32_t h[8], const unsigned char* p, std::size_t blocks);

std::string sha256_hex(std::string_view data);
// Hex digest of a whole file, read in 1 MiB pieces; nullopt when it cannot be read.
std::optional<std::string> sha256_file(const std::string& path);

}  // namespace kr::net
