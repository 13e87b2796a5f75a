#include "net/sha256.h"

#include <openssl/evp.h>

#include <cstdio>
#include <stdexcept>
#include <vector>

namespace kr::net {

namespace {
// OpenSSL 3 looks the algorithm up on every EVP_DigestInit with EVP_sha256(); fetching it once
// matters when every planned shot is hashed.
const EVP_MD* sha256_md() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md ? md : EVP_sha256();
}
}  // namespace

struct Sha256::Ctx {
  EVP_MD_CTX* md = nullptr;
  Ctx() : md(EVP_MD_CTX_new()) {
    if (!md || EVP_DigestInit_ex2(md, sha256_md(), nullptr) != 1) throw std::runtime_error("sha256 init failed");
  }
  ~Ctx() { EVP_MD_CTX_free(md); }
};

Sha256::Sha256() : ctx_(std::make_unique<Ctx>()) {}
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::update(const void* data, std::size_t n) { EVP_DigestUpdate(ctx_->md, data, n); }

void Sha256::reset() { EVP_DigestInit_ex2(ctx_->md, sha256_md(), nullptr); }

std::string Sha256::hex() {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_->md, out, &len);
  static const char* digits = "0123456789abcdef";
  std::string s;
  s.reserve(len * 2);
  for (unsigned i = 0; i < len; ++i) {
    s += digits[out[i] >> 4];
    s += digits[out[i] & 15];
  }
  reset();
  return s;
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
