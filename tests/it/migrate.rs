//! The migration engine against real databases: small sample sets written to
//! a temporary directory, the embedded set, and the `devx migrate` CLI.

use std::time::{Duration, Instant};

use devx::migrate::{DownSource, MIGRATION_LOCK_KEY, MigrateError, MigrateOptions, MigrationSet, Migrator, Problem};
use tempfile::TempDir;
use tokio_postgres::Client;

use crate::harness::{TestDb, devx_command};
use crate::support::{column, count, one};

const WIDGETS: &str = "20260101000000";
const COLOR: &str = "20260102000000";
const SEED: &str = "20260103000000";

/// Three migrations: a table, a column, a row.
fn sample() -> Vec<(String, String)> {
    vec![
        (format!("{WIDGETS}_create_widgets.up.sql"), "CREATE TABLE widgets (id int PRIMARY KEY, name text);\n".into()),
        (format!("{WIDGETS}_create_widgets.down.sql"), "DROP TABLE widgets;\n".into()),
        (format!("{COLOR}_add_color.up.sql"), "ALTER TABLE widgets ADD COLUMN color text;\n".into()),
        (format!("{COLOR}_add_color.down.sql"), "ALTER TABLE widgets DROP COLUMN color;\n".into()),
        (
            format!("{SEED}_seed.up.sql"),
            "-- a semicolon; in a comment\nINSERT INTO widgets VALUES (1, 'a;b', $$blue;$$);\n".into(),
        ),
        (format!("{SEED}_seed.down.sql"), "DELETE FROM widgets WHERE id = 1;\n".into()),
    ]
}

fn write_dir(files: &[(String, String)]) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

fn set_of(files: &[(String, String)]) -> (TempDir, MigrationSet) {
    let dir = write_dir(files);
    let set = MigrationSet::from_dir(dir.path()).unwrap();
    (dir, set)
}

fn options() -> MigrateOptions {
    MigrateOptions {
        lock_timeout: Duration::from_secs(2),
        wait_timeout: Duration::from_secs(20),
        poll_interval: Duration::from_millis(50),
    }
}

async fn migrator(db: &TestDb, set: &MigrationSet) -> Migrator {
    Migrator::new(db.client().await, set.clone(), options())
}

async fn ledger_ids(client: &Client) -> Vec<String> {
    column(client, "SELECT id FROM devx_meta.schema_migrations ORDER BY id", &[]).await
}

async fn relation_exists(client: &Client, name: &str) -> bool {
    one(client, "SELECT to_regclass($1) IS NOT NULL", &[&name]).await
}

async fn column_exists(client: &Client, table: &str, column: &str) -> bool {
    client
        .query_opt(
            "SELECT 1 FROM information_schema.columns WHERE table_name = $1 AND column_name = $2",
            &[&table, &column],
        )
        .await
        .unwrap()
        .is_some()
}

#[tokio::test]
async fn up_applies_everything_then_status_is_clean() {
    let db = TestDb::empty().await;
    let (_dir, set) = set_of(&sample());
    let mut m = migrator(&db, &set).await;

    let before = m.status().await.unwrap();
    assert_eq!(before.pending_ids(), [WIDGETS, COLOR, SEED]);
    assert!(before.applied.is_empty() && before.problems.is_empty());

    let report = m.up(None).await.unwrap();
    let ids: Vec<_> = report.applied.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, [WIDGETS, COLOR, SEED]);

    let status = m.status().await.unwrap();
    assert!(status.is_clean(), "{status:#?}");
    assert_eq!(status.applied.len(), 3);
    let client = db.client().await;
    let name: String = client.query_one("SELECT name || color FROM widgets WHERE id = 1", &[]).await.unwrap().get(0);
    assert_eq!(name, "a;bblue;");

    let history = m.history().await.unwrap();
    assert!(history.iter().all(|h| h.execution_ms.is_some() && h.applied_by.contains("devx")));
    let stored: String = client
        .query_one("SELECT up_sql FROM devx_meta.schema_migrations WHERE id = $1", &[&WIDGETS])
        .await
        .unwrap()
        .get(0);
    assert!(stored.contains("CREATE TABLE widgets"));
    assert_eq!(m.current().await.unwrap().unwrap().id, SEED);

    // Again: nothing to do.
    assert!(m.up(None).await.unwrap().applied.is_empty());
}

