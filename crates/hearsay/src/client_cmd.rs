//! Client commands that talk to a running agent's HTTP API:
//! `hearsay members`, `hearsay broadcast VALUE`, `hearsay read`,
//! `hearsay keys list|install|use|remove` (cluster-wide, or `--local`; and
//! `keys generate`, which needs no agent).
//!
//! An agent that requires a token gets it as `Authorization: Bearer`, from
//! `--http-token-file` or else `HEARSAY_HTTP_TOKEN`.

use hearsay_agent::http::{TOKEN_ENV, TokenSource};
use regex::Regex;
use std::path::PathBuf;
use std::process::ExitCode;

/// An HTTP target: resolved once to refuse a typo early, kept as written so
/// the HTTP client tries each address the name has.
/// `HOST:PORT`, or a URL with its scheme (`https://` for an agent with
/// `--http-cert`).
fn http_target(s: &str) -> Result<String, String> {
    let host = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s)
        .trim_end_matches('/');
    crate::agent_cmd::resolve(host).map(|_| s.trim_end_matches('/').to_string())
}

#[derive(Debug, clap::Args)]
pub struct Target {
    /// The agent's HTTP API, HOST:PORT (a name such as localhost is
    /// resolved; every address it has is tried); https://HOST:PORT for an
    /// agent serving TLS (--http-cert)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8946", value_parser = http_target)]
    http: String,
    /// With https: a PEM file of the certificate(s) to trust (the agent's
    /// own, if self-signed); without it, the public certificate authorities
    #[arg(long, value_name = "FILE")]
    http_ca: Option<PathBuf>,
    /// A file holding the agent's API token (its contents, trimmed); without
    /// it the token comes from $HEARSAY_HTTP_TOKEN, if set
    #[arg(long, value_name = "FILE")]
    http_token_file: Option<PathBuf>,
    /// Print JSON instead of lines
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct MembersArgs {
    /// Only members with this tag, its value matching a regular
    /// expression (whole value: role=web, version=1\..*); repeatable, all
    /// must match
    #[arg(long = "tag", value_name = "KEY=RE", value_parser = tag_filter)]
    tags: Vec<(String, Regex)>,
    /// Only members in this state: alive, suspect, dead or left
    #[arg(long, value_parser = ["alive", "suspect", "dead", "left"])]
    status: Option<String>,
    #[command(flatten)]
    target: Target,
}

/// `KEY=RE`, the expression anchored at both ends (as Serf's filter).
fn tag_filter(s: &str) -> Result<(String, Regex), String> {
    let (k, re) =
        crate::agent_cmd::parse_tag(s).map_err(|_| format!("--tag is KEY=RE, not {s:?}"))?;
    let re = hearsay_agent::query::tag_regex(&re).map_err(|e| format!("--tag {k}: {e}"))?;
    Ok((k, re))
}

/// Does member `m` (as /members lists it) pass the filters?
fn wanted(a: &MembersArgs, m: &serde_json::Value) -> bool {
    a.status.as_ref().is_none_or(|s| m["state"] == s.as_str())
        && a.tags
            .iter()
            .all(|(k, re)| m["tags"][k].as_str().is_some_and(|v| re.is_match(v)))
}

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  hearsay tags                              this agent's tags
  hearsay tags set role=web version=1.2     the others see them with its next gossip
  hearsay tags del version
  hearsay members --tag role=web            who has them")]
pub struct TagsArgs {
    #[command(subcommand)]
    op: Option<TagsOp>,
    #[command(flatten)]
    target: Target,
}

#[derive(Debug, clap::Subcommand)]
enum TagsOp {
    /// Set tags of the agent at --http (KEY=VALUE ...)
    Set {
        #[arg(required = true, value_name = "KEY=VALUE", value_parser = crate::agent_cmd::parse_tag)]
        tags: Vec<(String, String)>,
        #[command(flatten)]
        target: Target,
    },
    /// Delete tags of the agent at --http (KEY ...)
    Del {
        #[arg(required = true, value_name = "KEY")]
        keys: Vec<String>,
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Debug, clap::Args)]
pub struct BroadcastArgs {
    /// The payload (UTF-8 text)
    value: String,
    #[command(flatten)]
    target: Target,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  hearsay event deploy v1.4.2
  git rev-parse HEAD | hearsay event deploy
  hearsay events --json")]
pub struct EventArgs {
    /// The event's name (1 to 128 bytes, no control characters)
    name: String,
    /// Its payload (up to 64 KiB); without it, standard input is read
    payload: Option<String>,
    /// Agents with --handler-coalesce may run their handlers once for a
    /// burst of such events of this name, with the last (every event is
    /// still delivered and listed)
    #[arg(long)]
    coalesce: bool,
    #[command(flatten)]
    target: Target,
}

#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    /// Only events with this name
    #[arg(long)]
    name: Option<String>,
    #[command(flatten)]
    target: Target,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  hearsay join 10.0.0.5:7946
  hearsay join seed-1.example:7946 seed-2.example:7946 --timeout 30s

Exit status 0 once a member answered (its name is printed), 1 if none did
in time (each address and why: no answer, or what came back was refused,
for instance another --cluster or --key).")]
pub struct JoinArgs {
    /// Where members listen: HOST:PORT (names resolved by the agent, to
    /// every address they name; IPv4 and IPv6)
    #[arg(required = true, value_name = "ADDR")]
    addrs: Vec<String>,
    /// How long to keep asking
    #[arg(long, default_value = "10s")]
    timeout: hearsay_sim::Dur,
    #[command(flatten)]
    target: Target,
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status 0 when every member answered directly over UDP and took a TCP
connection, 1 otherwise. Each member is probed directly; one silent for half
the time is probed through up to three members that answered, which tells a
path that drops UDP from a member that is down."
)]
pub struct ReachabilityArgs {
    /// How long the probes may take (100ms to 60s)
    #[arg(long, default_value = "2s")]
    timeout: hearsay_sim::Dur,
    #[command(flatten)]
    target: Target,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  hearsay query uptime                          every member with a handler for it answers
  hearsay query load --tag role=web --timeout 2s
  hearsay query version --node n2 --node n3 --json
  echo flush | hearsay query cache -            the payload from standard input
An agent answers with --event-handler query:NAME=COMMAND: COMMAND gets the
payload on standard input and what it prints is the answer.
Exit status: 0 when every member asked acknowledged, 1 otherwise.")]
pub struct QueryArgs {
    /// The query's name (1 to 128 bytes, no control characters)
    name: String,
    /// Its payload (up to 64 KiB of text); `-` reads standard input
    payload: Option<String>,
    /// Only this member (repeatable)
    #[arg(long = "node", value_name = "NAME")]
    nodes: Vec<String>,
    /// Only members with this tag, its whole value matching a regular
    /// expression (repeatable, all must match), as `hearsay members --tag`
    #[arg(long = "tag", value_name = "KEY=RE", value_parser = crate::agent_cmd::parse_tag)]
    tags: Vec<(String, String)>,
    /// How long to wait for answers (at most 5m); the query ends sooner
    /// once every answer that can come is in
    #[arg(long, default_value = "5s")]
    timeout: hearsay_sim::Dur,
    #[command(flatten)]
    target: Target,
}

#[derive(Debug, clap::Args)]
pub struct MonitorArgs {
    /// Log lines at this level and above: trace, debug, info, warn, error
    #[arg(long, default_value = "info", value_parser = hearsay_agent::monitor::parse_level)]
    level: tracing::Level,
    #[command(flatten)]
    target: Target,
}

#[derive(Debug, clap::Args)]
pub struct ForceLeaveArgs {
    /// The member's name (one that failed: an alive member is refused, it
    /// would refute and stay)
    name: String,
    #[command(flatten)]
    target: Target,
}

#[derive(Debug, clap::Args)]
pub struct LeaveArgs {
    #[command(flatten)]
    target: Target,
}

#[derive(Debug, clap::Args)]
pub struct InfoArgs {
    #[command(flatten)]
    target: Target,
}

#[derive(Debug, clap::Args)]
pub struct ReadArgs {
    #[command(flatten)]
    target: Target,
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Every change goes to the agent at --http first, then to every live member
it knows (asked again for up to 5 s until each answers); the command says who
did it, who refused and who did not answer, and exits 1 unless all did.
--local changes only the agent at --http.

Rotating the key of a running cluster without losing a message:
  NEW=$(hearsay keys generate)
  hearsay keys install $NEW     # every member accepts NEW
  hearsay keys use $NEW         # every member sends with NEW
  hearsay keys remove $OLD      # nobody accepts OLD any more
Run each step only after the one before reached every member."
)]
pub struct KeysArgs {
    #[command(subcommand)]
    op: KeysOp,
}

#[derive(Debug, clap::Args)]
struct KeyTarget {
    #[command(flatten)]
    target: Target,
    /// Only the agent at --http, not the whole cluster
    #[arg(long)]
    local: bool,
}

#[derive(Debug, clap::Subcommand)]
enum KeysOp {
    /// Print a fresh random key (base64); talks to no agent
    Generate,
    /// Every key in the cluster and how many members have it (--local: the
    /// agent's keys, the primary first)
    List {
        #[command(flatten)]
        to: KeyTarget,
    },
    /// Accept KEY for receiving, besides the keys already installed
    Install {
        /// A key in base64, as `hearsay keys generate` prints
        key: String,
        #[command(flatten)]
        to: KeyTarget,
    },
    /// Seal what is sent with KEY (installed before)
    Use {
        /// A key in base64, as `hearsay keys generate` prints
        key: String,
        #[command(flatten)]
        to: KeyTarget,
    },
    /// Stop accepting KEY (not the primary)
    Remove {
        /// A key in base64, as `hearsay keys generate` prints
        key: String,
        #[command(flatten)]
        to: KeyTarget,
    },
}

pub fn keys(a: KeysArgs) -> ExitCode {
    let (op, key, to) = match &a.op {
        KeysOp::Generate => {
            outln!("{}", hearsay_agent::Key::generate().to_base64());
            return ExitCode::SUCCESS;
        }
        KeysOp::List { to } if to.local => return keys_list_local(&to.target),
        KeysOp::List { to } => {
            return cluster_keys(&to.target, "list", "GET", "/cluster/keys", b"");
        }
        KeysOp::Install { key, to } => ("install", key, to),
        KeysOp::Use { key, to } => ("use", key, to),
        KeysOp::Remove { key, to } => ("remove", key, to),
    };
    if let Err(e) = key.parse::<hearsay_agent::Key>() {
        eprintln!("hearsay keys {op}: {e}");
        return ExitCode::from(crate::EXIT_BAD_ARGS);
    }
    let t = &to.target;
    if !to.local {
        let path = format!("/cluster/keys/{op}");
        return cluster_keys(t, op, "POST", &path, key.as_bytes());
    }
    match post(t, &format!("/keys/{op}"), key.as_bytes()) {
        Ok((200, _)) => {
            if t.json {
                outln!("{}", serde_json::json!({"ok": true}));
            }
            ExitCode::SUCCESS
        }
        Ok((_, body)) => {
            eprintln!(
                "hearsay keys {op}: the agent at {} refused: {}",
                t.http,
                body.trim()
            );
            ExitCode::FAILURE
        }
        Err(e) => fail(&format!("keys {op}"), t, e),
    }
}

fn keys_list_local(t: &Target) -> ExitCode {
    match get(t, "/keys") {
        Ok(body) if t.json => {
            outln!("{body}");
            ExitCode::SUCCESS
        }
        Ok(body) => {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            let keys = v["keys"].as_array().cloned().unwrap_or_default();
            if keys.is_empty() {
                outln!("no keys: this agent gossips in clear text");
            }
            for (i, k) in keys.iter().enumerate() {
                let k = k.as_str().unwrap_or("?");
                outln!("{k}{}", if i == 0 { "  (primary)" } else { "" });
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail("keys list", t, e),
    }
}

/// A cluster-wide keyring request and its report: per key, how many
/// members have it (and use it); then who refused and who was silent.
fn cluster_keys(t: &Target, op: &str, method: &str, path: &str, body: &[u8]) -> ExitCode {
    let (status, text) = match request(t, method, path, body) {
        Ok(r) => r,
        Err(e) => return fail(&format!("keys {op}"), t, e),
    };
    if status != 200 {
        eprintln!(
            "hearsay keys {op}: the agent at {} refused: {}",
            t.http,
            text.trim()
        );
        return ExitCode::FAILURE;
    }
    let v: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("hearsay keys {op}: the agent answered something that is not a report: {e}");
            return ExitCode::FAILURE;
        }
    };
    let complete = v["complete"].as_bool().unwrap_or(false);
    if t.json {
        outln!("{v}");
        return if complete {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    let asked = v["asked"].as_array().map_or(0, Vec::len);
    let ok = v["ok"].as_object().cloned().unwrap_or_default();
    // key -> (members with it, members using it)
    let mut keys: std::collections::BTreeMap<&str, (usize, usize)> = Default::default();
    for ring in ok.values() {
        for (i, k) in ring.as_array().into_iter().flatten().enumerate() {
            let e = keys.entry(k.as_str().unwrap_or("?")).or_default();
            e.0 += 1;
            e.1 += usize::from(i == 0);
        }
    }
    match op {
        "install" => outln!("installed on {} of {asked} members", ok.len()),
        "use" => outln!("in use on {} of {asked} members", ok.len()),
        "remove" => outln!("removed on {} of {asked} members", ok.len()),
        _ => outln!("{} of {asked} members answered", ok.len()),
    }
    for (k, (has, uses)) in &keys {
        outln!("{k}  on {has} of {asked}, primary on {uses}");
    }
    for (who, why) in v["refused"].as_object().into_iter().flatten() {
        outln!("{who} refused: {}", why.as_str().unwrap_or("?"));
    }
    let silent: Vec<&str> = v["silent"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str())
        .collect();
    if !silent.is_empty() {
        outln!("no answer from {}", silent.join(", "));
    }
    if complete {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Why a call to the agent did not get an answer to act on.
#[derive(Debug)]
enum CallError {
    /// The token could not be read (a usage error).
    Token(String),
    /// Nothing answered, or not in HTTP.
    Transport(ureq::Error),
    /// 401: no token was sent (None), or the one from there was refused.
    Unauthorized(Option<TokenSource>),
    /// Another status where only 200 will do, and the answer's text.
    Status(u16, String),
}

impl From<ureq::Error> for CallError {
    fn from(e: ureq::Error) -> CallError {
        CallError::Transport(e)
    }
}

/// POSTs `body`; the status and the answer's text, errors included.
fn post(t: &Target, path: &str, body: &[u8]) -> Result<(u16, String), CallError> {
    request(t, "POST", path, body)
}

/// The token to send and where it came from: the file, else the
/// environment, else none.
fn token(t: &Target) -> Result<Option<(hearsay_agent::http::Token, TokenSource)>, CallError> {
    let mut notes = Vec::new();
    let token = crate::agent_cmd::api_token(t.http_token_file.as_deref(), None, &mut notes)
        .map_err(CallError::Token)?;
    for n in notes {
        eprintln!("hearsay: {n}");
    }
    let source = match &t.http_token_file {
        Some(p) => TokenSource::File(p.clone()),
        None => TokenSource::Env,
    };
    Ok(token.map(|tok| (tok, source)))
}

/// Any request, with the token if there is one; the status and the
/// answer's text, errors included but 401.
fn request(t: &Target, method: &str, path: &str, body: &[u8]) -> Result<(u16, String), CallError> {
    let mut r = call(t, method, path, body)?;
    Ok((r.status().as_u16(), r.body_mut().read_to_string()?))
}

/// Any request, with the token if there is one, over TLS with `--http-ca`;
/// the answer unread (a stream, for `monitor`), 401 as an error.
fn call(
    t: &Target,
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<ureq::http::Response<ureq::Body>, CallError> {
    let token = token(t)?;
    let mut config = ureq::Agent::config_builder().http_status_as_error(false);
    if let Some(ca) = &t.http_ca {
        config = config.tls_config(trust(ca).map_err(CallError::Token)?);
    }
    let agent: ureq::Agent = config.build().into();
    let url = if t.http.contains("://") {
        format!("{}{path}", t.http)
    } else {
        format!("http://{}{path}", t.http)
    };
    let bearer = token
        .as_ref()
        .map(|(tok, _)| format!("Bearer {}", tok.secret()));
    let r = match method {
        "GET" => agent.get(&url).header_opt(bearer).call()?,
        "PUT" => agent.put(&url).header_opt(bearer).send(body)?,
        "DELETE" => agent.delete(&url).header_opt(bearer).call()?,
        _ => agent.post(&url).header_opt(bearer).send(body)?,
    };
    if r.status().as_u16() == 401 {
        return Err(CallError::Unauthorized(token.map(|(_, from)| from)));
    }
    Ok(r)
}

/// TLS that trusts the certificates in the PEM file `ca` (and no other).
fn trust(ca: &std::path::Path) -> Result<ureq::tls::TlsConfig, String> {
    let pem = std::fs::read(ca).map_err(|e| format!("cannot read {}: {e}", ca.display()))?;
    let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(Ok(c)),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        })
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: not PEM: {e}", ca.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in it", ca.display()));
    }
    Ok(ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(certs)))
        .build())
}

