//! The web dashboard as HTTP sees it: the app shell at `/`, every asset it
//! references with its content type and cache policy, the API's 404 left
//! alone, and the dashboard kept out of the OpenAPI document. (The
//! real-browser test is separate.)

use reqwest::StatusCode;
use serde_json::Value;

use crate::app::{TestApp, assert_problem};

/// Every `src="/..."` and `href="/..."` in an HTML page.
fn referenced_paths(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["src=\"", "href=\""] {
        let mut rest = html;
        while let Some(i) = rest.find(attr) {
            rest = &rest[i + attr.len()..];
            let end = rest.find('"').expect("closing quote");
            let value = &rest[..end];
            if value.starts_with('/') {
                out.push(value.to_string());
            }
            rest = &rest[end..];
        }
    }
    out
}

fn expected_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, e)| e) {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        other => panic!("an asset with an unexpected extension: {path} ({other:?})"),
    }
}

#[tokio::test]
async fn the_app_shell_and_every_asset_it_references_are_served() {
    let app = TestApp::spawn().await;
    let resp = app.http.get(app.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let headers = resp.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["cache-control"], "no-cache");
    assert!(headers["content-security-policy"].to_str().unwrap().contains("default-src 'self'"));
    let etag = headers["etag"].to_str().unwrap().to_string();
    let html = resp.text().await.unwrap();
    assert!(html.contains("data-app=\"devx-dashboard\""), "the app shell: {html}");
    assert!(html.contains("id=\"login-form\""));

    // Revalidation with the ETag: 304.
    let resp = app.http.get(app.url("/")).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);

    let assets = referenced_paths(&html);
    assert!(assets.len() >= 4, "{assets:?}");
    assert!(assets.iter().any(|a| a.ends_with("/app.js")) && assets.iter().any(|a| a.contains("uPlot")));
    for path in &assets {
        assert!(path.starts_with("/dashboard/"), "{path} is served by the dashboard, not a CDN");
        let resp = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        assert_eq!(resp.headers()["content-type"], expected_type(path), "{path}");
        assert_eq!(resp.headers()["x-content-type-options"], "nosniff", "{path}");
        let cache = resp.headers()["cache-control"].to_str().unwrap().to_string();
        if path.starts_with("/dashboard/vendor/") {
            assert!(cache.contains("immutable"), "{path}: {cache}");
        } else {
            assert_eq!(cache, "no-cache", "{path}");
        }
        assert!(!resp.bytes().await.unwrap().is_empty(), "{path}");
    }

    // HEAD works too (a browser or proxy may ask).
    let resp = app.http.head(app.url("/dashboard/app.js")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn unknown_paths_stay_problems() {
    let app = TestApp::spawn().await;
    for path in ["/api/unknown", "/dashboard/nope.js", "/dashboard/../Cargo.toml", "/elsewhere"] {
        let resp = app.http.get(app.url(path)).send().await.unwrap();
        let status = resp.status();
        assert_eq!(resp.headers()["content-type"], "application/problem+json", "{path}");
        let body: Value = resp.json().await.unwrap();
        assert_problem(status, &body, StatusCode::NOT_FOUND);
        assert_eq!(body["type"], "/problems/no-route", "{path}");
    }
    // A wrong method on the dashboard is the API's 405, not a page.
    let resp = app.http.post(app.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn the_dashboard_is_not_in_the_openapi_document() {
    let app = TestApp::spawn().await;
    let (status, doc) = app.get("/api/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    let paths = doc["paths"].as_object().unwrap();
    assert!(
        paths.keys().all(|p| p.starts_with("/api/") || ["/health", "/livez", "/readyz"].contains(&p.as_str())),
        "{:?}",
        paths.keys()
    );
}

/// The app writes data to the page only as text: no `innerHTML`,
/// `outerHTML`, `insertAdjacentHTML`, `document.write` or `eval`, and
/// nothing loaded from another origin.
#[test]
fn the_app_never_writes_html_from_data() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboard");
    for name in ["app.js", "index.html"] {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        for banned in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "http://", "https://"]
        {
            assert!(!text.contains(banned), "{name} uses {banned}");
        }
    }
}
