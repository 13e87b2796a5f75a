// Money-safe runs, re-runs: a finished run is reused at $0 without a single request to fal;
// --fresh and a new `take` pay for new jobs on purpose; a job left running on fal is re-attached
// (never resubmitted); a stored result whose download failed, or whose file was lost or cut short
// later, is downloaded without a new submit; the budget refuses a job before anything is sent and
// does not count reused jobs.
#include <signal.h>

#include <chrono>
#include <thread>

#include "e2e_common.h"
#include "money.h"

using namespace e2e;

namespace {

const char* kTwoClips =
    "local kling = require 'kling'\n"
    "for i, p in ipairs({ 'A red kite over the dunes.', 'A blue boat at anchor in a calm bay.' }) do\n"
    "  local r = kling.generate{ name = 'clip' .. i, prompt = p, duration = 5 }\n"
    "  print(string.format('result %s reused=%s cost=%.2f size=%d id=%s', r.name, tostring(r.reused == true),\n"
    "                      r.cost_usd, r.video.file_size, r.request_id))\n"
    "end\n";

json stats_of(const Fixture& fx) { return fx.fake.stats(); }
int req(const json& stats, const std::string& route) { return stats["requests"].value(route, 0); }

// The request id the store (via `klingrun status --json`) has for job `name`, and its state.
json status_row(Fixture& fx, const std::string& name, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args = {"status", "--json"};
  args.insert(args.end(), extra.begin(), extra.end());
  auto r = krt::run_klingrun(fx.dir.path(), args, fx.fake.env());
  INFO(r.describe());
  REQUIRE(r.exit_code == 0);
  json rows = json::parse(r.out, nullptr, false);
  REQUIRE(rows.is_array());
  for (auto& row : rows)
    if (row["name"] == name) return row;
  FAIL("no row named " << name << " in " << r.out);
  return {};
}

// The file out/<stem>/<name>.mp4 holds exactly the fake's video for `request_id`.
void check_video(const Fixture& fx, const std::string& stem, const std::string& name, const std::string& request_id,
                 std::size_t size = 65536) {
  auto file = fx.out(stem) / (name + ".mp4");
  REQUIRE(krt::fs::exists(file));
  CHECK(krt::fs::file_size(file) == size);
  CHECK(krt::sha256_file_hex(file) == sha256_hex(fake_video(request_id, size)));
}

// Runs `script` until its one job is IN_PROGRESS on the fake, then kills klingrun (SIGKILL):
// a crash that leaves the job running on fal, its row `submitted`.
void kill_while_running(Fixture& fx, const std::string& script) {
  krt::Process p(krt::klingrun_options(fx.dir.path(), {script}, fx.fake.env()));
  REQUIRE(krt::pump_until(p, [&] { return krt::fake_jobs_in(fx.fake, "IN_PROGRESS") == 1; }, 30));
  p.signal(SIGKILL);
  REQUIRE(p.wait(10).term_signal == SIGKILL);
}

}  // namespace

TEST_CASE("money rerun: a second run reuses everything - zero requests to fal - cost 0", "[e2e][money][rerun]") {
  Fixture fx;
  auto first = fx.script("clips.lua", kTwoClips);
  INFO(first.describe());
  REQUIRE(first.exit_code == 0);
  CHECK(first.out.find("result clip1 reused=false cost=0.84") != std::string::npos);
  CHECK(first.out.find("result clip2 reused=false cost=0.84") != std::string::npos);
  json s1 = stats_of(fx);
  REQUIRE(s1["jobs_created"] == 2);
  const std::string sha1 = krt::sha256_file_hex(fx.out("clips") / "clip1.mp4");

  auto second = fx.script("clips.lua", kTwoClips);
  INFO(second.describe());
  REQUIRE(second.exit_code == 0);
  json s2 = stats_of(fx);
  CHECK(s2["requests_total"].get<int>() - s1["requests_total"].get<int>() == 0);  // not one request of any kind
  CHECK(s2["jobs_created"] == 2);
  CHECK(second.out.find("result clip1 reused=true cost=0.00") != std::string::npos);
  CHECK(second.out.find("result clip2 reused=true cost=0.00") != std::string::npos);
  // The same files, untouched.
  CHECK(krt::sha256_file_hex(fx.out("clips") / "clip1.mp4") == sha1);
  // The summary line says so and spends nothing.
  auto summary = krt::lines_with(second.err, "done,");
  REQUIRE(summary.size() == 1);
  CHECK(summary[0].find("2 reused") != std::string::npos);
  CHECK(summary[0].find("estimated spend $0.00") != std::string::npos);
  CHECK(second.err.find("reused") != std::string::npos);
}

