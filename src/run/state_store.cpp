#include "run/state_store.h"

#include <sqlite3.h>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <random>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "net/sha256.h"

namespace kr::run {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr int kSchemaVersion = 1;

constexpr const char* kSchemaV1 = R"SQL(
CREATE TABLE jobs (
  key          TEXT    NOT NULL,
  gen          INTEGER NOT NULL,
  name         TEXT    NOT NULL DEFAULT '',
  script       TEXT    NOT NULL DEFAULT '',
  endpoint     TEXT    NOT NULL DEFAULT '',
  input_json   TEXT    NOT NULL DEFAULT '{}',
  take         INTEGER NOT NULL DEFAULT 0,
  cost_usd     REAL    NOT NULL DEFAULT 0,
  state        TEXT    NOT NULL CHECK (state IN
                 ('sending','unknown','submitted','completed','done','failed','cancelled')),
  request_id   TEXT,
  result_json  TEXT,
  error        TEXT,
  billable_units REAL,
  owner        TEXT,
  heartbeat_ms INTEGER,
  created_ms   INTEGER NOT NULL,
  sent_ms      INTEGER,
  submitted_ms INTEGER,
  completed_ms INTEGER,
  done_ms      INTEGER,
  PRIMARY KEY (key, gen)
);
CREATE INDEX jobs_owner ON jobs(owner) WHERE owner IS NOT NULL;
CREATE INDEX jobs_state ON jobs(state);
CREATE TABLE files (
  key    TEXT    NOT NULL,
  gen    INTEGER NOT NULL,
  role   TEXT    NOT NULL,
  path   TEXT    NOT NULL,
  sha256 TEXT    NOT NULL,
  size   INTEGER NOT NULL,
  PRIMARY KEY (key, gen, role)
);
-- Which script claimed which job under which name (a job can be reused by several scripts).
CREATE TABLE uses (
  script   TEXT    NOT NULL,
  name     TEXT    NOT NULL,
  key      TEXT    NOT NULL,
  first_ms INTEGER NOT NULL,
  last_ms  INTEGER NOT NULL,
  PRIMARY KEY (script, name, key)
);
CREATE INDEX uses_name ON uses(name);
CREATE INDEX uses_key ON uses(key);
)SQL";

constexpr const char* kJobCols =
    "key, gen, name, script, endpoint, input_json, take, cost_usd, state, request_id, "
    "result_json, error, billable_units, owner, heartbeat_ms, created_ms, sent_ms, submitted_ms, "
    "completed_ms, done_ms";

std::string short_key(const std::string& key) { return key.substr(0, 12); }

std::string host_id() {
  static const std::string id = [] {
    char buf[256] = {};
    if (gethostname(buf, sizeof buf - 1) != 0) std::snprintf(buf, sizeof buf, "localhost");
    std::string h = buf;
    // Containers on one host may share a host name but not a pid namespace: the pid check is
    // only meaningful within the same namespace.
    std::error_code ec;
    fs::path ns = fs::read_symlink("/proc/self/ns/pid", ec);  // "pid:[4026531836]"
    if (!ec) {
      std::string s = ns.string();
      std::string digits;
      for (char c : s)
        if (c >= '0' && c <= '9') digits.push_back(c);
      if (!digits.empty()) h += ":" + digits;
    }
    return h;
  }();
  return id;
}

std::int64_t system_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// enums

std::string_view to_string(JobState s) {
  switch (s) {
    case JobState::Sending: return "sending";
    case JobState::Unknown: return "unknown";
    case JobState::Submitted: return "submitted";
    case JobState::Completed: return "completed";
    case JobState::Done: return "done";
    case JobState::Failed: return "failed";
    case JobState::Cancelled: return "cancelled";
  }
  return "?";
}

std::optional<JobState> parse_job_state(std::string_view s) {
  for (JobState st : {JobState::Sending, JobState::Unknown, JobState::Submitted, JobState::Completed,
                      JobState::Done, JobState::Failed, JobState::Cancelled})
    if (to_string(st) == s) return st;
  return std::nullopt;
}

std::string_view to_string(Claim::Action a) {
  switch (a) {
    case Claim::Submit: return "submit";
    case Claim::Attach: return "attach";
    case Claim::Download: return "download";
    case Claim::Reuse: return "reuse";
    case Claim::WaitOther: return "wait-other";
    case Claim::Unknown: return "unknown";
  }
  return "?";
}

// ---------------------------------------------------------------------------------------------
// SQLite helpers

namespace detail {
struct SqliteDb {
  sqlite3* h = nullptr;
  std::string path;
  std::chrono::milliseconds busy{60000};
  std::optional<Sync> sync;  // the level set on the connection, once set
  // One prepared statement per SQL text, kept for the connection's life: compiling the SQL on
  // every call cost more than running it (a job's steps are a few dozen statements).
  struct Cached {
    sqlite3_stmt* s = nullptr;
    bool in_use = false;
  };
  std::unordered_map<std::string, Cached> cache;

  ~SqliteDb() {
    for (auto& [sql, c] : cache) sqlite3_finalize(c.s);
    if (h) sqlite3_close_v2(h);
  }

