//! Jepsen's `unhandled-exceptions` checker: groups ops that crashed with an
//! exception by class, most frequent first. Always valid; it only reports.

use crate::edn::{Edn, map};
use crate::history::History;
use std::collections::BTreeMap;

pub fn check(history: &History) -> Edn {
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for op in history.ops() {
        if let Some(x) = &op.exception {
            groups.entry(x.class.as_str()).or_default().push(op.index);
        }
    }
    if groups.is_empty() {
        return map([("valid?", Edn::Bool(true))]);
    }
    let mut groups: Vec<(&str, Vec<usize>)> = groups.into_iter().collect();
    groups.sort_by_key(|(_, ops)| std::cmp::Reverse(ops.len()));
    let list = groups
        .into_iter()
        .map(|(class, ops)| {
            let example = history.get(ops[0]).map_or(Edn::Nil, |o| o.to_edn());
            map([
                ("count", Edn::from(ops.len())),
                ("class", Edn::Symbol(class.to_string())),
                ("example", example),
            ])
        })
        .collect();
    map([
        ("valid?", Edn::Bool(true)),
        ("exceptions", Edn::Vector(list)),
    ])
}
