#include "run/runner.h"

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "core/validate.h"
#include "net/sha256.h"

namespace kr::run {

const char* phase_name(Phase p) {
  switch (p) {
    case Phase::waiting: return "waiting";
    case Phase::uploading: return "uploading";
    case Phase::submitting: return "submitting";
    case Phase::queued: return "queued";
    case Phase::running: return "running";
    case Phase::downloading: return "downloading";
    case Phase::done: return "done";
    case Phase::failed: return "failed";
    case Phase::unknown: return "unknown";
    case Phase::cancelled: return "cancelled";
  }
  return "?";
}

const char* error_kind_name(ErrorKind k) {
  switch (k) {
    case ErrorKind::rejected: return "rejected";
    case ErrorKind::auth: return "auth";
    case ErrorKind::rate_limited: return "rate_limited";
    case ErrorKind::server: return "server";
    case ErrorKind::network: return "network";
    case ErrorKind::timeout: return "timeout";
    case ErrorKind::cancelled: return "cancelled";
    case ErrorKind::unknown_submit: return "unknown_submit";
    case ErrorKind::download: return "download";
    case ErrorKind::budget: return "budget";
    case ErrorKind::state: return "state";
    case ErrorKind::claim_lost: return "claim_lost";
  }
  return "?";
}

std::string request_key(const std::string& endpoint_id, const json& input, int take) {
  // nlohmann's json object is an ordered map: dump() is canonical (sorted keys, no spaces).
  std::string canonical = endpoint_id;
  canonical += '\n';
  canonical += input.dump();
  canonical += '\n';
  canonical += std::to_string(take);
  return net::sha256_hex(canonical);
}

namespace {

std::size_t mix(std::size_t h, std::size_t v) { return (h ^ v) * 0x100000001b3ULL + (h >> 29); }

// A walk over the value feeding one running hash (nlohmann's std::hash<json> combines a hash
// per node and costs twice as much on a plan's 100,000 requests). Only equal values must hash
// equal; equality is checked after.
std::size_t feed(std::size_t h, const json& v) {
  using T = json::value_t;
  h = mix(h, static_cast<std::size_t>(v.type()));
  switch (v.type()) {
    case T::string: return mix(h, std::hash<std::string_view>{}(v.get_ref<const std::string&>()));
    case T::boolean: return mix(h, v.get<bool>());
    case T::number_integer: return mix(h, static_cast<std::size_t>(v.get<std::int64_t>()));
    case T::number_unsigned: return mix(h, static_cast<std::size_t>(v.get<std::uint64_t>()));
    case T::number_float: return mix(h, std::hash<double>{}(v.get<double>()));
    case T::array:
      for (auto& e : v) h = feed(h, e);
      return mix(h, v.size());
    case T::object:
      for (auto& [k, e] : v.get_ref<const json::object_t&>()) h = feed(mix(h, std::hash<std::string_view>{}(k)), e);
      return mix(h, v.size());
    default: return h;
  }
}

}  // namespace

std::size_t identity_hash(const Endpoint& endpoint, const json& canonical, int take) {
  std::size_t h = mix(reinterpret_cast<std::uintptr_t>(&endpoint), static_cast<std::size_t>(take));
  return feed(h, canonical);
}

std::string safe_name(const std::string& name) {
  std::string out;
  for (unsigned char c : name) out += (std::isalnum(c) || c == '-' || c == '_' || c == '.') ? char(c) : '_';
  while (!out.empty() && out.front() == '.') out.erase(out.begin());
  return out.empty() ? "job" : out;
}

// A local file enters the job's identity by its content, not its path: an edited image is a
// new job, a moved one is not.
const json& Runner::canonical_media(const Endpoint& ep, const json& input, json& scratch) {
  bool local = false;
  for_each_media(ep, const_cast<json&>(input), [&](json& v, const std::string&, const std::string&) {
    local = local || !is_remote_url(v.get_ref<const std::string&>());
  });
  if (!local) return input;
  scratch = input;
  for_each_media(ep, scratch, [&](json& v, const std::string&, const std::string&) {
    const std::string path = local_media_path(v.get<std::string>());
    if (path.empty()) return;
    std::error_code ec;
    auto size = std::filesystem::file_size(path, ec);
    auto mtime = std::filesystem::last_write_time(path, ec);
    std::string stamp = path + "|" + std::to_string(size) + "|" + std::to_string(mtime.time_since_epoch().count());
    auto it = file_hashes_.find(stamp);
    if (it == file_hashes_.end()) it = file_hashes_.emplace(stamp, (ec ? std::nullopt : net::sha256_file(path)).value_or("unreadable:" + path)).first;
    v = "sha256:" + it->second;
  });
  return scratch;
}

Runner::Runner(RunnerOptions opts, std::unique_ptr<Backend> backend)
    : opts_(std::move(opts)), backend_(std::move(backend)), t0_(std::chrono::steady_clock::now()) {
  ctx_.prices = opts_.prices;
  ctx_.elements = &elements_;
  ctx_.default_endpoint = opts_.default_endpoint;
  // before_io: the sent marks and request ids recorded since the last round of I/O reach the
  // disk in one fsync before any request leaves.
  backend_->set_hooks({[this](Job& j, JobEvent e) { on_event(j, e); }, [this](Job& j) { on_finished(j); },
                       [this] { sync_before_io(); }});
}

// If the fsync fails, a power loss could forget that those submits were sent, and the next run
// would pay for them again: they are taken back before they leave. Request ids that did not
// reach the disk stay pending and are synced next round (their jobs are on fal already).
void Runner::sync_before_io() {
  if (!opts_.store) return;
  try {
    opts_.store->sync();
    unsynced_sends_.clear();
  } catch (const std::exception& e) {
    auto jobs = std::move(unsynced_sends_);
    unsynced_sends_.clear();
    const std::string why = std::string("state store: ") + e.what();
    for (Job* job : jobs) {
      if (finished(job->phase)) continue;
      job->send_refused = std::make_unique<JobError>(JobError{
          ErrorKind::state, "not sent: the state store could not make the send durable (" + why + ")", {}, "",
          "nothing was sent; free disk space or fix the disk, then run again"});
      if (!backend_->withdraw(*job)) {  // it has left after all: the sent mark stays
        job->send_refused.reset();
        continue;
      }
      job->sent = false;
      try { opts_.store->unmark_sent(job->key, "not sent: " + why); } catch (const std::exception&) {}
    }
  }
}

Runner::~Runner() = default;

double Runner::now() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
}

