//! `messages.svg`: Maelstrom's Lamport diagram. A lane per node and client,
//! one step down per network event, an arrow per delivered message from its
//! send to its receipt, coloured by type, the body on hover; cut after the
//! first `DIAGRAM_EVENTS` events with the cut stated, as Maelstrom does.

use crate::net::NetRecord;
use crate::net::record::{DIAGRAM_EVENTS, cut};
use std::collections::HashMap;
use svg::Document;
use svg::node::element::{Definitions, Group, Line, Marker, Path, Rectangle, Style, Text, Title};

const Y_STEP: f64 = 20.0;
const LANE: f64 = 48.0;

/// Lanes: clients first (by number), then servers in test order, as the
/// diagram reads best with requests coming in from the left.
fn lanes(rec: &NetRecord, names: &[String]) -> Vec<u32> {
    let mut used: Vec<u32> = rec.events.iter().flat_map(|e| [e.src, e.dest]).collect();
    used.sort_unstable();
    used.dedup();
    let is_client = |a: u32| names.get(a as usize).is_some_and(|n| n.starts_with('c'));
    let num = |a: u32| {
        names
            .get(a as usize)
            .and_then(|n| n[1..].parse::<u64>().ok())
            .unwrap_or(u64::MAX)
    };
    let (mut clients, servers): (Vec<u32>, Vec<u32>) =
        used.into_iter().partition(|&a| is_client(a));
    clients.sort_by_key(|&a| num(a));
    clients.extend(servers);
    clients
}

/// A colour per message type (errors pink and client traffic light blue, as
/// in Maelstrom; other types from a palette, stable by name).
fn colour(kind: &str, client: bool) -> String {
    if kind == "error" {
        return "#FF1E90".into();
    }
    if client {
        return "#81BFFC".into();
    }
    const TYPES: [&str; 8] = [
        "#000000", "#2ca02c", "#9467bd", "#8c564b", "#d62728", "#17becf", "#bcbd22", "#7f7f7f",
    ];
    let h = kind
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    TYPES[h as usize % TYPES.len()].into()
}

fn label(kind: &str, body: &str) -> String {
    let rest: String = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(body)
        .map(|mut m| {
            for k in ["type", "msg_id", "in_reply_to"] {
                m.remove(k);
            }
            serde_json::Value::Object(m).to_string()
        })
        .unwrap_or_default();
    // Maelstrom's labels are 48 characters at most.
    cut(&format!("{kind} {rest}"), 47)
}

