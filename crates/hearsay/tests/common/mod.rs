//! Helpers shared by the end-to-end tests.

// Not every test binary uses every helper.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Output};

/// The path of a test node in `tests/nodes/`.
pub fn node(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/nodes")
        .join(name)
        .display()
        .to_string()
}

/// A child process killed and reaped when the test ends, however it ends.
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A finished command's exit code and both outputs, for assertion messages.
pub fn explain(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