const CoreContext& Runner::context() const { return ctx_; }

Prepared Runner::check(const Request& req) const { return prepare(req, context()); }

// Why a job costing `cost` would break the budget, given what this run has committed so far.
std::optional<std::string> Runner::over_budget(const std::string& name, double cost) const {
  if (!opts_.budget || round_usd(spent_ + cost) <= round_usd(*opts_.budget)) return std::nullopt;
  return "job \"" + name + "\" costs " + format_usd(cost) + "; with " + format_usd(spent_) +
         " already committed this run it would exceed the budget of " + format_usd(*opts_.budget);
}

Job& Runner::submit(Request req) {
  if (stopping_) throw SubmitRefused(SubmitRefused::Why::stopped, {}, "the run is stopping (interrupted); no new jobs are started");
  Prepared p = prepare(req.endpoint, std::move(req.input), context());  // the job keeps the normalized input
  if (!p.ok()) {
    std::string summary = p.report.errors.empty() ? "invalid request" : p.report.errors.front().line();
    if (p.report.errors.size() > 1) summary += " (and " + std::to_string(p.report.errors.size() - 1) + " more)";
    throw SubmitRefused(SubmitRefused::Why::invalid, p.report.errors, summary);
  }
  json scratch;
  const json& canonical = canonical_media(*p.endpoint, p.input, scratch);
  std::string name = req.name.empty() ? "" : safe_name(req.name);

  // Same request (and the same name, if one was given): the same job, never paid twice. The
  // hash finds candidates; equality of the canonical input decides.
  std::size_t hash = identity_hash(*p.endpoint, canonical, req.take);
  Job* same = nullptr;
  by_identity_.for_each(hash, [&](Job* j) {
    bool identical = j->endpoint == p.endpoint && j->take == req.take &&
                     (j->media_identity.is_null() ? j->input : j->media_identity) == canonical;
    if (identical && (!same || j->id < same->id)) same = j;
  });
  if (same && (name.empty() || same->name == name)) return *same;
  if (const Job* taken = name.empty() ? nullptr : job_named(name)) {
    const Job& other = *taken;
    throw SubmitRefused(SubmitRefused::Why::name, {{"name", "\"" + name + "\" is already used by another job" +
                                            (other.origin.empty() ? "" : " (" + other.origin + ")") +
                                            "; give each job its own name, or a take to vary it"}},
                        "name: \"" + name + "\" is already used by another job");
  }
  if (name.empty()) {
    // <script>_001, _002, … in submission order, skipping names the script chose itself.
    for (std::size_t n = jobs_.size() + 1; name.empty() || job_named(name); ++n) {
      char buf[24];
      std::snprintf(buf, sizeof buf, "_%03zu", n);
      name = safe_name(opts_.script) + buf;
    }
  }

  // The SHA-256 key names the job in the state store and the manifest; a plan without them
  // (offline) needs no key, and skips the canonical dump and the hash.
  std::string key = opts_.store || opts_.manifest ? request_key(p.endpoint->id, canonical, req.take) : std::string();
  double cost = predicted_charge(key, p.cost->usd);
  if (cost > 0)
    if (auto msg = over_budget(name, cost)) throw SubmitRefused(SubmitRefused::Why::budget, {{"budget", *msg}}, "budget: " + *msg);

  auto job = std::make_unique<Job>();
  job->id = jobs_.size() + 1;
  job->name = name;
  job->key = std::move(key);
  if (&canonical == &scratch) job->media_identity = std::move(scratch);
  job->endpoint = p.endpoint;
  job->input = std::move(p.input);
  job->cost = *p.cost;
  job->warnings = p.report.warnings;
  job->charged = cost;
  job->take = req.take;
  job->timeout_s = req.timeout_s;
  job->start_timeout_s = req.start_timeout_s;
  job->low_priority = req.low_priority;
  job->origin = std::move(req.origin);
  job->t_created = now();
  spent_ = round_usd(spent_ + cost);
  Job& ref = *job;
  by_identity_.insert(hash, &ref);
  by_name_.insert(std::hash<std::string_view>{}(ref.name), &ref);
  jobs_.push_back(std::move(job));
  waiting_.push_back(&ref);
  ++unfinished_;
  notify(ref);
  return ref;
}

