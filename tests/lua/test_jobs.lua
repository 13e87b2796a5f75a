-- Tests for the job objects kling.submit returns (offline): names as given, made safe, or
-- derived from the script; identical requests are one job; a name belongs to one job.
-- Run: klingrun --offline tests/lua/test_jobs.lua
local root = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "../../"
package.path = root .. "tests/lua/?.lua;" .. package.path
local t = require "testlib"

t.test("a job keeps the name it was given", function()
  local j = kling.submit{ name = "harbor_dawn", prompt = "a harbor at dawn", duration = 5 }
  t.eq(j.name, "harbor_dawn", "name")
  t.eq(tostring(j), "kling.job(harbor_dawn)", "tostring")
  t.ok(j.cost_usd > 0, "cost_usd is set")
end)

t.test("a name that is not a safe file name is made safe", function()
  local j = kling.submit{ name = "night/market scene", prompt = "a night market", duration = 5 }
  t.eq(j.name, "night_market_scene", "name")
end)

t.test("a job without a name is named after the script", function()
  local j = kling.submit{ prompt = "a lighthouse in a storm", duration = 5 }
  t.ok(j.name:match("^test_jobs_%d%d%d$"), "derived name, got " .. j.name)
end)

t.test("the same request twice is the same job, under the first name", function()
  local a = kling.submit{ prompt = "a paper boat on a puddle", duration = 4 }
  local b = kling.submit{ prompt = "a paper boat on a puddle", duration = 4 }
  t.eq(b.name, a.name, "same job")
  local c = kling.submit{ prompt = "a paper boat on a puddle", duration = 4, take = 2 }
  t.ok(c.name ~= a.name, "a take is a new job")
end)

t.test("a name already used by another request is refused", function()
  kling.submit{ name = "unique_shot", prompt = "a fox in snow", duration = 5 }
  t.raises(function() kling.submit{ name = "unique_shot", prompt = "a fox in rain", duration = 5 } end,
           'name: "unique_shot" is already used by another job')
end)

t.test("wait gives the offline result under the job's name", function()
  local j = kling.submit{ name = "wait_me", prompt = "a kite over a beach", duration = 3 }
  local r = j:wait()
  t.ok(r.offline, "offline result")
  t.ok(r.video.path:match("wait_me%.mp4$"), "video path ends in the job name, got " .. r.video.path)
end)

t.done()
