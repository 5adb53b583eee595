//! Consistency models and the anomalies they rule out, transcribed from
//! Elle 0.2.2's `elle.consistency-model` (maelstrom-spec-more.md 4.4, 4.5):
//! the model hierarchy, the canonical and friendly names, what each model
//! directly proscribes, which anomalies imply which, and the severity order
//! the cycle search follows. Every set below is computed from these tables,
//! as Elle computes them, so a name Elle knows means the same here.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

type Table = &'static [(&'static str, &'static [&'static str])];

/// `a -> [b ...]`: a history satisfying `a` satisfies every `b`. Vertices
/// are canonicalised (`serializable` becomes `PL-3`) when the graph is built.
const MODELS: Table = &[
    ("causal-cerone", &["read-atomic"]),
    ("consistent-view", &["cursor-stability", "monotonic-view"]),
    ("conflict-serializable", &["view-serializable"]),
    ("cursor-stability", &["read-committed", "PL-2"]),
    ("forward-consistent-view", &["consistent-view"]),
    ("PL-2", &["PL-1"]),
    ("PL-3", &["repeatable-read", "update-serializable"]),
    ("update-serializable", &["forward-consistent-view"]),
    ("monotonic-atomic-view", &["read-committed"]),
    ("monotonic-view", &["PL-2"]),
    ("monotonic-snapshot-read", &["PL-2"]),
    (
        "parallel-snapshot-isolation",
        &["causal-cerone", "update-atomic"],
    ),
    ("prefix", &["causal-cerone"]),
    ("read-atomic", &["monotonic-atomic-view"]),
    ("read-committed", &["read-uncommitted"]),
    (
        "repeatable-read",
        &["cursor-stability", "monotonic-atomic-view"],
    ),
    ("update-atomic", &["read-atomic"]),
    (
        "serializable",
        &["repeatable-read", "snapshot-isolation", "view-serializable"],
    ),
    ("session-serializable", &["1SR"]),
    (
        "snapshot-isolation",
        &[
            "forward-consistent-view",
            "monotonic-atomic-view",
            "monotonic-snapshot-read",
            "parallel-snapshot-isolation",
            "prefix",
        ],
    ),
    (
        "strict-serializable",
        &[
            "PL-3",
            "serializable",
            "linearizable",
            "snapshot-isolation",
            "strong-snapshot-isolation",
            "strong-session-serializable",
        ],
    ),
    ("strong-session-PL-1", &["PL-1"]),
    ("strong-session-PL-2", &["PL-2", "strong-session-PL-1"]),
    ("strong-PL-1", &["strong-session-PL-1"]),
    ("strong-PL-2", &["strong-session-PL-2", "strong-PL-1"]),
    (
        "strong-session-serializable",
        &["serializable", "strong-session-snapshot-isolation"],
    ),
    (
        "strong-session-snapshot-isolation",
        &["snapshot-isolation", "strong-session-PL-2"],
    ),
    ("strong-serializable", &["session-serializable"]),
    (
        "strong-snapshot-isolation",
        &["strong-session-snapshot-isolation", "strong-PL-2"],
    ),
    ("linearizable", &["sequential"]),
    ("sequential", &["causal"]),
    ("causal", &["writes-follow-reads", "PRAM"]),
    (
        "PRAM",
        &["monotonic-reads", "monotonic-writes", "read-your-writes"],
    ),
];

/// Friendly name -> canonical name.
const CANONICAL: &[(&str, &str)] = &[
    ("consistent-view", "PL-2+"),
    ("conflict-serializable", "PL-3"),
    ("cursor-stability", "PL-CS"),
    ("forward-consistent-view", "PL-FCV"),
    ("monotonic-snapshot-read", "PL-MSR"),
    ("monotonic-view", "PL-2L"),
    ("read-committed", "PL-2"),
    ("read-uncommitted", "PL-1"),
    ("repeatable-read", "PL-2.99"),
    ("serializable", "PL-3"),
    ("snapshot-isolation", "PL-SI"),
    ("strict-serializable", "PL-SS"),
    ("strong-serializable", "PL-SS"),
    ("update-serializable", "PL-3U"),
    ("strong-session-read-uncommitted", "strong-session-PL-1"),
    ("strong-session-read-committed", "strong-session-PL-2"),
    ("strong-read-uncommitted", "strong-PL-1"),
    ("strong-read-committed", "strong-PL-2"),
];

