//! list-append's non-cycle anomalies (maelstrom-spec-more.md 5.3), each a
//! scan of the history as Elle 0.2.2 makes it.

use super::{Atom, Mop, Orders, Parsed, possible};
use crate::checker::elle::Anomalies;
use crate::checker::elle::{Thrown, mop_edn, thrown};
use crate::edn::{Edn, map};
use crate::history::{History, Op, OpType};
use std::collections::{BTreeMap, HashMap};

fn ok_ops<'a>(history: &'a History, p: &'a Parsed) -> impl Iterator<Item = (&'a Op, &'a [Mop])> {
    history
        .client_ops()
        .filter(|o| o.kind == OpType::Ok)
        .map(|o| (o, p.mops_of(o.index)))
}

fn completions(history: &History) -> impl Iterator<Item = &Op> {
    history.client_ops().filter(|o| o.kind != OpType::Invoke)
}

/// `:G1a`: an ok read holding an element a failed txn appended; a case per
/// such element.
pub(super) fn g1a(history: &History, p: &Parsed, out: &mut Anomalies) {
    let mut failed: HashMap<(Atom, Atom), usize> = HashMap::new();
    for op in history.client_ops().filter(|o| o.kind == OpType::Fail) {
        for m in p.mops_of(op.index) {
            if let Mop::Append { k, v } = m {
                failed.insert((*k, *v), op.index);
            }
        }
    }
    if failed.is_empty() {
        return;
    }
    for (op, mops) in ok_ops(history, p) {
        for (i, m) in mops.iter().enumerate() {
            let Mop::Read { k, list: Some(l) } = m else {
                continue;
            };
            for e in l {
                if let Some(&w) = failed.get(&(*k, *e)) {
                    out.push(
                        "G1a",
                        map([
                            ("op", op.to_edn()),
                            ("mop", mop_edn(op, i)),
                            ("writer", history.ops()[w].to_edn()),
                            ("element", p.atoms.edn(*e)),
                        ]),
                    );
                }
            }
        }
    }
}

/// `:G1b`: the last element of an ok read is an append another txn
/// followed with a later append to the same key.
pub(super) fn g1b(history: &History, p: &Parsed, out: &mut Anomalies) {
    let mut intermediate: HashMap<(Atom, Atom), usize> = HashMap::new();
    for op in completions(history) {
        let mut last: HashMap<Atom, Atom> = HashMap::new();
        for m in p.mops_of(op.index) {
            if let Mop::Append { k, v } = m
                && let Some(before) = last.insert(*k, *v)
            {
                intermediate.insert((*k, before), op.index);
            }
        }
    }
    if intermediate.is_empty() {
        return;
    }
    for (op, mops) in ok_ops(history, p) {
        for (i, m) in mops.iter().enumerate() {
            let Mop::Read { k, list: Some(l) } = m else {
                continue;
            };
            if let Some(e) = l.last()
                && let Some(&w) = intermediate.get(&(*k, *e))
                && w != op.index
            {
                out.push(
                    "G1b",
                    map([
                        ("op", op.to_edn()),
                        ("mop", mop_edn(op, i)),
                        ("writer", history.ops()[w].to_edn()),
                        ("element", p.atoms.edn(*e)),
                    ]),
                );
            }
        }
    }
}

/// What a txn knows of a key it touched (Elle's `op-int-case`).
enum Expect {
    /// It read nil: later reads are unconstrained, appends start a list.
    Nil,
    /// The whole list.
    Known(Vec<Atom>),
    /// Only how it ends (`[... 3 4]`): appends to a key it never read.
    Suffix(Vec<Atom>),
}

/// `:internal` (a read that disagrees with the txn's own earlier read and
/// appends) and `:future-read` (a read of an element the txn appends
/// later), at most one case of each per ok op.
pub(super) fn internal_and_future_read(history: &History, p: &Parsed, out: &mut Anomalies) {
    for (op, mops) in ok_ops(history, p) {
        if let Some(case) = internal_case(op, mops, p) {
            out.push("internal", case);
        }
        if let Some(case) = future_read_case(op, mops, p) {
            out.push("future-read", case);
        }
    }
}

