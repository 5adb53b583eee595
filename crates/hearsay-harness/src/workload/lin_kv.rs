//! The lin-kv workload (maelstrom-spec-more.md 2): `read`, `write` and `cas`
//! on integer keys, values 0-4, generated as Jepsen's linearizable-register
//! test does (independent keys, one group of 2N worker threads per key), and
//! judged per key by a linearizability checker with a compare-and-set
//! register model. No final phase.

use super::schema::{Field, FieldType, Schema};
use super::{Checker, Client, Ctx, ErrorPolicy, Generator, OpSpec, Timeout, Workload};
use crate::checker::linearizable::{Budget, check_independent_cas};
use crate::edn::Edn;
use crate::history::History;
use hearsay_core::rng::{Rng, RngExt};
use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// Jepsen's `process-limit` on each key: once the processes that worked a
/// key (its group's threads, plus one per crash) exceed this, the group
/// moves to a fresh key.
pub const PROCESS_LIMIT: usize = 20;

/// Maelstrom's lin-kv client timeout: `max(1000, 10 × --latency)` ms.
pub const TIMEOUT: Timeout = Timeout::LatencyScaled {
    min_ms: 1_000,
    factor: 10,
};

pub(super) fn workload(nodes: usize) -> Workload {
    let mut w = Workload::new(
        "lin-kv",
        Registers::new(nodes),
        KvClient,
        Linearizable(Budget::default()),
    );
    w.reusable = true;
    w.timeout = TIMEOUT;
    w
}

/// Why a lin-kv test with `nodes` nodes and `concurrency` workers cannot
/// run, in the words of Jepsen's generator assertion (Maelstrom aborts the
/// test there; hearsay refuses it up front). With 11 or more nodes a group
/// starts past the process limit, so Maelstrom walks keys forever without
/// issuing an op; hearsay refuses that too.
pub fn check_concurrency(nodes: usize, concurrency: usize) -> Result<(), String> {
    let group = 2 * nodes;
    if group > PROCESS_LIMIT {
        return Err(format!(
            "lin-kv runs at most {} nodes: each key is worked by 2 × {nodes} = {group} threads, more than Jepsen's process limit of {PROCESS_LIMIT} per key, so Maelstrom would never issue an operation",
            PROCESS_LIMIT / 2
        ));
    }
    if concurrency < group {
        return Err(format!(
            "lin-kv needs at least 2 × node count = {group} worker threads (one reader and one writer per node and key), not {concurrency}; pass --concurrency 2n"
        ));
    }
    if !concurrency.is_multiple_of(group) {
        return Err(format!(
            "lin-kv needs a concurrency that is a multiple of 2 × node count = {group} (each key is worked by {group} threads), not {concurrency}; try --concurrency 2n or 4n"
        ));
    }
    Ok(())
}

/// Jepsen's `independent/concurrent-generator` over linearizable-register's
/// per-key mix.
struct Registers {
    nodes: usize,
    /// Per group of 2N threads: its key and the processes seen on it.
    groups: Vec<(i64, BTreeSet<u64>)>,
    /// The current process of each thread, as last seen.
    process_of: Vec<Option<u64>>,
    next_key: i64,
}

impl Registers {
    fn new(nodes: usize) -> Self {
        Registers {
            nodes: nodes.max(1),
            groups: Vec::new(),
            process_of: Vec::new(),
            next_key: 0,
        }
    }

    fn group_size(&self) -> usize {
        2 * self.nodes
    }

    /// The key for `ctx`'s group, moving the group to a fresh key when its
    /// processes pass the limit. Jepsen sees every thread's current process
    /// at each draw; hearsay learns a thread's new process when it next
    /// asks, so a key may last until the crashed thread's next op.
    fn key_for(&mut self, ctx: Ctx) -> i64 {
        let size = self.group_size();
        let g = ctx.thread / size;
        if self.process_of.len() <= ctx.thread {
            self.process_of.resize(ctx.thread + 1, None);
        }
        self.process_of[ctx.thread] = Some(ctx.process);
        while self.groups.len() <= g {
            // Group g starts on key g.
            let k = self.groups.len() as i64;
            self.groups.push((k, BTreeSet::new()));
            self.next_key = self.next_key.max(k + 1);
        }
        let procs = &mut self.groups[g].1;
        procs.insert(ctx.process);
        if procs.len() > PROCESS_LIMIT {
            let current: BTreeSet<u64> = (g * size..(g + 1) * size)
                .filter_map(|t| self.process_of.get(t).copied().flatten())
                .collect();
            self.groups[g] = (self.next_key, current);
            self.next_key += 1;
        }
        self.groups[g].0
    }
}

