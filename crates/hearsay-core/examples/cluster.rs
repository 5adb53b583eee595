//! Five members over SWIM, in memory and in virtual time: they join
//! through the first, spread values with plumtree, and when one crashes the
//! others see it die and keep spreading. The same `Node` runs Maelstrom's
//! fixed node list (`Node::new`) and the agent (through `ClusterNode`).
//!
//! `cargo run -p hearsay-core --example cluster`

use hearsay_core::dissemination::{Config, Preset, StrategyKind};
use hearsay_core::id::{Epoch, NodeId};
use hearsay_core::membership::{Event, Meta, Swim, SwimConfig, SwimPreset};
use hearsay_core::node::{Input, Node, Outbox};
use hearsay_core::time::Instant;
use hearsay_core::wire::Envelope;
use std::collections::BTreeMap;
use std::time::Duration;

/// Members and the messages between them (5 ms one way), in time order.
struct Net {
    names: Vec<NodeId>,
    members: Vec<Option<Node<u64, Swim>>>,
    wire: BTreeMap<(Instant, u64), (usize, Envelope<u64>, usize)>,
    seq: u64,
    now: Instant,
}

impl Net {
    /// Hands member `i` one input and puts what it sends on the wire.
    fn input(&mut self, i: usize, input: Input<u64>) {
        let Some(m) = self.members[i].as_mut() else {
            return;
        };
        let mut out = Outbox::default();
        m.handle(self.now, input, &mut out);
        for (to, env) in out.drain() {
            let to = self.names.iter().position(|n| *n == to).expect("a member");
            self.seq += 1;
            let at = self.now + Duration::from_millis(5);
            self.wire.insert((at, self.seq), (i, env, to));
        }
    }

    /// Runs until `until`: deliveries and timers, whichever comes first.
    fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        loop {
            let msg = self.wire.keys().next().map(|(t, _)| *t);
            let timer = self
                .members
                .iter()
                .flatten()
                .filter_map(Node::next_deadline)
                .min();
            let Some(t) = [msg, timer]
                .into_iter()
                .flatten()
                .min()
                .filter(|t| *t <= until)
            else {
                break;
            };
            self.now = self.now.max(t);
            if msg == Some(t) {
                let key = *self.wire.keys().next().expect("peeked");
                let (from, env, to) = self.wire.remove(&key).expect("peeked");
                let from = self.names[from].clone();
                self.input(to, Input::Receive { from, env });
            } else {
                let due: Vec<usize> = (0..self.members.len())
                    .filter(|&i| {
                        let m = self.members[i].as_ref();
                        m.and_then(Node::next_deadline).is_some_and(|d| d <= t)
                    })
                    .collect();
                for i in due {
                    self.input(i, Input::Tick);
                }
            }
        }
        self.now = until;
    }
}

fn main() {
    let names: Vec<NodeId> = (0..5).map(|i| NodeId::new(format!("m{i}"))).collect();
    let cfg = Config::preset(Preset::Latency)
        .with_strategy(StrategyKind::Plumtree)
        .for_cluster();
    let members = names
        .iter()
        .map(|me| {
            let swim = Swim::new(
                SwimConfig::preset(SwimPreset::Local),
                me.clone(),
                Epoch(1),
                Meta::default(),
                7,
            )
            .expect("a valid preset");
            let node = Node::with_membership(cfg.clone(), me.clone(), Epoch(1), [], swim, 7);
            Some(node.expect("a valid config"))
        })
        .collect();
    let mut net = Net {
        names: names.clone(),
        members,
        wire: BTreeMap::new(),
        seq: 0,
        now: Instant::ZERO,
    };
    for i in 1..5 {
        net.input(i, Input::Join(vec![names[0].clone()]));
    }
    net.run_for(Duration::from_secs(2));
    for m in net.members.iter().flatten() {
        println!("{} sees {} members", m.view().me(), m.view().len());
    }
    net.input(2, Input::Broadcast(42));
    net.run_for(Duration::from_secs(1));
    println!("m4 crashes at {}", net.now);
    net.members[4] = None;
    net.input(1, Input::Broadcast(43));
    net.run_for(Duration::from_secs(10));
    for m in net.members.iter_mut().flatten() {
        let died: Vec<String> = m
            .drain_events()
            .filter_map(|e| match e {
                Event::Died(id, _) => Some(id.to_string()),
                _ => None,
            })
            .collect();
        println!(
            "{} holds {:?}, saw {:?} die, sees {} members",
            m.view().me(),
            m.values().collect::<Vec<_>>(),
            died,
            m.view().len()
        );
    }
}
