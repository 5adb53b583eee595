//! The member table: one record per member, tombstones for those dropped,
//! an order-independent digest of who is live, and the shuffled lists that
//! probe targets are taken from round-robin (SWIM §4.3).

use super::member::{Incarnation, Meta, Status, Update, overrides};
use crate::id::{NodeId, mix};
use crate::rng::{Rng, RngExt};
use crate::time::Instant;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Debug)]
pub(crate) struct Record {
    pub inc: Incarnation,
    pub status: Status,
    pub meta: Arc<Meta>,
    /// When the status last changed.
    pub since: Instant,
    /// Who suspected it or declared it dead.
    pub from: Option<NodeId>,
}

/// What applying a claim changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Change {
    pub id: NodeId,
    /// The status before (None: the member was unknown).
    pub was: Option<Status>,
    pub now: Status,
    pub inc: Incarnation,
}

#[derive(Debug)]
pub(crate) struct Table {
    me: NodeId,
    my_zone: Option<Box<str>>,
    records: BTreeMap<NodeId, Record>,
    /// Members dropped after their retention: their last incarnation, and
    /// when they were dropped. Only a higher incarnation brings them back.
    tombstones: BTreeMap<NodeId, (Incarnation, Instant)>,
    /// Members not live (dead or left), for collection.
    gone: BTreeSet<NodeId>,
    live: usize,
    /// Sum of a hash of (id, incarnation) over live members: two members
    /// agree on who is live (and in which incarnation) iff, almost surely,
    /// their digests are equal.
    digest: u64,
    /// Probe order, per zone class: shuffled, walked round-robin, entries
    /// that went stale are skipped.
    local: Vec<NodeId>,
    remote: Vec<NodeId>,
    pos: [usize; 2],
}

fn contribution(id: &NodeId, inc: Incarnation) -> u64 {
    mix(id.hash64() ^ mix(inc.epoch.0) ^ u64::from(inc.n).rotate_left(32))
}

impl Table {
    pub fn new(me: NodeId, my_zone: Option<Box<str>>) -> Self {
        Table {
            me,
            my_zone,
            records: BTreeMap::new(),
            tombstones: BTreeMap::new(),
            gone: BTreeSet::new(),
            live: 0,
            digest: 0,
            local: Vec::new(),
            remote: Vec::new(),
            pos: [0, 0],
        }
    }

