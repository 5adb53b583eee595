//! The real-time executor (Maelstrom section 2): one process per node, a
//! reader thread per stdout and stderr, a writer thread per stdin, and one
//! loop that owns the [`TestRun`] and sleeps until its next deadline.
//!
//! Nodes start in the JVM-like temp directory with the arguments given after
//! `--`, each in its own process group so that SIGKILL at teardown also
//! reaches helpers a wrapper script forgot to `exec`. A node that exits
//! before teardown crashes the test (exit 255), as in Maelstrom.

use crate::config::TestConfig;
use crate::net::Journal;
use crate::runner::{Action, Progress, RunResult, TestRun};
use crate::wire::{LineError, NodeLine, parse_node_line};
use anyhow::{Context, Result};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, unbounded};
use nix::sys::signal::Signal;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Lines of stdout and stderr kept per node for crash reports.
const TAIL: usize = 32;
/// How often child exits are polled and progress is reported.
const POLL: Duration = Duration::from_millis(100);

type Tail = Arc<Mutex<VecDeque<String>>>;

/// What a node's reader threads report, tagged with the node and the
/// generation of its process (a restart after a kill starts a new one;
/// late events of the old one are dropped).
enum Event {
    Line(usize, u32, Result<NodeLine, LineError>),
    StdoutClosed(usize, u32),
}

struct Node {
    child: Child,
    stdin: Option<Sender<String>>,
    stdout_tail: Tail,
    stderr_tail: Tail,
    stderr_done: Arc<AtomicBool>,
    log_path: PathBuf,
    threads: Vec<JoinHandle<()>>,
    exited: bool,
    /// Killed by the nemesis: its exit is no crash.
    killed: bool,
    generation: u32,
}

/// What starting a node again takes.
struct Spawner<'a> {
    cfg: &'a TestConfig,
    logs: &'a Path,
    tx: Sender<Event>,
    /// IO threads of killed processes, joined at teardown.
    retired: Vec<JoinHandle<()>>,
}

/// Hooks for the caller: progress, and a flag that aborts the run.
pub struct Hooks<'a> {
    pub progress: &'a mut dyn FnMut(&Progress),
    pub interrupted: Arc<AtomicBool>,
}

