use super::*;
use crate::history::{Op, OpType, Process};
use proptest::prelude::*;
use std::collections::HashSet;

fn int(v: i64) -> Edn {
    Edn::Int(v)
}

fn pair(a: i64, b: i64) -> Edn {
    Edn::Vector(vec![int(a), int(b)])
}

fn op(p: u64, kind: OpType, f: &'static str, value: Edn, invocation: Option<usize>) -> Op {
    Op {
        index: 0,
        time: 0,
        kind,
        process: Process::Client(p),
        f,
        value,
        error: None,
        final_: false,
        exception: None,
        invocation,
    }
}

/// A history built op by op; values are given unwrapped and wrapped in
/// `[k v]` here.
#[derive(Default)]
struct H(History);

impl H {
    fn invoke(&mut self, p: u64, f: &'static str, k: i64, v: Edn) -> usize {
        let value = Edn::Vector(vec![int(k), v]);
        self.0.push(op(p, OpType::Invoke, f, value, None))
    }

    fn end(&mut self, inv: usize, kind: OpType, v: Edn) -> usize {
        let i = self.0.get(inv).unwrap().clone();
        let (k, _) = tuple(&i.value).unwrap();
        let value = Edn::Vector(vec![k.clone(), v]);
        let Process::Client(p) = i.process else {
            unreachable!()
        };
        self.0.push(op(p, kind, i.f, value, Some(inv)))
    }

    /// Completes with the invocation's own value (write, cas, info).
    fn done(&mut self, inv: usize, kind: OpType) -> usize {
        let v = tuple(&self.0.get(inv).unwrap().value).unwrap().1.clone();
        self.end(inv, kind, v)
    }

    fn write(&mut self, p: u64, k: i64, v: i64) {
        let i = self.invoke(p, "write", k, int(v));
        self.done(i, OpType::Ok);
    }

    fn cas(&mut self, p: u64, k: i64, from: i64, to: i64) {
        let i = self.invoke(p, "cas", k, pair(from, to));
        self.done(i, OpType::Ok);
    }

    fn read(&mut self, p: u64, k: i64, v: Edn) -> usize {
        let i = self.invoke(p, "read", k, Edn::Nil);
        self.end(i, OpType::Ok, v)
    }

    fn check(&self) -> Edn {
        check_independent_cas(&self.0, Budget::default())
    }
}

fn valid(r: &Edn) -> Edn {
    r.get("valid?").cloned().unwrap()
}

/// The `:linearizable` map of key `k`.
fn key_result(r: &Edn, k: i64) -> Edn {
    let Some(Edn::Map(results)) = r.get("results") else {
        panic!("no results in {}", r.compact())
    };
    let (_, v) = results.iter().find(|(key, _)| *key == int(k)).unwrap();
    v.get("linearizable").cloned().unwrap()
}

fn index_of(op: &Edn) -> Option<i64> {
    match op.get("index") {
        Some(Edn::Int(i)) => Some(*i),
        _ => None,
    }
}

#[test]
fn sequential_writes_reads_and_cas_are_valid() {
    let mut h = H::default();
    h.read(0, 0, Edn::Nil);
    h.write(1, 0, 1);
    h.read(0, 0, int(1));
    h.cas(1, 0, 1, 2);
    h.read(0, 0, int(2));
    h.write(1, 0, 3);
    h.read(0, 0, int(3));
    let r = h.check();
    assert_eq!(valid(&r), Edn::Bool(true), "{}", r.compact());
    let lin = key_result(&r, 0);
    assert_eq!(lin.get("model"), Some(&map([("value", int(3))])));
    assert_eq!(r.get("failures"), Some(&Edn::Vector(vec![])));
}

