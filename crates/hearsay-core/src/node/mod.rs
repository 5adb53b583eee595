//! The core `Node`: routes each input to the machine that owns it, lends it
//! a [`Ctx`], and puts what it sends into envelopes. It decides nothing
//! itself (STYLE.md rule 7).
//!
//! A node runs over a membership ([`Membership`]): [`Static`], a fixed
//! list (Maelstrom's), or [`Swim`], a changing cluster. Whatever the
//! membership reports (a join, a death, a new life) becomes a change of the
//! node's [`View`], which the links and the dissemination strategy follow.
//!
//! Inputs from peers go through the epoch rules first (see [`crate::wire`]):
//! a message from a member's earlier life is dropped; a message from a new
//! life restarts the sessions with that member and tells the strategy, which
//! treats it as a new neighbour; link headers addressed to this node's
//! earlier life are not applied, and the sender gets a bare message carrying
//! this life's epoch so it resets its side.

/// Deadlines (kept here too, where shells found them first).
pub use crate::timers;

use crate::dissemination::Ctx;
pub use crate::outbox::Outbox;
pub use crate::overlay::Topology;
pub use crate::stats::Stats;

use crate::dissemination::{self, Config, ConfigError, Load, Store, Strategy, StrategyKind, Value};
use crate::id::{Epoch, NodeId};
use crate::link::{LinkConfig, LinkMsg, Links};
use crate::membership::{
    Event, Incarnation, MemberMsg, Membership, Meta, Static, Swim, View, ViewChange,
};
use crate::overlay;
use crate::rng::{self, Rng};
use crate::time::Instant;
use crate::wire::{Envelope, Msg};
use std::collections::{BTreeSet, VecDeque};
use std::fmt;
use std::sync::Arc;

/// One input to a node.
#[derive(Clone, Debug)]
pub enum Input<V: Value> {
    /// A client asked this node to broadcast `V`.
    Broadcast(V),
    /// A message from another node.
    Receive { from: NodeId, env: Envelope<V> },
    /// The operator's suggested topology (only topology overlays use it).
    Topology(Topology),
    /// Members joined (in the given epochs) or left (a static membership
    /// changed by the shell).
    View {
        joined: Vec<(NodeId, Epoch)>,
        left: Vec<NodeId>,
    },
    /// Join the cluster through these members (a changing membership; a
    /// static one has nothing to join).
    Join(Vec<NodeId>),
    /// Leave the cluster gracefully.
    Leave,
    /// Record a failed member as left and say so (Serf's force-leave).
    ForceLeave(NodeId),
    /// Time passed (the shell's timer for `next_deadline` fired).
    Tick,
}

/// Everything a node owns but the strategy machine: what a [`Ctx`] borrows.
#[derive(Debug)]
struct Parts<V: Value> {
    cfg: Config,
    epoch: Epoch,
    view: View,
    topology: Option<Topology>,
    store: Store<V>,
    links: Links<V>,
    sends: Outbox<Msg<V>>,
    rng: Rng,
    stats: Stats,
    load: Load,
    /// Greet the strategy's neighbours on the first input: a restarted node
    /// announces its new life even when it has nothing to send.
    greet: bool,
    mem_out: Outbox<MemberMsg>,
    /// Membership events for the application (a changing membership only),
    /// oldest first, at most [`MAX_EVENTS`].
    events: VecDeque<Event>,
}

/// Membership events kept for the application at most; past that the
/// oldest go and are counted.
pub const MAX_EVENTS: usize = 65_536;

impl<V: Value> Parts<V> {
    fn ctx(&mut self, now: Instant) -> Ctx<'_, V> {
        Ctx {
            now,
            epoch: self.epoch,
            view: &self.view,
            topology: self.topology.as_ref(),
            cfg: &self.cfg,
            store: &mut self.store,
            links: &mut self.links,
            out: &mut self.sends,
            rng: &mut self.rng,
            stats: &mut self.stats,
        }
    }

    fn update_reach(&mut self) {
        if matches!(
            self.cfg.strategy,
            StrategyKind::Flood | StrategyKind::Tree | StrategyKind::Plumtree
        ) {
            let r = overlay::reach(self.cfg.overlay, &self.view, self.topology.as_ref());
            self.links.set_reach(r);
        }
    }

    fn relay(&self) -> Option<NodeId> {
        self.view
            .top()
            .filter(|_| self.cfg.link.ack_via_hub)
            .cloned()
    }
}

