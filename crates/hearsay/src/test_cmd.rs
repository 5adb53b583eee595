//! `hearsay test`: Maelstrom's `test` command with Maelstrom's flags,
//! defaults and exit codes (0 valid, 1 invalid, 2 unknown, 254 bad
//! arguments, 255 crash).

use crate::args;
use crate::own_node::OwnNode;
use crate::progress::Display;
use crate::{EXIT_BAD_ARGS, EXIT_CRASH};
use clap::Parser;
use clap::{Args, ValueEnum};
use hearsay_harness::checker::Validity;
use hearsay_harness::checker::availability::Availability;
use hearsay_harness::config::{RECOVERY, TestConfig};
use hearsay_harness::net::Journal;
use hearsay_harness::net::{Latency, LatencyDist};
use hearsay_harness::report;
use hearsay_harness::run::process;
use hearsay_harness::run::sim::{self, SimNode};
use hearsay_harness::workload::txn::ConsistencyModels;
use hearsay_harness::workload::{Topology, TxnOptions, WorkloadKind};
use hearsay_maelstrom::cli::NodeArgs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The Gossip Glomers challenges 3 (broadcast), 5 (kafka) and 6
/// (transactions), as flag sets; 5 and 6 need a `--bin`.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Scenario {
    /// Single node: -w broadcast --node-count 1 --time-limit 20 --rate 10
    #[value(name = "3a")]
    A,
    /// Multi-node: --node-count 5 --time-limit 20 --rate 10
    #[value(name = "3b")]
    B,
    /// Fault tolerant: 3b plus --nemesis partition
    #[value(name = "3c")]
    C,
    /// Efficient I: --node-count 25 --time-limit 20 --rate 100 --latency 100
    #[value(name = "3d")]
    D,
    /// Efficient II: the same flags as 3d (stricter targets)
    #[value(name = "3e")]
    E,
    /// Single-node kafka-style log: -w kafka --node-count 1 --concurrency
    /// 2n --time-limit 20 --rate 1000
    #[value(name = "5a")]
    LogA,
    /// Multi-node kafka-style log: 5a with --node-count 2
    #[value(name = "5b")]
    LogB,
    /// Efficient kafka-style log: the 5b flags
    #[value(name = "5c")]
    LogC,
    /// Single-node, totally available transactions: -w txn-rw-register
    /// --node-count 1 --time-limit 20 --rate 1000 --concurrency 2n
    /// --consistency-models read-uncommitted --availability total
    #[value(name = "6a")]
    TxnA,
    /// Read uncommitted: 6a with --node-count 2 --nemesis partition
    #[value(name = "6b")]
    TxnB,
    /// Read committed: 6b with --consistency-models read-committed
    #[value(name = "6c")]
    TxnC,
}

