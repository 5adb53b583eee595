//! hearsay's own node inside the harness's simulator: the adapter the
//! harness does not know about (it runs any [`SimNode`]).

use hearsay_core::rng::derive_seed;
use hearsay_core::time::Instant;
use hearsay_harness::run::sim::SimNode;
use hearsay_maelstrom::{MaelstromNode, NodeConfig};

/// The same JSON lines as the process, minus the pipes. Virtual
/// nanoseconds become the node's microseconds.
pub struct OwnNode(MaelstromNode, Option<Disk>);

/// What a node that keeps values (`--data-dir`) has stored: in memory
/// under the simulator, shared by the node's lives.
pub type Disk = std::rc::Rc<std::cell::RefCell<Vec<serde_json::Value>>>;

impl OwnNode {
    /// Node `index` of a run seeded `run_seed`, in its `life`-th start (1
    /// for the first; a kill nemesis starts it again). Its seed is derived
    /// from the run's (and from a node seed given on the command line), so
    /// the run seed alone replays every random choice of every node; a new
    /// life gets a new epoch, as a restarted process gets from the clock,
    /// so peers tell its new values from its old ones.
    pub fn life(
        mut cfg: NodeConfig,
        run_seed: u64,
        index: usize,
        life: u64,
        disk: Option<Disk>,
    ) -> Self {
        let seed = node_seed(run_seed, index, cfg.seed);
        cfg.seed = if life <= 1 {
            seed
        } else {
            derive_seed(seed, &format!("life/{life}"))
        };
        cfg.epoch = life.max(1);
        let disk = disk.filter(|_| cfg.keep);
        OwnNode(MaelstromNode::new(cfg), disk)
    }

    /// The shell's part of keeping values: restore after init, store what
    /// the node kept before its output goes out.
    fn sync(&mut self, now: Instant) {
        let Some(disk) = &self.1 else {
            return;
        };
        if self.0.take_restore_request() {
            let values = disk.borrow().clone();
            self.0.restore(now, values);
        }
        disk.borrow_mut().extend(self.0.take_kept());
    }
}

/// The seed of node `index` in a run seeded `run_seed` (`user` is the
/// node's own `--seed`, 0 when not given).
fn node_seed(run_seed: u64, index: usize, user: u64) -> u64 {
    derive_seed(run_seed, &format!("node/{index}/{user}"))
}

fn micros(now: u64) -> Instant {
    Instant::from_micros(now / 1_000)
}

impl SimNode for OwnNode {
    fn on_line(&mut self, now: u64, line: &str, out: &mut Vec<String>) {
        if let Err(e) = self.0.handle_line(micros(now), line) {
            tracing::warn!("skipping input line ({e}): {line}");
        }
        self.sync(micros(now));
        out.extend(self.0.drain_output());
    }

    fn on_tick(&mut self, now: u64, out: &mut Vec<String>) {
        self.0.tick(micros(now));
        self.sync(micros(now));
        out.extend(self.0.drain_output());
    }

    fn next_deadline(&self) -> Option<u64> {
        self.0.next_deadline().map(|t| t.as_micros() * 1_000)
    }

    fn overlay(&self) -> Option<Vec<String>> {
        Some(self.0.neighbours())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_seeds_follow_the_run_seed() {
        assert_eq!(node_seed(7, 3, 0), node_seed(7, 3, 0));
        assert_ne!(node_seed(7, 3, 0), node_seed(8, 3, 0), "another run");
        assert_ne!(node_seed(7, 3, 0), node_seed(7, 4, 0), "another node");
        assert_ne!(node_seed(7, 3, 0), node_seed(7, 3, 1), "another --seed");
    }
}
