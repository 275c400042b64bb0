//! The embedded default against this machine's PostgreSQL: a private server
//! in a temporary data directory, started, joined by a second user (in this
//! process and in another devx process), stopped by the last one to leave.

use std::path::{Path, PathBuf};
use std::process::Command;

use devx::config::DbSource;
use devx::embedded;
use tokio_postgres::config::Host;

use crate::harness::{connect, embedded_config, no_local_server, private_data_dir};

fn postmaster_pid(data_dir: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(data_dir.join("postgres/data/postmaster.pid")).ok()?;
    text.lines().next()?.trim().parse().ok()
}

/// Whether process `pid` runs (a zombie waiting for a reaper does not count).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

fn socket(data_dir: &Path) -> PathBuf {
    data_dir.join("postgres/.s.PGSQL.5432")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_server_is_started_shared_and_stopped_by_the_last_user() {
    let Some(binaries) = embedded::find_binaries() else {
        eprintln!("skipped: no PostgreSQL server binaries on this machine");
        return;
    };
    let dir = private_data_dir("devx-embedded-");
    let config = embedded_config(dir.path());
    let options = no_local_server();

    let first = embedded::resolve_with(&config, &options).await.expect("the private server starts");
    assert!(first.origin.contains("started by this process"), "{}", first.origin);
    assert_eq!(first.target.get_hosts(), [Host::Unix(dir.path().join("postgres"))]);
    assert_eq!(first.target.get_dbname(), Some("devx"));
    let client = connect(&first.target).await;
    let row = client
        .query_one(
            "SELECT current_database(), current_setting('listen_addresses'), \
                    current_setting('shared_preload_libraries'), current_user",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "devx");
    assert_eq!(row.get::<_, String>(1), "", "no TCP listener");
    assert_eq!(row.get::<_, String>(3), "postgres");
    if binaries.pg_stat_statements_available() {
        assert!(row.get::<_, String>(2).contains("pg_stat_statements"), "preloaded: {:?}", row.get::<_, String>(2));
        client.batch_execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements").await.unwrap();
        let n: i64 = client.query_one("SELECT count(*) FROM pg_stat_statements", &[]).await.unwrap().get(0);
        assert!(n > 0);
    }
    drop(client);
    let pid = postmaster_pid(dir.path()).expect("postmaster.pid");
    assert!(alive(pid));

    // A second user in this process joins the running server.
    let second = embedded::resolve_with(&config, &options).await.expect("joins the running server");
    assert!(second.origin.contains("already running"), "{}", second.origin);
    assert_eq!(postmaster_pid(dir.path()), Some(pid));

    // Another devx process joins it too (an existing private cluster is
    // preferred to a local server) and leaves it running for us.
    let out = Command::new(env!("CARGO_BIN_EXE_devx"))
        .args(["db", "health"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("DEVX_DATA_DIR", dir.path())
        .env("DEVX_LOG", "warn")
        .current_dir(dir.path())
        .output()
        .expect("devx runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("already running, shared"), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(alive(pid), "another process must not stop a server others use");

    // The first user leaves: the server stays up for the second.
    first.shutdown().await;
    assert!(alive(pid));
    let client = connect(&second.target).await;
    assert_eq!(client.query_one("SELECT 1", &[]).await.unwrap().get::<_, i32>(0), 1);
    drop(client);

    // The last user leaves: the server stops, its socket goes.
    second.shutdown().await;
    assert!(!alive(pid), "postmaster {pid} still runs");
    assert!(!socket(dir.path()).exists());
    assert_eq!(postmaster_pid(dir.path()), None);

    // The existing cluster starts again without initdb, and a guard dropped
    // without `shutdown` (a panic, an early return) still stops it.
    let third = embedded::resolve_with(&config, &options).await.expect("the private server restarts");
    assert!(third.origin.contains("started by this process"), "{}", third.origin);
    let pid = postmaster_pid(dir.path()).expect("postmaster.pid");
    let client = connect(&third.target).await;
    client.query_one("SELECT 1", &[]).await.unwrap();
    drop(client);
    drop(third);
    assert!(!alive(pid), "postmaster {pid} still runs after drop");
    assert!(!socket(dir.path()).exists());
}

#[tokio::test]
async fn the_default_finds_a_database_on_this_machine() {
    let dir = private_data_dir("devx-embedded-");
    let config = embedded_config(dir.path());
    let resolved = match embedded::resolve(&config).await {
        Ok(resolved) => resolved,
        Err(e) => {
            // Only acceptable where there is neither a server nor binaries,
            // and then the message must say what to do.
            assert!(embedded::find_binaries().is_none(), "{e}");
            let msg = e.to_string();
            assert!(msg.contains("apt-get install postgresql") && msg.contains("DATABASE_URL"), "{msg}");
            return;
        }
    };
    let client = connect(&resolved.target).await;
    let db: String = client.query_one("SELECT current_database()", &[]).await.unwrap().get(0);
    assert_eq!(db, "devx", "via {}", resolved.origin);
    drop(client);
    resolved.shutdown().await;
}

#[tokio::test]
async fn an_explicit_configuration_is_returned_unchanged() {
    let dir = private_data_dir("devx-embedded-");
    let mut config = embedded_config(dir.path());
    let target: tokio_postgres::Config = "postgres://app:secret@db.internal:6543/app".parse().unwrap();
    config.database.source = DbSource::Explicit(Box::new(target.clone()));
    let resolved = embedded::resolve(&config).await.unwrap();
    assert_eq!(resolved.target, target);
    assert_eq!(resolved.origin, "configured");
    resolved.shutdown().await;
    assert!(!dir.path().join("postgres").exists(), "nothing private is made");
}
