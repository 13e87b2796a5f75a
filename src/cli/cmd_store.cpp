// `klingrun status`, `cancel`, `gc`: the state store from the outside.
#include <cstdio>
#include <iostream>

#include "cli/commands.h"
#include "core/prices.h"
#include "run/fal_backend.h"

namespace kr::cli {

std::string state_dir(const Args& args) { return args.state.empty() ? args.out + "/.klingrun" : args.state; }

namespace {

int status(run::StateStore& store, const Args& args) {
  auto rows = store.list();
  if (args.json) {
    json out = json::array();
    for (auto& r : rows) {
      json j = {{"name", r.name}, {"script", r.script}, {"state", run::to_string(r.state)}, {"request_id", r.request_id},
                {"endpoint", r.endpoint}, {"cost_usd", r.cost_usd}, {"key", r.key}, {"generation", r.generation}};
      for (auto& f : r.files) j["files"].push_back({{"role", f.role}, {"path", f.path.string()}, {"sha256", f.sha256}, {"size", f.size}});
      if (!r.error.empty()) j["error"] = r.error;
      out.push_back(j);
    }
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  if (rows.empty()) { std::cout << "no jobs in " << store.db_path().string() << "\n"; return 0; }
  std::printf("%-28s %-10s %-38s %9s  %s\n", "job", "state", "request id", "cost", "file");
  for (auto& r : rows) {
    std::string file = r.files.empty() ? "" : r.files.front().path.string();
    std::printf("%-28s %-10s %-38s %9s  %s\n", r.name.c_str(), std::string(run::to_string(r.state)).c_str(),
                r.request_id.empty() ? "-" : r.request_id.c_str(), format_usd(r.cost_usd).c_str(), file.c_str());
    if (!r.error.empty() && r.state != run::JobState::Done) std::printf("    %s\n", r.error.c_str());
  }
  return 0;
}

// Cancels the jobs on fal (run::cancel_stored records the ones fal accepted) and says what became of each.
int cancel(run::StateStore& store, const Args& args) {
  net::FalConfig config = net::FalConfig::from_env();
  if (!args.queue_url.empty()) config.queue_url = args.queue_url;
  if (!args.rest_url.empty()) config.rest_url = args.rest_url;
  if (std::string why = config.problem(); !why.empty()) throw std::invalid_argument(why);
  std::vector<run::JobRecord> targets;
  if (args.all) {
    for (auto& r : store.list())
      if (r.state == run::JobState::Submitted || r.state == run::JobState::Sending || r.state == run::JobState::Unknown) targets.push_back(r);
  } else {
    if (args.positional.empty()) throw std::invalid_argument("cancel needs a job NAME or --all");
    for (auto& n : args.positional) {
      auto r = store.find_by_name(n);
      if (!r) { std::cerr << "cancel: no job named \"" << n << "\" in " << store.db_path().string() << "\n"; return 1; }
      targets.push_back(*r);
    }
  }
  int failures = 0;
  using Outcome = run::CancelReport::Outcome;
  for (const auto& rep : run::cancel_stored(store, config, targets)) {
    const auto& r = rep.job;
    switch (rep.outcome) {
      case Outcome::no_request_id:
        std::cout << r.name << ": no request id recorded (state " << run::to_string(r.state) << "); nothing to cancel on fal\n";
        break;
      case Outcome::requested: std::cout << r.name << ": " << rep.detail << " (" << r.request_id << ")\n"; break;
      case Outcome::already_completed:
        std::cout << r.name << ": already completed on fal; run the script again to fetch it\n";
        break;
      case Outcome::failed:
        ++failures;
        std::cerr << r.name << ": cancel failed: " << rep.detail << "\n";
        break;
    }
  }
  return failures ? 3 : 0;
}

}  // namespace

int cmd_store(const Args& args) {
  auto store = run::StateStore::open(state_dir(args));
  if (args.command == "status") return status(*store, args);
  if (args.command == "cancel") return cancel(*store, args);
  int removed = store->gc();
  std::cout << "gc: removed " << removed << " record(s) whose outputs were deleted\n";
  return 0;
}

}  // namespace kr::cli
