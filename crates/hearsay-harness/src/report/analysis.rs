//! Runs every checker over a finished run and assembles Maelstrom's results
//! map, plus hearsay's own measurements (kept out of `results.edn`, under
//! `"hearsay"` in `results.json`).

use crate::checker::{self, Validity, availability, exceptions, net, set_full, stats};
use crate::config::TestConfig;
use crate::edn::Edn;
use crate::runner::RunResult;
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct Analysis {
    pub results: Edn,
    pub valid: Validity,
    pub extras: Value,
    /// The workload checker's own files (Elle's `elle/`, kafka's plots).
    pub files: Vec<checker::Artifact>,
}

/// The figures the Gossip Glomers targets and `hearsay bench` read off a
/// run: `:net :servers :msgs-per-op` and the workload's stable latencies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Headline {
    pub msgs_per_op: Option<f64>,
    pub median_ms: Option<i64>,
    pub p95_ms: Option<i64>,
    pub p99_ms: Option<i64>,
    pub max_ms: Option<i64>,
    pub lost: Option<i64>,
    /// With probes: ms from the last update (or heal) until every node read
    /// the value it ends with.
    pub converged_ms: Option<i64>,
}

impl Analysis {
    pub fn headline(&self) -> Headline {
        let r = &self.results;
        let msgs_per_op = match r
            .get("net")
            .and_then(|n| n.get("servers"))
            .and_then(|s| s.get("msgs-per-op"))
        {
            Some(Edn::Float32(f)) => Some(f64::from(*f)),
            Some(Edn::Float(f)) => Some(*f),
            Some(Edn::Int(i)) => Some(*i as f64),
            _ => None,
        };
        let w = r.get("workload");
        let q = |key: &str| match w.and_then(|w| w.get("stable-latencies")) {
            Some(Edn::Map(m)) => m
                .iter()
                .find(|(k, _)| k.compact() == key)
                .and_then(|(_, v)| match v {
                    Edn::Int(i) => Some(*i),
                    _ => None,
                }),
            _ => None,
        };
        Headline {
            msgs_per_op,
            median_ms: q("0.5"),
            p95_ms: q("0.95"),
            p99_ms: q("0.99"),
            max_ms: q("1"),
            lost: match w.and_then(|w| w.get("lost-count")) {
                Some(Edn::Int(i)) => Some(*i),
                _ => None,
            },
            converged_ms: self.extras["convergence"]["after-last-update-ms"].as_i64(),
        }
    }
}

pub fn analyze(cfg: &TestConfig, run: &RunResult) -> Analysis {
    let h = &run.history;
    let (workload, files) = cfg
        .workload
        .build(&cfg.nodes, cfg.topology)
        .checker
        .check_files(h);
    let (results, valid) = checker::compose(vec![
        ("perf", checker::perf()),
        ("timeline", checker::timeline()),
        ("exceptions", exceptions::check(h)),
        ("stats", stats::check(h)),
        ("availability", availability::check(h, cfg.availability)),
        ("net", net::check(&run.net, h.client_invocations())),
        ("workload", workload),
    ]);
    let lag_ms: Vec<i64> = run.lag_ns.iter().map(|&n| (n / 1_000) as i64).collect();
    let lag = set_full::quantiles(&lag_ms).map(|qs| {
        let m: serde_json::Map<String, Value> = qs
            .into_iter()
            .map(|(q, us)| (format!("{q}"), json!(us as f64 / 1000.0)))
            .collect();
        Value::Object(m)
    });
    let extras = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "trace-hash": format!("{:016x}", trace_hash(run)),
        "executor": run.executor,
        "seed": cfg.seed,
        "issue-lag-ms": lag,
        "issued-ops": run.lag_ns.len(),
        "dropped-by-partitions": run.dropped_by_partitions,
        "journal": {"bytes": run.journal.bytes, "cut-events": run.journal.cut, "limit-bytes": run.journal.limit},
        "node-sends-per-s": node_sends(run),
        "convergence": super::convergence::measure(run, cfg.nodes.len()),
        "warnings": run.warnings.iter().map(|w| json!({"time-ms": w.time_ns / 1_000_000, "node": w.node, "text": w.text})).collect::<Vec<_>>(),
    });
    Analysis {
        results,
        valid,
        extras,
        files,
    }
}

/// Server messages per second sent by the busiest node and by the average
/// node, over the whole run: what a fan-out hub pays.
fn node_sends(run: &RunResult) -> Value {
    let secs = (run.last_op_ns as f64 / 1e9).max(1e-9);
    let max = run.sent_by.iter().copied().max().unwrap_or(0);
    let (busiest, _) = run
        .sent_by
        .iter()
        .enumerate()
        .max_by_key(|(_, n)| **n)
        .unwrap_or((0, &0));
    let mean = run.sent_by.iter().sum::<u64>() as f64 / run.sent_by.len().max(1) as f64;
    json!({"max": (max as f64 / secs * 10.0).round() / 10.0, "busiest-node": busiest,
           "mean": (mean / secs * 10.0).round() / 10.0})
}

/// FNV-1a over the history and the message counts: two runs with the same
/// hash did the same thing. The simulator promises equal hashes for equal
/// seeds; real processes do not (timing varies).
pub fn trace_hash(run: &RunResult) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for op in run.history.ops() {
        eat(op.to_edn().compact().as_bytes());
        eat(b"\n");
    }
    let n = &run.net;
    for c in [n.all, n.clients, n.servers] {
        eat(format!("{} {} {};", c.send, c.recv, c.msg).as_bytes());
    }
    h
}
