// What goes on the wire: klingrun's User-Agent and the key on fal's API hosts, and never the
// key to the CDN or to a signed upload URL. Every request is seen through a recording proxy
// in front of the fake (the fake itself cannot tell whether a CDN GET carried a key).
#include <csignal>

#include "e2e_common.h"
#include "recording_proxy.h"

using namespace e2e;

TEST_CASE("User-Agent and Authorization reach fal's API and the key never goes to the CDN or uploads", "[e2e][wire]") {
  Fixture fx;  // the fake requires Key test:secret
  krt::RecordingProxy proxy(fx.fake);
  krt::write_file(fx.dir / "start.png", krt::make_png(400, 400, 3));
  krt::write_file(fx.dir / "wire.lua",
                  "local kling = require 'kling'\n"
                  "local a = kling.submit{ name = 't2v', prompt = 'A red kite over dunes.', duration = 5 }\n"
                  "local b = kling.submit{ name = 'i2v', endpoint = 'v3/pro/i2v', start_image_url = 'start.png',\n"
                  "  prompt = 'The kite dips and climbs.', duration = 5 }\n"
                  "kling.wait_all{ a, b }\n");
  auto r = krt::run_klingrun(fx.dir.path(), {"wire.lua"}, proxy.env("test:secret"));
  INFO(r.describe());
  REQUIRE(r.exit_code == 0);
  CHECK(mp4s(fx.outputs("wire")) == std::vector<std::string>{"i2v.mp4", "t2v.mp4"});

  // The fake's own view: klingrun's User-Agent on the submits, and the key on every API call.
  json jobs = fx.fake.jobs();
  REQUIRE(jobs.size() == 2);
  for (auto& j : jobs) CHECK(j["headers"]["user-agent"].get<std::string>().rfind("klingrun/", 0) == 0);
  json stats = fx.fake.stats();
  CHECK(stats["auth_missing"] == 0);
  CHECK(stats["auth_failed"] == 0);

  // The proxy's view: every request, with its headers.
  json reqs = proxy.requests();
  INFO("requests: " << reqs.dump(1));
  int api = 0, cdn = 0, upload = 0;
  for (auto& q : reqs) {
    const std::string path = q["path"];
    INFO(q["method"].get<std::string>() << " " << path);
    CHECK(q["user_agent"].is_string());
    if (q["user_agent"].is_string()) CHECK(q["user_agent"].get<std::string>().rfind("klingrun/", 0) == 0);
    if (path.rfind("/queue/", 0) == 0 || path.rfind("/rest/", 0) == 0) {
      ++api;
      CHECK(q["authorization"] == "Key test:secret");
    } else if (path.rfind("/cdn/", 0) == 0) {
      ++cdn;
      CHECK(q["authorization"].is_null());
    } else if (path.rfind("/upload/", 0) == 0) {
      ++upload;
      CHECK(q["authorization"].is_null());
    } else {
      FAIL("unexpected request " << path);
    }
  }
  CHECK(api >= 2 * 3 + 1);  // per job submit, stream, result; plus the upload initiate
  CHECK(cdn == 2);          // one download per job, nothing else
  CHECK(upload == 1);
}

TEST_CASE("SIGINT with --cancel-on-interrupt cancels the job on fal and exits 130", "[e2e][signal]") {
  Fixture fx;
  krt::write_file(fx.dir / "long.lua",
                  "local kling = require 'kling'\n"
                  "kling.generate{ name = 'long', prompt = 'A very long take [[run_ms=20000]]', duration = 5 }\n");
  auto r = krt::run_and_signal(krt::klingrun_options(fx.dir.path(), {"--cancel-on-interrupt", "long.lua"}, fx.fake.env(), 30),
                               SIGINT, "running", 10);
  INFO(r.describe());
  CHECK(r.exit_code == 130);
  CHECK(r.seconds < 15);
  json stats = fx.fake.stats();
  CHECK(stats["cancels"] == 1);
  json jobs = fx.fake.jobs();
  REQUIRE(jobs.size() == 1);
  CHECK(jobs[0]["cancelled"] == true);
  CHECK(mp4s(fx.outputs("long")).empty());
}
