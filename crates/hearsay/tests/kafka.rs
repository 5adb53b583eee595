//! kafka (Gossip Glomers challenge 5, maelstrom-spec-more.md 3) end to end:
//! the challenge pages' commands, shortened to a few seconds at a lower
//! rate and a 1 s recovery, pass with correct Python nodes
//! (`tests/nodes/kafka.py`), and each deliberately broken node is rejected
//! with its error type named in the results.

mod common;
use common::{Run, documented, hearsay, node};

const GLOMERS_5A: &str = "-w kafka --bin ~/go/bin/maelstrom-kafka --node-count 1 --concurrency 2n --time-limit 20 --rate 1000";
const GLOMERS_5B: &str = "-w kafka --bin ~/go/bin/maelstrom-kafka --node-count 2 --concurrency 2n --time-limit 20 --rate 1000";

/// A Gossip Glomers command line as the challenge page gives it (after
/// `./maelstrom test`), run on `mode` of our node: 20 s at 1000 ops/s cut
/// to 3 s at 200, and the 10 s recovery before the final polls to 1 s.
fn glomers(command: &str, mode: &str, extra: &[&str]) -> Run {
    let bin = node("kafka.py");
    let mut flags = vec!["--recovery", "1"];
    flags.extend_from_slice(extra);
    let replace = [
        ("~/go/bin/maelstrom-kafka", bin.as_str()),
        ("--time-limit 20", "--time-limit 3"),
        ("--rate 1000", "--rate 200"),
    ];
    documented(command, &replace, &flags, mode)
}

/// A clean run of `workers` client workers.
fn passes(r: &Run, workers: usize) {
    assert_eq!(r.code, 0, "{}", r.explain());
    let res = r.results();
    let w = &res["workload"];
    assert_eq!(w["valid?"], true, "{w}");
    assert_eq!(w["error-types"], serde_json::json!([]), "{w}");
    assert_eq!(w["bad-error-types"], serde_json::json!([]), "{w}");
    // The stats checker forgives :crash, which never succeeds.
    let stats = &res["stats"];
    assert_eq!(stats["valid?"], true, "{stats}");
    assert_eq!(stats["by-f"]["crash"]["ok-count"], 0, "{stats}");
    for f in ["send", "poll"] {
        let ok = stats["by-f"][f]["ok-count"].as_i64().unwrap_or(0);
        // About 300 each at rate 200 for 3 s; a loaded machine issues fewer.
        assert!(ok > 30, "{f}: {stats}");
    }
    assert!(r.stdout.contains("Everything looks good!"), "{}", r.stdout);
    // Ops are recorded as Jepsen records them, and the final phase ran:
    // each worker crashed, assigned every key, and polled.
    let history = std::fs::read_to_string(r.latest().join("history.edn")).unwrap();
    for shape in [
        ":f :send, :value [[:send \"",
        ":f :poll, :value [[:poll {\"",
        ":f :crash, :value nil",
    ] {
        assert!(history.contains(shape), "{shape} in {}", &history[..500]);
    }
    let finals = |f: &str| {
        history
            .lines()
            .filter(|l| l.contains(":type :ok") && l.contains(f) && l.contains(":final? true"))
            .count()
    };
    assert_eq!(
        finals(":f :assign"),
        workers,
        "one seeking assign per worker"
    );
    assert!(
        finals(":f :poll") >= workers,
        "{} final polls",
        finals(":f :poll")
    );
}

#[test]
fn glomers_5a_single_node() {
    passes(&glomers(GLOMERS_5A, "single", &[]), 2);
}

#[test]
fn glomers_5b_multi_node_forwarding() {
    let r = glomers(GLOMERS_5B, "forward", &[]);
    passes(&r, 4);
    // Requests for keys the other node owns were forwarded.
    let servers = &r.results()["net"]["servers"];
    assert!(servers["msg-count"].as_i64().unwrap() > 30, "{servers}");
}

/// `--scenario 5b` is the challenge page's 5b command (5a and 5c too).
#[test]
fn the_5_scenarios_are_the_challenge_commands() {
    for (scenario, nodes, mode) in [
        ("5a", 1, "single"),
        ("5b", 2, "forward"),
        ("5c", 2, "forward"),
    ] {
        let r = glomers(
            &format!(
                "--scenario {scenario} --bin ~/go/bin/maelstrom-kafka --time-limit 20 --rate 1000"
            ),
            mode,
            &[],
        );
        passes(&r, 2 * nodes);
        let cmd = std::fs::read_to_string(r.latest().join("command.txt")).unwrap();
        assert!(cmd.contains("-w kafka --bin"), "{cmd}");
        let want = format!("--node-count {nodes} --time-limit 3 --rate 200");
        assert!(cmd.contains(&want), "{scenario}: {want:?} not in {cmd}");
    }
    let r = hearsay(&["--scenario", "5b"]);
    assert_eq!(r.code, 254, "{}", r.explain());
    assert!(r.stderr.contains("needs --bin"), "{}", r.explain());
}

/// `mode` fails the 5a run, naming `error` among its error types.
fn rejected(mode: &str, error: &str) -> Run {
    let r = glomers(GLOMERS_5A, mode, &["--seed", "5"]);
    assert_eq!(r.code, 1, "{}", r.explain());
    let res = r.results();
    assert_eq!(res["workload"]["valid?"], false, "{}", res["workload"]);
    let types = r.error_types();
    assert!(types.iter().any(|t| t == error), "{error} not in {types:?}");
    let bad = &res["workload"]["bad-error-types"];
    assert!(bad.as_array().unwrap().iter().any(|t| t == error), "{bad}");
    assert!(r.stdout.contains(error), "{}", r.stdout);
    r
}

#[test]
fn a_node_that_loses_acknowledged_sends_is_rejected() {
    let r = rejected("lose", "lost-write");
    assert!(r.error_types().contains(&"unseen".to_string()));
    let unseen = &r.results()["workload"]["unseen"]["unseen"];
    assert!(
        unseen.as_object().is_some_and(|m| !m.is_empty()),
        "{unseen}"
    );
    // Jepsen's files: an order picture for each key with unseen messages,
    // the plots, the consume counts.
    let dir = r.latest();
    for key in unseen.as_object().unwrap().keys() {
        let name = format!("{:03}.svg", key.parse::<i64>().unwrap());
        let svg = std::fs::read_to_string(dir.join("orders").join(&name)).unwrap();
        assert!(svg.contains(">w"), "{name}: {svg}");
    }
    for f in [
        "unseen.svg",
        "realtime-lag-thread.svg",
        "consume-counts.edn",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
}

#[test]
fn a_node_that_redelivers_polled_messages_is_rejected() {
    rejected("reorder", "nonmonotonic-poll");
}

#[test]
fn a_node_that_skips_messages_is_rejected() {
    rejected("skip", "poll-skip");
}

#[test]
fn a_node_that_reuses_offsets_is_rejected() {
    rejected("dup-offset", "inconsistent-offsets");
}

#[test]
fn kafka_needs_a_node_binary() {
    let r = hearsay(&["-w", "kafka"]);
    assert_ne!(r.code, 0, "{}", r.explain());
    assert!(r.stderr.contains("--bin"), "{}", r.explain());
}