#[derive(Debug, Args)]
#[command(after_long_help = AFTER_HELP)]
pub struct TestArgs {
    /// Workload: broadcast, echo, g-set, g-counter, pn-counter, unique-ids,
    /// lin-kv, txn-rw-register, txn-list-append, kafka [default: broadcast on hearsay's own node,
    /// lin-kv with --bin]
    #[arg(short = 'w', long, value_name = "NAME")]
    pub workload: Option<String>,
    /// Node binary to test, any language [default: hearsay's own node]
    #[arg(long, value_name = "FILE")]
    pub bin: Option<PathBuf>,
    /// Run N nodes named n0..n(N-1), overriding the node lists [default: n1..n5]
    #[arg(long, value_name = "N", value_parser = args::node_count)]
    pub node_count: Option<usize>,
    /// Comma-separated node names; joins --nodes-file and -n, as in Jepsen
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub nodes: Option<Vec<String>>,
    /// A file of node names, one per line
    #[arg(long, value_name = "FILE")]
    pub nodes_file: Option<PathBuf>,
    /// One node name; repeatable
    #[arg(short = 'n', long = "node", value_name = "NAME")]
    pub node: Vec<String>,
    /// Client workers: an integer, or Kn for K per node [default: 1n]
    #[arg(long, value_name = "C")]
    pub concurrency: Option<String>,
    /// Whole seconds of client operations [default: 60]
    #[arg(long, value_name = "SECONDS", value_parser = args::time_limit)]
    pub time_limit: Option<u64>,
    /// Total requests per second, across all clients; 0 for none [default: 5]
    #[arg(long, value_name = "RATE", value_parser = args::rate)]
    pub rate: Option<f64>,
    /// Mean node-to-node latency in whole ms; clients always see 0 [default: 0]
    #[arg(long, value_name = "MS", value_parser = args::latency_ms)]
    pub latency: Option<u64>,
    /// constant, uniform (on [0, 2*latency)) or exponential [default: constant]
    #[arg(long, value_name = "DIST")]
    pub latency_dist: Option<LatencyDist>,
    /// Faults to inject, comma separated: partition, pause (SIGSTOP and
    /// SIGCONT to the node's process; a wrapper script must exec the node),
    /// kill (SIGKILL, then a new process and init again: state is lost)
    #[arg(long, value_name = "FAULTS")]
    pub nemesis: Option<String>,
    /// Mean seconds between nemesis operations [default: 10]
    #[arg(long, value_name = "SECONDS", value_parser = args::positive_secs)]
    pub nemesis_interval: Option<f64>,
    /// Topology offered to broadcast nodes: grid, line, tree, tree2, tree3, tree4, total [default: grid]
    #[arg(long, value_name = "T")]
    pub topology: Option<Topology>,
    /// Require this availability: `total` or a fraction of ops that must succeed
    #[arg(long, value_name = "A")]
    pub availability: Option<Availability>,
    /// Echo node stderr to the console
    #[arg(long)]
    pub log_stderr: bool,
    /// Log every message as it is sent
    #[arg(long)]
    pub log_net_send: bool,
    /// Log every message as it is delivered
    #[arg(long)]
    pub log_net_recv: bool,
    /// txn workloads and kafka: keys in play at once [default: 10]
    #[arg(long, value_name = "INT", value_parser = args::key_count)]
    pub key_count: Option<usize>,
    /// txn workloads: the most micro-ops per transaction [default: 4]
    #[arg(long, value_name = "INT", value_parser = args::max_txn_length)]
    pub max_txn_length: Option<usize>,
    /// txn workloads and kafka: writes to one key before it is replaced [default: 16]
    #[arg(long, value_name = "INT", value_parser = args::max_writes_per_key)]
    pub max_writes_per_key: Option<u64>,
    /// txn workloads: models to check, separated by " , " (a comma with
    /// spaces around it, as in Maelstrom); an unknown model makes the
    /// verdict unknown [default: strict-serializable]
    #[arg(long, value_name = "MODELS")]
    pub consistency_models: Option<String>,
    /// Run the test this many times, stopping at the first that is not valid
    #[arg(long, value_name = "N", default_value = "1", value_parser = args::repeats)]
    pub test_count: usize,
    /// A Gossip Glomers challenge's flag set; explicit flags override it
    #[arg(long, value_name = "CHALLENGE")]
    pub scenario: Option<Scenario>,
    /// Seed for every random choice of the harness [default: random, printed]
    #[arg(long, value_name = "SEED")]
    pub seed: Option<u64>,
    /// Where results go
    #[arg(long, value_name = "DIR", default_value = "store")]
    pub store: PathBuf,
    /// hearsay only: seconds to wait between healing and the final reads
    /// (Maelstrom always waits 10)
    #[arg(long, value_name = "SECONDS", value_parser = args::secs)]
    pub recovery: Option<f64>,
    /// hearsay only: from the end of the main phase until the final reads,
    /// read every node every MS milliseconds (reads kept out of the history,
    /// counted as client traffic) and report how soon after the last update
    /// and the heal every node read the value it ends with
    #[arg(long, value_name = "MS", value_parser = args::probe_ms)]
    pub probe: Option<u64>,
    /// Do not write net-journal.jsonl
    #[arg(long)]
    pub no_journal: bool,
    /// Size limit of net-journal.jsonl in MB: past it the file keeps only
    /// the first messages, and the summary says how many were left out
    /// (counts and checkers see them all)
    #[arg(long, value_name = "MB", default_value_t = 512, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub journal_limit: u64,
    /// Run hearsay's own node in-process in virtual time (deterministic by
    /// --seed) instead of spawning processes; node flags go after `--`
    #[arg(long)]
    pub sim: bool,
    /// No progress display
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// At the end, print the whole results map (results.edn), as Maelstrom does
    #[arg(long)]
    pub print_results: bool,
    /// Arguments for the node binary: words that are not options, and
    /// everything after `--`
    #[arg(value_name = "NODE ARGS")]
    pub args: Vec<String>,
}

const AFTER_HELP: &str = "\
Defaults: with no flag that shapes the test, `hearsay test` runs the Gossip
Glomers 3d scenario (broadcast, 25 nodes, rate 100, latency 100 ms, 20 s) on
hearsay's own node. Once any such flag is given, the rest take Maelstrom's
defaults, so Maelstrom command lines mean the same thing here.

Node arguments are the words that are not options, and everything after
`--` (so `--bin ./node.py -- --verbose` hands `--verbose` to the node); an
option hearsay does not know is an error (exit 254), as in Maelstrom. With
--bin and no -w, the workload is Maelstrom's default, lin-kv (which needs
--concurrency 2n or another multiple of twice the node count).

Examples:
  hearsay test                                          # 3d on hearsay-node
  hearsay test -w broadcast --bin ./node.py --node-count 5 --time-limit 20 --rate 10 --nemesis partition
  hearsay test --scenario 3c --bin ./target/release/hearsay-node -- --preset latency

Exit codes: 0 valid, 1 invalid, 2 unknown, 254 bad arguments, 255 crashed.
Results: store/<workload>/<time>/ (results.edn, results.json, history.txt,
node-logs/, command.txt: the command that reruns the test), with
store/latest pointing at the newest run.";

pub(crate) struct BadArgs(pub(crate) String);

impl TestArgs {
    fn shapes_test(&self) -> bool {
        self.workload.is_some()
            || self.node_count.is_some()
            || self.nodes.is_some()
            || self.nodes_file.is_some()
            || !self.node.is_empty()
            || self.concurrency.is_some()
            || self.time_limit.is_some()
            || self.rate.is_some()
            || self.latency.is_some()
            || self.latency_dist.is_some()
            || self.nemesis.is_some()
            || self.nemesis_interval.is_some()
            || self.topology.is_some()
            || self.scenario.is_some()
    }

