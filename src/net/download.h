#pragma once
// Streams a URL to disk: into "<dest>.part" while hashing, checked, fsynced, then renamed into
// place. A failed or short download never leaves a file at the destination.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "net/curl_loop.h"
#include "net/errors.h"
#include "net/retry.h"

namespace kr::net {

struct DownloadResult {
  std::string path;
  std::uint64_t bytes = 0;
  std::string sha256;  // hex
};

class Downloader {
 public:
  struct Options {
    RetryPolicy policy = RetryPolicy::download();
    long connect_timeout_ms = 15000;
    long stall_seconds = 60;
    std::string user_agent;  // empty = default_user_agent()
  };
  using Id = std::uint64_t;
  using DoneFn = std::function<void(const Result<DownloadResult>&)>;
  // total: expected size, else Content-Length, else nullopt.
  using ProgressFn = std::function<void(std::uint64_t bytes, std::optional<std::uint64_t> total)>;

  explicit Downloader(Loop& loop);
  Downloader(Loop& loop, Options options);
  ~Downloader();  // abandons downloads in flight (their .part files are removed)
  Downloader(const Downloader&) = delete;
  Downloader& operator=(const Downloader&) = delete;

  // Any host: no credentials are sent. Parent directories of dest_path are created.
  Id download(const std::string& url, const std::string& dest_path, std::optional<std::uint64_t> expected_size,
              DoneFn cb, ProgressFn progress = {});
  bool cancel(Id id);  // no callback; the .part file is removed
  std::size_t active() const { return jobs_.size(); }

  struct Job;  // internal

 private:
  void attempt(Id id);
  void on_done(Id id, HttpResponse& r);
  void fail(Id id, FalError e);

  Loop& loop_;
  Options opt_;
  std::map<Id, std::unique_ptr<Job>> jobs_;
  Id next_id_ = 1;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace kr::net
