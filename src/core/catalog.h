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

// A field's rules, read once from endpoints.json so validation does no JSON lookups per request.
struct FieldSpec {
  enum class Type { string, number, boolean, duration, url, url_list, string_list, multi_prompt, elements };
  std::string name;
  Type type = Type::string;
  std::vector<std::string> enums;      // allowed values (strings and durations)
  double min = -1e300, max = 1e300;    // numbers
  std::size_t max_length = 0;          // strings; 0 = no limit
  std::size_t max_items = 0;           // lists; 0 = no limit
  const json* default_value = nullptr; // nullptr = no default
  bool fill = false;                   // write the default in when absent
  bool fill_with_shots = false;        // ... only when multi_prompt is given
  std::string media;                   // "image"/"video" for file fields, else ""
  const json* value_hints = nullptr;   // {"wrong value": "hint"} for enum mistakes
  const json* warn_values = nullptr;   // {"value": "warning"} for accepted but risky values
  const json* raw = nullptr;           // the entry as written
};

struct Endpoint {
  std::string id;        // fal-ai/kling-video/v3/pro/text-to-video
  std::string short_id;  // v3/pro/t2v
  std::string family;    // v3, o3, v2.6, v2.5-turbo
  std::string tier;      // pro, standard
  std::string mode;      // t2v, i2v, r2v
  json spec;             // the catalog entry as written in endpoints.json

  const json* field(std::string_view name) const;
  const FieldSpec* field_spec(std::string_view name) const;
  std::vector<FieldSpec> fields;       // compiled from spec["fields"]; sorted by name

  // The entry's cross-field rules, read once (validation runs for every shot of a plan).
  bool prompt_required = false;        // prompt_rule "required"; else exactly one of prompt, multi_prompt
  std::string start_image;             // the field that must carry the first frame, or ""
  bool end_needs_start = false;        // an end frame needs a start frame (O3 R2V)
  const json* element_rules = nullptr; // spec["elements"], nullptr when the endpoint takes none
  std::string voice_field;             // the field of an element that binds a voice, or ""
  const json* dropped = nullptr;       // {"field": "why"}: accepted from scripts, never sent
  const FieldSpec* duration = nullptr; // the duration field (its enum)
  std::vector<const FieldSpec*> media_fields;  // fields that carry files (image/video)
  bool has(std::string_view name) const { return field_spec(name) != nullptr; }
};

class Catalog {
 public:
  explicit Catalog(const json& doc);
  Catalog(const Catalog&) = delete;  // FieldSpecs point into the catalog's own JSON
  Catalog& operator=(const Catalog&) = delete;
  static const Catalog& builtin();

  // Accepts the full fal id, the id without "fal-ai/kling-video/", or the short form
  // ("v3/pro/t2v"; also "text-to-video" spelled out).
  const Endpoint* find(std::string_view id) const;
  const std::vector<Endpoint>& all() const { return endpoints_; }
  const json& media() const { return doc_["media"]; }
  const json& limits() const { return doc_["limits"]; }
  std::string hint(std::string_view field) const;
  int shot_prompt_max() const { return shot_prompt_max_; }
  std::size_t max_shots() const { return max_shots_; }

 private:
  json doc_;
  std::vector<Endpoint> endpoints_;
  int shot_prompt_max_ = 512;
  std::size_t max_shots_ = 6;
};

}  // namespace kr
