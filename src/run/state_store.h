#pragma once
// StateStore: the durable job journal and result cache (SQLite, WAL).
//
// Money is at stake: fal bills every submitted request. The store records each step before the
// next network step so that a crash, an interruption or a re-run never pays twice and never loses
// a result. Several klingrun processes may share one store directory.
//
// One job = one canonical request; its `key` is the hex SHA-256 of the canonical request
// (computed by the caller). A key can have several *generations*: a new generation is started
// when a job is submitted again (after failed/cancelled, `fresh`, or `resubmit_unknown`). Older
// generations are kept as history (see history()); get()/list()/claim() look at the newest one.
//
// Lifecycle of one generation:
//   sending ──► submitted ──► completed ◄──► done   (done → completed: files missing, Download)
//      └──► unknown ──► submitted      (the request was found again)
//   sending / unknown / submitted ──► failed / cancelled;  completed ──► failed
//
//   sending    intent recorded, the submit is about to go out (or is in flight)
//   unknown    the submit went out and its outcome is unknown: never resubmitted automatically
//   submitted  fal answered with a request_id; queued or running on fal
//   completed  the result JSON is stored; output files not (all) downloaded yet
//   done       output files downloaded and recorded (path, sha256, size)
//   failed     fal reported an error (stored in `error`)
//   cancelled  cancelled by the user
//
// Ownership: the process driving a row writes its `owner` (pid@host#run) and refreshes
// `heartbeat_ms` through heartbeat(). An owner is live when its heartbeat is younger than the
// lease; on the same host (and pid namespace) an owner whose pid no longer exists is dead at once.
//
// Every mutating call is its own committed transaction (BEGIN IMMEDIATE ... COMMIT). Every
// commit survives a crash of the process. Against a power loss or an OS crash, only the two
// steps that bracket money are fsynced, at once or batched (see Durable and sync()):
//   mark_sent       before the submit leaves: a lost mark would let the next run send it again;
//   mark_submitted  fal's request id: lost, the job would turn `unknown` and need the user.
// The others commit without an fsync (Sync::normal): they run on the loop thread, most of them
// between fal finishing a job and its file being in place; the next fsync covers them too.
// A power loss may undo the newest of them, which only sends the next run back a step that
// costs nothing on fal: a claim is decided again (a lost Submit claim had not been sent); a
// lost result means re-attaching by the request id; a lost `done` means downloading again; a
// lost failed/cancelled/unknown mark leaves a row the next claim treats at least as carefully
// (a sent row whose owner died becomes `unknown`). Output files are checked (size, SHA-256)
// before every Reuse, so a file a power loss cut short is downloaded again.
// All methods are safe to call from several threads (one internal mutex per store).
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

