#pragma once
// Test helpers for the "money-safe runs" tests (tests/unit/e2e/money_*.cpp): waiting while a
// child's output keeps flowing, JSON-lines parsing, fake-fal bookkeeping (jobs per prompt,
// clearing faults, waiting for a state), file hashing. Header-only; needs fakefal.h (libcurl,
// nlohmann/json) and OpenSSL's libcrypto.


#include <chrono>
#include <fstream>
#include <functional>
#include <map>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "fakefal.h"
#include "files.h"
#include "process.h"
#include "sha256.h"

namespace krt {

// Lets `seconds` pass while the child's stdout/stderr keep being read (so it never blocks on a
// full pipe). Returns early only if the child closed both outputs.
inline void pump_for(Process& p, double seconds) {
  if (seconds <= 0) return;
  p.wait_output("\x01\x02never-printed\x03", seconds);
}

// Pumps the child's output until `pred()` holds (true) or `seconds` pass (false); `pred` is
// checked every `every_ms`.
inline bool pump_until(Process& p, const std::function<bool()>& pred, double seconds, int every_ms = 20) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                                          std::chrono::duration<double>(seconds));
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    pump_for(p, every_ms / 1000.0);
  }
  return pred();
}

// Waits (without a child) until `pred()` holds or `seconds` pass.
inline bool wait_until(const std::function<bool()>& pred, double seconds, int every_ms = 20) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                                          std::chrono::duration<double>(seconds));
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(every_ms));
  }
  return pred();
}

// Every line of `text` that parses as a JSON object (others, e.g. a script's print(), skipped).
inline std::vector<nlohmann::json> json_lines(const std::string& text) {
  std::vector<nlohmann::json> out;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    auto j = nlohmann::json::parse(text.substr(start, end - start), nullptr, false);
    if (j.is_object()) out.push_back(std::move(j));
    start = end + 1;
  }
  return out;
}

// Splits `text` into lines (without the newline; a final empty line is dropped).
inline std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// Jobs the fake created, grouped by their input's prompt.
inline std::map<std::string, std::vector<nlohmann::json>> fake_jobs_by_prompt(const FakeFal& fake) {
  std::map<std::string, std::vector<nlohmann::json>> out;
  for (auto& j : fake.jobs()) {
    std::string prompt = j.contains("input") && j["input"].is_object() ? j["input"].value("prompt", std::string()) : "";
    out[prompt].push_back(j);
  }
  return out;
}

// DELETE /_fake/faults: drops every pending fault.
inline void clear_fake_faults(const FakeFal& fake) {
  HttpReply r = http_call("DELETE", fake.base() + "/_fake/faults");
  if (r.status != 200) throw std::runtime_error("DELETE /_fake/faults -> " + std::to_string(r.status) + " " + r.body);
}

// How many of the fake's jobs are IN_PROGRESS / IN_QUEUE right now.
inline int fake_jobs_in(const FakeFal& fake, const std::string& state) {
  auto s = fake.stats();
  return s["jobs_by_state"].value(state, 0);
}


// Every file under `root` whose name ends with `suffix` (relative paths).
inline std::vector<std::string> files_ending(const fs::path& root, const std::string& suffix) {
  std::vector<std::string> out;
  for (auto& f : list_files(root))
    if (f.size() >= suffix.size() && f.compare(f.size() - suffix.size(), suffix.size(), suffix) == 0) out.push_back(f);
  return out;
}

// True when `line` starts with an HH:MM:SS timestamp followed by a space.
inline bool starts_with_clock(const std::string& line) {
  static const std::regex re("^[0-2][0-9]:[0-5][0-9]:[0-6][0-9] ");
  return std::regex_search(line, re);
}

}  // namespace krt