fn internal_case(op: &Op, mops: &[Mop], p: &Parsed) -> Option<Edn> {
    let mut state: HashMap<Atom, Expect> = HashMap::new();
    for (i, m) in mops.iter().enumerate() {
        match m {
            Mop::Append { k, v } => {
                let next = match state.remove(k) {
                    None => Expect::Suffix(vec![*v]),
                    Some(Expect::Nil) => Expect::Known(vec![*v]),
                    Some(Expect::Known(mut l)) => {
                        l.push(*v);
                        Expect::Known(l)
                    }
                    Some(Expect::Suffix(mut l)) => {
                        l.push(*v);
                        Expect::Suffix(l)
                    }
                };
                state.insert(*k, next);
            }
            Mop::Read { k, list } => {
                let read = list.as_deref();
                let bad = match state.get(k) {
                    None | Some(Expect::Nil) => None,
                    Some(Expect::Known(s)) => (read != Some(s)).then(|| p.atoms.list(s)),
                    Some(Expect::Suffix(s)) => {
                        let r = read.unwrap_or_default();
                        let ends = r.len() >= s.len() && r[r.len() - s.len()..] == s[..];
                        (!ends).then(|| {
                            let mut e = vec![Edn::Symbol("...".into())];
                            e.extend(s.iter().map(|a| p.atoms.edn(*a)));
                            Edn::Vector(e)
                        })
                    }
                };
                if let Some(expected) = bad {
                    return Some(map([
                        ("op", op.to_edn()),
                        ("mop", mop_edn(op, i)),
                        ("expected", expected),
                    ]));
                }
                let now = match list {
                    None => Expect::Nil,
                    Some(l) => Expect::Known(l.clone()),
                };
                state.insert(*k, now);
            }
        }
    }
    None
}

fn future_read_case(op: &Op, mops: &[Mop], p: &Parsed) -> Option<Edn> {
    // (key, element) -> the first read holding it.
    let mut seen: HashMap<(Atom, Atom), usize> = HashMap::new();
    for (i, m) in mops.iter().enumerate() {
        match m {
            Mop::Append { k, v } => {
                if let Some(&r) = seen.get(&(*k, *v)) {
                    return Some(map([
                        ("op", op.to_edn()),
                        ("mop", mop_edn(op, r)),
                        ("element", p.atoms.edn(*v)),
                    ]));
                }
            }
            Mop::Read { k, list } => {
                for e in list.iter().flatten() {
                    seen.entry((*k, *e)).or_insert(i);
                }
            }
        }
    }
    None
}

/// `:dirty-update`: along a key's version order, an element appended by a
/// failed txn followed (past any indeterminate ones) by one appended by an
/// ok txn. An element no txn appended is Elle's failed assertion.
pub(super) fn dirty_update(
    history: &History,
    p: &Parsed,
    orders: &Orders,
    out: &mut Anomalies,
) -> Result<(), Thrown> {
    let mut writer: HashMap<(Atom, Atom), usize> = HashMap::new();
    for op in completions(history) {
        for m in p.mops_of(op.index) {
            if let Mop::Append { k, v } = m {
                writer.insert((*k, *v), op.index);
            }
        }
    }
    let mut keys: Vec<Atom> = orders.by_key.keys().copied().collect();
    keys.sort_by(|a, b| p.atoms.cmp(*a, *b));
    for k in keys {
        // `None`: the initial state, committed.
        let mut t1: Option<usize> = None;
        let mut vs: Vec<Atom> = Vec::new();
        for &v in orders.values(k) {
            vs.push(v);
            let Some(&t2) = writer.get(&(k, v)) else {
                return Err(thrown(
                    "java.lang.AssertionError",
                    format!(
                        "Assert failed: No transaction wrote {} {}",
                        p.atoms.edn(k).compact(),
                        p.atoms.edn(v).compact()
                    ),
                ));
            };
            let kind = |t: Option<usize>| t.map_or(OpType::Ok, |i| history.ops()[i].kind);
            match (kind(t1), kind(Some(t2))) {
                (OpType::Fail, OpType::Ok) => {
                    let before = t1.map_or(Edn::Nil, |i| history.ops()[i].to_edn());
                    out.push(
                        "dirty-update",
                        map([
                            ("key", p.atoms.edn(k)),
                            ("values", p.atoms.list(&vs)),
                            (
                                "txns",
                                Edn::Vector(vec![
                                    before,
                                    Edn::Symbol("...".into()),
                                    history.ops()[t2].to_edn(),
                                ]),
                            ),
                        ]),
                    );
                    t1 = Some(t2);
                    vs = vec![v];
                }
                (_, OpType::Info) | (OpType::Fail, OpType::Fail) => {}
                _ => {
                    t1 = Some(t2);
                    vs = vec![v];
                }
            }
        }
    }
    Ok(())
}

