//! What the node counts, for logs and metrics: every layer adds to one set
//! of counters.

/// Counters, for logs and metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub broadcasts: u64,
    pub learned: u64,
    pub duplicates: u64,
    pub data_sent: u64,
    pub acks_sent: u64,
    pub acks_relayed: u64,
    pub retransmits: u64,
    /// Bare probes sent while a resend backed off (a cut link).
    pub probes: u64,
    pub values_sent: u64,
    pub grafts: u64,
    /// Plumtree announcement messages sent.
    pub announcements: u64,
    /// Input dropped: another strategy's message, an id outside the view,
    /// a message to ourselves.
    pub ignored: u64,
    /// Messages from a member's earlier life, dropped.
    pub stale: u64,
    /// Messages addressed to this node's earlier life (answered with a hello).
    pub misaddressed: u64,
    /// Members seen to come back in a new life (their sessions restarted).
    pub restarts: u64,
    /// Empty numbered batches sent to announce this node's life.
    pub greetings: u64,
    /// Membership events the application did not take in time, dropped.
    pub events_dropped: u64,
    /// Learned values the application did not take in time, dropped.
    pub deliveries_dropped: u64,
    /// Values forgotten after the retention.
    pub forgotten: u64,
    /// Values not queued for a neighbour whose link had stalled full (it
    /// gets what is still held when it acknowledges again).
    pub stalled_dropped: u64,
    /// Such neighbours that acknowledged again and were sent what is held.
    pub stalled_recovered: u64,
}
