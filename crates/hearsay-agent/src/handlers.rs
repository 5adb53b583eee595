//! Event handlers (Serf's `-event-handler`): a command run through `sh -c`
//! for each membership change or user event it asks for, with the event in
//! environment variables and on standard input.
//!
//! Handlers run beside the agent, never in its loop: the loop hands each
//! event to a bounded queue (a full queue drops it, counted) and goes on;
//! a dispatcher runs at most `concurrency` handlers at once, each killed
//! after `timeout`. A slow or stuck handler delays other handlers, never
//! gossip.
//!
//! A query (`hearsay query`) runs the first handler that asks for it; what
//! that handler prints is the answer (at most [`MAX_ANSWER`] bytes).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::{Semaphore, mpsc};

/// Events waiting for their handlers, at most.
pub const QUEUE: usize = 256;

/// What a handler runs for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A member joined (`member-join`).
    MemberJoin,
    /// A member left, or was forced out (`member-leave`).
    MemberLeave,
    /// A member was declared dead (`member-failed`).
    MemberFailed,
    /// A member's tags or address changed (`member-update`).
    MemberUpdate,
    /// A dead or left member was forgotten (`member-reap`).
    MemberReap,
    /// A user event (`user`, or `user:NAME` for one name).
    User,
    /// A query asked of this agent (`query`, or `query:NAME`): what the
    /// handler prints is the answer.
    Query,
}

impl Kind {
    const ALL: [(Kind, &'static str); 7] = [
        (Kind::MemberJoin, "member-join"),
        (Kind::MemberLeave, "member-leave"),
        (Kind::MemberFailed, "member-failed"),
        (Kind::MemberUpdate, "member-update"),
        (Kind::MemberReap, "member-reap"),
        (Kind::User, "user"),
        (Kind::Query, "query"),
    ];

    /// The name a handler spec uses, also given to the command as
    /// `HEARSAY_EVENT` (`member-join`, `user`...).
    pub fn name(self) -> &'static str {
        Kind::ALL
            .iter()
            .find(|(k, _)| *k == self)
            .map_or("", |(_, n)| n)
    }

    /// The kind of a membership change (`MemberEvent::change`), if
    /// handlers hear of it (suspicions and refutations they do not, as in
    /// Serf).
    pub fn of_change(change: crate::Change) -> Option<Kind> {
        use crate::Change as C;
        match change {
            C::Joined => Some(Kind::MemberJoin),
            C::Left => Some(Kind::MemberLeave),
            C::Dead => Some(Kind::MemberFailed),
            C::Updated => Some(Kind::MemberUpdate),
            C::Removed => Some(Kind::MemberReap),
            C::Suspect | C::Alive => None,
        }
    }
}

/// One kind a handler asks for: `user:NAME` only that user event,
/// `query:NAME` only that query.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Filter {
    kind: Kind,
    name: Option<String>,
}

/// `[TYPE[,TYPE...]=]COMMAND`, TYPE one of member-join, member-leave,
/// member-failed, member-update, member-reap, user, user:NAME, query or
/// query:NAME; without types, every event and query (as Serf's `*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handler {
    filters: Vec<Filter>,
    /// The command, run with `sh -c`.
    pub command: String,
}

impl Handler {
    fn wants(&self, kind: Kind, name: Option<&str>) -> bool {
        self.filters.is_empty()
            || self
                .filters
                .iter()
                .any(|f| f.kind == kind && f.name.as_deref().is_none_or(|n| Some(n) == name))
    }
}

