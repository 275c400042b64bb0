//! Faults in a test's database: new connections refused and existing ones
//! killed (an outage), or only killed (a failover, an operator's
//! `pg_terminate_backend`). Only ever on a database alone on a private
//! server (`TestApp::spawn_private`): on the shared one, another test
//! process's sessions could be caught in it, and the helpers refuse it.

use tokio_postgres::Client;

use crate::app::TestApp;
use crate::support::one;

/// A superuser connection to the private server under `app`'s database.
pub async fn fault_admin(app: &TestApp) -> Client {
    assert!(
        app.db.is_private(),
        "faults are injected on a private server only: start this test with TestApp::spawn_private"
    );
    app.db.admin_client().await
}

pub async fn take_database_down(app: &TestApp) {
    let admin = fault_admin(app).await;
    admin.batch_execute(&format!("ALTER DATABASE \"{}\" ALLOW_CONNECTIONS false", app.db.name())).await.unwrap();
    kill_connections(app).await;
}

pub async fn bring_database_back(app: &TestApp) {
    let admin = fault_admin(app).await;
    admin.batch_execute(&format!("ALTER DATABASE \"{}\" ALLOW_CONNECTIONS true", app.db.name())).await.unwrap();
}

/// Terminates every session connected to `app`'s database, and says how many.
pub async fn kill_connections(app: &TestApp) -> i64 {
    one(
        &fault_admin(app).await,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        &[&app.db.name()],
    )
    .await
}
