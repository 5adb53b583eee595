//! The kafka workload (maelstrom-spec-more.md 3): append-only logs named by
//! decimal-string keys. Clients `send` messages (the integers 1 to
//! `--max-writes-per-key` per key), `poll` from their local offsets and
//! commit what they read, and `assign` themselves keys; a stream of `crash`
//! ops replaces clients, and a final phase has every worker poll from the
//! beginning until it has seen every acknowledged offset. Judged by
//! [`crate::checker::kafka`], Jepsen's kafka checker.
//!
//! Not here: `subscribe` and multi-micro-op transactions (Maelstrom runs
//! Jepsen's workload with `txn? false` and `sub-via #{:assign}`).

use super::schema::{Field, FieldType, Schema};
use super::txn::WrTxns;
use super::{Checker, Client, Ctx, ErrorPolicy, Generator, OpSpec, TxnOptions, Workload};
use crate::checker::kafka::lag::{key_text, max_offsets};
use crate::edn::{Edn, kw};
use crate::history::{History, Op, OpType};
use hearsay_core::rng::{Rng, RngExt};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// Jepsen's `crash-client-interval`: a client crash every 30 s / concurrency
/// on average.
pub const CRASH_INTERVAL: Duration = Duration::from_secs(30);
/// Jepsen's `sub-p`: the odds an op is replaced by an assign of its key.
pub const ASSIGN_ODDS: u32 = 64;
/// Maelstrom clips the final polls to this.
pub const FINAL_LIMIT: Duration = Duration::from_secs(10);
/// Final polls are staggered by `gen/stagger 1/5`: gaps uniform in
/// [0, 0.4 s).
const FINAL_POLL_GAP_NS: u64 = 400_000_000;

/// What `-w kafka` takes: the txn workloads' `--key-count` and
/// `--max-writes-per-key` (its `--max-txn-length` is ignored: one micro-op
/// per op), and the worker count, which sets how often clients crash.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KafkaOptions {
    pub txn: TxnOptions,
    /// `--concurrency` as resolved; `None`: one worker per node (`1n`).
    pub concurrency: Option<usize>,
}

pub(super) fn workload(o: KafkaOptions, nodes: usize) -> Workload {
    let concurrency = o.concurrency.unwrap_or(nodes).max(1);
    Workload::new(
        "kafka",
        Logs::new(o.txn, concurrency),
        KafkaClient::default(),
        Kafka { concurrency },
    )
}

struct Kafka {
    /// Processes per thread, for the lag plots' thread groups.
    concurrency: usize,
}

impl Checker for Kafka {
    fn check(&self, history: &History) -> crate::edn::Edn {
        crate::checker::kafka::check(history)
    }

    fn check_files(&self, history: &History) -> (crate::edn::Edn, Vec<crate::checker::Artifact>) {
        crate::checker::kafka::check_files(history, Default::default(), self.concurrency)
    }
}

/// A base op from the list-append generator: a poll (whose key only
/// matters for assigns) or a send of `v` to `k`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Base {
    Poll(i64),
    Send(i64, i64),
}

impl Base {
    fn key(self) -> i64 {
        match self {
            Base::Poll(k) | Base::Send(k, _) => k,
        }
    }

    fn op(self) -> OpSpec {
        match self {
            Base::Poll(_) => OpSpec::new("poll", poll_value(), false),
            Base::Send(k, v) => OpSpec::new(
                "send",
                Edn::Vector(vec![Edn::Vector(vec![
                    kw("send"),
                    Edn::Str(k.to_string()),
                    Edn::Int(v),
                ])]),
                false,
            ),
        }
    }
}

/// `[[:poll]]`, a poll's invocation value.
fn poll_value() -> Edn {
    Edn::Vector(vec![Edn::Vector(vec![kw("poll")])])
}

fn keys_value<'a>(keys: impl IntoIterator<Item = &'a String>) -> Edn {
    Edn::Vector(keys.into_iter().map(|k| Edn::Str(k.clone())).collect())
}

/// Keys in Jepsen's order: the generator's keys are integers.
fn key_order(a: &String, b: &String) -> std::cmp::Ordering {
    (a.parse::<i64>().ok(), a).cmp(&(b.parse::<i64>().ok(), b))
}

