//! The agent's HTTP API: GET /members, POST /broadcast (the body is the
//! payload), GET /messages (one payload per line; `?timestamps=true`: JSON
//! with the delivery times), GET /events (membership changes with their
//! times), GET /health, GET
//! /metrics (Prometheus text), GET /keys and POST /keys/install, /keys/use,
//! /keys/remove (the body is a base64 key) for this agent's keyring, and
//! GET /cluster/keys, POST /cluster/keys/install|use|remove for every live
//! member's (a JSON report of who did it); GET /tags (this agent's, a JSON
//! object) and POST /tags (`{"set": {"role": "web"}, "delete": ["old"]}`);
//! POST /join (`{"addrs": ["HOST:PORT", ...], "timeout_ms": 10000}`: joins
//! through the first that answers, `{"joined": NAME}`) and POST /leave
//! (leaves gracefully; whoever runs the agent then stops it); POST
//! /force-leave/NAME (a failed member recorded as left everywhere); GET
//! /monitor?level=info (the agent's log lines and membership events as they
//! happen, one per line, until the client goes); GET
//! /reachability?timeout_ms=2000 (every member probed directly, the silent
//! ones through others, and over TCP: a JSON list with a verdict each).
//!
//! With a token in the [`ApiConfig`], every call but `/health` (and
//! `/metrics` when it is public) needs `Authorization: Bearer TOKEN`, and is
//! answered 401 without it ([`auth`]).

pub mod auth;
pub mod tls;

use crate::{Agent, Key, KeyOp};
pub use auth::{ApiConfig, ApiError, TOKEN_ENV, Token, TokenError, TokenSource};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::sync::Arc;

/// The API over `agent`, guarded as `api` says. Check `api` with
/// [`ApiConfig::validate`] against the address before serving it.
pub fn router(agent: Arc<Agent>, api: ApiConfig) -> Router {
    let guard = Arc::new(auth::Guard::new(api));
    let metrics_guard = guard.clone();
    let routes = Router::new()
        .route("/members", get(members))
        .route("/info", get(info))
        .route("/broadcast", post(broadcast))
        .route("/messages", get(messages))
        .route("/events", get(events))
        .route("/event/{name}", post(user_event))
        .route("/user-events", get(user_events))
        .route("/health", get(health))
        .route("/join", post(join))
        .route("/leave", post(leave))
        .route("/force-leave/{name}", post(force_leave))
        .route("/monitor", get(monitor))
        .route("/query", post(query))
        .route("/reachability", get(reachability))
        .route(
            "/metrics",
            get(move |s: State<Arc<Agent>>| metrics(s, metrics_guard)),
        )
        .route("/kv", get(kv_list))
        .route(
            "/kv/{key}",
            get(kv_get).put(kv_set).post(kv_set).delete(kv_del),
        )
        .route("/test/cut", post(cut))
        .route("/tags", get(tags).post(tags_change))
        .route("/keys", get(keys))
        .route("/keys/{op}", post(keys_change))
        .route("/cluster/keys", get(cluster_keys))
        .route("/cluster/keys/{op}", post(cluster_keys_change))
        .with_state(agent);
    if guard.cfg.token.is_none() {
        return routes;
    }
    // On the whole router, the fallback included: an unknown path is 401
    // too, so what exists is not told to a caller without the token.
    routes.layer(axum::middleware::from_fn_with_state(guard, auth::check))
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

async fn info(State(a): State<Arc<Agent>>) -> Response {
    axum::Json(a.info()).into_response()
}

async fn members(State(a): State<Arc<Agent>>) -> Response {
    axum::Json(a.members()).into_response()
}

/// Membership changes seen: `[{"t": unix_us, "name": .., "change": ..,
/// "epoch": .., "by": ..}]` (`by`: the accuser of a suspicion or death).
async fn events(State(a): State<Arc<Agent>>) -> Response {
    let v: Vec<serde_json::Value> = a
        .timed_events()
        .into_iter()
        .map(|(t, e)| {
            serde_json::json!({"t": t, "name": e.name, "change": e.change, "epoch": e.epoch, "by": e.by})
        })
        .collect();
    axum::Json(v).into_response()
}

/// Sends a user event named in the path, the body its payload
/// (`?coalesce=true`: handlers may run once for a burst): `{"lamport": n}`.
#[derive(serde::Deserialize)]
struct EventQuery {
    /// Handlers may run once for a burst of these (`?coalesce=true`).
    #[serde(default)]
    coalesce: bool,
}

async fn user_event(
    State(a): State<Arc<Agent>>,
    axum::extract::Path(name): axum::extract::Path<String>,
    axum::extract::Query(q): axum::extract::Query<EventQuery>,
    body: axum::body::Bytes,
) -> Response {
    match a.event(name, body.to_vec(), q.coalesce).await {
        Ok(lamport) => (
            StatusCode::ACCEPTED,
            axum::Json(serde_json::json!({ "lamport": lamport })),
        )
            .into_response(),
        Err(e) => refused(e),
    }
}

/// A send the agent refused: 503 with Retry-After for back-pressure
/// (neighbours are behind; the client retries), else 400.
fn refused(e: crate::Error) -> Response {
    if matches!(e, crate::Error::Busy(_)) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(axum::http::header::RETRY_AFTER, "1")],
            format!("{e}\n"),
        )
            .into_response();
    }
    (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response()
}

