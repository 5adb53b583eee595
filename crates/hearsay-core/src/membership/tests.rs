//! SWIM and Lifeguard rules on small virtual-time clusters. Each test
//! names the rule it encodes.

use super::*;
use crate::id::{Epoch, NodeId};
use crate::outbox::Outbox;
use crate::rng;
use crate::simnet::{Faults, Latency, Network};
use crate::time::Instant;
use proptest::prelude::*;
use std::sync::Arc;
use std::time::Duration;

/// A cluster of SWIM machines on the simulator's network (latency, loss,
/// cut links, crashes, pauses), with every event each member reported.
struct Cluster {
    cfg: SwimConfig,
    names: Vec<NodeId>,
    net: Network<Swim>,
    epochs: Vec<u64>,
    /// Every event, with who saw it and when.
    events: Vec<(Instant, usize, Event)>,
    /// Member i's seed is this + i.
    node_seed: u64,
}

impl Cluster {
    fn new(n: usize, cfg: SwimConfig) -> Cluster {
        Cluster::seeded(n, cfg, 3, 11)
    }

    /// A cluster whose network and members draw from other seeds.
    /// `n` members that sign (member i with the secret [i + 1; 32]), each
    /// with a tag set, so that its first signed alive claim tells its key.
    fn signing(n: usize, cfg: SwimConfig) -> Cluster {
        let mut c = Cluster::new(n, cfg);
        for i in 0..n {
            c.input(i, |n, _, _| n.set_identity([i as u8 + 1; 32]));
            let tags = [("v".into(), "1".into())].into();
            c.input(i, |n, now, _| n.set_tags(now, tags).unwrap());
        }
        c
    }

    fn seeded(n: usize, cfg: SwimConfig, seed: u64, node_seed: u64) -> Cluster {
        let names: Vec<NodeId> = (0..n).map(|i| NodeId::new(format!("m{i}"))).collect();
        let boot = |i: usize| {
            let mut s = boot(&cfg, &names[i], 1, node_seed + i as u64);
            let all: Vec<_> = (0..n)
                .filter(|&j| j != i)
                .map(|j| {
                    (
                        names[j].clone(),
                        Incarnation::new(Epoch(1), 0),
                        Arc::new(Meta::default()),
                    )
                })
                .collect();
            s.bootstrap(Instant::ZERO, all);
            s
        };
        let nodes = (0..n).map(boot).collect();
        let latency = Duration::from_millis(5);
        let faults = Faults::new(
            Latency::Uniform {
                lo: latency,
                hi: latency * 2,
            },
            rng::child(seed, "cluster"),
        );
        let mut net = Network::new(names.clone(), nodes, faults);
        // Through the codec, as a real shell does.
        net.wire = |m: MemberMsg| serde_json::from_str(&serde_json::to_string(&m).ok()?).ok();
        Cluster {
            cfg,
            names,
            net,
            epochs: vec![1; n],
            events: Vec::new(),
            node_seed,
        }
    }

    fn now(&self) -> Instant {
        self.net.now()
    }

    fn node(&self, i: usize) -> Option<&Swim> {
        self.net.node(i)
    }

    /// An input to member `i` from the test itself, at the current time.
    fn input(&mut self, i: usize, f: impl FnOnce(&mut Swim, Instant, &mut Outbox<MemberMsg>)) {
        let events = &mut self.events;
        self.net.input(i, |n, now, out| {
            f(n, now, out);
            events.extend(n.drain_events().map(|e| (now, i, e)));
        });
    }

    fn run_for(&mut self, d: Duration) {
        let until = self.now() + d;
        let events = &mut self.events;
        self.net
            .run_until(until, |now, i, n| {
                events.extend(n.drain_events().map(|e| (now, i, e)));
            })
            .expect("the cluster moves on");
    }

    fn pause(&mut self, i: usize, d: Duration) {
        let until = self.now() + d;
        self.net.pause(i, until);
    }

    fn crash(&mut self, i: usize) {
        self.net.crash(i);
    }

    /// Back with empty state in a new epoch, joining through `seed`.
    fn restart(&mut self, i: usize, seed: usize) {
        self.epochs[i] += 1;
        let s = boot(
            &self.cfg,
            &self.names[i],
            self.epochs[i],
            self.node_seed + i as u64,
        );
        self.net.start(i, s);
        let to = [self.names[seed].clone()];
        self.input(i, |n, now, out| n.join(now, &to, out));
    }

    fn status(&self, observer: usize, of: usize) -> Option<Status> {
        self.node(observer)?
            .status_of(&self.names[of])
            .map(|(_, s)| s)
    }

    fn everyone_sees(&self, of: usize, status: Status) -> bool {
        (0..self.names.len())
            .filter(|&i| i != of && self.net.live(i))
            .all(|i| self.status(i, of) == Some(status))
    }

    fn deaths_of(&self, of: usize) -> usize {
        self.events
            .iter()
            .filter(|(_, _, e)| matches!(e, Event::Died(id, _) if *id == self.names[of]))
            .count()
    }

    fn isolate(&mut self, group: &[usize]) {
        self.net.faults.isolate(group, self.names.len());
    }
}

