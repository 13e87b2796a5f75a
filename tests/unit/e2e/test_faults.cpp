// Transport faults injected by the fake, each ending in the right outcome: retried where the
// protocol allows it, never resubmitted when a job may already exist, and reported otherwise.
#include "e2e_common.h"

using namespace e2e;

namespace {

const char* kOneJob =
    "local kling = require 'kling'\n"
    "local r = kling.generate{ name = 'shot', prompt = 'A lighthouse at dusk, waves below.', duration = 5 }\n"
    "print('saved ' .. r.video.path .. ' ' .. r.video.file_size)\n";

// The run succeeded and the video on disk is the one the fake made for its single job.
void check_one_video(const Fixture& fx, const krt::ProcResult& r, const std::string& stem = "one") {
  INFO(r.describe());
  REQUIRE(r.exit_code == 0);
  json jobs = fx.fake.jobs();
  REQUIRE(jobs.size() == 1);
  auto files = fx.outputs(stem);
  CHECK_FALSE(any_part_file(files));
  REQUIRE(mp4s(files) == std::vector<std::string>{"shot.mp4"});
  CHECK(krt::read_file(fx.out(stem) / "shot.mp4") == fake_video(jobs[0]["request_id"], jobs[0]["video_bytes"]));
  CHECK(r.out.find("saved out/" + stem + "/shot.mp4 " + std::to_string(jobs[0]["video_bytes"].get<int>())) !=
        std::string::npos);
}

}  // namespace

TEST_CASE("fault: status 503 twice - then ok: polling is retried", "[e2e][faults]") {
  Fixture fx;
  // The stream fails at once (so the job is followed by polling), then two polls get 503. (A
  // stream dropped before any answer would not do: curl silently resends a GET whose reused
  // connection died, so the second stream attempt would succeed.)
  fx.fake.fault(json::array({{{"route", "stream"}, {"action", "status"}, {"code", 503}},
                             {{"route", "status"}, {"action", "status"}, {"code", 503}, {"times", 2}}}));
  auto r = fx.script("one.lua", kOneJob);
  check_one_video(fx, r);
  json stats = fx.fake.stats();
  CHECK(stats["faults_fired"] == 3);
  CHECK(stats["pending_faults"] == 0);
  CHECK(stats["requests"]["status"] >= 3);
  CHECK(stats["requests"]["stream"] == 1);
  CHECK(stats["jobs_created"] == 1);
}

TEST_CASE("fault: submit 429 with Retry-After is retried after the pause the server asked for", "[e2e][faults]") {
  Fixture fx;
  // 2 s: longer than the first backoff could be on its own (1 s +-25 %), so only honouring
  // Retry-After explains a run this long.
  fx.fake.fault({{"route", "submit"}, {"action", "status"}, {"code", 429}, {"retry_after", 2}});
  auto r = fx.script("one.lua", kOneJob);
  check_one_video(fx, r);
  CHECK(r.seconds >= 2.0);
  json stats = fx.fake.stats();
  CHECK(stats["requests"]["submit"] == 2);
  CHECK(stats["jobs_created"] == 1);
}

TEST_CASE("fault: submit 429 with Retry-After 1 is retried (exit 0 - >= 1 s)", "[e2e][faults]") {
  Fixture fx;
  fx.fake.fault({{"route", "submit"}, {"action", "status"}, {"code", 429}, {"retry_after", 1}});
  auto r = fx.script("one.lua", kOneJob);
  check_one_video(fx, r);
  CHECK(r.seconds >= 1.0);
  CHECK(fx.fake.stats()["requests"]["submit"] == 2);
}

TEST_CASE("fault: submit dropped without an answer is never resubmitted blindly", "[e2e][faults]") {
  // The fake drops the socket after reading the request head but before acting on it. By then
  // curl has sent the whole (small) request, so on the wire this is the same as drop_after: the
  // whole request went out and no answer came. klingrun cannot know that no job exists, so it
  // must not resubmit (protocol: never pay twice); it reports the unknown outcome instead.
  Fixture fx;
  fx.fake.fault({{"route", "submit"}, {"action", "drop_before"}});
  auto r = fx.script("one.lua", kOneJob);
  INFO(r.describe());
  CHECK(r.exit_code == 3);
  CHECK(r.err.find("--resubmit-unknown") != std::string::npos);
  json stats = fx.fake.stats();
  CHECK(stats["requests"]["submit"] == 1);
  CHECK(stats["jobs_created"] == 0);
}

TEST_CASE("fault: a submit refused before queueing (503) is resubmitted - one job", "[e2e][faults]") {
  Fixture fx;
  fx.fake.fault({{"route", "submit"}, {"action", "status"}, {"code", 503}, {"nginx", true}});
  auto r = fx.script("one.lua", kOneJob);
  check_one_video(fx, r);
  json stats = fx.fake.stats();
  CHECK(stats["requests"]["submit"] == 2);
  CHECK(stats["jobs_created"] == 1);
}

