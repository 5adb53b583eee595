//! Maelstrom's lin-kv checker (maelstrom-spec-more 2.3): Jepsen's independent
//! checker over Knossos' linearizability check of a CAS register.
//!
//! Each key is decided alone (linearizability is compositional) by a
//! Wing–Gong–Lowe search: a linked list of call and return entries in
//! history order, calls lifted depth-first while the register allows them,
//! and a memo of visited (linearized set, register value) configurations.
//! The search is deterministic and bounded by a [`Budget`] of steps and
//! memoised configurations; past either the key is `:unknown` with a
//! `:cause` (Knossos aborts on heap exhaustion instead, 2.3 item 6).
//!
//! The files written per key (`independent/<k>/...`) are [`files`]'s.

use super::Validity;
use crate::edn::{Edn, kw, map};
use crate::history::History;
use std::collections::VecDeque;

mod files;
mod keys;
mod search;

pub use files::check_files;
#[cfg(test)]
mod tests;

use keys::*;
use search::*;

/// Search limits; past either the key's verdict is :unknown with a :cause.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Entries examined (calls tried, returns met), for each key.
    pub max_steps: u64,
    /// Distinct configurations memoised, for each key (17-34 bytes each).
    pub max_configs: usize,
}

impl Default for Budget {
    /// A correct 60 s lin-kv run of 5 nodes (one key, 6,000 ops, 10
    /// clients) takes 5-30 thousand configurations and a few milliseconds;
    /// these limits stop a hopeless search after 1-3 s and ~260 MB.
    fn default() -> Self {
        Budget {
            max_steps: 100_000_000,
            max_configs: 4_000_000,
        }
    }
}

/// Maelstrom's lin-kv checker: Jepsen's independent checker over Knossos'
/// linearizable checker with a CAS-register model (spec section 2.3).
pub fn check_independent_cas(history: &History, budget: Budget) -> Edn {
    let mut keys = split(history);
    keys.sort_by(|a, b| key_order(&a.key, &b.key));
    let mut valid = Validity::True;
    let mut results = Vec::with_capacity(keys.len());
    let mut failures = Vec::new();
    for key in keys {
        let lin = check_key(history, &key, budget);
        let v = Validity::of(&lin);
        tracing::debug!(key = %key.key.compact(), valid = ?v, "lin-kv key checked");
        valid = valid.merge(v);
        if v != Validity::True {
            failures.push(key.key.clone());
        }
        results.push((key.key, map([("linearizable", lin), ("valid?", v.edn())])));
    }
    map([
        ("valid?", valid.edn()),
        ("results", Edn::Map(results)),
        ("failures", Edn::Vector(failures)),
    ])
}

/// Lists in reports stop here (Jepsen cuts `:configs`/`:final-paths` to 10).
pub(crate) const SHOWN: usize = 10;

// ---------------------------------------------------------------------------
// Results

fn check_key(history: &History, key: &KeyHistory, budget: Budget) -> Edn {
    let (verdict, stats) = search(&key.ops, budget);
    let searched = ("configs-searched", Edn::from(stats.configs));
    let model = |v: u32| map([("value", key.values.values[v as usize].clone())]);
    match verdict {
        Verdict::Valid(v) => map([("valid?", Edn::Bool(true)), ("model", model(v)), searched]),
        Verdict::Unknown(cause) => {
            let (name, field, limit) = match cause {
                Cause::Steps => ("step-limit", "max_steps", budget.max_steps),
                Cause::Configs => ("config-limit", "max_configs", budget.max_configs as u64),
            };
            let reason = format!(
                "undecided: the search reached Budget::{field} = {limit} after {} steps and {} configurations",
                stats.steps, stats.configs
            );
            map([
                ("valid?", kw("unknown")),
                ("cause", kw(name)),
                ("reason", Edn::from(reason)),
                searched,
                ("steps", Edn::from(stats.steps)),
            ])
        }
        Verdict::Invalid(f) => invalid(history, key, &f, searched),
    }
}

fn invalid(history: &History, key: &KeyHistory, f: &Failure, searched: (&str, Edn)) -> Edn {
    let show = |op: u32| -> Edn {
        if op == NONE {
            return Edn::Nil;
        }
        let o = &key.ops[op as usize];
        history.get(o.shown).map_or(Edn::Nil, |h| {
            let mut h = h.clone();
            h.value = o.value.clone();
            h.to_edn()
        })
    };
    let model = |v: u32| map([("value", key.values.values[v as usize].clone())]);
    let configs = f
        .configs
        .iter()
        .map(|c| {
            map([
                ("model", model(c.state)),
                ("last-op", show(c.last_op)),
                (
                    "pending",
                    Edn::Vector(c.pending.iter().take(SHOWN).map(|&p| show(p)).collect()),
                ),
            ])
        })
        .collect();
    let paths = final_paths(&key.ops, f)
        .into_iter()
        .map(|(start, path)| {
            let mut steps = Vec::with_capacity(path.len() + 1);
            if start.0 != NONE {
                steps.push(map([("op", show(start.0)), ("model", model(start.1))]));
            }
            for &(op, after) in &path {
                let m = if after == NONE {
                    kw("inconsistent")
                } else {
                    model(after)
                };
                steps.push(map([("op", show(op)), ("model", m)]));
            }
            Edn::Vector(steps)
        })
        .collect();
    map([
        ("valid?", Edn::Bool(false)),
        ("op", show(f.op)),
        ("previous-ok", show(f.previous_ok)),
        ("configs", Edn::Vector(configs)),
        ("final-paths", Edn::Vector(paths)),
        searched,
    ])
}

/// A path: the config's last op and value, then (op, value after) steps,
/// the last with value `NONE` (inconsistent).
type Path = ((u32, u32), Vec<(u32, u32)>);

/// Knossos' final paths: from each stuck configuration, orders of its
/// pending ops (all concurrent with one another) that end in an
/// inconsistent step, shortest first, those ending at the failed op first.
fn final_paths(ops: &[KeyOp], f: &Failure) -> Vec<Path> {
    const MAX_LEN: usize = 3;
    const MAX_TRIES: usize = 2_000;
    let mut found: Vec<Path> = Vec::new();
    for c in &f.configs {
        let start = (c.last_op, c.state);
        let mut queue: VecDeque<(Vec<(u32, u32)>, u32)> = VecDeque::from([(Vec::new(), c.state)]);
        let mut tries = 0;
        while let Some((path, s)) = queue.pop_front() {
            if found.len() >= 4 * SHOWN || tries >= MAX_TRIES {
                break;
            }
            for &p in &c.pending {
                if path.iter().any(|&(o, _)| o == p) {
                    continue;
                }
                tries += 1;
                let mut longer = path.clone();
                match step(s, ops[p as usize].step) {
                    None => {
                        longer.push((p, NONE));
                        found.push((start, longer));
                    }
                    Some(next) if path.len() + 1 < MAX_LEN => {
                        longer.push((p, next));
                        queue.push_back((longer, next));
                    }
                    Some(_) => {}
                }
            }
        }
    }
    found.sort_by_key(|(_, p)| p.last().is_none_or(|&(o, _)| o != f.op));
    let mut distinct: Vec<Path> = Vec::new();
    for p in found {
        if !distinct.contains(&p) && distinct.len() < SHOWN {
            distinct.push(p);
        }
    }
    distinct
}
