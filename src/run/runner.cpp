#include "run/runner.h"

#include <algorithm>
#include <cstdio>
#include <fstream>

#include <openssl/evp.h>

#include "run/hash.h"

namespace kr::run {

const char* phase_name(Phase p) {
  switch (p) {
    case Phase::waiting: return "waiting";
    case Phase::uploading: return "uploading";
    case Phase::submitting: return "submitting";
    case Phase::queued: return "queued";
    case Phase::running: return "running";
    case Phase::downloading: return "downloading";
    case Phase::done: return "done";
    case Phase::failed: return "failed";
    case Phase::unknown: return "unknown";
    case Phase::cancelled: return "cancelled";
  }
  return "?";
}

std::string request_key(const std::string& endpoint_id, const json& input, int take) {
  // nlohmann's json object is an ordered map: dump() is canonical (sorted keys, no spaces).
  std::string canonical = endpoint_id;
  canonical += '\n';
  canonical += input.dump();
  canonical += '\n';
  canonical += std::to_string(take);
  // One digest per submitted shot: fetch SHA-256 once and reuse the context (OpenSSL 3's
  // implicit fetch per EVP_DigestInit costs more than hashing a request).
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  thread_local std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!md || !ctx || EVP_DigestInit_ex2(ctx.get(), md, nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), canonical.data(), canonical.size()) != 1 || EVP_DigestFinal_ex(ctx.get(), digest, &len) != 1)
    return sha256_hex(canonical);
  static const char* hex = "0123456789abcdef";
  std::string out(len * 2, '0');
  for (unsigned i = 0; i < len; ++i) {
    out[2 * i] = hex[digest[i] >> 4];
    out[2 * i + 1] = hex[digest[i] & 0xf];
  }
  return out;
}

std::string safe_name(const std::string& name) {
  std::string out;
  for (unsigned char c : name) out += (std::isalnum(c) || c == '-' || c == '_' || c == '.') ? char(c) : '_';
  while (!out.empty() && out.front() == '.') out.erase(out.begin());
  return out.empty() ? "job" : out;
}

Runner::Runner(RunnerOptions opts, std::unique_ptr<Backend> backend)
    : opts_(std::move(opts)), backend_(std::move(backend)), t0_(std::chrono::steady_clock::now()) {
  backend_->set_hooks({[this](Job& j, JobEvent e) { on_event(j, e); }, [this](Job& j) { on_finished(j); }});
}

Runner::~Runner() = default;

double Runner::now() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
}

CoreContext Runner::context() const {
  CoreContext ctx;
  ctx.prices = opts_.prices;
  ctx.elements = &elements_;
  ctx.default_endpoint = opts_.default_endpoint;
  return ctx;
}

Prepared Runner::check(const Request& req) const { return prepare(req, context()); }

Job& Runner::submit(Request req) {
  if (stopping_) throw SubmitRefused("stopped", {}, "the run is stopping (interrupted); no new jobs are started");
  Prepared p = prepare(req.endpoint, std::move(req.input), context());  // the job keeps the normalized input
  if (!p.ok()) {
    std::string summary = p.report.errors.empty() ? "invalid request" : p.report.errors.front().line();
    if (p.report.errors.size() > 1) summary += " (and " + std::to_string(p.report.errors.size() - 1) + " more)";
    throw SubmitRefused("invalid", p.report.errors, summary);
  }
  std::string key = request_key(p.endpoint->id, p.input, req.take);
  std::string name = req.name.empty() ? "" : safe_name(req.name);

  // Same request (and the same name, if one was given): the same job, never paid twice.
  if (auto it = by_key_.find(key); it != by_key_.end() && (name.empty() || it->second->name == name)) return *it->second;
  if (auto it = by_name_.find(name); !name.empty() && it != by_name_.end()) {
    const Job& other = *it->second;
    throw SubmitRefused("name", {{"name", "\"" + name + "\" is already used by another job" +
                                            (other.request.origin.empty() ? "" : " (" + other.request.origin + ")") +
                                            "; give each job its own name, or a take to vary it"}},
                        "name: \"" + name + "\" is already used by another job");
  }
  if (name.empty()) {
    // <script>_001, _002, … in submission order, skipping names the script chose itself.
    for (std::size_t n = jobs_.size() + 1; name.empty() || by_name_.count(name); ++n) {
      char buf[24];
      std::snprintf(buf, sizeof buf, "_%03zu", n);
      name = safe_name(opts_.script) + buf;
    }
  }

  double cost = p.cost->usd;
  if (opts_.budget && round_usd(spent_ + cost) > round_usd(*opts_.budget)) {
    std::string msg = "job \"" + name + "\" costs " + format_usd(cost) + "; with " + format_usd(spent_) +
                      " already committed this run it would exceed the budget of " + format_usd(*opts_.budget);
    throw SubmitRefused("budget", {{"budget", msg}}, "budget: " + msg);
  }

  auto job = std::make_unique<Job>();
  job->id = jobs_.size() + 1;
  job->name = name;
  job->key = key;
  job->endpoint = p.endpoint;
  job->input = std::move(p.input);
  job->cost = *p.cost;
  job->warnings = p.report.warnings;
  job->request = std::move(req);
  job->t_created = now();
  spent_ = round_usd(spent_ + cost);
  Job& ref = *job;
  by_key_.emplace(key, &ref);
  by_name_.emplace(ref.name, &ref);
  jobs_.push_back(std::move(job));
  waiting_.push_back(&ref);
  ++unfinished_;
  notify(ref);
  return ref;
}

