//! Plumtree (Leitão, Pereira, Rodrigues: "Epidemic Broadcast Trees", SRDS
//! 2007): values go eagerly along tree edges and are announced lazily (as
//! IHAVE batches of message ids; a broadcast value is its own id) to the
//! other mesh neighbours. The rules of the paper's Algorithm 1, each tested
//! below:
//!
//! - a new value from a peer puts that peer in the eager set (§3.3, the
//!   GOSSIP handler), and goes on eagerly to the eager set and lazily to
//!   the lazy set, minus the sender;
//! - a value received twice prunes the second sender: it moves to the lazy
//!   set and is told so (PRUNE, §3.3), and a PRUNE does the same on the
//!   other side;
//! - an announced value that does not arrive within `graft_timeout` grafts
//!   the announcer: it moves to the eager set and is asked for the value
//!   (GRAFT, §3.3, §3.4); retries rotate through the announcers and back
//!   off, and an announcer that left or restarted is forgotten;
//! - a GRAFT puts its sender in the eager set and answers with the values;
//! - a neighbour that goes down leaves both sets and its announcements are
//!   forgotten; a neighbour that comes up (or back in a new life) joins the
//!   eager set (NeighborUp, §3.5) and gets what it cannot have.
//!
//! Eager values and announcements travel on acked links and grafts are
//! retried, so the protocol stays loss-free across partitions.

use super::{DisMsg, Strategy, check_peers};
use crate::id::NodeId;
use crate::link::Lane;
use crate::membership::ViewChange;
use crate::node::Ctx;
use crate::overlay;
use crate::time::Instant;
use crate::wire::Msg;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug)]
struct Missing {
    announcers: Vec<NodeId>,
    next: usize,
    deadline: Instant,
    /// Grafts sent so far: retries back off (doubling, up to 16 timeouts),
    /// so a value stuck behind a partition costs little while it waits.
    tries: u32,
}

#[derive(Debug)]
pub(crate) struct Plumtree<V> {
    eager: BTreeSet<NodeId>,
    lazy: BTreeSet<NodeId>,
    missing: BTreeMap<V, Missing>,
}

impl<V: Ord + Clone> Plumtree<V> {
    pub fn new(ctx: &Ctx<'_, V>) -> Self {
        let mut p = Plumtree {
            eager: BTreeSet::new(),
            lazy: BTreeSet::new(),
            missing: BTreeMap::new(),
        };
        p.add_overlay_peers(ctx);
        p
    }

    /// Tree neighbours not yet in either set become eager, mesh neighbours
    /// lazy; returns the new eager ones.
    fn add_overlay_peers(&mut self, ctx: &Ctx<'_, V>) -> Vec<NodeId> {
        let mut added = Vec::new();
        for n in overlay::neighbours(ctx.cfg.overlay, ctx.view, ctx.topology) {
            if !self.lazy.contains(&n) && self.eager.insert(n.clone()) {
                added.push(n);
            }
        }
        for n in overlay::mesh(ctx.view) {
            if !self.eager.contains(&n) {
                self.lazy.insert(n);
            }
        }
        added
    }

    fn send_everything(ctx: &mut Ctx<'_, V>, to: &NodeId) {
        let all: Vec<V> = ctx.store.values().cloned().collect();
        for v in all {
            ctx.links.enqueue(&ctx.cfg.link, to, Lane::Eager, v);
        }
    }

    fn make_eager(&mut self, p: &NodeId) {
        self.lazy.remove(p);
        self.eager.insert(p.clone());
    }

    fn make_lazy(&mut self, p: &NodeId) -> bool {
        let was = self.eager.remove(p);
        if was {
            self.lazy.insert(p.clone());
        }
        was
    }

    /// `v` is new here (from a client if `from` is None).
    fn deliver(&mut self, ctx: &mut Ctx<'_, V>, v: &V, from: Option<&NodeId>) {
        self.missing.remove(v);
        for n in &self.eager {
            if Some(n) != from {
                ctx.links.enqueue(&ctx.cfg.link, n, Lane::Eager, v.clone());
            }
        }
        for n in &self.lazy {
            if Some(n) != from {
                ctx.links.enqueue(&ctx.cfg.link, n, Lane::Lazy, v.clone());
            }
        }
    }

    /// IHAVE: `from` announces values; wait for the ones we lack.
    fn announced(&mut self, ctx: &Ctx<'_, V>, from: &NodeId, values: &[V]) {
        for v in values {
            if ctx.store.contains(v) {
                continue;
            }
            let m = self.missing.entry(v.clone()).or_insert_with(|| Missing {
                announcers: Vec::new(),
                next: 0,
                deadline: ctx.now + ctx.cfg.graft_timeout,
                tries: 0,
            });
            if !m.announcers.contains(from) {
                m.announcers.push(from.clone());
            }
        }
    }

