//! Whole runs of the simulator: the scenarios its report is about, small.

use hearsay_sim::{Scenario, run};

fn quick(sc: Scenario) -> hearsay_sim::Report {
    run(&sc, &mut |_| {}).expect("a valid scenario")
}

#[test]
fn the_same_seed_replays_the_run_and_another_does_not() {
    let sc = Scenario {
        members: 40,
        duration: "90s".parse().unwrap(),
        loss: 0.02,
        duplicate: 0.01,
        crash: 3,
        restart: true,
        pause: Some("0.1:2s".parse().unwrap()),
        seed: 5,
        ..Scenario::default()
    };
    let a = quick(sc.clone());
    let b = quick(sc.clone());
    assert_eq!(a.wire_refused, 0, "every datagram decodes");
    assert!(a.datagrams_per_member_per_s > 0.0);
    assert_eq!(a.trace_hash, b.trace_hash);
    assert_eq!(a.crashes, b.crashes);
    assert_eq!(a.bytes_per_member_per_s, b.bytes_per_member_per_s);
    let c = quick(Scenario { seed: 6, ..sc });
    assert_ne!(a.trace_hash, c.trace_hash);
}

#[test]
fn crashes_are_seen_by_everyone_and_nobody_else_dies() {
    let r = quick(Scenario {
        members: 60,
        duration: "2m".parse().unwrap(),
        loss: 0.01,
        crash: 5,
        ..Scenario::default()
    });
    assert_eq!(r.crashes.count, 5);
    assert_eq!(r.crashes.undetected, 0);
    assert_eq!(r.false_positives, 0);
    let all = r.crashes.seen_by_all_s;
    assert!(all.max.unwrap() <= 10.0, "{all:?}");
    assert!(r.crashes.seen_by_first_s.median <= all.median);
    assert_eq!(r.live_at_end, 55);
}

#[test]
fn crashed_members_that_restart_rejoin() {
    let r = quick(Scenario {
        members: 30,
        duration: "2m".parse().unwrap(),
        crash: 4,
        restart: true,
        ..Scenario::default()
    });
    assert_eq!(r.live_at_end, 30);
    assert_eq!(r.crashes.undetected, 0);
    assert_eq!(r.false_positives, 0);
}

#[test]
fn a_partition_heals_by_itself() {
    let r = quick(Scenario {
        members: 40,
        duration: "90s".parse().unwrap(),
        partition: Some("0.5:20s:30s".parse().unwrap()),
        ..Scenario::default()
    });
    let t = r.heal.views_agree_s.expect("views agreed after the heal");
    assert!(t <= 10.0, "views agreed {t} s after the heal");
    assert_eq!(
        r.false_positives, 0,
        "deaths across the cut are not false positives"
    );
    let none = quick(Scenario {
        members: 10,
        ..Scenario::default()
    });
    assert_eq!(none.heal.views_agree_s, None);
}

#[test]
fn the_phi_detector_and_zones_work_in_the_simulator() {
    let r = quick(Scenario {
        members: 40,
        duration: "90s".parse().unwrap(),
        crash: 3,
        detector: "phi".parse().unwrap(),
        zones: 3,
        ..Scenario::default()
    });
    assert_eq!(r.crashes.undetected, 0);
    assert_eq!(r.false_positives, 0);
}

#[test]
fn bad_scenarios_are_refused() {
    for sc in [
        Scenario {
            members: 1,
            ..Scenario::default()
        },
        Scenario {
            loss: 1.0,
            ..Scenario::default()
        },
        Scenario {
            crash: 100,
            ..Scenario::default()
        },
        Scenario {
            zones: 0,
            ..Scenario::default()
        },
    ] {
        assert!(run(&sc, &mut |_| {}).is_err(), "{sc:?}");
    }
}

#[test]
fn every_strategy_reaches_every_live_member_through_crashes_and_restarts() {
    use hearsay_core::dissemination::{Preset, StrategyKind};
    // Every strategy with the latency preset; the efficient preset's
    // adaptive batching with the default strategy (tree).
    let runs = StrategyKind::ALL
        .map(|s| (s, Preset::Latency))
        .into_iter()
        .chain([(StrategyKind::Tree, Preset::Efficient)]);
    for (s, preset) in runs {
        let sc = Scenario {
            members: 30,
            duration: "100s".parse().unwrap(),
            latency: "20ms".parse().unwrap(),
            loss: 0.01,
            crash: 4,
            restart: true,
            broadcast_rate: 5.0,
            strategy: s,
            broadcast_preset: preset,
            seed: 3,
            ..Scenario::default()
        };
        let r = quick(sc.clone());
        let what = format!("{s} ({preset})");
        assert!(r.broadcast.payloads > 300, "{what}: {:?}", r.broadcast);
        assert_eq!(r.broadcast.undelivered, 0, "{what}: {:?}", r.broadcast);
        assert_eq!(r.crashes.undetected, 0, "{what}");
        assert_eq!(r.false_positives, 0, "{what}");
        assert_eq!(r.live_at_end, 30, "{what}");
        assert!(r.strategy.starts_with(&s.to_string()), "{}", r.strategy);
        if s == StrategyKind::Tree {
            assert_eq!(quick(sc).trace_hash, r.trace_hash, "{what} replays");
        }
    }
}

