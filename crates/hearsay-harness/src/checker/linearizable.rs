//! Maelstrom's lin-kv checker (maelstrom-spec-more 2.3): Jepsen's independent
//! checker over Knossos' linearizability check of a CAS register.
//!
//! Each key is decided alone (linearizability is compositional) by a
//! Wing–Gong–Lowe search: a linked list of call and return entries in
//! history order, calls lifted depth-first while the register allows them,
//! and a memo of visited (linearized set, register value) configurations.
//! The search is deterministic and bounded by a [`Budget`] of steps and
//! memoised configurations; past either the key is `:unknown` with a
//! `:cause` (Knossos aborts on heap exhaustion instead, 2.3 item 6).
//!
//! Not here: the per-key `:timeline` and `linear.svg` (report layer).

use super::Validity;
use crate::edn::{Edn, kw, map};
use crate::history::{History, OpType, Process};
use std::cmp::Ordering;
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

/// Search limits; past either the key's verdict is :unknown with a :cause.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Entries examined (calls tried, returns met), for each key.
    pub max_steps: u64,
    /// Distinct configurations memoised, for each key (17-34 bytes each).
    pub max_configs: usize,
}

impl Default for Budget {
    /// A correct 60 s lin-kv run of 5 nodes (one key, 6,000 ops, 10
    /// clients) takes 5-30 thousand configurations and a few milliseconds;
    /// these limits stop a hopeless search after 1-3 s and ~260 MB.
    fn default() -> Self {
        Budget {
            max_steps: 100_000_000,
            max_configs: 4_000_000,
        }
    }
}

/// Maelstrom's lin-kv checker: Jepsen's independent checker over Knossos'
/// linearizable checker with a CAS-register model (spec section 2.3).
pub fn check_independent_cas(history: &History, budget: Budget) -> Edn {
    let mut keys = split(history);
    keys.sort_by(|a, b| key_order(&a.key, &b.key));
    let mut valid = Validity::True;
    let mut results = Vec::with_capacity(keys.len());
    let mut failures = Vec::new();
    for key in keys {
        let lin = check_key(history, &key, budget);
        let v = Validity::of(&lin);
        tracing::debug!(key = %key.key.compact(), valid = ?v, "lin-kv key checked");
        valid = valid.merge(v);
        if v != Validity::True {
            failures.push(key.key.clone());
        }
        results.push((key.key, map([("linearizable", lin), ("valid?", v.edn())])));
    }
    map([
        ("valid?", valid.edn()),
        ("results", Edn::Map(results)),
        ("failures", Edn::Vector(failures)),
    ])
}

/// Lists in reports stop here (Jepsen cuts `:configs`/`:final-paths` to 10).
const SHOWN: usize = 10;

// ---------------------------------------------------------------------------
// Splitting the history by key (jepsen.independent + Knossos preprocess)

/// The register's value numbers: 0 is nil, the rest index [`Interner`].
const NIL: u32 = 0;

/// One op's effect on the CAS register, values interned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// Consistent iff the value is nil or current.
    Read(u32),
    Write(u32),
    /// Needs current == from, then sets to.
    Cas(u32, u32),
    /// A cas whose value is not `[from to]`: never consistent.
    Bad,
}

fn step(state: u32, s: Step) -> Option<u32> {
    match s {
        Step::Read(v) => (v == NIL || v == state).then_some(state),
        Step::Write(v) => Some(v),
        Step::Cas(from, to) => (from == state).then_some(to),
        Step::Bad => None,
    }
}

/// EDN values numbered by Clojure `=` (so `1` and `1.0` differ): bucketed by
/// printed form, then compared exactly.
struct Interner {
    values: Vec<Edn>,
    by_text: HashMap<String, Vec<u32>>,
}

impl Interner {
    fn new() -> Interner {
        Interner {
            values: Vec::new(),
            by_text: HashMap::new(),
        }
    }

    /// Register values: nil is [`NIL`].
    fn values() -> Interner {
        let mut i = Interner::new();
        i.id(&Edn::Nil);
        i
    }

    fn id(&mut self, v: &Edn) -> u32 {
        let bucket = self.by_text.entry(v.compact()).or_default();
        if let Some(&i) = bucket.iter().find(|&&i| self.values[i as usize] == *v) {
            return i;
        }
        let i = self.values.len() as u32;
        self.values.push(v.clone());
        bucket.push(i);
        i
    }

