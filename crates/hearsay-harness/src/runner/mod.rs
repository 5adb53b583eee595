//! The test as a sans-IO state machine (Maelstrom section 4.0): init every
//! node, set up clients, run the generator with the nemesis for the time
//! limit, heal, wait for recovery, run the final ops, tear down.
//!
//! Inputs are node output lines, node exits and the time (nanoseconds from
//! an origin the executor picks). Outputs are lines to deliver to nodes.
//! Everything random comes from the seed in the config, so a virtual-time
//! executor replays a run exactly.

mod calls;
mod probe;
mod rpc;
pub mod schedule;

use crate::config::{INIT_TIMEOUT, RPC_TIMEOUT, TestConfig};
use crate::edn::{Edn, kw};
use crate::history::{History, Op, OpType, Process};
use crate::nemesis::{self, Shape};
use crate::net::{Addr, Envelope, Journal, NetStats, Network};
use crate::wire::{LineError, NodeLine, envelope_line};
use crate::workload::{self, Ctx, OpSpec, Workload};
use calls::{Call, Purpose};
use hearsay_core::rng::{self, Rng};
pub use probe::ProbeRead;
use rpc::{Reply, Rpcs};
use schedule::{Due, Next, Schedule};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Something the executor must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write `line` (plus a newline) to node `node`'s stdin.
    Deliver { node: usize, line: String },
    /// Stop node `node` (SIGSTOP): it keeps its state and its input, and
    /// runs nothing, timers included, until resumed.
    Pause { node: usize },
    /// Let a paused node run again (SIGCONT); a running node ignores it.
    Resume { node: usize },
    /// Kill node `node` (SIGKILL): its state is gone. Its exit is the
    /// nemesis's doing, not a crash.
    Kill { node: usize },
    /// Start a killed node again as a new, empty process; `init` follows
    /// as an ordinary delivery.
    Start { node: usize },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    Init,
    Setup,
    Main,
    Drain,
    Recovery { until: u64 },
    Final,
    Done,
    Aborted(String),
}

impl Phase {
    pub fn name(&self) -> &'static str {
        match self {
            Phase::Init => "init",
            Phase::Setup => "setup",
            Phase::Main => "main",
            Phase::Drain => "draining",
            Phase::Recovery { .. } => "recovery",
            Phase::Final => "final reads",
            Phase::Done => "done",
            Phase::Aborted(_) => "aborted",
        }
    }
}

/// A problem with a node that did not stop the test by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub time_ns: u64,
    pub node: String,
    pub text: String,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct OpCounts {
    pub invoked: u64,
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
}

/// A snapshot for progress displays.
#[derive(Debug, Clone)]
pub struct Progress {
    pub phase: &'static str,
    /// Seconds since client setup began (the history clock).
    pub elapsed_s: f64,
    pub ops: OpCounts,
    pub net: NetStats,
    pub partition: Option<&'static str>,
    /// Nodes paused by the nemesis right now.
    pub paused: usize,
    /// Nodes killed by the nemesis and not started yet.
    pub killed: usize,
}

/// What a finished (or aborted) run leaves for analysis.
#[derive(Debug)]
pub struct RunResult {
    pub history: History,
    pub net: NetStats,
    pub aborted: Option<String>,
    pub warnings: Vec<Warning>,
    /// How late each main-phase client op was issued against its schedule.
    pub lag_ns: Vec<u64>,
    pub dropped_by_partitions: u64,
    /// Server-to-server messages sent by each node.
    pub sent_by: Vec<u64>,
    /// When the last op completed (ns since client setup): the length of the
    /// busy part of the run.
    pub last_op_ns: u64,
    /// `process` or `sim`.
    pub executor: &'static str,
    /// For the pictures: what the network saw, the names of its addresses,
    /// and the executor time at which history time 0 began.
    pub record: crate::net::NetRecord,
    pub names: Vec<String>,
    pub origin_ns: u64,
    /// Under `--sim`, the peers each node says it sends to at the end.
    pub overlay: Option<Vec<Vec<String>>>,
    /// Convergence probe answers where a node's value changed, when
    /// `TestConfig::probe` asked for them, and how many answers came in all.
    pub probes: Vec<ProbeRead>,
    pub probe_answers: u64,
    /// How much of the message journal was written.
    pub journal: crate::net::JournalSize,
}

struct Worker {
    node: usize,
    process: u64,
    /// The open client and the process it was opened for.
    client: Option<(Addr, u64, Box<dyn workload::Client>)>,
}

