#include "run/manifest.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

namespace kr::run {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace {

std::string errno_text() { return std::strerror(errno); }

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }

 private:
  int fd_;
};

json read_manifest(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return nullptr;
  std::stringstream ss;
  ss << in.rdbuf();
  json doc = json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object() || !doc.contains("jobs") || !doc["jobs"].is_array()) return nullptr;
  return doc;
}

void write_atomically(const fs::path& path, const std::string& text) {
  fs::path tmp = path;
  tmp += ".tmp";
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (fd.get() < 0)
    throw std::runtime_error("manifest: cannot create '" + tmp.string() + "': " + errno_text());
  const char* p = text.data();
  size_t left = text.size();
  while (left > 0) {
    ssize_t n = ::write(fd.get(), p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::string e = errno_text();
      ::unlink(tmp.c_str());
      throw std::runtime_error("manifest: cannot write '" + tmp.string() + "': " + e);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (::fsync(fd.get()) != 0) {
    std::string e = errno_text();
    ::unlink(tmp.c_str());
    throw std::runtime_error("manifest: cannot fsync '" + tmp.string() + "': " + e);
  }
  if (::close(fd.release()) != 0) {
    std::string e = errno_text();
    ::unlink(tmp.c_str());
    throw std::runtime_error("manifest: cannot close '" + tmp.string() + "': " + e);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string e = errno_text();
    ::unlink(tmp.c_str());
    throw std::runtime_error("manifest: cannot rename '" + tmp.string() + "' to '" + path.string() +
                             "': " + e);
  }
  // Make the rename itself durable.
  fs::path dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  Fd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd.get() >= 0) ::fsync(dfd.get());
}

json iso_or_null(const std::optional<std::int64_t>& ms) {
  return ms ? json(ManifestWriter::iso8601_utc(*ms)) : json(nullptr);
}

fs::path display_path(const fs::path& p, const fs::path& base_dir) {
  if (base_dir.empty()) return p;
  std::error_code ec;
  fs::path ap = p.is_absolute() ? p : fs::absolute(p, ec);
  fs::path ab = base_dir.is_absolute() ? base_dir : fs::absolute(base_dir, ec);
  if (ec) return p;
  fs::path rel = ap.lexically_normal().lexically_relative(ab.lexically_normal());
  if (rel.empty() || *rel.begin() == "..") return p;
  return rel;
}

// An entry is found by its job key or, for a named job, by (name, take).
std::string name_take(const std::string& name, int take) { return name + '\x1f' + std::to_string(take); }

const std::string* string_field(const json& e, const char* k) {
  auto it = e.find(k);
  return it != e.end() && it->is_string() ? it->get_ptr<const std::string*>() : nullptr;
}

double round_usd(double x) { return std::round(x * 1e6) / 1e6; }

}  // namespace

