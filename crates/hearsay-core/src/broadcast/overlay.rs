//! Overlay graphs: who forwards to whom. Every function here is a pure
//! function of the membership (and the operator's topology), so all nodes
//! compute the same graph without talking to each other.

use super::{Overlay, Peer};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// The neighbours of `me` in `overlay`, in a deterministic order. Overlays
/// built on the operator's topology return nothing until it is known; the
/// topology is made symmetric, since forwarding needs links both ways.
pub fn neighbours(
    overlay: Overlay,
    me: Peer,
    members: &[Peer],
    topology: Option<&BTreeMap<Peer, Vec<Peer>>>,
) -> Vec<Peer> {
    let Some(pos) = members.iter().position(|p| *p == me) else {
        return Vec::new();
    };
    let n = members.len();
    let picked: Vec<usize> = match overlay {
        Overlay::Total => (0..n).filter(|&i| i != pos).collect(),
        Overlay::Star => star(pos, n),
        Overlay::Tree { fanout } => tree(pos, n, fanout.max(1)),
        Overlay::Auto => {
            if n <= Overlay::AUTO_STAR_MAX {
                star(pos, n)
            } else {
                tree(pos, n, ceil_sqrt(n))
            }
        }
        Overlay::Topology => {
            let Some(topo) = topology else {
                return Vec::new();
            };
            return symmetric(topo, me, members).into_iter().collect();
        }
        Overlay::SpanningTree => {
            let Some(topo) = topology else {
                return Vec::new();
            };
            return spanning_tree(topo, me, members);
        }
    };
    picked.into_iter().map(|i| members[i]).collect()
}

/// A sparse, connected, symmetric mesh every node can compute alone: a ring
/// plus chords to the nodes ceil(sqrt(N)) positions away, so the diameter
/// stays near sqrt(N) with about four links per node. Anti-entropy confirms
/// its neighbours on it; plumtree announces lazily over it.
pub fn mesh(me: Peer, members: &[Peer]) -> Vec<Peer> {
    let Some(pos) = members.iter().position(|p| *p == me) else {
        return Vec::new();
    };
    let n = members.len();
    if n <= 1 {
        return Vec::new();
    }
    let skip = ceil_sqrt(n);
    let mut out: BTreeSet<usize> = BTreeSet::new();
    for d in [1, skip] {
        out.insert((pos + d) % n);
        out.insert((pos + n - d % n) % n);
    }
    out.remove(&pos);
    out.into_iter().map(|i| members[i]).collect()
}

fn star(pos: usize, n: usize) -> Vec<usize> {
    if pos == 0 { (1..n).collect() } else { vec![0] }
}

/// Heap-ordered tree: the parent of i is (i-1)/k, its children k*i+1..=k*i+k.
fn tree(pos: usize, n: usize, k: usize) -> Vec<usize> {
    let mut out = Vec::with_capacity(k + 1);
    if pos > 0 {
        out.push((pos - 1) / k);
    }
    out.extend((k * pos + 1..=k * pos + k).filter(|&c| c < n));
    out
}

/// Nodes in the subtree of `root` in a heap-ordered k-ary tree of n nodes.
fn heap_subtree(root: usize, n: usize, k: usize) -> usize {
    let (mut lo, mut hi, mut total) = (root, root, 0);
    while lo < n {
        total += hi.min(n - 1) - lo + 1;
        lo = lo * k + 1;
        hi = hi * k + k;
    }
    total
}

fn ceil_sqrt(n: usize) -> usize {
    let mut r = 1;
    while r * r < n {
        r += 1;
    }
    r
}

fn symmetric(topo: &BTreeMap<Peer, Vec<Peer>>, me: Peer, members: &[Peer]) -> BTreeSet<Peer> {
    let known: BTreeSet<Peer> = members.iter().copied().collect();
    let mut out: BTreeSet<Peer> = topo.get(&me).into_iter().flatten().copied().collect();
    for (from, to) in topo {
        if to.contains(&me) {
            out.insert(*from);
        }
    }
    out.remove(&me);
    out.retain(|p| known.contains(p));
    out
}

/// Breadth-first spanning forest over the symmetric topology, rooted at the
/// first member (then at the first unreached member, and so on): each
/// member's parent, `None` for roots.
fn spanning_forest(
    topo: &BTreeMap<Peer, Vec<Peer>>,
    members: &[Peer],
) -> BTreeMap<Peer, Option<Peer>> {
    let adj: BTreeMap<Peer, BTreeSet<Peer>> = members
        .iter()
        .map(|&m| (m, symmetric(topo, m, members)))
        .collect();
    let mut parent: BTreeMap<Peer, Option<Peer>> = BTreeMap::new();
    for &root in members {
        if parent.contains_key(&root) {
            continue;
        }
        parent.insert(root, None);
        let mut queue = VecDeque::from([root]);
        while let Some(u) = queue.pop_front() {
            for &v in &adj[&u] {
                if let std::collections::btree_map::Entry::Vacant(e) = parent.entry(v) {
                    e.insert(Some(u));
                    queue.push_back(v);
                }
            }
        }
    }
    parent
}

