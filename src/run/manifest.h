#pragma once
// ManifestWriter: out/<script>/manifest.json, a human-readable record of a script's jobs.
//
// {
//   "script": "intro",
//   "updated_at": "2025-01-31T12:00:00.000Z",
//   "totals": {"jobs": 3, "done": 2, "failed": 0, "estimated_usd": 1.4},
//   "jobs": [ {"name", "take", "key", "generation", "endpoint", "input", "request_id", "state",
//              "cost_usd", "billable_units", "output", "sha256", "size", "files": [...],
//              "timings": {"created", "submitted", "completed", "done"}, "error"}, ... ]
// }
//
// Keys are written in the order shown. Jobs stay in first-seen order; an entry is updated in place. Its identity is the job key, or,
// for a named job, (name, take): editing a named shot's prompt replaces its entry instead of
// adding a stale one. Output paths inside the manifest's directory are written relative to it.
//
// Every update() rewrites the file atomically (manifest.json.tmp, fsync, rename, fsync of the
// directory) under an flock on the directory, re-reading the file first so that several
// processes running the same script do not drop each other's entries.
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "run/state_store.h"

namespace kr::run {

class ManifestWriter {
 public:
  // `script` names the script at the top level; empty: taken from the first job written.
  explicit ManifestWriter(std::filesystem::path path, std::string script = "");

  // Upserts the job's entry and rewrites the file atomically. Throws std::runtime_error naming
  // the path when the file cannot be written.
  void update(const JobRecord& job);
  // Several jobs in one rewrite (the runner batches what changed since its last write).
  void update(const std::vector<JobRecord>& jobs);

  const std::filesystem::path& path() const { return path_; }
  // The document as last written (or read) by this writer.
  nlohmann::ordered_json document() const;

  // One manifest entry (paths made relative to base_dir when inside it).
  static nlohmann::ordered_json entry_for(const JobRecord& job, const std::filesystem::path& base_dir);
  // ms since the epoch → "YYYY-MM-DDTHH:MM:SS.mmmZ".
  static std::string iso8601_utc(std::int64_t ms);

 private:
  std::filesystem::path path_;
  std::string script_;
  nlohmann::ordered_json doc_;
  mutable std::mutex mu_;
};

}  // namespace kr::run