#[test]
fn stale_read_after_a_completed_write_is_invalid_and_named() {
    let mut h = H::default();
    h.write(1, 0, 1);
    h.write(1, 0, 2);
    let read = h.read(0, 0, int(1));
    let r = h.check();
    assert_eq!(valid(&r), Edn::Bool(false));
    let lin = key_result(&r, 0);
    let bad = lin.get("op").unwrap();
    assert_eq!(index_of(bad), Some(read as i64), "{}", lin.compact());
    assert_eq!(bad.get("value"), Some(&int(1)), "value unwrapped");
    assert_eq!(index_of(lin.get("previous-ok").unwrap()), Some(3));
    let Some(Edn::Vector(paths)) = lin.get("final-paths") else {
        panic!()
    };
    assert!(!paths.is_empty());
    for p in paths {
        let Edn::Vector(steps) = p else { panic!() };
        let last = steps.last().unwrap();
        assert_eq!(last.get("model"), Some(&kw("inconsistent")));
    }
    let Some(Edn::Vector(configs)) = lin.get("configs") else {
        panic!()
    };
    assert_eq!(configs[0].get("model"), Some(&map([("value", int(2))])));
}

#[test]
fn concurrent_ops_with_one_working_order_are_valid() {
    // w1 and w2 overlap; the read after both sees 1: w2 went first.
    let mut h = H::default();
    let w1 = h.invoke(1, "write", 0, int(1));
    let w2 = h.invoke(2, "write", 0, int(2));
    h.done(w1, OpType::Ok);
    h.done(w2, OpType::Ok);
    h.read(0, 0, int(1));
    assert_eq!(valid(&h.check()), Edn::Bool(true));

    // Three concurrent ops that only chain as write 1, cas 1→2, cas 2→3.
    let mut h = H::default();
    let a = h.invoke(1, "cas", 0, pair(2, 3));
    let b = h.invoke(2, "cas", 0, pair(1, 2));
    let c = h.invoke(3, "write", 0, int(1));
    h.done(a, OpType::Ok);
    h.done(b, OpType::Ok);
    h.done(c, OpType::Ok);
    h.read(0, 0, int(3));
    assert_eq!(valid(&h.check()), Edn::Bool(true));

    // The same with a read of 2 at the end has no order.
    let mut h = H::default();
    let a = h.invoke(1, "cas", 0, pair(2, 3));
    let b = h.invoke(2, "cas", 0, pair(1, 2));
    let c = h.invoke(3, "write", 0, int(1));
    h.done(a, OpType::Ok);
    h.done(b, OpType::Ok);
    h.done(c, OpType::Ok);
    h.read(0, 0, int(2));
    assert_eq!(valid(&h.check()), Edn::Bool(false));
}

#[test]
fn cas_from_a_value_not_held_is_invalid() {
    let mut h = H::default();
    h.write(1, 0, 1);
    let i = h.invoke(1, "cas", 0, pair(2, 3));
    let done = h.done(i, OpType::Ok);
    let r = h.check();
    assert_eq!(valid(&r), Edn::Bool(false));
    let bad = key_result(&r, 0).get("op").cloned().unwrap();
    assert_eq!(index_of(&bad), Some(done as i64));
    assert_eq!(bad.get("f"), Some(&kw("cas")));

    // From nil: a cas [nil 1] on a fresh register works, [0 1] does not.
    let mut h = H::default();
    let i = h.invoke(1, "cas", 0, Edn::Vector(vec![Edn::Nil, int(1)]));
    h.done(i, OpType::Ok);
    h.read(0, 0, int(1));
    assert_eq!(valid(&h.check()), Edn::Bool(true));
    let mut h = H::default();
    h.cas(1, 0, 0, 1);
    assert_eq!(valid(&h.check()), Edn::Bool(false));
}

#[test]
fn an_info_write_may_explain_a_later_read() {
    let mut h = H::default();
    let w = h.invoke(1, "write", 0, int(7));
    h.done(w, OpType::Info);
    h.read(0, 0, int(7));
    h.read(0, 0, int(7));
    assert_eq!(valid(&h.check()), Edn::Bool(true));

    // An invocation that never completes counts as info.
    let mut h = H::default();
    h.invoke(1, "write", 0, int(7));
    h.read(0, 0, int(7));
    assert_eq!(valid(&h.check()), Edn::Bool(true));

    // It may also never take effect.
    let mut h = H::default();
    h.write(2, 0, 1);
    let w = h.invoke(1, "write", 0, int(7));
    h.done(w, OpType::Info);
    h.read(0, 0, int(1));
    assert_eq!(valid(&h.check()), Edn::Bool(true));
}

