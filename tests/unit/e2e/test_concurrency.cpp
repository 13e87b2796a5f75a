// --concurrency N bounds the jobs in flight on fal, and is actually used up to N.
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
  // At any moment a job in flight has at most one request open (a stream, a poll, a result or
  // a download), so two jobs never need more than two open requests.
  CHECK(stats["max_open_requests"] <= 2);
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
