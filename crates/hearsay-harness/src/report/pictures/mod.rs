//! The pictures of a run, written beside `results.edn`:
//!
//! - Maelstrom's: `latency-raw.svg`, `latency-quantiles.svg`, `rate.svg`
//!   (partitions shaded), `messages.svg` (the Lamport diagram) and
//!   `timeline.html`. Maelstrom draws the plots as PNG; SVG keeps hover
//!   text and scales in a browser.
//! - hearsay's own: `traffic.svg` / `traffic.csv` (who sends to whom),
//!   `node-rates.svg` (messages per second per node: hot spots, the hub)
//!   and, for broadcast and g-set, `convergence.svg` (share of nodes holding a value
//!   over the time since it was accepted); under `--sim` with a node that
//!   reports its peers (hearsay's own), `overlay.svg`.
//!
//! `:perf` and `:timeline` in results.edn list the files drawn.

pub(crate) mod chart;
pub mod digraph;
mod messages;
mod overlay;
pub mod series;
pub(crate) mod timeline;
mod traffic;

use super::Analysis;
use crate::checker::Validity;
use crate::config::TestConfig;
use crate::edn::{Edn, map};
use crate::runner::RunResult;
use anyhow::{Context, Result};
use chart::{Chart, Mark, Series};
use std::path::Path;

/// Dots on the raw latency plot at most (evenly thinned beyond).
pub const MAX_DOTS: usize = 20_000;
/// Node lines on the rates plot at most: the busiest, plus the mean.
pub const MAX_NODE_LINES: usize = 10;

/// The files drawn.
#[derive(Debug, Default, Clone)]
pub struct Drawn {
    pub files: Vec<&'static str>,
}

/// Draws every picture of `run` into `dir`, and records in `a` what was
/// drawn (a picture that fails makes `:perf` or `:timeline` unknown, as a
/// Jepsen checker that throws does).
pub fn draw(cfg: &TestConfig, run: &RunResult, dir: &Path, a: &mut Analysis) -> Drawn {
    let started = std::time::Instant::now();
    let mut d = Drawn::default();
    let mut errors: Vec<String> = Vec::new();
    let mut put = |d: &mut Drawn, name: &'static str, body: Result<String>| match body
        .and_then(|b| std::fs::write(dir.join(name), b).with_context(|| format!("writing {name}")))
    {
        Ok(()) => d.files.push(name),
        Err(e) => errors.push(format!("{name}: {e:#}")),
    };
    let ops = series::completed(&run.history);
    let shade = series::faults(&run.history);
    let end = ops.iter().map(|o| o.end_s).fold(1.0, f64::max);
    let dt = series::window_s(end);
    let plot = |c: Chart| c.svg().map_err(anyhow::Error::msg);

    // Raw latencies, by f and outcome, thinned to MAX_DOTS.
    let every = ops.len().div_ceil(MAX_DOTS).max(1);
    let mut raw: std::collections::BTreeMap<(&str, &str), Vec<(f64, f64)>> = Default::default();
    for o in ops.iter().step_by(every) {
        raw.entry((o.f, o.kind.name()))
            .or_default()
            .push((o.start_s, o.latency_ms()));
    }
    let named = |m: std::collections::BTreeMap<(&str, &str), Vec<(f64, f64)>>, mark| {
        m.into_iter()
            .map(|((f, k), points)| Series {
                name: format!("{f} {k}"),
                mark,
                points,
            })
            .collect::<Vec<_>>()
    };
    let time = "time (s)".to_string();
    put(
        &mut d,
        "latency-raw.svg",
        plot(Chart {
            title: "latency of every op, by invocation time".into(),
            x_label: time.clone(),
            y_label: "latency (ms)".into(),
            log_y: true,
            y_range: None,
            shade: shade.clone(),
            series: named(raw, Mark::Dots),
            note: (every > 1).then(|| format!("every {every}th op of {}", ops.len())),
        }),
    );
    put(
        &mut d,
        "latency-quantiles.svg",
        plot(Chart {
            title: format!("latency quantiles of ok ops, {dt:.0} s windows"),
            x_label: time.clone(),
            y_label: "latency (ms)".into(),
            log_y: true,
            y_range: None,
            shade: shade.clone(),
            series: named(series::quantiles(&ops, dt), Mark::Line),
            note: None,
        }),
    );
    put(
        &mut d,
        "rate.svg",
        plot(Chart {
            title: format!("completed ops per second, {dt:.0} s windows"),
            x_label: time.clone(),
            y_label: "ops/s".into(),
            log_y: false,
            y_range: None,
            shade: shade.clone(),
            series: named(series::rates(&ops, dt), Mark::Line),
            note: None,
        }),
    );
    let n = cfg.nodes.len();
    let per_node = series::node_rates(&run.record, n, run.origin_ns);
    let mut order: Vec<usize> = (0..n).collect();
    let total = |i: usize| per_node[i].iter().map(|p| p.1).sum::<f64>();
    order.sort_by(|&a, &b| total(b).total_cmp(&total(a)).then(a.cmp(&b)));
    let shown = order.len().min(MAX_NODE_LINES);
    let mut lines: Vec<Series> = order[..shown]
        .iter()
        .map(|&i| Series {
            name: cfg.nodes[i].clone(),
            mark: Mark::Line,
            points: per_node[i].clone(),
        })
        .collect();
    if n > shown {
        let mut sum: std::collections::BTreeMap<i64, f64> = Default::default();
        for p in per_node.iter().flatten() {
            *sum.entry((p.0 * 1000.0) as i64).or_default() += p.1;
        }
        lines.push(Series {
            name: format!("mean of all {n}"),
            mark: Mark::Line,
            points: sum
                .into_iter()
                .map(|(t, s)| (t as f64 / 1000.0, s / n as f64))
                .collect(),
        });
    }
    put(
        &mut d,
        "node-rates.svg",
        plot(Chart {
            title: "server messages sent per second, by node".into(),
            x_label: time.clone(),
            y_label: "msgs/s".into(),
            log_y: false,
            y_range: None,
            shade: shade.clone(),
            series: lines,
            note: (n > shown).then(|| format!("the {shown} busiest of {n} nodes, and the mean")),
        }),
    );
    if cfg.workload.set_add().is_some() {
        let seen = series::first_seen(&run.history, cfg, 200);
        let curve = series::convergence(&seen, 100);
        let never = seen
            .iter()
            .filter(|v| v.iter().any(Option::is_none))
            .count();
        put(
            &mut d,
            "convergence.svg",
            plot(Chart {
                title: "share of nodes whose reads include a value, after it was accepted".into(),
                x_label: "seconds after the broadcast was acknowledged".into(),
                y_label: "share of nodes".into(),
                log_y: false,
                y_range: Some((0.0, 1.0)),
                shade: vec![],
                series: vec![
                    Series {
                        name: "median value".into(),
                        mark: Mark::Line,
                        points: curve.iter().map(|c| (c.0, c.1)).collect(),
                    },
                    Series {
                        name: "worst value".into(),
                        mark: Mark::Line,
                        points: curve.iter().map(|c| (c.0, c.2)).collect(),
                    },
                ],
                note: Some(format!(
                    "{} values sampled; {never} never read on some node",
                    seen.len()
                )),
            }),
        );
    }
    if let Some(o) = &run.overlay {
        put(&mut d, "overlay.svg", Ok(overlay::svg(&cfg.nodes, o).0));
    }
    put(
        &mut d,
        "traffic.svg",
        Ok(traffic::svg(&run.record, &run.names, n).0),
    );
    put(
        &mut d,
        "traffic.csv",
        Ok(traffic::csv(&run.record, &run.names)),
    );
    let diagram = messages::diagram(&run.record, &run.names, run.origin_ns).0;
    put(&mut d, "messages.svg", Ok(diagram));
    let page = timeline::page(&ops, &format!("{} timeline", cfg.workload)).0;
    put(&mut d, "timeline.html", Ok(page));
    record(a, &d, &errors);
    if let serde_json::Value::Object(m) = &mut a.extras {
        m.insert(
            "pictures-ms".into(),
            serde_json::json!(started.elapsed().as_millis() as u64),
        );
    }
    d
}

