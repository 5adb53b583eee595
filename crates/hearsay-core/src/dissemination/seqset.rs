//! The sequence numbers held of one origin life: everything up to
//! `contig`, and what came out of order above it. Anti-entropy digests and
//! the cluster broadcaster's deduplication both use it.

use super::{MAX_EXTRAS, Mark};
use crate::id::{Epoch, NodeId};
use std::collections::BTreeSet;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SeqSet {
    pub contig: u64,
    pub extra: BTreeSet<u64>,
}

impl SeqSet {
    /// Adds `seq`; true if it is new.
    pub fn insert(&mut self, seq: u64) -> bool {
        if seq <= self.contig || !self.extra.insert(seq) {
            return false;
        }
        while self.contig < u64::MAX && self.extra.remove(&(self.contig + 1)) {
            self.contig += 1;
        }
        true
    }

    pub fn holds(&self, seq: u64) -> bool {
        seq <= self.contig || self.extra.contains(&seq)
    }

    /// Gives up on holes once `max` numbers wait above one (they are then
    /// taken as held), so a hole nobody can fill cannot grow this forever.
    pub fn bound(&mut self, max: usize) {
        while self.extra.len() > max {
            let first = *self.extra.first().expect("non-empty");
            self.extra.remove(&first);
            self.contig = self.contig.max(first);
        }
    }

    /// Does `other` hold every number this holds? Bounded work: a prefix
    /// longer than what `other` could cover is a quick no.
    pub fn within(&self, other: &SeqSet) -> bool {
        if self.contig > other.contig {
            let gap = self.contig - other.contig;
            if gap > other.extra.len() as u64 {
                return false;
            }
            if !(other.contig + 1..=self.contig).all(|s| other.extra.contains(&s)) {
                return false;
            }
        }
        self.extra.iter().all(|s| other.holds(*s))
    }

    /// As a digest entry (at most [`MAX_EXTRAS`] out-of-order numbers).
    pub fn mark(&self, origin: &NodeId, epoch: Epoch) -> Mark {
        let extra = self.extra.iter().take(MAX_EXTRAS).copied().collect();
        Mark(origin.clone(), epoch, self.contig, extra)
    }

    /// Does `mark` hold every number this holds? (No copy of the mark.)
    pub fn within_mark(&self, mark: &Mark) -> bool {
        let held = |s: u64| s <= mark.2 || mark.3.contains(&s);
        if self.contig > mark.2 {
            if self.contig - mark.2 > mark.3.len() as u64 {
                return false;
            }
            if !(mark.2 + 1..=self.contig).all(held) {
                return false;
            }
        }
        self.extra.iter().all(|s| held(*s))
    }

    /// Does this hold every number `mark` holds?
    pub fn covers_mark(&self, mark: &Mark) -> bool {
        if mark.2 > self.contig {
            if mark.2 - self.contig > self.extra.len() as u64 {
                return false;
            }
            if !(self.contig + 1..=mark.2).all(|s| self.extra.contains(&s)) {
                return false;
            }
        }
        mark.3.iter().all(|s| self.holds(*s))
    }

    /// From a digest entry.
    pub fn of(mark: &Mark) -> SeqSet {
        SeqSet {
            contig: mark.2,
            extra: mark.3.iter().copied().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_what_arrived_in_any_order_and_compares_by_content() {
        let mut a = SeqSet::default();
        assert!(a.insert(2) && a.insert(1) && !a.insert(2));
        assert_eq!((a.contig, a.extra.len()), (2, 0));
        a.insert(5);
        assert!(a.holds(5) && !a.holds(4));
        let mut b = SeqSet::default();
        for s in [1, 2, 3, 4, 5] {
            b.insert(s);
        }
        assert!(a.within(&b) && !b.within(&a));
        let mut c = SeqSet::default();
        for s in 10..20 {
            c.insert(s);
        }
        c.bound(4);
        assert!(c.extra.len() <= 4 && c.holds(10));
        assert_eq!(SeqSet::of(&a.mark(&NodeId::new("o"), Epoch(1))), a);
        let (ma, mb) = (
            a.mark(&NodeId::new("o"), Epoch(1)),
            b.mark(&NodeId::new("o"), Epoch(1)),
        );
        assert!(a.within_mark(&mb) && !b.within_mark(&ma));
        assert!(b.covers_mark(&ma) && !a.covers_mark(&mb));
        assert!(a.covers_mark(&ma) && a.within_mark(&ma));
    }
}