TEST_CASE("money rerun: --fresh generates anew - new jobs - new files - then reused", "[e2e][money][rerun]") {
  Fixture fx;
  REQUIRE(fx.script("clips.lua", kTwoClips).exit_code == 0);
  json s1 = stats_of(fx);
  REQUIRE(s1["jobs_created"] == 2);
  auto old_jobs = fx.fake.jobs();

  auto fresh = fx.script("clips.lua", kTwoClips, {"--fresh"});
  INFO(fresh.describe());
  REQUIRE(fresh.exit_code == 0);
  json s2 = stats_of(fx);
  CHECK(s2["jobs_created"] == 4);
  CHECK(req(s2, "submit") - req(s1, "submit") == 2);
  CHECK(fresh.out.find("result clip1 reused=false cost=0.84") != std::string::npos);
  CHECK(fresh.out.find("result clip2 reused=false cost=0.84") != std::string::npos);
  // The files are the new generation's videos.
  auto jobs = fx.fake.jobs();
  REQUIRE(jobs.size() == 4);
  check_video(fx, "clips", "clip1", jobs[2]["request_id"]);
  check_video(fx, "clips", "clip2", jobs[3]["request_id"]);
  CHECK(jobs[2]["request_id"] != old_jobs[0]["request_id"]);
  CHECK(status_row(fx, "clip1")["request_id"] == jobs[2]["request_id"]);

  // --fresh regenerates once per run; a plain run afterwards reuses the fresh generation.
  auto again = fx.script("clips.lua", kTwoClips);
  INFO(again.describe());
  REQUIRE(again.exit_code == 0);
  CHECK(stats_of(fx)["requests_total"] == s2["requests_total"]);
}

TEST_CASE("money rerun: a new take of the same input is a new job - the rest is reused", "[e2e][money][rerun]") {
  Fixture fx;
  const std::string base =
      "local kling = require 'kling'\n"
      "local r = kling.generate{ name = 'wave', prompt = 'A wave breaks on black rocks.', duration = 5 }\n"
      "print('result', r.name, r.request_id, tostring(r.reused == true))\n";
  REQUIRE(fx.script("takes.lua", base).exit_code == 0);
  json s1 = stats_of(fx);
  REQUIRE(s1["jobs_created"] == 1);
  const std::string first_id = fx.fake.jobs()[0]["request_id"];

  const std::string with_take =
      base + "local t = kling.generate{ name = 'wave_take1', take = 1, prompt = 'A wave breaks on black rocks.', duration = 5 }\n"
             "print('result', t.name, t.request_id, tostring(t.reused == true))\n";
  auto r = fx.script("takes.lua", with_take);
  INFO(r.describe());
  REQUIRE(r.exit_code == 0);
  json s2 = stats_of(fx);
  CHECK(s2["jobs_created"] == 2);  // exactly one new job: the take
  CHECK(req(s2, "submit") - req(s1, "submit") == 1);
  auto jobs = fx.fake.jobs();
  REQUIRE(jobs.size() == 2);
  CHECK(jobs[1]["input"]["prompt"] == jobs[0]["input"]["prompt"]);  // identical input, paid anew on purpose
  CHECK(r.out.find("result\twave\t" + first_id + "\ttrue") != std::string::npos);
  CHECK(r.out.find("result\twave_take1\t" + jobs[1]["request_id"].get<std::string>() + "\tfalse") != std::string::npos);
  check_video(fx, "takes", "wave", first_id);
  check_video(fx, "takes", "wave_take1", jobs[1]["request_id"]);

  // And the take itself is reused next time.
  auto again = fx.script("takes.lua", with_take);
  REQUIRE(again.exit_code == 0);
  CHECK(stats_of(fx)["requests_total"] == s2["requests_total"]);
}

