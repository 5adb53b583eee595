//! The rw-register checker on hand-built histories: each anomaly is found
//! where it is, named as Elle 0.2.x names it, and forgiven by the models
//! that allow it (so every test here can fail both ways).

use super::*;
use crate::workload::TxnOptions;
use crate::workload::txn::WrTxns;
use proptest::prelude::*;

/// A history from `(process, type, value)` lines, 1 ms apart.
fn history(lines: &[(u64, &str, &str)]) -> History {
    let text: String = lines
        .iter()
        .enumerate()
        .map(|(i, (p, t, v))| {
            format!(
                "{{:time {}, :type :{t}, :process {p}, :f :txn, :value {v}}}\n",
                i * 1_000_000
            )
        })
        .collect();
    History::from_edn(&text).unwrap()
}

/// Each transaction invoked and completed before the next, on process 0
/// unless given: `(value at invocation, type, value at completion)`.
fn serial(txns: &[(&str, &str, &str)]) -> History {
    let mut lines = Vec::new();
    for (inv, t, done) in txns {
        lines.push((0, "invoke", *inv));
        lines.push((0, *t, *done));
    }
    history(&lines)
}

fn check_as(h: &History, models: &str) -> Edn {
    check(h, models)
}

fn types(r: &Edn) -> Vec<String> {
    match r.get("anomaly-types") {
        Some(Edn::List(t)) => t.iter().map(|k| k.compact()).collect(),
        other => panic!("no :anomaly-types in {other:?}: {}", r.compact()),
    }
}

fn valid(r: &Edn) -> Edn {
    r.get("valid?").cloned().unwrap_or(Edn::Nil)
}

/// A wr edge on key 9 between two extra transactions, so that no test
/// fails for an empty graph alone.
const FILLER: [(u64, &str, &str); 4] = [
    (9, "invoke", "[[:w 9 1]]"),
    (9, "ok", "[[:w 9 1]]"),
    (9, "invoke", "[[:r 9 nil]]"),
    (9, "ok", "[[:r 9 1]]"),
];

fn with_filler(lines: &[(u64, &'static str, &'static str)]) -> History {
    let mut all = FILLER.to_vec();
    all.extend_from_slice(lines);
    history(&all)
}

#[test]
fn a_serial_history_is_valid_and_printed_as_maelstrom_prints_it() {
    let h = serial(&[
        ("[[:w 1 nil]]", "ok", "[[:w 1 1]]"),
        ("[[:r 1 nil] [:w 1 2]]", "ok", "[[:r 1 1] [:w 1 2]]"),
        ("[[:r 1 nil] [:r 2 nil]]", "ok", "[[:r 1 2] [:r 2 nil]]"),
    ]);
    let r = check_as(&h, "strict-serializable");
    assert_eq!(
        r.compact(),
        "{:valid? true, :anomaly-types (), :anomalies nil}"
    );
}

#[test]
fn g1a_an_aborted_write_read_by_a_committed_txn() {
    let h = with_filler(&[
        (0, "invoke", "[[:w 1 1]]"),
        (0, "fail", "[[:w 1 1]]"),
        (1, "invoke", "[[:r 1 nil]]"),
        (1, "ok", "[[:r 1 1]]"),
    ]);
    let r = check_as(&h, "read-committed");
    assert_eq!(valid(&r), Edn::Bool(false), "{}", r.pretty());
    assert_eq!(types(&r), [":G1a"]);
    let case = &r.get("anomalies").unwrap().get("G1a").unwrap();
    let Edn::Vector(cases) = case else { panic!() };
    assert_eq!(cases[0].get("mop").unwrap().compact(), "[:r 1 1]");
    assert_eq!(
        cases[0].get("writer").unwrap().get("type"),
        Some(&kw("fail"))
    );
    assert_eq!(r.get("not").unwrap().compact(), "#{:read-committed}");
    // Read uncommitted allows it.
    assert_eq!(valid(&check_as(&h, "read-uncommitted")), Edn::Bool(true));
}

