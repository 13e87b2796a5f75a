// Generations that fail end with exit 3 and say why: fal's field errors as `path: message`
// lines, the script's file:line, the request id; nothing is left at the destination.
#include "e2e_common.h"

using namespace e2e;

namespace {

void check_no_video(const Fixture& fx, const std::string& stem) {
  auto files = fx.outputs(stem);
  CHECK(mp4s(files).empty());
  CHECK_FALSE(any_part_file(files));
}

}  // namespace

TEST_CASE("a 422 from fal: exit 3 with path: message lines - the Lua line and the request id", "[e2e][errors]") {
  Fixture fx;
  auto r = fx.script("bad422.lua",
                     "local kling = require 'kling'\n"
                     "\n"
                     "kling.generate{ name = 'bad', endpoint = 'v3/pro/t2v', duration = 5,\n"
                     "  prompt = 'A cat on a fence [[fail:422]]' }\n"
                     "print('not reached')\n");
  INFO(r.describe());
  CHECK(r.exit_code == 3);
  CHECK(r.out.find("not reached") == std::string::npos);

  json jobs = fx.fake.jobs();
  REQUIRE(jobs.size() == 1);
  CHECK(jobs[0]["result_code"] == 422);
  const std::string rid = jobs[0]["request_id"];
  // fal's detail [{loc:["body","prompt"], msg:"Forced validation failure ..."}] -> "prompt: <msg>"
  auto lines = krt::lines_with(r.err, "prompt: Forced validation failure");
  CHECK(!lines.empty());
  CHECK(r.err.find("bad422.lua:3") != std::string::npos);  // the line of the kling.generate call
  CHECK(r.err.find(rid) != std::string::npos);
  CHECK(r.err.find("422") != std::string::npos);
  check_no_video(fx, "bad422");
}

TEST_CASE("a script can tell why a job failed - job:error() and kling.jobs() give the kind", "[e2e][errors]") {
  Fixture fx;
  auto r = fx.script("why.lua",
                     "local kling = require 'kling'\n"
                     "local bad = kling.submit{ name = 'bad', duration = 5, prompt = 'A cat on a fence [[fail:422]]' }\n"
                     "print('running', bad:error() == nil)\n"
                     "local ok = pcall(bad.wait, bad)\n"
                     "local e = bad:error()\n"
                     "print('bad', ok, e.kind, e.request_id ~= nil, e.final_on_fal, e.lines[1])\n"
                     "local slow = kling.submit{ name = 'slow', duration = 5, prompt = 'A dog in the rain [[run_ms=99999999]]' }\n"
                     "slow:cancel()\n"
                     "pcall(slow.wait, slow)\n"
                     "print('slow', slow:error().kind)\n"
                     "for _, j in ipairs(kling.jobs()) do print('job', j.name, j.error and j.error.kind) end\n",
                     {}, {}, 120);
  INFO(r.describe());
  CHECK(r.exit_code == 3);  // a generation failed, though the script caught it and went on
  CHECK(r.out.find("running\ttrue") != std::string::npos);
  CHECK(r.out.find("bad\tfalse\trejected\ttrue\ttrue\tprompt: Forced validation failure") != std::string::npos);
  CHECK(r.out.find("slow\tcancelled") != std::string::npos);
  CHECK(r.out.find("job\tbad\trejected") != std::string::npos);
  CHECK(r.out.find("job\tslow\tcancelled") != std::string::npos);
  CHECK(fx.fake.stats()["jobs_created"] == 1);  // 'slow' was cancelled before it started: never sent
}

TEST_CASE("priority and start_timeout reach fal as its headers - a job that never starts ends as a timeout",
          "[e2e][errors]") {
  Fixture fx({"--queue-ms", "3000", "--run-ms", "100", "--key", "test:secret"});  // each job waits 3 s in the queue
  auto r = fx.script("queued.lua",
                     "local kling = require 'kling'\n"
                     "local j = kling.submit{ name = 'patient', duration = 5, prompt = 'A snail crosses a leaf.',\n"
                     "  priority = 'low', start_timeout = 1.5 }\n"
                     "local ok = pcall(j.wait, j)\n"
                     "print('kind', j:error().kind, j:error().final_on_fal)\n");
  INFO(r.describe());
  CHECK(r.exit_code == 3);
  CHECK(r.out.find("kind\ttimeout\ttrue") != std::string::npos);  // fal ended it: a re-run submits anew
  CHECK(r.err.find("fal did not start it within its start_timeout") != std::string::npos);
  json jobs = fx.fake.jobs();
  REQUIRE(jobs.size() == 1);
  CHECK(jobs[0]["headers"]["x-fal-queue-priority"] == "low");
  CHECK(jobs[0]["headers"]["x-fal-request-timeout"] == "1.5");
  CHECK(jobs[0]["state"] == "COMPLETED");
  CHECK(jobs[0]["started_ms"].is_null());  // it never ran
}

