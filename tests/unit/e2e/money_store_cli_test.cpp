// Money-safe runs, the state store from the command line: `klingrun status` (table and --json),
// `klingrun cancel NAME` / `cancel --all` on jobs running on fal, `klingrun gc`.
#include <signal.h>

#include "e2e_common.h"
#include "money.h"

using namespace e2e;

namespace {

const char* kTwoShort =
    "local kling = require 'kling'\n"
    "local a = kling.submit{ name = 'north', prompt = 'A snowy peak at first light.', duration = 5 }\n"
    "local b = kling.submit{ name = 'south', prompt = 'A palm beach at noon.', duration = 10 }\n"
    "kling.wait_all({ a, b })\n";

const char* kTwoLong =
    "local kling = require 'kling'\n"
    "local a = kling.submit{ name = 'east', prompt = 'A desert road at dusk [[run_ms=60000]]', duration = 5 }\n"
    "local b = kling.submit{ name = 'west', prompt = 'A harbour crane at night [[run_ms=60000]]', duration = 5 }\n"
    "kling.wait_all({ a, b })\n";

krt::ProcResult klingrun(Fixture& fx, std::vector<std::string> args) {
  return krt::run_klingrun(fx.dir.path(), args, fx.fake.env(), 60);
}

// The line of `klingrun status` (table) for job `name`.
std::string table_line(const std::string& table, const std::string& name) {
  for (auto& l : krt::split_lines(table))
    if (l.rfind(name + " ", 0) == 0) return l;
  return "";
}

// Runs kTwoLong, waits until both jobs are IN_PROGRESS on the fake, then interrupts it (one
// SIGINT: the jobs stay on fal, recorded as submitted).
void leave_two_running(Fixture& fx) {
  krt::write_file(fx.dir / "long.lua", kTwoLong);
  krt::Process p(krt::klingrun_options(fx.dir.path(), {"-j", "2", "long.lua"}, fx.fake.env(), 60));
  bool running = krt::pump_until(p, [&] { return krt::fake_jobs_in(fx.fake, "IN_PROGRESS") == 2; }, 30);
  INFO(p.out() << p.err());
  REQUIRE(running);
  p.signal(SIGINT);
  auto r = p.wait(30);
  INFO(r.describe());
  REQUIRE(r.exit_code == 130);
  REQUIRE(fx.fake.stats()["cancels"] == 0);
}

std::string rid_of_prompt(const Fixture& fx, const std::string& needle) {
  for (auto& j : fx.fake.jobs())
    if (j["input"].value("prompt", std::string()).find(needle) != std::string::npos) return j["request_id"];
  return "";
}

}  // namespace

TEST_CASE("money store cli: status lists name - state - request id - cost - file as a table and as JSON",
          "[e2e][money][store]") {
  Fixture fx;
  auto empty = klingrun(fx, {"status"});
  INFO(empty.describe());
  CHECK(empty.exit_code == 0);
  CHECK(empty.out.find("no jobs") != std::string::npos);

  auto run = fx.script("pair.lua", kTwoShort);
  INFO(run.describe());
  REQUIRE(run.exit_code == 0);
  const std::string north_id = rid_of_prompt(fx, "snowy peak");
  const std::string south_id = rid_of_prompt(fx, "palm beach");
  REQUIRE_FALSE(north_id.empty());
  REQUIRE_FALSE(south_id.empty());

  auto table = klingrun(fx, {"status"});
  INFO(table.describe());
  REQUIRE(table.exit_code == 0);
  auto header = krt::split_lines(table.out).at(0);
  for (const char* col : {"job", "state", "request id", "cost", "file"}) CHECK(header.find(col) != std::string::npos);
  std::string north = table_line(table.out, "north"), south = table_line(table.out, "south");
  CHECK(north.find(" done ") != std::string::npos);
  CHECK(north.find(north_id) != std::string::npos);
  CHECK(north.find("$0.84") != std::string::npos);
  CHECK(north.find("out/pair/north.mp4") != std::string::npos);
  CHECK(south.find(south_id) != std::string::npos);
  CHECK(south.find("$1.68") != std::string::npos);  // 10 s at $0.168/s
  CHECK(south.find("out/pair/south.mp4") != std::string::npos);

  json rows = status_json(fx);
  REQUIRE(rows.size() == 2);
  json n = row_named(rows, "north");
  REQUIRE(n.is_object());
  CHECK(n["state"] == "done");
  CHECK(n["request_id"] == north_id);
  CHECK(n["cost_usd"].get<double>() == Approx(0.84));
  CHECK(n["script"] == "pair");
  CHECK(n["endpoint"] == "fal-ai/kling-video/v3/pro/text-to-video");
  REQUIRE(n["files"].size() == 1);
  CHECK(n["files"][0]["path"] == "out/pair/north.mp4");
  CHECK(n["files"][0]["size"] == 65536);
  CHECK(n["files"][0]["sha256"] == krt::sha256_file_hex(fx.out("pair") / "north.mp4"));
  json s = row_named(rows, "south");
  CHECK(s["cost_usd"].get<double>() == Approx(1.68));
  CHECK(s["request_id"] == south_id);

  // --state DIR reads the same store.
  auto other = klingrun(fx, {"status", "--json", "--state", "out/.klingrun"});
  CHECK(json::parse(other.out, nullptr, false) == rows);
}

