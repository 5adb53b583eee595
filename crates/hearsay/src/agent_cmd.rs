//! `hearsay agent`: a real gossip member over UDP with an HTTP API (a thin
//! user of the `hearsay-agent` library).

use hearsay_agent::http::{ApiConfig, ApiError, TOKEN_ENV, Token};
use hearsay_agent::{Agent, AgentConfig, Key};
use hearsay_core::dissemination::{Preset, StrategyKind};
use hearsay_core::membership::{ProbeOrder, SwimPreset};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Debug, clap::Args)]
#[command(after_help = "Example, three agents on one machine sharing one key:
  KEY=$(hearsay keys generate)
  hearsay agent --name n1 --bind 127.0.0.1:7946 --http 127.0.0.1:8946 --key $KEY
  hearsay agent --name n2 --bind 127.0.0.1:7947 --http 127.0.0.1:8947 --key $KEY --join 127.0.0.1:7946
  hearsay agent --name n3 --bind 127.0.0.1:7948 --http 127.0.0.1:8948 --key $KEY --join 127.0.0.1:7946
  hearsay members; hearsay broadcast hello --http 127.0.0.1:8947; hearsay read --http 127.0.0.1:8948

The first line printed gives the bound addresses (port 0 picks free ones).
Without a key gossip is in clear text and the agent says so. --config reads
a TOML file with the same keys as the flags (name, cluster, bind, advertise,
join, http, http-token-file, metrics-public, http-insecure, preset, probes,
strategy, broadcast-preset, zone, tags (a table), keys, key-file, retry-join,
retry-max, retry-interval, log-level, and the handler and kept-* settings); flags
given on the command line win. SIGTERM, Ctrl-C or `hearsay leave` leaves the cluster gracefully.

The HTTP API can read the map, broadcast and change the cluster's keys. With a
token (--http-token-file, else $HEARSAY_HTTP_TOKEN, else http-token-file in
--config) every call but /health (and /metrics with --metrics-public) needs
`Authorization: Bearer TOKEN` and is answered 401 without it; the client
commands send it from the same places. Without a token the API is served on
loopback addresses only, unless --http-insecure. A token for a cluster:
  hearsay keys generate > api.token; chmod 600 api.token
  hearsay agent --name n1 --http 10.0.0.5:8946 --http-token-file api.token
  hearsay members --http 10.0.0.5:8946 --http-token-file api.token")]