/// `:perf` and `:timeline` as Maelstrom shapes them, each graph listing
/// the files drawn for it.
fn record(a: &mut Analysis, d: &Drawn, errors: &[String]) {
    let files = |names: &[&str]| {
        let listed: Vec<Edn> = names
            .iter()
            .filter(|n| d.files.contains(n))
            .map(|n| Edn::Str((*n).to_string()))
            .collect();
        let ok = listed.len() == names.len();
        let mut m = vec![(
            "valid?",
            if ok {
                Edn::Bool(true)
            } else {
                crate::edn::kw("unknown")
            },
        )];
        m.push(("files", Edn::Vector(listed)));
        map(m)
    };
    let latency = files(&["latency-raw.svg", "latency-quantiles.svg"]);
    let rate = files(&["rate.svg"]);
    let perf_valid = Validity::of(&latency).merge(Validity::of(&rate));
    let perf = map([
        ("latency-graph", latency),
        ("rate-graph", rate),
        ("valid?", perf_valid.edn()),
    ]);
    let timeline = files(&["timeline.html"]);
    let tl_valid = Validity::of(&timeline);
    if let Edn::Map(entries) = &mut a.results {
        for (k, v) in entries.iter_mut() {
            match k {
                Edn::Keyword(s) if s == "perf" => *v = perf.clone(),
                Edn::Keyword(s) if s == "timeline" => *v = timeline.clone(),
                _ => {}
            }
        }
        a.valid = a.valid.merge(perf_valid).merge(tl_valid);
        for (k, v) in entries.iter_mut() {
            if matches!(k, Edn::Keyword(s) if s == "valid?") {
                *v = a.valid.edn();
            }
        }
    }
    if let serde_json::Value::Object(m) = &mut a.extras {
        m.insert("pictures".into(), serde_json::json!(d.files));
        if !errors.is_empty() {
            m.insert("picture-errors".into(), serde_json::json!(errors));
        }
    }
}