    /// Applies a scenario's flags where the user gave none.
    fn apply_scenario(&mut self, s: Scenario) {
        use Scenario as S;
        let (workload, count, rate) = match s {
            S::A => ("broadcast", 1, 10.0),
            S::B | S::C => ("broadcast", 5, 10.0),
            S::D | S::E => ("broadcast", 25, 100.0),
            S::LogA => ("kafka", 1, 1000.0),
            S::LogB | S::LogC => ("kafka", 2, 1000.0),
            S::TxnA => ("txn-rw-register", 1, 1000.0),
            S::TxnB | S::TxnC => ("txn-rw-register", 2, 1000.0),
        };
        self.workload.get_or_insert_with(|| workload.into());
        if self.nodes.is_none() && self.nodes_file.is_none() && self.node.is_empty() {
            self.node_count.get_or_insert(count);
        }
        self.time_limit.get_or_insert(20);
        self.rate.get_or_insert(rate);
        if matches!(s, S::D | S::E) {
            self.latency.get_or_insert(100);
        }
        if matches!(s, S::C | S::TxnB | S::TxnC) {
            self.nemesis.get_or_insert_with(|| "partition".into());
        }
        if matches!(s, S::LogA | S::LogB | S::LogC | S::TxnA | S::TxnB | S::TxnC) {
            self.concurrency.get_or_insert_with(|| "2n".into());
        }
        if matches!(s, S::TxnA | S::TxnB | S::TxnC) {
            self.availability.get_or_insert(Availability::Total);
            let model = if s == S::TxnC {
                "read-committed"
            } else {
                "read-uncommitted"
            };
            self.consistency_models.get_or_insert_with(|| model.into());
        }
    }

    /// Why the workload is what it is, when the user did not name one.
    fn workload_note(&self) -> Option<String> {
        if self.workload.is_some() || self.scenario.is_some() {
            return None;
        }
        Some(if self.bin.is_some() {
            "no -w given: running Maelstrom's default workload, lin-kv".into()
        } else if self.shapes_test() {
            "no -w given: running broadcast on hearsay's own node (Maelstrom's default, lin-kv, needs a --bin that implements it)".into()
        } else {
            "no flags given: running the Gossip Glomers 3d scenario on hearsay's own node (see --help)".into()
        })
    }

