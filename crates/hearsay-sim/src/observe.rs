//! Watching a run: what each member saw and when, turned into the report's
//! detection times, false positives and heal time.

use crate::member::Member;
use crate::report::{Broadcast, Crashes, Report, Spread};
use crate::sim::Sim;
use hearsay_core::cluster::MsgId;
use hearsay_core::id::{NodeId, mix};
use hearsay_core::membership::{Event, Incarnation};
use hearsay_core::time::Instant;
use std::collections::{BTreeMap, BTreeSet};

/// How long after a partition heals a death is still the partition's: a
/// suspicion raised across the cut may time out before the suspect's
/// refutation, gossiped once it hears of it, gets back across.
const HEAL_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Debug)]
struct Crash {
    member: usize,
    epoch: u64,
    at: Instant,
    /// When each member first saw this life gone.
    seen: BTreeMap<usize, Instant>,
}

/// (member, its life, when).
type Delivery = (usize, u64, Instant);

#[derive(Debug)]
pub(crate) struct Observer {
    crashes: Vec<Crash>,
    /// (member, epoch) -> its crash.
    by_life: BTreeMap<(usize, u64), usize>,
    /// Lives declared dead while alive and reachable.
    false_positives: BTreeSet<(usize, Incarnation)>,
    /// When each member's current life started.
    up_since: Vec<Instant>,
    healed: Option<Instant>,
    agreed: Option<Instant>,
    hash: u64,
    /// Payloads: when broadcast, by which member, and who delivered them
    /// (member, life, when).
    payloads: BTreeMap<MsgId, (Instant, usize, Vec<Delivery>)>,
}

impl Observer {
    pub fn new(n: usize) -> Self {
        Observer {
            crashes: Vec::new(),
            by_life: BTreeMap::new(),
            false_positives: BTreeSet::new(),
            up_since: vec![Instant::ZERO; n],
            healed: None,
            agreed: None,
            hash: 0,
            payloads: BTreeMap::new(),
        }
    }

    fn note(&mut self, x: u64) {
        self.hash = mix(self.hash ^ x);
    }

    pub fn crashed(&mut self, now: Instant, member: usize, epoch: u64) {
        tracing::debug!(%now, member, epoch, "crash");
        self.note(now.as_micros() ^ 0xc7a5 ^ member as u64);
        self.by_life.insert((member, epoch), self.crashes.len());
        self.crashes.push(Crash {
            member,
            epoch,
            at: now,
            seen: BTreeMap::new(),
        });
    }

    pub fn restarted(&mut self, now: Instant, member: usize) {
        tracing::debug!(%now, member, "restart");
        self.note(now.as_micros() ^ 0x7e57 ^ member as u64);
        self.up_since[member] = now;
    }

    pub fn paused(&mut self, member: usize, from: Instant, until: Instant) {
        tracing::debug!(member, %from, %until, "pause");
        self.note(from.as_micros() ^ until.as_micros() ^ member as u64);
    }

    pub fn broadcast(&mut self, now: Instant, origin: usize, id: MsgId) {
        self.payloads.insert(id, (now, origin, Vec::new()));
    }

    pub fn delivered(&mut self, now: Instant, member: usize, epoch: u64, id: &MsgId) {
        self.note(now.as_micros() ^ (member as u64) << 32 ^ id.2 ^ id.0.hash64());
        if let Some((_, _, got)) = self.payloads.get_mut(id) {
            got.push((member, epoch, now));
        }
    }

    pub fn healed(&mut self, now: Instant) {
        self.healed = Some(now);
    }

    /// Within [`HEAL_GRACE`] of the partition's heal: a death seen now
    /// comes from a suspicion the cut raised (the refutation is still on
    /// its way), not from a live member's failure to answer.
    fn just_healed(&self, now: Instant) -> bool {
        self.healed
            .is_some_and(|h| now.saturating_since(h) <= HEAL_GRACE)
    }

    pub fn agreed(&mut self, now: Instant) {
        self.agreed.get_or_insert(now);
    }

    fn seen(&mut self, now: Instant, observer: usize, member: usize, epoch: u64) {
        if let Some(&c) = self.by_life.get(&(member, epoch))
            && self.crashes[c].at <= now
        {
            self.crashes[c].seen.entry(observer).or_insert(now);
        }
    }

