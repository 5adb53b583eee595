//! Workloads (Maelstrom section 4): what clients ask nodes, what a correct
//! reply looks like (closed schemas), how errors map to op outcomes, and
//! which checker judges the history. Each is a generator, a client and a
//! checker ([`Workload`]).

mod broadcast;
mod counter;
mod echo;
mod gset;
pub mod kafka;
pub mod lin_kv;
pub mod schema;
pub mod topology;
pub mod txn;
mod txn_list_append;
mod txn_rw_register;
mod unique_ids;

pub use counter::check_counter;
pub use kafka::KafkaOptions;
pub use schema::{Field, FieldType, Schema};
pub use topology::Topology;
pub use txn::TxnOptions;

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
/// is, with equal odds, an add of the next integer (as `add`) or a read;
/// then one final read per worker (flagged final where Maelstrom flags it).
pub(crate) struct AddOrRead {
    pub add: &'static str,
    pub final_flag: bool,
    pub next: i64,
}

impl Generator for AddOrRead {
    fn next_op(&mut self, _ctx: Ctx, rng: &mut Rng) -> OpSpec {
        use hearsay_core::rng::RngExt;
        if rng.random_range(0..2) == 0 {
            let v = self.next;
            self.next += 1;
            OpSpec::new(self.add, Edn::Int(v), false)
        } else {
            OpSpec::new("read", Edn::Nil, false)
        }
    }

    fn final_op(&self, _ctx: Ctx) -> Option<OpSpec> {
        Some(OpSpec::new("read", Edn::Nil, self.final_flag))
    }
}

/// Jepsen's set-full checker with `add` as the add op.
pub(crate) struct SetFull(pub &'static str);

impl Checker for SetFull {
    fn check(&self, history: &History) -> Edn {
        crate::checker::set_full::check(history, self.0)
    }
}

/// `add_ok` with nothing else: the g-set's and the counters' add reply.
pub(crate) const ADD_OK: Schema = Schema {
    reply_type: "add_ok",
    fields: &[],
};

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

/// Where an op is about to run: the worker thread and the Jepsen process
/// on it (a process is replaced after an indeterminate op).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ctx {
    pub thread: usize,
    pub process: u64,
    /// History time (ns since client setup) of the request.
    pub time_ns: u64,
}

/// What to ask next (Jepsen's generator). Draws come from the run's `ops`
/// stream only, so a run replays from its seed.
pub trait Generator: Send {
    /// The next main-phase operation for the worker at `ctx`.
    fn next_op(&mut self, ctx: Ctx, rng: &mut Rng) -> OpSpec;

    /// The op each worker runs after recovery; `None`: the workload has no
    /// final phase.
    fn final_op(&self, ctx: Ctx) -> Option<OpSpec>;

    /// Sees every client op's completion, in history order, with the
    /// worker it ran on (kafka aims its final polls at what was
    /// acknowledged).
    fn observe(&mut self, _ctx: Ctx, _op: &crate::history::Op) {}

    /// After a final-phase op of the worker at `ctx` completed: its next
    /// final op and how long (ns) to wait before it, or `None` when the
    /// worker is done. Most workloads run one final op per worker.
    fn final_next(&mut self, _ctx: Ctx, _rng: &mut Rng) -> Option<(OpSpec, u64)> {
        None
    }

    /// A cap on the final phase (Maelstrom's kafka: 10 s): after it no new
    /// final op starts; those running complete as usual.
    fn final_limit(&self) -> Option<std::time::Duration> {
        None
    }
}

/// How one process talks to a node (Jepsen's client): request bodies,
/// reply schemas, recorded values. A worker opens a fresh client for each
/// process, so per-process state (offsets, sessions) lives here.
pub trait Client: Send {
    /// The body (without `msg_id`) of the setup RPC, and its reply schema;
    /// asked once of one client per node before the main phase.
    fn setup(&mut self) -> Option<(Map<String, Value>, Schema)> {
        None
    }

    /// The request body for `op`, without `msg_id`.
    fn request(&mut self, op: &OpSpec) -> Map<String, Value>;

    fn reply_schema(&self, f: &str) -> Schema;

    /// The value recorded on an `:ok` completion.
    fn ok_value(&mut self, op: &OpSpec, reply: &Value) -> Edn;

    /// An op that completes at once, with no request: its type and value
    /// (kafka's `crash` is `:info`; an assign that seeks to the beginning
    /// is `:ok`). `None`: the op sends [`Client::request`].
    fn local(&mut self, _op: &OpSpec) -> Option<(crate::history::OpType, Edn)> {
        None
    }

    /// After an ok reply to an op's request, a second request the same op
    /// makes, with its reply schema (kafka's poll commits the offsets it
    /// read). The op then completes when that is answered: `:ok` with the
    /// first reply's value ([`Client::ok_value`]) if it is ok, otherwise as
    /// the error policy says, with the invocation's value.
    fn then(&mut self, _op: &OpSpec, _reply: &Value) -> Option<(Map<String, Value>, Schema)> {
        None
    }

    /// A fast path for large replies: if `raw` is exactly a well-formed
    /// `:ok` reply to an `f` op, its `in_reply_to` and `:ok` value. `None`
    /// sends the reply down the generic (schema-checking) path.
    fn fast_ok(&self, _f: &str, _raw: &str) -> Option<(u64, Edn)> {
        None
    }

    fn errors(&self) -> ErrorPolicy;
}

/// Judges a finished history: the `:workload` section of the results.
pub trait Checker: Send {
    fn check(&self, history: &History) -> Edn;

