//! The numbers behind the pictures, taken from the history and the
//! network record: pure functions, tested without drawing anything.

use crate::checker::set_full::sorted_ranges;
use crate::config::TestConfig;
use crate::history::{History, OpType, Process};
use crate::net::NetRecord;
use crate::net::record::{BUCKET_NS, cut};
use std::collections::BTreeMap;

/// One completed op: when it was invoked and how long it took.
#[derive(Clone, Debug, PartialEq)]
pub struct Completed {
    pub f: &'static str,
    pub kind: OpType,
    pub process: u64,
    pub start_s: f64,
    pub end_s: f64,
    /// The op's line in history.txt, for hover text.
    pub text: String,
}

impl Completed {
    pub fn latency_ms(&self) -> f64 {
        // Whole nanoseconds again, so equal latencies compare equal.
        ((self.end_s - self.start_s) * 1e9).round() / 1e6
    }
}

/// Every client op that completed, in completion order.
pub fn completed(h: &History) -> Vec<Completed> {
    h.client_ops()
        .filter(|o| o.kind != OpType::Invoke)
        .filter_map(|done| {
            let inv = h.get(done.invocation?)?;
            let Process::Client(process) = done.process else {
                return None;
            };
            Some(Completed {
                f: done.f,
                kind: done.kind,
                process,
                start_s: inv.time as f64 / 1e9,
                end_s: done.time as f64 / 1e9,
                text: cut(&format!("{}  ->  {}", inv.txt_line(), done.txt_line()), 240),
            })
        })
        .collect()
}

/// A fault the plots shade.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Partition,
    Pause,
    Kill,
}

/// The intervals (seconds) during which a partition, a pause or a kill was in
/// force, as Jepsen shades them: from the op that started it to the one that
/// undid it (or the end of the history).
pub fn faults(h: &History) -> Vec<(f64, f64, Fault)> {
    let mut out = Vec::new();
    let mut open: [Option<f64>; 3] = [None; 3];
    for o in h.ops().iter().filter(|o| o.process == Process::Nemesis) {
        // The completion (it has an invocation) is when the fault took effect.
        if o.invocation.is_none() {
            continue;
        }
        let t = o.time as f64 / 1e9;
        let (fault, starts) = match o.f {
            "start-partition" => (Fault::Partition, true),
            "stop-partition" => (Fault::Partition, false),
            "pause" => (Fault::Pause, true),
            "resume" => (Fault::Pause, false),
            "kill" => (Fault::Kill, true),
            "start" => (Fault::Kill, false),
            _ => continue,
        };
        let slot = &mut open[fault as usize];
        match (starts, *slot) {
            (true, None) => *slot = Some(t),
            (false, Some(a)) => {
                out.push((a, t, fault));
                *slot = None;
            }
            _ => {}
        }
    }
    let end = h.ops().last().map_or(0.0, |o| o.time as f64 / 1e9);
    for (fault, slot) in [Fault::Partition, Fault::Pause, Fault::Kill]
        .into_iter()
        .zip(open)
    {
        if let Some(a) = slot {
            out.push((a, end.max(a), fault));
        }
    }
    out
}

/// The window of the rate and quantile plots: about 100 windows per run,
/// at least a second each.
pub fn window_s(end_s: f64) -> f64 {
    (end_s / 100.0).max(1.0)
}

/// Ops per second in each window, by (f, outcome).
pub fn rates(
    ops: &[Completed],
    dt: f64,
) -> BTreeMap<(&'static str, &'static str), Vec<(f64, f64)>> {
    let end = ops.iter().map(|o| o.end_s).fold(0.0, f64::max);
    let n = (end / dt).floor() as usize + 1;
    let mut out: BTreeMap<_, Vec<f64>> = BTreeMap::new();
    for o in ops {
        let w = ((o.end_s / dt).floor() as usize).min(n - 1);
        out.entry((o.f, o.kind.name()))
            .or_insert_with(|| vec![0.0; n])[w] += 1.0;
    }
    out.into_iter()
        .map(|(k, counts)| {
            let pts = counts
                .iter()
                .enumerate()
                .map(|(i, c)| ((i as f64 + 0.5) * dt, c / dt))
                .collect();
            (k, pts)
        })
        .collect()
}

