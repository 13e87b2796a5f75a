// Scripts that fail: the exit code, a message at the script's file:line, no C++ internals, and
// the jobs that finished before the error still in out/<script>/plan.json.
#include <catch2/catch.hpp>

#include "cli_helpers.h"

using namespace clitest;

namespace {

// The lines of stderr that are not progress lines ("HH:MM:SS ...").
std::vector<std::string> message_lines(const std::string& err) {
  std::vector<std::string> out;
  for (auto& l : nonempty_lines(err))
    if (!matches(l, "^[0-9]{2}:[0-9]{2}:[0-9]{2} ")) out.push_back(l);
  return out;
}

void no_internals(const Result& r) {
  INFO("stderr:\n" << r.err);
  CHECK_FALSE(r.signaled);
  CHECK_FALSE(contains(r.err, "terminate called"));
  CHECK_FALSE(contains(r.err, "std::"));
  CHECK_FALSE(contains(r.err, "exception"));
}

const std::string kFirstJob = "kling.generate{name=\"first\", endpoint=\"v3/pro/t2v\", prompt=\"a fox in the snow\", duration=5}\n";

// plan.json holds exactly the job "first", finished.
void first_job_kept(const TempDir& dir, const std::string& stem) {
  fs::path f = dir / ("out/" + stem + "/plan.json");
  REQUIRE(fs::exists(f));
  json doc = json::parse(read_file(f));
  REQUIRE(doc["jobs"].size() >= 1);
  CHECK(doc["jobs"][0]["name"] == "first");
  CHECK(doc["jobs"][0]["state"] == "done");
  CHECK(doc["jobs"][0]["input"]["prompt"] == "a fox in the snow");
  CHECK(doc["jobs"][0]["cost_usd"].get<double>() == Approx(0.84));
}

}  // namespace

TEST_CASE("a syntax error exits 1 with one file.lua:LINE: line", "[errors]") {
  TempDir dir;
  dir.write("syn.lua", "local kling = require \"kling\"\nlocal x = = 3\n");
  for (auto mode : {"run", "plan"}) {
    Result r = dir.run({mode, "syn.lua"});
    INFO(mode << " stderr:\n" << r.err);
    CHECK(r.exit_code == 1);
    auto ls = nonempty_lines(r.err);
    REQUIRE(ls.size() == 1);
    CHECK(matches(ls[0], "^syn\\.lua:2: "));
    no_internals(r);
    CHECK_FALSE(fs::exists(dir / "out/syn/plan.json"));  // nothing ran
  }
}

TEST_CASE("a field fal does not have exits 1 with file.lua:1: seed:", "[errors]") {
  TempDir dir;
  dir.write("badfield.lua", "kling.generate{prompt=\"x\", seed=1}\n");
  Result r = dir.run({"badfield.lua"});
  CHECK(r.exit_code == 1);
  auto ls = message_lines(r.err);
  REQUIRE(ls.size() == 1);
  CHECK(matches(ls[0], "^badfield\\.lua:1: seed: "));
  no_internals(r);
}

TEST_CASE("a wrong shot duration exits 1 naming multi_prompt[1].duration", "[errors]") {
  TempDir dir;
  dir.write("shots.lua",
            "kling.generate{endpoint=\"v3/pro/t2v\",\n"
            "  multi_prompt={{prompt=\"a\", duration=3}, {prompt=\"b\", duration=2}}}\n");
  Result r = dir.run({"shots.lua"});
  CHECK(r.exit_code == 1);
  auto ls = message_lines(r.err);
  REQUIRE_FALSE(ls.empty());
  bool found = false;
  for (auto& l : ls) {
    CHECK(matches(l, "^shots\\.lua:1: "));
    found = found || l == "shots.lua:1: multi_prompt[1].duration: \"2\" is below the 3 s minimum per shot";
  }
  CHECK(found);
  no_internals(r);
}

TEST_CASE("an unknown element exits 1 naming it", "[errors][elements]") {
  TempDir dir;
  dir.write("elem.lua",
            "kling.element{name=\"hero\", frontal=\"https://example.com/h.png\", references={\"https://example.com/h2.png\"}}\n"
            "kling.generate{endpoint=\"v3/pro/i2v\", start_image_url=\"https://example.com/s.png\",\n"
            "  prompt=\"@hero meets @villain\", duration=5}\n");
  Result r = dir.run({"elem.lua"});
  CHECK(r.exit_code == 1);
  auto ls = message_lines(r.err);
  REQUIRE(ls.size() == 1);
  CHECK(matches(ls[0], "^elem\\.lua:2: "));
  CHECK(contains(ls[0], "@villain"));
  CHECK(contains(ls[0], "hero"));  // the elements it knows
  no_internals(r);
}

