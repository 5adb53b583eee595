//! A workload assembled from its three parts and plugged into the runner:
//! the generator sees the worker's thread and process, a client keeps
//! per-process state and is replaced with its process, and the checker
//! judges the history.

use hearsay_core::rng::Rng;
use hearsay_harness::config::TestConfig;
use hearsay_harness::edn::{Edn, map};
use hearsay_harness::history::{History, OpType, Process};
use hearsay_harness::net::{Journal, Latency, LatencyDist};
use hearsay_harness::run::sim::{self, SimNode};
use hearsay_harness::runner::TestRun;
use hearsay_harness::workload::{
    Checker, Client, Ctx, ErrorPolicy, Field, FieldType, Generator, OpSpec, Schema, Workload,
    WorkloadKind,
};
use serde_json::{Map, Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Echoes `echo` back, but stays silent on every `silent_every`-th request,
/// so the op times out and its process is replaced.
struct Echoer {
    seen: u64,
    silent_every: u64,
}

impl SimNode for Echoer {
    fn on_line(&mut self, _now: u64, line: &str, out: &mut Vec<String>) {
        let m: Value = serde_json::from_str(line).unwrap();
        let body = &m["body"];
        let mut reply = match body["type"].as_str().unwrap() {
            "init" => json!({"type": "init_ok"}),
            "echo" => {
                self.seen += 1;
                if self.seen.is_multiple_of(self.silent_every) {
                    return;
                }
                json!({"type": "echo_ok", "echo": body["echo"]})
            }
            other => panic!("unexpected {other}"),
        };
        reply["in_reply_to"] = body["msg_id"].clone();
        out.push(json!({"src": m["dest"], "dest": m["src"], "body": reply}).to_string());
    }
    fn on_tick(&mut self, _now: u64, _out: &mut Vec<String>) {}
    fn next_deadline(&self) -> Option<u64> {
        None
    }
}

/// Asks each process to echo "p<process>" (what the generator saw).
struct ByProcess;

impl Generator for ByProcess {
    fn next_op(&mut self, ctx: Ctx, _rng: &mut Rng) -> OpSpec {
        OpSpec {
            f: "echo",
            value: Edn::Str(format!("p{}", ctx.process)),
            final_: false,
        }
    }
    fn final_op(&self, _ctx: Ctx) -> Option<OpSpec> {
        None
    }
}

/// Numbers its requests: state that must start over with each process.
struct Numbering {
    sent: u64,
}

const ECHO_OK: Schema = Schema {
    reply_type: "echo_ok",
    fields: &[Field {
        name: "echo",
        ty: FieldType::Any,
    }],
};

impl Client for Numbering {
    fn request(&mut self, op: &OpSpec) -> Map<String, Value> {
        self.sent += 1;
        let Edn::Str(s) = &op.value else {
            unreachable!()
        };
        let mut m = Map::new();
        m.insert("type".into(), "echo".into());
        m.insert("echo".into(), format!("{s}#{}", self.sent).into());
        m
    }
    fn reply_schema(&self, _f: &str) -> Schema {
        ECHO_OK
    }
    fn ok_value(&mut self, _op: &OpSpec, reply: &Value) -> Edn {
        Edn::from_json(&reply["echo"])
    }
    fn errors(&self) -> ErrorPolicy {
        ErrorPolicy::WithErrors { idempotent: &[] }
    }
}

/// Valid when every ok value names its own process and the numbers each
/// process sees run 1, 2, 3, ...
struct PerProcess;

impl Checker for PerProcess {
    fn check(&self, history: &History) -> Edn {
        let mut next = std::collections::HashMap::new();
        let mut errors = 0;
        for o in history.client_ops().filter(|o| o.kind == OpType::Ok) {
            let Process::Client(p) = o.process else {
                continue;
            };
            let Edn::Str(v) = &o.value else {
                errors += 1;
                continue;
            };
            let n = next.entry(p).or_insert(1u64);
            if *v != format!("p{p}#{n}") {
                errors += 1;
            }
            *n += 1;
        }
        map([
            ("valid?", Edn::Bool(errors == 0)),
            ("errors", Edn::from(errors as u64)),
        ])
    }
}

fn run(silent_every: u64) -> (hearsay_harness::runner::RunResult, u64, Edn) {
    let cfg = TestConfig {
        time_limit: Duration::from_secs(60),
        rate: 5.0,
        latency: Latency {
            mean_ms: 10,
            dist: LatencyDist::Constant,
        },
        store: "unused".into(),
        journal: false,
        ..TestConfig::new(
            WorkloadKind::Echo,
            "in-process".into(),
            vec![],
            TestConfig::node_names(2),
            7,
        )
    };
    let opened = Arc::new(Mutex::new(0));
    let o = opened.clone();
    let workload = Workload {
        name: "numbered-echo",
        generator: Box::new(ByProcess),
        open: Box::new(move |_node| {
            *o.lock().unwrap() += 1;
            Box::new(Numbering { sent: 0 })
        }),
        checker: Box::new(PerProcess),
        reusable: false,
        timeout: hearsay_harness::workload::Timeout::Fixed(hearsay_harness::config::RPC_TIMEOUT),
    };
    let nodes = (0..2)
        .map(|_| {
            Box::new(Echoer {
                seen: 0,
                silent_every,
            }) as Box<dyn SimNode>
        })
        .collect();
    let r = sim::run_test(
        TestRun::with_workload(cfg, Journal::default(), workload),
        nodes,
        None,
    );
    let verdict = PerProcess.check(&r.history);
    let n = *opened.lock().unwrap();
    (r, n, verdict)
}

#[test]
fn clients_are_opened_per_process_and_keep_their_own_state() {
    let (r, opened, verdict) = run(7);
    assert_eq!(verdict.get("valid?"), Some(&Edn::Bool(true)), "{verdict:?}");
    let infos = r
        .history
        .client_ops()
        .filter(|o| o.kind == OpType::Info)
        .count() as u64;
    assert!(
        infos >= 3,
        "the silent node must cause timeouts, got {infos}"
    );
    let processes: std::collections::BTreeSet<u64> = r
        .history
        .client_ops()
        .filter_map(|o| match o.process {
            Process::Client(p) => Some(p),
            _ => None,
        })
        .collect();
    // One setup client per node, then one per process; every timeout but
    // a worker's last starts a new process.
    assert_eq!(opened, 2 + processes.len() as u64);
    assert!(
        processes.len() as u64 >= infos,
        "{} processes",
        processes.len()
    );
}

#[test]
fn the_checker_sees_a_client_that_shares_state_across_processes() {
    // The same checker rejects numbers that run on across processes: a
    // client kept past its process would produce them.
    let (r, _, _) = run(7);
    let mut h = History::default();
    for o in r.history.ops() {
        let mut o = o.clone();
        if let (Process::Client(_), Edn::Str(s)) = (o.process, &o.value) {
            o.value = Edn::Str(s.replace("#1", "#9"));
        }
        h.push(o);
    }
    let v = PerProcess.check(&h);
    assert_eq!(v.get("valid?"), Some(&Edn::Bool(false)));
}
