//! `hearsay bench cluster`: the seven strategies over a changing cluster,
//! in the simulator (`hearsay sim`'s scenario: members crash and come back
//! while payloads flow), swept over strategies x presets; each point is the
//! median of `--runs` seeds. Reports messages per member per payload
//! against the time a payload takes to reach every live member, as a
//! table, CSV, JSON and an SVG Pareto plot, like the Maelstrom bench.

use super::plot;
use anyhow::Result;
use clap::Args;
use hearsay_core::dissemination::{Preset, StrategyKind as Strategy};
use hearsay_sim::{Report, Scenario};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
#[command(
    after_help = "Example (the issue's sweep; plumtree takes about a minute and a
half of wall time per run on two cores, the anti-entropy strategies several):
  hearsay bench cluster --members 1000 --duration 3m --crash 50

Every run is `hearsay sim` with the same flags and --strategy and
--broadcast-preset set per point; rerun one with the command in results.md."
)]
pub struct ClusterBenchArgs {
    /// Strategies to sweep
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "flood,tree,direct,gossip,pull,push-pull,plumtree"
    )]
    pub strategies: Vec<Strategy>,
    /// Presets to sweep (each strategy runs with each preset's timing)
    #[arg(long, value_delimiter = ',', default_value = "latency")]
    pub presets: Vec<Preset>,
    /// Cluster size
    #[arg(long, default_value_t = 1000)]
    pub members: usize,
    /// Simulated time per run
    #[arg(long, default_value = "3m")]
    pub duration: hearsay_sim::Dur,
    /// Mean one-way delay
    #[arg(long, default_value = "50ms")]
    pub latency: hearsay_sim::Dur,
    /// Payloads per simulated second
    #[arg(long, default_value_t = 10.0)]
    pub broadcast_rate: f64,
    /// Members that crash (and come back with empty state, 10-30 s later)
    #[arg(long, default_value_t = 50)]
    pub crash: usize,
    /// Crashed members stay down
    #[arg(long)]
    pub no_restart: bool,
    /// Runs per point (the point is their median), seeds seed, seed+1, ...
    #[arg(long, default_value = "1", value_parser = crate::args::repeats)]
    pub runs: usize,
    /// Seed of the first run
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where the results go (a timestamped directory inside, plus `latest`)
    #[arg(long, default_value = "store/bench-cluster")]
    pub out: PathBuf,
}

/// One point: its runs' reports.
struct Row {
    strategy: Strategy,
    preset: Preset,
    runs: Vec<Report>,
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.retain(|x| x.is_finite());
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.sort_by(f64::total_cmp);
    xs[(xs.len() - 1) / 2]
}

impl Row {
    fn of(&self, f: impl Fn(&Report) -> Option<f64>) -> f64 {
        median(self.runs.iter().map(|r| f(r).unwrap_or(f64::NAN)).collect())
    }
    fn msgs(&self) -> f64 {
        self.of(|r| r.broadcast.msgs_per_member_per_payload)
    }
    fn reach(&self) -> (f64, f64, f64) {
        let s = |k: fn(&hearsay_sim::report::Spread) -> Option<f64>| {
            self.of(|r| k(&r.broadcast.reached_all_s).map(|x| x * 1000.0))
        };
        (s(|s| s.median), s(|s| s.p95), s(|s| s.max))
    }
    fn undelivered(&self) -> usize {
        self.runs.iter().map(|r| r.broadcast.undelivered).sum()
    }
    fn bytes(&self) -> f64 {
        self.of(|r| Some(r.bytes_per_member_per_s))
    }
    fn wall(&self) -> f64 {
        self.runs.iter().map(|r| r.wall_s).sum()
    }
}

