//! Elle's cycle-existence checks (`cycle-exists-specs`,
//! maelstrom-spec-more.md 4.3 step 2): a nontrivial component in a
//! projection of the graph proves a model broken without naming a cycle,
//! and tells the cycle search which types cannot be there.

use super::graph::{Local, Rels};
use super::model;
use super::search::mask_of;
use std::collections::HashMap;
use std::sync::OnceLock;

/// A cycle-existence check (Elle's `cycle-exists-specs`): the model, and the
/// projection that must be acyclic for it to hold.
pub struct ExistsSpec {
    /// Canonical model name.
    pub model: &'static str,
    pub subgraph: Subgraph,
}

#[derive(Clone, Copy)]
pub enum Subgraph {
    Union(Rels),
    /// `A ∪ (A; B)`.
    Extension(Rels, Rels),
}

const WW_WR: Rels = Rels(1 | 2);

pub const EXISTS: [ExistsSpec; 13] = [
    ExistsSpec {
        model: "PL-1",
        subgraph: Subgraph::Union(Rels::WW),
    },
    ExistsSpec {
        model: "PL-2",
        subgraph: Subgraph::Union(WW_WR),
    },
    ExistsSpec {
        model: "PL-SI",
        subgraph: Subgraph::Extension(WW_WR, Rels::RW),
    },
    ExistsSpec {
        model: "PL-2.99",
        subgraph: Subgraph::Union(Rels::DATA),
    },
    ExistsSpec {
        model: "PL-3",
        subgraph: Subgraph::Union(Rels::DATA),
    },
    ExistsSpec {
        model: "strong-session-PL-1",
        subgraph: Subgraph::Union(Rels(1 | 8)),
    },
    ExistsSpec {
        model: "strong-session-PL-2",
        subgraph: Subgraph::Union(Rels(1 | 2 | 8)),
    },
    ExistsSpec {
        model: "strong-session-snapshot-isolation",
        subgraph: Subgraph::Extension(Rels(1 | 2 | 8), Rels::RW),
    },
    ExistsSpec {
        model: "strong-session-serializable",
        subgraph: Subgraph::Union(Rels(1 | 2 | 4 | 8)),
    },
    ExistsSpec {
        model: "strong-PL-1",
        subgraph: Subgraph::Union(Rels(1 | 16)),
    },
    ExistsSpec {
        model: "strong-PL-2",
        subgraph: Subgraph::Union(Rels(1 | 2 | 16)),
    },
    ExistsSpec {
        model: "strong-snapshot-isolation",
        subgraph: Subgraph::Extension(Rels(1 | 2 | 16), Rels::RW),
    },
    ExistsSpec {
        model: "PL-SS",
        subgraph: Subgraph::Union(Rels(1 | 2 | 4 | 16)),
    },
];

impl ExistsSpec {
    /// `:PL-2-cycle-exists` and so on.
    pub fn anomaly(&self) -> &'static str {
        const NAMES: [&str; 13] = [
            "PL-1-cycle-exists",
            "PL-2-cycle-exists",
            "PL-SI-cycle-exists",
            "PL-2.99-cycle-exists",
            "PL-3-cycle-exists",
            "strong-session-PL-1-cycle-exists",
            "strong-session-PL-2-cycle-exists",
            "strong-session-snapshot-isolation-cycle-exists",
            "strong-session-serializable-cycle-exists",
            "strong-PL-1-cycle-exists",
            "strong-PL-2-cycle-exists",
            "strong-snapshot-isolation-cycle-exists",
            "PL-SS-cycle-exists",
        ];
        let i = EXISTS
            .iter()
            .position(|e| e.model == self.model)
            .expect("one of EXISTS");
        NAMES[i]
    }

    /// The smallest component of this projection, if any.
    pub fn check(&self, g: &Local) -> Option<Vec<u32>> {
        match self.subgraph {
            Subgraph::Union(r) => g.smallest_scc(r),
            Subgraph::Extension(a, b) => g.smallest_extension_scc(a, b),
        }
    }

    /// Elle's printed `:subgraph`, with its predicate relations.
    pub fn printed(&self) -> crate::edn::Edn {
        use crate::edn::{Edn, kw};
        fn union(r: Rels) -> crate::edn::Edn {
            let mut v = vec![kw("union")];
            for (bit, names) in [
                (Rels::WW, &["ww", "wwp"][..]),
                (Rels::WR, &["wr", "wrp"]),
                (Rels::RW, &["rw", "rwp"]),
                (Rels::PROCESS, &["process"]),
                (Rels::REALTIME, &["realtime"]),
            ] {
                if r.contains(bit) {
                    v.extend(names.iter().map(|n| kw(n)));
                }
            }
            Edn::Vector(v)
        }
        match self.subgraph {
            // Elle's PL-2.99 leaves predicate anti-dependencies out.
            Subgraph::Union(r) if self.model == "PL-2.99" => {
                let mut u = union(r);
                if let Edn::Vector(v) = &mut u {
                    v.pop();
                }
                u
            }
            Subgraph::Union(r) => union(r),
            Subgraph::Extension(a, b) => Edn::Vector(vec![kw("extension"), union(a), union(b)]),
        }
    }
}

/// Which of the 15 searchable types a component cannot contain, given which
/// existence checks found a cycle (a bit per [`EXISTS`] entry); a bit per
/// [`specs`] entry. Memoised: there are few distinct outcomes.
pub fn impossible_types(found: u16) -> u32 {
    static MEMO: OnceLock<std::sync::Mutex<HashMap<u16, u32>>> = OnceLock::new();
    let memo = MEMO.get_or_init(Default::default);
    if let Some(&m) = memo.lock().unwrap_or_else(|p| p.into_inner()).get(&found) {
        return m;
    }
    let found_models: Vec<&'static str> = EXISTS
        .iter()
        .enumerate()
        .filter(|(i, _)| found & (1 << i) != 0)
        .map(|(_, e)| e.model)
        .collect();
    let impossible = model::impossible_models_from(&found_models);
    let possible: Vec<&'static str> = EXISTS
        .iter()
        .map(|e| e.model)
        .filter(|m| !impossible.contains(m))
        .collect();
    let prohibited = model::prohibited_by(&possible);
    let mask = mask_of(|name| prohibited.contains(name));
    memo.lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(found, mask);
    mask
}

/// Models the existence check at `i` rules out, so stronger checks are
/// skipped.
pub fn exists_redundant_after(i: usize) -> u16 {
    // Depends on `i` only: computed once.
    static REDUNDANT: std::sync::OnceLock<Vec<u16>> = std::sync::OnceLock::new();
    REDUNDANT.get_or_init(|| {
        EXISTS
            .iter()
            .map(|x| {
                let stronger = model::impossible_models_from(&[x.model]);
                EXISTS
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| stronger.contains(e.model))
                    .fold(0, |m, (j, _)| m | 1 << j)
            })
            .collect()
    })[i]
}
