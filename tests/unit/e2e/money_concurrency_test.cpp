// Money-safe runs, two processes: two klingrun runs of the same script started at the same
// moment on the same out/state directory share the work through the state store. Both succeed,
// both see every file, and fal creates each job exactly once.
#include <map>

#include "e2e_common.h"
#include "money.h"

using namespace e2e;

namespace {

constexpr int kJobs = 4;

std::string prompt_of(int i) { return "Twin run shot " + std::to_string(i) + ": rain on a tin roof [[run_ms=800]]"; }

std::string twin_script() {
  std::string s = "local kling = require 'kling'\nlocal jobs = {}\n";
  for (int i = 1; i <= kJobs; ++i)
    s += "jobs[" + std::to_string(i) + "] = kling.submit{ name = 'twin" + std::to_string(i) + "', duration = 5, prompt = '" +
         prompt_of(i) + "' }\n";
  s += "for _, r in ipairs(kling.wait_all(jobs)) do\n"
       "  print('result', r.name, r.request_id, r.video.path, r.video.file_size, r.video.sha256)\n"
       "end\n";
  return s;
}

}  // namespace

TEST_CASE("money concurrency: two processes on one state dir - each job created once - both see every file",
          "[e2e][money][concurrency]") {
  Fixture fx;
  krt::write_file(fx.dir / "twin.lua", twin_script());
  auto env = fx.fake.env();
  // Both start before either has done anything (spawned back to back, then both awaited).
  krt::Process a(krt::klingrun_options(fx.dir.path(), {"-j", "4", "twin.lua"}, env, 90));
  krt::Process b(krt::klingrun_options(fx.dir.path(), {"-j", "4", "twin.lua"}, env, 90));
  auto ra = a.wait(90);
  auto rb = b.wait(90);
  INFO("A: " << ra.describe());
  INFO("B: " << rb.describe());
  CHECK(ra.exit_code == 0);
  CHECK(rb.exit_code == 0);

  json stats = fx.fake.stats();
  INFO("stats: " << stats.dump());
  CHECK(stats["jobs_created"] == kJobs);
  CHECK(stats["requests"]["submit"] == kJobs);
  auto by_prompt = krt::fake_jobs_by_prompt(fx.fake);
  std::map<std::string, std::string> rid_of;  // job name -> the fake's request id
  for (int i = 1; i <= kJobs; ++i) {
    INFO("prompt " << prompt_of(i));
    REQUIRE(by_prompt[prompt_of(i)].size() == 1);
    rid_of["twin" + std::to_string(i)] = by_prompt[prompt_of(i)][0]["request_id"];
  }

  // Both processes report every job with the same request id, path, size and hash, and the
  // file on disk is that video.
  for (int i = 1; i <= kJobs; ++i) {
    const std::string name = "twin" + std::to_string(i);
    const std::string video = fake_video(rid_of[name], 65536);
    const std::string line = "result\t" + name + "\t" + rid_of[name] + "\tout/twin/" + name + ".mp4\t65536\t" + sha256_hex(video);
    CHECK(ra.out.find(line) != std::string::npos);
    CHECK(rb.out.find(line) != std::string::npos);
    auto file = fx.out("twin") / (name + ".mp4");
    REQUIRE(krt::fs::exists(file));
    CHECK(krt::read_file(file) == video);
  }
  CHECK(krt::files_ending(fx.out("twin"), ".part").empty());

  // The manifest both processes wrote lists every job once, done.
  json manifest = json::parse(krt::read_file(fx.out("twin") / "manifest.json"), nullptr, false);
  REQUIRE(manifest.is_object());
  REQUIRE(manifest["jobs"].size() == kJobs);
  for (auto& j : manifest["jobs"]) CHECK(j["state"] == "done");
}
