//! The stdin/stdout shell: one thread reads lines, the main thread owns the
//! node, feeds it lines and timer ticks, and writes its output.

use crate::{MaelstromNode, NodeConfig};
use crossbeam_channel::{RecvTimeoutError, bounded};
use hearsay_core::time::Instant;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Lines buffered between the reader thread and the node: a bound, so a
/// flood of input applies back-pressure instead of growing memory.
const INBOX: usize = 4096;
/// Lines handled before output is flushed, when input keeps arriving.
const BURST: usize = 256;

/// Runs a node until stdin closes. Malformed lines are logged and skipped.
/// With `data_dir`, values the node keeps are stored there before its
/// output is written, and given back after `init`.
pub fn run_stdio(mut cfg: NodeConfig, data_dir: Option<&Path>) -> anyhow::Result<()> {
    cfg.keep |= data_dir.is_some();
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
    let mut store: Option<Store> = None;
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
        if let Some(dir) = data_dir
            && node.take_restore_request()
        {
            let (s, values) = Store::open(dir, node.node_id())?;
            tracing::info!(
                "restored {} value(s) from {}",
                values.len(),
                s.path.display()
            );
            node.restore(now(), values);
            store = Some(s);
        }
        // Kept values reach the disk before the acknowledgements leave.
        let kept = node.take_kept();
        if let Some(s) = store.as_mut() {
            s.append(&kept)?;
        }
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

/// The values a node keeps: one JSON value per line, appended and
/// fsync'd.
struct Store {
    path: PathBuf,
    file: File,
}

impl Store {
    /// Opens (creating) `dir/<id>.jsonl` and reads what it holds. A last
    /// line cut short by a kill is dropped (it was never acknowledged); any
    /// other unreadable line is an error naming the file and line.
    fn open(dir: &Path, id: &str) -> anyhow::Result<(Store, Vec<serde_json::Value>)> {
        use anyhow::Context;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(format!("{id}.jsonl"));
        let text = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let complete = text.ends_with(b"\n");
        let lines: Vec<&[u8]> = text
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        let mut values = Vec::with_capacity(lines.len());
        let mut valid_len = 0usize;
        for (i, line) in lines.iter().enumerate() {
            match serde_json::from_slice(line) {
                Ok(v) => {
                    values.push(v);
                    valid_len += line.len() + 1;
                }
                Err(_) if i + 1 == lines.len() && !complete => {
                    tracing::warn!("{}: dropping a last line cut short", path.display());
                }
                Err(e) => anyhow::bail!("{} line {}: {e}", path.display(), i + 1),
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        // Cut a torn tail so new lines start clean.
        if valid_len < text.len() {
            file.set_len(valid_len as u64)
                .with_context(|| format!("truncating {}", path.display()))?;
        }
        Ok((Store { path, file }, values))
    }

    fn append(&mut self, values: &[serde_json::Value]) -> anyhow::Result<()> {
        use anyhow::Context;
        if values.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::new();
        for v in values {
            serde_json::to_writer(&mut buf, v)?;
            buf.push(b'\n');
        }
        self.file
            .write_all(&buf)
            .and_then(|_| self.file.sync_data())
            .with_context(|| format!("writing {}", self.path.display()))
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_store_appends_reads_back_and_drops_only_a_torn_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, got) = Store::open(dir.path(), "n1").unwrap();
        assert!(got.is_empty());
        s.append(&[json!(1), json!({"a": [2]})]).unwrap();
        drop(s);
        let path = dir.path().join("n1.jsonl");
        // A kill in the middle of a write leaves half a line.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"torn\": ").unwrap();
        drop(f);
        let (mut s, got) = Store::open(dir.path(), "n1").unwrap();
        assert_eq!(got, vec![json!(1), json!({"a": [2]})]);
        s.append(&[json!(3)]).unwrap();
        let (_, got) = Store::open(dir.path(), "n1").unwrap();
        assert_eq!(got, vec![json!(1), json!({"a": [2]}), json!(3)]);
        // Damage anywhere else is refused, naming the file and line.
        std::fs::write(&path, "1\nnot json\n3\n").unwrap();
        let err = Store::open(dir.path(), "n1").err().unwrap().to_string();
        assert!(err.contains("n1.jsonl line 2"), "{err}");
    }
}
