//! Executors that drive a [`crate::runner::TestRun`]: [`process`] runs real
//! node processes in real time.

pub mod process;
