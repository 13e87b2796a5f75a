// StateStore: the durable job journal. Each test fails if the feature it names breaks.
#include <catch2/catch.hpp>

#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "net/sha256.h"
#include "run/state_store.h"
#include "files.h"
#include "store.h"

namespace fs = std::filesystem;
using kr::run::Claim;
using kr::run::JobIntent;
using kr::run::JobRecord;
using kr::run::JobState;
using kr::run::StateStore;
using kr::run::StoreOptions;
using nlohmann::json;

using krt::TempDir;
using krt::store_intent;

namespace {


// A manual clock shared by every store of a test.
struct Clock {
  std::shared_ptr<std::atomic<std::int64_t>> t = std::make_shared<std::atomic<std::int64_t>>(1'000'000);
  std::function<std::int64_t()> fn() const {
    auto p = t;
    return [p] { return p->load(); };
  }
  void advance(std::int64_t ms) { *t += ms; }
};

constexpr std::int64_t kLease = 15000;

// Owner strings name this process's pid, so the pid check sees them alive; only the heartbeat
// (the lease) can make them dead.
std::string owner_named(const std::string& run) {
  std::string o = StateStore::make_owner();
  return o.substr(0, o.rfind('#') + 1) + run;
}

std::unique_ptr<StateStore> open_store(const fs::path& dir, const Clock& clock, const std::string& run,
                                       std::int64_t run_started_ms = 0) {
  StoreOptions o;
  o.owner = owner_named(run);
  o.lease = std::chrono::milliseconds(kLease);
  o.now_ms = clock.fn();
  o.run_started_ms = run_started_ms;
  return StateStore::open(dir, o);
}

// Most tests start from one store, run "a", in a fresh directory; others open more beside it.
struct OneStore {
  TempDir d;
  Clock clock;
  std::unique_ptr<StateStore> a = open_store(d.path(), clock, "a");
};

fs::path write_file(const fs::path& p, const std::string& content) {
  std::ofstream(p, std::ios::binary) << content;
  return p;
}

// Drives a claimed job (Submit) to `done` with one video file: the request goes out
// (mark_sent), fal answers, the result and the file are recorded. Returns the file path.
fs::path finish(StateStore& s, const std::string& key, const fs::path& dir,
                const std::string& content = "VIDEO-BYTES", const std::string& file = "") {
  s.mark_sent(key);
  s.mark_submitted(key, "req-" + key);
  s.store_result(key, {{"video", {{"url", "https://fal.media/" + key + ".mp4"}}}}, 5.0);
  fs::path f = write_file(dir / (file.empty() ? key + ".mp4" : file), content);
  s.add_file(key, "video", f, *kr::net::sha256_file(f.string()), fs::file_size(f));
  s.mark_done(key);
  return f;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

TEST_CASE("store: open creates the directory, WAL, versioned schema", "[store]") {
  TempDir d;
  fs::path dir = d.path() / "a" / ".klingrun";
  Clock clock;
  {
    auto s = open_store(dir, clock, "r1");
    CHECK(fs::exists(dir / "state.db"));
    CHECK(s->pragma("journal_mode") == "wal");
    CHECK(s->pragma("synchronous") == "2");  // FULL; which steps use less: store_durability_test.cpp
    CHECK(s->pragma("user_version") == "1");
    CHECK(std::stoi(s->pragma("busy_timeout")) > 0);
  }
  // WAL is a property of the file: a plain connection sees it too.
  sqlite3* raw = nullptr;
  REQUIRE(sqlite3_open((dir / "state.db").c_str(), &raw) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(raw, "PRAGMA journal_mode", -1, &st, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  CHECK(std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, 0))) == "wal");
  sqlite3_finalize(st);
  sqlite3_close(raw);
}

TEST_CASE("store: open errors name the path", "[store]") {
  TempDir d;
  Clock clock;
  auto blocker = write_file(d.path() / "file", "x");
  CHECK_THROWS_WITH(open_store(blocker / "sub", clock, "r"), Catch::Contains((blocker / "sub").string()));

  fs::create_directories(d.path() / "bad");
  write_file(d.path() / "bad" / "state.db", std::string(4096, 'z'));
  CHECK_THROWS_WITH(open_store(d.path() / "bad", clock, "r"), Catch::Contains("state.db"));

  // A schema from a newer klingrun is refused, not clobbered.
  { auto s = open_store(d.path() / "new", clock, "r"); }
  sqlite3* raw = nullptr;
  REQUIRE(sqlite3_open((d.path() / "new" / "state.db").c_str(), &raw) == SQLITE_OK);
  REQUIRE(sqlite3_exec(raw, "PRAGMA user_version=99", nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(raw);
  CHECK_THROWS_WITH(open_store(d.path() / "new", clock, "r"), Catch::Contains("schema version 99"));
}

TEST_CASE("store: new job → Submit, row is sending with this owner", "[store][claim]") {
  TempDir d;
  Clock clock;
  auto s = open_store(d.path(), clock, "r1");
  Claim c = s->claim(store_intent("k1"));
  CHECK(c.action == Claim::Submit);
  CHECK(c.job.state == JobState::Sending);
  CHECK(c.job.owner == s->owner());
  CHECK(c.job.generation == 1);
  CHECK_FALSE(c.job.sent_ms);  // only the intent is recorded; nothing went out yet
  CHECK(c.job.created_ms == clock.t->load());
  CHECK(c.job.cost_usd == Approx(0.28));
  CHECK(c.job.input["prompt"] == "a fox in the snow k1");
  auto g = s->get("k1");
  REQUIRE(g);
  CHECK(g->state == JobState::Sending);
  CHECK_FALSE(g->sent_ms);
  CHECK_FALSE(s->get("nope"));
}

TEST_CASE_METHOD(OneStore, "store: full lifecycle, then Reuse from another process costs nothing", "[store][claim]") {
  REQUIRE(a->claim(store_intent("k")).action == Claim::Submit);
  clock.advance(50);
  a->mark_sent("k");
  clock.advance(50);
  a->mark_submitted("k", "req-1");
  auto r = a->get("k");
  CHECK(r->state == JobState::Submitted);
  CHECK(r->request_id == "req-1");
  CHECK(r->sent_ms == clock.t->load() - 50);
  CHECK(r->submitted_ms == clock.t->load());
  clock.advance(100);
  a->store_result("k", {{"video", {{"url", "u"}}}}, 5.0);
  r = a->get("k");
  CHECK(r->state == JobState::Completed);
  CHECK(r->result["video"]["url"] == "u");
  CHECK(r->billable_units == Approx(5.0));
  CHECK(r->files.empty());
  fs::path f = write_file(d.path() / "k.mp4", "bytes");
  a->add_file("k", "video", f, *kr::net::sha256_file(f.string()), 5);
  clock.advance(100);
  a->mark_done("k");
  r = a->get("k");
  CHECK(r->state == JobState::Done);
  CHECK(r->owner.empty());
  CHECK(r->done_ms == clock.t->load());
  REQUIRE(r->files.size() == 1);
  CHECK(r->files[0].path == f);

  auto b = open_store(d.path(), clock, "b");
  Claim c = b->claim(store_intent("k"));
  CHECK(c.action == Claim::Reuse);
  CHECK(c.job.result["video"]["url"] == "u");
  CHECK(c.job.generation == 1);
  CHECK(b->history("k").size() == 1);  // nothing new was recorded
}

TEST_CASE_METHOD(OneStore, "store: the result is stored before files, a crash then means Download, not Submit", "[store][claim]") {
  REQUIRE(a->claim(store_intent("k")).action == Claim::Submit);
  a->mark_sent("k");
  a->mark_submitted("k", "req-1");
  a->store_result("k", {{"video", {{"url", "https://x/v.mp4"}}}}, std::nullopt);
  // `a` is still live (fresh heartbeat): another process must not download the same file.
  auto b = open_store(d.path(), clock, "b");
  CHECK(b->claim(store_intent("k")).action == Claim::WaitOther);
  CHECK(a->claim(store_intent("k")).action == Claim::WaitOther);  // a is downloading it already
  // `a` crashes (no release, no heartbeat): after the lease, b downloads from the stored result.
  a.reset();
  clock.advance(kLease + 1);
  Claim c = b->claim(store_intent("k"));
  CHECK(c.action == Claim::Download);
  CHECK(c.job.result["video"]["url"] == "https://x/v.mp4");
  CHECK(c.job.owner == b->owner());
  CHECK_FALSE(c.job.billable_units);
}

TEST_CASE_METHOD(OneStore, "store: Reuse is rejected when a file is deleted or modified", "[store][claim]") {
  REQUIRE(a->claim(store_intent("k")).action == Claim::Submit);
  fs::path f = finish(*a, "k", d.path(), "0123456789");
  a->release();
  auto b = open_store(d.path(), clock, "b");
  REQUIRE(b->claim(store_intent("k")).action == Claim::Reuse);

  auto redo = [&](const std::string& content) {
    write_file(f, content);
    b->add_file("k", "video", f, *kr::net::sha256_file(f.string()), fs::file_size(f));
    b->mark_done("k");
    b->release();
  };

  SECTION("deleted") {
    fs::remove(f);
    Claim c = b->claim(store_intent("k"));
    CHECK(c.action == Claim::Download);
    CHECK(c.reason.find("missing") != std::string::npos);
    CHECK(c.job.state == JobState::Completed);  // set back: an interrupted re-download retries
    CHECK(c.job.result["video"]["url"] == "https://fal.media/k.mp4");
    CHECK(c.job.request_id == "req-k");
    redo("0123456789");
    CHECK(b->claim(store_intent("k")).action == Claim::Reuse);
  }
  SECTION("same size, different content (hash checked)") {
    write_file(f, "0123456780");
    Claim c = b->claim(store_intent("k"));
    CHECK(c.action == Claim::Download);
    CHECK(c.reason.find("sha256") != std::string::npos);
  }
  SECTION("different size") {
    write_file(f, "short");
    Claim c = b->claim(store_intent("k"));
    CHECK(c.action == Claim::Download);
    CHECK(c.reason.find("size") != std::string::npos);
    redo("a new download of another size");
    CHECK(b->claim(store_intent("k")).action == Claim::Reuse);
  }
  // Never a new generation: nothing was paid twice.
  CHECK(b->history("k").size() == 1);
}

TEST_CASE_METHOD(OneStore, "store: submitted jobs are attached to, never resubmitted", "[store][claim]") {
  REQUIRE(a->claim(store_intent("k")).action == Claim::Submit);
  a->mark_sent("k");
  a->mark_submitted("k", "req-9");
  auto b = open_store(d.path(), clock, "b");

  SECTION("live other owner → WaitOther") {
    Claim c = b->claim(store_intent("k"));
    CHECK(c.action == Claim::WaitOther);
    CHECK(c.job.owner == a->owner());
  }
  SECTION("same run → Attach") {
    Claim c = a->claim(store_intent("k"));
    CHECK(c.action == Claim::Attach);
    CHECK(c.job.request_id == "req-9");
  }
  SECTION("released owner → Attach at once") {
    a->release();
    Claim c = b->claim(store_intent("k"));
    CHECK(c.action == Claim::Attach);
    CHECK(c.job.request_id == "req-9");
    CHECK(c.job.owner == b->owner());
    // ... and now b owns it: a third process waits.
    auto e = open_store(d.path(), clock, "e");
    CHECK(e->claim(store_intent("k")).action == Claim::WaitOther);
  }
  SECTION("stale owner → Attach") {
    clock.advance(kLease + 1);
    Claim c = b->claim(store_intent("k"));
    CHECK(c.action == Claim::Attach);
    CHECK(c.job.owner == b->owner());
  }
  CHECK(a->history("k").size() == 1);
}

TEST_CASE_METHOD(OneStore, "store: heartbeat keeps ownership alive past the lease", "[store][claim]") {
  auto b = open_store(d.path(), clock, "b");
  REQUIRE(a->claim(store_intent("k")).action == Claim::Submit);
  a->mark_sent("k");
  a->mark_submitted("k", "req");
  for (int i = 0; i < 4; ++i) {
    clock.advance(kLease / 2);
    a->heartbeat();
    CHECK(b->claim(store_intent("k")).action == Claim::WaitOther);
  }
  CHECK(b->get("k")->heartbeat_ms == clock.t->load());
  clock.advance(kLease);
  CHECK(b->claim(store_intent("k")).action == Claim::Attach);
}

TEST_CASE_METHOD(OneStore, "store: sent, then its owner died → Unknown, never resubmitted unless asked", "[store][claim]") {
  REQUIRE(a->claim(store_intent("k")).action == Claim::Submit);
  a->mark_sent("k");  // the request went out
  auto b = open_store(d.path(), clock, "b");
  // Live: wait for it.
  CHECK(b->claim(store_intent("k")).action == Claim::WaitOther);
  // The same run claiming it again while it is being sent waits too (no double submit).
  CHECK(a->claim(store_intent("k")).action == Claim::WaitOther);

  clock.advance(kLease + 1);  // a crashed between sending and fal's answer
  Claim c = b->claim(store_intent("k"));
  CHECK(c.action == Claim::Unknown);
  CHECK(c.job.state == JobState::Unknown);  // recorded
  CHECK(c.job.generation == 1);
  CHECK(c.job.owner.empty());               // b does not take it over
  CHECK(c.job.sent_ms);
  CHECK(c.job.error.find("may or may not") != std::string::npos);
  CHECK(b->claim(store_intent("k")).action == Claim::Unknown);  // stays unknown

  JobIntent again = store_intent("k");
  again.resubmit_unknown = true;
  c = b->claim(again);
  CHECK(c.action == Claim::Submit);
  CHECK(c.job.generation == 2);
  CHECK(c.job.state == JobState::Sending);
  CHECK_FALSE(c.job.sent_ms);  // the new generation has not gone out yet
  auto h = b->history("k");
  REQUIRE(h.size() == 2);
  CHECK(h[0].state == JobState::Unknown);  // the old one is kept: it may exist on fal
  CHECK(h[0].sent_ms);
  CHECK(h[1].state == JobState::Sending);
}

TEST_CASE_METHOD(OneStore, "store: unsent sending whose owner died → Submit again, same generation, new owner", "[store][claim][sent]") {
  Claim first = a->claim(store_intent("k"));
  REQUIRE(first.action == Claim::Submit);
  const std::int64_t created = first.job.created_ms;
  // a stops before mark_sent (e.g. while uploading inputs or waiting for a slot).
  auto b = open_store(d.path(), clock, "b");
  CHECK(b->claim(store_intent("k")).action == Claim::WaitOther);  // live owner: wait
  CHECK(a->claim(store_intent("k")).action == Claim::WaitOther);  // same run: never a second submit

  JobIntent in = store_intent("k");
  SECTION("plain claim") {}
  SECTION("with resubmit_unknown: still the same generation, nothing becomes unknown") {
    in.resubmit_unknown = true;
  }
  clock.advance(kLease + 1);  // a died
  Claim c = b->claim(in);
  CHECK(c.action == Claim::Submit);
  CHECK(c.reason.find("before sending") != std::string::npos);
  CHECK(c.job.generation == 1);  // the same generation: no request of it exists on fal
  CHECK(c.job.state == JobState::Sending);
  CHECK(c.job.owner == b->owner());
  CHECK(c.job.heartbeat_ms == clock.t->load());
  CHECK(c.job.created_ms == created);
  CHECK_FALSE(c.job.sent_ms);
  CHECK(c.job.error.empty());
  auto h = b->history("k");
  REQUIRE(h.size() == 1);
  CHECK(h[0].state == JobState::Sending);

  // a wakes up from its stall and is about to send: the store vetoes it, recording nothing.
  CHECK_THROWS_AS(a->mark_sent("k"), kr::run::ClaimLost);
  CHECK_FALSE(b->get("k")->sent_ms);
  CHECK(b->get("k")->owner == b->owner());

  // b drives it now: another process waits, and b itself does not submit twice.
  auto e = open_store(d.path(), clock, "e");
  CHECK(e->claim(store_intent("k")).action == Claim::WaitOther);
  CHECK(b->claim(store_intent("k")).action == Claim::WaitOther);
  b->mark_sent("k");
  CHECK(b->get("k")->sent_ms == clock.t->load());
  b->mark_submitted("k", "req-b");
  auto r = b->get("k");
  CHECK(r->state == JobState::Submitted);
  CHECK(r->generation == 1);
  CHECK(r->request_id == "req-b");
  CHECK(b->history("k").size() == 1);
}

TEST_CASE_METHOD(OneStore, "store: mark_sent sets sent_ms, it is null right after the claim", "[store][sent]") {
  Claim c = a->claim(store_intent("k"));
  REQUIRE(c.action == Claim::Submit);
  CHECK_FALSE(c.job.sent_ms);
  CHECK_FALSE(a->get("k")->sent_ms);
  clock.advance(250);
  CHECK_FALSE(a->get("k")->sent_ms);  // time alone changes nothing
  a->mark_sent("k");
  auto r = a->get("k");
  REQUIRE(r->sent_ms);
  CHECK(*r->sent_ms == clock.t->load());
  CHECK(*r->sent_ms == r->created_ms + 250);
  CHECK(r->state == JobState::Sending);  // still waiting for fal's answer
  CHECK(r->owner == a->owner());
  CHECK_FALSE(r->submitted_ms);
  // Allowed again from sending (a retried attempt); sent_ms stays set.
  clock.advance(100);
  const std::int64_t first_sent = *r->sent_ms;
  a->mark_sent("k");
  r = a->get("k");
  REQUIRE(r->sent_ms);
  CHECK(*r->sent_ms >= first_sent);
  CHECK(r->state == JobState::Sending);
  // Kept through the rest of the lifecycle and across a reopen.
  a->mark_submitted("k", "req");
  CHECK(a->get("k")->sent_ms);
  a.reset();
  auto b = open_store(d.path(), clock, "b");
  CHECK(b->get("k")->sent_ms);
  // A new generation starts unsent again.
  b->mark_failed("k", "boom");
  Claim again = b->claim(store_intent("k"));
  REQUIRE(again.action == Claim::Submit);
  CHECK(again.job.generation == 2);
  CHECK_FALSE(again.job.sent_ms);
  CHECK(b->history("k")[0].sent_ms);
}

TEST_CASE_METHOD(OneStore, "store: unmark_sent: a withdrawn send is failed and unsent, and submitted again", "[store][sent]") {
  REQUIRE(a->claim(store_intent("k")).action == Claim::Submit);
  a->mark_sent("k");
  a->unmark_sent("k", "not sent: fsync failed");
  auto r = a->get("k");
  CHECK(r->state == JobState::Failed);
  CHECK_FALSE(r->sent_ms);
  CHECK(r->error == "not sent: fsync failed");
  CHECK(r->owner.empty());
  // The next run submits it (a new generation), not "unknown".
  auto b = open_store(d.path(), clock, "b");
  Claim again = b->claim(store_intent("k"));
  CHECK(again.action == Claim::Submit);
  CHECK(again.job.generation == 2);
  // Only from sending, and only by its owner.
  b->mark_sent("k");
  b->mark_submitted("k", "req");
  CHECK_THROWS_AS(b->unmark_sent("k", "x"), std::logic_error);
  REQUIRE(b->claim(store_intent("q")).action == Claim::Submit);
  CHECK_THROWS_AS(a->unmark_sent("q", "x"), kr::run::ClaimLost);
  CHECK(b->get("q")->state == JobState::Sending);
}

TEST_CASE_METHOD(OneStore, "store: clear_sent: a send fal surely did not take is unsent again, still claimed", "[store][sent]") {
  REQUIRE(a->claim(store_intent("k")).action == Claim::Submit);
  a->mark_sent("k");
  a->clear_sent("k");
  auto r = a->get("k");
  CHECK(r->state == JobState::Sending);
  CHECK_FALSE(r->sent_ms);
  CHECK(r->owner == a->owner());
  // A crash now: the next process submits it (the same generation), it is not "unknown".
  clock.advance(kLease + 1);
  auto b = open_store(d.path(), clock, "b");
  Claim c = b->claim(store_intent("k"));
  CHECK(c.action == Claim::Submit);
  CHECK(c.job.generation == 1);
  // Only from sending, and only by its owner.
  CHECK_THROWS_AS(a->clear_sent("k"), kr::run::ClaimLost);
  b->mark_sent("k");
  b->mark_submitted("k", "req");
  CHECK_THROWS_AS(b->clear_sent("k"), std::logic_error);
}

TEST_CASE_METHOD(OneStore, "store: mark_sent is refused in every state but sending", "[store][sent]") {
  CHECK_THROWS_AS(a->mark_sent("missing"), std::logic_error);

  // Drives `key` from a fresh Submit claim to `target`.
  auto drive = [&](const std::string& key, JobState target) {
    REQUIRE(a->claim(store_intent(key, key)).action == Claim::Submit);
    switch (target) {
      case JobState::Unknown:
        a->mark_sent(key);
        a->mark_unknown(key, "timeout");
        break;
      case JobState::Failed:
        a->mark_failed(key, "connection refused");  // never reached fal
        break;
      case JobState::Cancelled:
        a->mark_cancelled(key);
        break;
      case JobState::Submitted:
      case JobState::Completed:
      case JobState::Done:
        a->mark_sent(key);
        a->mark_submitted(key, "req-" + key);
        if (target == JobState::Submitted) break;
        a->store_result(key, {{"ok", true}});
        if (target == JobState::Completed) break;
        a->mark_done(key);
        break;
      case JobState::Sending:
        break;
    }
    REQUIRE(a->get(key)->state == target);
  };
  for (JobState st : {JobState::Unknown, JobState::Submitted, JobState::Completed, JobState::Done,
                      JobState::Failed, JobState::Cancelled}) {
    const std::string key = "k-" + std::string(kr::run::to_string(st));
    INFO(key);
    drive(key, st);
    auto before = a->get(key);
    CHECK_THROWS_AS(a->mark_sent(key), std::logic_error);
    CHECK_THROWS_WITH(a->mark_sent(key), Catch::Contains("in state " + std::string(kr::run::to_string(st))));
    auto after = a->get(key);
    CHECK(after->state == st);  // a refused transition changes nothing
    CHECK(after->sent_ms == before->sent_ms);
  }
  // The one legal state.
  drive("k-sending", JobState::Sending);
  CHECK_NOTHROW(a->mark_sent("k-sending"));
}

TEST_CASE_METHOD(OneStore, "store: mark_unknown → Unknown, resubmit_unknown → Submit", "[store][claim]") {
  REQUIRE(a->claim(store_intent("k")).action == Claim::Submit);
  a->mark_sent("k");
  a->mark_unknown("k", "timeout after sending the submit");
  auto r = a->get("k");
  CHECK(r->state == JobState::Unknown);
  CHECK(r->error == "timeout after sending the submit");
  CHECK(r->owner.empty());
  Claim c = a->claim(store_intent("k"));  // even the same run does not resubmit on its own
  CHECK(c.action == Claim::Unknown);
  CHECK(c.reason == "timeout after sending the submit");
  JobIntent again = store_intent("k");
  again.resubmit_unknown = true;
  CHECK(a->claim(again).action == Claim::Submit);
  // An unknown job that turns out to exist can still be recorded as submitted.
  a->mark_sent("k");
  a->mark_unknown("k", "again");
  a->mark_submitted("k", "found-it");
  CHECK(a->get("k")->state == JobState::Submitted);
}

TEST_CASE("store: an owner whose process is gone is dead at once (same host)", "[store][claim]") {
  TempDir d;
  Clock clock;
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) ::_exit(0);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  std::string me = StateStore::make_owner();
  std::string dead = std::to_string(child) + me.substr(me.find('@'));

  StoreOptions o;
  o.owner = dead;
  o.now_ms = clock.fn();
  o.lease = std::chrono::milliseconds(kLease);
  auto a = StateStore::open(d.path(), o);
  REQUIRE(a->claim(store_intent("k")).action == Claim::Submit);
  a->mark_sent("k");
  REQUIRE(a->claim(store_intent("k2")).action == Claim::Submit);
  a->mark_sent("k2");
  a->mark_submitted("k2", "req-k2");
  REQUIRE(a->claim(store_intent("k3")).action == Claim::Submit);  // never sent
  auto b = open_store(d.path(), clock, "b");
  // Heartbeats are fresh, but the pid no longer exists.
  CHECK(b->claim(store_intent("k")).action == Claim::Unknown);
  CHECK(b->claim(store_intent("k2")).action == Claim::Attach);
  Claim c3 = b->claim(store_intent("k3"));
  CHECK(c3.action == Claim::Submit);
  CHECK(c3.job.generation == 1);
  CHECK(c3.job.owner == b->owner());
}

TEST_CASE_METHOD(OneStore, "store: failed and cancelled jobs are submitted again as a new generation", "[store][claim]") {
  REQUIRE(a->claim(store_intent("k")).action == Claim::Submit);
  a->mark_sent("k");
  a->mark_submitted("k", "req-1");
  a->mark_failed("k", "content policy");
  auto r = a->get("k");
  CHECK(r->state == JobState::Failed);
  CHECK(r->error == "content policy");
  CHECK(r->owner.empty());
  Claim c = a->claim(store_intent("k"));
  CHECK(c.action == Claim::Submit);
  CHECK(c.job.generation == 2);
  CHECK(c.reason.find("content policy") != std::string::npos);
  a->mark_cancelled("k");
  CHECK(a->get("k")->state == JobState::Cancelled);
  c = a->claim(store_intent("k"));
  CHECK(c.action == Claim::Submit);
  CHECK(c.job.generation == 3);
  auto h = a->history("k");
  REQUIRE(h.size() == 3);
  CHECK(h[0].state == JobState::Failed);
  CHECK(h[0].request_id == "req-1");
  CHECK(h[1].state == JobState::Cancelled);
}

TEST_CASE("store: fresh generates anew once per run and keeps history", "[store][claim][fresh]") {
  TempDir d;
  Clock clock;
  fs::path f1;
  {
    auto a = open_store(d.path(), clock, "a", clock.t->load());
    REQUIRE(a->claim(store_intent("k")).action == Claim::Submit);
    f1 = finish(*a, "k", d.path(), "take-one");
    a->release();
  }
  clock.advance(1000);
  JobIntent fresh = store_intent("k");
  fresh.fresh = true;

  SECTION("done → new generation; the old one and its files stay in history") {
    auto b = open_store(d.path(), clock, "b", clock.t->load());
    Claim c = b->claim(fresh);
    CHECK(c.action == Claim::Submit);
    CHECK(c.job.generation == 2);
    CHECK(c.job.result.is_null());
    // Within this run `fresh` does not regenerate again.
    CHECK(b->claim(fresh).action == Claim::WaitOther);  // this run is sending it
    b->mark_sent("k");
    CHECK(b->claim(fresh).action == Claim::WaitOther);
    b->mark_submitted("k", "req-2");
    CHECK(b->claim(fresh).action == Claim::Attach);
    b->store_result("k", {{"video", {{"url", "v2"}}}}, 5.0);
    fs::path f2 = write_file(d.path() / "k-2.mp4", "take-two");
    b->add_file("k", "video", f2, *kr::net::sha256_file(f2.string()), fs::file_size(f2));
    b->mark_done("k");
    Claim again = b->claim(fresh);
    CHECK(again.action == Claim::Reuse);
    CHECK(again.job.result["video"]["url"] == "v2");
    auto h = b->history("k");
    REQUIRE(h.size() == 2);
    CHECK(h[0].state == JobState::Done);
    REQUIRE(h[0].files.size() == 1);
    CHECK(h[0].files[0].path == f1);
    // A later run without fresh reuses the newest generation.
    b->release();
    auto e = open_store(d.path(), clock, "e", clock.t->load() + 1);
    CHECK(e->claim(store_intent("k")).action == Claim::Reuse);
  }
  SECTION("a generation another live process started during this run is not regenerated") {
    auto b = open_store(d.path(), clock, "b", clock.t->load());
    auto other = open_store(d.path(), clock, "other", clock.t->load());
    REQUIRE(other->claim(fresh).action == Claim::Submit);  // gen 2, created after b's start
    CHECK(b->claim(fresh).action == Claim::WaitOther);
    finish(*other, "k", d.path(), "by-other");
    CHECK(b->claim(fresh).action == Claim::Reuse);
    CHECK(b->history("k").size() == 2);
  }
  SECTION("fresh never steals a job a live process is driving") {
    auto other = open_store(d.path(), clock, "other", 0);
    REQUIRE(other->claim(store_intent("k2")).action == Claim::Submit);
    other->mark_sent("k2");
    other->mark_submitted("k2", "req-o");
    clock.advance(10);
    auto b = open_store(d.path(), clock, "b", clock.t->load());
    JobIntent f2 = store_intent("k2");
    f2.fresh = true;
    CHECK(b->claim(f2).action == Claim::WaitOther);
    CHECK(b->history("k2").size() == 1);
  }
  SECTION("fresh on an unknown job submits anew and keeps the unknown one") {
    auto other = open_store(d.path(), clock, "other", 0);
    REQUIRE(other->claim(store_intent("k3")).action == Claim::Submit);
    other->mark_sent("k3");
    other.reset();  // crashed while sending
    clock.advance(kLease + 1);
    auto b = open_store(d.path(), clock, "b", clock.t->load());
    JobIntent f3 = store_intent("k3");
    f3.fresh = true;
    Claim c = b->claim(f3);
    CHECK(c.action == Claim::Submit);
    auto h = b->history("k3");
    REQUIRE(h.size() == 2);
    CHECK(h[0].state == JobState::Unknown);
  }
  SECTION("fresh on a never-sent job does not call it unknown") {
    auto other = open_store(d.path(), clock, "other", 0);
    REQUIRE(other->claim(store_intent("k4")).action == Claim::Submit);
    other.reset();  // stopped before sending
    clock.advance(kLease + 1);
    auto b = open_store(d.path(), clock, "b", clock.t->load());
    JobIntent f4 = store_intent("k4");
    f4.fresh = true;
    CHECK(b->claim(f4).action == Claim::Submit);
    auto h = b->history("k4");
    REQUIRE(h.size() == 2);
    CHECK(h[0].state == JobState::Cancelled);
    CHECK(h[0].error.find("before it was sent") != std::string::npos);
  }
}

TEST_CASE_METHOD(OneStore, "store: transitions are checked", "[store]") {
  CHECK_THROWS_AS(a->mark_submitted("missing", "r"), std::logic_error);
  REQUIRE(a->claim(store_intent("k")).action == Claim::Submit);
  CHECK_THROWS_AS(a->mark_done("k"), std::logic_error);  // no result yet
  CHECK_THROWS_AS(a->add_file("k", "video", "/x", "h", 1), std::logic_error);
  CHECK_THROWS_AS(a->mark_submitted("k", ""), std::invalid_argument);
  a->mark_sent("k");
  a->mark_submitted("k", "req-1");
  a->mark_submitted("k", "req-1");  // idempotent
  CHECK_THROWS_WITH(a->mark_submitted("k", "req-2"), Catch::Contains("already submitted as req-1"));
  CHECK_THROWS_AS(a->mark_unknown("k", "x"), std::logic_error);  // it is known
  CHECK_THROWS_AS(a->mark_done("k"), std::logic_error);
  a->store_result("k", {{"ok", true}});
  CHECK_THROWS_AS(a->mark_cancelled("k"), std::logic_error);
  a->mark_done("k");
  CHECK_THROWS_WITH(a->store_result("k", {{"ok", 1}}), Catch::Contains("in state done"));
  CHECK_THROWS_AS(a->mark_failed("k", "x"), std::logic_error);
  CHECK(a->get("k")->state == JobState::Done);  // a refused transition changes nothing
}

TEST_CASE_METHOD(OneStore, "store: each store updates the generation it claimed", "[store]") {
  REQUIRE(a->claim(store_intent("k")).action == Claim::Submit);  // gen 1
  a->mark_sent("k");                                       // ... and its request went out
  clock.advance(kLease + 1);                               // a looks dead (stalled)
  auto b = open_store(d.path(), clock, "b");
  JobIntent again = store_intent("k");
  again.resubmit_unknown = true;
  REQUIRE(b->claim(again).action == Claim::Submit);  // gen 2 (gen 1 recorded as unknown)
  b->mark_sent("k");                                 // lands on gen 2
  // The stalled a wakes up and records fal's answer for ITS request: it lands on gen 1.
  a->mark_submitted("k", "req-a");
  b->mark_submitted("k", "req-b");
  auto h = b->history("k");
  REQUIRE(h.size() == 2);
  CHECK(h[0].request_id == "req-a");
  CHECK(h[1].request_id == "req-b");
  CHECK(b->get("k")->request_id == "req-b");
}

TEST_CASE_METHOD(OneStore, "store: release hands rows to the next run", "[store]") {
  REQUIRE(a->claim(store_intent("sending")).action == Claim::Submit);
  a->mark_sent("sending");
  REQUIRE(a->claim(store_intent("submitted")).action == Claim::Submit);
  a->mark_sent("submitted");
  a->mark_submitted("submitted", "req");
  REQUIRE(a->claim(store_intent("completed")).action == Claim::Submit);
  a->mark_sent("completed");
  a->mark_submitted("completed", "req-c");
  a->store_result("completed", {{"x", 1}});
  a->release();
  for (auto& r : a->list()) CHECK(r.owner.empty());
  auto b = open_store(d.path(), clock, "b");  // no waiting for the lease
  CHECK(b->claim(store_intent("sending")).action == Claim::Unknown);
  CHECK(b->get("sending")->error.find("released while sending") != std::string::npos);
  CHECK(b->claim(store_intent("submitted")).action == Claim::Attach);
  CHECK(b->claim(store_intent("completed")).action == Claim::Download);
}

TEST_CASE_METHOD(OneStore, "store: release: an unsent row → Submit for the next claim, a sent one → Unknown", "[store][sent]") {
  REQUIRE(a->claim(store_intent("unsent")).action == Claim::Submit);
  REQUIRE(a->claim(store_intent("sent")).action == Claim::Submit);
  a->mark_sent("sent");
  a->release();

  auto u = a->get("unsent");
  CHECK(u->state == JobState::Sending);  // nothing went out: not unknown
  CHECK(u->owner.empty());
  CHECK_FALSE(u->heartbeat_ms);
  CHECK_FALSE(u->sent_ms);
  CHECK(u->error.empty());
  auto s = a->get("sent");
  CHECK(s->state == JobState::Unknown);
  CHECK(s->owner.empty());
  CHECK(s->error.find("released while sending") != std::string::npos);

  SECTION("another process, at once (no lease wait)") {
    auto b = open_store(d.path(), clock, "b");
    Claim c = b->claim(store_intent("unsent"));
    CHECK(c.action == Claim::Submit);
    CHECK(c.job.generation == 1);
    CHECK(c.job.owner == b->owner());
    CHECK(b->history("unsent").size() == 1);
    Claim k = b->claim(store_intent("sent"));
    CHECK(k.action == Claim::Unknown);
    CHECK(k.reason.find("released while sending") != std::string::npos);
    CHECK(k.job.owner.empty());
  }
  SECTION("the releasing store itself") {
    Claim c = a->claim(store_intent("unsent"));
    CHECK(c.action == Claim::Submit);
    CHECK(c.job.generation == 1);
    CHECK(c.job.owner == a->owner());
    CHECK(a->claim(store_intent("sent")).action == Claim::Unknown);
  }
  CHECK(a->history("sent").size() == 1);
}

TEST_CASE("store: persistence across close and reopen", "[store]") {
  TempDir d;
  Clock clock;
  fs::path f;
  {
    auto a = open_store(d.path(), clock, "a");
    REQUIRE(a->claim(store_intent("k", "intro", "film.lua")).action == Claim::Submit);
    f = finish(*a, "k", d.path(), "video!");
    REQUIRE(a->claim(store_intent("k2", "outro", "film.lua")).action == Claim::Submit);
    a->mark_sent("k2");
    a->mark_submitted("k2", "req-k2");
  }
  auto b = open_store(d.path(), clock, "b");
  auto r = b->get("k");
  REQUIRE(r);
  CHECK(r->name == "intro");
  CHECK(r->script == "film.lua");
  CHECK(r->endpoint == "fal-ai/kling-video/v2.1/standard/text-to-video");
  CHECK(r->input["prompt"] == "a fox in the snow k");
  CHECK(r->take == 1);
  CHECK(r->cost_usd == Approx(0.28));
  CHECK(r->state == JobState::Done);
  CHECK(r->request_id == "req-k");
  CHECK(r->result["video"]["url"] == "https://fal.media/k.mp4");
  CHECK(r->billable_units == Approx(5.0));
  CHECK(r->created_ms == 1'000'000);
  CHECK(r->sent_ms);
  CHECK(r->submitted_ms);
  CHECK(r->completed_ms);
  CHECK(r->done_ms);
  REQUIRE(r->files.size() == 1);
  CHECK(r->files[0].role == "video");
  CHECK(r->files[0].path == f);
  CHECK(r->files[0].size == 6);
  CHECK(r->files[0].sha256 == kr::net::sha256_hex("video!"));
  auto r2 = b->get("k2");
  CHECK(r2->state == JobState::Submitted);
  CHECK(r2->request_id == "req-k2");
}

TEST_CASE_METHOD(OneStore, "store: list, list by script, find_by_name", "[store]") {
  REQUIRE(a->claim(store_intent("k1", "intro", "one.lua")).action == Claim::Submit);
  clock.advance(1);
  REQUIRE(a->claim(store_intent("k2", "middle", "one.lua")).action == Claim::Submit);
  clock.advance(1);
  REQUIRE(a->claim(store_intent("k3", "intro", "two.lua")).action == Claim::Submit);
  clock.advance(1);
  // two.lua reuses one.lua's k2 under another name: it is listed for both scripts.
  a->claim(store_intent("k2", "reused", "two.lua"));

  auto all = a->list();
  REQUIRE(all.size() == 3);
  CHECK(all[0].key == "k1");
  CHECK(all[1].key == "k2");
  CHECK(all[2].key == "k3");
  auto one = a->list(std::string("one.lua"));
  REQUIRE(one.size() == 2);
  CHECK(one[0].key == "k1");
  CHECK(one[1].key == "k2");
  auto two = a->list(std::string("two.lua"));
  REQUIRE(two.size() == 2);
  CHECK(two[0].key == "k3");
  CHECK(two[1].key == "k2");
  CHECK(a->list(std::string("none.lua")).empty());

  CHECK(a->find_by_name("intro")->key == "k3");  // most recently claimed
  CHECK(a->find_by_name("intro", std::string("one.lua"))->key == "k1");
  CHECK(a->find_by_name("reused")->key == "k2");
  CHECK(a->find_by_name("reused")->name == "reused");
  CHECK_FALSE(a->find_by_name("nothing"));
  // An edited shot (new key, same name) is found under its name.
  clock.advance(1);
  REQUIRE(a->claim(store_intent("k1b", "intro", "one.lua")).action == Claim::Submit);
  CHECK(a->find_by_name("intro", std::string("one.lua"))->key == "k1b");
}

TEST_CASE_METHOD(OneStore, "store: gc removes only done jobs whose files were deleted", "[store][gc]") {
  for (auto k : {"kept", "gone", "sending", "submitted", "unknown", "completed", "failed"})
    REQUIRE(a->claim(store_intent(k, k)).action == Claim::Submit);
  finish(*a, "kept", d.path());
  fs::path gone = finish(*a, "gone", d.path());
  for (auto k : {"submitted", "unknown", "completed"}) a->mark_sent(k);
  a->mark_submitted("submitted", "r");
  a->mark_unknown("unknown", "?");
  a->mark_submitted("completed", "r2");
  a->store_result("completed", {{"x", 1}});
  a->mark_failed("failed", "boom");
  fs::remove(gone);
  fs::remove(d.path() / "nonexistent");  // no-op

  CHECK(a->gc() == 1);
  CHECK_FALSE(a->get("gone"));
  CHECK_FALSE(a->find_by_name("gone"));
  for (auto k : {"kept", "sending", "submitted", "unknown", "completed", "failed"}) CHECK(a->get(k));
  CHECK(a->gc() == 0);
  // After gc the job is simply new again.
  CHECK(a->claim(store_intent("gone")).action == Claim::Submit);
}

TEST_CASE("store: gc removes an older generation whose files are gone, keeps the newest", "[store][gc]") {
  TempDir d;
  Clock clock;
  auto a = open_store(d.path(), clock, "a", clock.t->load());
  REQUIRE(a->claim(store_intent("k")).action == Claim::Submit);
  finish(*a, "k", d.path(), "one", "k-1.mp4");
  clock.advance(10);
  auto b = open_store(d.path(), clock, "b", clock.t->load());
  JobIntent fresh = store_intent("k");
  fresh.fresh = true;
  REQUIRE(b->claim(fresh).action == Claim::Submit);
  finish(*b, "k", d.path(), "two", "k-2.mp4");
  CHECK(b->gc() == 0);
  fs::remove(d.path() / "k-1.mp4");
  CHECK(b->gc() == 1);
  auto h = b->history("k");
  REQUIRE(h.size() == 1);
  CHECK(h[0].generation == 2);
  CHECK(b->claim(store_intent("k")).action == Claim::Reuse);
  fs::remove(d.path() / "k-2.mp4");
  CHECK(b->gc() == 1);
  CHECK(b->history("k").empty());
}

// ---------------------------------------------------------------------------------------------
// Several processes

namespace {

void write_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

struct Child {
  pid_t pid;
  int out;  // read end of the child's report pipe
};

// Forks `n` processes running body(i, start): each gets ready, calls start() to wait for the
// common start signal, and returns its report (a thrown exception becomes "error: …" and exit
// code 2). A child stays alive after reporting until all have reported, so an owner whose
// claim is being compared is never dead. Returns the reports in order; checks the exit codes.
std::vector<std::string> race(int n, const std::function<std::string(int, const std::function<void()>&)>& body) {
  int go[2], hold[2];
  REQUIRE(::pipe(go) == 0);
  REQUIRE(::pipe(hold) == 0);
  std::vector<Child> children;
  for (int i = 0; i < n; ++i) {
    int rep[2];
    REQUIRE(::pipe(rep) == 0);
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::close(go[1]);
      ::close(hold[1]);
      ::close(rep[0]);
      char c;
      int code = 0;
      std::string report;
      try {
        report = body(i, [&] { (void)!::read(go[0], &c, 1); });  // EOF releases all together
      } catch (const std::exception& e) {
        report = std::string("error: ") + e.what();
        code = 2;
      }
      write_all(rep[1], report);
      ::close(rep[1]);
      (void)!::read(hold[0], &c, 1);
      ::_exit(code);
    }
    ::close(rep[1]);
    children.push_back({pid, rep[0]});
  }
  ::close(go[0]);
  ::close(hold[0]);
  ::usleep(50 * 1000);  // let every child get ready
  ::close(go[1]);       // go!
  std::vector<std::string> reports;
  for (auto& c : children) {
    reports.push_back(read_all(c.out));
    ::close(c.out);
  }
  ::close(hold[1]);
  for (auto& c : children) {
    int status = 0;
    ::waitpid(c.pid, &status, 0);
    INFO("child " << c.pid);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  return reports;
}

}  // namespace

TEST_CASE("store: N processes claiming one key at the same moment: exactly one Submit", "[store][multiprocess]") {
  constexpr int kChildren = 4;
  for (int round = 0; round < 5; ++round) {
    TempDir d;
    auto reports = race(kChildren, [&](int, const std::function<void()>& start) {
      auto s = StateStore::open(d.path() / ".klingrun");  // real clock, real pid owner
      start();
      return std::string(kr::run::to_string(s->claim(store_intent("same-key")).action));
    });
    std::map<std::string, int> counts;
    for (auto& r : reports) {
      counts[r]++;
      INFO("child said: " << r);
      CHECK((r == "submit" || r == "wait-other"));
    }
    CHECK(counts["submit"] == 1);
    CHECK(counts["wait-other"] == kChildren - 1);
  }
}

TEST_CASE("store: many processes, many keys: no busy errors, one Submit per key", "[store][multiprocess]") {
  constexpr int kChildren = 4;
  constexpr int kKeys = 60;
  TempDir d;
  auto reports = race(kChildren, [&](int i, const std::function<void()>& start) {
    StoreOptions o;
    o.busy_timeout = std::chrono::milliseconds(30000);
    auto s = StateStore::open(d.path(), o);
    start();
    std::string report;
    // Each child walks the keys in its own order so that they collide everywhere.
    for (int n = 0; n < kKeys; ++n) {
      int k = (i % 2 == 0) ? n : kKeys - 1 - n;
      std::string key = "key-" + std::to_string(k);
      Claim cl = s->claim(store_intent(key, key, "many.lua"));
      if (cl.action == Claim::Submit) {
        report += key + "\n";
        s->heartbeat();
        s->mark_sent(key);
        s->mark_submitted(key, "req-" + key);
        s->store_result(key, {{"video", {{"url", key}}}}, 5.0);
        fs::path f = d.path() / (key + ".mp4");
        std::ofstream(f) << key;
        s->add_file(key, "video", f, *kr::net::sha256_file(f.string()), fs::file_size(f));
        s->mark_done(key);
      }
      s->list();
    }
    s->release();
    return report;
  });
  std::map<std::string, int> submits;
  for (auto& r : reports) {
    size_t pos = 0;
    while (pos < r.size()) {
      size_t nl = r.find('\n', pos);
      std::string line = r.substr(pos, nl - pos);
      pos = nl == std::string::npos ? r.size() : nl + 1;
      INFO(line);
      CHECK(line.rfind("error", 0) != 0);
      submits[line]++;
    }
  }
  CHECK(submits.size() == static_cast<size_t>(kKeys));
  for (auto& [k, n] : submits) {
    INFO(k);
    CHECK(n == 1);
  }
  auto s = StateStore::open(d.path());
  auto all = s->list(std::string("many.lua"));
  CHECK(all.size() == static_cast<size_t>(kKeys));
  for (auto& r : all) {
    CHECK(r.state == JobState::Done);
    CHECK(r.generation == 1);
  }
}
