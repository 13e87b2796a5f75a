// Every example script runs against the fake fal server: exit 0, one file per job at
// out/<script>/<job name>.mp4, byte-identical to the video the fake served for that job.
#include <algorithm>
#include <map>
#include <set>

#include "e2e_common.h"

using namespace e2e;

namespace {

std::vector<krt::fs::path> example_scripts() {
  std::vector<krt::fs::path> out;
  for (auto& e : krt::fs::directory_iterator(krt::fs::path(KR_SOURCE_DIR) / "scripts/examples"))
    if (e.path().extension() == ".lua") out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

// The job names the script makes, from `klingrun plan --json` (offline, nothing sent).
std::vector<std::string> planned_jobs(const krt::fs::path& script) {
  krt::TempDir d("krt_plan");
  auto r = krt::run_klingrun(d.path(), {"plan", script.string(), "--json"}, {{"FAL_KEY", std::nullopt}});
  INFO(r.describe());
  REQUIRE(r.exit_code == 0);
  json plan = json::parse(r.out);
  std::vector<std::string> names;
  for (auto& j : plan.at("jobs")) names.push_back(j.at("name").get<std::string>());
  return names;
}

}  // namespace

TEST_CASE("every example script runs against the fake fal and lands its videos", "[e2e][examples]") {
  const std::size_t kVideoBytes = 70001;  // not the default and not a multiple of the 32-byte block
  auto scripts = example_scripts();
  REQUIRE(scripts.size() >= 5);
  for (const auto& script : scripts) {
    const std::string stem = script.stem().string();
    DYNAMIC_SECTION(stem) {
      auto names = planned_jobs(script);
      REQUIRE(!names.empty());

      Fixture fx(fast_fake({"--video-bytes", std::to_string(kVideoBytes)}));
      auto r = krt::run_klingrun(fx.dir.path(), {script.string()}, fx.fake.env());
      INFO(r.describe());
      REQUIRE(r.exit_code == 0);

      json stats = fx.fake.stats();
      json jobs = fx.fake.jobs();
      INFO("stats: " << stats.dump());
      CHECK(stats["jobs_created"] == names.size());
      CHECK(jobs.size() == names.size());
      CHECK(stats["downloads"] == names.size());
      CHECK(stats["download_bytes"] == names.size() * kVideoBytes);
      CHECK(stats["auth_failed"] == 0);
      CHECK(stats["auth_missing"] == 0);

      auto files = fx.outputs(stem);
      CHECK_FALSE(any_part_file(files));
      std::set<std::string> expected;
      for (auto& n : names) expected.insert(n + ".mp4");
      auto got = mp4s(files);
      CHECK(std::set<std::string>(got.begin(), got.end()) == expected);

      // Each file is exactly one job's video (matched by content), and no two files share a job.
      std::map<std::string, std::string> video_by_rid;
      for (auto& j : jobs) {
        CHECK(j["state"] == "COMPLETED");
        CHECK(j["error"].is_null());
        CHECK(j["video_bytes"] == kVideoBytes);
        video_by_rid[j["request_id"]] = fake_video(j["request_id"], j["video_bytes"]);
      }
      std::set<std::string> matched;
      for (auto& n : names) {
        auto path = fx.out(stem) / (n + ".mp4");
        if (!krt::fs::exists(path)) continue;  // already reported above
        std::string bytes = krt::read_file(path);
        CHECK(bytes.size() == kVideoBytes);
        std::string rid;
        for (auto& [id, video] : video_by_rid)
          if (video == bytes) rid = id;
        INFO("file " << path);
        CHECK_FALSE(rid.empty());
        CHECK(matched.insert(rid).second);
      }
    }
  }
}

TEST_CASE("the result table: video, request id, cost and timings in order", "[e2e][examples]") {
  Fixture fx;
  auto r = fx.script("table.lua",
                     "local r = require('kling').generate{ name = 'shot', duration = 5,\n"
                     "  prompt = 'A heron lifts off a pond [[run_ms=300]]' }\n"
                     "local t = r.timings\n"
                     "print('ids', r.request_id, r.video.url, r.video.path, r.video.file_size, r.cost_usd)\n"
                     "print('order', 0 < t.submitted, t.submitted <= t.started, t.started < t.completed,\n"
                     "      t.completed <= t.done, t.completed - t.started >= 0.25)\n");
  INFO(r.describe());
  REQUIRE(r.exit_code == 0);
  json job = fx.fake.jobs()[0];
  const std::string rid = job["request_id"];
  CHECK(r.out.find("ids\t" + rid + "\t" + fx.fake.base() + "/cdn/videos/" + rid + ".mp4\tout/table/shot.mp4\t65536\t0.84") !=
        std::string::npos);
  // Seconds since the run started: submitted, started (IN_PROGRESS), completed, done (on disk).
  CHECK(r.out.find("order\ttrue\ttrue\ttrue\ttrue\ttrue") != std::string::npos);
}