/// An `Authorization` header when there is a value for it.
trait HeaderOpt: Sized {
    fn header_opt(self, bearer: Option<String>) -> Self;
}

impl<B> HeaderOpt for ureq::RequestBuilder<B> {
    fn header_opt(self, bearer: Option<String>) -> Self {
        match bearer {
            Some(b) => self.header("Authorization", b),
            None => self,
        }
    }
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "The map is replicated to every member (last writer wins, by hybrid
logical clock). Examples:
  hearsay kv set color blue
  hearsay kv get color --http 127.0.0.1:8947
  hearsay kv list --json
  hearsay kv del color"
)]
pub struct KvArgs {
    #[command(subcommand)]
    op: KvOp,
}

#[derive(Debug, clap::Subcommand)]
enum KvOp {
    /// Set KEY to VALUE cluster-wide
    Set {
        key: String,
        value: String,
        #[command(flatten)]
        target: Target,
    },
    /// KEY's value as this agent sees it (exit 1 if there is none)
    Get {
        key: String,
        #[command(flatten)]
        target: Target,
    },
    /// Delete KEY cluster-wide
    Del {
        key: String,
        #[command(flatten)]
        target: Target,
    },
    /// Every key and value, one `KEY VALUE` per line
    List {
        #[command(flatten)]
        target: Target,
    },
}

