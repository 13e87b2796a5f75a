#pragma once
// Test helper: runs the real klingrun binary (KR_KLINGRUN_BIN) as a child in a working
// directory, with an environment (e.g. FakeFal::env()). Header-only.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "files.h"
#include "process.h"

namespace krt {

using Env = std::map<std::string, std::optional<std::string>>;

inline ProcOptions klingrun_options(const fs::path& cwd, const std::vector<std::string>& args, Env env = {},
                                    double timeout_s = 60) {
  ProcOptions o;
  o.args = {KR_KLINGRUN_BIN};
  o.args.insert(o.args.end(), args.begin(), args.end());
  o.env = std::move(env);
  o.cwd = cwd.string();
  o.timeout_s = timeout_s;
  return o;
}

inline ProcResult run_klingrun(const fs::path& cwd, const std::vector<std::string>& args, Env env = {},
                               double timeout_s = 60) {
  return run_process(klingrun_options(cwd, args, std::move(env), timeout_s));
}

// Lines of `text` that contain `needle`.
inline std::vector<std::string> lines_with(const std::string& text, const std::string& needle) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    if (line.find(needle) != std::string::npos) out.push_back(line);
    start = end + 1;
  }
  return out;
}

}  // namespace krt
