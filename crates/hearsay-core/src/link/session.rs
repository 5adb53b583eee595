//! A reliable, batched session with one neighbour, on one lane.
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

use super::LinkConfig as Config;
use crate::time::Instant;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// How far ahead of the contiguous prefix a batch number may be: a bound on
/// `above`, so a peer cannot make us track arbitrarily many numbers.
pub(crate) const WINDOW: u64 = 1 << 16;

/// Bytes of values ([`crate::value::Value::size`]) received and not yet
/// acknowledged past which the ack goes at once instead of waiting to ride
/// on data: the sender holds what it sent until the ack, so large payloads
/// at a high rate would otherwise pile up there for `ack_delay` (a second
/// and a half of 64 KiB broadcasts at 1,000 a second: 96 MiB). Values
/// that are their own small keys (Maelstrom's integers) never reach it.
pub(crate) const ACK_BYTES: usize = 1024 * 1024;

/// Value bytes per batch, at most (one value larger than that goes alone):
/// a batch is one frame, and a frame past the codec's largest is dropped,
/// so a resend of many large values in one batch would never arrive.
pub(crate) const BATCH_BYTES: usize = 1024 * 1024;

/// A link holding values that nothing has acknowledged for this long is
/// stalled: a neighbour the membership still calls alive but that takes no
/// data (its stream port blocked, say). SWIM declares an unreachable member
/// dead well within it, which removes the link instead.
pub(crate) const STALL: Duration = Duration::from_secs(10);

/// Value bytes a stalled link holds at most: past it, new values are not
/// queued for it (counted), and the neighbour gets everything the node
/// still holds once it acknowledges again. Without a bound one such
/// neighbour would hold a copy of every broadcast for as long as it stays.
pub(crate) const STALLED_BYTES: usize = 8 * 1024 * 1024;

/// A batch unacknowledged this long is presumed lost when the peer is
/// heard from without acking it: twice the probe interval (a second by
/// default), far beyond a one-way trip, so that an ack merely overtaken by
/// our batch does not cause a resend.
fn stale(cfg: &Config) -> Duration {
    cfg.probe * 2
}

/// One batch as the session sends it (the link layer wraps it in a
/// [`super::LinkMsg::Data`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Batch<V> {
    pub seq: Option<u64>,
    pub base: u64,
    pub ack: u64,
    pub values: Vec<V>,
    /// A bare probe: "answer with an ack now".
    pub probe: bool,
}

#[derive(Debug)]
pub(crate) struct Session<V> {
    fresh: BTreeSet<V>,
    /// Sent, unacknowledged batches: when each went, and its values.
    inflight: BTreeMap<u64, (Instant, Vec<V>)>,
    next_seq: u64,
    last_data_at: Option<Instant>,
    rto: Duration,
    retransmit_at: Option<Instant>,
    /// The next resend is one brought forward by news from the peer: the
    /// timeout after it starts over from the shortest.
    prompt: bool,
    /// While the resend backs off: when to probe the peer next.
    probe_at: Option<Instant>,
    /// The peer probed us, or sent [`ACK_BYTES`] since our last ack: an
    /// ack goes at once.
    ack_now: bool,
    /// Value bytes received since our last ack.
    owed_bytes: usize,
    /// Value bytes held to send: in `fresh`, and in `inflight`.
    fresh_bytes: usize,
    inflight_bytes: usize,
    cum: u64,
    above: BTreeSet<u64>,
    ack_owed_since: Option<Instant>,
    /// A batch arrived twice: our acks are not getting through, so the next
    /// bare ack goes straight to the sender even when acks are relayed.
    ack_direct: bool,
    /// Send a numbered (so acknowledged and retransmitted) batch by then,
    /// even with no values: a greeting that announces this node's life. Any
    /// data batch sent before carries it instead.
    hello: Option<Instant>,
    /// Holding values since then with no acknowledgement of any (reset by
    /// each ack that releases some); None while holding nothing.
    waiting_since: Option<Instant>,
    /// Waiting longer than [`STALL`] (as of the last poll).
    stalled: bool,
    /// Values were not queued while stalled; the neighbour lacks them.
    overflowed: bool,
    /// Acknowledged again after an overflow: the node should send it what
    /// it holds (taken by [`Session::take_recovered`]).
    recovered: bool,
}

/// What a link did during one poll, for the engine's counters.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct PollReport {
    pub data: u64,
    pub acks: u64,
    pub retransmits: u64,
    pub values: u64,
    pub greetings: u64,
    pub probes: u64,
    /// Values let go when the link stalled holding more than
    /// [`STALLED_BYTES`].
    pub dropped: u64,
}

impl<V: crate::value::Value> Session<V> {
    pub fn new(cfg: &Config) -> Self {
        Session {
            fresh: BTreeSet::new(),
            inflight: BTreeMap::new(),
            next_seq: 1,
            last_data_at: None,
            rto: cfg.retransmit,
            retransmit_at: None,
            prompt: false,
            probe_at: None,
            ack_now: false,
            owed_bytes: 0,
            fresh_bytes: 0,
            inflight_bytes: 0,
            cum: 0,
            above: BTreeSet::new(),
            ack_owed_since: None,
            ack_direct: false,
            hello: None,
            waiting_since: None,
            stalled: false,
            overflowed: false,
            recovered: false,
        }
    }

