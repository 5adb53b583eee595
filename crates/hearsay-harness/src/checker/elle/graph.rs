//! The transaction dependency graph (maelstrom-spec-more.md 4.2): vertices
//! are transactions, each edge carries the set of relations that order its
//! ends (ww, wr, rw, process, realtime), stored compactly (CSR). Strongly
//! connected components come from an iterative Tarjan, so no history is deep
//! enough to overflow the stack.

use std::fmt;

/// A set of dependency relations, one bit each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Rels(pub u8);

impl Rels {
    pub const NONE: Rels = Rels(0);
    pub const WW: Rels = Rels(1);
    pub const WR: Rels = Rels(2);
    pub const RW: Rels = Rels(4);
    pub const PROCESS: Rels = Rels(8);
    pub const REALTIME: Rels = Rels(16);
    pub const DATA: Rels = Rels(1 | 2 | 4);
    pub const ALL: Rels = Rels(31);

    pub fn contains(self, other: Rels) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn intersects(self, other: Rels) -> bool {
        self.0 & other.0 != 0
    }

    pub fn union(self, other: Rels) -> Rels {
        Rels(self.0 | other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The single relations in the set, in the order Elle's combined
    /// explainer tries them for rw-register: wr, ww, rw, then the rest.
    pub fn singles(self) -> impl Iterator<Item = Rels> {
        [Rels::WR, Rels::WW, Rels::RW, Rels::PROCESS, Rels::REALTIME]
            .into_iter()
            .filter(move |r| self.contains(*r))
    }

    /// The keyword of a single relation.
    pub fn name(self) -> &'static str {
        match self {
            Rels::WW => "ww",
            Rels::WR => "wr",
            Rels::RW => "rw",
            Rels::PROCESS => "process",
            Rels::REALTIME => "realtime",
            _ => "rels",
        }
    }
}

impl fmt::Display for Rels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.singles().map(Rels::name).collect();
        write!(f, "{}", names.join("+"))
    }
}

/// Adjacency in compressed rows: the successors of `v` are
/// `targets[offsets[v]..offsets[v + 1]]`, with their relations alongside.
#[derive(Clone, Debug, Default)]
pub struct DepGraph {
    offsets: Vec<u32>,
    targets: Vec<u32>,
    rels: Vec<Rels>,
}

impl DepGraph {
    /// A graph on `n` vertices from `(from, to, rels)` edges; parallel edges
    /// merge their relations, self-edges are dropped (Elle never keeps one).
    pub fn new(n: usize, mut edges: Vec<(u32, u32, Rels)>) -> DepGraph {
        edges.retain(|(a, b, r)| a != b && !r.is_empty());
        edges.sort_unstable_by_key(|&(a, b, _)| (a, b));
        let mut offsets = vec![0u32; n + 1];
        let mut targets = Vec::with_capacity(edges.len());
        let mut rels: Vec<Rels> = Vec::with_capacity(edges.len());
        let mut last: Option<(u32, u32)> = None;
        for (a, b, r) in edges {
            if last == Some((a, b)) {
                let l = rels.len() - 1;
                rels[l] = rels[l].union(r);
                continue;
            }
            last = Some((a, b));
            offsets[a as usize + 1] += 1;
            targets.push(b);
            rels.push(r);
        }
        for v in 0..n {
            offsets[v + 1] += offsets[v];
        }
        DepGraph {
            offsets,
            targets,
            rels,
        }
    }

    pub fn vertex_count(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    pub fn edge_count(&self) -> usize {
        self.targets.len()
    }

    /// Vertices with at least one edge: what Elle's graph holds.
    pub fn linked_vertices(&self) -> usize {
        let mut linked = vec![false; self.vertex_count()];
        for v in 0..self.vertex_count() {
            let (lo, hi) = self.row(v as u32);
            if lo < hi {
                linked[v] = true;
            }
            for &w in &self.targets[lo..hi] {
                linked[w as usize] = true;
            }
        }
        linked.iter().filter(|l| **l).count()
    }

    fn row(&self, v: u32) -> (usize, usize) {
        (
            self.offsets[v as usize] as usize,
            self.offsets[v as usize + 1] as usize,
        )
    }

    pub fn out(&self, v: u32) -> impl Iterator<Item = (u32, Rels)> + '_ {
        let (lo, hi) = self.row(v);
        self.targets[lo..hi]
            .iter()
            .copied()
            .zip(self.rels[lo..hi].iter().copied())
    }

    /// The relations on the edge `a -> b`, if any.
    pub fn edge(&self, a: u32, b: u32) -> Rels {
        let (lo, hi) = self.row(a);
        match self.targets[lo..hi].binary_search(&b) {
            Ok(i) => self.rels[lo + i],
            Err(_) => Rels::NONE,
        }
    }

