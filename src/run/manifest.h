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
// directory) under an flock on the directory, re-reading the file first (unless it is still the
// one this writer wrote) so that several processes running the same script do not drop each
// other's entries.
//
// post() hands rows to a background thread that does the same, so a run's loop thread never
// waits on the disk or on rewriting a manifest of thousands of jobs. Rows whose write failed
// stay queued and go out with the next write.
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "run/state_store.h"

namespace kr::run {

class ManifestWriter {
 public:
  // `script` names the script at the top level; empty: taken from the first job written.
  explicit ManifestWriter(std::filesystem::path path, std::string script = "");
  ~ManifestWriter();  // writes what is still queued (errors ignored: the store is the record)
  ManifestWriter(const ManifestWriter&) = delete;
  ManifestWriter& operator=(const ManifestWriter&) = delete;

  // Upserts the job's entry and rewrites the file atomically. Throws std::runtime_error naming
  // the path when the file cannot be written.
  void update(const JobRecord& job);
  // Several jobs in one rewrite (the runner batches what changed since its last write).
  void update(const std::vector<JobRecord>& jobs);

  // Queues rows for the background writer and returns at once; a row replaces a queued row of
  // the same key.
  void post(std::vector<JobRecord> jobs);
  // Waits until everything posted so far has been written, trying once more if the last write
  // failed. Returns that write's error, or "" when all is on disk.
  std::string drain();

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
  // What the file on disk looked like after this writer last read or wrote it.
  struct FileId {
    std::uint64_t dev = 0, ino = 0, size = 0;
    std::int64_t mtime_ns = 0, ctime_ns = 0;
    bool operator==(const FileId&) const = default;
  };
  static std::optional<FileId> file_id(const std::filesystem::path& p);
  nlohmann::ordered_json doc_;
  std::optional<FileId> doc_file_;
  mutable std::mutex mu_;

  // The background writer.
  void run_writer();
  std::mutex qmu_;
  std::condition_variable wake_, idle_;
  std::vector<JobRecord> queued_;
  std::unordered_map<std::string, std::size_t> queued_index_;  // key → position in queued_
  std::uint64_t posted_ = 0;        // post() calls so far
  std::uint64_t written_ = 0;       // posted_ as of the last batch written
  std::uint64_t started_ = 0;       // writes begun
  std::uint64_t failed_start_ = 0;  // started_ of the last write that failed
  bool writing_ = false, retry_ = false, stop_ = false;
  std::string error_;  // of the last write: "" when it succeeded
  std::thread writer_;
};

}  // namespace kr::run
