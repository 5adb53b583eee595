//! `hearsay test` end to end, on nodes it did not grow up with: small
//! third-party-style Python nodes (standard library only), correct and
//! deliberately broken, plus hearsay's own node. Every checker here is shown
//! rejecting a broken node, not just accepting a good one.

mod common;
use common::{Run, hearsay, int, node};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

#[test]
fn hearsay_node_passes_a_multi_node_broadcast() {
    let r = hearsay(&[
        "-w",
        "broadcast",
        "--node-count",
        "5",
        "--time-limit",
        "5",
        "--rate",
        "10",
        "--recovery",
        "2",
    ]);
    assert_eq!(r.code, 0, "{}", r.explain());
    let res = r.results();
    assert_eq!(res["valid?"], true);
    assert_eq!(res["workload"]["lost-count"], 0);
    assert!(int(&res["workload"]["attempt-count"]) > 10);
    // Maelstrom's layout: results.edn next to results.json, history, node logs.
    let edn = std::fs::read_to_string(r.latest().join("results.edn")).unwrap();
    assert!(
        edn.starts_with("{:perf {:latency-graph {:valid? true,\n                        :files [\"latency-raw.svg\""),
        "{edn}"
    );
    assert!(edn.contains(":stable-latencies"));
    assert!(r.latest().join("history.txt").is_file());
    for n in 0..5 {
        assert!(r.latest().join(format!("node-logs/n{n}.log")).is_file());
    }
    assert!(r.stdout.contains("Everything looks good!"), "{}", r.stdout);
}

#[test]
fn hearsay_node_delivers_everything_across_partitions() {
    let r = hearsay(&[
        "--scenario",
        "3c",
        "--time-limit",
        "10",
        "--nemesis-interval",
        "3",
        "--recovery",
        "8",
        "--seed",
        "11",
    ]);
    assert_eq!(r.code, 0, "{}", r.explain());
    let res = r.results();
    assert_eq!(res["workload"]["lost-count"], 0);
    assert!(
        int(&res["hearsay"]["dropped-by-partitions"]) > 0,
        "the partitions must have bitten"
    );
}

