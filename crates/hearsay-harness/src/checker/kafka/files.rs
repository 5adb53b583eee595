//! The files Jepsen's kafka checker writes beside its result
//! (maelstrom-spec-more.md 3.5): `consume-counts.edn`, the unseen and
//! realtime-lag plots, `orders/<key>.svg` for the keys with errors, and
//! Elle's `elle/` for the cycles. Jepsen plots with gnuplot into PNG; these
//! are SVG (`unseen.svg`, `realtime-lag-{thread,key,thread-key}.svg`), each
//! group a line of its plot, the ten with the largest lag where there are
//! more (Jepsen also writes a file per group under `realtime-lag-*/`).

use super::lag::Lag;
use super::{Analysis, seq};
use crate::checker::Artifact;
use crate::edn::{Edn, map};
use crate::history::{History, OpType, Process};
use crate::report::pictures::chart::{Chart, Mark, Series};
use crate::report::pictures::digraph::escape;
use crate::report::pictures::series::faults;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// Points per line at most (evenly thinned beyond, the last kept).
const MAX_POINTS: usize = 2_000;
/// Lines per lag plot at most: the groups with the largest lag.
const MAX_GROUPS: usize = 10;
/// Rows and cells of an order picture at most.
const MAX_ROWS: usize = 5_000;
const MAX_CELLS: usize = 50_000;