#[test]
fn an_info_write_cannot_explain_a_read_that_ended_before_it() {
    for completion in [Some(OpType::Info), None] {
        let mut h = H::default();
        let read = h.read(0, 0, int(7));
        let w = h.invoke(1, "write", 0, int(7));
        if let Some(kind) = completion {
            h.done(w, kind);
        }
        let r = h.check();
        assert_eq!(valid(&r), Edn::Bool(false), "{completion:?}");
        let lin = key_result(&r, 0);
        assert_eq!(index_of(lin.get("op").unwrap()), Some(read as i64));
        assert_eq!(lin.get("previous-ok"), Some(&Edn::Nil));
    }
}

#[test]
fn nil_reads_are_always_fine_and_failed_ops_never_happened() {
    let mut h = H::default();
    h.write(1, 0, 1);
    h.write(1, 0, 2);
    h.read(0, 0, Edn::Nil);
    h.read(0, 0, int(2));
    h.read(0, 0, Edn::Nil);
    assert_eq!(valid(&h.check()), Edn::Bool(true));

    let mut h = H::default();
    h.write(1, 0, 1);
    let w = h.invoke(1, "write", 0, int(2));
    h.done(w, OpType::Fail);
    let read = h.read(0, 0, int(2));
    let r = h.check();
    assert_eq!(valid(&r), Edn::Bool(false));
    assert_eq!(
        index_of(key_result(&r, 0).get("op").unwrap()),
        Some(read as i64)
    );

    // A failed cas leaves the value alone.
    let mut h = H::default();
    h.write(1, 0, 1);
    let c = h.invoke(1, "cas", 0, pair(1, 2));
    h.done(c, OpType::Fail);
    h.read(0, 0, int(1));
    assert_eq!(valid(&h.check()), Edn::Bool(true));
}

#[test]
fn equality_is_clojure_equality() {
    let mut h = H::default();
    h.write(1, 0, 1);
    h.read(0, 0, Edn::Float(1.0));
    assert_eq!(valid(&h.check()), Edn::Bool(false));

    let mut h = H::default();
    let s = Edn::Vector(vec![Edn::from("a"), int(1)]);
    let w = h.invoke(1, "write", 0, s.clone());
    h.done(w, OpType::Ok);
    h.read(0, 0, s);
    assert_eq!(valid(&h.check()), Edn::Bool(true));
}

#[test]
fn keys_are_independent_and_sorted() {
    let mut h = H::default();
    h.write(1, 1, 1);
    h.write(2, 0, 5);
    h.read(0, 1, int(2)); // key 1: never written
    h.read(3, 0, int(5));
    // Nemesis ops and non-tuple values are ignored.
    let mut n = op(0, OpType::Info, "start-partition", kw("majority"), None);
    n.process = Process::Nemesis;
    h.0.push(n);
    h.0.push(op(4, OpType::Invoke, "read", int(3), None));
    let r = h.check();
    assert_eq!(valid(&r), Edn::Bool(false));
    assert_eq!(r.get("failures"), Some(&Edn::Vector(vec![int(1)])));
    assert_eq!(valid(&key_result(&r, 0)), Edn::Bool(true));
    assert_eq!(valid(&key_result(&r, 1)), Edn::Bool(false));
    let Some(Edn::Map(results)) = r.get("results") else {
        panic!()
    };
    let keys: Vec<_> = results.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(keys, vec![int(0), int(1)]);
    assert_eq!(
        results[1].1.get("valid?"),
        Some(&Edn::Bool(false)),
        "per-key :valid? beside :linearizable"
    );
}