#[test]
fn net_logging_shows_every_message() {
    let r = hearsay(&[
        "-w",
        "echo",
        "--bin",
        &node("misc.py"),
        "--node-count",
        "1",
        "--time-limit",
        "1",
        "--rate",
        "5",
        "--log-net-send",
        "--log-net-recv",
    ]);
    assert_eq!(r.code, 0, "{}", r.explain());
    assert!(
        r.stderr
            .contains(r#"send {:id 0, :src "c0", :dest "n0", :body {"type":"init""#),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("recv {:id 1, :src \"n0\", :dest \"c0\""),
        "{}",
        r.stderr
    );
}

#[test]
fn third_party_gossip_node_passes_under_partitions() {
    let r = hearsay(&[
        "-w",
        "broadcast",
        "--bin",
        &node("gossip.py"),
        "--node-count",
        "5",
        "--time-limit",
        "8",
        "--rate",
        "10",
        "--nemesis",
        "partition",
        "--nemesis-interval",
        "2",
        "--recovery",
        "3",
        "--seed",
        "7",
    ]);
    assert_eq!(r.code, 0, "{}", r.explain());
    let res = r.results();
    assert_eq!(res["workload"]["lost-count"], 0);
    assert_eq!(res["workload"]["valid?"], true);
    // The nemesis really partitioned the network.
    let history = std::fs::read_to_string(r.latest().join("history.txt")).unwrap();
    assert!(
        history.contains(":nemesis\t:info\t:start-partition\t[:isolated"),
        "{history}"
    );
    assert!(history.contains(":nemesis\t:info\t:stop-partition\t:network-healed"));
}

#[test]
fn a_node_that_never_forwards_loses_values() {
    let r = hearsay(&[
        "-w",
        "broadcast",
        "--bin",
        &node("forward_once.py"),
        "--node-count",
        "3",
        "--time-limit",
        "4",
        "--rate",
        "10",
        "--recovery",
        "1",
        "--",
        "--never-forward",
    ]);
    assert_eq!(r.code, 1, "{}", r.explain());
    let res = r.results();
    assert_eq!(res["valid?"], false);
    assert_eq!(res["workload"]["valid?"], false);
    assert!(int(&res["workload"]["lost-count"]) > 0);
    assert!(r.stdout.contains("Analysis invalid!"));
}

#[test]
fn a_node_that_forwards_once_loses_values_only_under_partitions() {
    let base = [
        "-w",
        "broadcast",
        "--bin",
        &node("forward_once.py"),
        "--node-count",
        "5",
        "--time-limit",
        "8",
        "--rate",
        "10",
        "--recovery",
        "2",
        "--seed",
        "7",
    ];
    let healthy = hearsay(&base);
    assert_eq!(healthy.code, 0, "{}", healthy.explain());
    let mut faulty = base.to_vec();
    faulty.extend(["--nemesis", "partition", "--nemesis-interval", "2"]);
    let r = hearsay(&faulty);
    assert_eq!(r.code, 1, "{}", r.explain());
    assert!(int(&r.results()["workload"]["lost-count"]) > 0);
}

#[test]
fn an_extra_field_in_broadcast_ok_makes_ops_indeterminate() {
    let r = hearsay(&[
        "-w",
        "broadcast",
        "--bin",
        &node("gossip.py"),
        "--node-count",
        "3",
        "--time-limit",
        "3",
        "--rate",
        "10",
        "--recovery",
        "1",
        "--",
        "--extra-field",
    ]);
    let res = r.results();
    let b = &res["stats"]["by-f"]["broadcast"];
    assert!(int(&b["count"]) > 0, "{}", r.explain());
    assert_eq!(b["ok-count"], 0);
    assert_eq!(b["info-count"], b["count"]);
    assert_eq!(b["valid?"], false);
    // Every broadcast crashed its process and is listed under exceptions.
    let ex = &res["exceptions"]["exceptions"][0];
    assert_eq!(ex["count"], b["count"]);
    assert_eq!(ex["class"], "clojure.lang.ExceptionInfo");
    assert!(
        ex["example"]["error"]
            .as_str()
            .unwrap()
            .contains(":note disallowed-key")
    );
    assert_eq!(res["exceptions"]["valid?"], true);
    // The values still spread, so nothing is lost: only stats fails the test.
    assert_eq!(res["workload"]["lost-count"], 0);
    assert_eq!(res["valid?"], false);
    assert_eq!(r.code, 1);
}

#[test]
fn message_counts_match_a_node_with_known_traffic() {
    let nodes = 4;
    let r = hearsay(&[
        "-w",
        "broadcast",
        "--bin",
        &node("fanout_exact.py"),
        "--node-count",
        "4",
        "--time-limit",
        "4",
        "--rate",
        "20",
        "--recovery",
        "1",
    ]);
    assert_eq!(r.code, 0, "{}", r.explain());
    let res = r.results();
    let history = std::fs::read_to_string(r.latest().join("history.txt")).unwrap();
    let invokes = history
        .lines()
        .filter(|l| l.contains("\t:invoke\t"))
        .count() as i64;
    let broadcasts = history
        .lines()
        .filter(|l| l.contains("\t:invoke\t:broadcast\t"))
        .count() as i64;
    assert!(broadcasts > 10);
    let net = &res["net"];
    // Each broadcast is copied once to each other node; nothing else.
    assert_eq!(int(&net["servers"]["msg-count"]), (nodes - 1) * broadcasts);
    assert_eq!(net["servers"]["send-count"], net["servers"]["msg-count"]);
    assert_eq!(net["servers"]["recv-count"], net["servers"]["send-count"]);
    // Clients: request and reply per op, plus init/init_ok and topology/topology_ok per node.
    assert_eq!(int(&net["clients"]["msg-count"]), 2 * invokes + 4 * nodes);
    assert_eq!(
        int(&net["all"]["msg-count"]),
        int(&net["servers"]["msg-count"]) + int(&net["clients"]["msg-count"])
    );
    let per_op = net["servers"]["msgs-per-op"].as_f64().unwrap();
    let want = ((nodes - 1) * broadcasts) as f64 / invokes as f64;
    assert!((per_op - want).abs() < 1e-4, "{per_op} vs {want}");
    assert_eq!(int(&res["stats"]["count"]), invokes);
}

#[test]
fn echo_is_checked_both_ways() {
    let good = hearsay(&[
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
    ]);
    assert_eq!(good.code, 0, "{}", good.explain());
    assert_eq!(good.results()["workload"]["errors"], serde_json::json!([]));
    let bad = hearsay(&[
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
        "echo-wrong",
    ]);
    assert_eq!(bad.code, 1, "{}", bad.explain());
    let errors = bad.results()["workload"]["errors"].clone();
    assert!(
        errors[0][0]
            .as_str()
            .unwrap()
            .contains("Expected a message with :echo"),
        "{errors}"
    );
}

#[test]
fn a_node_that_exits_early_crashes_the_test() {
    let r = hearsay(&[
        "-w",
        "echo",
        "--bin",
        &node("misc.py"),
        "--node-count",
        "1",
        "--time-limit",
        "3",
        "--",
        "exit-early",
    ]);
    assert_eq!(r.code, 255, "{}", r.explain());
    let crash = std::fs::read_to_string(r.latest().join("crash.txt")).unwrap();
    assert!(
        crash.contains("Node n0 crashed with exit status 3"),
        "{crash}"
    );
    assert!(
        crash.contains("giving up"),
        "stderr tail in the report: {crash}"
    );
    assert!(
        !r.latest().join("results.edn").exists(),
        "no analysis after a crash"
    );
}

#[test]
fn a_node_that_ignores_init_crashes_the_test() {
    let r = hearsay(&[
        "-w",
        "echo",
        "--bin",
        &node("misc.py"),
        "--node-count",
        "1",
        "--",
        "silent",
    ]);
    assert_eq!(r.code, 255, "{}", r.explain());
    assert!(
        r.stderr.contains("respond to an init message"),
        "{}",
        r.explain()
    );
}

#[test]
fn a_non_json_stdout_line_silences_the_node_like_maelstrom() {
    // After the garbage line Maelstrom stops reading the node's stdout: its
    // echo replies are lost, every op times out, and the checker fails it.
    let r = hearsay(&[
        "-w",
        "echo",
        "--bin",
        &node("misc.py"),
        "--node-count",
        "1",
        "--time-limit",
        "2",
        "--rate",
        "5",
        "--",
        "garbage",
    ]);
    assert_eq!(r.code, 1, "{}", r.explain());
    let res = r.results();
    assert_eq!(res["stats"]["ok-count"], 0);
    let warnings = res["hearsay"]["warnings"].to_string();
    assert!(warnings.contains("not well-formed JSON"), "{warnings}");
    assert!(r.stdout.contains("WARNING"), "{}", r.stdout);
}

#[test]
fn a_node_talks_to_maelstroms_services_as_server_traffic() {
    let r = hearsay(&[
        "-w",
        "echo",
        "--bin",
        &node("misc.py"),
        "--node-count",
        "1",
        "--time-limit",
        "2",
        "--rate",
        "5",
        "--",
        "service",
    ]);
    assert_eq!(r.code, 0, "{}", r.explain());
    let res = r.results();
    let echoes = int(&res["stats"]["ok-count"]);
    assert!(echoes > 0);
    assert_eq!(res["hearsay"]["warnings"], serde_json::json!([]));
    // A read to seq-kv per echo, and its answer (error 20: no such key),
    // both counted as server messages, as in Maelstrom.
    assert_eq!(int(&res["net"]["servers"]["msg-count"]), 2 * echoes);
    let journal = std::fs::read_to_string(r.latest().join("net-journal.jsonl")).unwrap();
    assert!(
        journal.contains(r#""src":"seq-kv","dest":"n0","body":{"type":"error","code":20"#),
        "{journal}"
    );
}

#[test]
fn a_null_messages_read_is_a_read_of_nothing_as_in_maelstrom() {
    let r = hearsay(&[
        "-w",
        "broadcast",
        "--bin",
        &node("misc.py"),
        "--node-count",
        "1",
        "--time-limit",
        "2",
        "--rate",
        "10",
        "--recovery",
        "0",
        "--",
        "null-read",
    ]);
    // Not malformed (no crashed ops): the acknowledged values are lost.
    assert_eq!(r.code, 1, "{}", r.explain());
    let res = r.results();
    assert_eq!(res["stats"]["info-count"], 0, "{}", r.explain());
    assert!(res["workload"]["lost-count"].as_i64().unwrap() > 0);
}

#[test]
fn bad_arguments_exit_254_with_a_reason() {
    let not_exec = tempfile::NamedTempFile::new().unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["-w".into(), "nope".into()], "unknown workload"),
        (vec!["-w".into(), "lin-kv".into()], "-w lin-kv needs --bin"),
        (
            vec![
                "--bin".into(),
                "/no/such/node".into(),
                "-w".into(),
                "echo".into(),
            ],
            "/no/such/node",
        ),
        (
            vec![
                "--bin".into(),
                not_exec.path().display().to_string(),
                "-w".into(),
                "echo".into(),
            ],
            "not executable",
        ),
        (
            vec![
                "--latency-dist".into(),
                "uniform".into(),
                "-w".into(),
                "echo".into(),
            ],
            "needs --latency > 0",
        ),
        (
            vec![
                "--latency".into(),
                "0".into(),
                "--latency-dist".into(),
                "exponential".into(),
            ],
            "needs --latency > 0",
        ),
        (
            vec!["--nemesis".into(), "kill,frobnicate".into()],
            "unknown nemesis fault \"frobnicate\"",
        ),
        (vec!["--concurrency".into(), "0".into()], "--concurrency"),
        (vec!["--topology".into(), "ring".into()], "unknown topology"),
        (vec!["--rate".into(), "fast".into()], "invalid value"),
    ];
    for (args, want) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = hearsay(&args);
        assert_eq!(r.code, 254, "{args:?}: {}", r.explain());
        assert!(
            r.stderr.contains(want),
            "{args:?}: wanted {want:?} in {}",
            r.stderr
        );
    }
    let help = Command::new(env!("CARGO_BIN_EXE_hearsay"))
        .args(["test", "--help"])
        .output()
        .unwrap();
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("Gossip Glomers 3d"));
}

