//! The laws every type must keep, checked on states that random operations
//! at several replicas and random merges produce; and the behaviours that
//! tell the types apart.

use super::*;
use crate::id::NodeId;
use proptest::prelude::*;

/// A type under test: how a random operation changes it.
trait Model: Crdt {
    /// Applies operation `op` with argument `v` at replica `me`; returns the
    /// delta the operation produced.
    fn apply(&mut self, me: &NodeId, op: u8, v: u8, clock: &mut Hlc, now: u64) -> Self;
}

impl Model for GCounter {
    fn apply(&mut self, me: &NodeId, _: u8, v: u8, _: &mut Hlc, _: u64) -> Self {
        self.add(me, u64::from(v))
    }
}
impl Model for PNCounter {
    fn apply(&mut self, me: &NodeId, op: u8, v: u8, _: &mut Hlc, _: u64) -> Self {
        let n = i64::from(v);
        self.add(me, if op.is_multiple_of(2) { n } else { -n })
    }
}
impl Model for GSet<u8> {
    fn apply(&mut self, me: &NodeId, _: u8, v: u8, _: &mut Hlc, _: u64) -> Self {
        self.add(me, v % 16)
    }
}
impl Model for TwoPSet<u8> {
    fn apply(&mut self, me: &NodeId, op: u8, v: u8, _: &mut Hlc, _: u64) -> Self {
        if op.is_multiple_of(3) {
            self.remove(me, &(v % 8))
        } else {
            self.add(me, v % 8)
        }
    }
}
impl Model for ORSet<u8> {
    fn apply(&mut self, me: &NodeId, op: u8, v: u8, _: &mut Hlc, _: u64) -> Self {
        if op.is_multiple_of(3) {
            self.remove(me, &(v % 8))
        } else {
            self.add(me, v % 8)
        }
    }
}
impl Model for LwwRegister<u8> {
    fn apply(&mut self, me: &NodeId, _: u8, v: u8, c: &mut Hlc, now: u64) -> Self {
        let at = c.tick(now);
        self.set(me, at, v)
    }
}
impl Model for LwwMap<u8, u8> {
    fn apply(&mut self, me: &NodeId, op: u8, v: u8, c: &mut Hlc, now: u64) -> Self {
        let at = c.tick(now);
        if op.is_multiple_of(3) {
            self.delete(me, at, v % 4)
        } else {
            self.set(me, at, v % 4, op)
        }
    }
}
impl Model for MvRegister<u8> {
    fn apply(&mut self, me: &NodeId, _: u8, v: u8, _: &mut Hlc, _: u64) -> Self {
        self.set(me, v)
    }
}

#[derive(Clone, Debug)]
enum Step {
    /// Replica does an operation.
    Op(usize, u8, u8),
    /// Replica `to` takes the delta `from` computes since `to`'s version.
    Delta(usize, usize),
    /// Replica `to` merges all of `from`.
    Full(usize, usize),
    /// Time passes (skewed per replica).
    Wait(u8),
}

const N: usize = 3;

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..N, any::<u8>(), any::<u8>()).prop_map(|(r, o, v)| Step::Op(r, o, v)),
        2 => (0..N, 0..N).prop_map(|(a, b)| Step::Delta(a, b)),
        1 => (0..N, 0..N).prop_map(|(a, b)| Step::Full(a, b)),
        1 => any::<u8>().prop_map(Step::Wait),
    ]
}

fn names() -> Vec<NodeId> {
    (0..N).map(|i| NodeId::new(format!("r{i}"))).collect()
}

/// Runs a schedule; returns the replicas.
fn run<T: Model>(steps: &[Step]) -> Vec<T> {
    let ids = names();
    let mut reps = vec![T::default(); N];
    let mut clocks = [Hlc::default(); N];
    let mut now = 1_000u64;
    for s in steps {
        match *s {
            Step::Op(r, op, v) => {
                let skew = r as u64 * 7;
                let delta = reps[r].apply(&ids[r], op, v, &mut clocks[r], now + skew);
                // The delta of an operation is part of the new state.
                let mut with = reps[r].clone();
                with.merge(&delta);
                assert_eq!(with, reps[r], "a delta must be contained in its state");
            }
            Step::Delta(from, to) => {
                let d = reps[from].delta_since(&reps[to].version());
                reps[to].merge(&d);
            }
            Step::Full(from, to) => {
                let f = reps[from].clone();
                reps[to].merge(&f);
            }
            Step::Wait(ms) => now += u64::from(ms),
        }
    }
    reps
}

fn laws<T: Model>(steps: &[Step]) -> Result<(), TestCaseError> {
    let reps = run::<T>(steps);
    let (a, b, c) = (&reps[0], &reps[1], &reps[2]);
    let join = |x: &T, y: &T| {
        let mut z = x.clone();
        z.merge(y);
        z
    };
    prop_assert_eq!(join(a, b), join(b, a), "commutative");
    prop_assert_eq!(join(&join(a, b), c), join(a, &join(b, c)), "associative");
    prop_assert_eq!(&join(a, a), a, "idempotent");
    // A delta since b's version does for b what all of a does.
    let with_delta = join(b, &a.delta_since(&b.version()));
    prop_assert_eq!(with_delta, join(b, a), "delta == full state");
    prop_assert!(a.delta_since(&a.version()).size() <= a.size());
    Ok(())
}

