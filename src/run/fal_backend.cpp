#include "run/fal_backend.h"

#include "core/media.h"
#include "core/validate.h"

namespace kr::run {

struct FalBackend::Active {
  net::FalQueue::JobId queue_id = 0;
  net::Downloader::Id download_id = 0;
  int uploads_pending = 0;
  bool failed = false;
  json sent;  // the input with local files replaced by their fal URLs
};

JobError job_error(const net::FalError& e) {
  JobError j;
  switch (e.kind) {
    case net::FalError::Kind::auth: j.kind = ErrorKind::auth; break;
    case net::FalError::Kind::rejected: j.kind = ErrorKind::rejected; break;
    case net::FalError::Kind::rate_limited: j.kind = ErrorKind::rate_limited; break;
    case net::FalError::Kind::server: j.kind = ErrorKind::server; break;
    case net::FalError::Kind::network: j.kind = ErrorKind::network; break;
    case net::FalError::Kind::timeout: j.kind = ErrorKind::timeout; break;
    case net::FalError::Kind::cancelled: j.kind = ErrorKind::cancelled; break;
    case net::FalError::Kind::unknown_submit: j.kind = ErrorKind::unknown_submit; break;
    case net::FalError::Kind::download: j.kind = ErrorKind::download; break;
  }
  j.final_on_fal = e.job_failed;
  j.request_id = e.request_id;
  switch (e.kind) {
    case net::FalError::Kind::rejected:
      j.message = "rejected by fal" + (e.http_status ? " (" + std::to_string(e.http_status) + ")" : std::string());
      if (e.details.empty()) j.message += ": " + e.message;
      else j.lines = e.lines();
      break;
    case net::FalError::Kind::auth:
      j.message = "fal refused the key (" + std::to_string(e.http_status) + "): " + e.message;
      j.advice = "check FAL_KEY (or FAL_KEY_ID and FAL_KEY_SECRET)";
      break;
    case net::FalError::Kind::unknown_submit:
      j.message = e.message;
      j.advice = "not resubmitted, to avoid paying twice. Check your requests at https://fal.ai/dashboard; "
                 "if no job was created, run again with --resubmit-unknown";
      break;
    default:
      j.message = e.message;
      if (e.http_status && e.message.find("HTTP " + std::to_string(e.http_status)) == std::string::npos)
        j.message += " (HTTP " + std::to_string(e.http_status) + (e.error_type.empty() ? "" : ", " + e.error_type) + ")";
      else if (!e.error_type.empty()) j.message += " (" + e.error_type + ")";
      if (e.kind == net::FalError::Kind::timeout && e.error_type == "request_timeout")
        j.advice = "fal did not start it within its start_timeout and ended it before any inference";
      // fal's CDN keeps files for a limited time: a stored result may outlive its video.
      if (e.kind == net::FalError::Kind::download && (e.http_status == 403 || e.http_status == 404 || e.http_status == 410))
        j.advice = "fal's CDN no longer serves this video; run with --fresh (or give the job a new take) to generate it "
                   "again, at full price";
      // Lost touch with a job fal accepted: the runner keeps its row `submitted`, so a re-run
      // re-attaches to it instead of paying again.
      const bool trouble = e.kind == net::FalError::Kind::network || e.kind == net::FalError::Kind::server ||
                           e.kind == net::FalError::Kind::rate_limited;
      if (trouble && !e.job_failed && !e.request_id.empty())
        j.advice = "fal accepted this job and may still run it: run the script again to pick it up (it is not submitted again)";
  }
  return j;
}

namespace {
net::FalQueue::Options queue_options(const net::FalConfig& c) {
  net::FalQueue::Options o;
  o.follow_outage_ms = c.follow_outage_s * 1000;
  return o;
}
}  // namespace

FalBackend::FalBackend(net::FalConfig config, std::filesystem::path out_dir)
    : out_dir_(std::move(out_dir)), queue_(loop_, config, queue_options(config)), storage_(loop_, config), downloader_(loop_) {
  loop_.set_ca_bundle(config.ca_bundle);
  loop_.set_before_io([this] {
    if (hooks_.before_io) hooks_.before_io();
  });
}

FalBackend::~FalBackend() = default;

bool FalBackend::busy() const { return loop_.busy() || !active_.empty(); }

void FalBackend::poll(int max_wait_ms) { loop_.run_once(max_wait_ms); }

void FalBackend::start(Job& job) {
  auto& a = active_[&job];
  a = std::make_unique<Active>();
  switch (job.resume) {
    case Resume::submit: upload_then_submit(job); break;
    case Resume::attach: {
      job.attached = true;
      job.phase = Phase::queued;
      net::JobOptions opt;
      opt.client_timeout_s = job.timeout_s;  // counted from the submit, in whichever run it went out
      opt.elapsed_s = job.sent_age_s;
      a->queue_id = queue_.attach(job.endpoint->id, job.request_id, callbacks(job), opt);
      break;
    }
    case Resume::download: download(job); break;
  }
}

// Storage shares one upload between calls for the same content and keeps the URL, so the
// job's own upload_then_submit later finds it done (or joins it) instead of starting over.
void FalBackend::prefetch(const Job& job) {
  json input = job.input;
  for_each_media(*job.endpoint, input, [&](json& v, const std::string&, const std::string&) {
    const std::string file = local_media_path(v.get<std::string>());
    if (!file.empty()) storage_.upload_file(file, media_content_type(file), [](const net::Result<std::string>&) {});
  });
}

// Local paths become fal storage URLs; the same file content is uploaded once per run.
void FalBackend::upload_then_submit(Job& job) {
  Active& a = *active_[&job];
  a.sent = job.input;
  std::vector<std::pair<json*, std::string>> locals;
  for_each_media(*job.endpoint, a.sent, [&](json& v, const std::string&, const std::string& path) {
    if (!is_remote_url(v.get<std::string>())) locals.push_back({&v, path});
  });
  if (locals.empty()) return submit(job, a.sent);
  job.phase = Phase::uploading;
  a.uploads_pending = static_cast<int>(locals.size());
  if (hooks_.event) hooks_.event(job, JobEvent::status);
  for (auto& [slot, path] : locals) {
    const std::string file = local_media_path(slot->get<std::string>());
    storage_.upload_file(file, media_content_type(file), [this, &job, slot = slot, path = path, file](const net::Result<std::string>& r) {
      auto it = active_.find(&job);
      if (it == active_.end() || it->second->failed) return;
      Active& a = *it->second;
      if (!r.ok()) {
        a.failed = true;
        net::FalError e = r.error();
        e.message = "upload of " + file + " (" + path + ") failed: " + e.message;
        return fail(job, e);
      }
      *slot = r.value();
      if (--a.uploads_pending == 0) submit(job, a.sent);
    });
  }
}

void FalBackend::submit(Job& job, json input) {
  job.phase = Phase::submitting;
  net::JobOptions opt;
  opt.client_timeout_s = job.timeout_s;
  opt.start_timeout_s = job.start_timeout_s;
  if (job.low_priority) opt.priority = "low";
  active_[&job]->queue_id = queue_.start(job.endpoint->id, std::move(input), callbacks(job), opt);
}

net::JobCallbacks FalBackend::callbacks(Job& job) {
  net::JobCallbacks cb;
  cb.on_sending = [this, &job] {
    job.phase = Phase::submitting;
    if (hooks_.event) hooks_.event(job, JobEvent::sending);
    return !job.send_refused;  // refused: nothing leaves, and fail() reports why
  };
  cb.on_not_created = [this, &job] {
    if (hooks_.event) hooks_.event(job, JobEvent::not_created);
  };
  cb.on_submitted = [this, &job](const std::string& id) {
    job.request_id = id;
    job.phase = Phase::queued;
    if (hooks_.event) hooks_.event(job, JobEvent::submitted);
  };
  cb.on_status = [this, &job](const net::QueueStatus& s) {
    if (s.state == net::QueueStatus::State::in_queue) {
      job.phase = Phase::queued;
      job.queue_position = s.queue_position;
    } else if (s.state == net::QueueStatus::State::in_progress) {
      job.phase = Phase::running;
      job.queue_position = -1;
    }
    if (!s.new_logs.empty()) job.last_log = s.new_logs.back().message;
    if (hooks_.event) hooks_.event(job, JobEvent::status);
  };
  cb.on_result = [this, &job](json output, const net::ResultMeta& meta) {
    job.output = std::move(output);
    job.billable_units = meta.billable_units_value;
    if (!meta.request_id.empty()) job.request_id = meta.request_id;
    if (hooks_.event) hooks_.event(job, JobEvent::result);
    download(job);
  };
  cb.on_error = [this, &job](const net::FalError& e) { fail(job, e); };
  return cb;
}

void FalBackend::download(Job& job) {
  const json& out = job.output;
  if (!out.is_object() || !out.contains("video") || !out["video"].is_object() || !out["video"].contains("url") ||
      !out["video"]["url"].is_string()) {
    net::FalError e;
    e.kind = net::FalError::Kind::server;
    e.request_id = job.request_id;
    e.message = "fal's result has no video.url: " + out.dump().substr(0, 200);
    return fail(job, e);
  }
  job.phase = Phase::downloading;
  job.video_url = out["video"]["url"];
  std::optional<std::uint64_t> expected;
  if (out["video"].contains("file_size") && out["video"]["file_size"].is_number_unsigned())
    expected = out["video"]["file_size"].get<std::uint64_t>();
  // The file name comes from the job name, never from the server.
  std::string dest = video_dest(job).string();
  active_[&job]->download_id = downloader_.download(
      job.video_url, dest, expected,
      [this, &job](const net::Result<net::DownloadResult>& r) {
        if (!r.ok()) return fail(job, r.error());
        job.video_path = r.value().path;
        job.video_bytes = r.value().bytes;
        job.video_sha256 = r.value().sha256;
        job.phase = Phase::done;
        finish(job);
      },
      [this, &job](std::uint64_t bytes, std::optional<std::uint64_t> total) {
        job.download_done = bytes;
        job.download_total = total.value_or(0);
        if (hooks_.event) hooks_.event(job, JobEvent::progress);
      });
}

// A hard link: the same bytes under the job's own name, at no cost in disk or time; a copy where
// no link can be made (another file system). Through a temporary name and a rename, so the
// job's file is never seen half-made, and an older file of that name is replaced whole.
bool FalBackend::adopt(Job& job) {
  namespace fs = std::filesystem;
  if (job.video_path.empty()) return false;
  const fs::path from = job.video_path, to = video_dest(job);
  std::error_code ec;
  if (fs::equivalent(from, to, ec)) return false;  // already its own (or the same file)
  const fs::path part = to.string() + ".part";
  fs::create_directories(to.parent_path(), ec);
  fs::remove(part, ec);
  ec.clear();
  fs::create_hard_link(from, part, ec);
  if (ec) {
    ec.clear();
    fs::copy_file(from, part, ec);
  }
  if (!ec) fs::rename(part, to, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(part, ignored);
    job.warnings.push_back({"video.path", "the stored video " + from.string() + " could not be placed at " +
                                              to.string() + " (" + ec.message() + "); it stays where it is"});
    return false;
  }
  job.video_path = to.string();
  return true;
}

void FalBackend::fail(Job& job, const net::FalError& e) {
  if (job.send_refused) {  // the runner refused or took back the send: its reason, not "cancelled"
    job.fail(std::move(*job.send_refused));
    job.send_refused.reset();
    job.phase = Phase::failed;
    finish(job);
    return;
  }
  job.fail(job_error(e));
  // Only a submit that fal accepted has a request id; a refused one (401, 422 at submit) does not.
  job.error->request_id = job.request_id;
  job.phase = e.kind == net::FalError::Kind::unknown_submit ? Phase::unknown
              : e.kind == net::FalError::Kind::cancelled     ? Phase::cancelled
                                                             : Phase::failed;
  finish(job);
}

void FalBackend::finish(Job& job) {
  active_.erase(&job);
  if (hooks_.finished) hooks_.finished(job);
}

bool FalBackend::withdraw(Job& job) {
  auto it = active_.find(&job);
  return it != active_.end() && it->second->queue_id && queue_.withdraw(it->second->queue_id);
}

void FalBackend::cancel(Job& job) {
  auto it = active_.find(&job);
  if (it == active_.end()) return;
  Active& a = *it->second;
  if (a.download_id) {
    // The video is paid for; let the download finish rather than throw it away.
    return;
  }
  if (a.queue_id && queue_.cancel(a.queue_id)) return;  // reports on_error(cancelled)
  if (a.uploads_pending > 0) {
    a.failed = true;
    net::FalError e;
    e.kind = net::FalError::Kind::cancelled;
    e.message = "cancelled before it was submitted";
    fail(job, e);
  }
}

std::vector<CancelReport> cancel_stored(StateStore& store, const net::FalConfig& config, const std::vector<JobRecord>& jobs) {
  std::vector<CancelReport> reports(jobs.size());
  net::Loop loop;
  loop.set_ca_bundle(config.ca_bundle);
  net::FalQueue queue(loop, config);
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    CancelReport& rep = reports[i];
    rep.job = jobs[i];
    if (rep.job.request_id.empty()) {
      rep.outcome = CancelReport::Outcome::no_request_id;
      continue;
    }
    queue.cancel_request(rep.job.endpoint, rep.job.request_id, [&store, &rep](const net::CancelOutcome& o) {
      if (o.ok) {
        rep.outcome = CancelReport::Outcome::requested;
        rep.detail = o.fal_status.empty() ? "cancel requested" : o.fal_status;
        try {
          store.mark_cancelled(rep.job.key);
        } catch (const std::exception&) {
          // fal has it; the row may have moved on meanwhile (e.g. another process finished it)
        }
      } else if (o.fal_status == "ALREADY_COMPLETED") {
        rep.outcome = CancelReport::Outcome::already_completed;
      } else {
        rep.outcome = CancelReport::Outcome::failed;
        rep.detail = o.error ? o.error->describe() : o.fal_status;
      }
    });
  }
  loop.run();
  return reports;
}

}  // namespace kr::run