    fn find(&self, v: &Edn) -> Option<u32> {
        let bucket = self.by_text.get(&v.compact())?;
        bucket
            .iter()
            .copied()
            .find(|&i| self.values[i as usize] == *v)
    }
}

/// One client op of a key's sub-history, after preprocessing.
#[derive(Clone, Debug)]
struct KeyOp {
    step: Step,
    /// Completed ok (must be linearized); otherwise info (optional).
    ok: bool,
    /// History index of the invocation.
    call: usize,
    /// History index of the ok completion.
    ret: Option<usize>,
    /// The op reported: the completion, or the invocation if none.
    shown: usize,
    /// The unwrapped value the model sees.
    value: Edn,
}

struct KeyHistory {
    key: Edn,
    ops: Vec<KeyOp>,
    values: Interner,
}

/// `[k v]` tuples only; anything else is not a key's op.
fn tuple(v: &Edn) -> Option<(&Edn, &Edn)> {
    match v {
        Edn::Vector(t) if t.len() == 2 => Some((&t[0], &t[1])),
        _ => None,
    }
}

fn split(history: &History) -> Vec<KeyHistory> {
    let mut keys = Interner::new();
    // (invocation index, completion index) per key id.
    let mut pairs: Vec<Vec<(usize, Option<usize>)>> = Vec::new();
    let mut open: HashMap<usize, (u32, usize)> = HashMap::new();
    let mut open_by_process: HashMap<Process, usize> = HashMap::new();
    for op in history.client_ops() {
        if !matches!(op.f, "read" | "write" | "cas") {
            continue;
        }
        let Some((k, _)) = tuple(&op.value) else {
            continue;
        };
        if op.kind == OpType::Invoke {
            let kid = keys.id(k) as usize;
            if pairs.len() <= kid {
                pairs.resize_with(kid + 1, Vec::new);
            }
            open.insert(op.index, (kid as u32, pairs[kid].len()));
            open_by_process.insert(op.process, op.index);
            pairs[kid].push((op.index, None));
            continue;
        }
        let inv = op
            .invocation
            .or_else(|| open_by_process.get(&op.process).copied());
        // A completion under another key leaves its invocation open (info),
        // as jepsen.independent's split would.
        if let Some(inv) = inv
            && let Some(&(kid, slot)) = open.get(&inv)
            && keys.find(k) == Some(kid)
        {
            open.remove(&inv);
            pairs[kid as usize][slot].1 = Some(op.index);
        }
    }
    keys.values
        .into_iter()
        .zip(pairs)
        .map(|(key, p)| prepare(history, key, &p))
        .collect()
}

/// Knossos preprocess: failed ops dropped; ok ops take the completion's
/// value; info ops (and invocations never completed) keep the invocation
/// value and become optional. Ops that cannot matter are dropped too: an ok
/// nil read is consistent anywhere, an info op with no effect (read, cas
/// from == to) is best left out.
fn prepare(history: &History, key: Edn, pairs: &[(usize, Option<usize>)]) -> KeyHistory {
    let mut values = Interner::values();
    let mut ops = Vec::new();
    for &(inv_i, comp_i) in pairs {
        let Some(inv) = history.get(inv_i) else {
            continue;
        };
        let comp = comp_i.and_then(|i| history.get(i));
        let kind = comp.map_or(OpType::Info, |c| c.kind);
        let ok = match kind {
            OpType::Fail => continue,
            OpType::Ok => true,
            OpType::Info | OpType::Invoke => false,
        };
        let source = if ok { comp.unwrap_or(inv) } else { inv };
        let value = tuple(&source.value).map_or(Edn::Nil, |(_, v)| v.clone());
        let step = match (inv.f, &value) {
            ("read", v) => Step::Read(values.id(v)),
            ("write", v) => Step::Write(values.id(v)),
            ("cas", Edn::Vector(ft)) if ft.len() == 2 => {
                Step::Cas(values.id(&ft[0]), values.id(&ft[1]))
            }
            _ => Step::Bad,
        };
        let useless = match step {
            Step::Read(NIL) => true,
            Step::Read(_) | Step::Bad => !ok,
            Step::Cas(f, t) => !ok && f == t,
            Step::Write(_) => false,
        };
        if useless {
            continue;
        }
        ops.push(KeyOp {
            step,
            ok,
            call: inv_i,
            ret: if ok { comp_i } else { None },
            shown: comp_i.unwrap_or(inv_i),
            value,
        });
    }
    KeyHistory { key, ops, values }
}

