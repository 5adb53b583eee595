//! Per-destination delivery queues with Maelstrom's semantics:
//!
//! - latency 0 whenever a client is at either end, a fresh draw otherwise;
//! - each destination takes the head of its queue (earliest deadline),
//!   checks partitions *at that moment* (dropping silently), then waits for
//!   the deadline and delivers; while it waits, a later-enqueued message
//!   with an earlier deadline waits behind it (head-of-line blocking);
//! - a client only takes messages while it waits for a reply.

use super::journal::{Event, Journal};
use super::latency::Latency;
use super::record::NetRecord;
use hearsay_core::rng::Rng;
use hearsay_core::simnet::Agenda;
use serde_json::value::RawValue;
use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap, HashSet};

const MS: u64 = 1_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Addr(pub u32);

#[derive(Debug, Clone)]
pub struct Envelope {
    pub id: u64,
    pub src: Addr,
    pub dest: Addr,
    pub body: Box<RawValue>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    #[error("Invalid source for message: no node or open client named {0:?}")]
    UnknownSrc(String),
    #[error("Invalid dest for message: no node or open client named {0:?}")]
    UnknownDest(String),
}

#[derive(Debug)]
struct Pending {
    deadline: u64,
    seq: u64,
    env: Envelope,
}

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        (self.deadline, self.seq) == (o.deadline, o.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    fn cmp(&self, o: &Self) -> Ordering {
        (self.deadline, self.seq).cmp(&(o.deadline, o.seq))
    }
}

#[derive(Debug)]
struct Queue {
    waiting: BinaryHeap<Reverse<Pending>>,
    /// Taken off the queue, partition-checked, waiting for its deadline.
    head: Option<Pending>,
    accepting: bool,
}

#[derive(Debug)]
pub struct Network {
    names: Vec<String>,
    client: Vec<bool>,
    lookup: HashMap<String, Addr>,
    queues: Vec<Option<Queue>>,
    /// Every queue head, by (deadline, message seq): the simulation core's
    /// agenda, ordered as Maelstrom's per-destination queues release them.
    wake: Agenda<(u64, u64), u32>,
    /// (src, dest) pairs whose messages the destination drops.
    drops: HashSet<(Addr, Addr)>,
    latency: Latency,
    rng: Rng,
    next_id: u64,
    next_seq: u64,
    next_client: u64,
    journal: Journal,
    dropped: u64,
    /// Messages each server node sent to other servers.
    sent_by: Vec<u64>,
    record: NetRecord,
}

impl Network {
    /// A network with the given server nodes (addresses 0..n in order).
    pub fn new(servers: &[String], latency: Latency, rng: Rng, journal: Journal) -> Self {
        let mut net = Network {
            names: Vec::new(),
            client: Vec::new(),
            lookup: HashMap::new(),
            queues: Vec::new(),
            wake: Agenda::default(),
            drops: HashSet::new(),
            latency,
            rng,
            next_id: 0,
            next_seq: 0,
            next_client: 0,
            journal,
            dropped: 0,
            sent_by: vec![0; servers.len()],
            record: NetRecord::default(),
        };
        for s in servers {
            net.register(s.clone(), false, true);
        }
        net
    }

    /// Adds a service (a server-side node inside the harness, never
    /// partitioned: partitions list test nodes only).
    /// The id the next message will get: every message sent so far has a
    /// smaller one.
    pub fn next_id(&self) -> u64 {
        self.next_id
    }

    pub fn add_service(&mut self, name: &str) -> Addr {
        self.register(name.to_string(), false, true)
    }

    fn register(&mut self, name: String, client: bool, accepting: bool) -> Addr {
        let a = Addr(self.names.len() as u32);
        self.lookup.insert(name.clone(), a);
        self.names.push(name);
        self.client.push(client);
        self.queues.push(Some(Queue {
            waiting: BinaryHeap::new(),
            head: None,
            accepting,
        }));
        a
    }

    /// Opens a client `c<k>` (k counts from 0 and is never reused).
    pub fn open_client(&mut self) -> Addr {
        let name = format!("c{}", self.next_client);
        self.next_client += 1;
        self.register(name, true, false)
    }

    /// Removes a client (or node) from the network: later messages to it are
    /// invalid, and anything queued for it is discarded undelivered.
    pub fn close(&mut self, a: Addr) {
        if let Some(slot) = self.queues.get_mut(a.0 as usize) {
            *slot = None;
        }
        if let Some(name) = self.names.get(a.0 as usize) {
            self.lookup.remove(name);
        }
    }