#[tokio::test]
async fn up_to_stops_at_the_given_id() {
    let db = TestDb::empty().await;
    let (_dir, set) = set_of(&sample());
    let mut m = migrator(&db, &set).await;
    let report = m.up(Some(COLOR)).await.unwrap();
    assert_eq!(report.applied.len(), 2);
    assert_eq!(m.status().await.unwrap().pending_ids(), [SEED]);
    let err = m.up(Some("20990101000000")).await.unwrap_err();
    assert!(matches!(err, MigrateError::UnknownMigration { .. }), "{err}");
}

#[tokio::test]
async fn down_reverses_and_removes_the_ledger_row() {
    let db = TestDb::empty().await;
    let (_dir, set) = set_of(&sample());
    let mut m = migrator(&db, &set).await;
    m.up(None).await.unwrap();
    let client = db.client().await;

    let report = m.down(2).await.unwrap();
    let ids: Vec<_> = report.reverted.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, [SEED, COLOR]);
    assert!(report.reverted.iter().all(|r| r.source == DownSource::File));
    assert!(!column_exists(&client, "widgets", "color").await);
    assert_eq!(ledger_ids(&client).await, [WIDGETS]);

    m.down(1).await.unwrap();
    assert!(!relation_exists(&client, "widgets").await);
    assert!(ledger_ids(&client).await.is_empty());
    assert!(m.down(1).await.unwrap().reverted.is_empty(), "nothing left to revert");
    assert_eq!(m.status().await.unwrap().pending.len(), 3);
}

#[tokio::test]
async fn down_without_a_script_refuses_and_reverts_nothing() {
    let db = TestDb::empty().await;
    let mut files = sample();
    files.retain(|(name, _)| name != &format!("{COLOR}_add_color.down.sql"));
    let (_dir, set) = set_of(&files);
    let mut m = migrator(&db, &set).await;
    m.up(None).await.unwrap();
    let err = m.down(2).await.unwrap_err();
    assert!(matches!(err, MigrateError::NoDown { ref id, .. } if id == COLOR), "{err}");
    assert!(err.to_string().contains("Nothing was reverted"), "{err}");
    assert_eq!(ledger_ids(&db.client().await).await.len(), 3, "the seed row stays: nothing reverted");
}

#[tokio::test]
async fn modified_applied_migration_is_reported_and_up_refused() {
    let db = TestDb::empty().await;
    let (_dir, set) = set_of(&sample()[..4]);
    migrator(&db, &set).await.up(None).await.unwrap();

    let mut files = sample();
    files[2].1 = "ALTER TABLE widgets ADD COLUMN colour text;\n".into();
    let (_dir2, changed) = set_of(&files);
    let mut m = migrator(&db, &changed).await;
    let status = m.status().await.unwrap();
    assert!(
        matches!(status.problems.as_slice(), [Problem::Modified { id, .. }] if id == COLOR),
        "{:#?}",
        status.problems
    );
    assert!(status.problems[0].to_string().contains("modified after it was applied"));

    let err = m.up(None).await.unwrap_err();
    assert!(matches!(err, MigrateError::Problems { .. }), "{err}");
    assert!(err.to_string().contains("nothing was changed"), "{err}");
    assert_eq!(ledger_ids(&db.client().await).await, [WIDGETS, COLOR], "the pending seed was not applied");
    assert!(
        matches!(status.problems.as_slice(), [Problem::Modified { cosmetic: false, .. }]),
        "a renamed column is a real change"
    );

    // Reformatting and a comment are flagged too, with a note that the SQL is the same.
    let mut files = sample();
    files[2].1 = "-- colour of the widget\nALTER TABLE   widgets\n    ADD COLUMN color text;\n".into();
    let (_dir3, reformatted) = set_of(&files);
    let status = migrator(&db, &reformatted).await.status().await.unwrap();
    assert!(matches!(status.problems.as_slice(), [Problem::Modified { cosmetic: true, .. }]), "{:#?}", status.problems);
    assert!(status.problems[0].to_string().contains("only whitespace or comments changed"));
}

