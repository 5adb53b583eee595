//! hearsay's binary wire, one crate for every shell that puts messages on
//! a network, real or simulated: the agent sends exactly what the
//! simulator counts.
//!
//! - [`codec`]: a versioned header, a MessagePack [`codec::Datagram`]
//!   naming the sender and carrying the node's messages (several packed per
//!   datagram under a path MTU), sealed with the [`keyring`]'s primary key;
//!   decoding never panics and says why it refused.
//! - [`keyring`]: gossip keys (XChaCha20-Poly1305), rotated without downtime.
//! - [`keys`]: the keyring changes members ask of each other.
//! - [`query`]: queries (`hearsay query`), their acknowledgements and answers.
//!
//! ```
//! use hearsay_core::cluster::{ClusterConfig, ClusterNode};
//! use hearsay_core::id::{Epoch, NodeId};
//! use hearsay_core::outbox::Outbox;
//! use hearsay_core::time::Instant;
//! use hearsay_wire::codec::{Codec, Datagram};
//! use hearsay_wire::keyring::{Key, Keyring};
//!
//! let mut a = ClusterNode::new(ClusterConfig::default(), NodeId::new("a"), Epoch(1), Default::default(), 1)?;
//! let mut out = Outbox::default();
//! a.join(Instant::ZERO, &[NodeId::new("b")], &mut out);
//! let codec = Codec { cluster: "c".into(), keys: Keyring::new(vec![Key::generate()]) };
//! let msgs: Vec<_> = out.drain().map(|(_, m)| m).collect();
//! let bytes = codec.encode(&Datagram::from("a"), msgs);
//! let mut back = codec.decode(&bytes[0]).expect("our own datagram");
//! assert_eq!(back.f, "a");
//! assert_eq!(back.messages().count(), 1);
//! # Ok::<(), hearsay_core::cluster::ClusterError>(())
//! ```

pub mod codec;
pub mod keyring;
pub mod keys;
pub mod query;
pub mod reach;

/// Key-value replication messages (the agent's replicated map).
pub use hearsay_core::crdt::kv::KvMsg;
