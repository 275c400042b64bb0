//! Chat messages and file records over real HTTP: keyset paging both ways
//! over hundreds of messages, input rules, path validation, replace-on-repost,
//! and another user's ids answering 404.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::app::{TestApp, assert_problem};
use crate::support::{column, fields, pages, project, walk};

#[tokio::test]
async fn chat_paging_returns_every_message_once_in_order_both_ways() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let p = project(&app, &ada, "chatty").await;
    let t = Some(ada.token.as_str());

    // 240 messages over HTTP in two conversations...
    let mut posted = Vec::new();
    for i in 0..240 {
        let session = if i % 3 == 0 { "s-one" } else { "s-two" };
        let role = ["user", "assistant", "system"][i % 3];
        let (status, m) = app
            .post(
                &format!("/api/projects/{p}/messages"),
                t,
                json!({"session_id": session, "role": role, "content": format!("message {i}")}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{m}");
        posted.push((m["id"].as_str().unwrap().to_string(), session));
    }
    // ...and 60 more at one instant, so that ties on created_at are broken by id.
    let client = app.db.client().await;
    let tied: Vec<String> = column(
        &client,
        "INSERT INTO devx.chat_messages (project_id, session_id, role, content, created_at)
             SELECT $1::text::uuid, 's-two', 'assistant', 'tied ' || g, now() + interval '1 hour'
               FROM generate_series(1, 60) g
             RETURNING id::text",
        &[&p],
    )
    .await;
    let mut tied_sorted = tied.clone();
    tied_sorted.sort();
    // Another project's messages never show.
    let other = project(&app, &ada, "other").await;
    app.post(
        &format!("/api/projects/{other}/messages"),
        t,
        json!({"session_id": "s-one", "role": "user", "content": "elsewhere"}),
    )
    .await;

    let mut expected: Vec<String> = posted.iter().map(|(id, _)| id.clone()).collect();
    expected.extend(tied_sorted.iter().cloned());

    for limit in [1, 37, 200] {
        let forward = walk(&app, &ada.token, &format!("/api/projects/{p}/messages?order=asc"), limit).await;
        assert_eq!(forward.len(), 300, "limit {limit}");
        assert_eq!(forward, expected, "oldest first, every row once (limit {limit})");
    }
    let default = walk(&app, &ada.token, &format!("/api/projects/{p}/messages?"), 50).await;
    assert_eq!(default, expected, "asc is the default");
    let backward = walk(&app, &ada.token, &format!("/api/projects/{p}/messages?order=desc"), 37).await;
    let mut reversed = expected.clone();
    reversed.reverse();
    assert_eq!(backward, reversed, "newest first with order=desc");
    let unique: HashSet<&String> = backward.iter().collect();
    assert_eq!(unique.len(), 300);

    // One conversation, both ways.
    let one: Vec<String> = posted.iter().filter(|(_, s)| *s == "s-one").map(|(id, _)| id.clone()).collect();
    let got = walk(&app, &ada.token, &format!("/api/projects/{p}/messages?session_id=s-one"), 7).await;
    assert_eq!(got, one);
    let mut two: Vec<String> = posted.iter().filter(|(_, s)| *s == "s-two").map(|(id, _)| id.clone()).collect();
    two.extend(tied_sorted.iter().cloned());
    let got = walk(&app, &ada.token, &format!("/api/projects/{p}/messages?session_id=s-two&order=desc"), 23).await;
    two.reverse();
    assert_eq!(got, two);

    // A message reads back as it was written.
    let (_, first) = app.get(&format!("/api/projects/{p}/messages?limit=1"), t).await;
    assert_eq!(first["items"][0]["content"], "message 0");
    assert_eq!(first["items"][0]["role"], "user");
    assert_eq!(first["items"][0]["attachments"], json!([]));
    assert_eq!(first["items"][0]["metadata"], json!({}));

    let (status, body) = app.get(&format!("/api/projects/{p}/messages?cursor=garbage"), t).await;
    assert_problem(status, &body, StatusCode::BAD_REQUEST);
    let (status, body) = app.get(&format!("/api/projects/{p}/messages?order=sideways"), t).await;
    assert_problem(status, &body, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_last_chat_page_is_read_by_seeking_not_scanning() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let p = project(&app, &ada, "big").await;
    let client = app.db.client().await;
    client
        .execute(
            "INSERT INTO devx.chat_messages (project_id, session_id, role, content, created_at)
             SELECT $1::text::uuid, 's-' || (g % 10), 'user', 'm' || g, now() + g * interval '1 ms'
               FROM generate_series(1, 100000) g",
            &[&p],
        )
        .await
        .unwrap();
    client.batch_execute("ANALYZE devx.chat_messages").await.unwrap();
    let t = Some(ada.token.as_str());
    // A cursor near the end: the third-newest message.
    let (_, last) = app.get(&format!("/api/projects/{p}/messages?order=desc&limit=3"), t).await;
    let cursor = last["next_cursor"].as_str().unwrap().to_string();
    // Run the deep page more than five times, so PostgreSQL may switch to a
    // cached generic plan; each must still come back at once.
    for _ in 0..8 {
        let started = std::time::Instant::now();
        let (status, page) =
            app.get(&format!("/api/projects/{p}/messages?order=asc&limit=50&cursor={cursor}"), t).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(page["items"].as_array().unwrap().len(), 2, "{page}");
        assert!(started.elapsed() < std::time::Duration::from_millis(500), "deep page took {:?}", started.elapsed());
    }
    // What a page costs, in buffers touched, near the start and near the end,
    // forward and backward, for the project and for one conversation, with
    // the generic plan PostgreSQL may cache: the same few pages each time (a
    // scan to the end would touch well over a thousand).
    client
        .batch_execute(
            "SET plan_cache_mode = force_generic_plan;
             PREPARE fwd(uuid, timestamptz, uuid) AS
               SELECT m.id FROM devx.chat_messages m
                WHERE m.project_id = $1 AND (m.created_at, m.id) > ($2, $3)
                ORDER BY m.created_at ASC, m.id ASC LIMIT 51;
             PREPARE back(uuid, timestamptz, uuid) AS
               SELECT m.id FROM devx.chat_messages m
                WHERE m.project_id = $1 AND (m.created_at, m.id) < ($2, $3)
                ORDER BY m.created_at DESC, m.id DESC LIMIT 51;
             PREPARE conv(uuid, timestamptz, uuid) AS
               SELECT m.id FROM devx.chat_messages m
                WHERE m.project_id = $1 AND m.session_id = 's-3' AND (m.created_at, m.id) > ($2, $3)
                ORDER BY m.created_at ASC, m.id ASC LIMIT 51;",
        )
        .await
        .unwrap();
    let key_at = |offset: i64| {
        let client = &client;
        let p = p.clone();
        async move {
            let row = client
                .query_one(
                    "SELECT created_at::text, id::text FROM devx.chat_messages WHERE project_id = $1::text::uuid
                      ORDER BY created_at, id OFFSET $2 LIMIT 1",
                    &[&p, &offset],
                )
                .await
                .unwrap();
            (row.get::<_, String>(0), row.get::<_, String>(1))
        }
    };
    for (statement, offset) in
        [("fwd", 10), ("fwd", 99_900), ("back", 99_990), ("back", 100), ("conv", 10), ("conv", 99_000)]
    {
        let (at, id) = key_at(offset).await;
        let (rows, buffers, plan) = cost(&client, &format!("{statement}('{p}', '{at}', '{id}')")).await;
        assert!(rows > 0, "{statement} at {offset}: {plan}");
        assert!(buffers < 50, "{statement} at {offset} touched {buffers} buffers: {plan:#}");
    }
}

/// A project whose messages are all older than everyone else's (or all
/// newer) still gets its newest (oldest) page from its own index: the
/// planner, given a custom plan and an index on `created_at` alone, would
/// walk every other project's newer messages backwards and filter, since it
/// assumes the project's rows are spread evenly over time. The index
/// retention needs on `created_at` is partial, on a predicate only
/// retention's statement states, so no page can take that path.
#[tokio::test]
async fn a_projects_first_page_never_walks_other_projects_messages() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let client = app.db.client().await;
    // Fixed ids: how the project ids sort against the heap order sets the
    // planner's estimate; these are ones where a plain created_at index
    // wins the custom plan.
    client
        .batch_execute(&format!(
            "INSERT INTO devx.projects (id, owner_id, name)
             SELECT md5('p' || g)::uuid, '{owner}', 'p' || g FROM generate_series(1, 51) g;
             INSERT INTO devx.chat_messages (project_id, session_id, role, content, created_at)
             SELECT md5('p1')::uuid, 's', 'user', 'old ' || g, '2026-01-01'::timestamptz + g * interval '10 ms'
               FROM generate_series(1, 5000) g;
             INSERT INTO devx.chat_messages (project_id, session_id, role, content, created_at)
             SELECT md5('p' || (2 + g % 50))::uuid, 's', 'user', 'busy ' || g,
                    '2026-02-01'::timestamptz + g * interval '1 s'
               FROM generate_series(1, 50000) g;
             ANALYZE devx.chat_messages;",
            owner = ada.user_id,
        ))
        .await
        .unwrap();
    let old: String = client.query_one("SELECT md5('p1')::uuid::text", &[]).await.unwrap().get(0);
    let newest: String = client
        .query_one("SELECT project_id::text FROM devx.chat_messages ORDER BY created_at DESC LIMIT 1", &[])
        .await
        .unwrap()
        .get(0);
    // The statement devx sends for a first page, every column (so no
    // index-only scan hides the heap), under a custom plan and a generic one.
    for mode in ["force_custom_plan", "force_generic_plan"] {
        client
            .batch_execute(&format!(
                "DEALLOCATE ALL;
                 SET plan_cache_mode = {mode};
                 PREPARE newest(uuid, bigint) AS
                   SELECT m.id, m.project_id, m.container_id, m.session_id, m.role, m.content, m.attachments,
                          m.metadata, m.created_at
                     FROM devx.chat_messages m WHERE m.project_id = $1
                    ORDER BY m.created_at DESC, m.id DESC LIMIT $2;
                 PREPARE oldest(uuid, bigint) AS
                   SELECT m.id, m.project_id, m.container_id, m.session_id, m.role, m.content, m.attachments,
                          m.metadata, m.created_at
                     FROM devx.chat_messages m WHERE m.project_id = $1
                    ORDER BY m.created_at ASC, m.id ASC LIMIT $2;"
            ))
            .await
            .unwrap();
        for call in [format!("newest('{old}', 21)"), format!("oldest('{newest}', 21)")] {
            let (rows, buffers, plan) = cost(&client, &call).await;
            assert_eq!(rows, 21, "{call}: {plan}");
            assert!(buffers < 50, "{call} under {mode} touched {buffers} buffers: {plan:#}");
        }
    }
    // Through the API too: the old project's newest page is its last messages.
    let (status, page) = app.get(&format!("/api/projects/{old}/messages?order=desc&limit=3"), Some(&ada.token)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let contents: Vec<&str> =
        page["items"].as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap()).collect();
    assert_eq!(contents, ["old 5000", "old 4999", "old 4998"]);
}

/// What executing a prepared statement (`name(args)`) costs: the rows it
/// returned, the buffers it touched, and its plan.
async fn cost(client: &tokio_postgres::Client, call: &str) -> (i64, i64, Value) {
    let explain = format!("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE {call}");
    let rows = client.simple_query(&explain).await.unwrap();
    let json = rows
        .into_iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .unwrap();
    let plan: Value = serde_json::from_str(&json).unwrap();
    let top = &plan[0]["Plan"];
    let buffers = top["Shared Hit Blocks"].as_i64().unwrap() + top["Shared Read Blocks"].as_i64().unwrap();
    (top["Actual Rows"].as_i64().unwrap(), buffers, plan)
}

/// A container's chat is paged like a project's: a deep page, forward,
/// backward or in one conversation, touches a few index pages, with the
/// generic plan PostgreSQL may cache, among messages of other containers.
#[tokio::test]
async fn a_containers_last_chat_page_is_read_by_seeking_not_scanning() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let t = Some(ada.token.as_str());
    let (_, c) = app.post("/api/containers", t, json!({"container_id": "rt-big", "name": "big"})).await;
    let c = c["id"].as_str().unwrap().to_string();
    let (_, p) = app.post("/api/projects", t, json!({"name": "big", "container_id": c})).await;
    let p = p["id"].as_str().unwrap().to_string();
    let q = project(&app, &ada, "neighbour").await;
    let (_, k) =
        app.post(&format!("/api/projects/{q}/containers"), t, json!({"container_id": "rt-k", "name": "k"})).await;
    let k = k["id"].as_str().unwrap().to_string();
    let client = app.db.client().await;
    for (project, container) in [(&p, &c), (&q, &k)] {
        client
            .execute(
                "INSERT INTO devx.chat_messages (project_id, container_id, session_id, role, content, created_at)
                 SELECT $1::text::uuid, $2::text::uuid, 's-' || (g % 10), 'user', 'm' || g, now() + g * interval '1 ms'
                   FROM generate_series(1, 50000) g",
                &[project, container],
            )
            .await
            .unwrap();
    }
    client.batch_execute("ANALYZE devx.chat_messages").await.unwrap();

    let (_, last) = app.get(&format!("/api/containers/{c}/messages?order=desc&limit=3"), t).await;
    let cursor = last["next_cursor"].as_str().unwrap().to_string();
    for _ in 0..8 {
        let (status, page) =
            app.get(&format!("/api/containers/{c}/messages?order=asc&limit=50&cursor={cursor}"), t).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(page["items"].as_array().unwrap().len(), 2, "{page}");
    }
    client
        .batch_execute(
            "SET plan_cache_mode = force_generic_plan;
             PREPARE fwd(uuid, timestamptz, uuid) AS
               SELECT m.id FROM devx.chat_messages m
                WHERE m.container_id = $1 AND (m.created_at, m.id) > ($2, $3)
                ORDER BY m.created_at ASC, m.id ASC LIMIT 51;
             PREPARE back(uuid, timestamptz, uuid) AS
               SELECT m.id FROM devx.chat_messages m
                WHERE m.container_id = $1 AND (m.created_at, m.id) < ($2, $3)
                ORDER BY m.created_at DESC, m.id DESC LIMIT 51;
             PREPARE conv(uuid, text, timestamptz, uuid) AS
               SELECT m.id FROM devx.chat_messages m
                WHERE m.container_id = $1 AND m.session_id = $2 AND (m.created_at, m.id) > ($3, $4)
                ORDER BY m.created_at ASC, m.id ASC LIMIT 51;",
        )
        .await
        .unwrap();
    for (statement, offset) in
        [("fwd", 10i64), ("fwd", 49_900), ("back", 49_990), ("back", 100), ("conv", 10), ("conv", 49_000)]
    {
        let row = client
            .query_one(
                "SELECT created_at::text, id::text FROM devx.chat_messages WHERE container_id = $1::text::uuid
                  ORDER BY created_at, id OFFSET $2 LIMIT 1",
                &[&c, &offset],
            )
            .await
            .unwrap();
        let (at, id): (String, String) = (row.get(0), row.get(1));
        let call = match statement {
            "conv" => format!("conv('{c}', 's-3', '{at}', '{id}')"),
            _ => format!("{statement}('{c}', '{at}', '{id}')"),
        };
        let (rows, buffers, plan) = cost(&client, &call).await;
        assert!(rows > 0, "{statement} at {offset}: {plan}");
        assert!(buffers < 50, "{statement} at {offset} touched {buffers} buffers: {plan:#}");
    }
}

