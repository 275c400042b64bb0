//! The dashboard in a real browser: Debian's chromium, driven through
//! chromedriver over WebDriver (fantoccini). It signs in, checks the
//! overview's numbers against the API and its charts drawn from the
//! server's metrics history (with the time-range picker), opens the
//! slow-query page and the migration history, the activity list (each row
//! once), follows a live log tail (an event stream) while lines are
//! appended, across a dropped connection and until the execution finishes,
//! and signs out; then it visits every page again on a phone-sized screen.
//! Every page, at 1366×900 and at 390×844, gets a full-page screenshot under
//! `target/tmp/dashboard/` and is inspected ([`INSPECT`]): a text node
//! `null`, `undefined` or `NaN`, an element wider than the viewport, a
//! chart without axis labels or with a stacked legend fails the test, as does any console error (an
//! exception, a failed request, a CSP violation).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::app::{Session, TestApp};
use crate::support::id;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Generous: CI shares two cores between the browser, devx and PostgreSQL.
const PATIENCE: Duration = Duration::from_secs(30);

/// A laptop and a phone, in CSS pixels: (name, width, height, mobile).
const DESKTOP: Viewport = Viewport { name: "desktop", width: 1366, height: 900, mobile: false };
const PHONE: Viewport = Viewport { name: "phone", width: 390, height: 844, mobile: true };

#[derive(Clone, Copy)]
struct Viewport {
    name: &'static str,
    width: u32,
    height: u32,
    mobile: bool,
}

/// What is wrong with the page on screen, as a list of sentences: a text
/// node that reads `null`, `undefined` or `NaN` (data that was missing and
/// shown anyway); an element wider than the viewport, or reaching past its
/// edge without a scrolling or clipping box around it; a chart whose axes do
/// not all say what they measure (uPlot draws the labels on its canvas; the
/// app states them in `data-axis-labels`); a chart legend whose series and
/// value no longer share a line (a table style meant for data tables
/// reaching uPlot's legend table).
const INSPECT: &str = r#"
const problems = [];
const vw = document.documentElement.clientWidth;
const describe = (e) => '<' + e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
  (typeof e.className === 'string' && e.className ? '.' + e.className.trim().split(/\s+/).join('.') : '') + '> ' +
  JSON.stringify((e.textContent || '').trim().slice(0, 60));
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
for (let n = walker.nextNode(); n; n = walker.nextNode()) {
  const parent = n.parentElement;
  if (!parent || parent.closest('script, style')) continue;
  const t = n.textContent.trim();
  if (/^(null|undefined|NaN)$/.test(t) || /(undefined|NaN)/.test(t)) problems.push('the text ' + JSON.stringify(t) + ' in ' + describe(parent));
}
if (document.documentElement.scrollWidth > vw) problems.push('the page scrolls sideways: ' + document.documentElement.scrollWidth + ' px wide in ' + vw);
for (const e of document.body.querySelectorAll('*')) {
  const r = e.getBoundingClientRect();
  if (r.width === 0 && r.height === 0) continue;
  if (r.width > vw + 0.5) { problems.push('wider than the viewport (' + Math.round(r.width) + ' px in ' + vw + '): ' + describe(e)); continue; }
  if (r.right <= vw + 0.5 && r.left >= -0.5) continue;
  let a = e.parentElement, contained = false;
  for (; a && a !== document.body; a = a.parentElement) {
    if (getComputedStyle(a).overflowX !== 'visible') { contained = true; break; }
  }
  if (!contained) problems.push('past the edge of the viewport (' + Math.round(r.left) + '..' + Math.round(r.right) + ' of ' + vw + '): ' + describe(e));
}
for (const u of document.querySelectorAll('.uplot')) {
  let labels = null;
  try { labels = JSON.parse(u.getAttribute('data-axis-labels')); } catch (_) {}
  const axes = u.querySelectorAll('.u-axis').length;
  if (!Array.isArray(labels) || labels.length < Math.max(2, axes) || labels.some((l) => typeof l !== 'string' || !l.trim())) {
    const title = u.querySelector('.u-title');
    problems.push('a chart without axis labels (units): ' + (title ? title.textContent : describe(u)) + ' ' + JSON.stringify(labels));
  }
}
for (const row of document.querySelectorAll('.uplot .u-legend .u-series')) {
  const label = row.querySelector('th'), value = row.querySelector('td');
  if (!label || !value) continue;
  const a = label.getBoundingClientRect(), b = value.getBoundingClientRect();
  if (Math.abs(a.top - b.top) > 4 || getComputedStyle(row).display === 'block') {
    problems.push('a chart legend stacked: ' + JSON.stringify(label.textContent) + ' and its value on separate lines');
  }
}
return problems;
"#;

