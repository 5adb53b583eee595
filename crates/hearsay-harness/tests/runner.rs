//! The test runner in virtual time, with small in-process nodes whose
//! behaviour is known exactly: determinism, timing, timeouts, process
//! replacement, message accounting and the checkers' verdicts.

use hearsay_harness::checker::set_full;
use hearsay_harness::config::TestConfig;
use hearsay_harness::history::{OpType, Process};
use hearsay_harness::net::{Journal, Latency, LatencyDist};
use hearsay_harness::run::sim::{self, SimNode};
use hearsay_harness::runner::RunResult;
use hearsay_harness::workload::WorkloadKind;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;

const MS: u64 = 1_000_000;

#[derive(Clone, Copy, PartialEq)]
enum Behaviour {
    /// Sends each client broadcast straight to every other node, once.
    Fanout,
    /// Keeps values to itself.
    Hoard,
    /// Never answers broadcasts (reads are answered).
    MuteBroadcast,
}

struct Fake {
    me: String,
    all: Vec<String>,
    values: BTreeSet<i64>,
    how: Behaviour,
    clients_seen: Vec<String>,
}

impl Fake {
    fn new(how: Behaviour) -> Fake {
        Fake {
            me: String::new(),
            all: vec![],
            values: BTreeSet::new(),
            how,
            clients_seen: vec![],
        }
    }
    fn send(&self, out: &mut Vec<String>, dest: &str, body: Value) {
        out.push(json!({"src": self.me, "dest": dest, "body": body}).to_string());
    }
}

impl SimNode for Fake {
    fn on_line(&mut self, _now: u64, line: &str, out: &mut Vec<String>) {
        let m: Value = serde_json::from_str(line).unwrap();
        let (src, body) = (m["src"].as_str().unwrap().to_string(), &m["body"]);
        if src.starts_with('c') && !self.clients_seen.contains(&src) {
            self.clients_seen.push(src.clone());
        }
        let reply = |extra: Value| {
            let mut b = extra;
            b["in_reply_to"] = body["msg_id"].clone();
            b
        };
        match body["type"].as_str().unwrap() {
            "init" => {
                self.me = body["node_id"].as_str().unwrap().into();
                self.all = body["node_ids"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().into())
                    .collect();
                self.send(out, &src, reply(json!({"type": "init_ok"})));
            }
            "topology" => self.send(out, &src, reply(json!({"type": "topology_ok"}))),
            "broadcast" => {
                let v = body["message"].as_i64().unwrap();
                self.values.insert(v);
                if self.how == Behaviour::MuteBroadcast {
                    return;
                }
                self.send(out, &src, reply(json!({"type": "broadcast_ok"})));
                if self.how == Behaviour::Fanout {
                    for n in self.all.clone().iter().filter(|n| **n != self.me) {
                        self.send(out, n, json!({"type": "copy", "v": v}));
                    }
                }
            }
            "read" => self.send(
                out,
                &src,
                reply(json!({"type": "read_ok", "messages": self.values})),
            ),
            "copy" => {
                self.values.insert(body["v"].as_i64().unwrap());
            }
            other => panic!("unexpected {other}"),
        }
    }
    fn on_tick(&mut self, _now: u64, _out: &mut Vec<String>) {}
    fn next_deadline(&self) -> Option<u64> {
        None
    }
}

fn cfg(n: usize, seed: u64) -> TestConfig {
    TestConfig {
        time_limit: Duration::from_secs(10),
        rate: 20.0,
        latency: Latency {
            mean_ms: 100,
            dist: LatencyDist::Constant,
        },
        nemesis_interval: 2.0,
        store: "unused".into(),
        journal: false,
        ..TestConfig::new(
            WorkloadKind::Broadcast,
            "in-process".into(),
            vec![],
            TestConfig::node_names(n),
            seed,
        )
    }
}