/// User events delivered here: `[{"t": unix_us, "name", "payload",
/// "origin", "lamport"}]`, oldest first.
async fn user_events(State(a): State<Arc<Agent>>) -> Response {
    let v: Vec<serde_json::Value> = a
        .user_events()
        .into_iter()
        .map(|(t, e)| {
            serde_json::json!({"t": t, "name": e.name, "payload": String::from_utf8_lossy(&e.payload), "origin": e.origin, "lamport": e.lamport})
        })
        .collect();
    axum::Json(v).into_response()
}

async fn metrics(State(a): State<Arc<Agent>>, guard: Arc<auth::Guard>) -> Response {
    let mut text = a.metrics();
    let refused = guard.refused.load(std::sync::atomic::Ordering::Relaxed);
    text +=
        "# HELP hearsay_http_unauthorized_total HTTP calls refused for a missing or wrong token.\n";
    text += "# TYPE hearsay_http_unauthorized_total counter\n";
    text += &format!("hearsay_http_unauthorized_total {refused}\n");
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        text,
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
        Err(e) => refused(e),
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

fn cluster_report(r: Result<crate::KeyReport, crate::Error>) -> Response {
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

async fn tags(State(a): State<Arc<Agent>>) -> Response {
    axum::Json(a.tags()).into_response()
}

/// Sets and deletes tags of this agent; answers with the tags now.
/// What POST /join takes.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct JoinBody {
    addrs: Vec<String>,
    #[serde(default)]
    timeout_ms: Option<u64>,
}

/// The longest a join may be given.
const MAX_JOIN_MS: u64 = 600_000;

/// Joins through the addresses given (host names resolved here, to every
/// address they name); 200 with the member joined through, 400 for a bad
/// request, 504 when nobody answered in time (and why).
async fn join(State(a): State<Arc<Agent>>, body: axum::body::Bytes) -> Response {
    let req: JoinBody = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!(
                    "the body is {{\"addrs\": [\"HOST:PORT\", ...], \"timeout_ms\": N}}: {e}\n"
                ),
            )
                .into_response();
        }
    };
    let timeout = req.timeout_ms.unwrap_or(10_000);
    if timeout == 0 || timeout > MAX_JOIN_MS {
        return (
            StatusCode::BAD_REQUEST,
            format!("timeout_ms must be 1 to {MAX_JOIN_MS}, not {timeout}\n"),
        )
            .into_response();
    }
    let mut addrs = Vec::new();
    for name in &req.addrs {
        match tokio::net::lookup_host(name.as_str()).await {
            Ok(found) => addrs.extend(found),
            Err(e) => {
                return (
                    StatusCode::BAD_REQUEST,
                    format!("cannot resolve {name:?} (HOST:PORT): {e}\n"),
                )
                    .into_response();
            }
        }
    }
    match a
        .join(addrs, std::time::Duration::from_millis(timeout))
        .await
    {
        Ok(name) => axum::Json(serde_json::json!({"joined": name})).into_response(),
        Err(e) => (StatusCode::GATEWAY_TIMEOUT, format!("{e}\n")).into_response(),
    }
}

#[derive(serde::Deserialize)]
struct ReachQuery {
    #[serde(default)]
    timeout_ms: Option<u64>,
}

