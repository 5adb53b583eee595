//! Sets, and the dot store under the add-wins ones.
//!
//! [`Dotted`] maps dots to values under a causal context, with a log of
//! which dots each event superseded. The log is what lets a delta since a
//! peer's version vector carry removals the peer has not applied, even of
//! dots it had seen; it is the tombstone state, collected with
//! [`Dotted::collect`] once every member has seen the events.

use super::{CausalContext, Crdt, Dot, VersionVector};
use crate::id::NodeId;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Dotted<V> {
    live: BTreeMap<Dot, V>,
    ctx: CausalContext,
    /// Event dot -> the dots it superseded.
    superseded: BTreeMap<Dot, BTreeSet<Dot>>,
}

impl<V> Default for Dotted<V> {
    fn default() -> Self {
        Dotted {
            live: BTreeMap::new(),
            ctx: CausalContext::default(),
            superseded: BTreeMap::new(),
        }
    }
}

impl<V: Clone + PartialEq> Dotted<V> {
    pub(crate) fn has_gaps(&self) -> bool {
        self.ctx.has_gaps()
    }

    /// A new event at `me` that supersedes the live dots `pick` selects and
    /// (if `value` is given) adds one of its own. Returns the delta.
    pub(super) fn event(
        &mut self,
        me: &NodeId,
        pick: impl Fn(&V) -> bool,
        value: Option<V>,
    ) -> Self {
        let old: BTreeSet<Dot> = self
            .live
            .iter()
            .filter(|(_, v)| pick(v))
            .map(|(d, _)| d.clone())
            .collect();
        for d in &old {
            self.live.remove(d);
        }
        let dot = self.ctx.next_dot(me);
        let mut delta = Dotted::default();
        for d in &old {
            delta.ctx.insert(d.clone());
        }
        delta.ctx.insert(dot.clone());
        if let Some(v) = value {
            self.live.insert(dot.clone(), v.clone());
            delta.live.insert(dot.clone(), v);
        }
        if !old.is_empty() {
            self.superseded.insert(dot.clone(), old.clone());
            delta.superseded.insert(dot, old);
        }
        delta
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.live.values()
    }

    /// Forgets the superseded-dots log of events every member has seen
    /// (`stable`: the pointwise minimum of the members' versions).
    pub fn collect(&mut self, stable: &VersionVector) {
        self.superseded.retain(|d, _| !stable.contains(d));
    }

    pub(super) fn version(&self) -> VersionVector {
        self.ctx.vector().clone()
    }

    pub(super) fn merge(&mut self, o: &Self) {
        let mut live = BTreeMap::new();
        for (d, v) in &self.live {
            if o.live.contains_key(d) || !o.ctx.contains(d) {
                live.insert(d.clone(), v.clone());
            }
        }
        for (d, v) in &o.live {
            if !self.ctx.contains(d) {
                live.insert(d.clone(), v.clone());
            }
        }
        // A dot a known event superseded stays dead, whatever the order.
        for old in o.superseded.values().chain(self.superseded.values()) {
            for d in old {
                live.remove(d);
            }
        }
        self.live = live;
        for (d, old) in &o.superseded {
            self.superseded
                .entry(d.clone())
                .or_default()
                .extend(old.iter().cloned());
        }
        self.ctx.merge(&o.ctx);
    }

    pub(super) fn delta_since(&self, since: &VersionVector) -> Self {
        let mut ctx = self.ctx.past(since);
        let mut superseded = BTreeMap::new();
        for (d, old) in &self.superseded {
            if !since.contains(d) {
                for o in old {
                    ctx.insert(o.clone());
                }
                superseded.insert(d.clone(), old.clone());
            }
        }
        Dotted {
            live: self
                .live
                .iter()
                .filter(|(d, _)| !since.contains(d))
                .map(|(d, v)| (d.clone(), v.clone()))
                .collect(),
            ctx,
            superseded,
        }
    }

    pub(super) fn size(&self) -> usize {
        self.live.len() + self.superseded.values().map(BTreeSet::len).sum::<usize>()
    }
}

/// Add-wins observed-remove set: a remove removes the adds it has seen; an
/// add concurrent with it survives.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ORSet<T>(Dotted<T>);

impl<T> Default for ORSet<T> {
    fn default() -> Self {
        ORSet(Dotted::default())
    }
}

impl<T: Ord + Clone + std::fmt::Debug> ORSet<T> {
    pub fn add(&mut self, me: &NodeId, v: T) -> Self {
        let w = v.clone();
        ORSet(self.0.event(me, |x| *x == w, Some(v)))
    }

    pub fn remove(&mut self, me: &NodeId, v: &T) -> Self {
        ORSet(self.0.event(me, |x| x == v, None))
    }

    pub fn contains(&self, v: &T) -> bool {
        self.0.values().any(|x| x == v)
    }

    pub fn elements(&self) -> BTreeSet<T> {
        self.0.values().cloned().collect()
    }

    pub fn collect(&mut self, stable: &VersionVector) {
        self.0.collect(stable);
    }
}

