//! The datagram format. A 6-byte header (a mark and the format version in
//! one byte, a flag byte saying whether the rest is sealed, a 32-bit hash
//! of the cluster name), then a MessagePack envelope naming the sender (and its address
//! when it is not the datagram's source), with several cluster messages
//! packed per datagram up to [`MAX_DATAGRAM`] bytes. Sealed datagrams
//! carry `nonce | XChaCha20-Poly1305(envelope)` with the header and the
//! whole cluster name as associated data, so a datagram of another cluster
//! or with a wrong key fails authentication even if the hashes collide. Decoding never panics
//! and refuses other versions, other clusters, oversized input, clear text
//! when keys are set, and anything that does not decode.

use crate::keyring::{Keyring, OVERHEAD};
use hearsay_core::cluster::{ClusterMsg, Payload};
use hearsay_core::id::Epoch;
use hearsay_core::wire::Msg;
use serde::{Deserialize, Serialize};

/// The first byte of every datagram and stream frame is `MARK | VERSION`:
/// the high nibble tells hearsay's datagrams from stray input, the low one
/// the format version, in one byte because every packet pays for it.
pub const MARK: u8 = 0xa0;
pub const VERSION: u8 = 5;
const HEADER: usize = 6;
const CLEAR: u8 = 0;
const SEALED: u8 = 1;
/// Packed datagrams stay under a common path MTU; a single larger message
/// (a state sync of a big cluster) goes alone, on a stream.
pub const MAX_DATAGRAM: usize = 1400;
/// The largest datagram accepted.
pub const MAX_INPUT: usize = 60 * 1024;
/// The largest frame a stream may carry (a datagram too large for
/// [`MAX_DATAGRAM`] goes as a stream instead).
pub const MAX_STREAM: usize = 4 * 1024 * 1024;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Datagram {
    /// Sender's name.
    pub f: String,
    /// Where to answer, when not the datagram's source (`--advertise`);
    /// empty otherwise, which saves every datagram the bytes.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub a: String,
    /// Asks the receiver to answer with an empty envelope (how a joiner
    /// learns a seed's name from its address).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub who: bool,
    /// The sender's life, and the receiver's as the sender knows it (0: not
    /// known yet): the node's envelope, once per datagram for all of `m`.
    /// A datagram of membership messages only states neither (SWIM tells
    /// lives apart by incarnations): 22 bytes saved on most datagrams.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub e: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub t: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub m: Vec<Msg<Payload>>,
    /// Key-value replication, beside the cluster's own messages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kv: Vec<crate::KvMsg>,
    /// A cluster-wide keyring change, or a member's answer to one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kq: Option<crate::keys::KeyQuery>,
    /// A reachability probe, or its answer. Agents that predate it ignore
    /// it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rq: Option<crate::reach::Reach>,
    /// A query, or an acknowledgement or answer of one. Agents that
    /// predate it ignore it (the asker reports them as silent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qy: Option<crate::query::QueryMsg>,
    /// A message to this member alone. Agents that predate it ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dm: Option<crate::query::Direct>,
    /// The application's state (see [`crate::query::AppState`]). Agents
    /// that predate it ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub st: Option<crate::query::AppState>,
    /// Why the sender will not take the receiver in (its name is held by
    /// another live member); empty otherwise. Agents that predate it
    /// ignore it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub x: String,
}

impl From<&str> for Datagram {
    /// An empty datagram from `sender`.
    fn from(sender: &str) -> Datagram {
        Datagram {
            f: sender.into(),
            a: String::new(),
            who: false,
            e: 0,
            t: 0,
            m: vec![],
            kv: vec![],
            kq: None,
            rq: None,
            qy: None,
            dm: None,
            st: None,
            x: String::new(),
        }
    }
}

fn is_zero(x: &u64) -> bool {
    *x == 0
}

impl Datagram {
    /// The cluster messages, each in the node's envelope.
    pub fn messages(&mut self) -> impl Iterator<Item = ClusterMsg> + '_ {
        let (e, t) = (Epoch(self.e), Epoch(self.t));
        self.m.drain(..).map(move |m| ClusterMsg::new(e, t, m))
    }
}

/// Why a datagram was dropped (the label of its metric).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    TooLarge,
    Malformed,
    Version(u8),
    OtherCluster,
    /// Sealed, and no installed key opens it (or this agent has no keys).
    Decrypt,
    /// Clear text arriving at an agent that has keys.
    Unencrypted,
    /// A stream beyond the number read at once.
    Busy,
}

