//! The broadcast engine: owns the value store, the links and the RNG, and
//! hands a small context to the strategy machine that owns each input.

use super::antientropy::AntiEntropy;
use super::gossip::Gossip;
use super::links::Links;
use super::plumtree::Plumtree;
use super::relay::Relay;
use super::{Config, Lane, Peer, Strategy, Wire};
use crate::rng::{self, Rng};
use crate::time::Instant;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

/// One input to the engine.
#[derive(Clone, Debug)]
pub enum Input<V> {
    /// A client asked this node to broadcast `V`.
    Broadcast(V),
    /// A message from another node.
    Receive { from: Peer, msg: Wire<V> },
    /// Time passed (the shell's timer for `next_deadline` fired).
    Tick,
}

/// Messages to send, appended by `handle`; the shell drains it.
#[derive(Debug)]
pub struct Outbox<V>(Vec<(Peer, Wire<V>)>);

impl<V> Default for Outbox<V> {
    fn default() -> Self {
        Outbox(Vec::new())
    }
}

impl<V> Outbox<V> {
    pub fn push(&mut self, to: Peer, msg: Wire<V>) {
        self.0.push((to, msg));
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn iter(&self) -> impl Iterator<Item = &(Peer, Wire<V>)> {
        self.0.iter()
    }
    pub fn drain(&mut self) -> impl Iterator<Item = (Peer, Wire<V>)> + '_ {
        self.0.drain(..)
    }
}

/// Counters, for logs and metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub broadcasts: u64,
    pub learned: u64,
    pub duplicates: u64,
    pub data_sent: u64,
    pub acks_sent: u64,
    pub acks_relayed: u64,
    pub retransmits: u64,
    pub values_sent: u64,
    pub grafts: u64,
    pub ignored: u64,
}

/// Every value known here, deduplicated (one ordered set: reads list it in
/// value order, which costs half the memory of also keeping arrival order).
#[derive(Debug)]
pub(crate) struct Store<V> {
    known: BTreeSet<V>,
}

impl<V: Ord + Clone> Store<V> {
    /// True if `v` is new.
    pub fn learn(&mut self, v: &V) -> bool {
        if self.known.contains(v) {
            return false;
        }
        self.known.insert(v.clone())
    }

    pub fn contains(&self, v: &V) -> bool {
        self.known.contains(v)
    }

    pub fn values(&self) -> impl ExactSizeIterator<Item = &V> {
        self.known.iter()
    }
}

/// Values learned per second, over the last couple of seconds: the load
/// adaptive batching sizes its gaps by.
#[derive(Debug, Default)]
struct Load {
    /// (bucket start, values learned in it), oldest first.
    buckets: VecDeque<(Instant, u32)>,
}

impl Load {
    const BUCKET: Duration = Duration::from_millis(250);
    const WINDOW: Duration = Duration::from_secs(2);

    fn record(&mut self, now: Instant, n: u32) {
        match self.buckets.back_mut() {
            Some((start, count)) if now < *start + Self::BUCKET => *count += n,
            _ => self.buckets.push_back((now, n)),
        }
    }

    /// Values per second over the covered part of the window (so the
    /// estimate is not diluted while the window is still filling).
    fn rate(&mut self, now: Instant) -> f64 {
        while self
            .buckets
            .front()
            .is_some_and(|(t, _)| *t + Self::WINDOW <= now)
        {
            self.buckets.pop_front();
        }
        let Some((oldest, _)) = self.buckets.front() else {
            return 0.0;
        };
        let span = now.saturating_since(*oldest).max(Self::BUCKET);
        self.buckets.iter().map(|(_, c)| f64::from(*c)).sum::<f64>() / span.as_secs_f64()
    }
}

/// The gap on a link to a single node: fixed, or sized so that about
/// `budget` leaf-link messages are spent per value at the observed rate.
fn pace(cfg: &Config, members: usize, rate: f64) -> Duration {
    match cfg.batch_budget {
        None => cfg.batch,
        // Nothing observed yet: nothing to batch with either.
        Some(_) if rate <= 0.0 => cfg.batch,
        Some(budget) => {
            let secs = members as f64 / (rate * budget);
            Duration::from_secs_f64(secs.min(cfg.batch_max.as_secs_f64()))
                .clamp(cfg.batch, cfg.batch_max)
        }
    }
}

/// What a strategy machine gets to work with for one input.
pub(crate) struct Ctx<'a, V> {
    pub now: Instant,
    pub me: Peer,
    pub members: &'a [Peer],
    pub cfg: &'a Config,
    pub store: &'a mut Store<V>,
    pub links: &'a mut Links<V>,
    pub out: &'a mut Outbox<V>,
    pub rng: &'a mut Rng,
    pub stats: &'a mut Stats,
}

