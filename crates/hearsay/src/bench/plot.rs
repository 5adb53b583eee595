//! The bench's Pareto plot: msgs-per-op against median stable latency on
//! log-log axes, one mark per point (colour by strategy, shape by preset), a
//! whisker up to the max latency, the Gossip Glomers 3d and 3e target regions
//! shaded, the Pareto frontier (no other point has both fewer messages and
//! lower latency) drawn through, labels placed so that they do not overprint,
//! and every value on hover.

use svg::Document;
use svg::Node as _;
use svg::node::element::{Circle, Group, Line, Polygon, Polyline, Rectangle, Style, Text, Title};

pub struct Dot {
    pub strategy: String,
    pub preset: String,
    /// msgs-per-op
    pub x: f64,
    /// median stable latency, ms
    pub y: f64,
    pub p95: f64,
    pub max: f64,
    pub valid: bool,
}

impl Dot {
    fn label(&self) -> String {
        format!(
            "{}/{}{}",
            self.strategy,
            self.preset,
            if self.valid { "" } else { " (invalid)" }
        )
    }

    /// Drawable: counters have no stable latencies (their median is -1).
    fn finite(&self) -> bool {
        self.x.is_finite() && self.y.is_finite() && self.x > 0.0 && self.y >= 0.0
    }
}

/// What the axes measure, and the target regions shaded under them.
pub struct Axes {
    pub x: &'static str,
    pub y: &'static str,
    /// The x value's name in a point's hover text.
    pub x_name: &'static str,
    /// The axes span at least up to these.
    pub x_span: f64,
    pub y_span: f64,
    /// (name, x bound, y bound, fill): the region below and left of both.
    pub targets: &'static [(&'static str, f64, f64, &'static str)],
}

/// The Maelstrom bench's axes, with the 3d and 3e targets (3e's latency
/// bounds are looser, its message bound tighter).
pub const MAELSTROM: Axes = Axes {
    x: "msgs-per-op (servers), log scale",
    y: "median stable latency (ms), log scale; whisker: max",
    x_name: "msgs-per-op",
    x_span: 30.0,
    y_span: 2000.0,
    targets: &[
        ("3e: < 20 msgs/op, median < 1 s", 20.0, 1000.0, "#fff3d6"),
        ("3d: < 30 msgs/op, median < 400 ms", 30.0, 400.0, "#e3f4e3"),
    ],
};

/// The cluster bench's axes (no target regions: its targets are per
/// strategy, in docs/membership.md).
pub const CLUSTER: Axes = Axes {
    x: "messages per member per payload, log scale",
    y: "time to reach every live member, median (ms), log scale; whisker: max",
    x_name: "msgs/member/payload",
    x_span: 10.0,
    y_span: 5000.0,
    targets: &[],
};

const W: f64 = 820.0;
const H: f64 = 560.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 170.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 60.0;
/// Text width estimate for label placement (12 px sans-serif).
const CHAR_W: f64 = 6.6;
const LINE_H: f64 = 13.0;

const COLOURS: [&str; 8] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// Decades covering [lo, hi] on a log axis.
fn decades(lo: f64, hi: f64) -> (f64, f64) {
    let lo = 10f64.powf(lo.max(1e-3).log10().floor());
    let hi = 10f64.powf(hi.max(lo * 10.0).log10().ceil());
    (lo, hi)
}

/// Points on the frontier, sorted by x.
pub fn frontier(dots: &[Dot]) -> Vec<usize> {
    let ok: Vec<usize> = (0..dots.len()).filter(|&i| dots[i].finite()).collect();
    let mut f: Vec<usize> = ok
        .iter()
        .copied()
        .filter(|&i| {
            !ok.iter().any(|&j| {
                j != i
                    && dots[j].x <= dots[i].x
                    && dots[j].y <= dots[i].y
                    && (dots[j].x < dots[i].x || dots[j].y < dots[i].y)
            })
        })
        .collect();
    f.sort_by(|&a, &b| dots[a].x.total_cmp(&dots[b].x));
    f
}

