//! Tests only: a lossy, slow network on the receiving side, for soaks on
//! machines whose kernel has no `tc netem` (each datagram dropped with a
//! chance, the rest held for a delay with jitter, so they also arrive out
//! of order). Streams are not touched.

use hearsay_core::time::Instant;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

/// Datagrams held at most (past it they are dropped and counted, as a
/// full queue of a real link would).
const HELD: usize = 16_384;

/// The link's faults.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Faults {
    /// Chance of a datagram being dropped, 0 to 1.
    pub loss: f64,
    /// How long a datagram is held before it is read.
    pub delay: Duration,
    /// Each delay is `delay` +- up to this, uniformly.
    pub jitter: Duration,
}

impl Faults {
    /// No fault at all (the link is not used).
    pub fn is_none(&self) -> bool {
        self.loss <= 0.0 && self.delay.is_zero() && self.jitter.is_zero()
    }
}

pub(crate) struct Link {
    faults: Faults,
    rng: StdRng,
    /// Held datagrams by due time (and arrival order, for ties).
    held: BTreeMap<(Instant, u64), (Vec<u8>, SocketAddr)>,
    arrivals: u64,
    pub dropped: u64,
}

impl Link {
    pub fn new(faults: Faults, seed: u64) -> Self {
        Link {
            faults,
            rng: StdRng::seed_from_u64(seed),
            held: BTreeMap::new(),
            arrivals: 0,
            dropped: 0,
        }
    }

    /// A datagram arrived at `now`: dropped, or held until it is due.
    pub fn arrive(&mut self, now: Instant, bytes: &[u8], from: SocketAddr) {
        if self.rng.random_bool(self.faults.loss.clamp(0.0, 1.0)) || self.held.len() >= HELD {
            self.dropped += 1;
            return;
        }
        let j = self.faults.jitter.as_micros() as i64;
        let shift = if j > 0 {
            self.rng.random_range(-j..=j)
        } else {
            0
        };
        let delay = (self.faults.delay.as_micros() as i64 + shift).max(0) as u64;
        let due = now + Duration::from_micros(delay);
        self.arrivals += 1;
        self.held
            .insert((due, self.arrivals), (bytes.to_vec(), from));
    }

    pub fn next_due(&self) -> Option<Instant> {
        self.held.keys().next().map(|(t, _)| *t)
    }

    /// The datagrams due by `now`, in due order.
    pub fn due(&mut self, now: Instant) -> Vec<(Vec<u8>, SocketAddr)> {
        let later = self.held.split_off(&(now, u64::MAX));
        std::mem::replace(&mut self.held, later)
            .into_values()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_about_the_loss_and_delivers_the_rest_late_and_out_of_order() {
        let faults = Faults {
            loss: 0.05,
            delay: Duration::from_millis(20),
            jitter: Duration::from_millis(10),
        };
        let mut l = Link::new(faults, 1);
        let from: SocketAddr = "127.0.0.1:1".parse().unwrap();
        for i in 0..10_000u32 {
            l.arrive(Instant::from_millis(u64::from(i)), &i.to_be_bytes(), from);
        }
        assert!((400..600).contains(&l.dropped), "{} dropped", l.dropped);
        assert!(
            l.due(Instant::from_millis(9)).is_empty(),
            "none before 10 ms"
        );
        let out: Vec<u32> = l
            .due(Instant::from_millis(20_000))
            .into_iter()
            .map(|(b, _)| u32::from_be_bytes(b.try_into().unwrap()))
            .collect();
        assert_eq!(out.len() as u64 + l.dropped, 10_000);
        assert!(out.windows(2).any(|w| w[0] > w[1]), "some out of order");
        assert!(l.next_due().is_none());
    }
}
