//! The machinery every log devx keeps shares (task execution logs, deploy
//! logs): lines numbered 1, 2, 3... by `seq` without gaps, whose batches of
//! one source commit in seq order, so a reader that has seen seq n has seen
//! every line before it.
//!
//! - The tail: `?after=SEQ` (or `?cursor=`, the same) and `?limit=`, a page
//!   of lines in seq order ([`tail_after`], [`tail_page`]).
//! - The live stream: Server-Sent Events, one per line with `id:` its seq,
//!   resumable with `Last-Event-ID` ([`stream_after`], [`stream`]). It
//!   subscribes to the source's NOTIFY channel first, then reads the table,
//!   then reads again on each notification (and every few seconds anyway),
//!   so no line is missed; when the source has finished and every line so
//!   far is sent, a last `event: end` whose data is its final status.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::pagination::{self, Page};
use super::{ApiError, ApiResult, AppState};
use crate::db::DbError;

/// Lines read per query of a stream.
const STREAM_BATCH: i64 = 500;
/// How often a stream looks again without a notification (a missed one
/// costs at most this), and without notifications at all.
const STREAM_POLL: Duration = Duration::from_secs(5);
const STREAM_FALLBACK_POLL: Duration = Duration::from_millis(500);

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TailParams {
    /// Lines with a seq greater than this (default 0: from the start); not
    /// with `cursor`.
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// The same as `after`: the `next_cursor` of the previous page; not
    /// with `after`.
    pub cursor: Option<String>,
    /// Lines per page, 1 to 200 (default 50).
    pub limit: Option<i64>,
}

/// A line of a log: its place in it.
pub trait Seq {
    fn seq(&self) -> i64;
}

/// The page size and the seq a tail starts after (400 naming the parameter
/// when they are bad).
pub fn tail_after(p: &TailParams) -> ApiResult<(i64, i64)> {
    let limit = pagination::limit(p.limit)?;
    let from_cursor = match p.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(c.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            ApiError::BadRequest("cursor is not one from this list: pass `next_cursor` unchanged".into())
        })?),
    };
    let after = match (p.after, from_cursor) {
        (Some(_), Some(_)) => return Err(ApiError::BadRequest("give `after` or `cursor`, not both".into())),
        (Some(n), None) if n < 0 => return Err(ApiError::BadRequest(format!("after={n}: seqs start at 1"))),
        (a, c) => a.or(c).unwrap_or(0),
    };
    Ok((limit, after))
}

/// A page from up to `limit + 1` lines: `next_cursor` is the seq of the
/// last line returned when more exist now, null on the last page.
pub fn tail_page<L: Seq>(mut lines: Vec<L>, limit: i64) -> Page<L> {
    let more = lines.len() as i64 > limit;
    lines.truncate(limit as usize);
    let next_cursor = if more { lines.last().map(|l| l.seq().to_string()) } else { None };
    Page { items: lines, next_cursor }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StreamParams {
    /// Start after this seq (default 0: from the first line); a
    /// `Last-Event-ID` header wins over it.
    #[param(minimum = 0)]
    pub after: Option<i64>,
}

/// The seq a stream starts after: `Last-Event-ID`, else `after`, else 0.
pub fn stream_after(p: &StreamParams, headers: &HeaderMap) -> ApiResult<i64> {
    let resume = match headers.get("last-event-id") {
        None => None,
        Some(value) => {
            Some(value.to_str().ok().and_then(|v| v.trim().parse::<i64>().ok()).filter(|n| *n >= 0).ok_or_else(
                || ApiError::BadRequest("Last-Event-ID is not a seq: send the id of the last event received".into()),
            )?)
        }
    };
    if let Some(n) = p.after.filter(|n| *n < 0) {
        return Err(ApiError::BadRequest(format!("after={n}: seqs start at 1")));
    }
    Ok(resume.or(p.after).unwrap_or(0))
}

/// What one read of a source found.
pub struct Progress<L> {
    /// Up to the limit of lines after the seq asked for, in seq order.
    pub lines: Vec<L>,
    /// The source's final status, once it has finished.
    pub finished: Option<String>,
    /// The seq of its last line when it was read (before `lines`).
    pub last_seq: i64,
}

/// A log a stream follows.
pub trait LogFeed: Send + Sync + 'static {
    type Line: Serialize + Seq + Send + 'static;
    /// Reads the source's status and last seq first, then up to `limit`
    /// lines after `after`; `None` when the source is gone.
    fn read(
        &self,
        state: &AppState,
        after: i64,
        limit: i64,
    ) -> impl Future<Output = Result<Option<Progress<Self::Line>>, DbError>> + Send;
}

