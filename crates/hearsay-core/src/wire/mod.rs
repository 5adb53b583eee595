//! The one envelope every node-to-node message travels in.
//!
//! ```text
//! {"type":"hs", "e": <sender epoch>, "to": <receiver epoch as the sender knows it>,
//!  "m": {"link": ...} | {"dis": ...} | {"mem": ...}}
//! ```
//!
//! The envelope carries the sender's [`Epoch`], so a receiver notices a peer
//! that restarted (and resets its sessions with it) and drops messages from
//! a life that is over; `to` lets a receiver that restarted tell messages
//! meant for its previous life apart. The link and dissemination messages
//! are defined here too ([`link`], [`dis`]; the layers re-export them), so
//! the layers import the wire and never each other through it, and what
//! goes on the wire can be read in one place; membership's
//! [`crate::membership::MemberMsg`] rides in it as well. Adding a protocol
//! adds a variant here and nowhere else. Externally tagged enums all the way down, so decoding
//! never buffers a message to find its tag.

pub mod dis;
pub mod link;

use crate::id::Epoch;
use crate::membership::MemberMsg;
use crate::value::Value;
pub use dis::DisMsg;
pub use link::LinkMsg;
use serde::{Deserialize, Serialize};

/// The envelope's type tag (Maelstrom needs every body to have a `type`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Tag {
    #[default]
    #[serde(rename = "hs")]
    Hs,
    /// A second node in the same process (a Maelstrom node's counter
    /// engine beside its set engine), told apart by the body's type.
    #[serde(rename = "hc")]
    Hc,
}

/// One message between two nodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(bound = "V: Value")]
pub struct Envelope<V: Value> {
    #[serde(rename = "type", default)]
    pub tag: Tag,
    /// The sender's epoch.
    #[serde(rename = "e")]
    pub epoch: Epoch,
    /// The receiver's epoch as the sender knows it (0: not known yet).
    #[serde(default, skip_serializing_if = "is_unknown")]
    pub to: Epoch,
    #[serde(rename = "m")]
    pub msg: Msg<V>,
}

fn is_unknown(e: &Epoch) -> bool {
    !e.is_known()
}

impl<V: Value> Envelope<V> {
    pub fn new(epoch: Epoch, to: Epoch, msg: Msg<V>) -> Self {
        Envelope {
            tag: Tag::Hs,
            epoch,
            to,
            msg,
        }
    }
}

/// A protocol message, by layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(bound = "V: Value")]
pub enum Msg<V: Value> {
    /// Reliable sessions: batches, acks, relayed acks.
    #[serde(rename = "link")]
    Link(LinkMsg<V>),
    /// The dissemination strategy's own messages.
    #[serde(rename = "dis")]
    Dis(DisMsg<V>),
    /// Membership (SWIM); a static membership sends none.
    #[serde(rename = "mem")]
    Mem(MemberMsg),
}

impl<V: Value> Msg<V> {
    /// A short name for counters and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Msg::Link(m) => m.kind(),
            Msg::Dis(m) => m.kind(),
            Msg::Mem(m) => m.kind(),
        }
    }
}
