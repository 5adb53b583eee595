//! One simulation core: a time-ordered [`Agenda`], per-node [`Timers`], the
//! [`Faults`] a network can have (delay distributions, zones, loss,
//! duplication, partitions, cut links) and a [`Network`] that runs any
//! [`crate::machine::Machine`] over them with crashes, restarts and pauses
//! in virtual time. `hearsay sim` runs its members on it (datagrams through
//! the agent's codec), the harness's virtual-time executor its timers, and
//! the core's multi-node tests their machines. The same seed gives the
//! same run.

mod agenda;
mod faults;
mod network;

pub use agenda::{Agenda, Key, Timers};
pub use faults::{Faults, Latency};
pub use network::{Network, Stuck, index_of};
