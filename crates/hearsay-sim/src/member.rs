//! What the simulator runs as a member: the cluster stack
//! ([`ClusterNode`]: SWIM, an active view, the path-vector broadcast) or
//! the core [`Node`] over SWIM with one of the seven dissemination
//! strategies (`--strategy`). One trait, so the event loop, the faults and
//! the observer are the same for both.

use crate::report::CastTotals;
use hearsay_core::cluster::{ClusterConfig, ClusterMsg, ClusterNode, MsgId, Payload};
use hearsay_core::dissemination::Config as DisConfig;
use hearsay_core::id::{Epoch, NodeId};
use hearsay_core::membership::{Event, Incarnation, Meta, Swim, SwimConfig};
use hearsay_core::node::{Input, Node};
use hearsay_core::outbox::Outbox;
use hearsay_core::time::Instant;
use hearsay_core::wire::{Envelope, Msg};
use std::sync::Arc;

/// Deliveries and events a member keeps between two flushes, at most.
const MAX_KEPT: usize = 65_536;

pub(crate) trait Member: Sized {
    type Msg: Clone + std::fmt::Debug;
    type Cfg: Clone;

    fn boot(cfg: &Self::Cfg, me: NodeId, epoch: u64, meta: Meta, seed: u64)
    -> Result<Self, String>;
    /// A warm start: everyone in `members` alive and known.
    fn bootstrap(
        &mut self,
        now: Instant,
        members: Vec<(NodeId, Incarnation, Arc<Meta>)>,
        out: &mut Outbox<Self::Msg>,
    );
    fn join(&mut self, now: Instant, seed: NodeId, out: &mut Outbox<Self::Msg>);
    /// Broadcasts a payload; its id, if it went out.
    fn broadcast(
        &mut self,
        now: Instant,
        data: Arc<[u8]>,
        out: &mut Outbox<Self::Msg>,
    ) -> Option<MsgId>;
    fn handle(&mut self, now: Instant, from: &NodeId, msg: Self::Msg, out: &mut Outbox<Self::Msg>);
    fn tick(&mut self, now: Instant, out: &mut Outbox<Self::Msg>);
    fn next_deadline(&self) -> Option<Instant>;
    fn drain_events(&mut self, into: &mut Vec<Event>);
    fn drain_delivered(&mut self, into: &mut Vec<MsgId>);
    fn swim(&self) -> &Swim;
    /// Membership traffic (not counted as broadcast messages).
    fn is_membership(msg: &Self::Msg) -> bool;
    /// Bytes the message takes on the wire.
    fn size(msg: &Self::Msg) -> usize;
    fn add_totals(&self, t: &mut CastTotals);
}

impl Member for ClusterNode {
    type Msg = ClusterMsg;
    type Cfg = ClusterConfig;

    fn boot(
        cfg: &ClusterConfig,
        me: NodeId,
        epoch: u64,
        meta: Meta,
        seed: u64,
    ) -> Result<Self, String> {
        ClusterNode::new(cfg.clone(), me, Epoch(epoch), meta, seed)
    }
    fn bootstrap(
        &mut self,
        now: Instant,
        members: Vec<(NodeId, Incarnation, Arc<Meta>)>,
        out: &mut Outbox<ClusterMsg>,
    ) {
        ClusterNode::bootstrap(self, now, members, out);
    }
    fn join(&mut self, now: Instant, seed: NodeId, out: &mut Outbox<ClusterMsg>) {
        ClusterNode::join(self, now, &[seed], out);
    }
    fn broadcast(
        &mut self,
        now: Instant,
        data: Arc<[u8]>,
        out: &mut Outbox<ClusterMsg>,
    ) -> Option<MsgId> {
        ClusterNode::broadcast(self, now, data, out).ok()
    }
    fn handle(
        &mut self,
        now: Instant,
        from: &NodeId,
        msg: ClusterMsg,
        out: &mut Outbox<ClusterMsg>,
    ) {
        ClusterNode::handle(self, now, from, msg, out);
    }
    fn tick(&mut self, now: Instant, out: &mut Outbox<ClusterMsg>) {
        ClusterNode::tick(self, now, out);
    }
    fn next_deadline(&self) -> Option<Instant> {
        ClusterNode::next_deadline(self)
    }
    fn drain_events(&mut self, into: &mut Vec<Event>) {
        into.extend(ClusterNode::drain_events(self));
    }
    fn drain_delivered(&mut self, into: &mut Vec<MsgId>) {
        into.extend(ClusterNode::drain_delivered(self).map(|p| p.id));
    }
    fn swim(&self) -> &Swim {
        ClusterNode::swim(self)
    }
    fn is_membership(msg: &ClusterMsg) -> bool {
        matches!(msg, ClusterMsg::Mem(_))
    }
    fn size(msg: &ClusterMsg) -> usize {
        msg.size()
    }
    fn add_totals(&self, t: &mut CastTotals) {
        let c = self.cast_stats();
        t.delivered += c.delivered;
        t.duplicates += c.duplicates;
        t.gossip_sent += c.gossip_sent;
        t.ihave_sent += c.ihave_sent;
        t.grafts_sent += c.grafts_sent;
        t.tree_sent += c.tree_sent;
        t.neighbour_changes += c.neighbour_changes;
        match self.tree_path() {
            Some(p) => {
                t.depth_max = t.depth_max.max(p.0.len() as u64 - 1);
                t.depth_sum += p.0.len() as u64 - 1;
            }
            None => t.no_path += 1,
        }
        t.repaired += c.repaired;
        t.dropped += c.deliveries_dropped + c.ids_dropped;
    }
}