    fn on_graft(&mut self, ctx: &mut Ctx<'_, V>, from: &NodeId, values: Vec<V>) {
        self.make_eager(from);
        for v in values {
            if ctx.store.contains(&v) {
                ctx.links.enqueue(&ctx.cfg.link, from, Lane::Eager, v);
            }
        }
    }
}

impl<V: Ord + Clone + std::fmt::Debug + Send> Strategy<V> for Plumtree<V> {
    fn local(&mut self, ctx: &mut Ctx<'_, V>, v: V) {
        if ctx.store.learn(&v) {
            ctx.stats.learned += 1;
            self.deliver(ctx, &v, None);
        }
    }

    fn link_values(&mut self, ctx: &mut Ctx<'_, V>, from: &NodeId, lane: Lane, values: Vec<V>) {
        if lane == Lane::Lazy {
            self.announced(ctx, from, &values);
            return;
        }
        for v in values {
            if ctx.store.learn(&v) {
                ctx.stats.learned += 1;
                self.make_eager(from);
                self.deliver(ctx, &v, Some(from));
            } else {
                ctx.stats.duplicates += 1;
                if self.make_lazy(from) {
                    ctx.out.push(from.clone(), Msg::Dis(DisMsg::Prune));
                }
            }
        }
    }

    fn message(&mut self, ctx: &mut Ctx<'_, V>, from: &NodeId, msg: DisMsg<V>) {
        match msg {
            DisMsg::Graft { v } => self.on_graft(ctx, from, v),
            DisMsg::Prune => {
                self.make_lazy(from);
            }
            _ => ctx.stats.ignored += 1,
        }
    }

    /// Grafts announcers of values that did not arrive in time, rotating
    /// through announcers on each retry.
    fn tick(&mut self, ctx: &mut Ctx<'_, V>) {
        let mut grafts: BTreeMap<NodeId, Vec<V>> = BTreeMap::new();
        for (v, m) in self.missing.iter_mut() {
            if m.deadline > ctx.now || m.announcers.is_empty() {
                continue;
            }
            let p = m.announcers[m.next % m.announcers.len()].clone();
            m.next += 1;
            m.deadline = ctx.now + ctx.cfg.graft_timeout * (1 << m.tries.min(4));
            m.tries += 1;
            grafts.entry(p).or_default().push(v.clone());
        }
        for (p, vs) in grafts {
            self.make_eager(&p);
            ctx.stats.grafts += 1;
            ctx.out.push(p, Msg::Dis(DisMsg::Graft { v: vs }));
        }
    }

    fn view_changed(&mut self, ctx: &mut Ctx<'_, V>, change: &ViewChange) {
        // NeighborDown.
        for p in &change.left {
            self.eager.remove(p);
            self.lazy.remove(p);
        }
        // An announcement from a life that is over (the announcer left or
        // restarted with empty state) can no longer be served.
        self.missing.retain(|_, m| {
            m.announcers
                .retain(|a| ctx.view.contains(a) && !change.restarted.contains(a));
            !m.announcers.is_empty()
        });
        // NeighborUp: new overlay neighbours, and neighbours in a new life.
        let mut up = self.add_overlay_peers(ctx);
        for p in &change.restarted {
            if self.eager.contains(p) || self.lazy.contains(p) {
                self.make_eager(p);
                up.push(p.clone());
            }
        }
        for p in up {
            Self::send_everything(ctx, &p);
        }
    }

    fn deadline(&self, _cfg: &super::Config) -> Option<Instant> {
        self.missing.values().map(|m| m.deadline).min()
    }

    fn neighbours(&self) -> Vec<NodeId> {
        self.eager.iter().chain(&self.lazy).cloned().collect()
    }

