//! What the transactional workloads share (maelstrom-spec-more.md 5.2, 6.2):
//! Maelstrom's `--key-count`, `--max-txn-length`, `--max-writes-per-key`
//! and `--consistency-models`, and Elle's `wr-txns` generator.

use super::{Ctx, Generator, OpSpec};
use crate::edn::{Edn, kw};
use hearsay_core::rng::{Rng, RngExt};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Mutex, OnceLock};

/// Elle's exponential key choice computes `2^key-count` in a double, which
/// overflows past 1022 keys: Maelstrom's generator crashes there.
pub const MAX_KEY_COUNT: usize = 1022;
/// hearsay's bound on `--max-txn-length` (Maelstrom has none; a request of
/// this many micro-ops is already ~200 KB).
pub const MAX_TXN_LENGTH: usize = 10_000;
/// Write values are JSON integers, so they stay within i64.
pub const MAX_WRITES_PER_KEY: u64 = i64::MAX as u64;

/// The options of the txn workloads, with Maelstrom's defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxnOptions {
    /// Keys in play at once (`--key-count`; Maelstrom has no default, so
    /// Elle's 10 applies).
    pub key_count: usize,
    /// Micro-ops per transaction, at most (1 at least).
    pub max_txn_length: usize,
    /// Writes to one key before it is retired for a fresh one.
    pub max_writes_per_key: u64,
    pub consistency_models: ConsistencyModels,
}

impl Default for TxnOptions {
    fn default() -> Self {
        TxnOptions {
            key_count: 10,
            max_txn_length: 4,
            max_writes_per_key: 16,
            consistency_models: ConsistencyModels::default(),
        }
    }
}

impl TxnOptions {
    /// Refuses what Maelstrom refuses (counts must be positive) and what
    /// would make its generator crash.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=MAX_KEY_COUNT).contains(&self.key_count) {
            return Err(format!(
                "--key-count must be from 1 to {MAX_KEY_COUNT} (Elle's exponential key choice overflows beyond), not {}",
                self.key_count
            ));
        }
        if !(1..=MAX_TXN_LENGTH).contains(&self.max_txn_length) {
            return Err(format!(
                "--max-txn-length must be from 1 to {MAX_TXN_LENGTH}, not {}",
                self.max_txn_length
            ));
        }
        if !(1..=MAX_WRITES_PER_KEY).contains(&self.max_writes_per_key) {
            return Err(format!(
                "--max-writes-per-key must be from 1 to {MAX_WRITES_PER_KEY}, not {}",
                self.max_writes_per_key
            ));
        }
        Ok(())
    }
}

/// `--consistency-models` as typed. It is split and checked by the checker,
/// as in Maelstrom: an unknown model is the checker's `:unknown`, not a bad
/// argument (maelstrom-spec-more.md 9, quirk 12).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ConsistencyModels(&'static str);

/// Longest `--consistency-models` text accepted.
pub const MAX_MODELS_TEXT: usize = 4096;
/// Distinct `--consistency-models` texts one process keeps (each is kept
/// for the life of the process so that [`TxnOptions`] stays `Copy`).
const MAX_MODELS_TEXTS: usize = 64;

impl Default for ConsistencyModels {
    fn default() -> Self {
        ConsistencyModels("strict-serializable")
    }
}

impl ConsistencyModels {
    pub fn new(text: &str) -> Result<ConsistencyModels, String> {
        if text.len() > MAX_MODELS_TEXT {
            return Err(format!(
                "--consistency-models is {} bytes long; at most {MAX_MODELS_TEXT}",
                text.len()
            ));
        }
        static KEPT: OnceLock<Mutex<Vec<&'static str>>> = OnceLock::new();
        let mut kept = KEPT
            .get_or_init(|| Mutex::new(vec!["strict-serializable"]))
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(k) = kept.iter().find(|k| **k == text) {
            return Ok(ConsistencyModels(k));
        }
        if kept.len() >= MAX_MODELS_TEXTS {
            return Err(format!(
                "more than {MAX_MODELS_TEXTS} distinct --consistency-models values in one process"
            ));
        }
        let leaked: &'static str = Box::leak(text.to_string().into_boxed_str());
        kept.push(leaked);
        Ok(ConsistencyModels(leaked))
    }

    pub fn as_str(&self) -> &'static str {
        self.0
    }
}

impl fmt::Debug for ConsistencyModels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl fmt::Display for ConsistencyModels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Elle's `wr-txns` (maelstrom-spec-more.md 5.2): transactions of 1 to
/// max-txn-length micro-ops, each a read or a write with even odds, on an
/// active key picked with probability `2^i / (2^K - 1)` for position `i`;
/// writes to a key count up from 1, and a key past max-writes-per-key is
/// retired for a fresh one (the micro-op is drawn again).
pub struct WrTxns {
    opts: TxnOptions,
    /// `"w"` for rw-register, `"append"` for list-append.
    write_f: &'static str,
    active: Vec<i64>,
    /// The next value to write, per active key that has been written.
    next: BTreeMap<i64, u64>,
}

impl WrTxns {
    pub fn new(opts: TxnOptions, write_f: &'static str) -> WrTxns {
        let k = opts.key_count.clamp(1, MAX_KEY_COUNT);
        WrTxns {
            opts,
            write_f,
            active: (0..k as i64).collect(),
            next: BTreeMap::new(),
        }
    }

