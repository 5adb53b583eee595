use super::*;

fn names(n: u32) -> Vec<NodeId> {
    (0..n).map(|i| NodeId::new(format!("n{i}"))).collect()
}

fn view(n: u32, me: u32) -> View {
    View::new(NodeId::new(format!("n{me}")), names(n))
}

/// Maelstrom's grid topology over n0..n{n-1}.
fn grid(n: u32) -> Topology {
    let side = (1..).find(|s| s * s >= n).unwrap();
    let id = |k: u32| NodeId::new(format!("n{k}"));
    (0..n)
        .map(|k| {
            let (i, j) = (k / side, k % side);
            let mut nb = vec![];
            if k + side < n {
                nb.push(id(k + side));
            }
            if i > 0 {
                nb.push(id(k - side));
            }
            if j + 1 < side && k + 1 < n {
                nb.push(id(k + 1));
            }
            if j > 0 {
                nb.push(id(k - 1));
            }
            (id(k), nb)
        })
        .collect()
}

const ALL: [Overlay; 7] = [
    Overlay::Total,
    Overlay::Star,
    Overlay::Tree { fanout: 1 },
    Overlay::Tree { fanout: 4 },
    Overlay::Auto,
    Overlay::Topology,
    Overlay::SpanningTree,
];

/// Every overlay must connect all members, with links both ways, or values
/// would be lost.
fn connected(overlay: Overlay, n: u32, topo: Option<&Topology>) -> bool {
    let v = view(n, 0);
    let adj = adjacency(overlay, &v, topo);
    let start = v.ranked()[0].clone();
    let mut seen = BTreeSet::from([start.clone()]);
    let mut stack = vec![start];
    while let Some(u) = stack.pop() {
        for w in &adj[&u] {
            assert!(adj[w].contains(&u), "{overlay}: {u}->{w} one-way");
            if seen.insert(w.clone()) {
                stack.push(w.clone());
            }
        }
    }
    seen.len() == n as usize
}

#[test]
fn every_overlay_connects_every_member() {
    for n in [1, 2, 5, 25, 33, 100, 200] {
        let g = grid(n);
        for o in ALL {
            assert!(connected(o, n, Some(&g)), "{o} n={n}");
        }
    }
}

#[test]
fn adjacency_agrees_with_each_nodes_own_computation() {
    for n in [7u32, 25, 150] {
        let g = grid(n);
        for o in ALL {
            let adj = adjacency(o, &view(n, 0), Some(&g));
            for me in 0..n {
                let v = view(n, me);
                let mut mine = neighbours(o, &v, Some(&g));
                let mut theirs = adj[v.me()].clone();
                mine.sort();
                theirs.sort();
                assert_eq!(mine, theirs, "{o} n={n} me=n{me}");
            }
        }
    }
}

#[test]
fn mesh_is_connected_symmetric_and_sparse() {
    for n in [1u32, 2, 3, 5, 25, 100, 1000] {
        let mut seen = BTreeSet::from([NodeId::new("n0")]);
        let mut stack = vec![NodeId::new("n0")];
        let all = names(n);
        while let Some(u) = stack.pop() {
            let nb = mesh(&View::new(u.clone(), all.clone()));
            assert!(nb.len() <= 4, "n={n}: {} links", nb.len());
            for w in nb {
                assert!(
                    mesh(&View::new(w.clone(), all.clone())).contains(&u),
                    "n={n}: {u}->{w} one-way"
                );
                if seen.insert(w.clone()) {
                    stack.push(w);
                }
            }
        }
        assert_eq!(seen.len(), n as usize);
    }
}

#[test]
fn reach_counts_the_members_behind_each_tree_link() {
    for n in [1u32, 2, 7, 25, 33, 130, 300] {
        let g = grid(n);
        for o in [
            Overlay::Star,
            Overlay::Tree { fanout: 3 },
            Overlay::Auto,
            Overlay::SpanningTree,
        ] {
            let adj = adjacency(o, &view(n, 0), Some(&g));
            for me in 0..n {
                let v = view(n, me);
                let mut expect = BTreeMap::new();
                for start in &adj[v.me()] {
                    let mut seen = BTreeSet::from([v.me(), start]);
                    let mut stack = vec![start];
                    while let Some(u) = stack.pop() {
                        for w in &adj[u] {
                            if seen.insert(w) {
                                stack.push(w);
                            }
                        }
                    }
                    expect.insert(start.clone(), seen.len() - 1);
                }
                assert_eq!(reach(o, &v, Some(&g)), expect, "{o} n={n} me=n{me}");
                if n > 1 {
                    assert_eq!(
                        expect.values().sum::<usize>(),
                        n as usize - 1,
                        "a tree: the sides partition the others"
                    );
                }
            }
        }
    }
    assert!(reach(Overlay::Total, &view(25, 0), None).is_empty());
}

