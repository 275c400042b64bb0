//! Versions of resources for optimistic concurrency: the `ETag` a GET and a
//! write answer with ([`Tagged`], from [`Versioned`]), and the `If-Match`
//! precondition a write checks ([`IfMatch`]).
//!
//! A tag names the version of the resource's own row (its `updated_at`,
//! which a trigger moves on every update), not a hash of the bytes sent, so
//! parts embedded from other rows (counts, subtasks) do not change it. Tags
//! are strong, since `If-Match` compares strongly. The handler checks
//! `If-Match` against the row it has locked in the write's transaction, so
//! no other write can slip in between the check and the change.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, IntoResponseParts, Response, ResponseParts};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::error::ApiError;

/// A strong entity tag, quotes included (`"5f1c3a9b2d4e0"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ETag(String);

impl ETag {
    /// The tag of a row last changed at `updated_at` (microseconds, as
    /// PostgreSQL keeps them).
    pub fn from_timestamp(updated_at: DateTime<Utc>) -> ETag {
        ETag(format!("\"{:x}\"", updated_at.timestamp_micros()))
    }

    /// The tag of a version named by text (for a row without `updated_at`
    /// whose state only moves forward, e.g. a status).
    pub fn digest(version: &str) -> ETag {
        let hash = Sha256::digest(version.as_bytes());
        ETag(format!("\"{}\"", hex::encode(&hash[..8])))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The opaque part, between the quotes.
    fn opaque(&self) -> &str {
        self.0.trim_matches('"')
    }
}

impl std::fmt::Display for ETag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An `ETag` header beside another answer: `(etag, Json(body))`.
impl IntoResponseParts for ETag {
    type Error = std::convert::Infallible;

    fn into_response_parts(self, mut res: ResponseParts) -> Result<ResponseParts, Self::Error> {
        if let Ok(value) = HeaderValue::from_str(self.as_str()) {
            res.headers_mut().insert(header::ETAG, value);
        }
        Ok(res)
    }
}

/// A resource whose representation carries a version.
pub trait Versioned {
    fn etag(&self) -> ETag;
}

/// A resource as JSON with its `ETag` header (200).
#[derive(Debug)]
pub struct Tagged<T>(pub T);

impl<T: Serialize + Versioned> IntoResponse for Tagged<T> {
    fn into_response(self) -> Response {
        (self.0.etag(), super::Json(self.0)).into_response()
    }
}

/// The `If-Match` precondition of a write. No header, or `*`, is no
/// condition (the write goes ahead as it always did); a list of tags must
/// contain the resource's current one, or the write is refused with 412.
#[derive(Debug, Clone, Default, PartialEq, Eq, utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IfMatch {
    /// The `ETag` of the version this change was made against (from a GET or
    /// the previous write). If the resource has changed since, the answer is
    /// 412 Precondition Failed and nothing changes: read it again, reapply
    /// the change, and send the new `ETag`. `*` or no header: no condition.
    #[param(rename = "If-Match", value_type = String, required = false, example = "\"6293f0c9d1a2b\"",
            pattern = r#"^[ \t]*(\*|[ \t,]*(W/)?"[!#-~]*"([ \t]*,[ \t,]*(W/)?"[!#-~]*")*[ \t,]*)[ \t]*$"#)]
    condition: Option<Condition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Condition {
    Any,
    /// The opaque parts of the tags given; weak ones are left out, since
    /// they never match under the strong comparison `If-Match` uses.
    Tags(Vec<String>),
}

impl IfMatch {
    /// Parses the values of every `If-Match` header of a request.
    fn parse<'a>(values: impl Iterator<Item = &'a HeaderValue>) -> Result<IfMatch, ApiError> {
        let mut tags = Vec::new();
        let mut any = false;
        let mut seen = false;
        for value in values {
            seen = true;
            let text = value.to_str().map_err(|_| malformed())?;
            if text.trim() == "*" {
                any = true;
                continue;
            }
            // A value that names no tag at all is not a condition anyone
            // meant; refusing it beats a 412 no ETag could ever satisfy.
            if parse_tags(text, &mut tags)? == 0 {
                return Err(malformed());
            }
        }
        let condition = match (seen, any) {
            (false, _) => None,
            (true, true) if tags.is_empty() => Some(Condition::Any),
            (true, true) => return Err(malformed()),
            (true, false) => Some(Condition::Tags(tags)),
        };
        Ok(IfMatch { condition })
    }

    /// Whether the client asked for a specific version (not `*`, not absent).
    pub fn is_conditional(&self) -> bool {
        matches!(self.condition, Some(Condition::Tags(_)))
    }

