//! The broadcast engine: learns values, routes them over the overlay and
//! drives one [`Link`] per neighbour.

use super::link::{Link, PollReport};
use super::{Config, Message, Peer, overlay};
use crate::time::Instant;
use std::collections::{BTreeMap, BTreeSet};

/// One input to the engine.
#[derive(Clone, Debug)]
pub enum Input<V> {
    /// A client asked this node to broadcast `V`.
    Broadcast(V),
    /// A message from another node.
    Receive { from: Peer, msg: Message<V> },
    /// Time passed (the shell's timer for `next_deadline` fired).
    Tick,
}

/// Messages to send, appended by `handle`; the shell drains it.
#[derive(Debug)]
pub struct Outbox<V>(Vec<(Peer, Message<V>)>);

impl<V> Default for Outbox<V> {
    fn default() -> Self {
        Outbox(Vec::new())
    }
}

impl<V> Outbox<V> {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn iter(&self) -> impl Iterator<Item = &(Peer, Message<V>)> {
        self.0.iter()
    }
    pub fn drain(&mut self) -> impl Iterator<Item = (Peer, Message<V>)> + '_ {
        self.0.drain(..)
    }
}

/// Counters, for logs and metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub broadcasts: u64,
    pub learned: u64,
    pub duplicates: u64,
    pub data_sent: u64,
    pub acks_sent: u64,
    pub retransmits: u64,
    pub values_sent: u64,
    pub from_strangers: u64,
}

#[derive(Debug)]
pub struct Broadcast<V> {
    cfg: Config,
    me: Peer,
    members: Vec<Peer>,
    topology: Option<BTreeMap<Peer, Vec<Peer>>>,
    neighbours: Vec<Peer>,
    known: BTreeSet<V>,
    log: Vec<V>,
    links: BTreeMap<Peer, Link<V>>,
    stats: Stats,
}

impl<V: Ord + Clone> Broadcast<V> {
    /// `members` is the full, agreed membership including `me`.
    pub fn new(cfg: Config, me: Peer, members: Vec<Peer>) -> Self {
        let mut b = Broadcast {
            cfg,
            me,
            members,
            topology: None,
            neighbours: Vec::new(),
            known: BTreeSet::new(),
            log: Vec::new(),
            links: BTreeMap::new(),
            stats: Stats::default(),
        };
        b.reroute();
        b
    }

    /// The operator's suggested topology; only the `topology` and
    /// `spanning-tree` overlays use it.
    pub fn set_topology(&mut self, topology: BTreeMap<Peer, Vec<Peer>>) {
        self.topology = Some(topology);
        self.reroute();
    }

    fn reroute(&mut self) {
        let next = overlay::neighbours(
            self.cfg.overlay,
            self.me,
            &self.members,
            self.topology.as_ref(),
        );
        // A neighbour we did not have before gets everything we know: it
        // cannot have learned it through us.
        for n in &next {
            if !self.neighbours.contains(n) {
                let link = self.links.entry(*n).or_insert_with(|| Link::new(&self.cfg));
                for v in &self.known {
                    link.enqueue(v.clone());
                }
            }
        }
        self.neighbours = next;
    }

    pub fn handle(&mut self, now: Instant, input: Input<V>, out: &mut Outbox<V>) {
        match input {
            Input::Broadcast(v) => {
                self.stats.broadcasts += 1;
                self.learn(v, None);
            }
            Input::Receive { from, msg } => self.receive(now, from, msg),
            Input::Tick => {}
        }
        self.flush(now, out);
    }

    fn receive(&mut self, now: Instant, from: Peer, msg: Message<V>) {
        if from == self.me {
            return;
        }
        if !self.neighbours.contains(&from) {
            // Still ack and learn: the sender may route differently (another
            // overlay, or a topology we have not received yet).
            self.stats.from_strangers += 1;
        }
        let cfg = &self.cfg;
        let link = self.links.entry(from).or_insert_with(|| Link::new(cfg));
        link.receive(now, cfg, &msg);
        for v in &msg.values {
            link.forget(v);
        }
        for v in msg.values {
            self.learn(v, Some(from));
        }
    }

    fn learn(&mut self, v: V, from: Option<Peer>) {
        if !self.known.insert(v.clone()) {
            self.stats.duplicates += 1;
            return;
        }
        self.stats.learned += 1;
        for n in &self.neighbours {
            if Some(*n) != from {
                self.links
                    .entry(*n)
                    .or_insert_with(|| Link::new(&self.cfg))
                    .enqueue(v.clone());
            }
        }
        self.log.push(v);
    }

    fn flush(&mut self, now: Instant, out: &mut Outbox<V>) {
        let mut msgs = Vec::new();
        for (peer, link) in &mut self.links {
            if link.deadline(&self.cfg).is_none_or(|t| t > now) {
                continue;
            }
            let PollReport {
                data,
                acks,
                retransmits,
                values,
            } = link.poll(now, &self.cfg, &mut msgs);
            self.stats.data_sent += data;
            self.stats.acks_sent += acks;
            self.stats.retransmits += retransmits;
            self.stats.values_sent += values;
            out.0.extend(msgs.drain(..).map(|m| (*peer, m)));
        }
    }

