//! The answer of an operation that creates something: `201 Created`, the new
//! resource as JSON, `Location` naming where it can be read, and its `ETag`
//! when it has a version (so a client can write it next without a GET).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::etag::{ETag, Versioned};

/// `201 Created` with `Location` and the new resource as the JSON body.
#[derive(Debug)]
pub struct Created<T> {
    location: String,
    etag: Option<ETag>,
    body: T,
}

impl<T> Created<T> {
    /// `location` is the path a GET reads the new resource at, e.g.
    /// `/api/projects/{id}`.
    pub fn at(location: impl Into<String>, body: T) -> Self {
        Created { location: location.into(), etag: None, body }
    }

    /// [`Created::at`] with the new resource's `ETag`.
    pub fn versioned(location: impl Into<String>, body: T) -> Self
    where
        T: Versioned,
    {
        Created { location: location.into(), etag: Some(body.etag()), body }
    }

    pub fn location(&self) -> &str {
        &self.location
    }
}

impl<T: Serialize> IntoResponse for Created<T> {
    fn into_response(self) -> Response {
        let mut response = (StatusCode::CREATED, self.etag, super::Json(self.body)).into_response();
        // Paths are built from ids, slugs and keys the API validated; one that
        // is not a valid header value would be a bug, answered without it.
        match HeaderValue::from_str(&self.location) {
            Ok(value) => {
                response.headers_mut().insert(header::LOCATION, value);
            }
            Err(_) => tracing::error!(location = %self.location, "a Location that is not a header value"),
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_is_201_with_location_and_json() {
        let response = Created::at("/api/tasks/42", serde_json::json!({"id": 42})).into_response();
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(response.headers()[header::LOCATION], "/api/tasks/42");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    }
}
