//! Helpers shared by the end-to-end tests.

use std::path::Path;

/// The path of a test node in `tests/nodes/`.
pub fn node(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/nodes")
        .join(name)
        .display()
        .to_string()
}
