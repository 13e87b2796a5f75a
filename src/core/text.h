// Small text helpers shared by validation and formatting.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace kr {

// fal validates with Python string length, i.e. code points, not bytes.
inline std::size_t utf8_length(std::string_view s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// `"value"` for messages: short and quoted, so an empty or odd value is visible.
inline std::string quote(std::string_view s, std::size_t max = 40) {
  std::string out = "\"";
  if (utf8_length(s) <= max) {
    out += s;
  } else {
    std::size_t count = 0, i = 0;
    for (; i < s.size() && count < max; ++i) count += (static_cast<unsigned char>(s[i]) & 0xC0) != 0x80;
    while (i < s.size() && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) ++i;
    out += s.substr(0, i);
    out += "…";
  }
  return out + "\"";
}

// nlohmann's messages start with "[json.exception.parse_error.101] "; users need the rest.
inline std::string json_error_text(const char* what) {
  std::string s = what;
  if (s.rfind("[json.exception.", 0) == 0)
    if (auto close = s.find("] "); close != std::string::npos) s = s.substr(close + 2);
  return s;
}

}  // namespace kr