/// One worker's final sequence (Jepsen's `final-polls`, one copy per
/// thread): crash, assign every target key from the beginning, then poll
/// until this thread's ok polls have reached every target offset.
#[derive(Debug)]
struct FinalPolls {
    targets: BTreeMap<String, i64>,
    assigned: bool,
    /// When the next poll is due (history ns): `gen/stagger` counts gaps
    /// from the previous due time, not from the last completion.
    due: Option<u64>,
}

/// Jepsen's kafka generator stack as Maelstrom builds it (spec 3.3).
struct Logs {
    base: WrTxns,
    /// The op an assign stood in for: it comes next, not consumed.
    pending: Option<Base>,
    crash_gap_ns: u64,
    /// When the next crash op is due; the first is at the first request.
    next_crash: Option<u64>,
    /// `poll-unseen`: highest offsets acknowledged to ok sends and seen by
    /// ok polls, for keys not yet caught up.
    sent: BTreeMap<String, i64>,
    polled: BTreeMap<String, i64>,
    /// `track-key-offsets`: the highest offset per key any ok op touched.
    max_offsets: BTreeMap<String, i64>,
    /// The final phase's targets, frozen when it starts.
    targets: Option<BTreeMap<String, i64>>,
    finals: BTreeMap<usize, FinalPolls>,
}

impl Logs {
    fn new(opts: TxnOptions, concurrency: usize) -> Logs {
        let single = TxnOptions {
            max_txn_length: 1,
            ..opts
        };
        let gap = 2 * CRASH_INTERVAL.as_nanos() as u64 / concurrency as u64;
        Logs {
            base: WrTxns::new(single, "append"),
            pending: None,
            crash_gap_ns: gap.max(1),
            next_crash: None,
            sent: BTreeMap::new(),
            polled: BTreeMap::new(),
            max_offsets: BTreeMap::new(),
            targets: None,
            finals: BTreeMap::new(),
        }
    }

    fn draw(&mut self, rng: &mut Rng) -> Base {
        let txn = self.base.next_txn(rng);
        let Some(Edn::Vector(m)) = txn.first() else {
            return Base::Poll(0);
        };
        match (&m[0], &m[1], &m[2]) {
            (Edn::Keyword(f), Edn::Int(k), Edn::Int(v)) if f == "append" => Base::Send(*k, *v),
            (_, Edn::Int(k), _) => Base::Poll(*k),
            _ => Base::Poll(0),
        }
    }

    /// `poll-unseen`'s rewrite: about a third of assigns, while some key
    /// has unseen offsets, also take every such key.
    fn catch_up(&self, rng: &mut Rng, op: &mut OpSpec) {
        let coin = rng.random_range(0..3u32) == 0;
        if !coin || self.sent.is_empty() || op.f != "assign" {
            return;
        }
        let Edn::Vector(own) = &op.value else { return };
        let mut keys: Vec<Edn> = self.sent.keys().map(|k| Edn::Str(k.clone())).collect();
        for k in own {
            if !keys.contains(k) {
                keys.push(k.clone());
            }
        }
        // Jepsen also tags the op `:unseen {k {:polled p :sent s}}`; a
        // hearsay op has no field to carry it.
        op.value = Edn::Vector(keys);
    }

    /// `poll-unseen`'s update: merge, then forget keys caught up on.
    fn track_unseen(&mut self, op: &Op) {
        // An op either sends or polls: its offsets go to one side.
        let side = if op.f == "send" {
            &mut self.sent
        } else {
            &mut self.polled
        };
        for (k, o) in max_offsets(op) {
            merge_max(side, k, o);
        }
        let caught_up: Vec<String> = self
            .sent
            .keys()
            .chain(self.polled.keys())
            .filter(|k| {
                self.polled.get(*k).copied().unwrap_or(-1)
                    >= self.sent.get(*k).copied().unwrap_or(-1)
            })
            .cloned()
            .collect();
        for k in caught_up {
            self.sent.remove(&k);
            self.polled.remove(&k);
        }
    }

    fn final_state(&mut self, thread: usize) -> &mut FinalPolls {
        let targets = self
            .targets
            .get_or_insert_with(|| self.max_offsets.clone())
            .clone();
        self.finals.entry(thread).or_insert_with(|| FinalPolls {
            targets,
            assigned: false,
            due: None,
        })
    }
}

fn merge_max(m: &mut BTreeMap<String, i64>, k: String, o: i64) {
    let e = m.entry(k).or_insert(o);
    *e = (*e).max(o);
}

