//! Jepsen's `stats` checker: counts of completed client ops by type, overall
//! and per `:f`. An `:f` with no `:ok` op at all is invalid, except the ones
//! Jepsen's kafka stats wrapper (which Maelstrom puts around every test's
//! stats) exempts: kafka's `:crash` ops never succeed (spec-more 1.4).

use crate::edn::{Edn, kw, map};
use crate::history::{History, OpType};
use std::collections::BTreeMap;

#[derive(Default, Clone, Copy)]
struct Tally {
    count: u64,
    ok: u64,
    fail: u64,
    info: u64,
}

impl Tally {
    fn add(&mut self, t: OpType) {
        self.count += 1;
        match t {
            OpType::Ok => self.ok += 1,
            OpType::Fail => self.fail += 1,
            OpType::Info => self.info += 1,
            OpType::Invoke => {}
        }
    }

    fn edn(&self, valid: bool) -> Vec<(&'static str, Edn)> {
        vec![
            ("valid?", Edn::Bool(valid)),
            ("count", Edn::from(self.count)),
            ("ok-count", Edn::from(self.ok)),
            ("fail-count", Edn::from(self.fail)),
            ("info-count", Edn::from(self.info)),
        ]
    }
}

/// `:f`s whose ops may all fail without failing the test: their own
/// `:by-f` entry still says `:valid? false`.
pub const NEVER_OK: &[&str] = &["crash", "debug-topic-partitions"];

pub fn check(history: &History) -> Edn {
    let mut all = Tally::default();
    let mut by_f: BTreeMap<&str, Tally> = BTreeMap::new();
    for op in history.client_ops().filter(|o| o.kind != OpType::Invoke) {
        all.add(op.kind);
        by_f.entry(op.f).or_default().add(op.kind);
    }
    let valid = by_f.iter().all(|(f, t)| t.ok > 0 || NEVER_OK.contains(f));
    let mut m = all.edn(valid);
    let by = by_f
        .iter()
        .map(|(f, t)| (kw(f), map(t.edn(t.ok > 0))))
        .collect();
    m.push(("by-f", Edn::Map(by)));
    map(m)
}
