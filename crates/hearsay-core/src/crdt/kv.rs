//! Replicated key-value state (what Serf tags and chitchat's KV give their
//! users): an LWW map stamped by a hybrid logical clock, replicated by
//! [`Replicator`]'s delta anti-entropy over the live membership. Deletes
//! are tombstones, collected once every live member has them; a member
//! away past the retention gets the full state and cannot bring a deleted
//! key back. The agent runs it beside its node, and so does `hearsay sim`.
//!
//! A replica names its writes with its own counter (dots), so a replica
//! must never give a number twice: one that restarts empty takes a new
//! replica id for its new life ([`Kv::new_life`]); one restarted from disk
//! ([`Kv::restore`]) goes on after what it kept, and with
//! [`Kv::keep_writes`] no peer ever holds a write that is not kept.

use super::{Crdt, Hlc, LwwMap, ReplicaConfig, ReplicaMsg, Replicator};
use crate::id::{Epoch, NodeId};
use crate::membership::Status;
use crate::outbox::Outbox;
use crate::time::Instant;
use std::collections::BTreeMap;

pub type KvMap = LwwMap<String, String>;
/// Key-value replication messages.
pub type KvMsg = ReplicaMsg<KvMap>;

pub const MAX_KEY: usize = 256;

/// Deltas go out at once; the version sync that repairs lost ones runs
/// every 30 s (one small message per agent, memberlist's push-pull period)
/// and at once when a member appears, which keeps an idle cluster cheap
/// and a joiner quick.
/// Tombstones wait up to a minute for a silent member.
pub const CONFIG: ReplicaConfig = ReplicaConfig {
    sync_interval: std::time::Duration::from_secs(30),
    retention: std::time::Duration::from_secs(60),
};

/// A bound on the whole map: at most `max` as `size` measures it (the
/// agent's: encoded bytes, so a full state fits one stream frame).
#[derive(Clone, Copy)]
pub struct Bound {
    pub max: usize,
    pub size: fn(&KvMap) -> usize,
}

impl std::fmt::Debug for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bound({})", self.max)
    }
}

/// What a peer's message did to the map.
#[derive(Debug)]
pub enum Changed {
    Nothing,
    /// Merged this delta in.
    Delta(KvMap),
    /// Replaced the map, or may have.
    All,
}

/// How long an answer carrying writes not yet on disk waits for them
/// before it is dropped (the peer asks again at its next sync).
pub const HOLD: std::time::Duration = std::time::Duration::from_secs(5);

pub struct Kv {
    rep: Replicator<KvMap>,
    hlc: Hlc,
    /// The map may have changed since the last [`Kv::take_changed`].
    changed: bool,
    /// With a data dir: this replica's writes up to here are on disk
    /// (`None`: no data dir, every write counts as kept).
    kept: Option<u64>,
    /// Answers to peers that may carry writes not yet on disk, each with
    /// the write it waits for and since when.
    held: Vec<(Instant, u64, NodeId, KvMsg)>,
    /// Held answers dropped after [`HOLD`].
    pub held_dropped: u64,
    bound: Option<Bound>,
}

impl Kv {
    /// The replica of member `me`, making its writes as `replica`: an id
    /// no earlier life of this member used unless this one goes on from
    /// what that life kept ([`Kv::restore`]). [`Kv::new_life`] makes one.
    pub fn new(me: NodeId, replica: NodeId, now: Instant) -> Kv {
        let mut rep = Replicator::new(me, [], CONFIG, now);
        rep.set_replica(replica);
        Kv {
            rep,
            hlc: Hlc::default(),
            changed: false,
            kept: None,
            held: Vec::new(),
            held_dropped: 0,
            bound: None,
        }
    }

    /// The replica id of life `epoch` of member `me`, for a member that
    /// starts without kept state.
    pub fn new_life(me: &NodeId, epoch: Epoch) -> NodeId {
        NodeId::new(format!("{me}/{}", epoch.0))
    }

    /// Refuses writes that would take the map past `bound`.
    pub fn bound(&mut self, bound: Bound) {
        self.bound = Some(bound);
    }

    /// This replica's own writes, counted (the version it has given out).
    fn own(&self) -> u64 {
        self.rep.state().version().get(self.rep.replica())
    }

    /// Writes are kept on disk before they count (a data dir): answers to
    /// peers wait for every write they may carry to be kept ([`Kv::kept`]),
    /// so no peer ever holds a write this replica could lose in a crash
    /// and then reuse the version of.
    pub fn keep_writes(&mut self) {
        self.kept = Some(self.own());
    }