    /// The strongly connected components with two or more vertices, each
    /// sorted, in order of their smallest vertex.
    pub fn sccs(&self) -> Vec<Vec<u32>> {
        let csr = Csr {
            offsets: self.offsets.clone(),
            targets: self.targets.clone(),
        };
        let mut out: Vec<Vec<u32>> = csr.sccs();
        for c in &mut out {
            c.sort_unstable();
        }
        out.sort_unstable_by_key(|c| c[0]);
        out
    }

    /// The subgraph on `vertices` (global ids), renumbered 0.., with all its
    /// relations.
    pub fn restrict(&self, vertices: &[u32]) -> Local {
        let mut local_of = std::collections::HashMap::with_capacity(vertices.len());
        for (i, &v) in vertices.iter().enumerate() {
            local_of.insert(v, i as u32);
        }
        let mut offsets = Vec::with_capacity(vertices.len() + 1);
        let mut targets = Vec::new();
        let mut rels = Vec::new();
        offsets.push(0);
        for &v in vertices {
            for (w, r) in self.out(v) {
                if let Some(&lw) = local_of.get(&w) {
                    targets.push(lw);
                    rels.push(r);
                }
            }
            offsets.push(targets.len() as u32);
        }
        Local {
            global: vertices.to_vec(),
            offsets,
            targets,
            rels,
        }
    }
}

/// A strongly connected component's own graph, vertices numbered from 0;
/// `global[i]` is the vertex in the whole graph.
#[derive(Clone, Debug)]
pub struct Local {
    pub global: Vec<u32>,
    offsets: Vec<u32>,
    targets: Vec<u32>,
    rels: Vec<Rels>,
}

impl Local {
    pub fn len(&self) -> usize {
        self.global.len()
    }

    pub fn is_empty(&self) -> bool {
        self.global.is_empty()
    }

    pub fn out(&self, v: u32) -> impl Iterator<Item = (u32, Rels)> + '_ {
        let (lo, hi) = (
            self.offsets[v as usize] as usize,
            self.offsets[v as usize + 1] as usize,
        );
        self.targets[lo..hi]
            .iter()
            .copied()
            .zip(self.rels[lo..hi].iter().copied())
    }

    pub fn edge(&self, a: u32, b: u32) -> Rels {
        self.out(a)
            .find(|(w, _)| *w == b)
            .map_or(Rels::NONE, |(_, r)| r)
    }

    /// The union of the relations on all edges.
    pub fn rels_present(&self) -> Rels {
        self.rels.iter().fold(Rels::NONE, |a, r| a.union(*r))
    }

    /// The smallest nontrivial component of the projection onto `mask`, as
    /// local vertices.
    pub fn smallest_scc(&self, mask: Rels) -> Option<Vec<u32>> {
        let n = self.len();
        let mut offsets = Vec::with_capacity(n + 1);
        let mut targets = Vec::new();
        offsets.push(0);
        for v in 0..n as u32 {
            targets.extend(
                self.out(v)
                    .filter(|(_, r)| r.intersects(mask))
                    .map(|(w, _)| w),
            );
            offsets.push(targets.len() as u32);
        }
        Csr { offsets, targets }
            .sccs()
            .into_iter()
            .map(|mut c| {
                c.sort_unstable();
                c
            })
            .min_by_key(|c| (c.len(), c.first().copied()))
    }

    /// The smallest nontrivial component of Elle's sequential extension
    /// `A ∪ (A; B)`: cycles through `a` edges in which every `b` edge follows
    /// an `a` edge. Walked as a doubled graph, `(v, 0)` reached by an `a`
    /// edge and `(v, 1)` by a `b` edge, so no two `b` edges meet.
    pub fn smallest_extension_scc(&self, a: Rels, b: Rels) -> Option<Vec<u32>> {
        let n = self.len();
        let mut offsets = Vec::with_capacity(2 * n + 1);
        let mut targets = Vec::new();
        offsets.push(0);
        for half in 0..2u32 {
            for v in 0..n as u32 {
                for (w, r) in self.out(v) {
                    if r.intersects(a) {
                        targets.push(w);
                    }
                    if half == 0 && r.intersects(b) {
                        targets.push(w + n as u32);
                    }
                }
                offsets.push(targets.len() as u32);
            }
        }
        Csr { offsets, targets }
            .sccs()
            .into_iter()
            .map(|c| {
                let mut vs: Vec<u32> = c.into_iter().map(|x| x % n as u32).collect();
                vs.sort_unstable();
                vs.dedup();
                vs
            })
            .filter(|vs| vs.len() >= 2)
            .min_by_key(|c| (c.len(), c.first().copied()))
    }
}

/// Bare adjacency for Tarjan.
struct Csr {
    offsets: Vec<u32>,
    targets: Vec<u32>,
}

