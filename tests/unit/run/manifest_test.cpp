// ManifestWriter: out/<script>/manifest.json.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "run/manifest.h"
#include "files.h"

namespace fs = std::filesystem;
using kr::run::FileRecord;
using kr::run::JobRecord;
using kr::run::JobState;
using kr::run::ManifestWriter;
using ojson = nlohmann::ordered_json;

using krt::TempDir;

namespace {


ojson read_json(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ojson::parse(ss.str());  // throws on invalid JSON
}

JobRecord job(const std::string& key, const std::string& name, JobState st, double cost = 0.5) {
  JobRecord r;
  r.key = key;
  r.name = name;
  r.script = "film.lua";
  r.endpoint = "fal-ai/kling-video/v2.1/pro/image-to-video";
  r.input = {{"prompt", "p " + name}, {"duration", "5"}};
  r.take = 1;
  r.cost_usd = cost;
  r.state = st;
  r.created_ms = 1700000000000;  // 2023-11-14T22:13:20Z
  return r;
}

bool has_tmp(const fs::path& dir) {
  for (auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".tmp") return true;
  return false;
}

}  // namespace

TEST_CASE("manifest: ISO-8601 UTC timestamps", "[manifest]") {
  CHECK(ManifestWriter::iso8601_utc(0) == "1970-01-01T00:00:00.000Z");
  CHECK(ManifestWriter::iso8601_utc(1700000000123) == "2023-11-14T22:13:20.123Z");
  CHECK(ManifestWriter::iso8601_utc(951782400000) == "2000-02-29T00:00:00.000Z");
}

TEST_CASE("manifest: entries, totals, in-place updates, first-seen order", "[manifest]") {
  TempDir d;
  fs::path dir = d.path() / "out" / "film";  // created on first update
  fs::path path = dir / "manifest.json";
  ManifestWriter w(path, "film");

  w.update(job("k1", "intro", JobState::Sending, 0.5));
  REQUIRE(fs::exists(path));
  CHECK_FALSE(has_tmp(dir));
  ojson m = read_json(path);
  CHECK(m["script"] == "film");
  CHECK(m["updated_at"].get<std::string>().size() == 24);
  CHECK(m["totals"]["jobs"] == 1);
  REQUIRE(m["jobs"].size() == 1);
  CHECK(m["jobs"][0]["state"] == "sending");
  CHECK(m["jobs"][0]["request_id"].is_null());
  CHECK(m["jobs"][0]["output"].is_null());
  CHECK(m["jobs"][0]["timings"]["created"] == "2023-11-14T22:13:20.000Z");
  CHECK(m["jobs"][0]["timings"]["done"].is_null());

  w.update(job("k2", "middle", JobState::Sending, 0.25));
  w.update(job("k3", "outro", JobState::Sending, 1.0));

  // k2 finishes: its entry is updated in place.
  JobRecord k2 = job("k2", "middle", JobState::Done, 0.25);
  k2.request_id = "req-2";
  k2.submitted_ms = 1700000001000;
  k2.completed_ms = 1700000002000;
  k2.done_ms = 1700000003000;
  k2.billable_units = 5;
  k2.files = {FileRecord{"thumbnail", dir / "middle.jpg", "aa", 10},
              FileRecord{"video", dir / "middle.mp4", "bb", 1234}};
  w.update(k2);
  JobRecord k3 = job("k3", "outro", JobState::Failed, 1.0);
  k3.error = "content policy violation";
  w.update(k3);

  m = read_json(path);
  CHECK_FALSE(has_tmp(dir));
  REQUIRE(m["jobs"].size() == 3);
  CHECK(m["jobs"][0]["key"] == "k1");
  CHECK(m["jobs"][1]["key"] == "k2");
  CHECK(m["jobs"][2]["key"] == "k3");
  auto& e = m["jobs"][1];
  CHECK(e["name"] == "middle");
  CHECK(e["endpoint"] == "fal-ai/kling-video/v2.1/pro/image-to-video");
  CHECK(e["input"]["prompt"] == "p middle");
  CHECK(e["request_id"] == "req-2");
  CHECK(e["state"] == "done");
  CHECK(e["output"] == "middle.mp4");  // the video, relative to the manifest
  CHECK(e["sha256"] == "bb");
  CHECK(e["size"] == 1234);
  CHECK(e["files"].size() == 2);
  CHECK(e["billable_units"] == 5.0);
  CHECK(e["timings"]["submitted"] == "2023-11-14T22:13:21.000Z");
  CHECK(e["timings"]["completed"] == "2023-11-14T22:13:22.000Z");
  CHECK(e["timings"]["done"] == "2023-11-14T22:13:23.000Z");
  CHECK(e["error"].is_null());
  CHECK(m["jobs"][2]["error"] == "content policy violation");
  CHECK(m["totals"]["jobs"] == 3);
  CHECK(m["totals"]["done"] == 1);
  CHECK(m["totals"]["failed"] == 1);
  CHECK(m["totals"]["estimated_usd"].get<double>() == Approx(1.75));

  // Readable: pretty-printed, keys in a fixed, meaningful order.
  std::ifstream in(path);
  std::string first_lines, line;
  std::getline(in, line);
  CHECK(line == "{");
  std::getline(in, line);
  CHECK(line == "  \"script\": \"film\",");
  auto it = m["jobs"][0].begin();
  CHECK(it.key() == "name");

  // A named shot whose prompt was edited (new key) replaces its entry instead of adding one.
  JobRecord edited = job("k1-edited", "intro", JobState::Submitted, 0.5);
  w.update(edited);
  m = read_json(path);
  REQUIRE(m["jobs"].size() == 3);
  CHECK(m["jobs"][0]["key"] == "k1-edited");
  // Another take of the same name is another entry.
  JobRecord take2 = job("k1-take2", "intro", JobState::Sending, 0.5);
  take2.take = 2;
  w.update(take2);
  CHECK(read_json(path)["jobs"].size() == 4);
}

