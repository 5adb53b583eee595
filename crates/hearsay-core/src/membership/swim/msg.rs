//! Membership messages, events and counters.

use crate::id::NodeId;
use crate::membership::member::{Incarnation, Update};
use serde::{Deserialize, Serialize};

/// Membership messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemberMsg {
    /// A direct probe of `target` (the name the sender means, so a probe
    /// that reaches someone else at that address is not acked).
    #[serde(rename = "p")]
    Ping {
        q: u32,
        t: NodeId,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        u: Vec<Update>,
    },
    #[serde(rename = "a")]
    Ack {
        q: u32,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        u: Vec<Update>,
    },
    /// "Probe `t` for me" (SWIM §3.1's ping-req).
    #[serde(rename = "r")]
    PingReq {
        q: u32,
        t: NodeId,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        u: Vec<Update>,
    },
    /// "I probed it for you and got no ack" (Lifeguard §IV-A).
    #[serde(rename = "n")]
    Nack {
        q: u32,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        u: Vec<Update>,
    },
    #[serde(rename = "g")]
    Gossip { u: Vec<Update> },
    /// Phi detector: "still here".
    #[serde(rename = "h")]
    Heartbeat {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        u: Vec<Update>,
    },
    /// Push-pull, step 1: per bucket of names, a digest of who the sender
    /// knows to be live; or one entry, their sum (a periodic sync: the
    /// receiver answers with its buckets only if its sum differs).
    #[serde(rename = "d")]
    Digest { d: Vec<u64>, n: u32 },
    /// Push-pull, step 2 (and a join): what the sender knows of the members
    /// in buckets `b` (all buckets when absent); with `reply`, the receiver
    /// answers with what it knows of the same buckets.
    #[serde(rename = "s")]
    State {
        reply: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        b: Option<Vec<u8>>,
        m: Vec<Update>,
    },
}

impl MemberMsg {
    pub fn kind(&self) -> &'static str {
        match self {
            MemberMsg::Ping { .. } => "ping",
            MemberMsg::Ack { .. } => "ack",
            MemberMsg::PingReq { .. } => "ping-req",
            MemberMsg::Nack { .. } => "nack",
            MemberMsg::Gossip { .. } => "gossip",
            MemberMsg::Heartbeat { .. } => "heartbeat",
            MemberMsg::Digest { .. } => "digest",
            MemberMsg::State { .. } => "state",
        }
    }

    pub(super) fn updates(&mut self) -> Vec<Update> {
        match self {
            MemberMsg::Ping { u, .. }
            | MemberMsg::Ack { u, .. }
            | MemberMsg::PingReq { u, .. }
            | MemberMsg::Nack { u, .. }
            | MemberMsg::Gossip { u }
            | MemberMsg::Heartbeat { u } => std::mem::take(u),
            MemberMsg::Digest { .. } | MemberMsg::State { .. } => Vec::new(),
        }
    }
}

/// What happened to a member, as this member saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A member became known (alive).
    Joined(NodeId, Incarnation),
    Suspected(NodeId, Incarnation),
    /// A suspect refuted, or a dead member came back.
    Alive(NodeId, Incarnation),
    /// Alive, in a new incarnation that tells other metadata (its tags).
    Updated(NodeId, Incarnation),
    /// Declared dead (by this member or by a rumour).
    Died(NodeId, Incarnation),
    Left(NodeId, Incarnation),
    /// Collected after its retention.
    Removed(NodeId),
}

/// Counters, for metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SwimStats {
    pub probes: u64,
    pub probe_failures: u64,
    pub indirect_probes: u64,
    pub nacks_sent: u64,
    pub nacks_received: u64,
    pub suspicions: u64,
    pub refutations: u64,
    pub deaths_declared: u64,
    pub syncs: u64,
    pub full_syncs: u64,
    pub reconnects: u64,
    pub rumours_dropped: u64,
    /// Claims about new members refused: the table was full.
    pub members_refused: u64,
    pub relays_dropped: u64,
    /// Input dropped: malformed, oversized, about an older life of ours.
    pub bad_input: u64,
    /// Claims dropped as not made by the member they are about (it signs,
    /// and they are not signed with its key, or accuse it past what it
    /// signed).
    pub forged: u64,
    /// Claims dropped unchecked: they needed a signature check and the
    /// check budget was spent (`SwimConfig::checks_per_sec`).
    pub unchecked: u64,
    /// Signature checks done.
    pub checks: u64,
    /// Earlier lives of this member under another key declared dead
    /// ([`Swim::bury`](super::Swim)).
    pub buried: u64,
    /// Times this member was run much later than it asked (paused).
    pub stalls: u64,
    /// Direct probes answered, and their round trips (microseconds).
    pub rtt_count: u64,
    pub rtt_sum_us: u64,
    pub rtt_last_us: u64,
}
