//! hearsay's Maelstrom node.
//!
//! [`MaelstromNode`] is a sans-IO machine: it takes one JSON line at a time
//! (plus the time) and produces the JSON lines to write; [`shell::run_stdio`]
//! is the thin stdin/stdout loop around it that `hearsay-node` runs. Replies
//! follow Maelstrom's closed schemas exactly (no extra keys), a malformed
//! input line is reported to the caller and skipped, and an unknown request
//! type gets error 10 (not-supported).
//!
//! ```
//! use hearsay_core::time::Instant;
//! use hearsay_maelstrom::{MaelstromNode, NodeConfig};
//!
//! let mut node = MaelstromNode::new(NodeConfig::default());
//! node.handle_line(Instant::ZERO, r#"{"src":"c0","dest":"n0","body":{"type":"init","node_id":"n0","node_ids":["n0"],"msg_id":1}}"#).unwrap();
//! let out: Vec<String> = node.drain_output().collect();
//! assert_eq!(out, [r#"{"src":"n0","dest":"c0","body":{"type":"init_ok","in_reply_to":1}}"#]);
//! ```

pub mod cli;
mod node;
pub mod shell;
pub mod wire;

pub use node::{MaelstromNode, NodeConfig, NodeError, NodeStats, Workload};
