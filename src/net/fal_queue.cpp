#include "net/fal_queue.h"

#include <curl/curl.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <unordered_set>

#include "net/retrying_call.h"
#include "net/sse.h"

namespace kr::net {

using json = nlohmann::json;

const char* state_name(QueueStatus::State s) {
  switch (s) {
    case QueueStatus::State::in_queue: return "IN_QUEUE";
    case QueueStatus::State::in_progress: return "IN_PROGRESS";
    case QueueStatus::State::completed: return "COMPLETED";
  }
  return "?";
}

struct FalQueue::Job {
  enum class Phase { submitting, streaming, polling, fetching };

  JobId id = 0;
  EndpointId ep;
  std::string body;
  JobCallbacks cb;
  JobOptions opt;
  Phase phase = Phase::submitting;
  std::string request_id;
  // Already reported (cancelled / timed out) while its submit was in flight: it waits for the
  // submit answer only to cancel the job on fal, and says nothing more.
  bool abandoned = false;

  int submit_failures = 0;
  Loop::TransferId submit_transfer = 0;
  Loop::TimerId submit_timer = 0;

  Loop::TransferId stream_transfer = 0;
  std::unique_ptr<SseParser> sse;
  std::vector<std::string> stream_events;  // parsed inside curl's callback, applied after it
  bool drain_posted = false;

  std::shared_ptr<RetryingCall> call;  // the status poll or result fetch in flight
  Loop::TimerId poll_timer = 0;
  double poll_interval_ms = 0;
  Loop::TimerId deadline = 0;

  std::unordered_set<std::string> seen_logs;
  std::string last_reported;  // state|position of the last on_status, to skip repeats
  bool completed = false;
  json completed_status;
  bool attached = false;          // followed from a submit made elsewhere (attach)
  std::chrono::steady_clock::time_point poll_started;  // the status call under way began
  std::optional<std::chrono::steady_clock::time_point> status_failing_since;  // no good answer since
  bool status_known = false;      // fal has told this client the job's state at least once
  bool deadline_passed = false;   // attached, and out of time before its state was known

