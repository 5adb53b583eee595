//! Digest anti-entropy with completion tracking (`pull`, `push-pull`, and
//! `gossip`'s repair).
//!
//! Entries are tagged (origin, origin's epoch, seq) and summarised by a
//! version vector. A
//! round sends a digest to one peer; the peer answers with the entries the
//! sender lacks and its own clock. A mesh neighbour whose clock covers
//! everything this node holds is *confirmed*; any new entry unconfirms them
//! all. Rounds run only while a neighbour is unconfirmed, a peer is known
//! to have more, or (when exploring) shortly after a change, so a settled
//! cluster is silent. Loss-freedom: on a connected mesh, every node keeps
//! retrying each neighbour (with backoff) until it confirmed holding all of
//! this node's entries, so every entry reaches every node after a partition
//! heals.

use super::seqset::SeqSet;
use super::{Clock, DisMsg, Entry, Mark, Strategy, Value, check_peers};
use crate::id::{Epoch, NodeId};
use crate::link::Lane;
use crate::membership::ViewChange;
use crate::node::Ctx;
use crate::overlay;
use crate::rng::RngExt;
use crate::time::Instant;
use crate::wire::Msg;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// One life of an origin.
type Origin = (NodeId, Epoch);

/// Longest a peer is left alone after it failed to answer.
const MAX_BACKOFF: Duration = Duration::from_secs(4);

#[derive(Debug)]
pub(crate) struct AntiEntropy<V> {
    entries: BTreeMap<(Origin, u64), V>,
    clocks: BTreeMap<Origin, SeqSet>,
    own_seq: u64,
    version: u64,
    changed_at: Instant,
    neighbours: Vec<NodeId>,
    /// Neighbour -> our version it confirmed holding.
    confirmed: BTreeMap<NodeId, u64>,
    /// Digests awaiting an answer, by peer: when sent.
    outstanding: BTreeMap<NodeId, Instant>,
    /// Peers that did not answer: how long we wait before asking again.
    backoff: BTreeMap<NodeId, Duration>,
    /// ... and until when.
    blocked: BTreeMap<NodeId, Instant>,
    /// Peers known to hold entries we lack.
    ahead: BTreeSet<NodeId>,
    next_round: Option<Instant>,
    last_round: Option<Instant>,
    rounds: u64,
    /// Answer a digest's clock with the entries the peer lacks (push-pull).
    push: bool,
    /// Also run rounds with random peers shortly after a change (spreads
    /// values in `pull`/`push-pull`; off for `gossip`, which pushes).
    explore: bool,
}

impl<V: Value> AntiEntropy<V> {
    pub fn new(ctx: &Ctx<'_, V>, push: bool, explore: bool) -> Self {
        AntiEntropy {
            entries: BTreeMap::new(),
            clocks: BTreeMap::new(),
            own_seq: 0,
            version: 0,
            changed_at: Instant::ZERO,
            neighbours: overlay::mesh(ctx.view),
            confirmed: BTreeMap::new(),
            outstanding: BTreeMap::new(),
            backoff: BTreeMap::new(),
            blocked: BTreeMap::new(),
            ahead: BTreeSet::new(),
            next_round: None,
            last_round: None,
            rounds: 0,
            push,
            explore,
        }
    }

    /// Tags a value from a client.
    pub fn local(&mut self, ctx: &mut Ctx<'_, V>, v: V) -> Entry<V> {
        self.own_seq += 1;
        let e = Entry(ctx.me().clone(), ctx.epoch, self.own_seq, v);
        self.add(ctx, e.clone());
        e
    }

    /// Records an entry; returns true if its tag is new here (the value is
    /// then also offered to the store).
    pub fn add(&mut self, ctx: &mut Ctx<'_, V>, e: Entry<V>) -> bool {
        let Entry(origin, epoch, seq, v) = e;
        let origin = (origin, epoch);
        if !self.clocks.entry(origin.clone()).or_default().insert(seq) {
            return false;
        }
        if ctx.store.learn(&v) {
            ctx.stats.learned += 1;
        }
        self.entries.insert((origin, seq), v);
        self.version += 1;
        self.changed_at = ctx.now;
        self.schedule(ctx.now, ctx.cfg.ae_interval);
        true
    }

