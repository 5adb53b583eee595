//! Hosts for `bench chaos`: one network namespace per agent, on a bridge
//! in the bench's own namespace, so loss and partitions happen in the
//! kernel (to every packet, datagrams and streams alike) and an agent
//! keeps its address and its cut across restarts.
//!
//! Loss, delay and reordering come from a netem qdisc on each host's
//! interface where the kernel has one. Where it does not (this machine's),
//! loss is an iptables `statistic` rule in each host's INPUT chain, and
//! delay and reordering stay with the agents' own link. A partition is a
//! DROP per address on the other side, in a chain (`CUT`) rewritten whole
//! at each change.

use anyhow::{Context, Result, bail};
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::os::fd::AsFd as _;
use std::process::{Command, Stdio};

/// The bridge's (the bench's) address; hosts are 10.232.1.2 and up.
const HUB: &str = "10.232.0.1/16";
/// Namespaces are named this, then the bench's pid and the host's index,
/// so a later run can tell and remove those of a run that did not end.
const PREFIX: &str = "hearsay-chaos-";

pub(super) struct Hosts {
    names: Vec<String>,
    /// Loss, delay and reordering come from netem (else: loss from
    /// iptables, the rest is the agents' to do).
    pub(super) netem: bool,
}

/// What each host's link does to what it carries.
#[derive(Clone, Copy, Debug)]
pub(super) struct Link {
    pub loss_percent: f64,
    pub delay: std::time::Duration,
    pub jitter: std::time::Duration,
}

fn run(args: &[&str], stdin: Option<&str>) -> Result<()> {
    let mut c = Command::new(args[0]);
    c.args(&args[1..])
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = c.spawn().with_context(|| format!("running {}", args[0]))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "`{}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Loads `rules` (the filter table's lines, without COMMIT) into host
/// `ns`'s iptables; a chain it declares is emptied first, the rest kept.
fn restore(ns: &str, mut rules: String) -> Result<()> {
    rules.push_str("COMMIT\n");
    run(
        &["ip", "netns", "exec", ns, "iptables-restore", "--noflush"],
        Some(&rules),
    )
}

/// Removes the namespaces of earlier runs whose bench is gone (killed
/// before it could clean up).
fn remove_stale() {
    let Ok(dir) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = run(&["ip", "netns", "del", &name], None);
        }
    }
}

impl Hosts {
    /// Moves the calling thread into a new network namespace with a
    /// bridge, and makes `n` hosts on it, each link doing what `link`
    /// says (all of it with netem; only the loss, of what comes from the
    /// other hosts, without). On failure the thread is back in the
    /// namespace it started in.
    pub(super) fn new(n: usize, link: Link) -> Result<Hosts> {
        if n > 250 {
            bail!("at most 250 hosts, not {n}");
        }
        remove_stale();
        let home = std::fs::File::open("/proc/thread-self/ns/net")
            .context("reading this thread's network namespace")?;
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
            .context("unshare(CLONE_NEWNET): not root, or namespaces are off")?;
        let mut hosts = Hosts {
            names: Vec::new(),
            netem: false,
        };
        match hosts.build(n, link) {
            Ok(()) => Ok(hosts),
            Err(e) => {
                drop(hosts);
                let _ = nix::sched::setns(home.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET);
                Err(e)
            }
        }
    }

    fn build(&mut self, n: usize, link: Link) -> Result<()> {
        run(&["ip", "link", "set", "lo", "up"], None)?;
        run(&["ip", "link", "add", "br0", "type", "bridge"], None)?;
        run(&["ip", "addr", "add", HUB, "dev", "br0"], None)?;
        run(&["ip", "link", "set", "br0", "up"], None)?;
        let pid = std::process::id();
        for i in 0..n {
            let ns = format!("{PREFIX}{pid}-{i}");
            run(&["ip", "netns", "add", &ns], None)?;
            self.names.push(ns.clone());
            let port = format!("h{i}");
            run(
                &[
                    "ip", "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
                    &ns,
                ],
                None,
            )?;
            run(&["ip", "link", "set", &port, "master", "br0", "up"], None)?;
            let ip = format!("{}/16", self.ip(i));
            run(&["ip", "-n", &ns, "addr", "add", &ip, "dev", "eth0"], None)?;
            run(&["ip", "-n", &ns, "link", "set", "eth0", "up"], None)?;
            run(&["ip", "-n", &ns, "link", "set", "lo", "up"], None)?;
            // netem if the first host can have it, then on every host.
            if i == 0 || self.netem {
                let netem = [
                    "ip",
                    "netns",
                    "exec",
                    &ns,
                    "tc",
                    "qdisc",
                    "add",
                    "dev",
                    "eth0",
                    "root",
                    "netem",
                    "delay",
                    &format!("{}us", link.delay.as_micros()),
                    &format!("{}us", link.jitter.as_micros()),
                    "loss",
                    &format!("{}%", link.loss_percent),
                ];
                match run(&netem, None) {
                    Ok(()) => self.netem = true,
                    Err(e) if self.netem => return Err(e),
                    Err(_) => {}
                }
            }
            // Without netem: loss on what the other hosts send, not on the
            // bench's own calls (it is at the hub's address).
            let mut rules = String::from("*filter\n:CUT - [0:0]\n-A INPUT -j CUT\n");
            if !self.netem && link.loss_percent > 0.0 {
                rules.push_str(&format!(
                    "-A INPUT -s 10.232.1.0/24 -m statistic --mode random --probability {:.6} -j DROP\n",
                    link.loss_percent / 100.0
                ));
            }
            restore(&ns, rules)?;
        }
        Ok(())
    }

    pub(super) fn ip(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 232, 1, 2 + i as u8)
    }

    /// The prefix that runs a command on host `i`.
    pub(super) fn exec(&self, i: usize) -> Vec<String> {
        ["ip", "netns", "exec", &self.names[i]]
            .map(String::from)
            .to_vec()
    }

    /// Cuts the hosts in two along `side` (None: heals): each drops what
    /// comes from the other side.
    pub(super) fn cut(&self, side: Option<&[bool]>) -> Result<()> {
        for (i, ns) in self.names.iter().enumerate() {
            let mut rules = String::from("*filter\n:CUT - [0:0]\n");
            if let Some(side) = side {
                for j in (0..self.names.len()).filter(|j| side[*j] != side[i]) {
                    rules.push_str(&format!("-A CUT -s {} -j DROP\n", self.ip(j)));
                }
            }
            restore(ns, rules)?;
        }
        Ok(())
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for ns in &self.names {
            let _ = run(&["ip", "netns", "del", ns], None);
        }
    }
}