pub struct AgentArgs {
    /// This member's name, unique in the cluster
    #[arg(long)]
    name: Option<String>,
    /// Members of another cluster are refused [default: hearsay]
    #[arg(long)]
    cluster: Option<String>,
    /// UDP address to gossip on, HOST:PORT (a name is resolved at start,
    /// IPv4 first) [default: 127.0.0.1:7946]
    #[arg(long, value_parser = resolve)]
    bind: Option<SocketAddr>,
    /// The address other members should use (behind NAT, in containers)
    #[arg(long, value_parser = resolve)]
    advertise: Option<SocketAddr>,
    /// A member to join through, HOST:PORT; repeatable or comma-separated
    #[arg(long, value_delimiter = ',', value_parser = resolve)]
    join: Vec<SocketAddr>,
    /// A member to join through, HOST:PORT, with the name looked up again
    /// at every attempt (DNS that changes, IPv4 and IPv6): attempts every
    /// --retry-interval until one answers; repeatable or comma-separated
    #[arg(long, value_delimiter = ',', value_name = "HOST:PORT", value_parser = host_port)]
    retry_join: Vec<String>,
    /// Give up after this many --retry-join attempts and stop with an
    /// error [default: 0, never]
    #[arg(long, value_name = "N")]
    retry_max: Option<u32>,
    /// Between --retry-join attempts (each also waits up to 10 s for an
    /// answer) [default: 30s]
    #[arg(long, value_name = "DUR")]
    retry_interval: Option<hearsay_sim::Dur>,
    /// HTTP API address, HOST:PORT [default: 127.0.0.1:8946]; one other
    /// machines can reach needs a token (or --http-insecure)
    #[arg(long, value_parser = resolve)]
    http: Option<SocketAddr>,
    /// A file holding the bearer token every HTTP call but /health must
    /// carry (its contents, trimmed; keep it mode 600). Without it the
    /// token comes from $HEARSAY_HTTP_TOKEN
    #[arg(long, value_name = "FILE")]
    http_token_file: Option<PathBuf>,
    /// Serve /metrics without the token (for a scraper without credentials)
    #[arg(long)]
    metrics_public: bool,
    /// Serve the HTTP API without a token on an address other machines can
    /// reach (anyone who reaches it can read the map, broadcast and change
    /// the cluster's keys)
    #[arg(long)]
    http_insecure: bool,
    /// Serve the HTTP API over TLS with this PEM certificate chain (the
    /// server's first); needs --http-key. Clients then use
    /// --http https://HOST:PORT (and --http-ca FILE for a self-signed one)
    #[arg(long, value_name = "FILE", requires = "http_key")]
    http_cert: Option<PathBuf>,
    /// The PEM private key of --http-cert (keep it mode 600)
    #[arg(long, value_name = "FILE", requires = "http_cert")]
    http_key: Option<PathBuf>,
    /// Membership timing: lan, wan or local [default: lan]
    #[arg(long)]
    preset: Option<SwimPreset>,
    /// Whom to probe each period: ring (the next member on a ring of name
    /// hashes, so a crash is noticed within a period) or shuffled (SWIM's
    /// round-robin) [default: ring]
    #[arg(long, value_name = "ORDER")]
    probes: Option<ProbeOrder>,
    /// How broadcasts spread: flood, tree, direct, gossip, pull, push-pull
    /// or plumtree; every member of a cluster must use the same [default:
    /// plumtree]
    #[arg(long, value_name = "S", value_parser = parse_named::<StrategyKind>)]
    strategy: Option<StrategyKind>,
    /// The strategy's timing: latency (no batching) or efficient (adaptive
    /// batching: fewer messages, later) [default: latency]
    #[arg(long, value_name = "PRESET", value_parser = parse_named::<Preset>)]
    broadcast_preset: Option<Preset>,
    /// This member's zone (rack or datacenter label)
    #[arg(long)]
    zone: Option<String>,
    /// A tag the other members see (repeatable): role=web, version=1.2.
    /// At most 512 bytes in all; change them at runtime with `hearsay tags`;
    /// `hearsay members --tag role=web` filters on them. Tags given here
    /// replace those of the config file
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
    tags: Vec<(String, String)>,
    /// A gossip key (base64, from `hearsay keys generate`); repeatable, the
    /// first seals what this agent sends, all open what it receives
    #[arg(long, value_name = "KEY")]
    key: Vec<Key>,
    /// A file of gossip keys, one per line, the primary first (keeps keys
    /// out of the process list)
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// Keep the members, the keyring, the tags and the key-value map here
    /// (DIR/agent.redb): restarted with the same DIR, the agent rejoins the
    /// members it knew without --join, its keyring is the one it had (keys
    /// changed at runtime included; --key is then ignored), tags changed at
    /// runtime win over --tag, and every acknowledged map write is back,
    /// even after kill -9. Broadcasts and events are acknowledged once
    /// kept here too: those of the last 2 minutes are sent again after a
    /// restart (members that have them drop the copies). One agent per DIR
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Delivered payloads kept for GET /messages, at most (the oldest go
    /// first; 0 keeps none) [default: 100000]
    #[arg(long, value_name = "N")]
    kept_messages: Option<usize>,
    /// Bytes of delivered payloads kept for GET /messages, at most
    /// [default: 16777216]
    #[arg(long, value_name = "BYTES")]
    kept_bytes: Option<usize>,
    /// Largest user event payload sent through this agent (`hearsay
    /// event`), 1 to 65536 bytes; larger ones are refused [default: 65536]
    #[arg(long, value_name = "BYTES")]
    event_max_bytes: Option<usize>,
    /// A command (run with sh -c; a path alone is started directly) for membership changes, user events and
    /// queries: [TYPE[,TYPE...]=]COMMAND, TYPE one of member-join,
    /// member-leave, member-failed, member-update, member-reap, user,
    /// user:NAME, query, query:NAME (none: every event and query); the
    /// event in HEARSAY_* variables and on standard input; for a query,
    /// what the first handler for it prints is this agent's answer;
    /// repeatable
    #[arg(long = "event-handler", value_name = "SPEC")]
    event_handlers: Vec<hearsay_agent::handlers::Handler>,
    /// Event handlers running at once, at most, and as many query
    /// handlers besides (others wait; past 256 waiting, events are dropped
    /// and counted) [default: 4]
    #[arg(long, value_name = "N")]
    handler_concurrency: Option<usize>,
    /// An event handler still running after this is killed (e.g. 30s)
    /// [default: 60s]
    #[arg(long, value_name = "DUR")]
    handler_timeout: Option<hearsay_sim::Dur>,
    /// User events sent with `hearsay event --coalesce` wait this long
    /// for a later one of the same name, which replaces them, before the
    /// handlers run (at most four times this in all; e.g. 2s)
    /// [default: 0s: every event runs the handlers]
    #[arg(long, value_name = "DUR")]
    handler_coalesce: Option<hearsay_sim::Dur>,
    /// Log lines at this level and above go to standard error: trace,
    /// debug, info, warn, error (HEARSAY_LOG, a tracing filter, overrides
    /// it); `hearsay monitor --level` shows any level, whatever this is
    /// [default: warn]
    #[arg(long, value_name = "LEVEL", value_parser = hearsay_agent::monitor::parse_level)]
    log_level: Option<tracing::Level>,
    /// A TOML file with the same keys as these flags
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// For tests: accept POST /test/cut (drop traffic with listed members)
    #[arg(long, hide = true)]
    test_faults: bool,
    /// For tests: drop this share of received datagrams, in percent
    /// (a lossy link where `tc netem` is not to be had)
    #[arg(long, hide = true, default_value_t = 0.0, value_parser = crate::args::rate)]
    test_loss: f64,
    /// For tests: hold each received datagram this long
    #[arg(long, hide = true)]
    test_delay: Option<hearsay_sim::Dur>,
    /// For tests: each hold is --test-delay +- up to this (reordering)
    #[arg(long, hide = true)]
    test_jitter: Option<hearsay_sim::Dur>,
}

/// `--config`: the flags' keys, all optional.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    name: Option<String>,
    cluster: Option<String>,
    bind: Option<String>,
    advertise: Option<String>,
    #[serde(default)]
    join: Vec<String>,
    http: Option<String>,
    http_token_file: Option<PathBuf>,
    metrics_public: Option<bool>,
    http_insecure: Option<bool>,
    http_cert: Option<PathBuf>,
    http_key: Option<PathBuf>,
    preset: Option<String>,
    probes: Option<String>,
    strategy: Option<String>,
    broadcast_preset: Option<String>,
    zone: Option<String>,
    #[serde(default)]
    tags: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    keys: Vec<String>,
    key_file: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    kept_messages: Option<usize>,
    kept_bytes: Option<usize>,
    event_max_bytes: Option<usize>,
    #[serde(default)]
    event_handlers: Vec<String>,
    handler_concurrency: Option<usize>,
    handler_timeout: Option<String>,
    handler_coalesce: Option<String>,
    log_level: Option<String>,
    #[serde(default)]
    retry_join: Vec<String>,
    retry_max: Option<u32>,
    retry_interval: Option<String>,
}