    /// Asks for a round at `at`, but never sooner than `interval` after the
    /// last one: rounds are the rate limit of anti-entropy traffic.
    fn schedule(&mut self, at: Instant, interval: Duration) {
        let at = self.last_round.map_or(at, |l| at.max(l + interval));
        if self.next_round.is_none_or(|t| t > at) {
            self.next_round = Some(at);
        }
    }

    fn clock(&self) -> Clock {
        self.clocks
            .iter()
            .filter(|(_, c)| c.contig > 0 || !c.extra.is_empty())
            .map(|((o, e), c)| c.mark(o, *e))
            .collect()
    }

    /// Does a peer with clock `theirs` hold everything we hold?
    fn covered_by(&self, theirs: &Clock) -> bool {
        let t = index(theirs);
        self.clocks
            .iter()
            .all(|((o, e), mine)| match t.get(&(o, *e)) {
                None => mine.contig == 0 && mine.extra.is_empty(),
                Some(their) => mine.within(their),
            })
    }

    /// Does a peer with clock `theirs` hold something we lack?
    fn behind(&self, theirs: &Clock) -> bool {
        let none = SeqSet::default();
        theirs.iter().any(|Mark(o, e, contig, extra)| {
            let their = SeqSet {
                contig: *contig,
                extra: extra.iter().copied().collect(),
            };
            let mine = self.clocks.get(&(o.clone(), *e)).unwrap_or(&none);
            !their.within(mine)
        })
    }

    /// Entries a peer with clock `theirs` lacks, at most `max`.
    fn missing(&self, theirs: &Clock, max: usize) -> Vec<Entry<V>> {
        let t = index(theirs);
        let none = SeqSet::default();
        let mut out = Vec::new();
        for ((o, e), c) in &self.clocks {
            let their = t.get(&(o, *e)).unwrap_or(&none);
            if c.within(their) {
                continue;
            }
            let key = (o.clone(), *e);
            let lo = (key.clone(), their.contig.saturating_add(1));
            for (((origin, epoch), seq), v) in self.entries.range(lo..=(key, u64::MAX)) {
                if their.extra.contains(seq) {
                    continue;
                }
                if out.len() >= max {
                    return out;
                }
                out.push(Entry(origin.clone(), *epoch, *seq, v.clone()));
            }
        }
        out
    }

    fn confirm(&mut self, peer: &NodeId, theirs: &Clock) {
        if self.neighbours.contains(peer) && self.covered_by(theirs) {
            self.confirmed.insert(peer.clone(), self.version);
        }
    }

    pub fn on_digest(&mut self, ctx: &mut Ctx<'_, V>, from: &NodeId, theirs: Clock) {
        let e = self.missing(&theirs, ctx.cfg.link.max_batch);
        let vv = self.clock();
        ctx.out
            .push(from.clone(), Msg::Dis(DisMsg::Delta { e, vv }));
        self.confirm(from, &theirs);
        if self.behind(&theirs) {
            self.ahead.insert(from.clone());
            self.schedule(ctx.now, ctx.cfg.ae_interval);
        }
    }

