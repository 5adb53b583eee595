//! When every node read the value it ends with, from the convergence
//! probes (see `runner::probe`): the figure behind "the final counter value
//! is read by every node within 1 s of the last add".

use crate::edn::Edn;
use crate::history::{OpType, Process};
use crate::runner::{ProbeRead, RunResult};
use serde_json::{Value, json};

/// `None` when the run had no probes. `nodes`: how many nodes the test
/// ran (a node that never answered leaves the run unconverged).
pub fn measure(run: &RunResult, nodes: usize) -> Option<Value> {
    if run.probes.is_empty() {
        return None;
    }
    // The reference: the later of the last update's invocation and the
    // last heal. Updates are the client ops that are not reads.
    let ops = run.history.ops();
    let last_update = ops
        .iter()
        .filter(|o| {
            matches!(o.process, Process::Client(_)) && o.kind == OpType::Invoke && o.f != "read"
        })
        .map(|o| o.time)
        .max()
        .unwrap_or(0);
    let last_heal = ops
        .iter()
        .filter(|o| o.process == Process::Nemesis && o.f == "stop-partition")
        .map(|o| o.time)
        .max()
        .unwrap_or(0);
    let from = last_update.max(last_heal);
    let mut per_node: Vec<Vec<&ProbeRead>> = vec![Vec::new(); nodes];
    for p in &run.probes {
        if p.node < nodes {
            per_node[p.node].push(p);
        }
    }
    let last: Vec<Option<&Edn>> = per_node
        .iter()
        .map(|v| v.last().map(|p| &p.value))
        .collect();
    let agreed = last
        .first()
        .copied()
        .flatten()
        .filter(|v| last.iter().all(|l| l == &Some(*v)));
    // Per node: its last change, if that was to the agreed value (only
    // changes are kept, so from then on it read nothing else).
    let settled: Vec<Option<u64>> = per_node
        .iter()
        .map(|reads| {
            let v = agreed?;
            reads.last().filter(|p| &p.value == v).map(|p| p.time_ns)
        })
        .collect();
    let silent = per_node.iter().filter(|r| r.is_empty()).count();
    let ms = |t: u64| (t.saturating_sub(from) as f64 / 1e6).round() as i64;
    let all = settled
        .iter()
        .copied()
        .collect::<Option<Vec<u64>>>()
        .and_then(|v| v.into_iter().max());
    Some(json!({
        "converged": all.is_some(),
        "after-last-update-ms": all.map(ms),
        "per-node-ms": settled.iter().map(|s| s.map(ms)).collect::<Vec<_>>(),
        "from": if last_heal > last_update { "heal" } else { "last update" },
        "probe-reads": run.probe_answers,
        "nodes-never-answering": silent,
        // Sets can be large: their value is left out.
        "final-value": agreed.map(Edn::compact).filter(|s| s.len() <= 200),
    }))
}
