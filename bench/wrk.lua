-- wrk script for bench/run: `wrk ... -s bench/wrk.lua <url> -- <scenario> <data.lua>`.
-- <data.lua> (written by bench/run) defines: tokens[n] (session token of user n),
-- users[n] (id of user n), projects[n] (id of project n; user u owns u, u+U, u+2U, ...), execs[u] (a running
-- execution of user u), hot (the hot chat project, user 1's), cursor5000.
-- Each request picks a random user, so rows and row locks are spread like real traffic.
-- done() prints one `BENCH ...` line that bench/run parses.
-- claim_complete: agents that claim (POST /api/tasks/claim) and complete what they got
-- (POST /api/executions/{id}/complete, as the user who claimed it), as fast as they can;
-- a thread's connections share its queue of claimed executions. append_batch: appends of
-- <batch> lines (the third argument) to user u's execution.

local scenario, nusers
local counter = 0

local all_threads = {}
function setup(thread)
  counter = counter + 1
  thread:set("thread_no", counter)
  table.insert(all_threads, thread)
end

-- claim_complete: claimed executions waiting for their completion, and counters.
local to_complete = {}
claims, empty, completes, other = 0, 0, 0, 0
local user_no = {}  -- user id -> n (claim_complete)

local log_body
local function make_log_body(n)
  local lines = {}
  for i = 1, n do
    lines[i] = string.format('{"level":"info","message":"bench log line %d: compiling crate, running step, all fine so far"}', i)
  end
  return '{"lines":[' .. table.concat(lines, ",") .. ']}'
end

function init(args)
  scenario = args[1]
  bench_scenario = scenario  -- a global, for done()
  dofile(args[2])
  nusers = #tokens
  math.randomseed(os.time() * 1000 + (thread_no or 0))
  log_body = make_log_body(tonumber(args[3] or "100"))
  for n, id in ipairs(users or {}) do user_no[id] = n end
  -- Only claim_complete reads answers: the others keep wrk's cheaper response path.
  if scenario ~= "claim_complete" then response = nil end
end

local function auth(u)
  return { ["Authorization"] = "Bearer " .. tokens[u] }
end

local function json_auth(u)
  return { ["Authorization"] = "Bearer " .. tokens[u], ["Content-Type"] = "application/json" }
end

function request()
  local u = math.random(nusers)
  if scenario == "get_project" then
    local p = u + nusers * math.random(0, 9)
    return wrk.format("GET", "/api/projects/" .. projects[p], auth(u))
  elseif scenario == "list_projects" then
    return wrk.format("GET", "/api/projects?limit=20", auth(u))
  elseif scenario == "chat_page1" then
    return wrk.format("GET", "/api/projects/" .. hot .. "/messages?limit=20", auth(1))
  elseif scenario == "chat_page5000" then
    return wrk.format("GET", "/api/projects/" .. hot .. "/messages?limit=20&cursor=" .. cursor5000, auth(1))
  elseif scenario == "chat_desc_page1" then
    return wrk.format("GET", "/api/projects/" .. hot .. "/messages?order=desc&limit=20", auth(1))
  elseif scenario == "chat_desc_page5000" then
    return wrk.format("GET", "/api/projects/" .. hot .. "/messages?order=desc&limit=20&cursor=" .. cursor5000desc, auth(1))
  elseif scenario == "http_floor" then
    return wrk.format("GET", "/livez")
  elseif scenario == "create_project" then
    return wrk.format("POST", "/api/projects", json_auth(u), '{"name":"bench project"}')
  elseif scenario == "append_logs" then
    return wrk.format("POST", "/api/executions/" .. execs[u] .. "/logs", json_auth(u), log_body)
  elseif scenario == "append_batch" then
    return wrk.format("POST", "/api/executions/" .. execs[u] .. "/logs", json_auth(u), log_body)
  elseif scenario == "claim_complete" then
    local job = table.remove(to_complete)
    if job then
      return wrk.format("POST", "/api/executions/" .. job.x .. "/complete", json_auth(job.u), "")
    end
    return wrk.format("POST", "/api/tasks/claim", json_auth(u), '{"agent_type":"claude-code"}')
  elseif scenario == "claim_next" then
    return wrk.format("POST", "/api/tasks/claim", json_auth(u), '{"agent_type":"claude-code"}')
  end
  error("unknown scenario " .. tostring(scenario))
end

-- claim_complete only: which answer was it? A 200 of a claim carries the execution to complete.
function response(status, headers, body)
  if scenario ~= "claim_complete" then return end
  -- A claim answers {"task":...,"execution":{"id":...}}; a completion {"execution":...}.
  local x = body and string.sub(body, 1, 8) == '{"task":' and string.match(body, '"execution":{"id":"([%x-]+)"')
  if status == 200 and x then
    claims = claims + 1
    table.insert(to_complete, { x = x, u = user_no[string.match(body, '"assigned_to":"([%x-]+)"')] })
  elseif status == 200 then
    completes = completes + 1
  elseif status == 204 then
    empty = empty + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  -- done() runs in the main script state, where init() never ran: ask a thread.
  if all_threads[1] and all_threads[1]:get("bench_scenario") == "claim_complete" then
    local c, k, e0, o = 0, 0, 0, 0
    for _, t in ipairs(all_threads) do
      c = c + t:get("claims"); k = k + t:get("completes"); e0 = e0 + t:get("empty"); o = o + t:get("other")
    end
    io.write(string.format("CYCLES claims=%d completes=%d empty=%d other=%d\n", c, k, e0, o))
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.status, e.connect, e.read, e.write, e.timeout))
end
