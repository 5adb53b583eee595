//! The active view: the few members this one exchanges payloads with, kept
//! symmetric by a handshake (HyParView's active view, Leitão et al. 2007,
//! without the passive view and shuffles: SWIM already gives every member
//! the full membership, and detects failures).
//!
//! Rules: keep `degree` neighbours, at most `max`; ask a random live member
//! when short; accept a request while below `max`, or always when the
//! requester has no neighbour at all (it would be cut off), dropping a
//! random neighbour to make room; drop a neighbour that SWIM declares dead
//! or that comes back in a new life (it has forgotten us).

use crate::id::NodeId;
use crate::outbox::Outbox;
use crate::rng::{Rng, RngExt};
use crate::time::Instant;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Active-view messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ViewMsg {
    /// "Be my neighbour"; `high` when the sender has no neighbour at all.
    #[serde(rename = "n")]
    Neighbor { high: bool },
    #[serde(rename = "ok")]
    Accept,
    #[serde(rename = "no")]
    Refuse,
    /// "I am not your neighbour (any more)".
    #[serde(rename = "bye")]
    Disconnect,
}

/// A change of neighbours, for the broadcast layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Neighbour {
    Up(NodeId),
    Down(NodeId),
}

/// How long a request may wait for its answer.
const PENDING_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub(crate) struct ActiveView {
    degree: usize,
    max: usize,
    active: BTreeSet<NodeId>,
    pending: BTreeMap<NodeId, Instant>,
    changes: Vec<Neighbour>,
}

impl ActiveView {
    pub fn new(degree: usize, max: usize) -> Self {
        ActiveView {
            degree,
            max: max.max(degree),
            active: BTreeSet::new(),
            pending: BTreeMap::new(),
            changes: Vec::new(),
        }
    }

    pub fn contains(&self, id: &NodeId) -> bool {
        self.active.contains(id)
    }

    /// Did this member ask `id` to be a neighbour, with no answer yet?
    pub fn is_pending(&self, id: &NodeId) -> bool {
        self.pending.contains_key(id)
    }

    pub fn members(&self) -> impl Iterator<Item = &NodeId> {
        self.active.iter()
    }

    pub fn len(&self) -> usize {
        self.active.len()
    }