#[tokio::test]
async fn unknown_applied_migration_is_reported_and_reverted_from_the_ledger() {
    let db = TestDb::empty().await;
    let (_dir, set) = set_of(&sample());
    migrator(&db, &set).await.up(None).await.unwrap();

    // An older devx: it does not know the seed migration.
    let (_dir2, older) = set_of(&sample()[..4]);
    let mut m = migrator(&db, &older).await;
    let status = m.status().await.unwrap();
    assert!(
        matches!(status.problems.as_slice(), [Problem::UnknownApplied { id, .. }] if id == SEED),
        "{:#?}",
        status.problems
    );
    assert!(status.problems[0].to_string().contains("database is newer than this devx"));
    assert!(matches!(m.up(None).await.unwrap_err(), MigrateError::Problems { .. }));

    let report = m.down(1).await.unwrap();
    assert_eq!(report.reverted[0].id, SEED);
    assert_eq!(report.reverted[0].source, DownSource::Ledger);
    let client = db.client().await;
    let rows: i64 = client.query_one("SELECT count(*) FROM widgets", &[]).await.unwrap().get(0);
    assert_eq!(rows, 0);
    assert!(m.status().await.unwrap().is_clean());
}

#[tokio::test]
async fn failed_migration_rolls_back_entirely_and_records_nothing() {
    let db = TestDb::empty().await;
    let mut files = sample()[..2].to_vec();
    files.push((
        format!("{COLOR}_broken.up.sql"),
        "CREATE TABLE parts (id int);\nINSERT INTO parts VALUES (1);\nSELECT * FROM\n  no_such_table;\n".into(),
    ));
    let (_dir, set) = set_of(&files);
    let mut m = migrator(&db, &set).await;
    let err = m.up(None).await.unwrap_err();
    let MigrateError::Failed(failure) = &err else { panic!("expected a failure, got {err}") };
    assert_eq!(failure.file, format!("{COLOR}_broken.up.sql"));
    let location = failure.location.as_ref().expect("PostgreSQL gives a position");
    assert_eq!((location.line, location.column), (4, Some(3)), "{err}");
    let text = err.to_string();
    assert!(text.contains("no_such_table") && text.contains("42P01") && text.contains("rolled back"), "{text}");

    let client = db.client().await;
    assert!(!relation_exists(&client, "parts").await, "the failed migration's table is rolled back");
    assert!(relation_exists(&client, "widgets").await, "the migration before it stays");
    assert_eq!(ledger_ids(&client).await, [WIDGETS]);
}

#[tokio::test]
async fn no_transaction_migration_applies_statement_by_statement() {
    let db = TestDb::empty().await;
    let mut files = sample()[..2].to_vec();
    files.push((
        format!("{COLOR}_index_names.up.sql"),
        "-- devx:no-transaction\n-- Built without blocking writes.\n\
         CREATE INDEX CONCURRENTLY widgets_name ON widgets (name);\n\
         CREATE INDEX CONCURRENTLY IF NOT EXISTS widgets_name_lower ON widgets (lower(name));\n"
            .into(),
    ));
    files.push((
        format!("{COLOR}_index_names.down.sql"),
        "-- devx:no-transaction\nDROP INDEX CONCURRENTLY widgets_name;\nDROP INDEX CONCURRENTLY widgets_name_lower;\n"
            .into(),
    ));
    let (_dir, set) = set_of(&files);
    assert!(set.get(COLOR).unwrap().no_transaction);
    let mut m = migrator(&db, &set).await;
    m.up(None).await.unwrap();

    let client = db.client().await;
    let valid: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_index WHERE indrelid = 'widgets'::regclass AND NOT indisprimary AND indisvalid",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(valid, 2);
    assert_eq!(ledger_ids(&client).await, [WIDGETS, COLOR]);

    m.down(1).await.unwrap();
    assert!(!relation_exists(&client, "widgets_name").await);
    assert_eq!(ledger_ids(&client).await, [WIDGETS]);
}

#[tokio::test]
async fn failed_no_transaction_migration_names_the_statement_and_records_nothing() {
    let db = TestDb::empty().await;
    let mut files = sample()[..2].to_vec();
    files.push((
        format!("{COLOR}_index.up.sql"),
        "-- devx:no-transaction\nCREATE INDEX CONCURRENTLY widgets_name ON widgets (name);\n\n  SELECT no_such_column FROM widgets;\n"
            .into(),
    ));
    let (_dir, set) = set_of(&files);
    let err = migrator(&db, &set).await.up(None).await.unwrap_err();
    let MigrateError::Failed(failure) = &err else { panic!("expected a failure, got {err}") };
    let location = failure.location.as_ref().unwrap();
    assert_eq!((location.statement, location.line, location.column), (Some(2), 4, Some(10)), "{err}");
    assert_eq!(failure.statements_done, 1);
    assert!(err.to_string().contains("stay applied"), "{err}");
    assert_eq!(ledger_ids(&db.client().await).await, [WIDGETS]);
}

