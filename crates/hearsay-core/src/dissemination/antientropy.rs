//! Digest anti-entropy with completion tracking (`pull`, `push-pull`, and
//! `gossip`'s repair).
//!
//! Entries are tagged (origin, origin's epoch, seq) and summarised by a
//! version vector. A round sends a digest to one peer; the peer answers
//! with the entries the sender lacks, whether it holds more than fitted,
//! and only its marks for the origin lives where the digest showed more
//! than it holds (push-pull sends those entries back). A digest is the
//! whole vector while the vector is small; past
//! [`super::Config::ae_digest_full_upto`] lives it lists the lives that
//! changed lately (or that this peer was seen to differ on) and sums the
//! rest into buckets ([`super::lives`]). A peer that finds a bucket
//! differing sends what it added lately of that bucket, and lists the
//! bucket in full in its next digest to the sender, which makes the next
//! exchange exact; a bucket summed as zero holds nothing, so a restarted
//! member is answered exactly at once. A mesh neighbour that
//! lacked nothing of a digest is *confirmed* as of that digest; any new
//! entry unconfirms them all. Rounds run only while a neighbour is unconfirmed, a peer is known
//! to have more, or (when exploring) shortly after a change, so a settled
//! cluster is silent. Loss-freedom: on a connected mesh, every node keeps
//! retrying each neighbour (with backoff) until it confirmed holding all of
//! this node's entries, so every entry reaches every node after a partition
//! heals.

use super::Ctx;
use super::lives::{self, Lives, Origin};
use super::seqset::SeqSet;
use super::{Clock, DisMsg, Entry, Mark, Strategy, Value, check_peers};
use crate::id::NodeId;
use crate::link::Lane;
use crate::membership::ViewChange;
use crate::overlay;
use crate::rng::RngExt;
use crate::time::Instant;
use crate::wire::Msg;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Longest a peer is left alone after it failed to answer.
const MAX_BACKOFF: Duration = Duration::from_secs(4);

#[derive(Debug)]
pub(crate) struct AntiEntropy<V> {
    entries: BTreeMap<(Origin, u64), V>,
    lives: Lives,
    own_seq: u64,
    version: u64,
    changed_at: Instant,
    neighbours: Vec<NodeId>,
    /// Neighbour -> our version it confirmed holding.
    confirmed: BTreeMap<NodeId, u64>,
    /// Digests awaiting an answer, by peer: when sent, this node's version
    /// then (what an answer can confirm the peer holds), and the number of
    /// buckets its sums had.
    outstanding: BTreeMap<NodeId, (Instant, u64, usize)>,
    /// Peers that did not answer: how long we wait before asking again.
    backoff: BTreeMap<NodeId, Duration>,
    /// ... and until when.
    blocked: BTreeMap<NodeId, Instant>,
    /// Peers known to hold entries we lack.
    ahead: BTreeSet<NodeId>,
    /// Per peer, the fine buckets ([`lives::FINE`]) to list in full in the
    /// next digest to it: it was seen to differ on them.
    want: BTreeMap<NodeId, BTreeSet<u8>>,
    /// The clock as last sent, and the version it was built at.
    clock_at: Option<(u64, Clock)>,
    next_round: Option<Instant>,
    last_round: Option<Instant>,
    rounds: u64,
    /// Answer a digest's clock with the entries the peer lacks (push-pull).
    push: bool,
    /// Also run rounds with random peers shortly after a change (spreads
    /// values in `pull`/`push-pull`; off for `gossip`, which pushes).
    explore: bool,
}

impl<V: Value> AntiEntropy<V> {
    pub fn new(ctx: &Ctx<'_, V>, push: bool, explore: bool) -> Self {
        AntiEntropy {
            entries: BTreeMap::new(),
            lives: Lives::default(),
            own_seq: 0,
            version: 0,
            changed_at: Instant::ZERO,
            neighbours: overlay::mesh(ctx.view),
            confirmed: BTreeMap::new(),
            outstanding: BTreeMap::new(),
            backoff: BTreeMap::new(),
            blocked: BTreeMap::new(),
            ahead: BTreeSet::new(),
            want: BTreeMap::new(),
            clock_at: None,
            next_round: None,
            last_round: None,
            rounds: 0,
            push,
            explore,
        }
    }

