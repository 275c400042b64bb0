//! Agents and CI/CD over real HTTP: tasks and their state machine, the
//! atomic claim, cancel cascades, executions, log appends and tails under
//! concurrency, PR validations following their checks, error logs, who sees
//! what, and the audit actor.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::app::{Session, TestApp, assert_problem};
use crate::support::{column, fields, id, ids, one, project};

async fn task(app: &TestApp, who: &Session, body: Value) -> Value {
    let (status, task) = app.post("/api/tasks", Some(&who.token), body).await;
    assert_eq!(status, StatusCode::CREATED, "create task: {task}");
    task
}

/// Starts an execution on a task; returns it.
async fn start(app: &TestApp, who: &Session, task_id: &str) -> Value {
    let (status, x) = app
        .post(&format!("/api/tasks/{task_id}/executions"), Some(&who.token), json!({"agent_type": "claude-code"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "start execution: {x}");
    x
}

#[tokio::test]
async fn tasks_are_created_listed_read_and_changed() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let p = project(&app, &ada, "demo").await;

    let low = task(&app, &ada, json!({"project_id": p, "title": "low", "priority": 1})).await;
    assert_eq!(low["status"], "pending");
    assert_eq!(low["created_by"], ada.user_id.as_str());
    assert_eq!(low["requirements"], json!({}));
    let high = task(
        &app,
        &ada,
        json!({"project_id": p, "title": "  high  ", "priority": 9, "description": "d", "requirements": {"lang": "rust"}}),
    )
    .await;
    assert_eq!(high["title"], "high", "titles are trimmed");
    let sub =
        task(&app, &ada, json!({"project_id": p, "title": "sub", "priority": 5, "parent_task_id": id(&high)})).await;
    assert_eq!(sub["parent_task_id"], id(&high));
    // Every invalid field at once.
    let (status, body) =
        app.post("/api/tasks", Some(&ada.token), json!({"project_id": p, "title": " ", "priority": 11})).await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["title", "priority"]);
    let (status, body) = app
        .post(
            "/api/tasks",
            Some(&ada.token),
            json!({"project_id": p, "title": "x", "requirements": {"agent_type": "Bad Type"}}),
        )
        .await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["requirements.agent_type"]);
    let (status, body) =
        app.post("/api/tasks", Some(&ada.token), json!({"project_id": p, "title": "x", "status": "completed"})).await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["status"], "no mass assignment");
    let (status, body) =
        app.post("/api/tasks", Some(&ada.token), json!({"project_id": p, "title": "x", "requirements": [1]})).await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, body) = app.post("/api/tasks", Some(&ada.token), json!({"project_id": p})).await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["title"]);
    let (status, body) = app.post("/api/tasks", None, json!({"project_id": p, "title": "x"})).await;
    assert_problem(status, &body, StatusCode::UNAUTHORIZED);

    // A parent from another project, or a missing project, is a 404 naming the field.
    let p2 = project(&app, &ada, "demo").await;
    let (status, body) = app
        .post("/api/tasks", Some(&ada.token), json!({"project_id": p2, "title": "x", "parent_task_id": id(&high)}))
        .await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    assert_eq!(fields(&body), ["parent_task_id"]);
    let (status, body) =
        app.post("/api/tasks", Some(&ada.token), json!({"project_id": uuid::Uuid::new_v4(), "title": "x"})).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    assert_eq!(fields(&body), ["project_id"]);

    // Listed by priority, then age; keyset pages cover everything once.
    let (status, page) = app.get("/api/tasks?limit=2", Some(&ada.token)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let titles: Vec<&str> = page["items"].as_array().unwrap().iter().map(|t| t["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["high", "sub"]);
    let cursor = page["next_cursor"].as_str().expect("a next page");
    let (_, page2) = app.get(&format!("/api/tasks?limit=2&cursor={cursor}"), Some(&ada.token)).await;
    assert_eq!(page2["items"].as_array().unwrap().len(), 1);
    assert_eq!(page2["items"][0]["title"], "low");
    assert!(page2["next_cursor"].is_null());

    // Filters.
    let (_, page) = app.get(&format!("/api/tasks?parent_task_id={}", id(&high)), Some(&ada.token)).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let (_, page) = app.get("/api/tasks?priority_min=2&priority_max=8", Some(&ada.token)).await;
    assert_eq!(page["items"][0]["title"], "sub");
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let (_, page) = app.get(&format!("/api/tasks?project_id={p2}"), Some(&ada.token)).await;
    assert!(page["items"].as_array().unwrap().is_empty());
    let (_, page) = app.get("/api/tasks?status=in_progress", Some(&ada.token)).await;
    assert!(page["items"].as_array().unwrap().is_empty());
    let (status, body) = app.get("/api/tasks?priority_min=11", Some(&ada.token)).await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, body) = app.get("/api/tasks?stauts=pending", Some(&ada.token)).await;
    assert_problem(status, &body, StatusCode::BAD_REQUEST);
    let (status, body) = app.get("/api/tasks?cursor=garbage", Some(&ada.token)).await;
    assert_problem(status, &body, StatusCode::BAD_REQUEST);

    // One task, with its subtasks and latest execution.
    let (status, detail) = app.get(&format!("/api/tasks/{}", id(&high)), Some(&ada.token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(detail["subtask_count"], 1);
    assert_eq!(detail["subtasks"][0]["id"], id(&sub));
    assert!(detail["latest_execution"].is_null());
    let x = start(&app, &ada, &id(&high)).await;
    let (_, detail) = app.get(&format!("/api/tasks/{}", id(&high)), Some(&ada.token)).await;
    assert_eq!(detail["latest_execution"]["id"], id(&x));
    assert_eq!(detail["status"], "in_progress");
    assert_eq!(detail["assigned_to"], ada.user_id.as_str());

    // Changes.
    let (status, changed) = app
        .patch(
            &format!("/api/tasks/{}", id(&low)),
            Some(&ada.token),
            json!({"title": "renamed", "description": null, "priority": 3, "requirements": {"a": 1}, "assigned_to": ada.user_id}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["title"], "renamed");
    assert_eq!(changed["priority"], 3);
    assert_eq!(changed["requirements"], json!({"a": 1}));
    assert_eq!(changed["assigned_to"], ada.user_id.as_str());
    let bob = app.register("bob@example.com").await;
    let (status, body) = app
        .patch(
            &format!("/api/tasks/{}", id(&low)),
            Some(&ada.token),
            json!({"assigned_to": bob.user_id, "priority": -1}),
        )
        .await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["priority"]);
    // Another user is one Ada cannot see: the answer for a user that does not exist.
    for user in [bob.user_id.clone(), uuid::Uuid::new_v4().to_string()] {
        let (status, body) =
            app.patch(&format!("/api/tasks/{}", id(&low)), Some(&ada.token), json!({"assigned_to": user})).await;
        assert_problem(status, &body, StatusCode::NOT_FOUND);
        assert_eq!(fields(&body), ["assigned_to"]);
    }
    let (_, unchanged) = app.get(&format!("/api/tasks/{}", id(&low)), Some(&ada.token)).await;
    assert_eq!(unchanged["assigned_to"], ada.user_id.as_str());
    // An admin may name anyone, but only someone who exists.
    let root = app.admin("root@example.com").await;
    let ghost = json!({"assigned_to": uuid::Uuid::new_v4()});
    let (status, body) = app.patch(&format!("/api/tasks/{}", id(&low)), Some(&root.token), ghost).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    assert_eq!(fields(&body), ["assigned_to"]);
    let (status, body) =
        app.patch(&format!("/api/tasks/{}", id(&low)), Some(&root.token), json!({"assigned_to": bob.user_id})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["assigned_to"], bob.user_id.as_str());
    let (status, body) = app.get("/api/tasks/not-a-uuid", Some(&ada.token)).await;
    assert_problem(status, &body, StatusCode::BAD_REQUEST);
    let (status, body) = app.get(&format!("/api/tasks/{}", uuid::Uuid::new_v4()), Some(&ada.token)).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);

    // Stats.
    let (status, stats) = app.get("/api/tasks/stats", Some(&ada.token)).await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    assert_eq!(stats["total"], 3);
    assert_eq!(stats["by_status"]["pending"], 2);
    assert_eq!(stats["by_status"]["in_progress"], 1);
    assert_eq!(stats["by_status"]["completed"], 0);
    assert_eq!(stats["by_priority"][0], json!({"priority": 9, "count": 1}));
    assert!(stats["success_rate"].is_null());
    let (status, done) = app.post(&format!("/api/executions/{}/complete", id(&x)), Some(&ada.token), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    let (_, stats) = app.get(&format!("/api/tasks/stats?project_id={p}"), Some(&ada.token)).await;
    assert_eq!(stats["success_rate"], 100.0);
    assert!(stats["avg_completion_seconds"].as_f64().is_some_and(|s| s >= 0.0), "{stats}");
    let (_, stats) = app.get("/api/tasks/stats", Some(&bob.token)).await;
    assert_eq!(stats["total"], 0, "bob sees none of ada's tasks");
}

/// What the OpenAPI document says a body may hold is what the server takes:
/// a whole number written as `2.0`, a `null` optional body, never an array
/// for an object; and a text limit counts the text as sent, blanks included.
#[tokio::test]
async fn bodies_are_read_as_the_document_states_them() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let p = project(&app, &ada, "demo").await;

    let t = task(&app, &ada, json!({"project_id": p, "title": "whole", "priority": 2.0})).await;
    assert_eq!(t["priority"], 2);
    let (status, body) = app.patch(&format!("/api/tasks/{}", id(&t)), Some(&ada.token), json!({"priority": 3.0})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["priority"], 3);
    for bad in [json!(2.5), json!(1e10), json!("2")] {
        let (status, body) =
            app.post("/api/tasks", Some(&ada.token), json!({"project_id": p, "title": "x", "priority": bad})).await;
        assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(fields(&body), ["priority"], "{bad}");
    }
    let padded = json!({"project_id": p, "title": format!("x{}", " ".repeat(500))});
    let (status, body) = app.post("/api/tasks", Some(&ada.token), padded).await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["title"]);
    let (status, body) =
        app.post("/api/pr-validations", Some(&ada.token), json!({"repository": "acme/shop", "pr_number": 42.0})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["pr_number"], 42);

    // A body is an object, never the array of its fields in order.
    for array in [json!([null, null]), json!(["claude-code"])] {
        let (status, body) = app.post("/api/tasks/claim", Some(&ada.token), array.clone()).await;
        assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
        let (status, body) = app.patch(&format!("/api/tasks/{}", id(&t)), Some(&ada.token), array).await;
        assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    }

    // `null` for the optional body of a failure: every default (a retry,
    // since the task has attempts left).
    let x = start(&app, &ada, &id(&t)).await;
    let (status, out) = app.post(&format!("/api/executions/{}/fail", id(&x)), Some(&ada.token), Value::Null).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["task"]["status"], "pending");
    assert_eq!(out["error"]["message"], "execution failed");
}

