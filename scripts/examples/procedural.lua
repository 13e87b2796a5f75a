-- Variations by the table: every character in every setting, two takes each, all submitted
-- at once and collected in order. Names become output file names; `take` asks for another
-- variant of the same request (an identical request without a new take is reused from the
-- state store, not paid for twice).
-- Run:  klingrun scripts/examples/procedural.lua [takes]
local kling = require "kling"

local takes = tonumber(arg and arg[1]) or 2

local characters = {
  knight = "an old knight in dented armour",
  robot  = "a small rusty robot with one blinking eye",
}
local settings = {
  market = "walks through a crowded night market, lanterns swaying",
  desert = "trudges across red dunes under a white sun",
  harbor = "waits on a foggy harbor pier as a bell rings",
}

local jobs = {}
for _, who in ipairs{ "knight", "robot" } do               -- fixed order, stable names
  for _, where in ipairs{ "market", "desert", "harbor" } do
    for take = 1, takes do
      jobs[#jobs + 1] = kling.submit{
        name = string.format("%s_%s_take%d", who, where, take),
        take = take,
        endpoint = "v3/standard/t2v",                      -- cheaper tier for exploring
        prompt = characters[who] .. " " .. settings[where] .. ".",
        duration = 5,
        aspect_ratio = "9:16",
        generate_audio = false,
      }
    end
  end
end

local total = 0
for _, r in ipairs(kling.wait_all(jobs)) do
  total = total + (r.cost_usd or 0)
  print(string.format("%-22s $%.3f", r.name, r.cost_usd or 0))
end
print(string.format("%d videos, $%.2f", #jobs, total))
