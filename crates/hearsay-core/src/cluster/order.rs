//! User events in order per origin. Payloads reach a member in whatever
//! order the tree and its repairs bring them; each user event carries its
//! number among its origin life's events, so a member hands them to the
//! application in that order: an event that comes before one it follows
//! waits for it, at most `wait` (the missing one may have been forgotten
//! before it arrived, or never come), and then goes anyway.
//!
//! The first event seen from an origin life sets where its order starts
//! (a member that joins late has not seen the earlier ones); one older
//! than that, arriving later, goes at once.

use super::Payload;
use crate::id::{Epoch, NodeId};
use crate::time::Instant;
use std::collections::BTreeMap;
use std::time::Duration;

/// Events held at most, over every origin; past it the oldest go at once.
const MAX_HELD: usize = 4096;
/// Origin lives remembered at most; past it the least recently heard go.
const MAX_ORIGINS: usize = 65_536;

#[derive(Debug)]
pub struct EventOrder {
    wait: Duration,
    /// Per origin life: the next event number to hand over, and when an
    /// event of it was last seen.
    next: BTreeMap<(NodeId, Epoch), (u64, Instant)>,
    /// Events that came early: by origin life and number, with when each
    /// came.
    held: BTreeMap<(NodeId, Epoch, u64), (Instant, Payload)>,
    /// Events handed over with an earlier one still missing.
    pub skipped: u64,
}

impl EventOrder {
    pub fn new(wait: Duration) -> Self {
        EventOrder {
            wait,
            next: BTreeMap::new(),
            held: BTreeMap::new(),
            skipped: 0,
        }
    }

    /// Takes a delivered payload; what may go to the application now goes
    /// into `ready`, in order (payloads that are not events go at once).
    pub fn push(&mut self, now: Instant, p: Payload, ready: &mut Vec<Payload>) {
        let Some(count) = p.event.as_ref().map(|e| e.count) else {
            ready.push(p);
            return;
        };
        let origin = (p.id.0.clone(), p.id.1);
        let next = match self.next.get_mut(&origin) {
            Some((next, heard)) => {
                *heard = now;
                *next
            }
            None => {
                self.forget_if_full();
                self.next.insert(origin.clone(), (count, now));
                count
            }
        };
        if count < next {
            // Older than where this member's order started: late, not
            // out of order.
            ready.push(p);
            return;
        }
        self.held
            .insert((origin.0.clone(), origin.1, count), (now, p));
        self.release(&origin, ready);
        if self.held.len() > MAX_HELD {
            self.skip_oldest(ready);
        }
    }

    /// Hands over what waited past `wait` (and what follows it).
    pub fn tick(&mut self, now: Instant, ready: &mut Vec<Payload>) {
        while let Some(((o, e, _), _)) = self
            .held
            .iter()
            .find(|(_, (at, _))| now >= *at + self.wait)
            .map(|(k, v)| (k.clone(), v.0))
        {
            self.skip_to(&(o, e), ready);
        }
    }