#[test]
fn tree_shapes() {
    let v = view(25, 0);
    let hub = v.top().unwrap().clone();
    let at = |who: &NodeId, n: u32| View::new(who.clone(), names(n));
    assert_eq!(neighbours(Overlay::Star, &at(&hub, 25), None).len(), 24);
    let leaf = v.ranked()[7].clone();
    assert_eq!(neighbours(Overlay::Star, &at(&leaf, 25), None), vec![hub]);
    // Auto: a star up to 128 members, then a tree of fanout ~sqrt(N),
    // so at 1000 members the root has 32 links, not 999, and nobody has
    // more than a few times that.
    let top100 = at(&View::new(NodeId::new("n0"), names(100)).ranked()[0], 100);
    assert_eq!(neighbours(Overlay::Auto, &top100, None).len(), 99);
    let adj = adjacency(Overlay::Auto, &view(1000, 0), None);
    let root = view(1000, 0).top().unwrap().clone();
    assert_eq!(adj[&root].len(), 32);
    let widest = adj.values().map(Vec::len).max().unwrap();
    assert!(widest <= 3 * 32, "widest node has {widest} links");
    // A spanning tree of a 5x5 grid uses exactly 24 edges.
    let g = grid(25);
    let edges: usize = adjacency(Overlay::SpanningTree, &v, Some(&g))
        .values()
        .map(Vec::len)
        .sum();
    assert_eq!(edges, 2 * 24);
    // Topology overlays wait for the topology.
    assert!(neighbours(Overlay::Topology, &v, None).is_empty());
}

fn edges(adj: &BTreeMap<NodeId, Vec<NodeId>>) -> BTreeSet<(NodeId, NodeId)> {
    adj.iter()
        .flat_map(|(a, nb)| {
            nb.iter()
                .map(move |b| (a.clone().min(b.clone()), a.clone().max(b.clone())))
        })
        .collect()
}

#[test]
fn a_join_or_a_leave_moves_few_edges() {
    // 1000 members on the auto tree (fanout 32), then one more; and one
    // fewer. A heap-ordered tree would move about N/k = 31 parent edges
    // per change on average and up to N - 1 in the worst case; rendezvous
    // parents move only the children whose best candidate changed.
    let base = names(1000);
    let before = edges(&adjacency(
        Overlay::Auto,
        &View::new(base[0].clone(), base.clone()),
        None,
    ));
    for extra in ["joiner-a", "joiner-b", "joiner-c", "x", "zz-9"] {
        let mut more = base.clone();
        more.push(NodeId::new(extra));
        let after = edges(&adjacency(
            Overlay::Auto,
            &View::new(base[0].clone(), more),
            None,
        ));
        let moved = before.symmetric_difference(&after).count();
        // The new member's own edge, one member pushed down per level
        // boundary, and the children that re-pick a parent.
        assert!(moved <= 160, "join of {extra} moved {moved} edges");
    }
    for gone in [3usize, 500, 999] {
        let mut fewer = base.clone();
        fewer.remove(gone);
        let after = edges(&adjacency(
            Overlay::Auto,
            &View::new(base[0].clone(), fewer),
            None,
        ));
        let moved = before.symmetric_difference(&after).count();
        assert!(moved <= 160, "leave of n{gone} moved {moved} edges");
    }
    // The mesh: only the edges straddling the joiner's rank move.
    let mesh_edges = |members: &[NodeId]| {
        let adj: BTreeMap<NodeId, Vec<NodeId>> = members
            .iter()
            .map(|m| (m.clone(), mesh(&View::new(m.clone(), members.to_vec()))))
            .collect();
        edges(&adj)
    };
    let small = names(400);
    let mut more = small.clone();
    more.push(NodeId::new("joiner"));
    let moved = mesh_edges(&small)
        .symmetric_difference(&mesh_edges(&more))
        .count();
    // Chords are 32 ranks long at 400 members: those over the joiner's rank
    // move, and the ring edge it splits.
    assert!(moved <= 4 * 32 + 8, "mesh join moved {moved} edges");
}

#[test]
fn the_hub_is_re_chosen_among_live_members() {
    let all = names(25);
    let v = View::new(all[3].clone(), all.clone());
    let hub = v.top().unwrap().clone();
    let mut v2 = v.clone();
    v2.apply(&[], std::slice::from_ref(&hub));
    let hub2 = v2.top().unwrap().clone();
    assert_ne!(hub, hub2);
    assert_eq!(hub2, v.ranked()[1], "the next in rank order takes over");
    let me_hub = View::new(hub2.clone(), v2.ranked().to_vec());
    assert_eq!(neighbours(Overlay::Star, &me_hub, None).len(), 23);
}
