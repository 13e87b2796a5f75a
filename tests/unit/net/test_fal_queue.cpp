#include <catch2/catch.hpp>

#include <chrono>
#include <set>
#include <thread>

#include "fakefal_process.h"
#include "net/fal_queue.h"

using namespace kr::net;
using json = nlohmann::json;
using kr::test::FakeFal;
using kr::test::run_idle;
using kr::test::run_until;

namespace {

const char* kT2V = "fal-ai/kling-video/v3/pro/text-to-video";

struct Rec {
  int sending = 0;
  int not_created = 0;
  std::string submitted;
  std::vector<QueueStatus> statuses;
  std::optional<json> output;
  ResultMeta meta;
  std::optional<FalError> error;
  std::set<std::thread::id> threads;

  bool done() const { return output || error; }
  std::vector<std::string> log_messages() const {
    std::vector<std::string> m;
    for (auto& s : statuses)
      for (auto& l : s.new_logs) m.push_back(l.message);
    return m;
  }
  bool saw(QueueStatus::State st) const {
    for (auto& s : statuses)
      if (s.state == st) return true;
    return false;
  }
  JobCallbacks cb() {
    JobCallbacks c;
    c.on_sending = [this] {
      ++sending;
      threads.insert(std::this_thread::get_id());
      return true;
    };
    c.on_not_created = [this] { ++not_created; };
    c.on_submitted = [this](const std::string& rid) { submitted = rid; };
    c.on_status = [this](const QueueStatus& s) {
      statuses.push_back(s);
      threads.insert(std::this_thread::get_id());
    };
    c.on_result = [this](json out, const ResultMeta& m) {
      REQUIRE_FALSE(done());
      output = std::move(out);
      meta = m;
      threads.insert(std::this_thread::get_id());
    };
    c.on_error = [this](const FalError& e) {
      REQUIRE_FALSE(done());
      error = e;
    };
    return c;
  }
};

FalQueue::Options fast() {
  FalQueue::Options o;
  for (RetryPolicy* p : {&o.submit, &o.status, &o.result, &o.cancel}) {
    p->base_ms = 20;
    p->cap_ms = 200;
  }
  o.poll_initial_ms = 20;
  o.poll_max_ms = 100;
  return o;
}

json prompt(const std::string& text) { return {{"prompt", text}, {"duration", "5"}}; }

// Starts one job followed by polling only (no stream) and drives the loop until it ends.
void run_polled(FalQueue& q, Loop& loop, Rec& r, const std::string& text) {
  JobOptions jo;
  jo.stream = false;
  q.start(kT2V, prompt(text), r.cb(), jo);
  REQUIRE(run_until(loop, [&] { return r.done(); }));
}

}  // namespace

TEST_CASE("queue: happy path over the SSE stream", "[net][queue][fake]") {
  FakeFal fake({"--key", "test:secret", "--queue-ms", "100", "--run-ms", "300"});
  Loop loop;
  FalQueue q(loop, fake.config(), fast());
  Rec r;
  auto id = q.start(kT2V, prompt("a fox in the snow"), r.cb());
  CHECK(id != 0);
  CHECK(r.sending == 0);  // nothing happens inside start()
  REQUIRE(run_until(loop, [&] { return r.done(); }));
  INFO((r.error ? r.error->describe() : ""));
  REQUIRE(r.output);
  CHECK(r.sending == 1);
  CHECK(r.not_created == 0);
  CHECK_FALSE(r.submitted.empty());
  CHECK(r.meta.request_id == r.submitted);
  CHECK(r.saw(QueueStatus::State::in_queue));
  CHECK(r.saw(QueueStatus::State::in_progress));
  CHECK(r.statuses.back().state == QueueStatus::State::completed);
  // Four "step k/4" lines, each reported exactly once although the stream and the final
  // status may repeat them.
  CHECK(r.log_messages() == std::vector<std::string>{"step 1/4", "step 2/4", "step 3/4", "step 4/4"});
  CHECK((*r.output)["video"]["url"].get<std::string>().find("/cdn/videos/" + r.submitted) != std::string::npos);
  CHECK(r.meta.submitted);
  CHECK(r.meta.started);
  CHECK(r.meta.completed);
  CHECK(*r.meta.started <= *r.meta.completed);
  CHECK(r.meta.inference_time);
  CHECK(q.active() == 0);

  auto st = fake.stats();
  CHECK(st["jobs_created"] == 1);
  CHECK(st["requests"]["stream"] == 1);
  CHECK(st["requests"]["status"] == 0);  // the stream was enough: no polling
  CHECK(st["requests"]["result"] == 1);
  CHECK(st["auth_missing"] == 0);
  CHECK(st["auth_failed"] == 0);
  auto jobs = fake.jobs();
  CHECK(jobs[0]["endpoint"] == kT2V);
  CHECK(jobs[0]["headers"]["user-agent"].get<std::string>().rfind("klingrun/", 0) == 0);
}

