//! The agent's HTTP API: GET /members, POST /broadcast (the body is the
//! payload), GET /messages (one payload per line), GET /health, GET
//! /metrics (Prometheus text).

use crate::Agent;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::sync::Arc;

pub fn router(agent: Arc<Agent>) -> Router {
    Router::new()
        .route("/members", get(members))
        .route("/broadcast", post(broadcast))
        .route("/messages", get(messages))
        .route("/health", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .with_state(agent)
}

async fn members(State(a): State<Arc<Agent>>) -> Response {
    axum::Json(a.members()).into_response()
}

async fn metrics(State(a): State<Arc<Agent>>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        a.metrics(),
    )
        .into_response()
}

async fn messages(State(a): State<Arc<Agent>>) -> Response {
    let mut text = String::new();
    for m in a.messages() {
        text += &String::from_utf8_lossy(&m);
        text.push('\n');
    }
    text.into_response()
}

async fn broadcast(State(a): State<Arc<Agent>>, body: axum::body::Bytes) -> Response {
    match a.broadcast(body.to_vec()).await {
        Ok(()) => (StatusCode::ACCEPTED, "accepted\n").into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    }
}
