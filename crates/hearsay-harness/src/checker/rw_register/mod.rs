//! Maelstrom's txn-rw-register checker (maelstrom-spec-more.md 6): Elle's
//! rw-register analysis (v0.2.2) with `wfr-keys?`, wrapped as Maelstrom
//! wraps it (6.5).
//!
//! Transactions are `[[:r k v] [:w k v] ...]` over registers; writes are
//! unique per key. Non-cycle anomalies: `:internal`, `:G1a` (aborted read),
//! `:G1b` (intermediate read), `:lost-update`. Version orders come only from
//! "nil precedes every value" and "within an ok txn, the value read precedes
//! the value written"; a source that makes a key's versions cyclic is
//! dropped and reported as `:cyclic-versions`. From them: wr edges (the
//! single ok writer of a value read), ww and rw edges (along version
//! edges), plus process or realtime edges as the models ask; then the
//! shared cycle search ([`super::elle`]).
//!
//! Maelstrom's wrapper: `:cycle-search-timeout` is dropped, validity is
//! "no anomaly type left", and `:anomaly-types` / `:anomalies` are always
//! present (a clean run: `{:valid? true, :anomaly-types (), :anomalies nil}`).
//! So an empty transaction graph fails, and a search timeout alone passes.

use super::elle::atoms::{Atom, Atoms, NIL};
use super::elle::{self, Anomalies, Budget, DataExplainer, DataStep, DepGraph, Rels, Txns};
use super::elle::{Thrown, mop_edn, thrown};
use crate::edn::{Edn, kw, map};
use crate::history::{History, Op, OpType};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Maelstrom's txn-rw-register checker for `consistency_models` (the
/// `--consistency-models` text).
pub fn check(history: &History, consistency_models: &str) -> Edn {
    check_with(history, consistency_models, Budget::default())
}

/// [`check`] with an explicit cycle-search budget.
pub fn check_with(history: &History, consistency_models: &str, budget: Budget) -> Edn {
    elle::settle(
        analyse(history, consistency_models, budget, false).map(|(r, f)| (maelstrom_wrapper(r), f)),
    )
    .0
}

