//! Every send and every delivery, counted (the `:net` checker) and, when a
//! sink is attached, written as JSON lines (`net-journal.jsonl`).

use serde_json::value::RawValue;
use std::io::Write;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub send: u64,
    pub recv: u64,
    /// Distinct message ids seen; every message is journaled on send, so
    /// this equals `send`, as in Maelstrom.
    pub msg: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    pub all: Counts,
    /// Messages with a client at either end.
    pub clients: Counts,
    /// Everything else (node to node).
    pub servers: Counts,
}

pub struct Journal {
    stats: NetStats,
    sink: Option<Box<dyn Write + Send>>,
    log_send: bool,
    log_recv: bool,
    write_errors: u64,
    /// Bytes the file may hold; past them events are counted, not written.
    limit: u64,
    written: u64,
    cut: u64,
    line: String,
}

/// How much of the message journal reached its file.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct JournalSize {
    pub bytes: u64,
    /// Events (sends and receives) left out once the limit was reached.
    pub cut: u64,
    pub limit: u64,
}

/// The journal's default size limit: a 1,000-node run at thousands of
/// ops/s would otherwise write many gigabytes.
pub const DEFAULT_LIMIT: u64 = 512 << 20;

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("stats", &self.stats)
            .finish()
    }
}

impl Default for Journal {
    fn default() -> Self {
        Journal::new(None, false, false)
    }
}

pub(crate) enum Event {
    Send,
    Recv,
}

impl Journal {
    pub fn new(sink: Option<Box<dyn Write + Send>>, log_send: bool, log_recv: bool) -> Self {
        Journal {
            stats: NetStats::default(),
            sink,
            log_send,
            log_recv,
            write_errors: 0,
            limit: u64::MAX,
            written: 0,
            cut: 0,
            line: String::new(),
        }
    }

    /// Caps the file at `bytes`.
    pub fn with_limit(mut self, bytes: u64) -> Self {
        self.limit = bytes;
        self
    }

    pub fn size(&self) -> JournalSize {
        JournalSize {
            bytes: self.written,
            cut: self.cut,
            limit: self.limit,
        }
    }

    /// The journal a run uses: counting always, and writing every message to
    /// `dir/net-journal.jsonl` when the config asks for it.
    pub fn for_run(
        cfg: &crate::config::TestConfig,
        dir: &std::path::Path,
    ) -> std::io::Result<Self> {
        let sink: Option<Box<dyn Write + Send>> = if cfg.journal {
            let f = std::fs::File::create(dir.join("net-journal.jsonl"))?;
            Some(Box::new(std::io::BufWriter::with_capacity(1 << 20, f)))
        } else {
            None
        };
        Ok(Journal::new(sink, cfg.log_net_send, cfg.log_net_recv).with_limit(cfg.journal_limit))
    }

    pub fn stats(&self) -> NetStats {
        self.stats
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn record(
        &mut self,
        event: Event,
        time_ns: u64,
        id: u64,
        src: &str,
        dest: &str,
        client: bool,
        body: &RawValue,
    ) {
        let part = if client {
            &mut self.stats.clients
        } else {
            &mut self.stats.servers
        };
        let (kind, log) = match event {
            Event::Send => {
                part.send += 1;
                part.msg += 1;
                self.stats.all.send += 1;
                self.stats.all.msg += 1;
                ("send", self.log_send)
            }
            Event::Recv => {
                part.recv += 1;
                self.stats.all.recv += 1;
                ("recv", self.log_recv)
            }
        };
        if log {
            // Asked for explicitly (--log-net-send/--log-net-recv): straight
            // to stderr, whatever the log filter.
            eprintln!(
                "{kind} {{:id {id}, :src {src:?}, :dest {dest:?}, :body {}}}",
                body.get()
            );
        }
        if let Some(sink) = self.sink.as_mut() {
            use std::fmt::Write as _;
            self.line.clear();
            let _ = writeln!(
                self.line,
                r#"{{"id":{id},"time":{time_ns},"type":"{kind}","src":{},"dest":{},"body":{}}}"#,
                serde_json::to_string(src).unwrap_or_default(),
                serde_json::to_string(dest).unwrap_or_default(),
                body.get()
            );
            let len = self.line.len() as u64;
            // The file keeps a prefix: once one line is left out, all are.
            if self.cut > 0 || self.written.saturating_add(len) > self.limit {
                self.cut += 1;
            } else if sink.write_all(self.line.as_bytes()).is_err() {
                self.write_errors += 1;
            } else {
                self.written += len;
            }
        }
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        match self.sink.as_mut() {
            Some(s) => s.flush(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_capped_journal_keeps_a_prefix_and_counts_what_it_left_out() {
        let sink = Sink::default();
        let mut j = Journal::new(Some(Box::new(sink.clone())), false, false).with_limit(300);
        let body = serde_json::value::to_raw_value(&serde_json::json!({"type": "x"})).unwrap();
        for i in 0..10 {
            j.record(Event::Send, i, i, "n0", "n1", false, &body);
        }
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let kept = text.lines().count() as u64;
        assert!(kept > 0 && kept < 10, "{kept} lines");
        let size = j.size();
        assert_eq!(size.bytes, text.len() as u64);
        assert!(size.bytes <= 300);
        assert_eq!(size.cut, 10 - kept);
        // Counting never stops.
        assert_eq!(j.stats().servers.send, 10);
        // Every kept line is whole and in order.
        for (i, l) in text.lines().enumerate() {
            assert!(l.starts_with(&format!("{{\"id\":{i},")), "{l}");
        }
    }
}