#[derive(Debug)]
enum Machine<V> {
    Relay(Relay),
    Gossip(Gossip<V>),
    AntiEntropy(AntiEntropy<V>),
    Plumtree(Plumtree<V>),
}

/// Everything but the strategy machine: what a [`Ctx`] borrows.
#[derive(Debug)]
struct Parts<V> {
    cfg: Config,
    me: Peer,
    members: Vec<Peer>,
    topology: Option<BTreeMap<Peer, Vec<Peer>>>,
    store: Store<V>,
    links: Links<V>,
    rng: Rng,
    stats: Stats,
    load: Load,
}

impl<V: Ord + Clone> Parts<V> {
    fn ctx<'a>(&'a mut self, now: Instant, out: &'a mut Outbox<V>) -> Ctx<'a, V> {
        Ctx {
            now,
            me: self.me,
            members: &self.members,
            cfg: &self.cfg,
            store: &mut self.store,
            links: &mut self.links,
            out,
            rng: &mut self.rng,
            stats: &mut self.stats,
        }
    }

    fn update_reach(&mut self) {
        if matches!(
            self.cfg.strategy,
            Strategy::Flood | Strategy::Tree | Strategy::Plumtree
        ) {
            let r = super::overlay::reach(
                self.cfg.overlay,
                self.me,
                &self.members,
                self.topology.as_ref(),
            );
            self.links.set_reach(r);
        }
    }
}

#[derive(Debug)]
pub struct Broadcast<V> {
    parts: Parts<V>,
    machine: Machine<V>,
}

impl<V: Ord + Clone> Broadcast<V> {
    /// `members` is the full, agreed membership including `me`.
    pub fn new(cfg: Config, me: Peer, members: Vec<Peer>) -> Self {
        let hub = members.first().copied().filter(|_| cfg.ack_via_hub);
        let rng = rng::child(cfg.seed, &format!("broadcast/{}", me.0));
        let mut parts = Parts {
            links: Links::new(hub),
            me,
            members,
            topology: None,
            store: Store {
                known: BTreeSet::new(),
            },
            rng,
            stats: Stats::default(),
            load: Load::default(),
            cfg,
        };
        let mut out = Outbox::default();
        let mut ctx = parts.ctx(Instant::ZERO, &mut out);
        let machine = match ctx.cfg.strategy {
            Strategy::Flood | Strategy::Tree | Strategy::Direct => {
                Machine::Relay(Relay::new(&mut ctx, None))
            }
            Strategy::Gossip => Machine::Gossip(Gossip::new(me, ctx.members)),
            Strategy::Pull => Machine::AntiEntropy(AntiEntropy::new(me, ctx.members, false, true)),
            Strategy::PushPull => {
                Machine::AntiEntropy(AntiEntropy::new(me, ctx.members, true, true))
            }
            Strategy::Plumtree => Machine::Plumtree(Plumtree::new(&ctx, None)),
        };
        parts.update_reach();
        let pace = pace(&parts.cfg, parts.members.len(), 0.0);
        parts.links.set_pace(pace);
        Broadcast { parts, machine }
    }

    /// The operator's suggested topology; only topology-based overlays use it.
    pub fn set_topology(&mut self, topology: BTreeMap<Peer, Vec<Peer>>) {
        self.parts.topology = Some(topology.clone());
        let mut out = Outbox::default();
        let mut ctx = self.parts.ctx(Instant::ZERO, &mut out);
        match &mut self.machine {
            Machine::Relay(r) => r.reroute(&mut ctx, Some(&topology)),
            Machine::Plumtree(p) => *p = Plumtree::new(&ctx, Some(&topology)),
            _ => {}
        }
        self.parts.update_reach();
    }

    pub fn handle(&mut self, now: Instant, input: Input<V>, out: &mut Outbox<V>) {
        let learned_before = self.parts.stats.learned;
        let mut ctx = self.parts.ctx(now, out);
        match input {
            Input::Broadcast(v) => {
                ctx.stats.broadcasts += 1;
                local(&mut self.machine, &mut ctx, v);
            }
            Input::Receive { from, msg } if from != ctx.me => {
                receive(&mut self.machine, &mut ctx, from, msg)
            }
            Input::Receive { .. } => ctx.stats.ignored += 1,
            Input::Tick => {}
        }
        match &mut self.machine {
            Machine::Gossip(g) => g.tick(&mut ctx),
            Machine::AntiEntropy(a) => a.tick(&mut ctx),
            Machine::Plumtree(p) => p.tick(&mut ctx),
            Machine::Relay(_) => {}
        }
        let p = &mut self.parts;
        let learned = (p.stats.learned - learned_before) as u32;
        if learned > 0 {
            p.load.record(now, learned);
        }
        let rate = p.load.rate(now);
        p.links.set_pace(pace(&p.cfg, p.members.len(), rate));
        p.links.poll(now, &p.cfg, p.me, out, &mut p.stats);
    }