/// Every member probed (see [`Agent::reachability`]), each with a verdict.
async fn reachability(
    State(a): State<Arc<Agent>>,
    axum::extract::Query(q): axum::extract::Query<ReachQuery>,
) -> Response {
    let ms = q.timeout_ms.unwrap_or(2_000);
    if !(100..=60_000).contains(&ms) {
        return (
            StatusCode::BAD_REQUEST,
            format!("timeout_ms must be 100 to 60000, not {ms}\n"),
        )
            .into_response();
    }
    match a.reachability(std::time::Duration::from_millis(ms)).await {
        Ok(found) => {
            let v: Vec<serde_json::Value> = found
                .iter()
                .map(|r| {
                    let mut j = serde_json::to_value(r).unwrap_or_default();
                    j["verdict"] = r.verdict().into();
                    j
                })
                .collect();
            axum::Json(v).into_response()
        }
        Err(e) => refused(e),
    }
}

/// A query as POST /query takes it.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryBody {
    name: String,
    #[serde(default)]
    payload: String,
    #[serde(default)]
    nodes: Vec<String>,
    #[serde(default)]
    tags: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    timeout_ms: Option<u64>,
}

/// Asks a query and streams what comes back, a JSON object per line:
/// `{"type":"ack","from","answers"}`, `{"type":"answer","from","payload"}`,
/// `{"type":"failed","from","error"}`, and last `{"type":"done",
/// "asked",...}`. Closing the connection ends the query.
async fn query(State(a): State<Arc<Agent>>, body: axum::body::Bytes) -> Response {
    let b: QueryBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!(
                    "the body is {{\"name\": \"NAME\", \"payload\": \"...\", \"nodes\": [...], \"tags\": {{\"KEY\": \"RE\"}}, \"timeout_ms\": N}}: {e}\n"
                ),
            )
                .into_response();
        }
    };
    let req = crate::query::Request {
        name: b.name,
        payload: b.payload.into_bytes(),
        nodes: b.nodes,
        tags: b.tags,
        timeout: std::time::Duration::from_millis(b.timeout_ms.unwrap_or(0)),
    };
    let rx = match a.query(req).await {
        Ok(rx) => rx,
        Err(e) => return refused(e),
    };
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        let u = rx.recv().await?;
        let line = serde_json::to_string(&u).unwrap_or_default() + "\n";
        Some((Ok::<_, std::convert::Infallible>(line), rx))
    });
    (
        [(axum::http::header::CONTENT_TYPE, "application/x-ndjson")],
        axum::body::Body::from_stream(stream),
    )
        .into_response()
}

#[derive(serde::Deserialize)]
struct MonitorQuery {
    #[serde(default)]
    level: Option<String>,
}

/// Log lines at or above the level (default info) and membership events,
/// streamed as they happen: `TIME LEVEL text`, `TIME EVENT member-join
/// NAME`. Ends when the client goes or the agent stops.
async fn monitor(
    State(a): State<Arc<Agent>>,
    axum::extract::Query(q): axum::extract::Query<MonitorQuery>,
) -> Response {
    let level = match q.level.as_deref().map(crate::monitor::parse_level) {
        None => tracing::Level::INFO,
        Some(Ok(l)) => l,
        Some(Err(e)) => return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    };
    let logs = crate::monitor::subscribe();
    let head = if logs.is_some() {
        format!(
            "monitoring {} (log lines at {level} and above, membership events)\n",
            a.name()
        )
    } else {
        format!(
            "monitoring {} (membership events; this process does not capture its log)\n",
            a.name()
        )
    };
    let state = (Some(head), logs, a.events());
    let stream = futures_util::stream::unfold(
        state,
        move |(head, mut logs, mut events)| async move {
            if let Some(h) = head {
                return Some((Ok::<_, std::convert::Infallible>(h), (None, logs, events)));
            }
            use tokio::sync::broadcast::error::RecvError;
            loop {
                let line = tokio::select! {
                    l = async {
                        match logs.as_mut() {
                            Some(r) => r.recv().await,
                            None => std::future::pending().await,
                        }
                    } => match l {
                        Ok(l) if l.level <= level => format!("{} {:<5} {}\n", now(), l.level, l.text),
                        Ok(_) => continue,
                        Err(RecvError::Lagged(n)) => format!("{} (missed {n} log lines: too slow)\n", now()),
                        Err(RecvError::Closed) => return None,
                    },
                    e = events.recv() => match e {
                        // Serf's names where handlers have one (member-join...),
                        // else the change itself (suspect, alive).
                        Ok(e) => format!(
                            "{} EVENT {} {}\n",
                            now(),
                            crate::handlers::Kind::of_change(e.change).map_or(e.change.as_str(), |k| k.name()),
                            e.name
                        ),
                        Err(RecvError::Lagged(n)) => format!("{} (missed {n} events: too slow)\n", now()),
                        Err(RecvError::Closed) => return None,
                    },
                };
                return Some((Ok(line), (None, logs, events)));
            }
        },
    );
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; charset=utf-8",
        )],
        axum::body::Body::from_stream(stream),
    )
        .into_response()
}

