//! The datagram format. A 4-byte header (`hs`, the format version, a flag
//! byte saying whether the rest is sealed), then a MessagePack envelope
//! naming the cluster, the sender and its address, with several cluster
//! messages packed per datagram up to [`MAX_DATAGRAM`] bytes. Sealed
//! datagrams carry `nonce | XChaCha20-Poly1305(envelope)` with the header
//! and the cluster name as associated data, so a datagram of another
//! cluster or with a wrong key fails authentication. Decoding never panics
//! and refuses other versions, other clusters, oversized input, clear text
//! when keys are set, and anything that does not decode.

use crate::keyring::{Keyring, OVERHEAD};
use hearsay_core::cluster::ClusterMsg;
use serde::{Deserialize, Serialize};

pub const MAGIC: [u8; 2] = *b"hs";
pub const VERSION: u8 = 2;
const HEADER: usize = 4;
const CLEAR: u8 = 0;
const SEALED: u8 = 1;
/// Packed datagrams stay under a common path MTU; a single larger message
/// (a state sync of a big cluster) goes alone, on a stream.
pub const MAX_DATAGRAM: usize = 1400;
/// The largest datagram accepted.
pub const MAX_INPUT: usize = 60 * 1024;
/// The largest frame a stream may carry (a datagram too large for
/// [`MAX_DATAGRAM`] goes as a stream instead).
pub const MAX_STREAM: usize = 8 * 1024 * 1024;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Envelope {
    /// Cluster name: a member of another cluster is refused.
    pub c: String,
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
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub m: Vec<ClusterMsg>,
    /// Key-value replication, beside the cluster's own messages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kv: Vec<crate::kv::KvMsg>,
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
}

impl Refused {
    pub const LABELS: [&'static str; 6] = [
        "oversized",
        "malformed",
        "version",
        "other-cluster",
        "decrypt",
        "unencrypted",
    ];

    pub fn label(self) -> &'static str {
        Self::LABELS[self.index()]
    }

    pub fn index(self) -> usize {
        match self {
            Refused::TooLarge => 0,
            Refused::Malformed => 1,
            Refused::Version(_) => 2,
            Refused::OtherCluster => 3,
            Refused::Decrypt => 4,
            Refused::Unencrypted => 5,
        }
    }
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
        [MAGIC[0], MAGIC[1], VERSION, flag]
    }

    fn aad(&self, header: &[u8]) -> Vec<u8> {
        [header, self.cluster.as_bytes()].concat()
    }

    pub fn decode(&self, bytes: &[u8]) -> Result<Envelope, Refused> {
        self.decode_up_to(bytes, MAX_INPUT)
    }

    /// A frame read off a stream.
    pub fn decode_stream(&self, bytes: &[u8]) -> Result<Envelope, Refused> {
        self.decode_up_to(bytes, MAX_STREAM)
    }

    fn decode_up_to(&self, bytes: &[u8], max: usize) -> Result<Envelope, Refused> {
        if bytes.len() > max {
            return Err(Refused::TooLarge);
        }
        if bytes.len() < HEADER || bytes[..2] != MAGIC {
            return Err(Refused::Malformed);
        }
        if bytes[2] != VERSION {
            return Err(Refused::Version(bytes[2]));
        }
        let (header, body) = bytes.split_at(HEADER);
        let plain;
        let body = match header[3] {
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
        let e: Envelope = rmp_serde::from_slice(body).map_err(|_| Refused::Malformed)?;
        if e.c != self.cluster {
            return Err(Refused::OtherCluster);
        }
        Ok(e)
    }

    fn frame(&self, env: &Envelope) -> Option<Vec<u8>> {
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
    pub fn empty(&self, head: &Envelope) -> Vec<u8> {
        self.frame(&Envelope {
            m: vec![],
            ..head.clone()
        })
        .unwrap_or_default()
    }

    /// One frame per key-value message (a full state goes alone, and
    /// streamed when larger than a datagram); one larger than
    /// [`MAX_STREAM`] is dropped and logged.
    pub fn encode_kv(&self, head: &Envelope, msgs: Vec<crate::kv::KvMsg>) -> Vec<Vec<u8>> {
        msgs.into_iter()
            .filter_map(|m| {
                let d = self.frame(&Envelope {
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

    /// Packs `msgs` into as few datagrams as fit in [`MAX_DATAGRAM`] (a
    /// message too big for one goes alone, and the sender streams it).
    pub fn encode(&self, head: &Envelope, msgs: Vec<ClusterMsg>) -> Vec<Vec<u8>> {
        let empty = Envelope {
            m: vec![],
            ..head.clone()
        };
        let fixed = HEADER
            + rmp_serde::to_vec_named(&empty).map_or(0, |v| v.len())
            + if self.keys.is_empty() { 0 } else { OVERHEAD }
            // The array length grows from one byte to three past 15 items.
            + 2;
        let mut out = Vec::new();
        let mut cur: Vec<ClusterMsg> = Vec::new();
        let mut cur_len = fixed;
        let mut flush = |cur: &mut Vec<ClusterMsg>| {
            let env = Envelope {
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

    fn head() -> Envelope {
        Envelope {
            c: "c1".into(),
            f: "n1".into(),
            a: "127.0.0.1:1".into(),
            who: false,
            m: vec![],
            kv: vec![],
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
        use hearsay_core::cluster::{ClusterConfig, ClusterNode, ClusterOut};
        use hearsay_core::id::{Epoch, NodeId};
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
        let mut out = ClusterOut::default();
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
        let mut v3 = d.clone();
        v3[2] = 3;
        assert_eq!(c.decode(&v3).unwrap_err(), Refused::Version(3));
        let other = Codec {
            cluster: "other".into(),
            ..c.clone()
        };
        assert_eq!(other.decode(&d).unwrap_err(), Refused::OtherCluster);
        let truncated = &d[..d.len() / 2];
        assert_eq!(c.decode(truncated).unwrap_err(), Refused::Malformed);
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
        // Same key, other cluster: the name is authenticated.
        let other = Codec {
            cluster: "c2".into(),
            ..a.clone()
        };
        assert_eq!(other.decode(&d[0]).unwrap_err(), Refused::Decrypt);
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
            let mut d = vec![b'h', b's', VERSION, 0];
            d.extend(body);
            let _ = codec(vec![]).decode(&d);
        }
    }
}
