//! What every strategy shares: the set of known values, and the load that
//! adaptive batching sizes its gaps by.

use super::{Config, SeqSet, Value};
use crate::id::{Epoch, NodeId};
use crate::time::Instant;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

/// Every value known here, deduplicated (one ordered set: reads list it in
/// value order, which costs half the memory of also keeping arrival order).
///
/// Kept for good by default (Maelstrom's reads list every value). With a
/// [`Retention`], a value is forgotten once it is older than the window or
/// the store is over its count, and what a new neighbour is given
/// ("everything held") is what the window holds; a value whose key names
/// its origin life and number ([`Value::tag`]) is still known as seen after
/// that, so it is never delivered twice.
#[derive(Debug)]
pub(crate) struct Store<V: Value> {
    known: BTreeSet<V>,
    /// Values learned since the application last took them, when it asked
    /// for them (a shell that reads the whole set, as Maelstrom's does,
    /// does not): oldest first, at most `max`.
    fresh: Option<Fresh<V>>,
    window: Option<Window<V::Key>>,
    /// Values that replace one another ([`Value::slot`]): each slot's
    /// version held, and the key of the value that holds it.
    slots: BTreeMap<Box<str>, (u64, V::Key)>,
    /// The time of the input being handled (set by the node).
    now: Instant,
}

/// How long values are kept, and how many and how many bytes
/// ([`Value::size`]) at most.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    pub ttl: Duration,
    pub max_values: usize,
    pub max_bytes: usize,
}

#[derive(Debug)]
struct Window<K> {
    limits: Retention,
    /// Held values by the time they were learned, with their sizes,
    /// oldest first.
    order: VecDeque<(Instant, K, usize)>,
    /// The sizes in `order`, summed.
    bytes: usize,
    /// Every sequence number held or forgotten, per origin life, and when
    /// that life last brought a new value.
    seen: BTreeMap<(NodeId, Epoch), (SeqSet, Instant)>,
    /// The same lives by that time, oldest first (what pruning walks).
    by_age: BTreeSet<(Instant, NodeId, Epoch)>,
    next_prune: Instant,
    forgotten: u64,
}

/// Origin lives remembered as seen, at most: forged origins (an insider
/// can name any) must not grow a member without bound; past it the
/// longest silent is forgotten.
pub(crate) const MAX_LIVES: usize = 65_536;
/// A life silent this many retention windows is forgotten (a copy of one
/// of its values arriving later, after a partition that long, would be
/// delivered again); one a newer life of its origin replaced, after two.
const SILENT_WINDOWS: u32 = 10;
const REPLACED_WINDOWS: u32 = 2;

impl<K> Window<K> {
    fn over(&self) -> bool {
        self.order.len() > self.limits.max_values || self.bytes > self.limits.max_bytes
    }

    /// Notes `seq` of `origin`'s life `epoch` as seen at `now`; false if
    /// it was already.
    fn note(&mut self, origin: &NodeId, epoch: Epoch, seq: u64, now: Instant) -> bool {
        let key = (origin.clone(), epoch);
        let new = match self.seen.get_mut(&key) {
            Some((seqs, last)) => {
                if !seqs.insert(seq) {
                    return false;
                }
                self.by_age.remove(&(*last, key.0.clone(), key.1));
                *last = now;
                true
            }
            None => {
                let mut seqs = SeqSet::default();
                seqs.insert(seq);
                self.seen.insert(key.clone(), (seqs, now));
                true
            }
        };
        self.by_age.insert((now, key.0, key.1));
        while self.seen.len() > MAX_LIVES {
            let Some((_, o, e)) = self.by_age.pop_first() else {
                break;
            };
            self.seen.remove(&(o, e));
        }
        new
    }

    /// Forgets lives silent for [`SILENT_WINDOWS`] windows, and lives a
    /// newer life of their origin replaced, silent for
    /// [`REPLACED_WINDOWS`].
    fn prune(&mut self, now: Instant) {
        let silent = |last: Instant, windows: u32| {
            now.saturating_since(last) >= self.limits.ttl.saturating_mul(windows)
        };
        let mut drop = Vec::new();
        for (last, o, e) in &self.by_age {
            if !silent(*last, REPLACED_WINDOWS) {
                break;
            }
            let newer = self
                .seen
                .range((o.clone(), Epoch(e.0.saturating_add(1)))..)
                .next()
                .is_some_and(|((n, _), _)| n == o);
            if silent(*last, SILENT_WINDOWS) || newer {
                drop.push((*last, o.clone(), *e));
            }
        }
        for (last, o, e) in drop {
            self.by_age.remove(&(last, o.clone(), e));
            self.seen.remove(&(o, e));
        }
    }
}

#[derive(Debug)]
struct Fresh<V> {
    queue: VecDeque<V>,
    max: usize,
    dropped: u64,
}

