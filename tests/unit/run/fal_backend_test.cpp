// The runner and the fal backend against the fake: what the state store decides reaches the wire.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>

#include "fakefal.h"
#include "files.h"
#include "run/fal_backend.h"
#include "run/runner.h"
#include "sqlite_vfs.h"

#include <sqlite3.h>

using namespace kr::run;
using json = nlohmann::json;

namespace {

kr::net::FalConfig config_for(const krt::FakeFal& fake) {
  kr::net::FalConfig cfg;
  cfg.queue_url = fake.base() + "/queue";
  cfg.rest_url = fake.base() + "/rest";
  cfg.key = "test:secret";
  return cfg;
}

void run_to_idle(Runner& runner) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!runner.idle() && std::chrono::steady_clock::now() < deadline) runner.tick(50);
  REQUIRE(runner.idle());
}

kr::Request t2v(const std::string& name, const std::string& prompt) {
  kr::Request req;
  req.endpoint = "v3/pro/t2v";
  req.name = name;
  req.input = {{"prompt", prompt}, {"duration", 5}};
  return req;
}

// A runner with the fal backend against `fake`, journaling into `store`, writing under `dir`/out.
std::unique_ptr<Runner> fal_runner(const krt::FakeFal& fake, const krt::TempDir& dir, StateStore& store, int concurrency = 2) {
  RunnerOptions ro;
  ro.out_dir = dir / "out";
  ro.script = "test";
  ro.store = &store;
  ro.concurrency = concurrency;
  return std::make_unique<Runner>(ro, std::make_unique<FalBackend>(config_for(fake), ro.out_dir));
}

// An image-to-video job whose start frame is a local file: it uploads first, which gives a test
// a moment between the claim and the send.
kr::Request i2v_with_local_frame(const krt::TempDir& dir, std::uint8_t seed) {
  krt::write_file(dir / "frame.png", krt::make_png(512, 512, seed));
  kr::Request req;
  req.endpoint = "v3/pro/i2v";
  req.name = "shot";
  req.input = {{"prompt", "the fox looks up"}, {"start_image_url", (dir / "frame.png").string()}, {"duration", 5}};
  return req;
}

}  // namespace

TEST_CASE("fal backend: a job whose claim another process took over is not sent", "[run][fal][fake]") {
  krt::FakeFal fake({"--key", "test:secret", "--queue-ms", "20", "--run-ms", "50"});
  krt::TempDir dir("kr-veto");

  std::atomic<std::int64_t> clock{1'700'000'000'000};
  auto store_for = [&](const std::string& owner) {
    StoreOptions o;
    o.owner = owner;
    o.now_ms = [&clock] { return clock.load(); };
    return StateStore::open(dir / "state", o);
  };
  auto a = store_for("process-a");
  std::unique_ptr<StateStore> b;

  auto owned = fal_runner(fake, dir, *a);
  Runner& runner = *owned;

  // While the start frame uploads, process a "stalls" past the lease and process b takes the
  // job over: by the time a is about to send, the row is b's.
  runner.on_change([&](const Job& job) {
    if (job.phase != Phase::uploading || b) return;
    clock += 16'000;
    b = store_for("process-b");
    JobIntent in;
    in.key = job.key;
    in.name = job.name;
    in.script = "test";
    in.endpoint = job.endpoint->id;
    in.input = job.input;
    in.cost_usd = job.cost.usd;
    REQUIRE(b->claim(in).action == Claim::Submit);
  });

  Job& job = runner.submit(i2v_with_local_frame(dir, 7));
  run_to_idle(runner);

  REQUIRE(b);
  REQUIRE(job.phase == Phase::failed);
  REQUIRE(job.error);
  CHECK(job.error->kind == ErrorKind::claim_lost);
  CHECK(job.error->message.find("not sent") != std::string::npos);
  CHECK_FALSE(job.sent);  // recorded as not sent by this process...
  auto st = fake.stats();
  CHECK(st["uploads"] == 1);
  CHECK(st["requests"]["submit"] == 0);  // ...and nothing went out
  CHECK(st["jobs_created"] == 0);
  // b's claim stands: a recorded nothing over it.
  auto row = b->get(job.key);
  REQUIRE(row);
  CHECK(row->owner == "process-b");
  CHECK(row->state == JobState::Sending);
  CHECK_FALSE(row->sent_ms);
  CHECK(row->error.empty());
}

