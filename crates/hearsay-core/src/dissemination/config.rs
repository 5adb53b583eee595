//! Dissemination configuration: a strategy, named presets and single knobs,
//! validated once.

use super::Retention;
use crate::link::LinkConfig;
pub use crate::overlay::Overlay;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// How values spread (see the table in the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    Flood,
    Tree,
    Direct,
    Gossip,
    Pull,
    PushPull,
    Plumtree,
}

impl Strategy {
    pub const ALL: [Strategy; 7] = [
        Strategy::Flood,
        Strategy::Tree,
        Strategy::Direct,
        Strategy::Gossip,
        Strategy::Pull,
        Strategy::PushPull,
        Strategy::Plumtree,
    ];

    /// The overlay a strategy uses unless told otherwise.
    pub fn default_overlay(self) -> Overlay {
        match self {
            Strategy::Flood => Overlay::Topology,
            Strategy::Direct => Overlay::Total,
            _ => Overlay::Auto,
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Strategy::Flood => "flood",
            Strategy::Tree => "tree",
            Strategy::Direct => "direct",
            Strategy::Gossip => "gossip",
            Strategy::Pull => "pull",
            Strategy::PushPull => "push-pull",
            Strategy::Plumtree => "plumtree",
        })
    }
}

impl FromStr for Strategy {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        Strategy::ALL
            .into_iter()
            .find(|x| x.to_string() == s)
            .ok_or_else(|| ConfigError::UnknownStrategy(s.to_string()))
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
            "mesh" => Overlay::Mesh,
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
    /// Few messages: a hub (or shallow tree) with batched links.
    Efficient,
    /// Few hops: each origin sends straight to every node; acks that cannot
    /// ride on data are collected through a relay.
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

#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub strategy: Strategy,
    pub overlay: Overlay,
    /// Minimum gap between two data messages on a link to a single node
    /// (plumtree's lazy lane uses four times the gap). The first value after
    /// a quiet spell goes out at once; a busy link carries one batch per
    /// gap. With `batch_budget`, this is the floor of an adaptive gap.
    pub batch: Duration,
    /// Adaptive batching: aim for about this many leaf-link messages per
    /// value. The gap becomes N / (observed values per second * budget),
    /// between `batch` and `batch_max`, so message counts stay flat as the
    /// cluster grows; a tree link reaching r nodes uses gap / sqrt(r), the
    /// split that minimises path latency for a fixed message budget.
    pub batch_budget: Option<f64>,
    pub batch_max: Duration,
    /// Gossip: random peers each new batch is pushed to.
    pub fanout: usize,
    /// Anti-entropy: time between digest rounds.
    pub ae_interval: Duration,
    /// Anti-entropy: a digest lists every origin life (a member's life)
    /// held up to this many; past it, it lists those that changed lately
    /// and sums the rest into buckets, so that its size stays about flat
    /// as the cluster grows (see `dissemination::lives`).
    pub ae_digest_full_upto: usize,
    /// Plumtree: wait for an announced value before grafting.
    pub graft_timeout: Duration,
    /// Plumtree: announcements to lazy neighbours are batched this long.
    pub ihave_interval: Duration,
    /// Values are kept this long and this many at most (None: for good,
    /// as Maelstrom's reads need). Loss-freedom holds within the window: a
    /// member that comes (back) is given what the window holds, and
    /// repairs reach back as far.
    pub retention: Option<Retention>,
    /// Reliable links under the strategy.
    pub link: LinkConfig,
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
                strategy: Strategy::Tree,
                overlay: Overlay::Auto,
                batch: Duration::ZERO,
                batch_budget: Some(2.75),
                batch_max: Duration::from_millis(1000),
                fanout: 3,
                ae_interval: Duration::from_millis(500),
                ae_digest_full_upto: 64,
                graft_timeout: Duration::from_millis(1000),
                ihave_interval: Duration::from_millis(2000),
                retention: None,
                link: LinkConfig {
                    ack_delay: Duration::from_millis(1500),
                    ack_via_hub: false,
                    retransmit: Duration::from_millis(3000),
                    retransmit_max: Duration::from_millis(6000),
                    probe: Duration::from_millis(1000),
                    max_batch: 4096,
                },
            },
            Preset::Latency => Config {
                strategy: Strategy::Direct,
                overlay: Overlay::Total,
                batch: Duration::ZERO,
                batch_budget: None,
                batch_max: Duration::from_millis(1000),
                fanout: 4,
                ae_interval: Duration::from_millis(100),
                ae_digest_full_upto: 64,
                graft_timeout: Duration::from_millis(400),
                ihave_interval: Duration::from_millis(2000),
                retention: None,
                link: LinkConfig {
                    ack_delay: Duration::from_millis(3000),
                    ack_via_hub: true,
                    retransmit: Duration::from_millis(4500),
                    retransmit_max: Duration::from_millis(6000),
                    probe: Duration::from_millis(1000),
                    max_batch: 4096,
                },
            },
        }
    }

    /// A preset's timing with another strategy (and that strategy's overlay).
    pub fn with_strategy(mut self, s: Strategy) -> Config {
        self.strategy = s;
        self.overlay = s.default_overlay();
        self
    }

    /// For a changing cluster, where no operator topology ever comes:
    /// overlays built on one use the mesh (flood) or the rank tree
    /// (spanning-tree) instead.
    pub fn for_cluster(mut self) -> Config {
        self.overlay = match self.overlay {
            Overlay::Topology => Overlay::Mesh,
            Overlay::SpanningTree => Overlay::Auto,
            o => o,
        };
        self
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |s: String| Err(ConfigError::Invalid(s));
        self.link.validate().map_err(ConfigError::Invalid)?;
        if let Some(b) = self.batch_budget
            && !(b.is_finite() && b > 0.0)
        {
            return bad(format!("batch_budget must be a positive number, not {b}"));
        }
        if self.batch_max < self.batch {
            return bad("batch_max must be at least batch".into());
        }
        if let Overlay::Tree { fanout: 0 } = self.overlay {
            return bad("tree fanout must be at least 1".into());
        }
        if self.strategy == Strategy::Gossip && self.fanout == 0 {
            return bad("gossip needs a fanout of at least 1".into());
        }
        if matches!(
            self.strategy,
            Strategy::Gossip | Strategy::Pull | Strategy::PushPull
        ) && self.ae_interval.is_zero()
        {
            return bad("ae_interval must be positive".into());
        }
        if let Some(r) = self.retention
            && (r.ttl.is_zero() || r.max_values == 0 || r.max_bytes == 0)
        {
            return bad("a retention needs a positive ttl, max_values and max_bytes".into());
        }
        if self.strategy == Strategy::Plumtree
            && (self.graft_timeout.is_zero() || self.ihave_interval.is_zero())
        {
            return bad("graft_timeout and ihave_interval must be positive".into());
        }
        Ok(())
    }
}

