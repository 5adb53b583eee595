//! `hearsay`: the command-line front end.
//!
//! - `hearsay test`: Maelstrom's `test` command, natively (see `--help`);
//! - `hearsay node`: hearsay's Maelstrom node (the same code as `hearsay-node`);
//! - `hearsay check`: a workload's checker on a recorded history;
//! - `hearsay bench`: the strategy sweep behind the README's numbers;
//! - `hearsay sim`: the membership simulator;
//! - `hearsay serve`: a web UI over the runs in a store.

/// `println!` for what the user reads or pipes on: when standard output
/// is gone (a pipe into `head` closed early), the program ends quietly
/// with the status a shell gives a SIGPIPE death, instead of panicking.
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if writeln!(std::io::stdout(), $($t)*).is_err() {
            std::process::exit(141);
        }
    }};
}

/// `print!` likewise.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if write!(std::io::stdout(), $($t)*).is_err() {
            std::process::exit(141);
        }
    }};
}

mod agent_cmd;
mod args;
mod bench;
mod check_cmd;
mod client_cmd;
mod own_node;
mod progress;
mod serve;
mod sim_cmd;
mod test_cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "hearsay", version, about = "Gossip toolkit: test Maelstrom nodes, run hearsay's own node", long_about = None)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a Maelstrom test against any node binary (defaults: the Gossip
    /// Glomers 3d scenario on hearsay's own node).
    #[command(allow_negative_numbers = true)]
    Test(Box<test_cmd::TestArgs>),
    /// Run a workload's checker on a recorded history (hearsay's, Jepsen's
    /// or Maelstrom's history.edn) and exit as `test` does.
    #[command(allow_negative_numbers = true)]
    Check(check_cmd::CheckArgs),
    /// Run hearsay's Maelstrom node on stdin/stdout (same as `hearsay-node`).
    Node(hearsay_maelstrom::cli::NodeArgs),
    /// Sweep broadcast strategies x presets x node counts x faults on the
    /// 3d/3e scenario; write a table, CSV, JSON and Pareto plots.
    #[command(allow_negative_numbers = true)]
    Bench(Box<bench::BenchArgs>),
    /// Simulate hearsay's cluster members (SWIM with Lifeguard, and a
    /// broadcast strategy) for up to thousands of members in virtual time,
    /// with loss, crashes, restarts, pauses, partitions and zones; report
    /// detection times, false positives, heal time, delivery and traffic.
    #[command(allow_negative_numbers = true)]
    Sim(Box<sim_cmd::SimArgs>),
    /// A web UI over a store: the runs table, a page per run with its
    /// pictures, message diagram, history and logs, and bench sweeps.
    #[command(allow_negative_numbers = true)]
    Serve(serve::ServeArgs),
    /// A real gossip member over UDP (SWIM membership, broadcast,
    /// encryption) with an HTTP API: GET /members, POST /broadcast, GET
    /// /messages, GET /metrics, /keys.
    #[command(allow_negative_numbers = true)]
    Agent(Box<agent_cmd::AgentArgs>),
    /// List a running agent's members (name, address, zone, state, incarnation).
    Members(client_cmd::MembersArgs),
    /// Broadcast a value through a running agent.
    Broadcast(client_cmd::BroadcastArgs),
    /// The values a running agent has delivered, one per line.
    Read(client_cmd::ReadArgs),
    /// The cluster's gossip keys, through a running agent: list, install,
    /// use, remove; or generate a new key.
    Keys(client_cmd::KeysArgs),
    /// A running agent's replicated key-value map: set, get, del, list.
    Kv(client_cmd::KvArgs),
    /// A running agent's tags: list, set KEY=VALUE..., del KEY...
    Tags(client_cmd::TagsArgs),
    /// Send a user event to every member through a running agent (Serf's
    /// `serf event`): delivered once everywhere, in order per origin.
    Event(client_cmd::EventArgs),
    /// The user events a running agent has delivered, oldest first.
    Events(client_cmd::EventsArgs),
    /// Make a running agent join the cluster of a member at ADDR (Serf's
    /// `serf join`): it asks each address until one answers
    Join(client_cmd::JoinArgs),
    /// Make a running agent leave its cluster gracefully and stop (Serf's
    /// `serf leave`)
    Leave(client_cmd::LeaveArgs),
    /// Record a failed member as left on every agent (Serf's `serf
    /// force-leave`): it stops counting as failed and is forgotten
    ForceLeave(client_cmd::ForceLeaveArgs),
    /// Ask the members a filter chooses and print each acknowledgement
    /// and answer as it arrives, then who answered and who stayed silent
    /// (Serf's `serf query`); members answer with a query handler
    /// (--event-handler query:NAME=COMMAND) or the library
    Query(client_cmd::QueryArgs),
    /// Stream a running agent's log lines and membership events as they
    /// happen, until interrupted (Serf's `serf monitor`)
    Monitor(client_cmd::MonitorArgs),
    /// Probe every member from a running agent, directly and through
    /// others, over UDP and TCP: who cannot be reached and where the
    /// problem likely is (a blocked port?) (Serf's `serf reachability`)
    Reachability(client_cmd::ReachabilityArgs),
    /// A running agent at a glance: name, addresses, protocol, members by
    /// state, health, keys, tags, queues.
    Info(client_cmd::InfoArgs),
}

