-- Runs a klingrun script with plain luajit and the pure-Lua stub module (offline, nothing sent):
--   luajit tests/lua/run_with_stub.lua scripts/examples/storyboard_60s.lua [script args...]
local root = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "../../"
package.path = root .. "lua-lib/?.lua;" .. root .. "lua-lib/?/init.lua;" .. root .. "tests/lua/?.lua;" .. package.path
kling = require "stub_kling"
package.loaded.kling = kling
local script = assert(arg[1], "usage: luajit tests/lua/run_with_stub.lua SCRIPT [ARGS...]")
local script_args = { [0] = script }
for i = 2, #arg do script_args[i - 1] = arg[i] end
arg = script_args
local chunk = assert(loadfile(script))
-- Scripts run as a coroutine under klingrun; do the same here.
local co = coroutine.create(chunk)
local ok, err = coroutine.resume(co, unpack(script_args))
if not ok then
  io.stderr:write(debug.traceback(co, tostring(err)), "\n")
  os.exit(1)
end
