//! The member table: one record per member, tombstones for those dropped,
//! an order-independent digest of who is live (per bucket of names, so a
//! sync sends only the buckets that differ), and the shuffled lists that
//! probe targets are taken from round-robin (SWIM §4.3).
//!
//! Compact on purpose: every member holds a record of every other, so a
//! simulator of 10,000 members holds 10^8 of them. A record is 16 bytes
//! plus a shared metadata pointer and a shared name; what only a few
//! records need (when a dead member died, who accused a suspect) lives in
//! a side table.

use super::member::{Incarnation, Meta, Sig, Status, Update, overrides};
use crate::id::{Epoch, NodeId, mix};
use crate::rng::{Rng, RngExt};
use crate::time::Instant;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// Name buckets of the digest (a power of two).
pub const BUCKETS: usize = 64;

/// The bucket of a name.
pub fn bucket(id: &NodeId) -> usize {
    (id.hash64() >> 58) as usize
}

/// A record as callers see it.
#[derive(Clone, Debug)]
pub(crate) struct Record<'a> {
    pub inc: Incarnation,
    pub status: Status,
    pub meta: &'a Arc<Meta>,
    /// Who suspected it or declared it dead.
    pub from: Option<&'a NodeId>,
    /// Its signature of its last alive or left claim, if it signs.
    pub sig: Option<&'a Sig>,
}

impl Record<'_> {
    /// The claim that restates this record of `id`, as a state sync
    /// carries it (metadata only for an alive member).
    pub fn update(&self, id: &NodeId) -> Update {
        Update {
            id: id.clone(),
            inc: self.inc,
            status: self.status,
            meta: (self.status == Status::Alive).then(|| self.meta.clone()),
            from: self.from.cloned(),
            sig: self.sig.copied(),
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    epoch: u64,
    n: u32,
    status: Status,
    local: bool,
    used: bool,
}

impl Slot {
    fn inc(&self) -> Incarnation {
        Incarnation::new(Epoch(self.epoch), self.n)
    }
}

#[derive(Clone, Debug)]
struct Side {
    since: Instant,
    from: Option<NodeId>,
}

/// What applying a claim changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Change {
    pub id: NodeId,
    /// The status before (None: the member was unknown).
    pub was: Option<Status>,
    pub now: Status,
    pub inc: Incarnation,
    /// The claim brought other metadata (new tags) than was known.
    pub meta_changed: bool,
}

#[derive(Debug)]
pub(crate) struct Table {
    me: NodeId,
    my_zone: Option<Box<str>>,
    ids: Vec<NodeId>,
    slots: Vec<Slot>,
    metas: Vec<Arc<Meta>>,
    /// The signature of each signing member's last alive or left claim,
    /// relayed with it in state syncs.
    sigs: BTreeMap<u32, Sig>,
    /// Used slots by (name hash, name), for lookups that mostly compare
    /// integers in one array instead of chasing names.
    sorted: Vec<(u64, u32)>,
    side: BTreeMap<u32, Side>,
    free: Vec<u32>,
    /// Members dropped after their retention: their last incarnation, and
    /// when they were dropped. Only a higher incarnation brings them back.
    tombstones: BTreeMap<NodeId, (Incarnation, Instant)>,
    /// Members not live (dead or left), for collection.
    gone: BTreeSet<u32>,
    live: usize,
    /// Per bucket, the sum of a hash of (id, incarnation) over its live
    /// members: two members agree on who is live (and in which
    /// incarnation) in a bucket iff, almost surely, its digests are equal.
    digest: [u64; BUCKETS],
    /// Probe order, per zone class: shuffled, walked round-robin, entries
    /// that went stale are skipped.
    local: Vec<u32>,
    remote: Vec<u32>,
    pos: [usize; 2],
    default_meta: Arc<Meta>,
    /// Members held at most, and claims about new ones refused for it.
    cap: usize,
    refused: u64,
}

pub(crate) fn contribution(id: &NodeId, inc: Incarnation) -> u64 {
    mix(id.hash64() ^ mix(inc.epoch.0) ^ u64::from(inc.n).rotate_left(32))
}

impl Table {
    pub fn new(me: NodeId, my_zone: Option<Box<str>>, cap: usize) -> Self {
        Table {
            me,
            my_zone,
            ids: Vec::new(),
            slots: Vec::new(),
            metas: Vec::new(),
            sigs: BTreeMap::new(),
            sorted: Vec::new(),
            side: BTreeMap::new(),
            free: Vec::new(),
            tombstones: BTreeMap::new(),
            gone: BTreeSet::new(),
            live: 0,
            digest: [0; BUCKETS],
            local: Vec::new(),
            remote: Vec::new(),
            pos: [0, 0],
            default_meta: Arc::new(Meta::default()),
            cap,
            refused: 0,
        }
    }