  // A statement for `sql`, reset and unbound; `cached` says to hand it back through release().
  // A statement already in use (nested use of the same SQL) gets a private copy.
  sqlite3_stmt* acquire(std::string_view sql, bool& cached) {
    auto it = cache.find(std::string(sql));
    cached = it == cache.end() || !it->second.in_use;
    if (cached && it != cache.end()) {
      it->second.in_use = true;
      return it->second.s;
    }
    sqlite3_stmt* st = nullptr;
    int rc = sqlite3_prepare_v2(h, sql.data(), static_cast<int>(sql.size()), &st, nullptr);
    if (rc != SQLITE_OK) fail("prepare \"" + std::string(sql) + "\"", rc);
    if (cached) cache.emplace(std::string(sql), Cached{st, true});
    return st;
  }
  void release(std::string_view sql, sqlite3_stmt* st, bool cached) {
    if (!cached) {
      sqlite3_finalize(st);
      return;
    }
    sqlite3_reset(st);  // ends its read of the database
    sqlite3_clear_bindings(st);
    cache[std::string(sql)].in_use = false;
  }

  [[noreturn]] void fail(const std::string& what, int rc) const {
    throw std::runtime_error("state store '" + path + "': " + what + ": " +
                             (h ? sqlite3_errmsg(h) : sqlite3_errstr(rc)) + " (code " +
                             std::to_string(rc) + ")");
  }

  static bool is_busy(int rc) {
    int p = rc & 0xff;
    return p == SQLITE_BUSY || p == SQLITE_LOCKED;
  }

  // Runs one SQL statement without results, retrying while another process holds a lock (on
  // top of sqlite3_busy_timeout, which does not cover every case, e.g. switching to WAL).
  void exec(const char* sql) {
    bool cached = false;
    sqlite3_stmt* st = acquire(sql, cached);
    auto deadline = std::chrono::steady_clock::now() + busy;
    for (int delay = 1;; delay = std::min(delay * 2, 50)) {
      int rc = sqlite3_step(st);
      while (rc == SQLITE_ROW) rc = sqlite3_step(st);
      if (rc == SQLITE_DONE) break;
      sqlite3_reset(st);
      if (is_busy(rc) && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(delay));
        continue;
      }
      release(sql, st, cached);
      fail(std::string("\"") + sql + "\"", rc);
    }
    release(sql, st, cached);
  }
  // Several statements (the schema), run once.
  void exec_script(const char* sql) {
    char* err = nullptr;
    int rc = sqlite3_exec(h, sql, nullptr, nullptr, &err);
    if (err) sqlite3_free(err);
    if (rc != SQLITE_OK) fail("schema", rc);
  }

