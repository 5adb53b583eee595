//! `--data-dir`: what an agent keeps across a restart (the members it knew,
//! its keyring, the key-value map), in one [redb] file, `agent.redb`.
//!
//! redb rather than a log of our own: it is an ACID store made for exactly
//! this (copy-on-write B-trees, checksummed pages, fsync'd commits, repair
//! after a crash, a lock against a second process on the same file), and
//! pure Rust. A file it cannot open or a record we cannot read is an error
//! naming the file, never an empty start.
//!
//! Writes run on a thread of their own so a slow disk never stalls
//! gossip: the loop hands over jobs through a bounded queue, the thread
//! commits them in batches (group commit) and answers each write that
//! waits for the disk once its batch is durable. The map is kept as a
//! snapshot plus a log of deltas (a CRDT: merging them in any order gives
//! the state back), folded into a new snapshot when the log outgrows it.
//!
//! Broadcasts and user events this agent sent are kept too, for the
//! cluster's retention window: an agent killed before any other member
//! held one sends it again in its next life, under its first id (members
//! that have it drop the copy).

use crate::kv::KvMap;
use hearsay_core::cluster::{Payload, RETENTION};
use hearsay_core::crdt::Crdt;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// The file in the data dir.
pub const FILE: &str = "agent.redb";

/// Opens (creating) a store file the way the agent does.
fn open_db(path: &Path) -> Result<Database, redb::DatabaseError> {
    // Checked whole at every open (a few MB at most): a file changed
    // behind redb's back is then an error, where a plain open may panic
    // on it.
    Database::builder()
        .set_check_integrity_on_open(true)
        .create(path)
}

/// Identity, format and keyring.
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// Member name to the address it gossips on.
const MEMBERS: TableDefinition<&str, &str> = TableDefinition::new("members");
/// The map's last snapshot, under one key.
const KV_STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("kv_state");
/// Deltas since that snapshot, in order.
const KV_LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("kv_log");
/// Payloads sent here, by (life, number): when (wall-clock ms, 8 bytes big
/// endian), then the payload (MessagePack).
const SENT: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("sent");

const FORMAT: u32 = 1;

/// Jobs waiting for the writer, at most; past it the loop keeps what it
/// could not hand over and hands it over later (see [`Store::catch_up`]).
const QUEUE: usize = 1024;
/// Jobs per transaction, at most.
const BATCH: usize = 256;
/// A commit that nothing waits for is made durable within this.
const FLUSH: Duration = Duration::from_secs(1);
/// The log is folded into a snapshot once it holds this many deltas and
/// more bytes than the snapshot.
const FOLD_AFTER: u64 = 64;

/// An answer once a write is on disk.
pub type Ack = oneshot::Sender<Result<(), String>>;

/// What the loop hands the writer.
enum Job {
    /// A delta of the map; a local write's comes with its answer and with
    /// what may leave this agent only once it is kept.
    Delta(KvMap, Option<Done>),
    /// The whole map (after a full state replaced it, or to catch up).
    State(KvMap),
    Members(Vec<(String, String)>),
    Keys(Vec<String>, Option<Ack>),
    Tags(BTreeMap<String, String>, Option<Ack>),
    /// A payload this agent sent, encoded as the table keeps it.
    Sent((u64, u64), Vec<u8>, Ack),
}

/// A local write, released by the writer once it is durable.
pub struct Done {
    /// Answers the caller with `result`.
    pub ack: Ack,
    /// The write's deltas for the peers: sent after the commit, so a write
    /// another member has seen is on this agent's disk (a restarted agent
    /// never reuses the version of a write that went out).
    pub held: Vec<(hearsay_core::id::NodeId, crate::kv::KvMsg)>,
    /// This replica's writes so far, this one included
    /// ([`crate::kv::Kv::kept`]).
    pub own: u64,
    /// What the caller is told: Ok once the write is on disk, or why it
    /// was not kept.
    pub result: Result<(), String>,
}

/// What a data dir held at start.
#[derive(Debug, Default)]
pub struct Restored {
    /// None: no keyring kept (a new data dir, or a clear-text agent).
    pub keys: Option<Vec<String>>,
    /// The members last known (left ones excepted), with the address each
    /// gossips on: this start rejoins them.
    pub members: Vec<(String, SocketAddr)>,
    /// The replicated map, its logged deltas merged in; None: none kept.
    pub kv: Option<KvMap>,
    /// None: no tags kept (a new data dir; tags never changed here).
    pub tags: Option<BTreeMap<String, String>>,
    /// The id the map's writes are made under (None: no data dir).
    pub replica: Option<String>,
    /// Payloads earlier lives sent within the retention window, oldest
    /// first: to send again.
    pub sent: Vec<Payload>,
    /// The secret this member signs its claims with (None: no data dir).
    pub identity: Option<[u8; 32]>,
}