TEST_CASE("manifest: a new writer keeps what is on disk", "[manifest]") {
  TempDir d;
  fs::path path = d.path() / "manifest.json";
  {
    ManifestWriter w(path, "film");
    w.update(job("a", "a", JobState::Done));
    w.update(job("b", "b", JobState::Done));
  }
  ManifestWriter w2(path, "film");
  CHECK(w2.document()["jobs"].size() == 2);
  w2.update(job("c", "c", JobState::Sending));
  w2.update(job("a", "a", JobState::Failed));
  ojson m = read_json(path);
  REQUIRE(m["jobs"].size() == 3);
  CHECK(m["jobs"][0]["key"] == "a");
  CHECK(m["jobs"][0]["state"] == "failed");
  CHECK(m["jobs"][2]["key"] == "c");

  // Two writers on one file (two processes running the same script) do not drop entries.
  ManifestWriter w3(path, "film");
  w2.update(job("d", "d", JobState::Sending));
  w3.update(job("e", "e", JobState::Sending));
  m = read_json(path);
  CHECK(m["jobs"].size() == 5);
  // w2 wrote the file last but w3 has written since: w2 must read it again, not reuse its copy.
  w2.update(job("f", "f", JobState::Sending));
  m = read_json(path);
  REQUIRE(m["jobs"].size() == 6);
  CHECK(m["jobs"][4]["key"] == "e");

  // A script name is taken from the jobs when not given.
  fs::path p2 = d.path() / "other" / "manifest.json";
  ManifestWriter w4(p2);
  w4.update(job("x", "x", JobState::Sending));
  CHECK(read_json(p2)["script"] == "film.lua");
}

TEST_CASE("manifest: the rewrite is atomic: a concurrent reader always sees valid JSON", "[manifest]") {
  TempDir d;
  fs::path path = d.path() / "manifest.json";
  ManifestWriter w(path, "film");
  w.update(job("k0", "k0", JobState::Sending));

  int stop[2];
  REQUIRE(::pipe(stop) == 0);
  pid_t reader = ::fork();
  REQUIRE(reader >= 0);
  if (reader == 0) {
    ::close(stop[1]);
    // Read until the parent closes the pipe; exit 1 on any partial or invalid file.
    fcntl(stop[0], F_SETFL, O_NONBLOCK);
    int reads = 0;
    for (;;) {
      char c;
      ssize_t n = ::read(stop[0], &c, 1);
      if (n == 0) break;
      std::ifstream in(path);
      std::stringstream ss;
      ss << in.rdbuf();
      auto doc = ojson::parse(ss.str(), nullptr, false);
      if (doc.is_discarded() || !doc.contains("jobs")) ::_exit(1);
      ++reads;
    }
    ::_exit(reads > 0 ? 0 : 3);
  }
  ::close(stop[0]);
  for (int i = 0; i < 150; ++i) {
    JobRecord r = job("k" + std::to_string(i % 40), "n" + std::to_string(i % 40),
                      i % 3 ? JobState::Submitted : JobState::Done);
    r.input["pad"] = std::string(static_cast<size_t>(200 + i * 7), 'x');  // sizes vary
    w.update(r);
    REQUIRE_NOTHROW(read_json(path));
    REQUIRE_FALSE(has_tmp(d.path()));
  }
  ::close(stop[1]);
  int status = 0;
  REQUIRE(::waitpid(reader, &status, 0) == reader);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(read_json(path)["jobs"].size() == 40);
}