  // Sets PRAGMA synchronous for the next commit; SQLite ignores it inside a transaction, so it
  // is switched between them (a no-op when it is already at that level).
  void sync_level(Sync s) {
    if (sync == s) return;
    exec(s == Sync::full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
    sync = s;
  }

  // BEGIN IMMEDIATE takes the write lock up front, so a claim never upgrades mid-transaction.
  // Durable (FULL, the default) unless the caller says the commit may wait (see Sync).
  template <class F>
  void write_txn(F&& f, Sync s = Sync::full) {
    sync_level(s);
    txn("BEGIN IMMEDIATE", std::forward<F>(f));
  }
  template <class F>
  void read_txn(F&& f) { txn("BEGIN", std::forward<F>(f)); }

  template <class F>
  void txn(const char* begin, F&& f) {
    exec(begin);
    try {
      f();
      exec("COMMIT");
    } catch (...) {
      sqlite3_exec(h, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }
};
}  // namespace detail

namespace {

class Stmt {
 public:
  Stmt(detail::SqliteDb& db, std::string_view sql);  // defined below (needs Db)
  ~Stmt() { db_.release(sql_, s_, cached_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& bind(int i, std::string_view v) {
    check(sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
    return *this;
  }
  Stmt& bind(int i, const std::string& v) { return bind(i, std::string_view(v)); }
  Stmt& bind(int i, const char* v) { return bind(i, std::string_view(v)); }
  Stmt& bind(int i, std::int64_t v) {
    check(sqlite3_bind_int64(s_, i, v));
    return *this;
  }
  Stmt& bind(int i, int v) { return bind(i, static_cast<std::int64_t>(v)); }
  Stmt& bind(int i, double v) {
    check(sqlite3_bind_double(s_, i, v));
    return *this;
  }
  Stmt& bind_null(int i) {
    check(sqlite3_bind_null(s_, i));
    return *this;
  }
  Stmt& bind(int i, std::optional<double> v) { return v ? bind(i, *v) : bind_null(i); }
  Stmt& bind(int i, std::optional<std::int64_t> v) { return v ? bind(i, *v) : bind_null(i); }

  // true: a row is available.
  bool step() {
    auto deadline = std::chrono::steady_clock::now() + db_.busy;
    for (int delay = 1;; delay = std::min(delay * 2, 50)) {
      int rc = sqlite3_step(s_);
      if (rc == SQLITE_ROW) return true;
      if (rc == SQLITE_DONE) return false;
      // Outside a transaction a statement can be retried as a whole.
      if (detail::SqliteDb::is_busy(rc) && sqlite3_get_autocommit(db_.h) &&
          std::chrono::steady_clock::now() < deadline) {
        sqlite3_reset(s_);
        std::this_thread::sleep_for(std::chrono::milliseconds(delay));
        continue;
      }
      db_.fail(std::string("\"") + sqlite3_sql(s_) + "\"", rc);
    }
  }
  void run() {
    while (step()) {
    }
  }

  bool is_null(int i) const { return sqlite3_column_type(s_, i) == SQLITE_NULL; }
  std::string text(int i) const {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, i));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(s_, i))) : std::string();
  }
  std::int64_t i64(int i) const { return sqlite3_column_int64(s_, i); }
  double dbl(int i) const { return sqlite3_column_double(s_, i); }
  std::optional<std::int64_t> opt_i64(int i) const {
    return is_null(i) ? std::nullopt : std::optional<std::int64_t>(i64(i));
  }
  std::optional<double> opt_dbl(int i) const {
    return is_null(i) ? std::nullopt : std::optional<double>(dbl(i));
  }

 private:
  void check(int rc) {
    if (rc != SQLITE_OK) db_.fail("bind", rc);
  }
  detail::SqliteDb& db_;
  std::string sql_;
  bool cached_ = false;
  sqlite3_stmt* s_ = nullptr;
};

Stmt::Stmt(detail::SqliteDb& db, std::string_view sql) : db_(db), sql_(sql) { s_ = db.acquire(sql_, cached_); }

json parse_json_column(const Stmt& st, int i, const std::string& key, const char* col) {
  if (st.is_null(i)) return nullptr;
  try {
    return json::parse(st.text(i));
  } catch (const std::exception& e) {
    throw std::runtime_error("state store: job " + key + ": corrupt " + col + ": " + e.what());
  }
}

JobRecord read_job(const Stmt& st) {
  JobRecord r;
  r.key = st.text(0);
  r.generation = st.i64(1);
  r.name = st.text(2);
  r.script = st.text(3);
  r.endpoint = st.text(4);
  r.input = parse_json_column(st, 5, r.key, "input_json");
  r.take = static_cast<int>(st.i64(6));
  r.cost_usd = st.dbl(7);
  auto state = parse_job_state(st.text(8));
  if (!state) throw std::runtime_error("state store: job " + r.key + ": bad state " + st.text(8));
  r.state = *state;
  r.request_id = st.text(9);
  r.result = parse_json_column(st, 10, r.key, "result_json");
  r.error = st.text(11);
  r.billable_units = st.opt_dbl(12);
  r.owner = st.text(13);
  r.heartbeat_ms = st.opt_i64(14);
  r.created_ms = st.i64(15);
  r.sent_ms = st.opt_i64(16);
  r.submitted_ms = st.opt_i64(17);
  r.completed_ms = st.opt_i64(18);
  r.done_ms = st.opt_i64(19);
  return r;
}

std::vector<FileRecord> load_files(detail::SqliteDb& db, const std::string& key, std::int64_t gen) {
  Stmt st(db, "SELECT role, path, sha256, size FROM files WHERE key=?1 AND gen=?2 ORDER BY role");
  st.bind(1, key).bind(2, gen);
  std::vector<FileRecord> out;
  while (st.step())
    out.push_back(FileRecord{st.text(0), fs::path(st.text(1)), st.text(2),
                             static_cast<std::uint64_t>(st.i64(3))});
  return out;
}

// Newest generation of key (or a given generation), with files.
std::optional<JobRecord> load_job(detail::SqliteDb& db, const std::string& key,
                                  std::optional<std::int64_t> gen = std::nullopt) {
  std::string sql = std::string("SELECT ") + kJobCols + " FROM jobs WHERE key=?1 " +
                    (gen ? "AND gen=?2" : "ORDER BY gen DESC LIMIT 1");
  Stmt st(db, sql);
  st.bind(1, key);
  if (gen) st.bind(2, *gen);
  if (!st.step()) return std::nullopt;
  JobRecord r = read_job(st);
  r.files = load_files(db, r.key, r.generation);
  return r;
}

// What is wrong with the recorded files ("" if all are intact).
std::string verify_files(const std::vector<FileRecord>& files) {
  std::string problems;
  auto add = [&](const std::string& p) { problems += (problems.empty() ? "" : "; ") + p; };
  for (const auto& f : files) {
    std::error_code ec;
    auto st = fs::status(f.path, ec);
    if (ec || !fs::is_regular_file(st)) {
      add(f.role + " " + f.path.string() + " is missing");
      continue;
    }
    auto size = fs::file_size(f.path, ec);
    if (ec) {
      add(f.role + " " + f.path.string() + " is unreadable");
      continue;
    }
    if (size != f.size) {
      add(f.role + " " + f.path.string() + " changed size (" + std::to_string(size) + " bytes, " +
          "recorded " + std::to_string(f.size) + ")");
      continue;
    }
    auto h = net::sha256_file(f.path.string());
    if (!h) {
      add(f.role + " " + f.path.string() + " is unreadable");
      continue;
    }
    if (*h != f.sha256) add(f.role + " " + f.path.string() + " changed content (sha256 differs)");
  }
  return problems;
}

bool in(JobState s, std::initializer_list<JobState> set) {
  return std::find(set.begin(), set.end(), s) != set.end();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// open

StateStore::StateStore(fs::path db_path, StoreOptions opts)
    : db_path_(std::move(db_path)), opts_(std::move(opts)), db_(std::make_unique<detail::SqliteDb>()) {
  owner_ = opts_.owner.empty() ? make_owner() : opts_.owner;
  run_started_ms_ = opts_.run_started_ms ? *opts_.run_started_ms : now_ms();
}

StateStore::~StateStore() = default;

std::unique_ptr<StateStore> StateStore::open(const fs::path& dir, StoreOptions opts) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    throw std::runtime_error("state store: cannot create directory '" + dir.string() +
                             "': " + ec.message());
  fs::path db_path = dir / "state.db";
  std::unique_ptr<StateStore> store(new StateStore(db_path, std::move(opts)));
  detail::SqliteDb& db = *store->db_;
  db.path = db_path.string();
  db.busy = store->opts_.busy_timeout;

  int rc = sqlite3_open_v2(db.path.c_str(), &db.h,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) db.fail("cannot open", rc);
  sqlite3_extended_result_codes(db.h, 1);
  sqlite3_busy_timeout(db.h, static_cast<int>(std::min<std::int64_t>(db.busy.count(), INT32_MAX)));

  {
    // Stmt::step retries while another process holds the lock it needs to switch to WAL.
    Stmt st(db, "PRAGMA journal_mode=WAL");
    std::string mode = st.step() ? st.text(0) : "";
    if (mode != "wal")
      throw std::runtime_error("state store '" + db.path + "': cannot use WAL mode (journal_mode=" +
                               mode + "); put the store on a local file system");
  }
  db.sync_level(detail::Sync::full);

  db.write_txn([&] {
    Stmt v(db, "PRAGMA user_version");
    int version = v.step() ? static_cast<int>(v.i64(0)) : 0;
    if (version > kSchemaVersion)
      throw std::runtime_error("state store '" + db.path + "' has schema version " +
                               std::to_string(version) + ", newer than this klingrun understands (" +
                               std::to_string(kSchemaVersion) + "); upgrade klingrun");
    if (version == 0) {
      db.exec_script(kSchemaV1);
      db.exec(("PRAGMA user_version=" + std::to_string(kSchemaVersion)).c_str());
    }
  });
  return store;
}

std::string StateStore::make_owner() {
  std::random_device rd;
  char run[17];
  std::snprintf(run, sizeof run, "%08x%08x", rd(), rd());
  return std::to_string(::getpid()) + "@" + host_id() + "#" + run;
}

std::int64_t StateStore::now_ms() const { return opts_.now_ms ? opts_.now_ms() : system_now_ms(); }

std::string StateStore::pragma(std::string_view name) {
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || c == '_'))
      throw std::invalid_argument("state store: bad pragma name");
  std::lock_guard lk(mu_);
  Stmt st(*db_, "PRAGMA " + std::string(name));
  return st.step() ? st.text(0) : std::string();
}

