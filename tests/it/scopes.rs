//! Access decided per route: every operation of the OpenAPI document
//! declares the scope it needs, and the server enforces exactly that. A new
//! route that declares none fails the first test; one whose declaration the
//! server does not honour fails the sweep.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::app::TestApp;
use devx::accounts::RouteScopes;
use devx::accounts::model::Scope;

/// Operations anyone may call, without a token (some answer a signed-in
/// caller more, and then declare the scope that caller's token needs).
const PUBLIC: &[&str] = &[
    "GET /health",
    "GET /livez",
    "GET /readyz",
    "POST /api/auth/register",
    "POST /api/auth/login",
    "POST /api/hooks/deploy/{service}",
    "GET /api/templates",
    "GET /api/templates/categories",
    "GET /api/templates/technologies",
    "GET /api/templates/categories/{slug}",
    "GET /api/templates/technologies/{slug}",
    "GET /api/templates/{slug}",
];

/// Every operation: method, path template, the whole operation.
fn operations(doc: &Value) -> Vec<(Method, String, Value)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            if let Ok(m) = Method::from_bytes(method.to_uppercase().as_bytes()) {
                ops.push((m, path.clone(), op.clone()));
            }
        }
    }
    ops
}

/// A concrete path for a template: ids that exist nowhere, words for names.
fn concrete(path: &str) -> String {
    path.replace("{id}", "00000000-0000-4000-8000-000000000000")
        .replace("{slug}", "no-such-template")
        .replace("{name}", "build")
        .replace("{key}", "no.such.key")
        .replace("{number}", "1")
}

#[test]
fn every_route_that_takes_a_token_declares_its_scope_and_no_read_changes_state() {
    let (_, doc) = devx::app::api();
    let scopes = RouteScopes::from_openapi(&doc).unwrap_or_else(|e| panic!("{e}"));
    let doc = serde_json::to_value(&doc).unwrap();
    let mut public = Vec::new();
    for (method, path, op) in operations(&doc) {
        let anonymous = op["security"].as_array().is_none_or(|r| r.iter().any(|r| r == &json!({})));
        if anonymous {
            public.push(format!("{method} {path}"));
        }
        match scopes.needed(&method, &path) {
            None => assert!(anonymous, "{method} {path} takes a token but declares no scope"),
            Some(Scope::Write) => {
                assert_ne!(method, Method::GET, "GET {path} needs `write`: a GET must never change state");
            }
            Some(_) => {}
        }
    }
    public.sort();
    let mut expected: Vec<String> = PUBLIC.iter().map(ToString::to_string).collect();
    expected.sort();
    assert_eq!(public, expected, "the operations without a scope are exactly the public ones");
    assert!(scopes.iter().count() > 80, "the authenticated routes are all declared");
    assert!(scopes.iter().all(|(m, _, s)| *m != Method::GET || s != Scope::Write));
}

#[tokio::test]
async fn keys_and_roles_get_exactly_the_routes_their_scopes_allow() {
    let app = TestApp::spawn().await;
    let user = app.register("user@example.com").await;
    let admin = app.admin("admin@example.com").await;
    let key = async |who: &str, scopes: Value| {
        let (status, body) = app.post("/api/api-keys", Some(who), json!({"name": "k", "scopes": scopes})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["key"].as_str().expect("the new key").to_string()
    };
    let read_key = key(&user.token, json!(["read"])).await;
    let write_key = key(&user.token, json!(["write"])).await;
    let admin_read_key = key(&admin.token, json!(["read"])).await;
    let admin_write_key = key(&admin.token, json!(["write"])).await;

    let (_, doc) = devx::app::api();
    let scopes = RouteScopes::from_openapi(&doc).unwrap();
    let doc = serde_json::to_value(&doc).unwrap();
    let mut checked = 0;
    for (method, path, _) in operations(&doc) {
        // Routes that end the caller's identity would end this test's.
        if path == "/api/auth/logout" || (path == "/api/auth/me" && method == Method::DELETE) {
            continue;
        }
        let Some(needed) = scopes.needed(&method, &path) else { continue };
        let url = concrete(&path);
        let body = (method != Method::GET && method != Method::DELETE).then(|| json!({}));
        let refused: Vec<(&str, &str)> = match needed {
            Scope::Read => vec![],
            Scope::Write => vec![("a read-only key", read_key.as_str()), ("an admin's read-only key", &admin_read_key)],
            Scope::Admin => vec![
                ("a user's session", user.token.as_str()),
                ("a user's write key", &write_key),
                ("an admin's write key", &admin_write_key),
            ],
        };
        for (who, token) in refused {
            let (status, answer) = app.call(method.clone(), &url, Some(token), body.clone()).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path} with {who}: {answer}");
            checked += 1;
        }
        // The weakest credential that holds the scope gets past the check.
        let allowed = match needed {
            Scope::Read => read_key.as_str(),
            Scope::Write => write_key.as_str(),
            Scope::Admin => admin.token.as_str(),
        };
        let (status, answer) = app.call(method.clone(), &url, Some(allowed), body.clone()).await;
        assert!(
            status != StatusCode::FORBIDDEN && status != StatusCode::UNAUTHORIZED && !status.is_server_error(),
            "{method} {path} with the `{}` scope: {status} {answer}",
            needed.as_str()
        );
        checked += 1;
    }
    assert!(checked > 100, "the sweep covered the routes ({checked} calls)");
}

#[tokio::test]
async fn an_empty_query_parameter_is_refused_not_read_as_no_filter() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let (status, body) = app.get("/api/projects?status=", Some(&ada.token)).await;
    crate::app::assert_problem(status, &body, StatusCode::BAD_REQUEST);
    assert!(body["detail"].as_str().unwrap().contains("`status` is empty"), "{body}");
    let (status, _) = app.get("/api/projects?status=active", Some(&ada.token)).await;
    assert_eq!(status, StatusCode::OK);
}
