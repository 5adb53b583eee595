//! A small SVG scatter plot on log-log axes with the Pareto frontier (no
//! other point has both fewer messages and lower latency) drawn through.

use std::fmt::Write as _;

pub struct Dot {
    pub label: String,
    /// msgs-per-op
    pub x: f64,
    /// median stable latency, ms
    pub y: f64,
    pub valid: bool,
}

const W: f64 = 760.0;
const H: f64 = 520.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 60.0;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Decades covering [lo, hi] on a log axis.
fn decades(lo: f64, hi: f64) -> (f64, f64) {
    let lo = 10f64.powf(lo.max(1e-3).log10().floor());
    let hi = 10f64.powf(hi.max(lo * 10.0).log10().ceil());
    (lo, hi)
}

/// Points on the frontier, sorted by x.
pub fn frontier(dots: &[Dot]) -> Vec<usize> {
    let ok: Vec<usize> = (0..dots.len())
        .filter(|&i| dots[i].x.is_finite() && dots[i].y.is_finite())
        .collect();
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

pub fn pareto_svg(title: &str, dots: &[Dot]) -> String {
    let finite: Vec<&Dot> = dots
        .iter()
        .filter(|d| d.x.is_finite() && d.y.is_finite() && d.x > 0.0)
        .collect();
    let (x0, x1) = decades(
        finite
            .iter()
            .map(|d| d.x)
            .fold(f64::INFINITY, f64::min)
            .min(1.0),
        finite.iter().map(|d| d.x).fold(0.0, f64::max).max(10.0),
    );
    let (y0, y1) = decades(
        finite
            .iter()
            .map(|d| d.y.max(1.0))
            .fold(f64::INFINITY, f64::min)
            .min(100.0),
        finite.iter().map(|d| d.y).fold(0.0, f64::max).max(1000.0),
    );
    let px =
        |x: f64| LEFT + (x.log10() - x0.log10()) / (x1.log10() - x0.log10()) * (W - LEFT - RIGHT);
    let py = |y: f64| {
        H - BOTTOM
            - (y.max(1.0).log10() - y0.log10()) / (y1.log10() - y0.log10()) * (H - TOP - BOTTOM)
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="24" text-anchor="middle" font-size="14">{}</text>"#,
        W / 2.0,
        escape(title)
    );
    // Grid and ticks at 1, 2, 5 per decade.
    let mut d = x0;
    while d <= x1 * 1.0001 {
        for m in [1.0, 2.0, 5.0] {
            let v = d * m;
            if v > x1 * 1.0001 {
                break;
            }
            let x = px(v);
            let _ = writeln!(
                s,
                r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="#eee"/>"##,
                H - BOTTOM
            );
            let _ = writeln!(
                s,
                r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{v}</text>"#,
                H - BOTTOM + 16.0
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
            let y = py(v);
            let _ = writeln!(
                s,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#eee"/>"##,
                W - RIGHT
            );
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{v}</text>"#,
                LEFT - 6.0,
                y + 4.0
            );
        }
        d *= 10.0;
    }
    let _ = writeln!(
        s,
        r##"<rect x="{LEFT}" y="{TOP}" width="{:.1}" height="{:.1}" fill="none" stroke="#888"/>"##,
        W - LEFT - RIGHT,
        H - TOP - BOTTOM
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">msgs-per-op (servers), log scale</text>"#,
        (LEFT + W - RIGHT) / 2.0,
        H - 16.0
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate(18,{}) rotate(-90)" text-anchor="middle">median stable latency (ms), log scale</text>"#,
        (TOP + H - BOTTOM) / 2.0
    );
    let f = frontier(dots);
    if f.len() > 1 {
        let path: Vec<String> = f
            .iter()
            .map(|&i| format!("{:.1},{:.1}", px(dots[i].x), py(dots[i].y)))
            .collect();
        let _ = writeln!(
            s,
            r##"<polyline points="{}" fill="none" stroke="#3a7" stroke-width="2" stroke-dasharray="6 4"/>"##,
            path.join(" ")
        );
    }
    for (i, d) in dots.iter().enumerate() {
        if !(d.x.is_finite() && d.y.is_finite() && d.x > 0.0) {
            continue;
        }
        let (x, y) = (px(d.x), py(d.y));
        let colour = if !d.valid {
            "#c33"
        } else if f.contains(&i) {
            "#2a6"
        } else {
            "#36c"
        };
        let _ = writeln!(
            s,
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="5" fill="{colour}"/>"#
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}">{}{}</text>"#,
            x + 8.0,
            y - 6.0,
            escape(&d.label),
            if d.valid { "" } else { " (invalid)" }
        );
    }
    let _ = writeln!(
        s,
        r##"<text x="{LEFT}" y="{}" fill="#2a6">green: Pareto frontier (nothing beats it on both axes)</text>"##,
        TOP - 8.0
    );
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dot(label: &str, x: f64, y: f64) -> Dot {
        Dot {
            label: label.into(),
            x,
            y,
            valid: true,
        }
    }

    #[test]
    fn the_frontier_keeps_only_undominated_points() {
        let d = vec![
            dot("a", 1.0, 1000.0),
            dot("b", 2.0, 200.0),
            dot("c", 3.0, 300.0),
            dot("d", 12.0, 80.0),
        ];
        assert_eq!(frontier(&d), vec![0, 1, 3], "c is beaten by b on both axes");
        let svg = pareto_svg("t <1>", &d);
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("t &lt;1&gt;"));
        assert_eq!(svg.matches("<circle").count(), 4);
        assert!(svg.contains("<polyline"));
    }
}
