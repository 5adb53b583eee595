//! The partition nemesis (Jepsen's combined partition package as Maelstrom
//! uses it): each `start-partition` picks one of four shapes uniformly and
//! computes a grudge, a map from each node to the nodes it drops messages
//! from.

use crate::edn::{Edn, kw};
use hearsay_core::rng::{Rng, RngExt};
use rand::seq::SliceRandom;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// One random node cut off from all others.
    One,
    /// The first floor((n-1)/3) of a shuffle cut off from the rest.
    MinorityThird,
    /// A shuffle split into floor(n/2) and the rest.
    Majority,
    /// Every node sees a majority, no two the same majority.
    MajoritiesRing,
}

/// In the order Jepsen lists them (the draw is uniform over this list).
pub const SHAPES: [Shape; 4] = [
    Shape::One,
    Shape::MinorityThird,
    Shape::Majority,
    Shape::MajoritiesRing,
];

impl Shape {
    pub fn name(self) -> &'static str {
        match self {
            Shape::One => "one",
            Shape::MinorityThird => "minority-third",
            Shape::Majority => "majority",
            Shape::MajoritiesRing => "majorities-ring",
        }
    }

    pub fn pick(rng: &mut Rng) -> Shape {
        SHAPES[rng.random_range(0..SHAPES.len())]
    }
}

/// Which nodes a process fault (kill, pause) hits: Jepsen's node specs,
/// drawn uniformly (maelstrom-spec-more.md 8.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Targets {
    /// A random non-empty subset (Jepsen's `nil` spec).
    Some,
    One,
    MinorityThird,
    Minority,
    Majority,
    All,
}

pub const TARGETS: [Targets; 6] = [
    Targets::Some,
    Targets::One,
    Targets::MinorityThird,
    Targets::Minority,
    Targets::Majority,
    Targets::All,
];

impl Targets {
    /// The op's `:value` on invocation.
    pub fn edn(self) -> Edn {
        match self {
            Targets::Some => Edn::Nil,
            Targets::One => kw("one"),
            Targets::MinorityThird => kw("minority-third"),
            Targets::Minority => kw("minority"),
            Targets::Majority => kw("majority"),
            Targets::All => kw("all"),
        }
    }

    pub fn pick(rng: &mut Rng) -> Targets {
        TARGETS[rng.random_range(0..TARGETS.len())]
    }

    /// The nodes hit, as sorted indices into the node list.
    pub fn nodes(self, n: usize, rng: &mut Rng) -> Vec<usize> {
        let count = match self {
            Targets::Some if n > 0 => rng.random_range(1..=n),
            Targets::Some => 0,
            Targets::One => n.min(1),
            Targets::MinorityThird => n.saturating_sub(1) / 3,
            Targets::Minority => n / 2,
            Targets::Majority => (n / 2 + 1).min(n),
            Targets::All => n,
        };
        let mut nodes: Vec<usize> = (0..n).collect();
        nodes.shuffle(rng);
        nodes.truncate(count);
        nodes.sort_unstable();
        nodes
    }
}

/// `{"n1" :paused, ...}`: a process fault's completion value.
pub fn affected_edn(nodes: &[usize], names: &[String], what: &str) -> Edn {
    Edn::Map(
        nodes
            .iter()
            .map(|&i| (Edn::from(names[i].as_str()), kw(what)))
            .collect(),
    )
}

/// dest -> the sources it drops; nodes are indices into the test's node list.
pub type Grudge = BTreeMap<usize, BTreeSet<usize>>;

pub fn grudge(shape: Shape, n: usize, rng: &mut Rng) -> Grudge {
    let mut nodes: Vec<usize> = (0..n).collect();
    match shape {
        Shape::One => {
            if n == 0 {
                return Grudge::new();
            }
            let loner = rng.random_range(0..n);
            let rest: Vec<usize> = nodes.into_iter().filter(|&x| x != loner).collect();
            complete(&[vec![loner], rest])
        }
        Shape::Majority => {
            nodes.shuffle(rng);
            let (a, b) = nodes.split_at(n / 2);
            complete(&[a.to_vec(), b.to_vec()])
        }
        Shape::MinorityThird => {
            nodes.shuffle(rng);
            let (a, b) = nodes.split_at(n.saturating_sub(1) / 3);
            complete(&[a.to_vec(), b.to_vec()])
        }
        Shape::MajoritiesRing if n <= 5 => ring_perfect(nodes, rng),
        Shape::MajoritiesRing => ring_stochastic(n, rng),
    }
}

fn majority(n: usize) -> usize {
    n / 2 + 1
}

/// Nobody talks to anyone outside their own component.
fn complete(components: &[Vec<usize>]) -> Grudge {
    let universe: BTreeSet<usize> = components.iter().flatten().copied().collect();
    let mut g = Grudge::new();
    for c in components {
        let inside: BTreeSet<usize> = c.iter().copied().collect();
        for &node in c {
            g.insert(node, universe.difference(&inside).copied().collect());
        }
    }
    g
}

/// A shuffled ring; each node keeps the window of majority size centred on
/// it and drops everything else.
fn ring_perfect(mut nodes: Vec<usize>, rng: &mut Rng) -> Grudge {
    let n = nodes.len();
    nodes.shuffle(rng);
    let m = majority(n);
    let universe: BTreeSet<usize> = nodes.iter().copied().collect();
    let mut g = Grudge::new();
    for i in 0..n {
        let window: BTreeSet<usize> = (0..m).map(|k| nodes[(i + k) % n]).collect();
        let centre = nodes[(i + m / 2) % n];
        g.insert(centre, universe.difference(&window).copied().collect());
    }
    g
}

