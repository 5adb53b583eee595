use super::*;
use hearsay_core::rng;
use serde_json::json;
use std::collections::BTreeSet;

fn ctx(thread: usize, time_ns: u64) -> Ctx {
    Ctx {
        thread,
        process: thread as u64,
        time_ns,
    }
}

/// A completed op as the runner records it.
fn done(kind: OpType, f: &'static str, value: Edn, final_: bool) -> Op {
    Op {
        index: 0,
        time: 0,
        kind,
        process: crate::history::Process::Client(0),
        f,
        value,
        error: None,
        final_,
        exception: None,
        invocation: None,
    }
}

fn sent(k: &str, offset: i64, v: i64) -> Op {
    let pair = Edn::Vector(vec![Edn::Int(offset), Edn::Int(v)]);
    let mop = Edn::Vector(vec![kw("send"), Edn::from(k), pair]);
    done(OpType::Ok, "send", Edn::Vector(vec![mop]), false)
}

fn polled(k: &str, pairs: &[(i64, i64)], final_: bool) -> Op {
    let ps = pairs
        .iter()
        .map(|(o, v)| Edn::Vector(vec![Edn::Int(*o), Edn::Int(*v)]))
        .collect();
    let msgs = Edn::Map(vec![(Edn::from(k), Edn::Vector(ps))]);
    let mop = Edn::Vector(vec![kw("poll"), msgs]);
    done(OpType::Ok, "poll", Edn::Vector(vec![mop]), final_)
}