/// Runs the test in `dir` (node logs and journal go there) and returns the
/// run's result. `Err` means the harness itself failed (e.g. a node binary
/// could not be started); node misbehaviour is reported in the result.
pub fn run(cfg: TestConfig, dir: &Path, hooks: Hooks<'_>) -> Result<RunResult> {
    let logs = dir.join("node-logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let journal = Journal::for_run(&cfg, dir).context("creating net-journal.jsonl")?;
    let (tx, rx) = unbounded::<Event>();
    let mut nodes = Vec::with_capacity(cfg.nodes.len());
    for (i, name) in cfg.nodes.iter().enumerate() {
        match spawn(&cfg, i, name, &logs, tx.clone(), 0) {
            Ok(n) => nodes.push(n),
            Err(e) => {
                kill_all(&mut nodes);
                return Err(e);
            }
        }
    }
    let mut run = TestRun::new(cfg.clone(), journal);
    let mut spawner = Spawner {
        cfg: &cfg,
        logs: &logs,
        tx,
        retired: Vec::new(),
    };
    let result = drive(&mut run, &mut nodes, &rx, &mut spawner, hooks);
    let Spawner { tx, retired, .. } = spawner;
    drop(tx);
    // Teardown: a node that already exited is a crash; kill the rest.
    let origin_now = result.as_ref().map(|t| *t).unwrap_or(0);
    for (i, n) in nodes.iter_mut().enumerate() {
        if !n.exited
            && !n.killed
            && let Ok(Some(status)) = n.child.try_wait()
        {
            n.exited = true;
            let description = crash_report(n, status);
            run.on_node_exit(origin_now, i, description);
        }
    }
    kill_all(&mut nodes);
    // Lines the nodes printed before they died still count as sent.
    while let Ok(ev) = rx.recv_timeout(Duration::from_millis(50)) {
        if let Event::Line(i, g, line) = ev
            && nodes[i].generation == g
            && !nodes[i].killed
        {
            run.on_node_line(origin_now, i, line);
        }
    }
    for n in &mut nodes {
        n.stdin = None;
        for t in n.threads.drain(..) {
            let _ = t.join();
        }
    }
    for t in retired {
        let _ = t.join();
    }
    result?;
    Ok(run.finish())
}

/// The main loop; returns the last time it saw (ns since its origin).
fn drive(
    run: &mut TestRun,
    nodes: &mut [Node],
    rx: &Receiver<Event>,
    spawner: &mut Spawner<'_>,
    hooks: Hooks<'_>,
) -> Result<u64> {
    let origin = Instant::now();
    let now = || origin.elapsed().as_nanos() as u64;
    run.start(now());
    let mut last_poll = Instant::now();
    loop {
        flush_actions(run, nodes, spawner, now());
        if run.is_finished() {
            return Ok(now());
        }
        if hooks.interrupted.load(Ordering::Relaxed) {
            run.abort("interrupted".into());
            return Ok(now());
        }
        let wait = run
            .next_deadline()
            .map(|d| Duration::from_nanos(d.saturating_sub(now())))
            .unwrap_or(POLL)
            .min(POLL);
        match rx.recv_timeout(wait) {
            Ok(ev) => {
                handle(run, nodes, ev, now());
                // Take whatever else is ready before advancing the clock.
                for ev in rx.try_iter().take(1024) {
                    handle(run, nodes, ev, now());
                }
            }
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {}
        }
        run.advance(now());
        if last_poll.elapsed() >= POLL {
            last_poll = Instant::now();
            for (i, n) in nodes.iter_mut().enumerate() {
                if !n.exited
                    && !n.killed
                    && let Ok(Some(status)) = n.child.try_wait()
                {
                    n.exited = true;
                    let description = crash_report(n, status);
                    run.on_node_exit(now(), i, description);
                }
            }
            (hooks.progress)(&run.progress(now()));
        }
    }
}

fn handle(run: &mut TestRun, nodes: &mut [Node], ev: Event, now: u64) {
    match ev {
        Event::Line(i, g, line) => {
            if nodes[i].generation == g && !nodes[i].killed {
                run.on_node_line(now, i, line)
            }
        }
        Event::StdoutClosed(i, g) => {
            // Usually the process is exiting; the poll will see it. Give it
            // a moment so the crash report has its exit status.
            let n = &mut nodes[i];
            if n.generation != g || n.killed {
                return;
            }
            for _ in 0..20 {
                if let Ok(Some(status)) = n.child.try_wait() {
                    n.exited = true;
                    let description = crash_report(n, status);
                    run.on_node_exit(now, i, description);
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

fn flush_actions(run: &mut TestRun, nodes: &mut [Node], spawner: &mut Spawner<'_>, now: u64) {
    let actions: Vec<Action> = run.drain_actions().collect();
    for a in actions {
        match a {
            Action::Deliver { node, line } => {
                // A paused node's pipe fills and its writer thread waits;
                // the lines stay queued, as in Maelstrom.
                if let Some(tx) = nodes[node].stdin.as_ref() {
                    let _ = tx.send(line);
                }
            }
            Action::Pause { node } => signal(&nodes[node], Signal::SIGSTOP),
            Action::Resume { node } => signal(&nodes[node], Signal::SIGCONT),
            Action::Kill { node } => {
                let n = &mut nodes[node];
                kill_one(n);
                n.killed = true;
                n.stdin = None;
                spawner.retired.append(&mut n.threads);
            }
            Action::Start { node } => {
                if !nodes[node].killed {
                    continue;
                }
                let name = &spawner.cfg.nodes[node];
                let g = nodes[node].generation + 1;
                match spawn(spawner.cfg, node, name, spawner.logs, spawner.tx.clone(), g) {
                    Ok(n) => nodes[node] = n,
                    Err(e) => {
                        run.on_node_exit(now, node, format!("could not be started again: {e:#}"))
                    }
                }
            }
        }
    }
}

/// Signals the node's own process, not its group: Maelstrom's pause does
/// the same, so a wrapper script must `exec` the real node.
fn signal(n: &Node, sig: Signal) {
    if n.exited || n.killed {
        return;
    }
    if let Ok(pid) = i32::try_from(n.child.id()) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
    }
}

/// Starts node `i`'s process. Generation 0 creates its log; a restart
/// appends to it.
fn spawn(
    cfg: &TestConfig,
    i: usize,
    name: &str,
    logs: &Path,
    tx: Sender<Event>,
    generation: u32,
) -> Result<Node> {
    let mut cmd = Command::new(&cfg.bin);
    cmd.args(&cfg.args)
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("could not start node {name} ({})", cfg.bin.display()))?;
    let stdout = child.stdout.take().context("node stdout")?;
    let stderr = child.stderr.take().context("node stderr")?;
    let stdin = child.stdin.take().context("node stdin")?;
    let log_path = logs.join(format!("{name}.log"));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(generation > 0)
        .truncate(generation == 0)
        .open(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let stdout_tail: Tail = Arc::default();
    let stderr_tail: Tail = Arc::default();
    let stderr_done = Arc::new(AtomicBool::new(false));
    let (in_tx, in_rx) = unbounded::<String>();
    let mut threads = Vec::new();
    let tail = stdout_tail.clone();
    threads.push(thread(format!("{name} stdout"), move || {
        read_stdout(i, generation, stdout, tail, tx)
    })?);
    let (tail, done, echo, node) = (
        stderr_tail.clone(),
        stderr_done.clone(),
        cfg.log_stderr,
        name.to_string(),
    );
    threads.push(thread(format!("{name} stderr"), move || {
        read_stderr(&node, stderr, log, tail, done, echo)
    })?);
    threads.push(thread(format!("{name} stdin"), move || {
        write_stdin(stdin, in_rx)
    })?);
    Ok(Node {
        child,
        stdin: Some(in_tx),
        stdout_tail,
        stderr_tail,
        stderr_done,
        log_path,
        threads,
        exited: false,
        killed: false,
        generation,
    })
}

fn thread(name: String, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name)
        .spawn(f)
        .context("spawning an IO thread")
}

fn push_tail(tail: &Tail, line: &str) {
    if let Ok(mut t) = tail.lock() {
        if t.len() == TAIL {
            t.pop_front();
        }
        t.push_back(line.to_string());
    }
}

/// Calls `f` with each line read from `r` (newline stripped, raw bytes and
/// lossy text) until EOF, an error, or `f` returns false.
fn each_line(r: impl Read, mut f: impl FnMut(&[u8], &str) -> bool) {
    let mut r = BufReader::with_capacity(1 << 16, r);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match r.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
        }
        if !f(&buf, &String::from_utf8_lossy(&buf)) {
            return;
        }
    }
}

fn read_stdout(i: usize, g: u32, stdout: impl Read, tail: Tail, tx: Sender<Event>) {
    let mut open = true;
    each_line(stdout, |_, line| {
        push_tail(&tail, line);
        open = tx.send(Event::Line(i, g, parse_node_line(line))).is_ok();
        open
    });
    if open {
        let _ = tx.send(Event::StdoutClosed(i, g));
    }
}

fn read_stderr(
    node: &str,
    stderr: impl Read,
    log: File,
    tail: Tail,
    done: Arc<AtomicBool>,
    echo: bool,
) {
    let mut log = BufWriter::new(log);
    each_line(stderr, |raw, line| {
        push_tail(&tail, line);
        if echo {
            eprintln!("{node} stderr | {line}");
        }
        let _ = log.write_all(raw);
        let _ = log.write_all(b"\n");
        // Flushed per line, so the log survives a crash.
        let _ = log.flush();
        true
    });
    done.store(true, Ordering::Release);
}

fn write_stdin(stdin: ChildStdin, rx: Receiver<String>) {
    let mut w = BufWriter::new(stdin);
    while let Ok(line) = rx.recv() {
        let mut ok = w
            .write_all(line.as_bytes())
            .and_then(|_| w.write_all(b"\n"))
            .is_ok();
        // Write whatever else is queued before flushing once.
        for more in rx.try_iter().take(256) {
            ok &= w
                .write_all(more.as_bytes())
                .and_then(|_| w.write_all(b"\n"))
                .is_ok();
        }
        if !ok || w.flush().is_err() {
            // The node closed its stdin or died; the exit check reports it.
            break;
        }
    }
}

/// Maelstrom's crash message: exit status and the last lines of output.
fn crash_report(n: &Node, status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    let status = match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(sig)) => format!("signal {sig}"),
        _ => status.to_string(),
    };
    for _ in 0..50 {
        if n.stderr_done.load(Ordering::Acquire) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let join = |t: &Tail| {
        t.lock()
            .map(|t| t.iter().cloned().collect::<Vec<_>>().join("\n"))
            .unwrap_or_default()
    };
    format!(
        "with {status}. Before crashing, it wrote to STDOUT:\n\n{}\n\nAnd to STDERR:\n\n{}\n\nFull STDERR logs are available in {}",
        join(&n.stdout_tail),
        join(&n.stderr_tail),
        n.log_path.display()
    )
}

fn kill_all(nodes: &mut [Node]) {
    for n in nodes.iter_mut() {
        kill_one(n);
    }
}

/// SIGKILL to the node's process group, and reap it. A node the nemesis
/// killed is already gone (and its pid may be someone else's now).
fn kill_one(n: &mut Node) {
    if n.killed {
        return;
    }
    // A paused node is let go first, so nothing stays stopped.
    signal(n, Signal::SIGCONT);
    if let Ok(pid) = i32::try_from(n.child.id()) {
        // The whole group: the node and anything it spawned.
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let _ = n.child.kill();
    let _ = n.child.wait();
}