/// What each model proscribes over the models it implies.
const PROSCRIBES: Table = &[
    ("causal-cerone", &["internal", "G1a"]),
    ("cursor-stability", &["G1", "G-cursor", "lost-update"]),
    ("monotonic-view", &["G1", "G-monotonic"]),
    ("monotonic-snapshot-read", &["G1", "G-MSR"]),
    ("consistent-view", &["G1", "G-single"]),
    ("forward-consistent-view", &["G1", "G-SIb"]),
    ("parallel-snapshot-isolation", &["internal", "G1a"]),
    (
        "PL-3",
        &["G1", "G2", "predicate-read-miss", "PL-3-cycle-exists"],
    ),
    ("PL-2", &["G1", "PL-2-cycle-exists"]),
    (
        "PL-1",
        &[
            "G0",
            "duplicate-elements",
            "cyclic-versions",
            "PL-1-cycle-exists",
        ],
    ),
    ("prefix", &["internal", "G1a"]),
    ("serializable", &["internal"]),
    (
        "snapshot-isolation",
        &[
            "internal",
            "G1",
            "G-SI",
            "G-nonadjacent",
            "PL-SI-cycle-exists",
        ],
    ),
    ("read-atomic", &["internal", "G1a", "future-read"]),
    (
        "repeatable-read",
        &["G1", "G2-item", "PL-2.99-cycle-exists", "lost-update"],
    ),
    ("update-atomic", &["lost-update"]),
    (
        "strict-serializable",
        &["G1", "G1c-realtime", "G2-realtime", "PL-SS-cycle-exists"],
    ),
    (
        "strong-session-PL-1",
        &["strong-session-PL-1-cycle-exists", "G0-process"],
    ),
    (
        "strong-session-PL-2",
        &["strong-session-PL-2-cycle-exists", "G1c-process"],
    ),
    ("strong-PL-1", &["strong-PL-1-cycle-exists", "G0-realtime"]),
    ("strong-PL-2", &["strong-PL-2-cycle-exists", "G1c-realtime"]),
    (
        "strong-session-snapshot-isolation",
        &[
            "internal",
            "G1-process",
            "G-nonadjacent-process",
            "strong-session-snapshot-isolation-cycle-exists",
        ],
    ),
    (
        "strong-snapshot-isolation",
        &[
            "internal",
            "G1-realtime",
            "G-nonadjacent-realtime",
            "strong-snapshot-isolation-cycle-exists",
        ],
    ),
    (
        "strong-session-serializable",
        &[
            "G1-process",
            "G2-process",
            "strong-session-serializable-cycle-exists",
        ],
    ),
    ("update-serializable", &["G1", "G-update"]),
];