    /// A session for a peer an earlier session (removed from the view,
    /// say) numbered batches to up to `next_seq - 1`: numbering goes on
    /// from there. Had it started at 1 again, the peer (which may never
    /// have dropped its side) would take the new batches for ones it has
    /// and ack them by its old count, so a new batch lost on the way was
    /// never resent.
    pub fn continuing(cfg: &Config, next_seq: u64) -> Self {
        Session {
            next_seq: next_seq.max(1),
            ..Session::new(cfg)
        }
    }

    /// The number the next batch takes.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Greets the peer reliably by `at`: a numbered batch goes out (empty
    /// if no values went before) and is resent until acknowledged, so the
    /// peer learns this node's epoch even when no values flow.
    pub fn greet(&mut self, at: Instant) {
        self.hello.get_or_insert(at);
    }

    /// Queues `v`; false when the link is stalled and full, so the value
    /// is not kept for it (see [`STALLED_BYTES`]).
    pub fn enqueue(&mut self, v: V) -> bool {
        let size = v.size();
        if self.stalled && self.held_bytes().saturating_add(size) > STALLED_BYTES {
            if !self.fresh.contains(v.key()) {
                self.overflowed = true;
                return false;
            }
            return true;
        }
        if self.fresh.insert(v) {
            self.fresh_bytes += size;
        }
        true
    }

    /// Holding values nothing has acknowledged for [`STALL`] (as of the
    /// last poll): its bytes do not count as back-pressure on broadcasts.
    pub fn stalled(&self) -> bool {
        self.stalled
    }

    /// The link overflowed while stalled and has been acknowledged since.
    pub fn take_recovered(&mut self) -> bool {
        std::mem::take(&mut self.recovered)
    }

    /// Value bytes this link holds until the neighbour has them (a value
    /// both queued and in flight counts twice: an upper bound).
    pub fn held_bytes(&self) -> usize {
        self.fresh_bytes + self.inflight_bytes
    }

    /// Puts unacknowledged values back to be sent again.
    fn requeue(&mut self, values: Vec<V>) {
        for v in values {
            let size = v.size();
            if self.fresh.insert(v) {
                self.fresh_bytes += size;
            }
        }
    }

    /// The neighbour told us about `v`, so it has it: no need to send it back.
    pub fn forget(&mut self, v: &V) {
        // The copy held here, not the peer's: values compare by key, and a
        // peer's copy may carry other bytes (a forgery).
        if let Some(held) = self.fresh.take::<V>(v) {
            self.fresh_bytes -= held.size();
        }
    }

    /// Anything queued or unacknowledged?
    pub fn idle(&self) -> bool {
        self.fresh.is_empty()
            && self.inflight.is_empty()
            && self.ack_owed_since.is_none()
            && self.hello.is_none()
    }

    /// Applies the ack and sequencing of an incoming batch; returns true if
    /// it is new (a duplicate still earns an ack, so the neighbour stops
    /// resending it). Numbers come from the peer: nothing here may overflow,
    /// and a number too far ahead is dropped rather than tracked. A probe
    /// is answered with an ack at once, and so is a new batch that brings
    /// what is owed past [`ACK_BYTES`] (`bytes`: its values' sizes).
    #[allow(clippy::too_many_arguments)]
    pub fn receive(
        &mut self,
        now: Instant,
        cfg: &Config,
        seq: Option<u64>,
        base: u64,
        ack: u64,
        probe: bool,
        bytes: usize,
    ) -> bool {
        self.ack(now, cfg, ack);
        // Straight from the peer, and still no ack for a batch sent long
        // enough ago to have arrived: it was lost (a partition that healed
        // before the first timeout). It goes again now, once a while.
        if !self.prompt && self.oldest_sent().is_some_and(|t| now >= t + stale(cfg)) {
            self.retransmit_at = Some(now);
            self.prompt = true;
            self.probe_at = None;
        }
        if probe {
            self.ack_now = true;
            self.ack_direct = true;
            self.ack_owed_since.get_or_insert(now);
        }
        let Some(seq) = seq else {
            return false;
        };
        if base > self.cum.saturating_add(1) {
            self.cum = base - 1;
            self.above = self.above.split_off(&base);
        }
        if seq > self.cum.saturating_add(WINDOW) {
            return false;
        }
        let fresh = seq > self.cum && self.above.insert(seq);
        self.ack_direct |= !fresh;
        if fresh {
            self.owed_bytes = self.owed_bytes.saturating_add(bytes);
            self.ack_now |= self.owed_bytes >= ACK_BYTES;
        }
        while self.cum < u64::MAX && self.above.remove(&(self.cum + 1)) {
            self.cum += 1;
        }
        self.ack_owed_since.get_or_insert(now);
        fresh
    }

