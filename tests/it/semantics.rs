//! The HTTP semantics clients build on, through real HTTP: every 201 names
//! the new resource in `Location`; every resource that is PATCHed or PUT
//! carries an `ETag`, and a write with a stale `If-Match` is 412 and changes
//! nothing, unless its body is invalid: the body is judged first (422); a POST that creates or starts something takes an
//! `Idempotency-Key`, and its retry replays the first answer.
//!
//! The sweeps walk the OpenAPI document, so a new create route or a new
//! PATCH/PUT route fails them until it is covered here.

use std::collections::BTreeSet;
use std::time::Duration;

use devx::retention::{self, RunOptions};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::app::{Session, TestApp, assert_problem};
use crate::support::{count, id, one};

/// An answer with its headers.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn etag(&self) -> String {
        self.header("etag").unwrap_or_else(|| panic!("no ETag on a {} answer: {}", self.status, self.body)).to_string()
    }
}

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> Answer {
    let mut request = app.request(method, path, token);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap_or_default();
    let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
    Answer { status, headers, body }
}

/// Every operation of the served document as `METHOD /path/{template}`,
/// with the operation.
async fn operations(app: &TestApp) -> Vec<(String, Value)> {
    let (_, doc) = app.get("/api/openapi.json", None).await;
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            ops.push((format!("{} {path}", method.to_uppercase()), op.clone()));
        }
    }
    ops
}

fn declares_header(op: &Value, name: &str) -> bool {
    op["parameters"].as_array().into_iter().flatten().any(|p| p["in"] == "header" && p["name"] == name)
}

