//! `hearsay agent` end to end: real processes on loopback (port 0, no
//! fixed sleeps: readiness and convergence by polling the HTTP API, every
//! wait bounded), every process killed and reaped at the end.

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct AgentProc {
    child: Child,
    gossip: String,
    http: String,
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(name: &str, cluster: &str, join: Option<&str>) -> AgentProc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hearsay"));
    cmd.args(["agent", "--name", name, "--cluster", cluster])
        .args(["--bind", "127.0.0.1:0", "--http", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(j) = join {
        cmd.args(["--join", j]);
    }
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    // "... gossip on ADDR, http on http://ADDR/"
    let gossip = line
        .split("gossip on ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .unwrap_or_else(|| panic!("no gossip address in {line:?}"))
        .to_string();
    let http = line
        .split("http://")
        .nth(1)
        .map(|r| r.trim().trim_end_matches('/').to_string())
        .unwrap_or_else(|| panic!("no http address in {line:?}"));
    AgentProc {
        child,
        gossip,
        http,
    }
}

/// A minimal HTTP/1.1 exchange (Connection: close); the body of the answer.
fn http(addr: &str, method: &str, path: &str, body: &str) -> String {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    if s.write_all(req.as_bytes()).is_err() {
        return String::new();
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split("\r\n\r\n").nth(1).unwrap_or_default().to_string()
}

fn states(a: &AgentProc) -> Vec<(String, String)> {
    let v: Value =
        serde_json::from_str(&http(&a.http, "GET", "/members", "")).unwrap_or(Value::Null);
    v.as_array()
        .map(|ms| {
            ms.iter()
                .map(|m| {
                    (
                        m["name"].as_str().unwrap_or_default().to_string(),
                        m["state"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn until(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) -> Duration {
    let t = Instant::now();
    while !ok() {
        assert!(t.elapsed() < limit, "timed out after {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
    t.elapsed()
}

#[test]
fn agents_form_a_cluster_spread_a_broadcast_and_see_a_killed_member_dead() {
    let first = start("a0", "c1", None);
    let mut agents = vec![];
    for i in 1..5 {
        agents.push(start(&format!("a{i}"), "c1", Some(&first.gossip)));
    }
    agents.insert(0, first);
    let alive =
        |a: &AgentProc, n: usize| states(a).iter().filter(|(_, s)| s == "alive").count() == n;
    until("every agent lists 5 alive", Duration::from_secs(20), || {
        agents.iter().all(|a| alive(a, 5))
    });
    // An agent of another cluster joining through a0 is refused.
    let stranger = start("x", "other", Some(&agents[0].gossip));
    // The client commands are users of the same API.
    let cli = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_hearsay"))
            .args(args)
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    };
    let (code, out) = cli(&["members", "--http", &agents[1].http]);
    assert_eq!(code, Some(0));
    assert_eq!(
        out.lines().filter(|l| l.contains(" alive ")).count(),
        5,
        "{out}"
    );
    let (code, _) = cli(&["broadcast", "hello from a2", "--http", &agents[2].http]);
    assert_eq!(code, Some(0));
    until(
        "every agent delivered the payload",
        Duration::from_secs(10),
        || {
            agents.iter().all(|a| {
                http(&a.http, "GET", "/messages", "")
                    .lines()
                    .any(|l| l == "hello from a2")
            })
        },
    );
    assert!(
        states(&agents[0]).iter().all(|(n, _)| n != "x"),
        "the other cluster's agent must not be listed"
    );
    // Another cluster's datagrams were refused and counted.
    let refused = |m: &str| -> u64 {
        m.lines()
            .find_map(|l| l.strip_prefix("hearsay_datagrams_refused_total "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    until(
        "a0 counts the stranger's datagrams",
        Duration::from_secs(10),
        || refused(&http(&agents[0].http, "GET", "/metrics", "")) > 0,
    );
    let m = http(&agents[0].http, "GET", "/metrics", "");
    assert!(m.contains("hearsay_members{state=\"alive\"} 5"), "{m}");
    assert!(m.contains("hearsay_delivered_total 1"), "{m}");
    drop(stranger);
    let (code, out) = cli(&["read", "--http", &agents[3].http, "--json"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("hello from a2"), "{out}");
    let (code, _) = cli(&["members", "--http", "127.0.0.1:1"]);
    assert_eq!(code, Some(1), "no agent there");
    // kill -9 one: the others see it dead within the lan preset's bound.
    let victim = agents.remove(4);
    drop(victim);
    let took = until("a4 is dead everywhere", Duration::from_secs(15), || {
        agents
            .iter()
            .all(|a| states(a).iter().any(|(n, s)| n == "a4" && s == "dead"))
    });
    eprintln!("a4 seen dead by all after {took:?}");
    assert!(took < Duration::from_secs(15));
}