    /// The peer restarted with empty state: it numbers from 1 again and
    /// holds nothing we sent its previous life, so everything unacknowledged
    /// goes back to be resent (the strategy decides what else it needs).
    /// Numbering goes on from where it was; the first batch's `base` tells
    /// the peer not to wait for earlier numbers.
    pub fn reset(&mut self, cfg: &Config) {
        self.inflight_bytes = 0;
        for (_, (_, values)) in std::mem::take(&mut self.inflight) {
            self.requeue(values);
        }
        self.rto = cfg.retransmit;
        self.retransmit_at = None;
        self.prompt = false;
        self.probe_at = None;
        self.ack_now = false;
        self.owed_bytes = 0;
        self.last_data_at = None;
        self.cum = 0;
        self.above.clear();
        self.ack_owed_since = None;
        self.ack_direct = false;
        // The strategy gives a new life what it needs.
        self.waiting_since = None;
        self.stalled = false;
        self.overflowed = false;
        self.recovered = false;
    }

    /// Owe the peer an ack even without new data from it, so that a bare
    /// message carrying this node's epoch goes out (a peer that addressed
    /// our previous life learns of this one that way).
    pub fn owe_ack(&mut self, now: Instant) {
        self.ack_owed_since.get_or_insert(now);
        self.ack_direct = true;
    }

    /// The neighbour has every batch numbered `<= ack`.
    pub fn ack(&mut self, now: Instant, cfg: &Config, ack: u64) {
        let before = self.inflight.len();
        let acked = match ack.checked_add(1) {
            Some(above) => {
                let rest = self.inflight.split_off(&above);
                std::mem::replace(&mut self.inflight, rest)
            }
            None => std::mem::take(&mut self.inflight),
        };
        for (_, (_, values)) in acked {
            self.inflight_bytes -= values.iter().map(V::size).sum::<usize>();
        }
        if self.inflight.len() < before {
            // Progress: the neighbour is reachable again.
            self.waiting_since = (self.held_bytes() > 0).then_some(now);
            self.stalled = false;
            self.recovered |= std::mem::take(&mut self.overflowed);
            self.rto = cfg.retransmit;
            self.retransmit_at = (!self.inflight.is_empty()).then(|| now + self.rto);
            self.probe_at = None;
        } else if !self.inflight.is_empty() && self.rto > cfg.retransmit {
            // Heard from while backing off (a partition healed): what it
            // lacks goes now, not after a timeout grown to seconds. Once
            // per backoff: the timeout starts over from the shortest.
            self.retransmit_at = Some(now);
            self.prompt = true;
            self.probe_at = None;
        }
    }

    /// Takes the ack this link owes, if any, for sending some other way than
    /// a bare ack on the link (coalesced through the relay).
    pub fn take_owed_ack(&mut self) -> Option<u64> {
        if self.ack_owed_since.is_none() || self.ack_direct {
            return None;
        }
        self.ack_owed_since = None;
        self.owed_bytes = 0;
        self.ack_now = false;
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
        out: &mut Vec<Batch<V>>,
    ) -> PollReport {
        let mut report = PollReport {
            dropped: self.note_waiting(now),
            ..PollReport::default()
        };
        if self.retransmit_at.is_some_and(|t| t <= now) {
            self.inflight_bytes = 0;
            for (_, (_, values)) in std::mem::take(&mut self.inflight) {
                if values.is_empty() {
                    self.hello = Some(now);
                }
                self.requeue(values);
            }
            self.rto = if std::mem::take(&mut self.prompt) {
                cfg.retransmit
            } else {
                (self.rto * 2).min(cfg.retransmit_max)
            };
            self.retransmit_at = None;
            // Resending is not throttled by the pacing interval.
            self.last_data_at = None;
            report.retransmits += 1;
            // Backing off now: probe in between the resends.
            self.probe_at = (self.rto > cfg.retransmit).then(|| now + cfg.probe);
        } else if self.probe_at.is_some_and(|t| t <= now) {
            let next = now + cfg.probe;
            self.probe_at = (!self.inflight.is_empty()
                && self.retransmit_at.is_some_and(|t| next < t))
            .then_some(next);
            if !self.inflight.is_empty() {
                out.push(self.bare(true));
                report.probes += 1;
            }
        }
        let paced = self.last_data_at.is_some_and(|t| now < t + batch);
        let hello_due = self.hello.is_some_and(|t| t <= now);
        if (!self.fresh.is_empty() && !paced) || (hello_due && self.fresh.is_empty()) {
            // Any numbered batch carries the greeting; an empty one goes
            // only when there are no values.
            let mut greeting = self.hello.take().is_some() && self.fresh.is_empty();
            while !self.fresh.is_empty() || std::mem::take(&mut greeting) {
                // The first values, in order, up to the count and the
                // bytes (at least one).
                let mut values: Vec<V> = Vec::new();
                let mut bytes = 0usize;
                while let Some(v) = self.fresh.first() {
                    let full = values.len() >= cfg.max_batch
                        || (!values.is_empty() && bytes.saturating_add(v.size()) > BATCH_BYTES);
                    if full {
                        break;
                    }
                    bytes = bytes.saturating_add(v.size());
                    values.extend(self.fresh.pop_first());
                }
                self.fresh_bytes -= bytes;
                self.inflight_bytes += bytes;
                let seq = self.next_seq;
                let base = self.base();
                self.next_seq = self.next_seq.saturating_add(1);
                report.values += values.len() as u64;
                if values.is_empty() {
                    report.greetings += 1;
                } else {
                    report.data += 1;
                }
                out.push(Batch {
                    seq: Some(seq),
                    base,
                    ack: self.cum,
                    values: values.clone(),
                    probe: false,
                });
                self.inflight.insert(seq, (now, values));
            }
            if report.data > 0 {
                // A greeting alone does not delay the first values.
                self.last_data_at = Some(now);
            }
            self.retransmit_at.get_or_insert(now + self.rto);
            self.ack_owed_since = None;
            self.ack_direct = false;
            self.ack_now = false;
            self.owed_bytes = 0;
        } else if self
            .ack_owed_since
            .is_some_and(|t| self.ack_now || now >= t + cfg.ack_delay)
        {
            out.push(self.bare(false));
            self.ack_direct = false;
            report.acks += 1;
        }
        report
    }

