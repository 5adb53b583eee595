//! Executors that drive a [`crate::runner::TestRun`]: [`process`] runs real
//! node processes in real time; [`sim`] runs in-process nodes in virtual
//! time.

pub mod process;
pub mod sim;
