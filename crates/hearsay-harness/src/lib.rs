//! hearsay's Maelstrom-compatible test harness, as a library.
//!
//! It runs any Maelstrom node binary (any language) the way Maelstrom does
//! (see `maelstrom-spec.md` in the design docs): the same process model,
//! simulated network, workload generators, partition nemesis, checkers and
//! result layout, so verdicts and numbers can be compared one for one.
//!
//! The test itself is a sans-IO state machine, [`runner::TestRun`]: it takes
//! node output lines and the time, and says which lines to deliver to which
//! node and when. [`run::process`] drives it in real time with real
//! processes; a virtual-time executor can drive the same machine in-process.

pub mod checker;
pub mod config;
pub mod edn;
pub mod edn_read;
pub mod history;
pub mod history_read;
pub mod nemesis;
pub mod net;
pub mod report;
pub mod run;
pub mod runner;
pub mod service;
pub mod wire;
pub mod workload;
