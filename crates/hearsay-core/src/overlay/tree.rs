//! A k-ary tree over the rank order whose edges survive churn.
//!
//! Levels are rank ranges of sizes 1, k, k^2, ... (the top-ranked member is
//! the root). A member's parent is the member of the level above with the
//! highest rendezvous score for it, so when a member joins or leaves, only
//! the children whose best candidate changed move (about 2/k of a level),
//! instead of everything after it shifting as in a heap-ordered tree.

use crate::id::{NodeId, mix};

pub(crate) struct Tree {
    parent: Vec<Option<usize>>,
    children: Vec<Vec<usize>>,
}

/// The rendezvous score of a candidate parent for a child.
fn score(child: u64, candidate_mixed: u64) -> u64 {
    mix(child ^ candidate_mixed)
}

impl Tree {
    pub fn new(ranked: &[NodeId], k: usize) -> Tree {
        let n = ranked.len();
        let k = k.max(1);
        let hashes: Vec<u64> = ranked.iter().map(NodeId::hash64).collect();
        let mixed: Vec<u64> = hashes.iter().map(|h| mix(*h)).collect();
        let mut parent = vec![None; n];
        let mut children = vec![Vec::new(); n];
        let (mut above, mut start, mut size) = (0..0, 0usize, 1usize);
        while start < n {
            let level = start..(start.saturating_add(size)).min(n);
            for x in level.clone() {
                let best = above
                    .clone()
                    .max_by_key(|&y: &usize| (score(hashes[x], mixed[y]), std::cmp::Reverse(y)));
                if let Some(p) = best {
                    parent[x] = Some(p);
                    children[p].push(x);
                }
            }
            start = level.end;
            above = level;
            size = size.saturating_mul(k);
        }
        Tree { parent, children }
    }

    /// Parent first, then children in rank order.
    pub fn neighbours(&self, pos: usize) -> Vec<usize> {
        let mut out: Vec<usize> = self.parent[pos].into_iter().collect();
        out.extend(&self.children[pos]);
        out
    }

    /// Members in the subtree of each position.
    fn sizes(&self) -> Vec<usize> {
        let n = self.parent.len();
        let mut size = vec![1usize; n];
        // Children always rank below their parent: one backward pass.
        for x in (0..n).rev() {
            if let Some(p) = self.parent[x] {
                size[p] += size[x];
            }
        }
        size
    }

    /// For each neighbour of `pos`: the members on its side of the edge.
    pub fn reach(&self, pos: usize) -> Vec<(usize, usize)> {
        let n = self.parent.len();
        let size = self.sizes();
        let mut out = Vec::new();
        if let Some(p) = self.parent[pos] {
            out.push((p, n - size[pos]));
        }
        out.extend(self.children[pos].iter().map(|&c| (c, size[c])));
        out
    }
}
