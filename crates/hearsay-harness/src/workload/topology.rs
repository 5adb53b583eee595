//! The `topology` map the broadcast workload offers nodes (`--topology`).

use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Topology {
    #[default]
    Grid,
    Line,
    /// A tree of the given branching factor (`tree` is `tree2`).
    Tree(usize),
    Total,
}

impl FromStr for Topology {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim_start_matches(':') {
            "grid" => Ok(Topology::Grid),
            "line" => Ok(Topology::Line),
            "tree" | "tree2" => Ok(Topology::Tree(2)),
            "tree3" => Ok(Topology::Tree(3)),
            "tree4" => Ok(Topology::Tree(4)),
            "total" => Ok(Topology::Total),
            _ => Err(format!(
                "unknown topology {s:?}: must be one of grid, line, total, tree, tree2, tree3, tree4"
            )),
        }
    }
}

impl fmt::Display for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Topology::Grid => f.write_str("grid"),
            Topology::Line => f.write_str("line"),
            Topology::Tree(b) => write!(f, "tree{b}"),
            Topology::Total => f.write_str("total"),
        }
    }
}

/// (node, neighbours) in the order Maelstrom lists them.
pub type TopologyMap = Vec<(String, Vec<String>)>;

impl Topology {
    pub fn build(self, nodes: &[String]) -> TopologyMap {
        let n = nodes.len();
        let at = |i: usize| nodes[i].clone();
        match self {
            Topology::Grid => {
                let side = (1..=n.max(1)).find(|s| s * s >= n).unwrap_or(1);
                let node = |i: isize, j: isize| -> Option<String> {
                    if i < 0 || j < 0 || j >= side as isize {
                        return None;
                    }
                    let idx = i as usize * side + j as usize;
                    (idx < n).then(|| at(idx))
                };
                let mut out = Vec::new();
                for i in 0..side as isize {
                    for j in 0..side as isize {
                        if let Some(me) = node(i, j) {
                            let nb = [
                                node(i + 1, j),
                                node(i - 1, j),
                                node(i, j + 1),
                                node(i, j - 1),
                            ];
                            out.push((me, nb.into_iter().flatten().collect()));
                        }
                    }
                }
                out
            }
            Topology::Line if n < 2 => Vec::new(),
            Topology::Line => (0..n)
                .map(|i| {
                    let nb = match i {
                        0 => vec![at(1)],
                        _ if i == n - 1 => vec![at(n - 2)],
                        _ => vec![at(i - 1), at(i + 1)],
                    };
                    (at(i), nb)
                })
                .collect(),
            Topology::Tree(b) => (0..n)
                .map(|i| {
                    let parent = (i > 0).then(|| at((i - 1) / b));
                    let children = (b * i + 1..=b * i + b).filter(|&c| c < n).map(at);
                    (at(i), parent.into_iter().chain(children).collect())
                })
                .collect(),
            Topology::Total => (0..n)
                .map(|i| (at(i), (0..n).filter(|&j| j != i).map(at).collect()))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("n{i}")).collect()
    }

    fn find(t: &TopologyMap, k: &str) -> Vec<String> {
        t.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap()
    }

    #[test]
    fn matches_maelstrom_examples() {
        let g = Topology::Grid.build(&nodes(5));
        assert_eq!(find(&g, "n0"), ["n3", "n1"]);
        assert_eq!(find(&g, "n1"), ["n4", "n2", "n0"]);
        assert_eq!(find(&g, "n2"), ["n1"]);
        assert_eq!(find(&g, "n3"), ["n0", "n4"]);
        assert_eq!(find(&g, "n4"), ["n1", "n3"]);
        let g25 = Topology::Grid.build(&nodes(25));
        assert_eq!(find(&g25, "n6"), ["n11", "n1", "n7", "n5"]);
        assert_eq!(find(&g25, "n0"), ["n5", "n1"]);
        let t = Topology::Tree(4).build(&nodes(25));
        assert_eq!(find(&t, "n0"), ["n1", "n2", "n3", "n4"]);
        assert_eq!(find(&t, "n1"), ["n0", "n5", "n6", "n7", "n8"]);
        assert_eq!(find(&t, "n5"), ["n1", "n21", "n22", "n23", "n24"]);
        assert_eq!(find(&t, "n4"), ["n0", "n17", "n18", "n19", "n20"]);
        assert_eq!(find(&t, "n21"), ["n5"]);
        assert!(Topology::Line.build(&nodes(1)).is_empty());
        assert_eq!(
            Topology::Grid.build(&nodes(1)),
            vec![("n0".to_string(), vec![])]
        );
        assert_eq!(find(&Topology::Line.build(&nodes(3)), "n1"), ["n0", "n2"]);
        assert_eq!(find(&Topology::Total.build(&nodes(3)), "n1"), ["n0", "n2"]);
    }
}
