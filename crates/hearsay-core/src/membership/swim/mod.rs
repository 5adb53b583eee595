//! SWIM (Das, Gupta, Motivala 2002) with Lifeguard (Dadgar, Phillips,
//! Currey 2018), as a sans-IO machine.
//!
//! - Failure detection (SWIM §3.1): each protocol period, probe the next
//!   live member on the ring of name hashes (or, with
//!   `ProbeOrder::Shuffled`, the next of a shuffled round-robin list, §4.3);
//!   without an ack within the probe timeout, ask `indirect` members to
//!   probe it (ping-req); without any ack by the end of the period, suspect
//!   it. On the ring every member is probed once a period, so a silence is
//!   noticed within a period and a probe, not after an exponential wait.
//!   With the phi detector, members heartbeat to a few monitors instead,
//!   and a monitor suspects a member whose phi crosses the threshold.
//! - Suspicion (SWIM §4.2): a suspect has until its suspicion timeout to
//!   refute with a higher incarnation; then it is declared dead. Lifeguard
//!   §IV-B: the timeout starts at the maximum and shrinks with independent
//!   confirmations, which members seek: hearing of a suspicion, about
//!   4 x k of them probe the suspect at once, so a dead one reaches the
//!   floor within a probe and a live one hears of it and refutes.
//! - Dissemination (SWIM §4.1): every claim is piggybacked on probes and
//!   gossiped to `gossip_nodes` members every `gossip_interval`, each at
//!   most lambda x log10(N+1) times; nothing is sent when nothing is new.
//! - Lifeguard §IV-A: a local health multiplier scales this member's probe
//!   interval and timeout when it misses nacks it should have had (indirect
//!   probers send nacks), has to refute, or notices it was run long after
//!   its timers were due (then expired suspicions wait a grace period, so
//!   refutations queued meanwhile are read first); §IV-C, the buddy system: a probe
//!   to a suspect carries the suspicion, and the refutation goes straight
//!   to the accusers as well as to gossip.
//! - Anti-entropy: a push-pull state sync with a random member every
//!   `push_pull_interval`, digest first (a settled cluster's sync is one
//!   small message). A dead member is pinged every `reconnect_interval`
//!   with the claim of its death: if it is alive behind a healed partition,
//!   it refutes, and the resurrection starts a few quick syncs, so both
//!   sides' views merge within seconds. A claim of death received by sync
//!   about a member known alive is shown to that member instead of
//!   believed, so a healed partition does not set off a storm of
//!   suspicions.
//! - Lifecycle: join through seeds (a full state sync), graceful leave,
//!   dead and left members collected after their retention, tombstones so
//!   an old rumour cannot resurrect them, a restart rejoins in a new epoch.

mod checks;
mod msg;
mod probe;
mod sync;

pub use msg::{Event, MemberMsg, SwimStats};

use super::awareness::Awareness;
use super::config::{Detector, ProbeOrder, SwimConfig, SwimConfigError};
use super::member::{
    Bytes, ForceLeaveError, Incarnation, Meta, Status, TagsError, Update, check_tags, overrides,
};
use super::phi::Arrivals;
use super::rumours::Rumours;
use super::suspicion::Suspicion;
use super::table::{BUCKETS, Change, Table, bucket, contribution};
use crate::id::{Epoch, NodeId};
use crate::outbox::Outbox;
use crate::rng::{self, Rng, RngExt};
use crate::time::Instant;
use crate::timers::{Timer, earliest};

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// Members a tag change is told to directly, at most: every member of
/// most clusters; rumour rounds take it to the rest.
const ANNOUNCE_TO: usize = 256;

/// One probe in progress. A probe waits `probe_timeout` for a direct ack,
/// then gives the indirect probes twice that; probes overlap, so a new one
/// starts every protocol period whatever the last one is waiting for.
#[derive(Debug)]
struct Probe {
    seq: u32,
    target: NodeId,
    sent_at: Instant,
    timeout_at: Instant,
    fail_at: Instant,
    indirect_sent: bool,
    expected_nacks: u32,
    nacks: u32,
}

/// Most probes in progress at once.
const MAX_PROBES: usize = 4;

/// An indirect probe this member runs for another: it nacks at `nack_at`
/// without an ack (Lifeguard), and still forwards a late ack until
/// `expires`.
#[derive(Debug)]
struct Relay {
    origin: NodeId,
    origin_seq: u32,
    nack_at: Option<Instant>,
    expires: Instant,
}

/// Most indirect probes run for others at once.
const MAX_RELAYS: usize = 256;
/// Most claims of death waiting to be shown to the member they are about
/// (those not believed, and those believed from hearsay).
const MAX_VERIFY: usize = 256;
/// Claims shown per tick.
const VERIFY_PER_TICK: usize = 8;
/// Most members one state message may carry (a bound on peer input).
pub const MAX_STATE: usize = 1 << 17;
/// Quick syncs after joining, or after a dead member comes back.
const HOT_SYNCS: u32 = 4;
/// Members that probe a suspect on hearing of it, per confirmation
/// wanted: enough that k of them almost surely answer.
const CONFIRMERS: f64 = 4.0;

/// What [`Swim::judge`] makes of a claim.
enum Judged {
    Fine,
    /// Not made by the member it is about.
    Forged,
    /// It needed a signature check, and the budget had none left.
    Unchecked,
}

