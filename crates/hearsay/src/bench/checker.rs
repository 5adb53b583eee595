//! `hearsay bench checker`: the checkers' time and memory on recorded
//! histories (by default the ones kept in
//! `crates/hearsay-harness/histories`), as a markdown table. A history's
//! workload is the start of its file name (`txn-list-append-...edn`,
//! `kafka-...edn.gz`); lin-kv where the name names none.
//!
//! Time is wall time of the workload's checker alone, `--runs` times per
//! history (median and minimum). Memory is the process's peak resident set
//! (`getrusage` maxrss) read before and after a history's runs. maxrss only
//! grows, so on Linux the bench first resets the peak to the current size
//! (`5` into `/proc/self/clear_refs`): the peak is then this history's
//! checking alone (on top of the parsed history in memory). Where the reset
//! is refused, the growth is a lower bound and the report says so. The memo
//! estimate is the size of the largest key's configuration table, from the
//! checker's `:configs-searched`.

use crate::check_cmd::{budget, check, history_path, load, verdict};
use anyhow::{Context, Result};
use clap::Args;
use hearsay_harness::checker::Validity;
use hearsay_harness::checker::linearizable::Budget;
use hearsay_harness::edn::Edn;
use hearsay_harness::workload::WorkloadKind;
use nix::sys::resource::{UsageWho, getrusage};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// Where `hearsay bench checker` looks by default, from the workspace root.
pub const HISTORIES: &str = "crates/hearsay-harness/histories";

#[derive(Debug, Args)]
#[command(after_help = "Example (the numbers in docs/bench/checker.md):
  cargo build --release -p hearsay
  target/release/hearsay bench checker --runs 5

Run it from the workspace root (the default histories and --out are
relative). Memory is the process's peak (maxrss), so the bench runs the
histories smallest first and reports each one's growth of that peak.")]
pub struct CheckerBenchArgs {
    /// History files (`.edn`, or `.edn.gz`) or run directories; the
    /// workload is the start of the file name, lin-kv if none [default:
    /// every history in crates/hearsay-harness/histories]
    #[arg(value_name = "HISTORY")]
    pub histories: Vec<PathBuf>,
    /// Checker runs per history (the table shows their median and minimum)
    #[arg(long, default_value = "5", value_parser = crate::args::repeats)]
    pub runs: usize,
    /// Per key, give up (unknown) after memoising this many configurations
    /// [default: the checker's budget]
    #[arg(long, value_name = "N", value_parser = crate::args::max_configs)]
    pub max_configs: Option<usize>,
    /// Per key, give up (unknown) after this many search steps [default:
    /// the checker's budget]
    #[arg(long, value_name = "N", value_parser = crate::args::max_steps)]
    pub max_steps: Option<u64>,
    /// The markdown file to write
    #[arg(long, default_value = "docs/bench/checker.md")]
    pub out: PathBuf,
    /// Measure the one history given and print its row as JSON: the bench
    /// runs each history in a process of its own this way, so no history's
    /// memory is another's.
    #[arg(long, hide = true)]
    pub child: bool,
}

/// What one history measured.
#[derive(serde::Serialize, serde::Deserialize)]
struct Row {
    name: String,
    workload: String,
    ops: usize,
    /// lin-kv only: keys checked.
    keys: Option<usize>,
    /// valid, invalid or unknown.
    valid: String,
    parse_ms: f64,
    /// Wall ms of each run.
    runs: Vec<f64>,
    /// Summed over keys; and the largest single key.
    configs: u64,
    largest_key: u64,
    /// KiB: resident before the runs, maxrss after them, and the growth.
    rss_before_kib: i64,
    maxrss_kib: i64,
    growth_kib: i64,
    /// Whether the peak was reset before the runs.
    peak_reset: bool,
}

pub fn run(args: CheckerBenchArgs) -> ExitCode {
    match bench(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hearsay bench checker: {e:#}");
            ExitCode::from(crate::EXIT_BAD_ARGS)
        }
    }
}

