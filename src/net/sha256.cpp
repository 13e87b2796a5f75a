#include "net/sha256.h"

#include <cstdio>
#include <cstring>
#include <vector>

#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

#include "net/sha256_lanes.h"

namespace kr::net {

// The block function itself is only reachable through the low-level SHA256_* calls (deprecated
// in OpenSSL 3 in favour of EVP, which hides the chaining value that lanes need to share); its
// context struct is public, and a context holding `h` with no buffered bytes is all it needs.
// Twice as fast as plain C++ here.
void sha256_blocks(std::uint32_t h[8], const unsigned char* p, std::size_t blocks) {
  SHA256_CTX c;
  SHA256_Init(&c);
  std::memcpy(c.h, h, sizeof c.h);
  SHA256_Update(&c, p, blocks * 64);
  std::memcpy(h, c.h, sizeof c.h);
}

Sha256::Sha256() {
  static constexpr std::uint32_t init[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                            0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  std::memcpy(h, init, sizeof h);
}

void Sha256::update(const void* data, std::size_t n) {
  const Sha256Piece one{this, static_cast<const unsigned char*>(data), n};
  sha256_update({&one, 1}, Sha256Kernel::openssl);
}

std::string Sha256::hex() {
  const std::uint64_t bits = bytes * 8;
  buf[buffered++] = 0x80;
  if (buffered > 56) {
    std::memset(buf + buffered, 0, 64 - buffered);
    sha256_blocks(h, buf, 1);
    buffered = 0;
  }
  std::memset(buf + buffered, 0, 56 - buffered);
  for (int i = 0; i < 8; ++i) buf[56 + i] = static_cast<unsigned char>(bits >> (56 - 8 * i));
  sha256_blocks(h, buf, 1);
  static const char* digits = "0123456789abcdef";
  std::string out(64, '0');
  for (int i = 0; i < 32; ++i) {
    const unsigned byte = (h[i / 4] >> (24 - 8 * (i % 4))) & 0xff;
    out[2 * i] = digits[byte >> 4];
    out[2 * i + 1] = digits[byte & 15];
  }
  reset();
  return out;
}

std::string sha256_hex(std::string_view data) {
  thread_local Sha256 h;  // hex() resets it for the next call
  h.update(data);
  return h.hex();
}

std::optional<std::string> sha256_file(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return std::nullopt;
  Sha256 h;
  std::vector<char> buf(1 << 20);
  std::size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), f)) > 0) h.update(buf.data(), n);
  const bool failed = std::ferror(f);
  std::fclose(f);
  if (failed) return std::nullopt;
  return h.hex();
}

}  // namespace kr::net