TEST_CASE("money rerun: a reused result lands under the job's own name - in another script too", "[e2e][money][rerun]") {
  Fixture fx;
  auto first = fx.script("clips.lua", kTwoClips);
  INFO(first.describe());
  REQUIRE(first.exit_code == 0);
  json s1 = stats_of(fx);
  const std::string rid = fx.fake.jobs()[0]["request_id"];

  // The same request under two other names, in another script: one job, no request to fal,
  // and each name gets its file where its own download would have put it.
  const std::string lua =
      "local kling = require 'kling'\n"
      "for _, name in ipairs({ 'kite', 'kite_again' }) do\n"
      "  local r = kling.generate{ name = name, prompt = 'A red kite over the dunes.', duration = 5 }\n"
      "  print('result', r.name, r.video.path, tostring(r.reused == true))\n"
      "end\n";
  auto second = fx.script("renamed.lua", lua);
  INFO(second.describe());
  REQUIRE(second.exit_code == 0);
  json s2 = stats_of(fx);
  CHECK(s2["requests_total"] == s1["requests_total"]);  // nothing sent, nothing downloaded
  CHECK(second.out.find("result\tkite\tout/renamed/kite.mp4\ttrue") != std::string::npos);
  CHECK(second.out.find("result\tkite_again\tout/renamed/kite_again.mp4\ttrue") != std::string::npos);
  check_video(fx, "renamed", "kite", rid);
  check_video(fx, "renamed", "kite_again", rid);
  check_video(fx, "clips", "clip1", rid);  // the first script's file is left as it was
  CHECK(krt::files_ending(fx.out("renamed"), ".part").empty());
  // The store knows the file where it was placed last, so the copy the first script keeps may
  // be deleted without a new download.
  CHECK(status_row(fx, "kite_again")["files"][0]["path"] == "out/renamed/kite_again.mp4");
  krt::fs::remove(fx.out("clips") / "clip1.mp4");
  auto third = fx.script("renamed.lua", lua);
  INFO(third.describe());
  REQUIRE(third.exit_code == 0);
  CHECK(stats_of(fx)["requests_total"] == s1["requests_total"]);
}

TEST_CASE("money rerun: killed while running on fal - the rerun re-attaches without a new submit",
          "[e2e][money][rerun][attach]") {
  Fixture fx;
  const std::string lua =
      "local kling = require 'kling'\n"
      "local r = kling.generate{ name = 'long', prompt = 'A slow sunrise over a valley [[run_ms=2500]]', duration = 5 }\n"
      "print('result', r.name, r.request_id)\n";
  krt::write_file(fx.dir / "attach.lua", lua);
  kill_while_running(fx, "attach.lua");
  json s1 = stats_of(fx);
  REQUIRE(s1["jobs_created"] == 1);
  const std::string rid = fx.fake.jobs()[0]["request_id"];
  json row = status_row(fx, "long");
  CHECK(row["state"] == "submitted");
  CHECK(row["request_id"] == rid);
  CHECK(krt::files_ending(fx.out("attach"), ".mp4").empty());

  auto r = krt::run_klingrun(fx.dir.path(), {"attach.lua"}, fx.fake.env());
  INFO(r.describe());
  REQUIRE(r.exit_code == 0);
  json s2 = stats_of(fx);
  CHECK(req(s2, "submit") == req(s1, "submit"));  // no new submit
  CHECK(s2["jobs_created"] == 1);
  CHECK(req(s2, "stream") + req(s2, "status") > req(s1, "stream") + req(s1, "status"));  // followed it again
  CHECK(req(s2, "result") > req(s1, "result"));                                        // fetched its result
  CHECK(r.out.find("result\tlong\t" + rid) != std::string::npos);
  check_video(fx, "attach", "long", rid);
  CHECK(status_row(fx, "long")["state"] == "done");
}

