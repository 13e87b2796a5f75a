// The helpers in tests/support work as documented (other tests rely on them).
#include <csignal>

#include "e2e_common.h"

using namespace e2e;

TEST_CASE("process.h: stdin in - large stdout and stderr out together - exit code", "[e2e][support]") {
  std::string input(300000, 'x');  // more than a pipe holds: needs the poll loop
  krt::ProcOptions o;
  o.args = {"sh", "-c", "cat; head -c 500000 /dev/zero | tr '\\0' e >&2; exit 7"};
  o.stdin_data = input;
  auto r = krt::run_process(o);
  CHECK(r.exit_code == 7);
  CHECK_FALSE(r.timed_out);
  CHECK(r.out == input);
  CHECK(r.err == std::string(500000, 'e'));
}

TEST_CASE("process.h: env overrides and removals - cwd", "[e2e][support]") {
  krt::TempDir d;
  setenv("KRT_SUPPORT_REMOVE_ME", "present", 1);
  krt::ProcOptions o;
  o.args = {"sh", "-c", "pwd; echo \"${KRT_SUPPORT_SET}|${KRT_SUPPORT_REMOVE_ME-unset}\""};
  o.env = {{"KRT_SUPPORT_SET", "hello"}, {"KRT_SUPPORT_REMOVE_ME", std::nullopt}};
  o.cwd = d.str();
  auto r = krt::run_process(o);
  unsetenv("KRT_SUPPORT_REMOVE_ME");
  CHECK(r.exit_code == 0);
  CHECK(r.out == krt::fs::canonical(d.path()).string() + "\nhello|unset\n");
}

TEST_CASE("process.h: timeout kills - signals reach the child", "[e2e][support]") {
  krt::ProcOptions o;
  o.args = {"sleep", "30"};
  o.timeout_s = 0.3;
  auto r = krt::run_process(o);
  CHECK(r.timed_out);
  CHECK(r.term_signal == SIGKILL);
  CHECK(r.seconds < 5);

  o.args = {"sh", "-c", "trap 'echo got-term; exit 42' TERM; echo ready; while :; do sleep 0.05; done"};
  o.timeout_s = 10;
  auto s = krt::run_and_signal(o, SIGTERM, "ready", 5);
  CHECK(s.exit_code == 42);
  CHECK(s.out == "ready\ngot-term\n");
}

TEST_CASE("files.h: make_png writes a PNG klingrun accepts as a 512x512 start frame", "[e2e][support]") {
  std::string png = krt::make_png(512, 512);
  CHECK(png.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0);
  CHECK(png.compare(12, 4, "IHDR") == 0);
  krt::TempDir d;
  krt::write_file(d / "f.png", png);
  // klingrun's own media checks (type, size, dimensions) run on the local file in `check`.
  krt::ProcOptions o = krt::klingrun_options(d.path(), {"check", "--endpoint", "v3/pro/i2v", "-"}, {{"FAL_KEY", std::nullopt}});
  o.stdin_data = R"({"prompt":"a fox","duration":"5","start_image_url":"f.png"})";
  auto ok = krt::run_process(o);
  INFO(ok.describe());
  CHECK(ok.exit_code == 0);
  // A picture below fal's minimum size is refused by the same check: the dimensions were read.
  krt::write_file(d / "tiny.png", krt::make_png(100, 100));
  o.stdin_data = R"({"prompt":"a fox","duration":"5","start_image_url":"tiny.png"})";
  auto small = krt::run_process(o);
  INFO(small.describe());
  CHECK(small.exit_code == 1);
  CHECK(small.err.find("start_image_url: \"tiny.png\" is 100×100") != std::string::npos);
}
