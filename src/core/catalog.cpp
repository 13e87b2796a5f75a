#include "core/catalog.h"

#include <stdexcept>

namespace kr {
namespace data { extern const std::string_view endpoints_json; }

const json* Endpoint::field(std::string_view name) const {
  auto& f = spec["fields"];
  auto it = f.find(std::string(name));
  return it == f.end() ? nullptr : &*it;
}

std::string Endpoint::str(std::string_view key) const {
  auto it = spec.find(std::string(key));
  return (it != spec.end() && it->is_string()) ? it->get<std::string>() : std::string();
}

Catalog::Catalog(const json& doc) : doc_(doc) {
  for (auto& e : doc_.at("endpoints")) {
    endpoints_.push_back({e.at("id"), e.at("short"), e.at("family"), e.at("tier"), e.at("mode"), e});
  }
}

const Catalog& Catalog::builtin() {
  static const Catalog c(json::parse(data::endpoints_json));
  return c;
}

const Endpoint* Catalog::find(std::string_view raw) const {
  std::string id(raw);
  static const std::string prefix = "fal-ai/kling-video/";
  if (id.rfind(prefix, 0) == 0) id = id.substr(prefix.size());
  for (auto& e : endpoints_) {
    if (e.short_id == id || e.id == prefix + id) return &e;
  }
  return nullptr;
}

std::string Catalog::hint(std::string_view field) const {
  auto& h = doc_["hints"];
  auto it = h.find(std::string(field));
  return it == h.end() ? std::string() : it->get<std::string>();
}

}  // namespace kr
