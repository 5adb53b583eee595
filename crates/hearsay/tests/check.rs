//! `hearsay check` and `hearsay bench checker` on history files written
//! here: the verdict is the exit code (0 valid, 1 invalid, 2 unknown, 254
//! unreadable), a parse error names file, line and column.

use std::path::Path;
use std::process::{Command, Output};

fn hearsay(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hearsay"))
        .args(args)
        .output()
        .expect("run hearsay")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A write of 1 then a read of 1: linearizable.
const VALID: &str = "\
{:index 0, :time 0, :type :invoke, :process 0, :f :write, :value [0 1]}
{:index 1, :time 10, :type :ok, :process 0, :f :write, :value [0 1]}
{:index 2, :time 20, :type :invoke, :process 1, :f :read, :value [0 nil]}
{:index 3, :time 30, :type :ok, :process 1, :f :read, :value [0 1]}
";

/// A read of 2 that nobody wrote, after a write of 1 completed.
const INVALID: &str = "\
{:index 0, :time 0, :type :invoke, :process 0, :f :write, :value [0 1]}
{:index 1, :time 10, :type :ok, :process 0, :f :write, :value [0 1]}
{:index 2, :time 20, :type :invoke, :process 1, :f :read, :value [0 nil]}
{:index 3, :time 30, :type :ok, :process 1, :f :read, :value [0 2]}
";

/// Jepsen's own shape: records in one vector, a nemesis pair, an
/// exception; the same verdict as VALID.
const JEPSEN: &str = r#"[#jepsen.history.Op{:index 0, :time 0, :type :invoke, :process 0, :f :write, :value [0 1]}
#jepsen.history.Op{:index 1, :time 5, :type :info, :process :nemesis, :f :start-partition, :value :majority}
#jepsen.history.Op{:index 2, :time 6, :type :info, :process :nemesis, :f :start-partition, :value [:isolated {"n1" #{"n2"}}]}
#jepsen.history.Op{:index 3, :time 10, :type :ok, :process 0, :f :write, :value [0 1]}
#jepsen.history.Op{:index 4, :time 20, :type :invoke, :process 1, :f :cas, :value [0 [1 2]]}
#jepsen.history.Op{:index 5, :time 30, :type :info, :process 1, :f :cas, :value [0 [1 2]], :error [:net-timeout "timed out"], :exception {:via [{:type java.net.SocketTimeoutException, :message "timed out"}], :cause "timed out"}}
#jepsen.history.Op{:index 6, :time 40, :type :invoke, :process 2, :f :read, :value [0 nil]}
#jepsen.history.Op{:index 7, :time 50, :type :ok, :process 2, :f :read, :value [0 2]}]
"#;

fn write(dir: &Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn the_verdict_is_the_exit_code() {
    let d = tempfile::tempdir().unwrap();
    let valid = write(d.path(), "valid.edn", VALID);
    let o = hearsay(&["check", "-w", "lin-kv", &valid]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(out.starts_with("{:valid? true,"), "{out}");
    let last = out.lines().last().unwrap();
    assert!(
        last.starts_with("valid: lin-kv checker, 4 ops from ") && last.contains("valid.edn"),
        "{last}"
    );

    let invalid = write(d.path(), "invalid.edn", INVALID);
    let o = hearsay(&["check", "-w", "lin-kv", &invalid]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(out.contains(":valid? false"), "{out}");
    assert!(out.contains(":final-paths"), "{out}");
    assert!(
        out.lines().last().unwrap().starts_with("invalid: ") && out.contains("keys not valid: 0"),
        "{out}"
    );

    let jepsen = write(d.path(), "jepsen.edn", JEPSEN);
    let o = hearsay(&["check", "-w", "lin-kv", "-q", &jepsen]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(out.starts_with("valid: lin-kv checker, 8 ops"), "{out}");
}

#[test]
fn a_run_directory_means_its_history_edn() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "history.edn", INVALID);
    let o = hearsay(&["check", "-w", "lin-kv", "-q", d.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{:?}", text(&o));
}

#[test]
fn a_spent_budget_is_unknown() {
    // Three concurrent writes, then reads that force the search to try
    // orders: more than one configuration.
    let mut h = String::new();
    for p in 0..3 {
        h += &format!("{{:type :invoke, :process {p}, :f :write, :value [0 {p}]}}\n");
    }
    for p in 0..3 {
        h += &format!("{{:type :ok, :process {p}, :f :write, :value [0 {p}]}}\n");
    }
    h += "{:type :invoke, :process 5, :f :read, :value [0 nil]}\n";
    h += "{:type :ok, :process 5, :f :read, :value [0 1]}\n";
    let d = tempfile::tempdir().unwrap();
    let f = write(d.path(), "h.edn", &h);
    let o = hearsay(&["check", "-w", "lin-kv", &f, "--max-configs", "1"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}{err}");
    assert!(out.contains(":cause :config-limit"), "{out}");
    assert!(
        out.lines().last().unwrap().starts_with("unknown: "),
        "{out}"
    );
    let o = hearsay(&["check", "-w", "lin-kv", "-q", &f]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
}

#[test]
fn unreadable_histories_and_bad_flags_are_254_with_the_place() {
    let d = tempfile::tempdir().unwrap();
    let bad = write(
        d.path(),
        "bad.edn",
        &VALID.replace(":f :read", ":f :read ]"),
    );
    let o = hearsay(&["check", "-w", "lin-kv", &bad]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(254), "{out}{err}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("bad.edn:3:") && err.contains("cannot close `{`"),
        "{err}"
    );
    let bomb = write(d.path(), "bomb.edn", &"[".repeat(100_000));
    let o = hearsay(&["check", "-w", "lin-kv", &bomb]);
    assert_eq!(o.status.code(), Some(254));
    assert!(text(&o).1.contains("nested deeper than"), "{:?}", text(&o));
    let missing = d.path().join("nothing.edn");
    let o = hearsay(&["check", "-w", "lin-kv", missing.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(254));
    assert!(text(&o).1.contains("cannot read"), "{:?}", text(&o));
    let valid = write(d.path(), "valid.edn", VALID);
    for args in [
        vec!["check", "-w", "g-set", &valid, "--max-steps", "5"],
        vec!["check", "-w", "no-such-workload", &valid],
        vec!["check", "-w", "lin-kv", &valid, "--max-configs", "0"],
        vec!["check", &valid],
    ] {
        let o = hearsay(&args);
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(254), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
}

#[test]
fn other_workloads_use_their_own_checker() {
    let d = tempfile::tempdir().unwrap();
    let ids = "\
{:type :invoke, :process 0, :f :generate, :value nil}
{:type :ok, :process 0, :f :generate, :value \"a\"}
{:type :invoke, :process 1, :f :generate, :value nil}
{:type :ok, :process 1, :f :generate, :value \"a\"}
";
    let f = write(d.path(), "ids.edn", ids);
    let o = hearsay(&["check", "-w", "unique-ids", &f]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(out.contains(":duplicated-count 1"), "{out}");
}

#[test]
fn bench_checker_writes_a_table() {
    let d = tempfile::tempdir().unwrap();
    let valid = write(d.path(), "small.edn", VALID);
    let md = d.path().join("out/checker.md");
    let o = hearsay(&[
        "bench",
        "checker",
        &valid,
        "--runs",
        "2",
        "--out",
        md.to_str().unwrap(),
    ]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    let table = std::fs::read_to_string(&md).unwrap();
    assert_eq!(table.trim_end(), out.trim_end());
    let row = table
        .lines()
        .find(|l| l.starts_with("| small.edn |"))
        .unwrap_or_else(|| panic!("{table}"));
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    // | history | workload | ops | keys | verdict | ...
    assert_eq!(
        &cells[1..6],
        &["small.edn", "lin-kv", "4", "1", "valid"],
        "{row}"
    );
    assert!(table.contains("maxrss"), "{table}");
}

#[test]
fn a_gzipped_history_is_read_and_a_broken_one_named() {
    use std::io::Write;
    let d = tempfile::tempdir().unwrap();
    let gz = d.path().join("lin-kv-small.edn.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::default(),
    );
    enc.write_all(VALID.as_bytes()).unwrap();
    enc.finish().unwrap();
    let o = hearsay(&["check", "-w", "lin-kv", gz.to_str().unwrap()]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    let last = out.lines().last().unwrap_or_default();
    assert!(last.starts_with("valid: lin-kv checker, 4 ops"), "{out}");
    // Not gzip inside: the file and the reason, exit 254.
    let bad = write(d.path(), "broken.edn.gz", VALID);
    let o = hearsay(&["check", "-w", "lin-kv", &bad]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(254), "{err}");
    assert!(err.contains("broken.edn.gz"), "{err}");
}