    /// Jepsen's node list: --nodes-file, then --nodes, then -n, in that
    /// order; --node-count replaces them all.
    fn node_list(&mut self) -> Result<Vec<String>, BadArgs> {
        if let Some(n) = self.node_count {
            return Ok(TestConfig::node_names(n));
        }
        let mut all = Vec::new();
        if let Some(f) = &self.nodes_file {
            let text = std::fs::read_to_string(f)
                .map_err(|e| BadArgs(format!("--nodes-file {}: {e}", f.display())))?;
            all.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(String::from),
            );
        }
        all.extend(self.nodes.take().unwrap_or_default());
        all.append(&mut self.node);
        if all.is_empty() {
            all = TestConfig::default_nodes();
        }
        if all.len() > args::MAX_NODES {
            return Err(BadArgs(format!(
                "{} nodes listed; at most {} run in one test",
                all.len(),
                args::MAX_NODES
            )));
        }
        Ok(all)
    }

    fn config(mut self) -> Result<TestConfig, BadArgs> {
        // Maelstrom's default workload is lin-kv; hearsay's own node is a
        // gossip node, so without --bin the default stays broadcast.
        if self.bin.is_some() && self.workload.is_none() && self.scenario.is_none() {
            self.workload = Some("lin-kv".into());
        }
        if !self.shapes_test() {
            self.scenario = Some(Scenario::D);
        }
        if let Some(s) = self.scenario {
            self.apply_scenario(s);
        }
        if self.bin.is_none() && self.workload.as_deref() == Some("lin-kv") {
            return Err(BadArgs(
                "-w lin-kv needs --bin: hearsay's own node spreads values by gossip and does not offer a linearizable register (try Maelstrom's demo/ruby/raft.rb, or your own node)".into(),
            ));
        }
        if self.bin.is_none() && self.workload.as_deref() == Some("txn-rw-register") {
            return Err(BadArgs(
                "-w txn-rw-register needs --bin: hearsay's own node does not run transactions (try crates/hearsay/tests/nodes/txn_rw.py, or your own node)".into(),
            ));
        }
        if self.bin.is_none() && self.workload.as_deref() == Some("txn-list-append") {
            return Err(BadArgs(
                "-w txn-list-append needs --bin: hearsay's own node does not run transactions (try crates/hearsay/tests/nodes/txn_append.py, or your own node)".into(),
            ));
        }
        if self.bin.is_none() && self.workload.as_deref() == Some("kafka") {
            return Err(BadArgs(
                "-w kafka needs --bin: hearsay's own node does not keep logs (try crates/hearsay/tests/nodes/kafka.py, or your own node)".into(),
            ));
        }
        let workload: WorkloadKind = self
            .workload
            .as_deref()
            .unwrap_or("broadcast")
            .parse()
            .map_err(BadArgs)?;
        let workload = workload.with_txn_options(self.txn_options()?);
        let nodes = self.node_list()?;
        let concurrency =
            args::concurrency(self.concurrency.as_deref().unwrap_or("1n"), nodes.len())
                .map_err(BadArgs)?;
        let workload = workload.with_concurrency(concurrency);
        let (mut partition, mut pause, mut kill) = (false, false, false);
        for f in self
            .nemesis
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
        {
            match f.trim_start_matches(':') {
                "" => {}
                "partition" => partition = true,
                "pause" => pause = true,
                "kill" => kill = true,
                other => {
                    return Err(BadArgs(format!(
                        "unknown nemesis fault {other:?}; must be one of: partition, pause, kill"
                    )));
                }
            }
        }
        let time_limit = self.time_limit.unwrap_or(60);
        let recovery = self.recovery.unwrap_or(RECOVERY.as_secs_f64());
        // Our own node must know which read answer the workload expects;
        // a user's node is handed only what the user wrote.
        // (A broadcast node learns it from its topology, which a node
        // restarted by the kill nemesis never gets again.)
        let served = matches!(
            workload,
            WorkloadKind::GSet | WorkloadKind::GCounter | WorkloadKind::PnCounter
        ) || (workload == WorkloadKind::Broadcast && kill);
        if self.bin.is_none() && served && !self.args.iter().any(|a| a.starts_with("--workload")) {
            self.args
                .extend(["--workload".to_string(), workload.to_string()]);
        }
        let (bin, args) = self.resolve_bin()?;
        let d = TestConfig::new(
            workload,
            bin,
            args,
            nodes,
            self.seed.unwrap_or_else(rand::random),
        );
        let cfg = TestConfig {
            concurrency,
            time_limit: Duration::from_secs(time_limit),
            rate: self.rate.unwrap_or(d.rate),
            latency: Latency {
                mean_ms: self.latency.unwrap_or(d.latency.mean_ms),
                dist: self.latency_dist.unwrap_or(d.latency.dist),
            },
            partition,
            pause,
            kill,
            nemesis_interval: self.nemesis_interval.unwrap_or(d.nemesis_interval),
            topology: self.topology.unwrap_or(d.topology),
            availability: self.availability,
            log_stderr: self.log_stderr,
            log_net_send: self.log_net_send,
            log_net_recv: self.log_net_recv,
            recovery: Duration::from_secs_f64(recovery),
            store: self.store.clone(),
            journal: !self.no_journal,
            journal_limit: self.journal_limit << 20,
            probe: self.probe.map(Duration::from_millis),
            ..d
        };
        cfg.validate().map_err(BadArgs)?;
        Ok(cfg)
    }

    /// The txn workloads' flags, Maelstrom's defaults for the rest.
    fn txn_options(&self) -> Result<TxnOptions, BadArgs> {
        let d = TxnOptions::default();
        let consistency_models = match &self.consistency_models {
            Some(m) => ConsistencyModels::new(m).map_err(BadArgs)?,
            None => d.consistency_models,
        };
        Ok(TxnOptions {
            key_count: self.key_count.unwrap_or(d.key_count),
            max_txn_length: self.max_txn_length.unwrap_or(d.max_txn_length),
            max_writes_per_key: self.max_writes_per_key.unwrap_or(d.max_writes_per_key),
            consistency_models,
        })
    }

    fn resolve_bin(&mut self) -> Result<(PathBuf, Vec<String>), BadArgs> {
        let args = std::mem::take(&mut self.args);
        if self.sim {
            if let Some(bin) = &self.bin {
                return Err(BadArgs(format!(
                    "--sim runs hearsay's own node in-process; it cannot run --bin {}",
                    bin.display()
                )));
            }
            sim_node_config(&args)?;
            return Ok((PathBuf::from("(in-process hearsay node)"), args));
        }
        let Some(bin) = self.bin.take() else {
            return own_node(args);
        };
        let bin = on_path(bin);
        let meta = std::fs::metadata(&bin).map_err(|e| {
            let own = std::path::Path::new("target/release/hearsay-node");
            let hint = if own.is_file() {
                " (hearsay's own node is target/release/hearsay-node)"
            } else {
                ""
            };
            BadArgs(format!(
                "--bin {}: {e}: not a path to a file here, nor a program on PATH{hint}",
                bin.display()
            ))
        })?;
        if !meta.is_file() {
            return Err(BadArgs(format!("--bin {} is not a file", bin.display())));
        }
        if meta.permissions().mode() & 0o111 == 0 {
            return Err(BadArgs(format!(
                "--bin {} is not executable (try: chmod +x {})",
                bin.display(),
                bin.display()
            )));
        }
        let canonical = bin
            .canonicalize()
            .map_err(|e| BadArgs(format!("--bin {}: {e}", bin.display())))?;
        Ok((canonical, args))
    }
}

/// A bare program name that is no file here is looked up on PATH, as a
/// shell would (Maelstrom takes `--bin` as a path only; the path found is
/// what runs, and the run's command line shows it).
fn on_path(bin: PathBuf) -> PathBuf {
    if bin.exists() || bin.components().count() != 1 {
        return bin;
    }
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(&bin))
                .find(|c| c.is_file())
        })
        .unwrap_or(bin)
}