    /// The verdict and the files that explain it (Elle's `elle/`, kafka's
    /// plots); most checkers write none.
    fn check_files(&self, history: &History) -> (Edn, Vec<crate::checker::Artifact>) {
        (self.check(history), Vec::new())
    }
}

/// Opens a client for a process talking to `node`.
pub type OpenClient = Box<dyn Fn(&str) -> Box<dyn Client> + Send>;

/// A workload: its generator, how to open clients, and its checker, kept
/// apart so a new workload reuses any of them.
pub struct Workload {
    pub name: &'static str,
    pub generator: Box<dyn Generator>,
    pub open: OpenClient,
    pub checker: Box<dyn Checker>,
    /// Jepsen's reusable clients: a worker whose op crashed keeps its client
    /// (and its `c…` id) for the next process instead of opening a new one.
    pub reusable: bool,
    pub timeout: Timeout,
}

/// How long a client waits for each reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timeout {
    Fixed(std::time::Duration),
    /// `max(min_ms, factor × mean latency)`.
    LatencyScaled {
        min_ms: u64,
        factor: u64,
    },
}

impl Timeout {
    pub fn for_latency(self, mean_ms: u64) -> std::time::Duration {
        match self {
            Timeout::Fixed(d) => d,
            Timeout::LatencyScaled { min_ms, factor } => {
                std::time::Duration::from_millis(min_ms.max(factor.saturating_mul(mean_ms)))
            }
        }
    }
}

impl Workload {
    fn new<C: Client + Clone + 'static>(
        name: &'static str,
        generator: impl Generator + 'static,
        client: C,
        checker: impl Checker + 'static,
    ) -> Workload {
        Workload {
            name,
            generator: Box::new(generator),
            open: Box::new(move |_node| Box::new(client.clone())),
            checker: Box::new(checker),
            reusable: false,
            timeout: Timeout::Fixed(crate::config::RPC_TIMEOUT),
        }
    }

    /// Whether the test ends with a final phase (recovery, then final ops).
    pub fn has_final_phase(&self) -> bool {
        self.generator
            .final_op(Ctx {
                thread: 0,
                process: 0,
                time_ns: 0,
            })
            .is_some()
    }
}

/// A checker from a function of the history.
pub struct CheckWith(pub fn(&History) -> Edn);

impl Checker for CheckWith {
    fn check(&self, history: &History) -> Edn {
        (self.0)(history)
    }
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
    LinKv,
    TxnRwRegister(TxnOptions),
    TxnListAppend(TxnOptions),
    Kafka(KafkaOptions),
}

/// The workloads hearsay runs, by Maelstrom name.
pub const IMPLEMENTED: &str = "broadcast, echo, g-set, g-counter, pn-counter, unique-ids, lin-kv, txn-rw-register, txn-list-append, kafka";

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
            "lin-kv" => Ok(WorkloadKind::LinKv),
            "txn-rw-register" => Ok(WorkloadKind::TxnRwRegister(TxnOptions::default())),
            "txn-list-append" => Ok(WorkloadKind::TxnListAppend(TxnOptions::default())),
            "kafka" => Ok(WorkloadKind::Kafka(KafkaOptions::default())),
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
            WorkloadKind::LinKv => "lin-kv",
            WorkloadKind::TxnRwRegister(_) => "txn-rw-register",
            WorkloadKind::TxnListAppend(_) => "txn-list-append",
            WorkloadKind::Kafka(_) => "kafka",
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

    pub fn build(self, nodes: &[String], topology: Topology) -> Workload {
        match self {
            WorkloadKind::Broadcast => broadcast::workload(topology.build(nodes)),
            WorkloadKind::Echo => echo::workload(),
            WorkloadKind::GSet => gset::workload(),
            WorkloadKind::GCounter => counter::workload(false),
            WorkloadKind::PnCounter => counter::workload(true),
            WorkloadKind::UniqueIds => unique_ids::workload(),
            WorkloadKind::LinKv => lin_kv::workload(nodes.len()),
            WorkloadKind::TxnRwRegister(o) => txn_rw_register::workload(o),
            WorkloadKind::TxnListAppend(o) => txn_list_append::workload(o),
            WorkloadKind::Kafka(o) => kafka::workload(o, nodes.len()),
        }
    }

    /// The txn options of a workload that takes them.
    pub fn txn_options(self) -> Option<TxnOptions> {
        match self {
            WorkloadKind::TxnRwRegister(o) | WorkloadKind::TxnListAppend(o) => Some(o),
            WorkloadKind::Kafka(o) => Some(o.txn),
            _ => None,
        }
    }

    /// The same workload with these txn options, if it takes them
    /// (Maelstrom accepts the flags with any workload and ignores them).
    pub fn with_txn_options(self, o: TxnOptions) -> WorkloadKind {
        match self {
            WorkloadKind::TxnRwRegister(_) => WorkloadKind::TxnRwRegister(o),
            WorkloadKind::TxnListAppend(_) => WorkloadKind::TxnListAppend(o),
            WorkloadKind::Kafka(k) => WorkloadKind::Kafka(KafkaOptions { txn: o, ..k }),
            other => other,
        }
    }

    /// The same workload told how many client workers run (kafka crashes
    /// a client every 30 s / concurrency on average).
    pub fn with_concurrency(self, concurrency: usize) -> WorkloadKind {
        match self {
            WorkloadKind::Kafka(k) => WorkloadKind::Kafka(KafkaOptions {
                concurrency: Some(concurrency),
                ..k
            }),
            other => other,
        }
    }
}