fn pair(k: i64, v: Edn) -> Edn {
    Edn::Vector(vec![Edn::Int(k), v])
}

impl Generator for Registers {
    fn next_op(&mut self, ctx: Ctx, rng: &mut Rng) -> OpSpec {
        let k = self.key_for(ctx);
        // gen/reserve: threads 0..N read; the rest mix w, cas, cas.
        if ctx.thread < self.nodes {
            return OpSpec::new("read", pair(k, Edn::Nil), false);
        }
        if rng.random_range(0..3) == 0 {
            let v = rng.random_range(0..5i64);
            OpSpec::new("write", pair(k, Edn::Int(v)), false)
        } else {
            let from = rng.random_range(0..5i64);
            let to = rng.random_range(0..5i64);
            let ft = Edn::Vector(vec![Edn::Int(from), Edn::Int(to)]);
            OpSpec::new("cas", pair(k, ft), false)
        }
    }

    fn final_op(&self, _ctx: Ctx) -> Option<OpSpec> {
        None
    }
}

#[derive(Clone)]
struct KvClient;

const READ_OK: Schema = Schema {
    reply_type: "read_ok",
    fields: &[Field {
        name: "value",
        ty: FieldType::Any,
    }],
};

const WRITE_OK: Schema = Schema {
    reply_type: "write_ok",
    fields: &[],
};

const CAS_OK: Schema = Schema {
    reply_type: "cas_ok",
    fields: &[],
};

/// The key and the rest of an op's `[k v]` tuple.
fn split(op: &OpSpec) -> (Value, &Edn) {
    match &op.value {
        Edn::Vector(kv) if kv.len() == 2 => (kv[0].to_json(), &kv[1]),
        other => (Value::Null, other),
    }
}

impl Client for KvClient {
    fn request(&mut self, op: &OpSpec) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("type".into(), op.f.into());
        let (key, v) = split(op);
        m.insert("key".into(), key);
        match (op.f, v) {
            ("write", v) => {
                m.insert("value".into(), v.to_json());
            }
            ("cas", Edn::Vector(ft)) if ft.len() == 2 => {
                m.insert("from".into(), ft[0].to_json());
                m.insert("to".into(), ft[1].to_json());
            }
            _ => {}
        }
        m
    }

    fn reply_schema(&self, f: &str) -> Schema {
        match f {
            "read" => READ_OK,
            "write" => WRITE_OK,
            _ => CAS_OK,
        }
    }

    fn ok_value(&mut self, op: &OpSpec, reply: &Value) -> Edn {
        match (op.f, &op.value) {
            ("read", Edn::Vector(kv)) if kv.len() == 2 => Edn::Vector(vec![
                kv[0].clone(),
                reply.get("value").map_or(Edn::Nil, Edn::from_json),
            ]),
            _ => op.value.clone(),
        }
    }

    fn errors(&self) -> ErrorPolicy {
        ErrorPolicy::WithErrors {
            idempotent: &["read"],
        }
    }
}

struct Linearizable(Budget);

impl Checker for Linearizable {
    fn check(&self, history: &History) -> Edn {
        check_independent_cas(history, self.0)
    }

