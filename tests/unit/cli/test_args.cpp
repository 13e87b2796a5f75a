// --version, --help, usage errors, and script arguments reaching the script.
#include <catch2/catch.hpp>

#include "cli_helpers.h"

using namespace clitest;

TEST_CASE("version: --version prints klingrun X.Y.Z and the allocator in use", "[args]") {
  TempDir dir;
  for (auto flag : {"--version", "-V"}) {
    Result r = dir.run({flag});
    INFO(flag << "\n" << r.out);
    CHECK(r.exit_code == 0);
    CHECK(matches(r.out, "^klingrun [0-9]+\\.[0-9]+\\.[0-9]+\nallocator: [^\n]+\n$"));
#ifdef KR_MIMALLOC
    // Built with mimalloc: it must really have replaced malloc, not just be linked.
    CHECK(matches(r.out, "\nallocator: mimalloc [0-9]+\\.[0-9]+\\.[0-9]+\n$"));
#endif
    CHECK(r.err.empty());
  }
}

TEST_CASE("help: --help mentions every command, flag and exit code", "[args][help]") {
  TempDir dir;
  Result r = dir.run({"--help"});
  REQUIRE(r.exit_code == 0);
  const std::string& h = r.out;
  for (auto cmd : {"plan", "check", "prices", "status", "cancel", "gc"}) {
    INFO("command " << cmd);
    CHECK(matches(h, std::string("klingrun ") + cmd + "\\b"));
  }
  for (auto flag : {"--budget", "--concurrency", "--out", "--state", "--prices", "--queue-url", "--rest-url", "--fresh",
                    "--resubmit-unknown", "--cancel-on-interrupt", "--json", "--quiet", "--endpoint", "--version", "--help"}) {
    INFO("flag " << flag);
    CHECK(contains(h, flag));
  }
  CHECK(contains(h, "Exit codes"));
  for (auto code : {"0 ok", "1 script or validation error", "2 usage error", "3 generation failed", "4 budget exceeded",
                    "130 interrupted"}) {
    INFO("exit code " << code);
    CHECK(contains(h, code));
  }
  // Every endpoint short form.
  for (auto ep : {"v3/pro/t2v", "v3/pro/i2v", "v3/standard/t2v", "v3/standard/i2v", "o3/pro/t2v", "o3/pro/i2v", "o3/pro/r2v",
                  "o3/standard/t2v", "o3/standard/i2v", "o3/standard/r2v", "v2.6/pro/t2v", "v2.6/pro/i2v",
                  "v2.5-turbo/pro/t2v", "v2.5-turbo/pro/i2v"}) {
    INFO("endpoint " << ep);
    CHECK(contains(h, ep));
  }

  SECTION("-h and no arguments print the same help") {
    CHECK(dir.run({"-h"}).out == h);
    Result none = dir.run({});
    CHECK(none.exit_code == 0);
    CHECK(none.out == h);
  }
}

TEST_CASE("usage errors exit 2 with a message", "[args][usage]") {
  TempDir dir;
  auto script = dir.write("s.lua", "print('hi')\n");
  struct Case { std::vector<std::string> args; const char* says; };
  const Case cases[] = {
      {{"--bogus"}, "unknown option --bogus"},
      {{"--bogus", "s.lua"}, "unknown option --bogus"},
      {{"plan", "s.lua", "--bogus"}, "unknown option --bogus"},
      {{"prices", "--bogus"}, "unknown option --bogus"},
      {{"plan"}, "no script"},
      {{"--budget", "abc", "s.lua"}, "--budget"},
      {{"--budget", "-1", "s.lua"}, "--budget"},
      {{"--budget"}, "--budget needs a value"},
      {{"--concurrency", "0", "s.lua"}, "--concurrency"},
      {{"-j", "1.5", "s.lua"}, "-j"},
      {{"--backend", "cloud", "s.lua"}, "--backend"},
      {{"plan", "s.lua", "extra"}, "unexpected argument \"extra\""},
  };
  for (auto& c : cases) {
    Result r = dir.run(c.args);
    INFO(join(c.args, " ") << "\nstderr: " << r.err);
    CHECK(r.exit_code == 2);
    CHECK(contains(r.err, c.says));
    CHECK(r.out.empty());
    CHECK_FALSE(looks_internal(r.err));
  }
}

TEST_CASE("a script that does not exist exits 1 naming it", "[args]") {
  TempDir dir;
  Result r = dir.run({"nothere.lua"});
  CHECK(r.exit_code == 1);
  CHECK(contains(r.err, "nothere.lua"));
  Result p = dir.run({"plan", "nothere.lua"});
  CHECK(p.exit_code == 1);
  CHECK(contains(p.err, "nothere.lua"));
}

TEST_CASE("script arguments reach the script as arg[] and ...", "[args][script]") {
  TempDir dir;
  dir.write("s.lua",
            "print(string.format('n=%d a1=%s a2=%s dots=%s a0=%s', select('#', ...), tostring(arg[1]), tostring(arg[2]),\n"
            "  table.concat({...}, ','), tostring(arg[0])))\n"
            "");
  dir.write("exact.lua",
            "if arg[1] ~= 'a' then error('arg[1]') end if arg[2] ~= 'b' then error('arg[2]') end\n"
            "if select('#', ...) ~= 2 then error('count') end local x, y = ... if x ~= 'a' or y ~= 'b' then error('dots') end\n");
  SECTION("the script sees arg[1] == 'a' and select('#', ...) == 2") {
    Result r = dir.run({"exact.lua", "a", "b"});
    INFO(r.err);
    CHECK(r.exit_code == 0);
    Result wrong = dir.run({"exact.lua", "a"});
    CHECK(wrong.exit_code == 1);
    CHECK(contains(wrong.err, "exact.lua:1: arg[2]"));
  }
  SECTION("run: klingrun s.lua a b") {
    Result r = dir.run({"s.lua", "a", "b"});
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(has_line(r.out, "n=2 a1=a a2=b dots=a,b a0=s.lua"));
  }
  SECTION("run: options after the script belong to the script") {
    Result r = dir.run({"--quiet", "s.lua", "--json", "-q"});
    CHECK(r.exit_code == 0);
    CHECK(has_line(r.out, "n=2 a1=--json a2=-q dots=--json,-q a0=s.lua"));
  }
  SECTION("run: no arguments") {
    Result r = dir.run({"s.lua"});
    CHECK(r.exit_code == 0);
    CHECK(has_line(r.out, "n=0 a1=nil a2=nil dots= a0=s.lua"));
  }
  SECTION("plan: arguments after --") {
    Result r = dir.run({"plan", "s.lua", "--", "a", "b"});
    CHECK(r.exit_code == 0);
    CHECK(has_line(r.out, "n=2 a1=a a2=b dots=a,b a0=s.lua"));
  }
  SECTION("an argument with spaces stays one argument") {
    Result r = dir.run({"s.lua", "a b", "c"});
    CHECK(has_line(r.out, "n=2 a1=a b a2=c dots=a b,c a0=s.lua"));
  }
}