    /// One event seen by `observer` (in its life `observer_epoch`).
    #[allow(clippy::too_many_arguments)]
    pub fn event(
        &mut self,
        now: Instant,
        observer: usize,
        observer_epoch: u64,
        e: Event,
        cut: &dyn Fn(usize, usize) -> bool,
        index: &BTreeMap<NodeId, usize>,
        alive: &[Option<u64>],
    ) {
        let (tag, id, inc) = match &e {
            Event::Joined(id, inc) => (1, id, Some(*inc)),
            Event::Suspected(id, inc) => (2, id, Some(*inc)),
            Event::Alive(id, inc) => (3, id, Some(*inc)),
            Event::Died(id, inc) => (4, id, Some(*inc)),
            Event::Left(id, inc) => (5, id, Some(*inc)),
            Event::Removed(id) => (6, id, None),
            Event::Updated(id, inc) => (7, id, Some(*inc)),
        };
        self.note(
            now.as_micros()
                ^ (observer as u64) << 40
                ^ observer_epoch << 56
                ^ tag << 60
                ^ id.hash64()
                ^ inc.map_or(0, |i| i.epoch.0 << 20 ^ u64::from(i.n)),
        );
        tracing::trace!(%now, observer, ?e, "event");
        let Some(&m) = index.get(id) else {
            return;
        };
        match e {
            Event::Died(_, inc) => {
                let e = inc.epoch.0;
                if self.by_life.contains_key(&(m, e)) {
                    self.seen(now, observer, m, e);
                } else if alive[m] == Some(e) && !cut(observer, m) && !self.just_healed(now) {
                    if !self.false_positives.contains(&(m, inc)) {
                        tracing::debug!(%now, member = m, %inc, by = observer, "false positive");
                    }
                    self.false_positives.insert((m, inc));
                }
            }
            // A newer life known means the older one is gone.
            Event::Joined(_, inc)
            | Event::Alive(_, inc)
            | Event::Updated(_, inc)
            | Event::Suspected(_, inc) => {
                for old in 1..inc.epoch.0 {
                    self.seen(now, observer, m, old);
                }
            }
            Event::Removed(_) => {
                if let Some(&c) = self
                    .by_life
                    .range((m, 0)..=(m, u64::MAX))
                    .next_back()
                    .map(|(_, c)| c)
                {
                    let epoch = self.crashes[c].epoch;
                    self.seen(now, observer, m, epoch);
                }
            }
            Event::Left(..) => {}
        }
    }

    pub fn report<M: Member>(&self, sim: &Sim<M>) -> Report {
        let mut first = Vec::new();
        let mut all = Vec::new();
        let mut undetected = 0;
        for c in &self.crashes {
            // Observers: members up for the whole time since the crash (a
            // member that restarted after it may never have known it).
            let observers: Vec<usize> = (0..sim.sc.members)
                .filter(|&o| o != c.member && sim.live(o) && self.up_since[o] <= c.at)
                .collect();
            let mut last: Option<Instant> = None;
            let mut missed = false;
            for o in &observers {
                match c.seen.get(o) {
                    Some(t) => last = last.max(Some(*t)),
                    None => missed = true,
                }
            }
            if let Some(t) = c.seen.values().min() {
                first.push((*t - c.at).as_secs_f64());
            }
            if missed || observers.is_empty() {
                undetected += usize::from(missed);
            } else if let Some(t) = last {
                all.push((t - c.at).as_secs_f64());
            }
        }
        // A payload is owed to every member whose life began before it was
        // broadcast and lasted to the end of the run, unless its origin
        // crashed before any other member had it: a restarted member starts
        // empty, so nothing is left that could send it.
        let mut reached = Vec::new();
        let (mut undelivered, mut lost_with_origin) = (0, 0);
        for (id, (at, origin, got)) in &self.payloads {
            if self.by_life.contains_key(&(*origin, id.1.0))
                && got.iter().all(|(g, ..)| g == origin)
            {
                tracing::debug!(payload = ?id, sent = %at, "lost with its origin");
                lost_with_origin += 1;
                continue;
            }
            let owed: Vec<usize> = (0..sim.sc.members)
                .filter(|&m| sim.live(m) && self.up_since[m] <= *at)
                .collect();
            let mut last = *at;
            let mut missing = 0;
            for m in &owed {
                let epoch = sim.life(*m);
                match got.iter().find(|(g, e, _)| g == m && *e == epoch) {
                    Some((_, _, t)) => last = last.max(*t),
                    None => {
                        tracing::debug!(member = m, life = epoch, payload = ?id, sent = %at, "undelivered");
                        missing += 1
                    }
                }
            }
            undelivered += missing;
            if missing == 0 {
                reached.push((last - *at).as_secs_f64());
            }
        }
        Report {
            broadcast: Broadcast {
                payloads: self.payloads.len(),
                reached_all_s: Spread::of(&mut reached),
                undelivered,
                lost_with_origin,
                msgs_per_member_per_payload: None,
            },
            crashes: Crashes {
                count: self.crashes.len(),
                undetected,
                seen_by_first_s: Spread::of(&mut first),
                seen_by_all_each_s: all.clone(),
                seen_by_all_s: Spread::of(&mut all),
            },
            false_positives: self.false_positives.len(),
            heal: crate::report::Heal {
                views_agree_s: match (self.healed, self.agreed) {
                    (Some(h), Some(a)) => Some((a - h).as_secs_f64()),
                    _ => None,
                },
            },
            trace_hash: format!("{:016x}", self.hash),
            ..Report::default()
        }
    }
}
