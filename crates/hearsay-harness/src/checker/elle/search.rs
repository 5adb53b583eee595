//! Cycle search inside one strongly connected component
//! (maelstrom-spec-more.md 4.3): after the existence checks
//! ([`super::exists`]), one example cycle of each anomaly type, most severe
//! first, skipping types already implied or proven impossible.
//!
//! Elle walks paths breadth-first and gives each component a second of wall
//! time. Here a type is a small automaton over the edge relations (how many
//! rw edges, whether two met, whether a wr or a process/realtime edge was
//! used), and the search is a breadth-first walk of (vertex, automaton state)
//! pairs from each vertex that starts an edge the type cannot do without,
//! each edge acting as the one relation Elle would explain it by.
//! That finds the shortest closed walk through that vertex; one that repeats
//! a vertex is split into simple cycles, and a part of the right type is
//! kept. Work is counted in edge visits, so a run decides the same way
//! every time; past the budget the component reports `:cycle-search-timeout`
//! and one fallback cycle, as Elle does.

use super::graph::{Local, Rels};
use super::model;
use std::collections::HashMap;
use std::sync::OnceLock;

/// How a type treats rw (anti-dependency) edges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RwRule {
    /// None allowed.
    Forbidden,
    /// Exactly one (G-single).
    Single,
    /// Two or more, no two adjacent, around the cycle too (G-nonadjacent).
    Nonadjacent,
    /// Two or more, some two adjacent (G2-item).
    Adjacent,
}

/// One searchable anomaly type.
#[derive(Clone, Copy, Debug)]
pub struct CycleSpec {
    pub name: &'static str,
    /// ww / wr edges it may take anywhere.
    free: Rels,
    /// PROCESS or REALTIME for the variants (then required), else NONE.
    variant: Rels,
    rw: RwRule,
    need_wr: bool,
}

const BASES: [(&str, Rels, RwRule, bool); 5] = [
    ("G0", Rels::WW, RwRule::Forbidden, false),
    ("G1c", Rels(1 | 2), RwRule::Forbidden, true),
    ("G-single-item", Rels(1 | 2), RwRule::Single, false),
    (
        "G-nonadjacent-item",
        Rels(1 | 2),
        RwRule::Nonadjacent,
        false,
    ),
    ("G2-item", Rels(1 | 2), RwRule::Adjacent, false),
];

/// The names of the item types and their variants, as Elle 0.2.x prints
/// them (maelstrom-spec-more.md 11: not 0.1.x's `G-single`).
const NAMES: [[&str; 3]; 5] = [
    ["G0", "G0-process", "G0-realtime"],
    ["G1c", "G1c-process", "G1c-realtime"],
    [
        "G-single-item",
        "G-single-item-process",
        "G-single-item-realtime",
    ],
    [
        "G-nonadjacent-item",
        "G-nonadjacent-item-process",
        "G-nonadjacent-item-realtime",
    ],
    ["G2-item", "G2-item-process", "G2-item-realtime"],
];

/// The 15 types these checkers can produce, in Elle's search order
/// (severity depth, then name). The predicate types (`G-single`, `G2`,
/// `G-nonadjacent`) need predicate edges and are never found.
pub fn specs() -> &'static [CycleSpec] {
    static SPECS: OnceLock<Vec<CycleSpec>> = OnceLock::new();
    SPECS.get_or_init(|| {
        let mut all = Vec::new();
        for (b, (_, free, rw, need_wr)) in BASES.iter().enumerate() {
            for (v, variant) in [Rels::NONE, Rels::PROCESS, Rels::REALTIME]
                .into_iter()
                .enumerate()
            {
                all.push(CycleSpec {
                    name: NAMES[b][v],
                    free: *free,
                    variant,
                    rw: *rw,
                    need_wr: *need_wr,
                });
            }
        }
        all.sort_by_key(|s| (model::depth(s.name), s.name));
        all
    })
}

