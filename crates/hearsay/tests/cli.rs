//! The command line as a Maelstrom user meets it: every mistake is one line
//! on stderr and exit 254, never a panic, a wrap-around or a silent
//! different test; what the header prints reruns the test.

mod common;
use common::{explain, node};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

fn hearsay(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hearsay"))
        .args(args)
        .output()
        .expect("run hearsay")
}

#[test]
fn every_bad_number_or_flag_is_one_line_and_exit_254() {
    let misc = node("misc.py");
    let store = tempfile::tempdir().unwrap();
    let st = store.path().to_str().unwrap();
    fn with<'a>(st: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec!["test", "--store", st, "-q"];
        v.extend_from_slice(rest);
        v
    }
    let test = |rest: &[&'static str]| with(st, rest);
    let misc: &'static str = Box::leak(misc.into_boxed_str());
    let cases: Vec<(Vec<&str>, &str)> = vec![
        // An unknown flag is not a node argument (it was, and ran 60 s).
        (test(&["--time-limt", "2"]), "unknown option --time-limt"),
        (
            test(&["--time-limt", "1", "--node-count", "0"]),
            "unknown option",
        ),
        (
            test(&["-w", "echo", "--time-limit", "1e20"]),
            "--time-limit",
        ),
        (test(&["-w", "echo", "--time-limit", "0"]), "--time-limit"),
        (test(&["-w", "echo", "--time-limit", "0.5"]), "--time-limit"),
        (test(&["-w", "echo", "--time-limit=-3"]), "--time-limit"),
        (
            test(&["-w", "echo", "--latency", "99999999999999"]),
            "--latency",
        ),
        (test(&["-w", "echo", "--latency=-1"]), "--latency"),
        (test(&["-w", "echo", "--rate", "NaN"]), "--rate"),
        (test(&["-w", "echo", "--rate", "inf"]), "--rate"),
        (test(&["-w", "echo", "--rate=-1"]), "--rate"),
        (test(&["-w", "echo", "--rate", "1e300"]), "--rate"),
        (
            test(&["-w", "echo", "--concurrency", "99999999999999999999n"]),
            "--concurrency",
        ),
        (
            test(&["-w", "echo", "--concurrency", "10000000"]),
            "--concurrency",
        ),
        (
            test(&["-w", "echo", "--nemesis-interval", "0"]),
            "--nemesis-interval",
        ),
        (
            test(&["-w", "echo", "--nemesis-interval", "nan"]),
            "--nemesis-interval",
        ),
        (test(&["-w", "echo", "--node-count", "0"]), "--node-count"),
        (
            test(&["-w", "echo", "--node-count", "100000"]),
            "--node-count",
        ),
        (test(&["-w", "echo", "--test-count", "0"]), "--test-count"),
        (test(&["-w", "echo", "--recovery", "1e30"]), "--recovery"),
        (
            test(&["-w", "echo", "--journal-limit", "0"]),
            "--journal-limit",
        ),
        (test(&["-w", "echo", "--seed=-1"]), "--seed"),
        // A user's node with no workload runs lin-kv, as in Maelstrom, and
        // lin-kv's generator needs 2n workers (Maelstrom's 1n aborts).
        (
            with(st, &["--bin", misc]),
            "lin-kv needs at least 2 × node count",
        ),
        (vec!["bench", "--runs", "0"], "--runs"),
        (vec!["bench", "--time-limit", "1e20"], "--time-limit"),
        (vec!["bench", "--rate", "nan"], "--rate"),
        (vec!["bench", "--nodes", "25,0"], "--nodes"),
        (vec!["bench", "--nodes", "99999999999"], "--nodes"),
        (vec!["bench", "--recovery=-1"], "--recovery"),
        (vec!["bench", "--frobnicate"], "unknown option --frobnicate"),
        (vec!["bench", "cluster", "--members", "1"], "--members"),
        (
            vec!["bench", "cluster", "--strategies", "rumour"],
            "unknown strategy",
        ),
        (
            vec!["bench", "cluster", "--crash", "5", "--members", "5"],
            "--crash",
        ),
        (
            vec!["serve", "--store", "/no/such/store"],
            "not a directory",
        ),
        (vec!["serve", "--bind", "localhost"], "--bind"),
        // Errors that point the right way (issue 19, item 8).
        (test(&["-w", "echo", "--rate", "-1"]), "at least 0"),
        // Negative values reach the flag's own check, with units too.
        (vec!["sim", "--duration", "-5s"], "is negative"),
        (vec!["sim", "--latency", "-5ms"], "is negative"),
        (vec!["sim", "--pause", "-0.1:3s"], "--pause"),
        (vec!["sim", "--partition", "-0.5:1s:1s"], "--partition"),
        (vec!["agent", "--kept-messages", "-1"], "--kept-messages"),
        (vec!["tset"], "did you mean test?"),
        (test(&["--scenario", "3f"]), "one of: 3a, 3b, 3c, 3d, 3e"),
        (vec!["serve", "--port", "9000"], "--bind HOST:PORT"),
        (
            test(&["-w", "echo", "--bin", "no-such-node-anywhere"]),
            "nor a program on PATH",
        ),
    ];
    for (args, want) in cases {
        let out = hearsay(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(254), "{args:?}: {}", explain(&out));
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{args:?}: not one line:\n{err}"
        );
        assert!(err.contains(want), "{args:?}: wanted {want:?} in {err}");
        // Where node arguments go is `hearsay test`'s hint alone.
        assert!(
            args[0] == "test" || !err.contains("node arguments"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    assert!(
        std::fs::read_dir(store.path()).unwrap().next().is_none(),
        "a refused command must not start a run"
    );
}

fn results(store: &Path) -> Value {
    let text = std::fs::read_to_string(store.join("latest/results.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn the_header_and_command_txt_rerun_the_same_test() {
    let store = tempfile::tempdir().unwrap();
    let st = store.path().to_str().unwrap();
    let first = hearsay(&[
        "test",
        "--store",
        st,
        "--sim",
        "--scenario",
        "3b",
        "--time-limit",
        "2",
        "--seed",
        "9",
        "--recovery",
        "1",
        "--",
        "--preset",
        "latency",
    ]);
    assert_eq!(first.status.code(), Some(0), "{}", explain(&first));
    let cmd = std::fs::read_to_string(store.path().join("latest/command.txt")).unwrap();
    assert!(
        String::from_utf8_lossy(&first.stderr).contains(cmd.trim()),
        "{cmd}"
    );
    let words = shlex::split(&cmd).unwrap();
    assert_eq!(words[1], "test", "{cmd}");
    assert!(
        cmd.contains("--seed 9") && cmd.contains("-- --preset latency"),
        "{cmd}"
    );
    let hash = results(store.path())["hearsay"]["trace-hash"].clone();
    let again = Command::new(env!("CARGO_BIN_EXE_hearsay"))
        .args(["test", "-q"])
        .args(&words[2..])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(0), "{}", explain(&again));
    // It ran in the store the command names: the same store here.
    assert_eq!(
        results(store.path())["hearsay"]["trace-hash"],
        hash,
        "{cmd}"
    );
    // The summary shows the trace, so the README's comparison needs no
    // JSON.
    let line = format!("trace           {}", hash.as_str().unwrap());
    for out in [&first, &again] {
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(&line),
            "{line}: {}",
            explain(out)
        );
    }
    let runs = std::fs::read_dir(store.path().join("broadcast"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_type().unwrap().is_dir())
        .count();
    assert_eq!(runs, 2);
}

#[test]
fn scenario_runs_say_whether_the_challenge_targets_are_met_and_results_print_on_request() {
    let store = tempfile::tempdir().unwrap();
    let st = store.path().to_str().unwrap();
    let out = hearsay(&[
        "test",
        "--store",
        st,
        "-q",
        "--sim",
        "--scenario",
        "3d",
        "--seed",
        "3",
        "--print-results",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", explain(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("challenge 3d    targets met"), "{stdout}");
    assert!(stdout.contains("msgs-per-op"), "{stdout}");
    assert!(
        stdout.contains(":perf") && stdout.contains(":stable-latencies"),
        "{stdout}"
    );
    // 3e's targets are looser, so the same run meets them too; a flood
    // misses 3d's message budget.
    let out = hearsay(&[
        "test",
        "--store",
        st,
        "-q",
        "--sim",
        "--scenario",
        "3d",
        "--seed",
        "3",
        "--",
        "--strategy",
        "flood",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("challenge 3d    targets NOT met"),
        "{stdout}"
    );
    assert!(stdout.contains("MISSED"), "{stdout}");
    assert!(
        !stdout.contains(":perf"),
        "results only with --print-results"
    );
}

#[test]
fn node_arguments_may_be_plain_words_among_the_options() {
    let store = tempfile::tempdir().unwrap();
    let st = store.path().to_str().unwrap();
    let misc = node("misc.py");
    // "echo-wrong" is a node argument even though options follow it.
    let out = hearsay(&[
        "test",
        "--store",
        st,
        "-q",
        "-w",
        "echo",
        "--bin",
        &misc,
        "echo-wrong",
        "--node-count",
        "1",
        "--time-limit",
        "1",
        "--rate",
        "5",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", explain(&out));
    let out = hearsay(&[
        "test",
        "--store",
        st,
        "-q",
        "-w",
        "echo",
        "--bin",
        &misc,
        "--nodes",
        "n1,n2",
        "-n",
        "x3",
        "--time-limit",
        "1",
        "--rate",
        "5",
        "--",
        "echo",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", explain(&out));
    let logs: Vec<String> = std::fs::read_dir(store.path().join("latest/node-logs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(logs.len(), 3, "--nodes and -n join: {logs:?}");
}

#[test]
fn bench_cluster_sweeps_strategies_in_the_simulator_and_writes_a_table_and_a_plot() {
    let out = tempfile::tempdir().unwrap();
    let o = hearsay(&[
        "bench",
        "cluster",
        "--members",
        "20",
        "--duration",
        "40s",
        "--crash",
        "2",
        "--strategies",
        "tree,plumtree",
        "--presets",
        "latency,efficient",
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", explain(&o));
    let dir = out.path().join("latest");
    let md = std::fs::read_to_string(dir.join("results.md")).unwrap();
    for row in [
        "| tree | latency |",
        "| plumtree | latency |",
        "| tree | efficient |",
        "| plumtree | efficient |",
    ] {
        let line = md
            .lines()
            .find(|l| l.starts_with(row))
            .unwrap_or_else(|| panic!("{row} in {md}"));
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        assert_eq!(cells[7], "0", "undelivered: {line}");
        let msgs: f64 = cells[3].parse().unwrap();
        assert!(msgs > 0.0 && msgs < 5.0, "{line}");
    }
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 4);
    let svg = std::fs::read_to_string(dir.join("pareto-20.svg")).unwrap();
    assert!(svg.contains("messages per member per payload") && svg.contains("plumtree/latency"));
}

#[test]
fn a_bin_given_by_name_is_found_on_path() {
    // `--bin my-node` where my-node is a program on PATH, as a shell
    // would run it.
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("my-echo-node");
    std::fs::copy(node("misc.py"), &target).unwrap();
    let store = tempfile::tempdir().unwrap();
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(env!("CARGO_BIN_EXE_hearsay"))
        .env("PATH", path)
        .args(["test", "--store", store.path().to_str().unwrap(), "-q"])
        .args(["-w", "echo", "--bin", "my-echo-node", "--node-count", "1"])
        .args(["--time-limit", "1", "--rate", "5", "--", "echo"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", explain(&out));
}
