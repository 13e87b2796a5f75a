// Money-safe runs, crash test: klingrun is killed with SIGKILL at many moments across every
// phase of a 4-job run (before submit, submit in flight, queued, running, result stored with the
// download stalled, mid-download, between jobs), then the same script is run again to
// completion. After each recovery: every job has its file (right size and bytes, no .part), no
// job was created twice on fal for the same input, and a submit whose answer never came back is
// reported as unknown (exit 3, --resubmit-unknown) and not resubmitted until the user asks.
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "e2e_common.h"
#include "money.h"
#include "run/state_store.h"

using namespace e2e;

namespace {

constexpr std::size_t kVideoBytes = 3 * 1024 * 1024;  // 3 MiB: downloads take measurable time
constexpr int kJobs = 4;
constexpr int kTrialsPerPhase = 5;
constexpr double kSubmitStallS = 1.0;
constexpr double kCdnStallS = 0.5;

std::string job_name(int i) { return "shot" + std::to_string(i); }
std::string prompt_of(int i) {
  return "Crash shot " + std::to_string(i) + " of a harbour at night [[run_ms=" + std::to_string(200 + 50 * i) + "]]";
}

// shot1 is image-to-video from a local frame: it is uploaded before its submit, so a job can be
// claimed in the store and not yet sent (the "before submit" window the upload stall widens).
std::string crash_script() {
  std::string s = "local kling = require 'kling'\nlocal jobs = {}\n";
  for (int i = 1; i <= kJobs; ++i)
    s += "jobs[" + std::to_string(i) + "] = kling.submit{ name = '" + job_name(i) + "', duration = 5, prompt = '" +
         prompt_of(i) + "'" + (i == 1 ? ", endpoint = 'v3/pro/i2v', start_image_url = 'frame.png'" : "") + " }\n";
  s += "local rs = kling.wait_all(jobs)\n"
       "for _, r in ipairs(rs) do print('got', r.name, r.video.file_size) end\n";
  return s;
}

enum class Phase { start, submit_in_flight, queued, running, download_stalled, downloading, between_jobs };
const Phase kPhases[] = {Phase::start,           Phase::submit_in_flight, Phase::queued,      Phase::running,
                         Phase::download_stalled, Phase::downloading,     Phase::between_jobs};

const char* phase_label(Phase p) {
  switch (p) {
    case Phase::start: return "before-submit";
    case Phase::submit_in_flight: return "submit-in-flight";
    case Phase::queued: return "queued";
    case Phase::running: return "running";
    case Phase::download_stalled: return "result-stored";
    case Phase::downloading: return "mid-download";
    case Phase::between_jobs: return "between-jobs";
  }
  return "?";
}

struct RowSnap {
  std::string state = "-";
  bool sent = false;
  std::string request_id;
  std::int64_t generation = 0;
};

// name -> newest generation as the store has it (opened only while no klingrun runs).
std::map<std::string, RowSnap> snapshot_store(const krt::fs::path& state_dir) {
  std::map<std::string, RowSnap> out;
  if (!krt::fs::exists(state_dir / "state.db")) return out;
  auto store = kr::run::StateStore::open(state_dir);
  for (auto& r : store->list()) {
    RowSnap s;
    s.state = std::string(kr::run::to_string(r.state));
    s.sent = r.sent_ms.has_value();
    s.request_id = r.request_id;
    s.generation = r.generation;
    out[r.name] = s;
  }
  return out;
}

std::string describe_snap(const std::map<std::string, RowSnap>& snap) {
  std::string s;
  for (int i = 1; i <= kJobs; ++i) {
    auto it = snap.find(job_name(i));
    s += " " + job_name(i) + "=";
    if (it == snap.end()) s += "-";
    else s += it->second.state + (it->second.state == "sending" ? (it->second.sent ? "(sent)" : "(not sent)") : "");
  }
  return s;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

TEST_CASE("money crash test: kill -9 in every phase then rerun - no duplicates and no lost results",
          "[e2e][money][crash]") {
  const auto t_start = std::chrono::steady_clock::now();
  krt::TempDir dir("krt_money_crash");
  krt::FakeFal fake({"--queue-ms", "150", "--run-ms", "300", "--video-bytes", std::to_string(kVideoBytes), "--key",
                     "test:secret"});
  krt::write_file(dir / "crash.lua", crash_script());
  krt::write_file(dir / "frame.png", krt::make_png(512, 512, 3));
  const krt::Env env = fake.env();

  int trials = 0, landed = 0, duplicates = 0, lost = 0, ambiguous = 0, ambiguous_twice = 0;
  std::map<std::string, int> landed_by_phase;
  std::vector<std::string> problems;  // one line per broken expectation, printed at the end

  int t = 0;
  for (Phase phase : kPhases) {
    for (int k = 0; k < kTrialsPerPhase; ++k, ++t) {
      ++trials;
      std::mt19937 rng(20240611u + static_cast<unsigned>(t) * 7919u);
      auto uniform = [&](double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng); };
      const std::string out = "out_t" + std::to_string(t);
      const krt::fs::path state_dir = dir / (out + "/.klingrun");
      const krt::fs::path video_dir = dir / (out + "/crash");
      std::string tag = "t" + std::to_string(t) + " " + phase_label(phase);
      auto problem = [&](const std::string& what) { problems.push_back(tag + ": " + what); };

      fake.reset();
      double stall_until = 0;  // seconds since t_start before which a stalled submit may still create a job

      // ---- 1. the run that gets killed
      const bool upload_stall = phase == Phase::start && k < 3;
      if (upload_stall) fake.fault({{"route", "upload_put"}, {"action", "stall"}, {"ms", 600}});
      if (phase == Phase::submit_in_flight)
        fake.fault({{"route", "submit"}, {"action", "stall"}, {"ms", int(kSubmitStallS * 1000)}, {"times", 1 + k % 2}});
      if (phase == Phase::download_stalled)
        fake.fault({{"route", "cdn"}, {"action", "stall"}, {"ms", int(kCdnStallS * 1000)}, {"times", kJobs}});
      double delay = 0;
      bool triggered = true;
      krt::ProcResult killed;
      {
        krt::Process p(krt::klingrun_options(dir.path(), {"--json", "--out", out, "-j", "2", "crash.lua"}, env, 60));
        switch (phase) {
          case Phase::start:
            // Claimed, uploading its frame, not sent; or (k >= 3) just started.
            if (upload_stall) triggered = p.wait_output("\"event\":\"uploading\"", 20);
            delay = upload_stall ? uniform(0.0, 0.5) : uniform(0.0, 0.08);
            break;
          case Phase::submit_in_flight:
            triggered = p.wait_output("\"event\":\"submitting\"", 20);
            delay = uniform(0.0, 0.4);
            break;
          case Phase::queued:
            triggered = p.wait_output("\"event\":\"queued\"", 20);
            delay = uniform(0.0, 0.15);
            break;
          case Phase::running:
            triggered = p.wait_output("\"event\":\"running\"", 20);
            delay = uniform(0.0, 0.3);
            break;
          case Phase::download_stalled:
            // The result is stored, the video request is held by the fake: kill inside the stall.
            triggered = krt::pump_until(p, [&] { return fake.stats()["requests"].value("cdn", 0) >= 1; }, 20);
            delay = uniform(0.0, kCdnStallS * 0.9);
            break;
          case Phase::downloading:
            triggered = p.wait_output("\"event\":\"downloading\"", 20);
            delay = uniform(0.0, 0.03);
            break;
          case Phase::between_jobs:
            triggered = p.wait_output("\"event\":\"done\"", 20);
            delay = uniform(0.0, 0.6);
            break;
        }
        krt::pump_for(p, delay);
        p.signal(SIGKILL);
        killed = p.wait(20);
      }
      if (phase == Phase::submit_in_flight) stall_until = seconds_since(t_start) + kSubmitStallS + 0.5;
      krt::clear_fake_faults(fake);  // faults the killed run did not reach must not slow the recovery
      const bool kill_landed = killed.term_signal == SIGKILL;
      if (kill_landed) {
        ++landed;
        ++landed_by_phase[phase_label(phase)];
      }
      if (!triggered) problem("trigger never seen; killed run output:\n" + killed.out + killed.err);

      // What the store knew at the moment of the kill. A row that is `sending` with its submit
      // already on the wire is the only ambiguous case: fal may or may not have the job.
      auto at_kill = snapshot_store(state_dir);
      std::set<std::string> ambiguous_names;
      for (auto& [name, s] : at_kill)
        if ((s.state == "sending" && s.sent) || s.state == "unknown") ambiguous_names.insert(name);

      // ---- 2. the recovery run: the same script, no kill
      krt::ProcResult rec = krt::run_klingrun(dir.path(), {"--out", out, "-j", "2", "crash.lua"}, env, 90);
      auto after_rec = snapshot_store(state_dir);

      // Counting jobs needs the stalled submit (if any) to have reached the fake's handler.
      krt::wait_until([&] { return seconds_since(t_start) >= stall_until; }, 5);
      auto by_prompt_after_rec = krt::fake_jobs_by_prompt(fake);

      char head[160];
      std::snprintf(head, sizeof head, "%-22s kill %s +%.3fs  at kill:", tag.c_str(), kill_landed ? "landed" : "MISSED",
                    delay);
      std::string trial_line = head + describe_snap(at_kill);

      if (ambiguous_names.empty()) {
        if (rec.exit_code != 0) problem("recovery run did not succeed: " + rec.describe());
      } else {
        // Reported, never resubmitted: exit 3, the flag named, each unknown job named.
        if (rec.exit_code != 3) problem("recovery with an ambiguous submit should exit 3: " + rec.describe());
        if (rec.err.find("--resubmit-unknown") == std::string::npos)
          problem("recovery did not mention --resubmit-unknown: " + rec.describe());
        for (auto& name : ambiguous_names) {
          auto it = after_rec.find(name);
          std::string st = it == after_rec.end() ? "-" : it->second.state;
          if (st != "unknown" && st != "sending") problem(name + " was ambiguous but is now " + st);
          if (it != after_rec.end() && it->second.generation != at_kill[name].generation)
            problem(name + " was resubmitted (a new generation) without --resubmit-unknown");
          if (st == "unknown" && rec.err.find(name) == std::string::npos) problem(name + " is unknown but not named on stderr");
        }
        for (int i = 1; i <= kJobs; ++i) {
          if (!ambiguous_names.count(job_name(i))) continue;
          auto n = by_prompt_after_rec[prompt_of(i)].size();
          if (n > 1) problem(job_name(i) + " (ambiguous) was sent again by the recovery run: " + std::to_string(n) + " jobs");
        }
        // ---- 3. the user checked and asks for it: --resubmit-unknown completes the run
        krt::ProcResult third =
            krt::run_klingrun(dir.path(), {"--resubmit-unknown", "--out", out, "-j", "2", "crash.lua"}, env, 90);
        if (third.exit_code != 0) problem("--resubmit-unknown run did not succeed: " + third.describe());
        trial_line += "  | recovery exit " + std::to_string(rec.exit_code) + ", resubmit exit " + std::to_string(third.exit_code);
      }
      // Every job reported unknown after the recovery run must have been ambiguous at the kill.
      for (auto& [name, s] : after_rec)
        if (s.state == "unknown" && !ambiguous_names.count(name))
          problem(name + " reported unknown although its submit had not gone out (at kill: " + at_kill[name].state + ")");
      if (ambiguous_names.empty()) trial_line += "  | recovery exit " + std::to_string(rec.exit_code);

      // ---- final state: files and the fake's ledger
      auto final_rows = snapshot_store(state_dir);
      auto by_prompt = krt::fake_jobs_by_prompt(fake);
      int created_total = fake.stats().value("jobs_created", -1);
      int expected_total = 0;
      for (int i = 1; i <= kJobs; ++i) {
        const std::string name = job_name(i);
        const auto& made = by_prompt[prompt_of(i)];
        const bool amb = ambiguous_names.count(name) > 0;
        expected_total += static_cast<int>(made.size());
        if (made.size() > (amb ? 2u : 1u)) {
          ++duplicates;
          problem(name + ": " + std::to_string(made.size()) + " jobs created on fal for one input");
        }
        if (amb) {
          ++ambiguous;
          if (made.size() == 2) ++ambiguous_twice;
        }
        // The file: present, complete, the bytes of the job the store points at.
        const krt::fs::path file = video_dir / (name + ".mp4");
        auto row = final_rows.find(name);
        bool ok = row != final_rows.end() && row->second.state == "done" && krt::fs::exists(file) &&
                  krt::fs::file_size(file) == kVideoBytes;
        if (ok) {
          bool known = false;
          for (auto& j : made) known = known || j["request_id"] == row->second.request_id;
          ok = known && krt::sha256_file_hex(file) == sha256_hex(fake_video(row->second.request_id, kVideoBytes));
        }
        if (!ok) {
          ++lost;
          problem(name + ": no complete, correct file after recovery (state " +
                  (row == final_rows.end() ? std::string("-") : row->second.state) + ")");
        }
      }
      if (created_total != expected_total) problem("jobs_created " + std::to_string(created_total) + " != sum per prompt");
      auto parts = krt::files_ending(dir / out, ".part");
      if (!parts.empty()) problem("leftover .part files: " + parts.front());
      // The manifest the user reads agrees: every job done, with the file's hash.
      json manifest = json::parse(krt::fs::exists(video_dir / "manifest.json") ? krt::read_file(video_dir / "manifest.json") : "",
                                  nullptr, false);
      if (!manifest.is_object() || !manifest["jobs"].is_array()) {
        problem("manifest.json missing or not JSON after recovery");
      } else {
        for (int i = 1; i <= kJobs; ++i) {
          json entry;
          for (auto& e : manifest["jobs"])
            if (e["name"] == job_name(i)) entry = e;
          const krt::fs::path file = video_dir / (job_name(i) + ".mp4");
          if (!entry.is_object() || entry["state"] != "done" || !krt::fs::exists(file) ||
              entry["sha256"] != krt::sha256_file_hex(file))
            problem("manifest entry of " + job_name(i) + " is not done with the file's sha256: " + entry.dump());
        }
      }
      if (!ambiguous_names.empty()) trial_line += "  ambiguous:" + [&] {
        std::string s;
        for (auto& n : ambiguous_names) s += " " + n;
        return s;
      }();
      std::printf("%s\n", trial_line.c_str());
      std::fflush(stdout);

      // Nothing from this trial may leak into the next: a stalled submit still creates its job.
      krt::wait_until([&] { return seconds_since(t_start) >= stall_until; }, 5);
    }
  }

  const double secs = seconds_since(t_start);
  std::printf("crash test: %d trials, %d duplicates, %d lost results, %d ambiguous (reported)\n", landed, duplicates, lost,
              ambiguous);
  std::printf("  (%d trials planned, %d kills landed; %d ambiguous jobs were created twice after --resubmit-unknown; "
              "%.1f s)\n  kills by phase:",
              trials, landed, ambiguous_twice, secs);
  for (auto& [p, n] : landed_by_phase) std::printf(" %s=%d", p.c_str(), n);
  std::printf("\n");
  std::fflush(stdout);
  for (auto& p : problems) UNSCOPED_INFO(p);
  CHECK(problems.empty());
  REQUIRE(landed >= 30);
  REQUIRE(duplicates == 0);
  REQUIRE(lost == 0);
}