/// Wall-clock time for monitor lines (UTC, to the millisecond).
fn now() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let (s, ms) = (d.as_secs(), d.subsec_millis());
    let (h, m, sec) = ((s / 3600) % 24, (s / 60) % 60, s % 60);
    format!("{h:02}:{m:02}:{sec:02}.{ms:03}")
}

/// Records a failed member as left (409 with why for one that is alive,
/// unknown, gone, or this agent).
async fn force_leave(
    State(a): State<Arc<Agent>>,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Response {
    match a.force_leave(name).await {
        Ok(()) => "ok\n".into_response(),
        Err(e) => (StatusCode::CONFLICT, format!("{e}\n")).into_response(),
    }
}

/// Leaves the cluster gracefully; answers once the leave has spread.
async fn leave(State(a): State<Arc<Agent>>) -> Response {
    a.leave().await;
    "left\n".into_response()
}

async fn tags_change(State(a): State<Arc<Agent>>, body: axum::body::Bytes) -> Response {
    let change: crate::TagsChange = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!(
                    "the body is {{\"set\": {{\"KEY\": \"VALUE\"}}, \"delete\": [\"KEY\"]}}: {e}\n"
                ),
            )
                .into_response();
        }
    };
    match a.set_tags(change).await {
        Ok(()) => axum::Json(a.tags()).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    }
}

fn kv_answer(r: Result<(), crate::Error>) -> Response {
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, header};
    use tower::ServiceExt;

    async fn call(r: &Router, path: &str, bearer: Option<&str>) -> (StatusCode, String) {
        let mut req = Request::builder().uri(path);
        if let Some(t) = bearer {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let resp = r
            .clone()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let challenge = resp.headers().get(header::WWW_AUTHENTICATE).cloned();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        if status == StatusCode::UNAUTHORIZED {
            assert!(challenge.is_some_and(|c| c.as_bytes().starts_with(b"Bearer ")));
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert!(v["error"].is_string(), "{v}");
        }
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn a_token_closes_every_route_but_health_and_public_metrics() {
        let mut cfg = crate::AgentConfig::new("a");
        cfg.bind = "127.0.0.1:0".parse().unwrap();
        let agent = Arc::new(Agent::start(cfg).await.unwrap());
        let open = router(agent.clone(), ApiConfig::default());
        assert_eq!(call(&open, "/members", None).await.0, StatusCode::OK);
        let api = |metrics_public| ApiConfig {
            token: Some(Token::new("t0ken").unwrap()),
            metrics_public,
            insecure: false,
        };
        let closed = router(agent.clone(), api(false));
        for path in [
            "/members",
            "/kv",
            "/keys",
            "/messages",
            "/metrics",
            "/nowhere",
        ] {
            let (s, _) = call(&closed, path, None).await;
            assert_eq!(s, StatusCode::UNAUTHORIZED, "{path}");
            let (s, _) = call(&closed, path, Some("t0ken!")).await;
            assert_eq!(s, StatusCode::UNAUTHORIZED, "{path}");
        }
        assert_eq!(
            call(&closed, "/members", Some("t0ken")).await.0,
            StatusCode::OK
        );
        assert_eq!(call(&closed, "/health", None).await.0, StatusCode::OK);
        let (s, m) = call(&closed, "/metrics", Some("t0ken")).await;
        assert_eq!(s, StatusCode::OK);
        assert!(m.contains("hearsay_http_unauthorized_total 12\n"), "{m}");
        let public = router(agent, api(true));
        assert_eq!(call(&public, "/metrics", None).await.0, StatusCode::OK);
        assert_eq!(
            call(&public, "/members", None).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
}