namespace kr::run {

namespace detail {
struct SqliteDb;  // state_store.cpp
// How a write transaction commits (WAL mode: a commit appends its frames to the WAL file).
//   full    fsync at commit: the step survives a power loss or an OS crash.
//   normal  no fsync: the step survives any crash of the process (kill -9, abort), as its
//           frames are in the kernel's page cache; a power loss may lose it, and the commits
//           after it, back to the last fsync of the WAL. The next `full` commit, or a
//           checkpoint (which fsyncs the WAL first), makes it durable: the WAL is appended in
//           order, so one fsync covers every earlier frame.
enum class Sync { full, normal };
}

enum class JobState { Sending, Unknown, Submitted, Completed, Done, Failed, Cancelled };

// "sending", "unknown", "submitted", "completed", "done", "failed", "cancelled".
std::string_view to_string(JobState s);
std::optional<JobState> parse_job_state(std::string_view s);

struct FileRecord {
  std::string role;              // e.g. "video"
  std::filesystem::path path;
  std::string sha256;            // hex
  std::uint64_t size = 0;
};

struct JobRecord {
  std::string key;               // hex SHA-256 of the canonical request
  std::int64_t generation = 1;   // 1, 2, ...: bumped by each resubmission of the same key
  std::string name;              // the name of the latest claim (scripts may reuse a job)
  std::string script;            // the script of the latest claim
  std::string endpoint;
  nlohmann::json input;          // request input as submitted
  int take = 0;
  double cost_usd = 0;           // the estimate recorded with the intent
  JobState state = JobState::Sending;
  std::string request_id;        // fal request id ("" until submitted)
  nlohmann::json result;         // null until completed
  std::string error;             // failure / unknown reason ("" if none)
  std::optional<double> billable_units;
  std::string owner;             // "" when nobody drives the row
  std::optional<std::int64_t> heartbeat_ms;
  std::int64_t created_ms = 0;   // when this generation's intent was recorded
  std::optional<std::int64_t> sent_ms;       // when the submit was about to go out
  std::optional<std::int64_t> submitted_ms;  // when fal gave the request_id
  std::optional<std::int64_t> completed_ms;  // when the result was stored
  std::optional<std::int64_t> done_ms;       // when the files were recorded
  std::vector<FileRecord> files; // ordered by role
};

// What the caller wants to run. `key` must be the canonical-request hash.
struct JobIntent {
  std::string key;
  std::string name;
  std::string script;
  std::string endpoint;
  nlohmann::json input = nlohmann::json::object();
  int take = 0;
  double cost_usd = 0;
  // Generate anew: a generation created before this run started (StoreOptions::run_started_ms)
  // is not reused; it is kept as history and a new generation is submitted. A generation created
  // during this run (by this or another process) is treated normally, so `fresh` regenerates a
  // job at most once per run and never steals a job another live process is driving.
  bool fresh = false;
  // The user passed --resubmit-unknown: an `unknown` job (or a `sending` one whose owner died)
  // is resubmitted as a new generation (the old one stays in history, state unknown).
  bool resubmit_unknown = false;
};

struct Claim {
  enum Action {
    // No usable row: the row (a new generation) is now `sending`, owned by this store's owner.
    // The caller submits, then calls mark_submitted / mark_unknown / mark_failed.
    Submit,
    // `submitted` with a request_id, and no live owner or owned by this run. Now owned by this
    // run. The caller re-attaches through status/result with job.request_id; never submits.
    Attach,
    // A result is stored (`completed`, or `done` with files missing or changed — then the row is
    // set back to `completed`). Now owned by this run. The caller downloads from job.result,
    // then add_file(...) for each output and mark_done(). Costs nothing on fal.
    Download,
    // `done` and every recorded file exists with its recorded size and SHA-256. The caller
    // returns job.result / job.files. Costs nothing.
    Reuse,
    // Another live process (or another task of this run) is sending, driving or downloading it.
    // The caller polls: call claim() again every second or so until the answer changes
    // (typically to Reuse; to Attach/Download/Unknown if that owner dies).
    WaitOther,
    // `unknown`, or `sending` whose owner died (the row is then set to `unknown`): the submit may
    // or may not have reached fal. The caller reports it and does not resubmit, unless the user
    // asked to: then claim again with intent.resubmit_unknown = true (→ Submit).
    Unknown,
  };
  Action action = Submit;
  JobRecord job;       // the row as it is after the claim (newest generation)
  std::string reason;  // one human-readable line explaining the decision
};

std::string_view to_string(Claim::Action a);

struct StoreOptions {
  // Who drives rows claimed through this store. Empty: make_owner() (pid@host#random-run-id).
  std::string owner;
  // An owner whose heartbeat is older than this is dead.
  std::chrono::milliseconds lease{15000};
  // Wall clock in ms since the epoch. Empty: std::chrono::system_clock.
  std::function<std::int64_t()> now_ms;
  // Cut-off for JobIntent::fresh. Empty: the time open() was called.
  std::optional<std::int64_t> run_started_ms;
  // How long one SQLite call waits for another process's lock before failing.
  std::chrono::milliseconds busy_timeout{60000};
};

// mark_sent() found the row driven by another owner: this process stalled past the lease and
// another one took the job over. The caller must not send (the other process will).
struct ClaimLost : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class StateStore {
 public:
  // Opens (creating the directory and the database if missing) `dir`/state.db.
  // Throws std::runtime_error naming the path on any failure, including a schema newer
  // than this build understands.
  static std::unique_ptr<StateStore> open(const std::filesystem::path& dir, StoreOptions opts = {});
  ~StateStore();
  StateStore(const StateStore&) = delete;
  StateStore& operator=(const StateStore&) = delete;

  // "pid@host#run": pid, host name (plus the pid namespace on Linux), and a random run id.
  static std::string make_owner();
  const std::string& owner() const { return owner_; }
  const std::filesystem::path& db_path() const { return db_path_; }
  std::int64_t now_ms() const;

  // Decides what the caller must do for this job and records it atomically (see Claim).
  Claim claim(const JobIntent& intent);

