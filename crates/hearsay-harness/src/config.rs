//! Everything that shapes one test run, with Maelstrom's defaults.

use crate::checker::availability::Availability;
use crate::net::Latency;
use crate::workload::{Topology, WorkloadKind};
use std::path::PathBuf;
use std::time::Duration;

/// Maelstrom's fixed timeouts and waits.
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);
pub const RPC_TIMEOUT: Duration = Duration::from_secs(5);
pub const RECOVERY: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct TestConfig {
    pub workload: WorkloadKind,
    /// Canonical path of the node binary, and its argv.
    pub bin: PathBuf,
    pub args: Vec<String>,
    pub nodes: Vec<String>,
    /// Client worker threads; worker i talks to `nodes[i % nodes.len()]`.
    pub concurrency: usize,
    /// Length of the main phase.
    pub time_limit: Duration,
    /// Total requests per second (0: no client ops).
    pub rate: f64,
    pub latency: Latency,
    pub partition: bool,
    /// `--nemesis pause`: SIGSTOP / SIGCONT nodes (maelstrom-spec-more.md 8).
    pub pause: bool,
    /// `--nemesis kill`: kill nodes and start them again, empty, with a
    /// fresh `init` (maelstrom-spec-more.md 8).
    pub kill: bool,
    /// Mean seconds between nemesis operations.
    pub nemesis_interval: f64,
    pub topology: Topology,
    pub availability: Option<Availability>,
    pub log_stderr: bool,
    pub log_net_send: bool,
    pub log_net_recv: bool,
    /// Seeds every random choice of the harness (ops, latency, nemesis).
    pub seed: u64,
    /// The wait between healing and the final reads (Maelstrom: 10 s).
    pub recovery: Duration,
    /// Where `store/` lives.
    pub store: PathBuf,
    /// Write every message to `net-journal.jsonl`.
    pub journal: bool,
    /// The journal file's size limit in bytes: past it the file keeps the
    /// first messages only (counts and checkers still see them all).
    pub journal_limit: u64,
    /// Read every node this often from the end of the main phase until the
    /// final reads, to time convergence (hearsay's; Maelstrom has no such
    /// reads, so it is off by default).
    pub probe: Option<Duration>,
}

impl TestConfig {
    /// A test with Maelstrom's defaults: one worker per node, 60 s at 5 ops/s,
    /// no latency, no faults, the grid topology, a 10 s recovery, results in
    /// `store/`, the message journal on. Override fields with `..`.
    pub fn new(
        workload: WorkloadKind,
        bin: PathBuf,
        args: Vec<String>,
        nodes: Vec<String>,
        seed: u64,
    ) -> Self {
        TestConfig {
            workload,
            bin,
            args,
            concurrency: nodes.len(),
            nodes,
            time_limit: Duration::from_secs(60),
            rate: 5.0,
            latency: Latency::default(),
            partition: false,
            pause: false,
            kill: false,
            nemesis_interval: 10.0,
            topology: Topology::default(),
            availability: None,
            log_stderr: false,
            log_net_send: false,
            log_net_recv: false,
            seed,
            recovery: RECOVERY,
            store: PathBuf::from("store"),
            journal: true,
            journal_limit: crate::net::JOURNAL_LIMIT,
            probe: None,
        }
    }

    /// Maelstrom's node names: `n0..n(N-1)` for `--node-count N`.
    /// The node a client worker thread talks to (round robin).
    pub fn node_of_worker(&self, thread: usize) -> usize {
        thread % self.nodes.len().max(1)
    }

    /// The node a client process talks to: a crashed worker continues as
    /// process p + concurrency on the same thread, so the same node.
    pub fn node_of_process(&self, process: u64) -> usize {
        self.node_of_worker((process % self.concurrency.max(1) as u64) as usize)
    }

    pub fn node_names(count: usize) -> Vec<String> {
        (0..count).map(|i| format!("n{i}")).collect()
    }

    /// Maelstrom's default node list when no count is given.
    pub fn default_nodes() -> Vec<String> {
        (1..=5).map(|i| format!("n{i}")).collect()
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.nodes.is_empty() {
            return Err("the test needs at least one node".into());
        }
        let mut seen = std::collections::HashSet::new();
        for n in &self.nodes {
            if n.is_empty() || n.starts_with('c') {
                return Err(format!(
                    "node name {n:?} is not allowed: names starting with 'c' are clients"
                ));
            }
            if !seen.insert(n) {
                return Err(format!("node {n:?} is listed twice"));
            }
        }
        if self.concurrency == 0 {
            return Err("--concurrency must be at least 1".into());
        }
        if !self.rate.is_finite() || self.rate < 0.0 {
            return Err(format!(
                "--rate must be a non-negative number, not {}",
                self.rate
            ));
        }
        if !self.nemesis_interval.is_finite() || self.nemesis_interval <= 0.0 {
            return Err("--nemesis-interval must be positive".into());
        }
        self.latency.validate()?;
        if self.workload == WorkloadKind::LinKv {
            crate::workload::lin_kv::check_concurrency(self.nodes.len(), self.concurrency)?;
        }
        if let Some(t) = self.workload.txn_options() {
            t.validate()?;
        }
        Ok(())
    }
}
