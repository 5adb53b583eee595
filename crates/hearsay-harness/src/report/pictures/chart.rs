//! One kind of chart, drawn with plotters into SVG: series of points or
//! lines over time, partitions shaded, a legend, and an optional log-scale
//! y axis. Every time plot of a run is one of these.

use plotters::prelude::*;

/// How a series is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    Dots,
    Line,
}

#[derive(Clone, Debug)]
pub struct Series {
    pub name: String,
    pub mark: Mark,
    pub points: Vec<(f64, f64)>,
}

#[derive(Clone, Debug)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub log_y: bool,
    /// Fixed y range (e.g. 0..1 for shares); otherwise from the data.
    pub y_range: Option<(f64, f64)>,
    /// Shaded x intervals (partitions grey, pauses blue, kills red).
    pub shade: Vec<(f64, f64, super::series::Fault)>,
    pub series: Vec<Series>,
    /// Said under the title (what was thinned, for instance).
    pub note: Option<String>,
}

/// Ten colours that stay apart on white (Tableau's palette).
pub const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

const SIZE: (u32, u32) = (960, 540);

impl Chart {
    /// The chart as an SVG document.
    pub fn svg(&self) -> Result<String, String> {
        let mut buf = String::new();
        self.draw(&mut buf)
            .map_err(|e| format!("{}: {e}", self.title))?;
        Ok(buf)
    }

    fn y(&self, v: f64) -> f64 {
        if !v.is_finite() {
            f64::NAN
        } else if self.log_y {
            v.max(0.1).log10()
        } else {
            v
        }
    }

    fn draw(&self, buf: &mut String) -> Result<(), Box<dyn std::error::Error + '_>> {
        let finite = |v: &f64| v.is_finite();
        let xs = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0));
        let x_max = xs.filter(finite).fold(1.0, f64::max);
        let x_max = self.shade.iter().map(|s| s.1).fold(x_max, f64::max);
        let (y_min, y_max) = match self.y_range {
            Some(r) => (self.y(r.0), self.y(r.1)),
            None => {
                let ys: Vec<f64> = self
                    .series
                    .iter()
                    .flat_map(|s| s.points.iter().map(|p| self.y(p.1)))
                    .filter(finite)
                    .collect();
                let lo = if self.log_y {
                    ys.iter().copied().fold(f64::INFINITY, f64::min).floor()
                } else {
                    0.0
                };
                let hi = ys.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let lo = if lo.is_finite() { lo } else { 0.0 };
                let hi = if hi.is_finite() && hi > lo {
                    hi
                } else {
                    lo + 1.0
                };
                (
                    lo,
                    if self.log_y {
                        hi.ceil().max(lo + 1.0)
                    } else {
                        hi * 1.05
                    },
                )
            }
        };
        let root = SVGBackend::with_string(buf, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        let caption = match &self.note {
            Some(n) => format!("{} ({n})", self.title),
            None => self.title.clone(),
        };
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(42)
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..x_max, y_min..y_max)?;
        let log = self.log_y;
        let fmt_y = move |v: &f64| {
            if log {
                let x = 10f64.powf(*v);
                if x >= 1.0 {
                    format!("{x:.0}")
                } else {
                    format!("{x:.1}")
                }
            } else if v.abs() >= 100.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.2}")
            }
        };
        chart
            .configure_mesh()
            .x_desc(self.x_label.as_str())
            .y_desc(self.y_label.as_str())
            .y_label_formatter(&fmt_y)
            .y_labels(if log { (y_max - y_min) as usize + 1 } else { 8 })
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        let grey = RGBColor(120, 120, 120).mix(0.15);
        // Maelstrom's pause and kill colours, #A0B1E9 and #E9A4A0.
        let blue = RGBColor(0xA0, 0xB1, 0xE9).mix(0.35);
        let red = RGBColor(0xE9, 0xA4, 0xA0).mix(0.35);
        chart.draw_series(self.shade.iter().map(|&(a, b, f)| {
            let fill = match f {
                super::series::Fault::Partition => grey,
                super::series::Fault::Pause => blue,
                super::series::Fault::Kill => red,
            };
            Rectangle::new([(a, y_min), (b, y_max)], fill.filled())
        }))?;
        for (i, s) in self.series.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let pts: Vec<(f64, f64)> = s
                .points
                .iter()
                .map(|&(x, y)| (x, self.y(y)))
                .filter(|p| p.0.is_finite() && p.1.is_finite())
                .collect();
            match s.mark {
                Mark::Dots => {
                    chart
                        .draw_series(
                            pts.iter()
                                .map(|&p| Circle::new(p, 2, color.mix(0.6).filled())),
                        )?
                        .label(s.name.as_str())
                        .legend(move |(x, y)| Circle::new((x + 8, y), 4, color.filled()));
                }
                Mark::Line => {
                    chart
                        .draw_series(LineSeries::new(pts, color.stroke_width(2)))?
                        .label(s.name.as_str())
                        .legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                        });
                }
            }
        }
        if !self.series.is_empty() {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.4))
                .draw()?;
        }
        root.present()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_draws_its_series_legend_and_shading() {
        let c = Chart {
            title: "latency".into(),
            x_label: "time (s)".into(),
            y_label: "ms".into(),
            log_y: true,
            y_range: None,
            shade: vec![(1.0, 2.0, super::super::series::Fault::Partition)],
            series: vec![
                Series {
                    name: "read ok".into(),
                    mark: Mark::Dots,
                    points: vec![(0.5, 3.0), (1.5, 300.0), (2.5, f64::NAN)],
                },
                Series {
                    name: "broadcast ok".into(),
                    mark: Mark::Line,
                    points: vec![(0.5, 1.0), (2.0, 10.0)],
                },
            ],
            note: None,
        };
        let svg = c.svg().unwrap();
        assert!(svg.contains("read ok") && svg.contains("broadcast ok"));
        assert!(svg.contains("time (s)"));
        assert_eq!(
            svg.matches("<circle").count(),
            2 + 1,
            "two dots and a legend mark"
        );
        // An empty chart still draws (no series, no data).
        let empty = Chart {
            series: vec![],
            shade: vec![],
            ..c
        };
        assert!(empty.svg().unwrap().contains("latency"));
    }
}
