//! Digest anti-entropy with completion tracking (`pull`, `push-pull`, and
//! `gossip`'s repair).
//!
//! Entries are tagged (origin, seq) and summarised by a version vector. A
//! round sends a digest to one peer; the peer answers with the entries the
//! sender lacks and its own clock. A mesh neighbour whose clock covers
//! everything this node holds is *confirmed*; any new entry unconfirms them
//! all. Rounds run only while a neighbour is unconfirmed, a peer is known
//! to have more, or (when exploring) shortly after a change, so a settled
//! cluster is silent. Loss-freedom: on a connected mesh, every node keeps
//! retrying each neighbour (with backoff) until it confirmed holding all of
//! this node's entries, so every entry reaches every node after a partition
//! heals.

use super::engine::Ctx;
use super::{Clock, Entry, Peer, Wire, overlay};
use crate::rng::RngExt;
use crate::time::Instant;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Per origin: everything up to `contig`, plus `extra` out-of-order seqs.
#[derive(Debug, Default, Clone)]
struct OriginClock {
    contig: u64,
    extra: BTreeSet<u64>,
}

impl OriginClock {
    fn insert(&mut self, seq: u64) -> bool {
        if seq <= self.contig || !self.extra.insert(seq) {
            return false;
        }
        while self.extra.remove(&(self.contig + 1)) {
            self.contig += 1;
        }
        true
    }

    fn max(&self) -> u64 {
        self.extra.last().copied().unwrap_or(0).max(self.contig)
    }
}

/// Longest a peer is left alone after it failed to answer.
const MAX_BACKOFF: Duration = Duration::from_secs(4);

#[derive(Debug)]
pub(crate) struct AntiEntropy<V> {
    entries: BTreeMap<(Peer, u64), V>,
    clocks: BTreeMap<Peer, OriginClock>,
    own_seq: u64,
    version: u64,
    changed_at: Instant,
    neighbours: Vec<Peer>,
    /// Neighbour -> our version it confirmed holding.
    confirmed: BTreeMap<Peer, u64>,
    /// Digests awaiting an answer, by peer: when sent.
    outstanding: BTreeMap<Peer, Instant>,
    /// Peers that did not answer: how long we wait before asking again.
    backoff: BTreeMap<Peer, Duration>,
    /// ... and until when.
    blocked: BTreeMap<Peer, Instant>,
    /// Peers known to hold entries we lack.
    ahead: BTreeSet<Peer>,
    next_round: Option<Instant>,
    last_round: Option<Instant>,
    rounds: u64,
    /// Answer a digest's clock with the entries the peer lacks (push-pull).
    push: bool,
    /// Also run rounds with random peers shortly after a change (spreads
    /// values in `pull`/`push-pull`; off for `gossip`, which pushes).
    explore: bool,
}

