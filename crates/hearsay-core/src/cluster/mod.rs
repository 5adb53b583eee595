//! A member of a changing cluster: SWIM membership, an active view of a few
//! neighbours drawn from it, and the broadcast of application payloads over
//! that view. [`ClusterNode`] routes each input to the machine that owns
//! it; an application calls `broadcast(bytes)` and takes delivered payloads
//! and membership events, without managing peers.
//!
//! ```
//! use hearsay_core::cluster::{ClusterConfig, ClusterNode};
//! use hearsay_core::outbox::Outbox;
//! use hearsay_core::id::{Epoch, NodeId};
//! use hearsay_core::membership::Meta;
//! use hearsay_core::time::Instant;
//!
//! let mut a = ClusterNode::new(ClusterConfig::default(), NodeId::new("a"), Epoch(1), Meta::default(), 1)?;
//! let mut out = Outbox::default();
//! a.join(Instant::ZERO, &[NodeId::new("seed")], &mut out);
//! assert!(out.iter().any(|(to, _)| to.as_str() == "seed"));
//! # Ok::<(), String>(())
//! ```

mod active;
mod cast;
#[cfg(test)]
mod tests;
mod tree;

pub use active::{Neighbour, ViewMsg};
pub use cast::{CastConfig, CastMsg, CastStats, MAX_PAYLOAD, MsgId, Payload};
pub use tree::{MAX_PATH, Path};

use crate::id::{Epoch, NodeId};
use crate::membership::{Event, MemberMsg, Meta, Swim, SwimConfig};
use crate::node::timers::earliest;
use crate::outbox::Outbox;
use crate::rng::{self, Rng};
use crate::time::Instant;
use active::ActiveView;
use cast::Broadcaster;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Everything a cluster member sends another, by layer. Variant tags on
/// the wire are one or two letters (every datagram carries them; `kind()`
/// gives the readable names for metrics and logs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClusterMsg {
    #[serde(rename = "m")]
    Mem(MemberMsg),
    #[serde(rename = "v")]
    View(ViewMsg),
    #[serde(rename = "c")]
    Cast(CastMsg),
}

impl ClusterMsg {
    pub fn kind(&self) -> &'static str {
        match self {
            ClusterMsg::Mem(m) => m.kind(),
            ClusterMsg::View(_) => "view",
            ClusterMsg::Cast(m) => m.kind(),
        }
    }

    /// Rough encoded size, for traffic accounting.
    pub fn size(&self) -> usize {
        match self {
            ClusterMsg::Mem(m) => m.size(),
            ClusterMsg::View(_) => 12,
            ClusterMsg::Cast(m) => m.size(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ClusterConfig {
    pub swim: SwimConfig,
    pub cast: CastConfig,
    /// Neighbours in the active view, and the most accepted.
    pub degree: usize,
    pub max_degree: usize,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            swim: SwimConfig::default(),
            cast: CastConfig::default(),
            degree: 4,
            max_degree: 6,
        }
    }
}

impl ClusterConfig {
    pub fn validate(&self) -> Result<(), String> {
        self.swim.validate()?;
        self.cast.validate()?;
        if self.degree == 0 || self.max_degree < self.degree {
            return Err("degree must be at least 1 and at most max_degree".into());
        }
        Ok(())
    }
}

/// The rank order every member computes alike (the same as
/// [`crate::membership::View`]'s): highest name hash first.
fn rank(id: &NodeId) -> (u64, std::cmp::Reverse<NodeId>) {
    (id.hash64(), std::cmp::Reverse(id.clone()))
}

/// Membership events the node keeps for the application at most.
const MAX_EVENTS: usize = 65_536;

pub struct ClusterNode {
    me: NodeId,
    swim: Swim,
    view: ActiveView,
    cast: Broadcaster,
    /// The epoch each neighbour was in when it became one.
    neighbour_epochs: BTreeMap<NodeId, Epoch>,
    /// The top-ranked live member (this one included): the tree's root.
    root: NodeId,
    neighbour_changes: u64,
    rng: Rng,
    events: Vec<Event>,
    events_dropped: u64,
    mem_out: Outbox<MemberMsg>,
    cast_out: Outbox<CastMsg>,
    view_out: Outbox<ViewMsg>,
}

impl std::fmt::Debug for ClusterNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterNode")
            .field("me", &self.me)
            .field("neighbours", &self.view.len())
            .finish()
    }
}

