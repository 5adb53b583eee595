//! A reliable, batched, one-neighbour link.
//!
//! Sending half: values wait in `fresh` until the pacing interval allows a
//! data message; sent batches stay `inflight` until the neighbour's
//! cumulative ack covers them. When the retransmission timer fires, every
//! inflight value goes back to `fresh` and is resent under a new number, and
//! `base` tells the receiver to stop waiting for the superseded numbers.
//!
//! Receiving half: tracks the highest contiguous batch number seen (`cum`)
//! and owes an ack for anything new or duplicated; the ack rides on the next
//! data message, or goes alone after `ack_delay`.

use super::{Config, Message};
use crate::time::Instant;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

#[derive(Debug)]
pub(crate) struct Link<V> {
    fresh: BTreeSet<V>,
    inflight: BTreeMap<u64, Vec<V>>,
    next_seq: u64,
    last_data_at: Option<Instant>,
    rto: Duration,
    retransmit_at: Option<Instant>,
    cum: u64,
    above: BTreeSet<u64>,
    ack_owed_since: Option<Instant>,
    /// A batch arrived twice: our acks are not getting through, so the next
    /// bare ack goes straight to the sender even when acks are relayed.
    ack_direct: bool,
}

/// What a link did during one poll, for the engine's counters.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct PollReport {
    pub data: u64,
    pub acks: u64,
    pub retransmits: u64,
    pub values: u64,
}

impl<V: Ord + Clone> Link<V> {
    pub fn new(cfg: &Config) -> Self {
        Link {
            fresh: BTreeSet::new(),
            inflight: BTreeMap::new(),
            next_seq: 1,
            last_data_at: None,
            rto: cfg.retransmit,
            retransmit_at: None,
            cum: 0,
            above: BTreeSet::new(),
            ack_owed_since: None,
            ack_direct: false,
        }
    }

    pub fn enqueue(&mut self, v: V) {
        self.fresh.insert(v);
    }

    /// The neighbour told us about `v`, so it has it: no need to send it back.
    pub fn forget(&mut self, v: &V) {
        self.fresh.remove(v);
    }

    /// Anything queued or unacknowledged?
    pub fn idle(&self) -> bool {
        self.fresh.is_empty() && self.inflight.is_empty() && self.ack_owed_since.is_none()
    }

    /// Applies the ack and sequencing of an incoming message; returns true if
    /// the batch is new (a duplicate still earns an ack, so the neighbour
    /// stops resending it).
    pub fn receive(&mut self, now: Instant, cfg: &Config, msg: &Message<V>) -> bool {
        self.ack(now, cfg, msg.ack);
        let Some(seq) = msg.seq else {
            return false;
        };
        if msg.base > self.cum + 1 {
            self.cum = msg.base - 1;
            self.above = self.above.split_off(&msg.base);
        }
        let fresh = seq > self.cum && self.above.insert(seq);
        self.ack_direct |= !fresh;
        while self.above.remove(&(self.cum + 1)) {
            self.cum += 1;
        }
        self.ack_owed_since.get_or_insert(now);
        fresh
    }

    /// The neighbour has every batch numbered `<= ack`.
    pub fn ack(&mut self, now: Instant, cfg: &Config, ack: u64) {
        let before = self.inflight.len();
        self.inflight = self.inflight.split_off(&(ack + 1));
        if self.inflight.len() < before {
            // Progress: the neighbour is reachable again.
            self.rto = cfg.retransmit;
            self.retransmit_at = (!self.inflight.is_empty()).then(|| now + self.rto);
        }
    }

    /// Takes the ack this link owes, if any, for sending some other way than
    /// a bare ack on the link (coalesced through the relay).
    pub fn take_owed_ack(&mut self) -> Option<u64> {
        if self.ack_owed_since.is_none() || self.ack_direct {
            return None;
        }
        self.ack_owed_since = None;
        Some(self.cum)
    }

    /// True if the next bare ack should bypass the relay.
    pub fn wants_direct_ack(&self) -> bool {
        self.ack_direct
    }

    /// Sends whatever is due at `now`; `batch` is this lane's pacing.
    pub fn poll(
        &mut self,
        now: Instant,
        cfg: &Config,
        batch: Duration,
        out: &mut Vec<Message<V>>,
    ) -> PollReport {
        let mut report = PollReport::default();
        if self.retransmit_at.is_some_and(|t| t <= now) {
            for (_, values) in std::mem::take(&mut self.inflight) {
                self.fresh.extend(values);
            }
            self.rto = (self.rto * 2).min(cfg.retransmit_max);
            self.retransmit_at = None;
            // Resending is not throttled by the pacing interval.
            self.last_data_at = None;
            report.retransmits += 1;
        }
        let paced = self.last_data_at.is_some_and(|t| now < t + batch);
        if !self.fresh.is_empty() && !paced {
            while !self.fresh.is_empty() {
                let values: Vec<V> = if self.fresh.len() <= cfg.max_batch {
                    std::mem::take(&mut self.fresh).into_iter().collect()
                } else {
                    let rest = self.fresh.split_off(
                        &self
                            .fresh
                            .iter()
                            .nth(cfg.max_batch)
                            .cloned()
                            .expect("len > max_batch"),
                    );
                    std::mem::replace(&mut self.fresh, rest)
                        .into_iter()
                        .collect()
                };
                let seq = self.next_seq;
                let base = self.base();
                self.next_seq += 1;
                report.values += values.len() as u64;
                report.data += 1;
                out.push(Message {
                    seq: Some(seq),
                    base,
                    ack: self.cum,
                    values: values.clone(),
                });
                self.inflight.insert(seq, values);
            }
            self.last_data_at = Some(now);
            self.retransmit_at.get_or_insert(now + self.rto);
            self.ack_owed_since = None;
            self.ack_direct = false;
        } else if self
            .ack_owed_since
            .is_some_and(|t| now >= t + cfg.ack_delay)
        {
            out.push(Message {
                seq: None,
                base: self.base(),
                ack: self.cum,
                values: Vec::new(),
            });
            self.ack_owed_since = None;
            self.ack_direct = false;
            report.acks += 1;
        }
        report
    }

