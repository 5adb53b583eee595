//! Broadcast: spread every value to every node, loss-free across partitions.
//!
//! One engine, [`Broadcast`], runs one of several strategies ([`Strategy`]):
//!
//! | strategy | how values spread | what makes it loss-free |
//! |---|---|---|
//! | `flood` | every node forwards new values to its overlay neighbours (the operator's topology) | acked links |
//! | `tree` | forwarding over a tree: a hub, a k-ary tree, or a spanning tree of the topology | acked links |
//! | `direct` | the origin sends to every node; nobody forwards | acked links, tail acks relayed by a hub |
//! | `gossip` | each node pushes new values to `fanout` random peers, once | digest anti-entropy |
//! | `pull` | nodes announce digests; peers pull what they lack | digest anti-entropy |
//! | `push-pull` | digest exchanges in both directions | digest anti-entropy |
//! | `plumtree` | eager push on a tree, lazy announcements to mesh peers, graft/prune | acked links, graft retries |
//!
//! Links ([`link`]) batch values (at most one data message per `batch`
//! interval), piggyback cumulative acks on data going the other way and
//! retransmit whatever stays unacknowledged. Anti-entropy keeps exchanging
//! version-vector digests with mesh neighbours until each has confirmed it
//! holds everything this node holds. Either way, nothing is sent when there
//! is nothing new to say.

mod antientropy;
mod config;
mod engine;
mod gossip;
mod link;
mod links;
mod overlay;
mod plumtree;
mod relay;
#[cfg(test)]
mod strategy_tests;

pub use config::{Config, ConfigError, Overlay, Preset, Strategy};
pub use engine::{Broadcast, Input, Outbox, Stats};
pub use overlay::{mesh, neighbours, reach};

use serde::de::DeserializeOwned;
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

/// Which stream of a link: plumtree announces lazily on a second one.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub enum Lane {
    #[default]
    #[serde(rename = "e")]
    Eager,
    #[serde(rename = "l")]
    Lazy,
}

impl Lane {
    fn is_eager(&self) -> bool {
        *self == Lane::Eager
    }
}

/// What one node sends another over a link.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message<V> {
    /// This batch's sequence number on the link (from 1); `None` for a bare ack.
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// Every batch numbered below `base` was either acknowledged or resent
    /// under a later number, so the receiver may stop waiting for it.
    #[serde(rename = "b")]
    pub base: u64,
    /// Cumulative ack: the sender has received every batch numbered `<= ack`
    /// on the reverse link.
    #[serde(rename = "a")]
    pub ack: u64,
    /// The values carried (empty for a bare ack).
    #[serde(
        rename = "v",
        default = "Vec::new",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub values: Vec<V>,
}

/// A value tagged with its origin and the origin's sequence number, as
/// anti-entropy tracks it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry<V>(pub Peer, pub u64, pub V);

/// A version vector: per origin, the highest sequence number below which
/// everything is held.
pub type Clock = Vec<(Peer, u64)>;

/// Everything one broadcast engine sends another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", bound = "V: Serialize + DeserializeOwned")]
pub enum Wire<V> {
    /// Values (or just an ack) over a reliable link.
    #[serde(rename = "hs_link")]
    Link {
        #[serde(rename = "l", default, skip_serializing_if = "Lane::is_eager")]
        lane: Lane,
        #[serde(flatten)]
        msg: Message<V>,
    },
    /// To the ack relay: cumulative acks this node owes to data senders.
    #[serde(rename = "hs_ackvia")]
    AckVia { k: Vec<(Peer, u64)> },
    /// From the ack relay: cumulative acks from data receivers.
    #[serde(rename = "hs_ackrelay")]
    AckRelay { k: Vec<(Peer, u64)> },
    /// Gossip: new entries, fire and forget.
    #[serde(rename = "hs_push")]
    Push { e: Vec<Entry<V>> },
    /// Anti-entropy: "this is what I have"; answered by a delta.
    #[serde(rename = "hs_digest")]
    Digest { vv: Clock },
    /// Anti-entropy: entries the receiver lacks, and the sender's clock.
    #[serde(rename = "hs_delta")]
    Delta { e: Vec<Entry<V>>, vv: Clock },
    /// Plumtree: "send me these eagerly from now on".
    #[serde(rename = "hs_graft")]
    Graft { v: Vec<V> },
    /// Plumtree: "stop sending me values eagerly".
    #[serde(rename = "hs_prune")]
    Prune {},
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_is_compact_json() {
        let m: Wire<u64> = Wire::Link {
            lane: Lane::Eager,
            msg: Message {
                seq: Some(3),
                base: 1,
                ack: 2,
                values: vec![7],
            },
        };
        let text = serde_json::to_string(&m).unwrap();
        assert_eq!(text, r#"{"type":"hs_link","s":3,"b":1,"a":2,"v":[7]}"#);
        assert_eq!(serde_json::from_str::<Wire<u64>>(&text).unwrap(), m);
        let lazy: Wire<u64> = Wire::Link {
            lane: Lane::Lazy,
            msg: Message {
                seq: None,
                base: 1,
                ack: 0,
                values: vec![],
            },
        };
        let text = serde_json::to_string(&lazy).unwrap();
        assert_eq!(text, r#"{"type":"hs_link","l":"l","b":1,"a":0}"#);
        assert_eq!(serde_json::from_str::<Wire<u64>>(&text).unwrap(), lazy);
        let d: Wire<u64> = Wire::Delta {
            e: vec![Entry(Peer(1), 4, 9)],
            vv: vec![(Peer(1), 4)],
        };
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            r#"{"type":"hs_delta","e":[[1,4,9]],"vv":[[1,4]]}"#
        );
        let p: Wire<u64> = Wire::Prune {};
        assert_eq!(
            serde_json::from_str::<Wire<u64>>(&serde_json::to_string(&p).unwrap()).unwrap(),
            p
        );
    }
}