impl Refused {
    pub const LABELS: [&'static str; 7] = [
        "oversized",
        "malformed",
        "version",
        "other-cluster",
        "decrypt",
        "unencrypted",
        "busy",
    ];

    pub fn label(self) -> &'static str {
        Self::LABELS[self.index()]
    }

    /// Why a datagram from a seed was refused, as a joiner explains its
    /// silence to the operator.
    pub fn reason(self) -> &'static str {
        match self {
            Refused::OtherCluster => "another --cluster",
            Refused::Decrypt => "sealed with a key this agent does not have: another --key",
            Refused::Unencrypted => "not encrypted, and this agent has a --key",
            Refused::Version(_) => "another protocol version of hearsay",
            Refused::TooLarge => "oversized",
            Refused::Malformed => "malformed",
            Refused::Busy => "too many streams at once",
        }
    }

    /// The sender is configured for another cluster, key or version (not
    /// broken input): worth telling it.
    pub fn sender_misconfigured(self) -> bool {
        matches!(
            self,
            Refused::OtherCluster | Refused::Decrypt | Refused::Unencrypted | Refused::Version(_)
        )
    }

    pub fn index(self) -> usize {
        match self {
            Refused::TooLarge => 0,
            Refused::Malformed => 1,
            Refused::Version(_) => 2,
            Refused::OtherCluster => 3,
            Refused::Decrypt => 4,
            Refused::Unencrypted => 5,
            Refused::Busy => 6,
        }
    }
}

