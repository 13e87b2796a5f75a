#include "net/fal_urls.h"

#include <cctype>
#include <stdexcept>
#include <vector>

#include "net/http.h"

namespace kr::net {

namespace {

std::string base(const std::string& url) {
  std::string b = url;
  while (!b.empty() && b.back() == '/') b.pop_back();
  return b;
}

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (true) {
    std::size_t p = s.find(sep, start);
    out.emplace_back(s.substr(start, p == std::string_view::npos ? std::string_view::npos : p - start));
    if (p == std::string_view::npos) break;
    start = p + 1;
  }
  return out;
}

// Ids go into URL paths: keep '/' between segments, escape anything odd inside them.
std::string path_encode(std::string_view id) {
  std::string out;
  bool first = true;
  for (const auto& seg : split(id, '/')) {
    if (!first) out += '/';
    first = false;
    out += url_encode(seg);
  }
  return out;
}

std::string request_base(const FalConfig& c, const EndpointId& e, std::string_view rid) {
  return base(c.queue_url) + "/" + path_encode(e.app_id()) + "/requests/" + url_encode(rid);
}

}  // namespace


std::string EndpointId::app_id() const {
  return (ns.empty() ? "" : ns + "/") + owner + "/" + alias;
}

std::string EndpointId::full() const {
  return app_id() + (path.empty() ? "" : "/" + path);
}

EndpointId parse_endpoint_id(std::string_view raw) {
  std::string_view id = raw;
  while (!id.empty() && id.front() == '/') id.remove_prefix(1);
  while (!id.empty() && id.back() == '/') id.remove_suffix(1);
  EndpointId e;
  if (id.find('/') == std::string_view::npos) {
    // Legacy "<digits>-<name>" means "<digits>/<name>".
    auto dash = id.find('-');
    bool digits = dash != std::string_view::npos && dash > 0;
    for (std::size_t i = 0; digits && i < dash; ++i) digits = std::isdigit(static_cast<unsigned char>(id[i]));
    if (!digits || dash + 1 >= id.size())
      throw std::invalid_argument("Invalid app id: " + std::string(raw) +
                                  ". Must be in the format <appOwner>/<appId>");
    e.owner = std::string(id.substr(0, dash));
    e.alias = std::string(id.substr(dash + 1));
    return e;
  }
  auto parts = split(id, '/');
  for (const auto& p : parts)
    if (p.empty()) throw std::invalid_argument("Invalid endpoint id (empty segment): " + std::string(raw));
  std::size_t i = 0;
  if (parts[0] == "workflows" || parts[0] == "comfy") {
    if (parts.size() < 3)
      throw std::invalid_argument("Invalid endpoint id: " + std::string(raw) + ". Must be " + parts[0] +
                                  "/<owner>/<app>");
    e.ns = parts[0];
    i = 1;
  }
  e.owner = parts[i];
  e.alias = parts[i + 1];
  for (std::size_t k = i + 2; k < parts.size(); ++k) e.path += (e.path.empty() ? "" : "/") + parts[k];
  return e;
}

namespace fal_url {

std::string submit(const FalConfig& c, const EndpointId& e) { return base(c.queue_url) + "/" + path_encode(e.full()); }

std::string status(const FalConfig& c, const EndpointId& e, std::string_view rid, bool logs) {
  return request_base(c, e, rid) + "/status?logs=" + (logs ? "1" : "0");
}

std::string status_stream(const FalConfig& c, const EndpointId& e, std::string_view rid, bool logs) {
  return request_base(c, e, rid) + "/status/stream?logs=" + (logs ? "1" : "0");
}

std::string result(const FalConfig& c, const EndpointId& e, std::string_view rid) { return request_base(c, e, rid); }

std::string cancel(const FalConfig& c, const EndpointId& e, std::string_view rid) {
  return request_base(c, e, rid) + "/cancel";
}

std::string upload_initiate(const FalConfig& c, bool multipart) {
  return base(c.rest_url) + (multipart ? "/storage/upload/initiate-multipart" : "/storage/upload/initiate") +
         "?storage_type=fal-cdn-v3";
}

std::string upload_part(std::string_view upload_url, int n) {
  auto p = split_url(upload_url);
  return p.origin + p.path + "/" + std::to_string(n) + p.query;
}

std::string upload_complete(std::string_view upload_url) {
  auto p = split_url(upload_url);
  return p.origin + p.path + "/complete" + p.query;
}

}  // namespace fal_url

}  // namespace kr::net
