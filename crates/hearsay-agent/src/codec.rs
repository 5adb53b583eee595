//! The datagram format: a versioned JSON envelope naming the cluster, the
//! sender and its address, with several cluster messages packed in one
//! datagram up to [`MAX_DATAGRAM`] bytes. Decoding never panics and refuses
//! other versions, other clusters and oversized input.

use hearsay_core::cluster::ClusterMsg;
use serde::{Deserialize, Serialize};

pub const VERSION: u32 = 1;
/// Packed datagrams stay under a common path MTU; a single larger message
/// (a state sync of a big cluster) goes alone, up to [`MAX_INPUT`].
pub const MAX_DATAGRAM: usize = 1400;
/// The largest datagram accepted.
pub const MAX_INPUT: usize = 60 * 1024;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Envelope {
    pub v: u32,
    /// Cluster name: a member of another cluster is refused.
    pub c: String,
    /// Sender's name and address (where to answer).
    pub f: String,
    pub a: String,
    /// Asks the receiver to answer with an empty envelope (how a joiner
    /// learns a seed's name from its address).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub who: bool,
    pub m: Vec<ClusterMsg>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    TooLarge,
    Malformed,
    Version(u32),
    OtherCluster,
}

pub fn decode(bytes: &[u8], cluster: &str) -> Result<Envelope, Refused> {
    if bytes.len() > MAX_INPUT {
        return Err(Refused::TooLarge);
    }
    let e: Envelope = serde_json::from_slice(bytes).map_err(|_| Refused::Malformed)?;
    if e.v != VERSION {
        return Err(Refused::Version(e.v));
    }
    if e.c != cluster {
        return Err(Refused::OtherCluster);
    }
    Ok(e)
}

/// A datagram with no messages (a `who` question or its answer).
pub fn empty(head: &Envelope) -> Vec<u8> {
    serde_json::to_vec(head).unwrap_or_default()
}

/// Packs `msgs` into as few datagrams as fit in [`MAX_DATAGRAM`] (a
/// message too big for one goes alone).
pub fn encode(head: &Envelope, msgs: Vec<ClusterMsg>) -> Vec<Vec<u8>> {
    let frame = |m: Vec<ClusterMsg>| {
        serde_json::to_vec(&Envelope { m, ..head.clone() }).unwrap_or_default()
    };
    let mut out = Vec::new();
    let mut cur: Vec<ClusterMsg> = Vec::new();
    let mut cur_len = frame(Vec::new()).len();
    for m in msgs {
        let len = serde_json::to_vec(&m).map_or(0, |v| v.len()) + 1;
        if !cur.is_empty() && cur_len + len > MAX_DATAGRAM {
            out.push(frame(std::mem::take(&mut cur)));
            cur_len = frame(Vec::new()).len();
        }
        cur_len += len;
        cur.push(m);
    }
    if !cur.is_empty() || head.who {
        out.push(frame(cur));
    }
    out.retain(|d| !d.is_empty() && d.len() <= MAX_INPUT);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head() -> Envelope {
        Envelope {
            v: VERSION,
            c: "c1".into(),
            f: "n1".into(),
            a: "127.0.0.1:1".into(),
            who: false,
            m: vec![],
        }
    }

    #[test]
    fn bad_datagrams_are_refused_never_panicking() {
        assert_eq!(decode(b"", "c1").unwrap_err(), Refused::Malformed);
        assert_eq!(
            decode(b"\xff\x00garbage", "c1").unwrap_err(),
            Refused::Malformed
        );
        assert_eq!(
            decode(&vec![b' '; MAX_INPUT + 1], "c1").unwrap_err(),
            Refused::TooLarge
        );
        let mut h = head();
        h.v = 2;
        let d = serde_json::to_vec(&h).unwrap();
        assert_eq!(decode(&d, "c1").unwrap_err(), Refused::Version(2));
        let d = serde_json::to_vec(&head()).unwrap();
        assert_eq!(decode(&d, "other").unwrap_err(), Refused::OtherCluster);
        assert!(decode(&d, "c1").is_ok());
        let truncated = &d[..d.len() / 2];
        assert_eq!(decode(truncated, "c1").unwrap_err(), Refused::Malformed);
    }

    proptest::proptest! {
        /// Arbitrary bytes never panic the decoder.
        #[test]
        fn arbitrary_bytes_are_refused_or_decoded(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
            let _ = decode(&bytes, "c1");
        }

        /// Random printable input shaped like JSON neither.
        #[test]
        fn json_like_text_never_panics(text in "[{}\\[\\]\",:0-9a-z ]{0,400}") {
            let _ = decode(text.as_bytes(), "c1");
        }
    }
}
