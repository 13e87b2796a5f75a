-- Dialogue text for Kling prompts, in Kling's speaker form `[Name, emotion]: "text"`, plus
-- dialogue.speech(), which writes English speech the way fal advises for generate_audio.
--
--   local dialogue = require "kling.dialogue"
--   dialogue.line("Mara", "whispering", "we're late")   --> [Mara, whispering]: "we're late"
--   dialogue.line("Mara", "we're late")                 --> [Mara]: "we're late"
--   dialogue.lines{ {"Mara", "whispering", "we're late"}, {"Joe", "so?"} }
--   dialogue.speech("Call NASA now, Mara!", {"NASA"})    --> "call NASA now, mara!"
--   dialogue.speech("Call NASA now, Mara!", {"NASA", "Mara"}) --> "call NASA now, MARA!"
local util = require "kling.util"

local dialogue = {}

-- Speaker names and emotions sit inside `[...]` separated by a comma, so neither may contain
-- brackets or line breaks, and a speaker may not contain a comma.
local function check_label(v, what, where, allow_comma)
  if not util.nonempty_string(v) then
    util.fail("%s: %s must be a non-empty string, got %s", where, what, util.show(v))
  end
  v = util.squish(v)
  local bad = allow_comma and "[%[%]\"]" or "[%[%],\"]"
  local c = v:match(bad)
  if c then
    util.fail("%s: %s %s may not contain '%s' (it would break the [Name, emotion] form)",
      where, what, util.show(v), c)
  end
  return v
end

-- Escapes backslashes and double quotes so the text stays one quoted string: `a "b"` -> `a \"b\"`.
local function escape(text)
  return (text:gsub("\\", "\\\\"):gsub('"', '\\"'))
end

local function line(where, speaker, emotion, text)
  if text == nil then emotion, text = nil, emotion end      -- line(speaker, text)
  speaker = check_label(speaker, "speaker", where, false)
  if emotion ~= nil and emotion ~= "" then
    emotion = check_label(emotion, "emotion", where, true)
  else
    emotion = nil
  end
  if not util.nonempty_string(text) then
    util.fail("%s: text must be a non-empty string, got %s", where, util.show(text))
  end
  local label = emotion and (speaker .. ", " .. emotion) or speaker
  return string.format('[%s]: "%s"', label, escape(util.squish(text)))
end

--- dialogue.line(speaker, emotion, text) -> `[speaker, emotion]: "text"`; emotion may be omitted.
function dialogue.line(speaker, emotion, text)
  return (util.guard(2, line, "dialogue.line", speaker, emotion, text))
end

-- One entry of dialogue.lines: {speaker, emotion, text}, {speaker, text},
-- {speaker=, emotion=, text=}, or a string that is already a formatted line.
local function entry(e, i)
  local where = "dialogue.lines: entry " .. i
  if type(e) == "string" then
    if not util.nonempty_string(e) then util.fail("%s: empty string", where) end
    return util.squish(e)
  end
  if type(e) ~= "table" then
    util.fail("%s: expected {speaker, emotion, text} or a string, got %s", where, type(e))
  end
  if e.speaker ~= nil or e.text ~= nil then
    return line(where, e.speaker, e.emotion or "", e.text)
  end
  local n = #e
  if n == 3 then return line(where, e[1], e[2], e[3]) end
  if n == 2 then return line(where, e[1], "", e[2]) end
  util.fail("%s: expected {speaker, emotion, text} or {speaker, text}, got %d values", where, n)
end

local function lines(list, sep)
  if type(list) ~= "table" or #list == 0 then
    util.fail("dialogue.lines: expected a non-empty list of lines, got %s", util.show(list))
  end
  if sep ~= nil and type(sep) ~= "string" then
    util.fail("dialogue.lines: separator must be a string, got %s", type(sep))
  end
  local out = {}
  for i = 1, #list do out[i] = entry(list[i], i) end
  return table.concat(out, sep or " ")
end

--- dialogue.lines(list, sep) -> the formatted lines joined by sep (default " "; "\n" also works).
function dialogue.lines(list, sep)
  return (util.guard(2, lines, list, sep))
end

-- Speech case rule (docs/validation.md#speech, from fal's generate_audio description): "write
-- English speech in lowercase, acronyms/proper nouns in uppercase". So every ASCII letter is lowered,
-- then each entry of `keep` found as a whole word (case-insensitive; multi-word entries allowed,
-- e.g. "New York") is written in UPPERCASE. Only ASCII letters change (string.lower/upper),
-- so Chinese or accented text passes through unchanged.
local function speech(text, keep)
  if not util.nonempty_string(text) then
    util.fail("dialogue.speech: text must be a non-empty string, got %s", util.show(text))
  end
  if type(keep) == "string" then keep = { keep } end
  if keep ~= nil and type(keep) ~= "table" then
    util.fail("dialogue.speech: keep must be a list of words, got %s", type(keep))
  end
  local out = util.squish(text):lower()
  local words = {}
  for i, w in ipairs(keep or {}) do
    if not util.nonempty_string(w) then
      util.fail("dialogue.speech: keep entry %d must be a non-empty string, got %s", i, util.show(w))
    end
    words[#words + 1] = util.squish(w)
  end
  table.sort(words, function(a, b) return #a > #b end)    -- longest first: "New York" before "New"
  for _, w in ipairs(words) do
    local needle = util.pattern_escape(w:lower())
    -- %f frontier (LuaJIT/5.2+): match only at word boundaries.
    local pattern = "%f[%w]" .. needle .. "%f[%W]"
    if not w:sub(1, 1):match("%w") then pattern = needle .. "%f[%W]" end
    if not w:sub(-1):match("%w") then pattern = pattern:gsub("%%f%[%%W%]$", "") end
    out = out:gsub(pattern, (w:upper():gsub("%%", "%%%%")))
  end
  return out
end

--- dialogue.speech(text, keep) -> text lowercased for Kling's English speech, `keep` words in UPPERCASE.
function dialogue.speech(text, keep)
  return (util.guard(2, speech, text, keep))
end

--- dialogue.say(speaker, emotion, text, keep) -> dialogue.line with its text passed through speech().
function dialogue.say(speaker, emotion, text, keep)
  return (util.guard(2, function()
    if text == nil or type(text) == "table" then emotion, text, keep = nil, emotion, text end
    return line("dialogue.say", speaker, emotion, speech(text, keep))
  end))
end

-- Unguarded implementations for the other kling.* helpers (errors carry no position).
rawset(dialogue, "_raw", { line = function(...) return line("dialogue.line", ...) end,
                           lines = lines, speech = speech })

return dialogue
