#include "net/http.h"

namespace kr::net {

std::string url_encode(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

UrlParts split_url(std::string_view url) {
  UrlParts p;
  std::size_t scheme = url.find("://");
  std::size_t path_start = url.find_first_of("/?#", scheme == std::string_view::npos ? 0 : scheme + 3);
  if (path_start == std::string_view::npos) {
    p.origin = std::string(url);
    return p;
  }
  p.origin = std::string(url.substr(0, path_start));
  std::string_view rest = url.substr(path_start);
  if (auto hash = rest.find('#'); hash != std::string_view::npos) rest = rest.substr(0, hash);
  std::size_t q = rest.find('?');
  p.path = std::string(rest.substr(0, q));
  if (q != std::string_view::npos) p.query = std::string(rest.substr(q));
  return p;
}

}  // namespace kr::net