std::string ManifestWriter::iso8601_utc(std::int64_t ms) {
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  int millis = static_cast<int>(ms % 1000);
  if (millis < 0) {
    millis += 1000;
    secs -= 1;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
  return buf;
}

json ManifestWriter::entry_for(const JobRecord& job, const fs::path& base_dir) {
  json e = json::object();
  e["name"] = job.name;
  e["take"] = job.take;
  e["key"] = job.key;
  e["generation"] = job.generation;
  e["endpoint"] = job.endpoint;
  e["input"] = json(job.input);
  e["request_id"] = job.request_id.empty() ? json(nullptr) : json(job.request_id);
  e["state"] = std::string(to_string(job.state));
  e["cost_usd"] = job.cost_usd;
  e["billable_units"] = job.billable_units ? json(*job.billable_units) : json(nullptr);

  const FileRecord* primary = nullptr;
  for (const auto& f : job.files)
    if (f.role == "video") primary = &f;
  if (!primary && !job.files.empty()) primary = &job.files.front();
  e["output"] = primary ? json(display_path(primary->path, base_dir).generic_string()) : json(nullptr);
  e["sha256"] = primary ? json(primary->sha256) : json(nullptr);
  e["size"] = primary ? json(primary->size) : json(nullptr);
  json files = json::array();
  for (const auto& f : job.files)
    files.push_back({{"role", f.role},
                     {"path", display_path(f.path, base_dir).generic_string()},
                     {"sha256", f.sha256},
                     {"size", f.size}});
  e["files"] = std::move(files);
  e["timings"] = {{"created", iso_or_null(job.created_ms)},
                  {"submitted", iso_or_null(job.submitted_ms)},
                  {"completed", iso_or_null(job.completed_ms)},
                  {"done", iso_or_null(job.done_ms)}};
  e["error"] = job.error.empty() ? json(nullptr) : json(job.error);
  return e;
}

ManifestWriter::ManifestWriter(fs::path path, std::string script)
    : path_(std::move(path)), script_(std::move(script)) {
  doc_ = read_manifest(path_);
  if (doc_.is_null()) doc_ = {{"script", script_}, {"updated_at", nullptr}, {"totals", json::object()},
                              {"jobs", json::array()}};
}

json ManifestWriter::document() const {
  std::lock_guard lk(mu_);
  return doc_;
}

void ManifestWriter::update(const JobRecord& job) { update(std::vector<JobRecord>{job}); }

void ManifestWriter::update(const std::vector<JobRecord>& batch) {
  if (batch.empty()) return;
  std::lock_guard lk(mu_);
  fs::path dir = path_.parent_path().empty() ? fs::path(".") : path_.parent_path();
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    throw std::runtime_error("manifest: cannot create directory '" + dir.string() +
                             "': " + ec.message());

  // Serialise writers (threads use mu_, processes the directory lock) and merge with what is on
  // disk, which another process may have written since we last looked.
  Fd lock(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (lock.get() >= 0)
    while (::flock(lock.get(), LOCK_EX) != 0 && errno == EINTR) {
    }

  // The file is read back only when someone else has written it since this writer did.
  auto on_disk = file_id(path_);
  bool mine = on_disk && doc_file_ && *on_disk == *doc_file_;
  json doc = mine ? doc_ : read_manifest(path_);
  if (doc.is_null()) doc = doc_;
  json& jobs = doc["jobs"];

  // Index the entries once: a batch of b jobs into a manifest of n costs n + b, not n × b.
  std::unordered_map<std::string, std::size_t> by_key, by_name;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    if (auto* k = string_field(jobs[i], "key")) by_key.try_emplace(*k, i);
    if (auto* n = string_field(jobs[i], "name")) by_name.try_emplace(name_take(*n, jobs[i].value("take", 0)), i);
  }
  for (const JobRecord& job : batch) {
    std::size_t at = jobs.size();
    if (auto it = by_key.find(job.key); it != by_key.end()) at = it->second;
    if (!job.name.empty())
      if (auto it = by_name.find(name_take(job.name, job.take)); it != by_name.end()) at = std::min(at, it->second);
    if (at == jobs.size()) {
      jobs.push_back(nullptr);
    } else {  // the entry may change its key or name: its old ones no longer lead to it
      if (auto* k = string_field(jobs[at], "key"))
        if (auto it = by_key.find(*k); it != by_key.end() && it->second == at) by_key.erase(it);
      if (auto* n = string_field(jobs[at], "name"))
        if (auto it = by_name.find(name_take(*n, jobs[at].value("take", 0))); it != by_name.end() && it->second == at)
          by_name.erase(it);
    }
    jobs[at] = entry_for(job, dir);
    by_key[job.key] = at;
    if (!job.name.empty()) by_name[name_take(job.name, job.take)] = at;
  }

  if (script_.empty()) script_ = doc.value("script", std::string());
  if (script_.empty()) script_ = batch.front().script;

  int done = 0, failed = 0;
  double usd = 0;
  for (const auto& e : jobs) {
    std::string st = e.value("state", std::string());
    if (st == "done") ++done;
    if (st == "failed") ++failed;
    usd += e.value("cost_usd", 0.0);
  }
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  json out = json::object();  // fixed key order for readability
  out["script"] = script_;
  out["updated_at"] = iso8601_utc(now);
  out["totals"] = {{"jobs", jobs.size()}, {"done", done}, {"failed", failed},
                   {"estimated_usd", round_usd(usd)}};
  out["jobs"] = std::move(jobs);

  doc_file_.reset();
  write_atomically(path_, out.dump(2) + "\n");
  doc_file_ = file_id(path_);  // still under the lock: no other writer has touched it yet
  doc_ = std::move(out);
}

std::optional<ManifestWriter::FileId> ManifestWriter::file_id(const fs::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return std::nullopt;
  auto ns = [](const timespec& t) { return static_cast<std::int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec; };
  return FileId{static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino),
                static_cast<std::uint64_t>(st.st_size), ns(st.st_mtim), ns(st.st_ctim)};
}