#[tokio::test]
async fn stamp_records_without_running() {
    let db = TestDb::empty().await;
    let (_dir, set) = set_of(&sample());
    let mut m = migrator(&db, &set).await;
    let stamped = m.stamp(COLOR).await.unwrap();
    assert_eq!(stamped.len(), 2);
    let client = db.client().await;
    assert!(!relation_exists(&client, "widgets").await, "stamp runs nothing");
    assert_eq!(ledger_ids(&client).await, [WIDGETS, COLOR]);
    assert!(m.history().await.unwrap().iter().all(devx::migrate::AppliedMigration::stamped));
    assert_eq!(m.status().await.unwrap().pending_ids(), [SEED]);
    assert!(m.stamp(WIDGETS).await.unwrap().is_empty(), "already recorded");
}

#[tokio::test]
async fn concurrent_ups_apply_each_migration_exactly_once() {
    let db = TestDb::empty().await;
    let mut files = vec![(
        "20260101000000_log.up.sql".to_string(),
        "CREATE TABLE applied_log (id text);\nINSERT INTO applied_log VALUES ('log');\n".to_string(),
    )];
    for n in 1..=4 {
        files.push((
            format!("2026010100000{n}_step{n}.up.sql"),
            format!("SELECT pg_sleep(0.1);\nINSERT INTO applied_log VALUES ('step{n}');\n"),
        ));
    }
    let (_dir, set) = set_of(&files);
    let (mut a, mut b) = (migrator(&db, &set).await, migrator(&db, &set).await);
    let (ra, rb) = tokio::join!(a.up(None), b.up(None));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(ra.applied.len() + rb.applied.len(), 5, "{ra:?} {rb:?}");

    let client = db.client().await;
    assert_eq!(ledger_ids(&client).await.len(), 5);
    let effects: i64 = client.query_one("SELECT count(*) FROM applied_log", &[]).await.unwrap().get(0);
    assert_eq!(effects, 5, "each migration ran once");
}

#[tokio::test]
async fn waiting_for_the_lock_times_out_naming_the_holder() {
    let db = TestDb::empty().await;
    let (_dir, set) = set_of(&sample());
    let holder = db.client().await;
    holder.query_one("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK_KEY]).await.unwrap();
    let holder_pid: i32 = holder.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0);

    let wait = Duration::from_millis(700);
    let mut m = Migrator::new(db.client().await, set.clone(), MigrateOptions { wait_timeout: wait, ..options() });
    let start = Instant::now();
    let err = m.up(None).await.unwrap_err();
    let waited = start.elapsed();
    assert!(waited >= wait && waited < Duration::from_secs(5), "waited {waited:?}");
    let MigrateError::LockTimeout { holder: Some(h), .. } = &err else { panic!("expected a lock timeout, got {err}") };
    assert_eq!(h.pid, holder_pid);
    let text = err.to_string();
    assert!(text.contains(&format!("pid {holder_pid}")) && text.contains("DEVX_MIGRATION_WAIT"), "{text}");
    assert!(m.status().await.unwrap().applied.is_empty(), "nothing ran");

    holder.query_one("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY]).await.unwrap();
    assert_eq!(m.up(None).await.unwrap().applied.len(), 3);
}

/// Everything a migration could leave behind, outside the ledger.
async fn schema_snapshot(client: &Client) -> Vec<String> {
    column(
        client,
        "SELECT 'schema ' || nspname FROM pg_namespace
              WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'devx_meta') AND nspname NOT LIKE 'pg\\_%'
             UNION ALL
             SELECT 'relation ' || c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'devx_meta') AND n.nspname NOT LIKE 'pg\\_%'
             UNION ALL
             SELECT 'type ' || t.oid::regtype::text FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
              WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'devx_meta') AND n.nspname NOT LIKE 'pg\\_%'
             UNION ALL
             SELECT 'function ' || p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
              WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'devx_meta') AND n.nspname NOT LIKE 'pg\\_%'
             UNION ALL
             SELECT 'extension ' || extname FROM pg_extension
             ORDER BY 1",
        &[],
    )
    .await
}

