//! `hearsay check`: a workload's checker on a recorded history (hearsay's
//! `history.edn`, or Jepsen's and Maelstrom's), with `hearsay test`'s exit
//! codes (0 valid, 1 invalid, 2 unknown, 254 bad arguments).

use crate::{EXIT_BAD_ARGS, args};
use clap::Args;
use hearsay_harness::checker::Validity;
use hearsay_harness::checker::linearizable::{Budget, check_independent_cas};
use hearsay_harness::config::TestConfig;
use hearsay_harness::edn::Edn;
use hearsay_harness::history::History;
use hearsay_harness::workload::txn::ConsistencyModels;
use hearsay_harness::workload::{Topology, TxnOptions, WorkloadKind};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
#[command(after_long_help = AFTER_HELP)]
pub struct CheckArgs {
    /// Workload whose checker judges the history: lin-kv, broadcast, echo,
    /// g-set, g-counter, pn-counter, unique-ids, txn-rw-register, txn-list-append,
    /// kafka
    #[arg(short = 'w', long, value_name = "NAME", value_parser = workload)]
    pub workload: WorkloadKind,
    /// The history: an EDN file, or a run directory (its history.edn), such
    /// as store/latest
    #[arg(value_name = "HISTORY")]
    pub history: PathBuf,
    /// lin-kv only: per key, give up (verdict unknown) after memoising this
    /// many configurations [default: the checker's budget, printed]
    #[arg(long, value_name = "N", value_parser = args::max_configs)]
    pub max_configs: Option<usize>,
    /// lin-kv only: per key, give up (verdict unknown) after this many
    /// search steps [default: the checker's budget, printed]
    #[arg(long, value_name = "N", value_parser = args::max_steps)]
    pub max_steps: Option<u64>,
    /// txn-rw-register and txn-list-append only: the models to check, separated by " , " as in
    /// Maelstrom [default: strict-serializable]
    #[arg(long, value_name = "MODELS")]
    pub consistency_models: Option<String>,
    /// Print only the summary line, not the result map
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

const AFTER_HELP: &str = "\
Reads the history hearsay writes (store/<workload>/<time>/history.edn, one
op map per line) or the one Jepsen and Maelstrom write (op maps or
#jepsen.history.Op records, one per line or all in one vector), runs the
workload's checker on it and prints the result map (the :workload section
of results.edn), then one summary line.

Examples:
  hearsay check -w lin-kv store/latest
  hearsay check -w lin-kv ~/maelstrom/store/latest/history.edn --max-configs 100000000
  hearsay check -w txn-rw-register --consistency-models read-committed store/latest

Exit codes: 0 valid, 1 invalid, 2 unknown (a search budget ran out), 254 bad
arguments (no such file, a parse error: line:column).";

fn workload(s: &str) -> Result<WorkloadKind, String> {
    s.parse()
}

/// A history file, or the `history.edn` of a run directory.
pub(crate) fn history_path(p: &Path) -> PathBuf {
    if p.is_dir() {
        p.join("history.edn")
    } else {
        p.to_path_buf()
    }
}

/// Reads and parses a history (gzip-compressed if its name ends in
/// `.gz`); the error names the file and the place.
pub(crate) fn load(p: &Path) -> Result<History, String> {
    let path = history_path(p);
    let cannot = |e: std::io::Error| format!("cannot read {}: {e}", path.display());
    let text = if path.extension().is_some_and(|x| x == "gz") {
        use std::io::Read;
        let file = std::fs::File::open(&path).map_err(cannot)?;
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(file)
            .read_to_string(&mut text)
            .map_err(cannot)?;
        text
    } else {
        std::fs::read_to_string(&path).map_err(cannot)?
    };
    History::from_edn(&text).map_err(|e| format!("{}:{e}", path.display()))
}

/// The lin-kv budget with the command line's overrides.
pub(crate) fn budget(max_configs: Option<usize>, max_steps: Option<u64>) -> Budget {
    let d = Budget::default();
    Budget {
        max_configs: max_configs.unwrap_or(d.max_configs),
        max_steps: max_steps.unwrap_or(d.max_steps),
    }
}

/// The workload's checker on `h`: lin-kv with `budget`, the others as
/// `hearsay test` builds them (their checkers need only the history).
pub(crate) fn check(kind: WorkloadKind, h: &History, budget: Budget) -> Edn {
    match kind {
        WorkloadKind::LinKv => check_independent_cas(h, budget),
        other => other
            .build(&TestConfig::node_names(1), Topology::default())
            .checker
            .check(h),
    }
}

pub(crate) fn verdict(v: Validity) -> &'static str {
    match v {
        Validity::True => "valid",
        Validity::False => "invalid",
        Validity::Unknown => "unknown",
    }
}

pub fn run(a: CheckArgs) -> ExitCode {
    let lin_kv = a.workload == WorkloadKind::LinKv;
    if !lin_kv && (a.max_configs.is_some() || a.max_steps.is_some()) {
        eprintln!(
            "hearsay check: --max-configs and --max-steps apply to lin-kv only, not {}",
            a.workload
        );
        return ExitCode::from(EXIT_BAD_ARGS);
    }
    let mut kind = a.workload;
    if let Some(m) = &a.consistency_models {
        let Some(t) = kind.txn_options() else {
            eprintln!(
                "hearsay check: --consistency-models applies to txn-rw-register and txn-list-append only, not {}",
                a.workload
            );
            return ExitCode::from(EXIT_BAD_ARGS);
        };
        match ConsistencyModels::new(m) {
            Ok(c) => {
                kind = kind.with_txn_options(TxnOptions {
                    consistency_models: c,
                    ..t
                })
            }
            Err(e) => {
                eprintln!("hearsay check: {e}");
                return ExitCode::from(EXIT_BAD_ARGS);
            }
        }
    }
    let started = Instant::now();
    let history = match load(&a.history) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("hearsay check: {e}");
            return ExitCode::from(EXIT_BAD_ARGS);
        }
    };
    let read = started.elapsed();
    let budget = budget(a.max_configs, a.max_steps);
    let started = Instant::now();
    let result = check(kind, &history, budget);
    let checked = started.elapsed();
    let valid = Validity::of(&result);
    if !a.quiet {
        out!("{}", result.pretty());
    }
    outln!(
        "{}",
        summary(&a, &history, &result, valid, read, checked, budget)
    );
    ExitCode::from(valid.exit_code() as u8)
}

fn summary(
    a: &CheckArgs,
    h: &History,
    result: &Edn,
    valid: Validity,
    read: Duration,
    checked: Duration,
    budget: Budget,
) -> String {
    let mut line = format!(
        "{}: {} checker, {} ops from {} (read in {:.2} s, checked in {:.2} s)",
        verdict(valid),
        a.workload,
        h.len(),
        history_path(&a.history).display(),
        read.as_secs_f64(),
        checked.as_secs_f64()
    );
    if let Some(Edn::Vector(f)) = result.get("failures")
        && !f.is_empty()
    {
        let keys: Vec<String> = f.iter().take(10).map(Edn::compact).collect();
        line += &format!("; keys not valid: {}", keys.join(" "));
        if f.len() > 10 {
            line += &format!(" and {} more", f.len() - 10);
        }
    }
    if let Some(Edn::List(t)) = result.get("anomaly-types")
        && !t.is_empty()
    {
        let names: Vec<String> = t.iter().map(Edn::compact).collect();
        line += &format!("; anomalies: {}", names.join(" "));
    }
    if a.workload == WorkloadKind::LinKv {
        line += &format!(
            "; budget per key {} configs, {} steps",
            budget.max_configs, budget.max_steps
        );
    }
    line
}
