//! Reliable links: one batched, acknowledged [`Session`] per peer and lane,
//! added as the strategy first sends to a member, reset when the member
//! comes back in a new life, removed when it leaves the view.
//!
//! With `ack_via_hub`, a bare ack (one that found no data to ride on) is not
//! sent to its data sender; each node bundles the acks it owes into one
//! `AckVia` message to the hub (the top-ranked member), and the hub
//! forwards them, bundled per sender, after `relay_window`. At the end of a
//! burst that turns one message per link (N*(N-1)) into about two per node.
//! A receiver that sees a batch twice concludes its acks are not getting
//! through and acks that link directly. Relayed acks name the epochs they
//! belong to, so an ack for a previous life of either end is ignored.

mod config;
mod session;

pub use crate::wire::link::{Lane, LinkMsg, RelayedAck, ViaAck};
pub use config::LinkConfig;
pub(crate) use session::Session;

use crate::id::{Epoch, NodeId};
use crate::membership::View;
use crate::outbox::Outbox;
use crate::stats::Stats;
use crate::time::Instant;
use crate::wire::Msg;
use session::{Batch, PollReport};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

#[derive(Debug)]
pub(crate) struct Links<V> {
    map: BTreeMap<(NodeId, Lane), Session<V>>,
    /// Where relayed acks go, if this node relays through a hub.
    relay: Option<NodeId>,
    /// At the hub: acks to forward, per data sender, one per receiver.
    forward: BTreeMap<NodeId, BTreeMap<NodeId, (Epoch, Epoch, u64)>>,
    forward_at: Option<Instant>,
    /// The gap on a link to a single node (adaptive, set by the node).
    pace: Duration,
    /// On tree overlays: nodes reached through each neighbour.
    reach: BTreeMap<NodeId, usize>,
    /// Every session's deadline as last computed, by session and by time.
    /// A session's deadline moves only when it is touched (it is then
    /// marked dirty) or when the pace or the reach change (then all are
    /// recomputed): a poll visits the due and the touched sessions, not
    /// every session, and the next deadline is the first entry.
    at: BTreeMap<(NodeId, Lane), Instant>,
    due: BTreeSet<(Instant, NodeId, Lane)>,
    dirty: BTreeSet<(NodeId, Lane)>,
    rescan: bool,
    /// Values not queued for a stalled, full link (see
    /// [`session::STALLED_BYTES`]).
    dropped: u64,
    /// Links that overflowed while stalled and are acknowledged again.
    recovered: Vec<(NodeId, Lane)>,
    /// Where the numbering of removed sessions had got to, so a session
    /// made again for the same peer goes on from there
    /// ([`Session::continuing`]); at most [`MAX_RETIRED`].
    retired: BTreeMap<(NodeId, Lane), u64>,
}

/// Removed sessions whose numbering is remembered, at most (past it, an
/// arbitrary one is forgotten: a peer removed and back after that many
/// others is numbered from 1 again, as before this was remembered).
const MAX_RETIRED: usize = 65_536;

impl<V: crate::value::Value> Links<V> {
    pub fn new(relay: Option<NodeId>) -> Self {
        Links {
            map: BTreeMap::new(),
            relay,
            forward: BTreeMap::new(),
            forward_at: None,
            pace: Duration::ZERO,
            reach: BTreeMap::new(),
            at: BTreeMap::new(),
            due: BTreeSet::new(),
            dirty: BTreeSet::new(),
            rescan: false,
            dropped: 0,
            recovered: Vec::new(),
            retired: BTreeMap::new(),
        }
    }

    pub fn set_relay(&mut self, relay: Option<NodeId>) {
        self.relay = relay;
    }

    pub fn set_pace(&mut self, pace: Duration) {
        if pace != self.pace {
            self.pace = pace;
            self.rescan = true;
        }
    }

    /// The current gap on a link to a single node (adaptive batching).
    pub fn pace(&self) -> Duration {
        self.pace
    }

    pub fn set_reach(&mut self, reach: BTreeMap<NodeId, usize>) {
        if reach != self.reach {
            self.reach = reach;
            self.rescan = true;
        }
    }