// ---------------------------------------------------------------------------------------------
// ownership

bool StateStore::owner_alive(const std::string& owner, std::optional<std::int64_t> hb) const {
  if (owner.empty()) return false;
  if (owner == owner_) return true;
  if (!hb || *hb + opts_.lease.count() <= now_ms()) return false;
  // Same host and pid namespace: a pid that no longer exists is dead even with a fresh heartbeat.
  auto at = owner.find('@');
  auto hash = owner.rfind('#');
  if (at != std::string::npos && hash != std::string::npos && hash > at &&
      owner.substr(at + 1, hash - at - 1) == host_id()) {
    try {
      long pid = std::stol(owner.substr(0, at));
      if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) == -1 && errno == ESRCH) return false;
    } catch (const std::exception&) {
    }
  }
  return true;
}

void StateStore::heartbeat(const std::string& owner) {
  std::lock_guard lk(mu_);
  db_->write_txn([&] {
    Stmt st(*db_,
            "UPDATE jobs SET heartbeat_ms=?1 WHERE owner=?2 "
            "AND state IN ('sending','submitted','completed')");
    st.bind(1, now_ms()).bind(2, owner).run();
  }, detail::Sync::normal);  // a lost heartbeat only makes the lease look older
}

void StateStore::release(const std::string& owner) {
  std::lock_guard lk(mu_);
  db_->write_txn([&] {
    Stmt unk(*db_,
             "UPDATE jobs SET state='unknown', owner=NULL, heartbeat_ms=NULL, error=?2 "
             "WHERE owner=?1 AND state='sending' AND sent_ms IS NOT NULL");
    unk.bind(1, owner)
        .bind(2, "released while sending: the submit may or may not have reached fal")
        .run();
    Stmt rel(*db_, "UPDATE jobs SET owner=NULL, heartbeat_ms=NULL WHERE owner=?1");
    rel.bind(1, owner).run();
  }, detail::Sync::normal);  // lost: the next run finds a dead owner and decides the same
}

// ---------------------------------------------------------------------------------------------
// claim

