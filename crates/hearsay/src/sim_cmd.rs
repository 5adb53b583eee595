//! `hearsay sim`: the membership simulator (see `hearsay_sim`).

use crate::EXIT_BAD_ARGS;
use hearsay_core::dissemination::{Preset, StrategyKind};
use hearsay_core::membership::{Detector, ProbeOrder, SwimPreset};
use hearsay_sim::{Dur, Partition, Pause, Scenario};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

/// On or off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  hearsay sim --members 1000 --duration 10m --loss 0.01 --crash 50
  hearsay sim --members 1000 --duration 10m --pause 0.05:3s --lifeguard off
  hearsay sim --members 1000 --duration 3m --partition 0.5:60s:60s --json
  hearsay sim --members 1000 --duration 3m --latency 50ms --broadcast-rate 10 --strategy tree
  hearsay sim --scenario crash.toml --seed 7

Every run is reproducible from its seed (the report's trace hash is equal
for equal seeds). Flags override the keys of a --scenario file, which takes
the same names (members = 1000, duration = \"10m\", partition = { fraction =
0.5, at = \"60s\", for = \"60s\" }, ...).")]
pub struct SimArgs {
    /// A TOML file with the scenario (the flags' names as keys)
    #[arg(long, value_name = "FILE")]
    scenario: Option<PathBuf>,
    /// Cluster size [default: 100]
    #[arg(long, value_name = "N")]
    members: Option<usize>,
    /// Simulated time, e.g. 10m, 90s [default: 60s]
    #[arg(long, value_name = "DUR")]
    duration: Option<Dur>,
    /// Membership timing: lan, wan or local [default: lan]
    #[arg(long)]
    preset: Option<SwimPreset>,
    /// Mean one-way delay (exponentially distributed) [default: 10ms]
    #[arg(long, value_name = "MEAN")]
    latency: Option<Dur>,
    /// Probability that a message is lost [default: 0]
    #[arg(long, value_name = "P")]
    loss: Option<f64>,
    /// Probability that a message is delivered twice [default: 0]
    #[arg(long, value_name = "P")]
    duplicate: Option<f64>,
    /// Members that crash at random moments [default: 0]
    #[arg(long, value_name = "K")]
    crash: Option<usize>,
    /// Crashed members come back with empty state, 10-30 s later
    #[arg(long)]
    restart: bool,
    /// Every member joins at once through the first, instead of starting
    /// with the whole membership known; the report says when views agreed
    /// and how many membership messages each member sent until then
    #[arg(long)]
    cold_start: bool,
    /// A share of members stops for a while once, e.g. 0.05:3s
    #[arg(long, value_name = "FRACTION:DUR")]
    pause: Option<Pause>,
    /// A share of members is cut off, e.g. 0.5:60s:60s (at 60 s, for 60 s)
    #[arg(long, value_name = "FRACTION:AT:FOR")]
    partition: Option<Partition>,
    /// Payloads per simulated second from random live members [default: 0]
    #[arg(long, value_name = "R")]
    broadcast_rate: Option<f64>,
    /// Writes per simulated second to the replicated map (the agent's kv),
    /// through random live members; the report says whether every live
    /// member ends with the map the writes make [default: 0: no map]
    #[arg(long, value_name = "R")]
    kv_rate: Option<f64>,
    /// Keys the writes go to (each write picks one at random)
    /// [default: 100]
    #[arg(long, value_name = "N")]
    kv_keys: Option<usize>,
    /// Lifeguard's three extensions to SWIM [default: on]
    #[arg(long, value_enum)]
    lifeguard: Option<OnOff>,
    /// Members sign their claims, each with a key kept across restarts, as
    /// agents with a data dir do
    #[arg(long)]
    sign: bool,
    /// Failure detector: swim (probes) or phi (phi accrual heartbeats)
    /// [default: swim]
    #[arg(long)]
    detector: Option<Detector>,
    /// Whom members probe each period: ring (the next member on a ring of
    /// name hashes: a crash is noticed within a period plus a probe) or
    /// shuffled (SWIM's round-robin) [default: ring]
    #[arg(long, value_name = "ORDER")]
    probes: Option<ProbeOrder>,
    /// How payloads spread: flood, tree, direct, gossip, pull, push-pull or
    /// plumtree [default: plumtree]
    #[arg(long, value_name = "S", value_parser = parse_strategy)]
    strategy: Option<StrategyKind>,
    /// The strategy's timing: latency (no batching) or efficient (adaptive
    /// batching: fewer messages, later) [default: latency]
    #[arg(long, value_name = "PRESET", value_parser = parse_preset)]
    broadcast_preset: Option<Preset>,
    /// Spread members over K zones (cross-zone latency x5) [default: 1]
    #[arg(long, value_name = "K")]
    zones: Option<usize>,
    /// Seed of every random choice [default: 1]
    #[arg(long)]
    seed: Option<u64>,
    /// Print one JSON object instead of the table
    #[arg(long)]
    json: bool,
    /// No progress bar
    #[arg(short, long)]
    quiet: bool,
}

