// Money-safe runs: once fal has accepted a job, trouble *following* it (status or result calls
// failing until the retries run out) must not mark it failed in the store — the job may well be
// done on fal and billed. The next run re-attaches to the same request instead of paying again.
// (Found by these tests: FalQueue errors now say whether they are fal's verdict on the job.)
#include "e2e_common.h"
#include "money.h"

using namespace e2e;

TEST_CASE("money accepted job: a result fetch that keeps failing must not make the next run pay again",
          "[e2e][money]") {
  Fixture fx;
  const std::string lua =
      "local kling = require 'kling'\n"
      "local r = kling.generate{ name = 'paid', prompt = 'A lighthouse at dusk, waves below.', duration = 5 }\n"
      "print('result', r.name, r.request_id)\n";
  // The job runs and COMPLETES on fal (billed); every result call fails until retries run out.
  fx.fake.fault({{"route", "result"}, {"action", "status"}, {"code", 500}, {"times", 100}});
  auto first = fx.script("paid.lua", lua, {}, {}, 120);
  INFO(first.describe());
  REQUIRE(first.exit_code == 3);
  json jobs = fx.fake.jobs();
  REQUIRE(jobs.size() == 1);
  REQUIRE(jobs[0]["state"] == "COMPLETED");
  REQUIRE(jobs[0]["error_type"].is_null());  // fal finished it successfully
  const std::string rid = jobs[0]["request_id"];

  krt::clear_fake_faults(fx.fake);
  auto second = fx.script("paid.lua", lua);
  INFO(second.describe());
  REQUIRE(second.exit_code == 0);
  json stats = fx.fake.stats();
  // Expected: the rerun re-attaches to the completed request (one job, one submit).
  CHECK(stats["jobs_created"] == 1);  // before 8f58aa6: 2 (paid twice)
  CHECK(stats["requests"]["submit"] == 1);
  CHECK(second.out.find("result\tpaid\t" + rid) != std::string::npos);
}

TEST_CASE("money accepted job: status polls that keep failing must not make the next run pay again",
          "[e2e][money]") {
  Fixture fx;
  const std::string lua =
      "local kling = require 'kling'\n"
      "local r = kling.generate{ name = 'polled', prompt = 'A tram in the fog [[run_ms=400]]', duration = 5 }\n"
      "print('result', r.name, r.request_id)\n";
  // The stream fails at once (so klingrun polls) and every poll fails until it gives up, here
  // after 1 s without a good answer (KLINGRUN_FOLLOW_OUTAGE; 10 minutes by default).
  fx.fake.fault(json::array({{{"route", "stream"}, {"action", "status"}, {"code", 503}, {"times", 1000}},
                             {{"route", "status"}, {"action", "status"}, {"code", 503}, {"times", 1000}}}));
  auto first = fx.script("polled.lua", lua, {}, {{"KLINGRUN_FOLLOW_OUTAGE", "1"}}, 120);
  INFO(first.describe());
  REQUIRE(first.exit_code == 3);
  CHECK(first.err.find("the job may still run on fal") != std::string::npos);
  CHECK(first.err.find("run the script again to pick it up") != std::string::npos);
  REQUIRE(fx.fake.jobs().size() == 1);
  const std::string rid = fx.fake.jobs()[0]["request_id"];

  krt::clear_fake_faults(fx.fake);
  auto second = fx.script("polled.lua", lua);
  INFO(second.describe());
  REQUIRE(second.exit_code == 0);
  json stats = fx.fake.stats();
  CHECK(stats["jobs_created"] == 1);  // before 8f58aa6: 2 (paid twice)
  CHECK(second.out.find("result\tpolled\t" + rid) != std::string::npos);
}

TEST_CASE("money accepted job: a KLINGRUN_FOLLOW_OUTAGE that is no number stops the run before anything is sent",
          "[e2e][money]") {
  Fixture fx;
  auto r = fx.script("typo.lua", "require('kling').generate{ prompt = 'A tram in the fog.', duration = 5 }\n", {},
                     {{"KLINGRUN_FOLLOW_OUTAGE", "10m"}});
  INFO(r.describe());
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("KLINGRUN_FOLLOW_OUTAGE: \"10m\" is not a number of seconds") != std::string::npos);
  CHECK(fx.fake.stats()["requests_total"] == 0);
}
