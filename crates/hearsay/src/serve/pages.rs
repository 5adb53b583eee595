//! The HTML pages of `hearsay serve`. Every value from the store is
//! escaped; assets come from this server only.

use super::store::{Run, Sweep};
use serde_json::Value;
use std::fmt::Write;
use std::path::Path;

pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{t}</title><link rel=\"stylesheet\" href=\"/assets/style.css\">\
         <script src=\"/assets/app.js\"></script></head>\n<body>\
         <p><a href=\"/\">all runs</a></p><h1>{t}</h1>\n{body}\n</body></html>\n",
        t = esc(title)
    )
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> (String, String) {
    match v {
        Some(x) => (x.to_string(), x.to_string()),
        None => (String::new(), "–".into()),
    }
}

fn num_cell(v: (String, String)) -> String {
    format!(
        "<td class=\"num\" data-v=\"{}\">{}</td>",
        esc(&v.0),
        esc(&v.1)
    )
}

/// The runs table and the bench sweeps.
pub fn index(runs: &[Run], sweeps: &[Sweep], store: &Path) -> String {
    let mut b = String::new();
    let _ = write!(
        b,
        "<p>Store <code>{}</code>: {} runs. Click a column to sort.</p>\
         <div class=\"filters\"><label>Filter <input id=\"filter\" placeholder=\"workload, node, verdict...\"></label>\
         <span><span id=\"shown\">{}</span> shown</span></div>\
         <table class=\"sortable\" id=\"runs\"><thead><tr><th>time</th><th>workload</th><th>node</th>\
         <th>nodes</th><th>executor</th><th>faults</th><th>valid?</th><th>msgs-per-op</th><th>median ms</th>\
         <th>max ms</th></tr></thead><tbody>",
        esc(&store.display().to_string()),
        runs.len(),
        runs.len()
    );
    for r in runs {
        let mpo = r.msgs_per_op.map(|m| (m.to_string(), format!("{m:.2}")));
        let _ = write!(
            b,
            "<tr class=\"run\"><td data-v=\"{t}\"><a href=\"/run/{id}\">{t}</a></td><td>{w}</td><td>{n}</td>{nodes}\
             <td>{x}</td><td>{f}</td><td class=\"valid-{v}\"{why}>{v}</td>{mpo}{med}{max}</tr>",
            t = esc(&r.time),
            id = esc(&r.id),
            w = esc(&r.workload),
            n = esc(&r.node),
            nodes = num_cell(opt(r.nodes)),
            x = esc(&r.executor),
            f = esc(&r.faults),
            v = esc(&r.valid),
            why = r
                .crash
                .as_deref()
                .map(|c| format!(" title=\"{}\"", esc(c)))
                .unwrap_or_default(),
            mpo = num_cell(mpo.unwrap_or_default()),
            med = num_cell(opt(r.median_ms)),
            max = num_cell(opt(r.max_ms)),
        );
    }
    b += "</tbody></table>";
    if !sweeps.is_empty() {
        b += "<h2>Bench sweeps</h2><ul id=\"sweeps\">";
        for s in sweeps {
            let _ = write!(
                b,
                "<li><a href=\"/bench/{t}\">{t}</a> ({} points)</li>",
                s.points,
                t = esc(&s.time)
            );
        }
        b += "</ul>";
    }
    page("hearsay runs", &b)
}

fn file_url(id: &str, f: &str) -> String {
    format!("/files/{}/{}", esc(id), esc(f))
}

/// A figure to three decimals, as the terminal summary prints it ("–" if
/// absent).
fn rounded(v: &Value) -> String {
    v.as_f64().map_or("–".into(), |x| format!("{x:.3}"))
}

/// The summary lines worth a glance, from results.json.
fn summary(results: &Value) -> String {
    let mut rows: Vec<(&str, String)> = vec![("valid?", results["valid?"].to_string())];
    let st = &results["stats"];
    rows.push((
        "ops",
        format!(
            "{} ({} ok, {} fail, {} info)",
            st["count"], st["ok-count"], st["fail-count"], st["info-count"]
        ),
    ));
    let net = &results["net"];
    rows.push((
        "msgs-per-op",
        format!(
            "servers {}, all {}",
            rounded(&net["servers"]["msgs-per-op"]),
            rounded(&net["all"]["msgs-per-op"])
        ),
    ));
    let w = &results["workload"];
    if let Some(l) = w.get("stable-latencies") {
        rows.push((
            "stable latency ms",
            format!(
                "median {}, p95 {}, p99 {}, max {}",
                l["0.5"], l["0.95"], l["0.99"], l["1"]
            ),
        ));
    }
    if let Some(lost) = w.get("lost-count") {
        rows.push((
            "lost",
            format!("{lost} of {} attempted", w["attempt-count"]),
        ));
    }
    let h = &results["hearsay"];
    rows.push(("seed", h["seed"].to_string()));
    rows.push(("executor", h["executor"].to_string()));
    if let Some(ws) = h["warnings"].as_array().filter(|w| !w.is_empty()) {
        for x in ws {
            rows.push((
                "warning",
                x["text"].as_str().unwrap_or_default().to_string(),
            ));
        }
    }
    let mut b = String::from("<table id=\"summary\"><tbody>");
    for (k, v) in rows {
        let _ = write!(b, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(&v));
    }
    b + "</tbody></table>"
}

