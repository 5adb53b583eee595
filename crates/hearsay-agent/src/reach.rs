//! `hearsay reachability` (Serf's `serf reachability`, the tool for the
//! blocked UDP port behind most flapping): a round probes every member
//! directly; for half its time it waits for answers, then asks up to
//! [`RELAYS`] members that did answer to probe each silent one for it. The
//! answer per member says whether it answered directly, in how long, and
//! through whom it was reached otherwise. Members asked to relay probe for
//! the asker and say what they found ([`Relays`]). No sockets here: the
//! loop sends what these return.

use hearsay_core::time::Instant;
use hearsay_wire::reach::Reach;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::oneshot;

/// Members asked to probe a silent one, at most.
pub const RELAYS: usize = 3;

/// What a round found of one member.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Reached {
    /// The member's name.
    pub name: String,
    /// The address it was probed at, UDP and TCP.
    pub addr: SocketAddr,
    /// Round trip of the direct probe in milliseconds, if it was answered.
    pub udp_ms: Option<f64>,
    /// Members asked to probe it for us (only when it did not answer
    /// directly in half the round).
    pub via_asked: Vec<String>,
    /// Of them, those that reached it.
    pub via_ok: Vec<String>,
    /// Those that tried and could not reach it in time.
    pub via_failed: Vec<String>,
    /// TCP (the stream path: large payloads, map syncs): connect time in
    /// milliseconds; None: it failed (see `tcp_error`). Filled in outside
    /// the loop.
    pub tcp_ms: Option<f64>,
    /// Why the TCP connection failed; None: it worked.
    pub tcp_error: Option<String>,
}

impl Reached {
    /// Whether it answered directly over UDP and took a TCP connection.
    pub fn fine(&self) -> bool {
        self.udp_ms.is_some() && self.tcp_ms.is_some()
    }

    /// What the probes say, in words: where the problem likely is.
    pub fn verdict(&self) -> String {
        let tcp = match (&self.tcp_ms, &self.tcp_error) {
            (Some(_), _) => None,
            (None, Some(e)) => Some(format!(
                "TCP to it fails ({e}): payloads past a datagram and map syncs cannot reach it"
            )),
            (None, None) => None,
        };
        let udp = match (self.udp_ms, self.via_ok.is_empty(), self.via_failed.is_empty()) {
            (Some(_), ..) => None,
            (None, false, _) => Some(format!(
                "no direct UDP answer, but {} reached it: the path between here and it drops UDP (a firewall, a blocked port?)",
                self.via_ok.join(", ")
            )),
            // Up (TCP connects) yet silent over UDP to everyone: its port.
            (None, true, _) if !self.via_asked.is_empty() && self.tcp_ms.is_some() => Some(format!(
                "no UDP answer, directly nor through {}, but its TCP port connects: the host is up and its UDP is blocked (a firewall?) or the agent is stuck",
                self.via_asked.join(", ")
            )),
            (None, true, _) if !self.via_asked.is_empty() => Some(format!(
                "no answer, directly nor through {}: it is down, or its UDP port is blocked for everyone",
                self.via_asked.join(", ")
            )),
            (None, true, _) => Some(
                "no direct UDP answer, and no other member answered to ask: this agent's own UDP may be blocked"
                    .to_string(),
            ),
        };
        match (udp, tcp) {
            (None, None) => "ok".into(),
            (Some(u), None) => u,
            (None, Some(t)) => t,
            (Some(u), Some(t)) => format!("{u}; {t}"),
        }
    }
}

struct Target {
    r: Reached,
    /// The direct probe's number.
    id: u64,
    /// Relays asked: (relay's name, address).
    asked: Vec<(String, SocketAddr)>,
}

/// One reachability round this agent runs.
pub(crate) struct Round {
    started: Instant,
    direct_until: Instant,
    until: Instant,
    relayed: bool,
    targets: Vec<Target>,
    reply: oneshot::Sender<Vec<Reached>>,
}

/// Datagrams for the loop to send: (to, message).
pub(crate) type Sends = Vec<(SocketAddr, Reach)>;

impl Round {
    /// A round over `members` (name, address) from `now`; `next_id` gives
    /// probe numbers. Returns the direct probes to send.
    pub fn start(
        now: Instant,
        timeout: Duration,
        members: Vec<(String, SocketAddr)>,
        next_id: &mut u64,
        reply: oneshot::Sender<Vec<Reached>>,
    ) -> (Round, Sends) {
        let mut sends = Vec::new();
        let targets = members
            .into_iter()
            .map(|(name, addr)| {
                *next_id += 1;
                sends.push((addr, Reach::Ping { id: *next_id }));
                Target {
                    r: Reached {
                        name,
                        addr,
                        udp_ms: None,
                        via_asked: Vec::new(),
                        via_ok: Vec::new(),
                        via_failed: Vec::new(),
                        tcp_ms: None,
                        tcp_error: None,
                    },
                    id: *next_id,
                    asked: Vec::new(),
                }
            })
            .collect();
        let round = Round {
            started: now,
            direct_until: now + timeout / 2,
            until: now + timeout,
            relayed: false,
            targets,
            reply,
        };
        (round, sends)
    }