/// The histories to run: the given paths, or the kept ones; smallest first.
fn histories(args: &CheckerBenchArgs) -> Result<Vec<PathBuf>> {
    let mut paths: Vec<PathBuf> = if args.histories.is_empty() {
        let dir = Path::new(HISTORIES);
        std::fs::read_dir(dir)
            .with_context(|| {
                format!(
                    "listing {} (run from the workspace root, or name the histories)",
                    dir.display()
                )
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                let n = p.to_string_lossy();
                n.ends_with(".edn") || n.ends_with(".edn.gz")
            })
            .collect()
    } else {
        args.histories.iter().map(|p| history_path(p)).collect()
    };
    if paths.is_empty() {
        anyhow::bail!("no histories (*.edn, *.edn.gz) in {HISTORIES}");
    }
    let size = |p: &PathBuf| unpacked_size(p);
    paths.sort_by(|a, b| size(a).cmp(&size(b)).then_with(|| a.cmp(b)));
    Ok(paths)
}

fn bench(args: &CheckerBenchArgs) -> Result<ExitCode> {
    let budget = budget(args.max_configs, args.max_steps);
    if args.child {
        let [path] = args.histories.as_slice() else {
            anyhow::bail!("--child measures exactly one history");
        };
        let row = measure(&history_path(path), args.runs, budget)?;
        outln!("{}", serde_json::to_string(&row)?);
        return Ok(ExitCode::SUCCESS);
    }
    let paths = histories(args)?;
    let start_kib = maxrss_kib();
    let mut rows = Vec::new();
    for path in &paths {
        eprintln!(
            "hearsay bench checker: {} ({} runs)",
            path.display(),
            args.runs
        );
        rows.push(in_child(args, path)?);
    }
    let text = report(args, budget, start_kib, &rows);
    outln!("{text}");
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&args.out, &text).with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!("hearsay bench checker: wrote {}", args.out.display());
    Ok(ExitCode::SUCCESS)
}

/// One history measured by a `--child` process of this same binary.
fn in_child(args: &CheckerBenchArgs, path: &Path) -> Result<Row> {
    let exe = std::env::current_exe().context("finding this program to run a child")?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["bench", "checker", "--child", "--runs"])
        .arg(args.runs.to_string())
        .arg(path);
    if let Some(n) = args.max_configs {
        cmd.arg("--max-configs").arg(n.to_string());
    }
    if let Some(n) = args.max_steps {
        cmd.arg("--max-steps").arg(n.to_string());
    }
    let out = cmd
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running a child to measure a history")?;
    if !out.status.success() {
        anyhow::bail!("measuring {} failed ({})", path.display(), out.status);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim())
        .with_context(|| format!("reading the child's row for {}: {text}", path.display()))
}

/// Peak resident set of this process so far, KiB (Linux reports KiB).
fn maxrss_kib() -> i64 {
    getrusage(UsageWho::RUSAGE_SELF).map_or(0, |u| u.max_rss())
}

