//! What the simulator needs of a member, so that the event loop, the
//! faults and the observer do not depend on the machine they run: here
//! [`ClusterNode`], the core node over SWIM broadcasting payloads.

use crate::report::CastTotals;
use hearsay_core::cluster::{ClusterConfig, ClusterMsg, ClusterNode, MsgId};
use hearsay_core::id::{Epoch, NodeId};
use hearsay_core::membership::{Event, Incarnation, Meta, Swim};
use hearsay_core::outbox::Outbox;
use hearsay_core::time::Instant;
use hearsay_core::wire::Msg;
use hearsay_wire::codec::{Codec, Datagram};
use std::sync::Arc;

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
    /// Messages from `sender` to one member, as the datagrams the agent
    /// would send.
    fn encode(codec: &Codec, sender: &str, msgs: Vec<Self::Msg>) -> Vec<Vec<u8>>;
    /// A datagram's messages, or None if the codec refuses it.
    fn decode(codec: &Codec, bytes: &[u8]) -> Option<Vec<Self::Msg>>;
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
        ClusterNode::new(cfg.clone(), me, Epoch(epoch), meta, seed).map_err(|e| e.to_string())
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
    fn is_membership(env: &ClusterMsg) -> bool {
        matches!(env.msg, Msg::Mem(_))
    }
    fn encode(codec: &Codec, sender: &str, msgs: Vec<ClusterMsg>) -> Vec<Vec<u8>> {
        codec.encode(&Datagram::from(sender), msgs)
    }
    fn decode(codec: &Codec, bytes: &[u8]) -> Option<Vec<ClusterMsg>> {
        let mut d = codec.decode_stream(bytes).ok()?;
        Some(d.messages().collect())
    }
    fn add_totals(&self, t: &mut CastTotals) {
        let s = self.stats();
        t.delivered += s.learned;
        t.duplicates += s.duplicates;
        t.data_sent += s.data_sent;
        t.acks_sent += s.acks_sent + s.acks_relayed;
        t.retransmits += s.retransmits;
        t.announcements += s.announcements;
        t.grafts_sent += s.grafts;
        t.restarts_seen += s.restarts;
        t.forgotten += s.forgotten;
        t.dropped += s.deliveries_dropped + s.events_dropped;
    }
}
