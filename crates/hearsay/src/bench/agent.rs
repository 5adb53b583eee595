//! `hearsay bench agent`: hearsay agents and Serf agents side by side on
//! loopback, N of each in turn, measured the same way: join convergence,
//! broadcast delivery (a user event for Serf), failure detection after
//! kill -9, false positives, and packets and bytes per agent per second
//! idle and under load.
//!
//! Every agent records when things happen to it (hearsay: `/events` and
//! `/messages?timestamps=true`; Serf: an event handler script that appends
//! `date +%s%N` lines to a log), so the bench polls rarely and its polling
//! does not shape the figures. Traffic is counted by iptables counters on
//! loopback (both systems the same way, IP and UDP/TCP headers included):
//! what leaves each agent's port, plus TCP arriving at it (the opening side
//! of a connection sends from a port of its own); without iptables the
//! traffic columns stay empty.

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug, Args)]
#[command(
    after_help = "Needs the serf binary for the Serf side (Debian: apt-get install serf);
without it only hearsay runs and the table says so. Traffic counts need
iptables and root (a chain named HEARSAY_BENCH is added to OUTPUT for the run
and removed after)."
)]
pub struct AgentBenchArgs {
    /// Agent counts
    #[arg(long, value_delimiter = ',', default_value = "5,25,50", value_parser = crate::args::node_count)]
    pub nodes: Vec<usize>,
    /// Systems to run: hearsay, serf
    #[arg(long, value_delimiter = ',', default_value = "hearsay,serf")]
    pub systems: Vec<System>,
    /// Broadcasts (Serf: user events) per run
    #[arg(long, default_value_t = 100)]
    pub broadcasts: usize,
    /// Broadcasts per second
    #[arg(long, default_value_t = 10.0, value_parser = crate::args::rate)]
    pub rate: f64,
    /// Seconds of quiet for the idle traffic and false-positive count
    #[arg(long, default_value_t = 10.0, value_parser = crate::args::positive_secs)]
    pub idle: f64,
    /// Seconds between join convergence and the idle window, for the joins'
    /// own gossip to die down
    #[arg(long, default_value_t = 10.0, value_parser = crate::args::secs)]
    pub settle: f64,
    /// Agents killed with SIGKILL one after another, each timed until every
    /// remaining agent lists it dead (the figure is their median and max)
    #[arg(long, default_value_t = 3)]
    pub kills: usize,
    /// Tag changes, each on another agent, each timed until every other
    /// agent reports it (hearsay: an `updated` event; Serf: a member-update
    /// handler call)
    #[arg(long, default_value_t = 5)]
    pub tag_changes: usize,
    /// User events, from agents in turn at --rate, each timed until the
    /// handler of every agent has run for it (both systems run the same
    /// handler script: `--event-handler user=...` and Serf's
    /// `-event-handler`)
    #[arg(long, default_value_t = 20)]
    pub events: usize,
    /// User events per second: each runs a process per agent, and at
    /// --rate 50 agents on two cores spend the time forking (both systems
    /// alike), which is not what the figure is for
    #[arg(long, default_value_t = 2.0, value_parser = crate::args::rate)]
    pub event_rate: f64,
    /// Queries, from agents in turn, one at a time, each timed until every
    /// agent has acknowledged it and until every agent's handler has
    /// answered (the same script on both; hearsay: `POST /query`; Serf:
    /// `serf query`, its "Ack from" and "Response from" lines read as they
    /// come)
    #[arg(long, default_value_t = 10)]
    pub queries: usize,
    /// The serf binary
    #[arg(long, default_value = "serf")]
    pub serf: PathBuf,
    /// Do not count traffic (no iptables rules)
    #[arg(long)]
    pub no_traffic: bool,
    /// Where the results go (a timestamped directory inside, plus `latest`)
    #[arg(long, default_value = "store/bench-agent")]
    pub out: PathBuf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum System {
    Hearsay,
    Serf,
}

impl System {
    fn name(self) -> &'static str {
        match self {
            System::Hearsay => "hearsay",
            System::Serf => "serf",
        }
    }
}

/// Unix time in microseconds.
pub(super) fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// `k` ports free for both TCP and UDP on 127.0.0.1 (bound, then released).
pub(super) fn free_ports(k: usize) -> Result<Vec<u16>> {
    let mut held = Vec::new();
    let mut ports = Vec::new();
    for _ in 0..k * 20 {
        if ports.len() == k {
            break;
        }
        let t = TcpListener::bind("127.0.0.1:0")?;
        let p = t.local_addr()?.port();
        if let Ok(u) = UdpSocket::bind(("127.0.0.1", p)) {
            ports.push(p);
            held.push((t, u));
        }
    }
    if ports.len() < k {
        bail!("could not find {k} free ports");
    }
    Ok(ports)
}