impl Generator for Logs {
    fn next_op(&mut self, ctx: Ctx, rng: &mut Rng) -> OpSpec {
        // `gen/any` with the crash stream, which staggers from its first op.
        let due = *self.next_crash.get_or_insert(ctx.time_ns);
        if ctx.time_ns >= due {
            self.next_crash = Some(due + rng.random_range(0..self.crash_gap_ns));
            return OpSpec::new("crash", Edn::Nil, false);
        }
        let base = match self.pending.take() {
            Some(b) => b,
            None => self.draw(rng),
        };
        let mut op = if rng.random_range(0..ASSIGN_ODDS) == 0 {
            self.pending = Some(base);
            OpSpec::new("assign", keys_value([&base.key().to_string()]), false)
        } else {
            base.op()
        };
        self.catch_up(rng, &mut op);
        op
    }

    fn observe(&mut self, ctx: Ctx, op: &Op) {
        if op.kind != OpType::Ok {
            return;
        }
        if op.final_ {
            // Jepsen's FinalPolls sees only its own thread's polls.
            if op.f == "poll" {
                let offsets = max_offsets(op);
                let state = self.final_state(ctx.thread);
                for (k, seen) in offsets {
                    if state.targets.get(&k).is_some_and(|t| *t <= seen) {
                        state.targets.remove(&k);
                    }
                }
            }
            return;
        }
        self.track_unseen(op);
        for (k, o) in max_offsets(op) {
            merge_max(&mut self.max_offsets, k, o);
        }
    }

    fn final_op(&self, _ctx: Ctx) -> Option<OpSpec> {
        // Nothing acknowledged or seen: no final polls at all.
        let targets = self.targets.as_ref().unwrap_or(&self.max_offsets);
        (!targets.is_empty()).then(|| OpSpec::new("crash", Edn::Nil, true))
    }

    fn final_next(&mut self, ctx: Ctx, rng: &mut Rng) -> Option<(OpSpec, u64)> {
        let state = self.final_state(ctx.thread);
        if state.targets.is_empty() {
            return None;
        }
        if !state.assigned {
            state.assigned = true;
            let mut keys: Vec<&String> = state.targets.keys().collect();
            keys.sort_by(|a, b| key_order(a, b));
            // Final, so the client seeks to the beginning.
            return Some((OpSpec::new("assign", keys_value(keys), true), 0));
        }
        let at = match state.due {
            None => ctx.time_ns,
            Some(prev) => prev + rng.random_range(0..FINAL_POLL_GAP_NS),
        };
        state.due = Some(at);
        let poll = OpSpec::new("poll", poll_value(), true);
        Some((poll, at.saturating_sub(ctx.time_ns)))
    }

    fn final_limit(&self) -> Option<Duration> {
        Some(FINAL_LIMIT)
    }
}

/// One process's consumer: the next offset to poll, per assigned key.
#[derive(Clone, Debug, Default)]
struct KafkaClient {
    offsets: BTreeMap<String, i64>,
}

const SEND_OK: Schema = Schema {
    reply_type: "send_ok",
    fields: &[Field {
        name: "offset",
        ty: FieldType::Int,
    }],
};

const POLL_OK: Schema = Schema {
    reply_type: "poll_ok",
    fields: &[Field {
        name: "msgs",
        ty: FieldType::OffsetMsgsMap,
    }],
};

const COMMIT_OFFSETS_OK: Schema = Schema {
    reply_type: "commit_offsets_ok",
    fields: &[],
};

const LIST_COMMITTED_OFFSETS_OK: Schema = Schema {
    reply_type: "list_committed_offsets_ok",
    fields: &[Field {
        name: "offsets",
        ty: FieldType::IntMap,
    }],
};

/// The keys of an assign op.
fn assigned_keys(op: &OpSpec) -> Vec<String> {
    match &op.value {
        Edn::Vector(ks) | Edn::List(ks) => ks.iter().map(key_text).collect(),
        _ => Vec::new(),
    }
}

fn int_of(v: &Value) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.as_u64().map(|u| i64::try_from(u).unwrap_or(i64::MAX)))
}

/// Per key of a poll reply, the highest offset returned (`None`: none).
fn highest_polled(reply: &Value) -> Vec<(String, Option<i64>)> {
    let Some(Value::Object(msgs)) = reply.get("msgs") else {
        return Vec::new();
    };
    msgs.iter()
        .map(|(k, pairs)| {
            let max = pairs
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p.get(0).and_then(int_of))
                .max();
            (k.clone(), max)
        })
        .collect()
}

