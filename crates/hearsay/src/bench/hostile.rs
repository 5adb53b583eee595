//! `hearsay bench hostile`: a key holder floods one agent with sealed,
//! well-formed, hostile datagrams as fast as one sender makes them, while
//! two honest agents watch it (issue 20's flood target).
//!
//! The datagrams open with the cluster's key, so every one reaches the
//! membership machine: claims about thousands of invented members (the
//! member table's cap), suspicions of the victim at its current
//! incarnation, read each second (it must refute each), deaths of an
//! honest member claimed at its incarnation of the start (believed, as SWIM
//! does, shown to it, and refuted once), probes and indirect probes it
//! must answer or relay, digests of random buckets and states asking for
//! a reply (each answered with a state), and suspicions of the victim in
//! its next life or at the top counter, which it cannot outbid: the agents
//! have data dirs, so they sign their claims and the honest ones refuse
//! these (the hidden `--unsigned` starts them without, and the report
//! shows the death). The report: datagrams and bytes
//! sent, the victim's peak RSS, and what the honest agents saw of it (the
//! target: never dead, RSS bounded).

use super::chaos::{Agent, all_alive, members};
use anyhow::{Result, bail};
use hearsay_agent::codec::{Codec, Datagram};
use hearsay_agent::keyring::{Key, Keyring};
use hearsay_core::cluster::Payload;
use hearsay_core::id::{Epoch, NodeId};
use hearsay_core::membership::{Bytes, Incarnation, MemberMsg, Meta, Status, Update};
use hearsay_core::wire::Msg;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::json;
use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
#[command(after_help = "Example:
  hearsay bench hostile --duration 60s
Exit status: 0 when the victim was never declared dead by the honest agents
and its RSS stayed under --max-rss-mb; 1 otherwise.")]
pub struct HostileArgs {
    /// How long the flood runs
    #[arg(long, default_value = "60s")]
    pub duration: hearsay_sim::Dur,
    /// The victim's RSS bound in MiB (the agent's default bounds plus a
    /// fixed overhead)
    #[arg(long, default_value_t = 128)]
    pub max_rss_mb: u64,
    /// Seed of the hostile messages
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where the results go (a timestamped directory inside, plus `latest`)
    #[arg(long, default_value = "store/bench-hostile")]
    pub out: PathBuf,
    /// Tests only: start the agents without data dirs, so they do not
    /// sign their claims; the flood's suspicions of the victim in a later
    /// life and at the top counter then kill it: the check shown to catch
    /// a false death
    #[arg(long, hide = true)]
    pub unsigned: bool,
}

/// How the agent at `api` lists each member, by name (empty if it did
/// not answer).
fn listing(api: SocketAddr) -> BTreeMap<String, (String, Incarnation)> {
    members(api)
        .iter()
        .filter_map(|m| {
            let inc = Incarnation::new(
                Epoch(m["epoch"].as_u64()?),
                u32::try_from(m["incarnation"].as_u64()?).ok()?,
            );
            Some((
                m["name"].as_str()?.to_string(),
                (m["state"].as_str()?.to_string(), inc),
            ))
        })
        .collect()
}

fn state_of(list: &BTreeMap<String, (String, Incarnation)>, name: &str) -> Option<String> {
    list.get(name).map(|(s, _)| s.clone())
}

/// A counter of the agent at `api` (`hearsay_<name>_total`), 0 if it is
/// not there.
fn counter(api: SocketAddr, name: &str) -> u64 {
    let line = format!("hearsay_{name}_total ");
    super::chaos::http(api, "GET", "/metrics", "")
        .ok()
        .and_then(|(_, b)| {
            b.lines()
                .find_map(|l| l.strip_prefix(&line).and_then(|v| v.trim().parse().ok()))
        })
        .unwrap_or(0)
}

fn incarnation_of(api: SocketAddr, name: &str) -> Option<Incarnation> {
    listing(api).get(name).map(|(_, i)| *i)
}

