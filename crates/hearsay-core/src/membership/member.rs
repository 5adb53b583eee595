//! A member as SWIM sees it: its incarnation, its status, its metadata, and
//! the one precedence rule that decides which of two claims about it wins.

use crate::id::{Epoch, NodeId};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// A member's version: its life (epoch) first, then the counter it bumps to
/// refute a suspicion. A restarted member comes back with a higher epoch
/// and counts from 0 again, so it beats every claim about its old life.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(from = "(Epoch, u32)", into = "(Epoch, u32)")]
pub struct Incarnation {
    pub epoch: Epoch,
    pub n: u32,
}

impl Incarnation {
    pub fn new(epoch: Epoch, n: u32) -> Self {
        Incarnation { epoch, n }
    }
}

impl From<(Epoch, u32)> for Incarnation {
    fn from((epoch, n): (Epoch, u32)) -> Self {
        Incarnation { epoch, n }
    }
}

impl From<Incarnation> for (Epoch, u32) {
    fn from(i: Incarnation) -> Self {
        (i.epoch, i.n)
    }
}

impl fmt::Display for Incarnation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.epoch.0, self.n)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Status {
    #[serde(rename = "a")]
    Alive,
    #[serde(rename = "s")]
    Suspect,
    #[serde(rename = "d")]
    Dead,
    #[serde(rename = "l")]
    Left,
}

impl Status {
    /// Alive or suspect: still a member to probe and to send to.
    pub fn is_live(self) -> bool {
        matches!(self, Status::Alive | Status::Suspect)
    }

    /// At equal incarnation, a higher rank wins (SWIM §4.2: suspect beats
    /// alive, confirm beats both; a leave is final).
    fn rank(self) -> u8 {
        match self {
            Status::Alive => 0,
            Status::Suspect => 1,
            Status::Dead => 2,
            Status::Left => 3,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Alive => "alive",
            Status::Suspect => "suspect",
            Status::Dead => "dead",
            Status::Left => "left",
        })
    }
}

/// What a member tells about itself: where to reach it, its zone, and the
/// tags its operator gave it (role, version...: what tools filter on).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    #[serde(rename = "a", default, skip_serializing_if = "Option::is_none")]
    pub addr: Option<Box<str>>,
    #[serde(rename = "z", default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<Box<str>>,
    #[serde(rename = "t", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<Box<str>, Box<str>>,
    /// The member's identity key (Ed25519), if it signs its own claims
    /// ([`crate::membership::Swim::set_identity`]): once a member is known
    /// with a key, only claims it signed can raise its incarnation or say
    /// it left, and accusations cannot go past what it signed.
    #[serde(rename = "k", default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Bytes<32>>,
}

/// Fixed-size bytes carried as bytes on the wire (MessagePack's bin, not a
/// list of numbers).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Bytes<const N: usize>(pub [u8; N]);

/// A member's signature over one of its own claims.
pub type Sig = Bytes<64>;

impl<const N: usize> fmt::Debug for Bytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0.iter().take(4) {
            write!(f, "{b:02x}")?;
        }
        f.write_str("..")
    }
}

impl<const N: usize> Serialize for Bytes<N> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de, const N: usize> Deserialize<'de> for Bytes<N> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<const N: usize>;
        impl<'de, const N: usize> serde::de::Visitor<'de> for V<N> {
            type Value = Bytes<N>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{N} bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Bytes<N>, E> {
                v.try_into()
                    .map(Bytes)
                    .map_err(|_| E::invalid_length(v.len(), &self))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Bytes<N>, A::Error> {
                let mut out = [0u8; N];
                for (i, x) in out.iter_mut().enumerate() {
                    *x = seq
                        .next_element()?
                        .ok_or_else(|| serde::de::Error::invalid_length(i, &self))?;
                }
                if seq.next_element::<u8>()?.is_some() {
                    return Err(serde::de::Error::invalid_length(N + 1, &self));
                }
                Ok(Bytes(out))
            }
        }
        d.deserialize_bytes(V::<N>)
    }
}

