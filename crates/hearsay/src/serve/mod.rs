//! `hearsay serve`: a web UI over a store directory. A table of runs, a
//! page per run (summary, every picture, the message diagram with filters,
//! history, node logs) and a page per bench sweep. Assets are embedded in
//! the binary; the pages load nothing from anywhere else.

mod pages;
mod store;

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  hearsay serve                                   # store/ on http://127.0.0.1:8080/
  hearsay serve --store /tmp/runs --bind 127.0.0.1:0

The first line printed is `listening on http://ADDR/` with the real address
(useful with port 0). It binds to loopback unless told otherwise: the pages
show node logs and histories.")]
pub struct ServeArgs {
    /// The store to show (what `hearsay test --store` and `bench --out` write)
    #[arg(long, value_name = "DIR", default_value = "store")]
    store: PathBuf,
    /// Address to listen on
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    bind: std::net::SocketAddr,
}

struct App {
    store: PathBuf,
}

type Shared = State<Arc<App>>;

fn not_found(what: &str) -> Response {
    (StatusCode::NOT_FOUND, format!("not found: {what}\n")).into_response()
}

async fn index(State(app): Shared) -> Html<String> {
    let runs = store::runs(&app.store);
    let sweeps = store::sweeps(&app.store);
    Html(pages::index(&runs, &sweeps, &app.store))
}

async fn api_runs(State(app): Shared) -> Response {
    axum::Json(store::runs(&app.store)).into_response()
}

async fn run_page(State(app): Shared, UrlPath((w, t)): UrlPath<(String, String)>) -> Response {
    let id = format!("{w}/{t}");
    match (store::run(&app.store, &id), store::resolve(&app.store, &id)) {
        (Some(r), Some(dir)) => Html(pages::run(&r, &dir)).into_response(),
        _ => not_found(&id),
    }
}

async fn sweep_page(State(app): Shared, UrlPath(t): UrlPath<String>) -> Response {
    match store::resolve(&app.store, &format!("bench/{t}")) {
        Some(dir) if dir.join("results.json").is_file() => {
            Html(pages::sweep(&t, &dir)).into_response()
        }
        _ => not_found(&t),
    }
}

fn content_type(path: &std::path::Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("svg") => "image/svg+xml",
        Some("html") => "text/html; charset=utf-8",
        Some("json") => "application/json",
        Some("csv") => "text/csv; charset=utf-8",
        Some("png") => "image/png",
        _ => "text/plain; charset=utf-8",
    }
}

async fn file(State(app): Shared, UrlPath(rel): UrlPath<String>) -> Response {
    let Some(p) = store::resolve(&app.store, &rel).filter(|p| p.is_file()) else {
        return not_found(&rel);
    };
    match tokio::fs::read(&p).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, content_type(&p))], bytes).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{rel}: {e}\n")).into_response(),
    }
}

async fn asset(UrlPath(name): UrlPath<String>) -> Response {
    let (body, ty) = match name.as_str() {
        "app.js" => (include_str!("assets/app.js"), "text/javascript"),
        "style.css" => (include_str!("assets/style.css"), "text/css"),
        _ => return not_found(&name),
    };
    ([(header::CONTENT_TYPE, ty)], body).into_response()
}

pub fn router(store: PathBuf) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/api/runs", get(api_runs))
        .route("/run/{workload}/{time}", get(run_page))
        .route("/bench/{time}", get(sweep_page))
        .route("/files/{*path}", get(file))
        .route("/assets/{name}", get(asset))
        .with_state(Arc::new(App { store }))
}

pub fn run(args: ServeArgs) -> ExitCode {
    if !args.store.is_dir() {
        eprintln!(
            "hearsay serve: --store {} is not a directory (run `hearsay test` first, or point --store at one)",
            args.store.display()
        );
        return ExitCode::from(crate::EXIT_BAD_ARGS);
    }
    let rt = match crate::runtime("serve") {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(args.bind).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("hearsay serve: cannot listen on {}: {e}", args.bind);
                return ExitCode::from(crate::EXIT_BAD_ARGS);
            }
        };
        let addr = listener.local_addr().map_or(args.bind, |a| a);
        outln!(
            "listening on http://{addr}/ (store: {})",
            args.store.display()
        );
        use std::io::Write;
        let _ = std::io::stdout().flush();
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        match axum::serve(listener, router(args.store))
            .with_graceful_shutdown(shutdown)
            .await
        {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("hearsay serve: {e}");
                ExitCode::from(crate::EXIT_CRASH)
            }
        }
    })
}
