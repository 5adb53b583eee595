//! What a node holds of each origin life, hashed so that a digest can
//! summarise it.
//!
//! A digest that lists every origin life grows with the cluster and its
//! restarts (1,000 members: about 20 KB every round). So past a size a
//! digest lists only the lives that changed lately, or that the peer was
//! seen to differ on, and sums the others into buckets: a bucket is the XOR
//! of its lives' hashes, and a life's hash covers every number held. Two
//! nodes that hold the same of a bucket's lives send the same sum; a bucket
//! summed as zero holds nothing. Hashes are stable ([`NodeId::hash64`],
//! [`mix`]), so nodes of any build and platform agree on them.

use super::seqset::SeqSet;
use crate::id::{Epoch, NodeId, mix};
use crate::time::Instant;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

/// One life of an origin.
pub(crate) type Origin = (NodeId, Epoch);

/// A held life's part in the sums: its fine bucket and its hash.
pub(crate) type Share = (u8, u64);

/// The finest bucketing; a digest uses this many or fewer (a power of two
/// dividing it, so a coarse bucket is a set of fine ones).
pub(crate) const FINE: usize = 256;

#[derive(Debug)]
pub(crate) struct Life {
    pub seqs: SeqSet,
    /// The fine bucket of this life.
    bucket: u8,
    /// Covers the life and every number held; never zero.
    hash: u64,
}

#[derive(Debug)]
pub(crate) struct Lives {
    lives: BTreeMap<Origin, Life>,
    /// Per fine bucket, the XOR of its lives' hashes.
    fine: Vec<u64>,
    /// Per fine bucket, its lives (a digest lists whole buckets).
    members: Vec<Vec<Origin>>,
    /// Numbers added lately, oldest first (what changed lately, and what a
    /// peer that differs on a bucket most likely lacks).
    recent: VecDeque<Added>,
}

/// A number added lately: when, of which life, and the life's fine bucket.
#[derive(Debug)]
struct Added(Instant, Origin, u64, u8);

impl Default for Lives {
    fn default() -> Self {
        Lives {
            lives: BTreeMap::new(),
            fine: vec![0; FINE],
            members: vec![Vec::new(); FINE],
            recent: VecDeque::new(),
        }
    }
}

fn life_hash(o: &Origin) -> u64 {
    mix(o.0.hash64() ^ mix(o.1.0))
}

/// The fine bucket of an origin life.
pub(crate) fn bucket_of(o: &Origin) -> u8 {
    (life_hash(o) >> 56) as u8
}

fn seqs_hash(o: &Origin, s: &SeqSet) -> u64 {
    let mut h = mix(life_hash(o) ^ s.contig);
    for x in &s.extra {
        h = mix(h ^ *x);
    }
    h.max(1)
}

/// How many buckets a digest of `lives` origin lives sums into: about
/// eight lives a bucket, at most [`FINE`].
pub(crate) fn coarse(lives: usize) -> usize {
    (lives / 8).next_power_of_two().clamp(1, FINE)
}

/// The fine buckets that make coarse bucket `b` of `n`.
pub(crate) fn fine_of(n: usize, b: usize) -> impl Iterator<Item = u8> {
    (b..FINE).step_by(n).map(|f| f as u8)
}

/// Is `n` a bucket count a digest may carry?
pub(crate) fn valid_coarse(n: usize) -> bool {
    n.is_power_of_two() && n <= FINE
}

impl Lives {
    /// Adds `seq` of origin life `o`; true if it is new.
    pub fn insert(&mut self, now: Instant, o: &Origin, seq: u64) -> bool {
        if seq == 0 {
            return false;
        }
        let life = match self.lives.get_mut(o) {
            Some(l) => l,
            None => {
                let bucket = bucket_of(o);
                self.members[usize::from(bucket)].push(o.clone());
                self.lives.entry(o.clone()).or_insert(Life {
                    seqs: SeqSet::default(),
                    bucket,
                    hash: 0,
                })
            }
        };
        if !life.seqs.insert(seq) {
            return false;
        }
        let h = seqs_hash(o, &life.seqs);
        self.fine[usize::from(life.bucket)] ^= life.hash ^ h;
        life.hash = h;
        self.recent
            .push_back(Added(now, o.clone(), seq, life.bucket));
        true
    }

    pub fn get(&self, o: &Origin) -> Option<&SeqSet> {
        self.lives.get(o).map(|l| &l.seqs)
    }

    /// The life `(name, epoch)` as held here: its key, its numbers, and
    /// its share of the sums (fine bucket, hash).
    pub fn entry(&self, name: &NodeId, epoch: Epoch) -> Option<(&Origin, &SeqSet, Share)> {
        self.lives
            .get_key_value(&(name.clone(), epoch))
            .map(|(k, l)| (k, &l.seqs, (l.bucket, l.hash)))
    }

