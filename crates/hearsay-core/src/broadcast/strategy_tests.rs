//! Every strategy, end to end, on a small virtual-time network: delivery,
//! loss-freedom across partitions, silence once settled, determinism.

use super::*;
use crate::time::Instant;
use std::collections::BTreeSet;
use std::time::Duration;

/// Constant-latency network with cuttable links, driven in time order.
struct Net {
    nodes: Vec<Broadcast<u64>>,
    inflight: Vec<(Instant, u64, Peer, Peer, Wire<u64>)>,
    cut: BTreeSet<(Peer, Peer)>,
    now: Instant,
    sent: u64,
    seq: u64,
}

const LATENCY: Duration = Duration::from_millis(100);

impl Net {
    fn new(n: u32, cfg: &Config) -> Net {
        let members: Vec<Peer> = (0..n).map(Peer).collect();
        let nodes = members
            .iter()
            .map(|&p| Broadcast::new(cfg.clone(), p, members.clone()))
            .collect();
        Net {
            nodes,
            inflight: vec![],
            cut: BTreeSet::new(),
            now: Instant::ZERO,
            sent: 0,
            seq: 0,
        }
    }

    fn input(&mut self, at: Peer, input: Input<u64>) {
        let mut out = Outbox::default();
        self.nodes[at.0 as usize].handle(self.now, input, &mut out);
        for (to, m) in out.drain() {
            assert_ne!(to, at, "a node never sends to itself");
            self.sent += 1;
            self.seq += 1;
            // Round-trip through the codec, as a real shell does.
            let m: Wire<u64> = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
            self.inflight
                .push((self.now + LATENCY, self.seq, at, to, m));
        }
    }

    fn run_until(&mut self, until: Instant) {
        for _ in 0..10_000_000 {
            let next_msg = self.inflight.iter().map(|m| (m.0, m.1)).min();
            let next_timer = self.nodes.iter().filter_map(|n| n.next_deadline()).min();
            let t = match (next_msg, next_timer) {
                (Some((a, _)), Some(b)) => a.min(b),
                (Some((a, _)), None) => a,
                (None, Some(b)) => b,
                (None, None) => break,
            };
            if t > until {
                break;
            }
            self.now = self.now.max(t);
            if next_msg.is_some_and(|(a, _)| a == t) {
                let (_, seq) = next_msg.unwrap();
                let i = self.inflight.iter().position(|m| m.1 == seq).unwrap();
                let (_, _, from, to, msg) = self.inflight.remove(i);
                if !self.cut.contains(&(from, to)) {
                    self.input(to, Input::Receive { from, msg });
                }
            } else {
                let due: Vec<Peer> = (0..self.nodes.len() as u32)
                    .map(Peer)
                    .filter(|p| {
                        self.nodes[p.0 as usize]
                            .next_deadline()
                            .is_some_and(|d| d <= t)
                    })
                    .collect();
                for p in due {
                    self.input(p, Input::Tick);
                }
            }
        }
        self.now = self.now.max(until);
    }

    fn after(&mut self, d: Duration) {
        let t = self.now + d;
        self.run_until(t);
    }

    fn isolate(&mut self, group: &[u32]) {
        let n = self.nodes.len() as u32;
        for &a in group {
            for b in 0..n {
                if !group.contains(&b) {
                    self.cut.insert((Peer(a), Peer(b)));
                    self.cut.insert((Peer(b), Peer(a)));
                }
            }
        }
    }

    fn everyone_has(&self, values: impl IntoIterator<Item = u64> + Clone) -> bool {
        self.nodes
            .iter()
            .all(|n| values.clone().into_iter().all(|v| n.contains(&v)))
    }

    fn quiet(&self) -> bool {
        self.inflight.is_empty() && self.nodes.iter().all(|n| n.quiescent())
    }
}

fn configs() -> Vec<Config> {
    let mut out = Vec::new();
    for p in [Preset::Efficient, Preset::Latency] {
        for s in Strategy::ALL {
            let mut c = Config::preset(p).with_strategy(s);
            if s == Strategy::Flood {
                // No operator topology in these tests: flood over everyone.
                c.overlay = Overlay::Total;
            }
            out.push(c);
        }
    }
    out
}

fn name(c: &Config) -> String {
    format!("{} (batch {:?})", c.strategy, c.batch)
}

#[test]
fn every_strategy_delivers_everything_and_then_goes_quiet() {
    for cfg in configs() {
        let mut net = Net::new(9, &cfg);
        for v in 0..30u64 {
            net.input(Peer((v * 7 % 9) as u32), Input::Broadcast(v));
            net.after(Duration::from_millis(40));
        }
        net.after(Duration::from_secs(30));
        assert!(net.everyone_has(0..30), "{}: not delivered", name(&cfg));
        assert!(net.quiet(), "{}: still talking after settling", name(&cfg));
        let before = net.sent;
        net.after(Duration::from_secs(30));
        assert_eq!(net.sent, before, "{}: idle traffic", name(&cfg));
    }
}