#[tokio::test]
async fn chat_messages_are_validated() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let p = project(&app, &ada, "chat").await;
    let other = project(&app, &ada, "other").await;
    let t = Some(ada.token.as_str());
    let (_, c) =
        app.post(&format!("/api/projects/{p}/containers"), t, json!({"container_id": "c-1", "name": "c"})).await;
    let (_, foreign) =
        app.post(&format!("/api/projects/{other}/containers"), t, json!({"container_id": "c-2", "name": "c"})).await;
    let url = format!("/api/projects/{p}/messages");

    let (status, m) = app
        .post(
            &url,
            t,
            json!({"session_id": "s", "role": "assistant", "content": "x".repeat(100_000), "container_id": c["id"],
                   "attachments": [{"name": "a.png", "size": 3}], "metadata": {"model": "m1"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "the documented limit is allowed: {}", m["detail"]);
    assert_eq!(m["container_id"], c["id"]);
    assert_eq!(m["attachments"][0]["name"], "a.png");

    let (status, body) = app
        .post(&url, t, json!({"session_id": "", "role": "user", "content": "x".repeat(100_001), "attachments": {}, "metadata": []}))
        .await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["session_id", "content", "attachments", "metadata"]);
    assert!(body["errors"][1]["message"].as_str().unwrap().contains("100000"), "{body}");
    let (status, body) = app.post(&url, t, json!({"session_id": "s", "role": "robot", "content": "hi"})).await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, body) = app.post(&url, t, json!({"session_id": "s", "role": "user", "content": "   "})).await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, body) = app
        .post(&url, t, json!({"session_id": "s", "role": "user", "content": "hi", "container_id": foreign["id"]}))
        .await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    assert_eq!(fields(&body), ["container_id"]);
    let (status, body) = app
        .post(
            &url,
            t,
            json!({"session_id": "s", "role": "user", "content": "hi", "created_at": "2020-01-01T00:00:00Z"}),
        )
        .await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);

    let (_, page) = app.get(&url, t).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "refused messages were not stored");

    // Another user: 404 both ways.
    let bob = app.register("bob@example.com").await;
    let (status, body) = app.get(&url, Some(&bob.token)).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    let (status, body) =
        app.post(&url, Some(&bob.token), json!({"session_id": "s", "role": "user", "content": "hi"})).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn file_paths_are_validated_with_the_reason() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let p = project(&app, &ada, "files").await;
    let t = Some(ada.token.as_str());
    let url = format!("/api/projects/{p}/files");
    let long = "a/".repeat(512) + "b";
    let long_name = format!("src/{}", "n".repeat(256));
    let cases = [
        ("../secret", ".."),
        ("src/../../etc/passwd", ".."),
        ("/etc/passwd", "relative"),
        ("src\\main.rs", "backslash"),
        ("src/ma\u{0}in.rs", "NUL"),
        ("", "empty"),
        (long.as_str(), "at most 1024"),
        (long_name.as_str(), "longer than 255"),
        ("src//main.rs", "empty segments"),
        ("src/", "name a file"),
    ];
    for (path, why) in cases {
        let (status, body) = app.post(&url, t, json!({"file_path": path})).await;
        assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(fields(&body), ["file_path"], "{path:?}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(why), "{path:?}: {message}");
    }
    let (status, body) = app
        .post(&url, t, json!({"file_path": "a.txt", "file_size": -1, "mime_type": "nonsense", "file_name": "x/y"}))
        .await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["file_name", "file_size", "mime_type"]);
    let (status, body) = app.post(&url, t, json!({"file_path": "a.txt", "container_id": uuid::Uuid::new_v4()})).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    assert_eq!(fields(&body), ["container_id"]);
    let count: i64 =
        app.db.client().await.query_one("SELECT count(*) FROM devx.file_storage", &[]).await.unwrap().get(0);
    assert_eq!(count, 0);
}

