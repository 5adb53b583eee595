//! Jepsen's kafka checker (`jepsen.tests.kafka/checker`, v0.3.7;
//! maelstrom-spec-more.md 3.4-3.5) over send and poll ops: version orders
//! per key from offsets, then the non-cycle error types (inconsistent
//! offsets, duplicates, aborted reads, lost writes, skips and
//! nonmonotonic polls and sends, unseen messages), the cycle anomalies Elle
//! finds over wr and realtime edges, the worst realtime lag, and the
//! verdict: valid iff every error type is in the allowed set.
//! The files it writes beside the result are [`files`]'s.

mod cases;
mod files;
pub(crate) mod lag;
mod log;

use super::elle::{self, Anomalies, Budget, DataExplainer, DataStep, DepGraph, Rels, Txns};
use crate::checker::Artifact;
use crate::edn::{Edn, kw, map};
use crate::history::{History, Op, OpType, Process};
use cases::Case;
use log::{Interner, KOp, Order};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Error types that never invalidate a Maelstrom kafka test (no
/// subscribe, no ww-deps).
pub const ALLOWED: &[&str] = &[
    "int-send-skip",
    "G0",
    "G0-process",
    "G0-realtime",
    "PL-1-cycle-exists",
    "strong-PL-1-cycle-exists",
];

/// Unseen messages listed per key (Jepsen's `condense-error`).
const KEEP_UNSEEN_MESSAGES: usize = 32;

/// The checker's `:workload` result.
pub fn check(history: &History) -> Edn {
    check_with(history, Budget::default())
}

/// [`check`] with an explicit cycle-search budget.
pub fn check_with(history: &History, budget: Budget) -> Edn {
    checked(history, budget, None).0
}

/// [`check_with`], and the files Jepsen writes beside the result
/// (`concurrency` groups processes into threads for the lag plots).
pub fn check_files(
    history: &History,
    budget: Budget,
    concurrency: usize,
) -> (Edn, Vec<crate::checker::Artifact>) {
    checked(history, budget, Some(concurrency))
}

fn checked(
    history: &History,
    budget: Budget,
    files: Option<usize>,
) -> (Edn, Vec<crate::checker::Artifact>) {
    match Analysis::new(history) {
        Ok(a) => a.result(budget, files),
        Err(Thrown { class, message }) => (elle::unknown(class, &message), Vec::new()),
    }
}

/// What Jepsen's analysis would have thrown: the result is `:unknown`.
#[derive(Debug)]
struct Thrown {
    class: &'static str,
    message: String,
}

struct Analysis<'h> {
    history: &'h History,
    keys: Interner,
    msgs: Interner,
    ops: Vec<KOp>,
    /// Per key, messages read by ok polls.
    ok_reads: BTreeMap<u32, BTreeSet<u32>>,
    /// Per key, messages sent by failed sends.
    failed: BTreeMap<u32, BTreeSet<u32>>,
    orders: BTreeMap<u32, Order>,
    /// Per key and message, the (last) send completion that carried it.
    writer_of: HashMap<(u32, u32), usize>,
    /// Per key and message, the completions that polled it.
    readers_of: HashMap<(u32, u32), Vec<usize>>,
    errors: BTreeMap<&'static str, Vec<Case>>,
}

fn seq(v: &Edn) -> Option<&[Edn]> {
    match v {
        Edn::Vector(xs) | Edn::List(xs) => Some(xs),
        _ => None,
    }
}

fn index_out_of_bounds(offset: i64) -> Thrown {
    Thrown {
        class: "java.lang.IndexOutOfBoundsException",
        message: format!("offset {offset} cannot index a log"),
    }
}

