//! What the kafka checker reads of a history: ops reduced to interned keys
//! and messages, and each key's version order (offset -> messages, and
//! the dense index over offsets that hold any).

use crate::edn::Edn;
use crate::history::{OpType, Process};
use std::collections::{BTreeMap, HashMap};

/// Distinct EDN values, numbered in order of first appearance.
#[derive(Default)]
pub(super) struct Interner {
    ids: HashMap<String, u32>,
    values: Vec<Edn>,
}

impl Interner {
    pub(super) fn id(&mut self, v: &Edn) -> u32 {
        let text = v.compact();
        if let Some(&i) = self.ids.get(&text) {
            return i;
        }
        let i = self.values.len() as u32;
        self.ids.insert(text, i);
        self.values.push(v.clone());
        i
    }

    pub(super) fn get(&self, i: u32) -> &Edn {
        &self.values[i as usize]
    }
}

/// A poll's messages of one key, in reply order: `[offset msg]` pairs
/// (offset `None` if not an integer).
pub(super) type Pairs = Vec<(Option<i64>, u32)>;

/// A send or poll completion, or an assign, reduced to what the checker
/// reads: keys and messages as interned ids.
pub(super) struct KOp {
    /// History index of the completion.
    pub(super) index: usize,
    pub(super) kind: OpType,
    pub(super) process: Process,
    pub(super) f: &'static str,
    /// A send's key, message and (ok sends) offset.
    pub(super) write: Option<(u32, u32, Option<i64>)>,
    /// A poll's keys, each with its `[offset msg]` pairs in reply order.
    pub(super) reads: Vec<(u32, Pairs)>,
    /// An assign's keys.
    pub(super) assign: Vec<u32>,
}

impl KOp {
    pub(super) fn read_values(&self, k: u32) -> Option<impl Iterator<Item = u32> + '_> {
        self.reads
            .iter()
            .find(|(key, _)| *key == k)
            .map(|(_, ps)| ps.iter().map(|(_, v)| *v))
    }
}

/// One key's version order: offsets holding at least one message, each
/// with its distinct messages (first seen first), and the dense index.
#[derive(Default)]
pub(super) struct Order {
    pub(super) log: BTreeMap<i64, Vec<u32>>,
    /// Dense index -> its representative message (the first seen).
    pub(super) by_index: Vec<u32>,
    /// Representative message -> its (last) dense index.
    pub(super) by_value: HashMap<u32, usize>,
}

impl Order {
    pub(super) fn add(&mut self, offset: i64, v: u32) {
        let vs = self.log.entry(offset).or_default();
        if !vs.contains(&v) {
            vs.push(v);
        }
    }

    pub(super) fn seal(&mut self) {
        self.by_index = self.log.values().map(|vs| vs[0]).collect();
        self.by_value = self
            .by_index
            .iter()
            .enumerate()
            .map(|(i, v)| (*v, i))
            .collect();
    }

    pub(super) fn index(&self, v: u32) -> Option<usize> {
        self.by_value.get(&v).copied()
    }

    /// `index(v2) - index(v1)`, or 1 (no error) when either is unknown.
    pub(super) fn delta(&self, v1: Option<u32>, v2: Option<u32>) -> i64 {
        match (
            v1.and_then(|v| self.index(v)),
            v2.and_then(|v| self.index(v)),
        ) {
            (Some(i1), Some(i2)) => i2 as i64 - i1 as i64,
            _ => 1,
        }
    }
}