/// An axis-aligned box (x, y, w, h).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Bx(f64, f64, f64, f64);

impl Bx {
    fn overlaps(&self, o: &Bx) -> bool {
        self.0 < o.0 + o.2 && o.0 < self.0 + self.2 && self.1 < o.1 + o.3 && o.1 < self.1 + self.3
    }
}

/// Places each label near its mark, at the first of several positions
/// that overlaps no mark and no label placed before it (the last resort
/// is the first position). Returns the text anchor points.
fn place_labels(marks: &[(f64, f64)], widths: &[f64]) -> Vec<(f64, f64, &'static str)> {
    let mut taken: Vec<Bx> = marks
        .iter()
        .map(|&(x, y)| Bx(x - 6.0, y - 6.0, 12.0, 12.0))
        .collect();
    let mut out = Vec::new();
    for (i, &(x, y)) in marks.iter().enumerate() {
        let w = widths[i];
        // (dx, dy of the baseline, anchor, box x offset)
        let tries: [(f64, f64, &'static str, f64); 8] = [
            (9.0, 4.0, "start", 0.0),
            (-9.0, 4.0, "end", -w),
            (9.0, -8.0, "start", 0.0),
            (-9.0, -8.0, "end", -w),
            (9.0, 16.0, "start", 0.0),
            (-9.0, 16.0, "end", -w),
            (0.0, -12.0, "middle", -w / 2.0),
            (0.0, 22.0, "middle", -w / 2.0),
        ];
        let boxed =
            |t: &(f64, f64, &str, f64)| Bx(x + t.0 + t.3, y + t.1 - LINE_H + 3.0, w, LINE_H);
        let pick = tries
            .iter()
            .find(|t| {
                let b = boxed(t);
                b.0 >= 0.0 && b.0 + b.2 <= W - RIGHT + 8.0 && !taken.iter().any(|o| o.overlaps(&b))
            })
            .unwrap_or(&tries[0]);
        taken.push(boxed(pick));
        out.push((x + pick.0, y + pick.1, pick.2));
    }
    out
}

/// A mark of the given shape (by preset) centred at (x, y).
fn mark(shape: usize, x: f64, y: f64, colour: &str, hollow: bool) -> svg::node::element::Element {
    let (fill, stroke) = if hollow {
        ("white", colour)
    } else {
        (colour, colour)
    };
    let el: svg::node::element::Element = match shape % 3 {
        0 => Circle::new().set("cx", x).set("cy", y).set("r", 5.5).into(),
        1 => Rectangle::new()
            .set("x", x - 5.0)
            .set("y", y - 5.0)
            .set("width", 10)
            .set("height", 10)
            .into(),
        _ => Polygon::new()
            .set(
                "points",
                format!(
                    "{x},{} {},{} {},{}",
                    y - 6.5,
                    x - 6.0,
                    y + 5.0,
                    x + 6.0,
                    y + 5.0
                ),
            )
            .into(),
    };
    let mut el = el;
    el.assign("fill", fill);
    el.assign("stroke", stroke);
    el.assign("stroke-width", 2);
    el
}

pub fn pareto_svg(title: &str, dots: &[Dot], axes: &Axes) -> String {
    let finite: Vec<&Dot> = dots.iter().filter(|d| d.finite()).collect();
    let (x0, x1) = decades(
        finite
            .iter()
            .map(|d| d.x)
            .fold(f64::INFINITY, f64::min)
            .min(1.0),
        finite
            .iter()
            .map(|d| d.x)
            .fold(0.0, f64::max)
            .max(axes.x_span),
    );
    let top = |d: &&Dot| {
        if d.max.is_finite() {
            d.max.max(d.y)
        } else {
            d.y
        }
    };
    let (y0, y1) = decades(
        finite
            .iter()
            .map(|d| d.y.max(1.0))
            .fold(f64::INFINITY, f64::min)
            .min(100.0),
        finite.iter().map(top).fold(0.0, f64::max).max(axes.y_span),
    );
    let px =
        |x: f64| LEFT + (x.log10() - x0.log10()) / (x1.log10() - x0.log10()) * (W - LEFT - RIGHT);
    let py = |y: f64| {
        H - BOTTOM
            - (y.max(1.0).log10() - y0.log10()) / (y1.log10() - y0.log10()) * (H - TOP - BOTTOM)
    };
    let mut doc = Document::new()
        .set("width", W)
        .set("height", H)
        .set("viewBox", format!("0 0 {W} {H}"))
        .set("font-family", "sans-serif")
        .set("font-size", 12)
        .add(Style::new(
            ".point:hover .mark{stroke:#000} .point:hover text{font-weight:bold}",
        ))
        .add(
            Rectangle::new()
                .set("width", "100%")
                .set("height", "100%")
                .set("fill", "white"),
        )
        .add(
            Text::new(title)
                .set("x", W / 2.0)
                .set("y", 24)
                .set("text-anchor", "middle")
                .set("font-size", 14),
        );
    // Target regions: below and left of each bound pair.
    let mut regions = Group::new().set("class", "targets");
    for &(name, mpo, med, fill) in axes.targets {
        let (rx0, rx1) = (px(x0), px(mpo.min(x1)));
        let (ry0, ry1) = (py(med.min(y1)), py(y0));
        regions = regions.add(
            Rectangle::new()
                .set("class", "target")
                .set("x", rx0)
                .set("y", ry0)
                .set("width", rx1 - rx0)
                .set("height", ry1 - ry0)
                .set("fill", fill)
                .set("fill-opacity", 0.7)
                .add(Title::new(name)),
        );
    }
    doc = doc.add(regions);
    let mut grid = Group::new().set("class", "grid");
    let mut d = x0;
    while d <= x1 * 1.0001 {
        for m in [1.0, 2.0, 5.0] {
            let v = d * m;
            if v > x1 * 1.0001 {
                break;
            }
            grid = grid
                .add(
                    Line::new()
                        .set("x1", px(v))
                        .set("x2", px(v))
                        .set("y1", TOP)
                        .set("y2", H - BOTTOM)
                        .set("stroke", "#eee"),
                )
                .add(
                    Text::new(format!("{v}"))
                        .set("x", px(v))
                        .set("y", H - BOTTOM + 16.0)
                        .set("text-anchor", "middle"),
                );
        }
        d *= 10.0;
    }
    let mut d = y0;
    while d <= y1 * 1.0001 {
        for m in [1.0, 2.0, 5.0] {
            let v = d * m;
            if v > y1 * 1.0001 {
                break;
            }
            grid = grid
                .add(
                    Line::new()
                        .set("x1", LEFT)
                        .set("x2", W - RIGHT)
                        .set("y1", py(v))
                        .set("y2", py(v))
                        .set("stroke", "#eee"),
                )
                .add(
                    Text::new(format!("{v}"))
                        .set("x", LEFT - 6.0)
                        .set("y", py(v) + 4.0)
                        .set("text-anchor", "end"),
                );
        }
        d *= 10.0;
    }
    grid = grid
        .add(
            Rectangle::new()
                .set("x", LEFT)
                .set("y", TOP)
                .set("width", W - LEFT - RIGHT)
                .set("height", H - TOP - BOTTOM)
                .set("fill", "none")
                .set("stroke", "#888"),
        )
        .add(
            Text::new(axes.x)
                .set("x", (LEFT + W - RIGHT) / 2.0)
                .set("y", H - 16.0)
                .set("text-anchor", "middle"),
        )
        .add(
            Text::new(axes.y)
                .set(
                    "transform",
                    format!("translate(18,{}) rotate(-90)", (TOP + H - BOTTOM) / 2.0),
                )
                .set("text-anchor", "middle"),
        );
    doc = doc.add(grid);
    let f = frontier(dots);
    if f.len() > 1 {
        let pts: Vec<String> = f
            .iter()
            .map(|&i| format!("{:.1},{:.1}", px(dots[i].x), py(dots[i].y)))
            .collect();
        doc = doc.add(
            Polyline::new()
                .set("class", "frontier")
                .set("points", pts.join(" "))
                .set("fill", "none")
                .set("stroke", "#3a7")
                .set("stroke-width", 2)
                .set("stroke-dasharray", "6 4"),
        );
    }
    let mut strategies: Vec<&str> = dots.iter().map(|d| d.strategy.as_str()).collect();
    strategies.dedup();
    strategies.sort_unstable();
    strategies.dedup();
    let mut presets: Vec<&str> = dots.iter().map(|d| d.preset.as_str()).collect();
    presets.sort_unstable();
    presets.dedup();
    let colour =
        |s: &str| COLOURS[strategies.iter().position(|x| *x == s).unwrap_or(0) % COLOURS.len()];
    let shape = |p: &str| presets.iter().position(|x| *x == p).unwrap_or(0);
    let shown: Vec<&Dot> = finite.clone();
    let marks: Vec<(f64, f64)> = shown.iter().map(|d| (px(d.x), py(d.y))).collect();
    let widths: Vec<f64> = shown
        .iter()
        .map(|d| d.label().len() as f64 * CHAR_W)
        .collect();
    let labels = place_labels(&marks, &widths);
    let mut points = Group::new().set("class", "points");
    for (k, d) in shown.iter().enumerate() {
        let (x, y) = marks[k];
        let c = colour(&d.strategy);
        let mut g = Group::new()
            .set("class", "point")
            .set("data-label", d.label())
            .add(Title::new(format!(
                "{}\n{} {:.2}\nmedian {:.0} ms, p95 {:.0} ms, max {:.0} ms\n{}",
                d.label(),
                axes.x_name,
                d.x,
                d.y,
                d.p95,
                d.max,
                if d.valid { "valid" } else { "NOT valid" }
            )));
        if d.max.is_finite() && d.max > d.y {
            g = g
                .add(
                    Line::new()
                        .set("class", "whisker")
                        .set("x1", x)
                        .set("x2", x)
                        .set("y1", y)
                        .set("y2", py(d.max))
                        .set("stroke", c)
                        .set("stroke-opacity", 0.5),
                )
                .add(
                    Line::new()
                        .set("x1", x - 4.0)
                        .set("x2", x + 4.0)
                        .set("y1", py(d.max))
                        .set("y2", py(d.max))
                        .set("stroke", c),
                );
        }
        let mut m = mark(shape(&d.preset), x, y, c, !d.valid);
        m.assign("class", "mark");
        g = g.add(m);
        let (lx, ly, anchor) = labels[k];
        g = g.add(
            Text::new(d.label())
                .set("class", "label")
                .set("x", lx)
                .set("y", ly)
                .set("text-anchor", anchor)
                .set("fill", if d.valid { "#222" } else { "#c33" }),
        );
        points = points.add(g);
    }
    doc = doc.add(points);
    // Legend: colours by strategy, shapes by preset.
    let mut legend = Group::new().set("class", "legend");
    let lx = W - RIGHT + 18.0;
    let mut ly = TOP + 10.0;
    legend = legend.add(
        Text::new("strategy")
            .set("x", lx)
            .set("y", ly)
            .set("font-weight", "bold"),
    );
    for s in &strategies {
        ly += 16.0;
        legend = legend
            .add(mark(0, lx + 6.0, ly - 4.0, colour(s), false))
            .add(Text::new(*s).set("x", lx + 18.0).set("y", ly));
    }
    ly += 26.0;
    legend = legend.add(
        Text::new("preset")
            .set("x", lx)
            .set("y", ly)
            .set("font-weight", "bold"),
    );
    for p in &presets {
        ly += 16.0;
        legend = legend
            .add(mark(shape(p), lx + 6.0, ly - 4.0, "#555", false))
            .add(Text::new(*p).set("x", lx + 18.0).set("y", ly));
    }
    ly += 26.0;
    legend = legend
        .add(
            Line::new()
                .set("x1", lx)
                .set("x2", lx + 14.0)
                .set("y1", ly - 4.0)
                .set("y2", ly - 4.0)
                .set("stroke", "#3a7")
                .set("stroke-width", 2)
                .set("stroke-dasharray", "6 4"),
        )
        .add(
            Text::new("Pareto frontier")
                .set("x", lx + 18.0)
                .set("y", ly),
        )
        .add(mark(0, lx + 6.0, ly + 12.0, "#555", true))
        .add(
            Text::new("not valid")
                .set("x", lx + 18.0)
                .set("y", ly + 16.0),
        );
    ly += 42.0;
    legend = legend.add(
        Text::new("targets")
            .set("x", lx)
            .set("y", ly)
            .set("font-weight", "bold"),
    );
    for (first, second, fill) in [
        ("3d: < 30 msgs/op,", "median < 400 ms", "#e3f4e3"),
        ("3e: < 20 msgs/op,", "median < 1 s", "#fff3d6"),
    ] {
        ly += 16.0;
        legend = legend
            .add(
                Rectangle::new()
                    .set("x", lx)
                    .set("y", ly - 10.0)
                    .set("width", 12)
                    .set("height", 12)
                    .set("fill", fill)
                    .set("stroke", "#bbb"),
            )
            .add(Text::new(first).set("x", lx + 18.0).set("y", ly))
            .add(Text::new(second).set("x", lx + 18.0).set("y", ly + 14.0));
        ly += 14.0;
    }
    doc = doc.add(legend);
    doc.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dot(strategy: &str, preset: &str, x: f64, y: f64) -> Dot {
        Dot {
            strategy: strategy.into(),
            preset: preset.into(),
            x,
            y,
            p95: y * 1.2,
            max: y * 1.5,
            valid: true,
        }
    }

    #[test]
    fn the_frontier_keeps_only_undominated_points() {
        let d = vec![
            dot("a", "efficient", 1.0, 1000.0),
            dot("b", "efficient", 2.0, 200.0),
            dot("c", "latency", 3.0, 300.0),
            dot("d", "latency", 12.0, 80.0),
        ];
        assert_eq!(frontier(&d), vec![0, 1, 3], "c is beaten by b on both axes");
        let svg = pareto_svg("t <1>", &d, &MAELSTROM);
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("t &lt;1&gt;"));
        assert_eq!(svg.matches(r#"class="point""#).count(), 4);
        assert_eq!(svg.matches(r#"class="whisker""#).count(), 4);
        assert_eq!(
            svg.matches(r#"class="target""#).count(),
            2,
            "3d and 3e regions"
        );
        assert!(svg.contains(r#"class="frontier""#));
        assert!(svg.contains("max 1500 ms"), "values on hover");
    }

    #[test]
    fn labels_of_close_points_do_not_overprint() {
        // direct/efficient and direct/latency sit almost on top of each
        // other in the real 25-node sweep.
        let marks = [
            (300.0, 200.0),
            (301.0, 202.0),
            (302.0, 199.0),
            (500.0, 100.0),
        ];
        let widths = [90.0, 90.0, 90.0, 90.0];
        let placed = place_labels(&marks, &widths);
        let boxes: Vec<Bx> = placed
            .iter()
            .zip(widths)
            .map(|(&(x, y, anchor), w)| {
                let x0 = match anchor {
                    "start" => x,
                    "end" => x - w,
                    _ => x - w / 2.0,
                };
                Bx(x0, y - LINE_H + 3.0, w, LINE_H)
            })
            .collect();
        for i in 0..boxes.len() {
            for j in 0..i {
                assert!(
                    !boxes[i].overlaps(&boxes[j]),
                    "{i} and {j} overlap: {placed:?}"
                );
            }
        }
    }
}
