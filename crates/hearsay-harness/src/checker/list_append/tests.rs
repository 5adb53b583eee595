//! The list-append checker on hand-built histories: each anomaly is found
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

/// Each transaction invoked and completed before the next, on process 0:
/// `(value at invocation, type, value at completion)`.
fn serial(txns: &[(&str, &str, &str)]) -> History {
    let mut lines = Vec::new();
    for (inv, t, done) in txns {
        lines.push((0, "invoke", *inv));
        lines.push((0, *t, *done));
    }
    history(&lines)
}

/// Transactions all invoked before any completes (no realtime order), each
/// on its own process: `(invocation, type, completion)`.
fn concurrent(txns: &[(&'static str, &'static str, &'static str)]) -> History {
    let mut lines = Vec::new();
    for (p, (inv, _, _)) in txns.iter().enumerate() {
        lines.push((p as u64, "invoke", *inv));
    }
    for (p, (_, t, done)) in txns.iter().enumerate() {
        lines.push((p as u64, *t, *done));
    }
    history(&lines)
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

fn cases<'a>(r: &'a Edn, kind: &str) -> &'a [Edn] {
    match r.get("anomalies").and_then(|a| a.get(kind)) {
        Some(Edn::Vector(v)) => v,
        _ => panic!("no {kind} in {}", r.pretty()),
    }
}

/// A wr edge on key 9 between two extra transactions, so that no test
/// is unknown for an empty graph alone.
const FILLER: [(&str, &str, &str); 2] = [
    ("[[:append 9 1]]", "ok", "[[:append 9 1]]"),
    ("[[:r 9 nil]]", "ok", "[[:r 9 [1]]]"),
];

fn with_filler(txns: &[(&'static str, &'static str, &'static str)]) -> History {
    let mut all = FILLER.to_vec();
    all.extend_from_slice(txns);
    serial(&all)
}

#[test]
fn a_serial_history_is_exactly_valid() {
    let h = serial(&[
        (
            "[[:r 1 nil] [:append 1 1]]",
            "ok",
            "[[:r 1 nil] [:append 1 1]]",
        ),
        (
            "[[:append 1 2] [:r 1 nil] [:append 2 1]]",
            "ok",
            "[[:append 1 2] [:r 1 [1 2]] [:append 2 1]]",
        ),
        ("[[:r 1 nil] [:r 2 nil]]", "ok", "[[:r 1 [1 2]] [:r 2 [1]]]"),
    ]);
    assert_eq!(check(&h, "strict-serializable").compact(), "{:valid? true}");
}

#[test]
fn g1a_an_element_of_a_failed_append_is_read() {
    let h = with_filler(&[
        ("[[:append 1 1]]", "fail", "[[:append 1 1]]"),
        ("[[:r 1 nil]]", "ok", "[[:r 1 [1]]]"),
    ]);
    let r = check(&h, "read-committed");
    assert!(types(&r).contains(&":G1a".into()), "{}", r.pretty());
    let c = &cases(&r, "G1a")[0];
    assert_eq!(c.get("element"), Some(&Edn::Int(1)));
    assert_eq!(c.get("writer").unwrap().get("type"), Some(&kw("fail")));
    // Read uncommitted allows it.
    assert_eq!(valid(&check(&h, "read-uncommitted")), Edn::Bool(true));
}

#[test]
fn g1b_a_read_ending_in_an_intermediate_append() {
    let h = with_filler(&[
        (
            "[[:append 1 1] [:append 1 2]]",
            "ok",
            "[[:append 1 1] [:append 1 2]]",
        ),
        ("[[:r 1 nil]]", "ok", "[[:r 1 [1]]]"),
    ]);
    let r = check(&h, "read-committed");
    assert!(types(&r).contains(&":G1b".into()), "{}", r.pretty());
    assert_eq!(cases(&r, "G1b")[0].get("element"), Some(&Edn::Int(1)));
    // The txn's own read of its intermediate state is fine, and so is a
    // read of the final one.
    let h = with_filler(&[
        (
            "[[:append 1 1] [:r 1 nil] [:append 1 2]]",
            "ok",
            "[[:append 1 1] [:r 1 [1]] [:append 1 2]]",
        ),
        ("[[:r 1 nil]]", "ok", "[[:r 1 [1 2]]]"),
    ]);
    assert_eq!(valid(&check(&h, "serializable")), Edn::Bool(true));
}

#[test]
fn internal_reads_must_show_the_txns_own_appends() {
    let h = with_filler(&[
        ("[[:append 1 1]]", "ok", "[[:append 1 1]]"),
        (
            "[[:r 1 nil] [:append 1 2] [:r 1 nil]]",
            "ok",
            "[[:r 1 [1]] [:append 1 2] [:r 1 [1]]]",
        ),
    ]);
    let r = check(&h, "snapshot-isolation");
    assert_eq!(types(&r), [":internal"], "{}", r.pretty());
    assert_eq!(
        cases(&r, "internal")[0].get("expected").unwrap().compact(),
        "[1 2]"
    );
    assert_eq!(valid(&check(&h, "read-committed")), Edn::Bool(true));
    // Without an earlier read, only the suffix is known.
    let h = with_filler(&[
        (
            "[[:append 1 1] [:append 1 2]]",
            "ok",
            "[[:append 1 1] [:append 1 2]]",
        ),
        (
            "[[:append 1 3] [:r 1 nil]]",
            "ok",
            "[[:append 1 3] [:r 1 [1 2]]]",
        ),
    ]);
    let r = check(&h, "snapshot-isolation");
    assert_eq!(
        cases(&r, "internal")[0].get("expected").unwrap().compact(),
        "[... 3]"
    );
}

#[test]
fn future_read_a_txn_reads_what_it_appends_later() {
    let h = with_filler(&[(
        "[[:r 1 nil] [:append 1 5]]",
        "ok",
        "[[:r 1 [5]] [:append 1 5]]",
    )]);
    let r = check(&h, "read-committed");
    assert!(types(&r).contains(&":future-read".into()), "{}", r.pretty());
    let c = &cases(&r, "future-read")[0];
    assert_eq!(c.get("element"), Some(&Edn::Int(5)));
    assert_eq!(c.get("mop").unwrap().compact(), "[:r 1 [5]]");
    assert_eq!(valid(&check(&h, "read-uncommitted")), Edn::Bool(true));
}

#[test]
fn dirty_update_a_committed_append_after_an_aborted_one() {
    let h = with_filler(&[
        ("[[:append 1 1]]", "fail", "[[:append 1 1]]"),
        ("[[:append 1 2]]", "ok", "[[:append 1 2]]"),
        ("[[:r 1 nil]]", "ok", "[[:r 1 [1 2]]]"),
    ]);
    let r = check(&h, "read-committed");
    assert!(
        types(&r).contains(&":dirty-update".into()),
        "{}",
        r.pretty()
    );
    let c = &cases(&r, "dirty-update")[0];
    assert_eq!(c.get("values").unwrap().compact(), "[1 2]");
    // An element no txn appended is Elle's failed assertion: unknown.
    let h = with_filler(&[("[[:r 1 nil]]", "ok", "[[:r 1 [7]]]")]);
    let r = check(&h, "read-committed");
    assert_eq!(valid(&r), kw("unknown"), "{}", r.pretty());
}

#[test]
fn duplicate_elements_in_one_read() {
    let h = with_filler(&[
        ("[[:append 1 1]]", "ok", "[[:append 1 1]]"),
        ("[[:r 1 nil]]", "ok", "[[:r 1 [1 1]]]"),
    ]);
    let r = check(&h, "read-uncommitted");
    assert_eq!(types(&r), [":duplicate-elements"], "{}", r.pretty());
    assert_eq!(
        cases(&r, "duplicate-elements")[0]
            .get("duplicates")
            .unwrap()
            .compact(),
        "{1 2}"
    );
}

#[test]
fn incompatible_order_two_reads_disagree() {
    let h = with_filler(&[
        ("[[:append 1 1]]", "ok", "[[:append 1 1]]"),
        ("[[:append 1 2]]", "ok", "[[:append 1 2]]"),
        ("[[:append 1 3]]", "ok", "[[:append 1 3]]"),
        ("[[:r 1 nil]]", "ok", "[[:r 1 [1 2]]]"),
        ("[[:r 1 nil]]", "ok", "[[:r 1 [1 3]]]"),
    ]);
    let r = check(&h, "read-committed");
    assert!(
        types(&r).contains(&":incompatible-order".into()),
        "{}",
        r.pretty()
    );
    assert_eq!(
        cases(&r, "incompatible-order")[0]
            .get("values")
            .unwrap()
            .compact(),
        "[[1 2] [1 3]]"
    );
    assert_eq!(
        r.get("not").unwrap().compact(),
        "#{:read-committed}",
        "{}",
        r.pretty()
    );
}

#[test]
fn lost_update_two_txns_read_the_same_list_and_append() {
    let h = concurrent(&[
        (
            "[[:r 1 nil] [:append 1 2]]",
            "ok",
            "[[:r 1 nil] [:append 1 2]]",
        ),
        (
            "[[:r 1 nil] [:append 1 3]]",
            "ok",
            "[[:r 1 nil] [:append 1 3]]",
        ),
        ("[[:r 1 nil]]", "ok", "[[:r 1 [2]]]"),
    ]);
    let r = check(&h, "repeatable-read");
    assert!(types(&r).contains(&":lost-update".into()), "{}", r.pretty());
    let c = &cases(&r, "lost-update")[0];
    assert_eq!(c.get("value"), Some(&Edn::Nil));
    assert_eq!(valid(&check(&h, "read-committed")), Edn::Bool(true));
}

#[test]
fn g0_appends_in_opposite_orders_on_two_keys() {
    let h = concurrent(&[
        (
            "[[:append 1 1] [:append 2 1]]",
            "ok",
            "[[:append 1 1] [:append 2 1]]",
        ),
        (
            "[[:append 1 2] [:append 2 2]]",
            "ok",
            "[[:append 1 2] [:append 2 2]]",
        ),
        (
            "[[:r 1 nil] [:r 2 nil]]",
            "ok",
            "[[:r 1 [1 2]] [:r 2 [2 1]]]",
        ),
    ]);
    let r = check(&h, "read-uncommitted");
    assert_eq!(types(&r), [":G0"], "{}", r.pretty());
    let text = cases(&r, "G0")[0].get("explanation").unwrap().compact();
    assert!(text.contains("appended 2 after T"), "{text}");
    // Elle's elle/G0.txt and the cycle's picture; nothing for a type the
    // models do not report.
    let (_, files) = check_files(&h, "read-uncommitted", Budget::default());
    let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["elle/G0.txt", "elle/G0/0.svg"]);
    let txt = &files[0].body;
    assert!(txt.starts_with("G0 #0\nLet:\n  T1 = {:index "), "{txt}");
    assert_eq!(
        txt.matches("\n  T").count(),
        2,
        "two transactions bound: {txt}"
    );
    assert!(
        txt.contains(", :value [[:append 1 1] [:append 2 1]]}"),
        "{txt}"
    );
    assert!(
        txt.contains("\n\nThen:\n  - T1 < T2, because T2 appended "),
        "{txt}"
    );
    assert!(txt.ends_with(": a contradiction!"), "{txt}");
    let svg = &files[1].body;
    assert_eq!(svg.matches("<line").count(), 2, "{svg}");
    assert!(svg.contains("\na 1 1\n") && svg.contains("\nww\n"), "{svg}");
    let serial = serial(&[("[[:append 1 1]]", "ok", "[[:append 1 1]]")]);
    assert!(
        check_files(&serial, "read-uncommitted", Budget::default())
            .1
            .is_empty()
    );
}

#[test]
fn an_edge_both_ww_and_wr_is_explained_as_ww() {
    // T1 -> T2 is ww and wr on key 1 (T2 read T1's append, then appended),
    // T2 -> T1 ww on key 2: Elle's list-append explains ww first, so G0,
    // where rw-register's order would say G1c.
    let h = concurrent(&[
        (
            "[[:append 1 1] [:append 2 2]]",
            "ok",
            "[[:append 1 1] [:append 2 2]]",
        ),
        (
            "[[:r 1 nil] [:append 1 2] [:append 2 1]]",
            "ok",
            "[[:r 1 [1]] [:append 1 2] [:append 2 1]]",
        ),
        (
            "[[:r 2 nil] [:r 1 nil]]",
            "ok",
            "[[:r 2 [1 2]] [:r 1 [1 2]]]",
        ),
    ]);
    let r = check(&h, "read-uncommitted");
    assert_eq!(types(&r), [":G0"], "{}", r.pretty());
}

#[test]
fn g1c_circular_information_flow() {
    let h = concurrent(&[
        (
            "[[:append 1 1] [:r 2 nil]]",
            "ok",
            "[[:append 1 1] [:r 2 [1]]]",
        ),
        (
            "[[:append 2 1] [:r 1 nil]]",
            "ok",
            "[[:append 2 1] [:r 1 [1]]]",
        ),
    ]);
    let r = check(&h, "read-committed");
    assert_eq!(types(&r), [":G1c"], "{}", r.pretty());
    let text = cases(&r, "G1c")[0].get("explanation").unwrap().compact();
    assert!(text.contains("observed T"), "{text}");
}

#[test]
fn g_single_item_read_skew_and_g2_item_write_skew() {
    // T1 appends to both keys; T2 sees its append to 1 but not to 2.
    let h = concurrent(&[
        (
            "[[:append 1 1] [:append 2 1]]",
            "ok",
            "[[:append 1 1] [:append 2 1]]",
        ),
        ("[[:r 1 nil] [:r 2 nil]]", "ok", "[[:r 1 [1]] [:r 2 nil]]"),
    ]);
    let r = check(&h, "snapshot-isolation");
    assert_eq!(types(&r), [":G-single-item"], "{}", r.pretty());
    let text = cases(&r, "G-single-item")[0]
        .get("explanation")
        .unwrap()
        .compact();
    assert!(
        text.contains("observed the initial (nil) state of 2"),
        "{text}"
    );
    assert_eq!(valid(&check(&h, "read-committed")), Edn::Bool(true));
    // Write skew: each reads the key the other appends to.
    let h = concurrent(&[
        (
            "[[:r 1 nil] [:append 2 1]]",
            "ok",
            "[[:r 1 nil] [:append 2 1]]",
        ),
        (
            "[[:r 2 nil] [:append 1 1]]",
            "ok",
            "[[:r 2 nil] [:append 1 1]]",
        ),
    ]);
    let r = check(&h, "serializable");
    assert_eq!(types(&r), [":G2-item"], "{}", r.pretty());
    assert_eq!(valid(&check(&h, "snapshot-isolation")), Edn::Bool(true));
}

#[test]
fn a_stale_read_after_a_completed_append_is_realtime() {
    let h = serial(&[
        ("[[:append 1 1]]", "ok", "[[:append 1 1]]"),
        ("[[:r 1 nil]]", "ok", "[[:r 1 nil]]"),
    ]);
    let r = check(&h, "strict-serializable");
    assert_eq!(types(&r), [":G-single-item-realtime"], "{}", r.pretty());
    assert_eq!(valid(&check(&h, "serializable")), Edn::Bool(true));
    // An indeterminate append takes part in the graph too.
    let h = serial(&[
        ("[[:append 1 1]]", "info", "[[:append 1 1]]"),
        ("[[:r 1 nil]]", "ok", "[[:r 1 [1]]]"),
        ("[[:r 1 nil]]", "ok", "[[:r 1 nil]]"),
    ]);
    let r = check(&h, "strict-serializable");
    assert!(
        types(&r).contains(&":G-single-item-realtime".into()),
        "{}",
        r.pretty()
    );
}

#[test]
fn empty_graphs_bad_models_and_bad_histories_are_unknown() {
    let h = serial(&[("[[:append 1 1]]", "ok", "[[:append 1 1]]")]);
    let r = check(&h, "serializable");
    assert_eq!(valid(&r), kw("unknown"), "{}", r.pretty());
    assert_eq!(types(&r), [":empty-transaction-graph"]);
    let h = with_filler(&[]);
    assert_eq!(
        valid(&check(&h, "serializable,read-committed")),
        kw("unknown")
    );
    for bad in [
        serial(&[("[[:w 1 1]]", "ok", "[[:w 1 1]]")]),
        serial(&[
            ("[[:append 1 1]]", "ok", "[[:append 1 1]]"),
            ("[[:append 1 1]]", "ok", "[[:append 1 1]]"),
        ]),
        serial(&[("[[:r 1 nil]]", "ok", "[[:r 1 5]]")]),
    ] {
        let r = check(&bad, "serializable");
        assert_eq!(valid(&r), kw("unknown"), "{}", r.pretty());
        assert!(r.get("error").is_some());
    }
}

#[test]
fn a_search_past_its_budget_is_unknown_with_a_fallback_cycle() {
    let h = concurrent(&[
        (
            "[[:append 1 1] [:r 2 nil]]",
            "ok",
            "[[:append 1 1] [:r 2 [1]]]",
        ),
        (
            "[[:append 2 1] [:r 1 nil]]",
            "ok",
            "[[:append 2 1] [:r 1 [1]]]",
        ),
    ]);
    let r = check_with(
        &h,
        "read-committed",
        Budget {
            per_scc: 0,
            total: 0,
        },
    );
    assert_eq!(
        types(&r),
        [":G1c", ":cycle-search-timeout"],
        "{}",
        r.pretty()
    );
    assert_eq!(valid(&r), Edn::Bool(false));
    // A timeout alone is unknown.
    let r = check_with(
        &h,
        "read-uncommitted",
        Budget {
            per_scc: 0,
            total: 0,
        },
    );
    assert_eq!(valid(&r), kw("unknown"), "{}", r.pretty());
}

/// A history of transactions run one at a time on a store of lists, some
/// failing (not applied) or indeterminate (applied or not).
fn serial_run(seed: u64, n: usize, outcomes: &[u8]) -> History {
    let mut g = WrTxns::new(
        TxnOptions {
            key_count: 3,
            max_writes_per_key: 6,
            ..TxnOptions::default()
        },
        "append",
    );
    let mut rng = hearsay_core::rng::child(seed, "ops");
    let mut store: HashMap<i64, Vec<i64>> = HashMap::new();
    let mut lines: Vec<(u64, String, String)> = Vec::new();
    let mut processes: Vec<u64> = (0..5).collect();
    for i in 0..n {
        let txn = g.next_txn(&mut rng);
        let inv = Edn::Vector(txn.clone()).compact();
        // 0-3 ok, 4 fail (not applied), 5 info (applied), 6 info (not).
        let outcome = outcomes.get(i).copied().unwrap_or(0) % 7;
        let mut local = store.clone();
        let done: Vec<Edn> = txn
            .iter()
            .map(|m| {
                let Edn::Vector(p) = m else { unreachable!() };
                let Edn::Int(k) = p[1] else { unreachable!() };
                match &p[2] {
                    Edn::Int(v) => {
                        local.entry(k).or_default().push(*v);
                        m.clone()
                    }
                    _ => Edn::Vector(vec![
                        kw("r"),
                        Edn::Int(k),
                        local.get(&k).map_or(Edn::Nil, |l| {
                            Edn::Vector(l.iter().map(|x| Edn::Int(*x)).collect())
                        }),
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
    /// took effect: strict serializable (or, with too few edges to judge,
    /// unknown for an empty graph), whatever fails or times out.
    #[test]
    fn serial_histories_are_strict_serializable(
        seed in any::<u64>(),
        n in 2usize..80,
        outcomes in proptest::collection::vec(any::<u8>(), 80),
    ) {
        let h = serial_run(seed, n, &outcomes);
        let r = check(&h, "strict-serializable");
        let ok = r == crate::edn::map([("valid?", Edn::Bool(true))])
            || r.get("anomaly-types").map(Edn::compact).as_deref()
                == Some("(:empty-transaction-graph)");
        prop_assert!(ok, "{}", r.pretty());
    }
}
