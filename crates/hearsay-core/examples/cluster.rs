//! Five members over SWIM, in memory and in virtual time: they join
//! through the first, spread values with plumtree, and when one crashes the
//! others see it die and keep spreading. The same `Node` runs Maelstrom's
//! fixed node list (`Node::new`) and the agent (through `ClusterNode`).
//!
//! `cargo run -p hearsay-core --example cluster`

use hearsay_core::dissemination::{Config, Preset, StrategyKind};
use hearsay_core::id::{Epoch, NodeId};
use hearsay_core::membership::{Event, Meta, Swim, SwimConfig, SwimPreset};
use hearsay_core::node::{Input, Node};
use hearsay_core::rng;
use hearsay_core::simnet::{Faults, Latency, Network};
use std::time::Duration;

fn main() {
    let names: Vec<NodeId> = (0..5).map(|i| NodeId::new(format!("m{i}"))).collect();
    let cfg = Config::preset(Preset::Latency)
        .with_strategy(StrategyKind::Plumtree)
        .for_cluster();
    let members: Vec<Node<u64, Swim>> = names
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
            node.expect("a valid config")
        })
        .collect();
    // The simulation core: 5 ms one way, nothing lost, in virtual time.
    let faults = Faults::new(
        Latency::Constant(Duration::from_millis(5)),
        rng::child(7, "example"),
    );
    let mut net = Network::new(names.clone(), members, faults);
    let run_for = |net: &mut Network<Node<u64, Swim>>, d: Duration| {
        let until = net.now() + d;
        net.run_until(until, |_, _, _| {}).expect("time moves on");
    };
    let input = |net: &mut Network<Node<u64, Swim>>, i: usize, input: Input<u64>| {
        net.input(i, |m, now, out| m.handle(now, input, out));
    };
    for i in 1..5 {
        input(&mut net, i, Input::Join(vec![names[0].clone()]));
    }
    run_for(&mut net, Duration::from_secs(2));
    for m in net.nodes() {
        println!("{} sees {} members", m.view().me(), m.view().len());
    }
    input(&mut net, 2, Input::Broadcast(42));
    run_for(&mut net, Duration::from_secs(1));
    println!("m4 crashes at {}", net.now());
    net.crash(4);
    input(&mut net, 1, Input::Broadcast(43));
    run_for(&mut net, Duration::from_secs(10));
    for i in 0..4 {
        net.input(i, |m, _, _| {
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
        });
    }
}
