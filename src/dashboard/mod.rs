//! The web dashboard: the static single-page app in `dashboard/` (plain
//! JavaScript, no build step, a vendored uPlot for charts) embedded in the
//! binary and served at `/` (the app shell) and `/dashboard/...` (its
//! assets). The app talks only to the documented API with the admin's
//! session token; this module owns nothing but serving the files.
//!
//! These routes are deliberately not in the OpenAPI document (they are not
//! API). Content types come from the file extension. `vendor/` files carry
//! their version in the name and are cached for a year as immutable; every
//! other file is `no-cache` with a strong ETag, so a browser revalidates and
//! gets a 304 until the binary changes. HTML gets a content security policy
//! that allows only this origin (no CDN, no inline script).

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use include_dir::{Dir, include_dir};
use sha2::{Digest, Sha256};

use crate::http::{ApiError, AppState};

static ASSETS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/dashboard");

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
                   connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/dashboard", get(index))
        .route("/dashboard/", get(index))
        .route("/dashboard/{*path}", get(asset))
}

/// The content type for a file name, by extension.
pub fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase()).as_deref() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn etag(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    format!("\"{}\"", hex::encode(&digest[..16]))
}

fn serve(path: &str, headers: &HeaderMap) -> Option<Response> {
    let file = ASSETS.get_file(path)?;
    let body = file.contents();
    let tag = etag(body);
    let cache = if path.starts_with("vendor/") { "public, max-age=31536000, immutable" } else { "no-cache" };
    let mut out = if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"))
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, HeaderValue::from_static(content_type(path)))], body).into_response()
    };
    let h = out.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(v) = HeaderValue::from_str(&tag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if path.ends_with(".html") {
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    Some(out)
}

async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
        .unwrap_or_else(|| ApiError::Internal("dashboard/index.html is missing".into()).into_response())
}

async fn asset(uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path().trim_start_matches("/dashboard/");
    // include_dir paths never contain `..`; refusing them keeps the intent plain.
    let found = if path.split('/').any(|seg| seg.is_empty() || seg == "." || seg == "..") {
        None
    } else {
        serve(path, &headers)
    };
    found.unwrap_or_else(|| {
        ApiError::NoRoute(format!("no dashboard file {}; the dashboard is at /", uri.path())).into_response()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_file_has_a_known_content_type() {
        fn walk(dir: &Dir<'_>) {
            for file in dir.files() {
                let path = file.path().to_string_lossy();
                assert_ne!(content_type(&path), "application/octet-stream", "{path}");
            }
            for sub in dir.dirs() {
                walk(sub);
            }
        }
        walk(&ASSETS);
        assert!(ASSETS.get_file("index.html").is_some());
    }

    #[test]
    fn content_types_by_extension() {
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("vendor/uPlot-1.6.32.min.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("app.CSS"), "text/css; charset=utf-8");
    }
}
