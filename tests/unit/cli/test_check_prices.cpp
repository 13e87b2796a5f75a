// `klingrun check` (one raw fal input) and `klingrun prices` / `--prices FILE`.
#include <catch2/catch.hpp>

#include "cli_helpers.h"

using namespace clitest;

namespace {

const std::string kValid = R"({"prompt":"a fox","duration":"5"})";
const std::string kInvalid = R"({"prompt":"x","multi_prompt":[{"prompt":"a","duration":"2"}]})";

// A price file where V3 Pro text-to-video costs $1 a second in every audio mode, and nothing
// else has a price.
const std::string kOneDollar = R"({"currency":"USD","rows":[{"endpoints":["fal-ai/kling-video/v3/pro/text-to-video"],
  "off":1.0,"on":1.0,"voice":1.0,"current":true,"source":"test","date":"2026-01-01"}]})";

// "path: message", path being a field path such as multi_prompt[0].duration.
const char* kPathLine = "^[A-Za-z_][A-Za-z0-9_]*(\\[[0-9]+\\])?(\\.[A-Za-z_][A-Za-z0-9_]*(\\[[0-9]+\\])?)*: \\S.*$";

}  // namespace

TEST_CASE("check: a valid input exits 0 and prints its cost", "[check]") {
  TempDir dir;
  auto f = dir.write("ok.json", kValid);
  Result r = dir.run({"check", "--endpoint", "v3/pro/t2v", f.string()});
  INFO("stderr: " << r.err);
  CHECK(r.exit_code == 0);
  CHECK(contains(r.out, "$0.84"));
  CHECK(contains(r.out, "fal-ai/kling-video/v3/pro/text-to-video"));
  CHECK(contains(r.out, "5 s"));
  CHECK(r.err.empty());

  SECTION("relative path, full endpoint id") {
    Result r2 = dir.run({"check", "--endpoint", "fal-ai/kling-video/v3/pro/text-to-video", "ok.json"});
    CHECK(r2.exit_code == 0);
    CHECK(contains(r2.out, "$0.84"));
  }
  SECTION("-e short flag") {
    Result r2 = dir.run({"check", "-e", "v3/pro/t2v", "ok.json"});
    CHECK(r2.exit_code == 0);
    CHECK(contains(r2.out, "$0.84"));
  }
  SECTION("audio off is the lower rate") {
    auto g = dir.write("off.json", R"({"prompt":"a fox","duration":"5","generate_audio":false})");
    Result r2 = dir.run({"check", "--endpoint", "v3/pro/t2v", g.string()});
    CHECK(r2.exit_code == 0);
    CHECK(contains(r2.out, "$0.56"));
  }
  SECTION("duration defaults to 5 s") {
    auto g = dir.write("nodur.json", R"({"prompt":"a fox"})");
    Result r2 = dir.run({"check", "--endpoint", "v3/pro/t2v", g.string()});
    CHECK(r2.exit_code == 0);
    CHECK(contains(r2.out, "$0.84"));
  }
  SECTION("a 10 s V3 Standard input") {
    auto g = dir.write("std.json", R"({"prompt":"a fox","duration":"10"})");
    Result r2 = dir.run({"check", "--endpoint", "v3/standard/t2v", g.string()});
    CHECK(r2.exit_code == 0);
    CHECK(contains(r2.out, "$1.26"));
  }
}

TEST_CASE("check: an invalid input exits 1 with one `path: message` line per error", "[check]") {
  TempDir dir;
  auto f = dir.write("bad.json", kInvalid);
  Result r = dir.run({"check", "--endpoint", "v3/pro/t2v", f.string()});
  INFO("stderr:\n" << r.err);
  CHECK(r.exit_code == 1);
  CHECK(r.out.empty());
  CHECK(has_line(r.err, "multi_prompt[0].duration: \"2\" is below the 3 s minimum per shot"));
  auto ls = nonempty_lines(r.err);
  CHECK(ls.size() >= 2);  // the shot, and prompt + multi_prompt given together
  for (auto& l : ls) {
    INFO("line: " << l);
    CHECK(matches(l, kPathLine));
  }
  bool both = false;
  for (auto& l : ls) both = both || (l.rfind("multi_prompt: ", 0) == 0 && contains(l, "prompt and multi_prompt"));
  CHECK(both);
  CHECK_FALSE(looks_internal(r.err));
}

