//! Values for reports: an EDN tree that prints the way Clojure's pprint lays
//! out Maelstrom's `results.edn` (one key per line once a map is too wide,
//! 72 columns), and converts to JSON with the same nesting and key names.

use serde_json::Value as Json;
use std::fmt::Write;

#[derive(Clone, Debug, PartialEq)]
pub enum Edn {
    Nil,
    Bool(bool),
    Int(i64),
    /// A double, printed like Clojure (`1.0`, `0.5`).
    Float(f64),
    /// A single-precision float (msgs-per-op, ok-fraction), printed at its
    /// shortest round-trip precision.
    Float32(f32),
    Str(String),
    /// Without the leading colon.
    Keyword(String),
    /// Printed verbatim (big integers, class names).
    Symbol(String),
    Vector(Vec<Edn>),
    List(Vec<Edn>),
    Set(Vec<Edn>),
    /// Entries in print order.
    Map(Vec<(Edn, Edn)>),
    /// A large set of integers (a big read), sorted and stored as disjoint
    /// inclusive ranges. Prints as the plain vector up to
    /// [`RANGES_PRINT_LIMIT`] elements, as `#hearsay/ranges [[lo hi] ...]`
    /// beyond.
    IntRanges(std::sync::Arc<Vec<(i64, i64)>>),
}

/// Reads longer than this are kept as [`Edn::IntRanges`]: order and
/// duplicates are dropped (no checker looks at them), memory stays small.
pub const COMPACT_READS_ABOVE: usize = 4096;
/// Range sets up to this many elements still print as plain vectors.
pub const RANGES_PRINT_LIMIT: u64 = COMPACT_READS_ABOVE as u64;

/// A read's integers: as returned if short, as a range set if long.
pub fn ints(v: Vec<i64>) -> Edn {
    if v.len() <= COMPACT_READS_ABOVE {
        return Edn::Vector(v.into_iter().map(Edn::Int).collect());
    }
    int_ranges(v)
}

/// Integers as a set of sorted, merged ranges (order and repeats dropped).
pub fn int_ranges(mut v: Vec<i64>) -> Edn {
    v.sort_unstable();
    v.dedup();
    let mut ranges: Vec<(i64, i64)> = Vec::new();
    for x in v {
        match ranges.last_mut() {
            Some((_, hi)) if *hi + 1 == x => *hi = x,
            _ => ranges.push((x, x)),
        }
    }
    Edn::IntRanges(std::sync::Arc::new(ranges))
}

fn range_len(r: &[(i64, i64)]) -> u64 {
    r.iter().map(|(lo, hi)| (hi - lo) as u64 + 1).sum()
}

const WIDTH: usize = 72;

/// Jepsen's order for keys and values in reports: integers numerically,
/// before everything else, which goes by its printed form.
pub fn jepsen_order(a: &Edn, b: &Edn) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a, b) {
        (Edn::Int(x), Edn::Int(y)) => x.cmp(y),
        (Edn::Int(_), _) => Ordering::Less,
        (_, Edn::Int(_)) => Ordering::Greater,
        _ => a.compact().cmp(&b.compact()),
    }
}

pub fn kw(s: &str) -> Edn {
    Edn::Keyword(s.to_string())
}

/// A map with keyword keys, in the given order.
pub fn map<I, K>(entries: I) -> Edn
where
    I: IntoIterator<Item = (K, Edn)>,
    K: AsRef<str>,
{
    Edn::Map(
        entries
            .into_iter()
            .map(|(k, v)| (kw(k.as_ref()), v))
            .collect(),
    )
}

impl From<bool> for Edn {
    fn from(b: bool) -> Edn {
        Edn::Bool(b)
    }
}
impl From<i64> for Edn {
    fn from(i: i64) -> Edn {
        Edn::Int(i)
    }
}
impl From<u64> for Edn {
    fn from(i: u64) -> Edn {
        i64::try_from(i)
            .map(Edn::Int)
            .unwrap_or_else(|_| Edn::Symbol(i.to_string()))
    }
}
impl From<usize> for Edn {
    fn from(i: usize) -> Edn {
        Edn::from(i as u64)
    }
}
impl From<&str> for Edn {
    fn from(s: &str) -> Edn {
        Edn::Str(s.to_string())
    }
}
impl From<String> for Edn {
    fn from(s: String) -> Edn {
        Edn::Str(s)
    }
}
impl<T: Into<Edn>> From<Option<T>> for Edn {
    fn from(o: Option<T>) -> Edn {
        o.map_or(Edn::Nil, Into::into)
    }
}

impl Edn {
    /// JSON as Maelstrom reads it: objects get keyword keys at the first
    /// level (the body keys); deeper objects keep string keys.
    pub fn from_json_body(v: &Json) -> Edn {
        match v {
            Json::Object(m) => {
                Edn::Map(m.iter().map(|(k, v)| (kw(k), Edn::from_json(v))).collect())
            }
            other => Edn::from_json(other),
        }
    }