    /// Every name ever registered, by address (clients included).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// What the pictures of the run are drawn from.
    pub fn take_record(&mut self) -> NetRecord {
        std::mem::take(&mut self.record)
    }

    pub fn addr(&self, name: &str) -> Option<Addr> {
        self.lookup.get(name).copied()
    }

    pub fn name(&self, a: Addr) -> &str {
        &self.names[a.0 as usize]
    }

    pub fn is_client(&self, a: Addr) -> bool {
        self.client[a.0 as usize]
    }

    fn open(&self, a: Addr) -> bool {
        self.queues.get(a.0 as usize).is_some_and(Option::is_some)
    }

    /// Sends by name, as a node's stdout does.
    pub fn send_named(
        &mut self,
        now: u64,
        src: &str,
        dest: &str,
        body: Box<RawValue>,
    ) -> Result<u64, NetError> {
        let s = self
            .addr(src)
            .ok_or_else(|| NetError::UnknownSrc(src.to_string()))?;
        let d = self
            .addr(dest)
            .ok_or_else(|| NetError::UnknownDest(dest.to_string()))?;
        self.send(now, s, d, body)
    }

    /// Journals the send and enqueues the message; returns its id.
    pub fn send(
        &mut self,
        now: u64,
        src: Addr,
        dest: Addr,
        body: Box<RawValue>,
    ) -> Result<u64, NetError> {
        if !self.open(src) {
            return Err(NetError::UnknownSrc(
                self.names.get(src.0 as usize).cloned().unwrap_or_default(),
            ));
        }
        if !self.open(dest) {
            return Err(NetError::UnknownDest(
                self.names.get(dest.0 as usize).cloned().unwrap_or_default(),
            ));
        }
        let client = self.is_client(src) || self.is_client(dest);
        if !client && let Some(n) = self.sent_by.get_mut(src.0 as usize) {
            *n += 1;
        }
        let latency_ms = if client {
            0
        } else {
            self.latency.sample(&mut self.rng)
        };
        let id = self.next_id;
        self.next_id += 1;
        let seq = self.next_seq;
        self.next_seq += 1;
        self.journal.record(
            Event::Send,
            now,
            id,
            &self.names[src.0 as usize],
            &self.names[dest.0 as usize],
            client,
            &body,
        );
        self.record
            .note(false, now, id, (src.0, dest.0), !client, body.get());
        let pending = Pending {
            deadline: now.saturating_add(latency_ms.saturating_mul(MS)),
            seq,
            env: Envelope {
                id,
                src,
                dest,
                body,
            },
        };
        if let Some(q) = self.queues[dest.0 as usize].as_mut() {
            q.waiting.push(Reverse(pending));
        }
        self.take_head(dest);
        Ok(id)
    }

    /// If `dest` is idle and accepting, takes its next deliverable message.
    fn take_head(&mut self, dest: Addr) {
        let Some(q) = self.queues[dest.0 as usize].as_mut() else {
            return;
        };
        if q.head.is_some() || !q.accepting {
            return;
        }
        while let Some(Reverse(p)) = q.waiting.pop() {
            if self.drops.contains(&(p.env.src, dest)) {
                self.dropped += 1;
                continue;
            }
            self.wake.push((p.deadline, p.seq), dest.0);
            q.head = Some(p);
            return;
        }
    }

    /// The next message due at or before `now`, journaled as delivered.
    pub fn pop_due(&mut self, now: u64) -> Option<Envelope> {
        while let Some((key, dest)) = self.wake.pop_until((now, u64::MAX)) {
            let (_, seq) = key.at();
            let dest = Addr(dest);
            let Some(q) = self.queues[dest.0 as usize].as_mut() else {
                continue;
            };
            if q.head.as_ref().is_none_or(|h| h.seq != seq) {
                continue;
            }
            let p = q.head.take().expect("checked above");
            if self.client[dest.0 as usize] {
                // A client takes one message per receive call; the runner
                // asks again if it is still waiting.
                q.accepting = false;
            }
            let env = p.env;
            let client = self.is_client(env.src) || self.is_client(dest);
            self.journal.record(
                Event::Recv,
                now,
                env.id,
                &self.names[env.src.0 as usize],
                &self.names[dest.0 as usize],
                client,
                &env.body,
            );
            self.record.note(
                true,
                now,
                env.id,
                (env.src.0, dest.0),
                !client,
                env.body.get(),
            );
            self.take_head(dest);
            return Some(env);
        }
        None
    }