    pub fn on_delta(
        &mut self,
        ctx: &mut Ctx<'_, V>,
        from: &NodeId,
        entries: Vec<Entry<V>>,
        theirs: Clock,
    ) {
        let answered = self.outstanding.remove(from).is_some();
        if answered {
            self.backoff.remove(from);
            self.blocked.remove(from);
        }
        for e in entries {
            self.add(ctx, e);
        }
        self.confirm(from, &theirs);
        if self.behind(&theirs) {
            self.ahead.insert(from.clone());
            self.schedule(ctx.now, ctx.cfg.ae_interval);
        } else {
            self.ahead.remove(from);
        }
        if self.unconfirmed().next().is_some() {
            self.schedule(ctx.now, ctx.cfg.ae_interval);
        }
        // Push-pull: an answer to our digest shows what the peer lacks.
        if self.push && answered && !self.covered_by(&theirs) {
            let e = self.missing(&theirs, ctx.cfg.link.max_batch);
            let vv = self.clock();
            ctx.out
                .push(from.clone(), Msg::Dis(DisMsg::Delta { e, vv }));
        }
    }

    fn unconfirmed(&self) -> impl Iterator<Item = &NodeId> + '_ {
        self.neighbours
            .iter()
            .filter(|n| self.confirmed.get(*n) != Some(&self.version))
    }

    fn available(&self, now: Instant, p: &NodeId) -> bool {
        !self.outstanding.contains_key(p) && self.blocked.get(p).is_none_or(|t| *t <= now)
    }

    /// Forget what we knew of a peer's state: it left, or lost everything.
    fn forget_peer(&mut self, p: &NodeId) {
        self.confirmed.remove(p);
        self.outstanding.remove(p);
        self.backoff.remove(p);
        self.blocked.remove(p);
        self.ahead.remove(p);
    }

    fn hot(&self, ctx: &Ctx<'_, V>) -> bool {
        self.explore && ctx.now < self.changed_at + ctx.cfg.ae_interval * 5
    }

    pub fn tick(&mut self, ctx: &mut Ctx<'_, V>) {
        let now = ctx.now;
        let timeout = (ctx.cfg.ae_interval * 5).max(Duration::from_millis(500));
        let late: Vec<NodeId> = self
            .outstanding
            .iter()
            .filter(|(_, t)| **t + timeout <= now)
            .map(|(p, _)| p.clone())
            .collect();
        for p in late {
            self.outstanding.remove(&p);
            let wait = self
                .backoff
                .get(&p)
                .map_or(ctx.cfg.ae_interval, |d| (*d * 2).min(MAX_BACKOFF));
            self.backoff.insert(p.clone(), wait);
            self.blocked.insert(p, now + wait);
            self.schedule(now + wait, ctx.cfg.ae_interval);
        }
        let unblocked: Vec<NodeId> = self
            .blocked
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(p, _)| p.clone())
            .collect();
        for p in unblocked {
            self.blocked.remove(&p);
            self.schedule(now, ctx.cfg.ae_interval);
        }
        if self.next_round.is_none_or(|t| t > now) {
            return;
        }
        self.next_round = None;
        // Peers known to be ahead first (pull what we lack); then, while
        // hot, every other round goes to a random member, which spreads news
        // in O(log N) rounds instead of the mesh's diameter; otherwise an
        // unconfirmed mesh neighbour.
        self.rounds += 1;
        let explore = self.hot(ctx) && self.rounds.is_multiple_of(2);
        let mut target = self.ahead.iter().find(|p| self.available(now, p)).cloned();
        if target.is_none() && explore {
            target = random_peer(ctx).filter(|p| self.available(now, p));
        }
        if target.is_none() {
            let choices: Vec<&NodeId> = self
                .unconfirmed()
                .filter(|p| self.available(now, p))
                .collect();
            if !choices.is_empty() {
                target = Some(choices[ctx.rng.random_range(0..choices.len())].clone());
            }
        }
        if target.is_none() && self.hot(ctx) {
            target = random_peer(ctx).filter(|p| self.available(now, p));
        }
        let sent = target.is_some();
        if let Some(p) = target {
            let vv = self.clock();
            ctx.out.push(p.clone(), Msg::Dis(DisMsg::Digest { vv }));
            self.outstanding.insert(p, now);
            self.last_round = Some(now);
        }
        let more = self.unconfirmed().any(|p| self.available(now, p))
            || !self.ahead.is_empty()
            || self.hot(ctx);
        if sent && more {
            self.schedule(now, ctx.cfg.ae_interval);
        }
    }

    pub fn deadline(&self, cfg: &super::Config) -> Option<Instant> {
        let timeout = (cfg.ae_interval * 5).max(Duration::from_millis(500));
        let late = self.outstanding.values().map(|t| *t + timeout).min();
        let unblock = self.blocked.values().min().copied();
        [self.next_round, late, unblock].into_iter().flatten().min()
    }
}