fn parse_strategy(s: &str) -> Result<StrategyKind, String> {
    s.parse()
        .map_err(|e: hearsay_core::dissemination::ConfigError| e.to_string())
}

fn parse_preset(s: &str) -> Result<Preset, String> {
    s.parse()
        .map_err(|e: hearsay_core::dissemination::ConfigError| e.to_string())
}

impl SimArgs {
    fn scenario(&self) -> Result<Scenario, String> {
        let mut s = match &self.scenario {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| format!("--scenario {}: {e}", p.display()))?;
                Scenario::from_toml(&text)?
            }
            None => Scenario::default(),
        };
        macro_rules! set {
            ($($f:ident),*) => { $(if let Some(v) = self.$f { s.$f = v; })* };
        }
        set!(
            members,
            duration,
            preset,
            latency,
            loss,
            duplicate,
            crash,
            broadcast_rate,
            kv_rate,
            kv_keys,
            zones,
            seed,
            detector,
            probes,
            strategy,
            broadcast_preset
        );
        if self.restart {
            s.restart = true;
        }
        if self.cold_start {
            s.cold_start = true;
        }
        if self.sign {
            s.sign = true;
        }
        if self.pause.is_some() {
            s.pause = self.pause;
        }
        if self.partition.is_some() {
            s.partition = self.partition;
        }
        if let Some(l) = self.lifeguard {
            s.lifeguard = l == OnOff::On;
        }
        s.validate()?;
        Ok(s)
    }
}

pub fn run(args: SimArgs) -> ExitCode {
    let sc = match args.scenario() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("hearsay sim: {e}");
            return ExitCode::from(EXIT_BAD_ARGS);
        }
    };
    // Warnings only, unless HEARSAY_LOG asks for more (debug names each
    // false positive and each undelivered payload).
    crate::progress::Display::new(true).init_logging();
    let show = !args.quiet && std::io::stderr().is_terminal();
    let pb = if show {
        ProgressBar::new(1000)
    } else {
        ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden())
    };
    pb.set_style(
        ProgressStyle::with_template("{bar:30.cyan/blue} {percent:>3}% simulated, {elapsed} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    // Beside the progress bar only: the report's own header says the rest.
    if show {
        eprintln!(
            "hearsay sim: {} members, {} to simulate, seed {}",
            sc.members, sc.duration, sc.seed
        );
    }
    let result = hearsay_sim::run(&sc, &mut |f| pb.set_position((f * 1000.0) as u64));
    pb.finish_and_clear();
    match result {
        Ok(r) => {
            if args.json {
                match serde_json::to_string_pretty(&r) {
                    Ok(j) => outln!("{j}"),
                    Err(e) => {
                        eprintln!("hearsay sim: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            } else {
                out!("{}", r.table());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hearsay sim: {e}");
            ExitCode::from(EXIT_BAD_ARGS)
        }
    }
}
