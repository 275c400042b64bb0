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
//!
//! The listener follows the primary: when the pool finds its server turned
//! read-only (a demoted primary, which still accepts LISTEN but will never
//! see another NOTIFY), [`Db::refresh_listener`] drops the connection and
//! opens a new one, which `target_session_attrs=read-write` sends to the
//! writable host; a reopened connection LISTENs again on every channel that
//! still has subscribers, so that they need not subscribe anew.

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

/// Waits for a notification whose payload `wanted` accepts, or for lost
/// ones (the subscriber fell further behind than the channel holds) or a
/// closed channel: then the caller looks at the state again. Takes every
/// notification queued behind it too: each was sent after its transaction
/// committed, so the one look that follows sees what they all announce,
/// and a subscriber that fell behind does not look once per queued
/// notification, each look leaving it further behind.
pub async fn wakeup(rx: &mut broadcast::Receiver<Arc<str>>, wanted: impl Fn(&str) -> bool) {
    use broadcast::error::TryRecvError;
    loop {
        match rx.recv().await {
            Ok(payload) if !wanted(&payload) => {}
            _ => break,
        }
    }
    while !matches!(rx.try_recv(), Err(TryRecvError::Empty | TryRecvError::Closed)) {}
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

    /// Reopens the listening connection (on the writable host, after a
    /// failover) if one is open, LISTENing again on every channel that has
    /// subscribers.
    pub async fn refresh_listener(&self) {
        let mut live = self.ctx.hub.live.lock().await;
        if live.is_none() {
            return;
        }
        *live = None;
        match self.open_listener().await {
            Ok(opened) => {
                tracing::info!(
                    channels = opened.listening.len(),
                    "reopened the LISTEN connection on the writable server"
                );
                *live = Some(opened);
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot reopen the LISTEN connection; it reopens on the next subscription");
            }
        }
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
        // The channels someone still waits on: LISTEN again on each.
        let wanted: Vec<String> = {
            let channels = self.ctx.hub.channels.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            channels.iter().filter(|(_, tx)| tx.receiver_count() > 0).map(|(name, _)| name.clone()).collect()
        };
        let mut listening = HashSet::new();
        for channel in wanted {
            client.batch_execute(&format!("LISTEN \"{}\"", channel.replace('"', "\"\""))).await?;
            listening.insert(channel);
        }
        Ok(Live { client, alive, listening })
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
