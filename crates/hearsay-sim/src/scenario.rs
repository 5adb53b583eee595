//! What to simulate: the cluster, the network and the faults, from flags or
//! a TOML file (the same keys), validated before anything runs.

use hearsay_core::dissemination::{Preset, StrategyKind};
use hearsay_core::membership::{Detector, ProbeOrder, SwimPreset};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A duration written like `10m`, `60s`, `3s`, `250ms`, `1h`: a bare number
/// other than 0 is refused, on the command line and in scenario files alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub Duration);

impl FromStr for Dur {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let (num, unit) = t
            .find(|c: char| c.is_ascii_alphabetic())
            .map_or((t, ""), |i| t.split_at(i));
        let x: f64 = num
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not a duration (try 10m, 60s, 250ms)"))?;
        let scale = match unit.trim() {
            // A bare number is refused: `hearsay test --latency 50` is in
            // milliseconds (Maelstrom's flag), `--duration 600` reads as
            // seconds; no reading fits both.
            "" if x == 0.0 => 1.0,
            "" => {
                return Err(format!(
                    "{s:?} has no unit: write {n}ms or {n}s (or 10m, 1h)",
                    n = num.trim()
                ));
            }
            "s" => 1.0,
            "ms" => 1e-3,
            "us" => 1e-6,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            u => return Err(format!("unknown unit {u:?} in {s:?} (use ms, s, m or h)")),
        };
        let secs = x * scale;
        if secs < 0.0 {
            return Err(format!("{s:?} is negative: a duration is 0 or more"));
        }
        if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
            return Err(format!("{s:?} is out of range"));
        }
        Ok(Dur(Duration::from_secs_f64(secs)))
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms.is_multiple_of(60_000) && ms > 0 {
            write!(f, "{}m", ms / 60_000)
        } else if ms.is_multiple_of(1000) {
            write!(f, "{}s", ms / 1000)
        } else {
            write!(f, "{ms}ms")
        }
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Secs(f64),
        }
        match Raw::deserialize(d)? {
            Raw::Text(t) => t.parse().map_err(serde::de::Error::custom),
            // The same rule as on the command line: `latency = 50` in a
            // file is as ambiguous as `--latency 50`.
            Raw::Secs(x) => x.to_string().parse().map_err(serde::de::Error::custom),
        }
    }
}

/// `--pause FRACTION:DUR`: that share of members stops for DUR once, at a
/// random moment.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pause {
    pub fraction: f64,
    pub length: Dur,
}

impl FromStr for Pause {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (f, d) = s
            .split_once(':')
            .ok_or_else(|| format!("--pause takes FRACTION:DUR (e.g. 0.05:3s), not {s:?}"))?;
        Ok(Pause {
            fraction: fraction(f)?,
            length: d.parse()?,
        })
    }
}

/// `--partition FRACTION:AT:FOR`: that share of members is cut off from
/// the rest at AT, for FOR.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Partition {
    pub fraction: f64,
    pub at: Dur,
    #[serde(rename = "for")]
    pub length: Dur,
}

impl FromStr for Partition {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let [f, at, len] = parts[..] else {
            return Err(format!(
                "--partition takes FRACTION:AT:FOR (e.g. 0.5:60s:60s), not {s:?}"
            ));
        };
        Ok(Partition {
            fraction: fraction(f)?,
            at: at.parse()?,
            length: len.parse()?,
        })
    }
}

fn fraction(s: &str) -> Result<f64, String> {
    let x: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a fraction"))?;
    if x.is_finite() && x > 0.0 && x <= 1.0 {
        Ok(x)
    } else {
        Err(format!("a fraction must be in (0, 1], not {s}"))
    }
}

/// A knob written by its name (`lan`, `phi`, `ring`) in scenario files.
fn by_name<T: fmt::Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&v.to_string())
}