/// A node of a cluster: one dissemination strategy over reliable links,
/// over a view of the members that its membership keeps.
pub struct Node<V: Value, M = Static> {
    parts: Parts<V>,
    strategy: Box<dyn Strategy<V>>,
    membership: M,
}

impl<V: Value, M> fmt::Debug for Node<V, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("me", self.parts.view.me())
            .field("epoch", &self.parts.epoch)
            .field("strategy", &self.strategy)
            .finish()
    }
}

impl<V: Value> Node<V, Static> {
    /// A node `me` in its life `epoch`, over the fixed member list
    /// `members` (`me` included or not). `seed` seeds its random choices
    /// (combined with its name, so nodes of one run differ).
    pub fn new(
        cfg: Config,
        me: NodeId,
        epoch: Epoch,
        members: impl IntoIterator<Item = NodeId>,
        seed: u64,
    ) -> Result<Self, ConfigError> {
        Self::with_membership(cfg, me, epoch, members, Static, seed)
    }
}

impl<V: Value> Node<V, Swim> {
    /// A warm start with a known membership (a simulator's): every member
    /// alive in the given incarnation (see [`Swim::bootstrap`]), and in the
    /// view at once.
    pub fn bootstrap(
        &mut self,
        now: Instant,
        members: impl IntoIterator<Item = (NodeId, Incarnation, Arc<Meta>)>,
    ) {
        let members: Vec<_> = members.into_iter().collect();
        let joined: Vec<(NodeId, Epoch)> = members
            .iter()
            .map(|(id, inc, _)| (id.clone(), inc.epoch))
            .collect();
        self.membership.bootstrap(now, members);
        let change = self.parts.view.apply(&joined, &[]);
        self.view_changed(now, change);
    }
}

impl<V: Value, M: Membership> Node<V, M> {
    /// A node over `membership`, starting from the members `members` (for
    /// a changing membership usually none: its events fill the view).
    pub fn with_membership(
        cfg: Config,
        me: NodeId,
        epoch: Epoch,
        members: impl IntoIterator<Item = NodeId>,
        membership: M,
        seed: u64,
    ) -> Result<Self, ConfigError> {
        cfg.validate()?;
        let mut view = View::new(me.clone(), members);
        view.note_epoch(&me, epoch);
        let rng = rng::child(seed, &format!("node/{me}"));
        let mut parts = Parts {
            links: Links::new(None),
            epoch,
            view,
            topology: None,
            store: Store::default(),
            sends: Outbox::default(),
            rng,
            stats: Stats::default(),
            load: Load::default(),
            greet: true,
            mem_out: Outbox::default(),
            events: VecDeque::new(),
            cfg,
        };
        parts.links.set_relay(parts.relay());
        if let Some(r) = parts.cfg.retention {
            parts.store.retain(r);
        }
        let strategy = dissemination::machine(&mut parts.ctx(Instant::ZERO));
        parts.update_reach();
        let pace = dissemination::pace(&parts.cfg, parts.view.len(), 0.0);
        parts.links.set_pace(pace);
        tracing::debug!(node = %me, %epoch, strategy = %parts.cfg.strategy, members = parts.view.len(), "node created");
        Ok(Node {
            parts,
            strategy,
            membership,
        })
    }

