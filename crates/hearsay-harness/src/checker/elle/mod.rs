//! An Elle-style checker for transactional histories (maelstrom-spec-more.md
//! 4), shared by the txn workloads: build a dependency graph over
//! transactions, find its strongly connected components, search each for
//! example cycles of each anomaly type, and report what the requested
//! consistency models prohibit, in Elle 0.2.x's result map.
//!
//! What a datatype supplies (rw-register, list-append): the
//! ww / wr / rw edges it can infer, a [`DataExplainer`] saying why an edge
//! holds (in its own words and relation order), and its own non-cycle
//! anomalies. What lives here: the process and
//! realtime graphs, the consistency-model tables ([`model`]), cycle search
//! and classification ([`search`]), explanations and the result map.
//!
//! Elle's `elle/` directory: [`Anomalies::files`] gives `<type>.txt` (each
//! example cycle explained as Elle writes it) and `<type>/N.svg` (each
//! drawn), for the example cycles the result lists. Not here: Elle's
//! `sccs/` plots of whole components (they can hold thousands of
//! transactions; Elle itself skips the large ones).

pub mod atoms;
pub mod exists;
pub mod graph;
pub mod model;
pub mod search;

mod explain;

pub use explain::Drawing;
pub use graph::{DepGraph, Rels};
pub use search::Budget;

use crate::edn::{Edn, kw, map};
use crate::history::{History, OpType, Process};
use std::collections::{BTreeMap, BTreeSet};

/// Where each graph vertex came from: vertex `v` is the completion at
/// history index `ops[v]`.
pub struct Txns<'a> {
    pub history: &'a History,
    pub ops: &'a [usize],
}

/// Why `b` depends on `a` through one data relation.
#[derive(Clone, Debug, PartialEq)]
pub struct DataStep {
    pub key: Edn,
    pub value: Edn,
    /// `b`'s value, for ww and rw.
    pub value2: Option<Edn>,
    pub a_mop: Option<usize>,
    pub b_mop: Option<usize>,
}

/// A datatype's account of its ww, wr and rw edges.
pub trait DataExplainer {
    /// Why vertex `b` follows vertex `a` by `rel` (ww, wr or rw), or `None`
    /// if it does not.
    fn explain(&self, rel: Rels, a: u32, b: u32) -> Option<DataStep>;

    /// Which relation explains an edge carrying several (Elle's order of
    /// combining the datatype's graphs); rw-register's unless overridden.
    fn order(&self) -> search::Order {
        search::RW_REGISTER_ORDER
    }

    /// Elle's sentence for one step of `rel` from `an` to `bn`; the
    /// rw-register wording unless overridden.
    fn render(&self, rel: Rels, step: &DataStep, an: &str, bn: &str) -> String {
        explain::register_sentence(rel, step, an, bn)
    }
}

/// Cases listed per non-cycle anomaly type; the rest are counted under
/// `:anomaly-counts`.
pub const MAX_CASES: usize = 100;
/// Example cycles listed per type, the shortest first (Elle lists one per
/// component, however many components there are).
pub const MAX_CYCLES: usize = 8;

/// Anomalies found so far, by type.
#[derive(Debug, Default)]
pub struct Anomalies {
    cases: BTreeMap<&'static str, Vec<Edn>>,
    found: BTreeMap<&'static str, usize>,
    empty_graph: bool,
    /// The example cycles listed, as Elle writes and draws them.
    drawn: BTreeMap<&'static str, Vec<Drawing>>,
}

impl Anomalies {
    /// Records a case (listed while fewer than [`MAX_CASES`] are).
    pub fn push(&mut self, kind: &'static str, case: Edn) {
        *self.found.entry(kind).or_default() += 1;
        let list = self.cases.entry(kind).or_default();
        if list.len() < MAX_CASES {
            list.push(case);
        }
    }

    /// Elle's `:empty-transaction-graph true`.
    pub fn set_empty_graph(&mut self) {
        self.empty_graph = true;
    }

