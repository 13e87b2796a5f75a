#pragma once
// Test helper: SHA-256 straight from OpenSSL's EVP API, independent of klingrun's own wrapper,
// for checking the digests klingrun records and the bytes the fake serves. Header-only.

#include <openssl/evp.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace krt {

inline std::string to_hex(const unsigned char* md, unsigned n) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < n; ++i) {
    out.push_back(hex[md[i] >> 4]);
    out.push_back(hex[md[i] & 15]);
  }
  return out;
}

// The 32 raw digest bytes.
inline std::string sha256_raw(const std::string& s) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(s.data(), s.size(), md, &n, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<char*>(md), n);
}

inline std::string sha256_hex(const std::string& s) {
  std::string raw = sha256_raw(s);
  return to_hex(reinterpret_cast<const unsigned char*>(raw.data()), static_cast<unsigned>(raw.size()));
}

// Hex SHA-256 of a file's bytes ("" if it cannot be read).
inline std::string sha256_file_hex(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) return "";
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  std::vector<char> buf(1 << 16);
  while (f) {
    f.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (f.gcount() > 0) EVP_DigestUpdate(ctx, buf.data(), static_cast<std::size_t>(f.gcount()));
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(ctx, md, &n);
  EVP_MD_CTX_free(ctx);
  return to_hex(md, n);
}

}  // namespace krt