#[tokio::test]
async fn embedded_set_goes_up_all_the_way_down_and_up_again() {
    let db = TestDb::empty().await;
    let set = MigrationSet::embedded().unwrap();
    let client = db.client().await;
    let empty = schema_snapshot(&client).await;

    let mut m = migrator(&db, &set).await;
    assert_eq!(m.up(None).await.unwrap().applied.len(), set.len());
    let migrated = schema_snapshot(&client).await;

    let reverted = m.down(set.len()).await.unwrap();
    assert_eq!(reverted.reverted.len(), set.len());
    assert!(ledger_ids(&client).await.is_empty());
    assert_eq!(schema_snapshot(&client).await, empty, "the down scripts leave exactly the empty database");

    assert_eq!(m.up(None).await.unwrap().applied.len(), set.len());
    assert_eq!(schema_snapshot(&client).await, migrated, "up again builds the same schema");
    assert!(m.status().await.unwrap().is_clean());
}

#[tokio::test]
async fn migrated_test_database_is_up_to_date_for_health_checks() {
    let db = TestDb::migrated().await;
    let mut config = devx::config::Config::from_lookup(&|_| None).unwrap();
    config.database.pool_max = 2;
    let pool = devx::db::Db::connect(&config.database, &db.config()).await.unwrap();
    let client = pool.client().await.unwrap();
    assert!(devx::migrate::pending_ids(&client).await.unwrap().is_empty());
    assert_eq!(devx::migrate::ledger_counts(&client).await.unwrap().0, MigrationSet::embedded().unwrap().len());

    let empty = TestDb::empty().await;
    let pool = devx::db::Db::connect(&config.database, &empty.config()).await.unwrap();
    let client = pool.client().await.unwrap();
    assert_eq!(devx::migrate::pending_ids(&client).await.unwrap().len(), MigrationSet::embedded().unwrap().len());
    assert_eq!(devx::migrate::ledger_counts(&client).await.unwrap().0, 0);
}