/// [`check_with`], and Elle's `elle/` files.
pub fn check_files(
    history: &History,
    consistency_models: &str,
    budget: Budget,
) -> (Edn, Vec<crate::checker::Artifact>) {
    elle::settle(
        analyse(history, consistency_models, budget, true).map(|(r, f)| (maelstrom_wrapper(r), f)),
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum F {
    R,
    W,
}

#[derive(Clone, Copy, Debug)]
struct Mop {
    f: F,
    k: Atom,
    v: Atom,
}

/// A transaction's external reads (first op on a key, if a read) and
/// external writes (last write to each key), in order of first mention.
#[derive(Clone, Debug, Default)]
struct Ext {
    reads: Vec<(Atom, Atom)>,
    writes: Vec<(Atom, Atom)>,
}

impl Ext {
    fn of(mops: &[Mop]) -> Ext {
        let mut e = Ext::default();
        let mut seen: Vec<Atom> = Vec::new();
        for m in mops {
            match m.f {
                F::R if !seen.contains(&m.k) => e.reads.push((m.k, m.v)),
                F::W => match e.writes.iter_mut().find(|(k, _)| *k == m.k) {
                    Some(w) => w.1 = m.v,
                    None => e.writes.push((m.k, m.v)),
                },
                F::R => {}
            }
            if !seen.contains(&m.k) {
                seen.push(m.k);
            }
        }
        e
    }

    fn read(&self, k: Atom) -> Option<Atom> {
        self.reads.iter().find(|(x, _)| *x == k).map(|(_, v)| *v)
    }

    fn write(&self, k: Atom) -> Option<Atom> {
        self.writes.iter().find(|(x, _)| *x == k).map(|(_, v)| *v)
    }
}

/// The parsed history: every client op's micro-ops, and the graph vertices
/// (completions) with their external reads and writes.
struct Parsed {
    atoms: Atoms,
    /// By history index; `None` for nemesis ops.
    mops: Vec<Option<Vec<Mop>>>,
    /// Vertex -> history index of the completion.
    ops: Vec<usize>,
    /// History index -> vertex, or `u32::MAX`.
    vertex_of: Vec<u32>,
    ext: Vec<Ext>,
}

/// Jepsen's class name for a key, for Elle's type-sanity check.
fn class(v: &Edn) -> &'static str {
    match v {
        Edn::Nil => "nil",
        Edn::Bool(_) => "java.lang.Boolean",
        Edn::Int(_) => "java.lang.Long",
        Edn::Float(_) | Edn::Float32(_) => "java.lang.Double",
        Edn::Str(_) => "java.lang.String",
        Edn::Keyword(_) => "clojure.lang.Keyword",
        Edn::Symbol(_) => "clojure.lang.BigInt",
        Edn::Vector(_) | Edn::IntRanges(_) => "clojure.lang.PersistentVector",
        Edn::List(_) => "clojure.lang.PersistentList",
        Edn::Set(_) => "clojure.lang.PersistentHashSet",
        Edn::Map(_) => "clojure.lang.PersistentArrayMap",
    }
}

fn parse(history: &History) -> Result<Parsed, Thrown> {
    let mut atoms = Atoms::with_nil();
    let mut mops = vec![None; history.len()];
    let mut key_classes: BTreeSet<&'static str> = BTreeSet::new();
    for op in history.client_ops() {
        let txn: &[Edn] = match &op.value {
            Edn::Nil => &[],
            Edn::Vector(v) | Edn::List(v) => v,
            other => {
                return Err(thrown(
                    "java.lang.IllegalArgumentException",
                    format!(
                        "op {} has value {}, not a transaction (a vector of [f k v] micro-ops)",
                        op.index,
                        other.compact()
                    ),
                ));
            }
        };
        let mut parsed = Vec::with_capacity(txn.len());
        for m in txn {
            let (Edn::Vector(parts) | Edn::List(parts)) = m else {
                return Err(thrown(
                    "java.lang.UnsupportedOperationException",
                    format!("op {}: micro-op {} is not [f k v]", op.index, m.compact()),
                ));
            };
            let part = |i: usize| parts.get(i).unwrap_or(&Edn::Nil);
            let f = match part(0) {
                Edn::Keyword(f) if f == "r" => F::R,
                Edn::Keyword(f) if f == "w" => F::W,
                other => {
                    return Err(thrown(
                        "java.lang.IllegalArgumentException",
                        format!(
                            "No matching clause: {} (op {}: micro-ops are [:r k v] or [:w k v])",
                            other.compact(),
                            op.index
                        ),
                    ));
                }
            };
            key_classes.insert(class(part(1)));
            parsed.push(Mop {
                f,
                k: atoms.id(part(1)),
                v: atoms.id(part(2)),
            });
        }
        mops[op.index] = Some(parsed);
    }
    if key_classes.len() > 1 {
        let names: Vec<&str> = key_classes.into_iter().collect();
        return Err(thrown(
            "java.lang.AssertionError",
            format!(
                "Assert failed: History includes a mix of different types for transaction keys: ({}). You almost certainly don't want to do this.",
                names.join(" ")
            ),
        ));
    }
    let mut ops = Vec::new();
    let mut vertex_of = vec![u32::MAX; history.len()];
    let mut ext = Vec::new();
    for op in history.client_ops().filter(|o| o.kind != OpType::Invoke) {
        vertex_of[op.index] = ops.len() as u32;
        ops.push(op.index);
        ext.push(match op.kind {
            OpType::Ok | OpType::Info => Ext::of(mops[op.index].as_deref().unwrap_or(&[])),
            _ => Ext::default(),
        });
    }
    Ok(Parsed {
        atoms,
        mops,
        ops,
        vertex_of,
        ext,
    })
}

/// Elle's analysis, before Maelstrom's wrapper.
fn analyse(
    history: &History,
    consistency_models: &str,
    budget: Budget,
    files: bool,
) -> Result<(Edn, Vec<crate::checker::Artifact>), Thrown> {
    let models = elle::parse_models(consistency_models)
        .map_err(|m| thrown("java.lang.IllegalArgumentException", m))?;
    let p = parse(history)?;
    let mut anomalies = Anomalies::default();
    internal_cases(history, &p, &mut anomalies);
    g1a_cases(history, &p, &mut anomalies);
    g1b_cases(history, &p, &mut anomalies);
    lost_update_cases(history, &p, &mut anomalies);
    let versions = Versions::infer(history, &p, &mut anomalies);
    let mut edges = Vec::new();
    let index = Index::of(history, &p);
    index.wr_edges(&p, &mut edges)?;
    index.ww_rw_edges(&versions, &mut edges);
    elle::session_edges(history, &p.vertex_of, &models, &mut edges);
    let graph = DepGraph::new(p.ops.len(), edges);
    tracing::debug!(
        txns = p.ops.len(),
        edges = graph.edge_count(),
        "rw-register dependency graph"
    );
    let txns = Txns {
        history,
        ops: &p.ops,
    };
    let explainer = Explainer {
        p: &p,
        versions: &versions,
    };
    elle::cycles(&graph, &txns, &explainer, budget, &mut anomalies);
    Ok(elle::result_and_files(&models, &anomalies, files))
}

/// Maelstrom's wrapper (maelstrom-spec-more.md 6.5).
fn maelstrom_wrapper(result: Edn) -> Edn {
    let Edn::Map(mut entries) = result else {
        return result;
    };
    let types: Vec<Edn> = match result_get(&entries, "anomaly-types") {
        Some(Edn::List(t) | Edn::Vector(t)) => t
            .iter()
            .filter(|t| **t != kw("cycle-search-timeout"))
            .cloned()
            .collect(),
        _ => Vec::new(),
    };
    let cases = match result_get(&entries, "anomalies") {
        Some(Edn::Map(m)) => Edn::Map(
            m.iter()
                .filter(|(k, _)| *k != kw("cycle-search-timeout"))
                .cloned()
                .collect(),
        ),
        _ => Edn::Nil,
    };
    let valid = Edn::Bool(types.is_empty());
    for (k, v) in [
        ("anomaly-types", Edn::List(types)),
        ("anomalies", cases),
        ("valid?", valid),
    ] {
        match entries.iter_mut().find(|(key, _)| *key == kw(k)) {
            Some(e) => e.1 = v,
            None => entries.push((kw(k), v)),
        }
    }
    Edn::Map(entries)
}

fn result_get<'a>(entries: &'a [(Edn, Edn)], k: &str) -> Option<&'a Edn> {
    entries
        .iter()
        .find(|(key, _)| *key == kw(k))
        .map(|(_, v)| v)
}