impl<'h> Analysis<'h> {
    fn new(history: &'h History) -> Result<Analysis<'h>, Thrown> {
        let mut a = Analysis {
            history,
            keys: Interner::default(),
            msgs: Interner::default(),
            ops: Vec::new(),
            ok_reads: BTreeMap::new(),
            failed: BTreeMap::new(),
            orders: BTreeMap::new(),
            writer_of: HashMap::new(),
            readers_of: HashMap::new(),
            errors: BTreeMap::new(),
        };
        for op in history.client_ops() {
            if op.kind != OpType::Invoke {
                a.parse(op);
            }
        }
        a.index()?;
        Ok(a)
    }

    fn parse(&mut self, op: &Op) {
        let mut k = KOp {
            index: op.index,
            kind: op.kind,
            process: op.process,
            f: op.f,
            write: None,
            reads: Vec::new(),
            assign: Vec::new(),
        };
        let mop = seq(&op.value).and_then(|m| m.first()).and_then(seq);
        match (op.f, mop) {
            ("send", Some([_, key, v])) => {
                let key = self.keys.id(key);
                // `[offset msg]` once acknowledged, the bare message if not.
                let (offset, msg) = match seq(v) {
                    Some([Edn::Int(o), m]) => (Some(*o), m),
                    Some([_, m]) => (None, m),
                    _ => (None, v),
                };
                k.write = Some((key, self.msgs.id(msg), offset));
            }
            ("poll", Some([_, Edn::Map(by_key)])) => {
                for (key, pairs) in by_key {
                    let key = self.keys.id(key);
                    let pairs = seq(pairs)
                        .unwrap_or_default()
                        .iter()
                        .map(|p| match seq(p) {
                            Some([Edn::Int(o), m]) => (Some(*o), self.msgs.id(m)),
                            Some([_, m]) => (None, self.msgs.id(m)),
                            _ => (None, self.msgs.id(p)),
                        })
                        .collect();
                    k.reads.push((key, pairs));
                }
            }
            ("assign", _) => {
                k.assign = seq(&op.value)
                    .unwrap_or_default()
                    .iter()
                    .map(|key| self.keys.id(key))
                    .collect();
            }
            ("send" | "poll", _) => {}
            _ => return,
        }
        self.ops.push(k);
    }

    /// Reads and writes by type, writers and readers, version orders.
    fn index(&mut self) -> Result<(), Thrown> {
        for (i, op) in self.ops.iter().enumerate() {
            if let Some((k, v, _)) = op.write {
                self.writer_of.insert((k, v), i);
                if op.kind == OpType::Fail {
                    self.failed.entry(k).or_default().insert(v);
                }
            }
            for (k, pairs) in &op.reads {
                let seen = self.ok_reads.entry(*k).or_default();
                for &(_, v) in pairs {
                    if op.kind == OpType::Ok {
                        seen.insert(v);
                    }
                    self.readers_of.entry((*k, v)).or_default().push(i);
                }
            }
        }
        for i in 0..self.ops.len() {
            let committed = self.must_have_committed(&self.ops[i]);
            let op = &self.ops[i];
            if committed && let Some((k, v, Some(o))) = op.write {
                if o < 0 {
                    return Err(index_out_of_bounds(o));
                }
                self.orders.entry(k).or_default().add(o, v);
            }
            for (k, pairs) in &op.reads {
                for &(o, v) in pairs {
                    let Some(o) = o else { continue };
                    if o < 0 {
                        return Err(index_out_of_bounds(o));
                    }
                    self.orders.entry(*k).or_default().add(o, v);
                }
            }
        }
        for o in self.orders.values_mut() {
            o.seal();
        }
        Ok(())
    }

    /// Ok, or info with some message an ok poll read.
    fn must_have_committed(&self, op: &KOp) -> bool {
        match op.kind {
            OpType::Ok => true,
            OpType::Info => op
                .write
                .is_some_and(|(k, v, _)| self.ok_reads.get(&k).is_some_and(|s| s.contains(&v))),
            _ => false,
        }
    }

    fn key(&self, k: u32) -> Edn {
        self.keys.get(k).clone()
    }

    fn msg(&self, v: u32) -> Edn {
        self.msgs.get(v).clone()
    }

    fn op_edn(&self, i: usize) -> Edn {
        self.history.ops()[self.ops[i].index].to_edn()
    }

    fn push(&mut self, kind: &'static str, case: Case) {
        self.errors.entry(kind).or_default().push(case);
    }

    /// The writer of `v` in `k`, or what Jepsen throws without one.
    fn writer(&self, k: u32, v: u32) -> Result<usize, Thrown> {
        self.writer_of.get(&(k, v)).copied().ok_or_else(|| Thrown {
            class: "clojure.lang.ExceptionInfo",
            message: format!(
                "throw+: {{:type :no-writer-of-value, :key {}, :value {}}}",
                self.key(k).compact(),
                self.msg(v).compact()
            ),
        })
    }

    /// The messages strictly between two in `k`'s version order.
    fn skipped(&self, k: u32, from: Option<u32>, to: Option<u32>) -> Edn {
        let Some(o) = self.orders.get(&k) else {
            return Edn::Vector(vec![]);
        };
        match (from.and_then(|v| o.index(v)), to.and_then(|v| o.index(v))) {
            (Some(i1), Some(i2)) if i1 < i2 => Edn::Vector(
                o.by_index[i1 + 1..i2]
                    .iter()
                    .map(|v| self.msg(*v))
                    .collect(),
            ),
            _ => Edn::Vector(vec![]),
        }
    }

    /// The verdict, and with a concurrency (threads for the lag plots)
    /// the files.
    fn result(mut self, budget: Budget, files: Option<usize>) -> (Edn, Vec<Artifact>) {
        self.inconsistent_offsets();
        self.duplicates();
        self.g1a();
        if let Err(t) = self.lost_writes() {
            return (elle::unknown(t.class, &t.message), Vec::new());
        }
        self.poll_order();
        self.send_order();
        self.internal_polls();
        let (unseen, series) = self.unseen(files.is_some());
        let cycles = match self.cycles(budget) {
            Ok(c) => c,
            Err(t) => return (elle::unknown(t.class, &t.message), Vec::new()),
        };
        let Some(concurrency) = files else {
            let worst = lag::worst_of(self.history);
            return (self.verdict(unseen, worst, cycles), Vec::new());
        };
        let lags = lag::realtime_lags(self.history);
        let mut out = vec![Artifact {
            path: "consume-counts.edn".into(),
            body: files::consume_counts(self.history).pretty() + "\n",
        }];
        if let Some(svg) = files::unseen_plot(&self, &series) {
            out.push(Artifact {
                path: "unseen.svg".into(),
                body: svg,
            });
        }
        out.extend(files::lag_plots(self.history, &lags, concurrency));
        let at_end = series.last().map(|(_, m)| m.clone()).unwrap_or_default();
        for k in files::order_keys(&self, &at_end) {
            out.push(Artifact {
                path: files::order_path(&self.key(k)),
                body: files::order_svg(&self, k),
            });
        }
        let kinds: BTreeSet<&str> = cycles.kinds().into_iter().collect();
        out.extend(cycles.files(&kinds));
        let worst = lag::worst_realtime_lag(&lags);
        (self.verdict(unseen, worst, cycles), out)
    }

    /// An offset of a key observed holding two or more messages.
    fn inconsistent_offsets(&mut self) {
        let mut cases = Vec::new();
        for (&key, order) in &self.orders {
            for (index, (offset, vs)) in order.log.iter().enumerate() {
                if vs.len() > 1 {
                    cases.push(Case::Inconsistent {
                        key,
                        offset: *offset,
                        index,
                        values: vs.clone(),
                    });
                }
            }
        }
        for c in cases {
            self.push("inconsistent-offsets", c);
        }
    }

    /// A message at two or more offsets of one key.
    fn duplicates(&mut self) {
        let mut cases = Vec::new();
        for (&key, order) in &self.orders {
            let mut at: BTreeMap<u32, Vec<i64>> = BTreeMap::new();
            for (offset, vs) in &order.log {
                for v in vs {
                    at.entry(*v).or_default().push(*offset);
                }
            }
            for (value, offsets) in at.into_iter().filter(|(_, o)| o.len() > 1) {
                cases.push(Case::Duplicate {
                    key,
                    value,
                    offsets,
                });
            }
        }
        for c in cases {
            self.push("duplicate", c);
        }
    }

    /// An ok poll read a message whose send failed.
    fn g1a(&mut self) {
        let mut cases = Vec::new();
        for (reader, op) in self.ops.iter().enumerate() {
            if op.kind != OpType::Ok {
                continue;
            }
            for (key, pairs) in &op.reads {
                for &(_, value) in pairs {
                    if self.failed.get(key).is_some_and(|s| s.contains(&value)) {
                        cases.push(Case::G1a {
                            key: *key,
                            value,
                            writer: self.writer_of.get(&(*key, value)).copied(),
                            reader,
                        });
                    }
                }
            }
        }
        for c in cases {
            self.push("G1a", c);
        }
    }

    /// Messages before the highest one read (by first appearance) that no
    /// ok poll read, whose send must have committed.
    fn lost_writes(&mut self) -> Result<(), Thrown> {
        let empty = Order::default();
        let mut cases = Vec::new();
        for (&key, read) in &self.ok_reads {
            let order = self.orders.get(&key).unwrap_or(&empty);
            let mut first_index: HashMap<u32, usize> = HashMap::new();
            let mut last_index: HashMap<u32, usize> = HashMap::new();
            for (i, vs) in order.log.values().enumerate() {
                for &v in vs {
                    first_index.entry(v).or_insert(i);
                    last_index.insert(v, i);
                }
            }
            // Jepsen would fail to index its log here when a key was only
            // ever polled empty; hearsay skips the key.
            let Some(bound) = read
                .iter()
                .filter_map(|v| first_index.get(v))
                .max()
                .copied()
            else {
                continue;
            };
            // Each message at its last appearance, in index order.
            let last_index = &last_index;
            let must_read: Vec<u32> = order
                .log
                .values()
                .enumerate()
                .take(bound + 1)
                .flat_map(|(i, vs)| vs.iter().copied().filter(move |v| last_index[v] == i))
                .collect();
            let top = order
                .log
                .values()
                .nth(bound)
                .and_then(|vs| vs.iter().find(|v| last_index[*v] == bound))
                .copied();
            let max_read = top
                .and_then(|v| self.readers_of.get(&(key, v)))
                .and_then(|r| r.first())
                .copied();
            for value in must_read {
                if read.contains(&value) {
                    continue;
                }
                let writer = self.writer(key, value)?;
                if self.must_have_committed(&self.ops[writer]) {
                    cases.push(Case::LostWrite {
                        key,
                        value,
                        index: first_index[&value],
                        max_read_index: bound,
                        writer,
                        max_read,
                    });
                }
            }
        }
        for c in cases {
            self.push("lost-write", c);
        }
        Ok(())
    }

    /// The ops of each process, in history order.
    fn by_process(&self, keep: impl Fn(&KOp) -> bool) -> BTreeMap<Process, Vec<usize>> {
        let mut by: BTreeMap<Process, Vec<usize>> = BTreeMap::new();
        for (i, op) in self.ops.iter().enumerate().filter(|(_, o)| keep(o)) {
            by.entry(op.process).or_default().push(i);
        }
        by
    }

    /// Per process: consecutive ok polls of a key must continue where the
    /// last left off (an assign forgets keys it does not keep).
    fn poll_order(&mut self) {
        let (mut skips, mut backwards) = (Vec::new(), Vec::new());
        for ops in self.by_process(|_| true).values() {
            let mut last: BTreeMap<u32, usize> = BTreeMap::new();
            for &i in ops {
                let op = &self.ops[i];
                match (op.f, op.kind) {
                    ("assign", OpType::Ok | OpType::Info) => {
                        last.retain(|k, _| op.assign.contains(k));
                    }
                    ("poll", _) => {
                        for (key, pairs) in &op.reads {
                            let Some(&prev) = last.get(key) else { continue };
                            let from = self.ops[prev].read_values(*key).and_then(Iterator::last);
                            let to = pairs.first().map(|p| p.1);
                            let delta = self.orders.get(key).map_or(1, |o| o.delta(from, to));
                            let ops = (prev, i);
                            if delta > 1 {
                                skips.push(Case::Skip {
                                    key: *key,
                                    delta,
                                    from,
                                    to,
                                    ops,
                                });
                            } else if delta < 1 {
                                backwards.push(Case::Backwards {
                                    key: *key,
                                    values: (from, to),
                                    delta,
                                    ops,
                                });
                            }
                        }
                        if op.kind == OpType::Ok {
                            for (key, _) in &op.reads {
                                last.insert(*key, i);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        for c in skips {
            self.push("poll-skip", c);
        }
        for c in backwards {
            self.push("nonmonotonic-poll", c);
        }
    }

    /// Per process: consecutive ok or info sends to a key must not go
    /// backwards in the version order.
    fn send_order(&mut self) {
        let mut cases = Vec::new();
        let ops_of = self.by_process(|o| matches!(o.kind, OpType::Ok | OpType::Info));
        for ops in ops_of.values() {
            let mut last: BTreeMap<u32, usize> = BTreeMap::new();
            for &i in ops {
                let op = &self.ops[i];
                if op.f == "assign" {
                    last.retain(|k, _| op.assign.contains(k));
                    continue;
                }
                let Some((key, to, _)) = op.write else {
                    continue;
                };
                if let Some(&prev) = last.get(&key) {
                    let from = self.ops[prev].write.map(|w| w.1);
                    let delta = self.orders.get(&key).map_or(1, |o| o.delta(from, Some(to)));
                    if delta < 1 {
                        cases.push(Case::Backwards {
                            key,
                            values: (from, Some(to)),
                            delta,
                            ops: (prev, i),
                        });
                    }
                }
                last.insert(key, i);
            }
        }
        for c in cases {
            self.push("nonmonotonic-send", c);
        }
    }

    /// Inside one poll, consecutive messages of a key must be adjacent.
    fn internal_polls(&mut self) {
        let (mut skips, mut backwards) = (Vec::new(), Vec::new());
        for (op, o) in self.ops.iter().enumerate() {
            for (key, pairs) in &o.reads {
                let Some(order) = self.orders.get(key) else {
                    continue;
                };
                for w in pairs.windows(2) {
                    let values = (w[0].1, w[1].1);
                    let delta = order.delta(Some(values.0), Some(values.1));
                    let case = |skip| Case::Internal {
                        key: *key,
                        values,
                        delta,
                        op,
                        skip,
                    };
                    if delta > 1 {
                        skips.push(case(true));
                    } else if delta < 1 {
                        backwards.push(case(false));
                    }
                }
            }
        }
        for c in skips {
            self.push("int-poll-skip", c);
        }
        for c in backwards {
            self.push("int-nonmonotonic-poll", c);
        }
    }

    /// Jepsen's `unseen`, at the last ok send or poll: messages acked by ok
    /// sends that no ok poll returned. Reproduces its `merge-with`: a key
    /// only polled so far counts its polled messages as unseen until the
    /// next ok op.
    /// With `series`, also the count per key after every such op (the
    /// unseen plot; ops x keys, so only when the plot is drawn).
    fn unseen(&self, series_wanted: bool) -> (Option<Edn>, files::UnseenSeries) {
        let mut series = Vec::new();
        let mut sent: BTreeMap<u32, BTreeSet<u32>> = BTreeMap::new();
        let mut polled: BTreeMap<u32, BTreeSet<u32>> = BTreeMap::new();
        let mut time = None;
        for op in self
            .ops
            .iter()
            .filter(|o| o.kind == OpType::Ok && o.f != "assign")
        {
            time = Some(self.history.ops()[op.index].time);
            if let Some((k, v, _)) = op.write {
                sent.entry(k).or_default().insert(v);
            }
            for (k, pairs) in &op.reads {
                polled
                    .entry(*k)
                    .or_default()
                    .extend(pairs.iter().map(|p| p.1));
            }
            for (k, p) in &polled {
                match sent.get_mut(k) {
                    Some(s) => s.retain(|v| !p.contains(v)),
                    None => {
                        sent.insert(*k, p.clone());
                    }
                }
            }
            if let Some(t) = time.filter(|_| series_wanted) {
                series.push((t, sent.iter().map(|(k, s)| (*k, s.len())).collect()));
            }
        }
        let Some(time) = time else {
            return (None, series);
        };
        // Jepsen sorts keys and messages (`sorted-map`, `sort`).
        let mut rows: Vec<(Edn, Vec<Edn>)> = sent
            .iter()
            .filter(|(_, s)| !s.is_empty())
            .map(|(k, s)| (self.key(*k), s.iter().map(|v| self.msg(*v)).collect()))
            .collect();
        if rows.is_empty() {
            return (None, series);
        }
        rows.sort_by_cached_key(|(k, _)| sort_key(k));
        for (_, ms) in &mut rows {
            ms.sort_by_cached_key(sort_key);
        }
        let edn = map([
            ("time", Edn::from(time)),
            (
                "unseen",
                Edn::Map(
                    rows.iter()
                        .map(|(k, ms)| (k.clone(), Edn::from(ms.len())))
                        .collect(),
                ),
            ),
            (
                "messages",
                Edn::Map(
                    rows.into_iter()
                        .map(|(k, ms)| {
                            (
                                k,
                                Edn::List(ms.into_iter().take(KEEP_UNSEEN_MESSAGES).collect()),
                            )
                        })
                        .collect(),
                ),
            ),
        ]);
        (Some(edn), series)
    }

    /// Elle over sends and polls: wr edges (sender -> every other op that
    /// polled the message) and realtime edges, as for strict-serializable.
    fn cycles(&self, budget: Budget) -> Result<Anomalies, Thrown> {
        let vertex_ops: Vec<usize> = (0..self.ops.len())
            .filter(|&i| self.ops[i].f != "assign")
            .collect();
        let mut vertex_of = vec![u32::MAX; self.history.len()];
        let mut vertex_of_op = vec![u32::MAX; self.ops.len()];
        for (v, &i) in vertex_ops.iter().enumerate() {
            vertex_of[self.ops[i].index] = v as u32;
            vertex_of_op[i] = v as u32;
        }
        let mut edges = Vec::new();
        for (i, op) in self.ops.iter().enumerate() {
            for (k, pairs) in &op.reads {
                for &(_, v) in pairs {
                    let w = self.writer(*k, v)?;
                    if w != i {
                        edges.push((vertex_of_op[w], vertex_of_op[i], Rels::WR));
                    }
                }
            }
        }
        elle::realtime_edges(self.history, &vertex_of, &mut edges);
        let graph = DepGraph::new(vertex_ops.len(), edges);
        let hist_ops: Vec<usize> = vertex_ops.iter().map(|&i| self.ops[i].index).collect();
        let txns = Txns {
            history: self.history,
            ops: &hist_ops,
        };
        let explainer = WrExplainer {
            a: self,
            vertex_ops: &vertex_ops,
        };
        let mut anomalies = Anomalies::default();
        elle::cycles(&graph, &txns, &explainer, budget, &mut anomalies);
        Ok(anomalies)
    }

    fn verdict(mut self, unseen: Option<Edn>, worst_lag: Edn, cycles: Anomalies) -> Edn {
        let mut condensed: BTreeMap<String, Edn> = BTreeMap::new();
        let errors = std::mem::take(&mut self.errors);
        for (kind, cases) in errors {
            condensed.insert(kind.to_string(), cases::condense(kind, cases, &self));
        }
        for kind in cycles.kinds() {
            let value = match cycles.get(kind) {
                Some(found) => cases::condense_cycles(kind, found, cycles.count(kind)),
                // Elle's `:empty-transaction-graph true`.
                None => map([("count", Edn::Int(1)), ("errs", Edn::Bool(true))]),
            };
            condensed.insert(kind.to_string(), value);
        }
        if let Some(u) = unseen {
            condensed.insert("unseen".to_string(), u);
        }
        let types: Vec<&String> = condensed.keys().collect();
        let bad: Vec<&String> = types
            .iter()
            .copied()
            .filter(|t| !ALLOWED.contains(&t.as_str()))
            .collect();
        let list = |ts: &[&String]| Edn::List(ts.iter().map(|t| kw(t)).collect());
        let mut entries = vec![
            ("valid?".to_string(), Edn::Bool(bad.is_empty())),
            ("worst-realtime-lag".to_string(), worst_lag),
            ("bad-error-types".to_string(), list(&bad)),
            ("error-types".to_string(), list(&types)),
            ("info-txn-causes".to_string(), info_txn_causes(self.history)),
        ];
        entries.extend(condensed);
        map(entries)
    }
}

/// A stable order for messages and keys: integers numerically, then the
/// rest by their text (Jepsen sorts with `compare`).
fn sort_key(v: &Edn) -> (u8, i64, String) {
    match v {
        Edn::Int(i) => (0, *i, String::new()),
        other => (1, 0, other.compact()),
    }
}

/// Distinct `:error`s of indeterminate sends and polls, in history order.
fn info_txn_causes(history: &History) -> Edn {
    let mut out: Vec<Edn> = Vec::new();
    for op in history.client_ops() {
        if op.kind != OpType::Info || !matches!(op.f, "send" | "poll" | "txn") {
            continue;
        }
        let e = op.error.as_ref().unwrap_or(&Edn::Nil);
        if !out.contains(e) {
            out.push(e.clone());
        }
    }
    Edn::List(out)
}

/// Elle's wr explainer: the sender of a message precedes its pollers.
struct WrExplainer<'a, 'h> {
    a: &'a Analysis<'h>,
    vertex_ops: &'a [usize],
}

impl DataExplainer for WrExplainer<'_, '_> {
    fn explain(&self, rel: Rels, a: u32, b: u32) -> Option<DataStep> {
        if rel != Rels::WR {
            return None;
        }
        let (wa, rb) = (self.vertex_ops[a as usize], self.vertex_ops[b as usize]);
        let (k, v, _) = self.a.ops[wa].write?;
        let read = self.a.ops[rb].read_values(k)?.any(|x| x == v);
        read.then(|| DataStep {
            key: self.a.key(k),
            value: self.a.msg(v),
            value2: None,
            a_mop: Some(0),
            b_mop: Some(0),
        })
    }
}

#[cfg(test)]
mod tests;
