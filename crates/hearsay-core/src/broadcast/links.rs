//! All of a node's reliable links, and the ack relay.
//!
//! With `ack_via_hub`, a bare ack (one that found no data to ride on) is not
//! sent to its data sender; each node bundles the acks it owes into one
//! `AckVia` message to the hub (the first member), and the hub forwards
//! them, bundled per sender, after `relay_window`. At the end of a burst
//! that turns one message per link (N*(N-1)) into about two per node. A
//! receiver that sees a batch twice concludes its acks are not getting
//! through and acks that link directly.

use super::link::{Link, PollReport};
use super::{Config, Lane, Message, Peer, Wire};
use crate::broadcast::engine::{Outbox, Stats};
use crate::time::Instant;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug)]
pub(crate) struct Links<V> {
    map: BTreeMap<(Peer, Lane), Link<V>>,
    /// Where relayed acks go, if this node relays through a hub.
    relay: Option<Peer>,
    /// At the hub: acks to forward, per data sender: (receiver, ack).
    forward: BTreeMap<Peer, Vec<(Peer, u64)>>,
    forward_at: Option<Instant>,
    /// The gap on a link to a single node (adaptive, set by the engine).
    pace: Duration,
    /// On tree overlays: nodes reached through each neighbour.
    reach: BTreeMap<Peer, usize>,
}

impl<V: Ord + Clone> Links<V> {
    pub fn new(relay: Option<Peer>) -> Self {
        Links {
            map: BTreeMap::new(),
            relay,
            forward: BTreeMap::new(),
            forward_at: None,
            pace: Duration::ZERO,
            reach: BTreeMap::new(),
        }
    }

    pub fn set_pace(&mut self, pace: Duration) {
        self.pace = pace;
    }

    /// The current gap on a link to a single node (adaptive batching).
    pub fn pace(&self) -> Duration {
        self.pace
    }

    pub fn set_reach(&mut self, reach: BTreeMap<Peer, usize>) {
        self.reach = reach;
    }

    /// The gap between data messages on the link to `peer`: the pace,
    /// shortened by sqrt(reach) on tree links that feed many nodes.
    fn gap(pace: Duration, reach: &BTreeMap<Peer, usize>, peer: Peer, lane: Lane) -> Duration {
        match lane {
            Lane::Eager => {
                let r = reach.get(&peer).copied().unwrap_or(1).max(1) as f64;
                pace.div_f64(r.sqrt())
            }
            // Announcements can wait: they only matter if the eager path fails.
            Lane::Lazy => (pace * 4).max(Duration::from_millis(100)),
        }
    }

    fn link(&mut self, cfg: &Config, peer: Peer, lane: Lane) -> &mut Link<V> {
        self.map
            .entry((peer, lane))
            .or_insert_with(|| Link::new(cfg))
    }

    pub fn enqueue(&mut self, cfg: &Config, peer: Peer, lane: Lane, v: V) {
        self.link(cfg, peer, lane).enqueue(v);
    }

    /// Applies an incoming link message; returns whether it was a new batch.
    /// Values the sender just sent us need not go back to it.
    pub fn receive(
        &mut self,
        now: Instant,
        cfg: &Config,
        from: Peer,
        lane: Lane,
        msg: &Message<V>,
    ) -> bool {
        let link = self.link(cfg, from, lane);
        let fresh = link.receive(now, cfg, msg);
        for v in &msg.values {
            link.forget(v);
        }
        fresh
    }

    /// At the hub: acks from receiver `from` for data senders.
    pub fn ack_via(
        &mut self,
        now: Instant,
        cfg: &Config,
        me: Peer,
        from: Peer,
        acks: Vec<(Peer, u64)>,
    ) {
        for (sender, ack) in acks {
            if sender == me {
                self.link(cfg, from, Lane::Eager).ack(now, cfg, ack);
            } else {
                self.forward.entry(sender).or_default().push((from, ack));
            }
        }
        if !self.forward.is_empty() {
            self.forward_at.get_or_insert(now + cfg.relay_window());
        }
    }

    /// At a data sender: acks relayed from receivers.
    pub fn ack_relay(&mut self, now: Instant, cfg: &Config, acks: Vec<(Peer, u64)>) {
        for (receiver, ack) in acks {
            self.link(cfg, receiver, Lane::Eager).ack(now, cfg, ack);
        }
    }

    /// Sends whatever is due on every link.
    pub fn poll(
        &mut self,
        now: Instant,
        cfg: &Config,
        me: Peer,
        out: &mut Outbox<V>,
        stats: &mut Stats,
    ) {
        let mut msgs = Vec::new();
        let mut via = Vec::new();
        for (&(peer, lane), link) in &mut self.map {
            let batch = Self::gap(self.pace, &self.reach, peer, lane);
            if link.deadline(cfg, batch).is_none_or(|t| t > now) {
                continue;
            }
            let direct = link.wants_direct_ack();
            let PollReport {
                data,
                acks,
                retransmits,
                values,
            } = link.poll(now, cfg, batch, &mut msgs);
            stats.data_sent += data;
            stats.retransmits += retransmits;
            stats.values_sent += values;
            stats.acks_sent += acks;
            for msg in msgs.drain(..) {
                let relayed =
                    self.relay.is_some() && msg.seq.is_none() && lane == Lane::Eager && !direct;
                if relayed {
                    via.push((peer, msg.ack));
                } else {
                    out.push(peer, Wire::Link { lane, msg });
                }
            }
        }
        if let (Some(hub), false) = (self.relay, via.is_empty()) {
            // One ack is due: send every ack this node owes along with it.
            for (&(peer, lane), link) in &mut self.map {
                if lane == Lane::Eager
                    && let Some(ack) = link.take_owed_ack()
                {
                    via.push((peer, ack));
                }
            }
            stats.acks_relayed += via.len() as u64;
            if hub == me {
                // The hub's own acks ride on the relay messages it sends anyway.
                for (peer, ack) in via {
                    self.forward.entry(peer).or_default().push((me, ack));
                }
                self.forward_at.get_or_insert(now + cfg.relay_window());
            } else {
                out.push(hub, Wire::AckVia { k: via });
            }
        }
        if self.forward_at.is_some_and(|t| t <= now) {
            self.forward_at = None;
            if self.relay == Some(me) {
                for (&(peer, lane), link) in &mut self.map {
                    if lane == Lane::Eager
                        && let Some(ack) = link.take_owed_ack()
                    {
                        self.forward.entry(peer).or_default().push((me, ack));
                    }
                }
            }
            for (sender, acks) in std::mem::take(&mut self.forward) {
                out.push(sender, Wire::AckRelay { k: acks });
            }
        }
    }

    pub fn deadline(&self, cfg: &Config) -> Option<Instant> {
        let links = self.map.iter().filter_map(|(&(peer, lane), l)| {
            l.deadline(cfg, Self::gap(self.pace, &self.reach, peer, lane))
        });
        links.chain(self.forward_at).min()
    }

    pub fn idle(&self) -> bool {
        self.forward.is_empty() && self.map.values().all(Link::idle)
    }
}
