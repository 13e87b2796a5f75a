// plan.json: the shot list as it would be sent, with costs.
#include "run/runner.h"

#include <fstream>

namespace kr::run {

json Runner::plan() const {
  json jobs = json::array();
  double total = 0;
  for (auto& j : jobs_) {
    jobs.push_back({{"name", j->name},
                    {"endpoint", j->endpoint->id},
                    {"input", j->input},
                    {"cost_usd", j->cost.usd},
                    {"seconds", j->cost.seconds},
                    {"audio", j->cost.audio},
                    {"state", phase_name(j->phase)}});
    if (j->take) jobs.back()["take"] = j->take;
    if (!j->origin.empty()) jobs.back()["origin"] = j->origin;
    total += j->cost.usd;
  }
  return {{"script", opts_.script}, {"jobs", jobs}, {"total_usd", round_usd(total)}};
}

void Runner::write_plan() const {
  std::filesystem::create_directories(opts_.out_dir);
  auto path = opts_.out_dir / "plan.json";
  auto tmp = path;
  tmp += ".tmp";
  {
    std::ofstream f(tmp);
    f << plan().dump(2) << "\n";
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace kr::run
