//! The scenario on the simulation core: every member's machines on the
//! core's [`Network`] (datagrams through the agent's codec, the faults of
//! [`hearsay_core::simnet::Faults`]), the scenario's own events (crashes,
//! restarts, pauses, the partition, broadcasts, checks) between, observed
//! as it runs.

use crate::member::{Datagram, Member, Packed, Traffic};
use crate::observe::Observer;
use crate::report::Report;
use crate::scenario::Scenario;
use hearsay_core::crdt::Crdt;
use hearsay_core::crdt::kv::KvMap;
use hearsay_core::id::{Epoch, NodeId};
use hearsay_core::membership::{Incarnation, Meta, Swim};
use hearsay_core::rng::{self, Rng, RngExt};
use hearsay_core::simnet::{Agenda, Faults, Latency, Network};
use hearsay_core::time::Instant;
use hearsay_wire::codec::{Codec, MAX_DATAGRAM};
use hearsay_wire::keyring::Keyring;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// What the scenario does, besides the members' own traffic and timers.
#[derive(Debug)]
enum Ev {
    Crash {
        i: usize,
    },
    Restart {
        i: usize,
    },
    Pause {
        i: usize,
        length: Duration,
    },
    Split,
    Heal,
    Check,
    /// A cold start: have the views agreed yet?
    JoinCheck,
    Broadcast,
    KvWrite,
    /// After the last map write: does every live member hold the map yet?
    KvCheck,
}

pub(crate) struct Sim<M: Member> {
    pub sc: Scenario,
    cfg: M::Cfg,
    end: Instant,
    agenda: Agenda<Instant, Ev>,
    net: Network<Packed<M>>,
    /// The life each member is in (or was in, when it crashed).
    epochs: Vec<u64>,
    pub names: Vec<NodeId>,
    index: BTreeMap<NodeId, usize>,
    metas: Vec<Arc<Meta>>,
    /// The partition, while one is on (the observer asks who is cut off).
    side: Option<Vec<bool>>,
    faults: Rng,
    load: Rng,
    /// The map writes' own stream, so runs without them replay as before.
    kv: Rng,
    late_payloads: u64,
    /// Broadcast-layer messages and payloads count from here on.
    late_from: Instant,
    pub obs: Observer,
    /// The epoch each member is alive in (None: crashed).
    alive: Vec<Option<u64>>,
    /// What members sent in lives that ended, in all and by each member.
    gone: Vec<Traffic>,
    /// A cold start: when the views agreed, and the membership and view
    /// messages each member had sent.
    joined: Option<(Instant, Vec<(u64, u64)>)>,
    /// The agent's codec, in clear text: what the simulator counts and
    /// delivers is what an agent would send.
    codec: Arc<Codec>,
    /// Every map write's delta merged: the map every live member should
    /// end with.
    kv_all: KvMap,
    kv_writes: usize,
    /// When every live member first held `kv_all` after the writes stopped.
    kv_converged: Option<Instant>,
}

