//! Three real `devx serve` processes on one database behave as one behind a
//! round-robin client: a session works on every process and its sign-out
//! everywhere at once, sign-in throttling counts across them, an
//! `Idempotency-Key` holds across them, concurrent claims through all three
//! take each task once, a log stream on one sees lines appended through
//! another (NOTIFY fans out), and each periodic job (retention, the
//! reaper) runs once per period, not once per process.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{TestDb, devx_command};
use crate::support::count;

const PASSWORD: &str = "correct horse battery";
/// The jobs' intervals in this test, in seconds (as stored in the settings).
const RETENTION_EVERY: f64 = 2.0;
const REAPER_EVERY: f64 = 1.0;
/// Failed sign-ins before an account is locked.
const MAX_FAILURES: usize = 4;

/// One `devx serve` child; killed (and reaped) on drop, so a failing test
/// leaves no process behind.
struct Serve {
    child: Child,
    addr: SocketAddr,
    /// Every line it wrote to stderr so far (JSON logs).
    log: Arc<Mutex<Vec<String>>>,
}

impl Serve {
    /// Starts `devx serve` on `db` on a port of its own choosing.
    fn start(db: &TestDb) -> Serve {
        let mut child = devx_command()
            .env("DATABASE_URL", db.url())
            .env("DEVX_ADDR", "127.0.0.1:0")
            .env("DEVX_LOG_FORMAT", "json")
            .env("DEVX_SHUTDOWN_DRAIN", "0")
            .env("DEVX_LOGIN_MAX_FAILURES", MAX_FAILURES.to_string())
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("devx serve runs");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let addr = serde_json::from_str::<Value>(&line).ok().and_then(|v| {
                        v["message"].as_str().filter(|m| m.contains("devx listening on"))?;
                        v["addr"].as_str().map(str::to_string)
                    });
                    if let Some(addr) = addr {
                        let _ = tx.send(addr);
                    }
                    log.lock().unwrap().push(line);
                }
            });
        }
        let Ok(addr) = rx.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            panic!("devx serve said nowhere where it listens:\n{}", log.lock().unwrap().join("\n"));
        };
        Serve { child, addr: addr.parse().unwrap(), log }
    }

    /// `hostname:pid`, as the shared schedule names this process.
    fn process_suffix(&self) -> String {
        format!(":{}", self.child.id())
    }

    fn dump(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The three processes and a client that spreads requests over them.
struct Fleet {
    serves: Vec<Serve>,
    http: reqwest::Client,
    next: AtomicUsize,
}

impl Fleet {
    fn url(&self, at: usize, path: &str) -> String {
        format!("http://{}{path}", self.serves[at].addr)
    }

    /// The next process, round robin.
    fn pick(&self) -> usize {
        self.next.fetch_add(1, Ordering::Relaxed) % self.serves.len()
    }

    /// A JSON request to process `at`: its status and JSON body (`Null` when empty).
    async fn call_at(
        &self,
        at: usize,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, self.url(at, path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap_or_else(|e| panic!("process {at}: {e}"));
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) })
    }

    /// A JSON request to the next process.
    async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<&Value>) -> (StatusCode, Value) {
        self.call_at(self.pick(), method, path, token, body, None).await
    }

    async fn login(&self, at: usize, email: &str, password: &str) -> (StatusCode, Value) {
        let body = json!({"email": email, "password": password});
        self.call_at(at, Method::POST, "/api/auth/login", None, Some(&body), None).await
    }

    /// Registers `email` on the next process; returns its session token.
    async fn register(&self, email: &str) -> String {
        let body = json!({"email": email, "password": PASSWORD, "name": "Fleet"});
        let (status, answer) = self.call(Method::POST, "/api/auth/register", None, Some(&body)).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        answer["token"].as_str().unwrap().to_string()
    }
}