/// `a -> [b ...]`: a history showing anomaly `a` also shows every `b`.
const IMPLIED: Table = &[
    ("G0", &["G1c", "G0-process"]),
    ("G0-process", &["G1c-process", "G0-realtime"]),
    ("G0-realtime", &["G1c-realtime"]),
    ("G1a", &["G1"]),
    ("G1b", &["G1"]),
    ("G1c", &["G1", "G1c-process"]),
    ("G1c-process", &["G1c-realtime", "G1-process"]),
    ("G1c-realtime", &["G1-realtime"]),
    ("G1", &["G1-process"]),
    ("G1-process", &["G1-realtime"]),
    (
        "G-single-item",
        &["G-single", "G-single-item-process", "G-nonadjacent-item"],
    ),
    (
        "G-single-item-process",
        &[
            "G-single-process",
            "G-single-item-realtime",
            "G-nonadjacent-item-process",
        ],
    ),
    (
        "G-single-item-realtime",
        &["G-single-realtime", "G-nonadjacent-item-realtime"],
    ),
    ("G-single", &["G-nonadjacent", "GSIb", "G-single-process"]),
    (
        "G-single-process",
        &["G-nonadjacent-process", "G-single-realtime"],
    ),
    ("G-single-realtime", &["G-nonadjacent-realtime"]),
    (
        "G-nonadjacent-item",
        &["G-nonadjacent", "G2-item", "G-nonadjacent-item-process"],
    ),
    (
        "G-nonadjacent-item-process",
        &[
            "G-nonadjacent-process",
            "G2-item-process",
            "G-nonadjacent-item-realtime",
        ],
    ),
    (
        "G-nonadjacent-item-realtime",
        &["G2-item-realtime", "G-nonadjacent-realtime"],
    ),
    ("G-nonadjacent", &["G2", "G-nonadjacent-process"]),
    (
        "G-nonadjacent-process",
        &["G2-process", "G-nonadjacent-realtime"],
    ),
    ("G-nonadjacent-realtime", &["G2-realtime"]),
    ("G2", &["G2-process"]),
    ("G2-item", &["G2", "G2-item-process"]),
    ("G2-item-process", &["G2-process", "G2-item-realtime"]),
    ("G2-item-realtime", &["G2-realtime"]),
    ("G2-process", &["G2-realtime"]),
    ("GSIa", &["GSI"]),
    ("GSIb", &["GSI"]),
    ("incompatible-order", &["G1a"]),
    ("future-read", &["G1c"]),
    ("dirty-update", &["G1a"]),
    ("lost-update", &["write-skew", "G2-item"]),
    ("write-skew", &["G2"]),
];

/// Not implication, only "worse than": the order in which the cycle search
/// looks (process anomalies after every pure data one, realtime last).
const SEVERITY: Table = &[
    ("G0", &["G1c"]),
    ("G0-process", &["G1c-process"]),
    ("G0-realtime", &["G1c-realtime"]),
    ("G1c", &["G-single", "G2-item"]),
    ("G1c-process", &["G-single-process", "G2-item-process"]),
    ("G1c-realtime", &["G-single-realtime", "G2-item-realtime"]),
    ("G2", &["G0-process"]),
    ("G2-process", &["G0-realtime"]),
];

type Graph = BTreeMap<&'static str, Vec<&'static str>>;

struct Tables {
    implies_model: Graph,
    implied_by_model: Graph,
    proscribes: Graph,
    proscribed_by: Graph,
    implies: Graph,
    implied_by: Graph,
    all_models: BTreeSet<&'static str>,
    depth: BTreeMap<&'static str, usize>,
}

fn canonical_static(m: &'static str) -> &'static str {
    CANONICAL
        .iter()
        .find(|(f, _)| *f == m)
        .map_or(m, |(_, c)| c)
}

fn link(out: &mut Graph, inn: &mut Graph, a: &'static str, b: &'static str) {
    let succ = out.entry(a).or_default();
    if !succ.contains(&b) {
        succ.push(b);
        inn.entry(b).or_default().push(a);
    }
    out.entry(b).or_default();
    inn.entry(a).or_default();
}

fn graph(table: Table, rename: fn(&'static str) -> &'static str) -> (Graph, Graph) {
    let (mut out, mut inn) = (Graph::new(), Graph::new());
    for (a, bs) in table {
        for b in *bs {
            link(&mut out, &mut inn, rename(a), rename(b));
        }
    }
    (out, inn)
}

/// Elle's `topo-depths`: peel off the vertices nothing points to, one
/// layer at a time.
fn topo_depths(out: &Graph, inn: &Graph) -> BTreeMap<&'static str, usize> {
    let mut indegree: BTreeMap<&str, usize> = inn.iter().map(|(v, i)| (*v, i.len())).collect();
    let mut layer: Vec<&'static str> = indegree
        .iter()
        .filter(|(_, d)| **d == 0)
        .map(|(v, _)| *v)
        .collect();
    let mut depth = BTreeMap::new();
    let mut d = 0;
    while !layer.is_empty() {
        let mut next = Vec::new();
        for v in layer {
            depth.insert(v, d);
            for w in out.get(v).into_iter().flatten() {
                let k = indegree.get_mut(w).expect("every vertex is counted");
                *k -= 1;
                if *k == 0 {
                    next.push(*w);
                }
            }
        }
        layer = next;
        d += 1;
    }
    depth
}

fn tables() -> &'static Tables {
    static T: OnceLock<Tables> = OnceLock::new();
    T.get_or_init(|| {
        let (implies_model, implied_by_model) = graph(MODELS, canonical_static);
        let (proscribes, proscribed_by) = graph(PROSCRIBES, canonical_static);
        let (implies, implied_by) = graph(IMPLIED, |a| a);
        let mut all_models: BTreeSet<&'static str> = implies_model.keys().copied().collect();
        for (f, c) in CANONICAL {
            all_models.insert(f);
            all_models.insert(c);
        }
        // Depths over implication and severity together; anomalies only a
        // model names are roots.
        let (mut sev_out, mut sev_in) = (implies.clone(), implied_by.clone());
        for (a, bs) in SEVERITY {
            for b in *bs {
                link(&mut sev_out, &mut sev_in, a, b);
            }
        }
        let mut depth = topo_depths(&sev_out, &sev_in);
        for a in proscribes.values().flatten() {
            depth.entry(a).or_insert(0);
        }
        Tables {
            implies_model,
            implied_by_model,
            proscribes,
            proscribed_by,
            implies,
            implied_by,
            all_models,
            depth,
        }
    })
}