fn send_of(op: &OpSpec) -> (String, i64) {
    match &op.value {
        Edn::Vector(m) => match &m[0] {
            Edn::Vector(mop) => match (&mop[0], &mop[1], &mop[2]) {
                (Edn::Keyword(f), Edn::Str(k), Edn::Int(v)) if f == "send" => (k.clone(), *v),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

fn keys_of(op: &OpSpec) -> Vec<String> {
    match &op.value {
        Edn::Vector(ks) => ks
            .iter()
            .map(|k| match k {
                Edn::Str(s) => s.clone(),
                other => panic!("{other:?}"),
            })
            .collect(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn ops_are_polls_and_sends_of_unique_values_with_rare_assigns() {
    // Spec 3.3 items 1-3: one micro-op each, keys as decimal strings,
    // values 1..16 per key, about 1/64 assigns.
    let mut g = Logs::new(TxnOptions::default(), 2);
    let mut r = rng::child(1, "ops");
    // The crash stream starts with a crash at the first request.
    assert_eq!(g.next_op(ctx(0, 5), &mut r).f, "crash");
    let (mut polls, mut assigns) = (0usize, 0usize);
    let mut values: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut last: Option<OpSpec> = None;
    for _ in 0..20_000 {
        // Time stands still: no more crashes.
        let op = g.next_op(ctx(1, 5), &mut r);
        match op.f {
            "poll" => {
                polls += 1;
                assert_eq!(op.value, poll_value());
            }
            "send" => {
                let (k, v) = send_of(&op);
                assert!(k.parse::<i64>().is_ok(), "{k}");
                values.entry(k).or_default().push(v);
            }
            "assign" => {
                assigns += 1;
                assert_eq!(keys_of(&op).len(), 1, "nothing is unseen yet");
            }
            other => panic!("{other}"),
        }
        // An assign stands in for an op that comes right after it.
        if let Some(prev) = &last
            && prev.f == "assign"
        {
            let k = keys_of(prev)[0].clone();
            match op.f {
                "send" => assert_eq!(send_of(&op).0, k),
                "poll" => {}
                // Two assigns in a row stand in for the same op.
                _ => assert_eq!(keys_of(&op), vec![k]),
            }
        }
        last = Some(op);
    }
    assert!((250..400).contains(&assigns), "{assigns} assigns");
    let sends: usize = values.values().map(Vec::len).sum();
    assert!(polls.abs_diff(sends) < 800, "{polls} polls, {sends} sends");
    for (k, vs) in &values {
        let want: Vec<i64> = (1..=vs.len() as i64).collect();
        assert_eq!(vs, &want, "key {k}");
        assert!(vs.len() <= 16);
    }
    assert!(values.len() > 100, "keys retire after 16 writes");
}

#[test]
fn crashes_come_every_thirty_seconds_over_concurrency_on_average() {
    // Spec 3.3 item 5: gaps uniform in [0, 60/C) s; 4 workers: mean 7.5 s.
    let mut g = Logs::new(TxnOptions::default(), 4);
    let mut r = rng::child(2, "ops");
    let mut crashes = 0;
    let step = 10_000_000; // an op every 10 ms for 3000 s
    for i in 0..300_000u64 {
        if g.next_op(ctx(0, i * step), &mut r).f == "crash" {
            crashes += 1;
        }
    }
    assert!((360..440).contains(&crashes), "{crashes} crashes in 3000 s");
}

#[test]
fn catch_up_assigns_add_every_unseen_key() {
    // Spec 3.3 item 4: keys with acknowledged offsets no poll reached.
    let mut g = Logs::new(TxnOptions::default(), 1);
    let mut r = rng::child(3, "ops");
    g.next_op(ctx(0, 0), &mut r); // the first crash
    g.observe(ctx(0, 1), &sent("900", 3, 1));
    g.observe(ctx(0, 1), &sent("901", 0, 1));
    g.observe(ctx(0, 1), &polled("901", &[(0, 1)], false));
    let (mut widened, mut assigns) = (0usize, 0usize);
    for _ in 0..50_000 {
        let op = g.next_op(ctx(0, 1), &mut r);
        if op.f != "assign" {
            continue;
        }
        assigns += 1;
        let keys = keys_of(&op);
        assert!(
            !keys.contains(&"901".to_string()),
            "901 was polled: {keys:?}"
        );
        if keys.contains(&"900".to_string()) {
            widened += 1;
            assert_eq!(keys[0], "900", "unseen keys come first");
        }
    }
    let third = assigns / 3;
    assert!(
        widened.abs_diff(third) < third / 4,
        "{widened} of {assigns}"
    );
    // Once polled up to its offset, the key is no longer unseen.
    g.observe(ctx(0, 2), &polled("900", &[(3, 1)], false));
    assert!(g.sent.is_empty() && g.polled.is_empty());
}

#[test]
fn the_final_phase_crashes_assigns_from_the_beginning_and_polls_to_the_targets() {
    // Spec 3.3 item 7.
    let mut g = Logs::new(TxnOptions::default(), 2);
    let mut r = rng::child(4, "ops");
    assert_eq!(g.final_op(ctx(0, 0)), None, "nothing to catch up on");
    g.observe(ctx(0, 1), &sent("10", 4, 5));
    g.observe(ctx(1, 1), &sent("9", 2, 3));
    // A failed op teaches nothing.
    let mut bad = sent("11", 7, 1);
    bad.kind = OpType::Fail;
    g.observe(ctx(1, 1), &bad);
    let crash = g.final_op(ctx(0, 0)).unwrap();
    assert_eq!((crash.f, crash.final_), ("crash", true));
    let crashed = done(OpType::Info, "crash", Edn::Nil, true);
    g.observe(ctx(0, 100), &crashed);
    // A main-phase op seen now would not move the targets.
    let (assign, delay) = g.final_next(ctx(0, 100), &mut r).unwrap();
    assert_eq!((assign.f, assign.final_, delay), ("assign", true, 0));
    assert_eq!(keys_of(&assign), ["9", "10"], "numeric key order");
    let (poll, delay) = g.final_next(ctx(0, 100), &mut r).unwrap();
    assert_eq!((poll.f, delay), ("poll", 0));
    // Gaps run from the previous due time, each under 0.4 s.
    let mut due = 100;
    for t in [150, 200_000_000, 900_000_000] {
        let (_, delay) = g.final_next(ctx(0, t), &mut r).unwrap();
        let at = t + delay;
        assert!(
            at >= due && at < due.max(t) + FINAL_POLL_GAP_NS,
            "{at} {due}"
        );
        due = at.max(due);
    }
    // Thread 0's polls reach key 10 only; thread 1's reach nothing.
    g.observe(
        ctx(0, 1_000_000_000),
        &polled("10", &[(3, 4), (4, 5)], true),
    );
    assert!(g.final_next(ctx(0, 1_000_000_000), &mut r).is_some());
    g.observe(ctx(0, 1_000_000_001), &polled("9", &[(2, 3)], true));
    assert_eq!(g.final_next(ctx(0, 1_000_000_001), &mut r), None);
    let (a1, _) = g.final_next(ctx(1, 100), &mut r).unwrap();
    assert_eq!(keys_of(&a1), ["9", "10"], "each thread has its own targets");
    assert_eq!(g.final_limit(), Some(Duration::from_secs(10)));
}

#[test]
fn client_requests_follow_maelstroms_client() {
    // Spec 3.1-3.2.
    let mut c = KafkaClient::default();
    let send = Base::Send(3, 4).op();
    assert_eq!(
        Value::Object(c.request(&send)),
        json!({"type": "send", "key": "3", "msg": 4})
    );
    let reply = json!({"type": "send_ok", "offset": 17, "in_reply_to": 1});
    assert!(SEND_OK.check(&reply).is_ok());
    assert_eq!(
        c.ok_value(&send, &reply).compact(),
        r#"[[:send "3" [17 4]]]"#
    );
    assert!(c.then(&send, &reply).is_none(), "sends commit nothing");

    // A plain assign asks for committed offsets, and ignores them.
    let assign = OpSpec::new(
        "assign",
        keys_value([&"3".to_string(), &"7".to_string()]),
        false,
    );
    assert_eq!(c.local(&assign), None);
    assert_eq!(
        Value::Object(c.request(&assign)),
        json!({"type": "list_committed_offsets", "keys": ["3", "7"]})
    );
    let listed =
        json!({"type": "list_committed_offsets_ok", "offsets": {"3": 9}, "in_reply_to": 2});
    assert!(LIST_COMMITTED_OFFSETS_OK.check(&listed).is_ok());
    assert_eq!(c.ok_value(&assign, &listed), assign.value);
    let poll = Base::Poll(3).op();
    assert_eq!(
        Value::Object(c.request(&poll)),
        json!({"type": "poll", "offsets": {"3": 0, "7": 0}})
    );

    // A poll advances past what it got and commits the highest offsets.
    let got =
        json!({"type": "poll_ok", "msgs": {"3": [[0, 1], [2, 5]], "8": []}, "in_reply_to": 3});
    assert!(POLL_OK.check(&got).is_ok());
    let (commit, schema) = c.then(&poll, &got).unwrap();
    assert_eq!(
        Value::Object(commit),
        json!({"type": "commit_offsets", "offsets": {"3": 2}})
    );
    assert_eq!(schema, COMMIT_OFFSETS_OK);
    assert_eq!(
        c.ok_value(&poll, &got).compact(),
        r#"[[:poll {"3" [[0 1] [2 5]], "8" []}]]"#
    );
    assert_eq!(
        Value::Object(c.request(&poll)),
        json!({"type": "poll", "offsets": {"3": 3, "7": 0, "8": 0}})
    );
    let nothing = json!({"type": "poll_ok", "msgs": {}, "in_reply_to": 4});
    assert!(
        c.then(&poll, &nothing).is_none(),
        "nothing read, nothing committed"
    );

    // Reassigning keeps local positions and drops unassigned keys.
    let again = OpSpec::new(
        "assign",
        keys_value([&"3".to_string(), &"9".to_string()]),
        false,
    );
    c.ok_value(&again, &listed);
    assert_eq!(
        Value::Object(c.request(&poll)),
        json!({"type": "poll", "offsets": {"3": 3, "9": 0}})
    );
    // The final assign seeks to the beginning without a request.
    let seek = OpSpec::new("assign", again.value.clone(), true);
    assert_eq!(c.local(&seek), Some((OpType::Ok, seek.value.clone())));
    assert_eq!(
        Value::Object(c.request(&poll)),
        json!({"type": "poll", "offsets": {"3": 0, "9": 0}})
    );
    let crash = OpSpec::new("crash", Edn::Nil, false);
    assert_eq!(c.local(&crash), Some((OpType::Info, Edn::Nil)));
    assert_eq!(
        c.errors(),
        ErrorPolicy::WithErrors {
            idempotent: &["assign"]
        }
    );
}

#[test]
fn reply_schemas_are_closed_and_typed() {
    let ok = |s: &Schema, v: Value| s.check(&v).is_ok();
    let r = |mut v: Value| {
        v["in_reply_to"] = json!(1);
        v
    };
    assert!(!ok(&SEND_OK, r(json!({"type": "send_ok"}))));
    assert!(!ok(&SEND_OK, r(json!({"type": "send_ok", "offset": "1"}))));
    assert!(ok(&POLL_OK, r(json!({"type": "poll_ok", "msgs": {}}))));
    // A key's list may be null (a sequence schema), the map may not.
    assert!(ok(
        &POLL_OK,
        r(json!({"type": "poll_ok", "msgs": {"1": null}}))
    ));
    assert!(!ok(&POLL_OK, r(json!({"type": "poll_ok", "msgs": null}))));
    assert!(!ok(
        &POLL_OK,
        r(json!({"type": "poll_ok", "msgs": {"1": [[0]]}}))
    ));
    assert!(!ok(
        &POLL_OK,
        r(json!({"type": "poll_ok", "msgs": {"1": [[0, 1, 2]]}}))
    ));
    assert!(!ok(
        &POLL_OK,
        r(json!({"type": "poll_ok", "msgs": {"1": [["0", 1]]}}))
    ));
    assert!(ok(
        &POLL_OK,
        r(json!({"type": "poll_ok", "msgs": {"1": [[0, {"a": 1}]]}}))
    ));
    assert!(ok(
        &COMMIT_OFFSETS_OK,
        r(json!({"type": "commit_offsets_ok"}))
    ));
    assert!(!ok(
        &COMMIT_OFFSETS_OK,
        r(json!({"type": "commit_offsets_ok", "offsets": {}}))
    ));
    assert!(!ok(
        &LIST_COMMITTED_OFFSETS_OK,
        r(json!({"type": "list_committed_offsets_ok", "offsets": {"1": null}}))
    ));
    assert!(!ok(
        &LIST_COMMITTED_OFFSETS_OK,
        r(json!({"type": "list_committed_offsets_ok"}))
    ));
}

#[test]
fn every_key_gets_values_counting_from_one() {
    let mut g = Logs::new(
        TxnOptions {
            key_count: 2,
            max_writes_per_key: 3,
            max_txn_length: 9,
            ..TxnOptions::default()
        },
        1,
    );
    let mut r = rng::child(5, "ops");
    g.next_op(ctx(0, 0), &mut r);
    let mut keys = BTreeSet::new();
    for _ in 0..200 {
        let op = g.next_op(ctx(0, 0), &mut r);
        if op.f == "send" {
            let (k, v) = send_of(&op);
            assert!((1..=3).contains(&v), "--max-writes-per-key 3: {v}");
            keys.insert(k);
        }
    }
    assert!(keys.len() > 10, "{keys:?}");
}
