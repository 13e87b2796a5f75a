#include "cli/progress.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>

namespace kr::cli {
namespace {

std::string clock_now() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%H:%M:%S", std::localtime(&t));
  return buf;
}

std::string short_endpoint(const run::Job& j) { return j.endpoint->short_id; }

std::string describe(const run::Job& j, double now) {
  char buf[64];
  switch (j.phase) {
    case run::Phase::queued:
      return j.queue_position >= 0 ? "queued (position " + std::to_string(j.queue_position) + ")" : "queued";
    case run::Phase::running:
      std::snprintf(buf, sizeof buf, "running %.0fs", now - (j.t_started > 0 ? j.t_started : j.t_submitted));
      return std::string(buf) + (j.last_log.empty() ? "" : " · " + j.last_log);
    case run::Phase::downloading:
      if (j.download_total > 0) {
        std::snprintf(buf, sizeof buf, "downloading %3.0f%%", 100.0 * double(j.download_done) / double(j.download_total));
        return buf;
      }
      return "downloading";
    case run::Phase::done:
      return j.reused ? "done (reused, $0)" : "done " + format_usd(j.cost.usd);
    case run::Phase::failed:
    case run::Phase::unknown:
    case run::Phase::cancelled:
      return std::string(run::phase_name(j.phase)) + (j.error ? ": " + j.error->message : "");
    default:
      return run::phase_name(j.phase);
  }
}

}  // namespace

Progress::Progress(run::Runner& runner, const Args& args, bool plan)
    : runner_(runner), plan_(plan), json_(args.json && !plan), quiet_((args.quiet && !args.json) || plan),
      tty_(isatty(STDERR_FILENO) && !args.json), color_(tty_ && !std::getenv("NO_COLOR")) {
  runner_.on_change([this](const run::Job& j) { changed(j); });
}

void Progress::line(const std::string& text) {
  if (quiet_) return;
  if (tty_) clear_block();
  std::cerr << (tty_ ? "" : clock_now() + " ") << text << "\n";
}

void Progress::event(const run::Job& j) {
  json e = {{"t", runner_.now()}, {"event", run::phase_name(j.phase)}, {"job", j.name}, {"endpoint", j.endpoint->id},
            {"cost_usd", j.reused ? 0.0 : j.cost.usd}};
  if (!j.request_id.empty()) e["request_id"] = j.request_id;
  if (j.queue_position >= 0 && j.phase == run::Phase::queued) e["queue_position"] = j.queue_position;
  if (!j.last_log.empty() && j.phase == run::Phase::running) e["log"] = j.last_log;
  if (!j.video_path.empty() && j.phase == run::Phase::done) e["path"] = j.video_path;
  if (j.reused) e["reused"] = true;
  if (j.error) e["error"] = {{"kind", run::error_kind_name(j.error->kind)}, {"message", j.error->message}, {"lines", j.error->lines}};
  std::cout << e.dump() << std::endl;
}

void Progress::changed(const run::Job& j) {
  auto it = last_.find(j.id);
  bool moved = it == last_.end() || it->second != j.phase;
  last_[j.id] = j.phase;
  if (json_) { if (moved || j.phase == run::Phase::running) event(j); return; }
  if (quiet_ || !moved) return;
  if (tty_ && !run::finished(j.phase)) return;  // the live block shows it
  std::string what = j.name + "  " + short_endpoint(j) + "  " + describe(j, runner_.now());
  if (j.phase == run::Phase::done && !j.video_path.empty() && !j.offline) what += "  → " + j.video_path;
  if (j.error) {
    for (auto& l : j.error->lines) what += "\n    " + l;
    if (!j.error->advice.empty()) what += "\n    " + j.error->advice;
  }
  if (color_) {
    const char* c = j.phase == run::Phase::done ? "\033[32m" : run::finished(j.phase) ? "\033[31m" : "\033[2m";
    what = std::string(c) + what + "\033[0m";
  }
  line(what);
}