Claim StateStore::claim(const JobIntent& intent) {
  if (intent.key.empty()) throw std::invalid_argument("state store: claim without a job key");
  std::lock_guard lk(mu_);
  detail::SqliteDb& db = *db_;
  const std::string& key = intent.key;

  // A `done` row needs its files hashed, which is done outside the transaction; the decision is
  // then re-checked against the row in a second transaction.
  struct Verified {
    std::int64_t gen;
    std::optional<std::int64_t> done_ms;
    std::string problems;
  };
  std::optional<Verified> verified;

  for (int round = 0; round < 20; ++round) {
    Claim c;
    bool decided = false;
    std::optional<JobRecord> to_verify;

    auto body = [&] {
      const std::int64_t now = now_ms();
      if (!intent.script.empty() || !intent.name.empty()) {
        Stmt use(db,
                 "INSERT OR REPLACE INTO uses(script, name, key, first_ms, last_ms) VALUES "
                 "(?1, ?2, ?3, COALESCE((SELECT first_ms FROM uses WHERE script=?1 AND name=?2 "
                 "AND key=?3), ?4), ?4)");
        use.bind(1, intent.script).bind(2, intent.name).bind(3, key).bind(4, now).run();
      }

      std::optional<JobRecord> row = load_job(db, key);
      std::int64_t gen = row ? row->generation : 0;

      auto set_owner = [&](std::int64_t g) {
        Stmt st(db, "UPDATE jobs SET owner=?3, heartbeat_ms=?4 WHERE key=?1 AND gen=?2");
        st.bind(1, key).bind(2, g).bind(3, owner_).bind(4, now).run();
      };
      auto submit_new = [&](std::string reason) {
        gen += 1;
        Stmt st(db,
                "INSERT INTO jobs(key, gen, name, script, endpoint, input_json, take, cost_usd, "
                "state, owner, heartbeat_ms, created_ms, sent_ms) VALUES "
                "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'sending', ?9, ?10, ?10, NULL)");
        st.bind(1, key).bind(2, gen).bind(3, intent.name).bind(4, intent.script)
            .bind(5, intent.endpoint).bind(6, intent.input.dump()).bind(7, intent.take)
            .bind(8, intent.cost_usd).bind(9, owner_).bind(10, now).run();
        c.action = Claim::Submit;
        c.reason = std::move(reason);
        decided = true;
      };
      auto decide = [&](Claim::Action a, std::string reason) {
        c.action = a;
        c.reason = std::move(reason);
        decided = true;
      };
      auto to_unknown = [&](const std::string& why) {
        Stmt st(db,
                "UPDATE jobs SET state='unknown', owner=NULL, heartbeat_ms=NULL, error=?3 "
                "WHERE key=?1 AND gen=?2");
        st.bind(1, key).bind(2, gen).bind(3, why).run();
        row->state = JobState::Unknown;
        row->error = why;
      };

      if (verified) {
        // Second pass for a `done` row whose files were checked outside the transaction.
        if (row && row->generation == verified->gen && row->state == JobState::Done &&
            row->done_ms == verified->done_ms) {
          if (verified->problems.empty()) {
            decide(Claim::Reuse, "done; output files intact");
          } else {
            Stmt st(db,
                    "UPDATE jobs SET state='completed', owner=?3, heartbeat_ms=?4 "
                    "WHERE key=?1 AND gen=?2");
            st.bind(1, key).bind(2, gen).bind(3, owner_).bind(4, now).run();
            decide(Claim::Download, "done but " + verified->problems + "; downloading again");
          }
        }
        verified.reset();  // the row changed meanwhile: decide afresh below
        if (decided) return;
      }

      if (!row) return submit_new("new job");

      if (!intent.name.empty() || !intent.script.empty()) {
        Stmt st(db,
                "UPDATE jobs SET name=CASE WHEN ?3='' THEN name ELSE ?3 END, "
                "script=CASE WHEN ?4='' THEN script ELSE ?4 END WHERE key=?1 AND gen=?2");
        st.bind(1, key).bind(2, gen).bind(3, intent.name).bind(4, intent.script).run();
      }

      const bool mine = !row->owner.empty() && row->owner == owner_;
      const bool held = in(row->state, {JobState::Sending, JobState::Submitted, JobState::Completed});
      if (held && !mine && owner_alive(row->owner, row->heartbeat_ms)) {
        std::string ago = row->heartbeat_ms
                              ? std::to_string((now - *row->heartbeat_ms) / 1000) + " s ago"
                              : "never";
        return decide(Claim::WaitOther, std::string(to_string(row->state)) + " by " + row->owner +
                                            " (heartbeat " + ago + ")");
      }

      const bool fresh = intent.fresh && row->created_ms < run_started_ms_ && !(held && mine);
      if (fresh) {
        std::string old = "generation " + std::to_string(gen) + " (" +
                          std::string(to_string(row->state)) + ")";
        if (row->state == JobState::Sending && !row->sent_ms) {
          // Never sent: nothing can be on fal, so it is not an unknown outcome.
          Stmt st(db, "UPDATE jobs SET state='cancelled', owner=NULL, heartbeat_ms=NULL, error=?3 WHERE key=?1 AND gen=?2");
          st.bind(1, key).bind(2, gen).bind(3, "superseded by a fresh generation before it was sent").run();
        } else if (row->state == JobState::Sending)
          to_unknown("superseded by a fresh generation; its owner " + row->owner +
                     " died before fal answered, so the submit may or may not have reached fal");
        else if (held) {
          Stmt st(db, "UPDATE jobs SET owner=NULL, heartbeat_ms=NULL WHERE key=?1 AND gen=?2");
          st.bind(1, key).bind(2, gen).run();
        }
        return submit_new("fresh: " + old + " kept as history");
      }

      switch (row->state) {
        case JobState::Sending:
          if (mine) return decide(Claim::WaitOther, "this run is already submitting it");
          // Intent recorded but mark_sent() never came: the request never left that process
          // (it stopped while waiting for uploads or a slot), so submitting cannot pay twice.
          if (!row->sent_ms) {
            set_owner(gen);
            return decide(Claim::Submit, "the previous run stopped before sending it; submitting");
          }
          to_unknown("the submit was interrupted: owner " +
                     (row->owner.empty() ? std::string("(none)") : row->owner) +
                     " stopped before fal answered, so the request may or may not have reached fal");
          [[fallthrough]];
        case JobState::Unknown:
          if (intent.resubmit_unknown)
            return submit_new("resubmitting unknown generation " + std::to_string(gen) +
                              " (--resubmit-unknown)");
          return decide(Claim::Unknown, row->error.empty()
                                            ? std::string("the submit's outcome is unknown")
                                            : row->error);
        case JobState::Submitted:
          if (row->request_id.empty()) {
            to_unknown("submitted without a request id");
            return decide(Claim::Unknown, row->error);
          }
          set_owner(gen);
          return decide(Claim::Attach, mine ? "submitted by this run; attaching"
                                            : "submitted as " + row->request_id + "; attaching");
        case JobState::Completed:
          if (mine) return decide(Claim::WaitOther, "this run is already downloading it");
          set_owner(gen);
          return decide(Claim::Download, "result stored; downloading");
        case JobState::Done:
          to_verify = row;
          return;
        case JobState::Failed:
          return submit_new("generation " + std::to_string(gen) + " failed" +
                            (row->error.empty() ? std::string() : ": " + row->error) +
                            "; submitting again");
        case JobState::Cancelled:
          return submit_new("generation " + std::to_string(gen) + " was cancelled; submitting again");
      }
    };
    // No fsync: a claim changes nothing on fal. A Submit claim is made durable by mark_sent's
    // fsync, which comes before the request leaves and covers every earlier WAL frame; lost to
    // a power loss before that, nothing was sent. Any other claim, lost, is decided again the
    // same way from the row it started from.
    db.write_txn([&] {
      body();
      // Read the row back in the same transaction: what the caller sees is what was decided on.
      if (decided) c.job = *load_job(db, key);
    }, detail::Sync::normal);

    if (decided) {
      if (c.action != Claim::WaitOther) claimed_gen_[key] = c.job.generation;
      return c;
    }
    if (to_verify) {
      verified = Verified{to_verify->generation, to_verify->done_ms, verify_files(to_verify->files)};
    }
  }
  throw std::runtime_error("state store '" + db.path + "': claim of job " + short_key(key) +
                           " did not settle (the row keeps changing)");
}

