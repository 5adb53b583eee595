//! Helpers shared by the end-to-end tests.

// Not every test binary uses every helper.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};

/// The path of a test node in `tests/nodes/`.
pub fn node(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/nodes")
        .join(name)
        .display()
        .to_string()
}

/// A child process killed and reaped when the test ends, however it ends.
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A finished command's exit code and both outputs, for assertion messages.
pub fn explain(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A finished `hearsay test`: exit code, outputs, and its store (removed
/// when dropped).
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub store: tempfile::TempDir,
}

impl Run {
    pub fn latest(&self) -> PathBuf {
        self.store.path().join("latest")
    }

    pub fn results(&self) -> serde_json::Value {
        let text =
            std::fs::read_to_string(self.latest().join("results.json")).unwrap_or_else(|e| {
                panic!(
                    "no results.json ({e}); stderr:\n{}\nstdout:\n{}",
                    self.stderr, self.stdout
                )
            });
        serde_json::from_str(&text).unwrap()
    }

    /// The strings listed under `:workload` `key` (Elle's
    /// `:anomaly-types`, kafka's `:error-types`), without colons.
    pub fn workload_list(&self, key: &str) -> Vec<String> {
        self.results()["workload"][key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str())
                    .map(|s| s.trim_start_matches(':').to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn anomaly_types(&self) -> Vec<String> {
        self.workload_list("anomaly-types")
    }

    pub fn error_types(&self) -> Vec<String> {
        self.workload_list("error-types")
    }

    pub fn explain(&self) -> String {
        format!(
            "exit {}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs `hearsay test -q` with `args` and a fresh store.
pub fn hearsay(args: &[&str]) -> Run {
    let store = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hearsay"))
        .arg("test")
        .arg("--store")
        .arg(store.path())
        .arg("-q")
        .args(args)
        .output()
        .expect("run hearsay");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        store,
    }
}

/// A command line as a challenge page or Maelstrom's docs give it (after
/// `./maelstrom test`), rewritten by `replace` (the node binary, shorter
/// runs), with `extra` flags, run on `mode` of our node.
pub fn documented(line: &str, replace: &[(&str, &str)], extra: &[&str], mode: &str) -> Run {
    let line = replace
        .iter()
        .fold(line.to_string(), |l, (from, to)| l.replace(from, to));
    let mut args: Vec<&str> = line.split_whitespace().collect();
    args.extend_from_slice(extra);
    args.extend(["--", mode]);
    hearsay(&args)
}

/// Workload `workload` on the test node `script` in `mode`, with `flags`.
pub fn on_node(script: &str, workload: &str, flags: &[&str], mode: &str) -> Run {
    let bin = node(script);
    let mut args = vec!["-w", workload, "--bin", &bin];
    args.extend_from_slice(flags);
    args.extend(["--", mode]);
    hearsay(&args)
}

/// A JSON integer, or a panic naming the value.
pub fn int(v: &serde_json::Value) -> i64 {
    v.as_i64().unwrap_or_else(|| panic!("not an integer: {v}"))
}