#[test]
fn paused_members_survive_with_lifeguard_when_the_prober_stalls_too() {
    // A fifth of the members pause for 3 s: some pause while they suspect
    // another paused member. Back, such a member reads confirmations of the
    // suspicion and, behind them, the suspect's refutation; the
    // confirmations must not convict before the refutation is read (the
    // grace a stall earns holds against them). Seeds 2 and 6 killed 3 and 1
    // live members before that rule.
    for seed in [2, 6] {
        let r = quick(Scenario {
            members: 60,
            duration: "3m".parse().unwrap(),
            loss: 0.01,
            pause: Some("0.2:3s".parse().unwrap()),
            seed,
            ..Scenario::default()
        });
        assert_eq!(r.false_positives, 0, "seed {seed}");
    }
}

#[test]
fn fifty_members_joining_at_once_settle_without_a_storm() {
    // Zero latency: an exchange without backoff (a refusal asked again at
    // once) would run away here. The seed answers each joiner once; every
    // other member's share is a few gossip rounds, syncs and introductions.
    let r = quick(Scenario {
        members: 50,
        duration: "30s".parse().unwrap(),
        latency: "0ms".parse().unwrap(),
        cold_start: true,
        ..Scenario::default()
    });
    let j = r.join.expect("a cold start reports its join");
    let agreed = j.views_agree_s.expect("views agree");
    assert!(agreed <= 1.0, "views agreed after {agreed} s");
    assert!(j.seed_msgs.unwrap() <= 49 + 20, "{j:?}");
    assert!(j.msgs_per_joiner_max.unwrap() <= 30, "{j:?}");
    assert!(j.msgs_per_joiner_median.unwrap() <= 22, "{j:?}");
    // Of them, the messages about the view (not probes), the issue's
    // target of 20 each: one introduction per two gossip rounds, not one
    // per stranger (which made it 32); a state exchange answered only with
    // what the asker lacks, and no quick sync right after an introduction
    // (which made it 20-23).
    assert!(j.view_msgs_per_joiner_max.unwrap() <= 20, "{j:?}");
    assert!(j.view_msgs_per_joiner_median.unwrap() <= 17, "{j:?}");
    // And then it quiets down to probing: about two probes and two acks a
    // second, plus a sync now and then.
    assert!(
        r.membership_msgs_per_member_per_s < 6.0,
        "{} membership messages per member per second",
        r.membership_msgs_per_member_per_s
    );
    assert_eq!(r.live_at_end, 50);
}

/// The agent's chaos soak in the simulator: 5 % loss, crashes and
/// restarts, pauses, a partition, payloads and map writes. Seed 15 found
/// a restarted member whose join was lost and that nobody learned of for
/// 35 s (it answered pings to its old life with nothing); seed 6 has a
/// payload whose origin crashed before anyone else had it, which is
/// counted apart, not owed. Seed 15 again with signed claims, as agents
/// with data dirs make them.
#[test]
fn the_chaos_soak_under_loss_loses_nothing_it_could_keep() {
    for (seed, sign) in [(15, false), (6, false), (15, true)] {
        let r = quick(Scenario {
            members: 20,
            duration: "4m".parse().unwrap(),
            latency: "20ms".parse().unwrap(),
            loss: 0.05,
            crash: 8,
            restart: true,
            pause: Some("0.2:3s".parse().unwrap()),
            partition: Some("0.5:60s:30s".parse().unwrap()),
            broadcast_rate: 5.0,
            kv_rate: 20.0,
            sign,
            seed,
            ..Scenario::default()
        });
        let b = &r.broadcast;
        assert_eq!(b.undelivered, 0, "seed {seed}: {b:?}");
        assert_eq!(r.false_positives, 0, "seed {seed}");
        let kv = r.kv.as_ref().expect("a map");
        assert_eq!(kv.members_behind, 0, "seed {seed}: {kv:?}");
        if seed == 6 {
            assert!(b.lost_with_origin > 0, "{b:?}");
        }
    }
}