/// Longest address or zone accepted from the wire.
pub const MAX_META_LEN: usize = 256;

/// Most bytes of tags (keys and values) a member may carry: they ride on
/// every alive claim about it, which must fit a datagram with others
/// (memberlist and Serf allow 512 bytes of metadata too).
pub const MAX_TAGS_BYTES: usize = 512;

/// Why a set of tags is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TagsError {
    EmptyKey,
    BadKey(String),
    BadValue(String),
    TooLarge { bytes: usize },
}

impl fmt::Display for TagsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TagsError::EmptyKey => write!(f, "a tag needs a name (KEY=VALUE)"),
            TagsError::BadKey(k) => write!(
                f,
                "tag name {k:?} has a character tag names cannot have (=, a control character)"
            ),
            TagsError::BadValue(k) => write!(f, "tag {k:?} has a control character in its value"),
            TagsError::TooLarge { bytes } => write!(
                f,
                "tags take {bytes} bytes, more than the {MAX_TAGS_BYTES} a member may carry"
            ),
        }
    }
}

impl std::error::Error for TagsError {}

/// Why a member cannot be forced out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForceLeaveError {
    /// This member itself: it leaves instead.
    Myself,
    /// Not a member known here.
    Unknown,
    /// Alive here: it would refute at once and stay.
    Alive,
    /// Suspected, not failed yet: it may still refute.
    Suspected,
    /// Already left (or forgotten).
    Gone,
    /// It signs its claims: only its own word says it left (it is
    /// forgotten once dead, after the retention).
    Signs,
}

impl fmt::Display for ForceLeaveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ForceLeaveError::Myself => "that is this member: leave instead",
            ForceLeaveError::Unknown => "no member of that name is known here",
            ForceLeaveError::Alive => {
                "that member is alive: force-leave is for members that failed (an alive one refutes and stays)"
            }
            ForceLeaveError::Suspected => {
                "that member is suspected, not failed yet: it may still answer (wait until it is dead)"
            }
            ForceLeaveError::Gone => "that member has already left",
            ForceLeaveError::Signs => {
                "that member signs its claims: only it can say it left (a dead one is forgotten after the retention)"
            }
        })
    }
}

impl std::error::Error for ForceLeaveError {}

impl Meta {
    pub fn zone(zone: &str) -> Meta {
        Meta {
            zone: Some(zone.into()),
            ..Meta::default()
        }
    }

    /// Rough encoded size, for packing rumours into one message.
    pub fn size(&self) -> usize {
        self.key.map_or(0, |_| 36)
            + self.addr.as_ref().map_or(0, |a| a.len() + 6)
            + self.zone.as_ref().map_or(0, |z| z.len() + 6)
            + if self.tags.is_empty() {
                0
            } else {
                4 + tags_bytes(&self.tags)
            }
    }

    fn valid(&self) -> bool {
        self.addr.as_ref().is_none_or(|a| a.len() <= MAX_META_LEN)
            && self.zone.as_ref().is_none_or(|z| z.len() <= MAX_META_LEN)
            && check_tags(&self.tags).is_ok()
    }
}

/// Encoded size of the tags: keys and values with two bytes of framing
/// each, so that many tiny tags count for what they cost on the wire.
fn tags_bytes(tags: &BTreeMap<Box<str>, Box<str>>) -> usize {
    tags.iter().map(|(k, v)| k.len() + v.len() + 2).sum()
}

/// Whether `tags` may be carried: named, printable, within [`MAX_TAGS_BYTES`].
pub fn check_tags(tags: &BTreeMap<Box<str>, Box<str>>) -> Result<(), TagsError> {
    for (k, v) in tags {
        if k.is_empty() {
            return Err(TagsError::EmptyKey);
        }
        if k.contains(|c: char| c == '=' || c.is_control()) {
            return Err(TagsError::BadKey(k.to_string()));
        }
        if v.contains(char::is_control) {
            return Err(TagsError::BadValue(k.to_string()));
        }
    }
    match tags_bytes(tags) {
        bytes if bytes > MAX_TAGS_BYTES => Err(TagsError::TooLarge { bytes }),
        _ => Ok(()),
    }
}