/// A key in a URL path.
fn path_key(k: &str) -> String {
    k.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn tags(a: TagsArgs) -> ExitCode {
    let (cmd, change, t) = match &a.op {
        None => ("", None, &a.target),
        Some(TagsOp::Set { tags, target }) => (
            " set",
            Some(
                serde_json::json!({ "set": tags.iter().cloned().collect::<std::collections::BTreeMap<_, _>>() }),
            ),
            target,
        ),
        Some(TagsOp::Del { keys, target }) => {
            (" del", Some(serde_json::json!({ "delete": keys })), target)
        }
    };
    let call = match &change {
        None => request(t, "GET", "/tags", b""),
        Some(c) => request(t, "POST", "/tags", c.to_string().as_bytes()),
    };
    let text = match call {
        Ok((200, text)) => text,
        Ok((_, text)) => {
            eprintln!("hearsay tags{cmd}: {}", text.trim());
            return ExitCode::FAILURE;
        }
        Err(e) => return fail(&format!("tags{cmd}"), t, e),
    };
    if t.json {
        outln!("{}", text.trim());
    } else {
        let m: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&text).unwrap_or_default();
        for (k, v) in m {
            outln!("{k}={}", v.as_str().unwrap_or_default());
        }
    }
    ExitCode::SUCCESS
}

