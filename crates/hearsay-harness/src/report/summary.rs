//! The one-screen summary printed at the end of a run.

use super::Analysis;
use crate::checker::Validity;
use crate::config::TestConfig;
use crate::edn::Edn;
use std::fmt::Write;
use std::path::Path;

fn int(e: Option<&Edn>) -> Option<i64> {
    match e {
        Some(Edn::Int(i)) => Some(*i),
        _ => None,
    }
}

fn num(e: Option<&Edn>) -> String {
    match e {
        Some(Edn::Float32(f)) => format!("{f:.3}"),
        Some(other) => other.compact(),
        None => "n/a".into(),
    }
}

pub fn summary(cfg: &TestConfig, a: &Analysis, dir: &Path) -> String {
    let r = &a.results;
    let mut s = String::new();
    let verdict = match a.valid {
        Validity::True => "Everything looks good! ヽ(‘ー`)ノ",
        Validity::False => "Analysis invalid! (ﾉಥ益ಥ）ﾉ ┻━┻",
        Validity::Unknown => "Errors occurred during analysis, but no anomalies found. ಠ~ಠ",
    };
    let _ = writeln!(s, "\n{verdict}\n");
    let _ = writeln!(s, "  valid?          {}", a.valid.edn().compact());
    if let Some(st) = r.get("stats") {
        let _ = writeln!(
            s,
            "  ops             {} completed: {} ok, {} fail, {} info",
            num(st.get("count")),
            num(st.get("ok-count")),
            num(st.get("fail-count")),
            num(st.get("info-count"))
        );
        if let Some(Edn::Map(by_f)) = st.get("by-f") {
            for (f, v) in by_f {
                let exempt = matches!(f, Edn::Keyword(k) if crate::checker::stats::NEVER_OK.contains(&k.as_str()));
                if v.get("valid?") == Some(&Edn::Bool(false)) && !exempt {
                    let _ = writeln!(
                        s,
                        "                  {} never succeeded: the stats checker fails the test",
                        f.compact()
                    );
                }
            }
        }
    }
    if let Some(n) = r.get("net") {
        let _ = writeln!(
            s,
            "  msgs-per-op     servers {}, all {}   ({} server messages)",
            num(n.get("servers").and_then(|x| x.get("msgs-per-op"))),
            num(n.get("all").and_then(|x| x.get("msgs-per-op"))),
            num(n.get("servers").and_then(|x| x.get("msg-count")))
        );
    }
    let w = r.get("workload");
    let h = a.headline();
    if h.median_ms.is_some() {
        let f = |v: Option<i64>| v.map_or("n/a".into(), |v| v.to_string());
        let _ = writeln!(
            s,
            "  stable latency  median {} ms, p95 {} ms, p99 {} ms, max {} ms",
            f(h.median_ms),
            f(h.p95_ms),
            f(h.p99_ms),
            f(h.max_ms)
        );
    }
    if let Some(w) = w
        && let Some(lost) = int(w.get("lost-count"))
    {
        let _ = writeln!(
            s,
            "  lost            {} of {} attempted (never read {}){}",
            lost,
            num(w.get("attempt-count")),
            num(w.get("never-read-count")),
            if lost > 0 {
                format!(": {}", w.get("lost").map(Edn::compact).unwrap_or_default())
            } else {
                String::new()
            }
        );
    }
    if let Some(w) = w
        && let Some(Edn::Map(keys)) = w.get("results")
    {
        let _ = writeln!(s, "{}", linearizable_line(keys));
    }
    if let Some(w) = w
        && let Some(Edn::List(types)) = w.get("anomaly-types")
    {
        let _ = writeln!(s, "{}", anomalies_line(w, types));
    }
    if let Some(w) = w
        && let Some(Edn::List(types)) = w.get("error-types")
    {
        let _ = writeln!(s, "{}", kafka_errors_line(w, types));
    }
    if let Some(Edn::Vector(xs)) = r.get("exceptions").and_then(|e| e.get("exceptions")) {
        let total: i64 = xs.iter().filter_map(|x| int(x.get("count"))).sum();
        let _ = writeln!(
            s,
            "  exceptions      {total} ops crashed (indeterminate); see :exceptions in results.edn"
        );
        if let Some(Edn::Map(ex)) = xs.first().and_then(|x| x.get("example")) {
            for (k, v) in ex {
                if k.compact() == ":error" {
                    let text = v.compact();
                    let short: String = text.chars().take(240).collect();
                    let _ = writeln!(
                        s,
                        "                  e.g. {short}{}",
                        if text.len() > 240 { "..." } else { "" }
                    );
                }
            }
        }
    }
    if let Some(c) = a.extras.get("convergence").filter(|c| !c.is_null()) {
        let from = c["from"].as_str().unwrap_or("last update");
        let _ = match c["after-last-update-ms"].as_i64() {
            Some(ms) => writeln!(
                s,
                "  converged       every node read its final value {ms} ms after the {from} ({} probe reads)",
                c["probe-reads"]
            ),
            None if c["nodes-never-answering"].as_u64().unwrap_or(0) > 0 => writeln!(
                s,
                "  converged       unknown: {} node(s) never answered a probe read ({} probe reads)",
                c["nodes-never-answering"], c["probe-reads"]
            ),
            None => writeln!(
                s,
                "  converged       no: the nodes' last probe reads differ ({} probe reads)",
                c["probe-reads"]
            ),
        };
    }
    let j = &a.extras["journal"];
    if let Some(cut) = j["cut-events"].as_u64().filter(|&c| c > 0) {
        let _ = writeln!(
            s,
            "  net journal     cut at {:.1} MB: the last {cut} sends and receives are not in net-journal.jsonl (every count and checker saw them; --journal-limit)",
            j["bytes"].as_u64().unwrap_or(0) as f64 / 1048576.0
        );
    }
    if let Some(lag) = a.extras.get("issue-lag-ms").filter(|l| !l.is_null()) {
        let _ = writeln!(
            s,
            "  issue lag       median {} ms, p99 {} ms, max {} ms (how late ops went out against their schedule)",
            lag["0.5"], lag["0.99"], lag["1"]
        );
    }
    if let Some(ws) = a
        .extras
        .get("warnings")
        .and_then(|w| w.as_array())
        .filter(|w| !w.is_empty())
    {
        for wv in ws {
            let _ = writeln!(
                s,
                "  WARNING         {}",
                wv["text"].as_str().unwrap_or_default()
            );
        }
    }
    let _ = writeln!(
        s,
        "  seed            {} (rerun with --seed {})",
        cfg.seed, cfg.seed
    );
    // The simulator promises the same trace for the same seed: show it
    // where a user compares two runs.
    if a.extras["executor"] == "sim"
        && let Some(t) = a.extras["trace-hash"].as_str()
    {
        let _ = writeln!(s, "  trace           {t} (the same for the same seed)");
    }
    let _ = writeln!(
        s,
        "  report          {}/results.edn (also results.json, history.txt, node-logs/)",
        dir.display()
    );
    // Where the checker explained itself: Elle's cycles, kafka's orders,
    // lin-kv's pictures of the keys it could not linearize.
    let mut own: Vec<String> = a
        .files
        .iter()
        .filter_map(|f| match f.path.split_once('/') {
            Some((d, _)) if d == "elle" || d == "orders" => Some(format!("{d}/")),
            Some(("independent", _)) if f.path.ends_with("/linear.svg") => Some(f.path.clone()),
            _ => None,
        })
        .collect();
    own.sort_unstable();
    own.dedup();
    if !own.is_empty() {
        let more = own.len().saturating_sub(3);
        let mut named: Vec<String> = own
            .iter()
            .take(3)
            .map(|d| format!("{}/{d}", dir.display()))
            .collect();
        if more > 0 {
            named.push(format!("and {more} more"));
        }
        let _ = writeln!(s, "  explained in    {}", named.join(", "));
    }
    s
}

