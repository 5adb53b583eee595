//! At most one answer per peer per interval, for requests a peer can
//! repeat at will (a forged stream of them in clear text must not become
//! a stream of larger answers aimed at a member).

use hearsay_core::time::Instant;
use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

/// Remembers when each key was last let through, at most `max` keys (the
/// keys may be forged addresses): past it the keys whose interval is over
/// are forgotten, and if that is not enough, all (at worst a few more
/// answers).
pub(crate) struct Throttle<K> {
    gap: Duration,
    max: usize,
    last: HashMap<K, Instant>,
}

impl<K: Hash + Eq + Clone> Throttle<K> {
    pub fn new(gap: Duration, max: usize) -> Self {
        Throttle {
            gap,
            max,
            last: HashMap::new(),
        }
    }

    /// May `key` be answered now? (If so, it counts as answered.)
    pub fn allow(&mut self, now: Instant, key: &K) -> bool {
        if self.last.get(key).is_some_and(|t| now < *t + self.gap) {
            return false;
        }
        if self.last.len() >= self.max {
            let gap = self.gap;
            self.last.retain(|_, t| now < *t + gap);
            if self.last.len() >= self.max {
                self.last.clear();
            }
        }
        self.last.insert(key.clone(), now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_answer_per_key_per_gap_and_bounded() {
        let mut t = Throttle::new(Duration::from_secs(1), 3);
        let at = Instant::from_millis;
        assert!(t.allow(at(0), &1));
        assert!(!t.allow(at(999), &1), "within the gap");
        assert!(t.allow(at(500), &2), "another key");
        assert!(t.allow(at(1000), &1), "after the gap");
        assert!(t.allow(at(1100), &3));
        // Full: those whose interval is over (2) make room.
        assert!(t.allow(at(1600), &4));
        assert_eq!(t.last.len(), 3);
        assert!(!t.allow(at(1700), &1), "1 is still remembered");
        // Full of live keys: cleared rather than grown.
        assert!(t.allow(at(1800), &5));
        assert!(t.last.len() <= 3);
    }
}