/// The SSE response following `feed` from after `after`; `wakeups` is the
/// subscription to its channel (taken before the caller checked the source
/// exists), whose payloads are source ids: `key` is this one's.
pub fn stream<F: LogFeed>(
    state: AppState,
    feed: F,
    key: String,
    after: i64,
    wakeups: Option<broadcast::Receiver<Arc<str>>>,
) -> Response {
    let follow =
        Follow { state, feed, key, last: after, pending: VecDeque::new(), wakeups, look_now: true, done: false };
    let events = futures_util::stream::unfold(follow, next_event);
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response()
}

/// A stream's place in the log.
struct Follow<F: LogFeed> {
    state: AppState,
    feed: F,
    key: String,
    /// The seq of the last line sent.
    last: i64,
    pending: VecDeque<Out<F::Line>>,
    wakeups: Option<broadcast::Receiver<Arc<str>>>,
    /// Read before waiting (at the start, and after a full batch).
    look_now: bool,
    done: bool,
}

/// What a stream sends next.
enum Out<L> {
    Line(L),
    /// The source finished (its status) and every line is sent.
    End(String),
}

async fn next_event<F: LogFeed>(mut f: Follow<F>) -> Option<(Result<Event, Infallible>, Follow<F>)> {
    loop {
        match f.pending.pop_front() {
            Some(Out::Line(line)) => {
                f.last = line.seq();
                let event = Event::default().id(line.seq().to_string()).json_data(&line).ok()?;
                return Some((Ok(event), f));
            }
            Some(Out::End(status)) => return Some((Ok(Event::default().event("end").data(status)), f)),
            None => {}
        }
        if f.done || f.state.is_draining() {
            return None;
        }
        if !f.look_now {
            let poll = if f.wakeups.is_some() { STREAM_POLL } else { STREAM_FALLBACK_POLL };
            wait_for(f.wakeups.as_mut(), &f.key, poll).await;
        }
        // The status and last seq first: once a finished source's lines up
        // to that seq are sent, every line is (seqs commit in order).
        match f.feed.read(&f.state, f.last, STREAM_BATCH).await {
            Ok(None) => return None,
            Ok(Some(progress)) => {
                f.look_now = progress.lines.len() as i64 == STREAM_BATCH;
                let through = progress.lines.last().map_or(f.last, Seq::seq);
                f.pending.extend(progress.lines.into_iter().map(Out::Line));
                if let Some(status) = progress.finished.filter(|_| through >= progress.last_seq) {
                    f.done = true;
                    f.pending.push_back(Out::End(status));
                }
            }
            Err(e) => {
                // The client reconnects with Last-Event-ID and loses nothing.
                tracing::warn!(error = %e, log = %f.key, "a log stream could not read; ending it");
                return None;
            }
        }
    }
}

/// Waits for a notification about this source, or `poll` at most.
async fn wait_for(wakeups: Option<&mut broadcast::Receiver<Arc<str>>>, key: &str, poll: Duration) {
    let nap = tokio::time::sleep(poll);
    let Some(rx) = wakeups else { return nap.await };
    tokio::select! {
        () = crate::db::wakeup(rx, |payload| payload == key) => {}
        () = nap => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Long enough that a wait which ran to it was not woken.
    const NEVER: Duration = Duration::from_secs(30);

    /// A stream that fell behind reads once for all the notifications
    /// queued meanwhile, not once for each: else each read behind the
    /// writer leaves it further behind.
    #[tokio::test]
    async fn one_look_takes_every_notification_queued_before_it() {
        let (tx, mut rx) = broadcast::channel::<Arc<str>>(64);
        for key in ["other", "mine", "mine", "other", "mine"] {
            tx.send(Arc::from(key)).unwrap();
        }
        let started = std::time::Instant::now();
        wait_for(Some(&mut rx), "mine", NEVER).await;
        assert!(started.elapsed() < NEVER / 2, "a queued notification wakes the stream at once");
        assert_eq!(rx.len(), 0, "the look covers the notifications queued behind the first");

        tx.send(Arc::from("other")).unwrap();
        let nap = Duration::from_millis(50);
        let started = std::time::Instant::now();
        wait_for(Some(&mut rx), "mine", nap).await;
        assert!(started.elapsed() >= nap, "another source's notification does not wake it");

        // More than the channel holds: lagged, which also means look.
        for _ in 0..100 {
            tx.send(Arc::from("other")).unwrap();
        }
        let started = std::time::Instant::now();
        wait_for(Some(&mut rx), "mine", NEVER).await;
        assert!(started.elapsed() < NEVER / 2, "lost notifications wake it at once");
        assert_eq!(rx.len(), 0);
    }
}