TEST_CASE("a shot prompt over 512 characters is refused before anything is sent", "[e2e][errors]") {
  Fixture fx;
  const std::string long_prompt(513, 'a');
  auto r = fx.script("longshot.lua",
                     "local kling = require 'kling'\n"
                     "kling.generate{ name = 'long', endpoint = 'v3/pro/t2v',\n"
                     "  multi_prompt = { { prompt = '" + long_prompt + "', duration = 5 },\n"
                     "                   { prompt = 'A second, short shot.', duration = 5 } } }\n");
  INFO(r.describe());
  CHECK(r.exit_code == 1);  // validation error, not a generation failure
  CHECK(r.err.find("multi_prompt[0].prompt") != std::string::npos);
  CHECK(r.err.find("longshot.lua:2") != std::string::npos);
  json stats = fx.fake.stats();
  CHECK(stats["jobs_created"] == 0);
  CHECK(stats["requests_total"] == 0);
}

TEST_CASE("fail:runner marker: fal's error is reported and not success", "[e2e][errors]") {
  Fixture fx;
  auto r = fx.script("runner.lua",
                     "local kling = require 'kling'\n"
                     "local r = kling.generate{ name = 'crash', prompt = 'A boat [[fail:runner]]', duration = 5 }\n"
                     "print('video at', r.video.path)\n");
  INFO(r.describe());
  CHECK(r.exit_code == 3);
  CHECK(r.out.find("video at") == std::string::npos);
  CHECK(r.err.find("Runner disconnected") != std::string::npos);
  json jobs = fx.fake.jobs();
  REQUIRE(jobs.size() == 1);
  CHECK(r.err.find(jobs[0]["request_id"].get<std::string>()) != std::string::npos);
  CHECK(fx.fake.stats()["downloads"] == 0);
  check_no_video(fx, "runner");
}

TEST_CASE("spec timeout: the job is cancelled on fal and the run fails with a timeout", "[e2e][errors]") {
  Fixture fx;
  auto r = fx.script("slow.lua",
                     "local kling = require 'kling'\n"
                     "kling.generate{ name = 'slow', prompt = 'A glacier melts [[run_ms=5000]]', duration = 5,\n"
                     "  timeout = 1 }\n");
  INFO(r.describe());
  CHECK(r.exit_code == 3);
  CHECK(r.seconds < 4.5);  // gave up at ~1 s, did not wait for the 5 s job
  CHECK(r.err.find("timeout") != std::string::npos);
  json stats = fx.fake.stats();
  CHECK(stats["requests"]["cancel"] >= 1);
  CHECK(stats["cancels"] == 1);
  json jobs = fx.fake.jobs();
  REQUIRE(jobs.size() == 1);
  CHECK(jobs[0]["cancelled"] == true);
  CHECK(jobs[0]["error_type"] == "client_cancelled");
  check_no_video(fx, "slow");
}

TEST_CASE("a wrong key: exit 3 - the message is about the key - the secret is not printed", "[e2e][errors][auth]") {
  Fixture fx;  // the fake requires test:secret
  auto r = fx.script("wrongkey.lua",
                     "local kling = require 'kling'\n"
                     "kling.generate{ name = 'k', prompt = 'A kite over a beach.', duration = 5 }\n",
                     {}, {{"FAL_KEY", "test:Zq9wrongSecretXy"}});
  INFO(r.describe());
  CHECK(r.exit_code == 3);
  CHECK(r.err.find("FAL_KEY") != std::string::npos);
  CHECK(r.err.find("key") != std::string::npos);
  CHECK(r.err.find("Zq9wrongSecretXy") == std::string::npos);
  json stats = fx.fake.stats();
  CHECK(stats["auth_failed"] >= 1);
  CHECK(stats["requests"]["submit"] == 1);  // a 401 is final: not retried
  CHECK(stats["jobs_created"] == 0);
  check_no_video(fx, "wrongkey");
}