impl<V: Ord + Clone> AntiEntropy<V> {
    pub fn new(me: Peer, members: &[Peer], push: bool, explore: bool) -> Self {
        AntiEntropy {
            entries: BTreeMap::new(),
            clocks: BTreeMap::new(),
            own_seq: 0,
            version: 0,
            changed_at: Instant::ZERO,
            neighbours: overlay::mesh(me, members),
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
        let e = Entry(ctx.me, self.own_seq, v);
        self.add(ctx, e.clone());
        e
    }

    /// Records an entry; returns true if its tag is new here (the value is
    /// then also offered to the store).
    pub fn add(&mut self, ctx: &mut Ctx<'_, V>, e: Entry<V>) -> bool {
        let Entry(origin, seq, v) = e;
        if !self.clocks.entry(origin).or_default().insert(seq) {
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
            .filter(|(_, c)| c.contig > 0)
            .map(|(o, c)| (*o, c.contig))
            .collect()
    }

    /// Does a peer with clock `theirs` hold everything we hold?
    fn covered_by(&self, theirs: &Clock) -> bool {
        let t: BTreeMap<Peer, u64> = theirs.iter().copied().collect();
        self.clocks
            .iter()
            .all(|(o, c)| t.get(o).copied().unwrap_or(0) >= c.max())
    }

    /// Does a peer with clock `theirs` hold something we lack?
    fn behind(&self, theirs: &Clock) -> bool {
        theirs
            .iter()
            .any(|(o, n)| self.clocks.get(o).map_or(0, |c| c.contig) < *n)
    }

    /// Entries a peer with clock `theirs` lacks, at most `max`.
    fn missing(&self, theirs: &Clock, max: usize) -> Vec<Entry<V>> {
        let t: BTreeMap<Peer, u64> = theirs.iter().copied().collect();
        let mut out = Vec::new();
        for (o, c) in &self.clocks {
            let from = t.get(o).copied().unwrap_or(0);
            if c.max() <= from {
                continue;
            }
            for ((origin, seq), v) in self.entries.range((*o, from + 1)..=(*o, u64::MAX)) {
                if out.len() >= max {
                    return out;
                }
                out.push(Entry(*origin, *seq, v.clone()));
            }
        }
        out
    }

    fn confirm(&mut self, peer: Peer, theirs: &Clock) {
        if self.neighbours.contains(&peer) && self.covered_by(theirs) {
            self.confirmed.insert(peer, self.version);
        }
    }

    pub fn on_digest(&mut self, ctx: &mut Ctx<'_, V>, from: Peer, theirs: Clock) {
        let e = self.missing(&theirs, ctx.cfg.max_batch);
        ctx.out.push(
            from,
            Wire::Delta {
                e,
                vv: self.clock(),
            },
        );
        self.confirm(from, &theirs);
        if self.behind(&theirs) {
            self.ahead.insert(from);
            self.schedule(ctx.now, ctx.cfg.ae_interval);
        }
    }

    pub fn on_delta(
        &mut self,
        ctx: &mut Ctx<'_, V>,
        from: Peer,
        entries: Vec<Entry<V>>,
        theirs: Clock,
    ) {
        let answered = self.outstanding.remove(&from).is_some();
        if answered {
            self.backoff.remove(&from);
            self.blocked.remove(&from);
        }
        for e in entries {
            self.add(ctx, e);
        }
        self.confirm(from, &theirs);
        if self.behind(&theirs) {
            self.ahead.insert(from);
            self.schedule(ctx.now, ctx.cfg.ae_interval);
        } else {
            self.ahead.remove(&from);
        }
        if self.unconfirmed().next().is_some() {
            self.schedule(ctx.now, ctx.cfg.ae_interval);
        }
        // Push-pull: an answer to our digest shows what the peer lacks.
        if self.push && answered && !self.covered_by(&theirs) {
            let e = self.missing(&theirs, ctx.cfg.max_batch);
            ctx.out.push(
                from,
                Wire::Delta {
                    e,
                    vv: self.clock(),
                },
            );
        }
    }

    fn unconfirmed(&self) -> impl Iterator<Item = Peer> + '_ {
        self.neighbours
            .iter()
            .copied()
            .filter(|n| self.confirmed.get(n) != Some(&self.version))
    }

    fn available(&self, now: Instant, p: Peer) -> bool {
        !self.outstanding.contains_key(&p) && self.blocked.get(&p).is_none_or(|t| *t <= now)
    }

    fn hot(&self, ctx: &Ctx<'_, V>) -> bool {
        self.explore && ctx.now < self.changed_at + ctx.cfg.ae_interval * 5
    }

    pub fn tick(&mut self, ctx: &mut Ctx<'_, V>) {
        let now = ctx.now;
        let timeout = (ctx.cfg.ae_interval * 5).max(Duration::from_millis(500));
        let late: Vec<Peer> = self
            .outstanding
            .iter()
            .filter(|(_, t)| **t + timeout <= now)
            .map(|(p, _)| *p)
            .collect();
        for p in late {
            self.outstanding.remove(&p);
            let wait = self
                .backoff
                .get(&p)
                .map_or(ctx.cfg.ae_interval, |d| (*d * 2).min(MAX_BACKOFF));
            self.backoff.insert(p, wait);
            self.blocked.insert(p, now + wait);
            self.schedule(now + wait, ctx.cfg.ae_interval);
        }
        let unblocked: Vec<Peer> = self
            .blocked
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(p, _)| *p)
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
        let random_peer = |ctx: &mut Ctx<'_, V>| {
            let n = ctx.members.len();
            (n > 1).then(|| {
                // Uniform over the other members.
                let p = ctx.members[ctx.rng.random_range(0..n - 1)];
                if p == ctx.me { ctx.members[n - 1] } else { p }
            })
        };
        let mut target = self.ahead.iter().copied().find(|p| self.available(now, *p));
        if target.is_none() && explore {
            target = random_peer(ctx).filter(|p| self.available(now, *p));
        }
        if target.is_none() {
            let choices: Vec<Peer> = self
                .unconfirmed()
                .filter(|p| self.available(now, *p))
                .collect();
            if !choices.is_empty() {
                target = Some(choices[ctx.rng.random_range(0..choices.len())]);
            }
        }
        if target.is_none() && self.hot(ctx) {
            target = random_peer(ctx).filter(|p| self.available(now, *p));
        }
        if let Some(p) = target {
            ctx.out.push(p, Wire::Digest { vv: self.clock() });
            self.outstanding.insert(p, now);
            self.last_round = Some(now);
        }
        let more = self.unconfirmed().any(|p| self.available(now, p))
            || !self.ahead.is_empty()
            || self.hot(ctx);
        if target.is_some() && more {
            self.schedule(now, ctx.cfg.ae_interval);
        }
    }

    pub fn deadline(&self, cfg: &crate::broadcast::Config) -> Option<Instant> {
        let timeout = (cfg.ae_interval * 5).max(Duration::from_millis(500));
        let late = self.outstanding.values().map(|t| *t + timeout).min();
        let unblock = self.blocked.values().min().copied();
        [self.next_round, late, unblock].into_iter().flatten().min()
    }
}