/// `HOST:PORT`, kept as written (looked up at every attempt).
fn host_port(s: &str) -> Result<String, String> {
    match s.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && p.parse::<u16>().is_ok() => Ok(s.to_string()),
        _ => Err(format!("{s:?} is not HOST:PORT")),
    }
}

/// How `--retry-join` goes on.
#[derive(Clone, Debug)]
struct RetryJoin {
    targets: Vec<String>,
    /// Attempts at most; 0: for ever.
    max: u32,
    interval: std::time::Duration,
}

/// Joins through `r.targets`, each looked up afresh, every `r.interval`
/// until one answers; false when `r.max` attempts all failed.
async fn retry_join(agent: Arc<Agent>, r: RetryJoin) -> bool {
    let wait = r.interval.min(std::time::Duration::from_secs(10));
    for attempt in 1u32.. {
        // Joined some other way (--join, a member that joined us): done.
        if agent
            .members()
            .iter()
            .any(|m| !m.is_self && m.state == "alive")
        {
            eprintln!("hearsay agent: retry-join: already in a cluster; no more attempts");
            return true;
        }
        let mut addrs = Vec::new();
        let mut unresolved = Vec::new();
        for t in &r.targets {
            match tokio::net::lookup_host(t.as_str()).await {
                Ok(found) => addrs.extend(found),
                Err(e) => unresolved.push(format!("{t} ({e})")),
            }
        }
        let outcome = if addrs.is_empty() {
            Err(format!("cannot resolve {}", unresolved.join(", ")))
        } else {
            agent.join(addrs, wait).await.map_err(|e| e.to_string())
        };
        match outcome {
            Ok(name) => {
                eprintln!("hearsay agent: retry-join: joined through {name} (attempt {attempt})");
                return true;
            }
            Err(e) => eprintln!("hearsay agent: retry-join attempt {attempt}: {e}"),
        }
        if r.max > 0 && attempt >= r.max {
            eprintln!(
                "hearsay agent: retry-join: giving up after {attempt} attempts (--retry-max)"
            );
            return false;
        }
        tokio::time::sleep(r.interval).await;
    }
    false
}