    /// Claims about new members refused because the table was full.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Where `id` is, or would go, in `sorted`.
    fn position(&self, h: u64, id: &NodeId) -> usize {
        let ids = &self.ids;
        self.sorted
            .partition_point(|(x, s)| (*x, &ids[*s as usize]) < (h, id))
    }

    fn find(&self, id: &NodeId) -> Option<u32> {
        let h = id.hash64();
        let mut i = self.sorted.partition_point(|(x, _)| *x < h);
        while let Some((x, s)) = self.sorted.get(i) {
            if *x != h {
                return None;
            }
            if self.ids[*s as usize] == *id {
                return Some(*s);
            }
            i += 1;
        }
        None
    }

    fn view(&self, s: u32) -> Record<'_> {
        let slot = &self.slots[s as usize];
        let side = self.side.get(&s);
        Record {
            inc: slot.inc(),
            status: slot.status,
            meta: &self.metas[s as usize],
            from: side.and_then(|x| x.from.as_ref()),
            sig: self.sigs.get(&s),
        }
    }

    pub fn get(&self, id: &NodeId) -> Option<Record<'_>> {
        self.find(id).map(|s| self.view(s))
    }

    /// The incarnation at which `id` is recorded as gone for good: left,
    /// or collected (a tombstone).
    pub fn gone_at(&self, id: &NodeId) -> Option<Incarnation> {
        match self.get(id) {
            Some(r) if r.status == Status::Left => Some(r.inc),
            Some(_) => None,
            None => self.tombstones.get(id).map(|(inc, _)| *inc),
        }
    }

    /// Every record, in (name hash, name) order.
    pub fn iter(&self) -> impl Iterator<Item = (&NodeId, Record<'_>)> {
        self.sorted
            .iter()
            .map(|(_, s)| (&self.ids[*s as usize], self.view(*s)))
    }

    /// Live members other than this one.
    pub fn live(&self) -> usize {
        self.live
    }

    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    pub fn digests(&self) -> &[u64; BUCKETS] {
        &self.digest
    }

    fn is_local(&self, meta: &Meta) -> bool {
        meta.zone == self.my_zone
    }

    fn slot_live(&self, s: u32) -> bool {
        self.slots
            .get(s as usize)
            .is_some_and(|x| x.used && x.status.is_live())
    }

    /// A warm start: members known alive, added in one pass (no per-member
    /// list shuffling), replacing nothing already known.
    pub fn bulk_alive(
        &mut self,
        members: impl IntoIterator<Item = (NodeId, Incarnation, Arc<Meta>)>,
        rng: &mut Rng,
    ) {
        for (id, inc, meta) in members {
            if id == self.me || self.tombstones.contains_key(&id) {
                continue;
            }
            let s = self.alloc(id.clone(), inc, Status::Alive, meta);
            self.sorted.push((id.hash64(), s));
            self.digest[bucket(&id)] =
                self.digest[bucket(&id)].wrapping_add(contribution(&id, inc));
            self.live += 1;
            if self.slots[s as usize].local {
                self.local.push(s);
            } else {
                self.remote.push(s);
            }
        }
        let ids = &self.ids;
        let key = |e: &(u64, u32)| (e.0, &ids[e.1 as usize]);
        self.sorted.sort_by(|a, b| key(a).cmp(&key(b)));
        self.sorted.dedup_by(|a, b| key(a) == key(b));
        for list in [&mut self.local, &mut self.remote] {
            for i in (1..list.len()).rev() {
                let j = rng.random_range(0..=i);
                list.swap(i, j);
            }
        }
        self.pos = [0, 0];
    }

    fn alloc(&mut self, id: NodeId, inc: Incarnation, status: Status, meta: Arc<Meta>) -> u32 {
        let meta = if *meta == Meta::default() {
            self.default_meta.clone()
        } else {
            meta
        };
        let slot = Slot {
            epoch: inc.epoch.0,
            n: inc.n,
            status,
            local: self.is_local(&meta),
            used: true,
        };
        match self.free.pop() {
            Some(s) => {
                self.ids[s as usize] = id;
                self.slots[s as usize] = slot;
                self.metas[s as usize] = meta;
                s
            }
            None => {
                self.ids.push(id);
                self.slots.push(slot);
                self.metas.push(meta);
                (self.slots.len() - 1) as u32
            }
        }
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
        let b = bucket(&u.id);
        let mut meta_changed = false;
        let (s, was) = match self.find(&u.id) {
            Some(s) => {
                let slot = self.slots[s as usize];
                if !overrides(u.inc, u.status, slot.inc(), slot.status) {
                    return None;
                }
                if slot.status.is_live() {
                    self.digest[b] = self.digest[b].wrapping_sub(contribution(&u.id, slot.inc()));
                    self.live -= 1;
                }
                if let Some(m) = &u.meta {
                    meta_changed = **m != *self.metas[s as usize];
                    self.metas[s as usize] = m.clone();
                    self.slots[s as usize].local = self.is_local(m);
                }
                let x = &mut self.slots[s as usize];
                x.epoch = u.inc.epoch.0;
                x.n = u.inc.n;
                x.status = u.status;
                (s, Some(slot.status))
            }
            None if !u.status.is_live() => return None,
            None if self.sorted.len() >= self.cap => {
                self.refused += 1;
                return None;
            }
            None => {
                let meta = u.meta.clone().unwrap_or_else(|| self.default_meta.clone());
                let s = self.alloc(u.id.clone(), u.inc, u.status, meta);
                let h = u.id.hash64();
                let at = self.position(h, &u.id);
                self.sorted.insert(at, (h, s));
                (s, None)
            }
        };
        match (u.status, u.sig) {
            (Status::Alive | Status::Left, Some(sig)) => {
                self.sigs.insert(s, sig);
            }
            _ => {
                self.sigs.remove(&s);
            }
        }
        if u.status.is_live() {
            self.digest[b] = self.digest[b].wrapping_add(contribution(&u.id, u.inc));
            self.live += 1;
            self.gone.remove(&s);
            if !was.is_some_and(Status::is_live) {
                self.enlist(s, rng);
            }
        } else {
            self.gone.insert(s);
        }
        if u.status == Status::Alive {
            self.side.remove(&s);
        } else {
            self.side.insert(
                s,
                Side {
                    since: now,
                    from: u.from.clone(),
                },
            );
        }
        Some(Change {
            id: u.id.clone(),
            was,
            now: u.status,
            inc: u.inc,
            meta_changed,
        })
    }

    /// A new live member goes to a random place in its probe list (so it
    /// is probed within one pass, SWIM §4.3).
    fn enlist(&mut self, s: u32, rng: &mut Rng) {
        let list = if self.slots[s as usize].local {
            &mut self.local
        } else {
            &mut self.remote
        };
        let at = rng.random_range(0..=list.len());
        list.insert(at, s);
    }

    /// The next probe target, round-robin over a shuffled list; a pass over
    /// a list reshuffles it and drops members no longer live. With zones,
    /// `remote` picks from the other zones' list.
    pub fn next_target(&mut self, remote: bool, rng: &mut Rng) -> Option<NodeId> {
        let k = usize::from(remote);
        for _ in 0..2 {
            let list = if remote { &self.remote } else { &self.local };
            while self.pos[k] < list.len() {
                let s = list[self.pos[k]];
                self.pos[k] += 1;
                if self.slot_live(s) {
                    return Some(self.ids[s as usize].clone());
                }
            }
            // A pass is over: compact and shuffle for the next one.
            let mut list = std::mem::take(if remote {
                &mut self.remote
            } else {
                &mut self.local
            });
            list.retain(|s| self.slot_live(*s));
            list.sort_unstable();
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
        self.remote.iter().any(|s| self.slot_live(*s))
    }

    pub fn has_local(&self) -> bool {
        self.local.iter().any(|s| self.slot_live(*s))
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
        let ok = |s: u32, out: &Vec<NodeId>| {
            let id = &self.ids[s as usize];
            self.slot_live(s) && !except.contains(&id) && !out.contains(id)
        };
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
            let s = list[rng.random_range(0..list.len())];
            if ok(s, &out) {
                out.push(self.ids[s as usize].clone());
            }
        }
        if out.len() < k && total <= 4 * k {
            // Small clusters: take whoever is left, in order.
            for s in self.local.iter().chain(&self.remote) {
                if out.len() >= k {
                    break;
                }
                if ok(*s, &out) {
                    out.push(self.ids[*s as usize].clone());
                }
            }
        }
        out
    }

    /// A random member that is dead (not left), for reconnection.
    pub fn random_dead(&self, rng: &mut Rng) -> Option<NodeId> {
        let dead: Vec<u32> = self
            .gone
            .iter()
            .copied()
            .filter(|s| self.slots[*s as usize].status == Status::Dead)
            .collect();
        (!dead.is_empty()).then(|| self.ids[dead[rng.random_range(0..dead.len())] as usize].clone())
    }

    /// The next member after this one on the ring of name hashes that is
    /// alive and not suspected (a suspect is probed by those seeking
    /// confirmations), among the members of this one's zone.
    pub fn successor(&self) -> Option<NodeId> {
        let start = self.position(self.me.hash64(), &self.me);
        let n = self.sorted.len();
        (0..n)
            .map(|k| self.sorted[(start + k) % n].1)
            .find(|&s| {
                let x = &self.slots[s as usize];
                x.used && x.status == Status::Alive && x.local
            })
            .map(|s| self.ids[s as usize].clone())
    }

    /// Members dead for less than `window` (they may still learn they must
    /// refute, so gossip reaches them too).
    pub fn recently_dead(&self, now: Instant, window: Duration) -> Vec<NodeId> {
        self.gone
            .iter()
            .filter(|s| {
                self.slots[**s as usize].status == Status::Dead
                    && self.side.get(s).is_some_and(|x| now < x.since + window)
            })
            .map(|s| self.ids[*s as usize].clone())
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
        let expired: Vec<u32> = self
            .gone
            .iter()
            .copied()
            .filter(|s| {
                let keep = if self.slots[*s as usize].status == Status::Left {
                    left
                } else {
                    dead
                };
                self.side.get(s).is_none_or(|x| x.since + keep <= now)
            })
            .collect();
        let mut out = Vec::with_capacity(expired.len());
        for s in expired {
            self.gone.remove(&s);
            self.side.remove(&s);
            self.sigs.remove(&s);
            let id = self.ids[s as usize].clone();
            let at = self.position(id.hash64(), &id);
            if self.sorted.get(at).is_some_and(|(_, x)| *x == s) {
                self.sorted.remove(at);
            }
            let inc = self.slots[s as usize].inc();
            self.slots[s as usize].used = false;
            self.free.push(s);
            self.tombstones.insert(id.clone(), (inc, now));
            out.push(id);
        }
        self.tombstones.retain(|_, (_, at)| *at + tombstone > now);
        out
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
            sig: None,
        }
    }

    fn t0() -> Instant {
        Instant::ZERO
    }

    #[test]
    fn a_full_table_refuses_new_members_and_still_follows_the_ones_it_holds() {
        let mut r = rng::child(1, "t");
        let mut t = Table::new(NodeId::new("me"), None, 3);
        for n in ["a", "b", "c"] {
            assert!(
                t.apply(&claim(n, 1, 0, Status::Alive), t0(), &mut r)
                    .is_some()
            );
        }
        // A peer naming ever more members cannot grow it.
        for k in 0..1000 {
            let name = format!("x{k}");
            assert!(
                t.apply(&claim(&name, 1, 0, Status::Alive), t0(), &mut r)
                    .is_none()
            );
        }
        assert_eq!((t.live(), t.refused()), (3, 1000));
        // News about members held still applies.
        let ch = t.apply(&claim("b", 1, 0, Status::Suspect), t0(), &mut r);
        assert_eq!(ch.map(|c| c.now), Some(Status::Suspect));
    }

    #[test]
    fn claims_follow_precedence_and_keep_the_digest_of_live_members() {
        let mut r = rng::child(1, "t");
        let mut t = Table::new(NodeId::new("me"), None, 1 << 17);
        assert!(
            t.apply(&claim("a", 1, 0, Status::Alive), t0(), &mut r)
                .is_some()
        );
        assert!(
            t.apply(&claim("b", 1, 0, Status::Alive), t0(), &mut r)
                .is_some()
        );
        let d = *t.digests();
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
        assert_eq!(*t.digests(), d);
        assert_eq!(t.live(), 2);
        // Death removes it from the digest; a refutation puts it back.
        t.apply(&claim("a", 1, 0, Status::Dead), t0(), &mut r)
            .unwrap();
        assert_eq!(t.live(), 1);
        assert_ne!(*t.digests(), d);
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
        let mut t = Table::new(NodeId::new("me"), None, 1 << 17);
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
        let mut t = Table::new(NodeId::new("me"), None, 1 << 17);
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