/// Jepsen's construction for larger clusters: repeatedly link a
/// least-connected node to another least-connected node it is not linked to,
/// until every node (counting itself) sees a majority; drop all non-links.
fn ring_stochastic(n: usize, rng: &mut Rng) -> Grudge {
    let m = majority(n);
    let mut conns: Vec<BTreeSet<usize>> = (0..n).map(|i| BTreeSet::from([i])).collect();
    // Bounded: each round adds one link, and there are at most n^2 links.
    for _ in 0..n * n {
        let mut by_degree: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (node, c) in conns.iter().enumerate() {
            by_degree.entry(c.len()).or_default().push(node);
        }
        let mut order: Vec<(usize, usize)> = Vec::with_capacity(n);
        for (degree, mut group) in by_degree {
            group.shuffle(rng);
            order.extend(group.into_iter().map(|node| (degree, node)));
        }
        let (a_degree, a) = order[0];
        if a_degree >= m {
            break;
        }
        let Some(&(_, b)) = order.iter().find(|(_, b)| !conns[a].contains(b)) else {
            break;
        };
        conns[a].insert(b);
        conns[b].insert(a);
    }
    let universe: BTreeSet<usize> = (0..n).collect();
    conns
        .iter()
        .enumerate()
        .map(|(a, c)| (a, universe.difference(c).copied().collect()))
        .collect()
}

/// The completion value of a start-partition op: `[:isolated {node #{srcs}}]`.
pub fn grudge_edn(g: &Grudge, names: &[String]) -> Edn {
    let m = g
        .iter()
        .map(|(dest, srcs)| {
            (
                Edn::from(names[*dest].as_str()),
                Edn::Set(srcs.iter().map(|s| Edn::from(names[*s].as_str())).collect()),
            )
        })
        .collect();
    Edn::Vector(vec![kw("isolated"), Edn::Map(m)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearsay_core::rng::child;

    fn sees(g: &Grudge, a: usize, n: usize) -> usize {
        n - g.get(&a).map_or(0, BTreeSet::len)
    }

    #[test]
    fn shapes_cut_what_they_should() {
        let mut rng = child(3, "nemesis");
        for n in [1usize, 2, 3, 5, 7, 25] {
            let one = grudge(Shape::One, n, &mut rng);
            let isolated: Vec<_> = one.iter().filter(|(_, s)| s.len() == n - 1).collect();
            assert!(n == 1 || !isolated.is_empty(), "one: n={n}");
            let maj = grudge(Shape::Majority, n, &mut rng);
            // A complete cut between halves of floor(n/2) and the rest.
            let cut_links: usize = maj.values().map(BTreeSet::len).sum();
            assert_eq!(cut_links, 2 * (n / 2) * (n - n / 2), "majority: n={n}");
            let third = grudge(Shape::MinorityThird, n, &mut rng);
            let cut = third.values().filter(|s| s.len() > n / 2).count();
            assert_eq!(cut, (n.saturating_sub(1)) / 3, "minority-third: n={n}");
            if n == 25 {
                assert_eq!(cut, 8);
            }
            let ring = grudge(Shape::MajoritiesRing, n, &mut rng);
            for a in 0..n {
                assert!(
                    sees(&ring, a, n) >= majority(n),
                    "ring: n={n} node {a} sees a minority"
                );
                // Symmetric (Jepsen's 3-node ring is the one exception: its
                // even window cannot be centred).
                for (b, srcs) in ring.iter().filter(|_| n != 3) {
                    assert_eq!(
                        srcs.contains(&a),
                        ring.get(&a).is_some_and(|s| s.contains(b))
                    );
                }
            }
        }
    }

    #[test]
    fn five_node_ring_gives_distinct_majorities() {
        let mut rng = child(4, "nemesis");
        let g = grudge(Shape::MajoritiesRing, 5, &mut rng);
        let views: BTreeSet<BTreeSet<usize>> = (0..5)
            .map(|a| (0..5).filter(|b| !g[&a].contains(b)).collect())
            .collect();
        assert_eq!(views.len(), 5);
        assert!(views.iter().all(|v| v.len() == 3));
    }

    #[test]
    fn grudges_print_as_maelstrom_history_values() {
        let names: Vec<String> = ["n0", "n1"].iter().map(|s| s.to_string()).collect();
        let g = complete(&[vec![0], vec![1]]);
        assert_eq!(
            grudge_edn(&g, &names).compact(),
            r#"[:isolated {"n0" #{"n1"}, "n1" #{"n0"}}]"#
        );
    }

    #[test]
    fn process_fault_targets_follow_jepsens_node_specs() {
        let mut r = hearsay_core::rng::child(9, "t");
        for n in [1usize, 2, 3, 5, 7] {
            assert_eq!(Targets::One.nodes(n, &mut r).len(), 1);
            assert_eq!(Targets::MinorityThird.nodes(n, &mut r).len(), (n - 1) / 3);
            assert_eq!(Targets::Minority.nodes(n, &mut r).len(), n / 2);
            assert_eq!(Targets::Majority.nodes(n, &mut r).len(), n / 2 + 1);
            assert_eq!(Targets::All.nodes(n, &mut r), (0..n).collect::<Vec<_>>());
            let sizes: BTreeSet<usize> = (0..200)
                .map(|_| Targets::Some.nodes(n, &mut r).len())
                .collect();
            assert_eq!(sizes, (1..=n).collect(), "nil spec: every size 1..=n");
        }
        assert_eq!(Targets::Some.edn(), Edn::Nil);
        let names: Vec<String> = vec!["n0".into(), "n1".into()];
        assert_eq!(
            affected_edn(&[1], &names, "paused").compact(),
            "{\"n1\" :paused}"
        );
    }
}
