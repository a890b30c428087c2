-- wrk script: POST a distinct answer callback per request (unique callId), with Basic auth.
-- Counts 2xx and other statuses across threads and prints them as JSON at the end.
local counter = 0
local threads = {}
local id = 0

function setup(thread)
  id = id + 1
  thread:set("tid", id)
  table.insert(threads, thread)
end

function init(args)
  ok = 0
  bad = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Basic " .. (os.getenv("BENCH_AUTH") or "")
end

function request()
  counter = counter + 1
  -- BENCH_PREFIX tells apart the rows of runs that share one database (bench_scaleout.py).
  local call = string.format("c-bench-%s-%d-%d-%d", os.getenv("BENCH_PREFIX") or "", tid, counter, os.time())
  local body = '{"eventType":"answer","eventTime":"2019-06-20T15:54:25.435Z","accountId":"55555555",'
    .. '"applicationId":"7fc9698a-b04a-468b-9e8f-91238c0d0086","from":"+12025550100",'
    .. '"to":"+12025550123","direction":"outbound","callId":"' .. call .. '",'
    .. '"startTime":"2019-06-20T15:54:22.234Z","answerTime":"2019-06-20T15:54:25.432Z"}'
  return wrk.format(nil, "/callbacks/answer", nil, body)
end

function response(status, headers, body)
  if status >= 200 and status < 300 then ok = ok + 1 else bad = bad + 1 end
end

function done(summary, latency, requests)
  local total_ok, total_bad = 0, 0
  for _, t in ipairs(threads) do
    total_ok = total_ok + t:get("ok")
    total_bad = total_bad + t:get("bad")
  end
  io.write(string.format('RESULT {"ok": %d, "bad": %d, "p50_ms": %.2f, "p99_ms": %.2f, "errors": %d}\n',
    total_ok, total_bad, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
