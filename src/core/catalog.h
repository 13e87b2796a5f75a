// The endpoint catalog: every Kling endpoint's fields, types, enums, ranges and defaults, held as
// data (data/endpoints.json, compiled in). Cross-field rules live in validate.cpp.
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kr {

using json = nlohmann::json;

struct Endpoint {
  std::string id;        // fal-ai/kling-video/v3/pro/text-to-video
  std::string short_id;  // v3/pro/t2v
  std::string family;    // v3, o3, v2.6, v2.5-turbo
  std::string tier;      // pro, standard
  std::string mode;      // t2v, i2v, r2v
  json spec;             // the catalog entry as written in endpoints.json

  const json* field(std::string_view name) const;
  bool has(std::string_view name) const { return field(name) != nullptr; }
  // Value of a top-level key of the entry (e.g. "start_image"), or "" when absent.
  std::string str(std::string_view key) const;
};

class Catalog {
 public:
  explicit Catalog(const json& doc);
  static const Catalog& builtin();

  // Accepts the full fal id, the id without "fal-ai/kling-video/", or the short form
  // ("v3/pro/t2v"; also "text-to-video" spelled out).
  const Endpoint* find(std::string_view id) const;
  const std::vector<Endpoint>& all() const { return endpoints_; }
  const json& media() const { return doc_["media"]; }
  const json& limits() const { return doc_["limits"]; }
  std::string hint(std::string_view field) const;

 private:
  json doc_;
  std::vector<Endpoint> endpoints_;
};

}  // namespace kr