    pub fn handle(&mut self, now: Instant, input: Input<V>, out: &mut Outbox<Envelope<V>>) {
        let _span = tracing::trace_span!("input", node = %self.parts.view.me()).entered();
        let learned_before = self.parts.stats.learned;
        self.parts.store.advance(now);
        if std::mem::take(&mut self.parts.greet) {
            self.greet(now);
        }
        match input {
            Input::Broadcast(v) => {
                self.parts.stats.broadcasts += 1;
                let mut ctx = self.parts.ctx(now);
                if !ctx.store.contains(&v) {
                    self.strategy.local(&mut ctx, v);
                }
            }
            Input::Receive { from, env } => self.receive(now, from, env),
            Input::Topology(t) => {
                self.parts.topology = Some(t);
                self.strategy
                    .view_changed(&mut self.parts.ctx(now), &ViewChange::default());
                self.parts.update_reach();
            }
            Input::View { joined, left } => {
                let change = self.parts.view.apply(&joined, &left);
                self.view_changed(now, change);
            }
            Input::Join(seeds) => self.membership.join(now, &seeds, &mut self.parts.mem_out),
            Input::Leave => self.membership.leave(now, &mut self.parts.mem_out),
            Input::ForceLeave(id) => self
                .membership
                .force_leave(now, &id, &mut self.parts.mem_out),
            Input::Tick => {}
        }
        if self.membership.next_deadline().is_some_and(|t| t <= now) {
            self.membership.tick(now, &mut self.parts.mem_out);
        }
        self.follow_membership(now);
        self.strategy.tick(&mut self.parts.ctx(now));
        let p = &mut self.parts;
        let learned = u32::try_from(p.stats.learned - learned_before).unwrap_or(u32::MAX);
        if learned > 0 {
            p.load.record(now, learned);
        }
        let rate = p.load.rate(now);
        p.links
            .set_pace(dissemination::pace(&p.cfg, p.view.len(), rate));
        p.links
            .poll(now, &p.cfg.link, &p.view, &mut p.sends, &mut p.stats);
        for (peer, lane) in p.links.take_recovered() {
            // A neighbour back after its link stalled full: it lacks what
            // was not queued for it, so it gets everything held (the
            // retention window), as a new neighbour would.
            p.stats.stalled_recovered += 1;
            let held: Vec<V> = p.store.values().cloned().collect();
            for v in held {
                p.links.enqueue(&p.cfg.link, &peer, lane, v);
            }
        }
        let mem = p.mem_out.drain().map(|(to, m)| (to, Msg::Mem(m)));
        for (to, msg) in p.sends.drain().chain(mem) {
            let to_epoch = p.view.epoch(&to).unwrap_or_default();
            out.push(to, Envelope::new(p.epoch, to_epoch, msg));
        }
    }

    /// Carries what the membership saw to the view and keeps the events
    /// for the application. The changes of one input go to the links and
    /// the strategy together (a sync that reports 500 deaths recomputes the
    /// overlay once, not 500 times), except that a member changing twice
    /// within it (dead and back) is passed on in two steps, in order.
    fn follow_membership(&mut self, now: Instant) {
        let mut events = Vec::new();
        self.membership.drain_events(&mut events);
        let mut acc = ViewChange::default();
        let mut touched: BTreeSet<NodeId> = BTreeSet::new();
        for e in events {
            let (id, joined) = match &e {
                Event::Joined(id, inc)
                | Event::Alive(id, inc)
                | Event::Updated(id, inc)
                | Event::Suspected(id, inc) => (id, Some((id.clone(), inc.epoch))),
                Event::Died(id, _) | Event::Left(id, _) | Event::Removed(id) => (id, None),
            };
            if touched.contains(id) {
                self.view_changed(now, std::mem::take(&mut acc));
                touched.clear();
            }
            let change = match joined {
                Some(j) => self.parts.view.apply(&[j], &[]),
                None => self.parts.view.apply(&[], std::slice::from_ref(id)),
            };
            if !change.is_empty() {
                touched.insert(id.clone());
                acc.joined.extend(change.joined);
                acc.left.extend(change.left);
                acc.restarted.extend(change.restarted);
            }
            let p = &mut self.parts;
            if p.events.len() >= MAX_EVENTS {
                p.events.pop_front();
                p.stats.events_dropped += 1;
            }
            p.events.push_back(e);
        }
        self.view_changed(now, acc);
    }