TEST_CASE("manifest: write errors name the path", "[manifest]") {
  TempDir d;
  std::ofstream(d.path() / "file") << "x";
  ManifestWriter w(d.path() / "file" / "manifest.json", "s");
  CHECK_THROWS_WITH(w.update(job("k", "k", JobState::Sending)), Catch::Contains("file"));
}

TEST_CASE("manifest: post() writes in the background, drain() waits until it is on disk", "[manifest]") {
  TempDir d;
  fs::path path = d.path() / "manifest.json";
  ManifestWriter w(path, "film");
  CHECK(w.drain() == "");  // nothing posted: nothing to wait for
  for (int i = 0; i < 30; ++i) {
    std::vector<JobRecord> rows;
    for (int k = 0; k < 10; ++k)
      rows.push_back(job("k" + std::to_string(k), "n" + std::to_string(k), i < 29 ? JobState::Submitted : JobState::Done));
    w.post(std::move(rows));
  }
  CHECK(w.drain() == "");
  ojson m = read_json(path);
  REQUIRE(m["jobs"].size() == 10);
  for (auto& e : m["jobs"]) CHECK(e["state"] == "done");  // the last state posted wins
  CHECK(m["totals"]["done"] == 10);
  CHECK_FALSE(has_tmp(d.path()));
}

TEST_CASE("manifest: rows whose background write failed go out with the next write", "[manifest]") {
  TempDir d;
  std::ofstream(d.path() / "blocked") << "x";  // a file where the manifest's directory should be
  fs::path path = d.path() / "blocked" / "manifest.json";
  {
    ManifestWriter w(path, "film");
    w.post({job("a", "a", JobState::Done)});
    std::string err = w.drain();
    CHECK_THAT(err, Catch::Contains("blocked"));
    w.post({job("b", "b", JobState::Sending)});
    CHECK(w.drain() != "");  // still blocked: a, b queued
    fs::remove(d.path() / "blocked");
    w.post({job("b", "b", JobState::Done)});
    CHECK(w.drain() == "");
    ojson m = read_json(path);
    REQUIRE(m["jobs"].size() == 2);
    CHECK(m["jobs"][0]["key"] == "a");  // first posted, first in the file
    CHECK(m["jobs"][1]["state"] == "done");
  }
  // A drain() alone retries what is queued.
  TempDir d2;
  std::ofstream(d2.path() / "blocked") << "x";
  fs::path p2 = d2.path() / "blocked" / "manifest.json";
  ManifestWriter w2(p2, "film");
  w2.post({job("c", "c", JobState::Done)});
  CHECK(w2.drain() != "");
  fs::remove(d2.path() / "blocked");
  CHECK(w2.drain() == "");
  CHECK(read_json(p2)["jobs"].size() == 1);
}

TEST_CASE("manifest: the destructor writes what is still queued", "[manifest]") {
  TempDir d;
  fs::path path = d.path() / "manifest.json";
  {
    ManifestWriter w(path, "film");
    for (int i = 0; i < 20; ++i) w.post({job("k" + std::to_string(i), "n" + std::to_string(i), JobState::Done)});
  }
  CHECK(read_json(path)["jobs"].size() == 20);
}

TEST_CASE("manifest: within one batch, a renamed or re-keyed entry is found by its new identity only", "[manifest]") {
  TempDir d;
  fs::path path = d.path() / "manifest.json";
  ManifestWriter w(path, "film");
  // "a" edited twice in one batch (new key each time): one entry, the last.
  // "x" renamed to "y" (same key), then a new job named "x": two entries.
  JobRecord y = job("x1", "y", JobState::Done);
  w.update({job("a1", "a", JobState::Sending), job("a2", "a", JobState::Sending), job("a3", "a", JobState::Done),
            job("x1", "x", JobState::Sending), y, job("x2", "x", JobState::Sending)});
  ojson m = read_json(path);
  REQUIRE(m["jobs"].size() == 3);
  CHECK(m["jobs"][0]["key"] == "a3");
  CHECK(m["jobs"][1]["key"] == "x1");
  CHECK(m["jobs"][1]["name"] == "y");
  CHECK(m["jobs"][2]["key"] == "x2");
  CHECK(m["jobs"][2]["name"] == "x");
  // The same, against entries already on disk.
  w.update({job("a4", "a", JobState::Sending), job("x1", "z", JobState::Done), job("x3", "y", JobState::Sending)});
  m = read_json(path);
  REQUIRE(m["jobs"].size() == 4);
  CHECK(m["jobs"][0]["key"] == "a4");
  CHECK(m["jobs"][1]["key"] == "x1");  // renamed from "y" to "z" ...
  CHECK(m["jobs"][1]["name"] == "z");
  CHECK(m["jobs"][3]["key"] == "x3");  // ... so a new "y" is a new entry, not that one
  CHECK(m["jobs"][3]["name"] == "y");
}
