//! A member of a changing cluster that broadcasts bytes: the core
//! [`Node`] over [`Swim`], spreading [`Payload`]s with one of the seven
//! dissemination strategies (plumtree unless told otherwise). This is the
//! machine the agent and `hearsay sim` run; it adds to the node only what
//! an application that sends bytes needs: payload ids, a size limit, and a
//! retention window that bounds what a long-running member keeps.
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
//! # Ok::<(), hearsay_core::cluster::ClusterError>(())
//! ```

mod order;
mod payload;

pub use order::EventOrder;
pub use payload::{
    EventHead, MAX_EVENT_NAME, MAX_PAYLOAD, MsgId, Payload, bytes, check_event_name,
};

/// Payload bytes a member may hold unacknowledged by its neighbours before
/// [`ClusterNode::broadcast`] refuses more ([`ClusterError::Busy`]). Links
/// to neighbours that have acknowledged nothing for 10 s do not count:
/// each holds at most 8 MiB of its own, so one neighbour that takes no
/// data cannot stop every broadcast.
pub const MAX_UNACKED: usize = 32 * 1024 * 1024;

use crate::dissemination::{self, Preset, Retention, StrategyKind};
use crate::id::{Epoch, NodeId};
use crate::membership::{Event, Incarnation, Meta, Swim, SwimConfig, SwimConfigError};
use crate::node::{Input, Node, Stats};
use crate::outbox::Outbox;
use crate::time::Instant;
use crate::wire::Envelope;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Everything one cluster member sends another: the node's envelope.
pub type ClusterMsg = Envelope<Payload>;

/// What a member keeps of the payloads it has seen, for members that come
/// and for repairs: two minutes, 8,192 and 16 MiB at most. A payload
/// resent ([`ClusterNode::resend`]) within `ttl` of its first sending is
/// still known to the members that had it.
pub const RETENTION: Retention = Retention {
    ttl: Duration::from_secs(120),
    max_values: 8192,
    max_bytes: 16 * 1024 * 1024,
};

/// Delivered payloads and membership events kept for the application, at
/// most (past that the oldest are dropped and counted).
const MAX_KEPT: usize = 65_536;

#[derive(Clone, Debug, PartialEq)]
pub struct ClusterConfig {
    pub swim: SwimConfig,
    pub dissemination: dissemination::Config,
}

impl ClusterConfig {
    /// The defaults for a cluster: plumtree with the latency preset's
    /// timing (no batching: a payload goes out at once), payloads kept two
    /// minutes (8,192 and 16 MiB at most) for members that come and for
    /// repairs.
    pub fn dissemination(strategy: StrategyKind, preset: Preset) -> dissemination::Config {
        let mut d = dissemination::Config::preset(preset)
            .with_strategy(strategy)
            .for_cluster();
        d.retention = Some(RETENTION);
        d
    }

    pub fn validate(&self) -> Result<(), ClusterError> {
        self.swim.validate().map_err(ClusterError::Membership)?;
        self.dissemination
            .validate()
            .map_err(ClusterError::Dissemination)
    }
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            swim: SwimConfig::default(),
            dissemination: ClusterConfig::dissemination(StrategyKind::Plumtree, Preset::Latency),
        }
    }
}

/// Why a cluster call was refused; nothing changed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClusterError {
    /// A bad membership setting: no member was made.
    Membership(SwimConfigError),
    /// A bad dissemination setting: no member was made.
    Dissemination(dissemination::ConfigError),
    /// A payload over [`MAX_PAYLOAD`]: nothing was sent.
    TooLarge { len: usize },
    /// Neighbours have not yet acknowledged [`MAX_UNACKED`] bytes of
    /// payloads: nothing was sent; try again shortly (back-pressure, so a
    /// sender faster than its neighbours cannot grow without bound).
    Busy { unacked: usize },
    /// A user event name that breaks [`check_event_name`].
    EventName(String),
    /// [`ClusterNode::resend`] of a payload not sent by an earlier life of
    /// this member.
    NotEarlierLife(MsgId),
}

impl fmt::Display for ClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClusterError::Membership(e) => e.fmt(f),
            ClusterError::Dissemination(e) => e.fmt(f),
            ClusterError::TooLarge { len } => {
                write!(f, "a payload has at most {MAX_PAYLOAD} bytes, not {len}")
            }
            ClusterError::Busy { unacked } => write!(
                f,
                "busy: {unacked} bytes of payloads not yet acknowledged by neighbours (at most {MAX_UNACKED}); try again shortly"
            ),
            ClusterError::EventName(e) => f.write_str(e),
            ClusterError::NotEarlierLife(MsgId(origin, epoch, seq)) => write!(
                f,
                "payload {seq} of {origin} in life {epoch} was not sent by an earlier life of this member"
            ),
        }
    }
}

