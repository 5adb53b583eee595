//! `hearsay bench`: sweeps broadcast strategies x presets x node counts x
//! {no faults, partitions} on the Gossip Glomers 3d/3e scenario and reports
//! msgs-per-op (servers) against stable latency, as a table, CSV, JSON and
//! SVG Pareto plots. Points at 25 nodes (by default, up to
//! `--process-max` nodes) come from real processes; larger ones from the
//! simulator. Each point is the median of `--runs` runs with seeds
//! `seed, seed+1, ...`.

pub mod agent;
pub mod chaos;
pub mod checker;
pub mod cluster;
pub mod hostile;
mod netns;
mod plot;

use crate::test_cmd::{BadArgs, own_node, simulate_run};
use anyhow::{Context, Result};
use clap::Args;
use hearsay_core::dissemination::{Preset, StrategyKind as Strategy};
use hearsay_harness::checker::Validity;
use hearsay_harness::config::TestConfig;
use hearsay_harness::net::{Latency, LatencyDist};
use hearsay_harness::report;
use hearsay_harness::run::process;
use hearsay_harness::workload::WorkloadKind;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: Option<BenchWhat>,
    /// Strategies to sweep
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "flood,tree,direct,gossip,pull,push-pull,plumtree"
    )]
    pub strategies: Vec<Strategy>,
    /// Workload of every run: broadcast (the 3d/3e scenario), g-set,
    /// g-counter or pn-counter
    #[arg(long, default_value = "broadcast", value_parser = workload)]
    pub workload: WorkloadKind,
    /// Presets to sweep (each strategy runs with each preset's timing)
    #[arg(long, value_delimiter = ',', default_value = "efficient,latency")]
    pub presets: Vec<Preset>,
    /// Node counts
    #[arg(long, value_delimiter = ',', default_value = "25,100,1000", value_parser = crate::args::node_count)]
    pub nodes: Vec<usize>,
    /// Fault settings: none, partition
    #[arg(long, value_delimiter = ',', default_value = "none,partition")]
    pub nemesis: Vec<String>,
    /// Runs per point (the point is their median)
    #[arg(long, default_value = "3", value_parser = crate::args::repeats)]
    pub runs: usize,
    /// Seed of the first run
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Whole seconds of client operations per run
    #[arg(long, default_value = "20", value_parser = crate::args::time_limit)]
    pub time_limit: u64,
    /// Total ops/s [default: 100 up to 100 nodes, else 4 per node, the 3d
    /// load per node]
    #[arg(long, value_parser = crate::args::rate)]
    pub rate: Option<f64>,
    /// Seconds between healing and the final reads [default: 10 up to 100
    /// nodes, as Maelstrom; else 40: a value written just before the heal
    /// crosses a 1000-node overlay in up to 17 s at the efficient pacing]
    #[arg(long, value_parser = crate::args::secs)]
    pub recovery: Option<f64>,
    /// Largest node count run as real processes (larger: simulator)
    #[arg(long, default_value_t = 25)]
    pub process_max: usize,
    /// Also run configurations skipped by default at over 200 nodes (those
    /// sending every value to every node one message at a time)
    #[arg(long)]
    pub all: bool,
    /// One run per point, no partitions, 25 and 100 nodes (about 7 minutes
    /// on 2 cores)
    #[arg(long)]
    pub quick: bool,
    /// Where the results go (a timestamped directory inside, plus `latest`)
    #[arg(long, default_value = "store/bench")]
    pub out: PathBuf,
}

fn workload(s: &str) -> Result<WorkloadKind, String> {
    match s.parse::<WorkloadKind>()? {
        w @ (WorkloadKind::Broadcast
        | WorkloadKind::GSet
        | WorkloadKind::GCounter
        | WorkloadKind::PnCounter) => Ok(w),
        other => Err(format!(
            "hearsay's node does not serve {other}; bench runs broadcast, g-set, g-counter or pn-counter"
        )),
    }
}

#[derive(Debug, Clone)]
struct Point {
    strategy: Strategy,
    preset: Preset,
    nodes: usize,
    partition: bool,
}

impl Point {
    fn label(&self) -> String {
        format!(
            "{}/{} n={}{}",
            self.strategy,
            self.preset,
            self.nodes,
            if self.partition { " +partition" } else { "" }
        )
    }
}

