//! `hearsay bench chaos`: a soak of real agents on loopback under faults,
//! checking that nothing acknowledged is lost.
//!
//! Agents with data dirs are killed (-9) and restarted on the same dir,
//! paused (SIGSTOP, then SIGCONT) and cut in two (the agents' own fault
//! layer, `--test-faults`: every datagram across the cut dropped), while a
//! client writes to the replicated map and broadcasts through random
//! agents that are up. At the end the faults stop, and the report says
//! which acknowledged writes and broadcasts some agent lacks, which
//! failures were declared outside the injected faults, the peak RSS of
//! each agent; then every agent is killed and restarted at once and the
//! map is checked again.

use super::agent::{free_ports, now_us, wait_addr};
use super::netns;
use anyhow::{Context, Result, bail};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  hearsay bench chaos                                  20 agents, 10 minutes
  hearsay bench chaos --agents 8 --duration 2m         the short version
Where it may (root, network namespaces), each agent runs in a network
namespace of its own, on a bridge, and the faults happen in the kernel,
to datagrams and streams alike: partitions with iptables; --loss, --delay
and --jitter (so reordering) with tc netem, or where the kernel has no
netem, --loss with iptables and the delay by each agent's own link.
Elsewhere, or with --net loopback, every agent is on 127.0.0.1 and the
faults come from its own fault layer (partitions drop every datagram
across the cut; --loss of received datagrams dropped, the rest held
--delay +- --jitter). The report's last line says which it was.
Exit status: 0 when nothing acknowledged was lost, 1 otherwise.")]
pub struct ChaosArgs {
    /// Agents
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(3..=200))]
    pub agents: u64,
    /// How long the faults run
    #[arg(long, default_value = "10m")]
    pub duration: hearsay_sim::Dur,
    /// An agent killed with SIGKILL and restarted on its data dir this often
    #[arg(long, default_value = "10s")]
    pub kill_every: hearsay_sim::Dur,
    /// An agent paused (SIGSTOP) this often ...
    #[arg(long, default_value = "15s")]
    pub pause_every: hearsay_sim::Dur,
    /// ... for this long (then SIGCONT)
    #[arg(long, default_value = "3s")]
    pub pause_for: hearsay_sim::Dur,
    /// The cluster cut in two random halves this often ...
    #[arg(long, default_value = "2m")]
    pub partition_every: hearsay_sim::Dur,
    /// ... for this long
    #[arg(long, default_value = "30s")]
    pub partition_for: hearsay_sim::Dur,
    /// Map writes per second (to 100 keys in turn)
    #[arg(long, default_value_t = 20.0, value_parser = crate::args::rate)]
    pub writes: f64,
    /// Broadcasts per second
    #[arg(long, default_value_t = 5.0, value_parser = crate::args::rate)]
    pub broadcasts: f64,
    /// Received datagrams dropped, in percent, at every agent
    #[arg(long, default_value_t = 5.0, value_parser = crate::args::rate)]
    pub loss: f64,
    /// Received datagrams held this long ...
    #[arg(long, default_value = "20ms")]
    pub delay: hearsay_sim::Dur,
    /// ... +- up to this (reordering)
    #[arg(long, default_value = "10ms")]
    pub jitter: hearsay_sim::Dur,
    /// Seed of the fault schedule's choices
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where the agents run
    #[arg(long, value_enum, default_value_t = Net::Auto)]
    pub net: Net,
    /// Where the results go (a timestamped directory inside, plus `latest`)
    #[arg(long, default_value = "store/bench-chaos")]
    pub out: PathBuf,
    /// Tests only: the data dirs are wiped before the final restart of
    /// every agent, which must then be reported as lost writes (the check
    /// shown to catch a loss)
    #[arg(long, hide = true)]
    pub forget_data: bool,
}

/// Where the agents run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Net {
    /// Namespaces where this machine allows them, else loopback (said so)
    Auto,
    /// A network namespace per agent, faults in the kernel (an error where
    /// that is not allowed)
    Netns,
    /// Every agent on 127.0.0.1, faults from the agents' own layer
    Loopback,
}

