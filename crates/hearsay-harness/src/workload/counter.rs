//! The pn-counter and g-counter workloads (maelstrom-spec.md 4.3, 4.4):
//! `add {delta}` and `read` -> `{value}`, 50/50, deltas uniform in -5..4
//! (g-counter: negative draws are discarded, so about a third of ops are
//! adds); one final read per worker, flagged final. Judged by Maelstrom's
//! counter checker: every final read must lie in the acceptable intervals.

use super::schema::{Field, FieldType, Schema};
use super::{
    ADD_OK, CheckWith, Client, Ctx, ErrorPolicy, Generator, OpSpec, Workload, int_request,
};
use crate::edn::{Edn, map};
use crate::history::{History, OpType};
use hearsay_core::rng::{Rng, RngExt};
use serde_json::{Map, Value};

/// pn-counter when `negative`; g-counter filters negative deltas out.
pub(super) fn workload(negative: bool) -> Workload {
    let name = if negative { "pn-counter" } else { "g-counter" };
    Workload::new(
        name,
        Adds { negative },
        CounterClient,
        CheckWith(check_counter),
    )
}

struct Adds {
    negative: bool,
}

#[derive(Clone)]
struct CounterClient;

const READ_OK: Schema = Schema {
    reply_type: "read_ok",
    fields: &[Field {
        name: "value",
        ty: FieldType::Int,
    }],
};

impl Generator for Adds {
    fn next_op(&mut self, _ctx: Ctx, rng: &mut Rng) -> OpSpec {
        // gen/filter over gen/mix: a discarded draw draws the mix again.
        for _ in 0..1_000 {
            if rng.random_range(0..2) != 0 {
                break;
            }
            let d: i64 = rng.random_range(-5..5);
            if d >= 0 || self.negative {
                return OpSpec::new("add", Edn::Int(d), false);
            }
        }
        OpSpec::new("read", Edn::Nil, false)
    }

    fn final_op(&self, _ctx: Ctx) -> Option<OpSpec> {
        Some(OpSpec::new("read", Edn::Nil, true))
    }
}

impl Client for CounterClient {
    fn request(&mut self, op: &OpSpec) -> Map<String, Value> {
        int_request(op, (op.f == "add").then_some("delta"))
    }

    fn reply_schema(&self, f: &str) -> Schema {
        if f == "add" { ADD_OK } else { READ_OK }
    }

    fn ok_value(&mut self, op: &OpSpec, reply: &Value) -> Edn {
        match op.f {
            "read" => reply
                .get("value")
                .and_then(Value::as_i64)
                .map_or(Edn::Nil, Edn::Int),
            _ => op.value.clone(),
        }
    }

    fn errors(&self) -> ErrorPolicy {
        ErrorPolicy::AllInfo
    }
}

/// Sorted, disjoint, inclusive intervals; shifting copies by `d` and
/// merging is how an indeterminate add widens what a read may see.
fn widen(intervals: &[(i128, i128)], d: i128) -> Vec<(i128, i128)> {
    let mut all: Vec<(i128, i128)> = intervals
        .iter()
        .copied()
        .chain(intervals.iter().map(|&(a, b)| (a + d, b + d)))
        .collect();
    all.sort_unstable();
    let mut out: Vec<(i128, i128)> = Vec::new();
    for (a, b) in all {
        match out.last_mut() {
            Some(last) if a <= last.1 + 1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// Maelstrom's counter checker (maelstrom-spec.md 4.3).
pub fn check_counter(history: &History) -> Edn {
    let mut definite: i128 = 0;
    let mut uncertain: Vec<i128> = Vec::new();
    for o in history.client_ops().filter(|o| o.f == "add") {
        if let Edn::Int(d) = o.value {
            match o.kind {
                OpType::Ok => definite += i128::from(d),
                OpType::Info => uncertain.push(i128::from(d)),
                _ => {}
            }
        }
    }
    let mut acceptable = vec![(definite, definite)];
    for d in uncertain {
        acceptable = widen(&acceptable, d);
    }
    let finals: Vec<&crate::history::Op> = history
        .client_ops()
        .filter(|o| o.f == "read" && o.kind == OpType::Ok && o.final_)
        .collect();
    let inside = |v: &Edn| match v {
        Edn::Int(x) => acceptable
            .iter()
            .any(|&(a, b)| a <= i128::from(*x) && i128::from(*x) <= b),
        _ => false,
    };
    let bad: Vec<Edn> = finals
        .iter()
        .filter(|o| !inside(&o.value))
        .map(|o| o.to_edn())
        .collect();
    let int = |x: i128| Edn::Int(x.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64);
    map([
        ("valid?", Edn::Bool(bad.is_empty())),
        (
            "errors",
            if bad.is_empty() {
                Edn::Nil
            } else {
                Edn::Vector(bad)
            },
        ),
        (
            "final-reads",
            Edn::Vector(finals.iter().map(|o| o.value.clone()).collect()),
        ),
        (
            "acceptable",
            Edn::Vector(
                acceptable
                    .iter()
                    .map(|&(a, b)| Edn::Vector(vec![int(a), int(b)]))
                    .collect(),
            ),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indeterminate_adds_widen_the_acceptable_values() {
        assert_eq!(widen(&[(5, 5)], 3), vec![(5, 5), (8, 8)]);
        assert_eq!(widen(&[(5, 5), (8, 8)], 1), vec![(5, 6), (8, 9)]);
        assert_eq!(widen(&[(5, 6), (8, 9)], 2), vec![(5, 11)]);
        assert_eq!(widen(&[(0, 0)], -2), vec![(-2, -2), (0, 0)]);
    }
}
