//! Queries (Serf's `serf query`): ask the members a filter chooses, and
//! collect their acknowledgements and answers until all are in or the time
//! is up.
//!
//! The asker chooses the members itself (by name and by tags, which every
//! member gossips) and sends each the query directly: one hop, so an
//! answer comes in a round trip plus the handler's time, and the asker
//! knows exactly whom it asked, so the summary can name who stayed silent.
//! Those not heard from are asked again, backing off; a member asked twice
//! acknowledges again and resends its answer but runs its handler once.
//! Every member acknowledges, saying whether an answer will follow (a
//! handler or the application answers that name), so a query ends as soon
//! as every answer it can expect is in.

use hearsay_core::id::NodeId;
use hearsay_core::time::Instant;
pub use hearsay_wire::query::{Answer, QueryMsg};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Longest a query may wait for answers.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(300);
/// Default wait.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Members not heard from are first asked again after this (then the
/// wait doubles, up to a second).
pub const RETRY: Duration = Duration::from_millis(200);
const MAX_RETRY: Duration = Duration::from_secs(1);
/// Queries this agent asks at once (more are refused).
pub const MAX_ASKING: usize = 64;
/// Queries asked of this agent answered at once, at most (each holds a
/// task until its handler or the application answers); past it, a query
/// is answered at once with a failure saying so.
pub const MAX_ANSWERING: usize = 256;
/// Queries from others remembered (to answer a repeat without running the
/// handler again); past it the oldest are forgotten.
pub const MAX_REMEMBERED: usize = 4096;
/// The bytes of the answers remembered, at most (4,096 answers of 64 KiB
/// would be 256 MiB); past it the oldest queries are forgotten.
pub const MAX_REMEMBERED_BYTES: usize = 8 << 20;
/// A repeat of a query is answered at most once in this time (the asker
/// asks again after 200 ms at the soonest): a forged stream of repeats
/// in clear text must not turn ~100 bytes each into answers of up to a
/// datagram each, aimed at a member.
pub const REPEAT_GAP: Duration = Duration::from_millis(100);

/// Updates (or incoming queries) buffered for a slow reader; past it they
/// are dropped (the summary still counts them).
pub const UPDATES: usize = 1024;

/// A query asked of this agent, for the application to answer
/// ([`crate::Agent::answer_queries`]). Dropping it unanswered tells the
/// asker it failed.
#[derive(Debug)]
pub struct Incoming {
    /// The query's name.
    pub name: String,
    /// What the asker sent with it.
    pub payload: Vec<u8>,
    /// The member that asked.
    pub from: String,
    pub(crate) reply: tokio::sync::oneshot::Sender<Answer>,
}

impl Incoming {
    /// Answers with `payload` (at most [`hearsay_core::cluster::MAX_PAYLOAD`]
    /// bytes; a longer one is sent as a failure saying so).
    pub fn respond(self, payload: Vec<u8>) {
        let max = hearsay_core::cluster::MAX_PAYLOAD;
        let a = if payload.len() > max {
            Answer::Failed(format!(
                "the answer has {} bytes, at most {max}",
                payload.len()
            ))
        } else {
            Answer::Ok(payload.into())
        };
        let _ = self.reply.send(a);
    }

    /// Tells the asker this agent could not answer, and why (at most
    /// [`MAX_WHY`] bytes of it).
    pub fn fail(self, why: impl Into<String>) {
        let _ = self.reply.send(Answer::Failed(short(why.into())));
    }
}

/// Longest reason for a failed answer sent back, in bytes (a handler's
/// standard error can be long).
pub const MAX_WHY: usize = 1024;

/// `why` cut to [`MAX_WHY`] bytes, at a character boundary.
pub fn short(mut why: String) -> String {
    if why.len() > MAX_WHY {
        let mut end = MAX_WHY;
        while !why.is_char_boundary(end) {
            end -= 1;
        }
        why.truncate(end);
        why.push_str("...");
    }
    why
}

/// A query as the caller gives it.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// The query's name (1 to 128 bytes, no control characters), which
    /// `query:NAME` handlers match.
    pub name: String,
    /// Sent to each member asked (at most 64 KiB); a handler reads it on
    /// standard input.
    pub payload: Vec<u8>,
    /// Only these members (empty: all).
    pub nodes: Vec<String>,
    /// Only members whose tag KEY matches the regular expression (the
    /// whole value, as Serf's filter; all must match).
    pub tags: BTreeMap<String, String>,
    /// How long to wait for answers ([`DEFAULT_TIMEOUT`] when zero).
    pub timeout: Duration,
}

