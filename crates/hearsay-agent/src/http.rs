//! The agent's HTTP API: GET /members, POST /broadcast (the body is the
//! payload), GET /messages (one payload per line; `?timestamps=true`: JSON
//! with the delivery times), GET /events (membership changes with their
//! times), GET /health, GET
//! /metrics (Prometheus text), GET /keys and POST /keys/install, /keys/use,
//! /keys/remove (the body is a base64 key) for this agent's keyring, and
//! GET /cluster/keys, POST /cluster/keys/install|use|remove for every live
//! member's (a JSON report of who did it).

use crate::{Agent, Key, KeyOp};
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
        .route("/events", get(events))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/kv", get(kv_list))
        .route(
            "/kv/{key}",
            get(kv_get).put(kv_set).post(kv_set).delete(kv_del),
        )
        .route("/test/cut", post(cut))
        .route("/keys", get(keys))
        .route("/keys/{op}", post(keys_change))
        .route("/cluster/keys", get(cluster_keys))
        .route("/cluster/keys/{op}", post(cluster_keys_change))
        .with_state(agent)
}

/// 200 "ok" once joined (or with nothing to join); 503 with the reason
/// while the seeds have not answered.
async fn health(State(a): State<Arc<Agent>>) -> Response {
    match a.join_problem() {
        None => "ok\n".into_response(),
        Some(p) => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            format!("{p}\n"),
        )
            .into_response(),
    }
}

async fn members(State(a): State<Arc<Agent>>) -> Response {
    axum::Json(a.members()).into_response()
}

/// Membership changes seen: `[{"t": unix_us, "name": .., "change": ..}]`.
async fn events(State(a): State<Arc<Agent>>) -> Response {
    let v: Vec<serde_json::Value> = a
        .timed_events()
        .into_iter()
        .map(|(t, e)| serde_json::json!({"t": t, "name": e.name, "change": e.change}))
        .collect();
    axum::Json(v).into_response()
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

#[derive(serde::Deserialize)]
struct MessagesQuery {
    /// JSON `[{"t": unix_us, "v": text}]` instead of lines.
    #[serde(default)]
    timestamps: bool,
}

async fn messages(
    State(a): State<Arc<Agent>>,
    axum::extract::Query(q): axum::extract::Query<MessagesQuery>,
) -> Response {
    if q.timestamps {
        let v: Vec<serde_json::Value> = a
            .timed_messages()
            .into_iter()
            .map(|(t, m)| serde_json::json!({"t": t, "v": String::from_utf8_lossy(&m)}))
            .collect();
        return axum::Json(v).into_response();
    }
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

async fn keys(State(a): State<Arc<Agent>>) -> Response {
    let keys = a.keys();
    axum::Json(serde_json::json!({"primary": keys.first(), "keys": keys})).into_response()
}

/// The keyring change a POST names (`install`, `use`, `remove`, with the
/// base64 key as the body), or the status and text to answer with.
fn key_op(op: &str, body: &[u8]) -> Result<KeyOp, (StatusCode, String)> {
    let key: Key = std::str::from_utf8(body)
        .map_err(|e| e.to_string())
        .and_then(str::parse)
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("{e}\n")))?;
    match op {
        "install" => Ok(KeyOp::Install(key)),
        "use" => Ok(KeyOp::Use(key)),
        "remove" => Ok(KeyOp::Remove(key)),
        other => Err((
            StatusCode::NOT_FOUND,
            format!("no key operation {other:?}: install, use or remove\n"),
        )),
    }
}

async fn keys_change(
    State(a): State<Arc<Agent>>,
    axum::extract::Path(op): axum::extract::Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let op = match key_op(&op, &body) {
        Ok(op) => op,
        Err(r) => return r.into_response(),
    };
    match a.keys_change(op).await {
        Ok(()) => "ok\n".into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    }
}

/// Every live member's keys (a report: who answered with what).
async fn cluster_keys(State(a): State<Arc<Agent>>) -> Response {
    cluster_report(a.keys_change_cluster(None).await)
}

/// A keyring change on every live member; the report says who did it
/// (`complete` when everyone did).
async fn cluster_keys_change(
    State(a): State<Arc<Agent>>,
    axum::extract::Path(op): axum::extract::Path<String>,
    body: axum::body::Bytes,
) -> Response {
    match key_op(&op, &body) {
        Ok(op) => cluster_report(a.keys_change_cluster(Some(op)).await),
        Err(r) => r.into_response(),
    }
}

fn cluster_report(r: Result<crate::KeyReport, String>) -> Response {
    match r {
        Ok(report) => axum::Json(report).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    }
}

async fn kv_list(State(a): State<Arc<Agent>>) -> Response {
    axum::Json(a.kv()).into_response()
}

async fn kv_get(
    State(a): State<Arc<Agent>>,
    axum::extract::Path(key): axum::extract::Path<String>,
) -> Response {
    match a.kv().remove(&key) {
        Some(v) => v.into_response(),
        None => (StatusCode::NOT_FOUND, format!("no key {key:?}\n")).into_response(),
    }
}

async fn kv_set(
    State(a): State<Arc<Agent>>,
    axum::extract::Path(key): axum::extract::Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let Ok(value) = String::from_utf8(body.to_vec()) else {
        return (StatusCode::BAD_REQUEST, "a value must be UTF-8 text\n").into_response();
    };
    kv_answer(a.kv_set(key, value).await)
}

async fn kv_del(
    State(a): State<Arc<Agent>>,
    axum::extract::Path(key): axum::extract::Path<String>,
) -> Response {
    kv_answer(a.kv_delete(key).await)
}

fn kv_answer(r: Result<(), String>) -> Response {
    match r {
        Ok(()) => "ok\n".into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    }
}

/// Tests only: the body lists gossip addresses (one per line) to drop
/// traffic with; empty heals. Refused unless the agent runs with
/// `--test-faults`.
async fn cut(State(a): State<Arc<Agent>>, body: axum::body::Bytes) -> Response {
    let text = String::from_utf8_lossy(&body);
    let addrs: Result<Vec<std::net::SocketAddr>, _> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::parse)
        .collect();
    let Ok(addrs) = addrs else {
        return (StatusCode::BAD_REQUEST, "one address per line\n").into_response();
    };
    match a.cut(addrs).await {
        Ok(()) => "ok\n".into_response(),
        Err(e) => (StatusCode::FORBIDDEN, format!("{e}\n")).into_response(),
    }
}
