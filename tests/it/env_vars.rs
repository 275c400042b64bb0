//! Environment variables over real HTTP on a real database: one row each,
//! sealed; secrets write-only in every answer (lists, one variable, the
//! effective set, the service, the audit trail); bulk dotenv in one
//! transaction; service-over-project and preview-over-runtime resolution;
//! the legacy `services.environment_vars` moved keeping every value; key
//! rotation; and a canary secret that never reaches a deploy log, its tail,
//! its stream or `pg_dump`.

use devx::app::Application;
use devx::config::{SecretKey, SecretKeys};
use devx::http::AppState;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::agents::SseReader;
use crate::app::{Session, TestApp, assert_problem};
use crate::harness::devx_command;
use crate::runtime::{spawn_with_key, test_key};
use crate::support::{all_pages, fields, id as id_of, project};

async fn service(app: &TestApp, who: &Session, project: &str, slug: &str, extra: Value) -> Value {
    let mut body = json!({"name": slug, "slug": slug});
    if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
        b.extend(e);
    }
    let (status, s) = app.post(&format!("/api/projects/{project}/services"), Some(&who.token), body).await;
    assert_eq!(status, StatusCode::CREATED, "{s}");
    s
}

async fn put(app: &TestApp, who: &Session, path: &str, body: Value) -> (StatusCode, Value) {
    app.call(Method::PUT, path, Some(&who.token), Some(body)).await
}

async fn set_var(app: &TestApp, who: &Session, path: &str, body: Value) -> Value {
    let (status, v) = put(app, who, path, body).await;
    assert_eq!(status, StatusCode::OK, "{path}: {v}");
    v
}

/// Everything an answer says, as text, to look for a value in.
fn text(v: &Value) -> String {
    v.to_string()
}

/// The plain value of a stored variable, opened with `keys` as the server would.
async fn stored_value(app: &TestApp, keys: &SecretKeys, key: &str) -> String {
    let client = app.db.client().await;
    let row = client
        .query_one(
            "SELECT id, value_key_id, value_sealed FROM devx.env_vars WHERE key = $1 AND NOT is_preview",
            &[&key],
        )
        .await
        .unwrap();
    let (id, key_id, sealed): (uuid::Uuid, String, Vec<u8>) = (row.get(0), row.get(1), row.get(2));
    let context = devx::runtime::secrets::context("env_vars", "value_sealed", id);
    String::from_utf8(devx::runtime::secrets::open(Some(keys), &key_id, &context, &sealed).unwrap()).unwrap()
}

const CANARY: &str = "canary-env-secret-9f3b2c";