impl FromStr for Handler {
    type Err = String;
    fn from_str(s: &str) -> Result<Handler, String> {
        // Types before the first `=`, if that part reads as types; a
        // command may hold `=` itself (`x=1 script.sh`).
        let (filters, command) = match s.split_once('=') {
            Some((types, command)) if looks_like_types(types) => {
                let mut filters = Vec::new();
                for t in types.split(',') {
                    let (kind, name) = match t.split_once(':') {
                        Some((k, n)) => (k, Some(n)),
                        None => (t, None),
                    };
                    let kind = Kind::ALL
                        .iter()
                        .find(|(_, n)| *n == kind)
                        .map(|(k, _)| *k)
                        .ok_or_else(|| {
                            format!(
                                "unknown event type {kind:?} in {s:?}: one of {}",
                                Kind::ALL.map(|(_, n)| n).join(", ")
                            )
                        })?;
                    if name.is_some() && !matches!(kind, Kind::User | Kind::Query) {
                        return Err(format!(
                            "only user events and queries have names (user:NAME, query:NAME), not {t:?}"
                        ));
                    }
                    if name.is_some_and(str::is_empty) {
                        return Err(format!(
                            "{}: needs a name after the colon in {s:?}",
                            kind.name()
                        ));
                    }
                    filters.push(Filter {
                        kind,
                        name: name.map(String::from),
                    });
                }
                (filters, command)
            }
            _ => (Vec::new(), s),
        };
        if command.trim().is_empty() {
            return Err(format!("an event handler needs a command: {s:?}"));
        }
        Ok(Handler {
            filters,
            command: command.to_string(),
        })
    }
}

/// Does the part before `=` name event types (letters, `-`, `,`, and a
/// `:NAME` after `user`), rather than start a command?
fn looks_like_types(s: &str) -> bool {
    !s.is_empty()
        && s.split(',').all(|t| {
            let kind = t.split_once(':').map_or(t, |(k, _)| k);
            !kind.is_empty() && kind.chars().all(|c| c.is_ascii_lowercase() || c == '-')
        })
}

impl fmt::Display for Handler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let types: Vec<String> = self
            .filters
            .iter()
            .map(|x| match &x.name {
                Some(n) => format!("{}:{n}", x.kind.name()),
                None => x.kind.name().to_string(),
            })
            .collect();
        if types.is_empty() {
            write!(f, "{}", self.command)
        } else {
            write!(f, "{}={}", types.join(","), self.command)
        }
    }
}

/// An event for the handlers: its kind, its user event name, what goes in
/// the environment (this agent's own variables, [`self_env`], included) and
/// on standard input.
#[derive(Clone, Debug)]
pub struct Job {
    /// What happened; its name goes to the command as `HEARSAY_EVENT`.
    pub kind: Kind,
    /// The user event's or query's name, which `user:NAME` and
    /// `query:NAME` handlers match; None for a membership change.
    pub name: Option<String>,
    /// Environment variables for the command.
    pub env: Vec<(String, String)>,
    /// What the command reads on standard input: the payload, or for a
    /// membership change one `name<TAB>address<TAB>k=v,k=v` line.
    pub stdin: Vec<u8>,
    /// A user event sent with `--coalesce`: with a coalesce period set,
    /// a burst of them under one name runs the handlers once, with the last.
    pub coalesce: bool,
}

/// What the handlers did, for /metrics.
#[derive(Debug, Default)]
pub struct Counters {
    /// Handler runs, counted as each starts (failures and timeouts
    /// included).
    pub runs: AtomicU64,
    /// Exited other than 0, or could not be started.
    pub failures: AtomicU64,
    /// Killed at the timeout.
    pub timeouts: AtomicU64,
    /// Events dropped because the queue was full.
    pub dropped: AtomicU64,
    /// User events whose handlers did not run because a later one of the
    /// same name came within the coalesce period.
    pub coalesced: AtomicU64,
}

/// How handlers run.
#[derive(Clone, Debug)]
pub struct Config {
    /// The handlers, in order: a query runs the first that answers its
    /// name.
    pub handlers: Vec<Handler>,
    /// Event handlers running at once, at most; query handlers have as
    /// many slots of their own.
    pub concurrency: usize,
    /// A handler still running after this is killed.
    pub timeout: Duration,
    /// User events that ask to be coalesced wait this long for a later one
    /// of the same name, which replaces them (at most four periods in
    /// all); zero runs every one.
    pub coalesce: Duration,
}