/// The hostile messages, one kind per call in turn.
struct Forger {
    rng: StdRng,
    victim: (NodeId, Incarnation),
    /// The victim's counter as it last told (an insider hears its alive
    /// claims): each suspicion is of its current incarnation, so it must
    /// refute every one.
    victim_n: Arc<std::sync::atomic::AtomicU32>,
    honest: (NodeId, Incarnation),
    invented: u64,
}

impl Forger {
    fn claim(&self, id: NodeId, inc: Incarnation, status: Status) -> Update {
        Update {
            id,
            inc,
            status,
            meta: (status == Status::Alive).then(|| Arc::new(Meta::default())),
            from: Some(NodeId::new("mallory")),
            sig: None,
        }
    }

    /// Members nobody knows, each with a key of its own and a junk
    /// signature: a member that signs must check each (a key a claim
    /// carries must have signed it), which only its check budget bounds.
    fn invented(&mut self, k: usize) -> Vec<Update> {
        (0..k)
            .map(|_| {
                self.invented += 1;
                let id = NodeId::new(format!("ghost-{}", self.invented));
                let inc = Incarnation::new(Epoch(self.rng.random_range(1..u64::MAX / 2)), 0);
                Update {
                    meta: Some(Arc::new(Meta {
                        key: Some(Bytes(self.rng.random())),
                        ..Meta::default()
                    })),
                    sig: Some(Bytes([0x5a; 64])),
                    ..self.claim(id, inc, Status::Alive)
                }
            })
            .collect()
    }

    fn next(&mut self, turn: u64) -> MemberMsg {
        let (v, mut vi) = self.victim.clone();
        vi.n =
            vi.n.max(self.victim_n.load(std::sync::atomic::Ordering::Relaxed));
        let (h, hi) = self.honest.clone();
        let q = self.rng.random();
        // What only signed claims stop: a suspicion of the victim in its
        // next life, or at the top counter (it cannot outbid either).
        if turn % 8 == 7 {
            let past = if turn % 16 == 7 {
                Incarnation::new(Epoch(vi.epoch.0 + 1), 0)
            } else {
                Incarnation::new(vi.epoch, u32::MAX)
            };
            return MemberMsg::Gossip {
                u: vec![self.claim(v, past, Status::Suspect)],
            };
        }
        match turn % 7 {
            0 => MemberMsg::Gossip {
                u: self.invented(16),
            },
            1 => MemberMsg::Gossip {
                u: vec![self.claim(v, vi, Status::Suspect)],
            },
            2 => MemberMsg::Gossip {
                u: vec![self.claim(h, hi, Status::Dead)],
            },
            3 => MemberMsg::Ping {
                q,
                t: v,
                u: self.invented(4),
            },
            4 => MemberMsg::PingReq {
                q,
                t: if self.rng.random() {
                    h
                } else {
                    NodeId::new("nobody")
                },
                u: Vec::new(),
            },
            5 => MemberMsg::Digest {
                d: (0..64).map(|_| self.rng.random()).collect(),
                n: self.rng.random(),
            },
            _ => MemberMsg::State {
                reply: true,
                b: None,
                m: self.invented(8),
            },
        }
    }
}

#[derive(Default, serde::Serialize)]
struct Report {
    duration_s: f64,
    datagrams: u64,
    bytes: u64,
    per_s: f64,
    victim_peak_rss_mb: f64,
    /// Seconds in which an honest agent listed the victim suspect.
    victim_suspect_s: u64,
    /// Seconds in which an honest agent listed the victim dead or left: the
    /// target is none.
    victim_dead_s: u64,
    /// The same for the honest member the flood claims dead.
    honest_dead_s: u64,
    /// How far the victim's counter moved (each step a suspicion refuted).
    victim_refutations: u32,
    /// Signature checks the victim did, and claims it dropped unchecked
    /// (over its check budget), during the flood.
    victim_checks: u64,
    victim_unchecked: u64,
    /// The victim lists every honest agent alive within 10 s of the end.
    alive_at_end: bool,
    /// Seconds from the end of the flood until then.
    alive_after_s: f64,
    victim_lists: String,
}

