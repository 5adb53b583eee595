//! Dots, version vectors and causal contexts: what a replica has seen.
//!
//! A dot `(replica, n)` names the n-th event of a replica. A version vector
//! holds, per replica, the longest gap-free prefix seen; a causal context
//! adds the dots seen out of order (the "dot cloud") and folds them into the
//! vector as gaps close, so it stays small when deltas arrive in order.

use crate::id::NodeId;
use std::collections::{BTreeMap, BTreeSet};

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

/// A version vector plus the dots seen past its gaps.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CausalContext {
    vv: VersionVector,
    cloud: BTreeSet<Dot>,
}

impl CausalContext {
    pub fn contains(&self, d: &Dot) -> bool {
        self.vv.contains(d) || self.cloud.contains(d)
    }

    /// The next dot of `replica` (one past everything seen from it).
    pub fn next_dot(&mut self, replica: &NodeId) -> Dot {
        let mut n = self.vv.get(replica) + 1;
        while self.cloud.contains(&Dot::new(replica, n)) {
            n += 1;
        }
        let d = Dot::new(replica, n);
        self.insert(d.clone());
        d
    }

    pub fn insert(&mut self, d: Dot) {
        if !self.vv.contains(&d) {
            self.cloud.insert(d);
            self.compact();
        }
    }

    pub fn merge(&mut self, o: &CausalContext) {
        self.vv.merge(&o.vv);
        for d in &o.cloud {
            if !self.vv.contains(d) {
                self.cloud.insert(d.clone());
            }
        }
        self.compact();
    }

    /// Folds cloud dots that close a gap into the vector.
    fn compact(&mut self) {
        loop {
            let mut changed = false;
            let next: Vec<Dot> = self
                .cloud
                .iter()
                .filter(|d| d.counter <= self.vv.get(&d.replica) + 1)
                .cloned()
                .collect();
            for d in next {
                self.cloud.remove(&d);
                if d.counter == self.vv.get(&d.replica) + 1 {
                    self.vv.set(&d.replica, d.counter);
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
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
            } else {
                for c in from + 1..=n {
                    out.cloud.insert(Dot::new(r, c));
                }
            }
        }
        for d in &self.cloud {
            if !since.contains(d) {
                out.cloud.insert(d.clone());
            }
        }
        out
    }

    /// Dots held (vector entries count as their length).
    pub fn size(&self) -> usize {
        self.vv.len() + self.cloud.len()
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