/// A claim about a member: a rumour gossiped, piggybacked or synced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Update {
    #[serde(rename = "id")]
    pub id: NodeId,
    #[serde(rename = "i")]
    pub inc: Incarnation,
    #[serde(rename = "s")]
    pub status: Status,
    /// The member's metadata (only alive claims carry it).
    #[serde(rename = "m", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Arc<Meta>>,
    /// Who suspects or declared it dead (Lifeguard counts independent
    /// suspicions by it).
    #[serde(rename = "f", default, skip_serializing_if = "Option::is_none")]
    pub from: Option<NodeId>,
    /// The member's own signature over the claim ([`Update::signed_bytes`]),
    /// for a member with a key: relayed with it, unchanged.
    #[serde(rename = "g", default, skip_serializing_if = "Option::is_none")]
    pub sig: Option<Sig>,
}

impl Update {
    /// Rough encoded size, for packing rumours into one message.
    pub fn size(&self) -> usize {
        40 + self.id.as_str().len()
            + self.meta.as_ref().map_or(0, |m| m.size())
            + self.from.as_ref().map_or(0, |f| f.as_str().len() + 6)
            + self.sig.map_or(0, |_| 68)
    }

    /// What a member signs of a claim about itself: the member, the
    /// incarnation, the status, and for an alive claim the metadata (not
    /// who relays it; relays carry metadata only on alive claims).
    pub fn signed_bytes(&self) -> Vec<u8> {
        fn text(b: &mut Vec<u8>, t: Option<&str>) {
            match t {
                None => b.push(0),
                Some(t) => {
                    b.push(1);
                    b.extend_from_slice(&(t.len() as u32).to_be_bytes());
                    b.extend_from_slice(t.as_bytes());
                }
            }
        }
        let mut b = Vec::with_capacity(128);
        b.extend_from_slice(b"hearsay claim 1\0");
        text(&mut b, Some(self.id.as_str()));
        b.extend_from_slice(&self.inc.epoch.0.to_be_bytes());
        b.extend_from_slice(&self.inc.n.to_be_bytes());
        b.push(self.status.rank());
        match self.meta.as_ref().filter(|_| self.status == Status::Alive) {
            None => b.push(0),
            Some(m) => {
                b.push(1);
                text(&mut b, m.addr.as_deref());
                text(&mut b, m.zone.as_deref());
                b.extend_from_slice(&(m.tags.len() as u32).to_be_bytes());
                for (k, v) in &m.tags {
                    text(&mut b, Some(k));
                    text(&mut b, Some(v));
                }
                match &m.key {
                    None => b.push(0),
                    Some(k) => {
                        b.push(1);
                        b.extend_from_slice(&k.0);
                    }
                }
            }
        }
        b
    }

    /// Signed by `key`?
    pub fn signed_by(&self, key: &Bytes<32>) -> bool {
        let Some(sig) = &self.sig else {
            return false;
        };
        let Ok(k) = ed25519_dalek::VerifyingKey::from_bytes(&key.0) else {
            return false;
        };
        k.verify_strict(
            &self.signed_bytes(),
            &ed25519_dalek::Signature::from_bytes(&sig.0),
        )
        .is_ok()
    }

    /// Well-formed enough to consider at all (names are checked on decode).
    pub fn valid(&self) -> bool {
        self.meta.as_ref().is_none_or(|m| m.valid())
    }
}

