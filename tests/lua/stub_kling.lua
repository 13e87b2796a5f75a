-- A pure-Lua stand-in for klingrun's C++ `kling` module, for running the Lua helpers, their
-- tests and the example scripts with plain `luajit` (offline: nothing is sent anywhere).
-- Same surface as the real module (generate, submit, wait_all, spawn, element, cost, validate,
-- budget, endpoints, prices) with a reduced validator (the kling-api.md §8 rules the helpers
-- touch). It records every submitted spec in stub.submitted. The libraries never require it.
local stub = {}

local PREFIX = "fal-ai/kling-video/"
local MODES = { t2v = "text-to-video", i2v = "image-to-video", r2v = "reference-to-video" }

-- Endpoint table: fields allowed, audio default, price per second {off, on, voice}.
local V3_T2V = { "prompt", "multi_prompt", "duration", "generate_audio", "shot_type", "aspect_ratio",
                 "negative_prompt", "cfg_scale" }
local V3_I2V = { "prompt", "multi_prompt", "duration", "generate_audio", "shot_type", "negative_prompt",
                 "cfg_scale", "start_image_url", "end_image_url", "elements" }
local O3_T2V = { "prompt", "multi_prompt", "duration", "generate_audio", "shot_type", "aspect_ratio" }
local O3_I2V = { "prompt", "multi_prompt", "duration", "generate_audio", "shot_type", "image_url", "end_image_url" }
local O3_R2V = { "prompt", "multi_prompt", "duration", "generate_audio", "shot_type", "aspect_ratio",
                 "start_image_url", "end_image_url", "image_urls", "elements" }
local V26_T2V = { "prompt", "duration", "aspect_ratio", "negative_prompt", "cfg_scale", "generate_audio" }
local V26_I2V = { "prompt", "duration", "negative_prompt", "generate_audio", "start_image_url", "end_image_url", "voice_ids" }
local V25_T2V = { "prompt", "duration", "aspect_ratio", "negative_prompt", "cfg_scale" }
local V25_I2V = { "prompt", "duration", "negative_prompt", "cfg_scale", "image_url", "tail_image_url" }