fn spanning_tree(topo: &BTreeMap<Peer, Vec<Peer>>, me: Peer, members: &[Peer]) -> Vec<Peer> {
    let parent = spanning_forest(topo, members);
    let mut out: Vec<Peer> = parent.get(&me).copied().flatten().into_iter().collect();
    out.extend(
        parent
            .iter()
            .filter(|(_, p)| **p == Some(me))
            .map(|(c, _)| *c),
    );
    out
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
    members: &[Peer],
    topology: Option<&BTreeMap<Peer, Vec<Peer>>>,
) -> BTreeMap<Peer, Vec<Peer>> {
    if let (Overlay::SpanningTree, Some(topo)) = (overlay, topology) {
        let parent = spanning_forest(topo, members);
        let mut adj: BTreeMap<Peer, Vec<Peer>> = members.iter().map(|m| (*m, Vec::new())).collect();
        for (c, p) in &parent {
            if let Some(p) = p {
                adj.entry(*c).or_default().insert(0, *p);
                adj.entry(*p).or_default().push(*c);
            }
        }
        return adj;
    }
    members
        .iter()
        .map(|&m| (m, neighbours(overlay, m, members, topology)))
        .collect()
}

/// On a tree overlay: for each neighbour of `me`, how many nodes lie on its
/// side of the link (values sent over that link reach them all). Empty for
/// overlays that are not trees.
pub fn reach(
    overlay: Overlay,
    me: Peer,
    members: &[Peer],
    topology: Option<&BTreeMap<Peer, Vec<Peer>>>,
) -> BTreeMap<Peer, usize> {
    if !is_tree(overlay) {
        return BTreeMap::new();
    }
    let n = members.len();
    let pos = members.iter().position(|p| *p == me);
    // Heap-ordered trees (and the star) have closed-form subtree sizes.
    let fanout = match overlay {
        Overlay::Star => Some(n.max(2) - 1),
        Overlay::Tree { fanout } => Some(fanout.max(1)),
        Overlay::Auto if n <= Overlay::AUTO_STAR_MAX => Some(n.max(2) - 1),
        Overlay::Auto => Some(ceil_sqrt(n)),
        _ => None,
    };
    if let (Some(k), Some(pos)) = (fanout, pos) {
        let size = |root: usize| heap_subtree(root, n, k);
        let mut out = BTreeMap::new();
        for i in tree(pos, n, k) {
            let parent = pos > 0 && i == (pos - 1) / k;
            let r = if parent { n - size(pos) } else { size(i) };
            out.insert(members[i], r);
        }
        return out;
    }
    let adj = adjacency(overlay, members, topology);
    let mut out = BTreeMap::new();
    for &start in adj.get(&me).into_iter().flatten() {
        let mut seen = BTreeSet::from([me, start]);
        let mut stack = vec![start];
        while let Some(u) = stack.pop() {
            for &v in adj.get(&u).into_iter().flatten() {
                if seen.insert(v) {
                    stack.push(v);
                }
            }
        }
        out.insert(start, seen.len() - 1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peers(n: u32) -> Vec<Peer> {
        (0..n).map(Peer).collect()
    }

    /// Every overlay must connect all members, or values would be lost.
    fn connected(overlay: Overlay, n: u32, topo: Option<&BTreeMap<Peer, Vec<Peer>>>) -> bool {
        let m = peers(n);
        let mut seen = BTreeSet::from([Peer(0)]);
        let mut stack = vec![Peer(0)];
        while let Some(u) = stack.pop() {
            for v in neighbours(overlay, u, &m, topo) {
                // Links must be symmetric too.
                assert!(
                    neighbours(overlay, v, &m, topo).contains(&u),
                    "{overlay}: {u}->{v} one-way"
                );
                if seen.insert(v) {
                    stack.push(v);
                }
            }
        }
        seen.len() == n as usize
    }

    fn grid(n: u32) -> BTreeMap<Peer, Vec<Peer>> {
        let side = (1..).find(|s| s * s >= n).unwrap();
        (0..n)
            .map(|k| {
                let (i, j) = (k / side, k % side);
                let mut nb = vec![];
                if k + side < n {
                    nb.push(Peer(k + side));
                }
                if i > 0 {
                    nb.push(Peer(k - side));
                }
                if j + 1 < side && k + 1 < n {
                    nb.push(Peer(k + 1));
                }
                if j > 0 {
                    nb.push(Peer(k - 1));
                }
                (Peer(k), nb)
            })
            .collect()
    }

    #[test]
    fn every_overlay_connects_every_member() {
        for n in [1, 2, 5, 25, 33, 100] {
            let g = grid(n);
            for o in [
                Overlay::Total,
                Overlay::Star,
                Overlay::Tree { fanout: 1 },
                Overlay::Tree { fanout: 4 },
                Overlay::Auto,
                Overlay::Topology,
                Overlay::SpanningTree,
            ] {
                assert!(connected(o, n, Some(&g)), "{o} n={n}");
            }
        }
    }

    #[test]
    fn mesh_is_connected_symmetric_and_sparse() {
        for n in [1u32, 2, 3, 5, 25, 100, 1000] {
            let m = peers(n);
            let mut seen = BTreeSet::from([Peer(0)]);
            let mut stack = vec![Peer(0)];
            while let Some(u) = stack.pop() {
                let nb = mesh(u, &m);
                assert!(nb.len() <= 4, "n={n}: {} links", nb.len());
                for v in nb {
                    assert!(mesh(v, &m).contains(&u), "n={n}: {u}->{v} one-way");
                    if seen.insert(v) {
                        stack.push(v);
                    }
                }
            }
            assert_eq!(seen.len(), n as usize);
        }
    }

    #[test]
    fn reach_counts_the_nodes_behind_each_tree_link() {
        let m = peers(25);
        let hub = reach(Overlay::Star, Peer(0), &m, None);
        assert_eq!(hub.len(), 24);
        assert!(hub.values().all(|&r| r == 1));
        assert_eq!(
            reach(Overlay::Star, Peer(3), &m, None),
            BTreeMap::from([(Peer(0), 24)])
        );
        // tree4 on 25 nodes: node 1's subtree is 1, 5..8, 21..24 (9 nodes).
        let r = reach(Overlay::Tree { fanout: 4 }, Peer(1), &m, None);
        assert_eq!(r[&Peer(0)], 25 - 9);
        assert_eq!(r[&Peer(5)], 5);
        assert_eq!(r[&Peer(6)], 1);
        let g = grid(25);
        let st = reach(Overlay::SpanningTree, Peer(12), &m, Some(&g));
        assert_eq!(
            st.values().sum::<usize>(),
            24,
            "a tree: the sides partition the others"
        );
        assert!(reach(Overlay::Total, Peer(0), &m, None).is_empty());
        // The closed form agrees with a search of the whole tree.
        for n in [1u32, 2, 7, 33, 100, 130] {
            let m = peers(n);
            for o in [Overlay::Star, Overlay::Tree { fanout: 3 }, Overlay::Auto] {
                let adj = adjacency(o, &m, None);
                for me in &m {
                    let mut expect = BTreeMap::new();
                    for &start in &adj[me] {
                        let mut seen = BTreeSet::from([*me, start]);
                        let mut stack = vec![start];
                        while let Some(u) = stack.pop() {
                            for &v in &adj[&u] {
                                if seen.insert(v) {
                                    stack.push(v);
                                }
                            }
                        }
                        expect.insert(start, seen.len() - 1);
                    }
                    assert_eq!(reach(o, *me, &m, None), expect, "{o} n={n} me={me}");
                }
            }
        }
    }

    #[test]
    fn tree_shapes() {
        let m = peers(25);
        assert_eq!(neighbours(Overlay::Star, Peer(0), &m, None).len(), 24);
        assert_eq!(neighbours(Overlay::Star, Peer(7), &m, None), vec![Peer(0)]);
        assert_eq!(
            neighbours(Overlay::Tree { fanout: 4 }, Peer(1), &m, None),
            vec![Peer(0), Peer(5), Peer(6), Peer(7), Peer(8)]
        );
        // Auto: a star up to 128 nodes, then a tree of fanout ceil(sqrt(N)),
        // so at 1000 nodes the root has 32 links, not 999.
        assert_eq!(
            neighbours(Overlay::Auto, Peer(0), &peers(100), None).len(),
            99
        );
        assert_eq!(
            neighbours(Overlay::Auto, Peer(0), &peers(1000), None).len(),
            32
        );
        // A spanning tree of a 5x5 grid uses exactly 24 edges.
        let g = grid(25);
        let edges: usize = (0..25)
            .map(|k| neighbours(Overlay::SpanningTree, Peer(k), &m, Some(&g)).len())
            .sum();
        assert_eq!(edges, 2 * 24);
        // Topology overlays wait for the topology.
        assert!(neighbours(Overlay::Topology, Peer(0), &m, None).is_empty());
    }
}
