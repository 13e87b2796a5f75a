// --concurrency N bounds the jobs in flight on fal, and is actually used up to N. A job whose
// result fal has delivered is off fal: its download no longer holds a slot.
#include <algorithm>

#include "e2e_common.h"

using namespace e2e;

namespace {

const char* kSixJobs =
    "local kling = require 'kling'\n"
    "local jobs = {}\n"
    "for i = 1, 6 do\n"
    "  jobs[i] = kling.submit{ name = 'job' .. i, duration = 5,\n"
    "                          prompt = 'Shot number ' .. i .. ' of a busy street [[run_ms=300]]' }\n"
    "end\n"
    "kling.wait_all(jobs)\n";

}  // namespace

TEST_CASE("concurrency 2 keeps at most two jobs on fal at once", "[e2e][concurrency]") {
  Fixture fx;
  auto r = fx.script("six.lua", kSixJobs, {"--concurrency", "2"});
  INFO(r.describe());
  REQUIRE(r.exit_code == 0);
  json stats = fx.fake.stats();
  INFO("stats: " << stats.dump());
  CHECK(stats["jobs_created"] == 6);
  CHECK(stats["max_jobs_in_progress"] == 2);  // bounded, and the bound was reached
  // A job on fal has at most one request open (a stream, a poll or the result call), and at
  // most two downloads run at once beside them.
  CHECK(stats["max_open_requests"] <= 2 + 2);
  // Jobs on fal never overlapped more than two deep: check from the fake's own timestamps.
  json jobs = fx.fake.jobs();
  REQUIRE(jobs.size() == 6);
  int worst = 0;
  for (auto& a : jobs) {
    int overlapping = 0;
    for (auto& b : jobs)
      if (b["created_ms"] <= a["created_ms"] && b["completed_ms"] > a["created_ms"]) ++overlapping;
    worst = std::max(worst, overlapping);
  }
  CHECK(worst <= 2);
  CHECK(mp4s(fx.outputs("six")).size() == 6);
}

TEST_CASE("concurrency 6 runs the six jobs side by side", "[e2e][concurrency]") {
  Fixture fx;
  auto r = fx.script("six.lua", kSixJobs, {"--concurrency", "6"});
  INFO(r.describe());
  REQUIRE(r.exit_code == 0);
  json stats = fx.fake.stats();
  INFO("stats: " << stats.dump());
  CHECK(stats["jobs_created"] == 6);
  CHECK(stats["max_jobs_in_progress"] >= 4);
  CHECK(stats["max_jobs_in_progress"] <= 6);
  CHECK(mp4s(fx.outputs("six")).size() == 6);
}

TEST_CASE("without --concurrency two jobs run on fal at once - kling.concurrency(n) sets it from the script",
          "[e2e][concurrency]") {
  Fixture fx;
  SECTION("the default is 2") {
    auto r = fx.script("six.lua", kSixJobs);
    INFO(r.describe());
    REQUIRE(r.exit_code == 0);
    CHECK(fx.fake.stats()["max_jobs_in_progress"] == 2);
  }
  SECTION("kling.concurrency(1) from the script") {
    auto r = fx.script("six.lua", std::string("require('kling').concurrency(1)\n") + kSixJobs);
    INFO(r.describe());
    REQUIRE(r.exit_code == 0);
    CHECK(fx.fake.stats()["max_jobs_in_progress"] == 1);
    CHECK(fx.fake.stats()["jobs_created"] == 6);
  }
  SECTION("kling.concurrency(3) over --concurrency 1") {
    auto r = fx.script("six.lua", std::string("require('kling').concurrency(3)\n") + kSixJobs, {"--concurrency", "1"});
    INFO(r.describe());
    REQUIRE(r.exit_code == 0);
    CHECK(fx.fake.stats()["max_jobs_in_progress"] == 3);
  }
}

TEST_CASE("the flags --queue-url and --rest-url point klingrun at fal's hosts over the environment", "[e2e][args]") {
  Fixture fx;
  // The environment names a port nobody serves; the flags win over it.
  krt::Env env = {{"FAL_QUEUE_URL", "http://127.0.0.1:9/queue"}, {"FAL_REST_URL", "http://127.0.0.1:9/rest"}};
  krt::write_file(fx.dir / "start.png", krt::make_png(400, 400, 3));
  auto r = fx.script("flags.lua",
                     "require('kling').generate{ name = 'i2v', endpoint = 'v3/pro/i2v', duration = 5,\n"
                     "  start_image_url = 'start.png', prompt = 'The frame comes to life.' }\n",
                     {"--queue-url", fx.fake.base() + "/queue", "--rest-url", fx.fake.base() + "/rest"}, env);
  INFO(r.describe());
  REQUIRE(r.exit_code == 0);
  json stats = fx.fake.stats();
  CHECK(stats["uploads"] == 1);  // storage through --rest-url
  CHECK(stats["jobs_created"] == 1);
  CHECK(mp4s(fx.outputs("flags")).size() == 1);
}

TEST_CASE("a slow download does not hold a slot: the next job is on fal meanwhile", "[e2e][concurrency]") {
  Fixture fx;
  // Every download waits 1.5 s before its first byte; the jobs run 300 ms each.
  fx.fake.fault({{"route", "cdn"}, {"action", "stall"}, {"ms", 1500}, {"times", 6}});
  auto r = fx.script("six.lua", kSixJobs, {"--concurrency", "1"});
  INFO(r.describe());
  REQUIRE(r.exit_code == 0);
  json stats = fx.fake.stats();
  INFO("stats: " << stats.dump());
  CHECK(stats["jobs_created"] == 6);
  CHECK(stats["max_jobs_in_progress"] == 1);  // still one job at a time on fal
  CHECK(stats["downloads"] == 6);
  json jobs = fx.fake.jobs();
  REQUIRE(jobs.size() == 6);
  std::vector<long long> created, completed;
  for (auto& j : jobs) created.push_back(j["created_ms"]), completed.push_back(j["completed_ms"]);
  std::sort(created.begin(), created.end());
  std::sort(completed.begin(), completed.end());
  // Each job was created within a second of the previous one completing, though its download
  // was still stalled: the slot was freed by the result, not by the file on disk.
  for (std::size_t i = 1; i < created.size(); ++i) {
    INFO("job " << i << " created " << created[i] - completed[i - 1] << " ms after the previous completed");
    CHECK(created[i] >= completed[i - 1]);
    CHECK(created[i] - completed[i - 1] < 1000);
  }
  CHECK(mp4s(fx.outputs("six")).size() == 6);
}
