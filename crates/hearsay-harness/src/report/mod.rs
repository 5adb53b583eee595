//! Results on disk, in Maelstrom's layout: `store/<workload>/<time>/` with
//! `results.edn`, `results.json` (same nesting and keys), `history.txt`,
//! `history.edn`, `node-logs/` and `net-journal.jsonl`; `store/latest` and
//! `store/<workload>/latest` point at the newest run.

mod analysis;
mod convergence;
pub mod pictures;
mod summary;

pub use analysis::{Analysis, Headline, analyze, trace_hash};
pub use summary::summary;

use crate::history::History;
use anyhow::{Context, Result};
use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Creates `store/<workload>/<timestamp>/` and points the `latest` links at it.
pub fn create_run_dir(store: &Path, workload: &str) -> Result<PathBuf> {
    // Jepsen's basic date-time: 20261122T021500.123+0000.
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3f%z").to_string();
    let mut dir = store.join(workload).join(&stamp);
    // Two runs in the same millisecond (tests) get distinct directories.
    let mut k = 1;
    while dir.exists() {
        dir = store.join(workload).join(format!("{stamp}-{k}"));
        k += 1;
    }
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for (link, target) in [
        (
            store.join("latest"),
            Path::new(workload).join(dir.file_name().unwrap_or_default()),
        ),
        (
            store.join("current"),
            Path::new(workload).join(dir.file_name().unwrap_or_default()),
        ),
        (
            store.join(workload).join("latest"),
            PathBuf::from(dir.file_name().unwrap_or_default()),
        ),
    ] {
        let _ = fs::remove_file(&link);
        // Relative links keep the store movable; a failure here is cosmetic.
        let _ = std::os::unix::fs::symlink(&target, &link);
    }
    Ok(dir)
}

pub fn write_history(dir: &Path, history: &History) -> Result<()> {
    let mut txt = BufWriter::new(fs::File::create(dir.join("history.txt"))?);
    let mut edn = BufWriter::new(fs::File::create(dir.join("history.edn"))?);
    for op in history.ops() {
        writeln!(txt, "{}", op.txt_line())?;
        writeln!(edn, "{}", op.to_edn().compact())?;
    }
    txt.flush()?;
    edn.flush()?;
    Ok(())
}

pub fn write_results(dir: &Path, a: &Analysis) -> Result<()> {
    fs::write(dir.join("results.edn"), a.results.pretty())?;
    // The checker's own files: one that cannot be written (a key too
    // long for a file name, say) is said, and costs nothing else.
    for f in &a.files {
        let path = dir.join(&f.path);
        let written = path
            .parent()
            .map_or(Ok(()), fs::create_dir_all)
            .and_then(|()| fs::write(&path, &f.body));
        if let Err(e) = written {
            tracing::warn!("could not write {}: {e}", path.display());
        }
    }
    let mut json = a.results.to_json();
    if let serde_json::Value::Object(m) = &mut json {
        m.insert("hearsay".into(), a.extras.clone());
    }
    fs::write(
        dir.join("results.json"),
        serde_json::to_string_pretty(&json)? + "\n",
    )?;
    Ok(())
}