pub fn kv(a: KvArgs) -> ExitCode {
    let (cmd, method, key, body, t) = match &a.op {
        KvOp::Set { key, value, target } => ("set", "PUT", Some(key), value.as_str(), target),
        KvOp::Get { key, target } => ("get", "GET", Some(key), "", target),
        KvOp::Del { key, target } => ("del", "DELETE", Some(key), "", target),
        KvOp::List { target } => ("list", "GET", None, "", target),
    };
    let path = key.map_or("/kv".to_string(), |k| format!("/kv/{}", path_key(k)));
    let (status, text) = match request(t, method, &path, body.as_bytes()) {
        Ok(r) => r,
        Err(e) => return fail(&format!("kv {cmd}"), t, e),
    };
    match (cmd, status) {
        ("list", 200) if !t.json => {
            let m: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&text).unwrap_or_default();
            for (k, v) in m {
                outln!("{k} {}", v.as_str().unwrap_or_default());
            }
        }
        ("list", 200) => outln!("{text}"),
        ("get", 200) if t.json => outln!("{}", serde_json::json!({ "value": text })),
        ("get", 200) => outln!("{text}"),
        ("get", 404) => {
            if t.json {
                outln!("{}", serde_json::json!({ "value": null }));
            }
            // As the HTTP API says it; exit 1 tells scripts.
            eprintln!(
                "hearsay kv get: no key {:?}",
                key.map_or("", |k| k.as_str())
            );
            return ExitCode::FAILURE;
        }
        (_, 200) => {
            if t.json {
                outln!("{}", serde_json::json!({"ok": true}));
            }
        }
        (_, _) => {
            eprintln!(
                "hearsay kv {cmd}: the agent at {} refused: {}",
                t.http,
                text.trim()
            );
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

fn fail(cmd: &str, t: &Target, e: CallError) -> ExitCode {
    match e {
        CallError::Token(e) => {
            eprintln!("hearsay {cmd}: {e}");
            return ExitCode::from(crate::EXIT_BAD_ARGS);
        }
        CallError::Transport(e) => eprintln!(
            "hearsay {cmd}: cannot reach the agent at {}: {e} (is an agent running with --http {}? its gossip port does not speak HTTP)",
            t.http, t.http
        ),
        CallError::Unauthorized(None) => eprintln!(
            "hearsay {cmd}: the agent at {} requires a token: pass --http-token-file or set {TOKEN_ENV}",
            t.http
        ),
        CallError::Unauthorized(Some(from)) => eprintln!(
            "hearsay {cmd}: the agent at {} refused the token from {from}: it is not the agent's token",
            t.http
        ),
        CallError::Status(status, body) => eprintln!(
            "hearsay {cmd}: the agent at {} answered {status}: {}",
            t.http,
            body.trim()
        ),
    }
    ExitCode::FAILURE
}

/// A GET that only 200 satisfies; the answer's text.
fn get(t: &Target, path: &str) -> Result<String, CallError> {
    match request(t, "GET", path, b"")? {
        (200, body) => Ok(body),
        (status, body) => Err(CallError::Status(status, body)),
    }
}

pub fn members(a: MembersArgs) -> ExitCode {
    let t = &a.target;
    let body = match get(t, "/members") {
        Ok(b) => b,
        Err(e) => return fail("members", t, e),
    };
    let v: serde_json::Value = match serde_json::from_str(&body) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("hearsay members: the agent's answer is not a member list ({e}): {body}");
            return ExitCode::FAILURE;
        }
    };
    let shown: Vec<&serde_json::Value> = v
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| wanted(&a, m))
        .collect();
    if t.json {
        outln!(
            "{}",
            serde_json::Value::Array(shown.into_iter().cloned().collect())
        );
        return ExitCode::SUCCESS;
    }
    let s = |m: &serde_json::Value, k: &str| m[k].as_str().unwrap_or("-").to_string();
    let tags = |m: &serde_json::Value| {
        let t: Vec<String> = m["tags"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect();
        if t.is_empty() {
            "-".to_string()
        } else {
            t.join(",")
        }
    };
    let n = |m: &serde_json::Value, k: &str| m[k].as_u64().map_or("-".into(), |x| x.to_string());
    outln!(
        "{:<16} {:<22} {:<8} {:<8} {:<17} {:<12} {}",
        "NAME",
        "ADDRESS",
        "ZONE",
        "STATE",
        "EPOCH",
        "INCARNATION",
        "TAGS"
    );
    for m in shown {
        let me = if m["self"] == true {
            " (this agent)"
        } else {
            ""
        };
        outln!(
            "{:<16} {:<22} {:<8} {:<8} {:<17} {:<12} {}{me}",
            s(m, "name"),
            s(m, "addr"),
            s(m, "zone"),
            s(m, "state"),
            n(m, "epoch"),
            n(m, "incarnation"),
            tags(m)
        );
    }
    ExitCode::SUCCESS
}

