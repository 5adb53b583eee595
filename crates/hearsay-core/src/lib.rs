//! Sans-IO protocol state machines for hearsay.
//!
//! Every machine here is a plain struct: inputs in, messages out. Nothing in
//! this crate reads a clock, opens a socket, spawns a thread or draws from an
//! unseeded RNG, so the same code runs unchanged inside a Maelstrom node
//! process, a networked agent and the deterministic simulator.
//!
//! Layers, bottom up: [`id`] (stable names, epochs), [`membership`] (who
//! is in: Maelstrom's fixed list or SWIM), [`overlay`] (graphs over the
//! view), [`link`] (reliable batched sessions per peer),
//! [`dissemination`] (the seven broadcast strategies, and the store they
//! replicate), [`crdt`], [`wire`] (the one envelope), [`outbox`], and
//! [`node`], which routes each input to the machine that owns it, over
//! either membership. [`cluster::ClusterNode`] is the node for
//! applications that broadcast bytes (the agent, `hearsay sim`);
//! [`query`] gathers answers from members.
//!
//! The contract shared by every machine:
//! - `handle(now, input, out)` consumes one input at time `now` (which never
//!   goes backwards) and appends the messages to send to `out`;
//! - `next_deadline()` says when the shell must call `handle` again with a
//!   tick; extra ticks are harmless;
//! - peer input never panics: malformed or stale input is dropped and counted.
//!
//! ```
//! use hearsay_core::dissemination::Config;
//! use hearsay_core::id::{Epoch, NodeId};
//! use hearsay_core::node::{Input, Node, Outbox};
//! use hearsay_core::time::Instant;
//!
//! let members: Vec<NodeId> = ["a", "b", "c"].map(NodeId::new).to_vec();
//! let mut a = Node::<u64>::new(Config::default(), members[0].clone(), Epoch(1), members, 7)?;
//! let mut out = Outbox::default();
//! a.handle(Instant::ZERO, Input::Broadcast(7), &mut out);
//! // Nothing may be sent before the batching interval allows it; ask when to tick.
//! while out.is_empty() {
//!     let Some(at) = a.next_deadline() else { break };
//!     a.handle(at, Input::Tick, &mut out);
//! }
//! assert!(!out.is_empty());
//! assert!(a.contains(&7));
//! # Ok::<(), hearsay_core::dissemination::ConfigError>(())
//! ```
#![forbid(unsafe_code)]

pub mod cluster;
pub mod crdt;
pub mod dissemination;
pub mod id;
pub mod link;
pub mod machine;
pub mod membership;
pub mod node;
pub mod outbox;
pub mod overlay;
pub mod query;
pub mod rng;
pub mod simnet;
pub mod stats;
pub mod time;
pub mod timers;
pub mod value;
pub mod wire;