#[test]
fn g1b_an_intermediate_write_read_by_another_txn() {
    let h = with_filler(&[
        (0, "invoke", "[[:w 1 1] [:w 1 2]]"),
        (1, "invoke", "[[:r 1 nil]]"),
        (1, "ok", "[[:r 1 1]]"),
        (0, "ok", "[[:w 1 1] [:w 1 2]]"),
    ]);
    let r = check_as(&h, "read-committed");
    assert_eq!(valid(&r), Edn::Bool(false), "{}", r.pretty());
    assert!(types(&r).contains(&":G1b".to_string()), "{}", r.pretty());
    assert_eq!(valid(&check_as(&h, "read-uncommitted")), Edn::Bool(true));
    // A txn reading its own intermediate write is fine.
    let own = with_filler(&[
        (0, "invoke", "[[:w 1 1] [:r 1 nil] [:w 1 2]]"),
        (0, "ok", "[[:w 1 1] [:r 1 1] [:w 1 2]]"),
    ]);
    assert_eq!(valid(&check_as(&own, "serializable")), Edn::Bool(true));
}

#[test]
fn internal_a_txn_that_does_not_see_its_own_write() {
    let h = with_filler(&[
        (0, "invoke", "[[:w 1 1] [:r 1 nil]]"),
        (0, "ok", "[[:w 1 1] [:r 1 5]]"),
    ]);
    let r = check_as(&h, "serializable");
    assert_eq!(types(&r), [":internal"], "{}", r.pretty());
    let Some(Edn::Vector(cases)) = r.get("anomalies").unwrap().get("internal") else {
        panic!()
    };
    assert_eq!(cases[0].get("expected"), Some(&Edn::Int(1)));
    assert_eq!(r.get("not").unwrap().compact(), "#{:read-atomic}");
    // Not read-committed's business (maelstrom-spec-more.md 4.4).
    assert_eq!(valid(&check_as(&h, "read-committed")), Edn::Bool(true));
    // A nil read does not bind later reads.
    let nil = with_filler(&[
        (0, "invoke", "[[:r 1 nil] [:r 1 nil]]"),
        (0, "ok", "[[:r 1 nil] [:r 1 1]]"),
    ]);
    assert!(!types(&check_as(&nil, "serializable")).contains(&":internal".to_string()));
}

#[test]
fn g1c_circular_information_flow() {
    // Each reads what the other wrote.
    let h = history(&[
        (0, "invoke", "[[:w 1 1] [:r 2 nil]]"),
        (1, "invoke", "[[:w 2 1] [:r 1 nil]]"),
        (0, "ok", "[[:w 1 1] [:r 2 1]]"),
        (1, "ok", "[[:w 2 1] [:r 1 1]]"),
    ]);
    let r = check_as(&h, "read-committed");
    assert_eq!(types(&r), [":G1c"], "{}", r.pretty());
    let Some(Edn::Vector(cycles)) = r.get("anomalies").unwrap().get("G1c") else {
        panic!()
    };
    let c = &cycles[0];
    assert_eq!(c.get("type"), Some(&kw("G1c")));
    let Some(Edn::Vector(ops)) = c.get("cycle") else {
        panic!()
    };
    assert_eq!(ops.len(), 3, "T1 T2 T1");
    let Some(Edn::Str(text)) = c.get("explanation") else {
        panic!()
    };
    assert!(text.contains("(wr), because T1 wrote "), "{text}");
    assert!(text.ends_with(": a contradiction!"), "{text}");
    assert_eq!(valid(&check_as(&h, "read-uncommitted")), Edn::Bool(true));
}