const KEYS: u64 = 100;
/// Failures declared within this long after a fault touched a member (or
/// any partition) count as injected.
const GRACE: Duration = Duration::from_secs(30);

pub(super) struct Agent {
    pub name: String,
    pub gossip: SocketAddr,
    pub api: SocketAddr,
    dir: PathBuf,
    join: Option<SocketAddr>,
    /// The prefix that runs it on its host (none: this one).
    exec: Vec<String>,
    child: Option<Child>,
    /// When this life started (unix us).
    started_us: u64,
    paused_until: Option<Instant>,
    pub peak_rss_kb: u64,
    /// More arguments for `hearsay agent` (a key).
    extra: Vec<String>,
    /// Started without `--data-dir` (so it keeps nothing and signs
    /// nothing).
    pub(super) no_data_dir: bool,
}

impl Agent {
    /// Agent `i` of a cluster on loopback `ports` (gossip and API ports in
    /// turn), its data dir in `dir`, joining agent 0.
    pub(super) fn new(
        name: &str,
        ports: &[u16],
        i: usize,
        dir: &Path,
        extra: Vec<String>,
    ) -> Agent {
        let at = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        let mut a = Agent::at(name, at(ports[2 * i]), at(ports[2 * i + 1]), dir, extra);
        a.join = (i > 0).then(|| at(ports[0]));
        a
    }

    /// Agent `i` of a cluster on `hosts` (each on its own address, with
    /// the usual ports), joining agent 0.
    fn on_host(hosts: &netns::Hosts, i: usize, dir: &Path, mut extra: Vec<String>) -> Agent {
        let at = |i: usize, p: u16| SocketAddr::from((hosts.ip(i), p));
        // The API listens on the host's address, which only this bench's
        // namespace reaches.
        extra.push("--http-insecure".into());
        let mut a = Agent::at(&format!("c{i}"), at(i, 7946), at(i, 7947), dir, extra);
        a.join = (i > 0).then(|| at(0, 7946));
        a.exec = hosts.exec(i);
        a
    }

    fn at(
        name: &str,
        gossip: SocketAddr,
        api: SocketAddr,
        dir: &Path,
        extra: Vec<String>,
    ) -> Agent {
        Agent {
            name: name.into(),
            gossip,
            api,
            dir: dir.join(format!("data-{name}")),
            join: None,
            exec: Vec::new(),
            child: None,
            started_us: 0,
            paused_until: None,
            peak_rss_kb: 0,
            extra,
            no_data_dir: false,
        }
    }

    pub(super) fn spawn(&mut self, bin: &Path, log: &Path) -> Result<()> {
        let mut c = match self.exec.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        c.env_remove("HEARSAY_HTTP_TOKEN")
            .args(["agent", "--name", &self.name, "--preset", "lan"])
            .args(["--bind", &self.gossip.to_string()])
            .args(["--http", &self.api.to_string()])
            .args(&self.extra);
        if self.exec.is_empty() {
            // Cuts through the agents' own fault layer.
            c.arg("--test-faults");
        }
        if !self.no_data_dir {
            c.arg("--data-dir").arg(&self.dir);
        }
        if let Some(j) = self.join {
            c.args(["--join", &j.to_string()]);
        }
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        c.stdin(Stdio::null()).stdout(out.try_clone()?).stderr(out);
        self.started_us = now_us();
        self.child = Some(
            c.spawn()
                .with_context(|| format!("starting {}", self.name))?,
        );
        Ok(())
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.paused_until = None;
    }

    fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill")
                .args([sig, &c.id().to_string()])
                .status();
        }
    }

    fn up(&self) -> bool {
        self.child.is_some() && self.paused_until.is_none()
    }

    pub(super) fn sample_rss(&mut self) {
        let Some(c) = &self.child else { return };
        let Ok(s) = std::fs::read_to_string(format!("/proc/{}/status", c.id())) else {
            return;
        };
        if let Some(kb) = s
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
        {
            self.peak_rss_kb = self.peak_rss_kb.max(kb);
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.signal("-CONT");
        self.kill();
    }
}