/// A request checked: its filters compiled.
pub(crate) struct Checked {
    pub name: String,
    pub payload: Arc<[u8]>,
    pub nodes: Vec<String>,
    pub tags: Vec<(String, regex::Regex)>,
    pub timeout: Duration,
}

impl Request {
    pub(crate) fn check(self) -> Result<Checked, String> {
        hearsay_core::cluster::check_event_name(&self.name)
            .map_err(|e| e.replace("an event name", "a query name"))?;
        let max = hearsay_core::cluster::MAX_PAYLOAD;
        if self.payload.len() > max {
            return Err(format!(
                "a query payload has at most {max} bytes, not {}",
                self.payload.len()
            ));
        }
        let timeout = if self.timeout.is_zero() {
            DEFAULT_TIMEOUT
        } else {
            self.timeout
        };
        if timeout > MAX_TIMEOUT {
            return Err(format!(
                "a query waits at most {} s, not {:?}",
                MAX_TIMEOUT.as_secs(),
                timeout
            ));
        }
        let mut tags = Vec::new();
        for (k, re) in self.tags {
            let r = tag_regex(&re).map_err(|e| format!("tag filter {k}={re}: {e}"))?;
            tags.push((k, r));
        }
        Ok(Checked {
            name: self.name,
            payload: self.payload.into(),
            nodes: self.nodes,
            tags,
            timeout,
        })
    }
}

/// A tag filter's expression, anchored at both ends: it matches the whole
/// value, as Serf's filter (and `hearsay members --tag`) does.
pub fn tag_regex(re: &str) -> Result<regex::Regex, regex::Error> {
    regex::Regex::new(&format!("^(?:{re})$"))
}

impl Checked {
    /// Does member `name` with `tags` pass the filters?
    pub fn wants(&self, name: &str, tags: &BTreeMap<Box<str>, Box<str>>) -> bool {
        (self.nodes.is_empty() || self.nodes.iter().any(|n| n == name))
            && self.tags.iter().all(|(k, re)| {
                tags.get(k.as_str())
                    .is_some_and(|v| re.is_match(v.as_ref()))
            })
    }
}

/// What a query brings, as it comes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Update {
    /// A member received the query (`answers`: an answer will follow).
    Ack {
        /// The member's name.
        from: String,
        /// An answer (or a failure) will follow.
        answers: bool,
    },
    /// A member's answer.
    Answer {
        /// The member's name.
        from: String,
        /// What it answered (in JSON as text, invalid UTF-8 replaced).
        #[serde(serialize_with = "crate::lossy")]
        payload: Vec<u8>,
    },
    /// A member could not answer (its handler failed or timed out).
    Failed {
        /// The member's name.
        from: String,
        /// Why, as the member put it.
        error: String,
    },
    /// The last update: the query is over.
    Done(Summary),
}

/// How a query went.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// The query's name.
    pub name: String,
    /// Every member the filters chose (this agent too, if it matched).
    pub asked: Vec<String>,
    /// Those that acknowledged it.
    pub acked: Vec<String>,
    /// Those that answered.
    pub answered: Vec<String>,
    /// Those that could not answer ([`Update::Failed`]).
    pub failed: Vec<String>,
    /// Asked and never acknowledged (down, unreachable, or too old an
    /// agent to know queries).
    pub missing: Vec<String>,
    /// Acknowledged with an answer to come that did not come in time.
    pub late: Vec<String>,
    /// How long the query ran, in milliseconds.
    pub elapsed_ms: u64,
}

/// Where one asked member stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Asked,
    /// Acknowledged; an answer will follow.
    Waiting,
    Done,
}

