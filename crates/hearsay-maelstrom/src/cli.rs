//! Command-line and environment configuration of `hearsay-node`.

use crate::NodeConfig;
use hearsay_core::dissemination::{Config, Overlay, Preset, StrategyKind as Strategy};
use std::time::Duration;

/// Knobs of hearsay's Maelstrom node. Every flag can also come from the
/// environment (`HEARSAY_PRESET=latency`, `HEARSAY_BATCH_MS=100`, ...), which
/// is handy under the real Maelstrom, where argv is shared by all nodes.
#[derive(Debug, Clone, clap::Args)]
pub struct NodeArgs {
    /// Starting point: `efficient` (few messages) or `latency` (few hops).
    #[arg(long, env = "HEARSAY_PRESET", default_value = "efficient")]
    pub preset: Preset,
    /// How values spread: flood, tree, direct, gossip, pull, push-pull,
    /// plumtree [default: the preset's: tree (efficient), direct (latency)]
    #[arg(long, env = "HEARSAY_STRATEGY")]
    pub strategy: Option<Strategy>,
    /// Overlay for flood, tree and plumtree: topology (the one Maelstrom
    /// sends), spanning-tree (of it), star, treeK (e.g. tree4), total, auto
    #[arg(long, env = "HEARSAY_OVERLAY")]
    pub overlay: Option<Overlay>,
    /// Fixed gap between two data messages on a link, in ms (turns adaptive
    /// batching off unless --batch-budget is also given)
    #[arg(long, env = "HEARSAY_BATCH_MS")]
    pub batch_ms: Option<u64>,
    /// Adaptive batching: leaf-link messages to spend per value (the gap
    /// becomes nodes / (values per second * budget))
    #[arg(long, env = "HEARSAY_BATCH_BUDGET")]
    pub batch_budget: Option<f64>,
    /// Adaptive batching: the longest gap, in ms
    #[arg(long, env = "HEARSAY_BATCH_MAX_MS")]
    pub batch_max_ms: Option<u64>,
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
    /// Relay acks that cannot ride on data through the hub (true/false)
    #[arg(long, env = "HEARSAY_ACK_VIA_HUB")]
    pub ack_via_hub: Option<bool>,
    /// gossip: random peers each new batch is pushed to
    #[arg(long, env = "HEARSAY_FANOUT")]
    pub fanout: Option<usize>,
    /// gossip, pull, push-pull: ms between anti-entropy rounds
    #[arg(long, env = "HEARSAY_AE_INTERVAL_MS")]
    pub ae_interval_ms: Option<u64>,
    /// plumtree: ms to wait for an announced value before grafting
    #[arg(long, env = "HEARSAY_GRAFT_TIMEOUT_MS")]
    pub graft_timeout_ms: Option<u64>,
    /// plumtree: ms between two batches of announcements to lazy neighbours
    #[arg(long, env = "HEARSAY_IHAVE_INTERVAL_MS")]
    pub ihave_interval_ms: Option<u64>,
    /// Seed for the node's random choices (combined with its id)
    #[arg(long, env = "HEARSAY_SEED")]
    pub seed: Option<u64>,
    /// The Maelstrom workload served: broadcast, g-set, g-counter or
    /// pn-counter; reads answer in its schema [default: inferred from the
    /// first client request, broadcast until then]
    #[arg(long, env = "HEARSAY_WORKLOAD")]
    pub workload: Option<crate::node::Workload>,
    /// Keep every value a client gives this node (broadcast, g-set) in
    /// DIR/<node id>.jsonl, written and fsync'd before the acknowledgement,
    /// and spread them again after a restart: a node killed right after
    /// acknowledging loses nothing. Costs an fsync per batch of input; no
    /// extra messages. Under `hearsay test --sim` the store is in memory.
    #[arg(long, env = "HEARSAY_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<std::path::PathBuf>,
}

impl NodeArgs {
    /// The preset with the given knobs applied, validated.
    pub fn config(&self) -> Result<NodeConfig, hearsay_core::dissemination::ConfigError> {
        let mut c = Config::preset(self.preset);
        if let Some(s) = self.strategy {
            c = c.with_strategy(s);
        }
        let ms = Duration::from_millis;
        if let Some(o) = self.overlay {
            c.overlay = o;
        }
        if let Some(v) = self.batch_ms {
            c.batch = ms(v);
            c.batch_budget = None;
        }
        if let Some(v) = self.batch_budget {
            c.batch_budget = Some(v);
        }
        if let Some(v) = self.batch_max_ms {
            c.batch_max = ms(v);
        }
        if let Some(v) = self.ack_delay_ms {
            c.link.ack_delay = ms(v);
        }
        if let Some(v) = self.retransmit_ms {
            c.link.retransmit = ms(v);
            c.link.retransmit_max = c.link.retransmit_max.max(c.link.retransmit);
        }
        if let Some(v) = self.retransmit_max_ms {
            c.link.retransmit_max = ms(v);
        }
        if let Some(v) = self.max_batch {
            c.link.max_batch = v;
        }
        if let Some(v) = self.ack_via_hub {
            c.link.ack_via_hub = v;
        }
        if let Some(v) = self.fanout {
            c.fanout = v;
        }
        if let Some(v) = self.ae_interval_ms {
            c.ae_interval = ms(v);
        }
        if let Some(v) = self.graft_timeout_ms {
            c.graft_timeout = ms(v);
        }
        if let Some(v) = self.ihave_interval_ms {
            c.ihave_interval = ms(v);
        }
        c.validate()?;
        Ok(NodeConfig {
            dissemination: c,
            seed: self.seed.unwrap_or(0),
            // Picked by the shell at start.
            epoch: 0,
            workload: self.workload,
            keep: self.data_dir.is_some(),
        })
    }
}