/// The node configuration `--sim` runs, from the node arguments.
fn sim_node_config(args: &[String]) -> Result<hearsay_maelstrom::NodeConfig, BadArgs> {
    #[derive(clap::Parser)]
    #[command(name = "node arguments", no_binary_name = true)]
    struct SimArgs {
        #[command(flatten)]
        node: NodeArgs,
    }
    let parsed =
        SimArgs::try_parse_from(args).map_err(|e| BadArgs(format!("node arguments: {e}")))?;
    parsed
        .node
        .config()
        .map_err(|e| BadArgs(format!("node arguments: {e}")))
}

/// hearsay's own node: this executable's `node` subcommand, the same code
/// as `hearsay-node` and never out of date with the harness (a sibling
/// `hearsay-node` may be from an older build).
pub(crate) fn own_node(args: Vec<String>) -> Result<(PathBuf, Vec<String>), BadArgs> {
    let me = std::env::current_exe()
        .map_err(|e| BadArgs(format!("cannot locate hearsay's own node: {e}")))?;
    let mut with_sub = vec!["node".to_string()];
    with_sub.extend(args);
    Ok((me, with_sub))
}

/// The node arguments, when `cfg` runs hearsay's own node as a process.
fn own_node_args(cfg: &TestConfig) -> Option<&[String]> {
    let me = std::env::current_exe().ok()?;
    (cfg.bin == me && cfg.args.first().map(String::as_str) == Some("node")).then(|| &cfg.args[1..])
}

/// The command line that reruns this test: the challenge it was judged
/// as (so the rerun prints the same verdict), every flag that shapes it
/// (they win over the challenge's), the seed, and the node arguments after
/// `--`, quoted for a POSIX shell.
pub(crate) fn rerun_command(
    cfg: &TestConfig,
    simulate: bool,
    scenario: Option<Scenario>,
) -> String {
    let program = std::env::args().next().unwrap_or_else(|| "hearsay".into());
    let mut w: Vec<String> = vec![program, "test".into()];
    if let Some(v) = scenario.and_then(|s| s.to_possible_value()) {
        w.push("--scenario".into());
        w.push(v.get_name().into());
    }
    w.push("-w".into());
    w.push(cfg.workload.to_string());
    let mut flag = |k: &str, v: String| {
        w.push(k.into());
        w.push(v);
    };
    let own = own_node_args(cfg);
    if !simulate && own.is_none() {
        flag("--bin", cfg.bin.display().to_string());
    }
    if cfg.nodes == TestConfig::node_names(cfg.nodes.len()) {
        flag("--node-count", cfg.nodes.len().to_string());
    } else if cfg.nodes.iter().any(|n| n.contains(',')) {
        for n in &cfg.nodes {
            flag("-n", n.clone());
        }
    } else {
        flag("--nodes", cfg.nodes.join(","));
    }
    flag("--time-limit", cfg.time_limit.as_secs().to_string());
    flag("--rate", cfg.rate.to_string());
    flag("--latency", cfg.latency.mean_ms.to_string());
    if cfg.latency.dist != LatencyDist::Constant {
        flag("--latency-dist", cfg.latency.dist.to_string());
    }
    let faults: Vec<&str> = [
        (cfg.partition, "partition"),
        (cfg.pause, "pause"),
        (cfg.kill, "kill"),
    ]
    .into_iter()
    .filter_map(|(on, f)| on.then_some(f))
    .collect();
    if !faults.is_empty() {
        flag("--nemesis", faults.join(","));
        flag("--nemesis-interval", cfg.nemesis_interval.to_string());
    }
    flag("--topology", cfg.topology.to_string());
    flag("--concurrency", cfg.concurrency.to_string());
    match cfg.availability {
        Some(Availability::Total) => flag("--availability", "total".into()),
        Some(Availability::AtLeast(a)) => flag("--availability", a.to_string()),
        None => {}
    }
    if cfg.recovery != RECOVERY {
        flag("--recovery", cfg.recovery.as_secs_f64().to_string());
    }
    if let Some(p) = cfg.probe {
        flag("--probe", p.as_millis().to_string());
    }
    if let Some(t) = cfg.workload.txn_options() {
        flag("--key-count", t.key_count.to_string());
        flag("--max-txn-length", t.max_txn_length.to_string());
        flag("--max-writes-per-key", t.max_writes_per_key.to_string());
        flag("--consistency-models", t.consistency_models.to_string());
    }
    if cfg.journal_limit != hearsay_harness::net::JOURNAL_LIMIT {
        flag("--journal-limit", (cfg.journal_limit >> 20).to_string());
    }
    if cfg.store != Path::new("store") {
        flag("--store", cfg.store.display().to_string());
    }
    flag("--seed", cfg.seed.to_string());
    if simulate {
        w.push("--sim".into());
    }
    let node_args = own.unwrap_or(&cfg.args);
    if !node_args.is_empty() {
        w.push("--".into());
        w.extend(node_args.iter().cloned());
    }
    args::shell_join(w.iter().map(String::as_str))
}