#[tokio::test]
async fn reposting_a_path_replaces_its_record() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let p = project(&app, &ada, "files").await;
    let t = Some(ada.token.as_str());
    let url = format!("/api/projects/{p}/files");

    let (status, first) =
        app.post(&url, t, json!({"file_path": "src/main.rs", "file_size": 10, "mime_type": "text/x-rust"})).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["file_name"], "main.rs", "the name defaults to the last segment");
    let (status, second) =
        app.post(&url, t, json!({"file_path": "src/main.rs", "file_size": 99, "file_name": "main.rs"})).await;
    assert_eq!(status, StatusCode::OK, "a replacement: {second}");
    assert_ne!(first["id"], second["id"]);

    let (_, list) = app.get(&url, t).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0]["id"], second["id"]);
    assert_eq!(list["items"][0]["file_size"], 99);
    let first_id = first["id"].as_str().unwrap();
    let (status, body) = app.get(&format!("/api/files/{first_id}"), t).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    let client = app.db.client().await;
    let rows: Vec<(String, bool)> = client
        .query(
            "SELECT id::text, is_deleted FROM devx.file_storage WHERE file_path = 'src/main.rs' ORDER BY created_at",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(rows, [(first_id.to_string(), true), (second["id"].as_str().unwrap().to_string(), false)]);

    // Concurrent reposts of one path take turns: all succeed, one stays live.
    let post = |size: i64| app.post(&url, t, json!({"file_path": "race.txt", "file_size": size}));
    let (a, b, c, d) = tokio::join!(post(1), post(2), post(3), post(4));
    let statuses = [a.0, b.0, c.0, d.0];
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::CREATED).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 3, "{statuses:?}");
    let live: i64 = client
        .query_one("SELECT count(*) FROM devx.file_storage WHERE file_path = 'race.txt' AND NOT is_deleted", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(live, 1);

    // Filters and paging by path.
    for (path, mime) in [("src/lib.rs", "text/x-rust"), ("docs/a.md", "text/markdown"), ("docs/b.md", "text/markdown")]
    {
        let (status, _) = app.post(&url, t, json!({"file_path": path, "mime_type": mime})).await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let paths = |page: &Value| -> Vec<String> {
        page["items"].as_array().unwrap().iter().map(|f| f["file_path"].as_str().unwrap().to_string()).collect()
    };
    let (_, src) = app.get(&format!("{url}?path_prefix=src/"), t).await;
    assert_eq!(paths(&src), ["src/lib.rs", "src/main.rs"]);
    let (_, md) = app.get(&format!("{url}?mime_type=text/markdown"), t).await;
    assert_eq!(paths(&md), ["docs/a.md", "docs/b.md"]);
    let (_, pct) = app.get(&format!("{url}?path_prefix=%25"), t).await;
    assert_eq!(paths(&pct).len(), 0, "the prefix is text, not a pattern");
    let seen: Vec<String> = pages(&app, t, &format!("{url}?limit=2")).await.iter().flat_map(paths).collect();
    assert_eq!(seen, ["docs/a.md", "docs/b.md", "race.txt", "src/lib.rs", "src/main.rs"]);

    // Deleting marks the record; it leaves the list, and the path is free again.
    let sid = second["id"].as_str().unwrap();
    let (status, got) = app.get(&format!("/api/files/{sid}"), t).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["file_path"], "src/main.rs");
    let bob = app.register("bob@example.com").await;
    let b = Some(bob.token.as_str());
    for (status, body) in [
        app.get(&format!("/api/files/{sid}"), b).await,
        app.delete(&format!("/api/files/{sid}"), b).await,
        app.get(&url, b).await,
        app.post(&url, b, json!({"file_path": "bob.txt"})).await,
    ] {
        assert_problem(status, &body, StatusCode::NOT_FOUND);
    }
    let (status, _) = app.delete(&format!("/api/files/{sid}"), t).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app.delete(&format!("/api/files/{sid}"), t).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    let (_, src) = app.get(&format!("{url}?path_prefix=src/"), t).await;
    assert_eq!(paths(&src), ["src/lib.rs"]);
    let (status, _) = app.post(&url, t, json!({"file_path": "src/main.rs"})).await;
    assert_eq!(status, StatusCode::CREATED);
}

