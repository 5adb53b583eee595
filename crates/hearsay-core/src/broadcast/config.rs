//! Broadcast configuration: named presets plus single knobs, validated once.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Which graph values travel over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overlay {
    /// Forward to the neighbours the operator's topology lists (flooding).
    Topology,
    /// A breadth-first spanning tree of the operator's topology, rooted at
    /// the first member.
    SpanningTree,
    /// The first member is a hub linked to everyone else.
    Star,
    /// A complete `fanout`-ary tree over the membership order.
    Tree { fanout: usize },
    /// Everyone is linked to everyone (one hop, N-1 messages per value).
    Total,
    /// A star for small clusters, a tree of fanout ceil(sqrt(N)) beyond
    /// [`Overlay::AUTO_STAR_MAX`] members, so no node's fan-out grows with N.
    Auto,
}

impl Overlay {
    pub const AUTO_STAR_MAX: usize = 32;
}

impl fmt::Display for Overlay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Overlay::Topology => f.write_str("topology"),
            Overlay::SpanningTree => f.write_str("spanning-tree"),
            Overlay::Star => f.write_str("star"),
            Overlay::Tree { fanout } => write!(f, "tree{fanout}"),
            Overlay::Total => f.write_str("total"),
            Overlay::Auto => f.write_str("auto"),
        }
    }
}

impl FromStr for Overlay {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        Ok(match s {
            "topology" | "given" => Overlay::Topology,
            "spanning-tree" => Overlay::SpanningTree,
            "star" | "hub" => Overlay::Star,
            "total" | "all" => Overlay::Total,
            "auto" => Overlay::Auto,
            _ => {
                let fanout = s
                    .strip_prefix("tree")
                    .and_then(|k| k.parse::<usize>().ok())
                    .filter(|k| *k >= 1)
                    .ok_or_else(|| ConfigError::UnknownOverlay(s.to_string()))?;
                Overlay::Tree { fanout }
            }
        })
    }
}

/// Named starting points; single knobs override them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    /// Few messages: a hub (or shallow tree) and batched links.
    Efficient,
    /// Few hops: every node sends straight to every other node.
    Latency,
}

impl FromStr for Preset {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        match s {
            "efficient" => Ok(Preset::Efficient),
            "latency" => Ok(Preset::Latency),
            _ => Err(ConfigError::UnknownPreset(s.to_string())),
        }
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Preset::Efficient => "efficient",
            Preset::Latency => "latency",
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub overlay: Overlay,
    /// Minimum gap between two data messages on one link. The first value
    /// after a quiet spell goes out at once; a busy link carries one batch
    /// per interval.
    pub batch: Duration,
    /// How long an owed ack may wait for data to ride on before it is sent
    /// alone.
    pub ack_delay: Duration,
    /// First retransmission timeout; it doubles per retry up to `retransmit_max`.
    pub retransmit: Duration,
    pub retransmit_max: Duration,
    /// Values per message, so one message stays a bounded size after a long
    /// partition.
    pub max_batch: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config::preset(Preset::Efficient)
    }
}

impl Config {
    pub fn preset(p: Preset) -> Config {
        match p {
            Preset::Efficient => Config {
                overlay: Overlay::Auto,
                batch: Duration::from_millis(250),
                ack_delay: Duration::from_millis(1500),
                retransmit: Duration::from_millis(3000),
                retransmit_max: Duration::from_millis(6000),
                max_batch: 4096,
            },
            Preset::Latency => Config {
                overlay: Overlay::Total,
                batch: Duration::ZERO,
                ack_delay: Duration::from_millis(1500),
                retransmit: Duration::from_millis(3000),
                retransmit_max: Duration::from_millis(6000),
                max_batch: 4096,
            },
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_batch == 0 {
            return Err(ConfigError::Invalid("max_batch must be at least 1".into()));
        }
        if self.retransmit.is_zero() {
            return Err(ConfigError::Invalid("retransmit must be positive".into()));
        }
        if self.retransmit_max < self.retransmit {
            return Err(ConfigError::Invalid(
                "retransmit_max must be at least retransmit".into(),
            ));
        }
        if self.retransmit <= self.ack_delay {
            return Err(ConfigError::Invalid(format!(
                "retransmit ({:?}) must exceed ack_delay ({:?}), or every batch is resent before its ack can arrive",
                self.retransmit, self.ack_delay
            )));
        }
        if let Overlay::Tree { fanout: 0 } = self.overlay {
            return Err(ConfigError::Invalid(
                "tree fanout must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// A bad knob. Display and Error are written by hand so that core depends
/// only on serde, rand and tracing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    UnknownOverlay(String),
    UnknownPreset(String),
    Invalid(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::UnknownOverlay(s) => write!(
                f,
                "unknown overlay {s:?} (expected topology, spanning-tree, star, treeK, total or auto)"
            ),
            ConfigError::UnknownPreset(s) => {
                write!(f, "unknown preset {s:?} (expected efficient or latency)")
            }
            ConfigError::Invalid(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_names_round_trip() {
        for s in [
            "topology",
            "spanning-tree",
            "star",
            "tree4",
            "total",
            "auto",
        ] {
            assert_eq!(s.parse::<Overlay>().unwrap().to_string(), s);
        }
        assert!("tree0".parse::<Overlay>().is_err());
        assert!("ring".parse::<Overlay>().is_err());
    }

    #[test]
    fn presets_validate_and_bad_knobs_do_not() {
        Config::preset(Preset::Efficient).validate().unwrap();
        Config::preset(Preset::Latency).validate().unwrap();
        let mut c = Config::default();
        c.retransmit = c.ack_delay;
        assert!(c.validate().is_err());
        c = Config::default();
        c.max_batch = 0;
        assert!(c.validate().is_err());
    }
}