TEST_CASE("queue: polling only, with an interval that grows", "[net][queue][fake]") {
  FakeFal fake({"--queue-ms", "100", "--run-ms", "600"});
  Loop loop;
  auto opt = fast();
  opt.poll_initial_ms = 20;
  opt.poll_max_ms = 400;
  opt.poll_growth = 2;
  FalQueue q(loop, fake.config(), opt);
  Rec r;
  run_polled(q, loop, r, "polling");
  REQUIRE(r.output);
  auto st = fake.stats();
  CHECK(st["requests"]["stream"] == 0);
  // 700 ms of job at 20, 40, 80, 160, 320, 400... ms: a handful of polls, not 35.
  CHECK(st["requests"]["status"] >= 4);
  CHECK(st["requests"]["status"] <= 9);
  CHECK(r.log_messages().size() == 4);  // polls repeat all lines; each is reported once
  // Unchanged polls are not reported: one IN_QUEUE, IN_PROGRESS once per new log line, one COMPLETED.
  CHECK(r.statuses.size() <= 6);
  CHECK(r.statuses.size() < st["requests"]["status"].get<std::size_t>());
}

TEST_CASE("queue: a failing stream falls back to polling", "[net][queue][fake]") {
  FakeFal fake({"--queue-ms", "50", "--run-ms", "300"});
  Loop loop;
  FalQueue::Options opt = fast();
  // A stream that breaks on its own is covered too: the fake's drop_before on a reused
  // keep-alive connection is resent by curl itself (safe for a GET), so it is not used here.
  SECTION("stream answers 500") { fake.fault({{"route", "stream"}, {"action", "status"}, {"code", 500}}); }
  SECTION("stream dies after one event") { fake.fault({{"route", "stream"}, {"action", "drop_after"}}); }
  SECTION("stream hangs without a byte") {
    opt.stream_stall_s = 1;
    fake.fault({{"route", "stream"}, {"action", "stall"}});
  }
  FalQueue q(loop, fake.config(), opt);

  Rec r;
  q.start(kT2V, prompt("fallback"), r.cb());
  REQUIRE(run_until(loop, [&] { return r.done(); }));
  INFO((r.error ? r.error->describe() : ""));
  REQUIRE(r.output);
  auto st = fake.stats();
  CHECK(st["faults_fired"] == 1);
  CHECK(st["requests"]["stream"] == 1);
  CHECK(st["requests"]["status"] >= 1);
  CHECK(st["jobs_created"] == 1);
  CHECK(r.statuses.back().state == QueueStatus::State::completed);
}

TEST_CASE("queue: status 503 twice, then success", "[net][queue][fake]") {
  FakeFal fake({"--queue-ms", "50", "--run-ms", "100"});
  Loop loop;
  FalQueue q(loop, fake.config(), fast());
  fake.fault({{"route", "status"}, {"action", "status"}, {"code", 503}, {"times", 2}});
  Rec r;
  run_polled(q, loop, r, "flaky status");
  REQUIRE(r.output);
  auto st = fake.stats();
  CHECK(st["faults_fired"] == 2);
  CHECK(st["requests"]["status"] >= 3);
}

TEST_CASE("queue: status errors beyond the retry budget fail the job", "[net][queue][fake]") {
  FakeFal fake({"--queue-ms", "50", "--run-ms", "100"});
  Loop loop;
  auto opt = fast();
  opt.status.max_retries = 2;
  opt.follow_outage_ms = 0;  // give up with the first retry budget
  FalQueue q(loop, fake.config(), opt);
  fake.fault({{"route", "status"}, {"action", "status"}, {"code", 503}, {"times", 10}});
  Rec r;
  run_polled(q, loop, r, "down");
  REQUIRE(r.error);
  CHECK(r.error->kind == FalError::Kind::server);
  CHECK(r.error->http_status == 503);
  CHECK_FALSE(r.error->request_id.empty());
  CHECK(fake.stats()["requests"]["status"] == 3);  // 1 + 2 retries
}

