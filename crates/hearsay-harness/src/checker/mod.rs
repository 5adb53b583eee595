//! Checkers (Maelstrom section 4.6): each returns an EDN map with `:valid?`;
//! [`compose`] assembles them in Maelstrom's order and merges validity
//! (false beats unknown beats true).

pub mod availability;
pub mod elle;
pub mod exceptions;
pub mod kafka;
pub mod linearizable;
pub mod list_append;
pub mod net;
pub mod rw_register;
pub mod set_full;
pub mod stats;

use crate::edn::{Edn, kw, map};

/// A file a checker explains itself with, beside `results.edn` (Elle's
/// `elle/G0.txt`, kafka's `orders/3.svg`): its path inside the run
/// directory, and what it holds.
#[derive(Clone, Debug, PartialEq)]
pub struct Artifact {
    pub path: String,
    pub body: String,
}

/// Jepsen's three-valued validity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validity {
    True,
    Unknown,
    False,
}

impl Validity {
    pub fn of(result: &Edn) -> Validity {
        match result.get("valid?") {
            Some(Edn::Bool(true)) => Validity::True,
            Some(Edn::Bool(false)) => Validity::False,
            _ => Validity::Unknown,
        }
    }

    pub fn merge(self, other: Validity) -> Validity {
        use Validity::*;
        match (self, other) {
            (False, _) | (_, False) => False,
            (Unknown, _) | (_, Unknown) => Unknown,
            _ => True,
        }
    }

    pub fn edn(self) -> Edn {
        match self {
            Validity::True => Edn::Bool(true),
            Validity::False => Edn::Bool(false),
            Validity::Unknown => kw("unknown"),
        }
    }

    /// Maelstrom's exit code for a finished analysis.
    pub fn exit_code(self) -> i32 {
        match self {
            Validity::True => 0,
            Validity::False => 1,
            Validity::Unknown => 2,
        }
    }
}

/// The full results map, in the order Maelstrom prints it.
pub fn compose(parts: Vec<(&'static str, Edn)>) -> (Edn, Validity) {
    let valid = parts
        .iter()
        .fold(Validity::True, |v, (_, r)| v.merge(Validity::of(r)));
    let mut entries: Vec<(&str, Edn)> = parts;
    entries.push(("valid?", valid.edn()));
    (map(entries), valid)
}

/// `:perf` and `:timeline` render plots and pages; until
/// `report::pictures::draw` has drawn them, they list no files.
pub fn perf() -> Edn {
    let ok = || map([("valid?", Edn::Bool(true)), ("files", Edn::Vector(vec![]))]);
    map([
        ("latency-graph", ok()),
        ("rate-graph", ok()),
        ("valid?", Edn::Bool(true)),
    ])
}

pub fn timeline() -> Edn {
    map([("valid?", Edn::Bool(true)), ("files", Edn::Vector(vec![]))])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity_merges_by_priority() {
        use Validity::*;
        assert_eq!(True.merge(Unknown), Unknown);
        assert_eq!(Unknown.merge(False), False);
        assert_eq!(True.merge(True), True);
        let (m, v) = compose(vec![
            ("a", map([("valid?", Edn::Bool(true))])),
            ("b", map([("valid?", kw("unknown"))])),
        ]);
        assert_eq!(v, Unknown);
        assert_eq!(m.get("valid?"), Some(&kw("unknown")));
        assert_eq!(v.exit_code(), 2);
    }
}