fn run(cfg: TestConfig, how: Behaviour) -> RunResult {
    let nodes = (0..cfg.nodes.len())
        .map(|_| Box::new(Fake::new(how)) as Box<dyn SimNode>)
        .collect();
    sim::run(cfg, nodes, Journal::default())
}

fn trace(r: &RunResult) -> Vec<String> {
    r.history
        .ops()
        .iter()
        .map(|o| o.to_edn().compact())
        .collect()
}

#[test]
fn the_same_seed_replays_the_same_run() {
    let mut c = cfg(5, 42);
    c.partition = true;
    c.latency.dist = LatencyDist::Exponential;
    let a = run(c.clone(), Behaviour::Fanout);
    let b = run(c.clone(), Behaviour::Fanout);
    assert!(a.history.len() > 100);
    assert_eq!(trace(&a), trace(&b));
    assert_eq!(a.net, b.net);
    c.seed = 43;
    assert_ne!(trace(&a), trace(&run(c, Behaviour::Fanout)));
}

#[test]
fn ops_follow_the_rate_the_mix_and_the_phases() {
    let r = run(cfg(5, 1), Behaviour::Fanout);
    assert!(r.aborted.is_none());
    let ops = r.history.ops();
    let invokes: Vec<_> = ops.iter().filter(|o| o.kind == OpType::Invoke).collect();
    let main: Vec<_> = invokes.iter().filter(|o| !o.final_).collect();
    // rate 20 for 10 s
    assert!((170..=230).contains(&main.len()), "{} ops", main.len());
    let broadcasts = main.iter().filter(|o| o.f == "broadcast").count();
    assert!(
        broadcasts * 10 > main.len() * 4 && broadcasts * 10 < main.len() * 6,
        "50/50 mix"
    );
    // Broadcast values are 0, 1, 2, ... in order.
    let values: Vec<String> = main
        .iter()
        .filter(|o| o.f == "broadcast")
        .map(|o| o.value.compact())
        .collect();
    let expected: Vec<String> = (0..broadcasts).map(|i| i.to_string()).collect();
    assert_eq!(values, expected);
    // Main phase within the time limit; finals after 10 s of recovery.
    let last_main = main.last().unwrap().time;
    assert!(last_main < 10_000 * MS);
    let finals: Vec<_> = invokes.iter().filter(|o| o.final_).collect();
    assert_eq!(finals.len(), 5);
    assert!(
        finals
            .iter()
            .all(|o| o.f == "read" && o.time >= last_main + 10_000 * MS)
    );
    // Every worker talks to its own node: process p -> node p mod 5.
    assert!(r.warnings.is_empty());
}

#[test]
fn direct_fanout_is_stable_within_one_latency_and_counted_exactly() {
    let r = run(cfg(5, 2), Behaviour::Fanout);
    let workload = set_full::check(&r.history, "broadcast");
    assert_eq!(workload.get("valid?").unwrap().compact(), "true");
    let lat: Vec<i64> = set_full::elements(&r.history, "broadcast")
        .iter()
        .filter_map(|e| e.stable_latency)
        .collect();
    // A copy lands exactly 100 ms after the ack (processing takes no virtual time).
    assert!(lat.iter().all(|&l| l <= 100), "{lat:?}");
    let broadcasts = r
        .history
        .ops()
        .iter()
        .filter(|o| o.kind == OpType::Invoke && o.f == "broadcast")
        .count() as u64;
    let invokes = r.history.client_invocations() as u64;
    assert_eq!(r.net.servers.msg, 4 * broadcasts);
    assert_eq!(r.net.servers.recv, 4 * broadcasts);
    assert_eq!(r.net.clients.msg, 2 * invokes + 4 * 5);
}

#[test]
fn hoarding_nodes_lose_values() {
    let r = run(cfg(3, 3), Behaviour::Hoard);
    let w = set_full::check(&r.history, "broadcast");
    assert_eq!(w.get("valid?").unwrap().compact(), "false");
    let lost = w
        .get("lost-count")
        .unwrap()
        .compact()
        .parse::<i64>()
        .unwrap();
    assert!(lost > 0);
}