/// Whether a run met its Gossip Glomers challenge's targets (3d, 3e), in
/// one line: the challenge pages read msgs-per-op off `:net :servers` and
/// median and max off `:stable-latencies`.
fn challenge_verdict(s: Scenario, cfg: &TestConfig, a: &report::Analysis) -> Option<String> {
    let (name, mpo, median, max) = match s {
        Scenario::D => ("3d", 30.0, 400, 600),
        Scenario::E => ("3e", 20.0, 1000, 2000),
        _ => return None,
    };
    let h = a.headline();
    let valid = a.valid == Validity::True;
    if cfg.partition || cfg.pause || cfg.kill {
        // The challenge's numbers are for the plain run; under faults it
        // asks only that the node stay correct.
        return Some(format!(
            "  challenge {name}    {}: under a nemesis the challenge asks only for a valid run (its msgs-per-op and latency targets are for runs without one)",
            if valid { "met" } else { "NOT met" }
        ));
    }
    let ok_mpo = h.msgs_per_op.is_some_and(|m| m < mpo);
    let ok_med = h.median_ms.is_some_and(|m| m < median);
    let ok_max = h.max_ms.is_some_and(|m| m < max);
    let mark = |b: bool| if b { "ok" } else { "MISSED" };
    let show = |v: Option<i64>| v.map_or("n/a".into(), |v| format!("{v} ms"));
    Some(format!(
        "  challenge {name}    {}: valid {}, msgs-per-op {} < {mpo} {}, median {} < {median} ms {}, max {} < {max} ms {}",
        if valid && ok_mpo && ok_med && ok_max {
            "targets met"
        } else {
            "targets NOT met"
        },
        mark(valid),
        h.msgs_per_op.map_or("n/a".into(), |m| format!("{m:.2}")),
        mark(ok_mpo),
        show(h.median_ms),
        mark(ok_med),
        show(h.max_ms),
        mark(ok_max),
    ))
}

/// What `run_once` needs besides the config.
struct Shown {
    simulate: bool,
    scenario: Option<Scenario>,
    print_results: bool,
}

pub fn run(args: TestArgs) -> ExitCode {
    let quiet = args.quiet;
    let shown = Shown {
        simulate: args.sim,
        scenario: args
            .scenario
            .or_else(|| (!args.shapes_test()).then_some(Scenario::D)),
        print_results: args.print_results,
    };
    let test_count = args.test_count.max(1);
    let base_seed = args.seed;
    let note = args.workload_note();
    let cfg = match args.config() {
        Ok(c) => c,
        Err(BadArgs(msg)) => {
            eprintln!("hearsay test: {msg}");
            return ExitCode::from(EXIT_BAD_ARGS);
        }
    };
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = interrupted.clone();
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed));
    let display = Display::new(quiet);
    display.init_logging();
    if let Some(n) = note {
        eprintln!("hearsay test: {n}");
    }
    for i in 0..test_count {
        let mut cfg = cfg.clone();
        if i > 0 && base_seed.is_none() {
            cfg.seed = rand::random();
        }
        let code = run_once(cfg, &shown, &display, interrupted.clone());
        if code != 0 || interrupted.load(Ordering::Relaxed) {
            return ExitCode::from(if interrupted.load(Ordering::Relaxed) {
                130
            } else {
                code
            });
        }
    }
    ExitCode::SUCCESS
}

fn run_once(cfg: TestConfig, shown: &Shown, display: &Display, interrupted: Arc<AtomicBool>) -> u8 {
    let simulate = shown.simulate;
    let command = rerun_command(&cfg, simulate, shown.scenario);
    display.line(&command);
    let dir = match report::create_run_dir(&cfg.store, &cfg.workload.to_string()) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("hearsay test: {e:#}");
            return EXIT_CRASH;
        }
    };
    let _ = std::fs::write(dir.join("command.txt"), command + "\n");
    let result = if simulate {
        simulate_run(&cfg, &dir)
    } else {
        let mut bar = display.bar(&cfg);
        let hooks = process::Hooks {
            progress: &mut |p| bar.update(p),
            interrupted,
        };
        let r = process::run(cfg.clone(), &dir, hooks);
        bar.finish();
        r
    };
    let run = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hearsay test: {e:#}");
            return EXIT_CRASH;
        }
    };
    if let Err(e) = report::write_history(&dir, &run.history) {
        eprintln!("hearsay test: writing the history: {e:#}");
    }
    if let Some(reason) = &run.aborted {
        let _ = std::fs::write(dir.join("crash.txt"), format!("{reason}\n"));
        eprintln!("\nThe test crashed (no analysis): {reason}\n");
        for w in &run.warnings {
            eprintln!("  WARNING {}", w.text);
        }
        eprintln!("  seed    {}\n  logs    {}", cfg.seed, dir.display());
        return EXIT_CRASH;
    }
    let mut analysis = report::analyze(&cfg, &run);
    report::pictures::draw(&cfg, &run, &dir, &mut analysis);
    if let Err(e) = report::write_results(&dir, &analysis) {
        eprintln!("hearsay test: writing results: {e:#}");
        return EXIT_CRASH;
    }
    if shown.print_results {
        outln!("{}", analysis.results.pretty());
    }
    outln!("{}", report::summary(&cfg, &analysis, &display_path(&dir)));
    if let Some(line) = shown
        .scenario
        .and_then(|s| challenge_verdict(s, &cfg, &analysis))
    {
        outln!("{line}\n");
    }
    match analysis.valid {
        Validity::True => 0,
        Validity::False => 1,
        Validity::Unknown => 2,
    }
}

