//! Maelstrom's wire format: envelopes, broadcast values, and hearsay's own
//! inter-node body.

use serde::de::Deserializer;
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

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

/// hearsay's own node-to-node body: the core's wire messages, whose `type`
/// starts with `hs_`.
pub type PeerBody = hearsay_core::broadcast::Wire<Item>;

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

    proptest! {
        #[test]
        fn link_bodies_round_trip(s in proptest::option::of(1u64..1000), b in 0u64..1000, a in 0u64..1000, v in proptest::collection::vec(any::<i64>(), 0..20)) {
            use hearsay_core::broadcast::{Lane, Message};
            let msg = Message { seq: s, base: b, ack: a, values: v.into_iter().map(Item::Int).collect() };
            let body = PeerBody::Link { lane: Lane::Eager, msg };
            let text = serde_json::to_string(&body).unwrap();
            prop_assert_eq!(serde_json::from_str::<PeerBody>(&text).unwrap(), body);
        }

        #[test]
        fn decoding_never_panics(text in ".{0,64}") {
            let _ = serde_json::from_str::<PeerBody>(&text);
            let _ = serde_json::from_str::<Incoming>(&text);
        }
    }
}