#[test]
fn an_empty_history_is_valid() {
    let r = check_independent_cas(&History::default(), Budget::default());
    assert_eq!(
        r.compact(),
        "{:valid? true, :results {}, :failures []}",
        "Jepsen's independent layout"
    );
}

#[test]
fn a_search_past_its_budget_is_unknown_with_a_cause() {
    // Five overlapping writes and reads that need backtracking.
    let mut h = H::default();
    let ws: Vec<_> = (1..=5)
        .map(|v| h.invoke(v as u64, "write", 0, int(v)))
        .collect();
    for w in ws {
        h.done(w, OpType::Ok);
    }
    h.read(0, 0, int(1));
    assert_eq!(valid(&h.check()), Edn::Bool(true));
    for (budget, cause) in [
        (
            Budget {
                max_steps: 3,
                max_configs: 1_000,
            },
            "step-limit",
        ),
        (
            Budget {
                max_steps: 1_000,
                max_configs: 2,
            },
            "config-limit",
        ),
    ] {
        let r = check_independent_cas(&h.0, budget);
        assert_eq!(valid(&r), kw("unknown"));
        assert_eq!(r.get("failures"), Some(&Edn::Vector(vec![int(0)])));
        let lin = key_result(&r, 0);
        assert_eq!(lin.get("cause"), Some(&kw(cause)));
        let Some(Edn::Str(reason)) = lin.get("reason") else {
            panic!()
        };
        assert!(reason.contains("Budget::max_"), "{reason}");
    }
}

/// Registers (one per key) driven by a schedule: each op takes effect
/// at one instant between its invocation and its completion, or never
/// when it fails or crashes first. Its histories are linearizable by
/// construction.
struct Sim {
    ops: Vec<Op>,
    regs: Vec<Edn>,
    /// Per client: its current process and open op.
    slots: Vec<(u64, Slot)>,
    next_process: u64,
}

#[derive(Clone, Debug)]
enum Slot {
    Idle,
    Called(usize),
    /// Took effect; the ok completion's value, `None` for a cas that
    /// found another value (it fails, without effect).
    Applied(usize, Option<Edn>),
}

impl Sim {
    fn new(clients: usize, keys: usize) -> Sim {
        Sim {
            ops: Vec::new(),
            regs: vec![Edn::Nil; keys],
            slots: (0..clients as u64).map(|p| (p, Slot::Idle)).collect(),
            next_process: clients as u64,
        }
    }

    fn push(&mut self, mut op: Op) -> usize {
        op.index = self.ops.len();
        self.ops.push(op);
        self.ops.len() - 1
    }

    fn invoke(&mut self, c: usize, f: &'static str, key: usize, v: Edn) {
        let value = Edn::Vector(vec![int(key as i64), v]);
        let i = self.push(op(self.slots[c].0, OpType::Invoke, f, value, None));
        self.slots[c].1 = Slot::Called(i);
    }

    /// The linearization point of client `c`'s open op.
    fn apply(&mut self, c: usize) {
        let Slot::Called(i) = self.slots[c].1 else {
            return;
        };
        let inv = &self.ops[i];
        let (Edn::Int(k), v) = tuple(&inv.value).unwrap() else {
            unreachable!()
        };
        let reg = &mut self.regs[*k as usize];
        let result = match (inv.f, v) {
            ("read", _) => Some(Edn::Vector(vec![int(*k), reg.clone()])),
            ("write", v) => {
                *reg = v.clone();
                Some(inv.value.clone())
            }
            (_, Edn::Vector(ft)) => (*reg == ft[0]).then(|| {
                *reg = ft[1].clone();
                inv.value.clone()
            }),
            _ => unreachable!(),
        };
        self.slots[c].1 = Slot::Applied(i, result);
    }

