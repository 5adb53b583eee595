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
}

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
        Ok(Journal::new(sink, cfg.log_net_send, cfg.log_net_recv))
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
            let r = writeln!(
                sink,
                r#"{{"id":{id},"time":{time_ns},"type":"{kind}","src":{},"dest":{},"body":{}}}"#,
                serde_json::to_string(src).unwrap_or_default(),
                serde_json::to_string(dest).unwrap_or_default(),
                body.get()
            );
            if r.is_err() {
                self.write_errors += 1;
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