/// The diagram, and how many arrows it has.
/// `data-t` on each arrow is its send's ms since `origin_ns` (history time).
pub fn diagram(rec: &NetRecord, names: &[String], origin_ns: u64) -> (String, usize) {
    let lanes = lanes(rec, names);
    let index: HashMap<u32, usize> = lanes.iter().enumerate().map(|(i, &a)| (a, i)).collect();
    let width = (lanes.len() as f64 * LANE).max(600.0) + 40.0;
    let steps = rec.events.len();
    let cut = rec.total_events.saturating_sub(steps as u64);
    let height = Y_STEP * (steps as f64 + 7.0);
    let x = |a: u32| 20.0 + (index[&a] as f64 + 0.5) * LANE;
    let y = |step: usize| Y_STEP * (1.5 + step as f64);
    let name = |a: u32| names.get(a as usize).cloned().unwrap_or_default();
    let mut doc = Document::new()
        .set("width", width)
        .set("height", height)
        .set("viewBox", format!("0 0 {width} {height}"))
        .add(Style::new(
            "svg{font-family:Helvetica,Arial,sans-serif;font-size:11px}\
             .msg line{stroke-width:2.5}.msg:hover line{stroke-width:5}\
             .lane{stroke:#ccc}.lbl{fill:#333}",
        ))
        .add(
            Definitions::new().add(
                Marker::new()
                    .set("id", "ahead")
                    .set("viewBox", "0 0 10 10")
                    .set("refX", 10)
                    .set("refY", 5)
                    .set("markerWidth", 6)
                    .set("markerHeight", 6)
                    .set("orient", "auto-start-reverse")
                    .add(Path::new().set("d", "M 0 0 L 10 5 L 0 10 z")),
            ),
        );
    let mut lane_group = Group::new().set("class", "lanes");
    for &a in &lanes {
        lane_group = lane_group.add(
            Line::new()
                .set("class", "lane")
                .set("x1", x(a))
                .set("x2", x(a))
                .set("y1", y(0))
                .set("y2", y(steps + 1)),
        );
        // Names repeat down the lanes every 50 steps, as in Maelstrom, but
        // never more than about 20,000 labels in all (a 1000-node run).
        let every = (steps * lanes.len() / 20_000).max(50);
        for step in (0..steps.max(1)).step_by(every) {
            lane_group = lane_group.add(
                Text::new(name(a))
                    .set("class", "node")
                    .set("x", x(a))
                    .set("y", y(step) - Y_STEP * 0.5)
                    .set("text-anchor", "middle")
                    .set("fill", if step == 0 { "#000" } else { "#aaa" }),
            );
        }
    }
    doc = doc.add(lane_group);
    let mut sent: HashMap<u64, usize> = HashMap::new();
    let mut arrows = Group::new().set("class", "messages");
    let mut count = 0;
    for (step, e) in rec.events.iter().enumerate() {
        if !e.recv {
            sent.insert(e.id, step);
            continue;
        }
        let Some(&from) = sent.get(&e.id) else {
            continue;
        };
        let client = [e.src, e.dest]
            .iter()
            .any(|&a| names.get(a as usize).is_some_and(|n| n.starts_with('c')));
        let c = colour(&e.kind, client);
        let (x0, y0, x1, y1) = (x(e.src), y(from), x(e.dest), y(step));
        count += 1;
        arrows = arrows.add(
            Group::new()
                .set("class", "msg")
                .set("data-type", e.kind.as_str())
                .set("data-src", name(e.src))
                .set("data-dest", name(e.dest))
                .set("data-t", e.time.saturating_sub(origin_ns) / 1_000_000)
                .add(Title::new(format!(
                    "{} → {} {}",
                    name(e.src),
                    name(e.dest),
                    e.body
                )))
                .add(
                    Line::new()
                        .set("x1", x0)
                        .set("y1", y0)
                        .set("x2", x1)
                        .set("y2", y1)
                        .set("stroke", c.as_str())
                        .set("marker-end", "url(#ahead)"),
                )
                .add(
                    Text::new(label(&e.kind, &e.body))
                        .set("class", "lbl")
                        .set("x", (x0 + x1) / 2.0)
                        .set("y", (y0 + y1) / 2.0 - 3.0)
                        .set("text-anchor", "middle"),
                ),
        );
    }
    doc = doc.add(arrows);
    if cut > 0 {
        let yc = y(steps + 2);
        doc = doc
            .add(
                Rectangle::new()
                    .set("x", 30)
                    .set("y", yc)
                    .set("width", width - 60.0)
                    .set("height", 1)
                    .set("fill", "#D96918"),
            )
            .add(
                Text::new(format!(
                    "{cut} later network events not shown (the diagram stops after the first {DIAGRAM_EVENTS}, as Maelstrom's does)"
                ))
                .set("class", "cut")
                .set("x", width / 2.0)
                .set("y", yc + Y_STEP)
                .set("fill", "#D96918")
                .set("text-anchor", "middle"),
            );
    }
    (doc.to_string(), count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_arrow_per_delivery_and_one_lane_per_party() {
        let mut rec = NetRecord::default();
        let names: Vec<String> = ["n0", "n1", "c0"].map(String::from).to_vec();
        rec.note(
            false,
            0,
            1,
            (2, 0),
            false,
            r#"{"type":"echo","echo":"<hi>","msg_id":1}"#,
        );
        rec.note(
            true,
            1,
            1,
            (2, 0),
            false,
            r#"{"type":"echo","echo":"<hi>","msg_id":1}"#,
        );
        rec.note(false, 2, 2, (0, 1), true, r#"{"type":"gossip"}"#);
        // Never delivered: no arrow.
        rec.note(false, 3, 3, (0, 1), true, r#"{"type":"gossip"}"#);
        rec.note(true, 4, 2, (0, 1), true, r#"{"type":"gossip"}"#);
        let (svg, arrows) = diagram(&rec, &names, 0);
        assert_eq!(arrows, 2);
        assert_eq!(svg.matches(r#"class="msg""#).count(), 2);
        assert_eq!(svg.matches(r#"class="lane""#).count(), 3);
        assert!(svg.contains("c0 → n0"), "hover names both ends");
        assert!(svg.contains("&lt;hi&gt;"), "bodies are escaped");
        assert!(!svg.contains("not shown"));
        // The client lane comes first.
        let lane = |n: &str| svg.find(&format!("\n{n}\n</text>")).unwrap();
        let (c0, n0) = (lane("c0"), lane("n0"));
        assert!(c0 < n0);
    }
}
