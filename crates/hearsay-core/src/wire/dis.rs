//! The dissemination strategies' own messages: gossip pushes, anti-entropy
//! digests and deltas, plumtree's announcements and grafts (values on acked
//! links travel as [`super::link::LinkMsg::Data`]).

use crate::id::{Epoch, NodeId};
use crate::value::Value;
use serde::{Deserialize, Serialize};

/// A value tagged with its origin, the origin's life and the origin's
/// sequence number in that life, as anti-entropy tracks it. The epoch keeps
/// a restarted origin's new numbering from colliding with its old one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry<V>(pub NodeId, pub Epoch, pub u64, pub V);

/// What a node holds of one origin life: every sequence number up to the
/// third field, and the out-of-order ones listed in the fourth (at most
/// [`crate::dissemination::MAX_EXTRAS`]; holes left by a crashed origin stay there for good, so
/// they must be visible for two nodes to agree they hold the same).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark(pub NodeId, pub Epoch, pub u64, pub Vec<u64>);

/// A version vector: per origin life, what is held (shared: a node sends
/// the same digest to many peers).
pub type Clock = std::sync::Arc<[Mark]>;

/// The strategies' own messages (values on acked links travel as
/// [`super::link::LinkMsg::Data`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound = "V: Value")]
pub enum DisMsg<V: Value> {
    /// Gossip: new entries, fire and forget.
    #[serde(rename = "push")]
    Push { e: Vec<Entry<V>> },
    /// Anti-entropy: "this is what I have"; answered by a delta. Without
    /// `s`, `vv` lists every origin life held. With `s`, it lists some, and
    /// `s` sums the others into `s.len()` buckets (a power of two, at most
    /// 256): per bucket, the XOR of the lives' hashes, zero for none (see
    /// `dissemination::lives`).
    #[serde(rename = "digest")]
    Digest {
        vv: Clock,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        s: Vec<u64>,
    },
    /// Anti-entropy: entries the receiver lacks; `more` when the sender
    /// holds more than fitted; `w`, the sender's marks for the origin lives
    /// where the receiver's digest showed more than the sender holds (what
    /// push-pull sends back); `d`, the buckets of the digest's sums that
    /// differ from the sender's (the two are not in sync there yet).
    #[serde(rename = "delta")]
    Delta {
        e: Vec<Entry<V>>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        more: bool,
        #[serde(default, skip_serializing_if = "<[Mark]>::is_empty")]
        w: Clock,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        d: Vec<u8>,
    },
    /// Plumtree: "I hold these" (keys of values delivered since the last
    /// announcement).
    #[serde(rename = "ihave")]
    IHave { k: Vec<V::Key> },
    /// Plumtree: "send me these".
    #[serde(rename = "graft")]
    Graft { v: Vec<V::Key> },
}

impl<V: Value> DisMsg<V> {
    pub fn kind(&self) -> &'static str {
        match self {
            DisMsg::Push { .. } => "push",
            DisMsg::Digest { .. } => "digest",
            DisMsg::Delta { .. } => "delta",
            DisMsg::IHave { .. } => "ihave",
            DisMsg::Graft { .. } => "graft",
        }
    }
}