    /// When the shell must call `handle(_, Input::Tick, _)` next.
    pub fn next_deadline(&self) -> Option<Instant> {
        let cfg = &self.parts.cfg;
        let machine = match &self.machine {
            Machine::Gossip(g) => g.deadline(cfg),
            Machine::AntiEntropy(a) => a.deadline(cfg),
            Machine::Plumtree(p) => p.deadline(),
            Machine::Relay(_) => None,
        };
        [self.parts.links.deadline(cfg), machine]
            .into_iter()
            .flatten()
            .min()
    }

    /// Every value known here, in value order.
    pub fn values(&self) -> impl ExactSizeIterator<Item = &V> {
        self.parts.store.values()
    }

    pub fn contains(&self, v: &V) -> bool {
        self.parts.store.contains(v)
    }

    /// The relay neighbours (empty for non-relay strategies).
    pub fn neighbours(&self) -> &[Peer] {
        match &self.machine {
            Machine::Relay(r) => r.neighbours(),
            _ => &[],
        }
    }

    pub fn stats(&self) -> Stats {
        self.parts.stats
    }

    pub fn config(&self) -> &Config {
        &self.parts.cfg
    }

    /// True when nothing is queued, unacknowledged, owed or pending.
    pub fn quiescent(&self) -> bool {
        self.parts.links.idle() && self.next_deadline().is_none()
    }
}

fn local<V: Ord + Clone>(m: &mut Machine<V>, ctx: &mut Ctx<'_, V>, v: V) {
    match m {
        Machine::Gossip(g) => {
            if !ctx.store.contains(&v) {
                g.local(ctx, v);
            }
        }
        Machine::AntiEntropy(a) => {
            if !ctx.store.contains(&v) {
                a.local(ctx, v);
            }
        }
        Machine::Relay(r) => {
            if ctx.store.learn(&v) {
                ctx.stats.learned += 1;
                r.forward(ctx, &v, None);
            }
        }
        Machine::Plumtree(p) => {
            if ctx.store.learn(&v) {
                ctx.stats.learned += 1;
                p.deliver(ctx, &v, None);
            }
        }
    }
}

fn receive<V: Ord + Clone>(m: &mut Machine<V>, ctx: &mut Ctx<'_, V>, from: Peer, msg: Wire<V>) {
    match (m, msg) {
        (_, Wire::AckVia { k }) => ctx.links.ack_via(ctx.now, ctx.cfg, ctx.me, from, k),
        (_, Wire::AckRelay { k }) => ctx.links.ack_relay(ctx.now, ctx.cfg, k),
        (
            Machine::Relay(r),
            Wire::Link {
                lane: Lane::Eager,
                msg,
            },
        ) => {
            ctx.links.receive(ctx.now, ctx.cfg, from, Lane::Eager, &msg);
            for v in msg.values {
                if ctx.store.learn(&v) {
                    ctx.stats.learned += 1;
                    r.forward(ctx, &v, Some(from));
                } else {
                    ctx.stats.duplicates += 1;
                }
            }
        }
        (Machine::Plumtree(p), Wire::Link { lane, msg }) => {
            ctx.links.receive(ctx.now, ctx.cfg, from, lane, &msg);
            if lane == Lane::Lazy {
                p.announced(ctx, from, &msg.values);
                return;
            }
            for v in msg.values {
                if ctx.store.learn(&v) {
                    ctx.stats.learned += 1;
                    p.deliver(ctx, &v, Some(from));
                } else {
                    ctx.stats.duplicates += 1;
                    p.duplicate(ctx, from);
                }
            }
        }
        (Machine::Plumtree(p), Wire::Graft { v }) => p.on_graft(ctx, from, v),
        (Machine::Plumtree(p), Wire::Prune {}) => p.on_prune(from),
        (Machine::Gossip(g), Wire::Push { e }) => g.on_push(ctx, e),
        (Machine::Gossip(g), Wire::Digest { vv }) => g.ae.on_digest(ctx, from, vv),
        (Machine::Gossip(g), Wire::Delta { e, vv }) => g.ae.on_delta(ctx, from, e, vv),
        (Machine::AntiEntropy(a), Wire::Digest { vv }) => a.on_digest(ctx, from, vv),
        (Machine::AntiEntropy(a), Wire::Delta { e, vv }) => a.on_delta(ctx, from, e, vv),
        // Another strategy's message (a misconfigured peer): drop, count.
        _ => ctx.stats.ignored += 1,
    }
}