    /// A direct probe answered from `from`; true if it was one of this
    /// round's (from the member it was sent to).
    pub fn pong(&mut self, now: Instant, from: &SocketAddr, id: u64) -> bool {
        let Some(t) = self
            .targets
            .iter_mut()
            .find(|t| t.id == id && t.r.addr == *from)
        else {
            return false;
        };
        if t.r.udp_ms.is_none() {
            t.r.udp_ms = Some((now - self.started).as_secs_f64() * 1e3);
        }
        true
    }

    /// A relay said what its probe for us found; true if it was ours.
    pub fn via_done(&mut self, from: &SocketAddr, id: u64, ok: bool) -> bool {
        let Some(t) = self.targets.iter_mut().find(|t| t.id == id) else {
            return false;
        };
        let Some((name, _)) = t.asked.iter().find(|(_, a)| a == from) else {
            return false;
        };
        let list = if ok {
            &mut t.r.via_ok
        } else {
            &mut t.r.via_failed
        };
        if !list.contains(name) {
            list.push(name.clone());
        }
        true
    }

    /// Time passed: past half the round, relays are asked about the silent
    /// members (returned to send); at its end the round is over (`None`,
    /// answered).
    pub fn tick(mut self, now: Instant) -> (Option<Round>, Sends) {
        let mut sends = Vec::new();
        if !self.relayed && now >= self.direct_until {
            self.relayed = true;
            let answered: Vec<(String, SocketAddr)> = self
                .targets
                .iter()
                .filter(|t| t.r.udp_ms.is_some())
                .map(|t| (t.r.name.clone(), t.r.addr))
                .collect();
            // Relays answer within most of what is left, so their word
            // comes back before the round ends.
            let wait_ms =
                u32::try_from(((self.until - now) * 3 / 4).as_millis()).unwrap_or(u32::MAX);
            for (i, t) in self
                .targets
                .iter_mut()
                .enumerate()
                .filter(|(_, t)| t.r.udp_ms.is_none())
            {
                // Different relays for different silent members, where
                // there are enough.
                for k in 0..answered.len().min(RELAYS) {
                    let relay = answered[(i + k) % answered.len()].clone();
                    sends.push((
                        relay.1,
                        Reach::Via {
                            id: t.id,
                            target: t.r.name.clone(),
                            wait_ms,
                        },
                    ));
                    t.r.via_asked.push(relay.0.clone());
                    t.asked.push(relay);
                }
            }
        }
        if now >= self.until {
            let out = self.targets.into_iter().map(|t| t.r).collect();
            let _ = self.reply.send(out);
            return (None, sends);
        }
        (Some(self), sends)
    }

    pub fn next_deadline(&self) -> Instant {
        if self.relayed {
            self.until
        } else {
            self.direct_until
        }
    }
}

/// Probes this agent makes for others.
#[derive(Default)]
pub(crate) struct Relays {
    /// (our probe's number, the asker's number, the asker, the target,
    /// until).
    list: Vec<(u64, u64, SocketAddr, SocketAddr, Instant)>,
}

/// Probes made for others at once, at most; past it a relay request is
/// not answered.
pub const MAX_RELAYED: usize = 256;
/// Probes made for one asker at once, at most (a round asks a relay
/// about each member at most once).
pub const MAX_RELAYED_PER_ASKER: usize = 64;

/// The longest a relay waits for the member it probes.
pub const RELAY_WAIT: Duration = Duration::from_secs(10);

impl Relays {
    /// `asker` wants `target` (at `addr`, if a member here) probed under
    /// its number `id`: the probe to send, or the answer at once, or
    /// nothing when too many probes for others are out already.
    pub fn ask(
        &mut self,
        now: Instant,
        asker: SocketAddr,
        id: u64,
        target: Option<SocketAddr>,
        wait: Duration,
        next_id: &mut u64,
    ) -> Option<(SocketAddr, Reach)> {
        let busy = self.list.len() >= MAX_RELAYED
            || self.list.iter().filter(|r| r.2 == asker).count() >= MAX_RELAYED_PER_ASKER;
        match target {
            _ if busy => None,
            Some(addr) => {
                *next_id += 1;
                self.list
                    .push((*next_id, id, asker, addr, now + wait.min(RELAY_WAIT)));
                Some((addr, Reach::Ping { id: *next_id }))
            }
            None => Some((asker, Reach::ViaDone { id, ok: false })),
        }
    }

    /// A probe of ours answered from `from`: the asker is told (`None`:
    /// not one of ours from that member).
    pub fn pong(&mut self, from: &SocketAddr, id: u64) -> Option<(SocketAddr, Reach)> {
        let i = self.list.iter().position(|r| r.0 == id && r.3 == *from)?;
        let (_, asked, asker, _, _) = self.list.swap_remove(i);
        Some((
            asker,
            Reach::ViaDone {
                id: asked,
                ok: true,
            },
        ))
    }

