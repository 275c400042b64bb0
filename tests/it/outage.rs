//! Making a test's database unreachable and reachable again, without touching
//! the shared server: new connections are refused and existing ones killed.

use crate::app::TestApp;
use crate::harness;
use crate::support::one;

pub async fn take_database_down(app: &TestApp) {
    let admin = harness::admin_client().await;
    let name = app.db.name();
    admin.batch_execute(&format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS false")).await.unwrap();
    kill_connections(name).await;
}

pub async fn bring_database_back(app: &TestApp) {
    let admin = harness::admin_client().await;
    admin.batch_execute(&format!("ALTER DATABASE \"{}\" ALLOW_CONNECTIONS true", app.db.name())).await.unwrap();
}

/// Terminates every session connected to `database` (what a failover or an
/// operator's `pg_terminate_backend` does to devx's pool).
pub async fn kill_connections(database: &str) -> i64 {
    one(
        &harness::admin_client().await,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        &[&database],
    )
    .await
}