/// Every vertex reachable from `start` (itself included) along `g`.
fn reach<'a>(
    g: &Graph,
    start: impl IntoIterator<Item = &'a &'static str>,
) -> BTreeSet<&'static str> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<&'static str> = start.into_iter().copied().collect();
    while let Some(v) = todo.pop() {
        if seen.insert(v) {
            todo.extend(g.get(v).into_iter().flatten().copied());
        }
    }
    seen
}

/// A model name as Elle knows it (any friendly or canonical name), or
/// `None` for a name Elle would refuse.
pub fn known(name: &str) -> Option<&'static str> {
    tables().all_models.get(name).copied()
}

/// The canonical name of a known model (`serializable` -> `PL-3`).
pub fn canonical(model: &'static str) -> &'static str {
    canonical_static(model)
}

/// The name results print: `PL-3` is `serializable`, `PL-SS`
/// `strict-serializable` (Maelstrom's published output), other canonical
/// names their friendly alias, anything else itself.
pub fn friendly(model: &'static str) -> &'static str {
    match model {
        "PL-3" => "serializable",
        "PL-SS" => "strict-serializable",
        m => CANONICAL
            .iter()
            .find(|(_, c)| *c == m)
            .map_or(m, |(f, _)| f),
    }
}

/// Splits `--consistency-models` as Maelstrom does: on a comma with
/// whitespace on both sides only (maelstrom-spec-more.md 9, quirk 12).
pub fn split_models(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b',' {
            let before = text[start..i].trim_end_matches(char::is_whitespace);
            let after = text[i + 1..].trim_start_matches(char::is_whitespace);
            let spaced_before = before.len() < i - start;
            let spaced_after = after.len() < text.len() - i - 1;
            if spaced_before && spaced_after && !after.is_empty() {
                out.push(before);
                start = text.len() - after.len();
                i = start;
                continue;
            }
        }
        i += 1;
    }
    out.push(&text[start..]);
    out
}

/// The anomalies that would break any of `models` (Elle's
/// `anomalies-prohibited-by`): every model they imply, what those proscribe,
/// and every anomaly implying one of those.
pub fn prohibited_by(models: &[&'static str]) -> BTreeSet<&'static str> {
    let t = tables();
    let canon: Vec<&'static str> = models.iter().map(|m| canonical(m)).collect();
    let implied = reach(&t.implies_model, &canon);
    let direct: Vec<&'static str> = implied
        .iter()
        .flat_map(|m| t.proscribes.get(m).into_iter().flatten().copied())
        .collect();
    reach(&t.implied_by, &direct)
}

/// Anomalies implied by any of `anomalies`, themselves included.
pub fn implied_anomalies(anomalies: &[&'static str]) -> BTreeSet<&'static str> {
    reach(&tables().implies, anomalies)
}

/// Models that cannot hold given `impossible` cannot (every model
/// implying one of them), themselves included.
pub fn impossible_models_from(impossible: &[&'static str]) -> BTreeSet<&'static str> {
    let canon: Vec<&'static str> = impossible.iter().map(|m| canonical(m)).collect();
    reach(&tables().implied_by_model, &canon)
}

/// Models ruled out by the presence of `anomalies` (Elle's
/// `anomalies->impossible-models`).
pub fn impossible_models(anomalies: &[&'static str]) -> BTreeSet<&'static str> {
    let t = tables();
    let direct: Vec<&'static str> = implied_anomalies(anomalies)
        .iter()
        .flat_map(|a| t.proscribed_by.get(a).into_iter().flatten().copied())
        .collect();
    impossible_models_from(&direct)
}

/// The models of `ms` that imply none of the others.
fn weakest(ms: &BTreeSet<&'static str>) -> BTreeSet<&'static str> {
    let t = tables();
    let mut left = ms.clone();
    for m in ms {
        left.remove(m);
        let below = reach(&t.implies_model, [m]);
        if !below.iter().any(|b| left.contains(b)) {
            left.insert(m);
        }
    }
    left
}

/// Elle's `friendly-boundary`: the weakest models `anomalies` rule out
/// (`:not`) and the other models they rule out (`:also-not`).
pub fn boundary(anomalies: &[&'static str]) -> (BTreeSet<&'static str>, BTreeSet<&'static str>) {
    let impossible = impossible_models(anomalies);
    let not = weakest(&impossible);
    let also: BTreeSet<&'static str> = impossible.difference(&not).map(|m| friendly(m)).collect();
    (not.iter().map(|m| friendly(m)).collect(), also)
}

/// An anomaly's depth in Elle's implication-and-severity order (0 for
/// roots; unknown names sort first, as in Elle).
pub fn depth(anomaly: &str) -> usize {
    tables().depth.get(anomaly).copied().unwrap_or(0)
}

/// Every model name Elle accepts, sorted (for the unknown-model error).
pub fn all_models() -> impl Iterator<Item = &'static str> {
    tables().all_models.iter().copied()
}

/// The static name of a known anomaly or model (results use `&'static str`).
pub fn anomaly_name(name: &str) -> Option<&'static str> {
    let t = tables();
    t.implies
        .get_key_value(name)
        .or_else(|| t.proscribed_by.get_key_value(name))
        .map(|(k, _)| *k)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(xs: &[&'static str]) -> BTreeSet<&'static str> {
        xs.iter().copied().collect()
    }

    fn prohibited(model: &'static str) -> BTreeSet<&'static str> {
        prohibited_by(&[model])
    }

    // maelstrom-spec-more.md 4.4, the table of the usual models.
    #[test]
    fn read_uncommitted_and_read_committed_prohibit_what_the_spec_lists() {
        assert_eq!(
            prohibited("read-uncommitted"),
            set(&[
                "G0",
                "duplicate-elements",
                "cyclic-versions",
                "PL-1-cycle-exists"
            ])
        );
        let rc = prohibited("read-committed");
        let mut want = prohibited("read-uncommitted");
        want.extend([
            "G1",
            "G1a",
            "G1b",
            "G1c",
            "dirty-update",
            "incompatible-order",
            "future-read",
            "PL-2-cycle-exists",
        ]);
        assert_eq!(rc, want);
        assert!(!rc.contains("internal"), "internal is not read-committed's");
    }

    #[test]
    fn repeatable_read_and_snapshot_isolation_extend_read_committed() {
        let rc = prohibited("read-committed");
        let mut rr = rc.clone();
        rr.extend([
            "G-single-item",
            "G-nonadjacent-item",
            "G2-item",
            "lost-update",
            "G-cursor",
            "PL-2.99-cycle-exists",
        ]);
        assert_eq!(prohibited("repeatable-read"), rr);
        let mut si = rc.clone();
        si.extend([
            "internal",
            "lost-update",
            "G-single",
            "G-single-item",
            "G-nonadjacent",
            "G-nonadjacent-item",
            "G-SI",
            "G-SIb",
            "G-cursor",
            "G-MSR",
            "G-monotonic",
            "PL-SI-cycle-exists",
        ]);
        let got = prohibited("snapshot-isolation");
        assert_eq!(got, si);
        assert!(!got.contains("G2-item"));
    }

    #[test]
    fn serializable_and_strict_serializable() {
        let mut ser = prohibited("snapshot-isolation");
        ser.extend([
            "G2",
            "G2-item",
            "write-skew",
            "G-update",
            "predicate-read-miss",
            "PL-2.99-cycle-exists",
            "PL-3-cycle-exists",
        ]);
        assert_eq!(prohibited("serializable"), ser);
        let strict = prohibited("strict-serializable");
        assert!(strict.is_superset(&ser));
        for base in [
            "G0",
            "G1",
            "G1c",
            "G-single",
            "G-single-item",
            "G-nonadjacent",
            "G-nonadjacent-item",
            "G2",
            "G2-item",
        ] {
            for v in ["process", "realtime"] {
                let name = format!("{base}-{v}");
                assert!(strict.contains(name.as_str()), "{name}");
            }
        }
        for exists in [
            "PL-SS",
            "strong-PL-1",
            "strong-PL-2",
            "strong-session-PL-1",
            "strong-session-PL-2",
            "strong-session-snapshot-isolation",
            "strong-session-serializable",
            "strong-snapshot-isolation",
        ] {
            let name = format!("{exists}-cycle-exists");
            assert!(strict.contains(name.as_str()), "{name}");
        }
        // Exactly the variants and the existence checks are added.
        let extra: Vec<&str> = strict.difference(&ser).copied().collect();
        assert_eq!(extra.len(), 18 + 8, "{extra:?}");
    }

    // maelstrom-spec-more.md 4.5, the boundary examples.
    #[test]
    fn boundaries_name_the_weakest_models_broken() {
        let b = |xs: &[&'static str]| boundary(xs);
        assert_eq!(b(&["internal"]).0, set(&["read-atomic"]));
        for a in ["G1c", "G1a", "incompatible-order"] {
            assert_eq!(b(&[a]).0, set(&["read-committed"]), "{a}");
        }
        assert_eq!(b(&["G0"]).0, set(&["read-uncommitted"]));
        assert_eq!(
            b(&["G2-item"]),
            (
                set(&["repeatable-read"]),
                set(&[
                    "serializable",
                    "strict-serializable",
                    "strong-session-serializable"
                ])
            )
        );
        assert_eq!(
            b(&["lost-update"]).0,
            set(&["cursor-stability", "update-atomic"])
        );
        assert_eq!(
            b(&["G-single-item-realtime"]),
            (
                set(&["strong-snapshot-isolation"]),
                set(&["strict-serializable"])
            )
        );
    }

    #[test]
    fn names_split_only_on_a_comma_with_spaces_around_it() {
        assert_eq!(split_models("serializable"), ["serializable"]);
        assert_eq!(
            split_models("read-committed , serializable"),
            ["read-committed", "serializable"]
        );
        assert_eq!(split_models("a,b"), ["a,b"]);
        assert_eq!(split_models("a ,b"), ["a ,b"]);
        assert_eq!(split_models("a, b"), ["a, b"]);
        assert_eq!(split_models("a  ,\tb , c"), ["a", "b", "c"]);
        assert!(known("a,b").is_none());
        assert_eq!(known("strict-serializable"), Some("strict-serializable"));
        assert_eq!(known("PL-2"), Some("PL-2"));
        assert_eq!(known("1SR"), Some("1SR"));
        assert!(known("linearisable").is_none());
    }

    #[test]
    fn severity_puts_data_cycles_before_process_before_realtime() {
        let order = |a: &str, b: &str| assert!(depth(a) < depth(b), "{a} before {b}");
        order("G0", "G1c");
        order("G-single-item", "G-nonadjacent-item");
        order("G1c", "G2-item");
        order("G2-item", "G0-process");
        order("G2-process", "G0-realtime");
        order("G1c-process", "G1c-realtime");
    }
}