    /// Ends client `c`'s op: `Ok` after its effect (a cas that missed
    /// fails), `Info` any time, `Fail` only before its effect. An info
    /// op's process is retired, as Jepsen does.
    fn complete(&mut self, c: usize, kind: OpType) {
        let (p, slot) = self.slots[c].clone();
        let (inv, kind, value) = match (slot, kind) {
            (Slot::Idle, _) => return,
            (Slot::Applied(i, Some(v)), OpType::Ok) => (i, OpType::Ok, v),
            (Slot::Applied(i, None), OpType::Ok) => (i, OpType::Fail, self.ops[i].value.clone()),
            (Slot::Applied(i, _), _) => (i, OpType::Info, self.ops[i].value.clone()),
            (Slot::Called(i), OpType::Fail) => (i, OpType::Fail, self.ops[i].value.clone()),
            (Slot::Called(i), _) => (i, OpType::Info, self.ops[i].value.clone()),
        };
        let f = self.ops[inv].f;
        self.push(op(p, kind, f, value, Some(inv)));
        if kind == OpType::Info {
            self.slots[c].0 = self.next_process;
            self.next_process += 1;
        }
        self.slots[c].1 = Slot::Idle;
    }

    /// One schedule step for client `c`, decided by `byte`.
    fn act(&mut self, c: usize, byte: u8, a: i64, b: i64) {
        match self.slots[c].1 {
            Slot::Idle => {
                let key = usize::from(byte / 3) % self.regs.len();
                match byte % 3 {
                    0 => self.invoke(c, "read", key, Edn::Nil),
                    1 => self.invoke(c, "write", key, int(a)),
                    _ => self.invoke(c, "cas", key, pair(a, b)),
                }
            }
            Slot::Called(_) => match byte % 8 {
                0 => self.complete(c, OpType::Info),
                1 => self.complete(c, OpType::Fail),
                _ => self.apply(c),
            },
            Slot::Applied(..) => match byte % 8 {
                0 => self.complete(c, OpType::Info),
                _ => self.complete(c, OpType::Ok),
            },
        }
    }

    fn history(&self) -> History {
        let mut h = History::default();
        for o in &self.ops {
            h.push(o.clone());
        }
        h
    }
}

proptest! {
    #[test]
    fn simulated_registers_are_linearizable_and_a_foreign_read_is_not(
        clients in 1usize..6,
        keys in 1usize..3,
        schedule in prop::collection::vec(
            (0usize..6, any::<u8>(), 0i64..4, 0i64..4),
            0..160,
        ),
        pick in any::<prop::sample::Index>(),
    ) {
        let mut sim = Sim::new(clients, keys);
        for &(c, byte, a, b) in &schedule {
            sim.act(c % clients, byte, a, b);
        }
        let r = check_independent_cas(&sim.history(), Budget::default());
        prop_assert_eq!(valid(&r), Edn::Bool(true), "{}", r.compact());

        // A read of 99, never written anywhere, cannot be linearized,
        // and it is the op reported: the search passes every return
        // before it and none after.
        let reads: Vec<usize> = sim
            .ops
            .iter()
            .filter(|o| o.f == "read" && o.kind == OpType::Ok)
            .map(|o| o.index)
            .collect();
        if reads.is_empty() {
            return Ok(());
        }
        let bad = reads[pick.index(reads.len())];
        let Some((&Edn::Int(k), _)) = tuple(&sim.ops[bad].value) else {
            unreachable!()
        };
        sim.ops[bad].value = pair(k, 99);
        let r = check_independent_cas(&sim.history(), Budget::default());
        prop_assert_eq!(valid(&r), Edn::Bool(false));
        prop_assert_eq!(r.get("failures"), Some(&Edn::Vector(vec![int(k)])));
        let lin = key_result(&r, k);
        prop_assert_eq!(index_of(lin.get("op").unwrap()), Some(bad as i64));
    }
}

