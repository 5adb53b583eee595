//! Replicated state that converges without coordination: state-based CRDTs
//! whose deltas are states of the same type (delta-state CRDTs, Almeida et
//! al. 2018), so one `merge` serves full states, deltas and repairs alike.
//!
//! - counters: [`GCounter`], [`PNCounter`];
//! - sets: [`GSet`], [`TwoPSet`] (removes are final), [`ORSet`] (add-wins,
//!   dots and a causal context, so a remove removes only what it saw);
//! - registers and maps: [`LwwRegister`] and [`LwwMap`] (hybrid logical
//!   clock timestamps, replica id breaking ties), and [`MvRegister`], which
//!   keeps concurrent writes as siblings instead of dropping one.
//!
//! Every type implements [`Crdt`]; property tests check the lattice laws
//! (merge commutative, associative, idempotent), that a delta since a peer's
//! version vector brings it to the same state as the full state does, and
//! that replicas exchanging states in random orders converge.

mod context;
mod counter;
mod hlc;
pub mod kv;
mod register;
mod replicate;
mod set;
#[cfg(test)]
mod tests;

pub use context::{CausalContext, Dot, VersionVector};
pub use counter::{GCounter, PNCounter};
pub use hlc::Hlc;
pub use register::{LwwMap, LwwRegister, MvRegister};
pub use replicate::{Msg as ReplicaMsg, ReplicaConfig, Replicator};
pub use set::{GSet, ORSet, TwoPSet};

/// A join-semilattice with deltas.
pub trait Crdt: Clone + Default + PartialEq + std::fmt::Debug {
    /// The least upper bound of `self` and `other`.
    fn merge(&mut self, other: &Self);

    /// What this replica has seen, as a vector a peer sends to ask for the
    /// rest ("give me what is past this").
    fn version(&self) -> VersionVector;

    /// The smallest part of `self` that a replica at `since` may lack:
    /// merging it there gives what merging all of `self` gives.
    fn delta_since(&self, since: &VersionVector) -> Self;

    /// Entries held, tombstones included: what a full-state sync costs.
    fn size(&self) -> usize;

    /// Events seen past a gap (a delta lost, or still on its way): a
    /// [`Replicator`] whose state keeps a gap asks the peer that sent the
    /// event past it for the rest. Types without dots have none.
    fn has_gaps(&self) -> bool {
        false
    }

    /// Forgets tombstones of events every replica has seen (`stable`, the
    /// pointwise minimum of their versions). Types without collectable
    /// tombstones keep everything.
    fn collect(&mut self, _stable: &VersionVector) {}
}
