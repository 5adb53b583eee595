//! Plumtree (Leitão, Pereira, Rodrigues: "Epidemic Broadcast Trees", SRDS
//! 2007), with the eager tree computed from the view.
//!
//! Values go eagerly along the edges of the overlay tree (the rank tree
//! `tree` uses, which every node computes alike from the view) and are
//! announced lazily, by key, to the node's ring neighbours (the members
//! next to it in rank order) that are not tree neighbours. The rules:
//!
//! - a new value goes on eagerly to the tree neighbours and is queued for
//!   announcement to the lazy ones, minus its sender (§3.3);
//! - announcements go out in batches every `ihave_interval`, fire and
//!   forget (IHAVE, §3.3): they matter only when the eager path failed;
//! - an announced value that does not arrive within `graft_timeout` is
//!   grafted from an announcer (GRAFT, §3.4); retries rotate through the
//!   announcers, back off, and stop after [`MAX_TRIES`]; an announcer that
//!   left or restarted is forgotten;
//! - a GRAFT is answered with the values held, on an acked link;
//! - a tree neighbour that comes (or comes back in a new life) gets
//!   everything held (NeighborUp, §3.5), as in `tree`.
//!
//! Why not the paper's tree: there the eager set is pruned by duplicates,
//! and with many origins at once two nodes can each prune the edge the
//! other's values came through, cutting members off until grafts repair
//! it (the cluster stack's broadcast met this and moved to a tree computed
//! from the membership). A tree that is a function of the view has no such
//! race; the paper's lazy push and grafts stay as the repair of what a
//! changing tree drops, so the subtree of a crashed inner node is reached
//! within an announcement interval and a graft timeout instead of waiting
//! until the membership declares the crash.
//!
//! Loss-free: eager values and graft answers travel on acked links, and a
//! new tree neighbour gets everything held.

use super::Ctx;
use super::{DisMsg, Strategy, Value, check_peers};
use crate::id::NodeId;
use crate::link::Lane;
use crate::membership::ViewChange;
use crate::overlay;
use crate::time::Instant;
use crate::timers::{Timer, earliest};
use crate::wire::Msg;
use std::collections::BTreeMap;

/// Grafts tried for one announced value before it is given up on (the
/// eager path or a new tree neighbour's catch-up still brings it).
pub const MAX_TRIES: u32 = 8;
/// Keys queued for one lazy neighbour at most (the oldest go past that).
const MAX_QUEUED: usize = 65_536;
/// Announcers remembered per missing value.
const MAX_ANNOUNCERS: usize = 4;

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
pub(crate) struct Plumtree<V: Value> {
    eager: Vec<NodeId>,
    lazy: Vec<NodeId>,
    /// Keys to announce to each lazy neighbour at the next round.
    announce: BTreeMap<NodeId, Vec<V::Key>>,
    next_announce: Timer,
    missing: BTreeMap<V::Key, Missing>,
}

impl<V: Value> Plumtree<V> {
    pub fn new(ctx: &mut Ctx<'_, V>) -> Self {
        let mut p = Plumtree {
            eager: Vec::new(),
            lazy: Vec::new(),
            announce: BTreeMap::new(),
            next_announce: Timer::default(),
            missing: BTreeMap::new(),
        };
        p.reroute(ctx, &ViewChange::default());
        p
    }

    /// Recomputes the tree and ring neighbours; a new tree neighbour, or
    /// one in a new life, gets everything held.
    fn reroute(&mut self, ctx: &mut Ctx<'_, V>, change: &ViewChange) {
        let eager = overlay::neighbours(ctx.cfg.overlay, ctx.view, ctx.topology);
        for n in &eager {
            if !self.eager.contains(n) || change.restarted.contains(n) {
                let all: Vec<V> = ctx.store.values().cloned().collect();
                for v in all {
                    ctx.links.enqueue(&ctx.cfg.link, n, Lane::Eager, v);
                }
            }
        }
        self.lazy = overlay::ring(ctx.view)
            .into_iter()
            .filter(|n| !eager.contains(n))
            .collect();
        self.eager = eager;
        let lazy = &self.lazy;
        self.announce.retain(|n, _| lazy.contains(n));
        // An announcement from a life that is over (the announcer left or
        // restarted with empty state) can no longer be served.
        self.missing.retain(|_, m| {
            m.announcers
                .retain(|a| ctx.view.contains(a) && !change.restarted.contains(a));
            !m.announcers.is_empty()
        });
    }