impl Worker {
    fn ctx(&self, thread: usize, time_ns: u64) -> Ctx {
        Ctx {
            thread,
            process: self.process,
            time_ns,
        }
    }
}

pub struct TestRun {
    cfg: TestConfig,
    workload: Workload,
    net: Network,
    history: History,
    phase: Phase,
    /// History times are relative to this (the start of client setup).
    origin: u64,
    rpcs: Rpcs,
    probe: Option<probe::Probe>,
    /// When probing starts: a second before the main phase ends, so reads
    /// are already arriving when the last updates spread.
    probe_from: Option<u64>,
    pending_setup: usize,
    setup_clients: Vec<Addr>,
    workers: Vec<Worker>,
    sched: Option<Schedule>,
    wake: Option<u64>,
    rng_ops: Rng,
    rng_sched: Rng,
    rng_nemesis: Rng,
    partition: Option<Shape>,
    /// Nodes the pause nemesis has stopped.
    paused: Vec<bool>,
    /// The pause alternation's phase: true when its next op pauses.
    pause_next: bool,
    /// Nodes the kill nemesis has killed and not started again.
    killed: Vec<bool>,
    /// The kill alternation's phase: true when its next op kills.
    kill_next: bool,
    /// Per node, the first message id its current process may receive:
    /// what was queued for it before a restart is discarded.
    fresh_from: Vec<u64>,
    stdout_dead: Vec<bool>,
    /// Maelstrom's services, by address.
    services: HashMap<Addr, crate::service::Service>,
    rng_services: Rng,
    actions: Vec<Action>,
    warnings: Vec<Warning>,
    lag_ns: Vec<u64>,
    counts: OpCounts,
    /// The workload's client timeout at this latency.
    op_timeout_ns: u64,
    /// Per worker, its next final-phase op and when it is due.
    final_next: Vec<Option<(u64, OpSpec)>>,
    /// `init`'s `node_ids`, the same for every node and restart.
    node_ids: Value,
    /// No final op starts after this (the workload's final limit).
    final_until: Option<u64>,
}

impl TestRun {
    pub fn new(cfg: TestConfig, journal: Journal) -> Self {
        let workload = cfg.workload.build(&cfg.nodes, cfg.topology);
        TestRun::with_workload(cfg, journal, workload)
    }

    /// A test of any workload (one not in [`crate::workload::WorkloadKind`]
    /// plugs in here); `cfg.workload` then only names the results.
    pub fn with_workload(cfg: TestConfig, journal: Journal, workload: Workload) -> Self {
        let seed = cfg.seed;
        let mut net = Network::new(&cfg.nodes, cfg.latency, rng::child(seed, "net"), journal);
        let services = crate::service::NAMES
            .iter()
            .filter_map(|n| Some((net.add_service(n), crate::service::Service::new(n)?)))
            .collect();
        let op_timeout_ns = workload.timeout.for_latency(cfg.latency.mean_ms).as_nanos() as u64;
        let node_ids = cfg.nodes.iter().map(|n| Value::from(n.as_str())).collect();
        TestRun {
            op_timeout_ns,
            node_ids,
            final_next: vec![None; cfg.concurrency],
            final_until: None,
            stdout_dead: vec![false; cfg.nodes.len()],
            paused: vec![false; cfg.nodes.len()],
            pause_next: true,
            killed: vec![false; cfg.nodes.len()],
            kill_next: true,
            fresh_from: vec![0; cfg.nodes.len()],
            services,
            rng_services: rng::child(seed, "services"),
            workload,
            net,
            history: History::default(),
            phase: Phase::Init,
            origin: 0,
            rpcs: Rpcs::default(),
            probe: None,
            probe_from: None,
            pending_setup: 0,
            setup_clients: Vec::new(),
            workers: Vec::new(),
            sched: None,
            wake: None,
            rng_ops: rng::child(seed, "ops"),
            rng_sched: rng::child(seed, "stagger"),
            rng_nemesis: rng::child(seed, "nemesis"),
            partition: None,
            actions: Vec::new(),
            warnings: Vec::new(),
            lag_ns: Vec::new(),
            counts: OpCounts::default(),
            cfg,
        }
    }

    pub fn config(&self) -> &TestConfig {
        &self.cfg
    }

    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    pub fn is_finished(&self) -> bool {
        matches!(self.phase, Phase::Done | Phase::Aborted(_))
    }

