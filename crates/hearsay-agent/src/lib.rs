//! `hearsay-agent`: the tokio shell around hearsay's sans-IO cluster
//! member ([`hearsay_core::cluster::ClusterNode`]: the core node over SWIM
//! with Lifeguard, broadcasting with one of the seven strategies, plumtree
//! by default), over UDP. A library first: a service embeds it with [`Agent::start`], asks
//! for [`Agent::members`], calls [`Agent::broadcast`] and reads what was
//! delivered; the `hearsay agent` command is a thin user of the same API
//! with an HTTP front (`http::router`; a bearer token in
//! `http::ApiConfig` closes every call but `/health` to callers without
//! it). The HTTP front is the `http` cargo feature, on by default; an
//! application with its own API leaves it out (`default-features =
//! false`) and with it axum, hyper and rustls.
//!
//! # Quick start
//!
//! Two members on loopback: the second joins the first, broadcasts, and
//! the first delivers it, then a query one answers.
//!
//! ```
//! use hearsay_agent::{Agent, AgentConfig, query};
//! use std::time::Duration;
//!
//! # fn main() -> anyhow::Result<()> {
//! tokio::runtime::Runtime::new()?.block_on(async {
//!     let any = "127.0.0.1:0".parse()?;
//!     let a = Agent::start(AgentConfig::new("a").bind(any)).await?;
//!     let b = Agent::start(AgentConfig::new("b").bind(any).join([a.local_addr()])).await?;
//!     b.ready(Duration::from_secs(5)).await?; // joined, or why not
//!
//!     let mut delivered = a.deliveries();
//!     b.broadcast(b"hello".to_vec()).await?;
//!     let d = delivered.recv().await?;
//!     assert_eq!((d.origin.as_str(), d.data.as_slice()), ("b", b"hello".as_slice()));
//!
//!     // a answers queries named "version"; b asks every member.
//!     let mut asked = a.answer_queries().await?;
//!     tokio::spawn(async move {
//!         while let Some(q) = asked.recv().await {
//!             q.respond(b"1.0".to_vec());
//!         }
//!     });
//!     let ask = query::Request { name: "version".into(), ..Default::default() };
//!     let mut updates = b.query(ask).await?;
//!     while let Some(u) = updates.recv().await {
//!         if let query::Update::Done(summary) = u {
//!             assert_eq!(summary.answered, ["a"]);
//!         }
//!     }
//!     b.shutdown().await; // leaves gracefully: a sees "left", not a failure
//!     Ok(())
//! })
//! # }
//! ```
//!
//! Datagrams are MessagePack envelopes behind a versioned header, sealed
//! with XChaCha20-Poly1305 when the agent has keys ([`keyring`]). What does
//! not fit a 1,400-byte datagram (state syncs of large clusters, the
//! key-value map's full state) goes over TCP on the same port ([`stream`]).

#![warn(missing_docs)]

pub mod delegate;
mod error;
pub mod handlers;
#[cfg(feature = "http")]
pub mod http;
mod joins;
pub mod keyquery;
pub mod kv;
#[doc(hidden)]
pub mod lossy;
pub mod metrics;
pub mod monitor;
pub mod query;
mod query_loop;
pub mod reach;
pub mod store;
pub mod stream;
mod throttle;

use anyhow::{Context, Result};
use codec::{Codec, Datagram};
pub use delegate::{Delegate, StateDelegate};
pub use error::Error;
use hearsay_core::cluster::{ClusterConfig, ClusterMsg, ClusterNode, EventOrder, Payload};
/// The settings' types, so that an embedder needs no other hearsay crate.
pub use hearsay_core::dissemination::{Preset, StrategyKind};
use hearsay_core::id::{Epoch, NodeId};
use hearsay_core::membership::{Meta, Seeds, Status, SwimConfig};
pub use hearsay_core::membership::{ProbeOrder, SwimPreset};
use hearsay_core::outbox::Outbox;
use hearsay_core::time::Instant as CoreInstant;
pub use hearsay_wire::keys::KeyOp;
pub use hearsay_wire::{codec, keyring};
pub use keyquery::Report as KeyReport;
pub use keyring::{Key, Keyring};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

/// An agent's settings: [`AgentConfig::new`] gives the defaults, then set
/// the fields you need (more will come; a literal would break).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct AgentConfig {
    /// This member's name, unique in the cluster: an agent that comes
    /// with a name a live member holds at another address is refused.
    pub name: String,
    /// The cluster's name (default "hearsay"): datagrams of another
    /// cluster are refused, so clusters can share a network.
    pub cluster: String,
    /// Where to listen, UDP and TCP on the same port (port 0: a free
    /// one). Default 127.0.0.1:7946.
    pub bind: SocketAddr,
    /// The address other members use (behind NAT or in containers); the
    /// bound one when not given.
    pub advertise: Option<SocketAddr>,
    /// Members to join through at start (one that answers is enough),
    /// asked again, backing off, until one does. Empty: this agent is the
    /// first member (with a data dir, it also rejoins the members it kept).
    pub join: Vec<SocketAddr>,
    /// Membership timing (probe period and timeout, suspicion): `Lan` by
    /// default; `Wan` probes less often and waits longer.
    pub preset: SwimPreset,
    /// Whom to probe each period; None: the preset's (the ring). Members
    /// of one cluster may differ.
    pub probes: Option<ProbeOrder>,
    /// How broadcasts spread (None: plumtree). Every member of a cluster
    /// must use the same.
    pub strategy: Option<StrategyKind>,
    /// The broadcast timing (None: latency, few hops; efficient: few
    /// messages). Every member of a cluster must use the same.
    pub broadcast_preset: Option<Preset>,
    /// This member's zone (a rack or datacenter label): most probes and
    /// gossip stay within it. None: no zone.
    pub zone: Option<String>,
    /// What this member tells the others about itself (role, version...):
    /// at most [`hearsay_core::membership::MAX_TAGS_BYTES`]; changed at
    /// runtime with [`Agent::set_tags`].
    pub tags: BTreeMap<String, String>,
    /// Gossip keys, the primary first; none: clear text.
    pub keys: Vec<Key>,
    /// Where to keep the members, the keyring, the tags and the key-value map across
    /// restarts ([`store`]); none: everything is forgotten at exit. A
    /// restarted agent rejoins the members it knew without `join`, an
    /// acknowledged map write survives kill -9, and a broadcast or event
    /// sent in the last 2 minutes is sent again (it was acknowledged once
    /// kept).
    pub data_dir: Option<std::path::PathBuf>,
    /// Delivered payloads kept for [`Agent::messages`], at most (the
    /// oldest go first); 0 keeps none, for an application that only reads
    /// [`Agent::deliveries`]. Default 100,000.
    pub kept_messages: usize,
    /// The same bound in payload bytes (0 keeps none). Default 16 MiB.
    pub kept_bytes: usize,
    /// Largest user event payload this agent sends, in bytes (at most
    /// [`hearsay_core::cluster::MAX_PAYLOAD`], 64 KiB, the default; past a
    /// datagram an event goes over TCP). Serf's default is 512.
    pub event_max_bytes: usize,
    /// Commands run for membership changes, user events and queries
    /// (Serf's `-event-handler`; see [`handlers`]). None by default.
    pub event_handlers: Vec<handlers::Handler>,
    /// Event handlers running at once, at most, and as many query handlers
    /// besides (default 4; 0 counts as 1).
    pub handler_concurrency: usize,
    /// A handler still running after this is killed (default 60 s).
    pub handler_timeout: std::time::Duration,
    /// User events sent with `coalesce` wait this long for a later one of
    /// the same name before their handlers run (zero: every one runs).
    pub handler_coalesce: std::time::Duration,
    /// The application's state, traded with members that join and now and
    /// then with a random one ([`delegate`]); None: nothing is traded.
    pub delegate: Option<Delegate>,
    /// How often this member trades states with one random alive member
    /// (default 30 s, memberlist's push-pull period).
    pub state_sync: std::time::Duration,
    /// Tests only: accept [`Agent::cut`], which drops traffic to and from
    /// chosen addresses (a partition without touching the host's network).
    #[doc(hidden)]
    pub test_faults: bool,
    /// Tests only: drop and delay received datagrams ([`lossy`]), for
    /// soaks where `tc netem` is not to be had.
    #[doc(hidden)]
    pub test_link: lossy::Faults,
}

impl Default for AgentConfig {
    /// [`AgentConfig::new`] named after this host (its `HOSTNAME`, else
    /// "hearsay"), as Serf names a node.
    fn default() -> AgentConfig {
        let host = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "hearsay".into());
        AgentConfig::new(host)
    }
}

impl AgentConfig {
    /// Joins the cluster through these members (builder style: `AgentConfig::new("a").bind(addr).join([seed])`).
    pub fn join(mut self, seeds: impl IntoIterator<Item = SocketAddr>) -> AgentConfig {
        self.join.extend(seeds);
        self
    }

    /// Binds (UDP and TCP) to `addr`; port 0 picks a free one.
    pub fn bind(mut self, addr: SocketAddr) -> AgentConfig {
        self.bind = addr;
        self
    }

    /// Sets tag `key` to `value`.
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> AgentConfig {
        self.tags.insert(key.into(), value.into());
        self
    }

    /// Seals every datagram with these keys (the first is the primary).
    pub fn keys(mut self, keys: Vec<Key>) -> AgentConfig {
        self.keys = keys;
        self
    }

    /// Keeps members, keyring, tags, the map and what was sent lately in
    /// `dir` across restarts.
    pub fn data_dir(mut self, dir: impl Into<std::path::PathBuf>) -> AgentConfig {
        self.data_dir = Some(dir.into());
        self
    }

    /// Member `name` of cluster "hearsay" on 127.0.0.1:7946, joining
    /// nobody (the first member), lan timing, plumtree, clear text.
    pub fn new(name: impl Into<String>) -> AgentConfig {
        AgentConfig {
            name: name.into(),
            cluster: "hearsay".into(),
            bind: SocketAddr::from(([127, 0, 0, 1], 7946)),
            advertise: None,
            join: Vec::new(),
            preset: SwimPreset::Lan,
            probes: None,
            strategy: None,
            broadcast_preset: None,
            zone: None,
            tags: BTreeMap::new(),
            keys: Vec::new(),
            data_dir: None,
            kept_messages: 100_000,
            kept_bytes: 16 * 1024 * 1024,
            event_max_bytes: hearsay_core::cluster::MAX_PAYLOAD,
            event_handlers: Vec::new(),
            handler_concurrency: 4,
            handler_timeout: std::time::Duration::from_secs(60),
            handler_coalesce: std::time::Duration::ZERO,
            delegate: None,
            state_sync: std::time::Duration::from_secs(30),
            test_faults: false,
            test_link: lossy::Faults::default(),
        }
    }
}

/// One member as this agent sees it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MemberInfo {
    /// The member's name, unique in the cluster.
    pub name: String,
    /// Where it gossips (`ip:port`, the address it advertises); None: it
    /// gave none.
    pub addr: Option<String>,
    /// Its zone (a rack or datacenter label); None: no zone.
    pub zone: Option<String>,
    /// What it tells the others about itself (role, version...), as last
    /// heard.
    pub tags: BTreeMap<String, String>,
    /// Its state as this agent sees it.
    pub state: MemberState,
    /// The member's life (its start time in microseconds, as it chose it):
    /// a restart is a new epoch.
    pub epoch: u64,
    /// Its incarnation in that life: bumped to refute a suspicion.
    pub incarnation: u32,
    /// This agent itself.
    #[serde(rename = "self")]
    pub is_self: bool,
}

/// A member's state as this agent sees it (in JSON: its name, lowercase).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberState {
    /// Up, as far as this agent knows.
    Alive,
    /// Suspected of failure: it has until its suspicion times out to
    /// refute it.
    Suspect,
    /// Declared failed (its suspicion was not refuted); alive again if it
    /// comes back.
    Dead,
    /// Left the cluster gracefully, or was forced out
    /// ([`Agent::force_leave`]).
    Left,
}

/// A membership change as this agent saw it (in JSON: its name,
/// lowercase).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// Became known, alive.
    Joined,
    /// Came under suspicion of failure.
    Suspect,
    /// Refuted a suspicion, or came back.
    Alive,
    /// New tags (or another address).
    Updated,
    /// Declared dead, by this agent or by another's word.
    Dead,
    /// Left gracefully, or was forced out ([`Agent::force_leave`]).
    Left,
    /// Forgotten after being dead or left for a while.
    Removed,
}

/// The lowercase names, for text and for comparing with `"alive"`.
macro_rules! named {
    ($t:ty { $($v:ident => $n:literal),* $(,)? }) => {
        impl $t {
            /// The lowercase name, as in JSON.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $n),* }
            }
        }
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl PartialEq<&str> for $t {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    };
}
named!(MemberState { Alive => "alive", Suspect => "suspect", Dead => "dead", Left => "left" });
named!(Change {
    Joined => "joined",
    Suspect => "suspect",
    Alive => "alive",
    Updated => "updated",
    Dead => "dead",
    Left => "left",
    Removed => "removed",
});

/// A broadcast as delivered: its bytes and where it came from. Each is
/// delivered once; `(origin, epoch, seq)` names it across the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The member that broadcast it.
    pub origin: String,
    /// The origin's life: its start time in unix microseconds (a restart
    /// is a new one).
    pub epoch: u64,
    /// Its number in that life, from 1 (user events take numbers from the
    /// same count, so a listener of broadcasts may see gaps).
    pub seq: u64,
    /// The bytes broadcast.
    pub data: Vec<u8>,
}

/// A message another member sent to this one alone ([`Agent::send_to`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectMessage {
    /// The sender's member name.
    pub from: String,
    /// The bytes it sent.
    pub data: Vec<u8>,
}

/// A membership change as this agent saw it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MemberEvent {
    /// The member that changed.
    pub name: String,
    /// What happened to it.
    pub change: Change,
    /// Which life of it (its epoch; absent for a removal): a restarted
    /// member's earlier life may die after its new one joined.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
    /// For a suspicion or a death: who made it, as recorded here (to
    /// trace a false positive to the member whose probes failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// A user event (`hearsay event NAME PAYLOAD`), as every agent delivers