/// Backends of the test's database waiting on a lock, polled until there are `n`.
async fn until_lock_waiters(app: &TestApp, n: i64) {
    let admin = app.db.admin_client().await;
    for _ in 0..250 {
        let waiting: i64 = one(
            &admin,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'",
            &[&app.db.name()],
        )
        .await;
        if waiting >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{n} requests never queued on the row lock");
}

/// A transaction holding `FOR UPDATE` on one row, until it is rolled back.
async fn lock_row(app: &TestApp, table: &str, id: &str) -> tokio_postgres::Client {
    let blocker = app.db.client().await;
    blocker.batch_execute("BEGIN").await.unwrap();
    blocker.execute(&format!("SELECT 1 FROM {table} WHERE id = $1::text::uuid FOR UPDATE"), &[&id]).await.unwrap();
    blocker
}

/// Which field of a created body identifies it in the body its `Location` reads.
fn identifies(created: &Value, read: &Value) -> bool {
    let same = |a: &Value, b: &Value| !a.is_null() && a == b;
    if created.get("first_seq").is_some() {
        return same(&created["first_seq"], &read["items"][0]["seq"]);
    }
    same(&created["id"], &read["id"])
        || same(&created["user"]["id"], &read["id"])
        || same(&created["api_key"]["id"], &read["id"])
        || (created.get("id").is_none() && same(&created["slug"], &read["slug"]))
        || (created.get("id").is_none() && same(&created["key"], &read["key"]))
}

/// Sends one create, checks its `Location` resolves to what it made (read
/// with `reader`'s token, or the new session's), and records the operation.
#[allow(clippy::too_many_arguments)]
async fn create(
    app: &TestApp,
    covered: &mut BTreeSet<String>,
    op: &str,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> Value {
    let answer = send(app, method, path, token, Some(&body), &[]).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{op}: {}", answer.body);
    let location = answer.header("location").unwrap_or_else(|| panic!("{op}: 201 without Location")).to_string();
    assert!(location.starts_with("/api/"), "{op}: Location {location}");
    let reader = answer.body["token"].as_str().or(token);
    let read = send(app, Method::GET, &location, reader, None, &[]).await;
    assert_eq!(read.status, StatusCode::OK, "{op}: GET {location}: {}", read.body);
    assert!(
        identifies(&answer.body, &read.body),
        "{op}: GET {location} is not what was made:\n{}\n{}",
        answer.body,
        read.body
    );
    let tagged = answer.header("etag").is_some();
    if let Some(etag) = answer.header("etag") {
        assert_eq!(read.header("etag"), Some(etag), "{op}: the 201's ETag is the version a GET reads");
    }
    covered.insert(format!("{op}{}", if tagged { " +ETag" } else { "" }));
    answer.body
}

fn template_body(slug: &str) -> Value {
    json!({
        "slug": slug, "name": "Hello Rust", "description": "A tiny binary", "category": "cli",
        "files": {"src/main.rs": "fn main() {}"}, "tech_stack": ["rust"], "estimated_setup_time": 2,
        "complexity": "simple"
    })
}

#[tokio::test]
async fn every_201_names_the_new_resource_in_location() {
    let app = crate::runtime::spawn_with_key().await;
    let ann = app.register("ann@example.com").await;
    let admin = app.admin("root@example.com").await;
    let t = Some(ann.token.as_str());
    let a = Some(admin.token.as_str());
    let mut covered = BTreeSet::new();
    let c = &mut covered;
    let p = create(&app, c, "POST /api/projects", Method::POST, "/api/projects", t, json!({"name": "loc"})).await;
    let p = id(&p);
    let nested = |what: &str| format!("/api/projects/{p}/{what}");
    for (what, body) in [
        ("containers", json!({"container_id": "rt-loc", "name": "web"})),
        ("services", json!({"name": "API", "slug": "svc-loc"})),
        ("deployments", json!({})),
        ("modifications", json!({"request": "add auth"})),
        ("files", json!({"file_path": "src/main.rs"})),
        ("messages", json!({"session_id": "s", "role": "user", "content": "hello"})),
    ] {
        let op = format!("POST /api/projects/{{id}}/{what}");
        create(&app, c, &op, Method::POST, &nested(what), t, body).await;
    }
    let (_, svc) = app.post(&nested("services"), t, json!({"name": "Hooked", "slug": "svc-hook"})).await;
    let path = format!("/api/services/{}/deploy-token", id(&svc));
    create(&app, c, "POST /api/services/{id}/deploy-token", Method::POST, &path, t, json!({})).await;
    let body = json!({"container_id": "rt-own", "name": "own"});
    create(&app, c, "POST /api/containers", Method::POST, "/api/containers", t, body).await;
    let d = create(&app, c, "POST /api/projects/{id}/deployments", Method::POST, &nested("deployments"), t, json!({}))
        .await;
    let (status, _) = app.patch(&format!("/api/deployments/{}", id(&d)), t, json!({"status": "failed"})).await;
    assert_eq!(status, StatusCode::OK);
    let path = format!("/api/deployments/{}/redeploy", id(&d));
    create(&app, c, "POST /api/deployments/{id}/redeploy", Method::POST, &path, t, json!({})).await;
    let body = json!({"service_id": id(&svc)});
    let (status, sd) = app.post(&nested("deployments"), t, body).await;
    assert_eq!(status, StatusCode::CREATED, "{sd}");
    let path = format!("/api/deployments/{}/rollback", id(&sd));
    create(&app, c, "POST /api/deployments/{id}/rollback", Method::POST, &path, t, json!({})).await;
    let body = json!({"generation_type": "service", "project_id": p});
    create(&app, c, "POST /api/generations", Method::POST, "/api/generations", t, body).await;
    let task =
        create(&app, c, "POST /api/tasks", Method::POST, "/api/tasks", t, json!({"project_id": p, "title": "t"})).await;
    let path = format!("/api/tasks/{}/executions", id(&task));
    let x = create(
        &app,
        c,
        "POST /api/tasks/{id}/executions",
        Method::POST,
        &path,
        t,
        json!({"agent_type": "claude-code"}),
    )
    .await;
    let path = format!("/api/deployments/{}/logs", id(&d));
    let body = json!({"lines": [{"text": "build started"}]});
    create(&app, c, "POST /api/deployments/{id}/logs", Method::POST, &path, t, body).await;
    let path = format!("/api/executions/{}/logs", id(&x));
    let lines = json!({"lines": [{"message": "one"}, {"message": "two"}]});
    create(&app, c, "POST /api/executions/{id}/logs", Method::POST, &path, t, lines.clone()).await;
    // A second batch's Location starts at its own first line.
    let again = create(&app, c, "POST /api/executions/{id}/logs", Method::POST, &path, t, lines).await;
    assert_eq!(again["first_seq"], 3);
    create(&app, c, "POST /api/errors", Method::POST, "/api/errors", t, json!({"error_type": "api", "message": "m"}))
        .await;
    let body = json!({"repository": "o/loc", "pr_number": 1});
    create(&app, c, "POST /api/pr-validations", Method::POST, "/api/pr-validations", t, body).await;
    create(&app, c, "POST /api/api-keys", Method::POST, "/api/api-keys", t, json!({"name": "ci"})).await;
    create(&app, c, "POST /api/templates", Method::POST, "/api/templates", a, template_body("hello-loc")).await;
    let body = json!({"slug": "loc-category", "name": "Loc"});
    create(&app, c, "POST /api/templates/categories", Method::POST, "/api/templates/categories", a, body).await;
    let body = json!({"slug": "loc-tech", "name": "Loc", "kind": "tool"});
    create(&app, c, "POST /api/templates/technologies", Method::POST, "/api/templates/technologies", a, body).await;
    let body = json!({"value": 1, "description": "a setting of this test"});
    let op = "PUT /api/admin/config/{key}";
    create(&app, c, op, Method::PUT, "/api/admin/config/semantics.test", a, body.clone()).await;
    let body = json!({"email": "new@example.com", "password": "correct horse battery"});
    create(&app, c, "POST /api/auth/register", Method::POST, "/api/auth/register", None, body).await;

    let creates: BTreeSet<String> = operations(&app)
        .await
        .into_iter()
        .filter(|(_, op)| op["responses"].get("201").is_some())
        .map(|(name, op)| {
            let headers = &op["responses"]["201"]["headers"];
            assert!(headers.get("Location").is_some(), "{name}: its 201 does not declare Location");
            if headers.get("ETag").is_some() { format!("{name} +ETag") } else { name }
        })
        .collect();
    assert_eq!(
        covered, creates,
        "every operation answering 201 is created here, its Location read back, and its ETag sent as declared"
    );
}

/// Operations that create something but take no key: their answers hold a
/// credential, which must not be stored.
const UNKEYED_CREATES: &[(&str, &str)] = &[
    ("POST /api/auth/register", "the answer holds a session token"),
    ("POST /api/api-keys", "the answer holds the new key"),
    ("POST /api/services/{id}/deploy-token", "the answer holds the new deploy token"),
];

#[tokio::test]
async fn every_post_that_creates_takes_an_idempotency_key_and_every_write_of_a_resource_if_match() {
    let app = TestApp::spawn().await;
    let ops = operations(&app).await;
    let gets: BTreeSet<&str> = ops.iter().filter_map(|(name, _)| name.strip_prefix("GET ")).collect();
    for (name, op) in &ops {
        let keyed = declares_header(op, "Idempotency-Key");
        if name.starts_with("POST ") && op["responses"].get("201").is_some() {
            let exempt = UNKEYED_CREATES.iter().any(|(n, _)| n == name);
            assert_eq!(
                keyed, !exempt,
                "{name}: a POST that creates takes an Idempotency-Key (or is listed with why not)"
            );
        }
        if keyed {
            assert!(name.starts_with("POST "), "{name}: only POSTs take an Idempotency-Key");
            for status in ["409", "422"] {
                assert!(op["responses"].get(status).is_some(), "{name}: declares no {status} for its key");
            }
        }
        if name.starts_with("PATCH ") || name.starts_with("PUT ") {
            assert!(declares_header(op, "If-Match"), "{name}: takes no If-Match");
            assert!(op["responses"].get("412").is_some(), "{name}: declares no 412");
            assert!(op["responses"]["200"]["headers"].get("ETag").is_some(), "{name}: its 200 declares no ETag");
            // The resource it writes is read where it is written, or at its parent.
            let path = name.split_once(' ').unwrap().1;
            // (`.../{id}/status` is read at `.../{id}`; `.../{id}/checks/{name}` at `.../{id}`.)
            let read = [Some(path), path.rsplit_once('/').map(|(up, _)| up), path.rsplitn(3, '/').nth(2)]
                .into_iter()
                .flatten()
                .find(|p| gets.contains(p))
                .unwrap_or_else(|| panic!("{name}: no GET of what it writes"));
            let get =
                &ops.iter().find(|(n, _)| *n == format!("GET {read}")).unwrap_or_else(|| panic!("{name}: no GET")).1;
            assert!(get["responses"]["200"]["headers"].get("ETag").is_some(), "GET {read}: declares no ETag");
        }
    }
}

/// One write of a resource, checked with `If-Match`.
struct Write {
    op: &'static str,
    read: String,
    method: Method,
    path: String,
    token: String,
    first: Value,
    second: Value,
    /// The field the first write sets and a refused second write must not change.
    field: &'static str,
    /// A body a field rule refuses: with a stale `If-Match` too, it is a 422,
    /// because the body is judged before the precondition.
    invalid: Value,
}

impl Write {
    fn refusing(self, invalid: Value) -> Self {
        Write { invalid, ..self }
    }
}

async fn check_conditional_write(app: &TestApp, w: &Write) {
    let t = Some(w.token.as_str());
    let before = send(app, Method::GET, &w.read, t, None, &[]).await;
    assert_eq!(before.status, StatusCode::OK, "{}: GET {}: {}", w.op, w.read, before.body);
    let v0 = before.etag();

    let written = send(app, w.method.clone(), &w.path, t, Some(&w.first), &[("if-match", &v0)]).await;
    assert_eq!(written.status, StatusCode::OK, "{}: a current If-Match: {}", w.op, written.body);
    let v1 = written.etag();
    assert_ne!(v1, v0, "{}: the ETag changes with the write", w.op);
    let after = send(app, Method::GET, &w.read, t, None, &[]).await;
    assert_eq!(after.etag(), v1, "{}: a GET after the write answers the write's ETag", w.op);

    let stale = send(app, w.method.clone(), &w.path, t, Some(&w.second), &[("if-match", &v0)]).await;
    let problem = assert_problem(stale.status, &stale.body, StatusCode::PRECONDITION_FAILED);
    assert!(problem["detail"].as_str().unwrap().contains("GET it again"), "{}: {problem}", w.op);
    let unchanged = send(app, Method::GET, &w.read, t, None, &[]).await;
    assert_eq!(unchanged.etag(), v1, "{}: a refused write changes nothing", w.op);
    assert_eq!(unchanged.body[w.field], after.body[w.field], "{}: {} kept", w.op, w.field);

    assert!(!w.invalid.is_null(), "{}: no invalid body to check the order with", w.op);
    let invalid = send(app, w.method.clone(), &w.path, t, Some(&w.invalid), &[("if-match", &v0)]).await;
    assert_eq!(
        invalid.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}: stale If-Match, invalid body: {}",
        w.op,
        invalid.body
    );
    assert_problem(invalid.status, &invalid.body, StatusCode::UNPROCESSABLE_ENTITY);
    let unchanged = send(app, Method::GET, &w.read, t, None, &[]).await;
    assert_eq!(unchanged.etag(), v1, "{}: an invalid write changes nothing", w.op);

    let malformed = send(app, w.method.clone(), &w.path, t, Some(&w.second), &[("if-match", "not-a-tag")]).await;
    assert_problem(malformed.status, &malformed.body, StatusCode::BAD_REQUEST);
    let any = send(app, w.method.clone(), &w.path, t, Some(&w.second), &[("if-match", "*")]).await;
    assert_eq!(any.status, StatusCode::OK, "{}: If-Match: * is no condition: {}", w.op, any.body);
    assert_ne!(any.etag(), v1, "{}", w.op);
}

#[tokio::test]
async fn the_etag_moves_with_each_write_and_a_stale_if_match_is_412_and_changes_nothing() {
    // A key: environment variables are sealed.
    let app = crate::runtime::spawn_with_key().await;
    let ann = app.register("ann@example.com").await;
    let admin = app.admin("root@example.com").await;
    let bob = app.register("bob@example.com").await;
    let t = Some(ann.token.as_str());
    let post = async |path: &str, body: Value| {
        let (status, v) = app.post(path, t, body).await;
        assert_eq!(status, StatusCode::CREATED, "{path}: {v}");
        id(&v)
    };
    let p = post("/api/projects", json!({"name": "tagged"})).await;
    let container = post(&format!("/api/projects/{p}/containers"), json!({"container_id": "rt-1", "name": "c"})).await;
    let service = post(&format!("/api/projects/{p}/services"), json!({"name": "S", "slug": "svc-tag"})).await;
    let deployment = post(&format!("/api/projects/{p}/deployments"), json!({})).await;
    let generation = post("/api/generations", json!({"generation_type": "service"})).await;
    let validation = post("/api/pr-validations", json!({"repository": "o/r", "pr_number": 2})).await;
    let reported = post("/api/pr-validations", json!({"repository": "o/r", "pr_number": 3})).await;
    let task = post("/api/tasks", json!({"project_id": p, "title": "t"})).await;
    for owner in [format!("/api/projects/{p}"), format!("/api/services/{service}")] {
        let (status, v) = app.call(Method::PUT, &format!("{owner}/env/MODE"), t, Some(json!({"value": "dev"}))).await;
        assert_eq!(status, StatusCode::OK, "{v}");
    }

    let user = |s: &Session| s.token.clone();
    let w = |op, read: String, method, path: String, token: String, first, second, field| Write {
        op,
        read,
        method,
        path,
        token,
        first,
        second,
        field,
        invalid: Value::Null,
    };
    let item = |path: String| (path.clone(), path);
    let writes = vec![
        {
            let (r, p) = item("/api/templates/axum-service".into());
            w(
                "PATCH /api/templates/{slug}",
                r,
                Method::PATCH,
                p,
                user(&admin),
                json!({"name": "A"}),
                json!({"name": "B"}),
                "name",
            )
            .refusing(json!({"name": ""}))
        },
        {
            let (r, p) = item("/api/templates/categories/web".into());
            let (a, b) = (json!({"name": "A"}), json!({"name": "B"}));
            w("PATCH /api/templates/categories/{slug}", r, Method::PATCH, p, user(&admin), a, b, "name")
                .refusing(json!({"name": ""}))
        },
        {
            let (r, p) = item("/api/templates/technologies/rust".into());
            let (a, b) = (json!({"name": "A"}), json!({"name": "B"}));
            w("PATCH /api/templates/technologies/{slug}", r, Method::PATCH, p, user(&admin), a, b, "name")
                .refusing(json!({"name": ""}))
        },
        {
            let (r, p) = item("/api/admin/config/retention.chat_messages".into());
            let (a, b) = (json!({"value": "7 months"}), json!({"value": "8 months"}));
            w("PUT /api/admin/config/{key}", r, Method::PUT, p, user(&admin), a, b, "value")
                .refusing(json!({"value": "soon"}))
        },
        {
            let (r, p) = item(format!("/api/containers/{container}"));
            w(
                "PATCH /api/containers/{id}",
                r,
                Method::PATCH,
                p,
                user(&ann),
                json!({"name": "a"}),
                json!({"name": "b"}),
                "name",
            )
            .refusing(json!({"name": ""}))
        },
        {
            let (r, p) = item(format!("/api/services/{service}"));
            w(
                "PATCH /api/services/{id}",
                r,
                Method::PATCH,
                p,
                user(&ann),
                json!({"name": "a"}),
                json!({"name": "b"}),
                "name",
            )
            .refusing(json!({"name": ""}))
        },
        {
            let (r, p) = item(format!("/api/deployments/{deployment}"));
            let (a, b) = (json!({"runtime_type": "a"}), json!({"runtime_type": "b"}));
            w("PATCH /api/deployments/{id}", r, Method::PATCH, p, user(&ann), a, b, "runtime_type")
                .refusing(json!({"runtime_type": ""}))
        },
        {
            let (r, p) = item(format!("/api/projects/{p}/context"));
            let (a, b) = (json!({"dependencies": ["a"]}), json!({"dependencies": ["b"]}));
            w("PUT /api/projects/{id}/context", r, Method::PUT, p, user(&ann), a, b, "dependencies")
                .refusing(json!({"dependencies": [""]}))
        },
        {
            let (r, p) = item(format!("/api/projects/{p}/context"));
            let (a, b) = (json!({"dependencies": ["c"]}), json!({"dependencies": ["d"]}));
            w("PATCH /api/projects/{id}/context", r, Method::PATCH, p, user(&ann), a, b, "dependencies")
                .refusing(json!({"dependencies": [""]}))
        },
        {
            let (r, p) = item(format!("/api/projects/{p}"));
            w(
                "PATCH /api/projects/{id}",
                r,
                Method::PATCH,
                p,
                user(&ann),
                json!({"name": "a"}),
                json!({"name": "b"}),
                "name",
            )
            .refusing(json!({"name": ""}))
        },
        {
            // Its status is its version: running, then (with `*`) completed.
            let (r, p) = item(format!("/api/generations/{generation}"));
            let (a, b) = (json!({"status": "running"}), json!({"status": "completed"}));
            w("PATCH /api/generations/{id}", r, Method::PATCH, p, user(&ann), a, b, "status")
                .refusing(json!({"status": "sideways"}))
        },
        {
            let read = format!("/api/pr-validations/{validation}");
            let path = format!("{read}/checks/tests");
            let (a, b) = (json!({"status": "running"}), json!({"status": "failed"}));
            w("PATCH /api/pr-validations/{id}/checks/{name}", read, Method::PATCH, path, user(&ann), a, b, "status")
                .refusing(json!({"status": "sideways"}))
        },
        {
            let read = format!("/api/pr-validations/{reported}");
            let path = format!("{read}/status");
            let (a, b) = (json!({"status": "running"}), json!({"status": "passed"}));
            w("PUT /api/pr-validations/{id}/status", read, Method::PUT, path, user(&ann), a, b, "status")
                .refusing(json!({"status": "sideways"}))
        },
        {
            let (r, p) = item(format!("/api/tasks/{task}"));
            w(
                "PATCH /api/tasks/{id}",
                r,
                Method::PATCH,
                p,
                user(&ann),
                json!({"title": "a"}),
                json!({"title": "b"}),
                "title",
            )
            .refusing(json!({"title": ""}))
        },
        {
            let (r, p) = item("/api/auth/me".into());
            w("PATCH /api/auth/me", r, Method::PATCH, p, user(&ann), json!({"name": "a"}), json!({"name": "b"}), "name")
                .refusing(json!({"name": ""}))
        },
        {
            let (r, p) = item(format!("/api/admin/users/{}", bob.user_id));
            let (a, b) = (json!({"plan_type": "team"}), json!({"plan_type": "enterprise"}));
            w("PATCH /api/admin/users/{id}", r, Method::PATCH, p, user(&admin), a, b, "plan_type")
                .refusing(json!({"plan_type": "sideways"}))
        },
        {
            let (r, path) = item(format!("/api/projects/{p}/env/MODE"));
            let (a, b) = (json!({"value": "a"}), json!({"value": "b"}));
            w("PUT /api/projects/{id}/env/{key}", r, Method::PUT, path, user(&ann), a, b, "value")
                .refusing(json!({"value": "x".repeat(70_000)}))
        },
        {
            let (r, path) = item(format!("/api/projects/{p}/env"));
            let (a, b) = (json!({"dotenv": "A=1"}), json!({"dotenv": "A=2\nB=3"}));
            w("PUT /api/projects/{id}/env", r, Method::PUT, path, user(&ann), a, b, "items")
                .refusing(json!({"dotenv": "not a line"}))
        },
        {
            let (r, path) = item(format!("/api/services/{service}/env/MODE"));
            let (a, b) = (json!({"value": "a"}), json!({"value": "b"}));
            w("PUT /api/services/{id}/env/{key}", r, Method::PUT, path, user(&ann), a, b, "value")
                .refusing(json!({"value": "x".repeat(70_000)}))
        },
        {
            let (r, path) = item(format!("/api/services/{service}/env"));
            let (a, b) = (json!({"dotenv": "A=1"}), json!({"dotenv": "A=2\nB=3"}));
            w("PUT /api/services/{id}/env", r, Method::PUT, path, user(&ann), a, b, "items")
                .refusing(json!({"dotenv": "not a line"}))
        },
    ];
    let mut covered = BTreeSet::new();
    for write in &writes {
        check_conditional_write(&app, write).await;
        covered.insert(write.op.to_string());
    }
    let resource_writes: BTreeSet<String> = operations(&app)
        .await
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| name.starts_with("PATCH ") || name.starts_with("PUT "))
        .collect();
    assert_eq!(covered, resource_writes, "every PATCH and PUT is checked here");

    // A version that never existed, and one of a resource that does not exist.
    let path = format!("/api/tasks/{task}");
    let answer = send(&app, Method::PATCH, &path, t, Some(&json!({"title": "x"})), &[("if-match", "\"nope\"")]).await;
    assert_problem(answer.status, &answer.body, StatusCode::PRECONDITION_FAILED);
    let answer = send(
        &app,
        Method::PUT,
        "/api/admin/config/no.such.setting",
        Some(&admin.token),
        Some(&json!({"value": 1, "description": "d"})),
        &[("if-match", "\"1\"")],
    )
    .await;
    assert_problem(answer.status, &answer.body, StatusCode::PRECONDITION_FAILED);
    assert_eq!(app.get("/api/admin/config/no.such.setting", Some(&admin.token)).await.0, StatusCode::NOT_FOUND);
}

