//! The bookkeeping of credentials in use: a session's `last_activity` and an
//! API key's `last_used_at`, moved off the request path.
//!
//! Authenticating is a read; a credential seen again after a minute is only
//! *noted* here, and [`Touches::run`] writes every noted one with a single
//! statement per table each interval. A request therefore never waits for
//! an UPDATE and its commit, and N requests of a busy second cost two
//! statements, not N. What is lost if the process dies between flushes is
//! at most one interval of `last_activity` (a session then looks idle a
//! second longer than it was); revocation is unaffected, since it is read
//! on every request. Each process batches its own callers: nothing here is
//! shared state, every process writes the same "now". So the flusher is per
//! process by nature, and not one of the shared periodic jobs of `jobs`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use uuid::Uuid;

use super::queries;
use crate::db::{Db, DbError};

/// How often noted credentials are written.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
struct Noted {
    sessions: HashSet<Uuid>,
    keys: HashSet<Uuid>,
}

/// Credentials seen since the last flush.
#[derive(Debug, Default, Clone)]
pub struct Touches(Arc<Mutex<Noted>>);

impl Touches {
    pub fn session(&self, id: Uuid) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).sessions.insert(id);
    }

    pub fn api_key(&self, id: Uuid) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).keys.insert(id);
    }

    fn take(&self) -> Noted {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Writes everything noted so far (nothing when nothing is).
    pub async fn flush(&self, db: &Db) -> Result<(), DbError> {
        let noted = self.take();
        if noted.sessions.is_empty() && noted.keys.is_empty() {
            return Ok(());
        }
        let client = db.client().await?;
        let sessions: Vec<Uuid> = noted.sessions.into_iter().collect();
        let keys: Vec<Uuid> = noted.keys.into_iter().collect();
        if !sessions.is_empty() {
            queries::touch_sessions(&client, &sessions).await?;
        }
        if !keys.is_empty() {
            queries::touch_api_keys(&client, &keys).await?;
        }
        Ok(())
    }

    /// Flushes every `every` until the task is aborted. A failed flush is
    /// logged and its credentials dropped: the next request after the
    /// database is back notes them again.
    pub async fn run(self, db: Db, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(error) = self.flush(&db).await {
                tracing::warn!(%error, "could not record when sessions and API keys were last used");
            }
        }
    }
}