    /// When the oldest held event's wait is over.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.held.values().map(|(at, _)| *at + self.wait).min()
    }

    /// Events waiting for an earlier one.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Hands over the origin's held events from its next number on, as
    /// long as they follow each other.
    fn release(&mut self, origin: &(NodeId, Epoch), ready: &mut Vec<Payload>) {
        let Some((next, _)) = self.next.get_mut(origin) else {
            return;
        };
        // Numbers come from peers: the last one ends the order rather
        // than overflow.
        while let Some((_, p)) = self.held.remove(&(origin.0.clone(), origin.1, *next)) {
            ready.push(p);
            match next.checked_add(1) {
                Some(n) => *next = n,
                None => break,
            }
        }
    }

    /// Gives up on the origin's missing events before its first held one.
    fn skip_to(&mut self, origin: &(NodeId, Epoch), ready: &mut Vec<Payload>) {
        let first = self
            .held
            .range((origin.0.clone(), origin.1, 0)..=(origin.0.clone(), origin.1, u64::MAX))
            .next()
            .map(|((_, _, n), _)| *n);
        if let (Some(first), Some((next, _))) = (first, self.next.get_mut(origin)) {
            self.skipped = self.skipped.saturating_add(first - *next);
            *next = first;
        }
        self.release(origin, ready);
    }

    fn skip_oldest(&mut self, ready: &mut Vec<Payload>) {
        if let Some(((o, e, _), _)) = self
            .held
            .iter()
            .min_by_key(|(_, (at, _))| *at)
            .map(|(k, v)| (k.clone(), v.0))
        {
            self.skip_to(&(o, e), ready);
        }
    }

    /// Forgets the origin lives heard from least recently (none held).
    fn forget_if_full(&mut self) {
        while self.next.len() >= MAX_ORIGINS {
            let Some(oldest) = self
                .next
                .iter()
                .filter(|((o, e), _)| {
                    self.held
                        .range((o.clone(), *e, 0)..=(o.clone(), *e, u64::MAX))
                        .next()
                        .is_none()
                })
                .min_by_key(|(_, (_, heard))| *heard)
                .map(|(k, _)| k.clone())
            else {
                return;
            };
            self.next.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{EventHead, MsgId};

    fn ev(origin: &str, epoch: u64, count: u64) -> Payload {
        Payload {
            id: MsgId(NodeId::new(origin), Epoch(epoch), count.wrapping_mul(10)),
            data: vec![].into(),
            event: Some(EventHead {
                name: "deploy".into(),
                lamport: count,
                count,
                coalesce: false,
            }),
        }
    }

    fn counts(ready: &[Payload]) -> Vec<u64> {
        ready
            .iter()
            .map(|p| p.event.as_ref().map_or(0, |e| e.count))
            .collect()
    }

    const WAIT: Duration = Duration::from_secs(1);

    #[test]
    fn events_of_an_origin_go_in_their_order() {
        let mut o = EventOrder::new(WAIT);
        let mut ready = Vec::new();
        let t = Instant::ZERO;
        o.push(t, ev("a", 1, 1), &mut ready);
        o.push(t, ev("a", 1, 3), &mut ready);
        o.push(t, ev("b", 1, 7), &mut ready);
        o.push(t, ev("a", 1, 4), &mut ready);
        assert_eq!(counts(&ready), [1, 7], "3 and 4 wait for 2");
        assert_eq!(o.held(), 2);
        o.push(t, ev("a", 1, 2), &mut ready);
        assert_eq!(counts(&ready), [1, 7, 2, 3, 4]);
        assert_eq!(o.next_deadline(), None);
        // A broadcast is not an event: at once.
        let mut plain = ev("a", 1, 9);
        plain.event = None;
        o.push(t, plain, &mut ready);
        assert_eq!(ready.len(), 6);
        assert_eq!(o.skipped, 0);
    }

    #[test]
    fn a_missing_event_is_waited_for_at_most_the_wait() {
        let mut o = EventOrder::new(WAIT);
        let mut ready = Vec::new();
        let t = Instant::ZERO;
        o.push(t, ev("a", 1, 1), &mut ready);
        o.push(t + Duration::from_millis(200), ev("a", 1, 3), &mut ready);
        assert_eq!(o.next_deadline(), Some(t + Duration::from_millis(1200)));
        o.tick(t + Duration::from_millis(1199), &mut ready);
        assert_eq!(counts(&ready), [1]);
        o.tick(t + Duration::from_millis(1200), &mut ready);
        assert_eq!(counts(&ready), [1, 3]);
        assert_eq!(o.skipped, 1);
        // The missing one after all: late, goes at once.
        o.push(t + Duration::from_secs(2), ev("a", 1, 2), &mut ready);
        assert_eq!(counts(&ready), [1, 3, 2]);
        // A new life of the origin numbers from 1 again.
        o.push(t + Duration::from_secs(2), ev("a", 2, 1), &mut ready);
        assert_eq!(counts(&ready), [1, 3, 2, 1]);
    }

    #[test]
    fn a_late_joiner_starts_where_it_came_in() {
        let mut o = EventOrder::new(WAIT);
        let mut ready = Vec::new();
        o.push(Instant::ZERO, ev("a", 1, 57), &mut ready);
        o.push(Instant::ZERO, ev("a", 1, 58), &mut ready);
        assert_eq!(counts(&ready), [57, 58]);
        assert_eq!(o.held(), 0);
    }

    #[test]
    fn numbers_at_the_top_neither_overflow_nor_stick() {
        let mut o = EventOrder::new(WAIT);
        let mut ready = Vec::new();
        o.push(Instant::ZERO, ev("a", 1, u64::MAX - 1), &mut ready);
        o.push(Instant::ZERO, ev("a", 1, u64::MAX), &mut ready);
        o.push(Instant::ZERO, ev("a", 1, u64::MAX), &mut ready);
        o.push(Instant::ZERO, ev("b", 1, 0), &mut ready);
        o.push(Instant::ZERO, ev("b", 1, u64::MAX), &mut ready);
        o.tick(Instant::ZERO + WAIT, &mut ready);
        assert_eq!(ready.len(), 5);
        assert_eq!(o.held(), 0);
    }

    #[test]
    fn what_is_held_is_bounded() {
        let mut o = EventOrder::new(WAIT);
        let mut ready = Vec::new();
        o.push(Instant::ZERO, ev("a", 1, 1), &mut ready);
        for c in 3..(3 + MAX_HELD as u64 + 10) {
            o.push(Instant::ZERO, ev("a", 1, c), &mut ready);
        }
        assert!(o.held() <= MAX_HELD);
        // Skipping the one gap released everything after it.
        assert_eq!(ready.len(), MAX_HELD + 11);
        assert_eq!(o.skipped, 1);
    }
}