ManifestWriter::~ManifestWriter() {
  {
    std::lock_guard lk(qmu_);
    stop_ = true;
  }
  wake_.notify_one();
  if (writer_.joinable()) writer_.join();
}

void ManifestWriter::post(std::vector<JobRecord> jobs) {
  if (jobs.empty()) return;
  std::lock_guard lk(qmu_);
  for (auto& j : jobs) {
    auto [it, fresh] = queued_index_.try_emplace(j.key, queued_.size());
    if (fresh) queued_.push_back(std::move(j));
    else queued_[it->second] = std::move(j);
  }
  ++posted_;
  if (!writer_.joinable()) writer_ = std::thread([this] { run_writer(); });
  wake_.notify_one();
}

std::string ManifestWriter::drain() {
  std::unique_lock lk(qmu_);
  if (!writer_.joinable()) return "";
  const std::uint64_t target = posted_, begun = started_;
  retry_ = true;
  wake_.notify_one();
  idle_.wait(lk, [&] { return written_ >= target || (!writing_ && failed_start_ > begun); });
  return written_ >= target ? "" : error_;
}

void ManifestWriter::run_writer() {
  std::unique_lock lk(qmu_);
  std::uint64_t failed_at = 0;  // posted_ when the last failed write took its rows (0: none failed)
  for (;;) {
    // After a failure, wait for new rows or a drain() before trying again: no busy retry loop.
    wake_.wait(lk, [&] { return stop_ || retry_ || (!queued_.empty() && posted_ != failed_at); });
    const bool last = stop_;
    retry_ = false;
    if (!queued_.empty()) {
      std::vector<JobRecord> batch = std::move(queued_);
      queued_.clear();
      queued_index_.clear();
      const std::uint64_t covers = posted_;
      const std::uint64_t attempt = ++started_;
      writing_ = true;
      lk.unlock();
      std::string err;
      try {
        update(batch);
      } catch (const std::exception& e) {
        err = e.what();
      }
      lk.lock();
      writing_ = false;
      error_ = err;
      if (err.empty()) {
        written_ = covers;
        failed_at = 0;
      } else {
        // Back in front of what was posted meanwhile; a newer row of the same key wins.
        std::vector<JobRecord> merged;
        std::unordered_map<std::string, std::size_t> index;
        for (auto& j : batch)
          if (!queued_index_.count(j.key)) index.emplace(j.key, merged.size()), merged.push_back(std::move(j));
        for (auto& j : queued_) index[j.key] = merged.size(), merged.push_back(std::move(j));
        queued_ = std::move(merged);
        queued_index_ = std::move(index);
        failed_start_ = attempt;
        failed_at = covers;
      }
    }
    idle_.notify_all();
    if (last) return;
  }
}

}  // namespace kr::run
