#include "lua/host.h"

#include <filesystem>
#include <lua.hpp>
#include <stdexcept>

namespace kr::lua {

int open_kling(lua_State* L, LuaHost& host);  // wrap_kling.cpp

namespace {
const char* kHostKey = "klingrun.host";

// Where `require "kling.storyboard"` finds lua-lib/: $KLINGRUN_LUA_PATH, next to the binary,
// the install prefix, then the source tree it was built from.
std::string lua_lib_path() {
  std::vector<std::string> dirs;
  if (const char* env = std::getenv("KLINGRUN_LUA_PATH")) dirs.push_back(env);
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    dirs.push_back((exe.parent_path() / "../lua-lib").lexically_normal().string());
    dirs.push_back((exe.parent_path() / "../share/klingrun/lua-lib").lexically_normal().string());
  }
#ifdef KLINGRUN_LUA_LIB_DIR
  dirs.push_back(KLINGRUN_LUA_LIB_DIR);
#endif
  std::string path;
  for (auto& d : dirs) {
    if (!std::filesystem::exists(d + "/kling", ec)) continue;
    path += d + "/?.lua;" + d + "/?/init.lua;";
  }
  return path;
}
}  // namespace

LuaHost::LuaHost(run::Runner& runner, lua_State* L) : runner_(runner), L_(L), owns_state_(L == nullptr) {
  if (owns_state_) {
    L_ = luaL_newstate();
    if (!L_) throw std::runtime_error("cannot create a Lua state (out of memory)");
    luaL_openlibs(L_);
  }
  lua_pushlightuserdata(L_, this);
  lua_setfield(L_, LUA_REGISTRYINDEX, kHostKey);
}

LuaHost::~LuaHost() {
  if (owns_state_) {
    lua_close(L_);
  } else {
    for (auto& t : tasks_) {
      luaL_unref(L_, LUA_REGISTRYINDEX, t->ref);
      luaL_unref(L_, LUA_REGISTRYINDEX, t->results_ref);
    }
    lua_pushnil(L_);
    lua_setfield(L_, LUA_REGISTRYINDEX, kHostKey);
  }
}

LuaHost* LuaHost::from(lua_State* L) {
  lua_getfield(L, LUA_REGISTRYINDEX, kHostKey);
  auto* h = static_cast<LuaHost*>(lua_touserdata(L, -1));
  lua_pop(L, 1);
  return h;
}

void LuaHost::open_module(bool leave_on_stack) {
  lua_getglobal(L_, "package");
  lua_getfield(L_, -1, "path");
  std::string path = lua_lib_path() + lua_tostring(L_, -1);
  lua_pop(L_, 1);
  lua_pushstring(L_, path.c_str());
  lua_setfield(L_, -2, "path");
  lua_pop(L_, 1);

  open_kling(L_, *this);  // pushes the module table
  lua_getglobal(L_, "package");
  lua_getfield(L_, -1, "loaded");
  lua_pushvalue(L_, -3);
  lua_setfield(L_, -2, "kling");
  lua_pop(L_, 2);
  lua_pushvalue(L_, -1);
  lua_setglobal(L_, "kling");
  if (!leave_on_stack) lua_pop(L_, 1);
}

bool LuaHost::start_script(const std::string& path, const std::vector<std::string>& args) {
  lua_createtable(L_, static_cast<int>(args.size()), 1);
  lua_pushstring(L_, path.c_str());
  lua_rawseti(L_, -2, 0);
  for (size_t i = 0; i < args.size(); ++i) {
    lua_pushstring(L_, args[i].c_str());
    lua_rawseti(L_, -2, static_cast<int>(i + 1));
  }
  lua_setglobal(L_, "arg");

  if (luaL_loadfile(L_, path.c_str()) != 0) {
    fail(lua_tostring(L_, -1));
    lua_pop(L_, 1);
    return false;
  }
  for (auto& a : args) lua_pushstring(L_, a.c_str());  // the script's `...`
  spawn(L_, lua_gettop(L_) - static_cast<int>(args.size()), static_cast<int>(args.size()));
  lua_pop(L_, 2);  // task handle and the chunk
  return true;
}

