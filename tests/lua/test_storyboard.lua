-- Tests for lua-lib/kling/storyboard.lua: packing invariants (property test over random shot
-- lists), long-shot splitting, error messages, plan/run. Run (from any directory):
--   klingrun tests/lua/test_storyboard.lua      (or: luajit tests/lua/test_storyboard.lua)
-- lua-lib/ and tests/lua/ are found from this file's own path (tests/lua/x.lua -> ../../).
local root = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "../../"
package.path = root .. "lua-lib/?.lua;" .. root .. "lua-lib/?/init.lua;" .. root .. "tests/lua/?.lua;" .. package.path
local t = require "testlib"
local storyboard = require "kling.storyboard"
local dialogue = require "kling.dialogue"
local camera = require "kling.camera"

local CONT = " (continued)"

-- Every shot entry of a spec, in order, as {prompt=, seconds=}.
local function entries(spec)
  if spec.multi_prompt then
    local out = {}
    for i, s in ipairs(spec.multi_prompt) do out[i] = { prompt = s.prompt, seconds = tonumber(s.duration) } end
    return out
  end
  return { { prompt = spec.prompt, seconds = tonumber(spec.duration) } }
end

-- Checks the multi_prompt rules on every spec and that the shots come back in order, complete,
-- with intact prompts (a shot over 15 s as consecutive "(continued)" parts).
local function check_invariants(shots, specs, label)
  local i, remaining, first = 1, shots[1].seconds, true
  for g, spec in ipairs(specs) do
    local where = label .. " generation " .. g
    t.ok((spec.prompt == nil) ~= (spec.multi_prompt == nil), where .. ": exactly one of prompt/multi_prompt")
    t.eq(type(spec.duration), "string", where .. ": duration type")
    local list = entries(spec)
    t.ok(#list <= 6, where .. ": at most 6 shots")
    if spec.multi_prompt then t.ok(#list >= 2, where .. ": multi_prompt only for 2+ shots") end
    local sum = 0
    for k, e in ipairs(list) do
      if spec.multi_prompt then
        t.eq(type(spec.multi_prompt[k].duration), "string", where .. ": shot duration type")
      end
      t.ok(e.seconds >= 3, where .. ": shot >= 3 s")
      t.ok(e.seconds % 1 == 0, where .. ": whole seconds")
      sum = sum + e.seconds
      t.ok(shots[i] ~= nil, where .. ": more entries than shots")
      local expected = first and shots[i].prompt or (shots[i].prompt .. CONT)
      t.eq(e.prompt, expected, where .. " shot " .. k .. " prompt")
      if shots[i].seconds <= 15 then t.eq(e.seconds, shots[i].seconds, where .. ": unsplit shot length") end
      remaining = remaining - e.seconds
      t.ok(remaining >= 0, where .. ": parts exceed the shot length")
      if remaining == 0 then
        i = i + 1
        remaining, first = shots[i] and shots[i].seconds, true
      else
        first = false
      end
    end
    t.ok(sum <= 15, where .. ": total <= 15 s")
    t.eq(spec.duration, tostring(sum), where .. ": duration = sum of shots")
  end
  t.eq(i, #shots + 1, label .. ": every shot packed")
end

-- Fewest groups possible (brute force over split points), for shots of at most 15 s.
local function min_groups(secs)
  local memo = {}
  local function f(i)
    if i > #secs then return 0 end
    if memo[i] then return memo[i] end
    local best, sum = math.huge, 0
    for j = i, math.min(#secs, i + 5) do
      sum = sum + secs[j]
      if sum > 15 then break end
      best = math.min(best, 1 + f(j + 1))
    end
    memo[i] = best
    return best
  end
  return f(1)
end

local WORDS = { "rain", "neon", "Mara", "runs", "the", "alley", "glows", "slowly", "@hero", "café", "déjà" }
local function random_prompt(i)
  local w = { "shot " .. i .. ":" }
  for _ = 1, math.random(1, 12) do w[#w + 1] = WORDS[math.random(#WORDS)] end
  return table.concat(w, " ")
end

t.test("property: random shot lists pack into valid, ordered, complete generations", function()
  math.randomseed(20260)
  for case = 1, 400 do
    local shots, secs, long = {}, {}, false
    for i = 1, math.random(1, 30) do
      local s = math.random(3, 15)
      if math.random() < 0.05 then s = math.random(16, 47); long = true end
      shots[i] = { prompt = random_prompt(i), seconds = s }
      secs[i] = s
    end
    local specs, info = storyboard.pack(shots, { name = "p", endpoint = "v3/pro/t2v", quiet = true })
    check_invariants(shots, specs, "case " .. case)
    t.eq(#info.groups, #specs, "info.groups count")
    local total = 0
    for _, s in ipairs(secs) do total = total + s end
    t.eq(info.seconds, total, "info.seconds")
    if not long then t.eq(#specs, min_groups(secs), "case " .. case .. ": fewest generations") end
    for g, spec in ipairs(specs) do
      t.eq(spec.name, string.format("p_%02d", g), "name")
      t.eq(spec.endpoint, "v3/pro/t2v", "endpoint copied")
    end
  end
end)

t.test("packing balances groups instead of leaving a short tail", function()
  local shots = {}
  for i = 1, 4 do shots[i] = { prompt = "shot " .. i, seconds = 5 } end
  local specs = storyboard.pack(shots)
  t.eq(#specs, 2, "generations")
  t.eq(specs[1].duration, "10", "first")
  t.eq(specs[2].duration, "10", "second")
  -- 15 + 3 greedy would leave a 3 s tail; 9 + 9 is the balanced answer.
  specs = storyboard.pack({ { prompt = "a", seconds = 6 }, { prompt = "b", seconds = 6 },
                            { prompt = "c", seconds = 3 }, { prompt = "d", seconds = 3 } })
  t.eq(#specs, 2, "generations")
  t.eq(specs[1].duration, "12", "6+6")
  t.eq(specs[2].duration, "6", "3+3")
end)

t.test("five 3 s shots fill one 15 s generation; a sixth opens a second", function()
  local shots = {}
  for i = 1, 6 do shots[i] = { prompt = "s" .. i, seconds = 3 } end
  local specs = storyboard.pack({ unpack(shots, 1, 5) })
  t.eq(#specs, 1, "one generation")
  t.eq(#specs[1].multi_prompt, 5, "five shots")
  t.eq(specs[1].duration, "15", "duration")
  specs = storyboard.pack(shots)
  t.eq(#specs, 2, "two generations")
  t.eq(specs[1].duration, "9", "balanced 9")
  t.eq(specs[2].duration, "9", "balanced 9")
end)

t.test("opts.max_shots and opts.max_seconds cap the groups", function()
  local shots = {}
  for i = 1, 6 do shots[i] = { prompt = "s" .. i, seconds = 3 } end
  local specs = storyboard.pack(shots, { max_shots = 2 })
  t.eq(#specs, 3, "pairs")
  for _, s in ipairs(specs) do t.eq(#s.multi_prompt, 2, "pair") end
  specs = storyboard.pack(shots, { max_seconds = 6 })
  t.eq(#specs, 3, "6 s groups")
  specs = storyboard.pack(shots, { max_shots = 1 })
  t.eq(#specs, 6, "one shot each")
  t.eq(specs[1].prompt, "s1", "plain prompt")
  t.raises(function() storyboard.pack(shots, { max_shots = 7 }) end, "opts.max_shots", "1 to 6")
  t.raises(function() storyboard.pack(shots, { max_seconds = 16 }) end, "opts.max_seconds", "3 to 15")
end)

t.test("a group of one shot is a plain prompt + duration", function()
  local specs = storyboard.pack({ { prompt = "one long look", seconds = 12 }, { prompt = "another", seconds = 12 } },
    { endpoint = "v3/pro/t2v", aspect_ratio = "9:16" })
  t.eq(#specs, 2, "generations")
  for _, s in ipairs(specs) do
    t.eq(s.multi_prompt, nil, "no multi_prompt")
    t.eq(s.duration, "12", "duration")
    t.eq(s.aspect_ratio, "9:16", "aspect_ratio copied")
  end
  t.eq(specs[1].prompt, "one long look", "prompt")
  t.eq(specs[1].name, nil, "no name without opts.name")
  local single = storyboard.pack({ { prompt = "x", seconds = "7" } })
  t.eq(single[1].prompt, "x", "numeric-string seconds")
  t.eq(single[1].duration, "7", "duration")
end)

t.test("a shot longer than 15 s is split into (continued) parts; dialogue only in the first", function()
  local shots = {
    { prompt = "intro", seconds = 4 },
    { prompt = "the long walk", seconds = 40, camera = "tracking",
      dialogue = { { "Mara", "tired", "almost there" } } },
    { prompt = "outro", seconds = 3 },
  }
  local specs, info = storyboard.pack(shots, { name = "walk", quiet = true })
  local parts = {}
  for _, s in ipairs(specs) do for _, e in ipairs(entries(s)) do parts[#parts + 1] = e end end
  t.eq(#parts, 5, "4 + three parts + 3")
  t.eq(parts[1].prompt, "intro", "before")
  local body = "Tracking shot following the subject. the long walk"
  t.eq(parts[2].prompt, body .. ' [Mara, tired]: "almost there"', "first part keeps dialogue")
  t.eq(parts[3].prompt, body .. CONT, "continued")
  t.eq(parts[4].prompt, body .. CONT, "continued")
  t.eq(parts[2].seconds + parts[3].seconds + parts[4].seconds, 40, "parts add up")
  for k = 2, 4 do t.ok(parts[k].seconds >= 3 and parts[k].seconds <= 15, "part length") end
  t.eq(parts[5].prompt, "outro", "after")
  t.ok(#info.notes >= 1 and info.notes[1]:find("split into 3 parts", 1, true), "note about the split")
  local custom = storyboard.pack({ { prompt = "p", seconds = 16 } }, { continued = " (cont.)", quiet = true })
  t.eq(custom[2].prompt, "p (cont.)", "custom suffix")
  t.eq(custom[1].duration + custom[2].duration, 16, "8 + 8")
end)

t.test("bad shots raise errors naming the shot, the value and the rule", function()
  local function board(bad, at)
    local shots = {}
    for i = 1, 5 do shots[i] = { prompt = "ok " .. i, seconds = 5 } end
    shots[at or 4] = bad
    return shots
  end
  local msg = t.raises(function() storyboard.pack(board({ prompt = "too short", seconds = 2 })) end,
    "storyboard shot 4: seconds 2 is below the 3 s minimum per shot")
  t.ok(msg:find("test_storyboard.lua:", 1, true) ~= nil, "error points at the caller: " .. msg)
  t.raises(function() storyboard.pack(board({ prompt = "half", seconds = 4.5 })) end,
    "storyboard shot 4", "seconds 4.5", "whole number")
  t.raises(function() storyboard.pack(board({ prompt = "none" }, 2)) end, "storyboard shot 2", "seconds is missing")
  t.raises(function() storyboard.pack(board({ prompt = "nan", seconds = "abc" }, 3)) end,
    "storyboard shot 3", "not a number")
  t.raises(function() storyboard.pack(board({ seconds = 5 }, 1)) end, "storyboard shot 1", "prompt")
  t.raises(function() storyboard.pack(board({ prompt = "x", seconds = 5, second = 5 }, 5)) end,
    "storyboard shot 5", "unknown field \"second\"", "seconds")
  t.raises(function() storyboard.pack(board("just text", 2)) end, "storyboard shot 2", "expected a table")
  t.raises(function() storyboard.pack(board({ prompt = string.rep("a", 513), seconds = 5 }, 3)) end,
    "storyboard shot 3", "513 characters", "512")
  -- 500 characters of prompt + dialogue crosses the limit too
  t.raises(function()
    storyboard.pack(board({ prompt = string.rep("b", 500), seconds = 5, dialogue = { { "A", "hello there" } } }, 2))
  end, "storyboard shot 2", "512")
  -- 512 multibyte characters are fine (characters, not bytes)
  storyboard.pack({ { prompt = string.rep("é", 512), seconds = 5 } })
  t.raises(function() storyboard.pack(board({ prompt = "x", seconds = 5, camera = "dolly_inn" }, 4)) end,
    "storyboard shot 4", "unknown framing \"dolly_inn\"")
  t.raises(function() storyboard.pack(board({ prompt = "x", seconds = 5, dialogue = { { "", "hi" } } }, 1)) end,
    "storyboard shot 1", "dialogue.lines: entry 1: speaker")
  t.raises(function() storyboard.pack({}) end, "non-empty list")
  t.raises(function() storyboard.pack(board({ prompt = "x", seconds = 5 }), { prompt = "master" }) end,
    "opts.prompt")
  t.raises(function() storyboard.pack(board({ prompt = "x", seconds = 5 }), { endpoint = "v2.6/pro/t2v" }) end,
    "no multi_prompt")
end)

t.test("opts.round rounds to whole seconds and lifts to 3 s, with notes", function()
  local shots = { { prompt = "a", seconds = 2.4 }, { prompt = "b", seconds = 4.6 }, { prompt = "c", seconds = 1 },
                  { prompt = "d", seconds = 5 } }
  local specs, info = storyboard.pack(shots, { round = true, quiet = true })
  local secs = {}
  for _, s in ipairs(specs) do for _, e in ipairs(entries(s)) do secs[#secs + 1] = e.seconds end end
  t.eq(table.concat(secs, ","), "3,5,3,5", "rounded")
  t.eq(#info.notes, 3, "one note per changed shot")
  t.ok(info.notes[1]:find("shot 1: seconds 2.4 rounded to 3", 1, true) ~= nil, info.notes[1])
end)

t.test("camera and dialogue fields are composed into the shot prompt", function()
  local specs = storyboard.pack({
    { prompt = "Mara checks her watch.", seconds = 4, camera = { camera.close_up, camera.dolly_in },
      dialogue = { { "Mara", "whispering", "we're late" } } },
    { prompt = "Joe shrugs.", seconds = 4, camera = { framing = "medium" },
      dialogue = dialogue.line("Joe", "so?") },
    { prompt = "The street.", seconds = 4, camera = "wide" },
  })
  local mp = specs[1].multi_prompt
  t.eq(mp[1].prompt, 'Close-up, slow dolly in. Mara checks her watch. [Mara, whispering]: "we\'re late"', "shot 1")
  t.eq(mp[2].prompt, 'Medium shot. Joe shrugs. [Joe]: "so?"', "shot 2")
  t.eq(mp[3].prompt, "Wide shot. The street.", "shot 3")
end)

t.test("opts fields are copied into every generation, tables copied not shared", function()
  local elements = { { frontal_image_url = "https://example.com/a.png", reference_image_urls = { "https://example.com/b.png" } } }
  local shots = {}
  for i = 1, 4 do shots[i] = { prompt = "@Element1 shot " .. i, seconds = 10 } end
  local specs = storyboard.pack(shots, { endpoint = "v3/pro/i2v", start_image_url = "https://example.com/s.png",
    elements = elements, generate_audio = false, take = 2, name = "el" })
  t.eq(#specs, 4, "generations")
  for g, s in ipairs(specs) do
    t.eq(s.endpoint, "v3/pro/i2v", "endpoint")
    t.eq(s.start_image_url, "https://example.com/s.png", "start image")
    t.eq(s.generate_audio, false, "audio")
    t.eq(s.take, 2, "take")
    t.eq(s.elements[1].frontal_image_url, "https://example.com/a.png", "elements")
    t.ok(s.elements ~= elements, "copied")
    t.eq(s.round, nil, "own opts not copied")
    t.eq(s.name, "el_0" .. g, "name")
  end
end)

t.test("name width grows past 99 generations", function()
  local shots = {}
  for i = 1, 100 do shots[i] = { prompt = "s" .. i, seconds = 15 } end
  local specs = storyboard.pack(shots, { name = "big" })
  t.eq(#specs, 100, "generations")
  t.eq(specs[1].name, "big_001", "first")
  t.eq(specs[100].name, "big_100", "last")
end)

-- A 60-second storyboard: 14 shots with dialogue and camera helpers.
local function sixty()
  local d = dialogue.line
  return {
    { prompt = "Rain over a neon city at night.", seconds = 5, camera = { "establishing", "drone" } },
    { prompt = "Mara runs down a wet alley.", seconds = 4, camera = { "wide", "tracking" } },
    { prompt = "She stops at a steel door.", seconds = 3, camera = { "medium", "static" } },
    { prompt = "Her hand on the keypad.", seconds = 3, camera = { "insert", "push_in" } },
    { prompt = "Mara glances back.", seconds = 4, camera = { "close_up" },
      dialogue = { { "Mara", "whispering", "come on, come on" } } },
    { prompt = "Joe steps out of the shadows.", seconds = 5, camera = { "over_the_shoulder", "rack_focus" },
      dialogue = d("Joe", "calm", "you're late") },
    { prompt = "Mara turns to face him.", seconds = 4, camera = { "two_shot", "orbit" },
      dialogue = { { "Mara", "angry", "you said midnight" } } },
    { prompt = "The door clicks open.", seconds = 3, camera = { "extreme_close_up" } },
    { prompt = "They slip inside a dark server room.", seconds = 5, camera = { "wide", "steadicam" } },
    { prompt = "Blue lights blink across the racks.", seconds = 4, camera = { "low_angle", "pan_right" } },
    { prompt = "Joe plugs in a drive.", seconds = 4, camera = { "close_up", "handheld" },
      dialogue = { { "Joe", "tense", "ninety seconds" } } },
    { prompt = "A progress bar crawls.", seconds = 5, camera = { "insert", "zoom_in" } },
    { prompt = "Footsteps in the corridor.", seconds = 5, camera = { "pov", "dolly_in" },
      dialogue = { { "Guard", "shouting", "who's there?" } } },
    { prompt = "Mara and Joe freeze.", seconds = 6, camera = { "medium", "dolly_zoom" } },
  }
end

t.test("a 60 s storyboard packs into at least 4 valid generations", function()
  local shots = sixty()
  local total = 0
  for _, s in ipairs(shots) do total = total + s.seconds end
  t.eq(total, 60, "board length")
  local specs, info = storyboard.pack(shots, { name = "heist", endpoint = "v3/pro/t2v" })
  t.ok(#specs >= 4, "at least 4 generations, got " .. #specs)
  t.eq(info.seconds, 60, "info.seconds")
  local sum = 0
  for _, s in ipairs(specs) do
    t.ok(tonumber(s.duration) <= 15, "<= 15 s")
    sum = sum + tonumber(s.duration)
    local ok, errors = kling.validate(s)
    t.ok(ok, "kling.validate: " .. ((errors and errors[1] and (tostring(errors[1].path) .. ": " .. tostring(errors[1].message))) or ""))
  end
  t.eq(sum, 60, "all seconds kept")
end)

t.test("plan prices every generation with kling.cost", function()
  local specs, dollars, info = storyboard.plan(sixty(), { endpoint = "v3/pro/t2v", generate_audio = true })
  local expect = 0
  for _, s in ipairs(specs) do expect = expect + kling.cost(s) end
  t.ok(math.abs(dollars - expect) < 1e-6, "total = sum of kling.cost")
  t.eq(#info.costs, #specs, "per-generation costs")
  t.ok(dollars > 0, "positive")
  t.ok(math.abs(dollars - 60 * 0.168) < 1e-6, "60 s at $0.168/s")
end)

t.test("run submits every generation and returns results in order", function()
  local before = #kling.jobs()
  local results, specs = storyboard.run(sixty(), { name = "heist_run", endpoint = "v3/pro/t2v" })
  t.eq(#results, #specs, "one result per generation")
  for g, r in ipairs(results) do
    t.eq(type(r), "table", "result")
    t.ok(tostring(r.name):find("heist_run_0" .. g, 1, true) ~= nil, "result name " .. tostring(r.name))
  end
  t.eq(#kling.jobs() - before, #specs, "submitted count")
end)

t.test("run validates everything before submitting anything", function()
  local before = #kling.jobs()
  t.raises(function()
    storyboard.run(sixty(), { name = "bad", endpoint = "v3/pro/t2v", seed = 42 })
  end, "storyboard generation 1", "seed")
  t.eq(#kling.jobs(), before, "nothing submitted")
end)

t.done()