TEST_CASE("fault: submit dropped after the job was created: unknown outcome - never sent twice", "[e2e][faults]") {
  Fixture fx;
  fx.fake.fault({{"route", "submit"}, {"action", "drop_after"}});
  auto r = fx.script("one.lua", kOneJob);
  INFO(r.describe());
  CHECK(r.exit_code == 3);
  CHECK(r.err.find("--resubmit-unknown") != std::string::npos);
  CHECK((r.err.find("may or may not") != std::string::npos || r.err.find("unknown") != std::string::npos));
  json stats = fx.fake.stats();
  CHECK(stats["jobs_created"] == 1);  // exactly ONE: never two
  CHECK(stats["requests"]["submit"] == 1);
  auto files = fx.outputs("one");
  CHECK(mp4s(files).empty());
  CHECK_FALSE(any_part_file(files));
}

TEST_CASE("fault: the status stream dies after one event: the job is followed by polling", "[e2e][faults]") {
  Fixture fx;
  fx.fake.fault({{"route", "stream"}, {"action", "drop_after"}});
  auto r = fx.script("one.lua", kOneJob);
  check_one_video(fx, r);
  json stats = fx.fake.stats();
  CHECK(stats["faults_fired"] == 1);
  CHECK(stats["requests"]["status"] >= 1);
  CHECK(stats["requests"]["submit"] == 1);
}

TEST_CASE("fault: result 500 then 502 - then ok: the result fetch is retried", "[e2e][faults]") {
  Fixture fx;
  fx.fake.fault(json::array({{{"route", "result"}, {"action", "status"}, {"code", 500}},
                             {{"route", "result"}, {"action", "status"}, {"code", 502}, {"nginx", true}}}));
  auto r = fx.script("one.lua", kOneJob);
  check_one_video(fx, r);
  json stats = fx.fake.stats();
  CHECK(stats["requests"]["result"] == 3);
  CHECK(stats["faults_fired"] == 2);
}

TEST_CASE("fault: a user-timeout 504 on submit is final: one submit - exit 3", "[e2e][faults]") {
  Fixture fx;
  fx.fake.fault({{"route", "submit"}, {"action", "status"}, {"code", 504}, {"timeout_type", "user"},
                 {"detail", "Request timed out"}, {"error_type", "request_timeout"}});
  auto r = fx.script("one.lua", kOneJob);
  INFO(r.describe());
  CHECK(r.exit_code == 3);
  CHECK(r.err.find("timed out") != std::string::npos);
  json stats = fx.fake.stats();
  CHECK(stats["requests"]["submit"] == 1);
  CHECK(stats["jobs_created"] == 0);
}

TEST_CASE("fault: stalls - a slow answer is waited for, never sent again", "[e2e][faults]") {
  // Each request is held 1.5 s by the fake, then answered: well inside klingrun's time limits,
  // so the right outcome is patience. A resent submit would be a second paid job.
  Fixture fx;
  std::string route;
  SECTION("submit") { route = "submit"; }
  SECTION("status stream") { route = "stream"; }
  SECTION("result") { route = "result"; }
  SECTION("download") { route = "cdn"; }
  fx.fake.fault({{"route", route}, {"action", "stall"}, {"ms", 1500}});
  auto r = fx.script("one.lua", kOneJob);
  check_one_video(fx, r);
  CHECK(r.seconds >= 1.5);
  json stats = fx.fake.stats();
  CHECK(stats["faults_fired"] == 1);
  CHECK(stats["requests"][route] == 1);  // one request on the stalled route: nothing resent
  CHECK(stats["jobs_created"] == 1);
}

TEST_CASE("fault: a download cut short once is fetched again - complete", "[e2e][faults][download]") {
  Fixture fx;
  fx.fake.fault({{"route", "cdn"}, {"action", "truncate"}});
  auto r = fx.script("one.lua", kOneJob);
  check_one_video(fx, r);
  json stats = fx.fake.stats();
  CHECK(stats["requests"]["cdn"] == 2);
  CHECK(stats["downloads"] == 1);  // only the complete one counts
}

TEST_CASE("fault: a download cut short every time fails - leaving no file", "[e2e][faults][download]") {
  Fixture fx;
  fx.fake.fault({{"route", "cdn"}, {"action", "truncate"}, {"times", 20}});
  auto r = fx.script("one.lua", kOneJob, {}, {}, 120);
  INFO(r.describe());
  CHECK(r.exit_code == 3);
  json stats = fx.fake.stats();
  CHECK(stats["requests"]["cdn"] >= 2);  // it was retried before giving up
  CHECK(stats["downloads"] == 0);
  auto files = fx.outputs("one");
  CHECK(mp4s(files).empty());
  CHECK_FALSE(any_part_file(files));
  CHECK_FALSE(krt::fs::exists(fx.out("one") / "shot.mp4"));
}
