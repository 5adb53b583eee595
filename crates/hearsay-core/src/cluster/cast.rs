//! Broadcast of application payloads over the active view, Plumtree-style
//! (Leitão, Pereira, Rodrigues 2007): payloads are pushed eagerly along a
//! tree and announced lazily (batched message ids) over the other
//! neighbours; a payload announced but not received within
//! `graft_timeout` is grafted from an announcer (§3.4, with backoff,
//! rotating announcers). The tree is not Plumtree's duplicate-pruned one
//! but a path-vector spanning tree toward the top-ranked member (see
//! [`super::tree`]), so concurrent broadcasts cannot prune a member off it.
//! Payloads wait in a bounded cache for grafts; a slow digest exchange with
//! a random neighbour (anti-entropy, only while payloads flow) repairs what
//! announcements missed. Every queue is bounded; what does not fit is
//! dropped and counted.

use super::tree::{Path, SpanTree};
use crate::dissemination::{MAX_EXTRAS, Mark, SeqSet};
use crate::id::{Epoch, NodeId};
use crate::node::timers::{Timer, earliest};
use crate::outbox::Outbox;
use crate::rng::{Rng, RngExt};
use crate::time::Instant;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// A payload's id: its origin, the origin's life, and the origin's count.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MsgId(pub NodeId, pub Epoch, pub u64);

/// A payload is named by its id: it compares and orders by the id alone,
/// so a set of payloads is a set of ids.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Payload {
    pub id: MsgId,
    pub data: Arc<[u8]>,
}

impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for Payload {}

impl PartialOrd for Payload {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Payload {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.id.cmp(&other.id)
    }
}

impl std::borrow::Borrow<MsgId> for Payload {
    fn borrow(&self) -> &MsgId {
        &self.id
    }
}

impl crate::dissemination::Value for Payload {
    type Key = MsgId;
}

/// Largest payload accepted.
pub const MAX_PAYLOAD: usize = 64 * 1024;
/// Most ids in one announcement or graft.
const MAX_IDS: usize = 512;

/// Broadcast messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CastMsg {
    /// A payload, pushed eagerly (or, with `r`, sent as a repair); `h` is
    /// the hops it has made.
    #[serde(rename = "g")]
    Gossip {
        p: Payload,
        h: u32,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        r: bool,
    },
    /// Lazy announcement: "I have these".
    #[serde(rename = "i")]
    IHave { ids: Vec<MsgId> },
    /// "Send me these" (a repair).
    #[serde(rename = "f")]
    Graft { ids: Vec<MsgId> },
    /// The sender's path to the root of the eager tree (None: it knows no
    /// way there); `hello` when the sender just took the receiver as a
    /// neighbour and wants its path back.
    #[serde(rename = "t")]
    Tree {
        path: Option<Path>,
        /// The sender's version of its path (adverts may reorder).
        v: u64,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        hello: bool,
    },
    /// Anti-entropy: the ids the sender holds.
    #[serde(rename = "d")]
    Digest { vv: Vec<Mark> },
}

impl CastMsg {
    pub fn kind(&self) -> &'static str {
        match self {
            CastMsg::Gossip { .. } => "gossip",
            CastMsg::IHave { .. } => "ihave",
            CastMsg::Graft { .. } => "graft",
            CastMsg::Tree { .. } => "tree",
            CastMsg::Digest { .. } => "digest",
        }
    }

    /// Rough encoded size, for traffic accounting.
    pub fn size(&self) -> usize {
        let id = |m: &MsgId| m.0.as_str().len() + 16;
        8 + match self {
            CastMsg::Gossip { p, .. } => id(&p.id) + p.data.len() + 4,
            CastMsg::IHave { ids } | CastMsg::Graft { ids } => ids.iter().map(id).sum(),
            CastMsg::Tree { path, .. } => path
                .as_ref()
                .map_or(0, |p| p.0.iter().map(|n| n.as_str().len() + 2).sum()),
            CastMsg::Digest { vv } => vv
                .iter()
                .map(|m| m.0.as_str().len() + 16 + 8 * m.3.len())
                .sum(),
        }
    }
}

