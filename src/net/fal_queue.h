#pragma once
// The fal queue job driver: submit -> status (SSE stream, falling back to polling) -> result,
// plus cancel and client-side timeouts. Many jobs share one Loop; nothing blocks.
//
// Every callback runs from Loop::run_once(), never from inside start()/attach()/cancel(). Once a
// job has reported on_result or on_error it is finished and says nothing more.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "net/curl_loop.h"
#include "net/errors.h"
#include "net/fal_config.h"
#include "net/fal_urls.h"
#include "net/retry.h"

namespace kr::net {

class RetryingCall;

struct LogLine {
  std::string message;
  std::string level;      // INFO, STDERR, ...
  std::string source;     // USER
  std::string timestamp;  // ISO-8601 as fal sent it
};

struct QueueStatus {
  enum class State { in_queue, in_progress, completed };
  State state = State::in_queue;
  std::string request_id;
  int queue_position = -1;         // IN_QUEUE only; -1 when absent
  std::vector<LogLine> new_logs;   // lines not reported in an earlier on_status of this job
  nlohmann::json raw;              // the status object as fal sent it
};
const char* state_name(QueueStatus::State s);

struct ResultMeta {
  using Time = std::chrono::system_clock::time_point;
  std::string request_id;
  std::string billable_units;            // x-fal-billable-units as sent, "" when never seen
  std::optional<double> billable_units_value;  // the same, parsed
  std::optional<Time> submitted;         // submit answered (attach: when attached)
  std::optional<Time> started;           // first IN_PROGRESS seen (or COMPLETED, if that came first)
  std::optional<Time> completed;         // COMPLETED seen
  std::optional<double> inference_time;  // metrics.inference_time, seconds
};

struct JobCallbacks {
  // Each time the submit is about to be handed to curl. Returning false sends nothing: the job
  // ends with on_error (cancelled, "not sent"). A caller that must record the send durably
  // first (the state store) vetoes here when it cannot.
  std::function<bool()> on_sending;
  // An attempt surely created no job on fal (it was refused or rate-limited before fal took
  // it); another attempt may follow, with another on_sending.
  std::function<void()> on_not_created;
  std::function<void(const std::string& request_id)> on_submitted;
  std::function<void(const QueueStatus&)> on_status;  // on a change of state/position, or new logs
  std::function<void(nlohmann::json output, const ResultMeta&)> on_result;
  std::function<void(const FalError&)> on_error;
};

struct JobOptions {
  double client_timeout_s = 0;   // 0 = none; on expiry before COMPLETED: cancel on fal, report `timeout`
  double elapsed_s = 0;          // attach: time since the job was submitted, counted against it
  bool stream = true;            // false = poll only
  bool logs = true;              // ask for logs (logs=1)
  std::string priority;          // x-fal-queue-priority: "normal" / "low"; empty = not sent
  double start_timeout_s = 0;    // x-fal-request-timeout (fal-side start deadline); 0 = none
  std::string webhook_url;       // ?fal_webhook=
  std::vector<std::string> extra_headers;  // "Name: value", sent with submit
};

struct CancelOutcome {
  bool ok = false;           // fal answered 2xx
  int http_status = 0;
  std::string fal_status;    // CANCELLATION_REQUESTED, ALREADY_COMPLETED, NOT_FOUND, OK, ...
  std::optional<FalError> error;  // when not ok
};

class FalQueue {
 public:
  using JobId = std::uint64_t;  // 0 is never a valid id