fn ok_ops<'a>(history: &'a History, p: &'a Parsed) -> impl Iterator<Item = (&'a Op, &'a [Mop])> {
    history
        .client_ops()
        .filter(|o| o.kind == OpType::Ok)
        .filter_map(|o| Some((o, p.mops[o.index].as_deref()?)))
}

/// `:internal`: a read in an ok txn that disagrees with what the txn last
/// wrote or read for that key (a nil read constrains nothing). One case per
/// op, its first disagreement.
fn internal_cases(history: &History, p: &Parsed, out: &mut Anomalies) {
    for (op, mops) in ok_ops(history, p) {
        let mut state: Vec<(Atom, Atom)> = Vec::new();
        for (i, m) in mops.iter().enumerate() {
            let known = state.iter_mut().find(|(k, _)| *k == m.k);
            match (m.f, known) {
                (F::R, Some((_, s))) if *s != NIL && *s != m.v => {
                    let expected = p.atoms.edn(*s);
                    out.push(
                        "internal",
                        map([
                            ("op", op.to_edn()),
                            ("mop", mop_edn(op, i)),
                            ("expected", expected),
                        ]),
                    );
                    break;
                }
                (_, Some(slot)) => slot.1 = m.v,
                (_, None) => state.push((m.k, m.v)),
            }
        }
    }
}