impl KafkaClient {
    /// Local offsets := max(local, highest returned + 1), keys added; a
    /// key returned empty starts at 0.
    fn advance(&mut self, reply: &Value) {
        for (k, max) in highest_polled(reply) {
            let next = max.map_or(0, |m| m.saturating_add(1));
            merge_max(&mut self.offsets, k, next);
        }
    }
}

impl Client for KafkaClient {
    fn request(&mut self, op: &OpSpec) -> Map<String, Value> {
        let mut m = Map::new();
        match op.f {
            "send" => {
                m.insert("type".into(), "send".into());
                let (k, v) = match &op.value {
                    Edn::Vector(mops) => match mops.first() {
                        Some(Edn::Vector(mop)) if mop.len() == 3 => {
                            (mop[1].to_json(), mop[2].to_json())
                        }
                        _ => (Value::Null, Value::Null),
                    },
                    _ => (Value::Null, Value::Null),
                };
                m.insert("key".into(), k);
                m.insert("msg".into(), v);
            }
            "poll" => {
                m.insert("type".into(), "poll".into());
                let offsets: Map<String, Value> = self
                    .offsets
                    .iter()
                    .map(|(k, o)| (k.clone(), (*o).into()))
                    .collect();
                m.insert("offsets".into(), Value::Object(offsets));
            }
            // An assign that does not seek asks for committed offsets.
            _ => {
                m.insert("type".into(), "list_committed_offsets".into());
                let keys = assigned_keys(op).into_iter().map(Value::String).collect();
                m.insert("keys".into(), Value::Array(keys));
            }
        }
        m
    }

    fn reply_schema(&self, f: &str) -> Schema {
        match f {
            "send" => SEND_OK,
            "poll" => POLL_OK,
            _ => LIST_COMMITTED_OFFSETS_OK,
        }
    }

    fn ok_value(&mut self, op: &OpSpec, reply: &Value) -> Edn {
        match op.f {
            "send" => {
                let Edn::Vector(mops) = &op.value else {
                    return op.value.clone();
                };
                let Some(Edn::Vector(mop)) = mops.first() else {
                    return op.value.clone();
                };
                let offset = reply.get("offset").map_or(Edn::Nil, Edn::from_json);
                let pair = Edn::Vector(vec![offset, mop[2].clone()]);
                Edn::Vector(vec![Edn::Vector(vec![kw("send"), mop[1].clone(), pair])])
            }
            "poll" => {
                self.advance(reply);
                let msgs = reply.get("msgs").map_or(Edn::Nil, Edn::from_json);
                Edn::Vector(vec![Edn::Vector(vec![kw("poll"), msgs])])
            }
            _ => {
                // Maelstrom's lookup bug (spec 3.2): the committed offset is
                // looked up in the whole reply body, by string key, and is
                // never found; a new key starts at 0.
                let keys = assigned_keys(op);
                self.offsets = keys
                    .into_iter()
                    .map(|k| {
                        let o = self.offsets.get(&k).copied().unwrap_or(0);
                        (k, o)
                    })
                    .collect();
                op.value.clone()
            }
        }
    }

    fn local(&mut self, op: &OpSpec) -> Option<(OpType, Edn)> {
        match op.f {
            "crash" => Some((OpType::Info, Edn::Nil)),
            // The final assign seeks to the beginning of every key.
            "assign" if op.final_ => {
                self.offsets = assigned_keys(op).into_iter().map(|k| (k, 0)).collect();
                Some((OpType::Ok, op.value.clone()))
            }
            _ => None,
        }
    }

    fn then(&mut self, op: &OpSpec, reply: &Value) -> Option<(Map<String, Value>, Schema)> {
        if op.f != "poll" {
            return None;
        }
        // Advanced here as well as in ok_value: a refused commit fails the
        // poll after the offsets moved (spec 9, quirk 7).
        self.advance(reply);
        let commit: Map<String, Value> = highest_polled(reply)
            .into_iter()
            .filter_map(|(k, max)| Some((k, max?.max(0).into())))
            .collect();
        if commit.is_empty() {
            return None;
        }
        let mut m = Map::new();
        m.insert("type".into(), "commit_offsets".into());
        m.insert("offsets".into(), Value::Object(commit));
        Some((m, COMMIT_OFFSETS_OK))
    }

    fn errors(&self) -> ErrorPolicy {
        ErrorPolicy::WithErrors {
            idempotent: &["assign"],
        }
    }
}

#[cfg(test)]
mod tests;
