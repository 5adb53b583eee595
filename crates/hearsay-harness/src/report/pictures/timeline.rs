//! `timeline.html`: Jepsen's timeline. A column per client process, a bar
//! per op from invocation to completion, coloured by outcome, the op on
//! hover. Bounded to the first `MAX_OPS` ops, with the cut stated.

use super::digraph::escape;
use super::series::Completed;
use crate::history::OpType;
use std::collections::BTreeMap;
use svg::Document;
use svg::node::element::{Group, Line, Rectangle, Style, Text, Title};

pub const MAX_OPS: usize = 10_000;
const COL: f64 = 90.0;
const TOP: f64 = 40.0;

fn fill(kind: OpType) -> &'static str {
    match kind {
        OpType::Ok => "#6DB6FE",
        OpType::Info => "#FFAA26",
        OpType::Fail => "#FEB5DA",
        OpType::Invoke => "#eeeeee",
    }
}

/// The page, and how many op bars it has.
pub fn page(ops: &[Completed], title: &str) -> (String, usize) {
    let shown = &ops[..ops.len().min(MAX_OPS)];
    let processes: BTreeMap<u64, usize> = {
        let mut ps: Vec<u64> = shown.iter().map(|o| o.process).collect();
        ps.sort_unstable();
        ps.dedup();
        ps.into_iter().enumerate().map(|(i, p)| (p, i)).collect()
    };
    let end = shown.iter().map(|o| o.end_s).fold(0.0, f64::max).max(0.001);
    // About 100 px per second, at most 20,000 px in all.
    let px_per_s = (20_000.0 / end).min(100.0);
    let height = TOP + end * px_per_s + 40.0;
    let width = 80.0 + processes.len().max(1) as f64 * COL;
    let y = |t: f64| TOP + t * px_per_s;
    let mut doc = Document::new()
        .set("width", width)
        .set("height", height)
        .set("viewBox", format!("0 0 {width} {height}"))
        .add(Style::new(
            "svg{font-family:Helvetica,Arial,sans-serif;font-size:11px}\
             .op:hover rect{stroke:#000;stroke-width:1.5}",
        ));
    let mut axis = Group::new().set("class", "axis");
    let step = if end > 60.0 { 10.0 } else { 1.0 };
    let mut t = 0.0;
    while t <= end {
        axis = axis
            .add(
                Line::new()
                    .set("x1", 60)
                    .set("x2", width)
                    .set("y1", y(t))
                    .set("y2", y(t))
                    .set("stroke", "#eee"),
            )
            .add(
                Text::new(format!("{t:.0} s"))
                    .set("x", 54)
                    .set("y", y(t) + 4.0)
                    .set("text-anchor", "end"),
            );
        t += step;
    }
    for (p, i) in &processes {
        axis = axis.add(
            Text::new(format!("process {p}"))
                .set("class", "process")
                .set("x", 80.0 + *i as f64 * COL + COL / 2.0)
                .set("y", TOP - 12.0)
                .set("text-anchor", "middle"),
        );
    }
    doc = doc.add(axis);
    let mut bars = Group::new().set("class", "ops");
    for o in shown {
        let col = processes[&o.process];
        let h = ((o.end_s - o.start_s) * px_per_s).max(2.0);
        bars = bars.add(
            Group::new()
                .set("class", "op")
                .set("data-f", o.f)
                .set("data-type", o.kind.name())
                .add(Title::new(format!(
                    "{} {} {:.1} ms\n{}",
                    o.f,
                    o.kind.name(),
                    o.latency_ms(),
                    o.text
                )))
                .add(
                    Rectangle::new()
                        .set("x", 80.0 + col as f64 * COL + 4.0)
                        .set("y", y(o.start_s))
                        .set("width", COL - 8.0)
                        .set("height", h)
                        .set("rx", 2)
                        .set("fill", fill(o.kind)),
                ),
        );
    }
    doc = doc.add(bars);
    let cut = ops.len() - shown.len();
    let note = if cut > 0 {
        format!(
            "<p class=\"cut\">{cut} later ops not shown (the timeline stops after the first {MAX_OPS}).</p>"
        )
    } else {
        String::new()
    };
    let html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title>\
         <style>body{{font-family:Helvetica,Arial,sans-serif;margin:16px}}</style></head>\
         <body><h1>{t}</h1><p>One column per client process, one bar per op from invocation to \
         completion: <span style=\"background:#6DB6FE\">ok</span> \
         <span style=\"background:#FFAA26\">info</span> \
         <span style=\"background:#FEB5DA\">fail</span>. Hover for the op.</p>{note}\n{doc}\n</body></html>\n",
        t = escape(title),
    );
    (html, shown.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_bar_per_op_in_a_column_per_process() {
        let op = |p: u64, a: f64, b: f64, kind| Completed {
            f: "read",
            kind,
            process: p,
            start_s: a,
            end_s: b,
            text: "0 :invoke :read nil <x>".into(),
        };
        let ops = vec![
            op(0, 0.0, 0.1, OpType::Ok),
            op(1, 0.2, 5.2, OpType::Info),
            op(0, 0.3, 0.4, OpType::Fail),
        ];
        let (html, bars) = page(&ops, "echo <run>");
        assert_eq!(bars, 3);
        assert_eq!(html.matches(r#"class="op""#).count(), 3);
        assert_eq!(html.matches(r#"class="process""#).count(), 2);
        assert!(html.contains("&lt;x&gt;") && html.contains("echo &lt;run&gt;"));
        assert!(!html.contains("not shown"));
    }
}