impl std::error::Error for ClusterError {}

pub struct ClusterNode {
    node: Node<Payload, Swim>,
    /// Payloads this life broadcast.
    seq: u64,
    /// User events this life sent.
    events_sent: u64,
    /// The Lamport clock of user events: past every event sent or
    /// delivered here.
    lamport: u64,
    /// Payloads of earlier lives of this member, sent again
    /// ([`ClusterNode::resend`]) or said to be
    /// ([`ClusterNode::delivered_before`]): the life that sent them
    /// delivered them here (and ran the handlers), so this one does not.
    earlier: std::collections::BTreeSet<MsgId>,
}

impl fmt::Debug for ClusterNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterNode")
            .field("me", self.me())
            .field("epoch", &self.node.epoch())
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
    ) -> Result<Self, ClusterError> {
        cfg.validate()?;
        let swim =
            Swim::new(cfg.swim, me.clone(), epoch, meta, seed).map_err(ClusterError::Membership)?;
        let mut node = Node::with_membership(cfg.dissemination, me, epoch, [], swim, seed)
            .map_err(ClusterError::Dissemination)?;
        node.keep_delivered(MAX_KEPT);
        Ok(ClusterNode {
            node,
            seq: 0,
            events_sent: 0,
            lamport: 0,
            earlier: Default::default(),
        })
    }

    pub fn me(&self) -> &NodeId {
        self.node.view().me()
    }

    pub fn swim(&self) -> &Swim {
        self.node.membership()
    }

    /// The node underneath (its view, its strategy's neighbours).
    pub fn node(&self) -> &Node<Payload, Swim> {
        &self.node
    }

    pub fn stats(&self) -> Stats {
        self.node.stats()
    }

    /// The members this one exchanges payloads with directly.
    pub fn neighbours(&self) -> Vec<NodeId> {
        self.node.neighbours()
    }

    pub fn drain_events(&mut self) -> impl Iterator<Item = Event> + '_ {
        self.node.drain_events()
    }

    /// Payloads delivered here (this member's own included), in order.
    /// User events among them move the Lamport clock.
    pub fn drain_delivered(&mut self) -> impl Iterator<Item = Payload> + '_ {
        let lamport = &mut self.lamport;
        let earlier = &mut self.earlier;
        self.node
            .drain_delivered()
            .inspect(move |p| {
                if let Some(e) = &p.event {
                    *lamport = (*lamport).max(e.lamport);
                }
            })
            .filter(move |p| !earlier.remove(&p.id))
    }

    /// Payloads an earlier life of this member sent (kept in its data
    /// dir, to go again): that life delivered them here, handlers and
    /// all, so they are not delivered again, whether they go again or a
    /// peer brings them back first. Ids of other members or of this life
    /// are ignored.
    pub fn delivered_before(&mut self, ids: impl IntoIterator<Item = MsgId>) {
        let (me, epoch) = (self.me().clone(), self.node.epoch());
        self.earlier
            .extend(ids.into_iter().filter(|id| id.0 == me && id.1 < epoch));
    }

    /// The Lamport time of the next user event sent here, less one.
    pub fn lamport(&self) -> u64 {
        self.lamport
    }

    /// A warm start with a known membership (see [`Swim::bootstrap`]).
    pub fn bootstrap(
        &mut self,
        now: Instant,
        members: impl IntoIterator<Item = (NodeId, Incarnation, Arc<Meta>)>,
        out: &mut Outbox<ClusterMsg>,
    ) {
        self.node.bootstrap(now, members);
        self.node.handle(now, Input::Tick, out);
    }

    pub fn join(&mut self, now: Instant, seeds: &[NodeId], out: &mut Outbox<ClusterMsg>) {
        self.node.handle(now, Input::Join(seeds.to_vec()), out);
    }

    /// Signs this member's claims about itself (see
    /// [`Swim::set_identity`]); before joining.
    pub fn set_identity(&mut self, secret: [u8; 32]) {
        self.node.membership_mut().set_identity(secret);
    }

    /// New tags for this member (see [`Swim::set_tags`]).
    pub fn set_tags(
        &mut self,
        now: Instant,
        tags: std::collections::BTreeMap<Box<str>, Box<str>>,
    ) -> Result<(), crate::membership::TagsError> {
        self.node.membership_mut().set_tags(now, tags)
    }

    /// Leaves gracefully: the leave is gossiped.
    pub fn leave(&mut self, now: Instant, out: &mut Outbox<ClusterMsg>) {
        self.node.handle(now, Input::Leave, out);
    }

    /// Serf's `force-leave`: records member `id`, which failed, as left
    /// here and gossips that ([`Swim::force_leave`]).
    pub fn force_leave(
        &mut self,
        now: Instant,
        id: &NodeId,
        out: &mut Outbox<ClusterMsg>,
    ) -> Result<(), crate::membership::ForceLeaveError> {
        self.node.membership().can_force_leave(id)?;
        self.node.handle(now, Input::ForceLeave(id.clone()), out);
        Ok(())
    }

    /// Broadcasts `data` to every member; it is delivered here too.
    /// Returns the payload sent (an application that keeps it can send it
    /// again after a restart: [`ClusterNode::resend`]).
    pub fn broadcast(
        &mut self,
        now: Instant,
        data: Arc<[u8]>,
        out: &mut Outbox<ClusterMsg>,
    ) -> Result<Payload, ClusterError> {
        self.send(now, data, None, out)
    }

    /// Sends again, under its first id, a payload an earlier life of this
    /// member sent (kept on disk across a crash, say), for when that life
    /// may have died before any other member held it. Members that hold
    /// it already drop it as a duplicate, as long as they still remember
    /// that life (the retention window); one of another origin, or of
    /// this life, is refused.
    pub fn resend(
        &mut self,
        now: Instant,
        p: Payload,
        out: &mut Outbox<ClusterMsg>,
    ) -> Result<(), ClusterError> {
        if p.id.0 != *self.me() || p.id.1 >= self.node.epoch() {
            return Err(ClusterError::NotEarlierLife(p.id));
        }
        if p.data.len() > MAX_PAYLOAD {
            return Err(ClusterError::TooLarge { len: p.data.len() });
        }
        if let Some(e) = &p.event {
            self.lamport = self.lamport.max(e.lamport);
        }
        self.earlier.insert(p.id.clone());
        self.node.handle(now, Input::Broadcast(p), out);
        Ok(())
    }

    /// Sends user event `name` with `data` to every member (Serf's user
    /// event): delivered once everywhere, this member included, as a
    /// payload whose [`Payload::event`] says so; returns its id and
    /// Lamport time.
    /// `coalesce`: handlers may run once for a burst of events of this
    /// name that all ask for it ([`EventHead::coalesce`]).
    pub fn event(
        &mut self,
        now: Instant,
        name: &str,
        data: Arc<[u8]>,
        coalesce: bool,
        out: &mut Outbox<ClusterMsg>,
    ) -> Result<(Payload, u64), ClusterError> {
        check_event_name(name).map_err(ClusterError::EventName)?;
        // A peer's clock is peer input: at the top it stays there.
        let head = EventHead {
            name: name.into(),
            lamport: self.lamport.saturating_add(1),
            count: self.events_sent + 1,
            coalesce,
        };
        let lamport = head.lamport;
        let p = self.send(now, data, Some(head), out)?;
        self.lamport = lamport;
        self.events_sent += 1;
        Ok((p, lamport))
    }

    fn send(
        &mut self,
        now: Instant,
        data: Arc<[u8]>,
        event: Option<EventHead>,
        out: &mut Outbox<ClusterMsg>,
    ) -> Result<Payload, ClusterError> {
        if data.len() > MAX_PAYLOAD {
            return Err(ClusterError::TooLarge { len: data.len() });
        }
        let unacked = self.node.backlog_bytes();
        if unacked > MAX_UNACKED {
            return Err(ClusterError::Busy { unacked });
        }
        self.seq += 1;
        let p = Payload {
            id: MsgId(self.me().clone(), self.node.epoch(), self.seq),
            data,
            event,
        };
        self.node.handle(now, Input::Broadcast(p.clone()), out);
        Ok(p)
    }

    /// One message from `from`. Payloads over the size limit are dropped.
    pub fn handle(
        &mut self,
        now: Instant,
        from: &NodeId,
        env: ClusterMsg,
        out: &mut Outbox<ClusterMsg>,
    ) {
        let from = from.clone();
        self.node.handle(now, Input::Receive { from, env }, out);
    }

    pub fn tick(&mut self, now: Instant, out: &mut Outbox<ClusterMsg>) {
        self.node.handle(now, Input::Tick, out);
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.node.next_deadline()
    }
}

