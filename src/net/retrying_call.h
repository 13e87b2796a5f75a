#pragma once
// An idempotent HTTP call retried by a RetryPolicy: each attempt is a transfer on the Loop, each
// wait a Loop timer, so many calls progress together on one thread.

#include <functional>
#include <memory>

#include "net/curl_loop.h"
#include "net/retry.h"

namespace kr::net {

class RetryingCall {
 public:
  // `done` gets the final answer (success, a non-retryable answer, or the last failure) and
  // the number of attempts made. `observe` sees every attempt's answer (headers worth keeping
  // may come on a failed one).
  using DoneFn = std::function<void(HttpResponse&, int attempts)>;
  using ObserveFn = std::function<void(const HttpResponse&)>;

  static std::shared_ptr<RetryingCall> start(Loop& loop, HttpRequest req, RetryPolicy policy, DoneFn done,
                                             ObserveFn observe = {});
  // Stops the pending attempt or wait; `done` never runs.
  void cancel();
  bool active() const { return active_; }

  RetryingCall(Loop& loop, HttpRequest req, RetryPolicy policy, DoneFn done, ObserveFn observe)
      : loop_(loop), req_(std::move(req)), policy_(std::move(policy)), done_(std::move(done)),
        observe_(std::move(observe)) {}

 private:
  void attempt();

  Loop& loop_;
  HttpRequest req_;
  RetryPolicy policy_;
  DoneFn done_;
  ObserveFn observe_;
  int attempts_ = 0;
  bool active_ = true;
  Loop::TransferId transfer_ = 0;
  Loop::TimerId timer_ = 0;
  std::weak_ptr<RetryingCall> self_;
};

}  // namespace kr::net
