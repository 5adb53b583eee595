//! Membership: who is in the cluster.
//!
//! [`View`] is the contract with the layers above: a set of live members in
//! a rank order every node agrees on, and the [`ViewChange`]s between two
//! views. A fixed view (Maelstrom's node list) never changes.

mod view;

pub use view::{View, ViewChange};
