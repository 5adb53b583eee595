//! Maelstrom's availability checker: the fraction of client invocations that
//! completed `:ok`, checked against `--availability` when given.

use crate::edn::{Edn, map};
use crate::history::{History, OpType};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Availability {
    /// `--availability total`: every op must succeed.
    Total,
    /// `--availability 0.9`: at least this fraction.
    AtLeast(f64),
}

impl std::str::FromStr for Availability {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "total" {
            return Ok(Availability::Total);
        }
        match s.parse::<f64>() {
            Ok(a) if (0.0..=1.0).contains(&a) => Ok(Availability::AtLeast(a)),
            _ => Err(format!(
                "--availability must be `total` or a number between 0 and 1, not {s:?}"
            )),
        }
    }
}

pub fn ok_fraction(history: &History) -> f32 {
    let invoked = history
        .client_ops()
        .filter(|o| o.kind == OpType::Invoke)
        .count();
    let ok = history
        .client_ops()
        .filter(|o| o.kind == OpType::Ok)
        .count();
    if invoked == 0 {
        1.0
    } else {
        ok as f32 / invoked as f32
    }
}

pub fn check(history: &History, wanted: Option<Availability>) -> Edn {
    let f = ok_fraction(history);
    let valid = match wanted {
        None => true,
        Some(Availability::Total) => f >= 1.0,
        Some(Availability::AtLeast(a)) => f64::from(f) >= a,
    };
    map([
        ("valid?", Edn::Bool(valid)),
        ("ok-fraction", Edn::Float32(f)),
    ])
}