    /// Every type found, `empty-transaction-graph` included.
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut k: Vec<&'static str> = self.cases.keys().copied().collect();
        if self.empty_graph {
            k.push("empty-transaction-graph");
        }
        k.sort_unstable();
        k
    }

    pub fn is_empty(&self) -> bool {
        self.cases.is_empty() && !self.empty_graph
    }

    pub fn get(&self, kind: &str) -> Option<&[Edn]> {
        self.cases.get(kind).map(Vec::as_slice)
    }

    /// How many cases of `kind` were found (listed or not).
    pub fn count(&self, kind: &str) -> usize {
        self.found.get(kind).copied().unwrap_or(0)
    }

    /// Elle's `elle/` files for the cycle types in `kinds`: `<type>.txt`
    /// with every example cycle explained (`<type> #i`, then the binding
    /// and the steps; three newlines apart), and `<type>/<i>.svg`.
    pub fn files(&self, kinds: &BTreeSet<&str>) -> Vec<crate::checker::Artifact> {
        use crate::checker::Artifact;
        let mut out = Vec::new();
        for (kind, drawn) in &self.drawn {
            if drawn.is_empty() || !kinds.contains(kind) {
                continue;
            }
            let text: Vec<String> = drawn
                .iter()
                .enumerate()
                .map(|(i, d)| format!("{kind} #{i}\n{}", d.text))
                .collect();
            out.push(Artifact {
                path: format!("elle/{kind}.txt"),
                body: text.join("\n\n\n"),
            });
            for (i, d) in drawn.iter().enumerate() {
                out.push(Artifact {
                    path: format!("elle/{kind}/{i}.svg"),
                    body: d.svg(),
                });
            }
        }
        out
    }
}

/// `--consistency-models` as Elle's model names, or the error Elle throws
/// for a name it does not know.
pub fn parse_models(text: &str) -> Result<Vec<&'static str>, String> {
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for name in model::split_models(text) {
        match model::known(name) {
            Some(m) => known.push(m),
            None => unknown.push(format!(":{name}")),
        }
    }
    if unknown.is_empty() {
        return Ok(known);
    }
    let all: Vec<String> = model::all_models().map(|m| format!(":{m}")).collect();
    Err(format!(
        "Unknown consistency model ({}); known models are: #{{{}}}",
        unknown.join(" "),
        all.join(" ")
    ))
}

