-- Kling 3.0 Pro image-to-video with two named elements: a character and a prop stay the same
-- from shot to shot. Prompts say @mara and @drone; klingrun builds `elements` and rewrites the
-- names to @Element1 / @Element2. An image element is a frontal picture plus 1–3 references.
-- Run:  klingrun scripts/examples/i2v_elements.lua
local kling = require "kling"

kling.element{
  name = "mara",
  frontal = "https://example.com/mara_front.png",
  references = { "https://example.com/mara_left.png", "https://example.com/mara_back.png" },
}
kling.element{
  name = "drone",
  frontal = "https://example.com/drone_front.png",
  references = { "https://example.com/drone_top.png" },
}

local start = "https://example.com/rooftop_night.png"   -- the first frame; it sets the aspect ratio

-- One prompt...
local single = kling.submit{
  name = "rooftop_launch",
  endpoint = "v3/pro/i2v",
  start_image_url = start,
  prompt = "@mara kneels on the wet rooftop and switches on @drone; its rotors spin up.",
  duration = 5,
}

-- ...and the same pair across two shots, in parallel.
local shots = kling.submit{
  name = "rooftop_chase",
  endpoint = "v3/pro/i2v",
  start_image_url = start,
  multi_prompt = {
    { prompt = "@drone lifts off and hovers at eye level with @mara.", duration = 4 },
    { prompt = "@mara points at the skyline; @drone races off between the towers.", duration = 6 },
  },
  duration = 10,
}

for _, r in ipairs(kling.wait_all{ single, shots }) do
  print(string.format("%-16s %d element(s)  $%.3f", r.name, r.input and r.input.elements and #r.input.elements or 0,
    r.cost_usd or 0))
end
