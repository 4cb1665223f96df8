-- wrk script for bench/load.sh. One file, three scenarios, picked by the first
-- script argument (after `--` on wrk's command line):
--
--   create TAG   POST create-account (10/69) with a fresh ExtID on every request:
--                "TAG-<thread>-<n>", so each request is a real insert, never an update.
--   get N        GET one account by ExtID (3/69), ExtID drawn at random from S1..SN
--                (the accounts load.sh seeded).
--   list         GET the first page of 100 accounts (3/69, PageSize=100).
--   rest-create TAG, rest-get N, rest-list
--                the same three through the REST face: POST /v1/accounts,
--                GET /v1/accounts/by-ext-id/S<n>, GET /v1/accounts?limit=100&include=total_count
--                (the dynamic door's list always counts; this one is asked to).
--
-- Auth and Content-Type headers come from wrk's -H flags. Every response is checked:
-- on the dynamic door HTTP 200 *and* "METHOD_STATUS":1 in the body (it answers
-- method errors with HTTP 200 and METHOD_STATUS 0, so the status code alone proves
-- nothing); on the REST face 200 (201 for a create).
-- done() prints one machine-readable line starting with RESULT.

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local mode, arg2
local rest = false
local counter = 0
local prefix = ""
local fixed_request = nil
local seeded = 0
bad = 0        -- responses that were not HTTP 200 with METHOD_STATUS 1 (read by done())
bad_sample = "" -- the first such body, for the log

function init(args)
  mode = args[1] or "list"
  arg2 = args[2]
  if string.sub(mode, 1, 5) == "rest-" then
    rest = true
    mode = string.sub(mode, 6)
  end
  local tid = id or 0
  if mode == "create" then
    prefix = (arg2 or "L") .. "-" .. tid .. "-"
  elseif mode == "get" then
    seeded = tonumber(arg2 or "1")
    math.randomseed(os.time() * 1000 + tid)
  elseif rest then
    fixed_request = wrk.format("GET", "/v1/accounts?limit=100&include=total_count")
  else
    fixed_request = wrk.format("GET", "/api/dynamicapi?api_code=3&entity_code=69&PageSize=100")
  end
end

function request()
  if mode == "create" and rest then
    counter = counter + 1
    local ext = prefix .. counter
    local body = '{"ext_id":"' .. ext .. '","account_name":"Load ' .. ext ..
      '","account_type":1,"account_status":1,"email":"l' .. ext .. '@load.example.com"}'
    return wrk.format("POST", "/v1/accounts", nil, body)
  elseif mode == "get" and rest then
    return wrk.format("GET", "/v1/accounts/by-ext-id/S" .. math.random(1, seeded))
  elseif mode == "create" then
    counter = counter + 1
    local ext = prefix .. counter
    local body = '{"api_code":10,"entity_code":69,"ExtID":"' .. ext ..
      '","AccountName":"Load ' .. ext ..
      '","AccountType":1,"AccountStatus":1,"Email":"l' .. ext .. '@load.example.com"}'
    return wrk.format("POST", "/api/dynamicapi", nil, body)
  elseif mode == "get" then
    return wrk.format("GET", "/api/dynamicapi?api_code=3&entity_code=69&ExtID=S" ..
      math.random(1, seeded))
  end
  return fixed_request
end

function response(status, headers, body)
  local ok
  if rest then
    ok = status == 200 or (mode == "create" and status == 201)
  else
    ok = status == 200 and body:find('"METHOD_STATUS":1', 1, true)
  end
  if not ok then
    bad = bad + 1
    if bad_sample == "" then
      bad_sample = status .. " " .. string.sub(body or "", 1, 300)
    end
  end
end

function done(summary, latency, requests)
  local nbad = 0
  local sample = ""
  for _, t in ipairs(threads) do
    nbad = nbad + (t:get("bad") or 0)
    local s = t:get("bad_sample")
    if sample == "" and s and s ~= "" then sample = s end
  end
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d rps=%.1f mean_us=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
    "err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d bad=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout, nbad))
  if sample ~= "" then
    io.write("BAD_SAMPLE " .. sample:gsub("\n", " ") .. "\n")
  end
end