impl crate::machine::Machine for ClusterNode {
    type Msg = ClusterMsg;
    fn receive(
        &mut self,
        now: Instant,
        from: &NodeId,
        msg: ClusterMsg,
        out: &mut Outbox<ClusterMsg>,
    ) {
        self.handle(now, from, msg, out);
    }
    fn tick(&mut self, now: Instant, out: &mut Outbox<ClusterMsg>) {
        ClusterNode::tick(self, now, out);
    }
    fn next_deadline(&self) -> Option<Instant> {
        ClusterNode::next_deadline(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Member `n` in its life `epoch`.
    fn member(n: &str, epoch: u64) -> ClusterNode {
        ClusterNode::new(
            ClusterConfig::default(),
            NodeId::new(n),
            Epoch(epoch),
            Meta::default(),
            1,
        )
        .unwrap()
    }

    /// Two members that know each other, and a way to carry messages.
    fn pair() -> (ClusterNode, ClusterNode) {
        let (mut a, mut b) = (member("a", 1), member("b", 1));
        let inc = Incarnation::new(Epoch(1), 0);
        let meta = Arc::new(Meta::default());
        let mut out = Outbox::default();
        a.bootstrap(
            Instant::ZERO,
            [(NodeId::new("b"), inc, meta.clone())],
            &mut out,
        );
        b.bootstrap(Instant::ZERO, [(NodeId::new("a"), inc, meta)], &mut out);
        (a, b)
    }

    fn carry(from: &NodeId, to: &mut ClusterNode, out: &mut Outbox<ClusterMsg>, now: Instant) {
        for (t, m) in out.drain().collect::<Vec<_>>() {
            if t == *to.me() {
                to.handle(now, from, m, &mut Outbox::default());
            }
        }
    }

    #[test]
    fn a_payload_of_an_earlier_life_goes_again_under_its_id_and_is_not_delivered_twice() {
        let (mut a, mut b) = pair();
        let now = Instant::ZERO;
        let mut out = Outbox::default();
        let held = a.broadcast(now, b"held"[..].into(), &mut out).unwrap();
        carry(&NodeId::new("a"), &mut b, &mut out, now);
        let lost = a.broadcast(now, b"lost"[..].into(), &mut out).unwrap();
        out.drain().for_each(drop); // a dies before anyone has `lost`
        assert_eq!(b.drain_delivered().count(), 1);
        // a's next life, with both kept
        let mut a2 = member("a", 2);
        a2.bootstrap(
            now,
            [(
                NodeId::new("b"),
                Incarnation::new(Epoch(1), 0),
                Arc::new(Meta::default()),
            )],
            &mut out,
        );
        for p in [held.clone(), lost.clone()] {
            a2.resend(now, p, &mut out).unwrap();
        }
        carry(&NodeId::new("a"), &mut b, &mut out, now);
        let got: Vec<MsgId> = b.drain_delivered().map(|p| p.id).collect();
        assert_eq!(got, vec![lost.id], "`held` was not delivered twice");
        // Nor at a: its first life delivered both (and ran the handlers).
        assert_eq!(a2.drain_delivered().count(), 0);
        // only what an earlier life of this member sent
        let mine = a2.broadcast(now, b"now"[..].into(), &mut out).unwrap();
        let theirs = b.broadcast(now, b"b's"[..].into(), &mut out).unwrap();
        for p in [mine, theirs] {
            assert!(matches!(
                a2.resend(now, p, &mut out),
                Err(ClusterError::NotEarlierLife(_))
            ));
        }
    }

    #[test]
    fn user_events_count_per_origin_and_keep_a_lamport_clock() {
        let (mut a, mut b) = pair();
        let now = Instant::ZERO;
        let mut out = Outbox::default();
        let (_, l1) = a
            .event(now, "deploy", b"v1"[..].into(), false, &mut out)
            .unwrap();
        let (_, l2) = a
            .event(now, "deploy", b"v2"[..].into(), true, &mut out)
            .unwrap();
        assert_eq!((l1, l2), (1, 2));
        carry(&NodeId::new("a"), &mut b, &mut out, now);
        let got: Vec<EventHead> = b.drain_delivered().filter_map(|p| p.event).collect();
        assert_eq!(got.iter().map(|e| e.count).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(
            got.iter().map(|e| e.coalesce).collect::<Vec<_>>(),
            [false, true]
        );
        assert_eq!(&*got[0].name, "deploy");
        // b has seen Lamport time 2: its first event comes after.
        let (_, lb) = b
            .event(now, "flush", b""[..].into(), false, &mut out)
            .unwrap();
        assert_eq!(lb, 3);
        // a broadcast is not an event
        a.broadcast(now, b"x"[..].into(), &mut out).unwrap();
        assert!(
            a.drain_delivered()
                .last()
                .is_some_and(|p| p.event.is_none())
        );
        // bad names are refused, nothing sent
        for bad in ["", "a\nb", &"x".repeat(MAX_EVENT_NAME + 1)] {
            assert!(matches!(
                a.event(now, bad, b""[..].into(), false, &mut out),
                Err(ClusterError::EventName(_))
            ));
        }
    }
}