    /// `v` is new here (from a client if `from` is None).
    fn deliver(&mut self, ctx: &mut Ctx<'_, V>, v: &V, from: Option<&NodeId>) {
        self.missing.remove(v.key());
        for n in &self.eager {
            if Some(n) != from {
                ctx.links.enqueue(&ctx.cfg.link, n, Lane::Eager, v.clone());
            }
        }
        for n in &self.lazy {
            if Some(n) != from {
                let q = self.announce.entry(n.clone()).or_default();
                if q.len() >= MAX_QUEUED {
                    q.remove(0);
                }
                q.push(v.key().clone());
            }
        }
        if !self.announce.is_empty() {
            self.next_announce.arm_by(ctx.now + ctx.cfg.ihave_interval);
        }
    }

    /// IHAVE: `from` holds these; wait for the ones we lack.
    fn announced(&mut self, ctx: &Ctx<'_, V>, from: &NodeId, keys: Vec<V::Key>) {
        for k in keys {
            if ctx.store.has_seen(&k) {
                continue;
            }
            let m = self.missing.entry(k).or_insert_with(|| Missing {
                announcers: Vec::new(),
                next: 0,
                deadline: ctx.now + ctx.cfg.graft_timeout,
                tries: 0,
            });
            if !m.announcers.contains(from) && m.announcers.len() < MAX_ANNOUNCERS {
                m.announcers.push(from.clone());
            }
        }
    }

    /// GRAFT: send the values asked for that are held, reliably.
    fn on_graft(ctx: &mut Ctx<'_, V>, from: &NodeId, keys: Vec<V::Key>) {
        for k in keys {
            if let Some(v) = ctx.store.get(&k).cloned() {
                ctx.links.enqueue(&ctx.cfg.link, from, Lane::Eager, v);
            }
        }
    }

    /// Grafts announcers of values that did not arrive in time, rotating
    /// through announcers on each retry.
    fn graft_missing(&mut self, ctx: &mut Ctx<'_, V>) {
        let mut grafts: BTreeMap<NodeId, Vec<V::Key>> = BTreeMap::new();
        let mut given_up = Vec::new();
        for (k, m) in self.missing.iter_mut() {
            if m.deadline > ctx.now {
                continue;
            }
            if m.tries >= MAX_TRIES {
                given_up.push(k.clone());
                continue;
            }
            let p = m.announcers[m.next % m.announcers.len()].clone();
            m.next += 1;
            m.deadline = ctx.now + ctx.cfg.graft_timeout * (1 << m.tries.min(4));
            m.tries += 1;
            grafts.entry(p).or_default().push(k.clone());
        }
        for k in given_up {
            self.missing.remove(&k);
        }
        for (p, keys) in grafts {
            for part in keys.chunks(ctx.cfg.link.max_batch) {
                ctx.stats.grafts += 1;
                let v = part.to_vec();
                ctx.out.push(p.clone(), Msg::Dis(DisMsg::Graft { v }));
            }
        }
    }

    fn announce_round(&mut self, ctx: &mut Ctx<'_, V>) {
        for (n, keys) in std::mem::take(&mut self.announce) {
            for part in keys.chunks(ctx.cfg.link.max_batch) {
                ctx.stats.announcements += 1;
                let k = part.to_vec();
                ctx.out.push(n.clone(), Msg::Dis(DisMsg::IHave { k }));
            }
        }
    }
}

impl<V: Value> Strategy<V> for Plumtree<V> {
    fn local(&mut self, ctx: &mut Ctx<'_, V>, v: V) {
        if ctx.store.learn(&v) {
            ctx.stats.learned += 1;
            self.deliver(ctx, &v, None);
        }
    }

    fn link_values(&mut self, ctx: &mut Ctx<'_, V>, from: &NodeId, lane: Lane, values: Vec<V>) {
        if lane == Lane::Lazy {
            ctx.stats.ignored += 1;
            return;
        }
        for v in values {
            if ctx.store.learn(&v) {
                ctx.stats.learned += 1;
                self.deliver(ctx, &v, Some(from));
            } else {
                ctx.stats.duplicates += 1;
            }
        }
    }

