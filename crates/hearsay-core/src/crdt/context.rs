//! Dots, version vectors and causal contexts: what a replica has seen.
//!
//! A dot `(replica, n)` names the n-th event of a replica. A version vector
//! holds, per replica, the longest gap-free prefix seen; a causal context
//! adds the dots seen out of order (the "dot cloud") and folds them into the
//! vector as gaps close, so it stays small when deltas arrive in order.

use crate::id::NodeId;
use std::collections::BTreeMap;

/// The `counter`-th event (from 1) of `replica`.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Dot {
    pub replica: NodeId,
    pub counter: u64,
}

impl Dot {
    pub fn new(replica: &NodeId, counter: u64) -> Self {
        Dot {
            replica: replica.clone(),
            counter,
        }
    }
}

/// Per replica, the number of its events seen without a gap.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VersionVector(BTreeMap<NodeId, u64>);

impl VersionVector {
    pub fn get(&self, r: &NodeId) -> u64 {
        self.0.get(r).copied().unwrap_or(0)
    }

    pub fn set(&mut self, r: &NodeId, n: u64) {
        if n == 0 {
            self.0.remove(r);
        } else {
            self.0.insert(r.clone(), n);
        }
    }

    pub fn contains(&self, d: &Dot) -> bool {
        d.counter <= self.get(&d.replica)
    }

    /// Pointwise max: the join of two vectors.
    pub fn merge(&mut self, o: &VersionVector) {
        for (r, &n) in &o.0 {
            let e = self.0.entry(r.clone()).or_default();
            *e = (*e).max(n);
        }
    }

    /// Pointwise min: what both have seen.
    pub fn meet(&self, o: &VersionVector) -> VersionVector {
        let mut v = VersionVector::default();
        for (r, &n) in &self.0 {
            v.set(r, n.min(o.get(r)));
        }
        v
    }

    /// Every entry at least `o`'s: this has seen all `o` has.
    pub fn dominates(&self, o: &VersionVector) -> bool {
        o.0.iter().all(|(r, &n)| self.get(r) >= n)
    }

    /// Neither has seen all the other has.
    pub fn concurrent(&self, o: &VersionVector) -> bool {
        !self.dominates(o) && !o.dominates(self)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&NodeId, u64)> {
        self.0.iter().map(|(r, &n)| (r, n))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A version vector plus the dots seen past its gaps, kept per replica as
/// ranges: a replica that missed k writes of another holds one range, not k
/// dots, and folding it into the vector when the gap closes is one step
/// (a peer's context is peer input: neither its numbers nor its size may
/// cost work in proportion to them).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CausalContext {
    vv: VersionVector,
    /// Per replica, disjoint, non-adjacent ranges `lo -> hi` (inclusive)
    /// above its vector entry plus one.
    cloud: BTreeMap<NodeId, BTreeMap<u64, u64>>,
}

impl CausalContext {
    pub fn contains(&self, d: &Dot) -> bool {
        self.vv.contains(d)
            || self.cloud.get(&d.replica).is_some_and(|rs| {
                rs.range(..=d.counter)
                    .next_back()
                    .is_some_and(|(_, hi)| d.counter <= *hi)
            })
    }

    /// The next dot of `replica` (one past everything seen from it without
    /// a gap; the cloud never starts right there, it is folded in).
    pub fn next_dot(&mut self, replica: &NodeId) -> Dot {
        let n = self.vv.get(replica).saturating_add(1);
        let d = Dot::new(replica, n);
        self.insert(d.clone());
        d
    }

    pub fn insert(&mut self, d: Dot) {
        if d.counter > 0 && !self.vv.contains(&d) {
            self.add_range(&d.replica, d.counter, d.counter);
        }
    }

    pub fn merge(&mut self, o: &CausalContext) {
        self.vv.merge(&o.vv);
        for r in o.vv.0.keys() {
            self.compact(r);
        }
        for (r, rs) in &o.cloud {
            for (&lo, &hi) in rs {
                if lo > 0 && lo <= hi {
                    self.add_range(r, lo, hi);
                }
            }
        }
    }

