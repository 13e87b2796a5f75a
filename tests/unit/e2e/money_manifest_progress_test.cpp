// Money-safe runs, what a run leaves behind and what it says while running: out/<script>/
// manifest.json records every job (input, request id, cost, output path, SHA-256, timings);
// progress on a non-terminal stderr is HH:MM:SS-stamped lines plus a summary; --quiet prints
// none; --json prints one JSON event per line ending with a summary.
#include <regex>
#include <set>

#include "e2e_common.h"
#include "money.h"

using namespace e2e;

namespace {

const char* kPair =
    "local kling = require 'kling'\n"
    "local a = kling.submit{ name = 'dawn', prompt = 'A fishing village at dawn.', duration = 5 }\n"
    "local b = kling.submit{ name = 'dusk', prompt = 'The same village at dusk.', duration = 10, generate_audio = false }\n"
    "kling.wait_all({ a, b })\n";

bool is_iso_time(const json& v) {
  static const std::regex re("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?Z$");
  return v.is_string() && std::regex_match(v.get<std::string>(), re);
}

}  // namespace

TEST_CASE("money manifest: every job with input - request id - done - cost - output - sha256 - timings",
          "[e2e][money][manifest]") {
  Fixture fx;
  auto r = fx.script("village.lua", kPair);
  INFO(r.describe());
  REQUIRE(r.exit_code == 0);
  auto path = fx.out("village") / "manifest.json";
  REQUIRE(krt::fs::exists(path));
  json m = json::parse(krt::read_file(path), nullptr, false);
  REQUIRE(m.is_object());
  CHECK(m["script"] == "village");
  REQUIRE(m["jobs"].is_array());
  REQUIRE(m["jobs"].size() == 2);

  json fake_jobs = fx.fake.jobs();
  std::set<std::string> names;
  for (auto& j : m["jobs"]) {
    INFO(j.dump(2));
    const std::string name = j["name"];
    names.insert(name);
    CHECK(j["endpoint"] == "fal-ai/kling-video/v3/pro/text-to-video");
    CHECK(j["state"] == "done");
    REQUIRE(j["request_id"].is_string());
    // The input is the normalized request as sent: the fake got exactly this.
    json sent;
    for (auto& fj : fake_jobs)
      if (fj["request_id"] == j["request_id"]) sent = fj["input"];
    REQUIRE(sent.is_object());
    CHECK(j["input"] == sent);
    CHECK(j["input"]["duration"].is_string());
    // cost, file and hash
    const double want = name == "dawn" ? 0.84 : 1.12;  // 5 s audio on at $0.168; 10 s audio off at $0.112
    CHECK(j["cost_usd"].get<double>() == Approx(want));
    REQUIRE(j["output"].is_string());
    auto file = fx.out("village") / j["output"].get<std::string>();
    CHECK(j["output"] == name + ".mp4");  // relative to the manifest's directory
    REQUIRE(krt::fs::exists(file));
    CHECK(j["sha256"] == krt::sha256_file_hex(file));
    CHECK(j["sha256"] == sha256_hex(fake_video(j["request_id"], 65536)));
    CHECK(j["size"] == 65536);
    // timings: each step stamped, in order
    json t = j["timings"];
    for (const char* k : {"created", "submitted", "completed", "done"}) {
      INFO(k);
      CHECK(is_iso_time(t[k]));
    }
    if (is_iso_time(t["created"]) && is_iso_time(t["done"])) {
      CHECK(t["created"].get<std::string>() <= t["submitted"].get<std::string>());
      CHECK(t["submitted"].get<std::string>() <= t["completed"].get<std::string>());
      CHECK(t["completed"].get<std::string>() <= t["done"].get<std::string>());
    }
  }
  CHECK(names == std::set<std::string>{"dawn", "dusk"});
  CHECK(m["totals"]["done"] == 2);
  CHECK(m["totals"]["estimated_usd"].get<double>() == Approx(1.96));
}

TEST_CASE("money progress: stamped phase lines and a summary - quiet prints none - json prints events",
          "[e2e][money][progress]") {
  Fixture fx;
  SECTION("non-terminal stderr: HH:MM:SS lines for the phases and a summary line") {
    auto r = fx.script("village.lua", kPair);
    INFO(r.describe());
    REQUIRE(r.exit_code == 0);
    auto lines = krt::split_lines(r.err);
    REQUIRE_FALSE(lines.empty());
    int stamped = 0;
    std::set<std::string> phases_seen;
    for (auto& l : lines) {
      if (l.rfind("    ", 0) == 0) continue;  // continuation lines (error details) carry no stamp
      INFO(l);
      CHECK(krt::starts_with_clock(l));
      if (!krt::starts_with_clock(l)) continue;
      ++stamped;
      for (const char* ph : {"queued", "running", "downloading", "done"})
        if ((l.find("dawn") != std::string::npos || l.find("dusk") != std::string::npos) &&
            l.find(std::string("  ") + ph) != std::string::npos)
          phases_seen.insert(ph);
    }
    CHECK(stamped >= 4);
    CHECK(phases_seen.count("queued"));
    CHECK(phases_seen.count("running"));
    CHECK(phases_seen.count("done"));
    // "done" lines name the file.
    CHECK_FALSE(krt::lines_with(r.err, "→ out/village/dawn.mp4").empty());
    // The last line is the summary: done/total, seconds of video, dollars.
    const std::string& last = lines.back();
    INFO("summary: " << last);
    CHECK(krt::starts_with_clock(last));
    CHECK(std::regex_search(last, std::regex("2/2 done")));
    CHECK(last.find("15 s of video") != std::string::npos);
    CHECK(last.find("$1.96") != std::string::npos);
  }
  SECTION("--quiet prints no progress at all") {
    auto r = fx.script("village.lua", kPair, {"--quiet"});
    INFO(r.describe());
    REQUIRE(r.exit_code == 0);
    CHECK(r.err.empty());
    CHECK(fx.fake.stats()["jobs_created"] == 2);  // it did run
  }
  SECTION("--json: one JSON object per line with an event field - ending with the summary") {
    auto r = fx.script("village.lua", kPair, {"--json"});
    INFO(r.describe());
    REQUIRE(r.exit_code == 0);
    auto lines = krt::split_lines(r.out);
    REQUIRE(lines.size() >= 4);
    std::set<std::string> events;
    for (auto& l : lines) {
      INFO(l);
      json e = json::parse(l, nullptr, false);
      REQUIRE(e.is_object());
      REQUIRE(e.contains("event"));
      events.insert(e["event"].get<std::string>());
    }
    for (const char* ev : {"submitting", "queued", "running", "done", "summary"}) {
      INFO(ev);
      CHECK(events.count(ev));
    }
    json last = json::parse(lines.back());
    CHECK(last["event"] == "summary");
    CHECK(last["done"] == 2);
    CHECK(last["failed"] == 0);
    CHECK(last["seconds"] == 15);
    CHECK(last["estimated_usd"].get<double>() == Approx(1.96));
    // Job events carry the job, the request id once known, and the path when done.
    for (auto& l : lines) {
      json e = json::parse(l);
      if (e["event"] == "done") {
        CHECK(e["path"].get<std::string>().find("out/village/") == 0);
        CHECK(e["request_id"].is_string());
      }
    }
    // stderr carries no progress lines in --json mode.
    for (auto& l : krt::split_lines(r.err)) CHECK_FALSE(krt::starts_with_clock(l));
  }
}
