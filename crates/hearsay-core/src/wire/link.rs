//! The link layer's messages: numbered batches with cumulative acks, and
//! acks relayed through a hub (see [`crate::link`]).

use crate::id::{Epoch, NodeId};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

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
    pub(crate) fn is_eager(&self) -> bool {
        *self == Lane::Eager
    }
}

/// A receiver's ack for a data sender, sent to the hub: (sender, the
/// sender's epoch the ack is for, cumulative ack).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViaAck(pub NodeId, pub Epoch, pub u64);

/// An ack forwarded by the hub to a data sender: (receiver, the receiver's
/// epoch, the sender's epoch the ack is for, cumulative ack).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayedAck(pub NodeId, pub Epoch, pub Epoch, pub u64);

/// Link-layer messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound = "V: Serialize + DeserializeOwned")]
pub enum LinkMsg<V> {
    /// A batch of values (or just an ack) on one session.
    #[serde(rename = "d")]
    Data {
        #[serde(rename = "l", default, skip_serializing_if = "Lane::is_eager")]
        lane: Lane,
        /// This batch's number on the session (from 1); `None` for a bare ack.
        #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
        /// Every batch numbered below `base` was either acknowledged or
        /// resent under a later number: the receiver may stop waiting for it.
        #[serde(rename = "b")]
        base: u64,
        /// Cumulative ack: the sender holds every batch numbered `<= ack`
        /// of the reverse session.
        #[serde(rename = "a")]
        ack: u64,
        #[serde(
            rename = "v",
            default = "Vec::new",
            skip_serializing_if = "Vec::is_empty"
        )]
        values: Vec<V>,
        /// A probe from a sender whose resend is backing off: answer with
        /// a bare ack at once, straight to the sender.
        #[serde(rename = "p", default, skip_serializing_if = "std::ops::Not::not")]
        probe: bool,
    },
    /// To the hub: acks this node owes to data senders.
    #[serde(rename = "av")]
    AckVia { k: Vec<ViaAck> },
    /// From the hub: acks from data receivers.
    #[serde(rename = "ar")]
    AckRelay { k: Vec<RelayedAck> },
}

impl<V> LinkMsg<V> {
    pub fn kind(&self) -> &'static str {
        match self {
            LinkMsg::Data { seq: Some(_), .. } => "link-data",
            LinkMsg::Data { seq: None, .. } => "link-ack",
            LinkMsg::AckVia { .. } => "ack-via",
            LinkMsg::AckRelay { .. } => "ack-relay",
        }
    }
}