/// Integer keys numerically first, then the rest by printed form.
fn key_order(a: &Edn, b: &Edn) -> Ordering {
    match (a, b) {
        (Edn::Int(x), Edn::Int(y)) => x.cmp(y),
        (Edn::Int(_), _) => Ordering::Less,
        (_, Edn::Int(_)) => Ordering::Greater,
        _ => a.compact().cmp(&b.compact()),
    }
}

// ---------------------------------------------------------------------------
// The Wing–Gong–Lowe search

const HEAD: u32 = 0;
const TAIL: u32 = 1;
const INFO_HEAD: u32 = 2;
const INFO_TAIL: u32 = 3;
const FIRST: u32 = 4;
const NONE: u32 = u32::MAX;

/// Two doubly linked lists over one arena, in history order: ok calls and
/// returns (`HEAD`..`TAIL`), and info calls, which have no return
/// (`INFO_HEAD`..`INFO_TAIL`). A configuration's candidates are WGL's (the
/// calls before the first pending return), tried in the order of [`Scan`]:
/// info calls last, so a correct history seldom touches them. Lifting
/// unlinks a call and its return; backtracking relinks them.
struct Entries {
    op: Vec<u32>,
    call: Vec<bool>,
    pos: Vec<usize>,
    ret: Vec<u32>,
    next: Vec<u32>,
    prev: Vec<u32>,
}

impl Entries {
    fn build(ops: &[KeyOp]) -> Entries {
        let mut ev: Vec<(usize, bool, u32)> = Vec::with_capacity(ops.len() * 2);
        for (i, o) in ops.iter().enumerate() {
            ev.push((o.call, true, i as u32));
            if let Some(r) = o.ret {
                ev.push((r, false, i as u32));
            }
        }
        ev.sort_unstable_by_key(|e| e.0);
        let mut e = Entries {
            op: vec![NONE; FIRST as usize],
            call: vec![false; FIRST as usize],
            pos: vec![0, usize::MAX, 0, usize::MAX],
            ret: vec![NONE; FIRST as usize],
            next: vec![NONE; FIRST as usize],
            prev: vec![NONE; FIRST as usize],
        };
        let mut call_of = vec![NONE; ops.len()];
        let (mut last_main, mut last_info) = (HEAD, INFO_HEAD);
        for (pos, is_call, op) in ev {
            let id = e.op.len() as u32;
            e.op.push(op);
            e.call.push(is_call);
            e.pos.push(pos);
            e.ret.push(NONE);
            let last = if is_call && !ops[op as usize].ok {
                &mut last_info
            } else {
                &mut last_main
            };
            e.next.push(NONE);
            e.prev.push(*last);
            e.next[*last as usize] = id;
            *last = id;
            if is_call {
                call_of[op as usize] = id;
            } else {
                e.ret[call_of[op as usize] as usize] = id;
            }
        }
        for (last, tail) in [(last_main, TAIL), (last_info, INFO_TAIL)] {
            e.next[last as usize] = tail;
            e.prev[tail as usize] = last;
        }
        e
    }

    fn unlink(&mut self, x: u32) {
        let (p, n) = (self.prev[x as usize], self.next[x as usize]);
        self.next[p as usize] = n;
        self.prev[n as usize] = p;
    }

    /// Undoes the latest `unlink` of `x` (dancing links: strictly LIFO).
    fn relink(&mut self, x: u32) {
        let (p, n) = (self.prev[x as usize], self.next[x as usize]);
        self.next[p as usize] = x;
        self.prev[n as usize] = x;
    }

    fn lift(&mut self, call: u32) {
        self.unlink(call);
        let r = self.ret[call as usize];
        if r != NONE {
            self.unlink(r);
        }
    }

    fn unlift(&mut self, call: u32) {
        let r = self.ret[call as usize];
        if r != NONE {
            self.relink(r);
        }
        self.relink(call);
    }

    /// Calls before `ret` not yet linearized: ok ones, then info ones.
    fn pending(&self, ret: u32) -> Vec<u32> {
        let mut out = Vec::new();
        let mut x = self.next[HEAD as usize];
        while x != ret && x != TAIL {
            if self.call[x as usize] {
                out.push(self.op[x as usize]);
            }
            x = self.next[x as usize];
        }
        let mut x = self.next[INFO_HEAD as usize];
        while x != INFO_TAIL && self.pos[x as usize] < self.pos[ret as usize] {
            out.push(self.op[x as usize]);
            x = self.next[x as usize];
        }
        out
    }
}

