//! Overlay graphs: who forwards to whom. Every function here is a pure
//! function of the view (and the operator's topology), over the view's rank
//! order, so all nodes compute the same graph without talking, and a join
//! or a leave moves few edges: the hub is the top-ranked member (re-chosen
//! only when it leaves or a higher-ranked member joins), tree parents are
//! picked by rendezvous hashing, and the mesh's chords are rank distances.

mod tree;

use crate::id::NodeId;
use crate::membership::View;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

/// The operator's suggested topology (Maelstrom's `topology` message).
pub type Topology = BTreeMap<NodeId, Vec<NodeId>>;

/// Which graph values travel over (for `flood`, `tree` and plumtree's eager
/// edges).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overlay {
    /// The operator's topology (Maelstrom's `topology` message).
    Topology,
    /// A breadth-first spanning tree of the operator's topology, rooted at
    /// the top-ranked member.
    SpanningTree,
    /// The top-ranked member is a hub linked to everyone else.
    Star,
    /// A `fanout`-ary tree over the rank order: level sizes 1, k, k^2, ...;
    /// each node's parent is picked by rendezvous hashing in the level
    /// above, so a join or a leave moves few edges.
    Tree { fanout: usize },
    /// Everyone is linked to everyone.
    Total,
    /// A ring over the rank order plus chords about sqrt(N) ranks away
    /// (about four links each; see [`crate::overlay::mesh`]).
    Mesh,
    /// A star up to [`Overlay::AUTO_STAR_MAX`] members, then a tree of
    /// fanout about sqrt(N) (a power of two), so no node's fan-out grows
    /// linearly with N.
    Auto,
}

impl Overlay {
    pub const AUTO_STAR_MAX: usize = 128;
}

impl fmt::Display for Overlay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Overlay::Topology => f.write_str("topology"),
            Overlay::SpanningTree => f.write_str("spanning-tree"),
            Overlay::Star => f.write_str("star"),
            Overlay::Tree { fanout } => write!(f, "tree{fanout}"),
            Overlay::Total => f.write_str("total"),
            Overlay::Mesh => f.write_str("mesh"),
            Overlay::Auto => f.write_str("auto"),
        }
    }
}

/// The neighbours of this node (`view.me()`) in `overlay`, in a
/// deterministic order. Overlays built on the operator's topology return
/// nothing until it is known; the topology is made symmetric, since
/// forwarding needs links both ways.
pub fn neighbours(overlay: Overlay, view: &View, topology: Option<&Topology>) -> Vec<NodeId> {
    neighbours_of(overlay, view, topology, view.me())
}

/// The neighbours of any member `who` in `overlay`.
pub fn neighbours_of(
    overlay: Overlay,
    view: &View,
    topology: Option<&Topology>,
    who: &NodeId,
) -> Vec<NodeId> {
    let ranked = view.ranked();
    let Some(pos) = position(ranked, who) else {
        return Vec::new();
    };
    let n = ranked.len();
    let picked: Vec<usize> = match shape(overlay, n) {
        Shape::Total => (0..n).filter(|&i| i != pos).collect(),
        Shape::Mesh => mesh_at(pos, n),
        Shape::Star => star(pos, n),
        Shape::Tree(k) => tree::Tree::new(ranked, k).neighbours(pos),
        Shape::Topology => {
            let Some(topo) = topology else {
                return Vec::new();
            };
            return symmetric(topo, who, view).into_iter().collect();
        }
        Shape::SpanningTree => {
            let Some(topo) = topology else {
                return Vec::new();
            };
            let parent = spanning_forest(topo, view);
            let mut out: Vec<NodeId> = parent.get(who).cloned().flatten().into_iter().collect();
            out.extend(
                parent
                    .iter()
                    .filter(|(_, p)| p.as_ref() == Some(who))
                    .map(|(c, _)| c.clone()),
            );
            return out;
        }
    };
    picked.into_iter().map(|i| ranked[i].clone()).collect()
}