/// A chromedriver process on a free port, killed on drop.
struct ChromeDriver {
    child: Child,
    url: String,
    profile: tempfile::TempDir,
}

impl ChromeDriver {
    async fn start() -> ChromeDriver {
        for binary in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(binary).exists(),
                "{binary} is missing: run .ci/run, or `apt-get install -y chromium chromium-driver`"
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let profile = tempfile::tempdir().unwrap();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", profile.path().join("chromedriver.log").display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver = ChromeDriver { child, url: format!("http://127.0.0.1:{port}"), profile };
        // Readiness by asking, not by sleeping.
        let http = reqwest::Client::new();
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(resp) = http.get(format!("{}/status", driver.url)).send().await
                && let Ok(status) = resp.json::<Value>().await
                && status["value"]["ready"] == true
            {
                return driver;
            }
            assert!(Instant::now() < deadline, "chromedriver did not become ready on port {port}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A headless chromium session that keeps its console for [`Browser::console_errors`].
    async fn browser(&self) -> Browser {
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new",
                    // chromium refuses its sandbox as root (CI) and /dev/shm may be small.
                    "--no-sandbox",
                    "--disable-dev-shm-usage",
                    "--disable-gpu",
                    "--no-first-run",
                    "--disable-extensions",
                    "--window-size=1366,900",
                    format!("--user-data-dir={}", self.profile.path().join("profile").display()),
                ],
            },
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps.as_object().unwrap().clone())
            .connect(&self.url)
            .await
            .expect("a chromium session");
        let session = client.session_id().await.unwrap().expect("a session id");
        Browser {
            client,
            log_url: format!("{}/session/{session}/se/log", self.url),
            cdp_url: format!("{}/session/{session}/goog/cdp/execute", self.url),
            http: reqwest::Client::new(),
            problems: Vec::new(),
            viewport: DESKTOP,
        }
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Browser {
    client: Client,
    log_url: String,
    /// chromedriver's passage to the DevTools protocol (viewport, full-page screenshots).
    cdp_url: String,
    http: reqwest::Client,
    /// What [`Browser::inspect`] found, every page and size: reported together at the end.
    problems: Vec<String>,
    viewport: Viewport,
}

impl Browser {
    /// Console entries at SEVERE since the last call (chromedriver drains
    /// the log on every read): uncaught exceptions, console.error, failed
    /// requests, CSP violations.
    async fn console_errors(&self) -> Vec<String> {
        let body: Value = self
            .http
            .post(&self.log_url)
            .json(&json!({"type": "browser"}))
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .unwrap();
        let entries = body["value"].as_array().unwrap_or_else(|| panic!("a browser log: {body}"));
        entries.iter().filter(|e| e["level"] == "SEVERE").map(|e| e["message"].to_string()).collect()
    }

    async fn assert_no_console_errors(&self, step: &str) {
        let errors = self.console_errors().await;
        assert!(errors.is_empty(), "console errors after {step}: {errors:#?}");
    }