/// `KEY=VALUE` (the value may be empty, and may hold `=`).
pub(crate) fn parse_tag(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("a tag is KEY=VALUE, not {s:?}")),
    }
}

fn read_keys(path: &Path) -> Result<Vec<Key>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the key file {}: {e}", path.display()))?;
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .enumerate()
        .map(|(i, l)| {
            l.parse()
                .map_err(|e| format!("{} line {}: {e}", path.display(), i + 1))
        })
        .collect()
}

/// A knob by its name, for clap (errors in the knob's own words).
fn parse_named<T: std::str::FromStr>(s: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    s.parse().map_err(|e: T::Err| e.to_string())
}

/// A named value: the flag's, else the config file's (parsed, errors named
/// by `key`).
fn flag_or_file<T: std::str::FromStr>(
    flag: Option<T>,
    file: Option<&str>,
    key: &str,
) -> Result<Option<T>, String>
where
    T::Err: std::fmt::Display,
{
    match (flag, file) {
        (Some(v), _) => Ok(Some(v)),
        (None, Some(text)) => text
            .parse()
            .map(Some)
            .map_err(|e| format!("{key} in the config file: {e}")),
        (None, None) => Ok(None),
    }
}

/// HOST:PORT to one socket address: a literal as it is, a name through the
/// system's resolver (`localhost`, /etc/hosts, DNS), its IPv4 address
/// first (an agent bound to 127.0.0.1 cannot reach ::1).
pub(crate) fn resolve(s: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    if let Ok(a) = s.parse() {
        return Ok(a);
    }
    if !s.contains(':') {
        return Err(format!("{s:?} has no port: write HOST:PORT"));
    }
    let all: Vec<SocketAddr> = s
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {s:?}: {e}"))?
        .collect();
    all.iter()
        .find(|a| a.is_ipv4())
        .or(all.first())
        .copied()
        .ok_or_else(|| format!("{s:?} resolves to no address"))
}

/// What `hearsay agent` runs with.
struct Settings {
    agent: AgentConfig,
    http: SocketAddr,
    api: ApiConfig,
    /// The API over TLS.
    tls: Option<hearsay_agent::http::tls::Tls>,
    /// Said on stderr at start (never the token itself).
    notes: Vec<String>,
    /// What standard error logs.
    log_level: tracing::Level,
    retry: Option<RetryJoin>,
}

/// The API's token: `--http-token-file`, else `HEARSAY_HTTP_TOKEN`, else
/// the config file's `http-token-file` (the command line and its
/// environment over the file). A note if the file is readable by others.
pub(crate) fn api_token(
    flag: Option<&Path>,
    file: Option<&Path>,
    notes: &mut Vec<String>,
) -> Result<Option<Token>, String> {
    let path = match flag {
        Some(p) => p,
        None => match (Token::from_env().map_err(|e| e.to_string())?, file) {
            (Some(t), _) => return Ok(Some(t)),
            (None, Some(p)) => p,
            (None, None) => return Ok(None),
        },
    };
    let token = Token::from_file(path).map_err(|e| e.to_string())?;
    if let Some(mode) = hearsay_agent::http::auth::readable_by_others(path) {
        notes.push(format!(
            "WARNING: the token file {} is readable by others (mode {mode:03o}); chmod 600 it",
            path.display()
        ));
    }
    Ok(Some(token))
}

