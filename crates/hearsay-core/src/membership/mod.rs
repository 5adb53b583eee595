//! Membership: who is in the cluster.
//!
//! [`View`] is the contract with the layers above: a set of live members in
//! a rank order every node agrees on, and the [`ViewChange`]s between two
//! views. A fixed view (Maelstrom's node list) never changes; [`Swim`]
//! maintains a changing one: SWIM failure detection and dissemination with
//! Lifeguard, push-pull anti-entropy, phi accrual as an alternative
//! detector, zones.

mod awareness;
mod config;
mod machine;
mod member;
mod phi;
mod rumours;
mod seeds;
mod suspicion;
mod swim;
mod table;
#[cfg(test)]
mod tests;
mod view;

pub use config::{Detector, ProbeOrder, SwimConfig, SwimConfigError, SwimPreset};
pub use machine::{Membership, Static};
pub use member::{
    Bytes, ForceLeaveError, Incarnation, MAX_TAGS_BYTES, Meta, Sig, Status, TagsError, Update,
    check_tags, overrides,
};
pub use seeds::{Seeds, silence};
pub use swim::{Event, MAX_STATE, MemberMsg, Swim, SwimStats};
pub use view::{View, ViewChange};