fn from_name<'de, T, D>(d: D) -> Result<T, D::Error>
where
    T: FromStr,
    T::Err: fmt::Display,
    D: Deserializer<'de>,
{
    String::deserialize(d)?
        .parse()
        .map_err(serde::de::Error::custom)
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    pub members: usize,
    /// Simulated time.
    pub duration: Dur,
    #[serde(serialize_with = "by_name", deserialize_with = "from_name")]
    pub preset: SwimPreset,
    /// Mean one-way delay (exponentially distributed, so messages reorder).
    pub latency: Dur,
    /// Probability that a message is lost.
    pub loss: f64,
    /// Probability that a message is delivered twice.
    pub duplicate: f64,
    /// Members that crash at random moments.
    pub crash: usize,
    /// Crashed members come back with empty state (in a new epoch), 10 to
    /// 30 s later, through a random live member.
    pub restart: bool,
    pub pause: Option<Pause>,
    pub partition: Option<Partition>,
    /// Payloads per simulated second, broadcast from random live members.
    pub broadcast_rate: f64,
    /// Writes per simulated second to the replicated map (the agent's
    /// `kv`), through random live members, to `kv_keys` keys; 0 runs no
    /// map. The report says whether every live member ends with the map
    /// all the writes make.
    pub kv_rate: f64,
    pub kv_keys: usize,
    pub lifeguard: bool,
    /// Members sign their claims (Ed25519), each with a key it keeps
    /// across restarts, as agents with a data dir do.
    pub sign: bool,
    #[serde(serialize_with = "by_name", deserialize_with = "from_name")]
    pub detector: Detector,
    /// Whom members probe: the ring (hearsay's default) or SWIM's
    /// shuffled round-robin.
    #[serde(serialize_with = "by_name", deserialize_with = "from_name")]
    pub probes: ProbeOrder,
    /// How payloads spread: one of the seven dissemination strategies.
    #[serde(serialize_with = "by_name", deserialize_with = "from_name")]
    pub strategy: StrategyKind,
    /// The strategy's timing: latency (no batching) or efficient (adaptive
    /// batching: fewer messages, later).
    #[serde(serialize_with = "by_name", deserialize_with = "from_name")]
    pub broadcast_preset: Preset,
    /// Every member joins at once through the first, instead of starting
    /// with the whole membership known (a warm start): the report then
    /// says when views agreed and what the joins cost.
    pub cold_start: bool,
    /// Members are spread over this many zones (round-robin).
    pub zones: usize,
    /// Cross-zone messages take this many times the latency.
    pub zone_latency: f64,
    pub seed: u64,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            members: 100,
            duration: Dur(Duration::from_secs(60)),
            preset: SwimPreset::Lan,
            latency: Dur(Duration::from_millis(10)),
            loss: 0.0,
            duplicate: 0.0,
            crash: 0,
            restart: false,
            pause: None,
            partition: None,
            broadcast_rate: 0.0,
            kv_rate: 0.0,
            kv_keys: 100,
            lifeguard: true,
            sign: false,
            detector: Detector::Swim,
            probes: ProbeOrder::Ring,
            strategy: StrategyKind::Plumtree,
            broadcast_preset: Preset::Latency,
            cold_start: false,
            zones: 1,
            zone_latency: 5.0,
            seed: 1,
        }
    }
}

/// Most members a run may have (memory grows with the square: everyone
/// knows everyone).
pub const MAX_MEMBERS: usize = 20_000;

impl Scenario {
    pub fn from_toml(text: &str) -> Result<Scenario, String> {
        toml::from_str(text).map_err(|e| format!("scenario file: {e}"))
    }

