//! The core `Node`: routes each input to the machine that owns it, lends it
//! a [`Ctx`], and puts what it sends into envelopes. It decides nothing
//! itself (STYLE.md rule 7).
//!
//! Inputs from peers go through the epoch rules first (see [`crate::wire`]):
//! a message from a member's earlier life is dropped; a message from a new
//! life restarts the sessions with that member and tells the strategy, which
//! treats it as a new neighbour; link headers addressed to this node's
//! earlier life are not applied, and the sender gets a bare message carrying
//! this life's epoch so it resets its side.

mod ctx;
pub mod timers;

pub use crate::outbox::Outbox;
pub(crate) use ctx::Ctx;
pub use ctx::{Stats, Topology};

use crate::dissemination::{self, Config, ConfigError, Load, Store, Strategy, StrategyKind};
use crate::id::{Epoch, NodeId};
use crate::link::{LinkMsg, Links};
use crate::membership::{View, ViewChange};
use crate::overlay;
use crate::rng::{self, Rng};
use crate::time::Instant;
use crate::wire::{Envelope, Msg};
use std::fmt;

/// One input to a node.
#[derive(Clone, Debug)]
pub enum Input<V> {
    /// A client asked this node to broadcast `V`.
    Broadcast(V),
    /// A message from another node.
    Receive { from: NodeId, env: Envelope<V> },
    /// The operator's suggested topology (only topology overlays use it).
    Topology(Topology),
    /// Members joined (in the given epochs) or left.
    View {
        joined: Vec<(NodeId, Epoch)>,
        left: Vec<NodeId>,
    },
    /// Time passed (the shell's timer for `next_deadline` fired).
    Tick,
}

/// Everything a node owns but the strategy machine: what a [`Ctx`] borrows.
#[derive(Debug)]
struct Parts<V> {
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
}

impl<V: Ord + Clone> Parts<V> {
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
/// over a view of the members.
pub struct Node<V> {
    parts: Parts<V>,
    strategy: Box<dyn Strategy<V>>,
}

impl<V: fmt::Debug> fmt::Debug for Node<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("me", self.parts.view.me())
            .field("epoch", &self.parts.epoch)
            .field("strategy", &self.strategy)
            .finish()
    }
}

impl<V: Ord + Clone + fmt::Debug + Send + 'static> Node<V> {
    /// A node `me` in its life `epoch`, over the members `members` (`me`
    /// included or not). `seed` seeds its random choices (combined with its
    /// name, so nodes of one run differ).
    pub fn new(
        cfg: Config,
        me: NodeId,
        epoch: Epoch,
        members: impl IntoIterator<Item = NodeId>,
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
            cfg,
        };
        parts.links.set_relay(parts.relay());
        let strategy = dissemination::machine(&mut parts.ctx(Instant::ZERO));
        parts.update_reach();
        let pace = dissemination::pace(&parts.cfg, parts.view.len(), 0.0);
        parts.links.set_pace(pace);
        tracing::debug!(node = %me, %epoch, strategy = %parts.cfg.strategy, members = parts.view.len(), "node created");
        Ok(Node { parts, strategy })
    }

    pub fn handle(&mut self, now: Instant, input: Input<V>, out: &mut Outbox<Envelope<V>>) {
        let learned_before = self.parts.stats.learned;
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
            Input::Tick => {}
        }
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
        for (to, msg) in p.sends.drain() {
            let to_epoch = p.view.epoch(&to).unwrap_or_default();
            out.push(to, Envelope::new(p.epoch, to_epoch, msg));
        }
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
        if from == *p.view.me() || !p.view.contains(&from) {
            p.stats.ignored += 1;
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
            }) => {
                if for_me {
                    p.links
                        .receive(now, &p.cfg.link, &from, lane, seq, base, ack, &values);
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
        }
    }

    /// When the shell must call `handle(_, Input::Tick, _)` next.
    pub fn next_deadline(&self) -> Option<Instant> {
        timers::earliest([
            self.parts.links.deadline(&self.parts.cfg.link),
            self.strategy.deadline(&self.parts.cfg),
        ])
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

    /// The strategy's invariants (tests check them after every input).
    pub fn check_invariants(&mut self) -> Result<(), String> {
        let ctx = self.parts.ctx(Instant::ZERO);
        dissemination::check_peers(&ctx, "the link table", ctx.links.peers())?;
        self.strategy.check(&ctx)
    }
}
