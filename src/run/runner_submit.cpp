// A request becomes a job: validated, priced, checked against the budget, named and queued.
#include "run/runner.h"

#include <cstdio>

#include "core/validate.h"
#include "net/sha256.h"

namespace kr::run {

const CoreContext& Runner::context() const { return ctx_; }

Prepared Runner::check(const Request& req) const { return prepare(req, context()); }

// A local file enters the job's identity by its content, not its path: an edited image is a
// new job, a moved one is not.
const json& Runner::canonical_media(const Endpoint& ep, const json& input, json& scratch) {
  bool local = false;
  for_each_media(ep, const_cast<json&>(input), [&](json& v, const std::string&, const std::string&) {
    local = local || !is_remote_url(v.get_ref<const std::string&>());
  });
  if (!local) return input;
  scratch = input;
  for_each_media(ep, scratch, [&](json& v, const std::string&, const std::string&) {
    const std::string path = local_media_path(v.get<std::string>());
    if (path.empty()) return;
    std::error_code ec;
    auto size = std::filesystem::file_size(path, ec);
    auto mtime = std::filesystem::last_write_time(path, ec);
    std::string stamp = path + "|" + std::to_string(size) + "|" + std::to_string(mtime.time_since_epoch().count());
    auto it = file_hashes_.find(stamp);
    if (it == file_hashes_.end()) it = file_hashes_.emplace(stamp, (ec ? std::nullopt : net::sha256_file(path)).value_or("unreadable:" + path)).first;
    v = "sha256:" + it->second;
  });
  return scratch;
}

Job& Runner::submit(Request req) {
  if (stopping_) throw SubmitRefused(SubmitRefused::Why::stopped, {}, "the run is stopping (interrupted); no new jobs are started");
  Prepared p = prepare(req.endpoint, std::move(req.input), context());  // the job keeps the normalized input
  if (!p.ok()) {
    std::string summary = p.report.errors.empty() ? "invalid request" : p.report.errors.front().line();
    if (p.report.errors.size() > 1) summary += " (and " + std::to_string(p.report.errors.size() - 1) + " more)";
    throw SubmitRefused(SubmitRefused::Why::invalid, p.report.errors, summary);
  }
  json scratch;
  const json& canonical = canonical_media(*p.endpoint, p.input, scratch);
  std::string name = req.name.empty() ? "" : safe_name(req.name);

  // Same request (and the same name, if one was given): the same job, never paid twice. The
  // hash finds candidates; equality of the canonical input decides.
  std::size_t hash = identity_hash(*p.endpoint, canonical, req.take);
  Job* same = nullptr;
  by_identity_.for_each(hash, [&](Job* j) {
    bool identical = j->endpoint == p.endpoint && j->take == req.take &&
                     (j->media_identity.is_null() ? j->input : j->media_identity) == canonical;
    if (identical && (!same || j->id < same->id)) same = j;
  });
  if (same && (name.empty() || same->name == name)) return *same;
  if (const Job* taken = name.empty() ? nullptr : job_named(name)) {
    const Job& other = *taken;
    throw SubmitRefused(SubmitRefused::Why::name, {{"name", "\"" + name + "\" is already used by another job" +
                                            (other.origin.empty() ? "" : " (" + other.origin + ")") +
                                            "; give each job its own name, or a take to vary it"}},
                        "name: \"" + name + "\" is already used by another job");
  }
  if (name.empty()) {
    // <script>_001, _002, … in submission order, skipping names the script chose itself.
    for (std::size_t n = jobs_.size() + 1; name.empty() || job_named(name); ++n) {
      char buf[24];
      std::snprintf(buf, sizeof buf, "_%03zu", n);
      name = safe_name(opts_.script) + buf;
    }
  }

  // The SHA-256 key names the job in the state store and the manifest; a plan without them
  // (offline) needs no key, and skips the canonical dump and the hash.
  std::string key = opts_.store || opts_.manifest ? request_key(p.endpoint->id, canonical, req.take) : std::string();
  double cost = predicted_charge(key, p.cost->usd);
  if (cost > 0)
    if (auto msg = over_budget(name, cost)) throw SubmitRefused(SubmitRefused::Why::budget, {{"budget", *msg}}, "budget: " + *msg);

  auto job = std::make_unique<Job>();
  job->id = jobs_.size() + 1;
  job->name = name;
  job->key = std::move(key);
  if (&canonical == &scratch) job->media_identity = std::move(scratch);
  job->endpoint = p.endpoint;
  job->input = std::move(p.input);
  job->cost = *p.cost;
  job->warnings = p.report.warnings;
  job->charged = cost;
  job->take = req.take;
  job->timeout_s = req.timeout_s;
  job->start_timeout_s = req.start_timeout_s;
  job->low_priority = req.low_priority;
  job->origin = std::move(req.origin);
  job->t_created = now();
  spent_ = round_usd(spent_ + cost);
  Job& ref = *job;
  by_identity_.insert(hash, &ref);
  by_name_.insert(std::hash<std::string_view>{}(ref.name), &ref);
  jobs_.push_back(std::move(job));
  waiting_.push_back(&ref);
  ++unfinished_;
  notify(ref);
  return ref;
}

Job* Runner::job_named(const std::string& name) const {
  Job* found = nullptr;
  by_name_.for_each(std::hash<std::string_view>{}(name), [&](Job* j) { if (j->name == name) found = j; });
  return found;
}

}  // namespace kr::run
