//! What is in a store directory: test runs (`<workload>/<time>/`) and
//! bench sweeps (`bench/<time>/`), read from the files the runs wrote.

use serde_json::Value;
use std::path::{Component, Path, PathBuf};

/// One test run, as the runs table shows it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Run {
    pub workload: String,
    pub time: String,
    /// `<workload>/<time>`: the run's path inside the store.
    pub id: String,
    pub node: String,
    pub nodes: Option<u64>,
    pub valid: String,
    pub msgs_per_op: Option<f64>,
    pub median_ms: Option<i64>,
    pub max_ms: Option<i64>,
    pub command: String,
    /// `sim` (in-process virtual time) or `processes` (real node
    /// processes).
    pub executor: String,
    /// The nemesis the command asked for, or `none`.
    pub faults: String,
    /// Why the run crashed (`crash.txt`), for a run with no analysis.
    pub crash: Option<String>,
}

/// One bench sweep.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Sweep {
    pub time: String,
    pub points: usize,
}

fn sorted_dirs(p: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(p)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    v.sort();
    v.reverse();
    v
}

fn name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The word after `flag` in a rerun command's words.
fn after<'a>(words: &'a [String], flag: &str) -> Option<&'a str> {
    let i = words.iter().position(|w| w == flag)?;
    words.get(i + 1).map(String::as_str)
}