    /// Tags a value from a client.
    pub fn local(&mut self, ctx: &mut Ctx<'_, V>, v: V) -> Entry<V> {
        self.own_seq += 1;
        let e = Entry(ctx.me().clone(), ctx.epoch, self.own_seq, v);
        self.add(ctx, e.clone());
        e
    }

    /// Records an entry; returns true if its tag is new here (the value is
    /// then also offered to the store).
    pub fn add(&mut self, ctx: &mut Ctx<'_, V>, e: Entry<V>) -> bool {
        let Entry(origin, epoch, seq, v) = e;
        let origin = (origin, epoch);
        if !self.lives.insert(ctx.now, &origin, seq) {
            return false;
        }
        if ctx.store.learn(&v) {
            ctx.stats.learned += 1;
        }
        self.entries.insert((origin, seq), v);
        self.version += 1;
        self.changed_at = ctx.now;
        self.schedule(ctx.now, ctx.cfg.ae_interval);
        true
    }

    /// Asks for a round at `at`, but never sooner than `interval` after the
    /// last one: rounds are the rate limit of anti-entropy traffic.
    fn schedule(&mut self, at: Instant, interval: Duration) {
        let at = self.last_round.map_or(at, |l| at.max(l + interval));
        if self.next_round.is_none_or(|t| t > at) {
            self.next_round = Some(at);
        }
    }

    /// This node's clock as a digest, cached until an entry is added (a
    /// digest goes out every round; building it is most of a round's work).
    fn clock(&mut self) -> Clock {
        if self
            .clock_at
            .as_ref()
            .is_none_or(|(v, _)| *v != self.version)
        {
            let c: Clock = self.lives.iter().map(|((o, e), c)| c.mark(o, *e)).collect();
            self.clock_at = Some((self.version, c));
        }
        self.clock_at
            .as_ref()
            .map(|(_, c)| c.clone())
            .unwrap_or_default()
    }

    /// How a peer's digest compares with what this node holds. Without
    /// sums it lists every life the peer holds: both clocks are walked
    /// together. With sums, only the lives it lists are looked up, and
    /// ours in buckets it summed as zero are the ones it lacks outright.
    fn compare<'a>(&'a self, theirs: &'a [Mark], s: &[u64]) -> Compare<'a> {
        let n = s.len();
        if n == 0 {
            return Compare {
                pairs: side_by_side(&self.lives, theirs).collect(),
                listed: BTreeSet::new(),
                differ: Vec::new(),
            };
        }
        let mut shares = Vec::new();
        let mut pairs = self.lookup(theirs, Some(&mut shares));
        let listed: BTreeSet<&Origin> = pairs
            .iter()
            .filter_map(|p| match p {
                Pair::Both(k, ..) => Some(*k),
                _ => None,
            })
            .collect();
        let mine = self.lives.sums(n, shares);
        let empty: BTreeSet<usize> = (0..n).filter(|i| s[*i] == 0 && mine[*i] != 0).collect();
        let differ = (0..n).map(|i| s[i] != 0 && s[i] != mine[i]).collect();
        if !empty.is_empty() {
            pairs.extend(
                self.lives
                    .in_buckets(n, &empty)
                    .into_iter()
                    .filter(|o| !listed.contains(o))
                    .map(Pair::Mine),
            );
        }
        Compare {
            pairs,
            listed,
            differ,
        }
    }

