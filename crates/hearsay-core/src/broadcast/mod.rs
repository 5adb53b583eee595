//! Broadcast: spread every value to every node, loss-free across partitions.
//!
//! One engine, [`Broadcast`], forwards each value it learns to its neighbours
//! in an overlay ([`Overlay`]: the topology the operator gave, a spanning tree
//! of it, a star, a k-ary tree, or everyone). Each neighbour is reached over a
//! [`link`] that batches values (at most one data message per `batch`
//! interval), piggybacks cumulative acks on data going the other way, and
//! retransmits whatever stays unacknowledged, so a value accepted by any node
//! reaches every node once the network heals.
//!
//! Sends nothing when there is nothing new to say: no heartbeats, no periodic
//! digests; a bare ack is sent only when one is owed and no data carried it.

mod config;
mod engine;
mod link;
mod overlay;

pub use config::{Config, ConfigError, Overlay, Preset};
pub use engine::{Broadcast, Input, Outbox, Stats};
pub use overlay::neighbours;

use serde::{Deserialize, Serialize};
use std::fmt;

/// A node, as an index into the membership list every node agrees on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Peer(pub u32);

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// What one node sends another over a link.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message<V> {
    /// This batch's sequence number on the link (from 1); `None` for a bare ack.
    pub seq: Option<u64>,
    /// Every batch numbered below `base` was either acknowledged or resent
    /// under a later number, so the receiver may stop waiting for it.
    pub base: u64,
    /// Cumulative ack: the sender has received every batch numbered `<= ack`
    /// on the reverse link.
    pub ack: u64,
    /// The values carried (empty for a bare ack).
    pub values: Vec<V>,
}
