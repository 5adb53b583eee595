//! The agent's `/metrics` in Prometheus text format, from the counters
//! the loop publishes.

use crate::codec::Refused;
use hearsay_core::membership::SwimStats;
use hearsay_core::node::Stats as NodeStats;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Messages and bytes one way, by message type.
#[derive(Debug, Default, Clone)]
pub struct Traffic {
    /// Datagrams (received: only those that opened; the others count in
    /// [`Snapshot::refused`]).
    pub datagrams: u64,
    /// Their bytes on the wire, header and seal included.
    pub datagram_bytes: u64,
    /// TCP streams, one frame each (what did not fit a datagram).
    pub streams: u64,
    /// Their frames' bytes (the 4-byte length before each not included).
    pub stream_bytes: u64,
    /// type -> (messages, approximate encoded bytes)
    pub by_type: BTreeMap<&'static str, (u64, u64)>,
}

impl Traffic {
    /// Counts one message of type `kind` and its approximate encoded size
    /// (0 where the size is not measured).
    pub fn count(&mut self, kind: &'static str, bytes: usize) {
        let e = self.by_type.entry(kind).or_default();
        e.0 += 1;
        e.1 += bytes as u64;
    }
}

/// Everything `/metrics` shows.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    /// Members known, this one included, by state name (alive, suspect,
    /// dead, left).
    pub members_by_state: [(&'static str, usize); 4],
    /// Broadcast payloads delivered here (own ones included; user events
    /// are counted apart).
    pub delivered: u64,
    /// Delivered payloads held now for [`crate::Agent::messages`].
    pub kept_payloads: usize,
    /// Delivered payloads let go from that store past its count or byte
    /// bound.
    pub kept_dropped: u64,
    /// Map answers that waited longer than [`crate::kv::HOLD`] for writes
    /// to be kept on disk.
    pub kv_held_dropped: u64,
    /// User events delivered here.
    pub user_events: u64,
    /// Of them, those handed over with an earlier one of their origin
    /// still missing after the wait (2 s).
    pub user_events_skipped: u64,
    /// Event handlers run, counted as each starts.
    pub handler_runs: u64,
    /// Handlers that exited other than 0, or could not start.
    pub handler_failures: u64,
    /// Handlers killed at their timeout.
    pub handler_timeouts: u64,
    /// Events (and queries) dropped at a full handler queue.
    pub handler_dropped: u64,
    /// User events whose handlers did not run: a later one of the same
    /// name came within the coalesce period.
    pub handler_coalesced: u64,
    /// Outbound streams dropped: too many or too many bytes in flight.
    pub streams_dropped: u64,
    /// Payloads an earlier life sent, kept in the data dir and sent again
    /// by this one.
    pub resent: u64,
    /// Agents refused for a name a live member holds.
    pub name_conflicts: u64,
    /// Datagrams and stream frames dropped as bad input, by reason, in
    /// the order of [`Refused::LABELS`].
    pub refused: [u64; Refused::LABELS.len()],
    /// Keys in the replicated map, as this agent sees it.
    pub kv_keys: usize,
    /// Gossip keys installed (0: clear text).
    pub keys: usize,
    /// What this agent sent.
    pub sent: Traffic,
    /// What this agent received.
    pub received: Traffic,
    /// The membership machine's counters (probes, suspicions, syncs...).
    pub swim: SwimStats,
    /// The broadcast machine's counters (broadcasts, duplicates,
    /// retransmits...).
    pub cast: NodeStats,
    /// Lifeguard's local health score (0 is healthy; higher stretches
    /// timeouts).
    pub health: u32,
    /// Calls waiting for the agent's loop: filled in by
    /// [`crate::Agent::metrics`], 0 elsewhere.
    pub command_queue: usize,
}

struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }
    fn value(&mut self, name: &str, labels: &str, v: impl std::fmt::Display) {
        if labels.is_empty() {
            let _ = writeln!(self.0, "{name} {v}");
        } else {
            let _ = writeln!(self.0, "{name}{{{labels}}} {v}");
        }
    }
    fn one(&mut self, name: &str, kind: &str, help: &str, v: impl std::fmt::Display) {
        self.family(name, kind, help);
        self.value(name, "", v);
    }
}

