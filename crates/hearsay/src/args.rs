//! Numbers on the command line, and errors about them, in one place.
//!
//! Every flag that becomes a duration, a count or an allocation is bounded
//! here, so that no value the shell can type panics, aborts or wraps around
//! further down: it is refused with one line and exit 254 instead.

use clap::error::{ContextKind, ContextValue, ErrorKind};

/// A year: the longest time any flag may ask for.
pub const MAX_SECS: u64 = 365 * 24 * 3600;
/// An hour of mean latency (an exponential draw can be ~40 times that).
pub const MAX_LATENCY_MS: u64 = 3600 * 1000;
/// Ops per second across all clients.
pub const MAX_RATE: f64 = 1_000_000.0;
/// Nodes in one test.
pub const MAX_NODES: usize = 10_000;
/// Client workers in one test.
pub const MAX_CONCURRENCY: usize = 100_000;
/// Repetitions of one test or bench point.
pub const MAX_REPEATS: usize = 100_000;

/// `--flag -5s` becomes `--flag=-5s`, so that a negative value with a unit
/// reaches the flag's own check ("is negative") instead of being taken for
/// an unknown option `-5` (clap's `allow_negative_numbers` knows only bare
/// numbers). Node arguments after `--` are left alone.
/// Arguments that are not UTF-8 (a path) pass through untouched.
pub fn join_negative_values<A: Into<std::ffi::OsString>>(
    argv: impl IntoIterator<Item = A>,
) -> Vec<std::ffi::OsString> {
    let mut out: Vec<std::ffi::OsString> = Vec::new();
    let mut rest = false;
    for a in argv.into_iter().map(Into::into) {
        let negative = a.to_str().is_some_and(|a| {
            a.starts_with('-') && a[1..].starts_with(|c: char| c.is_ascii_digit() || c == '.')
        });
        let joins = |flag: &std::ffi::OsString| {
            flag.to_str()
                .is_some_and(|f| f.starts_with("--") && f.len() > 2 && !f.contains('='))
        };
        match out.last_mut() {
            Some(flag) if !rest && negative && joins(flag) => {
                flag.push("=");
                flag.push(&a);
            }
            _ => {
                rest |= a == "--";
                out.push(a);
            }
        }
    }
    out
}

fn integer_in<T>(s: &str, lo: T, hi: T, what: &str) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let v: T = s
        .trim()
        .parse()
        .map_err(|_| format!("{what} must be an integer from {lo} to {hi}, not {s:?}"))?;
    if v < lo || v > hi {
        return Err(format!("{what} must be from {lo} to {hi}, not {s}"));
    }
    Ok(v)
}

fn number_in(s: &str, lo: f64, lo_open: bool, hi: f64, what: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{what} must be a number, not {s:?}"))?;
    let low_ok = if lo_open { v > lo } else { v >= lo };
    if !v.is_finite() || !low_ok || v > hi {
        let low = if lo_open { "above" } else { "at least" };
        return Err(format!(
            "{what} must be {low} {lo} and at most {hi}, not {s}"
        ));
    }
    Ok(v)
}

/// `--time-limit`: Maelstrom's positive integer of seconds.
pub fn time_limit(s: &str) -> Result<u64, String> {
    integer_in(s, 1, MAX_SECS, "a whole number of seconds")
}

/// `--latency`: a non-negative integer of milliseconds.
pub fn latency_ms(s: &str) -> Result<u64, String> {
    integer_in(s, 0, MAX_LATENCY_MS, "milliseconds")
}

/// `--rate`: total requests per second, 0 for none.
pub fn rate(s: &str) -> Result<f64, String> {
    number_in(s, 0.0, false, MAX_RATE, "a rate")
}

/// A positive number of seconds (may be fractional), such as
/// `--nemesis-interval`.
pub fn positive_secs(s: &str) -> Result<f64, String> {
    number_in(s, 0.0, true, MAX_SECS as f64, "seconds")
}

