//! Progress while a test runs: a live line on a terminal, a periodic plain
//! line (and phase logs) otherwise.

use hearsay_harness::config::TestConfig;
use hearsay_harness::runner::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

pub struct Display {
    quiet: bool,
    tty: bool,
}

impl Display {
    pub fn new(quiet: bool) -> Self {
        Display {
            quiet,
            tty: std::io::stderr().is_terminal(),
        }
    }

    /// Logs go to stderr; on a terminal only warnings (the bar shows the rest).
    pub fn init_logging(&self) {
        let default = if self.tty || self.quiet {
            "warn"
        } else {
            "info"
        };
        let filter = tracing_subscriber::EnvFilter::try_from_env("HEARSAY_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_target(false)
            .with_ansi(self.tty)
            .try_init();
    }

    pub fn line(&self, s: &str) {
        if !self.quiet {
            eprintln!("{s}");
        }
    }

    pub fn bar(&self, cfg: &TestConfig) -> Bar {
        let expected = cfg.time_limit.as_secs_f64() + cfg.recovery.as_secs_f64() + 1.0;
        let pb = if self.quiet || !self.tty {
            ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden())
        } else {
            ProgressBar::new((expected * 10.0) as u64)
        };
        pb.set_style(
            ProgressStyle::with_template("{bar:20.cyan/blue} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Bar {
            pb,
            plain: !self.quiet && !self.tty,
            last_plain: Instant::now(),
        }
    }
}

pub struct Bar {
    pb: ProgressBar,
    plain: bool,
    last_plain: Instant,
}

impl Bar {
    pub fn update(&mut self, p: &Progress) {
        let msg = format!(
            "{:>6.1}s {:<11} ops {} (ok {} fail {} info {}) | msgs {} (servers {}){}",
            p.elapsed_s,
            p.phase,
            p.ops.invoked,
            p.ops.ok,
            p.ops.fail,
            p.ops.info,
            p.net.all.send,
            p.net.servers.send,
            p.partition
                .map(|s| format!(" | partition {s}"))
                .unwrap_or_default()
                + &if p.paused > 0 {
                    format!(" | {} paused", p.paused)
                } else {
                    String::new()
                }
        );
        self.pb.set_position((p.elapsed_s.max(0.0) * 10.0) as u64);
        self.pb.set_message(msg.clone());
        if self.plain && self.last_plain.elapsed() >= Duration::from_secs(5) {
            self.last_plain = Instant::now();
            eprintln!("{msg}");
        }
    }

    pub fn finish(&mut self) {
        self.pb.finish_and_clear();
    }
}