// ---------------------------------------------------------------------------------------------
// transitions

std::int64_t StateStore::target_generation(const std::string& key) {
  auto it = claimed_gen_.find(key);
  if (it != claimed_gen_.end() && it->second > 0) return it->second;
  Stmt st(*db_, "SELECT MAX(gen) FROM jobs WHERE key=?1");
  st.bind(1, key);
  if (!st.step() || st.is_null(0))
    throw std::logic_error("state store: no job " + short_key(key));
  return st.i64(0);
}

void StateStore::transition(const std::string& key, const char* what, detail::Sync sync,
                            std::initializer_list<JobState> from,
                            const std::function<void(std::int64_t, const JobRecord&)>& apply) {
  std::lock_guard lk(mu_);
  db_->write_txn([&] {
    std::int64_t gen = target_generation(key);
    auto row = load_job(*db_, key, gen);
    if (!row)
      throw std::logic_error(std::string("state store: ") + what + ": no job " + short_key(key) +
                             " generation " + std::to_string(gen));
    if (!in(row->state, from))
      throw std::logic_error(std::string("state store: cannot ") + what + " job " + short_key(key) +
                             " (generation " + std::to_string(gen) + ") in state " +
                             std::string(to_string(row->state)));
    apply(gen, *row);
  }, sync);
  // A FULL commit fsyncs the WAL, and with it every batched step before it.
  if (sync == detail::Sync::full) sync_pending_ = false;
}

detail::Sync StateStore::commit_level(Durable d) {
  if (d == Durable::now) return detail::Sync::full;
  std::lock_guard lk(mu_);
  sync_pending_ = true;  // set before the commit: a failed commit only costs a spare fsync
  return detail::Sync::normal;
}

void StateStore::sync() {
  std::lock_guard lk(mu_);
  if (!sync_pending_) return;
  // The WAL through SQLite's own file object, so the VFS's sync rules apply (fdatasync on
  // Linux, F_FULLFSYNC where configured, the directory on the first sync of a new WAL).
  sqlite3_file* wal = nullptr;
  int rc = sqlite3_file_control(db_->h, "main", SQLITE_FCNTL_JOURNAL_POINTER, &wal);
  if (rc != SQLITE_OK || !wal || !wal->pMethods)
    throw std::runtime_error("state store '" + db_->path + "': no WAL file to sync");
  rc = wal->pMethods->xSync(wal, SQLITE_SYNC_NORMAL);
  if (rc != SQLITE_OK) db_->fail("fsync of the WAL", rc);
  sync_pending_ = false;
}

// The send steps act only on a row this store still drives: if it stalled past the lease,
// another process may have claimed the row, and acting on it could pay twice.
void StateStore::require_owner(const std::string& key, const JobRecord& row, const char* what) const {
  if (row.owner != owner_)
    throw ClaimLost("job " + short_key(key) + " is now driven by " + (row.owner.empty() ? std::string("nobody") : row.owner) +
                    " (this process stalled past the lease); " + what);
}

