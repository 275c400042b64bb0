//! Request extractors that answer bad input with the API's problem documents
//! instead of axum's plain-text rejections: malformed JSON and non-UUID path
//! ids are 400, unknown or mistyped fields 422, oversized bodies 413.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::error::ApiError;

/// JSON body in, JSON body out. Request types use `deny_unknown_fields`, so a
/// client cannot set what it does not own (`role`, `owner_id`, timestamps).
#[derive(Debug, Clone, Copy, Default, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// An optional JSON body: no `Content-Type` at all means none (`None`); a
/// body that says it is JSON must be valid JSON.
impl<T, S> axum::extract::OptionalFromRequest<S> for Json<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Option<Self>, ApiError> {
        let body = <axum::Json<T> as axum::extract::OptionalFromRequest<S>>::from_request(req, state).await?;
        Ok(body.map(|axum::Json(value)| Json(value)))
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonDataError(e) => {
                // serde's message names the field and what was expected, e.g.
                // "unknown field `role`, expected one of `name`, `avatar_url`".
                let message =
                    std::error::Error::source(&e).map_or_else(|| e.body_text(), std::string::ToString::to_string);
                ApiError::invalid(field_of(&message), message)
            }
            JsonRejection::JsonSyntaxError(e) => {
                let cause = std::error::Error::source(&e).map(std::string::ToString::to_string).unwrap_or_default();
                ApiError::BadRequest(format!("the body is not valid JSON: {cause}"))
            }
            JsonRejection::MissingJsonContentType(_) => {
                ApiError::UnsupportedMediaType("send the body as JSON with `Content-Type: application/json`".into())
            }
            JsonRejection::BytesRejection(e) => {
                if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge { limit: super::body_limit() }
                } else {
                    ApiError::BadRequest(format!("could not read the request body: {}", e.body_text()))
                }
            }
            other => ApiError::BadRequest(other.body_text()),
        }
    }
}

/// For `PATCH` fields where absent means "leave it" and `null` means "clear
/// it": use with `#[serde(default, deserialize_with = "nullable")]` on an
/// `Option<Option<T>>`.
pub fn nullable<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: serde::Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    use serde::Deserialize;
    Option::<T>::deserialize(deserializer).map(Some)
}

/// For integer fields: a JSON number with a zero fraction (`1500.0`, `1.5e3`)
/// is an integer to JSON Schema, and clients send such numbers (JavaScript
/// has no other kind), so it is taken as one. Use with
/// `#[serde(deserialize_with = "integer")]` (and `default` where the field
/// has one); [`optional_integer`] for an `Option`.
pub fn integer<'de, T, D>(deserializer: D) -> Result<T, D::Error>
where
    T: TryFrom<i64>,
    D: serde::Deserializer<'de>,
{
    use serde::Deserialize;
    whole_number(&serde_json::Number::deserialize(deserializer)?)
}

/// [`integer`] for an optional field; use with `#[serde(default, deserialize_with = "optional_integer")]`.
pub fn optional_integer<'de, T, D>(deserializer: D) -> Result<Option<T>, D::Error>
where
    T: TryFrom<i64>,
    D: serde::Deserializer<'de>,
{
    use serde::Deserialize;
    Option::<serde_json::Number>::deserialize(deserializer)?.map(|n| whole_number(&n)).transpose()
}

fn whole_number<T: TryFrom<i64>, E: serde::de::Error>(n: &serde_json::Number) -> Result<T, E> {
    // Floats are exact integers up to 2^53.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    let whole = n.as_i64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() <= EXACT).map(|f| f as i64));
    let Some(i) = whole else {
        return Err(E::custom(format!("invalid value: {n}, expected an integer")));
    };
    T::try_from(i).map_err(|_| E::custom(format!("invalid value: {n} is out of range")))
}

/// The field a serde message is about: "unknown field `x`" or "missing field
/// `x`" name it; otherwise the body as a whole.
fn field_of(message: &str) -> String {
    let named = ["unknown field `", "missing field `", "duplicate field `"]
        .iter()
        .find_map(|p| message.split_once(p).and_then(|(_, rest)| rest.split_once('`')).map(|(f, _)| f.to_string()));
    named
        .or_else(|| message.split_once(':').map(|(path, _)| path.trim().to_string()).filter(|p| !p.contains(' ')))
        .unwrap_or_else(|| "body".to_string())
}

/// Path parameters; a malformed id is the client's mistake (400), not ours.
#[derive(Debug, Clone, Copy, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        match rejection {
            PathRejection::FailedToDeserializePathParams(e) => {
                let detail = e.body_text();
                if detail.contains("UUID") || detail.contains("uuid") {
                    ApiError::BadRequest(
                        "the id in the path is not a UUID (expected e.g. 7f1c0c6e-2f4e-4a8b-9a51-1c7b1d2e3f40)".into(),
                    )
                } else {
                    ApiError::BadRequest(format!("invalid path parameter: {detail}"))
                }
            }
            other => ApiError::internal(other.body_text()),
        }
    }
}

/// Query parameters; filter structs deny unknown fields, so a typo in a filter
/// name is reported instead of silently ignored. A parameter given with an
/// empty value (`?status=`) is refused too rather than read as "no filter" or
/// as a filter for the empty string: leave it out or give it a value (the
/// OpenAPI document gives every string parameter `minLength: 1`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        if let Some((name, _)) = form_urlencoded::parse(query.as_bytes()).find(|(_, value)| value.is_empty()) {
            return Err(ApiError::BadRequest(format!(
                "the query parameter `{name}` is empty: leave it out or give it a value"
            )));
        }
        let axum::extract::Query(value) = axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Query(value))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        let message = match &rejection {
            QueryRejection::FailedToDeserializeQueryString(e) => {
                std::error::Error::source(e).map_or_else(|| e.body_text(), std::string::ToString::to_string)
            }
            other => other.body_text(),
        };
        ApiError::BadRequest(format!("invalid query string: {message}"))
    }
}

#[cfg(test)]
mod tests {
    use super::field_of;

    #[derive(Debug, serde::Deserialize)]
    struct Counts {
        #[serde(deserialize_with = "super::integer")]
        n: i32,
        #[serde(default, deserialize_with = "super::optional_integer")]
        m: Option<i64>,
    }

    #[test]
    fn integers_may_be_written_with_a_zero_fraction() {
        let read = |json: &str| serde_json::from_str::<Counts>(json).map(|c| (c.n, c.m)).map_err(|e| e.to_string());
        assert_eq!(read(r#"{"n": 5}"#), Ok((5, None)));
        assert_eq!(read(r#"{"n": 1500.0, "m": 1.5e3}"#), Ok((1500, Some(1500))));
        assert_eq!(read(r#"{"n": -2, "m": null}"#), Ok((-2, None)));
        assert!(read(r#"{"n": 1.5}"#).unwrap_err().contains("expected an integer"));
        assert!(read(r#"{"n": 3000000000}"#).unwrap_err().contains("out of range"));
        assert!(read(r#"{"n": "5"}"#).is_err());
    }

    #[test]
    fn serde_messages_name_their_field() {
        assert_eq!(field_of("unknown field `role`, expected one of `name`"), "role");
        assert_eq!(field_of("missing field `email` at line 1 column 2"), "email");
        assert_eq!(field_of("settings: invalid type: string \"x\", expected a map"), "settings");
        assert_eq!(field_of("invalid type: integer `1`, expected a string"), "body");
    }
}
