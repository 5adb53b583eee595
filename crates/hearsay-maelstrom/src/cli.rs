//! Command-line and environment configuration of `hearsay-node`.

use crate::NodeConfig;
use hearsay_core::dissemination::{Config, ConfigError, Overlay, Preset, StrategyKind as Strategy};
use hearsay_core::link::LinkConfig;
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
    /// How long an ack may wait to ride on data before it is sent alone, in
    /// ms [default: the preset's (1500 efficient, 3000 latency) for
    /// broadcast; 300 for g-set and counters, so that a heal shows within a
    /// second]
    #[arg(long, env = "HEARSAY_ACK_DELAY_MS")]
    pub ack_delay_ms: Option<u64>,
    /// First retransmission timeout, in ms (doubles per retry) [default: the
    /// preset's (3000 efficient, 4500 latency) for broadcast; 700 for g-set
    /// and counters]. Giving this or --ack-delay-ms sets both workloads'.
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
    /// Keep every value a client gives this node (broadcast, g-set), and
    /// its counter's running totals, in DIR/<node id>.jsonl, written and
    /// fsync'd before the acknowledgement, and spread them again after a
    /// restart: a node killed right after acknowledging loses nothing. Costs an fsync per batch of input; no
    /// extra messages. Under `hearsay test --sim` the store is in memory.
    #[arg(long, env = "HEARSAY_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<std::path::PathBuf>,
}

impl NodeArgs {
    /// The preset with the given knobs applied, validated.
    pub fn config(&self) -> Result<NodeConfig, ConfigError> {
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
        // Replicated state gets its own timing unless the user set one.
        let timed = self.ack_delay_ms.is_some() || self.retransmit_ms.is_some();
        let mut state_link = (!timed).then(|| c.link.clone().for_state());
        self.apply_link(&mut c.link);
        if let Some(l) = state_link.as_mut() {
            self.apply_link(l);
            l.validate().map_err(ConfigError::Invalid)?;
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
            state_link,
        })
    }

    /// The link flags, applied to `l`.
    fn apply_link(&self, l: &mut LinkConfig) {
        let ms = Duration::from_millis;
        if let Some(v) = self.ack_delay_ms {
            l.ack_delay = ms(v);
        }
        if let Some(v) = self.retransmit_ms {
            l.retransmit = ms(v);
            l.retransmit_max = l.retransmit_max.max(l.retransmit);
        }
        if let Some(v) = self.retransmit_max_ms {
            l.retransmit_max = ms(v);
        }
        if let Some(v) = self.max_batch {
            l.max_batch = v;
        }
        if let Some(v) = self.ack_via_hub {
            l.ack_via_hub = v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        node: NodeArgs,
    }

    fn config(args: &[&str]) -> Result<NodeConfig, ConfigError> {
        Cli::try_parse_from(std::iter::once("hearsay-node").chain(args.iter().copied()))
            .unwrap()
            .node
            .config()
    }

    #[test]
    fn replicated_state_gets_its_own_link_timing_unless_the_user_sets_one() {
        let c = config(&[]).unwrap();
        let state = c.state_link.expect("state timing by default");
        assert_eq!(state, c.dissemination.link.clone().for_state());
        assert!(state.ack_delay < c.dissemination.link.ack_delay);
        // The other link flags apply to both.
        let c = config(&["--max-batch", "7"]).unwrap();
        assert_eq!(c.state_link.unwrap().max_batch, 7);
        // A timing given is the timing for every workload.
        for flag in ["--ack-delay-ms", "--retransmit-ms"] {
            let c = config(&[flag, "2000", "--retransmit-max-ms", "9000"]);
            assert_eq!(c.unwrap().state_link, None, "{flag}");
        }
    }
}