TEST_CASE("going over the budget exits 4 naming the job, its cost, the spend and the budget", "[errors][budget]") {
  TempDir dir;
  const std::string two = "kling.generate{name=\"first\", endpoint=\"v3/pro/t2v\", prompt=\"a fox in the snow\", duration=5}\n"
                          "kling.generate{name=\"second\", endpoint=\"v3/pro/t2v\", prompt=\"a cat\", duration=5}\n";
  auto expect_budget = [&](const Result& r, const std::string& file, int line) {
    INFO("stderr:\n" << r.err);
    CHECK(r.exit_code == 4);
    auto ls = message_lines(r.err);
    REQUIRE(ls.size() == 1);
    const std::string& m = ls[0];
    CHECK(m.rfind(file + ":" + std::to_string(line) + ": ", 0) == 0);
    CHECK(contains(m, "\"second\""));  // the job
    CHECK(contains(m, "costs $0.84"));  // its cost
    CHECK(contains(m, "with $0.84 already"));  // spend so far
    CHECK(contains(m, "$1.00"));  // the budget
    CHECK_FALSE(contains(m, "\"first\""));
    no_internals(r);
  };
  SECTION("--budget 1") {
    dir.write("two.lua", two);
    Result r = dir.run({"--budget", "1", "two.lua"});
    expect_budget(r, "two.lua", 2);
    first_job_kept(dir, "two");
    json doc = json::parse(read_file(dir / "out/two/plan.json"));
    CHECK(doc["jobs"].size() == 1);  // the refused job was never made
  }
  SECTION("plan --budget 1") {
    dir.write("two.lua", two);
    Result r = dir.run({"plan", "--budget", "1", "two.lua", "--json"});
    expect_budget(r, "two.lua", 2);
    json doc = json::parse(r.out);
    CHECK(doc["jobs"].size() == 1);
    first_job_kept(dir, "two");
  }
  SECTION("kling.budget(1) in the script") {
    dir.write("two_b.lua", "kling.budget(1)\n" + two);
    Result r = dir.run({"two_b.lua"});
    expect_budget(r, "two_b.lua", 3);
    first_job_kept(dir, "two_b");
  }
  SECTION("kling.budget(1) with submit: refused at submission") {
    dir.write("sub.lua", "kling.budget(1)\n"
                         "local a = kling.submit{name=\"first\", endpoint=\"v3/pro/t2v\", prompt=\"a fox in the snow\", duration=5}\n"
                         "local b = kling.submit{name=\"second\", endpoint=\"v3/pro/t2v\", prompt=\"a cat\", duration=5}\n"
                         "kling.wait_all{a, b}\n");
    Result r = dir.run({"sub.lua"});
    expect_budget(r, "sub.lua", 3);
  }
  SECTION("within budget is fine") {
    dir.write("two.lua", two);
    Result r = dir.run({"--budget", "1.68", "two.lua"});
    CHECK(r.exit_code == 0);
  }
}

TEST_CASE("error() in the script exits 1 with file:line", "[errors]") {
  TempDir dir;
  dir.write("boom.lua", "local x = 1\nerror(\"boom\")\n");
  Result r = dir.run({"boom.lua"});
  CHECK(r.exit_code == 1);
  auto ls = message_lines(r.err);
  REQUIRE(ls.size() == 1);
  CHECK(ls[0] == "boom.lua:2: boom");
  no_internals(r);

  SECTION("inside a spawned task") {
    dir.write("task.lua", "local t = kling.spawn(function()\n  error(\"inner boom\")\nend)\nt:wait()\n");
    Result t = dir.run({"task.lua"});
    CHECK(t.exit_code == 1);
    auto tl = message_lines(t.err);
    REQUIRE(tl.size() == 1);
    CHECK(tl[0] == "task.lua:2: inner boom");
    no_internals(t);
  }
  SECTION("a runtime error (nil index)") {
    dir.write("nil.lua", "local t = nil\nprint(t.x)\n");
    Result t = dir.run({"nil.lua"});
    CHECK(t.exit_code == 1);
    auto tl = message_lines(t.err);
    REQUIRE(tl.size() == 1);
    CHECK(matches(tl[0], "^nil\\.lua:2: "));
    no_internals(t);
  }
}

