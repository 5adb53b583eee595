//! Asking members a question and gathering their answers (a cluster-wide
//! keyring change, say, or a query of every member): ask them all at once,
//! ask again the ones that have not answered, with waits that double from
//! the first retry, until every one has answered or the time is up; then
//! the answers, and who stayed silent. Generic over how a member is
//! reached (`A`: an address) and what it answers (`R`).

use crate::id::NodeId;
use crate::time::Instant;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Gather<A, R> {
    targets: BTreeMap<NodeId, A>,
    answers: BTreeMap<NodeId, R>,
    next: Instant,
    wait: Duration,
    deadline: Instant,
}

impl<A: Clone, R> Gather<A, R> {
    /// Asks `targets` from `now`, again after `retry`, `2 x retry`, ...,
    /// until `timeout` has passed.
    pub fn new(
        now: Instant,
        targets: BTreeMap<NodeId, A>,
        retry: Duration,
        timeout: Duration,
    ) -> Self {
        Gather {
            targets,
            answers: BTreeMap::new(),
            next: now,
            wait: retry,
            deadline: now + timeout,
        }
    }

    /// The members to ask now: those that have not answered, when a
    /// retry is due.
    pub fn due(&mut self, now: Instant) -> Vec<A> {
        if now < self.next || self.done(now) {
            return Vec::new();
        }
        self.next = now + self.wait;
        self.wait *= 2;
        self.targets
            .iter()
            .filter(|(id, _)| !self.answers.contains_key(*id))
            .map(|(_, a)| a.clone())
            .collect()
    }

    /// An answer from `from`; one from a member not asked is ignored
    /// (false). A later answer replaces an earlier one.
    pub fn answer(&mut self, from: &NodeId, r: R) -> bool {
        if !self.targets.contains_key(from) {
            return false;
        }
        self.answers.insert(from.clone(), r);
        true
    }

    /// Everyone answered, or the time is up.
    pub fn done(&self, now: Instant) -> bool {
        now >= self.deadline || self.answers.len() == self.targets.len()
    }

    pub fn next_deadline(&self) -> Instant {
        self.next.min(self.deadline)
    }

    /// The answers, and the members that did not answer.
    pub fn finish(self) -> (BTreeMap<NodeId, R>, Vec<NodeId>) {
        let silent = self
            .targets
            .into_keys()
            .filter(|id| !self.answers.contains_key(id))
            .collect();
        (self.answers, silent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_silent_are_asked_again_less_often_until_the_time_is_up() {
        let targets: BTreeMap<NodeId, u16> = [("a", 1), ("b", 2), ("c", 3)]
            .map(|(n, a)| (NodeId::new(n), a))
            .into();
        let mut g: Gather<u16, &str> = Gather::new(
            Instant::ZERO,
            targets,
            Duration::from_millis(500),
            Duration::from_secs(5),
        );
        assert_eq!(g.due(Instant::ZERO), vec![1, 2, 3]);
        assert!(g.answer(&NodeId::new("b"), "ok"));
        assert!(!g.answer(&NodeId::new("zz"), "?"), "not asked");
        let mut asks = Vec::new();
        for ms in (0..6000).step_by(50) {
            let now = Instant::from_millis(ms);
            if !g.due(now).is_empty() {
                asks.push(ms);
            }
        }
        assert_eq!(
            asks,
            vec![500, 1500, 3500],
            "waits double, and stop at the timeout"
        );
        assert!(g.done(Instant::from_millis(5000)));
        let (answers, silent) = g.finish();
        assert_eq!(answers.len(), 1);
        assert_eq!(silent, vec![NodeId::new("a"), NodeId::new("c")]);
    }
}
