-- wrk script: POST a JSON template whose messageId slots get fresh ids on every request.
--
-- Environment:
--   BODY_FILE  template body; every "@@MID@@" in it becomes a unique id per request
--   BENCH_PATH request path, e.g. /v1/track
--   RUN_ID     prefix that makes ids unique across wrk runs against the same server
--   MESSAGE_IDS random (default): each id starts with 64 random bits, as the UUIDs Segment's
--              SDKs send land anywhere in the de-duplication index; sequential: the run's
--              prefix and a counter only (ids that sort in the order they are sent)
--   AUTH       value of the Authorization header
--   RATE_PER_THREAD optional: each thread sends at most this many requests/s, on a fixed
--              schedule whatever the answers' latency (a paced load; a late slot goes at once)
-- done() prints one machine-readable line: WRK_RESULT {json}.

local SLOT = "@@MID@@"
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  local f = assert(io.open(assert(os.getenv("BODY_FILE"), "BODY_FILE unset"), "rb"))
  local template = f:read("*a")
  f:close()
  -- split the template around the slots once; request() only fills the gaps
  pieces = {}
  local start = 1
  while true do
    local s, e = string.find(template, SLOT, start, true)
    if not s then break end
    pieces[#pieces + 1] = string.sub(template, start, s - 1)
    start = e + 1
  end
  tail = string.sub(template, start)
  assert(#pieces > 0, "no " .. SLOT .. " slot in the template")
  prefix = (os.getenv("RUN_ID") or "run") .. "-" .. tid .. "-"
  path = os.getenv("BENCH_PATH") or "/"
  headers = {["Content-Type"] = "application/json", ["Authorization"] = os.getenv("AUTH")}
  counter = 0
  parts = {}
  random_ids = (os.getenv("MESSAGE_IDS") or "random") ~= "sequential"
  math.randomseed(tid * 7919 + os.time())
end

-- 16 random hex digits (four 16-bit draws: within any Lua's integer formatting)
local function random_part()
  local r = math.random
  return string.format("%04x%04x%04x%04x-", r(0, 65535), r(0, 65535), r(0, 65535), r(0, 65535))
end

function request()
  local n = #pieces
  for i = 1, n do
    counter = counter + 1
    parts[2 * i - 1] = pieces[i]
    if random_ids then
      parts[2 * i] = random_part() .. prefix .. counter
    else
      parts[2 * i] = prefix .. counter
    end
  end
  parts[2 * n + 1] = tail
  return wrk.format("POST", path, headers, table.concat(parts))
end

local rate = tonumber(os.getenv("RATE_PER_THREAD") or "")
if rate then
  -- wrk's Lua has no wall clock: LuaJIT's FFI reads CLOCK_MONOTONIC
  local ffi = require("ffi")
  ffi.cdef [[
    typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
    int clock_gettime(int clock_id, bench_timespec *tp);
  ]]
  local clock = ffi.new("bench_timespec")
  local function now_ms()
    ffi.C.clock_gettime(1, clock)
    return tonumber(clock.tv_sec) * 1000 + tonumber(clock.tv_nsec) / 1e6
  end
  local interval = 1000 / rate
  local slot = nil
  -- called before each request of any of the thread's connections: the next free slot
  function delay()
    local now = now_ms()
    slot = slot or now
    local wait = slot - now
    slot = slot + interval
    if wait < 0 then return 0 end
    return wait
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests": %d, "duration_us": %d, "rps": %.1f, "bytes": %d, ' ..
    '"p50_ms": %.3f, "p90_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f, ' ..
    '"status_errors": %d, "connect": %d, "read": %d, "write": %d, "timeout": %d}\n',
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6), summary.bytes,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    e.status, e.connect, e.read, e.write, e.timeout))
end
