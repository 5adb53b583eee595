//! Maelstrom's wire format: envelopes, typed request bodies, broadcast
//! values, and hearsay's own inter-node body.

use serde::de::Deserializer;
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::BTreeMap;

/// An envelope as a node receives it. `id` is Maelstrom's and ignored.
#[derive(Debug, Deserialize)]
pub struct Incoming {
    pub src: String,
    pub dest: String,
    pub body: Value,
}

/// An envelope with its body left unparsed, to route on before paying for
/// a generic JSON tree.
#[derive(Debug, Deserialize)]
pub struct Raw<'a> {
    pub src: String,
    pub dest: String,
    #[serde(borrow)]
    pub body: &'a RawValue,
}

/// An envelope as a node sends it: exactly `src`, `dest`, `body`.
#[derive(Debug, Serialize)]
pub struct Outgoing<'a, B: Serialize> {
    pub src: &'a str,
    pub dest: &'a str,
    pub body: B,
}

/// A broadcast value. Maelstrom's schema allows any JSON; the challenge sends
/// integers, so those get a fast path and everything else is kept as its
/// canonical JSON text (ordered, comparable, written back verbatim).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Item {
    Int(i64),
    Json(Box<str>),
}

/// A broadcast value is its own key (announcements name it whole).
impl hearsay_core::dissemination::Value for Item {
    type Key = Item;
}

impl From<Value> for Item {
    fn from(v: Value) -> Item {
        match v.as_i64() {
            Some(i) => Item::Int(i),
            None => Item::Json(v.to_string().into_boxed_str()),
        }
    }
}

impl Serialize for Item {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Item::Int(i) => s.serialize_i64(*i),
            Item::Json(text) => {
                let raw: &RawValue =
                    serde_json::from_str(text).map_err(serde::ser::Error::custom)?;
                raw.serialize(s)
            }
        }
    }
}

impl<'de> Deserialize<'de> for Item {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Item, D::Error> {
        Value::deserialize(d).map(Item::from)
    }
}

/// hearsay's own node-to-node body: the core's envelope, `type` "hs".
pub type PeerBody = hearsay_core::wire::Envelope<Item>;

/// One replica's counter as the counter engine spreads it: (replica,
/// increments, decrements), each a running total. A newer tally of a
/// replica replaces the older one (its slot is the replica, its version
/// the units added either way), so a node holds one tally per replica
/// however many adds there were, and the counter is the sum over them
/// (the PN-counter's state, replicated by the dissemination strategy).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Tally(pub String, pub u64, pub u64);

impl hearsay_core::dissemination::Value for Tally {
    type Key = Tally;

    fn slot(t: &Tally) -> Option<(&str, u64)> {
        Some((&t.0, t.1.saturating_add(t.2)))
    }
}

impl Tally {
    pub fn value(&self) -> i64 {
        i64::try_from(self.1).unwrap_or(i64::MAX) - i64::try_from(self.2).unwrap_or(i64::MAX)
    }
}

/// The counter engine's node-to-node body, `type` "hc".
pub type TallyBody = hearsay_core::wire::Envelope<Tally>;

/// The fields any body may have, read first to route on.
#[derive(Debug, Deserialize)]
pub struct Head {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub msg_id: Option<u64>,
    #[serde(default)]
    pub in_reply_to: Option<u64>,
}

/// The requests hearsay-node serves, as Maelstrom's workloads define them
/// (maelstrom-spec.md). Extra fields are ignored, missing or mistyped ones
/// make the request malformed (error 12).
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    Init {
        node_id: String,
        node_ids: Vec<String>,
    },
    Topology {
        topology: BTreeMap<String, Vec<String>>,
    },
    Broadcast {
        message: Value,
    },
    /// g-set (`element`) or a counter (`delta`).
    Add {
        #[serde(default)]
        element: Option<Value>,
        #[serde(default)]
        delta: Option<i64>,
    },
    Read {},
    Echo {
        echo: Value,
    },
    /// unique-ids.
    Generate {},
}

impl Request {
    /// The request types this node knows (others get error 10).
    pub const KINDS: [&'static str; 7] = [
        "init",
        "topology",
        "broadcast",
        "add",
        "read",
        "echo",
        "generate",
    ];
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn items_keep_their_json() {
        for text in [
            "7",
            "-3",
            "1.5",
            "\"x\"",
            "[1,2]",
            "{\"a\":1}",
            "18446744073709551615",
            "null",
        ] {
            let item: Item = serde_json::from_str(text).unwrap();
            assert_eq!(serde_json::to_string(&item).unwrap(), text);
        }
        assert_eq!(serde_json::from_str::<Item>("7").unwrap(), Item::Int(7));
    }

    #[test]
    fn requests_parse_into_typed_bodies() {
        let r: Request =
            serde_json::from_str(r#"{"type":"topology","topology":{"n0":["n1"]},"msg_id":2}"#)
                .unwrap();
        assert!(matches!(r, Request::Topology { topology } if topology["n0"] == ["n1"]));
        let r: Request = serde_json::from_str(r#"{"type":"read","msg_id":1}"#).unwrap();
        assert!(matches!(r, Request::Read {}));
        assert!(serde_json::from_str::<Request>(r#"{"type":"topology","topology":[]}"#).is_err());
        assert!(serde_json::from_str::<Request>(r#"{"type":"broadcast"}"#).is_err());
    }

    proptest! {
        #[test]
        fn link_bodies_round_trip(s in proptest::option::of(1u64..1000), b in 0u64..1000, a in 0u64..1000, v in proptest::collection::vec(any::<i64>(), 0..20), p in any::<bool>()) {
            use hearsay_core::id::Epoch;
            use hearsay_core::link::{Lane, LinkMsg};
            use hearsay_core::wire::Msg;
            let msg = LinkMsg::Data { lane: Lane::Eager, seq: s, base: b, ack: a, values: v.into_iter().map(Item::Int).collect(), probe: p };
            let body = PeerBody::new(Epoch(3), Epoch(4), Msg::Link(msg));
            let text = serde_json::to_string(&body).unwrap();
            prop_assert!(text.starts_with(r#"{"type":"hs","#), "{}", text);
            prop_assert_eq!(serde_json::from_str::<PeerBody>(&text).unwrap(), body);
        }

        #[test]
        fn decoding_never_panics(text in ".{0,64}") {
            let _ = serde_json::from_str::<PeerBody>(&text);
            let _ = serde_json::from_str::<Incoming>(&text);
            let _ = serde_json::from_str::<Request>(&text);
        }
    }
}