    /// When the next delivery is due.
    pub fn next_deadline(&self) -> Option<u64> {
        self.wake.next_at().map(|(d, _)| d)
    }

    /// A client starts (or stops) waiting for a reply.
    pub fn set_accepting(&mut self, a: Addr, accepting: bool) {
        if let Some(q) = self.queues.get_mut(a.0 as usize).and_then(Option::as_mut) {
            q.accepting = accepting;
        }
        if accepting {
            self.take_head(a);
        }
    }

    /// `drops` maps each destination to the sources it drops (a Jepsen grudge).
    pub fn partition(&mut self, grudge: &[(Addr, Vec<Addr>)]) {
        for (dest, srcs) in grudge {
            for s in srcs {
                self.drops.insert((*s, *dest));
            }
        }
    }

    pub fn heal(&mut self) {
        self.drops.clear();
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    pub fn journal_mut(&mut self) -> &mut Journal {
        &mut self.journal
    }

    /// Messages discarded by partitions.
    /// Server-to-server messages sent by each server, by node index.
    pub fn sent_by(&self) -> &[u64] {
        &self.sent_by
    }

    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::LatencyDist;
    use hearsay_core::rng::child;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_string()).unwrap()
    }

    fn net(latency_ms: u64) -> Network {
        let names: Vec<String> = (0..3).map(|i| format!("n{i}")).collect();
        Network::new(
            &names,
            Latency {
                mean_ms: latency_ms,
                dist: LatencyDist::Constant,
            },
            child(1, "net"),
            Journal::default(),
        )
    }

    #[test]
    fn node_messages_wait_their_latency_client_messages_do_not() {
        let mut n = net(100);
        let c = n.open_client();
        assert_eq!(n.name(c), "c0");
        n.send_named(0, "n0", "n1", raw("{}")).unwrap();
        n.send(0, c, Addr(1), raw("{}")).unwrap();
        // Head-of-line: n1 already holds the node message (due at 100 ms), so
        // the client message (due at 0) waits behind it.
        assert!(n.pop_due(0).is_none());
        assert_eq!(n.next_deadline(), Some(100 * MS));
        let a = n.pop_due(100 * MS).unwrap();
        let b = n.pop_due(100 * MS).unwrap();
        assert_eq!((a.id, b.id), (0, 1));
        let s = n.journal().stats();
        assert_eq!(
            (
                s.servers.send,
                s.servers.recv,
                s.clients.send,
                s.clients.recv
            ),
            (1, 1, 1, 1)
        );
    }

    #[test]
    fn partitions_are_checked_when_the_message_reaches_the_head() {
        let mut n = net(100);
        n.send_named(0, "n0", "n1", raw("1")).unwrap(); // head of n1 at once
        n.send_named(0, "n2", "n1", raw("2")).unwrap(); // queued behind it
        n.partition(&[(Addr(1), vec![Addr(0), Addr(2)])]);
        // The head was taken before the partition: it is still delivered.
        assert_eq!(n.pop_due(100 * MS).unwrap().body.get(), "1");
        // The second reached the head under the partition: dropped.
        assert!(n.pop_due(200 * MS).is_none());
        assert_eq!(n.dropped(), 1);
        n.heal();
        n.send_named(300 * MS, "n0", "n1", raw("3")).unwrap();
        assert_eq!(n.pop_due(400 * MS).unwrap().body.get(), "3");
        assert_eq!(n.journal().stats().servers.send, 3);
        assert_eq!(n.journal().stats().servers.recv, 2);
    }

    #[test]
    fn clients_take_messages_only_while_waiting_and_closed_clients_are_invalid() {
        let mut n = net(0);
        let c = n.open_client();
        n.send_named(0, "n0", "c0", raw("1")).unwrap();
        n.send_named(0, "n0", "c0", raw("2")).unwrap();
        assert!(n.pop_due(10).is_none(), "not waiting");
        n.set_accepting(c, true);
        assert_eq!(n.pop_due(10).unwrap().body.get(), "1");
        assert!(n.pop_due(10).is_none(), "one message per receive");
        n.set_accepting(c, true);
        assert_eq!(n.pop_due(10).unwrap().body.get(), "2");
        n.close(c);
        assert_eq!(
            n.send_named(20, "n0", "c0", raw("3")),
            Err(NetError::UnknownDest("c0".into()))
        );
        assert_eq!(n.open_client(), Addr(4));
        assert_eq!(n.name(Addr(4)), "c1");
    }
}