    fn check(&self, ctx: &Ctx<'_, V>) -> Result<(), String> {
        if let Some(p) = self.eager.intersection(&self.lazy).next() {
            return Err(format!("{p} is both eager and lazy"));
        }
        check_peers(ctx, "the eager set", &self.eager)?;
        check_peers(ctx, "the lazy set", &self.lazy)?;
        for (v, m) in &self.missing {
            if ctx.store.contains(v) {
                return Err("a delivered value is still awaited".into());
            }
            check_peers(ctx, "announcers", &m.announcers)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissemination::{Config, Store, StrategyKind};
    use crate::id::Epoch;
    use crate::link::Links;
    use crate::membership::View;
    use crate::node::Stats;
    use crate::outbox::Outbox;
    use crate::rng;
    use std::time::Duration;

    /// One plumtree machine with everything a context needs.
    struct Rig {
        p: Plumtree<u64>,
        view: View,
        cfg: Config,
        store: Store<u64>,
        links: Links<u64>,
        out: Outbox<Msg<u64>>,
        rng: crate::rng::Rng,
        stats: Stats,
        now: Instant,
    }

    fn id(s: &str) -> NodeId {
        NodeId::new(s)
    }

    impl Rig {
        fn new() -> Rig {
            let members: Vec<NodeId> = ["a", "b", "c", "d", "e"].map(id).to_vec();
            let view = View::new(id("a"), members);
            let mut cfg = Config::default().with_strategy(StrategyKind::Plumtree);
            cfg.overlay = crate::dissemination::Overlay::Total;
            cfg.graft_timeout = Duration::from_millis(100);
            let mut r = Rig {
                p: Plumtree {
                    eager: BTreeSet::new(),
                    lazy: BTreeSet::new(),
                    missing: BTreeMap::new(),
                },
                view,
                cfg,
                store: Store::default(),
                links: Links::new(None),
                out: Outbox::default(),
                rng: rng::child(1, "t"),
                stats: Stats::default(),
                now: Instant::ZERO,
            };
            // Start from a known split: b, c eager; d, e lazy.
            r.p.eager = [id("b"), id("c")].into();
            r.p.lazy = [id("d"), id("e")].into();
            r
        }

        fn with<T>(&mut self, f: impl FnOnce(&mut Plumtree<u64>, &mut Ctx<'_, u64>) -> T) -> T {
            let mut ctx = Ctx {
                now: self.now,
                epoch: Epoch(1),
                view: &self.view,
                topology: None,
                cfg: &self.cfg,
                store: &mut self.store,
                links: &mut self.links,
                out: &mut self.out,
                rng: &mut self.rng,
                stats: &mut self.stats,
            };
            let r = f(&mut self.p, &mut ctx);
            Strategy::check(&self.p, &ctx).expect("plumtree invariants");
            r
        }

        fn sent(&mut self) -> Vec<(NodeId, Msg<u64>)> {
            self.out.drain().collect()
        }

        fn queued(&self) -> Vec<(NodeId, Lane)> {
            // What the links would carry: peers with a session.
            let mut v: Vec<(NodeId, Lane)> = Vec::new();
            for p in self.links.peers() {
                v.push((p.clone(), Lane::Eager));
            }
            v
        }
    }

    #[test]
    fn a_new_value_goes_eagerly_to_eager_peers_and_lazily_to_lazy_ones() {
        let mut r = Rig::new();
        r.with(|p, ctx| p.link_values(ctx, &id("b"), Lane::Eager, vec![7]));
        // b (the sender) gets nothing back; c eagerly; d and e lazily.
        let peers: BTreeSet<NodeId> = r.queued().into_iter().map(|(p, _)| p).collect();
        assert!(peers.contains(&id("c")) && peers.contains(&id("d")));
        assert!(r.store.contains(&7));
        assert!(r.sent().is_empty(), "no prune for a first delivery");
    }

    #[test]
    fn a_new_value_from_a_lazy_peer_makes_it_eager() {
        let mut r = Rig::new();
        r.with(|p, ctx| p.link_values(ctx, &id("d"), Lane::Eager, vec![7]));
        assert!(r.p.eager.contains(&id("d")) && !r.p.lazy.contains(&id("d")));
    }

    #[test]
    fn a_duplicate_prunes_its_sender_and_a_prune_demotes_the_pruner() {
        let mut r = Rig::new();
        r.with(|p, ctx| p.link_values(ctx, &id("b"), Lane::Eager, vec![7]));
        r.with(|p, ctx| p.link_values(ctx, &id("c"), Lane::Eager, vec![7]));
        assert!(r.p.lazy.contains(&id("c")) && !r.p.eager.contains(&id("c")));
        assert_eq!(r.sent(), vec![(id("c"), Msg::Dis(DisMsg::Prune))]);
        // A second duplicate from a lazy peer sends no second prune.
        r.with(|p, ctx| p.link_values(ctx, &id("c"), Lane::Eager, vec![7]));
        assert!(r.sent().is_empty());
        r.with(|p, ctx| p.message(ctx, &id("b"), DisMsg::Prune));
        assert!(r.p.lazy.contains(&id("b")) && !r.p.eager.contains(&id("b")));
    }

    #[test]
    fn a_missing_announced_value_grafts_the_announcers_in_turn() {
        let mut r = Rig::new();
        r.with(|p, ctx| p.link_values(ctx, &id("d"), Lane::Lazy, vec![9]));
        r.with(|p, ctx| p.link_values(ctx, &id("e"), Lane::Lazy, vec![9]));
        assert_eq!(r.p.deadline(&r.cfg), Some(Instant::from_millis(100)));
        r.with(|p, ctx| p.tick(ctx));
        assert!(r.sent().is_empty(), "not before the timeout");
        r.now = Instant::from_millis(100);
        r.with(|p, ctx| p.tick(ctx));
        assert_eq!(
            r.sent(),
            vec![(id("d"), Msg::Dis(DisMsg::Graft { v: vec![9] }))]
        );
        assert!(r.p.eager.contains(&id("d")));
        r.now = Instant::from_millis(300);
        r.with(|p, ctx| p.tick(ctx));
        assert_eq!(
            r.sent(),
            vec![(id("e"), Msg::Dis(DisMsg::Graft { v: vec![9] }))],
            "the retry asks the next announcer, after twice the timeout"
        );
        // The value arrives: nothing is awaited any more.
        r.with(|p, ctx| p.link_values(ctx, &id("e"), Lane::Eager, vec![9]));
        assert_eq!(r.p.deadline(&r.cfg), None);
    }

    #[test]
    fn an_announcement_of_a_known_value_is_ignored() {
        let mut r = Rig::new();
        r.with(|p, ctx| p.local(ctx, 3));
        r.with(|p, ctx| p.link_values(ctx, &id("d"), Lane::Lazy, vec![3]));
        assert_eq!(r.p.deadline(&r.cfg), None);
    }

    #[test]
    fn a_graft_makes_its_sender_eager_and_answers_with_the_values_held() {
        let mut r = Rig::new();
        r.with(|p, ctx| p.local(ctx, 3));
        r.links = Links::new(None);
        r.with(|p, ctx| p.message(ctx, &id("e"), DisMsg::Graft { v: vec![3, 4] }));
        assert!(r.p.eager.contains(&id("e")) && !r.p.lazy.contains(&id("e")));
        let peers: Vec<NodeId> = r.links.peers().cloned().collect();
        assert_eq!(peers, vec![id("e")], "only e is answered");
        let mut sends = Outbox::default();
        let mut stats = Stats::default();
        r.links
            .poll(Instant::ZERO, &r.cfg.link, &r.view, &mut sends, &mut stats);
        let values: Vec<u64> = sends
            .drain()
            .filter_map(|(_, m)| match m {
                Msg::Link(crate::link::LinkMsg::Data { values, .. }) => Some(values),
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(values, vec![3], "only values it holds");
    }

    #[test]
    fn a_neighbour_down_leaves_both_sets_and_its_announcements_go() {
        let mut r = Rig::new();
        r.with(|p, ctx| p.link_values(ctx, &id("d"), Lane::Lazy, vec![9]));
        r.view.apply(&[], &[id("d"), id("b")]);
        let change = ViewChange {
            left: vec![id("d"), id("b")],
            ..ViewChange::default()
        };
        r.with(|p, ctx| p.view_changed(ctx, &change));
        assert!(!r.p.eager.contains(&id("b")) && !r.p.lazy.contains(&id("d")));
        assert_eq!(r.p.deadline(&r.cfg), None, "nobody left to graft");
    }

    #[test]
    fn an_announcer_that_restarted_is_not_grafted_any_more() {
        let mut r = Rig::new();
        r.with(|p, ctx| p.link_values(ctx, &id("d"), Lane::Lazy, vec![9]));
        let change = ViewChange {
            restarted: vec![id("d")],
            ..ViewChange::default()
        };
        r.with(|p, ctx| p.view_changed(ctx, &change));
        assert_eq!(r.p.deadline(&r.cfg), None, "its old announcement is void");
    }

    #[test]
    fn a_neighbour_back_in_a_new_life_becomes_eager_and_gets_everything() {
        let mut r = Rig::new();
        r.with(|p, ctx| p.local(ctx, 3));
        r.links = Links::new(None);
        let change = ViewChange {
            restarted: vec![id("e")],
            ..ViewChange::default()
        };
        r.with(|p, ctx| p.view_changed(ctx, &change));
        assert!(r.p.eager.contains(&id("e")));
        assert!(r.links.peers().any(|p| *p == id("e")));
    }
}