/// A query this agent asked, waiting for answers.
pub(crate) struct Asking {
    pub id: u64,
    name: String,
    payload: Arc<[u8]>,
    started: Instant,
    deadline: Instant,
    /// Asked members: their address (None: this agent, answered in
    /// place), stage, and when to ask again and the wait after that.
    members: BTreeMap<NodeId, (Option<SocketAddr>, Stage, Instant, Duration)>,
    /// Chosen, but no address is known for them: asked of no one, missing.
    unreachable: Vec<String>,
    acked: Vec<String>,
    answered: Vec<String>,
    failed: Vec<String>,
    updates: tokio::sync::mpsc::Sender<Update>,
    /// Room kept for the summary, so that a reader behind on the updates
    /// still gets it.
    done: Option<tokio::sync::mpsc::OwnedPermit<Update>>,
}

impl Asking {
    /// `targets`: the members chosen, with their address (None: this
    /// agent itself, answered in place); `unreachable`: those chosen whose
    /// address is not known (reported missing).
    pub fn new(
        id: u64,
        q: &Checked,
        targets: BTreeMap<NodeId, Option<SocketAddr>>,
        unreachable: Vec<String>,
        now: Instant,
        updates: tokio::sync::mpsc::Sender<Update>,
    ) -> Asking {
        Asking {
            id,
            name: q.name.clone(),
            payload: q.payload.clone(),
            started: now,
            deadline: now + q.timeout,
            members: targets
                .into_iter()
                .map(|(n, a)| (n, (a, Stage::Asked, now, RETRY)))
                .collect(),
            unreachable,
            acked: Vec::new(),
            answered: Vec::new(),
            failed: Vec::new(),
            done: updates.clone().try_reserve_owned().ok(),
            updates,
        }
    }

    /// The query as sent: its wait is what is left of ours.
    pub fn ask(&self, now: Instant) -> QueryMsg {
        let left = self.deadline.saturating_since(now);
        QueryMsg::Ask {
            id: self.id,
            name: self.name.clone(),
            payload: self.payload.clone(),
            timeout_ms: u32::try_from(left.as_millis()).unwrap_or(u32::MAX),
        }
    }

    /// The members to ask (again) now: those not heard from, and those
    /// whose answer is overdue (their acknowledgement or answer may have
    /// been lost; a repeat is answered from memory).
    pub fn due(&mut self, now: Instant) -> Vec<SocketAddr> {
        let mut out = Vec::new();
        for (addr, stage, next, wait) in self.members.values_mut() {
            if *stage == Stage::Done || *next > now {
                continue;
            }
            if let Some(a) = addr {
                out.push(*a);
            }
            *next = now + *wait;
            *wait = (*wait * 2).min(MAX_RETRY);
        }
        out
    }

    /// An acknowledgement from `from`.
    pub fn ack(&mut self, from: &NodeId, answers: bool) {
        let Some((_, stage, ..)) = self.members.get_mut(from) else {
            return;
        };
        if *stage != Stage::Asked {
            return;
        }
        *stage = if answers { Stage::Waiting } else { Stage::Done };
        self.acked.push(from.to_string());
        self.tell(Update::Ack {
            from: from.to_string(),
            answers,
        });
    }

    /// An answer from `from` (which also acknowledges).
    pub fn answer(&mut self, from: &NodeId, answer: Answer) {
        let Some((_, stage, ..)) = self.members.get(from) else {
            return;
        };
        match stage {
            Stage::Done => return,
            Stage::Asked => self.ack(from, true),
            Stage::Waiting => {}
        }
        if let Some(m) = self.members.get_mut(from) {
            m.1 = Stage::Done;
        }
        let from = from.to_string();
        match answer {
            Answer::Ok(p) => {
                self.answered.push(from.clone());
                self.tell(Update::Answer {
                    from,
                    payload: p.to_vec(),
                });
            }
            Answer::Failed(error) => {
                self.failed.push(from.clone());
                self.tell(Update::Failed { from, error });
            }
        }
    }

    fn tell(&self, u: Update) {
        // A caller that went away does not stop the query.
        let _ = self.updates.try_send(u);
    }

    /// Every answer is in, the time is up, or the caller went away.
    pub fn done(&self, now: Instant) -> bool {
        now >= self.deadline
            || self.updates.is_closed()
            || self.members.values().all(|m| m.1 == Stage::Done)
    }

    pub fn next_deadline(&self) -> Instant {
        self.members
            .values()
            .filter(|m| m.1 != Stage::Done)
            .map(|m| m.2)
            .min()
            .map_or(self.deadline, |t| t.min(self.deadline))
    }

