//! Delta anti-entropy for any [`Crdt`]: a sans-IO replica that pushes the
//! delta of each local update to its peers, and every `sync_interval` asks
//! one peer (round robin) for what is past its own version. Tombstones are
//! collected once every peer heard from within `retention` has reported a
//! version covering them, and only while a majority is heard; a peer behind
//! that point gets the full state and rebases on it (keeping its own later
//! events), so an old write it still holds cannot bring a collected delete
//! back. A delta that arrives past a gap (one before it lost) has its
//! sender asked for the rest if the gap lasts [`GAP_WAIT`], rather than
//! waiting for the periodic sync; and since the last delta of a burst has
//! no later one to show its loss, a replica that stops writing tells its
//! peers how far its writes go ([`Msg::Head`], after [`HEAD_WAIT`]).

use super::{Crdt, VersionVector};
use crate::id::NodeId;
use crate::membership::Status;
use crate::outbox::Outbox;
use crate::time::Instant;
use std::collections::BTreeMap;
use std::time::Duration;

/// How long a gap in what this replica has seen may last before the peer
/// whose event lies past it is asked for the rest: deltas reordered on the
/// way close theirs within milliseconds; a lost one would otherwise wait
/// for the periodic sync (30 s in the agent).
pub const GAP_WAIT: Duration = Duration::from_secs(1);

/// How long after its last write a replica tells its peers how far its
/// writes go: a burst's last delta, lost on the way, is then asked for
/// within about this long, not at the next periodic sync. One small
/// message per peer per burst; a steady writer sends none (its next delta
/// shows the gap).
pub const HEAD_WAIT: Duration = Duration::from_secs(1);

/// A gap in this replica's events: since when, and whom to ask.
#[derive(Debug)]
struct Gap {
    since: Instant,
    ask: NodeId,
    asked: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ReplicaConfig {
    pub sync_interval: Duration,
    /// A peer silent for longer no longer holds tombstone collection back;
    /// when it returns it gets a full state.
    pub retention: Duration,
}

impl Default for ReplicaConfig {
    fn default() -> Self {
        ReplicaConfig {
            sync_interval: Duration::from_millis(500),
            retention: Duration::from_secs(30),
        }
    }
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Msg<C> {
    /// "This is what I have; send me the rest."
    Sync {
        version: VersionVector,
    },
    Delta {
        delta: C,
    },
    /// For a peer behind the collection point: everything, and the point.
    Full {
        state: C,
        collected: VersionVector,
    },
    /// "My own writes (as `replica`) go up to `upto`": sent after a
    /// burst, so a peer that lost its last delta asks for the rest. Last,
    /// so that a peer that does not know it (an older version) drops only
    /// this message.
    Head {
        replica: NodeId,
        upto: u64,
    },
}

#[derive(Clone, Debug, Default)]
struct Peer {
    known: VersionVector,
    heard: Option<Instant>,
    /// Believed dead: sent nothing, but still a member for the majority
    /// rule, so a minority cannot call itself a majority by declaring the
    /// rest dead.
    down: bool,
    /// Suspected: deltas to it may have been lost (a brief partition ends
    /// in a refutation, not a death), so it is synced with at once when
    /// found alive again rather than at the next periodic sync.
    suspect: bool,
}

#[derive(Debug)]
pub struct Replicator<C> {
    me: NodeId,
    /// Whose writes this replica's updates are (the member's name, or a
    /// name for one life of it: see [`Replicator::set_replica`]).
    replica: NodeId,
    state: C,
    cfg: ReplicaConfig,
    peers: BTreeMap<NodeId, Peer>,
    /// Tombstones of events up to here are gone.
    collected: VersionVector,
    started: Instant,
    next_sync: Instant,
    /// When the peers in `greet` are synced with: apart from the periodic
    /// round, so that peers coming and going often never hold back the
    /// round-robin sync with the others.
    greet_at: Option<Instant>,
    turn: usize,
    /// New or returned peers, synced with at the next tick.
    greet: std::collections::BTreeSet<NodeId>,
    /// A gap open in the state's events (asked about once per gap).
    gap: Option<Gap>,
    /// When to tell the peers how far this replica's writes go: set by
    /// each write, so it goes [`HEAD_WAIT`] after the last of a burst.
    head_at: Option<Instant>,
}

impl<C: Crdt> Replicator<C> {
    pub fn new(
        me: NodeId,
        peers: impl IntoIterator<Item = NodeId>,
        cfg: ReplicaConfig,
        now: Instant,
    ) -> Self {
        let peers = peers
            .into_iter()
            .filter(|p| *p != me)
            .map(|p| (p, Peer::default()))
            .collect();
        Replicator {
            replica: me.clone(),
            me,
            state: C::default(),
            next_sync: now + cfg.sync_interval,
            greet_at: None,
            cfg,
            peers,
            collected: VersionVector::default(),
            started: now,
            turn: 0,
            greet: Default::default(),
            gap: None,
            head_at: None,
        }
    }

