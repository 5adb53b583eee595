//! `hearsay query` and direct messages on the wire (Serf's queries): the asker sends the query
//! to each member its filters chose; each acknowledges it, saying whether
//! an answer will follow, and later answers (or says why it could not).
//! The asker asks again those it has not heard from; a member that was
//! asked before acknowledges again and resends its answer, never running
//! its handler twice.

use hearsay_core::cluster::bytes;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueryMsg {
    /// Query `name` with `payload`; answers are useless to the asker after
    /// `timeout_ms`.
    #[serde(rename = "q")]
    Ask {
        id: u64,
        name: String,
        #[serde(with = "bytes")]
        payload: Arc<[u8]>,
        timeout_ms: u32,
    },
    /// Received; `answers`: a handler runs and an answer will follow.
    #[serde(rename = "k")]
    Ack { id: u64, answers: bool },
    /// A handler's output, or why there is none (it failed, timed out, or
    /// the application did not answer).
    #[serde(rename = "r")]
    Answer { id: u64, answer: Answer },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Answer {
    #[serde(rename = "o")]
    Ok(#[serde(with = "bytes")] Arc<[u8]>),
    #[serde(rename = "e")]
    Failed(String),
}

/// A message from one member to another (`Agent::send_to`), outside any
/// broadcast: delivered at most once, best effort.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Direct(#[serde(with = "bytes")] pub Arc<[u8]>);

/// Application state (the library's state delegate, memberlist's
/// `LocalState`): sent to a member that joined, and to a random member
/// now and then; `reply` asks for the receiver's own in return.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppState {
    pub join: bool,
    pub reply: bool,
    #[serde(with = "bytes")]
    pub data: Arc<[u8]>,
}