#[tokio::test]
async fn variables_are_crud_and_secrets_are_write_only() {
    let app = spawn_with_key().await;
    let ada = app.register("ada@example.com").await;
    let bob = app.register("bob@example.com").await;
    let root = app.admin("root@example.com").await;
    let p = project(&app, &ada, "shop").await;
    let s = id_of(&service(&app, &ada, &p, "api", json!({})).await);
    let t = Some(ada.token.as_str());

    let v = set_var(&app, &ada, &format!("/api/projects/{p}/env/MODE"), json!({"value": "dev"})).await;
    assert_eq!(v["value"], "dev");
    assert!(v["masked"].is_null());
    assert_eq!(
        (v["is_secret"].clone(), v["is_buildtime"].clone(), v["is_runtime"].clone()),
        (json!(false), json!(true), json!(true))
    );
    assert_eq!(v["is_preview"], false);
    let v =
        set_var(&app, &ada, &format!("/api/services/{s}/env/API_TOKEN"), json!({"value": CANARY, "is_secret": true}))
            .await;
    assert!(v["value"].is_null(), "{v}");
    assert_eq!(v["masked"], "****");
    let first_change = v["updated_at"].clone();
    // Set again: still secret (kept), a new updated_at, the value still hidden.
    let v =
        set_var(&app, &ada, &format!("/api/services/{s}/env/API_TOKEN"), json!({"value": format!("{CANARY}-2")})).await;
    assert_eq!(v["is_secret"], true);
    assert_ne!(v["updated_at"], first_change);
    assert_eq!(stored_value(&app, &test_key(), "API_TOKEN").await, format!("{CANARY}-2"));
    // A preview override is a row of its own.
    let v = set_var(&app, &ada, &format!("/api/projects/{p}/env/MODE?preview=true"), json!({"value": "preview"})).await;
    assert_eq!(v["is_preview"], true);
    let (_, list) = app.get(&format!("/api/projects/{p}/env"), t).await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{list}");
    assert_eq!((items[0]["value"].clone(), items[1]["value"].clone()), (json!("dev"), json!("preview")));
    let (status, one) = app.get(&format!("/api/projects/{p}/env/MODE?preview=true"), t).await;
    assert_eq!((status, one["value"].clone()), (StatusCode::OK, json!("preview")));

    // Nowhere in an answer: list, one, effective set, the service, the audit trail.
    let mut answers = Vec::new();
    for path in [
        format!("/api/services/{s}/env"),
        format!("/api/services/{s}/env/API_TOKEN"),
        format!("/api/services/{s}/effective-env"),
        format!("/api/services/{s}/effective-env?purpose=build&preview=true"),
        format!("/api/services/{s}"),
        format!("/api/projects/{p}/services"),
    ] {
        let (status, body) = app.get(&path, t).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        answers.push(body);
    }
    assert_eq!(answers[0]["items"][0]["masked"], "****");
    assert_eq!(answers[4]["environment_vars"], json!({"API_TOKEN": "****"}));
    answers.extend(all_pages(&app, &root.token, "/api/admin/audit?limit=200").await);
    assert!(answers.iter().any(|a| text(a).contains("env_vars")), "the audit trail has the rows");
    for a in &answers {
        assert!(!text(a).contains(CANARY), "an answer shows the secret: {a}");
    }
    let client = app.db.client().await;
    let sealed: Vec<Vec<u8>> =
        client.query("SELECT value_sealed FROM devx.env_vars", &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(sealed.len(), 3);
    for bytes in &sealed {
        assert!(!bytes.windows(CANARY.len()).any(|w| w == CANARY.as_bytes()) && !bytes.windows(3).any(|w| w == b"dev"));
    }

    // Bad keys and values; another user's owner is missing.
    let (status, body) = put(&app, &ada, &format!("/api/projects/{p}/env/1BAD"), json!({"value": "x"})).await;
    assert_eq!(fields(assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY)), ["key"]);
    let (status, body) = put(&app, &ada, &format!("/api/projects/{p}/env/OK"), json!({"value": "a\u{0}b"})).await;
    assert_eq!(fields(assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY)), ["value"]);
    for path in
        [format!("/api/projects/{p}/env"), format!("/api/services/{s}/env"), format!("/api/projects/{p}/env/MODE")]
    {
        let (status, body) = app.get(&path, Some(&bob.token)).await;
        assert_problem(status, &body, StatusCode::NOT_FOUND);
    }
    let (status, body) = put(&app, &bob, &format!("/api/services/{s}/env/X"), json!({"value": "x"})).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = app.delete(&format!("/api/services/{s}/env/API_TOKEN"), Some(&bob.token)).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);

    // Delete: the non-preview row only.
    let (status, _) = app.delete(&format!("/api/projects/{p}/env/MODE"), t).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app.get(&format!("/api/projects/{p}/env/MODE"), t).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    let (status, _) = app.get(&format!("/api/projects/{p}/env/MODE?preview=true"), t).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app.delete(&format!("/api/projects/{p}/env/MODE"), t).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);

    // The service API's `environment_vars` writes rows and answers them masked.
    let (status, body) = app
        .patch(&format!("/api/services/{s}"), t, json!({"environment_vars": {"LEVEL": "info", "DB_PASSWORD": CANARY}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["environment_vars"], json!({"LEVEL": "info", "DB_PASSWORD": "****"}));
    let (_, list) = app.get(&format!("/api/services/{s}/env"), t).await;
    let keys: Vec<&str> = list["items"].as_array().unwrap().iter().map(|i| i["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["DB_PASSWORD", "LEVEL"], "API_TOKEN was replaced away");
    let (status, body) =
        app.patch(&format!("/api/services/{s}"), t, json!({"environment_vars": {"bad-name": "x"}})).await;
    assert_eq!(fields(assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY)), ["environment_vars.bad-name"]);

    // Without a key: sealing or opening is a 503; a project without variables still lists.
    let bare = TestApp::spawn().await;
    let cy = bare.register("cy@example.com").await;
    let q = project(&bare, &cy, "plain").await;
    let (status, body) = put(&bare, &cy, &format!("/api/projects/{q}/env/A"), json!({"value": "1"})).await;
    assert_problem(status, &body, StatusCode::SERVICE_UNAVAILABLE);
    let (status, body) = bare.get(&format!("/api/projects/{q}/env"), Some(&cy.token)).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"items": []})));
}

