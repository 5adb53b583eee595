//! Elle's list-append checker (maelstrom-spec-more.md 5.3-5.5, v0.2.2):
//! transactions of `[:append k v]` and `[:r k [v ...]]` over lists, each
//! element appended at most once per key.
//!
//! The order of appends to a key is written into every read of it, so the
//! longest read is the key's version order (5.4); every shorter read must
//! be a prefix of it (`:incompatible-order` otherwise). From the orders:
//! ww edges (the writer of the element before an append), wr edges (the
//! writer of a read's last element) and rw edges (readers of the state an
//! append replaced), over committed and indeterminate transactions alike,
//! plus process or realtime edges as the models ask; then the shared cycle
//! search ([`super::elle`]), which explains an edge as ww before wr before
//! rw, as Elle's list-append graph does. Non-cycle anomalies
//! ([`anomalies`]): `:internal`, `:future-read`, `:G1a`, `:G1b`,
//! `:dirty-update`, `:duplicate-elements`, `:incompatible-order`,
//! `:lost-update`.
//!
//! No Maelstrom wrapper here (unlike rw-register): a clean history is just
//! `{:valid? true}`, and an empty graph or a search timeout alone is
//! `:unknown` (quirks 13, 14).

mod anomalies;

use super::elle::atoms::{Atom, Atoms};
use super::elle::{self, Anomalies, Budget, DataExplainer, DataStep, DepGraph, Rels, Txns};
use super::elle::{Thrown, thrown};
use crate::edn::{Edn, kw};
use crate::history::{History, Op, OpType};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Elle's list-append checker for `consistency_models` (the
/// `--consistency-models` text).
pub fn check(history: &History, consistency_models: &str) -> Edn {
    check_with(history, consistency_models, Budget::default())
}

/// [`check`] with an explicit cycle-search budget.
pub fn check_with(history: &History, consistency_models: &str, budget: Budget) -> Edn {
    elle::settle(analyse(history, consistency_models, budget, false)).0
}