TEST_CASE("check: other invalid inputs name their field", "[check]") {
  TempDir dir;
  struct Case { const char* input; const char* line_prefix; };
  const Case cases[] = {
      {R"({"prompt":"x","duration":"20"})", "duration: "},
      {R"({"prompt":"x","seed":1})", "seed: "},
      {R"({"prompt":"x","generate_audio":"yes"})", "generate_audio: "},
      {R"({"multi_prompt":[{"prompt":"a","duration":"3"},{"prompt":"b","duration":"2"}]})", "multi_prompt[1].duration: "},
      {R"({})", "prompt: "},
  };
  for (auto& c : cases) {
    Result r = dir.run({"check", "--endpoint", "v3/pro/t2v", "-"}, c.input);
    INFO(c.input << "\nstderr:\n" << r.err);
    CHECK(r.exit_code == 1);
    bool found = false;
    for (auto& l : nonempty_lines(r.err)) {
      CHECK(matches(l, kPathLine));
      found = found || l.rfind(c.line_prefix, 0) == 0;
    }
    CHECK(found);
  }
}

TEST_CASE("check: - reads the input from stdin", "[check]") {
  TempDir dir;
  Result ok = dir.run({"check", "--endpoint", "v3/pro/t2v", "-"}, kValid);
  CHECK(ok.exit_code == 0);
  CHECK(contains(ok.out, "$0.84"));

  Result bad = dir.run({"check", "--endpoint", "v3/pro/t2v", "-"}, kInvalid);
  CHECK(bad.exit_code == 1);
  CHECK(has_line(bad.err, "multi_prompt[0].duration: \"2\" is below the 3 s minimum per shot"));

  // A large input through the pipe (no deadlock, all of it read).
  std::string big = R"({"prompt":")" + std::string(2400, 'a') + R"(","duration":"5"})";
  Result large = dir.run({"check", "--endpoint", "v3/pro/t2v", "-"}, big);
  CHECK(large.exit_code == 0);
  std::string too_big = R"({"prompt":")" + std::string(200000, 'a') + R"(","duration":"5"})";
  Result huge = dir.run({"check", "--endpoint", "v3/pro/t2v", "-"}, too_big);
  CHECK(huge.exit_code == 1);
  CHECK(matches(huge.err, "^prompt: "));
}

TEST_CASE("check: input that is not JSON exits 1 naming the file", "[check]") {
  TempDir dir;
  auto f = dir.write("notjson.json", "nope{");
  Result r = dir.run({"check", "--endpoint", "v3/pro/t2v", f.string()});
  CHECK(r.exit_code == 1);
  CHECK(contains(r.err, "notjson.json"));
  CHECK(contains(r.err, "not valid JSON"));
  CHECK(r.out.empty());

  Result s = dir.run({"check", "--endpoint", "v3/pro/t2v", "-"}, "{\"prompt\":");
  CHECK(s.exit_code == 1);
  CHECK(contains(s.err, "stdin"));

  Result list = dir.run({"check", "--endpoint", "v3/pro/t2v", "-"}, "[1,2]");
  CHECK(list.exit_code == 1);
  CHECK_FALSE(list.err.empty());
}

TEST_CASE("check: usage errors", "[check][usage]") {
  TempDir dir;
  auto f = dir.write("ok.json", kValid);
  SECTION("missing --endpoint exits 2") {
    Result r = dir.run({"check", f.string()});
    CHECK(r.exit_code == 2);
    CHECK(contains(r.err, "--endpoint"));
  }
  SECTION("no file exits 2") {
    Result r = dir.run({"check", "--endpoint", "v3/pro/t2v"});
    CHECK(r.exit_code == 2);
  }
  SECTION("--endpoint without a value exits 2") {
    Result r = dir.run({"check", f.string(), "--endpoint"});
    CHECK(r.exit_code == 2);
  }
  SECTION("an unknown endpoint exits 1 naming it") {
    Result r = dir.run({"check", "--endpoint", "v9/ultra/t2v", f.string()});
    CHECK(r.exit_code == 1);
    CHECK(contains(r.err, "v9/ultra/t2v"));
    CHECK(contains(r.err, "v3/pro/t2v"));  // and lists the known ones
    CHECK_FALSE(looks_internal(r.err));
  }
  SECTION("a missing file fails naming it") {
    Result r = dir.run({"check", "--endpoint", "v3/pro/t2v", "absent.json"});
    CHECK(r.exit_code != 0);
    CHECK(contains(r.err, "absent.json"));
  }
}

