//! The two memberships a [`crate::node::Node`] runs over: [`Static`], a
//! fixed list (Maelstrom's `node_ids`: no probes, no messages of its own),
//! and [`Swim`], a changing cluster. Both answer the same trait; the node
//! turns their events into view changes for the dissemination strategy.

use super::{Event, MemberMsg, Swim};
use crate::id::NodeId;
use crate::machine::Machine;
use crate::outbox::Outbox;
use crate::time::Instant;
use std::fmt;

/// Who is in the cluster, as a machine under the node: membership
/// messages in, membership messages out ([`Machine`]), and [`Event`]s that
/// say who came and went. The node calls `tick` when `next_deadline` is due.
pub trait Membership: Machine<Msg = MemberMsg> + fmt::Debug + Send {
    /// Joins through `seeds` (members known by name).
    fn join(&mut self, now: Instant, seeds: &[NodeId], out: &mut Outbox<MemberMsg>);
    /// Leaves gracefully.
    fn leave(&mut self, now: Instant, out: &mut Outbox<MemberMsg>);
    /// Records a member that failed as left, and says so to the others
    /// (Serf's `force-leave`; a static membership has nobody to tell).
    fn force_leave(&mut self, now: Instant, id: &NodeId, out: &mut Outbox<MemberMsg>);
    /// What happened since the last call, oldest first.
    fn drain_events(&mut self, into: &mut Vec<Event>);
    /// Whether this membership has messages of its own (a static one
    /// never sends or takes any).
    fn talks(&self) -> bool;
}

/// A fixed member list: the view the node was built with is the view for
/// good, changed only by explicit `Input::View` from the shell.
#[derive(Debug, Default, Clone, Copy)]
pub struct Static;

impl Machine for Static {
    type Msg = MemberMsg;
    fn receive(&mut self, _: Instant, _: &NodeId, _: MemberMsg, _: &mut Outbox<MemberMsg>) {}
    fn tick(&mut self, _: Instant, _: &mut Outbox<MemberMsg>) {}
    fn next_deadline(&self) -> Option<Instant> {
        None
    }
}

impl Membership for Static {
    fn join(&mut self, _: Instant, _: &[NodeId], _: &mut Outbox<MemberMsg>) {}
    fn leave(&mut self, _: Instant, _: &mut Outbox<MemberMsg>) {}
    fn force_leave(&mut self, _: Instant, _: &NodeId, _: &mut Outbox<MemberMsg>) {}
    fn drain_events(&mut self, _: &mut Vec<Event>) {}
    fn talks(&self) -> bool {
        false
    }
}

impl Membership for Swim {
    fn join(&mut self, now: Instant, seeds: &[NodeId], out: &mut Outbox<MemberMsg>) {
        Swim::join(self, now, seeds, out);
    }
    fn leave(&mut self, now: Instant, out: &mut Outbox<MemberMsg>) {
        Swim::leave(self, now, out);
    }
    fn force_leave(&mut self, now: Instant, id: &NodeId, out: &mut Outbox<MemberMsg>) {
        // Refusals are the caller's to check first ([`Swim::can_force_leave`]).
        let _ = Swim::force_leave(self, now, id, out);
    }
    fn drain_events(&mut self, into: &mut Vec<Event>) {
        into.extend(Swim::drain_events(self));
    }
    fn talks(&self) -> bool {
        true
    }
}
