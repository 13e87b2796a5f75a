// A job: one request on its way to a video. Owned by the Runner; backends move it along its
// phases and fill in what fal answered.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/prepare.h"

namespace kr::run {

enum class Phase { waiting, uploading, submitting, queued, running, downloading, done, failed, unknown, cancelled };
const char* phase_name(Phase p);
inline bool finished(Phase p) { return p == Phase::done || p == Phase::failed || p == Phase::unknown || p == Phase::cancelled; }

enum class ErrorKind {
  // What fal or the way to it said (net::FalError::Kind):
  rejected, auth, rate_limited, server, network, timeout, cancelled, unknown_submit, download,
  // What the runner decided:
  budget,      // the job would have exceeded the budget: not sent
  state,       // the state store could not record the job: not sent
  claim_lost,  // another process took the job over (its row is that process's now): not sent
};
const char* error_kind_name(ErrorKind k);  // the name shown in --json and to Lua (job:error().kind)

// Why a job did not produce a video, in a form every layer above can show.
struct JobError {
  ErrorKind kind = ErrorKind::server;
  std::string message;             // one line
  std::vector<std::string> lines;  // "path: message" lines when fal named fields
  std::string request_id;
  std::string advice;              // what the user can do next (e.g. for unknown_submit)
  bool final_on_fal = false;       // fal's verdict on the job (not trouble reaching fal)
};

// Where a job starts on the backend (decided by the runner from the state store).
enum class Resume { submit, attach, download };

struct Job {
  std::uint64_t id = 0;
  std::string name;
  // Identity: endpoint, input and take, local files named by content. Identical jobs in a run
  // are one job; across runs the state store knows them by `key`.
  std::string key;            // SHA-256 of the canonical request; set when a state store or manifest is kept (fal runs)
  json media_identity;        // the input with local files as "sha256:…", when it has any; else null
  int take = 0;               // the script's take (part of the identity)
  double timeout_s = 0;       // client-side deadline on fal (0 = none)
  double sent_age_s = 0;      // re-attached: how long ago its submit went out (counts against timeout_s)
  double start_timeout_s = 0; // fal ends it if it has not started by then (0 = none)
  bool low_priority = false;  // x-fal-queue-priority: low
  bool prefetched = false;    // the backend was told it comes next (Backend::prefetch)
  std::string origin;         // "script.lua:12" where it was submitted
  const Endpoint* endpoint = nullptr;
  json input;                 // normalized: what is sent
  Estimate cost;
  std::vector<Issue> warnings;

  Phase phase = Phase::waiting;
  Resume resume = Resume::submit;
  bool reused = false;        // result taken from the state store: costs nothing this run
  double charged = 0;         // what this job counts against this run's budget
  bool sent = false;          // the submit went out this run (fal may bill it)
  bool attached = false;      // re-attached to a request already on fal
  bool offline = false;
  bool holds_slot = false;    // counts against the runner's concurrency (until fal has finished it)
  std::string request_id;
  int queue_position = -1;
  std::string last_log;
  json output;                // fal's output JSON
  std::string video_url, video_path, video_sha256;
  std::uint64_t video_bytes = 0, download_total = 0, download_done = 0;
  std::optional<double> billable_units;
  std::unique_ptr<JobError> error;  // set when it did not produce a video (a pointer: most jobs never need one)
  // Set by the runner when its submit must not leave (the store could not record the send, or
  // another process drives the job now); the backend sends nothing and fails the job with it.
  std::unique_ptr<JobError> send_refused;

  void fail(JobError e) { error = std::make_unique<JobError>(std::move(e)); }
  double t_created = 0, t_submitted = 0, t_started = 0, t_completed = 0, t_done = 0;  // seconds since run start

  std::vector<std::function<void(Job&)>> waiters;  // called once when the job finishes
};

}  // namespace kr::run
