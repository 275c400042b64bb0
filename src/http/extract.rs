//! Request extractors that answer bad input with the API's problem documents
//! instead of axum's plain-text rejections: malformed JSON and non-UUID path
//! ids are 400, unknown or mistyped fields 422, oversized bodies 413.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// JSON body in, JSON body out. Request types use `deny_unknown_fields`, so a
/// client cannot set what it does not own (`role`, `owner_id`, timestamps).
/// A body is a JSON object (or `null`, for a body type that is optional):
/// serde would also read a struct from an array of its fields in order,
/// which no request schema admits.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(Object(value)) = axum::Json::<Object<T>>::from_request(req, state).await?;
        Ok(Json(value))
    }
}

/// `T` read only from a JSON object, or from `null` when `T` takes one (an
/// `Option`); an array, a string or a number is refused as the wrong type.
struct Object<T>(T);

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Object<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<T>(std::marker::PhantomData<T>);

        impl<'de, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for Visitor<T> {
            type Value = Object<T>;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Object<T>, A::Error> {
                T::deserialize(ObjectDeserializer(map)).map(Object)
            }

            fn visit_unit<E: serde::de::Error>(self) -> Result<Object<T>, E> {
                T::deserialize(serde::de::value::UnitDeserializer::new()).map(Object)
            }
        }

        deserializer.deserialize_any(Visitor(std::marker::PhantomData))
    }
}

/// The fields of a JSON object, for a struct or `Some` of one.
struct ObjectDeserializer<A>(A);

