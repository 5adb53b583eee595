//! Joining through seeds known only by their address: a shell asks each
//! seed who it is (the agent's `who`), and joins each that answers by
//! name, the first at once. Asking backs off per seed (from `FIRST_WAIT`,
//! doubling to `MAX_WAIT`), so a seed that is down costs a message every
//! half minute, not two a second for as long as the member runs. The first
//! answer makes the member joined; the seeds not heard from yet are still
//! asked for [`LINGER`], and each that answers is joined too (memberlist's
//! Join syncs with every host it reaches): a whole cluster restarted at
//! once from its data dirs would otherwise split for good into the groups
//! whose first answers came from each other. Generic over the address, so
//! it knows no sockets.

use crate::time::Instant;
use std::collections::BTreeMap;
use std::time::Duration;

/// The first wait before a seed is asked again.
pub const FIRST_WAIT: Duration = Duration::from_millis(500);
/// The longest wait between two questions to one seed.
pub const MAX_WAIT: Duration = Duration::from_secs(30);
/// After joining, the seeds not heard from are asked this long more.
pub const LINGER: Duration = Duration::from_secs(60);
/// A member still alone this long after a seed answered asks again: the
/// join (one message each way) was lost.
pub const CONFIRM: Duration = Duration::from_secs(2);

/// Why `a` has not let this member in: no answer, or what it sends is
/// refused here (and why).
pub fn silence<A: std::fmt::Display>(a: &A, refused: Option<&str>) -> String {
    match refused {
        Some(why) => format!("{a} (it answers, but what it sends is refused here: {why})"),
        None => format!("{a} (no answer)"),
    }
}

#[derive(Debug, Clone)]
pub struct Seeds<A> {
    /// Per seed not heard from: when to ask next, and the wait after that.
    waiting: BTreeMap<A, (Instant, Duration)>,
    /// When the first answer came (asking the others ends [`LINGER`] later).
    joined_at: Option<Instant>,
    /// Why what came from a seed was refused here, if anything did.
    refused: BTreeMap<A, &'static str>,
    /// Rounds of asking so far.
    rounds: u32,
    /// Every seed given, to ask again if the join is lost.
    all: Vec<A>,
}

impl<A: Ord + Clone> Seeds<A> {
    /// Seeds to ask from `now` on (none: nothing to join, done already).
    pub fn new(now: Instant, seeds: impl IntoIterator<Item = A>) -> Self {
        let all: Vec<A> = seeds.into_iter().collect();
        Seeds {
            waiting: all.iter().map(|a| (a.clone(), (now, FIRST_WAIT))).collect(),
            joined_at: None,
            refused: BTreeMap::new(),
            rounds: 0,
            all,
        }
    }

    /// Whether this member is `alone` (knows no live member) at `now`:
    /// still alone [`CONFIRM`] after a seed answered, its join (or the
    /// answer) was lost, and every seed is asked again from the start; a
    /// member whose every peer is gone asks them again too (with the same
    /// backoff, so a cluster that is gone costs a message a seed every
    /// half minute).
    pub fn alone(&mut self, now: Instant, alone: bool) {
        if !alone || self.all.is_empty() || self.joined_at.is_none_or(|t| now < t + CONFIRM) {
            return;
        }
        self.joined_at = None;
        self.waiting = self
            .all
            .iter()
            .map(|a| {
                let wait = self.waiting.get(a).map_or(FIRST_WAIT, |(_, w)| *w);
                (a.clone(), (now, wait))
            })
            .collect();
    }

    /// The seeds to ask now; each is asked again after its wait, which
    /// doubles. [`LINGER`] after joining, the silent ones are dropped.
    pub fn due(&mut self, now: Instant) -> Vec<A> {
        if !self.asking(now) {
            self.waiting.clear();
            return Vec::new();
        }
        let mut out = Vec::new();
        for (a, (at, wait)) in &mut self.waiting {
            if *at <= now {
                out.push(a.clone());
                *at = now + *wait;
                *wait = (*wait * 2).min(MAX_WAIT);
            }
        }
        self.rounds += u32::from(!out.is_empty());
        out
    }

    /// Something from `from` was refused here (`why`: wrong key, another
    /// cluster...): if `from` is a seed, that explains a silence.
    pub fn refused(&mut self, from: &A, why: &'static str) {
        if !self.done() && self.waiting.contains_key(from) {
            self.refused.insert(from.clone(), why);
        }
    }

    /// Why this member has not joined yet, once it has asked more than
    /// once (None: joined, or nothing to join, or still the first ask).
    pub fn problem(&self) -> Option<String>
    where
        A: std::fmt::Display,
    {
        if self.done() || self.rounds < 2 {
            return None;
        }
        let each: Vec<String> = self
            .waiting
            .keys()
            .map(|a| silence(a, self.refused.get(a).copied()))
            .collect();
        Some(format!(
            "not joined yet after {} tries: {}",
            self.rounds,
            each.join(", ")
        ))
    }