TEST_CASE("queue: a job on fal is followed through a status outage longer than one retry budget", "[net][queue][fake]") {
  FakeFal fake({"--queue-ms", "50", "--run-ms", "100"});
  Loop loop;
  auto opt = fast();
  opt.status.max_retries = 2;  // 3 attempts a round, then a new round after status.cap_ms
  SECTION("the outage ends: the job's result arrives") {
    opt.follow_outage_ms = 20000;
    FalQueue q(loop, fake.config(), opt);
    fake.fault({{"route", "status"}, {"action", "status"}, {"code", 503}, {"times", 8}});
    Rec r;
    run_polled(q, loop, r, "through the storm");
    INFO((r.error ? r.error->describe() : ""));
    CHECK(r.output);
    CHECK(fake.stats()["requests"]["status"] >= 9);
  }
  SECTION("the outage lasts: given up after follow_outage_ms, saying the job may still run") {
    opt.follow_outage_ms = 600;
    FalQueue q(loop, fake.config(), opt);
    fake.fault({{"route", "status"}, {"action", "drop_before"}, {"times", 1000}});
    Rec r;
    const auto t0 = std::chrono::steady_clock::now();
    run_polled(q, loop, r, "lost touch");
    REQUIRE(r.error);
    CHECK(r.error->kind == FalError::Kind::network);
    CHECK(r.error->message.find("the job may still run on fal") != std::string::npos);
    CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(600));
    CHECK(fake.stats()["requests"]["status"] > 3);  // more than one round
  }
  SECTION("an auth error is not an outage: it ends the job at once") {
    FalQueue q(loop, fake.config(), opt);
    fake.fault({{"route", "status"}, {"action", "status"}, {"code", 401}, {"times", 100}});
    Rec r;
    run_polled(q, loop, r, "wrong key");
    REQUIRE(r.error);
    CHECK(r.error->kind == FalError::Kind::auth);
    CHECK(fake.stats()["requests"]["status"] == 1);
  }
}

TEST_CASE("queue: submit 429 with Retry-After is retried after the asked pause", "[net][queue][fake]") {
  FakeFal fake({"--queue-ms", "20", "--run-ms", "50"});
  Loop loop;
  FalQueue q(loop, fake.config(), fast());
  fake.fault({{"route", "submit"}, {"action", "status"}, {"code", 429}, {"retry_after", 1}});
  Rec r;
  auto t0 = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point second_send;
  auto cb = r.cb();
  auto inner = cb.on_sending;
  cb.on_sending = [&, inner] {
    inner();
    if (r.sending == 2) second_send = std::chrono::steady_clock::now();
    return true;
  };
  q.start(kT2V, prompt("rate limited"), cb);
  REQUIRE(run_until(loop, [&] { return r.done(); }));
  REQUIRE(r.output);
  CHECK(r.sending == 2);
  CHECK(r.not_created == 1);  // the 429: fal took nothing
  CHECK(second_send - t0 >= std::chrono::milliseconds(950));  // backoff alone would be ~20 ms
  auto st = fake.stats();
  CHECK(st["requests"]["submit"] == 2);
  CHECK(st["jobs_created"] == 1);
}

TEST_CASE("queue: submit 429 that persists ends as rate_limited", "[net][queue][fake]") {
  FakeFal fake;
  Loop loop;
  auto opt = fast();
  opt.submit.max_retries = 2;
  FalQueue q(loop, fake.config(), opt);
  fake.fault({{"route", "submit"}, {"action", "status"}, {"code", 429}, {"times", 5}});
  Rec r;
  q.start(kT2V, prompt("x"), r.cb());
  REQUIRE(run_until(loop, [&] { return r.done(); }));
  REQUIRE(r.error);
  CHECK(r.error->kind == FalError::Kind::rate_limited);
  CHECK(r.sending == 3);
  CHECK(r.not_created == 3);
  CHECK(fake.stats()["jobs_created"] == 0);
}

