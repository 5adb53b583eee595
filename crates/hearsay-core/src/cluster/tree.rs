//! The eager tree: a spanning tree of the active view, rooted at the
//! top-ranked live member, kept by path vectors. Each member advertises
//! its path to the root to its neighbours; its parent is the neighbour
//! with the shortest path that does not already pass through it, so the
//! tree never has a loop, not even while it changes. A member's eager
//! neighbours are its parent and its children (those whose parent it is).
//!
//! This replaces Plumtree's duplicate-driven pruning as the source of the
//! tree: with many members broadcasting at once, prunes triggered by
//! concurrent payloads cut members off (both of two members drop the edge
//! the other one's payloads came through), and the cluster then lives on
//! grafts. A tree computed from the membership does not depend on which
//! payload arrived first; Plumtree's lazy announcements and grafts still
//! repair what a changing tree drops.

use crate::id::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Longest path accepted (a bound on peer input, and on the tree's depth).
pub const MAX_PATH: usize = 64;

/// A member's path to the root: the root first, the member last.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Path(pub Vec<NodeId>);

impl Path {
    fn root(&self) -> Option<&NodeId> {
        self.0.first()
    }

    fn contains(&self, id: &NodeId) -> bool {
        self.0.contains(id)
    }

    /// Who the advertiser's parent is.
    fn parent(&self) -> Option<&NodeId> {
        self.0.len().checked_sub(2).map(|i| &self.0[i])
    }
}

#[derive(Debug)]
pub(crate) struct SpanTree {
    me: NodeId,
    root: NodeId,
    path: Option<Path>,
    adverts: BTreeMap<NodeId, Path>,
    /// The version of each neighbour's advert held.
    versions: BTreeMap<NodeId, u64>,
    /// This member's own advert version (bumped when its path changes).
    pub version: u64,
}

impl SpanTree {
    pub fn new(me: NodeId) -> Self {
        SpanTree {
            root: me.clone(),
            path: Some(Path(vec![me.clone()])),
            me,
            adverts: BTreeMap::new(),
            versions: BTreeMap::new(),
            version: 0,
        }
    }

    /// This member's path (None: no way to the root is known).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_ref()
    }

    pub fn parent(&self) -> Option<&NodeId> {
        self.path.as_ref().and_then(Path::parent)
    }

    /// The root this member believes in changed. Returns whether its own
    /// path changed (it must then tell its neighbours).
    pub fn set_root(&mut self, root: NodeId) -> bool {
        if root == self.root {
            return false;
        }
        self.root = root;
        self.recompute()
    }

    pub fn neighbour_down(&mut self, id: &NodeId) -> bool {
        self.adverts.remove(id);
        self.versions.remove(id);
        self.recompute()
    }

    /// A neighbour's path (None: it knows no way to the root), in the
    /// neighbour's version `v` of it (an older version than one already
    /// held arrived late and is ignored). Returns whether this member's
    /// path changed.
    pub fn advert(&mut self, from: &NodeId, v: u64, path: Option<Path>) -> bool {
        if self.versions.get(from).is_some_and(|held| *held > v) {
            return false;
        }
        self.versions.insert(from.clone(), v);
        let Some(path) = path else {
            self.adverts.remove(from);
            return self.recompute();
        };
        let valid = path.0.len() <= MAX_PATH
            && path.0.last() == Some(from)
            && path.0.iter().collect::<BTreeSet<_>>().len() == path.0.len();
        if !valid {
            return false;
        }
        self.adverts.insert(from.clone(), path);
        self.recompute()
    }

    fn recompute(&mut self) -> bool {
        let next = if self.root == self.me {
            Some(Path(vec![self.me.clone()]))
        } else {
            self.adverts
                .iter()
                .filter(|(_, p)| p.root() == Some(&self.root) && !p.contains(&self.me))
                .filter(|(_, p)| p.0.len() < MAX_PATH)
                .min_by_key(|(n, p)| (p.0.len(), (*n).clone()))
                .map(|(_, p)| {
                    let mut v = p.0.clone();
                    v.push(self.me.clone());
                    Path(v)
                })
        };
        let changed = next != self.path;
        self.path = next;
        if changed {
            self.version += 1;
        }
        changed
    }

    /// Parent and children: the neighbours payloads are pushed to.
    pub fn eager(&self) -> BTreeSet<NodeId> {
        let mut out: BTreeSet<NodeId> = self.parent().cloned().into_iter().collect();
        for (n, p) in &self.adverts {
            if p.parent() == Some(&self.me) && p.root() == Some(&self.root) {
                out.insert(n.clone());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::new(s)
    }

    fn path(names: &[&str]) -> Path {
        Path(names.iter().map(|n| id(n)).collect())
    }

    #[test]
    fn the_shortest_loop_free_path_wins_and_children_are_eager() {
        let mut t = SpanTree::new(id("x"));
        assert!(t.set_root(id("r")));
        assert_eq!(t.path(), None, "no way to the root yet");
        assert!(t.advert(&id("a"), 1, Some(path(&["r", "b", "a"]))));
        assert_eq!(t.path(), Some(&path(&["r", "b", "a", "x"])));
        assert!(t.advert(&id("c"), 2, Some(path(&["r", "c"]))));
        assert_eq!(t.parent(), Some(&id("c")));
        // A path through this member is never taken (no loops).
        assert!(!t.advert(&id("d"), 3, Some(path(&["r", "c", "x", "d"]))));
        assert_eq!(t.eager(), [id("c"), id("d")].into(), "parent and child");
        // The parent goes: the next best path, immediately.
        assert!(t.neighbour_down(&id("c")));
        assert_eq!(t.parent(), Some(&id("a")));
        // d's path went through x via c: it no longer counts as a child
        // once d re-advertises through a.
        assert!(!t.advert(&id("d"), 4, Some(path(&["r", "b", "a", "x", "d"]))));
        assert!(t.eager().contains(&id("d")));
    }

    #[test]
    fn bad_paths_are_ignored() {
        let mut t = SpanTree::new(id("x"));
        t.set_root(id("r"));
        assert!(
            !t.advert(&id("a"), 5, Some(path(&["r", "b"]))),
            "not ending at its sender"
        );
        assert!(
            !t.advert(&id("a"), 6, Some(path(&["r", "a", "r", "a"]))),
            "a repeat"
        );
        let long: Vec<String> = (0..=MAX_PATH).map(|i| format!("m{i}")).collect();
        let mut p: Vec<&str> = long.iter().map(String::as_str).collect();
        p[0] = "r";
        p.push("a");
        assert!(!t.advert(&id("a"), 7, Some(path(&p))), "too long");
        assert_eq!(t.path(), None);
    }

    #[test]
    fn a_late_older_advert_is_ignored() {
        let mut t = SpanTree::new(id("x"));
        t.set_root(id("r"));
        assert!(t.advert(&id("a"), 2, Some(path(&["r", "a"]))));
        assert!(!t.advert(&id("a"), 1, Some(path(&["r", "b", "c", "a"]))));
        assert_eq!(t.path(), Some(&path(&["r", "a", "x"])));
    }

    #[test]
    fn the_root_is_its_own_path() {
        let mut t = SpanTree::new(id("r"));
        assert!(!t.set_root(id("r")));
        assert_eq!(t.path(), Some(&path(&["r"])));
        t.advert(&id("a"), 8, Some(path(&["r", "a"])));
        assert_eq!(t.eager(), [id("a")].into());
    }
}