/// A clock as a lookup table.
fn index(c: &Clock) -> BTreeMap<(&NodeId, Epoch), SeqSet> {
    c.iter().map(|m| ((&m.0, m.1), SeqSet::of(m))).collect()
}

/// A member other than this node, uniformly.
pub(crate) fn random_peer<V: Value>(ctx: &mut Ctx<'_, V>) -> Option<NodeId> {
    let ranked = ctx.view.ranked();
    let n = ranked.len();
    (n > 1).then(|| {
        let p = &ranked[ctx.rng.random_range(0..n - 1)];
        if p == ctx.view.me() {
            ranked[n - 1].clone()
        } else {
            p.clone()
        }
    })
}

impl<V: Value> AntiEntropy<V> {
    /// The mesh changed or peers restarted: drop what we knew of them, and
    /// go round again (a restarted neighbour holds nothing).
    pub fn view_changed(&mut self, ctx: &mut Ctx<'_, V>, change: &ViewChange) {
        for p in change.left.iter().chain(&change.restarted) {
            self.forget_peer(p);
        }
        self.neighbours = overlay::mesh(ctx.view);
        let keep: BTreeSet<&NodeId> = self.neighbours.iter().collect();
        self.confirmed.retain(|p, _| keep.contains(p));
        if !change.is_empty() {
            self.schedule(ctx.now, ctx.cfg.ae_interval);
        }
    }

    pub fn check(&self, ctx: &Ctx<'_, V>) -> Result<(), String> {
        check_peers(ctx, "anti-entropy neighbours", &self.neighbours)?;
        check_peers(ctx, "confirmed neighbours", self.confirmed.keys())?;
        if self.confirmed.keys().any(|p| !self.neighbours.contains(p)) {
            return Err("a confirmed peer is not a mesh neighbour".into());
        }
        if self.entries.len() as u64 > self.version {
            return Err("more entries than versions".into());
        }
        Ok(())
    }
}

impl<V: Value> Strategy<V> for AntiEntropy<V> {
    fn local(&mut self, ctx: &mut Ctx<'_, V>, v: V) {
        AntiEntropy::local(self, ctx, v);
    }

    fn link_values(&mut self, ctx: &mut Ctx<'_, V>, _from: &NodeId, _lane: Lane, _v: Vec<V>) {
        ctx.stats.ignored += 1;
    }

    fn message(&mut self, ctx: &mut Ctx<'_, V>, from: &NodeId, msg: DisMsg<V>) {
        match msg {
            DisMsg::Digest { vv } => self.on_digest(ctx, from, vv),
            DisMsg::Delta { e, vv } => self.on_delta(ctx, from, e, vv),
            _ => ctx.stats.ignored += 1,
        }
    }

    fn tick(&mut self, ctx: &mut Ctx<'_, V>) {
        AntiEntropy::tick(self, ctx);
    }

    fn view_changed(&mut self, ctx: &mut Ctx<'_, V>, change: &ViewChange) {
        AntiEntropy::view_changed(self, ctx, change);
    }

    fn deadline(&self, cfg: &super::Config) -> Option<Instant> {
        AntiEntropy::deadline(self, cfg)
    }

    fn neighbours(&self) -> Vec<NodeId> {
        self.neighbours.clone()
    }

    fn check(&self, ctx: &Ctx<'_, V>) -> Result<(), String> {
        AntiEntropy::check(self, ctx)
    }
}