/// Largest answer a query handler may print, in bytes.
pub const MAX_ANSWER: usize = hearsay_core::cluster::MAX_PAYLOAD;

/// What a query's handler printed, or why there is nothing.
pub type Answer = Result<Vec<u8>, String>;

/// A query for its handler, and where its answer goes.
struct QueryJob {
    job: Job,
    handler: Handler,
    reply: tokio::sync::oneshot::Sender<Answer>,
}

/// The loop's end: hands events over without waiting.
pub struct Runner {
    tx: mpsc::Sender<Job>,
    queries: mpsc::Sender<QueryJob>,
    /// Events that may be coalesced go here first (with a period set).
    coalesce: Option<mpsc::Sender<Job>>,
    handlers: Arc<Vec<Handler>>,
    /// What the handlers did so far, updated as they run (for /metrics).
    pub counters: Arc<Counters>,
}

/// Holds coalescable user events per name until `period` passes without
/// another (or four periods since the first), then hands the last on.
async fn coalesce(
    period: Duration,
    mut rx: mpsc::Receiver<Job>,
    tx: mpsc::Sender<Job>,
    counters: Arc<Counters>,
) {
    use tokio::time::Instant;
    // name -> (first came, last came, the last)
    let mut held: BTreeMap<String, (Instant, Instant, Job)> = BTreeMap::new();
    loop {
        let due = held
            .values()
            .map(|(first, last, _)| (*last + period).min(*first + period * 4))
            .min();
        let sleep = tokio::time::sleep_until(due.unwrap_or_else(|| Instant::now() + period * 1000));
        tokio::select! {
            job = rx.recv() => {
                let Some(job) = job else { return };
                let now = Instant::now();
                let name = job.name.clone().unwrap_or_default();
                match held.get_mut(&name) {
                    Some((_, last, j)) => {
                        *last = now;
                        *j = job;
                        counters.coalesced.fetch_add(1, Ordering::Relaxed);
                    }
                    None => {
                        held.insert(name, (now, now, job));
                    }
                }
            }
            _ = sleep, if due.is_some() => {
                let now = Instant::now();
                let ready: Vec<String> = held
                    .iter()
                    .filter(|(_, (first, last, _))| now >= (*last + period).min(*first + period * 4))
                    .map(|(n, _)| n.clone())
                    .collect();
                for n in ready {
                    if let Some((_, _, job)) = held.remove(&n)
                        && tx.try_send(job).is_err()
                    {
                        counters.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    }
}

impl Runner {
    /// Starts the dispatcher (within a tokio runtime).
    pub fn start(cfg: Config) -> Runner {
        let (tx, mut rx) = mpsc::channel::<Job>(QUEUE);
        let (qtx, mut qrx) = mpsc::channel::<QueryJob>(QUEUE);
        let counters = Arc::new(Counters::default());
        let handlers = Arc::new(cfg.handlers);
        // Events and queries each have their own slots: a member asking
        // a lot cannot crowd out the membership handlers, nor a burst of
        // events the answers.
        let slots = || Arc::new(Semaphore::new(cfg.concurrency.max(1)));
        let (event_slots, query_slots) = (slots(), slots());
        let timeout = cfg.timeout;
        let (c, hs) = (counters.clone(), handlers.clone());
        tokio::spawn(async move {
            while let Some(job) = rx.recv().await {
                for h in hs.iter().filter(|h| h.wants(job.kind, job.name.as_deref())) {
                    let Ok(permit) = event_slots.clone().acquire_owned().await else {
                        return;
                    };
                    let (c, h, job) = (c.clone(), h.clone(), job.clone());
                    tokio::spawn(async move {
                        let _ = run(&h, &job, timeout, &c, false).await;
                        drop(permit);
                    });
                }
            }
        });
        let c = counters.clone();
        tokio::spawn(async move {
            while let Some(q) = qrx.recv().await {
                let Ok(permit) = query_slots.clone().acquire_owned().await else {
                    return;
                };
                let c = c.clone();
                tokio::spawn(async move {
                    let out = run(&q.handler, &q.job, timeout, &c, true).await;
                    drop(permit);
                    let _ = q.reply.send(out);
                });
            }
        });
        let coalesce_tx = (!cfg.coalesce.is_zero()).then(|| {
            let (ctx, crx) = mpsc::channel::<Job>(QUEUE);
            tokio::spawn(coalesce(cfg.coalesce, crx, tx.clone(), counters.clone()));
            ctx
        });
        Runner {
            tx,
            queries: qtx,
            coalesce: coalesce_tx,
            handlers,
            counters,
        }
    }

    /// Hands `job` to the handlers that want it (dropped, counted, if the
    /// queue is full).
    pub fn submit(&self, job: Job) {
        if !self
            .handlers
            .iter()
            .any(|h| h.wants(job.kind, job.name.as_deref()))
        {
            return;
        }
        let queue = match &self.coalesce {
            Some(c) if job.coalesce && job.kind == Kind::User => c,
            _ => &self.tx,
        };
        if queue.try_send(job).is_err() {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("an event handler queue is full ({QUEUE}): an event was dropped");
        }
    }

    /// Does a handler answer queries named `name`?
    pub fn answers(&self, name: &str) -> bool {
        self.handlers
            .iter()
            .any(|h| h.wants(Kind::Query, Some(name)))
    }

    /// Runs the first handler that answers this query; its answer comes on
    /// `reply`. False (and nothing runs) when no handler answers it or the
    /// queue is full (counted as dropped).
    pub fn query(&self, job: Job, reply: tokio::sync::oneshot::Sender<Answer>) -> bool {
        // A handler that names queries goes before one that takes every
        // event (a catch-all logger must not answer for `query:NAME`).
        let wants = |h: &&Handler| h.wants(Kind::Query, job.name.as_deref());
        let Some(handler) = self
            .handlers
            .iter()
            .filter(wants)
            .find(|h| !h.filters.is_empty())
            .or_else(|| self.handlers.iter().find(wants))
            .cloned()
        else {
            return false;
        };
        let q = QueryJob {
            job,
            handler,
            reply,
        };
        if self.queries.try_send(q).is_err() {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("the query handler queue is full ({QUEUE}): a query was dropped");
            return false;
        }
        true
    }
}

/// A handler that is a path to a program alone (`/etc/hearsay/deploy.sh`)
/// is started directly, anything else through `sh -c`, as Serf does: dash
/// does not exec the last command of `-c`, so the shell in front would be
/// a second process start per event (50 handlers at once on 2 cores are
/// bound by process starts).
fn command(line: &str) -> tokio::process::Command {
    if is_path(line) {
        return tokio::process::Command::new(line);
    }
    shell(line)
}

fn is_path(line: &str) -> bool {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+,:@%".contains(c);
    line.contains('/') && line.chars().all(plain)
}

fn shell(line: &str) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c").arg(line);
    cmd
}

/// Exec format error: a script without a `#!` line, which only a shell
/// runs (as `sh -c` always did).
const ENOEXEC: i32 = 8;

/// Runs one handler for one event, to its end or its timeout; with
/// `capture`, what it printed is the answer.
async fn run(h: &Handler, job: &Job, timeout: Duration, c: &Counters, capture: bool) -> Answer {
    c.runs.fetch_add(1, Ordering::Relaxed);
    let configure = |mut cmd: tokio::process::Command| {
        cmd.env("HEARSAY_EVENT", job.kind.name())
            .envs(job.env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::piped())
            .stdout(if capture {
                std::process::Stdio::piped()
            } else {
                std::process::Stdio::null()
            })
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        cmd
    };
    let spawned = match configure(command(&h.command)).spawn() {
        Err(e) if e.raw_os_error() == Some(ENOEXEC) => configure(shell(&h.command)).spawn(),
        r => r,
    };
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            c.failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("event handler {h} could not start: {e}");
            return Err(format!("the handler could not start: {e}"));
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        let data = job.stdin.clone();
        // A handler that does not read its input must not hold us up.
        tokio::spawn(async move {
            let _ = stdin.write_all(&data).await;
        });
    }
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(out)) if out.status.success() => {
            if out.stdout.len() > MAX_ANSWER {
                c.failures.fetch_add(1, Ordering::Relaxed);
                return Err(format!(
                    "the handler printed {} bytes; an answer has at most {MAX_ANSWER}",
                    out.stdout.len()
                ));
            }
            Ok(out.stdout)
        }
        Ok(Ok(out)) => {
            c.failures.fetch_add(1, Ordering::Relaxed);
            let err = String::from_utf8_lossy(&out.stderr);
            tracing::warn!(
                "event handler {h} for {} exited with {}: {}",
                job.kind.name(),
                out.status,
                err.trim()
            );
            Err(format!(
                "the handler exited with {}: {}",
                out.status,
                err.trim()
            ))
        }
        Ok(Err(e)) => {
            c.failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("event handler {h}: {e}");
            Err(format!("the handler: {e}"))
        }
        Err(_) => {
            // Dropping the child kills it (kill_on_drop) and reaps it.
            c.timeouts.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                "event handler {h} for {} ran past {timeout:?}: killed",
                job.kind.name()
            );
            Err(format!("the handler ran past {timeout:?} and was killed"))
        }
    }
}

