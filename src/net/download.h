#pragma once
// Streams a URL to disk: into "<dest>.part" while hashing, checked, then renamed into place.
// A failed or short download never leaves a file at the destination. Not fsynced: the caller
// keeps the size and SHA-256 and checks them before trusting the file after a restart.
// The loop thread receives; a FileSink thread writes, hashes and renames (see file_sink.h).

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "net/curl_loop.h"
#include "net/errors.h"
#include "net/file_sink.h"
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
    // Transfers at once (0: no limit); more wait their turn in order (see has_slot): a few
    // streams fill the link, more only make every download end late together.
    std::size_t max_transfers = 2;
    long slot_stall_ms = 2000;  // a transfer silent this long lets the next one start
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
  // No callback; the .part file is removed. A download already checked and handed to the sink
  // to be renamed may still land at its destination.
  bool cancel(Id id);
  std::size_t active() const { return jobs_.size(); }

  struct Job;  // internal

 private:
  void attempt(Id id, bool from_queue = false);
  bool has_slot() const;
  void pump();
  void release_slot();
  void on_done(Id id, HttpResponse& r);
  void on_written(Id id, const FileSink::Outcome& o);
  void fail(Id id, FalError e);

  Loop& loop_;
  Options opt_;
  std::map<Id, std::unique_ptr<Job>> jobs_;
  std::deque<Id> queued_;      // waiting for a transfer slot, oldest first
  std::size_t running_ = 0;    // transfers in flight
  bool pump_posted_ = false;
  Loop::TimerId watch_timer_ = 0;  // re-checks for stalled transfers while downloads wait
  Id next_id_ = 1;
  std::unique_ptr<FileSink> sink_;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace kr::net
