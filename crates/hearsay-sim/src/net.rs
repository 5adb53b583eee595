//! The network model: exponentially distributed one-way delays (so
//! messages reorder), a longer mean across zones, loss, duplication, and a
//! partition that cuts one group of members off from the rest.

use hearsay_core::rng::{Rng, RngExt};
use std::time::Duration;

#[derive(Debug)]
pub struct Net {
    mean: Duration,
    zone_factor: f64,
    loss: f64,
    duplicate: f64,
    /// Which side of the partition each member is on, while one is on.
    side: Option<Vec<bool>>,
    rng: Rng,
}

impl Net {
    pub fn new(mean: Duration, zone_factor: f64, loss: f64, duplicate: f64, rng: Rng) -> Net {
        Net {
            mean,
            zone_factor,
            loss,
            duplicate,
            side: None,
            rng,
        }
    }

    pub fn partition(&mut self, side: Vec<bool>) {
        self.side = Some(side);
    }

    pub fn heal(&mut self) {
        self.side = None;
    }

    /// Are `a` and `b` on different sides of a partition now?
    pub fn cut(&self, a: usize, b: usize) -> bool {
        self.side.as_ref().is_some_and(|s| s[a] != s[b])
    }

    /// The delay of a message that cannot be lost or duplicated (a stream),
    /// unless a partition cuts it.
    pub fn delay(&mut self, a: usize, b: usize, cross_zone: bool) -> Option<std::time::Duration> {
        if self.cut(a, b) {
            return None;
        }
        Some(self.one_delay(cross_zone))
    }

    fn one_delay(&mut self, cross_zone: bool) -> Duration {
        let mean = if cross_zone {
            self.mean.mul_f64(self.zone_factor)
        } else {
            self.mean
        };
        let u: f64 = self.rng.random();
        // Inverse CDF of the exponential distribution; capped so one
        // unlucky draw cannot park a message for hours.
        mean.mul_f64((-(1.0 - u).ln()).min(50.0))
    }

    /// The delays of the copies of one message from `a` to `b` (none if it
    /// is lost, two if it is duplicated).
    pub fn delays(&mut self, a: usize, b: usize, cross_zone: bool) -> Vec<Duration> {
        if self.cut(a, b) || (self.loss > 0.0 && self.rng.random_bool(self.loss)) {
            return Vec::new();
        }
        let copies = if self.duplicate > 0.0 && self.rng.random_bool(self.duplicate) {
            2
        } else {
            1
        };
        (0..copies).map(|_| self.one_delay(cross_zone)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearsay_core::rng::child;

    #[test]
    fn delays_are_exponential_with_the_given_mean_and_loss_drops() {
        let mut n = Net::new(Duration::from_millis(10), 5.0, 0.1, 0.0, child(1, "n"));
        let mut total = Duration::ZERO;
        let mut sent = 0;
        let mut got = 0;
        for _ in 0..20_000 {
            sent += 1;
            for d in n.delays(0, 1, false) {
                got += 1;
                total += d;
            }
        }
        let mean = total.as_secs_f64() / f64::from(got);
        assert!((mean - 0.010).abs() < 0.0005, "mean {mean}");
        let lost = 1.0 - f64::from(got) / f64::from(sent);
        assert!((lost - 0.1).abs() < 0.01, "loss {lost}");
        n.partition(vec![true, false, true]);
        assert!(n.delays(0, 1, false).is_empty());
        assert!(n.cut(1, 2) && !n.cut(0, 2));
        n.heal();
        assert!(!n.cut(0, 1));
    }
}
