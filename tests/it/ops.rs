//! The operator's view, through the real binary: what devx says when the
//! database refuses it or is not there yet, the start-up order of `serve`
//! (bind, wait, migrate, serve), `.env` and variable-name checks, exit codes,
//! the migration commands' output and the logs.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{PrivateServer, private_data_dir};
use crate::harness::{TestDb, devx_command, server_config};

/// What a finished command said.
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}\n--- stdout\n{}--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}

fn run(cmd: &mut Command) -> Out {
    run_with_stdin(cmd, None)
}

/// Runs `cmd` with `stdin` as its standard input (an empty one when `None`).
fn run_with_stdin(cmd: &mut Command, stdin: Option<&str>) -> Out {
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("devx runs");
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `devx` with `DATABASE_URL` set.
fn devx_on(url: &str) -> Command {
    let mut cmd = devx_command();
    cmd.env("DATABASE_URL", url);
    cmd
}

/// Nothing listens on port 1 (privileged, unused).
const NOWHERE: &str = "host=127.0.0.1 port=1 user=postgres dbname=devx";

/// The shared test server as a key/value URL with `user` and `dbname`.
fn shared(user: &str, dbname: &str) -> String {
    use tokio_postgres::config::Host;
    let server = server_config();
    let host = match server.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "127.0.0.1".into(),
    };
    let port = server.get_ports().first().copied().unwrap_or(5432);
    format!("host={host} port={port} user={user} dbname={dbname}")
}

/// `devx serve` as a child process with JSON logs, on a free port; its log
/// lines arrive as they are written.
struct Serve {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    addr: SocketAddr,
    http: reqwest::Client,
}

impl Serve {
    /// Starts `cmd` (a `devx ... serve`) and waits for the line that says
    /// where it listens.
    fn start(cmd: &mut Command) -> Serve {
        let mut child = cmd
            .env("DEVX_LOG_FORMAT", "json")
            .env("DEVX_SHUTDOWN_DRAIN", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("devx serve runs");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut serve =
            Serve { child, lines, seen: Vec::new(), addr: "0.0.0.0:0".parse().unwrap(), http: reqwest::Client::new() };
        let listening = serve.wait_for("devx listening on", Duration::from_secs(30));
        let line: Value = serde_json::from_str(&listening).unwrap();
        serve.addr = line["addr"].as_str().unwrap().parse().unwrap();
        serve
    }

    /// Waits for a log line whose message contains `text`; returns it.
    fn wait_for(&mut self, text: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    let message = serde_json::from_str::<Value>(&line)
                        .ok()
                        .and_then(|v| v["message"].as_str().map(str::to_string))
                        .unwrap_or_default();
                    if message.contains(text) {
                        return line;
                    }
                }
                Err(_) => panic!("no log line with {text:?} within {within:?}:\n{}", self.seen.join("\n")),
            }
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut request = self.http.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// SIGTERM, then every line it wrote and how it ended.
    fn stop(mut self) -> (ExitStatus, Vec<String>) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), nix::sys::signal::SIGTERM).unwrap();
        let status = self.child.wait().unwrap();
        self.seen.extend(self.lines.iter());
        (status, std::mem::take(&mut self.seen))
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// 1. Errors keep PostgreSQL's reason.

