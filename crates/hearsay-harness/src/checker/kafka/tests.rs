//! Hand-built histories, one per error type of maelstrom-spec-more.md 3.4,
//! each shown both found and (where it applies) not found.

use super::*;
use crate::history::Op;

/// A history under construction; times in ms, one op at a time unless
/// invocations and completions are pushed separately.
#[derive(Default)]
struct H {
    h: History,
    t: u64,
    /// Open invocations by process.
    open: BTreeMap<u64, usize>,
}

fn mop(f: &str, rest: Vec<Edn>) -> Edn {
    let mut m = vec![kw(f)];
    m.extend(rest);
    Edn::Vector(vec![Edn::Vector(m)])
}

fn pairs(ps: &[(i64, i64)]) -> Edn {
    Edn::Vector(
        ps.iter()
            .map(|(o, v)| Edn::Vector(vec![Edn::Int(*o), Edn::Int(*v)]))
            .collect(),
    )
}

impl H {
    fn tick(&mut self) -> u64 {
        self.t += 1;
        self.t * 1_000_000
    }

    fn invoke(&mut self, p: u64, f: &'static str, value: Edn) {
        let time = self.tick();
        let i = self.h.push(Op {
            index: 0,
            time,
            kind: OpType::Invoke,
            process: Process::Client(p),
            f,
            value,
            error: None,
            final_: false,
            exception: None,
            invocation: None,
        });
        self.open.insert(p, i);
    }

    fn complete(&mut self, p: u64, kind: OpType, value: Edn, error: Option<Edn>) -> usize {
        let time = self.tick();
        let inv = self.open.remove(&p).expect("invoked");
        let f = self.h.ops()[inv].f;
        self.h.push(Op {
            index: 0,
            time,
            kind,
            process: Process::Client(p),
            f,
            value,
            error,
            final_: false,
            exception: None,
            invocation: Some(inv),
        })
    }

    fn send(&mut self, p: u64, k: &str, v: i64, offset: i64) {
        self.invoke(p, "send", mop("send", vec![Edn::from(k), Edn::Int(v)]));
        let pair = Edn::Vector(vec![Edn::Int(offset), Edn::Int(v)]);
        self.complete(p, OpType::Ok, mop("send", vec![Edn::from(k), pair]), None);
    }

    fn send_not_ok(&mut self, p: u64, k: &str, v: i64, kind: OpType) {
        let value = mop("send", vec![Edn::from(k), Edn::Int(v)]);
        self.invoke(p, "send", value.clone());
        self.complete(p, kind, value, Some(kw("net-timeout")));
    }

    fn poll(&mut self, p: u64, reads: &[(&str, &[(i64, i64)])]) {
        self.invoke(p, "poll", mop("poll", vec![]));
        self.poll_done(p, reads);
    }

    fn poll_done(&mut self, p: u64, reads: &[(&str, &[(i64, i64)])]) {
        let msgs = Edn::Map(
            reads
                .iter()
                .map(|(k, ps)| (Edn::from(*k), pairs(ps)))
                .collect(),
        );
        self.complete(p, OpType::Ok, mop("poll", vec![msgs]), None);
    }

    fn assign(&mut self, p: u64, keys: &[&str]) {
        let value = Edn::Vector(keys.iter().map(|k| Edn::from(*k)).collect());
        self.invoke(p, "assign", value.clone());
        self.complete(p, OpType::Ok, value, None);
    }

    fn check(&self) -> Edn {
        check(&self.h)
    }
}

fn types(r: &Edn, key: &str) -> Vec<String> {
    match r.get(key) {
        Some(Edn::List(ts)) => ts.iter().map(|t| t.compact()).collect(),
        other => panic!("{key}: {other:?} in {}", r.pretty()),
    }
}

fn errs<'a>(r: &'a Edn, kind: &str) -> &'a [Edn] {
    match r.get(kind).and_then(|e| e.get("errs")) {
        Some(Edn::List(es)) => es,
        other => panic!("{kind}: {other:?} in {}", r.pretty()),
    }
}

/// Sends 1, 2, 3 to key "k" at offsets 0, 1, 2 from process 0.
fn three_sends(h: &mut H) {
    for v in 1..=3 {
        h.send(0, "k", v, v - 1);
    }
}