    /// A held life's share of the sums.
    pub fn share(&self, o: &Origin) -> Option<Share> {
        self.lives.get(o).map(|l| (l.bucket, l.hash))
    }

    pub fn len(&self) -> usize {
        self.lives.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Origin, &SeqSet)> {
        self.lives.iter().map(|(o, l)| (o, &l.seqs))
    }

    /// Forgets additions older than `window`.
    pub fn age(&mut self, now: Instant, window: Duration) {
        while self.recent.front().is_some_and(|a| a.0 + window < now) {
            self.recent.pop_front();
        }
    }

    /// Origin lives with a number added within the window.
    pub fn recent_lives(&self) -> BTreeSet<&Origin> {
        self.recent.iter().map(|a| &a.1).collect()
    }

    /// Numbers added within the window, oldest first, with their life's
    /// fine bucket.
    pub fn recent(&self) -> impl Iterator<Item = (&Origin, u64, u8)> {
        self.recent.iter().map(|a| (&a.1, a.2, a.3))
    }

    /// Lives whose fine bucket falls in one of `buckets` coarse buckets of
    /// `n` (bucket by bucket, each in the order it was first seen).
    pub fn in_buckets(&self, n: usize, buckets: &BTreeSet<usize>) -> Vec<&Origin> {
        buckets
            .iter()
            .flat_map(|b| fine_of(n, *b))
            .flat_map(|f| &self.members[usize::from(f)])
            .collect()
    }

    /// The sums of `n` coarse buckets over every life but those whose
    /// shares are `listed` (each listed life at most once).
    pub fn sums(&self, n: usize, listed: impl IntoIterator<Item = Share>) -> Vec<u64> {
        let mut out = vec![0; n];
        for (i, h) in self.fine.iter().enumerate() {
            out[i & (n - 1)] ^= h;
        }
        for (bucket, hash) in listed {
            out[usize::from(bucket) & (n - 1)] ^= hash;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(n: &str, e: u64) -> Origin {
        (NodeId::new(n), Epoch(e))
    }

    #[test]
    fn equal_holdings_sum_equal_whatever_the_order_and_a_difference_shows() {
        let (mut a, mut b) = (Lives::default(), Lives::default());
        let t = Instant::ZERO;
        for i in 0..40u64 {
            let x = o(&format!("n{}", i % 7), i % 2);
            a.insert(t, &x, i / 3 + 1);
        }
        for i in (0..40u64).rev() {
            let x = o(&format!("n{}", i % 7), i % 2);
            b.insert(t, &x, i / 3 + 1);
        }
        let none: [Share; 0] = [];
        for n in [1, 2, 8, FINE] {
            assert_eq!(a.sums(n, none), b.sums(n, none), "{n} buckets");
        }
        let x = o("n3", 1);
        b.insert(t, &x, 99);
        let (sa, sb) = (a.sums(16, none), b.sums(16, none));
        let differ: Vec<usize> = (0..16).filter(|i| sa[*i] != sb[*i]).collect();
        assert_eq!(differ, vec![usize::from(bucket_of(&x)) & 15]);
        // Listing the life that differs takes it out of the sums.
        assert_eq!(a.sums(16, a.share(&x)), b.sums(16, b.share(&x)));
        assert!(Lives::default().sums(4, none).iter().all(|s| *s == 0));
        assert!(!a.insert(t, &x, 0), "numbers start at 1");
    }

    #[test]
    fn hashes_are_the_same_on_every_platform_and_build() {
        let mut a = Lives::default();
        a.insert(Instant::ZERO, &o("n0", 1), 1);
        let none: [Share; 0] = [];
        assert_eq!(
            a.sums(1, none),
            vec![seqs_hash(&o("n0", 1), a.get(&o("n0", 1)).unwrap())]
        );
        assert_eq!(bucket_of(&o("n0", 1)), 111);
        assert_eq!(coarse(0), 1);
        assert_eq!(coarse(1000), 128);
        assert_eq!(coarse(100_000), FINE);
    }

    #[test]
    fn recent_additions_age_out() {
        let mut a = Lives::default();
        a.insert(Instant::ZERO, &o("a", 1), 1);
        a.insert(Instant::from_millis(900), &o("b", 1), 1);
        a.age(Instant::from_millis(1500), Duration::from_secs(1));
        assert_eq!(
            a.recent_lives().into_iter().collect::<Vec<_>>(),
            vec![&o("b", 1)]
        );
    }
}
