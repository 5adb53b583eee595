//! Anti-entropy: bucketed digest push-pull, the merge rules for synced
//! state, introductions of strangers and reconnection to the dead.

use super::*;

impl Swim {
    /// What this member knows, of the members in `buckets` (all if None).
    pub(super) fn state(&self, buckets: Option<&[bool; BUCKETS]>) -> Vec<Update> {
        let wanted = |id: &NodeId| buckets.is_none_or(|b| b[bucket(id)]);
        let mut all = Vec::new();
        if wanted(&self.me) {
            all.push(self.self_update());
        }
        all.extend(
            self.table
                .iter()
                .filter(|(id, _)| wanted(id))
                .map(|(id, r)| r.update(id)),
        );
        all
    }

    /// Per bucket, the digest of who is live, this member included.
    pub(super) fn digests(&self) -> Vec<u64> {
        let mut d = self.table.digests().to_vec();
        if self.status.is_live() {
            let b = bucket(&self.me);
            d[b] = d[b].wrapping_add(contribution(&self.me, self.inc));
        }
        d
    }

    /// A digest message of `d` (buckets, or their sum).
    fn digest(&self, d: Vec<u64>) -> MemberMsg {
        MemberMsg::Digest {
            d,
            n: u32::try_from(self.live()).unwrap_or(u32::MAX),
        }
    }

    /// A message from a member we do not know (it joined through someone
    /// else and its rumour missed us): ask for its state with a digest, at
    /// most once a second per stranger, and one stranger per two gossip
    /// rounds: its answer names every member we lack, the other strangers
    /// of a join storm included, so asking each of them too would only
    /// multiply the traffic (50 members joining at once: 32 view messages
    /// per joiner before their views agreed, against 20 with this limit).
    pub(super) fn introduce(&mut self, now: Instant, from: &NodeId, out: &mut Outbox<MemberMsg>) {
        self.strangers
            .retain(|_, t| *t + Duration::from_secs(1) > now);
        if self.strangers.len() >= 64 || self.strangers.contains_key(from) {
            return;
        }
        let gap = self.cfg.gossip_interval * 2;
        if self.strangers.values().any(|t| *t + gap > now) {
            return;
        }
        self.strangers.insert(from.clone(), now);
        out.push(from.clone(), self.digest(self.digests()));
    }

    /// A merge from a state sync (memberlist's rules, plus one): claims of
    /// death about a member known alive in the same incarnation are not
    /// believed but shown to the member (it refutes if alive); a death in a
    /// newer incarnation is taken as a suspicion.
    pub(super) fn merge(
        &mut self,
        now: Instant,
        u: Update,
        from: &NodeId,
        out: &mut Outbox<MemberMsg>,
    ) {
        if u.status != Status::Dead || u.id == self.me {
            self.absorb(now, u, Some(from), out);
            return;
        }
        match self.table.get(&u.id) {
            Some(r) if r.status.is_live() && r.inc >= u.inc => {
                if self.verify.len() < MAX_VERIFY {
                    self.verify.push_back(u);
                }
            }
            Some(r) if r.status.is_live() => {
                let suspect = Update {
                    status: Status::Suspect,
                    from: Some(from.clone()),
                    ..u
                };
                self.absorb(now, suspect, Some(from), out);
            }
            _ => self.absorb(now, u, Some(from), out),
        }
    }

    pub(crate) fn sync(&mut self, out: &mut Outbox<MemberMsg>) {
        let Some(peer) = self
            .table
            .random_live(1, &[], self.cfg.cross_zone, &mut self.rng)
            .pop()
        else {
            return;
        };
        self.stats.syncs += 1;
        // Views mostly agree: one sum instead of every bucket (an idle
        // agent's largest message); the peer answers with its buckets only
        // when the sums differ.
        out.push(peer, self.digest(vec![summary(&self.digests())]));
    }

    /// A peer's digest: a summary answered with our buckets when the views
    /// differ; buckets answered with our state of those that differ.
    pub(super) fn on_digest(&mut self, from: &NodeId, d: Vec<u64>, out: &mut Outbox<MemberMsg>) {
        let mine = self.digests();
        if let [sum] = d[..] {
            // Only members get our buckets for a sum (about 10 times its
            // size: no reflector for forged sources); a stranger has been
            // sent them by `introduce` already.
            let member = self.table.get(from).is_some_and(|r| r.status.is_live());
            if member && sum != summary(&mine) {
                out.push(from.clone(), self.digest(mine));
            }
            return;
        }
        if d.len() != BUCKETS {
            self.stats.bad_input += 1;
            return;
        }
        let mut differ = [false; BUCKETS];
        for (k, flag) in differ.iter_mut().enumerate() {
            *flag = d[k] != mine[k];
        }
        if differ.iter().any(|x| *x) {
            let b: Vec<u8> = (0..BUCKETS as u8).filter(|k| differ[*k as usize]).collect();
            let m = self.state(Some(&differ));
            out.push(
                from.clone(),
                MemberMsg::State {
                    reply: true,
                    b: Some(b),
                    m,
                },
            );
            self.stats.full_syncs += 1;
        }
    }

    pub(super) fn reconnect(&mut self, out: &mut Outbox<MemberMsg>) {
        if !self.status.is_live() {
            return;
        }
        let Some(dead) = self.table.random_dead(&mut self.rng) else {
            return;
        };
        self.stats.reconnects += 1;
        let r = self.table.get(&dead).expect("listed");
        let claim = Update {
            id: dead.clone(),
            inc: r.inc,
            status: Status::Dead,
            meta: None,
            from: r.from.cloned(),
            sig: None,
        };
        let seq = self.next_seq();
        let m = MemberMsg::Ping {
            q: seq,
            t: dead.clone(),
            u: vec![claim],
        };
        self.send(dead, m, out);
    }
}

/// The digest of the whole view: the buckets' sum (each bucket is already
/// a sum of per-member contributions).
fn summary(buckets: &[u64]) -> u64 {
    buckets.iter().fold(0, |a, b| a.wrapping_add(*b))
}
