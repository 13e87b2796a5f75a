#include "net/download.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "net/fal_config.h"
#include "net/sha256.h"

namespace kr::net {

namespace fs = std::filesystem;

struct Downloader::Job {
  std::string url, dest, part;
  std::optional<std::uint64_t> expected;
  DoneFn done;
  ProgressFn progress;
  int failures = 0;
  int fd = -1;
  Sha256 sha;
  std::uint64_t bytes = 0;
  std::string local_error;  // disk trouble or size overflow seen inside the write callback
  Loop::TransferId transfer = 0;
  Loop::TimerId timer = 0;

  void close_fd() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  void discard() {
    close_fd();
    ::unlink(part.c_str());
  }
};

namespace {

bool write_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

void fsync_dir_of(const std::string& path) {
  fs::path dir = fs::path(path).parent_path();
  int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

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
Downloader::Downloader(Loop& loop, Options options) : loop_(loop), opt_(std::move(options)) {
  if (opt_.user_agent.empty()) opt_.user_agent = default_user_agent();
}

Downloader::~Downloader() {
  alive_.reset();
  for (auto& [id, j] : jobs_) {
    if (j->transfer) loop_.cancel(j->transfer);
    if (j->timer) loop_.cancel_timer(j->timer);
    j->discard();
  }
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
  if (it->second->transfer) loop_.cancel(it->second->transfer);
  if (it->second->timer) loop_.cancel_timer(it->second->timer);
  it->second->discard();
  jobs_.erase(it);
  return true;
}

void Downloader::attempt(Id id) {
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return;
  Job& j = *it->second;
  j.timer = 0;
  if (j.url.empty() || j.dest.empty()) return fail(id, download_error("download: empty URL or destination"));
  std::error_code ec;
  fs::path parent = fs::path(j.dest).parent_path();
  if (!parent.empty()) fs::create_directories(parent, ec);
  if (ec) return fail(id, download_error("cannot create directory " + parent.string() + ": " + ec.message()));
  j.close_fd();
  j.fd = ::open(j.part.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (j.fd < 0) return fail(id, download_error("cannot write " + j.part + ": " + std::strerror(errno)));
  j.sha.reset();
  j.bytes = 0;
  j.local_error.clear();

  HttpRequest req;
  req.url = j.url;
  req.follow_redirects = true;
  req.connect_timeout_ms = opt_.connect_timeout_ms;
  req.stall_seconds = opt_.stall_seconds;
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
    if (!write_all(j.fd, chunk.data(), chunk.size())) {
      j.local_error = "cannot write " + j.part + ": " + std::strerror(errno);
      return false;
    }
    j.sha.update(chunk.data(), chunk.size());
    j.bytes += chunk.size();
    if (j.progress) {
      std::optional<std::uint64_t> total = j.expected;
      if (!total && head.content_length >= 0) total = static_cast<std::uint64_t>(head.content_length);
      auto progress = j.progress;  // the callback may cancel, and so destroy, this job
      progress(j.bytes, total);
    }
    return true;
  };
  j.transfer = loop_.start(std::move(req), [this, alive, id](HttpResponse& r) {
    if (!alive.expired()) on_done(id, r);
  });
}

void Downloader::on_done(Id id, HttpResponse& r) {
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return;
  Job& j = *it->second;
  j.transfer = 0;

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
    if (::fsync(j.fd) != 0) {
      problem = "cannot sync " + j.part + ": " + std::strerror(errno);
    } else {
      j.close_fd();
      if (::rename(j.part.c_str(), j.dest.c_str()) != 0) problem = "cannot rename into " + j.dest + ": " + std::strerror(errno);
    }
    if (problem.empty()) {
      fsync_dir_of(j.dest);
      DownloadResult res{j.dest, j.bytes, j.sha.hex()};
      auto cb = std::move(j.done);
      jobs_.erase(it);
      if (cb) cb(res);
      return;
    }
  }

  j.discard();
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

void Downloader::fail(Id id, FalError e) {
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return;
  it->second->discard();
  auto cb = std::move(it->second->done);
  jobs_.erase(it);
  if (cb) cb(e);
}

}  // namespace kr::net
