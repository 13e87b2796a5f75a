#pragma once
// SHA-256 helpers (OpenSSL EVP). Lower-case hex output, 64 characters.
#include <filesystem>
#include <string>
#include <string_view>

namespace kr::run {

// Hex SHA-256 of a byte string.
std::string sha256_hex(std::string_view data);

// Hex SHA-256 of a file's contents, read in 1 MiB chunks (constant memory).
// Throws std::runtime_error naming the path when the file cannot be opened or read.
std::string sha256_file(const std::filesystem::path& path);

}  // namespace kr::run