TEST_CASE("queue: on_sending returning false sends nothing and ends the job", "[net][queue][fake]") {
  FakeFal fake({"--queue-ms", "20", "--run-ms", "50"});
  Loop loop;
  FalQueue q(loop, fake.config(), fast());
  Rec vetoed, sent;
  auto cb = vetoed.cb();
  auto inner = cb.on_sending;
  cb.on_sending = [inner] {
    inner();
    return false;
  };
  q.start(kT2V, prompt("vetoed"), cb);
  q.start(kT2V, prompt("sent"), sent.cb());
  REQUIRE(run_until(loop, [&] { return vetoed.done() && sent.done(); }));
  REQUIRE(vetoed.error);
  CHECK(vetoed.error->kind == FalError::Kind::cancelled);
  CHECK(vetoed.error->message.find("not sent") != std::string::npos);
  CHECK(vetoed.error->request_id.empty());
  CHECK(vetoed.sending == 1);
  CHECK(vetoed.submitted.empty());
  REQUIRE(sent.output);  // the other job is untouched
  CHECK(run_idle(loop));
  auto st = fake.stats();
  CHECK(st["requests"]["submit"] == 1);
  CHECK(st["jobs_created"] == 1);
  CHECK(fake.jobs()[0]["input"]["prompt"] == "sent");
}

TEST_CASE("queue: withdraw from before_io takes a submit back before it leaves", "[net][queue][fake]") {
  FakeFal fake({"--queue-ms", "20", "--run-ms", "50"});
  Loop loop;
  FalQueue q(loop, fake.config(), fast());
  Rec kept, taken;
  FalQueue::JobId taken_id = 0, kept_id = 0;
  bool withdrew = false, tried_kept = false, kept_withdrawn = false;
  loop.set_before_io([&] {
    if (taken.sending == 1 && !withdrew) withdrew = q.withdraw(taken_id);
    // Once fal has answered the submit, the job cannot be taken back.
    if (!kept.submitted.empty() && !kept.done() && !tried_kept) {
      tried_kept = true;
      kept_withdrawn = q.withdraw(kept_id);
    }
  });
  kept_id = q.start(kT2V, prompt("kept"), kept.cb());
  taken_id = q.start(kT2V, prompt("taken"), taken.cb());
  REQUIRE(run_until(loop, [&] { return kept.done() && taken.done(); }));
  CHECK(withdrew);
  REQUIRE(taken.error);
  CHECK(taken.error->kind == FalError::Kind::cancelled);
  CHECK(taken.error->message.find("not sent") != std::string::npos);
  CHECK_FALSE(q.withdraw(taken_id));  // finished: nothing left to take back
  REQUIRE(kept.output);
  CHECK(tried_kept);
  CHECK_FALSE(kept_withdrawn);
  CHECK(run_idle(loop));
  auto st = fake.stats();
  CHECK(st["requests"]["submit"] == 1);
  CHECK(st["jobs_created"] == 1);
  CHECK(fake.jobs()[0]["input"]["prompt"] == "kept");
}

TEST_CASE("queue: submit dropped before fal read the request is resent, one job", "[net][queue][fake]") {
  FakeFal fake({"--queue-ms", "20", "--run-ms", "50"});
  Loop loop;
  FalQueue q(loop, fake.config(), fast());
  fake.fault({{"route", "submit"}, {"action", "drop_before"}});
  Rec r;
  // The fake drops the connection as soon as it has read the headers. Only a body too large to
  // be sitting in socket buffers by then (12 MiB: several times what loopback buffers take in)
  // lets the client *know* the request never arrived whole; with a small body the drop is
  // indistinguishable from drop_after (next test case).
  json input = prompt("big");
  input["padding"] = std::string(12u << 20, 'x');
  q.start("fal-ai/any-model", input, r.cb());
  REQUIRE(run_until(loop, [&] { return r.done(); }, 60));
  INFO((r.error ? r.error->describe() : ""));
  REQUIRE(r.output);
  CHECK(r.sending == 2);
  auto st = fake.stats();
  CHECK(st["faults_fired"] == 1);
  CHECK(st["requests"]["submit"] == 2);
  CHECK(st["jobs_created"] == 1);
}