#[test]
fn twenty_five_nodes_at_rate_100_report_issue_lag() {
    let r = hearsay(&[
        "--scenario",
        "3d",
        "--time-limit",
        "4",
        "--recovery",
        "2",
        "--no-journal",
    ]);
    assert_eq!(r.code, 0, "{}", r.explain());
    let res = r.results();
    let lag = &res["hearsay"]["issue-lag-ms"];
    assert!(lag["0.5"].as_f64().is_some(), "{lag}");
    assert!(int(&res["hearsay"]["issued-ops"]) > 200);
    assert!(r.stdout.contains("issue lag"));
    assert!(res["net"]["servers"]["msgs-per-op"].is_number());
}

#[test]
fn the_simulator_replays_a_seed_exactly() {
    let args = [
        "--sim",
        "--scenario",
        "3d",
        "--nemesis",
        "partition",
        "--time-limit",
        "10",
        "--seed",
    ];
    let trace = |seed: &str| {
        let mut a = args.to_vec();
        a.push(seed);
        let r = hearsay(&a);
        assert_eq!(r.code, 0, "{}", r.explain());
        let res = r.results();
        assert_eq!(res["hearsay"]["executor"], "sim");
        (
            res["hearsay"]["trace-hash"].as_str().unwrap().to_string(),
            res["net"].clone(),
        )
    };
    let (a, net_a) = trace("21");
    let (b, net_b) = trace("21");
    let (c, _) = trace("22");
    assert_eq!(a, b, "same seed, same trace");
    assert_eq!(net_a, net_b);
    assert_ne!(a, c, "another seed, another trace");
}

