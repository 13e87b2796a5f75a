// What a run reports while it goes when stderr is not a terminal: timestamped lines and a
// summary; nothing with --quiet; JSON events on stdout with --json.
#include <catch2/catch.hpp>

#include "cli_helpers.h"

using namespace clitest;

namespace {

const char* kStamp = "^[0-2][0-9]:[0-5][0-9]:[0-6][0-9] ";

// Two jobs and no print(): stdout is only klingrun's own output.
const std::string kTwoJobs =
    "local a = kling.submit{name=\"wide\", endpoint=\"v3/pro/t2v\", prompt=\"a harbor at noon\", duration=5}\n"
    "local b = kling.submit{name=\"close\", endpoint=\"v3/standard/t2v\", prompt=\"a rope\", duration=10, generate_audio=false}\n"
    "kling.wait_all{a, b}\n";

}  // namespace

TEST_CASE("run: plain timestamped progress lines and a summary on stderr", "[progress]") {
  TempDir dir;
  dir.write("two.lua", kTwoJobs);
  Result r = dir.run({"two.lua"});
  INFO("stderr:\n" << r.err);
  REQUIRE(r.exit_code == 0);
  auto ls = nonempty_lines(r.err);
  REQUIRE(ls.size() >= 3);
  for (auto& l : ls) {
    INFO("line: " << l);
    CHECK(matches(l, kStamp));
    CHECK_FALSE(contains(l, "\033["));  // no terminal control codes
  }
  bool wide_done = false, close_done = false;
  for (auto& l : ls) {
    wide_done = wide_done || matches(l, " wide\\s+v3/pro/t2v\\s+done \\$0\\.84$");
    close_done = close_done || matches(l, " close\\s+v3/standard/t2v\\s+done \\$0\\.84$");
  }
  CHECK(wide_done);
  CHECK(close_done);
  CHECK(matches(ls.back(), std::string(kStamp) +
                               "2/2 done, 0 failed, 15 s of video; estimated spend \\$1\\.68 \\(offline: nothing was sent\\)$"));
  CHECK(r.out.empty());  // progress never goes to stdout
}

TEST_CASE("run: the example t2v_single reports its job and summary", "[progress][examples]") {
  TempDir dir;
  Result r = dir.run({example("t2v_single")});
  INFO("stderr:\n" << r.err);
  REQUIRE(r.exit_code == 0);
  auto ls = nonempty_lines(r.err);
  REQUIRE_FALSE(ls.empty());
  for (auto& l : ls) CHECK(matches(l, kStamp));
  CHECK(contains(ls.back(), "1/1 done, 0 failed, 5 s of video; estimated spend $0.84"));
  CHECK(contains(r.out, "lighthouse: $0.840"));  // the script's own print
  CHECK(fs::exists(dir / "out/t2v_single/plan.json"));
}

TEST_CASE("run --quiet: no progress output", "[progress]") {
  TempDir dir;
  dir.write("two.lua", kTwoJobs);
  for (auto flag : {"--quiet", "-q"}) {
    Result r = dir.run({flag, "two.lua"});
    INFO(flag);
    CHECK(r.exit_code == 0);
    CHECK(r.err.empty());
    CHECK(r.out.empty());
  }
  // Errors are still reported.
  dir.write("boom.lua", "error('boom')\n");
  Result e = dir.run({"--quiet", "boom.lua"});
  CHECK(e.exit_code == 1);
  CHECK(nonempty_lines(e.err) == std::vector<std::string>{"boom.lua:1: boom"});
}

TEST_CASE("plan: no progress lines (the plan is the output)", "[progress][plan]") {
  TempDir dir;
  dir.write("two.lua", kTwoJobs);
  Result r = dir.run({"plan", "two.lua"});
  CHECK(r.exit_code == 0);
  CHECK(r.err.empty());
  Result j = dir.run({"plan", "two.lua", "--json"});
  CHECK(j.exit_code == 0);
  CHECK(j.err.empty());
}

TEST_CASE("run --json: one JSON event per line on stdout, ending with a summary", "[progress][json]") {
  TempDir dir;
  dir.write("two.lua", kTwoJobs);
  Result r = dir.run({"--json", "two.lua"});
  INFO("stdout:\n" << r.out << "\nstderr:\n" << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.empty());  // no plain progress lines
  auto ls = nonempty_lines(r.out);
  REQUIRE(ls.size() >= 3);
  std::vector<json> events;
  for (auto& l : ls) {
    INFO("line: " << l);
    json e;
    REQUIRE_NOTHROW(e = json::parse(l));
    REQUIRE(e.is_object());
    REQUIRE(e.contains("event"));
    CHECK(e["event"].is_string());
    CHECK(e["t"].is_number());
    events.push_back(e);
  }
  const json& last = events.back();
  CHECK(last["event"] == "summary");
  CHECK(last["done"] == 2);
  CHECK(last["failed"] == 0);
  CHECK(last["seconds"] == 15);
  CHECK(last["estimated_usd"].get<double>() == Approx(1.68));
  int summaries = 0;
  std::set<std::string> done;
  for (auto& e : events) {
    if (e["event"] == "summary") { ++summaries; continue; }
    CHECK(e["job"].is_string());
    CHECK(e["endpoint"].is_string());
    if (e["event"] == "done") {
      done.insert(e["job"].get<std::string>());
      CHECK(e["cost_usd"].get<double>() == Approx(0.84));
    }
  }
  CHECK(summaries == 1);
  CHECK(done == std::set<std::string>{"wide", "close"});
  // Events of a job come in time order.
  for (size_t i = 1; i < events.size(); ++i) CHECK(events[i]["t"].get<double>() >= events[i - 1]["t"].get<double>());
}

TEST_CASE("run --json --quiet still writes the events (quiet only silences stderr)", "[progress][json]") {
  TempDir dir;
  dir.write("two.lua", kTwoJobs);
  Result r = dir.run({"--json", "--quiet", "two.lua"});
  CHECK(r.exit_code == 0);
  CHECK(r.err.empty());
  // Either nothing (quiet wins) or well-formed events; never anything else.
  for (auto& l : nonempty_lines(r.out)) CHECK_NOTHROW(json::parse(l));
}

// With --json, stdout is a stream of JSON events; a script's print() must not break it (plan
// --json sends print() to stderr for the same reason).
TEST_CASE("run --json: every stdout line is JSON even when the script prints", "[progress][json]") {
  TempDir dir;
  Result r = dir.run({"--json", example("t2v_single")});
  REQUIRE(r.exit_code == 0);
  for (auto& l : nonempty_lines(r.out)) {
    INFO("line: " << l);
    json e;
    CHECK_NOTHROW(e = json::parse(l));
  }
}
