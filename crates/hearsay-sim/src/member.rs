//! What the simulator needs of a member, so that the event loop, the
//! faults and the observer do not depend on the machine they run: here
//! [`Agent`], the machines an agent runs: [`ClusterNode`] (the core node
//! over SWIM broadcasting payloads) and, when the scenario writes to it,
//! the replicated map ([`Kv`]).

use crate::report::CastTotals;
use hearsay_core::cluster::{ClusterConfig, ClusterMsg, ClusterNode, MsgId};
use hearsay_core::crdt::kv::{Kv, KvMap, KvMsg};
use hearsay_core::id::{Epoch, NodeId};
use hearsay_core::machine::Machine;
use hearsay_core::membership::Status;
use hearsay_core::membership::{Event, Incarnation, MemberMsg, Meta, Seeds, Swim};
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
    /// Writes `key` to the replicated map; the write's delta, if it went.
    fn write(
        &mut self,
        now: Instant,
        key: String,
        value: String,
        out: &mut Outbox<Self::Msg>,
    ) -> Option<KvMap>;
    /// The replicated map, if this member runs one.
    fn map(&self) -> Option<&KvMap>;
    fn tick(&mut self, now: Instant, out: &mut Outbox<Self::Msg>);
    fn next_deadline(&self) -> Option<Instant>;
    fn drain_events(&mut self, into: &mut Vec<Event>);
    fn drain_delivered(&mut self, into: &mut Vec<MsgId>);
    fn swim(&self) -> &Swim;
    /// Membership traffic (not counted as broadcast messages).
    fn is_membership(msg: &Self::Msg) -> bool;
    /// Replicated-map traffic (counted on its own).
    fn is_kv(msg: &Self::Msg) -> bool;
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

/// What the simulator runs per member: the agent's machines.
pub(crate) struct Agent {
    pub node: ClusterNode,
    /// The replicated map, when the scenario writes to it; it follows the
    /// node's membership events, as the agent's does its table.
    pub kv: Option<Kv>,
    /// Events taken from the node for the map, kept for the observer.
    events: Vec<Event>,
    /// The seed a restarted member joins through, asked again as the
    /// agent does ([`Seeds`]): with backoff until it answers, and from the
    /// start if the member is still alone after it did (a lost join).
    seeds: Seeds<NodeId>,
}

/// How members start.
#[derive(Clone, Debug)]
pub(crate) struct AgentCfg {
    pub cluster: ClusterConfig,
    /// Run the replicated map.
    pub kv: bool,
    /// Sign membership claims, with a key per member name (kept across
    /// restarts, as an agent's data dir keeps it).
    pub sign: bool,
}

/// A message of either machine.
#[derive(Clone, Debug)]
pub(crate) enum AgentMsg {
    Node(ClusterMsg),
    Kv(KvMsg),
}

impl Agent {
    /// Asks the seeds that are due (again, if still alone after one
    /// answered).
    fn ask_seeds(&mut self, now: Instant, out: &mut Outbox<AgentMsg>) {
        self.seeds.alone(now, self.node.swim().live() <= 1);
        let due = self.seeds.due(now);
        if due.is_empty() {
            return;
        }
        let mut msgs = Outbox::default();
        self.node.join(now, &due, &mut msgs);
        Self::node_out(msgs, out);
    }

    /// Hands membership events to the map (keeping them for the
    /// observer), and runs the map's timers.
    fn after(&mut self, now: Instant, out: &mut Outbox<AgentMsg>) {
        let Some(kv) = &mut self.kv else {
            return;
        };
        for e in self.node.drain_events() {
            let (id, status) = match &e {
                Event::Joined(id, _) | Event::Alive(id, _) | Event::Updated(id, _) => {
                    (id, Some(Status::Alive))
                }
                Event::Suspected(id, _) => (id, Some(Status::Suspect)),
                Event::Died(id, _) => (id, Some(Status::Dead)),
                Event::Left(id, _) => (id, Some(Status::Left)),
                Event::Removed(id) => (id, None),
            };
            kv.follow_one(now, id, status);
            self.events.push(e);
        }
        if kv.next_deadline().is_some_and(|t| t <= now) {
            let mut msgs = Outbox::default();
            kv.tick(now, &mut msgs);
            for (to, m) in msgs {
                out.push(to, AgentMsg::Kv(m));
            }
        }
    }