/// The loop's end of the store.
pub struct Store {
    path: PathBuf,
    jobs: SyncSender<Job>,
    /// What was not handed over because the queue was full.
    kv_behind: bool,
    members_sent: Vec<(String, String)>,
    members_pending: Option<Vec<(String, String)>>,
    keys_pending: Option<Vec<String>>,
    tags_pending: Option<BTreeMap<String, String>>,
    /// Sent payloads the full queue held back, oldest first.
    sent_pending: std::collections::VecDeque<Job>,
    writer: Option<std::thread::JoinHandle<()>>,
}

/// A store error in words that name the file.
fn err(path: &Path, what: &str, e: impl std::fmt::Display) -> String {
    format!("{}: {what}: {e}", path.display())
}

impl Store {
    /// Opens (creating) `dir/agent.redb` for member `name` of `cluster`, and
    /// reads what it holds; `done` gets each local write once it is kept.
    pub fn open(
        dir: &Path,
        name: &str,
        cluster: &str,
        done: mpsc::UnboundedSender<Done>,
    ) -> Result<(Store, Restored), String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create the data dir {}: {e}", dir.display()))?;
        let path = dir.join(FILE);
        let db = open_db(&path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => format!(
                "{} is in use by another process (another agent with the same --data-dir?)",
                path.display()
            ),
            e => err(
                &path,
                "cannot open it (move it away to start this agent empty; its peers give the map back)",
                e,
            ),
        })?;
        let (restored, log) = Self::read(&db, &path, name, cluster)?;
        let (jobs, rx) = std::sync::mpsc::sync_channel(QUEUE);
        let mut w = Writer {
            db,
            path: path.clone(),
            log,
            merged: restored.kv.clone().unwrap_or_default(),
            done,
        };
        let writer = std::thread::Builder::new()
            .name("hearsay-store".into())
            .spawn(move || w.run(rx))
            .map_err(|e| err(&path, "cannot start its writer", e))?;
        let members_sent = restored
            .members
            .iter()
            .map(|(n, a)| (n.clone(), a.to_string()))
            .collect();
        Ok((
            Store {
                path,
                jobs,
                kv_behind: false,
                members_sent,
                members_pending: None,
                keys_pending: None,
                tags_pending: None,
                sent_pending: Default::default(),
                writer: Some(writer),
            },
            restored,
        ))
    }

    /// The store's file (`agent.redb` in the data dir), to name in
    /// messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks the identity (writing it into a new file) and reads the
    /// rest, with the sizes of the map's snapshot and log for the writer.
    fn read(
        db: &Database,
        path: &Path,
        name: &str,
        cluster: &str,
    ) -> Result<(Restored, Log), String> {
        let identity = rmp_serde::to_vec(&(name, cluster)).map_err(|e| err(path, "encoding", e))?;
        let tx = db.begin_write().map_err(|e| err(path, "writing", e))?;
        {
            let mut meta = tx.open_table(META).map_err(|e| err(path, "meta", e))?;
            let kept: Option<(String, String)> =
                match meta.get("identity").map_err(|e| err(path, "meta", e))? {
                    Some(v) => Some(
                        rmp_serde::from_slice(v.value())
                            .map_err(|e| err(path, "its identity record is unreadable", e))?,
                    ),
                    None => None,
                };
            match kept {
                Some((n, c)) if (n.as_str(), c.as_str()) != (name, cluster) => {
                    return Err(format!(
                        "{} belongs to member {n:?} of cluster {c:?}, not {name:?} of {cluster:?}: give this agent a data dir of its own",
                        path.display()
                    ));
                }
                Some(_) => {}
                None => {
                    meta.insert("identity", identity.as_slice())
                        .map_err(|e| err(path, "meta", e))?;
                    meta.insert("format", FORMAT.to_be_bytes().as_slice())
                        .map_err(|e| err(path, "meta", e))?;
                }
            }
            // The id this data dir's map writes under, made with the
            // file: a wiped data dir gives a new one, so an agent that
            // starts empty never numbers writes as an earlier life did.
            if meta
                .get("replica")
                .map_err(|e| err(path, "meta", e))?
                .is_none()
            {
                let made = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_micros());
                let id = rmp_serde::to_vec(&format!("{name}/{made}"))
                    .map_err(|e| err(path, "encoding", e))?;
                meta.insert("replica", id.as_slice())
                    .map_err(|e| err(path, "meta", e))?;
            }
            // This member's identity key (the Ed25519 secret it signs its
            // claims with), made with the file: a restart keeps it, so the
            // others take the next life's claims; a wiped data dir makes
            // a new one, which they take once the old life is forgotten.
            if meta
                .get("identity_key")
                .map_err(|e| err(path, "meta", e))?
                .is_none()
            {
                let secret: [u8; 32] = rand::random();
                meta.insert("identity_key", secret.as_slice())
                    .map_err(|e| err(path, "meta", e))?;
            }
            if let Some(v) = meta.get("format").map_err(|e| err(path, "meta", e))? {
                let f = <[u8; 4]>::try_from(v.value()).ok().map(u32::from_be_bytes);
                if f != Some(FORMAT) {
                    return Err(format!(
                        "{} is in a format this hearsay does not read ({f:?}; this one reads {FORMAT})",
                        path.display()
                    ));
                }
            }
            // Created here so a reader finds every table.
            tx.open_table(MEMBERS)
                .map_err(|e| err(path, "members", e))?;
            tx.open_table(KV_STATE)
                .map_err(|e| err(path, "kv_state", e))?;
            tx.open_table(KV_LOG).map_err(|e| err(path, "kv_log", e))?;
            tx.open_table(SENT).map_err(|e| err(path, "sent", e))?;
        }
        tx.commit().map_err(|e| err(path, "writing", e))?;

        let tx = db.begin_read().map_err(|e| err(path, "reading", e))?;
        let meta = tx.open_table(META).map_err(|e| err(path, "meta", e))?;
        let read = |name: &str| -> Result<Option<Vec<u8>>, String> {
            let v = meta.get(name).map_err(|e| err(path, "meta", e))?;
            Ok(v.map(|v| v.value().to_vec()))
        };
        let keys: Option<Vec<String>> = read("keys")?
            .map(|b| rmp_serde::from_slice(&b))
            .transpose()
            .map_err(|e| err(path, "its keyring record is unreadable", e))?;
        let replica: Option<String> = read("replica")?
            .map(|b| rmp_serde::from_slice(&b))
            .transpose()
            .map_err(|e| err(path, "its replica record is unreadable", e))?;
        let identity = read("identity_key")?
            .map(|b| <[u8; 32]>::try_from(b.as_slice()))
            .transpose()
            .map_err(|e| err(path, "its identity key record is unreadable", e))?;
        let tags: Option<BTreeMap<String, String>> = read("tags")?
            .map(|b| rmp_serde::from_slice(&b))
            .transpose()
            .map_err(|e| err(path, "its tags record is unreadable", e))?;
        let mut members = Vec::new();
        let table = tx
            .open_table(MEMBERS)
            .map_err(|e| err(path, "members", e))?;
        for row in table.iter().map_err(|e| err(path, "members", e))? {
            let (n, a) = row.map_err(|e| err(path, "members", e))?;
            let addr = a.value().parse().map_err(|e| {
                err(
                    path,
                    &format!("member {:?} has an unreadable address", n.value()),
                    e,
                )
            })?;
            members.push((n.value().to_string(), addr));
        }
        let state = tx
            .open_table(KV_STATE)
            .map_err(|e| err(path, "kv_state", e))?;
        let mut l = Log::default();
        let mut kv: Option<KvMap> =
            match state.get("state").map_err(|e| err(path, "kv_state", e))? {
                Some(v) => {
                    l.state_bytes = v.value().len() as u64;
                    Some(
                        rmp_serde::from_slice(v.value())
                            .map_err(|e| err(path, "its map snapshot is unreadable", e))?,
                    )
                }
                None => None,
            };
        let log = tx.open_table(KV_LOG).map_err(|e| err(path, "kv_log", e))?;
        for row in log.iter().map_err(|e| err(path, "kv_log", e))? {
            let (seq, d) = row.map_err(|e| err(path, "kv_log", e))?;
            let delta: KvMap = rmp_serde::from_slice(d.value())
                .map_err(|e| err(path, &format!("map delta {} is unreadable", seq.value()), e))?;
            kv.get_or_insert_with(KvMap::default).merge(&delta);
            l.count += 1;
            l.bytes += d.value().len() as u64;
            l.next = seq.value() + 1;
        }
        let young = wall_ms().saturating_sub(RETENTION.ttl.as_millis() as u64);
        let mut sent = Vec::new();
        for row in tx
            .open_table(SENT)
            .map_err(|e| err(path, "sent", e))?
            .iter()
            .map_err(|e| err(path, "sent", e))?
        {
            let (k, v) = row.map_err(|e| err(path, "sent", e))?;
            let (epoch, seq) = k.value();
            let unreadable = |e: &dyn std::fmt::Display| {
                err(
                    path,
                    &format!("sent payload {seq} of life {epoch} is unreadable"),
                    e,
                )
            };
            let (at, p) = v
                .value()
                .split_at_checked(8)
                .ok_or_else(|| unreadable(&"too short"))?;
            l.sent_rows += 1;
            l.sent_bytes += v.value().len() as u64;
            if u64::from_be_bytes(at.try_into().expect("8 bytes")) >= young {
                sent.push(rmp_serde::from_slice(p).map_err(|e| unreadable(&e))?);
            }
        }
        Ok((
            Restored {
                keys,
                members,
                kv,
                tags,
                replica,
                sent,
                identity,
            },
            l,
        ))
    }

    /// Hands `job` over, or gives it back (boxed: only on this rare path).
    fn send(&mut self, job: Job) -> Result<(), Box<Job>> {
        match self.jobs.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(j) | TrySendError::Disconnected(j)) => Err(Box::new(j)),
        }
    }

    /// Keeps a delta that came from a peer (durable within [`FLUSH`]).
    pub fn delta(&mut self, delta: KvMap) {
        if self.send(Job::Delta(delta, None)).is_err() {
            self.kv_behind = true;
        }
    }

    /// Keeps a local write; `done` goes back to the loop once it is on
    /// disk, or at once with an error if the writer is behind.
    pub fn write(&mut self, delta: KvMap, mut done: Done) -> Result<(), Done> {
        match self.send(Job::Delta(delta, Some(done))).map_err(|j| *j) {
            Ok(()) => Ok(()),
            Err(Job::Delta(_, Some(d))) => {
                self.kv_behind = true;
                done = d;
                done.result = Err(format!(
                    "not acknowledged: the data dir {} is behind; try again",
                    self.path.display()
                ));
                Err(done)
            }
            Err(_) => unreachable!("the job given back is the one sent"),
        }
    }

    /// Keeps the whole map (a full state replaced it here).
    pub fn state(&mut self, state: KvMap) {
        self.kv_behind = self.send(Job::State(state)).is_err();
    }

    /// Keeps the member list, if it changed.
    pub fn members(&mut self, members: Vec<(String, String)>) {
        if members != self.members_sent {
            self.members_pending = Some(members);
            self.flush_members();
        }
    }

    fn flush_members(&mut self) {
        if let Some(m) = self.members_pending.take() {
            match self.send(Job::Members(m.clone())) {
                Ok(()) => self.members_sent = m,
                Err(_) => self.members_pending = Some(m),
            }
        }
    }

    /// Keeps the keyring (the primary first); `ack` answers once it is on
    /// disk.
    pub fn keys(&mut self, keys: Vec<String>, ack: Option<Ack>) {
        if let Err(Job::Keys(k, ack)) = self.send(Job::Keys(keys, ack)).map_err(|j| *j) {
            self.keys_pending = Some(k);
            if let Some(a) = ack {
                let _ = a.send(Err(self.behind()));
            }
        }
    }

    /// Keeps this agent's tags; `ack` answers once they are on disk.
    pub fn tags(&mut self, tags: BTreeMap<String, String>, ack: Option<Ack>) {
        if let Err(Job::Tags(t, ack)) = self.send(Job::Tags(tags, ack)).map_err(|j| *j) {
            self.tags_pending = Some(t);
            if let Some(a) = ack {
                let _ = a.send(Err(self.behind()));
            }
        }
    }

    /// Why a payload sent now could not be kept, if it could not: the
    /// writer has stopped, or [`QUEUE`] sends already wait on the disk.
    /// Asked before sending, so that a client is refused before anything
    /// went out (a retry of a refused send is then not a second one).
    pub fn cannot_keep(&self) -> Option<String> {
        if self.writer.as_ref().is_none_or(|w| w.is_finished()) {
            return Some(format!(
                "not sent: the writer of {} has stopped (see the log)",
                self.path.display()
            ));
        }
        (self.sent_pending.len() >= QUEUE).then(|| {
            format!(
                "busy: not sent: the data dir {} is behind ({QUEUE} sends wait to be kept); try again",
                self.path.display()
            )
        })
    }

    /// Keeps payload `p`, sent here; `ack` answers once it is on disk.
    /// Behind a full queue it waits its turn (at most [`QUEUE`] wait;
    /// past that `ack` is told the payload went out but is not kept).
    pub fn sent(&mut self, p: &Payload, ack: Ack) {
        let mut row = wall_ms().to_be_bytes().to_vec();
        if let Err(e) = rmp_serde::encode::write(&mut row, p) {
            let _ = ack.send(Err(err(&self.path, "encoding", e)));
            return;
        }
        let job = Job::Sent((p.id.1.0, p.id.2), row, ack);
        if self.writer.as_ref().is_none_or(|w| w.is_finished()) {
            if let Job::Sent(_, _, ack) = job {
                let _ = ack.send(Err(format!(
                    "sent, but not kept: the writer of {} has stopped (see the log)",
                    self.path.display()
                )));
            }
            return;
        }
        if !self.sent_pending.is_empty() {
            self.sent_pending.push_back(job);
            self.flush_sent();
        } else if let Err(job) = self.send(job) {
            self.sent_pending.push_back(*job);
        }
        if self.sent_pending.len() > QUEUE
            && let Some(Job::Sent(_, _, ack)) = self.sent_pending.pop_back()
        {
            let _ = ack.send(Err(format!(
                "sent, but not kept in the data dir {} (it is behind): should this agent die now, its next life would not send it again",
                self.path.display()
            )));
        }
    }

    fn flush_sent(&mut self) {
        while let Some(job) = self.sent_pending.pop_front() {
            if let Err(job) = self.send(job) {
                self.sent_pending.push_front(*job);
                return;
            }
        }
    }

    fn behind(&self) -> String {
        format!(
            "the change is made but not yet kept: the data dir {} is behind",
            self.path.display()
        )
    }

    /// Hands over what a full queue held back; `state` gives the map.
    pub fn catch_up(&mut self, state: impl FnOnce() -> KvMap) {
        if self.kv_behind {
            self.state(state());
        }
        self.flush_members();
        if let Some(k) = self.keys_pending.take() {
            self.keys(k, None);
        }
        if let Some(t) = self.tags_pending.take() {
            self.tags(t, None);
        }
        self.flush_sent();
    }
}

