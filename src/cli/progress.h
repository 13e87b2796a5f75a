// What the user sees while a run goes: plain timestamped lines when stderr is not a terminal,
// a live block of one line per active job when it is, JSON events with --json, nothing with
// --quiet. Plan mode stays silent (the table is the output).
#pragma once
#include <map>
#include <string>

#include "cli/args.h"
#include "run/runner.h"

namespace kr::cli {

class Progress {
 public:
  Progress(run::Runner& runner, const Args& args, bool plan);
  void tick();                       // redraw the live block (terminal only, rate-limited)
  void interrupted(bool cancelling);
  void finish();                     // summary line

 private:
  void changed(const run::Job& job);
  void line(const std::string& text);
  void event(const run::Job& job);
  void redraw();
  void clear_block();

  run::Runner& runner_;
  bool plan_, json_, quiet_, tty_, color_;
  std::map<std::uint64_t, run::Phase> last_;
  int drawn_lines_ = 0;
  double last_draw_ = -1;
};

}  // namespace kr::cli