/// Elle's classification of a cycle by the relations of its steps.
pub fn classify(rels: &[Rels]) -> Option<&'static str> {
    let count = |r: Rels| rels.iter().filter(|x| **x == r).count();
    let rw = count(Rels::RW);
    let n = rels.len();
    let adjacent = (0..n).any(|i| rels[i] == Rels::RW && rels[(i + 1) % n] == Rels::RW);
    let base = if rw == 1 {
        2
    } else if rw > 1 {
        if adjacent { 4 } else { 3 }
    } else if count(Rels::WR) > 0 {
        1
    } else if count(Rels::WW) > 0 {
        0
    } else {
        return None;
    };
    let variant = if count(Rels::REALTIME) > 0 {
        2
    } else if count(Rels::PROCESS) > 0 {
        1
    } else {
        0
    };
    Some(NAMES[base][variant])
}

// Automaton state bits.
const SEEN_WR: u8 = 1;
const SEEN_P: u8 = 2;
const RW_ONE: u8 = 4;
const RW_MANY: u8 = 8;
const FIRST_RW: u8 = 16;
const LAST_RW: u8 = 32;
const ADJACENT: u8 = 64;
const STATES: usize = 128;

impl CycleSpec {
    /// Relations this type may step along.
    fn usable(&self) -> Rels {
        let rw = if self.rw == RwRule::Forbidden {
            Rels::NONE
        } else {
            Rels::RW
        };
        self.free.union(self.variant).union(rw)
    }

    /// The relation every cycle of this type contains: searches start on it.
    fn anchor(&self) -> Rels {
        if self.rw != RwRule::Forbidden {
            Rels::RW
        } else if self.need_wr {
            Rels::WR
        } else if !self.variant.is_empty() {
            self.variant
        } else {
            Rels::WW
        }
    }

    fn step(&self, q: u8, r: Rels, first: bool) -> Option<u8> {
        if r == Rels::RW {
            let count = if q & RW_MANY != 0 {
                2
            } else if q & RW_ONE != 0 {
                1
            } else {
                0
            };
            let last = q & LAST_RW != 0;
            let mut q2 = q & !(RW_ONE | RW_MANY);
            match self.rw {
                RwRule::Forbidden => return None,
                RwRule::Single if count >= 1 => return None,
                RwRule::Nonadjacent if last => return None,
                RwRule::Adjacent if last && !first => q2 |= ADJACENT,
                _ => {}
            }
            q2 |= if count == 0 { RW_ONE } else { RW_MANY };
            q2 |= LAST_RW;
            if first {
                q2 |= FIRST_RW;
            }
            return Some(q2);
        }
        if !self.free.union(self.variant).contains(r) {
            return None;
        }
        let mut q2 = q & !LAST_RW;
        if r == Rels::WR {
            q2 |= SEEN_WR;
        }
        if r == self.variant {
            q2 |= SEEN_P;
        }
        Some(q2)
    }

    fn accepts(&self, q: u8) -> bool {
        if self.need_wr && q & SEEN_WR == 0 {
            return false;
        }
        if !self.variant.is_empty() && q & SEEN_P == 0 {
            return false;
        }
        let many = q & RW_MANY != 0;
        let around = q & FIRST_RW != 0 && q & LAST_RW != 0;
        match self.rw {
            RwRule::Forbidden => true,
            RwRule::Single => q & RW_ONE != 0,
            RwRule::Nonadjacent => many && !around,
            RwRule::Adjacent => many && (q & ADJACENT != 0 || around),
        }
    }

    /// Reachable automaton states, numbered densely.
    fn dense_states(&self) -> ([u8; STATES], usize) {
        let mut dense = [u8::MAX; STATES];
        let mut todo = vec![0u8];
        dense[0] = 0;
        let mut n = 1usize;
        while let Some(q) = todo.pop() {
            for first in [true, false] {
                for r in self.usable().singles() {
                    if let Some(q2) = self.step(q, r, first)
                        && dense[q2 as usize] == u8::MAX
                    {
                        dense[q2 as usize] = n as u8;
                        n += 1;
                        todo.push(q2);
                    }
                }
            }
        }
        (dense, n)
    }
}

/// A closed walk: vertices (local ids) and the relation of the step leaving
/// each one, the last step returning to the first vertex.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Walk {
    pub verts: Vec<u32>,
    pub rels: Vec<Rels>,
}

impl Walk {
    fn is_simple(&self) -> bool {
        let mut seen: Vec<u32> = self.verts.clone();
        seen.sort_unstable();
        seen.windows(2).all(|w| w[0] != w[1])
    }