/// What one run measured.
#[derive(Debug, Clone)]
struct Run {
    seed: u64,
    valid: Validity,
    msgs_per_op: f64,
    /// Stable latencies, ms (None where the workload has none: counters).
    median: Option<i64>,
    p95: Option<i64>,
    max: Option<i64>,
    /// Values lost (None where the workload has no such count).
    lost: Option<i64>,
    /// Server messages per second sent by the busiest node.
    busiest: f64,
    /// ms from the last update (or heal) until every node read its final
    /// value (convergence probes; None without them).
    converged: Option<i64>,
    wall: Duration,
}

/// Medians over a point's runs.
#[derive(Debug, Clone, Copy)]
struct Summary {
    msgs_per_op: f64,
    median: Option<f64>,
    p95: Option<f64>,
    max: Option<f64>,
    busiest: f64,
    converged: Option<f64>,
}

#[derive(Debug)]
struct Row {
    point: Point,
    executor: &'static str,
    runs: Vec<Run>,
    error: Option<String>,
}

impl Row {
    /// The point's numbers: medians over its runs.
    fn summary(&self) -> Summary {
        Summary {
            msgs_per_op: self.median(|x| x.msgs_per_op),
            median: self.median_of(|x| x.median),
            p95: self.median_of(|x| x.p95),
            max: self.median_of(|x| x.max),
            busiest: self.median(|x| x.busiest),
            converged: self.median_of(|x| x.converged),
        }
    }

    fn median(&self, f: impl Fn(&Run) -> f64) -> f64 {
        let mut v: Vec<f64> = self.runs.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            f64::NAN
        } else {
            v[(v.len() - 1) / 2]
        }
    }

    /// The median over the runs that have the figure; None if none has.
    fn median_of(&self, f: impl Fn(&Run) -> Option<i64>) -> Option<f64> {
        let mut v: Vec<i64> = self.runs.iter().filter_map(f).collect();
        v.sort_unstable();
        (!v.is_empty()).then(|| v[(v.len() - 1) / 2] as f64)
    }

    fn valid(&self) -> bool {
        self.error.is_none()
            && !self.runs.is_empty()
            && self.runs.iter().all(|r| r.valid == Validity::True)
    }

    fn lost(&self) -> Option<i64> {
        self.runs.iter().filter_map(|r| r.lost).max()
    }
}

#[derive(Debug, clap::Subcommand)]
pub enum BenchWhat {
    /// hearsay agents and Serf agents side by side on loopback: join,
    /// broadcast delivery, failure detection, traffic
    Agent(agent::AgentBenchArgs),
    /// The seven strategies over a changing cluster in the simulator
    /// (members crash and come back while payloads flow): messages per
    /// member per payload against the time to reach every live member
    Cluster(cluster::ClusterBenchArgs),
    /// Real agents on loopback killed, restarted, paused and cut in two
    /// while a client writes and broadcasts: is anything acknowledged
    /// lost? (issue 20's soak)
    Chaos(chaos::ChaosArgs),
    /// A key holder floods one agent with sealed, well-formed, hostile
    /// datagrams while two honest agents watch it: is it ever declared
    /// dead, does its memory stay bounded? (issue 20)
    Hostile(hostile::HostileArgs),
    /// The lin-kv checker's time and memory on recorded histories (those
    /// kept in crates/hearsay-harness/histories, or the files given)
    Checker(checker::CheckerBenchArgs),
}

pub fn run(mut args: BenchArgs) -> ExitCode {
    match args.what.take() {
        Some(BenchWhat::Agent(a)) => return agent::run(a),
        Some(BenchWhat::Cluster(c)) => return cluster::run(c),
        Some(BenchWhat::Chaos(c)) => return chaos::run(c),
        Some(BenchWhat::Hostile(h)) => return hostile::run(h),
        Some(BenchWhat::Checker(c)) => return checker::run(c),
        None => {}
    }
    if args.quick {
        args.runs = 1;
        args.nemesis = vec!["none".into()];
        args.nodes = vec![25, 100];
    }
    match bench(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hearsay bench: {e:#}");
            ExitCode::from(crate::EXIT_CRASH)
        }
    }
}

