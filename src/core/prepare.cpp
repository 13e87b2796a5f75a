#include "core/prepare.h"

#include <stdexcept>

#include "core/normalize.h"
#include "core/validate.h"

namespace kr {

Prepared prepare(const Request& req, const CoreContext& ctx) { return prepare(req.endpoint, json(req.input), ctx); }

Prepared prepare(const std::string& endpoint, json&& input, const CoreContext& ctx) {
  Prepared p;
  const std::string& id = endpoint.empty() ? ctx.default_endpoint : endpoint;
  p.endpoint = ctx.catalog->find(id);
  if (!p.endpoint) {
    std::string known;
    for (auto& e : ctx.catalog->all()) known += (known.empty() ? "" : ", ") + e.short_id;
    p.report.error("endpoint", "\"" + id + "\" is not a known Kling endpoint (known: " + known + ")");
    return p;
  }
  if (ctx.elements && input.is_object()) resolve_elements(input, *ctx.elements, p.report);
  p.input = normalize(*p.endpoint, std::move(input), p.report);
  // A field normalization already refused (duration 5.5) is not reported a second time.
  Report checked = validate(*p.endpoint, p.input, *ctx.catalog);
  for (auto& e : checked.errors)
    if (!p.report.has_error_at(e.path)) p.report.errors.push_back(e);
  p.report.warnings.insert(p.report.warnings.end(), checked.warnings.begin(), checked.warnings.end());
  if (!p.report.ok()) return p;
  try {
    p.cost = ctx.prices->estimate(*p.endpoint, p.input);
  } catch (const std::exception& e) {
    p.report.error("endpoint", e.what());
  }
  return p;
}

}  // namespace kr