/// it: once, and in order per origin.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct UserEvent {
    /// The event's name (1 to 128 bytes, no control characters), which
    /// `user:NAME` handlers match.
    pub name: String,
    /// What came with it (at most 64 KiB; in JSON as text, invalid UTF-8
    /// replaced).
    #[serde(serialize_with = "lossy")]
    pub payload: Vec<u8>,
    /// The member that sent it.
    pub origin: String,
    /// Its Lamport time (Serf's `ltime`): an event sent after another was
    /// delivered at its sender has a larger one.
    pub lamport: u64,
    /// Sent with `--coalesce` (handlers may run once for a burst).
    pub coalesce: bool,
}

/// Payload bytes as text (invalid UTF-8 replaced), for JSON.
pub(crate) fn lossy<S: serde::Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(b))
}

/// How long a user event that came before one it follows (from the same
/// origin) waits for it.
const EVENT_ORDER_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

fn member_event(e: hearsay_core::membership::Event) -> MemberEvent {
    use hearsay_core::membership::Event as E;
    let (id, change, inc) = match e {
        E::Joined(id, i) => (id, Change::Joined, Some(i)),
        E::Suspected(id, i) => (id, Change::Suspect, Some(i)),
        E::Alive(id, i) => (id, Change::Alive, Some(i)),
        E::Updated(id, i) => (id, Change::Updated, Some(i)),
        E::Died(id, i) => (id, Change::Dead, Some(i)),
        E::Left(id, i) => (id, Change::Left, Some(i)),
        E::Removed(id) => (id, Change::Removed, None),
    };
    MemberEvent {
        name: id.to_string(),
        change,
        epoch: inc.map(|i| i.epoch.0),
        by: None,
    }
}

/// Buffered per subscriber; a subscriber that falls further behind loses
/// the oldest (and its receiver says how many).
const STREAM_BUFFER: usize = 4096;

/// A message's size in the datagram's encoding (for per-type byte counts).
fn encoded_len<T: serde::Serialize>(m: &T) -> usize {
    rmp_serde::to_vec_named(m).map_or(0, |v| v.len())
}

/// Addresses of senders that are not (yet) members kept between two
/// prunings of the address book.
const MAX_STRANGERS: usize = 64;

/// What the agent exposes without a round trip to its loop.
#[derive(Debug, Default)]
struct Shared {
    members: Vec<MemberInfo>,
    /// Payloads delivered, with the wall-clock time (unix microseconds)
    /// this agent took each in.
    delivered: Vec<(u64, Vec<u8>)>,
    delivered_bytes: usize,
    /// Membership changes seen, timed the same way.
    events: Vec<(u64, MemberEvent)>,
    /// User events delivered, timed the same way.
    user_events: Vec<(u64, UserEvent)>,
    /// The keyring in base64, the primary first.
    keys: Vec<String>,
    kv: std::collections::BTreeMap<String, String>,
    metrics: metrics::Snapshot,
    /// Why this agent has not joined its seeds yet (None once it has).
    join_problem: Option<String>,
}

/// Most payloads kept for `messages()`, and most bytes of them.
/// Membership events kept for `timed_events()`, at most.
const MAX_KEPT: usize = 100_000;

enum Cmd {
    Broadcast(Vec<u8>, oneshot::Sender<Result<(), String>>),
    /// A user event: its name, payload and whether handlers may coalesce
    /// it; answered with its Lamport time.
    Event(String, Vec<u8>, bool, oneshot::Sender<Result<u64, String>>),
    Keys(KeyOp, oneshot::Sender<Result<(), String>>),
    /// A change (or, with `None`, a listing) across every live member.
    ClusterKeys(Option<KeyOp>, oneshot::Sender<Result<KeyReport, String>>),
    Cut(Vec<SocketAddr>, oneshot::Sender<Result<(), String>>),
    /// Sets a key, or deletes it with `None`.
    Kv(String, Option<String>, oneshot::Sender<Result<(), String>>),
    Leave(oneshot::Sender<()>),
    /// Joins through these addresses, within this time.
    Join(Vec<SocketAddr>, std::time::Duration, joins::Reply),
    /// Records a failed member as left, and says so.
    ForceLeave(String, oneshot::Sender<Result<(), String>>),
    /// A reachability round of this long.
    Reach(std::time::Duration, oneshot::Sender<Vec<reach::Reached>>),
    /// Sets these tags and deletes those.
    Tags(TagsChange, oneshot::Sender<Result<(), String>>),
    /// Sends bytes to one member.
    SendTo(String, Vec<u8>, oneshot::Sender<Result<(), String>>),
    /// Asks a query; its updates go to the sender.
    Query(
        query::Checked,
        mpsc::Sender<query::Update>,
        oneshot::Sender<Result<(), String>>,
    ),
    /// Queries asked of this agent go to the application from now on.
    AnswerQueries(
        mpsc::Sender<query::Incoming>,
        oneshot::Sender<Result<(), String>>,
    ),
}

/// A change of this agent's tags: set some, delete others.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagsChange {
    /// Tags to add or overwrite.
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    /// Tag keys to remove (a key not there is no error). Removed before
    /// `set` is applied: a key in both ends up set.
    #[serde(default)]
    pub delete: Vec<String>,
}

/// The core's form of the tags.
fn tags_of(tags: &BTreeMap<String, String>) -> BTreeMap<Box<str>, Box<str>> {
    tags.iter()
        .map(|(k, v)| (k.as_str().into(), v.as_str().into()))
        .collect()
}

fn shown_tags(tags: &BTreeMap<String, String>) -> String {
    if tags.is_empty() {
        return "none".into();
    }
    let kv: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
    kv.join(",")
}

fn tags_from(tags: &BTreeMap<Box<str>, Box<str>>) -> BTreeMap<String, String> {
    tags.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A running agent; dropping it stops the loop.
pub struct Agent {
    acceptor: tokio::task::JoinHandle<()>,
    shared: Arc<Mutex<Shared>>,
    deliveries: tokio::sync::broadcast::Sender<Delivery>,
    direct: tokio::sync::broadcast::Sender<DirectMessage>,
    events: tokio::sync::broadcast::Sender<MemberEvent>,
    user_stream: tokio::sync::broadcast::Sender<UserEvent>,
    cmds: mpsc::Sender<Cmd>,
    local: SocketAddr,
    task: tokio::task::JoinHandle<()>,
    /// What the data dir gave back at start, in words.
    restored: Option<String>,
    /// What `info()` says of the agent's setup.
    setup: Setup,
    /// Set once this agent has left (for whoever runs it: stop then).
    left: tokio::sync::watch::Sender<bool>,
    /// Set when it starts to leave: from then on it takes no more work.
    leaving: std::sync::atomic::AtomicBool,
}

/// The settings [`Agent::info`] reports.
#[derive(Clone, Debug)]
struct Setup {
    name: String,
    cluster: String,
    advertise: SocketAddr,
    strategy: String,
    data_dir: Option<std::path::PathBuf>,
    handlers: usize,
    /// Started with members to join (given, or kept in the data dir).
    seeded: bool,
}

/// What `hearsay info` shows: this agent's identity, setup and state (an
/// operator's first look, as `serf info`).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Info {
    /// This agent's member name.
    pub name: String,
    /// The cluster's name.
    pub cluster: String,
    /// The gossip address bound (UDP and TCP).
    pub bind: String,
    /// The address the other members use: the advertised one, else the
    /// bound one.
    pub advertise: Option<String>,
    /// The datagram format version spoken (agents of another refuse it).
    pub protocol: u8,
    /// This agent's life: its start time in unix microseconds.
    pub epoch: u64,
    /// Its incarnation in that life: bumped to refute a suspicion or to
    /// announce new tags.
    pub incarnation: u32,
    /// How broadcasts spread, with their timing: `strategy (preset)`.
    pub strategy: String,
    /// Members by state, this one included.
    pub members: BTreeMap<&'static str, usize>,
    /// Lifeguard's local health score (0 is healthy; higher: this agent
    /// is slow to answer, so it waits longer before suspecting others).
    pub health: u32,
    /// Why this agent has not joined its seeds yet (None: joined).
    pub join_problem: Option<String>,
    /// Gossip keys installed (0: clear text).
    pub keys: usize,
    /// This agent's tags.
    pub tags: BTreeMap<String, String>,
    /// Keys in the replicated map, as this agent sees it.
    pub kv_keys: usize,
    /// Where the agent keeps its state across restarts (None: nowhere).
    pub data_dir: Option<String>,
    /// Event handlers configured.
    pub event_handlers: usize,
    /// Items waiting, by queue.
    pub queues: BTreeMap<&'static str, usize>,
    /// Broadcast payloads delivered here so far (own ones included).
    pub delivered: u64,
    /// User events delivered here so far.
    pub user_events: u64,
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.task.abort();
        self.acceptor.abort();
    }
}

fn state_name(s: Status) -> MemberState {
    match s {
        Status::Alive => MemberState::Alive,
        Status::Suspect => MemberState::Suspect,
        Status::Dead => MemberState::Dead,
        Status::Left => MemberState::Left,
    }
}

/// What a call on an agent that has left answers.
const LEFT: &str = "this agent has left the cluster (leave() was called): it takes no more work";

/// Why a keyring change is refused without keys.
const CLEAR_TEXT: &str = "this agent gossips in clear text; start every agent with --key to encrypt (a running cluster cannot switch encryption on)";

/// Where a member said it can be reached.
fn meta_addr(meta: &Meta) -> Option<SocketAddr> {
    meta.addr.as_deref()?.parse().ok()
}

/// The UDP socket and the TCP listener on one port. With port 0 the
/// kernel picks a free UDP port, which TCP may already use (an outgoing
/// connection's ephemeral port): then both go back and another is tried.
async fn bind_pair(addr: SocketAddr) -> Result<(UdpSocket, tokio::net::TcpListener)> {
    const TRIES: usize = 32;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let sock = UdpSocket::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        let local = sock.local_addr()?;
        match tokio::net::TcpListener::bind(local).await {
            Ok(l) => return Ok((sock, l)),
            Err(e)
                if addr.port() == 0
                    && e.kind() == std::io::ErrorKind::AddrInUse
                    && attempt < TRIES => {}
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!(
                    "binding TCP {local} (streams share the gossip port)"
                )));
            }
        }
    }
}

