//! Cluster members end to end on a small virtual-time network: payloads
//! reach every live member, the tree forms, crashes and restarts lose
//! nothing for those that stay up, invariants hold after every input.

use super::*;
use crate::membership::Incarnation;
use crate::rng::RngExt;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

struct Net {
    names: Vec<NodeId>,
    nodes: Vec<Option<ClusterNode>>,
    epochs: Vec<u64>,
    queue: BTreeMap<(Instant, u64), (usize, usize, ClusterMsg)>,
    seq: u64,
    now: Instant,
    rng: Rng,
    /// payload -> members that delivered it
    got: BTreeMap<MsgId, BTreeSet<usize>>,
    cast_msgs: u64,
    kinds: BTreeMap<&'static str, u64>,
    /// (from, to) pairs whose messages are dropped: a partition.
    cut: BTreeSet<(usize, usize)>,
}

fn cfg() -> ClusterConfig {
    ClusterConfig::default()
}

impl Net {
    fn new(n: usize) -> Net {
        let names: Vec<NodeId> = (0..n).map(|i| NodeId::new(format!("c{i}"))).collect();
        let mut net = Net {
            nodes: Vec::new(),
            epochs: vec![1; n],
            names,
            queue: BTreeMap::new(),
            seq: 0,
            now: Instant::ZERO,
            rng: rng::child(9, "net"),
            got: BTreeMap::new(),
            cast_msgs: 0,
            kinds: BTreeMap::new(),
            cut: BTreeSet::new(),
        };
        for i in 0..n {
            let mut c = ClusterNode::new(
                cfg(),
                net.names[i].clone(),
                Epoch(1),
                Meta::default(),
                i as u64,
            )
            .unwrap();
            let others: Vec<_> = (0..n)
                .filter(|&j| j != i)
                .map(|j| {
                    (
                        net.names[j].clone(),
                        Incarnation::new(Epoch(1), 0),
                        Arc::new(Meta::default()),
                    )
                })
                .collect();
            let mut out = Outbox::default();
            c.bootstrap(Instant::ZERO, others, &mut out);
            net.nodes.push(Some(c));
            net.flush(i, &mut out);
        }
        net
    }

    fn flush(&mut self, from: usize, out: &mut Outbox<ClusterMsg>) {
        for (to, m) in out.drain() {
            let Some(to) = self.names.iter().position(|n| *n == to) else {
                continue;
            };
            if self.cut.contains(&(from, to)) {
                continue;
            }
            if let ClusterMsg::Cast(c) = &m {
                self.cast_msgs += 1;
                *self.kinds.entry(c.kind()).or_default() += 1;
            }
            if let ClusterMsg::View(v) = &m {
                *self
                    .kinds
                    .entry(match v {
                        ViewMsg::Neighbor { .. } => "nb",
                        ViewMsg::Accept => "ok",
                        ViewMsg::Refuse => "no",
                        ViewMsg::Disconnect => "bye",
                    })
                    .or_default() += 1;
            }
            let m: ClusterMsg = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
            self.seq += 1;
            let d = Duration::from_millis(5).mul_f64(1.0 + self.rng.random::<f64>());
            self.queue.insert((self.now + d, self.seq), (from, to, m));
        }
        if let Some(n) = self.nodes[from].as_mut() {
            n.check().unwrap_or_else(|e| panic!("c{from}: {e}"));
            for p in n.drain_delivered() {
                self.got.entry(p.id).or_default().insert(from);
            }
            n.drain_events().for_each(drop);
        }
    }

    fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        for _ in 0..10_000_000 {
            let msg = self.queue.keys().next().copied();
            let timer = (0..self.nodes.len())
                .filter_map(|i| Some((self.nodes[i].as_ref()?.next_deadline()?, i)))
                .min();
            let t = match (msg, timer) {
                (Some((a, _)), Some((b, _))) => a.min(b),
                (Some((a, _)), None) => a,
                (None, Some((b, _))) => b,
                (None, None) => break,
            };
            if t > until {
                break;
            }
            self.now = self.now.max(t);
            let mut out = Outbox::default();
            if let Some(k) = msg
                && k.0 == t
            {
                let (from, to, m) = self.queue.remove(&k).unwrap();
                let f = self.names[from].clone();
                if let Some(n) = self.nodes[to].as_mut() {
                    n.handle(self.now, &f, m, &mut out);
                }
                self.flush(to, &mut out);
            } else if let Some((_, i)) = timer {
                self.nodes[i].as_mut().unwrap().tick(self.now, &mut out);
                self.flush(i, &mut out);
            }
        }
        self.now = until;
    }

    fn broadcast(&mut self, i: usize) -> MsgId {
        let mut out = Outbox::default();
        let id = self.nodes[i]
            .as_mut()
            .unwrap()
            .broadcast(self.now, Arc::from(&b"hello"[..]), &mut out)
            .unwrap();
        self.flush(i, &mut out);
        id
    }

    fn live(&self) -> BTreeSet<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].is_some())
            .collect()
    }
}

