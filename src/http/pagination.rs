//! Keyset pagination, the same everywhere: `?limit=` (default 50, 1..=200)
//! and `?cursor=` (opaque), answered with `{"items": [...], "next_cursor": ...}`.
//! A limit out of range or a cursor that is not from the list is a 400 that
//! says so (never silently clamped). A cursor is the sort key of the last row
//! seen, so page 5,000 costs what page 1 does.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::error::ApiError;

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 200;

/// A page of a list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// The keyset of lists sorted by creation time: `(created_at, id)`.
pub type TimeKey = (chrono::DateTime<chrono::Utc>, uuid::Uuid);

/// A list request's paging, checked: how many rows, and the sort key of the
/// last row of the previous page (`None` on the first page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest<K> {
    pub limit: i64,
    pub after: Option<K>,
}

impl<K: DeserializeOwned> PageRequest<K> {
    /// Every list's preamble: `?limit=` (see [`limit`]), then `?cursor=`
    /// (a `next_cursor` this list gave), each a 400 that says what is wrong.
    pub fn new(limit: Option<i64>, cursor: Option<&str>) -> Result<Self, ApiError> {
        Ok(PageRequest { limit: self::limit(limit)?, after: decode_cursor(cursor)? })
    }
}

/// The validated limit: `None` means the default.
pub fn limit(raw: Option<i64>) -> Result<i64, ApiError> {
    match raw {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::BadRequest(format!(
            "limit={n} is out of range: use 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT})"
        ))),
    }
}

/// Decodes a cursor made by [`encode_cursor`] for the same list.
fn decode_cursor<K: DeserializeOwned>(raw: Option<&str>) -> Result<Option<K>, ApiError> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else { return Ok(None) };
    let bad = || {
        ApiError::BadRequest(
            "cursor is not one from this list: pass `next_cursor` unchanged, or omit it for the first page".into(),
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad())?;
    serde_json::from_slice(&bytes).map(Some).map_err(|_| bad())
}

pub fn encode_cursor<K: Serialize>(key: &K) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(key).unwrap_or_default())
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows fetched in list order: the
    /// extra row only tells that there is a next page.
    pub fn from_rows<K: Serialize>(mut rows: Vec<T>, limit: i64, key: impl Fn(&T) -> K) -> Page<T> {
        let limit = usize::try_from(limit).unwrap_or(0);
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|last| encode_cursor(&key(last)))
        } else {
            None
        };
        Page { items: rows, next_cursor }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page { items: self.items.into_iter().map(f).collect(), next_cursor: self.next_cursor }
    }
}

/// The pagination parameters every list takes (filter structs repeat these
/// two fields because `deny_unknown_fields` does not work through flatten).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page, 1 to 200 (default 50).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_outside_the_range_are_refused() {
        assert_eq!(limit(None).unwrap(), 50);
        assert_eq!(limit(Some(200)).unwrap(), 200);
        assert!(limit(Some(0)).is_err());
        assert!(limit(Some(1_000_000)).is_err());
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let c = encode_cursor(&("2026-11-24T00:00:00Z", 42));
        let back: Option<(String, i64)> = decode_cursor(Some(&c)).unwrap();
        assert_eq!(back, Some(("2026-11-24T00:00:00Z".to_string(), 42)));
        assert!(decode_cursor::<(String, i64)>(Some("not-a-cursor!")).is_err());
    }

    #[test]
    fn a_page_request_checks_the_limit_then_the_cursor() {
        let first = PageRequest::<i32>::new(None, None).unwrap();
        assert_eq!(first, PageRequest { limit: DEFAULT_LIMIT, after: None });
        let next = PageRequest::<i32>::new(Some(10), Some(&encode_cursor(&7))).unwrap();
        assert_eq!(next, PageRequest { limit: 10, after: Some(7) });
        let both_bad = PageRequest::<i32>::new(Some(0), Some("garbage")).unwrap_err().to_string();
        assert!(both_bad.contains("limit=0"), "{both_bad}");
    }

    #[test]
    fn a_page_has_a_cursor_only_when_more_rows_exist() {
        let page = Page::from_rows(vec![1, 2, 3], 2, |n| *n);
        assert_eq!(page.items, vec![1, 2]);
        assert_eq!(decode_cursor::<i32>(page.next_cursor.as_deref()).unwrap(), Some(2));
        let last = Page::from_rows(vec![1, 2], 2, |n| *n);
        assert!(last.next_cursor.is_none());
    }
}
