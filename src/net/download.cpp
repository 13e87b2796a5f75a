#include "net/download.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "net/fal_config.h"

namespace kr::net {

namespace fs = std::filesystem;

struct Downloader::Job {
  std::string url, dest, part;
  std::optional<std::uint64_t> expected;
  DoneFn done;
  ProgressFn progress;
  int failures = 0;
  FileSink::FileRef file;   // this attempt's .part, written and hashed by the sink's thread
  std::uint64_t bytes = 0;
  std::string local_error;  // disk trouble or size overflow seen inside the write callback
  Loop::TransferId transfer = 0;
  Loop::TimerId timer = 0;
  Loop::Clock::time_point last_byte;  // of the transfer in flight: a stalled one lends its slot

  void discard(FileSink& sink) {
    if (file) sink.discard(file);
    file.reset();
  }
};

namespace {

FalError download_error(std::string msg, int status = 0, bool retryable = false) {
  FalError e;
  e.kind = FalError::Kind::download;
  e.http_status = status;
  e.message = std::move(msg);
  e.retryable = retryable;
  return e;
}

}  // namespace

Downloader::Downloader(Loop& loop) : Downloader(loop, Options{}) {}
Downloader::Downloader(Loop& loop, Options options)
    : loop_(loop), opt_(std::move(options)), sink_(std::make_unique<FileSink>(loop)) {
  if (opt_.user_agent.empty()) opt_.user_agent = default_user_agent();
  if (opt_.max_transfers == 0) opt_.max_transfers = SIZE_MAX / 2;  // 0: no limit (room to add to)
}

Downloader::~Downloader() {
  alive_.reset();
  if (watch_timer_) loop_.cancel_timer(watch_timer_);
  for (auto& [id, j] : jobs_) {
    if (j->transfer) loop_.cancel(j->transfer);
    if (j->timer) loop_.cancel_timer(j->timer);
    j->discard(*sink_);
  }
  sink_.reset();  // joins its thread: nothing is written after this
}

Downloader::Id Downloader::download(const std::string& url, const std::string& dest_path,
                                    std::optional<std::uint64_t> expected_size, DoneFn cb, ProgressFn progress) {
  auto j = std::make_unique<Job>();
  j->url = url;
  j->dest = dest_path;
  j->part = dest_path + ".part";
  j->expected = expected_size;
  j->done = std::move(cb);
  j->progress = std::move(progress);
  const Id id = next_id_++;
  jobs_.emplace(id, std::move(j));
  loop_.post([this, alive = std::weak_ptr<int>(alive_), id] {
    if (!alive.expired()) attempt(id);
  });
  return id;
}

bool Downloader::cancel(Id id) {
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return false;
  const bool had_transfer = it->second->transfer != 0;
  if (had_transfer) loop_.cancel(it->second->transfer);
  if (it->second->timer) loop_.cancel_timer(it->second->timer);
  it->second->discard(*sink_);
  jobs_.erase(it);
  if (had_transfer) release_slot();
  return true;
}

// Two transfers at a time by default, first come first served. When 50 videos finish together,
// each is complete at its own turn instead of all of them at the end (the total takes no
// longer: the link, the disk or the hash is the limit either way), so each job reaches its
// file, and frees its slot, as early as it can. Two rather than one: the next request waits on
// the server (time to first byte) while the current body arrives. A transfer that has received
// nothing for slot_stall_ms lends its slot, so a stuck download does not hold up the others.
// Queued downloads start from the loop, never from inside the call that freed the slot.
bool Downloader::has_slot() const {
  std::size_t stalled = 0;
  const auto now = Loop::Clock::now();
  for (const auto& [id, j] : jobs_)
    if (j->transfer && now - j->last_byte > std::chrono::milliseconds(opt_.slot_stall_ms)) ++stalled;
  return running_ < opt_.max_transfers + stalled;
}

void Downloader::pump() {
  while (!queued_.empty() && has_slot()) {
    Id next = queued_.front();
    queued_.pop_front();
    attempt(next, true);
  }
  if (queued_.empty() && watch_timer_) {  // nothing waits: no reason to keep the loop busy
    loop_.cancel_timer(watch_timer_);
    watch_timer_ = 0;
  } else if (!queued_.empty() && !watch_timer_) {  // look again when a transfer may count as stalled
    watch_timer_ = loop_.after(opt_.slot_stall_ms, [this, alive = std::weak_ptr<int>(alive_)] {
      if (alive.expired()) return;
      watch_timer_ = 0;
      pump();
    });
  }
}

void Downloader::release_slot() {
  --running_;
  if (queued_.empty() || pump_posted_) return;
  pump_posted_ = true;
  loop_.post([this, alive = std::weak_ptr<int>(alive_)] {
    if (alive.expired()) return;
    pump_posted_ = false;
    pump();
  });
}

void Downloader::attempt(Id id, bool from_queue) {
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return;
  Job& j = *it->second;
  j.timer = 0;
  if (!has_slot() || (!from_queue && !queued_.empty())) {
    queued_.push_back(id);
    if (!from_queue) pump();  // starts the stall watch
    return;
  }
  if (j.url.empty() || j.dest.empty()) return fail(id, download_error("download: empty URL or destination"));
  std::error_code ec;
  fs::path parent = fs::path(j.dest).parent_path();
  if (!parent.empty()) fs::create_directories(parent, ec);
  if (ec) return fail(id, download_error("cannot create directory " + parent.string() + ": " + ec.message()));
  j.discard(*sink_);
  int fd = ::open(j.part.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return fail(id, download_error("cannot write " + j.part + ": " + std::strerror(errno)));
  j.file = sink_->open(fd, j.part);
  j.bytes = 0;
  j.local_error.clear();

  HttpRequest req;
  req.url = j.url;
  req.follow_redirects = true;
  req.connect_timeout_ms = opt_.connect_timeout_ms;
  req.stall_seconds = opt_.stall_seconds;
  req.buffer_size = 256 * 1024;  // a 16 KiB buffer meant 64 reads, callbacks and queue pushes per MiB
  req.headers = {"Accept: */*", "User-Agent: " + opt_.user_agent};  // never the fal key: any host
  auto alive = std::weak_ptr<int>(alive_);
  req.on_data = [this, alive, id](std::string_view chunk, const HttpResponse& head) {
    if (alive.expired()) return false;
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return false;
    Job& j = *it->second;
    if (j.expected && j.bytes + chunk.size() > *j.expected) {
      j.local_error = "more bytes than the expected " + std::to_string(*j.expected);
      return false;
    }
    if (!sink_->write(j.file, chunk)) {
      j.local_error = sink_->error(j.file);
      return false;
    }
    j.bytes += chunk.size();
    j.last_byte = Loop::Clock::now();
    if (j.progress) {
      std::optional<std::uint64_t> total = j.expected;
      if (!total && head.content_length >= 0) total = static_cast<std::uint64_t>(head.content_length);
      auto progress = j.progress;  // the callback may cancel, and so destroy, this job
      progress(j.bytes, total);
    }
    return true;
  };
  ++running_;
  j.last_byte = Loop::Clock::now();
  j.transfer = loop_.start(std::move(req), [this, alive, id](HttpResponse& r) {
    if (!alive.expired()) on_done(id, r);
  });
}

void Downloader::on_done(Id id, HttpResponse& r) {
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return;
  Job& j = *it->second;
  j.transfer = 0;
  release_slot();

  std::string problem;     // why this attempt did not produce the file
  bool retryable = false;  // whether another attempt could
  int status = r.status;
  if (!j.local_error.empty()) {
    problem = j.local_error;  // a disk error or an oversized body will not improve
  } else if (r.curl_code != CURLE_OK) {
    problem = r.curl_code == CURLE_PARTIAL_FILE ? "truncated download: " + r.error : "download failed: " + r.error;
    retryable = is_transient_network_error(r.curl_code);
  } else if (r.status < 200 || r.status >= 300) {
    problem = "download answered HTTP " + std::to_string(r.status);
    retryable = opt_.policy.codes.count(r.status) > 0;
  } else if (r.content_length >= 0 && j.bytes != static_cast<std::uint64_t>(r.content_length)) {
    problem = "truncated download: " + std::to_string(j.bytes) + " of " + std::to_string(r.content_length) + " bytes";
    retryable = true;
  } else if (j.expected && j.bytes != *j.expected) {
    problem = "size mismatch: got " + std::to_string(j.bytes) + " bytes, expected " + std::to_string(*j.expected);
    retryable = true;  // a close-delimited body cut short looks exactly like this
  }

  if (problem.empty()) {
    // Checked: the sink closes it and renames it into place, then on_written reports it.
    // No fsync, of the file or of its directory: on the loop thread it stalled every other
    // transfer (a video is many MiB to flush). The rename alone is atomic against a crash of
    // the process: the name holds either nothing or the whole checked file. Against a power
    // loss the caller does not rely on the file: the state store records its size and SHA-256
    // and checks both before reusing it, so a file lost or cut short is downloaded again from
    // the stored result (StateStore::claim → Download), at no cost on fal.
    sink_->finish(j.file, j.dest, [this, alive = std::weak_ptr<int>(alive_), id](const FileSink::Outcome& o) {
      if (!alive.expired()) on_written(id, o);
    });
    j.file.reset();
    return;
  }

  j.discard(*sink_);
  if (retryable && j.failures < opt_.policy.max_retries) {
    Outcome o = Outcome::from(r);
    const double delay = opt_.policy.delay_ms(j.failures, o);
    ++j.failures;
    j.timer = loop_.after(delay, [this, alive = std::weak_ptr<int>(alive_), id] {
      if (!alive.expired()) attempt(id);
    });
    return;
  }
  FalError e = download_error(problem, status, retryable);
  if (r.curl_code != CURLE_OK && r.curl_code != CURLE_PARTIAL_FILE && j.local_error.empty())
    e.kind = FalError::Kind::network;
  fail(id, std::move(e));
}

void Downloader::on_written(Id id, const FileSink::Outcome& o) {
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return;  // cancelled meanwhile
  if (!o.error.empty()) return fail(id, download_error(o.error));  // the disk will not improve
  DownloadResult res{it->second->dest, it->second->bytes, o.sha256};
  auto cb = std::move(it->second->done);
  jobs_.erase(it);
  if (cb) cb(res);
}

void Downloader::fail(Id id, FalError e) {
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return;
  it->second->discard(*sink_);
  auto cb = std::move(it->second->done);
  jobs_.erase(it);
  if (cb) cb(e);
}

}  // namespace kr::net