/// The agent's settings: command line over `--config` over defaults.
fn settle(args: &AgentArgs) -> Result<Settings, String> {
    let file: FileConfig = match &args.config {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| format!("cannot read {}: {e}", p.display()))?;
            toml::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?
        }
        None => FileConfig::default(),
    };
    let name = args
        .name
        .clone()
        .or(file.name)
        .ok_or("a name is needed: --name, or name in the --config file")?;
    let preset =
        flag_or_file(args.preset, file.preset.as_deref(), "preset")?.unwrap_or(SwimPreset::Lan);
    let probes = flag_or_file(args.probes, file.probes.as_deref(), "probes")?;
    let strategy = flag_or_file(args.strategy, file.strategy.as_deref(), "strategy")?;
    let broadcast_preset = flag_or_file(
        args.broadcast_preset,
        file.broadcast_preset.as_deref(),
        "broadcast-preset",
    )?;
    let mut keys = args.key.clone();
    if keys.is_empty() {
        keys = file
            .keys
            .iter()
            .map(|k| {
                k.parse()
                    .map_err(|e| format!("keys in the config file: {e}"))
            })
            .collect::<Result<_, String>>()?;
    }
    if let Some(p) = args.key_file.as_ref().or(file.key_file.as_ref()) {
        keys.extend(read_keys(p)?);
    }
    let mut cfg = AgentConfig::new(name);
    if let Some(c) = args.cluster.clone().or(file.cluster) {
        cfg.cluster = c;
    }
    let in_file =
        |a: &str, key: &str| resolve(a).map_err(|e| format!("{key} in the config file: {e}"));
    if let Some(b) = args.bind.or(file
        .bind
        .as_deref()
        .map(|a| in_file(a, "bind"))
        .transpose()?)
    {
        cfg.bind = b;
    }
    cfg.advertise = args.advertise.or(file
        .advertise
        .as_deref()
        .map(|a| in_file(a, "advertise"))
        .transpose()?);
    cfg.join = if args.join.is_empty() {
        file.join
            .iter()
            .map(|a| in_file(a, "join"))
            .collect::<Result<_, String>>()?
    } else {
        args.join.clone()
    };
    cfg.preset = preset;
    cfg.probes = probes;
    cfg.strategy = strategy;
    cfg.broadcast_preset = broadcast_preset;
    cfg.zone = args.zone.clone().or(file.zone);
    cfg.tags = if args.tags.is_empty() {
        file.tags
    } else {
        args.tags.iter().cloned().collect()
    };
    cfg.keys = keys;
    cfg.data_dir = args.data_dir.clone().or(file.data_dir);
    if let Some(n) = args.kept_messages.or(file.kept_messages) {
        cfg.kept_messages = n;
    }
    if let Some(n) = args.kept_bytes.or(file.kept_bytes) {
        cfg.kept_bytes = n;
    }
    if let Some(n) = args.event_max_bytes.or(file.event_max_bytes) {
        let max = hearsay_core::cluster::MAX_PAYLOAD;
        if !(1..=max).contains(&n) {
            return Err(format!("--event-max-bytes must be 1 to {max}, not {n}"));
        }
        cfg.event_max_bytes = n;
    }
    cfg.event_handlers = if args.event_handlers.is_empty() {
        file.event_handlers
            .iter()
            .map(|h| h.parse().map_err(|e| format!("event-handlers: {e}")))
            .collect::<Result<_, _>>()?
    } else {
        args.event_handlers.clone()
    };
    if let Some(n) = args.handler_concurrency.or(file.handler_concurrency) {
        if !(1..=1024).contains(&n) {
            return Err(format!("--handler-concurrency must be 1 to 1024, not {n}"));
        }
        cfg.handler_concurrency = n;
    }
    let timeout = match (args.handler_timeout, &file.handler_timeout) {
        (Some(d), _) => Some(d),
        (None, Some(t)) => Some(
            t.parse::<hearsay_sim::Dur>()
                .map_err(|e| format!("handler-timeout: {e}"))?,
        ),
        (None, None) => None,
    };
    if let Some(d) = timeout {
        if d.0.is_zero() {
            return Err("--handler-timeout must be more than 0".into());
        }
        cfg.handler_timeout = d.0;
    }
    match (args.handler_coalesce, &file.handler_coalesce) {
        (Some(d), _) => cfg.handler_coalesce = d.0,
        (None, Some(t)) => {
            cfg.handler_coalesce = t
                .parse::<hearsay_sim::Dur>()
                .map_err(|e| format!("handler-coalesce: {e}"))?
                .0;
        }
        (None, None) => {}
    }
    cfg.test_faults = args.test_faults;
    if args.test_loss > 100.0 {
        return Err(format!(
            "--test-loss is a percentage, 0 to 100, not {}",
            args.test_loss
        ));
    }
    cfg.test_link = hearsay_agent::lossy::Faults {
        loss: args.test_loss / 100.0,
        delay: args.test_delay.map(|d| d.0).unwrap_or_default(),
        jitter: args.test_jitter.map(|d| d.0).unwrap_or_default(),
    };
    let http = args
        .http
        .or(file
            .http
            .as_deref()
            .map(|a| in_file(a, "http"))
            .transpose()?)
        .unwrap_or_else(|| "127.0.0.1:8946".parse().expect("literal"));
    let mut notes = Vec::new();
    let mut api = ApiConfig::default();
    api.token = api_token(
        args.http_token_file.as_deref(),
        file.http_token_file.as_deref(),
        &mut notes,
    )?;
    let tls = match (
        args.http_cert.as_ref().or(file.http_cert.as_ref()),
        args.http_key.as_ref().or(file.http_key.as_ref()),
    ) {
        (Some(c), Some(k)) => Some(hearsay_agent::http::tls::Tls::from_pem_files(c, k)?),
        (None, None) => None,
        _ => return Err("TLS needs both a certificate and its key: http-cert and http-key".into()),
    };
    api.metrics_public = args.metrics_public || file.metrics_public.unwrap_or(false);
    api.insecure = args.http_insecure || file.http_insecure.unwrap_or(false);
    // Refused here, before anything is bound.
    api.validate(http).map_err(|e| match e {
        ApiError::OpenBeyondLoopback(a) => format!(
            "refusing to serve the HTTP API on {a} without a token: anyone who reaches it could read the map, broadcast and change the cluster's keys. Give a token (--http-token-file FILE or {TOKEN_ENV}), bind --http to 127.0.0.1, or pass --http-insecure"
        ),
        e => e.to_string(),
    })?;
    match (&api.token, api.metrics_public) {
        (Some(_), false) => notes.push("the HTTP API requires a bearer token but for /health".into()),
        (Some(_), true) => notes.push("the HTTP API requires a bearer token but for /health and /metrics".into()),
        (None, _) if !http.ip().is_loopback() => notes.push(format!(
            "WARNING: the HTTP API on {http} has no token (--http-insecure): anyone who reaches it can read the map, broadcast and change the cluster's keys"
        )),
        (None, _) => {}
    }
    let log_level = match (args.log_level, &file.log_level) {
        (Some(l), _) => l,
        (None, Some(l)) => {
            hearsay_agent::monitor::parse_level(l).map_err(|e| format!("log-level: {e}"))?
        }
        (None, None) => tracing::Level::WARN,
    };
    let targets = if args.retry_join.is_empty() {
        file.retry_join
            .iter()
            .map(|t| host_port(t).map_err(|e| format!("retry-join in the config file: {e}")))
            .collect::<Result<Vec<_>, String>>()?
    } else {
        args.retry_join.clone()
    };
    let interval = match (args.retry_interval, &file.retry_interval) {
        (Some(d), _) => d.0,
        (None, Some(t)) => {
            t.parse::<hearsay_sim::Dur>()
                .map_err(|e| format!("retry-interval: {e}"))?
                .0
        }
        (None, None) => std::time::Duration::from_secs(30),
    };
    if interval.is_zero() {
        return Err("--retry-interval must be more than 0".into());
    }
    let max = args.retry_max.or(file.retry_max).unwrap_or(0);
    let retry = (!targets.is_empty()).then_some(RetryJoin {
        targets,
        max,
        interval,
    });
    if retry.is_none() && (args.retry_max.is_some() || args.retry_interval.is_some()) {
        return Err("--retry-max and --retry-interval go with --retry-join".into());
    }
    Ok(Settings {
        agent: cfg,
        http,
        api,
        tls,
        notes,
        log_level,
        retry,
    })
}

