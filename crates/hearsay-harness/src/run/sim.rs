//! The virtual-time executor: runs in-process nodes against the same
//! [`TestRun`] as the process executor, jumping from deadline to deadline.
//! Node handling takes no virtual time. The same seed gives the same run.
//! Node timers are the simulation core's ([`hearsay_core::simnet`]); the
//! network is Maelstrom's own ([`crate::net`]: per-destination queues),
//! which a faithful harness must keep.

use crate::config::TestConfig;
use crate::net::Journal;
use crate::runner::{Action, RunResult, TestRun};
use crate::wire::parse_node_line;
use hearsay_core::simnet::Timers;

/// A node the simulator can run: JSON lines in, JSON lines out, like a
/// process, but called directly. Times are nanoseconds of virtual time.
pub trait SimNode {
    /// One line from the network; push any output lines to `out`.
    fn on_line(&mut self, now: u64, line: &str, out: &mut Vec<String>);
    /// Timers: called at (or after) `next_deadline`.
    fn on_tick(&mut self, now: u64, out: &mut Vec<String>);
    fn next_deadline(&self) -> Option<u64>;
    /// The node names this node sends to, if it can say (drawn as the
    /// overlay graph of the run).
    fn overlay(&self) -> Option<Vec<String>> {
        None
    }
}

/// Upper bound on loop iterations at a single instant, so a node that keeps
/// answering itself cannot hang the simulation.
const MAX_STEPS_PER_INSTANT: usize = 10_000_000;

pub fn run(cfg: TestConfig, nodes: Vec<Box<dyn SimNode>>, journal: Journal) -> RunResult {
    let run = TestRun::new(cfg, journal);
    run_test(run, nodes, None)
}

/// Makes node `i` afresh for its `k`-th restart after a kill (k = 1, 2,
/// ...): empty state, its own randomness.
pub type Restart<'a> = &'a mut dyn FnMut(usize, u32) -> Box<dyn SimNode>;

/// Runs a test built by the caller (say, with its own workload). Without
/// `restart`, a run that kills nodes aborts when it would start them.
pub fn run_test(
    mut run: TestRun,
    mut nodes: Vec<Box<dyn SimNode>>,
    mut restart: Option<Restart<'_>>,
) -> RunResult {
    assert_eq!(
        nodes.len(),
        run.config().nodes.len(),
        "one SimNode per node"
    );
    let mut timers = Timers::new(nodes.len());
    // A paused node's input waits here, and its timers are off.
    let mut paused: Vec<Option<Vec<String>>> = vec![None; nodes.len()];
    let mut restarts = vec![0u32; nodes.len()];
    let mut now = 0u64;
    let mut out = Vec::new();
    run.start(now);
    loop {
        let mut steps = 0;
        loop {
            let actions: Vec<Action> = run.drain_actions().collect();
            if actions.is_empty() {
                break;
            }
            for action in actions {
                let (node, lines) = match action {
                    Action::Deliver { node, line } => match paused[node].as_mut() {
                        Some(backlog) => {
                            backlog.push(line);
                            continue;
                        }
                        None => (node, vec![line]),
                    },
                    Action::Pause { node } => {
                        paused[node].get_or_insert_with(Vec::new);
                        timers.set(node, None);
                        continue;
                    }
                    // The backlog arrives at once; stalled timers fire late.
                    Action::Resume { node } => (node, paused[node].take().unwrap_or_default()),
                    // The runner sends a killed node nothing; its timers stop.
                    Action::Kill { node } => {
                        paused[node] = None;
                        timers.set(node, None);
                        continue;
                    }
                    Action::Start { node } => {
                        let Some(make) = restart.as_mut() else {
                            run.abort("this simulation cannot start killed nodes again".into());
                            break;
                        };
                        restarts[node] += 1;
                        nodes[node] = make(node, restarts[node]);
                        (node, vec![])
                    }
                };
                for line in lines {
                    nodes[node].on_line(now, &line, &mut out);
                    for l in out.drain(..) {
                        run.on_node_line(now, node, parse_node_line(&l));
                    }
                    steps += 1;
                }
                timers.set(node, nodes[node].next_deadline());
            }
            if steps > MAX_STEPS_PER_INSTANT {
                run.abort(format!(
                    "nodes exchanged over {MAX_STEPS_PER_INSTANT} messages at one instant"
                ));
                break;
            }
        }
        if run.is_finished() {
            break;
        }
        let Some(next) = [run.next_deadline(), timers.next()]
            .into_iter()
            .flatten()
            .min()
        else {
            run.abort("the simulation has nothing left to do but the test is not finished".into());
            break;
        };
        now = now.max(next);
        while let Some(i) = timers.pop_due(now) {
            nodes[i].on_tick(now, &mut out);
            timers.set(i, nodes[i].next_deadline());
            for l in out.drain(..) {
                run.on_node_line(now, i, parse_node_line(&l));
            }
        }
        run.advance(now);
    }
    let overlay: Option<Vec<Vec<String>>> = nodes.iter().map(|n| n.overlay()).collect();
    RunResult {
        executor: "sim",
        overlay,
        ..run.finish()
    }
}
