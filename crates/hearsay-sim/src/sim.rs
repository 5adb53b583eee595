//! The event loop: every member's SWIM machine in virtual time, over the
//! network model, with the scenario's faults, observed as it runs.

use crate::member::Member;
use crate::net::Net;
use crate::observe::Observer;
use crate::report::Report;
use crate::scenario::Scenario;
use hearsay_core::id::{Epoch, NodeId};
use hearsay_core::membership::{Incarnation, Meta, Swim};
use hearsay_core::outbox::Outbox;
use hearsay_core::rng::{self, Rng, RngExt};
use hearsay_core::time::Instant;
use hearsay_wire::codec::{Codec, MAX_DATAGRAM};
use hearsay_wire::keyring::Keyring;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug)]
enum Ev {
    /// A datagram as the agent's codec wrote it.
    Deliver {
        from: usize,
        to: usize,
        bytes: Arc<[u8]>,
    },
    Timer {
        i: usize,
    },
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
}

struct Slot<M> {
    node: Option<M>,
    epoch: u64,
    paused_until: Option<Instant>,
    zone: usize,
    /// The deadline a timer event is queued for (stale events are skipped).
    timer: Option<(Instant, u64)>,
}

pub(crate) struct Sim<M: Member> {
    pub sc: Scenario,
    cfg: M::Cfg,
    pub now: Instant,
    end: Instant,
    queue: BTreeMap<(Instant, u64), Ev>,
    seq: u64,
    members: Vec<Slot<M>>,
    pub names: Vec<NodeId>,
    index: BTreeMap<NodeId, usize>,
    metas: Vec<Arc<Meta>>,
    net: Net,
    faults: Rng,
    load: Rng,
    /// Broadcast-layer messages after the first tenth of the run, and the
    /// payloads broadcast in that time.
    late_cast_msgs: u64,
    late_payloads: u64,
    payload_bytes: usize,
    pub obs: Observer,
    /// The epoch each member is alive in (None: crashed).
    alive: Vec<Option<u64>>,
    bytes: u64,
    msgs: u64,
    datagrams: u64,
    /// Membership messages sent, in all and by each member.
    mem_msgs: u64,
    mem_sent: Vec<u64>,
    /// A cold start: when the views agreed, and what each member had sent.
    joined: Option<(Instant, Vec<u64>)>,
    /// Datagrams the codec refused (none, unless the wire is broken).
    refused: u64,
    /// The agent's codec, in clear text: what the simulator counts and
    /// delivers is what an agent would send.
    codec: Codec,
}