pub struct Swim {
    cfg: SwimConfig,
    me: NodeId,
    inc: Incarnation,
    status: Status,
    meta: Arc<Meta>,
    table: Table,
    rumours: Rumours,
    suspicions: BTreeMap<NodeId, Suspicion>,
    awareness: Awareness,
    probes: Vec<Probe>,
    next_probe: Timer,
    relays: BTreeMap<u32, Relay>,
    seq: u32,
    next_gossip: Timer,
    /// When the last gossip round went out (eager rounds keep a gap).
    last_gossip: Option<Instant>,
    next_sync: Timer,
    next_reconnect: Timer,
    next_gc: Timer,
    next_heartbeat: Timer,
    hot: u32,
    verify: VecDeque<Update>,
    /// When known members were last heard from directly: a death claimed
    /// of one heard from lately is shown to it ([`Swim::heard_lately`]).
    heard: BTreeMap<NodeId, Instant>,
    /// Unknown senders recently asked to introduce themselves.
    strangers: BTreeMap<NodeId, Instant>,
    /// Phi detector: the ring of live members by name hash, and the
    /// arrival history of the members this one monitors.
    ring: BTreeSet<(u64, NodeId)>,
    arrivals: BTreeMap<NodeId, Arrivals>,
    started: bool,
    /// New tags to tell straight to the members at the next gossip round.
    announce: bool,
    /// The deadline last asked for (to notice being run late).
    expected: Option<Instant>,
    last_now: Instant,
    rng: Rng,
    stats: SwimStats,
    events: Vec<Event>,
    /// This member's identity key, if it signs its own claims.
    identity: Option<ed25519_dalek::SigningKey>,
    /// What peers may make it spend on signature checks.
    checks: checks::Checks,
    /// When an earlier life of this member under another key was last
    /// declared dead ([`Swim::bury`]).
    buried: Option<Instant>,
}

impl std::fmt::Debug for Swim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Swim")
            .field("me", &self.me)
            .field("inc", &self.inc)
            .field("members", &self.table.len())
            .finish()
    }
}

impl Swim {
    pub fn new(
        cfg: SwimConfig,
        me: NodeId,
        epoch: Epoch,
        meta: Meta,
        seed: u64,
    ) -> Result<Self, SwimConfigError> {
        cfg.validate()?;
        let rng = rng::child(seed, &format!("swim/{me}"));
        Ok(Swim {
            awareness: Awareness::new(cfg.awareness_max),
            table: Table::new(me.clone(), meta.zone.clone(), cfg.max_members),
            inc: Incarnation::new(epoch, 0),
            status: Status::Alive,
            meta: Arc::new(meta),
            me,
            rumours: Rumours::default(),
            suspicions: BTreeMap::new(),
            probes: Vec::new(),
            next_probe: Timer::default(),
            relays: BTreeMap::new(),
            seq: 0,
            next_gossip: Timer::default(),
            last_gossip: None,
            next_sync: Timer::default(),
            next_reconnect: Timer::default(),
            next_gc: Timer::default(),
            next_heartbeat: Timer::default(),
            hot: 0,
            verify: VecDeque::new(),
            heard: BTreeMap::new(),
            strangers: BTreeMap::new(),
            ring: BTreeSet::new(),
            arrivals: BTreeMap::new(),
            started: false,
            announce: false,
            expected: None,
            last_now: Instant::ZERO,
            rng,
            stats: SwimStats::default(),
            events: Vec::new(),
            identity: None,
            checks: checks::Checks::new(cfg.checks_per_sec),
            buried: None,
            cfg,
        })
    }

    /// Signs this member's claims about itself with the Ed25519 key made
    /// from `secret` (its public half goes in the metadata). The others
    /// then take a new incarnation of it, or its leave, only from claims it
    /// signed, and no accusation past what it signed, so that a key holder
    /// of the cluster cannot kill it with a claim it cannot outbid (a
    /// later life, a counter at the top). Set before joining; keep the
    /// secret across restarts (a member known under one key is not taken
    /// under another until it is forgotten). A signing member verifies the
    /// claims that need it (about 45 us each), within a budget
    /// (`SwimConfig::checks_per_sec`) that a flood of claims needing
    /// checks cannot spend for the acks to its own probes.
    pub fn set_identity(&mut self, secret: [u8; 32]) {
        let key = ed25519_dalek::SigningKey::from_bytes(&secret);
        self.meta = Arc::new(Meta {
            key: Some(Bytes(key.verifying_key().to_bytes())),
            ..(*self.meta).clone()
        });
        self.identity = Some(key);
    }

    pub fn me(&self) -> &NodeId {
        &self.me
    }

    pub fn incarnation(&self) -> Incarnation {
        self.inc
    }

    /// Gossip now, unless the last round was less than an interval ago
    /// (then at the end of that interval).
    fn gossip_soon(&mut self, now: Instant) {
        let soonest = self
            .last_gossip
            .map_or(now, |t| t + self.cfg.gossip_interval)
            .max(now);
        self.next_gossip.arm_by(soonest);
    }

    /// What this member tells about itself.
    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// New tags for this member, told to the others as an alive claim of a
    /// new incarnation, so that they win over the old ones everywhere (and
    /// go straight to the members, up to [`ANNOUNCE_TO`] of them, and as
    /// a rumour to the rest).
    pub fn set_tags(
        &mut self,
        now: Instant,
        tags: BTreeMap<Box<str>, Box<str>>,
    ) -> Result<(), TagsError> {
        check_tags(&tags)?;
        if self.meta.tags == tags || self.status == Status::Left {
            return Ok(());
        }
        self.meta = Arc::new(Meta {
            tags,
            ..(*self.meta).clone()
        });
        self.inc.n = self.inc.n.saturating_add(1);
        let u = self.self_update();
        self.rumours.push(u, self.cfg.max_rumours);
        // Changes within a gossip interval go out together.
        self.announce = true;
        self.gossip_soon(now);
        Ok(())
    }

    pub fn config(&self) -> &SwimConfig {
        &self.cfg
    }

    pub fn stats(&self) -> SwimStats {
        SwimStats {
            rumours_dropped: self.rumours.dropped,
            members_refused: self.table.refused(),
            ..self.stats
        }
    }

    /// The local health multiplier's score (0 is healthy).
    pub fn health(&self) -> u32 {
        self.awareness.score()
    }