    pub fn state(&self) -> &C {
        &self.state
    }

    /// The member this replica runs on.
    pub fn me(&self) -> &NodeId {
        &self.me
    }

    /// The id its updates are made under: the member's name unless set.
    pub fn replica(&self) -> &NodeId {
        &self.replica
    }

    /// Makes updates under `id` from now on. A member that restarts
    /// without its state must not number updates under an id its peers
    /// have seen numbers of (they would take a new update for one they
    /// hold): it takes an id of its own for each such life.
    pub fn set_replica(&mut self, id: NodeId) {
        self.replica = id;
    }

    /// Merges in a state kept across a restart. Its own events in it
    /// included, so this replica's next update follows them rather than
    /// reusing a version its peers have already seen.
    pub fn restore(&mut self, state: C) {
        self.state.merge(&state);
    }

    /// Follows a changing membership: `live` members get deltas and syncs;
    /// `down` ones (believed dead) get nothing but still count as members
    /// for the majority rule; anyone in neither (left, or collected) is
    /// forgotten. New peers count as heard now, so collection waits up to
    /// `retention` for them, and bring the next sync forward to now, so a
    /// member that just joined trades state at once.
    pub fn set_peers(
        &mut self,
        now: Instant,
        live: impl IntoIterator<Item = NodeId>,
        down: impl IntoIterator<Item = NodeId>,
    ) {
        let me = self.me.clone();
        let live: std::collections::BTreeSet<NodeId> =
            live.into_iter().filter(|p| *p != me).collect();
        let down: std::collections::BTreeSet<NodeId> = down
            .into_iter()
            .filter(|p| *p != me && !live.contains(p))
            .collect();
        self.peers
            .retain(|p, _| live.contains(p) || down.contains(p));
        for (p, is_down) in live
            .into_iter()
            .map(|p| (p, false))
            .chain(down.into_iter().map(|p| (p, true)))
        {
            self.upsert(now, p, is_down, false);
        }
    }

    /// Adds or updates one peer (see [`Replicator::set_peers`]).
    fn upsert(&mut self, now: Instant, id: NodeId, is_down: bool, suspect: bool) {
        match self.peers.entry(id) {
            std::collections::btree_map::Entry::Vacant(e) => {
                let id = e.key().clone();
                e.insert(Peer {
                    known: VersionVector::default(),
                    heard: Some(now),
                    down: is_down,
                    suspect,
                });
                if !is_down {
                    self.greet.insert(id);
                    self.greet_at = Some(self.greet_at.map_or(now, |t| t.min(now)));
                }
            }
            std::collections::btree_map::Entry::Occupied(mut e) => {
                let p = e.get();
                let back = !is_down && (p.down || (p.suspect && !suspect));
                e.get_mut().down = is_down;
                e.get_mut().suspect = suspect;
                if back {
                    self.greet.insert(e.key().clone());
                    self.greet_at = Some(self.greet_at.map_or(now, |t| t.min(now)));
                }
            }
        }
    }

    /// One member's status changed (a membership event): what
    /// [`Replicator::follow`] does for the whole table, for one member, so
    /// a large cluster need not pass its whole table on every change.
    /// `None`: it left or was collected.
    pub fn follow_one(&mut self, now: Instant, id: &NodeId, status: Option<Status>) {
        if *id == self.me {
            return;
        }
        match status {
            Some(Status::Alive) => self.upsert(now, id.clone(), false, false),
            Some(Status::Suspect) => self.upsert(now, id.clone(), false, true),
            Some(Status::Dead) => self.upsert(now, id.clone(), true, false),
            Some(Status::Left) | None => {
                self.peers.remove(id);
                self.greet.remove(id);
            }
        }
    }

