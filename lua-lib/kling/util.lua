-- Small shared helpers for the pure-Lua kling.* libraries (storyboard, dialogue, camera).
-- Not a public API: names here may change. Lua 5.1 / LuaJIT 2.1, no C modules.
local util = {}
local unpack = unpack or table.unpack   -- luacheck: ignore (LuaJIT has the global)

--- Number of characters in a UTF-8 string (code points; continuation bytes are not counted).
function util.utf8_len(s)
  local _, continuation = s:gsub("[\128-\191]", "")
  return #s - continuation
end

--- Removes leading and trailing whitespace.
function util.trim(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

--- Collapses every run of whitespace (including newlines) to one space and trims the ends.
function util.squish(s)
  return util.trim((s:gsub("%s+", " ")))
end

--- True when `v` is a string with at least one non-space character.
function util.nonempty_string(v)
  return type(v) == "string" and v:find("%S") ~= nil
end

--- Sorted list of the string keys of `t`.
function util.sorted_keys(t)
  local keys = {}
  for k in pairs(t) do
    if type(k) == "string" then keys[#keys + 1] = k end
  end
  table.sort(keys)
  return keys
end

--- Copies plain tables recursively; tables with a metatable (objects) and other values are shared.
function util.copy(v)
  if type(v) ~= "table" or getmetatable(v) ~= nil then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = util.copy(x) end
  return out
end

--- Escapes Lua pattern magic characters so `s` matches literally.
function util.pattern_escape(s)
  return (s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0"))
end

--- A short, readable rendering of a value for error messages (strings are quoted).
function util.show(v)
  if type(v) == "string" then
    if #v > 40 then v = v:sub(1, 37) .. "..." end
    return string.format("%q", v)
  end
  return tostring(v)
end

-- Errors: helpers raise plain messages (no position) with util.fail, and each public function
-- runs its body through util.guard, which re-raises the message at the caller's line, so a
-- user sees `script.lua:12: storyboard shot 4: ...` rather than a line inside the library.
local Failure = {}
Failure.__index = Failure
Failure.__tostring = function(f) return f.message end

--- Raises a library error carrying `message` (formatted with string.format when args follow).
function util.fail(message, ...)
  if select("#", ...) > 0 then message = string.format(message, ...) end
  error(setmetatable({ message = message }, Failure), 0)
end

--- Calls fn(...); a util.fail error is re-raised as "file:line: message" at the caller of the
--- public function (`level` 2 = the caller of the function that calls guard). Other errors
--- (bugs, errors from the kling module) pass through unchanged.
function util.guard(level, fn, ...)
  local results = { pcall(fn, ...) }
  if results[1] then return unpack(results, 2, table.maxn(results)) end
  local err = results[2]
  if getmetatable(err) == Failure then error(err.message, level + 1) end
  error(err, 0)
end

--- Calls fn(...); a util.fail error is raised again with `prefix` in front of its message.
function util.within(prefix, fn, ...)
  local results = { pcall(fn, ...) }
  if results[1] then return unpack(results, 2, table.maxn(results)) end
  local err = results[2]
  if getmetatable(err) == Failure then util.fail("%s%s", prefix, err.message) end
  error(err, 0)
end

--- The `kling` module: the global if present, otherwise `require "kling"` (looked up at call
--- time, so pure helpers such as storyboard.pack work without it).
function util.kling()
  local k = rawget(_G, "kling")
  if type(k) == "table" then return k end
  local ok, mod = pcall(require, "kling")
  if ok and type(mod) == "table" then return mod end
  util.fail("the kling module is not available (run this script with klingrun)")
end

return util
