//! The piggyback queue: the newest claim about each member, sent a bounded
//! number of times (lambda x log N, SWIM §4.1), least-sent first.

use super::member::Update;
use crate::id::NodeId;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug)]
struct Rumour {
    update: Update,
    sent: u32,
    /// Newer rumours go first among equally-sent ones.
    order: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Rumours {
    by_member: BTreeMap<NodeId, Rumour>,
    /// (times sent, newest first, member): the sending order.
    index: BTreeSet<(u32, std::cmp::Reverse<u64>, NodeId)>,
    next: u64,
    /// Rumours dropped because the queue was full.
    pub dropped: u64,
}

impl Rumours {
    /// Queues a claim, replacing any older claim about the same member.
    pub fn push(&mut self, update: Update, max: usize) {
        self.remove(&update.id);
        self.next += 1;
        let order = self.next;
        self.index
            .insert((0, std::cmp::Reverse(order), update.id.clone()));
        self.by_member.insert(
            update.id.clone(),
            Rumour {
                update,
                sent: 0,
                order,
            },
        );
        while self.by_member.len() > max {
            // Full: the most-sent (then oldest) rumour goes.
            let Some(last) = self.index.iter().next_back().cloned() else {
                break;
            };
            self.remove(&last.2);
            self.dropped += 1;
        }
    }

    pub fn remove(&mut self, id: &NodeId) {
        if let Some(r) = self.by_member.remove(id) {
            self.index
                .remove(&(r.sent, std::cmp::Reverse(r.order), id.clone()));
        }
    }

    #[cfg(test)]
    pub fn get(&self, id: &NodeId) -> Option<&Update> {
        self.by_member.get(id).map(|r| &r.update)
    }

    pub fn is_empty(&self) -> bool {
        self.by_member.is_empty()
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_member.len()
    }

    /// Rumours for one message: least-sent first, within `budget` bytes;
    /// each taken rumour counts as sent once more, and one sent `limit`
    /// times is retired.
    pub fn take(&mut self, budget: usize, limit: u32, out: &mut Vec<Update>) {
        let mut used: usize = out.iter().map(Update::size).sum();
        let mut taken = Vec::new();
        for key in &self.index {
            let r = &self.by_member[&key.2];
            let size = r.update.size();
            if used + size > budget {
                if used == 0 {
                    continue;
                }
                break;
            }
            if out.iter().any(|u| u.id == r.update.id) {
                continue;
            }
            used += size;
            taken.push(key.clone());
            out.push(r.update.clone());
        }
        for (sent, order, id) in taken {
            self.index.remove(&(sent, order, id.clone()));
            let r = self.by_member.get_mut(&id).expect("indexed");
            r.sent += 1;
            if r.sent >= limit {
                self.by_member.remove(&id);
            } else {
                self.index.insert((r.sent, order, id));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::Epoch;
    use crate::membership::member::{Incarnation, Status};

    fn up(name: &str, n: u32) -> Update {
        Update {
            id: NodeId::new(name),
            inc: Incarnation::new(Epoch(1), n),
            status: Status::Alive,
            meta: None,
            from: None,
            sig: None,
        }
    }

    #[test]
    fn rumours_go_least_sent_first_and_retire_after_the_limit() {
        // SWIM §4.1: each rumour is piggybacked a bounded number of times.
        let mut r = Rumours::default();
        r.push(up("a", 0), 100);
        r.push(up("b", 0), 100);
        let mut out = vec![];
        r.take(10_000, 2, &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].id.as_str(), "b", "newest first");
        r.push(up("c", 0), 100);
        out.clear();
        r.take(45, 2, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].id.as_str(), "c", "the unsent one goes first");
        out.clear();
        r.take(10_000, 2, &mut out);
        assert_eq!(out.len(), 3);
        assert!(r.is_empty() || r.len() == 1);
        out.clear();
        r.take(10_000, 2, &mut out);
        assert!(r.is_empty(), "every rumour retired after two sends");
    }

    #[test]
    fn a_newer_claim_replaces_the_older_and_the_queue_is_bounded() {
        let mut r = Rumours::default();
        r.push(up("a", 0), 2);
        r.push(up("a", 1), 2);
        assert_eq!(r.len(), 1);
        assert_eq!(r.get(&NodeId::new("a")).unwrap().inc.n, 1);
        r.push(up("b", 0), 2);
        r.push(up("c", 0), 2);
        assert_eq!(r.len(), 2);
        assert_eq!(r.dropped, 1);
    }
}