fn bench(args: BenchArgs) -> Result<ExitCode> {
    let mut faults = Vec::new();
    for n in &args.nemesis {
        match n.as_str() {
            "none" => faults.push(false),
            "partition" => faults.push(true),
            other => {
                eprintln!("hearsay bench: unknown --nemesis {other:?}: must be none or partition");
                return Ok(ExitCode::from(crate::EXIT_BAD_ARGS));
            }
        }
    }
    if args.runs == 0 || args.nodes.contains(&0) {
        eprintln!("hearsay bench: --runs and --nodes must be positive");
        return Ok(ExitCode::from(crate::EXIT_BAD_ARGS));
    }
    let mut points = Vec::new();
    let mut skipped = Vec::new();
    for &nodes in &args.nodes {
        for &partition in &faults {
            for &preset in &args.presets {
                for &strategy in &args.strategies {
                    let p = Point {
                        strategy,
                        preset,
                        nodes,
                        partition,
                    };
                    // One message per value per node: millions of messages
                    // at 1000 nodes, for a point whose cost is known (N-1).
                    let quadratic = strategy == Strategy::Direct || preset == Preset::Latency;
                    if nodes > 200 && quadratic && !args.all {
                        skipped.push(p.label());
                    } else {
                        points.push(p);
                    }
                }
            }
        }
    }
    let dir = stamped_dir(&args.out)?;

    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = interrupted.clone();
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed));
    crate::progress::Display::new(true).init_logging();

    let total = (points.len() * args.runs) as u64;
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30.cyan/blue} {pos}/{len} runs, {elapsed} elapsed, ~{eta} left  {wide_msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    eprintln!(
        "hearsay bench: {} points x {} runs ({} skipped at > 200 nodes; --all runs them) -> {}",
        points.len(),
        args.runs,
        skipped.len(),
        dir.display()
    );
    let mut rows = Vec::new();
    for point in points {
        let executor = if point.nodes <= args.process_max {
            "process"
        } else {
            "sim"
        };
        let mut row = Row {
            point: point.clone(),
            executor,
            runs: Vec::new(),
            error: None,
        };
        for i in 0..args.runs {
            if interrupted.load(Ordering::Relaxed) {
                break;
            }
            bar.set_message(format!("{} (run {})", point.label(), i + 1));
            match one_run(
                &args,
                &point,
                executor,
                args.seed.wrapping_add(i as u64),
                &dir,
                interrupted.clone(),
            ) {
                Ok(r) => row.runs.push(r),
                Err(e) => {
                    row.error = Some(format!("{e:#}"));
                    bar.inc((args.runs - i) as u64);
                    break;
                }
            }
            bar.inc(1);
            if !bar.is_hidden() {
                continue;
            }
            // No terminal: one line per finished run.
            if let Some(r) = row.runs.last() {
                eprintln!(
                    "[{}/{}] {} seed {}: {:.2} msgs/op, median {} ms, max {} ms, lost {}, valid {}",
                    bar.position(),
                    total,
                    point.label(),
                    r.seed,
                    r.msgs_per_op,
                    dash(r.median),
                    dash(r.max),
                    dash(r.lost),
                    match r.valid {
                        Validity::True => "yes",
                        Validity::False => "no",
                        _ => "unknown",
                    }
                );
            }
        }
        rows.push(row);
        // Keep partial results on disk as we go.
        write_outputs(&dir, &rows, &args)?;
    }
    bar.finish_and_clear();
    write_outputs(&dir, &rows, &args)?;
    outln!("{}{}", table(&rows), settings(&rows, &args));
    for s in &skipped {
        outln!("skipped (use --all): {s}");
    }
    outln!(
        "\nresults: {}/{{results.csv,results.json,pareto-*.svg}}",
        dir.display()
    );
    if interrupted.load(Ordering::Relaxed) {
        return Ok(ExitCode::from(130));
    }
    Ok(if rows.iter().all(Row::valid) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// A new directory named for now inside `out`, which `out/latest` points
/// at.
/// A bench's exit status: 1 when `failed` says so of its report, and
/// [`crate::EXIT_CRASH`] (with the error) when it could not run.
pub(crate) fn verdict<R>(what: &str, r: Result<R>, failed: impl FnOnce(&R) -> bool) -> ExitCode {
    match r {
        Ok(r) if failed(&r) => ExitCode::FAILURE,
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hearsay bench {what}: {e:#}");
            ExitCode::from(crate::EXIT_CRASH)
        }
    }
}

pub(crate) fn stamped_dir(out: &Path) -> Result<PathBuf> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3f%z").to_string();
    let dir = out.join(&stamp);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let latest = out.join("latest");
    let _ = std::fs::remove_file(&latest);
    let _ = std::os::unix::fs::symlink(&stamp, &latest);
    Ok(dir)
}

/// Maelstrom's 10 s between the heal and the final reads is sized for its
/// 5-25 node tests; past 100 nodes the overlays are deeper than 10 s at
/// the efficient pacing (flood over a 1000-node grid: 62 hops), so a value
/// written just before the heal would count as lost while still on its
/// way. The latencies reported are unaffected: they are measured, not cut.
fn recovery_for(args: &BenchArgs, nodes: usize) -> f64 {
    args.recovery
        .unwrap_or(if nodes <= 100 { 10.0 } else { 40.0 })
}

fn rate_for(args: &BenchArgs, nodes: usize) -> f64 {
    args.rate.unwrap_or(if nodes <= 100 {
        100.0
    } else {
        4.0 * nodes as f64
    })
}

fn one_run(
    args: &BenchArgs,
    p: &Point,
    executor: &str,
    seed: u64,
    dir: &Path,
    interrupted: Arc<AtomicBool>,
) -> Result<Run> {
    let mut node_args = vec![
        "--preset".to_string(),
        p.preset.to_string(),
        "--strategy".into(),
        p.strategy.to_string(),
    ];
    if args.workload != WorkloadKind::Broadcast {
        node_args.extend(["--workload".to_string(), args.workload.to_string()]);
    }
    let run_dir = dir.join("runs").join(format!(
        "{}-{}-n{}{}-seed{seed}",
        p.strategy,
        p.preset,
        p.nodes,
        if p.partition { "-partition" } else { "" }
    ));
    std::fs::create_dir_all(&run_dir)?;
    let (bin, args_for_bin) = if executor == "process" {
        own_node(node_args.clone()).map_err(|BadArgs(m)| anyhow::anyhow!(m))?
    } else {
        (
            PathBuf::from("(in-process hearsay node)"),
            node_args.clone(),
        )
    };
    let cfg = TestConfig {
        time_limit: Duration::from_secs(args.time_limit),
        rate: rate_for(args, p.nodes),
        latency: Latency {
            mean_ms: 100,
            dist: LatencyDist::Constant,
        },
        partition: p.partition,
        recovery: Duration::from_secs_f64(recovery_for(args, p.nodes)),
        store: dir.to_path_buf(),
        journal: false,
        // Broadcast reads are large and its latencies come from the
        // history; the other workloads are timed by probe reads.
        probe: (args.workload != WorkloadKind::Broadcast).then_some(PROBE),
        ..TestConfig::new(
            args.workload,
            bin,
            args_for_bin,
            TestConfig::node_names(p.nodes),
            seed,
        )
    };
    let started = Instant::now();
    let result = if executor == "process" {
        let hooks = process::Hooks {
            progress: &mut |_| {},
            interrupted,
        };
        process::run(cfg.clone(), &run_dir, hooks)?
    } else {
        simulate_run(&cfg, &run_dir)?
    };
    let wall = started.elapsed();
    if let Some(reason) = &result.aborted {
        anyhow::bail!("{reason}");
    }
    let a = report::analyze(&cfg, &result);
    report::write_results(&run_dir, &a)?;
    let h = a.headline();
    let busiest = a.extras["node-sends-per-s"]["max"]
        .as_f64()
        .unwrap_or(f64::NAN);
    Ok(Run {
        seed,
        valid: a.valid,
        msgs_per_op: h.msgs_per_op.unwrap_or(f64::NAN),
        median: h.median_ms,
        p95: h.p95_ms,
        max: h.max_ms,
        lost: h.lost,
        busiest,
        converged: h.converged_ms,
        wall,
    })
}

/// A latency cell: "–" where the workload has no stable latencies
/// (counters), the rounded ms otherwise.
pub(super) fn ms(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.0}"),
        _ => "–".into(),
    }
}