#[test]
fn payloads_reach_every_member_and_the_tree_forms() {
    let mut net = Net::new(30);
    net.run_for(Duration::from_secs(3));
    // Neighbourhoods are symmetric.
    for i in 0..30 {
        let n = net.nodes[i].as_ref().unwrap();
        assert!(n.neighbours().count() >= 2, "c{i} has too few neighbours");
        for nb in n.neighbours() {
            let j = net.names.iter().position(|x| x == nb).unwrap();
            assert!(
                net.nodes[j]
                    .as_ref()
                    .unwrap()
                    .neighbours()
                    .any(|x| *x == net.names[i]),
                "c{i} -> c{j} one-way"
            );
        }
    }
    let mut ids = Vec::new();
    for k in 0..40 {
        ids.push(net.broadcast(k % 30));
        net.run_for(Duration::from_millis(200));
    }
    net.run_for(Duration::from_secs(10));
    for id in &ids {
        assert_eq!(
            net.got[id].len(),
            30,
            "{id:?} reached {}",
            net.got[id].len()
        );
    }
    // On the tree, a payload costs one eager message per member, plus the
    // batched announcements (at this low rate, relatively many).
    let before = net.cast_msgs;
    net.kinds.clear();
    for k in 0..20 {
        net.broadcast(k % 30);
        net.run_for(Duration::from_millis(200));
    }
    net.run_for(Duration::from_secs(10));
    let per = (net.cast_msgs - before) as f64 / 20.0 / 30.0;
    assert!(
        per < 1.5,
        "{per:.2} broadcast messages per member per payload: {:?}",
        net.kinds
    );
}

#[test]
fn crashes_and_restarts_lose_nothing_for_members_that_stay_up() {
    let mut net = Net::new(25);
    net.run_for(Duration::from_secs(3));
    let mut ids = Vec::new();
    for k in 0..60 {
        if k == 10 {
            net.nodes[3] = None;
            net.nodes[7] = None;
        }
        if k == 40 {
            // c3 comes back in a new life through c0.
            net.epochs[3] += 1;
            let mut c =
                ClusterNode::new(cfg(), net.names[3].clone(), Epoch(2), Meta::default(), 99)
                    .unwrap();
            let mut out = Outbox::default();
            c.join(net.now, &[net.names[0].clone()], &mut out);
            net.nodes[3] = Some(c);
            net.flush(3, &mut out);
        }
        let from = (k * 7) % 25;
        if net.nodes[from].is_some() {
            ids.push((net.now, net.broadcast(from)));
        }
        net.run_for(Duration::from_millis(250));
    }
    net.run_for(Duration::from_secs(20));
    let stayed: BTreeSet<usize> = net.live().into_iter().filter(|&i| i != 3).collect();
    for (_, id) in &ids {
        let missing: Vec<_> = stayed.difference(&net.got[id]).collect();
        assert!(missing.is_empty(), "{id:?} missing at {missing:?}");
    }
    // The restarted member gets what was broadcast after it rejoined.
    let late = ids
        .iter()
        .filter(|(t, _)| *t > Instant::ZERO + Duration::from_secs(3 + 12))
        .count();
    let got_late = ids
        .iter()
        .filter(|(t, id)| {
            *t > Instant::ZERO + Duration::from_secs(3 + 12) && net.got[id].contains(&3)
        })
        .count();
    assert_eq!(got_late, late);
}