/// A cached payload sent again on request (a graft or a digest that lacks
/// it), one hop further than it came here.
fn repair(p: &Payload, hops: u32) -> CastMsg {
    CastMsg::Gossip {
        p: p.clone(),
        h: hops.saturating_add(1),
        r: true,
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct CastConfig {
    /// Announcements to lazy neighbours are batched this long.
    pub ihave_interval: Duration,
    /// Wait this long for an announced payload before grafting.
    pub graft_timeout: Duration,
    /// Payloads kept for grafts and repair: at most this many ...
    pub cache_size: usize,
    /// ... for at most this long.
    pub cache_ttl: Duration,
    /// Anti-entropy digest with a random neighbour this often (while
    /// payloads flow).
    pub ae_interval: Duration,
    /// Delivered payloads the application has not taken yet, at most.
    pub max_deliveries: usize,
    /// Announced-but-missing payloads tracked at most.
    pub max_missing: usize,
}

impl Default for CastConfig {
    fn default() -> Self {
        CastConfig {
            ihave_interval: Duration::from_secs(2),
            graft_timeout: Duration::from_millis(1000),
            cache_size: 8192,
            cache_ttl: Duration::from_secs(120),
            ae_interval: Duration::from_secs(10),
            max_deliveries: 65_536,
            max_missing: 8192,
        }
    }
}

impl CastConfig {
    pub fn validate(&self) -> Result<(), String> {
        for (n, d) in [
            ("ihave_interval", self.ihave_interval),
            ("graft_timeout", self.graft_timeout),
            ("ae_interval", self.ae_interval),
            ("cache_ttl", self.cache_ttl),
        ] {
            if d.is_zero() {
                return Err(format!("{n} must be positive"));
            }
        }
        if self.cache_size == 0 || self.max_deliveries == 0 || self.max_missing == 0 {
            return Err("cache_size, max_deliveries and max_missing must be at least 1".into());
        }
        Ok(())
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CastStats {
    pub broadcasts: u64,
    pub delivered: u64,
    pub duplicates: u64,
    pub gossip_sent: u64,
    pub ihave_sent: u64,
    pub grafts_sent: u64,
    pub tree_sent: u64,
    pub repaired: u64,
    pub cache_evicted: u64,
    /// Deliveries dropped because the application did not take them.
    pub deliveries_dropped: u64,
    /// Announcements or ids dropped at a bound.
    pub ids_dropped: u64,
    pub bad_input: u64,
    /// Neighbours that came or went.
    pub neighbour_changes: u64,
}

#[derive(Debug)]
struct Missing {
    announcers: Vec<NodeId>,
    next: usize,
    deadline: Instant,
    tries: u32,
}

/// Grafts tried before an announced payload is given up on.
const MAX_TRIES: u32 = 8;
/// Anti-entropy leaves payloads younger than this alone: they may still
/// be on their way.
const AE_SETTLE: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub(crate) struct Broadcaster {
    cfg: CastConfig,
    me: NodeId,
    epoch: Epoch,
    neighbours: BTreeSet<NodeId>,
    tree: SpanTree,
    /// Tree neighbours (parent and children), and the others.
    eager: BTreeSet<NodeId>,
    lazy: BTreeSet<NodeId>,
    seen: BTreeMap<(NodeId, Epoch), SeqSet>,
    cache: BTreeMap<MsgId, (Payload, Instant, u32)>,
    cache_order: VecDeque<MsgId>,
    missing: BTreeMap<MsgId, Missing>,
    announce: BTreeMap<NodeId, Vec<MsgId>>,
    next_ihave: Timer,
    next_ae: Timer,
    last_delivery: Option<Instant>,
    seq: u64,
    deliveries: VecDeque<Payload>,
    pub stats: CastStats,
}

impl Broadcaster {
    pub fn new(cfg: CastConfig, me: NodeId, epoch: Epoch) -> Self {
        Broadcaster {
            cfg,
            tree: SpanTree::new(me.clone()),
            me,
            epoch,
            neighbours: BTreeSet::new(),
            eager: BTreeSet::new(),
            lazy: BTreeSet::new(),
            seen: BTreeMap::new(),
            cache: BTreeMap::new(),
            cache_order: VecDeque::new(),
            missing: BTreeMap::new(),
            announce: BTreeMap::new(),
            next_ihave: Timer::default(),
            next_ae: Timer::default(),
            last_delivery: None,
            seq: 0,
            deliveries: VecDeque::new(),
            stats: CastStats::default(),
        }
    }

    pub fn drain_deliveries(&mut self) -> impl Iterator<Item = Payload> + '_ {
        self.deliveries.drain(..)
    }

    pub fn tree_path(&self) -> Option<&Path> {
        self.tree.path()
    }

    pub fn eager(&self) -> impl Iterator<Item = &NodeId> {
        self.eager.iter()
    }

    pub fn lazy(&self) -> impl Iterator<Item = &NodeId> {
        self.lazy.iter()
    }

    fn holds(&self, id: &MsgId) -> bool {
        self.seen
            .get(&(id.0.clone(), id.1))
            .is_some_and(|s| s.holds(id.2))
    }

    /// A new neighbour: the tree hello, and a digest of what this member
    /// holds, so a link that appears (a heal, a join) repairs at once what
    /// either side missed, even in a quiet cluster where the periodic
    /// digest has stopped.
    pub fn neighbour_up(&mut self, now: Instant, id: NodeId, out: &mut Outbox<CastMsg>) {
        if self.neighbours.insert(id.clone()) {
            self.stats.tree_sent += 1;
            let path = self.tree.path().cloned();
            let v = self.tree.version;
            out.push(
                id.clone(),
                CastMsg::Tree {
                    path,
                    v,
                    hello: true,
                },
            );
            let vv = self.digest(now);
            if !vv.is_empty() {
                out.push(id, CastMsg::Digest { vv });
            }
            self.resplit();
        }
    }

    pub fn neighbour_down(&mut self, id: &NodeId, out: &mut Outbox<CastMsg>) {
        self.neighbours.remove(id);
        self.announce.remove(id);
        self.missing.retain(|_, m| {
            m.announcers.retain(|a| a != id);
            !m.announcers.is_empty()
        });
        if self.tree.neighbour_down(id) {
            self.advertise(out);
        }
        self.resplit();
    }

    /// The member the eager tree is rooted at changed.
    pub fn set_root(&mut self, root: NodeId, out: &mut Outbox<CastMsg>) {
        if self.tree.set_root(root) {
            self.advertise(out);
        }
        self.resplit();
    }

    /// Tells every neighbour this member's path changed.
    fn advertise(&mut self, out: &mut Outbox<CastMsg>) {
        let path = self.tree.path().cloned();
        let v = self.tree.version;
        for n in &self.neighbours {
            self.stats.tree_sent += 1;
            out.push(
                n.clone(),
                CastMsg::Tree {
                    path: path.clone(),
                    v,
                    hello: false,
                },
            );
        }
    }

    /// Eager: tree neighbours; lazy: the other neighbours.
    fn resplit(&mut self) {
        self.eager = self
            .tree
            .eager()
            .into_iter()
            .filter(|n| self.neighbours.contains(n))
            .collect();
        self.lazy = self.neighbours.difference(&self.eager).cloned().collect();
    }

    /// Records a new payload: delivered once, cached, sent on.
    fn accept(
        &mut self,
        now: Instant,
        p: Payload,
        hops: u32,
        from: Option<&NodeId>,
        out: &mut Outbox<CastMsg>,
    ) {
        self.stats.delivered += 1;
        self.missing.remove(&p.id);
        self.last_delivery = Some(now);
        if self.next_ae.at().is_none() {
            self.next_ae.set(now + self.cfg.ae_interval);
        }
        for n in &self.eager {
            if Some(n) != from {
                self.stats.gossip_sent += 1;
                out.push(
                    n.clone(),
                    CastMsg::Gossip {
                        p: p.clone(),
                        h: hops.saturating_add(1),
                        r: false,
                    },
                );
            }
        }
        for n in &self.lazy {
            if Some(n) != from {
                let q = self.announce.entry(n.clone()).or_default();
                if q.len() < MAX_IDS * 4 {
                    q.push(p.id.clone());
                } else {
                    self.stats.ids_dropped += 1;
                }
            }
        }
        if !self.announce.is_empty() && self.next_ihave.at().is_none() {
            self.next_ihave.set(now + self.cfg.ihave_interval);
        }
        self.cache.insert(p.id.clone(), (p.clone(), now, hops));
        self.cache_order.push_back(p.id.clone());
        self.evict(now);
        if self.deliveries.len() >= self.cfg.max_deliveries {
            self.deliveries.pop_front();
            self.stats.deliveries_dropped += 1;
        }
        self.deliveries.push_back(p);
    }

    fn evict(&mut self, now: Instant) {
        while let Some(id) = self.cache_order.front() {
            let old = self
                .cache
                .get(id)
                .is_none_or(|(_, at, _)| *at + self.cfg.cache_ttl <= now);
            if self.cache.len() <= self.cfg.cache_size && !old {
                break;
            }
            let id = self.cache_order.pop_front().expect("front");
            if self.cache.remove(&id).is_some() {
                self.stats.cache_evicted += 1;
            }
        }
    }

    /// A payload from the application.
    pub fn broadcast(&mut self, now: Instant, data: Arc<[u8]>, out: &mut Outbox<CastMsg>) -> MsgId {
        self.seq += 1;
        let id = MsgId(self.me.clone(), self.epoch, self.seq);
        self.seen
            .entry((self.me.clone(), self.epoch))
            .or_default()
            .insert(self.seq);
        self.stats.broadcasts += 1;
        let p = Payload {
            id: id.clone(),
            data,
        };
        self.accept(now, p, 0, None, out);
        id
    }

    pub fn handle(&mut self, now: Instant, from: &NodeId, msg: CastMsg, out: &mut Outbox<CastMsg>) {
        match msg {
            CastMsg::Gossip { p, h, r } => self.on_gossip(now, from, p, h, r, out),
            CastMsg::IHave { ids } => self.on_ihave(now, from, ids),
            CastMsg::Graft { ids } => {
                for id in ids.into_iter().take(MAX_IDS) {
                    if let Some((p, _, h)) = self.cache.get(&id) {
                        self.stats.gossip_sent += 1;
                        out.push(from.clone(), repair(p, *h));
                    }
                }
            }
            CastMsg::Tree { path, v, hello } => {
                if self.tree.advert(from, v, path) {
                    self.advertise(out);
                } else if hello {
                    self.stats.tree_sent += 1;
                    let path = self.tree.path().cloned();
                    let v = self.tree.version;
                    out.push(
                        from.clone(),
                        CastMsg::Tree {
                            path,
                            v,
                            hello: false,
                        },
                    );
                }
                self.resplit();
            }
            CastMsg::Digest { vv } => self.on_digest(now, from, vv, out),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_gossip(
        &mut self,
        now: Instant,
        from: &NodeId,
        p: Payload,
        h: u32,
        repair: bool,
        out: &mut Outbox<CastMsg>,
    ) {
        if p.data.len() > MAX_PAYLOAD || p.id.2 == 0 || p.id.0 == self.me {
            // Sequence numbers start at 1; our own payloads do not come back
            // as news.
            self.stats.bad_input += 1;
            return;
        }
        let fresh = self
            .seen
            .entry((p.id.0.clone(), p.id.1))
            .or_default()
            .insert(p.id.2);
        if let Some(s) = self.seen.get_mut(&(p.id.0.clone(), p.id.1)) {
            // A hole nobody can fill (its payload aged out everywhere)
            // must not grow this without bound.
            s.bound(MAX_EXTRAS * 4);
        }
        if fresh {
            self.accept(now, p, h, Some(from), out);
        } else {
            self.missing.remove(&p.id);
            if !repair {
                self.stats.duplicates += 1;
            }
        }
    }

    fn on_ihave(&mut self, now: Instant, from: &NodeId, ids: Vec<MsgId>) {
        for id in ids.into_iter().take(MAX_IDS) {
            if self.holds(&id) || id.2 == 0 || id.0 == self.me {
                continue;
            }
            if !self.missing.contains_key(&id) && self.missing.len() >= self.cfg.max_missing {
                self.stats.ids_dropped += 1;
                continue;
            }
            let m = self.missing.entry(id).or_insert_with(|| Missing {
                announcers: Vec::new(),
                next: 0,
                deadline: now + self.cfg.graft_timeout,
                tries: 0,
            });
            if !m.announcers.contains(from) && m.announcers.len() < 8 {
                m.announcers.push(from.clone());
            }
        }
    }

    /// A neighbour's digest: send it the settled cached payloads it lacks
    /// (bounded).
    fn on_digest(&mut self, now: Instant, from: &NodeId, vv: Vec<Mark>, out: &mut Outbox<CastMsg>) {
        let theirs: BTreeMap<(&NodeId, Epoch), (u64, BTreeSet<u64>)> = vv
            .iter()
            .take(65_536)
            .map(|Mark(o, e, c, x)| ((o, *e), (*c, x.iter().copied().collect())))
            .collect();
        let mut sent = 0;
        let mut fresh = Vec::new();
        for (id, (p, at, h)) in &self.cache {
            if sent >= MAX_IDS {
                break;
            }
            let has = theirs
                .get(&(&id.0, id.1))
                .is_some_and(|(c, x)| id.2 <= *c || x.contains(&id.2));
            if has {
                continue;
            }
            if *at + AE_SETTLE > now {
                // Likely still on its way down the tree: announce it at
                // once rather than send it, so the peer grafts it only if
                // it is still missing a graft timeout later (a partition
                // that heals just after a broadcast is repaired in a
                // second, not at the next anti-entropy round).
                if fresh.len() < MAX_IDS {
                    fresh.push(id.clone());
                }
                continue;
            }
            sent += 1;
            self.stats.repaired += 1;
            self.stats.gossip_sent += 1;
            out.push(from.clone(), repair(p, *h));
        }
        if !fresh.is_empty() {
            out.push(from.clone(), CastMsg::IHave { ids: fresh });
        }
    }

    fn digest(&self, now: Instant) -> Vec<Mark> {
        // Only origins with payloads still in the cache window matter.
        let mut recent: BTreeSet<(&NodeId, Epoch)> = BTreeSet::new();
        for (id, (_, at, _)) in &self.cache {
            if *at + self.cfg.cache_ttl > now {
                recent.insert((&id.0, id.1));
            }
        }
        recent
            .into_iter()
            .filter_map(|(o, e)| Some(self.seen.get(&(o.clone(), e))?.mark(o, e)))
            .collect()
    }

    pub fn tick(&mut self, now: Instant, rng: &mut Rng, out: &mut Outbox<CastMsg>) {
        // Grafts for payloads announced but not received in time.
        let mut grafts: BTreeMap<NodeId, Vec<MsgId>> = BTreeMap::new();
        let mut give_up = Vec::new();
        for (id, m) in self.missing.iter_mut() {
            if m.deadline > now {
                continue;
            }
            if m.tries >= MAX_TRIES || m.announcers.is_empty() {
                give_up.push(id.clone());
                continue;
            }
            let p = m.announcers[m.next % m.announcers.len()].clone();
            m.next += 1;
            m.deadline = now + self.cfg.graft_timeout * (1 << m.tries.min(4));
            m.tries += 1;
            grafts.entry(p).or_default().push(id.clone());
        }
        for id in give_up {
            self.missing.remove(&id);
            self.stats.ids_dropped += 1;
        }
        // Held by now some other way (a repair, a duplicate's path).
        let seen = &self.seen;
        self.missing.retain(|id, _| {
            !seen
                .get(&(id.0.clone(), id.1))
                .is_some_and(|s| s.holds(id.2))
        });
        for (p, ids) in grafts {
            for part in ids.chunks(MAX_IDS) {
                self.stats.grafts_sent += 1;
                out.push(p.clone(), CastMsg::Graft { ids: part.to_vec() });
            }
        }
        if self.next_ihave.fire(now) {
            for (n, ids) in std::mem::take(&mut self.announce) {
                if !self.lazy.contains(&n) {
                    continue;
                }
                for part in ids.chunks(MAX_IDS) {
                    self.stats.ihave_sent += 1;
                    out.push(n.clone(), CastMsg::IHave { ids: part.to_vec() });
                }
            }
        }
        if self.next_ae.fire(now) {
            let neighbours: Vec<&NodeId> = self.eager.iter().chain(&self.lazy).collect();
            if !neighbours.is_empty() {
                let n = neighbours[rng.random_range(0..neighbours.len())].clone();
                let vv = self.digest(now);
                if !vv.is_empty() {
                    out.push(n, CastMsg::Digest { vv });
                }
            }
            // While payloads delivered here are still in the cache window
            // (what a digest can repair): a partition that heals after the
            // last broadcast still gets its digests; a quiet cluster falls
            // silent after cache_ttl.
            if self
                .last_delivery
                .is_some_and(|t| now < t + self.cfg.cache_ttl)
            {
                self.next_ae.set(now + self.cfg.ae_interval);
            }
        }
        self.evict(now);
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        earliest([
            self.missing.values().map(|m| m.deadline).min(),
            self.next_ihave.at(),
            self.next_ae.at(),
        ])
    }

    pub fn check(&self) -> Result<(), String> {
        if let Some(p) = self.eager.intersection(&self.lazy).next() {
            return Err(format!("{p} is both eager and lazy"));
        }
        if self.eager.contains(&self.me) || self.lazy.contains(&self.me) {
            return Err("this member is its own neighbour".into());
        }
        if self.cache.len() > self.cfg.cache_size {
            return Err("the cache is over its bound".into());
        }
        for id in self.missing.keys() {
            if self.holds(id) {
                return Err("a held payload is still awaited".into());
            }
        }
        Ok(())
    }
}