/// The concrete graph an overlay setting stands for at `n` members.
enum Shape {
    Total,
    Mesh,
    Star,
    Tree(usize),
    Topology,
    SpanningTree,
}

fn shape(overlay: Overlay, n: usize) -> Shape {
    match overlay {
        Overlay::Total => Shape::Total,
        Overlay::Mesh => Shape::Mesh,
        Overlay::Star => Shape::Star,
        Overlay::Tree { fanout } => Shape::Tree(fanout.max(1)),
        Overlay::Auto if n <= Overlay::AUTO_STAR_MAX => Shape::Star,
        Overlay::Auto => Shape::Tree(stable_sqrt(n)),
        Overlay::Topology => Shape::Topology,
        Overlay::SpanningTree => Shape::SpanningTree,
    }
}

/// Where `who` sits in the rank order (binary search on the rank key).
pub(crate) fn position(ranked: &[NodeId], who: &NodeId) -> Option<usize> {
    let key = |id: &NodeId| (std::cmp::Reverse(id.hash64()), id.clone());
    ranked.binary_search_by_key(&key(who), key).ok()
}

/// A sparse, connected, symmetric mesh every node can compute alone: a ring
/// over the rank order plus chords to the members about sqrt(N) ranks away,
/// so the diameter stays near sqrt(N) with about four links per node, and a
/// join moves only the edges that straddle its rank. Anti-entropy confirms
/// its neighbours on it; plumtree announces lazily over it.
pub fn mesh(view: &View) -> Vec<NodeId> {
    neighbours(Overlay::Mesh, view, None)
}

/// The members next to this one in rank order (a ring every node computes
/// alike; plumtree announces lazily over it).
pub fn ring(view: &View) -> Vec<NodeId> {
    let ranked = view.ranked();
    let Some(pos) = position(ranked, view.me()) else {
        return Vec::new();
    };
    let n = ranked.len();
    let mut out: BTreeSet<usize> = [(pos + 1) % n, (pos + n - 1) % n].into();
    out.remove(&pos);
    out.into_iter().map(|i| ranked[i].clone()).collect()
}

/// The mesh neighbours of rank position `pos` among `n`.
fn mesh_at(pos: usize, n: usize) -> Vec<usize> {
    if n <= 1 {
        return Vec::new();
    }
    let skip = stable_sqrt(n);
    let mut out: BTreeSet<usize> = BTreeSet::new();
    for d in [1, skip] {
        out.insert((pos + d) % n);
        out.insert((pos + n - d % n) % n);
    }
    out.remove(&pos);
    out.into_iter().collect()
}

fn star(pos: usize, n: usize) -> Vec<usize> {
    if pos == 0 { (1..n).collect() } else { vec![0] }
}

/// ceil(sqrt(n)) rounded up to a power of two: close enough to sqrt(n) for
/// the shapes built on it, and it changes only when n crosses a power of
/// four, so a join does not redraw every chord or every tree level.
pub(crate) fn stable_sqrt(n: usize) -> usize {
    ceil_sqrt(n).next_power_of_two()
}

fn ceil_sqrt(n: usize) -> usize {
    let mut r = 1;
    while r * r < n {
        r += 1;
    }
    r
}

fn symmetric(topo: &Topology, who: &NodeId, view: &View) -> BTreeSet<NodeId> {
    let mut out: BTreeSet<NodeId> = topo.get(who).into_iter().flatten().cloned().collect();
    for (from, to) in topo {
        if to.contains(who) {
            out.insert(from.clone());
        }
    }
    out.remove(who);
    out.retain(|p| view.contains(p));
    out
}