    /// The gap between data messages on the link to `peer`: the pace,
    /// shortened by sqrt(reach) on tree links that feed many nodes.
    fn gap(pace: Duration, reach: &BTreeMap<NodeId, usize>, peer: &NodeId, lane: Lane) -> Duration {
        match lane {
            Lane::Eager => {
                let r = reach.get(peer).copied().unwrap_or(1).max(1) as f64;
                pace.div_f64(r.sqrt())
            }
            // Announcements can wait: they only matter if the eager path fails.
            Lane::Lazy => (pace * 4).max(Duration::from_millis(100)),
        }
    }

    fn session(&mut self, cfg: &LinkConfig, peer: &NodeId, lane: Lane) -> &mut Session<V> {
        let key = (peer.clone(), lane);
        if !self.dirty.contains(&key) {
            self.dirty.insert(key.clone());
        }
        let retired = &mut self.retired;
        self.map
            .entry(key)
            .or_insert_with_key(|key| match retired.remove(key) {
                Some(next) => Session::continuing(cfg, next),
                None => Session::new(cfg),
            })
    }

    pub fn enqueue(&mut self, cfg: &LinkConfig, peer: &NodeId, lane: Lane, v: V) {
        if !self.session(cfg, peer, lane).enqueue(v) {
            self.dropped += 1;
        }
    }

    /// Values not queued for stalled, full links so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Links that overflowed while stalled and have been acknowledged
    /// since: each should get what the node holds.
    pub fn take_recovered(&mut self) -> Vec<(NodeId, Lane)> {
        std::mem::take(&mut self.recovered)
    }

    fn note_recovered(&mut self, peer: &NodeId, lane: Lane) {
        if let Some(s) = self.map.get_mut(&(peer.clone(), lane))
            && s.take_recovered()
        {
            self.recovered.push((peer.clone(), lane));
        }
    }

    /// Applies an incoming batch's header; returns whether the batch is new.
    /// Values the sender just sent us need not go back to it.
    #[allow(clippy::too_many_arguments)]
    pub fn receive(
        &mut self,
        now: Instant,
        cfg: &LinkConfig,
        from: &NodeId,
        lane: Lane,
        seq: Option<u64>,
        base: u64,
        ack: u64,
        values: &[V],
        probe: bool,
    ) -> bool {
        let s = self.session(cfg, from, lane);
        let bytes = values.iter().map(V::size).sum();
        let fresh = s.receive(now, cfg, seq, base, ack, probe, bytes);
        for v in values {
            s.forget(v);
        }
        self.note_recovered(from, lane);
        fresh
    }

    /// Value bytes held until neighbours acknowledge them, over every link.
    pub fn held_bytes(&self) -> usize {
        self.map.values().map(Session::held_bytes).sum()
    }

    /// Value bytes held for neighbours that are taking data: what a
    /// sender should slow down for. A stalled link (see
    /// [`session::STALL`]) is left out: it holds a bounded amount of its
    /// own, and one such neighbour must not stop every broadcast.
    pub fn backlog_bytes(&self) -> usize {
        self.map
            .values()
            .filter(|s| !s.stalled())
            .map(Session::held_bytes)
            .sum()
    }

    /// Greets the peer reliably by `at` (see [`Session::greet`]).
    pub fn greet(&mut self, at: Instant, cfg: &LinkConfig, peer: &NodeId) {
        self.session(cfg, peer, Lane::Eager).greet(at);
    }

    /// The peer addressed our previous life: owe it a bare message that
    /// carries this life's epoch, so it resets its side (it keeps resending
    /// until it does, so this need not be reliable itself).
    pub fn owe_hello(&mut self, now: Instant, cfg: &LinkConfig, peer: &NodeId) {
        self.session(cfg, peer, Lane::Eager).owe_ack(now);
    }

    /// The peer is back in a new life: restart its sessions.
    pub fn reset_peer(&mut self, cfg: &LinkConfig, peer: &NodeId) {
        for lane in [Lane::Eager, Lane::Lazy] {
            if let Some(s) = self.map.get_mut(&(peer.clone(), lane)) {
                s.reset(cfg);
                self.dirty.insert((peer.clone(), lane));
            }
        }
        self.forward.remove(peer);
        for acks in self.forward.values_mut() {
            acks.remove(peer);
        }
    }

