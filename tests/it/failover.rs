//! Failover with PostgreSQL's own tools: a private primary and a streaming
//! standby made by `pg_basebackup`, devx on a URL listing both with
//! `target_session_attrs=read-write`, writes running while the primary
//! turns read-only (as a demoted server does), the standby is promoted, and
//! the old primary is stopped.
//! devx must move its writes to the new primary without a restart, answer
//! only 503s with `Retry-After` meanwhile, and lose no acknowledged write.

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use devx::app::Application;
use devx::config::{Config, DbSource};
use devx::db::Db;
use devx::http::AppState;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::harness::{PrivateServer, connect, private_data_dir};

/// Runs a server program as the owner of `owner_of` (PostgreSQL refuses to
/// run as root); panics with its output when it fails.
pub(crate) fn pg(program: &Path, owner_of: &Path, args: &[&str]) {
    let meta = std::fs::metadata(owner_of).unwrap();
    let mut cmd = Command::new(program);
    cmd.args(args).env_remove("PGHOST").env_remove("PGPORT").env_remove("PGUSER").env_remove("PGDATABASE");
    if nix::unistd::geteuid().is_root() {
        cmd.uid(meta.uid()).gid(meta.gid());
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{} {args:?}: {}{}",
        program.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub(crate) fn target(hosts: &[&Path]) -> tokio_postgres::Config {
    let mut cfg = tokio_postgres::Config::new();
    for host in hosts {
        cfg.host_path(host);
    }
    cfg.port(5432)
        .user("postgres")
        .dbname(devx::embedded::DATABASE)
        .target_session_attrs(tokio_postgres::config::TargetSessionAttrs::ReadWrite)
        .connect_timeout(Duration::from_secs(2));
    cfg
}

/// A streaming standby of the private server whose socket directory is
/// `primary_root`: a base backup (`pg_basebackup -R`), `extra_conf` added to
/// its settings, started on its own socket directory. Returns the directory
/// that holds it (removed when dropped), its socket directory and its data.
pub(crate) fn start_standby(
    binaries: &devx::embedded::Binaries,
    primary_root: &Path,
    extra_conf: &str,
) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let primary_data = primary_root.join("data");
    let standby_dir = private_data_dir("devx-standby-");
    let standby_root = standby_dir.path().join("postgres");
    std::fs::create_dir(&standby_root).unwrap();
    let owner = std::fs::metadata(&primary_data).unwrap();
    std::os::unix::fs::chown(&standby_root, Some(owner.uid()), Some(owner.gid())).unwrap();
    let standby_data = standby_root.join("data");
    pg(
        &binaries.program("pg_basebackup"),
        &standby_root,
        &[
            "-h",
            primary_root.to_str().unwrap(),
            "-p",
            "5432",
            "-U",
            "postgres",
            "-D",
            standby_data.to_str().unwrap(),
            "-R",
            "-X",
            "stream",
            // An immediate checkpoint: the default spreads it over minutes.
            "--checkpoint=fast",
        ],
    );
    std::fs::write(
        standby_data.join("devx.conf"),
        format!(
            "listen_addresses = ''\nport = 5432\nunix_socket_directories = '{}'\n{extra_conf}",
            standby_root.display()
        ),
    )
    .unwrap();
    let log = standby_root.join("server.log");
    pg(
        &binaries.program("pg_ctl"),
        &standby_root,
        &["start", "-w", "-t", "60", "-s", "-D", standby_data.to_str().unwrap(), "-l", log.to_str().unwrap()],
    );
    (standby_dir, standby_root, standby_data)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_move_to_a_promoted_standby_without_a_restart_and_none_is_lost() {
    let Some(primary) = PrivateServer::start("devx-failover-").await else {
        eprintln!("skipped: no PostgreSQL server binaries on this machine");
        return;
    };
    let binaries = devx::embedded::find_binaries().unwrap();
    let primary_root: PathBuf = primary.dir.path().join("postgres");

    // The standby: a base backup of the primary that streams from it.
    let (_standby_dir, standby_root, standby_data) = start_standby(&binaries, &primary_root, "");
    let mut standby_only = target(&[&standby_root]);
    standby_only.target_session_attrs(tokio_postgres::config::TargetSessionAttrs::Any);
    let standby = connect(&standby_only).await;
    let in_recovery: bool = standby.query_one("SELECT pg_is_in_recovery()", &[]).await.unwrap().get(0);
    assert!(in_recovery, "the standby streams from the primary");

    // devx on both hosts; the read-write one is the primary.
    let both = target(&[&primary_root, &standby_root]);
    let mut config = Config::from_lookup(&|_| None).unwrap();
    config.database.source = DbSource::Explicit(Box::new(both.clone()));
    config.migrations.auto_migrate = true;
    config.database.acquire_timeout = Duration::from_secs(2);
    config.http.shutdown_drain = Duration::ZERO;
    devx::migrate::prepare_for_serve(&config, &both).await.expect("migrates on the primary");
    let pool = Db::connect(&config.database, &both).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app = Application::build(listener, AppState::new(pool.clone(), config.clone()));
    let base = format!("http://{}", app.local_addr().unwrap());
    let server = tokio::spawn(app.run_until(std::future::pending()));
    let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    let registered: Value = http
        .post(format!("{base}/api/auth/register"))
        .json(&json!({"email": "ada@example.com", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = registered["token"].as_str().expect("registered").to_string();

    // A subscriber waiting before the switch must still be woken after it.
    let mut waiting = pool.subscribe("devx_failover_probe").await.expect("the listener opens");

    // Writes run until told to stop; every acknowledged id is kept.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let writer = {
        let (http, base, token) = (http.clone(), base.clone(), token.clone());
        tokio::spawn(async move {
            let mut acknowledged: Vec<Uuid> = Vec::new();
            let mut refusals: Vec<(StatusCode, Option<String>, Instant)> = Vec::new();
            let mut n = 0;
            while !*stop_rx.borrow() {
                n += 1;
                let resp = http
                    .post(format!("{base}/api/projects"))
                    .bearer_auth(&token)
                    .json(&json!({"name": format!("p{n}")}))
                    .send()
                    .await
                    .unwrap();
                let status = resp.status();
                let retry_after = resp.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
                if status == StatusCode::CREATED {
                    let body: Value = resp.json().await.unwrap();
                    acknowledged.push(body["id"].as_str().unwrap().parse().unwrap());
                } else {
                    refusals.push((status, retry_after, Instant::now()));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            (acknowledged, refusals)
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The switchover: the primary turns read-only (as a demoted server is),
    // the standby replays everything it wrote, then is promoted.
    let old = primary.client().await;
    old.batch_execute("ALTER SYSTEM SET default_transaction_read_only = on").await.unwrap();
    old.batch_execute("SELECT pg_reload_conf()").await.unwrap();
    let switched_at = Instant::now();
    // The reload reaches the primary's sessions before they run their next
    // statement; the last position written before that is what the standby
    // must have replayed before it may take over.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let last: String = old.query_one("SELECT pg_current_wal_lsn()::text", &[]).await.unwrap().get(0);
    let caught_up = Instant::now() + Duration::from_secs(30);
    loop {
        let replayed: bool =
            standby.query_one("SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn", &[&last]).await.unwrap().get(0);
        if replayed {
            break;
        }
        assert!(Instant::now() < caught_up, "the standby replays the primary's last write within 30 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    pg(
        &binaries.program("pg_ctl"),
        &standby_root,
        &["promote", "-w", "-t", "60", "-s", "-D", standby_data.to_str().unwrap()],
    );

    // Writes resume on the new primary, without a devx restart.
    let resumed = Instant::now() + Duration::from_secs(30);
    let recovered_after = loop {
        let resp = http
            .post(format!("{base}/api/projects"))
            .bearer_auth(&token)
            .json(&json!({"name": "after the switch"}))
            .send()
            .await
            .unwrap();
        if resp.status() == StatusCode::CREATED {
            break switched_at.elapsed();
        }
        assert!(Instant::now() < resumed, "writes resume within 30 s of the switch");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The failover manager stops the old primary while writes go on: the
    // connections devx still had to it break and are replaced.
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(old);
    pg(
        &binaries.program("pg_ctl"),
        &primary_root,
        &["stop", "-w", "-m", "fast", "-s", "-D", primary_root.join("data").to_str().unwrap()],
    );
    let old_stopped = Instant::now();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop_tx.send(true).unwrap();
    let (acknowledged, refusals) = writer.await.unwrap();
    eprintln!(
        "failover: writes resumed {recovered_after:?} after the primary turned read-only; {} acknowledged, {} refused",
        acknowledged.len(),
        refusals.len()
    );

    assert!(!acknowledged.is_empty());
    for (status, retry_after, _) in &refusals {
        assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE, "only 503s during the switch");
        assert!(retry_after.is_some(), "every 503 says when to retry");
    }
    // Every acknowledged write is on the new primary.
    let new_primary = connect(&target(&[&standby_root])).await;
    let stored: Vec<Uuid> = new_primary
        .query("SELECT id FROM devx.projects WHERE id = ANY($1)", &[&acknowledged])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(stored.len(), acknowledged.len(), "no acknowledged write was lost");

    // The listener followed the primary: a NOTIFY on the new primary reaches
    // the subscriber that waited since before the switch (the next
    // subscription reopens the listener there if the refresh found no
    // writable server yet).
    let _again = pool.subscribe("devx_failover_other").await.expect("the listener reopens on the new primary");
    new_primary.batch_execute("NOTIFY devx_failover_probe, 'after the switch'").await.unwrap();
    let woken = tokio::time::timeout(Duration::from_secs(10), waiting.recv()).await;
    assert_eq!(
        woken.expect("woken within 10 s").unwrap().as_ref(),
        "after the switch",
        "a NOTIFY on the new primary reaches a subscriber from before the switch"
    );
    // The migration lock's session (a connection of its own) lands on the
    // new primary too.
    let session = devx::db::connect_one(&config.database, &both).await.unwrap();
    let row =
        session.query_one("SELECT pg_is_in_recovery(), current_setting('transaction_read_only')", &[]).await.unwrap();
    assert_eq!((row.get::<_, bool>(0), row.get::<_, String>(1)), (false, "off".to_string()));
    devx::migrate::prepare_for_serve(&config, &both)
        .await
        .expect("migrations (none pending) run against the new primary");

    // Writes go on with the old primary gone.
    let deadline = old_stopped + Duration::from_secs(30);
    loop {
        let resp = http
            .post(format!("{base}/api/projects"))
            .bearer_auth(&token)
            .json(&json!({"name": "with the old primary stopped"}))
            .send()
            .await
            .unwrap();
        if resp.status() == StatusCode::CREATED {
            break;
        }
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE, "only 503s while the old primary goes away");
        assert!(Instant::now() < deadline, "writes go on within 30 s of the old primary stopping");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("failover: a write succeeded {:?} after the old primary stopped", old_stopped.elapsed());

    server.abort();
    pool.close();
    pg(
        &binaries.program("pg_ctl"),
        &standby_root,
        &["stop", "-w", "-m", "fast", "-s", "-D", standby_data.to_str().unwrap()],
    );
    primary.stop().await;
}