#[tokio::test]
async fn bulk_dotenv_upserts_in_one_transaction_and_a_bad_line_changes_nothing() {
    let app = spawn_with_key().await;
    let ada = app.register("ada@example.com").await;
    let p = project(&app, &ada, "shop").await;
    let path = format!("/api/projects/{p}/env");
    let (status, body) = put(&app, &ada, &path, json!({"dotenv": "A=1\nexport B=\"two\"\n# comment\n"})).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"created": 2, "updated": 0})));
    let (status, body) =
        put(&app, &ada, &path, json!({"dotenv": "A=3\nC='x y'\nC=${A}z", "is_secret": true, "is_runtime": false}))
            .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"created": 1, "updated": 1})));
    let (_, list) = app.get(&path, Some(&ada.token)).await;
    let got: Vec<(String, Value, Value, Value)> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["key"].as_str().unwrap().to_string(),
                i["value"].clone(),
                i["is_secret"].clone(),
                i["is_runtime"].clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("A".to_string(), Value::Null, json!(true), json!(false)),
            ("B".to_string(), json!("two"), json!(false), json!(true)),
            ("C".to_string(), Value::Null, json!(true), json!(false)),
        ]
    );
    assert_eq!(stored_value(&app, &test_key(), "C").await, "3z", "a later line wins, ${{A}} read from an earlier line");

    // A malformed line, or a name the table cannot hold: 422 naming the line, nothing stored.
    for (dotenv, line) in [("D=1\nnot a line\nE=2", "line 2"), ("D=1\nmy.var=2", "line 2"), ("D='open", "line 1")] {
        let (status, body) = put(&app, &ada, &path, json!({"dotenv": dotenv})).await;
        let problem = assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(fields(problem), ["dotenv"], "{problem}");
        assert!(text(problem).contains(line), "{dotenv:?}: {problem}");
    }
    let client = app.db.client().await;
    let n: i64 = client.query_one("SELECT count(*) FROM devx.env_vars", &[]).await.unwrap().get(0);
    assert_eq!(n, 3, "no bad request stored anything");
}

