//! Keyring changes across the cluster (what `serf keys` does): the agent
//! asked applies the change itself, then asks every live member to apply it
//! and answer with its keyring, asking again those that have not answered,
//! until all have or the time is up. The questions travel sealed like any
//! datagram, so only a holder of a cluster key can ask; every change is
//! idempotent (removing a key that is gone is not an error), so asking
//! twice is harmless.

use hearsay_core::id::NodeId;
use hearsay_core::query::Gather;
use hearsay_core::time::Instant;
pub use hearsay_wire::keys::{KeyQuery, Op};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

/// How long a cluster-wide change waits for the members' answers.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// When the members that have not answered are first asked again (the
/// wait doubles after that).
pub const RETRY: Duration = Duration::from_millis(500);
/// Cluster-wide changes in progress at once (more are refused).
pub const MAX_PENDING: usize = 8;

/// Who was asked and what each answered.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The change asked for: `install`, `use`, `remove`, or `list` (only
    /// collect every member's keyring).
    pub op: &'static str,
    /// Every live member asked, this agent included.
    pub asked: Vec<String>,
    /// Keyrings of those that did it (primary first).
    pub ok: BTreeMap<String, Vec<String>>,
    /// Those that refused, and why.
    pub refused: BTreeMap<String, String>,
    /// Those that did not answer in time.
    pub silent: Vec<String>,
    /// Every member asked did it.
    pub complete: bool,
}

/// A change waiting for answers: the core's [`Gather`] does the asking,
/// asking again and timing out; this keeps the report and the reply.
pub struct Pending {
    /// This change's number, which the members' answers carry back.
    pub id: u64,
    /// The change, as each member is asked to make it.
    pub op: Op,
    gather: Gather<SocketAddr, Result<Vec<String>, String>>,
    report: Report,
    /// Where the report goes once the change is done ([`Pending::finish`]).
    pub reply: tokio::sync::oneshot::Sender<Result<Report, String>>,
}

impl Pending {
    /// `local` is this agent's own answer; `targets` the other live
    /// members.
    pub fn new(
        id: u64,
        op: Op,
        me: &NodeId,
        local: Result<Vec<String>, String>,
        targets: BTreeMap<NodeId, SocketAddr>,
        now: Instant,
        reply: tokio::sync::oneshot::Sender<Result<Report, String>>,
    ) -> Pending {
        let mut report = Report {
            op: op.verb(),
            asked: std::iter::once(me.to_string())
                .chain(targets.keys().map(NodeId::to_string))
                .collect(),
            ..Report::default()
        };
        report.asked.sort();
        record(&mut report, me, local);
        Pending {
            id,
            op,
            gather: Gather::new(now, targets, RETRY, TIMEOUT),
            report,
            reply,
        }
    }

    /// Members to ask now (those that have not answered, when a retry is
    /// due).
    pub fn due(&mut self, now: Instant) -> Vec<SocketAddr> {
        self.gather.due(now)
    }

    /// Records `from`'s answer: its keyring after the change, or why it
    /// refused. An answer from a member not asked is ignored; a later one
    /// replaces an earlier one.
    pub fn answer(&mut self, from: &NodeId, keys: Result<Vec<String>, String>) {
        self.gather.answer(from, keys);
    }

    /// Everyone answered, or the time is up.
    pub fn done(&self, now: Instant) -> bool {
        self.gather.done(now)
    }

    /// When to look again: the next retry or the timeout, whichever
    /// comes first.
    pub fn next_deadline(&self) -> Instant {
        self.gather.next_deadline()
    }

    /// Sends the report on `reply`: the answers that came, and the
    /// members that stayed silent.
    pub fn finish(mut self) {
        let (answers, silent) = self.gather.finish();
        for (who, keys) in answers {
            record(&mut self.report, &who, keys);
        }
        let r = &mut self.report;
        // In name order, as `asked` is.
        r.silent = silent.iter().map(NodeId::to_string).collect();
        r.complete = r.ok.len() == r.asked.len();
        let _ = self.reply.send(Ok(self.report));
    }
}

fn record(r: &mut Report, who: &NodeId, keys: Result<Vec<String>, String>) {
    match keys {
        Ok(k) => {
            r.refused.remove(&who.to_string());
            r.ok.insert(who.to_string(), k);
        }
        Err(e) => {
            r.refused.insert(who.to_string(), e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyring::Key;

    fn addr(p: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], p))
    }

    #[test]
    fn asks_again_only_the_silent_and_reports_who_did_what() {
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        let t0 = Instant::from_millis(1000);
        let targets: BTreeMap<NodeId, SocketAddr> = [("b", 2), ("c", 3), ("d", 4)]
            .into_iter()
            .map(|(n, p)| (NodeId::new(n), addr(p)))
            .collect();
        let mut p = Pending::new(
            1,
            Op::List,
            &NodeId::new("a"),
            Ok(vec!["k1".into()]),
            targets,
            t0,
            tx,
        );
        assert_eq!(p.due(t0).len(), 3);
        assert!(p.due(t0 + RETRY / 2).is_empty(), "not before the retry");
        p.answer(&NodeId::new("b"), Ok(vec!["k1".into()]));
        p.answer(&NodeId::new("c"), Err("no".into()));
        p.answer(&NodeId::new("x"), Ok(vec![]));
        assert_eq!(p.due(t0 + RETRY), vec![addr(4)]);
        assert!(!p.done(t0 + RETRY));
        assert!(p.done(t0 + TIMEOUT));
        p.finish();
        let r = rx.try_recv().unwrap().unwrap();
        assert_eq!(r.asked, ["a", "b", "c", "d"]);
        assert_eq!(r.ok.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(r.refused["c"], "no");
        assert_eq!(r.silent, ["d"]);
        assert!(!r.complete);
    }

    #[test]
    fn the_wire_form_round_trips() {
        for q in [
            KeyQuery::Ask {
                id: 7,
                op: Op::Install(Key::generate().to_base64()),
            },
            KeyQuery::Answer {
                id: 7,
                keys: Err("that key is the primary".into()),
            },
        ] {
            let b = rmp_serde::to_vec_named(&q).unwrap();
            assert_eq!(rmp_serde::from_slice::<KeyQuery>(&b).unwrap(), q);
        }
    }
}