    /// Follows a member table (SWIM's): alive and suspect members are live
    /// peers, dead ones are down (they get nothing but still count for the
    /// majority rule, as they may come back with old state), members that
    /// left or were collected are forgotten. Call it when the table
    /// changes; calls with the same members change nothing.
    pub fn follow<'a>(
        &mut self,
        now: Instant,
        members: impl IntoIterator<Item = (&'a NodeId, Status)>,
    ) {
        let me = self.me.clone();
        let mut keep = std::collections::BTreeSet::new();
        for (id, status) in members {
            if *id == me || status == Status::Left {
                continue;
            }
            keep.insert(id.clone());
            self.upsert(
                now,
                id.clone(),
                status == Status::Dead,
                status == Status::Suspect,
            );
        }
        self.peers.retain(|p, _| keep.contains(p));
    }

    /// Whether messages from `id` are taken (a member, live or down).
    pub fn is_peer(&self, id: &NodeId) -> bool {
        self.peers.contains_key(id)
    }

    /// The peers deltas go to (not the ones believed down).
    pub fn peers(&self) -> impl Iterator<Item = &NodeId> {
        self.peers.iter().filter(|(_, p)| !p.down).map(|(id, _)| id)
    }

    /// A local update at `now`: `f` changes the state as replica `me` and
    /// returns its delta, which goes to every peer at once.
    pub fn update(
        &mut self,
        now: Instant,
        f: impl FnOnce(&mut C, &NodeId) -> C,
        out: &mut Outbox<Msg<C>>,
    ) {
        let delta = f(&mut self.state, &self.replica);
        if delta == C::default() {
            return;
        }
        self.head_at = Some(now + HEAD_WAIT);
        for p in self.peers() {
            out.push(
                p.clone(),
                Msg::Delta {
                    delta: delta.clone(),
                },
            );
        }
    }

    pub fn handle(&mut self, now: Instant, from: &NodeId, msg: Msg<C>, out: &mut Outbox<Msg<C>>) {
        let Some(peer) = self.peers.get_mut(from) else {
            return; // not a member: dropped
        };
        peer.heard = Some(now);
        match msg {
            Msg::Sync { version } => {
                peer.known = version.clone();
                // The sender holds what this replica lacks: ask it back
                // (push-pull), so that a greeting is an exchange both ways.
                // A restart of everyone needs it: each greets the others
                // before they take it as a member and drop its greeting,
                // and their own greetings then bring it what it lacks.
                if !self.state.version().dominates(&version) {
                    out.push(
                        from.clone(),
                        Msg::Sync {
                            version: self.state.version(),
                        },
                    );
                }
                if !version.dominates(&self.collected) {
                    out.push(
                        from.clone(),
                        Msg::Full {
                            state: self.state.clone(),
                            collected: self.collected.clone(),
                        },
                    );
                } else {
                    let delta = self.state.delta_since(&version);
                    if delta != C::default() {
                        out.push(from.clone(), Msg::Delta { delta });
                    }
                }
            }
            Msg::Delta { delta } => {
                self.state.merge(&delta);
                self.note_gap(now, from);
            }
            Msg::Head { replica, upto } => {
                // Whatever it claims, the answer is one sync to it.
                let version = self.state.version();
                if version.get(&replica) < upto {
                    out.push(from.clone(), Msg::Sync { version });
                }
            }
            Msg::Full { state, collected } => {
                if self.state.version().dominates(&collected) {
                    self.state.merge(&state);
                } else {
                    // Behind the collection point: take theirs, then put
                    // back only what happened here after that point.
                    let mine = self.state.delta_since(&collected);
                    self.state = state;
                    self.state.merge(&mine);
                }
                self.collected.merge(&collected);
                self.note_gap(now, from);
            }
        }
    }

    /// After a merge from `from`: a gap that opens is noted, with `from`
    /// as the peer to ask (its event lies past the gap; a delta's sender
    /// made it, and holds every event of its own before it); one that
    /// closes is forgotten.
    fn note_gap(&mut self, now: Instant, from: &NodeId) {
        if !self.state.has_gaps() {
            self.gap = None;
        } else if self.gap.is_none() {
            self.gap = Some(Gap {
                since: now,
                ask: from.clone(),
                asked: false,
            });
        }
    }

    /// A replica always has a next sync; `Option` for the shared contract.
    pub fn next_deadline(&self) -> Option<Instant> {
        let gap = self
            .gap
            .as_ref()
            .filter(|g| !g.asked)
            .map(|g| g.since + GAP_WAIT);
        crate::timers::earliest([Some(self.next_sync), self.greet_at, gap, self.head_at])
    }