    /// Starts or ends the wait for an acknowledgement, and says whether it
    /// has gone on past [`STALL`]; a link that stalls holding more than
    /// [`STALLED_BYTES`] lets queued values go down to it (the neighbour
    /// gets them when it acknowledges again). Returns how many went.
    fn note_waiting(&mut self, now: Instant) -> u64 {
        if self.held_bytes() == 0 {
            self.waiting_since = None;
        } else {
            self.waiting_since.get_or_insert(now);
        }
        self.stalled = self.waiting_since.is_some_and(|t| now >= t + STALL);
        let mut dropped = 0;
        if self.stalled && self.held_bytes() > STALLED_BYTES {
            // What is in flight may be trimmed too: it goes back to be
            // resent (under new numbers, as a timeout would send it).
            self.inflight_bytes = 0;
            for (_, (_, values)) in std::mem::take(&mut self.inflight) {
                if values.is_empty() {
                    self.hello.get_or_insert(now);
                }
                self.requeue(values);
            }
        }
        while self.stalled && self.held_bytes() > STALLED_BYTES {
            let Some(v) = self.fresh.pop_last() else {
                break;
            };
            self.fresh_bytes -= v.size();
            self.overflowed = true;
            dropped += 1;
        }
        dropped
    }

    /// A batch with no values and no number: an ack (which it always is:
    /// what is owed goes with it), or a probe asking for one.
    fn bare(&mut self, probe: bool) -> Batch<V> {
        self.ack_owed_since = None;
        self.ack_now = false;
        self.owed_bytes = 0;
        Batch {
            seq: None,
            base: self.base(),
            ack: self.cum,
            values: Vec::new(),
            probe,
        }
    }

    /// When the oldest unacknowledged batch went: the lowest number's (a
    /// batch is numbered as it is sent, a resend under a new number), read
    /// on every message from the peer, so no scan.
    fn oldest_sent(&self) -> Option<Instant> {
        self.inflight.first_key_value().map(|(_, (t, _))| *t)
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
        let hello = self.hello.filter(|_| self.fresh.is_empty());
        let ack = self
            .ack_owed_since
            .map(|t| if self.ack_now { t } else { t + cfg.ack_delay });
        [flush, hello, ack, self.retransmit_at, self.probe_at]
            .into_iter()
            .flatten()
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        Config {
            ack_delay: Duration::from_millis(500),
            retransmit: Duration::from_millis(1000),
            retransmit_max: Duration::from_millis(4000),
            max_batch: 3,
            ..Config::default()
        }
    }

    const GAP: Duration = Duration::from_millis(100);

    fn ms(t: u64) -> Instant {
        Instant::from_millis(t)
    }

    #[test]
    fn first_value_goes_at_once_then_pacing_batches() {
        let c = cfg();
        let mut l = Session::new(&c);
        let mut out = vec![];
        l.enqueue(1u64);
        l.poll(ms(0), &c, GAP, &mut out);
        assert_eq!(out.len(), 1);
        l.enqueue(2);
        l.enqueue(3);
        l.poll(ms(50), &c, GAP, &mut out);
        assert_eq!(out.len(), 1, "paced: nothing before 100 ms");
        assert_eq!(l.deadline(&c, GAP), Some(ms(100)));
        l.poll(ms(100), &c, GAP, &mut out);
        assert_eq!(out[1].values, vec![2, 3]);
        assert_eq!(out[1].seq, Some(2));
    }

    #[test]
    fn large_backlogs_split_into_bounded_messages() {
        let c = cfg();
        let mut l = Session::new(&c);
        for v in 0..7u64 {
            l.enqueue(v);
        }
        let mut out = vec![];
        l.poll(ms(0), &c, GAP, &mut out);
        assert_eq!(
            out.iter().map(|m| m.values.len()).collect::<Vec<_>>(),
            vec![3, 3, 1]
        );
    }

