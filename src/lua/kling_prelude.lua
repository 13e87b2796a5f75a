-- The blocking half of the kling module, in Lua so that errors carry the caller's file:line
-- (error(msg, 2)) and yields happen in plain Lua frames. `K` is the module table, `C` the C
-- primitives (wrap_kling.cpp). Loaded once per module instance with chunk name "=kling".
local K, C = ...

local Job = {}
Job.__index = Job

local function await(job, level)
  local ok, res = C.await(job._id)
  if not ok then error(res, level + 1) end
  return res
end

-- Waits for the job and returns its result table; raises the job's error at the caller's line.
function Job:wait() return await(self, 2) end
-- "waiting", "queued", "running", "downloading", "done", "failed", ... without blocking.
function Job:status() return C.job_status(self._id) end
-- nil while it runs or once its video is on disk; else {kind, message, request_id, lines,
-- advice, final_on_fal}, for scripts that branch on why a job failed.
function Job:error() return C.job_error(self._id) end
-- Asks fal to cancel the job.
function Job:cancel() return C.job_cancel(self._id) end
function Job:__tostring() return "kling.job(" .. self.name .. ")" end

-- Validates, prices and queues a generation; returns a job at once.
function K.submit(spec)
  local id, name, cost = C.submit(spec)
  -- name is nil when it is spec.name unchanged: interning it again costs LuaJIT a string-table
  -- walk per job (names like shot_1 … shot_100000 share their hash).
  return setmetatable({_id = id, name = name or spec.name, cost_usd = cost}, Job)
end

-- Submits and waits: returns the result table when the video is on disk.
function K.generate(spec)
  local id = C.submit(spec)
  return await({_id = id}, 2)
end

-- Waits for every job (in order) and returns their results in the same order.
function K.wait_all(jobs)
  local results = {}
  for i, job in ipairs(jobs) do results[i] = await(job, 2) end
  return results
end

local Task = {}
Task.__index = Task
-- Waits for a spawned function to return and gives back its return values.
local function check_task(ok, ...)
  if not ok then error((...), 3) end
  return ...
end
function Task:wait() return check_task(C.await_task(self._id)) end

-- Runs fn(...) as its own coroutine; returns a task whose :wait() gives fn's results.
function K.spawn(fn, ...)
  if type(fn) ~= "function" then error("kling.spawn: expected a function, got " .. type(fn), 2) end
  return setmetatable({_id = C.spawn(fn, ...)}, Task)
end

return K
