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

namespace fs = std::filesystem;
using kr::run::Claim;
using kr::run::JobIntent;
using kr::run::StateStore;

namespace {

// A VFS that counts xSync calls on WAL files and forwards everything to the default VFS. It
// swaps each opened WAL file's method table for a copy whose xSync counts, so SQLite's own
// code (and StateStore::sync, which syncs through SQLite's file object) is what is counted.
struct CountingVfs {
  static inline int wal_syncs = 0;
  static inline sqlite3_vfs* real = nullptr;
  static inline sqlite3_vfs vfs{};
  static inline std::map<const sqlite3_io_methods*, std::unique_ptr<sqlite3_io_methods>> patched;
  static inline std::map<const sqlite3_io_methods*, const sqlite3_io_methods*> original;

  static int sync(sqlite3_file* f, int flags) {
    ++wal_syncs;
    return original.at(f->pMethods)->xSync(f, flags);
  }
  static int open(sqlite3_vfs*, const char* name, sqlite3_file* f, int flags, int* out) {
    int rc = real->xOpen(real, name, f, flags, out);
    if (rc == SQLITE_OK && f->pMethods && (flags & SQLITE_OPEN_WAL)) {
      auto& copy = patched[f->pMethods];
      if (!copy) {
        copy = std::make_unique<sqlite3_io_methods>(*f->pMethods);
        copy->xSync = &CountingVfs::sync;
        original[copy.get()] = f->pMethods;
      }
      f->pMethods = copy.get();
    }
    return rc;
  }
  // Registered as the default VFS for the lifetime of the object.
  CountingVfs() {
    real = sqlite3_vfs_find(nullptr);
    vfs = *real;
    vfs.zName = "kr-counting";
    vfs.xOpen = &CountingVfs::open;
    REQUIRE(sqlite3_vfs_register(&vfs, 1) == SQLITE_OK);
    wal_syncs = 0;
  }
  ~CountingVfs() {
    sqlite3_vfs_unregister(&vfs);
    sqlite3_vfs_register(real, 1);
  }
};

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "kr-sync-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

JobIntent intent(const std::string& key) {
  JobIntent in;
  in.key = key;
  in.name = "shot_" + key;
  in.script = "s.lua";
  in.endpoint = "fal-ai/kling-video/v3/pro/text-to-video";
  in.input = {{"prompt", "a fox " + key}, {"duration", "5"}};
  in.cost_usd = 0.84;
  return in;
}

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
  auto s = StateStore::open(d.path);
  using D = StateStore::Durable;

  // Nothing is sent by a claim: no fsync (mark_sent's covers it before anything leaves).
  CHECK(syncs_of([&] { REQUIRE(s->claim(intent("a")).action == Claim::Submit); }) == 0);
  // The default: fsynced before the call returns.
  CHECK(syncs_of([&] { s->mark_sent("a"); }) >= 1);
  CHECK(syncs_of([&] { s->mark_submitted("a", "req-a"); }) >= 1);
  CHECK(s->pragma("synchronous") == "2");  // FULL

  // After the request id, no step costs an fsync.
  fs::path video = d.path / "a.mp4";
  std::ofstream(video) << "VIDEO";
  CHECK(syncs_of([&] {
          s->heartbeat();
          s->store_result("a", {{"video", {{"url", "https://fal.media/a.mp4"}}}});
          s->add_file("a", "video", video, *kr::net::sha256_file(video.string()), 5);
          s->mark_done("a");
        }) == 0);
  CHECK(s->pragma("synchronous") == "1");  // NORMAL
  CHECK(syncs_of([&] { REQUIRE(s->claim(intent("b")).action == Claim::Submit); }) == 0);
  CHECK(syncs_of([&] { s->mark_sent("b"); }) >= 1);  // FULL again for the money step
  CHECK(syncs_of([&] {
          s->mark_failed("b", "rejected by fal (422)");
          REQUIRE(s->claim(intent("c")).action == Claim::Submit);
          s->mark_cancelled("c");
          s->release();
          s->gc();
        }) == 0);

  // Batched: committed at once (another connection sees it), fsynced by the next sync() only,
  // once for the whole batch.
  CHECK(syncs_of([&] {
          for (const char* k : {"d", "e", "f"}) {
            REQUIRE(s->claim(intent(k)).action == Claim::Submit);
            s->mark_sent(k, D::batched);
          }
        }) == 0);
  {
    auto other = StateStore::open(d.path);
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
