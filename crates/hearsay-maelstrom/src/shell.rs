//! The stdin/stdout shell: one thread reads lines, the main thread owns the
//! node, feeds it lines and timer ticks, and writes its output.

use crate::{MaelstromNode, NodeConfig};
use crossbeam_channel::{RecvTimeoutError, bounded};
use hearsay_core::time::Instant;
use std::io::{self, BufRead, BufWriter, Write};
use std::time::Duration;

/// Lines buffered between the reader thread and the node: a bound, so a
/// flood of input applies back-pressure instead of growing memory.
const INBOX: usize = 4096;
/// Lines handled before output is flushed, when input keeps arriving.
const BURST: usize = 256;

/// Runs a node until stdin closes. Malformed lines are logged and skipped.
pub fn run_stdio(mut cfg: NodeConfig) -> anyhow::Result<()> {
    if cfg.epoch == 0 {
        // A new life per process start: the wall clock only grows between
        // restarts of one node (peers drop messages from lower epochs).
        cfg.epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    }
    let (tx, rx) = bounded::<io::Result<String>>(INBOX);
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            for line in io::stdin().lock().lines() {
                let stop = line.is_err();
                if tx.send(line).is_err() || stop {
                    break;
                }
            }
        })?;
    let origin = std::time::Instant::now();
    let now =
        || Instant::from_micros(u64::try_from(origin.elapsed().as_micros()).unwrap_or(u64::MAX));
    let mut node = MaelstromNode::new(cfg);
    let mut stdout = BufWriter::new(io::stdout().lock());
    loop {
        let first = match node.next_deadline() {
            Some(at) => {
                let wait = Duration::from_micros(at.as_micros().saturating_sub(now().as_micros()));
                rx.recv_timeout(wait)
            }
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        let mut batch = match first {
            Ok(line) => vec![line],
            Err(RecvTimeoutError::Timeout) => vec![],
            Err(RecvTimeoutError::Disconnected) => break,
        };
        batch.extend(rx.try_iter().take(BURST));
        for line in batch {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            if let Err(e) = node.handle_line(now(), &line) {
                tracing::warn!("skipping input line ({e}): {line}");
            }
        }
        node.tick(now());
        for line in node.drain_output() {
            stdout.write_all(line.as_bytes())?;
            stdout.write_all(b"\n")?;
        }
        stdout.flush()?;
    }
    tracing::info!(
        node = node.node_id(),
        stats = ?node.stats(),
        core = ?node.core_stats(),
        "stdin closed, exiting"
    );
    Ok(())
}

/// Logs go to stderr (stdout is the protocol). `HEARSAY_LOG` sets the filter.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HEARSAY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(false)
        .try_init();
}