#[test]
fn unanswered_broadcasts_time_out_after_five_seconds_and_replace_the_process() {
    let mut c = cfg(2, 4);
    c.time_limit = Duration::from_secs(6);
    let r = run(c, Behaviour::MuteBroadcast);
    let ops = r.history.ops();
    let infos: Vec<_> = ops.iter().filter(|o| o.kind == OpType::Info).collect();
    assert!(!infos.is_empty());
    for info in &infos {
        let inv = &ops[info.invocation.unwrap()];
        assert_eq!(
            info.time - inv.time,
            5_000 * MS,
            "the client timeout is exactly 5 s"
        );
        assert_eq!(info.error.as_ref().unwrap().compact(), ":net-timeout");
    }
    // The next op of a crashed process runs as process p + concurrency.
    let Process::Client(p) = infos[0].process else {
        panic!()
    };
    assert!(ops.iter().any(|o| o.process == Process::Client(p + 2)));
    // Reads of a node that stored the values still see them.
    assert!(
        ops.iter()
            .any(|o| o.f == "read" && o.kind == OpType::Ok && o.value.compact() != "[]")
    );
}

#[test]
fn partitions_drop_messages_and_are_recorded() {
    let mut c = cfg(5, 5);
    c.partition = true;
    let r = run(c, Behaviour::Fanout);
    assert!(r.dropped_by_partitions > 0);
    let nemesis: Vec<_> = r
        .history
        .ops()
        .iter()
        .filter(|o| o.process == Process::Nemesis)
        .collect();
    assert!(nemesis.len() >= 4);
    assert_eq!(nemesis[0].f, "start-partition");
    assert_eq!(
        nemesis[0].time, 0,
        "the first partition starts with the main phase"
    );
    let last = nemesis.last().unwrap();
    assert_eq!(
        (last.f, last.value.compact().as_str()),
        ("stop-partition", ":network-healed")
    );
    // Fire-and-forget copies sent into a partition are lost.
    let w = set_full::check(&r.history, "broadcast");
    assert_eq!(w.get("valid?").unwrap().compact(), "false");
}

fn converged(c: &TestConfig, r: &RunResult) -> serde_json::Value {
    let a = hearsay_harness::report::analyze(c, r);
    a.extras["convergence"].clone()
}

#[test]
fn probes_time_convergence_and_stay_out_of_the_history() {
    let mut c = cfg(5, 2);
    let plain = run(c.clone(), Behaviour::Fanout);
    assert!(plain.probes.is_empty());
    c.probe = Some(Duration::from_millis(10));
    let r = run(c.clone(), Behaviour::Fanout);
    // Same history and server traffic with and without probes.
    assert_eq!(trace(&plain), trace(&r));
    assert_eq!(plain.net.servers.msg, r.net.servers.msg);
    let v = converged(&c, &r);
    assert_eq!(v["converged"], true, "{v}");
    // Clients have no latency, servers 100 ms: the last update is at the
    // other nodes 100 ms after it is invoked, and a probe can wait behind a
    // server message for up to 100 ms more (each node takes its messages in
    // order, as in Maelstrom), plus 10 ms between probes.
    let ms = v["after-last-update-ms"].as_i64().unwrap();
    assert!((100..=210).contains(&ms), "{v}");
    assert!(v["probe-reads"].as_u64().unwrap() > 5 * 1000, "{v}");
}

#[test]
fn probes_report_nodes_that_never_agree() {
    let mut c = cfg(3, 3);
    c.probe = Some(Duration::from_millis(50));
    let r = run(c.clone(), Behaviour::Hoard);
    let v = converged(&c, &r);
    assert_eq!(v["converged"], false, "{v}");
    assert!(v["after-last-update-ms"].is_null());
}