    /// Refuses the write when the resource (`what`, e.g. "project") is no
    /// longer at a version the client named. Call it with the version of the
    /// row locked in the write's transaction.
    pub fn check(&self, what: &str, current: &ETag) -> Result<(), ApiError> {
        let Some(Condition::Tags(tags)) = &self.condition else { return Ok(()) };
        if tags.iter().any(|t| t == current.opaque()) {
            return Ok(());
        }
        Err(ApiError::PreconditionFailed(format!(
            "the {what} has changed since the version named in If-Match (it is now at ETag {current}): \
             GET it again, reapply your change to what it is now, and send its new ETag"
        )))
    }
}

fn malformed() -> ApiError {
    ApiError::BadRequest(
        "If-Match must be `*` or a list of ETags exactly as an ETag header gave them, quotes included \
         (e.g. If-Match: \"6293f0c9d1a2b\")"
            .into(),
    )
}

/// `"a", W/"b" ,"c"` into the opaque parts of the strong tags; answers how
/// many tags (weak ones included) the text named.
fn parse_tags(text: &str, tags: &mut Vec<String>) -> Result<usize, ApiError> {
    let mut rest = text.trim_start_matches([' ', '\t', ',']);
    let mut named = 0;
    while !rest.is_empty() {
        named += 1;
        let (weak, tail) = match rest.strip_prefix("W/") {
            Some(tail) => (true, tail),
            None => (false, rest),
        };
        let tail = tail.strip_prefix('"').ok_or_else(malformed)?;
        let end = tail.find('"').ok_or_else(malformed)?;
        let opaque = &tail[..end];
        if !opaque.bytes().all(|b| b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80) {
            return Err(malformed());
        }
        if !weak {
            tags.push(opaque.to_string());
        }
        let after = tail[end + 1..].trim_start_matches([' ', '\t']);
        if !after.is_empty() && !after.starts_with(',') {
            return Err(malformed());
        }
        rest = after.trim_start_matches([' ', '\t', ',']);
    }
    Ok(named)
}

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        IfMatch::parse(parts.headers.get_all(header::IF_MATCH).iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::json_schema::testing::{assert_agree, strings};

    fn if_match(values: &[&str]) -> Result<IfMatch, ApiError> {
        let values: Vec<HeaderValue> = values.iter().map(|v| HeaderValue::from_str(v).unwrap()).collect();
        IfMatch::parse(values.iter())
    }

    #[test]
    fn tags_are_strong_and_move_with_the_version() {
        let t = DateTime::from_timestamp_micros(1_733_000_000_123_456).unwrap();
        let tag = ETag::from_timestamp(t);
        assert!(tag.as_str().starts_with('"') && tag.as_str().ends_with('"'));
        assert_ne!(tag, ETag::from_timestamp(t + chrono::TimeDelta::microseconds(1)));
        assert_eq!(ETag::digest("running"), ETag::digest("running"));
        assert_ne!(ETag::digest("running"), ETag::digest("completed"));
    }

    #[test]
    fn if_match_compares_strongly() {
        let current = ETag::from_timestamp(DateTime::from_timestamp_micros(42).unwrap());
        let tag = current.as_str();
        assert!(if_match(&[]).unwrap().check("task", &current).is_ok(), "no header: no condition");
        assert!(if_match(&["*"]).unwrap().check("task", &current).is_ok());
        assert!(if_match(&[tag]).unwrap().check("task", &current).is_ok());
        assert!(if_match(&[&format!("\"old\", {tag}")]).unwrap().check("task", &current).is_ok());
        assert!(if_match(&["\"old\"", tag]).unwrap().check("task", &current).is_ok(), "several headers");
        let stale = if_match(&["\"old\""]).unwrap().check("task", &current).unwrap_err();
        assert_eq!(stale.status(), axum::http::StatusCode::PRECONDITION_FAILED);
        assert!(stale.to_string().contains(tag), "{stale}");
        let weak = format!("W/{tag}");
        assert!(if_match(&[&weak]).unwrap().check("task", &current).is_err(), "a weak tag never matches");
    }

    #[test]
    fn malformed_if_match_is_a_400() {
        for bad in ["abc", "\"unterminated", "\"a\" \"b\"", "*, \"a\"", "", " , ", "\"a\"b"] {
            let err = if_match(&[bad]).unwrap_err();
            assert_eq!(err.status(), axum::http::StatusCode::BAD_REQUEST, "{bad}");
        }
    }

    #[test]
    fn the_if_match_pattern_is_the_rule() {
        let params = <IfMatch as utoipa::IntoParams>::into_params(|| None);
        let schema = serde_json::to_value(&params[0].schema).unwrap();
        let pattern = regex::Regex::new(schema["pattern"].as_str().unwrap()).unwrap();
        let fixed = ["*", " * ", "\"a\"", "W/\"a\"", "\"a\", W/\"b\" ,\"c\"", ",\"a\",,", "", " ", "*,*", "\"a\"\"b\""];
        let random = strings("\"W/*, \ta", 5000, 10);
        let accepted = |value: &str| if_match(&[value]).is_ok();
        assert_agree(&pattern, accepted, fixed.into_iter().chain(random.iter().map(String::as_str)));
    }
}