/// Maelstrom's lin-kv on one key: `clients` clients, the first half
/// reading, the rest writing (1/3 write, 2/3 cas, values 0-4); each
/// step crashes an open op with probability `crash_permille`/1000.
fn long_run(seed: u64, clients: usize, invocations: usize, crash_permille: u32) -> Sim {
    use hearsay_core::rng::{RngExt, child};
    let mut rng = child(seed, "lin-kv-long");
    let mut sim = Sim::new(clients, 1);
    let mut invoked = 0;
    while invoked < invocations {
        let c = rng.random_range(0..clients);
        let roll = rng.random_range(0..1000);
        match sim.slots[c].1 {
            Slot::Idle => {
                invoked += 1;
                let (a, b) = (rng.random_range(0..5), rng.random_range(0..5));
                if c < clients / 2 {
                    sim.invoke(c, "read", 0, Edn::Nil);
                } else if roll < 333 {
                    sim.invoke(c, "write", 0, int(a));
                } else {
                    sim.invoke(c, "cas", 0, pair(a, b));
                }
            }
            Slot::Called(_) if roll < crash_permille => sim.complete(c, OpType::Info),
            Slot::Called(_) if roll < crash_permille + 3 => sim.complete(c, OpType::Fail),
            Slot::Called(_) => sim.apply(c),
            Slot::Applied(..) if roll < crash_permille => sim.complete(c, OpType::Info),
            Slot::Applied(..) => sim.complete(c, OpType::Ok),
        }
    }
    for c in 0..clients {
        sim.apply(c);
        sim.complete(c, OpType::Ok);
    }
    sim
}

/// Checks with the default budget, printing the time taken.
fn timed(label: &str, history: &History) -> Edn {
    let infos = history
        .ops()
        .iter()
        .filter(|o| o.kind == OpType::Info)
        .count();
    let start = std::time::Instant::now();
    let r = check_independent_cas(history, Budget::default());
    let elapsed = start.elapsed();
    let lin = key_result(&r, 0);
    println!(
        "lin-kv checker, {label}: {} history ops ({infos} info): {} in {elapsed:?}, {} configs",
        history.len(),
        valid(&r).compact(),
        lin.get("configs-searched").unwrap().compact()
    );
    r
}

#[test]
fn a_long_correct_history_decides_within_the_default_budget() {
    // A 5-node lin-kv run: 10 clients on one key, 6,000 ops.
    let sim = long_run(7, 10, 6_000, 2);
    let r = timed("6,000 ops, 10 clients", &sim.history());
    assert_eq!(valid(&r), Edn::Bool(true), "{}", r.compact());
}

/// Linearizability by exhaustive search straight from the history (no
/// preprocessing shared with the checker): ok ops in some order that
/// respects real time, info ops optional, the register always
/// consistent. For histories of a dozen ops.
fn brute_force(history: &History) -> bool {
    struct Call {
        ok: bool,
        inv: usize,
        end: usize,
        f: &'static str,
        value: Edn,
    }
    let mut calls = Vec::new();
    for o in history.ops().iter().filter(|o| o.kind == OpType::Invoke) {
        let end = history.ops().iter().find(|c| c.invocation == Some(o.index));
        let kind = end.map_or(OpType::Info, |c| c.kind);
        if kind == OpType::Fail {
            continue;
        }
        let source = if kind == OpType::Ok { end.unwrap() } else { o };
        calls.push(Call {
            ok: kind == OpType::Ok,
            inv: o.index,
            end: end.map_or(usize::MAX, |c| c.index),
            f: o.f,
            value: tuple(&source.value).unwrap().1.clone(),
        });
    }
    let all_ok: u32 = (0..calls.len())
        .filter(|&i| calls[i].ok)
        .map(|i| 1 << i)
        .sum();
    let mut failed: HashSet<(u32, String)> = HashSet::new();
    let mut todo = vec![(0u32, Edn::Nil)];
    while let Some((done, reg)) = todo.pop() {
        if done & all_ok == all_ok {
            return true;
        }
        if !failed.insert((done, reg.compact())) {
            continue;
        }
        for (i, c) in calls.iter().enumerate() {
            let before = |j: usize| calls[j].ok && calls[j].end < c.inv;
            if done & (1 << i) != 0 || (0..calls.len()).any(|j| before(j) && done & (1 << j) == 0) {
                continue;
            }
            let next = match (c.f, &c.value) {
                ("read", v) if *v == Edn::Nil || *v == reg => reg.clone(),
                ("write", v) => v.clone(),
                ("cas", Edn::Vector(ft)) if ft[0] == reg => ft[1].clone(),
                _ => continue,
            };
            todo.push((done | 1 << i, next));
        }
    }
    false
}

