//! Push gossip (`gossip`): every batch interval, a node pushes the entries
//! it learned since its last push to `fanout` random peers, once
//! (infect-and-die), fire and forget. Pushes reach almost everyone fast;
//! anti-entropy over the mesh repairs the rest and makes it loss-free.

use super::antientropy::AntiEntropy;
use super::engine::Ctx;
use super::{Entry, Peer, Wire};
use crate::rng::RngExt;
use crate::time::Instant;

#[derive(Debug)]
pub(crate) struct Gossip<V> {
    pub ae: AntiEntropy<V>,
    fresh: Vec<Entry<V>>,
    next_push: Option<Instant>,
    last_push: Option<Instant>,
}

impl<V: Ord + Clone> Gossip<V> {
    pub fn new(me: Peer, members: &[Peer]) -> Self {
        Gossip {
            ae: AntiEntropy::new(me, members, true, false),
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

    pub fn local(&mut self, ctx: &mut Ctx<'_, V>, v: V) {
        let e = self.ae.local(ctx, v);
        self.enqueue(ctx, e);
    }

    pub fn on_push(&mut self, ctx: &mut Ctx<'_, V>, entries: Vec<Entry<V>>) {
        for e in entries {
            if self.ae.add(ctx, e.clone()) {
                self.enqueue(ctx, e);
            }
        }
    }

    pub fn tick(&mut self, ctx: &mut Ctx<'_, V>) {
        if self.next_push.is_some_and(|t| t <= ctx.now) {
            self.next_push = None;
            self.last_push = Some(ctx.now);
            let batch = std::mem::take(&mut self.fresh);
            let others: Vec<Peer> = ctx
                .members
                .iter()
                .copied()
                .filter(|p| *p != ctx.me)
                .collect();
            let mut picked: Vec<Peer> = Vec::new();
            // A partial Fisher-Yates draw of `fanout` distinct peers.
            let mut pool = others;
            for _ in 0..ctx.cfg.fanout.min(pool.len()) {
                let i = ctx.rng.random_range(0..pool.len());
                picked.push(pool.swap_remove(i));
            }
            for p in picked {
                for part in batch.chunks(ctx.cfg.max_batch) {
                    ctx.out.push(p, Wire::Push { e: part.to_vec() });
                }
            }
        }
        self.ae.tick(ctx);
    }

    pub fn deadline(&self, cfg: &super::Config) -> Option<Instant> {
        [self.next_push, self.ae.deadline(cfg)]
            .into_iter()
            .flatten()
            .min()
    }
}