TEST_CASE("queue: submit sent whole and then dropped is unknown_submit, never resent", "[net][queue][fake]") {
  FakeFal fake({"--queue-ms", "20", "--run-ms", "50"});
  Loop loop;
  FalQueue q(loop, fake.config(), fast());
  int expected_jobs = 0;
  SECTION("dropped after the job was created") {
    fake.fault({{"route", "submit"}, {"action", "drop_after"}});
    expected_jobs = 1;
  }
  SECTION("dropped before, but the client cannot tell") {
    fake.fault({{"route", "submit"}, {"action", "drop_before"}});
    expected_jobs = 0;
  }
  Rec r;
  q.start(kT2V, prompt("lost answer"), r.cb());
  REQUIRE(run_until(loop, [&] { return r.done(); }));
  REQUIRE(r.error);
  CHECK(r.error->kind == FalError::Kind::unknown_submit);
  CHECK(r.sending == 1);
  CHECK(r.submitted.empty());
  run_idle(loop);
  auto st = fake.stats();
  CHECK(st["requests"]["submit"] == 1);
  CHECK(st["jobs_created"] == expected_jobs);
}

TEST_CASE("queue: submit to a port nobody listens on is retried, then a network error", "[net][queue]") {
  Loop loop;
  FalConfig c;
  c.queue_url = "http://127.0.0.1:1/queue";
  auto opt = fast();
  opt.submit.max_retries = 2;
  FalQueue q(loop, c, opt);
  Rec r;
  q.start(kT2V, prompt("x"), r.cb());
  REQUIRE(run_until(loop, [&] { return r.done(); }));
  REQUIRE(r.error);
  CHECK(r.error->kind == FalError::Kind::network);
  CHECK(r.sending == 3);
}

TEST_CASE("queue: 422 from the model becomes rejected with path lines", "[net][queue][fake]") {
  FakeFal fake({"--queue-ms", "20", "--run-ms", "50"});
  Loop loop;
  FalQueue q(loop, fake.config(), fast());

  SECTION("validation by the endpoint") {
    json input = {{"multi_prompt", json::array({{{"prompt", "a"}, {"duration", "5"}},
                                                {{"prompt", "b"}, {"duration", "5"}},
                                                {{"prompt", std::string(600, 'c')}, {"duration", "5"}}})}};
    Rec r;
    q.start(kT2V, input, r.cb());
    REQUIRE(run_until(loop, [&] { return r.done(); }));
    REQUIRE(r.error);
    CHECK(r.error->kind == FalError::Kind::rejected);
    CHECK(r.error->http_status == 422);
    CHECK(r.error->request_id == r.submitted);
    auto lines = r.error->lines();
    CHECK(std::find(lines.begin(), lines.end(), "multi_prompt[2].prompt: Prompt must not exceed 512 characters.") !=
          lines.end());
    CHECK(fake.stats()["requests"]["result"] == 1);  // a model error is not retried
  }
  SECTION("forced by a marker") {
    Rec r;
    q.start(kT2V, prompt("[[fail:422]] x"), r.cb());
    REQUIRE(run_until(loop, [&] { return r.done(); }));
    REQUIRE(r.error);
    CHECK(r.error->kind == FalError::Kind::rejected);
    REQUIRE(r.error->details.size() == 1);
    CHECK(r.error->details[0].path == "prompt");
    CHECK(r.error->lines()[0].rfind("prompt: Forced validation failure", 0) == 0);
  }
}

TEST_CASE("queue: a job that completes with an error is never a success", "[net][queue][fake]") {
  FakeFal fake({"--queue-ms", "20", "--run-ms", "50"});
  Loop loop;
  FalQueue q(loop, fake.config(), fast());
  Rec r;
  q.start(kT2V, prompt("[[fail:runner]] x"), r.cb());
  REQUIRE(run_until(loop, [&] { return r.done(); }));
  REQUIRE(r.error);
  CHECK(r.error->kind == FalError::Kind::server);
  CHECK(r.error->error_type == "runner_disconnected");
  CHECK(r.error->http_status == 503);
  // COMPLETED carried the error: the result's 503 is the job's failure, not a hiccup to retry.
  CHECK(fake.stats()["requests"]["result"] == 1);
}

TEST_CASE("queue: a wrong key is an auth error, not retried", "[net][queue][fake]") {
  FakeFal fake({"--key", "test:secret"});
  Loop loop;
  FalQueue q(loop, fake.config("test:wrong"), fast());
  Rec r;
  q.start(kT2V, prompt("x"), r.cb());
  REQUIRE(run_until(loop, [&] { return r.done(); }));
  REQUIRE(r.error);
  CHECK(r.error->kind == FalError::Kind::auth);
  CHECK(r.error->http_status == 401);
  CHECK(r.error->message == "No user found for Key ID and Secret");
  auto st = fake.stats();
  CHECK(st["requests"]["submit"] == 1);
  CHECK(st["auth_failed"] == 1);
}