#[test]
fn g_single_item_read_skew() {
    // T2 sees T1's write of 1 but not its write of 2.
    let h = history(&[
        (0, "invoke", "[[:w 1 1] [:w 2 1]]"),
        (1, "invoke", "[[:r 1 nil] [:r 2 nil]]"),
        (0, "ok", "[[:w 1 1] [:w 2 1]]"),
        (1, "ok", "[[:r 1 1] [:r 2 nil]]"),
    ]);
    let r = check_as(&h, "serializable");
    assert_eq!(types(&r), [":G-single-item"], "{}", r.pretty());
    let Some(Edn::Vector(cycles)) = r.get("anomalies").unwrap().get("G-single-item") else {
        panic!()
    };
    let Some(Edn::Vector(steps)) = cycles[0].get("steps") else {
        panic!()
    };
    let kinds: Vec<String> = steps
        .iter()
        .map(|s| s.get("type").unwrap().compact())
        .collect();
    assert!(
        kinds.contains(&":rw".into()) && kinds.contains(&":wr".into()),
        "{kinds:?}"
    );
    let rw = steps
        .iter()
        .find(|s| s.get("type") == Some(&kw("rw")))
        .unwrap();
    assert_eq!(rw.get("value"), Some(&Edn::Nil));
    assert_eq!(rw.get("value'"), Some(&Edn::Int(1)));
    assert_eq!(valid(&check_as(&h, "read-committed")), Edn::Bool(true));
    // Snapshot isolation forbids it too.
    assert_eq!(valid(&check_as(&h, "snapshot-isolation")), Edn::Bool(false));
}

#[test]
fn g2_item_write_skew_passes_snapshot_isolation_not_serializability() {
    let h = history(&[
        (0, "invoke", "[[:r 1 nil] [:w 2 1]]"),
        (1, "invoke", "[[:r 2 nil] [:w 1 1]]"),
        (0, "ok", "[[:r 1 nil] [:w 2 1]]"),
        (1, "ok", "[[:r 2 nil] [:w 1 1]]"),
    ]);
    let r = check_as(&h, "serializable");
    assert_eq!(types(&r), [":G2-item"], "{}", r.pretty());
    assert_eq!(
        r.get("not").unwrap().compact(),
        "#{:repeatable-read}",
        "{}",
        r.pretty()
    );
    assert_eq!(valid(&check_as(&h, "snapshot-isolation")), Edn::Bool(true));
}

#[test]
fn lost_update_two_txns_read_the_same_value_and_write() {
    let h = history(&[
        (0, "invoke", "[[:r 1 nil] [:w 1 1]]"),
        (1, "invoke", "[[:r 1 nil] [:w 1 2]]"),
        (0, "ok", "[[:r 1 nil] [:w 1 1]]"),
        (1, "ok", "[[:r 1 nil] [:w 1 2]]"),
    ]);
    let r = check_as(&h, "repeatable-read");
    let t = types(&r);
    assert!(t.contains(&":lost-update".to_string()), "{}", r.pretty());
    assert!(t.contains(&":G2-item".to_string()), "{}", r.pretty());
    assert_eq!(valid(&check_as(&h, "read-committed")), Edn::Bool(true));
}

#[test]
fn g_nonadjacent_item_rw_edges_apart() {
    // T1 -rw-> T2 -wr-> T3 -rw-> T4 -wr-> T1 on keys 1..4.
    let h = history(&[
        (0, "invoke", "[[:r 1 nil] [:r 4 nil]]"),
        (1, "invoke", "[[:w 1 1] [:w 2 1]]"),
        (2, "invoke", "[[:r 2 nil] [:r 3 nil]]"),
        (3, "invoke", "[[:w 3 1] [:w 4 1]]"),
        (1, "ok", "[[:w 1 1] [:w 2 1]]"),
        (3, "ok", "[[:w 3 1] [:w 4 1]]"),
        (0, "ok", "[[:r 1 nil] [:r 4 1]]"),
        (2, "ok", "[[:r 2 1] [:r 3 nil]]"),
    ]);
    let r = check_as(&h, "snapshot-isolation");
    assert_eq!(types(&r), [":G-nonadjacent-item"], "{}", r.pretty());
    assert_eq!(valid(&check_as(&h, "read-committed")), Edn::Bool(true));
}