/// SplitMix64's finaliser: a bijection that scatters bits.
fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A fixed pseudo-random 128-bit word per input (Zobrist keys): a
/// configuration's key is the XOR of its linearized ops' words and its
/// value's word, updated in O(1) per lift. Two configurations collide with
/// probability 2^-128 per pair; the memo trusts that.
fn zobrist(x: u64) -> u128 {
    let a = mix64(x);
    let b = mix64(a ^ 0x2545_f491_4f6c_dd1d);
    (u128::from(a) << 64) | u128::from(b)
}

fn value_key(v: u32) -> u128 {
    zobrist(u64::from(v) | (1 << 63))
}

/// The memo's keys are already uniform: hash by their low 64 bits.
#[derive(Default)]
struct Low64(u64);

impl Hasher for Low64 {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn write_u128(&mut self, i: u128) {
        self.0 = i as u64;
    }
}

/// Where the scan of one configuration's candidates stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scan {
    /// Ok observers (reads, cas x→x) that are legal now. Lifting one is
    /// never a wrong choice: it leaves the value alone and may move to the
    /// front of any order that succeeds (its call precedes every pending
    /// return), so the configuration stands or falls with it and no
    /// alternative is tried. This keeps concurrent reads from multiplying
    /// the configurations.
    Observers,
    /// Ok calls before the first pending return.
    Calls,
    /// Info calls invoked before the pending return `bound`.
    Info { bound: u32 },
}

impl Step {
    fn observes(self) -> bool {
        match self {
            Step::Read(_) => true,
            Step::Cas(from, to) => from == to,
            Step::Write(_) | Step::Bad => false,
        }
    }
}

struct Frame {
    /// The call entry lifted.
    entry: u32,
    /// Register value before the lift.
    state: u32,
    /// Where to go on when this lift fails; `None` for an observer, whose
    /// failure is its configuration's.
    resume: Option<Scan>,
    /// Latest ok op on the path up to and including this one.
    last_ok: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cause {
    Steps,
    Configs,
}

/// A configuration from which the failing op could not be linearized.
struct Config {
    state: u32,
    last_op: u32,
    pending: Vec<u32>,
}

/// The latest return the search ever got stuck at (Knossos' `:op`).
struct Failure {
    op: u32,
    pos: usize,
    previous_ok: u32,
    configs: Vec<Config>,
}

enum Tried {
    Lifted,
    Skipped,
    /// This configuration has failed.
    Failed,
    /// The memo is at its budget.
    Full,
}

enum Verdict {
    Valid(u32),
    Invalid(Failure),
    Unknown(Cause),
}

struct Search<'a> {
    ops: &'a [KeyOp],
    e: Entries,
    /// Zobrist words of the ops.
    z: Vec<u128>,
    /// Configurations entered; every one not on the stack has failed.
    memo: HashSet<u128, BuildHasherDefault<Low64>>,
    stack: Vec<Frame>,
    state: u32,
    /// The Zobrist key of the linearized set.
    set: u128,
    ok_left: usize,
    failure: Option<Failure>,
    steps: u64,
}