/// The txn workloads' verdict in a line: the anomaly types found and the
/// weakest models they rule out.
fn anomalies_line(w: &Edn, types: &[Edn]) -> String {
    if types.is_empty() {
        return "  anomalies       none".into();
    }
    let names: Vec<String> = types
        .iter()
        .map(|t| t.compact().trim_start_matches(':').to_string())
        .collect();
    let not = match w.get("not") {
        Some(Edn::Set(ms)) if !ms.is_empty() => {
            let ms: Vec<String> = ms
                .iter()
                .map(|m| m.compact().trim_start_matches(':').to_string())
                .collect();
            format!(": not {}", ms.join(" or "))
        }
        _ => String::new(),
    };
    format!(
        "  anomalies       {}{not} (see :workload in results.edn)",
        names.join(", ")
    )
}

/// kafka's error types in a line, each with its count (`:unseen`: how
/// many acknowledged messages no poll returned).
fn kafka_errors_line(w: &Edn, types: &[Edn]) -> String {
    if types.is_empty() {
        return "  errors          none".into();
    }
    let named: Vec<String> = types
        .iter()
        .map(|t| {
            let name = t.compact().trim_start_matches(':').to_string();
            let e = w.get(&name);
            let n = match e.and_then(|e| e.get("unseen")) {
                Some(Edn::Map(per_key)) => per_key.iter().filter_map(|(_, n)| int(Some(n))).sum(),
                _ => e.and_then(|e| int(e.get("count"))).unwrap_or(0),
            };
            format!("{name} ({n})")
        })
        .collect();
    format!(
        "  errors          {} (see :workload in results.edn)",
        named.join(", ")
    )
}

