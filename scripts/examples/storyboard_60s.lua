-- A 60-second scene as a storyboard: 14 shots with camera moves and dialogue, packed by
-- kling.storyboard into as few ≤ 15 s multi-shot generations as possible and run in parallel.
-- Run:  klingrun scripts/examples/storyboard_60s.lua [--plan]     (--plan: print the packing and price only)
local kling = require "kling"
local storyboard = require "kling.storyboard"
local dialogue = require "kling.dialogue"
local camera = require "kling.camera"

local say = dialogue.line                    -- say("Mara", "whispering", "text") -> [Mara, whispering]: "text"

local shots = {
  { seconds = 5, camera = { camera.establishing, camera.drone }, prompt = "Rain over a neon city at night." },
  { seconds = 4, camera = { camera.wide, camera.tracking },      prompt = "Mara runs down a wet alley." },
  { seconds = 3, camera = { camera.medium, camera.static },      prompt = "She stops at a steel door." },
  { seconds = 3, camera = { camera.insert, camera.push_in },     prompt = "Her fingers on the keypad." },
  { seconds = 4, camera = { camera.close_up },                   prompt = "Mara glances back over her shoulder.",
    dialogue = say("Mara", "whispering", "come on, come on") },
  { seconds = 5, camera = { camera.over_the_shoulder, camera.rack_focus }, prompt = "Joe steps out of the shadows.",
    dialogue = say("Joe", "calm", "you're late") },
  { seconds = 4, camera = { camera.two_shot, camera.orbit },     prompt = "Mara turns to face him.",
    dialogue = { { "Mara", "angry", "you said midnight" }, { "Joe", "it is midnight" } } },
  { seconds = 3, camera = { camera.extreme_close_up },           prompt = "The lock light turns green." },
  { seconds = 5, camera = { camera.wide, camera.steadicam },     prompt = "They slip into a dark server room." },
  { seconds = 4, camera = { camera.low_angle, camera.pan_right }, prompt = "Blue lights blink along the racks." },
  { seconds = 4, camera = { camera.close_up, camera.handheld },  prompt = "Joe plugs a drive into a port.",
    dialogue = say("Joe", "tense", "ninety seconds") },
  { seconds = 5, camera = { camera.insert, camera.zoom_in },     prompt = "A progress bar crawls across a screen." },
  { seconds = 5, camera = { camera.pov, camera.dolly_in },       prompt = "Footsteps echo down the corridor.",
    dialogue = say("Guard", "shouting", "who's there?") },
  { seconds = 6, camera = { camera.medium, camera.dolly_zoom },  prompt = "Mara and Joe freeze, lit by the screen." },
}

local opts = { name = "heist", endpoint = "v3/pro/t2v", aspect_ratio = "16:9", generate_audio = true }

if arg and arg[1] == "--plan" then
  local specs, dollars = storyboard.plan(shots, opts)
  for _, spec in ipairs(specs) do
    print(string.format("%s  %2s s  %d shot(s)", spec.name, spec.duration, spec.multi_prompt and #spec.multi_prompt or 1))
  end
  print(string.format("%d generations, $%.2f", #specs, dollars))
  return
end

local results = storyboard.run(shots, opts)
local total = 0
for _, r in ipairs(results) do
  total = total + (r.cost_usd or 0)
  print(string.format("%s  $%.3f  %s", r.name, r.cost_usd or 0, r.video and (r.video.path or r.video.url) or ""))
end
print(string.format("%d generations, 60 s, $%.2f", #results, total))