  struct Options {
    RetryPolicy submit = RetryPolicy::submit();
    RetryPolicy status = RetryPolicy::status();
    RetryPolicy result = RetryPolicy::result();
    RetryPolicy cancel = RetryPolicy::cancel();
    double poll_initial_ms = 250;  // polling interval starts here ...
    double poll_max_ms = 5000;     // ... and grows to here
    double poll_growth = 1.5;
    long api_timeout_ms = 120000;  // each submit/status/result/cancel exchange
    long connect_timeout_ms = 15000;
    long stream_stall_s = 45;      // fal sends a keep-alive every 15 s; silence this long = dead
    // A job on fal runs (and is paid for) whether this client hears from it or not: through
    // failing status calls (network, 429, 5xx) it is polled again every status.cap_ms, and
    // given up only when none has succeeded for this long (a re-run then picks it up).
    double follow_outage_ms = 600000;
  };

  FalQueue(Loop& loop, FalConfig config);
  FalQueue(Loop& loop, FalConfig config, Options options);
  ~FalQueue();  // abandons running jobs without callbacks (their jobs keep running on fal)
  FalQueue(const FalQueue&) = delete;
  FalQueue& operator=(const FalQueue&) = delete;

  // Submits `input` to `endpoint_id` and follows the job to its end. An invalid endpoint id is
  // reported through on_error (kind rejected).
  JobId start(const std::string& endpoint_id, nlohmann::json input, JobCallbacks cb, JobOptions opt = {});
  // Follows a job that is already on fal (e.g. after a restart): no submit.
  JobId attach(const std::string& endpoint_id, const std::string& request_id, JobCallbacks cb,
               JobOptions opt = {});
  // Stops following the job, asks fal to cancel it (once its request id is known) and reports
  // on_error(kind cancelled). False if the job is unknown or already finished.
  bool cancel(JobId id);
  // Takes back a submit that has not left: one handed to curl since the last round of I/O (in
  // practice, from the Loop's before_io hook, which runs just before that round). The job ends
  // with on_error (cancelled, "not sent"), from the loop. False if the job has no submit that
  // is surely unsent: once the submit may have left, fal may have created the job.
  bool withdraw(JobId id);
  // PUT .../cancel for any request; cb (optional) gets fal's answer.
  void cancel_request(const std::string& endpoint_id, const std::string& request_id,
                      std::function<void(const CancelOutcome&)> cb = {});

  std::size_t active() const;  // jobs not yet finished
  std::string request_id(JobId id) const;  // "" until submitted (or unknown job)

  const FalConfig& config() const { return config_; }
  // Headers every call to fal's own hosts carries (auth, JSON, user agent).
  std::vector<std::string> api_headers() const;

  struct Job;  // internal

 private:
  JobId add_job(std::unique_ptr<Job> job);
  void submit(JobId id);
  void on_submit_done(JobId id, HttpResponse& r);
  void open_stream(JobId id);
  void drain_stream(JobId id);
  void on_stream_done(JobId id, HttpResponse& r);
  void schedule_poll(JobId id, double delay_ms);
  void poll(JobId id);
  // Applies one status object; returns false if the job is gone (finished or cancelled by a
  // callback).
  bool apply_status(JobId id, const nlohmann::json& status);
  void fetch_result(JobId id);
  void on_result_done(JobId id, HttpResponse& r);
  void on_deadline(JobId id);
  void finish_error(JobId id, FalError e);
  void finish_error_later(JobId id, FalError e);  // on_error from the next run_once()
  void finish_result(JobId id, nlohmann::json output);
  // Stops every transfer/timer of the job except an in-flight submit.
  void stop_activity(Job& job);
  void observe(Job& job, const HttpResponse& r);
  void send_cancel(const EndpointId& ep, const std::string& request_id,
                   std::function<void(const CancelOutcome&)> cb);
  Job* find(JobId id);
  HttpRequest api_request(std::string method, std::string url, std::string body = {}) const;

  Loop& loop_;
  FalConfig config_;
  Options opt_;
  std::map<JobId, std::unique_ptr<Job>> jobs_;
  JobId next_id_ = 1;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // callbacks check it before touching *this
  std::vector<std::shared_ptr<RetryingCall>> side_calls_;  // cancels in flight
};

}  // namespace kr::net