    #[test]
    fn unacked_batches_are_resent_with_backoff_and_base_skips_them() {
        let c = cfg();
        let mut l = Session::new(&c);
        let mut out = vec![];
        l.enqueue(1u64);
        l.poll(ms(0), &c, GAP, &mut out);
        l.enqueue(2);
        l.poll(ms(200), &c, GAP, &mut out);
        assert_eq!(l.deadline(&c, GAP), Some(ms(1000)));
        out.clear();
        l.poll(ms(1000), &c, GAP, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].values, vec![1, 2]);
        assert_eq!(out[0].seq, Some(3));
        assert_eq!(out[0].base, 3, "seqs 1 and 2 are superseded");
        // Backoff: the next retry waits twice as long (probes go in
        // between: see below).
        assert_eq!(l.retransmit_at, Some(ms(3000)));
        // An ack for seq 3 ends it.
        l.receive(ms(1100), &c, None, 1, 3, false, 0);
        assert!(l.idle());
        assert_eq!(l.deadline(&c, GAP), None);
    }

    /// A resend after a loss puts every unacknowledged value back at once:
    /// large ones still go in batches that fit a frame.
    #[test]
    fn batches_of_large_values_stay_under_the_byte_bound() {
        use crate::cluster::{MsgId, Payload};
        use crate::id::{Epoch, NodeId};
        let c = cfg();
        let c = Config {
            max_batch: 4096,
            ..c
        };
        let mut l = Session::new(&c);
        let big = |seq| Payload {
            id: MsgId(NodeId::new("o"), Epoch(1), seq),
            data: vec![0; 64 * 1024].into(),
            event: None,
        };
        for q in 0..100 {
            l.enqueue(big(q));
        }
        let mut out = vec![];
        l.poll(ms(0), &c, GAP, &mut out);
        // Lost: the resend takes all 100 back.
        out.clear();
        l.poll(ms(0) + c.retransmit, &c, GAP, &mut out);
        let sizes: Vec<usize> = out
            .iter()
            .map(|b| b.values.iter().map(crate::value::Value::size).sum())
            .collect();
        assert_eq!(out.iter().map(|b| b.values.len()).sum::<usize>(), 100);
        assert!(sizes.iter().all(|&s| s <= BATCH_BYTES), "{sizes:?}");
        assert_eq!(sizes.len(), 7, "16 values of 64 KiB per batch: {sizes:?}");
    }

    /// What a link holds for its neighbour is counted through every move:
    /// queued, sent, resent, forgotten, acknowledged.
    #[test]
    fn held_bytes_follow_values_until_acknowledged() {
        use crate::cluster::{MsgId, Payload};
        use crate::id::{Epoch, NodeId};
        let c = cfg();
        let mut l = Session::new(&c);
        let kib = |seq| Payload {
            id: MsgId(NodeId::new("o"), Epoch(1), seq),
            data: vec![0; 1024].into(),
            event: None,
        };
        for q in 0..3 {
            l.enqueue(kib(q));
        }
        l.enqueue(kib(0));
        assert_eq!(l.held_bytes(), 3 * 1024, "a value queued twice counts once");
        let mut out = vec![];
        l.poll(ms(0), &c, GAP, &mut out);
        assert_eq!(l.held_bytes(), 3 * 1024, "in flight");
        l.enqueue(kib(3));
        l.forget(&kib(3));
        assert_eq!(l.held_bytes(), 3 * 1024, "forgotten before it went");
        // Lost: resent under new numbers, still held.
        out.clear();
        l.poll(ms(0) + c.retransmit, &c, GAP, &mut out);
        assert_eq!(l.held_bytes(), 3 * 1024);
        let last = out.iter().filter_map(|b| b.seq).max().unwrap();
        l.receive(ms(1), &c, None, 1, last, false, 0);
        assert_eq!(l.held_bytes(), 0, "acknowledged");
    }

    /// A peer's copy of a value queued here may carry other bytes (values
    /// compare by key): what is counted off is the copy held.
    #[test]
    fn a_forged_copy_from_the_peer_counts_off_what_was_held() {
        use crate::cluster::{MsgId, Payload};
        use crate::id::{Epoch, NodeId};
        let c = cfg();
        let mut l = Session::new(&c);
        let with = |len: usize| Payload {
            id: MsgId(NodeId::new("o"), Epoch(1), 7),
            data: vec![0; len].into(),
            event: None,
        };
        l.enqueue(with(1024));
        l.forget(&with(10 * 1024));
        assert_eq!(l.held_bytes(), 0);
        l.enqueue(with(1024));
        l.forget(&with(1));
        assert_eq!(l.held_bytes(), 0);
    }

    #[test]
    fn large_values_are_acked_at_once_small_ones_wait_to_ride_on_data() {
        let c = cfg();
        let mut l = Session::<u64>::new(&c);
        // Small values: the ack waits up to ack_delay for data to ride on.
        l.receive(ms(0), &c, Some(1), 1, 0, false, 100);
        assert_eq!(l.deadline(&c, GAP), Some(ms(0) + c.ack_delay));
        // A megabyte owed: the ack goes now, so the sender can let go.
        l.receive(ms(10), &c, Some(2), 1, 0, false, ACK_BYTES);
        assert_eq!(l.deadline(&c, GAP), Some(ms(0)));
        let mut out = vec![];
        l.poll(ms(10), &c, GAP, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].seq, out[0].ack), (None, 2), "a bare ack for both");
        // The count starts over after an ack; a duplicate counts nothing.
        l.receive(ms(20), &c, Some(3), 1, 0, false, ACK_BYTES / 2);
        l.receive(ms(30), &c, Some(3), 1, 0, false, ACK_BYTES / 2);
        assert_eq!(l.deadline(&c, GAP), Some(ms(20) + c.ack_delay));
    }

    #[test]
    fn a_peer_heard_from_while_backing_off_gets_the_resend_at_once() {
        let c = cfg();
        let mut l = Session::new(&c);
        let mut out = vec![];
        l.enqueue(1u64);
        l.poll(ms(0), &c, GAP, &mut out);
        l.poll(ms(1000), &c, GAP, &mut out);
        assert_eq!(l.retransmit_at, Some(ms(3000)), "backing off");
        // The partition heals: the peer's own retry arrives, acking
        // nothing of ours. Ours goes now, not at 3 s.
        l.receive(ms(1400), &c, Some(1), 1, 0, false, 0);
        assert_eq!(l.deadline(&c, GAP), Some(ms(1400)));
        out.clear();
        l.poll(ms(1400), &c, GAP, &mut out);
        assert_eq!(
            out.iter().map(|b| b.values.clone()).collect::<Vec<_>>(),
            [vec![1]]
        );
        // Once per backoff: more of the peer's messages do not make a storm.
        l.receive(ms(1600), &c, Some(2), 1, 0, false, 0);
        out.clear();
        l.poll(ms(1600), &c, GAP, &mut out);
        assert!(out.iter().all(|b| b.values.is_empty()), "{out:?}");
        out.clear();
        l.poll(ms(2500), &c, GAP, &mut out);
        assert!(
            out.iter().any(|b| b.values == [1]),
            "the next resend after the shortest timeout: {out:?}"
        );
    }

    #[test]
    fn a_backing_off_sender_probes_and_the_answer_brings_the_resend_forward() {
        let c = Config {
            probe: Duration::from_millis(500),
            ..cfg()
        };
        let (mut a, mut b) = (Session::new(&c), Session::<u64>::new(&c));
        let mut out = vec![];
        a.enqueue(7u64);
        a.poll(ms(0), &c, GAP, &mut out);
        // Lost (a partition). The resend at 1 s is lost too; now backing
        // off until 3 s, a probe goes every 500 ms in between.
        out.clear();
        a.poll(ms(1000), &c, GAP, &mut out);
        assert_eq!(out.len(), 1, "the resend");
        out.clear();
        assert_eq!(a.deadline(&c, GAP), Some(ms(1500)));
        a.poll(ms(1500), &c, GAP, &mut out);
        assert_eq!(out.len(), 1);
        let p = out.pop().unwrap();
        assert!(p.probe && p.seq.is_none() && p.values.is_empty(), "{p:?}");
        a.poll(ms(2000), &c, GAP, &mut out);
        assert!(out.pop().is_some_and(|p| p.probe), "again while cut");
        // The cut heals: the peer answers a probe at once, straight back.
        b.receive(ms(2500), &c, p.seq, p.base, p.ack, p.probe, 0);
        assert!(b.wants_direct_ack());
        assert_eq!(b.deadline(&c, GAP), Some(ms(2500)), "not after ack_delay");
        b.poll(ms(2500), &c, GAP, &mut out);
        let ack = out.pop().unwrap();
        assert!(ack.seq.is_none() && !ack.probe);
        // ... which brings the value over at once, not at 3 s.
        a.receive(ms(2550), &c, ack.seq, ack.base, ack.ack, ack.probe, 0);
        assert_eq!(a.deadline(&c, GAP), Some(ms(2550)));
        a.poll(ms(2550), &c, GAP, &mut out);
        assert_eq!(out.pop().map(|m| m.values), Some(vec![7]));
        // A link that never failed never probes.
        let mut quiet = Session::new(&c);
        quiet.enqueue(1u64);
        quiet.poll(ms(0), &c, GAP, &mut out);
        out.clear();
        quiet.receive(ms(100), &c, None, 1, 1, false, 0);
        for t in (200..5000).step_by(100) {
            quiet.poll(ms(t), &c, GAP, &mut out);
        }
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn a_peer_heard_from_without_an_ack_for_an_old_batch_gets_it_again_before_the_timeout() {
        // A cut that heals before the first timeout: the peer's data shows
        // it never got our batch, sent long enough ago to have arrived.
        let c = Config {
            retransmit: Duration::from_millis(3000),
            retransmit_max: Duration::from_millis(6000),
            probe: Duration::from_millis(500),
            ..cfg()
        };
        let mut l = Session::new(&c);
        let mut out = vec![];
        l.enqueue(1u64);
        l.poll(ms(0), &c, GAP, &mut out);
        out.clear();
        // Soon after sending, the peer's data acking nothing is no news.
        l.receive(ms(300), &c, Some(1), 1, 0, false, 0);
        l.poll(ms(300), &c, GAP, &mut out);
        assert!(out.iter().all(|b| b.values.is_empty()), "{out:?}");
        // Past the stale mark (twice the probe interval), it is.
        let late = ms(2 * c.probe.as_millis() as u64 + 100);
        l.receive(late, &c, Some(2), 1, 0, false, 0);
        assert_eq!(l.retransmit_at, Some(late), "now, not at the 3 s timeout");
        l.poll(late, &c, GAP, &mut out);
        assert!(out.iter().any(|b| b.values == [1]), "{out:?}");
    }

    #[test]
    fn receiver_acks_cumulatively_and_accepts_superseded_gaps() {
        let c = cfg();
        let mut l: Session<u64> = Session::new(&c);
        assert!(l.receive(ms(0), &c, Some(1), 1, 0, false, 0));
        assert!(l.receive(ms(0), &c, Some(3), 1, 0, false, 0));
        assert!(!l.receive(ms(0), &c, Some(3), 1, 0, false, 0), "duplicate");
        assert_eq!(l.cum, 1, "2 missing");
        // The sender gave up on 2 (resent its values as 4): base 4.
        assert!(l.receive(ms(0), &c, Some(4), 4, 0, false, 0));
        assert_eq!(l.cum, 4);
        let mut out = vec![];
        l.poll(ms(100), &c, GAP, &mut out);
        assert!(out.is_empty(), "ack waits for data to ride on");
        l.poll(ms(500), &c, GAP, &mut out);
        assert_eq!(
            out,
            vec![Batch {
                seq: None,
                base: 1,
                ack: 4,
                values: vec![],
                probe: false,
            }]
        );
        assert!(l.idle());
    }

    #[test]
    fn data_carries_the_owed_ack() {
        let c = cfg();
        let mut l: Session<u64> = Session::new(&c);
        l.receive(ms(0), &c, Some(1), 1, 0, false, 0);
        l.enqueue(5);
        let mut out = vec![];
        l.poll(ms(10), &c, GAP, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].ack, 1);
        out.clear();
        l.poll(ms(600), &c, GAP, &mut out);
        assert!(out.is_empty(), "no separate ack once one rode on data");
    }

    #[test]
    fn hostile_numbers_neither_panic_nor_grow_state() {
        let c = cfg();
        let mut l: Session<u64> = Session::new(&c);
        l.enqueue(1);
        let mut out = vec![];
        l.poll(ms(0), &c, GAP, &mut out);
        // An ack of u64::MAX used to overflow `ack + 1`.
        l.receive(ms(1), &c, None, 1, u64::MAX, false, 0);
        assert!(l.inflight.is_empty());
        // Numbers far ahead of the prefix are not tracked.
        for k in 0..1000u64 {
            l.receive(ms(2), &c, Some(WINDOW * 2 + k * 7919), 0, 0, false, 0);
        }
        assert!(l.above.is_empty());
        // A base at the top of the range jumps the prefix without overflow.
        l.receive(ms(3), &c, Some(u64::MAX), u64::MAX, 0, false, 0);
        assert!(!l.receive(ms(3), &c, Some(u64::MAX), u64::MAX, 0, false, 0));
        assert_eq!(l.cum, u64::MAX);
    }

    #[test]
    fn a_greeting_is_a_numbered_batch_resent_until_acknowledged() {
        let c = cfg();
        let mut l: Session<u64> = Session::new(&c);
        l.greet(ms(500));
        assert!(!l.idle());
        assert_eq!(l.deadline(&c, GAP), Some(ms(500)));
        let mut out = vec![];
        l.poll(ms(0), &c, GAP, &mut out);
        assert!(out.is_empty(), "not before it is due");
        l.poll(ms(500), &c, GAP, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].seq, out[0].values.len()), (Some(1), 0));
        out.clear();
        // Lost: it goes again at the retransmission timeout.
        l.poll(ms(1500), &c, GAP, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].seq, Some(2));
        l.receive(ms(1600), &c, None, 1, 2, false, 0);
        assert!(l.idle());
        // A value sent before the greeting is due carries it.
        let mut l: Session<u64> = Session::new(&c);
        l.greet(ms(500));
        l.enqueue(4);
        out.clear();
        l.poll(ms(0), &c, GAP, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].values, vec![4]);
        l.poll(ms(600), &c, GAP, &mut out);
        assert_eq!(out.len(), 1, "no separate greeting");
    }

    #[test]
    fn a_reset_resends_everything_unacknowledged_and_forgets_the_old_numbering() {
        let c = cfg();
        let mut l: Session<u64> = Session::new(&c);
        let mut out = vec![];
        l.receive(ms(0), &c, Some(1), 1, 0, false, 0);
        l.receive(ms(0), &c, Some(2), 1, 0, false, 0);
        l.enqueue(10);
        l.enqueue(11);
        l.poll(ms(0), &c, GAP, &mut out);
        assert_eq!(out[0].seq, Some(1));
        out.clear();
        // The peer restarted: its seq 1 is new again; our batch goes again,
        // numbered on, with a base that skips the old numbers.
        l.reset(&c);
        assert!(l.receive(ms(10), &c, Some(1), 1, 0, false, 0));
        l.poll(ms(10), &c, GAP, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].values, vec![10, 11]);
        assert_eq!((out[0].seq, out[0].base, out[0].ack), (Some(2), 2, 1));
    }
}

