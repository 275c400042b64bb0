//! LISTEN/NOTIFY for the pool's database: one dedicated connection per
//! [`Db`] (so one per devx process), opened on the first subscription and
//! again on the next one after it broke, that LISTENs on every channel
//! subscribed to and wakes the channel's subscribers on each notification.
//!
//! Notifications need a session of their own on the server itself: behind
//! PgBouncer in transaction mode (`DB_STATEMENT_MODE=unnamed`) a LISTEN
//! would stay on whichever server connection ran it, so there
//! [`Db::subscribe`] answers `None` and callers poll instead. A
//! notification may be missed (while the connection is reopened): callers
//! keep a poll interval as a floor, so a miss costs at most that.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::broadcast;
use tokio_postgres::AsyncMessage;

use super::{Db, DbError, describe, session_target, tls};
use crate::config::StatementMode;

type Channels = Arc<Mutex<HashMap<String, broadcast::Sender<Arc<str>>>>>;

/// The listener of one pool.
#[derive(Default)]
pub(super) struct Hub {
    channels: Channels,
    live: tokio::sync::Mutex<Option<Live>>,
    received: Arc<AtomicU64>,
}

/// The open listening connection and the channels it LISTENs on.
struct Live {
    client: tokio_postgres::Client,
    alive: Arc<AtomicBool>,
    listening: HashSet<String>,
}

impl Db {
    /// A receiver that gets the payload of every NOTIFY on `channel` (a
    /// lowercase identifier), or `None` when notifications cannot be had:
    /// in unnamed mode, or when the listening connection cannot be opened
    /// (logged). Subscribe before looking at the state the notifications
    /// announce, so that no change falls between the two.
    pub async fn subscribe(&self, channel: &str) -> Option<broadcast::Receiver<Arc<str>>> {
        if self.ctx.mode == StatementMode::Unnamed {
            return None;
        }
        let hub = &self.ctx.hub;
        let rx = {
            let mut channels = hub.channels.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            channels.entry(channel.to_string()).or_insert_with(|| broadcast::channel(1024).0).subscribe()
        };
        let mut live = hub.live.lock().await;
        if live.as_ref().is_none_or(|l| !l.alive.load(Ordering::SeqCst)) {
            match self.open_listener().await {
                Ok(opened) => *live = Some(opened),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot open the LISTEN connection; waiting callers poll instead");
                    *live = None;
                    return None;
                }
            }
        }
        let l = live.as_mut()?;
        if !l.listening.contains(channel) {
            if let Err(e) = l.client.batch_execute(&format!("LISTEN \"{}\"", channel.replace('"', "\"\""))).await {
                tracing::warn!(error = %e, channel, "LISTEN failed; waiting callers poll instead");
                l.alive.store(false, Ordering::SeqCst);
                return None;
            }
            l.listening.insert(channel.to_string());
        }
        Some(rx)
    }

    /// Notifications received by this pool's listener since it started.
    pub fn notifications_received(&self) -> u64 {
        self.ctx.hub.received.load(Ordering::Relaxed)
    }

    async fn open_listener(&self) -> Result<Live, DbError> {
        let (cfg, target) = &*self.ctx.settings;
        let t = session_target(cfg, target, true);
        let alive = Arc::new(AtomicBool::new(true));
        let (channels, received) = (self.ctx.hub.channels.clone(), self.ctx.hub.received.clone());
        let client = match tls::connector(cfg.effective_ssl_mode(target), &cfg.tls_files) {
            None => {
                let (client, connection) = t.connect(tokio_postgres::NoTls).await?;
                tokio::spawn(drive(connection, channels, received, alive.clone()));
                client
            }
            Some(tls) => {
                let (client, connection) = t.connect(tls).await?;
                tokio::spawn(drive(connection, channels, received, alive.clone()));
                client
            }
        };
        Ok(Live { client, alive, listening: HashSet::new() })
    }
}

/// Runs the listening connection, waking each notification's subscribers,
/// until it ends; then marks it dead so that the next subscription reopens it.
async fn drive<S, T>(
    mut connection: tokio_postgres::Connection<S, T>,
    channels: Channels,
    received: Arc<AtomicU64>,
    alive: Arc<AtomicBool>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
    T: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            Some(Ok(AsyncMessage::Notification(n))) => {
                received.fetch_add(1, Ordering::Relaxed);
                let channels = channels.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if let Some(tx) = channels.get(n.channel()) {
                    // No subscriber now is fine: nobody is waiting.
                    let _ = tx.send(Arc::from(n.payload()));
                }
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                tracing::debug!(error = %describe(&e), "the LISTEN connection ended");
                break;
            }
            None => break,
        }
    }
    alive.store(false, Ordering::SeqCst);
}
