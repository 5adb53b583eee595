//! The protocol layers import downward only: overlay and the wire at the
//! bottom, then links, then dissemination, then the node that routes
//! between them. A cycle would make each layer untestable without the
//! others; this test reads the sources (test code and comments aside) and
//! names the import that breaks the order.

use std::path::Path;

/// Each layer, and the layers it may import (besides the leaf modules
/// every layer uses: id, time, timers, rng, outbox, stats, value, machine,
/// membership).
const LAYERS: [(&str, &[&str]); 5] = [
    ("overlay", &[]),
    ("wire", &[]),
    ("link", &["wire"]),
    ("dissemination", &["link", "overlay", "wire"]),
    ("node", &["dissemination", "link", "overlay", "wire"]),
];

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs")
            && p.file_name().is_some_and(|n| n != "tests.rs")
        {
            out.push(p);
        }
    }
}

/// The modules of this crate a source file imports, outside its tests.
fn imports(text: &str) -> Vec<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or("");
    let mut found = Vec::new();
    for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
        for (i, _) in line.match_indices("crate::") {
            let name: String = line[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            found.push(name);
        }
    }
    found
}

#[test]
fn layers_import_downward_only() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let names: Vec<&str> = LAYERS.iter().map(|(n, _)| *n).collect();
    for (layer, allowed) in LAYERS {
        let mut files = Vec::new();
        let dir = src.join(layer);
        if dir.is_dir() {
            sources(&dir, &mut files);
        } else {
            files.push(src.join(format!("{layer}.rs")));
        }
        assert!(!files.is_empty(), "no sources for {layer}");
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            for m in imports(&text) {
                let upward =
                    m != layer && names.contains(&m.as_str()) && !allowed.contains(&m.as_str());
                assert!(
                    !upward,
                    "{} imports crate::{m}: {layer} may import only {allowed:?} of the layers",
                    f.display()
                );
            }
        }
    }
}

#[test]
fn the_check_sees_an_upward_import() {
    let text = "use crate::link::Lane;\n// use crate::node::X;\nuse crate::node::Stats;\n#[cfg(test)]\nuse crate::cluster::Y;";
    assert_eq!(imports(text), ["link", "node"]);
}