pub(crate) fn simulate_run(
    cfg: &TestConfig,
    dir: &Path,
) -> anyhow::Result<hearsay_harness::runner::RunResult> {
    let journal = Journal::for_run(cfg, dir)?;
    // A node killed and started again is a new life: a new epoch, its own
    // randomness, nothing remembered.
    // With --data-dir a node's kept values live in memory, shared by its
    // lives.
    let node_cfg = sim_node_config(&cfg.args).map_err(|BadArgs(m)| anyhow::anyhow!(m))?;
    let seed = cfg.seed;
    let disks: Vec<crate::own_node::Disk> =
        (0..cfg.nodes.len()).map(|_| Default::default()).collect();
    let make = move |i: usize, life: u64| -> Box<dyn SimNode> {
        let disk = disks.get(i).cloned();
        Box::new(OwnNode::life(node_cfg.clone(), seed, i, life, disk))
    };
    let nodes: Vec<Box<dyn SimNode>> = (0..cfg.nodes.len()).map(|i| make(i, 1)).collect();
    let mut restart = |i: usize, k: u32| make(i, u64::from(k) + 1);
    let run = hearsay_harness::runner::TestRun::new(cfg.clone(), journal);
    Ok(sim::run_test(run, nodes, Some(&mut restart)))
}

