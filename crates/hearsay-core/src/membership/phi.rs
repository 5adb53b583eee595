//! The phi accrual failure detector (Hayashibara et al. 2004, as Akka and
//! Cassandra use it): instead of a fixed timeout, each monitor keeps the
//! history of heartbeat inter-arrival times of a member and turns the time
//! since the last heartbeat into a suspicion level phi = -log10(P(a
//! heartbeat this late)). A member is suspected once phi crosses a
//! threshold, so the detector adapts to each member's observed jitter.

use crate::time::Instant;
use std::collections::VecDeque;
use std::time::Duration;

/// The smallest standard deviation assumed (Akka's default), so a very
/// regular history does not make phi explode on the first late heartbeat.
const MIN_STD_DEV: f64 = 0.1;

#[derive(Debug, Clone)]
pub(crate) struct Arrivals {
    last: Option<Instant>,
    intervals: VecDeque<f64>,
    window: usize,
    sum: f64,
    sum_sq: f64,
    /// A pause the detector tolerates on top of the mean (Akka's
    /// acceptable-heartbeat-pause), in seconds.
    pause: f64,
}

impl Arrivals {
    /// Starts with one assumed interval, so phi is defined before history.
    pub fn new(window: usize, expected: Duration, pause: Duration) -> Self {
        let mut a = Arrivals {
            last: None,
            intervals: VecDeque::new(),
            window: window.max(2),
            sum: 0.0,
            sum_sq: 0.0,
            pause: pause.as_secs_f64(),
        };
        let e = expected.as_secs_f64();
        a.push(e);
        a.push(e);
        a
    }

    fn push(&mut self, x: f64) {
        if self.intervals.len() >= self.window
            && let Some(old) = self.intervals.pop_front()
        {
            self.sum -= old;
            self.sum_sq -= old * old;
        }
        self.intervals.push_back(x);
        self.sum += x;
        self.sum_sq += x * x;
    }

    pub fn heartbeat(&mut self, now: Instant) {
        if let Some(last) = self.last {
            self.push(now.saturating_since(last).as_secs_f64());
        }
        self.last = Some(now);
    }

    /// The suspicion level at `now` (0 before the first heartbeat).
    pub fn phi(&self, now: Instant) -> f64 {
        let Some(last) = self.last else {
            return 0.0;
        };
        let n = self.intervals.len() as f64;
        let mean = self.sum / n + self.pause;
        let var = (self.sum_sq / n - (self.sum / n).powi(2)).max(0.0);
        let std = var.sqrt().max(MIN_STD_DEV);
        let t = now.saturating_since(last).as_secs_f64();
        // Akka's logistic approximation of the normal CDF's tail.
        let y = (t - mean) / std;
        let e = (-y * (1.5976 + 0.070566 * y * y)).exp();
        if t > mean {
            -(e / (1.0 + e)).log10()
        } else {
            -(1.0 - 1.0 / (1.0 + e)).log10()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phi_grows_with_silence_and_adapts_to_jitter() {
        let hb = Duration::from_millis(500);
        let mut regular = Arrivals::new(100, hb, Duration::ZERO);
        let mut t = Instant::ZERO;
        for _ in 0..50 {
            regular.heartbeat(t);
            t += hb;
        }
        let last = t - hb;
        let at = |ms: u64| last + Duration::from_millis(ms);
        assert!(regular.phi(at(400)) < 1.0);
        assert!(regular.phi(at(1000)) > 1.0);
        assert!(regular.phi(at(2000)) > 8.0, "{}", regular.phi(at(2000)));
        assert!(regular.phi(at(2000)) > regular.phi(at(1500)));
        // A jittery member is given more slack at the same silence.
        let mut jittery = Arrivals::new(100, hb, Duration::ZERO);
        let mut t = Instant::ZERO;
        for i in 0..50u64 {
            jittery.heartbeat(t);
            t += Duration::from_millis(200 + (i * 7919 % 600));
        }
        let mut quiet = jittery.clone();
        quiet.last = Some(last);
        assert!(quiet.phi(at(1000)) < regular.phi(at(1000)));
        assert_eq!(Arrivals::new(10, hb, hb).phi(Instant::ZERO), 0.0);
    }
}