    pub fn get(&self, id: &NodeId) -> Option<&Record> {
        self.records.get(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&NodeId, &Record)> {
        self.records.iter()
    }

    /// Live members other than this one.
    pub fn live(&self) -> usize {
        self.live
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn digest(&self) -> u64 {
        self.digest
    }

    fn is_local(&self, meta: &Meta) -> bool {
        meta.zone == self.my_zone
    }

    /// Applies a claim if it overrides what is known (the precedence rule),
    /// and no tombstone forbids it. A claim about an unknown member adds it
    /// only when it says the member is alive or suspect.
    pub fn apply(&mut self, u: &Update, now: Instant, rng: &mut Rng) -> Option<Change> {
        if u.id == self.me {
            return None;
        }
        if let Some((inc, _)) = self.tombstones.get(&u.id) {
            if u.inc <= *inc {
                return None;
            }
            self.tombstones.remove(&u.id);
        }
        let was = match self.records.get(&u.id) {
            Some(r) if !overrides(u.inc, u.status, r.inc, r.status) => return None,
            Some(r) => Some((r.status, r.inc)),
            None if !u.status.is_live() => return None,
            None => None,
        };
        let meta = match (&u.meta, self.records.get(&u.id)) {
            (Some(m), _) => m.clone(),
            (None, Some(r)) => r.meta.clone(),
            (None, None) => Arc::new(Meta::default()),
        };
        if let Some((status, inc)) = was
            && status.is_live()
        {
            self.digest = self.digest.wrapping_sub(contribution(&u.id, inc));
            self.live -= 1;
        }
        if u.status.is_live() {
            self.digest = self.digest.wrapping_add(contribution(&u.id, u.inc));
            self.live += 1;
            self.gone.remove(&u.id);
            if !was.is_some_and(|(s, _)| s.is_live()) {
                self.enlist(&u.id, &meta, rng);
            }
        } else {
            self.gone.insert(u.id.clone());
        }
        self.records.insert(
            u.id.clone(),
            Record {
                inc: u.inc,
                status: u.status,
                meta,
                since: now,
                from: u.from.clone(),
            },
        );
        Some(Change {
            id: u.id.clone(),
            was: was.map(|(s, _)| s),
            now: u.status,
            inc: u.inc,
        })
    }

    /// A new live member goes to a random place in its probe list (so it
    /// is probed within one pass, SWIM §4.3).
    fn enlist(&mut self, id: &NodeId, meta: &Meta, rng: &mut Rng) {
        let list = if self.is_local(meta) {
            &mut self.local
        } else {
            &mut self.remote
        };
        let at = rng.random_range(0..=list.len());
        list.insert(at, id.clone());
    }

    fn is_live(&self, id: &NodeId) -> bool {
        self.records.get(id).is_some_and(|r| r.status.is_live())
    }

    /// The next probe target, round-robin over a shuffled list; a pass over
    /// a list reshuffles it and drops members no longer live. With zones,
    /// `remote` picks from the other zones' list.
    pub fn next_target(&mut self, remote: bool, rng: &mut Rng) -> Option<NodeId> {
        let k = usize::from(remote);
        for _ in 0..2 {
            let list = if remote { &self.remote } else { &self.local };
            while self.pos[k] < list.len() {
                let id = &list[self.pos[k]];
                self.pos[k] += 1;
                if self.is_live(id) {
                    return Some(id.clone());
                }
            }
            // A pass is over: compact and shuffle for the next one.
            let mut list = std::mem::take(if remote {
                &mut self.remote
            } else {
                &mut self.local
            });
            list.retain(|id| self.is_live(id));
            list.sort();
            list.dedup();
            for i in (1..list.len()).rev() {
                let j = rng.random_range(0..=i);
                list.swap(i, j);
            }
            self.pos[k] = 0;
            let empty = list.is_empty();
            *(if remote {
                &mut self.remote
            } else {
                &mut self.local
            }) = list;
            if empty {
                return None;
            }
        }
        None
    }

    /// Is there anyone in the other zones?
    pub fn has_remote(&self) -> bool {
        self.remote.iter().any(|id| self.is_live(id))
    }

    pub fn has_local(&self) -> bool {
        self.local.iter().any(|id| self.is_live(id))
    }

    /// Up to `k` distinct random live members, not in `except`, from the
    /// local list with probability 1 - `cross` (when both exist).
    pub fn random_live(
        &self,
        k: usize,
        except: &[&NodeId],
        cross: f64,
        rng: &mut Rng,
    ) -> Vec<NodeId> {
        let mut out: Vec<NodeId> = Vec::with_capacity(k);
        let lists = [&self.local, &self.remote];
        let total = self.local.len() + self.remote.len();
        // Bounded tries: stale entries and repeats are skipped.
        for _ in 0..(k * 8).max(16) {
            if out.len() >= k {
                break;
            }
            let use_remote = match (self.local.is_empty(), self.remote.is_empty()) {
                (true, true) => break,
                (true, false) => true,
                (false, true) => false,
                (false, false) => rng.random_bool(cross),
            };
            let list = lists[usize::from(use_remote)];
            let id = &list[rng.random_range(0..list.len())];
            if self.is_live(id) && !except.contains(&id) && !out.contains(id) {
                out.push(id.clone());
            }
        }
        if out.len() < k && total <= 4 * k {
            // Small clusters: take whoever is left, in order.
            for id in self.local.iter().chain(&self.remote) {
                if out.len() >= k {
                    break;
                }
                if self.is_live(id) && !except.contains(&id) && !out.contains(id) {
                    out.push(id.clone());
                }
            }
        }
        out
    }

    /// A random member that is dead (not left), for reconnection.
    pub fn random_dead(&self, rng: &mut Rng) -> Option<NodeId> {
        let dead: Vec<&NodeId> = self
            .gone
            .iter()
            .filter(|id| self.records[*id].status == Status::Dead)
            .collect();
        (!dead.is_empty()).then(|| dead[rng.random_range(0..dead.len())].clone())
    }

    /// Members dead for less than `window` (they may still learn they must
    /// refute, so gossip reaches them too).
    pub fn recently_dead(&self, now: Instant, window: Duration) -> Vec<NodeId> {
        self.gone
            .iter()
            .filter(|id| {
                let r = &self.records[*id];
                r.status == Status::Dead && now < r.since + window
            })
            .cloned()
            .collect()
    }

    /// Drops dead and left members past their retention (keeping a
    /// tombstone), and tombstones past theirs. Returns who was dropped.
    pub fn collect(
        &mut self,
        now: Instant,
        dead: Duration,
        left: Duration,
        tombstone: Duration,
    ) -> Vec<NodeId> {
        let expired: Vec<NodeId> = self
            .gone
            .iter()
            .filter(|id| {
                let r = &self.records[*id];
                let keep = if r.status == Status::Left { left } else { dead };
                r.since + keep <= now
            })
            .cloned()
            .collect();
        for id in &expired {
            self.gone.remove(id);
            if let Some(r) = self.records.remove(id) {
                self.tombstones.insert(id.clone(), (r.inc, now));
            }
        }
        self.tombstones.retain(|_, (_, at)| *at + tombstone > now);
        expired
    }

    #[cfg(test)]
    pub fn tombstones(&self) -> usize {
        self.tombstones.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::Epoch;
    use crate::rng;

    fn claim(name: &str, e: u64, n: u32, status: Status) -> Update {
        Update {
            id: NodeId::new(name),
            inc: Incarnation::new(Epoch(e), n),
            status,
            meta: None,
            from: None,
        }
    }

    fn t0() -> Instant {
        Instant::ZERO
    }

    #[test]
    fn claims_follow_precedence_and_keep_the_digest_of_live_members() {
        let mut r = rng::child(1, "t");
        let mut t = Table::new(NodeId::new("me"), None);
        assert!(
            t.apply(&claim("a", 1, 0, Status::Alive), t0(), &mut r)
                .is_some()
        );
        assert!(
            t.apply(&claim("b", 1, 0, Status::Alive), t0(), &mut r)
                .is_some()
        );
        let d = t.digest();
        // A stale or equal claim changes nothing.
        assert!(
            t.apply(&claim("a", 1, 0, Status::Alive), t0(), &mut r)
                .is_none()
        );
        // Suspicion keeps the member live, with the same digest.
        let ch = t
            .apply(&claim("a", 1, 0, Status::Suspect), t0(), &mut r)
            .unwrap();
        assert_eq!(ch.was, Some(Status::Alive));
        assert_eq!(t.digest(), d);
        assert_eq!(t.live(), 2);
        // Death removes it from the digest; a refutation puts it back.
        t.apply(&claim("a", 1, 0, Status::Dead), t0(), &mut r)
            .unwrap();
        assert_eq!(t.live(), 1);
        assert_ne!(t.digest(), d);
        assert!(
            t.apply(&claim("a", 1, 0, Status::Alive), t0(), &mut r)
                .is_none()
        );
        t.apply(&claim("a", 1, 1, Status::Alive), t0(), &mut r)
            .unwrap();
        assert_eq!(t.live(), 2);
        // Dead claims about unknown members are not taken in.
        assert!(
            t.apply(&claim("zz", 1, 0, Status::Dead), t0(), &mut r)
                .is_none()
        );
        // Claims about ourselves are the machine's business, not the table's.
        assert!(
            t.apply(&claim("me", 1, 0, Status::Dead), t0(), &mut r)
                .is_none()
        );
    }

    #[test]
    fn collected_members_stay_buried_until_a_new_incarnation() {
        let mut r = rng::child(1, "t");
        let mut t = Table::new(NodeId::new("me"), None);
        t.apply(&claim("a", 1, 0, Status::Alive), t0(), &mut r);
        t.apply(&claim("a", 1, 0, Status::Dead), t0(), &mut r);
        let s = Duration::from_secs;
        assert!(
            t.collect(Instant::ZERO + s(5), s(10), s(1), s(100))
                .is_empty()
        );
        assert_eq!(
            t.collect(Instant::ZERO + s(10), s(10), s(1), s(100)),
            vec![NodeId::new("a")]
        );
        assert!(t.get(&NodeId::new("a")).is_none());
        // An old rumour that it is alive does not resurrect it.
        assert!(
            t.apply(&claim("a", 1, 0, Status::Alive), t0(), &mut r)
                .is_none()
        );
        // A rejoin in a new life does.
        assert!(
            t.apply(&claim("a", 2, 0, Status::Alive), t0(), &mut r)
                .is_some()
        );
        // Tombstones themselves expire.
        t.apply(&claim("a", 2, 0, Status::Left), t0(), &mut r);
        t.collect(Instant::ZERO + s(20), s(10), s(1), s(100));
        assert_eq!(t.tombstones(), 1);
        t.collect(Instant::ZERO + s(200), s(10), s(1), s(100));
        assert_eq!(t.tombstones(), 0);
    }

    #[test]
    fn round_robin_probes_everyone_once_per_pass() {
        // SWIM §4.3: each member is probed once per pass over the list.
        let mut r = rng::child(1, "t");
        let mut t = Table::new(NodeId::new("me"), None);
        for i in 0..20 {
            t.apply(&claim(&format!("m{i}"), 1, 0, Status::Alive), t0(), &mut r);
        }
        for _pass in 0..3 {
            let mut seen = BTreeSet::new();
            for _ in 0..20 {
                seen.insert(t.next_target(false, &mut r).unwrap());
            }
            assert_eq!(seen.len(), 20);
        }
        t.apply(&claim("m3", 1, 0, Status::Dead), t0(), &mut r);
        let mut seen = BTreeSet::new();
        for _ in 0..38 {
            seen.insert(t.next_target(false, &mut r).unwrap());
        }
        assert!(
            !seen.contains(&NodeId::new("m3")),
            "dead members are not probed"
        );
    }
}
