//! Deadlines: every machine says when it needs the next tick; the node
//! answers the shell with the earliest.

use crate::time::Instant;

/// The earliest of some optional deadlines.
pub fn earliest(deadlines: impl IntoIterator<Item = Option<Instant>>) -> Option<Instant> {
    deadlines.into_iter().flatten().min()
}

/// A one-shot timer a machine arms and checks on each tick.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timer(Option<Instant>);

impl Timer {
    /// Arms the timer for `at`, unless it is already armed earlier.
    pub fn arm_by(&mut self, at: Instant) {
        if self.0.is_none_or(|t| t > at) {
            self.0 = Some(at);
        }
    }

    pub fn set(&mut self, at: Instant) {
        self.0 = Some(at);
    }

    pub fn clear(&mut self) {
        self.0 = None;
    }

    pub fn at(&self) -> Option<Instant> {
        self.0
    }

    /// True once, when the timer is due: it is then disarmed.
    pub fn fire(&mut self, now: Instant) -> bool {
        if self.0.is_some_and(|t| t <= now) {
            self.0 = None;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_fire_once_and_arm_by_keeps_the_earlier() {
        let mut t = Timer::default();
        assert!(!t.fire(Instant::from_millis(5)));
        t.arm_by(Instant::from_millis(10));
        t.arm_by(Instant::from_millis(20));
        assert_eq!(t.at(), Some(Instant::from_millis(10)));
        assert!(!t.fire(Instant::from_millis(9)));
        assert!(t.fire(Instant::from_millis(10)));
        assert!(!t.fire(Instant::from_millis(11)));
        assert_eq!(
            earliest([
                None,
                Some(Instant::from_millis(3)),
                Some(Instant::from_millis(2))
            ]),
            Some(Instant::from_millis(2))
        );
    }
}
