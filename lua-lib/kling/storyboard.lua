-- Storyboards of any length for Kling 3.0: a list of shots is packed, in order, into as few
-- multi-shot generations as the multi_prompt rules allow (docs/validation.md#shots), then planned
-- (priced) or run (submitted in parallel).
--
--   local storyboard = require "kling.storyboard"
--   local results = storyboard.run({
--     { prompt = "A lighthouse at dusk", seconds = 5, camera = "drone" },
--     { prompt = "The keeper climbs the stairs", seconds = 4,
--       dialogue = { {"Keeper", "muttering", "one more night"} } },
--   }, { name = "lighthouse", endpoint = "v3/pro/t2v", aspect_ratio = "16:9" })
--
-- Rules applied to every generation (all hold by construction):
--   * each shot is a whole number of seconds, at least 3 (docs/validation.md#r6);
--   * a group's shots add up to at most 15 s and the group's `duration` is that sum, as a
--     string (docs/validation.md#r8); at most 6 shots per group (docs/validation.md#r9;
--     the 3 s floor makes 5 the practical maximum);
--   * each shot prompt is at most 512 characters (docs/validation.md#r7), counted after the
--     camera phrase and the dialogue are added;
--   * a group of one shot is sent as a plain `prompt` + `duration`, not a one-entry multi_prompt.
-- Shots are never reordered or dropped, and a shot is split only when it is longer than the
-- group limit (15 s): it becomes ceil(seconds / 15) consecutive parts of near-equal length; the
-- first part carries the full prompt (with dialogue), later parts repeat the camera phrase and
-- prompt without the dialogue and end with " (continued)" (opts.continued changes the suffix).
-- Groups are chosen by dynamic programming: fewest generations first, then the most even
-- lengths, so a 20 s board of 5 s shots becomes 10 s + 10 s, not 15 s + 5 s.
local util = require "kling.util"
local dialogue = require "kling.dialogue"
local camera = require "kling.camera"

local storyboard = {}

local MAX_GROUP_SECONDS = 15     -- rule 2: total ≤ 15 s (duration enum "3"…"15")
local MIN_SHOT_SECONDS = 3       -- rule 6: per-shot duration "3"…"15"
local MAX_GROUP_SHOTS = 6        -- rule 9: Kling's 6-shot cap (UNCONFIRMED on fal; kept)
local MAX_SHOT_PROMPT = 512      -- rule 7: multi_prompt[i].prompt ≤ 512 characters

-- opts keys that steer packing and are not copied into the specs.
local OWN_OPTS = { name = true, round = true, quiet = true, max_seconds = true, max_shots = true,
                   continued = true }
-- opts keys the storyboard writes itself.
local SET_BY_STORYBOARD = { prompt = true, multi_prompt = true, duration = true }
local SHOT_FIELDS = { prompt = true, seconds = true, dialogue = true, camera = true }

local function sorted_names(t)
  return table.concat(util.sorted_keys(t), ", ")
end

-- Whole seconds of shot i, or an error naming the shot, the value and the rule.
local function shot_seconds(i, shot, opts, notes)
  local raw = shot.seconds
  local s = raw
  if type(raw) == "string" then s = tonumber(raw) end
  if raw == nil then
    util.fail("storyboard shot %d: seconds is missing (a whole number, at least %d)", i, MIN_SHOT_SECONDS)
  end
  if type(s) ~= "number" or s ~= s or s == math.huge or s == -math.huge then
    util.fail("storyboard shot %d: seconds %s is not a number", i, util.show(raw))
  end
  if opts.round then
    local r = math.floor(s + 0.5)
    if r < MIN_SHOT_SECONDS then r = MIN_SHOT_SECONDS end
    if r ~= s then
      notes[#notes + 1] = string.format(
        "storyboard shot %d: seconds %s rounded to %d (whole seconds, %d s minimum per shot)",
        i, tostring(raw), r, MIN_SHOT_SECONDS)
    end
    return r
  end
  if s % 1 ~= 0 then
    util.fail("storyboard shot %d: seconds %s is not a whole number of seconds "
      .. "(Kling durations are whole seconds; pass opts.round = true to round)", i, tostring(raw))
  end
  if s < MIN_SHOT_SECONDS then
    util.fail("storyboard shot %d: seconds %s is below the %d s minimum per shot "
      .. "(pass opts.round = true to lift it to %d)", i, tostring(raw), MIN_SHOT_SECONDS, MIN_SHOT_SECONDS)
  end
  return s
end

-- The shot's text: camera phrase + prompt, and the dialogue (kept apart for continuations).
local function shot_text(i, shot)
  local where = string.format("storyboard shot %d: ", i)
  if not util.nonempty_string(shot.prompt) then
    util.fail("%sprompt must be a non-empty string, got %s", where, util.show(shot.prompt))
  end
  local body = util.trim(shot.prompt)
  local cam = shot.camera
  if cam ~= nil then
    if type(cam) == "string" then
      body = util.within(where, camera._raw.shot, cam, nil, body)
    elseif type(cam) == "table" then
      local framing = cam.framing or cam[1]
      local movement = cam.movement or cam[2]
      body = util.within(where, camera._raw.shot, framing, movement, body)
    else
      util.fail("%scamera must be a string or {framing, movement}, got %s", where, type(cam))
    end
  end
  local said
  local d = shot.dialogue
  if type(d) == "string" then
    if not util.nonempty_string(d) then util.fail("%sdialogue is an empty string", where) end
    said = util.squish(d)
  elseif type(d) == "table" then
    said = util.within(where, dialogue._raw.lines, d, " ")
  elseif d ~= nil then
    util.fail("%sdialogue must be a string or a list of lines, got %s", where, type(d))
  end
  return body, said
end

local function check_prompt_length(i, text, what)
  local n = util.utf8_len(text)
  if n > MAX_SHOT_PROMPT then
    util.fail("storyboard shot %d: %s is %d characters, above the %d-character limit per shot "
      .. "(docs/validation.md#r7; camera phrase and dialogue included)", i, what, n, MAX_SHOT_PROMPT)
  end
end

-- Turns the shots into a flat list of parts {shot=, part=, parts=, seconds=, prompt=}.
local function expand(shots, opts, max_seconds, notes)
  local suffix = opts.continued or " (continued)"
  local items = {}
  for i = 1, #shots do
    local shot = shots[i]
    if type(shot) ~= "table" then
      util.fail("storyboard shot %d: expected a table {prompt=, seconds=}, got %s", i, type(shot))
    end
    for k in pairs(shot) do
      if not SHOT_FIELDS[k] then
        util.fail("storyboard shot %d: unknown field %s (valid: %s)", i, util.show(k), sorted_names(SHOT_FIELDS))
      end
    end
    local seconds = shot_seconds(i, shot, opts, notes)
    local body, said = shot_text(i, shot)
    local full = said and (body .. " " .. said) or body
    check_prompt_length(i, full, "prompt")
    if seconds <= max_seconds then
      items[#items + 1] = { shot = i, part = 1, parts = 1, seconds = seconds, prompt = full }
    else
      local k = math.ceil(seconds / max_seconds)
      local base, extra = math.floor(seconds / k), seconds % k
      if base < MIN_SHOT_SECONDS then
        util.fail("storyboard shot %d: seconds %d cannot be split into parts of %d..%d s",
          i, seconds, MIN_SHOT_SECONDS, max_seconds)
      end
      local continued = body .. suffix
      check_prompt_length(i, continued, "continuation prompt")
      for p = 1, k do
        items[#items + 1] = {
          shot = i, part = p, parts = k,
          seconds = base + (p <= extra and 1 or 0),
          prompt = p == 1 and full or continued,
        }
      end
      notes[#notes + 1] = string.format("storyboard shot %d: %d s is longer than %d s; split into %d parts",
        i, seconds, max_seconds, k)
    end
  end
  return items
end

-- Optimal consecutive grouping: fewest groups, then least sum of squared slack (most even).
-- best[i] = {groups, slack2, start} for items 1..i; every group respects both caps.
local function partition(items, max_seconds, max_shots)
  local n = #items
  local best = { [0] = { 0, 0, 0 } }
  for i = 1, n do
    local sum = 0
    for j = i, math.max(1, i - max_shots + 1), -1 do
      sum = sum + items[j].seconds
      if sum > max_seconds then break end
      local prev = best[j - 1]
      if prev then
        local slack = max_seconds - sum
        local g, s2 = prev[1] + 1, prev[2] + slack * slack
        local cur = best[i]
        if not cur or g < cur[1] or (g == cur[1] and s2 < cur[2]) then
          best[i] = { g, s2, j }
        end
      end
    end
    -- Every item fits a group on its own (seconds ≤ max_seconds), so best[i] always exists.
  end
  local groups, i = {}, n
  while i > 0 do
    local j = best[i][3]
    local g = {}
    for k = j, i do g[#g + 1] = items[k] end
    table.insert(groups, 1, g)
    i = j - 1
  end
  return groups
end

local function check_opts(opts)
  if opts == nil then return {} end
  if type(opts) ~= "table" then util.fail("storyboard: opts must be a table, got %s", type(opts)) end
  for k in pairs(SET_BY_STORYBOARD) do
    if opts[k] ~= nil then
      util.fail("storyboard: opts.%s is set by the storyboard from the shots; remove it", k)
    end
  end
  if opts.name ~= nil and not util.nonempty_string(opts.name) then
    util.fail("storyboard: opts.name must be a non-empty string (the name prefix), got %s", util.show(opts.name))
  end
  if opts.continued ~= nil and type(opts.continued) ~= "string" then
    util.fail("storyboard: opts.continued must be a string, got %s", type(opts.continued))
  end
  return opts
end

local function int_opt(opts, key, default, lo, hi, why)
  local v = opts[key]
  if v == nil then return default end
  if type(v) ~= "number" or v % 1 ~= 0 or v < lo or v > hi then
    util.fail("storyboard: opts.%s must be a whole number from %d to %d (%s), got %s",
      key, lo, hi, why, util.show(v))
  end
  return v
end

local function pack(shots, opts)
  opts = check_opts(opts)
  if type(shots) ~= "table" or #shots == 0 then
    util.fail("storyboard: shots must be a non-empty list of {prompt=, seconds=}, got %s", util.show(shots))
  end
  local max_seconds = int_opt(opts, "max_seconds", MAX_GROUP_SECONDS, MIN_SHOT_SECONDS, MAX_GROUP_SECONDS,
    "total seconds per generation")
  local max_shots = int_opt(opts, "max_shots", MAX_GROUP_SHOTS, 1, MAX_GROUP_SHOTS, "shots per generation")
  local endpoint = opts.endpoint
  if type(endpoint) == "string" and endpoint:find("v2%.") and max_shots > 1 then
    util.fail("storyboard: endpoint %s has no multi_prompt (multi-shot is Kling 3.0: v3 or o3); "
      .. "use a v3/o3 endpoint or opts.max_shots = 1", endpoint)
  end

  local notes = {}
  local items = expand(shots, opts, max_seconds, notes)
  local groups = partition(items, max_seconds, max_shots)

  local width = math.max(2, #tostring(#groups))
  local specs, layout, total = {}, {}, 0
  for g, group in ipairs(groups) do
    local spec = {}
    for k, v in pairs(opts) do
      if not OWN_OPTS[k] then spec[k] = util.copy(v) end
    end
    local sum = 0
    for _, it in ipairs(group) do sum = sum + it.seconds end
    if #group == 1 then
      spec.prompt = group[1].prompt
    else
      local mp = {}
      for k, it in ipairs(group) do mp[k] = { prompt = it.prompt, duration = tostring(it.seconds) } end
      spec.multi_prompt = mp
    end
    spec.duration = tostring(sum)
    if opts.name then spec.name = string.format("%s_%0" .. width .. "d", opts.name, g) end
    specs[g] = spec
    local parts = {}
    for k, it in ipairs(group) do
      parts[k] = { shot = it.shot, part = it.part, parts = it.parts, seconds = it.seconds }
    end
    layout[g] = { seconds = sum, parts = parts }
    total = total + sum
  end
  if #notes > 0 and not opts.quiet and io and io.stderr then
    for _, n in ipairs(notes) do io.stderr:write("note: ", n, "\n") end
  end
  return specs, { groups = layout, notes = notes, seconds = total }
end

--- storyboard.pack(shots, opts) -> specs, info: shots packed into kling.submit-ready specs.
--- info = {seconds = total, notes = {...}, groups = {{seconds=, parts={{shot=, part=, parts=, seconds=}}}}}.
function storyboard.pack(shots, opts)
  local specs, info = util.guard(2, pack, shots, opts)   -- not a tail call: keeps error levels
  return specs, info
end

local function cost_of(kling, spec)
  local dollars = kling.cost(spec)
  if type(dollars) ~= "number" then util.fail("storyboard: kling.cost returned %s", util.show(dollars)) end
  return dollars
end

--- storyboard.plan(shots, opts) -> specs, total_dollars, info (prices every spec with kling.cost).
function storyboard.plan(shots, opts)
  local specs, total, info = util.guard(2, function()
    local kling = util.kling()
    local specs, info = pack(shots, opts)
    local total = 0
    info.costs = {}
    for g, spec in ipairs(specs) do
      info.costs[g] = cost_of(kling, spec)
      total = total + info.costs[g]
    end
    total = math.floor(total * 1e6 + 0.5) / 1e6     -- drop float noise (0.84 + 0.84 + ...)
    return specs, total, info
  end)
  return specs, total, info
end

-- Checks every spec with kling.validate (when the module has it) so nothing is submitted when
-- any generation is invalid.
local function validate_all(kling, specs)
  if type(kling.validate) ~= "function" then return end
  for g, spec in ipairs(specs) do
    local ok, errors = kling.validate(spec)
    if not ok then
      local lines = {}
      for _, e in ipairs(errors or {}) do
        lines[#lines + 1] = (e.path and (e.path .. ": ") or "") .. tostring(e.message)
      end
      util.fail("storyboard generation %d%s is invalid: %s", g,
        spec.name and (" (" .. spec.name .. ")") or "", table.concat(lines, "; "))
    end
  end
end

--- storyboard.run(shots, opts) -> results, specs: packs, submits all generations in parallel, waits.
function storyboard.run(shots, opts)
  local kling, specs = util.guard(2, function()
    local k = util.kling()
    local s = pack(shots, opts)
    validate_all(k, s)
    return k, s
  end)
  -- Submitting and waiting may yield to the runner, so this part runs outside pcall.
  local jobs = {}
  for g, spec in ipairs(specs) do jobs[g] = kling.submit(spec) end
  return kling.wait_all(jobs), specs
end

--- storyboard.limits -> the packing limits used (read-only copy).
storyboard.limits = {
  max_group_seconds = MAX_GROUP_SECONDS,
  min_shot_seconds = MIN_SHOT_SECONDS,
  max_group_shots = MAX_GROUP_SHOTS,
  max_shot_prompt = MAX_SHOT_PROMPT,
}

return storyboard