    fn message(&mut self, ctx: &mut Ctx<'_, V>, from: &NodeId, msg: DisMsg<V>) {
        match msg {
            DisMsg::IHave { k } => self.announced(ctx, from, k),
            DisMsg::Graft { v } => Self::on_graft(ctx, from, v),
            _ => ctx.stats.ignored += 1,
        }
    }

    fn tick(&mut self, ctx: &mut Ctx<'_, V>) {
        // Held by now some other way (a graft answer, the eager path).
        let store = &*ctx.store;
        self.missing.retain(|k, _| !store.has_seen(k));
        self.graft_missing(ctx);
        if self.next_announce.fire(ctx.now) {
            self.announce_round(ctx);
        }
    }

    fn view_changed(&mut self, ctx: &mut Ctx<'_, V>, change: &ViewChange) {
        self.reroute(ctx, change);
    }

    fn deadline(&self, _cfg: &super::Config) -> Option<Instant> {
        earliest([
            self.next_announce.at(),
            self.missing.values().map(|m| m.deadline).min(),
        ])
    }

    fn neighbours(&self) -> Vec<NodeId> {
        self.eager.iter().chain(&self.lazy).cloned().collect()
    }

    fn check(&self, ctx: &Ctx<'_, V>) -> Result<(), String> {
        if let Some(p) = self.eager.iter().find(|p| self.lazy.contains(p)) {
            return Err(format!("{p} is both eager and lazy"));
        }
        check_peers(ctx, "the eager set", &self.eager)?;
        check_peers(ctx, "the lazy set", &self.lazy)?;
        for (k, m) in &self.missing {
            if ctx.store.has_seen(k) {
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
    use crate::dissemination::{Config, Overlay, Store, StrategyKind};
    use crate::id::Epoch;
    use crate::link::Links;
    use crate::membership::View;
    use crate::outbox::Outbox;
    use crate::rng;
    use crate::stats::Stats;
    use std::time::Duration;

    /// One plumtree machine with everything a context needs: a leaf of a
    /// star over a..e (its hub is its only eager neighbour), its ring
    /// neighbours lazy.
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
            let hub = View::new(id("a"), members.clone()).top().unwrap().clone();
            let leaf = members.iter().find(|m| **m != hub).unwrap().clone();
            let view = View::new(leaf, members);
            let mut cfg = Config::default().with_strategy(StrategyKind::Plumtree);
            cfg.overlay = Overlay::Star;
            cfg.graft_timeout = Duration::from_millis(100);
            cfg.ihave_interval = Duration::from_millis(50);
            let mut r = Rig {
                p: Plumtree {
                    eager: Vec::new(),
                    lazy: Vec::new(),
                    announce: BTreeMap::new(),
                    next_announce: Timer::default(),
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
            r.with(|p, ctx| p.reroute(ctx, &ViewChange::default()));
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

        fn hub(&self) -> NodeId {
            self.view.top().unwrap().clone()
        }

        /// A lazy neighbour that is not the given one.
        fn lazy_other_than(&self, not: &NodeId) -> NodeId {
            self.p.lazy.iter().find(|n| *n != not).unwrap().clone()
        }

        /// Values queued on links, by peer, after a poll.
        fn linked(&mut self) -> Vec<(NodeId, u64)> {
            let mut sends = Outbox::default();
            let mut stats = Stats::default();
            self.links
                .poll(self.now, &self.cfg.link, &self.view, &mut sends, &mut stats);
            let mut out = Vec::new();
            for (to, m) in sends.drain() {
                if let Msg::Link(crate::link::LinkMsg::Data { values, .. }) = m {
                    out.extend(values.into_iter().map(|v| (to.clone(), v)));
                }
            }
            out
        }
    }

    #[test]
    fn the_tree_is_eager_the_ring_lazy_and_a_value_goes_both_ways() {
        let mut r = Rig::new();
        let hub = r.hub();
        assert_eq!(r.p.eager, vec![hub.clone()]);
        assert!(!r.p.lazy.is_empty() && !r.p.lazy.contains(&hub));
        r.with(|p, ctx| p.local(ctx, 7));
        assert_eq!(r.linked(), vec![(hub, 7)], "eagerly to the hub only");
        assert!(r.sent().is_empty(), "announcements wait for their round");
        r.now = Instant::from_millis(50);
        r.with(|p, ctx| p.tick(ctx));
        let lazy = r.p.lazy.clone();
        let sent = r.sent();
        assert_eq!(sent.len(), lazy.len());
        for (to, m) in sent {
            assert!(lazy.contains(&to));
            assert_eq!(m, Msg::Dis(DisMsg::IHave { k: vec![7] }));
        }
        assert_eq!(r.p.deadline(&r.cfg), None, "quiet once announced");
    }

    #[test]
    fn a_missing_announced_value_grafts_the_announcers_in_turn() {
        let mut r = Rig::new();
        let x = r.p.lazy[0].clone();
        let y = r.lazy_other_than(&x);
        r.with(|p, ctx| p.message(ctx, &x, DisMsg::IHave { k: vec![9] }));
        r.with(|p, ctx| p.message(ctx, &y, DisMsg::IHave { k: vec![9] }));
        assert_eq!(r.p.deadline(&r.cfg), Some(Instant::from_millis(100)));
        r.with(|p, ctx| p.tick(ctx));
        assert!(r.sent().is_empty(), "not before the timeout");
        r.now = Instant::from_millis(100);
        r.with(|p, ctx| p.tick(ctx));
        assert_eq!(r.sent(), vec![(x, Msg::Dis(DisMsg::Graft { v: vec![9] }))]);
        r.now = Instant::from_millis(300);
        r.with(|p, ctx| p.tick(ctx));
        assert_eq!(
            r.sent(),
            vec![(y.clone(), Msg::Dis(DisMsg::Graft { v: vec![9] }))],
            "the retry asks the next announcer, after twice the timeout"
        );
        // The value arrives: nothing is awaited any more.
        r.with(|p, ctx| p.link_values(ctx, &y, Lane::Eager, vec![9]));
        assert_eq!(r.p.missing.len(), 0);
    }

    #[test]
    fn grafts_stop_after_the_most_tries() {
        let mut r = Rig::new();
        let x = r.p.lazy[0].clone();
        r.with(|p, ctx| p.message(ctx, &x, DisMsg::IHave { k: vec![9] }));
        let mut grafts = 0;
        for ms in (0..200_000).step_by(100) {
            r.now = Instant::from_millis(ms);
            r.with(|p, ctx| p.tick(ctx));
            grafts += r.sent().len();
        }
        assert_eq!(grafts, MAX_TRIES as usize);
        assert_eq!(r.p.deadline(&r.cfg), None);
    }

    #[test]
    fn an_announcement_of_a_held_value_is_ignored_and_a_graft_answers_what_is_held() {
        let mut r = Rig::new();
        let x = r.p.lazy[0].clone();
        r.with(|p, ctx| p.local(ctx, 3));
        r.linked();
        r.with(|p, ctx| p.message(ctx, &x, DisMsg::IHave { k: vec![3] }));
        assert!(r.p.missing.is_empty());
        r.with(|p, ctx| p.message(ctx, &x, DisMsg::Graft { v: vec![3, 4] }));
        assert_eq!(r.linked(), vec![(x, 3)], "only what it holds, reliably");
    }

    #[test]
    fn a_leaving_announcer_is_forgotten_and_a_new_life_gets_everything() {
        let mut r = Rig::new();
        let x = r.p.lazy[0].clone();
        r.with(|p, ctx| p.message(ctx, &x, DisMsg::IHave { k: vec![9] }));
        r.view.apply(&[], std::slice::from_ref(&x));
        let change = ViewChange {
            left: vec![x],
            ..ViewChange::default()
        };
        r.with(|p, ctx| p.view_changed(ctx, &change));
        assert_eq!(r.p.deadline(&r.cfg), None, "nobody left to graft");
        r.with(|p, ctx| p.local(ctx, 5));
        r.linked();
        let hub = r.hub();
        let change = ViewChange {
            restarted: vec![hub.clone()],
            ..ViewChange::default()
        };
        r.with(|p, ctx| p.view_changed(ctx, &change));
        assert_eq!(
            r.linked(),
            vec![(hub, 5)],
            "the hub's new life gets 5 again"
        );
    }
}
