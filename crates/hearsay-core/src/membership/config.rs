//! SWIM knobs, named presets and validation.
//!
//! | knob | `lan` | `wan` | `local` | memberlist LAN / WAN / local |
//! |---|---:|---:|---:|---|
//! | probe interval | 500 ms | 3 s | 500 ms | 1 s / 5 s / 1 s |
//! | probe timeout (indirect: twice more) | 250 ms | 1.5 s | 100 ms | 500 ms / 3 s / 200 ms |
//! | indirect probes | 3 | 3 | 1 | 3 / 3 / 1 |
//! | probe target | next on the ring | next on the ring | next on the ring | shuffled round-robin |
//! | suspicion floor | 1.83 x log10(N) x interval, >= 2.6 s | 2 x log10(N) x interval | 1 x log10(N) x interval, >= 2 s | 4 / 6 / 3 x log10(N) x interval |
//! | suspicion start (Lifeguard) | 2 x floor | 3 x floor | 2 x floor | 6 x floor |
//! | confirmations to reach the floor | 6 | 4 | 2 | mult - 2 |
//! | retransmissions | 4 x log10(N+1) | 4 x log10(N+1) | 2 x log10(N+1) | 4 / 4 / 2 x log10(N+1) |
//! | gossip | 4 peers / 100 ms | 4 / 300 ms | 3 / 100 ms | 3 / 200 ms, 4 / 500 ms, 3 / 100 ms |
//! | push-pull | 15 s, digest first | 30 s | 5 s | 30 s / 60 s / 15 s, full state |
//! | reconnect to dead | 1 s | 5 s | 1 s | none (Serf: 30 s) |
//! | dead kept | 10 min | 30 min | 2 min | 30 s (Serf: 24 h) |
//!
//! hearsay probes twice as often as memberlist and suspects for less, so a
//! crash is seen everywhere in about 4 s instead of 15 or more at a
//! thousand members. Probing the ring successor and seeking confirmations
//! (see `Swim`) make that time nearly fixed, floor + 0.75 to 1.25 s, which
//! is what keeps it from costing false positives: a pause shorter than the
//! earliest conviction is survived, and none comes early. Push-pull exchanges a digest first, so a settled
//! cluster's syncs cost a few bytes; a dead member is pinged once in a
//! while, so a partition heals by itself (memberlist alone never rejoins).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// How failures are detected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detector {
    /// SWIM's probes: direct, then indirect through `indirect` members.
    Swim,
    /// Heartbeats to a few monitors, each judging by phi accrual (the
    /// arrival history of heartbeats) instead of a fixed timeout.
    Phi,
}

/// Whom a member probes each protocol period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeOrder {
    /// The next live member on the ring of name hashes: every member is
    /// probed once a period, so a crash is noticed within a period plus a
    /// probe. Probes to other zones stay random.
    Ring,
    /// SWIM's shuffled round-robin (§4.3): each member once per pass, but
    /// the wait for a dead member's first probe is exponential.
    Shuffled,
}

/// Named starting points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwimPreset {
    Lan,
    Wan,
    Local,
}

/// A membership setting refused; nothing was built with it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SwimConfigError {
    /// A name no variant of the knob has.
    UnknownName {
        knob: &'static str,
        got: String,
        /// The names accepted ("a, b or c").
        expected: String,
    },
    /// A duration that must be positive is zero.
    NotPositive(&'static str),
    /// A value out of its range, and why.
    OutOfRange(String),
}