/// Starts three processes at once on `db` and waits until each answers
/// `/readyz` 200 (polled, with a deadline).
async fn fleet(db: &TestDb) -> Fleet {
    let serves: Vec<Serve> = (0..3).map(|_| Serve::start(db)).collect();
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    for serve in &serves {
        loop {
            let ready = http.get(format!("http://{}/readyz", serve.addr)).send().await;
            if ready.is_ok_and(|r| r.status() == StatusCode::OK) {
                break;
            }
            assert!(Instant::now() < deadline, "not ready within 60 s:\n{}", serve.dump());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Fleet { serves, http, next: AtomicUsize::new(0) }
}

/// What `GET /api/admin/jobs` said about one job at one moment.
#[derive(Debug, Clone)]
struct Seen {
    runs: i64,
    started: Option<DateTime<Utc>>,
    process: Option<String>,
}

async fn jobs(fleet: &Fleet, admin: &str) -> BTreeMap<String, (Value, Seen)> {
    let (status, list) = fleet.call(Method::GET, "/api/admin/jobs", Some(admin), None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|job| {
            let seen = Seen {
                runs: job["runs"].as_i64().unwrap(),
                started: job["last_started_at"].as_str().map(|t| t.parse().unwrap()),
                process: job["last_process"].as_str().map(str::to_string),
            };
            (job["job"].as_str().unwrap().to_string(), (job.clone(), seen))
        })
        .collect()
}

#[tokio::test]
async fn three_serve_processes_on_one_database_behave_as_one() {
    let db = TestDb::migrated().await;
    let client = db.client().await;
    client
        .batch_execute(&format!(
            "INSERT INTO devx.system_config (key, value) VALUES
                 ('retention.interval', '\"{RETENTION_EVERY} seconds\"'),
                 ('agents.reaper_interval_seconds', '{REAPER_EVERY}'),
                 ('agents.max_concurrent_executions', '1000')
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
        ))
        .await
        .unwrap();
    let fleet = fleet(&db).await;
    let (a, b, c) = (0, 1, 2);

    // A session made on A works on B and C; signed out on C, A refuses it at once.
    let body = json!({"email": "ada@example.com", "password": PASSWORD, "name": "Ada"});
    let (status, ada) = fleet.call_at(a, Method::POST, "/api/auth/register", None, Some(&body), None).await;
    assert_eq!(status, StatusCode::CREATED, "{ada}");
    let token = ada["token"].as_str().unwrap().to_string();
    for at in [b, c] {
        let (status, me) = fleet.call_at(at, Method::GET, "/api/auth/me", Some(&token), None, None).await;
        assert_eq!((status, me["email"].as_str()), (StatusCode::OK, Some("ada@example.com")), "process {at}");
    }
    let (status, _) = fleet.call_at(c, Method::POST, "/api/auth/logout", Some(&token), None, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for at in [a, b, c] {
        let (status, _) = fleet.call_at(at, Method::GET, "/api/auth/me", Some(&token), None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "process {at} still takes a signed-out token");
    }

    // Failed sign-ins spread over the three lock the account after
    // MAX_FAILURES in all, as with one process (no process saw that many).
    for n in 0..MAX_FAILURES {
        let (status, _) = fleet.login(n % 3, "ada@example.com", "wrong password").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "failure {n}");
    }
    for at in [a, b, c] {
        let (status, answer) = fleet.login(at, "ada@example.com", PASSWORD).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "process {at} lets a locked account in: {answer}");
    }

    let bob = fleet.register("bob@example.com").await;
    let bob_id: uuid::Uuid = {
        let (_, me) = fleet.call(Method::GET, "/api/auth/me", Some(&bob), None).await;
        me["id"].as_str().unwrap().parse().unwrap()
    };
    let project: uuid::Uuid = client
        .query_one("INSERT INTO devx.projects (owner_id, name) VALUES ($1, 'fleet') RETURNING id", &[&bob_id])
        .await
        .unwrap()
        .get(0);

    // The same Idempotency-Key to A then B: one task, the same answer.
    let body = json!({"project_id": project, "title": "keyed"});
    let first = fleet.call_at(a, Method::POST, "/api/tasks", Some(&bob), Some(&body), Some("once")).await;
    let second = fleet.call_at(b, Method::POST, "/api/tasks", Some(&bob), Some(&body), Some("once")).await;
    assert_eq!(first.0, StatusCode::CREATED, "{}", first.1);
    assert_eq!(second, first, "B replays A's answer");
    // Sent to all three at once: one task; every 201 is that task.
    let body = json!({"project_id": project, "title": "burst"});
    let sends = (0..9).map(|n| {
        let fleet = &fleet;
        let body = &body;
        let token = &bob;
        async move { fleet.call_at(n % 3, Method::POST, "/api/tasks", Some(token), Some(body), Some("burst")).await }
    });
    let mut created = BTreeSet::new();
    for (status, answer) in futures_util::future::join_all(sends).await {
        match status {
            StatusCode::CREATED => {
                created.insert(answer["id"].as_str().unwrap().to_string());
            }
            StatusCode::CONFLICT => assert_eq!(answer["type"], "/problems/request-in-progress"),
            other => panic!("a duplicate got {other}: {answer}"),
        }
    }
    assert_eq!(created.len(), 1, "{created:?}");
    let keyed = |title: &str| format!("SELECT count(*) FROM devx.tasks WHERE title = '{title}'");
    assert_eq!((count(&client, &keyed("keyed")).await, count(&client, &keyed("burst")).await), (1, 1));

    // Thirty tasks claimed by nine claimers, three per process: each once.
    client
        .execute(
            "INSERT INTO devx.tasks (project_id, title) SELECT $1, 'claim ' || n FROM generate_series(1, 30) n",
            &[&project],
        )
        .await
        .unwrap();
    let claimers = (0..9).map(|n| {
        let fleet = &fleet;
        let token = &bob;
        async move {
            let mut got = Vec::new();
            let body = json!({"agent_type": "claude-code"});
            loop {
                let (status, claim) =
                    fleet.call_at(n % 3, Method::POST, "/api/tasks/claim", Some(token), Some(&body), None).await;
                match status {
                    StatusCode::OK => got.push(claim["task"]["id"].as_str().unwrap().to_string()),
                    StatusCode::NO_CONTENT => break got,
                    other => panic!("claim through process {} answered {other}: {claim}", n % 3),
                }
            }
        }
    });
    let claimed: Vec<String> = futures_util::future::join_all(claimers).await.into_iter().flatten().collect();
    let distinct: BTreeSet<&String> = claimed.iter().collect();
    // The two keyed tasks are pending too: 32 in all.
    assert_eq!((claimed.len(), distinct.len()), (32, 32), "each task claimed exactly once");
    assert_eq!(count(&client, "SELECT count(*) FROM devx.task_executions").await, 32, "one execution per claim");

    // A log stream opened on A receives a line appended through B.
    let execution: String = client
        .query_one(
            "SELECT x.id::text FROM devx.task_executions x JOIN devx.tasks t ON t.id = x.task_id
              WHERE t.title = 'keyed'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let logs = format!("/api/executions/{execution}/logs");
    let append = async |at: usize, message: &str| {
        let body = json!({"lines": [{"message": message}]});
        let (status, answer) = fleet.call_at(at, Method::POST, &logs, Some(&bob), Some(&body), None).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
    };
    append(a, "before the stream").await;
    let mut stream = fleet.http.get(fleet.url(a, &format!("{logs}/stream"))).bearer_auth(&bob).send().await.unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let mut text = String::new();
    let mut read_until = async |needle: &str, within: Duration| {
        let deadline = tokio::time::Instant::now() + within;
        while !text.contains(needle) {
            let chunk = tokio::time::timeout_at(deadline, stream.chunk())
                .await
                .unwrap_or_else(|_| panic!("no {needle:?} on the stream within {within:?}: {text}"))
                .unwrap()
                .expect("the stream goes on");
            text.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    };
    read_until("before the stream", Duration::from_secs(10)).await;
    let appended = Instant::now();
    append(b, "appended through B").await;
    // Without a notification the stream looks again only every 5 s.
    read_until("appended through B", Duration::from_secs(4)).await;
    let latency = appended.elapsed();
    drop(stream);
    assert!(latency < Duration::from_secs(4), "the line came by notification, not by polling: {latency:?}");

    // Each periodic job runs once per period across the three. Watch the
    // shared schedule through every process for a while.
    let admin = fleet.register("root@example.com").await;
    client.execute("UPDATE devx.users SET role = 'admin' WHERE email = 'root@example.com'", &[]).await.unwrap();
    let watch = Duration::from_secs(9);
    let watched = Instant::now();
    let mut history: BTreeMap<String, Vec<Seen>> = BTreeMap::new();
    let mut last = BTreeMap::new();
    while watched.elapsed() < watch {
        for (name, (job, seen)) in jobs(&fleet, &admin).await {
            last.insert(name.clone(), job);
            history.entry(name).or_default().push(seen);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = watched.elapsed().as_secs_f64();
    let ours: Vec<String> = fleet.serves.iter().map(Serve::process_suffix).collect();
    let dumps = || fleet.serves.iter().map(Serve::dump).collect::<Vec<_>>().join("\n----\n");
    for (name, every) in [("retention", RETENTION_EVERY), ("agents.reaper", REAPER_EVERY)] {
        let seen = &history[name];
        let job = &last[name];
        assert_eq!(job["enabled"], true, "{job}");
        assert_eq!(job["interval_seconds"].as_f64(), Some(every), "{job}");
        let (first, end) = (seen.first().unwrap(), seen.last().unwrap());
        // Over `elapsed` seconds, about elapsed / every periods: k ± 1, not
        // ~3k (half a period more of slack below: each start may come a
        // little after its period began, and the lag adds up).
        let periods = elapsed / every;
        let runs = (end.runs - first.runs) as f64;
        assert!(
            (periods - 1.5..=periods + 1.0).contains(&runs),
            "{name}: {runs} runs in {elapsed:.1} s at one per {every} s ({periods:.1} periods): {job}\n{}",
            dumps()
        );
        eprintln!("{name}: {runs} runs in {elapsed:.1} s at one per {every} s ({periods:.1} periods)");
        // No two starts less than the interval apart: between any two
        // observations, k more runs took at least k intervals.
        for pair in seen.windows(2) {
            let (before, after) = (&pair[0], &pair[1]);
            assert!(after.runs >= before.runs, "{name}: runs went back: {seen:?}");
            let k = after.runs - before.runs;
            if k == 0 || before.started.is_none() {
                continue;
            }
            let apart = (after.started.unwrap() - before.started.unwrap()).num_microseconds().unwrap() as f64 / 1e6;
            assert!(apart >= k as f64 * every - 0.001, "{name}: {k} starts within {apart} s: {before:?} -> {after:?}");
        }
        // Every run was started by one of the three processes, named hostname:pid.
        let by: BTreeSet<&str> = seen.iter().filter_map(|s| s.process.as_deref()).collect();
        for process in &by {
            assert!(
                ours.iter().any(|pid| process.ends_with(pid.as_str())),
                "{name} run by {process}, not ours {ours:?}"
            );
        }
        // A run fails only by meeting a run that outlasted its interval.
        assert!(job["last_error"].as_str().is_none_or(|e| e.contains("lock")), "{job}");
    }
    let stored: i64 = client.query_one("SELECT count(*) FROM devx.periodic_jobs", &[]).await.unwrap().get(0);
    assert_eq!(stored, 2, "one row per job, whatever the number of processes");
    drop(fleet);
}

/// Many claimers of one period at once: one runs it, the others are told
/// to wait for the next; finishing is recorded for the run that finished,
/// never over a later one.
#[tokio::test]
async fn one_claim_per_period_whatever_the_number_of_claimers() {
    use devx::jobs::{Turn, claim, finish, process_name};
    let db = TestDb::migrated().await;
    let pool = crate::app::pool(&db).await;
    let client = db.client().await;
    let every = Duration::from_secs(3600);
    let turns = futures_util::future::join_all((0..12).map(|_| claim(&pool, "test.job", every))).await;
    let turns: Vec<Turn> = turns.into_iter().map(Result::unwrap).collect();
    let runs: Vec<i64> = turns.iter().filter_map(|t| if let Turn::Run(n) = t { Some(*n) } else { None }).collect();
    assert_eq!(runs, [1], "one claimer runs the period: {turns:?}");
    for turn in &turns {
        if let Turn::Wait(wait) = turn {
            assert!((3590..=3600).contains(&wait.as_secs()), "the others wait for the next period: {wait:?}");
        }
    }
    let row = client
        .query_one(
            "SELECT runs, last_process, last_finished_at IS NULL AS running, interval_seconds
               FROM devx.periodic_jobs WHERE job = 'test.job'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>("runs"), 1);
    assert_eq!(row.get::<_, String>("last_process"), process_name());
    assert!(process_name().ends_with(&format!(":{}", std::process::id())), "hostname:pid");
    assert!(row.get::<_, bool>("running"));
    assert_eq!(row.get::<_, f64>("interval_seconds"), 3600.0);

    finish(&pool, "test.job", 1, None).await;
    assert!(matches!(claim(&pool, "test.job", every).await.unwrap(), Turn::Wait(_)), "still this period");
    // The period passes (its start an hour back): the next claim is run 2;
    // run 1 finishing late changes nothing of run 2's.
    client
        .execute("UPDATE devx.periodic_jobs SET last_started_at = last_started_at - interval '1 hour'", &[])
        .await
        .unwrap();
    assert_eq!(claim(&pool, "test.job", every).await.unwrap(), Turn::Run(2));
    finish(&pool, "test.job", 1, Some("late")).await;
    let (running, error): (bool, Option<String>) = {
        let row = client
            .query_one(
                "SELECT last_finished_at IS NULL, last_error FROM devx.periodic_jobs WHERE job = 'test.job'",
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!((running, error), (true, None));
    finish(&pool, "test.job", 2, Some("the lock was taken")).await;
    let error: Option<String> =
        client.query_one("SELECT last_error FROM devx.periodic_jobs WHERE job = 'test.job'", &[]).await.unwrap().get(0);
    assert_eq!(error.as_deref(), Some("the lock was taken"));
    pool.close();
}

/// `GET /api/admin/jobs` lists the jobs `serve` runs before any ran, with
/// their intervals from the settings, and writes nothing.
#[tokio::test]
async fn the_jobs_list_shows_every_job_and_writes_nothing() {
    let app = crate::app::TestApp::spawn().await;
    let admin = app.admin("root@example.com").await;
    let (status, list) = app.get("/api/admin/jobs", Some(&admin.token)).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let jobs = list["jobs"].as_array().unwrap();
    let names: Vec<&str> = jobs.iter().map(|j| j["job"].as_str().unwrap()).collect();
    assert_eq!(names, ["agents.reaper", "retention"]);
    assert_eq!(
        (jobs[0]["interval_seconds"].as_f64(), jobs[1]["interval_seconds"].as_f64()),
        (Some(10.0), Some(3600.0))
    );
    for job in jobs {
        assert_eq!((job["enabled"].clone(), job["runs"].clone()), (json!(true), json!(0)), "{job}");
        assert!(job["last_started_at"].is_null() && job["next_due_at"].is_null(), "{job}");
    }
    let client = app.db.client().await;
    assert_eq!(count(&client, "SELECT count(*) FROM devx.periodic_jobs").await, 0, "a GET never writes");

    // Retention switched off; a run recorded by some process.
    client.execute("UPDATE devx.system_config SET value = 'false' WHERE key = 'retention.enabled'", &[]).await.unwrap();
    client
        .execute(
            "INSERT INTO devx.periodic_jobs (job, interval_seconds, runs, last_started_at, last_process)
             VALUES ('agents.reaper', 10, 7, '2026-01-01T00:00:00Z', 'web-1:42')",
            &[],
        )
        .await
        .unwrap();
    let (_, list) = app.get("/api/admin/jobs", Some(&admin.token)).await;
    let (reaper, retention) = (&list["jobs"][0], &list["jobs"][1]);
    assert_eq!((reaper["runs"].clone(), reaper["last_process"].clone()), (json!(7), json!("web-1:42")));
    assert_eq!(reaper["next_due_at"], "2026-01-01T00:00:10Z");
    assert_eq!((retention["enabled"].clone(), retention["interval_seconds"].clone()), (json!(false), Value::Null));
}
