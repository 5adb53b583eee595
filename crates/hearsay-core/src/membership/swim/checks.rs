//! A budget for signature checks. A member that signs verifies the claims
//! that need it (tens of microseconds each), and an insider can write a
//! datagram full of claims that need it: without a bound, a flood of
//! them would fill the member's one loop. So checks are rationed, and
//! rationed so that the flood cannot spend what honest claims need:
//!
//! - claims that answer this member's own requests are checked beyond
//!   the budget: up to two about the member it pinged, in the ack to that
//!   ping (the numbers of a signing member's pings are random, so an
//!   insider cannot answer for another), and up to 1,024 in a state
//!   answering a sync or join it started with a peer of its choice. There
//!   are as many as it asks for, and they are how a suspect's refutation
//!   reaches whoever probes it;
//! - every other check takes a token from its sender's bucket (one
//!   shared bucket for senders not in the table) and one from the
//!   member's whole budget; a sender whose claim fails a check loses its
//!   tokens, so a forger gets no more than its share a second, never a
//!   burst.
//!
//! A claim over the budget is dropped unchecked (and counted); the news
//! it carried comes again by gossip, sync or the next probe.

use crate::id::NodeId;
use crate::time::Instant;
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// How long an answer to a request of ours is waited for.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);
/// Requests remembered at once (probes, last-chance pings, syncs).
const MAX_ASKED: usize = 256;
/// Claims of one answer checked beyond the budget, at most: a state
/// answering a sync may name every member, but a hostile peer we synced
/// with must not make us check a hundred thousand (what this leaves out
/// comes with the next syncs: a joiner syncs a few times at once).
const PER_ANSWER: u32 = 1024;
/// Claims about the member pinged checked beyond the budget, per ack: its
/// refutation needs one.
const PER_ACK: u32 = 2;

/// A request of ours whose answer is checked without limit.
#[derive(Debug)]
struct Asked {
    /// The peer asked (a sync) or the member pinged (a ping: its ack may
    /// come through a helper, so only the sequence number is matched).
    peer: NodeId,
    seq: Option<u32>,
    until: Instant,
}

