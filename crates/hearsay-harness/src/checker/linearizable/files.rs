//! The files Jepsen's independent checker writes per key beside the result
//! (maelstrom-spec-more.md 2.4): `independent/<k>/results.edn`,
//! `history.edn` (the key's ops, values without the key), `timeline.html`,
//! and for a key that is not linearizable `linear.svg`, the picture
//! Maelstrom's Raft chapter sends its readers to: the ops the search could
//! not order, as bars in time per process, the one it failed on in red, and
//! Knossos' final paths under them.

use super::{Budget, check_independent_cas};
use crate::checker::Artifact;
use crate::edn::Edn;
use crate::history::{History, Op, OpType, Process};
use crate::report::pictures::digraph::escape;
use crate::report::pictures::{series, timeline};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// The verdict, and every key's files.
pub fn check_files(history: &History, budget: Budget) -> (Edn, Vec<Artifact>) {
    let result = check_independent_cas(history, budget);
    let mut out = Vec::new();
    let Some(Edn::Map(results)) = result.get("results") else {
        return (result, out);
    };
    let subs = by_key(history);
    for (key, r) in results {
        let dir = format!("independent/{}", file_name(key));
        out.push(Artifact {
            path: format!("{dir}/results.edn"),
            body: r.pretty() + "\n",
        });
        let sub = subs
            .get(&key.compact())
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut text = String::new();
        for op in sub {
            let _ = writeln!(text, "{}", op.to_edn().compact());
        }
        out.push(Artifact {
            path: format!("{dir}/history.edn"),
            body: text,
        });
        let (page, _) = timeline::page(
            &series::completed(&reindexed(sub)),
            &format!("lin-kv key {}", key.compact()),
        );
        out.push(Artifact {
            path: format!("{dir}/timeline.html"),
            body: page,
        });
        if let Some(lin) = r.get("linearizable")
            && lin.get("valid?") == Some(&Edn::Bool(false))
        {
            out.push(Artifact {
                path: format!("{dir}/linear.svg"),
                body: linear_svg(history, lin),
            });
        }
    }
    (result, out)
}

/// Each key's client ops (by the key's printed form), the value without
/// the key, the original indices kept (Jepsen's `independent/subhistory`).
fn by_key(history: &History) -> BTreeMap<String, Vec<Op>> {
    let mut subs: BTreeMap<String, Vec<Op>> = BTreeMap::new();
    for op in history.client_ops() {
        if let Edn::Vector(kv) = &op.value
            && kv.len() == 2
        {
            let mut o = op.clone();
            o.value = kv[1].clone();
            subs.entry(kv[0].compact()).or_default().push(o);
        }
    }
    subs
}

/// A sub-history as a history of its own (indices renumbered, completions
/// pointing at their invocations), for the timeline.
fn reindexed(ops: &[Op]) -> History {
    let mut h = History::default();
    let mut new_of: BTreeMap<usize, usize> = BTreeMap::new();
    for op in ops {
        let mut o = op.clone();
        o.invocation = op.invocation.and_then(|i| new_of.get(&i).copied());
        let old = op.index;
        let i = h.push(o);
        new_of.insert(old, i);
    }
    h
}

/// A key as a directory name: its printed form, with anything but
/// letters, digits, `-`, `_` and `.` replaced.
fn file_name(key: &Edn) -> String {
    let text = match key {
        Edn::Str(s) => s.clone(),
        other => other.compact(),
    };
    let name: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() || name.chars().all(|c| c == '.') {
        format!("_{name}")
    } else {
        name
    }
}

/// The `:index` of every op map the invalid result names.
fn named(lin: &Edn, into: &mut BTreeSet<usize>) {
    match lin {
        Edn::Map(m) => {
            if let (Some(Edn::Int(i)), Some(_)) = (lin.get("index"), lin.get("f")) {
                into.insert(*i as usize);
            }
            for (_, v) in m {
                named(v, into);
            }
        }
        Edn::Vector(xs) | Edn::List(xs) | Edn::Set(xs) => {
            for x in xs {
                named(x, into);
            }
        }
        _ => {}
    }
}

const ROW: f64 = 34.0;
const LEFT: f64 = 110.0;
const WIDTH: f64 = 900.0;