// The first error of a script that already finished jobs: the error is reported, and the
// finished jobs are still written to out/<script>/plan.json (nothing lost).
TEST_CASE("an error after finished jobs keeps them in plan.json", "[errors][plan]") {
  struct Case {
    const char* name;
    std::string second_line;
    int exit_code;
    const char* says;  // after "<file>.lua:2: "
  };
  const Case cases[] = {
      {"badfield", "kling.generate{prompt=\"x\", seed=1}\n", 1, "seed: "},
      {"shotdur", "kling.generate{multi_prompt={{prompt=\"a\", duration=3}, {prompt=\"b\", duration=2}}}\n", 1,
       "multi_prompt[1].duration: "},
      {"villain", "kling.generate{prompt=\"@villain waves\", duration=5}\n", 1, "prompt: unknown element \"@villain\""},
      {"boom", "error(\"boom\")\n", 1, "boom"},
      {"overbudget", "kling.budget(1) kling.generate{name=\"second\", prompt=\"a cat\", duration=5}\n", 4, "budget: "},
  };
  for (auto& c : cases) {
    for (std::string mode : {"run", "plan"}) {
      DYNAMIC_SECTION(c.name << " (" << mode << ")") {
        TempDir dir;
        std::string stem = std::string("after_") + c.name;
        dir.write(stem + ".lua", kFirstJob + c.second_line);
        Result r = dir.run({mode, stem + ".lua"});
        INFO("stderr:\n" << r.err);
        CHECK(r.exit_code == c.exit_code);
        auto ls = message_lines(r.err);
        REQUIRE_FALSE(ls.empty());
        CHECK(ls[0].rfind(stem + ".lua:2: " + c.says, 0) == 0);
        no_internals(r);
        first_job_kept(dir, stem);
      }
    }
  }
}

TEST_CASE("a job submitted but not started when the script fails is listed, not lost", "[errors][plan]") {
  TempDir dir;
  dir.write("pending.lua", "local j = kling.submit{name=\"pending\", prompt=\"a boat\", duration=5}\nerror(\"stop\")\n");
  Result r = dir.run({"pending.lua"});
  CHECK(r.exit_code == 1);
  CHECK(has_line(r.err, "pending.lua:2: stop"));
  fs::path f = dir / "out/pending/plan.json";
  REQUIRE(fs::exists(f));
  json doc = json::parse(read_file(f));
  REQUIRE(doc["jobs"].size() == 1);
  CHECK(doc["jobs"][0]["name"] == "pending");
}

TEST_CASE("other bad calls report at the script's line without internals", "[errors]") {
  TempDir dir;
  struct Case { const char* code; const char* says; };
  const Case cases[] = {
      {"kling.generate(nil)", "expected a table"},
      {"kling.generate{endpoint=5, prompt=\"x\"}", "endpoint: must be a string"},
      {"kling.generate{endpoint=\"v9/x/t2v\", prompt=\"x\"}", "v9/x/t2v"},
      {"kling.generate{prompt=\"x\", duration=5.5}", "duration: "},
      {"kling.generate{prompt=\"x\", duration=\"abc\"}", "duration: "},
      {"kling.generate{prompt={1,2}}", "prompt: "},
      {"kling.generate{prompt=\"x\", take=1.5}", "take: "},
      {"kling.generate{prompt=\"x\", timeout=-1}", "timeout: must be a positive number of seconds, got -1"},
      {"kling.generate{prompt=\"x\", start_timeout=1}", "start_timeout: must be a number of seconds above 1, got 1"},
      {"kling.generate{prompt=\"x\", priority=\"urgent\"}", "priority: must be \"normal\" or \"low\", got \"urgent\""},
      {"kling.generate{name=true, prompt=\"x\"}", "name: must be a string, got true"},
      {"kling.generate{\"a boat\"}", "expected a table of named fields"},
      {"kling.generate{prompt=print}", "prompt: a function cannot be sent to fal"},
      {"kling.generate{multi_prompt={{prompt=\"a\", duration=3}, {prompt=print}}}", "multi_prompt[1].prompt: a function cannot be sent"},
      {"kling.generate{prompt=\"x\", image_urls={\"a.png\", nil, \"b.png\"}}", "image_urls: a list with holes"},
      {"kling.generate{prompt=\"x\", image_urls={\"a.png\", x=1}}", "image_urls: mixes list entries and named fields"},
      {"kling.budget(-1)", "kling.budget"},
      {"kling.element{name=\"a\", frontal=\"https://e.com/a.png\"}", "element"},
      {"kling.generate{name=\"a\", prompt=\"x\"} kling.generate{name=\"a\", prompt=\"y\"}", "name: \"a\" is already used"},
  };
  for (auto& c : cases) {
    dir.write("bad.lua", std::string(c.code) + "\n");
    Result r = dir.run({"bad.lua"});
    INFO(c.code << "\nstderr:\n" << r.err);
    CHECK(r.exit_code == 1);
    auto ls = message_lines(r.err);
    REQUIRE_FALSE(ls.empty());
    CHECK(ls[0].rfind("bad.lua:1: ", 0) == 0);
    CHECK(contains(ls[0], c.says));
    no_internals(r);
  }
}
