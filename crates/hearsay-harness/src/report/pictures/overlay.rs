//! `overlay.svg`: under `--sim`, the graph of who each node says it sends
//! to at the end of the run (hearsay's node reports its strategy's
//! neighbours), nodes on a circle in test order.

use std::collections::HashMap;
use svg::Document;
use svg::node::element::{Circle, Group, Line, Style, Text, Title};

/// The graph, and how many edges it has (a pair that both list counts once).
pub fn svg(nodes: &[String], overlay: &[Vec<String>]) -> (String, usize) {
    let n = nodes.len().max(1);
    let size = 720.0;
    let r = size / 2.0 - 60.0;
    let c = size / 2.0;
    let at = |i: usize| {
        let a = std::f64::consts::TAU * i as f64 / n as f64 - std::f64::consts::FRAC_PI_2;
        (c + r * a.cos(), c + r * a.sin())
    };
    let index: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i))
        .collect();
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    for (i, peers) in overlay.iter().enumerate() {
        for p in peers {
            if let Some(&j) = index.get(p.as_str()) {
                pairs.push((i.min(j), i.max(j)));
            }
        }
    }
    pairs.sort_unstable();
    pairs.dedup();
    let mut doc = Document::new()
        .set("width", size)
        .set("height", size + 30.0)
        .set("viewBox", format!("0 0 {size} {}", size + 30.0))
        .add(Style::new("svg{font-family:Helvetica,Arial,sans-serif;font-size:10px}.edge:hover{stroke:#d62728;stroke-width:3}"))
        .add(
            Text::new(format!(
                "overlay each node reports at the end of the run: {} nodes, {} edges",
                nodes.len(),
                pairs.len()
            ))
            .set("x", 10)
            .set("y", 16),
        );
    let mut edges = Group::new().set("class", "edges");
    for &(a, b) in &pairs {
        let ((x0, y0), (x1, y1)) = (at(a), at(b));
        edges = edges.add(
            Line::new()
                .set("class", "edge")
                .set("x1", x0)
                .set("y1", y0 + 20.0)
                .set("x2", x1)
                .set("y2", y1 + 20.0)
                .set("stroke", "#1f77b4")
                .set("stroke-opacity", 0.6)
                .set("stroke-width", 1.5)
                .add(Title::new(format!("{} – {}", nodes[a], nodes[b]))),
        );
    }
    doc = doc.add(edges);
    let labels = nodes.len() <= 100;
    let mut dots = Group::new().set("class", "nodes");
    for (i, name) in nodes.iter().enumerate() {
        let (x, y) = at(i);
        let degree = overlay.get(i).map_or(0, Vec::len);
        dots = dots.add(
            Circle::new()
                .set("class", "node")
                .set("cx", x)
                .set("cy", y + 20.0)
                .set("r", if labels { 5 } else { 2 })
                .set("fill", "#333")
                .add(Title::new(format!("{name}: sends to {degree}"))),
        );
        if labels {
            let (lx, ly) = (c + (x - c) * 1.08, c + (y - c) * 1.08 + 20.0);
            dots = dots.add(
                Text::new(name.as_str())
                    .set("x", lx)
                    .set("y", ly + 3.0)
                    .set("text-anchor", "middle"),
            );
        }
    }
    (doc.add(dots).to_string(), pairs.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_star_has_one_edge_per_leaf() {
        let nodes: Vec<String> = ["n0", "n1", "n2", "n3"].map(String::from).to_vec();
        let hub: Vec<String> = ["n1", "n2", "n3"].map(String::from).to_vec();
        let leaf = vec!["n0".to_string()];
        let (svg, edges) = svg(&nodes, &[hub, leaf.clone(), leaf.clone(), leaf]);
        assert_eq!(edges, 3, "each pair once although both ends list it");
        assert_eq!(svg.matches(r#"class="edge""#).count(), 3);
        assert_eq!(svg.matches(r#"class="node""#).count(), 4);
    }
}