    /// Runs `script` (a function body returning a value) until `accept`
    /// holds for its result, polling; panics with the last value after a while.
    async fn wait_until(&self, what: &str, script: &str, accept: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let value = self.client.execute(script, vec![]).await.unwrap_or(Value::Null);
            if accept(&value) {
                return value;
            }
            if Instant::now() > deadline {
                let errors = self.console_errors().await;
                panic!("waited for {what}; last value {value}; console errors {errors:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The text of `selector`, once present and non-empty.
    async fn text_of(&self, selector: &str) -> String {
        let script = format!("const n = document.querySelector({selector:?}); return n ? n.textContent : null;");
        let value = self.wait_until(selector, &script, |v| v.as_str().is_some_and(|s| !s.trim().is_empty())).await;
        value.as_str().unwrap().to_string()
    }

    /// Every overview/database stat as label → value.
    async fn stats(&self, expect_label: &str) -> serde_json::Map<String, Value> {
        let script = "const out = {};
            for (const s of document.querySelectorAll('.stat')) {
              const label = s.querySelector('.stat-label'), value = s.querySelector('.stat-value');
              if (label && value) out[label.textContent] = value.textContent;
            }
            return out;";
        let value =
            self.wait_until(&format!("the stat {expect_label:?}"), script, |v| v.get(expect_label).is_some()).await;
        value.as_object().unwrap().clone()
    }

    async fn open(&self, page: &str, heading: &str) {
        self.client.find(Locator::Css(&format!("#nav a[data-page='{page}']"))).await.unwrap().click().await.unwrap();
        // The click renders the page asynchronously: until it has, the
        // previous page's heading is still there.
        let script = "const h = document.querySelector('#page h1'); return h ? h.textContent : null;";
        self.wait_until(&format!("the {page} page's heading {heading:?}"), script, |v| v == heading).await;
    }

    /// A DevTools protocol command through chromedriver.
    async fn cdp(&self, cmd: &str, params: Value) -> Value {
        let resp = self.http.post(&self.cdp_url).json(&json!({"cmd": cmd, "params": params})).send().await;
        let body: Value = resp.expect("chromedriver answers").json().await.unwrap();
        assert!(body["value"].is_object(), "{cmd}: {body}");
        body["value"].clone()
    }

    /// Lays the page out for `viewport` (the window's size, and on a phone
    /// its touch-screen behaviour).
    async fn set_viewport(&mut self, viewport: Viewport) {
        let params = json!({
            "width": viewport.width, "height": viewport.height, "deviceScaleFactor": 1, "mobile": viewport.mobile,
        });
        self.cdp("Emulation.setDeviceMetricsOverride", params).await;
        self.viewport = viewport;
        let width = self.client.execute("return document.documentElement.clientWidth;", vec![]).await.unwrap();
        assert_eq!(width, json!(viewport.width), "the viewport is {}", viewport.name);
    }

    /// The whole page (not only what the viewport shows), as a PNG under
    /// `target/tmp/dashboard/<name>-<viewport>.png`.
    async fn screenshot(&self, name: &str) -> PathBuf {
        let layout = self.cdp("Page.getLayoutMetrics", json!({})).await;
        let height = layout["cssContentSize"]["height"].as_f64().expect("a content height").ceil();
        let clip = json!({"x": 0, "y": 0, "width": self.viewport.width, "height": height, "scale": 1});
        let shot = self
            .cdp("Page.captureScreenshot", json!({"format": "png", "captureBeyondViewport": true, "clip": clip}))
            .await;
        use base64::Engine as _;
        let png = base64::engine::general_purpose::STANDARD.decode(shot["data"].as_str().unwrap()).unwrap();
        assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{name}: a real picture ({} bytes)", png.len());
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}-{}.png", self.viewport.name));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Screenshots the page and records what [`INSPECT`] finds on it.
    async fn inspect(&mut self, name: &str) {
        self.screenshot(name).await;
        let found = self.client.execute(INSPECT, vec![]).await.expect("the inspection runs");
        for problem in found.as_array().expect("a list of problems") {
            self.problems.push(format!("{name} ({}): {}", self.viewport.name, problem.as_str().unwrap_or_default()));
        }
    }

    /// Opens `hash` by its address and waits until `ready` (a script) is true.
    async fn visit(&self, hash: &str, ready: &str) {
        self.client.execute(&format!("location.hash = {hash:?};"), vec![]).await.unwrap();
        self.wait_until(&format!("{hash} ready"), ready, |v| v == &Value::Bool(true)).await;
    }
}

/// A TCP relay in front of the app whose connections the test can cut, as
/// a dropped network would.
struct Relay {
    url: String,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Relay {
    async fn start(to: SocketAddr) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let connections = Arc::new(Mutex::new(Vec::new()));
        let open = Arc::clone(&connections);
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let relay = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(to).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                open.lock().unwrap().push(relay);
            }
        });
        Relay { url, connections, accept }
    }