pub fn run(args: HostileArgs) -> ExitCode {
    super::verdict("hostile", flood(&args), |r| {
        r.victim_dead_s > 0
            || r.honest_dead_s > 0
            || !r.alive_at_end
            || r.victim_peak_rss_mb > args.max_rss_mb as f64
    })
}

fn flood(args: &HostileArgs) -> Result<Report> {
    let bin = std::env::current_exe()?;
    let dir = super::stamped_dir(&args.out)?;
    let log = dir.join("agents.log");
    let key = Key::generate();
    let ports = super::agent::free_ports(6)?;
    let names = ["victim", "h1", "h2"];
    let mut agents: Vec<Agent> = (0..3)
        .map(|i| {
            let extra = vec!["--key".into(), key.to_base64()];
            let mut a = Agent::new(names[i], &ports, i, &dir, extra);
            a.no_data_dir = args.unsigned;
            a
        })
        .collect();
    for a in &mut agents {
        a.spawn(&bin, &log)?;
    }
    for a in &agents {
        super::agent::wait_addr(a.api, Duration::from_secs(20))?;
    }
    all_alive(&agents, Duration::from_secs(30))?;
    let (Some(vi), Some(hi)) = (
        incarnation_of(agents[1].api, "victim"),
        incarnation_of(agents[2].api, "h1"),
    ) else {
        bail!("the agents' member lists did not name the victim and h1");
    };
    let codec = Codec {
        cluster: "hearsay".into(),
        keys: Keyring::new(vec![key]),
    };
    let sock = UdpSocket::bind("127.0.0.1:0")?;
    let addr = |a: &Agent| a.gossip;
    let (victim, honest) = (addr(&agents[0]), [addr(&agents[1]), addr(&agents[2])]);
    let victim_n = Arc::new(std::sync::atomic::AtomicU32::new(vi.n));
    let mut forger = Forger {
        rng: StdRng::seed_from_u64(args.seed),
        victim: (NodeId::new("victim"), vi),
        victim_n: victim_n.clone(),
        honest: (NodeId::new("h1"), hi),
        invented: 0,
    };
    eprintln!(
        "hearsay bench hostile: 3 agents up; flooding the victim for {:?} -> {}",
        args.duration.0,
        dir.display()
    );
    // The watchers: each second, what the honest agents list of the
    // victim and of h1, and the victim's RSS.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watch = {
        let victim_n = victim_n.clone();
        let stop = stop.clone();
        let apis = (agents[1].api, agents[2].api);
        let victim_api = agents[0].api;
        std::thread::spawn(move || {
            let (mut suspect, mut dead, mut honest_dead) = (0u64, 0u64, 0u64);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (at_h1, at_h2) = (listing(apis.0), listing(apis.1));
                let seen = [state_of(&at_h1, "victim"), state_of(&at_h2, "victim")];
                if let Some(i) = incarnation_of(victim_api, "victim") {
                    victim_n.fetch_max(i.n, std::sync::atomic::Ordering::Relaxed);
                }
                if seen.iter().any(|s| s.as_deref() == Some("suspect")) {
                    suspect += 1;
                }
                if seen
                    .iter()
                    .any(|s| matches!(s.as_deref(), Some("dead" | "left")))
                {
                    dead += 1;
                }
                if matches!(state_of(&at_h2, "h1").as_deref(), Some("dead" | "left")) {
                    honest_dead += 1;
                }
                std::thread::sleep(Duration::from_secs(1));
            }
            (suspect, dead, honest_dead)
        })
    };
    let mut report = Report::default();
    let counters = |api| {
        (
            counter(api, "claims_checked"),
            counter(api, "claims_unchecked"),
        )
    };
    let before = counters(agents[0].api);
    let start = Instant::now();
    let mut last_sample = start;
    let head = Datagram::from("mallory");
    let mut turn = 0u64;
    while start.elapsed() < args.duration.0 {
        turn += 1;
        let m = forger.next(turn);
        // The open hole's claims go to the honest agents, who believe them.
        let to = match &m {
            MemberMsg::Gossip { u }
                if u.iter()
                    .any(|c| c.inc.epoch != vi.epoch && c.id.as_str() == "victim") =>
            {
                honest[(turn / 8 % 2) as usize]
            }
            _ => victim,
        };
        let m: Msg<Payload> = Msg::Mem(m);
        let env = Datagram {
            m: vec![m],
            ..head.clone()
        };
        if let Some(d) = codec.frame(&env)
            && sock.send_to(&d, to).is_ok()
        {
            report.datagrams += 1;
            report.bytes += d.len() as u64;
        }
        if turn.is_multiple_of(1024) && last_sample.elapsed() >= Duration::from_secs(1) {
            last_sample = Instant::now();
            agents[0].sample_rss();
        }
    }
    report.duration_s = start.elapsed().as_secs_f64();
    let after = counters(agents[0].api);
    report.victim_checks = after.0 - before.0.min(after.0);
    report.victim_unchecked = after.1 - before.1.min(after.1);
    report.per_s = report.datagrams as f64 / report.duration_s;
    // A few seconds for the victim to catch up, then the verdict.
    std::thread::sleep(Duration::from_secs(3));
    agents[0].sample_rss();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (suspect, dead, honest_dead) = watch.join().unwrap_or((0, u64::MAX, u64::MAX));
    report.victim_suspect_s = suspect;
    report.victim_dead_s = dead;
    report.honest_dead_s = honest_dead;
    report.victim_peak_rss_mb = agents[0].peak_rss_kb as f64 / 1024.0;
    let last = incarnation_of(agents[0].api, "victim").map_or(0, |i| i.n);
    report.victim_refutations =
        last.max(victim_n.load(std::sync::atomic::Ordering::Relaxed)) - vi.n;
    // The victim's own view, once the flood is over: the honest agents
    // alive within 10 s (a claim of h1's death it took refutes itself).
    let t = Instant::now();
    loop {
        let at_victim = listing(agents[0].api);
        let seen = [state_of(&at_victim, "h1"), state_of(&at_victim, "h2")];
        report.alive_at_end = seen.iter().all(|s| s.as_deref() == Some("alive"));
        if report.alive_at_end || t.elapsed() > Duration::from_secs(10) {
            report.victim_lists = format!("h1 {:?}, h2 {:?}", seen[0], seen[1]);
            report.alive_after_s = t.elapsed().as_secs_f64() + 3.0;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let md = format!(
        "\n| duration s | datagrams | per s | MB sent | victim peak RSS MB | victim suspect s | victim dead s | h1 dead s | victim lists both alive after the flood | victim refuted | victim's signature checks | dropped unchecked |\n|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|\n| {:.0} | {} | {:.0} | {:.1} | {:.1} | {} | {} | {} | {} | {} | {} | {} |\n",
        report.duration_s,
        report.datagrams,
        report.per_s,
        report.bytes as f64 / 1e6,
        report.victim_peak_rss_mb,
        report.victim_suspect_s,
        report.victim_dead_s,
        report.honest_dead_s,
        if report.alive_at_end {
            format!("yes, {:.1} s after", report.alive_after_s)
        } else {
            format!("no: {}", report.victim_lists)
        },
        report.victim_refutations,
        report.victim_checks,
        report.victim_unchecked
    );
    outln!("{md}");
    std::fs::write(dir.join("results.md"), &md)?;
    std::fs::write(
        dir.join("results.json"),
        serde_json::to_string_pretty(&json!({"args": format!("{args:?}"), "report": report}))?
            + "\n",
    )?;
    Ok(report)
}