    fn check_files(&self, history: &History) -> (Edn, Vec<crate::checker::Artifact>) {
        crate::checker::linearizable::check_files(history, self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearsay_core::rng;

    fn ctx(thread: usize, process: u64) -> Ctx {
        Ctx {
            thread,
            process,
            time_ns: 0,
        }
    }

    fn key(op: &OpSpec) -> i64 {
        match &op.value {
            Edn::Vector(kv) => match kv[0] {
                Edn::Int(k) => k,
                _ => panic!("key {op:?}"),
            },
            _ => panic!("value {op:?}"),
        }
    }

    #[test]
    fn concurrency_must_be_a_multiple_of_two_n() {
        assert!(check_concurrency(3, 6).is_ok());
        assert!(check_concurrency(3, 12).is_ok());
        assert!(check_concurrency(3, 3).unwrap_err().contains("2n"));
        assert!(check_concurrency(3, 9).unwrap_err().contains("multiple"));
        assert!(check_concurrency(10, 20).is_ok());
        assert!(check_concurrency(11, 22).unwrap_err().contains("never"));
    }

    #[test]
    fn readers_are_the_first_n_threads_and_groups_get_their_own_keys() {
        let mut g = Registers::new(2);
        let mut r = rng::child(1, "ops");
        // 8 threads, 2 nodes: groups {0..4} on key 0 and {4..8} on key 1.
        for t in 0..8 {
            let op = g.next_op(ctx(t, t as u64), &mut r);
            assert_eq!(key(&op), (t / 4) as i64, "{op:?}");
            assert_eq!(op.f == "read", t < 2, "thread {t}: {op:?}");
        }
        // Group 1 has no readers at all (Jepsen's reserve counts absolute
        // thread ids).
        let fs: BTreeSet<&str> = (0..300)
            .map(|i| g.next_op(ctx(4 + i % 4, (4 + i % 4) as u64), &mut r).f)
            .collect();
        assert_eq!(fs, BTreeSet::from(["cas", "write"]));
    }

    #[test]
    fn values_and_mix_follow_jepsen() {
        let mut g = Registers::new(1);
        let mut r = rng::child(2, "ops");
        let (mut w, mut c) = (0, 0);
        for _ in 0..3000 {
            let op = g.next_op(ctx(1, 1), &mut r);
            match (op.f, &op.value) {
                ("write", Edn::Vector(kv)) => {
                    w += 1;
                    assert!(matches!(kv[1], Edn::Int(0..=4)));
                }
                ("cas", Edn::Vector(kv)) => {
                    c += 1;
                    let Edn::Vector(ft) = &kv[1] else { panic!() };
                    assert!(ft.iter().all(|v| matches!(v, Edn::Int(0..=4))));
                }
                other => panic!("{other:?}"),
            }
        }
        assert!((900..1100).contains(&w), "writes {w}");
        assert_eq!(w + c, 3000);
    }

    #[test]
    fn a_key_is_abandoned_after_enough_crashes_in_its_group() {
        // 2 nodes: 4 threads, 4 processes; the 17th crash makes 21.
        let mut g = Registers::new(2);
        let mut r = rng::child(3, "ops");
        let mut procs: Vec<u64> = (0..4).collect();
        for (t, &p) in procs.iter().enumerate() {
            assert_eq!(key(&g.next_op(ctx(t, p), &mut r)), 0);
        }
        for crash in 1..=17 {
            let t = crash % 4;
            procs[t] += 4;
            let k = key(&g.next_op(ctx(t, procs[t]), &mut r));
            assert_eq!(k, if crash < 17 { 0 } else { 1 }, "crash {crash}");
        }
        // The fresh key starts counting from the group's current processes.
        for (t, &p) in procs.iter().enumerate() {
            assert_eq!(key(&g.next_op(ctx(t, p), &mut r)), 1);
        }
    }

    #[test]
    fn requests_and_recorded_values() {
        let mut c = KvClient;
        let cas = OpSpec::new(
            "cas",
            pair(3, Edn::Vector(vec![Edn::Int(1), Edn::Int(2)])),
            false,
        );
        assert_eq!(
            Value::Object(c.request(&cas)),
            serde_json::json!({"type": "cas", "key": 3, "from": 1, "to": 2})
        );
        let w = OpSpec::new("write", pair(0, Edn::Int(4)), false);
        assert_eq!(
            Value::Object(c.request(&w)),
            serde_json::json!({"type": "write", "key": 0, "value": 4})
        );
        let read = OpSpec::new("read", pair(2, Edn::Nil), false);
        assert_eq!(
            Value::Object(c.request(&read)),
            serde_json::json!({"type": "read", "key": 2})
        );
        let ok = serde_json::json!({"type": "read_ok", "value": 3, "in_reply_to": 1});
        assert_eq!(c.ok_value(&read, &ok), pair(2, Edn::Int(3)));
        // `value` is required even when null.
        let null = serde_json::json!({"type": "read_ok", "value": null, "in_reply_to": 1});
        assert!(READ_OK.check(&null).is_ok());
        let missing = serde_json::json!({"type": "read_ok", "in_reply_to": 1});
        assert!(READ_OK.check(&missing).is_err());
        assert_eq!(c.ok_value(&w, &serde_json::json!({})), w.value);
    }
}
