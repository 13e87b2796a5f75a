-- Runs under plain LuaJIT with kling.so on package.cpath: the same API outside klingrun.
local kling = require "kling"
assert(kling == require "kling", "require twice gives the same module")
assert(kling.offline, "no FAL_KEY: offline backend")
local r = kling.generate{ prompt = "a lighthouse in a storm", duration = 5, name = "host_one" }
assert(r.cost_usd == 0.84, "cost " .. tostring(r.cost_usd))
assert(r.input.duration == "5", "normalized duration")
local ok, err = pcall(kling.generate, { prompt = "x", seed = 1 })
assert(not ok and err:find("seed", 1, true) and err:find("host.lua", 1, true), "error names field and line: " .. tostring(err))
local t = kling.spawn(function(p) return kling.generate{ prompt = p }.name end, "spawned shot")
kling.run()
assert(type(t:wait()) == "string")
local storyboard = require "kling.storyboard"
local specs = storyboard.pack({ { prompt = "a", seconds = 5 }, { prompt = "b", seconds = 5 } })
assert(#specs == 1 and specs[1].duration == "10")
print("1 passed, 0 failed")
