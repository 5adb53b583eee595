//! Link-layer knobs.

use std::time::Duration;

#[derive(Clone, Debug, PartialEq)]
pub struct LinkConfig {
    /// How long an owed ack may wait to ride on data before it is sent alone.
    pub ack_delay: Duration,
    /// Send acks that cannot ride on data through the hub (the top-ranked
    /// member), which forwards them in bulk, instead of one message per link.
    pub ack_via_hub: bool,
    /// First retransmission timeout; it doubles per retry up to `retransmit_max`.
    pub retransmit: Duration,
    pub retransmit_max: Duration,
    /// While a resend backs off (the peer did not answer the last one), a
    /// bare probe asks the peer for an ack this often: the peer answers at
    /// once, which brings the resend forward, so a value cut off by a
    /// partition crosses within about this long of the heal instead of
    /// after a timeout grown to seconds. One small message per cut link per
    /// interval while the cut lasts.
    pub probe: Duration,
    /// Values per message, so one message stays bounded after a partition.
    pub max_batch: usize,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            ack_delay: Duration::from_millis(1500),
            ack_via_hub: false,
            retransmit: Duration::from_millis(3000),
            retransmit_max: Duration::from_millis(6000),
            probe: Duration::from_millis(1000),
            max_batch: 4096,
        }
    }
}

impl LinkConfig {
    /// Timing for replicated state (a g-set, counters): acks go within
    /// 300 ms and a batch is resent after 700 ms, so a value cut off by a
    /// short partition crosses within a second of the heal even when
    /// nothing else flows afterwards (with the broadcast timing it waited
    /// for a 3 s resend). Every client writes everywhere there, so data
    /// flows both ways on each link and acks still ride on it (5 nodes,
    /// rate 100, partitions, seeds 1-6, messages per op: g-set -4 % to
    /// +6 %, g-counter +4 % to +11 %). Broadcast keeps its timing: there it
    /// costs 16 % (3d).
    pub fn for_state(self) -> LinkConfig {
        LinkConfig {
            ack_delay: Duration::from_millis(300),
            retransmit: Duration::from_millis(700),
            ..self
        }
    }

    /// How long the relay waits to bundle forwarded acks.
    pub fn relay_window(&self) -> Duration {
        self.ack_delay / 4
    }

    /// The longest an ack may take to reach the data sender.
    pub fn ack_path(&self) -> Duration {
        self.ack_delay
            + if self.ack_via_hub {
                self.relay_window()
            } else {
                Duration::ZERO
            }
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.max_batch == 0 {
            return Err("max_batch must be at least 1".into());
        }
        if self.retransmit.is_zero() {
            return Err("retransmit must be positive".into());
        }
        if self.probe.is_zero() {
            return Err("probe must be positive".into());
        }
        if self.retransmit_max < self.retransmit {
            return Err("retransmit_max must be at least retransmit".into());
        }
        if self.retransmit <= self.ack_path() {
            return Err(format!(
                "retransmit ({:?}) must exceed the time an ack may take ({:?}), or every batch is resent before its ack can arrive",
                self.retransmit,
                self.ack_path()
            ));
        }
        Ok(())
    }
}