Job* Runner::job_named(const std::string& name) const {
  Job* found = nullptr;
  by_name_.for_each(std::hash<std::string_view>{}(name), [&](Job* j) { if (j->name == name) found = j; });
  return found;
}

void Runner::tick(int max_wait_ms) {
  double t = now();
  if (opts_.store && t - last_heartbeat_ > 3) {
    last_heartbeat_ = t;
    try { opts_.store->heartbeat(); } catch (const std::exception&) {}  // next tick tries again
  }
  for (auto it = parked_.begin(); it != parked_.end();) {
    if (it->second > t || stopping_) { ++it; continue; }
    waiting_.push_front(it->first);
    it = parked_.erase(it);
  }
  start_waiting();
  // Waiters may submit more jobs or finish the script, so they run after I/O, outside the
  // backend's callbacks.
  backend_->poll(done_queue_.empty() ? max_wait_ms : 0);
  start_waiting();  // slots freed during the poll are refilled now, not a tick later
  flush_manifest(false);
  auto ready = std::move(done_queue_);
  done_queue_.clear();
  for (Job* job : ready) {
    auto waiters = std::move(job->waiters);
    job->waiters.clear();
    for (auto& w : waiters) w(*job);
  }
}

void Runner::start_waiting() {
  while (!stopping_ && !waiting_.empty() && (in_flight_ < opts_.concurrency || !backend_->limited())) {
    Job* job = waiting_.front();
    waiting_.pop_front();
    if (opts_.store && !claim(*job)) continue;
    // A stored result only needs its download: nothing runs on fal, so it takes no slot.
    job->holds_slot = job->resume != Resume::download;
    if (job->holds_slot) ++in_flight_;
    backend_->start(*job);
  }
  // The next jobs in line begin their uploads while the slots are busy, so that a freed slot
  // is refilled by a submit, not by an upload. Only jobs that will be submitted (charged: the
  // store has no result for them) and no further ahead than the slots they will fill.
  if (stopping_ || !backend_->limited()) return;
  int ahead = 0;
  for (Job* job : waiting_) {
    if (ahead++ >= opts_.concurrency) break;
    if (job->prefetched || job->charged <= 0) continue;
    job->prefetched = true;
    backend_->prefetch(*job);
  }
}

