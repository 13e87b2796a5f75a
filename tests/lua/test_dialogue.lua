-- Tests for lua-lib/kling/dialogue.lua: the [Name, emotion]: "text" form, escaping, joining,
-- the speech() case rule and input errors. Run from the repository root:
--   klingrun tests/lua/test_dialogue.lua      (or: luajit tests/lua/test_dialogue.lua)
-- lua-lib/ and tests/lua/ are found from this file's own path (tests/lua/x.lua -> ../../).
local root = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "../../"
package.path = root .. "lua-lib/?.lua;" .. root .. "lua-lib/?/init.lua;" .. root .. "tests/lua/?.lua;" .. package.path
local t = require "testlib"
local dialogue = require "kling.dialogue"

t.test("line with and without emotion", function()
  t.eq(dialogue.line("Mara", "whispering", "we're late"), '[Mara, whispering]: "we\'re late"', "with emotion")
  t.eq(dialogue.line("Mara", "we're late"), '[Mara]: "we\'re late"', "two arguments")
  t.eq(dialogue.line("Mara", nil, "we're late"), '[Mara]: "we\'re late"', "nil emotion")
  t.eq(dialogue.line("Mara", "", "we're late"), '[Mara]: "we\'re late"', "empty emotion")
  t.eq(dialogue.line("Old Tom", "quietly, sadly", "go"), '[Old Tom, quietly, sadly]: "go"', "comma in emotion")
end)

t.test("whitespace is tidied", function()
  t.eq(dialogue.line("  Mara ", " angry  ", "  no,\n   never  "), '[Mara, angry]: "no, never"', "squished")
end)

t.test("embedded double quotes and backslashes are escaped", function()
  t.eq(dialogue.line("Joe", 'he said "run"'), '[Joe]: "he said \\"run\\""', "quotes")
  t.eq(dialogue.line("Joe", [[a\b]]), [[[Joe]: "a\\b"]], "backslash")
  t.eq(dialogue.line("Joe", [[\"]]), [[[Joe]: "\\\""]], "backslash then quote")
  t.eq(dialogue.line("Zoë", "café"), '[Zoë]: "café"', "UTF-8 untouched")
end)

t.test("bad input raises clear errors", function()
  t.raises(function() dialogue.line("", "x", "hi") end, "dialogue.line", "speaker must be a non-empty string")
  t.raises(function() dialogue.line(nil, "hi") end, "speaker")
  t.raises(function() dialogue.line("Ma]ra", "hi") end, "speaker", "may not contain ']'")
  t.raises(function() dialogue.line("Mara, Joe", "x", "hi") end, "may not contain ','")
  t.raises(function() dialogue.line("Mara", "sad]", "hi") end, "emotion", "may not contain ']'")
  t.raises(function() dialogue.line("Mara", 'say "x"', "hi") end, "emotion", "may not contain '\"'")
  t.raises(function() dialogue.line("Mara", "sad", "") end, "text must be a non-empty string")
  t.raises(function() dialogue.line("Mara", "sad", 42) end, "text must be a non-empty string", "42")
  local msg = t.raises(function() dialogue.line("Mara") end, "text must be a non-empty string")
  t.ok(msg:find("test_dialogue.lua:", 1, true) ~= nil, "error points at the caller: " .. msg)
end)

t.test("lines joins tuples, named entries and ready-made strings", function()
  local out = dialogue.lines{
    { "Mara", "whispering", "we're late" },
    { "Joe", "so?" },
    { speaker = "Guard", emotion = "shouting", text = "stop!" },
    { speaker = "Mara", text = "run" },
    '[Joe]: "ok"',
  }
  t.eq(out, '[Mara, whispering]: "we\'re late" [Joe]: "so?" [Guard, shouting]: "stop!" [Mara]: "run" [Joe]: "ok"', "joined")
  t.eq(dialogue.lines({ { "A", "x" }, { "B", "y" } }, "\n"), '[A]: "x"\n[B]: "y"', "newline separator")
end)

t.test("lines errors name the entry", function()
  t.raises(function() dialogue.lines{} end, "non-empty list")
  t.raises(function() dialogue.lines("x") end, "non-empty list")
  t.raises(function() dialogue.lines{ { "A", "x" }, { "", "y" } } end, "entry 2", "speaker")
  t.raises(function() dialogue.lines{ { "A", "x" }, { "A" } } end, "entry 2", "got 1 values")
  t.raises(function() dialogue.lines{ { "A", "b", "c", "d" } } end, "entry 1", "got 4 values")
  t.raises(function() dialogue.lines{ 5 } end, "entry 1", "got number")
  t.raises(function() dialogue.lines({ { "A", "x" } }, 3) end, "separator")
end)

t.test("speech lowercases and keeps the keep-list in uppercase (docs/validation.md#r5)", function()
  t.eq(dialogue.speech("Call NASA Now, Mara!"), "call nasa now, mara!", "all lower")
  t.eq(dialogue.speech("Call nasa now, Mara!", { "NASA", "Mara" }), "call NASA now, MARA!", "kept")
  t.eq(dialogue.speech("welcome to new york, new kid", { "New York" }), "welcome to NEW YORK, new kid", "multi-word")
  t.eq(dialogue.speech("we said AI is fair", { "AI" }), "we said AI is fair", "whole words only")
  t.eq(dialogue.speech("The FBI's car", "fbi"), "the FBI's car", "single string keep, possessive")
  t.eq(dialogue.speech("  Two\n lines  "), "two lines", "whitespace")
  t.eq(dialogue.speech("Zoë SAYS 你好"), "zoë says 你好", "non-ASCII unchanged")
  t.eq(dialogue.speech("100% sure", { "100%" }), "100% sure", "pattern characters are literal")
  t.eq(dialogue.speech("a.b.c and abc", { "a.b.c" }), "A.B.C and abc", "dots are literal")
  t.raises(function() dialogue.speech("") end, "dialogue.speech", "text")
  t.raises(function() dialogue.speech("hi", { "" }) end, "keep entry 1")
  t.raises(function() dialogue.speech("hi", 5) end, "keep must be a list")
end)

t.test("say = line + speech", function()
  t.eq(dialogue.say("Mara", "urgent", "Call NASA!", { "NASA" }), '[Mara, urgent]: "call NASA!"', "four args")
  t.eq(dialogue.say("Mara", "Call NASA!", { "NASA" }), '[Mara]: "call NASA!"', "no emotion, keep")
  t.eq(dialogue.say("Mara", "Hello There"), '[Mara]: "hello there"', "two args")
end)

t.done()