/// `:G1a`: an ok read of a value some failed txn wrote (any of its writes).
fn g1a_cases(history: &History, p: &Parsed, out: &mut Anomalies) {
    let mut failed: HashMap<(Atom, Atom), usize> = HashMap::new();
    for op in history.client_ops().filter(|o| o.kind == OpType::Fail) {
        for m in p.mops[op.index].as_deref().unwrap_or(&[]) {
            if m.f == F::W {
                failed.insert((m.k, m.v), op.index);
            }
        }
    }
    if failed.is_empty() {
        return;
    }
    for (op, mops) in ok_ops(history, p) {
        for (i, m) in mops.iter().enumerate() {
            if let (F::R, Some(&w)) = (m.f, failed.get(&(m.k, m.v))) {
                out.push(
                    "G1a",
                    map([
                        ("op", op.to_edn()),
                        ("mop", mop_edn(op, i)),
                        ("writer", history.ops()[w].to_edn()),
                    ]),
                );
            }
        }
    }
}

/// `:G1b`: an ok read of a value another txn overwrote within itself.
fn g1b_cases(history: &History, p: &Parsed, out: &mut Anomalies) {
    let mut intermediate: HashMap<(Atom, Atom), usize> = HashMap::new();
    for op in history.client_ops() {
        let mut last: Vec<(Atom, Atom)> = Vec::new();
        for m in p.mops[op.index].as_deref().unwrap_or(&[]) {
            if m.f != F::W {
                continue;
            }
            match last.iter_mut().find(|(k, _)| *k == m.k) {
                Some(slot) => {
                    intermediate.insert((m.k, slot.1), op.index);
                    slot.1 = m.v;
                }
                None => last.push((m.k, m.v)),
            }
        }
    }
    if intermediate.is_empty() {
        return;
    }
    for (op, mops) in ok_ops(history, p) {
        for (i, m) in mops.iter().enumerate() {
            if let (F::R, Some(&w)) = (m.f, intermediate.get(&(m.k, m.v)))
                && w != op.index
            {
                out.push(
                    "G1b",
                    map([
                        ("op", op.to_edn()),
                        ("mop", mop_edn(op, i)),
                        ("writer", history.ops()[w].to_edn()),
                    ]),
                );
            }
        }
    }
}

/// `:lost-update`: two or more ok txns read the same value of a key (nil
/// included) as their first read of it, then wrote it.
fn lost_update_cases(history: &History, p: &Parsed, out: &mut Anomalies) {
    let mut txns: BTreeMap<(Atom, Atom), Vec<usize>> = BTreeMap::new();
    for (op, mops) in ok_ops(history, p) {
        let mut reads: Vec<(Atom, Atom)> = Vec::new();
        let mut written: Vec<Atom> = Vec::new();
        for m in mops {
            let read = reads.iter().find(|(k, _)| *k == m.k).map(|(_, v)| *v);
            match (m.f, read) {
                (F::W, Some(v)) if !written.contains(&m.k) => {
                    txns.entry((m.k, v)).or_default().push(op.index);
                    written.push(m.k);
                }
                (F::R, None) => reads.push((m.k, m.v)),
                _ => {}
            }
        }
    }
    for ((k, v), ops) in txns {
        if ops.len() >= 2 {
            out.push(
                "lost-update",
                map([
                    ("key", p.atoms.edn(k)),
                    ("value", p.atoms.edn(v)),
                    (
                        "txns",
                        Edn::Vector(ops.iter().map(|&i| history.ops()[i].to_edn()).collect()),
                    ),
                ]),
            );
        }
    }
}

/// Per key, the inferred version order: edges `v1 -> v2`.
struct Versions {
    by_key: BTreeMap<Atom, BTreeSet<(Atom, Atom)>>,
}

