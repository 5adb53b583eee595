//! txn-list-append (Maelstrom's doc/05-datomic, maelstrom-spec-more.md 5)
//! end to end: the chapter's commands, shortened to a few seconds, pass
//! with correct Python nodes (`tests/nodes/txn_append.py`), and each
//! deliberately broken node is rejected with the anomaly it commits named
//! in the results.

mod common;
use common::{Run, documented, hearsay, int, node, on_node};
use std::process::Command;

/// A doc/05-datomic command line (after `./maelstrom test`), run on `mode`
/// of our node, cut to 3 s.
fn datomic_doc(command: &str, mode: &str) -> Run {
    let bin = node("txn_append.py");
    let replace = [
        ("datomic.rb", bin.as_str()),
        ("--time-limit 10", "--time-limit 3"),
        ("--time-limit 30", "--time-limit 3"),
    ];
    documented(command, &replace, &[], mode)
}

/// Our node in `mode` with these flags.
fn append(mode: &str, flags: &[&str]) -> Run {
    on_node("txn_append.py", "txn-list-append", flags, mode)
}

/// Valid, with Elle's bare `{:valid? true}`, and at least `ops` ok ops.
fn passes(r: &Run, ops: i64) {
    assert_eq!(r.code, 0, "{}", r.explain());
    let res = r.results();
    assert_eq!(res["workload"], serde_json::json!({"valid?": true}));
    assert!(int(&res["stats"]["ok-count"]) >= ops, "{}", res["stats"]);
    assert!(r.stdout.contains("Everything looks good!"), "{}", r.stdout);
}

fn fails_with(r: &Run, any_of: &[&str]) -> Vec<String> {
    assert_eq!(r.code, 1, "{}", r.explain());
    let types = r.anomaly_types();
    assert!(
        types.iter().any(|t| any_of.contains(&t.as_str())),
        "{types:?} names none of {any_of:?}"
    );
    types
}

#[test]
fn doc_01_a_single_node_passes() {
    let r = datomic_doc(
        "-w txn-list-append --bin datomic.rb --time-limit 10 --log-stderr --node-count 1",
        "single",
    );
    passes(&r, 5);
    let history = std::fs::read_to_string(r.latest().join("history.edn")).unwrap();
    assert!(
        history.contains(":f :txn, :value [["),
        "{}",
        &history[..500]
    );
    assert!(
        history.contains("[:append "),
        "appends are recorded as such"
    );
}

#[test]
fn doc_01_a_single_node_under_load_is_strict_serializable() {
    let r = datomic_doc(
        "-w txn-list-append --bin datomic.rb --time-limit 30 --node-count 1 --concurrency 10n --rate 100",
        "single",
    );
    // About 300 at rate 100 for 3 s; a loaded machine issues fewer.
    passes(&r, 100);
    // `hearsay check` agrees, and names the unknown model as Maelstrom does.
    let dir = r.latest();
    let check = |models: &str| {
        Command::new(env!("CARGO_BIN_EXE_hearsay"))
            .args([
                "check",
                "-w",
                "txn-list-append",
                "--consistency-models",
                models,
            ])
            .arg(&dir)
            .output()
            .unwrap()
    };
    let ok = check("serializable , read-committed");
    assert_eq!(ok.status.code(), Some(0), "{}", common::explain(&ok));
    let unknown = check("serializable,read-committed");
    assert_eq!(
        unknown.status.code(),
        Some(2),
        "{}",
        common::explain(&unknown)
    );
}

