//! What a run measured, as one JSON object (key names are a contract for
//! scripts) and as a table for people.

use serde::Serialize;
use std::fmt::Write;

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Spread {
    pub median: Option<f64>,
    /// Nearest rank: the tail most runs see, where the max is one event.
    pub p95: Option<f64>,
    pub max: Option<f64>,
}

impl Spread {
    /// Median (lower middle), 95th percentile and maximum of some samples,
    /// in seconds.
    pub fn of(samples: &mut [f64]) -> Spread {
        if samples.is_empty() {
            return Spread::default();
        }
        samples.sort_by(f64::total_cmp);
        Spread {
            median: Some(samples[(samples.len() - 1) / 2]),
            p95: Some(samples[(samples.len() * 95).div_ceil(100) - 1]),
            max: samples.last().copied(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Crashes {
    pub count: usize,
    /// Crashes some live member never saw before the run ended.
    pub undetected: usize,
    pub seen_by_first_s: Spread,
    pub seen_by_all_s: Spread,
    /// Every detected crash's time until all saw it, in crash order (the
    /// tail a spread hides: how many took longer than a bound).
    pub seen_by_all_each_s: Vec<f64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Broadcast {
    pub payloads: usize,
    /// From broadcast until the last live member delivered it.
    pub reached_all_s: Spread,
    /// Payload deliveries missing at the end: (payload, live member that
    /// should have it) pairs.
    pub undelivered: usize,
    /// Payloads whose origin crashed before any other member had them (a
    /// restart starts empty, so they are gone; the agent's data dir sends
    /// them again): not counted as undelivered.
    pub lost_with_origin: usize,
    /// Dissemination messages (not membership) per member per payload,
    /// after the first tenth of the run (the tree forming).
    pub msgs_per_member_per_payload: Option<f64>,
}

/// The replicated map (`--kv-rate`): the agent's `kv`, run by every
/// member beside its node.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct KvReport {
    pub writes: usize,
    /// Keys written, of the keys the writes chose from.
    pub keys: usize,
    /// Live members whose map at the end is not the one all the writes
    /// make together (each key holding its latest write).
    pub members_behind: usize,
    /// Keys whose latest write is missing at some live member.
    pub keys_behind: usize,
    /// From the end of the writes (60 % of the run) until every live
    /// member first held every key's latest write (checked every 0.5 s);
    /// null if that never happened.
    pub converged_s: Option<f64>,
    /// The map's messages and bytes per member per simulated second (its
    /// datagrams as the agent's codec writes them).
    pub msgs_per_member_per_s: f64,
    pub bytes_per_member_per_s: f64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SwimTotals {
    pub probes: u64,
    pub probe_failures: u64,
    pub suspicions: u64,
    pub refutations: u64,
    pub deaths_declared: u64,
    pub full_syncs: u64,
    pub reconnects: u64,
    pub stalls: u64,
    pub rumours_dropped: u64,
}

/// The dissemination layer's counters, summed over the members alive at
/// the end.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CastTotals {
    /// Payloads delivered (learned), and copies that arrived again.
    pub delivered: u64,
    pub duplicates: u64,
    /// Numbered link batches sent, bare acks (direct or through the hub),
    /// batches sent again.
    pub data_sent: u64,
    pub acks_sent: u64,
    pub retransmits: u64,
    /// Plumtree announcements and grafts.
    pub announcements: u64,
    pub grafts_sent: u64,
    /// Peers seen back in a new life (their links restarted).
    pub restarts_seen: u64,
    /// Payloads forgotten after the retention window.
    pub forgotten: u64,
    /// Deliveries or events the application did not take, dropped.
    pub dropped: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Heal {
    /// From the heal until every live member lists every other live member
    /// as alive; null without a partition, or if that never happened.
    pub views_agree_s: Option<f64>,
}

/// A cold start (`--cold-start`): everyone joined at once.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Join {
    /// From the start until every member lists every other as alive.
    pub views_agree_s: Option<f64>,
    /// Membership messages sent until then by the member everyone joined
    /// through (it answers each joiner), and by each of the others: the
    /// most and the median. The join exchange must settle, not storm.
    pub seed_msgs: Option<u64>,
    pub msgs_per_joiner_max: Option<u64>,
    pub msgs_per_joiner_median: Option<u64>,
    /// Of those, the messages about the view (joins, syncs, gossip; not
    /// the failure detector's probes and acks).
    pub seed_view_msgs: Option<u64>,
    pub view_msgs_per_joiner_max: Option<u64>,
    pub view_msgs_per_joiner_median: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Report {
    pub members: usize,
    pub seed: u64,
    pub preset: String,
    pub lifeguard: bool,
    pub detector: String,
    /// Whom members probe: ring or shuffled.
    pub probes: String,
    /// How payloads spread: a dissemination strategy and its preset's
    /// timing, e.g. `plumtree (latency)`.
    pub strategy: String,
    pub duration_s: f64,
    /// Everything the run was asked for (latency, loss, faults, seed...).
    pub scenario: crate::Scenario,
    pub crashes: Crashes,
    /// Live members declared dead by someone that could reach them (each
    /// member life counted once).
    pub false_positives: usize,
    pub broadcast: Broadcast,
    /// Null unless the run wrote to the replicated map.
    pub kv: Option<KvReport>,
    pub heal: Heal,
    /// Null unless the run was a cold start.
    pub join: Option<Join>,
    /// Membership and dissemination bytes as the agent's codec writes them
    /// (clear text: sealing adds 40 bytes per datagram), per member per
    /// simulated second.
    pub bytes_per_member_per_s: f64,
    pub msgs_per_member_per_s: f64,
    /// Membership (SWIM) messages alone.
    pub membership_msgs_per_member_per_s: f64,
    /// Datagrams (messages to one member packed together, as the agent
    /// does after each input).
    pub datagrams_per_member_per_s: f64,
    /// Datagrams the codec refused on arrival (a broken wire if not 0).
    pub wire_refused: u64,
    /// Members alive at the end.
    pub live_at_end: usize,
    /// SWIM counters summed over the members alive at the end.
    pub swim: SwimTotals,
    /// Broadcast counters summed over the members alive at the end.
    pub cast: CastTotals,
    /// A hash of every event in order: equal seeds give equal hashes.
    pub trace_hash: String,
    pub wall_s: f64,
}

fn s(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{v:.2} s"))
}

impl Report {
    pub fn table(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "hearsay sim: {} members, {:.0} s simulated, preset {}, lifeguard {}, detector {}, probes {}, broadcast {}, seed {}",
            self.members,
            self.duration_s,
            self.preset,
            if self.lifeguard { "on" } else { "off" },
            self.detector,
            self.probes,
            self.strategy,
            self.seed
        );
        let sc = &self.scenario;
        let mut faults = vec![
            format!("latency {} (exponential)", sc.latency),
            format!("loss {}%", sc.loss * 100.0),
        ];
        if sc.duplicate > 0.0 {
            faults.push(format!("duplicates {}%", sc.duplicate * 100.0));
        }
        if sc.zones > 1 {
            faults.push(format!(
                "{} zones ({}x latency across)",
                sc.zones, sc.zone_latency
            ));
        }
        faults.push(format!(
            "{} crashes{}",
            sc.crash,
            if sc.restart { " (restarted)" } else { "" }
        ));
        if let Some(p) = sc.pause {
            faults.push(format!("{}% paused for {}", p.fraction * 100.0, p.length));
        }
        if let Some(p) = sc.partition {
            faults.push(format!(
                "{}% cut off at {} for {}",
                p.fraction * 100.0,
                p.at,
                p.length
            ));
        }
        if sc.sign {
            faults.push("signed claims".into());
        }
        if sc.broadcast_rate > 0.0 {
            faults.push(format!("{} payloads/s", sc.broadcast_rate));
        }
        if sc.kv_rate > 0.0 {
            faults.push(format!(
                "{} map writes/s to {} keys",
                sc.kv_rate, sc.kv_keys
            ));
        }
        if sc.cold_start {
            faults.push("cold start".into());
        }
        let _ = writeln!(t, "  scenario         {}", faults.join(", "));
        let c = &self.crashes;
        let _ = writeln!(
            t,
            "  crashes          {} ({} undetected)",
            c.count, c.undetected
        );
        let _ = writeln!(
            t,
            "  seen by first    median {}, p95 {}, max {}",
            s(c.seen_by_first_s.median),
            s(c.seen_by_first_s.p95),
            s(c.seen_by_first_s.max)
        );
        let _ = writeln!(
            t,
            "  seen by all      median {}, p95 {}, max {}",
            s(c.seen_by_all_s.median),
            s(c.seen_by_all_s.p95),
            s(c.seen_by_all_s.max)
        );
        let _ = writeln!(t, "  false positives  {}", self.false_positives);
        let b = &self.broadcast;
        if b.payloads > 0 {
            let _ = writeln!(
                t,
                "  broadcast        {} payloads, reached all median {}, p95 {}, max {}, {} undelivered{}, {} msgs/member/payload",
                b.payloads,
                s(b.reached_all_s.median),
                s(b.reached_all_s.p95),
                s(b.reached_all_s.max),
                b.undelivered,
                if b.lost_with_origin > 0 {
                    format!(
                        " ({} lost with their origin: it crashed before another member had them)",
                        b.lost_with_origin
                    )
                } else {
                    String::new()
                },
                b.msgs_per_member_per_payload
                    .map_or("-".into(), |x| format!("{x:.2}"))
            );
        }
        if let Some(k) = &self.kv {
            let _ = writeln!(
                t,
                "  kv map           {} writes to {} keys; all live members hold them {} after the last; at the end {} live members behind, {} keys behind; {:.0} bytes and {:.1} messages per member per second",
                k.writes,
                k.keys,
                s(k.converged_s),
                k.members_behind,
                k.keys_behind,
                k.bytes_per_member_per_s,
                k.msgs_per_member_per_s
            );
        }
        if let Some(j) = &self.join {
            let n = |x: Option<u64>| x.map_or("-".into(), |x| x.to_string());
            let _ = writeln!(
                t,
                "  cold start       views agree {}; membership messages until then: seed {}, each joiner max {}, median {}",
                s(j.views_agree_s),
                n(j.seed_msgs),
                n(j.msgs_per_joiner_max),
                n(j.msgs_per_joiner_median),
            );
            let _ = writeln!(
                t,
                "                   of them view messages (not probes): seed {}, each joiner max {}, median {}",
                n(j.seed_view_msgs),
                n(j.view_msgs_per_joiner_max),
                n(j.view_msgs_per_joiner_median),
            );
        }
        if let Some(h) = self.heal.views_agree_s {
            let _ = writeln!(t, "  heal             views agree {h:.2} s after the heal");
        } else if self.heal != Heal::default() || self.duration_s == 0.0 {
            let _ = writeln!(t, "  heal             -");
        }
        let _ = writeln!(
            t,
            "  traffic          {:.0} bytes and {:.1} messages per member per second ({:.1} membership)",
            self.bytes_per_member_per_s,
            self.msgs_per_member_per_s,
            self.membership_msgs_per_member_per_s
        );
        let _ = writeln!(
            t,
            "  live at end      {}   trace {}   wall {:.1} s",
            self.live_at_end, self.trace_hash, self.wall_s
        );
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_keys_are_the_documented_ones() {
        let r = Report::default();
        let v = serde_json::to_value(&r).unwrap();
        for path in [
            "/members",
            "/seed",
            "/crashes/count",
            "/crashes/undetected",
            "/crashes/seen_by_first_s/median",
            "/crashes/seen_by_first_s/max",
            "/crashes/seen_by_all_s/median",
            "/crashes/seen_by_all_s/p95",
            "/crashes/seen_by_all_s/max",
            "/false_positives",
            "/broadcast/payloads",
            "/broadcast/reached_all_s/median",
            "/broadcast/reached_all_s/max",
            "/broadcast/undelivered",
            "/broadcast/lost_with_origin",
            "/broadcast/msgs_per_member_per_payload",
            "/heal/views_agree_s",
            "/bytes_per_member_per_s",
            "/wall_s",
        ] {
            assert!(v.pointer(path).is_some(), "missing {path}");
        }
        assert!(v.pointer("/heal/views_agree_s").unwrap().is_null());
        let mut xs = vec![3.0, 1.0, 2.0, 10.0];
        assert_eq!(
            Spread::of(&mut xs),
            Spread {
                median: Some(2.0),
                p95: Some(10.0),
                max: Some(10.0)
            }
        );
        let mut xs: Vec<f64> = (1..=40).map(f64::from).collect();
        let s = Spread::of(&mut xs);
        assert_eq!(
            (s.median, s.p95, s.max),
            (Some(20.0), Some(38.0), Some(40.0))
        );
    }
}