impl<M: Member> Sim<M> {
    pub fn new(sc: &Scenario, cfg: M::Cfg) -> Result<Sim<M>, String> {
        sc.validate()?;
        let n = sc.members;
        let names: Vec<NodeId> = (0..n).map(|i| NodeId::new(format!("m{i}"))).collect();
        let index = hearsay_core::simnet::index_of(&names);
        let mut metas: Vec<Arc<Meta>> = (0..n)
            .map(|i| {
                Arc::new(if sc.zones > 1 {
                    Meta::zone(&format!("z{}", i % sc.zones))
                } else {
                    Meta::default()
                })
            })
            .collect();
        let mut faults = Faults::new(
            Latency::Exponential(sc.latency.0),
            rng::child(sc.seed, "net"),
        );
        faults.zone_factor = sc.zone_latency;
        faults.loss = sc.loss;
        faults.duplicate = sc.duplicate;
        let codec = Arc::new(Codec {
            cluster: "sim".into(),
            keys: Keyring::new(vec![]),
        });
        let late_from = Instant::ZERO + sc.duration.0.mul_f64(0.1);
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            let m = boot::<M>(&cfg, sc, i, &names[i], &metas[i], 1)?;
            // What the member says of itself (its key, when it signs),
            // as the warm start tells the others.
            metas[i] = Arc::new(m.swim().meta().clone());
            nodes.push(Packed::new(m, &names[i], codec.clone(), late_from));
        }
        let mut net = Network::new(names.clone(), nodes, faults);
        // What does not fit a datagram goes over a stream: not lost.
        net.stream = |d: &Datagram| d.len() > MAX_DATAGRAM;
        for i in 0..n {
            net.set_zone(i, i % sc.zones);
        }
        let mut sim: Sim<M> = Sim {
            cfg,
            end: Instant::ZERO + sc.duration.0,
            agenda: Agenda::default(),
            net,
            epochs: vec![1; n],
            names,
            index,
            metas,
            side: None,
            faults: rng::child(sc.seed, "faults"),
            load: rng::child(sc.seed, "load"),
            kv: rng::child(sc.seed, "kv"),
            obs: Observer::new(n),
            alive: vec![Some(1); n],
            late_payloads: 0,
            gone: vec![Traffic::default(); n],
            late_from,
            joined: None,
            codec,
            kv_all: KvMap::default(),
            kv_writes: 0,
            kv_converged: None,
            sc: sc.clone(),
        };
        // A warm start: everyone alive and known to everyone.
        // In name order: the tables take it without sorting.
        let mut everyone: Vec<(NodeId, Incarnation, Arc<Meta>)> = (0..n)
            .map(|i| {
                (
                    sim.names[i].clone(),
                    Incarnation::new(Epoch(1), 0),
                    sim.metas[i].clone(),
                )
            })
            .collect();
        everyone.sort_by(|a, b| a.0.cmp(&b.0));
        for i in 0..n {
            let me = sim.names[i].clone();
            let first = sim.names[0].clone();
            let cold = sc.cold_start;
            let others: Vec<_> = if cold {
                Vec::new()
            } else {
                everyone.iter().filter(|m| m.0 != me).cloned().collect()
            };
            sim.act(i, |m, now, out| {
                if !cold || i == 0 {
                    m.bootstrap(now, others, out);
                } else {
                    m.join(now, first, out);
                }
            });
        }
        sim.schedule_faults();
        if sc.cold_start {
            sim.agenda.push(Instant::ZERO, Ev::JoinCheck);
        }
        Ok(sim)
    }

    /// The simulated time: the network's.
    fn now(&self) -> Instant {
        self.net.now()
    }

    /// An application input to member `i` now, observed; None if it is down.
    fn act<R>(
        &mut self,
        i: usize,
        f: impl FnOnce(&mut M, Instant, &mut hearsay_core::outbox::Outbox<M::Msg>) -> R,
    ) -> Option<R> {
        let r = self
            .net
            .input(i, |p, now, out| p.act(now, out, |m, msgs| f(m, now, msgs)))?;
        self.observe(i);
        Some(r)
    }

    /// What member `i` reported after an input: events and deliveries.
    /// (Through `input`, the network's only door to a node: draining sends
    /// nothing and moves no timer.)
    fn observe(&mut self, i: usize) {
        let now = self.net.now();
        let (obs, side, index, alive) = (&mut self.obs, &self.side, &self.index, &self.alive);
        let epoch = self.epochs[i];
        self.net.input(i, |p, _, _| {
            observe(obs, now, i, epoch, &mut p.m, side, index, alive);
        });
    }

    fn push(&mut self, at: Instant, ev: Ev) {
        self.agenda.push(at, ev);
    }

    /// Moments for faults: spread over the run, leaving its last quarter
    /// (at least) for detection and recovery.
    fn moment(&mut self) -> Instant {
        let d = self.sc.duration.0;
        let lo = d.mul_f64(0.05);
        let hi = d.mul_f64(0.75);
        Instant::ZERO + lo + (hi - lo).mul_f64(self.faults.random::<f64>())
    }

    fn schedule_faults(&mut self) {
        let n = self.sc.members;
        let mut order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = self.faults.random_range(0..=i);
            order.swap(i, j);
        }
        for &i in order.iter().take(self.sc.crash) {
            let at = self.moment();
            self.push(at, Ev::Crash { i });
        }
        if let Some(p) = self.sc.pause {
            let k = ((n as f64) * p.fraction).round() as usize;
            let mut order: Vec<usize> = (0..n).collect();
            for i in (1..n).rev() {
                let j = self.faults.random_range(0..=i);
                order.swap(i, j);
            }
            for &i in order.iter().take(k) {
                let d = self.sc.duration.0.saturating_sub(p.length.0);
                let at = Instant::ZERO + d.mul_f64(0.05 + 0.85 * self.faults.random::<f64>());
                self.push(
                    at,
                    Ev::Pause {
                        i,
                        length: p.length.0,
                    },
                );
            }
        }
        if let Some(p) = self.sc.partition {
            self.push(Instant::ZERO + p.at.0, Ev::Split);
            self.push(Instant::ZERO + p.at.0 + p.length.0, Ev::Heal);
        }
        if self.sc.broadcast_rate > 0.0 {
            let at = self.broadcast_window().0;
            self.push(at, Ev::Broadcast);
        }
        if self.sc.kv_rate > 0.0 {
            let (start, stop) = self.kv_window();
            self.push(start, Ev::KvWrite);
            self.push(stop, Ev::KvCheck);
        }
    }

    /// Payloads go out from a twentieth of the run until 30 s (or a quarter
    /// of the run) before its end, so every one has time to arrive.
    fn broadcast_window(&self) -> (Instant, Instant) {
        let d = self.sc.duration.0;
        let tail = Duration::from_secs(30).min(d.mul_f64(0.25));
        (Instant::ZERO + d.mul_f64(0.05), Instant::ZERO + d - tail)
    }

    fn broadcast(&mut self) {
        let (_, stop) = self.broadcast_window();
        if self.now() >= stop {
            return;
        }
        // Poisson arrivals at the given rate.
        let u: f64 = self.load.random();
        let gap = Duration::from_secs_f64(-(1.0 - u).ln() / self.sc.broadcast_rate);
        let at = self.now() + gap;
        self.push(at, Ev::Broadcast);
        let live: Vec<usize> = (0..self.sc.members)
            .filter(|&j| self.live(j) && !self.paused(j))
            .collect();
        if live.is_empty() {
            return;
        }
        let i = live[self.load.random_range(0..live.len())];
        let data: std::sync::Arc<[u8]> = vec![0u8; 100].into();
        let sent = self.net.input(i, |p, now, out| {
            p.act(now, out, |m, msgs| m.broadcast(now, data, msgs))
        });
        // Known as broadcast before the origin's own delivery is observed.
        if let Some(Some(id)) = sent {
            let late = self.now() >= self.late_from;
            self.late_payloads += u64::from(late);
            self.obs.broadcast(self.now(), i, id);
        }
        self.observe(i);
    }

    /// Map writes go from a twentieth of the run to 60 % of it: the map
    /// repairs a lost delta at its next sync, every 30 s, so the rest of
    /// the run (a minute of a 150 s run) shows whether and when every live
    /// member converges.
    fn kv_window(&self) -> (Instant, Instant) {
        let d = self.sc.duration.0;
        (
            Instant::ZERO + d.mul_f64(0.05),
            Instant::ZERO + d.mul_f64(0.6),
        )
    }

    /// Does every live member hold the map all the writes make?
    fn kv_converged(&self) -> bool {
        let want: Vec<(&String, &String)> = self.kv_all.iter().collect();
        (0..self.sc.members)
            .filter_map(|i| self.net.node(i))
            .all(|p| p.m.map().is_some_and(|m| m.iter().eq(want.iter().copied())))
    }

    /// One write to the replicated map through a random live member, and
    /// the next one (Poisson arrivals, in the map's window).
    fn kv_write(&mut self) {
        let (_, stop) = self.kv_window();
        if self.now() >= stop {
            return;
        }
        let u: f64 = self.kv.random();
        let gap = Duration::from_secs_f64(-(1.0 - u).ln() / self.sc.kv_rate);
        let at = self.now() + gap;
        self.push(at, Ev::KvWrite);
        let live: Vec<usize> = (0..self.sc.members)
            .filter(|&j| self.live(j) && !self.paused(j))
            .collect();
        if live.is_empty() {
            return;
        }
        let i = live[self.kv.random_range(0..live.len())];
        let key = format!("k{}", self.kv.random_range(0..self.sc.kv_keys));
        let value = format!("w{}", self.kv_writes);
        let delta = self.net.input(i, |p, now, out| {
            p.act(now, out, |m, msgs| m.write(now, key, value, msgs))
        });
        if let Some(Some(d)) = delta {
            self.kv_all.merge(&d);
            self.kv_writes += 1;
        }
        self.observe(i);
    }

    fn paused(&self, i: usize) -> bool {
        self.net.paused(i)
    }

    pub fn live(&self, i: usize) -> bool {
        self.net.live(i)
    }

    /// The epoch of a member's current life.
    pub fn life(&self, i: usize) -> u64 {
        self.epochs[i]
    }

    pub fn swim(&self, i: usize) -> Option<&Swim> {
        self.net.node(i).map(|p| p.m.swim())
    }

    /// Runs to the end; `progress` gets the simulated fraction done.
    pub fn run(&mut self, progress: &mut dyn FnMut(f64)) -> Result<(), String> {
        let total = self.sc.duration.0;
        let step = total / 100;
        let mut report_at = Instant::ZERO + step;
        loop {
            let next = self.agenda.next_at().filter(|t| *t <= self.end);
            let until = next.unwrap_or(self.end).min(report_at);
            let (obs, side, index, alive) = (&mut self.obs, &self.side, &self.index, &self.alive);
            let epochs = &self.epochs;
            self.net
                .run_until(until, |now, i, p| {
                    observe(obs, now, i, epochs[i], &mut p.m, side, index, alive);
                })
                .map_err(|e| e.to_string())?;
            if until == report_at {
                progress((until - Instant::ZERO).as_secs_f64() / total.as_secs_f64());
                report_at += step;
            }
            if next == Some(until) {
                let (_, ev) = self.agenda.pop_until(until).expect("due");
                self.step(ev);
            } else if until >= self.end {
                break;
            }
        }
        progress(1.0);
        Ok(())
    }

    fn step(&mut self, ev: Ev) {
        match ev {
            Ev::Crash { i } => {
                let Some(p) = self.net.crash(i) else {
                    return;
                };
                self.gone[i].add(&p.traffic);
                self.alive[i] = None;
                self.obs.crashed(self.now(), i, self.epochs[i]);
                if self.sc.restart {
                    let down = Duration::from_secs_f64(10.0 + 20.0 * self.faults.random::<f64>());
                    let at = self.now() + down;
                    self.push(at, Ev::Restart { i });
                }
            }
            Ev::Restart { i } => self.restart(i),
            Ev::Pause { i, length } => {
                if self.live(i) {
                    self.net.pause(i, self.now() + length);
                    self.obs.paused(i, self.now(), self.now() + length);
                }
            }
            Ev::Split => {
                let n = self.sc.members;
                let k =
                    ((n as f64) * self.sc.partition.map_or(0.5, |p| p.fraction)).round() as usize;
                let mut side = vec![false; n];
                let mut order: Vec<usize> = (0..n).collect();
                for i in (1..n).rev() {
                    let j = self.faults.random_range(0..=i);
                    order.swap(i, j);
                }
                for &i in order.iter().take(k.clamp(1, n - 1)) {
                    side[i] = true;
                }
                self.net.faults.partition(side.clone());
                self.side = Some(side);
            }
            Ev::Heal => {
                self.net.faults.heal();
                self.side = None;
                self.obs.healed(self.now());
                let at = self.now() + Duration::from_millis(250);
                self.push(at, Ev::Check);
            }
            Ev::Broadcast => self.broadcast(),
            Ev::KvWrite => self.kv_write(),
            Ev::KvCheck => {
                if self.kv_converged() {
                    self.kv_converged = Some(self.now());
                } else {
                    let at = self.now() + Duration::from_millis(500);
                    self.push(at, Ev::KvCheck);
                }
            }
            Ev::JoinCheck => {
                if self.views_agree() {
                    self.joined = Some((self.now(), self.mem_sent()));
                } else {
                    let at = self.now() + Duration::from_millis(10);
                    self.push(at, Ev::JoinCheck);
                }
            }
            Ev::Check => {
                if self.views_agree() {
                    self.obs.agreed(self.now());
                } else {
                    let at = self.now() + Duration::from_millis(250);
                    self.push(at, Ev::Check);
                }
            }
        }
    }

    fn restart(&mut self, i: usize) {
        if self.live(i) {
            return;
        }
        let live: Vec<usize> = (0..self.sc.members).filter(|&j| self.live(j)).collect();
        if live.is_empty() {
            return;
        }
        let seed = live[self.faults.random_range(0..live.len())];
        let epoch = self.epochs[i] + 1;
        let Ok(m) = boot::<M>(
            &self.cfg,
            &self.sc,
            i,
            &self.names[i],
            &self.metas[i],
            epoch,
        ) else {
            return;
        };
        let p = Packed::new(m, &self.names[i], self.codec.clone(), self.late_from);
        self.net.start(i, p);
        self.epochs[i] = epoch;
        self.alive[i] = Some(epoch);
        self.obs.restarted(self.now(), i);
        let to = self.names[seed].clone();
        self.act(i, |m, now, out| m.join(now, to, out));
    }

    /// What member `i` sent, over all its lives.
    fn sent_by(&self, i: usize) -> Traffic {
        let mut t = self.gone[i];
        if let Some(p) = self.net.node(i) {
            t.add(&p.traffic);
        }
        t
    }

    /// Membership and view messages each member sent, over all its lives.
    fn mem_sent(&self) -> Vec<(u64, u64)> {
        (0..self.sc.members)
            .map(|i| self.sent_by(i))
            .map(|t| (t.mem_msgs, t.view_msgs))
            .collect()
    }

    /// What every member sent, over all lives.
    fn traffic(&self) -> Traffic {
        let mut t = Traffic::default();
        for i in 0..self.sc.members {
            t.add(&self.sent_by(i));
        }
        t
    }

    /// Does every live member list every other live member as alive, in
    /// its current life?
    fn views_agree(&self) -> bool {
        let live: Vec<usize> = (0..self.sc.members).filter(|&j| self.live(j)).collect();
        live.iter().all(|&o| {
            let s = self.swim(o).expect("live");
            live.iter().all(|&j| {
                j == o
                    || s.status_of(&self.names[j]).is_some_and(|(inc, st)| {
                        st == hearsay_core::membership::Status::Alive
                            && inc.epoch == Epoch(self.epochs[j])
                    })
            })
        })
    }

    pub fn report(&self, wall: Duration) -> Report {
        let n = self.sc.members as f64;
        let secs = self.sc.duration.0.as_secs_f64();
        let mut r = self.obs.report(self);
        let t = self.traffic();
        // The traffic goes into the trace too: two runs that sent different
        // messages differ even when no member saw an event.
        let h = u64::from_str_radix(&r.trace_hash, 16).unwrap_or(0);
        r.trace_hash = format!(
            "{:016x}",
            hearsay_core::id::mix(h ^ t.msgs ^ t.bytes.rotate_left(32))
        );
        r.members = self.sc.members;
        r.scenario = self.sc.clone();
        r.seed = self.sc.seed;
        r.preset = self.sc.preset.to_string();
        r.lifeguard = self.sc.lifeguard;
        r.detector = self.sc.detector.to_string();
        r.probes = self.sc.probes.to_string();
        r.strategy = format!("{} ({})", self.sc.strategy, self.sc.broadcast_preset);
        r.duration_s = secs;
        r.bytes_per_member_per_s = t.bytes as f64 / n / secs;
        r.msgs_per_member_per_s = t.msgs as f64 / n / secs;
        r.membership_msgs_per_member_per_s = t.mem_msgs as f64 / n / secs;
        if self.sc.cold_start {
            let joined = self.joined.as_ref();
            let sent = |pick: fn(&(u64, u64)) -> u64| {
                let mut v: Vec<u64> =
                    joined.map_or_else(Vec::new, |(_, s)| s[1..].iter().map(pick).collect());
                v.sort_unstable();
                (
                    v.last().copied(),
                    (!v.is_empty()).then(|| v[(v.len() - 1) / 2]),
                )
            };
            let (msgs_max, msgs_median) = sent(|s| s.0);
            let (view_max, view_median) = sent(|s| s.1);
            r.join = Some(crate::report::Join {
                views_agree_s: joined.map(|(t, _)| t.as_micros() as f64 / 1e6),
                seed_msgs: joined.map(|(_, s)| s[0].0),
                msgs_per_joiner_max: msgs_max,
                msgs_per_joiner_median: msgs_median,
                seed_view_msgs: joined.map(|(_, s)| s[0].1),
                view_msgs_per_joiner_max: view_max,
                view_msgs_per_joiner_median: view_median,
            });
        }
        r.datagrams_per_member_per_s = t.datagrams as f64 / n / secs;
        r.wire_refused = t.refused;
        r.live_at_end = (0..self.sc.members).filter(|&i| self.live(i)).count();
        if self.late_payloads > 0 {
            r.broadcast.msgs_per_member_per_payload =
                Some(t.late_cast_msgs as f64 / n / self.late_payloads as f64);
        }
        for p in self.net.nodes() {
            p.m.add_totals(&mut r.cast);
            let x = p.m.swim().stats();
            let t = &mut r.swim;
            t.probes += x.probes;
            t.probe_failures += x.probe_failures;
            t.suspicions += x.suspicions;
            t.refutations += x.refutations;
            t.deaths_declared += x.deaths_declared;
            t.full_syncs += x.full_syncs;
            t.reconnects += x.reconnects;
            t.stalls += x.stalls;
            t.rumours_dropped += x.rumours_dropped;
        }
        if self.sc.kv_rate > 0.0 {
            r.kv = Some(self.kv_report(&t, n, secs));
        }
        r.wall_s = wall.as_secs_f64();
        r
    }

    /// Does every live member hold the map all the writes make?
    fn kv_report(&self, t: &Traffic, n: f64, secs: f64) -> crate::report::KvReport {
        let want: BTreeMap<&String, &String> = self.kv_all.iter().collect();
        let mut behind_keys: std::collections::BTreeSet<&String> = Default::default();
        let mut members_behind = 0;
        for p in self.net.nodes() {
            let Some(map) = p.m.map() else {
                continue;
            };
            let have: BTreeMap<&String, &String> = map.iter().collect();
            if have != want {
                members_behind += 1;
                behind_keys.extend(
                    want.iter()
                        .filter(|(k, v)| have.get(*k) != Some(*v))
                        .map(|(k, _)| *k),
                );
            }
        }
        crate::report::KvReport {
            converged_s: self
                .kv_converged
                .map(|t| (t - self.kv_window().1).as_secs_f64()),
            writes: self.kv_writes,
            keys: want.len(),
            members_behind,
            keys_behind: behind_keys.len(),
            msgs_per_member_per_s: t.kv_msgs as f64 / n / secs,
            bytes_per_member_per_s: t.kv_bytes as f64 / n / secs,
        }
    }
}