#[test]
fn simulator_and_processes_agree_on_the_same_scenario() {
    let scenario = [
        "-w",
        "broadcast",
        "--node-count",
        "10",
        "--rate",
        "50",
        "--latency",
        "50",
        "--time-limit",
        "6",
        "--recovery",
        "2",
        "--seed",
        "3",
    ];
    let per_op = |sim: bool| {
        let mut a = scenario.to_vec();
        if sim {
            a.push("--sim");
        }
        let r = hearsay(&a);
        assert_eq!(r.code, 0, "{}", r.explain());
        let res = r.results();
        assert_eq!(res["workload"]["lost-count"], 0);
        res["net"]["servers"]["msgs-per-op"].as_f64().unwrap()
    };
    let (process, sim) = (per_op(false), per_op(true));
    let gap = (process - sim).abs() / sim;
    assert!(
        gap <= 0.10,
        "process {process:.3} vs sim {sim:.3} msgs-per-op ({:.1}% apart)",
        gap * 100.0
    );
}

/// A one-run, 3-second bench of `points` (the sweep's own flags) into
/// `out`: its exit code, stdout and stderr.
fn short_bench(out: &Path, points: &[&str]) -> (Option<i32>, String, String) {
    let r = Command::new(env!("CARGO_BIN_EXE_hearsay"))
        .arg("bench")
        .args(points)
        .args(["--nemesis", "none", "--runs", "1", "--time-limit", "3"])
        .args(["--recovery", "2", "--out"])
        .arg(out)
        .output()
        .unwrap();
    (
        r.status.code(),
        String::from_utf8_lossy(&r.stdout).into_owned(),
        String::from_utf8_lossy(&r.stderr).into_owned(),
    )
}

