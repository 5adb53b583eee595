//! `hearsay reachability` on the wire: a direct probe and its answer, and
//! a probe asked of another member (the indirect path), with what it found.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reach {
    /// Answer with `Pong` and the same number.
    #[serde(rename = "p")]
    Ping { id: u64 },
    #[serde(rename = "o")]
    Pong { id: u64 },
    /// Probe member `target` for the sender and say whether it answered
    /// within `wait_ms`.
    #[serde(rename = "v")]
    Via {
        id: u64,
        target: String,
        wait_ms: u32,
    },
    /// What a probe asked for found.
    #[serde(rename = "d")]
    ViaDone { id: u64, ok: bool },
}