/// A bad knob. Display and Error are written by hand so that core depends
/// only on serde, rand and tracing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    UnknownStrategy(String),
    UnknownOverlay(String),
    UnknownPreset(String),
    Invalid(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::UnknownStrategy(s) => write!(
                f,
                "unknown strategy {s:?} (expected flood, tree, direct, gossip, pull, push-pull or plumtree)"
            ),
            ConfigError::UnknownOverlay(s) => write!(
                f,
                "unknown overlay {s:?} (expected topology, spanning-tree, star, treeK, total, mesh or auto)"
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
    fn names_round_trip() {
        for s in [
            "topology",
            "spanning-tree",
            "star",
            "tree4",
            "total",
            "mesh",
            "auto",
        ] {
            assert_eq!(s.parse::<Overlay>().unwrap().to_string(), s);
        }
        for s in Strategy::ALL {
            assert_eq!(s.to_string().parse::<Strategy>().unwrap(), s);
        }
        assert!("tree0".parse::<Overlay>().is_err());
        assert!("ring".parse::<Overlay>().is_err());
        assert!("rumor".parse::<Strategy>().is_err());
    }

    #[test]
    fn presets_validate_and_bad_knobs_do_not() {
        for p in [Preset::Efficient, Preset::Latency] {
            for s in Strategy::ALL {
                Config::preset(p).with_strategy(s).validate().unwrap();
            }
        }
        let mut c = Config::default();
        c.link.retransmit = c.link.ack_delay;
        assert!(c.validate().is_err());
        c = Config::preset(Preset::Latency);
        c.link.retransmit = c.link.ack_delay + c.link.relay_window() / 2;
        assert!(
            c.validate().is_err(),
            "the relay's bundling delay counts toward the ack path"
        );
        c = Config::default();
        c.link.max_batch = 0;
        assert!(c.validate().is_err());
        c = Config::default();
        c.batch_budget = Some(f64::NAN);
        assert!(c.validate().is_err());
    }
}