    pub fn from_json(v: &Json) -> Edn {
        match v {
            Json::Null => Edn::Nil,
            Json::Bool(b) => Edn::Bool(*b),
            Json::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => Edn::Int(i),
                (None, Some(f)) if n.is_f64() => Edn::Float(f),
                _ => Edn::Symbol(n.to_string()),
            },
            Json::String(s) => Edn::Str(s.clone()),
            Json::Array(a) => Edn::Vector(a.iter().map(Edn::from_json).collect()),
            Json::Object(m) => Edn::Map(
                m.iter()
                    .map(|(k, v)| (Edn::Str(k.clone()), Edn::from_json(v)))
                    .collect(),
            ),
        }
    }

    pub fn get(&self, key: &str) -> Option<&Edn> {
        match self {
            Edn::Map(entries) => entries.iter().find_map(|(k, v)| match k {
                Edn::Keyword(s) | Edn::Str(s) if s == key => Some(v),
                _ => None,
            }),
            _ => None,
        }
    }

    /// Single-line form.
    pub fn compact(&self) -> String {
        let mut s = String::new();
        self.write_compact(&mut s);
        s
    }

    fn write_compact(&self, out: &mut String) {
        match self {
            Edn::Nil => out.push_str("nil"),
            Edn::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Edn::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Edn::Float(f) => out.push_str(&clojure_double(*f)),
            Edn::Float32(f) => out.push_str(&java_float(*f)),
            Edn::Str(s) => out.push_str(&serde_json::to_string(s).unwrap_or_default()),
            Edn::Keyword(k) => {
                out.push(':');
                out.push_str(k);
            }
            Edn::Symbol(s) => out.push_str(s),
            Edn::Vector(v) => seq_compact(out, "[", "]", v),
            Edn::List(v) => seq_compact(out, "(", ")", v),
            Edn::Set(v) => seq_compact(out, "#{", "}", v),
            Edn::Map(m) => {
                out.push('{');
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    k.write_compact(out);
                    out.push(' ');
                    v.write_compact(out);
                }
                out.push('}');
            }
            Edn::IntRanges(r) if range_len(r) <= RANGES_PRINT_LIMIT => {
                out.push('[');
                let mut first = true;
                for &(lo, hi) in r.iter() {
                    for x in lo..=hi {
                        if !first {
                            out.push(' ');
                        }
                        first = false;
                        let _ = write!(out, "{x}");
                    }
                }
                out.push(']');
            }
            Edn::IntRanges(r) => {
                out.push_str("#hearsay/ranges [");
                for (i, (lo, hi)) in r.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    let _ = write!(out, "[{lo} {hi}]");
                }
                out.push(']');
            }
        }
    }

    /// Pretty form, laid out like Clojure's pprint.
    pub fn pretty(&self) -> String {
        let mut s = String::new();
        self.write_pretty(&mut s, 0);
        s.push('\n');
        s
    }

    fn write_pretty(&self, out: &mut String, col: usize) {
        let compact = self.compact();
        if col + compact.chars().count() <= WIDTH {
            out.push_str(&compact);
            return;
        }
        match self {
            Edn::Map(m) if !m.is_empty() => {
                out.push('{');
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push_str(",\n");
                        out.push_str(&" ".repeat(col + 1));
                    }
                    let key = k.compact();
                    out.push_str(&key);
                    out.push(' ');
                    v.write_pretty(out, col + 1 + key.chars().count() + 1);
                }
                out.push('}');
            }
            Edn::Vector(v) if !v.is_empty() => seq_pretty(out, col, "[", "]", v),
            Edn::List(v) if !v.is_empty() => seq_pretty(out, col, "(", ")", v),
            Edn::Set(v) if !v.is_empty() => seq_pretty(out, col, "#{", "}", v),
            _ => out.push_str(&compact),
        }
    }

    /// JSON with the same nesting: keywords lose their colon, sets and lists
    /// become arrays, map keys become strings (`0.5`, `valid?`).
    pub fn to_json(&self) -> Json {
        match self {
            Edn::Nil => Json::Null,
            Edn::Bool(b) => Json::Bool(*b),
            Edn::Int(i) => Json::from(*i),
            Edn::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
            Edn::Float32(f) => java_float(*f)
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map_or(Json::Null, Json::Number),
            Edn::Str(s) | Edn::Keyword(s) => Json::String(s.clone()),
            Edn::Symbol(s) => serde_json::from_str::<serde_json::Number>(s)
                .map(Json::Number)
                .unwrap_or_else(|_| Json::String(s.clone())),
            Edn::Vector(v) | Edn::List(v) | Edn::Set(v) => {
                Json::Array(v.iter().map(Edn::to_json).collect())
            }
            Edn::Map(m) => {
                Json::Object(m.iter().map(|(k, v)| (k.json_key(), v.to_json())).collect())
            }
            Edn::IntRanges(r) if range_len(r) <= RANGES_PRINT_LIMIT => Json::Array(
                r.iter()
                    .flat_map(|&(lo, hi)| lo..=hi)
                    .map(Json::from)
                    .collect(),
            ),
            Edn::IntRanges(r) => serde_json::json!({ "ranges": r.as_ref() }),
        }
    }

    fn json_key(&self) -> String {
        match self {
            Edn::Str(s) | Edn::Keyword(s) | Edn::Symbol(s) => s.clone(),
            other => other.compact(),
        }
    }
}

