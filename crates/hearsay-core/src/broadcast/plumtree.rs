//! Plumtree (Leitão et al., "Epidemic Broadcast Trees", 2007): values go
//! eagerly along tree edges and are announced lazily (as IHAVE batches) to
//! the other mesh neighbours. A node that hears of a value it has not
//! received within `graft_timeout` grafts the announcer into its eager set
//! (§3.3); a node that receives a value twice on eager edges prunes the
//! second sender (§3.2). Eager values and announcements travel on acked
//! links and grafts are retried, so the protocol stays loss-free across
//! partitions.

use super::engine::Ctx;
use super::{Lane, Peer, Wire, overlay};
use crate::time::Instant;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug)]
struct Missing {
    announcers: Vec<Peer>,
    next: usize,
    deadline: Instant,
}

#[derive(Debug)]
pub(crate) struct Plumtree<V> {
    eager: BTreeSet<Peer>,
    lazy: BTreeSet<Peer>,
    missing: BTreeMap<V, Missing>,
}

impl<V: Ord + Clone> Plumtree<V> {
    pub fn new(ctx: &Ctx<'_, V>, topology: Option<&BTreeMap<Peer, Vec<Peer>>>) -> Self {
        let eager: BTreeSet<Peer> =
            overlay::neighbours(ctx.cfg.overlay, ctx.me, ctx.members, topology)
                .into_iter()
                .collect();
        let lazy = overlay::mesh(ctx.me, ctx.members)
            .into_iter()
            .filter(|p| !eager.contains(p))
            .collect();
        Plumtree {
            eager,
            lazy,
            missing: BTreeMap::new(),
        }
    }

    /// `v` is new here (from a client if `from` is None).
    pub fn deliver(&mut self, ctx: &mut Ctx<'_, V>, v: &V, from: Option<Peer>) {
        self.missing.remove(v);
        for n in &self.eager {
            if Some(*n) != from {
                ctx.links.enqueue(ctx.cfg, *n, Lane::Eager, v.clone());
            }
        }
        for n in &self.lazy {
            if Some(*n) != from {
                ctx.links.enqueue(ctx.cfg, *n, Lane::Lazy, v.clone());
            }
        }
    }

    /// A value arrived on an eager edge but was already known: prune (§3.2).
    pub fn duplicate(&mut self, ctx: &mut Ctx<'_, V>, from: Peer) {
        if self.eager.remove(&from) {
            self.lazy.insert(from);
            ctx.out.push(from, Wire::Prune {});
        }
    }

    /// IHAVE: `from` announces values; wait for the ones we lack.
    pub fn announced(&mut self, ctx: &Ctx<'_, V>, from: Peer, values: &[V]) {
        for v in values {
            if ctx.store.contains(v) {
                continue;
            }
            let m = self.missing.entry(v.clone()).or_insert_with(|| Missing {
                announcers: Vec::new(),
                next: 0,
                deadline: ctx.now + ctx.cfg.graft_timeout,
            });
            if !m.announcers.contains(&from) {
                m.announcers.push(from);
            }
        }
    }

    pub fn on_graft(&mut self, ctx: &mut Ctx<'_, V>, from: Peer, values: Vec<V>) {
        self.lazy.remove(&from);
        self.eager.insert(from);
        for v in values {
            if ctx.store.contains(&v) {
                ctx.links.enqueue(ctx.cfg, from, Lane::Eager, v);
            }
        }
    }

    pub fn on_prune(&mut self, from: Peer) {
        if self.eager.remove(&from) {
            self.lazy.insert(from);
        }
    }

    /// Grafts announcers of values that did not arrive in time (§3.3),
    /// rotating through announcers on each retry.
    pub fn tick(&mut self, ctx: &mut Ctx<'_, V>) {
        let mut grafts: BTreeMap<Peer, Vec<V>> = BTreeMap::new();
        for (v, m) in self.missing.iter_mut() {
            if m.deadline > ctx.now || m.announcers.is_empty() {
                continue;
            }
            let p = m.announcers[m.next % m.announcers.len()];
            m.next += 1;
            m.deadline = ctx.now + ctx.cfg.graft_timeout;
            grafts.entry(p).or_default().push(v.clone());
        }
        for (p, vs) in grafts {
            self.lazy.remove(&p);
            self.eager.insert(p);
            ctx.stats.grafts += 1;
            ctx.out.push(p, Wire::Graft { v: vs });
        }
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.missing.values().map(|m| m.deadline).min()
    }
}