#[test]
fn doc_01_two_nodes_of_the_single_node_design_fail() {
    let r = datomic_doc(
        "-w txn-list-append --bin datomic.rb --time-limit 10 --node-count 2 --rate 100",
        "single",
    );
    let types = fails_with(
        &r,
        &[
            "incompatible-order",
            "G-single-item",
            "G-single-item-realtime",
            "G0",
            "G1c",
        ],
    );
    // Every cycle comes with its argument, in Elle's list-append words.
    let w = &r.results()["workload"];
    let cyc = types
        .iter()
        .find(|t| t.starts_with('G') && !t.ends_with("cycle-exists"));
    if let Some(t) = cyc {
        let text = w["anomalies"][t.as_str()][0]["explanation"]
            .as_str()
            .unwrap();
        assert!(text.starts_with("Let T1 = index "), "{text}");
        assert!(text.ends_with(": a contradiction!"), "{text}");
        // ... and in Elle's elle/<type>.txt, with a picture of the cycle.
        let elle = r.latest().join("elle");
        let txt = std::fs::read_to_string(elle.join(format!("{t}.txt"))).unwrap();
        assert!(
            txt.starts_with(&format!("{t} #0\nLet:\n  T1 = {{")),
            "{txt}"
        );
        let svg = std::fs::read_to_string(elle.join(t.as_str()).join("0.svg")).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("T2"), "{svg}");
        assert!(r.stdout.contains("explained in"), "{}", r.stdout);
    }
}

#[test]
fn doc_02_the_datomic_design_passes_on_two_nodes() {
    let r = datomic_doc(
        "-w txn-list-append --bin datomic.rb --time-limit 10 --node-count 2 --rate 100",
        "datomic",
    );
    // About 300 at rate 100 for 3 s; a loaded machine issues fewer.
    passes(&r, 100);
    // Its state lives in lin-kv: the service answered every op.
    assert!(int(&r.results()["net"]["servers"]["msg-count"]) > 100);
}

#[test]
fn doc_04_the_datomic_design_is_serializable_at_any_rate() {
    let r = datomic_doc(
        "-w txn-list-append --bin datomic.rb --time-limit 10 --node-count 2 --rate 100 --consistency-models serializable",
        "datomic",
    );
    // About 300 at rate 100 for 3 s; a loaded machine issues fewer.
    passes(&r, 100);
    let r = datomic_doc(
        "-w txn-list-append --bin datomic.rb --time-limit 10 --node-count 2 --rate 10",
        "datomic",
    );
    passes(&r, 10);
}

#[test]
fn lost_appends_break_the_order_of_a_key() {
    let r = append(
        "lost-append",
        &[
            "--node-count",
            "1",
            "--time-limit",
            "3",
            "--rate",
            "100",
            "--seed",
            "3",
        ],
    );
    let types = fails_with(&r, &["incompatible-order", "lost-update"]);
    assert!(types.contains(&"incompatible-order".into()), "{types:?}");
}

#[test]
fn asynchronous_replication_is_read_committed_not_serializable() {
    let flags = |models: &'static str| {
        [
            "--node-count",
            "2",
            "--time-limit",
            "3",
            "--rate",
            "100",
            "--seed",
            "7",
            "--consistency-models",
            models,
        ]
    };
    passes(&append("read-committed", &flags("read-committed")), 200);
    let r = append("read-committed", &flags("serializable"));
    fails_with(
        &r,
        &[
            "G-single-item",
            "G2-item",
            "G-nonadjacent-item",
            "PL-3-cycle-exists",
        ],
    );
    let w = &r.results()["workload"];
    assert!(
        !w["not"].to_string().contains("read-committed"),
        "{}",
        w["not"]
    );
}

#[test]
fn interleaved_txns_expose_intermediate_appends_as_g1b() {
    let r = append(
        "g1b",
        &[
            "--node-count",
            "1",
            "--concurrency",
            "4n",
            "--time-limit",
            "3",
            "--rate",
            "200",
            "--seed",
            "2",
            "--consistency-models",
            "read-committed",
        ],
    );
    fails_with(&r, &["G1b"]);
    let case = &r.results()["workload"]["anomalies"]["G1b"][0];
    assert_eq!(case["writer"]["type"], "ok", "{case}");
}

#[test]
fn without_bin_the_workload_is_refused() {
    let r = hearsay(&["-w", "txn-list-append"]);
    assert_eq!(r.code, 254, "{}", r.explain());
    assert!(r.stderr.contains("needs --bin"), "{}", r.explain());
}
