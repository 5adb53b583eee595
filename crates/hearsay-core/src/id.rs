//! Who a node is: a stable name, and the life (epoch) it is in.
//!
//! Every protocol keys its state by [`NodeId`], never by a position in a
//! member list, so a join or a leave does not renumber anybody. A node that
//! restarts with lost state comes back under the same name with a higher
//! [`Epoch`]: links, version vectors and membership records of the old life
//! are told apart from the new one by it.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

/// Longest name accepted from the wire: a bound, so a peer cannot make us
/// store megabytes per member.
pub const MAX_NAME_LEN: usize = 256;

/// A node's stable name (cheap to clone: shared text).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(Arc<str>);

impl NodeId {
    pub fn new(name: impl AsRef<str>) -> Self {
        NodeId(Arc::from(name.as_ref()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A stable 64-bit hash of the name (FNV-1a, then a SplitMix64 finaliser):
    /// the same on every node, every platform and every run, which is what
    /// rendezvous hashing needs.
    pub fn hash64(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.0.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        mix(h)
    }
}

/// SplitMix64's finaliser: spreads every input bit over the output.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Borrow<str> for NodeId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<&str> for NodeId {
    fn from(s: &str) -> Self {
        NodeId::new(s)
    }
}

impl Serialize for NodeId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for NodeId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        if s.is_empty() || s.len() > MAX_NAME_LEN {
            return Err(serde::de::Error::custom(format!(
                "a node name must have 1 to {MAX_NAME_LEN} bytes"
            )));
        }
        Ok(NodeId::new(&*s))
    }
}

/// One life of a node. The shell picks it at start (wall-clock time, or a
/// counter in the simulator); a restart must pick a higher one. `Epoch(0)`
/// means "not known yet".
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Epoch(pub u64);

impl Epoch {
    pub const UNKNOWN: Epoch = Epoch(0);

    pub fn is_known(self) -> bool {
        self != Epoch::UNKNOWN
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "e{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_hash_stably_and_serialize_as_strings() {
        let a = NodeId::new("n1");
        assert_eq!(a.hash64(), NodeId::new("n1").hash64());
        assert_ne!(a.hash64(), NodeId::new("n2").hash64());
        // Pinned: the hash is part of the protocol (every node must agree).
        assert_eq!(NodeId::new("n0").hash64(), 7206257106614488028);
        assert_eq!(serde_json::to_string(&a).unwrap(), r#""n1""#);
        assert_eq!(serde_json::from_str::<NodeId>(r#""n1""#).unwrap(), a);
        assert!(serde_json::from_str::<NodeId>(r#""""#).is_err());
        let long = format!("\"{}\"", "x".repeat(MAX_NAME_LEN + 1));
        assert!(serde_json::from_str::<NodeId>(&long).is_err());
    }
}
