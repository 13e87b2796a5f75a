-- Spend at most a fixed budget: price each candidate with kling.cost before submitting, and
-- let kling.budget stop anything that would go over.
-- Run:  klingrun scripts/examples/budgeted.lua [dollars]      (default $2.00)
local kling = require "kling"

local budget = tonumber(arg and arg[1]) or 2.00
kling.budget(budget)

local ideas = {
  "A paper boat drifts down a rain gutter.",
  "A hot-air balloon rises over misty hills at sunrise.",
  "A cat watches snow fall from a window sill.",
  "A chef flips a pancake in slow motion.",
  "A tram crosses a bridge at night, sparks from the wire.",
}

local spent, jobs = 0, {}
for i, prompt in ipairs(ideas) do
  local spec = { name = "idea_" .. i, endpoint = "v3/standard/t2v", prompt = prompt, duration = 5 }
  local dollars, why = kling.cost(spec)
  if spent + dollars > budget then
    print(string.format("skip %-7s $%.3f would pass the $%.2f budget", spec.name, dollars, budget))
  else
    spent = spent + dollars
    print(string.format("take %-7s $%.3f (%s s at $%s/s, audio %s)", spec.name, dollars,
      tostring(why and why.seconds), tostring(why and why.rate), tostring(why and why.audio)))
    jobs[#jobs + 1] = kling.submit(spec)
  end
end

kling.wait_all(jobs)
print(string.format("%d of %d ideas made, $%.2f of $%.2f", #jobs, #ideas, spent, budget))
