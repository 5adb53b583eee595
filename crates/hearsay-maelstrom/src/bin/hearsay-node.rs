//! `hearsay-node`: a Maelstrom node. Speaks JSON lines on stdin/stdout; runs
//! under `hearsay test` or the real Maelstrom (`maelstrom test --bin hearsay-node`).

use clap::Parser;
use hearsay_maelstrom::cli::NodeArgs;
use hearsay_maelstrom::shell;

#[derive(Parser)]
#[command(name = "hearsay-node", version, about = "A Maelstrom node: broadcast, echo", long_about = None)]
struct Cli {
    #[command(flatten)]
    node: NodeArgs,
}

fn main() -> anyhow::Result<()> {
    shell::init_logging();
    let cli = Cli::parse();
    let cfg = match cli.node.config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hearsay-node: {e}");
            std::process::exit(2);
        }
    };
    tracing::info!(config = ?cfg.dissemination, "hearsay-node starting");
    shell::run_stdio(cfg, cli.node.data_dir.as_deref())
}