    /// Members known (this one excluded), in name-hash order.
    pub fn members(&self) -> impl Iterator<Item = (&NodeId, Incarnation, Status, &Meta)> {
        self.table
            .iter()
            .map(|(id, r)| (id, r.inc, r.status, r.meta.as_ref()))
    }

    pub fn status_of(&self, id: &NodeId) -> Option<(Incarnation, Status)> {
        self.table.get(id).map(|r| (r.inc, r.status))
    }

    /// Who suspected member `id`, or declared it dead, as recorded here
    /// (the first accuser heard from; a diagnosis, not a proof: names are
    /// not authenticated).
    pub fn accuser_of(&self, id: &NodeId) -> Option<&NodeId> {
        self.table.get(id).and_then(|r| r.from)
    }

    /// What member `id` last said about itself (its address, zone, tags).
    pub fn meta_of(&self, id: &NodeId) -> Option<&Meta> {
        self.table.get(id).map(|r| &**r.meta)
    }

    /// Up to `k` random live members (preferring this member's zone).
    pub fn sample(&mut self, k: usize) -> Vec<NodeId> {
        self.table
            .random_live(k, &[], self.cfg.cross_zone, &mut self.rng)
    }

    /// Live members, this one included.
    pub fn live(&self) -> usize {
        self.table.live() + usize::from(self.status.is_live())
    }

