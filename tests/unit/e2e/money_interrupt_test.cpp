// Money-safe runs, Ctrl-C: the first SIGINT stops starting jobs and leaves the ones already on
// fal running (they are paid for; the next run picks them up) and says which; with
// --cancel-on-interrupt, or a second SIGINT, the jobs on fal are cancelled.
#include <signal.h>

#include "e2e_common.h"
#include "money.h"

using namespace e2e;

namespace {

// Two long jobs run side by side; a third waits for a slot (so it is never started).
const char* kLong =
    "local kling = require 'kling'\n"
    "local jobs = {}\n"
    "for i = 1, 3 do\n"
    "  jobs[i] = kling.submit{ name = 'long' .. i, duration = 5,\n"
    "                          prompt = 'A long take number ' .. i .. ' of a quiet forest [[run_ms=3000]]' }\n"
    "end\n"
    "for _, r in ipairs(kling.wait_all(jobs)) do print('result', r.name, r.request_id) end\n";

// Starts the script and returns once both first jobs are IN_PROGRESS on the fake.
std::unique_ptr<krt::Process> start_and_wait_running(Fixture& fx, std::vector<std::string> opts) {
  krt::write_file(fx.dir / "long.lua", kLong);
  opts.push_back("long.lua");
  auto p = std::make_unique<krt::Process>(krt::klingrun_options(fx.dir.path(), opts, fx.fake.env(), 60));
  bool running = krt::pump_until(*p, [&] { return krt::fake_jobs_in(fx.fake, "IN_PROGRESS") == 2; }, 30);
  INFO(p->out() << p->err());
  REQUIRE(running);
  return p;
}

}  // namespace

TEST_CASE("money interrupt: one SIGINT leaves jobs running on fal - lists them - a rerun attaches",
          "[e2e][money][interrupt]") {
  Fixture fx;
  auto p = start_and_wait_running(fx, {"-j", "2"});
  p->signal(SIGINT);
  auto r = p->wait(30);
  INFO(r.describe());
  CHECK(r.exit_code == 130);
  CHECK(r.seconds < 10);

  json stats = fx.fake.stats();
  CHECK(stats["requests"]["cancel"] == 0);  // nothing was cancelled on fal
  CHECK(stats["cancels"] == 0);
  CHECK(stats["jobs_created"] == 2);        // the third job was never started
  json jobs = fx.fake.jobs();
  REQUIRE(jobs.size() == 2);

  // stderr names each job still on fal with its request id.
  CHECK(r.err.find("Still running on fal") != std::string::npos);
  json rows = status_json(fx);
  for (auto& fj : jobs) {
    const std::string rid = fj["request_id"];
    std::string name;
    for (auto& row : rows)
      if (row["request_id"] == rid) name = row["name"];
    INFO("request " << rid);
    REQUIRE_FALSE(name.empty());
    CHECK(r.err.find(name + " (" + rid + ")") != std::string::npos);
    CHECK(row_named(rows, name)["state"] == "submitted");
    CHECK(fj["cancelled"] == false);
  }
  // The job that never started left no record claiming it was sent.
  json third = row_named(rows, "long3");
  CHECK((third.is_null() || third["state"] == "sending"));

  // The rerun attaches to both (no new submit for them) and completes the third.
  auto again = krt::run_klingrun(fx.dir.path(), {"-j", "2", "long.lua"}, fx.fake.env(), 60);
  INFO(again.describe());
  REQUIRE(again.exit_code == 0);
  json s2 = fx.fake.stats();
  CHECK(s2["jobs_created"] == 3);                 // only long3 is new
  CHECK(s2["requests"]["submit"] == 3);
  for (auto& fj : jobs) {
    const std::string rid = fj["request_id"];
    CHECK(again.out.find(rid) != std::string::npos);  // the attached jobs' results are the old requests
  }
  for (int i = 1; i <= 3; ++i) CHECK(krt::fs::exists(fx.out("long") / ("long" + std::to_string(i) + ".mp4")));
  json rows2 = status_json(fx);
  for (auto& row : rows2) CHECK(row["state"] == "done");
}

TEST_CASE("money interrupt: --cancel-on-interrupt cancels the jobs on fal - status shows cancelled",
          "[e2e][money][interrupt]") {
  Fixture fx;
  auto p = start_and_wait_running(fx, {"-j", "2", "--cancel-on-interrupt"});
  p->signal(SIGINT);
  auto r = p->wait(30);
  INFO(r.describe());
  CHECK(r.exit_code == 130);
  CHECK(r.err.find("cancelling") != std::string::npos);

  json stats = fx.fake.stats();
  CHECK(stats["cancels"] == 2);
  json jobs = fx.fake.jobs();
  REQUIRE(jobs.size() == 2);
  for (auto& j : jobs) {
    CHECK(j["cancelled"] == true);
    CHECK(j["error_type"] == "client_cancelled");
  }
  json rows = status_json(fx);
  for (auto& fj : jobs) {
    bool seen = false;
    for (auto& row : rows)
      if (row["request_id"] == fj["request_id"]) {
        seen = true;
        CHECK(row["state"] == "cancelled");
      }
    CHECK(seen);
  }
  // And the table form says so too.
  auto table = krt::run_klingrun(fx.dir.path(), {"status"}, fx.fake.env());
  CHECK(krt::lines_with(table.out, "cancelled").size() == 2);
  CHECK(krt::files_ending(fx.out("long"), ".mp4").empty());
}

TEST_CASE("money interrupt: a second SIGINT cancels on fal", "[e2e][money][interrupt]") {
  Fixture fx;
  // The third job's submit is held by the fake, so after the first SIGINT klingrun waits for
  // that answer (to record the request id) - long enough for the second SIGINT to arrive.
  krt::write_file(fx.dir / "long.lua", kLong);
  fx.fake.fault({{"route", "submit"}, {"action", "stall"}, {"ms", 2500}, {"times", 1}, {"path_contains", "text-to-video"}});
  // The stall catches the first submit; use three slots so all three go out at once.
  auto p = std::make_unique<krt::Process>(krt::klingrun_options(fx.dir.path(), {"-j", "3", "long.lua"}, fx.fake.env(), 60));
  REQUIRE(krt::pump_until(*p, [&] { return krt::fake_jobs_in(fx.fake, "IN_PROGRESS") == 2; }, 30));
  p->signal(SIGINT);
  REQUIRE(p->wait_output("interrupted: no new jobs", 10));
  p->signal(SIGINT);
  auto r = p->wait(30);
  INFO(r.describe());
  CHECK(r.exit_code == 130);
  CHECK(r.err.find("cancelling") != std::string::npos);
  // Wait for the held submit to be handled so every job the fake will ever have exists.
  krt::wait_until([&] { return fx.fake.stats()["jobs_created"] == 3; }, 5);
  krt::wait_until([&] { return fx.fake.stats()["cancels"] == 3; }, 5);
  json stats = fx.fake.stats();
  INFO("stats " << stats.dump());
  CHECK(stats["cancels"] >= 2);
  json rows = status_json(fx);
  int cancelled = 0;
  for (auto& fj : fx.fake.jobs()) {
    if (fj["state"] != "COMPLETED" || fj["cancelled"] != true) continue;
    for (auto& row : rows)
      if (row["request_id"] == fj["request_id"]) {
        CHECK(row["state"] == "cancelled");
        ++cancelled;
      }
  }
  CHECK(cancelled >= 2);
  // Nothing is left running on fal that klingrun lost track of.
  for (auto& fj : fx.fake.jobs()) {
    INFO(fj.dump());
    CHECK(fj["cancelled"] == true);
  }
}
