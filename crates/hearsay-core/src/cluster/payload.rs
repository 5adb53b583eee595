//! What a cluster broadcasts: bytes with an id that names their origin
//! life and number.

use crate::dissemination::Value;
use crate::id::{Epoch, NodeId};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::sync::Arc;

/// A payload's id: its origin, the origin's life, and the origin's count.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MsgId(pub NodeId, pub Epoch, pub u64);

/// A payload is named by its id: it compares and orders by the id alone,
/// so a set of payloads is a set of ids.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Payload {
    pub id: MsgId,
    /// Raw bytes on a binary wire (MessagePack's bin), not a list of numbers.
    #[serde(with = "bytes")]
    pub data: Arc<[u8]>,
    /// Set when the payload is a user event (`hearsay event`) rather than
    /// an application broadcast. Agents that predate it ignore the field
    /// and take the event for a broadcast.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "e")]
    pub event: Option<EventHead>,
}

/// What makes a payload a user event: its name, the origin's Lamport time
/// when it sent it (Serf's `ltime`, ordering events across origins as
/// causality allows), and its number among the events of the origin's
/// life (1, 2, ...: events are delivered in that order per origin).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventHead {
    #[serde(rename = "n")]
    pub name: Box<str>,
    #[serde(rename = "l")]
    pub lamport: u64,
    #[serde(rename = "c")]
    pub count: u64,
    /// Handlers may run once for a burst of same-named events that ask
    /// for it, with the last (Serf's `-coalesce`); every event is still
    /// delivered.
    #[serde(default, skip_serializing_if = "std::ops::Not::not", rename = "k")]
    pub coalesce: bool,
}

/// Longest user event name, in bytes.
pub const MAX_EVENT_NAME: usize = 128;

/// Why a user event name is refused.
pub fn check_event_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_EVENT_NAME {
        return Err(format!(
            "an event name must be 1 to {MAX_EVENT_NAME} bytes, not {}",
            name.len()
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(format!("an event name has no control characters: {name:?}"));
    }
    Ok(())
}

impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for Payload {}

impl PartialOrd for Payload {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Payload {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.id.cmp(&other.id)
    }
}

impl std::borrow::Borrow<MsgId> for Payload {
    fn borrow(&self) -> &MsgId {
        &self.id
    }
}

impl Value for Payload {
    type Key = MsgId;

    fn tag(id: &MsgId) -> Option<(&NodeId, Epoch, u64)> {
        Some((&id.0, id.1, id.2))
    }

    fn size(&self) -> usize {
        self.data.len() + self.event.as_ref().map_or(0, |e| e.name.len() + 16)
    }
}

/// Largest payload accepted.
pub const MAX_PAYLOAD: usize = 64 * 1024;

/// Serde for `Arc<[u8]>` as bytes (a binary format writes them raw; JSON
/// writes a list of numbers, and either is read back).
pub mod bytes {
    use super::*;
    use serde::de::{SeqAccess, Visitor};

    pub fn serialize<S: Serializer>(b: &Arc<[u8]>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(b)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<[u8]>, D::Error> {
        struct Bytes;
        impl<'de> Visitor<'de> for Bytes {
            type Value = Arc<[u8]>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
                if v.len() > super::MAX_PAYLOAD {
                    return Err(E::custom("payload too large"));
                }
                Ok(v.into())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out =
                    Vec::with_capacity(seq.size_hint().unwrap_or(0).min(super::MAX_PAYLOAD));
                while let Some(b) = seq.next_element::<u8>()? {
                    if out.len() >= super::MAX_PAYLOAD {
                        return Err(serde::de::Error::custom("payload too large"));
                    }
                    out.push(b);
                }
                Ok(out.into())
            }
        }
        d.deserialize_bytes(Bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_is_its_id_and_its_bytes_travel_raw() {
        let p = Payload {
            id: MsgId(NodeId::new("a"), Epoch(2), 7),
            data: vec![200u8; 100].into(),
            event: None,
        };
        let q = Payload {
            data: vec![1].into(),
            ..p.clone()
        };
        assert_eq!(p, q, "the same id is the same payload");
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<Payload>(&json).unwrap().data, p.data);
        assert_eq!(
            Payload::tag(p.key()),
            Some((&NodeId::new("a"), Epoch(2), 7))
        );
    }
}
