//! The pictures of a run, checked for their content against the run's own
//! journal and history, and the traffic map shown to reveal the overlay a
//! third-party node really uses.

mod common;
use common::node;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

fn run(args: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let store = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hearsay"))
        .args(["test", "-q", "--store"])
        .arg(store.path())
        .args(args)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = std::fs::canonicalize(store.path().join("latest")).unwrap();
    (store, dir)
}

fn read(dir: &Path, f: &str) -> String {
    std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"))
}

/// The first 10,000 journal events: (type, src, dest).
fn journal(dir: &Path) -> Vec<(String, String, String)> {
    read(dir, "net-journal.jsonl")
        .lines()
        .take(10_000)
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let s = |k: &str| v[k].as_str().unwrap().to_string();
            (s("type"), s("src"), s("dest"))
        })
        .collect()
}

fn check_common(dir: &Path, f: &str) {
    let j = journal(dir);
    let recvs = j.iter().filter(|e| e.0 == "recv").count();
    let lanes: BTreeSet<&String> = j.iter().flat_map(|e| [&e.1, &e.2]).collect();
    let svg = read(dir, "messages.svg");
    assert_eq!(
        svg.matches(r#"class="msg""#).count(),
        recvs,
        "an arrow per delivery"
    );
    assert_eq!(
        svg.matches(r#"class="lane""#).count(),
        lanes.len(),
        "a lane per party"
    );
    // Timeline: a bar per completed client op.
    let history = read(dir, "history.txt");
    let done = history
        .lines()
        .filter(|l| !l.starts_with(":nemesis") && !l.contains(":invoke"))
        .count();
    let page = read(dir, "timeline.html");
    assert_eq!(page.matches(r#"class="op""#).count(), done, "a bar per op");
    for pic in ["latency-raw.svg", "latency-quantiles.svg", "rate.svg"] {
        let s = read(dir, pic);
        assert!(s.contains("time (s)"), "{pic}: axis");
        assert!(
            s.contains(&format!("{f} ok")) || s.contains(&format!("{f} 0.5")),
            "{pic}: series"
        );
    }
    let res: Value = serde_json::from_str(&read(dir, "results.json")).unwrap();
    assert_eq!(
        res["perf"]["latency-graph"]["files"],
        serde_json::json!(["latency-raw.svg", "latency-quantiles.svg"])
    );
    assert_eq!(
        res["timeline"]["files"],
        serde_json::json!(["timeline.html"])
    );
    let edn = read(dir, "results.edn");
    assert!(edn.contains(r#":files ["rate.svg"]"#), "{edn}");
    assert!(read(dir, "node-rates.svg").contains("msgs/s"));
}

#[test]
fn an_echo_run_draws_maelstroms_pictures() {
    let (_s, dir) = run(&[
        "-w",
        "echo",
        "--bin",
        &node("misc.py"),
        "--node-count",
        "2",
        "--time-limit",
        "2",
        "--rate",
        "20",
        "--",
        "echo",
    ]);
    check_common(&dir, "echo");
    assert!(
        !dir.join("convergence.svg").exists(),
        "convergence is for broadcast"
    );
}

/// Undirected pairs of servers that exchanged messages.
fn pairs(dir: &Path) -> BTreeSet<(String, String)> {
    read(dir, "traffic.csv")
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let (a, b) = (f[0].to_string(), f[1].to_string());
            if a < b { (a, b) } else { (b, a) }
        })
        .collect()
}

#[test]
fn the_traffic_map_shows_a_star_for_a_star_node() {
    let (_s, dir) = run(&[
        "-w",
        "broadcast",
        "--bin",
        &node("star.py"),
        "--node-count",
        "6",
        "--time-limit",
        "3",
        "--rate",
        "20",
        "--recovery",
        "1",
    ]);
    check_common(&dir, "broadcast");
    let p = pairs(&dir);
    assert_eq!(p.len(), 5, "{p:?}");
    assert!(
        p.iter().all(|(a, b)| a == "n0" || b == "n0"),
        "every pair touches the hub: {p:?}"
    );
    let conv = read(&dir, "convergence.svg");
    assert!(conv.contains("median value") && conv.contains("worst value"));
    assert!(read(&dir, "traffic.svg").contains(r#"class="cell""#));
}

#[test]
fn the_traffic_map_shows_a_tree_for_a_node_that_gossips_over_a_tree_topology() {
    let (_s, dir) = run(&[
        "-w",
        "broadcast",
        "--bin",
        &node("gossip.py"),
        "--node-count",
        "7",
        "--time-limit",
        "3",
        "--rate",
        "20",
        "--recovery",
        "3",
        "--topology",
        "tree2",
    ]);
    let p = pairs(&dir);
    // A tree: n-1 pairs, all nodes connected.
    assert_eq!(p.len(), 6, "{p:?}");
    let mut adj: HashMap<&str, Vec<&str>> = HashMap::new();
    for (a, b) in &p {
        adj.entry(a).or_default().push(b);
        adj.entry(b).or_default().push(a);
    }
    let mut seen = BTreeSet::from(["n0"]);
    let mut todo = vec!["n0"];
    while let Some(n) = todo.pop() {
        for &m in adj.get(n).into_iter().flatten() {
            if seen.insert(m) {
                todo.push(m);
            }
        }
    }
    assert_eq!(seen.len(), 7, "connected: {p:?}");
}

#[test]
fn under_sim_our_node_reports_its_overlay_and_the_traffic_follows_it() {
    let (_s, dir) = run(&[
        "--sim",
        "--scenario",
        "3b",
        "--time-limit",
        "3",
        "--recovery",
        "1",
        "--seed",
        "4",
        "--",
        "--strategy",
        "tree",
    ]);
    let svg = read(&dir, "overlay.svg");
    let edges = svg.matches(r#"class="edge""#).count();
    // Five nodes in a tree: four edges.
    assert_eq!(edges, 4, "{svg}");
    assert!(svg.contains("5 nodes, 4 edges"));
    // Every overlay edge carried traffic.
    let p = pairs(&dir);
    for title in svg.split("<title>").skip(1) {
        let t = &title[..title.find("</title>").unwrap()];
        if let Some((a, b)) = t.split_once(" – ") {
            let (a, b) = (a.trim().to_string(), b.trim().to_string());
            let key = if a < b { (a, b) } else { (b, a) };
            assert!(p.contains(&key), "{t} carried nothing: {p:?}");
        }
    }
}