fn boot<M: Member>(
    cfg: &M::Cfg,
    sc: &Scenario,
    i: usize,
    me: &NodeId,
    meta: &Meta,
    epoch: u64,
) -> Result<M, String> {
    M::boot(
        cfg,
        me.clone(),
        epoch,
        meta.clone(),
        rng::derive_seed(sc.seed, &format!("member/{i}/{epoch}")),
    )
}

/// What a member reported after an input: events (to the observer, which
/// tells a false positive from a death the partition hides) and the
/// payloads it delivered.
#[allow(clippy::too_many_arguments)]
fn observe<M: Member>(
    obs: &mut Observer,
    now: Instant,
    i: usize,
    epoch: u64,
    m: &mut M,
    side: &Option<Vec<bool>>,
    index: &BTreeMap<NodeId, usize>,
    alive: &[Option<u64>],
) {
    let mut events = Vec::new();
    let mut delivered = Vec::new();
    m.drain_events(&mut events);
    m.drain_delivered(&mut delivered);
    let cut = |a: usize, b: usize| side.as_ref().is_some_and(|s| s[a] != s[b]);
    for e in events {
        obs.event(now, i, epoch, e, &cut, index, alive);
    }
    for id in delivered {
        obs.delivered(now, i, epoch, &id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::member::{Agent, AgentCfg, AgentMsg};
    use hearsay_core::cluster::ClusterConfig;
    use hearsay_wire::codec::Datagram;

    #[test]
    fn the_bytes_counted_are_the_datagrams_the_agents_codec_writes() {
        let sc = Scenario {
            members: 6,
            ..Scenario::default()
        };
        let cfg = AgentCfg {
            cluster: ClusterConfig::default(),
            kv: true,
            sign: false,
        };
        let mut sim = Sim::<Agent>::new(&sc, cfg).unwrap();
        let before = sim.traffic();
        let mut out = Vec::new();
        sim.act(2, |m, now, msgs| {
            m.broadcast(now, vec![7u8; 300].into(), msgs).unwrap();
            m.write(now, "k".into(), "v".into(), msgs).unwrap();
            m.tick(now + Duration::from_millis(1), msgs);
            out = msgs.iter().cloned().collect();
        })
        .expect("m2 is up");
        assert!(out.iter().any(|(_, m)| matches!(m, AgentMsg::Kv(_))));
        assert!(out.iter().any(|(_, m)| matches!(m, AgentMsg::Node(_))));
        // The same messages, packed per destination (the map's apart) and
        // encoded by a codec of our own, then read back.
        let mut by: Vec<(NodeId, Vec<AgentMsg>)> = Vec::new();
        for (to, m) in out.iter().cloned() {
            match by.iter_mut().find(|(t, _)| *t == to) {
                Some((_, v)) => v.push(m),
                None => by.push((to, vec![m])),
            }
        }
        let codec = Codec {
            cluster: "sim".into(),
            keys: Keyring::new(vec![]),
        };
        let (mut bytes, mut datagrams, mut kv_bytes) = (0, 0, 0);
        for (_, msgs) in &by {
            let mut node = Vec::new();
            let mut kv = Vec::new();
            for m in msgs.iter().cloned() {
                match m {
                    AgentMsg::Node(m) => node.push(m),
                    AgentMsg::Kv(m) => kv.push(m),
                }
            }
            let head = Datagram::from("m2");
            if !node.is_empty() {
                for d in codec.encode(&head, node.clone()) {
                    bytes += d.len() as u64;
                    datagrams += 1;
                    let mut back = codec.decode(&d).unwrap();
                    let got: Vec<_> = back.messages().map(|m| m.msg).collect();
                    let sent: Vec<_> = node.iter().map(|m| m.msg.clone()).collect();
                    assert_eq!(got, sent, "what arrives is what was sent");
                }
            }
            if !kv.is_empty() {
                for d in codec.encode_kv(&head, kv.clone()) {
                    bytes += d.len() as u64;
                    kv_bytes += d.len() as u64;
                    datagrams += 1;
                    let back = codec.decode(&d).unwrap();
                    assert_eq!(back.kv, kv, "what arrives is what was sent");
                }
            }
        }
        let after = sim.traffic();
        assert_eq!(after.bytes - before.bytes, bytes);
        assert_eq!(after.kv_bytes - before.kv_bytes, kv_bytes);
        assert_eq!(after.datagrams - before.datagrams, datagrams);
    }

    /// The map under churn and loss: members crash, come back empty, and
    /// a share of messages is lost; once the writes stop, every live member
    /// holds every key's latest write. (A map that never answers syncs
    /// leaves 24-28 of 30 members behind on seeds 1-3.)
    #[test]
    fn every_live_member_ends_with_the_map_all_writes_make() {
        let sc = Scenario {
            members: 30,
            duration: crate::Dur(Duration::from_secs(150)),
            crash: 6,
            restart: true,
            loss: 0.05,
            kv_rate: 20.0,
            kv_keys: 40,
            seed: 3,
            ..Scenario::default()
        };
        let r = crate::run(&sc, &mut |_| {}).unwrap();
        let kv = r.kv.expect("a map run");
        assert!(kv.writes > 1_000, "{kv:?}");
        assert_eq!(kv.keys, 40);
        assert_eq!((kv.members_behind, kv.keys_behind), (0, 0), "{kv:?}");
        // Within two 30 s sync rounds of the last write (restarts late in
        // the run included).
        assert!(kv.converged_s.is_some_and(|s| s <= 60.0), "{kv:?}");
        assert!(kv.bytes_per_member_per_s > 0.0);
    }
}