/// The core node over SWIM, broadcasting payloads with one of the seven
/// strategies.
pub(crate) struct Unified {
    node: Node<Payload, Swim>,
    me: NodeId,
    epoch: Epoch,
    /// Payloads this life broadcast.
    seq: u64,
}

#[derive(Clone, Debug)]
pub(crate) struct UnifiedConfig {
    pub swim: SwimConfig,
    pub dissemination: DisConfig,
}

impl Member for Unified {
    type Msg = Envelope<Payload>;
    type Cfg = UnifiedConfig;

    fn boot(
        cfg: &UnifiedConfig,
        me: NodeId,
        epoch: u64,
        meta: Meta,
        seed: u64,
    ) -> Result<Self, String> {
        let epoch = Epoch(epoch);
        let swim = Swim::new(cfg.swim.clone(), me.clone(), epoch, meta, seed)?;
        let mut node =
            Node::with_membership(cfg.dissemination.clone(), me.clone(), epoch, [], swim, seed)
                .map_err(|e| e.to_string())?;
        node.keep_delivered(MAX_KEPT);
        Ok(Unified {
            node,
            me,
            epoch,
            seq: 0,
        })
    }
    fn bootstrap(
        &mut self,
        now: Instant,
        members: Vec<(NodeId, Incarnation, Arc<Meta>)>,
        out: &mut Outbox<Self::Msg>,
    ) {
        self.node.bootstrap(now, members);
        self.node.handle(now, Input::Tick, out);
    }
    fn join(&mut self, now: Instant, seed: NodeId, out: &mut Outbox<Self::Msg>) {
        self.node.handle(now, Input::Join(vec![seed]), out);
    }
    fn broadcast(
        &mut self,
        now: Instant,
        data: Arc<[u8]>,
        out: &mut Outbox<Self::Msg>,
    ) -> Option<MsgId> {
        self.seq += 1;
        let id = MsgId(self.me.clone(), self.epoch, self.seq);
        let p = Payload {
            id: id.clone(),
            data,
        };
        self.node.handle(now, Input::Broadcast(p), out);
        Some(id)
    }
    fn handle(&mut self, now: Instant, from: &NodeId, env: Self::Msg, out: &mut Outbox<Self::Msg>) {
        let from = from.clone();
        self.node.handle(now, Input::Receive { from, env }, out);
    }
    fn tick(&mut self, now: Instant, out: &mut Outbox<Self::Msg>) {
        self.node.handle(now, Input::Tick, out);
    }
    fn next_deadline(&self) -> Option<Instant> {
        self.node.next_deadline()
    }
    fn drain_events(&mut self, into: &mut Vec<Event>) {
        into.extend(self.node.drain_events());
    }
    fn drain_delivered(&mut self, into: &mut Vec<MsgId>) {
        into.extend(self.node.drain_delivered().map(|p| p.id));
    }
    fn swim(&self) -> &Swim {
        self.node.membership()
    }
    fn is_membership(env: &Self::Msg) -> bool {
        matches!(env.msg, Msg::Mem(_))
    }
    /// The envelope in MessagePack (the agent's encoding, without its
    /// datagram header).
    fn size(env: &Self::Msg) -> usize {
        rmp_serde::to_vec(env).map_or(0, |v| v.len())
    }
    fn add_totals(&self, t: &mut CastTotals) {
        let s = self.node.stats();
        t.delivered += s.learned;
        t.duplicates += s.duplicates;
        t.gossip_sent += s.data_sent;
        t.grafts_sent += s.grafts;
        t.repaired += s.retransmits;
        t.neighbour_changes += s.restarts;
        t.dropped += s.deliveries_dropped + s.events_dropped;
    }
}
