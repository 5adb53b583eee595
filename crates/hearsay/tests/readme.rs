//! The README's command blocks run as written, so that they stay true.
//!
//! Every line of every ```sh block is a command this test knows: one that
//! runs here (short: the main job, the simulator, `serve`), one that runs
//! with `--ignored` (long: benches and 1,000-member simulations; `cargo
//! test --release -p hearsay --test readme -- --ignored`, well over an hour),
//! or one that needs what CI does not have (Maelstrom itself) or is CI
//! itself. A new command in the README that this test does not know fails
//! it. `target/release/hearsay` and `cargo run --release -p hearsay --`
//! run the `hearsay` this test was built with, in a scratch directory (so
//! `store/` lands there).

mod common;
use common::Reaped;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How a README command is checked.
#[derive(Debug, PartialEq)]
enum Kind {
    /// Runs in every `cargo test`.
    Short,
    /// Runs with `--ignored` (minutes to an hour).
    Long,
    /// Not run here, and why.
    Elsewhere(&'static str),
}

/// Every line of the README's ```sh blocks, comments dropped.
fn commands() -> Vec<String> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .expect("README.md");
    let mut out = Vec::new();
    let mut inside = false;
    for line in readme.lines() {
        let t = line.trim();
        if t.starts_with("```") {
            inside = !inside && t == "```sh";
            continue;
        }
        if inside {
            let cmd = t.split(" #").next().unwrap_or_default().trim();
            if !cmd.is_empty() && !cmd.starts_with('#') {
                out.push(cmd.to_string());
            }
        }
    }
    out
}

fn kind(cmd: &str) -> Option<Kind> {
    let words: Vec<&str> = cmd.split_whitespace().collect();
    let hearsay = |w: &[&str]| -> Option<Vec<String>> {
        let rest = match w {
            ["target/release/hearsay", rest @ ..] => rest,
            [
                "cargo",
                "run",
                "--release",
                "-p",
                "hearsay",
                "--",
                rest @ ..,
            ] => rest,
            _ => return None,
        };
        Some(rest.iter().map(|s| s.to_string()).collect())
    };
    if cmd.starts_with("scripts/test-deps && cargo fmt") {
        return Some(Kind::Elsewhere("the test command: .ci/run runs it"));
    }
    if cmd == "cargo build --release" {
        return Some(Kind::Elsewhere("the long run builds release itself"));
    }
    if words.first() == Some(&"maelstrom") {
        return Some(Kind::Elsewhere("needs Maelstrom (Java, Jepsen), not on CI"));
    }
    let args = hearsay(&words)?;
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    Some(match a.as_slice() {
        ["test"] | ["serve", ..] => Kind::Short,
        ["test", "--sim", ..] => Kind::Short,
        ["bench", ..] | ["sim", ..] => Kind::Long,
        _ => return None,
    })
}

#[test]
fn every_readme_command_is_known() {
    let cmds = commands();
    assert!(cmds.len() >= 10, "found only {cmds:?}");
    let unknown: Vec<&String> = cmds.iter().filter(|c| kind(c).is_none()).collect();
    assert!(
        unknown.is_empty(),
        "README commands this test does not know (add them to `kind`): {unknown:?}"
    );
    // The test knows the shapes it is told of, not more.
    assert_eq!(kind("target/release/hearsay frobnicate"), None);
    assert_eq!(kind("rm -rf /"), None);
}

/// The command's hearsay arguments.
fn args_of(cmd: &str) -> Vec<String> {
    let words = shlex::split(cmd).expect("shell words");
    let skip = if words[0] == "cargo" { 6 } else { 1 };
    words[skip..].to_vec()
}

fn run(dir: &Path, args: &[String], limit: Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hearsay"))
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run hearsay");
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let o = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        s
    });
    let e = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{args:?} ran past {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: o.join().unwrap(),
        stderr: e.join().unwrap(),
    }
}

fn explain(cmd: &str, o: &Output) -> String {
    format!("{cmd}\n{}", common::explain(o))
}

/// Starts `hearsay serve ...` as written and fetches its runs page; a
/// port already taken (8080 on a busy machine) must be said plainly.
fn serve(dir: &Path, cmd: &str) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hearsay"))
        .args(args_of(cmd))
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve");
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let mut server = Reaped(child);
    let mut line = String::new();
    let _ = BufReader::new(stdout).read_line(&mut line);
    let Some(base) = line.split_whitespace().find(|w| w.starts_with("http://")) else {
        let _ = server.0.wait();
        let mut err = String::new();
        let _ = stderr.read_to_string(&mut err);
        assert!(
            err.contains("in use"),
            "{cmd}: no address printed ({line:?}) and no plain reason: {err}"
        );
        return;
    };
    let addr = base.trim_start_matches("http://").trim_end_matches('/');
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    use std::io::Write;
    write!(s, "GET / HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut page = String::new();
    s.read_to_string(&mut page).unwrap();
    assert!(
        page.starts_with("HTTP/1.0 200") || page.starts_with("HTTP/1.1 200"),
        "{cmd}: {page}"
    );
    assert!(page.contains("hearsay runs"), "{cmd}: {page}");
}

#[test]
fn the_short_readme_commands_run_as_written() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path();
    let cmds: Vec<String> = commands()
        .into_iter()
        .filter(|c| kind(c) == Some(Kind::Short))
        .collect();
    // The runs first: `serve` then has a store to show.
    let (servers, runs): (Vec<&String>, Vec<&String>) =
        cmds.iter().partition(|c| args_of(c)[0] == "serve");
    assert!(!runs.is_empty() && !servers.is_empty(), "{cmds:?}");
    for cmd in runs {
        let o = run(dir, &args_of(cmd), Duration::from_secs(300));
        assert_eq!(o.status.code(), Some(0), "{}", explain(cmd, &o));
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            out.contains("Everything looks good"),
            "{}",
            explain(cmd, &o)
        );
        assert!(out.contains("challenge 3d"), "{}", explain(cmd, &o));
        if cmd.contains("--sim") {
            assert!(out.contains("trace "), "{}", explain(cmd, &o));
        }
    }
    assert!(dir.join("store/latest/results.edn").is_file());
    for cmd in servers {
        if cmd.contains("--store /tmp/runs") {
            // As written it serves /tmp/runs: make sure there is one.
            std::fs::create_dir_all("/tmp/runs").unwrap();
        }
        serve(dir, cmd);
    }
}

#[test]
#[ignore = "long: benches and 1,000-member simulations (cargo test --release -p hearsay --test readme -- --ignored)"]
fn the_long_readme_commands_run_as_written() {
    let scratch = tempfile::tempdir().unwrap();
    for cmd in commands()
        .into_iter()
        .filter(|c| kind(c) == Some(Kind::Long))
    {
        eprintln!("running: {cmd}");
        let o = run(
            scratch.path(),
            &args_of(&cmd),
            Duration::from_secs(3 * 3600),
        );
        assert_eq!(o.status.code(), Some(0), "{}", explain(&cmd, &o));
        let out = String::from_utf8_lossy(&o.stdout);
        if cmd.contains(" sim ") {
            assert!(
                out.contains("hearsay sim") || out.trim_start().starts_with('{'),
                "{}",
                explain(&cmd, &o)
            );
        }
    }
}