    /// Node messages into `out`.
    fn node_out(msgs: Outbox<ClusterMsg>, out: &mut Outbox<AgentMsg>) {
        for (to, m) in msgs {
            out.push(to, AgentMsg::Node(m));
        }
    }
}

impl Member for Agent {
    type Msg = AgentMsg;
    type Cfg = AgentCfg;

    fn boot(cfg: &AgentCfg, me: NodeId, epoch: u64, meta: Meta, seed: u64) -> Result<Self, String> {
        let kv = cfg.kv.then(|| {
            // A restarted member starts empty: a replica id of its own
            // for this life.
            let replica = Kv::new_life(&me, Epoch(epoch));
            Kv::new(me.clone(), replica, Instant::ZERO)
        });
        let mut node = ClusterNode::new(cfg.cluster.clone(), me.clone(), Epoch(epoch), meta, seed)
            .map_err(|e| e.to_string())?;
        if cfg.sign {
            // A secret of the name's own: the same in every life.
            let h = me.hash64().to_le_bytes();
            let mut secret = [0u8; 32];
            for (i, b) in secret.iter_mut().enumerate() {
                *b = h[i % 8] ^ (i as u8);
            }
            node.set_identity(secret);
        }
        Ok(Agent {
            node,
            kv,
            events: Vec::new(),
            seeds: Seeds::new(Instant::ZERO, []),
        })
    }
    fn bootstrap(
        &mut self,
        now: Instant,
        members: Vec<(NodeId, Incarnation, Arc<Meta>)>,
        out: &mut Outbox<AgentMsg>,
    ) {
        let mut msgs = Outbox::default();
        self.node.bootstrap(now, members, &mut msgs);
        Self::node_out(msgs, out);
        // A warm start reports no joins: the map takes the whole table.
        if let Some(kv) = &mut self.kv {
            let table = self.node.swim().members().map(|(id, _, st, _)| (id, st));
            kv.follow(now, table);
        }
        self.after(now, out);
    }
    fn join(&mut self, now: Instant, seed: NodeId, out: &mut Outbox<AgentMsg>) {
        self.seeds = Seeds::new(now, [seed]);
        self.ask_seeds(now, out);
        self.after(now, out);
    }
    fn broadcast(
        &mut self,
        now: Instant,
        data: Arc<[u8]>,
        out: &mut Outbox<AgentMsg>,
    ) -> Option<MsgId> {
        let mut msgs = Outbox::default();
        let id = self.node.broadcast(now, data, &mut msgs).ok().map(|p| p.id);
        Self::node_out(msgs, out);
        self.after(now, out);
        id
    }
    fn handle(&mut self, now: Instant, from: &NodeId, msg: AgentMsg, out: &mut Outbox<AgentMsg>) {
        // The seed heard from: it has this member's join.
        self.seeds.answered(now, from);
        match msg {
            AgentMsg::Node(m) => {
                let mut msgs = Outbox::default();
                self.node.handle(now, from, m, &mut msgs);
                Self::node_out(msgs, out);
            }
            AgentMsg::Kv(m) => {
                if let Some(kv) = &mut self.kv {
                    let mut msgs = Outbox::default();
                    kv.handle(now, now.as_micros() / 1000, from, m, &mut msgs);
                    for (to, m) in msgs {
                        out.push(to, AgentMsg::Kv(m));
                    }
                }
            }
        }
        self.after(now, out);
    }
    fn write(
        &mut self,
        now: Instant,
        key: String,
        value: String,
        out: &mut Outbox<AgentMsg>,
    ) -> Option<KvMap> {
        let kv = self.kv.as_mut()?;
        let mut msgs = Outbox::default();
        // The simulated clock as the wall clock, in ms.
        let (delta, _) = kv
            .write(now, now.as_micros() / 1000, key, Some(value), &mut msgs)
            .ok()?;
        for (to, m) in msgs {
            out.push(to, AgentMsg::Kv(m));
        }
        Some(delta)
    }
    fn map(&self) -> Option<&KvMap> {
        self.kv.as_ref().map(Kv::state)
    }
    fn tick(&mut self, now: Instant, out: &mut Outbox<AgentMsg>) {
        let mut msgs = Outbox::default();
        self.node.tick(now, &mut msgs);
        Self::node_out(msgs, out);
        self.ask_seeds(now, out);
        self.after(now, out);
    }
    fn next_deadline(&self) -> Option<Instant> {
        hearsay_core::timers::earliest([
            self.node.next_deadline(),
            self.kv.as_ref().and_then(Kv::next_deadline),
            self.seeds.next_deadline(),
        ])
    }
    fn drain_events(&mut self, into: &mut Vec<Event>) {
        into.append(&mut self.events);
        into.extend(self.node.drain_events());
    }
    fn drain_delivered(&mut self, into: &mut Vec<MsgId>) {
        into.extend(self.node.drain_delivered().map(|p| p.id));
    }
    fn swim(&self) -> &Swim {
        self.node.swim()
    }
    fn is_membership(msg: &AgentMsg) -> bool {
        matches!(msg, AgentMsg::Node(env) if matches!(env.msg, Msg::Mem(_)))
    }
    fn is_kv(msg: &AgentMsg) -> bool {
        matches!(msg, AgentMsg::Kv(_))
    }
    fn is_view(msg: &AgentMsg) -> bool {
        matches!(
            msg,
            AgentMsg::Node(env) if matches!(
                env.msg,
                Msg::Mem(MemberMsg::Gossip { .. } | MemberMsg::Digest { .. } | MemberMsg::State { .. })
            )
        )
    }
    fn encode(codec: &Codec, sender: &str, msgs: Vec<AgentMsg>) -> Vec<Vec<u8>> {
        let head = hearsay_wire::codec::Datagram::from(sender);
        let (mut node, mut kv) = (Vec::new(), Vec::new());
        for m in msgs {
            match m {
                AgentMsg::Node(m) => node.push(m),
                AgentMsg::Kv(m) => kv.push(m),
            }
        }
        let mut out = Vec::new();
        if !node.is_empty() {
            out.extend(codec.encode(&head, node));
        }
        if !kv.is_empty() {
            out.extend(codec.encode_kv(&head, kv));
        }
        out
    }
    fn decode(codec: &Codec, bytes: &[u8]) -> Option<Vec<AgentMsg>> {
        let mut d = codec.decode_stream(bytes).ok()?;
        let mut msgs: Vec<AgentMsg> = d.messages().map(AgentMsg::Node).collect();
        msgs.extend(d.kv.drain(..).map(AgentMsg::Kv));
        Some(msgs)
    }
    fn add_totals(&self, t: &mut CastTotals) {
        let s = self.node.stats();
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
    /// Replicated-map messages, and their datagrams' bytes.
    pub kv_msgs: u64,
    pub kv_bytes: u64,
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
        self.kv_msgs += o.kv_msgs;
        self.kv_bytes += o.kv_bytes;
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
            } else if M::is_kv(&msg) {
                t.kv_msgs += 1;
            } else if late {
                t.late_cast_msgs += 1;
            }
            match by.iter_mut().find(|(t, _)| *t == to) {
                Some((_, v)) => v.push(msg),
                None => by.push((to, vec![msg])),
            }
        }
        for (to, msgs) in by {
            // The map's messages go in datagrams of their own, as the
            // agent sends them.
            let (kv, rest): (Vec<_>, Vec<_>) = msgs.into_iter().partition(M::is_kv);
            for (is_kv, msgs) in [(false, rest), (true, kv)] {
                if msgs.is_empty() {
                    continue;
                }
                for d in M::encode(&self.codec, &self.name, msgs) {
                    self.traffic.bytes += d.len() as u64;
                    if is_kv {
                        self.traffic.kv_bytes += d.len() as u64;
                    }
                    self.traffic.datagrams += 1;
                    out.push(to.clone(), d.into());
                }
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
