// The devx admin dashboard: a single-page app over the documented API.
// Plain JavaScript, no build step. Every piece of data reaches the page as
// text (textContent / createTextNode); no HTML is ever parsed from data.
"use strict";

(function () {
  const TOKEN_KEY = "devx.token";

  // ---- DOM helpers -------------------------------------------------------

  // el("div", {class: "x", onclick: f}, "text", child, [children])
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
      else if (k === "class") node.className = v;
      else if (k === "text") node.textContent = String(v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    append(node, children);
    return node;
  }

  function append(node, children) {
    for (const c of children) {
      if (c === null || c === undefined || c === false) continue;
      if (Array.isArray(c)) append(node, c);
      else if (c instanceof Node) node.appendChild(c);
      else node.appendChild(document.createTextNode(String(c)));
    }
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  const $ = (id) => document.getElementById(id);

  function fmtNum(n) {
    if (n === null || n === undefined || Number.isNaN(n)) return "–";
    return Number(n).toLocaleString("en-US", { maximumFractionDigits: 2 });
  }

  // One way to show milliseconds everywhere: no trailing zeros, two
  // decimals below 10 ms, one below 100, none above (6 ms, 0.35 ms, 20 ms).
  function fmtMs(n) {
    if (n === null || n === undefined || Number.isNaN(Number(n))) return "–";
    const v = Number(n);
    const digits = Math.abs(v) < 10 ? 2 : Math.abs(v) < 100 ? 1 : 0;
    return v.toLocaleString("en-US", { maximumFractionDigits: digits }) + " ms";
  }

  function fmtBytes(n) {
    if (n === null || n === undefined) return "–";
    const units = ["B", "kB", "MB", "GB", "TB"];
    let i = 0;
    let v = Number(n);
    while (v >= 1024 && i < units.length - 1) {
      v /= 1024;
      i++;
    }
    return (i === 0 ? v : v.toFixed(1)) + " " + units[i];
  }

  function fmtDuration(s) {
    s = Math.floor(s);
    const d = Math.floor(s / 86400);
    const h = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60);
    if (d) return d + "d " + h + "h";
    if (h) return h + "h " + m + "m";
    if (m) return m + "m " + (s % 60) + "s";
    return s + "s";
  }

  // A time in the browser's zone, saying which (e.g. "Dec 5, 2026, 9:00:00 AM GMT+1").
  function fmtTime(t) {
    if (!t) return "–";
    const d = new Date(t);
    return Number.isNaN(d.getTime()) ? String(t) : d.toLocaleString("en-US", { dateStyle: "medium", timeStyle: "long" });
  }

  // Server text with `code` spans (the insights' advice is written that
  // way): the spans become <code>, everything stays text, nothing is parsed
  // as HTML.
  function richText(text) {
    const parts = String(text ?? "").split("`");
    // An unpaired backtick stays as it is.
    if (parts.length % 2 === 0) return [parts.join("`")];
    return parts.map((p, i) => (i % 2 ? el("code", { text: p }) : p)).filter((p) => p !== "");
  }

  function pct(x) {
    return x === null || x === undefined ? "–" : (x * 100).toFixed(2) + " %";
  }

  function sum(obj) {
    return Object.values(obj || {}).reduce((a, b) => a + b, 0);
  }

  // ---- API ---------------------------------------------------------------

  class ApiFailure extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  function token() {
    return sessionStorage.getItem(TOKEN_KEY);
  }

  async function request(path, opts) {
    opts = opts || {};
    const headers = { Accept: opts.text ? "text/plain" : "application/json" };
    const t = opts.token === undefined ? token() : opts.token;
    if (t) headers.Authorization = "Bearer " + t;
    let body;
    if (opts.body !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(opts.body);
    }
    let resp;
    try {
      resp = await fetch(path, { method: opts.method || "GET", headers, body, cache: "no-store" });
    } catch (e) {
      throw new ApiFailure(0, "devx did not answer (" + e.message + ")");
    }
    if (!resp.ok && !(opts.allow || []).includes(resp.status)) {
      const detail = await problemDetail(resp);
      if (resp.status === 401 && opts.token === undefined && t) {
        signOut("Your session ended; sign in again.");
      }
      throw new ApiFailure(resp.status, detail);
    }
    return opts.text ? resp.text() : resp.json();
  }

  // What a failed response says: its problem's detail, else its status line.
  async function problemDetail(resp) {
    try {
      const p = await resp.json();
      return p.detail || p.title || resp.status + " " + resp.statusText;
    } catch (_) {
      return resp.status + " " + resp.statusText; // not JSON
    }
  }

  const api = (path, opts) => request(path, opts);

  function qs(params) {
    const u = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== "" && v !== null && v !== undefined) u.set(k, v);
    const s = u.toString();
    return s ? "?" + s : "";
  }

  // ---- page lifecycle ------------------------------------------------------

  // Timers, charts and open requests (streams) belonging to the page on
  // screen; dropped (requests aborted) on navigation.
  let pageTimers = [];
  let pageCharts = [];
  let pageAborts = [];
  let pageToken = 0;

  function every(ms, fn) {
    pageTimers.push(setInterval(fn, ms));
  }

  // An AbortController whose request leavePage() aborts.
  function abortOnLeave() {
    const c = new AbortController();
    pageAborts.push(c);
    return c;
  }

  function leavePage() {
    pageTimers.forEach(clearInterval);
    pageTimers = [];
    pageAborts.forEach((c) => c.abort());
    pageAborts = [];
    pageCharts.forEach((c) => c.destroy());
    pageCharts = [];
    pageToken++;
  }

  function errorBox(err) {
    return el("p", { class: "error", role: "alert", text: err && err.message ? err.message : String(err) });
  }

  function card(title, ...children) {
    return el("section", { class: "card" }, el("h2", { text: title }), children);
  }

  function stat(label, value, hint) {
    return el(
      "div",
      { class: "stat" },
      el("div", { class: "stat-value", text: value }),
      el("div", { class: "stat-label", text: label }),
      hint ? el("div", { class: "stat-hint", text: hint }) : null,
    );
  }

  function table(columns, rows, empty) {
    if (!rows.length) return el("p", { class: "muted", text: empty || "Nothing here." });
    return el(
      "div",
      { class: "table-wrap" },
      el(
        "table",
        {},
        el("thead", {}, el("tr", {}, columns.map((c) => el("th", { class: c.num ? "num" : null, text: c.label })))),
        el(
          "tbody",
          {},
          rows.map((r) =>
            el(
              "tr",
              r.__attrs || {},
              columns.map((c) => {
                const v = c.get(r);
                return el("td", { class: c.num ? "num" : c.code ? "code" : null, "data-label": c.label }, v instanceof Node ? v : String(v ?? "–"));
              }),
            ),
          ),
        ),
      ),
    );
  }

  // Horizontal bars for a {label: count} map.
  function bars(map, empty) {
    const entries = Object.entries(map || {}).sort((a, b) => b[1] - a[1]);
    if (!entries.length) return el("p", { class: "muted", text: empty || "None." });
    const max = Math.max(1, ...entries.map((e) => e[1]));
    return el(
      "div",
      { class: "bars" },
      entries.map(([k, v]) => {
        const fill = el("span", { class: "bar-fill" });
        fill.style.width = Math.max(1, (v / max) * 100) + "%";
        return el(
          "div",
          { class: "bar-row" },
          el("span", { class: "bar-label", text: k }),
          el("span", { class: "bar-track" }, fill),
          el("span", { class: "bar-value", text: fmtNum(v) }),
        );
      }),
    );
  }

  function badge(text, kind) {
    return el("span", { class: "badge badge-" + (kind || String(text).replace(/[^a-z_]/gi, "")), text: text });
  }

  // ---- the server's metrics history --------------------------------------------
  // devx samples its own request and database statistics every
  // DEVX_METRICS_SAMPLE_INTERVAL (10 s) and keeps 24 hours in memory
  // (GET /api/admin/metrics/history); the charts draw that, so they open
  // with the past already there. This copy follows it by asking for the
  // samples after the last one it has.

  const RANGES = [
    ["15m", 15 * 60, "15 min"],
    ["1h", 3600, "1 h"],
    ["6h", 6 * 3600, "6 h"],
    ["24h", 24 * 3600, "24 h"],
  ];
  const RANGE_KEY = "devx.range";
  const history = { instance: null, interval: 10, capacity: 8640, samples: [] };

  function rangeSeconds() {
    const chosen = RANGES.find((r) => r[0] === sessionStorage.getItem(RANGE_KEY));
    return (chosen || RANGES[1])[1];
  }

  async function loadHistory() {
    const last = history.samples[history.samples.length - 1];
    const r = await api("/api/admin/metrics/history" + qs({ since: last ? last.at : null }));
    // A new instance id: the server restarted, and its history starts again.
    if (!history.instance || r.instance.id !== history.instance.id) history.samples = r.samples.slice();
    else for (const s of r.samples) history.samples.push(s);
    history.instance = r.instance;
    history.interval = r.interval_seconds;
    history.capacity = r.capacity;
    if (history.samples.length > history.capacity) history.samples.splice(0, history.samples.length - history.capacity);
  }

  function forgetHistory() {
    history.instance = null;
    history.samples = [];
  }

  // ---- charts --------------------------------------------------------------

  // The browser's time zone, as the time axis and every time shown says it.
  const TIME_ZONE = (() => {
    try {
      const name = Intl.DateTimeFormat().resolvedOptions().timeZone || "local";
      const part = new Intl.DateTimeFormat("en-US", { timeZoneName: "shortOffset" }).formatToParts(new Date()).find((p) => p.type === "timeZoneName");
      const offset = part ? part.value : "";
      // A named zone with its current offset ("Europe/Paris, GMT+1"); UTC alone.
      return offset && name !== "UTC" && offset !== name ? name + ", " + offset : name;
    } catch (_) {
      return "local";
    }
  })();

  function chartWidth(node) {
    return Math.max(260, Math.floor(node.getBoundingClientRect().width || node.clientWidth || 600) - 34);
  }

  // A time series chart of the history over the chosen range: `unit` labels
  // the y axis; each series picks its value from a sample.
  function lineChart(node, title, unit, series) {
    if (typeof window.uPlot !== "function") {
      node.appendChild(el("p", { class: "muted", text: "Chart library did not load." }));
      return null;
    }
    const data = () => {
      const from = Date.now() / 1000 - rangeSeconds();
      const rows = history.samples.filter((s) => Date.parse(s.at) / 1000 >= from);
      return [rows.map((s) => Date.parse(s.at) / 1000), ...series.map((x) => rows.map((s) => { const v = x.get(s); return v === undefined ? null : v; }))];
    };
    const axes = [
      { label: "time (" + TIME_ZONE + ")", labelSize: 20, space: 70 },
      { label: unit, labelSize: 20, size: 56, values: (u, ticks) => ticks.map((v) => fmtNum(v)) },
    ];
    const opts = {
      title,
      width: chartWidth(node),
      height: 220,
      series: [{ value: (u, v) => (v == null ? "–" : fmtTime(v * 1000)) }].concat(
        series.map((s) => ({ label: s.label, stroke: s.color, width: 2, value: (u, v) => (v == null ? "–" : s.fmt(v)) })),
      ),
      axes,
      scales: {
        x: { time: true, range: () => { const now = Date.now() / 1000; return [now - rangeSeconds(), now]; } },
        y: { range: (u, min, max) => [0, Math.max(max || 0, 1) * 1.1] },
      },
      legend: { live: true },
    };
    const chart = new window.uPlot(opts, data(), node);
    // What the axes say, for the browser test (the canvas hides it).
    chart.root.setAttribute("data-axis-labels", JSON.stringify(axes.map((a) => a.label || "")));
    const resize = () => chart.setSize({ width: chartWidth(node), height: 220 });
    window.addEventListener("resize", resize);
    // How many samples it draws, for the browser test.
    const count = (d) => chart.root.setAttribute("data-points", String(d[0].length));
    count(chart.data);
    const chartHandle = {
      redraw() {
        const d = data();
        chart.setData(d);
        count(d);
      },
      destroy() {
        window.removeEventListener("resize", resize);
        chart.destroy();
      },
    };
    pageCharts.push(chartHandle);
    return chartHandle;
  }

  // ---- sign-in ---------------------------------------------------------------

  let me = null;

  function showLogin(message) {
    leavePage();
    clear($("page"));
    $("nav").hidden = true;
    $("who").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = message || "";
    $("login-email").focus();
  }

  function signOut(message) {
    const t = token();
    sessionStorage.removeItem(TOKEN_KEY);
    me = null;
    forgetHistory();
    if (t) request("/api/auth/logout", { method: "POST", token: t, allow: [401, 404] }).catch(() => {});
    showLogin(message);
  }

  async function onLogin(ev) {
    ev.preventDefault();
    const button = $("login-submit");
    button.disabled = true;
    $("login-error").textContent = "";
    try {
      const grant = await request("/api/auth/login", {
        method: "POST",
        token: null,
        body: { email: $("login-email").value.trim(), password: $("login-password").value },
      });
      if (!grant.user || grant.user.role !== "admin") {
        request("/api/auth/logout", { method: "POST", token: grant.token, allow: [401] }).catch(() => {});
        $("login-error").textContent =
          "Signed in as " + (grant.user ? grant.user.email : "?") + ", which is not an admin. The dashboard is for admins only (devx users create --admin).";
        return;
      }
      sessionStorage.setItem(TOKEN_KEY, grant.token);
      $("login-password").value = "";
      enter(grant.user);
    } catch (e) {
      $("login-error").textContent = e.status === 401 ? "Wrong email or password." : e.message;
    } finally {
      button.disabled = false;
    }
  }

  function enter(user) {
    me = user;
    $("login").hidden = true;
    $("nav").hidden = false;
    $("who").hidden = false;
    $("who-email").textContent = user.email;
    if (!location.hash || location.hash === "#" || location.hash === "#/") location.hash = "#/overview";
    else route();
  }

  async function boot() {
    $("login-form").addEventListener("submit", onLogin);
    $("sign-out").addEventListener("click", () => signOut("Signed out."));
    window.addEventListener("hashchange", route);
    if (!token()) return showLogin();
    try {
      const user = await api("/api/auth/me");
      if (user.role !== "admin") return signOut("This account is not an admin.");
      enter(user);
    } catch (e) {
      if (token()) showLogin(e.message);
    }
  }

  // ---- router -----------------------------------------------------------------

  const pages = {
    overview: pageOverview,
    database: pageDatabase,
    migrations: pageMigrations,
    activity: pageActivity,
    tasks: pageTasks,
    deployments: pageDeployments,
    catalog: pageCatalog,
  };

  function route() {
    if (!me) return;
    const [name, ...rest] = location.hash.replace(/^#\/?/, "").split("/");
    const page = pages[name] ? name : "overview";
    for (const a of document.querySelectorAll("#nav a")) {
      if (a.dataset.page === page) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    leavePage();
    const root = $("page");
    clear(root);
    const mine = pageToken;
    const alive = () => mine === pageToken;
    Promise.resolve(pages[page](root, alive, rest.map(decodeURIComponent))).catch((e) => {
      if (alive()) root.appendChild(errorBox(e));
    });
  }

  // ---- Overview ---------------------------------------------------------------------

  async function pageOverview(root, alive) {
    root.appendChild(el("h1", { text: "Overview" }));
    const statsBox = el("div", { class: "stats", id: "overview-stats" }, el("p", { class: "muted", text: "Loading…" }));
    const charts = el("div", { class: "grid2" });
    const breakdown = el("div", { class: "grid2" });
    root.append(statsBox, charts, breakdown);

    const picker = el(
      "div",
      { class: "range", role: "group", "aria-label": "Time range", id: "range" },
      el("span", { class: "muted small", text: "Last" }),
      RANGES.map(([key, seconds, label]) =>
        el("button", {
          type: "button",
          class: "range-button",
          "data-range": key,
          "aria-pressed": String(seconds === rangeSeconds()),
          text: label,
          onclick: () => {
            sessionStorage.setItem(RANGE_KEY, key);
            for (const b of picker.querySelectorAll("button")) b.setAttribute("aria-pressed", String(b.dataset.range === key));
            drawCharts();
          },
        }),
      ),
    );
    const latency = el("div", { class: "card chart", id: "chart-latency" });
    const rate = el("div", { class: "card chart", id: "chart-rate" });
    const pool = el("div", { class: "card chart", id: "chart-pool" });
    const errorsChart = el("div", { class: "card chart", id: "chart-errors" });
    const about = el("p", { class: "muted small", id: "history-about" });
    charts.before(picker);
    charts.append(latency, rate, pool, errorsChart);
    charts.after(about);
    const drawn = [
      lineChart(latency, "Latency (mean per sample)", "ms", [
        { label: "HTTP", color: "#2b6cb0", fmt: fmtMs, get: (s) => s.http_mean_ms },
        { label: "DB statement", color: "#c05621", fmt: fmtMs, get: (s) => s.db_mean_ms },
      ]),
      lineChart(rate, "Throughput", "per second", [
        { label: "HTTP", color: "#2b6cb0", fmt: (v) => fmtNum(v) + " req/s", get: (s) => s.http_per_second },
        { label: "DB", color: "#c05621", fmt: (v) => fmtNum(v) + " queries/s", get: (s) => s.db_per_second },
      ]),
      lineChart(pool, "Connection pool", "connections", [
        { label: "in use", color: "#2b6cb0", fmt: fmtNum, get: (s) => s.pool_in_use },
        { label: "idle", color: "#2f855a", fmt: fmtNum, get: (s) => s.pool_idle },
        { label: "waiting", color: "#c53030", fmt: fmtNum, get: (s) => s.pool_waiting },
      ]),
      lineChart(errorsChart, "Errors", "per sample", [
        { label: "HTTP 5xx", color: "#c53030", fmt: fmtNum, get: (s) => s.http_errors },
        { label: "DB errors", color: "#b7791f", fmt: fmtNum, get: (s) => s.db_errors },
        { label: "slow statements", color: "#805ad5", fmt: fmtNum, get: (s) => s.db_slow },
      ]),
    ].filter(Boolean);
    function drawCharts() {
      for (const c of drawn) c.redraw();
      const i = history.instance;
      clear(about);
      if (i) {
        append(about, [
          "Sampled by devx every " + fmtNum(history.interval) + " s and kept in its memory for the last " + fmtDuration(history.interval * history.capacity) + " (this process, pid " + i.pid + ", since " + fmtTime(i.started_at) + "; another replica has its own). " + history.samples.length + " samples.",
        ]);
      }
    }
    async function follow() {
      await loadHistory();
      if (alive()) drawCharts();
    }
    follow().catch((e) => {
      if (alive()) about.appendChild(errorBox(e));
    });
    every(Math.max(2, history.interval) * 1000, () => follow().catch(() => {}));

    async function load() {
      const [health, status, stats, errors] = await Promise.allSettled([
        api("/health", { allow: [503] }),
        api("/api/database/status"),
        api("/api/admin/stats"),
        api("/api/errors/summary"),
      ]);
      if (!alive()) return;
      clear(statsBox);
      clear(breakdown);
      const h = health.value;
      if (h) {
        statsBox.append(
          stat("Health", h.status, h.database.connected ? "database " + fmtMs(h.database.latency_ms) : "database unreachable"),
          stat("Version", h.version),
          stat("Uptime", fmtDuration(h.uptime_seconds)),
        );
      } else statsBox.appendChild(errorBox(health.reason));
      const st = status.value;
      if (st) {
        statsBox.append(
          stat("Pool in use", fmtNum(st.pool.in_use), "of " + st.pool.max_size + " max"),
          stat("Pool idle", fmtNum(st.pool.idle)),
          stat("Pool waiting", fmtNum(st.pool.waiting)),
          stat("Migrations applied", fmtNum(st.migrations.applied)),
          stat("Migrations pending", fmtNum(st.migrations.pending), st.migrations.pending ? "run devx migrate up" : "up to date"),
        );
      } else statsBox.appendChild(errorBox(status.reason));
      const s = stats.value;
      if (s) {
        const openTasks = (s.tasks_by_status.pending || 0) + (s.tasks_by_status.in_progress || 0);
        statsBox.append(
          stat("Users", fmtNum(s.users.total), s.users.active + " active, " + s.users.admins + " admin"),
          stat("Projects", fmtNum(sum(s.projects_by_status))),
          stat("Running containers", fmtNum(s.containers_by_status.running || 0)),
          stat("Deployments", fmtNum(sum(s.deployments_by_status)), (s.deployments_by_status.running || 0) + " running"),
          stat("Open tasks", fmtNum(openTasks), "pending or in progress"),
        );
        breakdown.appendChild(card("Tasks by status", bars(s.tasks_by_status, "No tasks.")));
      } else statsBox.appendChild(errorBox(stats.reason));
      const e = errors.value;
      if (e) {
        const unresolved = e.items.reduce((a, x) => a + x.unresolved, 0);
        statsBox.append(stat("Unresolved errors", fmtNum(unresolved)));
        const byType = {};
        for (const x of e.items) byType[x.error_type] = x.error_count;
        breakdown.appendChild(card("Errors by type", bars(byType, "No errors logged.")));
      } else statsBox.appendChild(errorBox(errors.reason));
    }
    await load();
    every(15000, () => load().catch(() => {}));
  }

  // ---- Database ---------------------------------------------------------------------

  async function pageDatabase(root, alive) {
    root.appendChild(el("h1", { text: "Database" }));
    const top = el("div", { class: "stats" }, el("p", { class: "muted", text: "Loading…" }));
    const body = el("div", {});
    root.append(top, body);
    const [stats, status, insights, jobs] = await Promise.allSettled([
      api("/api/admin/stats"),
      api("/api/database/status"),
      api("/api/admin/insights"),
      api("/api/admin/jobs"),
    ]);
    if (!alive()) return;
    clear(top);
    const s = stats.value;
    const st = status.value;
    const ins = insights.value;
    if (st) top.append(stat("PostgreSQL", st.server.version.split(" ")[0], "database " + st.server.database), stat("Round trip", fmtMs(st.server.round_trip)));
    if (s) top.append(stat("Database size", s.database.size));
    if (ins) {
      top.append(
        stat("Cache hit (tables)", pct(ins.cache_hit.heap)),
        stat("Cache hit (indexes)", pct(ins.cache_hit.index)),
        stat("Connections", fmtNum(ins.connections.server_total), "of " + ins.connections.server_max + " usable"),
      );
    }
    if (st) top.append(stat("Statements (this process)", fmtNum(st.queries.total), "p95 " + fmtMs(st.queries.p95_ms) + ", p99 " + fmtMs(st.queries.p99_ms)));
    if (st && st.reads) {
      top.append(
        stat("Reads on replicas", fmtNum(st.reads.replicas), fmtNum(st.reads.primary) + " on the primary (this process)"),
        stat("Sticky reads", fmtNum(st.reads.sticky), fmtNum(st.reads.fallbacks) + " fell back: no replica usable"),
      );
    }

    if (st && st.replicas.length) {
      body.appendChild(
        card(
          "Read replicas",
          table(
            [
              { label: "Replica", code: true, get: (r) => r.name },
              { label: "Takes reads", get: (r) => badge(r.usable ? "yes" : "no", r.usable ? "completed" : "warning") },
              { label: "Why not", get: (r) => r.reason || "" },
              { label: "Lag", num: true, get: (r) => (r.lag_seconds == null ? "" : fmtMs(r.lag_seconds * 1000)) },
              { label: "Lag bytes", num: true, get: (r) => (r.lag_bytes == null ? "" : fmtNum(r.lag_bytes)) },
              { label: "Replayed to", code: true, get: (r) => r.replay_lsn || "" },
              { label: "Reads", num: true, get: (r) => fmtNum(r.reads) },
            ],
            st.replicas,
          ),
        ),
      );
    }
    if (jobs.value) {
      body.appendChild(
        card(
          "Periodic jobs (once per period across every devx process)",
          table(
            [
              { label: "Job", code: true, get: (r) => r.job },
              { label: "Every", num: true, get: (r) => (r.enabled && r.interval_seconds != null ? fmtDuration(r.interval_seconds) : "off") },
              { label: "Runs", num: true, get: (r) => fmtNum(r.runs) },
              { label: "Last start", get: (r) => (r.last_started_at ? fmtTime(r.last_started_at) : "never") },
              { label: "By", code: true, get: (r) => r.last_process || "" },
              { label: "Next", get: (r) => (r.next_due_at ? fmtTime(r.next_due_at) : "") },
              { label: "Last error", get: (r) => r.last_error || "" },
            ],
            jobs.value.jobs,
            "No periodic jobs.",
          ),
        ),
      );
    }

    if (ins) {
      const finding = (f) =>
        el(
          "li",
          { class: "finding finding-" + f.severity },
          el("div", {}, badge(f.severity), " ", el("strong", { text: f.kind }), " ", el("code", { text: f.object })),
          el("p", {}, richText(f.detail)),
          el("p", { class: "advice" }, el("strong", { text: "What to do: " }), richText(f.advice)),
        );
      // Warnings first and open; informational findings folded away so they never bury one.
      const warnings = ins.findings.filter((f) => f.severity === "warning");
      const infos = ins.findings.filter((f) => f.severity !== "warning");
      body.appendChild(
        card(
          "Findings",
          ins.findings.length
            ? el(
                "div",
                { id: "findings" },
                warnings.length
                  ? el("ul", { class: "findings" }, warnings.map(finding))
                  : el("p", { class: "ok", text: "No warnings." }),
                infos.length
                  ? el(
                      "details",
                      { class: "findings-info" },
                      el("summary", { text: infos.length + " informational finding" + (infos.length === 1 ? "" : "s") }),
                      el("ul", { class: "findings" }, infos.map(finding)),
                    )
                  : null,
              )
            : el("p", { class: "ok", text: "No findings: nothing to act on." }),
        ),
      );
      const q = (label) => ({ label, code: true, get: (r) => el("span", { class: "sql", title: r.query, text: r.query }) });
      body.appendChild(
        card(
          "Slow queries (pg_stat_statements)",
          ins.statements.available
            ? table(
                [q("Query"), { label: "Calls", num: true, get: (r) => fmtNum(r.calls) }, { label: "Mean", num: true, get: (r) => fmtMs(r.mean_ms) }, { label: "Total", num: true, get: (r) => fmtMs(r.total_ms) }, { label: "Share", num: true, get: (r) => pct(r.share) }],
                ins.slow_queries,
                "No statement is slow enough to report.",
              )
            : el("p", { class: "muted" }, "pg_stat_statements is not available (" + ins.statements.state + "). ", richText(ins.statements.detail || "")),
          ins.statements.available && ins.frequent_queries.length
            ? [el("h3", { text: "Most frequent" }), table([q("Query"), { label: "Calls", num: true, get: (r) => fmtNum(r.calls) }, { label: "Mean", num: true, get: (r) => fmtMs(r.mean_ms) }], ins.frequent_queries)]
            : null,
        ),
      );
      if (ins.long_running.length || ins.blocked.length) {
        body.appendChild(
          card(
            "Long-running and blocked",
            table([{ label: "pid", get: (r) => r.pid }, { label: "State", get: (r) => r.state || "blocked" }, { label: "Seconds", num: true, get: (r) => fmtNum(r.seconds) }, { label: "Query", code: true, get: (r) => r.query }], ins.long_running.concat(ins.blocked)),
          ),
        );
      }
      const conn = {};
      for (const c of ins.connections.by_state) conn[c.state || "unknown"] = c.count;
      body.appendChild(card("Connections by state", bars(conn)));
    } else body.appendChild(errorBox(insights.reason));

    if (st) {
      body.appendChild(
        card(
          "Slow statements seen by devx",
          table(
            [{ label: "SQL", code: true, get: (r) => el("span", { class: "sql", title: r.sql, text: r.sql }) }, { label: "Count", num: true, get: (r) => fmtNum(r.count) }, { label: "Max", num: true, get: (r) => fmtMs(r.max_ms) }, { label: "Last seen", get: (r) => fmtTime(r.last_seen) }],
            st.queries.slow_queries,
            "No statement passed DB_SLOW_QUERY_THRESHOLD since this process started.",
          ),
        ),
      );
    }
    if (s) {
      body.appendChild(
        card(
          "Largest tables",
          table(
            [{ label: "Table", get: (r) => r.schema + "." + r.table }, { label: "Rows", num: true, get: (r) => (r.exact ? "" : "~") + fmtNum(r.rows) }, { label: "Total", num: true, get: (r) => fmtBytes(r.total_bytes) }, { label: "Indexes", num: true, get: (r) => fmtBytes(r.index_bytes) }],
            s.largest_tables,
          ),
        ),
      );
    } else body.appendChild(errorBox(stats.reason));
  }

  // ---- Migrations -------------------------------------------------------------------

  async function pageMigrations(root, alive) {
    root.appendChild(el("h1", { text: "Migrations" }));
    const r = await api("/api/database/migrations");
    if (!alive()) return;
    const problems = r.migrations.filter((m) => m.problem);
    // Our append, not Element.append, which writes a null as the text "null".
    append(root, [
      el(
        "div",
        { class: "stats" },
        stat("Applied", fmtNum(r.applied)),
        stat("Pending", fmtNum(r.pending), r.pending ? "devx migrate up" : "up to date"),
        stat("Problems", fmtNum(problems.length), problems.length ? "see below" : "none"),
      ),
      problems.length ? card("Problems", el("ul", { class: "plain" }, problems.map((m) => el("li", { class: "error" }, richText(m.problem))))) : null,
      card(
        "History",
        table(
          [
            { label: "ID", get: (m) => el("code", { text: m.id }) },
            { label: "Name", get: (m) => m.name },
            { label: "State", get: (m) => badge(m.state) },
            { label: "Applied at", get: (m) => fmtTime(m.applied_at) },
            { label: "By", get: (m) => m.applied_by || "–" },
            {
              label: "Took",
              num: true,
              get: (m) => (m.stamped ? "stamped" : m.execution_ms === null ? "–" : fmtMs(m.execution_ms)),
            },
            { label: "Transaction", get: (m) => (m.no_transaction ? "none (runs statement by statement)" : "one") },
          ],
          r.migrations,
          "This devx has no migrations.",
        ),
      ),
    ]);
  }

  // ---- Activity ----------------------------------------------------------------------

  function auditTable(items) {
    for (const r of items) r.__attrs = { "data-audit-id": r.id };
    return table(
      [
        { label: "When", get: (r) => fmtTime(r.created_at) },
        { label: "Action", get: (r) => badge(r.action) },
        { label: "Entity", get: (r) => el("span", {}, r.entity_type, " ", el("code", { text: r.entity_id })) },
        { label: "Actor", get: (r) => r.actor },
        {
          label: "Change",
          get: (r) =>
            el(
              "details",
              {},
              el("summary", { text: "values" }),
              r.old_values ? el("pre", { text: "old: " + JSON.stringify(r.old_values, null, 1) }) : null,
              r.new_values ? el("pre", { text: "new: " + JSON.stringify(r.new_values, null, 1) }) : null,
            ),
        },
      ],
      items,
      "No entries.",
    );
  }

  function pagedList(path, params, render) {
    const box = el("div", {});
    const list = el("div", {});
    const more = el("button", { type: "button", class: "secondary", text: "Load more", hidden: true });
    box.append(list, more);
    let cursor = null;
    async function load() {
      more.disabled = true;
      box.setAttribute("aria-busy", "true");
      try {
        const page = await api(path + qs(Object.assign({}, params, { limit: 50, cursor })));
        list.appendChild(render(page.items));
        cursor = page.next_cursor;
        more.hidden = !cursor;
      } catch (e) {
        list.appendChild(errorBox(e));
      } finally {
        more.disabled = false;
        box.setAttribute("aria-busy", "false");
      }
    }
    more.addEventListener("click", load);
    load();
    return box;
  }

  // One list: the last 7 days of the trail until a filter is given, then the
  // whole trail filtered. (Two cards, recent activity and an unfiltered
  // audit log, showed every recent row twice.)
  async function pageActivity(root) {
    root.appendChild(el("h1", { text: "Activity" }));
    const results = el("div", {});
    const heading = el("h2", { id: "audit-heading" });
    const field = (name, label, type, placeholder) =>
      el("label", {}, label, el("input", { name, type: type || "text", placeholder: placeholder || "" }));
    const form = el(
      "form",
      { class: "filters", id: "audit-filters" },
      field("entity_type", "Table", "text", "devx.users"),
      field("entity_id", "Row id"),
      field("actor", "Actor", "text", "user:<id>"),
      el("label", {}, "Action", el("select", { name: "action" }, ["", "insert", "update", "delete"].map((a) => el("option", { value: a, text: a || "any" })))),
      field("since", "Since", "datetime-local"),
      field("until", "Until", "datetime-local"),
      el("button", { type: "submit", text: "Filter" }),
    );
    function run() {
      const fd = new FormData(form);
      const params = {};
      for (const [k, v] of fd.entries()) {
        if (!v) continue;
        params[k] = k === "since" || k === "until" ? new Date(v).toISOString() : v.trim();
      }
      clear(results);
      const filtered = Object.keys(params).length > 0;
      heading.textContent = filtered ? "Audit log, filtered" : "Recent activity (last 7 days)";
      results.appendChild(filtered ? pagedList("/api/admin/audit", params, auditTable) : pagedList("/api/admin/activity", {}, auditTable));
    }
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      run();
    });
    root.appendChild(el("section", { class: "card" }, heading, el("p", { class: "muted small", text: "Filter to search the whole audit trail." }), form, results));
    run();
  }

  // ---- Tasks ---------------------------------------------------------------------------

  async function pageTasks(root, alive, args) {
    root.appendChild(el("h1", { text: "Tasks" }));
    if (args[0] === "execution" && args[1]) return executionTail(root, alive, args[1]);
    const select = el("select", { name: "status", id: "task-status" }, ["", "pending", "in_progress", "completed", "failed", "cancelled"].map((s) => el("option", { value: s, text: s || "any status" })));
    const results = el("div", {});
    const form = el("form", { class: "filters" }, el("label", {}, "Status", select));
    select.addEventListener("change", run);
    function run() {
      clear(results);
      results.appendChild(pagedList("/api/tasks", { status: select.value }, taskTable));
    }
    root.appendChild(card("Tasks", form, results));
    run();
  }

  function taskTable(items) {
    return table(
      [
        { label: "Title", get: (r) => r.title },
        { label: "Status", get: (r) => badge(r.status) },
        { label: "Priority", num: true, get: (r) => r.priority },
        { label: "Updated", get: (r) => fmtTime(r.updated_at) },
        { label: "Executions", get: (r) => executionsToggle(r.id) },
      ],
      items,
      "No tasks.",
    );
  }

  function executionsToggle(taskId) {
    const box = el("div", {});
    const button = el("button", { type: "button", class: "link", text: "show" });
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        const page = await api("/api/tasks/" + encodeURIComponent(taskId) + "/executions" + qs({ limit: 20 }));
        box.removeChild(button);
        if (!page.items.length) box.appendChild(el("span", { class: "muted", text: "none" }));
        box.appendChild(
          el(
            "ul",
            { class: "plain" },
            page.items.map((x) =>
              el("li", {}, el("a", { href: "#/tasks/execution/" + encodeURIComponent(x.id), text: x.agent_type }), " ", badge(x.status), " ", el("span", { class: "muted", text: x.log_lines + " lines" })),
            ),
          ),
        );
      } catch (e) {
        box.appendChild(errorBox(e));
        button.disabled = false;
      }
    });
    box.appendChild(button);
    return box;
  }

  // A parser of Server-Sent Events (the event-stream format) for a stream
  // read with fetch(): EventSource cannot send the Authorization header.
  // push(text) takes the decoded text as it arrives and calls
  // onEvent({type, data, id}) for each complete event; comments (the
  // keep-alives) are skipped, an unfinished line waits for the next chunk.
  function sseParser(onEvent) {
    let buffer = "";
    let data = [];
    let type = "";
    let id = "";
    function line(l) {
      if (l === "") {
        if (data.length) onEvent({ type: type || "message", data: data.join("\n"), id });
        data = [];
        type = "";
        return;
      }
      if (l[0] === ":") return;
      const colon = l.indexOf(":");
      const field = colon < 0 ? l : l.slice(0, colon);
      let value = colon < 0 ? "" : l.slice(colon + 1);
      if (value[0] === " ") value = value.slice(1);
      if (field === "data") data.push(value);
      else if (field === "event") type = value;
      else if (field === "id" && !value.includes("\0")) id = value;
    }
    return function push(text) {
      // A "\r" ending the chunk may be the first half of a "\r\n": kept.
      const lines = (buffer + text).split(/\r\n|\r(?!$)|\n/);
      buffer = lines.pop();
      lines.forEach(line);
    };
  }

  // A log followed live through its event stream (an execution's or a
  // deployment's `.../logs/stream`): one event per line, in seq order; a
  // dropped connection is resumed after a short backoff with Last-Event-ID,
  // the seq of the last line shown, so no line is missed or shown twice;
  // `event: end` says the producer finished and every line has been sent.
  // Leaving the page aborts the request. `show(lines)` draws new lines (those
  // past `after()`); resolves to the final status, or null when the page
  // was left or the stream was refused (`state` then says why).
  async function followLog(url, alive, state, after, show) {
    const tailing = () => "Tailing live after line " + after() + "…";
    let failures = 0;
    let finished = null;
    while (alive() && !finished) {
      const request = abortOnLeave();
      let reason = "the stream ended";
      try {
        const headers = { Accept: "text/event-stream", Authorization: "Bearer " + token() };
        if (after() > 0) headers["Last-Event-ID"] = String(after());
        const resp = await fetch(url, { headers, cache: "no-store", signal: request.signal });
        if (!resp.ok) {
          const detail = await problemDetail(resp);
          if (resp.status === 401) {
            signOut("Your session ended; sign in again.");
            return null;
          }
          // 400 or 404: asking again would get the same answer.
          if (resp.status < 500 && resp.status !== 408 && resp.status !== 429) {
            state.textContent = detail;
            return null;
          }
          throw new Error(detail);
        }
        state.textContent = tailing();
        const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
        let lines = [];
        const push = sseParser((ev) => {
          if (ev.type === "end") finished = ev.data;
          else if (ev.type === "message") lines.push(JSON.parse(ev.data));
        });
        for (;;) {
          const { value, done } = await reader.read();
          if (done || !alive()) break;
          push(value);
          if (lines.length) {
            show(lines);
            lines = [];
            failures = 0;
          }
          if (!finished) state.textContent = tailing();
        }
      } catch (e) {
        if (request.signal.aborted || !alive()) return null;
        reason = e.message;
      } finally {
        pageAborts = pageAborts.filter((c) => c !== request);
      }
      if (finished || !alive()) break;
      // Reconnect after 1, 2, 4, 8, then every 10 s, from the last seq shown.
      const wait = Math.min(1000 * 2 ** failures, 10000);
      failures++;
      state.textContent = "Reconnecting in " + wait / 1000 + " s after line " + after() + " (" + reason + ")…";
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
    return alive() ? finished : null;
  }

  // A <pre> that log lines are appended to, each once (by seq), kept
  // scrolled to the end while `follow` is checked.
  function logView(id, follow, render) {
    const log = el("pre", { class: "log", id });
    let after = 0;
    return {
      log,
      after: () => after,
      show(lines) {
        const batch = document.createDocumentFragment();
        for (const l of lines) {
          if (l.seq <= after) continue; // already shown
          after = l.seq;
          batch.appendChild(render(l));
        }
        log.appendChild(batch);
        if (follow.checked) log.scrollTop = log.scrollHeight;
      },
    };
  }

  // An execution's log, live (followLog), under the execution's agent,
  // status, start and line count.
  async function executionTail(root, alive, id) {
    const head = el("div", { class: "stats" });
    const state = el("p", { class: "muted", id: "tail-state", text: "Loading…" });
    const follow = el("input", { type: "checkbox", checked: true });
    const view = logView("log-tail", follow, (l) =>
      el("span", { class: "log-line log-" + l.level.replace(/[^a-z]/gi, "") }, el("span", { class: "log-meta", text: l.seq + " " + new Date(l.time).toLocaleTimeString() + " " + l.level + " " }), l.message, "\n"),
    );
    root.append(
      el("p", {}, el("a", { href: "#/tasks", text: "← Tasks" })),
      head,
      card("Log", el("label", { class: "inline" }, follow, " follow"), state, view.log),
    );
    let x = null;
    async function refreshExecution() {
      x = await api("/api/executions/" + encodeURIComponent(id));
      clear(head);
      head.append(
        stat("Agent", x.agent_type),
        el("div", { class: "stat" }, el("div", { class: "stat-value" }, badge(x.status)), el("div", { class: "stat-label", text: "Status" })),
        stat("Started", fmtTime(x.started_at)),
        stat("Lines", fmtNum(Math.max(x.log_lines, view.after()))),
      );
    }
    // The execution is read when the page opens and when it finishes; the
    // count follows the tail in between.
    function showLineCount() {
      const value = head.querySelector(".stat:last-child .stat-value");
      if (value && x) value.textContent = fmtNum(Math.max(x.log_lines, view.after()));
    }
    await refreshExecution();
    const finished = await followLog("/api/executions/" + encodeURIComponent(id) + "/logs/stream", alive, state, view.after, (lines) => {
      view.show(lines);
      showLineCount();
    });
    if (!finished) return;
    await refreshExecution().catch(() => {});
    showLineCount();
    state.textContent = "Execution " + finished + "; " + view.after() + " lines.";
    state.dataset.finished = finished;
  }

  // ---- Deployments ----------------------------------------------------------------------

  const DEPLOYMENT_STATUSES = ["queued", "building", "deploying", "running", "stopped", "failed", "cancelled"];
  const CANCELLABLE = ["queued", "building", "deploying"];

  function commitOf(d) {
    const parts = [];
    if (d.branch) parts.push(el("code", { text: d.branch }));
    if (d.commit_sha) parts.push(" ", el("code", { text: d.commit_sha.slice(0, 10), title: d.commit_sha }));
    if (d.commit_message) parts.push(" ", el("span", { class: "muted", text: d.commit_message.split("\n")[0] }));
    return parts.length ? el("span", {}, parts) : el("span", { class: "muted", text: "—" });
  }

  function deploymentTable(items) {
    return table(
      [
        { label: "Project", get: (d) => el("a", { href: "#/deployments/" + encodeURIComponent(d.id), text: d.project_name }) },
        { label: "Status", get: (d) => badge(d.status) },
        { label: "Trigger", get: (d) => d.trigger + (d.rollback_of ? " of " + d.rollback_of.slice(0, 8) : "") },
        { label: "Commit", get: commitOf },
        { label: "By", get: (d) => el("code", { class: "small", text: d.triggered_by }) },
        { label: "Created", get: (d) => fmtTime(d.created_at) },
        { label: "Took", get: (d) => (d.started_at && d.finished_at ? fmtDuration((Date.parse(d.finished_at) - Date.parse(d.started_at)) / 1000) : "—") },
      ],
      items,
      "No deployments.",
    );
  }

  // The queue (waiting for a build slot), what is building now, and the
  // history with each deployment's provenance; a row opens its live log.
  async function pageDeployments(root, alive, args) {
    root.appendChild(el("h1", { text: "Deployments" }));
    if (args[0]) return deploymentDetail(root, alive, args[0]);
    const summary = await api("/api/deployments/summary");
    if (!alive()) return;
    root.appendChild(
      el(
        "div",
        { class: "stats", id: "deployment-stats" },
        stat("Total", fmtNum(summary.total)),
        DEPLOYMENT_STATUSES.map((s) => stat(s[0].toUpperCase() + s.slice(1), fmtNum(summary.by_status[s] || 0))),
      ),
    );
    const queue = el("div", { id: "deployment-queue" });
    root.appendChild(card("Queue", el("p", { class: "muted small", text: "Waiting for a build slot, oldest first in line (deploy.max_concurrent_builds)." }), queue));
    queue.appendChild(pagedList("/api/deployments", { status: "queued" }, deploymentTable));
    const select = el("select", { name: "status", id: "deployment-status" }, ["", ...DEPLOYMENT_STATUSES].map((s) => el("option", { value: s, text: s || "any status" })));
    const results = el("div", { id: "deployment-history" });
    select.addEventListener("change", run);
    function run() {
      clear(results);
      results.appendChild(pagedList("/api/deployments", { status: select.value }, deploymentTable));
    }
    root.appendChild(card("History", el("form", { class: "filters" }, el("label", {}, "Status", select)), results));
    run();
  }

  // One deployment: its provenance, a cancel button while it may be
  // cancelled, and its log followed live.
  async function deploymentDetail(root, alive, id) {
    const head = el("div", { class: "stats", id: "deployment-head" });
    const actions = el("p", {});
    const state = el("p", { class: "muted", id: "deploy-tail-state", text: "Loading…" });
    const follow = el("input", { type: "checkbox", checked: true });
    const view = logView("deploy-log-tail", follow, (l) =>
      el("span", { class: "log-line log-" + l.stream.replace(/[^a-z]/gi, "") }, el("span", { class: "log-meta", text: l.seq + " " + new Date(l.time).toLocaleTimeString() + " " + l.stream + " " }), l.text, "\n"),
    );
    root.append(el("p", {}, el("a", { href: "#/deployments", text: "← Deployments" })), head, actions, card("Log", el("label", { class: "inline" }, follow, " follow"), state, view.log));
    async function refresh() {
      const d = await api("/api/deployments/" + encodeURIComponent(id));
      clear(head);
      head.append(
        stat("Project", d.project_name),
        el("div", { class: "stat" }, el("div", { class: "stat-value" }, badge(d.status)), el("div", { class: "stat-label", text: "Status" })),
        stat("Trigger", d.trigger),
        stat("Branch", d.branch || "—"),
        stat("Commit", d.commit_sha ? d.commit_sha.slice(0, 10) : "—", d.commit_message || ""),
        stat("Triggered by", d.triggered_by),
        stat("Started", fmtTime(d.started_at)),
        stat("Finished", fmtTime(d.finished_at)),
      );
      if (d.error_message) head.appendChild(stat("Error", d.error_message));
      clear(actions);
      if (CANCELLABLE.includes(d.status)) {
        const cancel = el("button", { type: "button", class: "secondary", id: "deployment-cancel", text: "Cancel deployment" });
        cancel.addEventListener("click", async () => {
          cancel.disabled = true;
          try {
            await api("/api/deployments/" + encodeURIComponent(id) + "/cancel", { method: "POST", body: {} });
            await refresh();
          } catch (e) {
            actions.appendChild(errorBox(e));
            cancel.disabled = false;
          }
        });
        actions.appendChild(cancel);
      }
      return d;
    }
    await refresh();
    const finished = await followLog("/api/deployments/" + encodeURIComponent(id) + "/logs/stream", alive, state, view.after, (lines) => view.show(lines));
    if (!finished) return;
    await refresh().catch(() => {});
    state.textContent = "Deployment " + finished + "; " + view.after() + " lines.";
    state.dataset.finished = finished;
  }

  // ---- Catalog --------------------------------------------------------------------------

  async function pageCatalog(root) {
    root.appendChild(el("h1", { text: "Template catalog" }));
    const results = el("div", { class: "cards" });
    const q = el("input", { type: "search", name: "q", placeholder: "Search name or description" });
    const form = el("form", { class: "filters" }, el("label", {}, "Search", q), el("button", { type: "submit", text: "Search" }));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      run();
    });
    root.append(form, results);
    function render(items) {
      if (!items.length) return el("p", { class: "muted", text: "No templates." });
      return el(
        "div",
        { class: "cards-inner" },
        items.map((t) =>
          el(
            "article",
            { class: "card template" },
            el("h3", { text: t.name }),
            el("p", { class: "muted small" }, el("code", { text: t.slug }), " · ", t.category, " · ", t.complexity, " · ~", t.estimated_setup_time, " min"),
            el("p", { text: t.description }),
            el("p", { class: "tags" }, t.tech_stack.map((x) => el("span", { class: "tag", text: x }))),
            el("p", { class: "muted small", text: t.file_count + " files · used " + t.usage_count + " times" + (t.is_builtin ? " · built-in" : "") + (t.is_public ? "" : " · private") }),
          ),
        ),
      );
    }
    function run() {
      clear(results);
      results.appendChild(pagedList("/api/templates", { q: q.value.trim() }, render));
    }
    run();
  }

  // ------------------------------------------------------------------------------------------

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
  else boot();
})();