    pub fn drain_changes(&mut self) -> impl Iterator<Item = Neighbour> + '_ {
        self.changes.drain(..)
    }

    fn add(&mut self, id: NodeId) {
        self.pending.remove(&id);
        if self.active.insert(id.clone()) {
            self.changes.push(Neighbour::Up(id));
        }
    }

    /// Drops a neighbour (it died, left, restarted, or said goodbye).
    pub fn remove(&mut self, id: &NodeId) {
        self.pending.remove(id);
        if self.active.remove(id) {
            self.changes.push(Neighbour::Down(id.clone()));
        }
    }

    /// How many more neighbours to ask for now.
    pub fn wanted(&mut self, now: Instant) -> usize {
        self.pending.retain(|_, t| *t + PENDING_TIMEOUT > now);
        self.degree
            .saturating_sub(self.active.len() + self.pending.len())
    }

    /// Asks `id` to be a neighbour.
    pub fn request(&mut self, now: Instant, id: &NodeId, out: &mut Outbox<ViewMsg>) {
        if self.active.contains(id) || self.pending.contains_key(id) {
            return;
        }
        self.pending.insert(id.clone(), now);
        let high = self.active.is_empty();
        out.push(id.clone(), ViewMsg::Neighbor { high });
    }

    pub fn handle(
        &mut self,
        from: &NodeId,
        msg: ViewMsg,
        alive: bool,
        rng: &mut Rng,
        out: &mut Outbox<ViewMsg>,
    ) {
        match msg {
            ViewMsg::Neighbor { high } => {
                if self.active.contains(from) {
                    out.push(from.clone(), ViewMsg::Accept);
                } else if alive && (self.active.len() < self.max || high) {
                    if self.active.len() >= self.max {
                        // Make room: someone else has other neighbours.
                        let victims: Vec<NodeId> = self.active.iter().cloned().collect();
                        let v = victims[rng.random_range(0..victims.len())].clone();
                        self.remove(&v);
                        out.push(v, ViewMsg::Disconnect);
                    }
                    self.add(from.clone());
                    out.push(from.clone(), ViewMsg::Accept);
                } else {
                    out.push(from.clone(), ViewMsg::Refuse);
                }
            }
            ViewMsg::Accept => {
                let asked = self.pending.remove(from).is_some();
                if (asked || self.active.contains(from)) && self.active.len() < self.max {
                    self.add(from.clone());
                } else if !self.active.contains(from) {
                    out.push(from.clone(), ViewMsg::Disconnect);
                }
            }
            ViewMsg::Refuse => {
                self.pending.remove(from);
            }
            ViewMsg::Disconnect => self.remove(from),
        }
    }

    pub fn pending_deadline(&self) -> Option<Instant> {
        self.pending.values().map(|t| *t + PENDING_TIMEOUT).min()
    }

    /// The invariant tests check: neighbours are not pending, never self.
    pub fn check(&self, me: &NodeId) -> Result<(), String> {
        if self.active.contains(me) {
            return Err("the active view holds this member".into());
        }
        if self.active.len() > self.max {
            return Err(format!(
                "{} neighbours, above the maximum {}",
                self.active.len(),
                self.max
            ));
        }
        if let Some(p) = self.active.iter().find(|p| self.pending.contains_key(*p)) {
            return Err(format!("{p} is both a neighbour and pending"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng;

    fn id(s: &str) -> NodeId {
        NodeId::new(s)
    }

    #[test]
    fn a_request_is_accepted_below_the_maximum_and_both_sides_agree() {
        let mut r = rng::child(1, "t");
        let (mut a, mut b) = (ActiveView::new(2, 3), ActiveView::new(2, 3));
        let mut out = Outbox::default();
        assert_eq!(a.wanted(Instant::ZERO), 2);
        a.request(Instant::ZERO, &id("b"), &mut out);
        assert_eq!(a.wanted(Instant::ZERO), 1, "a pending request counts");
        let (_, m) = out.pop().unwrap();
        assert_eq!(m, ViewMsg::Neighbor { high: true });
        b.handle(&id("a"), m, true, &mut r, &mut out);
        let (_, m) = out.pop().unwrap();
        assert_eq!(m, ViewMsg::Accept);
        a.handle(&id("b"), m, true, &mut r, &mut out);
        assert!(a.contains(&id("b")) && b.contains(&id("a")));
        assert_eq!(
            a.drain_changes().collect::<Vec<_>>(),
            vec![Neighbour::Up(id("b"))]
        );
        a.check(&id("a")).unwrap();
    }

    #[test]
    fn a_full_view_refuses_unless_the_requester_is_alone() {
        let mut r = rng::child(1, "t");
        let mut v = ActiveView::new(1, 2);
        let mut out = Outbox::default();
        for p in ["x", "y"] {
            v.handle(
                &id(p),
                ViewMsg::Neighbor { high: false },
                true,
                &mut r,
                &mut out,
            );
        }
        out.clear();
        v.handle(
            &id("z"),
            ViewMsg::Neighbor { high: false },
            true,
            &mut r,
            &mut out,
        );
        assert_eq!(out, vec![(id("z"), ViewMsg::Refuse)]);
        out.clear();
        v.handle(
            &id("z"),
            ViewMsg::Neighbor { high: true },
            true,
            &mut r,
            &mut out,
        );
        assert!(v.contains(&id("z")));
        assert_eq!(v.len(), 2, "someone was dropped to make room");
        assert!(out.iter().any(|(_, m)| *m == ViewMsg::Disconnect));
        // Dead members are not taken in.
        let mut w = ActiveView::new(1, 2);
        out.clear();
        w.handle(
            &id("d"),
            ViewMsg::Neighbor { high: true },
            false,
            &mut r,
            &mut out,
        );
        assert_eq!(out, vec![(id("d"), ViewMsg::Refuse)]);
    }

    #[test]
    fn unanswered_requests_expire_and_a_goodbye_removes_the_neighbour() {
        let mut r = rng::child(1, "t");
        let mut v = ActiveView::new(2, 3);
        let mut out = Outbox::default();
        v.request(Instant::ZERO, &id("b"), &mut out);
        assert_eq!(v.wanted(Instant::ZERO + Duration::from_secs(1)), 1);
        assert_eq!(v.wanted(Instant::ZERO + Duration::from_secs(3)), 2);
        v.handle(
            &id("c"),
            ViewMsg::Neighbor { high: false },
            true,
            &mut r,
            &mut out,
        );
        v.handle(&id("c"), ViewMsg::Disconnect, true, &mut r, &mut out);
        assert!(!v.contains(&id("c")));
    }
}