/// Maelstrom's exit code for bad arguments.
pub const EXIT_BAD_ARGS: u8 = 254;
/// Maelstrom's exit code for a crashed test.
pub const EXIT_CRASH: u8 = 255;

/// The two-thread tokio runtime the server commands run on; on failure
/// says why under `cmd`'s name and gives the exit code.
pub fn runtime(cmd: &str) -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("hearsay {cmd}: {e}");
            ExitCode::from(EXIT_CRASH)
        })
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse_from(args::join_negative_values(std::env::args_os())) {
        Ok(c) => c,
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            use clap::CommandFactory;
            let known: Vec<String> = Cli::command()
                .get_subcommands()
                .map(|c| c.get_name().to_string())
                .collect();
            let sub = std::env::args_os()
                .nth(1)
                .and_then(|a| a.into_string().ok())
                .filter(|a| known.contains(a));
            let who = sub
                .as_deref()
                .map_or("hearsay".to_string(), |s| format!("hearsay {s}"));
            let node_args = sub.as_deref() == Some("test");
            eprintln!("{who}: {}", args::one_line(&e, node_args));
            return ExitCode::from(EXIT_BAD_ARGS);
        }
    };
    match cli.cmd {
        Cmd::Test(args) => test_cmd::run(*args),
        Cmd::Check(args) => check_cmd::run(args),
        Cmd::Bench(args) => bench::run(*args),
        Cmd::Sim(args) => sim_cmd::run(*args),
        Cmd::Serve(args) => serve::run(args),
        Cmd::Agent(args) => agent_cmd::run(*args),
        Cmd::Members(a) => client_cmd::members(a),
        Cmd::Broadcast(a) => client_cmd::broadcast(a),
        Cmd::Read(a) => client_cmd::read(a),
        Cmd::Keys(a) => client_cmd::keys(a),
        Cmd::Kv(a) => client_cmd::kv(a),
        Cmd::Tags(a) => client_cmd::tags(a),
        Cmd::Event(a) => client_cmd::event(a),
        Cmd::Events(a) => client_cmd::events(a),
        Cmd::Join(a) => client_cmd::join(a),
        Cmd::Leave(a) => client_cmd::leave(a),
        Cmd::ForceLeave(a) => client_cmd::force_leave(a),
        Cmd::Monitor(a) => client_cmd::monitor(a),
        Cmd::Query(a) => client_cmd::query(a),
        Cmd::Reachability(a) => client_cmd::reachability(a),
        Cmd::Info(a) => client_cmd::info(a),
        Cmd::Node(args) => {
            hearsay_maelstrom::shell::init_logging();
            let cfg = match args.config() {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("hearsay node: {e}");
                    return ExitCode::from(2);
                }
            };
            match hearsay_maelstrom::shell::run_stdio(cfg, args.data_dir.as_deref()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("hearsay node: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
