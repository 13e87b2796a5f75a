#include "net/retrying_call.h"

namespace kr::net {

std::shared_ptr<RetryingCall> RetryingCall::start(Loop& loop, HttpRequest req, RetryPolicy policy, DoneFn done,
                                                  ObserveFn observe) {
  auto c = std::make_shared<RetryingCall>(loop, std::move(req), std::move(policy), std::move(done),
                                          std::move(observe));
  c->self_ = c;
  c->attempt();
  return c;
}

void RetryingCall::attempt() {
  timer_ = 0;
  // The Loop owns a strong reference while an attempt or a wait is pending, so the call
  // survives even if its starter drops the handle.
  auto self = self_.lock();
  transfer_ = loop_.start(req_, [self](HttpResponse& r) {
    self->transfer_ = 0;
    if (!self->active_) return;
    const int attempt_index = self->attempts_++;
    if (self->observe_) self->observe_(r);
    if (!self->active_) return;
    Decision d = r.ok() ? Decision{} : self->policy_.decide(attempt_index, Outcome::from(r));
    if (d.retry) {
      self->timer_ = self->loop_.after(d.delay_ms, [self] {
        if (self->active_) self->attempt();
      });
      return;
    }
    self->active_ = false;
    auto done = std::move(self->done_);
    if (done) done(r, self->attempts_);
  });
}

void RetryingCall::cancel() {
  if (!active_) return;
  active_ = false;
  if (transfer_) loop_.cancel(transfer_);
  if (timer_) loop_.cancel_timer(timer_);
  transfer_ = timer_ = 0;
  done_ = nullptr;
  observe_ = nullptr;
}

}  // namespace kr::net