impl ClusterNode {
    pub fn new(
        cfg: ClusterConfig,
        me: NodeId,
        epoch: Epoch,
        meta: Meta,
        seed: u64,
    ) -> Result<Self, String> {
        cfg.validate()?;
        let swim = Swim::new(cfg.swim.clone(), me.clone(), epoch, meta, seed)?;
        Ok(ClusterNode {
            view: ActiveView::new(cfg.degree, cfg.max_degree),
            cast: Broadcaster::new(cfg.cast.clone(), me.clone(), epoch),
            rng: rng::child(seed, &format!("cluster/{me}")),
            root: me.clone(),
            neighbour_changes: 0,
            me,
            swim,
            neighbour_epochs: BTreeMap::new(),
            events: Vec::new(),
            events_dropped: 0,
            mem_out: Outbox::default(),
            cast_out: Outbox::default(),
            view_out: Outbox::default(),
        })
    }

    pub fn me(&self) -> &NodeId {
        &self.me
    }

    pub fn swim(&self) -> &Swim {
        &self.swim
    }

    pub fn cast_stats(&self) -> CastStats {
        CastStats {
            neighbour_changes: self.neighbour_changes,
            ..self.cast.stats
        }
    }

    /// The current neighbours (the active view).
    pub fn neighbours(&self) -> impl Iterator<Item = &NodeId> {
        self.view.members()
    }

    /// Eager (tree) and lazy neighbours, for pictures of the overlay.
    pub fn tree(&self) -> (Vec<NodeId>, Vec<NodeId>) {
        (
            self.cast.eager().cloned().collect(),
            self.cast.lazy().cloned().collect(),
        )
    }

    /// This member's path to the root of the eager tree.
    pub fn tree_path(&self) -> Option<&Path> {
        self.cast.tree_path()
    }