  ResultMeta meta;
};

namespace {

FalError network_error(const HttpResponse& r, std::string what, std::string request_id) {
  FalError e;
  e.kind = FalError::Kind::network;
  e.request_id = std::move(request_id);
  e.message = what + ": " + (r.error.empty() ? "no answer" : r.error);
  if (r.curl_code == CURLE_PEER_FAILED_VERIFICATION)  // most often a proxy that re-signs TLS
    e.message += " (if a proxy re-signs TLS, set CURL_CA_BUNDLE to its CA certificate)";
  e.retryable = true;
  return e;
}

FalError failure_from(const HttpResponse& r, std::string what, const std::string& request_id) {
  if (r.status >= 400) return error_from_http(r.status, r.headers, r.body, request_id);
  if (r.curl_code == 0) {
    FalError e;
    e.kind = FalError::Kind::server;
    e.http_status = r.status;
    e.request_id = request_id;
    e.message = what + ": unexpected HTTP " + std::to_string(r.status);
    return e;
  }
  return network_error(r, std::move(what), request_id);
}

std::string format_seconds(double s) {
  char buf[32];
  if (std::floor(s) == s) std::snprintf(buf, sizeof buf, "%.0f", s);
  else std::snprintf(buf, sizeof buf, "%g", s);
  return buf;
}

}  // namespace

FalQueue::FalQueue(Loop& loop, FalConfig config) : FalQueue(loop, std::move(config), Options{}) {}

FalQueue::FalQueue(Loop& loop, FalConfig config, Options options)
    : loop_(loop), config_(std::move(config)), opt_(std::move(options)) {}

FalQueue::~FalQueue() {
  alive_.reset();
  for (auto& [id, job] : jobs_) {
    stop_activity(*job);
    if (job->submit_transfer) loop_.cancel(job->submit_transfer);
  }
  for (auto& c : side_calls_) c->cancel();
}

std::vector<std::string> FalQueue::api_headers() const {
  std::vector<std::string> h;
  if (!config_.key.empty()) h.push_back("Authorization: Key " + config_.key);
  h.push_back("Content-Type: application/json");
  h.push_back("Accept: application/json");
  h.push_back("User-Agent: " + config_.user_agent);
  return h;
}

HttpRequest FalQueue::api_request(std::string method, std::string url, std::string body) const {
  HttpRequest r;
  r.method = std::move(method);
  r.url = std::move(url);
  r.body = std::move(body);
  r.headers = api_headers();
  r.timeout_ms = opt_.api_timeout_ms;
  r.connect_timeout_ms = opt_.connect_timeout_ms;
  return r;
}

FalQueue::Job* FalQueue::find(JobId id) {
  auto it = jobs_.find(id);
  return it == jobs_.end() || it->second->abandoned ? nullptr : it->second.get();
}

std::size_t FalQueue::active() const {
  std::size_t n = 0;
  for (const auto& [id, job] : jobs_) n += job->abandoned ? 0 : 1;
  return n;
}

std::string FalQueue::request_id(JobId id) const {
  auto it = jobs_.find(id);
  return it == jobs_.end() ? std::string{} : it->second->request_id;
}

FalQueue::JobId FalQueue::add_job(std::unique_ptr<Job> job) {
  const JobId id = job->id = next_id_++;
  job->poll_interval_ms = opt_.poll_initial_ms;
  if (job->opt.client_timeout_s > 0) {
    const double left_ms = std::max(0.0, job->opt.client_timeout_s - job->opt.elapsed_s) * 1000.0;
    job->deadline = loop_.after(left_ms, [this, alive = std::weak_ptr<int>(alive_), id] {
      if (!alive.expired()) on_deadline(id);
    });
  }
  jobs_.emplace(id, std::move(job));
  return id;
}

FalQueue::JobId FalQueue::start(const std::string& endpoint_id, json input, JobCallbacks cb, JobOptions opt) {
  auto job = std::make_unique<Job>();
  job->cb = std::move(cb);
  job->opt = std::move(opt);
  job->body = input.dump();
  std::optional<FalError> invalid;
  try {
    job->ep = parse_endpoint_id(endpoint_id);
  } catch (const std::exception& ex) {
    invalid = FalError{FalError::Kind::rejected, 0, "", ex.what(), {}, "", false};
  }
  const JobId id = add_job(std::move(job));
  loop_.post([this, alive = std::weak_ptr<int>(alive_), id, invalid] {
    if (alive.expired()) return;
    if (invalid) finish_error(id, *invalid);
    else submit(id);
  });
  return id;
}

FalQueue::JobId FalQueue::attach(const std::string& endpoint_id, const std::string& request_id, JobCallbacks cb,
                                 JobOptions opt) {
  auto job = std::make_unique<Job>();
  job->cb = std::move(cb);
  job->opt = std::move(opt);
  job->request_id = request_id;
  job->attached = true;
  job->meta.request_id = request_id;
  job->meta.submitted = std::chrono::system_clock::now();
  std::optional<FalError> invalid;
  try {
    job->ep = parse_endpoint_id(endpoint_id);
  } catch (const std::exception& ex) {
    invalid = FalError{FalError::Kind::rejected, 0, request_id, ex.what(), {}, "", false};
  }
  if (request_id.empty()) invalid = FalError{FalError::Kind::rejected, 0, "", "attach: empty request id", {}, "", false};
  const bool stream = job->opt.stream;
  job->phase = stream ? Job::Phase::streaming : Job::Phase::polling;
  const JobId id = add_job(std::move(job));
  loop_.post([this, alive = std::weak_ptr<int>(alive_), id, invalid, stream] {
    if (alive.expired()) return;
    if (invalid) finish_error(id, *invalid);
    else if (stream) open_stream(id);
    else poll(id);
  });
  return id;
}

// ---------------------------------------------------------------- submit

void FalQueue::submit(JobId id) {
  Job* j = find(id);
  if (!j) return;
  j->submit_timer = 0;
  if (j->cb.on_sending) {
    auto f = j->cb.on_sending;
    const bool send = f();
    if (!(j = find(id))) return;  // cancelled from the callback: nothing was sent
    if (!send)
      return finish_error(id, FalError{FalError::Kind::cancelled, 0, "", "not sent: the submit was called off before it left",
                                       {}, "", false});
  }
  std::string url = fal_url::submit(config_, j->ep);
  if (!j->opt.webhook_url.empty()) url += "?fal_webhook=" + url_encode(j->opt.webhook_url);
  HttpRequest req = api_request("POST", std::move(url), j->body);
  if (!j->opt.priority.empty()) req.headers.push_back("x-fal-queue-priority: " + j->opt.priority);
  if (j->opt.start_timeout_s > 0)
    req.headers.push_back("x-fal-request-timeout: " + format_seconds(j->opt.start_timeout_s));
  for (const auto& h : j->opt.extra_headers) req.headers.push_back(h);
  req.fresh_connect = true;  // a dead reused connection would make curl resend it on its own
  j->submit_transfer = loop_.start(std::move(req), [this, alive = std::weak_ptr<int>(alive_), id](HttpResponse& r) {
    if (!alive.expired()) on_submit_done(id, r);
  });
}

void FalQueue::on_submit_done(JobId id, HttpResponse& r) {
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return;
  Job* j = it->second.get();
  j->submit_transfer = 0;
  observe(*j, r);
  const Outcome o = Outcome::from(r);
  SubmitVerdict v = classify_submit(o);

  std::string rid;
  if (v == SubmitVerdict::accepted || v == SubmitVerdict::unknown) {
    json body = json::parse(r.body, nullptr, false);
    if (body.is_object() && body.contains("request_id") && body["request_id"].is_string())
      rid = body["request_id"].get<std::string>();
    if (rid.empty() && r.status >= 200 && r.status < 300) rid = r.header("x-fal-request-id");
    // A 2xx whose body was cut short still names the job in its header: the job is known.
    if (!rid.empty() && r.status >= 200 && r.status < 300) v = SubmitVerdict::accepted;
  }

  if (j->abandoned) {
    if (v == SubmitVerdict::accepted && !rid.empty()) send_cancel(j->ep, rid, {});
    jobs_.erase(it);
    return;
  }

  switch (v) {
    case SubmitVerdict::accepted: {
      if (rid.empty()) {
        finish_error(id, FalError{FalError::Kind::unknown_submit, r.status, "",
                                  "submit answered without a request_id; a job may exist on fal", {}, "", false});
        return;
      }
      j->request_id = rid;
      j->meta.request_id = rid;
      j->meta.submitted = std::chrono::system_clock::now();
      if (j->cb.on_submitted) {
        auto f = j->cb.on_submitted;
        f(rid);
        if (!(j = find(id))) return;
      }
      if (j->opt.stream) {
        open_stream(id);
      } else {
        j->phase = Job::Phase::polling;
        poll(id);
      }
      return;
    }
    case SubmitVerdict::retry_safe:
    case SubmitVerdict::failed:
      if (j->cb.on_not_created) {
        auto f = j->cb.on_not_created;
        f();
        if (!(j = find(id))) return;  // cancelled from the callback
      }
      if (v == SubmitVerdict::failed) return finish_error(id, failure_from(r, "submit", ""));
      if (j->submit_failures < opt_.submit.max_retries) {
        const double delay = opt_.submit.delay_ms(j->submit_failures, o);
        ++j->submit_failures;
        j->submit_timer = loop_.after(delay, [this, alive = std::weak_ptr<int>(alive_), id] {
          if (!alive.expired()) submit(id);
        });
        return;
      }
      finish_error(id, failure_from(r, "submit", ""));
      return;
    case SubmitVerdict::unknown: {
      FalError e;
      e.kind = FalError::Kind::unknown_submit;
      e.http_status = r.status;
      e.message = "submit was sent but no answer came back (" + (r.error.empty() ? std::string("no answer") : r.error) +
                  "); a job may exist on fal, so it was not sent again";
      finish_error(id, std::move(e));
      return;
    }
  }
}

// ---------------------------------------------------------------- status stream

void FalQueue::open_stream(JobId id) {
  Job* j = find(id);
  if (!j) return;
  j->phase = Job::Phase::streaming;
  j->sse = std::make_unique<SseParser>([j](const SseEvent& ev) { j->stream_events.push_back(ev.data); });
  HttpRequest req = api_request("GET", fal_url::status_stream(config_, j->ep, j->request_id, j->opt.logs));
  for (auto& h : req.headers)
    if (h.rfind("Accept:", 0) == 0) h = "Accept: application/json, text/event-stream";
  req.timeout_ms = 0;
  req.stall_seconds = opt_.stream_stall_s;
  auto alive = std::weak_ptr<int>(alive_);
  req.on_data = [this, alive, id](std::string_view chunk, const HttpResponse& head) {
    if (alive.expired()) return false;
    Job* j = find(id);
    if (!j || j->phase != Job::Phase::streaming) return false;
    // Without the SSE content type the body is not a status stream (a proxy's page, ...).
    if (head.header("content-type").rfind("text/event-stream", 0) != 0) return false;
    j->sse->feed(chunk);
    if (!j->stream_events.empty() && !j->drain_posted) {
      j->drain_posted = true;
      loop_.post([this, alive, id] {
        if (!alive.expired()) drain_stream(id);
      });
    }
    return true;
  };
  j->stream_transfer = loop_.start(std::move(req), [this, alive, id](HttpResponse& r) {
    if (!alive.expired()) on_stream_done(id, r);
  });
}

void FalQueue::drain_stream(JobId id) {
  Job* j = find(id);
  if (!j) return;
  j->drain_posted = false;
  std::vector<std::string> events;
  events.swap(j->stream_events);
  for (const auto& data : events) {
    if (j->phase != Job::Phase::streaming) return;
    json st = json::parse(data, nullptr, false);
    if (!st.is_object()) continue;  // not a status object: nothing to learn from it
    if (!apply_status(id, st)) return;
    j = find(id);
    if (j->completed) {
      if (j->stream_transfer) loop_.cancel(j->stream_transfer);
      j->stream_transfer = 0;
      fetch_result(id);
      return;
    }
  }
}

void FalQueue::on_stream_done(JobId id, HttpResponse& r) {
  Job* j = find(id);
  if (!j) return;
  j->stream_transfer = 0;
  if (j->phase != Job::Phase::streaming) return;
  observe(*j, r);
  drain_stream(id);  // events of the last chunk may still wait for their posted drain
  j = find(id);
  if (!j || j->phase != Job::Phase::streaming) return;
  // Ended or failed before COMPLETED: polling is slower but survives proxies and resets.
  j->phase = Job::Phase::polling;
  j->sse.reset();
  poll(id);
}

// ---------------------------------------------------------------- polling

void FalQueue::schedule_poll(JobId id, double delay_ms) {
  Job* j = find(id);
  if (!j) return;
  j->poll_timer = loop_.after(delay_ms, [this, alive = std::weak_ptr<int>(alive_), id] {
    if (!alive.expired()) poll(id);
  });
}

void FalQueue::poll(JobId id) {
  Job* j = find(id);
  if (!j) return;
  j->poll_timer = 0;
  j->phase = Job::Phase::polling;
  j->poll_started = std::chrono::steady_clock::now();
  auto alive = std::weak_ptr<int>(alive_);
  j->call = RetryingCall::start(
      loop_, api_request("GET", fal_url::status(config_, j->ep, j->request_id, j->opt.logs)), opt_.status,
      [this, alive, id](HttpResponse& r, int) {
        if (alive.expired()) return;
        Job* j = find(id);
        if (!j) return;
        j->call.reset();
        if (!r.ok()) {
          FalError e = failure_from(r, "status", j->request_id);
          const auto now = std::chrono::steady_clock::now();
          if (!j->status_failing_since) j->status_failing_since = j->poll_started;
          const double out_ms = std::chrono::duration<double, std::milli>(now - *j->status_failing_since).count();
          if (e.retryable && out_ms < opt_.follow_outage_ms) return schedule_poll(id, opt_.status.cap_ms);
          if (e.retryable) {
            char why[96];
            std::snprintf(why, sizeof why, " (no status for %.0f s; the job may still run on fal)", out_ms / 1000);
            e.message += why;
          }
          finish_error(id, std::move(e));
          return;
        }
        j->status_failing_since.reset();
        json st = json::parse(r.body, nullptr, false);
        if (!st.is_object()) {
          finish_error(id, FalError{FalError::Kind::server, r.status, j->request_id, "status answer is not JSON",
                                    {}, "", true});
          return;
        }
        if (!apply_status(id, st)) return;
        j = find(id);
        if (j->completed) {
          fetch_result(id);
          return;
        }
        const double wait = j->poll_interval_ms;
        j->poll_interval_ms = std::min(opt_.poll_max_ms, j->poll_interval_ms * opt_.poll_growth);
        schedule_poll(id, wait);
      },
      [this, alive, id](const HttpResponse& r) {
        if (alive.expired()) return;
        if (Job* j = find(id)) observe(*j, r);
      });
}

bool FalQueue::apply_status(JobId id, const json& st) {
  Job* j = find(id);
  if (!j) return false;
  const std::string s = st.value("status", "");
  QueueStatus qs;
  if (s == "IN_QUEUE") qs.state = QueueStatus::State::in_queue;
  else if (s == "IN_PROGRESS") qs.state = QueueStatus::State::in_progress;
  else if (s == "COMPLETED") qs.state = QueueStatus::State::completed;
  else return true;  // fal documents no other value; ignore rather than guess

  const auto now = std::chrono::system_clock::now();
  qs.request_id = j->request_id;
  if (auto it = st.find("queue_position"); it != st.end() && it->is_number()) qs.queue_position = it->get<int>();
  if (auto it = st.find("logs"); it != st.end() && it->is_array()) {
    // Polls repeat every line so far, stream events may carry only new ones: report each once.
    for (const auto& l : *it) {
      if (!l.is_object()) continue;
      LogLine line{l.value("message", ""), l.value("level", ""), l.value("source", ""), l.value("timestamp", "")};
      std::string key = line.timestamp + '\x1f' + line.level + '\x1f' + line.message;
      if (j->seen_logs.insert(std::move(key)).second) qs.new_logs.push_back(std::move(line));
    }
  }
  if (qs.state != QueueStatus::State::in_queue && !j->meta.started) j->meta.started = now;
  j->status_known = true;
  if (qs.state != QueueStatus::State::completed && j->deadline_passed) {
    on_deadline(id);
    return false;
  }
  if (qs.state == QueueStatus::State::completed) {
    // Paid for from here on: the result is fetched whatever the client deadline says.
    if (j->deadline) loop_.cancel_timer(j->deadline);
    j->deadline = 0;
    j->completed = true;
    j->completed_status = st;
    j->meta.completed = now;
    if (auto m = st.find("metrics"); m != st.end() && m->is_object()) {
      if (auto t = m->find("inference_time"); t != m->end() && t->is_number()) j->meta.inference_time = t->get<double>();
    }
  }
  qs.raw = st;
  // Polls repeat the same answer many times; report changes only.
  std::string signature = std::string(state_name(qs.state)) + "|" + std::to_string(qs.queue_position);
  if (qs.new_logs.empty() && signature == j->last_reported) return true;
  j->last_reported = std::move(signature);
  if (j->cb.on_status) {
    auto f = j->cb.on_status;
    f(qs);
    return find(id) != nullptr;
  }
  return true;
}

// ---------------------------------------------------------------- result

void FalQueue::fetch_result(JobId id) {
  Job* j = find(id);
  if (!j) return;
  j->phase = Job::Phase::fetching;
  RetryPolicy policy = opt_.result;
  // The job failed on fal: its result answers that failure every time; only a network hiccup
  // is worth another try.
  if (j->completed_status.contains("error") && !j->completed_status["error"].is_null()) policy.codes.clear();
  auto alive = std::weak_ptr<int>(alive_);
  j->call = RetryingCall::start(
      loop_, api_request("GET", fal_url::result(config_, j->ep, j->request_id)), policy,
      [this, alive, id](HttpResponse& r, int) {
        if (!alive.expired()) on_result_done(id, r);
      },
      [this, alive, id](const HttpResponse& r) {
        if (alive.expired()) return;
        if (Job* j = find(id)) observe(*j, r);
      });
}

void FalQueue::on_result_done(JobId id, HttpResponse& r) {
  Job* j = find(id);
  if (!j) return;
  j->call.reset();
  const bool failed_on_fal = j->completed_status.contains("error") && !j->completed_status["error"].is_null();
  if (r.ok()) {
    if (failed_on_fal) {
      // COMPLETED with an error is a failure whatever the result call says.
      FalError e = error_from_completed_status(j->completed_status, j->request_id);
      e.job_failed = true;
      finish_error(id, std::move(e));
      return;
    }
    json out = json::parse(r.body, nullptr, false);
    if (out.is_discarded()) {
      finish_error(id, FalError{FalError::Kind::server, r.status, j->request_id, "result is not JSON", {}, "", true});
      return;
    }
    finish_result(id, std::move(out));
    return;
  }
  FalError e = failure_from(r, "result", j->request_id);
  if (failed_on_fal && e.error_type.empty()) e.error_type = j->completed_status.value("error_type", "");
  // After COMPLETED, the result call answers with the model's own status: an error there is
  // the job's verdict when fal said so, or when it is a client error (422 and the like).
  e.job_failed = failed_on_fal || (r.status >= 400 && r.status < 500 && r.status != 429 && r.status != 408);
  finish_error(id, std::move(e));
}

// ---------------------------------------------------------------- endings

void FalQueue::observe(Job& job, const HttpResponse& r) {
  auto units = r.header("x-fal-billable-units");
  if (units.empty()) return;
  job.meta.billable_units = units;
  char* end = nullptr;
  double v = std::strtod(units.c_str(), &end);
  if (end && end != units.c_str()) job.meta.billable_units_value = v;
}

void FalQueue::stop_activity(Job& j) {
  if (j.stream_transfer) loop_.cancel(j.stream_transfer);
  if (j.call) j.call->cancel();
  if (j.poll_timer) loop_.cancel_timer(j.poll_timer);
  if (j.submit_timer) loop_.cancel_timer(j.submit_timer);
  if (j.deadline) loop_.cancel_timer(j.deadline);
  j.stream_transfer = j.poll_timer = j.submit_timer = j.deadline = 0;
  j.call.reset();
  j.stream_events.clear();
}

void FalQueue::finish_error(JobId id, FalError e) {
  auto it = jobs_.find(id);
  if (it == jobs_.end() || it->second->abandoned) return;
  Job& j = *it->second;
  stop_activity(j);
  if (e.request_id.empty()) e.request_id = j.request_id;
  auto cb = std::move(j.cb.on_error);
  if (j.submit_transfer) j.abandoned = true;  // keep it until the submit answers
  else jobs_.erase(it);
  if (cb) cb(e);
}

void FalQueue::finish_result(JobId id, json output) {
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return;
  Job& j = *it->second;
  stop_activity(j);
  auto cb = std::move(j.cb.on_result);
  ResultMeta meta = std::move(j.meta);
  jobs_.erase(it);
  if (cb) cb(std::move(output), meta);
}

void FalQueue::on_deadline(JobId id) {
  Job* j = find(id);
  if (!j) return;
  j->deadline = 0;
  // Re-attached after its time ran out, its state not known yet: the first status decides (a
  // job that completed meanwhile is paid for, and its result is fetched).
  if (j->attached && !j->status_known) {
    j->deadline_passed = true;
    return;
  }
  char msg[96];
  std::snprintf(msg, sizeof msg, "client timeout: no result after %g s; cancel sent", j->opt.client_timeout_s);
  FalError e{FalError::Kind::timeout, 0, j->request_id, msg, {}, "client_timeout", true};
  // With a submit in flight the id is not known yet; finish_error keeps the job until the
  // answer comes and on_submit_done cancels it then.
  if (!j->request_id.empty()) send_cancel(j->ep, j->request_id, {});
  finish_error(id, std::move(e));
}

bool FalQueue::cancel(JobId id) {
  Job* j = find(id);
  if (!j) return false;
  FalError e{FalError::Kind::cancelled, 0, j->request_id, "cancelled by the client", {}, "client_cancelled", false};
  if (!j->request_id.empty()) send_cancel(j->ep, j->request_id, {});
  finish_error_later(id, std::move(e));
  return true;
}

// Reports from the loop, never from inside cancel() or withdraw(): callers may hold locks or
// iterate over their jobs.
void FalQueue::finish_error_later(JobId id, FalError e) {
  Job* j = find(id);
  if (!j) return;
  auto cb = std::move(j->cb.on_error);
  j->cb = {};
  finish_error(id, e);
  if (cb) {
    loop_.post([alive = std::weak_ptr<int>(alive_), cb = std::move(cb), e = std::move(e)] {
      if (!alive.expired()) cb(e);
    });
  }
}

bool FalQueue::withdraw(JobId id) {
  Job* j = find(id);
  if (!j || !j->submit_transfer || !j->request_id.empty() || loop_.may_have_sent(j->submit_transfer)) return false;
  loop_.cancel(j->submit_transfer);  // removed from curl before it sent a byte
  j->submit_transfer = 0;
  finish_error_later(id, FalError{FalError::Kind::cancelled, 0, "", "not sent: the submit was withdrawn before it left", {}, "", false});
  return true;
}

void FalQueue::cancel_request(const std::string& endpoint_id, const std::string& request_id,
                              std::function<void(const CancelOutcome&)> cb) {
  EndpointId ep;
  try {
    ep = parse_endpoint_id(endpoint_id);
  } catch (const std::exception& ex) {
    if (cb) {
      CancelOutcome o;
      o.error = FalError{FalError::Kind::rejected, 0, request_id, ex.what(), {}, "", false};
      loop_.post([alive = std::weak_ptr<int>(alive_), cb = std::move(cb), o] {
        if (!alive.expired()) cb(o);
      });
    }
    return;
  }
  send_cancel(ep, request_id, std::move(cb));
}

void FalQueue::send_cancel(const EndpointId& ep, const std::string& request_id,
                           std::function<void(const CancelOutcome&)> cb) {
  auto alive = std::weak_ptr<int>(alive_);
  auto holder = std::make_shared<std::shared_ptr<RetryingCall>>();
  *holder = RetryingCall::start(
      loop_, api_request("PUT", fal_url::cancel(config_, ep, request_id)), opt_.cancel,
      [this, alive, holder, request_id, cb = std::move(cb)](HttpResponse& r, int) {
        if (alive.expired()) return;
        std::erase(side_calls_, *holder);
        holder->reset();
        CancelOutcome o;
        o.ok = r.ok();
        o.http_status = r.status;
        json body = json::parse(r.body, nullptr, false);
        if (body.is_object() && body.contains("status") && body["status"].is_string())
          o.fal_status = body["status"].get<std::string>();
        if (!o.ok) o.error = failure_from(r, "cancel", request_id);
        if (cb) cb(o);
      });
  if (*holder && (*holder)->active()) side_calls_.push_back(*holder);
}

}  // namespace kr::net
