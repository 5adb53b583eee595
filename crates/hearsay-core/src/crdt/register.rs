//! Registers and maps.
//!
//! Last-writer-wins keeps the write with the greatest (hybrid logical
//! clock, replica) stamp, and so silently drops a concurrent write; the
//! multi-value register keeps concurrent writes as siblings until a later
//! write that has seen them replaces them all (Dynamo's and Riak's answer).

use super::set::Dotted;
use super::{CausalContext, Crdt, Dot, Hlc, VersionVector};
use crate::id::NodeId;
use std::collections::BTreeMap;

/// One stamped write; `value: None` is a delete (a tombstone in a map).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Stamped<V> {
    pub at: Hlc,
    pub by: NodeId,
    pub value: Option<V>,
    dot: Dot,
}

impl<V> Stamped<V> {
    fn wins_over(&self, o: &Stamped<V>) -> bool {
        (self.at, &self.by, &self.dot) > (o.at, &o.by, &o.dot)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LwwRegister<V> {
    w: Option<Stamped<V>>,
    ctx: CausalContext,
}

impl<V> Default for LwwRegister<V> {
    fn default() -> Self {
        LwwRegister {
            w: None,
            ctx: CausalContext::default(),
        }
    }
}

impl<V: Clone + PartialEq + std::fmt::Debug> LwwRegister<V> {
    /// Writes `v` at `me` with stamp `at` (from the replica's [`Hlc`]).
    pub fn set(&mut self, me: &NodeId, at: Hlc, v: V) -> Self {
        let dot = self.ctx.next_dot(me);
        let w = Stamped {
            at,
            by: me.clone(),
            value: Some(v),
            dot: dot.clone(),
        };
        let mut ctx = CausalContext::default();
        ctx.insert(dot);
        let delta = LwwRegister {
            w: Some(w.clone()),
            ctx,
        };
        self.merge_write(&w);
        delta
    }

    pub fn get(&self) -> Option<&V> {
        self.w.as_ref().and_then(|w| w.value.as_ref())
    }

    fn merge_write(&mut self, o: &Stamped<V>) {
        if self.w.as_ref().is_none_or(|w| o.wins_over(w)) {
            self.w = Some(o.clone());
        }
    }
}

impl<V: Clone + PartialEq + std::fmt::Debug> Crdt for LwwRegister<V> {
    fn merge(&mut self, o: &Self) {
        if let Some(w) = &o.w {
            self.merge_write(w);
        }
        self.ctx.merge(&o.ctx);
    }
    fn version(&self) -> VersionVector {
        self.ctx.vector().clone()
    }
    fn delta_since(&self, since: &VersionVector) -> Self {
        LwwRegister {
            w: self.w.clone().filter(|w| !since.contains(&w.dot)),
            ctx: self.ctx.past(since),
        }
    }
    fn size(&self) -> usize {
        usize::from(self.w.is_some())
    }
    fn has_gaps(&self) -> bool {
        self.ctx.has_gaps()
    }
}

/// A map of last-writer-wins registers; a delete is a stamped tombstone.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LwwMap<K: Ord, V> {
    entries: BTreeMap<K, Stamped<V>>,
    ctx: CausalContext,
}

impl<K: Ord, V> Default for LwwMap<K, V> {
    fn default() -> Self {
        LwwMap {
            entries: BTreeMap::new(),
            ctx: CausalContext::default(),
        }
    }
}

impl<K: Ord + Clone + std::fmt::Debug, V: Clone + PartialEq + std::fmt::Debug> LwwMap<K, V> {
    fn write(&mut self, me: &NodeId, at: Hlc, k: K, v: Option<V>) -> Self {
        let dot = self.ctx.next_dot(me);
        let w = Stamped {
            at,
            by: me.clone(),
            value: v,
            dot: dot.clone(),
        };
        let mut ctx = CausalContext::default();
        ctx.insert(dot);
        self.merge_entry(&k, &w);
        LwwMap {
            entries: BTreeMap::from([(k, w)]),
            ctx,
        }
    }