TEST_CASE("queue: a user start-timeout 504 is not retried", "[net][queue][fake]") {
  FakeFal fake({"--queue-ms", "20", "--run-ms", "50"});
  Loop loop;
  FalQueue q(loop, fake.config(), fast());
  SECTION("on submit") {
    fake.fault({{"route", "submit"}, {"action", "status"}, {"code", 504}, {"timeout_type", "user"}, {"times", 3}});
    Rec r;
    q.start(kT2V, prompt("x"), r.cb());
    REQUIRE(run_until(loop, [&] { return r.done(); }));
    REQUIRE(r.error);
    CHECK(r.error->kind == FalError::Kind::timeout);
    CHECK(r.sending == 1);
    CHECK(fake.stats()["requests"]["submit"] == 1);
  }
  SECTION("on status") {
    fake.fault({{"route", "status"}, {"action", "status"}, {"code", 504}, {"timeout_type", "user"}, {"times", 3}});
    Rec r;
    run_polled(q, loop, r, "x");
    REQUIRE(r.error);
    CHECK(r.error->kind == FalError::Kind::timeout);
    CHECK(fake.stats()["requests"]["status"] == 1);
  }
  SECTION("fal's own start deadline (x-fal-request-timeout)") {
    Rec r;
    JobOptions jo;
    jo.start_timeout_s = 0.3;
    q.start(kT2V, prompt("[[queue_ms=5000]] x"), r.cb(), jo);
    REQUIRE(run_until(loop, [&] { return r.done(); }));
    REQUIRE(r.error);
    CHECK(r.error->kind == FalError::Kind::timeout);
    CHECK(r.error->error_type == "request_timeout");
    CHECK(fake.jobs()[0]["headers"]["x-fal-request-timeout"] == "0.3");
  }
}

TEST_CASE("queue: client timeout cancels the job on fal", "[net][queue][fake]") {
  FakeFal fake({"--queue-ms", "20"});
  Loop loop;
  FalQueue q(loop, fake.config(), fast());
  Rec r;
  JobOptions jo;
  jo.client_timeout_s = 0.5;
  auto t0 = std::chrono::steady_clock::now();
  q.start(kT2V, prompt("[[run_ms=99999999]] forever"), r.cb(), jo);
  REQUIRE(run_until(loop, [&] { return r.done(); }));
  auto took = std::chrono::steady_clock::now() - t0;
  REQUIRE(r.error);
  CHECK(r.error->kind == FalError::Kind::timeout);
  CHECK(r.error->request_id == r.submitted);
  CHECK(took >= std::chrono::milliseconds(450));
  CHECK(took < std::chrono::milliseconds(3000));
  CHECK(run_idle(loop));  // the cancel finishes in the background, then nothing is left
  auto st = fake.stats();
  CHECK(st["cancels"] == 1);
  CHECK(st["requests"]["cancel"] == 1);
  CHECK(fake.jobs()[0]["cancelled"] == true);
}

TEST_CASE("queue: withdraw refuses a submit that has gone out, even before fal answers", "[net][queue][fake]") {
  FakeFal fake({"--queue-ms", "20", "--run-ms", "50"});
  Loop loop;
  FalQueue q(loop, fake.config(), fast());
  fake.fault({{"route", "submit"}, {"action", "stall"}, {"ms", 300}});  // answered 300 ms late
  Rec r;
  auto id = q.start(kT2V, prompt("in flight"), r.cb());
  const auto t0 = std::chrono::steady_clock::now();
  while (fake.stats()["requests"]["submit"] != 1 && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5))
    loop.run_once(10);
  REQUIRE(fake.stats()["requests"]["submit"] == 1);  // on the wire, no answer yet
  CHECK(r.submitted.empty());
  CHECK_FALSE(q.withdraw(id));  // fal may have created it: it must be followed, not dropped
  REQUIRE(run_until(loop, [&] { return r.done(); }));
  CHECK_FALSE(r.error);
  CHECK(r.output);
  CHECK(fake.stats()["jobs_created"] == 1);
}