    /// The peer left the view: nothing more goes to it.
    pub fn remove_peer(&mut self, peer: &NodeId) {
        for lane in [Lane::Eager, Lane::Lazy] {
            let key = (peer.clone(), lane);
            if let Some(s) = self.map.remove(&key) {
                if self.retired.len() >= MAX_RETIRED {
                    self.retired.pop_first();
                }
                self.retired.insert(key.clone(), s.next_seq());
            }
            self.dirty.remove(&key);
            self.reindex(&key, None);
        }
        self.forward.remove(peer);
        for acks in self.forward.values_mut() {
            acks.remove(peer);
        }
        self.reach.remove(peer);
    }

    /// At the hub: acks from receiver `from` (in epoch `from_epoch`) for
    /// data senders. Acks for senders outside the view are dropped.
    #[allow(clippy::too_many_arguments)]
    pub fn ack_via(
        &mut self,
        now: Instant,
        cfg: &LinkConfig,
        view: &View,
        my_epoch: Epoch,
        from: &NodeId,
        from_epoch: Epoch,
        acks: Vec<ViaAck>,
        stats: &mut Stats,
    ) {
        for ViaAck(sender, sender_epoch, ack) in acks {
            if sender == *view.me() {
                if sender_epoch == my_epoch
                    && let Some(s) = self.map.get_mut(&(from.clone(), Lane::Eager))
                {
                    s.ack(now, cfg, ack);
                    self.dirty.insert((from.clone(), Lane::Eager));
                    self.note_recovered(from, Lane::Eager);
                }
            } else if view.contains(&sender) && sender != *from {
                self.forward
                    .entry(sender)
                    .or_default()
                    .insert(from.clone(), (from_epoch, sender_epoch, ack));
            } else {
                stats.ignored += 1;
            }
        }
        if !self.forward.is_empty() {
            self.forward_at.get_or_insert(now + cfg.relay_window());
        }
    }

    /// At a data sender: acks relayed from receivers. Only sessions that
    /// exist, in the epochs both ends are in now, take them.
    pub fn ack_relay(
        &mut self,
        now: Instant,
        cfg: &LinkConfig,
        view: &View,
        my_epoch: Epoch,
        acks: Vec<RelayedAck>,
        stats: &mut Stats,
    ) {
        for RelayedAck(receiver, receiver_epoch, sender_epoch, ack) in acks {
            // A receiver we never heard from directly (its acks all came
            // through the hub) has no known epoch yet: its ack for our
            // current life is good.
            let current = sender_epoch == my_epoch
                && view
                    .epoch(&receiver)
                    .is_some_and(|e| e == receiver_epoch || !e.is_known());
            match self.map.get_mut(&(receiver.clone(), Lane::Eager)) {
                Some(s) if current => {
                    s.ack(now, cfg, ack);
                    self.note_recovered(&receiver, Lane::Eager);
                    self.dirty.insert((receiver, Lane::Eager));
                }
                _ => stats.ignored += 1,
            }
        }
    }