    /// Ends the query: the summary goes to the caller as the last update.
    pub fn finish(mut self, now: Instant) -> Summary {
        let names = |s: Stage| -> Vec<String> {
            self.members
                .iter()
                .filter(|(_, m)| m.1 == s)
                .map(|(n, _)| n.to_string())
                .collect()
        };
        let sorted = |mut v: Vec<String>| {
            v.sort();
            v
        };
        let summary = Summary {
            name: self.name.clone(),
            asked: sorted(
                self.members
                    .keys()
                    .map(NodeId::to_string)
                    .chain(self.unreachable.iter().cloned())
                    .collect(),
            ),
            acked: sorted(self.acked.clone()),
            answered: sorted(self.answered.clone()),
            failed: sorted(self.failed.clone()),
            missing: sorted(
                names(Stage::Asked)
                    .into_iter()
                    .chain(self.unreachable.iter().cloned())
                    .collect(),
            ),
            late: names(Stage::Waiting),
            elapsed_ms: now.saturating_since(self.started).as_millis() as u64,
        };
        match self.done.take() {
            Some(permit) => {
                permit.send(Update::Done(summary.clone()));
            }
            None => self.tell(Update::Done(summary.clone())),
        }
        summary
    }
}

/// What this agent did with a query it was asked: whether an answer
/// follows, and the answer once there is one.
#[derive(Clone, Debug)]
pub(crate) struct Asked {
    pub answers: bool,
    pub answer: Option<Answer>,
    /// Forgotten after this (the asker stopped waiting).
    until: Instant,
    /// When it was last answered (a repeat sooner is ignored).
    told: Instant,
    seq: u64,
}

/// A query asked of this agent, as [`Remembered`] knows it.
#[derive(Debug)]
pub(crate) enum Seen {
    /// Not asked before: recorded.
    New,
    /// A repeat: what was done with it (answer it again).
    Again(Asked),
    /// A repeat sooner than [`REPEAT_GAP`] after the last: ignored.
    TooSoon,
}

fn answer_bytes(a: &Answer) -> usize {
    match a {
        Answer::Ok(p) => p.len(),
        Answer::Failed(why) => why.len(),
    }
}

/// Queries asked of this agent, remembered while their askers wait, so
/// that a repeat is answered without running the handler again. Bounded
/// by count and by the bytes of the answers kept.
#[derive(Default)]
pub(crate) struct Remembered {
    by: HashMap<(NodeId, u64), Asked>,
    seq: u64,
    bytes: usize,
}

impl Remembered {
    /// A query from `from`, recorded if new (with whether an answer will
    /// follow).
    pub fn ask(
        &mut self,
        now: Instant,
        from: &NodeId,
        id: u64,
        timeout: Duration,
        answers: bool,
    ) -> Seen {
        self.forget(now);
        if let Some(a) = self.by.get_mut(&(from.clone(), id)) {
            if now < a.told + REPEAT_GAP {
                return Seen::TooSoon;
            }
            a.told = now;
            return Seen::Again(a.clone());
        }
        if self.by.len() >= MAX_REMEMBERED {
            self.forget_oldest();
        }
        self.seq += 1;
        self.by.insert(
            (from.clone(), id),
            Asked {
                answers,
                answer: None,
                until: now + timeout.min(MAX_TIMEOUT),
                told: now,
                seq: self.seq,
            },
        );
        Seen::New
    }

    /// The answer to `from`'s query `id` is ready.
    pub fn answered(&mut self, from: &NodeId, id: u64, answer: Answer) {
        let Some(a) = self.by.get_mut(&(from.clone(), id)) else {
            return;
        };
        self.bytes += answer_bytes(&answer);
        if let Some(old) = a.answer.replace(answer) {
            self.bytes -= answer_bytes(&old);
        }
        // Not counted as told: a retry that crossed the answer on the way
        // is answered (the answer may be what was lost).
        while self.bytes > MAX_REMEMBERED_BYTES && !self.by.is_empty() {
            self.forget_oldest();
        }
    }

    fn forget_oldest(&mut self) {
        let oldest = self
            .by
            .iter()
            .min_by_key(|(_, a)| a.seq)
            .map(|(k, _)| k.clone());
        if let Some(k) = oldest {
            self.drop_entry(&k);
        }
    }