fn boot(cfg: &SwimConfig, me: &NodeId, epoch: u64, seed: u64) -> Swim {
    Swim::new(cfg.clone(), me.clone(), Epoch(epoch), Meta::default(), seed).unwrap()
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn swim_3_1_a_crashed_member_is_declared_dead_by_everyone() {
    let mut c = Cluster::new(20, SwimConfig::default());
    c.run_for(secs(5));
    assert_eq!(c.deaths_of(7), 0);
    c.crash(7);
    c.run_for(secs(15));
    assert!(c.everyone_sees(7, Status::Dead), "not everyone saw m7 die");
    // Nobody else died, and the dead member is not probed any more.
    for i in (0..20).filter(|&i| i != 7) {
        assert_eq!(c.deaths_of(i), 0, "m{i} falsely declared dead");
    }
}

#[test]
fn swim_3_1_indirect_probes_keep_a_member_whose_direct_link_fails() {
    let mut c = Cluster::new(10, SwimConfig::default());
    // m0 cannot reach the member it probes, its ring successor, directly
    // (both ways); everyone else can.
    let mine = c.names[0].hash64();
    let next = (1..10)
        .min_by_key(|&i| c.names[i].hash64().wrapping_sub(mine))
        .unwrap();
    c.net.faults.cut_link(0, next);
    c.net.faults.cut_link(next, 0);
    c.run_for(secs(60));
    assert_eq!(c.deaths_of(next), 0);
    assert_eq!(c.deaths_of(0), 0);
    let s = c.node(0).unwrap().stats();
    assert!(s.indirect_probes > 0, "m0 went indirect");
}

#[test]
fn swim_4_2_a_suspect_refutes_with_a_higher_incarnation() {
    let mut c = Cluster::new(10, SwimConfig::default());
    c.run_for(secs(2));
    // m4 stops answering until someone suspects it, then runs again: it
    // must refute before the suspicion times out.
    let suspected = |c: &Cluster| {
        c.events
            .iter()
            .any(|(_, _, e)| matches!(e, Event::Suspected(id, _) if *id == c.names[4]))
    };
    c.pause(4, secs(60));
    for _ in 0..3_000 {
        if suspected(&c) {
            break;
        }
        c.run_for(Duration::from_millis(10));
    }
    assert!(suspected(&c), "the pause made m4 a suspect");
    c.net.resume(4);
    c.run_for(secs(20));
    assert_eq!(c.deaths_of(4), 0, "m4 refuted in time");
    let me = c.node(4).unwrap().incarnation();
    assert!(me.n >= 1, "refuting bumped the incarnation");
    assert!(c.everyone_sees(4, Status::Alive));
    assert!(c.node(4).unwrap().stats().refutations >= 1);
}

/// Classic SWIM as the papers run it: a shuffled round-robin of probe
/// targets and a fixed 2 s suspicion timeout, no Lifeguard.
fn classic() -> SwimConfig {
    SwimConfig {
        probe_order: ProbeOrder::Shuffled,
        lifeguard: false,
        suspicion_floor: secs(2),
        ..SwimConfig::default()
    }
}

#[test]
fn pauses_shorter_than_the_earliest_conviction_live_where_classic_swim_kills_them() {
    // Twelve members in turn stop for 3.1 s (a GC pause, a stalled VM).
    // A paused member looks dead until it answers, so what saves it is
    // a conviction that never comes early: a ring probe notices the
    // silence within a period, the confirmations the suspicion seeks
    // bring it to its floor (2.6 s) at once, so no silence is convicted
    // in under 3.35 s. Classic SWIM convicts an exponential wait plus
    // 2.75 s after the silence starts. Ten seeds (120 pauses): a rate.
    let run = |cfg: &SwimConfig| {
        let mut dead = 0;
        for seed in 3..13 {
            let mut c = Cluster::seeded(12, cfg.clone(), seed, 11 + 100 * (seed - 3));
            c.run_for(secs(2));
            for i in 0..12 {
                c.pause(i, Duration::from_millis(3100));
                c.run_for(secs(8));
            }
            dead += (0..12).filter(|&i| c.deaths_of(i) > 0).count();
        }
        dead
    };
    let (ours, classic) = (run(&SwimConfig::default()), run(&classic()));
    assert!(
        classic >= 60,
        "classic SWIM: {classic} of 120 paused members declared dead"
    );
    assert!(ours <= 2, "hearsay: {ours} of 120, classic SWIM: {classic}");
}

/// Seconds from each crash until every live member saw it dead: twelve
/// members, four crashed one after another, on six seeds.
fn detection_times(cfg: &SwimConfig) -> Vec<f64> {
    let mut times = Vec::new();
    for seed in 0..6 {
        let mut c = Cluster::seeded(12, cfg.clone(), 20 + seed, 500 + 100 * seed);
        c.run_for(secs(3));
        for i in [2, 5, 8, 11] {
            let at = c.now();
            c.crash(i);
            c.run_for(secs(12));
            assert!(c.everyone_sees(i, Status::Dead), "m{i} not seen dead");
            let last = c
                .events
                .iter()
                .filter(|(t, _, e)| {
                    *t >= at && matches!(e, Event::Died(id, _) if *id == c.names[i])
                })
                .map(|(t, _, _)| *t)
                .max()
                .expect("seen dead");
            times.push((last - at).as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    times
}

#[test]
fn a_crash_is_seen_dead_within_a_period_a_probe_and_the_floor() {
    // The bound ring probes and sought confirmations give: a period
    // (0.5 s) until the predecessor's probe, the probe (0.75 s), the
    // floor (2.6 s), and the news of the death (a few gossip rounds):
    // 4.4 s, the agent's target. Never before floor + probe, either
    // (the pause a member survives). Classic SWIM starts earlier and
    // spreads wider.
    let ours = detection_times(&SwimConfig::default());
    let (lo, hi) = (ours[0], ours[ours.len() - 1]);
    assert!((3.35..=4.4).contains(&lo) && hi <= 4.4, "hearsay: {ours:?}");
    let classic = detection_times(&classic());
    let spread = classic[classic.len() - 1] - classic[0];
    assert!(
        classic[0] < 3.35 && spread > 1.5 * (hi - lo),
        "classic {classic:?} vs hearsay {ours:?}"
    );
}

#[test]
fn lifeguard_4c_a_probe_to_a_suspect_carries_its_suspicion() {
    let mut a = Swim::new(
        SwimConfig::default(),
        NodeId::new("a"),
        Epoch(1),
        Meta::default(),
        1,
    )
    .unwrap();
    let b = NodeId::new("b");
    a.bootstrap(
        Instant::ZERO,
        [(
            b.clone(),
            Incarnation::new(Epoch(1), 0),
            Arc::new(Meta::default()),
        )],
    );
    let mut out = Outbox::default();
    let claim = Update {
        id: b.clone(),
        inc: Incarnation::new(Epoch(1), 0),
        status: Status::Suspect,
        meta: None,
        from: Some(NodeId::new("c")),
        sig: None,
    };
    a.handle(
        Instant::ZERO,
        &NodeId::new("c"),
        MemberMsg::Gossip { u: vec![claim] },
        &mut out,
    );
    out.drain().for_each(drop);
    // The next probe of b.
    let mut t = Instant::ZERO;
    let mut ping = None;
    for _ in 0..100 {
        t += Duration::from_millis(100);
        a.tick(t, &mut out);
        if let Some((_, m)) = out
            .drain()
            .find(|(to, m)| *to == b && matches!(m, MemberMsg::Ping { .. }))
        {
            ping = Some(m);
            break;
        }
    }
    let Some(MemberMsg::Ping { u, .. }) = ping else {
        panic!("b was never probed");
    };
    assert_eq!(u[0].id, b);
    assert_eq!(u[0].status, Status::Suspect);
}

#[test]
fn lifeguard_4a_missing_nacks_raise_the_local_health_multiplier() {
    // Every probe of m0 fails and no helper answers (m0 is cut off from
    // everyone): m0 concludes it is the slow one and stretches its period.
    let mut c = Cluster::new(6, SwimConfig::default());
    c.isolate(&[0]);
    c.run_for(secs(3));
    assert!(c.node(0).unwrap().health() > 0);
    // Helpers that do answer with nacks keep a healthy prober healthy
    // while a dead target is suspected.
    let mut c = Cluster::new(6, SwimConfig::default());
    c.crash(3);
    c.run_for(secs(3));
    let nacks: u64 = c.net.nodes().map(|n| n.stats().nacks_received).sum();
    assert!(nacks > 0, "indirect probers sent nacks");
    assert!(c.net.nodes().all(|n| n.health() <= 1));
}

#[test]
fn a_graceful_leave_is_a_leave_not_a_death() {
    let mut c = Cluster::new(10, SwimConfig::default());
    c.run_for(secs(2));
    c.input(2, |n, now, out| n.leave(now, out));
    c.run_for(secs(2));
    c.crash(2);
    c.run_for(secs(10));
    assert!(c.everyone_sees(2, Status::Left));
    assert_eq!(c.deaths_of(2), 0);
}

#[test]
fn a_failed_member_forced_out_is_left_everywhere_and_an_alive_one_is_refused() {
    use crate::membership::ForceLeaveError;
    let mut c = Cluster::new(8, SwimConfig::default());
    c.run_for(secs(2));
    let id = |i: usize| NodeId::new(format!("m{i}"));
    // Alive, itself, unknown: refused, and nothing changes.
    let mut refusals = Vec::new();
    c.input(0, |n, now, out| {
        refusals.push(n.force_leave(now, &id(3), out));
        refusals.push(n.force_leave(now, &id(0), out));
        refusals.push(n.force_leave(now, &NodeId::new("nobody"), out));
    });
    assert_eq!(
        refusals,
        [
            Err(ForceLeaveError::Alive),
            Err(ForceLeaveError::Myself),
            Err(ForceLeaveError::Unknown)
        ]
    );
    assert!(c.everyone_sees(3, Status::Alive));
    // A crashed member, dead everywhere, forced out by one: left
    // everywhere, and never dead again.
    c.crash(3);
    c.run_for(secs(15));
    assert!(c.everyone_sees(3, Status::Dead));
    let deaths = c.deaths_of(3);
    let mut done = None;
    c.input(0, |n, now, out| {
        done = Some(n.force_leave(now, &id(3), out))
    });
    assert_eq!(done, Some(Ok(())));
    c.run_for(secs(5));
    assert!(c.everyone_sees(3, Status::Left), "the leave spread");
    assert_eq!(c.deaths_of(3), deaths, "no new death");
    let mut again = None;
    c.input(1, |n, now, out| {
        again = Some(n.force_leave(now, &id(3), out))
    });
    assert_eq!(again, Some(Err(ForceLeaveError::Gone)));
}

#[test]
fn tags_set_at_runtime_reach_every_member_and_oversized_ones_are_refused() {
    use super::{MAX_TAGS_BYTES, TagsError};
    let tags = |kv: &[(&str, &str)]| -> std::collections::BTreeMap<Box<str>, Box<str>> {
        kv.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect()
    };
    let seen = |c: &Cluster, observer: usize, of: usize| {
        let id = NodeId::new(format!("m{of}"));
        c.node(observer).and_then(|n| {
            n.members()
                .find(|(m, ..)| **m == id)
                .map(|(.., meta)| meta.tags.clone())
        })
    };
    let mut c = Cluster::new(20, SwimConfig::default());
    c.run_for(secs(2));
    let before = c.node(3).unwrap().incarnation();
    let web = tags(&[("role", "web"), ("version", "1.2")]);
    c.input(3, |n, now, _| n.set_tags(now, web.clone()).unwrap());
    assert!(
        c.node(3).unwrap().incarnation() > before,
        "a new incarnation carries them"
    );
    c.run_for(secs(5));
    for i in (0..20).filter(|&i| i != 3) {
        assert_eq!(seen(&c, i, 3).as_ref(), Some(&web), "member {i}");
    }
    // Each other member was told, as an update (not a join or a refutation).
    let m3 = NodeId::new("m3");
    let told: std::collections::BTreeSet<usize> = c
        .events
        .iter()
        .filter(|(_, _, e)| matches!(e, Event::Updated(id, _) if *id == m3))
        .map(|(_, i, _)| *i)
        .collect();
    assert_eq!(told.len(), 19, "{told:?}");
    // A change replaces them everywhere; nobody suspected anyone.
    let db = tags(&[("role", "db")]);
    c.input(3, |n, now, _| n.set_tags(now, db.clone()).unwrap());
    c.run_for(secs(5));
    assert!(
        (0..20)
            .filter(|&i| i != 3)
            .all(|i| seen(&c, i, 3).as_ref() == Some(&db))
    );
    assert_eq!(c.deaths_of(3), 0);
    // Refused, and nothing changes.
    let big = "x".repeat(MAX_TAGS_BYTES);
    let inc = c.node(3).unwrap().incarnation();
    for (bad, want) in [
        (tags(&[("role", &big)]), "bytes"),
        (tags(&[("", "x")]), "needs a name"),
        (tags(&[("a=b", "x")]), "cannot have"),
        (tags(&[("a", "x\ny")]), "control"),
        // Many tiny tags cost their framing too (309 bytes of names, 515
        // with it): a rumour must fit a datagram.
        (
            (0..103)
                .map(|i| (format!("{i:03}").into(), "".into()))
                .collect(),
            "bytes",
        ),
    ] {
        let mut err = None;
        c.input(3, |n, now, _| err = n.set_tags(now, bad).err());
        let e: TagsError = err.expect("refused");
        assert!(e.to_string().contains(want), "{e}");
    }
    assert_eq!(c.node(3).unwrap().incarnation(), inc);
    assert_eq!(c.node(3).unwrap().meta().tags, db);
}

#[test]
fn dead_members_are_collected_and_an_old_rumour_does_not_bring_them_back() {
    let cfg = SwimConfig {
        dead_retention: secs(20),
        ..SwimConfig::default()
    };
    let mut c = Cluster::new(8, cfg);
    c.crash(5);
    c.run_for(secs(10));
    assert!(c.everyone_sees(5, Status::Dead));
    c.run_for(secs(30));
    assert!(
        (0..8).filter(|&i| i != 5).all(|i| c.status(i, 5).is_none()),
        "collected"
    );
    // An old claim that m5 is alive (its last incarnation) changes nothing.
    let old = Update {
        id: c.names[5].clone(),
        inc: Incarnation::new(Epoch(1), 0),
        status: Status::Alive,
        meta: None,
        from: None,
        sig: None,
    };
    let from = c.names[1].clone();
    c.input(0, |n, now, out| {
        n.handle(now, &from, MemberMsg::Gossip { u: vec![old] }, out)
    });
    c.run_for(secs(5));
    assert!(
        (0..8).filter(|&i| i != 5).all(|i| c.status(i, 5).is_none()),
        "resurrected by an old rumour"
    );
    // A restart (a new epoch) rejoins.
    c.restart(5, 0);
    c.run_for(secs(10));
    assert!(c.everyone_sees(5, Status::Alive), "the new life rejoined");
}

#[test]
fn a_restarted_member_rejoins_in_a_higher_incarnation() {
    let mut c = Cluster::new(10, SwimConfig::default());
    c.crash(3);
    c.run_for(secs(10));
    assert!(c.everyone_sees(3, Status::Dead));
    c.restart(3, 8);
    c.run_for(secs(10));
    assert!(c.everyone_sees(3, Status::Alive));
    let seen = c.node(0).unwrap().status_of(&c.names[3]).unwrap().0;
    assert_eq!(seen.epoch, Epoch(2));
    // And the newcomer knows everyone.
    let n = c.node(3).unwrap();
    assert_eq!(n.live(), 10);
}

/// A member back in a new life whose join was lost is found through the
/// others' reconnect pings to its dead earlier life: it answers them with
/// its new life. Before, one that had learned the table some other way (a
/// state from a member that pinged it, whose answer back was lost) acked
/// every such ping with nothing and stayed unknown to all (the
/// simulator's seed 15: 35 s without a payload).
#[test]
fn a_member_back_whose_join_was_lost_answers_pings_to_its_old_life_with_its_new_one() {
    let (a, b, c) = (NodeId::new("a"), NodeId::new("b"), NodeId::new("c"));
    let cfg = SwimConfig::default();
    let known = |ids: &[&NodeId]| -> Vec<(NodeId, Incarnation, Arc<Meta>)> {
        ids.iter()
            .map(|id| {
                (
                    (*id).clone(),
                    Incarnation::new(Epoch(1), 0),
                    Arc::new(Meta::default()),
                )
            })
            .collect()
    };
    // a holds b's first life dead (c told it so).
    let mut sa = boot(&cfg, &a, 1, 1);
    sa.bootstrap(Instant::ZERO, known(&[&b, &c]));
    let dead = Update {
        id: b.clone(),
        inc: Incarnation::new(Epoch(1), 0),
        status: Status::Dead,
        meta: None,
        from: Some(c.clone()),
        sig: None,
    };
    let mut out = Outbox::default();
    sa.handle(
        Instant::ZERO,
        &c,
        MemberMsg::Gossip { u: vec![dead] },
        &mut out,
    );
    assert_eq!(sa.status_of(&b).map(|(_, s)| s), Some(Status::Dead));
    // b's second life knows a and c, but neither knows it.
    let mut sb = boot(&cfg, &b, 2, 2);
    sb.bootstrap(Instant::ZERO, known(&[&a, &c]));
    // a's reconnect ping reaches b, and what b sends back reaches a.
    let mut t = Instant::ZERO;
    let mut pinged = false;
    for _ in 0..200 {
        t += Duration::from_millis(100);
        let mut out = Outbox::default();
        sa.tick(t, &mut out);
        for (to, m) in out.drain() {
            if to != b {
                continue;
            }
            pinged |= matches!(&m, MemberMsg::Ping { t, .. } if *t == b);
            let mut back = Outbox::default();
            sb.handle(t, &a, m, &mut back);
            for (_, m) in back.drain().filter(|(to, _)| *to == a) {
                sa.handle(t, &b, m, &mut Outbox::default());
            }
        }
        if pinged {
            break;
        }
    }
    assert!(pinged, "a pings its dead member");
    assert_eq!(
        sa.status_of(&b),
        Some((Incarnation::new(Epoch(2), 0), Status::Alive)),
        "a knows b's new life"
    );
}

#[test]
fn a_partition_heals_by_itself_including_members_declared_dead() {
    let mut c = Cluster::new(20, SwimConfig::default());
    c.run_for(secs(2));
    let a: Vec<usize> = (0..10).collect();
    c.isolate(&a);
    c.run_for(secs(60));
    assert!(
        c.everyone_sees(0, Status::Dead) || (10..20).all(|i| c.status(i, 0) == Some(Status::Dead))
    );
    c.net.faults.heal();
    let healed = c.now();
    let mut agreed = None;
    for _ in 0..60 {
        c.run_for(Duration::from_millis(500));
        let all = (0..20).all(|i| c.everyone_sees(i, Status::Alive));
        if all {
            agreed = Some(c.now() - healed);
            break;
        }
    }
    let t = agreed.expect("views never agreed after the heal");
    assert!(t <= secs(10), "views agreed {t:?} after the heal");
}

#[test]
fn phi_accrual_detects_a_crash() {
    let cfg = SwimConfig {
        detector: Detector::Phi,
        ..SwimConfig::default()
    };
    let mut c = Cluster::new(12, cfg);
    c.run_for(secs(10));
    assert!(
        (0..12).all(|i| c.deaths_of(i) == 0),
        "no false positives while healthy"
    );
    c.crash(6);
    c.run_for(secs(20));
    assert!(c.everyone_sees(6, Status::Dead));
}

#[test]
fn zones_keep_most_probes_local() {
    let cfg = SwimConfig {
        cross_zone: 0.1,
        ..SwimConfig::default()
    };
    let zone = |i: usize| Meta::zone(if i < 10 { "z1" } else { "z2" });
    let names: Vec<NodeId> = (0..20).map(|i| NodeId::new(format!("m{i}"))).collect();
    let mut me = Swim::new(cfg, names[0].clone(), Epoch(1), zone(0), 1).unwrap();
    me.bootstrap(
        Instant::ZERO,
        (1..20).map(|i| {
            (
                names[i].clone(),
                Incarnation::new(Epoch(1), 0),
                Arc::new(zone(i)),
            )
        }),
    );
    let mut out = Outbox::default();
    let (mut local, mut remote) = (0, 0);
    let mut t = Instant::ZERO;
    for _ in 0..4000 {
        t += Duration::from_millis(50);
        me.tick(t, &mut out);
        for (to, m) in out.drain() {
            if let MemberMsg::Ping { q, .. } = m {
                let i = names.iter().position(|n| *n == to).unwrap();
                if i < 10 {
                    local += 1
                } else {
                    remote += 1
                }
                // Everyone answers.
                let mut o2 = Outbox::default();
                me.handle(t, &to, MemberMsg::Ack { q, u: vec![] }, &mut o2);
            }
        }
    }
    let share = remote as f64 / (local + remote) as f64;
    assert!(local + remote > 100);
    assert!((0.05..0.16).contains(&share), "cross-zone share {share}");
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let run = || {
        let mut c = Cluster::new(12, SwimConfig::default());
        c.net.faults.loss = 0.05;
        c.crash(4);
        c.run_for(secs(20));
        (
            c.net.sent(),
            c.events.len(),
            c.events
                .iter()
                .map(|(t, i, _)| (t.as_micros(), *i))
                .collect::<Vec<_>>(),
        )
    };
    assert_eq!(run(), run());
}

#[test]
fn a_state_exchange_answers_only_with_what_the_peer_lacks() {
    // The push half of push-pull: a state asking for a reply is answered
    // with what the asker lacks, and not at all when it lacks nothing (a
    // join storm otherwise pays a message per exchange for nothing).
    let names: Vec<NodeId> = ["a", "b", "c"].map(NodeId::new).to_vec();
    let mut a = boot(&SwimConfig::default(), &names[0], 1, 1);
    let others: Vec<_> = names[1..]
        .iter()
        .map(|n| {
            (
                n.clone(),
                Incarnation::new(Epoch(1), 0),
                Arc::new(Meta::default()),
            )
        })
        .collect();
    a.bootstrap(Instant::ZERO, others);
    let alive = |n: &NodeId| Update {
        id: n.clone(),
        inc: Incarnation::new(Epoch(1), 0),
        status: Status::Alive,
        meta: Some(Arc::new(Meta::default())),
        from: None,
        sig: None,
    };
    let answer = |a: &mut Swim, m: Vec<Update>| {
        let mut out = Outbox::default();
        let state = MemberMsg::State {
            reply: true,
            b: None,
            m,
        };
        a.handle(Instant::from_millis(10), &names[1], state, &mut out);
        out.into_iter()
            .filter_map(|(to, m)| match m {
                MemberMsg::State { m, .. } if to == names[1] => {
                    Some(m.into_iter().map(|u| u.id).collect::<Vec<_>>())
                }
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let everyone: Vec<Update> = names.iter().map(alive).collect();
    assert_eq!(answer(&mut a, everyone), Vec::<Vec<NodeId>>::new());
    let without_c: Vec<Update> = names[..2].iter().map(alive).collect();
    assert_eq!(answer(&mut a, without_c), vec![vec![names[2].clone()]]);
}

#[test]
fn a_periodic_sync_sends_one_sum_and_buckets_only_when_views_differ() {
    // An idle agent's largest message was the 64-bucket digest of every
    // sync (393 of its 153 B/s at 50 members, a quarter of its bytes):
    // now the sum goes first, and the buckets follow only on a mismatch.
    let names: Vec<NodeId> = ["a", "b", "c"].map(NodeId::new).to_vec();
    let cfg = SwimConfig::default();
    let (mut a, mut b) = (boot(&cfg, &names[0], 1, 1), boot(&cfg, &names[1], 1, 2));
    let known = |of: &[usize]| -> Vec<_> {
        of.iter()
            .map(|&i| {
                (
                    names[i].clone(),
                    Incarnation::new(Epoch(1), 0),
                    Arc::new(Meta::default()),
                )
            })
            .collect()
    };
    a.bootstrap(Instant::ZERO, known(&[1, 2]));
    b.bootstrap(Instant::ZERO, known(&[0, 2]));
    let now = Instant::from_millis(10);
    let sum = |s: &mut Swim| {
        let mut out = Outbox::default();
        s.sync(&mut out);
        let (_, m) = out.into_iter().next().expect("a sync goes out");
        m
    };
    let mut out = Outbox::default();
    let m = sum(&mut a);
    assert!(
        matches!(&m, MemberMsg::Digest { d, .. } if d.len() == 1),
        "{m:?}"
    );
    b.handle(now, &names[0], m, &mut out);
    assert_eq!(out.len(), 0, "the same view: nothing more");

    // b learns of d, which a does not know: the sums differ, b answers with
    // its buckets, a asks for the differing ones, and b's state tells a of d.
    let d = NodeId::new("d");
    b.handle(
        now,
        &d,
        MemberMsg::Gossip {
            u: vec![Update {
                id: d.clone(),
                inc: Incarnation::new(Epoch(1), 0),
                status: Status::Alive,
                meta: Some(Arc::new(Meta::default())),
                from: None,
                sig: None,
            }],
        },
        &mut Outbox::default(),
    );
    let m = sum(&mut a);
    b.handle(now, &names[0], m, &mut out);
    let (to, buckets) = out.into_iter().next().expect("b answers with its buckets");
    assert_eq!(to, names[0]);
    assert!(
        matches!(&buckets, MemberMsg::Digest { d, .. } if d.len() == crate::membership::table::BUCKETS)
    );
    let mut out = Outbox::default();
    a.handle(now, &names[1], buckets, &mut out);
    let (_, state) = out
        .into_iter()
        .next()
        .expect("a sends the differing buckets");
    let mut out = Outbox::default();
    b.handle(now, &names[0], state, &mut out);
    let (_, answer) = out.into_iter().next().expect("b answers with what a lacks");
    a.handle(now, &names[1], answer, &mut Outbox::default());
    assert!(a.members().any(|(id, ..)| id == &d), "a learned of d");
}

#[test]
fn a_forged_death_is_shown_to_the_member_which_refutes_at_once() {
    // m0 hears from a stranger that m1 is dead, at m1's own incarnation.
    // SWIM believes it (a death is final within an incarnation), and m1
    // must hear of it to refute. Before, only gossip to the recently dead
    // told it, and with m0's table full of strangers (500 here, as a flood
    // of invented members leaves it) that took about a minute.
    let mut c = Cluster::new(3, SwimConfig::default());
    c.run_for(secs(1));
    let mallory = NodeId::new("mallory");
    let claim = |id: NodeId, inc: Incarnation, status: Status| Update {
        id,
        inc,
        status,
        meta: (status == Status::Alive).then(|| Arc::new(Meta::default())),
        from: Some(NodeId::new("mallory")),
        sig: None,
    };
    for k in 0..10 {
        let u = (0..50)
            .map(|j| {
                let id = NodeId::new(format!("ghost-{}", k * 50 + j));
                claim(id, Incarnation::new(Epoch(7), 0), Status::Alive)
            })
            .collect();
        c.input(0, |n, now, out| {
            n.handle(now, &mallory, MemberMsg::Gossip { u }, out)
        });
    }
    let m1 = c.names[1].clone();
    let inc = c.node(0).unwrap().status_of(&m1).unwrap().0;
    let dead = claim(m1.clone(), inc, Status::Dead);
    c.input(0, |n, now, out| {
        n.handle(now, &mallory, MemberMsg::Gossip { u: vec![dead] }, out)
    });
    assert_eq!(c.status(0, 1), Some(Status::Dead), "believed");
    c.run_for(Duration::from_millis(500));
    let (now_inc, status) = c.node(0).unwrap().status_of(&m1).unwrap();
    assert_eq!(status, Status::Alive, "refuted within half a second");
    assert!(now_inc > inc);
}

#[test]
fn members_that_sign_are_not_killed_by_claims_they_did_not_make() {
    // Each member signs its claims; the others learn its key from its
    // first signed alive claim (new tags here) and from then on take a new
    // incarnation of it, or its leave, only signed with that key.
    let mut c = Cluster::signing(3, SwimConfig::default());
    c.run_for(secs(2));
    let m1 = c.names[1].clone();
    let key1 = c.node(1).unwrap().meta().key;
    assert!(key1.is_some());
    assert_eq!(
        c.node(0).unwrap().meta_of(&m1).map(|m| m.key),
        Some(key1),
        "m0 learned m1's key from its signed claim"
    );
    let (inc, _) = c.node(0).unwrap().status_of(&m1).unwrap();
    let mallory = NodeId::new("mallory");
    // Mallory signs with a key of her own: m1 alive in a later life (with
    // her key), m1 suspected at the top counter and in a later life, m1
    // left, m1 alive with her address; all refused.
    let forged_key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let sign = |mut u: Update| {
        use ed25519_dalek::Signer;
        u.sig = Some(Bytes(forged_key.sign(&u.signed_bytes()).to_bytes()));
        u
    };
    let later = Incarnation::new(Epoch(inc.epoch.0 + 1), 0);
    let top = Incarnation::new(inc.epoch, u32::MAX);
    let mine = Arc::new(Meta {
        addr: Some("mallory:1".into()),
        key: Some(Bytes(forged_key.verifying_key().to_bytes())),
        ..Meta::default()
    });
    let claim = |inc, status, meta: Option<Arc<Meta>>| Update {
        id: m1.clone(),
        inc,
        status,
        meta,
        from: Some(mallory.clone()),
        sig: None,
    };
    let forged = vec![
        sign(claim(later, Status::Alive, Some(mine.clone()))),
        claim(top, Status::Suspect, None),
        claim(later, Status::Dead, None),
        sign(claim(inc, Status::Left, None)),
        sign(claim(
            Incarnation::new(inc.epoch, inc.n + 1),
            Status::Alive,
            Some(Arc::new(Meta {
                addr: Some("mallory:1".into()),
                ..(*c.node(1).unwrap().meta()).clone()
            })),
        )),
    ];
    let refused = |n: &Swim| n.stats().forged;
    let before = refused(c.node(0).unwrap());
    for u in forged {
        c.input(0, |n, now, out| {
            n.handle(now, &mallory, MemberMsg::Gossip { u: vec![u] }, out)
        });
    }
    assert_eq!(refused(c.node(0).unwrap()) - before, 5, "each counted");
    assert_eq!(
        c.node(0).unwrap().status_of(&m1),
        Some((inc, Status::Alive))
    );
    // A suspicion at m1's own incarnation stands until m1 refutes it, one
    // above what it signed (not above what the accuser named).
    let suspicion = claim(inc, Status::Suspect, None);
    c.input(0, |n, now, out| {
        n.handle(now, &mallory, MemberMsg::Gossip { u: vec![suspicion] }, out)
    });
    assert_eq!(c.status(0, 1), Some(Status::Suspect));
    c.run_for(secs(3));
    assert_eq!(
        c.node(0).unwrap().status_of(&m1),
        Some((Incarnation::new(inc.epoch, inc.n + 1), Status::Alive))
    );
    // What m1 signs goes through: a leave.
    c.input(1, |n, now, out| n.leave(now, out));
    c.run_for(secs(2));
    assert_eq!(c.status(0, 1), Some(Status::Left));
    assert_eq!(c.deaths_of(1), 0);
}

#[test]
fn a_flood_of_claims_needing_checks_is_rationed_and_a_refutation_still_gets_through() {
    // Every member signs. Mallory, an insider, floods m0 with claims that
    // each need a signature check (strangers with keys, new incarnations
    // of m1 under m1's key), junk-signed, under her name, m1's and m2's,
    // and suspects m1: m0 checks no more than its budget, and still takes
    // m1's refutation (it comes in the acks to m0's own pings of m1, whose
    // numbers she cannot guess).
    let cfg = SwimConfig {
        checks_per_sec: 200,
        ..SwimConfig::default()
    };
    let mut c = Cluster::signing(3, cfg);
    c.run_for(secs(2));
    let (m1, m2) = (c.names[1].clone(), c.names[2].clone());
    let (inc, _) = c.node(0).unwrap().status_of(&m1).unwrap();
    let m1_meta = Arc::new(c.node(1).unwrap().meta().clone());
    let mallory = NodeId::new("mallory");
    let junk = Some(Bytes([7; 64]));
    let mut rng = crate::rng::child(5, "mallory");
    let mut claims = move |k: u64| -> Vec<Update> {
        (0..10)
            .map(|j| {
                if j % 2 == 0 {
                    Update {
                        id: m1.clone(),
                        inc: Incarnation::new(inc.epoch, inc.n + 1 + k as u32),
                        status: Status::Alive,
                        meta: Some(m1_meta.clone()),
                        from: None,
                        sig: junk,
                    }
                } else {
                    Update {
                        id: NodeId::new(format!("ghost{k}-{j}")),
                        inc: Incarnation::new(Epoch(1), 0),
                        status: Status::Alive,
                        meta: Some(Arc::new(Meta {
                            key: Some(Bytes(rng.random())),
                            ..Meta::default()
                        })),
                        from: None,
                        sig: junk,
                    }
                }
            })
            .collect()
    };
    let before = c.node(0).unwrap().stats();
    let senders = [mallory.clone(), c.names[1].clone(), m2];
    let m1 = c.names[1].clone();
    let suspicion = Update {
        id: m1.clone(),
        inc,
        status: Status::Suspect,
        meta: None,
        from: Some(mallory.clone()),
        sig: None,
    };
    c.input(0, |n, now, out| {
        n.handle(now, &mallory, MemberMsg::Gossip { u: vec![suspicion] }, out)
    });
    assert_eq!(c.status(0, 1), Some(Status::Suspect));
    // Ten seconds, 100 messages of 10 claims every 10 ms: 1,000,000
    // claims needing a check, against a budget of 200 a second.
    let steps = 1000u64;
    let mut relayed = 0;
    for k in 0..steps {
        for s in 0..100u64 {
            let from = senders[(s % 3) as usize].clone();
            let u = claims(k * 100 + s);
            // As gossip; as a state after a digest of hers (m0 answers
            // that digest, but did not ask for her state); as acks with
            // numbers a counter would have used.
            let m = match s % 10 {
                0 => {
                    let d = MemberMsg::Digest {
                        d: (0..64).map(|i| i + k).collect(),
                        n: 3,
                    };
                    c.input(0, |n, now, out| n.handle(now, &from, d, out));
                    MemberMsg::State {
                        reply: true,
                        b: None,
                        m: u,
                    }
                }
                1 => MemberMsg::Ack {
                    q: ((s / 10 + k) % 50 + 1) as u32,
                    u,
                },
                _ => MemberMsg::Gossip { u },
            };
            c.input(0, |n, now, out| n.handle(now, &from, m, out));
        }
        // She asks m0 to probe a member she makes up for her, reads the
        // number of m0's ping to it, and acks with junk claims about it:
        // an answer to a ping m0 sent, but not to one of its own probes.
        let ghost = NodeId::new(format!("relay-ghost{k}"));
        let about = |g: &NodeId| Update {
            id: g.clone(),
            inc: Incarnation::new(Epoch(1), 0),
            status: Status::Alive,
            meta: Some(Arc::new(Meta {
                key: Some(Bytes([k as u8; 32])),
                ..Meta::default()
            })),
            from: None,
            sig: junk,
        };
        c.input(0, |n, now, out| {
            let ask = MemberMsg::PingReq {
                q: 1,
                t: ghost.clone(),
                u: vec![],
            };
            n.handle(now, &mallory, ask, out);
            let seq = out.iter().find_map(|(to, m)| match m {
                MemberMsg::Ping { q, .. } if *to == ghost => Some(*q),
                _ => None,
            });
            if let Some(q) = seq {
                relayed += 1;
                let ack = MemberMsg::Ack {
                    q,
                    u: vec![about(&ghost), about(&ghost)],
                };
                n.handle(now, &mallory, ack, out);
            }
        });
        c.run_for(Duration::from_millis(10));
    }
    assert!(relayed > 900, "m0 relayed her pings: {relayed}");
    let after = c.node(0).unwrap().stats();
    let checks = after.checks - before.checks;
    // The budget's 200 a second over 10 s and its burst, plus the acks to
    // m0's own probes (two claims each at most).
    assert!(checks <= 200 * 10 + 200 + 200, "{checks} checks");
    assert!(after.unchecked - before.unchecked > 900_000);
    assert_eq!(
        c.node(0)
            .unwrap()
            .status_of(&m1)
            .map(|(i, s)| (i.n > inc.n, s)),
        Some((true, Status::Alive)),
        "m1's refutation was taken"
    );
    assert_eq!(c.deaths_of(1), 0);
    assert!(
        c.node(0)
            .unwrap()
            .members()
            .all(|(id, ..)| !id.as_str().starts_with("ghost"))
    );
}

#[test]
fn an_accusation_past_what_a_member_signed_sends_the_believer_to_probe_it() {
    // m0 holds m1 at n; the others may have seen m1 refute at n + 1 and
    // now accuse it there, truly (m1 crashed). m0 cannot take that claim
    // (it is past what m1 signed, as far as m0 knows), so it asks m1
    // itself, unless it hears from m1 directly (then m1 lives, and the
    // claim is a flood's).
    let (m0, m1, m2) = (NodeId::new("m0"), NodeId::new("m1"), NodeId::new("m2"));
    let mut s = boot(&SwimConfig::default(), &m0, 1, 7);
    s.set_identity([1; 32]);
    let k1 = ed25519_dalek::SigningKey::from_bytes(&[2; 32]);
    let mut alive = Update {
        id: m1.clone(),
        inc: Incarnation::new(Epoch(1), 3),
        status: Status::Alive,
        meta: Some(Arc::new(Meta {
            key: Some(Bytes(k1.verifying_key().to_bytes())),
            ..Meta::default()
        })),
        from: None,
        sig: None,
    };
    {
        use ed25519_dalek::Signer;
        alive.sig = Some(Bytes(k1.sign(&alive.signed_bytes()).to_bytes()));
    }
    let mut out = Outbox::default();
    let t0 = Instant::from_millis(1000);
    for _ in 0..2 {
        let u = vec![alive.clone()];
        s.handle(t0, &m1, MemberMsg::Gossip { u }, &mut out);
    }
    assert_eq!(s.status_of(&m1), Some((alive.inc, Status::Alive)));
    let accuse = |s: &mut Swim, at: Instant| {
        let dead = Update {
            id: m1.clone(),
            inc: Incarnation::new(Epoch(1), 4),
            status: Status::Dead,
            meta: None,
            from: Some(m2.clone()),
            sig: None,
        };
        let mut out = Outbox::default();
        s.handle(at, &m2, MemberMsg::Gossip { u: vec![dead] }, &mut out);
        out.iter()
            .any(|(to, m)| *to == m1 && matches!(m, MemberMsg::Ping { t, .. } if *t == m1))
    };
    let forged = s.stats().forged;
    assert!(
        !accuse(&mut s, t0 + Duration::from_millis(500)),
        "heard lately: no probe"
    );
    assert!(
        accuse(&mut s, t0 + secs(5)),
        "silent for a while: probed at once"
    );
    assert_eq!(s.stats().forged - forged, 2, "both claims refused");
    assert_eq!(s.status_of(&m1), Some((alive.inc, Status::Alive)));
}

#[test]
fn a_member_back_with_a_new_key_buries_its_old_life_and_is_taken_once_that_is_forgotten() {
    // m3's data dir is wiped: it comes back at once, at the same name, in
    // a new life with a new key. The others hold its old life alive under
    // the old key (it was back before a probe failed), so they refuse the
    // new life's claims, and show it what they hold; m3 declares that life
    // dead (the old key's holder would refute; it is gone). A new key is
    // taken only for a member forgotten: once the old life's record is
    // collected (`dead_retention`), the new life is taken.
    let cfg = SwimConfig {
        dead_retention: secs(20),
        ..SwimConfig::default()
    };
    let mut c = Cluster::signing(4, cfg);
    c.run_for(secs(3));
    let m3 = c.names[3].clone();
    let (old, _) = c.node(0).unwrap().status_of(&m3).unwrap();
    c.crash(3);
    c.epochs[3] += 1;
    let mut s = boot(&c.cfg, &m3, c.epochs[3], 99);
    s.set_identity([42; 32]);
    let new_key = s.meta().key;
    s.set_tags(c.now(), [("v".into(), "2".into())].into())
        .unwrap();
    c.net.start(3, s);
    let to = [c.names[0].clone()];
    c.input(3, |n, now, out| n.join(now, &to, out));
    c.run_for(secs(5));
    assert!(c.node(3).unwrap().stats().buried > 0);
    for i in 0..3 {
        let (inc, status) = c.node(i).unwrap().status_of(&m3).unwrap();
        assert_eq!(
            (inc, status),
            (old, Status::Dead),
            "m{i}: the old life, dead"
        );
    }
    c.run_for(secs(30));
    for i in 0..3 {
        let n = c.node(i).unwrap();
        let (inc, status) = n.status_of(&m3).unwrap();
        assert!(
            inc.epoch > old.epoch && status == Status::Alive,
            "m{i}: {inc:?} {status:?}"
        );
        let meta = n.meta_of(&m3).unwrap();
        assert_eq!(meta.key, new_key, "m{i} took the new key");
        assert_eq!(meta.tags.get("v").map(|v| &**v), Some("2"));
    }
}

#[test]
fn a_key_holder_cannot_take_a_live_members_name_by_claiming_it_dead_and_born_again() {
    // Mallory claims m1 dead at the incarnation everyone holds (any member
    // may: m1 refutes), and in the same breath alive in a far later life
    // under her key, signed with it. The new life is refused everywhere;
    // m1 refutes its death and stays itself.
    let mut c = Cluster::signing(4, SwimConfig::default());
    c.run_for(secs(3));
    let m1 = c.names[1].clone();
    let key = c.node(1).unwrap().meta().key;
    let (inc, _) = c.node(0).unwrap().status_of(&m1).unwrap();
    let mallory = NodeId::new("mallory");
    let k = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let mut born = Update {
        id: m1.clone(),
        inc: Incarnation::new(Epoch(u64::MAX), 0),
        status: Status::Alive,
        meta: Some(Arc::new(Meta {
            key: Some(Bytes(k.verifying_key().to_bytes())),
            ..Meta::default()
        })),
        from: None,
        sig: None,
    };
    {
        use ed25519_dalek::Signer;
        born.sig = Some(Bytes(k.sign(&born.signed_bytes()).to_bytes()));
    }
    let dead = Update {
        id: m1.clone(),
        inc,
        status: Status::Dead,
        meta: None,
        from: Some(mallory.clone()),
        sig: None,
    };
    for i in [0, 2, 3] {
        let u = vec![dead.clone(), born.clone()];
        c.input(i, |n, now, out| {
            n.handle(now, &mallory, MemberMsg::Gossip { u }, out)
        });
    }
    c.run_for(secs(5));
    for i in [0, 2, 3] {
        let n = c.node(i).unwrap();
        let (now_inc, status) = n.status_of(&m1).unwrap();
        assert_eq!(
            (now_inc.epoch, status),
            (inc.epoch, Status::Alive),
            "m{i}: m1 refuted and is itself"
        );
        assert_eq!(n.meta_of(&m1).unwrap().key, key, "m{i}");
    }
}

fn arbitrary_update() -> impl Strategy<Value = Update> {
    let id = prop_oneof![Just("me"), Just("a"), Just("b"), Just("zz")].prop_map(NodeId::new);
    let status = prop_oneof![
        Just(Status::Alive),
        Just(Status::Suspect),
        Just(Status::Dead),
        Just(Status::Left)
    ];
    (
        id.clone(),
        any::<u64>(),
        any::<u32>(),
        status,
        proptest::option::of(id),
    )
        .prop_map(|(id, e, n, status, from)| Update {
            id,
            inc: Incarnation::new(Epoch(e % 4), n % 4),
            status,
            meta: None,
            from,
            sig: None,
        })
}

fn arbitrary_member_msg() -> impl Strategy<Value = MemberMsg> {
    let ups = || proptest::collection::vec(arbitrary_update(), 0..6);
    let id = prop_oneof![Just("me"), Just("a"), Just("zz")].prop_map(NodeId::new);
    prop_oneof![
        (any::<u32>(), id.clone(), ups()).prop_map(|(q, t, u)| MemberMsg::Ping { q, t, u }),
        (any::<u32>(), ups()).prop_map(|(q, u)| MemberMsg::Ack { q, u }),
        (any::<u32>(), id, ups()).prop_map(|(q, t, u)| MemberMsg::PingReq { q, t, u }),
        (any::<u32>(), ups()).prop_map(|(q, u)| MemberMsg::Nack { q, u }),
        ups().prop_map(|u| MemberMsg::Gossip { u }),
        ups().prop_map(|u| MemberMsg::Heartbeat { u }),
        (proptest::collection::vec(any::<u64>(), 0..70), any::<u32>())
            .prop_map(|(d, n)| MemberMsg::Digest { d, n }),
        (
            any::<bool>(),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..70)),
            ups()
        )
            .prop_map(|(reply, b, m)| MemberMsg::State { reply, b, m }),
    ]
}

proptest! {
    /// Arbitrary messages from anyone never panic the machine, and its
    /// state stays bounded by the names it was told about.
    #[test]
    fn arbitrary_member_messages_never_panic(
        msgs in proptest::collection::vec((0usize..3, arbitrary_member_msg()), 1..40),
    ) {
        let mut me = Swim::new(SwimConfig::default(), NodeId::new("me"), Epoch(2), Meta::default(), 1).unwrap();
        let from = [NodeId::new("a"), NodeId::new("b"), NodeId::new("zz")];
        let mut out = Outbox::default();
        let mut t = Instant::ZERO;
        for (f, m) in msgs {
            me.handle(t, &from[f], m, &mut out);
            t += Duration::from_millis(300);
            me.tick(t, &mut out);
            out.drain().for_each(drop);
            prop_assert!(me.members().count() <= 3);
            prop_assert!(me.incarnation().epoch == Epoch(2));
        }
    }
}