/// Anomalies that fail a test expecting `models`.
pub fn prohibited(models: &[&'static str]) -> BTreeSet<&'static str> {
    model::prohibited_by(models)
}

/// Anomalies worth reporting: the prohibited ones, plus the two that make
/// a result unknown.
pub fn reportable(models: &[&'static str]) -> BTreeSet<&'static str> {
    let mut r = prohibited(models);
    r.insert("empty-transaction-graph");
    r.insert("cycle-search-timeout");
    r
}

/// Which extra graph the models need (Elle's `additional-graphs`):
/// realtime if a reportable type has a `-realtime` variant, else process
/// if one has `-process`, else none.
pub fn extra_rels(models: &[&'static str]) -> Rels {
    let r = reportable(models);
    let has = |suffix: &str| {
        search::specs()
            .iter()
            .any(|s| s.name.ends_with(suffix) && r.contains(s.name))
    };
    if has("-realtime") {
        Rels::REALTIME
    } else if has("-process") {
        Rels::PROCESS
    } else {
        Rels::NONE
    }
}

/// What Elle would throw: the check becomes `{:valid? :unknown :error ...}`
/// ([`unknown`]).
#[derive(Debug)]
pub struct Thrown {
    pub class: &'static str,
    pub message: String,
}

pub fn thrown(class: &'static str, message: String) -> Thrown {
    Thrown { class, message }
}

impl Thrown {
    pub fn into_edn(self) -> Edn {
        unknown(self.class, &self.message)
    }
}

/// A checker's verdict and files, or (what Jepsen would have thrown) an
/// `:unknown` verdict and no files.
pub fn settle(
    r: Result<(Edn, Vec<crate::checker::Artifact>), Thrown>,
) -> (Edn, Vec<crate::checker::Artifact>) {
    r.unwrap_or_else(|t| (t.into_edn(), Vec::new()))
}

/// Micro-op `i` of a transaction op, as the op recorded it.
pub fn mop_edn(op: &crate::history::Op, i: usize) -> Edn {
    match &op.value {
        Edn::Vector(v) | Edn::List(v) => v.get(i).cloned().unwrap_or(Edn::Nil),
        _ => Edn::Nil,
    }
}

/// The realtime or process edges `models` call for (see [`extra_rels`]).
pub fn session_edges(
    history: &History,
    vertex_of: &[u32],
    models: &[&'static str],
    edges: &mut Vec<(u32, u32, Rels)>,
) {
    match extra_rels(models) {
        Rels::REALTIME => realtime_edges(history, vertex_of, edges),
        Rels::PROCESS => process_edges(history, vertex_of, edges),
        _ => {}
    }
}

/// Elle's realtime graph, a transitive reduction of "completed ok before
/// the other was invoked": when an op is invoked, every ok op in the buffer
/// points at its completion; an ok completion evicts from the buffer the
/// ops pointing at it. Failed and indeterminate ops are sinks.
pub fn realtime_edges(history: &History, vertex_of: &[u32], edges: &mut Vec<(u32, u32, Rels)>) {
    let mut completion = vec![u32::MAX; history.len()];
    for op in history.client_ops() {
        if let Some(inv) = op.invocation {
            completion[inv] = op.index as u32;
        }
    }
    let mut buffer: Vec<u32> = Vec::new();
    // The buffer each pending completion saw at its invocation.
    let mut preds: std::collections::HashMap<u32, Vec<u32>> = Default::default();
    for op in history.client_ops() {
        match op.kind {
            OpType::Invoke => {
                let c = completion[op.index];
                if c == u32::MAX || vertex_of[c as usize] == u32::MAX {
                    continue;
                }
                let cv = vertex_of[c as usize];
                for &b in &buffer {
                    edges.push((b, cv, Rels::REALTIME));
                }
                preds.insert(cv, buffer.clone());
            }
            OpType::Ok => {
                let Some(&v) = vertex_of.get(op.index).filter(|v| **v != u32::MAX) else {
                    continue;
                };
                if let Some(p) = preds.remove(&v) {
                    buffer.retain(|b| !p.contains(b));
                }
                buffer.push(v);
            }
            OpType::Fail | OpType::Info => {
                if let Some(&v) = vertex_of.get(op.index) {
                    preds.remove(&v);
                }
            }
        }
    }
}

/// Elle's process graph: each process's consecutive ok ops, in order.
pub fn process_edges(history: &History, vertex_of: &[u32], edges: &mut Vec<(u32, u32, Rels)>) {
    let mut last: BTreeMap<Process, u32> = BTreeMap::new();
    for op in history.client_ops() {
        if op.kind != OpType::Ok {
            continue;
        }
        let Some(&v) = vertex_of.get(op.index).filter(|v| **v != u32::MAX) else {
            continue;
        };
        if let Some(prev) = last.insert(op.process, v) {
            edges.push((prev, v, Rels::PROCESS));
        }
    }
}

/// Searches every component of `graph` and adds what it finds (Elle's
/// `cycles`): the empty-graph flag, cycle-existence cases, example cycles
/// (the [`MAX_CYCLES`] shortest per type) and search timeouts.
pub fn cycles(
    graph: &DepGraph,
    txns: &Txns,
    explainer: &dyn DataExplainer,
    budget: Budget,
    anomalies: &mut Anomalies,
) {
    if graph.linked_vertices() == 0 {
        anomalies.set_empty_graph();
    }
    let mut spend = search::Spend {
        scc_left: 0,
        total_left: budget.total,
    };
    let mut found: BTreeMap<&'static str, Vec<Found>> = BTreeMap::new();
    for scc in graph.sccs() {
        spend.scc_left = budget.per_scc;
        let local = graph.restrict(&scc);
        let ex = explain::Explain {
            txns,
            local: &local,
            data: explainer,
        };
        let (exists, found_models) = exists_cases(&local, &ex);
        for (kind, case) in exists {
            anomalies.push(kind, case);
        }
        for (kind, f) in cycle_cases(&local, &ex, found_models, &mut spend) {
            found.entry(kind).or_default().push(f);
        }
        tracing::debug!(
            size = scc.len(),
            spent = budget.per_scc - spend.scc_left,
            "component searched"
        );
    }
    for (kind, mut list) in found {
        // Stable: equal lengths stay in component order.
        list.sort_by_key(|(len, ..)| *len);
        let total = list.len();
        for (_, case, drawing) in list.into_iter().take(MAX_CYCLES) {
            anomalies.push(kind, case);
            if let Some(d) = drawing {
                anomalies.drawn.entry(kind).or_default().push(d);
            }
        }
        *anomalies.found.entry(kind).or_default() = total;
    }
}

/// Elle's cycle-existence checks on one component, and which of them
/// found a cycle (a bit per [`exists::EXISTS`] entry).
fn exists_cases(local: &graph::Local, ex: &explain::Explain) -> (Vec<(&'static str, Edn)>, u16) {
    let mut out = Vec::new();
    let mut redundant = 0u16;
    let mut found = 0u16;
    for (i, spec) in exists::EXISTS.iter().enumerate() {
        if redundant & (1 << i) != 0 {
            continue;
        }
        if let Some(scc) = spec.check(local) {
            let mut indices: Vec<i64> = scc
                .iter()
                .map(|&v| ex.txns.ops[local.global[v as usize] as usize] as i64)
                .collect();
            indices.sort_unstable();
            out.push((
                spec.anomaly(),
                map([
                    ("type", kw(spec.anomaly())),
                    ("not", kw(model::friendly(spec.model))),
                    ("subgraph", spec.printed()),
                    ("scc-size", Edn::from(indices.len())),
                    ("scc", Edn::Set(indices.into_iter().map(Edn::Int).collect())),
                ]),
            ));
            redundant |= exists::exists_redundant_after(i);
            found |= 1 << i;
        }
    }
    (out, found)
}

/// An example cycle found: its length, its case, and how Elle writes and
/// draws it (a search timeout has no drawing).
type Found = (usize, Edn, Option<Drawing>);

/// Example cycles in one component, most severe type first, skipping types
/// implied by one already found or impossible by the existence checks.
fn cycle_cases(
    local: &graph::Local,
    ex: &explain::Explain,
    found_exists: u16,
    spend: &mut search::Spend,
) -> Vec<(&'static str, Found)> {
    let mut skip = exists::impossible_types(found_exists);
    let mut out = Vec::new();
    let mut searched: Vec<&'static str> = Vec::new();
    let mut searcher = search::Searcher::with_order(local, ex.data.order());
    for (i, spec) in search::specs().iter().enumerate() {
        if skip & (1 << i) != 0 {
            continue;
        }
        searched.push(spec.name);
        match searcher.find(spec, spend) {
            Ok(Some(walk)) => {
                let (case, drawing) = ex.cycle(spec.name, &walk);
                out.push((spec.name, (walk.verts.len(), case, Some(drawing))));
                skip |= search::implied_types(i);
            }
            Ok(None) => {}
            Err(search::Exhausted) => {
                let failed = searched.pop().unwrap_or(spec.name);
                let not_found: Vec<Edn> = searched
                    .iter()
                    .filter(|t| !out.iter().any(|(k, ..)| k == *t))
                    .map(|t| kw(t))
                    .collect();
                out.push((
                    "cycle-search-timeout",
                    (
                        0,
                        map([
                            ("type", kw("cycle-search-timeout")),
                            ("anomaly-spec-type", kw(failed)),
                            ("does-not-contain", Edn::Vector(not_found)),
                            ("scc-size", Edn::from(local.len())),
                        ]),
                        None,
                    ),
                ));
                if let Some(w) = searcher.fallback()
                    && let Some(kind) = search::classify(&w.rels)
                {
                    let (case, drawing) = ex.cycle(kind, &w);
                    out.push((kind, (w.verts.len(), case, Some(drawing))));
                }
                break;
            }
        }
    }
    out
}

/// The result map and (if asked for) Elle's `elle/` files for the types
/// the models report.
pub fn result_and_files(
    models: &[&'static str],
    anomalies: &Anomalies,
    files: bool,
) -> (Edn, Vec<crate::checker::Artifact>) {
    let f = if files {
        anomalies.files(&reportable(models))
    } else {
        Vec::new()
    };
    (result_map(models, anomalies), f)
}

/// Elle's `result-map` (maelstrom-spec-more.md 4.5): `{:valid? true}` when
/// nothing reportable was found, else validity, the sorted reportable
/// types, their cases, and the models ruled out by everything found.
pub fn result_map(models: &[&'static str], anomalies: &Anomalies) -> Edn {
    let prohibited = prohibited(models);
    let reportable = reportable(models);
    let kinds = anomalies.kinds();
    let mut shown: Vec<&'static str> = kinds
        .iter()
        .copied()
        .filter(|k| reportable.contains(k))
        .collect();
    // Drop existence cases a specific reportable anomaly already explains.
    let specific: Vec<&'static str> = shown
        .iter()
        .copied()
        .filter(|k| !k.ends_with("-cycle-exists"))
        .collect();
    let ruled_out = model::impossible_models(&specific);
    shown.retain(|k| {
        !exists::EXISTS
            .iter()
            .any(|e| e.anomaly() == *k && ruled_out.contains(e.model))
    });
    if shown.is_empty() {
        return map([("valid?", Edn::Bool(true))]);
    }
    let bad = kinds.iter().any(|k| prohibited.contains(k));
    let valid = if bad { Edn::Bool(false) } else { kw("unknown") };
    let (not, also_not) = model::boundary(&kinds);
    let cases = Edn::Map(
        shown
            .iter()
            .map(|k| {
                let v = if *k == "empty-transaction-graph" {
                    Edn::Bool(true)
                } else {
                    Edn::Vector(anomalies.get(k).unwrap_or_default().to_vec())
                };
                (kw(k), v)
            })
            .collect(),
    );
    let set = |s: BTreeSet<&'static str>| Edn::Set(s.into_iter().map(kw).collect());
    let mut entries = vec![
        ("valid?", valid),
        (
            "anomaly-types",
            Edn::List(shown.iter().map(|k| kw(k)).collect()),
        ),
        ("anomalies", cases),
        ("not", set(not)),
        ("also-not", set(also_not)),
    ];
    let cut: Vec<(Edn, Edn)> = shown
        .iter()
        .filter(|k| anomalies.count(k) > anomalies.get(k).map_or(0, <[Edn]>::len))
        .map(|k| (kw(k), Edn::from(anomalies.count(k))))
        .collect();
    if !cut.is_empty() {
        entries.push(("anomaly-counts", Edn::Map(cut)));
    }
    map(entries)
}

/// A checker that could not decide, in Jepsen's `check-safe` shape:
/// `{:valid? :unknown :error {:via [{:type ... :message ...}] :cause ...}}`.
pub fn unknown(class: &str, message: &str) -> Edn {
    map([
        ("valid?", kw("unknown")),
        (
            "error",
            map([
                (
                    "via",
                    Edn::Vector(vec![map([
                        ("type", Edn::Symbol(class.to_string())),
                        ("message", Edn::from(message)),
                    ])]),
                ),
                ("cause", Edn::from(message)),
            ]),
        ),
    ])
}