#[test]
fn a_partition_that_heals_just_after_each_side_broadcasts_is_repaired_in_seconds() {
    let mut net = Net::new(6);
    net.run_for(Duration::from_secs(3));
    let (left, right) = ([0, 1, 2], [3, 4, 5]);
    for a in left {
        for b in right {
            net.cut.insert((a, b));
            net.cut.insert((b, a));
        }
    }
    // Long enough for each side to declare the other dead.
    net.run_for(Duration::from_secs(20));
    let sees_dead = |net: &Net, i: usize, j: usize| {
        net.nodes[i]
            .as_ref()
            .unwrap()
            .swim()
            .status_of(&net.names[j])
            .is_some_and(|(_, s)| s == crate::membership::Status::Dead)
    };
    assert!(
        left.iter()
            .all(|&i| right.iter().all(|&j| sees_dead(&net, i, j)))
    );
    let (l, r) = (net.broadcast(0), net.broadcast(4));
    net.run_for(Duration::from_millis(200));
    assert_eq!(net.got[&l], BTreeSet::from(left), "the cut holds");
    net.cut.clear();
    // The payloads are younger than the digest's settle time when the
    // sides meet again: the digest announces them, and the graft that
    // follows fetches them, well before the next anti-entropy round.
    net.run_for(Duration::from_secs(4));
    let all: BTreeSet<usize> = (0..6).collect();
    assert_eq!(net.got[&l], all, "the left's payload everywhere");
    assert_eq!(net.got[&r], all, "the right's payload everywhere");
}

#[test]
fn oversized_payloads_are_refused_and_a_quiet_cluster_is_silent() {
    let mut net = Net::new(8);
    net.run_for(Duration::from_secs(3));
    let mut out = Outbox::default();
    let now = net.now;
    let big: Arc<[u8]> = vec![0u8; MAX_PAYLOAD + 1].into();
    assert!(
        net.nodes[0]
            .as_mut()
            .unwrap()
            .broadcast(now, big, &mut out)
            .is_err()
    );
    net.broadcast(1);
    // Digests go on while the payload is in the cache window (120 s).
    net.run_for(Duration::from_secs(130));
    let before = net.cast_msgs;
    net.run_for(Duration::from_secs(60));
    assert_eq!(net.cast_msgs, before, "broadcast traffic without payloads");
}

#[test]
fn every_member_has_a_path_to_the_root_and_the_tree_spans() {
    let mut net = Net::new(30);
    net.run_for(Duration::from_secs(5));
    let mut no_path = 0;
    for i in 0..30 {
        let n = net.nodes[i].as_ref().unwrap();
        let (e, l) = n.tree();
        let _ = (e, l);
        if n.cast.tree_path().is_none() {
            no_path += 1;
        }
    }
    assert_eq!(no_path, 0);
    // Tree edges: 29 of them, each seen from both ends.
    let edges: usize = (0..30)
        .map(|i| net.nodes[i].as_ref().unwrap().tree().0.len())
        .sum();
    assert_eq!(edges, 2 * 29);
}

#[test]
fn a_settled_tree_sends_each_payload_once_per_member() {
    let mut net = Net::new(60);
    net.run_for(Duration::from_secs(10));
    net.kinds.clear();
    let stats = |net: &Net| -> (u64, u64) {
        (0..60)
            .map(|i| net.nodes[i].as_ref().unwrap().cast_stats())
            .fold((0, 0), |(g, d), s| (g + s.grafts_sent, d + s.duplicates))
    };
    let before = stats(&net);
    for k in 0..100 {
        net.broadcast(k % 60);
        net.run_for(Duration::from_millis(100));
    }
    net.run_for(Duration::from_secs(10));
    let after = stats(&net);
    assert_eq!(
        after, before,
        "no grafts and no duplicates on a settled tree"
    );
    assert_eq!(
        net.kinds.get("gossip"),
        Some(&(100 * 59)),
        "{:?}",
        net.kinds
    );
    // Every member's parent pushes to it, and it to its parent.
    for i in 0..60 {
        let n = net.nodes[i].as_ref().unwrap();
        let path = n.tree_path().expect("a path to the root");
        if let Some(parent) = path.0.len().checked_sub(2).map(|k| &path.0[k]) {
            let j = net.names.iter().position(|x| x == parent).unwrap();
            assert!(
                net.nodes[j]
                    .as_ref()
                    .unwrap()
                    .tree()
                    .0
                    .contains(&net.names[i])
            );
            assert!(n.tree().0.contains(parent));
        }
    }
}