int LuaHost::spawn(lua_State* L, int fn_index, int nargs) {
  fn_index = fn_index < 0 ? lua_gettop(L) + fn_index + 1 : fn_index;
  auto task = std::make_unique<Task>();
  task->id = static_cast<int>(tasks_.size()) + 1;
  task->co = lua_newthread(L);
  task->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushvalue(L, fn_index);
  for (int i = 1; i <= nargs; ++i) lua_pushvalue(L, fn_index + i);
  lua_xmove(L, task->co, nargs + 1);
  Task* t = task.get();
  tasks_.push_back(std::move(task));
  ready_.push_back({t, [nargs](lua_State*) { return nargs; }});
  lua_pushinteger(L, t->id);
  return 1;
}

LuaHost::Task* LuaHost::current_task(lua_State* co) const {
  for (auto& t : tasks_)
    if (t->co == co && !t->finished) return t.get();
  return nullptr;
}

void LuaHost::wake(Task* t, std::function<int(lua_State*)> push_results) { ready_.push_back({t, std::move(push_results)}); }

void LuaHost::resume(Task& t, int nargs) {
  int status = lua_resume(t.co, nargs);
  if (status == LUA_YIELD) return;  // parked on a job or a task; a waiter will wake it
  if (status == 0) {
    int n = lua_gettop(t.co);
    lua_createtable(t.co, n, 1);
    for (int i = 1; i <= n; ++i) {
      lua_pushvalue(t.co, i);
      lua_rawseti(t.co, -2, i);
    }
    lua_pushinteger(t.co, n);
    lua_setfield(t.co, -2, "n");
    lua_xmove(t.co, L_, 1);
    t.results_ref = luaL_ref(L_, LUA_REGISTRYINDEX);
  } else {
    const char* msg = lua_tostring(t.co, -1);
    t.error = msg ? msg : "error object is not a string";
    fail(t.error);
  }
  t.finished = true;
  auto waiters = std::move(t.waiters);
  t.waiters.clear();
  for (auto& w : waiters) w();
}

void LuaHost::fail(const std::string& message) {
  if (error_) return;  // the first error is the one the user needs
  error_ = message;
  auto it = codes_.find(message);
  // error(msg, level) puts the caller's "file:line: " in front of a classified message when the
  // raising frame is not a tail call (e.g. kling.wait_all): match the message after it.
  for (auto c = codes_.begin(); it == codes_.end() && c != codes_.end(); ++c) {
    const std::string& m = c->first;
    if (message.size() >= m.size() + 2 && message.compare(message.size() - m.size(), m.size(), m) == 0 &&
        message.compare(message.size() - m.size() - 2, 2, ": ") == 0)
      it = c;
  }
  error_code_ = it == codes_.end() ? exit_script : it->second;
  // Stop starting jobs; those already on fal finish and are kept (they are paid for).
  runner_.stop_starting();
}

void LuaHost::tick(int max_wait_ms) {
  runner_.tick(ready_.empty() ? max_wait_ms : 0);
  while (!ready_.empty()) {
    auto batch = std::move(ready_);
    ready_.clear();
    for (auto& [task, push] : batch) {
      if (task->finished) continue;
      resume(*task, push(task->co));
    }
  }
}

bool LuaHost::done() const {
  if (!ready_.empty() || !runner_.idle()) return false;
  for (auto& t : tasks_)
    if (!t->finished && !error_) return false;
  return true;
}

void LuaHost::block_until(const std::function<bool()>& ready) {
  while (!ready()) {
    if (ready_.empty() && runner_.idle())
      throw std::runtime_error("nothing left that could finish this wait (a task waits for itself, or the run was stopped)");
    tick(50);
  }
}

}  // namespace kr::lua
