-- One Kling 3.0 Pro text-to-video shot: five seconds of a lighthouse at dusk, with sound.
-- Run:  klingrun scripts/examples/t2v_single.lua ["your own prompt"]
local kling = require "kling"

local prompt = arg and arg[1] or
  "A lighthouse on a cliff at dusk, waves crashing below, the lamp flickers on, gulls cry."

local result = kling.generate{
  name = "lighthouse",
  endpoint = "v3/pro/t2v",          -- fal-ai/kling-video/v3/pro/text-to-video
  prompt = prompt,
  duration = 5,                     -- seconds (sent to fal as the string "5")
  aspect_ratio = "16:9",
  generate_audio = true,
}

local video = result.video or {}
print(string.format("%s: $%.3f  %s%s", result.name, result.cost_usd or 0,
  video.path or video.url or "(no file)", result.offline and "  [offline]" or ""))