bool Runner::idle() const { return pending() == 0 && done_queue_.empty() && !backend_->busy(); }

double Runner::predicted_charge(const std::string& key, double cost) const {
  if (!opts_.store) return cost;
  try {
    auto row = opts_.store->get(key);
    if (!row) return cost;
    switch (row->state) {
      case JobState::Failed:
      case JobState::Cancelled: return cost;
      case JobState::Unknown: return opts_.resubmit_unknown ? cost : 0;
      default: return opts_.fresh && row->created_ms < opts_.store->now_ms() - 1000 * now() ? cost : 0;
    }
  } catch (const std::exception&) {
    return cost;  // budget as if it will be paid
  }
}

bool Runner::claim(Job& job) {
  JobIntent intent;
  intent.key = job.key;
  intent.name = job.name;
  intent.script = opts_.script;
  intent.endpoint = job.endpoint->id;
  intent.input = job.input;
  intent.take = job.take;
  intent.cost_usd = job.cost.usd;
  intent.fresh = opts_.fresh;
  intent.resubmit_unknown = opts_.resubmit_unknown;
  Claim c;
  try {
    c = opts_.store->claim(intent);
  } catch (const std::exception& e) {
    job.phase = Phase::failed;
    job.fail(JobError{ErrorKind::state, std::string("state store: ") + e.what(), {}, "", "nothing was sent"});
    finish_here(job);
    return false;
  }
  auto uncharge = [&] { spent_ = round_usd(spent_ - job.charged); job.charged = 0; };
  switch (c.action) {
    case Claim::Submit:
      if (job.charged == 0) {  // predicted free (e.g. a row that changed under us): charge now
        if (auto msg = over_budget(job.name, job.cost.usd)) {
          try { opts_.store->mark_failed(job.key, "refused by the budget before sending"); } catch (const std::exception&) {}
          job.phase = Phase::failed;
          job.fail(JobError{ErrorKind::budget, *msg, {}, "", ""});
          finish_here(job);
          return false;
        }
        job.charged = job.cost.usd;
        spent_ = round_usd(spent_ + job.charged);
      }
      job.resume = Resume::submit;
      return true;
    case Claim::Attach:
      uncharge();
      job.resume = Resume::attach;
      job.request_id = c.job.request_id;
      if (c.job.sent_ms) job.sent_age_s = std::max<std::int64_t>(0, opts_.store->now_ms() - *c.job.sent_ms) / 1000.0;
      return true;
    case Claim::Download:
      uncharge();
      job.resume = Resume::download;
      job.request_id = c.job.request_id;
      job.output = c.job.result;
      return true;
    case Claim::Reuse:
      uncharge();
      job.reused = true;
      job.request_id = c.job.request_id;
      job.output = c.job.result;
      for (auto& f : c.job.files) {
        if (f.role != "video") continue;
        job.video_path = f.path.string();
        job.video_sha256 = f.sha256;
        job.video_bytes = f.size;
      }
      // Its video under this job's name (out/<script>/<name>.mp4); the store then knows it
      // there, as it knows the row by its latest claim's name and script.
      if (backend_->adopt(job)) {
        try {
          opts_.store->add_file(job.key, "video", job.video_path, job.video_sha256, job.video_bytes);
        } catch (const std::exception& e) {
          store_warn(job, e);
        }
      }
      if (job.output.contains("video") && job.output["video"].is_object())
        job.video_url = job.output["video"].value("url", "");
      job.phase = Phase::done;
      finish_here(job);
      return false;
    case Claim::WaitOther:
      parked_.push_back({&job, now() + 1.0});
      return false;
    case Claim::Unknown:
      uncharge();
      job.request_id = c.job.request_id;
      job.phase = Phase::unknown;
      job.fail(JobError{ErrorKind::unknown_submit, c.reason, {}, c.job.request_id,
                           "not resubmitted, to avoid paying twice. Check your requests at https://fal.ai/dashboard; "
                           "if no job was created, run again with --resubmit-unknown"});
      finish_here(job);
      return false;
  }
  return false;
}

