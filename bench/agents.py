#!/usr/bin/env python3
"""bench/agents.py: the agent runtime's latency scenarios for bench/run
(Python 3 standard library only; not run in CI).

  agents.py wakeup <mode> <url> <token> <project> <tasks>
      8 agents of type bench-wake claim and complete while <tasks> tasks are
      created one by one (POST /api/tasks, 20-80 ms apart). mode `wait`: each
      agent holds `POST /api/tasks/claim {"wait": 25}` open; mode `poll`: each
      agent claims without wait and sleeps 500 ms after a 204 (the interval
      the server itself polls at when it has no notifications).
      Latency of a task: from just before its create request is sent to the
      moment its claim's answer reaches an agent.
  agents.py sse <url> <token> <execution> <after> <subscribers> <seconds> <rate> <batch>
      <subscribers> clients stream GET /api/executions/{id}/logs/stream?after=<after>
      (split over two processes) while one writer appends <rate> lines/s in
      batches of <batch>; each message carries the time its batch was sent.
      Lag of a line: from its batch's send to its arrival at a subscriber.

Prints one `BENCH key=value ...` line that bench/run parses.
"""
import http.client
import json
import multiprocessing as mp
import random
import re
import sys
import threading
import time
from urllib.parse import urlparse


def conn(url):
    u = urlparse(url)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=60)


def call(c, method, path, token, body=None):
    headers = {"Authorization": "Bearer " + token}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    c.request(method, path, body=data, headers=headers)
    r = c.getresponse()
    raw = r.read()
    return r.status, raw


def pct(values, p):
    if not values:
        return 0.0
    v = sorted(values)
    i = min(len(v) - 1, max(0, int(round(p / 100 * len(v) + 0.5)) - 1))
    return v[i]


# ----------------------------------------------------------------- wake-up
def wakeup(mode, url, token, project, ntasks):
    ntasks = int(ntasks)
    sent = {}       # title -> time the create request was sent
    claimed = {}    # title -> time the claim answer arrived
    counts = {"claims": 0, "empty": 0, "errors": 0}
    lock = threading.Lock()
    stop = threading.Event()

    def agent():
        c = conn(url)
        while not stop.is_set():
            body = {"agent_type": "bench-wake"}
            if mode == "wait":
                body["wait"] = 25
            try:
                status, raw = call(c, "POST", "/api/tasks/claim", token, body)
            except Exception:
                with lock:
                    counts["errors"] += 1
                c = conn(url)
                continue
            now = time.time()
            if status == 204:
                with lock:
                    counts["empty"] += 1
                if mode == "poll" and not stop.is_set():
                    time.sleep(0.5)
                continue
            if status != 200:
                with lock:
                    counts["errors"] += 1
                time.sleep(0.1)
                continue
            got = json.loads(raw)
            title = got["task"]["title"]
            with lock:
                counts["claims"] += 1
                if title in claimed:
                    counts["errors"] += 1  # claimed twice
                claimed[title] = now
            status, _ = call(c, "POST", "/api/executions/%s/complete" % got["execution"]["id"], token)
            if status != 200:
                with lock:
                    counts["errors"] += 1

    agents = [threading.Thread(target=agent, daemon=True) for _ in range(8)]
    for a in agents:
        a.start()
    time.sleep(0.5)  # the agents are waiting (or polling) before the first task
    c = conn(url)
    create_ms = []
    for n in range(ntasks):
        title = "wake %d %s" % (n, mode)
        t0 = time.time()
        sent[title] = t0
        status, _ = call(c, "POST", "/api/tasks", token,
                         {"project_id": project, "title": title,
                          "requirements": {"agent_type": "bench-wake"}})
        create_ms.append((time.time() - t0) * 1000)
        if status != 201:
            counts["errors"] += 1
        time.sleep(random.uniform(0.02, 0.08))
    deadline = time.time() + 5
    while time.time() < deadline:
        with lock:
            if len(claimed) >= ntasks:
                break
        time.sleep(0.01)
    stop.set()
    lat = [(claimed[t] - sent[t]) * 1000 for t in sent if t in claimed]
    print("BENCH mode=%s tasks=%d claimed=%d p50_ms=%.2f p99_ms=%.2f max_ms=%.2f create_p50_ms=%.2f empty=%d errors=%d"
          % (mode, ntasks, len(lat), pct(lat, 50), pct(lat, 99), max(lat or [0]), pct(create_ms, 50),
             counts["empty"], counts["errors"]))


