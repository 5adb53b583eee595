//! Application state exchanged between members (memberlist's delegate:
//! `LocalState` / `MergeRemoteState`): what a service keeps beside the
//! member list (its shard map, a schema version) and wants every member to
//! converge on, without building its own protocol. Every member sends its
//! state to a member it sees join, so a joiner and the cluster trade
//! states at once; and every [`crate::AgentConfig::state_sync`] each
//! member trades states with one random alive member, which repairs what a
//! lost datagram or a partition left behind.

use std::sync::Arc;

/// The application's side of the exchange. Both run in the agent's loop:
/// keep them quick (copy the state out, merge into a structure behind a
/// lock), or gossip waits for them.
pub trait StateDelegate: Send + Sync + 'static {
    /// This member's state to send (`join`: to a member that just joined).
    /// At most [`hearsay_core::cluster::MAX_PAYLOAD`] bytes: a larger one
    /// is not sent, and a warning says so.
    fn local_state(&self, join: bool) -> Vec<u8>;
    /// Member `from`'s state arrived (`join`: it was sent because one of
    /// the two just joined).
    fn merge_remote_state(&self, from: &str, state: &[u8], join: bool);
}

/// A [`StateDelegate`] as [`crate::AgentConfig`] holds it.
#[derive(Clone)]
pub struct Delegate(pub Arc<dyn StateDelegate>);

impl std::fmt::Debug for Delegate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Delegate(..)")
    }
}

impl<D: StateDelegate> From<D> for Delegate {
    fn from(d: D) -> Delegate {
        Delegate(Arc::new(d))
    }
}
