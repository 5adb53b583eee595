//! Small directed graphs as SVG, drawn without Graphviz: the cycles Elle
//! plots (`elle/<type>/N.svg`). Vertices sit on a circle in the order given,
//! so a cycle reads clockwise; each vertex is a box of lines (a
//! transaction's micro-ops), each arc is coloured and labelled by its
//! relation.

use svg::Document;
use svg::node::element::{Definitions, Group, Line, Marker, Path, Rectangle, Text, Title};

/// A box: a bold name, then lines of text; `title` is the hover text.
#[derive(Clone, Debug)]
pub struct Vertex {
    pub name: String,
    pub lines: Vec<String>,
    pub color: &'static str,
    pub title: String,
}

#[derive(Clone, Debug)]
pub struct Arc {
    pub from: usize,
    pub to: usize,
    pub label: String,
    pub color: &'static str,
}

/// Width of a character of the 11 px monospace font, and a line's height.
const CHAR_W: f64 = 6.7;
const LINE_H: f64 = 14.0;
/// Longest line drawn in a box (longer ones end in "...").
const MAX_CHARS: usize = 48;
/// Most lines drawn in a box.
const MAX_LINES: usize = 12;

struct Placed {
    x: f64,
    y: f64,
    hw: f64,
    hh: f64,
}

/// The graph as an SVG document.
pub fn svg(vertices: &[Vertex], arcs: &[Arc]) -> String {
    let n = vertices.len().max(1);
    let lines = |v: &Vertex| -> Vec<String> {
        let mut l: Vec<String> = v.lines.iter().take(MAX_LINES).map(|s| clip(s)).collect();
        if v.lines.len() > MAX_LINES {
            l.push(format!("... {} more", v.lines.len() - MAX_LINES));
        }
        l
    };
    let sizes: Vec<(f64, f64)> = vertices
        .iter()
        .map(|v| {
            let l = lines(v);
            let chars = l
                .iter()
                .map(|s| s.chars().count())
                .chain([v.name.chars().count()])
                .max()
                .unwrap_or(1);
            (
                chars as f64 * CHAR_W / 2.0 + 8.0,
                (l.len() + 1) as f64 * LINE_H / 2.0 + 6.0,
            )
        })
        .collect();
    // A circle on which neighbouring boxes stay apart, whichever way round
    // they sit: the chord between neighbours is at least their widths and a
    // gap for the arc's label.
    let r = if n == 1 {
        0.0
    } else {
        let chord = (0..n)
            .map(|i| {
                let (a, b) = (sizes[i], sizes[(i + 1) % n]);
                (a.0 + b.0).max(a.1 + b.1) + 60.0
            })
            .fold(0.0, f64::max);
        (chord / (2.0 * (std::f64::consts::PI / n as f64).sin())).max(90.0)
    };
    let mut placed: Vec<Placed> = sizes
        .iter()
        .enumerate()
        .map(|(i, &(hw, hh))| {
            let a = -std::f64::consts::FRAC_PI_2 + std::f64::consts::TAU * i as f64 / n as f64;
            Placed {
                x: r * a.cos(),
                y: r * a.sin(),
                hw,
                hh,
            }
        })
        .collect();
    let margin = 40.0;
    let min_x = placed.iter().map(|p| p.x - p.hw).fold(0.0, f64::min) - margin;
    let min_y = placed.iter().map(|p| p.y - p.hh).fold(0.0, f64::min) - margin;
    for p in &mut placed {
        p.x -= min_x;
        p.y -= min_y;
    }
    let width = placed.iter().map(|p| p.x + p.hw).fold(0.0, f64::max) + margin;
    let height = placed.iter().map(|p| p.y + p.hh).fold(0.0, f64::max) + margin;

    let mut colors: Vec<&str> = arcs.iter().map(|a| a.color).collect();
    colors.sort_unstable();
    colors.dedup();
    let mut defs = Definitions::new();
    for (i, c) in colors.iter().enumerate() {
        defs = defs.add(
            Marker::new()
                .set("id", format!("arrow{i}"))
                .set("viewBox", "0 0 10 10")
                .set("refX", 10)
                .set("refY", 5)
                .set("markerWidth", 8)
                .set("markerHeight", 8)
                .set("orient", "auto-start-reverse")
                .add(
                    Path::new()
                        .set("d", "M 0 0 L 10 5 L 0 10 z")
                        .set("fill", *c),
                ),
        );
    }
    let mut doc = Document::new()
        .set("width", width.round())
        .set("height", height.round())
        .set("viewBox", format!("0 0 {:.0} {:.0}", width, height))
        .set("font-family", "monospace")
        .set("font-size", 11)
        .add(defs)
        .add(
            Rectangle::new()
                .set("width", "100%")
                .set("height", "100%")
                .set("fill", "white"),
        );
    for arc in arcs {
        let (Some(a), Some(b)) = (placed.get(arc.from), placed.get(arc.to)) else {
            continue;
        };
        let (dx, dy) = (b.x - a.x, b.y - a.y);
        let len = dx.hypot(dy);
        if len < 1.0 {
            continue;
        }
        let (ux, uy) = (dx / len, dy / len);
        // Arcs both ways between two boxes: each keeps to its own left.
        let both = arcs.iter().any(|o| o.from == arc.to && o.to == arc.from);
        let off = if both { 9.0 } else { 0.0 };
        let (ox, oy) = (uy * off, -ux * off);
        let exit = |p: &Placed| {
            let tx = if ux.abs() > 1e-9 {
                p.hw / ux.abs()
            } else {
                f64::INFINITY
            };
            let ty = if uy.abs() > 1e-9 {
                p.hh / uy.abs()
            } else {
                f64::INFINITY
            };
            tx.min(ty) + 3.0
        };
        let (ta, tb) = (exit(a), exit(b));
        let (x1, y1) = (a.x + ox + ux * ta, a.y + oy + uy * ta);
        let (x2, y2) = (b.x + ox - ux * tb, b.y + oy - uy * tb);
        let marker = colors.iter().position(|c| *c == arc.color).unwrap_or(0);
        doc = doc
            .add(
                Line::new()
                    .set("x1", round(x1))
                    .set("y1", round(y1))
                    .set("x2", round(x2))
                    .set("y2", round(y2))
                    .set("stroke", arc.color)
                    .set("stroke-width", 1.5)
                    .set("marker-end", format!("url(#arrow{marker})")),
            )
            .add(
                Text::new(arc.label.as_str())
                    .set("x", round((x1 + x2) / 2.0 + uy * 12.0))
                    .set("y", round((y1 + y2) / 2.0 - ux * 12.0))
                    .set("fill", arc.color)
                    .set("text-anchor", "middle")
                    .set("dominant-baseline", "middle"),
            );
    }
    for (v, p) in vertices.iter().zip(&placed) {
        let (x, y) = (p.x - p.hw, p.y - p.hh);
        let mut g = Group::new().add(Title::new(v.title.as_str())).add(
            Rectangle::new()
                .set("x", round(x))
                .set("y", round(y))
                .set("width", round(2.0 * p.hw))
                .set("height", round(2.0 * p.hh))
                .set("rx", 3)
                .set("fill", "white")
                .set("stroke", v.color),
        );
        g = g.add(
            Text::new(v.name.as_str())
                .set("x", round(x + 6.0))
                .set("y", round(y + 6.0 + LINE_H * 0.8))
                .set("fill", v.color)
                .set("font-weight", "bold"),
        );
        for (i, l) in lines(v).into_iter().enumerate() {
            g = g.add(
                Text::new(l)
                    .set("x", round(x + 6.0))
                    .set("y", round(y + 6.0 + LINE_H * (i as f64 + 1.8)))
                    .set("fill", v.color),
            );
        }
        doc = doc.add(g);
    }
    doc.to_string() + "\n"
}