/// The node's file name after `--bin`, or hearsay's own node.
fn node_of(words: &[String]) -> String {
    after(words, "--bin")
        .map(|b| {
            Path::new(b)
                .file_name()
                .map_or(b.to_string(), |n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "hearsay-node".into())
}

/// `--node-count N`, or the length of `--nodes a,b,c`.
fn nodes_of(words: &[String]) -> Option<u64> {
    after(words, "--node-count")
        .and_then(|n| n.parse().ok())
        .or_else(|| after(words, "--nodes").map(|l| l.split(',').count() as u64))
}

/// Every run in the store, newest first (crashed and unfinished ones
/// too). Directories that are no run are skipped.
pub fn runs(store: &Path) -> Vec<Run> {
    let mut out = Vec::new();
    for wdir in sorted_dirs(store) {
        let workload = name(&wdir);
        if workload == "bench" {
            continue;
        }
        for rdir in sorted_dirs(&wdir) {
            if let Some(r) = run(store, &format!("{workload}/{}", name(&rdir))) {
                out.push(r);
            }
        }
    }
    out.sort_by(|a, b| b.time.cmp(&a.time));
    out
}

/// One run by its id, if it exists: analysed (`results.json`), crashed
/// (`crash.txt`, no analysis, as Maelstrom leaves it), or unfinished
/// (running, or stopped before it wrote either).
pub fn run(store: &Path, id: &str) -> Option<Run> {
    let dir = resolve(store, id)?;
    let command = std::fs::read_to_string(dir.join("command.txt"))
        .unwrap_or_default()
        .trim()
        .to_string();
    let results: Option<Value> = std::fs::read_to_string(dir.join("results.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let crash = std::fs::read_to_string(dir.join("crash.txt"))
        .ok()
        .map(|t| t.trim().to_string());
    if results.is_none() && crash.is_none() && command.is_empty() {
        return None;
    }
    let results = results.unwrap_or(Value::Null);
    let (workload, time) = id.split_once('/')?;
    let lat = &results["workload"]["stable-latencies"];
    let words = shlex::split(&command).unwrap_or_default();
    let valid = match (&results["valid?"], &crash) {
        (Value::Bool(b), _) => b.to_string(),
        (Value::String(s), _) => s.trim_start_matches(':').into(),
        (_, Some(_)) => "crashed".into(),
        _ => "unfinished".into(),
    };
    Some(Run {
        workload: workload.into(),
        time: time.into(),
        id: id.into(),
        node: node_of(&words),
        nodes: nodes_of(&words),
        valid,
        msgs_per_op: results["net"]["servers"]["msgs-per-op"].as_f64(),
        median_ms: lat["0.5"].as_i64(),
        max_ms: lat["1"].as_i64(),
        executor: if words.iter().any(|w| w == "--sim") {
            "sim"
        } else {
            "processes"
        }
        .into(),
        faults: after(&words, "--nemesis").unwrap_or("none").into(),
        crash,
        command,
    })
}

/// Every bench sweep in `store/bench/`, newest first.
pub fn sweeps(store: &Path) -> Vec<Sweep> {
    sorted_dirs(&store.join("bench"))
        .into_iter()
        .filter_map(|d| {
            let v: Value =
                serde_json::from_str(&std::fs::read_to_string(d.join("results.json")).ok()?)
                    .ok()?;
            Some(Sweep {
                time: name(&d),
                points: v.as_array()?.len(),
            })
        })
        .collect()
}

/// A path inside the store from a request: plain names only (no `..`, no
/// absolute paths, no links out of the store).
pub fn resolve(store: &Path, rel: &str) -> Option<PathBuf> {
    let rel = Path::new(rel);
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return None;
    }
    let root = store.canonicalize().ok()?;
    let p = root.join(rel).canonicalize().ok()?;
    p.starts_with(&root).then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_outside_the_store_are_refused() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("echo/t1")).unwrap();
        assert!(resolve(d.path(), "echo/t1").is_some());
        for bad in ["../etc", "/etc/passwd", "echo/../../x", "echo/./t1/.."] {
            assert!(resolve(d.path(), bad).is_none(), "{bad}");
        }
        std::os::unix::fs::symlink("/etc", d.path().join("out")).unwrap();
        assert!(resolve(d.path(), "out/passwd").is_none());
    }

    #[test]
    fn the_node_and_node_count_come_from_the_rerun_command() {
        let w = |c: &str| shlex::split(c).unwrap();
        let c = w("hearsay test -w echo --bin /x/y/node.py --nodes a,b,c --seed 1");
        assert_eq!(node_of(&c), "node.py");
        assert_eq!(nodes_of(&c), Some(3));
        let c = w("hearsay test -w echo --node-count 3");
        assert_eq!(node_of(&c), "hearsay-node");
        assert_eq!(nodes_of(&c), Some(3));
    }

    #[test]
    fn crashed_and_unfinished_runs_are_listed_with_what_they_ran() {
        let d = tempfile::tempdir().unwrap();
        let dir = |id: &str| {
            let p = d.path().join(id);
            std::fs::create_dir_all(&p).unwrap();
            p
        };
        let crashed = dir("echo/t2");
        std::fs::write(
            crashed.join("command.txt"),
            "hearsay test -w echo --bin /bin/false --node-count 1 --nemesis partition\n",
        )
        .unwrap();
        std::fs::write(
            crashed.join("crash.txt"),
            "Node n0 crashed with exit status 1\n",
        )
        .unwrap();
        let done = dir("echo/t1");
        std::fs::write(done.join("command.txt"), "hearsay test -w echo --sim\n").unwrap();
        std::fs::write(done.join("results.json"), r#"{"valid?": true}"#).unwrap();
        let running = dir("echo/t3");
        std::fs::write(running.join("command.txt"), "hearsay test -w echo\n").unwrap();
        dir("echo/empty");
        let runs = runs(d.path());
        let ids: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["echo/t3", "echo/t2", "echo/t1"]);
        let (r3, r2, r1) = (&runs[0], &runs[1], &runs[2]);
        assert_eq!(
            (r3.valid.as_str(), r3.crash.as_deref()),
            ("unfinished", None)
        );
        assert_eq!(r2.valid, "crashed");
        assert_eq!(
            r2.crash.as_deref(),
            Some("Node n0 crashed with exit status 1")
        );
        assert_eq!(
            (r2.executor.as_str(), r2.faults.as_str()),
            ("processes", "partition")
        );
        assert_eq!((r2.node.as_str(), r2.nodes), ("false", Some(1)));
        assert_eq!(
            (r1.valid.as_str(), r1.executor.as_str(), r1.faults.as_str()),
            ("true", "sim", "none")
        );
    }
}
