// Where jobs go: offline (validate, price, spend nothing) or fal. The Runner owns the jobs and
// the loop; a backend only moves a started job along and reports through the callbacks.
#pragma once
#include <functional>
#include <string>

#include "run/job.h"

namespace kr::run {

struct BackendHooks {
  std::function<void(Job&)> changed;   // phase/progress moved (for progress display, state store)
  std::function<void(Job&)> finished;  // the job reached a final phase; call exactly once per start
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  // Begin the job's work without blocking.
  virtual void start(Job& job) = 0;
  // Drive I/O for at most `max_wait_ms` (0 = do what is ready and return).
  virtual void poll(int max_wait_ms) = 0;
  // Something still in progress (transfers, timers)?
  virtual bool busy() const = 0;
  // Ask fal to cancel the job; the job still finishes through the hooks.
  virtual void cancel(Job& job) = 0;
  void set_hooks(BackendHooks h) { hooks_ = std::move(h); }

 protected:
  BackendHooks hooks_;
};

}  // namespace kr::run
