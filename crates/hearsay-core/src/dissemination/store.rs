//! What every strategy shares: the set of known values, and the load that
//! adaptive batching sizes its gaps by.

use super::Config;
use crate::time::Instant;
use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

/// Every value known here, deduplicated (one ordered set: reads list it in
/// value order, which costs half the memory of also keeping arrival order).
#[derive(Debug)]
pub(crate) struct Store<V> {
    known: BTreeSet<V>,
    /// Values learned since the application last took them, when it asked
    /// for them (a shell that reads the whole set, as Maelstrom's does,
    /// does not): oldest first, at most `max`.
    fresh: Option<Fresh<V>>,
}

#[derive(Debug)]
struct Fresh<V> {
    queue: VecDeque<V>,
    max: usize,
    dropped: u64,
}

impl<V> Default for Store<V> {
    fn default() -> Self {
        Store {
            known: BTreeSet::new(),
            fresh: None,
        }
    }
}

impl<V: Ord + Clone> Store<V> {
    /// True if `v` is new.
    pub fn learn(&mut self, v: &V) -> bool {
        if self.known.contains(v) {
            return false;
        }
        if let Some(f) = self.fresh.as_mut() {
            if f.queue.len() >= f.max {
                f.queue.pop_front();
                f.dropped += 1;
            }
            f.queue.push_back(v.clone());
        }
        self.known.insert(v.clone())
    }

    /// Keeps each new value for [`Store::drain_fresh`], at most `max` of
    /// them (the oldest are dropped and counted past that).
    pub fn keep_fresh(&mut self, max: usize) {
        self.fresh = Some(Fresh {
            queue: VecDeque::new(),
            max: max.max(1),
            dropped: 0,
        });
    }

    pub fn drain_fresh(&mut self) -> impl Iterator<Item = V> + '_ {
        self.fresh.iter_mut().flat_map(|f| f.queue.drain(..))
    }

    /// New values dropped because the application did not take them.
    pub fn fresh_dropped(&self) -> u64 {
        self.fresh.as_ref().map_or(0, |f| f.dropped)
    }

    pub fn contains(&self, v: &V) -> bool {
        self.known.contains(v)
    }

    /// Is a value with this key held?
    pub fn contains_key<K: Ord + ?Sized>(&self, k: &K) -> bool
    where
        V: std::borrow::Borrow<K>,
    {
        self.known.contains(k)
    }

    /// The value with this key, if held.
    pub fn get<K: Ord + ?Sized>(&self, k: &K) -> Option<&V>
    where
        V: std::borrow::Borrow<K>,
    {
        self.known.get(k)
    }

    pub fn values(&self) -> impl ExactSizeIterator<Item = &V> {
        self.known.iter()
    }
}

/// Values learned per second, over the last couple of seconds.
#[derive(Debug, Default)]
pub(crate) struct Load {
    /// (bucket start, values learned in it), oldest first.
    buckets: VecDeque<(Instant, u32)>,
}

impl Load {
    const BUCKET: Duration = Duration::from_millis(250);
    const WINDOW: Duration = Duration::from_secs(2);

    pub fn record(&mut self, now: Instant, n: u32) {
        match self.buckets.back_mut() {
            Some((start, count)) if now < *start + Self::BUCKET => *count = count.saturating_add(n),
            _ => self.buckets.push_back((now, n)),
        }
    }

    /// Values per second over the covered part of the window (so the
    /// estimate is not diluted while the window is still filling).
    pub fn rate(&mut self, now: Instant) -> f64 {
        while self
            .buckets
            .front()
            .is_some_and(|(t, _)| *t + Self::WINDOW <= now)
        {
            self.buckets.pop_front();
        }
        let Some((oldest, _)) = self.buckets.front() else {
            return 0.0;
        };
        let span = now.saturating_since(*oldest).max(Self::BUCKET);
        self.buckets.iter().map(|(_, c)| f64::from(*c)).sum::<f64>() / span.as_secs_f64()
    }
}

/// The gap on a link to a single node: fixed, or sized so that about
/// `budget` leaf-link messages are spent per value at the observed rate.
pub(crate) fn pace(cfg: &Config, members: usize, rate: f64) -> Duration {
    match cfg.batch_budget {
        None => cfg.batch,
        // Nothing observed yet: nothing to batch with either.
        Some(_) if rate <= 0.0 => cfg.batch,
        Some(budget) => {
            let secs = members as f64 / (rate * budget);
            Duration::from_secs_f64(secs.min(cfg.batch_max.as_secs_f64()))
                .clamp(cfg.batch, cfg.batch_max)
        }
    }
}