pub fn run(args: ClusterBenchArgs) -> ExitCode {
    match bench(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hearsay bench cluster: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn scenario(args: &ClusterBenchArgs, s: Strategy, p: Preset, seed: u64) -> Scenario {
    Scenario {
        members: args.members,
        duration: args.duration,
        latency: args.latency,
        broadcast_rate: args.broadcast_rate,
        crash: args.crash,
        restart: !args.no_restart,
        strategy: s,
        broadcast_preset: p,
        seed,
        ..Scenario::default()
    }
}

fn bench(args: &ClusterBenchArgs) -> Result<ExitCode> {
    // Refuse a bad scenario before the first (long) run.
    if let Err(e) = scenario(args, Strategy::Plumtree, Preset::Latency, args.seed).validate() {
        eprintln!("hearsay bench cluster: {e}");
        return Ok(ExitCode::from(crate::EXIT_BAD_ARGS));
    }
    let points: Vec<(Strategy, Preset)> = args
        .presets
        .iter()
        .flat_map(|&p| args.strategies.iter().map(move |&s| (s, p)))
        .collect();
    let dir = super::stamped_dir(&args.out)?;
    let total = (points.len() * args.runs) as u64;
    let pb = ProgressBar::new(total * 1000);
    pb.set_style(
        ProgressStyle::with_template("{bar:30.cyan/blue} {percent:>3}% {elapsed} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut rows = Vec::new();
    for (k, &(strategy, preset)) in points.iter().enumerate() {
        let mut runs = Vec::new();
        for r in 0..args.runs {
            let done = (k * args.runs + r) as u64;
            pb.set_message(format!(
                "{strategy} ({preset}) seed {}",
                args.seed + r as u64
            ));
            let sc = scenario(args, strategy, preset, args.seed + r as u64);
            let report = hearsay_sim::run(&sc, &mut |f| {
                pb.set_position(done * 1000 + (f * 1000.0) as u64);
            })
            .map_err(anyhow::Error::msg)?;
            runs.push(report);
        }
        rows.push(Row {
            strategy,
            preset,
            runs,
        });
        // Written after every point: a long sweep stopped halfway keeps
        // what it measured.
        write(&dir, args, &rows)?;
    }
    pb.finish_and_clear();
    outln!("{}", table(args, &rows));
    outln!(
        "results: {}/{{results.md,results.csv,results.json,pareto-{}.svg}}",
        dir.display(),
        args.members
    );
    let lost = rows.iter().any(|r| r.undelivered() > 0);
    Ok(if lost {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn table(args: &ClusterBenchArgs, rows: &[Row]) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "`hearsay bench cluster --members {} --duration {} --latency {} --broadcast-rate {} --crash {}{} --runs {} --seed {}` (median of runs)\n",
        args.members,
        args.duration,
        args.latency,
        args.broadcast_rate,
        args.crash,
        if args.no_restart { " --no-restart" } else { "" },
        args.runs,
        args.seed
    );
    let _ = writeln!(
        t,
        "| strategy | preset | msgs/member/payload | reach median ms | p95 ms | max ms | undelivered | bytes/member/s | wall s |"
    );
    let _ = writeln!(t, "|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let (m, p95, max) = r.reach();
        let _ = writeln!(
            t,
            "| {} | {} | {:.2} | {} | {} | {} | {} | {:.0} | {:.0} |",
            r.strategy,
            r.preset,
            r.msgs(),
            super::ms(Some(m)),
            super::ms(Some(p95)),
            super::ms(Some(max)),
            r.undelivered(),
            r.bytes(),
            r.wall()
        );
    }
    t
}

fn write(dir: &std::path::Path, args: &ClusterBenchArgs, rows: &[Row]) -> Result<()> {
    let mut csv = String::from(
        "members,strategy,preset,msgs_per_member_per_payload,reach_median_ms,reach_p95_ms,reach_max_ms,undelivered,bytes_per_member_per_s,runs\n",
    );
    let mut json_rows = Vec::new();
    let mut dots = Vec::new();
    for r in rows {
        let (m, p95, max) = r.reach();
        let _ = writeln!(
            csv,
            "{},{},{},{:.4},{:.0},{:.0},{:.0},{},{:.0},{}",
            args.members,
            r.strategy,
            r.preset,
            r.msgs(),
            m,
            p95,
            max,
            r.undelivered(),
            r.bytes(),
            r.runs.len()
        );
        json_rows.push(json!({
            "members": args.members, "strategy": r.strategy.to_string(), "preset": r.preset.to_string(),
            "median": {"msgs-per-member-per-payload": r.msgs(), "reach-median-ms": m, "reach-p95-ms": p95,
                       "reach-max-ms": max, "bytes-per-member-per-s": r.bytes()},
            "undelivered": r.undelivered(),
            "runs": r.runs,
        }));
        dots.push(plot::Dot {
            strategy: r.strategy.to_string(),
            preset: r.preset.to_string(),
            x: r.msgs(),
            y: m,
            p95,
            max,
            valid: r.undelivered() == 0,
        });
    }
    std::fs::write(dir.join("results.csv"), csv)?;
    std::fs::write(
        dir.join("results.json"),
        serde_json::to_string_pretty(&json_rows)? + "\n",
    )?;
    std::fs::write(dir.join("results.md"), table(args, rows))?;
    let title = format!(
        "{} members, {}/s, {} latency, {} crashes{}: msgs per member per payload vs time to reach all",
        args.members,
        args.broadcast_rate,
        args.latency,
        args.crash,
        if args.no_restart { "" } else { " and restarts" }
    );
    std::fs::write(
        dir.join(format!("pareto-{}.svg", args.members)),
        plot::pareto_svg(&title, &dots, &plot::CLUSTER),
    )?;
    Ok(())
}