/// Logs to standard error at `level` (or as HEARSAY_LOG says), and to
/// `hearsay monitor` at any level: the agent's own debug lines, the rest
/// from info.
fn init_logging(level: tracing::Level) {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_env("HEARSAY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level.as_str()));
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false)
        .with_filter(filter);
    let watched = tracing_subscriber::filter::Targets::new()
        .with_target("hearsay_agent", tracing::Level::DEBUG)
        .with_default(tracing::Level::INFO);
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(hearsay_agent::monitor::capture().with_filter(watched))
        .try_init();
}

pub fn run(args: AgentArgs) -> ExitCode {
    let Settings {
        agent: cfg,
        http: http_addr,
        api,
        tls,
        notes,
        log_level,
        retry,
    } = match settle(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hearsay agent: {e}");
            return ExitCode::from(crate::EXIT_BAD_ARGS);
        }
    };
    init_logging(log_level);
    let rt = match crate::runtime("agent") {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(async move {
        let (name, cluster) = (cfg.name.clone(), cfg.cluster.clone());
        let agent = match Agent::start(cfg).await {
            Ok(a) => Arc::new(a),
            Err(e) => {
                eprintln!("hearsay agent: {e:#}");
                return ExitCode::from(crate::EXIT_BAD_ARGS);
            }
        };
        let listener = match tokio::net::TcpListener::bind(http_addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("hearsay agent: cannot listen on {http_addr}: {e}");
                return ExitCode::from(crate::EXIT_BAD_ARGS);
            }
        };
        let http = listener.local_addr().map_or(http_addr, |a| a);
        // The keyring a data dir kept wins over --key.
        let nkeys = agent.keys().len();
        outln!(
            "hearsay agent {name} in cluster {cluster}: gossip on {}, http on {}://{http}/",
            agent.local_addr(),
            if tls.is_some() { "https" } else { "http" }
        );
        // Without a key the agent library has warned already (a log line).
        if nkeys > 0 {
            eprintln!("hearsay agent: gossip is encrypted (XChaCha20-Poly1305, {nkeys} key(s))");
        }
        for n in notes.iter().map(String::as_str).chain(agent.restored()) {
            eprintln!("hearsay agent: {n}");
        }
        use std::io::Write;
        let _ = std::io::stdout().flush();
        // A join that does not happen is said, at the seeds' backoff rate
        // (each new round of asking changes the text), until it happens.
        let watch = agent.clone();
        tokio::spawn(async move {
            let mut said: Option<String> = None;
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                let now = watch.join_problem();
                if now != said {
                    match &now {
                        // A refusal says why (a seed of another cluster
                        // or key answers with what this one cannot open);
                        // a silence needs the likely causes.
                        Some(p) if p.contains("(no answer)") => eprintln!(
                            "hearsay agent: {p}; a seed that does not answer is down or unreachable (a blocked UDP port?)"
                        ),
                        Some(p) => eprintln!("hearsay agent: {p}"),
                        None if said.is_some() => eprintln!("hearsay agent: joined"),
                        None => {}
                    }
                    said = now;
                }
            }
        });
        let router = hearsay_agent::http::router(agent.clone(), api);
        let server = async move {
            match tls {
                Some(tls) => hearsay_agent::http::tls::serve(listener, router, tls).await,
                None => axum::serve(listener, router).await,
            }
        };
        // --retry-join: a join that runs out of attempts stops the agent.
        let gave_up = async {
            match retry {
                Some(r) => {
                    if retry_join(agent.clone(), r).await {
                        std::future::pending::<()>().await;
                    }
                }
                None => std::future::pending::<()>().await,
            }
        };
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
                eprintln!("hearsay agent: stopping: telling the cluster this member leaves");
                agent.leave().await;
                eprintln!("hearsay agent: left");
            }
            _ = agent.left() => {
                eprintln!("hearsay agent: left the cluster as asked through the API (`hearsay leave`); stopping");
                // The API's answer to the leave is still on its way out.
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            }
            _ = gave_up => {
                eprintln!("hearsay agent: stopping: it could not join");
                return ExitCode::FAILURE;
            }
        }
        ExitCode::SUCCESS
    })
}