TEST_CASE("queue: client timeout while the submit is in flight cancels once it answers", "[net][queue][fake]") {
  FakeFal fake({"--queue-ms", "20"});
  Loop loop;
  FalQueue q(loop, fake.config(), fast());
  fake.fault({{"route", "submit"}, {"action", "stall"}, {"ms", 800}});
  Rec r;
  JobOptions jo;
  jo.client_timeout_s = 0.2;
  q.start(kT2V, prompt("[[run_ms=99999999]] slow submit"), r.cb(), jo);
  REQUIRE(run_until(loop, [&] { return r.done(); }));
  REQUIRE(r.error);
  CHECK(r.error->kind == FalError::Kind::timeout);
  CHECK(q.active() == 0);
  CHECK(run_idle(loop));
  CHECK(r.submitted.empty());  // no callbacks after the error
  auto st = fake.stats();
  CHECK(st["jobs_created"] == 1);
  CHECK(st["cancels"] == 1);
}

TEST_CASE("queue: a job that completed keeps its result when fetching it outlasts the client timeout", "[net][queue][fake]") {
  FakeFal fake({"--queue-ms", "20", "--run-ms", "100"});
  Loop loop;
  FalQueue q(loop, fake.config(), fast());
  fake.fault({{"route", "result"}, {"action", "stall"}, {"ms", 700}});  // the result comes late
  Rec r;
  JobOptions jo;
  jo.client_timeout_s = 0.4;  // passes while the result call is held, after COMPLETED
  q.start(kT2V, prompt("nearly late"), r.cb(), jo);
  REQUIRE(run_until(loop, [&] { return r.done(); }));
  CHECK_FALSE(r.error);  // COMPLETED means paid for: the deadline no longer applies
  CHECK(r.output);
  CHECK(run_idle(loop));
  CHECK(fake.stats()["cancels"] == 0);
}

TEST_CASE("queue: attach counts the time since the submit against the client timeout", "[net][queue][fake]") {
  FakeFal fake({"--queue-ms", "20", "--run-ms", "100"});
  Loop loop;
  FalQueue q(loop, fake.config(), fast());
  JobOptions jo;
  jo.client_timeout_s = 10;
  SECTION("still running: cancelled once the rest of its time is up") {
    auto sub = fake.call("POST", "/queue/fal-ai/kling-video/v3/pro/text-to-video", prompt("[[run_ms=99999999]] x").dump());
    jo.elapsed_s = 9.6;  // 0.4 s left
    Rec r;
    const auto t0 = std::chrono::steady_clock::now();
    q.attach(kT2V, sub["request_id"], r.cb(), jo);
    REQUIRE(run_until(loop, [&] { return r.done(); }));
    const auto took = std::chrono::steady_clock::now() - t0;
    REQUIRE(r.error);
    CHECK(r.error->kind == FalError::Kind::timeout);
    CHECK(r.error->message.find("10 s") != std::string::npos);  // the job's whole timeout
    CHECK(took >= std::chrono::milliseconds(350));
    CHECK(took < std::chrono::milliseconds(5000));
    CHECK(run_idle(loop));
    CHECK(fake.stats()["cancels"] == 1);
  }
  SECTION("out of time and still running: its first status decides, and it is cancelled") {
    auto sub = fake.call("POST", "/queue/fal-ai/kling-video/v3/pro/text-to-video", prompt("[[run_ms=99999999]] x").dump());
    jo.elapsed_s = 60;
    Rec r;
    q.attach(kT2V, sub["request_id"], r.cb(), jo);
    REQUIRE(run_until(loop, [&] { return r.done(); }));
    REQUIRE(r.error);
    CHECK(r.error->kind == FalError::Kind::timeout);
    CHECK(run_idle(loop));
    CHECK(fake.stats()["cancels"] == 1);
  }
  SECTION("out of time but completed meanwhile: the result it paid for is fetched") {
    auto sub = fake.call("POST", "/queue/fal-ai/kling-video/v3/pro/text-to-video", prompt("done while away").dump());
    std::this_thread::sleep_for(std::chrono::milliseconds(400));  // it completes on the fake
    jo.elapsed_s = 60;
    Rec r;
    q.attach(kT2V, sub["request_id"], r.cb(), jo);
    REQUIRE(run_until(loop, [&] { return r.done(); }));
    CHECK_FALSE(r.error);
    CHECK(r.output);
    CHECK(run_idle(loop));
    CHECK(fake.stats()["cancels"] == 0);
  }
}