mod arbitrary {
    use super::*;
    use crate::dissemination::Mark;
    use proptest::prelude::*;

    fn id() -> impl Strategy<Value = NodeId> {
        prop_oneof![Just("c0"), Just("c1"), Just("c2"), Just("zz")].prop_map(NodeId::new)
    }

    fn msg_id() -> impl Strategy<Value = MsgId> {
        (id(), any::<u64>(), any::<u64>()).prop_map(|(o, e, s)| MsgId(o, Epoch(e % 3), s % 5))
    }

    fn cast() -> impl Strategy<Value = CastMsg> {
        let path = proptest::collection::vec(id(), 0..5).prop_map(Path);
        prop_oneof![
            (
                msg_id(),
                proptest::collection::vec(any::<u8>(), 0..16),
                any::<u32>(),
                any::<bool>()
            )
                .prop_map(|(id, d, h, r)| CastMsg::Gossip {
                    p: Payload { id, data: d.into() },
                    h,
                    r
                }),
            proptest::collection::vec(msg_id(), 0..8).prop_map(|ids| CastMsg::IHave { ids }),
            proptest::collection::vec(msg_id(), 0..8).prop_map(|ids| CastMsg::Graft { ids }),
            (proptest::option::of(path), any::<u64>(), any::<bool>())
                .prop_map(|(path, v, hello)| CastMsg::Tree { path, v, hello }),
            proptest::collection::vec(
                (
                    id(),
                    any::<u64>(),
                    any::<u64>(),
                    proptest::collection::vec(any::<u64>(), 0..4)
                ),
                0..5
            )
            .prop_map(|vv| CastMsg::Digest {
                vv: vv
                    .into_iter()
                    .map(|(o, e, c, x)| Mark(o, Epoch(e), c, x))
                    .collect()
            }),
        ]
    }

    fn view() -> impl Strategy<Value = ViewMsg> {
        prop_oneof![
            any::<bool>().prop_map(|high| ViewMsg::Neighbor { high }),
            Just(ViewMsg::Accept),
            Just(ViewMsg::Refuse),
            Just(ViewMsg::Disconnect),
        ]
    }

    fn cluster_msg() -> impl Strategy<Value = ClusterMsg> {
        prop_oneof![
            cast().prop_map(ClusterMsg::Cast),
            view().prop_map(ClusterMsg::View)
        ]
    }

    proptest! {
        /// Arbitrary broadcast and view messages from members and strangers
        /// never panic a node, keep its invariants, and keep it bounded.
        #[test]
        fn arbitrary_cluster_messages_never_panic(
            msgs in proptest::collection::vec((0usize..4, cluster_msg()), 1..60),
        ) {
            let names: Vec<NodeId> = ["c0", "c1", "c2", "zz"].map(NodeId::new).to_vec();
            let mut me = ClusterNode::new(cfg(), names[0].clone(), Epoch(2), Meta::default(), 1).unwrap();
            let mut out = Outbox::default();
            me.bootstrap(
                Instant::ZERO,
                names[1..3].iter().map(|n| (n.clone(), Incarnation::new(Epoch(1), 0), Arc::new(Meta::default()))),
                &mut out,
            );
            let mut t = Instant::ZERO;
            for (f, m) in msgs {
                me.handle(t, &names[f], m, &mut out);
                prop_assert!(me.check().is_ok(), "{:?}", me.check());
                t += Duration::from_millis(250);
                me.tick(t, &mut out);
                out.drain().for_each(drop);
                me.drain_delivered().for_each(drop);
                prop_assert!(me.neighbours().count() <= 6);
            }
        }

        /// A message cut short on the wire is refused by the decoder, never
        /// a panic.
        #[test]
        fn truncated_messages_are_refused(m in cluster_msg(), cut in 0usize..400) {
            let text = serde_json::to_string(&m).unwrap();
            let cut = cut.min(text.len().saturating_sub(1));
            let r = serde_json::from_str::<ClusterMsg>(&text[..cut]);
            prop_assert!(r.is_err());
            prop_assert_eq!(serde_json::from_str::<ClusterMsg>(&text).unwrap(), m);
        }
    }
}
