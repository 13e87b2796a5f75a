// bench/plan_throughput: how many shots per second `plan` validates and prices, for a script
// that builds 100,000 shots, with peak RSS. The baseline is the same Lua loop building the same
// spec tables without submitting them, in the same process, so the ratio shows what klingrun
// adds over LuaJIT itself. Target: >= 200,000 shots/s on one core.
//   build/bench/plan_throughput [shots [rounds]]
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <lua.hpp>
#include <string>
#include <vector>

#include "cli/allocator.h"
#include "lua/host.h"
#include "run/offline_backend.h"

namespace {

const char* kScript = R"(
local n, submit = ...
local settings = { "a neon alley", "a desert road", "a harbor at dawn", "a forest in fog" }
local heroes = { "a courier", "a robot", "a fox", "an old sailor" }
for i = 1, n do
  local spec = {
    name = "shot_" .. i,
    endpoint = (i % 3 == 0) and "v3/standard/t2v" or "v3/pro/t2v",
    prompt = heroes[i % 4 + 1] .. " crosses " .. settings[i % 4 + 1] .. ", take " .. i,
    duration = 3 + i % 13,
    aspect_ratio = "16:9",
    generate_audio = (i % 2 == 0),
  }
  if i % 5 == 0 then
    spec.prompt = nil
    spec.multi_prompt = { { prompt = "wide: " .. heroes[i % 4 + 1], duration = 3 },
                          { prompt = "close-up, take " .. i, duration = 4 } }
    spec.duration = nil
  end
  if submit then kling.submit(spec) end
end
)";

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

long peak_rss_kb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

// Runs the loop once; returns {wall seconds, cpu seconds}.
std::pair<double, double> run(int shots, bool submit, std::size_t* jobs_out) {
  kr::run::RunnerOptions opts;
  opts.out_dir = "/tmp/klingrun-bench";
  opts.script = "bench";
  kr::run::Runner runner(opts, std::make_unique<kr::run::OfflineBackend>(opts.out_dir));
  kr::lua::LuaHost host(runner);
  host.open_module();
  lua_State* L = host.state();
  if (luaL_loadstring(L, kScript) != 0) { std::fprintf(stderr, "%s\n", lua_tostring(L, -1)); std::exit(1); }
  lua_pushinteger(L, shots);
  lua_pushboolean(L, submit);
  auto t0 = std::chrono::steady_clock::now();
  double c0 = cpu_seconds();
  if (lua_pcall(L, 2, 0, 0) != 0) { std::fprintf(stderr, "%s\n", lua_tostring(L, -1)); std::exit(1); }
  while (!runner.idle()) runner.tick(0);  // offline jobs complete on the next tick
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double cpu = cpu_seconds() - c0;
  if (jobs_out) *jobs_out = runner.jobs().size();
  return {wall, cpu};
}

}  // namespace

int main(int argc, char** argv) {
  kr::cli::tune_allocator();  // as klingrun itself does
  int shots = argc > 1 ? std::atoi(argv[1]) : 100000;
  int rounds = argc > 2 ? std::max(1, std::atoi(argv[2])) : 5;
  // Each round is a fresh runner and Lua state. On a shared machine a round can run at half
  // speed for reasons outside the process; the best round measures the code, the median
  // shows the spread.
  std::vector<double> base, plan, plan_cpu;
  for (int r = 0; r < rounds; ++r) {
    base.push_back(run(shots, false, nullptr).first);
    std::size_t jobs = 0;
    auto [wall, cpu] = run(shots, true, &jobs);
    if (jobs != static_cast<std::size_t>(shots)) {
      std::fprintf(stderr, "expected %d jobs, got %zu\n", shots, jobs);
      return 1;
    }
    plan.push_back(wall);
    plan_cpu.push_back(cpu);
  }
  auto best = [](std::vector<double> v) { return *std::min_element(v.begin(), v.end()); };
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  double rate = shots / best(plan);
  std::printf("plan_throughput: %d shots validated and priced, %d rounds (best / median)\n", shots, rounds);
  std::printf("  baseline (Lua builds the specs only): %.3f / %.3f s wall\n", best(base), median(base));
  std::printf("  klingrun plan:                        %.3f / %.3f s wall, %.3f / %.3f s cpu\n", best(plan), median(plan),
              best(plan_cpu), median(plan_cpu));
  std::printf("  throughput: %.0f / %.0f shots/s (target >= 200000 on one core: %s); %.1f x the baseline loop's time\n",
              rate, shots / median(plan), rate >= 200000 ? "met" : "NOT met", best(plan) / best(base));
  std::printf("  per shot: %.2f / %.2f us; peak RSS: %.1f MiB; allocator: %s\n", 1e6 * best(plan) / shots,
              1e6 * median(plan) / shots, peak_rss_kb() / 1024.0, kr::cli::allocator_name().c_str());
  return 0;
}
