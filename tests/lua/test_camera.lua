-- Tests for lua-lib/kling/camera.lua: keyword phrases, shot composition, unknown keys.
-- Run (from any directory):
--   klingrun tests/lua/test_camera.lua      (or: luajit tests/lua/test_camera.lua)
-- lua-lib/ and tests/lua/ are found from this file's own path (tests/lua/x.lua -> ../../).
local root = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "../../"
package.path = root .. "lua-lib/?.lua;" .. root .. "lua-lib/?/init.lua;" .. root .. "tests/lua/?.lua;" .. package.path
local t = require "testlib"
local camera = require "kling.camera"

t.test("common framings and movements are short phrases", function()
  for _, k in ipairs{ "dolly_in", "pan_left", "crane_up", "handheld", "close_up", "wide", "tracking",
                      "static", "orbit", "zoom_in", "dolly_out", "pan_right", "tilt_up", "medium",
                      "extreme_close_up", "over_the_shoulder", "pov", "aerial" } do
    local p = camera[k]
    t.eq(type(p), "string", k)
    t.ok(#p > 0 and #p < 60, k .. " is short")
    t.ok(camera.is_key(k), k .. " is a key")
  end
  t.eq(camera.dolly_in, "slow dolly in", "dolly_in")
  t.eq(camera.close_up, "close-up", "close_up")
end)

t.test("shot composes framing, movement and text", function()
  t.eq(camera.shot(camera.close_up, camera.dolly_in, "Mara checks her watch."),
    "Close-up, slow dolly in. Mara checks her watch.", "phrases")
  t.eq(camera.shot("wide", "crane_up", "The city wakes."), "Wide shot, crane shot rising up. The city wakes.", "keys")
  t.eq(camera.shot(nil, "handheld", "Joe runs."), "Handheld camera with slight shake. Joe runs.", "movement only")
  t.eq(camera.shot("close_up", nil, "A tear."), "Close-up. A tear.", "framing only")
  t.eq(camera.shot("wide", "static"), "Wide shot, static camera.", "no text")
  t.eq(camera.shot(nil, nil, "Just text."), "Just text.", "text only")
  t.eq(camera.shot("low angle view", "slow arc around the car", "A car."),
    "Low angle view, slow arc around the car. A car.", "free-text phrases pass through")
  t.eq(camera.shot("  wide ", "", "  x  "), "Wide shot. x", "trimmed, empty movement ignored")
end)

t.test("unknown keys raise errors listing the valid ones", function()
  local msg = t.raises(function() return camera.dolly_inn end, "camera: unknown key \"dolly_inn\"", "dolly_in",
    "close_up", "framings:", "movements:")
  t.ok(msg:find("test_camera.lua:", 1, true) ~= nil, "error points at the caller: " .. msg)
  t.raises(function() camera.shot("clos_up", nil, "x") end, "unknown framing \"clos_up\"", "close_up")
  t.raises(function() camera.shot(nil, "zoomin", "x") end, "unknown movement \"zoomin\"", "zoom_in")
  t.raises(function() camera.shot(5, nil, "x") end, "framing must be a string")
  t.raises(function() camera.shot("wide", nil, 5) end, "text must be a string")
  t.raises(function() camera.shot() end, "give a framing, a movement or some text")
  t.raises(function() camera.whatever = "x" end, "cannot assign camera.whatever", "camera.define")
end)

t.test("phrase, keys and lists", function()
  t.eq(camera.phrase("orbit"), camera.orbit, "key")
  t.eq(camera.phrase(camera.orbit), camera.orbit, "phrase")
  t.eq(camera.phrase("slow motion"), "slow motion", "free text")
  t.raises(function() camera.phrase("orbitt") end, "unknown key \"orbitt\"")
  local keys = camera.keys()
  t.ok(#keys >= 30, "many keys")
  for i = 2, #keys do t.ok(keys[i - 1] < keys[i], "sorted") end
  local f, m = camera.framings(), camera.movements()
  t.eq(#f + #m, #keys, "framings + movements = keys")
  t.ok(not camera.is_key("shot"), "functions are not keys")
end)

t.test("define adds custom keys", function()
  t.eq(camera.define("movement", "snorricam", "snorricam rig on the actor"), "snorricam rig on the actor", "returns")
  t.eq(camera.snorricam, "snorricam rig on the actor", "readable")
  t.eq(camera.shot("close_up", "snorricam", "Mara staggers."), "Close-up, snorricam rig on the actor. Mara staggers.", "usable")
  t.raises(function() camera.define("lens", "x", "y") end, "kind must be")
  t.raises(function() camera.define("framing", "shot", "y") end, "camera function name")
  t.raises(function() camera.define("framing", "bad key", "y") end, "identifier")
  t.raises(function() camera.define("framing", "ok_key", "") end, "phrase")
end)

t.done()