    fn greet(&mut self, now: Instant) {
        let p = &mut self.parts;
        // Deferred by an ack delay: values that go out before carry it.
        let at = now + p.cfg.link.ack_delay;
        for n in self.strategy.neighbours() {
            p.links.greet(at, &p.cfg.link, &n);
        }
    }

    fn view_changed(&mut self, now: Instant, change: ViewChange) {
        if change.is_empty() {
            return;
        }
        tracing::debug!(node = %self.parts.view.me(), ?change, "view changed");
        for id in &change.left {
            self.parts.links.remove_peer(id);
        }
        for id in &change.restarted {
            self.parts.links.reset_peer(&self.parts.cfg.link, id);
            self.parts.stats.restarts += 1;
        }
        let relay = self.parts.relay();
        self.parts.links.set_relay(relay);
        self.strategy
            .view_changed(&mut self.parts.ctx(now), &change);
        self.parts.update_reach();
    }

    fn receive(&mut self, now: Instant, from: NodeId, env: Envelope<V>) {
        let p = &mut self.parts;
        let membership = matches!(env.msg, Msg::Mem(_)) && self.membership.talks();
        if from == *p.view.me() || !(p.view.contains(&from) || membership) {
            p.stats.ignored += 1;
            return;
        }
        if !p.view.contains(&from) || (membership && !env.epoch.is_known()) {
            // A stranger's membership message (a joiner, say), or one that
            // states no life (a shell that saves the bytes: membership
            // tells lives apart by its incarnations): no epoch to check.
            if let Msg::Mem(m) = env.msg {
                self.membership.receive(now, &from, m, &mut p.mem_out);
            }
            return;
        }
        let known = p.view.epoch(&from).unwrap_or_default();
        if env.epoch < known {
            p.stats.stale += 1;
            return;
        }
        if env.epoch > known && p.view.note_epoch(&from, env.epoch) {
            tracing::debug!(node = %p.view.me(), peer = %from, epoch = %env.epoch, "peer restarted");
            self.view_changed(
                now,
                ViewChange {
                    restarted: vec![from.clone()],
                    ..ViewChange::default()
                },
            );
        }
        let p = &mut self.parts;
        let for_me = !env.to.is_known() || env.to == p.epoch;
        match env.msg {
            Msg::Link(LinkMsg::Data {
                lane,
                seq,
                base,
                ack,
                values,
                probe,
            }) => {
                if for_me {
                    p.links.receive(
                        now,
                        &p.cfg.link,
                        &from,
                        lane,
                        seq,
                        base,
                        ack,
                        &values,
                        probe,
                    );
                } else {
                    p.stats.misaddressed += 1;
                    p.links.owe_hello(now, &p.cfg.link, &from);
                }
                if !values.is_empty() {
                    self.strategy
                        .link_values(&mut self.parts.ctx(now), &from, lane, values);
                }
            }
            Msg::Link(LinkMsg::AckVia { k }) if for_me => {
                p.links.ack_via(
                    now,
                    &p.cfg.link,
                    &p.view,
                    p.epoch,
                    &from,
                    env.epoch,
                    k,
                    &mut p.stats,
                );
            }
            Msg::Link(LinkMsg::AckVia { .. }) => {
                p.stats.misaddressed += 1;
                p.links.owe_hello(now, &p.cfg.link, &from);
            }
            Msg::Link(LinkMsg::AckRelay { k }) => {
                p.links
                    .ack_relay(now, &p.cfg.link, &p.view, p.epoch, k, &mut p.stats);
            }
            Msg::Dis(m) => self.strategy.message(&mut p.ctx(now), &from, m),
            Msg::Mem(m) if membership => {
                self.membership.receive(now, &from, m, &mut p.mem_out);
            }
            Msg::Mem(_) => p.stats.ignored += 1,
        }
    }

    /// When the shell must call `handle(_, Input::Tick, _)` next.
    pub fn next_deadline(&self) -> Option<Instant> {
        timers::earliest([
            self.parts.links.deadline(&self.parts.cfg.link),
            self.strategy.deadline(&self.parts.cfg),
            self.membership.next_deadline(),
        ])
    }