void Runner::finish_here(Job& job) {
  --unfinished_;
  job.t_done = now();
  done_queue_.push_back(&job);
  record_end(job);
  notify(job);
}

void Runner::store_warn(Job& job, const std::exception& e) {
  job.warnings.push_back({"state", std::string("state store: ") + e.what()});
}

// Each durable step is committed here, inside the backend's callback, before the backend
// hands its next request to curl. The two money steps are fsynced in one batch by the
// before_io hook, before curl sends anything: 50 submits at once cost one fsync, not 50.
void Runner::record(Job& job, JobEvent e) {
  StateStore* st = opts_.store;
  if (!st) return;
  try {
    switch (e) {
      case JobEvent::sending:
        st->mark_sent(job.key, StateStore::Durable::batched);
        unsynced_sends_.push_back(&job);
        return;
      case JobEvent::not_created: st->clear_sent(job.key); break;
      case JobEvent::submitted: st->mark_submitted(job.key, job.request_id, StateStore::Durable::batched); break;
      case JobEvent::result: st->store_result(job.key, job.output, job.billable_units); break;
      default: return;
    }
    manifest_dirty_.insert(job.key);
  } catch (const ClaimLost& ex) {
    store_warn(job, ex);
    job.send_refused = std::make_unique<JobError>(JobError{
        ErrorKind::claim_lost, "not sent: another klingrun process took this job over while this one stalled; it will run it", {}, "",
        "nothing was sent from this process; see `klingrun status`"});
  } catch (const std::exception& ex) {
    store_warn(job, ex);
    // A send the store cannot record must not leave: after a crash the next run would not
    // know it was sent, and would pay for it again.
    if (e == JobEvent::sending)
      job.send_refused = std::make_unique<JobError>(JobError{
          ErrorKind::state, std::string("not sent: the state store could not record the send (") + ex.what() + ")", {}, "",
          "nothing was sent; fix the state store (disk space, permissions, another process holding it), then run again"});
  }
}

// The manifest is rewritten whole (atomically, merged with other processes' entries) by the
// writer's background thread; the jobs that changed are handed over at most twice a second, and
// at the end of the run, which waits until they are on disk.
void Runner::flush_manifest(bool force) {
  if (!opts_.manifest || !opts_.store) return;
  double t = now();
  if (!manifest_dirty_.empty() && (force || t - last_manifest_ >= 0.5)) {
    last_manifest_ = t;
    std::vector<JobRecord> rows;
    try {
      for (auto& key : manifest_dirty_)
        if (auto row = opts_.store->get(key)) rows.push_back(std::move(*row));
      manifest_dirty_.clear();
      opts_.manifest->post(std::move(rows));  // a failed write keeps its rows for the next one
    } catch (const std::exception&) {
      // Kept dirty: the next flush tries again; the store, not the manifest, is the record.
    }
  }
  if (force) opts_.manifest->drain();
}

void Runner::record_end(Job& job) {
  StateStore* st = opts_.store;
  if (!st) return;
  try {
    auto row = st->get(job.key);
    if (!row) return;  // never claimed (e.g. dropped before it started)
    if (job.phase == Phase::done && !job.reused) {
      st->add_file(job.key, "video", job.video_path, job.video_sha256, job.video_bytes);
      st->mark_done(job.key);
    } else if (job.phase == Phase::unknown && row->state == JobState::Sending) {
      st->mark_unknown(job.key, job.error ? job.error->message : "outcome unknown");
    } else if (job.phase == Phase::cancelled && (row->state == JobState::Sending || row->state == JobState::Submitted || row->state == JobState::Unknown)) {
      st->mark_cancelled(job.key);
    } else if (job.phase == Phase::failed && job.error && job.error->kind != ErrorKind::state && job.error->kind != ErrorKind::budget &&
               job.error->kind != ErrorKind::claim_lost) {  // claim_lost: the row is another process's now
      // Once fal has accepted a job it may be running or done, and paid for: only fal's own
      // verdict marks it failed. Trouble reaching fal (status/result calls, a download) leaves
      // it submitted/completed, so the next run re-attaches or downloads instead of paying again.
      bool accepted = row->state == JobState::Submitted || row->state == JobState::Completed || row->state == JobState::Done;
      if (!accepted || job.error->final_on_fal) st->mark_failed(job.key, job.error->message);
    }
    manifest_dirty_.insert(job.key);
  } catch (const std::exception& ex) {
    store_warn(job, ex);
  }
}

