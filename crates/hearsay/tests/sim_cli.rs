//! `hearsay sim` from the command line: the JSON contract, the table, the
//! scenario file, and clear refusals of bad flags.

use serde_json::Value;
use std::process::Command;

fn sim(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hearsay"))
        .arg("sim")
        .args(args)
        .output()
        .expect("run hearsay sim");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn json_output_has_the_documented_keys_and_replays_by_seed() {
    let args = [
        "--members",
        "30",
        "--duration",
        "40s",
        "--crash",
        "2",
        "--loss",
        "0.01",
        "--seed",
        "3",
        "--json",
        "-q",
    ];
    let (code, out, err) = sim(&args);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["members"], 30);
    assert_eq!(v["seed"], 3);
    assert_eq!(v["crashes"]["count"], 2);
    for path in [
        "/crashes/undetected",
        "/crashes/seen_by_first_s/median",
        "/crashes/seen_by_all_s/max",
        "/crashes/seen_by_all_each_s",
        "/probes",
        "/false_positives",
        "/broadcast/payloads",
        "/broadcast/reached_all_s/median",
        "/broadcast/undelivered",
        "/broadcast/msgs_per_member_per_payload",
        "/heal/views_agree_s",
        "/bytes_per_member_per_s",
        "/wall_s",
    ] {
        assert!(v.pointer(path).is_some(), "missing {path}");
    }
    assert!(v["heal"]["views_agree_s"].is_null(), "no partition: null");
    // What the run was asked for is in the report.
    assert_eq!(v["scenario"]["crash"], 2);
    assert_eq!(v["scenario"]["loss"], 0.01);
    assert_eq!(v["scenario"]["latency"], "10ms");
    assert_eq!(v["probes"], "ring", "the default probe order");
    let each = v["crashes"]["seen_by_all_each_s"].as_array().unwrap();
    assert_eq!(each.len(), 2, "one time per crash seen by all: {each:?}");
    let max = each.iter().filter_map(Value::as_f64).fold(0.0, f64::max);
    assert_eq!(Some(max), v["crashes"]["seen_by_all_s"]["max"].as_f64());
    let (_, again, _) = sim(&args);
    let w: Value = serde_json::from_str(&again).unwrap();
    assert_eq!(v["trace_hash"], w["trace_hash"]);
}

#[test]
fn a_scenario_file_takes_the_same_keys_and_flags_override_it() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("s.toml");
    std::fs::write(
        &f,
        "members = 20\nduration = \"30s\"\ncrash = 1\nprobes = \"shuffled\"\npartition = { fraction = 0.5, at = \"5s\", for = \"10s\" }\n",
    )
    .unwrap();
    let (code, out, err) = sim(&[
        "--scenario",
        f.to_str().unwrap(),
        "--members",
        "24",
        "--json",
        "-q",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["members"], 24);
    assert_eq!(v["crashes"]["count"], 1);
    assert_eq!(v["probes"], "shuffled");
    assert!(v["heal"]["views_agree_s"].as_f64().is_some(), "{out}");
    // The table is for people.
    let (code, out, _) = sim(&["--scenario", f.to_str().unwrap(), "-q"]);
    assert_eq!(code, 0);
    assert!(out.contains("seen by all") && out.contains("heal"), "{out}");
    // And says what was simulated: the faults and the latency.
    let line = out.lines().find(|l| l.contains("scenario")).expect("{out}");
    assert!(
        line.contains("latency") && line.contains("cut off at"),
        "{line}"
    );
}

#[test]
fn bad_flags_exit_254_with_a_reason() {
    for (args, reason) in [
        (vec!["--members", "1"], "--members"),
        (vec!["--loss", "1.5"], "--loss"),
        (vec!["--pause", "0.05"], "FRACTION:DUR"),
        (
            vec!["--partition", "0.5:50s:20s", "--duration", "60s"],
            "after the run",
        ),
        (vec!["--duration", "ten"], "duration"),
        (vec!["--crash", "100", "--members", "10"], "nobody up"),
        (vec!["--scenario", "/nonexistent.toml"], "/nonexistent.toml"),
        (vec!["--lifeguard", "maybe"], "maybe"),
        (vec!["--probes", "spiral"], "ring or shuffled"),
        // `hearsay test --latency 50` is milliseconds; here a bare number
        // would have been 50 seconds: refused instead.
        (vec!["--latency", "50"], "50ms or 50s"),
    ] {
        let (code, _, err) = sim(&args);
        assert_eq!(code, 254, "{args:?}: {err}");
        assert!(err.contains(reason), "{args:?}: {err}");
    }
}

#[test]
fn a_reader_that_goes_away_ends_the_run_quietly() {
    // `hearsay sim ... | head -1`: the pipe closes before the report is
    // written; the run ends as a SIGPIPE death would, without a panic.
    let mut child = Command::new(env!("CARGO_BIN_EXE_hearsay"))
        .args(["sim", "--members", "20", "--duration", "20s", "-q"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run hearsay sim");
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn one_header_not_two() {
    // Off a terminal there is no progress bar, so nothing beside it: the
    // report's header is the one (it said "10s simulated" on stderr and
    // "10 s simulated" on stdout).
    let (code, out, err) = sim(&["--members", "10", "--duration", "10s"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.matches("hearsay sim:").count(), 1, "{out}");
    assert!(!err.contains("hearsay sim:"), "{err}");
}