const UNSEEN: u32 = u32::MAX;

impl Csr {
    /// Tarjan's algorithm with an explicit call stack; components of one
    /// vertex are left out (no self-edges here).
    fn sccs(&self) -> Vec<Vec<u32>> {
        let n = self.offsets.len() - 1;
        let mut index = vec![UNSEEN; n];
        let mut low = vec![0u32; n];
        let mut on_stack = vec![false; n];
        let mut stack: Vec<u32> = Vec::new();
        let mut calls: Vec<(u32, u32)> = Vec::new();
        let mut next = 0u32;
        let mut out = Vec::new();
        for root in 0..n as u32 {
            if index[root as usize] != UNSEEN {
                continue;
            }
            index[root as usize] = next;
            low[root as usize] = next;
            next += 1;
            stack.push(root);
            on_stack[root as usize] = true;
            calls.push((root, self.offsets[root as usize]));
            while let Some(&mut (v, ref mut pos)) = calls.last_mut() {
                let vi = v as usize;
                if *pos < self.offsets[vi + 1] {
                    let w = self.targets[*pos as usize];
                    *pos += 1;
                    let wi = w as usize;
                    if index[wi] == UNSEEN {
                        index[wi] = next;
                        low[wi] = next;
                        next += 1;
                        stack.push(w);
                        on_stack[wi] = true;
                        calls.push((w, self.offsets[wi]));
                    } else if on_stack[wi] {
                        low[vi] = low[vi].min(index[wi]);
                    }
                    continue;
                }
                calls.pop();
                if let Some(&(parent, _)) = calls.last() {
                    let p = parent as usize;
                    low[p] = low[p].min(low[vi]);
                }
                if low[vi] == index[vi] {
                    let mut comp = Vec::new();
                    while let Some(w) = stack.pop() {
                        on_stack[w as usize] = false;
                        comp.push(w);
                        if w == v {
                            break;
                        }
                    }
                    if comp.len() >= 2 {
                        out.push(comp);
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(n: usize, edges: &[(u32, u32, Rels)]) -> DepGraph {
        DepGraph::new(n, edges.to_vec())
    }

    #[test]
    fn parallel_edges_merge_and_self_edges_vanish() {
        let d = g(
            3,
            &[
                (0, 1, Rels::WW),
                (0, 1, Rels::REALTIME),
                (1, 1, Rels::WR),
                (2, 0, Rels::RW),
            ],
        );
        assert_eq!(d.edge(0, 1), Rels::WW.union(Rels::REALTIME));
        assert_eq!(d.edge(1, 1), Rels::NONE);
        assert_eq!(d.edge_count(), 2);
        assert_eq!(d.linked_vertices(), 3);
        assert_eq!(
            Rels(Rels::WW.0 | Rels::REALTIME.0).to_string(),
            "ww+realtime"
        );
    }

    #[test]
    fn tarjan_finds_every_component_and_survives_a_deep_chain() {
        let d = g(
            6,
            &[
                (0, 1, Rels::WW),
                (1, 2, Rels::WR),
                (2, 0, Rels::RW),
                (2, 3, Rels::WW),
                (4, 5, Rels::WR),
                (5, 4, Rels::WR),
            ],
        );
        assert_eq!(d.sccs(), vec![vec![0, 1, 2], vec![4, 5]]);
        // A 200,000-long ring: recursion would overflow, this does not.
        let n = 200_000u32;
        let ring: Vec<(u32, u32, Rels)> = (0..n).map(|i| (i, (i + 1) % n, Rels::WW)).collect();
        let big = DepGraph::new(n as usize, ring);
        assert_eq!(big.sccs().len(), 1);
        assert_eq!(big.sccs()[0].len(), n as usize);
    }

    #[test]
    fn projections_and_the_extension_see_only_their_cycles() {
        // 0 -ww-> 1 -rw-> 2 -rw-> 0: a cycle, but rw edges are adjacent.
        let d = g(3, &[(0, 1, Rels::WW), (1, 2, Rels::RW), (2, 0, Rels::RW)]);
        let l = d.restrict(&[0, 1, 2]);
        assert!(l.smallest_scc(Rels::WW.union(Rels::WR)).is_none());
        assert_eq!(l.smallest_scc(Rels::DATA), Some(vec![0, 1, 2]));
        assert!(
            l.smallest_extension_scc(Rels::WW.union(Rels::WR), Rels::RW)
                .is_none()
        );
        // 0 -ww-> 1 -rw-> 0: one rw after a ww.
        let d = g(2, &[(0, 1, Rels::WW), (1, 0, Rels::RW)]);
        let l = d.restrict(&[0, 1]);
        assert_eq!(
            l.smallest_extension_scc(Rels::WW.union(Rels::WR), Rels::RW),
            Some(vec![0, 1])
        );
    }
}