    /// Sends whatever is due on every session.
    pub fn poll(
        &mut self,
        now: Instant,
        cfg: &LinkConfig,
        view: &View,
        out: &mut Outbox<Msg<V>>,
        stats: &mut Stats,
    ) {
        let me = view.me();
        let mut batches: Vec<Batch<V>> = Vec::new();
        let mut via: Vec<(NodeId, u64)> = Vec::new();
        if std::mem::take(&mut self.rescan) {
            self.dirty.extend(self.map.keys().cloned());
        }
        // Due and touched sessions, in session order (as a scan of all
        // would visit them).
        let mut touched = std::mem::take(&mut self.dirty);
        touched.extend(
            self.due
                .iter()
                .take_while(|(t, ..)| *t <= now)
                .map(|(_, p, l)| (p.clone(), *l)),
        );
        for key in &touched {
            let Some(session) = self.map.get_mut(key) else {
                self.reindex(key, None);
                continue;
            };
            let (peer, lane) = key;
            let gap = Self::gap(self.pace, &self.reach, peer, *lane);
            let d = session.deadline(cfg, gap);
            if d.is_none_or(|t| t > now) {
                self.reindex(key, d);
                continue;
            }
            let direct = session.wants_direct_ack();
            let PollReport {
                data,
                acks,
                retransmits,
                values,
                greetings,
                probes,
                dropped,
            } = session.poll(now, cfg, gap, &mut batches);
            self.dropped += dropped;
            stats.greetings += greetings;
            stats.probes += probes;
            stats.data_sent += data;
            stats.retransmits += retransmits;
            stats.values_sent += values;
            stats.acks_sent += acks;
            let d = session.deadline(cfg, gap);
            for b in batches.drain(..) {
                let relayed = self.relay.is_some()
                    && b.seq.is_none()
                    && !b.probe
                    && lane.is_eager()
                    && !direct;
                if relayed {
                    via.push((peer.clone(), b.ack));
                } else {
                    out.push(
                        peer.clone(),
                        Msg::Link(LinkMsg::Data {
                            lane: *lane,
                            seq: b.seq,
                            base: b.base,
                            ack: b.ack,
                            values: b.values,
                            probe: b.probe,
                        }),
                    );
                }
            }
            self.reindex(key, d);
        }
        if let (Some(hub), false) = (self.relay.clone(), via.is_empty()) {
            // One ack is due: send every ack this node owes along with it.
            for ((peer, lane), session) in &mut self.map {
                if lane.is_eager()
                    && let Some(ack) = session.take_owed_ack()
                {
                    via.push((peer.clone(), ack));
                }
            }
            self.reindex_eager(cfg);
            stats.acks_relayed += via.len() as u64;
            let epoch = |p: &NodeId| view.epoch(p).unwrap_or_default();
            if hub == *me {
                // The hub's own acks ride on the relay messages it sends anyway.
                let mine = view.epoch(me).unwrap_or_default();
                for (peer, ack) in via {
                    let e = epoch(&peer);
                    self.forward
                        .entry(peer)
                        .or_default()
                        .insert(me.clone(), (mine, e, ack));
                }
                self.forward_at.get_or_insert(now + cfg.relay_window());
            } else {
                let k = via
                    .into_iter()
                    .map(|(p, ack)| ViaAck(p.clone(), epoch(&p), ack))
                    .collect();
                out.push(hub, Msg::Link(LinkMsg::AckVia { k }));
            }
        }
        if self.forward_at.is_some_and(|t| t <= now) {
            self.forward_at = None;
            if self.relay.as_ref() == Some(me) {
                let mine = view.epoch(me).unwrap_or_default();
                for ((peer, lane), session) in &mut self.map {
                    if lane.is_eager()
                        && let Some(ack) = session.take_owed_ack()
                    {
                        let e = view.epoch(peer).unwrap_or_default();
                        self.forward
                            .entry(peer.clone())
                            .or_default()
                            .insert(me.clone(), (mine, e, ack));
                    }
                }
                self.reindex_eager(cfg);
            }
            for (sender, acks) in std::mem::take(&mut self.forward) {
                let k = acks
                    .into_iter()
                    .map(|(r, (re, se, ack))| RelayedAck(r, re, se, ack))
                    .collect();
                out.push(sender, Msg::Link(LinkMsg::AckRelay { k }));
            }
        }
    }

    pub fn deadline(&self, cfg: &LinkConfig) -> Option<Instant> {
        let stale = |key: &(NodeId, Lane)| {
            let s = self.map.get(key)?;
            s.deadline(cfg, Self::gap(self.pace, &self.reach, &key.0, key.1))
        };
        let indexed = self
            .due
            .iter()
            .find(|(_, p, l)| self.dirty.is_empty() || !self.dirty.contains(&(p.clone(), *l)))
            .map(|(t, ..)| *t);
        if self.rescan {
            return self
                .map
                .keys()
                .filter_map(stale)
                .chain(self.forward_at)
                .min();
        }
        // Touched since the last poll (none, after one).
        let touched = self.dirty.iter().filter_map(stale);
        touched.chain(indexed).chain(self.forward_at).min()
    }

    /// Re-reads every eager session's deadline (their owed acks were just
    /// taken, all at once, for the relay).
    fn reindex_eager(&mut self, cfg: &LinkConfig) {
        let eager: Vec<((NodeId, Lane), Option<Instant>)> = self
            .map
            .iter()
            .filter(|((_, lane), _)| lane.is_eager())
            .map(|((p, l), s)| {
                (
                    (p.clone(), *l),
                    s.deadline(cfg, Self::gap(self.pace, &self.reach, p, *l)),
                )
            })
            .collect();
        for (key, d) in eager {
            self.reindex(&key, d);
        }
    }

