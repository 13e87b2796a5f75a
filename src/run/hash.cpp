#include "run/hash.h"

#include <stdexcept>

#include "net/sha256.h"

namespace kr::run {

std::string sha256_hex(std::string_view data) { return net::sha256_hex(data); }

std::string sha256_file(const std::filesystem::path& path) {
  auto h = net::sha256_file(path.string());
  if (!h) throw std::runtime_error("sha256: cannot read '" + path.string() + "'");
  return *h;
}

}  // namespace kr::run
