-- wrk script for benchmarks/serving.py: POST one JSON body, count non-2xx answers, and
-- print the results as one machine-readable line.
--
--   wrk -t1 -c32 -d10s -s benchmarks/post.lua URL -- BODY_FILE [PACE_MS]
--
-- PACE_MS (optional): after each answer a connection waits a random think time, drawn
-- from an exponential distribution with this mean, before its next request: arrivals are
-- then close to a Poisson stream of concurrency / PACE_MS requests per ms, below the
-- backend's saturation (benchmarks/router.py's `paced` layout). Random, not fixed: with
-- a fixed think time the connections answered in one micro-batch would send again
-- together, forever, in bursts of the whole concurrency. Without PACE_MS every
-- connection sends as soon as its answer arrives (closed loop).
--
-- The last line of output is "WRK_JSON {...}" with requests, duration_us, latency
-- percentiles in microseconds, non2xx (any status outside 200-299, counted in
-- response()), and wrk's socket errors (connect, read, write, timeout).

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function delay()
   if pace_ms <= 0 then
      return 0
   end
   -- wrk counts whole milliseconds
   return math.floor(-pace_ms * math.log(1 - math.random()) + 0.5)
end

function init(args)
   pace_ms = tonumber(args[2] or "0")
   math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
   local path = args[1]
   if path == nil then
      error("usage: wrk ... -s post.lua URL -- BODY_FILE")
   end
   local file = assert(io.open(path, "rb"))
   wrk.body = file:read("*a")
   file:close()
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
   non2xx = 0
   first_bad_status = 0
end

function response(status, headers, body)
   if status < 200 or status > 299 then
      non2xx = non2xx + 1
      if first_bad_status == 0 then
         first_bad_status = status
      end
   end
end

function done(summary, latency, requests)
   local bad, bad_status = 0, 0
   for _, thread in ipairs(threads) do
      bad = bad + thread:get("non2xx")
      if bad_status == 0 then
         bad_status = thread:get("first_bad_status")
      end
   end
   local errors = summary.errors
   io.write(string.format(
      'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, '
         .. '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f, '
         .. '"non2xx": %d, "first_bad_status": %d, "connect_errors": %d, "read_errors": %d, '
         .. '"write_errors": %d, "timeouts": %d}\n',
      summary.requests, summary.duration, summary.bytes,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      latency.mean, bad, bad_status, errors.connect, errors.read, errors.write, errors.timeout))
end