pub fn broadcast(a: BroadcastArgs) -> ExitCode {
    let t = &a.target;
    match post(t, "/broadcast", a.value.as_bytes()) {
        Ok((202 | 200, _)) => {
            if t.json {
                outln!("{}", serde_json::json!({"accepted": true}));
            }
            ExitCode::SUCCESS
        }
        Ok((_, body)) => {
            eprintln!(
                "hearsay broadcast: the agent at {} refused: {}",
                t.http,
                body.trim()
            );
            ExitCode::FAILURE
        }
        Err(e) => fail("broadcast", t, e),
    }
}

pub fn join(a: JoinArgs) -> ExitCode {
    let t = &a.target;
    let ms = a.timeout.0.as_millis();
    if ms == 0 || ms > 600_000 {
        eprintln!("hearsay join: --timeout must be more than 0 and at most 10m");
        return ExitCode::from(crate::EXIT_BAD_ARGS);
    }
    let body = serde_json::json!({"addrs": a.addrs, "timeout_ms": ms as u64}).to_string();
    match post(t, "/join", body.as_bytes()) {
        Ok((200, body)) => {
            if t.json {
                outln!("{}", body.trim());
            } else {
                let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                outln!(
                    "joined through {}",
                    v["joined"].as_str().unwrap_or("a member")
                );
            }
            ExitCode::SUCCESS
        }
        Ok((_, body)) => {
            eprintln!("hearsay join: {}", body.trim());
            ExitCode::FAILURE
        }
        Err(e) => fail("join", t, e),
    }
}

