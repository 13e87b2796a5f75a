#include "core/normalize.h"

#include <cmath>

namespace kr {
namespace {

// A whole number of seconds as fal's string; anything else is left for validate() to name.
void duration_to_string(json& v, const std::string& path, Report& report) {
  if (!v.is_number() || v.is_boolean()) return;
  double d = v.get<double>();
  if (std::fabs(d) > 1e6) {  // far outside any duration; also keeps the cast below defined
    report.error(path, v.dump() + " is not a duration in seconds");
    return;
  }
  if (std::floor(d) != d) {
    report.error(path, std::to_string(d).substr(0, std::to_string(d).find_last_not_of('0') + 1) +
                           " is not a whole number of seconds");
    return;
  }
  v = std::to_string(static_cast<long long>(d));
}

void drop_nulls(json& obj) {
  for (auto it = obj.begin(); it != obj.end();) {
    if (it->is_null()) it = obj.erase(it); else ++it;
  }
}

}  // namespace

json normalize(const Endpoint& endpoint, json input, Report& report) {
  if (!input.is_object()) return input;
  auto& fields = input.get_ref<json::object_t&>();
  std::erase_if(fields, [](const auto& kv) { return kv.second.is_null(); });

  if (endpoint.dropped) {
    for (auto& [field, why] : endpoint.dropped->items()) {
      if (auto it = fields.find(field); it != fields.end()) {
        report.warn(field, "dropped: " + why.get<std::string>());
        fields.erase(it);
      }
    }
  }

  auto duration = fields.find("duration");
  if (duration != fields.end()) duration_to_string(duration->second, "duration", report);

  auto shots_it = fields.find("multi_prompt");
  bool has_shots = shots_it != fields.end() && shots_it->second.is_array() && !shots_it->second.empty();
  if (has_shots && endpoint.has("multi_prompt")) {
    auto& shots = shots_it->second;
    long total = 0;
    bool summable = true;
    for (std::size_t i = 0; i < shots.size(); ++i) {
      auto& shot = shots[i];
      if (!shot.is_object()) { summable = false; continue; }
      drop_nulls(shot);
      auto d = shot.find("duration");
      if (d == shot.end()) d = shot.emplace("duration", "5").first;
      if (d->is_number()) duration_to_string(*d, "multi_prompt[" + std::to_string(i) + "].duration", report);
      if (d->is_string()) {
        try { total += std::stol(d->get_ref<const std::string&>()); } catch (...) { summable = false; }
      } else {
        summable = false;
      }
    }
    if (duration == fields.end() && summable) fields.emplace("duration", std::to_string(total));
  }

  // Defaults: the input's keys and the endpoint's fields are both sorted, so one merged walk
  // finds the missing ones and inserts each at its place.
  auto at = fields.begin();
  for (auto& f : endpoint.fields) {
    if (!f.default_value || !(f.fill || (f.fill_with_shots && has_shots))) continue;
    while (at != fields.end() && at->first < f.name) ++at;
    if (at != fields.end() && at->first == f.name) continue;
    at = fields.emplace_hint(at, f.name, *f.default_value);
  }
  return input;
}

}  // namespace kr
