//! Time-ordered events, first-in first-out among equal times, so a run is
//! the same for the same seed; and per-node timers on top, where arming a
//! node's timer again replaces the old one.

use std::collections::BTreeMap;

/// Names one scheduled event, to cancel it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key<T>(T, u64);

impl<T: Copy> Key<T> {
    pub fn at(&self) -> T {
        self.0
    }
}

/// Events of type `E` at times of type `T` (virtual [`crate::time::Instant`]s
/// in the simulators, nanoseconds in the harness).
#[derive(Debug)]
pub struct Agenda<T, E> {
    queue: BTreeMap<Key<T>, E>,
    seq: u64,
}

impl<T, E> Default for Agenda<T, E> {
    fn default() -> Self {
        Agenda {
            queue: BTreeMap::new(),
            seq: 0,
        }
    }
}

impl<T: Ord + Copy, E> Agenda<T, E> {
    pub fn push(&mut self, at: T, ev: E) -> Key<T> {
        self.seq += 1;
        let key = Key(at, self.seq);
        self.queue.insert(key, ev);
        key
    }

    pub fn remove(&mut self, key: Key<T>) -> Option<E> {
        self.queue.remove(&key)
    }

    /// When the earliest event is due.
    pub fn next_at(&self) -> Option<T> {
        self.queue.keys().next().map(|k| k.0)
    }

    /// The earliest event, if it is due at or before `until`.
    pub fn pop_until(&mut self, until: T) -> Option<(Key<T>, E)> {
        match self.queue.first_key_value() {
            Some((k, _)) if k.0 <= until => self.queue.pop_first(),
            _ => None,
        }
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Events in time order.
    pub fn iter(&self) -> impl Iterator<Item = (T, &E)> {
        self.queue.iter().map(|(k, e)| (k.0, e))
    }
}

/// One timer per node: the earliest deadline first, and a node's new
/// deadline replaces its old one, so each step costs O(log N) instead of
/// asking every node.
#[derive(Debug)]
pub struct Timers<T> {
    agenda: Agenda<T, usize>,
    armed: Vec<Option<Key<T>>>,
}

impl<T: Ord + Copy> Timers<T> {
    pub fn new(nodes: usize) -> Self {
        Timers {
            agenda: Agenda::default(),
            armed: vec![None; nodes],
        }
    }

    /// Arms (or disarms, with None) node `node`'s timer.
    pub fn set(&mut self, node: usize, at: Option<T>) {
        if self.armed[node].map(|k| k.0) == at {
            return;
        }
        if let Some(k) = self.armed[node].take() {
            self.agenda.remove(k);
        }
        if let Some(t) = at {
            self.armed[node] = Some(self.agenda.push(t, node));
        }
    }

    pub fn get(&self, node: usize) -> Option<T> {
        self.armed[node].map(|k| k.0)
    }

    pub fn next(&self) -> Option<T> {
        self.agenda.next_at()
    }

    /// A node whose timer is due at `now`, disarmed.
    pub fn pop_due(&mut self, now: T) -> Option<usize> {
        let (_, node) = self.agenda.pop_until(now)?;
        self.armed[node] = None;
        Some(node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_come_in_time_order_and_first_in_first_out_at_one_time() {
        let mut a = Agenda::default();
        a.push(5u64, "late");
        let k = a.push(1, "cancelled");
        a.push(2, "first at 2");
        a.push(2, "second at 2");
        assert_eq!(a.remove(k), Some("cancelled"));
        assert_eq!(a.next_at(), Some(2));
        let order: Vec<_> = std::iter::from_fn(|| a.pop_until(4).map(|(_, e)| e)).collect();
        assert_eq!(order, ["first at 2", "second at 2"]);
        assert!(a.pop_until(4).is_none(), "not due yet");
        assert_eq!(a.pop_until(5).map(|(_, e)| e), Some("late"));
        assert!(a.is_empty());
    }

    #[test]
    fn a_new_deadline_replaces_the_old_one() {
        let mut t = Timers::new(3);
        t.set(0, Some(10u64));
        t.set(1, Some(5));
        t.set(0, Some(3));
        t.set(2, Some(4));
        t.set(2, None);
        assert_eq!(t.next(), Some(3));
        assert_eq!(t.pop_due(4), Some(0));
        assert_eq!(t.pop_due(4), None, "node 2 was disarmed; node 1 is not due");
        assert_eq!(t.get(0), None, "popped timers are disarmed");
        assert_eq!(t.pop_due(5), Some(1));
        assert_eq!(t.next(), None);
    }
}