/// [`check_with`], and Elle's `elle/` files.
pub fn check_files(
    history: &History,
    consistency_models: &str,
    budget: Budget,
) -> (Edn, Vec<crate::checker::Artifact>) {
    elle::settle(analyse(history, consistency_models, budget, true))
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Mop {
    /// `None`: a read of nil (an indeterminate op's, or a missing key).
    Read {
        k: Atom,
        list: Option<Vec<Atom>>,
    },
    Append {
        k: Atom,
        v: Atom,
    },
}

/// The parsed history: every client op's micro-ops, and the graph vertices
/// (completions).
struct Parsed {
    atoms: Atoms,
    /// By history index; `None` for nemesis ops.
    mops: Vec<Option<Vec<Mop>>>,
    /// Vertex -> history index of the completion.
    ops: Vec<usize>,
    /// History index -> vertex, or `u32::MAX`.
    vertex_of: Vec<u32>,
}

impl Parsed {
    fn mops_of(&self, index: usize) -> &[Mop] {
        self.mops[index].as_deref().unwrap_or(&[])
    }
}

const EX_INFO: &str = "clojure.lang.ExceptionInfo";

fn parse(history: &History) -> Result<Parsed, Thrown> {
    let mut atoms = Atoms::new();
    let mut mops = vec![None; history.len()];
    // Elle's verify-unique-appends: over invocations.
    let mut appended: BTreeSet<(Atom, Atom)> = BTreeSet::new();
    for op in history.client_ops() {
        let txn: &[Edn] = match &op.value {
            Edn::Nil => &[],
            Edn::Vector(v) | Edn::List(v) => v,
            other => {
                return Err(thrown(
                    EX_INFO,
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
                return Err(unexpected_mop(op));
            };
            let part = |i: usize| parts.get(i).unwrap_or(&Edn::Nil);
            let k = atoms.id(part(1));
            let mop = match part(0) {
                Edn::Keyword(f) if f == "r" => Mop::Read {
                    k,
                    list: read_list(op, part(2), &mut atoms)?,
                },
                Edn::Keyword(f) if f == "append" => Mop::Append {
                    k,
                    v: atoms.id(part(2)),
                },
                _ => return Err(unexpected_mop(op)),
            };
            if let (OpType::Invoke, Mop::Append { k, v }) = (op.kind, &mop)
                && !appended.insert((*k, *v))
            {
                return Err(thrown(
                    EX_INFO,
                    format!(
                        "value {} appended to key {} multiple times! (op {})",
                        atoms.edn(*v).compact(),
                        atoms.edn(*k).compact(),
                        op.index
                    ),
                ));
            }
            parsed.push(mop);
        }
        mops[op.index] = Some(parsed);
    }
    let mut ops = Vec::new();
    let mut vertex_of = vec![u32::MAX; history.len()];
    for op in history.client_ops().filter(|o| o.kind != OpType::Invoke) {
        vertex_of[op.index] = ops.len() as u32;
        ops.push(op.index);
    }
    Ok(Parsed {
        atoms,
        mops,
        ops,
        vertex_of,
    })
}

fn unexpected_mop(op: &Op) -> Thrown {
    thrown(
        EX_INFO,
        format!(
            "history contained operations other than appends or reads (:unexpected-txn-micro-op-types): op {} {}",
            op.index,
            op.value.compact()
        ),
    )
}

/// A read's list: a vector (or hearsay's compact ranges), or nil.
fn read_list(op: &Op, v: &Edn, atoms: &mut Atoms) -> Result<Option<Vec<Atom>>, Thrown> {
    match v {
        Edn::Nil => Ok(None),
        Edn::Vector(items) | Edn::List(items) => {
            Ok(Some(items.iter().map(|x| atoms.id(x)).collect()))
        }
        Edn::IntRanges(r) => Ok(Some(
            r.iter()
                .flat_map(|&(lo, hi)| lo..=hi)
                .map(|i| atoms.id(&Edn::Int(i)))
                .collect(),
        )),
        other => Err(thrown(
            "java.lang.ClassCastException",
            format!(
                "op {}: a read returned {}, not a list",
                op.index,
                other.compact()
            ),
        )),
    }
}

/// Elle's `h/possible`: ok and indeterminate completions.
fn possible(kind: OpType) -> bool {
    matches!(kind, OpType::Ok | OpType::Info)
}

/// Elle's analysis.
fn analyse(
    history: &History,
    consistency_models: &str,
    budget: Budget,
    files: bool,
) -> Result<(Edn, Vec<crate::checker::Artifact>), Thrown> {
    let models = elle::parse_models(consistency_models)
        .map_err(|m| thrown("java.lang.IllegalArgumentException", m))?;
    let p = parse(history)?;
    let mut found = Anomalies::default();
    anomalies::g1a(history, &p, &mut found);
    anomalies::g1b(history, &p, &mut found);
    anomalies::internal_and_future_read(history, &p, &mut found);
    let reads_only = sorted_values(history, &p, |_| true, false);
    anomalies::dirty_update(history, &p, &Orders::of(&reads_only), &mut found)?;
    anomalies::duplicates(history, &p, &mut found);
    let sorted = sorted_values(history, &p, possible, true);
    anomalies::incompatible_order(&p, &sorted, &mut found);
    anomalies::lost_update(history, &p, &mut found);
    let orders = Orders::of(&sorted);
    let index = Index::of(history, &p);
    let mut edges = Vec::new();
    index.edges(history, &p, &orders, &mut edges);
    elle::session_edges(history, &p.vertex_of, &models, &mut edges);
    let graph = DepGraph::new(p.ops.len(), edges);
    tracing::debug!(
        txns = p.ops.len(),
        edges = graph.edge_count(),
        "list-append dependency graph"
    );
    let txns = Txns {
        history,
        ops: &p.ops,
    };
    let explainer = Explainer {
        p: &p,
        orders: &orders,
        index: &index,
        history,
    };
    elle::cycles(&graph, &txns, &explainer, budget, &mut found);
    Ok(elle::result_and_files(&models, &found, files))
}

/// Per key, the distinct lists read (non-empty), shortest first (Elle's
/// `sorted-values`); with `single_appends`, a key appended exactly once and
/// never read non-empty has `[[v]]`.
fn sorted_values(
    history: &History,
    p: &Parsed,
    include: impl Fn(OpType) -> bool,
    single_appends: bool,
) -> BTreeMap<Atom, Vec<Vec<Atom>>> {
    let mut reads: BTreeMap<Atom, BTreeSet<Vec<Atom>>> = BTreeMap::new();
    // Per key: Some(v) after one append, None after two or more.
    let mut appends: BTreeMap<Atom, Option<Atom>> = BTreeMap::new();
    for op in history.client_ops().filter(|o| include(o.kind)) {
        for m in p.mops_of(op.index) {
            match m {
                Mop::Read { k, list: Some(l) } if !l.is_empty() => {
                    reads.entry(*k).or_default().insert(l.clone());
                }
                Mop::Append { k, v } => {
                    appends
                        .entry(*k)
                        .and_modify(|s| *s = None)
                        .or_insert(Some(*v));
                }
                Mop::Read { .. } => {}
            }
        }
    }
    let mut out: BTreeMap<Atom, Vec<Vec<Atom>>> = reads
        .into_iter()
        .map(|(k, set)| {
            let mut values: Vec<Vec<Atom>> = set.into_iter().collect();
            // Stable: equal lengths keep the set's order.
            values.sort_by_key(Vec::len);
            (k, values)
        })
        .collect();
    if single_appends {
        for (k, once) in appends {
            if let Some(v) = once {
                out.entry(k).or_insert_with(|| vec![vec![v]]);
            }
        }
    }
    out
}

/// Per key, the version order: the distinct elements of the longest read
/// (Elle's `append-index`).
struct Orders {
    by_key: HashMap<Atom, (Vec<Atom>, HashMap<Atom, usize>)>,
}

impl Orders {
    fn of(sorted: &BTreeMap<Atom, Vec<Vec<Atom>>>) -> Orders {
        let by_key = sorted
            .iter()
            .map(|(k, values)| {
                let mut order: Vec<Atom> = Vec::new();
                let mut at: HashMap<Atom, usize> = HashMap::new();
                for &e in values.last().map(Vec::as_slice).unwrap_or_default() {
                    if let std::collections::hash_map::Entry::Vacant(slot) = at.entry(e) {
                        slot.insert(order.len());
                        order.push(e);
                    }
                }
                (*k, (order, at))
            })
            .collect();
        Orders { by_key }
    }

    fn values(&self, k: Atom) -> &[Atom] {
        self.by_key.get(&k).map_or(&[], |(o, _)| o.as_slice())
    }

    /// The element appended just before `v` to `k` (`None`: the initial
    /// state); for an append never read, the last element known (Elle's
    /// `previously-appended-element`).
    fn prev(&self, k: Atom, v: Atom) -> Option<Atom> {
        let (order, at) = self.by_key.get(&k)?;
        match at.get(&v) {
            Some(&0) => None,
            Some(&i) => Some(order[i - 1]),
            None => order.last().copied(),
        }
    }
}

/// Writers and readers of each state, over ok and indeterminate ops.
struct Index {
    /// `(k, v)` -> the vertex that appended v to k.
    writer: HashMap<(Atom, Atom), u32>,
    /// `(k, last element or None for the initial state)` -> vertices that
    /// read that state (an indeterminate op's nil read is no read).
    readers: HashMap<(Atom, Option<Atom>), Vec<u32>>,
}

impl Index {
    fn of(history: &History, p: &Parsed) -> Index {
        let mut writer = HashMap::new();
        let mut readers: HashMap<(Atom, Option<Atom>), Vec<u32>> = HashMap::new();
        for (v, &i) in p.ops.iter().enumerate() {
            let kind = history.ops()[i].kind;
            if !possible(kind) {
                continue;
            }
            for m in p.mops_of(i) {
                match m {
                    Mop::Append { k, v: e } => {
                        writer.insert((*k, *e), v as u32);
                    }
                    Mop::Read { k, list } => {
                        if kind == OpType::Info && list.is_none() {
                            continue;
                        }
                        let last = list.as_ref().and_then(|l| l.last().copied());
                        readers.entry((*k, last)).or_default().push(v as u32);
                    }
                }
            }
        }
        Index { writer, readers }
    }

    /// ww, wr and rw edges (maelstrom-spec-more.md 5.4).
    fn edges(
        &self,
        history: &History,
        p: &Parsed,
        orders: &Orders,
        edges: &mut Vec<(u32, u32, Rels)>,
    ) {
        for (t, &i) in p.ops.iter().enumerate() {
            if !possible(history.ops()[i].kind) {
                continue;
            }
            let t = t as u32;
            for m in p.mops_of(i) {
                match m {
                    Mop::Append { k, v } => {
                        let prev = orders.prev(*k, *v);
                        if let Some(e) = prev
                            && let Some(&w) = self.writer.get(&(*k, e))
                        {
                            edges.push((w, t, Rels::WW));
                        }
                        for &r in self.readers.get(&(*k, prev)).into_iter().flatten() {
                            edges.push((r, t, Rels::RW));
                        }
                    }
                    Mop::Read { k, list: Some(l) } => {
                        if let Some(&w) = l.last().and_then(|e| self.writer.get(&(*k, *e))) {
                            edges.push((w, t, Rels::WR));
                        }
                    }
                    Mop::Read { .. } => {}
                }
            }
        }
    }
}

/// Elle's `::init`, the state before the first append, as results print it.
fn init_edn() -> Edn {
    kw("elle.list-append/init")
}

/// Elle's list-append WW, WR and RW explainers.
struct Explainer<'a> {
    p: &'a Parsed,
    orders: &'a Orders,
    index: &'a Index,
    history: &'a History,
}

impl Explainer<'_> {
    fn mops(&self, v: u32) -> &[Mop] {
        self.p.mops_of(self.p.ops[v as usize])
    }

    fn append_index(&self, v: u32, k: Atom, e: Atom) -> Option<usize> {
        self.mops(v)
            .iter()
            .position(|m| *m == Mop::Append { k, v: e })
    }

    /// Whether `a` read `k` in the state ending with `prev` (or empty).
    fn read_index(&self, a: u32, k: Atom, prev: Option<Atom>) -> Option<usize> {
        let info = self.history.ops()[self.p.ops[a as usize]].kind == OpType::Info;
        self.mops(a).iter().position(|m| match m {
            Mop::Read { k: mk, list } if *mk == k => match (list, prev) {
                (None, None) => !info,
                (None, Some(_)) => false,
                (Some(l), prev) => l.last().copied() == prev,
            },
            _ => false,
        })
    }

    fn step(
        &self,
        k: Atom,
        v: Option<Atom>,
        v2: Option<Atom>,
        a: Option<usize>,
        b: usize,
    ) -> DataStep {
        DataStep {
            key: self.p.atoms.edn(k),
            value: v.map_or_else(init_edn, |x| self.p.atoms.edn(x)),
            value2: v2.map(|x| self.p.atoms.edn(x)),
            a_mop: a,
            b_mop: Some(b),
        }
    }
}

impl DataExplainer for Explainer<'_> {
    fn explain(&self, rel: Rels, a: u32, b: u32) -> Option<DataStep> {
        self.mops(b)
            .iter()
            .enumerate()
            .find_map(|(i, m)| match (rel, m) {
                (Rels::WW, Mop::Append { k, v }) => {
                    let prev = self.orders.prev(*k, *v)?;
                    (self.index.writer.get(&(*k, prev)) == Some(&a)).then(|| {
                        self.step(*k, Some(prev), Some(*v), self.append_index(a, *k, prev), i)
                    })
                }
                (Rels::WR, Mop::Read { k, list: Some(l) }) => {
                    let last = *l.last()?;
                    (self.index.writer.get(&(*k, last)) == Some(&a))
                        .then(|| self.step(*k, Some(last), None, self.append_index(a, *k, last), i))
                }
                (Rels::RW, Mop::Append { k, v }) => {
                    let prev = self.orders.prev(*k, *v);
                    let readers = self.index.readers.get(&(*k, prev))?;
                    readers
                        .contains(&a)
                        .then(|| self.step(*k, prev, Some(*v), self.read_index(a, *k, prev), i))
                }
                _ => None,
            })
    }

    fn order(&self) -> elle::search::Order {
        elle::search::LIST_APPEND_ORDER
    }

    /// Elle's list-append `render-explanation`s.
    fn render(&self, rel: Rels, s: &DataStep, an: &str, bn: &str) -> String {
        let (k, v) = (s.key.compact(), s.value.compact());
        let v2 = s.value2.as_ref().map_or("nil".into(), Edn::compact);
        match rel {
            Rels::WW => format!("{bn} appended {v2} after {an} appended {v} to {k}"),
            Rels::WR => format!("{bn} observed {an}'s append of {v} to key {k}"),
            _ if s.value == init_edn() => format!(
                "{an} observed the initial (nil) state of {k}, which {bn} created by appending {v2}"
            ),
            _ => format!("{an} did not observe {bn}'s append of {v2} to {k}"),
        }
    }
}

#[cfg(test)]
mod tests;
