//! Error cases as found (indices into the analysis, no EDN yet), and
//! Jepsen's `condense-error`: `{:count n :errs [...]}` with the most
//! telling cases kept. A case becomes EDN only once kept, so a broken node
//! with thousands of errors over large polls costs no more than the cases
//! printed.

use super::Analysis;
use crate::edn::{Edn, map};

/// `:errs` kept: `:duplicate` and `:inconsistent-offsets` (Jepsen's 32),
/// the skip and nonmonotonic types (Jepsen's 8).
const KEEP_COUNTED: usize = 32;
const KEEP_DELTAS: usize = 8;
/// hearsay's cap on the types Jepsen lists in full (lost writes, G1a):
/// each case carries whole ops, and a lost write's `:max-read` may be a
/// final poll of every message. `:count` stays exact.
pub const KEEP_OTHERS: usize = 32;

/// Keys and messages are interned ids; ops are indices into the
/// analysis's ops.
#[derive(Clone, Debug)]
pub(super) enum Case {
    Inconsistent {
        key: u32,
        offset: i64,
        index: usize,
        values: Vec<u32>,
    },
    Duplicate {
        key: u32,
        value: u32,
        offsets: Vec<i64>,
    },
    G1a {
        key: u32,
        value: u32,
        writer: Option<usize>,
        reader: usize,
    },
    LostWrite {
        key: u32,
        value: u32,
        index: usize,
        max_read_index: usize,
        writer: usize,
        max_read: Option<usize>,
    },
    /// Between two ops of a process (`:poll-skip`).
    Skip {
        key: u32,
        delta: i64,
        from: Option<u32>,
        to: Option<u32>,
        ops: (usize, usize),
    },
    /// Between two ops of a process (`:nonmonotonic-poll`, `-send`).
    Backwards {
        key: u32,
        values: (Option<u32>, Option<u32>),
        delta: i64,
        ops: (usize, usize),
    },
    /// Inside one poll (`:int-poll-skip`, `:int-nonmonotonic-poll`).
    Internal {
        key: u32,
        values: (u32, u32),
        delta: i64,
        op: usize,
        skip: bool,
    },
}

impl Case {
    /// The key the case is about.
    pub(super) fn key(&self) -> u32 {
        match self {
            Case::Inconsistent { key, .. }
            | Case::Duplicate { key, .. }
            | Case::G1a { key, .. }
            | Case::LostWrite { key, .. }
            | Case::Skip { key, .. }
            | Case::Backwards { key, .. }
            | Case::Internal { key, .. } => *key,
        }
    }

    fn delta(&self) -> i64 {
        match self {
            Case::Skip { delta, .. }
            | Case::Backwards { delta, .. }
            | Case::Internal { delta, .. } => *delta,
            _ => 0,
        }
    }