    /// When the shell must call `handle(_, Input::Tick, _)` next.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.links
            .values()
            .filter_map(|l| l.deadline(&self.cfg))
            .min()
    }

    /// Every value known here, in the order it was learned.
    pub fn values(&self) -> &[V] {
        &self.log
    }

    pub fn contains(&self, v: &V) -> bool {
        self.known.contains(v)
    }

    pub fn neighbours(&self) -> &[Peer] {
        &self.neighbours
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// True when nothing is queued, unacknowledged or owed on any link.
    pub fn quiescent(&self) -> bool {
        self.links.values().all(Link::idle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broadcast::Overlay;
    use std::time::Duration;

    /// A tiny lossless-or-partitioned network with constant latency, driven
    /// in virtual time: enough to check the engine end to end.
    struct Net {
        nodes: Vec<Broadcast<u64>>,
        inflight: Vec<(Instant, Peer, Peer, Message<u64>)>,
        cut: BTreeSet<(Peer, Peer)>,
        latency: Duration,
        now: Instant,
        sent: u64,
    }

    impl Net {
        fn new(n: u32, cfg: Config) -> Net {
            let members: Vec<Peer> = (0..n).map(Peer).collect();
            Net {
                nodes: members
                    .iter()
                    .map(|&p| Broadcast::new(cfg.clone(), p, members.clone()))
                    .collect(),
                inflight: vec![],
                cut: BTreeSet::new(),
                latency: Duration::from_millis(100),
                now: Instant::ZERO,
                sent: 0,
            }
        }

        fn input(&mut self, at: Peer, input: Input<u64>) {
            let mut out = Outbox::default();
            self.nodes[at.0 as usize].handle(self.now, input, &mut out);
            for (to, m) in out.drain() {
                self.sent += 1;
                self.inflight.push((self.now + self.latency, at, to, m));
            }
        }

        /// Runs until `until`, delivering messages and firing timers in time order.
        fn run_until(&mut self, until: Instant) {
            loop {
                let next_msg = self.inflight.iter().map(|m| m.0).min();
                let next_timer = self.nodes.iter().filter_map(|n| n.next_deadline()).min();
                let Some(t) = [next_msg, next_timer].into_iter().flatten().min() else {
                    break;
                };
                if t > until {
                    break;
                }
                self.now = self.now.max(t);
                if next_msg == Some(t) {
                    let i = self.inflight.iter().position(|m| m.0 == t).unwrap();
                    let (_, from, to, msg) = self.inflight.remove(i);
                    if !self.cut.contains(&(from, to)) {
                        self.input(to, Input::Receive { from, msg });
                    }
                } else {
                    let due: Vec<Peer> = self
                        .nodes
                        .iter()
                        .filter(|n| n.next_deadline().is_some_and(|d| d <= t))
                        .map(|n| n.me)
                        .collect();
                    for p in due {
                        self.input(p, Input::Tick);
                    }
                }
            }
            self.now = self.now.max(until);
        }

        fn isolate(&mut self, p: Peer) {
            for q in 0..self.nodes.len() as u32 {
                self.cut.insert((p, Peer(q)));
                self.cut.insert((Peer(q), p));
            }
        }
    }

    fn all_know(net: &Net, v: u64) -> bool {
        net.nodes.iter().all(|n| n.contains(&v))
    }

    #[test]
    fn star_delivers_everything_and_goes_quiet() {
        let mut net = Net::new(5, Config::default());
        for v in 0..20u64 {
            net.input(Peer((v % 5) as u32), Input::Broadcast(v));
            let t = net.now + Duration::from_millis(50);
            net.run_until(t);
        }
        net.run_until(net.now + Duration::from_secs(10));
        assert!((0..20).all(|v| all_know(&net, v)));
        assert!(
            net.nodes.iter().all(|n| n.quiescent()),
            "no traffic once everything is acked"
        );
        assert_eq!(
            net.nodes.iter().filter_map(|n| n.next_deadline()).count(),
            0
        );
    }

    #[test]
    fn values_cross_a_healed_partition_of_the_hub() {
        for overlay in [Overlay::Star, Overlay::Tree { fanout: 2 }, Overlay::Total] {
            let cfg = Config {
                overlay,
                ..Config::default()
            };
            let mut net = Net::new(7, cfg);
            net.isolate(Peer(0));
            for v in 0..10u64 {
                net.input(Peer(1 + (v % 6) as u32), Input::Broadcast(v));
                net.run_until(net.now + Duration::from_millis(300));
            }
            net.run_until(net.now + Duration::from_secs(20));
            assert!(
                !all_know(&net, 3),
                "{overlay}: partition must delay delivery"
            );
            net.cut.clear();
            net.run_until(net.now + Duration::from_secs(20));
            assert!(
                (0..10).all(|v| all_know(&net, v)),
                "{overlay}: lost values after heal"
            );
            assert!(net.nodes.iter().all(|n| n.quiescent()));
        }
    }

    #[test]
    fn a_star_sends_one_message_per_hop_when_values_are_sparse() {
        // Values 1 s apart: no batching possible, so each value costs exactly
        // leaf->hub + hub->other leaves (3 + 1 = 4 data messages at n = 5);
        // acks ride on later data, except the final ones.
        let cfg = Config {
            overlay: Overlay::Star,
            ..Config::default()
        };
        let mut net = Net::new(5, cfg);
        for v in 0..10u64 {
            net.input(Peer(1), Input::Broadcast(v));
            net.run_until(net.now + Duration::from_secs(1));
        }
        net.run_until(net.now + Duration::from_secs(10));
        let data: u64 = net.nodes.iter().map(|n| n.stats().data_sent).sum();
        assert_eq!(data, 10 * 4);
        assert!((0..10).all(|v| all_know(&net, v)));
    }
}