  // Transitions. Each applies to the generation this store last claimed for `key` (the newest
  // one if it never claimed it). An illegal transition or an unknown key throws std::logic_error.
  // When a money step reaches the disk. `now`: fsynced before the call returns. `batched`:
  // committed (safe from a crash of the process) but fsynced by the next sync(), which the
  // caller MUST run before its next network I/O; one fsync then covers a burst of submits.
  enum class Durable { now, batched };
  // The submit request is about to go out (called on every attempt). Until then a `sending`
  // row whose owner died is safe to submit again; after it, its outcome is unknown. Throws
  // ClaimLost (and records nothing) when another owner has taken the row over meanwhile.
  void mark_sent(const std::string& key, Durable d = Durable::now);          // sending
  void mark_unknown(const std::string& key, const std::string& why);         // sending|unknown
  void mark_submitted(const std::string& key, const std::string& request_id,
                      Durable d = Durable::now);                              // sending|unknown|submitted
  // The moment the result arrives, BEFORE downloading. sending|unknown|submitted|completed.
  void store_result(const std::string& key, const nlohmann::json& result,
                    std::optional<double> billable_units = std::nullopt);
  // Records (or replaces, by role) one downloaded output. completed|done.
  void add_file(const std::string& key, const std::string& role, const std::filesystem::path& path,
                const std::string& sha256, std::uint64_t size);
  void mark_done(const std::string& key);                                     // completed|done
  // fal reported an error, or the submit certainly never reached fal (e.g. connection refused):
  // the next claim submits a new generation. sending|unknown|submitted|completed.
  void mark_failed(const std::string& key, const std::string& error);
  // A send recorded by mark_sent did not happen after all (the caller withdrew it): failed,
  // with no sent time, so the next run submits it again.
  void unmark_sent(const std::string& key, const std::string& error);
  // fal surely created nothing for the send recorded by mark_sent (it refused or rate-limited
  // it): still sending, but unsent again, so a crash before the retry means "submit", not
  // "unknown".
  void clear_sent(const std::string& key);
  void mark_cancelled(const std::string& key);                               // sending|unknown|submitted

  // Makes every commit so far durable (one fsync of the WAL) when a `batched` step waits for
  // it; does nothing otherwise. Throws std::runtime_error when the fsync fails (the steps stay
  // pending, so the next sync() tries again).
  void sync();

  // Refreshes the heartbeat of every row `owner` drives. Call every few seconds (< lease / 3).
  void heartbeat(const std::string& owner);
  void heartbeat() { heartbeat(owner_); }
  // Clean exit: rows `owner` still drives lose their owner so the next run takes them over at
  // once (submitted → Attach, completed → Download); rows still `sending` become `unknown`.
  void release(const std::string& owner);
  void release() { release(owner_); }

  // Newest generation of `key`, with its files.
  std::optional<JobRecord> get(const std::string& key);
  // All generations of `key`, oldest first.
  std::vector<JobRecord> history(const std::string& key);
  // Newest generation of every job, in first-seen order; with `script`, only jobs that script
  // has claimed (a job reused by several scripts is listed for each).
  std::vector<JobRecord> list(const std::optional<std::string>& script = std::nullopt);
  // The job most recently claimed under `name` (within `script` if given).
  std::optional<JobRecord> find_by_name(const std::string& name,
                                        const std::optional<std::string>& script = std::nullopt);

  // Removes `done` generations whose recorded output files are all gone (the user deleted
  // them); returns how many generations were removed. Never touches sending / unknown /
  // submitted / completed rows (money on fal, or a result not yet downloaded).
  int gc();

  // Reads a PRAGMA of this connection (diagnostics, tests): e.g. "journal_mode", "synchronous".
  std::string pragma(std::string_view name);

 private:
  StateStore(std::filesystem::path db_path, StoreOptions opts);

  bool owner_alive(const std::string& owner, std::optional<std::int64_t> heartbeat_ms) const;
  std::int64_t target_generation(const std::string& key);
  detail::Sync commit_level(Durable d);
  void require_owner(const std::string& key, const JobRecord& row, const char* what) const;
  void transition(const std::string& key, const char* what, detail::Sync sync,
                  std::initializer_list<JobState> from,
                  const std::function<void(std::int64_t gen, const JobRecord& row)>& apply);

  std::filesystem::path db_path_;
  StoreOptions opts_;
  std::string owner_;
  std::int64_t run_started_ms_ = 0;
  std::unique_ptr<detail::SqliteDb> db_;
  std::unordered_map<std::string, std::int64_t> claimed_gen_;
  bool sync_pending_ = false;  // a `batched` step is committed but not fsynced yet
  std::recursive_mutex mu_;
};

}  // namespace kr::run