    pub fn tick(&mut self, now: Instant, out: &mut Outbox<Msg<C>>) {
        if self.head_at.is_some_and(|t| t <= now) {
            self.head_at = None;
            let upto = self.state.version().get(&self.replica);
            for p in self.peers() {
                out.push(
                    p.clone(),
                    Msg::Head {
                        replica: self.replica.clone(),
                        upto,
                    },
                );
            }
        }
        if let Some(g) = &mut self.gap
            && !g.asked
            && now >= g.since + GAP_WAIT
        {
            g.asked = true;
            if self.peers.get(&g.ask).is_some_and(|p| !p.down) {
                out.push(
                    g.ask.clone(),
                    Msg::Sync {
                        version: self.state.version(),
                    },
                );
            }
        }
        if self.greet_at.is_some_and(|t| t <= now) {
            self.greet_at = None;
            // Each new or returned peer at once, rather than one a round.
            let greet = std::mem::take(&mut self.greet);
            for p in greet.into_iter().filter(|p| self.peers.contains_key(p)) {
                out.push(
                    p,
                    Msg::Sync {
                        version: self.state.version(),
                    },
                );
            }
            self.collect(now);
        }
        if now < self.next_sync {
            return;
        }
        self.next_sync = now + self.cfg.sync_interval;
        let up: Vec<&NodeId> = self
            .peers
            .iter()
            .filter(|(_, p)| !p.down)
            .map(|(id, _)| id)
            .collect();
        if !up.is_empty() {
            let i = self.turn % up.len();
            self.turn = self.turn.wrapping_add(1);
            if let Some(p) = up.get(i).copied() {
                out.push(
                    p.clone(),
                    Msg::Sync {
                        version: self.state.version(),
                    },
                );
            }
        }
        self.collect(now);
    }