/// One agent process, killed and reaped on drop.
struct Proc {
    name: String,
    api: u16,
    started_us: u64,
    child: Child,
    /// The handler's log.
    log: Option<PathBuf>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The handlers both systems run: one timestamps the events the agent sees
/// (Serf sets SERF_EVENT, hearsay HEARSAY_EVENT; the payload, or one line
/// per member, on standard input), in nanoseconds; the other answers
/// queries. On 2 cores, 50 handlers at once are bound by process starts,
/// so they start none they can avoid: bash's clock instead of a `date`
/// (where bash is installed), builtins instead of `cat`, the lighter `sh`
/// where no clock is needed. A `cat` and a `date` per query measured the
/// machine's fork rate, not the agents: a query answered by all 50 took
/// 115 ms median with them, 35 ms without.
fn handler_scripts(bash: bool) -> (String, String) {
    let (shell, now) = if bash {
        ("/bin/bash", "t=${EPOCHREALTIME/./}000")
    } else {
        ("/bin/sh", "t=$(date +%s%N)")
    };
    let events = format!(
        r#"#!{shell}
# hearsay bench agent: timestamps what this agent sees.
{now}
ev="${{SERF_EVENT:-$HEARSAY_EVENT}}"
case "$ev" in
  user) read -r p; echo "$t user $p" >> "$HS_LOG" ;;
  member-*) while read -r name rest; do echo "$t $ev $name" >> "$HS_LOG"; done ;;
esac
"#
    );
    let queries = "#!/bin/sh\n# hearsay bench agent: answers a query.\nwhile read -r _; do :; done\necho ok\n";
    (events, queries.into())
}

pub(super) fn wait_port(port: u16, limit: Duration) -> Result<()> {
    wait_addr(std::net::SocketAddr::from(([127, 0, 0, 1], port)), limit)
}