local ENDPOINTS = {}
local function add(short, fields, audio, price, required)
  local family, tier, mode = short:match("^(.-)/(%a+)/(%w+)$")
  local set = {}
  for _, f in ipairs(fields) do set[f] = true end
  local e = { id = PREFIX .. family .. "/" .. tier .. "/" .. MODES[mode], short = short, family = family,
              fields = set, audio = audio, price = price, required = required }
  ENDPOINTS[#ENDPOINTS + 1] = e
end
add("v3/pro/t2v", V3_T2V, true, { 0.112, 0.168, 0.196 })
add("v3/pro/i2v", V3_I2V, true, { 0.112, 0.168, 0.196 }, "start_image_url")
add("v3/standard/t2v", V3_T2V, true, { 0.084, 0.126, 0.154 })
add("v3/standard/i2v", V3_I2V, true, { 0.084, 0.126, 0.154 }, "start_image_url")
add("o3/pro/t2v", O3_T2V, false, { 0.112, 0.14 })
add("o3/pro/i2v", O3_I2V, false, { 0.112, 0.14 }, "image_url")
add("o3/pro/r2v", O3_R2V, false, { 0.112, 0.14 })
add("o3/standard/t2v", O3_T2V, false, { 0.084, 0.112 })
add("o3/standard/i2v", O3_I2V, false, { 0.084, 0.112 }, "image_url")
add("o3/standard/r2v", O3_R2V, false, { 0.084, 0.112 })
add("v2.6/pro/t2v", V26_T2V, true, { 0.07, 0.14, 0.168 })
add("v2.6/pro/i2v", V26_I2V, true, { 0.07, 0.14, 0.168 }, "start_image_url")
add("v2.5-turbo/pro/t2v", V25_T2V, nil, "first5")
add("v2.5-turbo/pro/i2v", V25_I2V, nil, "first5", "image_url")

local function find_endpoint(id)
  id = id or "v3/pro/t2v"
  for _, e in ipairs(ENDPOINTS) do
    if id == e.id or id == e.short or PREFIX .. id == e.id then return e end
  end
end

local elements = {}          -- name -> element
local budget_limit, spent = nil, 0
local counter = 0
stub.submitted = {}          -- every spec given to generate/submit, as passed
stub.results = {}

--- stub.reset() forgets elements, budget and recorded specs.
function stub.reset()
  elements, budget_limit, spent, counter = {}, nil, 0, 0
  stub.submitted, stub.results = {}, {}
end

local function utf8_len(s) local _, c = s:gsub("[\128-\191]", ""); return #s - c end

--- kling.element{name=, frontal=, references={...}} or {name=, video=} registers a named element.
function stub.element(t)
  if type(t) ~= "table" or type(t.name) ~= "string" or not t.name:match("^[%a_][%w_]*$") then
    error("element.name: must be an identifier", 2)
  end
  local refs = t.references or {}
  if t.video then
    if t.frontal then error("element." .. t.name .. ": either frontal+references or video, not both", 2) end
  else
    if type(t.frontal) ~= "string" then error("element." .. t.name .. ".frontal: required", 2) end
    if #refs < 1 or #refs > 3 then error("element." .. t.name .. ".references: 1 to 3 images", 2) end
  end
  local e = { name = t.name, frontal = t.frontal, references = refs, video = t.video, voice_id = t.voice_id }
  elements[t.name] = e
  return e
end

local function to_fal(e)
  if e.video then return { video_url = e.video } end
  local refs = {}
  for i, r in ipairs(e.references) do refs[i] = r end
  return { frontal_image_url = e.frontal, reference_image_urls = refs }
end

-- Normalizes and checks a spec; returns input, endpoint, errors, warnings.
local function check(spec)
  local errors, warnings = {}, {}
  local function err(path, msg) errors[#errors + 1] = { path = path, message = msg } end
  if type(spec) ~= "table" then err("", "spec must be a table"); return nil, nil, errors, warnings end
  local ep = find_endpoint(spec.endpoint)
  if not ep then err("endpoint", "unknown endpoint " .. tostring(spec.endpoint)); return nil, nil, errors, warnings end
  local input = {}
  for k, v in pairs(spec) do
    if k ~= "endpoint" and k ~= "name" and k ~= "take" then
      if not ep.fields[k] then err(k, "unknown field for " .. ep.short) else input[k] = v end
    end
  end
  local function dur(v, path)
    if v == nil then return 5 end
    local n = tonumber(v)
    if not n or n % 1 ~= 0 then err(path, "duration must be a whole number of seconds"); return 5 end
    if ep.family:match("^v2") then
      if n ~= 5 and n ~= 10 then err(path, "duration must be 5 or 10") end
    elseif n < 3 or n > 15 then err(path, "duration must be 3..15") end
    return n
  end
  local total = dur(input.duration, "duration")
  if input.duration ~= nil then input.duration = tostring(total) end
  if input.prompt ~= nil and input.multi_prompt ~= nil then err("prompt", "give prompt or multi_prompt, not both") end
  if input.prompt == nil and input.multi_prompt == nil then err("prompt", "prompt or multi_prompt is required") end
  if input.prompt ~= nil then
    if type(input.prompt) ~= "string" or input.prompt == "" then err("prompt", "must be a non-empty string")
    elseif utf8_len(input.prompt) > 2500 then err("prompt", "longer than 2500 characters") end
  end
  if input.multi_prompt ~= nil then
    local mp, out, sum = input.multi_prompt, {}, 0
    if type(mp) ~= "table" or #mp == 0 then err("multi_prompt", "must be a non-empty list")
    else
      if #mp > 6 then err("multi_prompt", "at most 6 shots") end
      for i, s in ipairs(mp) do
        local p = "multi_prompt[" .. (i - 1) .. "]"
        if type(s.prompt) ~= "string" or s.prompt == "" then err(p .. ".prompt", "required")
        elseif utf8_len(s.prompt) > 512 then err(p .. ".prompt", "Prompt must not exceed 512 characters") end
        local d = dur(s.duration, p .. ".duration")
        sum = sum + d
        out[i] = { prompt = s.prompt, duration = tostring(d) }
      end
      if sum ~= total then
        err("duration", ("shot durations add up to %d s but duration is %d s"):format(sum, total))
      end
      input.multi_prompt = out
    end
  end
  if ep.required and input[ep.required] == nil then err(ep.required, "required on " .. ep.short) end
  -- @name -> @ElementN
  local used, order = {}, {}
  local function rewrite(text, path)
    if type(text) ~= "string" then return text end
    return (text:gsub("@([%a_][%w_]*)", function(n)
      if n:match("^Element%d+$") or n:match("^Image%d+$") then return nil end
      local e = elements[n]
      if not e then err(path, "unknown element @" .. n); return nil end
      if not used[n] then order[#order + 1] = n; used[n] = true end
      local base = type(input.elements) == "table" and #input.elements or 0
      for i, m in ipairs(order) do if m == n then return "@Element" .. (base + i) end end
    end))
  end
  input.prompt = rewrite(input.prompt, "prompt")
  if type(input.multi_prompt) == "table" then
    for i, s in ipairs(input.multi_prompt) do s.prompt = rewrite(s.prompt, "multi_prompt[" .. (i - 1) .. "].prompt") end
  end
  if #order > 0 then
    if not ep.fields.elements then err("elements", "named elements need an endpoint with elements (v3 i2v, o3 r2v)")
    else
      local list = {}
      for _, e in ipairs(type(input.elements) == "table" and input.elements or {}) do list[#list + 1] = e end
      for _, n in ipairs(order) do list[#list + 1] = to_fal(elements[n]) end
      input.elements = list
    end
  end
  return input, ep, errors, warnings
end

--- kling.validate(spec) -> ok, errors, warnings
function stub.validate(spec)
  local _, _, errors, warnings = check(spec)
  return #errors == 0, errors, warnings
end

--- kling.cost(spec) -> dollars, {rate=, seconds=, audio=}
function stub.cost(spec)
  local input, ep, errors = check(spec)
  if not ep then error(errors[1].path .. ": " .. errors[1].message, 2) end
  local seconds = tonumber(input.duration) or 5
  if ep.price == "first5" then
    return 0.35 + 0.07 * (seconds - 5), { rate = 0.07, seconds = seconds, audio = "off" }
  end
  local audio = input.generate_audio
  if audio == nil then audio = ep.audio end
  local mode = audio and "on" or "off"
  local rate = audio and ep.price[2] or ep.price[1]
  return rate * seconds, { rate = rate, seconds = seconds, audio = mode }
end

local function run(spec, level)
  local input, ep, errors = check(spec)
  if #errors > 0 then
    local lines = {}
    for _, e in ipairs(errors) do lines[#lines + 1] = e.path .. ": " .. e.message end
    error(table.concat(lines, "\n"), level + 1)
  end
  local dollars = stub.cost(spec)
  if budget_limit and spent + dollars > budget_limit + 1e-9 then
    error(("budget: $%.2f would exceed the budget of $%.2f ($%.2f spent)"):format(dollars, budget_limit, spent), level + 1)
  end
  spent = spent + dollars
  counter = counter + 1
  stub.submitted[#stub.submitted + 1] = spec
  local name = spec.name or ("job_" .. counter)
  local result = {
    name = name, endpoint = ep.id, input = input, cost_usd = dollars, offline = true,
    request_id = ("offline-%04d"):format(counter),
    video = { url = "file://out/" .. name .. ".mp4", path = "out/" .. name .. ".mp4", file_size = 0 },
  }
  stub.results[#stub.results + 1] = result
  return result
end

--- kling.generate(spec) -> result
function stub.generate(spec) return run(spec, 2) end

--- kling.submit(spec) -> job with job.name and job:wait()
function stub.submit(spec)
  local result = run(spec, 2)
  return { name = result.name, wait = function() return result end }
end

--- kling.wait_all(jobs) -> results in order
function stub.wait_all(jobs)
  local out = {}
  for i, j in ipairs(jobs) do out[i] = j:wait() end
  return out
end

--- kling.spawn(fn, ...) runs fn as its own coroutine (here: to completion, at once).
function stub.spawn(fn, ...)
  local co = coroutine.create(fn)
  local ok, e = coroutine.resume(co, ...)
  if not ok then error(e, 2) end
  return co
end

--- kling.budget(dollars) sets the spending limit; kling.budget() -> limit, spent.
function stub.budget(d)
  if d ~= nil then budget_limit = d end
  return budget_limit, spent
end

--- kling.endpoints() -> list of {id=, short=}
function stub.endpoints()
  local out = {}
  for i, e in ipairs(ENDPOINTS) do out[i] = { id = e.id, short = e.short } end
  return out
end

--- kling.prices() -> map endpoint id -> {off=, on=, voice=}
function stub.prices()
  local out = {}
  for _, e in ipairs(ENDPOINTS) do
    if type(e.price) == "table" then out[e.id] = { off = e.price[1], on = e.price[2], voice = e.price[3] } end
  end
  return out
end

stub.is_stub = true
return stub
