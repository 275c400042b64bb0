//! User administration over real HTTP and the real binary: one user read
//! and closed by an admin, projects filtered by owner, plans, importing
//! accounts with bcrypt and argon2 hashes (upgraded at first sign-in), and
//! the caller's own sessions listed and ended.

use std::io::Write;
use std::process::{Command, Stdio};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::app::{TestApp, assert_problem};
use crate::harness::devx_command;
use crate::support::{all_pages, fields, ids, one, project};

fn bcrypt_hash(password: &str, version: bcrypt::Version) -> String {
    bcrypt::hash_with_result(password, 4).unwrap().format_for_version(version)
}

/// Runs the binary with `stdin`; its exit code, stdout and stderr.
fn run(cmd: &mut Command, stdin: &str) -> (i32, String, String) {
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

#[tokio::test]
async fn an_admin_reads_and_closes_a_user_as_closing_ones_own_does() {
    let app = TestApp::spawn().await;
    let admin = app.admin("root@example.com").await;
    let ada = app.register("ada@example.com").await;
    let (status, key) = app.post("/api/api-keys", Some(&ada.token), json!({"name": "ci"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let key = key["key"].as_str().unwrap().to_string();

    let (status, user) = app.get(&format!("/api/admin/users/{}", ada.user_id), Some(&admin.token)).await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!((user["email"].as_str(), user["is_active"].as_bool()), (Some("ada@example.com"), Some(true)));

    let path = format!("/api/admin/users/{}", ada.user_id);
    let (status, body) = app.delete(&path, Some(&ada.token)).await;
    assert_problem(status, &body, StatusCode::FORBIDDEN);
    let (status, _) = app.delete(&path, Some(&admin.token)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for token in [&ada.token, &key] {
        let (status, body) = app.get("/api/auth/me", Some(token)).await;
        assert_problem(status, &body, StatusCode::UNAUTHORIZED);
    }
    let (status, body) = app
        .post("/api/auth/login", None, json!({"email": "ada@example.com", "password": "correct horse battery"}))
        .await;
    assert_problem(status, &body, StatusCode::UNAUTHORIZED);
    let client = app.db.client().await;
    let closed: bool = one(
        &client,
        "SELECT deleted_at IS NOT NULL AND NOT is_active FROM devx.users WHERE id = $1::text::uuid",
        &[&ada.user_id],
    )
    .await;
    assert!(closed, "closed as self-service closing does: retention purges it later");
    let first: chrono::DateTime<chrono::Utc> =
        one(&client, "SELECT deleted_at FROM devx.users WHERE id = $1::text::uuid", &[&ada.user_id]).await;
    let (status, _) = app.delete(&path, Some(&admin.token)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "closing again changes nothing");
    let again: chrono::DateTime<chrono::Utc> =
        one(&client, "SELECT deleted_at FROM devx.users WHERE id = $1::text::uuid", &[&ada.user_id]).await;
    assert_eq!(first, again);

    let (status, body) = app.delete(&format!("/api/admin/users/{}", uuid::Uuid::new_v4()), Some(&admin.token)).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = app.delete(&format!("/api/admin/users/{}", admin.user_id), Some(&admin.token)).await;
    assert_problem(status, &body, StatusCode::CONFLICT);
    let (status, me) = app.get("/api/auth/me", Some(&admin.token)).await;
    assert_eq!((status, me["is_active"].as_bool()), (StatusCode::OK, Some(true)), "the last admin stays");
}

/// The ids of the projects `GET /api/projects?owner_id=` lists for `token`.
async fn owned_by(app: &TestApp, token: &str, owner: &str) -> Vec<String> {
    all_pages(app, token, &format!("/api/projects?owner_id={owner}")).await.iter().map(crate::support::id).collect()
}

#[tokio::test]
async fn admins_filter_projects_by_owner_and_others_see_only_their_own() {
    let app = TestApp::spawn().await;
    let admin = app.admin("root@example.com").await;
    let ada = app.register("ada@example.com").await;
    let bob = app.register("bob@example.com").await;
    let adas = project(&app, &ada, "ada's").await;
    let bobs = project(&app, &bob, "bob's").await;

    assert_eq!(owned_by(&app, &admin.token, &ada.user_id).await, [adas.as_str()]);
    assert_eq!(owned_by(&app, &bob.token, &bob.user_id).await, [bobs.as_str()]);
    assert_eq!(owned_by(&app, &admin.token, &bob.user_id).await, [bobs]);
    assert!(owned_by(&app, &bob.token, &ada.user_id).await.is_empty(), "someone else's projects are not visible");
    let (status, body) = app.get("/api/projects?owner_id=nope", Some(&admin.token)).await;
    assert!(status.is_client_error(), "{body}");

    // The owner named by email (any case), as tasks name their assignee;
    // every project answers its owner's id and email.
    assert_eq!(owned_by(&app, &admin.token, "ADA@example.com").await, [adas.as_str()]);
    assert!(owned_by(&app, &bob.token, "ada@example.com").await.is_empty());
    let (status, page) = app.get("/api/projects?owner_id=bob@example.com", Some(&admin.token)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["items"][0]["owner_id"], bob.user_id.as_str());
    assert_eq!(page["items"][0]["owner_email"], "bob@example.com");
    let (_, one) = app.get(&format!("/api/projects/{adas}"), Some(&ada.token)).await;
    assert_eq!(
        (one["owner_id"].as_str(), one["owner_email"].as_str()),
        (Some(ada.user_id.as_str()), Some("ada@example.com"))
    );
    let (status, body) = app.get("/api/projects?owner_id=nobody@example.com", Some(&admin.token)).await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["owner_id"]);
}

#[tokio::test]
async fn an_admin_sets_a_plan_and_the_cli_creates_an_account_on_one() {
    let app = TestApp::spawn().await;
    let admin = app.admin("root@example.com").await;
    let ada = app.register("ada@example.com").await;
    let (status, user) =
        app.patch(&format!("/api/admin/users/{}", ada.user_id), Some(&admin.token), json!({"plan_type": "team"})).await;
    assert_eq!((status, user["plan_type"].as_str()), (StatusCode::OK, Some("team")), "{user}");
    let (status, body) =
        app.patch(&format!("/api/admin/users/{}", ada.user_id), Some(&admin.token), json!({"plan_type": "gold"})).await;
    assert!(status.is_client_error(), "{status} {body}");
    let (status, body) = app.patch("/api/auth/me", Some(&ada.token), json!({"plan_type": "enterprise"})).await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);

    let create = |plan: &str| {
        let mut cmd = devx_command();
        cmd.env("DATABASE_URL", app.db.url()).args(["users", "create", "--email", "cli@example.com", "--plan", plan]);
        cmd
    };
    let (code, _, stderr) = run(&mut create("gold"), "correct horse battery\n");
    assert_eq!(code, 2, "{stderr}");
    let (code, stdout, stderr) = run(&mut create("enterprise"), "correct horse battery\n");
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("plan enterprise"), "{stdout}");
    let (status, page) = app.get("/api/admin/users?plan_type=enterprise", Some(&admin.token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["items"][0]["email"], "cli@example.com");
}

#[tokio::test]
async fn imported_accounts_sign_in_and_bcrypt_hashes_become_argon2id() {
    let app = TestApp::spawn().await;
    let admin = app.admin("root@example.com").await;
    let two_y = bcrypt_hash("old bcrypt password", bcrypt::Version::TwoY);
    let two_a = bcrypt_hash("another old password", bcrypt::Version::TwoA);
    let argon = devx::accounts::secrets::hash_password("an argon2 password").unwrap();
    let csv = format!(
        "email,name,password_hash,plan,created_at\n\
         old@example.com,Old Timer,{two_y},team,2019-05-01T08:00:00Z\n\
         \"quoted@example.com\",\"Doe, Jane\",\"{argon}\",,\n"
    );
    let import = |body: String, content_type: &'static str| {
        app.request(Method::POST, "/api/admin/users/import", Some(&admin.token))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let resp = import(csv.clone(), "text/csv").await.unwrap();
    let status = resp.status();
    let report: Value = resp.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report, json!({"created": 2, "skipped": []}));

    // Run again: nothing new, each one skipped.
    let report: Value = import(csv, "text/csv; charset=utf-8").await.unwrap().json().await.unwrap();
    assert_eq!(report, json!({"created": 0, "skipped": ["old@example.com", "quoted@example.com"]}));

    let (_, page) = app.get("/api/admin/users?q=old@", Some(&admin.token)).await;
    let old = &page["items"][0];
    assert_eq!((old["name"].as_str(), old["plan_type"].as_str()), (Some("Old Timer"), Some("team")));
    assert_eq!(old["created_at"], "2019-05-01T08:00:00Z");
    let (_, page) = app.get("/api/admin/users?q=quoted@", Some(&admin.token)).await;
    assert_eq!(
        (page["items"][0]["name"].as_str(), page["items"][0]["plan_type"].as_str()),
        (Some("Doe, Jane"), Some("free"))
    );

    // JSON lines through the route; one bad line refuses the whole file.
    let jsonl = format!(
        "{{\"email\": \"json@example.com\", \"password_hash\": \"{two_a}\", \"plan\": \"personal\"}}\n\
         {{\"email\": \"bad\", \"password_hash\": \"md5:abc\"}}\n"
    );
    let resp = import(jsonl, "application/x-ndjson").await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = resp.json().await.unwrap();
    assert_eq!(fields(&problem), ["line 2: email", "line 2: password_hash"]);
    let resp = import("email\n".into(), "application/json").await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let client = app.db.client().await;
    let none: i64 = one(&client, "SELECT count(*) FROM devx.users WHERE email = 'json@example.com'", &[]).await;
    assert_eq!(none, 0, "nothing of a refused file is imported");
    let resp = app
        .request(Method::POST, "/api/admin/users/import", Some("not-a-token"))
        .header("content-type", "text/csv")
        .body("email\n")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    // The bcrypt account signs in with its old password; its hash becomes argon2id.
    let login = |email: &'static str, password: &'static str| {
        app.post("/api/auth/login", None, json!({"email": email, "password": password}))
    };
    let (status, _) = login("old@example.com", "wrong password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let stored = "SELECT password_hash FROM devx.users WHERE email = $1";
    assert_eq!(one::<String>(&client, stored, &[&"old@example.com"]).await, two_y, "a failure changes nothing");
    let (status, body) = login("old@example.com", "old bcrypt password").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let upgraded: String = one(&client, stored, &[&"old@example.com"]).await;
    assert!(upgraded.starts_with("$argon2id$"), "{upgraded}");
    let (status, _) = login("old@example.com", "old bcrypt password").await;
    assert_eq!(status, StatusCode::OK, "the new hash verifies the same password");
    let (status, _) = login("quoted@example.com", "an argon2 password").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one::<String>(&client, stored, &[&"quoted@example.com"]).await, argon, "argon2id is kept as it is");
    let audit: i64 = one(
        &client,
        "SELECT count(*) FROM devx.audit_logs WHERE entity_type = 'devx.users' AND action = 'insert'
            AND actor = 'user:' || $1 AND entity_id <> $1",
        &[&admin.user_id],
    )
    .await;
    assert_eq!(audit, 2, "each imported account is in the audit trail, as the admin's change");

    // The CLI reads the same formats from a file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("accounts.jsonl");
    std::fs::write(
        &file,
        format!("{{\"email\": \"json@example.com\", \"password_hash\": \"{two_a}\", \"plan\": \"personal\"}}\n"),
    )
    .unwrap();
    let mut cmd = devx_command();
    cmd.env("DATABASE_URL", app.db.url()).args(["users", "import"]).arg(&file);
    let (code, stdout, stderr) = run(&mut cmd, "");
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("imported 1 accounts"), "{stdout}");
    let (status, _) = login("json@example.com", "another old password").await;
    assert_eq!(status, StatusCode::OK);
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "email,password_hash\nx@example.com,plaintext\n").unwrap();
    let mut cmd = devx_command();
    cmd.env("DATABASE_URL", app.db.url()).args(["users", "import"]).arg(&bad);
    let (code, _, stderr) = run(&mut cmd, "");
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("line 2: password_hash"), "{stderr}");
}