    /// Records a session's deadline in the index.
    fn reindex(&mut self, key: &(NodeId, Lane), deadline: Option<Instant>) {
        if let Some(old) = self.at.remove(key) {
            self.due.remove(&(old, key.0.clone(), key.1));
        }
        if let Some(t) = deadline {
            self.at.insert(key.clone(), t);
            self.due.insert((t, key.0.clone(), key.1));
        }
    }

    pub fn idle(&self) -> bool {
        self.forward.is_empty() && self.map.values().all(Session::idle)
    }

    /// Peers with a session (for tests and metrics).
    pub fn peers(&self) -> impl Iterator<Item = &NodeId> {
        self.map.keys().map(|(p, _)| p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::View;
    use crate::stats::Stats;

    /// The batches `links` sends to `to` now: (seq, base, ack, values).
    fn sent(
        links: &mut Links<u64>,
        now: Instant,
        cfg: &LinkConfig,
        view: &View,
    ) -> Vec<(Option<u64>, u64, u64, Vec<u64>)> {
        let mut out = Outbox::default();
        links.poll(now, cfg, view, &mut out, &mut Stats::default());
        out.drain()
            .filter_map(|(_, m)| match m {
                Msg::Link(LinkMsg::Data {
                    seq,
                    base,
                    ack,
                    values,
                    ..
                }) => Some((seq, base, ack, values)),
                _ => None,
            })
            .collect()
    }

    /// A peer removed from the view (declared dead) and back gets a new
    /// session here, but it may never have dropped its side: numbered from
    /// 1 again, the new batches were duplicates to it, acked by its old
    /// count, and one lost on the way was never resent (the simulator's
    /// 5-member soak, seed 59: two payloads never reached a live member).
    #[test]
    fn a_peer_removed_and_back_acks_nothing_it_did_not_get() {
        let cfg = LinkConfig::default();
        let (a, b) = (NodeId::new("a"), NodeId::new("b"));
        let va = View::new(a.clone(), [a.clone(), b.clone()]);
        let mut la: Links<u64> = Links::new(None);
        let mut lb: Links<u64> = Links::new(None);
        let mut t = Instant::ZERO;
        // Three batches a -> b, each received and acked.
        for v in 1..=3u64 {
            la.enqueue(&cfg, &b, Lane::Eager, v);
            for (seq, base, ack, values) in sent(&mut la, t, &cfg, &va) {
                lb.receive(t, &cfg, &a, Lane::Eager, seq, base, ack, &values, false);
            }
            t += Duration::from_secs(1);
        }
        // b is removed here (and back); b keeps its side.
        la.remove_peer(&b);
        la.enqueue(&cfg, &b, Lane::Eager, 4);
        let lost = sent(&mut la, t, &cfg, &va);
        assert_eq!(lost.len(), 1, "v4 goes, and is lost");
        t += Duration::from_secs(1);
        la.enqueue(&cfg, &b, Lane::Eager, 5);
        for (seq, base, ack, values) in sent(&mut la, t, &cfg, &va) {
            assert!(
                lb.receive(t, &cfg, &a, Lane::Eager, seq, base, ack, &values, false),
                "a new batch is new to b"
            );
        }
        // b's ack reaches a; v4 must still go again after the timeout.
        let vb = View::new(b.clone(), [a.clone(), b.clone()]);
        let t = t + cfg.ack_delay;
        let acks = sent(&mut lb, t, &cfg, &vb);
        assert!(!acks.is_empty(), "b acks");
        for (seq, base, ack, values) in acks {
            la.receive(t, &cfg, &b, Lane::Eager, seq, base, ack, &values, false);
        }
        let later = t + cfg.retransmit_max * 2;
        let resent: Vec<u64> = sent(&mut la, later, &cfg, &va)
            .into_iter()
            .flat_map(|(.., values)| values)
            .collect();
        assert!(resent.contains(&4), "v4 resent: {resent:?}");
    }
}
