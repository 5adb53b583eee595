//! Failure detection: probes, indirect probes through helpers and the
//! nacks they send (SWIM §3.1, Lifeguard §IV-A), accusations and the
//! expiry of suspicions with a last-chance probe (§4.2, Lifeguard §IV-B,
//! §IV-C), and the phi detector's heartbeats.

use super::*;

impl Swim {
    pub(super) fn on_ack(
        &mut self,
        now: Instant,
        from: &NodeId,
        q: u32,
        out: &mut Outbox<MemberMsg>,
    ) {
        if let Some(i) = self
            .probes
            .iter()
            .position(|p| p.seq == q && (p.target == *from || p.indirect_sent))
        {
            // Success (directly, or relayed by a helper).
            let p = self.probes.swap_remove(i);
            if self.cfg.lifeguard {
                self.awareness.apply(-1);
            }
            // A direct ack, even one that came after the indirect probes
            // went out (leaving those out would bias the figure low).
            if p.target == *from {
                let rtt = now.saturating_since(p.sent_at).as_micros() as u64;
                self.stats.rtt_count += 1;
                self.stats.rtt_sum_us += rtt;
                self.stats.rtt_last_us = rtt;
            }
            return;
        }
        if let Some(r) = self.relays.remove(&q) {
            self.send(
                r.origin,
                MemberMsg::Ack {
                    q: r.origin_seq,
                    u: vec![],
                },
                out,
            );
        }
    }

    pub(super) fn on_ping_req(
        &mut self,
        now: Instant,
        from: &NodeId,
        q: u32,
        t: NodeId,
        out: &mut Outbox<MemberMsg>,
    ) {
        if t == self.me || self.relays.len() >= MAX_RELAYS {
            self.stats.relays_dropped += 1;
            return;
        }
        let seq = self.next_seq();
        // The requester gives indirect probes twice the probe timeout; the
        // nack must reach it within that.
        let window = self.awareness.scale(self.cfg.probe_timeout) * 2;
        self.relays.insert(
            seq,
            Relay {
                origin: from.clone(),
                origin_seq: q,
                nack_at: self.cfg.lifeguard.then(|| now + window.mul_f64(0.8)),
                expires: now + window * 2,
            },
        );
        self.send(
            t.clone(),
            MemberMsg::Ping {
                q: seq,
                t,
                u: vec![],
            },
            out,
        );
    }

    /// Suspects `target` (a failed probe, or phi over the threshold).
    pub(super) fn accuse(&mut self, now: Instant, target: &NodeId, out: &mut Outbox<MemberMsg>) {
        let Some(r) = self.table.get(target) else {
            return;
        };
        if !r.status.is_live() {
            return;
        }
        self.stats.suspicions += 1;
        let u = Update {
            id: target.clone(),
            inc: r.inc,
            status: Status::Suspect,
            meta: None,
            from: Some(self.me.clone()),
            sig: None,
        };
        let me = self.me.clone();
        self.absorb(now, u, Some(&me), out);
    }

    /// How long before a suspicion expires its last-chance probe goes out:
    /// the time a probe takes.
    pub(super) fn last_chance(&self) -> Duration {
        self.awareness.scale(self.cfg.probe_timeout) * 3
    }

    pub(super) fn expire_suspicions(&mut self, now: Instant, out: &mut Outbox<MemberMsg>) {
        if self.cfg.lifeguard {
            // Ask each suspect once more, carrying the suspicion, just
            // before convicting it: a live one answers with its refutation
            // even if the refutation's gossip missed us.
            let window = self.last_chance();
            let due: Vec<(NodeId, Incarnation, Option<NodeId>)> = self
                .suspicions
                .iter_mut()
                .filter(|(_, s)| !s.checked && s.deadline <= now + window)
                .map(|(id, s)| {
                    s.checked = true;
                    (id.clone(), s.inc, None)
                })
                .collect();
            for (id, inc, from) in due {
                let claim = Update {
                    id: id.clone(),
                    inc,
                    status: Status::Suspect,
                    meta: None,
                    from: from.or_else(|| Some(self.me.clone())),
                    sig: None,
                };
                let q = self.next_seq();
                if let Some(s) = self.suspicions.get_mut(&id) {
                    s.ping = Some(q);
                }
                out.push(
                    id.clone(),
                    MemberMsg::Ping {
                        q,
                        t: id,
                        u: vec![claim],
                    },
                );
            }
        }
        let due: Vec<(NodeId, Incarnation)> = self
            .suspicions
            .iter()
            .filter(|(_, s)| s.deadline <= now)
            .map(|(id, s)| (id.clone(), s.inc))
            .collect();
        for (id, inc) in due {
            self.suspicions.remove(&id);
            self.stats.deaths_declared += 1;
            let u = Update {
                id,
                inc,
                status: Status::Dead,
                meta: None,
                from: Some(self.me.clone()),
                sig: None,
            };
            let me = self.me.clone();
            self.absorb(now, u, Some(&me), out);
        }
    }

