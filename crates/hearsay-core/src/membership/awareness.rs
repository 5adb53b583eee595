//! Lifeguard's Local Health Multiplier (Dadgar et al. 2018, §IV-A, Local
//! Health Aware Probe): a member that misses acks and nacks it should have
//! had, or must refute suspicions about itself, is probably the slow one;
//! it stretches its own probe interval and timeout (x score + 1) instead of
//! accusing healthy members.

use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Awareness {
    score: u32,
    max: u32,
}

impl Awareness {
    pub fn new(max: u32) -> Self {
        Awareness { score: 0, max }
    }

    pub fn apply(&mut self, delta: i32) {
        let s = i64::from(self.score) + i64::from(delta);
        self.score = s.clamp(0, i64::from(self.max) - 1) as u32;
    }

    pub fn score(&self) -> u32 {
        self.score
    }

    pub fn scale(&self, d: Duration) -> Duration {
        d * (self.score + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifeguard_4a_the_multiplier_rises_on_misses_and_falls_on_success() {
        let mut a = Awareness::new(8);
        let t = Duration::from_millis(500);
        assert_eq!(a.scale(t), t);
        a.apply(3);
        assert_eq!(a.scale(t), t * 4);
        a.apply(100);
        assert_eq!(a.score(), 7, "capped at max - 1");
        a.apply(-1);
        assert_eq!(a.score(), 6);
        a.apply(-100);
        assert_eq!(a.score(), 0);
    }
}