    /// Probes whose time is up: their askers are told they failed.
    pub fn expire(&mut self, now: Instant) -> Sends {
        let mut out = Vec::new();
        self.list.retain(|&(_, id, asker, _, until)| {
            if now >= until {
                out.push((asker, Reach::ViaDone { id, ok: false }));
                false
            } else {
                true
            }
        });
        out
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.list.iter().map(|r| r.4).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(p: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], p))
    }

    #[test]
    fn a_silent_member_is_asked_about_through_those_that_answered() {
        let (tx, mut rx) = oneshot::channel();
        let t0 = Instant::ZERO;
        let mut id = 0;
        let members = vec![("b".into(), a(2)), ("c".into(), a(3)), ("d".into(), a(4))];
        let (mut r, sends) = Round::start(t0, Duration::from_secs(2), members, &mut id, tx);
        assert_eq!(sends.len(), 3, "every member probed directly");
        let ids: Vec<u64> = sends
            .iter()
            .map(|(_, m)| match m {
                Reach::Ping { id } => *id,
                _ => panic!("{m:?}"),
            })
            .collect();
        let ms = Duration::from_millis(40);
        assert!(!r.pong(t0 + ms, &a(3), ids[0]), "b's probe answered by c");
        assert!(r.pong(t0 + ms, &a(2), ids[0]) && r.pong(t0 + ms, &a(4), ids[2]));
        assert!(!r.pong(t0 + ms, &a(2), 999), "not ours");
        let (r2, sends) = r.tick(t0 + Duration::from_millis(999));
        assert!(sends.is_empty(), "still the direct half");
        let (r3, sends) = r2.unwrap().tick(t0 + Duration::from_secs(1));
        // c was silent: both b and d are asked about it.
        let mut to: Vec<SocketAddr> = sends.iter().map(|s| s.0).collect();
        to.sort();
        assert_eq!(to, [a(2), a(4)]);
        assert!(sends.iter().all(|(_, m)| *m
            == Reach::Via {
                id: ids[1],
                target: "c".into(),
                wait_ms: 750
            }));
        let mut r3 = r3.unwrap();
        assert!(r3.via_done(&a(2), ids[1], true));
        assert!(r3.via_done(&a(4), ids[1], false));
        assert!(!r3.via_done(&a(9), ids[1], true), "not a relay asked");
        let (done, _) = r3.tick(t0 + Duration::from_secs(2));
        assert!(done.is_none());
        let found = rx.try_recv().unwrap();
        assert_eq!(found[0].udp_ms, Some(40.0));
        let c = &found[1];
        assert_eq!((c.name.as_str(), c.udp_ms), ("c", None));
        assert_eq!(
            (c.via_ok.clone(), c.via_failed.clone()),
            (vec!["b".to_string()], vec!["d".to_string()])
        );
        assert_eq!(c.via_asked, ["d", "b"], "rotated per silent member");
        assert!(c.verdict().contains("drops UDP"), "{}", c.verdict());
    }

    #[test]
    fn a_relay_answers_for_the_asker_or_says_it_failed() {
        let mut r = Relays::default();
        let mut id = 100;
        let t0 = Instant::ZERO;
        let w = Duration::from_secs(1);
        let (to, ping) = r.ask(t0, a(1), 7, Some(a(3)), w, &mut id).unwrap();
        assert_eq!((to, ping), (a(3), Reach::Ping { id: 101 }));
        assert_eq!(r.pong(&a(4), 101), None, "from another member");
        assert_eq!(
            r.pong(&a(3), 101),
            Some((a(1), Reach::ViaDone { id: 7, ok: true }))
        );
        assert_eq!(r.pong(&a(3), 101), None, "answered once");
        r.ask(t0, a(1), 8, Some(a(3)), w, &mut id);
        assert!(r.expire(t0).is_empty());
        assert_eq!(
            r.expire(t0 + w),
            [(a(1), Reach::ViaDone { id: 8, ok: false })]
        );
        let (to, msg) = r.ask(t0, a(1), 9, None, w, &mut id).unwrap();
        assert_eq!(
            (to, msg),
            (a(1), Reach::ViaDone { id: 9, ok: false }),
            "not a member here"
        );
        // One asker cannot fill the relay table, nor can many.
        for i in 0..MAX_RELAYED_PER_ASKER as u64 {
            assert!(r.ask(t0, a(1), i, Some(a(3)), w, &mut id).is_some());
        }
        assert!(r.ask(t0, a(1), 99, Some(a(3)), w, &mut id).is_none());
        for p in 10..20u16 {
            for i in 0..MAX_RELAYED_PER_ASKER as u64 {
                r.ask(t0, a(p), i, Some(a(3)), w, &mut id);
            }
        }
        assert_eq!(r.list.len(), MAX_RELAYED);
        r.expire(t0 + w);
        assert!(r.next_deadline().is_none());
    }
}