/// A non-negative number of seconds, such as `--recovery`.
pub fn secs(s: &str) -> Result<f64, String> {
    number_in(s, 0.0, false, MAX_SECS as f64, "seconds")
}

/// `--probe`: milliseconds between convergence reads, 1 to 60,000.
pub fn probe_ms(s: &str) -> Result<u64, String> {
    integer_in(s, 1u64, 60_000, "milliseconds")
}

/// A node count.
pub fn node_count(s: &str) -> Result<usize, String> {
    integer_in(s, 1, MAX_NODES, "a node count")
}

/// A repetition count (`--test-count`, `--runs`).
pub fn repeats(s: &str) -> Result<usize, String> {
    integer_in(s, 1, MAX_REPEATS, "a count")
}

/// Memoised configurations per key for the lin-kv checker (`--max-configs`):
/// tens of bytes each, so a billion is tens of GB.
pub const MAX_CHECK_CONFIGS: usize = 1_000_000_000;
/// Search steps per key for the lin-kv checker (`--max-steps`).
pub const MAX_CHECK_STEPS: u64 = 1_000_000_000_000;

/// `--max-configs`.
pub fn max_configs(s: &str) -> Result<usize, String> {
    integer_in(s, 1, MAX_CHECK_CONFIGS, "a configuration count")
}

/// `--max-steps`.
pub fn max_steps(s: &str) -> Result<u64, String> {
    integer_in(s, 1, MAX_CHECK_STEPS, "a step count")
}

/// `--key-count` (txn workloads): keys in play at once.
pub fn key_count(s: &str) -> Result<usize, String> {
    use hearsay_harness::workload::txn::MAX_KEY_COUNT;
    integer_in(s, 1, MAX_KEY_COUNT, "a key count")
}

/// `--max-txn-length` (txn workloads).
pub fn max_txn_length(s: &str) -> Result<usize, String> {
    use hearsay_harness::workload::txn::MAX_TXN_LENGTH;
    integer_in(s, 1, MAX_TXN_LENGTH, "a transaction length")
}

/// `--max-writes-per-key` (txn workloads).
pub fn max_writes_per_key(s: &str) -> Result<u64, String> {
    use hearsay_harness::workload::txn::MAX_WRITES_PER_KEY;
    integer_in(s, 1, MAX_WRITES_PER_KEY, "a write count")
}

/// `--concurrency`: an integer, or `Kn` for K workers per node.
pub fn concurrency(s: &str, nodes: usize) -> Result<usize, String> {
    let bad = || {
        format!(
            "--concurrency must be a positive integer or Kn (K per node), at most {MAX_CONCURRENCY} workers in all, not {s:?}"
        )
    };
    let c = match s.strip_suffix('n') {
        Some(k) => k
            .parse::<usize>()
            .ok()
            .and_then(|k| k.checked_mul(nodes))
            .ok_or_else(bad)?,
        None => s.parse::<usize>().map_err(|_| bad())?,
    };
    if c == 0 || c > MAX_CONCURRENCY {
        Err(bad())
    } else {
        Ok(c)
    }
}

