//! Splitting a history by key (jepsen.independent) and Knossos' preprocess,
//! with the CAS-register model the search steps.

use crate::edn::Edn;
use crate::history::{History, OpType, Process};
use std::cmp::Ordering;
use std::collections::HashMap;

/// The register's value numbers: 0 is nil, the rest index [`Interner`].
pub(super) const NIL: u32 = 0;

/// One op's effect on the CAS register, values interned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// Consistent iff the value is nil or current.
    Read(u32),
    Write(u32),
    /// Needs current == from, then sets to.
    Cas(u32, u32),
    /// A cas whose value is not `[from to]`: never consistent.
    Bad,
}

pub(super) fn step(state: u32, s: Step) -> Option<u32> {
    match s {
        Step::Read(v) => (v == NIL || v == state).then_some(state),
        Step::Write(v) => Some(v),
        Step::Cas(from, to) => (from == state).then_some(to),
        Step::Bad => None,
    }
}

/// EDN values numbered by Clojure `=` (so `1` and `1.0` differ): bucketed by
/// printed form, then compared exactly.
pub(super) struct Interner {
    pub(super) values: Vec<Edn>,
    pub(super) by_text: HashMap<String, Vec<u32>>,
}

impl Interner {
    pub(super) fn new() -> Interner {
        Interner {
            values: Vec::new(),
            by_text: HashMap::new(),
        }
    }

    /// Register values: nil is [`NIL`].
    pub(super) fn values() -> Interner {
        let mut i = Interner::new();
        i.id(&Edn::Nil);
        i
    }

    pub(super) fn id(&mut self, v: &Edn) -> u32 {
        let bucket = self.by_text.entry(v.compact()).or_default();
        if let Some(&i) = bucket.iter().find(|&&i| self.values[i as usize] == *v) {
            return i;
        }
        let i = self.values.len() as u32;
        self.values.push(v.clone());
        bucket.push(i);
        i
    }

    pub(super) fn find(&self, v: &Edn) -> Option<u32> {
        let bucket = self.by_text.get(&v.compact())?;
        bucket
            .iter()
            .copied()
            .find(|&i| self.values[i as usize] == *v)
    }
}

/// One client op of a key's sub-history, after preprocessing.
#[derive(Clone, Debug)]
pub(super) struct KeyOp {
    pub(super) step: Step,
    /// Completed ok (must be linearized); otherwise info (optional).
    pub(super) ok: bool,
    /// History index of the invocation.
    pub(super) call: usize,
    /// History index of the ok completion.
    pub(super) ret: Option<usize>,
    /// The op reported: the completion, or the invocation if none.
    pub(super) shown: usize,
    /// The unwrapped value the model sees.
    pub(super) value: Edn,
}

pub(super) struct KeyHistory {
    pub(super) key: Edn,
    pub(super) ops: Vec<KeyOp>,
    pub(super) values: Interner,
}

/// `[k v]` tuples only; anything else is not a key's op.
pub(super) fn tuple(v: &Edn) -> Option<(&Edn, &Edn)> {
    match v {
        Edn::Vector(t) if t.len() == 2 => Some((&t[0], &t[1])),
        _ => None,
    }
}

pub(super) fn split(history: &History) -> Vec<KeyHistory> {
    let mut keys = Interner::new();
    // (invocation index, completion index) per key id.
    let mut pairs: Vec<Vec<(usize, Option<usize>)>> = Vec::new();
    let mut open: HashMap<usize, (u32, usize)> = HashMap::new();
    let mut open_by_process: HashMap<Process, usize> = HashMap::new();
    for op in history.client_ops() {
        if !matches!(op.f, "read" | "write" | "cas") {
            continue;
        }
        let Some((k, _)) = tuple(&op.value) else {
            continue;
        };
        if op.kind == OpType::Invoke {
            let kid = keys.id(k) as usize;
            if pairs.len() <= kid {
                pairs.resize_with(kid + 1, Vec::new);
            }
            open.insert(op.index, (kid as u32, pairs[kid].len()));
            open_by_process.insert(op.process, op.index);
            pairs[kid].push((op.index, None));
            continue;
        }
        let inv = op
            .invocation
            .or_else(|| open_by_process.get(&op.process).copied());
        // A completion under another key leaves its invocation open (info),
        // as jepsen.independent's split would.
        if let Some(inv) = inv
            && let Some(&(kid, slot)) = open.get(&inv)
            && keys.find(k) == Some(kid)
        {
            open.remove(&inv);
            pairs[kid as usize][slot].1 = Some(op.index);
        }
    }
    keys.values
        .into_iter()
        .zip(pairs)
        .map(|(key, p)| prepare(history, key, &p))
        .collect()
}

/// Knossos preprocess: failed ops dropped; ok ops take the completion's
/// value; info ops (and invocations never completed) keep the invocation
/// value and become optional. Ops that cannot matter are dropped too: an ok
/// nil read is consistent anywhere, an info op with no effect (read, cas
/// from == to) is best left out.
pub(super) fn prepare(history: &History, key: Edn, pairs: &[(usize, Option<usize>)]) -> KeyHistory {
    let mut values = Interner::values();
    let mut ops = Vec::new();
    for &(inv_i, comp_i) in pairs {
        let Some(inv) = history.get(inv_i) else {
            continue;
        };
        let comp = comp_i.and_then(|i| history.get(i));
        let kind = comp.map_or(OpType::Info, |c| c.kind);
        let ok = match kind {
            OpType::Fail => continue,
            OpType::Ok => true,
            OpType::Info | OpType::Invoke => false,
        };
        let source = if ok { comp.unwrap_or(inv) } else { inv };
        let value = tuple(&source.value).map_or(Edn::Nil, |(_, v)| v.clone());
        let step = match (inv.f, &value) {
            ("read", v) => Step::Read(values.id(v)),
            ("write", v) => Step::Write(values.id(v)),
            ("cas", Edn::Vector(ft)) if ft.len() == 2 => {
                Step::Cas(values.id(&ft[0]), values.id(&ft[1]))
            }
            _ => Step::Bad,
        };
        let useless = match step {
            Step::Read(NIL) => true,
            Step::Read(_) | Step::Bad => !ok,
            Step::Cas(f, t) => !ok && f == t,
            Step::Write(_) => false,
        };
        if useless {
            continue;
        }
        ops.push(KeyOp {
            step,
            ok,
            call: inv_i,
            ret: if ok { comp_i } else { None },
            shown: comp_i.unwrap_or(inv_i),
            value,
        });
    }
    KeyHistory { key, ops, values }
}

/// Integer keys numerically first, then the rest by printed form.
pub(super) fn key_order(a: &Edn, b: &Edn) -> Ordering {
    crate::edn::jepsen_order(a, b)
}
