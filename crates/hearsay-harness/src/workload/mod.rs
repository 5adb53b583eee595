//! Workloads (Maelstrom section 4): what clients ask nodes, what a correct
//! reply looks like (closed schemas), how errors map to op outcomes, and
//! which checker judges the history.

mod broadcast;
mod counter;
mod echo;
mod gset;
pub mod schema;
pub mod topology;
mod unique_ids;

pub use broadcast::Broadcast;
pub use counter::{Counter, check_counter};
pub use echo::Echo;
pub use gset::GSet;
pub use schema::{Field, FieldType, Schema};
pub use topology::Topology;
pub use unique_ids::UniqueIds;

use crate::edn::Edn;
use crate::history::History;
use hearsay_core::rng::Rng;
use serde_json::{Map, Value};
use std::fmt;
use std::str::FromStr;

/// An operation a worker is about to invoke.
#[derive(Clone, Debug, PartialEq)]
pub struct OpSpec {
    pub f: &'static str,
    pub value: Edn,
    pub final_: bool,
}

impl OpSpec {
    pub(crate) fn new(f: &'static str, value: Edn, final_: bool) -> OpSpec {
        OpSpec { f, value, final_ }
    }
}

/// Maelstrom's `gen/mix` of its set workloads (broadcast, g-set): each op
/// is, with equal odds, an add of the next integer (as `add_f`) or a read.
pub(crate) fn add_or_read(rng: &mut Rng, add_f: &'static str, next: &mut i64) -> OpSpec {
    use hearsay_core::rng::RngExt;
    if rng.random_range(0..2) == 0 {
        let v = *next;
        *next += 1;
        OpSpec::new(add_f, Edn::Int(v), false)
    } else {
        OpSpec::new("read", Edn::Nil, false)
    }
}

/// A request body: its `type` and, for ops that carry one, the op's
/// integer value under `field`.
pub(crate) fn int_request(op: &OpSpec, field: Option<&str>) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("type".into(), op.f.into());
    if let (Some(k), Edn::Int(v)) = (field, &op.value) {
        m.insert(k.into(), (*v).into());
    }
    m
}

/// What a read of a set records: a list of integers compactly (see
/// [`crate::edn::ints`]), anything else as its EDN.
pub(crate) fn set_read_value(v: Option<&Value>) -> Edn {
    match v {
        Some(Value::Array(items)) => {
            let ints: Option<Vec<i64>> = items
                .iter()
                .map(|v| v.as_i64().filter(|_| !v.is_f64()))
                .collect();
            ints.map(crate::edn::ints)
                .unwrap_or_else(|| Edn::from_json(&Value::Array(items.clone())))
        }
        other => other.map(Edn::from_json).unwrap_or(Edn::Nil),
    }
}

/// How a client turns error replies and timeouts into op types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorPolicy {
    /// Maelstrom's `with-errors`: a definite error, or any error or timeout
    /// on an idempotent op, is `:fail`; anything else `:info`.
    WithErrors { idempotent: &'static [&'static str] },
    /// Every error, timeout or malformed reply is an indeterminate crash.
    AllInfo,
}

pub trait Workload: Send {
    fn name(&self) -> &'static str;

    /// The body (without `msg_id`) of the setup RPC each node gets from its
    /// setup client, and the reply schema; `None` if the workload has none.
    fn setup(&self, node: &str) -> Option<(Map<String, Value>, Schema)>;

    /// The next main-phase operation.
    fn next_op(&mut self, rng: &mut Rng) -> OpSpec;

    /// One per worker after recovery, if the workload has a final phase.
    fn final_op(&self) -> Option<OpSpec>;

    /// The request body for `op`, without `msg_id`.
    fn request(&self, op: &OpSpec) -> Map<String, Value>;

    fn reply_schema(&self, f: &str) -> Schema;

    /// The value recorded on an `:ok` completion.
    fn ok_value(&self, op: &OpSpec, reply: &Value) -> Edn;

    /// A fast path for large replies: if `raw` is exactly a well-formed
    /// `:ok` reply to an `f` op, its `in_reply_to` and `:ok` value. `None`
    /// sends the reply down the generic (schema-checking) path.
    fn fast_ok(&self, _f: &str, _raw: &str) -> Option<(u64, Edn)> {
        None
    }

    fn errors(&self) -> ErrorPolicy;

    /// The `:workload` section of the results.
    fn check(&self, history: &History) -> Edn;
}

/// Every workload Maelstrom knows; hearsay implements some of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkloadKind {
    Broadcast,
    Echo,
    GSet,
    GCounter,
    PnCounter,
    UniqueIds,
}

/// The workloads hearsay runs, by Maelstrom name.
pub const IMPLEMENTED: &str = "broadcast, echo, g-set, g-counter, pn-counter, unique-ids";

pub const MAELSTROM_WORKLOADS: &[&str] = &[
    "broadcast",
    "echo",
    "g-set",
    "g-counter",
    "pn-counter",
    "lin-kv",
    "kafka",
    "txn-list-append",
    "txn-rw-register",
    "unique-ids",
];

impl FromStr for WorkloadKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "broadcast" => Ok(WorkloadKind::Broadcast),
            "echo" => Ok(WorkloadKind::Echo),
            "g-set" => Ok(WorkloadKind::GSet),
            "g-counter" => Ok(WorkloadKind::GCounter),
            "pn-counter" => Ok(WorkloadKind::PnCounter),
            "unique-ids" => Ok(WorkloadKind::UniqueIds),
            _ if MAELSTROM_WORKLOADS.contains(&s) => Err(format!(
                "workload {s:?} is a Maelstrom workload hearsay does not implement yet; available: {IMPLEMENTED}"
            )),
            _ => Err(format!("unknown workload {s:?}; available: {IMPLEMENTED}")),
        }
    }
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WorkloadKind::Broadcast => "broadcast",
            WorkloadKind::Echo => "echo",
            WorkloadKind::GSet => "g-set",
            WorkloadKind::GCounter => "g-counter",
            WorkloadKind::PnCounter => "pn-counter",
            WorkloadKind::UniqueIds => "unique-ids",
        })
    }
}

impl WorkloadKind {
    /// For the set workloads (judged by set-full), the name of the add.
    pub fn set_add(self) -> Option<&'static str> {
        match self {
            WorkloadKind::Broadcast => Some("broadcast"),
            WorkloadKind::GSet => Some("add"),
            _ => None,
        }
    }

    pub fn build(self, nodes: &[String], topology: Topology) -> Box<dyn Workload> {
        match self {
            WorkloadKind::Broadcast => Box::new(Broadcast::new(topology.build(nodes))),
            WorkloadKind::Echo => Box::new(Echo),
            WorkloadKind::GSet => Box::new(GSet::default()),
            WorkloadKind::GCounter => Box::new(Counter { negative: false }),
            WorkloadKind::PnCounter => Box::new(Counter { negative: true }),
            WorkloadKind::UniqueIds => Box::new(UniqueIds),
        }
    }
}