TEST_CASE("fal backend: when the sent marks cannot be fsynced, the submits are taken back", "[run][fal][fake]") {
  krt::CountingVfs vfs;  // before the store opens, so its WAL is the one watched
  krt::FakeFal fake({"--key", "test:secret", "--queue-ms", "20", "--run-ms", "50"});
  krt::TempDir dir("kr-nosync");
  auto store = StateStore::open(dir / "state");
  auto owned = fal_runner(fake, dir, *store, 4);
  Runner& runner = *owned;

  krt::CountingVfs::fail_syncs = true;  // the disk stops making anything durable
  Job& a = runner.submit(t2v("a", "a fox in the snow"));
  Job& b = runner.submit(t2v("b", "a hare in the snow"));
  run_to_idle(runner);
  CHECK(krt::CountingVfs::wal_syncs > 0);  // it tried
  for (Job* j : {&a, &b}) {
    INFO(j->name);
    CHECK(j->phase == Phase::failed);
    REQUIRE(j->error);
    CHECK(j->error->kind == ErrorKind::state);
    CHECK(j->error->message.find("not sent") != std::string::npos);
    CHECK(j->error->message.find("fsync") != std::string::npos);
    CHECK_FALSE(j->sent);
    auto row = store->get(j->key);
    REQUIRE(row);
    CHECK(row->state == JobState::Failed);  // so the next run submits it, not "unknown"
    CHECK_FALSE(row->sent_ms);
  }
  CHECK(fake.stats()["requests"]["submit"] == 0);
  CHECK(fake.stats()["jobs_created"] == 0);

  // The disk recovers: the next job goes out and completes as usual.
  krt::CountingVfs::fail_syncs = false;
  Job& c = runner.submit(t2v("c", "an owl in the snow"));
  run_to_idle(runner);
  CHECK(c.phase == Phase::done);
  CHECK(store->get(c.key)->state == JobState::Done);
  CHECK(fake.stats()["jobs_created"] == 1);
}

TEST_CASE("fal backend: a send the store cannot record is not made", "[run][fal][fake]") {
  krt::FakeFal fake({"--key", "test:secret", "--queue-ms", "20", "--run-ms", "50"});
  krt::TempDir dir("kr-norecord");
  StoreOptions so;
  so.busy_timeout = std::chrono::milliseconds(200);
  auto store = StateStore::open(dir / "state", so);
  auto owned = fal_runner(fake, dir, *store);
  Runner& runner = *owned;

  // While the frame uploads, another connection takes the database's write lock and keeps it:
  // mark_sent times out.
  sqlite3* blocker = nullptr;
  runner.on_change([&](const Job& job) {
    if (job.phase != Phase::uploading || blocker) return;
    REQUIRE(sqlite3_open(store->db_path().c_str(), &blocker) == SQLITE_OK);
    REQUIRE(sqlite3_exec(blocker, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK);
  });
  Job& job = runner.submit(i2v_with_local_frame(dir, 9));
  run_to_idle(runner);
  REQUIRE(blocker);
  sqlite3_exec(blocker, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(blocker);

  CHECK(job.phase == Phase::failed);
  REQUIRE(job.error);
  CHECK(job.error->kind == ErrorKind::state);
  CHECK(job.error->message.find("not sent: the state store could not record the send") != std::string::npos);
  CHECK_FALSE(job.sent);
  CHECK(fake.stats()["uploads"] == 1);
  CHECK(fake.stats()["requests"]["submit"] == 0);
  CHECK(fake.stats()["jobs_created"] == 0);
  auto row = store->get(job.key);
  REQUIRE(row);
  CHECK(row->state == JobState::Sending);  // claimed, never sent: the next run submits it
  CHECK_FALSE(row->sent_ms);
}

TEST_CASE("fal backend: a submit fal rate-limited is unsent again until it is retried", "[run][fal][fake]") {
  krt::FakeFal fake({"--key", "test:secret", "--queue-ms", "20", "--run-ms", "50"});
  krt::TempDir dir("kr-429");
  auto store = StateStore::open(dir / "state");
  auto owned = fal_runner(fake, dir, *store);
  Runner& runner = *owned;
  fake.fault({{"route", "submit"}, {"action", "status"}, {"code", 429}, {"retry_after", 1}});

  // Between the 429 and the retry, the store must not say "sent": a crash there would leave
  // the job "unknown" (never resubmitted) although fal surely has nothing.
  bool was_sent = false, checked_between = false;
  std::optional<std::int64_t> sent_between;
  runner.on_change([&](const Job& job) {
    if (job.sent) was_sent = true;
    else if (was_sent && !checked_between && job.phase == Phase::submitting) {
      checked_between = true;
      sent_between = store->get(job.key)->sent_ms;
    }
  });
  Job& job = runner.submit(t2v("shot", "a fox, rate limited once"));
  run_to_idle(runner);
  CHECK(checked_between);
  CHECK_FALSE(sent_between);
  CHECK(job.phase == Phase::done);
  auto st = fake.stats();
  CHECK(st["requests"]["submit"] == 2);
  CHECK(st["jobs_created"] == 1);
  auto row = store->get(job.key);
  CHECK(row->state == JobState::Done);
  CHECK(row->sent_ms);  // the retry that fal took
}