/// What a message answers, while its claims are absorbed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) enum Answering {
    #[default]
    Nothing,
    /// An ack to our ping of this member: claims about it.
    Ping(NodeId),
    /// A state answering our sync: all its claims.
    Sync,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(now: Instant, size: f64) -> Self {
        Bucket {
            tokens: size,
            at: now,
        }
    }

    /// Refills at `rate` a second up to `size`; takes one if there is one.
    fn take(&mut self, now: Instant, rate: f64, size: f64) -> bool {
        let dt = now.saturating_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * rate).min(size);
        self.at = self.at.max(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The check budget ([module docs](self)).
#[derive(Debug)]
pub(super) struct Checks {
    /// Checks a second, all senders together (and the burst).
    rate: f64,
    all: Bucket,
    senders: BTreeMap<NodeId, Bucket>,
    strangers: Bucket,
    asked: VecDeque<Asked>,
    /// What the message being absorbed answers, and how many of its
    /// claims were checked under that.
    pub answering: Answering,
    answered: u32,
}

impl Checks {
    pub fn new(rate: u32) -> Self {
        let rate = f64::from(rate);
        Checks {
            rate,
            all: Bucket::full(Instant::ZERO, rate),
            senders: BTreeMap::new(),
            strangers: Bucket::full(Instant::ZERO, rate / 4.0),
            asked: VecDeque::new(),
            answering: Answering::Nothing,
            answered: 0,
        }
    }

    /// One sender's share: a quarter of the whole.
    fn share(&self) -> f64 {
        self.rate / 4.0
    }

    /// We pinged `target` with `seq` (a probe, a helper's probe, a
    /// last-chance ping, a reconnect).
    pub fn pinged(&mut self, now: Instant, seq: u32, target: &NodeId) {
        self.remember(now, target, Some(seq));
    }

    /// We asked `peer` for its state (a sync, a join).
    pub fn synced(&mut self, now: Instant, peer: &NodeId) {
        self.remember(now, peer, None);
    }

    fn remember(&mut self, now: Instant, peer: &NodeId, seq: Option<u32>) {
        while self.asked.front().is_some_and(|a| a.until <= now) || self.asked.len() >= MAX_ASKED {
            self.asked.pop_front();
        }
        self.asked.push_back(Asked {
            peer: peer.clone(),
            seq,
            until: now + ANSWER_WITHIN,
        });
    }

    /// What an ack with `seq` answers (the request is used up).
    pub fn ack(&mut self, now: Instant, seq: u32) -> Answering {
        let Some(i) = self
            .asked
            .iter()
            .position(|a| a.seq == Some(seq) && a.until > now)
        else {
            return Answering::Nothing;
        };
        let a = self.asked.remove(i).expect("found");
        Answering::Ping(a.peer)
    }

    /// What a state from `from` answers (the request is used up).
    pub fn state(&mut self, now: Instant, from: &NodeId) -> Answering {
        let Some(i) = self
            .asked
            .iter()
            .position(|a| a.seq.is_none() && a.peer == *from && a.until > now)
        else {
            return Answering::Nothing;
        };
        self.asked.remove(i);
        Answering::Sync
    }

    /// Starts absorbing a message that answers `a`.
    pub fn begin(&mut self, a: Answering) {
        self.answering = a;
        self.answered = 0;
    }

    /// [`Checks::lane`], for tests.
    #[cfg(test)]
    pub fn allow(&mut self, now: Instant, id: &NodeId, from: Option<&NodeId>, known: bool) -> bool {
        self.lane(now, id, from, known).is_some()
    }

    /// Whether a claim about `id`, sent by `from` (`known`: a member in
    /// the table), may be checked now, and who pays: `Some(true)` the
    /// budget, `Some(false)` an answer to our request; None: dropped.
    pub fn lane(
        &mut self,
        now: Instant,
        id: &NodeId,
        from: Option<&NodeId>,
        known: bool,
    ) -> Option<bool> {
        let answers = match &self.answering {
            Answering::Nothing => false,
            Answering::Ping(t) => t == id,
            Answering::Sync => true,
        };
        let most = match self.answering {
            Answering::Ping(_) => PER_ACK,
            _ => PER_ANSWER,
        };
        if answers && self.answered < most {
            self.answered += 1;
            return Some(false);
        }
        let (rate, share) = (self.rate, self.share());
        let sender = match from {
            Some(f) if known => {
                if !self.senders.contains_key(f) {
                    self.trim();
                }
                self.senders
                    .entry(f.clone())
                    .or_insert_with(|| Bucket::full(now, share))
            }
            _ => &mut self.strangers,
        };
        // The sender's token first: a sender over its share does not
        // spend the others' budget.
        (sender.take(now, share, share) && self.all.take(now, rate, rate)).then_some(true)
    }

    /// A claim the budget paid for, sent by `from`, failed its check: the
    /// sender's tokens are gone (an honest sender never fails one).
    pub fn failed(&mut self, from: Option<&NodeId>, known: bool) {
        let b = match from {
            Some(f) if known => self.senders.get_mut(f),
            _ => Some(&mut self.strangers),
        };
        if let Some(b) = b {
            b.tokens = 0.0;
        }
    }

    /// Keeps the sender buckets bounded: past a table's worth, the ones
    /// that are full again (nothing to remember) go, then the oldest.
    fn trim(&mut self) {
        const MAX_SENDERS: usize = 4096;
        if self.senders.len() < MAX_SENDERS {
            return;
        }
        let share = self.share();
        self.senders.retain(|_, b| b.tokens < share);
        while self.senders.len() >= MAX_SENDERS {
            let oldest = self
                .senders
                .iter()
                .min_by_key(|(_, b)| b.at)
                .map(|(k, _)| k.clone())
                .expect("not empty");
            self.senders.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::new(s)
    }

    #[test]
    fn a_sender_gets_its_share_and_a_failure_costs_the_rest() {
        let mut c = Checks::new(400);
        let t = Instant::from_millis(1000);
        let a = id("a");
        let n = (0..1000)
            .filter(|_| c.allow(t, &id("x"), Some(&a), true))
            .count();
        assert_eq!(n, 100, "a quarter of the whole, at once");
        // Half a second later: half a share again.
        let t = Instant::from_millis(1500);
        assert!(c.allow(t, &id("x"), Some(&a), true));
        c.failed(Some(&a), true);
        assert!(!c.allow(t, &id("x"), Some(&a), true), "gone on a failure");
        // Another sender still has its own.
        assert!(c.allow(t, &id("x"), Some(&id("b")), true));
    }

    #[test]
    fn the_whole_budget_binds_over_many_senders_and_strangers_share_one() {
        let mut c = Checks::new(400);
        let t = Instant::from_millis(1000);
        let n = (0..100)
            .flat_map(|s| (0..10).map(move |_| s))
            .filter(|s| c.allow(t, &id("x"), Some(&id(&format!("s{s}"))), true))
            .count();
        assert_eq!(n, 400, "the whole budget, over a hundred senders");
        let mut c = Checks::new(400);
        let n = (0..1000)
            .filter(|s| c.allow(t, &id("x"), Some(&id(&format!("new{s}"))), false))
            .count();
        assert_eq!(n, 100, "senders not in the table share one share");
    }

    #[test]
    fn answers_to_our_requests_are_checked_beyond_the_budget_once() {
        let mut c = Checks::new(4);
        let t = Instant::from_millis(1000);
        let (target, helper) = (id("t"), id("h"));
        // Spend it all.
        while c.allow(t, &id("x"), Some(&helper), true) {}
        c.pinged(t, 7, &target);
        assert_eq!(c.ack(t, 8), Answering::Nothing, "not our number");
        let a = c.ack(t, 7);
        c.begin(a);
        assert!(c.allow(t, &target, Some(&helper), true), "about the target");
        assert!(
            !c.allow(t, &id("other"), Some(&helper), true),
            "not about it"
        );
        c.begin(Answering::Nothing);
        assert_eq!(c.ack(t, 7), Answering::Nothing, "used up");
        c.synced(t, &helper);
        assert_eq!(c.state(t, &id("someone")), Answering::Nothing);
        assert_eq!(
            c.state(t + ANSWER_WITHIN, &helper),
            Answering::Nothing,
            "too late"
        );
        c.synced(t, &helper);
        let a = c.state(t, &helper);
        c.begin(a);
        assert!(c.allow(t, &id("any"), Some(&helper), true));
    }
}