    /// Adds the dots `lo..=hi` of `r`, merging with the ranges they touch,
    /// then folds what now continues the vector.
    fn add_range(&mut self, r: &NodeId, lo: u64, hi: u64) {
        let lo = lo.max(self.vv.get(r).saturating_add(1));
        if lo > hi {
            return;
        }
        let rs = self.cloud.entry(r.clone()).or_default();
        let (mut lo, mut hi) = (lo, hi);
        // The ranges that overlap or touch [lo, hi]: at most one starts
        // below lo; the others start inside [lo, hi + 1].
        if let Some((&l, &h)) = rs.range(..lo).next_back()
            && h.saturating_add(1) >= lo
        {
            rs.remove(&l);
            lo = l;
            hi = hi.max(h);
        }
        while let Some((&l, &h)) = rs.range(lo..).next()
            && l <= hi.saturating_add(1)
        {
            rs.remove(&l);
            hi = hi.max(h);
        }
        rs.insert(lo, hi);
        self.compact(r);
    }

    /// Folds the ranges of `r` that continue its vector entry into it, and
    /// drops what the entry already covers.
    fn compact(&mut self, r: &NodeId) {
        let Some(rs) = self.cloud.get_mut(r) else {
            return;
        };
        let mut n = self.vv.get(r);
        while let Some((&lo, &hi)) = rs.first_key_value() {
            if lo > n.saturating_add(1) {
                break;
            }
            rs.remove(&lo);
            n = n.max(hi);
        }
        if rs.is_empty() {
            self.cloud.remove(r);
        }
        self.vv.set(r, n);
    }

    /// Events seen past a gap: one before them has not arrived (lost, or
    /// still on its way).
    pub fn has_gaps(&self) -> bool {
        !self.cloud.is_empty()
    }

    /// The gap-free part: what to tell a peer "send me what is past this".
    pub fn vector(&self) -> &VersionVector {
        &self.vv
    }

    /// The dots not covered by `since`, as a context of their own (a
    /// delta's context).
    pub fn past(&self, since: &VersionVector) -> CausalContext {
        let mut out = CausalContext::default();
        for (r, n) in self.vv.iter() {
            let from = since.get(r);
            if from == 0 {
                out.vv.set(r, n);
            } else if from < n {
                out.cloud.entry(r.clone()).or_default().insert(from + 1, n);
            }
        }
        for (r, rs) in &self.cloud {
            let from = since.get(r);
            for (&lo, &hi) in rs {
                if hi > from {
                    out.cloud
                        .entry(r.clone())
                        .or_default()
                        .insert(lo.max(from + 1), hi);
                }
            }
        }
        out
    }