#[tokio::test]
async fn the_effective_set_is_service_over_project_and_preview_over_both() {
    let app = spawn_with_key().await;
    let ada = app.register("ada@example.com").await;
    let p = project(&app, &ada, "shop").await;
    let s = id_of(&service(&app, &ada, &p, "api", json!({})).await);
    let pv = |k: &str| format!("/api/projects/{p}/env/{k}");
    let sv = |k: &str| format!("/api/services/{s}/env/{k}");
    set_var(&app, &ada, &pv("SHARED"), json!({"value": "project"})).await;
    set_var(&app, &ada, &pv("ONLY_PROJECT"), json!({"value": "p"})).await;
    set_var(&app, &ada, &pv("BUILD_ONLY"), json!({"value": "b", "is_runtime": false})).await;
    set_var(&app, &ada, &sv("SHARED"), json!({"value": "service"})).await;
    set_var(&app, &ada, &sv("RUN_ONLY"), json!({"value": "r", "is_buildtime": false})).await;
    set_var(&app, &ada, &sv("TOKEN"), json!({"value": CANARY, "is_secret": true})).await;
    set_var(&app, &ada, &format!("{}?preview=true", pv("SHARED")), json!({"value": "project-preview"})).await;
    set_var(&app, &ada, &format!("{}?preview=true", pv("ONLY_PROJECT")), json!({"value": "pp"})).await;

    let effective = async |query: &str| -> Vec<(String, Value, String, bool)> {
        let (status, body) = app.get(&format!("/api/services/{s}/effective-env{query}"), Some(&ada.token)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(!text(&body).contains(CANARY));
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                let shown = if i["is_secret"] == true { i["masked"].clone() } else { i["value"].clone() };
                (
                    i["key"].as_str().unwrap().into(),
                    shown,
                    i["source"].as_str().unwrap().into(),
                    i["is_preview"] == true,
                )
            })
            .collect()
    };
    let e = |k: &str, v: &str, src: &str, preview: bool| (k.to_string(), json!(v), src.to_string(), preview);
    assert_eq!(
        effective("").await,
        [
            e("ONLY_PROJECT", "p", "project", false),
            e("RUN_ONLY", "r", "service", false),
            e("SHARED", "service", "service", false),
            e("TOKEN", "****", "service", false),
        ]
    );
    assert_eq!(
        effective("?purpose=build").await,
        [
            e("BUILD_ONLY", "b", "project", false),
            e("ONLY_PROJECT", "p", "project", false),
            e("SHARED", "service", "service", false),
            e("TOKEN", "****", "service", false),
        ]
    );
    let preview = effective("?purpose=runtime&preview=true").await;
    assert_eq!(preview[0], e("ONLY_PROJECT", "pp", "project", true));
    assert_eq!(preview[2], e("SHARED", "project-preview", "project", true), "a preview override beats the service");
    set_var(&app, &ada, &format!("{}?preview=true", sv("SHARED")), json!({"value": "service-preview"})).await;
    assert_eq!(effective("?preview=true").await[2], e("SHARED", "service-preview", "service", true));
    let (status, body) = app.get(&format!("/api/services/{s}/effective-env?purpose=deploy"), Some(&ada.token)).await;
    assert_problem(status, &body, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn legacy_service_environment_vars_move_into_sealed_rows_keeping_every_value() {
    let app = spawn_with_key().await;
    let ada = app.register("ada@example.com").await;
    let p = project(&app, &ada, "shop").await;
    let s = id_of(&service(&app, &ada, &p, "api", json!({})).await);
    let untouched = id_of(&service(&app, &ada, &p, "web", json!({})).await);
    let client = app.db.client().await;
    let legacy = json!({"MODE": "dev", "API_TOKEN": CANARY, "PORT": 8080, "bad-name": "kept"});
    client
        .execute("UPDATE devx.services SET environment_vars = $1 WHERE id = $2::text::uuid", &[&legacy, &s])
        .await
        .unwrap();

    // Without a key nothing moves and nothing is lost.
    let moved = devx::runtime::env::legacy::move_legacy(&app.pool, None, "system:env").await;
    assert!(moved.is_err());
    let n: i64 = client.query_one("SELECT count(*) FROM devx.env_vars", &[]).await.unwrap().get(0);
    assert_eq!(n, 0);

    let keys = test_key();
    let moved = devx::runtime::env::legacy::move_legacy(&app.pool, Some(&keys), "system:env").await.unwrap();
    assert_eq!((moved.moved, moved.left), (3, 1));
    let left: Value = client
        .query_one("SELECT environment_vars FROM devx.services WHERE id = $1::text::uuid", &[&s])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, json!({"bad-name": "kept"}), "a name the table cannot hold stays where it was");
    let again = devx::runtime::env::legacy::move_legacy(&app.pool, Some(&keys), "system:env").await.unwrap();
    assert_eq!((again.moved, again.left), (0, 1), "a second run moves nothing");
    assert_eq!(stored_value(&app, &keys, "API_TOKEN").await, CANARY);
    assert_eq!(stored_value(&app, &keys, "PORT").await, "8080");
    let (_, body) = app.get(&format!("/api/services/{s}"), Some(&ada.token)).await;
    assert_eq!(body["environment_vars"], json!({"API_TOKEN": "****", "MODE": "dev", "PORT": "8080"}));
    let (_, body) = app.get(&format!("/api/services/{untouched}/env"), Some(&ada.token)).await;
    assert_eq!(body["items"], json!([]));
    let actors: Vec<String> = client
        .query("SELECT DISTINCT actor FROM devx.audit_logs WHERE entity_type LIKE '%env_vars'", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(actors, ["system:env"]);

    // Creating a service with `environment_vars` writes rows, as clients did.
    let created =
        service(&app, &ada, &p, "worker", json!({"environment_vars": {"QUEUE": "jobs", "SECRET_X": CANARY}})).await;
    assert_eq!(created["environment_vars"], json!({"QUEUE": "jobs", "SECRET_X": "****"}));
    let (_, list) = app.get(&format!("/api/services/{}/env", id_of(&created)), Some(&ada.token)).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
}

fn secrets_cli(app: &TestApp, keys: &str, args: &[&str]) -> (i32, String) {
    let out = devx_command()
        .env("DATABASE_URL", app.db.url())
        .env("DEVX_SECRET_KEY", keys)
        .arg("secrets")
        .args(args)
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test]
async fn rotation_reseals_env_vars_and_moves_legacy_ones_first() {
    use base64::Engine;
    let encode = |k: &[u8; 32]| base64::engine::general_purpose::STANDARD.encode(k);
    let (a, b) = (*b"devx-test-key-0123456789abcdefgh", *b"devx-rotated-key-0123456789abcde");
    let app = TestApp::spawn_with(|c| c.secret_keys = Some(SecretKeys::single(SecretKey::from_bytes(a)))).await;
    let ada = app.register("ada@example.com").await;
    let p = project(&app, &ada, "shop").await;
    let s = id_of(&service(&app, &ada, &p, "api", json!({})).await);
    set_var(&app, &ada, &format!("/api/projects/{p}/env/MODE"), json!({"value": "dev"})).await;
    set_var(&app, &ada, &format!("/api/services/{s}/env/TOKEN"), json!({"value": CANARY, "is_secret": true})).await;
    let client = app.db.client().await;
    client
        .execute(
            "UPDATE devx.services SET environment_vars = '{\"LEGACY\": \"old-value\"}' WHERE id = $1::text::uuid",
            &[&s],
        )
        .await
        .unwrap();

    let (code, out) = secrets_cli(&app, &encode(&a), &["check"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("env_vars.value_sealed: 2 open (2 under \"default\")"), "{out}");

    // B first, A still listed: rotate moves the legacy one (under B) and re-seals the rest.
    let only_b = format!("b:{}", encode(&b));
    let both = format!("{only_b},default:{}", encode(&a));
    let (code, out) = secrets_cli(&app, &both, &["rotate", "--batch-size", "1"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("services.environment_vars: moved 1 into env_vars"), "{out}");
    assert!(out.contains("env_vars.value_sealed: re-sealed 2 under \"b\""), "{out}");
    let key_ids: Vec<String> = client
        .query("SELECT DISTINCT value_key_id FROM devx.env_vars", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(key_ids, ["b"]);

    // A removed: everything opens with B alone, over HTTP and by the check.
    let (code, out) = secrets_cli(&app, &only_b, &["check"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("env_vars.value_sealed: 3 open (3 under \"b\")"), "{out}");
    let only_b_keys = SecretKeys::parse(&only_b).unwrap();
    assert_eq!(stored_value(&app, &only_b_keys, "TOKEN").await, CANARY);
    let mut config = app.config.clone();
    config.secret_keys = Some(only_b_keys);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = Application::build(listener, AppState::new(crate::app::pool(&app.db).await, config));
    let url = format!("http://{}", server.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run_until(async move {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    let r = http.get(format!("{url}/api/services/{s}/effective-env")).bearer_auth(&ada.token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    let values: Vec<Value> = body["items"].as_array().unwrap().iter().map(|i| i["value"].clone()).collect();
    assert_eq!(values, [json!("old-value"), json!("dev"), Value::Null], "{body}");
    let _ = stop.send(());
    // The old server, with only A, cannot open them and says why.
    let (status, body) = app.get(&format!("/api/projects/{p}/env"), Some(&ada.token)).await;
    assert_problem(status, &body, StatusCode::SERVICE_UNAVAILABLE);
}

/// The canary: a secret variable's value, logged by a deployment of its
/// service, is masked before the line is stored, so neither the tail, the
/// stream, nor a `pg_dump` of the database ever holds it.
#[tokio::test]
async fn a_secret_canary_never_reaches_a_deploy_log_a_stream_or_pg_dump() {
    let app = spawn_with_key().await;
    let ada = app.register("ada@example.com").await;
    let p = project(&app, &ada, "shop").await;
    let s = id_of(&service(&app, &ada, &p, "api", json!({})).await);
    let t = ada.token.as_str();
    let project_canary = "project-canary-77e1";
    let (status, body) = put(
        &app,
        &ada,
        &format!("/api/services/{s}/env"),
        json!({"dotenv": format!("STRIPE_KEY={CANARY}\nOTHER=visible-value"), "is_secret": true}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    set_var(
        &app,
        &ada,
        &format!("/api/projects/{p}/env/PREVIEW_PW?preview=true"),
        json!({"value": project_canary, "is_secret": true}),
    )
    .await;
    set_var(&app, &ada, &format!("/api/projects/{p}/env/PUBLIC"), json!({"value": "public-value"})).await;
    let (status, d) = app.post(&format!("/api/projects/{p}/deployments"), Some(t), json!({"service_id": s})).await;
    assert_eq!(status, StatusCode::CREATED, "{d}");
    let id = id_of(&d);
    let lines = json!({"lines": [
        {"text": format!("connecting with {CANARY}")},
        {"text": format!("preview pw {project_canary} and public-value")},
    ]});
    let (status, body) = app.post(&format!("/api/deployments/{id}/logs"), Some(t), lines).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let (_, tail) = app.get(&format!("/api/deployments/{id}/logs"), Some(t)).await;
    let texts: Vec<&str> = tail["items"].as_array().unwrap().iter().map(|l| l["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["connecting with ****", "preview pw **** and public-value"]);
    let (status, body) = app.post(&format!("/api/deployments/{id}/cancel"), Some(t), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut stream = SseReader::open(&app, &format!("/api/deployments/{id}/logs/stream"), t, None).await;
    let mut events = 0;
    while let Some(event) = stream.next().await {
        assert!(!event.data.contains(CANARY) && !event.data.contains(project_canary), "{}", event.data);
        events += 1;
    }
    assert_eq!(events, 3, "two lines and the end");

    let dbname = app.db.config().get_dbname().expect("test database name").to_string();
    let dump = std::process::Command::new("pg_dump")
        .args(["--data-only", "-h", "127.0.0.1", "-U", "postgres", "-d", &dbname])
        .output()
        .expect("pg_dump runs");
    assert!(dump.status.success(), "pg_dump: {}", String::from_utf8_lossy(&dump.stderr));
    let dump = String::from_utf8_lossy(&dump.stdout);
    assert!(dump.contains("connecting with ****"), "the dump has the log");
    assert!(dump.contains("STRIPE_KEY"), "the dump has the variables");
    for secret in [CANARY, project_canary, "visible-value"] {
        assert!(!dump.contains(secret), "pg_dump shows {secret}");
    }
}

/// `devx secrets rotate` and `check` go through `SEALED_COLUMNS`: every
/// column named `*_sealed`, and every column beside a `<column>_key_id`, is
/// listed there, and every listed column and its key-id column exist.
#[tokio::test]
async fn every_sealed_column_is_listed_for_rotation_and_check() {
    let db = crate::harness::TestDb::migrated().await;
    let client = db.client().await;
    let rows = client
        .query(
            "SELECT c.table_name::text, c.column_name::text FROM information_schema.columns c
              WHERE c.table_schema = 'devx'
                AND (c.column_name LIKE '%\\_sealed'
                     OR EXISTS (SELECT 1 FROM information_schema.columns k
                                 WHERE k.table_schema = 'devx' AND k.table_name = c.table_name
                                   AND k.column_name = c.column_name || '_key_id'))
              ORDER BY 1, 2",
            &[],
        )
        .await
        .unwrap();
    let found: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let mut listed: Vec<(String, String)> =
        devx::runtime::secrets::SEALED_COLUMNS.iter().map(|c| (c.table.to_string(), c.column.to_string())).collect();
    listed.sort();
    assert_eq!(found, listed);
    assert!(found.contains(&("env_vars".to_string(), "value_sealed".to_string())));
    for c in devx::runtime::secrets::SEALED_COLUMNS {
        let n: i64 = client
            .query_one(
                "SELECT count(*) FROM information_schema.columns
                  WHERE table_schema = 'devx' AND table_name = $1 AND column_name = $2",
                &[&c.table, &c.key_id_column],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 1, "{}.{} has no key-id column {}", c.table, c.column, c.key_id_column);
    }
}

#[tokio::test]
async fn a_services_etag_moves_when_its_variables_change() {
    let app = spawn_with_key().await;
    let ada = app.register("ada@example.com").await;
    let p = project(&app, &ada, "shop").await;
    let s = service(&app, &ada, &p, "shop-api", json!({})).await;
    let path = format!("/api/services/{}", id_of(&s));
    let etag = |r: &reqwest::Response| r.headers().get("etag").unwrap().to_str().unwrap().to_string();
    let before = etag(&app.request(Method::GET, &path, Some(&ada.token)).send().await.unwrap());
    set_var(&app, &ada, &format!("{path}/env/MODE"), json!({"value": "prod"})).await;
    let after = etag(&app.request(Method::GET, &path, Some(&ada.token)).send().await.unwrap());
    assert_ne!(before, after, "the service's answer changed (its environment_vars), so must its ETag");
    // A write made against the version before the variable changed is refused.
    let stale = app
        .request(Method::PATCH, &path, Some(&ada.token))
        .header("if-match", &before)
        .json(&json!({"description": "stale"}))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
    let fresh = app
        .request(Method::PATCH, &path, Some(&ada.token))
        .header("if-match", &after)
        .json(&json!({"description": "fresh"}))
        .send()
        .await
        .unwrap();
    assert_eq!(fresh.status(), StatusCode::OK);
    // Touching the service for its variables writes no audit row of the service.
    let client = app.db.client().await;
    let audited: i64 = client
        .query_one(
            "SELECT count(*) FROM devx.audit_logs WHERE entity_type = 'devx.services' AND action = 'update'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(audited, 1, "only the description's change is audited on the service");
}