#[test]
fn realtime_and_process_variants_need_their_models() {
    // A read after a completed write misses it: stale.
    let h = serial(&[
        ("[[:w 1 nil]]", "ok", "[[:w 1 1]]"),
        ("[[:r 1 nil]]", "ok", "[[:r 1 nil]]"),
    ]);
    let r = check_as(&h, "strict-serializable");
    assert_eq!(types(&r), [":G-single-item-realtime"], "{}", r.pretty());
    assert_eq!(
        r.get("not").unwrap().compact(),
        "#{:strong-snapshot-isolation}"
    );
    let Some(Edn::Vector(c)) = r.get("anomalies").unwrap().get("G-single-item-realtime") else {
        panic!()
    };
    let Some(Edn::Str(text)) = c[0].get("explanation") else {
        panic!()
    };
    assert!(text.contains("before the invocation of"), "{text}");
    assert_eq!(valid(&check_as(&h, "serializable")), Edn::Bool(true));
    // Same process: strong session serializability sees process edges.
    let r = check_as(&h, "strong-session-serializable");
    assert_eq!(types(&r), [":G-single-item-process"], "{}", r.pretty());
}

#[test]
fn a_ww_cycle_is_g1c_with_pl_1_cycle_exists_as_in_maelstrom() {
    // ww edges here come from read-then-write, so each is also a wr edge
    // and Elle explains the cycle as G1c (maelstrom-spec-more.md 6.4:
    // Maelstrom cannot report G0 for rw-register). The ww cycle is still
    // there, and read uncommitted fails on it.
    let h = history(&[
        (0, "invoke", "[[:r 1 nil] [:w 1 2] [:w 2 1]]"),
        (1, "invoke", "[[:r 2 nil] [:w 2 2] [:w 1 1]]"),
        (0, "ok", "[[:r 1 1] [:w 1 2] [:w 2 1]]"),
        (1, "ok", "[[:r 2 1] [:w 2 2] [:w 1 1]]"),
    ]);
    let r = check_as(&h, "read-uncommitted");
    assert_eq!(types(&r), [":PL-1-cycle-exists"], "{}", r.pretty());
    assert_eq!(r.get("not").unwrap().compact(), "#{:read-uncommitted}");
    let r = check_as(&h, "read-committed");
    assert_eq!(types(&r), [":G1c", ":PL-1-cycle-exists"], "{}", r.pretty());
}

#[test]
fn cyclic_versions_drop_the_writes_follow_reads_order() {
    let h = with_filler(&[
        (0, "invoke", "[[:r 1 nil] [:w 1 2]]"),
        (1, "invoke", "[[:r 1 nil] [:w 1 1]]"),
        (0, "ok", "[[:r 1 1] [:w 1 2]]"),
        (1, "ok", "[[:r 1 2] [:w 1 1]]"),
    ]);
    let r = check_as(&h, "read-uncommitted");
    assert_eq!(types(&r), [":cyclic-versions"], "{}", r.pretty());
    let Some(Edn::Vector(c)) = r.get("anomalies").unwrap().get("cyclic-versions") else {
        panic!()
    };
    assert_eq!(c[0].get("scc").unwrap().compact(), "#{1 2}");
}

#[test]
fn unknown_models_and_ambiguous_writers_are_unknown() {
    let h = serial(&[("[[:w 1 nil]]", "ok", "[[:w 1 1]]")]);
    for bad in ["read-committed,serializable", "linearisable", ""] {
        let r = check_as(&h, bad);
        assert_eq!(valid(&r), kw("unknown"), "{bad}: {}", r.pretty());
        let cause = r.get("error").unwrap().get("cause").unwrap().compact();
        assert!(cause.contains("Unknown consistency model"), "{cause}");
    }
    // Two committed writers of a value someone read.
    let dup = serial(&[
        ("[[:w 1 nil]]", "ok", "[[:w 1 1]]"),
        ("[[:w 1 nil]]", "ok", "[[:w 1 1]]"),
        ("[[:r 1 nil]]", "ok", "[[:r 1 1]]"),
    ]);
    assert_eq!(valid(&check_as(&dup, "serializable")), kw("unknown"));
    // A value that is not a transaction.
    let odd = serial(&[("3", "ok", "3")]);
    assert_eq!(valid(&check_as(&odd, "serializable")), kw("unknown"));
}

#[test]
fn an_empty_graph_fails_in_maelstroms_wrapper() {
    let h = serial(&[("[[:w 1 nil]]", "ok", "[[:w 1 1]]")]);
    let r = check_as(&h, "serializable");
    assert_eq!(valid(&r), Edn::Bool(false), "{}", r.pretty());
    assert_eq!(types(&r), [":empty-transaction-graph"]);
}