/// Does a claim `(inc, status)` override what is known, `(known, was)`?
/// The one precedence rule: a higher incarnation wins; at the same
/// incarnation the more final status wins (SWIM §4.2); nothing about an
/// older life matters.
pub fn overrides(inc: Incarnation, status: Status, known: Incarnation, was: Status) -> bool {
    match inc.cmp(&known) {
        Ordering::Greater => true,
        Ordering::Less => false,
        Ordering::Equal => status.rank() > was.rank(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inc(e: u64, n: u32) -> Incarnation {
        Incarnation::new(Epoch(e), n)
    }

    #[test]
    fn precedence_follows_swim_4_2() {
        use Status::*;
        // SWIM §4.2: {Suspect Mj, i} overrides {Alive Mj, i'} for i >= i'.
        assert!(overrides(inc(1, 3), Suspect, inc(1, 3), Alive));
        assert!(overrides(inc(1, 4), Suspect, inc(1, 3), Alive));
        assert!(!overrides(inc(1, 2), Suspect, inc(1, 3), Alive));
        // {Alive Mj, i} overrides {Suspect Mj, i'} only for i > i'.
        assert!(overrides(inc(1, 4), Alive, inc(1, 3), Suspect));
        assert!(!overrides(inc(1, 3), Alive, inc(1, 3), Suspect));
        // {Confirm Mj} overrides alive and suspect at the same incarnation.
        assert!(overrides(inc(1, 3), Dead, inc(1, 3), Suspect));
        assert!(overrides(inc(1, 3), Dead, inc(1, 3), Alive));
        // A dead member refutes only with a higher incarnation.
        assert!(!overrides(inc(1, 3), Alive, inc(1, 3), Dead));
        assert!(overrides(inc(1, 4), Alive, inc(1, 3), Dead));
        // A new life beats everything about the old one, whatever counters.
        assert!(overrides(inc(2, 0), Alive, inc(1, 99), Left));
        assert!(!overrides(inc(1, 99), Alive, inc(2, 0), Dead));
        // Repeating a claim changes nothing.
        for s in [Alive, Suspect, Dead, Left] {
            assert!(!overrides(inc(1, 1), s, inc(1, 1), s));
        }
    }

    #[test]
    fn a_signature_survives_relaying_and_covers_what_relays_keep() {
        use ed25519_dalek::Signer;
        let k = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
        let key = Bytes(k.verifying_key().to_bytes());
        let meta = Arc::new(Meta {
            addr: Some("10.0.0.1:7946".into()),
            key: Some(key),
            ..Meta::default()
        });
        let signed = |status| {
            let mut u = Update {
                id: NodeId::new("n1"),
                inc: inc(7, 2),
                status,
                meta: Some(meta.clone()),
                from: None,
                sig: None,
            };
            u.sig = Some(Bytes(k.sign(&u.signed_bytes()).to_bytes()));
            u
        };
        // A leave is relayed without metadata (as every non-alive claim).
        let mut left = signed(Status::Left);
        left.meta = None;
        left.from = Some(NodeId::new("relay"));
        assert!(left.signed_by(&key));
        // An alive claim covers its metadata: another address is not it.
        let alive = signed(Status::Alive);
        assert!(alive.signed_by(&key));
        let mut moved = alive.clone();
        moved.meta = Some(Arc::new(Meta {
            addr: Some("mallory:1".into()),
            ..(*meta).clone()
        }));
        assert!(!moved.signed_by(&key));
        let mut bumped = alive.clone();
        bumped.inc = inc(7, 3);
        assert!(!bumped.signed_by(&key));
        // On both wires.
        let back: Update = serde_json::from_str(&serde_json::to_string(&alive).unwrap()).unwrap();
        assert!(back.signed_by(&key));
    }

    #[test]
    fn updates_are_compact_on_the_wire() {
        let u = Update {
            id: NodeId::new("n1"),
            inc: inc(7, 2),
            status: Status::Suspect,
            meta: None,
            from: Some(NodeId::new("n2")),
            sig: None,
        };
        let text = serde_json::to_string(&u).unwrap();
        assert_eq!(text, r#"{"id":"n1","i":[7,2],"s":"s","f":"n2"}"#);
        assert_eq!(serde_json::from_str::<Update>(&text).unwrap(), u);
    }
}
