//! The AI app builder's container-keyed design, walked through devx: a
//! container made before any project, a project living in it, chat read per
//! container and conversation, the container's lifecycle with its times, its
//! sample data in SQL (mapped: the owner column is `owner_id`), and its two
//! views as it writes them.

use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::app::TestApp;
use crate::support::{all_pages, column, id, one};

#[tokio::test]
async fn containers_come_first_and_chat_is_read_by_container_and_session() {
    let app = TestApp::spawn().await;
    let user = app.register("test@example.com").await;
    let token = Some(user.token.as_str());

    // A container exists before any project (status `created` by default).
    let (status, container) = app
        .post(
            "/api/containers",
            token,
            json!({"container_id": "test-container-123", "name": "Test Project", "image_name": "node:20",
                   "assigned_port": 3001, "url": "http://localhost:3001", "labels": {"app": "builder"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{container}");
    assert_eq!((container["status"].as_str(), container["project_id"].as_str()), (Some("created"), None));
    let container_id = id(&container);

    // A project that lives in it (type defaults as devx's do; the design's is `nextjs`).
    let (status, project) = app
        .post("/api/projects", token, json!({"name": "Test Project", "type": "nextjs", "container_id": container_id}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{project}");
    assert_eq!(project["container_id"], container_id.as_str());
    let project_id = id(&project);

    // Chat: two conversations in the container.
    for (session, role, content) in
        [("s-1", "user", "Build me a todo app"), ("s-1", "assistant", "Here it is"), ("s-2", "user", "Another idea")]
    {
        let (status, body) = app
            .post(
                &format!("/api/projects/{project_id}/messages"),
                token,
                json!({"container_id": container_id, "session_id": session, "role": role, "content": content,
                       "attachments": [], "metadata": {}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let conversation =
        all_pages(&app, &user.token, &format!("/api/containers/{container_id}/messages?session_id=s-1")).await;
    let roles: Vec<&str> = conversation.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "assistant"], "oldest first");
    let everything = all_pages(&app, &user.token, &format!("/api/containers/{container_id}/messages")).await;
    assert_eq!(everything.len(), 3);

    // Lifecycle: started_at and stopped_at are kept.
    let (status, running) = app.post(&format!("/api/containers/{container_id}/start"), token, json!({})).await;
    assert_eq!((status, running["status"].as_str()), (StatusCode::OK, Some("running")), "{running}");
    assert!(running["started_at"].is_string());

    // The design's SQL, in a session of its own.
    let sql = app.db.client().await;
    let owner: Uuid = user.user_id.parse().unwrap();
    // Sample data, mapped: the owner is `owner_id`.
    let sample: Uuid = one(
        &sql,
        "INSERT INTO containers (container_id, name, status, owner_id)
         VALUES ('sample-container-456', 'Sample', 'created', (SELECT id FROM users WHERE email = 'test@example.com'))
         RETURNING id",
        &[],
    )
    .await;
    // active_containers: created and running ones, with the project living
    // in each and the owner's email, newest first.
    let active: Vec<(String, Option<String>, String)> = sql
        .query("SELECT container_id, project_name, user_email FROM active_containers WHERE user_id = $1", &[&owner])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        active,
        [
            ("sample-container-456".to_string(), None, "test@example.com".to_string()),
            ("test-container-123".to_string(), Some("Test Project".to_string()), "test@example.com".to_string()),
        ]
    );
    // user_projects: the project with its container's status, port, url and message count.
    let row = sql
        .query_one(
            "SELECT container_status, assigned_port, url, message_count FROM user_projects WHERE id = $1",
            &[&project_id.parse::<Uuid>().unwrap()],
        )
        .await
        .unwrap();
    let (status, port, url, messages): (String, Option<i32>, Option<String>, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    assert_eq!(
        (status.as_str(), port, url.as_deref(), messages),
        ("running", Some(3001), Some("http://localhost:3001"), 3)
    );
    // The API lists what SQL inserted: its owner sees both containers.
    let (_, listed) = app.get("/api/containers?active=true", token).await;
    let ids: Vec<String> = listed["items"].as_array().unwrap().iter().map(id).collect();
    assert!(ids.contains(&sample.to_string()) && ids.contains(&container_id), "{listed}");

    // A deleted container leaves the active list; the project stays.
    let (status, _) = app.post(&format!("/api/containers/{container_id}/delete"), token, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let active: Vec<String> =
        column(&sql, "SELECT container_id FROM active_containers WHERE user_id = $1", &[&owner]).await;
    assert_eq!(active, ["sample-container-456"]);
    let still: Vec<String> =
        column(&sql, "SELECT name FROM projects WHERE id = $1", &[&project_id.parse::<Uuid>().unwrap()]).await;
    assert_eq!(still, ["Test Project"]);
}