pub(super) fn http(api: SocketAddr, method: &str, path: &str, body: &str) -> Result<(u16, String)> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(2)))
        .build()
        .into();
    let url = format!("http://{api}{path}");
    let mut r = match method {
        "GET" => agent.get(&url).call()?,
        "PUT" => agent.put(&url).send(body)?,
        _ => agent.post(&url).send(body)?,
    };
    let status = r.status().as_u16();
    Ok((status, r.body_mut().read_to_string()?))
}

/// The agent's `/members` (empty if it did not answer).
pub(super) fn members(api: SocketAddr) -> Vec<Value> {
    http(api, "GET", "/members", "")
        .ok()
        .and_then(|(_, b)| serde_json::from_str(&b).ok())
        .unwrap_or_default()
}

/// Every agent lists every other alive, within `limit`.
pub(super) fn all_alive(agents: &[Agent], limit: Duration) -> Result<Duration> {
    let t = Instant::now();
    let n = agents.len();
    loop {
        let ok = agents.iter().all(|a| {
            members(a.api)
                .iter()
                .filter(|x| x["state"] == "alive")
                .count()
                == n
        });
        if ok {
            return Ok(t.elapsed());
        }
        if t.elapsed() > limit {
            bail!("not every agent lists {n} alive after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Cuts the agents in two along `side` (None: heals): in the kernel of
/// each of their `hosts`, or else through each agent's fault layer. A
/// paused agent cannot answer the latter (each call would wait out its
/// timeout): it gets the cut of the moment when it resumes ([`cut_one`]).
fn cut(agents: &[Agent], hosts: Option<&netns::Hosts>, side: Option<&[bool]>) -> Result<()> {
    if let Some(h) = hosts {
        return h.cut(side);
    }
    for i in 0..agents.len() {
        if agents[i].paused_until.is_none() {
            cut_one(agents, i, side);
        }
    }
    Ok(())
}

fn cut_one(agents: &[Agent], i: usize, side: Option<&[bool]>) {
    if agents[i].child.is_none() {
        return;
    }
    let body = match side {
        None => String::new(),
        Some(side) => agents
            .iter()
            .enumerate()
            .filter(|(j, _)| side[*j] != side[i])
            .map(|(_, b)| b.gossip.to_string())
            .collect::<Vec<_>>()
            .join("\n"),
    };
    let _ = http(agents[i].api, "POST", "/test/cut", &body);
}

/// What one agent lacks: acknowledged writes it holds an older value of
/// (or none), and acknowledged broadcasts sent after its life began (plus
/// 5 s to join) that it has not delivered. `via` says where each write
/// (by its number) and broadcast (by its payload) was sent, and when.
fn lacks(
    name: &str,
    kv: &BTreeMap<String, String>,
    delivered: &std::collections::HashSet<&str>,
    started_us: u64,
    last_acked: &HashMap<String, u64>,
    broadcasts: &[(String, u64)],
    via: &HashMap<String, String>,
) -> (Vec<String>, Vec<String>) {
    let from = |what: &str| via.get(what).map_or(String::new(), |v| format!(" ({v})"));
    let mut writes = Vec::new();
    for (k, seq) in last_acked {
        let held = kv.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        if held < *seq {
            let w = from(&seq.to_string());
            writes.push(format!("{name} {k}: holds {held}, acked {seq}{w}"));
        }
    }
    let casts = broadcasts
        .iter()
        .filter(|(p, t)| *t > started_us + 5_000_000 && !delivered.contains(p.as_str()))
        .map(|(p, _)| format!("{name} {p}{}", from(p)))
        .collect();
    (writes, casts)
}

/// What the run found.
#[derive(Default, serde::Serialize)]
struct Report {
    /// Where the agents ran.
    net: String,
    agents: usize,
    duration_s: f64,
    kills: usize,
    pauses: usize,
    partitions: usize,
    writes_acked: usize,
    writes_refused: usize,
    /// (agent, key) pairs holding less than the last acknowledged write.
    writes_missing: Vec<String>,
    broadcasts_acked: usize,
    /// Acknowledged broadcasts an agent up since before them lacks.
    broadcasts_missing: Vec<String>,
    /// Failures declared of members no fault touched in the last 30 s
    /// (from every life of every agent: each one's events are read before
    /// it is killed).
    false_positives: Vec<String>,
    /// Event lists that could not be read (each makes the count above
    /// incomplete, and the run fail).
    events_unread: usize,
    converged_s: Option<f64>,
    peak_rss_mb: BTreeMap<String, f64>,
    /// After every agent was killed and restarted at once.
    restart_all_alive_s: Option<f64>,
    /// From every agent alive again until every map held every write.
    restart_converged_s: Option<f64>,
    restart_writes_missing: Vec<String>,
}

pub fn run(args: ChaosArgs) -> ExitCode {
    super::verdict("chaos", soak(&args), |r| {
        !r.writes_missing.is_empty()
            || !r.broadcasts_missing.is_empty()
            || !r.false_positives.is_empty()
            || r.events_unread > 0
            || !r.restart_writes_missing.is_empty()
            || r.converged_s.is_none()
            || r.restart_all_alive_s.is_none()
    })
}

/// The value of write `seq` to its key: the sequence first, so the
/// checker can tell a later write from an earlier one.
/// Seconds from `start_us` (unix us) to now.
fn secs_since(start_us: u64) -> f64 {
    now_us().saturating_sub(start_us) as f64 / 1e6
}

/// "through c3 at +12.3 s (its life from +10.1 s)".
fn sent_through(a: &Agent, start_us: u64) -> String {
    format!(
        "through {} at +{:.1} s (its life from +{:.1} s)",
        a.name,
        secs_since(start_us),
        a.started_us.saturating_sub(start_us) as f64 / 1e6
    )
}

fn key_of(seq: u64) -> String {
    format!("k{}", seq % KEYS)
}

fn soak(args: &ChaosArgs) -> Result<Report> {
    if args.loss > 100.0 {
        bail!("--loss is a percentage, 0 to 100, not {}", args.loss);
    }
    let bin = std::env::current_exe()?;
    let dir = super::stamped_dir(&args.out)?;
    let log = dir.join("agents.log");
    let n = args.agents as usize;
    // Ctrl-C stops the run: the agents (and their namespaces) go with the
    // soak's locals, rather than living on after the bench.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let _ = ctrlc::set_handler(move || flag.store(true, std::sync::atomic::Ordering::Relaxed));
    let interrupted = || stop.load(std::sync::atomic::Ordering::Relaxed);
    let shape = netns::Link {
        loss_percent: args.loss,
        delay: args.delay.0,
        jitter: args.jitter.0,
    };
    let hosts = match args.net {
        Net::Loopback => None,
        Net::Netns => Some(netns::Hosts::new(n, shape).context("--net netns")?),
        Net::Auto => match netns::Hosts::new(n, shape) {
            Ok(h) => Some(h),
            Err(e) => {
                eprintln!(
                    "hearsay bench chaos: no network namespaces here ({e:#}): the agents run on loopback, with the faults of their own layer"
                );
                None
            }
        },
    };
    let hosts = hosts.as_ref();
    // What netem does not do, the agents' own link does.
    let mut link = Vec::new();
    if !hosts.is_some_and(|h| h.netem) {
        link.extend([
            "--test-delay".to_string(),
            format!("{}us", args.delay.0.as_micros()),
            "--test-jitter".to_string(),
            format!("{}us", args.jitter.0.as_micros()),
        ]);
    }
    let mut agents: Vec<Agent> = match hosts {
        Some(h) => (0..n)
            .map(|i| Agent::on_host(h, i, &dir, link.clone()))
            .collect(),
        None => {
            link.extend(["--test-loss".to_string(), args.loss.to_string()]);
            let ports = free_ports(2 * n)?;
            (0..n)
                .map(|i| Agent::new(&format!("c{i}"), &ports, i, &dir, link.clone()))
                .collect()
        }
    };
    let net = match hosts {
        Some(h) if h.netem => {
            "a network namespace each; loss, delay and reordering from netem, cuts in the kernel"
        }
        Some(_) => {
            "a network namespace each; loss and cuts in the kernel, delay from their own link (no netem here)"
        }
        None => "on loopback; loss, delay and cuts from their own fault layer",
    };
    for a in &mut agents {
        a.spawn(&bin, &log)?;
    }
    for a in &agents {
        wait_addr(a.api, Duration::from_secs(20))?;
    }
    let formed = all_alive(&agents, Duration::from_secs(60))?;
    eprintln!(
        "hearsay bench chaos: {n} agents ({net}) formed a cluster in {:.1} s; faults for {:?} (and {}% loss, {:?} +- {:?} delay on every link) -> {}",
        formed.as_secs_f64(),
        args.duration.0,
        args.loss,
        args.delay.0,
        args.jitter.0,
        dir.display()
    );
    let mut rng = StdRng::seed_from_u64(args.seed);
    let mut report = Report {
        net: net.into(),
        agents: n,
        duration_s: args.duration.0.as_secs_f64(),
        ..Report::default()
    };
    // Fault log: (unix us, member touched or None for a partition).
    let mut touched: Vec<(u64, Option<usize>)> = Vec::new();
    let mut last_acked: HashMap<String, u64> = HashMap::new();
    let mut broadcasts: Vec<(String, u64)> = Vec::new();
    // Where each write (by number) and broadcast went, for the report.
    let mut via: HashMap<String, String> = HashMap::new();
    let start = Instant::now();
    let start_us = now_us();
    // Every fault with its time, kept beside the results.
    let mut faults_log: Vec<String> = Vec::new();
    let at = || format!("+{:.1} s", secs_since(start_us));
    let (mut next_kill, mut next_pause, mut next_part) = (
        start + args.kill_every.0,
        start + args.pause_every.0,
        start + args.partition_every.0,
    );
    let mut partition: Option<(Vec<bool>, Instant)> = None;
    // Each agent's membership events, read before each kill (a life's
    // events die with it) and at the end.
    let mut lives: Vec<(String, Option<Vec<Value>>)> = Vec::new();
    let events_of = |a: &Agent| -> Option<Vec<Value>> {
        http(a.api, "GET", "/events", "")
            .ok()
            .filter(|(s, _)| *s == 200)
            .and_then(|(_, b)| serde_json::from_str(&b).ok())
    };
    let (mut writes, mut sent_broadcasts) = (0u64, 0u64);
    let mut last_sample = start;
    let bar = indicatif::ProgressBar::new(args.duration.0.as_secs());
    while start.elapsed() < args.duration.0 {
        if interrupted() {
            bar.finish_and_clear();
            bail!("interrupted; every agent stopped");
        }
        let now = Instant::now();
        bar.set_position(start.elapsed().as_secs());
        for i in 0..n {
            if agents[i].paused_until.is_some_and(|t| t <= now) {
                agents[i].signal("-CONT");
                agents[i].paused_until = None;
                faults_log.push(format!("{} go on {}", at(), agents[i].name));
                // The cut of the moment, which it could not take paused
                // (a host's cut is in its kernel: it has it).
                if hosts.is_none() {
                    let side = partition.as_ref().map(|(side, _)| side.clone());
                    cut_one(&agents, i, side.as_deref());
                }
            }
        }
        if let Some((_, until)) = &partition
            && *until <= now
        {
            cut(&agents, hosts, None)?;
            touched.push((now_us(), None));
            faults_log.push(format!("{} heal", at()));
            partition = None;
        }
        let up: Vec<usize> = (0..n).filter(|i| agents[*i].up()).collect();
        if now >= next_kill && !up.is_empty() {
            next_kill += args.kill_every.0;
            let i = up[rng.random_range(0..up.len())];
            lives.push((agents[i].name.clone(), events_of(&agents[i])));
            agents[i].kill();
            touched.push((now_us(), Some(i)));
            agents[i].spawn(&bin, &log)?;
            faults_log.push(format!("{} kill -9 and restart {}", at(), agents[i].name));
            report.kills += 1;
            if let Some((side, _)) = &partition
                && hosts.is_none()
            {
                // The restarted agent's fault layer starts empty.
                let side = side.clone();
                if wait_addr(agents[i].api, Duration::from_secs(10)).is_ok() {
                    cut(&agents, hosts, Some(&side))?;
                }
            }
        }
        if now >= next_pause {
            next_pause += args.pause_every.0;
            let up: Vec<usize> = (0..n).filter(|i| agents[*i].up()).collect();
            if !up.is_empty() {
                let i = up[rng.random_range(0..up.len())];
                agents[i].signal("-STOP");
                agents[i].paused_until = Some(now + args.pause_for.0);
                touched.push((now_us(), Some(i)));
                faults_log.push(format!("{} pause {}", at(), agents[i].name));
                report.pauses += 1;
            }
        }
        if now >= next_part && partition.is_none() {
            next_part += args.partition_every.0;
            let mut side: Vec<bool> = (0..n).map(|i| i % 2 == 0).collect();
            for i in (1..n).rev() {
                side.swap(i, rng.random_range(0..=i));
            }
            cut(&agents, hosts, Some(&side))?;
            touched.push((now_us(), None));
            let one: Vec<&str> = (0..n)
                .filter(|i| side[*i])
                .map(|i| agents[i].name.as_str())
                .collect();
            faults_log.push(format!("{} partition: {} | the rest", at(), one.join(" ")));
            partition = Some((side, now + args.partition_for.0));
            report.partitions += 1;
        }
        let elapsed = start.elapsed().as_secs_f64();
        while (writes as f64) < elapsed * args.writes {
            writes += 1;
            let up: Vec<usize> = (0..n).filter(|i| agents[*i].up()).collect();
            let Some(&i) = up.get(rng.random_range(0..up.len().max(1))) else {
                break;
            };
            let key = key_of(writes);
            match http(
                agents[i].api,
                "PUT",
                &format!("/kv/{key}"),
                &writes.to_string(),
            ) {
                Ok((200, _)) => {
                    report.writes_acked += 1;
                    last_acked.insert(key, writes);
                    via.insert(writes.to_string(), sent_through(&agents[i], start_us));
                }
                _ => report.writes_refused += 1,
            }
        }
        while (sent_broadcasts as f64) < elapsed * args.broadcasts {
            sent_broadcasts += 1;
            let up: Vec<usize> = (0..n).filter(|i| agents[*i].up()).collect();
            let Some(&i) = up.get(rng.random_range(0..up.len().max(1))) else {
                break;
            };
            let payload = format!("b{sent_broadcasts}");
            if let Ok((200 | 202, _)) = http(agents[i].api, "POST", "/broadcast", &payload) {
                via.insert(payload.clone(), sent_through(&agents[i], start_us));
                broadcasts.push((payload, now_us()));
                report.broadcasts_acked += 1;
            }
        }
        if now.duration_since(last_sample) >= Duration::from_secs(1) {
            last_sample = now;
            for a in agents.iter_mut() {
                a.sample_rss();
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bar.finish_and_clear();
    // The faults stop; everything must converge.
    for a in agents.iter_mut() {
        a.signal("-CONT");
        a.paused_until = None;
    }
    cut(&agents, hosts, None)?;
    let faults_end_us = now_us();
    faults_log.push(format!("{} faults end", at()));
    std::fs::write(dir.join("faults.log"), faults_log.join("\n") + "\n")?;
    let settle = Instant::now();
    let check = |agents: &[Agent]| -> (Vec<String>, Vec<String>) {
        let mut writes_missing = Vec::new();
        let mut broadcasts_missing = Vec::new();
        for a in agents {
            let kv: BTreeMap<String, String> = http(a.api, "GET", "/kv", "")
                .ok()
                .and_then(|(_, b)| serde_json::from_str(&b).ok())
                .unwrap_or_default();
            let msgs = http(a.api, "GET", "/messages", "")
                .map(|(_, b)| b)
                .unwrap_or_default();
            let have: std::collections::HashSet<&str> = msgs.lines().collect();
            let (w, b) = lacks(
                &a.name,
                &kv,
                &have,
                a.started_us,
                &last_acked,
                &broadcasts,
                &via,
            );
            writes_missing.extend(w);
            broadcasts_missing.extend(b);
        }
        (writes_missing, broadcasts_missing)
    };
    loop {
        let (w, b) = check(&agents);
        if w.is_empty() && b.is_empty() {
            report.converged_s = Some(settle.elapsed().as_secs_f64());
            break;
        }
        if interrupted() {
            bail!("interrupted while the agents converged; every agent stopped");
        }
        if settle.elapsed() > Duration::from_secs(90) {
            report.writes_missing = w;
            report.broadcasts_missing = b;
            // What each agent knows, to explain what it lacks.
            for a in &agents {
                for (what, path) in [("metrics", "/metrics"), ("members", "/members")] {
                    if let Ok((_, body)) = http(a.api, "GET", path, "") {
                        std::fs::write(dir.join(format!("{}-{what}.txt", a.name)), body)?;
                    }
                }
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    // Failures declared of members no fault touched lately.
    let names: Vec<String> = agents.iter().map(|a| a.name.clone()).collect();
    lives.extend(agents.iter().map(|a| (a.name.clone(), events_of(a))));
    for (name, events) in &lives {
        let Some(events) = events else {
            report.events_unread += 1;
            continue;
        };
        for e in events {
            if e["change"] != "dead" {
                continue;
            }
            let t = e["t"].as_u64().unwrap_or(0);
            if t > faults_end_us + GRACE.as_micros() as u64 {
                // After the faults: anything declared dead is false.
            } else {
                let who = names.iter().position(|n| e["name"] == n.as_str());
                let excused = touched.iter().any(|(at, m)| {
                    *at <= t
                        && t.saturating_sub(*at) <= GRACE.as_micros() as u64
                        && (m.is_none() || *m == who)
                });
                if excused || who.is_none() {
                    continue;
                }
            }
            report.false_positives.push(format!(
                "{} declared {} dead at +{:.1} s (its life of epoch {}; accused by {})",
                name,
                e["name"].as_str().unwrap_or("?"),
                t.saturating_sub(start_us) as f64 / 1e6,
                e["epoch"],
                e["by"].as_str().unwrap_or("?")
            ));
        }
    }
    for a in agents.iter_mut() {
        a.sample_rss();
        report
            .peak_rss_mb
            .insert(a.name.clone(), a.peak_rss_kb as f64 / 1024.0);
    }
    // Every agent killed and restarted at once, on its data dir.
    for a in agents.iter_mut() {
        a.kill();
        if args.forget_data {
            let _ = std::fs::remove_dir_all(&a.dir);
        }
    }
    for a in agents.iter_mut() {
        a.spawn(&bin, &log)?;
    }
    for a in &agents {
        wait_addr(a.api, Duration::from_secs(20))?;
    }
    report.restart_all_alive_s = all_alive(&agents, Duration::from_secs(60))
        .ok()
        .map(|d| d.as_secs_f64());
    let t = Instant::now();
    loop {
        let (w, _) = check(&agents);
        if w.is_empty() {
            report.restart_converged_s = Some(t.elapsed().as_secs_f64());
            break;
        }
        if interrupted() {
            bail!("interrupted after the restart of all; every agent stopped");
        }
        // With every data dir wiped nothing can bring the writes back:
        // the test of the check need not wait out the whole 30 s.
        let wait = if args.forget_data { 5 } else { 30 };
        if t.elapsed() > Duration::from_secs(wait) {
            report.restart_writes_missing = w;
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let md = table(&report);
    outln!("{md}");
    std::fs::write(dir.join("results.md"), &md)?;
    std::fs::write(
        dir.join("results.json"),
        serde_json::to_string_pretty(&json!({"args": format!("{args:?}"), "report": report}))?
            + "\n",
    )?;
    outln!(
        "results: {}/{{results.md,results.json,agents.log}}",
        dir.display()
    );
    Ok(report)
}

fn table(r: &Report) -> String {
    let peak = r.peak_rss_mb.values().copied().fold(0.0_f64, f64::max);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\n| agents | duration s | kills | pauses | partitions | writes acked | writes missing | broadcasts acked | broadcasts missing | false positives | converged s | peak RSS MB (max agent) | restart all: alive s | writes missing after |"
    );
    let _ = writeln!(
        s,
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let opt = |v: Option<f64>| v.map_or("never".to_string(), |x| format!("{x:.1}"));
    let restart_converged = opt(r.restart_converged_s);
    let _ = writeln!(
        s,
        "| {} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {} | {} |",
        r.agents,
        r.duration_s,
        r.kills,
        r.pauses,
        r.partitions,
        r.writes_acked,
        r.writes_missing.len(),
        r.broadcasts_acked,
        r.broadcasts_missing.len(),
        r.false_positives.len(),
        opt(r.converged_s),
        peak,
        opt(r.restart_all_alive_s),
        r.restart_writes_missing.len()
    );
    if r.events_unread > 0 {
        let _ = writeln!(
            s,
            "event lists unread: {} (the false-positive count is incomplete)",
            r.events_unread
        );
    }
    let _ = writeln!(
        s,
        "after the restart of all, every map held every write in {restart_converged} s"
    );
    let _ = writeln!(s, "agents: {}", r.net);
    for (what, v) in [
        ("writes missing", &r.writes_missing),
        ("broadcasts missing", &r.broadcasts_missing),
        ("false positives", &r.false_positives),
        (
            "writes missing after the restart",
            &r.restart_writes_missing,
        ),
    ] {
        for x in v.iter().take(10) {
            let _ = writeln!(s, "{what}: {x}");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The checks the soak runs after its faults and after the restart of
    /// all, shown to catch a loss: an agent holding an older write, or
    /// none, and one lacking a broadcast sent in its life.
    #[test]
    fn the_check_names_lost_writes_and_broadcasts_and_excuses_what_it_should() {
        let acked = HashMap::from([("k0".to_string(), 7u64), ("k1".to_string(), 3)]);
        let s = 1_000_000_000u64;
        let casts = vec![
            ("b1".to_string(), s - 1),         // before this life
            ("b2".to_string(), s + 1_000),     // while it was joining
            ("b3".to_string(), s + 6_000_000), // in its life
        ];
        let kv = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let have = |v: &[&'static str]| v.iter().copied().collect::<std::collections::HashSet<_>>();
        // Everything, or later: nothing lacks.
        let (w, b) = lacks(
            "a1",
            &kv(&[("k0", "9"), ("k1", "3")]),
            &have(&["b3"]),
            s,
            &acked,
            &casts,
            &HashMap::new(),
        );
        assert!(w.is_empty() && b.is_empty(), "{w:?} {b:?}");
        // An older write, a missing key, a missing broadcast.
        let via = HashMap::from([("7".to_string(), "through a1".to_string())]);
        let (mut w, b) = lacks(
            "a2",
            &kv(&[("k0", "6")]),
            &have(&["b1"]),
            s,
            &acked,
            &casts,
            &via,
        );
        w.sort();
        assert_eq!(
            w,
            [
                "a2 k0: holds 6, acked 7 (through a1)",
                "a2 k1: holds 0, acked 3"
            ]
        );
        assert_eq!(b, ["a2 b3"]);
    }
}