pub fn query(a: QueryArgs) -> ExitCode {
    use std::io::{BufRead, Read, Write};
    let t = &a.target;
    let payload = match a.payload.as_deref() {
        Some("-") => {
            let mut b = String::new();
            let max = hearsay_core::cluster::MAX_PAYLOAD as u64 + 1;
            if let Err(e) = std::io::stdin().lock().take(max).read_to_string(&mut b) {
                eprintln!("hearsay query: cannot read the payload from standard input: {e}");
                return ExitCode::FAILURE;
            }
            b
        }
        Some(p) => p.to_string(),
        None => String::new(),
    };
    let ms = a.timeout.0.as_millis();
    if ms == 0 || a.timeout.0 > hearsay_agent::query::MAX_TIMEOUT {
        eprintln!("hearsay query: --timeout must be more than 0 and at most 5m");
        return ExitCode::from(crate::EXIT_BAD_ARGS);
    }
    let body = serde_json::json!({
        "name": a.name,
        "payload": payload,
        "nodes": a.nodes,
        "tags": a.tags.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
        "timeout_ms": ms as u64,
    });
    let mut r = match call(t, "POST", "/query", body.to_string().as_bytes()) {
        Ok(r) => r,
        Err(e) => return fail("query", t, e),
    };
    if r.status().as_u16() != 200 {
        let status = r.status().as_u16();
        let body = r.body_mut().read_to_string().unwrap_or_default();
        eprintln!("hearsay query: {}", body.trim());
        return if status == 400 {
            ExitCode::from(crate::EXIT_BAD_ARGS)
        } else {
            ExitCode::FAILURE
        };
    }
    let reader = std::io::BufReader::new(r.body_mut().as_reader());
    let mut out = std::io::stdout().lock();
    let mut summary = None;
    for line in reader.lines() {
        let Ok(line) = line else { break };
        let Ok(u) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let text = if t.json {
            line.clone()
        } else {
            let from = u["from"].as_str().unwrap_or("?");
            match u["type"].as_str() {
                Some("ack") if u["answers"] == true => format!("ack from {from}"),
                Some("ack") => format!("ack from {from} (no handler for this query)"),
                Some("answer") => format!(
                    "answer from {from}: {}",
                    u["payload"].as_str().unwrap_or("").trim_end()
                ),
                Some("failed") => {
                    format!("failed at {from}: {}", u["error"].as_str().unwrap_or(""))
                }
                Some("done") => query_summary(&u),
                _ => continue,
            }
        };
        if u["type"] == "done" {
            summary = Some(u);
        }
        if writeln!(out, "{text}").and_then(|()| out.flush()).is_err() {
            return ExitCode::SUCCESS;
        }
    }
    match summary {
        Some(s) if s["missing"].as_array().is_some_and(Vec::is_empty) => ExitCode::SUCCESS,
        Some(_) => ExitCode::FAILURE,
        None => {
            eprintln!(
                "hearsay query: the agent at {} closed the stream before the query ended",
                t.http
            );
            ExitCode::FAILURE
        }
    }
}