/// The link pair under random schedules: loss, duplication, reordering,
/// cuts and heals, and restarts of either end with state loss.
#[cfg(test)]
mod pair {
    use super::*;
    use crate::rng::{self, RngExt};
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[derive(Clone, Debug)]
    enum Step {
        Send(bool, u8),
        Wait(u16),
        Cut,
        Heal,
        Restart(bool),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => (any::<bool>(), any::<u8>()).prop_map(|(a, v)| Step::Send(a, v)),
            3 => (1u16..3000).prop_map(Step::Wait),
            1 => Just(Step::Cut),
            1 => Just(Step::Heal),
            1 => any::<bool>().prop_map(Step::Restart),
        ]
    }

    /// One end: its session and what it holds (what the layers above would).
    struct End {
        s: Session<u64>,
        held: BTreeSet<u64>,
    }

    fn run(seed: u64, loss: f64, dup: f64, steps: &[Step]) {
        let c = Config::default();
        let mut rng = rng::child(seed, "pair");
        let mut ends = [
            End {
                s: Session::new(&c),
                held: BTreeSet::new(),
            },
            End {
                s: Session::new(&c),
                held: BTreeSet::new(),
            },
        ];
        // (deliver at, seq, to, batch)
        let mut wire: Vec<(Instant, u64, usize, Batch<u64>)> = Vec::new();
        let (mut now, mut n, mut cut) = (Instant::ZERO, 0u64, false);
        let gap = Duration::from_millis(50);
        let step_net = |ends: &mut [End; 2],
                        wire: &mut Vec<_>,
                        now: Instant,
                        cut: bool,
                        loss: f64,
                        dup: f64,
                        rng: &mut crate::rng::Rng,
                        n: &mut u64| {
            for (i, end) in ends.iter_mut().enumerate() {
                let mut out = Vec::new();
                end.s.poll(now, &c, gap, &mut out);
                for b in out {
                    let copies = if rng.random_bool(dup) { 2 } else { 1 };
                    for _ in 0..copies {
                        if cut || rng.random_bool(loss) {
                            continue;
                        }
                        *n += 1;
                        let d = Duration::from_millis(10 + rng.random_range(0..200));
                        wire.push((now + d, *n, 1 - i, b.clone()));
                    }
                }
            }
            wire.sort_by_key(|(t, k, _, _)| (*t, *k));
            while wire.first().is_some_and(|(t, ..)| *t <= now) {
                let (_, _, to, b) = wire.remove(0);
                let e = &mut ends[to];
                e.s.receive(now, &c, b.seq, b.base, b.ack, false, 0);
                for v in b.values {
                    e.s.forget(&v);
                    e.held.insert(v);
                }
            }
        };
        for st in steps {
            match st {
                Step::Send(a, v) => {
                    let i = usize::from(*a);
                    ends[i].held.insert(u64::from(*v));
                    ends[i].s.enqueue(u64::from(*v));
                }
                Step::Wait(ms) => {
                    let until = now + Duration::from_millis(u64::from(*ms));
                    while now < until {
                        now += Duration::from_millis(10);
                        step_net(&mut ends, &mut wire, now, cut, loss, dup, &mut rng, &mut n);
                    }
                }
                Step::Cut => cut = true,
                Step::Heal => cut = false,
                Step::Restart(a) => {
                    // The end loses everything and comes back; the other
                    // sees the new epoch (the node's job), resets its
                    // session and hands it all it holds (the strategy's).
                    let i = usize::from(*a);
                    ends[i] = End {
                        s: Session::new(&c),
                        held: BTreeSet::new(),
                    };
                    // Everything in flight is of the old life: what goes to
                    // it names the old epoch, what comes from it is older
                    // than the epoch the other end now knows, and the node
                    // drops both (see `node`).
                    wire.clear();
                    let other = &mut ends[1 - i];
                    other.s.reset(&c);
                    for v in other.held.clone() {
                        other.s.enqueue(v);
                    }
                }
            }
        }
        cut = false;
        for _ in 0..6000 {
            now += Duration::from_millis(10);
            step_net(&mut ends, &mut wire, now, cut, 0.0, 0.0, &mut rng, &mut n);
        }
        assert_eq!(ends[0].held, ends[1].held, "the two ends differ");
        assert!(ends[0].s.idle() && ends[1].s.idle(), "still talking");
        assert!(wire.is_empty());
    }

    /// Found by the property test: a batch from the old life still in
    /// flight when the sender restarts must not count as held.
    #[test]
    fn a_batch_from_a_life_that_ended_is_not_delivered() {
        run(
            4067103747641524655,
            0.0,
            0.0,
            &[Step::Send(true, 0), Step::Wait(1), Step::Restart(true)],
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn a_link_pair_converges_and_goes_quiet_under_random_faults(
            seed in any::<u64>(),
            loss in 0.0f64..0.3,
            dup in 0.0f64..0.3,
            steps in proptest::collection::vec(step(), 1..60),
        ) {
            run(seed, loss, dup, &steps);
        }
    }
}