/// A coordinate to a tenth of a pixel (shorter files, stable output).
fn round(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn clip(s: &str) -> String {
    if s.chars().count() <= MAX_CHARS {
        s.to_string()
    } else {
        let mut c: String = s.chars().take(MAX_CHARS - 3).collect();
        c.push_str("...");
        c
    }
}

/// Text made safe inside an SVG or HTML element.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vertex(name: &str, lines: &[&str]) -> Vertex {
        Vertex {
            name: name.into(),
            lines: lines.iter().map(|s| s.to_string()).collect(),
            color: "#0058AD",
            title: format!("{name} <op>"),
        }
    }

    fn boxes(svg: &str) -> Vec<(f64, f64, f64, f64)> {
        svg.lines()
            .filter(|l| l.starts_with("<rect") && l.contains(" x=\""))
            .map(|l| {
                let num = |k: &str| -> f64 {
                    let i = l.find(&format!(" {k}=\"")).unwrap() + k.len() + 3;
                    l[i..].split('"').next().unwrap().parse().unwrap()
                };
                (num("x"), num("y"), num("width"), num("height"))
            })
            .collect()
    }

    #[test]
    fn a_cycle_draws_every_box_apart_and_every_arc_labelled() {
        let vs = vec![
            vertex("T1", &["a 3 1", "r 4 [1 2]"]),
            vertex("T2", &["r 3 nil", "a 4 2"]),
            vertex("T3", &["a 5 & <1>"]),
        ];
        let arcs = vec![
            Arc {
                from: 0,
                to: 1,
                label: "rw".into(),
                color: "#5B00C0",
            },
            Arc {
                from: 1,
                to: 2,
                label: "wr".into(),
                color: "#C000A5",
            },
            Arc {
                from: 2,
                to: 0,
                label: "rt".into(),
                color: "#0050C0",
            },
        ];
        let s = svg(&vs, &arcs);
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
        assert_eq!(s.matches("<line ").count(), 3);
        for l in [
            "\nrw\n",
            "\nwr\n",
            "\nrt\n",
            "\nT1\n",
            "\na 5 &amp; &lt;1&gt;\n",
        ] {
            assert!(s.contains(l), "{l} missing");
        }
        let b = boxes(&s);
        assert_eq!(b.len(), 3);
        for i in 0..3 {
            for j in i + 1..3 {
                let (a, c) = (b[i], b[j]);
                let apart =
                    a.0 + a.2 <= c.0 || c.0 + c.2 <= a.0 || a.1 + a.3 <= c.1 || c.1 + c.3 <= a.1;
                assert!(apart, "boxes {i} and {j} overlap: {a:?} {c:?}");
            }
        }
        // Every box inside the picture.
        let w: f64 = s
            .split("width=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(b.iter().all(|r| r.0 >= 0.0 && r.0 + r.2 <= w));
    }

    #[test]
    fn two_arcs_between_two_boxes_do_not_overlap() {
        let vs = vec![vertex("T1", &["a 1 1"]), vertex("T2", &["a 1 2"])];
        let arc = |from, to| Arc {
            from,
            to,
            label: "ww".into(),
            color: "#C02700",
        };
        let s = svg(&vs, &[arc(0, 1), arc(1, 0)]);
        let lines: Vec<&str> = s.lines().filter(|l| l.starts_with("<line")).collect();
        assert_eq!(lines.len(), 2);
        assert_ne!(lines[0], lines[1]);
        let x1 = |l: &str| {
            l.split("x1=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .to_string()
        };
        assert_ne!(x1(lines[0]), x1(lines[1]), "the two arcs share a path");
    }
}
