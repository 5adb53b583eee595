//! A budget for signature checks. A member that signs verifies the claims
//! that need it (tens of microseconds each), and an insider can write a
//! datagram full of claims that need it: without a bound, a flood of
//! them would fill the member's one loop. So checks are rationed, and
//! rationed so that the flood cannot spend what honest claims need:
//!
//! - claims about a member in its ack to this member's own ping (a probe,
//!   a last-chance ping of a suspect) are checked beyond the budget, two
//!   an ack: the numbers of a signing member's pings are random, so only
//!   the member pinged (or a helper relaying its ack) can answer, and
//!   there are as many as it sends. This is how a suspect's refutation
//!   reaches whoever probes it, whatever the flood;
//! - every other check takes a token from the member's whole budget and
//!   one from its sender's share (a quarter; senders not in the table
//!   share one quarter), so that one sender cannot take all of it.
//!
//! Sender names are not authenticated (any key holder can write any),
//! so a failed check costs its sender nothing more: punishing a name
//! would let a forger silence an honest member. A claim over the budget
//! is dropped unchecked (and counted); the news it carried comes again
//! by gossip, sync or the next probe.

use crate::id::NodeId;
use crate::time::Instant;
use std::collections::BTreeMap;

/// Claims about the member pinged checked beyond the budget, per ack: its
/// refutation needs one.
const PER_ACK: u32 = 2;
/// Senders with a share of their own, at most (past it all are forgotten:
/// at worst they start full again, within the whole budget).
const MAX_SENDERS: usize = 4096;

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

    /// Refills at `rate` a second up to `size`.
    fn refill(&mut self, now: Instant, rate: f64, size: f64) -> f64 {
        let dt = now.saturating_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * rate).min(size);
        self.at = self.at.max(now);
        self.tokens
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
    /// The member whose ack to our ping is being absorbed, and how many of
    /// its claims were checked beyond the budget.
    answering: Option<NodeId>,
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
            answering: None,
            answered: 0,
        }
    }

    /// Starts absorbing a message: an ack to our own ping of `pinged`, or
    /// (None) anything else.
    pub fn begin(&mut self, pinged: Option<NodeId>) {
        self.answering = pinged;
        self.answered = 0;
    }

    /// May a claim about `id`, sent by `from` (`known`: a member in the
    /// table), be checked now?
    pub fn allow(&mut self, now: Instant, id: &NodeId, from: Option<&NodeId>, known: bool) -> bool {
        if self.answering.as_ref() == Some(id) && self.answered < PER_ACK {
            self.answered += 1;
            return true;
        }
        let (rate, share) = (self.rate, self.rate / 4.0);
        if self.all.refill(now, rate, rate) < 1.0 {
            return false;
        }
        let sender = match from {
            Some(f) if known => {
                if self.senders.len() >= MAX_SENDERS && !self.senders.contains_key(f) {
                    self.senders.clear();
                }
                self.senders
                    .entry(f.clone())
                    .or_insert_with(|| Bucket::full(now, share))
            }
            _ => &mut self.strangers,
        };
        if sender.refill(now, share, share) < 1.0 {
            return false;
        }
        sender.tokens -= 1.0;
        self.all.tokens -= 1.0;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::new(s)
    }

    #[test]
    fn a_sender_gets_its_share_and_refills_at_its_rate() {
        let mut c = Checks::new(400);
        let t = Instant::from_millis(1000);
        let a = id("a");
        let n = (0..1000)
            .filter(|_| c.allow(t, &id("x"), Some(&a), true))
            .count();
        assert_eq!(n, 100, "a quarter of the whole, at once");
        // Half a second later: half a share again.
        let t = Instant::from_millis(1500);
        let n = (0..1000)
            .filter(|_| c.allow(t, &id("x"), Some(&a), true))
            .count();
        assert_eq!(n, 50);
        assert!(
            c.allow(t, &id("x"), Some(&id("b")), true),
            "another sender has its own"
        );
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
        // Spent: a sender with a full share gets nothing, and loses nothing.
        assert!(!c.allow(t, &id("x"), Some(&id("fresh")), true));
        let later = Instant::from_millis(1010);
        assert!(c.allow(later, &id("x"), Some(&id("fresh")), true));
        let mut c = Checks::new(400);
        let n = (0..1000)
            .filter(|s| c.allow(t, &id("x"), Some(&id(&format!("new{s}"))), false))
            .count();
        assert_eq!(n, 100, "senders not in the table share one share");
    }

    #[test]
    fn an_ack_to_our_ping_is_checked_beyond_the_budget_twice_and_only_about_its_member() {
        let mut c = Checks::new(4);
        let t = Instant::from_millis(1000);
        let (target, helper) = (id("t"), id("h"));
        while c.allow(t, &id("x"), Some(&helper), true) {}
        c.begin(Some(target.clone()));
        assert!(
            !c.allow(t, &id("other"), Some(&helper), true),
            "not about it"
        );
        assert!(c.allow(t, &target, Some(&helper), true));
        assert!(c.allow(t, &target, Some(&helper), true));
        assert!(!c.allow(t, &target, Some(&helper), true), "two an ack");
        c.begin(None);
        assert!(!c.allow(t, &target, Some(&helper), true));
    }
}