    /// Splits at repeated vertices into simple cycles.
    fn simple_parts(self, out: &mut Vec<Walk>) {
        let mut first_at: HashMap<u32, usize> = HashMap::new();
        for (j, &v) in self.verts.iter().enumerate() {
            if let Some(&i) = first_at.get(&v) {
                let inner = Walk {
                    verts: self.verts[i..j].to_vec(),
                    rels: self.rels[i..j].to_vec(),
                };
                let mut outer = Walk {
                    verts: self.verts[..i].to_vec(),
                    rels: self.rels[..i].to_vec(),
                };
                outer.verts.extend_from_slice(&self.verts[j..]);
                outer.rels.extend_from_slice(&self.rels[j..]);
                inner.simple_parts(out);
                outer.simple_parts(out);
                return;
            }
            first_at.insert(v, j);
        }
        out.push(self);
    }
}

/// Search work, counted in edge visits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// For all the searches in one component.
    pub per_scc: u64,
    /// For the whole history.
    pub total: u64,
}

impl Default for Budget {
    /// A step is ~11 ns (release build), so a component gets ~0.1 s and a
    /// whole history ~1.1 s at worst. Real 20 s histories at 1,000 ops/s
    /// have components of at most a few hundred transactions that spend
    /// under 100,000 steps.
    fn default() -> Budget {
        Budget {
            per_scc: 10_000_000,
            total: 100_000_000,
        }
    }
}

/// Steps left, for the component and for the whole check.
pub struct Spend {
    pub scc_left: u64,
    pub total_left: u64,
}

impl Spend {
    fn take(&mut self, n: u64) -> bool {
        if self.scc_left < n || self.total_left < n {
            self.scc_left = 0;
            return false;
        }
        self.scc_left -= n;
        self.total_left -= n;
        true
    }
}

/// Out of budget.
#[derive(Debug)]
pub struct Exhausted;

/// Scratch space for breadth-first searches over one component, reused by
/// every search in it.
pub struct Searcher<'a> {
    g: &'a Local,
    /// Which relation explains an edge carrying several ([`explained_by`]).
    order: Order,
    stamp: Vec<u32>,
    parent: Vec<u32>,
    via: Vec<Rels>,
    run: u32,
    queue: std::collections::VecDeque<u32>,
}

/// After the first cycle of a type, this many more start vertices are tried
/// for a shorter one.
const EXTRA_STARTS: usize = 8;

