//! The traffic map: a sender x receiver matrix of server-to-server messages
//! (what overlay a node really uses: a star is one full row and column, a
//! tree N-1 symmetric pairs, a mesh a band). `traffic.svg` for the eye,
//! `traffic.csv` for scripts.

use crate::net::NetRecord;
use svg::Document;
use svg::node::element::{Group, Rectangle, Style, Text, Title};

/// Nodes drawn one by one; beyond this, nodes are grouped in blocks.
pub const MAX_CELLS: usize = 150;

/// `src,dest,messages,bytes`, busiest first, for every pair that talked.
pub fn csv(rec: &NetRecord, names: &[String]) -> String {
    let mut rows: Vec<_> = rec.traffic.iter().collect();
    rows.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.0.cmp(b.0)));
    let name = |a: u32| names.get(a as usize).map_or("?", String::as_str);
    let mut out = String::from("src,dest,messages,bytes\n");
    for ((s, d), (m, b)) in rows {
        out += &format!("{},{},{m},{b}\n", name(*s), name(*d));
    }
    out
}

/// The matrix over the first `nodes` addresses (the servers), and the
/// number of cells drawn.
pub fn svg(rec: &NetRecord, names: &[String], nodes: usize) -> (String, usize) {
    let block = nodes.div_ceil(MAX_CELLS).max(1);
    let side = nodes.div_ceil(block);
    let mut cells = vec![(0u64, 0u64); side * side];
    for (&(s, d), &(m, b)) in &rec.traffic {
        let (s, d) = (s as usize, d as usize);
        if s < nodes && d < nodes {
            let c = &mut cells[(s / block) * side + d / block];
            c.0 += m;
            c.1 += b;
        }
    }
    let max = cells.iter().map(|c| c.0).max().unwrap_or(0).max(1) as f64;
    let cell = (720.0 / side as f64).clamp(3.0, 28.0);
    let margin = 70.0;
    let size = margin + cell * side as f64 + 20.0;
    let label = |i: usize| {
        if block == 1 {
            names.get(i).cloned().unwrap_or_default()
        } else {
            let hi = ((i + 1) * block).min(nodes) - 1;
            format!(
                "{}..{}",
                names.get(i * block).map_or("", String::as_str),
                names.get(hi).map_or("", String::as_str)
            )
        }
    };
    let title = if block == 1 {
        "server messages, sender (row) to receiver (column)".to_string()
    } else {
        format!("server messages, sender (row) to receiver (column), in blocks of {block} nodes")
    };
    let mut doc = Document::new()
        .set("width", size)
        .set("height", size + 20.0)
        .set("viewBox", format!("0 0 {size} {}", size + 20.0))
        .add(Style::new(
            "svg{font-family:Helvetica,Arial,sans-serif;font-size:10px}.cell:hover{stroke:#000}",
        ))
        .add(Text::new(title).set("x", margin).set("y", 14));
    let show_labels = side <= 60;
    let mut g = Group::new().set("class", "matrix");
    let mut drawn = 0;
    for r in 0..side {
        if show_labels {
            g = g
                .add(
                    Text::new(label(r))
                        .set("x", margin - 4.0)
                        .set("y", margin + (r as f64 + 0.7) * cell)
                        .set("text-anchor", "end"),
                )
                .add(
                    Text::new(label(r))
                        .set("x", margin + (r as f64 + 0.5) * cell)
                        .set("y", margin - 6.0)
                        .set("text-anchor", "start")
                        .set(
                            "transform",
                            format!(
                                "rotate(-60 {} {})",
                                margin + (r as f64 + 0.5) * cell,
                                margin - 6.0
                            ),
                        ),
                );
        }
        for c in 0..side {
            let (m, b) = cells[r * side + c];
            if m == 0 {
                continue;
            }
            // Log shading: a hub's thousands and a leaf's tens both show.
            let shade = ((m as f64).ln_1p() / max.ln_1p()).clamp(0.05, 1.0);
            let light = (255.0 * (1.0 - shade)) as u8;
            drawn += 1;
            g = g.add(
                Rectangle::new()
                    .set("class", "cell")
                    .set("data-src", label(r))
                    .set("data-dest", label(c))
                    .set("data-messages", m)
                    .set("x", margin + c as f64 * cell)
                    .set("y", margin + r as f64 * cell)
                    .set("width", cell)
                    .set("height", cell)
                    .set("fill", format!("rgb({light},{light},255)"))
                    .add(Title::new(format!(
                        "{} → {}: {m} messages, {b} bytes",
                        label(r),
                        label(c)
                    ))),
            );
        }
    }
    doc = doc.add(g);
    (doc.to_string(), drawn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matrix_has_a_cell_per_pair_that_talked() {
        let mut rec = NetRecord::default();
        let names: Vec<String> = ["n0", "n1", "n2", "c0"].map(String::from).to_vec();
        for _ in 0..3 {
            rec.note(false, 0, 0, (0, 1), true, "{}");
        }
        rec.note(false, 0, 0, (1, 0), true, "{}");
        rec.note(false, 0, 0, (3, 0), false, "{}");
        let (svg, cells) = svg(&rec, &names, 3);
        assert_eq!(cells, 2);
        assert!(svg.contains("n0 → n1: 3 messages"));
        assert_eq!(
            csv(&rec, &names),
            "src,dest,messages,bytes\nn0,n1,3,6\nn1,n0,1,2\n"
        );
    }

    #[test]
    fn large_clusters_are_drawn_in_blocks() {
        let mut rec = NetRecord::default();
        let names: Vec<String> = (0..1000).map(|i| format!("n{i}")).collect();
        for i in 0..999u32 {
            rec.note(false, 0, 0, (i, i + 1), true, "{}");
        }
        let (svg, cells) = svg(&rec, &names, 1000);
        assert!(svg.contains("in blocks of 7 nodes"));
        assert!((100..=MAX_CELLS * MAX_CELLS).contains(&cells));
    }
}