impl<'a> Search<'a> {
    fn new(ops: &'a [KeyOp]) -> Search<'a> {
        Search {
            ops,
            e: Entries::build(ops),
            z: (0..ops.len() as u64).map(zobrist).collect(),
            memo: HashSet::default(),
            stack: Vec::new(),
            state: NIL,
            set: 0,
            ok_left: ops.iter().filter(|o| o.ok).count(),
            failure: None,
            steps: 0,
        }
    }

    fn run(&mut self, budget: Budget) -> Verdict {
        let (mut cur, mut scan) = (self.e.next[HEAD as usize], Scan::Observers);
        loop {
            if self.ok_left == 0 {
                return Verdict::Valid(self.state);
            }
            if self.steps == budget.max_steps {
                return Verdict::Unknown(Cause::Steps);
            }
            self.steps += 1;
            let c = cur as usize;
            let tried = match scan {
                // The first pending return: no call past it may go first.
                Scan::Observers if !self.e.call[c] => {
                    (cur, scan) = (self.e.next[HEAD as usize], Scan::Calls);
                    continue;
                }
                Scan::Calls if !self.e.call[c] => {
                    (cur, scan) = (self.e.next[INFO_HEAD as usize], Scan::Info { bound: cur });
                    continue;
                }
                Scan::Info { bound }
                    if cur == INFO_TAIL || self.e.pos[c] > self.e.pos[bound as usize] =>
                {
                    record(&self.e, &self.stack, self.state, bound, &mut self.failure);
                    Tried::Failed
                }
                _ => self.try_call(cur, scan, budget.max_configs),
            };
            match tried {
                Tried::Skipped => cur = self.e.next[c],
                Tried::Lifted => (cur, scan) = (self.e.next[HEAD as usize], Scan::Observers),
                Tried::Full => return Verdict::Unknown(Cause::Configs),
                Tried::Failed => match self.backtrack() {
                    Some(resume) => (cur, scan) = resume,
                    None => {
                        let none = Failure {
                            op: NONE,
                            pos: 0,
                            previous_ok: NONE,
                            configs: Vec::new(),
                        };
                        return Verdict::Invalid(self.failure.take().unwrap_or(none));
                    }
                },
            }
        }
    }

    /// Lifts the call `entry` if the register allows it and the
    /// configuration it leads to is new.
    fn try_call(&mut self, entry: u32, scan: Scan, max_configs: usize) -> Tried {
        let op = self.e.op[entry as usize] as usize;
        let observer = self.ops[op].ok && self.ops[op].step.observes();
        if scan == Scan::Observers && !observer {
            return Tried::Skipped;
        }
        let Some(next) = step(self.state, self.ops[op].step) else {
            return Tried::Skipped;
        };
        let key = self.set ^ self.z[op] ^ value_key(next);
        if self.memo.len() >= max_configs && !self.memo.contains(&key) {
            return Tried::Full;
        }
        if !self.memo.insert(key) {
            // Explored and failed before; for an observer, so has this
            // configuration.
            return if observer && scan == Scan::Observers {
                Tried::Failed
            } else {
                Tried::Skipped
            };
        }
        self.lift(entry, next, (scan != Scan::Observers).then_some(scan));
        Tried::Lifted
    }

    fn lift(&mut self, entry: u32, next: u32, resume: Option<Scan>) {
        let op = self.e.op[entry as usize] as usize;
        let last_ok = if self.ops[op].ok {
            op as u32
        } else {
            self.stack.last().map_or(NONE, |f| f.last_ok)
        };
        self.stack.push(Frame {
            entry,
            state: self.state,
            resume,
            last_ok,
        });
        self.state = next;
        self.set ^= self.z[op];
        self.e.lift(entry);
        self.ok_left -= usize::from(self.ops[op].ok);
    }

    /// Undoes lifts up to the latest one with an alternative left; where to
    /// scan on, or `None` when the root has failed.
    fn backtrack(&mut self) -> Option<(u32, Scan)> {
        while let Some(f) = self.stack.pop() {
            let op = self.e.op[f.entry as usize] as usize;
            self.state = f.state;
            self.set ^= self.z[op];
            self.e.unlift(f.entry);
            self.ok_left += usize::from(self.ops[op].ok);
            if let Some(scan) = f.resume {
                return Some((self.e.next[f.entry as usize], scan));
            }
        }
        None
    }
}

fn search(ops: &[KeyOp], budget: Budget) -> (Verdict, Stats) {
    let mut s = Search::new(ops);
    let verdict = s.run(budget);
    let stats = Stats {
        steps: s.steps,
        configs: s.memo.len(),
    };
    (verdict, stats)
}

struct Stats {
    steps: u64,
    configs: usize,
}

/// Keeps the latest stuck return and up to [`SHOWN`] configurations at it.
fn record(e: &Entries, stack: &[Frame], state: u32, ret: u32, failure: &mut Option<Failure>) {
    if ret < FIRST {
        return;
    }
    let pos = e.pos[ret as usize];
    if failure.as_ref().is_none_or(|f| pos > f.pos) {
        *failure = Some(Failure {
            op: e.op[ret as usize],
            pos,
            previous_ok: stack.last().map_or(NONE, |f| f.last_ok),
            configs: Vec::new(),
        });
    }
    if let Some(f) = failure
        && f.pos == pos
        && f.configs.len() < SHOWN
    {
        f.configs.push(Config {
            state,
            last_op: stack.last().map_or(NONE, |f| e.op[f.entry as usize]),
            pending: e.pending(ret),
        });
    }
}

// ---------------------------------------------------------------------------
// Results

fn check_key(history: &History, key: &KeyHistory, budget: Budget) -> Edn {
    let (verdict, stats) = search(&key.ops, budget);
    let searched = ("configs-searched", Edn::from(stats.configs));
    let model = |v: u32| map([("value", key.values.values[v as usize].clone())]);
    match verdict {
        Verdict::Valid(v) => map([("valid?", Edn::Bool(true)), ("model", model(v)), searched]),
        Verdict::Unknown(cause) => {
            let (name, field, limit) = match cause {
                Cause::Steps => ("step-limit", "max_steps", budget.max_steps),
                Cause::Configs => ("config-limit", "max_configs", budget.max_configs as u64),
            };
            let reason = format!(
                "undecided: the search reached Budget::{field} = {limit} after {} steps and {} configurations",
                stats.steps, stats.configs
            );
            map([
                ("valid?", kw("unknown")),
                ("cause", kw(name)),
                ("reason", Edn::from(reason)),
                searched,
                ("steps", Edn::from(stats.steps)),
            ])
        }
        Verdict::Invalid(f) => invalid(history, key, &f, searched),
    }
}

fn invalid(history: &History, key: &KeyHistory, f: &Failure, searched: (&str, Edn)) -> Edn {
    let show = |op: u32| -> Edn {
        if op == NONE {
            return Edn::Nil;
        }
        let o = &key.ops[op as usize];
        history.get(o.shown).map_or(Edn::Nil, |h| {
            let mut h = h.clone();
            h.value = o.value.clone();
            h.to_edn()
        })
    };
    let model = |v: u32| map([("value", key.values.values[v as usize].clone())]);
    let configs = f
        .configs
        .iter()
        .map(|c| {
            map([
                ("model", model(c.state)),
                ("last-op", show(c.last_op)),
                (
                    "pending",
                    Edn::Vector(c.pending.iter().take(SHOWN).map(|&p| show(p)).collect()),
                ),
            ])
        })
        .collect();
    let paths = final_paths(&key.ops, f)
        .into_iter()
        .map(|(start, path)| {
            let mut steps = Vec::with_capacity(path.len() + 1);
            if start.0 != NONE {
                steps.push(map([("op", show(start.0)), ("model", model(start.1))]));
            }
            for &(op, after) in &path {
                let m = if after == NONE {
                    kw("inconsistent")
                } else {
                    model(after)
                };
                steps.push(map([("op", show(op)), ("model", m)]));
            }
            Edn::Vector(steps)
        })
        .collect();
    map([
        ("valid?", Edn::Bool(false)),
        ("op", show(f.op)),
        ("previous-ok", show(f.previous_ok)),
        ("configs", Edn::Vector(configs)),
        ("final-paths", Edn::Vector(paths)),
        searched,
    ])
}

/// A path: the config's last op and value, then (op, value after) steps,
/// the last with value `NONE` (inconsistent).
type Path = ((u32, u32), Vec<(u32, u32)>);

/// Knossos' final paths: from each stuck configuration, orders of its
/// pending ops (all concurrent with one another) that end in an
/// inconsistent step, shortest first, those ending at the failed op first.
fn final_paths(ops: &[KeyOp], f: &Failure) -> Vec<Path> {
    const MAX_LEN: usize = 3;
    const MAX_TRIES: usize = 2_000;
    let mut found: Vec<Path> = Vec::new();
    for c in &f.configs {
        let start = (c.last_op, c.state);
        let mut queue: VecDeque<(Vec<(u32, u32)>, u32)> = VecDeque::from([(Vec::new(), c.state)]);
        let mut tries = 0;
        while let Some((path, s)) = queue.pop_front() {
            if found.len() >= 4 * SHOWN || tries >= MAX_TRIES {
                break;
            }
            for &p in &c.pending {
                if path.iter().any(|&(o, _)| o == p) {
                    continue;
                }
                tries += 1;
                let mut longer = path.clone();
                match step(s, ops[p as usize].step) {
                    None => {
                        longer.push((p, NONE));
                        found.push((start, longer));
                    }
                    Some(next) if path.len() + 1 < MAX_LEN => {
                        longer.push((p, next));
                        queue.push_back((longer, next));
                    }
                    Some(_) => {}
                }
            }
        }
    }
    found.sort_by_key(|(_, p)| p.last().is_none_or(|&(o, _)| o != f.op));
    let mut distinct: Vec<Path> = Vec::new();
    for p in found {
        if !distinct.contains(&p) && distinct.len() < SHOWN {
            distinct.push(p);
        }
    }
    distinct
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Op;
    use proptest::prelude::*;

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
                (Slot::Applied(i, None), OpType::Ok) => {
                    (i, OpType::Fail, self.ops[i].value.clone())
                }
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
                if done & (1 << i) != 0
                    || (0..calls.len()).any(|j| before(j) && done & (1 << j) == 0)
                {
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
}