pub(super) fn wait_addr(addr: std::net::SocketAddr, limit: Duration) -> Result<()> {
    let t = Instant::now();
    while TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err() {
        if t.elapsed() > limit {
            bail!("nothing listens on {addr} after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

struct Ctx<'a> {
    args: &'a AgentBenchArgs,
    dir: &'a Path,
    hearsay: PathBuf,
}

fn spawn(ctx: &Ctx, sys: System, i: usize, ports: (u16, u16), join: Option<u16>) -> Result<Proc> {
    let name = format!("a{i}");
    let (gossip, api) = ports;
    let (handler, answer) = (ctx.dir.join("handler.sh"), ctx.dir.join("query.sh"));
    let l = ctx.dir.join(format!("{}-{name}.log", sys.name()));
    let _ = std::fs::remove_file(&l);
    let mut cmd = match sys {
        System::Hearsay => {
            let mut c = Command::new(&ctx.hearsay);
            // The bench calls its agents without a token.
            c.env_remove("HEARSAY_HTTP_TOKEN");
            c.args(["agent", "--name", &name, "--preset", "lan"])
                .args(["--bind", &format!("127.0.0.1:{gossip}")])
                .args(["--http", &format!("127.0.0.1:{api}")])
                // User events only: membership is read from /events.
                .arg(format!("--event-handler=user={}", handler.display()))
                .arg(format!("--event-handler=query={}", answer.display()))
                .env("HS_LOG", &l);
            if let Some(j) = join {
                c.args(["--join", &format!("127.0.0.1:{j}")]);
            }
            c
        }
        System::Serf => {
            let mut c = Command::new(&ctx.args.serf);
            c.arg("agent")
                .arg(format!("-node={name}"))
                .arg(format!("-bind=127.0.0.1:{gossip}"))
                .arg(format!("-rpc-addr=127.0.0.1:{api}"))
                .arg(format!(
                    "-event-handler=user,member-join,member-leave,member-failed,member-update,member-reap={}",
                    handler.display()
                ))
                .arg(format!("-event-handler=query={}", answer.display()))
                .args(["-profile=lan", "-log-level=err"])
                .env("HS_LOG", &l);
            if let Some(j) = join {
                c.arg(format!("-join=127.0.0.1:{j}"));
            }
            c
        }
    };
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let started_us = now_us();
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {} agent {name}", sys.name()))?;
    Ok(Proc {
        name,
        api,
        started_us,
        child,
        log: Some(l),
    })
}

/// What one agent saw, read at the end of a run.
#[derive(Default)]
struct Seen {
    /// (time us, member, change) with changes normalised to joined / dead / left.
    members: Vec<(u64, String, &'static str)>,
    /// payload -> first delivery time (us)
    delivered: HashMap<String, u64>,
    /// user event payload -> when the handler first ran for it (us)
    handled: HashMap<String, u64>,
}

fn http_get(port: u16, path: &str) -> Result<String> {
    Ok(ureq::get(format!("http://127.0.0.1:{port}{path}"))
        .call()?
        .body_mut()
        .read_to_string()?)
}

/// What `p` recorded; `deliveries: false` skips hearsay's /messages, for
/// the loops that only wait on membership.
fn seen(sys: System, p: &Proc, deliveries: bool) -> Seen {
    let mut s = Seen::default();
    match sys {
        System::Hearsay => {
            let ev: Value = http_get(p.api, "/events")
                .ok()
                .and_then(|b| serde_json::from_str(&b).ok())
                .unwrap_or_default();
            for e in ev.as_array().into_iter().flatten() {
                let change = match e["change"].as_str() {
                    Some("joined" | "alive") => "joined",
                    Some("updated") => "updated",
                    Some("dead") => "dead",
                    Some("left") => "left",
                    _ => continue,
                };
                let name = e["name"].as_str().unwrap_or_default().to_string();
                s.members.push((e["t"].as_u64().unwrap_or(0), name, change));
            }
            if deliveries {
                let ms: Value = http_get(p.api, "/messages?timestamps=true")
                    .ok()
                    .and_then(|b| serde_json::from_str(&b).ok())
                    .unwrap_or_default();
                for m in ms.as_array().into_iter().flatten() {
                    if let (Some(v), Some(t)) = (m["v"].as_str(), m["t"].as_u64()) {
                        s.delivered.entry(v.to_string()).or_insert(t);
                    }
                }
            }
        }
        System::Serf => {}
    }
    let text = p
        .log
        .as_ref()
        .and_then(|l| std::fs::read_to_string(l).ok())
        .unwrap_or_default();
    match sys {
        System::Hearsay => {
            for line in text.lines() {
                let mut w = line.splitn(3, ' ');
                if let (Some(t), Some("user"), Some(rest)) = (w.next(), w.next(), w.next())
                    && let Ok(t_ns) = t.parse::<u64>()
                {
                    s.handled
                        .entry(rest.trim().to_string())
                        .or_insert(t_ns / 1000);
                }
            }
        }
        System::Serf => {
            for line in text.lines() {
                let mut w = line.splitn(3, ' ');
                let (Some(t), Some(kind), Some(rest)) = (w.next(), w.next(), w.next()) else {
                    continue;
                };
                let Ok(t_ns) = t.parse::<u64>() else { continue };
                let t = t_ns / 1000;
                match kind {
                    "user" => {
                        s.delivered.entry(rest.trim().to_string()).or_insert(t);
                        s.handled.entry(rest.trim().to_string()).or_insert(t);
                    }
                    "member-join" => s.members.push((t, rest.trim().into(), "joined")),
                    "member-failed" => s.members.push((t, rest.trim().into(), "dead")),
                    "member-leave" => s.members.push((t, rest.trim().into(), "left")),
                    "member-update" => s.members.push((t, rest.trim().into(), "updated")),
                    _ => {}
                }
            }
        }
    }
    s
}

/// Bytes and packets sent by each port, from an iptables chain on loopback.
struct Counters {
    ports: Vec<u16>,
}

const CHAIN: &str = "HEARSAY_BENCH";

fn iptables_status(args: &[&str]) -> std::io::Result<std::process::ExitStatus> {
    Command::new("iptables")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
}

fn iptables(args: &[&str]) -> bool {
    iptables_status(args).is_ok_and(|s| s.success())
}

impl Counters {
    fn install(ports: &[u16]) -> Option<Counters> {
        let _ = iptables(&["-D", "OUTPUT", "-o", "lo", "-j", CHAIN]);
        let _ = iptables(&["-F", CHAIN]);
        let _ = iptables(&["-X", CHAIN]);
        if !iptables(&["-N", CHAIN]) {
            return None;
        }
        let c = Counters {
            ports: ports.to_vec(),
        };
        for p in ports {
            let p = p.to_string();
            for rule in [
                ["-p", "udp", "--sport", p.as_str()],
                ["-p", "tcp", "--sport", p.as_str()],
                // Sent by whoever opened the connection (another agent).
                ["-p", "tcp", "--dport", p.as_str()],
            ] {
                let mut args = vec!["-A", CHAIN];
                args.extend(rule);
                if !iptables(&args) {
                    return None;
                }
            }
        }
        iptables(&["-I", "OUTPUT", "1", "-o", "lo", "-j", CHAIN]).then_some(c)
    }

    /// (packets, bytes) sent by each port so far.
    fn read(&self) -> HashMap<u16, (u64, u64)> {
        let mut out: HashMap<u16, (u64, u64)> = HashMap::new();
        let Ok(o) = Command::new("iptables")
            .args(["-L", CHAIN, "-v", "-x", "-n"])
            .output()
        else {
            return out;
        };
        for line in String::from_utf8_lossy(&o.stdout).lines() {
            let w: Vec<&str> = line.split_whitespace().collect();
            let (Some(pk), Some(by)) = (
                w.first().and_then(|v| v.parse::<u64>().ok()),
                w.get(1).and_then(|v| v.parse::<u64>().ok()),
            ) else {
                continue;
            };
            if let Some(port) = w
                .iter()
                .find_map(|x| x.strip_prefix("spt:").or_else(|| x.strip_prefix("dpt:")))
                .and_then(|p| p.parse::<u16>().ok())
                .filter(|p| self.ports.contains(p))
            {
                let e = out.entry(port).or_default();
                e.0 += pk;
                e.1 += by;
            }
        }
        out
    }
}

impl Drop for Counters {
    fn drop(&mut self) {
        let _ = iptables(&["-D", "OUTPUT", "-o", "lo", "-j", CHAIN]);
        let _ = iptables(&["-F", CHAIN]);
        let _ = iptables(&["-X", CHAIN]);
    }
}

/// Per agent per second: (packets, bytes) between two readings.
fn rate(
    a: &HashMap<u16, (u64, u64)>,
    b: &HashMap<u16, (u64, u64)>,
    ports: &[u16],
    secs: f64,
) -> (f64, f64) {
    let sum = |m: &HashMap<u16, (u64, u64)>| {
        ports.iter().fold((0u64, 0u64), |acc, p| {
            let v = m.get(p).copied().unwrap_or_default();
            (acc.0 + v.0, acc.1 + v.1)
        })
    };
    let (pa, ba) = sum(a);
    let (pb, bb) = sum(b);
    let n = ports.len().max(1) as f64 * secs.max(1e-9);
    (
        (pb.saturating_sub(pa)) as f64 / n,
        (bb.saturating_sub(ba)) as f64 / n,
    )
}

fn quantile(v: &mut [f64], q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let i = ((v.len() - 1) as f64 * q).round() as usize;
    Some(v[i.min(v.len() - 1)])
}

/// One system at one size.
#[derive(Debug, Default, Clone, serde::Serialize)]
struct Row {
    system: &'static str,
    nodes: usize,
    join_all_s: Option<f64>,
    join_slowest_agent_s: Option<f64>,
    last_agent_ms_median: Option<f64>,
    last_agent_ms_p95: Option<f64>,
    last_agent_ms_max: Option<f64>,
    delivery_ms_median: Option<f64>,
    delivery_ms_p95: Option<f64>,
    delivered_share: f64,
    missed: usize,
    kill_seen_by_all_s_median: Option<f64>,
    kill_seen_by_all_s_p95: Option<f64>,
    kill_seen_by_all_s_max: Option<f64>,
    kills_timed: usize,
    tag_seen_by_all_ms_median: Option<f64>,
    tag_seen_by_all_ms_max: Option<f64>,
    tags_timed: usize,
    /// From sending a user event until the last agent's handler ran for it.
    event_handled_by_all_ms_median: Option<f64>,
    event_handled_by_all_ms_max: Option<f64>,
    events_timed: usize,
    /// From asking a query until the last agent's acknowledgement came.
    query_acked_by_all_ms_median: Option<f64>,
    query_acked_by_all_ms_max: Option<f64>,
    /// ... and until the last agent's handler answer came.
    query_answered_by_all_ms_median: Option<f64>,
    query_answered_by_all_ms_max: Option<f64>,
    queries_timed: usize,
    /// Every timed kill, in the order they happened (JSON only).
    kill_seen_by_all_s: Vec<f64>,
    false_positives: usize,
    idle_pkts_per_agent_s: Option<f64>,
    idle_bytes_per_agent_s: Option<f64>,
    load_bytes_per_broadcast_per_agent: Option<f64>,
    error: Option<String>,
}

/// Asks a query named `bench` at `p` and reads what comes as it comes:
/// the ms until `n` agents have acknowledged it and until `n` have
/// answered (None where they did not within the query's 5 s).
fn time_query(ctx: &Ctx, sys: System, p: &Proc, n: usize) -> Result<(Option<f64>, Option<f64>)> {
    use std::io::BufRead;
    let t0 = Instant::now();
    let ms = || Some(t0.elapsed().as_secs_f64() * 1e3);
    let (mut acks, mut answers) = (0, 0);
    let (mut acked, mut answered) = (None, None);
    let mut count = |line: &str, ack: &str, answer: &str| {
        if line.contains(ack) {
            acks += 1;
            if acks == n {
                acked = ms();
            }
        }
        if line.contains(answer) {
            answers += 1;
            if answers == n {
                answered = ms();
            }
        }
        acks >= n && answers >= n
    };
    match sys {
        System::Hearsay => {
            let body = serde_json::json!({"name": "bench", "timeout_ms": 5000}).to_string();
            let r = ureq::post(format!("http://127.0.0.1:{}/query", p.api)).send(body)?;
            for line in std::io::BufReader::new(r.into_body().into_reader()).lines() {
                if count(&line?, r#""type":"ack""#, r#""type":"answer""#) {
                    break;
                }
            }
        }
        System::Serf => {
            let mut child = Command::new(&ctx.args.serf)
                .args(["query", &format!("-rpc-addr=127.0.0.1:{}", p.api)])
                .args(["-timeout=5s", "bench", "q"])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()?;
            if let Some(out) = child.stdout.take() {
                for line in std::io::BufReader::new(out).lines() {
                    if count(line?.trim_start(), "Ack from", "Response from") {
                        break;
                    }
                }
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
    Ok((acked, answered))
}

/// A user event named `bench`; Serf has no other broadcast, so its
/// broadcasts are these too.
fn send_event(ctx: &Ctx, sys: System, p: &Proc, payload: &str) -> Result<()> {
    send(ctx, sys, p, "/event/bench", payload)
}

fn send_broadcast(ctx: &Ctx, sys: System, p: &Proc, payload: &str) -> Result<()> {
    send(ctx, sys, p, "/broadcast", payload)
}

/// hearsay: a POST of `payload` to `path`; Serf: a user event.
fn send(ctx: &Ctx, sys: System, p: &Proc, path: &str, payload: &str) -> Result<()> {
    match sys {
        System::Hearsay => {
            ureq::post(format!("http://127.0.0.1:{}{path}", p.api)).send(payload)?;
        }
        System::Serf => serf(ctx, p, "event", &["-coalesce=false", "bench", payload])?,
    }
    Ok(())
}

/// `serf CMD -rpc-addr=<p's> ARGS...`, which must succeed.
fn serf(ctx: &Ctx, p: &Proc, cmd: &str, args: &[&str]) -> Result<()> {
    let st = Command::new(&ctx.args.serf)
        .args([cmd, &format!("-rpc-addr=127.0.0.1:{}", p.api)])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    if !st.success() {
        bail!("serf {cmd} failed");
    }
    Ok(())
}

/// Sets tag `role` to `value` on `p`.
fn set_tag(ctx: &Ctx, sys: System, p: &Proc, value: &str) -> Result<()> {
    match sys {
        System::Hearsay => {
            ureq::post(format!("http://127.0.0.1:{}/tags", p.api))
                .send(serde_json::json!({ "set": { "role": value } }).to_string())?;
        }
        System::Serf => serf(ctx, p, "tags", &["-set", &format!("role={value}")])?,
    }
    Ok(())
}

/// Until every agent but `who`'s own reports a `change` about it at or
/// after `since` (us), within `limit`: the time the last one did.
fn seen_by_all(
    sys: System,
    procs: &[Proc],
    who: &str,
    change: &str,
    since: u64,
    limit: Duration,
) -> Option<u64> {
    let t = Instant::now();
    let mut at: Vec<Option<u64>> = procs
        .iter()
        .map(|p| (p.name == who).then_some(since))
        .collect();
    while t.elapsed() < limit {
        for (i, p) in procs.iter().enumerate() {
            if at[i].is_none() {
                at[i] = seen(sys, p, false)
                    .members
                    .iter()
                    .find(|(t, w, c)| *c == change && *w == who && *t >= since)
                    .map(|(t, _, _)| *t);
            }
        }
        if at.iter().all(Option::is_some) {
            return at.iter().flatten().max().copied();
        }
        // Times come from the agents' own records: polling less often
        // only ends the wait later.
        std::thread::sleep(Duration::from_millis(250));
    }
    None
}

fn run_one(ctx: &Ctx, sys: System, n: usize) -> Result<Row> {
    let mut row = Row {
        system: sys.name(),
        nodes: n,
        ..Row::default()
    };
    let ports = free_ports(2 * n)?;
    let gossip: Vec<u16> = ports[..n].to_vec();
    let api: Vec<u16> = ports[n..].to_vec();
    let counters = if ctx.args.no_traffic {
        None
    } else {
        Counters::install(&gossip)
    };
    let mut procs = vec![spawn(ctx, sys, 0, (gossip[0], api[0]), None)?];
    wait_port(api[0], Duration::from_secs(10))?;
    let t_join = now_us();
    for i in 1..n {
        procs.push(spawn(ctx, sys, i, (gossip[i], api[i]), Some(gossip[0]))?);
    }
    for p in &procs {
        wait_port(p.api, Duration::from_secs(20))?;
    }
    // Join: until every agent has seen every other join (bounded).
    let names: Vec<String> = procs.iter().map(|p| p.name.clone()).collect();
    let join_limit = Duration::from_secs(90);
    let t = Instant::now();
    let joined_at = |s: &Seen, me: &str| -> Option<u64> {
        let mut first: HashMap<&str, u64> = HashMap::new();
        for (t, who, c) in &s.members {
            if *c == "joined" && who != me {
                first.entry(who.as_str()).or_insert(*t);
            }
        }
        let need = names.iter().filter(|x| x.as_str() != me).count();
        (first.len() >= need).then(|| first.values().copied().max().unwrap_or(0))
    };
    let mut join_times: Vec<Option<u64>> = vec![None; n];
    while t.elapsed() < join_limit {
        for (i, p) in procs.iter().enumerate() {
            if join_times[i].is_none() {
                let s = seen(sys, p, false);
                join_times[i] = joined_at(&s, &p.name).map(|j| j.max(p.started_us));
            }
        }
        if join_times.iter().all(Option::is_some) {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    if join_times.iter().all(Option::is_some) {
        let last = join_times.iter().flatten().max().copied().unwrap_or(t_join);
        row.join_all_s = Some(last.saturating_sub(t_join) as f64 / 1e6);
        row.join_slowest_agent_s = procs
            .iter()
            .zip(&join_times)
            .filter_map(|(p, j)| j.map(|j| j.saturating_sub(p.started_us) as f64 / 1e6))
            .max_by(f64::total_cmp);
    } else {
        row.error = Some(format!(
            "{} of {n} agents saw every join within {join_limit:?}",
            join_times.iter().flatten().count()
        ));
        return Ok(row);
    }
    let joins_done = now_us();
    std::thread::sleep(Duration::from_secs_f64(ctx.args.settle));
    // Idle.
    let idle = Duration::from_secs_f64(ctx.args.idle);
    let c0 = counters.as_ref().map(Counters::read);
    std::thread::sleep(idle);
    let c1 = counters.as_ref().map(Counters::read);
    if let (Some(a), Some(b)) = (&c0, &c1) {
        let (pk, by) = rate(a, b, &gossip, idle.as_secs_f64());
        row.idle_pkts_per_agent_s = Some(pk);
        row.idle_bytes_per_agent_s = Some(by);
    }
    // Load: broadcasts at the rate, from agents in turn.
    let gap = Duration::from_secs_f64(1.0 / ctx.args.rate);
    let load_start = Instant::now();
    let mut sent: Vec<(String, usize)> = Vec::new();
    for k in 0..ctx.args.broadcasts {
        let due = load_start + gap * k as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let origin = k % n;
        let payload = format!("b{k}");
        if send_broadcast(ctx, sys, &procs[origin], &payload).is_ok() {
            sent.push((payload, origin));
        }
    }
    // Until every agent has every payload, or 10 s after the last.
    let settle = Instant::now();
    let mut views: Vec<Seen>;
    loop {
        views = procs.iter().map(|p| seen(sys, p, true)).collect();
        let complete = sent
            .iter()
            .all(|(v, _)| views.iter().all(|s| s.delivered.contains_key(v)));
        if complete || settle.elapsed() > Duration::from_secs(10) {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let load_secs = load_start.elapsed().as_secs_f64();
    let c2 = counters.as_ref().map(Counters::read);
    let mut last = Vec::new();
    let mut each = Vec::new();
    // Deliveries count at the n - 1 agents other than the origin; a
    // broadcast the origin itself never delivered is timed from the
    // earliest delivery anywhere.
    let mut missed = 0;
    for (v, origin) in &sent {
        let t0 = views[*origin].delivered.get(v).copied().or_else(|| {
            views
                .iter()
                .filter_map(|s| s.delivered.get(v).copied())
                .min()
        });
        let Some(t0) = t0 else {
            missed += n - 1;
            continue;
        };
        let mut worst: f64 = 0.0;
        for (i, s) in views.iter().enumerate() {
            if i == *origin {
                continue;
            }
            match s.delivered.get(v) {
                Some(&t) => {
                    let ms = t.saturating_sub(t0) as f64 / 1e3;
                    worst = worst.max(ms);
                    each.push(ms);
                }
                None => missed += 1,
            }
        }
        if views.iter().all(|s| s.delivered.contains_key(v)) {
            last.push(worst);
        }
    }
    row.missed = missed + (ctx.args.broadcasts - sent.len()) * (n - 1);
    let expected = (ctx.args.broadcasts * (n - 1)).max(1);
    row.delivered_share = 1.0 - row.missed as f64 / expected as f64;
    row.last_agent_ms_median = quantile(&mut last, 0.5);
    row.last_agent_ms_p95 = quantile(&mut last, 0.95);
    row.last_agent_ms_max = quantile(&mut last, 1.0);
    row.delivery_ms_median = quantile(&mut each, 0.5);
    row.delivery_ms_p95 = quantile(&mut each, 0.95);
    if let (Some(b), Some(c)) = (&c1, &c2) {
        let (_, load_rate) = rate(b, c, &gossip, load_secs);
        let idle_rate = row.idle_bytes_per_agent_s.unwrap_or(0.0);
        row.load_bytes_per_broadcast_per_agent =
            Some(((load_rate - idle_rate).max(0.0) * load_secs) / sent.len().max(1) as f64);
    }
    // False positives so far: members declared dead by anyone after the
    // joins converged (settle, idle and load), while nobody was killed.
    let wrongly_dead: std::collections::BTreeSet<&str> = views
        .iter()
        .flat_map(|s| s.members.iter())
        .filter(|(t, _, c)| *c == "dead" && *t >= joins_done)
        .map(|(_, who, _)| who.as_str())
        .collect();
    row.false_positives = wrongly_dead.len();
    // Tag changes, on agents in turn.
    let mut tag_ms = Vec::new();
    for k in 0..ctx.args.tag_changes {
        let p = &procs[k % n];
        let t_set = now_us();
        if set_tag(ctx, sys, p, &format!("v{k}")).is_err() {
            continue;
        }
        if let Some(last) = seen_by_all(
            sys,
            &procs,
            &p.name,
            "updated",
            t_set,
            Duration::from_secs(10),
        ) {
            tag_ms.push(last.saturating_sub(t_set) as f64 / 1e3);
        }
    }
    row.tags_timed = tag_ms.len();
    row.tag_seen_by_all_ms_median = quantile(&mut tag_ms.clone(), 0.5);
    row.tag_seen_by_all_ms_max = quantile(&mut tag_ms, 1.0);
    // User events with a handler, from agents in turn at their rate.
    let mut events: Vec<(String, u64)> = Vec::new();
    let ev_start = Instant::now();
    let ev_gap = Duration::from_secs_f64(1.0 / ctx.args.event_rate);
    for k in 0..ctx.args.events {
        let due = ev_start + ev_gap * k as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let payload = format!("e{k}");
        let t = now_us();
        if send_event(ctx, sys, &procs[k % n], &payload).is_ok() {
            events.push((payload, t));
        }
    }
    let settle = Instant::now();
    let handled: Vec<Seen> = loop {
        let views: Vec<Seen> = procs.iter().map(|p| seen(sys, p, false)).collect();
        let complete = events
            .iter()
            .all(|(v, _)| views.iter().all(|s| s.handled.contains_key(v)));
        if complete || settle.elapsed() > Duration::from_secs(10) {
            break views;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let mut ev_ms: Vec<f64> = events
        .iter()
        .filter_map(|(v, t0)| {
            let times: Option<Vec<u64>> =
                handled.iter().map(|s| s.handled.get(v).copied()).collect();
            times.map(|ts| ts.into_iter().max().unwrap_or(*t0).saturating_sub(*t0) as f64 / 1e3)
        })
        .collect();
    row.events_timed = ev_ms.len();
    row.event_handled_by_all_ms_median = quantile(&mut ev_ms.clone(), 0.5);
    row.event_handled_by_all_ms_max = quantile(&mut ev_ms, 1.0);
    // Queries, one at a time, from agents in turn.
    let (mut q_ack, mut q_answer) = (Vec::new(), Vec::new());
    for k in 0..ctx.args.queries {
        if let Ok((acked, answered)) = time_query(ctx, sys, &procs[k % n], n) {
            q_ack.extend(acked);
            q_answer.extend(answered);
        }
    }
    row.queries_timed = q_answer.len();
    row.query_acked_by_all_ms_median = quantile(&mut q_ack.clone(), 0.5);
    row.query_acked_by_all_ms_max = quantile(&mut q_ack, 1.0);
    row.query_answered_by_all_ms_median = quantile(&mut q_answer.clone(), 0.5);
    row.query_answered_by_all_ms_max = quantile(&mut q_answer, 1.0);
    // kill -9 agents one after another, from the last.
    let mut timed = Vec::new();
    for _ in 0..ctx.args.kills.min(n.saturating_sub(2)) {
        let Some(victim) = procs.pop() else { break };
        let victim_name = victim.name.clone();
        let t_kill = now_us();
        drop(victim);
        if let Some(last) = seen_by_all(
            sys,
            &procs,
            &victim_name,
            "dead",
            t_kill,
            Duration::from_secs(60),
        ) {
            timed.push(last.saturating_sub(t_kill) as f64 / 1e6);
        }
    }
    row.kills_timed = timed.len();
    row.kill_seen_by_all_s = timed.clone();
    row.kill_seen_by_all_s_median = quantile(&mut timed.clone(), 0.5);
    row.kill_seen_by_all_s_p95 = quantile(&mut timed.clone(), 0.95);
    row.kill_seen_by_all_s_max = quantile(&mut timed, 1.0);
    drop(procs);
    Ok(row)
}

fn cell(v: Option<f64>, digits: usize) -> String {
    v.map_or("–".into(), |x| format!("{x:.digits$}"))
}

fn table(rows: &[Row]) -> String {
    let mut s = String::from(
        "\n| system | agents | join all s | slowest join s | last agent ms median | p95 | max | delivery ms median | delivered | missed | kill -9 seen by all s median | p95 | max | false positives | idle B/s/agent | idle pkt/s/agent | B per broadcast per agent | tag seen by all ms median | max | event handled by all ms median | max | query acked by all ms median | max | query answered by all ms median | max |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        if let Some(e) = &r.error {
            let _ = writeln!(
                s,
                "| {} | {} | failed: {e} |||||||||||||||||||||||",
                r.system, r.nodes
            );
            continue;
        }
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.2}% | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.system,
            r.nodes,
            cell(r.join_all_s, 2),
            cell(r.join_slowest_agent_s, 2),
            cell(r.last_agent_ms_median, 0),
            cell(r.last_agent_ms_p95, 0),
            cell(r.last_agent_ms_max, 0),
            cell(r.delivery_ms_median, 0),
            r.delivered_share * 100.0,
            r.missed,
            cell(r.kill_seen_by_all_s_median, 2),
            cell(r.kill_seen_by_all_s_p95, 2),
            cell(r.kill_seen_by_all_s_max, 2),
            r.false_positives,
            cell(r.idle_bytes_per_agent_s, 0),
            cell(r.idle_pkts_per_agent_s, 1),
            cell(r.load_bytes_per_broadcast_per_agent, 0),
            cell(r.tag_seen_by_all_ms_median, 0),
            cell(r.tag_seen_by_all_ms_max, 0),
            cell(r.event_handled_by_all_ms_median, 0),
            cell(r.event_handled_by_all_ms_max, 0),
            cell(r.query_acked_by_all_ms_median, 1),
            cell(r.query_acked_by_all_ms_max, 1),
            cell(r.query_answered_by_all_ms_median, 1),
            cell(r.query_answered_by_all_ms_max, 1),
        );
    }
    s
}

pub fn run(args: AgentBenchArgs) -> ExitCode {
    match bench(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hearsay bench agent: {e:#}");
            ExitCode::from(crate::EXIT_CRASH)
        }
    }
}

fn bench(args: &AgentBenchArgs) -> Result<()> {
    let dir = hearsay_harness::report::create_run_dir(&args.out, "agent")?;
    let hearsay = std::env::current_exe().context("finding the hearsay binary")?;
    let mut systems: Vec<System> = args.systems.clone();
    systems.sort();
    systems.dedup();
    if systems.contains(&System::Serf)
        && Command::new(&args.serf)
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_err()
    {
        eprintln!(
            "hearsay bench agent: no serf binary at {:?}; install it (Debian: apt-get install serf) or pass --serf PATH. Running hearsay only.",
            args.serf
        );
        systems.retain(|s| *s != System::Serf);
    }
    let (events, queries) = handler_scripts(Path::new("/bin/bash").exists());
    for (file, script) in [("handler.sh", events), ("query.sh", queries)] {
        let path = dir.join(file);
        std::fs::write(&path, script)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    if !args.no_traffic && !iptables(&["-L", "-n"]) {
        // Say which of the two it is: not installed, or not allowed.
        let installed = iptables_status(&["--version"]).is_ok();
        eprintln!(
            "hearsay bench agent: {}; traffic columns stay empty (--no-traffic skips counting)",
            if installed {
                "iptables is installed but refused to list rules (it needs root, or CAP_NET_ADMIN)"
            } else {
                "iptables is not installed (Debian: apt install iptables; or run scripts/test-deps)"
            }
        );
    }
    let ctx = Ctx {
        args,
        dir: &dir,
        hearsay,
    };
    let mut rows = Vec::new();
    for &n in &args.nodes {
        for &sys in &systems {
            eprintln!("hearsay bench agent: {} x {n} ...", sys.name());
            let row = run_one(&ctx, sys, n).unwrap_or_else(|e| Row {
                system: sys.name(),
                nodes: n,
                error: Some(format!("{e:#}")),
                ..Row::default()
            });
            eprintln!("{}", table(std::slice::from_ref(&row)).trim());
            rows.push(row);
        }
    }
    let md = table(&rows);
    outln!("{md}");
    std::fs::write(dir.join("results.md"), &md)?;
    let mut csv = String::from(
        "system,agents,join_all_s,join_slowest_agent_s,last_agent_ms_median,last_agent_ms_p95,last_agent_ms_max,delivery_ms_median,delivery_ms_p95,delivered_share,missed,kill_seen_by_all_s_median,kill_seen_by_all_s_p95,kill_seen_by_all_s_max,false_positives,idle_bytes_per_agent_s,idle_pkts_per_agent_s,load_bytes_per_broadcast_per_agent,error\n",
    );
    let f = |v: Option<f64>| v.map_or(String::new(), |x| format!("{x:.3}"));
    for r in &rows {
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{},{},{},{},{:.5},{},{},{},{},{},{},{},{},{}",
            r.system,
            r.nodes,
            f(r.join_all_s),
            f(r.join_slowest_agent_s),
            f(r.last_agent_ms_median),
            f(r.last_agent_ms_p95),
            f(r.last_agent_ms_max),
            f(r.delivery_ms_median),
            f(r.delivery_ms_p95),
            r.delivered_share,
            r.missed,
            f(r.kill_seen_by_all_s_median),
            f(r.kill_seen_by_all_s_p95),
            f(r.kill_seen_by_all_s_max),
            r.false_positives,
            f(r.idle_bytes_per_agent_s),
            f(r.idle_pkts_per_agent_s),
            f(r.load_bytes_per_broadcast_per_agent),
            r.error.as_deref().unwrap_or("").replace(',', ";"),
        );
    }
    std::fs::write(dir.join("results.csv"), csv)?;
    let meta = json!({
        "broadcasts": args.broadcasts, "rate": args.rate, "idle-s": args.idle,
        "preset": "lan (hearsay --preset lan, serf -profile=lan)", "rows": rows,
    });
    std::fs::write(
        dir.join("results.json"),
        serde_json::to_string_pretty(&meta)? + "\n",
    )?;
    outln!(
        "results: {}/{{results.md,results.csv,results.json}}",
        dir.display()
    );
    Ok(())
}
