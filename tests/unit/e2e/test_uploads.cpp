// A local image used in several places (two jobs' start frames, an element's frontal and
// reference image) is uploaded once; the inputs sent to fal carry the fake CDN's URL.
#include "e2e_common.h"

using namespace e2e;

TEST_CASE("a local file is uploaded once per run and replaced by its CDN URL everywhere", "[e2e][uploads]") {
  Fixture fx;
  const std::string png = krt::make_png(512, 512, 7);
  krt::write_file(fx.dir / "frame.png", png);
  auto r = fx.script("frames.lua",
                     "local kling = require 'kling'\n"
                     "kling.element{ name = 'hero', frontal = 'frame.png', references = { 'frame.png' } }\n"
                     "local a = kling.submit{ name = 'with_hero', endpoint = 'v3/pro/i2v', start_image_url = 'frame.png',\n"
                     "  prompt = '@hero walks into the light.', duration = 5 }\n"
                     "local b = kling.submit{ name = 'plain', endpoint = 'v3/pro/i2v', start_image_url = 'frame.png',\n"
                     "  prompt = 'The camera drifts over the same scene.', duration = 5 }\n"
                     "kling.wait_all{ a, b }\n");
  INFO(r.describe());
  REQUIRE(r.exit_code == 0);

  json stats = fx.fake.stats();
  INFO("stats: " << stats.dump());
  CHECK(stats["uploads"] == 1);
  CHECK(stats["upload_bytes"] == png.size());
  CHECK(stats["requests"]["initiate"] == 1);
  CHECK(stats["requests"]["upload_put"] == 1);

  json uploads = fx.fake.uploads();
  REQUIRE(uploads.size() == 1);
  CHECK(uploads[0]["size"] == png.size());
  CHECK(uploads[0]["sha256"] == sha256_hex(png));
  CHECK(uploads[0]["content_type"] == "image/png");
  const std::string url = uploads[0]["url"];
  CHECK(url.rfind(fx.fake.base() + "/cdn/", 0) == 0);

  json jobs = fx.fake.jobs();
  REQUIRE(jobs.size() == 2);
  int with_elements = 0;
  for (auto& j : jobs) {
    INFO("input: " << j["input"].dump());
    CHECK(j["endpoint"] == "fal-ai/kling-video/v3/pro/image-to-video");
    CHECK(j["input"]["start_image_url"] == url);
    if (j["input"].contains("elements") && !j["input"]["elements"].is_null()) {
      ++with_elements;
      REQUIRE(j["input"]["elements"].size() == 1);
      CHECK(j["input"]["elements"][0]["frontal_image_url"] == url);
      CHECK(j["input"]["elements"][0]["reference_image_urls"] == json::array({url}));
      CHECK(j["input"]["prompt"] == "@Element1 walks into the light.");
    }
    // No local path survives anywhere in what was sent.
    const std::string sent = j["input"].dump();
    std::string stripped = sent;
    for (std::size_t at; (at = stripped.find(url)) != std::string::npos;) stripped.erase(at, url.size());
    CHECK(stripped.find("frame.png") == std::string::npos);
  }
  CHECK(with_elements == 1);
  CHECK(mp4s(fx.outputs("frames")) == std::vector<std::string>{"plain.mp4", "with_hero.mp4"});
}

TEST_CASE("the next job's files upload while the slots are busy - a freed slot is refilled by a submit",
          "[e2e][uploads]") {
  Fixture fx;
  krt::write_file(fx.dir / "first.png", krt::make_png(512, 512, 1));
  krt::write_file(fx.dir / "second.png", krt::make_png(512, 512, 2));
  const std::string lua =
      "local kling = require 'kling'\n"
      "local a = kling.submit{ name = 'first', endpoint = 'v3/pro/i2v', start_image_url = 'first.png',\n"
      "  prompt = 'A slow pan over the hills [[run_ms=1500]]', duration = 5 }\n"
      "local b = kling.submit{ name = 'second', endpoint = 'v3/pro/i2v', start_image_url = 'second.png',\n"
      "  prompt = 'The hills at night.', duration = 5 }\n"
      "kling.wait_all{ a, b }\n";
  auto r = fx.script("pair.lua", lua, {"--concurrency", "1"});
  INFO(r.describe());
  REQUIRE(r.exit_code == 0);
  json jobs = fx.fake.jobs(), uploads = fx.fake.uploads();
  REQUIRE(jobs.size() == 2);
  REQUIRE(uploads.size() == 2);
  CHECK(fx.fake.stats()["max_jobs_in_progress"] == 1);  // the slot is still one
  const double first_done = jobs[0]["completed_ms"];
  for (auto& u : uploads) {
    INFO(u.dump());
    CHECK(u["stored_ms"].get<double>() < first_done);  // both uploaded while 'first' ran
  }
  // A re-run reuses both: nothing is uploaded ahead for jobs that will not be submitted.
  const json before = fx.fake.stats();
  auto again = fx.script("pair.lua", lua, {"--concurrency", "1"});
  INFO(again.describe());
  REQUIRE(again.exit_code == 0);
  CHECK(fx.fake.stats()["requests_total"] == before["requests_total"]);
}