/// A clap error as one line (Maelstrom prints one line per bad option),
/// with clap's suggestion when it has one, the valid values when there is
/// a short list of them, and, for `hearsay test` (`node_args`), where
/// the node's own arguments go.
pub fn one_line(e: &clap::Error, node_args: bool) -> String {
    let text = |k: ContextKind| match e.get(k) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        Some(ContextValue::Strings(v)) if !v.is_empty() => Some(v.join(", ")),
        _ => None,
    };
    let arg = text(ContextKind::InvalidArg);
    let mut line = match (e.kind(), &arg) {
        (ErrorKind::UnknownArgument, Some(a)) => format!("unknown option {a}"),
        (ErrorKind::InvalidSubcommand, Some(a)) => format!("unknown command {a}"),
        _ => {
            let rendered = e.render().to_string();
            rendered
                .lines()
                .next()
                .unwrap_or("bad arguments")
                .trim_start_matches("error: ")
                .to_string()
        }
    };
    if let Some(s) = text(ContextKind::SuggestedArg).or(text(ContextKind::SuggestedSubcommand)) {
        line += &format!(" (did you mean {s}?)");
    } else if arg.as_deref() == Some("--port") {
        line += " (the address is --bind HOST:PORT or --http HOST:PORT)";
    }
    if e.kind() == ErrorKind::InvalidValue
        && let Some(valid) = text(ContextKind::ValidValue)
    {
        line += &format!(" (one of: {valid})");
    }
    if e.kind() == ErrorKind::UnknownArgument && node_args {
        line += "; node arguments go after --";
    }
    line
}

/// A shell word list that pastes back into a shell as the same words.
pub fn shell_join<'a>(words: impl IntoIterator<Item = &'a str>) -> String {
    words
        .into_iter()
        .map(|w| shlex::try_quote(w).map_or_else(|_| w.replace('\0', ""), |q| q.into_owned()))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_negative_value_stays_with_its_flag_and_node_arguments_are_left_alone() {
        let v = |s: &str| -> Vec<String> {
            join_negative_values(s.split(' '))
                .into_iter()
                .map(|a| a.into_string().unwrap())
                .collect()
        };
        assert_eq!(
            v("hearsay sim --duration -5s --pause -.1:3s --members 5"),
            [
                "hearsay",
                "sim",
                "--duration=-5s",
                "--pause=-.1:3s",
                "--members",
                "5"
            ]
        );
        // Not after a value, a short option, `--x=`, or `--`.
        assert_eq!(v("a --m 5 -3"), ["a", "--m", "5", "-3"]);
        assert_eq!(v("a -q -3 --x=1 -2"), ["a", "-q", "-3", "--x=1", "-2"]);
        assert_eq!(v("a -- --preset -1"), ["a", "--", "--preset", "-1"]);
        assert_eq!(v("a --m -x"), ["a", "--m", "-x"]);
    }

    #[test]
    fn bounds_are_refused_with_the_flag_range() {
        assert_eq!(time_limit("20"), Ok(20));
        for bad in ["0", "-1", "0.5", "1e20", "", "99999999999999999999", "nan"] {
            assert!(time_limit(bad).is_err(), "{bad}");
        }
        assert_eq!(latency_ms("0"), Ok(0));
        assert!(latency_ms("99999999999999").is_err());
        assert_eq!(rate("2.5"), Ok(2.5));
        for bad in ["-1", "NaN", "inf", "1e300"] {
            assert!(rate(bad).is_err(), "{bad}");
        }
        assert!(positive_secs("0").is_err());
        assert_eq!(positive_secs("0.5"), Ok(0.5));
        assert_eq!(concurrency("2n", 5), Ok(10));
        assert!(concurrency("0", 5).is_err());
        assert!(concurrency("99999999999999999n", 5000).is_err());
        assert!(concurrency("1000000", 1).is_err());
        assert_eq!(max_configs("10"), Ok(10));
        for bad in ["0", "-1", "1e9", "99999999999999"] {
            assert!(max_configs(bad).is_err(), "{bad}");
        }
        assert!(max_steps("0").is_err());
        assert_eq!(key_count("10"), Ok(10));
        for bad in ["0", "-1", "1023", "x"] {
            assert!(key_count(bad).is_err(), "{bad}");
        }
        assert!(max_txn_length("0").is_err());
        assert!(max_writes_per_key("9223372036854775808").is_err());
    }

    #[test]
    fn words_survive_a_round_trip_through_the_shell() {
        let words = ["a b", "it's", "--x=1", "", "plain"];
        let line = shell_join(words);
        assert_eq!(shlex::split(&line).unwrap(), words);
    }
}