/// The last line of `hearsay query`: counts, then who did not answer.
fn query_summary(s: &serde_json::Value) -> String {
    let n = |k: &str| s[k].as_array().map_or(0, Vec::len);
    let names = |k: &str| -> String {
        s[k].as_array()
            .map(|v| {
                v.iter()
                    .filter_map(|x| x.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    let mut line = format!(
        "asked {}, acked {}, answered {}, failed {}, missing {} ({} ms)",
        n("asked"),
        n("acked"),
        n("answered"),
        n("failed"),
        n("missing"),
        s["elapsed_ms"]
    );
    if n("missing") > 0 {
        line += &format!("\nmissing (never acknowledged): {}", names("missing"));
    }
    if n("late") > 0 {
        line += &format!(
            "\nlate (acknowledged, no answer in time): {}",
            names("late")
        );
    }
    line
}

pub fn monitor(a: MonitorArgs) -> ExitCode {
    use std::io::{BufRead, Write};
    let t = &a.target;
    let path = format!("/monitor?level={}", a.level.as_str().to_lowercase());
    let mut r = match call(t, "GET", &path, b"") {
        Ok(r) => r,
        Err(e) => return fail("monitor", t, e),
    };
    if r.status().as_u16() != 200 {
        let body = r.body_mut().read_to_string().unwrap_or_default();
        eprintln!("hearsay monitor: {}", body.trim());
        return ExitCode::FAILURE;
    }
    let reader = std::io::BufReader::new(r.body_mut().as_reader());
    let mut out = std::io::stdout().lock();
    for line in reader.lines() {
        let Ok(line) = line else { break };
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            // The reader of our output went (a closed pipe): stop quietly.
            return ExitCode::SUCCESS;
        }
    }
    eprintln!("hearsay monitor: the agent at {} closed the stream", t.http);
    ExitCode::SUCCESS
}

pub fn reachability(a: ReachabilityArgs) -> ExitCode {
    let t = &a.target;
    let ms = a.timeout.0.as_millis();
    if !(100..=60_000).contains(&ms) {
        eprintln!("hearsay reachability: --timeout must be 100ms to 60s");
        return ExitCode::from(crate::EXIT_BAD_ARGS);
    }
    let body = match get(t, &format!("/reachability?timeout_ms={ms}")) {
        Ok(b) => b,
        Err(e) => return fail("reachability", t, e),
    };
    let Ok(serde_json::Value::Array(found)) = serde_json::from_str::<serde_json::Value>(&body)
    else {
        eprintln!(
            "hearsay reachability: the agent at {} answered something else (an agent older than this client?)",
            t.http
        );
        return ExitCode::FAILURE;
    };
    let fine = |m: &serde_json::Value| m["udp_ms"].is_number() && m["tcp_ms"].is_number();
    let all_fine = found.iter().all(fine);
    if t.json {
        outln!("{}", serde_json::Value::Array(found));
    } else {
        outln!(
            "{:<16} {:<22} {:>8} {:>8}  VERDICT",
            "NAME",
            "ADDRESS",
            "UDP",
            "TCP"
        );
        let ms =
            |v: &serde_json::Value| v.as_f64().map_or("-".to_string(), |x| format!("{x:.1}ms"));
        for m in &found {
            outln!(
                "{:<16} {:<22} {:>8} {:>8}  {}",
                m["name"].as_str().unwrap_or("?"),
                m["addr"].as_str().unwrap_or("?"),
                ms(&m["udp_ms"]),
                ms(&m["tcp_ms"]),
                m["verdict"].as_str().unwrap_or("")
            );
        }
        let bad = found.iter().filter(|m| !fine(m)).count();
        outln!(
            "{} members probed; {}",
            found.len(),
            if bad == 0 {
                "every one reached directly over UDP and TCP".to_string()
            } else {
                format!("{bad} not reached directly")
            }
        );
    }
    if all_fine {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

pub fn force_leave(a: ForceLeaveArgs) -> ExitCode {
    let path = format!("/force-leave/{}", path_key(&a.name));
    let said = format!("{} is recorded as left; the others are told", a.name);
    post_and_say("force-leave", &a.target, &path, &said)
}

pub fn leave(a: LeaveArgs) -> ExitCode {
    post_and_say("leave", &a.target, "/leave", "left; the agent stops")
}

/// An empty POST to `path`: `said` on success, the agent's answer on
/// standard error otherwise.
fn post_and_say(cmd: &str, t: &Target, path: &str, said: &str) -> ExitCode {
    match post(t, path, b"") {
        Ok((200, _)) => {
            outln!("{said}");
            ExitCode::SUCCESS
        }
        Ok((_, body)) => {
            eprintln!("hearsay {cmd}: {}", body.trim());
            ExitCode::FAILURE
        }
        Err(e) => fail(cmd, t, e),
    }
}

pub fn event(a: EventArgs) -> ExitCode {
    let t = &a.target;
    let payload = match a.payload {
        Some(p) => p.into_bytes(),
        None => {
            use std::io::{IsTerminal, Read};
            let mut b = Vec::new();
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                eprintln!(
                    "hearsay event: reading the payload from the terminal (end with Ctrl-D; give it as an argument to skip this)"
                );
            }
            // One byte past the limit tells a payload too large from one
            // just at it.
            if let Err(e) = stdin
                .lock()
                .take(hearsay_core::cluster::MAX_PAYLOAD as u64 + 1)
                .read_to_end(&mut b)
            {
                eprintln!("hearsay event: cannot read the payload from standard input: {e}");
                return ExitCode::FAILURE;
            }
            b
        }
    };
    let path = format!(
        "/event/{}{}",
        path_key(&a.name),
        if a.coalesce { "?coalesce=true" } else { "" }
    );
    match post(t, &path, &payload) {
        Ok((202 | 200, body)) => {
            if t.json {
                outln!("{}", body.trim());
            }
            ExitCode::SUCCESS
        }
        Ok((_, body)) => {
            eprintln!(
                "hearsay event: the agent at {} refused: {}",
                t.http,
                body.trim()
            );
            ExitCode::FAILURE
        }
        Err(e) => fail("event", t, e),
    }
}

pub fn events(a: EventsArgs) -> ExitCode {
    let t = &a.target;
    let body = match get(t, "/user-events") {
        Ok(b) => b,
        Err(e) => return fail("events", t, e),
    };
    let all: Vec<serde_json::Value> = match serde_json::from_str(&body) {
        Ok(v) => v,
        Err(e) => {
            eprintln!(
                "hearsay events: the agent at {} answered something that is not a list of events: {e}",
                t.http
            );
            return ExitCode::FAILURE;
        }
    };
    let wanted = all
        .into_iter()
        .filter(|e| a.name.as_ref().is_none_or(|n| e["name"] == n.as_str()));
    for e in wanted {
        if t.json {
            outln!("{e}");
        } else {
            outln!(
                "{}\t{}\t{}\t{}",
                e["lamport"],
                e["origin"].as_str().unwrap_or_default(),
                e["name"].as_str().unwrap_or_default(),
                e["payload"].as_str().unwrap_or_default()
            );
        }
    }
    ExitCode::SUCCESS
}

pub fn info(a: InfoArgs) -> ExitCode {
    let t = &a.target;
    let body = match get(t, "/info") {
        Ok(b) => b,
        Err(e) => return fail("info", t, e),
    };
    let v: serde_json::Value = match serde_json::from_str(&body) {
        Ok(v) => v,
        Err(e) => {
            eprintln!(
                "hearsay info: the agent at {} answered something that is not its info (an agent older than this client?): {e}",
                t.http
            );
            return ExitCode::FAILURE;
        }
    };
    if t.json {
        outln!("{v}");
        return ExitCode::SUCCESS;
    }
    let text = |x: &serde_json::Value| match x {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".into(),
        serde_json::Value::Object(m) if m.is_empty() => "-".into(),
        serde_json::Value::Object(m) => m
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().map_or(v.to_string(), String::from)))
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    };
    for (k, label) in [
        ("name", "name"),
        ("cluster", "cluster"),
        ("bind", "gossip on"),
        ("advertise", "advertised as"),
        ("protocol", "protocol"),
        ("epoch", "epoch"),
        ("incarnation", "incarnation"),
        ("strategy", "broadcast"),
        ("members", "members"),
        ("health", "health"),
        ("join_problem", "not joined"),
        ("keys", "gossip keys"),
        ("tags", "tags"),
        ("kv_keys", "map keys"),
        ("data_dir", "data dir"),
        ("event_handlers", "event handlers"),
        ("queues", "queues"),
        ("delivered", "delivered"),
        ("user_events", "user events"),
    ] {
        outln!("{label:<15} {}", text(&v[k]));
    }
    ExitCode::SUCCESS
}

pub fn read(a: ReadArgs) -> ExitCode {
    let t = &a.target;
    match get(t, "/messages") {
        Ok(body) if t.json => {
            let lines: Vec<&str> = body.lines().collect();
            outln!("{}", serde_json::json!(lines));
            ExitCode::SUCCESS
        }
        Ok(body) => {
            out!("{body}");
            ExitCode::SUCCESS
        }
        Err(e) => fail("read", t, e),
    }
}
