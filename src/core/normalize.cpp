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
  drop_nulls(input);

  if (auto dropped = endpoint.spec.find("dropped"); dropped != endpoint.spec.end()) {
    for (auto& [field, why] : dropped->items()) {
      if (input.contains(field)) {
        report.warn(field, "dropped: " + why.get<std::string>());
        input.erase(field);
      }
    }
  }

  if (input.contains("duration")) duration_to_string(input["duration"], "duration", report);

  bool has_shots = input.contains("multi_prompt") && input["multi_prompt"].is_array() && !input["multi_prompt"].empty();
  if (has_shots && endpoint.has("multi_prompt")) {
    auto& shots = input["multi_prompt"];
    long total = 0;
    bool summable = true;
    for (std::size_t i = 0; i < shots.size(); ++i) {
      auto& shot = shots[i];
      if (!shot.is_object()) { summable = false; continue; }
      drop_nulls(shot);
      std::string path = "multi_prompt[" + std::to_string(i) + "].duration";
      if (!shot.contains("duration")) shot["duration"] = "5";
      duration_to_string(shot["duration"], path, report);
      if (shot["duration"].is_string()) {
        try { total += std::stol(shot["duration"].get<std::string>()); } catch (...) { summable = false; }
      } else {
        summable = false;
      }
    }
    if (!input.contains("duration") && summable) input["duration"] = std::to_string(total);
  }

  for (auto& f : endpoint.fields) {
    if (!f.default_value || !(f.fill || (f.fill_with_shots && has_shots)) || input.contains(f.name)) continue;
    input[f.name] = *f.default_value;
  }
  return input;
}

}  // namespace kr
