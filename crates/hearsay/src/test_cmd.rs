//! `hearsay test`: Maelstrom's `test` command with Maelstrom's flags,
//! defaults and exit codes (0 valid, 1 invalid, 2 unknown, 254 bad
//! arguments, 255 crash).

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
use hearsay_harness::workload::{Topology, WorkloadKind};
use hearsay_maelstrom::cli::NodeArgs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The Gossip Glomers broadcast challenges, as flag sets.
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
}

#[derive(Debug, Args)]
#[command(after_long_help = AFTER_HELP)]
pub struct TestArgs {
    /// Workload: broadcast or echo [Maelstrom's default, lin-kv, is not implemented]
    #[arg(short = 'w', long, value_name = "NAME")]
    pub workload: Option<String>,
    /// Node binary to test, any language [default: hearsay's own node]
    #[arg(long, value_name = "FILE")]
    pub bin: Option<PathBuf>,
    /// Run N nodes named n0..n(N-1) [default: n1..n5]
    #[arg(long, value_name = "N")]
    pub node_count: Option<usize>,
    /// Comma-separated node names (instead of --node-count)
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub nodes: Option<Vec<String>>,
    /// One node name; repeatable
    #[arg(short = 'n', long = "node", value_name = "NAME")]
    pub node: Vec<String>,
    /// Client workers: an integer, or Kn for K per node [default: 1n]
    #[arg(long, value_name = "C")]
    pub concurrency: Option<String>,
    /// Seconds of client operations [default: 60]
    #[arg(long, value_name = "SECONDS")]
    pub time_limit: Option<f64>,
    /// Total requests per second, across all clients [default: 5]
    #[arg(long, value_name = "RATE")]
    pub rate: Option<f64>,
    /// Mean node-to-node latency in ms; clients always see 0 [default: 0]
    #[arg(long, value_name = "MS")]
    pub latency: Option<u64>,
    /// constant, uniform (on [0, 2*latency)) or exponential [default: constant]
    #[arg(long, value_name = "DIST")]
    pub latency_dist: Option<LatencyDist>,
    /// Faults to inject: partition
    #[arg(long, value_name = "FAULTS")]
    pub nemesis: Option<String>,
    /// Mean seconds between nemesis operations [default: 10]
    #[arg(long, value_name = "SECONDS")]
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
    /// Run the test this many times, stopping at the first that is not valid
    #[arg(long, value_name = "N", default_value_t = 1)]
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
    #[arg(long, value_name = "SECONDS")]
    pub recovery: Option<f64>,
    /// Do not write net-journal.jsonl
    #[arg(long)]
    pub no_journal: bool,
    /// Run hearsay's own node in-process in virtual time (deterministic by
    /// --seed) instead of spawning processes; node flags go after `--`
    #[arg(long)]
    pub sim: bool,
    /// No progress display
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Arguments for the node binary (after --)
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "NODE ARGS"
    )]
    pub args: Vec<String>,
}

const AFTER_HELP: &str = "\
Defaults: with no flag that shapes the test, `hearsay test` runs the Gossip
Glomers 3d scenario (broadcast, 25 nodes, rate 100, latency 100 ms, 20 s) on
hearsay's own node. Once any such flag is given, the rest take Maelstrom's
defaults, so Maelstrom command lines mean the same thing here.

Examples:
  hearsay test                                          # 3d on hearsay-node
  hearsay test -w broadcast --bin ./node.py --node-count 5 --time-limit 20 --rate 10 --nemesis partition
  hearsay test --scenario 3c --bin ./target/release/hearsay-node -- --preset latency

Exit codes: 0 valid, 1 invalid, 2 unknown, 254 bad arguments, 255 crashed.
Results: store/<workload>/<time>/ (results.edn, results.json, history.txt,
node-logs/), with store/latest pointing at the newest run.";

pub(crate) struct BadArgs(pub(crate) String);