#[tokio::test]
async fn registration_answers_the_account_as_stored() {
    let app = TestApp::spawn().await;
    let (status, body) = app
        .post("/api/auth/register", None, json!({"email": "new@example.com", "password": "correct horse battery"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let token = body["token"].as_str().unwrap();
    assert!(body["user"]["last_login"].is_string(), "{body}");
    let (_, me) = app.get("/api/auth/me", Some(token)).await;
    assert_eq!(body["user"]["last_login"], me["last_login"]);
}

#[tokio::test]
async fn a_user_lists_and_ends_their_own_sessions_only() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let bob = app.register("bob@example.com").await;
    let resp = app
        .request(Method::POST, "/api/auth/login", None)
        .header("user-agent", "laptop/1.0")
        .json(&json!({"email": "ada@example.com", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    let laptop: Value = resp.json().await.unwrap();
    let laptop = laptop["token"].as_str().unwrap().to_string();

    let (status, page) = app.get("/api/auth/sessions", Some(&laptop)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{page}");
    assert_eq!(items[0]["user_agent"], "laptop/1.0", "newest first");
    assert_eq!((items[0]["current"].as_bool(), items[1]["current"].as_bool()), (Some(true), Some(false)));
    assert_eq!(items[0]["ip_address"], "127.0.0.1");
    for field in ["created_at", "last_activity", "expires_at"] {
        assert!(items[0][field].is_string(), "{field}: {page}");
    }
    assert!(items[0].get("token_hash").is_none());
    let first = items[1]["id"].as_str().unwrap().to_string();
    let walked = all_pages(&app, &laptop, "/api/auth/sessions?limit=1").await;
    assert_eq!(walked.len(), 2);

    // Another user's session is not there for bob.
    let (status, body) = app.delete(&format!("/api/auth/sessions/{first}"), Some(&bob.token)).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    let (status, _) = app.get("/api/auth/me", Some(&ada.token)).await;
    assert_eq!(status, StatusCode::OK);

    let (status, _) = app.delete(&format!("/api/auth/sessions/{first}"), Some(&laptop)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.get("/api/auth/me", Some(&ada.token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "that device is signed out");
    let (status, body) = app.delete(&format!("/api/auth/sessions/{first}"), Some(&laptop)).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    let (_, page) = app.get("/api/auth/sessions", Some(&laptop)).await;
    assert_eq!(ids(&page).len(), 1);
    let (_, page) = app.get("/api/auth/sessions", Some(&bob.token)).await;
    assert_eq!(ids(&page).len(), 1, "bob sees only his own");
}

#[tokio::test]
async fn a_person_is_named_by_id_or_email_when_assigning_tasks() {
    let app = TestApp::spawn().await;
    let dev = app.register("developer@example.com").await;
    let other = app.register("other@example.com").await;
    let root = app.admin("root@example.com").await;
    let p = project(&app, &dev, "spec").await;

    // At creation, by email in any case; the answer carries the user's id.
    let (status, task) = app
        .post(
            "/api/tasks",
            Some(&dev.token),
            json!({"project_id": p, "title": "Implement auth", "assigned_to": "Developer@Example.com"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{task}");
    assert_eq!(task["assigned_to"], dev.user_id.as_str());
    let task_id = crate::support::id(&task);
    let (_, page) = app.get("/api/tasks?assigned_to=developer@example.com", Some(&dev.token)).await;
    assert_eq!(ids(&page), [task_id.as_str()]);

    // An unknown email is a 422, another person a user may not assign a
    // 404 (as their id would be), each naming the field.
    for (named, expected) in
        [("nobody@example.com", StatusCode::UNPROCESSABLE_ENTITY), ("other@example.com", StatusCode::NOT_FOUND)]
    {
        let (status, body) =
            app.patch(&format!("/api/tasks/{task_id}"), Some(&dev.token), json!({"assigned_to": named})).await;
        assert_problem(status, &body, expected);
        assert_eq!(fields(&body), ["assigned_to"], "{named}: {body}");
    }
    let (status, body) = app
        .post(
            "/api/tasks",
            Some(&dev.token),
            json!({"project_id": p, "title": "t", "assigned_to": "nobody@example.com"}),
        )
        .await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, body) =
        app.patch(&format!("/api/tasks/{task_id}"), Some(&dev.token), json!({"assigned_to": "not a person"})).await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["assigned_to"]);
    let client = app.db.client().await;
    let tasks: i64 = one(&client, "SELECT count(*) FROM devx.tasks", &[]).await;
    assert_eq!(tasks, 1, "refused requests changed nothing");

    // An admin names anyone, by email; null clears; an id still works.
    let (status, body) = app
        .patch(&format!("/api/tasks/{task_id}"), Some(&root.token), json!({"assigned_to": "other@example.com"}))
        .await;
    assert_eq!((status, body["assigned_to"].as_str()), (StatusCode::OK, Some(other.user_id.as_str())), "{body}");
    let (status, body) =
        app.patch(&format!("/api/tasks/{task_id}"), Some(&root.token), json!({"assigned_to": null})).await;
    assert_eq!((status, body["assigned_to"].clone()), (StatusCode::OK, Value::Null));
    let (status, body) =
        app.patch(&format!("/api/tasks/{task_id}"), Some(&dev.token), json!({"assigned_to": dev.user_id})).await;
    assert_eq!((status, body["assigned_to"].as_str()), (StatusCode::OK, Some(dev.user_id.as_str())));
    let (status, body) = app.get("/api/tasks?assigned_to=nobody@example.com", Some(&dev.token)).await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
}