fn converges<T: Model>(steps: &[Step]) -> Result<(), TestCaseError> {
    let mut reps = run::<T>(steps);
    // Anti-entropy by deltas only: two rounds of everyone with everyone.
    for _ in 0..2 {
        for i in 0..N {
            for j in 0..N {
                let d = reps[i].delta_since(&reps[j].version());
                reps[j].merge(&d);
            }
        }
    }
    for r in &reps[1..] {
        prop_assert_eq!(r, &reps[0]);
    }
    Ok(())
}

macro_rules! crdt_props {
    ($name:ident, $t:ty) => {
        mod $name {
            use super::*;
            proptest! {
                #![proptest_config(ProptestConfig::with_cases(
                    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(128)
                ))]
                #[test]
                fn lattice_laws_and_deltas(steps in proptest::collection::vec(step(), 0..40)) {
                    laws::<$t>(&steps)?;
                }
                #[test]
                fn replicas_converge(steps in proptest::collection::vec(step(), 0..40)) {
                    converges::<$t>(&steps)?;
                }
            }
        }
    };
}

crdt_props!(g_counter, GCounter);
crdt_props!(pn_counter, PNCounter);
crdt_props!(g_set, GSet<u8>);
crdt_props!(two_p_set, TwoPSet<u8>);
crdt_props!(or_set, ORSet<u8>);
crdt_props!(lww_register, LwwRegister<u8>);
crdt_props!(lww_map, LwwMap<u8, u8>);
crdt_props!(mv_register, MvRegister<u8>);

fn ids() -> (NodeId, NodeId) {
    (NodeId::new("a"), NodeId::new("b"))
}

#[test]
fn lww_drops_a_concurrent_write_and_the_mv_register_keeps_both() {
    let (a, b) = ids();
    let (mut ra, mut rb) = (LwwRegister::default(), LwwRegister::default());
    ra.set(
        &a,
        Hlc {
            wall_ms: 10,
            logical: 0,
        },
        "from a",
    );
    rb.set(
        &b,
        Hlc {
            wall_ms: 9,
            logical: 0,
        },
        "from b",
    );
    ra.merge(&rb);
    assert_eq!(
        ra.get(),
        Some(&"from a"),
        "b's write is gone without a trace"
    );
    let (mut ma, mut mb) = (MvRegister::default(), MvRegister::default());
    ma.set(&a, "from a");
    mb.set(&b, "from b");
    ma.merge(&mb);
    assert_eq!(ma.values(), vec!["from a", "from b"], "siblings");
    // A write that has seen both replaces both.
    ma.set(&a, "resolved");
    mb.merge(&ma);
    assert_eq!(mb.values(), vec!["resolved"]);
}

#[test]
fn or_set_add_wins_over_a_concurrent_remove_and_a_remove_removes_what_it_saw() {
    let (a, b) = ids();
    let mut sa = ORSet::default();
    sa.add(&a, 1);
    let mut sb = sa.clone();
    sb.remove(&b, &1);
    sa.add(&a, 1); // concurrent with b's remove
    sb.merge(&sa);
    assert!(sb.contains(&1), "the add b had not seen survives");
    let mut sc = sb.clone();
    sc.remove(&b, &1);
    sa.merge(&sc);
    assert!(!sa.contains(&1));
}

#[test]
fn a_removal_reaches_a_peer_that_had_seen_the_add_through_a_delta() {
    let (a, b) = ids();
    let mut sa = ORSet::default();
    sa.add(&a, 5);
    let mut sb = ORSet::default();
    sb.merge(&sa.delta_since(&sb.version()));
    assert!(sb.contains(&5));
    sa.remove(&a, &5);
    // b has seen the add's dot; the delta must still carry the removal.
    sb.merge(&sa.delta_since(&sb.version()));
    assert!(!sb.contains(&5));
    let _ = b;
}

#[test]
fn two_p_set_removes_are_final_and_counters_count() {
    let (a, b) = ids();
    let mut s = TwoPSet::default();
    s.add(&a, 3);
    s.remove(&a, &3);
    assert!(s.add(&b, 3).size() == 0 && !s.contains(&3));
    let mut p = PNCounter::default();
    p.add(&a, 5);
    let mut q = PNCounter::default();
    q.add(&b, -7);
    p.merge(&q);
    assert_eq!(p.value(), -2);
    let mut g = GCounter::default();
    g.add(&a, u64::MAX);
    g.add(&a, 1);
    assert_eq!(g.value(), u64::MAX, "saturates, never wraps");
}

#[test]
fn collected_tombstones_leave_the_live_state_alone() {
    let (a, b) = ids();
    let mut m = LwwMap::default();
    m.set(
        &a,
        Hlc {
            wall_ms: 1,
            logical: 0,
        },
        "k",
        1,
    );
    m.delete(
        &a,
        Hlc {
            wall_ms: 2,
            logical: 0,
        },
        "k",
    );
    m.set(
        &b,
        Hlc {
            wall_ms: 3,
            logical: 0,
        },
        "j",
        2,
    );
    assert_eq!(m.size(), 2);
    m.collect(&m.version());
    assert_eq!(m.size(), 1);
    assert_eq!(m.iter().collect::<Vec<_>>(), vec![(&"j", &2)]);
    let mut s = ORSet::default();
    s.add(&a, 1);
    s.add(&a, 1);
    let before = s.size();
    s.collect(&s.version());
    assert!(s.size() < before && s.contains(&1));
}