/// Latency quantiles of ok ops in each window, by (f, quantile).
pub fn quantiles(
    ops: &[Completed],
    dt: f64,
) -> BTreeMap<(&'static str, &'static str), Vec<(f64, f64)>> {
    let mut by: BTreeMap<(&'static str, usize), Vec<f64>> = BTreeMap::new();
    for o in ops.iter().filter(|o| o.kind == OpType::Ok) {
        let w = (o.start_s / dt).floor() as usize;
        by.entry((o.f, w)).or_default().push(o.latency_ms());
    }
    let mut out: BTreeMap<_, Vec<(f64, f64)>> = BTreeMap::new();
    for ((f, w), mut v) in by {
        v.sort_by(f64::total_cmp);
        let t = (w as f64 + 0.5) * dt;
        for (name, q) in [("0.5", 0.5), ("0.95", 0.95), ("0.99", 0.99), ("1", 1.0)] {
            let i = ((v.len() as f64 * q).floor() as usize).min(v.len() - 1);
            out.entry((f, name)).or_default().push((t, v[i]));
        }
    }
    out
}

/// Server messages per second sent by each node, over history time.
pub fn node_rates(rec: &NetRecord, nodes: usize, origin_ns: u64) -> Vec<Vec<(f64, f64)>> {
    let mut out = vec![Vec::new(); nodes];
    let origin = origin_ns as f64 / 1e9;
    let mut keys: Vec<_> = rec.sends.iter().collect();
    keys.sort();
    for (&(src, bucket), &n) in keys {
        if let Some(v) = out.get_mut(src as usize) {
            let t = (bucket * BUCKET_NS) as f64 / 1e9 - origin + 0.5;
            v.push((t, f64::from(n)));
        }
    }
    out
}

/// Convergence of broadcast values: for each value (at most `max_values`,
/// spread evenly), the seconds after its broadcast was acknowledged at
/// which each node's reads first included it (`None`: never).
pub fn first_seen(h: &History, cfg: &TestConfig, max_values: usize) -> Vec<Vec<Option<f64>>> {
    let n = cfg.nodes.len();
    let mut accepted: Vec<(i64, f64)> = Vec::new();
    let Some(add_f) = cfg.workload.set_add() else {
        return Vec::new();
    };
    for o in h
        .client_ops()
        .filter(|o| o.kind == OpType::Ok && o.f == add_f)
    {
        if let crate::edn::Edn::Int(v) = o.value {
            accepted.push((v, o.time as f64 / 1e9));
        }
    }
    if accepted.is_empty() || n == 0 {
        return Vec::new();
    }
    let step = accepted.len().div_ceil(max_values.max(1));
    let sample: Vec<(i64, f64)> = accepted.into_iter().step_by(step.max(1)).collect();
    let mut seen = vec![vec![None; n]; sample.len()];
    for o in h
        .client_ops()
        .filter(|o| o.kind == OpType::Ok && o.f == "read")
    {
        let Process::Client(p) = o.process else {
            continue;
        };
        let node = cfg.node_of_process(p);
        let t = o.time as f64 / 1e9;
        let ranges = sorted_ranges(&o.value);
        for (i, &(v, at)) in sample.iter().enumerate() {
            if seen[i][node].is_some() {
                continue;
            }
            let k = ranges.partition_point(|&(_, hi)| hi < v);
            if ranges.get(k).is_some_and(|&(lo, _)| lo <= v) {
                seen[i][node] = Some((t - at).max(0.0));
            }
        }
    }
    seen
}

/// From `first_seen`: the share of nodes holding a value `x` seconds after
/// it was accepted, as (x, median across values, worst value) at `points`
/// evenly spaced x.
pub fn convergence(seen: &[Vec<Option<f64>>], points: usize) -> Vec<(f64, f64, f64)> {
    let horizon = seen
        .iter()
        .flatten()
        .flatten()
        .copied()
        .fold(0.0, f64::max)
        .max(0.001);
    (0..=points)
        .map(|i| {
            let x = horizon * i as f64 / points as f64;
            let mut shares: Vec<f64> = seen
                .iter()
                .map(|nodes| {
                    let have = nodes.iter().filter(|s| s.is_some_and(|s| s <= x)).count();
                    have as f64 / nodes.len().max(1) as f64
                })
                .collect();
            shares.sort_by(f64::total_cmp);
            let median = shares.get(shares.len() / 2).copied().unwrap_or(0.0);
            let worst = shares.first().copied().unwrap_or(0.0);
            (x, median, worst)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edn::Edn;
    use crate::history::Op;

    fn op(
        time_ms: u64,
        kind: OpType,
        process: Process,
        f: &'static str,
        value: Edn,
        inv: Option<usize>,
    ) -> Op {
        Op {
            index: 0,
            time: time_ms * 1_000_000,
            kind,
            process,
            f,
            value,
            error: None,
            final_: false,
            exception: None,
            invocation: inv,
        }
    }

    fn history() -> History {
        let mut h = History::default();
        let c = Process::Client;
        let b = h.push(op(0, OpType::Invoke, c(0), "broadcast", Edn::Int(7), None));
        h.push(op(100, OpType::Ok, c(0), "broadcast", Edn::Int(7), Some(b)));
        let s = h.push(op(
            150,
            OpType::Info,
            Process::Nemesis,
            "start-partition",
            Edn::Nil,
            None,
        ));
        h.push(op(
            150,
            OpType::Info,
            Process::Nemesis,
            "start-partition",
            Edn::Nil,
            Some(s),
        ));
        let r = h.push(op(300, OpType::Invoke, c(0), "read", Edn::Nil, None));
        h.push(op(
            310,
            OpType::Ok,
            c(0),
            "read",
            Edn::Vector(vec![Edn::Int(7)]),
            Some(r),
        ));
        let r = h.push(op(400, OpType::Invoke, c(1), "read", Edn::Nil, None));
        h.push(op(
            410,
            OpType::Ok,
            c(1),
            "read",
            Edn::Vector(vec![]),
            Some(r),
        ));
        let s = h.push(op(
            500,
            OpType::Info,
            Process::Nemesis,
            "stop-partition",
            Edn::Nil,
            None,
        ));
        h.push(op(
            500,
            OpType::Info,
            Process::Nemesis,
            "stop-partition",
            Edn::Nil,
            Some(s),
        ));
        let r = h.push(op(1100, OpType::Invoke, c(1), "read", Edn::Nil, None));
        h.push(op(
            1120,
            OpType::Ok,
            c(1),
            "read",
            Edn::Vector(vec![Edn::Int(7)]),
            Some(r),
        ));
        h
    }

    #[test]
    fn pauses_and_kills_are_shaded_until_undone_or_the_end() {
        let mut h = history();
        let mut pair = |ms: u64, f: &'static str| {
            let i = h.push(op(ms, OpType::Info, Process::Nemesis, f, Edn::Nil, None));
            h.push(op(ms, OpType::Info, Process::Nemesis, f, Edn::Nil, Some(i)));
        };
        pair(600, "pause");
        pair(700, "kill");
        pair(800, "resume");
        pair(900, "kill");
        pair(1000, "start");
        let f = faults(&h);
        assert!(f.contains(&(0.15, 0.5, Fault::Partition)), "{f:?}");
        assert!(f.contains(&(0.6, 0.8, Fault::Pause)), "{f:?}");
        // A second kill before the start does not reopen the interval.
        assert!(f.contains(&(0.7, 1.0, Fault::Kill)), "{f:?}");
        assert_eq!(f.len(), 3);
    }

    #[test]
    fn ops_partitions_and_rates_come_from_the_history() {
        let h = history();
        let ops = completed(&h);
        assert_eq!(ops.len(), 4);
        assert!((ops[0].latency_ms() - 100.0).abs() < 1e-9);
        assert_eq!(faults(&h), vec![(0.15, 0.5, Fault::Partition)]);
        let r = rates(&ops, 1.0);
        assert_eq!(r[&("read", "ok")], vec![(0.5, 2.0), (1.5, 1.0)]);
        let q = quantiles(&ops, 1.0);
        assert_eq!(q[&("read", "1")], vec![(0.5, 10.0), (1.5, 20.0)]);
    }

    #[test]
    fn convergence_follows_each_nodes_first_read_of_a_value() {
        let h = history();
        let mut cfg = TestConfig::new(
            crate::workload::WorkloadKind::Broadcast,
            "x".into(),
            vec![],
            TestConfig::node_names(2),
            1,
        );
        cfg.concurrency = 2;
        let seen = first_seen(&h, &cfg, 10);
        // Node 0 read it 210 ms after acceptance, node 1 1020 ms after.
        assert_eq!(seen.len(), 1);
        assert!((seen[0][0].unwrap() - 0.21).abs() < 1e-9);
        assert!((seen[0][1].unwrap() - 1.02).abs() < 1e-9);
        let c = convergence(&seen, 2);
        assert_eq!(c[0].1, 0.0);
        assert_eq!(c[1].1, 0.5);
        assert_eq!(c[2], (1.02, 1.0, 1.0));
    }
}