/// A figure, or "-" where the workload has none.
fn dash(v: Option<i64>) -> String {
    v.map_or("-".into(), |x| x.to_string())
}

/// A CSV cell: empty where the workload has no such figure.
fn cell(v: Option<f64>) -> String {
    v.map_or(String::new(), |x| format!("{x:.0}"))
}

/// How often the bench's convergence probes read every node.
const PROBE: Duration = Duration::from_millis(10);

/// What each node count ran with: rate and recovery differ by size.
fn settings(rows: &[Row], args: &BenchArgs) -> String {
    let mut sizes: Vec<usize> = rows.iter().map(|r| r.point.nodes).collect();
    sizes.sort_unstable();
    sizes.dedup();
    let mut s = String::from("\n");
    for n in sizes {
        let _ = writeln!(
            s,
            "{n} nodes: {} s of operations at {} ops/s, latency 100 ms, {} s from the heal to the final reads",
            args.time_limit,
            rate_for(args, n),
            recovery_for(args, n)
        );
    }
    s
}

fn table(rows: &[Row]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\n| nodes | faults | preset | strategy | executor | msgs-per-op | median ms | p95 ms | max ms | converged ms | busiest node msgs/s | lost | valid | runs |"
    );
    let _ = writeln!(
        s,
        "|---:|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|"
    );
    for r in rows {
        let (p, m) = (&r.point, r.summary());
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {:.2} | {} | {} | {} | {} | {:.0} | {} | {} | {} |",
            p.nodes,
            if p.partition { "partition" } else { "none" },
            p.preset,
            p.strategy,
            r.executor,
            m.msgs_per_op,
            ms(m.median),
            ms(m.p95),
            ms(m.max),
            ms(m.converged),
            m.busiest,
            r.lost().map_or("–".to_string(), |l| l.to_string()),
            match &r.error {
                Some(_) => "crashed",
                None if r.valid() => "yes",
                None => "NO",
            },
            r.runs.len()
        );
    }
    s
}