#[test]
fn a_search_past_its_budget_still_reports_a_cycle() {
    let h = history(&[
        (0, "invoke", "[[:w 1 1] [:r 2 nil]]"),
        (1, "invoke", "[[:w 2 1] [:r 1 nil]]"),
        (0, "ok", "[[:w 1 1] [:r 2 1]]"),
        (1, "ok", "[[:w 2 1] [:r 1 1]]"),
    ]);
    let r = check_with(
        &h,
        "read-committed",
        Budget {
            per_scc: 0,
            total: 0,
        },
    );
    // The timeout itself is dropped by Maelstrom's wrapper; the fallback
    // cycle is still a G1c.
    assert_eq!(types(&r), [":G1c"], "{}", r.pretty());
    let budget = Budget {
        per_scc: 0,
        total: 0,
    };
    let elle = analyse(&h, "read-committed", budget, false).unwrap().0;
    assert_eq!(types(&elle), [":G1c", ":cycle-search-timeout"]);
}

/// A history of transactions run one at a time on a store, some failing
/// (not applied) or indeterminate (applied or not).
fn serial_run(seed: u64, n: usize, outcomes: &[u8]) -> History {
    let mut g = WrTxns::new(
        TxnOptions {
            key_count: 3,
            max_writes_per_key: 6,
            ..TxnOptions::default()
        },
        "w",
    );
    let mut rng = hearsay_core::rng::child(seed, "ops");
    let mut store: HashMap<i64, i64> = HashMap::new();
    let mut lines: Vec<(u64, String, String)> = Vec::new();
    // Five workers; an indeterminate op moves its worker to a new process.
    let mut processes: Vec<u64> = (0..5).collect();
    for i in 0..n {
        let txn = g.next_txn(&mut rng);
        let inv = Edn::Vector(txn.clone()).compact();
        // 0-3 ok, 4 fail (not applied), 5 info (applied), 6 info (not).
        let outcome = if i < 2 {
            0
        } else {
            outcomes.get(i).copied().unwrap_or(0) % 7
        };
        let mut local = store.clone();
        let done: Vec<Edn> = txn
            .iter()
            .map(|m| {
                let Edn::Vector(p) = m else { unreachable!() };
                let Edn::Int(k) = p[1] else { unreachable!() };
                match &p[2] {
                    Edn::Int(v) => {
                        local.insert(k, *v);
                        m.clone()
                    }
                    _ => Edn::Vector(vec![
                        kw("r"),
                        Edn::Int(k),
                        local.get(&k).map_or(Edn::Nil, |v| Edn::Int(*v)),
                    ]),
                }
            })
            .collect();
        if matches!(outcome, 0..=3 | 5) {
            store = local;
        }
        let (kind, value) = match outcome {
            0..=3 => ("ok", Edn::Vector(done).compact()),
            4 => ("fail", inv.clone()),
            _ => ("info", inv.clone()),
        };
        let worker = i % 5;
        lines.push((processes[worker], "invoke".into(), inv));
        lines.push((processes[worker], kind.into(), value));
        if kind == "info" {
            processes[worker] += 5;
        }
    }
    let text: String = lines
        .iter()
        .enumerate()
        .map(|(i, (p, t, v))| {
            format!(
                "{{:time {}, :type :{t}, :process {p}, :f :txn, :value {v}}}\n",
                i * 1000
            )
        })
        .collect();
    History::from_edn(&text).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// One transaction at a time, each seeing everything before it that
    /// took effect: strict serializable, whatever fails or times out.
    #[test]
    fn serial_histories_are_strict_serializable(
        seed in any::<u64>(),
        n in 2usize..60,
        outcomes in proptest::collection::vec(any::<u8>(), 60),
    ) {
        let h = serial_run(seed, n, &outcomes);
        let r = check(&h, "strict-serializable");
        prop_assert_eq!(valid(&r), Edn::Bool(true), "{}", r.pretty());
    }
}