/// The container-keyed chat: a container's messages (posted on the project
/// that lives in it or was registered for it, with its `container_id`),
/// listed by `session_id` in order both ways with keyset paging; other
/// containers' and container-less messages never show, and someone else's
/// container is a 404.
#[tokio::test]
async fn a_containers_chat_is_listed_by_session_in_order_both_ways() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let t = Some(ada.token.as_str());
    let (status, c) = app.post("/api/containers", t, json!({"container_id": "rt-chat", "name": "chat"})).await;
    assert_eq!(status, StatusCode::CREATED, "{c}");
    let c = c["id"].as_str().unwrap().to_string();
    let (status, p) = app.post("/api/projects", t, json!({"name": "lives-in-c", "container_id": c})).await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    let p = p["id"].as_str().unwrap().to_string();
    // A second project, with a container registered for it.
    let q = project(&app, &ada, "other").await;
    let (_, k) =
        app.post(&format!("/api/projects/{q}/containers"), t, json!({"container_id": "rt-k", "name": "k"})).await;
    let k = k["id"].as_str().unwrap().to_string();

    let mut posted = Vec::new();
    for i in 0..45 {
        let session = if i % 3 == 0 { "s-one" } else { "s-two" };
        let (project, container) = match i % 5 {
            4 => (&q, Some(&k)),
            3 => (&p, None),
            _ => (&p, Some(&c)),
        };
        let (status, m) = app
            .post(
                &format!("/api/projects/{project}/messages"),
                t,
                json!({"session_id": session, "role": "user", "content": format!("m{i}"), "container_id": container}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{m}");
        if container == Some(&c) {
            posted.push((m["id"].as_str().unwrap().to_string(), session));
        }
    }
    // Ties on created_at are broken by id.
    let client = app.db.client().await;
    let mut tied: Vec<String> = column(
        &client,
        "INSERT INTO devx.chat_messages (project_id, container_id, session_id, role, content, created_at)
             SELECT $1::text::uuid, $2::text::uuid, 's-one', 'assistant', 'tied ' || g, now() + interval '1 hour'
               FROM generate_series(1, 9) g
             RETURNING id::text",
        &[&p, &c],
    )
    .await;
    tied.sort();

    let mut all: Vec<String> = posted.iter().map(|(id, _)| id.clone()).collect();
    all.extend(tied.iter().cloned());
    let got = walk(&app, &ada.token, &format!("/api/containers/{c}/messages?"), 4).await;
    assert_eq!(got, all, "the container's messages, oldest first, each once");
    let mut one: Vec<String> = posted.iter().filter(|(_, s)| *s == "s-one").map(|(id, _)| id.clone()).collect();
    one.extend(tied.iter().cloned());
    let got = walk(&app, &ada.token, &format!("/api/containers/{c}/messages?session_id=s-one"), 5).await;
    assert_eq!(got, one, "one conversation");
    let got = walk(&app, &ada.token, &format!("/api/containers/{c}/messages?session_id=s-one&order=desc"), 3).await;
    one.reverse();
    assert_eq!(got, one, "newest first");
    let two: Vec<String> = posted.iter().filter(|(_, s)| *s == "s-two").map(|(id, _)| id.clone()).collect();
    let got = walk(&app, &ada.token, &format!("/api/containers/{c}/messages?session_id=s-two"), 50).await;
    assert_eq!(got, two);
    let (_, page) = app.get(&format!("/api/containers/{c}/messages?session_id=nobody"), t).await;
    assert_eq!(page["items"], json!([]));
    let (_, page) = app.get(&format!("/api/containers/{k}/messages?limit=200"), t).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 9, "the registered container's own chat: {page}");
    assert!(page["items"].as_array().unwrap().iter().all(|m| m["container_id"] == k.as_str()));

    // The view counts the same messages for the project living in the container.
    let count: i64 = client
        .query_one("SELECT message_count FROM devx.user_projects WHERE id = $1::text::uuid", &[&p])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count as usize, all.len());

    let (status, body) = app.get(&format!("/api/containers/{c}/messages?cursor=garbage"), t).await;
    assert_problem(status, &body, StatusCode::BAD_REQUEST);
    let (status, body) = app.get(&format!("/api/containers/{c}/messages?session_id=%20"), t).await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["session_id"]);
    let bob = app.register("bob@example.com").await;
    let (status, body) = app.get(&format!("/api/containers/{c}/messages"), Some(&bob.token)).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    let missing = uuid::Uuid::new_v4();
    let (status, body) = app.get(&format!("/api/containers/{missing}/messages"), t).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    let root = app.admin("root@example.com").await;
    let (status, page) = app.get(&format!("/api/containers/{c}/messages?limit=1"), Some(&root.token)).await;
    assert_eq!((status, page["items"][0]["id"].as_str()), (StatusCode::OK, Some(all[0].as_str())));

    // The container's record going (retention) leaves its messages in their
    // project's chat, without the link; they stay append-only otherwise.
    client.execute("DELETE FROM devx.containers WHERE id = $1::text::uuid", &[&c]).await.unwrap();
    let kept = walk(&app, &ada.token, &format!("/api/projects/{p}/messages?"), 200).await;
    assert!(all.iter().all(|id| kept.contains(id)), "every message of the container is kept");
    let linked: i64 = client
        .query_one("SELECT count(*) FROM devx.chat_messages WHERE container_id = $1::text::uuid", &[&c])
        .await
        .unwrap()
        .get(0);
    assert_eq!(linked, 0);
    let refused = client
        .execute(
            "UPDATE devx.chat_messages SET container_id = NULL, content = 'rewritten' WHERE container_id = $1::text::uuid",
            &[&k],
        )
        .await;
    assert!(refused.is_err(), "dropping the link is no way to rewrite a message");
    let (status, body) = app.get(&format!("/api/containers/{c}/messages"), t).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
}
