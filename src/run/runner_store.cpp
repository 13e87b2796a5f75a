// The runner and the state store: claims before a job starts, each durable step as it
// happens, the end of a job, and the manifest that mirrors the store.
#include "run/runner.h"

#include <algorithm>

namespace kr::run {

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

}  // namespace kr::run
