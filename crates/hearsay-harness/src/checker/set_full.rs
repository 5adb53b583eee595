//! Jepsen's `set-full` checker, rule for rule (maelstrom-spec 4.1): per
//! element, the op that made it known, the last read invocation that saw it
//! and the last that missed it; outcomes stable / lost / never-read; stable
//! latency from known to the last missing read's invocation.

use crate::edn::{Edn, kw, map};
use crate::history::{History, Op, OpType};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default)]
struct Element {
    known: Option<usize>,
    last_present: Option<usize>,
    last_absent: Option<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Stable,
    Lost,
    NeverRead,
}

#[derive(Clone, Debug)]
pub struct ElementResult {
    pub element: i64,
    pub outcome: Outcome,
    pub stable_latency: Option<i64>,
    pub lost_latency: Option<i64>,
    known: Option<usize>,
    last_absent: Option<usize>,
}

/// Per-element results, in element order. `add_f` is the name of the add
/// operation (`broadcast` for the broadcast workload, `add` for g-set).
pub fn elements(history: &History, add_f: &str) -> Vec<ElementResult> {
    let mut elements: BTreeMap<i64, Element> = BTreeMap::new();
    for op in history.client_ops() {
        if op.f == add_f {
            let Edn::Int(v) = op.value else { continue };
            if op.kind == OpType::Invoke {
                elements.insert(v, Element::default());
            } else if op.kind == OpType::Ok
                && let Some(e) = elements.get_mut(&v)
            {
                e.known.get_or_insert(op.index);
            }
        } else if op.f == "read" && op.kind == OpType::Ok {
            let Some(inv) = op.invocation else { continue };
            // Merge the read's sorted integers with the sorted elements.
            let seen = sorted_ranges(&op.value);
            let mut k = 0;
            for (v, e) in elements.iter_mut() {
                while k < seen.len() && seen[k].1 < *v {
                    k += 1;
                }
                if k < seen.len() && seen[k].0 <= *v {
                    e.known.get_or_insert(op.index);
                    if e.last_present.is_none_or(|p| p < inv) {
                        e.last_present = Some(inv);
                    }
                } else if e.last_absent.is_none_or(|a| a < inv) {
                    e.last_absent = Some(inv);
                }
            }
        }
    }
    let time = |i: usize| history.get(i).map_or(0, |o| o.time as i64);
    elements
        .into_iter()
        .map(|(element, e)| {
            let idx = |o: Option<usize>| o.map_or(-1, |i| i as i64);
            let stable = e.last_present.is_some() && idx(e.last_absent) < idx(e.last_present);
            let lost = e.known.is_some()
                && e.last_absent.is_some()
                && idx(e.last_present) < idx(e.last_absent)
                && idx(e.known) < idx(e.last_absent);
            let known_time = e.known.map_or(0, time);
            let ms = |ns: i64| ((ns - known_time).max(0) as f64 / 1e6) as i64;
            let stable_latency = stable.then(|| ms(e.last_absent.map_or(0, |a| time(a) + 1)));
            let lost_latency = lost.then(|| ms(e.last_present.map_or(0, |p| time(p) + 1)));
            let outcome = if stable {
                Outcome::Stable
            } else if lost {
                Outcome::Lost
            } else {
                Outcome::NeverRead
            };
            ElementResult {
                element,
                outcome,
                stable_latency,
                lost_latency,
                known: e.known,
                last_absent: e.last_absent,
            }
        })
        .collect()
}

/// The integers of a read's value as sorted, disjoint, inclusive ranges
/// (other values can never equal an element: Clojure's `=` tells 1 from
/// 1.0). Large reads are stored that way already and are only borrowed.
pub(crate) fn sorted_ranges(v: &Edn) -> std::borrow::Cow<'_, [(i64, i64)]> {
    match v {
        Edn::IntRanges(r) => r.as_slice().into(),
        Edn::Vector(items) | Edn::List(items) | Edn::Set(items) => {
            let mut ints: Vec<i64> = items
                .iter()
                .filter_map(|x| if let Edn::Int(i) = x { Some(*i) } else { None })
                .collect();
            ints.sort_unstable();
            let mut out: Vec<(i64, i64)> = Vec::new();
            for x in ints {
                match out.last_mut() {
                    Some((_, hi)) if x <= *hi + 1 => *hi = (*hi).max(x),
                    _ => out.push((x, x)),
                }
            }
            out.into()
        }
        _ => Vec::new().into(),
    }
}

