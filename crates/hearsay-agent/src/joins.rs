//! Joins asked for while the agent runs (`hearsay join`, [`crate::Agent::join`],
//! Serf's `serf join`): each asks its addresses who they are, again after
//! a wait that doubles, until one answers by name (joined through it) or
//! its time is up; the caller then hears why: nobody answered, or what the
//! far side sent was refused here (another cluster, another key). Unlike
//! the start-up seeds, a runtime join that fails is over: nothing keeps
//! asking behind the operator's back.

use hearsay_core::membership::silence;
use hearsay_core::time::Instant;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::oneshot;

/// The first wait before an address is asked again.
const FIRST_WAIT: Duration = Duration::from_millis(250);

/// The answer to a join: the name of the member it joined through.
pub(crate) type Reply = oneshot::Sender<Result<String, String>>;

struct Joining {
    addrs: Vec<SocketAddr>,
    until: Instant,
    next: Instant,
    wait: Duration,
    /// Why what came from an address was refused here.
    refused: BTreeMap<SocketAddr, String>,
    reply: Reply,
}

#[derive(Default)]
pub(crate) struct Joins {
    list: Vec<Joining>,
}

impl Joins {
    /// A join through `addrs` until `timeout` from `now`: they are due at
    /// once.
    pub fn add(&mut self, now: Instant, addrs: Vec<SocketAddr>, timeout: Duration, reply: Reply) {
        if addrs.is_empty() {
            let _ = reply.send(Err("no address to join".into()));
            return;
        }
        self.list.push(Joining {
            addrs,
            until: now + timeout,
            next: now,
            wait: FIRST_WAIT,
            refused: BTreeMap::new(),
            reply,
        });
    }

    /// The addresses to ask now; joins whose time is up are answered with
    /// why and dropped.
    pub fn due(&mut self, now: Instant) -> Vec<SocketAddr> {
        let (over, going): (Vec<Joining>, Vec<Joining>) = std::mem::take(&mut self.list)
            .into_iter()
            .partition(|j| now >= j.until);
        self.list = going;
        for j in over {
            let each: Vec<String> = j
                .addrs
                .iter()
                .map(|a| silence(a, j.refused.get(a).map(String::as_str)))
                .collect();
            let _ = j
                .reply
                .send(Err(format!("could not join: {}", each.join(", "))));
        }
        let mut out = Vec::new();
        for j in &mut self.list {
            if j.next <= now {
                out.extend(j.addrs.iter().copied());
                j.next = now + j.wait;
                j.wait *= 2;
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// A member named `name` answered from `from`: every join through
    /// `from` is done (true if there was one; the caller joins `name`).
    pub fn answered(&mut self, from: &SocketAddr, name: &str) -> bool {
        let (done, going): (Vec<Joining>, Vec<Joining>) = std::mem::take(&mut self.list)
            .into_iter()
            .partition(|j| j.addrs.contains(from));
        self.list = going;
        let any = !done.is_empty();
        for j in done {
            let _ = j.reply.send(Ok(name.to_string()));
        }
        any
    }

    /// Something from `from` was refused here, for `why`.
    pub fn refused(&mut self, from: &SocketAddr, why: &str) {
        for j in &mut self.list {
            if j.addrs.contains(from) {
                j.refused.insert(*from, why.to_string());
            }
        }
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.list.iter().map(|j| j.next.min(j.until)).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(p: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], p))
    }

    #[test]
    fn a_join_asks_backing_off_and_ends_with_the_first_answer() {
        let mut j = Joins::default();
        let (tx, mut rx) = oneshot::channel();
        let t = Instant::ZERO;
        j.add(t, vec![addr(1), addr(2)], Duration::from_secs(5), tx);
        assert_eq!(j.due(t), [addr(1), addr(2)]);
        assert!(j.due(t).is_empty(), "asked once per wait");
        assert_eq!(j.next_deadline(), Some(t + FIRST_WAIT));
        assert_eq!(j.due(t + FIRST_WAIT).len(), 2);
        assert_eq!(
            j.next_deadline(),
            Some(t + FIRST_WAIT * 3),
            "the wait doubles"
        );
        assert!(!j.answered(&addr(3), "n3"), "not one of its addresses");
        assert!(j.answered(&addr(2), "n2"));
        assert_eq!(rx.try_recv().unwrap(), Ok("n2".to_string()));
        assert!(j.next_deadline().is_none() && j.due(t + FIRST_WAIT * 3).is_empty());
    }

    #[test]
    fn a_join_nobody_takes_says_why_when_its_time_is_up() {
        let mut j = Joins::default();
        let (tx, mut rx) = oneshot::channel();
        let t = Instant::ZERO;
        j.add(t, vec![addr(1), addr(2)], Duration::from_secs(2), tx);
        j.due(t);
        j.refused(&addr(2), "decrypt");
        j.refused(&addr(9), "decrypt");
        assert!(rx.try_recv().is_err(), "still trying");
        assert!(j.due(t + Duration::from_secs(2)).is_empty());
        let e = rx.try_recv().unwrap().unwrap_err();
        assert!(e.contains("127.0.0.1:1 (no answer)"), "{e}");
        assert!(
            e.contains("127.0.0.1:2 (it answers, but what it sends is refused here: decrypt)"),
            "{e}"
        );
        assert!(!e.contains(":9"), "{e}");
        let (tx, mut rx) = oneshot::channel();
        j.add(t, Vec::new(), Duration::from_secs(1), tx);
        assert!(rx.try_recv().unwrap().is_err(), "nothing to join");
    }
}
