//! A neighbour the membership calls alive but that takes no data (its
//! stream port blocked, say) must neither stop a member's broadcasts nor
//! make it hold every payload for that neighbour; and once the neighbour
//! acknowledges again it must get what it missed.

use hearsay_core::cluster::{MsgId, Payload};
use hearsay_core::dissemination::{Config, Preset, StrategyKind};
use hearsay_core::id::{Epoch, NodeId};
use hearsay_core::node::{Input, Node, Outbox};
use hearsay_core::time::Instant;
use hearsay_core::wire::Envelope;
use std::sync::Arc;
use std::time::Duration;

const KIB64: usize = 64 * 1024;

fn run(strategy: StrategyKind) {
    let names: Vec<NodeId> = ["a", "b", "c"].into_iter().map(NodeId::new).collect();
    let cfg = Config {
        strategy,
        ..Config::preset(Preset::Efficient)
    };
    let mut nodes: Vec<Node<Payload>> = names
        .iter()
        .enumerate()
        .map(|(i, n)| Node::new(cfg.clone(), n.clone(), Epoch(1), names.clone(), i as u64).unwrap())
        .collect();
    // One allocation shared by every payload: the test counts bytes, it
    // need not hold them.
    let data: Arc<[u8]> = vec![7u8; KIB64].into();
    let mut queue: Vec<(usize, NodeId, Envelope<Payload>)> = Vec::new();
    let step = Duration::from_millis(10);
    let mut now = Instant::ZERO;
    let mut sent = 0u64;
    let mut peak_backlog = 0usize;
    let mut peak_held = 0usize;
    // 40 s with c cut off, then 40 s healed.
    for tick in 0..8_000u64 {
        now += step;
        let cut = tick < 4_000;
        let mut out = Outbox::default();
        if cut && tick % 2 == 0 {
            sent += 1;
            let p = Payload {
                id: MsgId(names[0].clone(), Epoch(1), sent),
                data: data.clone(),
                event: None,
            };
            nodes[0].handle(now, Input::Broadcast(p), &mut out);
        } else {
            nodes[0].handle(now, Input::Tick, &mut out);
        }
        queue.extend(out.drain().map(|(to, m)| (0, to, m)));
        for (i, n) in nodes.iter_mut().enumerate().skip(1) {
            let mut out = Outbox::default();
            n.handle(now, Input::Tick, &mut out);
            queue.extend(out.drain().map(|(to, m)| (i, to, m)));
        }
        // Deliver until quiet (zero latency), dropping whatever goes to
        // or from c while it is cut off.
        let mut rounds = 0;
        while !queue.is_empty() {
            rounds += 1;
            assert!(rounds < 1_000, "no end to the exchange");
            for (from, to, env) in std::mem::take(&mut queue) {
                let j = names.iter().position(|n| *n == to).unwrap();
                if cut && (from == 2 || j == 2) {
                    continue;
                }
                let mut out = Outbox::default();
                let from = names[from].clone();
                nodes[j].handle(now, Input::Receive { from, env }, &mut out);
                queue.extend(out.drain().map(|(t, m)| (j, t, m)));
            }
        }
        // Past the stall (10 s), and a poll or two.
        if cut && tick >= 1_200 {
            peak_backlog = peak_backlog.max(nodes[0].backlog_bytes());
            peak_held = peak_held.max(nodes[0].unacked_bytes());
        }
    }
    let total = sent as usize * KIB64;
    assert_eq!(
        total,
        2_000 * KIB64,
        "125 MiB broadcast while c was cut off"
    );
    // Once c's link has stalled, the backlog is what is in flight to b
    // (which takes everything at once), not what c has not taken.
    assert!(
        peak_backlog < 2 * 1024 * 1024,
        "{strategy}: backlog peaked at {peak_backlog} bytes"
    );
    // What a holds for c stops at the stalled link's bound (plus what it
    // holds for b).
    assert!(
        peak_held <= 10 * 1024 * 1024,
        "{strategy}: a held {peak_held} bytes of {total}"
    );
    assert!(
        nodes[0].stats().stalled_dropped > 0,
        "the bound was reached"
    );
    for (i, n) in nodes.iter().enumerate() {
        assert_eq!(
            n.values().len(),
            sent as usize,
            "{strategy}: node {} holds {} of {sent} after the heal",
            names[i],
            n.values().len()
        );
    }
    assert!(
        nodes
            .iter()
            .map(|n| n.stats().stalled_recovered)
            .sum::<u64>()
            > 0
    );
    assert!(nodes[0].unacked_bytes() == 0, "all acknowledged at the end");
}

#[test]
fn a_neighbour_that_takes_no_data_neither_stops_nor_fills_a_member_tree() {
    run(StrategyKind::Tree);
}

#[test]
fn a_neighbour_that_takes_no_data_neither_stops_nor_fills_a_member_plumtree() {
    run(StrategyKind::Plumtree);
}