    pub fn set(&mut self, me: &NodeId, at: Hlc, k: K, v: V) -> Self {
        self.write(me, at, k, Some(v))
    }

    pub fn delete(&mut self, me: &NodeId, at: Hlc, k: K) -> Self {
        self.write(me, at, k, None)
    }

    pub fn get(&self, k: &K) -> Option<&V> {
        self.entries.get(k).and_then(|w| w.value.as_ref())
    }

    /// The latest write's timestamp (tombstones included): a replica
    /// observes it on receipt so its next write orders after it.
    pub fn latest(&self) -> Option<Hlc> {
        self.entries.values().map(|w| w.at).max()
    }

    /// Live entries, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.entries
            .iter()
            .filter_map(|(k, w)| w.value.as_ref().map(|v| (k, v)))
    }

    /// Drops tombstones every member has seen (`stable`: the pointwise
    /// minimum of the members' versions). A member away for longer must
    /// then get a full state, never a delta.
    pub fn collect(&mut self, stable: &VersionVector) {
        self.entries
            .retain(|_, w| w.value.is_some() || !stable.contains(&w.dot));
    }

    fn merge_entry(&mut self, k: &K, w: &Stamped<V>) {
        match self.entries.get_mut(k) {
            Some(cur) if !w.wins_over(cur) => {}
            Some(cur) => *cur = w.clone(),
            None => {
                self.entries.insert(k.clone(), w.clone());
            }
        }
    }
}

impl<K: Ord + Clone + std::fmt::Debug, V: Clone + PartialEq + std::fmt::Debug> Crdt
    for LwwMap<K, V>
{
    fn merge(&mut self, o: &Self) {
        for (k, w) in &o.entries {
            self.merge_entry(k, w);
        }
        self.ctx.merge(&o.ctx);
    }
    fn version(&self) -> VersionVector {
        self.ctx.vector().clone()
    }
    fn delta_since(&self, since: &VersionVector) -> Self {
        LwwMap {
            entries: self
                .entries
                .iter()
                .filter(|(_, w)| !since.contains(&w.dot))
                .map(|(k, w)| (k.clone(), w.clone()))
                .collect(),
            ctx: self.ctx.past(since),
        }
    }
    fn size(&self) -> usize {
        self.entries.len()
    }
    fn has_gaps(&self) -> bool {
        self.ctx.has_gaps()
    }
    fn collect(&mut self, stable: &VersionVector) {
        LwwMap::collect(self, stable);
    }
}

/// Multi-value register: a write replaces the values it has seen;
/// concurrent writes stay side by side as siblings.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MvRegister<V>(Dotted<V>);

impl<V> Default for MvRegister<V> {
    fn default() -> Self {
        MvRegister(Dotted::default())
    }
}

impl<V: Clone + PartialEq + Ord + std::fmt::Debug> MvRegister<V> {
    pub fn set(&mut self, me: &NodeId, v: V) -> Self {
        MvRegister(self.0.event(me, |_| true, Some(v)))
    }

    /// The current values: one, or several after concurrent writes.
    pub fn values(&self) -> Vec<V> {
        let mut v: Vec<V> = self.0.values().cloned().collect();
        v.sort();
        v.dedup();
        v
    }

    pub fn collect(&mut self, stable: &VersionVector) {
        self.0.collect(stable);
    }
}

impl<V: Clone + PartialEq + Ord + std::fmt::Debug> Crdt for MvRegister<V> {
    fn merge(&mut self, o: &Self) {
        self.0.merge(&o.0);
    }
    fn version(&self) -> VersionVector {
        self.0.version()
    }
    fn delta_since(&self, since: &VersionVector) -> Self {
        MvRegister(self.0.delta_since(since))
    }
    fn size(&self) -> usize {
        self.0.size()
    }
    fn has_gaps(&self) -> bool {
        self.0.has_gaps()
    }
    fn collect(&mut self, stable: &VersionVector) {
        self.0.collect(stable);
    }
}