void Progress::clear_block() {
  for (int i = 0; i < drawn_lines_; ++i) std::cerr << "\033[1A\033[2K";
  drawn_lines_ = 0;
}

void Progress::redraw() {
  clear_block();
  int seconds = 0, done = 0, total = 0;
  double usd = 0;
  for (auto& j : runner_.jobs()) {
    ++total;
    if (j->phase == run::Phase::done) { ++done; seconds += j->cost.seconds; usd += j->reused ? 0 : j->cost.usd; }
    if (run::finished(j->phase) || j->phase == run::Phase::waiting) continue;
    std::string l = "  " + j->name + "  " + describe(*j, runner_.now());
    if (l.size() > 110) l = l.substr(0, 107) + "...";
    std::cerr << (color_ ? "\033[2m" : "") << l << (color_ ? "\033[0m" : "") << "\n";
    ++drawn_lines_;
  }
  std::cerr << "[" << done << "/" << total << " done, " << seconds << " s of video, " << format_usd(usd) << "]\n";
  ++drawn_lines_;
}

void Progress::tick() {
  if (!tty_ || quiet_ || json_) return;
  double now = runner_.now();
  if (now - last_draw_ < 0.25) return;
  last_draw_ = now;
  redraw();
}

void Progress::interrupted(bool cancelling) {
  if (json_) { std::cout << json{{"t", runner_.now()}, {"event", cancelling ? "cancelling" : "interrupted"}}.dump() << std::endl; }
  std::vector<std::string> on_fal;
  for (auto& j : runner_.jobs())
    if (!run::finished(j->phase) && !j->request_id.empty()) on_fal.push_back(j->name + " (" + j->request_id + ")");
  if (tty_) clear_block();
  if (cancelling) {
    std::cerr << "interrupted: cancelling " << on_fal.size() << " job(s) on fal\n";
  } else {
    std::cerr << "interrupted: no new jobs will start.";
    if (!on_fal.empty()) {
      std::cerr << " Still running on fal (the next run picks them up; Ctrl-C again or --cancel-on-interrupt cancels):";
      for (auto& s : on_fal) std::cerr << "\n  " << s;
    }
    std::cerr << "\n";
  }
}

void Progress::finish() {
  if (tty_) clear_block();
  if (quiet_ || runner_.jobs().empty()) return;
  int done = 0, failed = 0, reused = 0, seconds = 0;
  double usd = 0, billed = 0;
  bool any_billed = false;
  for (auto& j : runner_.jobs()) {
    if (j->phase == run::Phase::done) { ++done; seconds += j->cost.seconds; }
    else if (run::finished(j->phase)) ++failed;
    if (j->reused) ++reused;
    // Offline nothing is sent: the estimate is what the plan would cost. With fal, only jobs
    // fal accepted this run (or whose submit's outcome is unknown) can be billed.
    else if (j->offline || (j->sent && (!j->request_id.empty() || j->phase == run::Phase::unknown))) usd += j->cost.usd;
    if (j->billable_units) { any_billed = true; billed += *j->billable_units; }
  }
  std::string s = std::to_string(done) + "/" + std::to_string(runner_.jobs().size()) + " done, " + std::to_string(failed) +
                  " failed, " + std::to_string(seconds) + " s of video; estimated spend " + format_usd(usd);
  if (reused) s += ", " + std::to_string(reused) + " reused at $0";
  if (any_billed) s += "; fal billable units " + json(billed).dump();
  if (runner_.backend().name() == "offline") s += " (offline: nothing was sent)";
  if (json_) {
    std::cout << json{{"t", runner_.now()}, {"event", "summary"}, {"done", done}, {"failed", failed}, {"reused", reused},
                      {"seconds", seconds}, {"estimated_usd", round_usd(usd)}}.dump() << std::endl;
    return;
  }
  line(s);
}

}  // namespace kr::cli
