//! Suspicion timers. Plain SWIM (§4.2) waits a fixed timeout before it
//! declares a suspect dead. Lifeguard's Local Health Aware Suspicion
//! (Dadgar et al. 2018, §IV-B) starts long and shrinks as independent
//! confirmations (suspicions by other members) arrive:
//! `timeout = max(min, max - (max - min) * log(C + 1) / log(K + 1))`.

use super::member::Incarnation;
use crate::id::NodeId;
use crate::time::Instant;
use std::collections::BTreeSet;
use std::time::Duration;

#[derive(Debug)]
pub(crate) struct Suspicion {
    pub inc: Incarnation,
    start: Instant,
    min: Duration,
    max: Duration,
    k: u32,
    /// Who suspected it (the first accuser included), bounded by k + 1.
    accusers: BTreeSet<NodeId>,
    pub deadline: Instant,
    /// No conviction before this (Lifeguard's grace after a stall): a
    /// confirmation read from the queue a stall left cannot pull the
    /// deadline back before the refutations queued behind it are read.
    not_before: Instant,
    /// The last-chance probe went out (Lifeguard's buddy system, made
    /// active: the suspect is asked once more before it is convicted).
    pub checked: bool,
    /// The last-chance ping's number: the ack to it is an answer to our
    /// own request (its claims about the suspect are checked beyond the
    /// signature check budget).
    pub ping: Option<u32>,
}

/// Lifeguard's timeout after `c` independent confirmations out of `k`.
pub fn timeout(c: u32, k: u32, min: Duration, max: Duration) -> Duration {
    if k == 0 || max <= min {
        return min;
    }
    let frac = (f64::from(c) + 1.0).ln() / (f64::from(k) + 1.0).ln();
    let raw = max.as_secs_f64() - frac * (max.as_secs_f64() - min.as_secs_f64());
    Duration::from_secs_f64(raw.max(min.as_secs_f64()))
}

impl Suspicion {
    pub fn new(
        inc: Incarnation,
        accuser: Option<NodeId>,
        now: Instant,
        min: Duration,
        max: Duration,
        k: u32,
    ) -> Self {
        let mut s = Suspicion {
            inc,
            start: now,
            min,
            max,
            k,
            accusers: BTreeSet::new(),
            deadline: now + max,
            not_before: now,
            checked: false,
            ping: None,
        };
        if let Some(a) = accuser {
            s.accusers.insert(a);
        }
        s
    }

    /// Confirmations beyond the first accuser.
    pub fn confirmations(&self) -> u32 {
        (self.accusers.len() as u32).saturating_sub(1)
    }

    /// Another member suspects it too: if independent (a new accuser), the
    /// deadline moves in. Returns whether it counted.
    pub fn confirm(&mut self, from: &NodeId) -> bool {
        if self.confirmations() >= self.k || self.accusers.contains(from) {
            return false;
        }
        self.accusers.insert(from.clone());
        let t = timeout(self.confirmations(), self.k, self.min, self.max);
        self.deadline = (self.start + t).max(self.not_before);
        true
    }

    /// Holds the conviction until at least `t`, confirmations or not.
    pub fn hold_until(&mut self, t: Instant) {
        self.not_before = self.not_before.max(t);
        self.deadline = self.deadline.max(t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::Epoch;

    #[test]
    fn lifeguard_4b_the_timeout_shrinks_with_independent_confirmations() {
        let (min, max) = (Duration::from_secs(2), Duration::from_secs(8));
        assert_eq!(timeout(0, 3, min, max), max);
        assert_eq!(timeout(3, 3, min, max), min);
        assert!(timeout(1, 3, min, max) < max && timeout(1, 3, min, max) > timeout(2, 3, min, max));
        let t0 = Instant::from_millis(1000);
        let fresh = || {
            Suspicion::new(
                Incarnation::new(Epoch(1), 0),
                Some(NodeId::new("a")),
                t0,
                min,
                max,
                3,
            )
        };
        let mut s = fresh();
        assert_eq!(s.deadline, t0 + max);
        assert!(!s.confirm(&NodeId::new("a")), "the same accuser again");
        assert!(s.confirm(&NodeId::new("b")));
        assert_eq!(s.deadline, t0 + timeout(1, 3, min, max));
        s.confirm(&NodeId::new("c"));
        s.confirm(&NodeId::new("d"));
        assert_eq!(s.deadline, t0 + min);
        assert!(!s.confirm(&NodeId::new("e")), "k confirmations is enough");
        // A stall's grace holds, even against confirmations read after it.
        let mut s = fresh();
        let later = t0 + Duration::from_secs(10);
        s.hold_until(later);
        for c in ["b", "c", "d"] {
            assert!(s.confirm(&NodeId::new(c)));
        }
        assert_eq!(s.deadline, later, "not pulled back before the grace");
    }

    #[test]
    fn swim_4_2_without_lifeguard_the_timeout_is_fixed() {
        let min = Duration::from_secs(2);
        assert_eq!(timeout(0, 3, min, min), min);
        assert_eq!(timeout(5, 0, min, Duration::from_secs(9)), min);
    }
}