/// This agent's own variables: its name and tags (`HEARSAY_TAG_ROLE` for
/// tag `role`; other characters than letters and digits become `_`).
pub fn self_env(name: &str, tags: &BTreeMap<String, String>) -> Vec<(String, String)> {
    let mut v = vec![("HEARSAY_SELF_NAME".to_string(), name.to_string())];
    for (k, val) in tags {
        let key: String = k
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        v.push((format!("HEARSAY_TAG_{key}"), val.clone()));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `file` holds exactly `want` within `limit`.
    async fn holds(file: &std::path::Path, want: &str, limit: Duration) -> bool {
        let t = std::time::Instant::now();
        while std::fs::read_to_string(file).unwrap_or_default() != want {
            if t.elapsed() > limit {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    #[test]
    fn specs_read_as_serf_writes_them() {
        let h: Handler = "user:deploy=./deploy.sh".parse().unwrap();
        assert!(h.wants(Kind::User, Some("deploy")));
        assert!(!h.wants(Kind::User, Some("flush")));
        assert!(!h.wants(Kind::MemberJoin, None));
        assert_eq!(h.command, "./deploy.sh");
        let h: Handler = "member-join,member-failed=notify x=1".parse().unwrap();
        assert!(h.wants(Kind::MemberJoin, None) && h.wants(Kind::MemberFailed, None));
        assert!(!h.wants(Kind::User, Some("a")));
        assert_eq!(h.command, "notify x=1");
        // No types: every event; a command holding `=` is not types.
        let h: Handler = "X=1 ./all.sh".parse().unwrap();
        assert!(h.wants(Kind::MemberReap, None) && h.wants(Kind::User, Some("z")));
        assert_eq!(h.command, "X=1 ./all.sh");
        let h: Handler = "./all.sh".parse().unwrap();
        assert_eq!(h.to_string(), "./all.sh");
        for bad in [
            "member-joined=x",
            "member-join:a=x",
            "user:=x",
            "user=",
            "  ",
        ] {
            assert!(bad.parse::<Handler>().is_err(), "{bad}");
        }
        assert!(
            "member-joined=x"
                .parse::<Handler>()
                .unwrap_err()
                .contains("member-join, member-leave")
        );
    }

    #[test]
    fn tags_become_variables() {
        let tags = BTreeMap::from([
            ("role".to_string(), "web".to_string()),
            ("dc.x".into(), "1".into()),
        ]);
        let env = self_env("n1", &tags);
        assert!(env.contains(&("HEARSAY_TAG_ROLE".into(), "web".into())));
        assert!(env.contains(&("HEARSAY_TAG_DC_X".into(), "1".into())));
        assert!(env.contains(&("HEARSAY_SELF_NAME".into(), "n1".into())));
    }

    /// A path alone starts the program itself (one process start per event,
    /// not two); anything else goes through the shell.
    #[tokio::test]
    async fn a_handler_that_is_a_path_starts_without_a_shell() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("ppid.sh");
        std::fs::write(&script, "#!/bin/sh\necho \"$PPID $1\"\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let parent = |line: String| async move {
            let out = command(&line).output().await.unwrap();
            assert!(out.status.success(), "{line}: {out:?}");
            String::from_utf8(out.stdout).unwrap()
        };
        let me = std::process::id();
        let path = script.display().to_string();
        assert_eq!(parent(path.clone()).await, format!("{me} \n"));
        // With an argument it is a shell line: the script's parent is `sh`.
        let via_shell = parent(format!("{path} x")).await;
        assert!(via_shell.ends_with(" x\n") && !via_shell.starts_with(&format!("{me} ")));
        // A path that is not a program fails to start, and says why.
        let missing = dir.path().join("missing.sh").display().to_string();
        assert!(command(&missing).output().await.is_err());
        // A script without a `#!` line still runs (through the shell, as
        // it always did).
        let bare = dir.path().join("bare.sh");
        std::fs::write(
            &bare,
            format!("echo bare >> {}\n", dir.path().join("out").display()),
        )
        .unwrap();
        std::fs::set_permissions(&bare, std::fs::Permissions::from_mode(0o755)).unwrap();
        let r = Runner::start(Config {
            handlers: vec![format!("user={}", bare.display()).parse().unwrap()],
            concurrency: 1,
            timeout: Duration::from_secs(10),
            coalesce: Duration::ZERO,
        });
        r.submit(Job {
            kind: Kind::User,
            name: Some("x".into()),
            env: Vec::new(),
            stdin: Vec::new(),
            coalesce: false,
        });
        let ran = holds(&dir.path().join("out"), "bare\n", Duration::from_secs(5)).await;
        assert!(ran, "{:?}", r.counters);
        assert_eq!(r.counters.failures.load(Ordering::Relaxed), 0);
    }

    /// Runs handlers for real: output, a failure, a timeout, a full queue.
    #[tokio::test]
    async fn handlers_run_fail_time_out_and_drop_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("out");
        let cfg = Config {
            handlers: vec![
                format!(
                    "user:deploy=echo \"$HEARSAY_EVENT $HEARSAY_USER_EVENT $HEARSAY_SELF_NAME $(cat)\" >> {}",
                    file.display()
                )
                .parse()
                .unwrap(),
                "user:fail=exit 3".parse().unwrap(),
                "user:slow=sleep 5".parse().unwrap(),
            ],
            concurrency: 2,
            timeout: Duration::from_millis(300),
            coalesce: Duration::ZERO,
        };
        let r = Runner::start(cfg);
        let job = |name: &str, stdin: &str| Job {
            kind: Kind::User,
            name: Some(name.into()),
            env: [("HEARSAY_USER_EVENT".to_string(), name.to_string())]
                .into_iter()
                .chain(self_env("me", &BTreeMap::new()))
                .collect(),
            stdin: stdin.as_bytes().to_vec(),
            coalesce: false,
        };
        r.submit(job("deploy", "v1"));
        r.submit(job("fail", ""));
        r.submit(job("slow", ""));
        r.submit(job("nobody-listens", ""));
        let t = std::time::Instant::now();
        while r.counters.runs.load(Ordering::Relaxed) < 3
            || r.counters.timeouts.load(Ordering::Relaxed) < 1
        {
            assert!(t.elapsed() < Duration::from_secs(10), "{:?}", r.counters);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "user deploy me v1\n"
        );
        assert_eq!(
            r.counters.runs.load(Ordering::Relaxed),
            3,
            "not for nobody-listens"
        );
        assert_eq!(r.counters.failures.load(Ordering::Relaxed), 1);
        assert_eq!(r.counters.timeouts.load(Ordering::Relaxed), 1);
        // A stuck handler fills the queue: submitting never waits, and
        // what does not fit is dropped and counted.
        let cfg = Config {
            handlers: vec!["sleep 5".parse().unwrap()],
            concurrency: 1,
            timeout: Duration::from_secs(10),
            coalesce: Duration::ZERO,
        };
        let r = Runner::start(cfg);
        let t = std::time::Instant::now();
        for _ in 0..(QUEUE + 50) {
            r.submit(job("x", ""));
        }
        assert!(t.elapsed() < Duration::from_secs(1));
        assert!(r.counters.dropped.load(Ordering::Relaxed) >= 40);
    }

    /// A query handler that hangs, with every query slot taken, does not
    /// hold up the handlers of events.
    #[tokio::test]
    async fn queries_do_not_take_the_slots_of_events() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("out");
        let cfg = Config {
            handlers: vec![
                "query=sleep 5".parse().unwrap(),
                format!("user=echo $HEARSAY_USER_EVENT >> {}", file.display())
                    .parse()
                    .unwrap(),
            ],
            concurrency: 1,
            timeout: Duration::from_secs(10),
            coalesce: Duration::ZERO,
        };
        let r = Runner::start(cfg);
        let job = |kind: Kind, name: &str| Job {
            kind,
            name: Some(name.into()),
            env: vec![("HEARSAY_USER_EVENT".into(), name.into())],
            stdin: Vec::new(),
            coalesce: false,
        };
        let mut waiting = Vec::new();
        for _ in 0..3 {
            let (tx, rx) = tokio::sync::oneshot::channel();
            assert!(r.query(job(Kind::Query, "q"), tx));
            waiting.push(rx);
        }
        r.submit(job(Kind::User, "deploy"));
        let ran = holds(&file, "deploy\n", Duration::from_secs(3)).await;
        assert!(ran, "the event waited for the queries");
    }

    /// A burst of coalescable events runs the handler once, with the
    /// last; events that do not ask for it, or of another name, each run.
    #[tokio::test]
    async fn a_burst_of_coalescable_events_runs_the_handler_once_with_the_last() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("out");
        let cfg = Config {
            handlers: vec![
                format!(
                    "user=echo \"$HEARSAY_USER_EVENT $(cat)\" >> {}",
                    file.display()
                )
                .parse()
                .unwrap(),
            ],
            concurrency: 4,
            timeout: Duration::from_secs(10),
            coalesce: Duration::from_millis(200),
        };
        let r = Runner::start(cfg);
        let job = |name: &str, stdin: &str, coalesce: bool| Job {
            kind: Kind::User,
            name: Some(name.into()),
            env: vec![("HEARSAY_USER_EVENT".into(), name.into())],
            stdin: stdin.as_bytes().to_vec(),
            coalesce,
        };
        for i in 0..10 {
            r.submit(job("deploy", &format!("v{i}"), true));
        }
        r.submit(job("flush", "f", true));
        r.submit(job("plain", "p1", false));
        r.submit(job("plain", "p2", false));
        let t = std::time::Instant::now();
        while r.counters.runs.load(Ordering::Relaxed) < 4 {
            assert!(t.elapsed() < Duration::from_secs(10), "{:?}", r.counters);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Nothing more comes.
        tokio::time::sleep(Duration::from_millis(600)).await;
        let mut lines: Vec<String> = std::fs::read_to_string(&file)
            .unwrap()
            .lines()
            .map(String::from)
            .collect();
        lines.sort();
        assert_eq!(lines, ["deploy v9", "flush f", "plain p1", "plain p2"]);
        assert_eq!(r.counters.coalesced.load(Ordering::Relaxed), 9);
    }
}