# --------------------------------------------------------------------- SSE
STAMP = re.compile(r'"message":"bench sse t=([0-9.]+) ')


def subscribers(url, token, execution, after, n, until, out):
    lags, counts, lock = [], [0, 0], threading.Lock()

    def one():
        c = conn(url)
        c.request("GET", "/api/executions/%s/logs/stream?after=%s" % (execution, after),
                  headers={"Authorization": "Bearer " + token, "Accept": "text/event-stream"})
        r = c.getresponse()
        if r.status != 200:
            with lock:
                counts[1] += 1
            return
        mine = []
        c.sock.settimeout(2)
        while time.time() < until:
            try:
                line = r.readline()
            except Exception:
                continue
            if not line:
                break
            if line.startswith(b"data:"):
                m = STAMP.search(line.decode())
                if m:
                    mine.append((time.time() - float(m.group(1))) * 1000)
        with lock:
            lags.extend(mine)
            counts[0] += len(mine)
        c.close()

    ts = [threading.Thread(target=one, daemon=True) for _ in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=max(1, until - time.time() + 5))
    out.put((lags, counts[1]))


def sse(url, token, execution, after, nsubs, seconds, rate, batch):
    nsubs, seconds, rate, batch = int(nsubs), float(seconds), float(rate), int(batch)
    start = time.time() + 2  # subscribers connect first
    until = start + seconds + 1.5  # and stay for the tail of the last batch
    q = mp.Queue()
    procs = [mp.Process(target=subscribers, args=(url, token, execution, after, k, until, q))
             for k in (nsubs // 2, nsubs - nsubs // 2)]
    for p in procs:
        p.start()
    time.sleep(max(0, start - time.time()))
    c = conn(url)
    appended, append_ms, errors, k = 0, [], 0, 0
    interval = batch / rate
    next_at = time.time()
    while time.time() < start + seconds:
        t0 = time.time()
        lines = [{"level": "info", "message": "bench sse t=%.6f n=%d" % (t0, k + i)} for i in range(batch)]
        status, _ = call(c, "POST", "/api/executions/%s/logs" % execution, token, {"lines": lines})
        append_ms.append((time.time() - t0) * 1000)
        if status == 201:
            appended += batch
        else:
            errors += 1
        k += batch
        next_at += interval
        time.sleep(max(0, next_at - time.time()))
    elapsed = time.time() - start
    lags, refused = [], 0
    for _ in procs:
        got, bad = q.get()
        lags.extend(got)
        refused += bad
    for p in procs:
        p.join()
    expected = appended * nsubs
    print("BENCH subscribers=%d appended=%d seconds=%.1f append_lps=%.0f delivered=%d expected=%d delivered_lps=%.0f "
          "lag_p50_ms=%.2f lag_p99_ms=%.2f lag_max_ms=%.2f append_p50_ms=%.2f refused=%d errors=%d"
          % (nsubs, appended, elapsed, appended / elapsed, len(lags), expected, len(lags) / elapsed,
             pct(lags, 50), pct(lags, 99), max(lags or [0]), pct(append_ms, 50), refused, errors))


if __name__ == "__main__":
    if sys.argv[1] == "wakeup":
        wakeup(*sys.argv[2:7])
    elif sys.argv[1] == "sse":
        sse(*sys.argv[2:10])
    else:
        sys.exit("usage: see the docstring of bench/agents.py")
