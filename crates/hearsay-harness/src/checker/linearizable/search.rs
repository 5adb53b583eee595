//! The Wing-Gong-Lowe search over one key's ops.

use super::*;
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

pub(super) const HEAD: u32 = 0;
pub(super) const TAIL: u32 = 1;
pub(super) const INFO_HEAD: u32 = 2;
pub(super) const INFO_TAIL: u32 = 3;
pub(super) const FIRST: u32 = 4;
pub(super) const NONE: u32 = u32::MAX;

/// Two doubly linked lists over one arena, in history order: ok calls and
/// returns (`HEAD`..`TAIL`), and info calls, which have no return
/// (`INFO_HEAD`..`INFO_TAIL`). A configuration's candidates are WGL's (the
/// calls before the first pending return), tried in the order of [`Scan`]:
/// info calls last, so a correct history seldom touches them. Lifting
/// unlinks a call and its return; backtracking relinks them.
pub(super) struct Entries {
    pub(super) op: Vec<u32>,
    pub(super) call: Vec<bool>,
    pub(super) pos: Vec<usize>,
    pub(super) ret: Vec<u32>,
    pub(super) next: Vec<u32>,
    pub(super) prev: Vec<u32>,
}

impl Entries {
    pub(super) fn build(ops: &[KeyOp]) -> Entries {
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

    pub(super) fn unlink(&mut self, x: u32) {
        let (p, n) = (self.prev[x as usize], self.next[x as usize]);
        self.next[p as usize] = n;
        self.prev[n as usize] = p;
    }

    /// Undoes the latest `unlink` of `x` (dancing links: strictly LIFO).
    pub(super) fn relink(&mut self, x: u32) {
        let (p, n) = (self.prev[x as usize], self.next[x as usize]);
        self.next[p as usize] = x;
        self.prev[n as usize] = x;
    }

    pub(super) fn lift(&mut self, call: u32) {
        self.unlink(call);
        let r = self.ret[call as usize];
        if r != NONE {
            self.unlink(r);
        }
    }

    pub(super) fn unlift(&mut self, call: u32) {
        let r = self.ret[call as usize];
        if r != NONE {
            self.relink(r);
        }
        self.relink(call);
    }

    /// Calls before `ret` not yet linearized: ok ones, then info ones.
    pub(super) fn pending(&self, ret: u32) -> Vec<u32> {
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
pub(super) fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A fixed pseudo-random 128-bit word per input (Zobrist keys): a
/// configuration's key is the XOR of its linearized ops' words and its
/// value's word, updated in O(1) per lift. Two configurations collide with
/// probability 2^-128 per pair; the memo trusts that.
pub(super) fn zobrist(x: u64) -> u128 {
    let a = mix64(x);
    let b = mix64(a ^ 0x2545_f491_4f6c_dd1d);
    (u128::from(a) << 64) | u128::from(b)
}

pub(super) fn value_key(v: u32) -> u128 {
    zobrist(u64::from(v) | (1 << 63))
}

/// The memo's keys are already uniform: hash by their low 64 bits.
#[derive(Default)]
pub(super) struct Low64(u64);

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
pub(super) enum Scan {
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
    pub(super) fn observes(self) -> bool {
        match self {
            Step::Read(_) => true,
            Step::Cas(from, to) => from == to,
            Step::Write(_) | Step::Bad => false,
        }
    }
}

pub(super) struct Frame {
    /// The call entry lifted.
    pub(super) entry: u32,
    /// Register value before the lift.
    pub(super) state: u32,
    /// Where to go on when this lift fails; `None` for an observer, whose
    /// failure is its configuration's.
    pub(super) resume: Option<Scan>,
    /// Latest ok op on the path up to and including this one.
    pub(super) last_ok: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Cause {
    Steps,
    Configs,
}

/// A configuration from which the failing op could not be linearized.
pub(super) struct Config {
    pub(super) state: u32,
    pub(super) last_op: u32,
    pub(super) pending: Vec<u32>,
}

/// The latest return the search ever got stuck at (Knossos' `:op`).
pub(super) struct Failure {
    pub(super) op: u32,
    pub(super) pos: usize,
    pub(super) previous_ok: u32,
    pub(super) configs: Vec<Config>,
}

pub(super) enum Tried {
    Lifted,
    Skipped,
    /// This configuration has failed.
    Failed,
    /// The memo is at its budget.
    Full,
}

pub(super) enum Verdict {
    Valid(u32),
    Invalid(Failure),
    Unknown(Cause),
}

pub(super) struct Search<'a> {
    pub(super) ops: &'a [KeyOp],
    pub(super) e: Entries,
    /// Zobrist words of the ops.
    pub(super) z: Vec<u128>,
    /// Configurations entered; every one not on the stack has failed.
    pub(super) memo: HashSet<u128, BuildHasherDefault<Low64>>,
    pub(super) stack: Vec<Frame>,
    pub(super) state: u32,
    /// The Zobrist key of the linearized set.
    pub(super) set: u128,
    pub(super) ok_left: usize,
    pub(super) failure: Option<Failure>,
    pub(super) steps: u64,
}

impl<'a> Search<'a> {
    pub(super) fn new(ops: &'a [KeyOp]) -> Search<'a> {
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

    pub(super) fn run(&mut self, budget: Budget) -> Verdict {
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
    pub(super) fn try_call(&mut self, entry: u32, scan: Scan, max_configs: usize) -> Tried {
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

    pub(super) fn lift(&mut self, entry: u32, next: u32, resume: Option<Scan>) {
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
    pub(super) fn backtrack(&mut self) -> Option<(u32, Scan)> {
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

pub(super) fn search(ops: &[KeyOp], budget: Budget) -> (Verdict, Stats) {
    let mut s = Search::new(ops);
    let verdict = s.run(budget);
    let stats = Stats {
        steps: s.steps,
        configs: s.memo.len(),
    };
    (verdict, stats)
}

pub(super) struct Stats {
    pub(super) steps: u64,
    pub(super) configs: usize,
}

/// Keeps the latest stuck return and up to [`SHOWN`] configurations at it.
pub(super) fn record(
    e: &Entries,
    stack: &[Frame],
    state: u32,
    ret: u32,
    failure: &mut Option<Failure>,
) {
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
