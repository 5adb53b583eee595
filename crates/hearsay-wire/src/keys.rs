//! The keyring changes members ask of each other (what `serf keys`
//! sends), as wire messages: a change or a listing, and each member's
//! answer.

use crate::keyring::Key;
use serde::{Deserialize, Serialize};

/// A change to a keyring.
#[derive(Clone, Debug)]
pub enum KeyOp {
    Install(Key),
    Use(Key),
    Remove(Key),
}

/// What a member is asked to do with its keyring (keys in base64).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    #[serde(rename = "i")]
    Install(String),
    #[serde(rename = "u")]
    Use(String),
    #[serde(rename = "r")]
    Remove(String),
    /// No change: answer with the keyring.
    #[serde(rename = "l")]
    List,
}

impl Op {
    /// The wire form of a change (`None`: a listing).
    pub fn of(change: Option<KeyOp>) -> Op {
        match change {
            None => Op::List,
            Some(KeyOp::Install(k)) => Op::Install(k.to_base64()),
            Some(KeyOp::Use(k)) => Op::Use(k.to_base64()),
            Some(KeyOp::Remove(k)) => Op::Remove(k.to_base64()),
        }
    }

    /// The change asked for (`None`: a listing), or why the key is bad.
    pub fn change(&self) -> Result<Option<KeyOp>, String> {
        let key = |k: &str| k.parse::<Key>();
        Ok(match self {
            Op::Install(k) => Some(KeyOp::Install(key(k)?)),
            Op::Use(k) => Some(KeyOp::Use(key(k)?)),
            Op::Remove(k) => Some(KeyOp::Remove(key(k)?)),
            Op::List => None,
        })
    }

    pub fn verb(&self) -> &'static str {
        match self {
            Op::Install(_) => "install",
            Op::Use(_) => "use",
            Op::Remove(_) => "remove",
            Op::List => "list",
        }
    }
}

/// On the wire, beside the cluster's messages in an envelope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyQuery {
    #[serde(rename = "q")]
    Ask { id: u64, op: Op },
    /// The member's keyring after the change (primary first), or why it
    /// refused.
    #[serde(rename = "a")]
    Answer {
        id: u64,
        keys: Result<Vec<String>, String>,
    },
}