/// Largest `elle/<type>.txt` shown inline (the rest behind its link).
const SHOWN_TEXT: usize = 20_000;

/// File names in `dir`, sorted (numbers as numbers: `2.svg` before
/// `10.svg`).
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort_by_key(|n| {
        let stem = n.split('.').next().unwrap_or_default();
        (stem.parse::<u64>().unwrap_or(u64::MAX), n.clone())
    });
    names
}

/// What the checker wrote to explain itself: Elle's cycles (each type's
/// text and pictures) and kafka's per-key orders.
fn explained(run: &Run, dir: &Path) -> String {
    let mut b = String::new();
    for name in names_in(&dir.join("elle")) {
        let Some(kind) = name.strip_suffix(".txt") else {
            continue;
        };
        let text = std::fs::read_to_string(dir.join("elle").join(&name)).unwrap_or_default();
        let shown: String = text.chars().take(SHOWN_TEXT).collect();
        let _ = write!(
            b,
            "<div class=\"elle\" id=\"elle-{id}\"><h2>{id} (Elle)</h2><p><a href=\"{u}\">elle/{n}</a></p><pre>{t}</pre>",
            id = esc(kind),
            u = file_url(&run.id, &format!("elle/{name}")),
            n = esc(&name),
            t = esc(&shown)
        );
        for pic in names_in(&dir.join("elle").join(kind)) {
            let _ = write!(
                b,
                "<object type=\"image/svg+xml\" data=\"{u}\">{p}</object>",
                u = file_url(&run.id, &format!("elle/{kind}/{pic}")),
                p = esc(&pic)
            );
        }
        b += "</div>";
    }
    let orders = names_in(&dir.join("orders"));
    if !orders.is_empty() {
        b += "<h2>Key orders (kafka)</h2><p>How each op saw the log of a key with errors: \
              <code>w</code> sent, <code>r</code> polled, at its offset.</p><ul id=\"orders\">";
        for o in orders {
            let _ = write!(
                b,
                "<li><a href=\"{}\">orders/{}</a></li>",
                file_url(&run.id, &format!("orders/{o}")),
                esc(&o)
            );
        }
        b += "</ul>";
    }
    b
}

