//! `hearsay monitor` (Serf's `serf monitor`): what an agent logs and sees,
//! as it happens. [`Capture`], a tracing layer, copies each log event into
//! a channel while somebody watches (with nobody watching it formats
//! nothing); GET /monitor streams those lines and the membership events,
//! each at or above the level asked for, until the client goes. A client
//! too slow to keep up misses lines and is told how many.

use std::fmt::Write as _;
use std::sync::OnceLock;
use tokio::sync::broadcast;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// Lines held for slow watchers before they start missing some.
const BUFFER: usize = 1024;

/// One log line.
#[derive(Clone, Debug)]
pub struct Line {
    /// The log event's level.
    pub level: Level,
    /// Its message, then its other fields as `name=value`.
    pub text: String,
}

static LOGS: OnceLock<broadcast::Sender<Line>> = OnceLock::new();

/// The layer that feeds GET /monitor; add it to the process's subscriber.
pub struct Capture;

/// The layer, and the channel behind it (one per process).
pub fn capture() -> Capture {
    LOGS.get_or_init(|| broadcast::channel(BUFFER).0);
    Capture
}

/// The log lines from now on, if this process captures its logs.
pub fn subscribe() -> Option<broadcast::Receiver<Line>> {
    LOGS.get().map(broadcast::Sender::subscribe)
}

impl<S: Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let Some(tx) = LOGS.get() else { return };
        if tx.receiver_count() == 0 {
            return;
        }
        let mut text = Text(String::new());
        event.record(&mut text);
        let _ = tx.send(Line {
            level: *event.metadata().level(),
            text: text.0,
        });
    }
}

/// The message first, then the other fields as `name=value`.
struct Text(String);

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let rest = std::mem::take(&mut self.0);
            let _ = write!(self.0, "{value:?}");
            if !rest.is_empty() {
                self.0.push(' ');
                self.0.push_str(&rest);
            }
        } else {
            if !self.0.is_empty() {
                self.0.push(' ');
            }
            let _ = write!(self.0, "{}={value:?}", field.name());
        }
    }
}

/// A level name as `--level` takes it.
pub fn parse_level(s: &str) -> Result<Level, String> {
    match s.to_ascii_lowercase().as_str() {
        "trace" => Ok(Level::TRACE),
        "debug" => Ok(Level::DEBUG),
        "info" => Ok(Level::INFO),
        "warn" | "warning" => Ok(Level::WARN),
        "error" | "err" => Ok(Level::ERROR),
        other => Err(format!(
            "no log level {other:?}: trace, debug, info, warn or error"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn log_events_reach_a_watcher_with_their_level_and_fields() {
        let subscriber = tracing_subscriber::registry().with(capture());
        let mut rx = subscribe().expect("captured");
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(peer = "n2", "joined through {}", "n2");
            tracing::warn!("a warning");
        });
        let a = rx.try_recv().unwrap();
        assert_eq!(a.level, Level::INFO);
        assert_eq!(a.text, "joined through n2 peer=\"n2\"");
        let b = rx.try_recv().unwrap();
        assert_eq!((b.level, b.text.as_str()), (Level::WARN, "a warning"));
        assert_eq!(parse_level("WARN"), Ok(Level::WARN));
        assert!(parse_level("loud").is_err());
    }
}
