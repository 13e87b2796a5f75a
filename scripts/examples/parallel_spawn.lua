-- Two independent pipelines side by side with kling.spawn: each runs top to bottom with
-- blocking calls (a wide shot, then a close-up that reuses the wide shot's prompt), while the
-- runner drives both at once. No threads: each spawned function is its own coroutine.
-- Run:  klingrun scripts/examples/parallel_spawn.lua
local kling = require "kling"

local function pipeline(subject)
  local wide = kling.generate{
    name = subject.name .. "_wide", endpoint = "v3/pro/t2v", duration = 5,
    prompt = "Wide shot: " .. subject.scene,
  }
  local close = kling.generate{
    name = subject.name .. "_close", endpoint = "v3/pro/t2v", duration = 5,
    prompt = "Close-up, same scene: " .. subject.detail,
  }
  print(string.format("%s done: %s + %s, $%.3f", subject.name, wide.name, close.name,
    (wide.cost_usd or 0) + (close.cost_usd or 0)))
end

kling.spawn(pipeline, { name = "forest", scene = "a misty pine forest at dawn, a deer steps out.",
                        detail = "dew drops on the deer's nose, breath steaming." })
kling.spawn(pipeline, { name = "harbor", scene = "a fishing harbor at noon, boats rocking.",
                        detail = "a fisherman's hands coiling a wet rope." })
