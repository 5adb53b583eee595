//! What the network keeps for the pictures of a run: the first events for
//! the message diagram (bounded as Maelstrom bounds its own), and, for the
//! whole run, who sent how much to whom and when. Kept in memory whether or
//! not the journal file is written, and bounded by the run's shape (edges
//! used, nodes x seconds), not by its message count.

use std::collections::HashMap;

/// Maelstrom's `journal-limit`: the diagram stops after this many events.
pub const DIAGRAM_EVENTS: usize = 10_000;
/// A body longer than this is cut in the diagram's hover text.
pub const BODY_CHARS: usize = 400;
/// Time buckets of the per-node rates.
pub const BUCKET_NS: u64 = 1_000_000_000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetEvent {
    pub recv: bool,
    /// Executor time, ns (the run's origin is in `RunResult`).
    pub time: u64,
    pub id: u64,
    pub src: u32,
    pub dest: u32,
    /// The body's `type`, for colour and label.
    pub kind: String,
    /// The body, cut at `BODY_CHARS`.
    pub body: String,
}

#[derive(Clone, Debug, Default)]
pub struct NetRecord {
    /// The first `DIAGRAM_EVENTS` sends and receives, in order.
    pub events: Vec<NetEvent>,
    /// Every send and receive of the run.
    pub total_events: u64,
    /// Server-to-server sends: (src, dest) -> (messages, body bytes).
    pub traffic: HashMap<(u32, u32), (u64, u64)>,
    /// Server-to-server sends per source and second of executor time.
    pub sends: HashMap<(u32, u64), u32>,
}

impl NetRecord {
    pub(crate) fn note(
        &mut self,
        recv: bool,
        time: u64,
        id: u64,
        (src, dest): (u32, u32),
        servers: bool,
        body: &str,
    ) {
        self.total_events += 1;
        if !recv && servers {
            let e = self.traffic.entry((src, dest)).or_default();
            e.0 += 1;
            e.1 += body.len() as u64;
            *self.sends.entry((src, time / BUCKET_NS)).or_default() += 1;
        }
        if self.events.len() < DIAGRAM_EVENTS {
            self.events.push(NetEvent {
                recv,
                time,
                id,
                src,
                dest,
                kind: body_type(body),
                body: cut(body, BODY_CHARS),
            });
        }
    }
}

fn body_type(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(String::from))
        .unwrap_or_default()
}

/// `s` cut to `n` characters, with an ellipsis when cut.
pub(crate) fn cut(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_diagram_is_bounded_and_traffic_counts_server_sends_only() {
        let mut r = NetRecord::default();
        for i in 0..(DIAGRAM_EVENTS as u64 + 5) {
            r.note(false, i, i, (0, 1), true, r#"{"type":"gossip"}"#);
        }
        r.note(false, 0, 0, (2, 0), false, r#"{"type":"read"}"#);
        r.note(true, 0, 0, (0, 1), true, r#"{"type":"gossip"}"#);
        assert_eq!(r.events.len(), DIAGRAM_EVENTS);
        assert_eq!(r.total_events, DIAGRAM_EVENTS as u64 + 7);
        assert_eq!(r.traffic.len(), 1);
        assert_eq!(r.traffic[&(0, 1)].0, DIAGRAM_EVENTS as u64 + 5);
        assert_eq!(r.events[0].kind, "gossip");
        assert_eq!(cut("abcdef", 3), "abc…");
        assert_eq!(cut("ab", 3), "ab");
    }
}