TEST_CASE("queue: cancel(handle) reports cancelled and cancels on fal", "[net][queue][fake]") {
  FakeFal fake({"--queue-ms", "20"});
  Loop loop;
  FalQueue q(loop, fake.config(), fast());
  Rec r;
  FalQueue::JobId id = 0;
  auto cb = r.cb();
  auto inner = cb.on_status;
  cb.on_status = [&, inner](const QueueStatus& s) {
    inner(s);
    if (s.state == QueueStatus::State::in_progress) {
      CHECK(q.cancel(id));
      CHECK_FALSE(r.error);  // reported from the loop, not inside cancel()
    }
  };
  id = q.start(kT2V, prompt("[[run_ms=99999999]] cancel me"), cb);
  REQUIRE(run_until(loop, [&] { return r.done(); }));
  REQUIRE(r.error);
  CHECK(r.error->kind == FalError::Kind::cancelled);
  CHECK_FALSE(q.cancel(id));
  CHECK(run_idle(loop));
  CHECK(fake.stats()["cancels"] == 1);
  CHECK(fake.jobs()[0]["cancelled"] == true);
}

TEST_CASE("queue: attach follows a job submitted elsewhere, cancel_request", "[net][queue][fake]") {
  FakeFal fake({"--queue-ms", "20", "--run-ms", "100"});
  auto sub = fake.call("POST", "/queue/fal-ai/kling-video/v3/pro/text-to-video", prompt("elsewhere").dump());
  std::string rid = sub["request_id"];
  auto sub2 = fake.call("POST", "/queue/fal-ai/kling-video/v3/pro/text-to-video", prompt("[[run_ms=99999999]] x").dump());
  std::string rid2 = sub2["request_id"];

  Loop loop;
  FalQueue q(loop, fake.config(), fast());
  Rec r;
  q.attach(kT2V, rid, r.cb());
  std::optional<CancelOutcome> c1, c2;
  q.cancel_request(kT2V, rid2, [&](const CancelOutcome& o) { c1 = o; });
  q.cancel_request(kT2V, "no-such-id", [&](const CancelOutcome& o) { c2 = o; });
  REQUIRE(run_until(loop, [&] { return r.done() && c1 && c2; }));
  REQUIRE(r.output);
  CHECK(r.sending == 0);
  CHECK(r.meta.request_id == rid);
  CHECK(fake.stats()["requests"]["submit"] == 2);  // only the two made above
  CHECK(c1->ok);
  CHECK(c1->fal_status == "CANCELLATION_REQUESTED");
  CHECK_FALSE(c2->ok);
  CHECK(c2->http_status == 404);
  CHECK(c2->fal_status == "NOT_FOUND");
}

TEST_CASE("queue: invalid endpoint ids fail through on_error", "[net][queue]") {
  Loop loop;
  FalQueue q(loop, FalConfig{});
  Rec r;
  q.start("kling", prompt("x"), r.cb());
  REQUIRE(run_until(loop, [&] { return r.done(); }, 5));
  REQUIRE(r.error);
  CHECK(r.error->kind == FalError::Kind::rejected);
  CHECK(r.sending == 0);
}

TEST_CASE("queue: 50 concurrent jobs on one loop and one thread", "[net][queue][fake]") {
  FakeFal fake({"--queue-ms", "100", "--run-ms", "300"});
  Loop loop;
  FalQueue q(loop, fake.config(), fast());
  std::vector<Rec> recs(50);
  for (int i = 0; i < 50; ++i) {
    JobOptions jo;
    jo.stream = i % 2 == 0;  // half stream, half poll
    q.start(kT2V, prompt("shot " + std::to_string(i)), recs[i].cb(), jo);
  }
  CHECK(q.active() == 50);
  auto t0 = std::chrono::steady_clock::now();
  REQUIRE(run_until(loop, [&] {
    for (auto& r : recs)
      if (!r.done()) return false;
    return true;
  }, 60));
  auto took = std::chrono::steady_clock::now() - t0;
  std::set<std::string> ids;
  std::set<std::thread::id> threads;
  for (auto& r : recs) {
    REQUIRE(r.output);
    ids.insert(r.submitted);
    threads.insert(r.threads.begin(), r.threads.end());
  }
  CHECK(ids.size() == 50);
  CHECK(threads == std::set<std::thread::id>{std::this_thread::get_id()});
  // Run one after another they would take 50 x 0.4 s = 20 s.
  CHECK(took < std::chrono::seconds(8));
  auto st = fake.stats();
  CHECK(st["jobs_created"] == 50);
  CHECK(st["max_jobs_in_progress"].get<int>() >= 10);
  CHECK(q.active() == 0);
  CHECK_FALSE(loop.busy());
}