#[test]
fn every_strategy_is_loss_free_across_partitions() {
    for cfg in configs() {
        for group in [vec![0u32], vec![1, 2, 3], vec![4, 5, 6, 7]] {
            let mut net = Net::new(9, &cfg);
            net.isolate(&group);
            for v in 0..20u64 {
                net.input(Peer((v % 9) as u32), Input::Broadcast(v));
                net.after(Duration::from_millis(150));
            }
            net.after(Duration::from_secs(10));
            assert!(
                !net.everyone_has(0..20),
                "{}: the partition must delay delivery",
                name(&cfg)
            );
            net.cut.clear();
            net.after(Duration::from_secs(30));
            assert!(
                net.everyone_has(0..20),
                "{}: lost values after healing {group:?}",
                name(&cfg)
            );
            net.after(Duration::from_secs(30));
            assert!(
                net.quiet(),
                "{}: still talking after healing {group:?}",
                name(&cfg)
            );
        }
    }
}

#[test]
fn runs_are_deterministic_given_the_seed() {
    for cfg in configs() {
        let run = |seed: u64| {
            let mut c = cfg.clone();
            c.seed = seed;
            let mut net = Net::new(9, &c);
            for v in 0..20u64 {
                net.input(Peer((v % 9) as u32), Input::Broadcast(v));
                net.after(Duration::from_millis(30));
            }
            net.after(Duration::from_secs(20));
            (
                net.sent,
                net.nodes
                    .iter()
                    .map(|n| n.values().copied().collect::<Vec<_>>())
                    .collect::<Vec<_>>(),
            )
        };
        assert_eq!(run(1), run(1), "{}", name(&cfg));
    }
}

#[test]
fn a_star_sends_one_message_per_hop_when_values_are_sparse() {
    // Values 1 s apart: no batching possible, so each value costs exactly
    // leaf->hub + hub->other leaves (1 + 3 = 4 data messages at n = 5);
    // acks ride on later data, except the final ones.
    let cfg = Config {
        overlay: Overlay::Star,
        ..Config::default()
    };
    let mut net = Net::new(5, &cfg);
    for v in 0..10u64 {
        net.input(Peer(1), Input::Broadcast(v));
        net.after(Duration::from_secs(1));
    }
    net.after(Duration::from_secs(10));
    let data: u64 = net.nodes.iter().map(|n| n.stats().data_sent).sum();
    assert_eq!(data, 10 * 4);
    assert!(net.everyone_has(0..10));
}

#[test]
fn direct_sends_each_value_once_per_peer_and_relays_tail_acks() {
    let n = 10u32;
    let cfg = Config::preset(Preset::Latency);
    let mut net = Net::new(n, &cfg);
    // Everyone broadcasts a few values, then the cluster goes idle.
    for v in 0..40u64 {
        net.input(Peer((v % n as u64) as u32), Input::Broadcast(v));
        net.after(Duration::from_millis(20));
    }
    net.after(Duration::from_secs(20));
    assert!(net.everyone_has(0..40));
    assert!(net.quiet());
    let data: u64 = net.nodes.iter().map(|n| n.stats().data_sent).sum();
    assert_eq!(
        data,
        40 * (n as u64 - 1),
        "one hop: the origin sends to each peer, nobody forwards"
    );
    // Per-link tail acks would cost about n*(n-1)/2 messages; through the
    // hub they cost about two per node (one ack bundle in, one out).
    let other = net.sent - data;
    assert!(other <= 2 * n as u64 + 2, "{other} non-data messages");
    let relayed: u64 = net.nodes.iter().map(|n| n.stats().acks_relayed).sum();
    assert!(relayed > 0);
}

#[test]
fn gossip_pushes_reach_most_nodes_before_anti_entropy_repairs() {
    let mut cfg = Config::preset(Preset::Efficient).with_strategy(Strategy::Gossip);
    cfg.ae_interval = Duration::from_secs(5);
    let mut net = Net::new(25, &cfg);
    net.input(Peer(3), Input::Broadcast(42));
    // Pushes only (anti-entropy rounds are 5 s apart): within 2 s most
    // nodes are infected.
    net.after(Duration::from_millis(2000));
    let infected = net.nodes.iter().filter(|n| n.contains(&42)).count();
    assert!(infected >= 15, "only {infected} of 25 infected by pushes");
    net.after(Duration::from_secs(60));
    assert!(net.everyone_has([42]));
}