    pub fn drain_events(&mut self) -> impl Iterator<Item = Event> + '_ {
        self.events.drain(..)
    }

    pub fn drain_delivered(&mut self) -> impl Iterator<Item = Payload> + '_ {
        self.cast.drain_deliveries()
    }

    /// A warm start with a known membership (see [`Swim::bootstrap`]).
    pub fn bootstrap(
        &mut self,
        now: Instant,
        members: impl IntoIterator<Item = (NodeId, crate::membership::Incarnation, Arc<Meta>)>,
        out: &mut Outbox<ClusterMsg>,
    ) {
        self.swim.bootstrap(now, members);
        self.root = self.top();
        self.after(now, out);
    }

    pub fn join(&mut self, now: Instant, seeds: &[NodeId], out: &mut Outbox<ClusterMsg>) {
        self.swim.join(now, seeds, &mut self.mem_out);
        self.after(now, out);
    }

    /// Leaves gracefully: the leave is gossiped; neighbours are told.
    pub fn leave(&mut self, now: Instant, out: &mut Outbox<ClusterMsg>) {
        self.swim.leave(now, &mut self.mem_out);
        let all: Vec<NodeId> = self.view.members().cloned().collect();
        for n in all {
            self.view.remove(&n);
            self.view_out.push(n, ViewMsg::Disconnect);
        }
        self.after(now, out);
    }

    /// Broadcasts `data` to every member; it is delivered here too.
    pub fn broadcast(
        &mut self,
        now: Instant,
        data: Arc<[u8]>,
        out: &mut Outbox<ClusterMsg>,
    ) -> Result<MsgId, String> {
        if data.len() > MAX_PAYLOAD {
            return Err(format!(
                "a payload has at most {MAX_PAYLOAD} bytes, not {}",
                data.len()
            ));
        }
        let id = self.cast.broadcast(now, data, &mut self.cast_out);
        self.after(now, out);
        Ok(id)
    }

    pub fn handle(
        &mut self,
        now: Instant,
        from: &NodeId,
        msg: ClusterMsg,
        out: &mut Outbox<ClusterMsg>,
    ) {
        if *from == self.me {
            return;
        }
        match msg {
            ClusterMsg::Mem(m) => self.swim.handle(now, from, m, &mut self.mem_out),
            ClusterMsg::View(m) => {
                let alive = self.swim.status_of(from).is_some_and(|(_, s)| s.is_live());
                self.view
                    .handle(from, m, alive, &mut self.rng, &mut self.view_out);
            }
            ClusterMsg::Cast(m) => {
                if !self.view.contains(from) && self.view.is_pending(from) {
                    // Its accept is still on the way (messages reorder):
                    // this message says it took us as a neighbour.
                    self.view.handle(
                        from,
                        ViewMsg::Accept,
                        true,
                        &mut self.rng,
                        &mut self.view_out,
                    );
                    self.sync_neighbours(now);
                }
                if self.view.contains(from) {
                    self.cast.handle(now, from, m, &mut self.cast_out);
                } else {
                    // Not a neighbour (any more): take a payload it pushed,
                    // and tell it to stop.
                    match m {
                        CastMsg::Gossip { .. } => {
                            self.cast.handle(now, from, m, &mut self.cast_out);
                            self.view_out.push(from.clone(), ViewMsg::Disconnect);
                        }
                        CastMsg::Tree { .. } => {}
                        _ => self.view_out.push(from.clone(), ViewMsg::Disconnect),
                    }
                }
            }
        }
        self.after(now, out);
    }

    pub fn tick(&mut self, now: Instant, out: &mut Outbox<ClusterMsg>) {
        self.swim.tick(now, &mut self.mem_out);
        self.cast.tick(now, &mut self.rng, &mut self.cast_out);
        self.after(now, out);
    }

    /// Carries membership news to the active view and the view's changes
    /// to the broadcast layer, then sends everything out.
    fn after(&mut self, now: Instant, out: &mut Outbox<ClusterMsg>) {
        let events: Vec<Event> = self.swim.drain_events().collect();
        let mut rescan = false;
        for e in events {
            match &e {
                Event::Died(id, _) | Event::Left(id, _) | Event::Removed(id) => {
                    self.view.remove(id);
                    rescan |= *id == self.root;
                }
                Event::Joined(id, inc) | Event::Alive(id, inc) | Event::Suspected(id, inc) => {
                    // A neighbour back in a new life has forgotten us.
                    if self
                        .neighbour_epochs
                        .get(id)
                        .is_some_and(|e| *e < inc.epoch)
                    {
                        self.view.remove(id);
                    }
                    if rank(id) > rank(&self.root) {
                        self.root = id.clone();
                    }
                }
            }
            if self.events.len() < MAX_EVENTS {
                self.events.push(e);
            } else {
                self.events_dropped += 1;
            }
        }
        if !self.swim.has_left() {
            let want = self.view.wanted(now);
            if want > 0 {
                let exclude: Vec<NodeId> = self.view.members().cloned().collect();
                for c in self.swim.sample(want + exclude.len()) {
                    if self.view.wanted(now) == 0 {
                        break;
                    }
                    if !exclude.contains(&c) {
                        self.view.request(now, &c, &mut self.view_out);
                    }
                }
            }
        }
        if rescan || self.swim.has_left() {
            self.root = self.top();
        }
        self.cast.set_root(self.root.clone(), &mut self.cast_out);
        self.sync_neighbours(now);
        self.mem_out.drain_into(out, ClusterMsg::Mem);
        self.view_out.drain_into(out, ClusterMsg::View);
        self.cast_out.drain_into(out, ClusterMsg::Cast);
    }

    /// Carries the active view's changes to the broadcast layer.
    fn sync_neighbours(&mut self, now: Instant) {
        let changes: Vec<Neighbour> = self.view.drain_changes().collect();
        for c in changes {
            self.neighbour_changes += 1;
            match c {
                Neighbour::Up(id) => {
                    let epoch = self
                        .swim
                        .status_of(&id)
                        .map_or(Epoch::UNKNOWN, |(inc, _)| inc.epoch);
                    self.neighbour_epochs.insert(id.clone(), epoch);
                    self.cast.neighbour_up(now, id, &mut self.cast_out);
                }
                Neighbour::Down(id) => {
                    self.neighbour_epochs.remove(&id);
                    self.cast.neighbour_down(&id, &mut self.cast_out);
                }
            }
        }
    }

    /// The top-ranked live member, by a scan of the membership.
    fn top(&self) -> NodeId {
        let mut best = self.me.clone();
        for (id, _, status, _) in self.swim.members() {
            if status.is_live() && rank(id) > rank(&best) {
                best = id.clone();
            }
        }
        best
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        earliest([
            self.swim.next_deadline(),
            self.cast.next_deadline(),
            self.view.pending_deadline(),
        ])
    }

    /// Invariants, for tests.
    pub fn check(&self) -> Result<(), String> {
        self.view.check(&self.me)?;
        self.cast.check()?;
        for n in self.cast.eager().chain(self.cast.lazy()) {
            if !self.view.contains(n) {
                return Err(format!("{n} is in the tree but not a neighbour"));
            }
        }
        Ok(())
    }
}
