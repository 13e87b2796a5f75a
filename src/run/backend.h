// Where jobs go: offline (validate, price, spend nothing) or fal. The Runner owns the jobs and
// the loop; a backend only moves a started job along and reports through the callbacks.
#pragma once
#include <functional>
#include <string>

#include "run/job.h"

namespace kr::run {

// What a backend reports, in the order it happens. The runner records each durable step in
// the state store before the backend takes its next network step (the callbacks run
// synchronously, before the next request is handed to curl).
enum class JobEvent {
  sending,      // the submit is about to go out
  not_created,  // that submit surely created no job on fal (refused or rate-limited); it may be retried
  submitted,    // fal answered with job.request_id
  status,       // queue position, running, a log line
  result,       // job.output holds fal's answer; the download comes next
  progress,     // download progress
};

struct BackendHooks {
  std::function<void(Job&, JobEvent)> event;
  std::function<void(Job&)> finished;  // the job reached a final phase; call exactly once per start
  // Runs before each round of network I/O: nothing handed to the network since the last round
  // has left yet. The runner makes the store's batched commits durable here (StateStore::sync).
  std::function<void()> before_io;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  // Begin the job's work without blocking. `job.resume` says where to begin: a fresh submit,
  // re-attaching to job.request_id, or downloading from the stored job.output.
  virtual void start(Job& job) = 0;
  // Drive I/O for at most `max_wait_ms` (0 = do what is ready and return).
  virtual void poll(int max_wait_ms) = 0;
  // Something still in progress (transfers, timers)?
  virtual bool busy() const = 0;
  // Whether the runner's concurrency limit applies (offline jobs cost nothing to run at once).
  virtual bool limited() const { return true; }
  // Ask fal to cancel the job; the job still finishes through the hooks.
  virtual void cancel(Job& job) = 0;
  // Takes back the job's submit if it surely has not left (in practice, from the before_io
  // hook). The job then finishes through the hooks with job.send_refused as its error. False
  // if there is no such submit.
  virtual bool withdraw(Job& job) { (void)job; return false; }
  // A result taken from the state store (an earlier run, another script, or an identical job
  // under another name): makes its video the job's own file, where this job's download would
  // have put it, and points job.video_path there. True if it moved job.video_path; a problem
  // becomes a warning on the job, which keeps the stored file.
  virtual bool adopt(Job& job) { (void)job; return false; }
  // The job will be started when a slot frees: work that costs nothing on fal and that its start
  // would otherwise wait for (uploading its local files) may begin now. Its start must not
  // depend on it: a failure here is met again, and reported, when the job starts.
  virtual void prefetch(const Job& job) { (void)job; }
  void set_hooks(BackendHooks h) { hooks_ = std::move(h); }

 protected:
  BackendHooks hooks_;
};

}  // namespace kr::run