    fn base(&self) -> u64 {
        self.inflight
            .keys()
            .next()
            .copied()
            .unwrap_or(self.next_seq)
    }

    /// When this link next needs a poll.
    pub fn deadline(&self, cfg: &Config, batch: Duration) -> Option<Instant> {
        let flush = (!self.fresh.is_empty())
            .then(|| self.last_data_at.map_or(Instant::ZERO, |t| t + batch));
        let ack = self.ack_owed_since.map(|t| t + cfg.ack_delay);
        [flush, ack, self.retransmit_at].into_iter().flatten().min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        Config {
            batch: Duration::from_millis(100),
            ack_delay: Duration::from_millis(500),
            retransmit: Duration::from_millis(1000),
            retransmit_max: Duration::from_millis(4000),
            max_batch: 3,
            ..Config::default()
        }
    }

    fn ms(t: u64) -> Instant {
        Instant::from_millis(t)
    }

    #[test]
    fn first_value_goes_at_once_then_pacing_batches() {
        let c = cfg();
        let mut l = Link::new(&c);
        let mut out = vec![];
        l.enqueue(1u64);
        l.poll(ms(0), &c, c.batch, &mut out);
        assert_eq!(out.len(), 1);
        l.enqueue(2);
        l.enqueue(3);
        l.poll(ms(50), &c, c.batch, &mut out);
        assert_eq!(out.len(), 1, "paced: nothing before 100 ms");
        assert_eq!(l.deadline(&c, c.batch), Some(ms(100)));
        l.poll(ms(100), &c, c.batch, &mut out);
        assert_eq!(out[1].values, vec![2, 3]);
        assert_eq!(out[1].seq, Some(2));
    }

    #[test]
    fn large_backlogs_split_into_bounded_messages() {
        let c = cfg();
        let mut l = Link::new(&c);
        for v in 0..7u64 {
            l.enqueue(v);
        }
        let mut out = vec![];
        l.poll(ms(0), &c, c.batch, &mut out);
        assert_eq!(
            out.iter().map(|m| m.values.len()).collect::<Vec<_>>(),
            vec![3, 3, 1]
        );
    }

    #[test]
    fn unacked_batches_are_resent_with_backoff_and_base_skips_them() {
        let c = cfg();
        let mut l = Link::new(&c);
        let mut out = vec![];
        l.enqueue(1u64);
        l.poll(ms(0), &c, c.batch, &mut out);
        l.enqueue(2);
        l.poll(ms(200), &c, c.batch, &mut out);
        assert_eq!(l.deadline(&c, c.batch), Some(ms(1000)));
        out.clear();
        l.poll(ms(1000), &c, c.batch, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].values, vec![1, 2]);
        assert_eq!(out[0].seq, Some(3));
        assert_eq!(out[0].base, 3, "seqs 1 and 2 are superseded");
        // Backoff: the next retry waits twice as long.
        assert_eq!(l.deadline(&c, c.batch), Some(ms(3000)));
        // An ack for seq 3 ends it.
        l.receive(
            ms(1100),
            &c,
            &Message {
                seq: None,
                base: 1,
                ack: 3,
                values: vec![],
            },
        );
        assert!(l.idle());
        assert_eq!(l.deadline(&c, c.batch), None);
    }

    #[test]
    fn receiver_acks_cumulatively_and_accepts_superseded_gaps() {
        let c = cfg();
        let mut l: Link<u64> = Link::new(&c);
        let data = |seq, base| Message {
            seq: Some(seq),
            base,
            ack: 0,
            values: vec![seq],
        };
        assert!(l.receive(ms(0), &c, &data(1, 1)));
        assert!(l.receive(ms(0), &c, &data(3, 1)));
        assert!(!l.receive(ms(0), &c, &data(3, 1)), "duplicate");
        assert_eq!(l.cum, 1, "2 missing");
        // The sender gave up on 2 (resent its values as 4): base 4.
        assert!(l.receive(ms(0), &c, &data(4, 4)));
        assert_eq!(l.cum, 4);
        let mut out = vec![];
        l.poll(ms(100), &c, c.batch, &mut out);
        assert!(out.is_empty(), "ack waits for data to ride on");
        l.poll(ms(500), &c, c.batch, &mut out);
        assert_eq!(
            out,
            vec![Message {
                seq: None,
                base: 1,
                ack: 4,
                values: vec![]
            }]
        );
        assert!(l.idle());
    }

    #[test]
    fn data_carries_the_owed_ack() {
        let c = cfg();
        let mut l: Link<u64> = Link::new(&c);
        l.receive(
            ms(0),
            &c,
            &Message {
                seq: Some(1),
                base: 1,
                ack: 0,
                values: vec![9],
            },
        );
        l.enqueue(5);
        let mut out = vec![];
        l.poll(ms(10), &c, c.batch, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].ack, 1);
        out.clear();
        l.poll(ms(600), &c, c.batch, &mut out);
        assert!(out.is_empty(), "no separate ack once one rode on data");
    }
}