    /// The membership machine (SWIM's member table, say).
    pub fn membership(&self) -> &M {
        &self.membership
    }

    /// The membership, to change what this member tells about itself
    /// (its tags); the view follows at the next input.
    pub fn membership_mut(&mut self) -> &mut M {
        &mut self.membership
    }

    /// Membership events since the last call, oldest first.
    pub fn drain_events(&mut self) -> impl Iterator<Item = Event> + '_ {
        self.parts.events.drain(..)
    }

    /// Keeps each value this node learns (from a client or a peer) for
    /// [`Node::drain_delivered`], at most `max` not yet taken.
    pub fn keep_delivered(&mut self, max: usize) {
        self.parts.store.keep_fresh(max);
    }

    /// Values learned since the last call, in the order learned (only after
    /// [`Node::keep_delivered`]).
    pub fn drain_delivered(&mut self) -> impl Iterator<Item = V> + '_ {
        self.parts.store.drain_fresh()
    }

    /// Every value known here, in value order.
    pub fn values(&self) -> impl ExactSizeIterator<Item = &V> {
        self.parts.store.values()
    }

    pub fn contains(&self, v: &V) -> bool {
        self.parts.store.contains(v)
    }

    /// The peers this node exchanges values with directly.
    pub fn neighbours(&self) -> Vec<NodeId> {
        self.strategy.neighbours()
    }

    pub fn view(&self) -> &View {
        &self.parts.view
    }

    pub fn epoch(&self) -> Epoch {
        self.parts.epoch
    }

    /// Value bytes sent or queued on links and not yet acknowledged: what
    /// a sender holds for its neighbours (see [`crate::value::Value::size`]).
    pub fn unacked_bytes(&self) -> usize {
        self.parts.links.held_bytes()
    }

    /// Of those, the bytes held for neighbours that are taking data (a
    /// link nothing has acknowledged for 10 s is left out: it holds a
    /// bounded amount of its own): what a sender should slow down for.
    pub fn backlog_bytes(&self) -> usize {
        self.parts.links.backlog_bytes()
    }

    pub fn stats(&self) -> Stats {
        Stats {
            deliveries_dropped: self.parts.store.fresh_dropped(),
            forgotten: self.parts.store.forgotten(),
            stalled_dropped: self.parts.links.dropped(),
            ..self.parts.stats
        }
    }

    pub fn config(&self) -> &Config {
        &self.parts.cfg
    }

    /// Other link timing from now on, for a shell that learns late what
    /// it serves (hearsay-node infers its workload from the first
    /// request). Links pick it up at their next timer or ack.
    pub fn set_link(&mut self, link: LinkConfig) -> Result<(), ConfigError> {
        link.validate().map_err(ConfigError::Invalid)?;
        self.parts.cfg.link = link;
        Ok(())
    }

    /// True when nothing is queued, unacknowledged, owed or pending.
    pub fn quiescent(&self) -> bool {
        self.parts.links.idle() && self.next_deadline().is_none()
    }

    /// The strategy's invariants (tests check them after every input).
    pub fn check_invariants(&mut self) -> Result<(), String> {
        let ctx = self.parts.ctx(Instant::ZERO);
        dissemination::check_peers(&ctx, "the link table", ctx.links.peers())?;
        self.strategy.check(&ctx)
    }
}

impl<V: Value, M: Membership> crate::machine::Machine for Node<V, M> {
    type Msg = Envelope<V>;
    fn receive(
        &mut self,
        now: Instant,
        from: &NodeId,
        env: Envelope<V>,
        out: &mut Outbox<Envelope<V>>,
    ) {
        let from = from.clone();
        self.handle(now, Input::Receive { from, env }, out);
    }
    fn tick(&mut self, now: Instant, out: &mut Outbox<Envelope<V>>) {
        self.handle(now, Input::Tick, out);
    }
    fn next_deadline(&self) -> Option<Instant> {
        Node::next_deadline(self)
    }
}