impl Agent {
    /// Binds, starts the loop and sends the join requests.
    pub async fn start(cfg: AgentConfig) -> Result<Agent> {
        let (sock, listener) = bind_pair(cfg.bind).await?;
        let local = sock.local_addr()?;
        let advertise = cfg.advertise.unwrap_or(local);
        let me = NodeId::new(&cfg.name);
        hearsay_core::membership::check_tags(&tags_of(&cfg.tags)).context("tags")?;
        let meta = Meta {
            addr: Some(advertise.to_string().into_boxed_str()),
            zone: cfg.zone.clone().map(String::into_boxed_str),
            tags: tags_of(&cfg.tags),
            key: None,
        };
        let epoch = Epoch(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_micros() as u64),
        );
        let mut swim = SwimConfig::preset(cfg.preset);
        if let Some(p) = cfg.probes {
            swim.probe_order = p;
        }
        let ccfg = ClusterConfig {
            swim,
            dissemination: ClusterConfig::dissemination(
                cfg.strategy.unwrap_or(StrategyKind::Plumtree),
                cfg.broadcast_preset.unwrap_or(Preset::Latency),
            ),
        };
        let seed = me.hash64() ^ epoch.0;
        let mut node = ClusterNode::new(ccfg, me.clone(), epoch, meta, seed)
            .map_err(|e| anyhow::anyhow!(e))?;
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let (mut store, restored) = match &cfg.data_dir {
            Some(dir) => {
                let (s, r) = store::Store::open(dir, &cfg.name, &cfg.cluster, done_tx)
                    .map_err(anyhow::Error::msg)?;
                (Some(s), r)
            }
            None => (None, store::Restored::default()),
        };
        // With a data dir this member signs its own claims, with a key
        // kept there: an insider holding the cluster key cannot then kill
        // it with a claim it could not outbid (a later life, the top
        // counter). Without one it does not: a new key each life would
        // not be taken while the old life is remembered.
        if let Some(secret) = restored.identity {
            node.set_identity(secret);
        }
        node.delivered_before(restored.sent.iter().map(|p| p.id.clone()));
        // Tags changed at runtime win over the flags, as a kept keyring
        // does: a restart must not undo what an operator changed.
        let mut tags_note = String::new();
        if let Some(kept) = restored.tags.as_ref().filter(|t| **t != cfg.tags) {
            node.set_tags(CoreInstant::ZERO, tags_of(kept))
                .map_err(|e| anyhow::anyhow!("tags kept in the data dir: {e}"))?;
            tags_note = format!(
                "; its tags ({}) are kept over the flags' ({}): change them with `hearsay tags`",
                shown_tags(kept),
                shown_tags(&cfg.tags)
            );
        }
        let restored_note = store.as_ref().map(|s| {
            format!(
                "data dir {}: {} members to rejoin, {} gossip keys, {} map entries, {} tags, {} payloads sent lately to send again{tags_note}",
                s.path().display(),
                restored.members.len(),
                restored.keys.as_ref().map_or(0, Vec::len),
                restored.kv.as_ref().map_or(0, |m| m.iter().count()),
                restored.tags.as_ref().map_or(0, BTreeMap::len),
                restored.sent.len(),
            )
        });
        let keys = Self::keyring(&cfg, store.as_mut(), restored.keys)?;
        let codec = Codec {
            cluster: cfg.cluster.clone(),
            keys: Keyring::new(keys),
        };
        if codec.keys.is_empty() {
            tracing::warn!(
                "no gossip key: members talk in CLEAR TEXT, and anyone who can reach {local} can join; give every agent the same --key (make one with `hearsay keys generate`)"
            );
        }
        let shared = Arc::new(Mutex::new(Shared {
            keys: codec.keys.keys().iter().map(Key::to_base64).collect(),
            ..Shared::default()
        }));
        let (tx, rx) = mpsc::channel(1024);
        let (stream_tx, stream_rx) = mpsc::channel(stream::MAX_OPEN);
        let acceptor = tokio::spawn(stream::accept(listener, stream_tx));
        let deliveries = tokio::sync::broadcast::channel(STREAM_BUFFER).0;
        let direct = tokio::sync::broadcast::channel(STREAM_BUFFER).0;
        let user_stream = tokio::sync::broadcast::channel(STREAM_BUFFER).0;
        let events = tokio::sync::broadcast::channel(STREAM_BUFFER).0;
        let mut lp = Loop {
            sock,
            node,
            me: me.clone(),
            head: Datagram {
                f: cfg.name.clone(),
                a: cfg.advertise.map(|a| a.to_string()).unwrap_or_default(),
                who: false,
                e: epoch.0,
                t: 0,
                m: vec![],
                kv: vec![],
                kq: None,
                rq: None,
                qy: None,
                dm: None,
                st: None,
                x: String::new(),
            },
            codec,
            kv: {
                let replica = match &restored.replica {
                    Some(r) => NodeId::new(r),
                    None => kv::Kv::new_life(&me, epoch),
                };
                let mut kv = kv::Kv::new(me.clone(), replica, CoreInstant::from_micros(0));
                kv.bound(kv::BOUND);
                if let Some(state) = restored.kv {
                    kv.restore(state, Loop::wall_ms());
                }
                if store.is_some() {
                    kv.keep_writes();
                }
                kv
            },
            store,
            resend: restored.sent,
            told_buried: false,
            done: done_rx,
            streams_out: stream::Sender::default(),
            kept: (cfg.kept_messages, cfg.kept_bytes),
            lives: HashMap::new(),
            refusal: None,
            joins: joins::Joins::default(),
            rounds: Vec::new(),
            relays: reach::Relays::default(),
            reach_ids: 0,
            told: throttle::Throttle::new(TOLD_EVERY, 4096),
            order: EventOrder::new(EVENT_ORDER_WAIT),
            event_max: cfg.event_max_bytes,
            handlers: (!cfg.event_handlers.is_empty()).then(|| {
                handlers::Runner::start(handlers::Config {
                    handlers: cfg.event_handlers.clone(),
                    concurrency: cfg.handler_concurrency,
                    timeout: cfg.handler_timeout,
                    coalesce: cfg.handler_coalesce,
                })
            }),
            asking: Vec::new(),
            // A restarted asker must not be answered from what others
            // remember of its previous life's queries.
            asking_ids: u64::from(rand::random::<u32>()) << 16,
            remembered: query::Remembered::default(),
            states_answered: throttle::Throttle::new(std::time::Duration::from_secs(1), 4096),
            answers: query_loop::Answers::new(),
            answering: None,
            direct: direct.clone(),
            user_stream: user_stream.clone(),
            delegate: cfg.delegate.clone(),
            next_state_sync: CoreInstant::ZERO + cfg.state_sync,
            state_sync: cfg.state_sync.max(std::time::Duration::from_millis(10)),
            state_due: Vec::new(),
            kv_out: Outbox::default(),
            stats: metrics::Snapshot::default(),
            zone: cfg.zone.clone(),
            advertise,
            test_faults: cfg.test_faults,
            link: (!cfg.test_link.is_none()).then(|| {
                let seed = NodeId::new(&cfg.name).hash64();
                lossy::Link::new(cfg.test_link, seed)
            }),
            published: false,
            addrs_kept: 0,
            queries: Vec::new(),
            next_query: 0,
            cut: Default::default(),
            deliveries: deliveries.clone(),
            events: events.clone(),
            addrs: HashMap::new(),
            start: tokio::time::Instant::now(),
            shared: shared.clone(),
            seeds: Seeds::new(
                CoreInstant::ZERO,
                cfg.join.iter().copied().chain(
                    restored
                        .members
                        .iter()
                        .map(|(_, a)| *a)
                        .filter(|a| *a != advertise && *a != local),
                ),
            ),
        };
        let seeded = !lp.seeds.done();
        // The API answers from the first call: the member list (this agent
        // alone) and a map kept in the data dir are there before any input.
        lp.publish();
        let task = tokio::spawn(lp.run(rx, stream_rx));
        Ok(Agent {
            left: tokio::sync::watch::Sender::new(false),
            leaving: std::sync::atomic::AtomicBool::new(false),
            acceptor,
            shared,
            deliveries,
            direct,
            user_stream,
            events,
            cmds: tx,
            local,
            task,
            restored: restored_note,
            setup: Setup {
                name: cfg.name.clone(),
                cluster: cfg.cluster.clone(),
                advertise,
                strategy: format!(
                    "{} ({})",
                    cfg.strategy.unwrap_or(StrategyKind::Plumtree),
                    cfg.broadcast_preset.unwrap_or(Preset::Latency)
                ),
                data_dir: cfg.data_dir.clone(),
                handlers: cfg.event_handlers.len(),
                seeded,
            },
        })
    }

    /// This agent's identity, setup and state at a glance.
    pub fn info(&self) -> Info {
        let members = self.members();
        let me = members.iter().find(|m| m.is_self);
        let (m, join_problem) = match self.shared.lock() {
            Ok(s) => (s.metrics.clone(), s.join_problem.clone()),
            Err(_) => (metrics::Snapshot::default(), None),
        };
        let mut by_state: BTreeMap<&'static str, usize> =
            ["alive", "suspect", "dead", "left"].map(|k| (k, 0)).into();
        for x in &members {
            *by_state.entry(x.state.as_str()).or_default() += 1;
        }
        Info {
            name: self.setup.name.clone(),
            cluster: self.setup.cluster.clone(),
            bind: self.local.to_string(),
            advertise: me.and_then(|m| m.addr.clone()),
            protocol: hearsay_wire::codec::VERSION,
            epoch: me.map_or(0, |m| m.epoch),
            incarnation: me.map_or(0, |m| m.incarnation),
            strategy: self.setup.strategy.clone(),
            members: by_state,
            health: m.health,
            join_problem,
            keys: m.keys,
            tags: me.map(|m| m.tags.clone()).unwrap_or_default(),
            kv_keys: m.kv_keys,
            data_dir: self
                .setup
                .data_dir
                .as_ref()
                .map(|d| d.display().to_string()),
            event_handlers: self.setup.handlers,
            queues: [
                ("commands", self.cmds.max_capacity() - self.cmds.capacity()),
                ("kept-payloads", m.kept_payloads),
            ]
            .into(),
            delivered: m.delivered,
            user_events: m.user_events,
        }
    }

    /// With a data dir: what it gave back at start, in words.
    pub fn restored(&self) -> Option<&str> {
        self.restored.as_deref()
    }

    /// The keyring to start with: the one kept in the data dir if there is
    /// one (changes made at runtime outlive the flags that started the
    /// agent, as Consul's keyring file does), else the configured keys,
    /// which are then kept.
    fn keyring(
        cfg: &AgentConfig,
        store: Option<&mut store::Store>,
        kept: Option<Vec<String>>,
    ) -> Result<Vec<Key>> {
        let Some(store) = store else {
            return Ok(cfg.keys.clone());
        };
        match kept.filter(|k| !k.is_empty()) {
            Some(kept) => {
                let kept = kept
                    .iter()
                    .map(|k| k.parse())
                    .collect::<Result<Vec<Key>, _>>()
                    .map_err(|e| {
                        anyhow::anyhow!(
                            "{}: its keyring holds an unreadable key: {e}",
                            store.path().display()
                        )
                    })?;
                if !cfg.keys.is_empty() && cfg.keys != kept {
                    tracing::warn!(
                        "using the keyring kept in {} ({} keys), not the keys given at start: change it with `hearsay keys`",
                        store.path().display(),
                        kept.len()
                    );
                }
                Ok(kept)
            }
            None => {
                if !cfg.keys.is_empty() {
                    store.keys(cfg.keys.iter().map(Key::to_base64).collect(), None);
                }
                Ok(cfg.keys.clone())
            }
        }
    }

    /// Sends a command to the loop and waits for its answer.
    async fn ask<T>(
        &self,
        cmd: impl FnOnce(oneshot::Sender<Result<T, String>>) -> Cmd,
    ) -> Result<T, Error> {
        if self.has_left() {
            return Err(Error::Left);
        }
        let (tx, rx) = oneshot::channel();
        self.cmds.send(cmd(tx)).await.map_err(|_| Error::Stopped)?;
        rx.await.map_err(|_| Error::Stopped)?.map_err(Error::from)
    }

    /// Tests only (`test_faults`): drops every datagram to or from `addrs`
    /// from now on, replacing the last cut; an empty list heals.
    pub async fn cut(&self, addrs: Vec<SocketAddr>) -> Result<(), Error> {
        self.ask(|tx| Cmd::Cut(addrs, tx)).await
    }

    /// Waits until this agent has joined a cluster: `start` returns at once
    /// and joins its seeds in the background, asking again until one
    /// answers. Ok once another member is alive here (at once for an agent
    /// with no seeds: it is the first member); else, at `timeout`, why not
    /// (no seed answered, or a seed refused it: another cluster or key, a
    /// name already taken). The agent keeps trying after an error.
    pub async fn ready(&self, timeout: std::time::Duration) -> Result<(), Error> {
        let others = |a: &Agent| {
            a.members()
                .iter()
                .any(|m| !m.is_self && m.state == MemberState::Alive)
        };
        if !self.setup.seeded {
            return Ok(());
        }
        // Subscribed before looking, so that a join in between is seen.
        let mut events = self.events();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if others(self) {
                return Ok(());
            }
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Ok(Ok(e)) if matches!(e.change, Change::Joined | Change::Alive) => return Ok(()),
                Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => {
                    return Err(Error::Stopped);
                }
                Ok(_) => {}
                Err(_) => {
                    let why = self
                        .join_problem()
                        .unwrap_or_else(|| "no seed has answered yet".into());
                    return Err(Error::Refused(format!(
                        "not joined after {timeout:?}: {why}"
                    )));
                }
            }
        }
    }

    /// Sends `data` to member `name` alone (memberlist's `SendBestEffort`
    /// / `SendReliable`): in a datagram, or over TCP when larger; once, not
    /// retried, so it may be lost with the datagram. For data every member
    /// must get use [`Agent::broadcast`]; for an answer, [`Agent::query`].
    /// Refused for a name that is not an alive member.
    pub async fn send_to(&self, name: &str, data: Vec<u8>) -> Result<(), Error> {
        let max = hearsay_core::cluster::MAX_PAYLOAD;
        if data.len() > max {
            return Err(Error::Refused(format!(
                "a direct message has at most {max} bytes, not {}",
                data.len()
            )));
        }
        self.ask(|tx| Cmd::SendTo(name.to_string(), data, tx)).await
    }

    /// Messages other members sent to this one alone ([`Agent::send_to`]).
    pub fn direct(&self) -> tokio::sync::broadcast::Receiver<DirectMessage> {
        self.direct.subscribe()
    }

    /// Every payload delivered from now on (own broadcasts included). A
    /// receiver more than 4,096 behind loses the oldest, and is told how
    /// many.
    pub fn deliveries(&self) -> tokio::sync::broadcast::Receiver<Delivery> {
        self.deliveries.subscribe()
    }

    /// Every membership change from now on.
    pub fn events(&self) -> tokio::sync::broadcast::Receiver<MemberEvent> {
        self.events.subscribe()
    }

    /// Every user event delivered from now on, once each and in order per
    /// origin (what [`Agent::user_events`] lists, as it happens): the
    /// library's event handler.
    pub fn user_event_stream(&self) -> tokio::sync::broadcast::Receiver<UserEvent> {
        self.user_stream.subscribe()
    }

    /// The address the gossip socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Why this agent has not joined yet, after asking its seeds more than
    /// once (None: joined, or nothing to join).
    pub fn join_problem(&self) -> Option<String> {
        self.shared.lock().ok().and_then(|s| s.join_problem.clone())
    }

    /// Every member known (this one included), by name.
    pub fn members(&self) -> Vec<MemberInfo> {
        self.shared
            .lock()
            .map(|s| s.members.clone())
            .unwrap_or_default()
    }

    /// Prometheus text (see [`metrics::render`]).
    pub fn metrics(&self) -> String {
        let Ok(s) = self.shared.lock() else {
            return String::new();
        };
        let mut m = s.metrics.clone();
        m.command_queue = self.cmds.max_capacity() - self.cmds.capacity();
        metrics::render(&m)
    }

    /// Payloads delivered here so far (own broadcasts included; the
    /// newest, within [`AgentConfig::kept_messages`] and `kept_bytes`).
    pub fn messages(&self) -> Vec<Vec<u8>> {
        self.timed_messages().into_iter().map(|(_, m)| m).collect()
    }

    /// [`Agent::messages`] with the wall-clock time (unix microseconds) each
    /// was delivered: what `hearsay bench agent` times deliveries by.
    pub fn timed_messages(&self) -> Vec<(u64, Vec<u8>)> {
        self.shared
            .lock()
            .map(|s| s.delivered.clone())
            .unwrap_or_default()
    }

    /// Membership changes seen so far with their wall-clock times (unix
    /// microseconds; the newest 100,000).
    pub fn timed_events(&self) -> Vec<(u64, MemberEvent)> {
        self.shared
            .lock()
            .map(|s| s.events.clone())
            .unwrap_or_default()
    }

    /// The keyring in base64, the primary first.
    pub fn keys(&self) -> Vec<String> {
        self.shared
            .lock()
            .map(|s| s.keys.clone())
            .unwrap_or_default()
    }

    /// Installs, makes primary or removes a gossip key on this agent.
    pub async fn keys_change(&self, op: KeyOp) -> Result<(), Error> {
        self.ask(|tx| Cmd::Keys(op, tx)).await
    }

    /// Applies a keyring change here and then on every live member, and
    /// says who did it, who refused and who did not answer in time
    /// ([`keyquery::TIMEOUT`]); `None` only collects every member's keys.
    /// Fails without asking anyone if this agent cannot make the change.
    pub async fn keys_change_cluster(&self, op: Option<KeyOp>) -> Result<KeyReport, Error> {
        self.ask(|tx| Cmd::ClusterKeys(op, tx)).await
    }

    /// The replicated map as this agent sees it.
    pub fn kv(&self) -> std::collections::BTreeMap<String, String> {
        self.shared.lock().map(|s| s.kv.clone()).unwrap_or_default()
    }

    /// Sets `key` cluster-wide (last writer wins).
    pub async fn kv_set(&self, key: String, value: String) -> Result<(), Error> {
        self.kv_write(key, Some(value)).await
    }

    /// Deletes `key` cluster-wide.
    pub async fn kv_delete(&self, key: String) -> Result<(), Error> {
        self.kv_write(key, None).await
    }

    async fn kv_write(&self, key: String, value: Option<String>) -> Result<(), Error> {
        self.ask(|tx| Cmd::Kv(key, value, tx)).await
    }

    /// Changes this agent's tags: the others see the new ones with its
    /// next gossip (a new incarnation). Refused, with nothing changed, if
    /// the result breaks the tag rules ([`hearsay_core::membership::check_tags`]).
    pub async fn set_tags(&self, change: TagsChange) -> Result<(), Error> {
        self.ask(|tx| Cmd::Tags(change, tx)).await
    }

    /// This agent's tags.
    pub fn tags(&self) -> BTreeMap<String, String> {
        self.members()
            .into_iter()
            .find(|m| m.is_self)
            .map(|m| m.tags)
            .unwrap_or_default()
    }

    /// Sends `data` (at most 64 KiB) to every member, this one included;
    /// each delivers it once ([`Agent::deliveries`]). Returns once this
    /// agent has taken it on (delivered here: [`Agent::messages`] has it;
    /// with a data dir, kept there too, so that should this agent die
    /// before another member has it, its next life sends it again), not
    /// when the others have it. [`Error::Busy`] while neighbours have
    /// not yet acknowledged enough earlier payloads: try again shortly.
    pub async fn broadcast(&self, data: Vec<u8>) -> Result<(), Error> {
        self.ask(|tx| Cmd::Broadcast(data, tx)).await
    }

    /// Sends user event `name` with `payload` to every member, this one
    /// included (Serf's `serf event`); returns its Lamport time. Names are
    /// 1 to 128 bytes without control characters; payloads up to 64 KiB
    /// (past a datagram they go over TCP).
    /// `coalesce`: agents with a coalesce period
    /// ([`AgentConfig::handler_coalesce`]) may run their handlers once for
    /// a burst of such events of one name, with the last.
    pub async fn event(
        &self,
        name: String,
        payload: Vec<u8>,
        coalesce: bool,
    ) -> Result<u64, Error> {
        self.ask(|tx| Cmd::Event(name, payload, coalesce, tx)).await
    }

    /// Asks the members the request's filters choose (this agent too, if
    /// it matches) and streams what comes back: each acknowledgement and
    /// answer as it arrives, then [`query::Update::Done`] with the
    /// summary, once every answer that can come is in or the timeout
    /// passed. Dropping the receiver ends the query.
    pub async fn query(&self, req: query::Request) -> Result<mpsc::Receiver<query::Update>, Error> {
        let q = req.check()?;
        let (tx, rx) = mpsc::channel(query::UPDATES);
        self.ask(|reply| Cmd::Query(q, tx, reply)).await?;
        Ok(rx)
    }

    /// Queries asked of this agent, for the application to answer
    /// ([`query::Incoming::respond`]); a query handler script, if one
    /// answers the name, goes first. Replaces an earlier receiver. While
    /// the receiver lives, this agent tells askers an answer will follow.
    pub async fn answer_queries(&self) -> Result<mpsc::Receiver<query::Incoming>, Error> {
        let (tx, rx) = mpsc::channel(query::UPDATES);
        self.ask(|reply| Cmd::AnswerQueries(tx, reply)).await?;
        Ok(rx)
    }

    /// User events delivered here so far, with the wall-clock time (unix
    /// microseconds) each was (the newest 100,000): once each, in order
    /// per origin.
    pub fn user_events(&self) -> Vec<(u64, UserEvent)> {
        self.shared
            .lock()
            .map(|s| s.user_events.clone())
            .unwrap_or_default()
    }

    /// Joins the cluster of a member at one of `addrs` (Serf's `serf
    /// join`): asks each who it is, again and again, until one answers
    /// (the name of the member it joined through) or `timeout` is up (why
    /// not: no answer, or what came back was refused here, for instance
    /// another cluster or key). Joining members already known is harmless.
    pub async fn join(
        &self,
        addrs: Vec<SocketAddr>,
        timeout: std::time::Duration,
    ) -> Result<String, Error> {
        let own = [self.local, self.setup.advertise];
        let addrs: Vec<SocketAddr> = addrs.into_iter().filter(|a| !own.contains(a)).collect();
        if addrs.is_empty() {
            return Err("no address to join but this agent's own".into());
        }
        self.ask(|tx| Cmd::Join(addrs, timeout, tx)).await
    }

    /// Serf's `force-leave`: member `name`, which failed, is recorded as
    /// left here and the others are told, so it stops counting as failed
    /// and is forgotten as members that left are. Refused for a member
    /// alive here (it would refute and stay), this agent, or a name not
    /// known.
    pub async fn force_leave(&self, name: String) -> Result<(), Error> {
        self.ask(|tx| Cmd::ForceLeave(name, tx)).await
    }

    /// Serf's `serf reachability`: probes every member directly and,
    /// for those that do not answer in half of `timeout`, asks up to three
    /// that did to probe them for this agent; then opens a TCP connection
    /// to each (the stream path). Which members answered, in how long,
    /// and through whom the silent ones were reached.
    pub async fn reachability(
        &self,
        timeout: std::time::Duration,
    ) -> Result<Vec<reach::Reached>, Error> {
        if self.has_left() {
            return Err(Error::Left);
        }
        let (tx, rx) = oneshot::channel();
        self.cmds
            .send(Cmd::Reach(timeout, tx))
            .await
            .map_err(|_| Error::Stopped)?;
        let mut found = rx.await.map_err(|_| Error::Stopped)?;
        let tcp = found.iter().map(|r| {
            let addr = r.addr;
            tokio::spawn(async move {
                let t = std::time::Instant::now();
                match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
                    Ok(Ok(_)) => Ok(t.elapsed().as_secs_f64() * 1e3),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err(format!("no answer in {timeout:?}")),
                }
            })
        });
        let tcp: Vec<_> = tcp.collect();
        for (r, h) in found.iter_mut().zip(tcp) {
            match h.await {
                Ok(Ok(ms)) => r.tcp_ms = Some(ms),
                Ok(Err(e)) => r.tcp_error = Some(e),
                Err(e) => r.tcp_error = Some(e.to_string()),
            }
        }
        Ok(found)
    }

    /// This agent's member name.
    pub fn name(&self) -> &str {
        &self.setup.name
    }

    /// Resolves once this agent has left the cluster ([`Agent::leave`],
    /// or `POST /leave`): whoever runs the agent stops it then.
    pub async fn left(&self) {
        let mut rx = self.left.subscribe();
        let _ = rx.wait_for(|l| *l).await;
    }

    /// Whether this agent has left (or is leaving): it then takes no more
    /// work (broadcasts, events, map writes, joins answer an error) and
    /// lists itself as left.
    pub fn has_left(&self) -> bool {
        self.leaving.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Leaves, then stops for good: the leave spreads (see
    /// [`Agent::leave`]) and the agent's tasks end before this returns, so
    /// the others see a leave, not a failure, and a data dir is released.
    pub async fn shutdown(self) {
        self.leave().await;
        self.task.abort();
        self.acceptor.abort();
        // Aborted tasks end at their next await: wait for both.
        let (task, acceptor) = (&self.task, &self.acceptor);
        for _ in 0..100 {
            if task.is_finished() && acceptor.is_finished() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Leaves gracefully: the leave rides on this member's gossip for a
    /// second (memberlist's leave propagation delay) before this returns.
    /// Final: afterwards the agent takes no more work ([`Agent::has_left`]).
    /// Calling it again returns at once.
    pub async fn leave(&self) {
        if self
            .leaving
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            return;
        }
        let (tx, rx) = oneshot::channel();
        let alone = self
            .members()
            .iter()
            .all(|m| m.is_self || m.state != "alive");
        if self.cmds.send(Cmd::Leave(tx)).await.is_ok() {
            let _ = rx.await;
            // A second for the news to spread, unless nobody is there to
            // hear it.
            if !alone {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
        self.left.send_replace(true);
    }
}

struct Loop {
    sock: UdpSocket,
    node: ClusterNode,
    me: NodeId,
    head: Datagram,
    codec: Codec,
    kv: kv::Kv,
    kv_out: Outbox<kv::KvMsg>,
    /// Counters the loop keeps itself (traffic, refusals).
    stats: metrics::Snapshot,
    zone: Option<String>,
    advertise: SocketAddr,
    test_faults: bool,
    /// Tests only: the received datagrams' faults.
    link: Option<lossy::Link>,
    /// The member list went to the shared state at least once.
    published: bool,
    /// Addresses left after the last pruning.
    addrs_kept: usize,
    /// Cluster-wide keyring changes waiting for answers.
    queries: Vec<keyquery::Pending>,
    next_query: u64,
    cut: std::collections::HashSet<SocketAddr>,
    deliveries: tokio::sync::broadcast::Sender<Delivery>,
    events: tokio::sync::broadcast::Sender<MemberEvent>,
    addrs: HashMap<NodeId, SocketAddr>,
    start: tokio::time::Instant,
    shared: Arc<Mutex<Shared>>,
    /// The seeds asked who they are, backing off, until one answers.
    seeds: Seeds<SocketAddr>,
    /// The data dir, if any.
    store: Option<store::Store>,
    /// What earlier lives sent in the retention window, kept in the data
    /// dir: sent again once joined.
    resend: Vec<Payload>,
    /// An earlier life of this member under another key was declared
    /// dead, and the log said so (once).
    told_buried: bool,
    /// Local map writes the data dir has kept (or failed to keep).
    done: mpsc::UnboundedReceiver<store::Done>,
    /// Outbound streams, bounded.
    streams_out: stream::Sender,
    /// Delivered payloads kept for `messages()`: most count, most bytes.
    kept: (usize, usize),
    /// Alive members by name: their life and where they said they are
    /// (to tell a second agent of the same name from a restart).
    lives: HashMap<NodeId, (u64, Option<SocketAddr>)>,
    /// A seed refused this agent, and why.
    refusal: Option<String>,
    /// Joins asked for while running.
    joins: joins::Joins,
    /// Reachability rounds running, probes made for others, and the
    /// numbers of both.
    rounds: Vec<reach::Round>,
    relays: reach::Relays,
    reach_ids: u64,
    /// Senders of datagrams this agent could not open, each told at most
    /// once per [`TOLD_EVERY`].
    told: throttle::Throttle<SocketAddr>,
    /// User events waiting for one before them from the same origin.
    order: EventOrder,
    /// Largest user event payload sent from here.
    event_max: usize,
    /// Event handlers, if any were given.
    handlers: Option<handlers::Runner>,
    /// Queries this agent asked, waiting for answers.
    asking: Vec<query::Asking>,
    asking_ids: u64,
    /// Queries others asked of this agent, remembered while they wait.
    remembered: query::Remembered,
    /// When each member's state was last answered (at most once a second
    /// each: a forged stream of states asking for a reply must not turn
    /// into the application's state, up to 64 KiB each, aimed at a member).
    states_answered: throttle::Throttle<NodeId>,
    /// Answers to queries asked of this agent, as handlers finish them:
    /// (asker, query id, answer).
    answers: query_loop::Answers,
    /// The application's end for queries asked of this agent, if it
    /// answers them ([`Agent::answer_queries`]).
    answering: Option<mpsc::Sender<query::Incoming>>,
    /// Messages sent to this agent alone.
    direct: tokio::sync::broadcast::Sender<DirectMessage>,
    /// User events as they are delivered.
    user_stream: tokio::sync::broadcast::Sender<UserEvent>,
    /// The application's state delegate, when to trade states next, how
    /// often, and the members that joined since the last send.
    delegate: Option<Delegate>,
    next_state_sync: CoreInstant,
    state_sync: std::time::Duration,
    state_due: Vec<NodeId>,
}

/// How much larger than the datagram it answers a refusal may be: a
/// clear-text joiner's `who` lacks the 40 bytes of sealing the answer of a
/// keyed agent has, and names differ in length; a scrap gets none.
const REPLY_SLACK: usize = 64;

/// How often a sender of datagrams this agent could not open is told.
const TOLD_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

impl Loop {
    fn now(&self) -> CoreInstant {
        CoreInstant::from_micros(self.start.elapsed().as_micros() as u64)
    }

    /// Wall-clock milliseconds, for the key-value clock.
    fn wall_ms() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }

    async fn run(
        mut self,
        mut rx: mpsc::Receiver<Cmd>,
        mut streams: mpsc::Receiver<stream::Inbound>,
    ) {
        let mut buf = vec![0u8; codec::MAX_INPUT + 1];
        let mut out = Outbox::default();
        loop {
            let deadline = hearsay_core::node::timers::earliest([
                self.node.next_deadline(),
                self.kv.next_deadline(),
                self.seeds.next_deadline(),
                self.joins.next_deadline(),
                self.rounds.iter().map(reach::Round::next_deadline).min(),
                self.relays.next_deadline(),
                self.queries
                    .iter()
                    .map(keyquery::Pending::next_deadline)
                    .min(),
                self.asking.iter().map(query::Asking::next_deadline).min(),
                self.delegate.as_ref().map(|_| self.next_state_sync),
                self.order.next_deadline(),
                self.link.as_ref().and_then(lossy::Link::next_due),
            ]);
            let wake = deadline.map_or(self.start + std::time::Duration::from_secs(3600), |d| {
                self.start + std::time::Duration::from_micros(d.as_micros())
            });
            let sleep = tokio::time::sleep_until(wake);
            tokio::select! {
                r = self.sock.recv_from(&mut buf) => {
                    if let Ok((n, from)) = r {
                        let now = self.now();
                        match &mut self.link {
                            Some(l) => l.arrive(now, &buf[..n], from),
                            None => self.datagram(&buf[..n], from, &mut out).await,
                        }
                    }
                }
                Some(inbound) = streams.recv() => {
                    self.stream(inbound, &mut out).await;
                }
                Some(done) = self.done.recv() => self.release(done),
                Some(a) = self.answers.rx.recv() => self.answered(a).await,
                _ = sleep => {
                    let now = self.now();
                    if let Some(l) = &mut self.link {
                        for (bytes, from) in l.due(now) {
                            self.datagram(&bytes, from, &mut out).await;
                        }
                    }
                    // Learn the seeds' names: they answer `who` with an
                    // empty envelope, and then we join them by name.
                    let due = self.seeds.due(now);
                    if !due.is_empty() {
                        let hello =
                            self.codec.empty(&Datagram { who: true, ..self.head.clone() });
                        for s in due {
                            let _ = self.sock.send_to(&hello, s).await;
                        }
                    }
                    // A join (one message each way) may be lost: alone
                    // after a seed answered, ask the seeds again.
                    self.seeds.alone(now, self.node.swim().live() <= 1);
                    if !self.seeds.done() {
                        let problem = self.refusal.clone().or_else(|| self.seeds.problem());
                        if let Ok(mut sh) = self.shared.lock() {
                            sh.join_problem = problem;
                        }
                    }
                    if !self.resend.is_empty() && self.seeds.done() {
                        self.resend_earlier(now, &mut out);
                    }
                    self.ask_joins(now).await;
                    self.reach_tick(now).await;
                    self.node.tick(now, &mut out);
                    self.tell_buried();
                    self.kv.tick(now, &mut self.kv_out);
                    self.run_queries().await;
                    self.run_asks().await;
                    self.state_tick(now).await;
                }
                cmd = rx.recv() => match cmd {
                    // Refused before anything goes out when the data dir
                    // could not keep it: a retry is then not a second send.
                    Some(Cmd::Broadcast(_, reply))
                        if let Some(why) = self.store.as_ref().and_then(|s| s.cannot_keep()) =>
                    {
                        let _ = reply.send(Err(why));
                    }
                    Some(Cmd::Event(.., reply))
                        if let Some(why) = self.store.as_ref().and_then(|s| s.cannot_keep()) =>
                    {
                        let _ = reply.send(Err(why));
                    }
                    Some(Cmd::Broadcast(data, reply)) => {
                        let now = self.now();
                        let r = self.node.broadcast(now, data.into(), &mut out);
                        // Read-your-writes: /messages has it before the reply.
                        self.publish();
                        self.answer_sent(r.map(|p| (p, ())), reply);
                    }
                    Some(Cmd::Event(name, data, coalesce, reply)) => {
                        let now = self.now();
                        let r = if data.len() > self.event_max {
                            Err(format!(
                                "an event payload has at most {} bytes here (--event-max-bytes), not {}",
                                self.event_max,
                                data.len()
                            ))
                        } else {
                            self.node
                                .event(now, &name, data.into(), coalesce, &mut out)
                                .map_err(|e| e.to_string())
                        };
                        // Read-your-writes, as for a broadcast.
                        self.publish();
                        self.answer_sent(r, reply);
                    }
                    Some(Cmd::Kv(key, value, reply)) => {
                        self.kv_write(key, value, reply);
                        // Read-your-writes, as for a broadcast.
                        self.publish();
                    }
                    Some(Cmd::Cut(addrs, reply)) => {
                        let r = if self.test_faults {
                            self.cut = addrs.into_iter().collect();
                            Ok(())
                        } else {
                            Err("this agent was not started for fault tests".to_string())
                        };
                        let _ = reply.send(r);
                    }
                    Some(Cmd::Keys(op, reply)) => match self.keys_change(op) {
                        Ok(()) => self.keep_keys(Some(reply)),
                        Err(e) => {
                            let _ = reply.send(Err(e));
                        }
                    },
                    Some(Cmd::ClusterKeys(op, reply)) => {
                        self.start_query(op, reply).await;
                    }
                    Some(Cmd::Tags(change, reply)) => {
                        let mut tags = self.node.swim().meta().tags.clone();
                        for k in &change.delete {
                            tags.remove(k.as_str());
                        }
                        tags.extend(tags_of(&change.set));
                        let now = self.now();
                        match self.node.set_tags(now, tags) {
                            Ok(()) => {
                                // No membership event here: list anew.
                                self.published = false;
                                self.publish();
                                // Answered once kept, as a keyring change.
                                let tags = tags_from(&self.node.swim().meta().tags);
                                match &mut self.store {
                                    Some(st) => st.tags(tags, Some(reply)),
                                    None => {
                                        let _ = reply.send(Ok(()));
                                    }
                                }
                            }
                            Err(e) => {
                                let _ = reply.send(Err(e.to_string()));
                            }
                        }
                    }
                    Some(Cmd::Join(addrs, timeout, reply)) => {
                        let now = self.now();
                        self.joins.add(now, addrs, timeout, reply);
                        self.ask_joins(now).await;
                    }
                    Some(Cmd::Reach(timeout, reply)) => {
                        let now = self.now();
                        let members: Vec<(String, SocketAddr)> = self
                            .node
                            .swim()
                            .members()
                            .filter(|(id, _, st, _)| *st != Status::Left && *id != &self.me)
                            .filter_map(|(id, _, _, meta)| {
                                let a = meta_addr(meta).or_else(|| self.addrs.get(id).copied())?;
                                Some((id.to_string(), a))
                            })
                            .collect();
                        let (round, sends) =
                            reach::Round::start(now, timeout, members, &mut self.reach_ids, reply);
                        self.rounds.push(round);
                        self.send_reach(sends).await;
                    }
                    Some(Cmd::ForceLeave(name, reply)) => {
                        let now = self.now();
                        let r = self
                            .node
                            .force_leave(now, &NodeId::new(&name), &mut out)
                            .map_err(|e| format!("{name}: {e}"));
                        if r.is_ok() {
                            tracing::info!("{name} forced out: recorded as left, and gossiped");
                        }
                        let _ = reply.send(r);
                    }
                    Some(Cmd::Query(q, updates, reply)) => {
                        let _ = reply.send(self.start_ask(q, updates).await);
                    }
                    Some(Cmd::SendTo(name, data, reply)) => {
                        let _ = reply.send(self.send_direct(&NodeId::new(&name), data).await);
                    }
                    Some(Cmd::AnswerQueries(tx, reply)) => {
                        self.answering = Some(tx);
                        let _ = reply.send(Ok(()));
                    }
                    Some(Cmd::Leave(reply)) => {
                        let now = self.now();
                        self.node.leave(now, &mut out);
                        // The member list says so at once.
                        self.published = false;
                        self.flush(&mut out).await;
                        let _ = reply.send(());
                    }
                    None => return,
                },
            }
            self.flush(&mut out).await;
            self.publish();
            self.send_states().await;
        }
    }

    async fn datagram(&mut self, bytes: &[u8], from: SocketAddr, out: &mut Outbox<ClusterMsg>) {
        if self.cut.contains(&from) {
            return;
        }
        let env = match self.codec.decode(bytes) {
            Ok(e) => e,
            Err(e) => {
                tracing::debug!("dropped a datagram from {from}: {e:?}");
                self.stats.refused[e.index()] += 1;
                self.seeds.refused(&from, e.reason());
                self.joins.refused(&from, e.reason());
                // Another cluster, key or version: an empty envelope of
                // ours goes back, which the sender cannot open either and
                // so can name why it is not let in (a joiner said only "no
                // answer"). Never larger than what came (a misconfigured
                // agent's `who` is about the size of this answer; a forged
                // scrap is not answered) and at most one per sender per
                // `TOLD_EVERY`: no use as a reflector.
                if e.sender_misconfigured() {
                    let reply = self.codec.empty(&self.head);
                    let now = self.now();
                    if reply.len() <= bytes.len() + REPLY_SLACK && self.told.allow(now, &from) {
                        let _ = self.sock.send_to(&reply, from).await;
                    }
                }
                return;
            }
        };
        self.stats.received.datagrams += 1;
        self.stats.received.datagram_bytes += bytes.len() as u64;
        self.envelope(env, Some(from), out).await;
    }

    /// A frame off a stream: like a datagram, but the connection's source
    /// port says nothing about where the sender listens.
    async fn stream(&mut self, inbound: stream::Inbound, out: &mut Outbox<ClusterMsg>) {
        let env = match inbound
            .frame
            .and_then(|f| self.codec.decode_stream(&f).map(|e| (e, f.len())))
        {
            Ok((e, len)) => {
                self.stats.received.streams += 1;
                self.stats.received.stream_bytes += len as u64;
                e
            }
            Err(e) => {
                tracing::debug!("dropped a stream from {}: {e:?}", inbound.from);
                self.stats.refused[e.index()] += 1;
                return;
            }
        };
        let known = self.addrs.get(&NodeId::new(&env.f)).copied();
        if known.is_some_and(|a| self.cut.contains(&a)) {
            return;
        }
        self.envelope(env, None, out).await;
    }

    async fn envelope(
        &mut self,
        mut env: Datagram,
        from: Option<SocketAddr>,
        out: &mut Outbox<ClusterMsg>,
    ) {
        for m in &env.m {
            self.stats.received.count(m.kind(), encoded_len(m));
        }
        for _ in &env.kv {
            self.stats.received.count("kv", 0);
        }
        if env.kq.is_some() {
            self.stats.received.count("keys", 0);
        }
        if env.qy.is_some() {
            self.stats.received.count("query", 0);
        }
        if env.dm.is_some() {
            self.stats.received.count("direct", 0);
        }
        if env.f.is_empty() || env.f.len() > 256 {
            return;
        }
        let name = NodeId::new(&env.f);
        if name == self.me {
            return;
        }
        if !env.x.is_empty() {
            self.refused_by(&env, from);
            return;
        }
        if self.name_conflict(&name, &env, from).await {
            return;
        }
        // Where this sender is answered: a sealed envelope's own claim (only
        // a key holder could have made it); in clear text, where the
        // datagram came from, never a claim anyone can write (it would aim
        // this agent's answers at a third party).
        let claimed = if self.codec.keys.is_empty() {
            None
        } else {
            env.a.parse().ok()
        };
        let addr: Option<SocketAddr> = claimed.or(from);
        if let Some(addr) = addr {
            self.addrs.insert(name.clone(), addr);
            if env.who {
                let _ = self.sock.send_to(&self.codec.empty(&self.head), addr).await;
            }
        }
        let now = self.now();
        if from.is_some_and(|f| self.seeds.answered(now, &f)) {
            self.refusal = None;
            if let Ok(mut sh) = self.shared.lock() {
                sh.join_problem = None;
            }
            let now = self.now();
            self.node.join(now, std::slice::from_ref(&name), out);
        }
        if let Some(f) = from
            && self.joins.answered(&f, name.as_str())
        {
            tracing::info!("joined through {name} ({f}), as asked");
            let now = self.now();
            self.node.join(now, std::slice::from_ref(&name), out);
        }
        let now = self.now();
        for m in env.messages() {
            self.node.handle(now, &name, m, out);
        }
        for m in env.kv {
            let changed = self
                .kv
                .handle(now, Self::wall_ms(), &name, m, &mut self.kv_out);
            if let Some(st) = &mut self.store {
                match changed {
                    kv::Changed::Nothing => {}
                    kv::Changed::Delta(d) => st.delta(d),
                    kv::Changed::All => st.state(self.kv.state().clone()),
                }
            }
        }
        if let Some(q) = env.kq {
            self.key_query(&name, addr, q).await;
        }
        if let (Some(r), Some(addr)) = (env.rq, addr) {
            self.reach_msg(&name, addr, r).await;
        }
        let max = hearsay_core::cluster::MAX_PAYLOAD;
        if let Some(st) = env.st.filter(|st| st.data.len() <= max)
            && (from.is_none() || self.gossip_addr(&name) == addr)
            && let Some(at) = self.gossip_addr(&name)
        {
            self.app_state(&name, at, st).await;
        }
        if let Some(d) = env.dm.filter(|d| d.0.len() <= max)
            && (from.is_none() || self.gossip_addr(&name) == addr)
            && self.gossip_addr(&name).is_some()
        {
            let _ = self.direct.send(DirectMessage {
                from: name.to_string(),
                data: d.0.to_vec(),
            });
        }
        // A query on a stream (larger than a datagram) has no address to
        // check: it is taken from the member at the address it gossips
        // from, and answered there.
        if let Some(q) = env.qy
            && let Some(at) = addr.or_else(|| self.gossip_addr(&name))
        {
            self.query_msg(&name, at, q).await;
        }
    }

    /// Where member `id` gossips from, if it is a member here (not left).
    /// The address member `id` gossips from, as it says in its own alive
    /// claims (not where its last datagram came from: the address book is
    /// written on every envelope before any check, so comparing with it
    /// would let anyone claim a member's name).
    fn gossip_addr(&self, id: &NodeId) -> Option<SocketAddr> {
        let swim = self.node.swim();
        match swim.status_of(id) {
            Some((_, st)) if st != Status::Left => swim
                .meta_of(id)
                .and_then(meta_addr)
                .or_else(|| self.addrs.get(id).copied()),
            _ => None,
        }
    }

    /// A reachability message from `from` at `addr`. Only members are
    /// answered or relayed for, each at the address it gossips from, and
    /// probes go only to members: no stranger can aim them at a third
    /// party.
    async fn reach_msg(&mut self, from: &NodeId, addr: SocketAddr, r: hearsay_wire::reach::Reach) {
        use hearsay_wire::reach::Reach;
        if self.gossip_addr(from) != Some(addr) {
            return;
        }
        let now = self.now();
        match r {
            Reach::Ping { id } => self.send_reach(vec![(addr, Reach::Pong { id })]).await,
            Reach::Pong { id } => {
                if !self.rounds.iter_mut().any(|r| r.pong(now, &addr, id))
                    && let Some(tell) = self.relays.pong(&addr, id)
                {
                    self.send_reach(vec![tell]).await;
                }
            }
            Reach::Via {
                id,
                target,
                wait_ms,
            } => {
                let to = self.gossip_addr(&NodeId::new(&target));
                let wait = std::time::Duration::from_millis(u64::from(wait_ms));
                let send = self
                    .relays
                    .ask(now, addr, id, to, wait, &mut self.reach_ids);
                self.send_reach(send.into_iter().collect()).await;
            }
            Reach::ViaDone { id, ok } => {
                for r in &mut self.rounds {
                    if r.via_done(&addr, id, ok) {
                        break;
                    }
                }
            }
        }
    }

    /// Rounds and relayed probes whose time has come.
    async fn reach_tick(&mut self, now: CoreInstant) {
        let mut sends = self.relays.expire(now);
        for r in std::mem::take(&mut self.rounds) {
            let (left, more) = r.tick(now);
            sends.extend(more);
            self.rounds.extend(left);
        }
        self.send_reach(sends).await;
    }

    /// States for the members that joined since the last call.
    async fn send_states(&mut self) {
        if self.state_due.is_empty() {
            return;
        }
        for to in std::mem::take(&mut self.state_due) {
            if let Some(addr) = self.gossip_addr(&to) {
                self.send_state(addr, true, false).await;
            }
        }
    }

    /// Trades states with one random alive member when it is time.
    async fn state_tick(&mut self, now: CoreInstant) {
        if self.delegate.is_none() || now < self.next_state_sync {
            return;
        }
        self.next_state_sync = now + self.state_sync;
        let alive: Vec<NodeId> = self
            .node
            .swim()
            .members()
            .filter(|(_, _, st, _)| *st == Status::Alive)
            .map(|(id, ..)| id.clone())
            .collect();
        if alive.is_empty() {
            return;
        }
        let pick = &alive[rand::random_range(0..alive.len())];
        if let Some(addr) = self.gossip_addr(pick) {
            self.send_state(addr, false, true).await;
        }
    }

    async fn send_state(&mut self, to: SocketAddr, join: bool, reply: bool) {
        let Some(d) = &self.delegate else { return };
        let data = d.0.local_state(join);
        let max = hearsay_core::cluster::MAX_PAYLOAD;
        if data.len() > max {
            tracing::warn!(
                "the application's state has {} bytes, at most {max} go: not sent",
                data.len()
            );
            return;
        }
        let env = Datagram {
            st: Some(hearsay_wire::query::AppState {
                join,
                reply,
                data: data.into(),
            }),
            ..self.head.clone()
        };
        self.send_frame(to, &env, "state").await;
    }

    /// A member's application state: merged, and answered with ours if
    /// it asks.
    async fn app_state(
        &mut self,
        from: &NodeId,
        at: SocketAddr,
        st: hearsay_wire::query::AppState,
    ) {
        let Some(d) = &self.delegate else { return };
        d.0.merge_remote_state(from.as_str(), &st.data, st.join);
        if !st.reply {
            return;
        }
        let now = self.now();
        if self.states_answered.allow(now, from) {
            self.send_state(at, st.join, false).await;
        }
    }

    /// Sends `data` to member `to` alone, once.
    async fn send_direct(&mut self, to: &NodeId, data: Vec<u8>) -> Result<(), String> {
        let alive = matches!(self.node.swim().status_of(to), Some((_, Status::Alive)));
        let Some(addr) = self.gossip_addr(to).filter(|_| alive) else {
            return Err(format!("{to} is not an alive member here"));
        };
        let env = Datagram {
            dm: Some(hearsay_wire::query::Direct(data.into())),
            ..self.head.clone()
        };
        self.send_frame(addr, &env, "direct").await;
        Ok(())
    }

    /// Sends an envelope of this agent's own (not the machines'): in a
    /// datagram, or on a stream when it is larger.
    async fn send_frame(&mut self, to: SocketAddr, env: &Datagram, kind: &'static str) {
        if self.cut.contains(&to) {
            return;
        }
        let Some(d) = self.codec.frame(env) else {
            return;
        };
        self.stats.sent.count(kind, 0);
        self.send_bytes(to, d).await;
    }

    /// Sends an encoded frame: in a datagram, or on a stream when it is
    /// larger than one (counted as sent when tried: a dropped stream is
    /// counted as dropped as well).
    async fn send_bytes(&mut self, to: SocketAddr, d: Vec<u8>) {
        if d.len() > codec::MAX_DATAGRAM {
            self.stats.sent.streams += 1;
            self.stats.sent.stream_bytes += d.len() as u64;
            if !self.streams_out.send(to, d) {
                self.stats.streams_dropped += 1;
            }
            return;
        }
        self.stats.sent.datagrams += 1;
        self.stats.sent.datagram_bytes += d.len() as u64;
        let _ = self.sock.send_to(&d, to).await;
    }

    async fn send_reach(&mut self, sends: reach::Sends) {
        for (to, r) in sends {
            let env = Datagram {
                rq: Some(r),
                ..self.head.clone()
            };
            if let Some(d) = self.codec.datagram(&env) {
                self.stats.sent.count("reach", 0);
                let _ = self.sock.send_to(&d, to).await;
            }
        }
    }

    /// A second agent under the name of a live member at another address
    /// (a life of its own, `e`, not the one known): refused, counted,
    /// logged and told, rather than let it take the name over. A member
    /// restarted where it was takes over with its newer life as ever; one
    /// restarted elsewhere is refused until the old life is found dead.
    async fn name_conflict(
        &mut self,
        name: &NodeId,
        env: &Datagram,
        from: Option<SocketAddr>,
    ) -> bool {
        let Some(&(life, Some(held))) = self.lives.get(name) else {
            return false;
        };
        let theirs: Option<SocketAddr> = env.a.parse().ok().or(from);
        if env.e == 0 || env.e == life || theirs.is_none_or(|t| t == held) {
            return false;
        }
        self.stats.name_conflicts += 1;
        let shown = theirs.map_or_else(|| "a stream".to_string(), |t| t.to_string());
        tracing::warn!(
            "refused an agent named {name} at {shown}: {name} is a live member at {held}"
        );
        if let Some(to) = from {
            let no = Datagram {
                x: format!(
                    "the name {name} is held by a live member at {held}: give this agent another --name (or stop the other)"
                ),
                ..self.head.clone()
            };
            let _ = self.sock.send_to(&self.codec.empty(&no), to).await;
        }
        true
    }

    /// Asks the addresses of runtime joins that are due who they are.
    async fn ask_joins(&mut self, now: CoreInstant) {
        let due = self.joins.due(now);
        if !due.is_empty() {
            let hello = self.codec.empty(&Datagram {
                who: true,
                ..self.head.clone()
            });
            for a in due {
                let _ = self.sock.send_to(&hello, a).await;
            }
        }
    }

    /// A seed said why it will not take this agent in.
    fn refused_by(&mut self, env: &Datagram, from: Option<SocketAddr>) {
        if let Some(f) = from {
            let why: String = env.x.chars().take(300).collect();
            self.joins.refused(&f, &format!("{}: {why}", env.f));
        }
        let Some(seed) = from.filter(|f| self.seeds.is_seed(f) && !self.seeds.done()) else {
            return;
        };
        let why: String = env.x.chars().take(300).collect();
        let text = format!("refused by {seed} ({}): {why}", env.f);
        if self.refusal.as_deref() != Some(text.as_str()) {
            tracing::error!("{text}");
        }
        self.refusal = Some(text);
    }

    /// A member asks for a keyring change (this agent makes it and
    /// answers), or answers one this agent asked for.
    async fn key_query(&mut self, from: &NodeId, addr: Option<SocketAddr>, q: keyquery::KeyQuery) {
        match q {
            keyquery::KeyQuery::Ask { id, op } => {
                let Some(addr) = addr.or_else(|| self.addrs.get(from).copied()) else {
                    return;
                };
                let keys = self.apply_query(&op);
                let answer = keyquery::KeyQuery::Answer { id, keys };
                self.send_query(addr, answer).await;
            }
            keyquery::KeyQuery::Answer { id, keys } => {
                if let Some(p) = self.queries.iter_mut().find(|p| p.id == id) {
                    p.answer(from, keys);
                }
                self.run_queries().await;
            }
        }
    }

    /// A keyring change asked for cluster-wide, idempotent: removing a key
    /// that is not installed is done. The keyring after it, or why not.
    fn apply_query(&mut self, op: &keyquery::Op) -> Result<Vec<String>, String> {
        let installed = |k: &Key| self.codec.keys.keys().contains(k);
        let change = op
            .change()?
            .filter(|c| !matches!(c, KeyOp::Remove(k) if !installed(k)));
        if let Some(c) = change {
            self.keys_change(c)?;
            self.keep_keys(None);
        }
        Ok(self.codec.keys.keys().iter().map(Key::to_base64).collect())
    }

    async fn send_query(&mut self, to: SocketAddr, q: keyquery::KeyQuery) {
        let env = Datagram {
            kq: Some(q),
            ..self.head.clone()
        };
        if let Some(d) = self.codec.datagram(&env) {
            self.stats.sent.count("keys", 0);
            let _ = self.sock.send_to(&d, to).await;
        }
    }

    /// Starts a cluster-wide keyring change: here first (a change this
    /// agent refuses goes nowhere), then to every live member.
    async fn start_query(
        &mut self,
        op: Option<KeyOp>,
        reply: oneshot::Sender<Result<KeyReport, String>>,
    ) {
        if self.queries.len() >= keyquery::MAX_PENDING {
            let _ = reply.send(Err("too many keyring changes in progress; try again".into()));
            return;
        }
        let op = keyquery::Op::of(op);
        if op != keyquery::Op::List && self.codec.keys.is_empty() {
            let _ = reply.send(Err(CLEAR_TEXT.into()));
            return;
        }
        let local = match self.apply_query(&op) {
            Ok(k) => k,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        let targets = self
            .node
            .swim()
            .members()
            .filter(|(_, _, st, _)| matches!(st, Status::Alive | Status::Suspect))
            .filter_map(|(id, _, _, meta)| Some((id.clone(), meta_addr(meta)?)))
            .collect();
        self.next_query += 1;
        let p = keyquery::Pending::new(
            self.next_query,
            op,
            &self.me,
            Ok(local),
            targets,
            self.now(),
            reply,
        );
        self.queries.push(p);
        self.run_queries().await;
    }

    /// Asks again the members that have not answered; reports the changes
    /// that are done.
    async fn run_queries(&mut self) {
        if self.queries.is_empty() {
            return;
        }
        let now = self.now();
        let mut sends = Vec::new();
        for p in &mut self.queries {
            for a in p.due(now) {
                sends.push((
                    a,
                    keyquery::KeyQuery::Ask {
                        id: p.id,
                        op: p.op.clone(),
                    },
                ));
            }
        }
        for (a, q) in sends {
            self.send_query(a, q).await;
        }
        let (done, waiting) = std::mem::take(&mut self.queries)
            .into_iter()
            .partition(|p| p.done(now));
        self.queries = waiting;
        for p in done {
            keyquery::Pending::finish(p);
        }
    }

    /// Sends what the machines want sent, packed per destination.
    async fn flush(&mut self, out: &mut Outbox<ClusterMsg>) {
        let mut by: HashMap<NodeId, Vec<hearsay_core::cluster::ClusterMsg>> = HashMap::new();
        for (to, m) in out.drain() {
            by.entry(to).or_default().push(m);
        }
        let mut kv_by: HashMap<NodeId, Vec<kv::KvMsg>> = HashMap::new();
        for (to, m) in self.kv_out.drain() {
            kv_by.entry(to).or_default().push(m);
        }
        let mut datagrams = Vec::new();
        for (to, msgs) in by {
            for m in &msgs {
                self.stats.sent.count(m.msg.kind(), encoded_len(&m.msg));
            }
            datagrams.push((to, self.codec.encode(&self.head, msgs)));
        }
        for (to, msgs) in kv_by {
            for _ in &msgs {
                self.stats.sent.count("kv", 0);
            }
            datagrams.push((to, self.codec.encode_kv(&self.head, msgs)));
        }
        for (to, ds) in datagrams {
            let addr = self
                .addrs
                .get(&to)
                .copied()
                .or_else(|| self.member_addr(&to));
            let Some(addr) = addr else {
                tracing::debug!("no address for {to}");
                continue;
            };
            if self.cut.contains(&addr) {
                continue;
            }
            for d in ds {
                self.send_bytes(addr, d).await;
            }
        }
    }

    /// A local map write. With a data dir it is answered, and its deltas
    /// leave, once it is on disk ([`Loop::release`]).
    fn kv_write(
        &mut self,
        key: String,
        value: Option<String>,
        reply: oneshot::Sender<Result<(), String>>,
    ) {
        let now = self.now();
        let Some(st) = &mut self.store else {
            let r = self
                .kv
                .write(now, Self::wall_ms(), key, value, &mut self.kv_out);
            let _ = reply.send(r.map(|_| ()));
            return;
        };
        let mut held = Outbox::default();
        match self.kv.write(now, Self::wall_ms(), key, value, &mut held) {
            Ok((delta, own)) => {
                let done = store::Done {
                    ack: reply,
                    held: held.drain().collect(),
                    own,
                    result: Ok(()),
                };
                if let Err(mut done) = st.write(delta, done) {
                    done.held.clear();
                    self.release(done);
                }
            }
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        }
    }

    /// Answers a broadcast or user event sent here with `r`: at once
    /// without a data dir, else once the payload is kept there (so a
    /// next life sends it again should this one die before any other
    /// member holds it).
    fn answer_sent<T: Send + 'static>(
        &mut self,
        r: Result<(Payload, T), impl std::fmt::Display>,
        reply: oneshot::Sender<Result<T, String>>,
    ) {
        match (r, &mut self.store) {
            (Ok((p, t)), Some(st)) => {
                let (kept, on_disk) = oneshot::channel();
                st.sent(&p, kept);
                tokio::spawn(async move {
                    let r = on_disk
                        .await
                        .unwrap_or_else(|_| Err("the agent stopped".into()));
                    let _ = reply.send(r.map(|()| t));
                });
            }
            (r, _) => {
                let _ = reply.send(r.map(|(_, t)| t).map_err(|e| e.to_string()));
            }
        }
    }

    /// Says, once, that the cluster held an earlier life of this member
    /// under another identity key (its data dir was wiped or replaced):
    /// until the others forget it, they refuse this life's claims.
    fn tell_buried(&mut self) {
        if !self.told_buried && self.node.swim().stats().buried > 0 {
            self.told_buried = true;
            tracing::warn!(
                "the cluster knows an earlier life of {} under another identity key (was its data dir wiped or replaced?): declared that life dead; the others take this one once they have forgotten it, {} s after its death (dead retention); until then they list this member dead",
                self.me,
                self.node.swim().config().dead_retention.as_secs()
            );
        }
    }

    /// Sends again what earlier lives sent in the retention window (kept
    /// in the data dir), once there is someone to send it to.
    fn resend_earlier(&mut self, now: CoreInstant, out: &mut Outbox<ClusterMsg>) {
        let earlier = std::mem::take(&mut self.resend);
        let mut n = 0;
        for p in earlier {
            match self.node.resend(now, p, out) {
                Ok(()) => n += 1,
                Err(e) => tracing::warn!("not sent again: {e}"),
            }
        }
        self.stats.resent += n as u64;
        tracing::info!(
            "sent again {n} payloads an earlier life sent in the last {} s (kept in the data dir; members that have them drop the copies)",
            hearsay_core::cluster::RETENTION.ttl.as_secs()
        );
    }

    /// A local write the data dir has kept (its deltas go now) or could
    /// not keep (the writer hears why).
    fn release(&mut self, done: store::Done) {
        for (to, m) in done.held {
            self.kv_out.push(to, m);
        }
        // Kept; or refused because the writer's queue was full, and then
        // in the snapshot that catches the file up: what waited may go.
        self.kv.kept(done.own, &mut self.kv_out);
        let _ = done.ack.send(done.result);
    }

    /// Keeps the keyring in the data dir, answering `ack` once it is on
    /// disk (at once without a data dir).
    fn keep_keys(&mut self, ack: Option<oneshot::Sender<Result<(), String>>>) {
        match &mut self.store {
            Some(st) => st.keys(
                self.codec.keys.keys().iter().map(Key::to_base64).collect(),
                ack,
            ),
            None => {
                if let Some(a) = ack {
                    let _ = a.send(Ok(()));
                }
            }
        }
    }

    fn keys_change(&mut self, op: KeyOp) -> Result<(), String> {
        let ring = &mut self.codec.keys;
        match op {
            KeyOp::Install(k) => {
                if ring.is_empty() {
                    return Err(CLEAR_TEXT.into());
                }
                ring.install(k);
            }
            KeyOp::Use(k) => ring.use_key(&k)?,
            KeyOp::Remove(k) => ring.remove(&k)?,
        }
        let keys = ring.keys().iter().map(Key::to_base64).collect();
        if let Ok(mut s) = self.shared.lock() {
            s.keys = keys;
        }
        Ok(())
    }

    fn member_addr(&self, id: &NodeId) -> Option<SocketAddr> {
        self.node
            .swim()
            .members()
            .find(|(m, ..)| *m == id)
            .and_then(|(_, _, _, meta)| meta_addr(meta))
    }

    /// The member list for the API, after bringing the key-value peers,
    /// the address book and the members-by-state figures up to date.
    fn membership(&mut self) -> Vec<MemberInfo> {
        let mut members = Vec::new();
        // Members still in (not left): they keep an address.
        let mut known: HashSet<NodeId> = HashSet::new();
        // What a restart rejoins: members still in, where they gossip.
        let mut kept = Vec::new();
        // This agent counts as alive, until it leaves.
        let gone = self.node.swim().has_left();
        let mut by_state = [
            ("alive", usize::from(!gone)),
            ("suspect", 0),
            ("dead", 0),
            ("left", usize::from(gone)),
        ];
        self.lives.clear();
        for (id, inc, st, meta) in self.node.swim().members() {
            if st == Status::Alive {
                self.lives
                    .insert(id.clone(), (inc.epoch.0, meta_addr(meta)));
            }
            if st != Status::Left {
                known.insert(id.clone());
                if let Some(a) = meta_addr(meta) {
                    kept.push((id.to_string(), a.to_string()));
                }
            }
            let state = state_name(st);
            if let Some(e) = by_state.iter_mut().find(|(s, _)| state == *s) {
                e.1 += 1;
            }
            members.push(MemberInfo {
                name: id.to_string(),
                addr: meta.addr.as_deref().map(String::from),
                zone: meta.zone.as_deref().map(String::from),
                tags: tags_from(&meta.tags),
                state,
                epoch: inc.epoch.0,
                incarnation: inc.n,
                is_self: false,
            });
        }
        members.push(MemberInfo {
            name: self.me.to_string(),
            addr: Some(self.advertise.to_string()),
            zone: self.zone.clone(),
            tags: tags_from(&self.node.swim().meta().tags),
            state: if gone {
                MemberState::Left
            } else {
                MemberState::Alive
            },
            epoch: self.node.swim().incarnation().epoch.0,
            incarnation: self.node.swim().incarnation().n,
            is_self: true,
        });
        members.sort_by(|a, b| a.name.cmp(&b.name));
        // An empty table (this life has not joined yet, or everyone else
        // is gone) is not kept: the last members known stay the seeds of
        // the next start.
        if let Some(st) = self.store.as_mut().filter(|_| !kept.is_empty()) {
            kept.sort();
            st.members(kept);
        }
        // Only members and seeds keep an address: a stranger's name does
        // not stay in the map.
        self.addrs
            .retain(|id, a| known.contains(id) || self.seeds.is_seed(a));
        self.addrs_kept = self.addrs.len();
        let now = self.now();
        let table = self.node.swim().members().map(|(id, _, st, _)| (id, st));
        self.kv.follow(now, table);
        self.stats.members_by_state = by_state;
        members
    }

    /// Hands membership changes and user events to the handlers that
    /// want them (never waiting: see [`handlers`]).
    fn run_handlers(&self, events: &[MemberEvent], user_events: &[UserEvent]) {
        let Some(h) = &self.handlers else {
            return;
        };
        if events.is_empty() && user_events.is_empty() {
            return;
        }
        let me = handlers::self_env(self.me.as_str(), &tags_from(&self.node.swim().meta().tags));
        for e in events {
            let Some(kind) = handlers::Kind::of_change(e.change) else {
                continue;
            };
            // Serf's member lines: name, address, tags.
            let (addr, tags) = self
                .node
                .swim()
                .members()
                .find(|(id, ..)| id.as_str() == e.name)
                .map(|(_, _, _, m)| {
                    let tags: Vec<String> =
                        m.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    (m.addr.as_deref().unwrap_or("").to_string(), tags.join(","))
                })
                .unwrap_or_default();
            h.submit(handlers::Job {
                kind,
                name: None,
                env: me.clone(),
                stdin: format!("{}\t{addr}\t{tags}\n", e.name).into_bytes(),
                coalesce: false,
            });
        }
        for e in user_events {
            let mut env = me.clone();
            env.extend([
                ("HEARSAY_USER_EVENT".to_string(), e.name.clone()),
                ("HEARSAY_USER_LTIME".to_string(), e.lamport.to_string()),
                ("HEARSAY_ORIGIN".to_string(), e.origin.clone()),
            ]);
            h.submit(handlers::Job {
                kind: handlers::Kind::User,
                name: Some(e.name.clone()),
                env,
                stdin: e.payload.clone(),
                coalesce: e.coalesce,
            });
        }
    }

    /// What the machines changed goes to the shared state the HTTP API and
    /// streams read. Runs after every input, so the work that depends on
    /// the membership (the member list, the key-value peers, the address
    /// book) is done only when a membership event says it changed.
    fn publish(&mut self) {
        // Broadcasts go at once; user events in order per origin.
        let now = self.now();
        let mut ready = Vec::new();
        for p in self.node.drain_delivered() {
            self.order.push(now, p, &mut ready);
        }
        self.order.tick(now, &mut ready);
        let mut delivered: Vec<Delivery> = Vec::new();
        let mut user_events: Vec<UserEvent> = Vec::new();
        for p in ready {
            match p.event {
                None => delivered.push(Delivery {
                    origin: p.id.0.to_string(),
                    epoch: p.id.1.0,
                    seq: p.id.2,
                    data: p.data.to_vec(),
                }),
                Some(e) => user_events.push(UserEvent {
                    name: e.name.into(),
                    payload: p.data.to_vec(),
                    origin: p.id.0.to_string(),
                    lamport: e.lamport,
                    coalesce: e.coalesce,
                }),
            }
        }
        let wall_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let mut events: Vec<MemberEvent> = self.node.drain_events().map(member_event).collect();
        let swim = self.node.swim();
        for m in &mut events {
            if matches!(m.change, Change::Suspect | Change::Dead) {
                m.by = swim
                    .accuser_of(&NodeId::new(&m.name))
                    .map(ToString::to_string);
            }
        }
        if self.delegate.is_some() {
            self.state_due.extend(
                events
                    .iter()
                    .filter(|e| e.change == Change::Joined)
                    .map(|e| NodeId::new(&e.name)),
            );
        }
        for e in &events {
            // No subscriber is not an error.
            let _ = self.events.send(e.clone());
        }
        self.run_handlers(&events, &user_events);
        for e in &user_events {
            let _ = self.user_stream.send(e.clone());
        }
        for d in &delivered {
            let _ = self.deliveries.send(d.clone());
        }
        // Strangers' addresses (senders not yet members) are pruned with
        // the member list, and sooner if many pile up between changes.
        let strangers = self.addrs.len() > self.addrs_kept + MAX_STRANGERS;
        let members =
            (!events.is_empty() || !self.published || strangers).then(|| self.membership());
        self.published = true;
        if let Some(st) = &mut self.store {
            st.catch_up(|| self.kv.state().clone());
        }
        let kv = self.kv.take_changed().then(|| self.kv.snapshot());
        let st = &mut self.stats;
        st.swim = self.node.swim().stats();
        st.cast = self.node.stats();
        st.health = self.node.swim().health();
        st.delivered += delivered.len() as u64;
        if let Ok(mut s) = self.shared.lock() {
            if let Some(kv) = kv {
                s.kv = kv;
            }
            if let Some(members) = members {
                s.members = members;
            }
            s.delivered_bytes += delivered.iter().map(|d| d.data.len()).sum::<usize>();
            s.delivered
                .extend(delivered.into_iter().map(|d| (wall_us, d.data)));
            // The oldest go first, past the count or the bytes.
            let mut over = s.delivered.len().saturating_sub(self.kept.0);
            let mut bytes: usize = s.delivered[..over].iter().map(|(_, d)| d.len()).sum();
            while s.delivered_bytes - bytes > self.kept.1 && over < s.delivered.len() {
                bytes += s.delivered[over].1.len();
                over += 1;
            }
            s.delivered_bytes -= bytes;
            s.delivered.drain(..over);
            s.events.extend(events.into_iter().map(|e| (wall_us, e)));
            let old = s.events.len().saturating_sub(MAX_KEPT);
            s.events.drain(..old);
            st.user_events += user_events.len() as u64;
            s.user_events
                .extend(user_events.into_iter().map(|e| (wall_us, e)));
            let old = s.user_events.len().saturating_sub(MAX_KEPT);
            s.user_events.drain(..old);
            st.user_events_skipped = self.order.skipped;
            if let Some(h) = &self.handlers {
                use std::sync::atomic::Ordering::Relaxed;
                let c = &h.counters;
                st.handler_runs = c.runs.load(Relaxed);
                st.handler_failures = c.failures.load(Relaxed);
                st.handler_timeouts = c.timeouts.load(Relaxed);
                st.handler_dropped = c.dropped.load(Relaxed);
                st.handler_coalesced = c.coalesced.load(Relaxed);
            }
            st.kept_dropped += over as u64;
            st.kept_payloads = s.delivered.len();
            st.kv_keys = s.kv.len();
            st.kv_held_dropped = self.kv.held_dropped;
            st.keys = s.keys.len();
            s.metrics = st.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lone start does not wipe the members a data dir kept: they are
    /// the seeds of the next start too.
    #[tokio::test]
    async fn a_lone_start_keeps_the_members_it_was_given() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (tx, _rx) = mpsc::unbounded_channel();
            let (mut st, _) = store::Store::open(dir.path(), "a", "hearsay", tx).unwrap();
            st.members(vec![("b".into(), "127.0.0.1:9".into())]);
        }
        let mut cfg = AgentConfig::new("a");
        cfg.bind = "127.0.0.1:0".parse().unwrap();
        cfg.data_dir = Some(dir.path().into());
        let agent = Agent::start(cfg).await.unwrap();
        // Past the writer's flush (a second): anything it was going to
        // write is on disk.
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        drop(agent);
        // The loop's task ends (and its store closes) once aborted.
        let (tx, _rx) = mpsc::unbounded_channel();
        let mut tries = 0;
        let restored = loop {
            match store::Store::open(dir.path(), "a", "hearsay", tx.clone()) {
                Ok((_, r)) => break r,
                Err(e) if e.contains("in use") && tries < 50 => {
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!(
            restored.members,
            vec![("b".to_string(), "127.0.0.1:9".parse().unwrap())]
        );
    }

    /// A clear-text envelope that claims another address gets its answer
    /// where it came from: the claim cannot aim this agent at a third
    /// party.
    /// Leave is final: no more work is taken, the agent lists itself as
    /// left, the other sees a leave; shutdown ends it.
    #[tokio::test]
    async fn leave_is_final_and_shutdown_ends_the_agent() {
        let start = |name: &str, join: Vec<SocketAddr>| {
            let mut cfg = AgentConfig::new(name);
            cfg.bind = "127.0.0.1:0".parse().unwrap();
            cfg.join = join;
            Agent::start(cfg)
        };
        let a = start("a", vec![]).await.unwrap();
        let b = start("b", vec![a.local_addr()]).await.unwrap();
        let alive = |x: &Agent, who: &str| {
            x.members()
                .iter()
                .any(|m| m.name == who && m.state == "alive")
        };
        for _ in 0..100 {
            if alive(&a, "b") && alive(&b, "a") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(alive(&a, "b") && alive(&b, "a"), "joined");
        assert!(!a.has_left());
        a.leave().await;
        assert!(a.has_left());
        let refused = a.broadcast(b"late".to_vec()).await.unwrap_err();
        assert_eq!(refused, Error::Left, "typed, to match on");
        assert!(refused.to_string().contains("has left"), "{refused}");
        assert!(a.kv_set("k".into(), "v".into()).await.is_err());
        assert!(
            a.reachability(std::time::Duration::from_millis(200))
                .await
                .is_err()
        );
        let me = a.members().into_iter().find(|m| m.is_self).unwrap();
        assert_eq!(me.state, "left");
        let t = std::time::Instant::now();
        a.leave().await;
        assert!(
            t.elapsed() < std::time::Duration::from_millis(100),
            "a second leave returns at once"
        );
        let mut seen = false;
        for _ in 0..100 {
            seen = b
                .members()
                .iter()
                .any(|m| m.name == "a" && m.state == "left");
            if seen {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(seen, "b sees a leave, not a failure");
        let t = std::time::Instant::now();
        b.shutdown().await;
        assert!(t.elapsed() < std::time::Duration::from_secs(3));
    }

    /// Queries from the library: the application answers (a large answer
    /// goes over TCP), a member that does not answer the name only
    /// acknowledges, filters choose whom to ask, and a member cut off is
    /// reported missing.
    #[tokio::test]
    async fn queries_are_answered_by_the_application_and_summed_up() {
        use query::{Request, Update};
        let start = |name: &str, join: Vec<SocketAddr>, role: &str| {
            let mut cfg = AgentConfig::new(name)
                .bind("127.0.0.1:0".parse().unwrap())
                .join(join)
                .tag("role", role);
            cfg.test_faults = true;
            Agent::start(cfg)
        };
        assert!(
            !AgentConfig::default().name.is_empty(),
            "named after the host"
        );
        let a = start("a", vec![], "db").await.unwrap();
        let b = start("b", vec![a.local_addr()], "web").await.unwrap();
        let c = start("c", vec![a.local_addr()], "web").await.unwrap();
        for _ in 0..200 {
            let all = [&a, &b, &c]
                .iter()
                .all(|x| x.members().iter().filter(|m| m.state == "alive").count() == 3);
            if all {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let mut answers = b.answer_queries().await.unwrap();
        tokio::spawn(async move {
            while let Some(q) = answers.recv().await {
                match q.name.as_str() {
                    "big" => q.respond(vec![b'x'; 20_000]),
                    "refuse" => q.fail("not today"),
                    _ => {
                        let mut p = b"b got ".to_vec();
                        p.extend(&q.payload);
                        p.extend(format!(" from {}", q.from).into_bytes());
                        q.respond(p);
                    }
                }
            }
        });
        async fn collect(mut rx: tokio::sync::mpsc::Receiver<Update>) -> Vec<Update> {
            let mut v = Vec::new();
            while let Some(u) = rx.recv().await {
                v.push(u);
            }
            v
        }
        let ask = |name: &str, payload: &str| Request {
            name: name.into(),
            payload: payload.as_bytes().to_vec(),
            timeout: std::time::Duration::from_secs(3),
            ..Request::default()
        };
        let got = collect(a.query(ask("hello", "hi")).await.unwrap()).await;
        let Some(Update::Done(s)) = got.last() else {
            panic!("{got:?}")
        };
        assert_eq!(s.asked, ["a", "b", "c"]);
        assert_eq!(s.acked, ["a", "b", "c"]);
        assert_eq!(s.answered, ["b"], "{got:?}");
        assert!(s.missing.is_empty() && s.late.is_empty(), "{s:?}");
        assert!(s.elapsed_ms < 3000, "ended when every answer was in: {s:?}");
        assert!(got.contains(&Update::Answer {
            from: "b".into(),
            payload: b"b got hi from a".to_vec()
        }));
        assert!(got.contains(&Update::Ack {
            from: "c".into(),
            answers: false
        }));
        // Larger than any datagram: over TCP.
        let got = collect(a.query(ask("big", "")).await.unwrap()).await;
        assert!(
            got.iter().any(|u| matches!(u, Update::Answer { from, payload } if from == "b" && payload.len() == 20_000)),
            "{got:?}"
        );
        let got = collect(a.query(ask("refuse", "")).await.unwrap()).await;
        assert!(got.contains(&Update::Failed {
            from: "b".into(),
            error: "not today".into()
        }));
        // Filters: by tag (the whole value), by name.
        let mut r = ask("hello", "x");
        r.tags = [("role".to_string(), "web".to_string())].into();
        let got = collect(c.query(r).await.unwrap()).await;
        let Some(Update::Done(s)) = got.last() else {
            panic!("{got:?}")
        };
        assert_eq!(s.asked, ["b", "c"]);
        assert_eq!(s.answered, ["b"]);
        let mut r = ask("hello", "x");
        r.nodes = vec!["a".into()];
        let got = collect(c.query(r).await.unwrap()).await;
        let Some(Update::Done(s)) = got.last() else {
            panic!("{got:?}")
        };
        assert_eq!(s.asked, ["a"]);
        // c drops a's traffic: asked, never acknowledged.
        c.cut(vec![a.local_addr()]).await.unwrap();
        let mut r = ask("hello", "x");
        r.timeout = std::time::Duration::from_millis(800);
        let got = collect(a.query(r).await.unwrap()).await;
        let Some(Update::Done(s)) = got.last() else {
            panic!("{got:?}")
        };
        assert_eq!(s.missing, ["c"], "{s:?}");
        assert_eq!(s.answered, ["b"]);
        // Bad requests are refused before anything is sent.
        let mut r = ask("hello", "x");
        r.tags = [("role".to_string(), "(".to_string())].into();
        let e = a.query(r).await.unwrap_err();
        assert!(
            matches!(&e, Error::Refused(m) if m.contains("role=(")),
            "{e:?}"
        );
    }

    /// A message to one member: only it gets it (a small one in a
    /// datagram, a large one over TCP); a name that is not an alive member
    /// is refused; broadcasts are delivered with their origin and number.
    #[tokio::test]
    async fn direct_messages_reach_one_member_and_deliveries_name_their_origin() {
        let start = |name: &str, join: Vec<SocketAddr>| {
            Agent::start(
                AgentConfig::new(name)
                    .bind("127.0.0.1:0".parse().unwrap())
                    .join(join),
            )
        };
        let a = start("a", vec![]).await.unwrap();
        let b = start("b", vec![a.local_addr()]).await.unwrap();
        let c = start("c", vec![a.local_addr()]).await.unwrap();
        for _ in 0..200 {
            let all = [&a, &b, &c].iter().all(|x| {
                x.members()
                    .iter()
                    .filter(|m| m.state == MemberState::Alive)
                    .count()
                    == 3
            });
            if all {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let (mut at_b, mut at_c) = (b.direct(), c.direct());
        let mut delivered = c.deliveries();
        a.send_to("b", b"just you".to_vec()).await.unwrap();
        a.send_to("b", vec![7; 30_000]).await.unwrap();
        let wait = std::time::Duration::from_secs(5);
        let m = tokio::time::timeout(wait, at_b.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (m.from.as_str(), m.data.as_slice()),
            ("a", b"just you".as_slice())
        );
        let m = tokio::time::timeout(wait, at_b.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(m.data.len(), 30_000, "over TCP");
        assert!(at_c.try_recv().is_err(), "c got nothing");
        let e = a.send_to("nobody", b"x".to_vec()).await.unwrap_err();
        assert!(
            matches!(&e, Error::Refused(m) if m.contains("not an alive member")),
            "{e}"
        );
        b.broadcast(b"to all".to_vec()).await.unwrap();
        let d = tokio::time::timeout(wait, delivered.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (d.origin.as_str(), d.seq, d.data.as_slice()),
            ("b", 1, b"to all".as_slice())
        );
    }

    /// `ready()`: at once for a first member, once joined for the others,
    /// and an error saying why for a seed nobody answers at.
    #[tokio::test]
    async fn ready_says_whether_and_why_not_an_agent_joined() {
        let start = |name: &str, join: Vec<SocketAddr>| {
            Agent::start(
                AgentConfig::new(name)
                    .bind("127.0.0.1:0".parse().unwrap())
                    .join(join),
            )
        };
        let wait = std::time::Duration::from_secs(5);
        let a = start("a", vec![]).await.unwrap();
        a.ready(std::time::Duration::ZERO).await.unwrap();
        let b = start("b", vec![a.local_addr()]).await.unwrap();
        b.ready(wait).await.unwrap();
        assert!(
            b.members()
                .iter()
                .any(|m| m.name == "a" && m.state == MemberState::Alive)
        );
        // A port where nobody answers (a socket bound and never read).
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let c = start("c", vec![silent.local_addr().unwrap()])
            .await
            .unwrap();
        let e = c
            .ready(std::time::Duration::from_millis(1500))
            .await
            .unwrap_err();
        assert!(
            matches!(&e, Error::Refused(m) if m.contains("not joined after")),
            "{e}"
        );
    }

    /// The state delegate: members that see each other join trade states
    /// (join = true), and each trades with a random member every
    /// `state_sync` (join = false), the receiver answering with its own.
    #[tokio::test]
    async fn application_state_is_traded_on_join_and_now_and_then() {
        type Merged = Arc<Mutex<Vec<(String, Vec<u8>, bool)>>>;
        struct App(&'static str, Merged);
        impl StateDelegate for App {
            fn local_state(&self, _join: bool) -> Vec<u8> {
                format!("shards of {}", self.0).into_bytes()
            }
            fn merge_remote_state(&self, from: &str, state: &[u8], join: bool) {
                self.1
                    .lock()
                    .unwrap()
                    .push((from.to_string(), state.to_vec(), join));
            }
        }
        let start = |name: &'static str, join: Vec<SocketAddr>| {
            let merged: Merged = Arc::default();
            let mut cfg = AgentConfig::new(name)
                .bind("127.0.0.1:0".parse().unwrap())
                .join(join);
            cfg.delegate = Some(App(name, merged.clone()).into());
            cfg.state_sync = std::time::Duration::from_millis(200);
            async move { (Agent::start(cfg).await.unwrap(), merged) }
        };
        let (a, at_a) = start("a", vec![]).await;
        let (b, at_b) = start("b", vec![a.local_addr()]).await;
        b.ready(std::time::Duration::from_secs(5)).await.unwrap();
        let has = |m: &Merged, from: &str, join: bool| {
            m.lock().unwrap().iter().any(|(f, d, j)| {
                f == from && *j == join && *d == format!("shards of {from}").into_bytes()
            })
        };
        for _ in 0..100 {
            if has(&at_a, "b", true)
                && has(&at_b, "a", true)
                && has(&at_a, "b", false)
                && has(&at_b, "a", false)
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(
            has(&at_a, "b", true) && has(&at_b, "a", true),
            "traded on join"
        );
        assert!(
            has(&at_a, "b", false) && has(&at_b, "a", false),
            "and now and then"
        );
        drop((a, b));
    }

    #[tokio::test]
    async fn a_clear_text_claim_cannot_aim_answers_at_a_third_party() {
        let mut cfg = AgentConfig::new("victim");
        cfg.bind = "127.0.0.1:0".parse().unwrap();
        let agent = Agent::start(cfg).await.unwrap();
        let asker = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let third = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let codec = Codec {
            cluster: "hearsay".into(),
            keys: Keyring::new(Vec::new()),
        };
        let who = Datagram {
            f: "asker".into(),
            a: third.local_addr().unwrap().to_string(),
            who: true,
            e: 1,
            t: 0,
            m: vec![],
            kv: vec![],
            kq: None,
            rq: None,
            qy: None,
            dm: None,
            st: None,
            x: String::new(),
        };
        asker
            .send_to(&codec.empty(&who), agent.local_addr())
            .await
            .unwrap();
        let mut buf = vec![0u8; 2048];
        let wait = std::time::Duration::from_secs(2);
        let answered = tokio::time::timeout(wait, asker.recv_from(&mut buf)).await;
        assert!(answered.is_ok(), "the asker is answered");
        let stray = tokio::time::timeout(
            std::time::Duration::from_millis(300),
            third.recv_from(&mut buf),
        )
        .await;
        assert!(stray.is_err(), "nothing goes to the claimed address");
    }

    #[tokio::test]
    async fn udp_and_tcp_share_one_port_and_a_taken_explicit_port_is_a_clear_error() {
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let (sock, listener) = bind_pair(any).await.unwrap();
        let port = sock.local_addr().unwrap().port();
        assert_ne!(port, 0);
        assert_eq!(listener.local_addr().unwrap().port(), port);
        // A port whose TCP side is taken: not retried when asked for by
        // number, and the error says why.
        let tcp = std::net::TcpListener::bind(any).unwrap();
        let taken = tcp.local_addr().unwrap();
        if std::net::UdpSocket::bind(taken).is_ok() {
            let err = bind_pair(taken).await.expect_err("TCP side is taken");
            assert!(
                format!("{err:#}").contains("streams share the gossip port"),
                "{err:#}"
            );
        }
    }
}
