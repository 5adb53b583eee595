//! `hearsay agent`: a real gossip member over UDP with an HTTP API (a thin
//! user of the `hearsay-agent` library).

use hearsay_agent::{Agent, AgentConfig};
use hearsay_core::membership::SwimPreset;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Debug, clap::Args)]
#[command(after_help = "Example, three agents on one machine:
  hearsay agent --name n1 --bind 127.0.0.1:7946 --http 127.0.0.1:8946
  hearsay agent --name n2 --bind 127.0.0.1:7947 --http 127.0.0.1:8947 --join 127.0.0.1:7946
  hearsay agent --name n3 --bind 127.0.0.1:7948 --http 127.0.0.1:8948 --join 127.0.0.1:7946
  curl 127.0.0.1:8946/members; curl -d hello 127.0.0.1:8947/broadcast; curl 127.0.0.1:8948/messages

The first line printed gives the bound addresses (port 0 picks free ones).
Gossip is in clear text: this slice has no encryption; keep it on trusted
networks. SIGTERM or Ctrl-C leaves the cluster gracefully.")]
pub struct AgentArgs {
    /// This member's name, unique in the cluster
    #[arg(long)]
    name: String,
    /// Members of another cluster are refused
    #[arg(long, default_value = "hearsay")]
    cluster: String,
    /// UDP address to gossip on
    #[arg(long, default_value = "127.0.0.1:7946")]
    bind: SocketAddr,
    /// The address other members should use (behind NAT, in containers)
    #[arg(long)]
    advertise: Option<SocketAddr>,
    /// A member to join through; repeatable or comma-separated
    #[arg(long, value_delimiter = ',')]
    join: Vec<SocketAddr>,
    /// HTTP API address
    #[arg(long, default_value = "127.0.0.1:8946")]
    http: SocketAddr,
    /// Membership timing: lan, wan or local
    #[arg(long, default_value = "lan")]
    preset: SwimPreset,
    /// This member's zone (rack or datacenter label)
    #[arg(long)]
    zone: Option<String>,
}

pub fn run(args: AgentArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hearsay agent: {e}");
            return ExitCode::from(crate::EXIT_CRASH);
        }
    };
    rt.block_on(async move {
        let cfg = AgentConfig {
            name: args.name.clone(),
            cluster: args.cluster.clone(),
            bind: args.bind,
            advertise: args.advertise,
            join: args.join.clone(),
            preset: args.preset,
            zone: args.zone.clone(),
        };
        let agent = match Agent::start(cfg).await {
            Ok(a) => Arc::new(a),
            Err(e) => {
                eprintln!("hearsay agent: {e:#}");
                return ExitCode::from(crate::EXIT_BAD_ARGS);
            }
        };
        let listener = match tokio::net::TcpListener::bind(args.http).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("hearsay agent: cannot listen on {}: {e}", args.http);
                return ExitCode::from(crate::EXIT_BAD_ARGS);
            }
        };
        let http = listener.local_addr().map_or(args.http, |a| a);
        println!(
            "hearsay agent {} in cluster {}: gossip on {}, http on http://{http}/",
            args.name,
            args.cluster,
            agent.local_addr()
        );
        eprintln!("hearsay agent: gossip is in clear text (no key configured)");
        use std::io::Write;
        let _ = std::io::stdout().flush();
        let router = hearsay_agent::http::router(agent.clone());
        let server = axum::serve(listener, router);
        let stop = async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { if let Some(t) = term.as_mut() { t.recv().await; } else { std::future::pending::<()>().await } } => {}
            }
        };
        tokio::select! {
            r = server => {
                if let Err(e) = r {
                    eprintln!("hearsay agent: {e}");
                    return ExitCode::from(crate::EXIT_CRASH);
                }
            }
            _ = stop => {
                agent.leave().await;
            }
        }
        ExitCode::SUCCESS
    })
}