void StateStore::mark_sent(const std::string& key, Durable d) {
  transition(key, "mark_sent", commit_level(d), {JobState::Sending}, [&](std::int64_t gen, const JobRecord& row) {
    // The veto: between our claim and this send, we may have stalled past the lease, and
    // another process may have claimed the row (same generation, its owner). Both sending
    // would pay twice.
    require_owner(key, row, "not sending it from here");
    Stmt st(*db_, "UPDATE jobs SET sent_ms=?3 WHERE key=?1 AND gen=?2");
    st.bind(1, key).bind(2, gen).bind(3, now_ms()).run();
  });
}

void StateStore::mark_unknown(const std::string& key, const std::string& why) {
  transition(key, "mark_unknown", detail::Sync::normal, {JobState::Sending, JobState::Unknown},
             [&](std::int64_t gen, const JobRecord&) {
               Stmt st(*db_,
                       "UPDATE jobs SET state='unknown', error=?3, owner=NULL, heartbeat_ms=NULL "
                       "WHERE key=?1 AND gen=?2");
               st.bind(1, key).bind(2, gen).bind(3, why).run();
             });
}

void StateStore::mark_submitted(const std::string& key, const std::string& request_id, Durable d) {
  if (request_id.empty()) throw std::invalid_argument("state store: mark_submitted without a request id");
  transition(key, "mark_submitted", commit_level(d), {JobState::Sending, JobState::Unknown, JobState::Submitted},
             [&](std::int64_t gen, const JobRecord& row) {
               if (row.state == JobState::Submitted && !row.request_id.empty() &&
                   row.request_id != request_id)
                 throw std::logic_error("state store: job " + short_key(key) + " generation " +
                                        std::to_string(gen) + " is already submitted as " +
                                        row.request_id + ", not " + request_id);
               Stmt st(*db_,
                       "UPDATE jobs SET state='submitted', request_id=?3, error=NULL, "
                       "submitted_ms=COALESCE(submitted_ms, ?4), owner=?5, heartbeat_ms=?4 "
                       "WHERE key=?1 AND gen=?2");
               st.bind(1, key).bind(2, gen).bind(3, request_id).bind(4, now_ms()).bind(5, owner_).run();
             });
}

void StateStore::store_result(const std::string& key, const json& result,
                              std::optional<double> billable_units) {
  if (result.is_null()) throw std::invalid_argument("state store: store_result with a null result");
  transition(key, "store_result", detail::Sync::normal,
             {JobState::Sending, JobState::Unknown, JobState::Submitted, JobState::Completed},
             [&](std::int64_t gen, const JobRecord&) {
               std::int64_t now = now_ms();
               Stmt st(*db_,
                       "UPDATE jobs SET state='completed', result_json=?3, billable_units=?4, "
                       "error=NULL, completed_ms=?5, owner=?6, heartbeat_ms=?5 "
                       "WHERE key=?1 AND gen=?2");
               st.bind(1, key).bind(2, gen).bind(3, result.dump()).bind(4, billable_units)
                   .bind(5, now).bind(6, owner_).run();
             });
}