/// lin-kv's verdict in a line: how many keys, and the first key that is not
/// linearizable (its op and the states it could not follow) or unknown.
fn linearizable_line(keys: &[(Edn, Edn)]) -> String {
    let lin = |r: &Edn| r.get("linearizable").cloned().unwrap_or(Edn::Nil);
    let bad = keys
        .iter()
        .find(|(_, r)| lin(r).get("valid?") == Some(&Edn::Bool(false)));
    if let Some((k, r)) = bad {
        let l = lin(r);
        let op = l.get("op").map(|o| {
            let f = o.get("f").map(Edn::compact).unwrap_or_default();
            let v = o.get("value").map(Edn::compact).unwrap_or_default();
            let p = o.get("process").map(Edn::compact).unwrap_or_default();
            format!("{} {v} by process {p}", f.trim_start_matches(':'))
        });
        let states: Vec<String> = match l.get("configs") {
            Some(Edn::Vector(cs) | Edn::List(cs)) => cs
                .iter()
                .filter_map(|c| c.get("model").and_then(|m| m.get("value")))
                .map(Edn::compact)
                .collect(),
            _ => vec![],
        };
        return format!(
            "  linearizable    NO on key {}: {} cannot follow a register holding {} (see :workload in results.edn)",
            k.compact(),
            op.unwrap_or_else(|| "an op".into()),
            if states.is_empty() {
                "anything".into()
            } else {
                states.join(" or ")
            }
        );
    }
    let unknown = keys
        .iter()
        .find(|(_, r)| !matches!(lin(r).get("valid?"), Some(Edn::Bool(true))));
    if let Some((k, r)) = unknown {
        let l = lin(r);
        let why = l
            .get("reason")
            .or_else(|| l.get("cause"))
            .map(|e| match e {
                Edn::Str(t) => t.clone(),
                other => other.compact(),
            })
            .unwrap_or_default();
        return format!("  linearizable    unknown on key {}: {why}", k.compact());
    }
    format!(
        "  linearizable    yes, all {} key(s) (a register per key)",
        keys.len()
    )
}
