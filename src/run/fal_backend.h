// Carries jobs to fal: uploads local files, submits (or re-attaches, or downloads a stored
// result), follows the queue, and streams the video to out/<script>/<name>.mp4. All transfers
// of the process run on one libcurl multi loop, driven from Runner::tick().
#pragma once
#include <filesystem>
#include <map>
#include <memory>

#include "net/curl_loop.h"
#include "net/download.h"
#include "net/fal_queue.h"
#include "net/storage.h"
#include "run/backend.h"
#include "run/state_store.h"

namespace kr::run {

class FalBackend : public Backend {
 public:
  FalBackend(net::FalConfig config, std::filesystem::path out_dir);
  ~FalBackend() override;
  std::string name() const override { return "fal"; }
  void start(Job& job) override;
  void poll(int max_wait_ms) override;
  bool busy() const override;
  void cancel(Job& job) override;
  bool withdraw(Job& job) override;
  bool adopt(Job& job) override;
  void prefetch(const Job& job) override;

  net::Loop& loop() { return loop_; }

 private:
  struct Active;
  void upload_then_submit(Job& job);
  void submit(Job& job, json input);
  void download(Job& job);
  std::filesystem::path video_dest(const Job& job) const { return out_dir_ / (job.name + ".mp4"); }
  void fail(Job& job, const net::FalError& e);
  void finish(Job& job);
  net::JobCallbacks callbacks(Job& job);

  std::filesystem::path out_dir_;
  net::Loop loop_;
  net::FalQueue queue_;
  net::Storage storage_;
  net::Downloader downloader_;
  std::map<const Job*, std::unique_ptr<Active>> active_;
};

// Maps a transport error to what the runner and the user see.
JobError job_error(const net::FalError& e);

// `klingrun cancel`: what became of one stored job.
struct CancelReport {
  enum class Outcome { requested, already_completed, no_request_id, failed };
  JobRecord job;
  Outcome outcome = Outcome::failed;
  std::string detail;  // fal's status (requested), or the error (failed)
};
// Asks fal to cancel stored jobs (all at once) and marks those fal accepted as cancelled in the
// store. Reports come back in the order of `jobs`.
std::vector<CancelReport> cancel_stored(StateStore& store, const net::FalConfig& config, const std::vector<JobRecord>& jobs);

}  // namespace kr::run
