//! Input validation that collects every problem of a request before answering,
//! so a client fixes them all in one round. Text is at least its minimum
//! once trimmed and at most its maximum as sent, and is refused if it holds
//! NUL bytes (PostgreSQL cannot store them); JSON values are checked for
//! shape and size.

use serde_json::Value;

use super::error::{ApiError, FieldError};

#[derive(Debug, Default)]
pub struct Validator {
    errors: Vec<FieldError>,
}

impl Validator {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn error(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    pub fn check(&mut self, ok: bool, field: &str, message: impl Into<String>) {
        if !ok {
            self.error(field, message);
        }
    }

    /// At least `min` characters after trimming (1: not blank), at most `max`
    /// as given, no NUL. The most is counted on the value as sent, which is
    /// what a handler that keeps it untrimmed stores, and what an OpenAPI
    /// `maxLength` counts.
    pub fn text(&mut self, field: &str, value: &str, min: usize, max: usize) {
        if value.contains('\0') {
            return self.error(field, "must not contain NUL characters");
        }
        let len = value.chars().count();
        if value.trim().chars().count() < min {
            self.error(
                field,
                if min == 1 { "must not be empty".to_string() } else { format!("must be at least {min} characters") },
            );
        } else if len > max {
            self.error(field, format!("must be at most {max} characters (got {len})"));
        }
    }

    pub fn opt_text(&mut self, field: &str, value: Option<&str>, min: usize, max: usize) {
        if let Some(v) = value {
            self.text(field, v, min, max);
        }
    }

    /// At most 254 characters, one `@`, no whitespace, a dot inside the domain.
    pub fn email(&mut self, field: &str, value: &str) {
        let ok = value.chars().count() <= 254
            && !value.contains(char::is_whitespace)
            && value.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            });
        self.check(ok, field, "must be an email address such as ada@example.com");
    }

    /// An http(s) URL of at most 2048 characters, written with the
    /// characters a URL may hold (RFC 3986: anything else percent-encoded),
    /// without an IPv6 literal (`[...]`): the pattern
    /// `^https?://[A-Za-z0-9\-._~:/?#@!$&'()*+,;=%]+$`. Clients parse such a
    /// URL without surprises (Python's `urlsplit` raises on a stray `[`).
    pub fn url(&mut self, field: &str, value: &str) {
        let ok = value.chars().count() <= 2048
            && !value.contains(char::is_whitespace)
            && !value.contains('\0')
            && (value.starts_with("https://") || value.starts_with("http://"))
            && value.split_once("://").is_some_and(|(_, rest)| !rest.is_empty())
            && value.chars().all(|c| c.is_ascii_alphanumeric() || "-._~:/?#@!$&'()*+,;=%".contains(c));
        self.check(
            ok,
            field,
            "must be an http:// or https:// URL of at most 2048 characters, other characters than \
             A-Z a-z 0-9 - . _ ~ : / ? # @ ! $ & ' ( ) * + , ; = percent-encoded (e.g. https://example.com/a%20b.png)",
        );
    }

    /// A TCP port, 1..65535.
    pub fn port(&mut self, field: &str, port: i32) {
        self.check((1..=65535).contains(&port), field, format!("must be a port from 1 to 65535 (got {port})"));
    }

    /// A slug as the database's `*_slug_check` constraints have it: words of
    /// lowercase letters and digits joined by single dashes; at most 63
    /// characters.
    pub fn slug(&mut self, field: &str, value: &str) {
        let ok = (1..=63).contains(&value.len())
            && value
                .split('-')
                .all(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
        self.check(
            ok,
            field,
            "must be 1-63 lowercase letters and digits, words joined by single dashes (e.g. my-service)",
        );
    }

    /// A JSON object of at most `max_bytes` serialized, with no NUL characters.
    pub fn json_object(&mut self, field: &str, value: &Value, max_bytes: usize) {
        if !value.is_object() {
            return self.error(field, "must be a JSON object");
        }
        self.json_value(field, value, max_bytes);
    }

    /// [`json_object`](Self::json_object) when the value is given.
    pub fn opt_json_object(&mut self, field: &str, value: Option<&Value>, max_bytes: usize) {
        if let Some(value) = value {
            self.json_object(field, value, max_bytes);
        }
    }

    pub fn json_array(&mut self, field: &str, value: &Value, max_bytes: usize) {
        if !value.is_array() {
            return self.error(field, "must be a JSON array");
        }
        self.json_value(field, value, max_bytes);
    }

    /// Any JSON value of at most `max_bytes` serialized, with no NUL characters.
    pub fn json_value(&mut self, field: &str, value: &Value, max_bytes: usize) {
        if json_has_nul(value) {
            return self.error(field, "must not contain NUL characters");
        }
        let size = serde_json::to_vec(value).map_or(usize::MAX, |v| v.len());
        if size > max_bytes {
            self.error(field, format!("is {size} bytes; at most {max_bytes} are allowed"));
        }
    }

    /// Whether no problem was found so far.
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty()
    }

    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() { Ok(()) } else { Err(ApiError::Invalid(self.errors)) }
    }
}

fn json_has_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(json_has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || json_has_nul(v)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_collected() {
        let mut v = Validator::new();
        v.text("name", "", 1, 10);
        v.text("bio", "a\0b", 0, 10);
        v.email("email", "not-an-email");
        v.url("avatar_url", "ftp://x");
        v.json_object("settings", &serde_json::json!([1]), 100);
        v.opt_json_object("labels", Some(&serde_json::json!("web")), 100);
        v.opt_json_object("metadata", None, 100);
        let Err(ApiError::Invalid(errors)) = v.finish() else { panic!("expected errors") };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["name", "bio", "email", "avatar_url", "settings", "labels"]);
    }

    #[test]
    fn good_values_pass() {
        let mut v = Validator::new();
        v.text("name", "Ada", 1, 10);
        v.email("email", "ada@example.com");
        v.url("avatar_url", "https://example.com/a.png");
        v.slug("slug", "my-service-2");
        v.json_object("settings", &serde_json::json!({"theme": "dark"}), 100);
        assert!(v.finish().is_ok());
    }

    #[test]
    fn text_is_not_blank_and_at_most_its_length_as_sent() {
        let mut v = Validator::new();
        v.text("name", " Ada ", 1, 5);
        v.text("title", "   ", 1, 10);
        v.text("description", &format!("a{}", "\n".repeat(10)), 0, 10);
        let Err(ApiError::Invalid(errors)) = v.finish() else { panic!("expected errors") };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["title", "description"]);
    }

    #[test]
    fn a_url_is_at_most_2048_ascii_characters_the_rest_percent_encoded() {
        let mut v = Validator::new();
        v.url("ok", &format!("https://{}", "e".repeat(2040)));
        assert!(v.finish().is_ok());
        let mut v = Validator::new();
        v.url("long", &format!("https://{}", "e".repeat(2041)));
        assert!(v.finish().is_err());
        let mut v = Validator::new();
        v.url("raw", "https://example.com/caf\u{e9}");
        assert!(v.finish().is_err(), "non-ASCII characters must be percent-encoded");
        let mut v = Validator::new();
        v.url("encoded", "https://example.com/caf%C3%A9");
        assert!(v.finish().is_ok());
    }

    #[test]
    fn nul_inside_json_is_found() {
        let mut v = Validator::new();
        v.json_object("metadata", &serde_json::json!({"a": ["ok", "bad\u{0}"]}), 1000);
        assert!(v.finish().is_err());
    }
}
