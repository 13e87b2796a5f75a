-- Minimal test harness for the Lua tests in tests/lua: t.test(name, fn) records a pass or a
-- failure, t.done() prints "N passed, M failed" and raises an error if anything failed.
-- Run the tests with the real module: `klingrun --offline tests/lua/test_x.lua`.
assert(rawget(_G, "kling"), "run this test with klingrun: klingrun --offline " .. tostring(arg and arg[0]))

local t = { passed = 0, failed = 0 }

--- t.test(name, fn): runs fn; an error inside is a failure (reported, not fatal).
function t.test(name, fn)
  local ok, err = pcall(fn)
  if ok then
    t.passed = t.passed + 1
  else
    t.failed = t.failed + 1
    io.stderr:write("FAIL ", name, ": ", tostring(err), "\n")
  end
end

local function show(v)
  if type(v) == "string" then return string.format("%q", v) end
  return tostring(v)
end

--- t.eq(actual, expected, what): equality check.
function t.eq(actual, expected, what)
  if actual ~= expected then
    error(string.format("%s: expected %s, got %s", what or "value", show(expected), show(actual)), 2)
  end
end

--- t.ok(cond, what): truth check.
function t.ok(cond, what)
  if not cond then error("expected true: " .. (what or "condition"), 2) end
end

--- t.raises(fn, ...) -> message: fn must raise; each further argument must appear (plainly) in the message.
function t.raises(fn, ...)
  local ok, err = pcall(fn)
  if ok then error("expected an error, none raised", 2) end
  err = tostring(err)
  for i = 1, select("#", ...) do
    local want = select(i, ...)
    if not err:find(want, 1, true) then
      error(string.format("error message %s lacks %s", show(err), show(want)), 2)
    end
  end
  return err
end

--- t.done(): prints the summary; raises when a test failed.
function t.done()
  print(string.format("%d passed, %d failed", t.passed, t.failed))
  if t.failed > 0 then error(t.failed .. " test(s) failed", 0) end
end

return t