    /// The lives a partial listing names, looked up here (sorted, each
    /// once); the shares of those held go to `shares` if asked for.
    fn lookup<'a>(
        &'a self,
        theirs: &'a [Mark],
        mut shares: Option<&mut Vec<lives::Share>>,
    ) -> Vec<Pair<'a>> {
        sorted(theirs)
            .into_iter()
            .map(|m| match self.lives.entry(&m.0, m.1) {
                Some((k, mine, share)) => {
                    if let Some(v) = shares.as_deref_mut() {
                        v.push(share);
                    }
                    Pair::Both(k, mine, m)
                }
                None => Pair::Theirs(m),
            })
            .collect()
    }

    /// Does a peer with digest `theirs` hold everything we hold?
    fn covered_by(cmp: &Compare<'_>) -> bool {
        !cmp.differ.contains(&true)
            && cmp.pairs.iter().all(|pair| match pair {
                Pair::Mine(_) => false,
                Pair::Both(_, mine, their) => mine.within_mark(their),
                Pair::Theirs(_) => true,
            })
    }

    /// Entries a peer lacks, at most `max`: all of the lives it lacks
    /// outright, and what is above its marks of the others.
    fn missing(&self, pairs: &[Pair<'_>], max: usize) -> Vec<Entry<V>> {
        let mut out = Vec::new();
        for pair in pairs {
            let (key, contig, extra): (&Origin, u64, &[u64]) = match pair {
                Pair::Mine(k) => (k, 0, &[]),
                Pair::Both(k, mine, their) if !mine.within_mark(their) => (k, their.2, &their.3),
                _ => continue,
            };
            let lo = (key.clone(), contig.saturating_add(1));
            for (((origin, epoch), seq), v) in self.entries.range(lo..=(key.clone(), u64::MAX)) {
                if extra.contains(seq) {
                    continue;
                }
                if out.len() >= max {
                    return out;
                }
                out.push(Entry(origin.clone(), *epoch, *seq, v.clone()));
            }
        }
        out
    }

    /// This node's marks for the origin lives where the peer holds more
    /// (an empty mark where this node holds none of an origin life).
    fn lacking(pairs: &[Pair<'_>]) -> Clock {
        pairs
            .iter()
            .filter_map(|pair| match pair {
                Pair::Theirs(m) if m.2 > 0 || !m.3.is_empty() => {
                    Some(Mark(m.0.clone(), m.1, 0, Vec::new()))
                }
                Pair::Both(k, mine, their) if !mine.covers_mark(their) => {
                    Some(mine.mark(&k.0, k.1))
                }
                _ => None,
            })
            .collect()
    }

    /// A peer's digest: answer with what it lacks, whether there is more,
    /// and (for push-pull) the marks of what this node lacks of its clock.
    /// Where its sums differ from ours, also what we added lately there,
    /// and list those buckets in full in our next digest to it.
    pub fn on_digest(&mut self, ctx: &mut Ctx<'_, V>, from: &NodeId, theirs: Clock, s: Vec<u64>) {
        if !s.is_empty() && !lives::valid_coarse(s.len()) {
            ctx.stats.ignored += 1;
            return;
        }
        self.lives.age(ctx.now, recent_window(ctx.cfg));
        let max = ctx.cfg.link.max_batch;
        let cmp = self.compare(&theirs, &s);
        let lacks = Self::lacking(&cmp.pairs);
        let mut e = self.missing(&cmp.pairs, max);
        let differ = cmp.differ.contains(&true);
        if differ {
            for (o, seq, bucket) in self.lives.recent() {
                if e.len() >= max {
                    break;
                }
                if cmp.differs(bucket)
                    && !cmp.listed.contains(o)
                    && let Some(v) = self.entries.get(&(o.clone(), seq))
                {
                    e.push(Entry(o.0.clone(), o.1, seq, v.clone()));
                }
            }
        }
        // A full batch may have left some out: the peer asks again.
        let more = e.len() >= max;
        let covered = self.neighbours.contains(from) && Self::covered_by(&cmp);
        let d: Vec<u8> = (0..cmp.differ.len())
            .filter(|i| cmp.differ[*i])
            .map(|i| i as u8)
            .collect();
        let n = cmp.differ.len();
        let mut want: BTreeSet<u8> = d
            .iter()
            .flat_map(|b| lives::fine_of(n, usize::from(*b)))
            .collect();
        want.extend(lacks.iter().map(|m| lives::bucket_of(&(m.0.clone(), m.1))));
        drop(cmp);
        let w = if self.push {
            lacks.clone()
        } else {
            Clock::default()
        };
        let sums_differ = !d.is_empty();
        ctx.out
            .push(from.clone(), Msg::Dis(DisMsg::Delta { e, more, w, d }));
        if covered {
            self.confirmed.insert(from.clone(), self.version);
        }
        // The peer holds more: pull it, listing in full what it showed.
        // A bucket whose sums differ may hide what it holds and we lack
        // (with pull nobody else asks for us): ask it too, that bucket
        // listed in full, so the answer says for sure.
        if !lacks.is_empty() || (!self.push && sums_differ) {
            self.ahead.insert(from.clone());
            self.schedule(ctx.now, ctx.cfg.ae_interval);
        }
        // Where the sums differed, the next digest to it lists the bucket
        // in full (a neighbour's, or a peer's we pull from: the others are
        // not asked again soon).
        if !want.is_empty() && (self.neighbours.contains(from) || self.ahead.contains(from)) {
            self.want.entry(from.clone()).or_default().extend(want);
        }
    }

    /// A peer's delta: take the entries. An answer to our digest also says
    /// whether the peer held all we had then (`w` empty and no bucket
    /// differing: confirmed as of that digest) and whether it holds more
    /// (`more`: ask it again); push-pull sends back what `w` shows the
    /// peer lacks.
    pub fn on_delta(
        &mut self,
        ctx: &mut Ctx<'_, V>,
        from: &NodeId,
        entries: Vec<Entry<V>>,
        more: bool,
        w: Clock,
        differ: Vec<u8>,
    ) {
        let asked = self.outstanding.remove(from);
        if asked.is_some() {
            self.backoff.remove(from);
            self.blocked.remove(from);
        }
        for e in entries {
            self.add(ctx, e);
        }
        if let Some((_, version, n)) = asked {
            if w.is_empty() && differ.is_empty() && self.neighbours.contains(from) {
                let v = self.confirmed.entry(from.clone()).or_default();
                *v = (*v).max(version);
            }
            // Buckets that differ: list them in full next time (if it is
            // asked again soon).
            let again = more || self.neighbours.contains(from);
            if n > 0 && !differ.is_empty() && again {
                self.want.entry(from.clone()).or_default().extend(
                    differ
                        .iter()
                        .filter(|b| usize::from(**b) < n)
                        .flat_map(|b| lives::fine_of(n, usize::from(*b))),
                );
            }
            if more {
                self.ahead.insert(from.clone());
            } else {
                self.ahead.remove(from);
            }
        }
        if self.unconfirmed().next().is_some() || !self.ahead.is_empty() {
            self.schedule(ctx.now, ctx.cfg.ae_interval);
        }
        // Push-pull: the answer to our digest shows what the peer lacks.
        if self.push && asked.is_some() && !w.is_empty() {
            let e = self.missing(&self.lookup(&w, None), ctx.cfg.link.max_batch);
            if !e.is_empty() {
                ctx.out.push(
                    from.clone(),
                    Msg::Dis(DisMsg::Delta {
                        e,
                        more: false,
                        w: Clock::default(),
                        d: Vec::new(),
                    }),
                );
            }
        }
    }

    /// The digest for a round with `peer`: the whole clock while it is
    /// small; else the lives that changed lately and those in the buckets
    /// the peer was seen to differ on, and sums of the rest.
    fn digest_for(&mut self, ctx: &Ctx<'_, V>, peer: &NodeId) -> (Clock, Vec<u64>) {
        let want = self.want.remove(peer).unwrap_or_default();
        if self.lives.len() <= ctx.cfg.ae_digest_full_upto {
            return (self.clock(), Vec::new());
        }
        self.lives.age(ctx.now, recent_window(ctx.cfg));
        let n = lives::coarse(self.lives.len());
        let buckets: BTreeSet<usize> = want.iter().map(|f| usize::from(*f) & (n - 1)).collect();
        let mut listed = self.lives.recent_lives();
        listed.extend(self.lives.in_buckets(n, &buckets));
        let s = self
            .lives
            .sums(n, listed.iter().filter_map(|o| self.lives.share(o)));
        let vv = listed
            .iter()
            .filter_map(|o| self.lives.get(o).map(|c| c.mark(&o.0, o.1)))
            .collect();
        (vv, s)
    }

    fn unconfirmed(&self) -> impl Iterator<Item = &NodeId> + '_ {
        self.neighbours
            .iter()
            .filter(|n| self.confirmed.get(*n) != Some(&self.version))
    }

    fn available(&self, now: Instant, p: &NodeId) -> bool {
        !self.outstanding.contains_key(p) && self.blocked.get(p).is_none_or(|t| *t <= now)
    }

    /// Forget what we knew of a peer's state: it left, or lost everything.
    fn forget_peer(&mut self, p: &NodeId) {
        self.confirmed.remove(p);
        self.outstanding.remove(p);
        self.backoff.remove(p);
        self.blocked.remove(p);
        self.ahead.remove(p);
        self.want.remove(p);
    }

    fn hot(&self, ctx: &Ctx<'_, V>) -> bool {
        self.explore && ctx.now < self.changed_at + ctx.cfg.ae_interval * 5
    }

    pub fn tick(&mut self, ctx: &mut Ctx<'_, V>) {
        let now = ctx.now;
        let timeout = (ctx.cfg.ae_interval * 5).max(Duration::from_millis(500));
        let late: Vec<NodeId> = self
            .outstanding
            .iter()
            .filter(|(_, (t, ..))| *t + timeout <= now)
            .map(|(p, _)| p.clone())
            .collect();
        for p in late {
            self.outstanding.remove(&p);
            let wait = self
                .backoff
                .get(&p)
                .map_or(ctx.cfg.ae_interval, |d| (*d * 2).min(MAX_BACKOFF));
            self.backoff.insert(p.clone(), wait);
            self.blocked.insert(p, now + wait);
            self.schedule(now + wait, ctx.cfg.ae_interval);
        }
        let unblocked: Vec<NodeId> = self
            .blocked
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(p, _)| p.clone())
            .collect();
        for p in unblocked {
            self.blocked.remove(&p);
            self.schedule(now, ctx.cfg.ae_interval);
        }
        if self.next_round.is_none_or(|t| t > now) {
            return;
        }
        self.next_round = None;
        // Peers known to be ahead first (pull what we lack); then, while
        // hot, every other round goes to a random member, which spreads news
        // in O(log N) rounds instead of the mesh's diameter; otherwise an
        // unconfirmed mesh neighbour.
        self.rounds += 1;
        let explore = self.hot(ctx) && self.rounds.is_multiple_of(2);
        let mut target = self.ahead.iter().find(|p| self.available(now, p)).cloned();
        if target.is_none() && explore {
            target = random_peer(ctx).filter(|p| self.available(now, p));
        }
        if target.is_none() {
            let choices: Vec<&NodeId> = self
                .unconfirmed()
                .filter(|p| self.available(now, p))
                .collect();
            if !choices.is_empty() {
                target = Some(choices[ctx.rng.random_range(0..choices.len())].clone());
            }
        }
        if target.is_none() && self.hot(ctx) {
            target = random_peer(ctx).filter(|p| self.available(now, p));
        }
        let sent = target.is_some();
        if let Some(p) = target {
            let (vv, s) = self.digest_for(ctx, &p);
            let s_len = s.len();
            ctx.out.push(p.clone(), Msg::Dis(DisMsg::Digest { vv, s }));
            self.outstanding.insert(p, (now, self.version, s_len));
            self.last_round = Some(now);
        }
        let more = self.unconfirmed().any(|p| self.available(now, p))
            || !self.ahead.is_empty()
            || self.hot(ctx);
        if sent && more {
            self.schedule(now, ctx.cfg.ae_interval);
        }
    }

    pub fn deadline(&self, cfg: &super::Config) -> Option<Instant> {
        let timeout = (cfg.ae_interval * 5).max(Duration::from_millis(500));
        let late = self.outstanding.values().map(|(t, ..)| *t + timeout).min();
        let unblock = self.blocked.values().min().copied();
        [self.next_round, late, unblock].into_iter().flatten().min()
    }
}

