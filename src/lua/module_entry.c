/* Entry point of kling.so, so `require "kling"` works from any LuaJIT host. */
#include <lua.h>
int klingrun_open_module(lua_State* L);
int luaopen_kling(lua_State* L) { return klingrun_open_module(L); }
