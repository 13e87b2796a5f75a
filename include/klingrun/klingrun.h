// klingrun's C++ embedding API: a game or tool engine links klingrun_lua and drives a Session
// from its own frame loop. Nothing here blocks: tick() does what is ready and returns.
//
//   klingrun::Session s({.out = "renders", .backend = "fal"});
//   s.run_script("shots.lua");                 // or s.submit(request) from C++
//   while (!s.done()) { s.tick(0); render_frame(); }
//   if (s.error()) log(*s.error());
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/request.h"
#include "run/runner.h"

struct lua_State;

namespace klingrun {

struct Options {
  std::string out = "out";            // outputs go to <out>/<script>/
  std::string script = "embedded";    // names outputs and default job names (run_script uses the file's)
  std::string backend;                // "", "offline" or "fal"; "" = fal when FAL_KEY is set
  int concurrency = 2;
  std::optional<double> budget;       // USD for this session
  std::string state_dir;              // default <out>/.klingrun
  std::string queue_url, rest_url;    // default FAL_QUEUE_URL / FAL_REST_URL / fal's hosts
  std::string prices_file;            // replaces the built-in price table
  bool fresh = false, resubmit_unknown = false;
  lua_State* lua = nullptr;           // use this Lua state (borrowed) instead of creating one
};

class Session {
 public:
  explicit Session(Options opts = {});
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Starts a Lua script as the session's main coroutine (returns false on a load error; see
  // error()). The script name becomes the output folder.
  bool run_script(const std::string& path, const std::vector<std::string>& args = {});
  // Queues a request from C++ (validated, priced, budgeted). Throws kr::run::SubmitRefused.
  kr::run::Job& submit(kr::Request request);

  void tick(int max_wait_ms = 0);     // one step; never blocks longer than max_wait_ms
  bool done() const;                  // no coroutine and no job left
  const std::optional<std::string>& error() const;  // the first uncaught script error
  int exit_code() const;              // as the CLI's: 0, 1, 3, 4 (README "Exit codes")

  void interrupt(bool cancel_on_fal); // stop starting jobs; optionally cancel those on fal
  void finish();                      // release the store (jobs still on fal are attached next run) and write plan/manifest

  lua_State* lua();
  kr::run::Runner& runner();
  const std::string& backend_name() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace klingrun