    /// A position in the active keys, exponentially biased to the last.
    /// Positions more than 62 below the last have odds under 2^-62 and
    /// are never drawn.
    fn key_index(&self, rng: &mut Rng) -> usize {
        let k = self.active.len();
        let top = k.min(62);
        let u: u64 = rng.random_range(0..(1u64 << top) - 1);
        let i = 63 - (u + 1).leading_zeros() as usize;
        k - top + i
    }

    /// The next transaction's micro-ops, as `[f k v]` triples.
    pub fn next_txn(&mut self, rng: &mut Rng) -> Vec<Edn> {
        let len = 1 + rng.random_range(0..self.opts.max_txn_length.max(1));
        let mut txn = Vec::with_capacity(len);
        while txn.len() < len {
            let write = rng.random_range(0..2) == 1;
            let i = self.key_index(rng);
            let k = self.active[i];
            if !write {
                txn.push(Edn::Vector(vec![kw("r"), Edn::Int(k), Edn::Nil]));
                continue;
            }
            let v = self.next.get(&k).copied().unwrap_or(1);
            if v > self.opts.max_writes_per_key {
                let fresh = self.active.iter().copied().max().unwrap_or(0) + 1;
                self.active[i] = fresh;
                self.next.remove(&k);
                continue;
            }
            self.next.insert(k, v + 1);
            txn.push(Edn::Vector(vec![
                kw(self.write_f),
                Edn::Int(k),
                Edn::Int(v as i64),
            ]));
        }
        txn
    }
}

impl Generator for WrTxns {
    fn next_op(&mut self, _ctx: Ctx, rng: &mut Rng) -> OpSpec {
        OpSpec::new("txn", Edn::Vector(self.next_txn(rng)), false)
    }

    fn final_op(&self, _ctx: Ctx) -> Option<OpSpec> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearsay_core::rng;
    use std::collections::BTreeSet;

    fn mops(t: &[Edn]) -> Vec<(String, i64, Option<i64>)> {
        t.iter()
            .map(|m| match m {
                Edn::Vector(p) => (
                    p[0].compact(),
                    match p[1] {
                        Edn::Int(k) => k,
                        _ => panic!("{m:?}"),
                    },
                    match p[2] {
                        Edn::Int(v) => Some(v),
                        _ => None,
                    },
                ),
                _ => panic!("{m:?}"),
            })
            .collect()
    }

    #[test]
    fn lengths_keys_and_values_follow_elle() {
        let mut g = WrTxns::new(TxnOptions::default(), "w");
        let mut r = rng::child(7, "ops");
        let mut lengths = BTreeSet::new();
        let mut written: BTreeSet<(i64, i64)> = BTreeSet::new();
        let mut per_key: BTreeMap<i64, i64> = BTreeMap::new();
        for _ in 0..5000 {
            let t = g.next_txn(&mut r);
            lengths.insert(t.len());
            for (f, k, v) in mops(&t) {
                match (f.as_str(), v) {
                    (":r", None) => {}
                    (":w", Some(v)) => {
                        // Unique per key, counting up from 1, at most 16.
                        assert!(written.insert((k, v)), "{k} {v} twice");
                        let last = per_key.insert(k, v).unwrap_or(0);
                        assert_eq!(v, last + 1);
                        assert!(v <= 16);
                    }
                    other => panic!("{other:?}"),
                }
            }
        }
        assert_eq!(lengths, (1..=4).collect());
        // Keys are retired and replaced by larger ones.
        assert!(per_key.keys().max().unwrap() > &10);
    }

    #[test]
    fn key_positions_are_exponentially_biased() {
        let g = WrTxns::new(
            TxnOptions {
                key_count: 3,
                ..TxnOptions::default()
            },
            "w",
        );
        let mut r = rng::child(1, "ops");
        let mut count = [0usize; 3];
        for _ in 0..70_000 {
            count[g.key_index(&mut r)] += 1;
        }
        // 1/7, 2/7, 4/7.
        for (i, want) in [10_000, 20_000, 40_000].into_iter().enumerate() {
            assert!(count[i].abs_diff(want) < 1_000, "{count:?}");
        }
        let many = WrTxns::new(
            TxnOptions {
                key_count: MAX_KEY_COUNT,
                ..TxnOptions::default()
            },
            "w",
        );
        for _ in 0..1000 {
            assert!(many.key_index(&mut r) >= MAX_KEY_COUNT - 62);
        }
    }

    #[test]
    fn options_are_bounded() {
        assert!(TxnOptions::default().validate().is_ok());
        for bad in [
            TxnOptions {
                key_count: 0,
                ..Default::default()
            },
            TxnOptions {
                key_count: 1023,
                ..Default::default()
            },
            TxnOptions {
                max_txn_length: 0,
                ..Default::default()
            },
            TxnOptions {
                max_writes_per_key: 0,
                ..Default::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
        let m = ConsistencyModels::new("read-committed , serializable").unwrap();
        assert_eq!(m.as_str(), "read-committed , serializable");
        assert_eq!(
            ConsistencyModels::new("read-committed , serializable").unwrap(),
            m
        );
        assert!(ConsistencyModels::new(&"x".repeat(MAX_MODELS_TEXT + 1)).is_err());
    }
}