/// `:duplicate-elements`: a read (ok or indeterminate) holding an element
/// more than once.
pub(super) fn duplicates(history: &History, p: &Parsed, out: &mut Anomalies) {
    for op in history.client_ops().filter(|o| possible(o.kind)) {
        for (i, m) in p.mops_of(op.index).iter().enumerate() {
            let Mop::Read { list: Some(l), .. } = m else {
                continue;
            };
            let mut counts: HashMap<Atom, usize> = HashMap::new();
            for e in l {
                *counts.entry(*e).or_default() += 1;
            }
            let mut dups: Vec<(Atom, usize)> = counts.into_iter().filter(|(_, n)| *n > 1).collect();
            if dups.is_empty() {
                continue;
            }
            dups.sort_by(|a, b| p.atoms.cmp(a.0, b.0));
            out.push(
                "duplicate-elements",
                map([
                    ("op", op.to_edn()),
                    ("mop", mop_edn(op, i)),
                    (
                        "duplicates",
                        Edn::Map(
                            dups.into_iter()
                                .map(|(e, n)| (p.atoms.edn(e), Edn::from(n)))
                                .collect(),
                        ),
                    ),
                ]),
            );
        }
    }
}

/// `:incompatible-order`: per key, the first pair of reads (by length)
/// where the shorter is not a prefix of the longer.
pub(super) fn incompatible_order(
    p: &Parsed,
    sorted: &BTreeMap<Atom, Vec<Vec<Atom>>>,
    out: &mut Anomalies,
) {
    let mut keys: Vec<Atom> = sorted.keys().copied().collect();
    keys.sort_by(|a, b| p.atoms.cmp(*a, *b));
    for k in keys {
        let values = &sorted[&k];
        if let Some(w) = values.windows(2).find(|w| !w[1].starts_with(&w[0])) {
            out.push(
                "incompatible-order",
                map([
                    ("key", p.atoms.edn(k)),
                    (
                        "values",
                        Edn::Vector(vec![p.atoms.list(&w[0]), p.atoms.list(&w[1])]),
                    ),
                ]),
            );
        }
    }
}

/// `:lost-update`: two or more ok txns whose first read of a key (before
/// appending to it) returned the same list, and which then appended to it.
pub(super) fn lost_update(history: &History, p: &Parsed, out: &mut Anomalies) {
    let mut txns: BTreeMap<(Atom, Option<Vec<Atom>>), Vec<usize>> = BTreeMap::new();
    for (op, mops) in ok_ops(history, p) {
        let mut reads: HashMap<Atom, &Option<Vec<Atom>>> = HashMap::new();
        let mut written: Vec<Atom> = Vec::new();
        for m in mops {
            match m {
                Mop::Append { k, .. } if !written.contains(k) => {
                    if let Some(read) = reads.get(k) {
                        txns.entry((*k, (*read).clone()))
                            .or_default()
                            .push(op.index);
                        written.push(*k);
                    }
                }
                Mop::Read { k, list } if !written.contains(k) => {
                    reads.entry(*k).or_insert(list);
                }
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
                    ("value", v.as_deref().map_or(Edn::Nil, |l| p.atoms.list(l))),
                    (
                        "txns",
                        Edn::Vector(ops.iter().map(|&i| history.ops()[i].to_edn()).collect()),
                    ),
                ]),
            );
        }
    }
}