/// Knossos' `linear.svg`, in hearsay's drawing: every op the failure names
/// (the failed op, the last ok before it, the stuck configurations' ops),
/// a bar from invocation to completion in its process's row, and the
/// final paths spelled out below.
fn linear_svg(history: &History, lin: &Edn) -> String {
    let mut ids = BTreeSet::new();
    named(lin, &mut ids);
    let failed = match lin.get("op").and_then(|o| o.get("index")) {
        Some(Edn::Int(i)) => Some(*i as usize),
        _ => None,
    };
    // (process, invoked ns, completed ns or None, op text, type, index)
    let mut bars = Vec::new();
    for &i in &ids {
        let Some(done) = history.get(i) else { continue };
        let Process::Client(p) = done.process else {
            continue;
        };
        let start = done
            .invocation
            .and_then(|j| history.get(j))
            .map_or(done.time, |inv| inv.time);
        let value = match &done.value {
            Edn::Vector(kv) if kv.len() == 2 => kv[1].compact(),
            v => v.compact(),
        };
        let end = (done.kind != OpType::Info).then_some(done.time);
        bars.push((p, start, end, format!("{} {value}", done.f), done.kind, i));
    }
    let t0 = bars.iter().map(|b| b.1).min().unwrap_or(0);
    let t1 = bars
        .iter()
        .map(|b| b.2.unwrap_or(b.1))
        .max()
        .unwrap_or(t0)
        .max(t0 + 1);
    let x = |t: u64| LEFT + t.saturating_sub(t0) as f64 / (t1 - t0) as f64 * WIDTH;
    let processes: Vec<u64> = bars
        .iter()
        .map(|b| b.0)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let row = |p: u64| processes.iter().position(|q| *q == p).unwrap_or(0) as f64;
    let mut body = String::new();
    let _ = writeln!(
        body,
        r#"<text x="10" y="20" font-weight="bold">Not linearizable: no order of these ops fits a register ({:.3} s to {:.3} s)</text>"#,
        t0 as f64 / 1e9,
        t1 as f64 / 1e9
    );
    for (i, p) in processes.iter().enumerate() {
        let _ = writeln!(
            body,
            r#"<text x="10" y="{:.0}">process {p}</text>"#,
            50.0 + i as f64 * ROW + 14.0
        );
    }
    for (p, start, end, text, kind, index) in &bars {
        let y = 50.0 + row(*p) * ROW;
        let x0 = x(*start);
        // An indeterminate op runs to the end of the picture.
        let x1 = end.map_or(LEFT + WIDTH + 20.0, x).max(x0 + 4.0);
        let fill = match kind {
            OpType::Ok => "#6DB6FE",
            OpType::Info => "#FFAA26",
            _ => "#FEB5DA",
        };
        let stroke = if Some(*index) == failed {
            r##" stroke="#D0021B" stroke-width="3""##
        } else {
            ""
        };
        let _ = writeln!(
            body,
            r#"<g><title>index {index}: {t}</title><rect x="{x0:.1}" y="{y:.0}" width="{w:.1}" height="22" rx="2" fill="{fill}"{stroke}/><text x="{tx:.1}" y="{ty:.0}">{t}</text></g>"#,
            w = x1 - x0,
            t = escape(text),
            tx = x0 + 3.0,
            ty = y + 15.0
        );
    }
    let mut y = 50.0 + processes.len() as f64 * ROW + 20.0;
    let _ = writeln!(
        body,
        r#"<text x="10" y="{y:.0}" font-weight="bold">Final paths (Knossos): from a state the search reached, each order of the ops still pending ends in an inconsistent step</text>"#
    );
    let paths = match lin.get("final-paths") {
        Some(Edn::Vector(ps)) | Some(Edn::List(ps)) => ps.clone(),
        _ => Vec::new(),
    };
    for path in &paths {
        y += 18.0;
        let steps = match path {
            Edn::Vector(s) | Edn::List(s) => s.clone(),
            _ => Vec::new(),
        };
        let line: Vec<String> = steps
            .iter()
            .map(|s| {
                let op = s.get("op").map_or(String::new(), |o| {
                    format!(
                        "{} {}",
                        o.get("f").map_or(String::new(), |f| f
                            .compact()
                            .trim_start_matches(':')
                            .to_string()),
                        o.get("value").map_or(String::new(), Edn::compact)
                    )
                });
                let model = match s.get("model") {
                    Some(Edn::Keyword(k)) => k.clone(),
                    Some(m) => m
                        .get("value")
                        .map_or(m.compact(), |v| format!("register {}", v.compact())),
                    None => String::new(),
                };
                format!("{op} -> {model}")
            })
            .collect();
        let _ = writeln!(
            body,
            r#"<text x="20" y="{y:.0}">{}</text>"#,
            escape(&line.join(",  "))
        );
    }
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"{w:.0}\" height=\"{h:.0}\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n{body}</svg>\n",
        w = LEFT + WIDTH + 60.0,
        h = y + 30.0
    )
}