impl Versions {
    /// Elle's `version-graphs` with sources `:initial-state` then
    /// `:wfr-keys`; a source whose edges make some key cyclic is dropped.
    fn infer(history: &History, p: &Parsed, out: &mut Anomalies) -> Versions {
        let mut initial: BTreeMap<Atom, BTreeSet<(Atom, Atom)>> = BTreeMap::new();
        let mut wfr: BTreeMap<Atom, BTreeSet<(Atom, Atom)>> = BTreeMap::new();
        for (v, &i) in p.ops.iter().enumerate() {
            let kind = history.ops()[i].kind;
            let e = &p.ext[v];
            if matches!(kind, OpType::Ok | OpType::Info) {
                let reads = if kind == OpType::Ok {
                    &e.reads[..]
                } else {
                    &[]
                };
                for &(k, x) in e.writes.iter().chain(reads) {
                    if x != NIL {
                        initial.entry(k).or_default().insert((NIL, x));
                    }
                }
            }
            if kind == OpType::Ok {
                for &(k, r) in &e.reads {
                    if let Some(w) = e.write(k)
                        && r != NIL
                        && w != NIL
                    {
                        wfr.entry(k).or_default().insert((r, w));
                    }
                }
            }
        }
        let mut merged = initial.clone();
        for (k, es) in &wfr {
            merged.entry(*k).or_default().extend(es.iter().copied());
        }
        let cyclic: Vec<(Atom, Vec<Atom>)> = merged
            .iter()
            .flat_map(|(k, es)| cyclic_values(es).into_iter().map(move |scc| (*k, scc)))
            .collect();
        if cyclic.is_empty() {
            return Versions { by_key: merged };
        }
        for (k, scc) in cyclic {
            out.push(
                "cyclic-versions",
                map([
                    ("key", p.atoms.edn(k)),
                    (
                        "scc",
                        Edn::Set(scc.iter().map(|a| p.atoms.edn(*a)).collect()),
                    ),
                    (
                        "sources",
                        Edn::Vector(vec![kw("initial-state"), kw("wfr-keys")]),
                    ),
                ]),
            );
        }
        Versions { by_key: initial }
    }

    fn precedes(&self, k: Atom, a: Atom, b: Atom) -> bool {
        self.by_key.get(&k).is_some_and(|es| es.contains(&(a, b)))
    }
}

/// The components (two or more values) of one key's version graph.
fn cyclic_values(edges: &BTreeSet<(Atom, Atom)>) -> Vec<Vec<Atom>> {
    let mut values: Vec<Atom> = edges.iter().flat_map(|(a, b)| [*a, *b]).collect();
    values.sort_unstable();
    values.dedup();
    let at = |a: Atom| values.binary_search(&a).expect("a value of an edge") as u32;
    let g = DepGraph::new(
        values.len(),
        edges
            .iter()
            .map(|&(a, b)| (at(a), at(b), Rels::WW))
            .collect(),
    );
    g.sccs()
        .into_iter()
        .map(|c| c.into_iter().map(|i| values[i as usize]).collect())
        .collect()
}

/// Ok transactions by the values they externally read and write.
struct Index {
    writers: HashMap<(Atom, Atom), Vec<u32>>,
    readers: BTreeMap<(Atom, Atom), Vec<u32>>,
}

impl Index {
    fn of(history: &History, p: &Parsed) -> Index {
        let mut writers: HashMap<(Atom, Atom), Vec<u32>> = HashMap::new();
        let mut readers: BTreeMap<(Atom, Atom), Vec<u32>> = BTreeMap::new();
        for (v, &i) in p.ops.iter().enumerate() {
            if history.ops()[i].kind != OpType::Ok {
                continue;
            }
            for &kv in &p.ext[v].writes {
                writers.entry(kv).or_default().push(v as u32);
            }
            for &kv in &p.ext[v].reads {
                readers.entry(kv).or_default().push(v as u32);
            }
        }
        Index { writers, readers }
    }