TEST_CASE("money rerun: a re-attached job keeps its timeout - counted from its submit", "[e2e][money][rerun][attach]") {
  Fixture fx;
  const std::string lua =
      "local kling = require 'kling'\n"
      "kling.generate{ name = 'stuck', prompt = 'A clock that never strikes [[run_ms=99999999]]', duration = 5,\n"
      "  timeout = 2 }\n";
  krt::write_file(fx.dir / "stuck.lua", lua);
  kill_while_running(fx, "stuck.lua");
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));  // its 2 s run out while nobody watched
  auto r = krt::run_klingrun(fx.dir.path(), {"stuck.lua"}, fx.fake.env(), 30);
  INFO(r.describe());
  CHECK(r.exit_code == 3);  // without the timeout it would follow the job for ever
  CHECK(r.err.find("timeout") != std::string::npos);
  json s = stats_of(fx);
  CHECK(s["jobs_created"] == 1);  // re-attached, never resubmitted
  CHECK(s["cancels"] == 1);
  CHECK(fx.fake.jobs()[0]["cancelled"] == true);
}

TEST_CASE("money rerun: a download that failed is retried from the stored result - no new submit",
          "[e2e][money][rerun][download]") {
  Fixture fx;
  const std::string lua =
      "local kling = require 'kling'\n"
      "local r = kling.generate{ name = 'dl', prompt = 'A paper boat in a gutter stream.', duration = 5 }\n"
      "print('result', r.name, r.request_id)\n";
  fx.fake.fault({{"route", "cdn"}, {"action", "truncate"}, {"times", 100}});  // every attempt fails
  auto first = fx.script("dl.lua", lua, {}, {}, 120);
  INFO(first.describe());
  REQUIRE(first.exit_code == 3);
  json s1 = stats_of(fx);
  CHECK(s1["jobs_created"] == 1);
  CHECK(s1["downloads"] == 0);
  CHECK(req(s1, "cdn") >= 2);
  CHECK(krt::files_ending(fx.out("dl"), ".mp4").empty());
  CHECK(krt::files_ending(fx.out("dl"), ".part").empty());
  const std::string rid = fx.fake.jobs()[0]["request_id"];
  json row = status_row(fx, "dl");
  CHECK(row["state"] == "completed");  // the result is kept: it is paid for
  CHECK(row["request_id"] == rid);

  krt::clear_fake_faults(fx.fake);
  auto second = fx.script("dl.lua", lua);
  INFO(second.describe());
  REQUIRE(second.exit_code == 0);
  json s2 = stats_of(fx);
  CHECK(req(s2, "submit") == req(s1, "submit"));
  CHECK(s2["jobs_created"] == 1);
  // Only the download: no status, stream or result call either.
  const int cdn_delta = req(s2, "cdn") - req(s1, "cdn");
  CHECK(cdn_delta >= 1);
  CHECK(s2["requests_total"].get<int>() - s1["requests_total"].get<int>() == cdn_delta);
  CHECK(s2["downloads"] == 1);
  check_video(fx, "dl", "dl", rid);
  CHECK(status_row(fx, "dl")["state"] == "done");
}

TEST_CASE("money rerun: the budget refuses a job before anything is sent - reused jobs cost nothing",
          "[e2e][money][rerun][budget]") {
  Fixture fx;
  const std::string lua =
      "local kling = require 'kling'\n"
      "local a = kling.generate{ name = 'first', prompt = 'A lantern on a pier at dusk.', duration = 5 }\n"
      "print('result', a.name, a.cost_usd, tostring(a.reused == true))\n"
      "local b = kling.generate{ name = 'second', prompt = 'A heron lifts off from a reed bed.', duration = 5 }\n"
      "print('result', b.name, b.cost_usd, tostring(b.reused == true))\n";
  auto r = fx.script("budget.lua", lua, {"--budget", "1"});
  INFO(r.describe());
  CHECK(r.exit_code == 4);
  // The message names the job, its cost, what was already committed, and the budget.
  auto lines = krt::lines_with(r.err, "budget");
  INFO("budget lines: " << lines.size());
  CHECK(r.err.find("\"second\"") != std::string::npos);
  CHECK(r.err.find("costs $0.84") != std::string::npos);
  CHECK(r.err.find("$0.84 already committed") != std::string::npos);
  CHECK(r.err.find("budget of $1.00") != std::string::npos);
  json s1 = stats_of(fx);
  CHECK(s1["jobs_created"] == 1);
  CHECK(req(s1, "submit") == 1);
  REQUIRE(fx.fake.jobs().size() == 1);
  CHECK(fx.fake.jobs()[0]["input"]["prompt"] == "A lantern on a pier at dusk.");
  CHECK(krt::fs::exists(fx.out("budget") / "first.mp4"));  // the job already paid for is kept
  CHECK_FALSE(krt::fs::exists(fx.out("budget") / "second.mp4"));

  // The same budget now fits: `first` is reused at $0, so only `second` ($0.84) counts.
  auto fits = fx.script("budget.lua", lua, {"--budget", "1"});
  INFO(fits.describe());
  REQUIRE(fits.exit_code == 0);
  json s2 = stats_of(fx);
  CHECK(s2["jobs_created"] == 2);
  CHECK(fits.out.find("result\tfirst\t0\ttrue") != std::string::npos);

  // Everything stored: a budget below one job's price still runs, because reuse is $0.
  auto reuse = fx.script("budget.lua", lua, {"--budget", "0.5"});
  INFO(reuse.describe());
  CHECK(reuse.exit_code == 0);
  json s3 = stats_of(fx);
  CHECK(s3["requests_total"] == s2["requests_total"]);
  CHECK(reuse.out.find("result\tsecond\t0\ttrue") != std::string::npos);
}