impl<T: Ord + Clone + std::fmt::Debug> Crdt for ORSet<T> {
    fn merge(&mut self, o: &Self) {
        self.0.merge(&o.0);
    }
    fn version(&self) -> VersionVector {
        self.0.version()
    }
    fn delta_since(&self, since: &VersionVector) -> Self {
        ORSet(self.0.delta_since(since))
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

/// Grow-only set. Each element keeps the smallest dot that added it, so the
/// state is the same whatever the order of merges.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GSet<T: Ord> {
    elems: BTreeMap<T, Dot>,
    ctx: CausalContext,
}

impl<T: Ord> Default for GSet<T> {
    fn default() -> Self {
        GSet {
            elems: BTreeMap::new(),
            ctx: CausalContext::default(),
        }
    }
}

fn keep_min<T: Ord + Clone>(m: &mut BTreeMap<T, Dot>, v: &T, d: &Dot) {
    match m.get_mut(v) {
        Some(e) if *e <= *d => {}
        Some(e) => *e = d.clone(),
        None => {
            m.insert(v.clone(), d.clone());
        }
    }
}

fn newer<T: Ord + Clone>(m: &BTreeMap<T, Dot>, since: &VersionVector) -> BTreeMap<T, Dot> {
    m.iter()
        .filter(|(_, d)| !since.contains(d))
        .map(|(v, d)| (v.clone(), d.clone()))
        .collect()
}

impl<T: Ord + Clone + std::fmt::Debug> GSet<T> {
    /// Adds `v` at `me`; returns the delta (empty if `v` was there).
    pub fn add(&mut self, me: &NodeId, v: T) -> Self {
        if self.elems.contains_key(&v) {
            return GSet::default();
        }
        let d = self.ctx.next_dot(me);
        self.elems.insert(v.clone(), d.clone());
        let mut ctx = CausalContext::default();
        ctx.insert(d.clone());
        GSet {
            elems: BTreeMap::from([(v, d)]),
            ctx,
        }
    }

    pub fn contains(&self, v: &T) -> bool {
        self.elems.contains_key(v)
    }

    pub fn elements(&self) -> impl Iterator<Item = &T> {
        self.elems.keys()
    }

    pub fn len(&self) -> usize {
        self.elems.len()
    }

    pub fn is_empty(&self) -> bool {
        self.elems.is_empty()
    }
}

impl<T: Ord + Clone + std::fmt::Debug> Crdt for GSet<T> {
    fn merge(&mut self, o: &Self) {
        for (v, d) in &o.elems {
            keep_min(&mut self.elems, v, d);
        }
        self.ctx.merge(&o.ctx);
    }
    fn version(&self) -> VersionVector {
        self.ctx.vector().clone()
    }
    fn delta_since(&self, since: &VersionVector) -> Self {
        GSet {
            elems: newer(&self.elems, since),
            ctx: self.ctx.past(since),
        }
    }
    fn size(&self) -> usize {
        self.elems.len()
    }
    fn has_gaps(&self) -> bool {
        self.ctx.has_gaps()
    }
}

/// Two-phase set: an element once removed never comes back (removes are
/// kept as tombstones).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TwoPSet<T: Ord> {
    added: BTreeMap<T, Dot>,
    removed: BTreeMap<T, Dot>,
    ctx: CausalContext,
}

impl<T: Ord> Default for TwoPSet<T> {
    fn default() -> Self {
        TwoPSet {
            added: BTreeMap::new(),
            removed: BTreeMap::new(),
            ctx: CausalContext::default(),
        }
    }
}

impl<T: Ord + Clone + std::fmt::Debug> TwoPSet<T> {
    fn event(&mut self, me: &NodeId, v: T, remove: bool) -> Self {
        let d = self.ctx.next_dot(me);
        let mut ctx = CausalContext::default();
        ctx.insert(d.clone());
        let mut delta = TwoPSet {
            ctx,
            ..TwoPSet::default()
        };
        let (mine, theirs) = if remove {
            (&mut self.removed, &mut delta.removed)
        } else {
            (&mut self.added, &mut delta.added)
        };
        keep_min(mine, &v, &d);
        theirs.insert(v, d);
        delta
    }

    pub fn add(&mut self, me: &NodeId, v: T) -> Self {
        if self.added.contains_key(&v) || self.removed.contains_key(&v) {
            return TwoPSet::default();
        }
        self.event(me, v, false)
    }

    /// Removes `v` for good; only what was added can be removed.
    pub fn remove(&mut self, me: &NodeId, v: &T) -> Self {
        if !self.contains(v) {
            return TwoPSet::default();
        }
        self.event(me, v.clone(), true)
    }

    pub fn contains(&self, v: &T) -> bool {
        self.added.contains_key(v) && !self.removed.contains_key(v)
    }

    pub fn elements(&self) -> impl Iterator<Item = &T> {
        self.added.keys().filter(|v| !self.removed.contains_key(*v))
    }
}

impl<T: Ord + Clone + std::fmt::Debug> Crdt for TwoPSet<T> {
    fn merge(&mut self, o: &Self) {
        for (v, d) in &o.added {
            keep_min(&mut self.added, v, d);
        }
        for (v, d) in &o.removed {
            keep_min(&mut self.removed, v, d);
        }
        self.ctx.merge(&o.ctx);
    }
    fn version(&self) -> VersionVector {
        self.ctx.vector().clone()
    }
    fn delta_since(&self, since: &VersionVector) -> Self {
        TwoPSet {
            added: newer(&self.added, since),
            removed: newer(&self.removed, since),
            ctx: self.ctx.past(since),
        }
    }
    fn size(&self) -> usize {
        self.added.len() + self.removed.len()
    }
    fn has_gaps(&self) -> bool {
        self.ctx.has_gaps()
    }
}