impl fmt::Display for SwimConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SwimConfigError::UnknownName {
                knob,
                got,
                expected,
            } => write!(f, "unknown {knob} {got:?} (expected {expected})"),
            SwimConfigError::NotPositive(knob) => write!(f, "{knob} must be positive"),
            SwimConfigError::OutOfRange(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for SwimConfigError {}

/// `FromStr` and `Display` by name for a knob's variants; an unknown name
/// is refused with the names accepted.
macro_rules! by_name {
    ($t:ident, $what:literal, $($v:ident => $name:literal),+ $(,)?) => {
        impl FromStr for $t {
            type Err = SwimConfigError;
            fn from_str(s: &str) -> Result<Self, SwimConfigError> {
                match s {
                    $($name => Ok($t::$v),)+
                    _ => Err(SwimConfigError::UnknownName {
                        knob: $what,
                        got: s.to_string(),
                        expected: or_list(&[$($name),+]),
                    }),
                }
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(match self {
                    $($t::$v => $name,)+
                })
            }
        }
    };
}

/// "a or b", "a, b or c".
fn or_list(names: &[&str]) -> String {
    match names.split_last() {
        Some((last, [])) => (*last).to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

by_name!(Detector, "detector", Swim => "swim", Phi => "phi");
by_name!(ProbeOrder, "probe order", Ring => "ring", Shuffled => "shuffled");
by_name!(SwimPreset, "preset", Lan => "lan", Wan => "wan", Local => "local");

#[derive(Clone, Debug, PartialEq)]
pub struct SwimConfig {
    pub detector: Detector,
    /// Time between two probes (SWIM's protocol period).
    pub probe_interval: Duration,
    /// How long a direct probe waits for its ack before going indirect;
    /// indirect probes get twice as long again.
    pub probe_timeout: Duration,
    /// Members asked to probe indirectly (SWIM's k).
    pub indirect: usize,
    /// Whom to probe each period (the ring bounds the time to notice a
    /// crash; SWIM's shuffled order does not).
    pub probe_order: ProbeOrder,
    /// Suspicion timeout floor: this x log10(N) x probe interval, and at
    /// least `suspicion_floor`.
    pub suspicion_mult: f64,
    pub suspicion_floor: Duration,
    /// Lifeguard: a suspicion starts at this x the floor, and shrinks to the
    /// floor as independent confirmations arrive.
    pub suspicion_max_mult: f64,
    /// Lifeguard: confirmations after which the timeout is the floor.
    pub suspicion_confirmations: u32,
    /// Lifeguard on: local health multiplier with nacks, dynamic suspicion
    /// timeouts, the buddy system (a suspect is told at once, and its
    /// refutation goes straight to its accusers). Off: plain SWIM with a
    /// fixed suspicion timeout (the floor).
    pub lifeguard: bool,
    /// Lifeguard: the local health multiplier's ceiling (probe interval and
    /// timeout are scaled by up to this).
    pub awareness_max: u32,
    /// A rumour is sent this x log10(N+1) times by each member.
    pub retransmit_mult: u32,
    /// Rumours are gossiped to this many members ...
    pub gossip_nodes: usize,
    /// ... this often, while there are rumours to send.
    pub gossip_interval: Duration,
    /// Dead members still get gossip this long (they may be alive behind a
    /// partition and learn that they must refute).
    pub gossip_to_dead: Duration,
    /// State sync with a random member (digest first, full state on a
    /// mismatch).
    pub push_pull_interval: Duration,
    /// A dead member is pinged this often (one at a time), so a partition
    /// heals by itself.
    pub reconnect_interval: Duration,
    /// Dead members are kept (and reconnected to) this long, then dropped.
    pub dead_retention: Duration,
    /// Members that left are kept this long (so the leave spreads), then
    /// dropped.
    pub left_retention: Duration,
    /// Dropped members' last incarnation is remembered this long, so an old
    /// rumour cannot bring them back.
    pub tombstone_retention: Duration,
    /// Bytes of rumours one message carries (an estimate; the shell enforces
    /// the real packet size).
    pub max_piggyback_bytes: usize,
    /// Share of probes and gossip that go to other zones (when zones are
    /// set); the rest stays in this member's zone.
    pub cross_zone: f64,
    /// Phi detector: heartbeat interval, monitors per member, threshold.
    pub heartbeat_interval: Duration,
    pub monitors: usize,
    pub phi_threshold: f64,
    /// Phi detector: heartbeat intervals remembered per member.
    pub phi_window: usize,
    /// Pending rumours kept at most (the oldest are dropped and counted).
    pub max_rumours: usize,
    /// Members of any state the table holds at most: claims about more
    /// unknown members are refused and counted, so a broken or hostile peer
    /// cannot grow it without bound.
    pub max_members: usize,
    /// Signature checks a second a member that signs does for claims
    /// that are not in acks to its own probes (their senders each get a
    /// quarter): past it such claims are dropped unchecked and counted,
    /// so a flood of claims that need checking cannot fill its loop (one
    /// check costs tens of microseconds: 1,000 a second is a few percent
    /// of a core).
    pub checks_per_sec: u32,
}

impl Default for SwimConfig {
    fn default() -> Self {
        SwimConfig::preset(SwimPreset::Lan)
    }
}

impl SwimConfig {
    pub fn preset(p: SwimPreset) -> SwimConfig {
        let ms = Duration::from_millis;
        let lan = SwimConfig {
            detector: Detector::Swim,
            probe_interval: ms(500),
            probe_timeout: ms(250),
            indirect: 3,
            probe_order: ProbeOrder::Ring,
            suspicion_mult: 1.83,
            suspicion_floor: ms(2600),
            suspicion_max_mult: 2.0,
            suspicion_confirmations: 6,
            lifeguard: true,
            awareness_max: 8,
            retransmit_mult: 4,
            gossip_nodes: 4,
            gossip_interval: ms(100),
            gossip_to_dead: Duration::from_secs(30),
            push_pull_interval: Duration::from_secs(15),
            reconnect_interval: Duration::from_secs(1),
            dead_retention: Duration::from_secs(600),
            left_retention: Duration::from_secs(60),
            tombstone_retention: Duration::from_secs(3600),
            max_piggyback_bytes: 1200,
            cross_zone: 0.1,
            heartbeat_interval: ms(500),
            monitors: 3,
            phi_threshold: 8.0,
            phi_window: 100,
            max_rumours: 4096,
            max_members: 1 << 17,
            checks_per_sec: 1000,
        };
        match p {
            SwimPreset::Lan => lan,
            SwimPreset::Wan => SwimConfig {
                probe_interval: Duration::from_secs(3),
                probe_timeout: ms(1500),
                suspicion_mult: 2.0,
                suspicion_max_mult: 3.0,
                suspicion_confirmations: 4,
                gossip_interval: ms(300),
                gossip_to_dead: Duration::from_secs(60),
                push_pull_interval: Duration::from_secs(30),
                reconnect_interval: Duration::from_secs(5),
                dead_retention: Duration::from_secs(1800),
                heartbeat_interval: Duration::from_secs(2),
                ..lan
            },
            SwimPreset::Local => SwimConfig {
                probe_timeout: ms(100),
                indirect: 1,
                suspicion_mult: 1.0,
                suspicion_floor: Duration::from_secs(2),
                suspicion_confirmations: 2,
                retransmit_mult: 2,
                gossip_nodes: 3,
                gossip_to_dead: Duration::from_secs(15),
                push_pull_interval: Duration::from_secs(5),
                dead_retention: Duration::from_secs(120),
                left_retention: Duration::from_secs(15),
                ..lan
            },
        }
    }

    /// log10 of the cluster size, at least 1 (memberlist's node scale).
    pub fn scale(n: usize) -> f64 {
        (n.max(1) as f64).log10().max(1.0)
    }

    /// The suspicion timeout floor at `n` members.
    pub fn suspicion_min(&self, n: usize) -> Duration {
        self.probe_interval
            .mul_f64(self.suspicion_mult * Self::scale(n))
            .max(self.suspicion_floor)
    }

    /// The suspicion timeout a suspicion starts with.
    pub fn suspicion_max(&self, n: usize) -> Duration {
        if self.lifeguard {
            self.suspicion_min(n).mul_f64(self.suspicion_max_mult)
        } else {
            self.suspicion_min(n)
        }
    }

    /// How many times each member sends one rumour at `n` members.
    pub fn retransmits(&self, n: usize) -> u32 {
        let scale = ((n as f64) + 1.0).log10().ceil().max(1.0) as u32;
        self.retransmit_mult.saturating_mul(scale)
    }

    pub fn validate(&self) -> Result<(), SwimConfigError> {
        use SwimConfigError::OutOfRange;
        let positive = [
            ("probe_interval", self.probe_interval),
            ("probe_timeout", self.probe_timeout),
            ("gossip_interval", self.gossip_interval),
            ("push_pull_interval", self.push_pull_interval),
            ("reconnect_interval", self.reconnect_interval),
            ("heartbeat_interval", self.heartbeat_interval),
        ];
        for (name, d) in positive {
            if d.is_zero() {
                return Err(SwimConfigError::NotPositive(name));
            }
        }
        if self.probe_timeout * 3 > self.probe_interval * 4 {
            return Err(OutOfRange(format!(
                "a probe takes 3 x probe_timeout ({:?}); keep it within 4 probe intervals ({:?}) so probes do not pile up",
                self.probe_timeout, self.probe_interval
            )));
        }
        if !(self.suspicion_mult.is_finite() && self.suspicion_mult > 0.0) {
            return Err(OutOfRange(
                "suspicion_mult must be a positive number".into(),
            ));
        }
        if !(self.suspicion_max_mult.is_finite() && self.suspicion_max_mult >= 1.0) {
            return Err(OutOfRange("suspicion_max_mult must be at least 1".into()));
        }
        if !(0.0..=1.0).contains(&self.cross_zone) {
            return Err(OutOfRange(format!(
                "cross_zone must be in [0, 1], not {}",
                self.cross_zone
            )));
        }
        if !(self.phi_threshold.is_finite() && self.phi_threshold > 0.0) {
            return Err(OutOfRange("phi_threshold must be a positive number".into()));
        }
        if self.retransmit_mult == 0 {
            return Err(OutOfRange("retransmit_mult must be at least 1".into()));
        }
        if self.awareness_max == 0 {
            return Err(OutOfRange("awareness_max must be at least 1".into()));
        }
        if self.max_piggyback_bytes < 64 {
            return Err(OutOfRange("max_piggyback_bytes must be at least 64".into()));
        }
        if self.detector == Detector::Phi && self.monitors == 0 {
            return Err(OutOfRange(
                "the phi detector needs at least one monitor".into(),
            ));
        }
        if self.phi_window < 2 {
            return Err(OutOfRange("phi_window must be at least 2".into()));
        }
        if self.max_rumours == 0 {
            return Err(OutOfRange("max_rumours must be at least 1".into()));
        }
        if self.max_members < 2 {
            return Err(OutOfRange("max_members must be at least 2".into()));
        }
        if self.checks_per_sec < 4 {
            return Err(OutOfRange("checks_per_sec must be at least 4".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knobs_parse_by_name_and_refuse_others_with_the_names_accepted() {
        assert_eq!("phi".parse::<Detector>(), Ok(Detector::Phi));
        assert_eq!(ProbeOrder::Shuffled.to_string(), "shuffled");
        assert_eq!(
            "x".parse::<Detector>().unwrap_err().to_string(),
            "unknown detector \"x\" (expected swim or phi)"
        );
        assert_eq!(
            "x".parse::<ProbeOrder>().unwrap_err().to_string(),
            "unknown probe order \"x\" (expected ring or shuffled)"
        );
        assert_eq!(
            "x".parse::<SwimPreset>().unwrap_err(),
            SwimConfigError::UnknownName {
                knob: "preset",
                got: "x".into(),
                expected: "lan, wan or local".into()
            }
        );
    }

    #[test]
    fn presets_validate_and_scale_with_log_n() {
        for p in [SwimPreset::Lan, SwimPreset::Wan, SwimPreset::Local] {
            let c = SwimConfig::preset(p);
            c.validate().unwrap();
            assert_eq!(
                c.to_owned(),
                SwimConfig::preset(p.to_string().parse().unwrap())
            );
        }
        let c = SwimConfig::default();
        // memberlist's node scale: log10(N), at least 1, and a floor.
        assert_eq!(c.suspicion_min(5), c.suspicion_min(10));
        assert_eq!(c.suspicion_min(10), c.suspicion_floor);
        let r = c.suspicion_min(10_000).as_secs_f64() / c.suspicion_min(1000).as_secs_f64();
        assert!((r - 4.0 / 3.0).abs() < 1e-9, "log10 scale: {r}");
        assert_eq!(c.retransmits(1000), 4 * 4);
        assert!(c.suspicion_max(1000) > c.suspicion_min(1000));
        let off = SwimConfig {
            lifeguard: false,
            ..c.clone()
        };
        assert_eq!(off.suspicion_max(1000), off.suspicion_min(1000));
        let bad = SwimConfig {
            probe_timeout: c.probe_interval * 2,
            ..c.clone()
        };
        assert!(bad.validate().is_err());
        let bad = SwimConfig {
            cross_zone: 1.5,
            ..c
        };
        assert!(bad.validate().is_err());
    }
}
