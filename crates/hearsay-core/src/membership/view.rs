//! The set of live members a node works with, and how it changes.
//!
//! A [`View`] is what the dissemination layer sees of membership: who is in
//! the cluster now (this node included), in a canonical *rank order* (by the
//! stable hash of each name) that every node computes alike, so overlays
//! built on it agree without talking. Maelstrom's fixed node list is a view
//! that never changes; SWIM produces a changing one.

use crate::id::{Epoch, NodeId};
use std::collections::BTreeMap;

/// Members that joined, left or came back in a new life since the last view.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ViewChange {
    pub joined: Vec<NodeId>,
    pub left: Vec<NodeId>,
    /// Still members, but restarted: whatever they held is gone.
    pub restarted: Vec<NodeId>,
}

impl ViewChange {
    pub fn is_empty(&self) -> bool {
        self.joined.is_empty() && self.left.is_empty() && self.restarted.is_empty()
    }
}

#[derive(Clone, Debug)]
pub struct View {
    me: NodeId,
    /// Live members (this node included) and the epoch each is known to be
    /// in (`Epoch::UNKNOWN` until heard from).
    members: BTreeMap<NodeId, Epoch>,
    /// `members` in rank order: highest name hash first, ties by name.
    ranked: Vec<NodeId>,
}

/// The rank key: every node orders members the same way.
fn rank_key(id: &NodeId) -> (std::cmp::Reverse<u64>, NodeId) {
    (std::cmp::Reverse(id.hash64()), id.clone())
}

impl View {
    /// A view of `members` (`me` is added if missing).
    pub fn new(me: NodeId, members: impl IntoIterator<Item = NodeId>) -> Self {
        let mut map: BTreeMap<NodeId, Epoch> =
            members.into_iter().map(|m| (m, Epoch::UNKNOWN)).collect();
        map.entry(me.clone()).or_default();
        let mut v = View {
            me,
            members: map,
            ranked: Vec::new(),
        };
        v.rerank();
        v
    }

    fn rerank(&mut self) {
        let mut keyed: Vec<_> = self.members.keys().map(rank_key).collect();
        keyed.sort_unstable();
        self.ranked = keyed.into_iter().map(|(_, id)| id).collect();
    }

    pub fn me(&self) -> &NodeId {
        &self.me
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn contains(&self, id: &NodeId) -> bool {
        self.members.contains_key(id)
    }

    /// Members in rank order (the same order on every node).
    pub fn ranked(&self) -> &[NodeId] {
        &self.ranked
    }

    /// The highest-ranked live member: the hub of stars, the root of trees
    /// and the ack relay; re-chosen whenever it leaves.
    pub fn top(&self) -> Option<&NodeId> {
        self.ranked.first()
    }

    /// Every member but this node, in name order.
    pub fn others(&self) -> impl Iterator<Item = &NodeId> {
        self.members.keys().filter(move |m| **m != self.me)
    }

    pub fn epoch(&self, id: &NodeId) -> Option<Epoch> {
        self.members.get(id).copied()
    }

    /// Records the epoch a member was heard in; returns true if that is a
    /// new life of a member already known in an earlier one.
    pub fn note_epoch(&mut self, id: &NodeId, epoch: Epoch) -> bool {
        match self.members.get_mut(id) {
            Some(e) if *e < epoch => {
                let restarted = e.is_known();
                *e = epoch;
                restarted
            }
            _ => false,
        }
    }

    /// Adds and removes members; returns what actually changed.
    pub fn apply(&mut self, joined: &[(NodeId, Epoch)], left: &[NodeId]) -> ViewChange {
        let mut change = ViewChange::default();
        for id in left {
            if *id != self.me && self.members.remove(id).is_some() {
                change.left.push(id.clone());
            }
        }
        for (id, epoch) in joined {
            match self.members.get_mut(id) {
                None => {
                    self.members.insert(id.clone(), *epoch);
                    change.joined.push(id.clone());
                }
                Some(e) if *e < *epoch => {
                    if e.is_known() && *id != self.me {
                        change.restarted.push(id.clone());
                    }
                    *e = *epoch;
                }
                Some(_) => {}
            }
        }
        if !change.joined.is_empty() || !change.left.is_empty() {
            self.rerank();
        }
        change
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(names: &[&str]) -> Vec<NodeId> {
        names.iter().map(NodeId::new).collect()
    }

    #[test]
    fn rank_order_is_the_same_whatever_the_input_order() {
        let a = View::new(NodeId::new("a"), ids(&["a", "b", "c", "d"]));
        let b = View::new(NodeId::new("c"), ids(&["d", "c", "b", "a"]));
        assert_eq!(a.ranked(), b.ranked());
        assert_eq!(a.len(), 4);
        assert!(a.others().all(|m| m.as_str() != "a"));
    }

    #[test]
    fn joins_leaves_and_restarts_are_reported_once() {
        let mut v = View::new(NodeId::new("a"), ids(&["a", "b"]));
        let ch = v.apply(&[(NodeId::new("c"), Epoch(1))], &[NodeId::new("b")]);
        assert_eq!(ch.joined, ids(&["c"]));
        assert_eq!(ch.left, ids(&["b"]));
        assert!(v.apply(&[(NodeId::new("c"), Epoch(1))], &[]).is_empty());
        let ch = v.apply(&[(NodeId::new("c"), Epoch(2))], &[]);
        assert_eq!(ch.restarted, ids(&["c"]));
        // This node never leaves its own view.
        assert!(v.apply(&[], &[NodeId::new("a")]).is_empty());
        // An epoch first heard is not a restart; a higher one later is.
        let mut v = View::new(NodeId::new("a"), ids(&["a", "b"]));
        assert!(!v.note_epoch(&NodeId::new("b"), Epoch(5)));
        assert!(!v.note_epoch(&NodeId::new("b"), Epoch(4)));
        assert!(v.note_epoch(&NodeId::new("b"), Epoch(6)));
        assert!(!v.note_epoch(&NodeId::new("zz"), Epoch(6)), "not a member");
    }
}
