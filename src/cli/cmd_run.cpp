// `klingrun SCRIPT.lua` and `klingrun plan SCRIPT.lua`: run the script's coroutines over a
// Runner until nothing is left, report, and map the outcome to an exit code.
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include <lua.hpp>

#include "cli/commands.h"
#include "cli/progress.h"
#include "lua/host.h"
#include "run/offline_backend.h"
#include "run/manifest.h"
#include "run/state_store.h"

namespace kr::cli {

std::unique_ptr<run::Backend> make_backend(const Args& args, const std::filesystem::path& out_dir, bool plan);  // backend_factory.cpp

namespace {

volatile std::sig_atomic_t g_interrupts = 0;

bool submitting(const run::Runner& r) {
  for (auto& j : r.jobs())
    if (j->phase == run::Phase::submitting) return true;
  return false;
}
extern "C" void on_sigint(int) { g_interrupts = g_interrupts + 1; }

void print_plan_table(const run::Runner& runner) {
  std::printf("%-28s %-34s %5s  %-5s %9s\n", "job", "endpoint", "secs", "audio", "cost");
  double total = 0;
  int seconds = 0;
  for (auto& j : runner.jobs()) {
    std::string ep = j->endpoint->id.substr(std::string("fal-ai/kling-video/").size());
    std::printf("%-28s %-34s %5d  %-5s %9s\n", j->name.c_str(), ep.c_str(), j->cost.seconds, j->cost.audio.c_str(),
                format_usd(j->cost.usd).c_str());
    total += j->cost.usd;
    seconds += j->cost.seconds;
  }
  std::printf("%-28s %-34s %5d  %-5s %9s\n", "total", (std::to_string(runner.jobs().size()) + " jobs").c_str(), seconds, "",
              format_usd(total).c_str());
}

}  // namespace

int cmd_run(const Args& args) {
  bool plan = args.command == "plan";
  std::filesystem::path script(args.script);
  if (!std::filesystem::exists(script)) {
    std::cerr << "klingrun: " << args.script << ": no such script\n";
    return lua::exit_script;
  }
  std::string name = script.stem().string();
  std::filesystem::path out_dir = std::filesystem::path(args.out) / name;

  run::RunnerOptions opts;
  opts.out_dir = out_dir;
  opts.script = name;
  opts.concurrency = args.concurrency;
  opts.budget = args.budget;
  opts.prices = &price_table(args);
  auto backend = make_backend(args, out_dir, plan);
  // The state store and manifest guard money: they exist for runs that reach fal.
  std::unique_ptr<run::StateStore> store;
  std::unique_ptr<run::ManifestWriter> manifest;
  if (backend->name() != "offline") {
    store = run::StateStore::open(state_dir(args));
    manifest = std::make_unique<run::ManifestWriter>(out_dir / "manifest.json", name);
    opts.store = store.get();
    opts.manifest = manifest.get();
    opts.fresh = args.fresh;
    opts.resubmit_unknown = args.resubmit_unknown;
  }
  run::Runner runner(opts, std::move(backend));

  Progress progress(runner, args, plan);
  lua::LuaHost host(runner);
  host.open_module();
  if (plan && args.json) {
    // stdout carries the JSON plan: the script's own prints go to stderr.
    luaL_dostring(host.state(), "print = function(...) local t = {} for i = 1, select('#', ...) do t[i] = tostring((select(i, ...))) end io.stderr:write(table.concat(t, '\\t'), '\\n') end");
  }

  std::signal(SIGINT, on_sigint);
  std::signal(SIGTERM, on_sigint);
  int handled_interrupts = 0;
  if (host.start_script(args.script, args.script_args)) {
    while (!host.done()) {
      host.tick(100);
      progress.tick();
      if (g_interrupts > handled_interrupts) {
        handled_interrupts = g_interrupts;
        if (handled_interrupts == 1 && !args.cancel_on_interrupt) {
          runner.stop_starting();
          progress.interrupted(false);
          // Let submits already on the wire get their answer (so their request ids are
          // recorded, not left "unknown"); a second Ctrl-C leaves at once.
          for (int i = 0; i < 100 && g_interrupts == 1 && submitting(runner); ++i) host.tick(100);
          if (g_interrupts > 1) { runner.cancel_all(); progress.interrupted(true); for (int i = 0; i < 30 && !runner.idle(); ++i) host.tick(100); }
          break;
        }
        runner.cancel_all();
        progress.interrupted(true);
        // Give the cancel requests a moment to reach fal, then leave.
        for (int i = 0; i < 30 && !runner.idle(); ++i) host.tick(100);
        break;
      }
    }
  }
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);

  if (runner.backend().name() == "offline" && !runner.jobs().empty()) runner.write_plan();
  if (store) store->release();  // jobs still on fal: the next run attaches at once
  progress.finish();

  if (plan) {
    if (args.json) std::cout << runner.plan().dump(2) << "\n";
    else if (!host.error()) print_plan_table(runner);
  }
  if (handled_interrupts > 0) return lua::exit_interrupted;
  if (host.error()) {
    std::cerr << *host.error() << "\n";
    return host.error_code();
  }
  for (auto& j : runner.jobs())
    if (j->phase != run::Phase::done) return lua::exit_failed;
  return lua::exit_ok;
}

}  // namespace kr::cli