impl<M: Member> Sim<M> {
    pub fn new(sc: &Scenario, cfg: M::Cfg) -> Result<Sim<M>, String> {
        sc.validate()?;
        let n = sc.members;
        let names: Vec<NodeId> = (0..n).map(|i| NodeId::new(format!("m{i}"))).collect();
        let index = names
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, id)| (id, i))
            .collect();
        let metas: Vec<Arc<Meta>> = (0..n)
            .map(|i| {
                Arc::new(if sc.zones > 1 {
                    Meta::zone(&format!("z{}", i % sc.zones))
                } else {
                    Meta::default()
                })
            })
            .collect();
        let net = Net::new(
            sc.latency.0,
            sc.zone_latency,
            sc.loss,
            sc.duplicate,
            rng::child(sc.seed, "net"),
        );
        let mut sim: Sim<M> = Sim {
            cfg,
            now: Instant::ZERO,
            end: Instant::ZERO + sc.duration.0,
            queue: BTreeMap::new(),
            seq: 0,
            members: Vec::with_capacity(n),
            names,
            index,
            metas,
            net,
            faults: rng::child(sc.seed, "faults"),
            load: rng::child(sc.seed, "load"),
            payload_bytes: 0,
            obs: Observer::new(n),
            alive: vec![Some(1); n],
            late_cast_msgs: 0,
            late_payloads: 0,
            bytes: 0,
            msgs: 0,
            datagrams: 0,
            mem_msgs: 0,
            mem_sent: vec![0; n],
            joined: None,
            refused: 0,
            codec: Codec {
                cluster: "sim".into(),
                keys: Keyring::new(vec![]),
            },
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
        let mut outs = Vec::with_capacity(n);
        for i in 0..n {
            let mut s = sim.boot(i, 1)?;
            let mut out = Outbox::default();
            if !sc.cold_start {
                s.bootstrap(
                    Instant::ZERO,
                    everyone
                        .iter()
                        .filter(|m| m.0 != sim.names[i])
                        .cloned()
                        .collect(),
                    &mut out,
                );
            } else if i == 0 {
                s.bootstrap(Instant::ZERO, Vec::new(), &mut out);
            } else {
                s.join(Instant::ZERO, sim.names[0].clone(), &mut out);
            }
            outs.push(out);
            sim.members.push(Slot {
                node: Some(s),
                epoch: 1,
                paused_until: None,
                zone: i % sc.zones,
                timer: None,
            });
        }
        for (i, mut out) in outs.into_iter().enumerate() {
            sim.flush(i, &mut out);
        }
        sim.schedule_faults();
        if sc.cold_start {
            sim.push(Instant::ZERO, Ev::JoinCheck);
        }
        Ok(sim)
    }

    fn boot(&self, i: usize, epoch: u64) -> Result<M, String> {
        M::boot(
            &self.cfg,
            self.names[i].clone(),
            epoch,
            (*self.metas[i]).clone(),
            rng::derive_seed(self.sc.seed, &format!("member/{i}/{epoch}")),
        )
    }

    fn push(&mut self, at: Instant, ev: Ev) -> u64 {
        self.seq += 1;
        self.queue.insert((at, self.seq), ev);
        self.seq
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
        if self.now >= stop {
            return;
        }
        // Poisson arrivals at the given rate.
        let u: f64 = self.load.random();
        let gap = Duration::from_secs_f64(-(1.0 - u).ln() / self.sc.broadcast_rate);
        let at = self.now + gap;
        self.push(at, Ev::Broadcast);
        let live: Vec<usize> = (0..self.sc.members)
            .filter(|&j| self.live(j) && !self.paused(j))
            .collect();
        if live.is_empty() {
            return;
        }
        let i = live[self.load.random_range(0..live.len())];
        let data: std::sync::Arc<[u8]> = vec![0u8; 100].into();
        self.payload_bytes = data.len();
        let mut out = Outbox::default();
        let Some(n) = self.members[i].node.as_mut() else {
            return;
        };
        if let Some(id) = n.broadcast(self.now, data, &mut out) {
            let late = self.now >= Instant::ZERO + self.sc.duration.0.mul_f64(0.1);
            self.late_payloads += u64::from(late);
            self.obs.broadcast(self.now, id);
        }
        self.flush(i, &mut out);
    }

    fn paused(&self, i: usize) -> bool {
        self.members[i].paused_until.is_some_and(|t| t > self.now)
    }

    pub fn live(&self, i: usize) -> bool {
        self.members[i].node.is_some()
    }

    /// The epoch of a member's current life.
    pub fn life(&self, i: usize) -> u64 {
        self.members[i].epoch
    }

    pub fn swim(&self, i: usize) -> Option<&Swim> {
        self.members[i].node.as_ref().map(M::swim)
    }

    fn rearm(&mut self, i: usize) {
        let Some(s) = self.members[i].node.as_ref() else {
            self.members[i].timer = None;
            return;
        };
        let want = s.next_deadline().map(|t| t.max(self.now));
        let cur = self.members[i].timer.map(|(t, _)| t);
        if want != cur {
            if let Some(key) = self.members[i].timer.take() {
                self.queue.remove(&key);
            }
            if let Some(t) = want {
                let seq = self.push(t, Ev::Timer { i });
                self.members[i].timer = Some((t, seq));
            }
        }
    }

    fn flush(&mut self, from: usize, out: &mut Outbox<M::Msg>) {
        let late = self.now >= Instant::ZERO + self.sc.duration.0.mul_f64(0.1);
        // Packed per destination, in the order first sent to, as the
        // agent does after each input.
        let mut by: Vec<(usize, Vec<M::Msg>)> = Vec::new();
        for (to, msg) in out.drain() {
            let Some(to) = self.index.get(&to).copied() else {
                continue;
            };
            self.msgs += 1;
            if M::is_membership(&msg) {
                self.mem_msgs += 1;
                self.mem_sent[from] += 1;
            } else if late {
                self.late_cast_msgs += 1;
            }
            match by.iter_mut().find(|(t, _)| *t == to) {
                Some((_, msgs)) => msgs.push(msg),
                None => by.push((to, vec![msg])),
            }
        }
        for (to, msgs) in by {
            let cross = self.members[from].zone != self.members[to].zone;
            for d in M::encode(&self.codec, self.names[from].as_str(), msgs) {
                self.bytes += d.len() as u64;
                self.datagrams += 1;
                // What does not fit a datagram goes over a stream: not lost.
                let delays = if d.len() > MAX_DATAGRAM {
                    self.net.delay(from, to, cross).into_iter().collect()
                } else {
                    self.net.delays(from, to, cross)
                };
                let bytes: Arc<[u8]> = d.into();
                for delay in delays {
                    let at = self.now + delay;
                    let bytes = bytes.clone();
                    self.push(at, Ev::Deliver { from, to, bytes });
                }
            }
        }
        let epoch = self.members[from].epoch;
        if let Some(s) = self.members[from].node.as_mut() {
            let mut events = Vec::new();
            let mut delivered = Vec::new();
            s.drain_events(&mut events);
            s.drain_delivered(&mut delivered);
            for e in events {
                self.obs.event(
                    self.now,
                    from,
                    epoch,
                    e,
                    &self.net,
                    &self.index,
                    &self.alive,
                );
            }
            for id in delivered {
                self.obs.delivered(self.now, from, epoch, &id);
            }
        }
        self.rearm(from);
    }

    /// Runs to the end; `progress` gets the simulated fraction done.
    pub fn run(&mut self, progress: &mut dyn FnMut(f64)) {
        let total = self.sc.duration.0.as_secs_f64();
        let mut last_report = 0.0;
        while let Some((&(at, seq), _)) = self.queue.iter().next() {
            if at > self.end {
                break;
            }
            let ev = self.queue.remove(&(at, seq)).expect("peeked");
            self.now = at;
            let done = at.as_micros() as f64 / 1e6 / total;
            if done - last_report >= 0.01 {
                last_report = done;
                progress(done.min(1.0));
            }
            self.step(seq, ev);
        }
        self.now = self.end;
        progress(1.0);
    }

    fn step(&mut self, seq: u64, ev: Ev) {
        match ev {
            Ev::Deliver { from, to, bytes } => {
                if !self.live(to) || self.net.cut(from, to) {
                    return;
                }
                if self.paused(to) {
                    // It waits in the socket until the member runs again.
                    let at = self.members[to].paused_until.expect("paused");
                    self.push(at, Ev::Deliver { from, to, bytes });
                    return;
                }
                let Some(msgs) = M::decode(&self.codec, &bytes) else {
                    self.refused += 1;
                    return;
                };
                let mut out = Outbox::default();
                let from_id = self.names[from].clone();
                if let Some(s) = self.members[to].node.as_mut() {
                    for m in msgs {
                        s.handle(self.now, &from_id, m, &mut out);
                    }
                }
                self.flush(to, &mut out);
            }
            Ev::Timer { i } => {
                if self.members[i].timer.map(|(_, s)| s) != Some(seq) {
                    return;
                }
                self.members[i].timer = None;
                if self.paused(i) {
                    let at = self.members[i].paused_until.expect("paused");
                    let seq = self.push(at, Ev::Timer { i });
                    self.members[i].timer = Some((at, seq));
                    return;
                }
                let mut out = Outbox::default();
                if let Some(s) = self.members[i].node.as_mut() {
                    s.tick(self.now, &mut out);
                }
                self.flush(i, &mut out);
            }
            Ev::Crash { i } => {
                if !self.live(i) {
                    return;
                }
                self.members[i].node = None;
                self.alive[i] = None;
                if let Some((t, s)) = self.members[i].timer.take() {
                    self.queue.remove(&(t, s));
                }
                self.obs.crashed(self.now, i, self.members[i].epoch);
                if self.sc.restart {
                    let down = Duration::from_secs_f64(10.0 + 20.0 * self.faults.random::<f64>());
                    let at = self.now + down;
                    self.push(at, Ev::Restart { i });
                }
            }
            Ev::Restart { i } => self.restart(i),
            Ev::Pause { i, length } => {
                if self.live(i) {
                    self.members[i].paused_until = Some(self.now + length);
                    self.obs.paused(i, self.now, self.now + length);
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
                self.net.partition(side);
            }
            Ev::Heal => {
                self.net.heal();
                self.obs.healed(self.now);
                let at = self.now + Duration::from_millis(250);
                self.push(at, Ev::Check);
            }
            Ev::Broadcast => self.broadcast(),
            Ev::JoinCheck => {
                if self.views_agree() {
                    self.joined = Some((self.now, self.mem_sent.clone()));
                } else {
                    let at = self.now + Duration::from_millis(10);
                    self.push(at, Ev::JoinCheck);
                }
            }
            Ev::Check => {
                if self.views_agree() {
                    self.obs.agreed(self.now);
                } else {
                    let at = self.now + Duration::from_millis(250);
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
        let epoch = self.members[i].epoch + 1;
        let Ok(mut s) = self.boot(i, epoch) else {
            return;
        };
        let mut out = Outbox::default();
        s.join(self.now, self.names[seed].clone(), &mut out);
        self.members[i].node = Some(s);
        self.members[i].epoch = epoch;
        self.alive[i] = Some(epoch);
        self.members[i].paused_until = None;
        self.obs.restarted(self.now, i);
        self.flush(i, &mut out);
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
                            && inc.epoch == Epoch(self.members[j].epoch)
                    })
            })
        })
    }

    pub fn report(&self, wall: Duration) -> Report {
        let n = self.sc.members as f64;
        let secs = self.sc.duration.0.as_secs_f64();
        let mut r = self.obs.report(self);
        // The traffic goes into the trace too: two runs that sent different
        // messages differ even when no member saw an event.
        let h = u64::from_str_radix(&r.trace_hash, 16).unwrap_or(0);
        r.trace_hash = format!(
            "{:016x}",
            hearsay_core::id::mix(h ^ self.msgs ^ self.bytes.rotate_left(32))
        );
        r.members = self.sc.members;
        r.seed = self.sc.seed;
        r.preset = self.sc.preset.to_string();
        r.lifeguard = self.sc.lifeguard;
        r.detector = self.sc.detector.to_string();
        r.probes = self.sc.probes.to_string();
        r.strategy = format!("{} ({})", self.sc.strategy, self.sc.broadcast_preset);
        r.duration_s = secs;
        r.bytes_per_member_per_s = self.bytes as f64 / n / secs;
        r.msgs_per_member_per_s = self.msgs as f64 / n / secs;
        r.membership_msgs_per_member_per_s = self.mem_msgs as f64 / n / secs;
        if self.sc.cold_start {
            let joined = self.joined.as_ref();
            let mut joiners: Vec<u64> = joined.map_or_else(Vec::new, |(_, s)| s[1..].to_vec());
            joiners.sort_unstable();
            r.join = Some(crate::report::Join {
                views_agree_s: joined.map(|(t, _)| t.as_micros() as f64 / 1e6),
                seed_msgs: joined.map(|(_, s)| s[0]),
                msgs_per_joiner_max: joiners.last().copied(),
                msgs_per_joiner_median: (!joiners.is_empty())
                    .then(|| joiners[(joiners.len() - 1) / 2]),
            });
        }
        r.datagrams_per_member_per_s = self.datagrams as f64 / n / secs;
        r.wire_refused = self.refused;
        r.live_at_end = (0..self.sc.members).filter(|&i| self.live(i)).count();
        if self.late_payloads > 0 {
            r.broadcast.msgs_per_member_per_payload =
                Some(self.late_cast_msgs as f64 / n / self.late_payloads as f64);
        }
        for s in self.members.iter().filter_map(|m| m.node.as_ref()) {
            s.add_totals(&mut r.cast);
            let x = s.swim().stats();
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
        r.wall_s = wall.as_secs_f64();
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearsay_core::cluster::{ClusterConfig, ClusterMsg, ClusterNode};
    use hearsay_wire::codec::Datagram;

    #[test]
    fn the_bytes_counted_are_the_datagrams_the_agents_codec_writes() {
        let sc = Scenario {
            members: 6,
            ..Scenario::default()
        };
        let mut sim = Sim::<ClusterNode>::new(&sc, ClusterConfig::default()).unwrap();
        let before = (sim.bytes, sim.datagrams);
        let mut out = Outbox::default();
        let node = sim.members[2].node.as_mut().unwrap();
        node.broadcast(Instant::ZERO, vec![7u8; 300].into(), &mut out)
            .unwrap();
        node.tick(Instant::from_millis(1), &mut out);
        assert!(!out.is_empty());
        // The same messages, packed per destination and encoded by a codec
        // of our own, then read back.
        let mut by: Vec<(NodeId, Vec<ClusterMsg>)> = Vec::new();
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
        let (mut bytes, mut datagrams) = (0, 0);
        for (_, msgs) in &by {
            for d in codec.encode(&Datagram::from("m2"), msgs.clone()) {
                bytes += d.len() as u64;
                datagrams += 1;
                let mut back = codec.decode(&d).unwrap();
                let got: Vec<_> = back.messages().map(|m| m.msg).collect();
                let sent: Vec<_> = msgs.iter().map(|m| m.msg.clone()).collect();
                assert_eq!(got, sent, "what arrives is what was sent");
            }
        }
        sim.flush(2, &mut out);
        assert_eq!(sim.bytes - before.0, bytes);
        assert_eq!(sim.datagrams - before.1, datagrams);
    }
}
