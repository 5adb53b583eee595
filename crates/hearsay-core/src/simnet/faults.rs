//! The fault model every simulation draws from: one-way delay
//! distributions (so messages reorder), a longer mean across zones, loss,
//! duplication, a partition into two sides and single cut links. All draws
//! come from one seeded RNG, in the order messages are sent.

use crate::rng::{Rng, RngExt};
use std::collections::BTreeSet;
use std::time::Duration;

/// How long one message takes from sender to receiver.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Latency {
    Constant(Duration),
    /// Uniform on [lo, hi).
    Uniform {
        lo: Duration,
        hi: Duration,
    },
    /// Exponential with this mean, capped at 50 means so one unlucky draw
    /// cannot park a message for hours.
    Exponential(Duration),
}

impl Latency {
    /// One draw, with the mean scaled by `scale` (a cross-zone factor).
    pub fn sample(&self, scale: f64, rng: &mut Rng) -> Duration {
        let scaled = |d: Duration| if scale == 1.0 { d } else { d.mul_f64(scale) };
        match *self {
            Latency::Constant(d) => scaled(d),
            Latency::Uniform { lo, hi } => {
                let u: f64 = rng.random();
                scaled(lo + hi.saturating_sub(lo).mul_f64(u))
            }
            Latency::Exponential(mean) => {
                let u: f64 = rng.random();
                // Inverse CDF of the exponential distribution.
                scaled(mean).mul_f64((-(1.0 - u).ln()).min(50.0))
            }
        }
    }
}

#[derive(Debug)]
pub struct Faults {
    pub latency: Latency,
    /// Mean delay across zones, as a multiple of the mean within one.
    pub zone_factor: f64,
    pub loss: f64,
    pub duplicate: f64,
    /// Which side of the partition each node is on, while one is on.
    side: Option<Vec<bool>>,
    /// Directed links cut one by one.
    cut: BTreeSet<(usize, usize)>,
    rng: Rng,
}

impl Faults {
    /// A network with the given delays and no other fault.
    pub fn new(latency: Latency, rng: Rng) -> Faults {
        Faults {
            latency,
            zone_factor: 1.0,
            loss: 0.0,
            duplicate: 0.0,
            side: None,
            cut: BTreeSet::new(),
            rng,
        }
    }

    /// Splits the nodes in two: `side[i]` says which side node i is on.
    pub fn partition(&mut self, side: Vec<bool>) {
        self.side = Some(side);
    }

    /// Cuts `group` off from the other `n - group.len()` nodes, both ways.
    pub fn isolate(&mut self, group: &[usize], n: usize) {
        for &a in group {
            for b in (0..n).filter(|b| !group.contains(b)) {
                self.cut_link(a, b);
                self.cut_link(b, a);
            }
        }
    }

    /// Messages from `a` to `b` are lost until the next heal.
    pub fn cut_link(&mut self, a: usize, b: usize) {
        self.cut.insert((a, b));
    }

    /// Ends the partition and mends every cut link.
    pub fn heal(&mut self) {
        self.side = None;
        self.cut.clear();
    }

    /// Is the way from `a` to `b` cut now?
    pub fn cut(&self, a: usize, b: usize) -> bool {
        self.side.as_ref().is_some_and(|s| s[a] != s[b]) || self.cut.contains(&(a, b))
    }

    /// The delay of a message that cannot be lost or duplicated (a
    /// stream), unless the way is cut.
    pub fn delay(&mut self, a: usize, b: usize, cross_zone: bool) -> Option<Duration> {
        if self.cut(a, b) {
            return None;
        }
        Some(self.one_delay(cross_zone))
    }

    fn one_delay(&mut self, cross_zone: bool) -> Duration {
        let scale = if cross_zone { self.zone_factor } else { 1.0 };
        self.latency.sample(scale, &mut self.rng)
    }

    /// The delays of the copies of one datagram from `a` to `b`: none if
    /// it is lost or the way is cut, two if it is duplicated.
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
    use crate::rng::child;

    #[test]
    fn delays_have_the_given_shape_and_loss_drops() {
        let mean = |f: &mut Faults, cross: bool| {
            let (mut total, mut got, mut sent) = (Duration::ZERO, 0u32, 0u32);
            for _ in 0..20_000 {
                sent += 1;
                for d in f.delays(0, 1, cross) {
                    got += 1;
                    total += d;
                }
            }
            (
                total.as_secs_f64() / f64::from(got),
                1.0 - f64::from(got) / f64::from(sent),
            )
        };
        let mut f = Faults::new(
            Latency::Exponential(Duration::from_millis(10)),
            child(1, "n"),
        );
        f.loss = 0.1;
        f.zone_factor = 5.0;
        let (m, lost) = mean(&mut f, false);
        assert!((m - 0.010).abs() < 0.0005, "mean {m}");
        assert!((lost - 0.1).abs() < 0.01, "loss {lost}");
        let (m, _) = mean(&mut f, true);
        assert!((m - 0.050).abs() < 0.0025, "cross-zone mean {m}");
        let lo = Duration::from_millis(100);
        let hi = Duration::from_millis(250);
        let mut u = Faults::new(Latency::Uniform { lo, hi }, child(2, "u"));
        u.duplicate = 0.5;
        let draws: Vec<Duration> = (0..20_000).flat_map(|_| u.delays(0, 1, false)).collect();
        assert!(draws.iter().all(|d| *d >= lo && *d < hi));
        let copies = draws.len() as f64 / 20_000.0;
        assert!((copies - 1.5).abs() < 0.02, "copies per message {copies}");
    }

    #[test]
    fn partitions_and_cut_links_drop_until_healed() {
        let mut f = Faults::new(Latency::Constant(Duration::from_millis(1)), child(1, "n"));
        f.partition(vec![true, false, true]);
        assert!(f.delays(0, 1, false).is_empty() && f.delay(1, 0, false).is_none());
        assert!(f.cut(1, 2) && !f.cut(0, 2));
        f.heal();
        f.cut_link(0, 2);
        assert!(f.cut(0, 2) && !f.cut(2, 0), "a cut link is one way");
        f.isolate(&[1], 3);
        assert!(f.cut(1, 0) && f.cut(2, 1));
        f.heal();
        assert_eq!(f.delays(0, 2, false), [Duration::from_millis(1)]);
    }
}