    pub fn drain_events(&mut self) -> impl Iterator<Item = Event> + '_ {
        self.events.drain(..)
    }

    /// Starts with a known membership (a simulator's warm start): every
    /// member alive in the given incarnation, no rumours, no events.
    pub fn bootstrap(
        &mut self,
        now: Instant,
        members: impl IntoIterator<Item = (NodeId, Incarnation, Arc<Meta>)>,
    ) {
        self.start(now);
        let members: Vec<_> = members.into_iter().collect();
        if self.cfg.detector == Detector::Phi {
            for (id, _, _) in &members {
                if *id != self.me {
                    self.ring.insert((id.hash64(), id.clone()));
                }
            }
        }
        self.table.bulk_alive(members, &mut self.rng);
    }

    /// Joins through `seeds`: each gets this member's state, and answers
    /// with its own.
    pub fn join(&mut self, now: Instant, seeds: &[NodeId], out: &mut Outbox<MemberMsg>) {
        self.start(now);
        if seeds.iter().any(|s| *s != self.me) {
            // Members that join at the same time as this one may be
            // missing from the seed's answer, and their rumours may have
            // spread before anyone knew us: a few quick syncs with members
            // the seed named find them in a second rather than at the
            // first periodic sync or probe, which can be many seconds off.
            self.hot = HOT_SYNCS;
            self.next_sync.set(now + self.hot_wait());
        }
        for s in seeds {
            if *s != self.me {
                out.push(
                    s.clone(),
                    MemberMsg::State {
                        reply: true,
                        b: None,
                        m: self.state(None),
                    },
                );
            }
        }
    }

    /// Leaves gracefully: the leave is gossiped at once; probing stops.
    pub fn leave(&mut self, now: Instant, out: &mut Outbox<MemberMsg>) {
        if self.status == Status::Left {
            return;
        }
        self.status = Status::Left;
        self.probes.clear();
        self.next_probe.clear();
        let u = self.self_update();
        self.rumours.push(u, self.cfg.max_rumours);
        self.gossip(now, out);
    }

    /// Whether `id` may be forced out ([`Swim::force_leave`]): a member
    /// recorded here as failed; not this one, not one alive (it would
    /// refute at once and stay) or only suspected, not one unknown or
    /// already gone.
    pub fn can_force_leave(&self, id: &NodeId) -> Result<Incarnation, ForceLeaveError> {
        if *id == self.me {
            return Err(ForceLeaveError::Myself);
        }
        match self.table.get(id) {
            None => Err(ForceLeaveError::Unknown),
            Some(r) => match r.status {
                Status::Alive => Err(ForceLeaveError::Alive),
                // Serf forces out failed members only: a suspicion may
                // still be refuted (the flapping reachability diagnoses).
                Status::Suspect => Err(ForceLeaveError::Suspected),
                Status::Left => Err(ForceLeaveError::Gone),
                // Its leave would be refused by every member that signs.
                Status::Dead if self.identity.is_some() && r.meta.key.is_some() => {
                    Err(ForceLeaveError::Signs)
                }
                Status::Dead => Ok(r.inc),
            },
        }
    }

    /// Serf's `force-leave`: records a failed member as left and gossips
    /// that, so every member stops counting it as failed (handlers see a
    /// leave) and forgets it as it forgets members that left. If it was
    /// alive after all, it hears of it and refutes, as from any claim.
    pub fn force_leave(
        &mut self,
        now: Instant,
        id: &NodeId,
        out: &mut Outbox<MemberMsg>,
    ) -> Result<(), ForceLeaveError> {
        let inc = self.can_force_leave(id)?;
        let u = Update {
            id: id.clone(),
            inc,
            status: Status::Left,
            meta: None,
            from: Some(self.me.clone()),
            sig: None,
        };
        self.absorb(now, u, None, out);
        Ok(())
    }

    pub fn has_left(&self) -> bool {
        self.status == Status::Left
    }

    fn self_update(&self) -> Update {
        let mut u = Update {
            id: self.me.clone(),
            inc: self.inc,
            status: self.status,
            meta: Some(self.meta.clone()),
            from: None,
            sig: None,
        };
        if let Some(k) = &self.identity {
            use ed25519_dalek::Signer;
            u.sig = Some(Bytes(k.sign(&u.signed_bytes()).to_bytes()));
        }
        u
    }

    fn start(&mut self, now: Instant) {
        if self.started {
            return;
        }
        self.started = true;
        // Random phases, so members do not all act in the same instant.
        let jitter = |rng: &mut Rng, d: Duration| d.mul_f64(rng.random::<f64>());
        let p = jitter(&mut self.rng, self.cfg.probe_interval);
        if self.cfg.detector == Detector::Swim {
            self.next_probe.set(now + p);
        }
        let s = jitter(&mut self.rng, self.cfg.push_pull_interval);
        self.next_sync.set(now + s);
        let r = jitter(&mut self.rng, self.cfg.reconnect_interval);
        self.next_reconnect.set(now + r);
        self.next_gc.set(now + Duration::from_secs(1));
        if self.cfg.detector == Detector::Phi {
            let h = jitter(&mut self.rng, self.cfg.heartbeat_interval);
            self.next_heartbeat.set(now + h);
        }
    }

    /// The gap between two quick syncs.
    fn hot_wait(&self) -> Duration {
        (self.cfg.gossip_interval * 2).max(Duration::from_millis(200))
    }

    fn n(&self) -> usize {
        self.live().max(1)
    }

    /// The member our ping numbered `q` went to: one of our probes in
    /// progress, or a suspect's last-chance ping.
    fn pinged_by(&self, q: u32) -> Option<NodeId> {
        self.probes
            .iter()
            .find(|p| p.seq == q)
            .map(|p| p.target.clone())
            .or_else(|| {
                self.suspicions
                    .iter()
                    .find(|(_, s)| s.ping == Some(q))
                    .map(|(id, _)| id.clone())
            })
    }

    /// A sequence number for a ping. A member that signs draws them at
    /// random: an ack with the right number is an answer whose claims it
    /// checks beyond its budget, so an insider must not guess one.
    fn next_seq(&mut self) -> u32 {
        self.seq = match self.identity {
            Some(_) => self.rng.random(),
            None => self.seq.wrapping_add(1),
        }
        .max(1);
        self.seq
    }

    /// Piggybacks rumours on a message to `to` (the buddy system puts the
    /// suspicion of `to` first).
    fn send(&mut self, to: NodeId, mut msg: MemberMsg, out: &mut Outbox<MemberMsg>) {
        let budget = self.cfg.max_piggyback_bytes;
        let limit = self.cfg.retransmits(self.n());
        let ups = match &mut msg {
            MemberMsg::Ping { u, .. }
            | MemberMsg::Ack { u, .. }
            | MemberMsg::PingReq { u, .. }
            | MemberMsg::Nack { u, .. }
            | MemberMsg::Gossip { u }
            | MemberMsg::Heartbeat { u } => Some(u),
            _ => None,
        };
        if let Some(u) = ups {
            // Lifeguard §IV-C, the buddy system: a suspect learns of its
            // suspicion from the very next message it gets from us.
            if self.cfg.lifeguard
                && u.is_empty()
                && let Some(r) = self.table.get(&to)
                && r.status == Status::Suspect
            {
                u.push(Update {
                    id: to.clone(),
                    inc: r.inc,
                    status: Status::Suspect,
                    meta: None,
                    from: r.from.cloned(),
                    sig: None,
                });
            }
            self.rumours.take(budget, limit, u);
        }
        out.push(to, msg);
    }

    /// One message from `from`.
    pub fn handle(
        &mut self,
        now: Instant,
        from: &NodeId,
        msg: MemberMsg,
        out: &mut Outbox<MemberMsg>,
    ) {
        self.check_stall(now);
        self.handle_msg(now, from, msg, out);
        self.checks.begin(None);
        self.expected = self.next_deadline();
    }

    /// Lifeguard-style self-awareness: if this member is run much later than
    /// it asked to be (a GC pause, a stalled VM, an overloaded host), its
    /// timers are stale and its input queue is full of news it has not
    /// read. It then counts itself unhealthy and gives every suspicion that
    /// expired meanwhile a grace period, so a refutation waiting in the
    /// queue is read before it declares anyone dead.
    fn check_stall(&mut self, now: Instant) {
        self.last_now = self.last_now.max(now);
        let Some(expected) = self.expected.take() else {
            return;
        };
        if !self.cfg.lifeguard || now <= expected + self.cfg.probe_interval {
            return;
        }
        let stalled = now - expected;
        self.stats.stalls += 1;
        self.awareness.apply(1);
        let grace = stalled.min(self.cfg.suspicion_min(self.n()));
        for s in self.suspicions.values_mut() {
            s.hold_until(now + grace);
        }
    }

    fn handle_msg(
        &mut self,
        now: Instant,
        from: &NodeId,
        mut msg: MemberMsg,
        out: &mut Outbox<MemberMsg>,
    ) {
        if *from == self.me {
            self.stats.bad_input += 1;
            return;
        }
        self.start(now);
        if let Some(t) = self.heard.get_mut(from) {
            *t = now;
        } else if self.table.get(from).is_some() {
            self.heard.insert(from.clone(), now);
        }
        // Claims in an ack to our own ping, about the member pinged, are
        // checked beyond the budget.
        let pinged = match &msg {
            MemberMsg::Ack { q, .. } if self.identity.is_some() => self.pinged_by(*q),
            _ => None,
        };
        self.checks.begin(pinged);
        for u in msg.updates() {
            self.absorb(now, u, Some(from), out);
        }
        if self.table.get(from).is_none() && !matches!(msg, MemberMsg::State { .. }) {
            self.introduce(now, from, out);
        }
        match msg {
            MemberMsg::Ping { q, t, .. } => {
                if t == self.me {
                    // A member recorded here as left (or collected) is
                    // probing, so it has not left: it is told, and refutes.
                    // Nothing else would tell it (gossip goes to live and
                    // dead members), and a false claim of leaving by
                    // anyone would keep it out for good.
                    let u = self
                        .table
                        .gone_at(from)
                        .map(|inc| Update {
                            id: from.clone(),
                            inc,
                            status: Status::Left,
                            meta: None,
                            from: None,
                            sig: None,
                        })
                        .into_iter()
                        .collect();
                    self.send(from.clone(), MemberMsg::Ack { q, u }, out);
                } else {
                    self.stats.bad_input += 1;
                }
            }
            MemberMsg::Ack { q, .. } => self.on_ack(now, from, q, out),
            MemberMsg::PingReq { q, t, .. } => self.on_ping_req(now, from, q, t, out),
            MemberMsg::Nack { q, .. } => {
                if let Some(p) = self.probes.iter_mut().find(|p| p.seq == q) {
                    p.nacks += 1;
                    self.stats.nacks_received += 1;
                }
            }
            MemberMsg::Gossip { .. } => {}
            MemberMsg::Heartbeat { .. } => {
                if let Some(a) = self.arrivals.get_mut(from) {
                    a.heartbeat(now);
                }
            }
            MemberMsg::Digest { d, .. } => self.on_digest(from, d, out),
            MemberMsg::State { reply, b, m } => {
                if m.len() > MAX_STATE {
                    self.stats.bad_input += 1;
                    return;
                }
                // What the sender knows, to answer with only what it lacks.
                let theirs: BTreeMap<NodeId, (Incarnation, Status)> = if reply {
                    m.iter()
                        .map(|u| (u.id.clone(), (u.inc, u.status)))
                        .collect()
                } else {
                    BTreeMap::new()
                };
                for u in m {
                    self.merge(now, u, from, out);
                }
                if reply {
                    let buckets = b.map(|b| {
                        let mut mask = [false; BUCKETS];
                        for k in b {
                            if let Some(x) = mask.get_mut(usize::from(k)) {
                                *x = true;
                            }
                        }
                        mask
                    });
                    let m: Vec<Update> = self
                        .state(buckets.as_ref())
                        .into_iter()
                        .filter(|u| match theirs.get(&u.id) {
                            Some((inc, was)) => overrides(u.inc, u.status, *inc, *was),
                            None => u.status.is_live(),
                        })
                        .collect();
                    if m.is_empty() {
                        return;
                    }
                    out.push(
                        from.clone(),
                        MemberMsg::State {
                            reply: false,
                            b: None,
                            m,
                        },
                    );
                }
            }
        }
    }

    /// A rumour (or piggybacked claim) from `from`.
    fn absorb(
        &mut self,
        now: Instant,
        u: Update,
        from: Option<&NodeId>,
        out: &mut Outbox<MemberMsg>,
    ) {
        if !u.valid() {
            self.stats.bad_input += 1;
            return;
        }
        if u.id == self.me {
            self.about_me(u, from, out);
            return;
        }
        match self.judge(now, &u, from) {
            Judged::Fine => {}
            Judged::Forged => {
                self.stats.forged += 1;
                self.refused(now, &u, out);
                return;
            }
            Judged::Unchecked => {
                self.stats.unchecked += 1;
                return;
            }
        }
        match self.table.apply(&u, now, &mut self.rng) {
            Some(c) => {
                let heard =
                    c.now == Status::Suspect && u.from.as_ref().is_some_and(|f| *f != self.me);
                // A death we only heard of, of a member we had alive and
                // heard from lately: shown to it too (if it lives, it
                // refutes at once). Without this it heard only through
                // gossip to the recently dead, which a table full of
                // strangers (or a large cluster) makes rare: a forged death
                // stood for up to a push-pull round. A member that really
                // died went silent well before its death is declared, so
                // no one sends to its address for this.
                if c.now == Status::Dead
                    && c.was.is_some_and(Status::is_live)
                    && u.from.as_ref() != Some(&self.me)
                    && self.heard_lately(now, &c.id)
                    && self.verify.len() < MAX_VERIFY
                {
                    self.verify.push_back(u.clone());
                }
                let id = c.id.clone();
                self.changed(now, c, u);
                if heard {
                    self.maybe_confirm(now, id, out);
                }
            }
            None => {
                // The same suspicion from another member: Lifeguard counts
                // it as an independent confirmation, and passes it on so
                // the others count it too (as memberlist does).
                if u.status == Status::Suspect
                    && self.cfg.lifeguard
                    && let (Some(s), Some(f)) = (self.suspicions.get_mut(&u.id), u.from.as_ref())
                    && s.inc == u.inc
                    && s.confirm(f)
                {
                    self.rumours.push(u, self.cfg.max_rumours);
                }
            }
        }
    }

    /// `Forged`: a claim about a member that signs (its key known here)
    /// that it did not make: a new incarnation or a leave not signed with
    /// that key, an alive claim that would change its metadata to another
    /// key, an accusation past the incarnation it signed or carrying
    /// metadata. A claim about a member known here without a key (or not
    /// at all) that carries a key must be signed with that key.
    ///
    /// Only a member that signs checks: a verification costs tens of
    /// microseconds, and a member outside the scheme must not pay that
    /// for every claim an insider decorates with a key. Checks are
    /// rationed ([`checks`]): a claim over the budget is `Unchecked`.
    fn judge(&mut self, now: Instant, u: &Update, from: Option<&NodeId>) -> Judged {
        if self.identity.is_none() {
            return Judged::Fine;
        }
        let claimed = u.meta.as_ref().and_then(|m| m.key);
        // Unknown here, or known without a key: a key it carries must
        // have signed it.
        let Some((inc, status, key)) = self
            .table
            .get(&u.id)
            .and_then(|r| r.meta.key.map(|k| (r.inc, r.status, k)))
        else {
            return match claimed {
                Some(k) => self.signed(now, u, &k, from),
                None => Judged::Fine,
            };
        };
        if !overrides(u.inc, u.status, inc, status) {
            return Judged::Fine;
        }
        match u.status {
            Status::Alive if u.meta.is_none() || claimed.is_some_and(|k| k != key) => {
                Judged::Forged
            }
            // Not even of a member found dead (a force-leave): the death
            // may be forged, and a member recorded as left is no longer
            // probed, so its refutation may never reach the believer.
            Status::Left if claimed.is_some_and(|k| k != key) => Judged::Forged,
            Status::Alive | Status::Left => self.signed(now, u, &key, from),
            // Only its signed claims tell its metadata (its address): an
            // accusation carrying some would change it unsigned.
            Status::Suspect | Status::Dead if u.inc > inc || u.meta.is_some() => Judged::Forged,
            Status::Suspect | Status::Dead => Judged::Fine,
        }
    }

    /// After refusing `u` as forged: what the refusal may hide.
    fn refused(&mut self, now: Instant, u: &Update, out: &mut Outbox<MemberMsg>) {
        let Some(r) = self.table.get(&u.id).filter(|r| r.status.is_live()) else {
            return;
        };
        match u.status {
            // An accusation past the incarnation we hold may be true: we
            // may have missed a refutation the accuser saw. Our own probe
            // tells (a dead member then dies here by our own suspicion, not
            // at a probe that may be far off). Not while we hear from it
            // directly (it lives, and a flood of such claims about a busy
            // member would have us probe it without pause, and suspect it
            // at its first late ack); at most a probe in flight per member,
            // a few at once, one slot always left to the periodic probe.
            Status::Suspect | Status::Dead => {
                if self.cfg.detector == Detector::Swim
                    && self.status.is_live()
                    && self.probes.len() + 1 < MAX_PROBES
                    && !self.heard_lately(now, &u.id)
                {
                    self.start_probe(now, u.id.clone(), out);
                }
            }
            // A new life under another key while we hold it alive: its
            // data dir may have been wiped. It is shown what we hold (once
            // in the queue, with the metadata that names the old key), so
            // that it can declare that life over ([`Swim::bury`]).
            Status::Alive => {
                if u.inc.epoch > r.inc.epoch
                    && self.verify.len() < MAX_VERIFY
                    && !self.verify.iter().any(|v| v.id == u.id)
                {
                    let held = Update {
                        meta: Some(r.meta.clone()),
                        from: None,
                        ..r.update(&u.id)
                    };
                    self.verify.push_back(held);
                }
            }
            Status::Left => {}
        }
    }

    /// Whether `u` is signed with `key`, if the check budget allows a
    /// check (the one costly step of [`Swim::judge`]).
    fn signed(
        &mut self,
        now: Instant,
        u: &Update,
        key: &Bytes<32>,
        from: Option<&NodeId>,
    ) -> Judged {
        if u.sig.is_none() {
            return Judged::Forged;
        }
        let known = from.is_some_and(|f| self.table.get(f).is_some());
        if !self.checks.allow(now, &u.id, from, known) {
            return Judged::Unchecked;
        }
        self.stats.checks += 1;
        if u.signed_by(key) {
            Judged::Fine
        } else {
            Judged::Forged
        }
    }

    /// Lifeguard's confirmations, sought rather than waited for: a member
    /// that hears of a suspicion probes the suspect itself with a chance
    /// that makes about `CONFIRMERS` x k members do so. A dead suspect
    /// then has its k confirmations a probe after the news, and dies at
    /// the floor, not after a wait on chance probes (which spread its
    /// detection time by seconds); a live one is reached by the probes,
    /// which carry the suspicion (the buddy system), and refutes at once.
    fn maybe_confirm(&mut self, now: Instant, id: NodeId, out: &mut Outbox<MemberMsg>) {
        if !self.cfg.lifeguard || self.cfg.detector != Detector::Swim || !self.status.is_live() {
            return;
        }
        let others = self.n().saturating_sub(2).max(1);
        let k = self.confirmations_wanted();
        let chance = (CONFIRMERS * f64::from(k) / others as f64).min(1.0);
        if self.rng.random_bool(chance) {
            self.start_probe(now, id, out);
        }
    }

    /// Confirmations after which a suspicion is at its floor: no more than
    /// there are members to give them (all but the suspect and the first
    /// accuser), or a small cluster would never reach the floor.
    fn confirmations_wanted(&self) -> u32 {
        let others = u32::try_from(self.n().saturating_sub(2)).unwrap_or(u32::MAX);
        self.cfg.suspicion_confirmations.min(others)
    }

    /// A claim about this member: refute any accusation with a higher
    /// incarnation (SWIM §4.2). Claims about an older life are ignored.
    fn about_me(&mut self, u: Update, from: Option<&NodeId>, out: &mut Outbox<MemberMsg>) {
        if u.inc.epoch != self.inc.epoch {
            if u.inc.epoch > self.inc.epoch {
                self.stats.bad_input += 1;
            } else {
                // A claim about an earlier life: its sender has not heard
                // of this one (the join was lost, and the reconnect pings
                // to the old life are how this life is found). Told
                // directly, as a refutation is; an earlier life still
                // held alive under another key is also declared over.
                if self.status.is_live()
                    && let Some(f) = from.filter(|f| **f != self.me)
                {
                    out.push(
                        f.clone(),
                        MemberMsg::Gossip {
                            u: vec![self.self_update()],
                        },
                    );
                }
                self.bury(u, from, out);
            }
            return;
        }
        let accused = u.status != Status::Alive && u.inc >= self.inc;
        let ahead = u.status == Status::Alive && u.inc > self.inc;
        if self.status == Status::Left {
            return;
        }
        if !(accused || ahead) {
            // An accusation of an older incarnation: the sender missed our
            // refutation; tell it directly (Lifeguard's buddy system).
            if u.status != Status::Alive
                && self.cfg.lifeguard
                && let Some(f) = from
                && *f != self.me
            {
                out.push(
                    f.clone(),
                    MemberMsg::Gossip {
                        u: vec![self.self_update()],
                    },
                );
            }
            return;
        }
        // A member that signs moves on from its own counter: nobody who
        // knows its key takes a claim past what it signed, so a forged
        // counter (the top one, say) must not drag it there.
        self.inc.n = match self.identity {
            Some(_) => self.inc.n,
            None => u.inc.n.max(self.inc.n),
        }
        .saturating_add(1);
        self.stats.refutations += 1;
        if self.cfg.lifeguard {
            // Lifeguard §IV-A: having to refute is a sign of ill health.
            self.awareness.apply(1);
        }
        let alive = self.self_update();
        self.rumours.push(alive.clone(), self.cfg.max_rumours);
        if self.cfg.lifeguard {
            // Buddy system: the refutation goes straight to the accusers.
            let mut to: Vec<NodeId> = u.from.into_iter().collect();
            to.extend(from.cloned());
            to.sort();
            to.dedup();
            for t in to.into_iter().filter(|t| *t != self.me) {
                out.push(
                    t,
                    MemberMsg::Gossip {
                        u: vec![alive.clone()],
                    },
                );
            }
        }
    }

    /// An earlier life of this member, live under another key (its data
    /// dir was wiped, so this life has a new one), as `from` holds it:
    /// `from` refuses this life's claims while it holds that one, and that
    /// one will not answer (its key is gone), nor be found dead (this
    /// process answers the probes to its name). So this life tells `from`
    /// that one is dead, at the incarnation it holds (any member could
    /// claim as much; a live holder of that key would refute it), at most
    /// once a second. The others take the new key once they have forgotten
    /// the old life (`dead_retention` after its death): a new key is never
    /// taken for a member they remember, or a key holder could take the
    /// name of any member by claiming it dead and born again.
    fn bury(&mut self, u: Update, from: Option<&NodeId>, out: &mut Outbox<MemberMsg>) {
        let theirs = u.meta.as_ref().and_then(|m| m.key);
        let now = self.last_now;
        let Some(f) = from.filter(|f| **f != self.me) else {
            return;
        };
        if self.identity.is_none()
            || !u.status.is_live()
            || theirs.is_none()
            || theirs == self.meta.key
            || self
                .buried
                .is_some_and(|t| now < t + Duration::from_secs(1))
        {
            return;
        }
        self.buried = Some(now);
        self.stats.buried += 1;
        let dead = Update {
            status: Status::Dead,
            meta: None,
            from: Some(self.me.clone()),
            sig: None,
            ..u
        };
        out.push(f.clone(), MemberMsg::Gossip { u: vec![dead] });
    }

    fn changed(&mut self, now: Instant, c: Change, u: Update) {
        self.ring_change(&c);
        let rumour = Update {
            meta: self
                .table
                .get(&c.id)
                .map(|r| r.meta.clone())
                .filter(|_| c.now == Status::Alive),
            ..u
        };
        self.rumours.push(rumour.clone(), self.cfg.max_rumours);
        if matches!(c.now, Status::Dead | Status::Left) {
            // News of a failure or a leave is what everyone waits for: a
            // member that has not gossiped for an interval passes it on
            // now rather than at its next round, which saves up to a
            // round's wait at every hop; rounds stay an interval apart,
            // so a burst of news (a partition) costs no extra rounds.
            self.gossip_soon(now);
        }
        let ev = match (c.was, c.now) {
            (None, Status::Alive | Status::Suspect) => Event::Joined(c.id.clone(), c.inc),
            (Some(Status::Dead | Status::Left), Status::Alive | Status::Suspect) => {
                // Back from the dead (a healed partition, a rejoin): a few
                // quick syncs merge the two sides' views.
                self.hot = HOT_SYNCS;
                self.next_sync.arm_by(now + self.cfg.gossip_interval);
                Event::Alive(c.id.clone(), c.inc)
            }
            // New tags, also when a suspicion (which carries none) came
            // first: handlers of member updates must not miss them.
            (Some(Status::Alive | Status::Suspect), Status::Alive) if c.meta_changed => {
                Event::Updated(c.id.clone(), c.inc)
            }
            (_, Status::Alive) => Event::Alive(c.id.clone(), c.inc),
            (_, Status::Suspect) => Event::Suspected(c.id.clone(), c.inc),
            (_, Status::Dead) => Event::Died(c.id.clone(), c.inc),
            (_, Status::Left) => Event::Left(c.id.clone(), c.inc),
        };
        match c.now {
            Status::Suspect => {
                let n = self.n();
                let k = if self.cfg.lifeguard {
                    self.confirmations_wanted()
                } else {
                    0
                };
                let s = Suspicion::new(
                    c.inc,
                    rumour.from.clone(),
                    now,
                    self.cfg.suspicion_min(n),
                    self.cfg.suspicion_max(n),
                    k,
                );
                self.suspicions.insert(c.id.clone(), s);
            }
            _ => {
                self.suspicions.remove(&c.id);
            }
        }
        self.events.push(ev);
    }

    /// Keeps the phi detector's ring of live members.
    fn ring_change(&mut self, c: &Change) {
        if self.cfg.detector != Detector::Phi {
            return;
        }
        let key = (c.id.hash64(), c.id.clone());
        if c.now.is_live() {
            self.ring.insert(key);
        } else {
            self.ring.remove(&key);
            self.arrivals.remove(&c.id);
        }
    }

    /// Time passed.
    pub fn tick(&mut self, now: Instant, out: &mut Outbox<MemberMsg>) {
        self.check_stall(now);
        self.run_timers(now, out);
        self.expected = self.next_deadline();
    }

    fn run_timers(&mut self, now: Instant, out: &mut Outbox<MemberMsg>) {
        self.start(now);
        if self.next_gc.fire(now) {
            self.collect(now);
            self.next_gc.set(now + Duration::from_secs(1));
        }
        self.expire_suspicions(now, out);
        if self.status.is_live() {
            match self.cfg.detector {
                Detector::Swim => self.run_probe(now, out),
                Detector::Phi => self.run_heartbeats(now, out),
            }
        }
        self.expire_relays(now, out);
        if self.next_gossip.fire(now) {
            self.gossip(now, out);
        }
        if !self.rumours.is_empty() && self.next_gossip.at().is_none() {
            self.next_gossip.set(now + self.cfg.gossip_interval);
        }
        if self.next_sync.fire(now) {
            // A quick sync right after an introduction (a digest to a
            // stranger, answered the same way) would only ask again.
            let introduced =
                self.hot > 0 && self.strangers.values().any(|t| *t + self.hot_wait() > now);
            if !introduced {
                self.sync(out);
            }
            let wait = if self.hot > 0 {
                self.hot -= 1;
                self.hot_wait()
            } else {
                self.cfg.push_pull_interval
            };
            self.next_sync.set(now + wait);
        }
        if self.next_reconnect.fire(now) {
            self.reconnect(out);
            self.next_reconnect.set(now + self.cfg.reconnect_interval);
        }
        for _ in 0..VERIFY_PER_TICK {
            let Some(claim) = self.verify.pop_front() else {
                break;
            };
            let to = claim.id.clone();
            // Still live here (a claim not believed), or dead by this very
            // claim (believed, and shown in case it is false).
            if self.table.get(&to).is_some_and(|r| {
                r.status.is_live() || (r.status == Status::Dead && r.inc == claim.inc)
            }) {
                out.push(to, MemberMsg::Gossip { u: vec![claim] });
            }
        }
    }

    /// Four protocol periods: less than a crash takes to be declared (a
    /// probe, then the suspicion's floor).
    fn lately(&self) -> Duration {
        self.cfg.probe_interval * 4
    }

    /// Heard from `id` directly within [`Swim::lately`].
    fn heard_lately(&self, now: Instant, id: &NodeId) -> bool {
        self.heard
            .get(id)
            .is_some_and(|t| now.saturating_since(*t) <= self.lately())
    }

    fn collect(&mut self, now: Instant) {
        let window = self.lately();
        self.heard.retain(|_, t| now.saturating_since(*t) <= window);
        let c = &self.cfg;
        for id in self.table.collect(
            now,
            c.dead_retention,
            c.left_retention,
            c.tombstone_retention,
        ) {
            self.rumours.remove(&id);
            self.events.push(Event::Removed(id));
        }
    }

    fn gossip(&mut self, now: Instant, out: &mut Outbox<MemberMsg>) {
        if std::mem::take(&mut self.announce) {
            // A tag change is one operator action, not a stream: told at
            // once to every member (or ANNOUNCE_TO of them), rather than
            // left to rumour rounds whose last straggler waits a round.
            let me = self.self_update();
            let mut live: Vec<NodeId> = self
                .table
                .iter()
                .filter(|(_, r)| r.status.is_live())
                .map(|(id, _)| id.clone())
                .collect();
            let k = live.len().min(ANNOUNCE_TO);
            for i in 0..k {
                let j = self.rng.random_range(i..live.len());
                live.swap(i, j);
            }
            for t in live.into_iter().take(k) {
                out.push(
                    t,
                    MemberMsg::Gossip {
                        u: vec![me.clone()],
                    },
                );
            }
        }
        if self.rumours.is_empty() {
            return;
        }
        let mut targets = self.table.random_live(
            self.cfg.gossip_nodes,
            &[],
            self.cfg.cross_zone,
            &mut self.rng,
        );
        // Members dead for a short while still hear rumours: behind a
        // partition, they learn that they must refute.
        let dead = self.table.recently_dead(now, self.cfg.gossip_to_dead);
        if !dead.is_empty() && !targets.is_empty() {
            let live = self.table.live().max(1);
            if self
                .rng
                .random_bool(dead.len() as f64 / (dead.len() + live) as f64)
            {
                let i = self.rng.random_range(0..targets.len());
                targets[i] = dead[self.rng.random_range(0..dead.len())].clone();
            }
        }
        for t in targets {
            self.send(t, MemberMsg::Gossip { u: vec![] }, out);
        }
        self.last_gossip = Some(now);
        self.next_gossip.set(now + self.cfg.gossip_interval);
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        let probe = self
            .probes
            .iter()
            .map(|p| {
                if p.indirect_sent {
                    p.fail_at
                } else {
                    p.timeout_at
                }
            })
            .min();
        let window = self.last_chance();
        let suspicion = self
            .suspicions
            .values()
            .map(|s| {
                if self.cfg.lifeguard && !s.checked {
                    s.deadline - window
                } else {
                    s.deadline
                }
            })
            .min();
        let relay = self
            .relays
            .values()
            .map(|r| r.nack_at.unwrap_or(r.expires))
            .min();
        // Work due at once is due at the last time this member was run.
        let asap = Some(self.last_now);
        let verify = asap.filter(|_| !self.verify.is_empty());
        let gossip = if self.rumours.is_empty() {
            None
        } else {
            self.next_gossip.at().or(asap)
        };
        let phi = (self.cfg.detector == Detector::Phi && !self.arrivals.is_empty())
            .then(|| self.next_heartbeat.at())
            .flatten();
        earliest([
            probe,
            self.next_probe.at().filter(|_| self.status.is_live()),
            suspicion,
            relay,
            verify,
            gossip,
            self.next_sync.at(),
            self.next_reconnect.at(),
            self.next_gc.at(),
            self.next_heartbeat.at(),
            phi,
        ])
    }
}

impl crate::machine::Machine for Swim {
    type Msg = MemberMsg;
    fn receive(
        &mut self,
        now: Instant,
        from: &NodeId,
        msg: MemberMsg,
        out: &mut Outbox<MemberMsg>,
    ) {
        self.handle(now, from, msg, out);
    }
    fn tick(&mut self, now: Instant, out: &mut Outbox<MemberMsg>) {
        Swim::tick(self, now, out);
    }
    fn next_deadline(&self) -> Option<Instant> {
        Swim::next_deadline(self)
    }
}
