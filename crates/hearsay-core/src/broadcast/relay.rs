//! Relay strategies (`flood`, `tree`, `direct`): forward each new value to
//! overlay neighbours over acked links.

use super::engine::Ctx;
use super::{Lane, Peer, Strategy, overlay};
use std::collections::BTreeMap;

#[derive(Debug)]
pub(crate) struct Relay {
    neighbours: Vec<Peer>,
    /// `direct`: only values from clients are sent on; nobody forwards.
    origin_only: bool,
}

impl Relay {
    pub fn new<V: Ord + Clone>(
        ctx: &mut Ctx<'_, V>,
        topology: Option<&BTreeMap<Peer, Vec<Peer>>>,
    ) -> Self {
        let mut r = Relay {
            neighbours: Vec::new(),
            origin_only: ctx.cfg.strategy == Strategy::Direct,
        };
        r.reroute(ctx, topology);
        r
    }

    /// Recomputes neighbours (the topology arrived or changed). A neighbour
    /// we did not have before gets everything we know: it cannot have
    /// learned it through us.
    pub fn reroute<V: Ord + Clone>(
        &mut self,
        ctx: &mut Ctx<'_, V>,
        topology: Option<&BTreeMap<Peer, Vec<Peer>>>,
    ) {
        let next = overlay::neighbours(ctx.cfg.overlay, ctx.me, ctx.members, topology);
        for n in &next {
            if !self.neighbours.contains(n) {
                let all: Vec<V> = ctx.store.values().cloned().collect();
                for v in all {
                    ctx.links.enqueue(ctx.cfg, *n, Lane::Eager, v);
                }
            }
        }
        self.neighbours = next;
    }

    /// `v` is new here; `from` is the peer it came from (None: a client).
    pub fn forward<V: Ord + Clone>(&self, ctx: &mut Ctx<'_, V>, v: &V, from: Option<Peer>) {
        if self.origin_only && from.is_some() {
            return;
        }
        for n in &self.neighbours {
            if Some(*n) != from {
                ctx.links.enqueue(ctx.cfg, *n, Lane::Eager, v.clone());
            }
        }
    }

    pub fn neighbours(&self) -> &[Peer] {
        &self.neighbours
    }
}
