//! {{PROJECT_NAME}}: {{DESCRIPTION}}.
//!
//! Routes:
//!   GET    /health       liveness check
//!   GET    /notes        all notes, oldest first
//!   POST   /notes        create a note: {"title": "...", "body": "..."}
//!   GET    /notes/{id}   one note
//!   DELETE /notes/{id}   delete a note

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::RwLock;
use tower_http::trace::TraceLayer;
use tracing_subscriber::EnvFilter;
use uuid::Uuid;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
struct Note {
    id: Uuid,
    title: String,
    body: String,
    /// Insertion order, so lists are stable.
    seq: u64,
}

#[derive(Debug, Deserialize)]
struct NewNote {
    title: String,
    #[serde(default)]
    body: String,
}

#[derive(Default)]
struct Notes {
    by_id: HashMap<Uuid, Note>,
    next_seq: u64,
}

#[derive(Clone, Default)]
struct AppState {
    notes: Arc<RwLock<Notes>>,
}

/// An error answered as `{"error": "..."}` with a status code.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({
        "status": "ok",
        "service": env!("CARGO_PKG_NAME"),
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

async fn list_notes(State(state): State<AppState>) -> Json<Vec<Note>> {
    let notes = state.notes.read().await;
    let mut all: Vec<Note> = notes.by_id.values().cloned().collect();
    all.sort_by_key(|n| n.seq);
    Json(all)
}

async fn create_note(
    State(state): State<AppState>,
    Json(input): Json<NewNote>,
) -> Result<(StatusCode, Json<Note>), ApiError> {
    let title = input.title.trim();
    if title.is_empty() || title.chars().count() > 200 {
        return Err(ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            "title must have 1 to 200 characters".into(),
        ));
    }
    let mut notes = state.notes.write().await;
    notes.next_seq += 1;
    let note = Note {
        id: Uuid::new_v4(),
        title: title.to_string(),
        body: input.body,
        seq: notes.next_seq,
    };
    notes.by_id.insert(note.id, note.clone());
    Ok((StatusCode::CREATED, Json(note)))
}

async fn get_note(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<Json<Note>, ApiError> {
    let notes = state.notes.read().await;
    notes
        .by_id
        .get(&id)
        .cloned()
        .map(Json)
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("note {id} not found")))
}

async fn delete_note(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    match state.notes.write().await.by_id.remove(&id) {
        Some(_) => Ok(StatusCode::NO_CONTENT),
        None => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("note {id} not found"),
        )),
    }
}

fn app(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/notes", get(list_notes).post(create_note))
        .route("/notes/{id}", get(get_note).delete(delete_note))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Resolves on Ctrl-C, or on SIGTERM (what Docker and Kubernetes send).
async fn shutdown_signal() {
    let ctrl_c = async {
        tokio::signal::ctrl_c()
            .await
            .expect("failed to listen for Ctrl-C");
    };

    #[cfg(unix)]
    let terminate = async {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("failed to listen for SIGTERM")
            .recv()
            .await;
    };

    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();

    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received, draining connections");
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,tower_http=debug")),
        )
        .init();

    let port: u16 = match std::env::var("PORT") {
        Ok(p) => p
            .parse()
            .map_err(|_| format!("PORT must be a port number, got {p:?}"))?,
        Err(_) => {{PORT}},
    };
    let host: std::net::IpAddr = std::env::var("HOST")
        .unwrap_or_else(|_| "0.0.0.0".into())
        .parse()?;
    let addr = SocketAddr::new(host, port);

    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app(AppState::default()))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn send(
        app: &Router,
        method: &str,
        uri: &str,
        body: Option<serde_json::Value>,
    ) -> (StatusCode, serde_json::Value) {
        let mut req = Request::builder().method(method).uri(uri);
        let body = match body {
            Some(v) => {
                req = req.header("content-type", "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        let res = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let json = if bytes.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (status, json)
    }

    #[tokio::test]
    async fn health_is_ok() {
        let app = app(AppState::default());
        let (status, body) = send(&app, "GET", "/health", None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "ok");
    }

    #[tokio::test]
    async fn notes_round_trip() {
        let app = app(AppState::default());
        let (status, created) = send(
            &app,
            "POST",
            "/notes",
            Some(json!({"title": "hello", "body": "world"})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
        let id = created["id"].as_str().unwrap().to_string();

        let (status, fetched) = send(&app, "GET", &format!("/notes/{id}"), None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(fetched, created);

        let (_, list) = send(&app, "GET", "/notes", None).await;
        assert_eq!(list.as_array().unwrap().len(), 1);

        let (status, _) = send(&app, "DELETE", &format!("/notes/{id}"), None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = send(&app, "GET", &format!("/notes/{id}"), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn empty_title_is_rejected() {
        let app = app(AppState::default());
        let (status, body) = send(&app, "POST", "/notes", Some(json!({"title": "  "}))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(body["error"].is_string());
    }
}