TEST_CASE("check --json: the normalized input and its price", "[check][json]") {
  TempDir dir;
  Result r = dir.run({"check", "--endpoint", "v3/pro/t2v", "--json", "-"}, kValid);
  REQUIRE(r.exit_code == 0);
  json j;
  REQUIRE_NOTHROW(j = json::parse(r.out));
  CHECK(j["endpoint"] == "fal-ai/kling-video/v3/pro/text-to-video");
  CHECK(j["cost_usd"].get<double>() == Approx(0.84));
  CHECK(j["seconds"] == 5);
  CHECK(j["audio"] == "on");
  CHECK(j["input"]["prompt"] == "a fox");
  CHECK(j["input"]["duration"] == "5");
  CHECK(j["input"]["generate_audio"] == true);  // defaults filled in, as sent to fal

  SECTION("numbers become fal's duration strings") {
    Result n = dir.run({"check", "--endpoint", "v3/pro/t2v", "--json", "-"},
                       R"({"multi_prompt":[{"prompt":"a","duration":4},{"prompt":"b","duration":3}]})");
    REQUIRE(n.exit_code == 0);
    json k = json::parse(n.out);
    CHECK(k["input"]["duration"] == "7");
    CHECK(k["input"]["multi_prompt"][0]["duration"] == "4");
    CHECK(k["cost_usd"].get<double>() == Approx(7 * 0.168));
  }
}

TEST_CASE("prices: every endpoint with its current rates", "[prices]") {
  TempDir dir;
  Result r = dir.run({"prices"});
  REQUIRE(r.exit_code == 0);
  auto ls = lines(r.out);
  std::map<std::string, std::string> row;
  for (auto& l : ls) {
    std::smatch m;
    if (std::regex_match(l, m, std::regex("^(\\S+/\\S+/\\S+)\\s+(.*)$"))) row[m[1].str()] = m[2].str();
  }
  CHECK(row.size() == 14);
  for (auto& ep : all_endpoints()) {
    INFO(ep);
    REQUIRE(row.count(ep));
    CHECK(matches(row[ep], "\\$[0-9]"));
    CHECK_FALSE(contains(row[ep], "no current price"));
  }
  CHECK(matches(row["v3/pro/text-to-video"], "^\\$0\\.112\\s+\\$0\\.168\\s+\\$0\\.196$"));
  CHECK(matches(row["v3/pro/image-to-video"], "\\$0\\.168"));
  CHECK(matches(row["v3/standard/text-to-video"], "\\$0\\.126"));
  CHECK(contains(row["v2.5-turbo/pro/text-to-video"], "first 5 s"));
}

TEST_CASE("prices --json: rows with source, date and current", "[prices][json]") {
  TempDir dir;
  Result r = dir.run({"prices", "--json"});
  REQUIRE(r.exit_code == 0);
  json doc;
  REQUIRE_NOTHROW(doc = json::parse(r.out));
  REQUIRE(doc["rows"].is_array());
  REQUIRE_FALSE(doc["rows"].empty());
  std::map<std::string, int> current;
  for (auto& row : doc["rows"]) {
    INFO(row.dump());
    CHECK(row.contains("source"));
    CHECK(row["source"].is_string());
    CHECK(row.contains("date"));
    CHECK(row["date"].is_string());
    REQUIRE(row.contains("current"));
    CHECK(row["current"].is_boolean());
    REQUIRE(row["endpoints"].is_array());
    if (row["current"] == true)
      for (auto& e : row["endpoints"]) current[e.get<std::string>()]++;
  }
  for (auto& ep : all_endpoints()) {
    INFO(ep);
    CHECK(current["fal-ai/kling-video/" + ep] == 1);  // exactly one current row each
  }
  bool v3pro = false;
  for (auto& row : doc["rows"])
    for (auto& e : row["endpoints"])
      if (e == "fal-ai/kling-video/v3/pro/text-to-video" && row["current"] == true) {
        v3pro = true;
        CHECK(row["on"].get<double>() == Approx(0.168));
        CHECK(row["off"].get<double>() == Approx(0.112));
      }
  CHECK(v3pro);
}