/// Resets the peak resident set to the current one (Linux 4.0 and later:
/// the high-water mark getrusage reads); false where that is refused.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Resident set now, KiB (`VmRSS`), if /proc says.
fn rss_kib() -> Option<i64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A history's size as text: a gzip file's from its trailer (the size mod
/// 2^32, which these histories stay under), so the smallest run first
/// whatever their compression.
fn unpacked_size(p: &Path) -> u64 {
    let on_disk = std::fs::metadata(p).map_or(0, |m| m.len());
    if !p.to_string_lossy().ends_with(".gz") || on_disk < 4 {
        return on_disk;
    }
    use std::io::{Read, Seek, SeekFrom};
    let mut tail = [0u8; 4];
    std::fs::File::open(p)
        .and_then(|mut f| {
            f.seek(SeekFrom::End(-4))?;
            f.read_exact(&mut tail)
        })
        .map_or(on_disk, |()| u64::from(u32::from_le_bytes(tail)))
}

/// The workload a history's file name starts with (`kafka-5a.edn.gz`),
/// lin-kv if it names none.
fn workload_of(path: &Path) -> WorkloadKind {
    let name = path
        .file_name()
        .map_or(String::new(), |n| n.to_string_lossy().into());
    ["txn-list-append", "txn-rw-register", "kafka", "lin-kv"]
        .iter()
        .find(|w| name.starts_with(&format!("{w}-")) || name.starts_with(&format!("{w}.")))
        .and_then(|w| w.parse().ok())
        .unwrap_or(WorkloadKind::LinKv)
}

fn measure(path: &Path, runs: usize, budget: Budget) -> Result<Row> {
    let kind = workload_of(path);
    let started = Instant::now();
    let history = load(path).map_err(anyhow::Error::msg)?;
    let parse_ms = started.elapsed().as_secs_f64() * 1e3;
    let peak_reset = reset_peak();
    let before = if peak_reset {
        rss_kib().unwrap_or_else(maxrss_kib)
    } else {
        maxrss_kib()
    };
    let mut times = Vec::with_capacity(runs);
    let mut last = Edn::Nil;
    for _ in 0..runs {
        // The previous result goes first, so results do not stack up.
        drop(std::mem::replace(&mut last, Edn::Nil));
        let t = Instant::now();
        last = check(kind, &history, budget);
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let after = maxrss_kib();
    let searched: Vec<u64> = match last.get("results") {
        Some(Edn::Map(keys)) => keys
            .iter()
            .filter_map(
                |(_, r)| match r.get("linearizable")?.get("configs-searched")? {
                    Edn::Int(n) => Some(*n as u64),
                    _ => None,
                },
            )
            .collect(),
        _ => Vec::new(),
    };
    let lin = kind == WorkloadKind::LinKv;
    Ok(Row {
        name: path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into(),
        ),
        workload: kind.to_string(),
        ops: history.len(),
        keys: lin.then_some(searched.len()),
        valid: verdict(Validity::of(&last)).to_string(),
        parse_ms,
        runs: times,
        configs: searched.iter().sum(),
        largest_key: searched.iter().copied().max().unwrap_or(0),
        rss_before_kib: before,
        maxrss_kib: after,
        // The kernel's RSS counters lag by up to ~0.25 MiB: no negatives.
        growth_kib: (after - before).max(0),
        peak_reset,
    })
}

impl Row {
    fn median_ms(&self) -> f64 {
        let mut v = self.runs.clone();
        v.sort_by(f64::total_cmp);
        v.get(v.len().saturating_sub(1) / 2)
            .copied()
            .unwrap_or(f64::NAN)
    }

    fn min_ms(&self) -> f64 {
        self.runs.iter().copied().fold(f64::NAN, f64::min)
    }
}

/// Bytes of a std `HashSet<u128>` (hashbrown) holding `n` entries: a
/// power-of-two number of buckets at most 7/8 full, 16 bytes and a control
/// byte each. While it grows, the old table (half this) lives too.
pub fn memo_bytes(n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    let buckets = if n < 4 {
        4
    } else if n < 8 {
        8
    } else {
        (n * 8).div_ceil(7).next_power_of_two()
    };
    buckets * 17 + 16
}

fn mib(kib: i64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

fn bytes(b: u64) -> String {
    if b >= 1 << 20 {
        format!("{:.1} MiB", b as f64 / (1 << 20) as f64)
    } else {
        format!("{:.0} KiB", b as f64 / 1024.0)
    }
}

fn report(args: &CheckerBenchArgs, budget: Budget, start_kib: i64, rows: &[Row]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# `hearsay bench checker`: the checkers on recorded histories\n"
    );
    let mut command = format!("hearsay bench checker --runs {}", args.runs);
    for p in &args.histories {
        command += &format!(" {}", p.display());
    }
    if let Some(n) = args.max_configs {
        command += &format!(" --max-configs {n}");
    }
    if let Some(n) = args.max_steps {
        command += &format!(" --max-steps {n}");
    }
    let _ = writeln!(
        s,
        "`{command}`, measured {} on {} CPU(s), lin-kv's budget per key {} configurations and {} steps{}.\n",
        chrono::Utc::now().format("%Y-%m-%d"),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        budget.max_configs,
        budget.max_steps,
        if cfg!(debug_assertions) {
            " (a debug build: times are not representative)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        s,
        "| history | workload | ops | keys | verdict | parse ms | check ms median | min | configs searched | largest key | memo est. (largest key) | RSS before MiB | peak RSS MiB | growth MiB |"
    );
    let _ = writeln!(
        s,
        "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in rows {
        // The search figures are lin-kv's.
        let (keys, configs, largest, memo) = match r.keys {
            Some(k) => (
                k.to_string(),
                r.configs.to_string(),
                r.largest_key.to_string(),
                bytes(memo_bytes(r.largest_key)),
            ),
            None => ("-".into(), "-".into(), "-".into(), "-".into()),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {keys} | {} | {:.1} | {:.1} | {:.1} | {configs} | {largest} | {memo} | {} | {} | {} |",
            r.name,
            r.workload,
            r.ops,
            r.valid,
            r.parse_ms,
            r.median_ms(),
            r.min_ms(),
            mib(r.rss_before_kib),
            mib(r.maxrss_kib),
            mib(r.growth_kib),
        );
    }
    let reset = rows.iter().all(|r| r.peak_reset);
    let _ = writeln!(
        s,
        "\nMemory: each history is checked in a process of its own (this program, run again), \
         so no history's memory is another's; \"peak RSS\" is getrusage's maxrss, that \
         process's peak resident set (the bench itself was at {} MiB). {} \"RSS before\" includes the \
         parsed history; \"growth\" is peak minus before, the checker's own peak use over its \
         {} runs; the kernel's resident-set counters lag by a few hundred KiB, so growth \
         under about 0.5 MiB is within their error. \"memo est.\" is the largest key's table of configurations (17 bytes a slot, \
         at most 7/8 full, power-of-two slots; 1.5 times that while it grows); the memo is \
         freed between keys. Parse is `History::from_edn` on the file (decompressed first if \
         it is gzip), once; check times are the workload checker alone (lin-kv's \
         `check_independent_cas`, Elle's for the txn workloads, Jepsen's kafka checker), \
         without the pictures and files a run also writes.",
        mib(start_kib),
        if reset {
            "Before each history's runs the bench reset that peak to the current resident set \
             (`5` into /proc/self/clear_refs), so each row's peak is its own checking."
        } else {
            "The peak could not be reset here (/proc/self/clear_refs refused), so it only \
             grows: a row's growth is a lower bound, and histories run smallest first."
        },
        args.runs
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Default for Row {
        fn default() -> Row {
            Row {
                name: String::new(),
                workload: "lin-kv".into(),
                ops: 0,
                keys: None,
                valid: "unknown".into(),
                parse_ms: 0.0,
                runs: Vec::new(),
                configs: 0,
                largest_key: 0,
                rss_before_kib: 0,
                maxrss_kib: 0,
                growth_kib: 0,
                peak_reset: true,
            }
        }
    }

    #[test]
    fn memo_estimate_follows_hashbrown_growth() {
        assert_eq!(memo_bytes(0), 0);
        assert_eq!(memo_bytes(3), 4 * 17 + 16);
        // 14 fit in 16 buckets (7/8), 15 need 32.
        assert_eq!(memo_bytes(14), 16 * 17 + 16);
        assert_eq!(memo_bytes(15), 32 * 17 + 16);
        let r = Row {
            runs: vec![3.0, 1.0, 2.0, 9.0],
            ..Row::default()
        };
        assert_eq!((r.median_ms(), r.min_ms()), (2.0, 1.0));
    }

    #[test]
    fn the_workload_is_the_start_of_the_file_name() {
        let w = |n: &str| workload_of(Path::new(n)).to_string();
        assert_eq!(w("dir/txn-list-append-20s.edn.gz"), "txn-list-append");
        assert_eq!(w("txn-rw-register-x.edn"), "txn-rw-register");
        assert_eq!(w("kafka-5a.edn"), "kafka");
        assert_eq!(w("lin-kv-5n.edn"), "lin-kv");
        assert_eq!(w("small.edn"), "lin-kv");
        assert_eq!(w("kafkaesque.edn"), "lin-kv", "a whole word only");
    }
}
