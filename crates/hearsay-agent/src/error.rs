//! Why an agent refused a call: matched on by embedders, shown as the
//! text the HTTP API and the CLI print.

/// What a call on an [`crate::Agent`] failed with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `leave()` was called: the agent takes no more work.
    #[error("{}", crate::LEFT)]
    Left,
    /// The agent's loop has ended (`shutdown()`, or the runtime stopped).
    #[error("the agent has stopped")]
    Stopped,
    /// Back-pressure (neighbours are behind, too many in progress): the
    /// same call may succeed shortly.
    #[error("{0}")]
    Busy(String),
    /// Refused for what was asked (a bad name, key, size or filter) or for
    /// the cluster's state (a member alive, unknown, unreachable); the
    /// text says which.
    #[error("{0}")]
    Refused(String),
}

impl From<String> for Error {
    fn from(s: String) -> Error {
        if s.starts_with("busy") {
            Error::Busy(s)
        } else {
            Error::Refused(s)
        }
    }
}

impl From<&str> for Error {
    fn from(s: &str) -> Error {
        Error::from(s.to_string())
    }
}
