-- wrk script: every request carries one of the logged-in sessions and one of that
-- session's pages, taken round-robin, and every status other than 200 counts as an error.
--
-- Usage: wrk ... -s browse.lua URL -- SESSIONS_FILE
-- SESSIONS_FILE has one line per request template: "<session key> <path>".

local templates = {}
local next_index = 1
local threads = {}
-- Global, not local: done() reads it from each thread with thread:get().
status_counts = {}

local function load_templates(path)
   local loaded = {}
   for line in io.lines(path) do
      local session, page = line:match("^(%S+)%s+(%S+)$")
      if session then
         loaded[#loaded + 1] = { session = session, path = page }
      end
   end
   return loaded
end

function setup(thread)
   threads[#threads + 1] = thread
   thread:set("thread_number", #threads)
end

function init(args)
   templates = load_templates(args[1])
   -- Threads start at different places, so they do not send the same page at the same time.
   next_index = ((thread_number or 1) * 37) % #templates + 1
   status_counts = {}
end

function request()
   local template = templates[next_index]
   next_index = next_index % #templates + 1
   return wrk.format("GET", template.path, { ["Cookie"] = "sessionid=" .. template.session })
end

function response(status, headers, body)
   status_counts[status] = (status_counts[status] or 0) + 1
end

function done(summary, latency, requests)
   local statuses = {}
   for _, thread in ipairs(threads) do
      local counts = thread:get("status_counts")
      for status, count in pairs(counts) do
         statuses[#statuses + 1] = string.format("[%d, %d]", status, count)
      end
   end
   -- One JSON line for bench/load/run.py; latencies are microseconds.
   io.write(string.format(
      'WRK_RESULT {"requests": %d, "duration_us": %d, "bytes": %d, "errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
         .. '"p50_us": %d, "p95_us": %d, "p99_us": %d, "max_us": %d, "statuses": [%s]}\n',
      summary.requests, summary.duration, summary.bytes,
      summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status, summary.errors.timeout,
      latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max,
      table.concat(statuses, ", ")
   ))
end
