//! What the nodes spread: any value type with a key that names it.

use crate::id::{Epoch, NodeId};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::borrow::Borrow;
use std::fmt;

/// What the strategies spread. A value is named by its [`Value::Key`] in
/// announcements and grafts: a small value (Maelstrom's integers) is its
/// own key; one that carries data (a [`crate::cluster::Payload`]) is named
/// by its id, and orders (and compares) by that id alone, so a set of
/// values is a set of keys.
pub trait Value:
    Ord + Clone + fmt::Debug + Send + Serialize + DeserializeOwned + Borrow<Self::Key> + 'static
{
    type Key: Ord + Clone + fmt::Debug + Send + Serialize + DeserializeOwned + 'static;

    fn key(&self) -> &Self::Key {
        self.borrow()
    }

    /// The origin life and number a key names, if it names one: a store
    /// with a retention then remembers the key after forgetting the value.
    fn tag(_key: &Self::Key) -> Option<(&NodeId, Epoch, u64)> {
        None
    }

    /// The slot a key fills and its version, if values of this type
    /// replace one another: the store then holds one value per slot, the
    /// highest version seen (a last-writer-wins register per slot, the
    /// state-based CRDT a counter's or a map's replicas converge on), and a
    /// value is new only if it is newer than the one held. None: the value
    /// stands alone, as an element of a grow-only set.
    fn slot(_key: &Self::Key) -> Option<(&str, u64)> {
        None
    }

    /// Bytes the value carries besides its key, for a retention's byte
    /// bound ([`crate::dissemination::Retention::max_bytes`]); 0 for a
    /// value that is its own small key.
    fn size(&self) -> usize {
        0
    }
}

macro_rules! own_key {
    ($($t:ty),*) => { $(impl Value for $t { type Key = $t; })* };
}
own_key!(u64, i64, String);