/// Two writes sent against the same version at the same moment: the check
/// and the change happen under the row's lock, so exactly one wins.
#[tokio::test]
async fn if_match_is_checked_atomically_with_the_write() {
    let app = TestApp::spawn().await;
    let ann = app.register("ann@example.com").await;
    let p = crate::support::project(&app, &ann, "race").await;
    let (_, task) = app.post("/api/tasks", Some(&ann.token), json!({"project_id": p, "title": "t"})).await;
    let path = format!("/api/tasks/{}", id(&task));
    let v0 = send(&app, Method::GET, &path, Some(&ann.token), None, &[]).await.etag();

    let blocker = lock_row(&app, "devx.tasks", &id(&task)).await;
    let patch = |title: &'static str| {
        app.request(Method::PATCH, &path, Some(&ann.token))
            .header("if-match", &v0)
            .json(&json!({"title": title}))
            .send()
    };
    let (first, second) = (tokio::spawn(patch("one")), tokio::spawn(patch("two")));
    until_lock_waiters(&app, 2).await;
    blocker.batch_execute("ROLLBACK").await.unwrap();
    let mut statuses = vec![first.await.unwrap().unwrap().status(), second.await.unwrap().unwrap().status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::PRECONDITION_FAILED]);
}

fn key(k: &str) -> [(&str, &str); 1] {
    [("idempotency-key", k)]
}