void Runner::tick(int max_wait_ms) {
  while (!stopping_ && !waiting_.empty() && (in_flight_ < opts_.concurrency || !backend_->limited())) {
    Job* job = waiting_.front();
    waiting_.pop_front();
    ++in_flight_;
    backend_->start(*job);
  }
  // Waiters may submit more jobs or finish the script, so they run after I/O, outside the
  // backend's callbacks.
  backend_->poll(done_queue_.empty() ? max_wait_ms : 0);
  auto ready = std::move(done_queue_);
  done_queue_.clear();
  for (Job* job : ready) {
    auto waiters = std::move(job->waiters);
    job->waiters.clear();
    for (auto& w : waiters) w(*job);
  }
}

bool Runner::idle() const { return pending() == 0 && done_queue_.empty() && !backend_->busy(); }

std::size_t Runner::pending() const { return unfinished_; }

void Runner::stop_starting() {
  stopping_ = true;
  for (Job* job : waiting_) {
    job->phase = Phase::cancelled;
    job->error = JobError{"cancelled", "not started: the run was interrupted", {}, "", ""};
    spent_ = round_usd(spent_ - job->cost.usd);
    --unfinished_;
    done_queue_.push_back(job);
    notify(*job);
  }
  waiting_.clear();
}

void Runner::cancel_all() {
  stop_starting();
  for (auto& j : jobs_)
    if (!run::finished(j->phase)) backend_->cancel(*j);
}

void Runner::on_finished(Job& job) {
  --in_flight_;
  --unfinished_;
  job.t_done = now();
  if (job.reused) spent_ = round_usd(spent_ - job.cost.usd);
  done_queue_.push_back(&job);
  notify(job);
}

void Runner::on_event(Job& job, JobEvent) { notify(job); }

void Runner::notify(const Job& job) {
  for (auto& fn : listeners_) fn(job);
}

json Runner::plan() const {
  json jobs = json::array();
  double total = 0;
  for (auto& j : jobs_) {
    jobs.push_back({{"name", j->name},
                    {"endpoint", j->endpoint->id},
                    {"input", j->input},
                    {"cost_usd", j->cost.usd},
                    {"seconds", j->cost.seconds},
                    {"audio", j->cost.audio},
                    {"state", phase_name(j->phase)}});
    if (j->request.take) jobs.back()["take"] = j->request.take;
    if (!j->request.origin.empty()) jobs.back()["origin"] = j->request.origin;
    total += j->cost.usd;
  }
  return {{"script", opts_.script}, {"jobs", jobs}, {"total_usd", round_usd(total)}};
}

void Runner::write_plan() const {
  std::filesystem::create_directories(opts_.out_dir);
  auto path = opts_.out_dir / "plan.json";
  auto tmp = path;
  tmp += ".tmp";
  {
    std::ofstream f(tmp);
    f << plan().dump(2) << "\n";
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace kr::run