impl Drop for Store {
    /// Lets the writer finish what it holds (the queue closes with the
    /// sender); an agent dropped in a runtime must not wait long for a disk.
    fn drop(&mut self) {
        let (tx, _) = std::sync::mpsc::sync_channel(0);
        drop(std::mem::replace(&mut self.jobs, tx));
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

#[derive(Debug, Default)]
struct Log {
    count: u64,
    bytes: u64,
    next: u64,
    state_bytes: u64,
    /// Rows and bytes of the sent table.
    sent_rows: u64,
    sent_bytes: u64,
}

fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

struct Writer {
    db: Database,
    path: PathBuf,
    log: Log,
    /// The map as kept: the snapshot with the log merged in.
    merged: KvMap,
    done: mpsc::UnboundedSender<Done>,
}

impl Writer {
    fn run(&mut self, rx: Receiver<Job>) {
        let mut last_durable = Instant::now();
        let mut unflushed = false;
        loop {
            let mut jobs = match rx.recv_timeout(FLUSH) {
                Ok(j) => vec![j],
                Err(RecvTimeoutError::Timeout) => Vec::new(),
                Err(RecvTimeoutError::Disconnected) => {
                    if unflushed {
                        let _ = self.commit(Vec::new(), true);
                    }
                    return;
                }
            };
            while jobs.len() < BATCH {
                match rx.try_recv() {
                    Ok(j) => jobs.push(j),
                    Err(_) => break,
                }
            }
            if jobs.is_empty() && !unflushed {
                continue;
            }
            // A keyring or tags change is rare and must survive: always
            // durable.
            let waits = jobs.iter().any(|j| {
                matches!(
                    j,
                    Job::Delta(_, Some(_)) | Job::Keys(..) | Job::Tags(..) | Job::Sent(..)
                )
            });
            let durable = waits || jobs.is_empty() || last_durable.elapsed() >= FLUSH;
            let ok = self.commit(jobs, durable);
            if durable && ok {
                last_durable = Instant::now();
                unflushed = false;
            } else {
                unflushed |= ok;
            }
        }
    }

    /// One transaction for `jobs`; answers the writes that wait. False if
    /// it failed (logged, and every waiting write told).
    fn commit(&mut self, jobs: Vec<Job>, durable: bool) -> bool {
        let mut waiting = Vec::new();
        let r = self.apply(jobs, durable, &mut waiting);
        if let Err(e) = &r {
            tracing::error!("{e}");
        }
        let ok = r.is_ok();
        for w in waiting {
            match w {
                Waiting::Write(mut d) => {
                    if let Err(e) = &r {
                        d.result = Err(format!("not acknowledged: {e}"));
                        d.held.clear();
                    }
                    let _ = self.done.send(d);
                }
                Waiting::Ack(a) => {
                    let _ = a.send(r.clone());
                }
            }
        }
        ok
    }

    fn apply(
        &mut self,
        jobs: Vec<Job>,
        durable: bool,
        waiting: &mut Vec<Waiting>,
    ) -> Result<(), String> {
        let path = self.path.clone();
        let p = path.as_path();
        let mut tx = self.db.begin_write().map_err(|e| err(p, "writing", e))?;
        tx.set_durability(if durable {
            Durability::Immediate
        } else {
            Durability::None
        })
        .map_err(|e| err(p, "writing", e))?;
        let mut replaced = false;
        {
            let mut log = tx.open_table(KV_LOG).map_err(|e| err(p, "kv_log", e))?;
            for job in jobs {
                match job {
                    Job::Delta(d, w) => {
                        let bytes =
                            rmp_serde::to_vec_named(&d).map_err(|e| err(p, "encoding", e))?;
                        log.insert(self.log.next, bytes.as_slice())
                            .map_err(|e| err(p, "kv_log", e))?;
                        self.log.next += 1;
                        self.log.count += 1;
                        self.log.bytes += bytes.len() as u64;
                        self.merged.merge(&d);
                        waiting.extend(w.map(Waiting::Write));
                    }
                    Job::State(s) => {
                        self.merged = s;
                        replaced = true;
                    }
                    Job::Members(ms) => {
                        tx.delete_table(MEMBERS).map_err(|e| err(p, "members", e))?;
                        let mut t = tx.open_table(MEMBERS).map_err(|e| err(p, "members", e))?;
                        for (n, a) in &ms {
                            t.insert(n.as_str(), a.as_str())
                                .map_err(|e| err(p, "members", e))?;
                        }
                    }
                    Job::Keys(k, a) => {
                        meta_record(&tx, p, "keys", &k)?;
                        waiting.extend(a.map(Waiting::Ack));
                    }
                    Job::Tags(t, a) => {
                        meta_record(&tx, p, "tags", &t)?;
                        waiting.extend(a.map(Waiting::Ack));
                    }
                    Job::Sent(k, row, a) => {
                        let mut t = tx.open_table(SENT).map_err(|e| err(p, "sent", e))?;
                        let was = t
                            .insert(k, row.as_slice())
                            .map_err(|e| err(p, "sent", e))?
                            .map(|v| v.value().len() as u64);
                        match was {
                            Some(len) => {
                                self.log.sent_bytes = self.log.sent_bytes.saturating_sub(len)
                            }
                            None => self.log.sent_rows += 1,
                        }
                        self.log.sent_bytes += row.len() as u64;
                        waiting.push(Waiting::Ack(a));
                    }
                }
            }
            if self.log.sent_rows > 0 {
                self.forget_sent(&tx, p)?;
            }
        }
        let fold = self.log.count >= FOLD_AFTER && self.log.bytes > self.log.state_bytes;
        if replaced || fold {
            let bytes = rmp_serde::to_vec_named(&self.merged).map_err(|e| err(p, "encoding", e))?;
            tx.delete_table(KV_LOG).map_err(|e| err(p, "kv_log", e))?;
            tx.open_table(KV_LOG).map_err(|e| err(p, "kv_log", e))?;
            let mut s = tx.open_table(KV_STATE).map_err(|e| err(p, "kv_state", e))?;
            s.insert("state", bytes.as_slice())
                .map_err(|e| err(p, "kv_state", e))?;
            // The sent table is not folded: its counts stay.
            self.log = Log {
                next: self.log.next,
                state_bytes: bytes.len() as u64,
                sent_rows: self.log.sent_rows,
                sent_bytes: self.log.sent_bytes,
                ..Log::default()
            };
        }
        tx.commit().map_err(|e| err(p, "writing", e))
    }
}

impl Writer {
    /// Drops sent payloads past the retention window (older, or beyond
    /// its counts), oldest first: a next life sends none of them again.
    fn forget_sent(&mut self, tx: &redb::WriteTransaction, p: &Path) -> Result<(), String> {
        let mut t = tx.open_table(SENT).map_err(|e| err(p, "sent", e))?;
        let old = wall_ms().saturating_sub(RETENTION.ttl.as_millis() as u64);
        loop {
            let over = self.log.sent_rows > RETENTION.max_values as u64
                || self.log.sent_bytes > RETENTION.max_bytes as u64;
            let len = match t.first().map_err(|e| err(p, "sent", e))? {
                Some((_, v)) => {
                    let at = v
                        .value()
                        .get(..8)
                        .map_or(0, |b| u64::from_be_bytes(b.try_into().expect("8 bytes")));
                    (over || at < old).then_some(v.value().len() as u64)
                }
                None => None,
            };
            let Some(len) = len else {
                return Ok(());
            };
            t.pop_first().map_err(|e| err(p, "sent", e))?;
            self.log.sent_rows = self.log.sent_rows.saturating_sub(1);
            self.log.sent_bytes = self.log.sent_bytes.saturating_sub(len);
        }
    }
}

/// Writes `value` as the meta table's `name` record.
fn meta_record(
    tx: &redb::WriteTransaction,
    p: &Path,
    name: &str,
    value: &impl serde::Serialize,
) -> Result<(), String> {
    let bytes = rmp_serde::to_vec(value).map_err(|e| err(p, "encoding", e))?;
    let mut meta = tx.open_table(META).map_err(|e| err(p, "meta", e))?;
    meta.insert(name, bytes.as_slice())
        .map_err(|e| err(p, "meta", e))?;
    Ok(())
}

enum Waiting {
    Write(Done),
    /// A keyring or tags change, or a payload sent.
    Ack(Ack),
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearsay_core::crdt::Hlc;
    use hearsay_core::id::NodeId;
    use redb::ReadableTableMetadata;

    fn open(dir: &Path) -> Result<(Store, Restored, mpsc::UnboundedReceiver<Done>), String> {
        let (tx, rx) = mpsc::unbounded_channel();
        Store::open(dir, "a", "c", tx).map(|(s, r)| (s, r, rx))
    }

    /// A write of `k` = `v` by replica `a` at `ms`, on top of `map`.
    fn write(map: &mut KvMap, ms: u64, k: &str, v: Option<&str>) -> KvMap {
        let at = Hlc {
            wall_ms: ms,
            logical: 0,
        };
        let me = NodeId::new("a");
        match v {
            Some(v) => map.set(&me, at, k.into(), v.into()),
            None => map.delete(&me, at, k.into()),
        }
    }

    fn done() -> (Done, oneshot::Receiver<Result<(), String>>) {
        let (ack, rx) = oneshot::channel();
        (
            Done {
                ack,
                held: Vec::new(),
                own: 0,
                result: Ok(()),
            },
            rx,
        )
    }

    /// Fills a data dir: `n` writes (every third a delete of an earlier
    /// key), two members, two keys; returns the map as it should be kept.
    fn fill(dir: &Path, n: u64) -> KvMap {
        let (mut st, r, mut acks) = open(dir).unwrap();
        assert!(r.kv.is_none() && r.members.is_empty() && r.keys.is_none());
        let mut map = KvMap::default();
        for i in 0..n {
            let d = if i % 3 == 2 {
                write(&mut map, i, &format!("k{}", i - 1), None)
            } else {
                write(&mut map, i, &format!("k{i}"), Some(&format!("v{i}")))
            };
            let (d0, mut rx) = done();
            st.write(d, d0).map_err(|_| "queue full").unwrap();
            // The answer comes back through the loop's channel once kept.
            let back = acks.blocking_recv().expect("an answer");
            assert_eq!(back.result, Ok(()));
            let _ = back.ack.send(back.result);
            assert_eq!(rx.try_recv().unwrap(), Ok(()));
        }
        st.members(vec![
            ("b".into(), "127.0.0.1:7001".into()),
            ("c".into(), "127.0.0.1:7002".into()),
        ]);
        st.keys(vec!["k1".into(), "k2".into()], None);
        drop(st);
        map
    }

    /// Rows of `table` in the data dir's file (the store closed).
    fn rows<K: redb::Key + 'static, V: redb::Value + 'static>(
        dir: &Path,
        table: TableDefinition<K, V>,
    ) -> u64 {
        let db = Database::create(dir.join(FILE)).unwrap();
        let tx = db.begin_read().unwrap();
        tx.open_table(table).unwrap().len().unwrap()
    }

    fn log_rows(dir: &Path) -> u64 {
        rows(dir, KV_LOG)
    }

    #[test]
    fn what_was_kept_comes_back_and_the_log_is_folded() {
        let dir = tempfile::tempdir().unwrap();
        let map = fill(dir.path(), 200);
        assert!(
            log_rows(dir.path()) < FOLD_AFTER * 2,
            "the log was folded into a snapshot: {} rows",
            log_rows(dir.path())
        );
        let (_st, r, _) = open(dir.path()).unwrap();
        assert_eq!(r.kv.as_ref(), Some(&map));
        assert_eq!(
            r.members,
            vec![
                ("b".to_string(), "127.0.0.1:7001".parse().unwrap()),
                ("c".to_string(), "127.0.0.1:7002".parse().unwrap()),
            ]
        );
        assert_eq!(r.keys, Some(vec!["k1".to_string(), "k2".to_string()]));
        let kept = r.kv.unwrap();
        assert_eq!(kept.get(&"k0".to_string()), Some(&"v0".to_string()));
        assert_eq!(kept.get(&"k1".to_string()), None, "deleted");
    }

    #[test]
    fn a_second_agent_another_member_and_a_bad_record_are_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        fill(dir.path(), 10);
        let file = dir.path().join(FILE).display().to_string();
        {
            let _first = open(dir.path()).unwrap();
            let e = open(dir.path()).err().expect("in use");
            assert!(e.contains(&file) && e.contains("in use"), "{e}");
        }
        let (tx, _rx) = mpsc::unbounded_channel();
        let e = Store::open(dir.path(), "b", "c", tx)
            .err()
            .expect("not b's");
        assert!(
            e.contains(&file) && e.contains(r#"belongs to member "a""#),
            "{e}"
        );
        // A record that does not decode: an error naming it, not an
        // empty map.
        {
            let db = Database::create(dir.path().join(FILE)).unwrap();
            let tx = db.begin_write().unwrap();
            tx.open_table(KV_LOG)
                .unwrap()
                .insert(9_999, b"\xc1 not msgpack".as_slice())
                .unwrap();
            tx.commit().unwrap();
        }
        let e = open(dir.path()).err().expect("unreadable");
        assert!(e.contains(&file) && e.contains("map delta 9999"), "{e}");
    }

    #[test]
    fn a_torn_or_overwritten_file_is_recovered_or_refused_never_emptied() {
        let dir = tempfile::tempdir().unwrap();
        let map = fill(dir.path(), 30);
        let path = dir.path().join(FILE);
        let whole = std::fs::read(&path).unwrap();
        let file = path.display().to_string();
        let cases: Vec<(String, Vec<u8>)> = vec![
            ("cut to half".into(), whole[..whole.len() / 2].to_vec()),
            ("cut to 100 bytes".into(), whole[..100].to_vec()),
            ("garbage".into(), vec![0x5a; whole.len()]),
            ("a page zeroed".into(), {
                let mut w = whole.clone();
                let (mid, len) = (w.len() / 2, w.len());
                w[mid..len.min(mid + 4096)].fill(0);
                w
            }),
        ];
        for (what, bytes) in cases {
            std::fs::write(&path, &bytes).unwrap();
            match open(dir.path()) {
                Ok((_, r, _)) => {
                    eprintln!("{what}: recovered");
                    assert_eq!(
                        r.kv.as_ref(),
                        Some(&map),
                        "{what}: opened, so it must hold the whole map"
                    )
                }
                Err(e) => {
                    eprintln!("{what}: {e}");
                    assert!(e.contains(&file), "{what}: {e}")
                }
            }
        }
    }

    fn payload(epoch: u64, seq: u64) -> Payload {
        Payload {
            id: hearsay_core::cluster::MsgId(NodeId::new("a"), hearsay_core::id::Epoch(epoch), seq),
            data: vec![seq as u8; 100].into(),
            event: None,
        }
    }

    fn sent_rows(dir: &Path) -> u64 {
        rows(dir, SENT)
    }

    /// Sends payloads `seqs` of life 1, each answered once kept; at most
    /// a queue's worth waits at once (the agent's loop catches up between
    /// inputs).
    fn send_all(st: &mut Store, seqs: std::ops::RangeInclusive<u64>) {
        let mut waiting = Vec::new();
        for seq in seqs {
            let (ack, rx) = oneshot::channel();
            st.sent(&payload(1, seq), ack);
            waiting.push(rx);
            if waiting.len() == 500 {
                for rx in waiting.drain(..) {
                    assert_eq!(rx.blocking_recv(), Ok(Ok(())));
                }
            }
        }
        for rx in waiting {
            assert_eq!(rx.blocking_recv(), Ok(Ok(())));
        }
    }

    #[test]
    fn sent_payloads_come_back_within_the_window_and_older_ones_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        // A row an earlier life wrote three minutes ago: past the window.
        drop(open(dir.path()).unwrap());
        {
            let db = Database::create(dir.path().join(FILE)).unwrap();
            let tx = db.begin_write().unwrap();
            let mut row = (wall_ms() - 180_000).to_be_bytes().to_vec();
            rmp_serde::encode::write(&mut row, &payload(1, 1)).unwrap();
            tx.open_table(SENT)
                .unwrap()
                .insert((1, 1), row.as_slice())
                .unwrap();
            tx.commit().unwrap();
        }
        let (mut st, r, _) = open(dir.path()).unwrap();
        assert!(r.sent.is_empty(), "too old to send again: {:?}", r.sent);
        let sent = [payload(2, 1), payload(2, 2)];
        for p in &sent {
            let (ack, rx) = oneshot::channel();
            st.sent(p, ack);
            assert_eq!(rx.blocking_recv().unwrap(), Ok(()), "answered once kept");
        }
        drop(st);
        assert_eq!(sent_rows(dir.path()), 2, "the old row went at the commit");
        let (_st, r, _) = open(dir.path()).unwrap();
        let ids: Vec<_> = r.sent.iter().map(|p| p.id.clone()).collect();
        assert_eq!(ids, [sent[0].id.clone(), sent[1].id.clone()]);
        assert_eq!(&*r.sent[1].data, &*sent[1].data);
    }

    #[test]
    fn sent_payloads_are_kept_within_the_windows_count() {
        let dir = tempfile::tempdir().unwrap();
        let (mut st, _, _) = open(dir.path()).unwrap();
        send_all(&mut st, 1..=RETENTION.max_values as u64 + 10);
        drop(st);
        assert_eq!(sent_rows(dir.path()), RETENTION.max_values as u64);
        let (_st, r, _) = open(dir.path()).unwrap();
        assert_eq!(r.sent.first().map(|p| p.id.2), Some(11), "the oldest went");
    }

    #[test]
    fn folding_the_map_keeps_the_sent_tables_count() {
        let dir = tempfile::tempdir().unwrap();
        let (mut st, _, mut acks) = open(dir.path()).unwrap();
        send_all(&mut st, 1..=10);
        // Enough map writes for a fold (the log into a snapshot).
        let mut map = KvMap::default();
        for i in 0..FOLD_AFTER * 3 {
            let d = write(&mut map, i, &format!("k{i}"), Some("v"));
            let (d0, _rx) = done();
            st.write(d, d0).map_err(|_| "queue full").unwrap();
            let _ = acks.blocking_recv().expect("an answer");
        }
        // Up to the window's count: the ten before the fold still count.
        send_all(&mut st, 11..=RETENTION.max_values as u64 + 10);
        drop(st);
        assert!(log_rows(dir.path()) < FOLD_AFTER * 3, "the map was folded");
        assert_eq!(sent_rows(dir.path()), RETENTION.max_values as u64);
    }

    #[test]
    fn a_send_the_data_dir_could_not_keep_is_refused_before_it_goes() {
        let dir = tempfile::tempdir().unwrap();
        let (mut st, _, _) = open(dir.path()).unwrap();
        assert_eq!(st.cannot_keep(), None, "an idle store keeps it");
        // QUEUE sends waiting on the disk: the next one is refused, as
        // busy (a 503 with Retry-After over HTTP).
        for seq in 0..QUEUE as u64 {
            let (ack, _rx) = oneshot::channel();
            let row = wall_ms().to_be_bytes().to_vec();
            st.sent_pending.push_back(Job::Sent((1, seq), row, ack));
        }
        let why = st.cannot_keep().expect("behind");
        assert!(why.starts_with("busy: not sent"), "{why}");
        st.sent_pending.clear();
        // The writer gone: refused too.
        st.writer = None;
        let why = st.cannot_keep().expect("no writer");
        assert!(why.starts_with("not sent"), "{why}");
    }

    #[test]
    fn the_identity_key_is_made_with_the_file_and_kept() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let first = open(a.path()).unwrap().1.identity.expect("a key");
        assert_eq!(open(a.path()).unwrap().1.identity, Some(first), "kept");
        let other = open(b.path()).unwrap().1.identity.expect("a key");
        assert_ne!(first, other, "each data dir its own");
    }
}
