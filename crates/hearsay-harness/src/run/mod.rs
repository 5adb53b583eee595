//! Executors that drive a [`crate::runner::TestRun`].
