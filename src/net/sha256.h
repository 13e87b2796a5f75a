#pragma once
// Streaming SHA-256 (OpenSSL EVP): files are hashed in pieces, never loaded whole.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace kr::net {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  void update(const void* data, std::size_t n);
  void update(std::string_view s) { update(s.data(), s.size()); }
  std::string hex();  // finishes; the object then starts over
  void reset();

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

std::string sha256_hex(std::string_view data);
// Hex digest of a whole file, read in 1 MiB pieces; nullopt when it cannot be read.
std::optional<std::string> sha256_file(const std::string& path);

}  // namespace kr::net
