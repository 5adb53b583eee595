//! Relay strategies (`flood`, `tree`, `direct`): forward each new value to
//! overlay neighbours over acked links.
//!
//! A neighbour we did not have before, or one back in a new life, gets
//! everything we hold: it cannot have learned it through us.
//!
//! `direct` forwards nothing: a value reaches a peer from its origin only,
//! in one hop (a member that comes, or comes back in a new life, gets each
//! origin's values from the origin). What an origin that crashed had not
//! yet brought to everyone
//! is repaired when its death (a leave, a new life) shows: every node
//! sends the values it took from that origin to its mesh neighbours on the
//! second lane, and a value new to a node on that lane goes on over its
//! mesh (a flood of the repair only). A member that comes (back) gets
//! everything from its mesh neighbours the same way, so after a partition
//! heals the union spreads to both sides. Only the last
//! [`MAX_RECENT_PER_PEER`] values of each origin are kept for the repair:
//! an origin that crashes after a longer stretch unacknowledged (a static
//! membership's long partition) can leave older values with the peers it
//! reached.

use super::Ctx;
use super::{DisMsg, Strategy, StrategyKind, Value, check_peers};
use crate::id::NodeId;
use crate::link::Lane;
use crate::membership::ViewChange;
use crate::overlay;
use crate::time::Instant;
use std::collections::{BTreeMap, VecDeque};

/// Values remembered per origin for the crash repair of `direct`.
pub const MAX_RECENT_PER_PEER: usize = 4096;

#[derive(Debug)]
pub(crate) struct Relay<V> {
    neighbours: Vec<NodeId>,
    /// `direct`: only values from clients are sent on; nobody forwards.
    origin_only: bool,
    /// `direct`: the mesh its repairs travel on, and the latest values
    /// each origin gave this node.
    mesh: Vec<NodeId>,
    recent: BTreeMap<NodeId, VecDeque<V>>,
    /// `direct`: the values this node's clients gave it.
    own: Vec<V>,
}

impl<V: Value> Relay<V> {
    pub fn new(ctx: &mut Ctx<'_, V>) -> Self {
        let mut r = Relay {
            neighbours: Vec::new(),
            origin_only: ctx.cfg.strategy == StrategyKind::Direct,
            mesh: Vec::new(),
            recent: BTreeMap::new(),
            own: Vec::new(),
        };
        r.reroute(ctx, &ViewChange::default());
        r
    }

    /// Recomputes neighbours (and, for `direct`, the mesh); gives new ones
    /// and new lives everything.
    fn reroute(&mut self, ctx: &mut Ctx<'_, V>, change: &ViewChange) {
        let next = overlay::neighbours(ctx.cfg.overlay, ctx.view, ctx.topology);
        if self.origin_only {
            let mesh = overlay::mesh(ctx.view);
            for n in &mesh {
                if !self.mesh.contains(n) || change.restarted.contains(n) {
                    send_all(ctx, n, Lane::Lazy);
                }
            }
            self.mesh = mesh;
            for n in &next {
                if !self.neighbours.contains(n) || change.restarted.contains(n) {
                    for v in &self.own {
                        ctx.links.enqueue(&ctx.cfg.link, n, Lane::Eager, v.clone());
                    }
                }
            }
        } else {
            for n in &next {
                if !self.neighbours.contains(n) || change.restarted.contains(n) {
                    send_all(ctx, n, Lane::Eager);
                }
            }
        }
        self.neighbours = next;
    }

    /// `v` is new here; `from` is the peer it came from (None: a client).
    fn forward(&self, ctx: &mut Ctx<'_, V>, v: &V, from: Option<&NodeId>) {
        if self.origin_only && from.is_some() {
            return;
        }
        for n in &self.neighbours {
            if Some(n) != from {
                ctx.links.enqueue(&ctx.cfg.link, n, Lane::Eager, v.clone());
            }
        }
    }

    /// `direct`: remembers a value its origin gave this node.
    fn remember(&mut self, from: &NodeId, v: &V) {
        let q = self.recent.entry(from.clone()).or_default();
        if q.len() >= MAX_RECENT_PER_PEER {
            q.pop_front();
        }
        q.push_back(v.clone());
    }

    /// `direct`: a repair value new here goes on over the mesh.
    fn repair(&self, ctx: &mut Ctx<'_, V>, v: &V, from: Option<&NodeId>) {
        for n in &self.mesh {
            if Some(n) != from {
                ctx.links.enqueue(&ctx.cfg.link, n, Lane::Lazy, v.clone());
            }
        }
    }
}

/// Everything held, to one peer.
fn send_all<V: Value>(ctx: &mut Ctx<'_, V>, to: &NodeId, lane: Lane) {
    let all: Vec<V> = ctx.store.values().cloned().collect();
    for v in all {
        ctx.links.enqueue(&ctx.cfg.link, to, lane, v);
    }
}

impl<V: Value> Strategy<V> for Relay<V> {
    fn local(&mut self, ctx: &mut Ctx<'_, V>, v: V) {
        if ctx.store.learn(&v) {
            ctx.stats.learned += 1;
            self.forward(ctx, &v, None);
            if self.origin_only {
                self.own.push(v);
            }
        }
    }

    fn link_values(&mut self, ctx: &mut Ctx<'_, V>, from: &NodeId, lane: Lane, values: Vec<V>) {
        if lane == Lane::Lazy && !self.origin_only {
            ctx.stats.ignored += 1;
            return;
        }
        for v in values {
            if ctx.store.learn(&v) {
                ctx.stats.learned += 1;
                match lane {
                    Lane::Lazy => self.repair(ctx, &v, Some(from)),
                    Lane::Eager if self.origin_only => self.remember(from, &v),
                    Lane::Eager => self.forward(ctx, &v, Some(from)),
                }
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
        self.reroute(ctx, change);
        if self.origin_only {
            // Whatever an origin that is gone (or back in a new life) gave
            // us may not have reached everyone: repair it over the mesh.
            for gone in change.left.iter().chain(&change.restarted) {
                if let Some(vs) = self.recent.remove(gone) {
                    for v in vs {
                        self.repair(ctx, &v, None);
                    }
                }
            }
        }
    }

    fn deadline(&self, _cfg: &super::Config) -> Option<Instant> {
        None
    }

    fn neighbours(&self) -> Vec<NodeId> {
        self.neighbours.clone()
    }

    fn check(&self, ctx: &Ctx<'_, V>) -> Result<(), String> {
        check_peers(ctx, "relay neighbours", &self.neighbours)?;
        check_peers(ctx, "the repair mesh", &self.mesh)
    }
}