#[tokio::test]
async fn a_retry_with_the_same_key_replays_the_first_answer_and_creates_nothing() {
    let app = TestApp::spawn().await;
    let ann = app.register("ann@example.com").await;
    let bob = app.register("bob@example.com").await;
    let p = crate::support::project(&app, &ann, "keys").await;
    let t = Some(ann.token.as_str());
    let body = json!({"project_id": p, "title": "once"});
    let tasks = async || count(&app.db.client().await, "SELECT count(*) FROM devx.tasks").await;

    let first = send(&app, Method::POST, "/api/tasks", t, Some(&body), &key("k-1")).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert!(first.header("idempotent-replayed").is_none(), "the first answer is not a replay");
    let retry = send(&app, Method::POST, "/api/tasks", t, Some(&body), &key("k-1")).await;
    assert_eq!(retry.status, StatusCode::CREATED);
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(retry.body, first.body, "the same body, not a new task");
    assert_eq!(retry.header("location"), first.header("location"));
    assert_eq!(retry.header("content-type"), Some("application/json"));
    assert_eq!(tasks().await, 1);

    // The same key with another body, or on another route, is another request.
    let other =
        send(&app, Method::POST, "/api/tasks", t, Some(&json!({"project_id": p, "title": "twice"})), &key("k-1")).await;
    let problem = assert_problem(other.status, &other.body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["type"], "/problems/idempotency-key-reused");
    assert!(problem["detail"].as_str().unwrap().contains("another request"), "{problem}");
    assert_eq!(problem["errors"][0]["field"], "Idempotency-Key");
    let elsewhere =
        send(&app, Method::POST, "/api/errors", t, Some(&json!({"error_type": "api", "message": "m"})), &key("k-1"))
            .await;
    assert_problem(elsewhere.status, &elsewhere.body, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(elsewhere.body["detail"].as_str().unwrap().contains("POST /api/tasks"), "{}", elsewhere.body);
    assert_eq!(tasks().await, 1);

    // Keys belong to their user: bob's k-1 is his own (and his answer his own).
    let bobs =
        send(&app, Method::POST, "/api/projects", Some(&bob.token), Some(&json!({"name": "b"})), &key("k-1")).await;
    assert_eq!(bobs.status, StatusCode::CREATED, "{}", bobs.body);
    assert!(bobs.header("idempotent-replayed").is_none());

    // An answer that is not a 2xx is kept too: the retry of a refused
    // request is refused the same way, without running again.
    let bad = json!({"project_id": p, "title": ""});
    let refused = send(&app, Method::POST, "/api/tasks", t, Some(&bad), &key("k-2")).await;
    assert_problem(refused.status, &refused.body, StatusCode::UNPROCESSABLE_ENTITY);
    let again = send(&app, Method::POST, "/api/tasks", t, Some(&bad), &key("k-2")).await;
    assert_eq!((again.status, again.header("idempotent-replayed")), (StatusCode::UNPROCESSABLE_ENTITY, Some("true")));
    assert_eq!(again.body, refused.body);
    assert_eq!(again.header("content-type"), Some("application/problem+json"));

    // A malformed key is refused before anything runs; routes that take no
    // key ignore one.
    let malformed = send(&app, Method::POST, "/api/tasks", t, Some(&body), &key("has space")).await;
    assert_problem(malformed.status, &malformed.body, StatusCode::BAD_REQUEST);
    let ignored = send(&app, Method::PATCH, "/api/auth/me", t, Some(&json!({"name": "x"})), &key("k-1")).await;
    assert_eq!(ignored.status, StatusCode::OK, "{}", ignored.body);
    assert_eq!(tasks().await, 1);
    // Without a key, a POST runs every time, as it always has.
    for _ in 0..2 {
        assert_eq!(app.post("/api/tasks", t, body.clone()).await.0, StatusCode::CREATED);
    }
    assert_eq!(tasks().await, 3);
}

/// A retry that arrives while the first request is still running gets 409
/// (and comes back for the answer); the first one finishes once, alone.
#[tokio::test]
async fn a_retry_during_the_first_request_is_409_and_the_answer_comes_after() {
    let app = TestApp::spawn().await;
    let ann = app.register("ann@example.com").await;
    let p = crate::support::project(&app, &ann, "slow").await;
    let body = json!({"project_id": p, "title": "slow"});
    // Inserting a task takes a key-share lock on its project: held here.
    let blocker = lock_row(&app, "devx.projects", &p).await;
    let first = tokio::spawn(
        app.request(Method::POST, "/api/tasks", Some(&ann.token)).header("idempotency-key", "k").json(&body).send(),
    );
    until_lock_waiters(&app, 1).await;
    let during = send(&app, Method::POST, "/api/tasks", Some(&ann.token), Some(&body), &key("k")).await;
    let problem = assert_problem(during.status, &during.body, StatusCode::CONFLICT);
    assert_eq!(problem["type"], "/problems/request-in-progress");
    assert_eq!(during.header("retry-after"), Some("1"));
    blocker.batch_execute("ROLLBACK").await.unwrap();
    let first = first.await.unwrap().unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let after = send(&app, Method::POST, "/api/tasks", Some(&ann.token), Some(&body), &key("k")).await;
    assert_eq!((after.status, after.header("idempotent-replayed")), (StatusCode::CREATED, Some("true")));
    assert_eq!(after.body, first);
    assert_eq!(count(&app.db.client().await, "SELECT count(*) FROM devx.tasks").await, 1);
}

#[tokio::test]
async fn concurrent_duplicates_create_exactly_one_row() {
    let app = TestApp::spawn().await;
    let ann = app.register("ann@example.com").await;
    let p = crate::support::project(&app, &ann, "burst").await;
    let url = format!("/api/projects/{p}/messages");
    let body = json!({"session_id": "s", "role": "user", "content": "only once"});
    let sends: Vec<_> = (0..12)
        .map(|_| {
            tokio::spawn(
                app.request(Method::POST, &url, Some(&ann.token)).header("idempotency-key", "burst").json(&body).send(),
            )
        })
        .collect();
    let mut created = BTreeSet::new();
    for send in sends {
        let response = send.await.unwrap().unwrap();
        match response.status() {
            StatusCode::CREATED => {
                created.insert(id(&response.json::<Value>().await.unwrap()));
            }
            StatusCode::CONFLICT => {}
            other => panic!("a duplicate got {other}"),
        }
    }
    assert_eq!(created.len(), 1, "every 201 is the same message: {created:?}");
    assert_eq!(count(&app.db.client().await, "SELECT count(*) FROM devx.chat_messages").await, 1);
}

/// A write whose connection breaks before it commits changed nothing: with
/// a key the server runs it again at once; without one it answers 503 (a
/// write is never retried behind the client's back without a key).
#[tokio::test]
async fn a_keyed_write_is_retried_once_on_a_broken_connection_and_an_unkeyed_one_is_not() {
    let app = TestApp::spawn_private("devx-kill-", |_| {}).await;
    let ann = app.register("ann@example.com").await;
    let p = crate::support::project(&app, &ann, "broken").await;
    let admin = crate::outage::fault_admin(&app).await;
    let executions = async |task: &str| {
        one::<i64>(
            &app.db.client().await,
            "SELECT count(*) FROM devx.task_executions WHERE task_id = $1::text::uuid",
            &[&task],
        )
        .await
    };
    for keyed in [true, false] {
        let (_, task) = app.post("/api/tasks", Some(&ann.token), json!({"project_id": p, "title": "t"})).await;
        let task = id(&task);
        // Starting an execution locks its task: the request waits there
        // until its connection is killed under it.
        let blocker = lock_row(&app, "devx.tasks", &task).await;
        let mut request = app
            .request(Method::POST, &format!("/api/tasks/{task}/executions"), Some(&ann.token))
            .json(&json!({"agent_type": "claude-code"}));
        if keyed {
            request = request.header("idempotency-key", format!("start-{task}"));
        }
        let in_flight = tokio::spawn(request.send());
        until_lock_waiters(&app, 1).await;
        let killed: i64 = one(
            &admin,
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
              WHERE datname = $1 AND wait_event_type = 'Lock'",
            &[&app.db.name()],
        )
        .await;
        assert_eq!(killed, 1);
        blocker.batch_execute("ROLLBACK").await.unwrap();
        let response = in_flight.await.unwrap().unwrap();
        if keyed {
            assert_eq!(response.status(), StatusCode::CREATED, "{}", response.text().await.unwrap_or_default());
            assert_eq!(executions(&task).await, 1);
        } else {
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(executions(&task).await, 0);
        }
    }
}

#[tokio::test]
async fn keys_expire_after_a_day_and_retention_prunes_them() {
    let app = TestApp::spawn().await;
    let ann = app.register("ann@example.com").await;
    let p = crate::support::project(&app, &ann, "old").await;
    let body = json!({"project_id": p, "title": "daily"});
    let client = app.db.client().await;
    let age = "UPDATE devx.idempotency_keys SET created_at = now() - interval '25 hours', completed_at = now() - interval '25 hours'";

    let first = send(&app, Method::POST, "/api/tasks", Some(&ann.token), Some(&body), &key("daily")).await;
    assert_eq!(first.status, StatusCode::CREATED);
    client.execute(age, &[]).await.unwrap();
    // A day later the key is free: the same request is a new one.
    let later = send(&app, Method::POST, "/api/tasks", Some(&ann.token), Some(&body), &key("daily")).await;
    assert_eq!(later.status, StatusCode::CREATED);
    assert!(later.header("idempotent-replayed").is_none());
    assert_ne!(id(&later.body), id(&first.body));
    assert_eq!(count(&client, "SELECT count(*) FROM devx.tasks").await, 2);

    let fresh = send(&app, Method::POST, "/api/tasks", Some(&ann.token), Some(&body), &key("fresh")).await;
    assert_eq!(fresh.status, StatusCode::CREATED);
    client.execute(&format!("{age} WHERE key = 'daily'"), &[]).await.unwrap();
    let report = retention::run(&app.pool, &RunOptions::default()).await.unwrap();
    let pruned = report.table("idempotency_keys").unwrap_or_else(|| panic!("no idempotency_keys in {report:?}"));
    assert_eq!(pruned.rows, 1, "{pruned:?}");
    let left: Vec<String> =
        crate::support::column(&client, "SELECT key FROM devx.idempotency_keys ORDER BY key", &[]).await;
    assert_eq!(left, ["fresh"]);
}