void StateStore::add_file(const std::string& key, const std::string& role, const fs::path& path,
                          const std::string& sha256, std::uint64_t size) {
  if (role.empty()) throw std::invalid_argument("state store: add_file without a role");
  transition(key, "add_file", detail::Sync::normal, {JobState::Completed, JobState::Done},
             [&](std::int64_t gen, const JobRecord&) {
               Stmt st(*db_,
                       "INSERT OR REPLACE INTO files(key, gen, role, path, sha256, size) "
                       "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
               st.bind(1, key).bind(2, gen).bind(3, role).bind(4, path.string()).bind(5, sha256)
                   .bind(6, static_cast<std::int64_t>(size)).run();
             });
}

void StateStore::mark_done(const std::string& key) {
  transition(key, "mark_done", detail::Sync::normal, {JobState::Completed, JobState::Done},
             [&](std::int64_t gen, const JobRecord& row) {
               if (row.result.is_null())
                 throw std::logic_error("state store: mark_done on job " + short_key(key) +
                                        " without a stored result");
               Stmt st(*db_,
                       "UPDATE jobs SET state='done', done_ms=?3, owner=NULL, heartbeat_ms=NULL "
                       "WHERE key=?1 AND gen=?2");
               st.bind(1, key).bind(2, gen).bind(3, now_ms()).run();
             });
}

void StateStore::mark_failed(const std::string& key, const std::string& error) {
  transition(key, "mark_failed", detail::Sync::normal,
             {JobState::Sending, JobState::Unknown, JobState::Submitted, JobState::Completed},
             [&](std::int64_t gen, const JobRecord&) {
               Stmt st(*db_,
                       "UPDATE jobs SET state='failed', error=?3, owner=NULL, heartbeat_ms=NULL "
                       "WHERE key=?1 AND gen=?2");
               st.bind(1, key).bind(2, gen).bind(3, error).run();
             });
}

void StateStore::unmark_sent(const std::string& key, const std::string& error) {
  transition(key, "unmark_sent", detail::Sync::normal, {JobState::Sending}, [&](std::int64_t gen, const JobRecord& row) {
    require_owner(key, row, "left as it is");
    Stmt st(*db_,
            "UPDATE jobs SET state='failed', sent_ms=NULL, error=?3, owner=NULL, heartbeat_ms=NULL "
            "WHERE key=?1 AND gen=?2");
    st.bind(1, key).bind(2, gen).bind(3, error).run();
  });
}

void StateStore::clear_sent(const std::string& key) {
  transition(key, "clear_sent", detail::Sync::normal, {JobState::Sending}, [&](std::int64_t gen, const JobRecord& row) {
    require_owner(key, row, "left as it is");
    Stmt st(*db_, "UPDATE jobs SET sent_ms=NULL WHERE key=?1 AND gen=?2");
    st.bind(1, key).bind(2, gen).run();
  });
}

void StateStore::mark_cancelled(const std::string& key) {
  transition(key, "mark_cancelled", detail::Sync::normal, {JobState::Sending, JobState::Unknown, JobState::Submitted},
             [&](std::int64_t gen, const JobRecord&) {
               Stmt st(*db_,
                       "UPDATE jobs SET state='cancelled', owner=NULL, heartbeat_ms=NULL "
                       "WHERE key=?1 AND gen=?2");
               st.bind(1, key).bind(2, gen).run();
             });
}

// ---------------------------------------------------------------------------------------------
// queries

std::optional<JobRecord> StateStore::get(const std::string& key) {
  std::lock_guard lk(mu_);
  std::optional<JobRecord> r;
  db_->read_txn([&] { r = load_job(*db_, key); });
  return r;
}

std::vector<JobRecord> StateStore::history(const std::string& key) {
  std::lock_guard lk(mu_);
  std::vector<JobRecord> out;
  db_->read_txn([&] {
    Stmt st(*db_, std::string("SELECT ") + kJobCols + " FROM jobs WHERE key=?1 ORDER BY gen");
    st.bind(1, key);
    while (st.step()) out.push_back(read_job(st));
    for (auto& r : out) r.files = load_files(*db_, r.key, r.generation);
  });
  return out;
}

std::vector<JobRecord> StateStore::list(const std::optional<std::string>& script) {
  std::lock_guard lk(mu_);
  std::string cols;
  {
    // "j." prefix on every column
    std::string all = kJobCols;
    size_t pos = 0;
    while (pos < all.size()) {
      size_t comma = all.find(',', pos);
      std::string c = all.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
      c.erase(0, c.find_first_not_of(' '));
      cols += (cols.empty() ? "j." : ", j.") + c;
      if (comma == std::string::npos) break;
      pos = comma + 1;
    }
  }
  std::vector<JobRecord> out;
  db_->read_txn([&] {
    std::string sql;
    if (script)
      sql = "SELECT " + cols +
            " FROM jobs j JOIN (SELECT key, MIN(first_ms) AS f FROM uses WHERE script=?1 "
            "GROUP BY key) u ON u.key=j.key "
            "WHERE j.gen=(SELECT MAX(gen) FROM jobs WHERE key=j.key) ORDER BY u.f, j.key";
    else
      sql = "SELECT " + cols +
            " FROM jobs j WHERE j.gen=(SELECT MAX(gen) FROM jobs WHERE key=j.key) "
            "ORDER BY (SELECT MIN(created_ms) FROM jobs WHERE key=j.key), j.key";
    Stmt st(*db_, sql);
    if (script) st.bind(1, *script);
    while (st.step()) out.push_back(read_job(st));
    for (auto& r : out) r.files = load_files(*db_, r.key, r.generation);
  });
  return out;
}

std::optional<JobRecord> StateStore::find_by_name(const std::string& name,
                                                  const std::optional<std::string>& script) {
  std::lock_guard lk(mu_);
  std::optional<JobRecord> r;
  db_->read_txn([&] {
    // The newest use: INSERT OR REPLACE gives a re-used (script, name, key) a new rowid.
    Stmt st(*db_, script ? "SELECT key FROM uses WHERE name=?1 AND script=?2 "
                           "ORDER BY last_ms DESC, rowid DESC LIMIT 1"
                         : "SELECT key FROM uses WHERE name=?1 ORDER BY last_ms DESC, rowid DESC "
                           "LIMIT 1");
    st.bind(1, name);
    if (script) st.bind(2, *script);
    if (st.step()) r = load_job(*db_, st.text(0));
  });
  return r;
}

int StateStore::gc() {
  std::lock_guard lk(mu_);
  int removed = 0;
  db_->write_txn([&] {
    removed = 0;
    std::vector<std::pair<std::string, std::int64_t>> done;
    {
      Stmt st(*db_, "SELECT key, gen FROM jobs WHERE state='done'");
      while (st.step()) done.emplace_back(st.text(0), st.i64(1));
    }
    for (const auto& [key, gen] : done) {
      auto files = load_files(*db_, key, gen);
      if (files.empty()) continue;
      bool any = std::any_of(files.begin(), files.end(), [](const FileRecord& f) {
        std::error_code ec;
        return fs::exists(f.path, ec);
      });
      if (any) continue;
      Stmt df(*db_, "DELETE FROM files WHERE key=?1 AND gen=?2");
      df.bind(1, key).bind(2, gen).run();
      Stmt dj(*db_, "DELETE FROM jobs WHERE key=?1 AND gen=?2 AND state='done'");
      dj.bind(1, key).bind(2, gen).run();
      ++removed;
    }
    Stmt du(*db_, "DELETE FROM uses WHERE key NOT IN (SELECT key FROM jobs)");
    du.run();
  }, detail::Sync::normal);  // lost: the next gc finds the same rows
  return removed;
}

}  // namespace kr::run