#[test]
fn bench_writes_its_table_csv_json_and_plots() {
    let out = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = short_bench(
        out.path(),
        &[
            "--strategies",
            "tree,plumtree",
            "--presets",
            "efficient",
            "--nodes",
            "5,30",
        ],
    );
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let dir = out.path().join("latest");
    let csv = std::fs::read_to_string(dir.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 4, "{csv}");
    assert!(csv.contains("5,none,efficient,tree,process,"));
    assert!(csv.contains("30,none,efficient,plumtree,sim,"));
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 4);
    assert!(json[0]["median"]["msgs-per-op"].as_f64().unwrap() > 0.0);
    for svg in ["pareto-5.svg", "pareto-30.svg"] {
        let text = std::fs::read_to_string(dir.join(svg)).unwrap();
        assert_eq!(text.matches(r#"class="point""#).count(), 2, "{svg}");
    }
    assert!(
        stdout.contains("| 30 | none | efficient | plumtree | sim |"),
        "{stdout}"
    );
}

#[test]
fn a_counter_bench_shows_no_figure_it_does_not_have() {
    // Counters have no stable latencies and nothing to lose: the table
    // says "–", the CSV leaves the cell empty, the JSON says null, and
    // no latency plot is drawn (it had a -1 in every one of these).
    let out = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = short_bench(
        out.path(),
        &[
            "--workload",
            "g-counter",
            "--strategies",
            "tree",
            "--presets",
            "efficient",
            "--nodes",
            "5",
        ],
    );
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        !stdout.contains("-1") && !stderr.contains("-1"),
        "{stdout}\n{stderr}"
    );
    assert!(!stderr.contains("True"), "{stderr}");
    let dir = out.path().join("latest");
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    assert!(json[0]["median"]["median-ms"].is_null(), "{json}");
    assert!(json[0]["median"]["msgs-per-op"].as_f64().unwrap() > 0.0);
    let csv = std::fs::read_to_string(dir.join("results.csv")).unwrap();
    assert!(!csv.contains("-1"), "{csv}");
    assert!(!dir.join("pareto-5.svg").exists(), "nothing to draw");
}

/// lin-kv (maelstrom-spec-more.md 2) on three small Python nodes.
fn lin_kv(mode: &str, extra: &[&str]) -> Run {
    let bin = node("lin_kv.py");
    let mut args = vec![
        "--bin",
        &bin,
        "--node-count",
        "3",
        "--concurrency",
        "2n",
        "--time-limit",
        "5",
        "--rate",
        "60",
        "--seed",
        "3",
    ];
    args.extend_from_slice(extra);
    args.extend(["--", mode]);
    hearsay(&args)
}

#[test]
fn lin_kv_is_the_default_with_bin_and_a_correct_node_passes() {
    // No -w: Maelstrom's default workload.
    let r = lin_kv(
        "proxy",
        &["--nemesis", "partition", "--nemesis-interval", "1"],
    );
    assert_eq!(r.code, 0, "{}", r.explain());
    let res = r.results();
    let w = &res["workload"];
    assert_eq!(w["valid?"], true, "{w}");
    assert_eq!(w["failures"], serde_json::json!([]));
    // One key per group of 2N threads: 2n workers make one group, key 0.
    assert_eq!(w["results"]["0"]["linearizable"]["valid?"], true, "{w}");
    assert!(int(&res["stats"]["ok-count"]) > 100, "{}", res["stats"]);
    assert!(r.stdout.contains("lin-kv"), "{}", r.explain());
}