    fn drop_entry(&mut self, k: &(NodeId, u64)) {
        if let Some(a) = self.by.remove(k) {
            self.bytes -= a.answer.as_ref().map_or(0, answer_bytes);
        }
    }

    /// Forgets the queries whose askers stopped waiting (on every query
    /// asked of us: no copy of the keys).
    fn forget(&mut self, now: Instant) {
        let mut freed = 0;
        self.by.retain(|_, a| {
            let keep = a.until > now;
            if !keep {
                freed += a.answer.as_ref().map_or(0, answer_bytes);
            }
            keep
        });
        self.bytes -= freed;
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(p: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], p))
    }

    fn checked(timeout_ms: u64) -> Checked {
        Request {
            name: "uptime".into(),
            payload: b"x".to_vec(),
            timeout: Duration::from_millis(timeout_ms),
            ..Request::default()
        }
        .check()
        .unwrap()
    }

    #[test]
    fn requests_are_checked_and_filters_match_whole_tag_values() {
        let bad = |r: Request| r.check().err().unwrap();
        assert!(bad(Request::default()).contains("a query name"));
        let r = Request {
            name: "q".into(),
            payload: vec![0; hearsay_core::cluster::MAX_PAYLOAD + 1],
            ..Request::default()
        };
        assert!(bad(r).contains("at most"));
        let r = Request {
            name: "q".into(),
            timeout: Duration::from_secs(301),
            ..Request::default()
        };
        assert!(bad(r).contains("at most 300 s"));
        let r = Request {
            name: "q".into(),
            tags: [("role".to_string(), "(".to_string())].into(),
            ..Request::default()
        };
        assert!(bad(r).contains("role=("));
        let q = Request {
            name: "q".into(),
            nodes: vec!["a".into(), "b".into()],
            tags: [("role".to_string(), "web|db".to_string())].into(),
            ..Request::default()
        }
        .check()
        .unwrap();
        assert_eq!(q.timeout, DEFAULT_TIMEOUT);
        let tags = |v: &str| -> BTreeMap<Box<str>, Box<str>> { [("role".into(), v.into())].into() };
        assert!(q.wants("a", &tags("web")));
        assert!(!q.wants("a", &tags("webserver")), "the whole value");
        assert!(!q.wants("c", &tags("db")), "not a named node");
        assert!(!q.wants("b", &BTreeMap::new()), "no such tag");
    }

    #[test]
    fn asks_again_until_heard_and_ends_when_every_answer_is_in() {
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        let t0 = Instant::from_millis(1000);
        let targets: BTreeMap<NodeId, Option<SocketAddr>> = [
            (NodeId::new("a"), None),
            (NodeId::new("b"), Some(addr(2))),
            (NodeId::new("c"), Some(addr(3))),
            (NodeId::new("d"), Some(addr(4))),
        ]
        .into();
        let mut q = Asking::new(7, &checked(2000), targets, Vec::new(), t0, tx);
        assert_eq!(q.due(t0), vec![addr(2), addr(3), addr(4)]);
        assert!(q.due(t0 + RETRY / 2).is_empty());
        q.ack(&NodeId::new("a"), false);
        q.ack(&NodeId::new("b"), true);
        q.answer(
            &NodeId::new("c"),
            Answer::Ok(b"up 3 days".as_slice().into()),
        );
        q.ack(&NodeId::new("x"), true);
        // Retried: b (its answer is overdue) and d (silent); c is done.
        assert_eq!(q.due(t0 + RETRY), vec![addr(2), addr(4)]);
        assert!(!q.done(t0 + RETRY));
        q.answer(&NodeId::new("b"), Answer::Failed("exit 1".into()));
        q.answer(&NodeId::new("b"), Answer::Ok(b"again".as_slice().into()));
        assert!(!q.done(t0 + RETRY), "d has not acknowledged");
        q.ack(&NodeId::new("d"), false);
        assert!(q.done(t0 + RETRY), "nothing more to wait for");
        let s = q.finish(t0 + RETRY);
        assert_eq!(s.asked, ["a", "b", "c", "d"]);
        assert_eq!(s.acked, ["a", "b", "c", "d"]);
        assert_eq!(s.answered, ["c"]);
        assert_eq!(s.failed, ["b"]);
        assert!(s.missing.is_empty() && s.late.is_empty());
        assert_eq!(s.elapsed_ms, 200);
        let mut got = Vec::new();
        while let Ok(u) = rx.try_recv() {
            got.push(u);
        }
        assert_eq!(got.len(), 7, "{got:?}: 4 acks, an answer, a failure, done");
        assert!(matches!(got.last(), Some(Update::Done(_))));
    }

    #[test]
    fn the_silent_are_missing_and_the_slow_are_late_at_the_deadline() {
        let (tx, _rx) = tokio::sync::mpsc::channel(64);
        let t0 = Instant::from_millis(0);
        let targets = [
            (NodeId::new("b"), Some(addr(2))),
            (NodeId::new("c"), Some(addr(3))),
        ]
        .into();
        let mut q = Asking::new(1, &checked(1000), targets, vec!["d".into()], t0, tx);
        q.ack(&NodeId::new("b"), true);
        let mut asks = 0;
        let mut t = t0;
        while !q.done(t) {
            asks += q.due(t).len();
            t = q.next_deadline();
        }
        assert_eq!(t, t0 + Duration::from_millis(1000));
        // 0, 200, 600 ms for both; b only as overdue after its ack.
        assert!((4..=6).contains(&asks), "{asks}");
        let s = q.finish(t);
        // d (no address known) is asked of no one and missing with c.
        assert_eq!(s.asked, ["b", "c", "d"]);
        assert_eq!(s.missing, ["c", "d"]);
        assert_eq!(s.late, ["b"]);
        // What is left of the wait goes with the query.
        let fresh = Asking::new(
            2,
            &checked(1000),
            BTreeMap::new(),
            Vec::new(),
            t0,
            tokio::sync::mpsc::channel(1).0,
        );
        assert!(matches!(
            fresh.ask(t0 + Duration::from_millis(300)),
            QueryMsg::Ask {
                timeout_ms: 700,
                ..
            }
        ));
    }

    #[test]
    fn a_repeat_is_answered_from_memory_and_memory_is_bounded() {
        let mut r = Remembered::default();
        let t0 = Instant::from_millis(0);
        let a = NodeId::new("a");
        let wait = Duration::from_secs(1);
        let gap = |k: u64| t0 + REPEAT_GAP * k as u32;
        assert!(matches!(r.ask(t0, &a, 1, wait, true), Seen::New));
        assert!(matches!(r.ask(t0, &a, 1, wait, true), Seen::TooSoon));
        let Seen::Again(again) = r.ask(gap(1), &a, 1, wait, true) else {
            panic!("a repeat after the gap is answered");
        };
        assert!(again.answers && again.answer.is_none(), "still running");
        r.answered(&a, 1, Answer::Ok(b"ok".as_slice().into()));
        // A retry that crossed the answer is answered (it may be lost).
        let Seen::Again(again) = r.ask(gap(2), &a, 1, wait, true) else {
            panic!("answered from memory");
        };
        assert_eq!(again.answer, Some(Answer::Ok(b"ok".as_slice().into())));
        assert!(matches!(
            r.ask(t0, &NodeId::new("b"), 1, wait, false),
            Seen::New
        ));
        // Forgotten once the asker stopped waiting.
        let later = t0 + wait;
        assert!(matches!(r.ask(later, &a, 1, wait, true), Seen::New));
        assert_eq!(r.bytes, 0);
        for id in 0..(MAX_REMEMBERED as u64 + 10) {
            r.ask(later, &a, 100 + id, wait, false);
        }
        assert_eq!(r.len(), MAX_REMEMBERED);
        // Bounded by bytes too: 64 KiB answers keep 8 MiB at most.
        let mut r = Remembered::default();
        let big = vec![7u8; hearsay_core::cluster::MAX_PAYLOAD];
        for id in 0..1000 {
            r.ask(t0, &a, id, wait, true);
            r.answered(&a, id, Answer::Ok(big.as_slice().into()));
            assert!(r.bytes <= MAX_REMEMBERED_BYTES, "{} at {id}", r.bytes);
        }
        assert_eq!(r.len(), MAX_REMEMBERED_BYTES / big.len());
        assert!(
            matches!(r.ask(t0, &a, 0, wait, true), Seen::New),
            "the oldest went first"
        );
    }
}