/// Quantiles at 0, 0.5, 0.95, 0.99, 1: the value at index
/// min(n-1, floor(n*q)) of the sorted list (so 0.5 is the upper median).
pub fn quantiles(values: &[i64]) -> Option<Vec<(f64, i64)>> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let n = sorted.len();
    Some(
        [0.0, 0.5, 0.95, 0.99, 1.0]
            .into_iter()
            .map(|q| (q, sorted[((n as f64 * q).floor() as usize).min(n - 1)]))
            .collect(),
    )
}

pub fn quantiles_edn(values: &[i64]) -> Option<Edn> {
    quantiles(values).map(|qs| {
        Edn::Map(
            qs.into_iter()
                .map(|(q, v)| {
                    let key = if q.fract() == 0.0 {
                        Edn::Int(q as i64)
                    } else {
                        Edn::Float(q)
                    };
                    (key, Edn::Int(v))
                })
                .collect(),
        )
    })
}

/// The `:workload` map, keys in the order real Maelstrom output shows them.
pub fn check(history: &History, add_f: &str) -> Edn {
    let rs = elements(history, add_f);
    let of = |o: Outcome| rs.iter().filter(move |r| r.outcome == o);
    let lost: Vec<i64> = of(Outcome::Lost).map(|r| r.element).collect();
    let never: Vec<i64> = of(Outcome::NeverRead).map(|r| r.element).collect();
    let stable_count = of(Outcome::Stable).count();
    let stale: Vec<&ElementResult> = of(Outcome::Stable)
        .filter(|r| r.stable_latency.unwrap_or(0) > 0)
        .collect();
    // sort-by latency, then reverse: ties end up in descending element order.
    let mut worst: Vec<&ElementResult> = stale.clone();
    worst.sort_by_key(|r| (r.stable_latency, r.element));
    worst.reverse();
    worst.truncate(8);
    let op_edn = |i: Option<usize>| {
        i.and_then(|i| history.get(i)).map_or(Edn::Nil, |o: &Op| {
            o.to_edn_as(if o.f == add_f { "add" } else { o.f })
        })
    };
    let worst_edn = worst
        .iter()
        .map(|r| {
            map([
                ("element", Edn::Int(r.element)),
                ("outcome", kw("stable")),
                ("stable-latency", Edn::from(r.stable_latency)),
                ("lost-latency", Edn::from(r.lost_latency)),
                ("known", op_edn(r.known)),
                ("last-absent", op_edn(r.last_absent)),
            ])
        })
        .collect();
    let valid = if !lost.is_empty() {
        Edn::Bool(false)
    } else if stable_count == 0 {
        kw("unknown")
    } else {
        Edn::Bool(true)
    };
    let ints = |v: &[i64]| Edn::List(v.iter().map(|&i| Edn::Int(i)).collect());
    let stable_lat: Vec<i64> = rs.iter().filter_map(|r| r.stable_latency).collect();
    let lost_lat: Vec<i64> = rs.iter().filter_map(|r| r.lost_latency).collect();
    let mut m: Vec<(&str, Edn)> = vec![
        ("worst-stale", Edn::List(worst_edn)),
        ("duplicated-count", Edn::Int(0)),
        ("valid?", valid),
        ("lost-count", Edn::from(lost.len())),
        ("lost", ints(&lost)),
        ("stable-count", Edn::from(stable_count)),
        ("stale-count", Edn::from(stale.len())),
        (
            "stale",
            ints(&stale.iter().map(|r| r.element).collect::<Vec<_>>()),
        ),
        ("never-read-count", Edn::from(never.len())),
    ];
    if let Some(q) = quantiles_edn(&stable_lat) {
        m.push(("stable-latencies", q));
    }
    if let Some(q) = quantiles_edn(&lost_lat) {
        m.push(("lost-latencies", q));
    }
    m.push(("attempt-count", Edn::from(rs.len())));
    m.push(("never-read", ints(&never)));
    m.push(("duplicated", Edn::Map(vec![])));
    map(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Process;

    /// Builds histories op by op, pairing completions with invocations.
    struct H {
        h: History,
        open: BTreeMap<u64, usize>,
    }

    impl H {
        fn new() -> H {
            H {
                h: History::default(),
                open: BTreeMap::new(),
            }
        }
        fn invoke(&mut self, p: u64, t_ms: u64, f: &'static str, value: Edn) {
            let i = self.h.push(op(p, t_ms, OpType::Invoke, f, value, None));
            self.open.insert(p, i);
        }
        fn complete(&mut self, p: u64, t_ms: u64, kind: OpType, f: &'static str, value: Edn) {
            let inv = self.open.remove(&p);
            self.h.push(op(p, t_ms, kind, f, value, inv));
        }
        fn add(&mut self, p: u64, t: u64, v: i64, kind: OpType) {
            self.invoke(p, t, "broadcast", Edn::Int(v));
            self.complete(p, t, kind, "broadcast", Edn::Int(v));
        }
        fn read(&mut self, p: u64, t: u64, seen: &[i64]) {
            self.invoke(p, t, "read", Edn::Nil);
            self.complete(
                p,
                t,
                OpType::Ok,
                "read",
                Edn::Vector(seen.iter().map(|&i| Edn::Int(i)).collect()),
            );
        }
    }

    fn op(
        p: u64,
        t_ms: u64,
        kind: OpType,
        f: &'static str,
        value: Edn,
        invocation: Option<usize>,
    ) -> Op {
        Op {
            index: 0,
            time: t_ms * 1_000_000,
            kind,
            process: Process::Client(p),
            f,
            value,
            error: None,
            final_: false,
            exception: None,
            invocation,
        }
    }

    fn outcome(rs: &[ElementResult], e: i64) -> (Outcome, Option<i64>) {
        let r = rs.iter().find(|r| r.element == e).unwrap();
        (r.outcome, r.stable_latency.or(r.lost_latency))
    }

    #[test]
    fn stable_lost_and_never_read() {
        let mut h = H::new();
        h.add(0, 0, 1, OpType::Ok);
        h.read(1, 100, &[]); // stale read of 1
        h.read(1, 300, &[1]); // 1 now stable, latency 300 ms (from ack at 0)
        h.add(0, 400, 2, OpType::Ok);
        h.read(1, 500, &[1, 2]);
        h.read(2, 600, &[1]); // 2 missing after it was seen: lost
        h.add(0, 700, 3, OpType::Info); // never acked, never read
        h.read(2, 800, &[1]);
        let rs = elements(&h.h, "broadcast");
        assert_eq!(outcome(&rs, 1), (Outcome::Stable, Some(100)));
        assert_eq!(outcome(&rs, 2), (Outcome::Lost, Some(100)));
        assert_eq!(outcome(&rs, 3), (Outcome::NeverRead, None));
        let r = check(&h.h, "broadcast");
        assert_eq!(r.get("valid?"), Some(&Edn::Bool(false)));
        assert_eq!(r.get("lost").unwrap().compact(), "(2)");
        assert_eq!(r.get("stale-count"), Some(&Edn::Int(1)));
        assert_eq!(r.get("attempt-count"), Some(&Edn::Int(3)));
    }

    #[test]
    fn a_read_invoked_before_the_ack_counts_as_zero_latency() {
        let mut h = H::new();
        h.invoke(0, 0, "broadcast", Edn::Int(5));
        h.invoke(1, 10, "read", Edn::Nil);
        h.complete(0, 50, OpType::Ok, "broadcast", Edn::Int(5));
        h.complete(1, 60, OpType::Ok, "read", Edn::Vector(vec![]));
        h.read(1, 70, &[5]);
        let rs = elements(&h.h, "broadcast");
        assert_eq!(outcome(&rs, 5), (Outcome::Stable, Some(0)));
    }

    #[test]
    fn the_last_invoked_read_decides() {
        // The element is missing on one node but present in the read invoked
        // last: Maelstrom counts it stable (with a stale latency).
        let mut h = H::new();
        h.add(0, 0, 9, OpType::Ok);
        h.invoke(1, 1000, "read", Edn::Nil);
        h.invoke(2, 1001, "read", Edn::Nil);
        h.complete(2, 1002, OpType::Ok, "read", Edn::Vector(vec![Edn::Int(9)]));
        h.complete(1, 1003, OpType::Ok, "read", Edn::Vector(vec![]));
        let rs = elements(&h.h, "broadcast");
        assert_eq!(outcome(&rs, 9), (Outcome::Stable, Some(1000)));
    }

    #[test]
    fn no_stable_elements_is_unknown() {
        let mut h = H::new();
        h.read(1, 0, &[]);
        assert_eq!(check(&h.h, "broadcast").get("valid?"), Some(&kw("unknown")));
    }

    #[test]
    fn quantiles_use_floor_index() {
        let q = quantiles(&[5, 1, 4, 2, 3, 6]).unwrap();
        assert_eq!(q, vec![(0.0, 1), (0.5, 4), (0.95, 6), (0.99, 6), (1.0, 6)]);
        assert_eq!(
            quantiles_edn(&[7]).unwrap().compact(),
            "{0 7, 0.5 7, 0.95 7, 0.99 7, 1 7}"
        );
        let hundred: Vec<i64> = (0..100).collect();
        assert_eq!(quantiles(&hundred).unwrap()[2], (0.95, 95));
    }
}
