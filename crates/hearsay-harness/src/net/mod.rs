//! The simulated network (Maelstrom section 3): one queue per destination,
//! latency draws, partitions checked at dequeue, and a journal of every send
//! and delivery.

mod journal;
mod latency;
mod network;
pub mod record;

pub use journal::{Counts, DEFAULT_LIMIT as JOURNAL_LIMIT, Journal, JournalSize, NetStats};
pub use latency::{Latency, LatencyDist};
pub use network::{Addr, Envelope, NetError, Network};
pub use record::{NetEvent, NetRecord};
