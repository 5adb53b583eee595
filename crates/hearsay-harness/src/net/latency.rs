//! Latency draws for node-to-node messages, in whole milliseconds.

use hearsay_core::rng::{Rng, RngExt};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LatencyDist {
    #[default]
    Constant,
    /// Integer uniform on [0, 2·mean).
    Uniform,
    /// Exponential with the given mean, truncated to whole ms.
    Exponential,
}

impl FromStr for LatencyDist {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim_start_matches(':') {
            "constant" => Ok(LatencyDist::Constant),
            "uniform" => Ok(LatencyDist::Uniform),
            "exponential" => Ok(LatencyDist::Exponential),
            _ => Err(format!(
                "unknown latency distribution {s:?}: must be constant, uniform, or exponential"
            )),
        }
    }
}

impl fmt::Display for LatencyDist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LatencyDist::Constant => "constant",
            LatencyDist::Uniform => "uniform",
            LatencyDist::Exponential => "exponential",
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Latency {
    pub mean_ms: u64,
    pub dist: LatencyDist,
}

impl Latency {
    /// Rejects what Maelstrom cannot run (uniform or exponential with mean 0
    /// hangs or divides by zero there).
    pub fn validate(&self) -> Result<(), String> {
        if self.mean_ms == 0 && self.dist != LatencyDist::Constant {
            return Err(format!(
                "--latency-dist {} needs --latency > 0 (a mean of 0 is only meaningful for constant latency)",
                self.dist
            ));
        }
        Ok(())
    }

    /// One draw, in ms.
    pub fn sample(&self, rng: &mut Rng) -> u64 {
        match self.dist {
            LatencyDist::Constant => self.mean_ms,
            LatencyDist::Uniform if self.mean_ms == 0 => 0,
            LatencyDist::Uniform => rng.random_range(0..2 * self.mean_ms),
            LatencyDist::Exponential => {
                let u: f64 = rng.random();
                (-(self.mean_ms as f64) * (1.0 - u).ln()) as u64
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearsay_core::rng::child;

    #[test]
    fn draws_have_the_right_shape() {
        let mut rng = child(1, "latency");
        let c = Latency {
            mean_ms: 100,
            dist: LatencyDist::Constant,
        };
        assert_eq!(c.sample(&mut rng), 100);
        let u = Latency {
            mean_ms: 100,
            dist: LatencyDist::Uniform,
        };
        let draws: Vec<u64> = (0..20_000).map(|_| u.sample(&mut rng)).collect();
        assert!(draws.iter().all(|&d| d < 200));
        let mean = draws.iter().sum::<u64>() as f64 / draws.len() as f64;
        assert!((mean - 99.5).abs() < 2.0, "uniform mean {mean}");
        let e = Latency {
            mean_ms: 100,
            dist: LatencyDist::Exponential,
        };
        let mean = (0..20_000).map(|_| e.sample(&mut rng)).sum::<u64>() as f64 / 20_000.0;
        // Truncation to whole ms lowers the mean by about half a millisecond.
        assert!((mean - 99.5).abs() < 4.0, "exponential mean {mean}");
    }

    #[test]
    fn zero_mean_is_only_valid_for_constant() {
        assert!(
            Latency {
                mean_ms: 0,
                dist: LatencyDist::Constant
            }
            .validate()
            .is_ok()
        );
        assert!(
            Latency {
                mean_ms: 0,
                dist: LatencyDist::Uniform
            }
            .validate()
            .is_err()
        );
        assert!(
            Latency {
                mean_ms: 0,
                dist: LatencyDist::Exponential
            }
            .validate()
            .is_err()
        );
    }
}
