//! The template catalog over HTTP: public reads with filters and keyset
//! pages, admin writes, and the built-in fallback when the database is down.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::app::{TestApp, assert_problem};
use crate::support::{column, pages};

fn slugs(page: &Value) -> Vec<String> {
    page["items"].as_array().unwrap().iter().map(|t| t["slug"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn the_catalog_is_public_filterable_and_paged() {
    let app = TestApp::spawn().await;
    let builtin = devx::catalog::builtin::catalog();

    let (status, page) = app.get("/api/templates?limit=200", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(slugs(&page).len(), builtin.templates.len(), "every built-in template is seeded");
    assert!(page["items"][0].get("files").is_none(), "lists leave the files out");

    // Walk the pages: every template exactly once.
    let seen: Vec<String> = pages(&app, None, "/api/templates?limit=5").await.iter().flat_map(slugs).collect();
    let mut expected: Vec<String> = builtin.templates.iter().map(|t| t.summary.slug.clone()).collect();
    expected.sort();
    assert_eq!(seen, expected);

    // Filters agree with the built-in data.
    let first = &builtin.templates[0].summary;
    let (_, by_category) = app.get(&format!("/api/templates?category={}", first.category), None).await;
    let want: Vec<String> = builtin
        .templates
        .iter()
        .filter(|t| t.summary.category == first.category)
        .map(|t| t.summary.slug.clone())
        .collect();
    assert_eq!(slugs(&by_category), want);
    let tech = &first.tech_stack[0];
    let (_, by_tech) = app.get(&format!("/api/templates?technology={tech}"), None).await;
    assert!(slugs(&by_tech).contains(&first.slug));
    assert!(
        by_tech["items"].as_array().unwrap().iter().all(|t| t["tech_stack"].as_array().unwrap().contains(&json!(tech)))
    );
    let (_, by_q) = app.get(&format!("/api/templates?q={}", &first.name[..4].to_uppercase()), None).await;
    assert!(slugs(&by_q).contains(&first.slug), "q matches without case");
    let (_, simple) = app.get("/api/templates?complexity=simple", None).await;
    assert!(simple["items"].as_array().unwrap().iter().all(|t| t["complexity"] == "simple"));

    let (status, one) = app.get(&format!("/api/templates/{}", first.slug), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["files"].as_object().unwrap().len(), builtin.templates[0].files.len());

    let (status, cats) = app.get("/api/templates/categories", None).await;
    assert_eq!(status, StatusCode::OK);
    let total: i64 = cats.as_array().unwrap().iter().map(|c| c["template_count"].as_i64().unwrap()).sum();
    assert_eq!(total as usize, builtin.templates.len());
    let (status, techs) = app.get("/api/templates/technologies", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!techs.as_array().unwrap().is_empty());

    let (status, body) = app.get("/api/templates/no-such-template", None).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = app.get("/api/templates?complexity=extreme", None).await;
    assert_problem(status, &body, StatusCode::BAD_REQUEST);
    let (status, body) = app.get("/api/templates?cursor=garbage", None).await;
    assert_problem(status, &body, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn admins_write_templates_and_users_cannot() {
    let app = TestApp::spawn().await;
    let admin = app.admin("admin@example.com").await;
    let user = app.register("user@example.com").await;
    let template = json!({
        "slug": "hello-rust", "name": "Hello Rust", "description": "A tiny binary", "category": "cli",
        "files": {"src/main.rs": "fn main() { println!(\"{{GREETING}}\"); }"},
        "required_vars": ["GREETING"], "tech_stack": ["rust"], "tags": ["starter"],
        "estimated_setup_time": 2, "complexity": "simple"
    });

    let (status, body) = app.post("/api/templates", Some(&user.token), template.clone()).await;
    assert_problem(status, &body, StatusCode::FORBIDDEN);
    let (status, body) = app.post("/api/templates", Some(&admin.token), template.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = app.post("/api/templates", Some(&admin.token), template.clone()).await;
    assert_problem(status, &body, StatusCode::CONFLICT);
    assert_eq!(body["errors"][0]["field"], "slug");

    let mut bad = template.clone();
    bad["slug"] = json!("other");
    bad["category"] = json!("no-such-category");
    bad["files"] = json!({"../etc/passwd": "x"});
    let (status, body) = app.post("/api/templates", Some(&admin.token), bad.clone()).await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    // Well formed, but naming a category that is not there: 404 naming it.
    bad["files"] = json!({"README.md": "x"});
    let (status, body) = app.post("/api/templates", Some(&admin.token), bad).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    assert_eq!(body["errors"][0]["field"], "category");

    let (status, body) =
        app.patch("/api/templates/hello-rust", Some(&admin.token), json!({"tags": ["starter", "cli"]})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["tags"], json!(["starter", "cli"]));
    assert_eq!(body["name"], "Hello Rust", "untouched fields stay");

    let (status, _) = app.delete("/api/templates/hello-rust", Some(&admin.token)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(app.get("/api/templates/hello-rust", None).await.0, StatusCode::NOT_FOUND);

    let actors: Vec<String> = column(
        &app.db.client().await,
        "SELECT actor FROM devx.audit_logs WHERE entity_type = 'templates.templates' AND actor LIKE 'user:%' ORDER BY id",
        &[],
    )
    .await;
    assert_eq!(actors.len(), 3, "insert, update, delete audited: {actors:?}");
    assert!(actors.iter().all(|a| a == &format!("user:{}", admin.user_id)));
}

#[tokio::test]
async fn the_catalog_is_served_from_the_binary_when_the_database_is_down() {
    let app = TestApp::spawn_private("devx-outage-", |_| {}).await;
    crate::outage::take_database_down(&app).await;

    let resp = app.http.get(app.url("/api/templates?limit=3")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["x-devx-source"], "builtin-fallback");
    let page: Value = resp.json().await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 3);
    assert!(page["next_cursor"].is_string());

    let slug = &devx::catalog::builtin::catalog().templates[0].summary.slug;
    let resp = app.http.get(app.url(&format!("/api/templates/{slug}"))).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["x-devx-source"], "builtin-fallback");
    let resp = app.http.get(app.url("/api/templates/categories")).send().await.unwrap();
    assert_eq!(resp.headers()["x-devx-source"], "builtin-fallback");

    // Everything else says the database is unavailable, at once, with Retry-After.
    let resp = app
        .http
        .post(app.url("/api/auth/login"))
        .json(&json!({"email": "a@b.co", "password": "whatever1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(resp.headers().contains_key("retry-after"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["type"], "/problems/database-unavailable");

    crate::outage::bring_database_back(&app).await;
}

/// A non-public template is seen by its creator and administrators only:
/// anyone else gets a 404 for it and does not find it in the list, and
/// cannot create a project from it.
#[tokio::test]
async fn a_non_public_template_is_missing_to_everyone_but_its_creator_and_admins() {
    let app = TestApp::spawn().await;
    let admin = app.admin("root@example.com").await;
    let ann = app.register("ann@example.com").await;
    let body = json!({"slug": "internal-kit", "name": "Internal kit", "category": "web", "complexity": "simple",
                      "is_public": false, "files": {"README.md": "internal"}});
    let (status, created) = app.post("/api/templates", Some(&admin.token), body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");

    for token in [None, Some(ann.token.as_str())] {
        let (status, _) = app.get("/api/templates/internal-kit", token).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "detail as {token:?}");
        let (_, page) = app.get("/api/templates?limit=200", token).await;
        assert!(!page["items"].as_array().unwrap().iter().any(|t| t["slug"] == "internal-kit"), "listed to {token:?}");
    }
    let (status, body) =
        app.post("/api/projects", Some(&ann.token), json!({"name": "p", "template": "internal-kit"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    let (status, got) = app.get("/api/templates/internal-kit", Some(&admin.token)).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["is_public"], false);
    let (_, page) = app.get("/api/templates?limit=200", Some(&admin.token)).await;
    assert!(page["items"].as_array().unwrap().iter().any(|t| t["slug"] == "internal-kit"));
    let (status, body) = app.get("/api/templates/internal-kit", Some("not-a-token")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a token that is sent must be valid: {body}");
}

fn template_in(slug: &str, category: &str, tech: &[&str]) -> Value {
    json!({
        "slug": slug, "name": "T", "category": category, "files": {"README.md": "x"},
        "tech_stack": tech, "complexity": "simple"
    })
}

/// Admins add, change and remove categories and technologies through the
/// API: slugs checked, a taken one a 409, `microservice` added and used by
/// a template, a category or technology in use refused on delete with a 409
/// naming the template, a technology's new slug carried into templates; every
/// change audited under the admin.
#[tokio::test]
async fn admins_manage_categories_and_technologies_and_one_in_use_cannot_be_deleted() {
    let app = TestApp::spawn().await;
    let admin = app.admin("admin@example.com").await;
    let ada = app.register("ada@example.com").await;
    let a = Some(admin.token.as_str());
    let micro =
        json!({"slug": "microservice", "name": "Microservices", "description": "Small services", "sort_order": 25});

    let (status, body) = app.post("/api/templates/categories", Some(&ada.token), micro.clone()).await;
    assert_problem(status, &body, StatusCode::FORBIDDEN);
    let (status, body) = app.post("/api/templates/categories", None, micro.clone()).await;
    assert_problem(status, &body, StatusCode::UNAUTHORIZED);
    let (status, body) = app
        .post("/api/templates/categories", a, json!({"slug": "Micro_Service", "name": " ", "sort_order": 2e6}))
        .await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    let resp = app.request(reqwest::Method::POST, "/api/templates/categories", a).json(&micro).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(resp.headers()["location"], "/api/templates/categories/microservice");
    let etag = resp.headers()["etag"].to_str().unwrap().to_string();
    let created: Value = resp.json().await.unwrap();
    assert_eq!(
        created,
        json!({"slug": "microservice", "name": "Microservices", "description": "Small services",
                               "sort_order": 25, "template_count": 0})
    );
    let (status, body) = app.post("/api/templates/categories", a, micro.clone()).await;
    assert_problem(status, &body, StatusCode::CONFLICT);
    assert!(body["detail"].as_str().unwrap().contains("category with this slug"), "{body}");
    let resp = app.request(reqwest::Method::GET, "/api/templates/categories/microservice", None).send().await.unwrap();
    assert_eq!(resp.headers()["etag"].to_str().unwrap(), etag);
    let (_, list) = app.get("/api/templates/categories", None).await;
    let slugs: Vec<&str> = list.as_array().unwrap().iter().map(|c| c["slug"].as_str().unwrap()).collect();
    let at = slugs.iter().position(|s| *s == "microservice").expect("listed");
    assert_eq!(&slugs[at - 1..=at + 1], ["api", "microservice", "mobile"], "in sort order (20, 25, 30)");

    // A template in it: the category cannot go, and the 409 names the template.
    let (status, body) = app.post("/api/templates", a, template_in("orders-service", "microservice", &[])).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = app.delete("/api/templates/categories/microservice", a).await;
    let problem = assert_problem(status, &body, StatusCode::CONFLICT);
    assert!(problem["detail"].as_str().unwrap().contains("orders-service"), "{problem}");
    let (status, _) = app.get("/api/templates/categories/microservice", None).await;
    assert_eq!(status, StatusCode::OK, "a refused delete changes nothing");

    // Renamed, its template follows; then emptied and deleted.
    let (status, body) = app
        .patch("/api/templates/categories/microservice", a, json!({"slug": "microservices", "sort_order": 26}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["slug"], "microservices");
    assert_eq!(body["template_count"], 1);
    let (_, t) = app.get("/api/templates/orders-service", None).await;
    assert_eq!(t["category"], "microservices");
    let (status, body) = app.patch("/api/templates/categories/microservices", a, json!({"slug": "web"})).await;
    assert_problem(status, &body, StatusCode::CONFLICT);
    let (status, body) = app.patch("/api/templates/categories/nope", a, json!({"name": "x"})).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    app.delete("/api/templates/orders-service", a).await;
    let (status, _) = app.delete("/api/templates/categories/microservices", a).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app.get("/api/templates/categories/microservices", None).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = app.delete("/api/templates/categories/microservices", a).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);

    // Technologies: kind checked; a new slug is carried into tech_stack; in use, not deleted.
    let (status, body) = app
        .post("/api/templates/technologies", a, json!({"slug": "kotlin", "name": "Kotlin", "kind": "dialect"}))
        .await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, body) = app
        .post("/api/templates/technologies", a, json!({"slug": "kotlin", "name": "Kotlin", "kind": "language"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["kind"], "language");
    app.post("/api/templates", a, template_in("ktor-api", "api", &["kotlin", "gradle"])).await;
    let (status, body) = app.patch("/api/templates/technologies/kotlin", a, json!({"slug": "kotlin-jvm"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["template_count"], 1);
    let (_, t) = app.get("/api/templates/ktor-api", None).await;
    assert_eq!(t["tech_stack"], json!(["kotlin-jvm", "gradle"]));
    // A bad body is a 422 even under a stale If-Match; a good one under it is a 412; neither changes it.
    for (body, expected) in [
        (json!({"slug": "Not A Slug"}), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({"name": "JVM Kotlin"}), StatusCode::PRECONDITION_FAILED),
    ] {
        let answer = app
            .request(reqwest::Method::PATCH, "/api/templates/technologies/kotlin-jvm", a)
            .header("if-match", "\"stale\"")
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = answer.status();
        let problem: Value = answer.json().await.unwrap();
        assert_problem(status, &problem, expected);
    }
    let (_, kotlin) = app.get("/api/templates/technologies/kotlin-jvm", None).await;
    assert_eq!(kotlin["name"], "Kotlin", "unchanged: {kotlin}");
    let (status, body) = app.delete("/api/templates/technologies/kotlin-jvm", a).await;
    let problem = assert_problem(status, &body, StatusCode::CONFLICT);
    assert!(problem["detail"].as_str().unwrap().contains("ktor-api"), "{problem}");
    app.delete("/api/templates/ktor-api", a).await;
    let (status, _) = app.delete("/api/templates/technologies/kotlin-jvm", a).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.delete("/api/templates/technologies/kotlin-jvm", Some(&ada.token)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The trail: each write under the admin.
    let client = app.db.client().await;
    let trail: Vec<String> = column(
        &client,
        "SELECT entity_type || ' ' || action FROM devx.audit_logs
          WHERE entity_type IN ('templates.categories', 'templates.technologies') AND actor = $1 ORDER BY id",
        &[&format!("user:{}", admin.user_id)],
    )
    .await;
    assert_eq!(
        trail,
        [
            "templates.categories insert",
            "templates.categories update",
            "templates.categories delete",
            "templates.technologies insert",
            "templates.technologies update",
            "templates.technologies delete",
        ]
    );
}

/// `devx catalog` does what the API does, with the same checks: usage
/// errors exit 2 naming the option, a refusal exits 1 with the API's words,
/// and its writes are audited as `system:cli`.
#[tokio::test]
async fn devx_catalog_lists_adds_changes_and_removes_categories_and_technologies() {
    let app = TestApp::spawn().await;
    let run = |args: &[&str]| {
        let out = crate::harness::devx_command().env("DATABASE_URL", app.db.url()).args(args).output().unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
    };
    let (code, out, err) = run(&[
        "catalog",
        "categories",
        "add",
        "--slug",
        "microservice",
        "--name",
        "Microservices",
        "--sort-order",
        "25",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("added category microservice"), "{out}");
    let (_, api) = app.get("/api/templates/categories/microservice", None).await;
    assert_eq!(api["sort_order"], 25);
    let (code, out, _) = run(&["catalog", "categories", "list"]);
    assert_eq!(code, 0);
    assert!(out.lines().any(|l| l.starts_with("microservice ") && l.ends_with("Microservices")), "{out}");

    let (code, _, err) = run(&["catalog", "categories", "add", "--slug", "Bad Slug", "--name", "x"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--slug must be"), "{err}");
    let (code, _, err) = run(&["catalog", "categories", "add", "--slug", "microservice", "--name", "Again"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("already exists"), "{err}");
    let (code, out, err) = run(&["catalog", "categories", "update", "microservice", "--name", "Micro-services"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Micro-services"), "{out}");
    let (_, api) = app.get("/api/templates/categories/microservice", None).await;
    assert_eq!(api["name"], "Micro-services");
    // A built-in category with templates is refused, naming one.
    let web = devx::catalog::builtin::catalog().templates.iter().find(|t| t.summary.category == "web").unwrap();
    let (code, _, err) = run(&["catalog", "categories", "remove", "web"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&web.summary.slug), "{err}");
    let (code, _, err) = run(&["catalog", "categories", "remove", "nope"]);
    assert_eq!(code, 1);
    assert!(err.contains("no category has the slug nope"), "{err}");
    let (code, _, err) = run(&["catalog", "categories", "remove", "microservice"]);
    assert_eq!(code, 0, "{err}");
    let (status, _) = app.get("/api/templates/categories/microservice", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (code, _, err) =
        run(&["catalog", "technologies", "add", "--slug", "kotlin", "--name", "Kotlin", "--kind", "dialect"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) =
        run(&["catalog", "technologies", "add", "--slug", "kotlin", "--name", "Kotlin", "--kind", "language"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(&["catalog", "technologies", "update", "kotlin", "--kind", "platform"]);
    assert_eq!(code, 0, "{err}");
    let (_, api) = app.get("/api/templates/technologies/kotlin", None).await;
    assert_eq!(api["kind"], "platform");
    let (code, out, _) = run(&["catalog", "technologies", "list"]);
    assert_eq!(code, 0);
    assert!(out.lines().any(|l| l.starts_with("kotlin ") && l.contains("platform")), "{out}");
    let (code, _, err) = run(&["catalog", "technologies", "remove", "rust"]);
    assert_eq!(code, 1, "rust is in built-in templates' stacks: {err}");
    let (code, _, err) = run(&["catalog", "technologies", "remove", "kotlin"]);
    assert_eq!(code, 0, "{err}");

    let client = app.db.client().await;
    let actors: Vec<String> = column(
        &client,
        "SELECT actor FROM devx.audit_logs
          WHERE entity_type IN ('templates.categories', 'templates.technologies') AND actor NOT IN ('system:catalog-seed', 'system:test-seed')
          ORDER BY id",
        &[],
    )
    .await;
    assert_eq!(actors.len(), 6, "two adds, two changes, two removals: {actors:?}");
    assert!(actors.iter().all(|a| a.starts_with("system:cli")), "{actors:?}");
}