TEST_CASE("money rerun: a video lost or cut short after the run is downloaded again - no new submit",
          "[e2e][money][rerun][download]") {
  // Downloads are renamed into place without an fsync: after a power loss the name may hold an
  // empty or short file, or none. The store checks size and SHA-256 before reusing it.
  Fixture fx;
  const std::string lua =
      "local kling = require 'kling'\n"
      "local r = kling.generate{ name = 'pl', prompt = 'A lighthouse in a winter storm.', duration = 5 }\n"
      "print('result', r.name, r.request_id)\n";
  auto first = fx.script("pl.lua", lua);
  INFO(first.describe());
  REQUIRE(first.exit_code == 0);
  json s1 = stats_of(fx);
  const std::string rid = fx.fake.jobs()[0]["request_id"];
  const auto file = fx.out("pl") / "pl.mp4";
  SECTION("empty") { krt::fs::resize_file(file, 0); }
  SECTION("cut short") { krt::fs::resize_file(file, krt::fs::file_size(file) / 2); }
  SECTION("missing") { krt::fs::remove(file); }

  auto second = fx.script("pl.lua", lua);
  INFO(second.describe());
  REQUIRE(second.exit_code == 0);
  json s2 = stats_of(fx);
  CHECK(s2["jobs_created"] == 1);
  CHECK(req(s2, "submit") == req(s1, "submit"));
  // Only the download: no status, stream or result call either.
  CHECK(req(s2, "cdn") - req(s1, "cdn") == 1);
  CHECK(s2["requests_total"].get<int>() - s1["requests_total"].get<int>() == 1);
  check_video(fx, "pl", "pl", rid);
  CHECK(status_row(fx, "pl")["state"] == "done");
}

TEST_CASE("money rerun: a stored result whose video fal no longer serves says how to regenerate it",
          "[e2e][money][rerun][download]") {
  Fixture fx;
  const std::string lua =
      "local r = require('kling').generate{ name = 'kettle', prompt = 'A kettle boils on a stove.', duration = 5 }\n"
      "print('result', r.name, r.request_id)\n";
  auto first = fx.script("kettle.lua", lua);
  INFO(first.describe());
  REQUIRE(first.exit_code == 0);
  krt::fs::remove(fx.out("kettle") / "kettle.mp4");
  fx.fake.reset();  // the fake forgets its jobs: their videos are gone from its CDN (404)

  auto second = fx.script("kettle.lua", lua);
  INFO(second.describe());
  CHECK(second.exit_code == 3);
  CHECK(second.err.find("download answered HTTP 404") != std::string::npos);
  CHECK(second.err.find("(HTTP 404)") == std::string::npos);  // said once
  CHECK(second.err.find("fal's CDN no longer serves this video; run with --fresh") != std::string::npos);
  CHECK(fx.fake.stats()["requests"]["submit"] == 0);  // the stored result was tried, nothing paid

  auto fresh = fx.script("kettle.lua", lua, {"--fresh"});
  INFO(fresh.describe());
  CHECK(fresh.exit_code == 0);
  CHECK(fx.fake.stats()["jobs_created"] == 1);
  CHECK(krt::fs::exists(fx.out("kettle") / "kettle.mp4"));
}
