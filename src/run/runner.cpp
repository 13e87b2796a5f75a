// The tick loop: jobs start as slots free up, the backend is driven, finished jobs reach their
// waiters; and stopping, cancelling, and the events that keep listeners informed.
#include "run/runner.h"

#include <algorithm>

namespace kr::run {

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

Runner::~Runner() = default;

double Runner::now() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
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

void Runner::finish_here(Job& job) {
  --unfinished_;
  job.t_done = now();
  done_queue_.push_back(&job);
  record_end(job);
  notify(job);
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

}  // namespace kr::run
