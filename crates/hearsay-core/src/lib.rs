//! Sans-IO protocol state machines for hearsay.
//!
//! Every machine here is a plain struct: inputs in, messages out. Nothing in
//! this crate reads a clock, opens a socket, spawns a thread or draws from an
//! unseeded RNG, so the same code runs unchanged inside a Maelstrom node
//! process, a networked agent and the deterministic simulator.
//!
//! The contract shared by every engine:
//! - `handle(now, input, out)` consumes one input at time `now` (which never
//!   goes backwards) and appends the messages to send to `out`;
//! - `next_deadline()` says when the shell must call `handle` again with a
//!   tick; extra ticks are harmless;
//! - peer input never panics: malformed or stale input is dropped and counted.
//!
//! ```
//! use hearsay_core::broadcast::{Broadcast, Config, Input, Outbox, Peer, Wire};
//! use hearsay_core::time::Instant;
//!
//! let members: Vec<Peer> = (0..3).map(Peer).collect();
//! let mut a = Broadcast::<u64>::new(Config::default(), Peer(0), members.clone());
//! let mut out = Outbox::default();
//! a.handle(Instant::ZERO, Input::Broadcast(7), &mut out);
//! // Nothing is sent before the batching interval allows it; ask when to tick.
//! while let Some(at) = a.next_deadline() {
//!     a.handle(at, Input::Tick, &mut out);
//!     if !out.is_empty() { break; }
//! }
//! assert!(out.iter().any(|(_, m)| matches!(m, Wire::Link { msg, .. } if msg.values.contains(&7))));
//! ```
#![forbid(unsafe_code)]

pub mod broadcast;
pub mod rng;
pub mod time;