#[tokio::test]
async fn a_refused_connection_says_why_once_and_what_to_do() {
    let role = shared("devx_no_such_role", "postgres");
    let out = run(devx_on(&role).args(["db", "health"]));
    assert_eq!(out.code, 3, "{out}");
    assert!(out.stdout.contains(r#"FATAL: role "devx_no_such_role" does not exist (SQLSTATE 28000)"#), "{out}");
    assert!(out.stdout.contains("Set DB_USER (or the user in DATABASE_URL)"), "{out}");
    assert!(!out.stdout.contains("db error"), "{out}");

    let database = shared("postgres", "devx_no_such_database");
    let out = run(devx_on(&database).args(["db", "health"]));
    assert_eq!(out.code, 3, "{out}");
    assert!(out.stdout.contains(r#"database "devx_no_such_database" does not exist (SQLSTATE 3D000)"#), "{out}");
    assert!(out.stdout.contains("createdb devx_no_such_database") && out.stdout.contains("devx db create"), "{out}");

    // `migrate status` says the reason once, not once per layer.
    let out = run(devx_on(&database).args(["migrate", "status"]));
    assert_eq!(out.code, 1, "{out}");
    assert_eq!(out.stderr.matches("does not exist").count(), 1, "{out}");
    assert!(!out.stderr.contains("db error"), "{out}");
    let out = run(devx_on(NOWHERE).args(["migrate", "status"]));
    assert_eq!(out.code, 1, "{out}");
    assert_eq!(out.stderr.matches("Connection refused").count(), 1, "{out}");
    assert!(out.stderr.contains("is PostgreSQL running"), "{out}");

    // `devx db create` makes the missing database, and then it is healthy.
    let name = format!("devx_t_{}_create", std::process::id());
    let admin = crate::harness::admin_client().await;
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name}")).await.unwrap();
    let url = shared("postgres", &name);
    let out = run(devx_on(&url).args(["db", "create"]));
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains(&format!("created database {name}")), "{out}");
    assert!(run(devx_on(&url).args(["db", "create"])).stdout.contains("exists already"));
    assert_eq!(run(devx_on(&url).args(["db", "health"])).code, 0);
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await.unwrap();
}

/// A server that asks for passwords: the private server with its
/// `pg_hba.conf` rewritten (the superuser keeps trust, for the test).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_or_missing_password_is_named_with_the_variable_to_set() {
    let Some(server) = PrivateServer::start("devx-ops-").await else {
        eprintln!("skipped: no PostgreSQL server binaries on this machine");
        return;
    };
    let client = server.client().await;
    client.batch_execute("CREATE ROLE devx_pw LOGIN PASSWORD 'the-right-one'").await.unwrap();
    let hba: String = client.query_one("SHOW hba_file", &[]).await.unwrap().get(0);
    std::fs::write(&hba, "local all postgres trust\nlocal all all scram-sha-256\n").unwrap();
    client.batch_execute("SELECT pg_reload_conf()").await.unwrap();
    let socket = server.dir.path().join("postgres");
    let target = |password: Option<&str>| {
        let password = password.map(|p| format!(" password={p}")).unwrap_or_default();
        format!("host={} port=5432 user=devx_pw dbname=postgres{password}", socket.display())
    };
    // The reload is asynchronous: the configuration applies once a
    // password-less connection is refused.
    let mut applied = false;
    for _ in 0..500 {
        let mut cfg: tokio_postgres::Config = target(None).parse().unwrap();
        cfg.connect_timeout(Duration::from_secs(2));
        if cfg.connect(tokio_postgres::NoTls).await.is_err() {
            applied = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(applied, "the server still lets devx_pw in without a password");

    let out = run(devx_on(&target(Some("not-the-password"))).args(["db", "health"]));
    assert_eq!(out.code, 3, "{out}");
    assert!(out.stdout.contains(r#"password authentication failed for user "devx_pw" (SQLSTATE 28P01)"#), "{out}");
    assert!(out.stdout.contains("set DB_PASSWORD (or the password in DATABASE_URL)"), "{out}");
    assert!(!out.stdout.contains("not-the-password"), "{out}");

    let out = run(devx_on(&target(None)).args(["db", "health"]));
    assert_eq!(out.code, 3, "{out}");
    assert!(out.stdout.contains("the server asks for a password, and none was given"), "{out}");
    assert!(out.stdout.contains("Set DB_PASSWORD"), "{out}");
    assert!(!out.stdout.contains("invalid configuration"), "{out}");

    assert_eq!(run(devx_on(&target(Some("the-right-one"))).args(["db", "health"])).code, 0);
    drop(client);
    server.stop().await;
}

#[tokio::test]
async fn a_certificate_that_does_not_verify_under_verify_full_is_explained() {
    let admin = crate::harness::admin_client().await;
    let ssl: String = admin.query_one("SHOW ssl", &[]).await.unwrap().get(0);
    if ssl != "on" {
        eprintln!("skipped: the test server does not offer TLS");
        return;
    }
    let out = run(devx_on(&shared("postgres", "postgres")).env("DB_SSL_MODE", "verify-full").args(["db", "health"]));
    assert_eq!(out.code, 3, "{out}");
    assert!(out.stdout.contains("invalid peer certificate"), "{out}");
    assert!(out.stdout.contains("DB_SSL_MODE=require"), "{out}");
}

/// A 500's log line carries PostgreSQL's words; the client's answer does not.
#[tokio::test]
async fn a_500_is_logged_with_the_database_reason_and_answered_without_it() {
    let db = TestDb::migrated().await;
    let mut serve = Serve::start(devx_on(&db.url()).arg("serve"));
    serve.wait_for("devx ready", Duration::from_secs(60));
    let response = serve
        .http
        .post(serve.url("/api/auth/register"))
        .json(&json!({"email": "ops@example.com", "password": "correct horse battery", "name": "Ops"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let token = response.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_string();
    db.client().await.batch_execute("ALTER TABLE devx.projects RENAME TO projects_gone").await.unwrap();

    let (status, body) = serve.get("/api/projects", Some(&token)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert!(!body.to_string().contains("does not exist") && !body.to_string().contains("projects"), "{body}");

    let (_, lines) = serve.stop();
    let logged = lines.iter().find(|l| l.contains(r#""level":"ERROR""#)).unwrap_or_else(|| panic!("{lines:#?}"));
    assert!(logged.contains(r#"relation \"devx.projects\" does not exist (SQLSTATE 42P01)"#), "{logged}");
    assert!(!logged.contains("db error"), "{logged}");
}

// 2. Start-up order and waiting.

#[test]
fn serve_binds_before_it_touches_the_database() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let started = Instant::now();
    let out = run(devx_on(NOWHERE).env("DEVX_ADDR", addr.to_string()).env("DEVX_DB_WAIT", "5m").arg("serve"));
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains(&format!("cannot listen on {addr} (DEVX_ADDR)")), "{out}");
    assert!(out.stderr.to_lowercase().contains("address already in use"), "{out}");
    assert!(!out.stderr.contains("database"), "the database was not touched: {out}");
    assert!(started.elapsed() < Duration::from_secs(60), "it failed at once, not after DEVX_DB_WAIT");
}

#[test]
fn serve_waits_for_an_unreachable_database_only_as_long_as_told() {
    // 0: fail at once, saying why.
    let out = run(devx_on(NOWHERE).env("DEVX_ADDR", "127.0.0.1:0").env("DEVX_DB_WAIT", "0").arg("serve"));
    assert_eq!(out.code, 1, "{out}");
    assert!(!out.stderr.contains("does not answer yet"), "{out}");
    assert!(out.stderr.contains("error: cannot connect to postgres://postgres@127.0.0.1:1/devx"), "{out}");
    assert_eq!(out.stderr.matches("Connection refused").count(), 1, "{out}");

    // A short wait: each try is logged with the reason, then it gives up.
    let out = run(devx_on(NOWHERE).env("DEVX_ADDR", "127.0.0.1:0").env("DEVX_DB_WAIT", "1s").arg("serve"));
    assert_eq!(out.code, 1, "{out}");
    let tries = out.stderr.lines().filter(|l| l.contains("does not answer yet")).collect::<Vec<_>>();
    assert!(tries.len() >= 2, "{out}");
    assert!(tries.iter().all(|l| l.contains("Connection refused") && l.contains("attempt=")), "{out}");
    assert!(out.stderr.contains("raise DEVX_DB_WAIT to wait longer"), "{out}");

    // A server that answers and refuses is not waited for.
    let started = Instant::now();
    let out = run(devx_on(&shared("devx_no_such_role", "postgres"))
        .env("DEVX_ADDR", "127.0.0.1:0")
        .env("DEVX_DB_WAIT", "5m")
        .arg("serve"));
    assert_eq!(out.code, 1, "{out}");
    assert!(!out.stderr.contains("does not answer yet") && out.stderr.contains("SQLSTATE 28000"), "{out}");
    assert!(started.elapsed() < Duration::from_secs(60));
}

/// `serve` pointed at a server that is not up yet: it answers `/livez`,
/// says why `/readyz` is 503, and serves once the server comes up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_waits_for_a_database_that_comes_up_later() {
    if devx::embedded::find_binaries().is_none() {
        eprintln!("skipped: no PostgreSQL server binaries on this machine");
        return;
    }
    let dir = private_data_dir("devx-ops-");
    let url = format!("host={} port=5432 user=postgres dbname=postgres", dir.path().join("postgres").display());
    let mut serve = Serve::start(devx_on(&url).env("DEVX_ADDR", "127.0.0.1:0").env("DEVX_DB_WAIT", "2m").arg("serve"));
    serve.wait_for("does not answer yet", Duration::from_secs(30));

    let (status, body) = serve.get("/livez", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = serve.get("/readyz", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let reason = body["reason"].as_str().unwrap();
    assert!(reason.starts_with("starting: waiting for the database") && reason.contains("No such file"), "{body}");
    let (status, body) = serve.get("/api/templates", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["type"], "/problems/starting", "{body}");

    let server = PrivateServer::start_in(dir).await.expect("the private server starts");
    serve.wait_for("devx ready", Duration::from_secs(120));
    let (status, body) = serve.get("/readyz", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = serve.get("/api/templates", None).await;
    assert_eq!(status, StatusCode::OK);
    let (exit, lines) = serve.stop();
    assert!(exit.success(), "{exit}: {lines:#?}");
    server.stop().await;
}

/// The embedded default on a machine whose server refuses devx: one line
/// says where, as whom and why, and `config check` says what would be used.
#[test]
fn a_local_server_that_refuses_devx_is_named_before_the_private_one_is_used() {
    if devx::embedded::find_binaries().is_none() {
        eprintln!("skipped: no PostgreSQL server binaries on this machine");
        return;
    }
    let dir = private_data_dir("devx-ops-");
    let refusing = |cmd: &mut Command| {
        let server = server_config();
        let port = server.get_ports().first().copied().unwrap_or(5432);
        cmd.env("DEVX_DATA_DIR", dir.path()).env("PGHOST", "127.0.0.1").env("PGPORT", port.to_string());
        cmd.env("PGUSER", "devx_no_such_role");
        run(cmd)
    };
    let refusal = r#"as devx_no_such_role: role "devx_no_such_role" does not exist"#;

    let out = refusing(devx_command().args(["config", "check"]));
    assert_eq!(out.code, 0, "{out}");
    let line = out.stdout.lines().find(|l| l.starts_with("database:")).unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains(&format!("devx's private server in {}", dir.path().join("postgres").display())), "{line}");
    assert!(line.contains("refused devx") && line.contains(refusal), "{line}");
    assert!(!dir.path().join("postgres").exists(), "config check starts nothing");

    let out = refusing(devx_command().args(["db", "health"]));
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("private server"), "{out}");
    let said: Vec<&str> = out.stderr.lines().filter(|l| l.contains("refused devx")).collect();
    assert_eq!(said.len(), 1, "{out}");
    assert!(said[0].contains(refusal) && said[0].contains("using devx's private PostgreSQL server"), "{out}");
}

// 3. Configuration file and variables.

#[test]
fn a_malformed_env_line_is_reported_with_its_number_and_fix() {
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join(".env");
    std::fs::write(&env, "DEVX_ADDR=127.0.0.1:9999\nthis line is wrong\nDB_NAME=my app\nDEVX_LOG=warn\n").unwrap();
    let out = run(devx_command().current_dir(dir.path()).args(["config", "check"]));
    assert_eq!(out.code, 2, "{out}");
    assert!(!out.stdout.contains("configuration is valid"), "{out}");
    assert!(out.stderr.contains(&format!("{} line 2: is neither NAME=value", env.display())), "{out}");
    assert!(out.stderr.contains(&format!("{} line 3: the value of DB_NAME has spaces", env.display())), "{out}");
    assert!(out.stderr.contains(r#"DB_NAME="my app""#), "{out}");

    // Fixed, every line is read (the ones after the bad line too).
    std::fs::write(&env, "DEVX_ADDR=127.0.0.1:9999\n# a comment\nDB_NAME=\"my app\"\nDEVX_LOG=warn\n").unwrap();
    let out = run(devx_command().current_dir(dir.path()).args(["config", "check"]));
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("127.0.0.1:9999") && out.stdout.contains("/my app"), "{out}");
    assert!(out.stdout.lines().any(|l| l.starts_with("DEVX_LOG") && l.ends_with("warn")), "{out}");
}

#[test]
fn misspelt_and_overridden_variables_are_warnings_with_the_fix() {
    let out = run(devx_command()
        .env("DB_PASWORD", "x")
        .env("DEVX_ADRR", "0.0.0.0:8080")
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1/devx")
        .env("DB_HOST", "elsewhere")
        .args(["config", "check"]));
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("DB_PASWORD is not a devx variable and is ignored; did you mean DB_PASSWORD?"));
    assert!(out.stdout.contains("DEVX_ADRR is not a devx variable and is ignored; did you mean DEVX_ADDR?"));
    assert!(out.stdout.contains("DATABASE_URL and DB_HOST are both set: DATABASE_URL wins; DB_HOST is ignored"));
    assert!(out.stdout.contains("configuration is valid, with 3 warning(s)"), "{out}");

    // Every other command logs them.
    let out = run(devx_on(NOWHERE).env("DB_PASWORD", "x").args(["migrate", "status"]));
    assert!(out.stderr.contains("WARN") && out.stderr.contains("did you mean DB_PASSWORD?"), "{out}");
}

// 4. Exit codes and output.

#[tokio::test]
async fn exit_codes_are_the_ones_the_readme_promises() {
    let db = TestDb::migrated().await;
    let empty = TestDb::empty().await;
    let dir = tempfile::tempdir().unwrap();
    // A command: `DATABASE_URL` (when given), extra variables, arguments.
    let devx = |url: Option<&str>, vars: &[(&str, &str)], args: &[&str]| {
        let mut cmd = devx_command();
        if let Some(url) = url {
            cmd.env("DATABASE_URL", url);
        }
        cmd.envs(vars.iter().copied()).args(args);
        cmd
    };
    let (db_url, empty_url) = (db.url(), empty.url());
    let (on, on_empty) = (Some(db_url.as_str()), Some(empty_url.as_str()));
    let password = Some("correct horse battery\n");
    let unknown = "20990101000000";
    let taken = &["users", "create", "--email", "dup@example.com"];
    assert_eq!(run_with_stdin(&mut devx(on, &[], taken), password).code, 0);
    let dir = dir.path().display().to_string();

    let cases: Vec<(u8, &str, Command, Option<&str>)> = vec![
        (0, "config check", devx(None, &[], &["config", "check"]), None),
        (2, "an unknown subcommand", devx(on, &[], &["migrate", "frobnicate"]), None),
        (2, "a bad variable", devx(None, &[("DB_PORT", "abc")], &["config", "check"]), None),
        (2, "users create --email notanemail", devx(on, &[], &["users", "create", "--email", "notanemail"]), password),
        (2, "users create, empty stdin", devx(on, &[], &["users", "create", "--email", "a@example.com"]), None),
        (
            2,
            "users create, short password",
            devx(on, &[], &["users", "create", "--email", "a@example.com"]),
            Some("x\n"),
        ),
        (2, "migrate stamp <unknown id>", devx(on_empty, &[], &["migrate", "stamp", unknown]), None),
        (2, "migrate up --to <unknown id>", devx(on_empty, &[], &["migrate", "up", "--to", unknown]), None),
        (
            2,
            "migrate up --dry-run --to <unknown id>",
            devx(on_empty, &[], &["migrate", "up", "--dry-run", "--to", unknown]),
            None,
        ),
        (2, "migrate down --to <not applied>", devx(on, &[], &["migrate", "down", "--to", unknown]), None),
        (
            2,
            "migrate --dir <missing>",
            devx(on, &[], &["migrate", "--dir", "/nonexistent/devx-migrations", "status"]),
            None,
        ),
        (2, "migrate create <bad name>", devx(None, &[], &["migrate", "create", "!!!", "--dir", &dir]), None),
        (2, "db insights --long-query soon", devx(on, &[], &["db", "insights", "--long-query", "soon"]), None),
        (1, "migrate status, server down", devx(Some(NOWHERE), &[], &["migrate", "status"]), None),
        (1, "users create, email taken", devx(on, &[], taken), password),
        (3, "migrate check, pending", devx(on_empty, &[], &["migrate", "check"]), None),
        (3, "db health, server down", devx(Some(NOWHERE), &[], &["db", "health"]), None),
        (0, "db check, in order", devx(on, &[], &["db", "check"]), None),
    ];
    let mut wrong = Vec::new();
    for (expected, case, mut cmd, stdin) in cases {
        let out = run_with_stdin(&mut cmd, stdin);
        if out.code != i32::from(expected) {
            wrong.push(format!("{case}: expected {expected}, got {out}"));
        }
        if expected == 2 && case.contains("empty stdin") {
            assert!(out.stderr.contains("no password was given"), "{out}");
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

#[tokio::test]
async fn migrate_commands_say_what_is_true() {
    let db = TestDb::migrated().await;
    let migrate = |args: &[&str]| run(devx_on(&db.url()).arg("migrate").args(args));
    let set = devx::migrate::MigrationSet::embedded().unwrap();
    let n = set.len();

    let out = migrate(&["status", "--json"]);
    assert_eq!(out.code, 0, "{out}");
    let status: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(status["applied"], json!(n));
    assert_eq!(status["pending"], json!(0));
    assert_eq!(status["up_to_date"], json!(true));
    assert_eq!(status["migrations"].as_array().unwrap().len(), n);

    let out = migrate(&["down", "--steps", "0"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains(&format!("--steps 0 reverts none ({n} migration(s) applied)")), "{out}");
    assert!(!out.stdout.contains("no migration is applied"), "{out}");

    let last = set.migrations().last().unwrap();
    let out = migrate(&["down", "--dry-run", "--steps", "1"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains(&format!("-- {}", last.down_file())), "{out}");
    assert!(out.stdout.contains(last.down.as_deref().unwrap().trim()), "{out}");
    assert!(out.stdout.contains("1 migration(s) would be reverted; nothing was changed"), "{out}");
    let after: Value = serde_json::from_str(&migrate(&["status", "--json"]).stdout).unwrap();
    assert_eq!(after["applied"], json!(n), "a dry run reverts nothing");

    // A set from --dir: the hints name it; a generated up file left empty
    // is refused like an empty down file.
    let empty = TestDb::empty().await;
    let dir = tempfile::tempdir().unwrap();
    let dir_migrate = |args: &[&str]| run(devx_on(&empty.url()).arg("migrate").arg("--dir").arg(dir.path()).args(args));
    let out = dir_migrate(&["create", "add_things"]);
    assert_eq!(out.code, 0, "{out}");
    let out = dir_migrate(&["status"]);
    assert!(out.stdout.contains(&format!("Run `devx migrate --dir {} up`", dir.path().display())), "{out}");
    let out = dir_migrate(&["up"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("add_things.up.sql: it has no statements"), "{out}");
    let out = dir_migrate(&["up", "--dry-run"]);
    assert!(out.code != 0 && out.stderr.contains("no statements"), "{out}");
    assert!(dir_migrate(&["status"]).stdout.contains("0 applied, 1 pending"));
}

#[tokio::test]
async fn users_create_names_the_os_user_even_without_user_set() {
    let db = TestDb::migrated().await;
    let out = run_with_stdin(
        devx_on(&db.url()).env_remove("USER").env_remove("LOGNAME").args([
            "users",
            "create",
            "--email",
            "cli@example.com",
        ]),
        Some("correct horse battery\n"),
    );
    assert_eq!(out.code, 0, "{out}");
    let me = nix::unistd::User::from_uid(nix::unistd::getuid()).unwrap().map(|u| u.name).unwrap();
    let actor: String = crate::support::one(
        &db.client().await,
        "SELECT actor FROM devx.audit_logs WHERE entity_type = 'devx.users' AND action = 'insert'",
        &[],
    )
    .await;
    assert_eq!(actor, format!("system:cli {me}"));
}

// Logs.

#[tokio::test]
async fn logs_keep_notices_and_scratch_work_at_debug_and_colours_off_the_terminal() {
    let db = TestDb::migrated().await;
    // The ledger's `IF NOT EXISTS` statements draw NOTICEs.
    let out = run(devx_on(&db.url()).args(["migrate", "up"]));
    assert_eq!(out.code, 0, "{out}");
    assert!(!out.stderr.contains("NOTICE"), "{out}");
    assert!(!out.stderr.contains('\u{1b}'), "no colours in a pipe: {out}");
    let out = run(devx_on(&db.url()).env("DEVX_LOG", "debug").args(["migrate", "up"]));
    assert!(out.stderr.lines().any(|l| l.contains("DEBUG") && l.contains("NOTICE")), "{out}");

    let out = run(devx_on(&db.url()).args(["db", "check"]));
    assert_eq!(out.code, 0, "{out}");
    assert!(!out.stderr.contains("applied migration"), "{out}");

    // On a terminal: colours, unless NO_COLOR.
    if Command::new("script").arg("--version").output().is_ok() {
        let on_terminal = |no_color: Option<&str>| {
            // A warning logged, then the failure: both on the terminal.
            let line = format!("{} migrate status >/dev/null", env!("CARGO_BIN_EXE_devx"));
            let mut cmd = Command::new("script");
            cmd.args(["-qec", &line, "/dev/null"])
                .env("DB_PASWORD", "x")
                .env("DATABASE_URL", NOWHERE)
                .current_dir(std::env::temp_dir());
            if let Some(v) = no_color {
                cmd.env("NO_COLOR", v);
            }
            run(&mut cmd).stdout
        };
        let coloured = on_terminal(None);
        assert!(coloured.contains("did you mean DB_PASSWORD") && coloured.contains('\u{1b}'), "{coloured}");
        let plain = on_terminal(Some("1"));
        assert!(plain.contains("did you mean DB_PASSWORD") && !plain.contains('\u{1b}'), "{plain}");
    }
}

#[test]
fn the_fatal_error_is_a_json_line_in_json_format() {
    for (mut cmd, code) in [
        (devx_on(NOWHERE), 1),
        (
            {
                let mut c = devx_command();
                c.env("DB_PORT", "abc");
                c
            },
            2,
        ),
    ] {
        let out = run(cmd.env("DEVX_LOG_FORMAT", "json").args(["migrate", "status"]));
        assert_eq!(out.code, code, "{out}");
        let lines: Vec<Value> = out
            .stderr
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}\n{out}")))
            .collect();
        let last = lines.last().unwrap();
        assert_eq!(last["level"], "ERROR", "{out}");
        assert_eq!(last["exit_code"], json!(code), "{out}");
    }
}

/// A failing `/readyz` is logged at debug, not as an ERROR (or WARN) per
/// probe; response lines carry latencies without float noise.
#[tokio::test]
async fn probes_stay_quiet_and_latencies_are_clean() {
    let db = TestDb::migrated().await;
    let mut serve = Serve::start(devx_on(&db.url()).arg("serve"));
    serve.wait_for("devx ready", Duration::from_secs(60));
    for _ in 0..5 {
        assert_eq!(serve.get("/api/templates", None).await.0, StatusCode::OK);
    }
    // A migration pending: not ready.
    db.client()
        .await
        .batch_execute(
            "DELETE FROM devx_meta.schema_migrations WHERE id = (SELECT max(id) FROM devx_meta.schema_migrations)",
        )
        .await
        .unwrap();
    for _ in 0..3 {
        let (status, body) = serve.get("/readyz", None).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    }
    let (_, lines) = serve.stop();
    let loud: Vec<&String> =
        lines.iter().filter(|l| l.contains(r#""level":"ERROR""#) || l.contains(r#""level":"WARN""#)).collect();
    assert!(loud.is_empty(), "{loud:#?}");
    let latencies: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.split(r#""latency_ms":"#).nth(1))
        .map(|rest| rest.split([',', '}']).next().unwrap())
        .collect();
    assert!(latencies.len() >= 5, "{lines:#?}");
    for latency in latencies {
        let decimals = latency.split('.').nth(1).map_or(0, str::len);
        assert!(decimals <= 3, "latency_ms {latency} has float noise");
    }
}
