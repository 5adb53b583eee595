//! Jepsen's `realtime-lag` (maelstrom-spec-more.md 3.5): every
//! measurement (for the plots) and the worst (for the result);
//! informational, it never changes the verdict.

use super::seq;
use crate::edn::{Edn, map};
use crate::history::{History, Op, OpType, Process};
use std::collections::BTreeMap;

/// One measurement: at a poll's invocation, how long the next offset of a
/// key its process tracks had been known to exist.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Lag {
    pub time: u64,
    pub process: Process,
    pub key: String,
    pub lag: u64,
}

/// Jepsen's `worst-realtime-lag` of measurements kept: the first of the
/// largest.
pub(super) fn worst_realtime_lag(lags: &[Lag]) -> Edn {
    let mut worst: Option<&Lag> = None;
    for l in lags {
        if worst.is_none_or(|w| l.lag > w.lag) {
            worst = Some(l);
        }
    }
    worst_edn(worst)
}

/// [`worst_realtime_lag`] of a history, keeping only the worst so far.
pub(super) fn worst_of(history: &History) -> Edn {
    let mut worst: Option<Lag> = None;
    each_lag(history, |time, process, key, lag| {
        if worst.as_ref().is_none_or(|w| lag > w.lag) {
            worst = Some(Lag {
                time,
                process,
                key: key.to_string(),
                lag,
            });
        }
    });
    worst_edn(worst.as_ref())
}

fn worst_edn(worst: Option<&Lag>) -> Edn {
    let secs = |ns: u64| Edn::Float(ns as f64 / 1e9);
    match worst {
        Some(w) => map([
            ("time", secs(w.time)),
            ("process", Edn::from(w.process)),
            ("key", Edn::Str(w.key.clone())),
            ("lag", secs(w.lag)),
        ]),
        None => map([("time", secs(0)), ("lag", secs(0))]),
    }
}

/// Every measurement of [`each_lag`].
pub(super) fn realtime_lags(history: &History) -> Vec<Lag> {
    let mut lags = Vec::new();
    each_lag(history, |time, process, key, lag| {
        lags.push(Lag {
            time,
            process,
            key: key.to_string(),
            lag,
        });
    });
    lags
}

/// Jepsen's `realtime-lag`: for each ok poll and each key its process
/// tracks, how long before the poll's invocation the next offset after the
/// newest one it has seen was known to exist (time, process, key, lag).
fn each_lag(history: &History, mut each: impl FnMut(u64, Process, &str, u64)) {
    // Per key, segments (highest offset, time): offsets up to the first
    // segment's bound were known to exist at its time, and so on. Known
    // offsets always form a prefix of the log, so this is all Jepsen's
    // `expired` vector holds, without allocating per offset.
    let mut expired: BTreeMap<String, Vec<(i64, u64)>> = BTreeMap::new();
    for op in history.client_ops() {
        for (k, o) in max_offsets(op) {
            let segs = expired.entry(k).or_default();
            let top = segs.last().map_or(-1, |s| s.0);
            if o > top {
                segs.push((o, op.time));
            }
        }
    }
    let known_at = |k: &str, offset: i64| -> Option<u64> {
        let segs = expired.get(k)?;
        let i = segs.partition_point(|s| s.0 < offset);
        segs.get(i).map(|s| s.1)
    };
    let mut tracked: BTreeMap<Process, BTreeMap<String, i64>> = BTreeMap::new();
    for op in history.client_ops().filter(|o| o.kind == OpType::Ok) {
        match op.f {
            "assign" => {
                let old = tracked.remove(&op.process).unwrap_or_default();
                let keys = seq(&op.value).unwrap_or_default();
                let new = keys
                    .iter()
                    .map(|k| {
                        let k = key_text(k);
                        let o = old.get(&k).copied().unwrap_or(-1);
                        (k, o)
                    })
                    .collect();
                tracked.insert(op.process, new);
            }
            "poll" => {
                let invoked = op
                    .invocation
                    .and_then(|i| history.get(i))
                    .map_or(op.time, |i| i.time);
                let offsets = tracked.entry(op.process).or_default();
                for (k, o) in max_offsets(op) {
                    let e = offsets.entry(k).or_insert(o);
                    *e = (*e).max(o);
                }
                for (k, o) in offsets.iter() {
                    let lag =
                        known_at(k, o.saturating_add(1)).map_or(0, |t| invoked.saturating_sub(t));
                    each(invoked, op.process, k, lag);
                }
            }
            _ => {}
        }
    }
}

/// A kafka key as text (keys are decimal strings on the wire).
pub(crate) fn key_text(k: &Edn) -> String {
    match k {
        Edn::Str(s) => s.clone(),
        other => other.compact(),
    }
}

/// Jepsen's `op->max-offsets` of an ok or info op: per key, the highest
/// offset it sent or polled (-1 for a key polled empty).
pub(crate) fn max_offsets(op: &Op) -> Vec<(String, i64)> {
    if !matches!(op.kind, OpType::Ok | OpType::Info) {
        return Vec::new();
    }
    let Some(mop) = seq(&op.value).and_then(|m| m.first()).and_then(seq) else {
        return Vec::new();
    };
    match (op.f, mop) {
        ("send", [_, k, v]) => match seq(v) {
            Some([Edn::Int(o), _]) => vec![(key_text(k), *o)],
            _ => Vec::new(),
        },
        ("poll", [_, Edn::Map(by_key)]) => by_key
            .iter()
            .map(|(k, pairs)| {
                let max = seq(pairs)
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|p| match seq(p) {
                        Some([Edn::Int(o), _]) => Some(*o),
                        _ => None,
                    })
                    .fold(-1, i64::max);
                (key_text(k), max)
            })
            .collect(),
        _ => Vec::new(),
    }
}