    pub(super) fn run_probe(&mut self, now: Instant, out: &mut Outbox<MemberMsg>) {
        // Direct probes that timed out go indirect (SWIM §3.1).
        let mut indirect: Vec<(u32, NodeId)> = Vec::new();
        for p in self.probes.iter_mut() {
            if !p.indirect_sent && now >= p.timeout_at {
                p.indirect_sent = true;
                indirect.push((p.seq, p.target.clone()));
            }
        }
        for (seq, target) in indirect {
            let helpers = self.table.random_live(
                self.cfg.indirect,
                &[&target],
                self.cfg.cross_zone,
                &mut self.rng,
            );
            if self.cfg.lifeguard
                && let Some(p) = self.probes.iter_mut().find(|p| p.seq == seq)
            {
                p.expected_nacks = helpers.len() as u32;
            }
            self.stats.indirect_probes += helpers.len() as u64;
            for h in helpers {
                let m = MemberMsg::PingReq {
                    q: seq,
                    t: target.clone(),
                    u: vec![],
                };
                self.send(h, m, out);
            }
        }
        // Probes with no ack at all fail: suspect the target (SWIM §4.2).
        while let Some(i) = self.probes.iter().position(|p| now >= p.fail_at) {
            let p = self.probes.swap_remove(i);
            self.stats.probe_failures += 1;
            if self.cfg.lifeguard {
                // Lifeguard §IV-A: a missing nack means we, not the
                // target, may be the slow one.
                let delta = if p.expected_nacks > 0 {
                    p.expected_nacks.saturating_sub(p.nacks) as i32
                } else {
                    1
                };
                self.awareness.apply(delta);
            }
            self.accuse(now, &p.target, out);
        }
        if self.next_probe.fire(now) {
            let interval = self.awareness.scale(self.cfg.probe_interval);
            self.next_probe.set(now + interval);
            let remote = self.table.has_remote()
                && (!self.table.has_local() || self.rng.random_bool(self.cfg.cross_zone));
            let ring = (self.cfg.probe_order == ProbeOrder::Ring && !remote)
                .then(|| self.table.successor())
                .flatten();
            let Some(target) = ring.or_else(|| self.table.next_target(remote, &mut self.rng))
            else {
                return;
            };
            self.start_probe(now, target, out);
        }
    }

    /// Probes `target` now, unless a probe of it is under way.
    pub(super) fn start_probe(
        &mut self,
        now: Instant,
        target: NodeId,
        out: &mut Outbox<MemberMsg>,
    ) {
        if self.probes.len() >= MAX_PROBES || self.probes.iter().any(|p| p.target == target) {
            return;
        }
        let seq = self.next_seq();
        self.stats.probes += 1;
        let timeout = self.awareness.scale(self.cfg.probe_timeout);
        self.probes.push(Probe {
            seq,
            target: target.clone(),
            sent_at: now,
            timeout_at: now + timeout,
            fail_at: now + timeout * 3,
            indirect_sent: false,
            expected_nacks: 0,
            nacks: 0,
        });
        let m = MemberMsg::Ping {
            q: seq,
            t: target.clone(),
            u: vec![],
        };
        self.send(target, m, out);
    }

    pub(super) fn expire_relays(&mut self, now: Instant, out: &mut Outbox<MemberMsg>) {
        let due: Vec<(u32, NodeId, u32)> = self
            .relays
            .iter()
            .filter(|(_, r)| r.nack_at.is_some_and(|t| t <= now))
            .map(|(q, r)| (*q, r.origin.clone(), r.origin_seq))
            .collect();
        for (q, origin, origin_seq) in due {
            if let Some(r) = self.relays.get_mut(&q) {
                r.nack_at = None;
            }
            self.stats.nacks_sent += 1;
            let m = MemberMsg::Nack {
                q: origin_seq,
                u: vec![],
            };
            self.send(origin, m, out);
        }
        self.relays.retain(|_, r| r.expires > now);
    }

    /// Phi detector: heartbeat to this member's monitors (the next
    /// `monitors` live members on the ring), and judge the members it
    /// monitors (the previous ones).
    pub(super) fn run_heartbeats(&mut self, now: Instant, out: &mut Outbox<MemberMsg>) {
        let me = (self.me.hash64(), self.me.clone());
        let k = self.cfg.monitors.min(self.ring.len());
        if self.next_heartbeat.fire(now) {
            self.next_heartbeat.set(now + self.cfg.heartbeat_interval);
            let monitors: Vec<NodeId> = self
                .ring
                .range(&me..)
                .chain(self.ring.range(..&me))
                .filter(|(_, id)| *id != self.me)
                .take(k)
                .map(|(_, id)| id.clone())
                .collect();
            for m in monitors {
                self.send(m, MemberMsg::Heartbeat { u: vec![] }, out);
            }
        }
        let watched: Vec<NodeId> = self
            .ring
            .range(..&me)
            .rev()
            .chain(self.ring.range(&me..).rev())
            .filter(|(_, id)| *id != self.me)
            .take(k)
            .map(|(_, id)| id.clone())
            .collect();
        let (window, hb) = (self.cfg.phi_window, self.cfg.heartbeat_interval);
        self.arrivals.retain(|id, _| watched.contains(id));
        for w in &watched {
            self.arrivals.entry(w.clone()).or_insert_with(|| {
                let mut a = Arrivals::new(window, hb, hb);
                a.heartbeat(now);
                a
            });
        }
        let suspects: Vec<NodeId> = self
            .arrivals
            .iter()
            .filter(|(id, a)| {
                a.phi(now) > self.cfg.phi_threshold
                    && self
                        .table
                        .get(id)
                        .is_some_and(|r| r.status == Status::Alive)
            })
            .map(|(id, _)| id.clone())
            .collect();
        for s in suspects {
            self.accuse(now, &s, out);
            // One accusation per silence: start the history afresh.
            if let Some(a) = self.arrivals.get_mut(&s) {
                a.heartbeat(now);
            }
        }
    }
}