    /// Entries held: one per vector entry and one per range past a gap.
    pub fn size(&self) -> usize {
        self.vv.len() + self.cloud.values().map(BTreeMap::len).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_order_dots_fold_into_the_vector_when_the_gap_closes() {
        let a = NodeId::new("a");
        let mut c = CausalContext::default();
        c.insert(Dot::new(&a, 2));
        c.insert(Dot::new(&a, 3));
        assert_eq!(c.vector().get(&a), 0);
        assert!(c.contains(&Dot::new(&a, 3)) && !c.contains(&Dot::new(&a, 1)));
        c.insert(Dot::new(&a, 1));
        assert_eq!(c.vector().get(&a), 3);
        assert_eq!(c.size(), 1, "all in the vector");
        assert_eq!(c.next_dot(&a), Dot::new(&a, 4));
    }

    #[test]
    fn a_catch_up_of_many_missed_dots_is_one_range_and_linear_work() {
        // The reproduction, at the context: a replica that missed
        // 50,000 writes of another takes the delta's context, then the
        // writes arrive, the last first. Dot by dot this was quadratic
        // (25,000 writes: 5.2 s of CPU); as ranges the state stays one
        // entry, so each step is a few map operations.
        let (a, b) = (NodeId::new("a"), NodeId::new("b"));
        let mut writer = CausalContext::default();
        for _ in 0..50_000 {
            writer.next_dot(&a);
        }
        let mut since = VersionVector::default();
        since.set(&a, 1);
        let delta = writer.past(&since);
        assert_eq!(delta.size(), 1, "one range, not 49,999 dots");
        let mut away = CausalContext::default();
        away.insert(Dot::new(&a, 1));
        away.insert(Dot::new(&b, 7));
        assert_eq!(away.size(), 2, "a:1 in the vector, b:7 past a gap");
        away.merge(&delta);
        assert_eq!(away.vector().get(&a), 50_000);
        assert!(away.contains(&Dot::new(&b, 7)) && !away.contains(&Dot::new(&b, 6)));
        let mut c = CausalContext::default();
        for k in (2..=50_000).rev() {
            c.insert(Dot::new(&a, k));
        }
        assert_eq!(c.size(), 1, "one range while the gap at 1 is open");
        c.insert(Dot::new(&a, 1));
        assert_eq!((c.vector().get(&a), c.size()), (50_000, 1));
    }

    #[test]
    fn hostile_numbers_neither_hang_nor_overflow() {
        let a = NodeId::new("a");
        let mut peer = CausalContext::default();
        peer.vv.set(&a, u64::MAX - 1);
        peer.cloud
            .entry(a.clone())
            .or_default()
            .extend([(u64::MAX, u64::MAX), (9, 3), (0, 5)]);
        let mut c = CausalContext::default();
        c.insert(Dot::new(&a, 1));
        c.merge(&peer);
        assert_eq!(c.vector().get(&a), u64::MAX);
        assert_eq!(c.next_dot(&a).counter, u64::MAX, "saturates, no panic");
        let mut since = VersionVector::default();
        since.set(&a, 3);
        let d = c.past(&since);
        assert_eq!(d.size(), 1, "{d:?}");
        assert!(d.contains(&Dot::new(&a, u64::MAX)) && !d.contains(&Dot::new(&a, 3)));
    }

    #[test]
    fn ranges_merge_when_they_touch_and_fold_when_the_gap_closes() {
        let a = NodeId::new("a");
        let mut c = CausalContext::default();
        for k in [5, 7, 6, 10, 3] {
            c.insert(Dot::new(&a, k));
        }
        // 3, 5-7, 10 past an empty vector.
        assert_eq!(c.size(), 3);
        for k in [3, 5, 6, 7, 10] {
            assert!(c.contains(&Dot::new(&a, k)), "{k}");
        }
        for k in [1, 2, 4, 8, 9, 11] {
            assert!(!c.contains(&Dot::new(&a, k)), "{k}");
        }
        c.insert(Dot::new(&a, 1));
        c.insert(Dot::new(&a, 2));
        assert_eq!((c.vector().get(&a), c.size()), (3, 3));
        c.insert(Dot::new(&a, 4));
        assert_eq!((c.vector().get(&a), c.size()), (7, 2));
        c.insert(Dot::new(&a, 8));
        c.insert(Dot::new(&a, 9));
        assert_eq!((c.vector().get(&a), c.size()), (10, 1));
    }

    #[test]
    fn vectors_order_and_concurrency() {
        let (a, b) = (NodeId::new("a"), NodeId::new("b"));
        let mut x = VersionVector::default();
        x.set(&a, 2);
        let mut y = x.clone();
        y.set(&b, 1);
        assert!(y.dominates(&x) && !x.dominates(&y));
        x.set(&a, 3);
        assert!(x.concurrent(&y));
        x.merge(&y);
        assert!(x.dominates(&y) && x.get(&a) == 3 && x.get(&b) == 1);
    }
}