    /// Closes every open connection, both ends, and returns once they are closed.
    async fn cut(&self) {
        let open = std::mem::take(&mut *self.connections.lock().unwrap());
        for connection in open {
            connection.abort();
            let _ = connection.await;
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accept.abort();
        self.connections.lock().unwrap().iter().for_each(JoinHandle::abort);
    }
}

/// What the dashboard has to show: a user's project with a task whose
/// execution is running and has logged two lines, and an unresolved error.
async fn activity(app: &TestApp, dev: &Session) -> String {
    let (status, project) = app.post("/api/projects", Some(&dev.token), json!({"name": "shop"})).await;
    assert_eq!(status, StatusCode::CREATED, "{project}");
    let body = json!({"project_id": id(&project), "title": "Add the checkout page", "priority": 5});
    let (status, task) = app.post("/api/tasks", Some(&dev.token), body).await;
    assert_eq!(status, StatusCode::CREATED, "{task}");
    let (status, x) = app
        .post(&format!("/api/tasks/{}/executions", id(&task)), Some(&dev.token), json!({"agent_type": "claude-code"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{x}");
    let lines = json!({"lines": [{"message": "cloning the repository"}, {"message": "running cargo build"}]});
    let (status, body) = app.post(&format!("/api/executions/{}/logs", id(&x)), Some(&dev.token), lines).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let error = json!({"error_type": "network", "message": "connection reset by peer", "task_id": id(&task)});
    let (status, body) = app.post("/api/errors", Some(&dev.token), error).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    id(&x)
}

/// A deployment of another project of the user's, with its commit and two
/// log lines: building (it took the one build slot), its id.
async fn deployment(app: &TestApp, dev: &Session) -> String {
    let (status, project) = app.post("/api/projects", Some(&dev.token), json!({"name": "storefront"})).await;
    assert_eq!(status, StatusCode::CREATED, "{project}");
    let body = json!({"commit_sha": "3f786850e387550fdab836ed7e6dc881de23001b", "commit_message": "Ship the cart", "branch": "main"});
    let (status, d) = app.post(&format!("/api/projects/{}/deployments", id(&project)), Some(&dev.token), body).await;
    assert_eq!(status, StatusCode::CREATED, "{d}");
    let lines =
        json!({"lines": [{"text": "resolving dependencies"}, {"text": "compiling 212 crates", "stream": "stderr"}]});
    let (status, body) = app.post(&format!("/api/deployments/{}/logs", id(&d)), Some(&dev.token), lines).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    id(&d)
}

/// Each page's address and a script that is true once it has drawn its data.
fn pages(execution: &str, deployment: &str, applied: usize) -> Vec<(&'static str, String, String)> {
    vec![
        (
            "overview",
            "#/overview".into(),
            "const p = Array.from(document.querySelectorAll('#page .uplot')).map(u => Number(u.dataset.points || 0));
             return document.querySelectorAll('#overview-stats .stat').length >= 10 && p.length === 4 && p.every(n => n >= 3);"
                .into(),
        ),
        (
            "database",
            "#/database".into(),
            "return Array.from(document.querySelectorAll('#page h2')).some(h => h.textContent === 'Largest tables');".into(),
        ),
        (
            "migrations",
            "#/migrations".into(),
            format!("return document.querySelectorAll('#page tbody tr').length === {applied};"),
        ),
        ("activity", "#/activity".into(), "return document.querySelectorAll('#page tbody tr').length > 0;".into()),
        ("tasks", "#/tasks".into(), "return document.querySelectorAll('#page tbody tr').length === 1;".into()),
        (
            "log-tail",
            format!("#/tasks/execution/{execution}"),
            "const t = document.getElementById('log-tail'); return !!t && t.textContent.includes('disk almost full');"
                .into(),
        ),
        ("catalog", "#/catalog".into(), "return document.querySelectorAll('#page article.template').length >= 15;".into()),
        (
            "deployments",
            "#/deployments".into(),
            "return document.querySelectorAll('#deployment-history tbody tr').length === 1;".into(),
        ),
        (
            "deploy-log-tail",
            format!("#/deployments/{deployment}"),
            "const t = document.getElementById('deploy-log-tail'); return !!t && t.textContent.includes('image pushed');"
                .into(),
        ),
    ]
}

#[tokio::test]
async fn the_dashboard_works_in_a_real_browser() {
    // Every statement counts as slow, so the slow-query page has rows; the
    // server samples its metrics every 100 ms, so the charts have a past.
    let app = TestApp::spawn_with(|c| {
        c.database.slow_query_threshold = Duration::ZERO;
        c.http.metrics_sample_interval = Duration::from_millis(100);
    })
    .await;
    let admin = app.admin("ops@example.com").await;
    let dev = app.register("dev@example.com").await;
    let execution = activity(&app, &dev).await;
    let deployed = deployment(&app, &dev).await;
    let applied = devx::migrate::MigrationSet::embedded().unwrap().len();
    // The history holds a few samples before the browser opens.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (status, body) = app.get("/api/admin/metrics/history", Some(&admin.token)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body["samples"].as_array().unwrap().len() >= 5 {
            break;
        }
        assert!(Instant::now() < deadline, "no metrics history: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let driver = ChromeDriver::start().await;
    let mut b = driver.browser().await;
    b.set_viewport(DESKTOP).await;

    // Sign in.
    // Through a relay that can cut the browser's connections.
    let relay = Relay::start(app.addr).await;
    b.client.goto(&format!("{}/", relay.url)).await.unwrap();
    b.text_of("#login h1").await;
    b.inspect("sign-in").await;
    b.client.find(Locator::Id("login-email")).await.unwrap().send_keys(&admin.email).await.unwrap();
    b.client.find(Locator::Id("login-password")).await.unwrap().send_keys("correct horse battery").await.unwrap();
    b.client.find(Locator::Id("login-submit")).await.unwrap().click().await.unwrap();
    assert_eq!(b.text_of("#who-email").await, admin.email);
    assert_eq!(b.text_of("#page h1").await, "Overview");

    // The overview's numbers are the API's.
    let stats = b.stats("Unresolved errors").await;
    let (_, api) = app.get("/api/admin/stats", Some(&admin.token)).await;
    let count = |v: &Value| v.as_u64().unwrap_or(0);
    let sum = |v: &Value| v.as_object().unwrap().values().map(count).sum::<u64>();
    let shown = |label: &str| stats[label].as_str().unwrap_or_else(|| panic!("{label} in {stats:?}")).to_string();
    assert_eq!(shown("Users"), api["users"]["total"].to_string());
    assert_eq!(shown("Users"), "2");
    assert_eq!(shown("Projects"), sum(&api["projects_by_status"]).to_string());
    let open = count(&api["tasks_by_status"]["pending"]) + count(&api["tasks_by_status"]["in_progress"]);
    assert_eq!((shown("Open tasks"), open), ("1".to_string(), 1));
    assert_eq!(shown("Unresolved errors"), "1");
    assert_eq!(shown("Health"), "ok");
    assert_eq!(shown("Version"), env!("CARGO_PKG_VERSION"));
    assert_eq!(shown("Migrations applied"), applied.to_string());
    assert_eq!(shown("Migrations pending"), "0");
    // The charts open with the server's history drawn, over the chosen range.
    let all = pages(&execution, &deployed, applied);
    b.wait_until("four charts drawn from the history", &format!("return (() => {{ {} }})();", all[0].2), |v| {
        v == &Value::Bool(true)
    })
    .await;
    let pressed =
        "return Array.from(document.querySelectorAll('#range button[aria-pressed=true]')).map(b => b.dataset.range);";
    assert_eq!(b.client.execute(pressed, vec![]).await.unwrap(), json!(["1h"]), "the last hour by default");
    b.client.find(Locator::Css("#range button[data-range='15m']")).await.unwrap().click().await.unwrap();
    assert_eq!(b.client.execute(pressed, vec![]).await.unwrap(), json!(["15m"]));
    let points = "return Array.from(document.querySelectorAll('#page .uplot')).map(u => Number(u.dataset.points));";
    let drawn = b.client.execute(points, vec![]).await.unwrap();
    assert!(drawn.as_array().unwrap().iter().all(|n| n.as_u64() >= Some(5)), "the last 15 min: {drawn}");
    let about = b.text_of("#history-about").await;
    assert!(about.contains("every 0.1 s") && about.contains("samples"), "{about}");
    b.inspect("overview").await;
    b.assert_no_console_errors("the overview").await;

    // The slow-query page.
    b.open("database", "Database").await;
    let rows = b
        .wait_until(
            "the slow statements devx saw",
            "for (const c of document.querySelectorAll('#page .card')) {
               const h = c.querySelector('h2');
               if (h && h.textContent === 'Slow statements seen by devx') return c.querySelectorAll('tbody tr').length;
             }
             return 0;",
            |v| v.as_u64() > Some(0),
        )
        .await;
    assert!(rows.as_u64().unwrap() >= 1);
    let headings =
        b.client.execute("return Array.from(document.querySelectorAll('#page h2')).map(h => h.textContent);", vec![]);
    let headings = headings.await.unwrap().to_string();
    for expected in [
        "Findings",
        "Slow queries (pg_stat_statements)",
        "Slow statements seen by devx",
        "Connections by state",
        "Largest tables",
        "Periodic jobs (once per period across every devx process)",
    ] {
        assert!(headings.contains(expected), "{expected} on the database page: {headings}");
    }
    assert!(!headings.contains("Read replicas"), "no replica card without replicas: {headings}");
    let jobs = b
        .client
        .execute(
            "for (const c of document.querySelectorAll('#page .card')) {
               const h = c.querySelector('h2');
               if (h && h.textContent.startsWith('Periodic jobs')) return Array.from(c.querySelectorAll('tbody tr td:first-child')).map(td => td.textContent);
             }
             return [];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(jobs, json!(["agents.reaper", "retention"]), "each periodic job is listed");
    // The findings' `code` spans are <code>, not backticks.
    let findings = b
        .client
        .execute(
            "const f = document.getElementById('findings');
             return f ? [f.textContent.includes('`'), f.querySelectorAll('code').length] : [false, -1];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(findings[0], false, "no backtick shown in the findings");
    b.inspect("database").await;
    b.assert_no_console_errors("the database page").await;

    // The migration history: every migration, applied, with times that say
    // their zone and durations in one format.
    b.open("migrations", "Migrations").await;
    let states = b
        .wait_until(
            "the migration history",
            "return Array.from(document.querySelectorAll('#page tbody tr .badge')).map(b => b.textContent);",
            |v| v.as_array().is_some_and(|a| !a.is_empty()),
        )
        .await;
    assert_eq!(states.as_array().unwrap().len(), applied);
    assert!(states.as_array().unwrap().iter().all(|s| s == "applied"), "{states}");
    let cells = |label: &str| {
        format!(
            "return Array.from(document.querySelectorAll('#page td[data-label=\"{label}\"]')).map(td => td.textContent);"
        )
    };
    let applied_at = b.client.execute(&cells("Applied at"), vec![]).await.unwrap();
    for at in applied_at.as_array().unwrap() {
        assert!(at.as_str().is_some_and(|t| t.contains("UTC") || t.contains("GMT")), "a time with its zone: {at}");
    }
    let took = b.client.execute(&cells("Took"), vec![]).await.unwrap();
    for t in took.as_array().unwrap().iter().map(|t| t.as_str().unwrap()) {
        let number = t.strip_suffix(" ms").unwrap_or_else(|| panic!("{t:?} in ms"));
        assert!(!(number.contains('.') && number.ends_with('0')), "no trailing zero: {t:?} in {took}");
    }
    b.inspect("migrations").await;
    b.assert_no_console_errors("the migrations page").await;

    // Activity: the recent rows, each once (every list on the page loaded).
    b.open("activity", "Activity").await;
    let ids = b
        .wait_until(
            "audit rows",
            "if (document.querySelector('#page [aria-busy=true]')) return [];
             return Array.from(document.querySelectorAll('#page tr[data-audit-id]')).map(r => r.dataset.auditId);",
            |v| v.as_array().is_some_and(|a| !a.is_empty()),
        )
        .await;
    let ids: Vec<&str> = ids.as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    let distinct: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len(), "each audit row once: {ids:?}");
    b.inspect("activity").await;
    b.open("catalog", "Template catalog").await;
    b.wait_until("the built-in templates", "return document.querySelectorAll('#page article.template').length;", |v| {
        v.as_u64() >= Some(15)
    })
    .await;
    b.inspect("catalog").await;
    b.assert_no_console_errors("the activity and catalog pages").await;

    // Tasks → the task's executions → the live log tail.
    b.open("tasks", "Tasks").await;
    b.wait_until("the task", "return document.querySelectorAll('#page tbody tr').length;", |v| v.as_u64() == Some(1))
        .await;
    b.inspect("tasks").await;
    b.client.find(Locator::Css("#page tbody button.link")).await.unwrap().click().await.unwrap();
    let link = format!("a[href='#/tasks/execution/{execution}']");
    b.text_of(&link).await;
    // The requests the tail makes, from here on (resource timing).
    b.client
        .execute("performance.setResourceTimingBufferSize(10000); performance.clearResourceTimings();", vec![])
        .await
        .unwrap();
    b.client.find(Locator::Css(&link)).await.unwrap().click().await.unwrap();
    let tail = b.text_of("#log-tail").await;
    assert!(tail.contains("cloning the repository") && tail.contains("running cargo build"), "{tail}");
    assert!(b.text_of("#tail-state").await.starts_with("Tailing live"));
    let more = json!({"lines": [{"message": "tests passed", "level": "info"}, {"message": "disk almost full", "level": "warn"}]});
    let (status, body) = app.post(&format!("/api/executions/{execution}/logs"), Some(&dev.token), more).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let tail = b
        .wait_until("the appended lines in the tail", "return document.getElementById('log-tail').textContent;", |v| {
            v.as_str().is_some_and(|t| t.contains("disk almost full"))
        })
        .await;
    let tail = tail.as_str().unwrap();
    let order: Vec<usize> = ["cloning the repository", "running cargo build", "tests passed", "disk almost full"]
        .iter()
        .map(|line| tail.find(line).unwrap_or_else(|| panic!("{line} in {tail}")))
        .collect();
    assert!(order.is_sorted(), "lines in order, each once: {tail}");
    assert_eq!(tail.matches("running cargo build").count(), 1, "no line twice: {tail}");
    assert_eq!(b.stats("Lines").await["Lines"], "4", "the line count follows the tail");
    b.inspect("log-tail").await;
    // The connection drops while lines are appended: the tail reconnects
    // with Last-Event-ID and shows the lines it missed, each once.
    relay.cut().await;
    let more = json!({"lines": [{"message": "uploading artifacts"}, {"message": "done uploading"}]});
    let (status, body) = app.post(&format!("/api/executions/{execution}/logs"), Some(&dev.token), more).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let tail = b
        .wait_until(
            "the lines appended while cut off",
            "return document.getElementById('log-tail').textContent;",
            |v| v.as_str().is_some_and(|t| t.contains("done uploading")),
        )
        .await;
    let tail = tail.as_str().unwrap();
    let order: Vec<usize> = ["disk almost full", "uploading artifacts", "done uploading"]
        .iter()
        .map(|line| tail.find(line).unwrap_or_else(|| panic!("{line} in {tail}")))
        .collect();
    assert!(order.is_sorted(), "lines in order after the reconnect: {tail}");
    for line in ["cloning the repository", "disk almost full", "uploading artifacts"] {
        assert_eq!(tail.matches(line).count(), 1, "{line} once after the reconnect: {tail}");
    }
    assert_eq!(b.stats("Lines").await["Lines"], "6", "the line count follows the tail");
    // Chromium reports the cut stream (a truncated chunked body), and nothing else.
    let errors = b.console_errors().await;
    let expected = |e: &String| e.contains("/logs/stream") && e.contains("net::ERR_");
    assert!(errors.iter().all(expected), "console errors after the reconnect: {errors:#?}");
    // The execution finishes: the stream's `event: end` says so.
    let (status, body) = app.post(&format!("/api/executions/{execution}/complete"), Some(&dev.token), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    b.wait_until(
        "the finished marker",
        "return document.getElementById('tail-state').dataset.finished || null;",
        |v| v == "completed",
    )
    .await;
    assert_eq!(b.text_of("#tail-state").await, "Execution completed; 6 lines.");
    let stats = b.stats("Status").await;
    assert_eq!((stats["Status"].as_str(), stats["Lines"].as_str()), (Some("completed"), Some("6")), "{stats:?}");
    let tail = b.text_of("#log-tail").await;
    assert_eq!(tail.matches("disk almost full").count(), 1, "no line twice after the end: {tail}");
    // Read through the stream, never by polling the page-by-page tail.
    let requests =
        b.client.execute("return performance.getEntriesByType('resource').map((e) => e.name);", vec![]).await.unwrap();
    let requests: Vec<&str> = requests.as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(requests.iter().any(|r| r.ends_with(&format!("/api/executions/{execution}/logs/stream"))), "{requests:#?}");
    assert!(!requests.iter().any(|r| r.contains("/logs?")), "no polling while streaming: {requests:#?}");
    b.assert_no_console_errors("the log tail").await;

    // Deployments: the history with its provenance → the deployment's live
    // log → cancelled from the page, which ends the stream.
    b.open("deployments", "Deployments").await;
    let row = b
        .wait_until(
            "the deployment in the history",
            "const r = document.querySelectorAll('#deployment-history tbody tr');
             return r.length === 1 ? r[0].textContent : null;",
            Value::is_string,
        )
        .await;
    let row = row.as_str().unwrap();
    for shown in ["storefront", "building", "manual", "3f786850e3", "Ship the cart", "main", "user:"] {
        assert!(row.contains(shown), "{shown} in the history row: {row}");
    }
    assert_eq!(b.stats("Building").await["Building"], "1");
    b.inspect("deployments").await;
    let link = format!("#deployment-history a[href='#/deployments/{deployed}']");
    b.client.find(Locator::Css(&link)).await.unwrap().click().await.unwrap();
    let tail = b.text_of("#deploy-log-tail").await;
    assert!(tail.contains("resolving dependencies") && tail.contains("compiling 212 crates"), "{tail}");
    let more = json!({"lines": [{"text": "image pushed", "stream": "system"}]});
    let (status, body) = app.post(&format!("/api/deployments/{deployed}/logs"), Some(&dev.token), more).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    b.wait_until("the appended deploy line", "return document.getElementById('deploy-log-tail').textContent;", |v| {
        v.as_str().is_some_and(|t| t.contains("image pushed"))
    })
    .await;
    b.inspect("deploy-log-tail").await;
    b.client.find(Locator::Id("deployment-cancel")).await.unwrap().click().await.unwrap();
    b.wait_until(
        "the stream's end after the cancel",
        "return document.getElementById('deploy-tail-state').dataset.finished || null;",
        |v| v == "cancelled",
    )
    .await;
    assert_eq!(b.text_of("#deploy-tail-state").await, "Deployment cancelled; 3 lines.");
    let (_, d) = app.get(&format!("/api/deployments/{deployed}"), Some(&admin.token)).await;
    assert_eq!(d["status"], "cancelled", "{d}");
    assert_eq!(b.stats("Status").await["Status"], "cancelled");
    b.assert_no_console_errors("the deployments pages").await;

    // A phone: every page again.
    b.set_viewport(PHONE).await;
    for (name, hash, ready) in &all {
        b.visit(hash, &format!("return (() => {{ {ready} }})();")).await;
        b.inspect(name).await;
        b.assert_no_console_errors(&format!("{name} on a phone")).await;
    }

    // Sign out: back to the form.
    b.client.find(Locator::Id("sign-out")).await.unwrap().click().await.unwrap();
    b.wait_until(
        "the sign-in form",
        "return !document.getElementById('login').hidden && document.getElementById('nav').hidden;",
        |v| v == &Value::Bool(true),
    )
    .await;
    b.inspect("sign-in").await;
    b.assert_no_console_errors("signing out").await;
    b.client.close().await.unwrap();
    assert!(b.problems.is_empty(), "the pages have rough edges:\n{}", b.problems.join("\n"));
}
