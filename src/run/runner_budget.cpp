// The run's budget: what a job would charge, and whether it still fits.
#include "run/runner.h"

namespace kr::run {

// Why a job costing `cost` would break the budget, given what this run has committed so far.
std::optional<std::string> Runner::over_budget(const std::string& name, double cost) const {
  if (!opts_.budget || round_usd(spent_ + cost) <= round_usd(*opts_.budget)) return std::nullopt;
  return "job \"" + name + "\" costs " + format_usd(cost) + "; with " + format_usd(spent_) +
         " already committed this run it would exceed the budget of " + format_usd(*opts_.budget);
}

double Runner::predicted_charge(const std::string& key, double cost) const {
  if (!opts_.store) return cost;
  try {
    auto row = opts_.store->get(key);
    if (!row) return cost;
    switch (row->state) {
      case JobState::Failed:
      case JobState::Cancelled: return cost;
      case JobState::Unknown: return opts_.resubmit_unknown ? cost : 0;
      default: return opts_.fresh && row->created_ms < opts_.store->now_ms() - 1000 * now() ? cost : 0;
    }
  } catch (const std::exception&) {
    return cost;  // budget as if it will be paid
  }
}

}  // namespace kr::run
