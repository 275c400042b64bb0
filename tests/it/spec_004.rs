//! The AI CI/CD system, walked through devx as its team uses it: a task
//! assigned by email and found by assignee and status, an execution queued
//! and started, its logs, its completion; a PR validation with a check
//! result and the CI's overall status and summary; an error logged, retried
//! and resolved; the design's views read in SQL; the audit trail of it all.

use reqwest::{Method, StatusCode};
use serde_json::json;
use uuid::Uuid;

use crate::app::TestApp;
use crate::support::{all_pages, column, count, id, one, project};

#[tokio::test]
async fn a_task_runs_from_assignment_to_a_validated_pull_request() {
    let app = TestApp::spawn().await;
    // Assigning to someone else takes an administrator (a user may assign
    // only themselves: a task is seen by its project's owner).
    let lead = app.admin("lead@example.com").await;
    let developer = app.register("developer@example.com").await;
    let token = Some(lead.token.as_str());
    let project_id = project(&app, &lead, "ci").await;

    // Task.create({ title, description, requirements, priority, assigned_to: 'developer@example.com' }).
    let (status, task) = app
        .post(
            "/api/tasks",
            token,
            json!({"project_id": project_id, "title": "Implement new feature", "description": "Add user authentication",
                   "requirements": {"auth": "oauth2", "provider": "github"}, "priority": 5,
                   "assigned_to": "developer@example.com"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{task}");
    assert_eq!(
        (task["assigned_to"].as_str(), task["assigned_to_email"].as_str()),
        (Some(developer.user_id.as_str()), Some("developer@example.com"))
    );
    let task_id = id(&task);

    // Task.findBy({ status: 'pending', assigned_to: 'developer@example.com' }, { orderBy: 'priority DESC' }).
    let found = all_pages(&app, &lead.token, "/api/tasks?status=pending&assigned_to=developer@example.com").await;
    assert_eq!(found.iter().map(id).collect::<Vec<_>>(), vec![task_id.clone()]);
    // SELECT * FROM active_tasks WHERE priority >= 5, and the route that reads it.
    let active = all_pages(&app, &lead.token, "/api/tasks?active=true").await;
    assert_eq!(active.len(), 1);
    let sql = app.db.client().await;
    let high: Vec<Uuid> = column(&sql, "SELECT id FROM active_tasks WHERE priority >= $1", &[&5i32]).await;
    assert_eq!(high, [task_id.parse::<Uuid>().unwrap()]);

    // TaskExecution.create({ task_id, agent_type: 'claude-code', agent_config }) then start().
    let (status, execution) = app
        .post(
            &format!("/api/tasks/{task_id}/executions"),
            token,
            json!({"agent_type": "claude-code", "agent_config": {"model": "claude-3-sonnet", "temperature": 0.1}, "status": "pending"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{execution}");
    assert_eq!(execution["status"], "pending", "queued, as the design creates it");
    let execution_id = id(&execution);
    let (status, started) = app.post(&format!("/api/executions/{execution_id}/start"), token, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{started}");
    assert_eq!(started["status"], "running");
    assert!(started["lease_expires_at"].is_string());
    let (_, read) = app.get(&format!("/api/tasks/{task_id}"), token).await;
    assert_eq!(read["status"], "in_progress", "task.status = 'in_progress'");

    // addLog(...), then complete() with its last lines.
    let logs = format!("/api/executions/{execution_id}/logs");
    for line in [
        json!({"level": "info", "message": "Starting code generation", "time": "2026-12-05T10:00:00Z"}),
        json!({"level": "info", "message": "Code generation completed successfully"}),
    ] {
        let (status, body) = app.post(&logs, token, json!({"lines": [line]})).await;
        assert!(status.is_success(), "{body}");
    }
    let (status, done) = app.post(&format!("/api/executions/{execution_id}/complete"), token, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(
        (done["execution"]["status"].as_str(), done["task"]["status"].as_str()),
        (Some("completed"), Some("completed"))
    );
    let (_, tail) = app.get(&logs, token).await;
    let messages: Vec<&str> =
        tail["items"].as_array().unwrap().iter().map(|l| l["message"].as_str().unwrap()).collect();
    assert_eq!(messages, ["Starting code generation", "Code generation completed successfully"]);

    // PRValidation.create({ task_id, execution_id, pr_number: 123, repository: 'owner/repo', branch_name }).
    let (status, validation) = app
        .post(
            "/api/pr-validations",
            token,
            json!({"task_id": task_id, "execution_id": execution_id, "pr_number": 123,
                   "repository": "owner/repo", "branch_name": "feature/new-auth"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{validation}");
    let validation_id = id(&validation);
    // addValidationResult('tests', { status: 'passed', details: { passed: 15, failed: 0, skipped: 2 } }).
    let (status, body) = app
        .patch(
            &format!("/api/pr-validations/{validation_id}/checks/tests"),
            token,
            json!({"status": "passed", "details": {"passed": 15, "failed": 0, "skipped": 2}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["validation_results"]["tests"]["details"]["passed"], 15);
    // updateStatus('passed', { overall_score: 95, checks_passed: 5, checks_failed: 0 }).
    let summary = json!({"overall_score": 95, "checks_passed": 5, "checks_failed": 0});
    let (status, body) = app
        .call(
            Method::PUT,
            &format!("/api/pr-validations/{validation_id}/status"),
            token,
            Some(json!({"status": "passed", "summary": summary})),
        )
        .await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("passed")), "{body}");
    assert_eq!(body["summary"], summary);
    // A validation of another pull request is cancelled when it is closed.
    let (_, other) =
        app.post("/api/pr-validations", token, json!({"repository": "owner/repo", "pr_number": 124})).await;
    let (status, cancelled) = app.post(&format!("/api/pr-validations/{}/cancel", id(&other)), token, json!({})).await;
    assert_eq!((status, cancelled["status"].as_str()), (StatusCode::OK, Some("cancelled")));

    // An error logged, three recovery attempts, the last one succeeds.
    let (status, error) = app
        .post(
            "/api/errors",
            token,
            json!({"error_type": "network", "message": "GitHub API timed out", "stack": "at fetch()",
                   "context": {"endpoint": "/repos/owner/repo/pulls"}, "task_id": task_id, "execution_id": execution_id}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{error}");
    let recover = format!("/api/errors/{}/recovery-attempt", id(&error));
    for outcome in ["failed", "failed", "succeeded"] {
        let (status, body) = app.post(&recover, token, json!({"outcome": outcome})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (_, error) = app.get(&format!("/api/errors/{}", id(&error)), token).await;
    assert_eq!((error["recovery_attempts"].as_i64(), error["resolved"].as_bool()), (Some(3), Some(true)), "{error}");

    // The design's views, as it queries them.
    let runs: i64 =
        one(&sql, "SELECT sum(runs)::int8 FROM task_execution_summary WHERE agent_type = 'claude-code'", &[]).await;
    assert_eq!(runs, 1);
    assert!(count(&sql, "SELECT count(*) FROM pr_validation_summary WHERE repository = 'owner/repo'").await >= 1);
    assert!(count(&sql, "SELECT count(*) FROM error_summary WHERE error_type = 'network'").await >= 1);
    assert!(count(&sql, "SELECT count(*) FROM recent_activity").await > 0);

    // audit_logs: every change above, with who made it.
    let audited: Vec<String> = column(
        &sql,
        "SELECT DISTINCT entity_type FROM audit_logs WHERE actor = $1 ORDER BY 1",
        &[&format!("user:{}", lead.user_id)],
    )
    .await;
    for table in ["devx.error_logs", "devx.pr_validations", "devx.task_executions", "devx.tasks"] {
        assert!(audited.iter().any(|t| t == table), "{table} audited: {audited:?}");
    }
}