/// Breadth-first spanning forest over the symmetric topology, rooted at the
/// top-ranked member (then at the highest-ranked unreached member, and so
/// on): each member's parent, `None` for roots.
fn spanning_forest(topo: &Topology, view: &View) -> BTreeMap<NodeId, Option<NodeId>> {
    let adj: BTreeMap<&NodeId, BTreeSet<NodeId>> = view
        .ranked()
        .iter()
        .map(|m| (m, symmetric(topo, m, view)))
        .collect();
    let mut parent: BTreeMap<NodeId, Option<NodeId>> = BTreeMap::new();
    for root in view.ranked() {
        if parent.contains_key(root) {
            continue;
        }
        parent.insert(root.clone(), None);
        let mut queue = VecDeque::from([root.clone()]);
        while let Some(u) = queue.pop_front() {
            for v in &adj[&u] {
                if !parent.contains_key(v) {
                    parent.insert(v.clone(), Some(u.clone()));
                    queue.push_back(v.clone());
                }
            }
        }
    }
    parent
}

/// True for overlays that are trees (forests): one path between two nodes.
pub fn is_tree(overlay: Overlay) -> bool {
    matches!(
        overlay,
        Overlay::Star | Overlay::Tree { .. } | Overlay::Auto | Overlay::SpanningTree
    )
}

/// Every member's neighbours, computed once.
pub fn adjacency(
    overlay: Overlay,
    view: &View,
    topology: Option<&Topology>,
) -> BTreeMap<NodeId, Vec<NodeId>> {
    let ranked = view.ranked();
    let n = ranked.len();
    match shape(overlay, n) {
        Shape::Tree(k) => {
            let t = tree::Tree::new(ranked, k);
            (0..n)
                .map(|i| {
                    let nb = t.neighbours(i).into_iter().map(|j| ranked[j].clone());
                    (ranked[i].clone(), nb.collect())
                })
                .collect()
        }
        Shape::SpanningTree if topology.is_some() => {
            let parent = spanning_forest(topology.expect("checked"), view);
            let mut adj: BTreeMap<NodeId, Vec<NodeId>> =
                ranked.iter().map(|m| (m.clone(), Vec::new())).collect();
            for (c, p) in &parent {
                if let Some(p) = p {
                    adj.entry(c.clone()).or_default().insert(0, p.clone());
                    adj.entry(p.clone()).or_default().push(c.clone());
                }
            }
            adj
        }
        _ => ranked
            .iter()
            .map(|m| (m.clone(), neighbours_of(overlay, view, topology, m)))
            .collect(),
    }
}

/// On a tree overlay: for each neighbour of this node, how many members lie
/// on its side of the link (values sent over that link reach them all).
/// Empty for overlays that are not trees.
pub fn reach(
    overlay: Overlay,
    view: &View,
    topology: Option<&Topology>,
) -> BTreeMap<NodeId, usize> {
    if !is_tree(overlay) {
        return BTreeMap::new();
    }
    let ranked = view.ranked();
    let n = ranked.len();
    let Some(pos) = position(ranked, view.me()) else {
        return BTreeMap::new();
    };
    match shape(overlay, n) {
        Shape::Star => {
            let mut out = BTreeMap::new();
            for i in star(pos, n) {
                out.insert(ranked[i].clone(), if pos == 0 { 1 } else { n - 1 });
            }
            out
        }
        Shape::Tree(k) => tree::Tree::new(ranked, k)
            .reach(pos)
            .into_iter()
            .map(|(i, r)| (ranked[i].clone(), r))
            .collect(),
        _ => {
            let adj = adjacency(overlay, view, topology);
            let me = view.me();
            let mut out = BTreeMap::new();
            for start in adj.get(me).into_iter().flatten() {
                let mut seen = BTreeSet::from([me, start]);
                let mut stack = vec![start];
                while let Some(u) = stack.pop() {
                    for v in adj.get(u).into_iter().flatten() {
                        if seen.insert(v) {
                            stack.push(v);
                        }
                    }
                }
                out.insert(start.clone(), seen.len() - 1);
            }
            out
        }
    }
}

#[cfg(test)]
mod tests;
