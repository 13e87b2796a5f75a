// StateStore durability policy: which commits reach the disk (an fsync of the WAL) and when.
// The money steps (mark_sent, mark_submitted) are fsynced, at once or by the next sync(); every
// other step commits without an fsync. Each check fails if that policy changes.
#include <catch2/catch.hpp>

#include <sqlite3.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>

#include "net/sha256.h"
#include "run/state_store.h"
#include "sqlite_vfs.h"
#include "files.h"
#include "store.h"

namespace fs = std::filesystem;
using kr::run::Claim;
using kr::run::JobIntent;
using kr::run::StateStore;
using krt::CountingVfs;

using krt::TempDir;
using krt::store_intent;

namespace {



// WAL fsyncs caused by f().
template <class F>
int syncs_of(F&& f) {
  const int before = CountingVfs::wal_syncs;
  f();
  return CountingVfs::wal_syncs - before;
}

}  // namespace

TEST_CASE("store durability: only the money steps are fsynced, the rest commit without", "[store][durability]") {
  CountingVfs vfs;
  TempDir d;
  auto s = StateStore::open(d.path());
  using D = StateStore::Durable;

  // Nothing is sent by a claim: no fsync (mark_sent's covers it before anything leaves).
  CHECK(syncs_of([&] { REQUIRE(s->claim(store_intent("a")).action == Claim::Submit); }) == 0);
  // The default: fsynced before the call returns.
  CHECK(syncs_of([&] { s->mark_sent("a"); }) >= 1);
  CHECK(syncs_of([&] { s->mark_submitted("a", "req-a"); }) >= 1);
  CHECK(s->pragma("synchronous") == "2");  // FULL

  // After the request id, no step costs an fsync.
  fs::path video = d.path() / "a.mp4";
  std::ofstream(video) << "VIDEO";
  CHECK(syncs_of([&] {
          s->heartbeat();
          s->store_result("a", {{"video", {{"url", "https://fal.media/a.mp4"}}}});
          s->add_file("a", "video", video, *kr::net::sha256_file(video.string()), 5);
          s->mark_done("a");
        }) == 0);
  CHECK(s->pragma("synchronous") == "1");  // NORMAL
  CHECK(syncs_of([&] { REQUIRE(s->claim(store_intent("b")).action == Claim::Submit); }) == 0);
  CHECK(syncs_of([&] { s->mark_sent("b"); }) >= 1);  // FULL again for the money step
  CHECK(syncs_of([&] {
          s->mark_failed("b", "rejected by fal (422)");
          REQUIRE(s->claim(store_intent("c")).action == Claim::Submit);
          s->mark_cancelled("c");
          s->release();
          s->gc();
        }) == 0);

  // Batched: committed at once (another connection sees it), fsynced by the next sync() only,
  // once for the whole batch.
  CHECK(syncs_of([&] {
          for (const char* k : {"d", "e", "f"}) {
            REQUIRE(s->claim(store_intent(k)).action == Claim::Submit);
            s->mark_sent(k, D::batched);
          }
        }) == 0);
  {
    auto other = StateStore::open(d.path());
    CHECK(other->get("e")->sent_ms.has_value());
  }
  CHECK(syncs_of([&] { s->sync(); }) == 1);
  CHECK(syncs_of([&] { s->sync(); }) == 0);  // nothing pending
  CHECK(syncs_of([&] { s->mark_submitted("d", "req-d", D::batched); }) == 0);
  CHECK(syncs_of([&] { s->sync(); }) == 1);
  // A FULL commit fsyncs the WAL, and with it every batched step before it.
  s->mark_submitted("e", "req-e", D::batched);
  CHECK(syncs_of([&] { s->mark_submitted("f", "req-f"); }) >= 1);
  CHECK(syncs_of([&] { s->sync(); }) == 0);
}