    /// Collects up to the pointwise minimum of the versions of this
    /// replica and of the peers that count: heard within `retention` (a
    /// peer never heard counts until `retention` has passed since the
    /// start). Only with a majority counting: the side of a partition that
    /// cannot hear most of the cluster never collects, so exactly one side
    /// can be ahead and the other rebases on it.
    fn collect(&mut self, now: Instant) {
        let mut stable = self.state.version();
        let mut counting = 1;
        for p in self.peers.values() {
            let counts = match p.heard {
                Some(t) => now.saturating_since(t) <= self.cfg.retention,
                None => now.saturating_since(self.started) <= self.cfg.retention,
            };
            if counts {
                counting += 1;
                stable = stable.meet(&p.known);
            }
        }
        if counting * 2 <= self.peers.len() + 1 {
            return;
        }
        self.collected.merge(&stable);
        self.state.collect(&self.collected);
    }
}

impl<C: Crdt> crate::machine::Machine for Replicator<C> {
    type Msg = Msg<C>;
    fn receive(&mut self, now: Instant, from: &NodeId, msg: Msg<C>, out: &mut Outbox<Msg<C>>) {
        self.handle(now, from, msg, out);
    }
    fn tick(&mut self, now: Instant, out: &mut Outbox<Msg<C>>) {
        Replicator::tick(self, now, out);
    }
    fn next_deadline(&self) -> Option<Instant> {
        Replicator::next_deadline(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crdt::{Hlc, LwwMap};
    use crate::rng;
    use crate::simnet::{Faults, Latency, Network};

    type Map = LwwMap<&'static str, u8>;

    /// Replicas on the simulator's network: 5-55 ms delays, a tenth of the
    /// messages lost; `cut` replicas neither send nor receive.
    struct Net {
        sim: Network<Replicator<Map>>,
        ids: Vec<NodeId>,
        cut: Vec<bool>,
        clocks: Vec<Hlc>,
    }

    impl Net {
        fn new(n: usize) -> Net {
            let ids: Vec<NodeId> = (0..n).map(|i| NodeId::new(format!("r{i}"))).collect();
            let cfg = ReplicaConfig {
                sync_interval: Duration::from_millis(200),
                retention: Duration::from_secs(5),
            };
            let reps = ids
                .iter()
                .map(|me| Replicator::new(me.clone(), ids.clone(), cfg.clone(), Instant::ZERO))
                .collect();
            let delay = Latency::Uniform {
                lo: Duration::from_millis(5),
                hi: Duration::from_millis(55),
            };
            let mut faults = Faults::new(delay, rng::child(7, "replicate"));
            faults.loss = 0.1;
            Net {
                sim: Network::new(ids.clone(), reps, faults),
                ids,
                cut: vec![false; n],
                clocks: vec![Hlc::default(); n],
            }
        }

        fn cut(&mut self, r: usize, cut: bool) {
            self.cut[r] = cut;
            self.sim.faults.heal();
            for r in (0..self.cut.len()).filter(|&r| self.cut[r]) {
                self.sim.faults.isolate(&[r], self.cut.len());
            }
        }

        fn rep(&self, r: usize) -> &Replicator<Map> {
            self.sim.node(r).expect("replicas do not crash here")
        }

        fn reps(&self) -> impl Iterator<Item = &Replicator<Map>> {
            self.sim.nodes()
        }

        fn set_peers(&mut self, r: usize, live: &[NodeId], gone: &[NodeId]) {
            self.sim.input(r, |rep, now, _| {
                rep.set_peers(now, live.to_vec(), gone.to_vec());
            });
        }

        fn set(&mut self, r: usize, k: &'static str, v: Option<u8>) {
            let at = self.clocks[r].tick(self.sim.now().as_micros() / 1000);
            self.sim.input(r, |rep, now, out| {
                rep.update(
                    now,
                    |m, me| match v {
                        Some(v) => m.set(me, at, k, v),
                        None => m.delete(me, at, k),
                    },
                    out,
                )
            });
        }

        fn run(&mut self, ms: u64) {
            let until = self.sim.now() + Duration::from_millis(ms);
            self.sim.run_until(until, |_, _, _| {}).expect("moves on");
        }
    }

    /// The agent's timing: a periodic sync every 30 s.
    fn agent_timing() -> ReplicaConfig {
        ReplicaConfig {
            sync_interval: Duration::from_secs(30),
            retention: Duration::from_secs(60),
        }
    }

    /// A greeting dropped because the receiver did not know the sender
    /// yet (everyone restarted at once) is made up for by the receiver's
    /// own greeting: the sync is an exchange both ways.
    #[test]
    fn a_greeting_brings_the_greeted_what_it_lacks_too() {
        let cfg = agent_timing();
        let (y, c) = (NodeId::new("y"), NodeId::new("c"));
        let mut ry: Replicator<Map> = Replicator::new(y.clone(), [], cfg.clone(), Instant::ZERO);
        let mut rc: Replicator<Map> = Replicator::new(c.clone(), [], cfg, Instant::ZERO);
        let mut out = crate::outbox::Outbox::default();
        let at = Hlc::default().tick(1);
        ry.update(Instant::ZERO, |m, me| m.set(me, at, "k", 7), &mut out);
        out.drain().count();
        // c knows y and greets it; y does not know c yet: dropped.
        rc.follow(Instant::ZERO, [(&y, Status::Alive)]);
        rc.tick(Instant::ZERO, &mut out);
        for (_, m) in out.drain().collect::<Vec<_>>() {
            ry.handle(Instant::ZERO, &c, m, &mut out);
        }
        assert_eq!(out.drain().count(), 0, "y dropped it");
        // y learns of c and greets it: the exchange runs both ways.
        let t = Instant::from_millis(1_000);
        ry.follow(t, [(&c, Status::Alive)]);
        ry.tick(t, &mut out);
        exchange(&mut ry, &mut rc, t, &mut out);
        assert_eq!(rc.state().get(&"k"), Some(&7), "c has y's write");
    }

    /// A lost delta is asked for once a later one shows the gap and it
    /// lasts a second, not at the periodic sync 30 s later.
    #[test]
    fn a_delta_lost_on_the_way_is_asked_for_when_a_later_one_shows_the_gap() {
        let (a, _, mut ra, mut rb) = agent_pair();
        let mut clock = Hlc::default();
        let mut out = Outbox::default();
        for (i, k) in ["x", "y", "z"].into_iter().enumerate() {
            let at = clock.tick(i as u64 + 1);
            ra.update(Instant::ZERO, |m, me| m.set(me, at, k, i as u8), &mut out);
            let msgs: Vec<_> = out.drain().collect();
            if k == "y" {
                continue; // lost
            }
            for (_, m) in msgs {
                rb.handle(Instant::ZERO, &a, m, &mut out);
            }
        }
        assert_eq!(rb.state().get(&"y"), None);
        // b's timers, then both ways until quiet, at time `ms`.
        let tick_b = |ra: &mut Replicator<Map>, rb: &mut Replicator<Map>, ms: u64| {
            let t = Instant::from_millis(ms);
            let mut out = Outbox::default();
            rb.tick(t, &mut out);
            exchange(ra, rb, t, &mut out);
        };
        tick_b(&mut ra, &mut rb, 500);
        assert_eq!(
            rb.state().get(&"y"),
            None,
            "reordered deltas get their moment"
        );
        assert_eq!(rb.next_deadline(), Some(Instant::ZERO + GAP_WAIT));
        tick_b(&mut ra, &mut rb, 1_000);
        assert_eq!(rb.state().get(&"y"), Some(&1), "asked for within a second");
        assert!(!rb.state().has_gaps());
        assert!(
            rb.next_deadline().unwrap() > Instant::from_millis(20_000),
            "nothing more until the periodic sync"
        );
    }

    /// The last delta of a burst, lost on the way, leaves no gap (no later
    /// delta follows it): the writer's head, a second after its last
    /// write, has it asked for, not the periodic sync 30 s later.
    #[test]
    fn the_last_write_of_a_burst_lost_on_the_way_is_asked_for_after_the_writers_head() {
        let (a, b, mut ra, mut rb) = agent_pair();
        let mut clock = Hlc::default();
        let mut out = Outbox::default();
        for (i, k) in ["x", "y", "z"].into_iter().enumerate() {
            let t = Instant::from_millis(100 * i as u64);
            let at = clock.tick(i as u64 + 1);
            ra.update(t, |m, me| m.set(me, at, k, i as u8), &mut out);
            if k == "z" {
                out.drain().count(); // lost
            }
            exchange(&mut ra, &mut rb, t, &mut out);
        }
        assert_eq!(rb.state().get(&"z"), None);
        assert!(!rb.state().has_gaps(), "nothing shows the loss");
        let head = Instant::from_millis(200) + HEAD_WAIT;
        assert_eq!(
            ra.next_deadline(),
            Some(head),
            "a second after the last write"
        );
        ra.tick(head, &mut out);
        let sent: Vec<_> = out.iter().map(|(to, m)| (to.clone(), m.clone())).collect();
        assert_eq!(
            sent,
            [(
                b.clone(),
                Msg::Head {
                    replica: a.clone(),
                    upto: 3
                }
            )]
        );
        exchange(&mut ra, &mut rb, head, &mut out);
        assert_eq!(rb.state().get(&"z"), Some(&2), "asked for and sent");
        // Once per burst; and a peer that lacks nothing does not answer.
        assert!(ra.next_deadline().unwrap() > Instant::from_millis(20_000));
        rb.handle(head, &a, sent[0].1.clone(), &mut out);
        assert_eq!(out.len(), 0);
    }

    /// Replicas `a` and `b` of each other, with the agent's timing.
    fn agent_pair() -> (NodeId, NodeId, Replicator<Map>, Replicator<Map>) {
        let cfg = agent_timing();
        let (a, b) = (NodeId::new("a"), NodeId::new("b"));
        let ra = Replicator::new(a.clone(), [b.clone()], cfg.clone(), Instant::ZERO);
        let rb = Replicator::new(b.clone(), [a.clone()], cfg, Instant::ZERO);
        (a, b, ra, rb)
    }

    /// Delivers `out` between `ra` and `rb` until nothing is left to send.
    fn exchange(
        ra: &mut Replicator<Map>,
        rb: &mut Replicator<Map>,
        t: Instant,
        out: &mut Outbox<Msg<Map>>,
    ) {
        for _ in 0..8 {
            let msgs: Vec<_> = out.drain().collect();
            for (to, m) in msgs {
                if to == *ra.me() {
                    ra.handle(t, rb.me(), m, out);
                } else {
                    rb.handle(t, ra.me(), m, out);
                }
            }
        }
    }

    /// A peer that keeps being suspected and coming back is synced with
    /// each time, and never holds back the periodic syncs with the others.
    #[test]
    fn a_flapping_peer_does_not_starve_the_others_of_syncs() {
        let cfg = agent_timing();
        let ids: Vec<NodeId> = ["b", "c", "d"].into_iter().map(NodeId::new).collect();
        let mut r: Replicator<Map> =
            Replicator::new(NodeId::new("a"), ids.clone(), cfg, Instant::ZERO);
        let mut out = crate::outbox::Outbox::default();
        let mut got: std::collections::BTreeMap<NodeId, usize> = Default::default();
        for ms in (0..600_000u64).step_by(1_000) {
            let now = Instant::from_millis(ms);
            // b suspected at 10 s into every 20, alive again at 15.
            match ms % 20_000 {
                10_000 => r.follow(
                    now,
                    [
                        (&ids[0], Status::Suspect),
                        (&ids[1], Status::Alive),
                        (&ids[2], Status::Alive),
                    ],
                ),
                15_000 => r.follow(
                    now,
                    [
                        (&ids[0], Status::Alive),
                        (&ids[1], Status::Alive),
                        (&ids[2], Status::Alive),
                    ],
                ),
                _ => {}
            }
            r.tick(now, &mut out);
            for (to, _) in out.drain() {
                *got.entry(to).or_default() += 1;
            }
        }
        assert!(got[&ids[0]] >= 30, "b after each return: {got:?}");
        for p in &ids[1..] {
            assert!(got[p] >= 6, "{p} still in the round-robin: {got:?}");
        }
    }

    /// A brief partition ends in a refutation, not a death: deltas sent
    /// meanwhile were lost, and waiting for the periodic sync (30 s in the
    /// agent) left a peer behind that long. Found alive again, a suspected
    /// peer is synced with at once.
    #[test]
    fn a_suspected_peer_found_alive_again_is_synced_with_at_once() {
        let cfg = agent_timing();
        let (a, b) = (NodeId::new("a"), NodeId::new("b"));
        let mut r: Replicator<Map> = Replicator::new(a.clone(), [b.clone()], cfg, Instant::ZERO);
        let mut out = crate::outbox::Outbox::default();
        let mut sent_to_b = |r: &mut Replicator<Map>, ms: u64| {
            let t = Instant::from_millis(ms);
            r.tick(t, &mut out);
            out.drain().filter(|(to, _)| *to == b).count()
        };
        r.follow(Instant::ZERO, [(&b, Status::Alive)]);
        sent_to_b(&mut r, 0);
        assert_eq!(sent_to_b(&mut r, 1_000), 0, "next sync in 30 s");
        r.follow(Instant::from_millis(2_000), [(&b, Status::Suspect)]);
        assert_eq!(sent_to_b(&mut r, 2_000), 0, "nothing due while suspected");
        r.follow(Instant::from_millis(4_000), [(&b, Status::Alive)]);
        assert!(sent_to_b(&mut r, 4_000) > 0, "synced with at once");
        // A refutation seen through follow_one does the same.
        r.follow_one(Instant::from_millis(5_000), &b, Some(Status::Suspect));
        r.follow_one(Instant::from_millis(6_000), &b, Some(Status::Alive));
        assert!(sent_to_b(&mut r, 6_000) > 0);
        assert_eq!(sent_to_b(&mut r, 7_000), 0, "once");
    }

    #[test]
    fn peers_follow_the_membership() {
        let mut net = Net::new(4);
        net.set(0, "k", Some(1));
        net.run(1_000);
        // r2 and r3 are believed dead: two of four members are no majority,
        // so nothing is collected however long it takes.
        net.cut(2, true);
        net.cut(3, true);
        let live: Vec<NodeId> = net.ids[..2].to_vec();
        let gone: Vec<NodeId> = net.ids[2..].to_vec();
        for r in 0..2 {
            net.set_peers(r, &live, &gone);
            assert_eq!(net.rep(r).peers().count(), 1, "deltas go to the live only");
        }
        net.set(0, "k", None);
        net.run(8_000);
        assert_eq!(
            net.rep(0).state().size(),
            1,
            "the tombstone stays while r2 and r3 are only down"
        );
        // Once they have left for good, the two are the whole cluster.
        for r in 0..2 {
            net.set_peers(r, &live, &[]);
        }
        net.run(1_000);
        assert!(
            net.rep(0).state().size() == 0 && net.rep(1).state().size() == 0,
            "the tombstone was collected among the remaining members"
        );
        // A member that joins later gets everything, at once: a new peer
        // brings the sync forward.
        net.cut(2, false);
        let fresh = Replicator::new(
            net.ids[2].clone(),
            net.ids[..3].to_vec(),
            net.rep(0).cfg.clone(),
            net.sim.now(),
        );
        net.sim.start(2, fresh);
        let three = net.ids[..3].to_vec();
        for r in 0..2 {
            net.set_peers(r, &three, &[]);
        }
        net.set(1, "later", Some(9));
        net.run(2_000);
        assert_eq!(net.rep(2).state().get(&"later"), Some(&9));
        assert_eq!(net.rep(2).state().get(&"k"), None, "no resurrection");
    }

    #[test]
    fn the_peers_follow_the_member_table() {
        let ids: Vec<NodeId> = ["me", "a", "b", "c", "d"].map(NodeId::new).to_vec();
        let cfg = ReplicaConfig {
            sync_interval: Duration::from_millis(200),
            retention: Duration::from_secs(5),
        };
        let mut r: Replicator<Map> = Replicator::new(ids[0].clone(), [], cfg, Instant::ZERO);
        let table = [
            (&ids[1], Status::Alive),
            (&ids[2], Status::Suspect),
            (&ids[3], Status::Dead),
            (&ids[4], Status::Left),
        ];
        r.follow(Instant::ZERO, table);
        let live: Vec<&NodeId> = r.peers().collect();
        assert_eq!(live, [&ids[1], &ids[2]], "alive and suspect get deltas");
        // The dead one still counts: a delete is not collected while it may
        // come back with the old value; the one that left does not.
        let mut out = Outbox::default();
        r.update(
            Instant::ZERO,
            |m, me| m.set(me, Hlc::default().tick(1), "k", 1),
            &mut out,
        );
        assert_eq!(
            out.iter()
                .filter(|(to, _)| *to == ids[3] || *to == ids[4])
                .count(),
            0
        );
        assert!(r.peers.contains_key(&ids[3]) && !r.peers.contains_key(&ids[4]));
        // A member that comes back is a live peer again.
        r.follow(Instant::ZERO, [(&ids[3], Status::Alive)]);
        assert_eq!(r.peers().collect::<Vec<_>>(), [&ids[3]]);
    }

    #[test]
    fn replicas_converge_over_a_lossy_network() {
        let mut net = Net::new(4);
        let keys = ["a", "b", "c"];
        for i in 0..60u8 {
            let r = usize::from(i) % 4;
            let k = keys[usize::from(i) % 3];
            net.set(r, k, if i % 7 == 0 { None } else { Some(i) });
            net.run(30);
        }
        net.run(3_000);
        let first: Vec<_> = net.rep(0).state().iter().collect();
        for r in net.reps().skip(1) {
            assert_eq!(r.state().iter().collect::<Vec<_>>(), first);
        }
    }

    #[test]
    fn a_replica_away_past_retention_rebases_and_no_delete_comes_back() {
        let mut net = Net::new(4);
        net.set(0, "k", Some(1));
        net.run(2_000);
        assert_eq!(net.rep(3).state().get(&"k"), Some(&1), "r3 saw the write");
        let old_r3 = net.rep(3).state().clone();
        net.cut(3, true);
        net.set(0, "k", None);
        net.set(3, "mine", Some(5)); // written while away
        // Past the retention, the others stop waiting for r3 and collect.
        net.run(8_000);
        for r in net.reps().take(3) {
            assert_eq!(r.state().get(&"k"), None);
            assert_eq!(r.state().size(), 0, "the tombstone is collected");
        }
        // This is what a plain merge would do: bring the delete back.
        let mut naive = net.rep(0).state().clone();
        naive.merge(&old_r3);
        assert_eq!(naive.get(&"k"), Some(&1), "the hazard is real");
        net.cut(3, false);
        net.run(3_000);
        for r in net.reps() {
            assert_eq!(r.state().get(&"k"), None, "no resurrection");
            assert_eq!(r.state().get(&"mine"), Some(&5), "r3's own write survives");
        }
    }

    #[test]
    fn an_even_split_collects_on_neither_side_and_heals_without_resurrection() {
        let mut net = Net::new(4);
        net.set(0, "k", Some(1));
        net.set(3, "j", Some(2));
        net.run(2_000);
        // Cut r2 and r3 off together: each side hears half the cluster.
        net.cut(2, true);
        net.cut(3, true);
        net.set(0, "k", None);
        net.run(8_000);
        assert_eq!(
            net.rep(0).state().size(),
            2,
            "no majority: the tombstone stays"
        );
        net.cut(2, false);
        net.cut(3, false);
        net.set(3, "j", None);
        net.run(3_000);
        for r in net.reps() {
            assert_eq!(r.state().get(&"k"), None);
            assert_eq!(r.state().get(&"j"), None);
        }
        // Once all hear each other again, the tombstones go everywhere.
        net.run(3_000);
        for r in net.reps() {
            assert_eq!(r.state().size(), 0, "collected once everyone has them");
        }
    }
}