#[tokio::test]
async fn serve_migrates_or_refuses_by_configuration() {
    let db = TestDb::empty().await;
    let mut config = devx::config::Config::from_lookup(&|_| None).unwrap();
    config.migrations.auto_migrate = false;
    let err = devx::migrate::prepare_for_serve(&config, &db.config()).await.unwrap_err();
    assert!(matches!(err, MigrateError::PendingAtStart { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("devx migrate up") && text.contains("DEVX_AUTO_MIGRATE=true"), "{text}");

    config.migrations.auto_migrate = true;
    devx::migrate::prepare_for_serve(&config, &db.config()).await.unwrap();
    let set = MigrationSet::embedded().unwrap();
    assert!(migrator(&db, &set).await.status().await.unwrap().is_clean());
    config.migrations.auto_migrate = false;
    devx::migrate::prepare_for_serve(&config, &db.config()).await.expect("nothing pending: starts");

    // A database newer than this devx: refuse to start.
    db.client()
        .await
        .batch_execute(
            "INSERT INTO devx_meta.schema_migrations (id, name, checksum, up_sql)
             VALUES ('29991231235959', 'from_the_future', 'x', 'SELECT 1')",
        )
        .await
        .unwrap();
    let err = devx::migrate::prepare_for_serve(&config, &db.config()).await.unwrap_err();
    assert!(err.to_string().contains("database is newer than this devx"), "{err}");
}

fn run(cmd: &mut std::process::Command) -> (i32, String, String) {
    let out = cmd.output().expect("devx runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn cli_status_check_up_and_history() {
    let db = TestDb::empty().await;
    let dir = write_dir(&sample());
    let devx = |args: &[&str]| {
        let mut cmd = devx_command();
        cmd.env("DATABASE_URL", db.url()).arg("migrate").arg("--dir").arg(dir.path()).args(args);
        run(&mut cmd)
    };

    let (code, out, err) = devx(&["status"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains(WIDGETS) && out.contains("pending") && out.contains("0 applied, 3 pending"), "{out}");

    let (code, out, _) = devx(&["check"]);
    assert_eq!(code, 3, "check fails while migrations are pending: {out}");

    let (code, out, err) = devx(&["up", "--to", COLOR]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("2 migration(s) applied"), "{out}");

    let (code, out, _) = devx(&["status"]);
    assert_eq!(code, 0);
    assert!(out.contains("applied") && out.contains("2 applied, 1 pending"), "{out}");

    let (code, out, _) = devx(&["up"]);
    assert_eq!(code, 0, "{out}");
    let (code, out, _) = devx(&["check"]);
    assert_eq!(code, 0, "{out}");
    let (code, out, _) = devx(&["current"]);
    assert_eq!(code, 0);
    assert!(out.contains(&format!("{SEED}_seed")), "{out}");
    let (code, out, _) = devx(&["history"]);
    assert_eq!(code, 0);
    assert!(out.contains("APPLIED AT") && out.contains(COLOR), "{out}");
    let (code, out, _) = devx(&["down", "--steps", "3"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("3 migration(s) reverted"), "{out}");

    let (code, _, err) = devx(&["up", "--to", "20990101000000"]);
    assert_eq!(code, 2, "an unknown id is bad usage");
    assert!(err.contains("no migration 20990101000000"), "{err}");
}

#[test]
fn cli_create_writes_files_without_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(devx_command().args(["migrate", "create", "Add tags", "--dir"]).arg(dir.path()));
    assert_eq!(code, 0, "{out}\n{err}");
    let set = MigrationSet::from_dir(dir.path()).unwrap();
    assert_eq!(set.len(), 1);
    assert_eq!(set.migrations()[0].name, "add_tags");
    assert!(out.contains("add_tags.up.sql") && out.contains("add_tags.down.sql"), "{out}");
}

#[tokio::test]
async fn cli_dry_run_changes_nothing_and_down_all_empties_the_database() {
    let db = TestDb::empty().await;
    let devx = |args: &[&str]| {
        let mut cmd = devx_command();
        cmd.env("DATABASE_URL", db.url()).arg("migrate").args(args);
        run(&mut cmd)
    };
    let client = db.client().await;
    let before = schema_snapshot(&client).await;

    let (code, out, err) = devx(&["up", "--dry-run"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("CREATE TABLE devx.users") && out.contains("nothing was changed"), "{out}");
    assert_eq!(schema_snapshot(&client).await, before, "a dry run changes nothing");
    let ledger: bool =
        client.query_one("SELECT to_regclass('devx_meta.schema_migrations') IS NULL", &[]).await.unwrap().get(0);
    assert!(ledger, "a dry run does not even create the ledger");

    assert_eq!(devx(&["up"]).0, 0);
    let tables = async || -> i64 {
        client
            .query_one("SELECT count(*) FROM pg_tables WHERE schemaname IN ('devx', 'templates')", &[])
            .await
            .unwrap()
            .get(0)
    };
    assert!(tables().await > 20);

    let (code, out, err) = devx(&["down", "--to", "20261124000300"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(ledger_ids(&client).await.last().map(String::as_str), Some("20261124000300"), "{out}");

    let (code, out, err) = devx(&["down", "--all"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(tables().await, 0, "down --all leaves no devx tables: {out}");
    assert!(ledger_ids(&client).await.is_empty());

    assert_eq!(devx(&["up"]).0, 0, "and up works again");
    assert_eq!(devx(&["check"]).0, 0);
}

#[tokio::test]
async fn eight_processes_migrating_at_once_apply_everything_exactly_once() {
    let db = TestDb::empty().await;
    let mut files = vec![(
        "20260101000000_log.up.sql".to_string(),
        "CREATE TABLE applied_log (id text);\nCREATE TABLE items (id int, tag text);\n\
         INSERT INTO items SELECT g, 'tag' || g % 10 FROM generate_series(1, 20000) g;\n"
            .to_string(),
    )];
    files.push((
        "20260101000001_index_items.up.sql".to_string(),
        "-- devx:no-transaction\nCREATE INDEX CONCURRENTLY items_tag_idx ON items (tag);\n\
         INSERT INTO applied_log VALUES ('index');\n"
            .to_string(),
    ));
    for n in 2..=5 {
        files.push((
            format!("2026010100000{n}_step{n}.up.sql"),
            format!("SELECT pg_sleep(0.05);\nINSERT INTO applied_log VALUES ('step{n}');\n"),
        ));
    }
    let dir = write_dir(&files);
    let children: Vec<_> = (0..8)
        .map(|_| {
            devx_command()
                .env("DATABASE_URL", db.url())
                .args(["migrate", "--dir"])
                .arg(dir.path())
                .arg("up")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("devx starts")
        })
        .collect();
    let mut applied_reported = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        applied_reported += stdout.lines().filter(|l| l.starts_with("2026010100000")).count();
    }
    assert_eq!(applied_reported, 6, "each migration is reported applied by exactly one process");
    let client = db.client().await;
    assert_eq!(ledger_ids(&client).await.len(), 6);
    let effects: i64 = client.query_one("SELECT count(*) FROM applied_log", &[]).await.unwrap().get(0);
    assert_eq!(effects, 5, "each migration ran once");
    let valid: bool = client
        .query_one("SELECT indisvalid FROM pg_index WHERE indexrelid = 'items_tag_idx'::regclass", &[])
        .await
        .unwrap()
        .get(0);
    assert!(valid, "the concurrently built index is valid");
}

#[tokio::test]
async fn db_check_finds_drift_and_seed_fills_every_table_once() {
    let db = TestDb::migrated().await;
    let devx = |args: &[&str]| {
        let mut cmd = devx_command();
        // A key, so the seed's service variables become sealed rows.
        cmd.env("DATABASE_URL", db.url())
            .env("DEVX_SECRET_KEY", "ZGV2eC10ZXN0LWtleS0wMTIzNDU2Nzg5YWJjZGVmZ2g=")
            .arg("db")
            .args(args);
        run(&mut cmd)
    };
    let (code, out, err) = devx(&["check"]);
    assert_eq!(code, 0, "a freshly migrated database matches its migrations:\n{out}\n{err}");
    assert!(out.contains("schema matches the migrations"), "{out}");

    let client = db.client().await;
    client
        .batch_execute(
            "ALTER TABLE devx.users ADD COLUMN nickname text;
             DROP INDEX devx.projects_status_idx;
             ALTER TABLE devx.tasks DROP CONSTRAINT tasks_priority_check;",
        )
        .await
        .unwrap();
    let (code, out, _) = devx(&["check"]);
    assert_eq!(code, 3, "{out}");
    for expected in [
        "unexpected column devx.users.nickname",
        "missing    index devx.projects_status_idx",
        "missing    constraint devx.tasks.tasks_priority_check",
    ] {
        assert!(out.contains(expected), "`{expected}` not reported:\n{out}");
    }
    let leftovers: i64 = db
        .client()
        .await
        .query_one("SELECT count(*) FROM pg_database WHERE datname LIKE 'devx_check_%'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(leftovers, 0, "the scratch database is dropped");
    client
        .batch_execute(
            "ALTER TABLE devx.users DROP COLUMN nickname;
             CREATE INDEX projects_status_idx ON devx.projects (status);
             ALTER TABLE devx.tasks ADD CONSTRAINT tasks_priority_check CHECK (priority BETWEEN 0 AND 10);",
        )
        .await
        .unwrap();

    let (code, out, err) = devx(&["seed"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let counts = async || -> Vec<(String, i64)> {
        let tables: Vec<String> = column(
            &client,
            // A partition is its table's (most are empty: ahead of time).
            "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname IN ('devx', 'templates')
                  ORDER BY 1",
            &[],
        )
        .await;
        let mut out = Vec::new();
        for t in tables {
            let n = count(&client, &format!("SELECT count(*) FROM {t}")).await;
            out.push((t, n));
        }
        out
    };
    let first = counts().await;
    let empty: Vec<&String> = first.iter().filter(|(_, n)| *n == 0).map(|(t, _)| t).collect();
    assert!(empty.is_empty(), "tables the seed left empty: {empty:?}");

    // The seed wrote to every audited table, so each has audit rows naming it.
    let unaudited: Vec<String> = column(
        &client,
        "SELECT n.nspname || '.' || c.relname
               FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
               JOIN pg_proc p ON p.oid = g.tgfoid
              WHERE p.proname = 'audit_row' AND NOT g.tgisinternal AND NOT c.relispartition
                AND n.nspname || '.' || c.relname <> 'devx.system_config'
                AND NOT EXISTS (SELECT 1 FROM devx.audit_logs a
                                 WHERE a.entity_type = n.nspname || '.' || c.relname AND a.actor = 'system:seed')
              ORDER BY 1",
        &[],
    )
    .await;
    assert!(unaudited.is_empty(), "audited tables without an audit row naming the seed: {unaudited:?}");

    let (code, out, err) = devx(&["seed"]);
    assert_eq!(code, 2, "a database with data is refused without --force: {out}{err}");
    assert!(err.contains("--force"), "{err}");
    let (code, out, err) = devx(&["seed", "--force"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(counts().await, first, "seeding twice changes nothing");
}