    /// Seeds left to ask, and not joined yet or joined less than
    /// [`LINGER`] ago.
    fn asking(&self, now: Instant) -> bool {
        !self.waiting.is_empty() && self.joined_at.is_none_or(|t| now < t + LINGER)
    }

    /// A datagram came from `from`: if it is a seed answering for the
    /// first time while asking, join it now (true).
    pub fn answered(&mut self, now: Instant, from: &A) -> bool {
        if !self.asking(now) || self.waiting.remove(from).is_none() {
            return false;
        }
        self.joined_at.get_or_insert(now);
        true
    }

    /// A seed not heard from yet (and still asked).
    pub fn is_seed(&self, a: &A) -> bool {
        self.waiting.contains_key(a)
    }

    /// Joined (a seed answered), or nothing to join.
    pub fn done(&self) -> bool {
        self.joined_at.is_some() || self.waiting.is_empty()
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        let next = self.waiting.values().map(|(at, _)| *at).min()?;
        // Past the linger nothing is asked: wake once to stop.
        Some(self.joined_at.map_or(next, |t| next.min(t + LINGER)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_join_that_does_not_happen_says_why() {
        let t = Instant::ZERO;
        let mut s = Seeds::new(t, ["a:1", "b:2"]);
        s.due(t);
        assert_eq!(s.problem(), None, "the first ask is not a problem yet");
        s.refused(&"b:2", "decrypt");
        s.refused(&"c:3", "decrypt");
        s.due(t + FIRST_WAIT);
        let p = s.problem().expect("a problem after two rounds");
        assert!(p.contains("a:1 (no answer)"), "{p}");
        assert!(
            p.contains("b:2 (it answers, but what it sends is refused here: decrypt)"),
            "{p}"
        );
        assert!(!p.contains("c:3"), "not a seed: {p}");
        assert!(s.answered(t, &"a:1"));
        assert_eq!(s.problem(), None, "joined");
    }

    #[test]
    fn a_member_still_alone_after_a_seed_answered_asks_again() {
        let t = Instant::ZERO;
        let mut s = Seeds::new(t, ["a", "b"]);
        assert_eq!(s.due(t), ["a", "b"]);
        assert!(s.answered(t, &"a"));
        assert!(s.done());
        s.alone(t + Duration::from_secs(1), true);
        assert!(s.done(), "not yet: the seed's state may be on its way");
        s.alone(t + CONFIRM, false);
        assert!(s.done(), "not alone: joined");
        s.alone(t + CONFIRM, true);
        assert!(!s.done(), "the join was lost: asking again");
        assert_eq!(s.due(t + CONFIRM), ["a", "b"]);
        assert!(s.answered(t + CONFIRM, &"b"));
        assert!(s.done());
    }

    #[test]
    fn a_silent_seed_is_asked_less_and_less_and_an_answer_ends_it() {
        let mut s = Seeds::new(Instant::ZERO, ["a", "b"]);
        let mut asked = 0;
        let mut t = Instant::ZERO;
        // Ten minutes of ticks every 100 ms, nobody answering.
        for _ in 0..6000 {
            asked += s.due(t).len();
            t += Duration::from_millis(100);
        }
        // 0.5, 1, 2, 4, 8, 16, then every 30 s: about 25 per seed.
        assert!((40..=60).contains(&asked), "{asked} questions");
        assert!(s.next_deadline().is_some());
        assert!(!s.answered(t, &"c"), "not a seed");
        assert!(s.answered(t, &"b"));
        assert!(!s.answered(t, &"b"), "each seed is joined once");
        assert!(s.done(), "joined at the first answer");
        // The seed not heard from is still asked, for a minute.
        let later = t + MAX_WAIT + Duration::from_secs(1);
        assert_eq!(s.due(later), ["a"]);
        assert!(s.answered(later, &"a"), "a later answer is joined too");
        assert!(s.due(later + MAX_WAIT).is_empty() && s.next_deadline().is_none());
        // A seed that never answers is asked no more after the minute.
        let mut s = Seeds::new(Instant::ZERO, ["a", "b"]);
        s.due(Instant::ZERO);
        assert!(s.answered(Instant::ZERO, &"a"));
        let mut asked_after = 0;
        let mut t = Instant::ZERO;
        for _ in 0..6000 {
            asked_after += s.due(t).len();
            t += Duration::from_millis(100);
        }
        assert!((4..=8).contains(&asked_after), "{asked_after}");
        assert!(s.next_deadline().is_none());
        assert!(!s.answered(t, &"b"), "too late: joined through a already");
        let none: Seeds<&str> = Seeds::new(Instant::ZERO, []);
        assert!(none.done(), "no seeds: nothing to join");
    }
}