/// FNV-1a of the cluster name: four bytes per datagram instead of the name.
fn cluster_hash(name: &str) -> u32 {
    name.bytes().fold(0x811c_9dc5, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// Encodes and decodes one agent's datagrams.
#[derive(Clone, Debug)]
pub struct Codec {
    pub cluster: String,
    pub keys: Keyring,
}

impl Codec {
    fn header(&self) -> [u8; HEADER] {
        let flag = if self.keys.is_empty() { CLEAR } else { SEALED };
        let h = cluster_hash(&self.cluster).to_be_bytes();
        [MARK | VERSION, flag, h[0], h[1], h[2], h[3]]
    }

    fn aad(&self, header: &[u8]) -> Vec<u8> {
        [header, self.cluster.as_bytes()].concat()
    }

    pub fn decode(&self, bytes: &[u8]) -> Result<Datagram, Refused> {
        self.decode_up_to(bytes, MAX_INPUT)
    }

    /// A frame read off a stream.
    pub fn decode_stream(&self, bytes: &[u8]) -> Result<Datagram, Refused> {
        self.decode_up_to(bytes, MAX_STREAM)
    }

    fn decode_up_to(&self, bytes: &[u8], max: usize) -> Result<Datagram, Refused> {
        if bytes.len() > max {
            return Err(Refused::TooLarge);
        }
        let Some(&first) = bytes.first().filter(|b| *b & 0xf0 == MARK) else {
            return Err(Refused::Malformed);
        };
        // Before the length: another version may have another header.
        if first & 0x0f != VERSION {
            return Err(Refused::Version(first & 0x0f));
        }
        if bytes.len() < HEADER {
            return Err(Refused::Malformed);
        }
        let (header, body) = bytes.split_at(HEADER);
        if header[2..] != cluster_hash(&self.cluster).to_be_bytes() {
            return Err(Refused::OtherCluster);
        }
        let plain;
        let body = match header[1] {
            CLEAR if !self.keys.is_empty() => return Err(Refused::Unencrypted),
            CLEAR => body,
            SEALED => {
                plain = self
                    .keys
                    .open(body, &self.aad(header))
                    .ok_or(Refused::Decrypt)?;
                &plain[..]
            }
            _ => return Err(Refused::Malformed),
        };
        rmp_serde::from_slice(body).map_err(|_| Refused::Malformed)
    }

    /// One envelope as one datagram; `None` if it does not fit.
    pub fn datagram(&self, env: &Datagram) -> Option<Vec<u8>> {
        self.frame(env).filter(|d| d.len() <= MAX_DATAGRAM)
    }

    /// The whole frame, of any size up to [`MAX_STREAM`]: one over
    /// [`MAX_DATAGRAM`] goes on a stream.
    pub fn frame(&self, env: &Datagram) -> Option<Vec<u8>> {
        let plain = rmp_serde::to_vec_named(env).ok()?;
        let header = self.header();
        let mut out = header.to_vec();
        if self.keys.is_empty() {
            out.extend_from_slice(&plain);
        } else {
            out.extend_from_slice(&self.keys.seal(&plain, &self.aad(&header))?);
        }
        (out.len() <= MAX_STREAM).then_some(out)
    }

    /// A datagram with no messages (a `who` question or its answer).
    pub fn empty(&self, head: &Datagram) -> Vec<u8> {
        self.frame(&Datagram {
            m: vec![],
            ..head.clone()
        })
        .unwrap_or_default()
    }

    /// One frame per key-value message (a full state goes alone, and
    /// streamed when larger than a datagram); one larger than
    /// [`MAX_STREAM`] is dropped and logged.
    pub fn encode_kv(&self, head: &Datagram, msgs: Vec<crate::KvMsg>) -> Vec<Vec<u8>> {
        msgs.into_iter()
            .filter_map(|m| {
                let d = self.frame(&Datagram {
                    m: vec![],
                    kv: vec![m],
                    ..head.clone()
                });
                if d.is_none() {
                    tracing::warn!("a key-value message did not fit in a datagram");
                }
                d
            })
            .collect()
    }

    /// Packs `msgs` (all to one member) into as few datagrams as fit in
    /// [`MAX_DATAGRAM`] (a message too big for one goes alone, and the
    /// sender streams it). The envelopes' epochs go once per datagram.
    pub fn encode(&self, head: &Datagram, msgs: Vec<ClusterMsg>) -> Vec<Vec<u8>> {
        let membership_only = msgs.iter().all(|m| matches!(m.msg, Msg::Mem(_)));
        let (e, t) = match msgs.first() {
            Some(_) if membership_only => (0, 0),
            Some(m) => (m.epoch.0, m.to.0),
            None => (head.e, head.t),
        };
        let head = &Datagram {
            e,
            t,
            ..head.clone()
        };
        let msgs: Vec<Msg<Payload>> = msgs.into_iter().map(|env| env.msg).collect();
        if msgs.is_empty() && !head.who {
            return Vec::new();
        }
        // Most flushes are one datagram's worth: encode once.
        let whole = Datagram {
            m: msgs,
            ..head.clone()
        };
        let msgs = match self.frame(&whole) {
            Some(d) if d.len() <= MAX_DATAGRAM || whole.m.len() == 1 => return vec![d],
            _ => whole.m,
        };
        let empty = Datagram {
            m: vec![],
            ..head.clone()
        };
        let fixed = HEADER
            + rmp_serde::to_vec_named(&empty).map_or(0, |v| v.len())
            + if self.keys.is_empty() { 0 } else { OVERHEAD }
            // The empty envelope leaves out `m`: its key (2 bytes), its
            // array length (up to 3) and a larger map length.
            + 8;
        let mut out = Vec::new();
        let mut cur: Vec<Msg<Payload>> = Vec::new();
        let mut cur_len = fixed;
        let mut flush = |cur: &mut Vec<Msg<Payload>>| {
            let env = Datagram {
                m: std::mem::take(cur),
                ..head.clone()
            };
            if let Some(d) = self.frame(&env) {
                out.push(d);
            }
        };
        for m in msgs {
            let len = rmp_serde::to_vec_named(&m).map_or(0, |v| v.len());
            if !cur.is_empty() && cur_len + len > MAX_DATAGRAM {
                flush(&mut cur);
                cur_len = fixed;
            }
            cur_len += len;
            cur.push(m);
        }
        if !cur.is_empty() || head.who {
            flush(&mut cur);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyring::Key;
    use hearsay_core::cluster::ClusterMsg;

    fn head() -> Datagram {
        Datagram {
            f: "n1".into(),
            a: "127.0.0.1:1".into(),
            who: false,
            e: 1,
            t: 0,
            m: vec![],
            kv: vec![],
            kq: None,
            rq: None,
            qy: None,
            dm: None,
            st: None,
            x: String::new(),
        }
    }

    fn codec(keys: Vec<Key>) -> Codec {
        Codec {
            cluster: "c1".into(),
            keys: Keyring::new(keys),
        }
    }

    fn some_msgs(n: usize) -> Vec<ClusterMsg> {
        // Real messages from a real machine: a cluster node's join pings.
        use hearsay_core::cluster::{ClusterConfig, ClusterNode};
        use hearsay_core::id::NodeId;
        use hearsay_core::outbox::Outbox;
        use hearsay_core::time::Instant;
        let mut node = ClusterNode::new(
            ClusterConfig::default(),
            NodeId::new("n1"),
            Epoch(1),
            Default::default(),
            1,
        )
        .unwrap();
        let peers: Vec<NodeId> = (0..n).map(|i| NodeId::new(format!("p{i}"))).collect();
        let mut out = Outbox::default();
        node.join(Instant::from_micros(0), &peers, &mut out);
        out.drain().map(|(_, m)| m).take(n).collect()
    }

    #[test]
    fn bad_datagrams_are_refused_never_panicking() {
        let c = codec(vec![]);
        assert_eq!(c.decode(b"").unwrap_err(), Refused::Malformed);
        assert_eq!(
            c.decode(b"\xff\x00garbage").unwrap_err(),
            Refused::Malformed
        );
        assert_eq!(
            c.decode(&vec![b' '; MAX_INPUT + 1]).unwrap_err(),
            Refused::TooLarge
        );
        let d = c.empty(&head());
        assert!(c.decode(&d).is_ok());
        let mut v9 = d.clone();
        v9[0] = MARK | 9;
        assert_eq!(c.decode(&v9).unwrap_err(), Refused::Version(9));
        assert_eq!(c.decode(&[MARK | 9]).unwrap_err(), Refused::Version(9));
        let other = Codec {
            cluster: "other".into(),
            ..c.clone()
        };
        assert_eq!(other.decode(&d).unwrap_err(), Refused::OtherCluster);
        let truncated = &d[..d.len() / 2];
        assert_eq!(c.decode(truncated).unwrap_err(), Refused::Malformed);
    }

    #[test]
    fn a_refusal_travels_and_an_envelope_without_one_costs_nothing() {
        let c = codec(vec![]);
        let plain = c.empty(&head());
        assert_eq!(c.decode(&plain).unwrap().x, "");
        let no = Datagram {
            x: "the name n1 is held".into(),
            ..head()
        };
        let refused = c.empty(&no);
        assert_eq!(c.decode(&refused).unwrap().x, "the name n1 is held");
        // Left out when empty: an envelope is as long as before the field.
        assert_eq!(refused.len() - plain.len(), 2 + no.x.len() + 1);
    }

    #[test]
    fn sealed_datagrams_need_a_right_key_and_the_right_cluster() {
        let k = Key::generate();
        let a = codec(vec![k.clone()]);
        let d = a.encode(&head(), some_msgs(3));
        assert_eq!(d.len(), 1);
        assert_eq!(a.decode(&d[0]).unwrap().m.len(), 3);
        let wrong = codec(vec![Key::generate()]);
        assert_eq!(wrong.decode(&d[0]).unwrap_err(), Refused::Decrypt);
        let clear = codec(vec![]);
        assert_eq!(clear.decode(&d[0]).unwrap_err(), Refused::Decrypt);
        assert_eq!(
            a.decode(&clear.empty(&head())).unwrap_err(),
            Refused::Unencrypted
        );
        // Same key, other cluster: refused by the name's hash, and the name
        // itself is authenticated (a hash collision still fails to open).
        let other = Codec {
            cluster: "c2".into(),
            ..a.clone()
        };
        assert_eq!(other.decode(&d[0]).unwrap_err(), Refused::OtherCluster);
        let mut forged = d[0].clone();
        forged[2..6].copy_from_slice(&cluster_hash("c2").to_be_bytes());
        assert_eq!(other.decode(&forged).unwrap_err(), Refused::Decrypt);
    }

    #[test]
    fn packing_keeps_datagrams_under_the_mtu() {
        for keys in [vec![], vec![Key::generate()]] {
            let c = codec(keys);
            let msgs = some_msgs(200);
            let n = msgs.len();
            let ds = c.encode(&head(), msgs);
            assert!(ds.len() > 1, "{n} messages should need several datagrams");
            let mut total = 0;
            for d in &ds {
                assert!(d.len() <= MAX_DATAGRAM, "{} bytes", d.len());
                total += c.decode(d).unwrap().m.len();
            }
            assert_eq!(total, n);
        }
    }

    proptest::proptest! {
        /// Arbitrary bytes never panic the decoder, with or without keys.
        #[test]
        fn arbitrary_bytes_are_refused_or_decoded(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
            let _ = codec(vec![]).decode(&bytes);
            let _ = codec(vec![Key::generate()]).decode(&bytes);
        }

        /// Arbitrary bytes after a valid clear header reach the MessagePack
        /// decoder, which must refuse them cleanly too.
        #[test]
        fn arbitrary_bodies_never_panic(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
            let mut d = vec![MARK | VERSION, 0];
            d.extend(cluster_hash("c1").to_be_bytes());
            d.extend(body);
            let _ = codec(vec![]).decode(&d);
        }
    }
}