#[tokio::test]
async fn sixteen_claimers_get_each_of_a_hundred_tasks_exactly_once() {
    let app = Arc::new(TestApp::spawn_with(|c| c.database.pool_max = 16).await);
    let ada = app.register("ada@example.com").await;
    let p = project(&app, &ada, "demo").await;
    {
        let client = app.db.client().await;
        let pid: uuid::Uuid = p.parse().unwrap();
        client
            .execute(
                "INSERT INTO devx.tasks (project_id, title, priority)
                 SELECT $1, 'task ' || n, n % 11 FROM generate_series(1, 100) n",
                &[&pid],
            )
            .await
            .unwrap();
        // Another user's task is not ada's to claim; nor one for another kind of agent.
        client
            .execute(
                "INSERT INTO devx.tasks (project_id, title, requirements) VALUES ($1, 'for codegen', '{\"agent_type\": \"codegen\"}')",
                &[&pid],
            )
            .await
            .unwrap();
    }
    let bob = app.register("bob@example.com").await;
    let bp = project(&app, &bob, "demo").await;
    let bobs = task(&app, &bob, json!({"project_id": bp, "title": "bob's", "priority": 10})).await;
    let admin = app.admin("root@example.com").await;
    set(&app, &admin, "agents.max_concurrent_executions", json!(1000)).await;

    let mut claimers = Vec::new();
    for _ in 0..16 {
        let app = app.clone();
        let token = ada.token.clone();
        claimers.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let (status, body) =
                    app.post("/api/tasks/claim", Some(&token), json!({"agent_type": "claude-code"})).await;
                match status {
                    StatusCode::OK => {
                        assert_eq!(body["task"]["status"], "in_progress");
                        assert_eq!(body["execution"]["status"], "running");
                        assert_eq!(body["execution"]["task_id"], body["task"]["id"]);
                        got.push((
                            body["task"]["id"].as_str().unwrap().to_string(),
                            body["task"]["priority"].as_i64().unwrap(),
                        ));
                    }
                    StatusCode::NO_CONTENT => break got,
                    other => panic!("claim answered {other}: {body}"),
                }
            }
        }));
    }
    let mut all = Vec::new();
    for c in claimers {
        all.extend(c.await.unwrap());
    }
    let distinct: BTreeSet<&String> = all.iter().map(|(id, _)| id).collect();
    assert_eq!(all.len(), 100, "every task claimed");
    assert_eq!(distinct.len(), 100, "no task claimed twice");
    assert!(!distinct.contains(&id(&bobs).clone()));

    let client = app.db.client().await;
    let row = client
        .query_one(
            "SELECT count(*) FILTER (WHERE status = 'in_progress'), count(*) FILTER (WHERE status = 'pending'),
                    (SELECT count(*) FROM devx.task_executions)
               FROM devx.tasks",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 100);
    assert_eq!(row.get::<_, i64>(1), 2, "codegen's task and bob's are left");
    assert_eq!(row.get::<_, i64>(2), 100, "one execution per claim");

    // The codegen agent gets its task; bob gets his own; then nothing.
    let (status, body) = app.post("/api/tasks/claim", Some(&ada.token), json!({"agent_type": "codegen"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["task"]["title"], "for codegen");
    assert_eq!(body["execution"]["agent_type"], "codegen");
    let (status, _) = app.post("/api/tasks/claim", Some(&ada.token), json!({"agent_type": "codegen"})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app.post("/api/tasks/claim", Some(&bob.token), json!({"agent_type": "codegen"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["task"]["id"], id(&bobs));
    assert_eq!(body["task"]["assigned_to"], bob.user_id.as_str());

    let (status, body) = app.post("/api/tasks/claim", Some(&ada.token), json!({})).await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, body) = app.post("/api/tasks/claim", Some(&ada.token), json!({"agent_type": "NOPE"})).await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn claims_take_the_highest_priority_then_the_oldest() {
    let app = TestApp::spawn().await;
    let admin = app.admin("root@example.com").await;
    let ada = app.register("ada@example.com").await;
    let p = project(&app, &ada, "demo").await;
    let first = task(&app, &ada, json!({"project_id": p, "title": "old 5", "priority": 5})).await;
    let second = task(&app, &ada, json!({"project_id": p, "title": "new 5", "priority": 5})).await;
    let top = task(&app, &ada, json!({"project_id": p, "title": "7", "priority": 7})).await;
    let mut order = Vec::new();
    for _ in 0..3 {
        // An admin claims from every user's projects.
        let (status, body) =
            app.post("/api/tasks/claim", Some(&admin.token), json!({"agent_type": "claude-code"})).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["task"]["assigned_to"], admin.user_id.as_str());
        order.push(body["task"]["id"].as_str().unwrap().to_string());
    }
    assert_eq!(order, [id(&top), id(&first), id(&second)]);
}

#[tokio::test]
async fn transitions_legal_and_illegal() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let p = project(&app, &ada, "demo").await;
    let t = task(&app, &ada, json!({"project_id": p, "title": "t"})).await;
    let path = format!("/api/tasks/{}", id(&t));

    // pending -> completed is not a transition.
    let (status, body) = app.patch(&path, Some(&ada.token), json!({"status": "completed"})).await;
    assert_problem(status, &body, StatusCode::CONFLICT);
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("pending") && detail.contains("in_progress or cancelled"), "{detail}");

    // pending -> in_progress -> pending (released) -> in_progress -> completed.
    let (status, body) = app.patch(&path, Some(&ada.token), json!({"status": "in_progress"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["assigned_to"], ada.user_id.as_str());
    let (_, body) = app.patch(&path, Some(&ada.token), json!({"status": "pending"})).await;
    assert_eq!(body["status"], "pending");
    assert!(body["assigned_to"].is_null(), "released tasks are unassigned");
    let (_, body) = app.patch(&path, Some(&ada.token), json!({"status": "pending"})).await;
    assert_eq!(body["status"], "pending", "the same status is no change");

    // Executions drive the task: start -> in_progress, complete -> completed.
    let x = start(&app, &ada, &id(&t)).await;
    assert_eq!(x["status"], "running");
    assert!(x["started_at"].is_string());
    let (status, body) = app
        .post(&format!("/api/tasks/{}/executions", id(&t)), Some(&ada.token), json!({"agent_type": "codegen"}))
        .await;
    assert_problem(status, &body, StatusCode::CONFLICT);
    assert!(body["detail"].as_str().unwrap().contains(&id(&x)), "names the running execution: {body}");
    let (status, body) = app
        .post(
            &format!("/api/tasks/{}/executions", id(&t)),
            Some(&ada.token),
            json!({"agent_type": "Bad!", "agent_config": []}),
        )
        .await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, out) = app.post(&format!("/api/executions/{}/complete", id(&x)), Some(&ada.token), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["execution"]["status"], "completed");
    assert!(out["execution"]["completed_at"].is_string());
    assert_eq!(out["task"]["status"], "completed");
    assert!(out.get("error").is_none());

    // Finished things stay finished.
    let (status, body) = app.post(&format!("/api/executions/{}/complete", id(&x)), Some(&ada.token), json!({})).await;
    assert_problem(status, &body, StatusCode::CONFLICT);
    assert!(body["detail"].as_str().unwrap().contains("completed, which is final"), "{body}");
    let (status, body) = app.post(&format!("/api/executions/{}/fail", id(&x)), Some(&ada.token), json!({})).await;
    assert_problem(status, &body, StatusCode::CONFLICT);
    let (status, body) = app.patch(&path, Some(&ada.token), json!({"status": "failed"})).await;
    assert_problem(status, &body, StatusCode::CONFLICT);
    assert!(body["detail"].as_str().unwrap().contains("final"));
    let (status, body) = app.post(&format!("{path}/cancel"), Some(&ada.token), json!({})).await;
    assert_problem(status, &body, StatusCode::CONFLICT);
    let (status, body) =
        app.post(&format!("{path}/executions"), Some(&ada.token), json!({"agent_type": "claude-code"})).await;
    assert_problem(status, &body, StatusCode::CONFLICT);
    let (status, t2) = app.patch(&path, Some(&ada.token), json!({"title": "still editable"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(t2["status"], "completed");

    // A failure puts the task back to pending while attempts are left; with
    // retry false, fails it.
    let t = task(&app, &ada, json!({"project_id": p, "title": "flaky"})).await;
    let x1 = start(&app, &ada, &id(&t)).await;
    let (status, out) = app
        .post(
            &format!("/api/executions/{}/fail", id(&x1)),
            Some(&ada.token),
            json!({"error_details": {"message": "network down", "code": 7}, "error_type": "network", "retry": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["execution"]["status"], "failed");
    assert_eq!(out["execution"]["error_details"]["code"], 7);
    assert_eq!(out["task"]["status"], "pending");
    assert_eq!(out["error"]["error_type"], "network");
    assert_eq!(out["error"]["message"], "network down");
    assert_eq!(out["error"]["task_id"], id(&t));
    assert_eq!(out["error"]["execution_id"], id(&x1));
    assert_eq!(out["task"]["attempt"], 1);
    assert_eq!(out["task"]["errors"][0]["message"], "network down");
    let x2 = start(&app, &ada, &id(&t)).await;
    assert_eq!(x2["attempt"], 2);
    // No body at all is fine: the defaults apply.
    let resp = app
        .request(reqwest::Method::POST, &format!("/api/executions/{}/fail", id(&x2)), Some(&ada.token))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let out: Value = resp.json().await.unwrap();
    assert_eq!(out["task"]["status"], "pending");
    assert_eq!(out["error"]["error_type"], "system");
    assert_eq!(out["error"]["message"], "execution failed");
    let x3 = start(&app, &ada, &id(&t)).await;
    let (status, out) =
        app.post(&format!("/api/executions/{}/fail", id(&x3)), Some(&ada.token), json!({"retry": false})).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["task"]["status"], "failed");
    assert_eq!(out["task"]["errors"].as_array().unwrap().len(), 3, "one entry per failed attempt");
    let (_, list) = app.get(&format!("/api/tasks/{}/executions", id(&t)), Some(&ada.token)).await;
    let ids: Vec<&str> = list["items"].as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [id(&x3), id(&x2), id(&x1)], "newest first");

    // Leaving in_progress by hand cancels the running execution.
    let t = task(&app, &ada, json!({"project_id": p, "title": "manual"})).await;
    let x = start(&app, &ada, &id(&t)).await;
    let (_, body) =
        app.patch(&format!("/api/tasks/{}", id(&t)), Some(&ada.token), json!({"status": "completed"})).await;
    assert_eq!(body["status"], "completed");
    let (_, body) = app.get(&format!("/api/executions/{}", id(&x)), Some(&ada.token)).await;
    assert_eq!(body["status"], "cancelled");

    // Two concurrent completes: exactly one wins.
    let t = task(&app, &ada, json!({"project_id": p, "title": "race"})).await;
    let x = start(&app, &ada, &id(&t)).await;
    let url = format!("/api/executions/{}/complete", id(&x));
    let (a, b) = tokio::join!(app.post(&url, Some(&ada.token), json!({})), app.post(&url, Some(&ada.token), json!({})));
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::CONFLICT]);

    // A cancel racing a complete: one wins, the other is a 409 (never a
    // deadlock), and task and execution agree on who won.
    for i in 0..8 {
        let t = task(&app, &ada, json!({"project_id": p, "title": format!("race {i}")})).await;
        let x = start(&app, &ada, &id(&t)).await;
        let cancel_url = format!("/api/tasks/{}/cancel", id(&t));
        let complete_url = format!("/api/executions/{}/complete", id(&x));
        let (cancel, complete) = tokio::join!(
            app.post(&cancel_url, Some(&ada.token), json!({})),
            app.post(&complete_url, Some(&ada.token), json!({}))
        );
        let (_, task_now) = app.get(&format!("/api/tasks/{}", id(&t)), Some(&ada.token)).await;
        let (_, x_now) = app.get(&format!("/api/executions/{}", id(&x)), Some(&ada.token)).await;
        match (cancel.0, complete.0) {
            (StatusCode::OK, StatusCode::CONFLICT) => {
                assert_eq!(task_now["status"], "cancelled");
                assert_eq!(x_now["status"], "cancelled");
            }
            (StatusCode::CONFLICT, StatusCode::OK) => {
                assert_eq!(task_now["status"], "completed");
                assert_eq!(x_now["status"], "completed");
            }
            other => panic!("cancel vs complete answered {other:?}: {} / {}", cancel.1, complete.1),
        }
    }
}

#[tokio::test]
async fn cancel_cascades_to_pending_subtasks() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let p = project(&app, &ada, "demo").await;
    let root = task(&app, &ada, json!({"project_id": p, "title": "root"})).await;
    let a = task(&app, &ada, json!({"project_id": p, "title": "a", "parent_task_id": id(&root)})).await;
    let b = task(&app, &ada, json!({"project_id": p, "title": "b", "parent_task_id": id(&root)})).await;
    let a1 = task(&app, &ada, json!({"project_id": p, "title": "a1", "parent_task_id": id(&a)})).await;
    let done = task(&app, &ada, json!({"project_id": p, "title": "done", "parent_task_id": id(&root)})).await;
    let xb = start(&app, &ada, &id(&b)).await; // b is in progress
    let xd = start(&app, &ada, &id(&done)).await;
    app.post(&format!("/api/executions/{}/complete", id(&xd)), Some(&ada.token), json!({})).await;
    let xr = start(&app, &ada, &id(&root)).await;
    let other = task(&app, &ada, json!({"project_id": p, "title": "unrelated"})).await;

    let (status, out) = app.post(&format!("/api/tasks/{}/cancel", id(&root)), Some(&ada.token), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["task"]["status"], "cancelled");
    let cancelled: BTreeSet<String> =
        out["cancelled_subtasks"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    assert_eq!(cancelled, BTreeSet::from([id(&a), id(&a1)]), "pending ones at any depth");
    assert_eq!(out["cancelled_executions"], json!([id(&xr)]));

    let status_of = |t: &Value| {
        let path = format!("/api/tasks/{}", id(t));
        let app = &app;
        let token = ada.token.clone();
        async move { app.get(&path, Some(&token)).await.1["status"].as_str().unwrap().to_string() }
    };
    assert_eq!(status_of(&a).await, "cancelled");
    assert_eq!(status_of(&a1).await, "cancelled");
    assert_eq!(status_of(&b).await, "in_progress", "running subtasks are left to finish");
    assert_eq!(status_of(&done).await, "completed");
    assert_eq!(status_of(&other).await, "pending");
    let (_, x) = app.get(&format!("/api/executions/{}", id(&xb)), Some(&ada.token)).await;
    assert_eq!(x["status"], "running");
    let (_, x) = app.get(&format!("/api/executions/{}", id(&xr)), Some(&ada.token)).await;
    assert_eq!(x["status"], "cancelled");

    // A cancelled task takes no new subtasks, and cannot be cancelled again.
    let (status, body) = app
        .post("/api/tasks", Some(&ada.token), json!({"project_id": p, "title": "late", "parent_task_id": id(&root)}))
        .await;
    assert_problem(status, &body, StatusCode::CONFLICT);
    let (status, body) = app.post(&format!("/api/tasks/{}/cancel", id(&root)), Some(&ada.token), json!({})).await;
    assert_problem(status, &body, StatusCode::CONFLICT);
    assert!(body["detail"].as_str().unwrap().contains("cancelled, which is final"), "{body}");

    // Cancelling through PATCH cascades the same way.
    let r2 = task(&app, &ada, json!({"project_id": p, "title": "r2"})).await;
    let c2 = task(&app, &ada, json!({"project_id": p, "title": "c2", "parent_task_id": id(&r2)})).await;
    let (status, body) =
        app.patch(&format!("/api/tasks/{}", id(&r2)), Some(&ada.token), json!({"status": "cancelled"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(status_of(&c2).await, "cancelled");
}

#[tokio::test]
async fn log_tails_follow_seq_order_under_concurrent_appends() {
    let app = Arc::new(TestApp::spawn_with(|c| c.database.pool_max = 16).await);
    let ada = app.register("ada@example.com").await;
    let p = project(&app, &ada, "demo").await;
    let t = task(&app, &ada, json!({"project_id": p, "title": "chatty"})).await;
    let x = start(&app, &ada, &id(&t)).await;
    let logs = format!("/api/executions/{}/logs", id(&x));

    // Validation: empty batch, too many lines, unknown level, NUL.
    let (status, body) = app.post(&logs, Some(&ada.token), json!({"lines": []})).await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    let many: Vec<Value> = (0..1001).map(|i| json!({"message": format!("{i}")})).collect();
    let (status, body) = app.post(&logs, Some(&ada.token), json!({"lines": many})).await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, body) = app.post(&logs, Some(&ada.token), json!({"lines": [{"message": "x", "level": "loud"}]})).await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, body) =
        app.post(&logs, Some(&ada.token), json!({"lines": [{"message": "ok"}, {"message": "a\u{0}b"}]})).await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["lines[1].message"]);

    // One batch of the maximum size works.
    let full: Vec<Value> = (0..1000).map(|i| json!({"message": format!("bulk {i}"), "level": "debug"})).collect();
    let (status, body) = app.post(&logs, Some(&ada.token), json!({"lines": full})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body, json!({"first_seq": 1, "last_seq": 1000, "count": 1000}));

    // 8 writers x 25 batches x 4 lines, while a reader tails.
    const WRITERS: usize = 8;
    const BATCHES: usize = 25;
    const LINES: usize = 4;
    let total = 1000 + (WRITERS * BATCHES * LINES) as i64;
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (app, token, logs) = (app.clone(), ada.token.clone(), logs.clone());
        writers.push(tokio::spawn(async move {
            let mut ranges = Vec::new();
            for b in 0..BATCHES {
                let lines: Vec<Value> = (0..LINES)
                    .map(|l| json!({"message": format!("w{w} b{b} l{l}"), "time": "2026-01-01T00:00:00Z"}))
                    .collect();
                let (status, body) = app.post(&logs, Some(&token), json!({"lines": lines})).await;
                assert_eq!(status, StatusCode::CREATED, "{body}");
                ranges.push((body["first_seq"].as_i64().unwrap(), body["last_seq"].as_i64().unwrap(), w, b));
            }
            ranges
        }));
    }
    let reader = {
        let (app, token, logs) = (app.clone(), ada.token.clone(), logs.clone());
        tokio::spawn(async move {
            let mut seen: Vec<(i64, String)> = Vec::new();
            let mut after = 0i64;
            while after < total {
                let (status, page) = app.get(&format!("{logs}?after={after}&limit=200"), Some(&token)).await;
                assert_eq!(status, StatusCode::OK, "{page}");
                for line in page["items"].as_array().unwrap() {
                    let seq = line["seq"].as_i64().unwrap();
                    assert_eq!(seq, after + 1, "the tail never skips or repeats a line");
                    after = seq;
                    seen.push((seq, line["message"].as_str().unwrap().to_string()));
                }
            }
            seen
        })
    };
    let mut ranges = Vec::new();
    for w in writers {
        ranges.extend(w.await.unwrap());
    }
    let seen = reader.await.unwrap();
    assert_eq!(seen.len() as i64, total);

    // Each batch got a contiguous range; together they tile 1001..=total.
    ranges.sort();
    let mut next = 1001;
    for (first, last, w, b) in &ranges {
        assert_eq!(*first, next, "no gap or overlap between batches");
        assert_eq!(last - first + 1, LINES as i64);
        for l in 0..LINES {
            assert_eq!(seen[(*first as usize) - 1 + l].1, format!("w{w} b{b} l{l}"), "a batch keeps its order");
        }
        next = last + 1;
    }
    assert_eq!(next, total + 1);
    let (_, xr) = app.get(&format!("/api/executions/{}", id(&x)), Some(&ada.token)).await;
    assert_eq!(xr["log_lines"], total);

    // after / cursor / limit semantics.
    let (_, page) = app.get(&format!("{logs}?after=998&limit=3"), Some(&ada.token)).await;
    let seqs: Vec<i64> = page["items"].as_array().unwrap().iter().map(|l| l["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, [999, 1000, 1001]);
    assert_eq!(page["items"][0]["level"], "debug");
    assert_eq!(page["items"][0]["message"], "bulk 998");
    assert_eq!(page["next_cursor"], "1001");
    let (_, page) = app.get(&format!("{logs}?cursor=1001&limit=1"), Some(&ada.token)).await;
    assert_eq!(page["items"][0]["seq"], 1002);
    assert_eq!(page["items"][0]["time"], "2026-01-01T00:00:00Z");
    let (_, page) = app.get(&format!("{logs}?after={total}"), Some(&ada.token)).await;
    assert!(page["items"].as_array().unwrap().is_empty());
    assert!(page["next_cursor"].is_null());
    let (_, page) = app.get(&logs, Some(&ada.token)).await;
    assert_eq!(page["items"][0]["seq"], 1);
    assert_eq!(page["items"].as_array().unwrap().len(), 50, "default limit");
    for bad in ["after=-1", "after=x", "cursor=abc", "after=1&cursor=2", "limit=0"] {
        let (status, body) = app.get(&format!("{logs}?{bad}"), Some(&ada.token)).await;
        assert_problem(status, &body, StatusCode::BAD_REQUEST);
    }

    // Appending to a finished execution is allowed (late flushes), and costs
    // one reservation and one insert however long the log is.
    app.post(&format!("/api/executions/{}/complete", id(&x)), Some(&ada.token), json!({})).await;
    let (status, body) =
        app.post(&logs, Some(&ada.token), json!({"lines": [{"message": "last words", "level": "warn"}]})).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["first_seq"], total + 1);

    // No audit row per append: the seq counter is bookkeeping.
    let client = app.db.client().await;
    let audits: i64 = client
        .query_one(
            "SELECT count(*) FROM devx.audit_logs WHERE entity_type = 'devx.task_executions' AND entity_id = $1",
            &[&id(&x)],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(audits, 2, "created and completed only");
}

#[tokio::test]
async fn pr_validation_status_follows_its_checks() {
    let app = Arc::new(TestApp::spawn().await);
    let ada = app.register("ada@example.com").await;
    let p = project(&app, &ada, "demo").await;
    let t = task(&app, &ada, json!({"project_id": p, "title": "feature"})).await;
    let x = start(&app, &ada, &id(&t)).await;

    let (status, v) = app
        .post(
            "/api/pr-validations",
            Some(&ada.token),
            json!({"repository": "acme/shop", "pr_number": 42, "branch_name": "feature/auth",
                   "execution_id": id(&x), "webhook_payload": {"action": "opened"}, "checks": ["tests", "lint"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["status"], "pending");
    assert_eq!(v["task_id"], id(&t), "implied by the execution");
    assert_eq!(v["validation_results"]["tests"]["status"], "pending");
    let check = |name: &str| format!("/api/pr-validations/{}/checks/{name}", id(&v));

    let (status, body) =
        app.patch(&check("tests"), Some(&ada.token), json!({"status": "passed", "summary": "15 passed"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "running", "lint is still pending");
    assert_eq!(body["validation_results"]["tests"]["summary"], "15 passed");
    let (_, body) =
        app.patch(&check("lint"), Some(&ada.token), json!({"status": "passed", "details": {"warnings": 0}})).await;
    assert_eq!(body["status"], "passed");
    assert_eq!(body["validation_results"]["lint"]["details"]["warnings"], 0);
    let (_, body) = app.patch(&check("tests"), Some(&ada.token), json!({"status": "failed"})).await;
    assert_eq!(body["status"], "failed", "any failed check fails it");
    let (_, body) = app.patch(&check("security%20scan"), Some(&ada.token), json!({"status": "skipped"})).await;
    assert_eq!(body["status"], "failed");
    assert_eq!(body["validation_results"]["security scan"]["status"], "skipped");
    let (_, body) = app.patch(&check("tests"), Some(&ada.token), json!({"status": "passed"})).await;
    assert_eq!(body["status"], "passed", "a re-run that passes; skipped does not hold it back");
    let (_, body) = app.patch(&check("e2e"), Some(&ada.token), json!({"status": "running"})).await;
    assert_eq!(body["status"], "running");

    // Concurrent results for many checks all count.
    let mut handles = Vec::new();
    for i in 0..10 {
        let (app, token, url) = (app.clone(), ada.token.clone(), check(&format!("c{i}")));
        handles.push(tokio::spawn(async move { app.patch(&url, Some(&token), json!({"status": "passed"})).await.0 }));
    }
    for h in handles {
        assert_eq!(h.await.unwrap(), StatusCode::OK);
    }
    app.patch(&check("e2e"), Some(&ada.token), json!({"status": "passed"})).await;
    let (_, body) = app.get(&format!("/api/pr-validations/{}", id(&v)), Some(&ada.token)).await;
    assert_eq!(body["validation_results"].as_object().unwrap().len(), 14);
    assert_eq!(body["status"], "passed");

    // Bad input.
    let (status, body) = app.patch(&check("tests"), Some(&ada.token), json!({"status": "green"})).await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, body) = app
        .post(
            "/api/pr-validations",
            Some(&ada.token),
            json!({"repository": "no-slash", "pr_number": 0, "checks": [""]}),
        )
        .await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["repository", "pr_number", "checks"]);
    let other = task(&app, &ada, json!({"project_id": p, "title": "other"})).await;
    let (status, body) = app
        .post(
            "/api/pr-validations",
            Some(&ada.token),
            json!({"repository": "acme/shop", "pr_number": 1, "task_id": id(&other), "execution_id": id(&x)}),
        )
        .await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    assert_eq!(fields(&body), ["execution_id"], "an execution of another task is none of this one's");

    // A cancelled validation takes no more results.
    let (_, v2) =
        app.post("/api/pr-validations", Some(&ada.token), json!({"repository": "acme/api", "pr_number": 7})).await;
    assert!(v2["task_id"].is_null());
    assert_eq!(v2["created_by"], ada.user_id.as_str());
    let client = app.db.client().await;
    client
        .execute(
            "UPDATE devx.pr_validations SET status = 'cancelled' WHERE id = $1",
            &[&id(&v2).parse::<uuid::Uuid>().unwrap()],
        )
        .await
        .unwrap();
    let (status, body) = app
        .patch(&format!("/api/pr-validations/{}/checks/tests", id(&v2)), Some(&ada.token), json!({"status": "passed"}))
        .await;
    assert_problem(status, &body, StatusCode::CONFLICT);

    // Lists and filters.
    let (_, list) = app.get("/api/pr-validations?repository=acme/shop", Some(&ada.token)).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let (_, list) = app.get("/api/pr-validations?status=cancelled", Some(&ada.token)).await;
    assert_eq!(list["items"][0]["id"], id(&v2));
    let (_, list) = app.get("/api/pr-validations?branch_name=feature/auth&pr_number=42", Some(&ada.token)).await;
    assert_eq!(list["items"][0]["id"], id(&v));
    let (_, list) = app.get("/api/pr-validations?limit=1", Some(&ada.token)).await;
    assert_eq!(list["items"][0]["id"], id(&v2), "newest first");
    let (_, list2) = app
        .get(&format!("/api/pr-validations?limit=1&cursor={}", list["next_cursor"].as_str().unwrap()), Some(&ada.token))
        .await;
    assert_eq!(list2["items"][0]["id"], id(&v));

    // Summary by repository: the user's figures, and the admin's from the view.
    let (_, summary) = app.get("/api/pr-validations/summary", Some(&ada.token)).await;
    let shop = summary["items"].as_array().unwrap().iter().find(|r| r["repository"] == "acme/shop").unwrap();
    assert_eq!(shop["validations"], 1);
    assert_eq!(shop["passed"], 1);
    assert_eq!(shop["pass_rate"], 100.0);
    let bob = app.register("bob@example.com").await;
    let (_, summary) = app.get("/api/pr-validations/summary", Some(&bob.token)).await;
    assert_eq!(summary["items"], json!([]));
    let admin = app.admin("root@example.com").await;
    let (_, summary) = app.get("/api/pr-validations/summary", Some(&admin.token)).await;
    assert_eq!(summary["items"].as_array().unwrap().len(), 2);

    // A validation holds at most 100 checks: a new one past that conflicts
    // with what it has; results of the known ones still count.
    let names: Vec<String> = (0..100).map(|i| format!("check {i}")).collect();
    let (status, full) = app
        .post(
            "/api/pr-validations",
            Some(&ada.token),
            json!({"repository": "acme/big", "pr_number": 3, "checks": names}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{full}");
    let (status, body) = app
        .patch(
            &format!("/api/pr-validations/{}/checks/one-more", id(&full)),
            Some(&ada.token),
            json!({"status": "passed"}),
        )
        .await;
    assert_problem(status, &body, StatusCode::CONFLICT);
    assert_eq!(fields(&body), ["name"]);
    let (status, body) = app
        .patch(
            &format!("/api/pr-validations/{}/checks/check%200", id(&full)),
            Some(&ada.token),
            json!({"status": "passed"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn error_logs_are_recorded_filtered_resolved_and_recovered() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let bob = app.register("bob@example.com").await;
    let admin = app.admin("root@example.com").await;
    let p = project(&app, &ada, "demo").await;
    let t = task(&app, &ada, json!({"project_id": p, "title": "t"})).await;

    let (status, e1) = app
        .post(
            "/api/errors",
            Some(&ada.token),
            json!({"error_type": "timeout", "message": "took too long", "task_id": id(&t), "context": {"after_ms": 30000}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{e1}");
    assert_eq!(e1["resolved"], false);
    assert_eq!(e1["recovery_attempts"], 0);
    let (_, e2) = app.post("/api/errors", Some(&ada.token), json!({"error_type": "api", "message": "no task"})).await;
    assert!(e2["task_id"].is_null());
    let (_, bobs) = app.post("/api/errors", Some(&bob.token), json!({"error_type": "api", "message": "bob's"})).await;

    let (status, body) =
        app.post("/api/errors", Some(&ada.token), json!({"error_type": "cosmic", "message": "x"})).await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, body) = app.post("/api/errors", Some(&ada.token), json!({"error_type": "api", "message": ""})).await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, body) = app
        .post("/api/errors", Some(&bob.token), json!({"error_type": "api", "message": "x", "task_id": id(&t)}))
        .await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    assert_eq!(fields(&body), ["task_id"], "another user's task is no task");

    // Who sees what: task errors by the project owner; others by their creator; admin all.
    let (_, list) = app.get("/api/errors", Some(&ada.token)).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    let (_, list) = app.get("/api/errors", Some(&bob.token)).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0]["id"], id(&bobs));
    let (_, list) = app.get("/api/errors", Some(&admin.token)).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 3);
    let (status, _) = app.get(&format!("/api/errors/{}", id(&e2)), Some(&admin.token)).await;
    assert_eq!(status, StatusCode::OK);

    // Filters.
    let (_, list) = app.get("/api/errors?error_type=timeout", Some(&ada.token)).await;
    assert_eq!(list["items"][0]["id"], id(&e1));
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let (_, list) = app.get(&format!("/api/errors?task_id={}", id(&t)), Some(&ada.token)).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let (_, list) = app.get("/api/errors?since=2999-01-01T00:00:00Z", Some(&ada.token)).await;
    assert!(list["items"].as_array().unwrap().is_empty());
    let (_, list) = app.get("/api/errors?since=2000-01-01T00:00:00Z&resolved=false", Some(&ada.token)).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    let (status, body) = app.get("/api/errors?since=yesterday", Some(&ada.token)).await;
    assert_problem(status, &body, StatusCode::BAD_REQUEST);

    // Resolve once.
    let (status, body) = app.post(&format!("/api/errors/{}/resolve", id(&e2)), Some(&ada.token), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["resolved"], true);
    assert!(body["resolved_at"].is_string());
    let (status, body) = app.post(&format!("/api/errors/{}/resolve", id(&e2)), Some(&ada.token), json!({})).await;
    assert_problem(status, &body, StatusCode::CONFLICT);
    let (_, list) = app.get("/api/errors?resolved=true", Some(&ada.token)).await;
    assert_eq!(list["items"][0]["id"], id(&e2));

    // Recovery attempts count, record their outcome, and a success resolves.
    let rec = format!("/api/errors/{}/recovery-attempt", id(&e1));
    let (status, body) =
        app.post(&rec, Some(&ada.token), json!({"outcome": "failed", "details": {"tried": "retry"}})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["recovery_attempts"], 1);
    assert_eq!(body["resolved"], false);
    assert_eq!(body["recovery_log"][0]["outcome"], "failed");
    assert_eq!(body["recovery_log"][0]["attempt"], 1);
    assert_eq!(body["recovery_log"][0]["details"]["tried"], "retry");
    let (_, body) = app.post(&rec, Some(&ada.token), json!({"outcome": "succeeded", "resolve": false})).await;
    assert_eq!(body["recovery_attempts"], 2);
    assert_eq!(body["resolved"], false);
    let (status, body) = app.post(&rec, Some(&ada.token), json!({"outcome": "maybe"})).await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, body) = app.post(&rec, Some(&ada.token), json!({"outcome": "succeeded"})).await;
    assert_eq!(body["recovery_attempts"], 3);
    assert_eq!(body["resolved"], true);
    let (status, body) = app.post(&rec, Some(&ada.token), json!({"outcome": "failed"})).await;
    assert_problem(status, &body, StatusCode::CONFLICT);

    // Past errors.max_recovery_attempts (3 by default) an error needs a person.
    let (_, e3) = app.post("/api/errors", Some(&ada.token), json!({"error_type": "network", "message": "flaky"})).await;
    let rec = format!("/api/errors/{}/recovery-attempt", id(&e3));
    for _ in 0..3 {
        let (status, _) = app.post(&rec, Some(&ada.token), json!({"outcome": "failed"})).await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, body) = app.post(&rec, Some(&ada.token), json!({"outcome": "failed"})).await;
    assert_problem(status, &body, StatusCode::CONFLICT);
    assert!(body["detail"].as_str().unwrap().contains("errors.max_recovery_attempts"), "{body}");

    // Summary by type: the user's own figures; the admin's from the view.
    let (_, summary) = app.get("/api/errors/summary", Some(&ada.token)).await;
    let by_type: HashMap<&str, &Value> =
        summary["items"].as_array().unwrap().iter().map(|r| (r["error_type"].as_str().unwrap(), r)).collect();
    assert_eq!(by_type["api"]["error_count"], 1);
    assert_eq!(by_type["api"]["resolved"], 1);
    assert_eq!(by_type["timeout"]["avg_recovery_attempts"], 3.0);
    assert_eq!(by_type["network"]["unresolved"], 1);
    assert!(by_type["network"]["last_seen"].is_string());
    let (_, summary) = app.get("/api/errors/summary", Some(&admin.token)).await;
    let api = summary["items"].as_array().unwrap().iter().find(|r| r["error_type"] == "api").unwrap();
    assert_eq!(api["error_count"], 2, "the admin counts bob's too");
}

#[tokio::test]
async fn another_users_rows_are_404_on_every_id_route() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let eve = app.register("eve@example.com").await;
    let p = project(&app, &ada, "demo").await;
    let t = task(&app, &ada, json!({"project_id": p, "title": "secret"})).await;
    let x = start(&app, &ada, &id(&t)).await;
    app.post(&format!("/api/executions/{}/logs", id(&x)), Some(&ada.token), json!({"lines": [{"message": "hi"}]}))
        .await;
    let (_, v) = app
        .post("/api/pr-validations", Some(&ada.token), json!({"repository": "a/b", "pr_number": 1, "task_id": id(&t)}))
        .await;
    let (_, v0) = app.post("/api/pr-validations", Some(&ada.token), json!({"repository": "a/b", "pr_number": 2})).await;
    let (_, e) = app
        .post("/api/errors", Some(&ada.token), json!({"error_type": "api", "message": "m", "task_id": id(&t)}))
        .await;
    let (_, e0) = app.post("/api/errors", Some(&ada.token), json!({"error_type": "api", "message": "m"})).await;

    let (t, x, v, v0, e, e0) = (id(&t), id(&x), id(&v), id(&v0), id(&e), id(&e0));
    let calls: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", format!("/api/tasks/{t}"), None),
        ("PATCH", format!("/api/tasks/{t}"), Some(json!({"title": "mine now"}))),
        ("POST", format!("/api/tasks/{t}/cancel"), Some(json!({}))),
        ("GET", format!("/api/tasks/{t}/executions"), None),
        ("POST", format!("/api/tasks/{t}/executions"), Some(json!({"agent_type": "codegen"}))),
        ("GET", format!("/api/executions/{x}"), None),
        ("POST", format!("/api/executions/{x}/complete"), Some(json!({}))),
        ("POST", format!("/api/executions/{x}/fail"), Some(json!({}))),
        ("GET", format!("/api/executions/{x}/logs"), None),
        ("POST", format!("/api/executions/{x}/logs"), Some(json!({"lines": [{"message": "pwned"}]}))),
        ("GET", format!("/api/pr-validations/{v}"), None),
        ("PATCH", format!("/api/pr-validations/{v}/checks/tests"), Some(json!({"status": "passed"}))),
        ("GET", format!("/api/pr-validations/{v0}"), None),
        ("PATCH", format!("/api/pr-validations/{v0}/checks/tests"), Some(json!({"status": "passed"}))),
        ("GET", format!("/api/errors/{e}"), None),
        ("POST", format!("/api/errors/{e}/resolve"), Some(json!({}))),
        ("POST", format!("/api/errors/{e}/recovery-attempt"), Some(json!({"outcome": "failed"}))),
        ("GET", format!("/api/errors/{e0}"), None),
        ("POST", format!("/api/errors/{e0}/resolve"), Some(json!({}))),
    ];
    for (method, path, body) in &calls {
        let method: reqwest::Method = method.parse().unwrap();
        let (status, problem) = app.call(method.clone(), path, Some(&eve.token), body.clone()).await;
        assert_problem(status, &problem, StatusCode::NOT_FOUND);
        // Exactly what a missing id answers.
        let missing = path.replace(&path.split('/').nth(3).unwrap().to_string(), &uuid::Uuid::new_v4().to_string());
        let (status2, problem2) = app.call(method, &missing, Some(&eve.token), body.clone()).await;
        assert_eq!(status2, StatusCode::NOT_FOUND, "{missing}");
        assert_eq!(problem["detail"], problem2["detail"], "{path}");
    }
    // Eve's lists and claims show nothing of ada's.
    for path in ["/api/tasks", "/api/pr-validations", "/api/errors"] {
        let (_, list) = app.get(path, Some(&eve.token)).await;
        assert_eq!(list["items"], json!([]), "{path}");
    }
    let (status, _) = app.post("/api/tasks/claim", Some(&eve.token), json!({"agent_type": "codegen"})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, summary) = app.get("/api/executions/summary", Some(&eve.token)).await;
    assert_eq!(summary["items"], json!([]));

    // Nothing changed.
    let (_, task) = app.get(&format!("/api/tasks/{t}"), Some(&ada.token)).await;
    assert_eq!(task["title"], "secret");
    assert_eq!(task["status"], "in_progress");
    let (_, lines) = app.get(&format!("/api/executions/{x}/logs"), Some(&ada.token)).await;
    assert_eq!(lines["items"].as_array().unwrap().len(), 1);

    // A soft-deleted project takes its tasks out of sight, even an admin's.
    let admin = app.admin("root@example.com").await;
    let (status, _) = app.get(&format!("/api/tasks/{t}"), Some(&admin.token)).await;
    assert_eq!(status, StatusCode::OK);
    let client = app.db.client().await;
    client
        .execute("UPDATE devx.projects SET status = 'deleted' WHERE id = $1", &[&p.parse::<uuid::Uuid>().unwrap()])
        .await
        .unwrap();
    for who in [&ada, &admin] {
        let (status, _) = app.get(&format!("/api/tasks/{t}"), Some(&who.token)).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = app.get(&format!("/api/errors/{e}"), Some(&who.token)).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn executions_summary_matches_the_view_and_audit_rows_name_the_actor() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let admin = app.admin("root@example.com").await;
    let p = project(&app, &ada, "demo").await;
    let t = task(&app, &ada, json!({"project_id": p, "title": "audited", "priority": 2})).await;
    let x = start(&app, &ada, &id(&t)).await;
    app.post(&format!("/api/executions/{}/complete", id(&x)), Some(&ada.token), json!({})).await;
    let t2 = task(&app, &ada, json!({"project_id": p, "title": "second"})).await;
    let (_, claimed) = app.post("/api/tasks/claim", Some(&admin.token), json!({"agent_type": "codegen"})).await;
    assert_eq!(claimed["task"]["id"], id(&t2));
    app.post(
        &format!("/api/executions/{}/fail", claimed["execution"]["id"].as_str().unwrap()),
        Some(&admin.token),
        json!({}),
    )
    .await;

    let (_, mine) = app.get("/api/executions/summary", Some(&ada.token)).await;
    let (_, all) = app.get("/api/executions/summary", Some(&admin.token)).await;
    assert_eq!(mine, all, "ada owns every execution, so her figures are the view's");
    let items = all["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    let cc = items.iter().find(|r| r["agent_type"] == "claude-code").unwrap();
    assert_eq!(cc["runs"], 1);
    assert_eq!(cc["completed"], 1);
    assert_eq!(cc["success_rate"], 100.0);
    assert!(cc["avg_duration_ms"].is_number() && cc["p95_duration_ms"].is_number());
    let cg = items.iter().find(|r| r["agent_type"] == "codegen").unwrap();
    assert_eq!(cg["failed"], 1);
    assert_eq!(cg["success_rate"], 0.0);

    // Every change to the task is in the audit trail under the user who made it.
    let client = app.db.client().await;
    let rows = client
        .query(
            "SELECT action, actor, new_values ->> 'status' FROM devx.audit_logs
              WHERE entity_type = 'devx.tasks' AND entity_id = $1 ORDER BY id",
            &[&id(&t)],
        )
        .await
        .unwrap();
    let trail: Vec<(String, String, Option<String>)> = rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
    let ada_actor = format!("user:{}", ada.user_id);
    assert_eq!(
        trail,
        [
            ("insert".to_string(), ada_actor.clone(), Some("pending".to_string())),
            ("update".to_string(), ada_actor.clone(), Some("in_progress".to_string())),
            ("update".to_string(), ada_actor.clone(), Some("completed".to_string())),
        ]
    );
    let actors: Vec<String> = column(
        &client,
        "SELECT DISTINCT actor FROM devx.audit_logs WHERE entity_type = 'devx.tasks' AND entity_id = $1",
        &[&id(&t2)],
    )
    .await;
    let mut expected = vec![ada_actor, format!("user:{}", admin.user_id)];
    expected.sort();
    let mut actors = actors;
    actors.sort();
    assert_eq!(actors, expected, "the admin's claim and failure are the admin's");
    let pr_audits: i64 = client
        .query_one(
            "SELECT count(*) FROM devx.audit_logs WHERE entity_type = 'devx.task_executions' AND actor = $1",
            &[&format!("user:{}", admin.user_id)],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(pr_audits, 2, "the admin's claim started an execution and failed it");
}

// The agent runtime: leases, heartbeats and the reaper; attempts, backoff
// and dead letters; limits enforced under concurrency; unique keys.

/// Sets a runtime setting through the admin API.
async fn set(app: &TestApp, admin: &Session, key: &str, value: Value) {
    let (status, body) = app
        .call(
            reqwest::Method::PUT,
            &format!("/api/admin/config/{key}"),
            Some(&admin.token),
            Some(json!({"value": value})),
        )
        .await;
    assert!(status == StatusCode::OK || status == StatusCode::CREATED, "set {key}: {status} {body}");
}

async fn claim(app: &TestApp, who: &Session, agent_type: &str) -> (StatusCode, Value) {
    app.post("/api/tasks/claim", Some(&who.token), json!({"agent_type": agent_type})).await
}

/// Claims and expects a task.
async fn claimed(app: &TestApp, who: &Session) -> Value {
    let (status, body) = claim(app, who, "claude-code").await;
    assert_eq!(status, StatusCode::OK, "claim: {body}");
    body
}

/// Waits (polling) until the execution's lease has expired: the only wait
/// in these tests, and as long as the lease the test chose (a second).
async fn wait_for_lease_to_expire(app: &TestApp, execution: &str) {
    let client = app.db.client().await;
    for _ in 0..200 {
        let expired: bool = one(
            &client,
            "SELECT lease_expires_at < now() FROM devx.task_executions WHERE id = $1::text::uuid",
            &[&execution],
        )
        .await;
        if expired {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the lease of {execution} never expired");
}

async fn reap(app: &TestApp) -> devx::agents::reaper::ReapReport {
    let report = devx::agents::reaper::reap_once(&app.pool).await.expect("a reaper pass");
    assert!(!report.skipped, "no other reaper runs in a test");
    report
}

fn uuids(ids: &[uuid::Uuid]) -> Vec<String> {
    ids.iter().map(ToString::to_string).collect()
}

fn time(v: &Value) -> chrono::DateTime<chrono::Utc> {
    v.as_str().unwrap_or_else(|| panic!("not a time: {v}")).parse().unwrap()
}

/// The issue's "done when": an agent that stops heartbeating loses its task
/// to another agent after the lease, its execution failed as lost and the
/// attempt counted in the task's history; after `max_attempts` the task is
/// dead, and a retry revives it.
#[tokio::test]
async fn a_lost_agent_s_task_is_reaped_claimed_again_and_dead_after_its_attempts() {
    let app = TestApp::spawn().await;
    let admin = app.admin("root@example.com").await;
    let ada = app.register("ada@example.com").await;
    let p = project(&app, &ada, "demo").await;
    set(&app, &admin, "agents.retry_backoff_base_seconds", json!(0)).await;
    let t = task(&app, &ada, json!({"project_id": p, "title": "fragile", "lease_seconds": 1, "max_attempts": 2})).await;
    assert_eq!(
        (t["attempt"].clone(), t["max_attempts"].clone(), t["lease_seconds"].clone()),
        (json!(0), json!(2), json!(1))
    );
    assert_eq!(t["errors"], json!([]));

    // Agent A claims: attempt 1, a lease of one second, renewed by a heartbeat.
    let a = claimed(&app, &ada).await;
    assert_eq!(a["task"]["id"], id(&t));
    assert_eq!((a["task"]["attempt"].clone(), a["execution"]["attempt"].clone()), (json!(1), json!(1)));
    assert_eq!(a["execution"]["lease_seconds"], 1);
    let x1 = a["execution"]["id"].as_str().unwrap().to_string();
    let (status, beat) = app.post(&format!("/api/executions/{x1}/heartbeat"), Some(&ada.token), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{beat}");
    assert_eq!((beat["status"].clone(), beat["cancelled"].clone()), (json!("running"), json!(false)));
    assert!(time(&beat["lease_expires_at"]) >= time(&a["execution"]["lease_expires_at"]));

    // A stops heartbeating: once the lease is over, the reaper fails its
    // execution as lost and puts the task back for another attempt.
    wait_for_lease_to_expire(&app, &x1).await;
    let report = reap(&app).await;
    assert_eq!(uuids(&report.lost), [x1.as_str()]);
    assert_eq!(uuids(&report.retried), [id(&t)]);
    assert_eq!(reap(&app).await.reaped(), 0, "nothing is reaped twice");
    let (_, x) = app.get(&format!("/api/executions/{x1}"), Some(&ada.token)).await;
    assert_eq!(x["status"], "failed");
    assert_eq!(x["error_details"]["reason"], "lost");
    assert!(x["lease_expires_at"].is_null());
    let (_, logs) = app.get(&format!("/api/executions/{x1}/logs"), Some(&ada.token)).await;
    let last = logs["items"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["level"], "error");
    assert!(last["message"].as_str().unwrap().contains("failed as lost"), "{last}");
    let (_, now) = app.get(&format!("/api/tasks/{}", id(&t)), Some(&ada.token)).await;
    assert_eq!((now["status"].clone(), now["attempt"].clone()), (json!("pending"), json!(1)));
    assert!(now["assigned_to"].is_null());
    let entry = &now["errors"][0];
    assert_eq!((entry["execution_id"].as_str(), entry["reason"].as_str()), (Some(x1.as_str()), Some("lost")));
    assert_eq!(entry["attempt"], 1);
    assert!(entry["at"].is_string());
    let (status, error) =
        app.get(&format!("/api/errors/{}", entry["error_log_id"].as_str().unwrap()), Some(&ada.token)).await;
    assert_eq!(status, StatusCode::OK, "{error}");
    assert_eq!((error["error_type"].clone(), error["created_by"].clone()), (json!("timeout"), Value::Null));

    // A comes back: the work was handed on, and every answer says so.
    for action in ["complete", "fail", "heartbeat"] {
        let (status, body) = app.post(&format!("/api/executions/{x1}/{action}"), Some(&ada.token), json!({})).await;
        assert_problem(status, &body, StatusCode::CONFLICT);
        assert!(body["detail"].as_str().unwrap().contains("lease was lost"), "{action}: {body}");
    }

    // Agent B gets the task: attempt 2. Appending logs renews its lease.
    let b = claimed(&app, &ada).await;
    assert_eq!(b["task"]["id"], id(&t));
    assert_eq!((b["task"]["attempt"].clone(), b["execution"]["attempt"].clone()), (json!(2), json!(2)));
    let x2 = b["execution"]["id"].as_str().unwrap().to_string();
    assert_ne!(x1, x2);
    let (status, _) = app
        .post(&format!("/api/executions/{x2}/logs"), Some(&ada.token), json!({"lines": [{"message": "working"}]}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, after_log) = app.get(&format!("/api/executions/{x2}"), Some(&ada.token)).await;
    assert!(time(&after_log["lease_expires_at"]) > time(&b["execution"]["lease_expires_at"]), "{after_log}");

    // B dies too: that was the last attempt, so the task is dead.
    wait_for_lease_to_expire(&app, &x2).await;
    let report = reap(&app).await;
    assert_eq!((uuids(&report.lost), uuids(&report.failed)), (vec![x2.clone()], vec![id(&t)]));
    let (_, now) = app.get(&format!("/api/tasks/{}", id(&t)), Some(&ada.token)).await;
    assert_eq!((now["status"].clone(), now["attempt"].clone()), (json!("failed"), json!(2)));
    assert_eq!(now["errors"].as_array().unwrap().len(), 2, "{now}");
    let (status, dead) = app.get("/api/tasks?status=failed&dead=true", Some(&ada.token)).await;
    assert_eq!(status, StatusCode::OK, "{dead}");
    assert_eq!(ids(&dead), [id(&t)]);
    let (_, alive) = app.get("/api/tasks?dead=false", Some(&ada.token)).await;
    assert!(ids(&alive).is_empty(), "{alive}");
    let (status, body) = claim(&app, &ada, "claude-code").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "a dead task is not claimed: {body}");

    // A retry revives it with fresh attempts; its history stays.
    let (status, revived) = app.post(&format!("/api/tasks/{}/retry", id(&t)), Some(&ada.token), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{revived}");
    assert_eq!((revived["status"].clone(), revived["attempt"].clone()), (json!("pending"), json!(0)));
    assert_eq!(revived["errors"].as_array().unwrap().len(), 2);
    let (status, body) = app.post(&format!("/api/tasks/{}/retry", id(&t)), Some(&ada.token), json!({})).await;
    assert_problem(status, &body, StatusCode::CONFLICT);
    assert!(body["detail"].as_str().unwrap().contains("only a failed task"), "{body}");
    let eve = app.register("eve@example.com").await;
    let (status, body) = app.post(&format!("/api/tasks/{}/retry", id(&t)), Some(&eve.token), json!({})).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    let c = claimed(&app, &ada).await;
    assert_eq!((c["task"]["id"].as_str(), c["task"]["attempt"].clone()), (Some(id(&t).as_str()), json!(1)));
    // No reaper runs here, so a late completion is still this agent's.
    let (status, out) = app
        .post(
            &format!("/api/executions/{}/complete", c["execution"]["id"].as_str().unwrap()),
            Some(&ada.token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["task"]["status"], "completed");

    // The reaper's changes are its own in the audit trail; heartbeats and
    // log appends, which only move the lease, leave no audit rows.
    let client = app.db.client().await;
    let reaped: i64 = one(
        &client,
        "SELECT count(*) FROM devx.audit_logs WHERE actor = 'system:reaper' AND entity_type = 'devx.task_executions'",
        &[],
    )
    .await;
    assert_eq!(reaped, 2);
    let lease_only: i64 = one(
        &client,
        "SELECT count(*) FROM devx.audit_logs WHERE entity_type = 'devx.task_executions' AND action = 'update'
            AND new_values ? 'lease_expires_at' AND NOT new_values ? 'status'",
        &[],
    )
    .await;
    assert_eq!(lease_only, 0);
}

#[tokio::test]
async fn heartbeats_renew_the_lease_and_tell_a_cancelled_agent_to_stop() {
    let app = TestApp::spawn().await;
    let admin = app.admin("root@example.com").await;
    let ada = app.register("ada@example.com").await;
    let eve = app.register("eve@example.com").await;
    let p = project(&app, &ada, "demo").await;
    let t = task(&app, &ada, json!({"project_id": p, "title": "long"})).await;
    assert!(t["lease_seconds"].is_null(), "the setting decides");
    let c = claimed(&app, &ada).await;
    assert_eq!(c["execution"]["lease_seconds"], 60, "agents.lease_seconds defaults to a minute");
    let x = c["execution"]["id"].as_str().unwrap().to_string();
    let url = format!("/api/executions/{x}/heartbeat");
    let (status, beat) = app.post(&url, Some(&ada.token), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{beat}");
    let until = time(&beat["lease_expires_at"]);
    let from_now = until - chrono::Utc::now();
    assert!(from_now > chrono::Duration::seconds(50) && from_now <= chrono::Duration::seconds(60), "{beat}");
    assert_eq!(reap(&app).await.reaped(), 0, "a held lease is not reaped");

    let (status, body) = app.post(&url, Some(&eve.token), json!({})).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = app.post(&url, None, json!({})).await;
    assert_problem(status, &body, StatusCode::UNAUTHORIZED);
    let (status, body) = app.post("/api/executions/nope/heartbeat", Some(&ada.token), json!({})).await;
    assert_problem(status, &body, StatusCode::BAD_REQUEST);

    // Cancelled meanwhile: the heartbeat says so, without a lease.
    let (status, _) = app.post(&format!("/api/tasks/{}/cancel", id(&t)), Some(&ada.token), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, beat) = app.post(&url, Some(&ada.token), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{beat}");
    assert_eq!((beat["cancelled"].clone(), beat["status"].clone()), (json!(true), json!("cancelled")));
    assert!(beat["lease_expires_at"].is_null());

    // The lease setting applies to claims from then on; a finished execution
    // has no lease to renew.
    set(&app, &admin, "agents.lease_seconds", json!(120)).await;
    task(&app, &ada, json!({"project_id": p, "title": "next"})).await;
    let c = claimed(&app, &ada).await;
    assert_eq!(c["execution"]["lease_seconds"], 120);
    let x = c["execution"]["id"].as_str().unwrap().to_string();
    app.post(&format!("/api/executions/{x}/complete"), Some(&ada.token), json!({})).await;
    let (status, body) = app.post(&format!("/api/executions/{x}/heartbeat"), Some(&ada.token), json!({})).await;
    assert_problem(status, &body, StatusCode::CONFLICT);
    assert!(body["detail"].as_str().unwrap().contains("completed"), "{body}");

    // An execution running past agents.execution_timeout_seconds is reaped
    // as timed out, however fresh its lease.
    let t = task(&app, &ada, json!({"project_id": p, "title": "endless"})).await;
    let c = claimed(&app, &ada).await;
    assert_eq!(c["task"]["id"], id(&t));
    let x = c["execution"]["id"].as_str().unwrap().to_string();
    let client = app.db.client().await;
    client
        .execute(
            "UPDATE devx.task_executions SET started_at = now() - interval '2 hours' WHERE id = $1::text::uuid",
            &[&x],
        )
        .await
        .unwrap();
    let report = reap(&app).await;
    assert_eq!(uuids(&report.timed_out), [x.as_str()]);
    let (_, body) = app.get(&format!("/api/executions/{x}"), Some(&ada.token)).await;
    assert_eq!(body["error_details"]["reason"], "timed_out");
    let (status, body) = app.post(&format!("/api/executions/{x}/complete"), Some(&ada.token), json!({})).await;
    assert_problem(status, &body, StatusCode::CONFLICT);
    assert!(body["detail"].as_str().unwrap().contains("agents.execution_timeout_seconds"), "{body}");
}

#[tokio::test]
async fn failed_attempts_back_off_and_a_claim_waits_for_run_after() {
    let app = TestApp::spawn().await;
    let admin = app.admin("root@example.com").await;
    let ada = app.register("ada@example.com").await;
    let p = project(&app, &ada, "demo").await;
    set(&app, &admin, "agents.max_attempts", json!(4)).await;
    let t = task(&app, &ada, json!({"project_id": p, "title": "flaky"})).await;
    assert_eq!(t["max_attempts"], 4, "the setting is the default");

    // Default backoff: 10 s after the first failure, jittered into 5..10 s.
    let c = claimed(&app, &ada).await;
    let x = c["execution"]["id"].as_str().unwrap();
    let (status, out) =
        app.post(&format!("/api/executions/{x}/fail"), Some(&ada.token), json!({"message": "flaky network"})).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["task"]["status"], "pending");
    let wait = time(&out["task"]["run_after"]) - time(&out["task"]["updated_at"]);
    assert!(wait >= chrono::Duration::seconds(5) && wait <= chrono::Duration::seconds(10), "{wait}");
    assert_eq!(out["task"]["errors"][0]["reason"], "failed");
    assert_eq!(out["task"]["errors"][0]["message"], "flaky network");
    assert_eq!(out["task"]["errors"][0]["error_log_id"], out["error"]["id"]);
    let (status, _) = claim(&app, &ada, "claude-code").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "not before run_after");

    // Once run_after has passed, the next attempt; a failure without retry is final.
    let client = app.db.client().await;
    client.execute("UPDATE devx.tasks SET run_after = now()", &[]).await.unwrap();
    let c = claimed(&app, &ada).await;
    assert_eq!(c["task"]["attempt"], 2);
    let x = c["execution"]["id"].as_str().unwrap();
    let (_, out) = app.post(&format!("/api/executions/{x}/fail"), Some(&ada.token), json!({"retry": false})).await;
    assert_eq!(out["task"]["status"], "failed");
    // Failed with attempts left: not a dead letter.
    let (_, dead) = app.get("/api/tasks?dead=true", Some(&ada.token)).await;
    assert!(ids(&dead).is_empty());
    let (_, failed) = app.get("/api/tasks?status=failed&dead=false", Some(&ada.token)).await;
    assert_eq!(ids(&failed), [id(&t)]);
    let (status, body) = app.get("/api/tasks?dead=maybe", Some(&ada.token)).await;
    assert_problem(status, &body, StatusCode::BAD_REQUEST);
}

/// The settings are checked like every known setting.
#[tokio::test]
async fn agent_settings_refuse_values_out_of_range() {
    let app = TestApp::spawn().await;
    let admin = app.admin("root@example.com").await;
    for (key, value) in [
        ("agents.lease_seconds", json!(0)),
        ("agents.max_attempts", json!(101)),
        ("agents.retry_backoff_base_seconds", json!(-1)),
        ("agents.reaper_interval_seconds", json!("10")),
        ("agents.max_concurrent_executions_per_project", json!(0)),
        ("agents.max_concurrent_executions_per_agent_type", json!({"claude-code": 0})),
        ("agents.max_concurrent_executions_per_agent_type", json!({"Not A Type": 2})),
        ("agents.max_concurrent_executions_per_agent_type", json!(4)),
    ] {
        let (status, body) = app
            .call(
                reqwest::Method::PUT,
                &format!("/api/admin/config/{key}"),
                Some(&admin.token),
                Some(json!({"value": value})),
            )
            .await;
        assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(fields(&body), ["value"], "{key} = {value}");
    }
    set(&app, &admin, "agents.max_concurrent_executions_per_agent_type", json!({"claude-code": 2})).await;
}

/// 32 agents claim at once against a limit of 4: exactly 4 get a task.
/// Then they keep claiming and completing until every task is done, and no
/// claim ever sees more than 4 running.
#[tokio::test]
async fn thirty_two_claimers_against_a_limit_of_four_never_run_more_than_four() {
    let app = Arc::new(
        TestApp::spawn_with(|c| {
            c.database.pool_max = 16;
            c.database.acquire_timeout = std::time::Duration::from_secs(20);
        })
        .await,
    );
    let admin = app.admin("root@example.com").await;
    let ada = app.register("ada@example.com").await;
    let p = project(&app, &ada, "demo").await;
    set(&app, &admin, "agents.max_concurrent_executions", json!(4)).await;
    {
        let client = app.db.client().await;
        let pid: uuid::Uuid = p.parse().unwrap();
        client
            .execute(
                "INSERT INTO devx.tasks (project_id, title) SELECT $1, 'task ' || n FROM generate_series(1, 48) n",
                &[&pid],
            )
            .await
            .unwrap();
    }

    // One claim each, all at once.
    let barrier = Arc::new(tokio::sync::Barrier::new(32));
    let mut claimers = Vec::new();
    for _ in 0..32 {
        let (app, token, barrier) = (app.clone(), ada.token.clone(), barrier.clone());
        claimers.push(tokio::spawn(async move {
            barrier.wait().await;
            let (status, body) = app.post("/api/tasks/claim", Some(&token), json!({"agent_type": "claude-code"})).await;
            assert!(status == StatusCode::OK || status == StatusCode::NO_CONTENT, "{status}: {body}");
            (status == StatusCode::OK).then(|| body["execution"]["id"].as_str().unwrap().to_string())
        }));
    }
    let mut first = Vec::new();
    for c in claimers {
        first.extend(c.await.unwrap());
    }
    assert_eq!(first.len(), 4, "exactly the limit got a task");
    for x in &first {
        let (status, _) = app.post(&format!("/api/executions/{x}/complete"), Some(&ada.token), json!({})).await;
        assert_eq!(status, StatusCode::OK);
    }

    // Then claim, check, complete, until every task is done.
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(first.len()));
    let most = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let mut workers = Vec::new();
    for _ in 0..32 {
        let (app, token, done, most) = (app.clone(), ada.token.clone(), done.clone(), most.clone());
        workers.push(tokio::spawn(async move {
            let client = app.db.client().await;
            let mut claims = 0;
            while done.load(std::sync::atomic::Ordering::SeqCst) < 48 {
                let (status, body) =
                    app.post("/api/tasks/claim", Some(&token), json!({"agent_type": "claude-code"})).await;
                match status {
                    StatusCode::OK => {
                        claims += 1;
                        let running: i64 =
                            one(&client, "SELECT count(*) FROM devx.task_executions WHERE status = 'running'", &[])
                                .await;
                        most.fetch_max(running, std::sync::atomic::Ordering::SeqCst);
                        let x = body["execution"]["id"].as_str().unwrap();
                        let (status, _) =
                            app.post(&format!("/api/executions/{x}/complete"), Some(&token), json!({})).await;
                        assert_eq!(status, StatusCode::OK);
                        done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    StatusCode::NO_CONTENT => tokio::task::yield_now().await,
                    other => panic!("claim answered {other}: {body}"),
                }
            }
            claims
        }));
    }
    let mut claims = 0;
    for w in workers {
        claims += w.await.unwrap();
    }
    assert_eq!(claims, 44, "every remaining task claimed once");
    let most = most.load(std::sync::atomic::Ordering::SeqCst);
    assert!((1..=4).contains(&most), "at most 4 running at any claim, saw {most}");
    let client = app.db.client().await;
    let completed: i64 = one(&client, "SELECT count(*) FROM devx.tasks WHERE status = 'completed'", &[]).await;
    assert_eq!(completed, 48);
}

#[tokio::test]
async fn per_project_and_per_agent_type_limits_hold() {
    let app = TestApp::spawn().await;
    let admin = app.admin("root@example.com").await;
    let ada = app.register("ada@example.com").await;
    let busy = project(&app, &ada, "busy").await;
    let quiet = project(&app, &ada, "quiet").await;
    set(&app, &admin, "agents.max_concurrent_executions_per_project", json!(2)).await;
    set(&app, &admin, "agents.max_concurrent_executions_per_agent_type", json!({"codegen": 1})).await;
    for n in 0..3 {
        task(&app, &ada, json!({"project_id": busy, "title": format!("busy {n}"), "priority": 9})).await;
    }
    task(&app, &ada, json!({"project_id": quiet, "title": "quiet", "priority": 1})).await;

    // One codegen at a time.
    let (status, first) = claim(&app, &ada, "codegen").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(first["task"]["project_id"], busy.as_str());
    let (status, _) = claim(&app, &ada, "codegen").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "the codegen limit");
    // Two per project: the busy project's third task waits, the quiet one's runs.
    let (_, second) = claim(&app, &ada, "claude-code").await;
    assert_eq!(second["task"]["project_id"], busy.as_str());
    let (status, third) = claim(&app, &ada, "claude-code").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(third["task"]["project_id"], quiet.as_str(), "the busy project is at its limit");
    let (status, _) = claim(&app, &ada, "claude-code").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // A finished execution frees its slots.
    let x = first["execution"]["id"].as_str().unwrap();
    app.post(&format!("/api/executions/{x}/complete"), Some(&ada.token), json!({})).await;
    let (status, fourth) = claim(&app, &ada, "codegen").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fourth["task"]["project_id"], busy.as_str());
}

#[tokio::test]
async fn a_unique_key_makes_task_creation_idempotent_among_open_tasks() {
    let app = Arc::new(TestApp::spawn().await);
    let ada = app.register("ada@example.com").await;
    let p = project(&app, &ada, "demo").await;
    let other = project(&app, &ada, "other").await;
    let first = task(&app, &ada, json!({"project_id": p, "title": "PR 42", "unique_key": "pr-42"})).await;
    assert_eq!(first["unique_key"], "pr-42");
    let (status, body) = app
        .post("/api/tasks", Some(&ada.token), json!({"project_id": p, "title": "again", "unique_key": "pr-42"}))
        .await;
    assert_problem(status, &body, StatusCode::CONFLICT);
    assert_eq!(fields(&body), ["unique_key"]);
    assert!(body["detail"].as_str().unwrap().contains(&id(&first)), "names the existing task: {body}");
    task(&app, &ada, json!({"project_id": other, "title": "PR 42", "unique_key": "pr-42"})).await;

    // Eight deliveries at once: one task.
    let mut posts = Vec::new();
    for _ in 0..8 {
        let (app, token, p) = (app.clone(), ada.token.clone(), p.clone());
        posts.push(tokio::spawn(async move {
            app.post("/api/tasks", Some(&token), json!({"project_id": p, "title": "hook", "unique_key": "pr-43"}))
                .await
                .0
        }));
    }
    let mut statuses = Vec::new();
    for post in posts {
        statuses.push(post.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::CREATED).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::CONFLICT).count(), 7, "{statuses:?}");

    // A closed task frees its key; retrying it while another open task has the key is a 409.
    let x = start(&app, &ada, &id(&first)).await;
    app.post(&format!("/api/executions/{}/fail", id(&x)), Some(&ada.token), json!({"retry": false})).await;
    let again = task(&app, &ada, json!({"project_id": p, "title": "PR 42 again", "unique_key": "pr-42"})).await;
    let (status, body) = app.post(&format!("/api/tasks/{}/retry", id(&first)), Some(&ada.token), json!({})).await;
    assert_problem(status, &body, StatusCode::CONFLICT);
    assert_eq!(fields(&body), ["unique_key"]);
    assert_ne!(id(&again), id(&first));

    // Bad values, all named.
    let (status, body) = app
        .post(
            "/api/tasks",
            Some(&ada.token),
            json!({"project_id": p, "title": "x", "unique_key": "", "max_attempts": 0, "lease_seconds": 3601}),
        )
        .await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["max_attempts", "lease_seconds", "unique_key"]);
    let (status, body) = app
        .patch(&format!("/api/tasks/{}", id(&again)), Some(&ada.token), json!({"max_attempts": 5, "lease_seconds": 30}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!((body["max_attempts"].clone(), body["lease_seconds"].clone()), (json!(5), json!(30)));
    let (_, body) =
        app.patch(&format!("/api/tasks/{}", id(&again)), Some(&ada.token), json!({"lease_seconds": null})).await;
    assert!(body["lease_seconds"].is_null(), "{body}");
}

/// The claim walks `tasks_status_priority_created_at_idx` in its order,
/// with or without the per-project limit, over many tasks most of which are
/// finished or not yet due.
#[tokio::test]
async fn the_claim_walks_the_priority_index() {
    let db = crate::harness::TestDb::migrated().await;
    let client = db.client().await;
    let (owner, project) = crate::support::seed_owner(&client).await;
    client
        .execute(
            "INSERT INTO devx.tasks (project_id, title, priority, status, run_after)
             SELECT $1, 'task ' || n, n % 11,
                    CASE WHEN n % 10 = 0 THEN 'pending' ELSE 'completed' END,
                    CASE WHEN n % 20 = 0 THEN now() + interval '1 hour' ELSE now() END
               FROM generate_series(1, 20000) n",
            &[&project],
        )
        .await
        .unwrap();
    client.batch_execute("ANALYZE devx.tasks; ANALYZE devx.projects;").await.unwrap();
    for limit in [None, Some(2)] {
        for who in [Some(owner), None] {
            let statement = devx::agents::queries::tasks::claim_statement(who, "claude-code", owner, limit);
            let rows = client.query(&format!("EXPLAIN {}", statement.sql), &statement.param_refs()).await.unwrap();
            let plan: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
            let plan = plan.join("\n");
            assert!(plan.contains("tasks_status_priority_created_at_idx"), "limit {limit:?}, owner {who:?}:\n{plan}");
        }
    }
}

/// Waits until this database's LISTEN connection is listening (a state, not a time).
async fn wait_for_listener(app: &TestApp) {
    let admin = crate::harness::admin_client().await;
    let database = app.db.config().get_dbname().unwrap().to_string();
    for _ in 0..400 {
        let listening: i64 = one(
            &admin,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'LISTEN%'",
            &[&database],
        )
        .await;
        if listening > 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("no LISTEN connection on {database}");
}

/// Claims with `wait` hold the request until a task appears: 8 waiting
/// agents, 100 tasks created one by one, each claimed exactly once, woken
/// by notifications. The median time from creation to claim is printed (a
/// benchmark figure, not asserted).
#[tokio::test]
async fn waiting_claims_wake_on_new_tasks_and_each_is_claimed_once() {
    let app = Arc::new(TestApp::spawn_with(|c| c.database.pool_max = 16).await);
    let admin = app.admin("root@example.com").await;
    let ada = app.register("ada@example.com").await;
    let p = project(&app, &ada, "demo").await;
    set(&app, &admin, "agents.max_concurrent_executions", json!(1000)).await;

    let (status, body) =
        app.post("/api/tasks/claim", Some(&ada.token), json!({"agent_type": "claude-code", "wait": 26})).await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["wait"]);
    // Nothing comes: 204 at the deadline.
    let (status, _) =
        app.post("/api/tasks/claim", Some(&ada.token), json!({"agent_type": "claude-code", "wait": 1})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let claimed = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut agents = Vec::new();
    for _ in 0..8 {
        let (app, token, claimed) = (app.clone(), ada.token.clone(), claimed.clone());
        agents.push(tokio::spawn(async move {
            while claimed.lock().unwrap().len() < 100 {
                let (status, body) =
                    app.post("/api/tasks/claim", Some(&token), json!({"agent_type": "claude-code", "wait": 5})).await;
                match status {
                    StatusCode::OK => claimed.lock().unwrap().push(body["task"]["id"].as_str().unwrap().to_string()),
                    StatusCode::NO_CONTENT => {}
                    other => panic!("claim answered {other}: {body}"),
                }
            }
        }));
    }
    wait_for_listener(&app).await;
    let before = app.pool.notifications_received();
    let mut created = Vec::new();
    for n in 0..100 {
        created.push(id(&task(&app, &ada, json!({"project_id": p, "title": format!("task {n}")})).await));
    }
    for a in agents {
        a.await.unwrap();
    }
    let claimed = claimed.lock().unwrap().clone();
    let distinct: BTreeSet<&String> = claimed.iter().collect();
    assert_eq!((claimed.len(), distinct.len()), (100, 100), "each task claimed exactly once");
    assert_eq!(distinct, created.iter().collect::<BTreeSet<_>>());
    assert!(app.pool.notifications_received() > before, "the claims were woken by notifications");

    let client = app.db.client().await;
    let median_ms: f64 = one(
        &client,
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM x.started_at - t.created_at) * 1000)
           FROM devx.task_executions x JOIN devx.tasks t ON t.id = x.task_id",
        &[],
    )
    .await;
    eprintln!("median time from task creation to claim with 8 waiting agents: {median_ms:.1} ms");
}

/// Without notifications (`DB_STATEMENT_MODE=unnamed`, as behind PgBouncer)
/// a waiting claim polls, and still gets the task.
#[tokio::test]
async fn without_notifications_a_waiting_claim_polls() {
    let app = Arc::new(TestApp::spawn_with(|c| c.database.statement_mode = devx::config::StatementMode::Unnamed).await);
    let ada = app.register("ada@example.com").await;
    let p = project(&app, &ada, "demo").await;
    let waiting = {
        let (app, token) = (app.clone(), ada.token.clone());
        tokio::spawn(async move {
            app.post("/api/tasks/claim", Some(&token), json!({"agent_type": "claude-code", "wait": 10})).await
        })
    };
    let t = task(&app, &ada, json!({"project_id": p, "title": "polled"})).await;
    let (status, body) = waiting.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["task"]["id"], id(&t));
    assert_eq!(app.pool.notifications_received(), 0);
}

/// One Server-Sent Event: its id, its event name (default `message`), its data.
#[derive(Debug, Clone)]
pub(crate) struct Sse {
    pub(crate) id: Option<String>,
    pub(crate) event: String,
    pub(crate) data: String,
}

/// Reads an event stream as it arrives.
pub(crate) struct SseReader {
    response: reqwest::Response,
    buffer: String,
}

impl SseReader {
    pub(crate) async fn open(app: &TestApp, path: &str, token: &str, last_event_id: Option<&str>) -> SseReader {
        let mut request = app.request(reqwest::Method::GET, path, Some(token));
        if let Some(last) = last_event_id {
            request = request.header("Last-Event-ID", last);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
        SseReader { response, buffer: String::new() }
    }

    /// The next event (comments skipped); `None` when the stream ends.
    pub(crate) async fn next(&mut self) -> Option<Sse> {
        loop {
            if let Some(at) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..at + 2).collect();
                let mut event = Sse { id: None, event: "message".into(), data: String::new() };
                let mut fields = 0;
                for line in block.lines().filter(|l| !l.starts_with(':') && !l.is_empty()) {
                    let (name, value) = line.split_once(':').unwrap_or((line, ""));
                    let value = value.strip_prefix(' ').unwrap_or(value).to_string();
                    fields += 1;
                    match name {
                        "id" => event.id = Some(value),
                        "event" => event.event = value,
                        "data" => event.data = value,
                        _ => {}
                    }
                }
                if fields > 0 {
                    return Some(event);
                }
                continue;
            }
            let chunk = tokio::time::timeout(std::time::Duration::from_secs(30), self.response.chunk())
                .await
                .expect("an event within 30 s")
                .unwrap()?;
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

async fn append(app: &TestApp, who: &Session, x: &str, messages: &[String]) {
    let lines: Vec<Value> = messages.iter().map(|m| json!({"message": m})).collect();
    let (status, body) =
        app.post(&format!("/api/executions/{x}/logs"), Some(&who.token), json!({"lines": lines})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// A live log stream sends every line once, in order, across a reconnect
/// with `Last-Event-ID`, while lines are being appended, and ends with
/// `event: end` once the execution has finished and every line is sent.
#[tokio::test]
async fn a_log_stream_resumed_with_last_event_id_sends_every_line_exactly_once() {
    let app = Arc::new(TestApp::spawn().await);
    let ada = app.register("ada@example.com").await;
    let eve = app.register("eve@example.com").await;
    let p = project(&app, &ada, "demo").await;
    let t = task(&app, &ada, json!({"project_id": p, "title": "streamed"})).await;
    let x = id(&start(&app, &ada, &id(&t)).await);
    let path = format!("/api/executions/{x}/logs/stream");
    append(&app, &ada, &x, &(1..=5).map(|n| format!("line {n}")).collect::<Vec<_>>()).await;

    let mut seen: Vec<i64> = Vec::new();
    let mut first = SseReader::open(&app, &path, &ada.token, None).await;
    let appender = {
        let (app, ada, x) = (app.clone(), ada.clone(), x.clone());
        tokio::spawn(async move {
            for batch in 0..10 {
                let lines: Vec<String> = (0..3).map(|n| format!("batch {batch} line {n}")).collect();
                append(&app, &ada, &x, &lines).await;
            }
        })
    };
    while seen.last().is_none_or(|last| *last < 12) {
        let event = first.next().await.expect("the stream goes on");
        assert_eq!(event.event, "message");
        let line: Value = serde_json::from_str(&event.data).unwrap();
        assert_eq!(Some(line["seq"].to_string()), event.id, "the event id is the seq");
        seen.push(line["seq"].as_i64().unwrap());
    }
    drop(first);
    appender.await.unwrap();

    // Reconnect from the last id received; the execution ends meanwhile.
    let last = seen.last().unwrap().to_string();
    let mut second = SseReader::open(&app, &path, &ada.token, Some(&last)).await;
    let (status, _) = app.post(&format!("/api/executions/{x}/complete"), Some(&ada.token), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    loop {
        let event = second.next().await.expect("an end event before the stream ends");
        if event.event == "end" {
            assert_eq!(event.data, "completed");
            break;
        }
        seen.push(event.id.unwrap().parse().unwrap());
    }
    assert!(second.next().await.is_none(), "the stream ends after `end`");
    assert_eq!(seen, (1..=35).collect::<Vec<i64>>(), "every line once, in order");

    // `after` starts later; a finished execution's stream ends at once.
    let mut tail = SseReader::open(&app, &format!("{path}?after=33"), &ada.token, None).await;
    let ids: Vec<Option<String>> = [tail.next().await.unwrap(), tail.next().await.unwrap()].map(|e| e.id).into();
    assert_eq!(ids, [Some("34".to_string()), Some("35".to_string())]);
    assert_eq!(tail.next().await.unwrap().event, "end");

    let (status, body) = app.get(&path, Some(&eve.token)).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    let response = app
        .request(reqwest::Method::GET, &path, Some(&ada.token))
        .header("Last-Event-ID", "soon")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_log_past_its_cap_is_refused_and_marked_truncated_once() {
    let app = TestApp::spawn().await;
    let admin = app.admin("root@example.com").await;
    let ada = app.register("ada@example.com").await;
    let p = project(&app, &ada, "demo").await;
    set(&app, &admin, "agents.max_log_bytes", json!(1024)).await;
    let t = task(&app, &ada, json!({"project_id": p, "title": "chatty"})).await;
    let x = id(&start(&app, &ada, &id(&t)).await);
    append(&app, &ada, &x, &["a".repeat(1000)]).await;
    for _ in 0..2 {
        let (status, body) = app
            .post(
                &format!("/api/executions/{x}/logs"),
                Some(&ada.token),
                json!({"lines": [{"message": "b".repeat(100)}]}),
            )
            .await;
        assert_problem(status, &body, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(body["detail"].as_str().unwrap().contains("1024 bytes"), "{body}");
    }
    let (_, execution) = app.get(&format!("/api/executions/{x}"), Some(&ada.token)).await;
    assert_eq!((execution["log_truncated"].clone(), execution["log_bytes"].clone()), (json!(true), json!(1000)));
    let (_, logs) = app.get(&format!("/api/executions/{x}/logs"), Some(&ada.token)).await;
    let lines = logs["items"].as_array().unwrap();
    assert_eq!(lines.len(), 2, "one line says so, once: {logs}");
    assert_eq!(lines[1]["level"], "warn");
    assert!(lines[1]["message"].as_str().unwrap().starts_with("log truncated"));
    // Smaller lines still fit under the cap.
    append(&app, &ada, &x, &["c".repeat(24)]).await;
}

/// An agent's API key claims for its own agent type and is the actor of
/// what it does: in the audit trail and on the executions it starts.
#[tokio::test]
async fn an_agent_key_claims_for_its_type_and_is_the_actor() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let p = project(&app, &ada, "demo").await;
    let (status, key) = app
        .post(
            "/api/api-keys",
            Some(&ada.token),
            json!({"name": "runner", "scopes": ["write"], "kind": "agent", "agent_type": "codegen"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    assert_eq!((key["kind"].clone(), key["agent_type"].clone()), (json!("agent"), json!("codegen")));
    let agent = Session { token: key["key"].as_str().unwrap().to_string(), ..ada.clone() };
    for (body, field) in [
        (json!({"name": "x", "kind": "agent"}), "agent_type"),
        (json!({"name": "x", "kind": "agent", "agent_type": "Not Valid"}), "agent_type"),
        (json!({"name": "x", "agent_type": "codegen"}), "agent_type"),
        (json!({"name": "x", "kind": "robot"}), "kind"),
    ] {
        let (status, problem) = app.post("/api/api-keys", Some(&ada.token), body.clone()).await;
        assert_problem(status, &problem, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(fields(&problem), [field], "{body}");
    }
    let (_, mine) = app.post("/api/api-keys", Some(&ada.token), json!({"name": "mine"})).await;
    assert_eq!((mine["kind"].clone(), mine["agent_type"].clone()), (json!("user"), Value::Null));

    task(&app, &ada, json!({"project_id": p, "title": "for anyone"})).await;
    let (status, body) = app.post("/api/tasks/claim", Some(&agent.token), json!({"agent_type": "claude-code"})).await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["agent_type"]);
    let (status, claimed) = app.post("/api/tasks/claim", Some(&agent.token), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{claimed}");
    let x = &claimed["execution"];
    assert_eq!(x["agent_type"], "codegen");
    let actor = format!("agent:codegen user:{} apikey:{}", ada.user_id, id(&key));
    assert_eq!(x["started_by"], actor.as_str());
    let (status, _) = app.post(&format!("/api/executions/{}/complete", id(x)), Some(&agent.token), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let client = app.db.client().await;
    let actors: Vec<String> = column(
        &client,
        "SELECT DISTINCT actor FROM devx.audit_logs WHERE entity_type = 'devx.task_executions' AND entity_id = $1",
        &[&id(x)],
    )
    .await;
    assert_eq!(actors, [actor]);
    // A person's claim names the person.
    task(&app, &ada, json!({"project_id": p, "title": "another"})).await;
    let (_, claimed) = claim(&app, &ada, "claude-code").await;
    assert_eq!(claimed["execution"]["started_by"], format!("user:{}", ada.user_id).as_str());
}

/// The CI system sets a validation's status with the overall summary it
/// reports; a pending or running one can be cancelled, a finished one not
/// (409 saying so); illegal moves are 409s naming the allowed ones; both
/// writes are in the audit trail under the caller.
#[tokio::test]
async fn pr_validations_are_cancelled_and_their_status_set_by_the_ci_system() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let bob = app.register("bob@example.com").await;
    let t = Some(ada.token.as_str());
    let new = async || {
        let (status, v) = app.post("/api/pr-validations", t, json!({"repository": "acme/shop", "pr_number": 5})).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        id(&v)
    };
    let put = async |v: &str, body: Value| {
        app.call(reqwest::Method::PUT, &format!("/api/pr-validations/{v}/status"), t, Some(body)).await
    };

    // pending -> running -> passed, with the summary the design's updateStatus records.
    let v = new().await;
    let (status, body) = put(&v, json!({"status": "running"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "running");
    assert!(body["summary"].is_null());
    let summary = json!({"overall_score": 95, "checks_passed": 5, "checks_failed": 0});
    let (status, body) = put(&v, json!({"status": "passed", "summary": summary})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "passed");
    assert_eq!(body["summary"], summary);
    assert_eq!(body["validation_results"], json!({}), "the per-check results are apart from the summary");
    let (_, read) = app.get(&format!("/api/pr-validations/{v}"), t).await;
    assert_eq!(read["summary"], summary);
    // The same status again is no change; another move from a final one is a 409.
    let (status, _) = put(&v, json!({"status": "passed"})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = put(&v, json!({"status": "failed"})).await;
    let problem = assert_problem(status, &body, StatusCode::CONFLICT);
    assert!(problem["detail"].as_str().unwrap().contains("passed, which is final"), "{problem}");
    assert_eq!(fields(&body), ["status"]);
    // A finished validation cannot be cancelled.
    let (status, body) = app.post(&format!("/api/pr-validations/{v}/cancel"), t, json!({})).await;
    let problem = assert_problem(status, &body, StatusCode::CONFLICT);
    assert!(problem["detail"].as_str().unwrap().contains("is passed, which is final"), "{problem}");
    let (_, read) = app.get(&format!("/api/pr-validations/{v}"), t).await;
    assert_eq!(read["status"], "passed", "a refused cancel changes nothing");

    // pending cannot be set (it is where a validation starts), and a bad summary is a 422 naming it.
    let w = new().await;
    let (status, body) = put(&w, json!({"status": "pending"})).await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, body) = put(&w, json!({"status": "failed", "summary": "red"})).await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    // pending -> failed directly, then running is a 409 naming the status.
    let (status, body) = put(&w, json!({"status": "failed", "summary": {"checks_failed": 1}})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = put(&w, json!({"status": "running"})).await;
    let problem = assert_problem(status, &body, StatusCode::CONFLICT);
    assert!(problem["detail"].as_str().unwrap().contains("failed"), "{problem}");

    // Cancelling a pending one and a running one; cancelling again is a 409;
    // a cancelled one takes no status either.
    let pending = new().await;
    let (status, body) = app.post(&format!("/api/pr-validations/{pending}/cancel"), t, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "cancelled");
    let running = new().await;
    put(&running, json!({"status": "running"})).await;
    let (status, body) = app.post(&format!("/api/pr-validations/{running}/cancel"), t, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "cancelled");
    let (status, body) = app.post(&format!("/api/pr-validations/{running}/cancel"), t, json!({})).await;
    let problem = assert_problem(status, &body, StatusCode::CONFLICT);
    assert!(problem["detail"].as_str().unwrap().contains("cancelled, which is final"), "{problem}");
    let (status, body) = put(&running, json!({"status": "passed"})).await;
    assert_problem(status, &body, StatusCode::CONFLICT);

    // Someone else's validation is missing to them, for both routes, and unchanged.
    let other = new().await;
    let (status, body) = app.post(&format!("/api/pr-validations/{other}/cancel"), Some(&bob.token), json!({})).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = app
        .call(
            reqwest::Method::PUT,
            &format!("/api/pr-validations/{other}/status"),
            Some(&bob.token),
            Some(json!({"status": "failed"})),
        )
        .await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    let (_, read) = app.get(&format!("/api/pr-validations/{other}"), t).await;
    assert_eq!(read["status"], "pending");

    // Both writes are audited under ada.
    let client = app.db.client().await;
    let trail: Vec<String> = column(
        &client,
        "SELECT new_values ->> 'status' FROM devx.audit_logs
          WHERE entity_type = 'devx.pr_validations' AND entity_id = $1 AND action = 'update'
            AND actor = $2 ORDER BY id",
        &[&running, &format!("user:{}", ada.user_id)],
    )
    .await;
    assert_eq!(trail, ["running", "cancelled"]);
    let summaries: Vec<Option<String>> = column(
        &client,
        "SELECT new_values ->> 'summary' FROM devx.audit_logs
          WHERE entity_type = 'devx.pr_validations' AND entity_id = $1 AND action = 'update' ORDER BY id",
        &[&v],
    )
    .await;
    assert_eq!(summaries.len(), 2, "running, then passed with its summary: {summaries:?}");
    assert!(summaries[1].as_deref().unwrap().contains("overall_score"));
}

/// `GET /api/tasks?active=true` answers the rows of the `devx.active_tasks`
/// view, in the list's order: open tasks only, none of a deleted project.
#[tokio::test]
async fn active_tasks_are_the_rows_of_the_active_tasks_view() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let admin = app.admin("root@example.com").await;
    let p = project(&app, &ada, "demo").await;
    let gone = project(&app, &ada, "gone").await;
    let mut open = Vec::new();
    for (i, priority) in [3, 7, 3, 0].into_iter().enumerate() {
        open.push(
            id(&task(&app, &ada, json!({"project_id": p, "title": format!("t{i}"), "priority": priority})).await),
        );
    }
    let running = id(&task(&app, &ada, json!({"project_id": p, "title": "running", "priority": 5})).await);
    start(&app, &ada, &running).await;
    let done = id(&task(&app, &ada, json!({"project_id": p, "title": "done"})).await);
    let x = start(&app, &ada, &done).await;
    app.post(&format!("/api/executions/{}/complete", id(&x)), Some(&ada.token), json!({})).await;
    let cancelled = id(&task(&app, &ada, json!({"project_id": p, "title": "cancelled"})).await);
    app.post(&format!("/api/tasks/{cancelled}/cancel"), Some(&ada.token), json!({})).await;
    let orphan = id(&task(&app, &ada, json!({"project_id": gone, "title": "orphan"})).await);
    let client = app.db.client().await;
    client.execute("UPDATE devx.projects SET status = 'deleted' WHERE id = $1::text::uuid", &[&gone]).await.unwrap();

    let view: Vec<String> =
        column(&client, "SELECT id::text FROM devx.active_tasks ORDER BY priority DESC, created_at, id", &[]).await;
    let (status, page) = app.get("/api/tasks?active=true", Some(&admin.token)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(ids(&page), view, "the route's rows are the view's rows, in order");
    assert_eq!(view.len(), 5);
    assert!(view.contains(&running) && open.iter().all(|t| view.contains(t)));
    assert!(!view.contains(&orphan), "a deleted project's task is in neither");
    assert!(!view.contains(&done) && !view.contains(&cancelled));
    assert_eq!(view[0], open[1], "highest priority first");
    // The owner sees the same rows; the view's row for a task is the task as the API answers it.
    let (_, mine) = app.get("/api/tasks?active=true", Some(&ada.token)).await;
    assert_eq!(ids(&mine), view);
    let (_, one) = app.get(&format!("/api/tasks/{running}"), Some(&ada.token)).await;
    let listed = mine["items"].as_array().unwrap().iter().find(|t| t["id"] == running.as_str()).unwrap();
    for field in ["status", "attempt", "assigned_to", "assigned_to_email", "run_after", "updated_at"] {
        assert_eq!(listed[field], one[field], "{field}");
    }
    // Filters combine with it; active=false is the rest.
    let (_, high) = app.get("/api/tasks?active=true&priority_min=5", Some(&ada.token)).await;
    assert_eq!(ids(&high), [open[1].clone(), running.clone()]);
    let (_, rest) = app.get("/api/tasks?active=false", Some(&ada.token)).await;
    let mut rest = ids(&rest);
    rest.sort();
    let mut expected = vec![done, cancelled];
    expected.sort();
    assert_eq!(rest, expected);
    let (_, paged) = app.get("/api/tasks?active=true&limit=2", Some(&ada.token)).await;
    let (_, next) = app
        .get(
            &format!("/api/tasks?active=true&limit=2&cursor={}", paged["next_cursor"].as_str().unwrap()),
            Some(&ada.token),
        )
        .await;
    assert_eq!([ids(&paged), ids(&next)].concat(), view[..4]);
}

/// Wherever a request names a person (a task's `assigned_to`, at create,
/// update and as a filter), the answer gives both the user id and the
/// email; an email no account has stays a 404 naming the field.
#[tokio::test]
async fn a_task_answers_its_assignee_s_id_and_email() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let admin = app.admin("root@example.com").await;
    let bob = app.register("bob@example.com").await;
    let p = project(&app, &ada, "demo").await;

    let t = task(&app, &ada, json!({"project_id": p, "title": "mine", "assigned_to": "ADA@Example.com"})).await;
    assert_eq!(t["assigned_to"], ada.user_id.as_str());
    assert_eq!(t["assigned_to_email"], "ada@example.com");
    let unassigned = task(&app, &ada, json!({"project_id": p, "title": "nobody's"})).await;
    assert!(unassigned["assigned_to"].is_null() && unassigned["assigned_to_email"].is_null());

    // An admin assigns it to bob by id: the answer names him by email too.
    let (status, body) =
        app.patch(&format!("/api/tasks/{}", id(&t)), Some(&admin.token), json!({"assigned_to": bob.user_id})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["assigned_to"], bob.user_id.as_str());
    assert_eq!(body["assigned_to_email"], "bob@example.com");
    let (_, read) = app.get(&format!("/api/tasks/{}", id(&t)), Some(&ada.token)).await;
    assert_eq!(read["assigned_to_email"], "bob@example.com");
    let (_, list) = app.get("/api/tasks?assigned_to=bob@example.com", Some(&ada.token)).await;
    assert_eq!(ids(&list), [id(&t)]);
    assert_eq!(list["items"][0]["assigned_to_email"], "bob@example.com");
    let (status, body) =
        app.patch(&format!("/api/tasks/{}", id(&t)), Some(&ada.token), json!({"assigned_to": null})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["assigned_to"].is_null() && body["assigned_to_email"].is_null());

    // A claim assigns the claimer, and says who by email as well.
    let (_, claimed) = claim(&app, &ada, "claude-code").await;
    assert_eq!(claimed["task"]["assigned_to"], ada.user_id.as_str());
    assert_eq!(claimed["task"]["assigned_to_email"], "ada@example.com");

    // An unknown email: a 422 naming the field.
    let (status, body) = app
        .post(
            "/api/tasks",
            Some(&ada.token),
            json!({"project_id": p, "title": "x", "assigned_to": "nobody@example.com"}),
        )
        .await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["assigned_to"]);
}

/// Queues an execution (`"status": "pending"`) on a task; returns it.
async fn queue(app: &TestApp, who: &Session, task_id: &str, agent_type: &str) -> Value {
    let (status, x) = app
        .post(
            &format!("/api/tasks/{task_id}/executions"),
            Some(&who.token),
            json!({"agent_type": agent_type, "status": "pending", "agent_config": {"model": agent_type}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "queue execution: {x}");
    x
}

/// An execution created `pending` is queued: no start, no lease, its task
/// left pending; `POST /api/executions/{id}/start` starts it as a claim
/// would (running, a lease, one more attempt, the task in progress).
#[tokio::test]
async fn a_queued_execution_holds_no_lease_until_it_is_started() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let bob = app.register("bob@example.com").await;
    let p = project(&app, &ada, "demo").await;
    let t = task(&app, &ada, json!({"project_id": p, "title": "queued", "lease_seconds": 120})).await;

    let x = queue(&app, &ada, &id(&t), "codegen").await;
    assert_eq!(x["status"], "pending");
    assert!(x["started_at"].is_null() && x["lease_expires_at"].is_null() && x["started_by"].is_null(), "{x}");
    assert_eq!(x["attempt"], 1, "the attempt it will be");
    let (_, read) = app.get(&format!("/api/tasks/{}", id(&t)), Some(&ada.token)).await;
    assert_eq!(read["status"], "pending", "queuing leaves the task as it is");
    assert_eq!(read["attempt"], 0);
    assert_eq!(read["latest_execution"]["id"], id(&x));
    // One open execution per task: a second, queued or running, is a 409.
    for status in ["pending", "running"] {
        let (code, body) = app
            .post(
                &format!("/api/tasks/{}/executions", id(&t)),
                Some(&ada.token),
                json!({"agent_type": "codegen", "status": status}),
            )
            .await;
        let problem = assert_problem(code, &body, StatusCode::CONFLICT);
        assert!(problem["detail"].as_str().unwrap().contains(&id(&x)), "{problem}");
    }
    let (code, body) = app
        .post(
            &format!("/api/tasks/{}/executions", id(&t)),
            Some(&ada.token),
            json!({"agent_type": "codegen", "status": "done"}),
        )
        .await;
    assert_problem(code, &body, StatusCode::UNPROCESSABLE_ENTITY);
    // Not running yet: no heartbeat, no completion.
    let (code, body) = app.post(&format!("/api/executions/{}/heartbeat", id(&x)), Some(&ada.token), json!({})).await;
    assert_problem(code, &body, StatusCode::CONFLICT);
    let (code, body) = app.post(&format!("/api/executions/{}/complete", id(&x)), Some(&ada.token), json!({})).await;
    assert_problem(code, &body, StatusCode::CONFLICT);
    // Someone else's is missing to them.
    let (code, body) = app.post(&format!("/api/executions/{}/start", id(&x)), Some(&bob.token), json!({})).await;
    assert_problem(code, &body, StatusCode::NOT_FOUND);

    let (code, started) = app.post(&format!("/api/executions/{}/start", id(&x)), Some(&ada.token), json!({})).await;
    assert_eq!(code, StatusCode::OK, "{started}");
    assert_eq!(started["id"], id(&x));
    assert_eq!(started["status"], "running");
    assert_eq!(started["attempt"], 1);
    assert_eq!(started["lease_seconds"], 120);
    assert_eq!(started["agent_config"], json!({"model": "codegen"}));
    assert_eq!(started["started_by"], format!("user:{}", ada.user_id));
    let lease = time(&started["lease_expires_at"]) - time(&started["started_at"]);
    assert_eq!(lease.num_seconds(), 120, "the task's lease, as a claim gives");
    let (_, read) = app.get(&format!("/api/tasks/{}", id(&t)), Some(&ada.token)).await;
    assert_eq!(read["status"], "in_progress");
    assert_eq!(read["attempt"], 1);
    assert_eq!(read["assigned_to"], ada.user_id.as_str());
    let (code, body) = app.post(&format!("/api/executions/{}/start", id(&x)), Some(&ada.token), json!({})).await;
    let problem = assert_problem(code, &body, StatusCode::CONFLICT);
    assert!(problem["detail"].as_str().unwrap().contains("running"), "{problem}");
    let (code, _) = app.post(&format!("/api/executions/{}/heartbeat", id(&x)), Some(&ada.token), json!({})).await;
    assert_eq!(code, StatusCode::OK);
    let (code, done) = app.post(&format!("/api/executions/{}/complete", id(&x)), Some(&ada.token), json!({})).await;
    assert_eq!(code, StatusCode::OK, "{done}");
    assert_eq!(done["task"]["status"], "completed");

    // Cancelling a task cancels its queued execution, which then cannot start.
    let t2 = task(&app, &ada, json!({"project_id": p, "title": "dropped"})).await;
    let x2 = queue(&app, &ada, &id(&t2), "codegen").await;
    let (_, cancelled) = app.post(&format!("/api/tasks/{}/cancel", id(&t2)), Some(&ada.token), json!({})).await;
    assert_eq!(cancelled["cancelled_executions"], json!([id(&x2)]));
    let (code, body) = app.post(&format!("/api/executions/{}/start", id(&x2)), Some(&ada.token), json!({})).await;
    let problem = assert_problem(code, &body, StatusCode::CONFLICT);
    assert!(problem["detail"].as_str().unwrap().contains("cancelled"), "{problem}");
}

/// A claim runs the task's queued execution rather than starting a second
/// one, leaves a task queued for another agent type to that type, and the
/// limits count running executions only, queued ones not.
#[tokio::test]
async fn a_claim_runs_the_queued_execution_and_the_limits_still_hold() {
    let app = TestApp::spawn().await;
    let admin = app.admin("root@example.com").await;
    let ada = app.register("ada@example.com").await;
    let p = project(&app, &ada, "demo").await;
    set(&app, &admin, "agents.max_concurrent_executions", json!(1)).await;
    let a = task(&app, &ada, json!({"project_id": p, "title": "for codegen", "priority": 9})).await;
    let b = task(&app, &ada, json!({"project_id": p, "title": "for claude", "priority": 1})).await;
    let xa = queue(&app, &ada, &id(&a), "codegen").await;
    let xb = queue(&app, &ada, &id(&b), "claude-code").await;

    // Two queued executions do not count against a limit of one.
    let (status, claimed) = claim(&app, &ada, "claude-code").await;
    assert_eq!(status, StatusCode::OK, "{claimed}");
    assert_eq!(claimed["task"]["id"], id(&b), "the higher-priority task is queued for codegen");
    assert_eq!(claimed["execution"]["id"], id(&xb), "the queued execution runs");
    assert_eq!(claimed["execution"]["status"], "running");
    assert_eq!(claimed["execution"]["agent_config"], json!({"model": "claude-code"}));
    assert_eq!(claimed["execution"]["attempt"], 1);
    assert!(claimed["execution"]["lease_expires_at"].is_string());
    let (_, runs) = app.get(&format!("/api/tasks/{}/executions", id(&b)), Some(&ada.token)).await;
    assert_eq!(ids(&runs), [id(&xb)], "no second execution");
    // One running: the limit holds for the codegen claimer too.
    let (status, _) = claim(&app, &ada, "codegen").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    app.post(&format!("/api/executions/{}/complete", id(&xb)), Some(&ada.token), json!({})).await;
    // The claude-code claimer does not take codegen's queued task.
    let (status, _) = claim(&app, &ada, "claude-code").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, claimed) = claim(&app, &ada, "codegen").await;
    assert_eq!(status, StatusCode::OK, "{claimed}");
    assert_eq!(claimed["task"]["id"], id(&a));
    assert_eq!(claimed["execution"]["id"], id(&xa));
    let client = app.db.client().await;
    let executions: i64 =
        one(&client, "SELECT count(*) FROM devx.task_executions WHERE task_id = $1::text::uuid", &[&id(&a)]).await;
    assert_eq!(executions, 1);
    let running: i64 = one(&client, "SELECT count(*) FROM devx.task_executions WHERE status = 'running'", &[]).await;
    assert_eq!(running, 1);
}
