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
#include "klingrun/klingrun.h"

namespace kr::cli {

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
  if (!std::filesystem::exists(args.script)) {
    std::cerr << "klingrun: " << args.script << ": no such script\n";
    return lua::exit_script;
  }
  klingrun::Options opts;
  opts.out = args.out;
  opts.backend = plan ? "offline" : args.backend;
  opts.concurrency = args.concurrency;
  opts.budget = args.budget;
  opts.state_dir = args.state;
  opts.queue_url = args.queue_url;
  opts.rest_url = args.rest_url;
  opts.prices_file = args.prices;
  opts.fresh = args.fresh;
  opts.resubmit_unknown = args.resubmit_unknown;
  klingrun::Session session(opts);

  bool loaded = session.run_script(args.script, args.script_args);
  run::Runner& runner = session.runner();
  Progress progress(runner, args, plan);
  if (args.json) {
    // stdout carries JSON (the plan, or one event per line): the script's own prints go to stderr.
    luaL_dostring(session.lua(), "print = function(...) local t = {} for i = 1, select('#', ...) do t[i] = tostring((select(i, ...))) end io.stderr:write(table.concat(t, '\\t'), '\\n') end");
  }

  std::signal(SIGINT, on_sigint);
  std::signal(SIGTERM, on_sigint);
  int handled_interrupts = 0;
  while (loaded && !session.done()) {
    session.tick(100);
    progress.tick();
    if (g_interrupts > handled_interrupts) {
      handled_interrupts = g_interrupts;
      if (handled_interrupts == 1 && !args.cancel_on_interrupt) {
        session.interrupt(false);
        progress.interrupted(false);
        // Let submits already on the wire get their answer (so their request ids are
        // recorded, not left "unknown"); a second Ctrl-C cancels and leaves.
        for (int i = 0; i < 100 && g_interrupts == 1 && submitting(runner); ++i) session.tick(100);
        if (g_interrupts == 1) break;
      }
      session.interrupt(true);
      progress.interrupted(true);
      // Give the cancel requests a moment to reach fal, then leave.
      for (int i = 0; i < 50 && !runner.idle(); ++i) session.tick(100);
      break;
    }
  }
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  session.finish();
  progress.finish();

  if (plan) {
    if (args.json) std::cout << runner.plan().dump(2) << "\n";
    else if (!session.error()) print_plan_table(runner);
  }
  if (handled_interrupts > 0) return lua::exit_interrupted;
  if (session.error()) std::cerr << *session.error() << "\n";
  return session.exit_code();
}

}  // namespace kr::cli