impl<V: Value> Default for Store<V> {
    fn default() -> Self {
        Store {
            known: BTreeSet::new(),
            fresh: None,
            window: None,
            slots: BTreeMap::new(),
            now: Instant::ZERO,
        }
    }
}

impl<V: Value> Store<V> {
    /// Forget values past `r` from now on.
    pub fn retain(&mut self, r: Retention) {
        self.window = Some(Window {
            limits: r,
            order: VecDeque::new(),
            bytes: 0,
            seen: BTreeMap::new(),
            by_age: BTreeSet::new(),
            next_prune: Instant::ZERO,
            forgotten: 0,
        });
    }

    /// The time of the input being handled; forgets what aged out.
    pub fn advance(&mut self, now: Instant) {
        self.now = self.now.max(now);
        let Some(w) = self.window.as_mut() else {
            return;
        };
        while let Some((at, ..)) = w.order.front() {
            let old = *at + w.limits.ttl <= self.now;
            if !old && !w.over() {
                break;
            }
            let (_, k, size) = w.order.pop_front().expect("front");
            w.bytes -= size;
            if self.known.remove(&k) {
                w.forgotten += 1;
            }
        }
        if self.now >= w.next_prune {
            w.next_prune = self.now + w.limits.ttl / 4;
            w.prune(self.now);
        }
    }

    /// True if `v` is new (never held, nor forgotten after the retention;
    /// for a slotted value: newer than its slot's).
    pub fn learn(&mut self, v: &V) -> bool {
        if self.known.contains::<V>(v) {
            return false;
        }
        if let Some((slot, version)) = V::slot(v.key()) {
            match self.slots.get_mut(slot) {
                Some((held, _)) if *held >= version => return false,
                Some((held, old)) => {
                    *held = version;
                    let old = std::mem::replace(old, v.key().clone());
                    self.known.remove(&old);
                }
                None => {
                    self.slots.insert(slot.into(), (version, v.key().clone()));
                }
            }
        }
        if let Some(w) = self.window.as_mut() {
            if let Some((origin, epoch, seq)) = V::tag(v.key())
                && !w.note(origin, epoch, seq, self.now)
            {
                return false;
            }
            w.order.push_back((self.now, v.key().clone(), v.size()));
            w.bytes += v.size();
        }
        if let Some(f) = self.fresh.as_mut() {
            if f.queue.len() >= f.max {
                f.queue.pop_front();
                f.dropped += 1;
            }
            f.queue.push_back(v.clone());
        }
        self.known.insert(v.clone());
        if self.window.as_ref().is_some_and(Window::over) {
            let now = self.now;
            self.advance(now);
        }
        true
    }

    /// Is a value with this key held, or was it held and forgotten (or,
    /// slotted, replaced by a newer one)?
    pub fn has_seen(&self, k: &V::Key) -> bool {
        if let Some((slot, version)) = V::slot(k) {
            return self
                .slots
                .get(slot)
                .is_some_and(|(held, _)| *held >= version);
        }
        self.known.contains(k)
            || self.window.as_ref().is_some_and(|w| {
                V::tag(k).is_some_and(|(o, e, s)| {
                    w.seen.get(&(o.clone(), e)).is_some_and(|(x, _)| x.holds(s))
                })
            })
    }

