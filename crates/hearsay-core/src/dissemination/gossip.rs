//! Push gossip (`gossip`): every batch interval, a node pushes the entries
//! it learned since its last push to `fanout` random peers, once
//! (infect-and-die), fire and forget. Pushes reach almost everyone fast;
//! anti-entropy over the mesh repairs the rest and makes it loss-free.

use super::Ctx;
use super::antientropy::AntiEntropy;
use super::{DisMsg, Entry, Strategy, Value};
use crate::id::NodeId;
use crate::link::Lane;
use crate::membership::ViewChange;
use crate::rng::RngExt;
use crate::time::Instant;
use crate::wire::Msg;

#[derive(Debug)]
pub(crate) struct Gossip<V> {
    ae: AntiEntropy<V>,
    fresh: Vec<Entry<V>>,
    next_push: Option<Instant>,
    last_push: Option<Instant>,
}

impl<V: Value> Gossip<V> {
    pub fn new(ctx: &Ctx<'_, V>) -> Self {
        Gossip {
            ae: AntiEntropy::new(ctx, true, false),
            fresh: Vec::new(),
            next_push: None,
            last_push: None,
        }
    }

    fn enqueue(&mut self, ctx: &Ctx<'_, V>, e: Entry<V>) {
        self.fresh.push(e);
        let at = self
            .last_push
            .map_or(ctx.now, |t| ctx.now.max(t + ctx.links.pace()));
        self.next_push.get_or_insert(at);
    }

    fn on_push(&mut self, ctx: &mut Ctx<'_, V>, entries: Vec<Entry<V>>) {
        for e in entries {
            if self.ae.add(ctx, e.clone()) {
                self.enqueue(ctx, e);
            }
        }
    }
}

/// `k` distinct peers at random: a partial Fisher-Yates draw, by index
/// into the view when it is large (no copy of it per push).
fn pick<V: Value>(ctx: &mut Ctx<'_, V>, k: usize) -> Vec<NodeId> {
    let ranked = ctx.view.ranked();
    let me = ctx.view.me();
    if ranked.len() <= 8 * k.max(1) {
        let mut pool: Vec<&NodeId> = ranked.iter().filter(|p| *p != me).collect();
        let mut picked = Vec::new();
        for _ in 0..k.min(pool.len()) {
            let i = ctx.rng.random_range(0..pool.len());
            picked.push(pool.swap_remove(i).clone());
        }
        return picked;
    }
    // Far more peers than picks: rejection is quick and bounded (a repeat
    // is unlikely; the draws stop after 8 tries per pick).
    let mut picked: Vec<NodeId> = Vec::with_capacity(k);
    for _ in 0..8 * k {
        if picked.len() == k {
            break;
        }
        let p = &ranked[ctx.rng.random_range(0..ranked.len())];
        if p != me && !picked.contains(p) {
            picked.push(p.clone());
        }
    }
    picked
}

impl<V: Value> Strategy<V> for Gossip<V> {
    fn local(&mut self, ctx: &mut Ctx<'_, V>, v: V) {
        let e = self.ae.local(ctx, v);
        self.enqueue(ctx, e);
    }

    fn link_values(&mut self, ctx: &mut Ctx<'_, V>, _from: &NodeId, _lane: Lane, _v: Vec<V>) {
        ctx.stats.ignored += 1;
    }

    fn message(&mut self, ctx: &mut Ctx<'_, V>, from: &NodeId, msg: DisMsg<V>) {
        match msg {
            DisMsg::Push { e } => self.on_push(ctx, e),
            other => self.ae.message(ctx, from, other),
        }
    }

    fn tick(&mut self, ctx: &mut Ctx<'_, V>) {
        if self.next_push.is_some_and(|t| t <= ctx.now) {
            self.next_push = None;
            self.last_push = Some(ctx.now);
            let batch = std::mem::take(&mut self.fresh);
            let picked = pick(ctx, ctx.cfg.fanout);
            for p in picked {
                for part in batch.chunks(ctx.cfg.link.max_batch) {
                    let e = part.to_vec();
                    ctx.out.push(p.clone(), Msg::Dis(DisMsg::Push { e }));
                }
            }
        }
        self.ae.tick(ctx);
    }

    fn view_changed(&mut self, ctx: &mut Ctx<'_, V>, change: &ViewChange) {
        self.ae.view_changed(ctx, change);
    }

    fn deadline(&self, cfg: &super::Config) -> Option<Instant> {
        crate::timers::earliest([self.next_push, self.ae.deadline(cfg)])
    }

    fn neighbours(&self) -> Vec<NodeId> {
        Strategy::neighbours(&self.ae)
    }

    fn check(&self, ctx: &Ctx<'_, V>) -> Result<(), String> {
        self.ae.check(ctx)
    }
}