TEST_CASE("money store cli: cancel NAME cancels that job on fal - status shows it cancelled", "[e2e][money][store]") {
  Fixture fx;
  leave_two_running(fx);
  const std::string east_id = rid_of_prompt(fx, "desert road");
  const std::string west_id = rid_of_prompt(fx, "harbour crane");
  json before = status_json(fx);
  REQUIRE(row_named(before, "east")["state"] == "submitted");
  REQUIRE(row_named(before, "east")["request_id"] == east_id);

  auto r = klingrun(fx, {"cancel", "east"});
  INFO(r.describe());
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("east") != std::string::npos);
  CHECK(r.out.find(east_id) != std::string::npos);
  json stats = fx.fake.stats();
  CHECK(stats["cancels"] == 1);
  json ej = fx.fake.get("/_fake/jobs/" + east_id);
  CHECK(ej["cancelled"] == true);
  json wj = fx.fake.get("/_fake/jobs/" + west_id);
  CHECK(wj["cancelled"] == false);  // only the one named

  json after = status_json(fx);
  CHECK(row_named(after, "east")["state"] == "cancelled");
  CHECK(row_named(after, "west")["state"] == "submitted");
  auto table = klingrun(fx, {"status"});
  CHECK(table_line(table.out, "east").find("cancelled") != std::string::npos);

  // An unknown name is an error and sends nothing.
  auto bad = klingrun(fx, {"cancel", "nosuchjob"});
  CHECK(bad.exit_code != 0);
  CHECK(bad.err.find("nosuchjob") != std::string::npos);
  CHECK(fx.fake.stats()["requests"]["cancel"] == stats["requests"]["cancel"]);

  // A CA bundle that cannot be read is a usage error, named, before any cancel is sent.
  krt::Env env = fx.fake.env();
  env["CURL_CA_BUNDLE"] = (fx.dir / "missing-ca.pem").string();
  auto noca = krt::run_klingrun(fx.dir.path(), {"cancel", "west"}, env, 60);
  INFO(noca.describe());
  CHECK(noca.exit_code == 2);
  CHECK(noca.err.find("missing-ca.pem") != std::string::npos);
  CHECK(fx.fake.stats()["requests"]["cancel"] == stats["requests"]["cancel"]);
  CHECK(row_named(status_json(fx), "west")["state"] == "submitted");
}

TEST_CASE("money store cli: cancel --all cancels every job still on fal", "[e2e][money][store]") {
  Fixture fx;
  leave_two_running(fx);
  auto r = klingrun(fx, {"cancel", "--all"});
  INFO(r.describe());
  CHECK(r.exit_code == 0);
  json stats = fx.fake.stats();
  CHECK(stats["cancels"] == 2);
  for (auto& j : fx.fake.jobs()) CHECK(j["cancelled"] == true);
  json rows = status_json(fx);
  REQUIRE(rows.size() == 2);
  for (auto& row : rows) CHECK(row["state"] == "cancelled");

  // A second cancel --all has nothing left to cancel.
  auto again = klingrun(fx, {"cancel", "--all"});
  CHECK(again.exit_code == 0);
  CHECK(fx.fake.stats()["requests"]["cancel"] == stats["requests"]["cancel"]);
}

TEST_CASE("money store cli: gc forgets records whose files were deleted and keeps the others", "[e2e][money][store]") {
  Fixture fx;
  REQUIRE(fx.script("pair.lua", kTwoShort).exit_code == 0);
  // A job still running on fal: gc must never forget it (money on fal).
  leave_two_running(fx);
  json before = status_json(fx);
  REQUIRE(before.size() == 4);

  // Nothing deleted yet: gc removes nothing.
  auto noop = klingrun(fx, {"gc"});
  INFO(noop.describe());
  CHECK(noop.exit_code == 0);
  CHECK(noop.out.find("removed 0") != std::string::npos);
  CHECK(status_json(fx).size() == 4);

  krt::fs::remove(fx.out("pair") / "north.mp4");
  auto gc = klingrun(fx, {"gc"});
  INFO(gc.describe());
  CHECK(gc.exit_code == 0);
  CHECK(gc.out.find("removed 1") != std::string::npos);
  json after = status_json(fx);
  CHECK(after.size() == 3);
  CHECK(row_named(after, "north").is_null());
  CHECK(row_named(after, "south")["state"] == "done");
  CHECK(row_named(after, "east")["state"] == "submitted");
  CHECK(row_named(after, "west")["state"] == "submitted");
  auto table = klingrun(fx, {"status"});
  CHECK(table_line(table.out, "north").empty());
  CHECK_FALSE(table_line(table.out, "south").empty());

  // The forgotten job is generated again by the next run (it is no longer known); the kept one is reused.
  json s1 = fx.fake.stats();
  auto rerun = fx.script("pair.lua", kTwoShort);
  INFO(rerun.describe());
  REQUIRE(rerun.exit_code == 0);
  CHECK(fx.fake.stats()["jobs_created"].get<int>() - s1["jobs_created"].get<int>() == 1);
  CHECK(krt::fs::exists(fx.out("pair") / "north.mp4"));
}