    /// Values forgotten after the retention.
    pub fn forgotten(&self) -> u64 {
        self.window.as_ref().map_or(0, |w| w.forgotten)
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

    /// Is `v` held (or, slotted, superseded by a newer value)?
    pub fn contains(&self, v: &V) -> bool {
        self.known.contains::<V>(v) || (V::slot(v.key()).is_some() && self.has_seen(v.key()))
    }

    /// The value with this key, if held.
    pub fn get(&self, k: &V::Key) -> Option<&V> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{MsgId, Payload};

    fn payload(seq: u64) -> Payload {
        Payload {
            id: MsgId(NodeId::new("o"), Epoch(1), seq),
            data: vec![1, 2].into(),
            event: None,
        }
    }

    #[test]
    fn a_retained_store_forgets_old_values_but_never_takes_them_again() {
        let mut s: Store<Payload> = Store::default();
        s.retain(Retention {
            ttl: Duration::from_secs(10),
            max_values: 3,
            max_bytes: usize::MAX,
        });
        s.advance(Instant::ZERO);
        assert!(s.learn(&payload(1)));
        assert!(!s.learn(&payload(1)));
        s.advance(Instant::from_millis(5_000));
        assert!(s.learn(&payload(2)));
        s.advance(Instant::from_millis(10_000));
        assert!(!s.contains(&payload(1)), "older than the window");
        assert!(s.contains(&payload(2)));
        assert!(s.has_seen(&payload(1).id), "forgotten, still seen");
        assert!(!s.learn(&payload(1)), "never delivered twice");
        for q in 3..=6 {
            assert!(s.learn(&payload(q)));
        }
        assert_eq!(s.values().len(), 3, "at most max_values");
        assert_eq!(s.forgotten(), 3);
        assert!(!s.has_seen(&payload(9).id));
    }

    /// A replica's running count: its slot is the replica, its version the
    /// count.
    #[derive(
        Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
    )]
    struct Count(String, u64);

    impl Value for Count {
        type Key = Count;
        fn slot(k: &Count) -> Option<(&str, u64)> {
            Some((&k.0, k.1))
        }
    }

    #[test]
    fn a_slotted_value_replaces_the_older_one_and_state_stays_one_per_slot() {
        let mut s: Store<Count> = Store::default();
        for n in 1..=1000 {
            assert!(s.learn(&Count("a".into(), n)));
        }
        assert!(s.learn(&Count("b".into(), 3)));
        assert_eq!(
            s.values().len(),
            2,
            "one value per slot, whatever the number of updates"
        );
        assert!(
            !s.learn(&Count("a".into(), 999)),
            "an older version is not news"
        );
        assert!(
            s.contains(&Count("a".into(), 10)),
            "superseded counts as held"
        );
        assert!(s.has_seen(&Count("b".into(), 3)) && !s.has_seen(&Count("b".into(), 4)));
        assert_eq!(
            s.values().cloned().collect::<Vec<_>>(),
            vec![Count("a".into(), 1000), Count("b".into(), 3)]
        );
    }

    #[test]
    fn a_retained_store_holds_at_most_its_bytes_and_still_never_takes_a_value_twice() {
        let mut s: Store<Payload> = Store::default();
        s.retain(Retention {
            ttl: Duration::from_secs(120),
            max_values: 8192,
            max_bytes: 10 * 1024,
        });
        let big = |seq| Payload {
            id: MsgId(NodeId::new("o"), Epoch(1), seq),
            data: vec![0; 4096].into(),
            event: None,
        };
        for q in 1..=100 {
            assert!(s.learn(&big(q)));
            let held: usize = s.values().map(Value::size).sum();
            assert!(held <= 10 * 1024, "{held} bytes held after {q}");
        }
        assert_eq!(s.values().len(), 2, "two of 4 KiB fit in 10 KiB");
        assert!(s.contains(&big(100)), "the newest stays");
        assert!(!s.learn(&big(1)), "forgotten for its bytes, still seen");
        assert_eq!(s.forgotten(), 98);
    }

    #[test]
    fn lives_seen_are_forgotten_when_replaced_or_silent_and_never_pile_up() {
        let ttl = Duration::from_secs(10);
        let mut s: Store<Payload> = Store::default();
        s.retain(Retention {
            ttl,
            max_values: 8192,
            max_bytes: usize::MAX,
        });
        let p = |o: &str, e: u64, seq: u64| Payload {
            id: MsgId(NodeId::new(o), Epoch(e), seq),
            data: vec![1].into(),
            event: None,
        };
        let lives = |s: &Store<Payload>| s.window.as_ref().unwrap().seen.len();
        s.advance(Instant::ZERO);
        assert!(s.learn(&p("a", 1, 1)));
        assert!(s.learn(&p("b", 1, 1)));
        // a restarts: its new life replaces the old one.
        s.advance(Instant::ZERO + ttl);
        assert!(s.learn(&p("a", 2, 1)));
        s.advance(Instant::ZERO + ttl * 2 + Duration::from_secs(3));
        assert_eq!(
            lives(&s),
            2,
            "a's old life forgotten, b's and a's new one kept"
        );
        assert!(s.has_seen(&p("a", 2, 1).id) && s.has_seen(&p("b", 1, 1).id));
        // b stays silent for ten windows: forgotten too.
        s.advance(Instant::ZERO + ttl * 10 + Duration::from_secs(3));
        assert!(!s.has_seen(&p("b", 1, 1).id));
        // Forged origins, more than the bound: the oldest go.
        let t = Instant::ZERO + ttl * 11;
        for i in 0..MAX_LIVES as u64 + 100 {
            s.advance(t + Duration::from_micros(i));
            s.learn(&p(&format!("forged{i}"), 1, 1));
        }
        assert_eq!(lives(&s), MAX_LIVES);
        assert!(s.has_seen(&p(&format!("forged{}", MAX_LIVES + 99), 1, 1).id));
    }

    #[test]
    fn without_a_retention_everything_stays_and_untagged_values_come_back() {
        let mut s: Store<u64> = Store::default();
        for v in 0..100 {
            s.advance(Instant::from_millis(v * 1000));
            assert!(s.learn(&v));
        }
        assert_eq!(s.values().len(), 100);
        let mut r: Store<u64> = Store::default();
        r.retain(Retention {
            ttl: Duration::from_secs(1),
            max_values: 10,
            max_bytes: usize::MAX,
        });
        assert!(r.learn(&7));
        r.advance(Instant::from_millis(2000));
        assert!(!r.contains(&7));
        assert!(r.learn(&7), "an integer names no origin: it is new again");
    }
}
