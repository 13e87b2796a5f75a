#include "core/catalog.h"

#include <algorithm>
#include <stdexcept>

namespace kr {
namespace data { extern const std::string_view endpoints_json; }

const json* Endpoint::field(std::string_view name) const {
  auto& f = spec["fields"];
  auto it = f.find(std::string(name));
  return it == f.end() ? nullptr : &*it;
}

const FieldSpec* Endpoint::field_spec(std::string_view name) const {
  auto it = std::lower_bound(fields.begin(), fields.end(), name, [](const FieldSpec& f, std::string_view n) { return f.name < n; });
  return (it != fields.end() && it->name == name) ? &*it : nullptr;
}

namespace {

FieldSpec compile_field(const std::string& name, const json& f) {
  static const std::pair<const char*, FieldSpec::Type> types[] = {
      {"string", FieldSpec::Type::string},         {"number", FieldSpec::Type::number},
      {"boolean", FieldSpec::Type::boolean},       {"duration", FieldSpec::Type::duration},
      {"url", FieldSpec::Type::url},               {"url_list", FieldSpec::Type::url_list},
      {"string_list", FieldSpec::Type::string_list}, {"multi_prompt", FieldSpec::Type::multi_prompt},
      {"elements", FieldSpec::Type::elements}};
  FieldSpec s;
  s.name = name;
  s.raw = &f;
  std::string type = f.value("type", "string");
  bool known = false;
  for (auto& [n, t] : types)
    if (type == n) { s.type = t; known = true; }
  if (!known) throw std::runtime_error("endpoints.json: field " + name + " has unknown type " + type);
  if (f.contains("enum")) for (auto& e : f["enum"]) s.enums.push_back(e.get<std::string>());
  s.min = f.value("min", -1e300);
  s.max = f.value("max", 1e300);
  s.max_length = f.value("max_length", std::size_t{0});
  s.max_items = f.value("max_items", std::size_t{0});
  if (f.contains("default")) s.default_value = &f["default"];
  s.fill = f.value("fill", false);
  s.fill_with_shots = f.value("fill_with", "") == "multi_prompt";
  s.media = f.value("media", "");
  if (auto it = f.find("value_hints"); it != f.end()) s.value_hints = &*it;
  if (auto it = f.find("warn_values"); it != f.end()) s.warn_values = &*it;
  return s;
}

// Cross-field rules of one entry (after its fields are compiled: pointers into ep.fields).
void compile_rules(Endpoint& ep) {
  const json& e = ep.spec;
  // find() matches ids with this prefix taken off.
  if (ep.id.rfind("fal-ai/kling-video/", 0) != 0) throw std::runtime_error("endpoints.json: id " + ep.id + " is not under fal-ai/kling-video/");
  ep.prompt_required = e.value("prompt_rule", "") == "required";
  ep.start_image = e.value("start_image", "");
  ep.end_needs_start = e.value("end_needs_start", false);
  if (auto it = e.find("elements"); it != e.end()) {
    ep.element_rules = &*it;
    if (auto v = it->find("voice"); v != it->end()) ep.voice_field = v->value("field", "");
  }
  if (auto it = e.find("dropped"); it != e.end()) ep.dropped = &*it;
  ep.duration = ep.field_spec("duration");
  if (ep.duration && ep.duration->enums.empty()) throw std::runtime_error("endpoints.json: " + ep.id + ": duration has no enum");
  for (auto& f : ep.fields)
    if (!f.media.empty()) ep.media_fields.push_back(&f);
}

}  // namespace

Catalog::Catalog(const json& doc) : doc_(doc) {
  for (auto& e : doc_.at("endpoints")) {
    Endpoint ep;
    ep.id = e.at("id");
    ep.short_id = e.at("short");
    ep.family = e.at("family");
    ep.tier = e.at("tier");
    ep.mode = e.at("mode");
    ep.spec = e;
    endpoints_.push_back(std::move(ep));
  }
  // Compile after the vector stops moving: FieldSpec points into each endpoint's own spec.
  for (auto& ep : endpoints_) {
    for (auto& [name, f] : ep.spec["fields"].items()) ep.fields.push_back(compile_field(name, f));
    std::sort(ep.fields.begin(), ep.fields.end(), [](auto& a, auto& b) { return a.name < b.name; });
    compile_rules(ep);
  }
  shot_prompt_max_ = limits().value("shot_prompt_max", 512);
  max_shots_ = limits().value("max_shots", std::size_t{6});
}

const Catalog& Catalog::builtin() {
  static const Catalog c(json::parse(data::endpoints_json));
  return c;
}

const Endpoint* Catalog::find(std::string_view id) const {
  constexpr std::string_view prefix = "fal-ai/kling-video/";
  if (id.substr(0, prefix.size()) == prefix) id.remove_prefix(prefix.size());
  for (auto& e : endpoints_) {
    if (e.short_id == id || std::string_view(e.id).substr(prefix.size()) == id) return &e;
  }
  return nullptr;
}

std::string Catalog::hint(std::string_view field) const {
  auto& h = doc_["hints"];
  auto it = h.find(std::string(field));
  return it == h.end() ? std::string() : it->get<std::string>();
}

}  // namespace kr
