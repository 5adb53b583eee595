//! Counters: a grow-only counter is a count per replica (each replica
//! raises only its own; the value is the sum, the join the pointwise max);
//! a PN-counter is two of them, increments and decrements.

use super::{Crdt, VersionVector};
use crate::id::NodeId;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GCounter(BTreeMap<NodeId, u64>);

impl GCounter {
    /// Adds `n` at replica `me`; returns the delta to send.
    pub fn add(&mut self, me: &NodeId, n: u64) -> GCounter {
        if n == 0 {
            // No entry for nothing: states stay canonical.
            return GCounter::default();
        }
        let e = self.0.entry(me.clone()).or_default();
        *e = e.saturating_add(n);
        GCounter(BTreeMap::from([(me.clone(), *e)]))
    }

    pub fn value(&self) -> u64 {
        self.0.values().fold(0u64, |a, &b| a.saturating_add(b))
    }

    fn get(&self, r: &NodeId) -> u64 {
        self.0.get(r).copied().unwrap_or(0)
    }
}

impl Crdt for GCounter {
    fn merge(&mut self, o: &Self) {
        for (r, &n) in &o.0 {
            let e = self.0.entry(r.clone()).or_default();
            *e = (*e).max(n);
        }
    }

    /// A replica's count only grows, so it is that replica's version.
    fn version(&self) -> VersionVector {
        let mut v = VersionVector::default();
        for (r, &n) in &self.0 {
            v.set(r, n);
        }
        v
    }

    fn delta_since(&self, since: &VersionVector) -> Self {
        GCounter(
            self.0
                .iter()
                .filter(|&(r, &n)| n > since.get(r))
                .map(|(r, &n)| (r.clone(), n))
                .collect(),
        )
    }

    fn size(&self) -> usize {
        self.0.len()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PNCounter {
    p: GCounter,
    n: GCounter,
}

impl PNCounter {
    /// Adds `delta` (negative to subtract) at `me`; returns the delta to
    /// send: both halves of `me`, so that the receiver's version of `me`
    /// (their sum) is exact.
    pub fn add(&mut self, me: &NodeId, delta: i64) -> PNCounter {
        if delta >= 0 {
            self.p.add(me, delta.unsigned_abs());
        } else {
            self.n.add(me, delta.unsigned_abs());
        }
        let only = |g: &GCounter| {
            GCounter(
                g.0.get(me)
                    .map(|&n| BTreeMap::from([(me.clone(), n)]))
                    .unwrap_or_default(),
            )
        };
        PNCounter {
            p: only(&self.p),
            n: only(&self.n),
        }
    }

    /// The count (saturating at the ends of i64).
    pub fn value(&self) -> i64 {
        let v = i128::from(self.p.value()) - i128::from(self.n.value());
        v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }
}

impl Crdt for PNCounter {
    fn merge(&mut self, o: &Self) {
        self.p.merge(&o.p);
        self.n.merge(&o.n);
    }

    /// Each replica's increments plus decrements: both only grow, along
    /// one history per replica, so their sum orders that replica's states.
    fn version(&self) -> VersionVector {
        let mut v = VersionVector::default();
        for (r, _) in self.p.0.iter().chain(self.n.0.iter()) {
            v.set(r, self.p.get(r).saturating_add(self.n.get(r)));
        }
        v
    }

    fn delta_since(&self, since: &VersionVector) -> Self {
        let newer = |r: &NodeId| self.p.get(r).saturating_add(self.n.get(r)) > since.get(r);
        let pick = |g: &GCounter| {
            GCounter(
                g.0.iter()
                    .filter(|(r, _)| newer(r))
                    .map(|(r, &n)| (r.clone(), n))
                    .collect(),
            )
        };
        PNCounter {
            p: pick(&self.p),
            n: pick(&self.n),
        }
    }

    fn size(&self) -> usize {
        self.p.size() + self.n.size()
    }
}