    /// This replica's writes up to `own` are on disk (`own`: what
    /// [`Kv::write`] returned with the delta): answers that waited for
    /// them go now.
    pub fn kept(&mut self, own: u64, out: &mut Outbox<KvMsg>) {
        let Some(k) = &mut self.kept else {
            return;
        };
        *k = (*k).max(own);
        let k = *k;
        let (go, wait): (Vec<_>, Vec<_>) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|(_, need, ..)| *need <= k);
        self.held = wait;
        for (_, _, to, m) in go {
            out.push(to, m);
        }
    }

    /// Starts from a map kept across a restart: this replica's own writes
    /// in it, so its next write follows them, and its clock past them.
    pub fn restore(&mut self, state: KvMap, wall_ms: u64) {
        if let Some(t) = state.latest() {
            self.hlc.observe(t, wall_ms);
        }
        self.rep.restore(state);
        self.changed = true;
    }

    pub fn state(&self) -> &KvMap {
        self.rep.state()
    }

    /// Sets `key` (or deletes it, with `None`); its delta goes to every
    /// live member at once, and is returned (to be kept on disk), with the
    /// number of this replica's writes so far (for [`Kv::kept`]).
    pub fn write(
        &mut self,
        now: Instant,
        wall_ms: u64,
        key: String,
        value: Option<String>,
        out: &mut Outbox<KvMsg>,
    ) -> Result<(KvMap, u64), String> {
        if key.is_empty() || key.len() > MAX_KEY {
            return Err(format!("a key must be 1 to {MAX_KEY} bytes"));
        }
        let grows = key.len() + value.as_ref().map_or(0, String::len) + 96;
        if let Some(b) = self.bound
            && (b.size)(self.rep.state()).saturating_add(grows) > b.max
        {
            return Err(format!(
                "the replicated map would pass {} bytes, the most one frame carries (delete keys first)",
                b.max
            ));
        }
        let at = self.hlc.tick(wall_ms);
        self.changed = true;
        let mut delta = KvMap::default();
        self.rep.update(
            now,
            |m, me| {
                delta = match value {
                    Some(v) => m.set(me, at, key, v),
                    None => m.delete(me, at, key),
                };
                delta.clone()
            },
            out,
        );
        Ok((delta, self.own()))
    }

    /// Takes in a peer's message; says what of the map changed, for the
    /// data dir.
    pub fn handle(
        &mut self,
        now: Instant,
        wall_ms: u64,
        from: &NodeId,
        msg: KvMsg,
        out: &mut Outbox<KvMsg>,
    ) -> Changed {
        let latest = match &msg {
            ReplicaMsg::Delta { delta } => delta.latest(),
            ReplicaMsg::Full { state, .. } => state.latest(),
            ReplicaMsg::Sync { .. } | ReplicaMsg::Head { .. } => None,
        };
        // A stamp more than a minute ahead of this clock is a broken clock
        // elsewhere: merged, but not allowed to drag this clock along.
        if let Some(t) = latest.filter(|t| t.wall_ms <= wall_ms.saturating_add(60_000)) {
            self.hlc.observe(t, wall_ms);
        }
        let changed = match &msg {
            // Dropped by the replica: nothing to keep.
            _ if !self.rep.is_peer(from) => Changed::Nothing,
            ReplicaMsg::Sync { .. } | ReplicaMsg::Head { .. } => Changed::Nothing,
            ReplicaMsg::Delta { delta } => Changed::Delta(delta.clone()),
            // A full state can remove keys while carrying no write at all.
            ReplicaMsg::Full { .. } => Changed::All,
        };
        self.changed |= !matches!(changed, Changed::Nothing);
        // Only with a data dir: `own` copies the version vector.
        match self.kept.map(|k| (k, self.own())) {
            // Writes of this replica not yet on disk: what the answer
            // carries waits for them.
            Some((k, own)) if k < own => {
                let mut answers = Outbox::default();
                self.rep.handle(now, from, msg, &mut answers);
                for (to, m) in answers.drain() {
                    self.held.push((now, own, to, m));
                }
            }
            _ => self.rep.handle(now, from, msg, out),
        }
        changed
    }

    pub fn tick(&mut self, now: Instant, out: &mut Outbox<KvMsg>) {
        let before = self.held.len();
        self.held.retain(|(at, ..)| now < *at + HOLD);
        self.held_dropped += (before - self.held.len()) as u64;
        self.rep.tick(now, out);
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        let expiry = self.held.iter().map(|(at, ..)| *at + HOLD).min();
        crate::timers::earliest([self.rep.next_deadline(), expiry])
    }

    /// Follows SWIM's member table (see [`Replicator::follow`]).
    pub fn follow<'a>(
        &mut self,
        now: Instant,
        members: impl IntoIterator<Item = (&'a NodeId, Status)>,
    ) {
        self.rep.follow(now, members);
    }

    /// One member's status changed (see [`Replicator::follow_one`]).
    pub fn follow_one(&mut self, now: Instant, id: &NodeId, status: Option<Status>) {
        self.rep.follow_one(now, id, status);
    }

    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    pub fn snapshot(&self) -> BTreeMap<String, String> {
        self.rep
            .state()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes of keys and values, a stand-in for the agent's encoded size.
    fn text_len(m: &KvMap) -> usize {
        m.iter().map(|(k, v)| k.len() + v.len() + 16).sum()
    }
    const MAX: usize = 2 * 1024 * 1024;

    #[test]
    fn writes_past_the_bound_are_refused_and_deletes_make_room() {
        let a = NodeId::new("a");
        let mut kv = Kv::new(a.clone(), a, Instant::ZERO);
        kv.bound(Bound {
            max: MAX,
            size: text_len,
        });
        let mut out = Outbox::default();
        let big = "x".repeat(100_000);
        let mut n = 0;
        while kv
            .write(
                Instant::ZERO,
                1,
                format!("k{n}"),
                Some(big.clone()),
                &mut out,
            )
            .is_ok()
        {
            n += 1;
            assert!(n < 40, "the bound must stop this");
        }
        assert!(n >= 3, "{n} writes fit");
        assert!(text_len(kv.state()) <= MAX);
        let e = kv
            .write(Instant::ZERO, 1, "more".into(), Some(big.clone()), &mut out)
            .unwrap_err();
        assert!(e.contains("delete keys first"), "{e}");
        assert!(
            kv.write(Instant::ZERO, 1, String::new(), Some("v".into()), &mut out)
                .is_err()
        );
        assert!(
            kv.write(Instant::ZERO, 1, "k".repeat(MAX_KEY + 1), None, &mut out)
                .is_err()
        );
        assert_eq!(kv.snapshot().len(), n);
    }

    /// Two replicas that know each other.
    fn pair() -> (NodeId, NodeId, Kv, Kv) {
        let (a, b) = (NodeId::new("a"), NodeId::new("b"));
        let mut ka = Kv::new(a.clone(), a.clone(), Instant::ZERO);
        let mut kb = Kv::new(b.clone(), b.clone(), Instant::ZERO);
        ka.follow(Instant::ZERO, [(&b, Status::Alive)]);
        kb.follow(Instant::ZERO, [(&a, Status::Alive)]);
        (a, b, ka, kb)
    }

    /// Hands `out`'s messages from `from` to `to` at wall time `wall_ms`.
    fn deliver(to: &mut Kv, from: &NodeId, wall_ms: u64, out: &mut Outbox<KvMsg>) {
        for (_, m) in out.drain() {
            to.handle(Instant::ZERO, wall_ms, from, m, &mut Outbox::default());
        }
    }

    #[test]
    fn a_write_after_a_remote_one_orders_after_it_even_with_a_slow_clock() {
        let (a, b, mut ka, mut kb) = pair();
        let mut out = Outbox::default();
        // a's clock is 30 s ahead of b's.
        ka.write(
            Instant::ZERO,
            30_005,
            "k".into(),
            Some("from a".into()),
            &mut out,
        )
        .unwrap();
        deliver(&mut kb, &a, 5, &mut out);
        assert_eq!(kb.snapshot()["k"], "from a");
        kb.write(
            Instant::ZERO,
            6,
            "k".into(),
            Some("from b, later".into()),
            &mut out,
        )
        .unwrap();
        deliver(&mut ka, &b, 30_006, &mut out);
        assert_eq!(ka.snapshot()["k"], "from b, later");
        assert_eq!(kb.snapshot()["k"], "from b, later");
    }

    #[test]
    fn a_restored_replica_writes_past_what_its_peers_have_seen_of_it() {
        let (a, b, mut ka, mut kb) = pair();
        let mut out = Outbox::default();
        ka.write(
            Instant::ZERO,
            1_000,
            "k".into(),
            Some("before".into()),
            &mut out,
        )
        .unwrap();
        deliver(&mut kb, &a, 1_000, &mut out);
        // a restarts; its clock has gone back a second.
        let fresh = |state: Option<KvMap>, replica: &NodeId| {
            let mut k = Kv::new(a.clone(), replica.clone(), Instant::ZERO);
            k.follow(Instant::ZERO, [(&b, Status::Alive)]);
            if let Some(s) = state {
                k.restore(s, 0);
            }
            k
        };
        let mut restored = fresh(Some(ka.state().clone()), &a);
        assert_eq!(restored.snapshot()["k"], "before");
        let d = restored
            .write(Instant::ZERO, 0, "k".into(), Some("after".into()), &mut out)
            .unwrap()
            .0;
        let seen = kb.state().version();
        assert_ne!(
            d.delta_since(&seen),
            KvMap::default(),
            "a new version, not one b has seen"
        );
        deliver(&mut kb, &a, 0, &mut out);
        assert_eq!(kb.snapshot()["k"], "after", "ordered after, clock or not");
        // Empty, under the same id, the write reuses a version b has seen
        // (b would never take it from a sync): why a life without kept
        // state takes an id of its own.
        let d = fresh(None, &a)
            .write(
                Instant::ZERO,
                0,
                "x".into(),
                Some("y".into()),
                &mut Outbox::default(),
            )
            .unwrap()
            .0;
        assert_eq!(d.delta_since(&seen), KvMap::default());
        let d = fresh(None, &Kv::new_life(&a, Epoch(2)))
            .write(
                Instant::ZERO,
                0,
                "x".into(),
                Some("y".into()),
                &mut Outbox::default(),
            )
            .unwrap()
            .0;
        assert_ne!(d.delta_since(&seen), KvMap::default());
    }

    #[test]
    fn what_the_replica_drops_is_not_kept_either() {
        let (a, _, mut ka, mut kb) = pair();
        let mut out = Outbox::default();
        let (d, _) = ka
            .write(Instant::ZERO, 1, "k".into(), Some("v".into()), &mut out)
            .unwrap();
        let stranger = NodeId::new("stranger");
        let msg = ReplicaMsg::Delta { delta: d.clone() };
        let changed = kb.handle(Instant::ZERO, 1, &stranger, msg.clone(), &mut out);
        assert!(matches!(changed, Changed::Nothing), "{changed:?}");
        assert!(kb.snapshot().is_empty());
        let changed = kb.handle(Instant::ZERO, 1, &a, msg, &mut out);
        assert!(matches!(changed, Changed::Delta(_)), "{changed:?}");
    }

    /// With a data dir, a peer never gets a write before it is on disk:
    /// not with the write's own delta (held by the agent until kept) and
    /// not in an answer to its sync. Otherwise a crash before the commit
    /// leaves the peer with a write the restarted replica does not have,
    /// whose version it then gives to another write the peer never takes.
    #[test]
    fn a_sync_is_answered_with_a_write_only_once_the_write_is_kept() {
        use crate::crdt::VersionVector;
        let (a, b, mut ka, mut kb) = pair();
        ka.keep_writes();
        let mut held = Outbox::default();
        let (_, own) = ka
            .write(Instant::ZERO, 1, "k".into(), Some("v".into()), &mut held)
            .unwrap();
        assert_eq!(own, 1);
        let sync = ReplicaMsg::Sync {
            version: VersionVector::default(),
        };
        let mut out = Outbox::default();
        ka.handle(Instant::ZERO, 1, &b, sync.clone(), &mut out);
        assert_eq!(out.len(), 0, "the answer waits for the disk");
        ka.kept(own, &mut out);
        deliver(&mut kb, &a, 1, &mut out);
        assert_eq!(kb.snapshot()["k"], "v", "and goes once the write is kept");
        // A write that never becomes kept: the answer is dropped after
        // HOLD (the peer asks again at its next sync), and counted.
        ka.write(Instant::ZERO, 2, "k2".into(), Some("v2".into()), &mut held)
            .unwrap();
        ka.handle(Instant::ZERO, 2, &b, sync.clone(), &mut out);
        assert!(
            ka.next_deadline()
                .is_some_and(|t| t <= Instant::ZERO + HOLD)
        );
        ka.tick(Instant::ZERO + HOLD, &mut out);
        // Syncs and the head of its writes, but no write.
        assert!(
            out.iter()
                .all(|(_, m)| matches!(m, ReplicaMsg::Sync { .. } | ReplicaMsg::Head { .. }))
        );
        assert_eq!(ka.held_dropped, 1);
        // Without a data dir nothing waits.
        let (_, b2, mut kc, _) = pair();
        kc.write(Instant::ZERO, 1, "k".into(), Some("v".into()), &mut held)
            .unwrap();
        let mut out = Outbox::default();
        kc.handle(Instant::ZERO, 1, &b2, sync, &mut out);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn a_stamp_far_in_the_future_does_not_drag_the_clock() {
        let (a, _, mut ka, mut kb) = pair();
        let mut out = Outbox::default();
        // An hour ahead: merged (it is data), but b's clock stays its own.
        ka.write(
            Instant::ZERO,
            3_600_000,
            "x".into(),
            Some("future".into()),
            &mut out,
        )
        .unwrap();
        deliver(&mut kb, &a, 5, &mut out);
        assert_eq!(kb.snapshot()["x"], "future");
        assert!(kb.hlc.wall_ms < 60_000, "{:?}", kb.hlc);
    }
}