#[test]
fn a_correct_history_is_valid() {
    let mut h = H::default();
    three_sends(&mut h);
    h.poll(1, &[("k", &[(0, 1), (1, 2)])]);
    h.poll(1, &[("k", &[(2, 3)])]);
    h.assign(2, &["k"]);
    h.poll(2, &[("k", &[(0, 1), (1, 2), (2, 3)])]);
    let r = h.check();
    assert_eq!(r.get("valid?"), Some(&Edn::Bool(true)), "{}", r.pretty());
    assert!(types(&r, "error-types").is_empty());
    assert!(types(&r, "bad-error-types").is_empty());
    assert_eq!(r.get("info-txn-causes"), Some(&Edn::List(vec![])));
    // The first poll, invoked at 7 ms, missed offset 2, acknowledged at
    // 6 ms.
    assert_eq!(
        r.get("worst-realtime-lag").and_then(|l| l.get("lag")),
        Some(&Edn::Float(0.001))
    );
}

#[test]
fn a_message_skipped_by_every_poll_is_lost_and_unseen() {
    let mut h = H::default();
    three_sends(&mut h);
    h.poll(1, &[("k", &[(0, 1), (2, 3)])]);
    let r = h.check();
    assert_eq!(r.get("valid?"), Some(&Edn::Bool(false)));
    assert_eq!(
        types(&r, "error-types"),
        [":int-poll-skip", ":lost-write", ":unseen"]
    );
    assert_eq!(types(&r, "bad-error-types"), types(&r, "error-types"));
    let lost = &errs(&r, "lost-write")[0];
    assert_eq!(lost.get("value"), Some(&Edn::Int(2)));
    assert_eq!(lost.get("index"), Some(&Edn::Int(1)));
    assert_eq!(lost.get("max-read-index"), Some(&Edn::Int(2)));
    assert_eq!(
        lost.get("writer").and_then(|w| w.get("type")),
        Some(&kw("ok"))
    );
    let skip = &errs(&r, "int-poll-skip")[0];
    assert_eq!(skip.get("delta"), Some(&Edn::Int(2)));
    assert_eq!(skip.get("skipped").unwrap().compact(), "[2]");
    let unseen = r.get("unseen").unwrap();
    assert_eq!(unseen.get("unseen").unwrap().compact(), r#"{"k" 1}"#);
    assert_eq!(unseen.get("messages").unwrap().compact(), r#"{"k" (2)}"#);
    assert_eq!(unseen.get("time"), Some(&Edn::Int(8_000_000)));
}

#[test]
fn acknowledged_messages_never_polled_are_unseen_but_not_lost() {
    let mut h = H::default();
    three_sends(&mut h);
    h.poll(1, &[("k", &[(0, 1)])]);
    let r = h.check();
    assert_eq!(types(&r, "error-types"), [":unseen"]);
    assert_eq!(r.get("valid?"), Some(&Edn::Bool(false)));
    let unseen = r.get("unseen").unwrap();
    assert_eq!(unseen.get("messages").unwrap().compact(), r#"{"k" (2 3)}"#);
    // An indeterminate send is not owed to anyone.
    let mut h = H::default();
    h.send(0, "k", 1, 0);
    h.send_not_ok(0, "k", 2, OpType::Info);
    h.poll(1, &[("k", &[(0, 1)])]);
    let r = h.check();
    assert_eq!(r.get("valid?"), Some(&Edn::Bool(true)), "{}", r.pretty());
    assert_eq!(
        r.get("info-txn-causes"),
        Some(&Edn::List(vec![kw("net-timeout")]))
    );
}

#[test]
fn two_messages_at_one_offset_are_inconsistent() {
    let mut h = H::default();
    h.send(0, "k", 1, 0);
    h.send(1, "k", 2, 0);
    h.poll(2, &[("k", &[(0, 2)])]);
    let r = h.check();
    assert!(types(&r, "error-types").contains(&":inconsistent-offsets".to_string()));
    let e = &errs(&r, "inconsistent-offsets")[0];
    assert_eq!(e.get("values").unwrap().compact(), "#{1 2}");
    assert_eq!(e.get("offset"), Some(&Edn::Int(0)));
    assert_eq!(e.get("index"), Some(&Edn::Int(0)));
    assert_eq!(r.get("valid?"), Some(&Edn::Bool(false)));
}

#[test]
fn one_message_at_two_offsets_is_a_duplicate() {
    let mut h = H::default();
    h.send(0, "k", 1, 0);
    h.send(0, "k", 2, 1);
    h.poll(2, &[("k", &[(0, 1), (1, 2), (3, 1)])]);
    let r = h.check();
    let e = &errs(&r, "duplicate")[0];
    assert_eq!(e.get("count"), Some(&Edn::Int(2)));
    assert_eq!(e.get("offsets").unwrap().compact(), "[0 3]");
    assert_eq!(r.get("valid?"), Some(&Edn::Bool(false)));
}

#[test]
fn reading_a_failed_send_is_an_aborted_read() {
    let mut h = H::default();
    h.send_not_ok(0, "k", 1, OpType::Fail);
    h.poll(1, &[("k", &[(0, 1)])]);
    // Jepsen's `unseen` quirk: a key no ok send touched counts what the
    // last ok op polled of it as unseen...
    assert_eq!(types(&h.check(), "error-types"), [":G1a", ":unseen"]);
    // ...until the next ok op.
    h.poll(1, &[]);
    let r = h.check();
    assert_eq!(types(&r, "error-types"), [":G1a"]);
    let e = &errs(&r, "G1a")[0];
    assert_eq!(
        e.get("writer").and_then(|w| w.get("type")),
        Some(&kw("fail"))
    );
    assert_eq!(e.get("reader").and_then(|w| w.get("type")), Some(&kw("ok")));
}

#[test]
fn a_process_must_poll_on_where_it_left_off() {
    // Skipping a known message between two polls.
    let mut h = H::default();
    three_sends(&mut h);
    h.poll(1, &[("k", &[(0, 1)])]);
    h.poll(1, &[("k", &[(2, 3)])]);
    h.poll(2, &[("k", &[(1, 2)])]);
    let r = h.check();
    assert_eq!(types(&r, "error-types"), [":poll-skip"]);
    let e = &errs(&r, "poll-skip")[0];
    assert_eq!(e.get("delta"), Some(&Edn::Int(2)));
    assert_eq!(e.get("skipped").unwrap().compact(), "[2]");
    // Going back.
    let mut h = H::default();
    three_sends(&mut h);
    h.poll(1, &[("k", &[(0, 1), (1, 2)])]);
    h.poll(1, &[("k", &[(1, 2), (2, 3)])]);
    let r = h.check();
    assert_eq!(types(&r, "error-types"), [":nonmonotonic-poll"]);
    let e = &errs(&r, "nonmonotonic-poll")[0];
    assert_eq!(e.get("values").unwrap().compact(), "[2 2]");
    assert_eq!(e.get("delta"), Some(&Edn::Int(0)));
    // An assign that drops the key forgets where the process was; one
    // that keeps it does not.
    let mut h = H::default();
    three_sends(&mut h);
    h.poll(1, &[("k", &[(0, 1), (1, 2), (2, 3)])]);
    h.assign(1, &["j"]);
    h.poll(1, &[("k", &[(0, 1)])]);
    assert_eq!(h.check().get("valid?"), Some(&Edn::Bool(true)));
    h.assign(1, &["k", "j"]);
    h.poll(1, &[("k", &[(0, 1)])]);
    assert_eq!(types(&h.check(), "error-types"), [":nonmonotonic-poll"]);
}

#[test]
fn messages_inside_one_poll_must_be_in_log_order() {
    let mut h = H::default();
    three_sends(&mut h);
    h.poll(1, &[("k", &[(1, 2), (0, 1), (2, 3)])]);
    let r = h.check();
    assert_eq!(
        types(&r, "error-types"),
        [":int-nonmonotonic-poll", ":int-poll-skip"]
    );
    assert_eq!(
        errs(&r, "int-nonmonotonic-poll")[0].get("delta"),
        Some(&Edn::Int(-1))
    );
}

#[test]
fn a_process_sends_must_not_go_back_in_the_log() {
    let mut h = H::default();
    h.send(0, "k", 1, 1);
    h.send(0, "k", 2, 0);
    h.poll(1, &[("k", &[(0, 2), (1, 1)])]);
    let r = h.check();
    assert_eq!(types(&r, "error-types"), [":nonmonotonic-send"]);
    let e = &errs(&r, "nonmonotonic-send")[0];
    assert_eq!(e.get("values").unwrap().compact(), "[1 2]");
    assert_eq!(e.get("delta"), Some(&Edn::Int(-1)));
    // Different processes interleave freely.
    let mut h = H::default();
    h.send(0, "k", 1, 1);
    h.send(2, "k", 2, 0);
    h.poll(1, &[("k", &[(0, 2), (1, 1)])]);
    assert_eq!(h.check().get("valid?"), Some(&Edn::Bool(true)));
}

#[test]
fn polling_a_message_before_its_send_began_is_a_realtime_cycle() {
    let mut h = H::default();
    h.poll(1, &[("k", &[(0, 1)])]);
    h.send(0, "k", 1, 0);
    let r = h.check();
    let ts = types(&r, "error-types");
    assert!(ts.contains(&":G1c-realtime".to_string()), "{}", r.pretty());
    assert_eq!(r.get("valid?"), Some(&Edn::Bool(false)));
    let cycle = &errs(&r, "G1c-realtime")[0];
    assert!(cycle.get("steps").is_some(), "{}", cycle.pretty());
    // Concurrent, the same poll is fine.
    let mut h = H::default();
    h.invoke(0, "send", mop("send", vec![Edn::from("k"), Edn::Int(1)]));
    h.poll(1, &[("k", &[(0, 1)])]);
    let pair = Edn::Vector(vec![Edn::Int(0), Edn::Int(1)]);
    h.complete(0, OpType::Ok, mop("send", vec![Edn::from("k"), pair]), None);
    let r = h.check();
    assert_eq!(r.get("valid?"), Some(&Edn::Bool(true)), "{}", r.pretty());
}

#[test]
fn a_polled_message_nobody_sent_makes_the_result_unknown() {
    let mut h = H::default();
    h.send(0, "k", 1, 0);
    h.poll(1, &[("k", &[(0, 1), (1, 99)])]);
    let r = h.check();
    assert_eq!(r.get("valid?"), Some(&kw("unknown")), "{}", r.pretty());
    let text = r.get("error").unwrap().compact();
    assert!(text.contains("no-writer-of-value"), "{text}");
    // A negative offset cannot index Jepsen's log vector either.
    let mut h = H::default();
    h.send(0, "k", 1, -1);
    assert_eq!(h.check().get("valid?"), Some(&kw("unknown")));
}

#[test]
fn long_error_lists_are_condensed() {
    // 20 re-deliveries: counted in full, the 8 most negative kept.
    let mut h = H::default();
    for v in 1..=21 {
        h.send(0, "k", v, v - 1);
    }
    for v in 1..=20 {
        h.poll(1, &[("k", &[(v - 1, v), (v, v + 1)])]);
    }
    h.poll(1, &[("k", &[(0, 1)])]);
    let r = h.check();
    let e = r.get("nonmonotonic-poll").unwrap();
    assert_eq!(e.get("count"), Some(&Edn::Int(20)));
    let kept = errs(&r, "nonmonotonic-poll");
    assert_eq!(kept.len(), 8);
    assert_eq!(
        kept[0].get("delta"),
        Some(&Edn::Int(-20)),
        "most negative first"
    );
}

#[test]
fn the_worst_realtime_lag_is_how_long_a_poll_trailed_the_log() {
    let mut h = H::default();
    h.assign(1, &["k"]);
    h.send(0, "k", 1, 0); // acknowledged at 4 ms
    h.tick();
    h.tick();
    h.poll(1, &[]); // invoked at 7 ms, saw nothing: 3 ms behind
    let r = h.check();
    let lag = r.get("worst-realtime-lag").unwrap();
    assert_eq!(lag.get("lag"), Some(&Edn::Float(0.003)), "{}", lag.pretty());
    assert_eq!(lag.get("time"), Some(&Edn::Float(0.007)));
    assert_eq!(lag.get("key"), Some(&Edn::from("k")));
    assert_eq!(lag.get("process"), Some(&Edn::Int(1)));
    let empty = check(&History::default());
    assert_eq!(
        empty.get("worst-realtime-lag").unwrap().compact(),
        "{:time 0.0, :lag 0.0}"
    );
}

fn files_of(h: &H) -> BTreeMap<String, String> {
    check_files(&h.h, Budget::default(), 2)
        .1
        .into_iter()
        .map(|a| (a.path, a.body))
        .collect()
}

#[test]
fn files_draw_the_keys_with_errors_and_nothing_else() {
    // A lost write in "k", a clean "j".
    let mut h = H::default();
    three_sends(&mut h);
    h.send(0, "j", 7, 0);
    h.poll(1, &[("k", &[(0, 1), (2, 3)]), ("j", &[(0, 7)])]);
    let f = files_of(&h);
    let names: Vec<&str> = f.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "consume-counts.edn",
            "orders/k.svg",
            "realtime-lag-key.svg",
            "realtime-lag-thread-key.svg",
            "realtime-lag-thread.svg",
            "unseen.svg"
        ]
    );
    // The order of "k": the three sends and the poll's two messages, each
    // at its offset (x = 24 per offset).
    let order = &f["orders/k.svg"];
    for cell in [">w1<", ">w2<", ">w3<", ">r1<", ">r3<"] {
        assert!(order.contains(cell), "{cell} missing in {order}");
    }
    assert!(
        order.contains(r#"<text x="72" y="56">r3</text>"#),
        "{order}"
    );
    assert!(!order.contains(">w7<"), "another key's message drawn");
    assert_eq!(
        f["consume-counts.edn"].trim(),
        "{:distribution {}, :dup-counts {}}"
    );
    assert!(f["unseen.svg"].contains("key k") && f["unseen.svg"].contains("final polls"));
    assert!(f["realtime-lag-thread.svg"].contains("thread 1"));

    // A correct history: no order pictures, nothing unseen to plot.
    let mut h = H::default();
    three_sends(&mut h);
    h.poll(1, &[("k", &[(0, 1), (1, 2), (2, 3)])]);
    let f = files_of(&h);
    assert!(
        f.keys().all(|p| !p.starts_with("orders/")),
        "{:?}",
        f.keys()
    );
    assert!(
        f.contains_key("unseen.svg"),
        "the plot is drawn while messages were unseen"
    );
}

#[test]
fn an_offset_holding_two_messages_is_coloured_in_the_order_picture() {
    let mut h = H::default();
    h.send(0, "k", 1, 0);
    h.send(0, "k", 2, 0);
    h.poll(1, &[("k", &[(0, 1)])]);
    let f = files_of(&h);
    let order = &f["orders/k.svg"];
    // Two coloured cells behind w1 and w2 (and the poll's r1).
    assert_eq!(order.matches("hsl(").count(), 3, "{order}");
}

#[test]
fn consume_counts_counts_polls_of_subscribed_processes_only() {
    let mut h = H::default();
    h.send(0, "k", 1, 0);
    h.invoke(1, "subscribe", Edn::Vector(vec![Edn::from("k")]));
    h.complete(1, OpType::Ok, Edn::Vector(vec![Edn::from("k")]), None);
    h.poll(1, &[("k", &[(0, 1)])]);
    h.poll(1, &[("k", &[(0, 1)])]);
    // Process 2 assigned, not subscribed: not counted.
    h.assign(2, &["k"]);
    h.poll(2, &[("k", &[(0, 1)])]);
    let c = files::consume_counts(&h.h);
    assert_eq!(
        c.compact(),
        r#"{:distribution {2 1}, :dup-counts {"k" {1 2}}}"#
    );
}

#[test]
fn a_realtime_cycle_is_written_out_as_elle_does() {
    let mut h = H::default();
    h.poll(1, &[("k", &[(0, 1)])]);
    h.send(0, "k", 1, 0);
    let f = files_of(&h);
    let text = &f["elle/G1c-realtime.txt"];
    assert!(
        text.starts_with("G1c-realtime #0\nLet:\n  T1 = {"),
        "{text}"
    );
    assert!(text.contains("\n\nThen:\n  - T1 < T2, because "), "{text}");
    assert!(text.contains("  - However, T2 < T1, because "), "{text}");
    assert!(text.ends_with(": a contradiction!"), "{text}");
    let svg = &f["elle/G1c-realtime/0.svg"];
    assert!(svg.contains("\nrt\n") && svg.contains("\nwr\n"), "{svg}");
}
