// One call from a raw request to what the runner needs: the endpoint resolved, elements
// rewritten, the input normalized and validated, and its price — the same object throughout.
#pragma once
#include <optional>

#include "core/catalog.h"
#include "core/elements.h"
#include "core/prices.h"
#include "core/report.h"
#include "core/request.h"

namespace kr {

struct Prepared {
  const Endpoint* endpoint = nullptr;
  json input;                   // normalized: exactly what would be sent
  Report report;
  std::optional<Estimate> cost; // set when the request is valid and priced
  bool ok() const { return endpoint && report.ok() && cost.has_value(); }
};

struct CoreContext {
  const Catalog* catalog = &Catalog::builtin();
  const PriceTable* prices = &PriceTable::builtin();
  const ElementRegistry* elements = nullptr;
  std::string default_endpoint = "v3/pro/t2v";
};

Prepared prepare(const Request& request, const CoreContext& ctx = {});
// The same, consuming the request's input (no copy: the runner's hot path).
Prepared prepare(const std::string& endpoint, json&& input, const CoreContext& ctx = {});

}  // namespace kr