/// A peer's digest against what this node holds.
struct Compare<'a> {
    /// The lives to act on: those the digest lists (held here or not), and
    /// ours it lacks outright.
    pairs: Vec<Pair<'a>>,
    /// With sums: the lives the digest lists that this node holds.
    listed: BTreeSet<&'a Origin>,
    /// Per bucket of the digest's sums: both hold some, not the same.
    differ: Vec<bool>,
}

impl Compare<'_> {
    /// Does the bucket holding fine bucket `f` differ?
    fn differs(&self, f: u8) -> bool {
        let n = self.differ.len();
        n > 0 && self.differ[usize::from(f) & (n - 1)]
    }
}

/// How long a change counts as recent: a digest lists the lives changed
/// within it by name.
fn recent_window(cfg: &super::Config) -> Duration {
    (cfg.ae_interval * 4).max(Duration::from_secs(1))
}

/// One origin life in either of two clocks.
enum Pair<'a> {
    Mine(&'a Origin),
    Theirs(&'a Mark),
    Both(&'a Origin, &'a SeqSet, &'a Mark),
}

/// A digest's marks in origin order, each origin life once. A digest is
/// sorted as this code writes it; one that is not (another
/// implementation, a corrupt peer) is sorted here, and a duplicate keeps
/// its first mark.
fn sorted(theirs: &[Mark]) -> Vec<&Mark> {
    let key = |m: &Mark| (m.0.clone(), m.1);
    let mut t: Vec<&Mark> = theirs.iter().collect();
    if !theirs
        .windows(2)
        .all(|w| (&w[0].0, w[0].1) < (&w[1].0, w[1].1))
    {
        t.sort_by_key(|m| key(m));
        t.dedup_by(|a, b| (&a.0, a.1) == (&b.0, b.1));
    }
    t
}

/// This node's clock and a peer's full digest, walked together in origin
/// order (no lookup tables, no copies).
fn side_by_side<'a>(mine: &'a Lives, theirs: &'a [Mark]) -> impl Iterator<Item = Pair<'a>> {
    let key = |m: &'a Mark| (&m.0, m.1);
    let mut m = mine.iter().peekable();
    let mut t = sorted(theirs).into_iter().peekable();
    std::iter::from_fn(move || match (m.peek(), t.peek()) {
        (Some((k, _)), Some(x)) => match (&k.0, k.1).cmp(&key(x)) {
            std::cmp::Ordering::Less => m.next().map(|(k, _)| Pair::Mine(k)),
            std::cmp::Ordering::Greater => t.next().map(Pair::Theirs),
            std::cmp::Ordering::Equal => {
                let (k, s) = m.next().expect("peeked");
                t.next().map(|x| Pair::Both(k, s, x))
            }
        },
        (Some(_), None) => m.next().map(|(k, _)| Pair::Mine(k)),
        (None, Some(_)) => t.next().map(Pair::Theirs),
        (None, None) => None,
    })
}

/// A member other than this node, uniformly.
pub(crate) fn random_peer<V: Value>(ctx: &mut Ctx<'_, V>) -> Option<NodeId> {
    let ranked = ctx.view.ranked();
    let n = ranked.len();
    (n > 1).then(|| {
        let p = &ranked[ctx.rng.random_range(0..n - 1)];
        if p == ctx.view.me() {
            ranked[n - 1].clone()
        } else {
            p.clone()
        }
    })
}

impl<V: Value> AntiEntropy<V> {
    /// The mesh changed or peers restarted: drop what we knew of them, and
    /// go round again (a restarted neighbour holds nothing).
    pub fn view_changed(&mut self, ctx: &mut Ctx<'_, V>, change: &ViewChange) {
        for p in change.left.iter().chain(&change.restarted) {
            self.forget_peer(p);
        }
        self.neighbours = overlay::mesh(ctx.view);
        let keep: BTreeSet<&NodeId> = self.neighbours.iter().collect();
        self.confirmed.retain(|p, _| keep.contains(p));
        if !change.is_empty() {
            self.schedule(ctx.now, ctx.cfg.ae_interval);
        }
    }

    pub fn check(&self, ctx: &Ctx<'_, V>) -> Result<(), String> {
        check_peers(ctx, "anti-entropy neighbours", &self.neighbours)?;
        check_peers(ctx, "confirmed neighbours", self.confirmed.keys())?;
        if self.confirmed.keys().any(|p| !self.neighbours.contains(p)) {
            return Err("a confirmed peer is not a mesh neighbour".into());
        }
        if self.entries.len() as u64 > self.version {
            return Err("more entries than versions".into());
        }
        Ok(())
    }
}

impl<V: Value> Strategy<V> for AntiEntropy<V> {
    fn local(&mut self, ctx: &mut Ctx<'_, V>, v: V) {
        AntiEntropy::local(self, ctx, v);
    }

    fn link_values(&mut self, ctx: &mut Ctx<'_, V>, _from: &NodeId, _lane: Lane, _v: Vec<V>) {
        ctx.stats.ignored += 1;
    }

    fn message(&mut self, ctx: &mut Ctx<'_, V>, from: &NodeId, msg: DisMsg<V>) {
        match msg {
            DisMsg::Digest { vv, s } => self.on_digest(ctx, from, vv, s),
            DisMsg::Delta { e, more, w, d } => self.on_delta(ctx, from, e, more, w, d),
            _ => ctx.stats.ignored += 1,
        }
    }

    fn tick(&mut self, ctx: &mut Ctx<'_, V>) {
        AntiEntropy::tick(self, ctx);
    }

    fn view_changed(&mut self, ctx: &mut Ctx<'_, V>, change: &ViewChange) {
        AntiEntropy::view_changed(self, ctx, change);
    }

    fn deadline(&self, cfg: &super::Config) -> Option<Instant> {
        AntiEntropy::deadline(self, cfg)
    }

    fn neighbours(&self) -> Vec<NodeId> {
        self.neighbours.clone()
    }

    fn check(&self, ctx: &Ctx<'_, V>) -> Result<(), String> {
        AntiEntropy::check(self, ctx)
    }
}
