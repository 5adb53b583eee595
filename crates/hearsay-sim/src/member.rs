//! What the simulator needs of a member, so that the event loop, the
//! faults and the observer do not depend on the machine they run: here
//! [`ClusterNode`], the core node over SWIM broadcasting payloads.

use crate::report::CastTotals;
use hearsay_core::cluster::{ClusterConfig, ClusterMsg, ClusterNode, MsgId};
use hearsay_core::id::{Epoch, NodeId};
use hearsay_core::machine::Machine;
use hearsay_core::membership::{Event, Incarnation, MemberMsg, Meta, Swim};
use hearsay_core::outbox::Outbox;
use hearsay_core::time::Instant;
use hearsay_core::wire::Msg;
use hearsay_wire::codec::Codec;
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
    /// Membership messages about the view (joins, syncs, gossip), not the
    /// failure detector's probes and their answers.
    fn is_view(msg: &Self::Msg) -> bool;
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
    fn is_view(env: &ClusterMsg) -> bool {
        matches!(
            env.msg,
            Msg::Mem(MemberMsg::Gossip { .. } | MemberMsg::Digest { .. } | MemberMsg::State { .. })
        )
    }
    fn encode(codec: &Codec, sender: &str, msgs: Vec<ClusterMsg>) -> Vec<Vec<u8>> {
        codec.encode(&hearsay_wire::codec::Datagram::from(sender), msgs)
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

/// What a member put on the wire.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Traffic {
    /// Messages before packing, of them membership messages, and the
    /// broadcast-layer ones after the first tenth of the run.
    pub msgs: u64,
    pub mem_msgs: u64,
    /// Membership messages about the view, of those.
    pub view_msgs: u64,
    pub late_cast_msgs: u64,
    pub bytes: u64,
    pub datagrams: u64,
    /// Datagrams its codec refused (none, unless the wire is broken).
    pub refused: u64,
}

impl Traffic {
    pub fn add(&mut self, o: &Traffic) {
        self.msgs += o.msgs;
        self.mem_msgs += o.mem_msgs;
        self.view_msgs += o.view_msgs;
        self.late_cast_msgs += o.late_cast_msgs;
        self.bytes += o.bytes;
        self.datagrams += o.datagrams;
        self.refused += o.refused;
    }
}

/// A member as the simulator's network sees it: datagrams in and out,
/// through the agent's codec, its messages packed per destination after
/// each input in the order first sent to, as the agent does.
pub(crate) struct Packed<M: Member> {
    pub m: M,
    name: String,
    codec: Arc<Codec>,
    /// Broadcast-layer messages count as `late` from here on.
    late_from: Instant,
    pub traffic: Traffic,
}

impl<M: Member> Packed<M> {
    pub fn new(m: M, name: &NodeId, codec: Arc<Codec>, late_from: Instant) -> Self {
        Packed {
            m,
            name: name.as_str().to_string(),
            codec,
            late_from,
            traffic: Traffic::default(),
        }
    }

    /// An input from the application (bootstrap, join, broadcast).
    pub fn act<R>(
        &mut self,
        now: Instant,
        out: &mut Outbox<Datagram>,
        f: impl FnOnce(&mut M, &mut Outbox<M::Msg>) -> R,
    ) -> R {
        let mut msgs = Outbox::default();
        let r = f(&mut self.m, &mut msgs);
        self.pack(now, msgs, out);
        r
    }

    fn pack(&mut self, now: Instant, msgs: Outbox<M::Msg>, out: &mut Outbox<Datagram>) {
        let late = now >= self.late_from;
        let mut by: Vec<(NodeId, Vec<M::Msg>)> = Vec::new();
        for (to, msg) in msgs {
            let t = &mut self.traffic;
            t.msgs += 1;
            if M::is_membership(&msg) {
                t.mem_msgs += 1;
                t.view_msgs += u64::from(M::is_view(&msg));
            } else if late {
                t.late_cast_msgs += 1;
            }
            match by.iter_mut().find(|(t, _)| *t == to) {
                Some((_, v)) => v.push(msg),
                None => by.push((to, vec![msg])),
            }
        }
        for (to, msgs) in by {
            for d in M::encode(&self.codec, &self.name, msgs) {
                self.traffic.bytes += d.len() as u64;
                self.traffic.datagrams += 1;
                out.push(to.clone(), d.into());
            }
        }
    }
}

/// One datagram's bytes, shared by its copies on the wire.
pub(crate) type Datagram = Arc<[u8]>;

impl<M: Member> Machine for Packed<M> {
    type Msg = Datagram;
    fn receive(&mut self, now: Instant, from: &NodeId, d: Datagram, out: &mut Outbox<Datagram>) {
        let Some(msgs) = M::decode(&self.codec, &d) else {
            self.traffic.refused += 1;
            return;
        };
        let mut replies = Outbox::default();
        for m in msgs {
            self.m.handle(now, from, m, &mut replies);
        }
        self.pack(now, replies, out);
    }
    fn tick(&mut self, now: Instant, out: &mut Outbox<Datagram>) {
        let mut msgs = Outbox::default();
        self.m.tick(now, &mut msgs);
        self.pack(now, msgs, out);
    }
    fn next_deadline(&self) -> Option<Instant> {
        self.m.next_deadline()
    }
}