std::size_t Runner::pending() const { return unfinished_; }

// A job that never reached the backend: cancelled here, its charge given back.
void Runner::drop_unstarted(Job& job, const char* why) {
  job.phase = Phase::cancelled;
  job.fail(JobError{ErrorKind::cancelled, why, {}, "", ""});
  spent_ = round_usd(spent_ - job.charged);
  job.charged = 0;
  --unfinished_;
  done_queue_.push_back(&job);
  notify(job);
}

void Runner::stop_starting() {
  stopping_ = true;
  for (Job* job : waiting_) drop_unstarted(*job, "not started: the run was interrupted");
  waiting_.clear();
  for (auto& [job, _] : parked_) drop_unstarted(*job, "not started: the run was interrupted (another process was running it)");
  parked_.clear();
}

void Runner::cancel_all() {
  stop_starting();
  for (auto& j : jobs_)
    if (!run::finished(j->phase)) backend_->cancel(*j);
}

void Runner::cancel(Job& job) {
  if (run::finished(job.phase)) return;
  if (auto it = std::find(waiting_.begin(), waiting_.end(), &job); it != waiting_.end()) {
    waiting_.erase(it);
    return drop_unstarted(job, "cancelled before it started");
  }
  auto parked = std::find_if(parked_.begin(), parked_.end(), [&](const auto& p) { return p.first == &job; });
  if (parked != parked_.end()) {
    parked_.erase(parked);
    return drop_unstarted(job, "cancelled before it started (another process was running it)");
  }
  backend_->cancel(job);
}

void Runner::release_slot(Job& job) {
  if (!job.holds_slot) return;
  job.holds_slot = false;
  --in_flight_;
}

void Runner::on_finished(Job& job) {
  release_slot(job);
  --unfinished_;
  job.t_done = now();
  record_end(job);
  done_queue_.push_back(&job);
  notify(job);
}

void Runner::on_event(Job& job, JobEvent e) {
  if (e == JobEvent::submitted && job.t_submitted == 0) job.t_submitted = now();
  if (job.phase == Phase::running && job.t_started == 0) job.t_started = now();
  if (e == JobEvent::result) job.t_completed = now();
  record(job, e);
  if (e == JobEvent::sending && !job.send_refused) job.sent = true;  // a refused send never leaves
  if (e == JobEvent::not_created) job.sent = false;
  // The concurrency limit counts jobs on fal. Once fal has answered with the result, the job
  // is off fal and only its download remains (the backend runs those two at a time), so the
  // next job is submitted now instead of after the download: a wave's downloads overlap the
  // next wave's run time.
  if (e == JobEvent::result) release_slot(job);
  notify(job);
}

void Runner::notify(const Job& job) {
  for (auto& fn : listeners_) fn(job);
}

json Runner::plan() const {
  json jobs = json::array();
  double total = 0;
  for (auto& j : jobs_) {
    jobs.push_back({{"name", j->name},
                    {"endpoint", j->endpoint->id},
                    {"input", j->input},
                    {"cost_usd", j->cost.usd},
                    {"seconds", j->cost.seconds},
                    {"audio", j->cost.audio},
                    {"state", phase_name(j->phase)}});
    if (j->take) jobs.back()["take"] = j->take;
    if (!j->origin.empty()) jobs.back()["origin"] = j->origin;
    total += j->cost.usd;
  }
  return {{"script", opts_.script}, {"jobs", jobs}, {"total_usd", round_usd(total)}};
}

void Runner::write_plan() const {
  std::filesystem::create_directories(opts_.out_dir);
  auto path = opts_.out_dir / "plan.json";
  auto tmp = path;
  tmp += ".tmp";
  {
    std::ofstream f(tmp);
    f << plan().dump(2) << "\n";
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace kr::run