    fn edn(&self, a: &Analysis) -> Edn {
        let pair = |(x, y): (usize, usize)| Edn::Vector(vec![a.op_edn(x), a.op_edn(y)]);
        let opt_op = |o: &Option<usize>| o.map_or(Edn::Nil, |i| a.op_edn(i));
        let opt_msg = |v: Option<u32>| v.map_or(Edn::Nil, |v| a.msg(v));
        match self {
            Case::Inconsistent {
                key,
                offset,
                index,
                values,
            } => {
                let mut vs: Vec<Edn> = values.iter().map(|v| a.msg(*v)).collect();
                vs.sort_by_key(super::sort_key);
                map([
                    ("key", a.key(*key)),
                    ("offset", Edn::Int(*offset)),
                    ("index", Edn::from(*index)),
                    ("values", Edn::Set(vs)),
                ])
            }
            Case::Duplicate {
                key,
                value,
                offsets,
            } => map([
                ("key", a.key(*key)),
                ("value", a.msg(*value)),
                ("count", Edn::from(offsets.len())),
                (
                    "offsets",
                    Edn::Vector(offsets.iter().map(|o| Edn::Int(*o)).collect()),
                ),
            ]),
            Case::G1a {
                key,
                value,
                writer,
                reader,
            } => map([
                ("key", a.key(*key)),
                ("value", a.msg(*value)),
                ("writer", opt_op(writer)),
                ("reader", a.op_edn(*reader)),
            ]),
            Case::LostWrite {
                key,
                value,
                index,
                max_read_index,
                writer,
                max_read,
            } => map([
                ("key", a.key(*key)),
                ("value", a.msg(*value)),
                ("index", Edn::from(*index)),
                ("max-read-index", Edn::from(*max_read_index)),
                ("writer", a.op_edn(*writer)),
                ("max-read", opt_op(max_read)),
            ]),
            Case::Skip {
                key,
                delta,
                from,
                to,
                ops,
            } => map([
                ("key", a.key(*key)),
                ("delta", Edn::Int(*delta)),
                ("skipped", a.skipped(*key, *from, *to)),
                ("ops", pair(*ops)),
            ]),
            Case::Backwards {
                key,
                values,
                delta,
                ops,
            } => map([
                ("key", a.key(*key)),
                (
                    "values",
                    Edn::Vector(vec![opt_msg(values.0), opt_msg(values.1)]),
                ),
                ("delta", Edn::Int(*delta)),
                ("ops", pair(*ops)),
            ]),
            Case::Internal {
                key,
                values,
                delta,
                op,
                skip,
            } => {
                let mut m = vec![
                    ("key", a.key(*key)),
                    (
                        "values",
                        Edn::Vector(vec![a.msg(values.0), a.msg(values.1)]),
                    ),
                    ("delta", Edn::Int(*delta)),
                ];
                if *skip {
                    m.push(("skipped", a.skipped(*key, Some(values.0), Some(values.1))));
                }
                m.push(("op", a.op_edn(*op)));
                map(m)
            }
        }
    }
}

/// `{:count n :errs (...)}`: the cases Jepsen's `condense-error` keeps for
/// `kind`, in its order.
pub(super) fn condense(kind: &str, mut cases: Vec<Case>, a: &Analysis) -> Edn {
    let count = cases.len();
    match kind {
        "duplicate" => {
            cases.sort_by_key(|c| match c {
                Case::Duplicate { offsets, .. } => offsets.len(),
                _ => 0,
            });
            cases.truncate(KEEP_COUNTED);
        }
        "inconsistent-offsets" => {
            cases.sort_by_key(|c| match c {
                Case::Inconsistent { values, .. } => values.len(),
                _ => 0,
            });
            cases.truncate(KEEP_COUNTED);
        }
        "int-nonmonotonic-poll" | "nonmonotonic-poll" | "nonmonotonic-send" => {
            cases.sort_by_key(Case::delta);
            cases.truncate(KEEP_DELTAS);
        }
        "int-poll-skip" | "poll-skip" => {
            cases.sort_by_key(Case::delta);
            cases.drain(..count.saturating_sub(KEEP_DELTAS));
        }
        _ => cases.truncate(KEEP_OTHERS),
    }
    map([
        ("count", Edn::from(count)),
        ("errs", Edn::List(cases.iter().map(|c| c.edn(a)).collect())),
    ])
}

/// Elle's cases of a cycle type, condensed the same way: G0 and G1c types
/// keep their 8 shortest cycles (Elle already lists them shortest first).
pub(super) fn condense_cycles(kind: &str, cases: &[Edn], count: usize) -> Edn {
    let keep = match kind {
        "G0" | "G0-process" | "G0-realtime" | "G1c" | "G1c-process" | "G1c-realtime" => KEEP_DELTAS,
        _ => KEEP_OTHERS,
    };
    map([
        ("count", Edn::from(count)),
        (
            "errs",
            Edn::List(cases.iter().take(keep).cloned().collect()),
        ),
    ])
}