    /// wr: the one ok txn that wrote what others read. Two ok writers of a
    /// value read is an error in Elle, and here.
    fn wr_edges(&self, p: &Parsed, edges: &mut Vec<(u32, u32, Rels)>) -> Result<(), Thrown> {
        for ((k, v), readers) in &self.readers {
            match self.writers.get(&(*k, *v)).map(Vec::as_slice) {
                None | Some([]) => {}
                Some([w]) => edges.extend(readers.iter().map(|&r| (*w, r, Rels::WR))),
                Some(ws) => {
                    return Err(thrown(
                        "java.lang.IllegalArgumentException",
                        format!(
                            "Key {} had value {} written by more than one op: indices {:?}",
                            p.atoms.edn(*k).compact(),
                            p.atoms.edn(*v).compact(),
                            ws.iter().map(|&w| p.ops[w as usize]).collect::<Vec<_>>()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// ww and rw along every version edge `v1 -> v2` of a key: writers of
    /// v1 and readers of v1 both precede writers of v2.
    fn ww_rw_edges(&self, versions: &Versions, edges: &mut Vec<(u32, u32, Rels)>) {
        let none: Vec<u32> = Vec::new();
        for (k, es) in &versions.by_key {
            for &(v1, v2) in es {
                let w2 = self.writers.get(&(*k, v2)).unwrap_or(&none);
                if w2.is_empty() {
                    continue;
                }
                let w1 = self.writers.get(&(*k, v1)).unwrap_or(&none);
                let r1 = self.readers.get(&(*k, v1)).unwrap_or(&none);
                for &b in w2 {
                    edges.extend(w1.iter().map(|&a| (a, b, Rels::WW)));
                    edges.extend(r1.iter().map(|&a| (a, b, Rels::RW)));
                }
            }
        }
    }
}

/// Elle's WR, WW and RW explainers.
struct Explainer<'a> {
    p: &'a Parsed,
    versions: &'a Versions,
}

impl Explainer<'_> {
    fn mop_index(&self, v: u32, f: F, k: Atom, x: Atom) -> Option<usize> {
        let op = self.p.ops[v as usize];
        self.p.mops[op]
            .as_deref()?
            .iter()
            .position(|m| m.f == f && m.k == k && m.v == x)
    }

    fn step(
        &self,
        k: Atom,
        v: Atom,
        v2: Option<Atom>,
        a: Option<usize>,
        b: Option<usize>,
    ) -> DataStep {
        DataStep {
            key: self.p.atoms.edn(k),
            value: self.p.atoms.edn(v),
            value2: v2.map(|x| self.p.atoms.edn(x)),
            a_mop: a,
            b_mop: b,
        }
    }
}

impl DataExplainer for Explainer<'_> {
    fn explain(&self, rel: Rels, a: u32, b: u32) -> Option<DataStep> {
        let (ea, eb) = (&self.p.ext[a as usize], &self.p.ext[b as usize]);
        match rel {
            Rels::WR => ea.writes.iter().find_map(|&(k, v)| {
                (eb.read(k) == Some(v)).then(|| {
                    self.step(
                        k,
                        v,
                        None,
                        self.mop_index(a, F::W, k, v),
                        self.mop_index(b, F::R, k, v),
                    )
                })
            }),
            Rels::WW => ea.writes.iter().find_map(|&(k, v1)| {
                let v2 = eb.write(k)?;
                self.versions.precedes(k, v1, v2).then(|| {
                    self.step(
                        k,
                        v1,
                        Some(v2),
                        self.mop_index(a, F::W, k, v1),
                        self.mop_index(b, F::W, k, v2),
                    )
                })
            }),
            Rels::RW => ea.reads.iter().find_map(|&(k, v1)| {
                let v2 = eb.write(k)?;
                self.versions.precedes(k, v1, v2).then(|| {
                    self.step(
                        k,
                        v1,
                        Some(v2),
                        self.mop_index(a, F::R, k, v1),
                        self.mop_index(b, F::W, k, v2),
                    )
                })
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