fn display_path(dir: &Path) -> PathBuf {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| dir.strip_prefix(&cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| dir.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(clap::Parser)]
    #[command(no_binary_name = true)]
    struct Wrap {
        #[command(flatten)]
        t: TestArgs,
    }

    fn parse(words: &[String]) -> Result<TestConfig, String> {
        let w = Wrap::try_parse_from(words).map_err(|e| args::one_line(&e, true))?;
        w.t.config().map_err(|BadArgs(m)| m)
    }

    fn numeric() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<i64>().prop_map(|i| i.to_string()),
            any::<u64>().prop_map(|i| i.to_string()),
            any::<f64>().prop_map(|f| f.to_string()),
            (any::<u32>(), 0u32..400).prop_map(|(m, e)| format!("{m}e{e}")),
            Just("NaN".to_string()),
            Just("inf".to_string()),
            Just("-0".to_string()),
            Just("".to_string()),
            "[0-9.eE+-]{1,30}",
            (any::<u16>()).prop_map(|k| format!("{k}n")),
            "[0-9]{15,40}n?",
        ]
    }

    const FLAGS: [&str; 9] = [
        "--time-limit",
        "--rate",
        "--latency",
        "--nemesis-interval",
        "--node-count",
        "--concurrency",
        "--test-count",
        "--recovery",
        "--availability",
    ];

    proptest! {
        /// No number typed at any numeric flag panics, wraps or aborts:
        /// it parses into a config within bounds, or is refused in one line.
        #[test]
        fn numeric_flags_never_panic(picks in proptest::collection::vec((0..FLAGS.len(), numeric()), 1..5)) {
            let mut words = vec!["-w".to_string(), "echo".to_string()];
            for (i, v) in &picks {
                words.push(format!("{}={v}", FLAGS[*i]));
            }
            match parse(&words) {
                Ok(cfg) => {
                    prop_assert!(cfg.time_limit.as_secs() <= args::MAX_SECS);
                    prop_assert!(cfg.latency.mean_ms <= args::MAX_LATENCY_MS);
                    prop_assert!(cfg.rate.is_finite() && cfg.rate <= args::MAX_RATE);
                    prop_assert!(cfg.concurrency >= 1 && cfg.concurrency <= args::MAX_CONCURRENCY);
                    prop_assert!(cfg.nodes.len() <= args::MAX_NODES);
                    prop_assert!(cfg.nemesis_interval.is_finite() && cfg.nemesis_interval > 0.0);
                }
                Err(line) => prop_assert!(!line.contains('\n') && !line.is_empty(), "{line:?}"),
            }
        }
    }

    #[derive(clap::Parser)]
    #[command(no_binary_name = true)]
    struct BenchWrap {
        #[command(flatten)]
        b: crate::bench::BenchArgs,
    }

    const BENCH_FLAGS: [&str; 6] = [
        "--nodes",
        "--runs",
        "--time-limit",
        "--rate",
        "--recovery",
        "--seed",
    ];

    proptest! {
        /// The same for `hearsay bench`: parsed within bounds, or one line.
        #[test]
        fn bench_numeric_flags_never_panic(picks in proptest::collection::vec((0..BENCH_FLAGS.len(), numeric()), 1..5)) {
            let words: Vec<String> = picks.iter().map(|(i, v)| format!("{}={v}", BENCH_FLAGS[*i])).collect();
            match BenchWrap::try_parse_from(&words) {
                Ok(w) => {
                    prop_assert!(w.b.nodes.iter().all(|&n| (1..=args::MAX_NODES).contains(&n)));
                    prop_assert!((1..=args::MAX_REPEATS).contains(&w.b.runs));
                    prop_assert!(w.b.time_limit >= 1 && w.b.time_limit <= args::MAX_SECS);
                    prop_assert!(w.b.rate.is_none_or(|r| r.is_finite() && r >= 0.0));
                    prop_assert!(w.b.recovery.is_none_or(f64::is_finite));
                }
                Err(e) => {
                    let line = args::one_line(&e, true);
                    prop_assert!(!line.contains('\n') && !line.is_empty(), "{line:?}");
                }
            }
        }
    }

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn kafka_takes_the_key_flags_and_knows_its_worker_count() {
        use hearsay_harness::workload::KafkaOptions;
        let cfg = parse(&words(
            "-w kafka --bin /bin/sh --node-count 2 --concurrency 2n --key-count 3 --max-writes-per-key 5",
        ))
        .unwrap();
        let WorkloadKind::Kafka(KafkaOptions { txn, concurrency }) = cfg.workload else {
            panic!("{:?}", cfg.workload);
        };
        assert_eq!((txn.key_count, txn.max_writes_per_key), (3, 5));
        assert_eq!(concurrency, Some(4), "2n of 2 nodes: crashes every 30/4 s");
        let e = parse(&words("-w kafka")).unwrap_err();
        assert!(e.contains("needs --bin"), "{e}");
    }

    #[test]
    fn txn_flags_take_maelstroms_defaults_and_bounds() {
        let cfg = parse(&words("-w txn-rw-register --bin /bin/sh")).unwrap();
        let t = cfg.workload.txn_options().unwrap();
        assert_eq!(t, TxnOptions::default());
        assert_eq!(t.consistency_models.as_str(), "strict-serializable");
        let mut w = words("-w txn-rw-register --bin /bin/sh --consistency-models");
        w.push("read-committed , serializable".into());
        let t = parse(&w).unwrap().workload.txn_options().unwrap();
        // Split and checked by the checker, as in Maelstrom.
        assert_eq!(
            t.consistency_models.as_str(),
            "read-committed , serializable"
        );
        let e = parse(&words("-w txn-rw-register --bin /bin/sh --key-count 0")).unwrap_err();
        assert!(e.contains("--key-count"), "{e}");
        assert!(
            parse(&words(
                "-w txn-rw-register --bin /bin/sh --max-txn-length x"
            ))
            .is_err()
        );
        let e = parse(&words("-w txn-rw-register")).unwrap_err();
        assert!(e.contains("needs --bin"), "{e}");
        // Other workloads accept and ignore the flags, as Maelstrom does.
        let cfg = parse(&words("-w echo --key-count 3")).unwrap();
        assert_eq!(cfg.workload.txn_options(), None);
    }

    #[test]
    fn node_lists_join_as_in_jepsen_and_node_count_replaces_them() {
        let cfg = parse(&words("-w echo --nodes a,b -n d")).unwrap();
        assert_eq!(cfg.nodes, ["a", "b", "d"]);
        let cfg = parse(&words("-w echo --nodes a,b -n d --node-count 2")).unwrap();
        assert_eq!(cfg.nodes, ["n0", "n1"]);
        let cfg = parse(&words("-w echo")).unwrap();
        assert_eq!(cfg.nodes, ["n1", "n2", "n3", "n4", "n5"]);
    }

    #[test]
    fn node_arguments_are_positional_or_after_the_double_dash() {
        let cfg = parse(&words("-w echo --time-limit 3 -- --preset latency")).unwrap();
        assert_eq!(cfg.args[1..], ["--preset", "latency"]);
        assert_eq!(cfg.time_limit, Duration::from_secs(3));
        let e = parse(&words("-w echo --time-limt 2")).unwrap_err();
        assert!(e.contains("unknown option --time-limt"), "{e}");
        assert!(e.contains("--time-limit"), "{e}");
    }

    #[test]
    fn the_rerun_command_parses_back_into_the_same_config() {
        for line in [
            "-w broadcast --nodes a,b,d --time-limit 7 --rate 2.5 --latency 30 --latency-dist exponential --nemesis partition --nemesis-interval 0.5 --topology line --concurrency 2n --availability 0.9 --recovery 3 --seed 42 -- --preset latency",
            "--scenario 3d --seed 1",
            "-w txn-rw-register --bin /bin/sh --node-count 2 --concurrency 2n --key-count 3 --max-txn-length 2 --max-writes-per-key 5 --consistency-models read-committed --seed 4",
        ] {
            let cfg = parse(&words(line)).unwrap();
            let scenario = line.contains("--scenario 3d").then_some(Scenario::D);
            // --sim runs hearsay's own node, which has no transactions.
            let sims: &[bool] = if line.contains("--bin") {
                &[false]
            } else {
                &[false, true]
            };
            for &simulate in sims {
                let cmd = rerun_command(&cfg, simulate, scenario);
                // The challenge is named, so the rerun gives its verdict.
                assert_eq!(cmd.contains("--scenario 3d"), scenario.is_some(), "{cmd}");
                let back: Vec<String> = shlex::split(&cmd).unwrap();
                assert_eq!(back[1], "test", "{cmd}");
                let mut again = parse(&back[2..]).unwrap_or_else(|e| panic!("{cmd}: {e}"));
                if simulate {
                    // --sim runs the node in-process; the rest is equal.
                    again.bin = cfg.bin.clone();
                    again.args = cfg.args.clone();
                }
                assert_eq!(format!("{again:?}"), format!("{cfg:?}"), "{cmd}");
            }
        }
    }
}
