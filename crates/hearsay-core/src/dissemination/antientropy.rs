//! Digest anti-entropy with completion tracking (`pull`, `push-pull`, and
//! `gossip`'s repair).
//!
//! Entries are tagged (origin, origin's epoch, seq) and summarised by a
//! version vector. A round sends a digest (the whole vector) to one peer;
//! the peer answers with the entries the sender lacks, whether it holds
//! more than fitted, and only its marks for the origin lives where the
//! digest showed more than it holds (push-pull sends those entries back):
//! one full vector per round, not one per message. A mesh neighbour that
//! lacked nothing of a digest is *confirmed* as of that digest; any new
//! entry unconfirms them all. Rounds run only while a neighbour is unconfirmed, a peer is known
//! to have more, or (when exploring) shortly after a change, so a settled
//! cluster is silent. Loss-freedom: on a connected mesh, every node keeps
//! retrying each neighbour (with backoff) until it confirmed holding all of
//! this node's entries, so every entry reaches every node after a partition
//! heals.

use super::Ctx;
use super::seqset::SeqSet;
use super::{Clock, DisMsg, Entry, Mark, Strategy, Value, check_peers};
use crate::id::{Epoch, NodeId};
use crate::link::Lane;
use crate::membership::ViewChange;
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
    /// Digests awaiting an answer, by peer: when sent, and this node's
    /// version then (what an answer can confirm the peer holds).
    outstanding: BTreeMap<NodeId, (Instant, u64)>,
    /// Peers that did not answer: how long we wait before asking again.
    backoff: BTreeMap<NodeId, Duration>,
    /// ... and until when.
    blocked: BTreeMap<NodeId, Instant>,
    /// Peers known to hold entries we lack.
    ahead: BTreeSet<NodeId>,
    /// The clock as last sent, and the version it was built at.
    clock_at: Option<(u64, Clock)>,
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
            clock_at: None,
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

    /// This node's clock as a digest, cached until an entry is added (a
    /// digest goes out every round; building it is most of a round's work).
    fn clock(&mut self) -> Clock {
        if self
            .clock_at
            .as_ref()
            .is_none_or(|(v, _)| *v != self.version)
        {
            let c: Clock = self
                .clocks
                .iter()
                .filter(|(_, c)| c.contig > 0 || !c.extra.is_empty())
                .map(|((o, e), c)| c.mark(o, *e))
                .collect();
            self.clock_at = Some((self.version, c));
        }
        self.clock_at
            .as_ref()
            .map(|(_, c)| c.clone())
            .unwrap_or_default()
    }

    /// Does a peer with clock `theirs` hold everything we hold?
    fn covered_by(&self, theirs: &Clock) -> bool {
        side_by_side(&self.clocks, theirs).all(|pair| match pair {
            Pair::Mine(_, mine) => mine.contig == 0 && mine.extra.is_empty(),
            Pair::Both(_, mine, their) => mine.within_mark(their),
            Pair::Theirs(_) => true,
        })
    }

    /// Entries a peer with clock `theirs` lacks, at most `max`. With
    /// `partial`, `theirs` lists only some origin lives (a delta's `w`) and
    /// says nothing of the others.
    fn missing(&self, theirs: &Clock, max: usize, partial: bool) -> Vec<Entry<V>> {
        let mut out = Vec::new();
        for pair in side_by_side(&self.clocks, theirs) {
            let (key, contig, extra): (&Origin, u64, &[u64]) = match pair {
                Pair::Mine(k, _) if !partial => (k, 0, &[]),
                Pair::Both(k, mine, their) if !mine.within_mark(their) => (k, their.2, &their.3),
                _ => continue,
            };
            let lo = (key.clone(), contig.saturating_add(1));
            for (((origin, epoch), seq), v) in self.entries.range(lo..=(key.clone(), u64::MAX)) {
                if extra.contains(seq) {
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

    /// This node's marks for the origin lives where `theirs` holds more
    /// (an empty mark where this node holds none of an origin life).
    fn lacking(&self, theirs: &Clock) -> Clock {
        side_by_side(&self.clocks, theirs)
            .filter_map(|pair| match pair {
                Pair::Theirs(m) if m.2 > 0 || !m.3.is_empty() => {
                    Some(Mark(m.0.clone(), m.1, 0, Vec::new()))
                }
                Pair::Both(k, mine, their) if !mine.covers_mark(their) => {
                    Some(mine.mark(&k.0, k.1))
                }
                _ => None,
            })
            .collect()
    }

    fn confirm(&mut self, peer: &NodeId, theirs: &Clock) {
        if self.neighbours.contains(peer) && self.covered_by(theirs) {
            self.confirmed.insert(peer.clone(), self.version);
        }
    }

    /// A peer's digest: answer with what it lacks, whether there is more,
    /// and (for push-pull) the marks of what this node lacks of its clock.
    pub fn on_digest(&mut self, ctx: &mut Ctx<'_, V>, from: &NodeId, theirs: Clock) {
        let lacks = self.lacking(&theirs);
        let e = self.missing(&theirs, ctx.cfg.link.max_batch, false);
        // A full batch may have left some out: the peer asks again.
        let more = e.len() >= ctx.cfg.link.max_batch;
        let w = if self.push {
            lacks.clone()
        } else {
            Clock::default()
        };
        ctx.out
            .push(from.clone(), Msg::Dis(DisMsg::Delta { e, more, w }));
        self.confirm(from, &theirs);
        if !lacks.is_empty() {
            self.ahead.insert(from.clone());
            self.schedule(ctx.now, ctx.cfg.ae_interval);
        }
    }

    /// A peer's delta: take the entries. An answer to our digest also says
    /// whether the peer held all we had then (`w` empty: confirmed as of
    /// that digest) and whether it holds more (`more`: ask it again);
    /// push-pull sends back what `w` shows the peer lacks.
    pub fn on_delta(
        &mut self,
        ctx: &mut Ctx<'_, V>,
        from: &NodeId,
        entries: Vec<Entry<V>>,
        more: bool,
        w: Clock,
    ) {
        let asked = self.outstanding.remove(from);
        if asked.is_some() {
            self.backoff.remove(from);
            self.blocked.remove(from);
        }
        for e in entries {
            self.add(ctx, e);
        }
        if let Some((_, version)) = asked {
            if w.is_empty() && self.neighbours.contains(from) {
                let v = self.confirmed.entry(from.clone()).or_default();
                *v = (*v).max(version);
            }
            if more {
                self.ahead.insert(from.clone());
            } else {
                self.ahead.remove(from);
            }
        }
        if self.unconfirmed().next().is_some() || !self.ahead.is_empty() {
            self.schedule(ctx.now, ctx.cfg.ae_interval);
        }
        // Push-pull: the answer to our digest shows what the peer lacks.
        if self.push && asked.is_some() && !w.is_empty() {
            let e = self.missing(&w, ctx.cfg.link.max_batch, true);
            if !e.is_empty() {
                ctx.out.push(
                    from.clone(),
                    Msg::Dis(DisMsg::Delta {
                        e,
                        more: false,
                        w: Clock::default(),
                    }),
                );
            }
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
            .filter(|(_, (t, _))| *t + timeout <= now)
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
            self.outstanding.insert(p, (now, self.version));
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
        let late = self.outstanding.values().map(|(t, _)| *t + timeout).min();
        let unblock = self.blocked.values().min().copied();
        [self.next_round, late, unblock].into_iter().flatten().min()
    }
}

/// One origin life in either of two clocks.
enum Pair<'a> {
    Mine(&'a Origin, &'a SeqSet),
    Theirs(&'a Mark),
    Both(&'a Origin, &'a SeqSet, &'a Mark),
}

/// This node's clock and a peer's digest, walked together in origin order
/// (no lookup tables, no copies: a digest lists every origin life and
/// arrives every round). A digest is sorted as this code writes it; one
/// that is not (another implementation, a corrupt peer) is sorted here, and
/// a duplicate origin keeps its first mark.
fn side_by_side<'a>(
    mine: &'a BTreeMap<Origin, SeqSet>,
    theirs: &'a [Mark],
) -> impl Iterator<Item = Pair<'a>> {
    let key = |m: &'a Mark| (&m.0, m.1);
    let sorted = theirs.windows(2).all(|w| key(&w[0]) < key(&w[1]));
    let mut t: Vec<&'a Mark> = theirs.iter().collect();
    if !sorted {
        t.sort_by(|a, b| key(a).cmp(&key(b)));
        t.dedup_by(|a, b| key(a) == key(b));
    }
    let mut m = mine.iter().peekable();
    let mut t = t.into_iter().peekable();
    std::iter::from_fn(move || match (m.peek(), t.peek()) {
        (Some((k, _)), Some(x)) => match (&k.0, k.1).cmp(&key(x)) {
            std::cmp::Ordering::Less => m.next().map(|(k, s)| Pair::Mine(k, s)),
            std::cmp::Ordering::Greater => t.next().map(Pair::Theirs),
            std::cmp::Ordering::Equal => {
                let (k, s) = m.next().expect("peeked");
                t.next().map(|x| Pair::Both(k, s, x))
            }
        },
        (Some(_), None) => m.next().map(|(k, s)| Pair::Mine(k, s)),
        (None, Some(_)) => t.next().map(Pair::Theirs),
        (None, None) => None,
    })
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
            DisMsg::Delta { e, more, w } => self.on_delta(ctx, from, e, more, w),
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