impl<'a> Searcher<'a> {
    pub fn new(g: &'a Local) -> Searcher<'a> {
        Searcher::with_order(g, RW_REGISTER_ORDER)
    }

    /// A searcher whose edges act as the first relation of `order` they
    /// carry (list-append explains ww before wr).
    pub fn with_order(g: &'a Local, order: Order) -> Searcher<'a> {
        Searcher {
            g,
            order,
            stamp: Vec::new(),
            parent: Vec::new(),
            via: Vec::new(),
            run: 0,
            queue: Default::default(),
        }
    }

    fn reset(&mut self, size: usize) {
        if self.stamp.len() < size {
            self.stamp.resize(size, 0);
            self.parent.resize(size, 0);
            self.via.resize(size, Rels::NONE);
        }
        self.run = self.run.wrapping_add(1);
        if self.run == 0 {
            self.stamp.iter_mut().for_each(|s| *s = 0);
            self.run = 1;
        }
        self.queue.clear();
    }

    /// A short simple cycle of `spec`'s type, if there is one.
    pub fn find(&mut self, spec: &CycleSpec, spend: &mut Spend) -> Result<Option<Walk>, Exhausted> {
        let present = self.g.rels_present();
        let needed = [
            spec.anchor(),
            spec.variant,
            if spec.need_wr { Rels::WR } else { Rels::NONE },
        ];
        if needed
            .iter()
            .any(|r| !r.is_empty() && !present.intersects(*r))
        {
            return Ok(None);
        }
        let (dense, states) = spec.dense_states();
        let anchor = spec.anchor();
        let mut best: Option<Walk> = None;
        let mut extra = 0;
        for s in 0..self.g.len() as u32 {
            if !self
                .g
                .out(s)
                .any(|(_, r)| explained_by(r, self.order) == anchor)
            {
                continue;
            }
            if let Some(w) = self.from(spec, s, &dense, states, spend)?
                && best.as_ref().is_none_or(|b| w.verts.len() < b.verts.len())
            {
                best = Some(w);
            }
            if best.is_some() {
                if best.as_ref().is_some_and(|b| b.verts.len() <= 2) || extra >= EXTRA_STARTS {
                    break;
                }
                extra += 1;
            }
        }
        Ok(best)
    }

    /// The shortest closed walk of `spec` through `s` whose first step is
    /// an anchor edge, as a simple cycle of the type (or `None`).
    fn from(
        &mut self,
        spec: &CycleSpec,
        s: u32,
        dense: &[u8; STATES],
        states: usize,
        spend: &mut Spend,
    ) -> Result<Option<Walk>, Exhausted> {
        let g = self.g;
        self.reset(g.len() * states);
        let at = |v: u32, q: u8| v as usize * states + dense[q as usize] as usize;
        let start = at(s, 0);
        self.stamp[start] = self.run;
        // Queue entries are (vertex, state) packed: vertex * 128 + state.
        self.queue.push_back(s * STATES as u32);
        let usable = spec.usable();
        let anchor = spec.anchor();
        while let Some(packed) = self.queue.pop_front() {
            let (u, q) = (packed / STATES as u32, (packed % STATES as u32) as u8);
            let first = u == s;
            let mut visits = 0u64;
            for (w, rels) in g.out(u) {
                visits += 1;
                let r = explained_by(rels, self.order);
                if !usable.contains(r) || (first && r != anchor) {
                    continue;
                }
                let Some(q2) = spec.step(q, r, first) else {
                    continue;
                };
                if w == s {
                    if spec.accepts(q2) {
                        let walk = self.walk_back(s, u, q, r, dense, states);
                        if let Some(c) = pick(walk, spec) {
                            return Ok(Some(c));
                        }
                    }
                    continue;
                }
                let i = at(w, q2);
                if self.stamp[i] != self.run {
                    self.stamp[i] = self.run;
                    self.parent[i] = packed;
                    self.via[i] = r;
                    self.queue.push_back(w * STATES as u32 + q2 as u32);
                }
            }
            if !spend.take(visits.max(1)) {
                return Err(Exhausted);
            }
        }
        Ok(None)
    }

    fn walk_back(
        &self,
        s: u32,
        last: u32,
        q: u8,
        closing: Rels,
        dense: &[u8; STATES],
        states: usize,
    ) -> Walk {
        let mut verts = vec![last];
        let mut rels = vec![closing];
        let (mut v, mut state) = (last, q);
        while v != s {
            let i = v as usize * states + dense[state as usize] as usize;
            let p = self.parent[i];
            rels.push(self.via[i]);
            v = p / STATES as u32;
            state = (p % STATES as u32) as u8;
            verts.push(v);
        }
        verts.reverse();
        rels.reverse();
        Walk { verts, rels }
    }

    /// Some cycle of the component, shortest through its first vertex, each
    /// step named by its [`explained`] relation: what a component that ran
    /// out of budget still shows.
    pub fn fallback(&mut self) -> Option<Walk> {
        let g = self.g;
        if g.is_empty() {
            return None;
        }
        self.reset(g.len());
        self.stamp[0] = self.run;
        self.queue.push_back(0);
        while let Some(u) = self.queue.pop_front() {
            for (w, rels) in g.out(u) {
                let r = explained_by(rels, self.order);
                if w == 0 {
                    let mut verts = vec![u];
                    let mut steps = vec![r];
                    let mut v = u;
                    while v != 0 {
                        steps.push(self.via[v as usize]);
                        v = self.parent[v as usize];
                        verts.push(v);
                    }
                    verts.reverse();
                    steps.reverse();
                    return Some(Walk { verts, rels: steps });
                }
                if self.stamp[w as usize] != self.run {
                    self.stamp[w as usize] = self.run;
                    self.parent[w as usize] = u;
                    self.via[w as usize] = r;
                    self.queue.push_back(w);
                }
            }
        }
        None
    }
}

/// The relation a step is explained by when an edge carries several: the
/// first of wr, ww, rw, process, realtime, as Elle's combined explainer
/// tries them. Elle classifies a cycle by these explanations and drops a
/// search result whose class is not the type searched for, so an edge acts
/// as its explained relation only. (In rw-register every ww edge is also a
/// wr edge, which is why Maelstrom never reports G0 there: such cycles
/// are G1c, and `:PL-1-cycle-exists` still fails read-uncommitted.)
pub fn explained(rels: Rels) -> Rels {
    explained_by(rels, RW_REGISTER_ORDER)
}

/// The order in which a datatype's combined explainer tries the relations.
pub type Order = [Rels; 5];

/// rw-register's: Elle combines its wr graph before its ww+rw graph.
pub const RW_REGISTER_ORDER: Order = [Rels::WR, Rels::WW, Rels::RW, Rels::PROCESS, Rels::REALTIME];

/// list-append's: Elle combines its ww, wr and rw graphs in that order.
pub const LIST_APPEND_ORDER: Order = [Rels::WW, Rels::WR, Rels::RW, Rels::PROCESS, Rels::REALTIME];

/// The first relation of `order` that `rels` carries.
pub fn explained_by(rels: Rels, order: Order) -> Rels {
    order
        .into_iter()
        .find(|r| rels.contains(*r))
        .unwrap_or(Rels::NONE)
}

/// A found walk as a simple cycle of `spec`'s type, splitting it if it
/// repeats a vertex.
fn pick(walk: Walk, spec: &CycleSpec) -> Option<Walk> {
    if walk.is_simple() {
        return (classify(&walk.rels) == Some(spec.name)).then_some(walk);
    }
    let mut parts = Vec::new();
    walk.simple_parts(&mut parts);
    parts
        .into_iter()
        .find(|p| classify(&p.rels) == Some(spec.name))
}

/// Types implied by finding the type at `i` (itself included).
pub fn implied_types(i: usize) -> u32 {
    static IMPLIED: OnceLock<Vec<u32>> = OnceLock::new();
    IMPLIED.get_or_init(|| {
        specs()
            .iter()
            .map(|s| {
                let implied = model::implied_anomalies(&[s.name]);
                mask_of(|n| implied.contains(n))
            })
            .collect()
    })[i]
}

pub(super) fn mask_of(mut member: impl FnMut(&str) -> bool) -> u32 {
    specs()
        .iter()
        .enumerate()
        .filter(|(_, s)| member(s.name))
        .fold(0, |m, (i, _)| m | 1 << i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::elle::graph::DepGraph;

    fn local(n: usize, edges: &[(u32, u32, Rels)]) -> Local {
        let g = DepGraph::new(n, edges.to_vec());
        let all: Vec<u32> = (0..n as u32).collect();
        g.restrict(&all)
    }

    fn spec(name: &str) -> CycleSpec {
        *specs().iter().find(|s| s.name == name).unwrap()
    }

    fn find(g: &Local, name: &str) -> Option<Walk> {
        let mut spend = Spend {
            scc_left: 1_000_000,
            total_left: 1_000_000,
        };
        Searcher::new(g).find(&spec(name), &mut spend).unwrap()
    }

    #[test]
    fn the_search_order_is_elles() {
        // Depth in Elle's implication-and-severity graph, then name: a type
        // comes after every type that implies it, so what is skipped as
        // implied does not depend on the order among equals. (The spec's
        // "G0, G1c, G-single-item, ..." is this order loosely: G-single-item
        // and G0 are both roots, and "-" sorts before "0".)
        let names: Vec<&str> = specs().iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            [
                "G-single-item",
                "G0",
                "G-nonadjacent-item",
                "G-single-item-process",
                "G1c",
                "G-nonadjacent-item-process",
                "G-single-item-realtime",
                "G2-item",
                "G-nonadjacent-item-realtime",
                "G0-process",
                "G1c-process",
                "G2-item-process",
                "G0-realtime",
                "G1c-realtime",
                "G2-item-realtime",
            ]
        );
        for (i, s) in specs().iter().enumerate() {
            let implied = model::implied_anomalies(&[s.name]);
            for later in &specs()[..i] {
                assert!(
                    later.name == s.name || !implied.contains(later.name),
                    "{} implies {}, which is searched first",
                    s.name,
                    later.name
                );
            }
        }
    }

    #[test]
    fn classification_follows_the_rw_edges() {
        use Rels as R;
        assert_eq!(classify(&[R::WW, R::WW]), Some("G0"));
        assert_eq!(classify(&[R::WW, R::WR]), Some("G1c"));
        assert_eq!(classify(&[R::WR, R::RW]), Some("G-single-item"));
        assert_eq!(
            classify(&[R::RW, R::WR, R::RW, R::WR]),
            Some("G-nonadjacent-item")
        );
        // Adjacent around the end of the cycle.
        assert_eq!(classify(&[R::RW, R::WR, R::RW]), Some("G2-item"));
        assert_eq!(classify(&[R::WR, R::REALTIME]), Some("G1c-realtime"));
        assert_eq!(
            classify(&[R::RW, R::PROCESS]),
            Some("G-single-item-process")
        );
        assert_eq!(classify(&[R::REALTIME]), None);
    }

    #[test]
    fn each_type_is_found_where_it_is_and_only_there() {
        // 0 -ww-> 1 -wr-> 2 -rw-> 0: a G-single, not a G1c or G0.
        let g = local(3, &[(0, 1, Rels::WW), (1, 2, Rels::WR), (2, 0, Rels::RW)]);
        assert!(find(&g, "G0").is_none());
        assert!(find(&g, "G1c").is_none());
        let w = find(&g, "G-single-item").unwrap();
        assert_eq!(w.verts.len(), 3);
        assert_eq!(classify(&w.rels), Some("G-single-item"));
        assert!(find(&g, "G2-item").is_none());
        // Two rw edges in a row: G2-item only.
        let g = local(3, &[(0, 1, Rels::RW), (1, 2, Rels::RW), (2, 0, Rels::WR)]);
        assert!(find(&g, "G-single-item").is_none());
        assert!(find(&g, "G-nonadjacent-item").is_none());
        assert_eq!(find(&g, "G2-item").unwrap().verts.len(), 3);
        // Alternating: nonadjacent.
        let g = local(
            4,
            &[
                (0, 1, Rels::RW),
                (1, 2, Rels::WR),
                (2, 3, Rels::RW),
                (3, 0, Rels::WW),
            ],
        );
        assert!(find(&g, "G2-item").is_none());
        assert!(find(&g, "G-nonadjacent-item").is_some());
        // A realtime edge closing a wr: G1c-realtime, not G1c.
        let g = local(2, &[(0, 1, Rels::WR), (1, 0, Rels::REALTIME)]);
        assert!(find(&g, "G1c").is_none());
        assert!(find(&g, "G1c-process").is_none());
        assert_eq!(find(&g, "G1c-realtime").unwrap().verts, [0, 1]);
    }

    #[test]
    fn a_walk_repeating_a_vertex_yields_only_simple_cycles() {
        // The only G1c-realtime walk through 0 is 0 -wr-> 1 -ww-> 0
        // -rt-> 2 -ww-> 0: no simple cycle has both, so none is reported.
        let g = local(
            3,
            &[
                (0, 1, Rels::WR),
                (1, 0, Rels::WW),
                (0, 2, Rels::REALTIME),
                (2, 0, Rels::WW),
            ],
        );
        assert!(find(&g, "G1c-realtime").is_none());
        assert!(find(&g, "G1c").is_some());
        assert!(find(&g, "G0-realtime").is_some());
    }

    #[test]
    fn the_budget_ends_a_search() {
        let n = 2000u32;
        let mut edges: Vec<(u32, u32, Rels)> = (0..n).map(|i| (i, (i + 1) % n, Rels::WW)).collect();
        edges.push((0, 1000, Rels::RW));
        let g = local(n as usize, &edges);
        let mut spend = Spend {
            scc_left: 100,
            total_left: 1_000_000,
        };
        let r = Searcher::new(&g).find(&spec("G1c"), &mut spend);
        assert!(r.unwrap().is_none(), "no wr edge: nothing to search");
        let r = Searcher::new(&g).find(&spec("G-single-item"), &mut spend);
        assert!(r.is_err());
        let w = Searcher::new(&g).fallback().unwrap();
        assert_eq!(w.verts.len(), 1001);
        assert_eq!(classify(&w.rels), Some("G-single-item"));
    }
}
