//! Client commands that talk to a running agent's HTTP API:
//! `hearsay members`, `hearsay broadcast VALUE`, `hearsay read`.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Target {
    /// The agent's HTTP API
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8946")]
    http: std::net::SocketAddr,
    /// Print JSON instead of lines
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct MembersArgs {
    #[command(flatten)]
    target: Target,
}

#[derive(Debug, clap::Args)]
pub struct BroadcastArgs {
    /// The payload (UTF-8 text)
    value: String,
    #[command(flatten)]
    target: Target,
}

#[derive(Debug, clap::Args)]
pub struct ReadArgs {
    #[command(flatten)]
    target: Target,
}

fn fail(cmd: &str, t: &Target, e: impl std::fmt::Display) -> ExitCode {
    eprintln!("hearsay {cmd}: cannot reach the agent at {}: {e}", t.http);
    ExitCode::FAILURE
}

fn get(t: &Target, path: &str) -> Result<String, ureq::Error> {
    ureq::get(format!("http://{}{path}", t.http))
        .call()?
        .body_mut()
        .read_to_string()
}

pub fn members(a: MembersArgs) -> ExitCode {
    let t = &a.target;
    let body = match get(t, "/members") {
        Ok(b) => b,
        Err(e) => return fail("members", t, e),
    };
    if t.json {
        println!("{body}");
        return ExitCode::SUCCESS;
    }
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let s = |m: &serde_json::Value, k: &str| m[k].as_str().unwrap_or("-").to_string();
    for m in v.as_array().into_iter().flatten() {
        println!(
            "{:<16} {:<22} {:<8} {:<8} {}",
            s(m, "name"),
            s(m, "addr"),
            s(m, "zone"),
            s(m, "state"),
            s(m, "incarnation")
        );
    }
    ExitCode::SUCCESS
}

pub fn broadcast(a: BroadcastArgs) -> ExitCode {
    let t = &a.target;
    match ureq::post(format!("http://{}/broadcast", t.http)).send(a.value.as_bytes()) {
        Ok(_) => {
            if t.json {
                println!("{}", serde_json::json!({"accepted": true}));
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail("broadcast", t, e),
    }
}

pub fn read(a: ReadArgs) -> ExitCode {
    let t = &a.target;
    match get(t, "/messages") {
        Ok(body) if t.json => {
            let lines: Vec<&str> = body.lines().collect();
            println!("{}", serde_json::json!(lines));
            ExitCode::SUCCESS
        }
        Ok(body) => {
            print!("{body}");
            ExitCode::SUCCESS
        }
        Err(e) => fail("read", t, e),
    }
}
