-- Camera keywords for Kling prompts: named framings and movements (each a short phrase Kling
-- understands, e.g. camera.dolly_in == "slow dolly in") and camera.shot(), which composes a
-- shot sentence such as "Close-up, slow dolly in. Mara checks her watch."
--
--   local camera = require "kling.camera"
--   camera.shot(camera.wide, camera.crane_up, "the city wakes up")
--   camera.shot("close_up", "handheld", "Mara runs")      -- keys work too
--   camera.nope                                           -- error: lists the valid keys
local util = require "kling.util"

local camera = {}

-- What the subject fills in the frame, and the angle.
local framings = {
  extreme_close_up  = "extreme close-up",
  close_up          = "close-up",
  medium_close_up   = "medium close-up",
  medium            = "medium shot",
  medium_wide       = "medium wide shot",
  full              = "full shot",
  wide              = "wide shot",
  extreme_wide      = "extreme wide shot",
  establishing      = "establishing shot",
  over_the_shoulder = "over-the-shoulder shot",
  pov               = "point-of-view shot",
  two_shot          = "two-shot",
  insert            = "insert shot",
  low_angle         = "low-angle shot",
  high_angle        = "high-angle shot",
  birds_eye         = "bird's-eye view",
  dutch_angle       = "dutch angle",
  aerial            = "aerial shot",
}

-- How the camera moves.
local movements = {
  static      = "static camera",
  dolly_in    = "slow dolly in",
  dolly_out   = "slow dolly out",
  push_in     = "slow push in",
  pull_back   = "camera pulls back",
  pan_left    = "camera pans left",
  pan_right   = "camera pans right",
  tilt_up     = "camera tilts up",
  tilt_down   = "camera tilts down",
  truck_left  = "camera trucks left",
  truck_right = "camera trucks right",
  crane_up    = "crane shot rising up",
  crane_down  = "crane shot descending",
  orbit       = "camera orbits around the subject",
  tracking    = "tracking shot following the subject",
  handheld    = "handheld camera with slight shake",
  steadicam   = "smooth steadicam",
  zoom_in     = "slow zoom in",
  zoom_out    = "slow zoom out",
  whip_pan    = "fast whip pan",
  dolly_zoom  = "dolly zoom",
  rack_focus  = "rack focus",
  drone       = "sweeping drone shot",
  fpv         = "fast FPV drone flythrough",
}

-- phrase -> key, so a phrase passed back in (camera.close_up) is recognised as known.
local phrases = {}
for k, v in pairs(framings) do phrases[v] = k end
for k, v in pairs(movements) do phrases[v] = k end

for k, v in pairs(framings) do rawset(camera, k, v) end
for k, v in pairs(movements) do rawset(camera, k, v) end

local function all_keys()
  local keys = {}
  for k in pairs(framings) do keys[#keys + 1] = k end
  for k in pairs(movements) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

local function valid_list()
  return "framings: " .. table.concat(util.sorted_keys(framings), ", ")
      .. "; movements: " .. table.concat(util.sorted_keys(movements), ", ")
end

-- Resolves a framing/movement argument: a key ("dolly_in") gives its phrase; a known phrase or
-- free text with a space, hyphen or punctuation ("slow arc around the car") is used as written.
-- A bare identifier that is not a key ("doly_in") is a typo and raises an error listing keys.
local function phrase_of(v, what)
  if v == nil or v == false or v == "" then return nil end
  if type(v) ~= "string" then
    util.fail("camera.shot: %s must be a string (a camera key or phrase), got %s", what, type(v))
  end
  v = util.squish(v)
  if framings[v] then return framings[v] end
  if movements[v] then return movements[v] end
  if phrases[v] then return v end
  if v:match("^[%w_]+$") then
    util.fail("camera: unknown %s %s; valid %s", what, util.show(v), valid_list())
  end
  return v
end

local function upper_first(s)
  return (s:gsub("^%l", string.upper))
end

local function shot(framing, movement, text)
  local parts = {}
  parts[#parts + 1] = phrase_of(framing, "framing")
  parts[#parts + 1] = phrase_of(movement, "movement")
  if text ~= nil and type(text) ~= "string" then
    util.fail("camera.shot: text must be a string, got %s", type(text))
  end
  text = text and util.trim(text) or ""
  if #parts == 0 then
    if text == "" then util.fail("camera.shot: give a framing, a movement or some text") end
    return text
  end
  local lead = upper_first(table.concat(parts, ", "))
  if text == "" then return lead .. "." end
  return lead .. ". " .. text
end

--- camera.shot(framing, movement, text) -> "Framing, movement. text" (either part may be nil).
function camera.shot(framing, movement, text)
  return (util.guard(2, shot, framing, movement, text))
end

--- camera.phrase(key_or_phrase) -> the phrase for a key; known phrases and free text pass through.
function camera.phrase(v)
  return (util.guard(2, function()
    if not util.nonempty_string(v) then util.fail("camera.phrase: expected a key or phrase") end
    return phrase_of(v, "key")
  end))
end

--- camera.is_key(name) -> true when `name` is a built-in or defined framing/movement key.
function camera.is_key(name)
  return framings[name] ~= nil or movements[name] ~= nil
end

--- camera.keys() -> sorted list of every framing and movement key.
function camera.keys() return all_keys() end

--- camera.framings() / camera.movements() -> sorted key lists of one kind.
function camera.framings() return util.sorted_keys(framings) end
function camera.movements() return util.sorted_keys(movements) end

--- camera.define(kind, key, phrase) adds a custom key; kind is "framing" or "movement".
function camera.define(kind, key, phrase)
  return (util.guard(2, function()
    local into = (kind == "framing" and framings) or (kind == "movement" and movements)
    if not into then util.fail("camera.define: kind must be \"framing\" or \"movement\", got %s", util.show(kind)) end
    if type(key) ~= "string" or not key:match("^[%a_][%w_]*$") then
      util.fail("camera.define: key must be an identifier, got %s", util.show(key))
    end
    if rawget(camera, key) ~= nil and not camera.is_key(key) then
      util.fail("camera.define: %s is a camera function name", key)
    end
    if not util.nonempty_string(phrase) then util.fail("camera.define: phrase must be a non-empty string") end
    phrase = util.squish(phrase)
    framings[key], movements[key] = nil, nil
    into[key] = phrase
    phrases[phrase] = key
    rawset(camera, key, phrase)
    return phrase
  end))
end

-- Unguarded implementations for the other kling.* helpers (errors carry no position).
rawset(camera, "_raw", { shot = shot, phrase = function(v) return phrase_of(v, "key") end })

setmetatable(camera, {
  __index = function(_, key)
    error(string.format("camera: unknown key %s; valid %s", util.show(key), valid_list()), 2)
  end,
  __newindex = function(_, key)
    error(string.format("camera: cannot assign camera.%s; use camera.define(kind, key, phrase)",
      tostring(key)), 2)
  end,
})

return camera
