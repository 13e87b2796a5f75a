#pragma once
// Shared by the end-to-end tests: a temp working directory plus a fake fal server, and the
// bytes the fake serves for a job's video (so a downloaded file can be checked byte for byte).

#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "fakefal.h"
#include "files.h"
#include "klingrun.h"
#include "process.h"
#include "sha256.h"

namespace e2e {

using nlohmann::json;

using krt::sha256_hex;  // sha256.h
using krt::sha256_raw;

// fakefal README: block i = sha256("<request_id>:<i>"), concatenated, cut to `size` bytes.
inline std::string fake_video(const std::string& request_id, std::size_t size) {
  std::string out;
  for (std::size_t i = 0; out.size() < size; ++i) out += sha256_raw(request_id + ":" + std::to_string(i));
  out.resize(size);
  return out;
}

// Fast defaults: every job spends 50 ms queued and 100 ms running.
inline std::vector<std::string> fast_fake(std::vector<std::string> extra = {}) {
  std::vector<std::string> a = {"--queue-ms", "50", "--run-ms", "100", "--key", "test:secret"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

// A temp dir as klingrun's cwd and a fake of its own.
struct Fixture {
  krt::TempDir dir{"krt_e2e"};
  krt::FakeFal fake;
  explicit Fixture(std::vector<std::string> fake_args = fast_fake()) : fake(std::move(fake_args)) {}

  // Writes `lua` to <dir>/<file> and runs `klingrun [opts] <file>` with the fake's environment.
  krt::ProcResult script(const std::string& file, const std::string& lua, std::vector<std::string> opts = {},
                         krt::Env env = {}, double timeout_s = 60) {
    krt::write_file(dir / file, lua);
    opts.push_back(file);
    krt::Env e = fake.env();
    for (auto& [k, v] : env) e[k] = v;
    return krt::run_klingrun(dir.path(), opts, e, timeout_s);
  }
  krt::fs::path out(const std::string& script_stem) const { return dir / ("out/" + script_stem); }
  // Every file under out/<stem> (relative names).
  std::vector<std::string> outputs(const std::string& script_stem) const { return krt::list_files(out(script_stem)); }
};

// `klingrun status --json` in the fixture's directory: the state store's rows.
inline json status_json(Fixture& fx) {
  auto r = krt::run_klingrun(fx.dir.path(), {"status", "--json"}, fx.fake.env());
  INFO(r.describe());
  REQUIRE(r.exit_code == 0);
  json rows = json::parse(r.out, nullptr, false);
  REQUIRE(rows.is_array());
  return rows;
}

// The row of the job called `name`, or null.
inline json row_named(const json& rows, const std::string& name) {
  for (auto& r : rows)
    if (r["name"] == name) return r;
  return json();
}

inline bool any_part_file(const std::vector<std::string>& files) {
  for (auto& f : files)
    if (f.size() >= 5 && f.compare(f.size() - 5, 5, ".part") == 0) return true;
  return false;
}
inline std::vector<std::string> mp4s(const std::vector<std::string>& files) {
  std::vector<std::string> out;
  for (auto& f : files)
    if (f.size() >= 4 && f.compare(f.size() - 4, 4, ".mp4") == 0) out.push_back(f);
  return out;
}

}  // namespace e2e