/// Jepsen's `consume-counts`: per process that subscribed (not assigned),
/// how often each message was polled; the distribution of those counts and
/// the messages polled more than once. Maelstrom's clients only assign, so
/// both maps stay empty there.
pub(super) fn consume_counts(history: &History) -> Edn {
    let mut subscribed: BTreeSet<Process> = BTreeSet::new();
    let mut counts: BTreeMap<(Process, String, String), u64> = BTreeMap::new();
    for op in history.client_ops().filter(|o| o.kind == OpType::Ok) {
        match op.f {
            "subscribe" => {
                subscribed.insert(op.process);
            }
            "poll" | "txn" if subscribed.contains(&op.process) => {
                for mop in seq(&op.value).unwrap_or_default() {
                    let Some([_, Edn::Map(by_key)]) = seq(mop) else {
                        continue;
                    };
                    for (k, pairs) in by_key {
                        for p in seq(pairs).unwrap_or_default() {
                            let v = match seq(p) {
                                Some([_, m]) => m.compact(),
                                _ => p.compact(),
                            };
                            *counts.entry((op.process, k.compact(), v)).or_default() += 1;
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let mut dist: BTreeMap<u64, u64> = BTreeMap::new();
    let mut dups: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for ((_, k, v), n) in counts {
        *dist.entry(n).or_default() += 1;
        if n > 1 {
            dups.entry(k).or_default().insert(v, n);
        }
    }
    map([
        (
            "distribution",
            Edn::Map(
                dist.into_iter()
                    .map(|(c, n)| (Edn::from(c), Edn::from(n)))
                    .collect(),
            ),
        ),
        (
            "dup-counts",
            Edn::Map(
                dups.into_iter()
                    .map(|(k, vs)| {
                        let vs = vs
                            .into_iter()
                            .map(|(v, n)| (Edn::Symbol(v), Edn::from(n)))
                            .collect();
                        (Edn::Symbol(k), Edn::Map(vs))
                    })
                    .collect(),
            ),
        ),
    ])
}

/// Every `step`-th point and the last.
fn thin(points: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    let step = points.len().div_ceil(MAX_POINTS).max(1);
    if step == 1 {
        return points;
    }
    let last = points.last().copied();
    let mut out: Vec<(f64, f64)> = points.into_iter().step_by(step).collect();
    if let Some(l) = last
        && out.last() != Some(&l)
    {
        out.push(l);
    }
    out
}

/// Jepsen's `plot-unseen!`: per key, the messages acknowledged by ok sends
/// that no ok poll had returned yet, stacked, over time, with the start
/// and end of the final polls marked.
pub(super) fn unseen_plot(a: &Analysis, unseen: &[(u64, BTreeMap<u32, usize>)]) -> Option<String> {
    let keys: BTreeSet<u32> = unseen.iter().flat_map(|(_, m)| m.keys().copied()).collect();
    if keys.is_empty() {
        return None;
    }
    let mut keys: Vec<u32> = keys.into_iter().collect();
    keys.sort_by_cached_key(|k| super::sort_key(&a.key(*k)));
    // The first key on top, the last at the bottom, as Jepsen stacks them.
    let mut lines: BTreeMap<u32, Vec<(f64, f64)>> = BTreeMap::new();
    let mut top: f64 = 0.0;
    for (t, counts) in unseen {
        let mut sum = 0usize;
        for k in keys.iter().rev() {
            if let Some(n) = counts.get(k) {
                sum += n;
                lines
                    .entry(*k)
                    .or_default()
                    .push((*t as f64 / 1e9, sum as f64));
            }
        }
        top = top.max(sum as f64);
    }
    let mut series: Vec<Series> = keys
        .iter()
        .filter_map(|k| {
            lines.remove(k).map(|points| Series {
                name: format!("key {}", super::lag::key_text(&a.key(*k))),
                mark: Mark::Line,
                points: thin(points),
            })
        })
        .collect();
    if let Some((first, last)) = final_polls(a.history) {
        let top = top.max(1.0);
        series.push(Series {
            name: "final polls".into(),
            mark: Mark::Line,
            points: vec![(first, 0.0), (first, top), (last, top), (last, 0.0)],
        });
    }
    Chart {
        title: "kafka unseen".into(),
        x_label: "time (s)".into(),
        y_label: "Unseen messages".into(),
        log_y: false,
        y_range: None,
        shade: faults(a.history),
        series,
        note: None,
    }
    .svg()
    .ok()
}

/// The times (s) of the first and last op of the history's closing run of
/// polls, assigns and crashes (Jepsen's final-poll lines).
fn final_polls(h: &History) -> Option<(f64, f64)> {
    let tail: Vec<u64> = h
        .client_ops()
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .take_while(|o| matches!(o.f, "poll" | "assign" | "crash"))
        .map(|o| o.time)
        .collect();
    let (last, first) = (*tail.first()?, *tail.last()?);
    Some((first as f64 / 1e9, last as f64 / 1e9))
}

/// Jepsen's `plot-realtime-lags!`, one plot per grouping: by thread
/// (process modulo the concurrency), by key, and by both.
pub(super) fn lag_plots(h: &History, lags: &[Lag], concurrency: usize) -> Vec<Artifact> {
    let thread = |p: &Process| match p {
        Process::Client(n) => n % concurrency.max(1) as u64,
        Process::Nemesis => u64::MAX,
    };
    let group = |name: &str, l: &Lag| match name {
        "thread" => thread(&l.process).to_string(),
        "key" => l.key.clone(),
        _ => format!("{} {}", thread(&l.process), l.key),
    };
    let shade = faults(h);
    let mut out = Vec::new();
    for name in ["thread", "key", "thread-key"] {
        // Per group, the largest lag at each poll time.
        let mut points: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
        for l in lags {
            let p = points.entry(group(name, l)).or_default();
            match p.last_mut() {
                Some(last) if last.0 == l.time => last.1 = last.1.max(l.lag),
                _ => p.push((l.time, l.lag)),
            }
        }
        let total = points.len();
        let mut ranked: Vec<(String, Vec<(u64, u64)>)> = points.into_iter().collect();
        ranked.sort_by_key(|(_, ps)| std::cmp::Reverse(ps.iter().map(|p| p.1).max()));
        ranked.truncate(MAX_GROUPS);
        ranked.sort_by_cached_key(|(g, _)| natural(g));
        let series = ranked
            .into_iter()
            .map(|(g, ps)| Series {
                name: format!("{name} {g}"),
                mark: Mark::Line,
                points: thin(
                    ps.into_iter()
                        .map(|(t, l)| (t as f64 / 1e9, l as f64 / 1e9))
                        .collect(),
                ),
            })
            .collect::<Vec<_>>();
        if series.is_empty() {
            continue;
        }
        let note = (total > MAX_GROUPS)
            .then(|| format!("the {MAX_GROUPS} of {total} with the largest lag"));
        if let Ok(svg) = (Chart {
            title: format!("kafka realtime lag by {name}"),
            x_label: "time (s)".into(),
            y_label: "Lag (s)".into(),
            log_y: false,
            y_range: None,
            shade: shade.clone(),
            series,
            note,
        })
        .svg()
        {
            out.push(Artifact {
                path: format!("realtime-lag-{name}.svg"),
                body: svg,
            });
        }
    }
    out
}

/// Numbers in a group name compare as numbers ("2" before "10").
fn natural(s: &str) -> Vec<(u64, String)> {
    s.split(' ')
        .map(|p| match p.parse::<u64>() {
            Ok(n) => (n, String::new()),
            Err(_) => (u64::MAX, p.to_string()),
        })
        .collect()
}

/// Jepsen's `key-order-viz`: a row per op that sent or polled `k` at known
/// offsets, each message drawn at its offset (`w` sent, `r` polled); an
/// offset seen holding two or more messages is coloured per message, and
/// an indeterminate or failed op is outlined (orange, pink).
pub(super) fn order_svg(a: &Analysis, k: u32) -> String {
    let log = a.orders.get(&k);
    let clash = |o: i64| {
        log.and_then(|l| l.log.get(&o))
            .is_some_and(|vs| vs.len() > 1)
    };
    let x = |o: i64| (o.max(0) as f64 + 1.0) * 24.0;
    let mut rows = String::new();
    let (mut width, mut height, mut cells, mut row) = (0f64, 0f64, 0usize, 0usize);
    let mut cut = false;
    for op in &a.ops {
        let mut these: Vec<(char, i64, u32)> = Vec::new();
        for (key, pairs) in &op.reads {
            if *key == k {
                these.extend(pairs.iter().filter_map(|&(o, v)| o.map(|o| ('r', o, v))));
            }
        }
        if let Some((key, v, Some(o))) = op.write
            && key == k
        {
            these.push(('w', o, v));
        }
        if these.is_empty() {
            continue;
        }
        if row >= MAX_ROWS || cells + these.len() > MAX_CELLS {
            cut = true;
            break;
        }
        let y = (row as f64 + 1.0) * 14.0;
        let full = &a.history.ops()[op.index];
        let _ = write!(
            rows,
            "<g><title>{} {} by process {}\n{}</title>",
            op.kind.name(),
            op.f,
            op.process,
            escape(&full.value.compact())
        );
        let (lo, hi) = these.iter().fold((f64::MAX, 0f64), |(lo, hi), c| {
            (lo.min(x(c.1)), hi.max(x(c.1)))
        });
        let outline = match op.kind {
            OpType::Info => Some("#FFAA26"),
            OpType::Fail => Some("#FEB5DA"),
            _ => None,
        };
        if let Some(c) = outline {
            let _ = write!(
                rows,
                r#"<rect x="{:.0}" y="{:.0}" width="{:.0}" height="13" fill="none" stroke="{c}"/>"#,
                lo - 2.0,
                y - 10.0,
                hi - lo + 24.0
            );
        }
        for (wr, o, v) in these {
            let text = format!("{wr}{}", a.msg(v).compact());
            if clash(o) {
                let _ = write!(
                    rows,
                    r#"<rect x="{:.0}" y="{:.0}" width="22" height="12" fill="{}"/>"#,
                    x(o) - 1.0,
                    y - 10.0,
                    colour(v)
                );
            }
            let _ = write!(
                rows,
                r#"<text x="{:.0}" y="{y:.0}">{}</text>"#,
                x(o),
                escape(&text)
            );
            width = width.max(x(o) + 24.0);
            cells += 1;
        }
        rows.push_str("</g>\n");
        height = y;
        row += 1;
    }
    let note = if cut {
        height += 16.0;
        format!(r#"<text x="4" y="{height:.0}">... cut after {row} rows, {cells} messages</text>"#)
    } else {
        String::new()
    };
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"{w:.0}\" height=\"{h:.0}\">\n\
         <style>svg {{ font-family: Helvetica, Arial, sans-serif; font-size: 10px; }}</style>\n\
         {rows}{note}</svg>\n",
        w = width + 20.0,
        h = height + 20.0
    )
}

/// A light colour per message, the same wherever it is drawn.
fn colour(v: u32) -> String {
    let h = (u64::from(v).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) % 360;
    format!("hsl({h}, 70%, 80%)")
}

/// Keys whose order Jepsen draws: those in inconsistent-offsets,
/// duplicate, lost-write or G1a cases, and those with unseen messages.
pub(super) fn order_keys(a: &Analysis, unseen_at_end: &BTreeMap<u32, usize>) -> BTreeSet<u32> {
    let mut keys: BTreeSet<u32> = BTreeSet::new();
    for kind in ["inconsistent-offsets", "duplicate", "lost-write", "G1a"] {
        for c in a.errors.get(kind).into_iter().flatten() {
            keys.insert(c.key());
        }
    }
    keys.extend(
        unseen_at_end
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, _)| *k),
    );
    keys
}

/// A file name for a key: Jepsen's `%03d.svg` for an integer key, else the
/// key's text with anything but letters, digits, `-` and `_` replaced.
pub(super) fn order_path(key: &Edn) -> String {
    let text = super::lag::key_text(key);
    let name = match text.parse::<i64>() {
        Ok(n) => format!("{n:03}"),
        Err(_) => text
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect(),
    };
    format!("orders/{name}.svg")
}

/// Messages per key and unseen counts, as Jepsen's `unseen` series walks
/// them: one entry per ok send or poll.
pub(super) type UnseenSeries = Vec<(u64, BTreeMap<u32, usize>)>;