fn seq_compact(out: &mut String, open: &str, close: &str, items: &[Edn]) {
    out.push_str(open);
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        x.write_compact(out);
    }
    out.push_str(close);
}

fn seq_pretty(out: &mut String, col: usize, open: &str, close: &str, items: &[Edn]) {
    out.push_str(open);
    let inner = col + open.len();
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            out.push('\n');
            out.push_str(&" ".repeat(inner));
        }
        x.write_pretty(out, inner);
    }
    out.push_str(close);
}

/// Clojure prints doubles with Java's `Double.toString`: at least one
/// fractional digit, scientific notation outside [1e-3, 1e7).
fn clojure_double(f: f64) -> String {
    java_style(f, format!("{f:?}"), f.abs())
}

fn java_float(f: f32) -> String {
    java_style(f64::from(f), format!("{f:?}"), f64::from(f.abs()))
}

fn java_style(f: f64, shortest: String, abs: f64) -> String {
    if f.is_nan() {
        return "##NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "##Inf".into()
        } else {
            "##-Inf".into()
        };
    }
    if abs != 0.0 && !(1e-3..1e7).contains(&abs) {
        // Rust's `{:e}` is shortest round-trip too: 1.5e7 -> "1.5E7".
        let e = format!("{:e}", shortest.parse::<f64>().unwrap_or(f));
        let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
        let mant = if mant.contains('.') {
            mant.to_string()
        } else {
            format!("{mant}.0")
        };
        return format!("{mant}E{exp}");
    }
    if shortest.contains('.') || shortest.contains('e') {
        shortest
    } else {
        format!("{shortest}.0")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_like_clojure() {
        assert_eq!(Edn::Float32(1.0).compact(), "1.0");
        assert_eq!(Edn::Float32(17.065).compact(), "17.065");
        assert_eq!(Edn::Float32(2.0 / 3.0).compact(), "0.6666667");
        assert_eq!(Edn::Float(0.5).compact(), "0.5");
        assert_eq!(Edn::Float(1.5e7).compact(), "1.5E7");
        assert_eq!(Edn::Float(1.0e-4).compact(), "1.0E-4");
        assert_eq!(
            Edn::Float32(2.0 / 3.0).to_json(),
            serde_json::json!(0.6666667)
        );
    }

    #[test]
    fn wide_maps_break_one_key_per_line_aligned_after_the_brace() {
        let lat = Edn::Map(vec![
            (Edn::Int(0), Edn::Int(0)),
            (Edn::Float(0.5), Edn::Int(9244)),
            (Edn::Float(0.95), Edn::Int(18387)),
            (Edn::Float(0.99), Edn::Int(19261)),
            (Edn::Int(1), Edn::Int(19261)),
        ]);
        let w = map([(
            "workload",
            map([("valid?", Edn::Bool(true)), ("stable-latencies", lat)]),
        )]);
        let text = w.pretty();
        assert_eq!(
            text,
            "{:workload {:valid? true,\n            :stable-latencies {0 0,\n                               0.5 9244,\n                               0.95 18387,\n                               0.99 19261,\n                               1 19261}}}\n"
        );
        let json = w.to_json();
        assert_eq!(json["workload"]["stable-latencies"]["0.95"], 18387);
        assert_eq!(json["workload"]["valid?"], true);
    }

    #[test]
    fn long_reads_become_range_sets() {
        let short = ints(vec![3, 1, 2]);
        assert_eq!(
            short.compact(),
            "[3 1 2]",
            "short reads keep the node's order"
        );
        let mut long: Vec<i64> = (0..5000).rev().collect();
        long.push(7000);
        long.push(7);
        let r = ints(long);
        assert_eq!(
            r,
            Edn::IntRanges(std::sync::Arc::new(vec![(0, 4999), (7000, 7000)]))
        );
        assert_eq!(r.compact(), "#hearsay/ranges [[0 4999] [7000 7000]]");
        assert_eq!(
            r.to_json(),
            serde_json::json!({"ranges": [[0, 4999], [7000, 7000]]})
        );
        let small = Edn::IntRanges(std::sync::Arc::new(vec![(0, 2), (5, 5)]));
        assert_eq!(small.compact(), "[0 1 2 5]");
    }

    #[test]
    fn strings_sets_and_keywords() {
        let v = Edn::Vector(vec![
            kw("isolated"),
            Edn::Set(vec![Edn::from("n1")]),
            Edn::from("a\"b"),
        ]);
        assert_eq!(v.compact(), r#"[:isolated #{"n1"} "a\"b"]"#);
        assert_eq!(v.to_json(), serde_json::json!(["isolated", ["n1"], "a\"b"]));
    }
}
