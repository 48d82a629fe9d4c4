-- wrk script for leadscore's Segment-compatible ingestion (bench/service/run.sh).
--
--   wrk -t2 -c50 -d20s -s segment.lua http://HOST:PORT -- KEY RUN_ID BATCH USERS TIMESTAMP [IDS] [ZIPF]
--
-- BATCH = 0 sends one message per request to POST /v1/track; BATCH = N > 0 sends
-- {"batch": [N track messages]} to POST /v1/batch. Every message has a unique messageId, so none
-- is a duplicate no-op: with IDS = sequential (the default) RUN_ID-thread-counter-index, with
-- IDS = random a random UUID-like id as Segment's libraries send (RUN_ID-thread- then 32 random
-- hex digits); userIds are drawn from USERS distinct ids, uniformly, or with ZIPF = S > 0 by
-- Zipf's law of exponent S (rank k with weight 1 / k^S, ranks scattered over the ids), as real
-- traffic is: a few users send most events. done() prints one machine-readable
-- line, WRK_RESULT ..., that run.sh parses.
--
-- SEGMENT_ADDRS="HOST:PORT HOST:PORT ..." in the environment sends each thread's connections to
-- one of those addresses in turn (thread k to the k-th, round the list), in place of the URL's:
-- one load generator spreads its connections over several servers, as a load balancer would,
-- and stays the same whether there is one server or several (bench/service/instances.sh).

local threads = {}
local counter = 0

local events = {
  "page_view", "page_view", "page_view", "page_view", "email_open", "email_click",
  "content_download", "pricing_page_view", "webinar_attended", "form_submit",
  "careers_page_view", "support_ticket", "demo_request",
}

local addresses = {}
for address in string.gmatch(os.getenv("SEGMENT_ADDRS") or "", "%S+") do
  table.insert(addresses, address)
end

function setup(thread)
  thread:set("tid", #threads + 1)
  if #addresses > 0 then
    local address = addresses[#threads % #addresses + 1]
    local host, port = string.match(address, "^(.*):(%d+)$")
    thread.addr = wrk.lookup(host, port)[1]
  end
  table.insert(threads, thread)
end

function init(args)
  key = args[1]
  run_id = args[2] or "run"
  batch = tonumber(args[3] or "0")
  users = tonumber(args[4] or "5000")
  stamp = args[5] or "2026-01-01T00:00:00Z"
  random_ids = (args[6] or "sequential") == "random"
  zipf = tonumber(args[7] or "0")
  math.randomseed(tid * 104729 + os.time())
  if zipf > 0 then
    cumulative = {}
    local total = 0
    for k = 1, users do
      total = total + 1 / k ^ zipf
      cumulative[k] = total
    end
  end
  wrk.method = "POST"
  wrk.headers["Authorization"] = "Bearer " .. key
  wrk.headers["Content-Type"] = "application/json"
  path = batch > 0 and "/v1/batch" or "/v1/track"
end

local function message_id(n, i)
  if random_ids then
    return string.format("%s-%d-%08x%08x%08x%08x", run_id, tid,
      math.random(0, 0x7fffffff), math.random(0, 0x7fffffff), math.random(0, 0x7fffffff), math.random(0, 0x7fffffff))
  end
  return string.format("%s-%d-%d-%d", run_id, tid, n, i)
end

-- A user number in 1..users: uniform, or by Zipf's law (binary search in the cumulative
-- weights, then a multiplicative permutation by a prime so that the busiest users are spread).
local function user()
  if not cumulative then
    return math.random(users)
  end
  local target = math.random() * cumulative[users]
  local lo, hi = 1, users
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cumulative[mid] < target then lo = mid + 1 else hi = mid end
  end
  return (lo * 2654435761) % users + 1
end

local function message(kind, n, i)
  return string.format(
    '{%s"userId":"user-%d","event":"%s","messageId":"%s","timestamp":"%s","properties":{"path":"/docs/%d","plan":"pro"}}',
    kind, user(), events[math.random(#events)], message_id(n, i), stamp, math.random(50))
end

function request()
  counter = counter + 1
  local body
  if batch > 0 then
    local parts = {}
    for i = 1, batch do
      parts[i] = message('"type":"track",', counter, i)
    end
    body = '{"batch":[' .. table.concat(parts, ",") .. ']}'
  else
    body = message("", counter, 0)
  end
  return wrk.format(nil, path, nil, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK_RESULT requests=%d duration_us=%d bytes=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d mean_us=%.0f " ..
    "err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d\n",
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout))
end