#[test]
fn lin_kv_primary_node_stays_linearizable_when_partitions_time_requests_out() {
    let r = lin_kv(
        "primary",
        &[
            "-w",
            "lin-kv",
            "--nemesis",
            "partition",
            "--nemesis-interval",
            "1",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.explain());
    let res = r.results();
    assert_eq!(res["workload"]["valid?"], true, "{}", res["workload"]);
    // Partitions made some writes indeterminate, which the checker must
    // place or drop; the timeout is lin-kv's 1 s, not 5 s.
    assert!(int(&res["stats"]["info-count"]) > 0, "{}", res["stats"]);
}

#[test]
fn lin_kv_stale_replica_reads_are_not_linearizable() {
    let r = lin_kv("stale", &["-w", "lin-kv"]);
    assert_eq!(r.code, 1, "{}", r.explain());
    let res = r.results();
    let w = &res["workload"];
    assert_eq!(w["valid?"], false, "{w}");
    assert_eq!(w["failures"], serde_json::json!([0]), "{w}");
    let lin = &w["results"]["0"]["linearizable"];
    assert_eq!(lin["valid?"], false);
    // The report names the read that could not be placed.
    assert_eq!(lin["op"]["f"], "read", "{lin}");
    assert!(r.stdout.contains("Analysis invalid!"));
    // ... and draws it, as Maelstrom's Raft chapter expects.
    let key = r.latest().join("independent/0");
    let svg = std::fs::read_to_string(key.join("linear.svg")).unwrap();
    assert!(
        svg.contains("Final paths") && svg.contains("#D0021B"),
        "{svg}"
    );
    for f in ["results.edn", "history.edn", "timeline.html"] {
        assert!(key.join(f).is_file(), "{f} missing");
    }
    assert!(
        r.stdout.contains("independent/0/linear.svg"),
        "{}",
        r.stdout
    );
}

/// The longest invoke-to-completion time (ms) of any client op, read from
/// `history.edn` (each op's first line holds its time, type and process).
fn max_op_latency_ms(run: &Run) -> f64 {
    let text = std::fs::read_to_string(run.latest().join("history.edn")).unwrap();
    let mut open = std::collections::HashMap::new();
    let mut max = 0u64;
    for line in text.lines().filter(|l| l.starts_with("{:index")) {
        let field = |k: &str| {
            let rest = &line[line.find(k)? + k.len()..];
            Some(rest[..rest.find(',')?].trim().to_string())
        };
        let (Some(t), Some(kind), Some(p)) = (field(":time"), field(":type"), field(":process"))
        else {
            continue;
        };
        let t: u64 = t.parse().unwrap();
        if kind == ":invoke" {
            open.insert(p, t);
        } else if let Some(t0) = open.remove(&p) {
            max = max.max(t - t0);
        }
    }
    max as f64 / 1e6
}

#[test]
fn pause_stops_and_resumes_node_processes_and_a_gossip_node_survives_it() {
    let r = hearsay(&[
        "-w",
        "broadcast",
        "--bin",
        &node("gossip.py"),
        "--node-count",
        "5",
        "--time-limit",
        "8",
        "--rate",
        "20",
        "--nemesis",
        "pause",
        "--nemesis-interval",
        "1",
        "--recovery",
        "2",
        "--seed",
        "7",
    ]);
    assert_eq!(r.code, 0, "{}", r.explain());
    let res = r.results();
    assert_eq!(res["workload"]["lost-count"], 0);
    let history = std::fs::read_to_string(r.latest().join("history.txt")).unwrap();
    assert!(
        history.contains(":nemesis\t:info\t:pause\t{\"n"),
        "{history}"
    );
    // Before the final reads every node is let go.
    let last_nemesis = history
        .lines()
        .rfind(|l| l.starts_with(":nemesis"))
        .unwrap();
    assert!(
        last_nemesis.starts_with(":nemesis\t:info\t:resume\t{\"n0\" :resumed"),
        "{last_nemesis}"
    );
    // The processes really stopped: with no latency an op takes
    // milliseconds, unless its node was paused.
    let slowest = max_op_latency_ms(&r);
    assert!(slowest > 300.0, "slowest op {slowest} ms");
    // The same run without the nemesis is fast.
    let calm = hearsay(&[
        "-w",
        "broadcast",
        "--bin",
        &node("gossip.py"),
        "--node-count",
        "5",
        "--time-limit",
        "4",
        "--rate",
        "20",
        "--recovery",
        "1",
        "--seed",
        "7",
    ]);
    assert_eq!(calm.code, 0, "{}", calm.explain());
    assert!(max_op_latency_ms(&calm) < slowest);
}

#[test]
fn hearsay_node_passes_set_and_counter_workloads_under_pause_and_partitions_in_the_simulator() {
    for w in ["broadcast", "g-set", "pn-counter"] {
        let run = || {
            let r = hearsay(&[
                "--sim",
                "-w",
                w,
                "--node-count",
                "5",
                "--time-limit",
                "20",
                "--rate",
                "20",
                "--nemesis",
                "pause,partition",
                "--nemesis-interval",
                "2",
                "--seed",
                "11",
            ]);
            assert_eq!(r.code, 0, "{w}: {}", r.explain());
            let res = r.results();
            assert_eq!(res["workload"]["valid?"], true, "{w}: {}", res["workload"]);
            let h = std::fs::read_to_string(r.latest().join("history.txt")).unwrap();
            assert!(h.contains("\t:pause\t{\"n"), "{w}: no pause");
            assert!(h.contains("\t:start-partition\t"), "{w}: no partition");
            res["hearsay"]["trace-hash"].as_str().unwrap().to_string()
        };
        assert_eq!(run(), run(), "{w}: the same seed replays the same run");
    }
}

/// How many `init` messages the run's journal shows (one per node, plus
/// one per restart).
fn inits(run: &Run) -> usize {
    let journal = std::fs::read_to_string(run.latest().join("net-journal.jsonl")).unwrap();
    journal
        .lines()
        .filter(|l| l.contains("\"type\":\"send\"") && l.contains("\"type\":\"init\""))
        .count()
}

#[test]
fn kill_restarts_node_processes_with_init_and_state_kept_elsewhere_survives() {
    // The proxy keeps every register in Maelstrom's lin-kv service, so
    // killing its processes loses nothing.
    let r = lin_kv(
        "proxy",
        &[
            "-w",
            "lin-kv",
            "--nemesis",
            "kill,partition",
            "--nemesis-interval",
            "0.5",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.explain());
    let res = r.results();
    assert_eq!(res["workload"]["valid?"], true, "{}", res["workload"]);
    let h = std::fs::read_to_string(r.latest().join("history.txt")).unwrap();
    // Nodes killed since the last start are started (and sent init) again.
    let (mut down, mut restarted) = (std::collections::BTreeSet::new(), 0);
    for l in h.lines().filter(|l| l.starts_with(":nemesis\t:info\t")) {
        if l.contains("\t:kill\t{") {
            down.extend(l.split('"').skip(1).step_by(2).map(str::to_string));
        } else if l.contains("\t:start\t{") {
            restarted += std::mem::take(&mut down).len();
        }
    }
    assert!(restarted > 0, "no node was killed and started: {h}");
    assert_eq!(inits(&r), 3 + restarted, "one init per start");
}

#[test]
fn the_simulator_kills_and_restarts_hearsay_nodes_reproducibly() {
    let run = || {
        let r = hearsay(&[
            "--sim",
            "-w",
            "broadcast",
            "--node-count",
            "5",
            "--time-limit",
            "20",
            "--rate",
            "20",
            "--nemesis",
            "kill",
            "--nemesis-interval",
            "2",
            "--seed",
            "5",
        ]);
        // Values acknowledged by a node killed before it told anyone may be
        // lost (nodes keep state in memory only); the run itself completes.
        assert!(r.code == 0 || r.code == 1, "{}", r.explain());
        let h = std::fs::read_to_string(r.latest().join("history.txt")).unwrap();
        assert!(h.contains("\t:kill\t{\"n"), "no kill");
        assert!(inits(&r) > 5, "restarts send init again");
        // A restarted node answers reads in the broadcast schema again.
        assert_eq!(r.results()["exceptions"]["valid?"], true);
        r.results()["hearsay"]["trace-hash"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(run(), run(), "the same seed replays kills and restarts");
}

#[test]
fn hearsay_node_with_a_data_dir_loses_nothing_to_kills() {
    // Seed 2 kills every node twice early on: without --data-dir the
    // values acknowledged just before are gone, with it none is.
    let sim = |w: &str, extra: &[&str]| {
        let mut a = vec![
            "--sim",
            "-w",
            w,
            "--node-count",
            "5",
            "--time-limit",
            "30",
            "--rate",
            "20",
            "--nemesis",
            "kill",
            "--nemesis-interval",
            "3",
            "--seed",
            "2",
        ];
        a.extend_from_slice(extra);
        hearsay(&a)
    };
    for w in ["broadcast", "g-set"] {
        let lossy = sim(w, &[]);
        assert_eq!(lossy.code, 1, "{w}: {}", lossy.explain());
        assert!(int(&lossy.results()["workload"]["lost-count"]) > 0);
        let kept = sim(w, &["--", "--data-dir", "unused-under-sim"]);
        assert_eq!(kept.code, 0, "{w}: {}", kept.explain());
        assert_eq!(kept.results()["workload"]["lost-count"], 0);
    }
    // Counters: a killed node's own totals were gone, so its later adds
    // counted from 0 again, under the tally its peers held (final reads
    // too low); kept, they go on from where they were.
    for w in ["g-counter", "pn-counter"] {
        let lossy = sim(w, &[]);
        assert_eq!(lossy.code, 1, "{w}: {}", lossy.explain());
        let kept = sim(w, &["--", "--data-dir", "unused-under-sim"]);
        assert_eq!(kept.code, 0, "{w}: {}", kept.explain());
    }
    // The same with processes and a real directory.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().display().to_string();
    let r = hearsay(&[
        "-w",
        "broadcast",
        "--node-count",
        "5",
        "--time-limit",
        "10",
        "--rate",
        "20",
        "--nemesis",
        "kill",
        "--nemesis-interval",
        "1",
        "--recovery",
        "2",
        "--seed",
        "2",
        "--",
        "--data-dir",
        &data,
    ]);
    assert_eq!(r.code, 0, "{}", r.explain());
    assert_eq!(r.results()["workload"]["lost-count"], 0);
    assert!(dir.path().join("n0.jsonl").is_file());
}

#[test]
fn a_capped_journal_keeps_the_first_messages_and_changes_no_figure() {
    let run = |extra: &[&str]| {
        let mut a = vec![
            "--sim",
            "-w",
            "broadcast",
            "--node-count",
            "25",
            "--time-limit",
            "10",
            "--rate",
            "100",
            "--seed",
            "1",
        ];
        a.extend_from_slice(extra);
        let r = hearsay(&a);
        assert_eq!(r.code, 0, "{}", r.explain());
        r
    };
    let full = run(&[]);
    let capped = run(&["--journal-limit", "1"]);
    let size = |r: &Run| {
        std::fs::metadata(r.latest().join("net-journal.jsonl"))
            .unwrap()
            .len()
    };
    assert!(size(&full) > 1 << 20, "the test needs a journal over 1 MB");
    assert!(size(&capped) <= 1 << 20);
    assert!(
        capped.stdout.contains("net journal     cut at"),
        "{}",
        capped.stdout
    );
    assert!(!full.stdout.contains("net journal"));
    let (a, b) = (full.results(), capped.results());
    assert_eq!(a["net"], b["net"]);
    assert_eq!(a["workload"], b["workload"]);
    assert_eq!(a["hearsay"]["trace-hash"], b["hearsay"]["trace-hash"]);
    assert!(int(&b["hearsay"]["journal"]["cut-events"]) > 0);
    // The capped file is a clean prefix of the full one.
    let f = std::fs::read_to_string(full.latest().join("net-journal.jsonl")).unwrap();
    let c = std::fs::read_to_string(capped.latest().join("net-journal.jsonl")).unwrap();
    assert!(f.starts_with(&c) && c.ends_with('\n'));
}