    /// Sends `init` to every node (call once, right after they are spawned).
    pub fn start(&mut self, now: u64) {
        for i in 0..self.cfg.nodes.len() {
            self.send_init(now, i, Purpose::Init);
        }
        self.pending_setup = self.cfg.nodes.len();
        self.advance(now);
    }

    /// `init` to node `i` from a fresh client.
    fn send_init(&mut self, now: u64, i: usize, purpose: Purpose) {
        let client = self.rpcs.open(&mut self.net);
        let mut body = Map::new();
        body.insert("type".into(), "init".into());
        body.insert("node_id".into(), self.cfg.nodes[i].clone().into());
        body.insert("node_ids".into(), self.node_ids.clone());
        self.call(
            now,
            client,
            i,
            body,
            purpose,
            INIT_TIMEOUT.as_nanos() as u64,
        );
    }

    /// A line node `node` printed on stdout, already parsed.
    pub fn on_node_line(&mut self, now: u64, node: usize, line: Result<NodeLine, LineError>) {
        if self.stdout_dead[node] {
            return;
        }
        let name = self.cfg.nodes[node].clone();
        let sent = match line {
            Ok(l) => {
                if let Some(p) = self.probe.as_mut()
                    && p.is_probe_name(&l.dest)
                {
                    let body: Value = serde_json::from_str(l.body.get()).unwrap_or(Value::Null);
                    p.on_node_line(&l.dest, &body, now.saturating_sub(self.origin));
                }
                self.net
                    .send_named(now, &l.src, &l.dest, l.body)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = sent {
            // Maelstrom's stdout reader stops at the first bad line; so do we.
            self.stdout_dead[node] = true;
            let text = format!(
                "{name} {e}. Maelstrom stops reading a node's STDOUT after such a line, so hearsay ignores everything {name} prints from now on."
            );
            self.warn(now, name, text);
        }
        self.advance(now);
    }

    fn warn(&mut self, now: u64, node: String, text: String) {
        tracing::warn!("{text}");
        self.warnings.push(Warning {
            time_ns: now.saturating_sub(self.origin),
            node,
            text,
        });
    }

    /// A node process exited before teardown: the test crashes (exit 255).
    pub fn on_node_exit(&mut self, _now: u64, node: usize, description: String) {
        if !self.is_finished() {
            let name = &self.cfg.nodes[node];
            self.phase = Phase::Aborted(format!("Node {name} crashed {description}"));
        }
    }

    /// Aborts the run (interrupted, or an executor failure).
    pub fn abort(&mut self, reason: String) {
        if !self.is_finished() {
            self.phase = Phase::Aborted(reason);
        }
    }

    /// Does everything due at `now`.
    pub fn advance(&mut self, now: u64) {
        // Bounded: every iteration delivers a message, resolves a call or
        // changes state, and each of those is finite at a fixed `now`.
        loop {
            let mut progressed = false;
            while let Some(env) = self.net.pop_due(now) {
                progressed = true;
                self.deliver(now, env);
            }
            while let Some((client, call)) = self.rpcs.expired(&mut self.net, now) {
                progressed = true;
                self.resolve(now, client, call, None);
            }
            progressed |= self.step(now);
            if !progressed || self.is_finished() {
                break;
            }
        }
    }

    /// When `advance` must run next, absent input.
    pub fn next_deadline(&self) -> Option<u64> {
        if self.is_finished() {
            return None;
        }
        [
            self.net.next_deadline(),
            self.rpcs.next_deadline(),
            self.wake,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub fn drain_actions(&mut self) -> std::vec::Drain<'_, Action> {
        self.actions.drain(..)
    }

    pub fn progress(&self, now: u64) -> Progress {
        Progress {
            phase: self.phase.name(),
            elapsed_s: now.saturating_sub(self.origin) as f64 / 1e9,
            ops: self.counts,
            net: self.net.journal().stats(),
            partition: self.partition.map(Shape::name),
            paused: self.paused.iter().filter(|&&p| p).count(),
            killed: self.killed.iter().filter(|&&k| k).count(),
        }
    }

    /// Closes every client and heals the network (Maelstrom's teardown), then
    /// hands over what the checkers need. Call after the nodes are killed and
    /// their last output has been fed in.
    pub fn finish(mut self) -> RunResult {
        self.rpcs.close_all(&mut self.net);
        let (probes, probe_answers) = match self.probe.take() {
            Some(p) => {
                p.close(&mut self.net);
                (p.reads, p.answers)
            }
            None => (Vec::new(), 0),
        };
        self.net.heal();
        let _ = self.net.journal_mut().flush();
        let last_op_ns = self.history.ops().last().map_or(0, |o| o.time);
        RunResult {
            history: self.history,
            net: self.net.journal().stats(),
            aborted: match self.phase {
                Phase::Aborted(r) => Some(r),
                _ => None,
            },
            warnings: self.warnings,
            lag_ns: self.lag_ns,
            dropped_by_partitions: self.net.dropped(),
            sent_by: self.net.sent_by().to_vec(),
            last_op_ns,
            executor: "process",
            record: self.net.take_record(),
            names: self.net.names().to_vec(),
            origin_ns: self.origin,
            overlay: None,
            probes,
            probe_answers,
            journal: self.net.journal().size(),
        }
    }

    /// Lets checkers run on an in-progress history (tests, sims).
    pub fn history(&self) -> &History {
        &self.history
    }

    fn rel(&self, now: u64) -> u64 {
        now.saturating_sub(self.origin)
    }

    #[allow(clippy::too_many_arguments)]
    fn call(
        &mut self,
        now: u64,
        client: Addr,
        node: usize,
        body: Map<String, Value>,
        purpose: Purpose,
        timeout_ns: u64,
    ) {
        self.rpcs
            .call(&mut self.net, now, client, node, body, purpose, timeout_ns);
    }

    fn deliver(&mut self, now: u64, env: Envelope) {
        if let Some(service) = self.services.get_mut(&env.dest) {
            let body: Value = serde_json::from_str(env.body.get()).unwrap_or(Value::Null);
            let src = self.net.name(env.src).to_string();
            // Maelstrom's service thread answers what it can handle and
            // logs the rest.
            let Some(mut reply) = service.handle(&src, &body, &mut self.rng_services) else {
                tracing::warn!(
                    "{} cannot handle {body} from {src}",
                    self.net.name(env.dest)
                );
                return;
            };
            if let (Some(id), Some(m)) = (body.get("msg_id"), reply.as_object_mut()) {
                m.insert("in_reply_to".into(), id.clone());
            }
            if let Ok(raw) = serde_json::value::to_raw_value(&reply) {
                let _ = self.net.send(now, env.dest, env.src, raw);
            }
            return;
        }
        if !self.net.is_client(env.dest) {
            let node = env.dest.0 as usize;
            // A killed node's queue piles up unread and is thrown away when
            // it starts again.
            if self.killed[node] || env.id < self.fresh_from[node] {
                return;
            }
            let line = envelope_line(
                env.id,
                self.net.name(env.src),
                self.net.name(env.dest),
                &env.body,
            );
            self.actions.push(Action::Deliver {
                node: env.dest.0 as usize,
                line,
            });
            return;
        }
        if self.probe.as_ref().is_some_and(|p| p.is_probe(env.dest)) {
            self.net.set_accepting(env.dest, true);
            return;
        }
        let workers = &self.workers;
        let answered = self.rpcs.reply(&mut self.net, &env, |purpose, raw| {
            let Purpose::Op { thread, op, .. } = purpose else {
                return None;
            };
            let (_, _, client) = workers[*thread].client.as_ref()?;
            client.fast_ok(op.f, raw)
        });
        if let Some((client, call, reply)) = answered {
            self.resolve(now, client, call, Some(reply));
        }
    }

    /// Completes a call; `reply` is `None` on a timeout.
    fn resolve(&mut self, now: u64, client: Addr, call: Call, reply: Option<Reply>) {
        let node = self.cfg.nodes[call.node].clone();
        let (reply, fast) = match reply {
            Some(Reply::Body(b)) => (Some(b), None),
            Some(Reply::Fast(v)) => (None, Some(v)),
            None => (None, None),
        };
        match call.purpose {
            Purpose::Init => match reply {
                Some(b) if b.get("type").and_then(Value::as_str) == Some("init_ok") => {
                    self.rpcs.close(&mut self.net, client);
                    self.pending_setup -= 1;
                }
                Some(b) => self.abort(format!("Expected node {node} to respond to an init message with init_ok, but it sent {b}")),
                None => self.abort(format!(
                    "Expected node {node} to respond to an init message, but node did not respond within {} s.",
                    INIT_TIMEOUT.as_secs()
                )),
            },
            Purpose::Reinit => {
                self.rpcs.close(&mut self.net, client);
                match reply {
                    Some(b) if b.get("type").and_then(Value::as_str) == Some("init_ok") => {}
                    // Maelstrom records a failed restart on the nemesis op
                    // and carries on; hearsay warns.
                    Some(b) => self.warn(now, node.clone(), format!("{node} answered its restart's init with {b}, not init_ok")),
                    None => self.warn(now, node.clone(), format!("{node} did not answer its restart's init within {} s", INIT_TIMEOUT.as_secs())),
                }
            }
            Purpose::Setup { schema } => match reply {
                None => self.abort(format!(
                    "Client setup failed: node {node} did not answer {} within {} s.",
                    call.request,
                    RPC_TIMEOUT.as_secs()
                )),
                Some(b) if b.get("type").and_then(Value::as_str) == Some("error") => {
                    self.abort(format!("Client setup failed: node {node} answered {} with an error: {b}", call.request))
                }
                Some(b) => match schema.check(&b) {
                    Ok(()) => self.pending_setup -= 1,
                    Err(p) => self.abort(format!(
                        "Client setup failed: {}",
                        calls::malformed_message(&node, &call.request, &schema, &b, &p)
                    )),
                },
            },
            Purpose::Op { thread, op, invocation, then } => {
                let (_, _, wc) = self.workers[thread].client.as_mut().expect("a call has a client");
                let schema = match &then {
                    Some((_, s)) => s.clone(),
                    None => wc.reply_schema(op.f),
                };
                let mut second = None;
                let out = match fast {
                    Some(value) => calls::Outcome { kind: OpType::Ok, value: Some(value), error: None, exception: None },
                    None => calls::outcome(wc.errors(), &op, &node, &call.request, &schema, reply.as_ref(), |b| {
                        match &then {
                            Some((v, _)) => v.clone(),
                            None => {
                                let v = wc.ok_value(&op, b);
                                second = wc.then(&op, b);
                                v
                            }
                        }
                    }),
                };
                if out.kind == OpType::Ok
                    && let Some((body, schema)) = second
                {
                    let value = out.value.unwrap_or_else(|| op.value.clone());
                    let purpose = Purpose::Op { thread, op, invocation, then: Some((value, schema)) };
                    let node = call.node;
                    self.call(now, client, node, body, purpose, self.op_timeout_ns);
                    return;
                }
                self.complete(now, thread, op, invocation, out);
            }
        }
    }

    /// Records an op's completion, replaces a crashed process, lets the
    /// generator see it, and frees the worker (or, in the final phase,
    /// lines up its next final op).
    fn complete(
        &mut self,
        now: u64,
        thread: usize,
        op: OpSpec,
        invocation: usize,
        out: calls::Outcome,
    ) {
        let process = self.workers[thread].process;
        match out.kind {
            OpType::Ok => self.counts.ok += 1,
            OpType::Fail => self.counts.fail += 1,
            _ => self.counts.info += 1,
        }
        if out.kind == OpType::Info {
            // Jepsen: a crashed process is replaced; the worker opens
            // a fresh client at its next op.
            self.workers[thread].process += self.cfg.concurrency as u64;
        }
        let t = self.rel(now);
        let done = self.history.push(Op {
            index: 0,
            time: t,
            kind: out.kind,
            process: Process::Client(process),
            f: op.f,
            value: out.value.unwrap_or(op.value),
            error: out.error,
            final_: op.final_,
            exception: out.exception,
            invocation: Some(invocation),
        });
        let ctx = Ctx {
            thread,
            process,
            time_ns: t,
        };
        if let Some(o) = self.history.get(done) {
            self.workload.generator.observe(ctx, o);
        }
        if self.phase == Phase::Final {
            let ctx = self.workers[thread].ctx(thread, t);
            let next = self.workload.generator.final_next(ctx, &mut self.rng_ops);
            if let Some((op, delay)) = next
                && self.final_until.is_none_or(|u| now + delay < u)
            {
                // Invoked by the phase step, not from here.
                self.final_next[thread] = Some((now + delay, op));
                return;
            }
        }
        if let Some(s) = self.sched.as_mut() {
            s.release(thread, now);
        }
    }

    /// The final phase: starts final ops that came due, and ends once every
    /// worker is done.
    fn step_final(&mut self, now: u64) -> bool {
        let mut progressed = false;
        let mut wake: Option<u64> = None;
        for thread in 0..self.final_next.len() {
            let due = match &self.final_next[thread] {
                Some((at, _)) if *at > now => {
                    wake = Some(wake.map_or(*at, |w| w.min(*at)));
                    false
                }
                other => other.is_some(),
            };
            let Some((_, op)) = self.final_next[thread].take_if(|_| due) else {
                continue;
            };
            progressed = true;
            if self.final_until.is_some_and(|u| now >= u) {
                if let Some(s) = self.sched.as_mut() {
                    s.release(thread, now);
                }
            } else {
                self.invoke(now, thread, op);
            }
        }
        if let Some(w) = wake {
            self.wake = Some(self.wake.map_or(w, |x| x.min(w)));
        }
        if self.sched.as_ref().is_some_and(Schedule::all_free)
            && self.final_next.iter().all(Option::is_none)
        {
            self.phase = Phase::Done;
            return true;
        }
        progressed
    }

    /// Phase transitions and generator dispatch; true if anything happened.
    fn step(&mut self, now: u64) -> bool {
        self.wake = None;
        let progressed = self.step_phase(now);
        self.step_probe(now);
        progressed
    }

    /// Starts the convergence probe when due and sends its rounds.
    fn step_probe(&mut self, now: u64) {
        let probing = matches!(
            self.phase,
            Phase::Main | Phase::Drain | Phase::Recovery { .. }
        );
        let (Some(from), Some(every), true) = (self.probe_from, self.cfg.probe, probing) else {
            return;
        };
        if self.probe.is_none() {
            if now < from {
                self.wake = Some(self.wake.map_or(from, |w| w.min(from)));
                return;
            }
            let every = every.as_nanos() as u64;
            self.probe =
                probe::Probe::start(&mut self.net, &self.workload, &self.cfg.nodes, every, now);
        }
        match self.probe.as_mut() {
            Some(p) => {
                let next = p.tick(&mut self.net, now);
                self.wake = Some(self.wake.map_or(next, |w| w.min(next)));
            }
            // The workload has no read to probe with.
            None => self.probe_from = None,
        }
    }

    fn step_phase(&mut self, now: u64) -> bool {
        match self.phase {
            Phase::Init if self.pending_setup == 0 => {
                self.start_setup(now);
                true
            }
            Phase::Setup if self.pending_setup == 0 => {
                self.start_main(now);
                true
            }
            Phase::Main => self.step_main(now),
            Phase::Drain if self.sched.as_ref().is_some_and(Schedule::all_free) => {
                if self.workload.has_final_phase() {
                    // Jepsen's final nemesis ops: heal, then resume.
                    if self.cfg.partition {
                        tracing::info!("healing the network");
                        self.nemesis_op(now, false);
                    }
                    if self.cfg.pause {
                        self.resume_all(now);
                    }
                    if self.cfg.kill {
                        self.start_all(now);
                    }
                    tracing::info!("Waiting for recovery...");
                    self.phase = Phase::Recovery {
                        until: now + self.cfg.recovery.as_nanos() as u64,
                    };
                } else {
                    self.phase = Phase::Done;
                }
                true
            }
            Phase::Recovery { until } if now >= until => {
                self.final_until = self
                    .workload
                    .generator
                    .final_limit()
                    .map(|d| now + d.as_nanos() as u64);
                // Before the first final op: one that completes at once
                // must find the phase it belongs to.
                self.phase = Phase::Final;
                for thread in 0..self.cfg.concurrency {
                    let ctx = self.workers[thread].ctx(thread, self.rel(now));
                    let Some(op) = self.workload.generator.final_op(ctx) else {
                        continue;
                    };
                    if let Some(s) = self.sched.as_mut() {
                        s.busy(thread);
                    }
                    self.invoke(now, thread, op);
                }
                true
            }
            Phase::Recovery { until } => {
                self.wake = Some(until);
                false
            }
            Phase::Final => self.step_final(now),
            _ => false,
        }
    }

    fn start_setup(&mut self, now: u64) {
        // The history clock starts just before client setup.
        self.origin = now;
        self.phase = Phase::Setup;
        self.pending_setup = 0;
        for i in 0..self.cfg.nodes.len() {
            let client = self.rpcs.open(&mut self.net);
            self.setup_clients.push(client);
            let mut wc = (self.workload.open)(&self.cfg.nodes[i]);
            if let Some((body, schema)) = wc.setup() {
                self.pending_setup += 1;
                self.call(
                    now,
                    client,
                    i,
                    body,
                    Purpose::Setup { schema },
                    RPC_TIMEOUT.as_nanos() as u64,
                );
            }
        }
    }

    fn start_main(&mut self, now: u64) {
        self.phase = Phase::Main;
        self.workers = (0..self.cfg.concurrency)
            .map(|i| Worker {
                node: self.cfg.node_of_worker(i),
                process: i as u64,
                client: None,
            })
            .collect();
        let end = now + self.cfg.time_limit.as_nanos() as u64;
        self.probe_from = self
            .cfg
            .probe
            .map(|_| end.saturating_sub(1_000_000_000).max(now));
        let interval = self.cfg.partition.then_some(self.cfg.nemesis_interval);
        let mut sched = Schedule::new(
            self.cfg.concurrency,
            self.cfg.rate,
            interval,
            self.cfg.time_limit.as_nanos() as u64,
            now,
        );
        if self.cfg.pause || self.cfg.kill {
            sched = sched.with_process_faults(self.cfg.nemesis_interval);
        }
        self.sched = Some(sched);
        tracing::info!("running the main phase for {:?}", self.cfg.time_limit);
    }

    fn step_main(&mut self, now: u64) -> bool {
        let Some(sched) = self.sched.as_mut() else {
            return false;
        };
        match sched.next(now) {
            Next::Dispatch(Due::Client) => {
                let (thread, lag) = sched.take_client(now, &mut self.rng_sched);
                self.lag_ns.push(lag);
                let ctx = self.workers[thread].ctx(thread, self.rel(now));
                let op = self.workload.generator.next_op(ctx, &mut self.rng_ops);
                self.invoke(now, thread, op);
                true
            }
            Next::Dispatch(Due::Nemesis) => {
                let start = sched.take_nemesis(now, &mut self.rng_sched);
                self.nemesis_op(now, start);
                true
            }
            Next::Dispatch(Due::Process) => {
                sched.take_process(now, &mut self.rng_sched);
                self.process_fault(now);
                true
            }
            Next::Wait(t) => {
                self.wake = t;
                false
            }
            Next::Exhausted => {
                self.phase = Phase::Drain;
                true
            }
        }
    }

    fn invoke(&mut self, now: u64, thread: usize, op: OpSpec) {
        let process = self.workers[thread].process;
        let node = self.workers[thread].node;
        let reusable = self.workload.reusable;
        let client = match &self.workers[thread].client {
            Some((c, p, _)) if *p == process || reusable => *c,
            old => {
                if let Some((c, _, _)) = old {
                    let c = *c;
                    self.rpcs.close(&mut self.net, c);
                }
                let c = self.rpcs.open(&mut self.net);
                let wc = (self.workload.open)(&self.cfg.nodes[node]);
                self.workers[thread].client = Some((c, process, wc));
                c
            }
        };
        let invocation = self.history.push(Op {
            index: 0,
            time: self.rel(now),
            kind: OpType::Invoke,
            process: Process::Client(process),
            f: op.f,
            value: op.value.clone(),
            error: None,
            final_: op.final_,
            exception: None,
            invocation: None,
        });
        self.counts.invoked += 1;
        let (_, _, wc) = self.workers[thread].client.as_mut().expect("opened above");
        if let Some((kind, value)) = wc.local(&op) {
            let out = calls::Outcome {
                kind,
                value: Some(value),
                error: None,
                exception: None,
            };
            self.complete(now, thread, op, invocation, out);
            return;
        }
        let body = wc.request(&op);
        self.call(
            now,
            client,
            node,
            body,
            Purpose::Op {
                thread,
                op,
                invocation,
                then: None,
            },
            self.op_timeout_ns,
        );
    }

    /// A nemesis op invoked and completed at once, as Maelstrom records them.
    fn nemesis_pair(&mut self, now: u64, f: &'static str, invoked: Edn, completed: Edn) {
        let t = self.rel(now);
        let op = |value: Edn, invocation: Option<usize>| Op {
            index: 0,
            time: t,
            kind: OpType::Info,
            process: Process::Nemesis,
            f,
            value,
            error: None,
            final_: false,
            exception: None,
            invocation,
        };
        let inv = self.history.push(op(invoked, None));
        self.history.push(op(completed, Some(inv)));
    }

    /// The next op of the process-fault stream. With kill and pause both on,
    /// each op comes from one of the two alternations (kill, start, ... and
    /// pause, resume, ...) drawn uniformly; each keeps its own phase.
    fn process_fault(&mut self, now: u64) {
        use hearsay_core::rng::RngExt;
        let kill = match (self.cfg.kill, self.cfg.pause) {
            (true, true) => self.rng_nemesis.random_range(0..2) == 0,
            (kill, _) => kill,
        };
        if kill {
            if self.kill_next {
                self.kill(now);
            } else {
                self.start_all(now);
            }
            self.kill_next = !self.kill_next;
        } else {
            if self.pause_next {
                self.pause(now);
            } else {
                self.resume_all(now);
            }
            self.pause_next = !self.pause_next;
        }
    }

    /// A `kill`: SIGKILL to the nodes of a randomly drawn spec. They stay
    /// addressable; what is sent to them is lost.
    fn kill(&mut self, now: u64) {
        let spec = nemesis::Targets::pick(&mut self.rng_nemesis);
        let hit = spec.nodes(self.cfg.nodes.len(), &mut self.rng_nemesis);
        for &node in &hit {
            if !self.killed[node] {
                self.killed[node] = true;
                self.actions.push(Action::Kill { node });
            }
        }
        tracing::info!("kill: {} node(s)", hit.len());
        let done = nemesis::affected_edn(&hit, &self.cfg.nodes, "killed");
        self.nemesis_pair(now, "kill", spec.edn(), done);
    }

    /// A `start :all`: every killed node starts again as a new process with
    /// an empty queue and gets `init` again (same id and node list) from a
    /// fresh client; running nodes are left alone.
    fn start_all(&mut self, now: u64) {
        let all: Vec<usize> = (0..self.cfg.nodes.len()).collect();
        for &node in &all {
            if !std::mem::take(&mut self.killed[node]) {
                continue;
            }
            self.actions.push(Action::Start { node });
            self.paused[node] = false;
            self.fresh_from[node] = self.net.next_id();
            self.stdout_dead[node] = false;
            self.send_init(now, node, Purpose::Reinit);
        }
        let done = nemesis::affected_edn(&all, &self.cfg.nodes, "started");
        self.nemesis_pair(now, "start", kw("all"), done);
    }

    /// A `pause`: SIGSTOP to the nodes of a randomly drawn spec.
    fn pause(&mut self, now: u64) {
        let spec = nemesis::Targets::pick(&mut self.rng_nemesis);
        let hit = spec.nodes(self.cfg.nodes.len(), &mut self.rng_nemesis);
        for &node in &hit {
            self.paused[node] = true;
            self.actions.push(Action::Pause { node });
        }
        tracing::info!("pause: {} node(s)", hit.len());
        let done = nemesis::affected_edn(&hit, &self.cfg.nodes, "paused");
        self.nemesis_pair(now, "pause", spec.edn(), done);
    }

    /// A `resume :all`: SIGCONT to every node, paused or not.
    fn resume_all(&mut self, now: u64) {
        let all: Vec<usize> = (0..self.cfg.nodes.len()).collect();
        for &node in &all {
            self.actions.push(Action::Resume { node });
        }
        self.paused.iter_mut().for_each(|p| *p = false);
        let done = nemesis::affected_edn(&all, &self.cfg.nodes, "resumed");
        self.nemesis_pair(now, "resume", kw("all"), done);
    }

    /// A start- or stop-partition op: invoked and completed at once.
    fn nemesis_op(&mut self, now: u64, start: bool) {
        if start {
            let shape = Shape::pick(&mut self.rng_nemesis);
            let grudge = nemesis::grudge(shape, self.cfg.nodes.len(), &mut self.rng_nemesis);
            let drops: Vec<(Addr, Vec<Addr>)> = grudge
                .iter()
                .map(|(d, srcs)| {
                    (
                        Addr(*d as u32),
                        srcs.iter().map(|s| Addr(*s as u32)).collect(),
                    )
                })
                .collect();
            self.net.partition(&drops);
            self.partition = Some(shape);
            tracing::info!("partition: {}", shape.name());
            let done = nemesis::grudge_edn(&grudge, &self.cfg.nodes);
            self.nemesis_pair(now, "start-partition", kw(shape.name()), done);
        } else {
            self.net.heal();
            self.partition = None;
            self.nemesis_pair(now, "stop-partition", Edn::Nil, kw("network-healed"));
        }
    }
}