impl TestArgs {
    fn shapes_test(&self) -> bool {
        self.workload.is_some()
            || self.node_count.is_some()
            || self.nodes.is_some()
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
        self.workload.get_or_insert_with(|| "broadcast".into());
        let (count, rate, latency) = match s {
            Scenario::A => (1, 10.0, None),
            Scenario::B | Scenario::C => (5, 10.0, None),
            Scenario::D | Scenario::E => (25, 100.0, Some(100)),
        };
        if self.nodes.is_none() && self.node.is_empty() {
            self.node_count.get_or_insert(count);
        }
        self.time_limit.get_or_insert(20.0);
        self.rate.get_or_insert(rate);
        if let Some(l) = latency {
            self.latency.get_or_insert(l);
        }
        if s == Scenario::C {
            self.nemesis.get_or_insert_with(|| "partition".into());
        }
    }

    fn config(mut self) -> Result<TestConfig, BadArgs> {
        if !self.shapes_test() {
            self.scenario = Some(Scenario::D);
        }
        if let Some(s) = self.scenario {
            self.apply_scenario(s);
        }
        let workload: WorkloadKind = self
            .workload
            .as_deref()
            .unwrap_or("broadcast")
            .parse()
            .map_err(BadArgs)?;
        let nodes = match (self.node_count, self.nodes.take(), self.node.is_empty()) {
            (Some(0), _, _) => return Err(BadArgs("--node-count must be positive".into())),
            (Some(n), _, _) => TestConfig::node_names(n),
            (None, Some(list), _) => list,
            (None, None, false) => std::mem::take(&mut self.node),
            (None, None, true) => TestConfig::default_nodes(),
        };
        let concurrency =
            parse_concurrency(self.concurrency.as_deref().unwrap_or("1n"), nodes.len())?;
        let partition = match self.nemesis.as_deref() {
            None | Some("") => false,
            Some(list) => {
                for f in list.split(',').map(str::trim) {
                    match f.trim_start_matches(':') {
                        "partition" => {}
                        other => {
                            return Err(BadArgs(format!(
                                "unknown nemesis fault {other:?}; must be one of: partition"
                            )));
                        }
                    }
                }
                true
            }
        };
        let time_limit = self.time_limit.unwrap_or(60.0);
        if !time_limit.is_finite() || time_limit < 0.0 {
            return Err(BadArgs(
                "--time-limit must be a non-negative number of seconds".into(),
            ));
        }
        let recovery = self.recovery.unwrap_or(RECOVERY.as_secs_f64());
        if !recovery.is_finite() || recovery < 0.0 {
            return Err(BadArgs(
                "--recovery must be a non-negative number of seconds".into(),
            ));
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
            time_limit: Duration::from_secs_f64(time_limit),
            rate: self.rate.unwrap_or(d.rate),
            latency: Latency {
                mean_ms: self.latency.unwrap_or(d.latency.mean_ms),
                dist: self.latency_dist.unwrap_or(d.latency.dist),
            },
            partition,
            nemesis_interval: self.nemesis_interval.unwrap_or(d.nemesis_interval),
            topology: self.topology.unwrap_or(d.topology),
            availability: self.availability,
            log_stderr: self.log_stderr,
            log_net_send: self.log_net_send,
            log_net_recv: self.log_net_recv,
            recovery: Duration::from_secs_f64(recovery),
            store: self.store.clone(),
            journal: !self.no_journal,
            ..d
        };
        cfg.validate().map_err(BadArgs)?;
        Ok(cfg)
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
            sim_nodes(&args, 0, 0)?;
            return Ok((PathBuf::from("(in-process hearsay node)"), args));
        }
        let Some(bin) = self.bin.take() else {
            return own_node(args);
        };
        let meta = std::fs::metadata(&bin)
            .map_err(|e| BadArgs(format!("--bin {}: {e}", bin.display())))?;
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

/// In-process nodes for `--sim`, configured by the node arguments, each
/// seeded from the run seed.
pub(crate) fn sim_nodes(
    args: &[String],
    n: usize,
    run_seed: u64,
) -> Result<Vec<Box<dyn SimNode>>, BadArgs> {
    #[derive(clap::Parser)]
    #[command(name = "node arguments", no_binary_name = true)]
    struct SimArgs {
        #[command(flatten)]
        node: NodeArgs,
    }
    let parsed =
        SimArgs::try_parse_from(args).map_err(|e| BadArgs(format!("node arguments: {e}")))?;
    let cfg = parsed
        .node
        .config()
        .map_err(|e| BadArgs(format!("node arguments: {e}")))?;
    Ok((0..n)
        .map(|i| Box::new(OwnNode::new(cfg.clone(), run_seed, i)) as Box<dyn SimNode>)
        .collect())
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

fn parse_concurrency(s: &str, nodes: usize) -> Result<usize, BadArgs> {
    let bad = || {
        BadArgs(format!(
            "--concurrency must be a positive integer or Kn (K per node), not {s:?}"
        ))
    };
    let c = match s.strip_suffix('n') {
        Some(k) => k.parse::<usize>().map_err(|_| bad())? * nodes,
        None => s.parse::<usize>().map_err(|_| bad())?,
    };
    if c == 0 { Err(bad()) } else { Ok(c) }
}

fn describe(cfg: &TestConfig) -> String {
    let mut s = format!(
        "hearsay test -w {} --bin {}{} --node-count {} --time-limit {} --rate {} --latency {}",
        cfg.workload,
        cfg.bin.display(),
        if cfg.args.is_empty() {
            String::new()
        } else {
            format!(" [args: {}]", cfg.args.join(" "))
        },
        cfg.nodes.len(),
        cfg.time_limit.as_secs_f64(),
        cfg.rate,
        cfg.latency.mean_ms
    );
    if cfg.latency.dist != LatencyDist::Constant {
        s += &format!(" --latency-dist {}", cfg.latency.dist);
    }
    if cfg.partition {
        s += &format!(
            " --nemesis partition --nemesis-interval {}",
            cfg.nemesis_interval
        );
    }
    s += &format!(
        " --topology {} --concurrency {} --seed {}",
        cfg.topology, cfg.concurrency, cfg.seed
    );
    s
}

pub fn run(args: TestArgs) -> ExitCode {
    let quiet = args.quiet;
    let simulate = args.sim;
    let test_count = args.test_count.max(1);
    let base_seed = args.seed;
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
    for i in 0..test_count {
        let mut cfg = cfg.clone();
        if i > 0 && base_seed.is_none() {
            cfg.seed = rand::random();
        }
        let code = run_once(cfg, simulate, &display, interrupted.clone());
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

fn run_once(
    cfg: TestConfig,
    simulate: bool,
    display: &Display,
    interrupted: Arc<AtomicBool>,
) -> u8 {
    display.line(&format!(
        "{}{}",
        describe(&cfg),
        if simulate { " --sim" } else { "" }
    ));
    let dir = match report::create_run_dir(&cfg.store, &cfg.workload.to_string()) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("hearsay test: {e:#}");
            return EXIT_CRASH;
        }
    };
    let _ = std::fs::write(dir.join("command.txt"), describe(&cfg) + "\n");
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
    let analysis = report::analyze(&cfg, &run);
    if let Err(e) = report::write_results(&dir, &analysis) {
        eprintln!("hearsay test: writing results: {e:#}");
        return EXIT_CRASH;
    }
    println!("{}", report::summary(&cfg, &analysis, &display_path(&dir)));
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
    let nodes =
        sim_nodes(&cfg.args, cfg.nodes.len(), cfg.seed).map_err(|BadArgs(m)| anyhow::anyhow!(m))?;
    let journal = Journal::for_run(cfg, dir)?;
    Ok(sim::run(cfg.clone(), nodes, journal))
}

fn display_path(dir: &Path) -> PathBuf {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| dir.strip_prefix(&cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| dir.to_path_buf())
}