    pub fn validate(&self) -> Result<(), String> {
        let d = self.duration.0;
        if self.members < 2 || self.members > MAX_MEMBERS {
            return Err(format!(
                "--members must be 2 to {MAX_MEMBERS}, not {}",
                self.members
            ));
        }
        if d.is_zero() || d > Duration::from_secs(7 * 24 * 3600) {
            return Err(format!(
                "--duration must be positive and at most a week, not {}",
                self.duration
            ));
        }
        if self.latency.0 > Duration::from_secs(60) {
            return Err("--latency must be at most 60s".into());
        }
        for (name, p) in [("--loss", self.loss), ("--duplicate", self.duplicate)] {
            if !(p.is_finite() && (0.0..1.0).contains(&p)) {
                return Err(format!("{name} must be a probability in [0, 1), not {p}"));
            }
        }
        if self.crash >= self.members {
            return Err(format!(
                "--crash {} leaves nobody up among {} members",
                self.crash, self.members
            ));
        }
        if let Some(p) = self.pause
            && p.length.0 >= d
        {
            return Err("--pause must be shorter than the run".into());
        }
        if let Some(p) = self.partition
            && p.at.0 + p.length.0 >= d
        {
            return Err(format!(
                "--partition ends at {}, after the run ({}): nothing would be seen healing",
                Dur(p.at.0 + p.length.0),
                self.duration
            ));
        }
        if let Some(p) = self.partition
            && p.fraction >= 1.0
        {
            return Err(
                "--partition needs a fraction below 1 (someone must be on the other side)".into(),
            );
        }
        if !(self.broadcast_rate.is_finite() && (0.0..=100_000.0).contains(&self.broadcast_rate)) {
            return Err(format!(
                "--broadcast-rate must be 0 to 100000 per second, not {}",
                self.broadcast_rate
            ));
        }
        if !(self.kv_rate.is_finite() && (0.0..=100_000.0).contains(&self.kv_rate)) {
            return Err(format!(
                "--kv-rate must be 0 to 100000 per second, not {}",
                self.kv_rate
            ));
        }
        if self.kv_keys == 0 || self.kv_keys > 1_000_000 {
            return Err(format!(
                "--kv-keys must be 1 to 1000000, not {}",
                self.kv_keys
            ));
        }
        if self.zones == 0 || self.zones > self.members {
            return Err(format!(
                "--zones must be 1 to the member count, not {}",
                self.zones
            ));
        }
        if !(self.zone_latency.is_finite() && self.zone_latency >= 1.0) {
            return Err("zone_latency must be at least 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_and_bad_ones_are_refused_with_a_reason() {
        assert_eq!("10m".parse::<Dur>().unwrap().0, Duration::from_secs(600));
        assert_eq!(
            "250ms".parse::<Dur>().unwrap().0,
            Duration::from_millis(250)
        );
        let bare = "50".parse::<Dur>().unwrap_err();
        assert!(bare.contains("50ms or 50s"), "{bare}");
        assert_eq!("0".parse::<Dur>().unwrap().0, Duration::ZERO);
        assert!("3 parsecs".parse::<Dur>().is_err());
        assert!("-1s".parse::<Dur>().is_err());
        let p: Pause = "0.05:3s".parse().unwrap();
        assert_eq!((p.fraction, p.length.0), (0.05, Duration::from_secs(3)));
        assert!("1.5:3s".parse::<Pause>().is_err());
        let q: Partition = "0.5:60s:60s".parse().unwrap();
        assert_eq!(q.at.0, Duration::from_secs(60));
        assert!("0.5:60s".parse::<Partition>().is_err());
        let mut s = Scenario::default();
        s.validate().unwrap();
        s.crash = s.members;
        assert!(s.validate().is_err());
        s = Scenario {
            partition: Some("0.5:50s:20s".parse().unwrap()),
            ..Scenario::default()
        };
        assert!(s.validate().unwrap_err().contains("after the run"));
    }

    #[test]
    fn a_toml_scenario_uses_the_same_keys() {
        let s = Scenario::from_toml(
            "members = 50\nduration = \"2m\"\nloss = 0.01\ncrash = 3\n\
             partition = { fraction = 0.5, at = \"30s\", for = \"20s\" }\npreset = \"wan\"\n",
        )
        .unwrap();
        assert_eq!(s.members, 50);
        assert_eq!(s.duration.0, Duration::from_secs(120));
        assert_eq!(s.preset, SwimPreset::Wan);
        assert_eq!(s.partition.unwrap().length.0, Duration::from_secs(20));
        assert!(
            Scenario::from_toml("memberz = 5").is_err(),
            "unknown keys are refused"
        );
        let back = toml::to_string(&s).unwrap();
        assert_eq!(Scenario::from_toml(&back).unwrap(), s);
        let t = Scenario::from_toml("strategy = \"push-pull\"\nbroadcast_preset = \"latency\"\n")
            .unwrap();
        assert_eq!(t.strategy, StrategyKind::PushPull);
        assert_eq!(t.broadcast_preset, Preset::Latency);
        assert_eq!(
            Scenario::from_toml(&toml::to_string(&t).unwrap()).unwrap(),
            t
        );
        let bad = Scenario::from_toml("strategy = \"rumour\"").unwrap_err();
        assert!(bad.contains("unknown strategy"), "{bad}");
        // A bare number has no unit in a file either (it ran as seconds:
        // `latency = 50` was fifty seconds).
        for bare in [
            "latency = 50",
            "duration = 30",
            "pause = { fraction = 0.1, length = 3 }",
        ] {
            let e = Scenario::from_toml(bare).unwrap_err();
            assert!(e.contains("has no unit"), "{bare}: {e}");
        }
        assert_eq!(
            Scenario::from_toml("latency = 0").unwrap().latency.0,
            Duration::ZERO
        );
    }
}
