// LuaHost runs scripts as coroutines over a Runner: a blocking call (generate, wait) submits and
// yields; tick() drives the runner and resumes each coroutine when its job ends. A call made
// outside a host coroutine (a plain `require "kling"` host, or the user's own coroutine) blocks
// by ticking until its job is done.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "run/runner.h"

struct lua_State;

namespace kr::lua {

// Exit codes of a run (README "Exit codes").
enum ExitCode { exit_ok = 0, exit_script = 1, exit_usage = 2, exit_failed = 3, exit_budget = 4, exit_interrupted = 130 };

class LuaHost {
 public:
  // `L` is borrowed when given (module mode), else the host creates and owns a state.
  LuaHost(run::Runner& runner, lua_State* L = nullptr);
  ~LuaHost();

  lua_State* state() const { return L_; }
  run::Runner& runner() { return runner_; }

  // Opens the `kling` module into the state (global `kling` and package.loaded.kling) and puts
  // lua-lib/ on package.path. Leaves the module table on the stack when `leave_on_stack`.
  void open_module(bool leave_on_stack = false);
  // Loads a script and starts it as the main task. Returns false (and sets error()) on a syntax
  // or load error.
  bool start_script(const std::string& path, const std::vector<std::string>& args);

  // One step: drive the runner for at most max_wait_ms, then resume tasks whose jobs ended.
  void tick(int max_wait_ms);
  // No task left and no job pending.
  bool done() const;
  // First uncaught error of any task: message and the exit code it maps to.
  const std::optional<std::string>& error() const { return error_; }
  int error_code() const { return error_code_; }

  // --- used by the wrap_kling functions
  struct Task;
  Task* current_task(lua_State* co) const;
  Task* task_by_id(int id) const { return id >= 1 && id <= static_cast<int>(tasks_.size()) ? tasks_[id - 1].get() : nullptr; }
  int spawn(lua_State* L, int fn_index, int nargs);  // pushes the task handle
  // Remembers which exit code an error message raised by kling maps to (budget → 4, ...).
  void classify(const std::string& message, int code) { codes_[message] = code; }
  void block_until(const std::function<bool()>& ready);
  void wake(Task* t, std::function<int(lua_State*)> push_results);
  static LuaHost* from(lua_State* L);

 private:
  void resume(Task& t, int nargs);
  void fail(const std::string& message);

  run::Runner& runner_;
  lua_State* L_;
  bool owns_state_;
  std::vector<std::unique_ptr<Task>> tasks_;
  std::vector<std::pair<Task*, std::function<int(lua_State*)>>> ready_;
  std::map<std::string, int> codes_;
  std::optional<std::string> error_;
  int error_code_ = exit_ok;
};

struct LuaHost::Task {
  int id = 0;
  lua_State* co = nullptr;
  int ref = -2;               // registry ref keeping the coroutine alive (LUA_NOREF = -2)
  bool finished = false;
  std::string error;
  int results_ref = -2;       // registry ref of a table holding the return values
  std::vector<std::function<void()>> waiters;
};

}  // namespace kr::lua