/// The snapshot in Prometheus text format: what GET /metrics serves.
pub fn render(s: &Snapshot) -> String {
    let mut o = Out(String::new());
    o.family(
        "hearsay_members",
        "gauge",
        "Members known, this one included, by state.",
    );
    for (st, n) in s.members_by_state {
        o.value("hearsay_members", &format!("state=\"{st}\""), n);
    }
    o.one(
        "hearsay_delivered_total",
        "counter",
        "Payloads delivered here.",
        s.delivered,
    );
    o.one(
        "hearsay_resent_total",
        "counter",
        "Payloads an earlier life of this agent sent (kept in its data dir), sent again after the restart.",
        s.resent,
    );
    o.family(
        "hearsay_datagrams_refused_total",
        "counter",
        "Datagrams dropped as bad input, by reason (decrypt: no installed key opens it).",
    );
    for (label, n) in Refused::LABELS.iter().zip(s.refused) {
        o.value(
            "hearsay_datagrams_refused_total",
            &format!("reason=\"{label}\""),
            n,
        );
    }
    o.family(
        "hearsay_datagrams_total",
        "counter",
        "Datagrams, by direction.",
    );
    o.value("hearsay_datagrams_total", "dir=\"sent\"", s.sent.datagrams);
    o.value(
        "hearsay_datagrams_total",
        "dir=\"received\"",
        s.received.datagrams,
    );
    o.family(
        "hearsay_datagram_bytes_total",
        "counter",
        "Datagram bytes on the wire (headers and seal included), by direction.",
    );
    o.value(
        "hearsay_datagram_bytes_total",
        "dir=\"sent\"",
        s.sent.datagram_bytes,
    );
    o.value(
        "hearsay_datagram_bytes_total",
        "dir=\"received\"",
        s.received.datagram_bytes,
    );
    o.family(
        "hearsay_streams_total",
        "counter",
        "TCP streams (one frame each), by direction.",
    );
    o.value("hearsay_streams_total", "dir=\"sent\"", s.sent.streams);
    o.value(
        "hearsay_streams_total",
        "dir=\"received\"",
        s.received.streams,
    );
    o.one(
        "hearsay_streams_dropped_total",
        "counter",
        "Outbound streams dropped, too many or too many bytes in flight (state syncs, sent again later).",
        s.streams_dropped,
    );
    o.one(
        "hearsay_name_conflicts_total",
        "counter",
        "Agents refused because a live member holds their name at another address.",
        s.name_conflicts,
    );
    o.family(
        "hearsay_stream_bytes_total",
        "counter",
        "Frame bytes sent and received on streams, by direction.",
    );
    o.value(
        "hearsay_stream_bytes_total",
        "dir=\"sent\"",
        s.sent.stream_bytes,
    );
    o.value(
        "hearsay_stream_bytes_total",
        "dir=\"received\"",
        s.received.stream_bytes,
    );
    o.family(
        "hearsay_messages_total",
        "counter",
        "Protocol messages, by direction and type.",
    );
    for (dir, t) in [("sent", &s.sent), ("received", &s.received)] {
        for (kind, (n, _)) in &t.by_type {
            o.value(
                "hearsay_messages_total",
                &format!("dir=\"{dir}\",type=\"{kind}\""),
                n,
            );
        }
    }
    o.family(
        "hearsay_message_bytes_total",
        "counter",
        "Approximate encoded bytes of protocol messages, by direction and type.",
    );
    for (dir, t) in [("sent", &s.sent), ("received", &s.received)] {
        for (kind, (_, b)) in &t.by_type {
            o.value(
                "hearsay_message_bytes_total",
                &format!("dir=\"{dir}\",type=\"{kind}\""),
                b,
            );
        }
    }
    let w = &s.swim;
    o.family(
        "hearsay_probe_rtt_seconds",
        "summary",
        "Round trips of direct probes answered.",
    );
    o.value(
        "hearsay_probe_rtt_seconds_sum",
        "",
        w.rtt_sum_us as f64 / 1e6,
    );
    o.value("hearsay_probe_rtt_seconds_count", "", w.rtt_count);
    o.one(
        "hearsay_probe_rtt_last_seconds",
        "gauge",
        "The last direct probe's round trip.",
        w.rtt_last_us as f64 / 1e6,
    );
    for (name, help, v) in [
        ("probes", "Probes started.", w.probes),
        (
            "probe_failures",
            "Probes that got no ack.",
            w.probe_failures,
        ),
        (
            "indirect_probes",
            "Indirect probes asked for.",
            w.indirect_probes,
        ),
        (
            "suspicions",
            "Members this agent started suspecting.",
            w.suspicions,
        ),
        (
            "refutations",
            "Suspicions of this agent it refuted.",
            w.refutations,
        ),
        (
            "deaths_declared",
            "Members this agent declared dead.",
            w.deaths_declared,
        ),
        (
            "claims_forged",
            "Claims about a member that signs (its data dir keeps its key) not signed by it, or accusing it past what it signed: dropped.",
            w.forged,
        ),
        (
            "claims_checked",
            "Signature checks of claims about members that sign.",
            w.checks,
        ),
        (
            "claims_unchecked",
            "Claims that needed a signature check past the check budget (not answers to this agent's own probes and syncs): dropped.",
            w.unchecked,
        ),
        ("state_syncs", "Membership state syncs.", w.syncs),
        (
            "stalls",
            "Times the loop ran much later than it asked (paused).",
            w.stalls,
        ),
    ] {
        o.one(&format!("hearsay_{name}_total"), "counter", help, v);
    }
    o.one(
        "hearsay_local_health",
        "gauge",
        "Lifeguard's local health score (0 is healthy; higher stretches timeouts).",
        s.health,
    );
    let c = &s.cast;
    for (name, help, v) in [
        ("broadcasts", "Payloads broadcast from here.", c.broadcasts),
        ("duplicates", "Payloads received again.", c.duplicates),
        (
            "retransmits",
            "Link batches sent again (unacknowledged in time).",
            c.retransmits,
        ),
        (
            "announcements",
            "Plumtree announcements sent (payload ids, to lazy neighbours).",
            c.announcements,
        ),
        (
            "grafts",
            "Plumtree grafts sent (an announced payload had not come).",
            c.grafts,
        ),
        (
            "payloads_forgotten",
            "Payloads dropped from the store after the retention window.",
            c.forgotten,
        ),
        (
            "user_events",
            "User events delivered here (once each, in order per origin).",
            s.user_events,
        ),
        (
            "user_events_out_of_order",
            "User events delivered with an earlier one of their origin still missing after 2 s.",
            s.user_events_skipped,
        ),
        ("handler_runs", "Event handlers run.", s.handler_runs),
        (
            "handler_failures",
            "Event handlers that exited other than 0 or could not start.",
            s.handler_failures,
        ),
        (
            "handler_timeouts",
            "Event handlers killed at their timeout.",
            s.handler_timeouts,
        ),
        (
            "handler_coalesced",
            "User events whose handlers did not run: a later one of the same name came within the coalesce period.",
            s.handler_coalesced,
        ),
        (
            "stalled_links_recovered",
            "Neighbours whose link had stalled full, acknowledging again (each was sent every payload held).",
            c.stalled_recovered,
        ),
    ] {
        o.one(&format!("hearsay_{name}_total"), "counter", help, v);
    }
    o.family("hearsay_queue_depth", "gauge", "Items waiting, by queue.");
    o.value("hearsay_queue_depth", "queue=\"commands\"", s.command_queue);
    o.value(
        "hearsay_queue_depth",
        "queue=\"kept-payloads\"",
        s.kept_payloads,
    );
    o.family(
        "hearsay_dropped_total",
        "counter",
        "Items dropped at a bound, by what.",
    );
    for (what, v) in [
        ("rumours", w.rumours_dropped),
        ("relays", w.relays_dropped),
        ("deliveries", c.deliveries_dropped),
        ("events", c.events_dropped),
        ("kept-payloads", s.kept_dropped),
        ("stalled-link", c.stalled_dropped),
        ("kv-answers", s.kv_held_dropped),
        ("handler-events", s.handler_dropped),
    ] {
        o.value("hearsay_dropped_total", &format!("what=\"{what}\""), v);
    }
    o.one(
        "hearsay_kv_keys",
        "gauge",
        "Keys in the replicated map, as this agent sees it.",
        s.kv_keys,
    );
    o.one(
        "hearsay_keys",
        "gauge",
        "Gossip keys installed (0: clear text).",
        s.keys,
    );
    o.0
}
