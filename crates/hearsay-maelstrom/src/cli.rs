//! Command-line and environment configuration of `hearsay-node`.

use crate::NodeConfig;
use hearsay_core::broadcast::{Config, Overlay, Preset};
use std::time::Duration;

/// Knobs of hearsay's Maelstrom node. Every flag can also come from the
/// environment (`HEARSAY_PRESET=latency`, `HEARSAY_BATCH_MS=100`, ...), which
/// is handy under the real Maelstrom, where argv is shared by all nodes.
#[derive(Debug, Clone, clap::Args)]
pub struct NodeArgs {
    /// Starting point: `efficient` (few messages) or `latency` (few hops).
    #[arg(long, env = "HEARSAY_PRESET", default_value = "efficient")]
    pub preset: Preset,
    /// Overlay values travel over: topology (the one Maelstrom sends),
    /// spanning-tree (of it), star, treeK (e.g. tree4), total, auto.
    #[arg(long, env = "HEARSAY_OVERLAY")]
    pub overlay: Option<Overlay>,
    /// Minimum gap between two data messages on one link, in ms.
    #[arg(long, env = "HEARSAY_BATCH_MS")]
    pub batch_ms: Option<u64>,
    /// How long an ack may wait to ride on data before it is sent alone, in ms.
    #[arg(long, env = "HEARSAY_ACK_DELAY_MS")]
    pub ack_delay_ms: Option<u64>,
    /// First retransmission timeout, in ms (doubles per retry).
    #[arg(long, env = "HEARSAY_RETRANSMIT_MS")]
    pub retransmit_ms: Option<u64>,
    /// Ceiling of the retransmission timeout, in ms.
    #[arg(long, env = "HEARSAY_RETRANSMIT_MAX_MS")]
    pub retransmit_max_ms: Option<u64>,
    /// Most values in one message.
    #[arg(long, env = "HEARSAY_MAX_BATCH")]
    pub max_batch: Option<usize>,
}

impl NodeArgs {
    /// The preset with the given knobs applied, validated.
    pub fn config(&self) -> Result<NodeConfig, hearsay_core::broadcast::ConfigError> {
        let mut c = Config::preset(self.preset);
        let ms = Duration::from_millis;
        if let Some(o) = self.overlay {
            c.overlay = o;
        }
        if let Some(v) = self.batch_ms {
            c.batch = ms(v);
        }
        if let Some(v) = self.ack_delay_ms {
            c.ack_delay = ms(v);
        }
        if let Some(v) = self.retransmit_ms {
            c.retransmit = ms(v);
            c.retransmit_max = c.retransmit_max.max(c.retransmit);
        }
        if let Some(v) = self.retransmit_max_ms {
            c.retransmit_max = ms(v);
        }
        if let Some(v) = self.max_batch {
            c.max_batch = v;
        }
        c.validate()?;
        Ok(NodeConfig { broadcast: c })
    }
}
