-- wrk script for bench/run: `wrk ... -s bench/wrk.lua <url> -- <scenario> <data.lua>`.
-- <data.lua> (written by bench/run) defines: tokens[n] (session token of user n),
-- projects[n] (id of project n; user u owns u, u+U, u+2U, ...), execs[u] (a running
-- execution of user u), hot (the hot chat project, user 1's), cursor5000.
-- Each request picks a random user, so rows and row locks are spread like real traffic.
-- done() prints one `BENCH ...` line that bench/run parses.

local scenario, nusers
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("thread_no", counter)
end

local log_body
local function make_log_body()
  local lines = {}
  for i = 1, 100 do
    lines[i] = string.format('{"level":"info","message":"bench log line %d: compiling crate, running step, all fine so far"}', i)
  end
  return '{"lines":[' .. table.concat(lines, ",") .. ']}'
end

function init(args)
  scenario = args[1]
  dofile(args[2])
  nusers = #tokens
  math.randomseed(os.time() * 1000 + (thread_no or 0))
  log_body = make_log_body()
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
  elseif scenario == "create_project" then
    return wrk.format("POST", "/api/projects", json_auth(u), '{"name":"bench project"}')
  elseif scenario == "append_logs" then
    return wrk.format("POST", "/api/executions/" .. execs[u] .. "/logs", json_auth(u), log_body)
  elseif scenario == "claim_next" then
    return wrk.format("POST", "/api/tasks/claim", json_auth(u), '{"agent_type":"claude-code"}')
  end
  error("unknown scenario " .. tostring(scenario))
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.status, e.connect, e.read, e.write, e.timeout))
end
