-- Three shots in one Kling 3.0 generation (multi_prompt); the total duration is derived from
-- the shots, because fal wants the shot durations to add up to `duration` (≤ 15 s).
-- Run:  klingrun scripts/examples/multi_shot.lua
local kling = require "kling"

local shots = {
  { prompt = "Wide shot: a fox trots across a snowy meadow at dawn.", duration = 4 },
  { prompt = "Close-up: the fox stops and pricks up its ears.", duration = 3 },
  { prompt = "The fox pounces into the snow, powder bursting around it.", duration = 5 },
}

local total = 0
for _, shot in ipairs(shots) do total = total + shot.duration end

local result = kling.generate{
  name = "fox_in_snow",
  endpoint = "v3/pro/t2v",
  multi_prompt = shots,
  duration = total,                 -- 12
  aspect_ratio = "16:9",
}

print(string.format("%s: %d shots, %d s, $%.3f", result.name, #shots, total, result.cost_usd or 0))
