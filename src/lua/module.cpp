// `require "kling"` from any LuaJIT host (kling.so): one Session per Lua state, configured from
// the environment (FAL_KEY → fal, else offline; KLINGRUN_OUT, default "out"), living as long as
// the state. Blocking calls made from the host's main thread drive the loop themselves;
// kling.run() finishes what kling.spawn started.
#include <lua.hpp>

#include <cstdlib>
#include <string>

#include "klingrun/klingrun.h"

namespace {

const char* kSessionKey = "klingrun.session";

int session_gc(lua_State* L) {
  auto** s = static_cast<klingrun::Session**>(lua_touserdata(L, 1));
  if (s && *s) {
    delete *s;
    *s = nullptr;
  }
  return 0;
}

}  // namespace

extern "C" int klingrun_open_module(lua_State* L) {
  lua_getfield(L, LUA_REGISTRYINDEX, kSessionKey);
  bool exists = !lua_isnil(L, -1);
  lua_pop(L, 1);
  if (exists) {  // a second require in the same state: the same module
    lua_getglobal(L, "kling");
    return 1;
  }
  std::string message;
  try {
    klingrun::Options opts;
    opts.lua = L;
    opts.script = "lua";
    if (const char* out = std::getenv("KLINGRUN_OUT")) opts.out = out;
    auto* session = new klingrun::Session(opts);
    auto** box = static_cast<klingrun::Session**>(lua_newuserdata(L, sizeof(klingrun::Session*)));
    *box = session;
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, session_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, kSessionKey);
    session->runner();  // builds the runner and opens the module (global `kling`)
    lua_getglobal(L, "kling");
    return 1;
  } catch (const std::exception& e) {
    message = std::string("kling: ") + e.what();
  }
  lua_pushstring(L, message.c_str());
  return lua_error(L);
}
