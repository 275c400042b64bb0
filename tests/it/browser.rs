//! The dashboard in a real browser: Debian's chromium, driven through
//! chromedriver over WebDriver (fantoccini). It signs in, checks the
//! overview's numbers against the API, opens the slow-query page and the
//! migration history, follows a live log tail while lines are appended,
//! renders on a phone-sized screen without sideways scrolling, signs out,
//! and saves screenshots under `target/tmp/dashboard/`. Any console error
//! (an exception, a failed request, a CSP violation) fails it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::app::{Session, TestApp};
use crate::support::id;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Generous: CI shares two cores between the browser, devx and PostgreSQL.
const PATIENCE: Duration = Duration::from_secs(30);

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
        Browser { client, log_url: format!("{}/session/{session}/se/log", self.url), http: reqwest::Client::new() }
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
    http: reqwest::Client,
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
        let h1 = self.text_of("#page h1").await;
        assert_eq!(h1, heading, "the {page} page");
    }

    async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("a screenshot");
        assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{name}: a real picture ({} bytes)", png.len());
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
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

#[tokio::test]
async fn the_dashboard_works_in_a_real_browser() {
    // Every statement counts as slow, so the slow-query page has rows.
    let app = TestApp::spawn_with(|c| c.database.slow_query_threshold = Duration::ZERO).await;
    let admin = app.admin("ops@example.com").await;
    let dev = app.register("dev@example.com").await;
    let execution = activity(&app, &dev).await;

    let driver = ChromeDriver::start().await;
    let b = driver.browser().await;

    // Sign in.
    b.client.goto(&app.url("/")).await.unwrap();
    b.text_of("#login h1").await;
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
    let applied = devx::migrate::MigrationSet::embedded().unwrap().len();
    assert_eq!(shown("Migrations applied"), applied.to_string());
    assert_eq!(shown("Migrations pending"), "0");
    b.wait_until("two charts", "return document.querySelectorAll('#page .uplot canvas').length;", |v| {
        v.as_u64() >= Some(2)
    })
    .await;
    b.screenshot("overview").await;
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
    ] {
        assert!(headings.contains(expected), "{expected} on the database page: {headings}");
    }
    b.screenshot("database").await;
    b.assert_no_console_errors("the database page").await;

    // The migration history: every migration, applied.
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
    b.assert_no_console_errors("the migrations page").await;

    // Activity and the catalog render their lists.
    b.open("activity", "Activity").await;
    b.wait_until("audit rows", "return document.querySelectorAll('#page tbody tr').length;", |v| v.as_u64() > Some(0))
        .await;
    b.open("catalog", "Template catalog").await;
    b.wait_until("the built-in templates", "return document.querySelectorAll('#page article.template').length;", |v| {
        v.as_u64() >= Some(15)
    })
    .await;
    b.assert_no_console_errors("the activity and catalog pages").await;

    // Tasks → the task's executions → the live log tail.
    b.open("tasks", "Tasks").await;
    b.wait_until("the task", "return document.querySelectorAll('#page tbody tr').length;", |v| v.as_u64() == Some(1))
        .await;
    b.client.find(Locator::Css("#page tbody button.link")).await.unwrap().click().await.unwrap();
    let link = format!("a[href='#/tasks/execution/{execution}']");
    b.text_of(&link).await;
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
    b.screenshot("log-tail").await;
    b.assert_no_console_errors("the log tail").await;

    // A phone: the overview fits the width.
    b.client.set_window_size(390, 844).await.unwrap();
    b.client.find(Locator::Css("a.brand")).await.unwrap().click().await.unwrap();
    b.stats("Users").await;
    let overflow = b
        .client
        .execute("return document.documentElement.scrollWidth - document.documentElement.clientWidth;", vec![])
        .await
        .unwrap();
    assert!(overflow.as_i64().unwrap() <= 0, "no sideways scrolling on a phone: {overflow} px too wide");
    b.screenshot("overview-phone").await;

    // Sign out: back to the form.
    b.client.find(Locator::Id("sign-out")).await.unwrap().click().await.unwrap();
    b.wait_until(
        "the sign-in form",
        "return !document.getElementById('login').hidden && document.getElementById('nav').hidden;",
        |v| v == &Value::Bool(true),
    )
    .await;
    b.assert_no_console_errors("signing out").await;
    b.client.close().await.unwrap();
}
