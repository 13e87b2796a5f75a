#pragma once
// The event loop: one libcurl multi handle drives every transfer of the process on the calling
// thread, plus timers for backoff and poll intervals. Nothing here blocks except the bounded
// wait inside run_once().
//
// Callbacks (transfer completions, timers, posted functions) run only from run_once(), never
// from inside start()/after()/cancel(). They may start, cancel and schedule freely.
// Not thread-safe (except post_remote): one thread owns the Loop and everything built on it
// (FalQueue, Storage, Downloader), and the Loop must outlive them.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "net/http.h"

namespace kr::net {

class Loop {
 public:
  using TransferId = std::uint64_t;  // 0 is never a valid id
  using TimerId = std::uint64_t;
  using Clock = std::chrono::steady_clock;
  using DoneFn = std::function<void(HttpResponse&)>;

  Loop();
  ~Loop();  // drops pending transfers and timers without calling their callbacks
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  // Hands the request to curl; `done` runs once with the outcome (unless cancelled).
  TransferId start(HttpRequest req, DoneFn done);
  // Stops a transfer; its `done` never runs. False if it was not pending.
  bool cancel(TransferId id);
  // True once the transfer has been through a round of network I/O (or is not pending): from
  // then on curl may have sent some or all of its request. Before that, cancel() takes it back
  // with nothing sent.
  bool may_have_sent(TransferId id) const;

  TimerId after(double delay_ms, std::function<void()> fn);
  bool cancel_timer(TimerId id);
  // Runs fn on the next run_once(), after the current callback has returned.
  TimerId post(std::function<void()> fn) { return after(0, std::move(fn)); }

  // Work handed to another thread: expect_remote() (on the loop's thread) announces one
  // post_remote(fn) (from any thread), which wakes the loop and runs fn from run_once(). Until
  // it has run, busy() stays true, so run() does not return while the work is out.
  void expect_remote() { ++remote_expected_; }
  void post_remote(std::function<void()> fn);

  // Advances transfers and fires what is due. Waits up to max_wait_ms (less when a timer is
  // due sooner) only if nothing was ready. Returns the number of callbacks run. Returns at
  // once when nothing is pending.
  int run_once(int max_wait_ms);
  // Runs until nothing is pending.
  void run();

  // Runs fn before every round of network I/O, that is before curl sends or receives anything.
  // Requests handed to start() since the last round leave only after fn returns: a caller can
  // batch what must be on disk before they leave (one fsync for a burst of submits).
  void set_before_io(std::function<void()> fn) { before_io_ = std::move(fn); }
  // CA certificates (a PEM file) that transfers started from now on trust instead of the
  // system's store (CURLOPT_CAINFO). Empty: the system's.
  void set_ca_bundle(std::string path) { ca_bundle_ = std::move(path); }

  bool busy() const { return !transfers_.empty() || !timers_.empty() || remote_expected_ > 0; }
  std::size_t transfer_count() const { return transfers_.size(); }
  std::size_t timer_count() const { return timers_.size(); }
  // New connections opened so far (a measure of keep-alive reuse).
  std::uint64_t connections_opened() const { return connections_opened_; }

  struct Transfer;  // internal

 private:
  void add_to_multi(Transfer* t);
  void remove_from_multi(Transfer* t);
  void perform();
  int dispatch_done();
  int fire_timers();
  int run_remote();

  void* multi_ = nullptr;  // CURLM*
  void* share_ = nullptr;  // CURLSH*: TLS sessions, so that a new connection can resume one
  std::unordered_map<TransferId, std::unique_ptr<Transfer>> transfers_;
  std::vector<TransferId> finished_;  // collected inside perform, dispatched after it
  std::vector<TransferId> pending_add_;
  bool in_perform_ = false;
  TransferId next_transfer_ = 1;

  struct Timer {
    Clock::time_point due;
    std::function<void()> fn;
  };
  std::map<TimerId, Timer> timers_;
  std::set<std::pair<Clock::time_point, TimerId>> timer_order_;
  TimerId next_timer_ = 1;
  std::uint64_t connections_opened_ = 0;
  std::function<void()> before_io_;
  std::string ca_bundle_;
  std::size_t remote_expected_ = 0;
  std::mutex remote_mu_;
  std::vector<std::function<void()>> remote_;  // posted by other threads, guarded by remote_mu_
};

}  // namespace kr::net