impl<'de, A: serde::de::MapAccess<'de>> serde::Deserializer<'de> for ObjectDeserializer<A> {
    type Error = A::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, A::Error> {
        visitor.visit_map(self.0)
    }

    fn deserialize_option<V: serde::de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, A::Error> {
        visitor.visit_some(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit unit_struct
        newtype_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

/// The buffer a response body is serialized into, sized for a page: grown
/// from axum's 128 bytes by doubling, a page of 20 chat messages (7 KiB)
/// took six reallocations and copies.
const BODY_CAPACITY: usize = 4096;

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        let mut body = Vec::with_capacity(BODY_CAPACITY);
        match serde_json::to_writer(&mut body, &self.0) {
            Ok(()) => ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response(),
            Err(e) => ApiError::Internal(format!("could not serialize the response: {e}")).into_response(),
        }
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

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, ApiError> {
        let body = <axum::Json<Object<T>> as axum::extract::OptionalFromRequest<S>>::from_request(req, state).await?;
        Ok(body.map(|axum::Json(Object(value))| Json(value)))
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

/// A whole number in a JSON body, written with or without a zero fraction
/// (`3` or `3.0`): JSON Schema's `integer` is a value, not a spelling, so a
/// document that says `integer` admits both, and clients that compute with
/// floats send the second. Anything else that is not a whole number of `T`'s
/// range is refused like a wrong type. Use through [`whole`], [`opt_whole`]
/// and [`nullable_whole`].
struct Whole<T>(T);

impl<'de, T: TryFrom<i64>> serde::Deserialize<'de> for Whole<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::{Error, Unexpected};
        let number = serde_json::Number::deserialize(deserializer)?;
        // i64::MAX as f64 rounds up to 2^63, which is out of range.
        let integral = |f: f64| f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64;
        #[allow(clippy::cast_possible_truncation)]
        let whole = number.as_i64().or_else(|| number.as_f64().filter(|f| integral(*f)).map(|f| f as i64));
        whole.and_then(|v| T::try_from(v).ok()).map(Whole).ok_or_else(|| {
            let expected = format!("a whole number that fits {}", std::any::type_name::<T>());
            D::Error::invalid_value(Unexpected::Other(&number.to_string()), &expected.as_str())
        })
    }
}

/// An integer field that takes `3.0` as `3` (see `Whole`):
/// `#[serde(deserialize_with = "whole")]`.
pub fn whole<'de, T, D>(deserializer: D) -> Result<T, D::Error>
where
    T: TryFrom<i64>,
    D: serde::Deserializer<'de>,
{
    use serde::Deserialize;
    Whole::deserialize(deserializer).map(|Whole(v)| v)
}

/// [`whole`] for an optional field: `#[serde(default, deserialize_with = "opt_whole")]`.
pub fn opt_whole<'de, T, D>(deserializer: D) -> Result<Option<T>, D::Error>
where
    T: TryFrom<i64>,
    D: serde::Deserializer<'de>,
{
    use serde::Deserialize;
    Option::<Whole<T>>::deserialize(deserializer).map(|v| v.map(|Whole(v)| v))
}

/// [`whole`] for a field where `null` clears the value, like [`nullable`]:
/// `#[serde(default, deserialize_with = "nullable_whole")]`.
pub fn nullable_whole<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: TryFrom<i64>,
    D: serde::Deserializer<'de>,
{
    opt_whole(deserializer).map(Some)
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
    struct Numbers {
        #[serde(default, deserialize_with = "super::whole")]
        priority: i32,
        #[serde(default, deserialize_with = "super::opt_whole")]
        port: Option<i32>,
        #[serde(default, deserialize_with = "super::nullable_whole")]
        limit: Option<Option<i64>>,
    }

    fn numbers(json: &str) -> Result<Numbers, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Change {
        name: Option<String>,
        #[serde(default)]
        port: Option<i32>,
    }

    fn body<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, String> {
        serde_json::from_str::<super::Object<T>>(json).map(|super::Object(v)| v).map_err(|e| e.to_string())
    }

    #[test]
    fn a_body_is_an_object_never_an_array_of_fields() {
        assert_eq!(body::<Change>(r#"{"name": "a"}"#), Ok(Change { name: Some("a".into()), port: None }));
        for bad in [r#"[null, null]"#, r#"["a", 1]"#, r#""a""#, "null"] {
            assert!(body::<Change>(bad).is_err(), "{bad}");
        }
        assert!(body::<Change>(r#"{"name": "a", "role": "admin"}"#).unwrap_err().contains("unknown field `role`"));
        assert_eq!(body::<Option<Change>>("null"), Ok(None));
        assert_eq!(body::<Option<Change>>(r#"{"port": 1}"#), Ok(Some(Change { name: None, port: Some(1) })));
        assert!(body::<Option<Change>>("[null]").is_err());
    }

    #[test]
    fn whole_numbers_may_be_written_with_a_zero_fraction() {
        let n = numbers(r#"{"priority": 3.0, "port": 8080, "limit": -2.0}"#).unwrap();
        assert_eq!((n.priority, n.port, n.limit), (3, Some(8080), Some(Some(-2))));
        let n = numbers(r#"{"port": null, "limit": null}"#).unwrap();
        assert_eq!((n.priority, n.port, n.limit), (0, None, Some(None)));
        let n = numbers("{}").unwrap();
        assert_eq!((n.port, n.limit), (None, None));
        for bad in [r#"{"priority": 3.5}"#, r#"{"priority": 2147483648}"#, r#"{"limit": 1e300}"#] {
            let e = numbers(bad).unwrap_err();
            assert!(e.contains("whole number that fits i32") || e.contains("fits i64"), "{bad}: {e}");
        }
        assert!(numbers(r#"{"port": "80"}"#).is_err(), "a string is not a number");
    }

    #[test]
    fn serde_messages_name_their_field() {
        assert_eq!(field_of("unknown field `role`, expected one of `name`"), "role");
        assert_eq!(field_of("missing field `email` at line 1 column 2"), "email");
        assert_eq!(field_of("settings: invalid type: string \"x\", expected a map"), "settings");
        assert_eq!(field_of("invalid type: integer `1`, expected a string"), "body");
    }
}
