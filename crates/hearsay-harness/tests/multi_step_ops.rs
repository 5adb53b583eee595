//! Ops that are more than one request and one reply, as kafka's are: an op
//! that completes without a request (`crash`), an op whose ok reply leads
//! to a second request (a poll that commits), and a final phase in which
//! each worker runs a sequence of ops with pauses, under a time cap.

use hearsay_core::rng::Rng;
use hearsay_harness::config::TestConfig;
use hearsay_harness::edn::{Edn, map};
use hearsay_harness::history::{History, Op, OpType};
use hearsay_harness::net::Journal;
use hearsay_harness::run::sim::{self, SimNode};
use hearsay_harness::runner::TestRun;
use hearsay_harness::workload::{
    Checker, Client, Ctx, ErrorPolicy, Field, FieldType, Generator, OpSpec, Schema, Workload,
    WorkloadKind,
};
use serde_json::{Map, Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Answers `get` with a count of gets, and `commit` with `commit_ok`
/// except every third, which gets error 11 (definite).
#[derive(Default)]
struct Node {
    gets: u64,
    commits: u64,
}

impl SimNode for Node {
    fn on_line(&mut self, _now: u64, line: &str, out: &mut Vec<String>) {
        let m: Value = serde_json::from_str(line).unwrap();
        let body = &m["body"];
        let mut reply = match body["type"].as_str().unwrap() {
            "init" => json!({"type": "init_ok"}),
            "get" => {
                self.gets += 1;
                json!({"type": "get_ok", "value": self.gets})
            }
            "commit" => {
                self.commits += 1;
                if self.commits.is_multiple_of(3) {
                    json!({"type": "error", "code": 11, "text": "busy"})
                } else {
                    json!({"type": "commit_ok"})
                }
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

const FINAL_GETS: usize = 4;
const GAP_NS: u64 = 100_000_000;

/// Alternates a local `crash` and a `get`; finally each worker crashes,
/// then runs FINAL_GETS gets 100 ms apart. Counts what it observes.
struct Gen {
    n: u64,
    finals: Vec<usize>,
    observed: Arc<Mutex<Vec<(usize, Op)>>>,
}

fn op(f: &'static str, final_: bool) -> OpSpec {
    OpSpec {
        f,
        value: Edn::Nil,
        final_,
    }
}

impl Generator for Gen {
    fn next_op(&mut self, _ctx: Ctx, _rng: &mut Rng) -> OpSpec {
        self.n += 1;
        op(
            if self.n.is_multiple_of(2) {
                "crash"
            } else {
                "get"
            },
            false,
        )
    }
    fn final_op(&self, _ctx: Ctx) -> Option<OpSpec> {
        // A local op first, as kafka's final crash: it completes inside the
        // phase change and must still lead to the next final op.
        Some(op("crash", true))
    }
    fn observe(&mut self, ctx: Ctx, o: &Op) {
        self.observed.lock().unwrap().push((ctx.thread, o.clone()));
    }
    fn final_next(&mut self, ctx: Ctx, _rng: &mut Rng) -> Option<(OpSpec, u64)> {
        if self.finals.len() <= ctx.thread {
            self.finals.resize(ctx.thread + 1, 0);
        }
        if self.finals[ctx.thread] >= FINAL_GETS {
            return None;
        }
        self.finals[ctx.thread] += 1;
        Some((op("get", true), GAP_NS))
    }
    fn final_limit(&self) -> Option<Duration> {
        Some(Duration::from_secs(10))
    }
}

#[derive(Clone)]
struct Cl;

const GET_OK: Schema = Schema {
    reply_type: "get_ok",
    fields: &[Field {
        name: "value",
        ty: FieldType::Int,
    }],
};
const COMMIT_OK: Schema = Schema {
    reply_type: "commit_ok",
    fields: &[],
};

impl Client for Cl {
    fn request(&mut self, op: &OpSpec) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("type".into(), op.f.into());
        m
    }
    fn reply_schema(&self, _f: &str) -> Schema {
        GET_OK
    }
    fn ok_value(&mut self, _op: &OpSpec, reply: &Value) -> Edn {
        Edn::Int(reply["value"].as_i64().unwrap())
    }
    fn local(&mut self, op: &OpSpec) -> Option<(OpType, Edn)> {
        (op.f == "crash").then_some((OpType::Info, Edn::Nil))
    }
    fn then(&mut self, _op: &OpSpec, _reply: &Value) -> Option<(Map<String, Value>, Schema)> {
        let mut m = Map::new();
        m.insert("type".into(), "commit".into());
        Some((m, COMMIT_OK))
    }
    fn errors(&self) -> ErrorPolicy {
        ErrorPolicy::WithErrors { idempotent: &[] }
    }
}

struct Nothing;

impl Checker for Nothing {
    fn check(&self, _h: &History) -> Edn {
        map([("valid?", Edn::Bool(true))])
    }
}

#[test]
fn local_ops_second_requests_and_final_sequences() {
    let observed = Arc::new(Mutex::new(Vec::new()));
    let cfg = TestConfig {
        time_limit: Duration::from_secs(5),
        rate: 10.0,
        recovery: Duration::from_secs(1),
        journal: false,
        ..TestConfig::new(
            WorkloadKind::Echo,
            "in-process".into(),
            vec![],
            TestConfig::node_names(2),
            3,
        )
    };
    let workload = Workload {
        name: "multi-step",
        generator: Box::new(Gen {
            n: 0,
            finals: Vec::new(),
            observed: observed.clone(),
        }),
        open: Box::new(|_| Box::new(Cl)),
        checker: Box::new(Nothing),
        reusable: false,
        timeout: hearsay_harness::workload::Timeout::Fixed(Duration::from_secs(5)),
    };
    let nodes: Vec<Box<dyn SimNode>> = vec![Box::new(Node::default()), Box::new(Node::default())];
    let r = sim::run_test(
        TestRun::with_workload(cfg, Journal::default(), workload),
        nodes,
        None,
    );
    assert!(r.aborted.is_none(), "{:?}", r.aborted);
    let h = &r.history;
    let done: Vec<&Op> = h
        .client_ops()
        .filter(|o| o.kind != OpType::Invoke)
        .collect();
    // Crashes complete at once, as :info, and send nothing.
    let crashes: Vec<&&Op> = done.iter().filter(|o| o.f == "crash").collect();
    assert!(!crashes.is_empty());
    for c in &crashes {
        assert_eq!(c.kind, OpType::Info);
        assert_eq!(c.time, h.get(c.invocation.unwrap()).unwrap().time);
    }
    // A get is ok (with the get's value) when its commit is, and :fail
    // (with the invocation's value) when the commit got a definite error.
    let gets: Vec<&&Op> = done.iter().filter(|o| o.f == "get").collect();
    let ok = gets.iter().filter(|o| o.kind == OpType::Ok).count();
    let failed = gets.iter().filter(|o| o.kind == OpType::Fail).count();
    assert!(ok > 0 && failed > 0, "ok {ok} failed {failed}");
    assert!(gets.iter().all(|o| match o.kind {
        OpType::Ok => matches!(o.value, Edn::Int(_)),
        _ => o.value == Edn::Nil,
    }));
    // Every get sent two requests or one (its commit failing is still a
    // request); crashes none: client messages are get + commit + init.
    let sent = r.net.clients.send;
    let inits = 2;
    assert_eq!(sent, 2 * (gets.len() as u64) * 2 + inits * 2, "{:?}", r.net);
    // The generator saw every completion, in history order.
    let seen = observed.lock().unwrap();
    assert_eq!(seen.len(), done.len());
    assert!(seen.iter().zip(&done).all(|((_, a), b)| a.index == b.index));
    // Each worker ran FINAL_GETS final gets, at least 100 ms apart.
    for thread in 0..2u64 {
        let times: Vec<u64> = h
            .client_ops()
            .filter(|o| o.kind == OpType::Invoke && o.final_ && o.f == "get")
            .filter(|o| matches!(o.process, hearsay_harness::history::Process::Client(p) if p % 2 == thread))
            .map(|o| o.time)
            .collect();
        assert_eq!(times.len(), FINAL_GETS, "thread {thread}");
        assert!(times.windows(2).all(|w| w[1] - w[0] >= GAP_NS), "{times:?}");
    }
}
