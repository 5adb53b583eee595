//! Relay strategies (`flood`, `tree`, `direct`): forward each new value to
//! overlay neighbours over acked links. `direct` forwards nothing: a
//! value reaches a peer only from its origin, or from the repair every node
//! runs when a crash becomes visible (a member restarts or leaves); in a
//! fixed view an origin that crashes for good while partitioned can leave
//! its last values with only the peers it reached.

use super::{DisMsg, Strategy, StrategyKind, check_peers};
use crate::id::NodeId;
use crate::link::Lane;
use crate::membership::ViewChange;
use crate::node::Ctx;
use crate::overlay;
use crate::time::Instant;

#[derive(Debug)]
pub(crate) struct Relay {
    neighbours: Vec<NodeId>,
    /// `direct`: only values from clients are sent on; nobody forwards.
    origin_only: bool,
}

impl Relay {
    pub fn new<V: Ord + Clone>(ctx: &mut Ctx<'_, V>) -> Self {
        let mut r = Relay {
            neighbours: Vec::new(),
            origin_only: ctx.cfg.strategy == StrategyKind::Direct,
        };
        r.reroute(ctx, &[]);
        r
    }

    /// Recomputes neighbours. A neighbour we did not have before, or one
    /// back in a new life, gets everything we know: it cannot have learned
    /// it through us.
    fn reroute<V: Ord + Clone>(&mut self, ctx: &mut Ctx<'_, V>, restarted: &[NodeId]) {
        let next = overlay::neighbours(ctx.cfg.overlay, ctx.view, ctx.topology);
        for n in &next {
            if !self.neighbours.contains(n) || restarted.contains(n) {
                let all: Vec<V> = ctx.store.values().cloned().collect();
                for v in all {
                    ctx.links.enqueue(&ctx.cfg.link, n, Lane::Eager, v);
                }
            }
        }
        self.neighbours = next;
    }

    /// `v` is new here; `from` is the peer it came from (None: a client).
    fn forward<V: Ord + Clone>(&self, ctx: &mut Ctx<'_, V>, v: &V, from: Option<&NodeId>) {
        if self.origin_only && from.is_some() {
            return;
        }
        for n in &self.neighbours {
            if Some(n) != from {
                ctx.links.enqueue(&ctx.cfg.link, n, Lane::Eager, v.clone());
            }
        }
    }
}

impl<V: Ord + Clone + std::fmt::Debug + Send> Strategy<V> for Relay {
    fn local(&mut self, ctx: &mut Ctx<'_, V>, v: V) {
        if ctx.store.learn(&v) {
            ctx.stats.learned += 1;
            self.forward(ctx, &v, None);
        }
    }

    fn link_values(&mut self, ctx: &mut Ctx<'_, V>, from: &NodeId, lane: Lane, values: Vec<V>) {
        if lane != Lane::Eager {
            ctx.stats.ignored += 1;
            return;
        }
        for v in values {
            if ctx.store.learn(&v) {
                ctx.stats.learned += 1;
                self.forward(ctx, &v, Some(from));
            } else {
                ctx.stats.duplicates += 1;
            }
        }
    }

    fn message(&mut self, ctx: &mut Ctx<'_, V>, _from: &NodeId, _msg: DisMsg<V>) {
        // Another strategy's message (a misconfigured peer): drop, count.
        ctx.stats.ignored += 1;
    }

    fn tick(&mut self, _ctx: &mut Ctx<'_, V>) {}

    fn view_changed(&mut self, ctx: &mut Ctx<'_, V>, change: &ViewChange) {
        if self.origin_only && !(change.left.is_empty() && change.restarted.is_empty()) {
            // Nobody forwards in `direct`, so a value whose origin crashed
            // before every peer acknowledged it is held only by those that
            // did. Once a crash shows (a restart, a leave), every node sends
            // everything it holds once more: a rare, bounded repair.
            let everyone = self.neighbours.clone();
            self.reroute(ctx, &everyone);
        } else {
            self.reroute(ctx, &change.restarted);
        }
    }

    fn deadline(&self, _cfg: &super::Config) -> Option<Instant> {
        None
    }

    fn neighbours(&self) -> Vec<NodeId> {
        self.neighbours.clone()
    }

    fn check(&self, ctx: &Ctx<'_, V>) -> Result<(), String> {
        check_peers(ctx, "relay neighbours", &self.neighbours)
    }
}