fn write_outputs(dir: &Path, rows: &[Row], args: &BenchArgs) -> Result<()> {
    let mut csv = String::from(
        "nodes,faults,preset,strategy,executor,msgs_per_op,median_ms,p95_ms,max_ms,converged_ms,busiest_node_msgs_per_s,lost,valid,runs\n",
    );
    let mut json_rows = Vec::new();
    for r in rows {
        let (p, m) = (&r.point, r.summary());
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{:.4},{},{},{},{},{:.1},{},{},{}",
            p.nodes,
            if p.partition { "partition" } else { "none" },
            p.preset,
            p.strategy,
            r.executor,
            m.msgs_per_op,
            cell(m.median),
            cell(m.p95),
            cell(m.max),
            cell(m.converged),
            m.busiest,
            r.lost().map_or(String::new(), |l| l.to_string()),
            r.valid(),
            r.runs.len()
        );
        let runs: Vec<Value> = r
            .runs
            .iter()
            .map(|x| {
                json!({"seed": x.seed, "valid": format!("{:?}", x.valid).to_lowercase(), "msgs-per-op": x.msgs_per_op,
                       "median-ms": x.median, "p95-ms": x.p95, "max-ms": x.max, "lost": x.lost,
                       "busiest-node-msgs-per-s": x.busiest, "converged-ms": x.converged,
                       "wall-s": x.wall.as_secs_f64()})
            })
            .collect();
        json_rows.push(json!({
            "nodes": p.nodes, "faults": if p.partition { "partition" } else { "none" },
            "preset": p.preset.to_string(), "strategy": p.strategy.to_string(), "executor": r.executor,
            "workload": args.workload.to_string(), "rate": rate_for(args, p.nodes), "latency-ms": 100, "time-limit-s": args.time_limit,
            "recovery-s": recovery_for(args, p.nodes),
            "median": {"msgs-per-op": m.msgs_per_op, "median-ms": m.median, "p95-ms": m.p95, "max-ms": m.max,
                       "busiest-node-msgs-per-s": m.busiest, "converged-ms": m.converged},
            "lost": r.lost(), "valid": r.valid(), "error": r.error, "runs": runs,
        }));
    }
    std::fs::write(dir.join("results.csv"), csv)?;
    std::fs::write(
        dir.join("results.json"),
        serde_json::to_string_pretty(&json_rows)? + "\n",
    )?;
    std::fs::write(dir.join("results.md"), table(rows) + &settings(rows, args))?;
    let mut groups: Vec<(usize, bool)> = rows
        .iter()
        .map(|r| (r.point.nodes, r.point.partition))
        .collect();
    groups.sort();
    groups.dedup();
    for (nodes, partition) in groups {
        let pts: Vec<plot::Dot> = rows
            .iter()
            .filter(|r| {
                r.point.nodes == nodes && r.point.partition == partition && !r.runs.is_empty()
            })
            .filter_map(|r| {
                let m = r.summary();
                Some(plot::Dot {
                    strategy: r.point.strategy.to_string(),
                    preset: r.point.preset.to_string(),
                    x: m.msgs_per_op,
                    y: m.median?,
                    p95: m.p95.unwrap_or(f64::NAN),
                    max: m.max.unwrap_or(f64::NAN),
                    valid: r.valid(),
                })
            })
            .collect();
        if pts.is_empty() {
            // No stable latencies (a counter workload): nothing to draw.
            continue;
        }
        let title = format!(
            "{} on {nodes} nodes, rate {}, latency 100 ms{}: msgs-per-op vs median stable latency (median of runs)",
            args.workload,
            rate_for(args, nodes),
            if partition { ", partitions" } else { "" }
        );
        let name = format!(
            "pareto-{nodes}{}.svg",
            if partition { "-partition" } else { "" }
        );
        std::fs::write(
            dir.join(name),
            plot::pareto_svg(&title, &pts, &plot::MAELSTROM),
        )?;
    }
    Ok(())
}