proptest! {
    #[test]
    fn agrees_with_exhaustive_search_on_small_arbitrary_histories(
        schedule in prop::collection::vec((0usize..4, 0u8..6, 0i64..3, 0i64..3), 0..24),
    ) {
        // Random ops with random outcomes and read values, on one key.
        let mut h = H::default();
        let mut open: [Option<usize>; 4] = [None; 4];
        let mut process = [0, 1, 2, 3];
        for &(c, roll, a, b) in &schedule {
            match open[c].take() {
                None => {
                    let (f, v) = match roll % 3 {
                        0 => ("read", Edn::Nil),
                        1 => ("write", int(a)),
                        _ => ("cas", pair(a, b)),
                    };
                    open[c] = Some(h.invoke(process[c], f, 0, v));
                }
                Some(i) => {
                    use OpType::{Fail, Info, Ok};
                    let kind = [Ok, Ok, Ok, Fail, Info][usize::from(roll) % 5];
                    if h.0.get(i).unwrap().f == "read" && kind == Ok {
                        // Any value, or nil (roll 5).
                        h.end(i, kind, if roll == 5 { Edn::Nil } else { int(a) });
                    } else {
                        h.done(i, kind);
                    }
                    if kind == OpType::Info {
                        process[c] += 4;
                    }
                }
            }
        }
        let r = h.check();
        let expected = brute_force(&h.0);
        prop_assert_eq!(valid(&r) == Edn::Bool(true), expected, "{}", r.compact());
    }
}

#[test]
fn each_key_gets_its_files_and_a_broken_key_its_picture() {
    let mut h = H::default();
    // Key 0: a stale read (invalid). Key 7: fine.
    h.write(1, 0, 1);
    h.write(1, 0, 2);
    h.read(0, 0, int(1));
    h.write(2, 7, 5);
    h.read(2, 7, int(5));
    let (r, files) = check_files(&h.0, Budget::default());
    assert_eq!(valid(&r), Edn::Bool(false));
    let by: std::collections::BTreeMap<&str, &str> = files
        .iter()
        .map(|f| (f.path.as_str(), f.body.as_str()))
        .collect();
    let paths: Vec<&str> = by.keys().copied().collect();
    assert_eq!(
        paths,
        [
            "independent/0/history.edn",
            "independent/0/linear.svg",
            "independent/0/results.edn",
            "independent/0/timeline.html",
            "independent/7/history.edn",
            "independent/7/results.edn",
            "independent/7/timeline.html",
        ]
    );
    // The key's ops, values without the key, original indices.
    let sub = by["independent/7/history.edn"];
    assert_eq!(sub.lines().count(), 4, "{sub}");
    assert!(sub.starts_with("{:index 6, "), "{sub}");
    assert!(sub.contains(":f :write, :value 5}"), "{sub}");
    assert!(by["independent/0/results.edn"].contains(":valid? false"));
    // The picture: the stale read outlined red, the writes it could not
    // follow, and Knossos' final paths.
    let svg = by["independent/0/linear.svg"];
    assert!(svg.contains("read 1"), "{svg}");
    assert_eq!(svg.matches("#D0021B").count(), 1, "one failed op: {svg}");
    assert!(svg.contains("write 2"), "{svg}");
    assert!(svg.contains("-&gt; inconsistent"), "{svg}");
    assert!(by["independent/7/timeline.html"].contains("lin-kv key 7"));
}