TEST_CASE("prices file: --prices FILE replaces the price table", "[prices][check]") {
  TempDir dir;
  auto f = dir.write("prices.json", kOneDollar);
  auto input = dir.write("ok.json", kValid);

  SECTION("check prices with it") {
    Result r = dir.run({"check", "--prices", f.string(), "--endpoint", "v3/pro/t2v", input.string()});
    INFO("stderr: " << r.err);
    CHECK(r.exit_code == 0);
    CHECK(contains(r.out, "$5.00"));
    CHECK_FALSE(contains(r.out, "$0.84"));
    Result j = dir.run({"check", "--endpoint", "v3/pro/t2v", "--json", "--prices", f.string(), "-"}, kValid);
    REQUIRE(j.exit_code == 0);
    CHECK(json::parse(j.out)["cost_usd"].get<double>() == Approx(5.0));
  }
  SECTION("prices shows it, and the endpoints it leaves out have no price") {
    Result r = dir.run({"prices", "--prices", f.string()});
    CHECK(r.exit_code == 0);
    CHECK(matches(r.out, "\nv3/pro/text-to-video\\s+\\$1\\.00\\s+\\$1\\.00\\s+\\$1\\.00\n"));
    CHECK(matches(r.out, "\nv3/standard/text-to-video\\s+no current price"));
    Result j = dir.run({"prices", "--json", "--prices", f.string()});
    REQUIRE(j.exit_code == 0);
    CHECK(json::parse(j.out) == json::parse(kOneDollar));
  }
  SECTION("an endpoint without a price is refused by check") {
    Result r = dir.run({"check", "--prices", f.string(), "--endpoint", "v3/standard/t2v", input.string()});
    CHECK(r.exit_code == 1);
    CHECK(contains(r.err, "no current price"));
  }
  SECTION("plan prices with it") {
    Result r = dir.run({"plan", "--prices", f.string(), example("t2v_single"), "--json"});
    REQUIRE(r.exit_code == 0);
    json doc = json::parse(r.out);
    CHECK(doc["jobs"][0]["cost_usd"].get<double>() == Approx(5.0));
    CHECK(doc["total_usd"].get<double>() == Approx(5.0));
  }
}

TEST_CASE("prices file: --prices with a file that is not JSON fails naming the file", "[prices]") {
  TempDir dir;
  auto bad = dir.write("broken-prices.json", "{\"rows\": [");
  auto input = dir.write("ok.json", kValid);
  for (auto args : std::vector<std::vector<std::string>>{
           {"prices", "--prices", bad.string()},
           {"check", "--prices", bad.string(), "--endpoint", "v3/pro/t2v", input.string()},
           {"plan", "--prices", bad.string(), example("t2v_single")}}) {
    Result r = dir.run(args);
    INFO(args[0] << " stderr: " << r.err);
    CHECK(r.exit_code != 0);
    CHECK(contains(r.err, "broken-prices.json"));
    CHECK_FALSE(contains(r.err, "terminate called"));
  }
  Result missing = dir.run({"prices", "--prices", "no-such-prices.json"});
  CHECK(missing.exit_code != 0);
  CHECK(contains(missing.err, "no-such-prices.json"));
}

// Malformed in structure rather than in syntax: the message should still name the file, and no
// library internals should reach the user.
TEST_CASE("prices file: --prices with valid JSON that is not a price table fails naming the file", "[prices]") {
  TempDir dir;
  auto input = dir.write("ok.json", kValid);
  for (auto text : {R"({"foo":1})", R"({"rows":[42]})"}) {
    auto f = dir.write("odd-prices.json", text);
    for (auto args : std::vector<std::vector<std::string>>{
             {"prices", "--prices", f.string()}, {"check", "--prices", f.string(), "--endpoint", "v3/pro/t2v", input.string()}}) {
      Result r = dir.run(args);
      INFO(text << " / " << args[0] << " stderr: " << r.err);
      CHECK(r.exit_code != 0);
      CHECK(contains(r.err, "odd-prices.json"));
      CHECK_FALSE(contains(r.err, "exception"));
    }
  }
}
