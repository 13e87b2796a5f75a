// The Runner owns jobs, the concurrency limit, the budget and the non-blocking tick() loop.
// It knows neither Lua nor HTTP: requests come in as plain data, a Backend carries them.
//
// Its parts, one file each: runner.cpp (the tick loop, stopping, cancelling, events),
// runner_submit.cpp (a request becomes a job), runner_budget.cpp (what a job charges and whether
// it fits), runner_store.cpp (claims and durable steps in the state store, the manifest),
// runner_plan.cpp (plan.json); job_identity.cpp holds the job keys and hashes.
#pragma once
#include <chrono>
#include <deque>
#include <set>
#include <unordered_map>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/prepare.h"
#include "run/backend.h"
#include "run/job_index.h"
#include "run/manifest.h"
#include "run/state_store.h"

namespace kr::run {

// A request the runner will not accept; nothing was sent.
struct SubmitRefused : std::runtime_error {
  enum class Why { stopped, invalid, name, budget };
  SubmitRefused(Why why, std::vector<Issue> issues, std::string summary)
      : std::runtime_error(summary), why(why), issues(std::move(issues)) {}
  Why why;
  std::vector<Issue> issues;
};

struct RunnerOptions {
  std::filesystem::path out_dir = "out/script";  // where outputs and plan.json go
  std::string script = "script";                 // default job names derive from it
  int concurrency = 2;                           // jobs in flight on the backend
  std::optional<double> budget;                  // USD for this run
  const PriceTable* prices = &PriceTable::builtin();
  std::string default_endpoint = "v3/pro/t2v";
  // Durable journal (fal runs): reuse, re-attach, never pay twice. nullptr = none (offline).
  StateStore* store = nullptr;
  ManifestWriter* manifest = nullptr;
  bool fresh = false;             // generate anew even when a stored result exists
  bool resubmit_unknown = false;  // resubmit jobs whose earlier submit had an unknown outcome
};

class Runner {
 public:
  Runner(RunnerOptions opts, std::unique_ptr<Backend> backend);
  ~Runner();

  // Validate and price without submitting.
  Prepared check(const Request& req) const;
  // Validate, price, check the budget and queue the job. Identical requests (same key) in one
  // run are the same job, never paid twice. Throws SubmitRefused.
  Job& submit(Request req);

  // Start what the concurrency limit allows, drive the backend for at most max_wait_ms, and
  // deliver finished jobs to their waiters. Never blocks longer than max_wait_ms.
  void tick(int max_wait_ms = 0);
  // Nothing waiting, nothing in flight.
  bool idle() const;
  // Jobs accepted but not finished.
  std::size_t pending() const;

  // First Ctrl-C: accept no new jobs and start none of those still waiting.
  void stop_starting();
  bool stopping() const { return stopping_; }
  // Ask the backend to cancel everything in flight (and drop what waits).
  void cancel_all();
  // One job: one not started yet never starts (and is not charged); one on its way is
  // cancelled on fal by the backend. Either way it finishes as cancelled, except a job whose
  // video is already downloading (paid for: it is kept).
  void cancel(Job& job);

  void set_budget(std::optional<double> usd) { opts_.budget = usd; }
  std::optional<double> budget() const { return opts_.budget; }
  void set_concurrency(int n) { opts_.concurrency = n < 1 ? 1 : n; }
  int concurrency() const { return opts_.concurrency; }
  double spent() const { return spent_; }        // estimates of jobs accepted this run (reused cost 0)
  ElementRegistry& elements() { return elements_; }
  const ElementRegistry& elements() const { return elements_; }
  const RunnerOptions& options() const { return opts_; }
  Backend& backend() { return *backend_; }
  const std::vector<std::unique_ptr<Job>>& jobs() const { return jobs_; }
  double now() const;  // seconds since the runner started

  // Called whenever a job changes (accepted, started, progress, finished).
  void on_change(std::function<void(const Job&)> fn) { listeners_.push_back(std::move(fn)); }

  // Hands the manifest entries of jobs that changed to the manifest writer (force: now, and wait
  // until they are written; else at most twice a second).
  void flush_manifest(bool force);

  // plan.json: every job with name, endpoint, normalized input and cost.
  json plan() const;
  void write_plan() const;

 private:
  void on_finished(Job& job);
  void release_slot(Job& job);
  void drop_unstarted(Job& job, const char* why);
  Job* job_named(const std::string& name) const;
  // Asks the store what to do with a job about to start; false when it needs no backend
  // (reused, unknown, refused) or must wait for another process.
  bool claim(Job& job);
  std::optional<std::string> over_budget(const std::string& name, double cost) const;
  void finish_here(Job& job);  // a job finished without the backend
  void record(Job& job, JobEvent e);
  void sync_before_io();
  void record_end(Job& job);
  void start_waiting();
  void store_warn(Job& job, const std::exception& e);
  double predicted_charge(const std::string& key, double cost) const;
  // The input with local files named by their content (a copy in scratch), or input itself.
  const json& canonical_media(const Endpoint& ep, const json& input, json& scratch);
  void on_event(Job& job, JobEvent e);
  void notify(const Job& job);
  const CoreContext& context() const;

  RunnerOptions opts_;
  CoreContext ctx_;  // prices, elements and default endpoint for prepare(); fixed at construction
  std::unique_ptr<Backend> backend_;
  ElementRegistry elements_;
  std::vector<std::unique_ptr<Job>> jobs_;
  JobIndex by_identity_;  // identity_hash() → jobs
  JobIndex by_name_;      // hash of the name → jobs (names are unique)
  std::vector<std::pair<Job*, double>> parked_;  // waiting for another process (job, next check)
  double last_heartbeat_ = 0;
  std::set<std::string> manifest_dirty_;
  double last_manifest_ = -1;
  std::unordered_map<std::string, std::string> file_hashes_;  // "path|size|mtime" → sha256
  std::vector<Job*> unsynced_sends_;  // marked sent since the last fsync; their submits have not left
  std::deque<Job*> waiting_;
  std::vector<Job*> done_queue_;  // finished, waiters not yet called
  int in_flight_ = 0;
  std::size_t unfinished_ = 0;
  double spent_ = 0;
  bool stopping_ = false;
  std::chrono::steady_clock::time_point t0_;
  std::vector<std::function<void(const Job&)>> listeners_;
};

// A hash of (endpoint, canonical input, take), for finding identical jobs in a run.
std::size_t identity_hash(const Endpoint& endpoint, const json& canonical, int take);
// Hex SHA-256 of the canonical request (endpoint id, normalized input with keys sorted, take):
// the job's name in the state store and the manifest.
std::string request_key(const std::string& endpoint_id, const json& input, int take);
// A name safe as a file name: letters, digits, '-', '_', '.'; others become '_'.
std::string safe_name(const std::string& name);

}  // namespace kr::run
