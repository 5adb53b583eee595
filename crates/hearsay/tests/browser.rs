//! `hearsay serve` in a real browser: headless Chromium driven over
//! WebDriver (chromedriver). Loads the runs table, sorts and filters it,
//! opens a run, checks that the plots and the message diagram render with
//! the right number of elements and that the diagram's filters work, opens a
//! bench sweep, and saves screenshots to `target/browser-screenshots/`.
//!
//! Needs the Debian packages `chromium` and `chromium-driver`
//! (`scripts/test-deps` installs them; `.ci/run` calls it).

mod common;
use common::{Reaped, node};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn hearsay(args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_hearsay"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "chromedriver did not start on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn screenshots() -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/browser-screenshots");
    std::fs::create_dir_all(&d).unwrap();
    d
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    assert!(png.len() > 1000, "{name}: empty screenshot");
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

async fn js(c: &Client, script: &str) -> Value {
    c.execute(script, vec![]).await.unwrap()
}

/// Polls a script until it returns true (bounded).
async fn until(c: &Client, script: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if js(c, script).await == json!(true) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {script}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Arrows and lanes the diagram must have: the journal's first 10,000
/// events, as in Maelstrom.
fn journal_counts(dir: &Path) -> (usize, usize) {
    let text = std::fs::read_to_string(dir.join("net-journal.jsonl")).unwrap();
    let mut recv_reads = (0, 0);
    for l in text.lines().take(10_000) {
        let v: Value = serde_json::from_str(l).unwrap();
        if v["type"] == "recv" {
            recv_reads.0 += 1;
            if v["body"]["type"] == "read" {
                recv_reads.1 += 1;
            }
        }
    }
    recv_reads
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_pages_render_in_chromium() {
    let driver = Path::new("/usr/bin/chromedriver");
    assert!(
        driver.exists(),
        "chromedriver is missing: run scripts/test-deps (installs chromium and chromium-driver)"
    );
    let store = tempfile::tempdir().unwrap();
    let st = store.path().to_str().unwrap().to_string();
    hearsay(&[
        "test",
        "-q",
        "--store",
        &st,
        "--sim",
        "--scenario",
        "3b",
        "--time-limit",
        "3",
        "--recovery",
        "1",
        "--seed",
        "2",
        "--latency",
        "10",
    ]);
    hearsay(&[
        "test",
        "-q",
        "--store",
        &st,
        "-w",
        "echo",
        "--bin",
        &node("misc.py"),
        "--node-count",
        "2",
        "--time-limit",
        "1",
        "--rate",
        "10",
        "--",
        "echo",
    ]);
    let bench_out = format!("{st}/bench");
    hearsay(&[
        "bench",
        "--strategies",
        "tree",
        "--presets",
        "efficient",
        "--nodes",
        "30",
        "--process-max",
        "0",
        "--runs",
        "1",
        "--nemesis",
        "none",
        "--time-limit",
        "2",
        "--recovery",
        "1",
        "--out",
        &bench_out,
    ]);
    let broadcast_dir = std::fs::read_dir(store.path().join("broadcast"))
        .unwrap()
        .flatten()
        .find(|e| e.file_type().unwrap().is_dir())
        .unwrap()
        .path();
    let (recvs, read_recvs) = journal_counts(&broadcast_dir);

    let mut serve = Command::new(env!("CARGO_BIN_EXE_hearsay"))
        .args(["serve", "--store", &st, "--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(serve.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _serve = Reaped(serve);
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .trim_end_matches('/')
        .to_string();

    let port = free_port();
    let _driver = Reaped(
        Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_port(port);
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                        "--disable-dev-shm-usage", "--window-size=1280,1000"]}),
    );
    let c = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("start a Chromium session");

    // The runs table: two runs, sortable and filterable. A fresh Chromium
    // has once shown something else for its first navigation (0 rows,
    // seen in one clean-clone CI run): load again a few times, and say what
    // the page was if the table never comes.
    let mut rows = vec![];
    for _ in 0..3 {
        c.goto(&format!("{base}/")).await.unwrap();
        rows = c.find_all(Locator::Css("#runs tr.run")).await.unwrap();
        if !rows.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    if rows.is_empty() {
        let url = c
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default();
        let text = js(
            &c,
            "return document.body ? document.body.innerText.slice(0, 500) : ''",
        )
        .await;
        panic!("no runs table at {url} (expected {base}/): {text}");
    }
    assert_eq!(rows.len(), 2);
    shot(&c, "runs").await;
    let filter = c.find(Locator::Id("filter")).await.unwrap();
    filter.send_keys("echo").await.unwrap();
    until(
        &c,
        "return document.getElementById('shown').textContent === '1'",
    )
    .await;
    let visible = js(
        &c,
        "return Array.from(document.querySelectorAll('#runs tr.run')).filter(r => r.style.display !== 'none').map(r => r.cells[1].textContent)",
    )
    .await;
    assert_eq!(visible, json!(["echo"]));
    filter.clear().await.unwrap();
    js(
        &c,
        "document.getElementById('filter').dispatchEvent(new Event('input')); return true",
    )
    .await;
    // Sort by workload: a click sorts ascending, the next descending.
    let th = c.find(Locator::Css("#runs th:nth-child(2)")).await.unwrap();
    th.click().await.unwrap();
    let order = "return Array.from(document.querySelectorAll('#runs tr.run')).map(r => r.cells[1].textContent)";
    assert_eq!(js(&c, order).await, json!(["broadcast", "echo"]));
    th.click().await.unwrap();
    assert_eq!(js(&c, order).await, json!(["echo", "broadcast"]));

    // The broadcast run: every plot loads and has its marks.
    c.find(Locator::XPath("//tr[td[2]='broadcast']//a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Id("summary")).await.unwrap();
    let objects = c.find_all(Locator::Css(".picture object")).await.unwrap();
    assert_eq!(
        objects.len(),
        7,
        "latency x2, rate, convergence, node rates, traffic, overlay"
    );
    for (pic, sel, min) in [
        ("latency-raw", "circle", 10),
        ("latency-quantiles", "polyline", 1),
        ("rate", "polyline", 1),
        ("convergence", "polyline", 2),
        ("traffic", "rect.cell", 4),
        ("overlay", "line.edge", 4),
    ] {
        until(
            &c,
            &format!(
                "const d = document.querySelector('#pic-{pic} object').contentDocument; \
                 return !!d && d.querySelectorAll('{sel}').length >= {min}"
            ),
        )
        .await;
    }
    // The message diagram: an arrow per delivery in the journal's window.
    let arrows = js(
        &c,
        "return document.querySelectorAll('.diagram g.msg').length",
    )
    .await;
    assert_eq!(arrows, json!(recvs));
    until(
        &c,
        &format!("return document.getElementById('arrows-shown').textContent === '{recvs}'"),
    )
    .await;
    shot(&c, "run").await;
    for pic in ["latency-raw", "rate", "convergence", "traffic", "overlay"] {
        js(
            &c,
            &format!("document.getElementById('pic-{pic}').scrollIntoView(); return true"),
        )
        .await;
        shot(&c, &format!("run-{pic}")).await;
    }
    // The timeline, embedded: a bar per completed op.
    let history = std::fs::read_to_string(broadcast_dir.join("history.txt")).unwrap();
    let done = history
        .lines()
        .filter(|l| !l.starts_with(":nemesis") && !l.contains(":invoke"))
        .count();
    until(
        &c,
        &format!(
            "const d = document.querySelector('iframe.timeline').contentDocument; \
             return !!d && d.querySelectorAll('g.op').length === {done}"
        ),
    )
    .await;
    js(
        &c,
        "document.querySelector('.diagram').scrollIntoView(); return true",
    )
    .await;
    shot(&c, "run-messages").await;
    // Filter by type, then by a time window that holds nothing.
    js(
        &c,
        "const s = document.getElementById('f-type'); s.value = 'read'; s.dispatchEvent(new Event('input')); return true",
    )
    .await;
    let shown = js(
        &c,
        "return Array.from(document.querySelectorAll('.diagram g.msg')).filter(a => a.style.display !== 'none').length",
    )
    .await;
    assert_eq!(shown, json!(read_recvs));
    assert!(read_recvs > 0);
    js(
        &c,
        "const f = document.getElementById('f-from'); f.value = '999999999'; f.dispatchEvent(new Event('input')); return true",
    )
    .await;
    until(
        &c,
        "return document.getElementById('arrows-shown').textContent === '0'",
    )
    .await;
    js(
        &c,
        "document.querySelector('.filters').scrollIntoView(); return true",
    )
    .await;
    shot(&c, "run-messages-filtered").await;

    // The bench sweep: its Pareto plot and its table.
    c.goto(&format!("{base}/")).await.unwrap();
    c.find(Locator::Css("#sweeps a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Id("points")).await.unwrap();
    assert_eq!(
        c.find_all(Locator::Css("#points tbody tr"))
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        !c.find_all(Locator::Css(".pareto object"))
            .await
            .unwrap()
            .is_empty()
    );
    shot(&c, "bench").await;
    c.close().await.unwrap();
}