/// A run: summary, every picture, the message diagram with filters, the
/// history and the node logs.
pub fn run(run: &Run, dir: &Path) -> String {
    let results: Value = std::fs::read_to_string(dir.join("results.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    let mut b = String::new();
    let _ = write!(
        b,
        "<p>Rerun: <code id=\"command\">{}</code></p>",
        esc(&run.command)
    );
    match (&run.crash, results.is_null()) {
        (Some(why), _) => {
            let _ = write!(
                b,
                "<p class=\"valid-crashed\">The test crashed; there is no analysis (as with \
                 Maelstrom). The reason, from <a href=\"{}\">crash.txt</a>:</p><pre id=\"crash\">{}</pre>",
                file_url(&run.id, "crash.txt"),
                esc(why)
            );
        }
        (None, true) => {
            b += "<p class=\"valid-unfinished\">No results yet: the run is still going, or it \
                  stopped before it wrote any.</p>";
        }
        (None, false) => b += &summary(&results),
    }
    let pictures = [
        ("latency-raw.svg", "Latency of every op"),
        ("latency-quantiles.svg", "Latency quantiles"),
        ("rate.svg", "Throughput"),
        ("convergence.svg", "Convergence"),
        ("node-rates.svg", "Messages per node"),
        ("traffic.svg", "Traffic map"),
        ("overlay.svg", "Overlay the nodes report"),
        ("unseen.svg", "Unseen messages (kafka)"),
        ("realtime-lag-thread.svg", "Realtime lag by thread (kafka)"),
        ("realtime-lag-key.svg", "Realtime lag by key (kafka)"),
    ];
    for (f, title) in pictures {
        if dir.join(f).is_file() {
            let _ = write!(
                b,
                "<div class=\"picture\" id=\"pic-{id}\"><h2>{t}</h2>\
                 <object type=\"image/svg+xml\" data=\"{u}\">{t}</object></div>",
                id = esc(f.trim_end_matches(".svg")),
                t = esc(title),
                u = file_url(&run.id, f)
            );
        }
    }
    if let Ok(svg) = std::fs::read_to_string(dir.join("messages.svg")) {
        let _ = write!(
            b,
            "<h2>Messages</h2><div class=\"filters\">\
             <label>node <select id=\"f-node\"><option value=\"\">all</option></select></label>\
             <label>type <select id=\"f-type\"><option value=\"\">all</option></select></label>\
             <label>from ms <input id=\"f-from\" type=\"number\" min=\"0\"></label>\
             <label>to ms <input id=\"f-to\" type=\"number\" min=\"0\"></label>\
             <span><span id=\"arrows-shown\"></span> messages shown</span> \
             <a href=\"{u}\">messages.svg</a></div><div class=\"diagram\">{svg}</div>",
            u = file_url(&run.id, "messages.svg"),
            svg = svg.trim_start_matches("<?xml version=\"1.0\" encoding=\"utf-8\"?>")
        );
    }
    b += &explained(run, dir);
    if dir.join("timeline.html").is_file() {
        let _ = write!(
            b,
            "<h2>Timeline</h2><p><a id=\"timeline\" href=\"{u}\">timeline.html</a> (full page)</p>\
             <iframe class=\"timeline\" src=\"{u}\" title=\"timeline\" style=\"width:100%;height:600px;border:1px solid #eee\"></iframe>",
            u = file_url(&run.id, "timeline.html")
        );
    }
    if let Ok(h) = std::fs::read_to_string(dir.join("history.txt")) {
        let lines: Vec<&str> = h.lines().collect();
        let head: Vec<&str> = lines.iter().take(200).copied().collect();
        let _ = write!(
            b,
            "<h2>History</h2><p>{} ops; the first {} below, all in <a href=\"{}\">history.txt</a>.</p><pre id=\"history\">{}</pre>",
            lines.len(),
            head.len(),
            file_url(&run.id, "history.txt"),
            esc(&head.join("\n"))
        );
    }
    let mut logs: Vec<String> = std::fs::read_dir(dir.join("node-logs"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    logs.sort();
    if !logs.is_empty() {
        b += "<h2>Node logs</h2><ul id=\"logs\">";
        for l in logs {
            let _ = write!(
                b,
                "<li><a href=\"{}\">{}</a></li>",
                file_url(&run.id, &format!("node-logs/{l}")),
                esc(&l)
            );
        }
        b += "</ul>";
    }
    let files: Vec<String> = ["results.edn", "results.json", "traffic.csv", "crash.txt"]
        .into_iter()
        .filter(|f| dir.join(f).is_file())
        .map(|f| format!("<a href=\"{}\">{f}</a>", file_url(&run.id, f)))
        .collect();
    if !files.is_empty() {
        let _ = write!(b, "<p>Files: {}</p>", files.join(" · "));
    }
    page(&format!("{} run {}", run.workload, run.time), &b)
}

/// A bench sweep: its Pareto plots and its table.
pub fn sweep(time: &str, dir: &Path) -> String {
    let rows: Vec<Value> = std::fs::read_to_string(dir.join("results.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let mut b = String::new();
    let mut plots: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("pareto") && n.ends_with(".svg"))
        .collect();
    plots.sort();
    for p in &plots {
        let _ = write!(
            b,
            "<div class=\"picture pareto\"><h2>{n}</h2><object type=\"image/svg+xml\" data=\"/files/bench/{t}/{n}\">{n}</object></div>",
            n = esc(p),
            t = esc(time)
        );
    }
    b += "<table class=\"sortable\" id=\"points\"><thead><tr><th>nodes</th><th>faults</th><th>preset</th>\
          <th>strategy</th><th>executor</th><th>msgs-per-op</th><th>median ms</th><th>p95 ms</th>\
          <th>max ms</th><th>lost</th><th>valid</th></tr></thead><tbody>";
    for r in &rows {
        let m = &r["median"];
        let f = |v: &Value| {
            (
                v.to_string(),
                v.as_f64().map_or("–".into(), |x| format!("{x:.2}")),
            )
        };
        let _ = write!(
            b,
            "<tr>{}<td>{}</td><td>{}</td><td>{}</td><td>{}</td>{}{}{}{}{}<td>{}</td></tr>",
            num_cell((r["nodes"].to_string(), r["nodes"].to_string())),
            esc(r["faults"].as_str().unwrap_or_default()),
            esc(r["preset"].as_str().unwrap_or_default()),
            esc(r["strategy"].as_str().unwrap_or_default()),
            esc(r["executor"].as_str().unwrap_or_default()),
            num_cell(f(&m["msgs-per-op"])),
            num_cell(f(&m["median-ms"])),
            num_cell(f(&m["p95-ms"])),
            num_cell(f(&m["max-ms"])),
            num_cell((
                r["lost"].to_string(),
                r["lost"].as_i64().map_or("–".into(), |l| l.to_string())
            )),
            match r["valid"].as_bool() {
                Some(true) => "yes",
                Some(false) => "no",
                None => "–",
            },
        );
    }
    b += "</tbody></table>";
    page(&format!("bench sweep {time}"), &b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_values_are_escaped() {
        let r = Run {
            workload: "echo".into(),
            time: "<t>".into(),
            id: "echo/<t>".into(),
            node: "\"x\".py".into(),
            nodes: Some(3),
            valid: "true".into(),
            msgs_per_op: Some(1.5),
            median_ms: None,
            max_ms: Some(9),
            command: String::new(),
            executor: "sim".into(),
            faults: "<p>".into(),
            crash: Some("<boom>".into()),
        };
        let html = index(&[r], &[], Path::new("/s"));
        assert!(!html.contains("<t>") && html.contains("&lt;t&gt;"));
        assert!(html.contains("&quot;x&quot;.py"));
        assert!(!html.contains("<boom>"));
        assert!(html.contains("&lt;p&gt;") && html.contains("title=\"&lt;boom&gt;\""));
        assert_eq!(html.matches("class=\"run\"").count(), 1);
    }

    #[test]
    fn a_crashed_run_shows_its_reason_and_no_analysis() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("crash.txt"), "Node n0 crashed <exit 1>\n").unwrap();
        let r = Run {
            workload: "echo".into(),
            time: "t".into(),
            id: "echo/t".into(),
            node: "false".into(),
            nodes: Some(1),
            valid: "crashed".into(),
            msgs_per_op: None,
            median_ms: None,
            max_ms: None,
            command: "hearsay test -w echo --bin /bin/false".into(),
            executor: "processes".into(),
            faults: "none".into(),
            crash: Some("Node n0 crashed <exit 1>".into()),
        };
        let html = run(&r, d.path());
        assert!(html.contains("The test crashed"), "{html}");
        assert!(html.contains("Node n0 crashed &lt;exit 1&gt;"), "{html}");
        assert!(!html.contains("id=\"summary\""), "no analysis: {html}");
        assert!(html.contains("/files/echo/t/crash.txt"), "{html}");
        assert!(
            !html.contains("results.edn"),
            "no link to a file that is not there: {html}"
        );
    }

    #[test]
    fn the_checkers_explanations_are_on_the_run_page() {
        let d = tempfile::tempdir().unwrap();
        let elle = d.path().join("elle");
        std::fs::create_dir_all(elle.join("G0")).unwrap();
        std::fs::write(
            elle.join("G0.txt"),
            "G0 #0\nLet:\n  T1 = {:value [[:append 1 <2>]]}",
        )
        .unwrap();
        for i in [0, 1, 10, 2] {
            std::fs::write(elle.join("G0").join(format!("{i}.svg")), "<svg/>").unwrap();
        }
        std::fs::create_dir_all(d.path().join("orders")).unwrap();
        std::fs::write(d.path().join("orders/003.svg"), "<svg/>").unwrap();
        let r = Run {
            workload: "kafka".into(),
            time: "t".into(),
            id: "kafka/t".into(),
            node: "n".into(),
            nodes: Some(1),
            valid: "false".into(),
            msgs_per_op: None,
            median_ms: None,
            max_ms: None,
            command: String::new(),
            executor: "processes".into(),
            faults: "none".into(),
            crash: None,
        };
        let html = run(&r, d.path());
        assert!(html.contains("id=\"elle-G0\""), "{html}");
        assert!(html.contains("[[:append 1 &lt;2&gt;]]"), "{html}");
        let pics: Vec<usize> = ["G0/0.svg", "G0/1.svg", "G0/2.svg", "G0/10.svg"]
            .iter()
            .map(|p| html.find(&format!("/files/kafka/t/elle/{p}")).expect(p))
            .collect();
        assert!(
            pics.windows(2).all(|w| w[0] < w[1]),
            "numeric order: {pics:?}"
        );
        assert!(html.contains("/files/kafka/t/orders/003.svg"), "{html}");
    }

    #[test]
    fn the_run_summary_rounds_its_figures() {
        let r = serde_json::json!({
            "valid?": true,
            "net": {"servers": {"msgs-per-op": 1.5147059}, "all": {"msgs-per-op": 3.0}},
        });
        let html = summary(&r);
        assert!(html.contains("servers 1.515, all 3.000"), "{html}");
        assert!(!html.contains("1.5147059"), "{html}");
    }
}
