//! Machines on a simulated network: every message goes through the fault
//! model, every timer fires in time order; crashed members lose their
//! state, paused ones keep what reaches them until they run again.

use super::{Agenda, Faults, Key};
use crate::id::NodeId;
use crate::machine::Machine;
use crate::outbox::Outbox;
use crate::time::Instant;
use std::collections::BTreeMap;

enum Ev<Msg> {
    Deliver {
        from: usize,
        to: usize,
        msg: Msg,
    },
    Timer(usize),
    /// A pause ends (if it is still the one that was set).
    Wake(usize),
}

/// A run that keeps acting at one instant without end (a machine that
/// answers itself, or a deadline that never moves on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stuck {
    pub at: Instant,
    pub steps: usize,
}

impl std::fmt::Display for Stuck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "over {} inputs at {} without virtual time moving on",
            self.steps, self.at
        )
    }
}

impl std::error::Error for Stuck {}

/// Each name's position.
pub fn index_of(names: &[NodeId]) -> BTreeMap<NodeId, usize> {
    names
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, id)| (id, i))
        .collect()
}

/// Inputs at one instant after which a run is [`Stuck`].
const MAX_STEPS_PER_INSTANT: usize = 10_000_000;

pub struct Network<M: Machine> {
    names: Vec<NodeId>,
    index: BTreeMap<NodeId, usize>,
    nodes: Vec<Option<M>>,
    zones: Vec<usize>,
    paused_until: Vec<Option<Instant>>,
    held: Vec<Vec<(usize, M::Msg)>>,
    agenda: Agenda<Instant, Ev<M::Msg>>,
    timers: Vec<Option<Key<Instant>>>,
    pub faults: Faults,
    now: Instant,
    sent: u64,
    to_self: u64,
    /// What each message becomes on the way (a codec round trip, or
    /// packing); None drops it as a receiver would refuse it.
    pub wire: fn(M::Msg) -> Option<M::Msg>,
    /// Messages that go over a stream: never lost or duplicated, only cut.
    pub stream: fn(&M::Msg) -> bool,
    steps_now: usize,
}

impl<M: Machine> Network<M>
where
    M::Msg: Clone,
{
    /// Nodes named `names`, all running from time zero.
    pub fn new(names: Vec<NodeId>, nodes: Vec<M>, faults: Faults) -> Self {
        assert_eq!(names.len(), nodes.len(), "one name per node");
        let n = names.len();
        let index = index_of(&names);
        let mut net = Network {
            names,
            index,
            nodes: nodes.into_iter().map(Some).collect(),
            zones: vec![0; n],
            paused_until: vec![None; n],
            held: (0..n).map(|_| Vec::new()).collect(),
            agenda: Agenda::default(),
            timers: vec![None; n],
            faults,
            now: Instant::ZERO,
            sent: 0,
            to_self: 0,
            wire: Some,
            stream: |_| false,
            steps_now: 0,
        };
        for i in 0..n {
            net.rearm(i);
        }
        net
    }

    pub fn now(&self) -> Instant {
        self.now
    }

    pub fn index_of(&self, id: &NodeId) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// Messages sent so far (before loss and duplication).
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Messages a node addressed to itself (delivered, but a gossip
    /// machine that does this has a bug).
    pub fn sent_to_self(&self) -> u64 {
        self.to_self
    }

    /// Messages on the wire or waiting for a paused receiver.
    pub fn in_flight(&self) -> usize {
        let held: usize = self.held.iter().map(Vec::len).sum();
        held + self
            .agenda
            .iter()
            .filter(|(_, e)| matches!(e, Ev::Deliver { .. }))
            .count()
    }

    /// Messages on the wire, in time order: (due, from, to, message).
    pub fn on_the_wire(&self) -> impl Iterator<Item = (Instant, usize, usize, &M::Msg)> {
        self.agenda.iter().filter_map(|(t, e)| match e {
            Ev::Deliver { from, to, msg } => Some((t, *from, *to, msg)),
            _ => None,
        })
    }

    pub fn node(&self, i: usize) -> Option<&M> {
        self.nodes[i].as_ref()
    }

    pub fn nodes(&self) -> impl Iterator<Item = &M> {
        self.nodes.iter().flatten()
    }

    pub fn live(&self, i: usize) -> bool {
        self.nodes[i].is_some()
    }

    pub fn set_zone(&mut self, i: usize, zone: usize) {
        self.zones[i] = zone;
    }

    /// Calls `f` on node `i` now (an application's input), sends what it
    /// writes and re-arms its timer; None if the node is down.
    pub fn input<R>(
        &mut self,
        i: usize,
        f: impl FnOnce(&mut M, Instant, &mut Outbox<M::Msg>) -> R,
    ) -> Option<R> {
        let mut out = Outbox::default();
        let r = f(self.nodes[i].as_mut()?, self.now, &mut out);
        self.send(i, out);
        self.rearm(i);
        Some(r)
    }

    /// Stops node `i` with its state; what was sent to it is lost. Returns
    /// the node as it was.
    pub fn crash(&mut self, i: usize) -> Option<M> {
        self.disarm(i);
        self.held[i].clear();
        self.paused_until[i] = None;
        self.nodes[i].take()
    }

    /// Runs `node` as member `i` from now (a restart after a crash).
    pub fn start(&mut self, i: usize, node: M) {
        self.nodes[i] = Some(node);
        self.paused_until[i] = None;
        self.held[i].clear();
        self.rearm(i);
    }

    /// Stops node `i` until `until`, keeping its state; what reaches it
    /// waits in its socket and its timers wait too.
    pub fn pause(&mut self, i: usize, until: Instant) {
        if self.nodes[i].is_none() {
            return;
        }
        self.paused_until[i] = Some(until);
        self.disarm(i);
        self.agenda.push(until, Ev::Wake(i));
    }

    /// Ends node `i`'s pause now.
    pub fn resume(&mut self, i: usize) {
        if self.paused_until[i].take().is_none() {
            return;
        }
        for (from, msg) in std::mem::take(&mut self.held[i]) {
            self.agenda.push(self.now, Ev::Deliver { from, to: i, msg });
        }
        self.rearm(i);
    }

    pub fn paused(&self, i: usize) -> bool {
        self.paused_until[i].is_some()
    }

    /// Handles the next event due at or before `until`: Some(Some(i)) if
    /// node i took an input, Some(None) if the event was dropped or only
    /// changed the network, None if nothing is due (time stays).
    pub fn step(&mut self, until: Instant) -> Result<Option<Option<usize>>, Stuck> {
        let Some((key, ev)) = self.agenda.pop_until(until) else {
            return Ok(None);
        };
        if key.at() > self.now {
            self.now = key.at();
            self.steps_now = 0;
        }
        self.steps_now += 1;
        if self.steps_now > MAX_STEPS_PER_INSTANT {
            return Err(Stuck {
                at: self.now,
                steps: MAX_STEPS_PER_INSTANT,
            });
        }
        Ok(Some(match ev {
            Ev::Deliver { from, to, msg } => self.deliver(from, to, msg),
            Ev::Timer(i) => {
                self.timers[i] = None;
                self.input(i, |n, now, out| n.tick(now, out)).map(|()| i)
            }
            Ev::Wake(i) => {
                if self.paused_until[i] == Some(self.now) {
                    self.resume(i);
                }
                None
            }
        }))
    }

    /// Runs until `until` (inclusive), calling `each` after every input a
    /// node took; time then stands at `until`.
    pub fn run_until(
        &mut self,
        until: Instant,
        mut each: impl FnMut(Instant, usize, &mut M),
    ) -> Result<(), Stuck> {
        while let Some(handled) = self.step(until)? {
            if let Some(i) = handled
                && let Some(n) = self.nodes[i].as_mut()
            {
                each(self.now, i, n);
                // `each` may drain what the node holds, not change its timers.
            }
        }
        self.now = self.now.max(until);
        Ok(())
    }

    fn deliver(&mut self, from: usize, to: usize, msg: M::Msg) -> Option<usize> {
        if self.nodes[to].is_none() || self.faults.cut(from, to) {
            return None;
        }
        if self.paused(to) {
            self.held[to].push((from, msg));
            return None;
        }
        let sender = self.names[from].clone();
        self.input(to, |n, now, out| n.receive(now, &sender, msg, out))
            .map(|()| to)
    }

    fn send(&mut self, from: usize, out: Outbox<M::Msg>) {
        for (to, msg) in out {
            let Some(to) = self.index_of(&to) else {
                continue;
            };
            self.sent += 1;
            self.to_self += u64::from(to == from);
            let Some(msg) = (self.wire)(msg) else {
                continue;
            };
            let cross = self.zones[from] != self.zones[to];
            let delays = if (self.stream)(&msg) {
                self.faults.delay(from, to, cross).into_iter().collect()
            } else {
                self.faults.delays(from, to, cross)
            };
            // The last copy is the message itself: one clone per duplicate.
            if let Some((last, extra)) = delays.split_last() {
                for d in extra {
                    let msg = msg.clone();
                    self.agenda
                        .push(self.now + *d, Ev::Deliver { from, to, msg });
                }
                self.agenda
                    .push(self.now + *last, Ev::Deliver { from, to, msg });
            }
        }
    }

    fn disarm(&mut self, i: usize) {
        if let Some(k) = self.timers[i].take() {
            self.agenda.remove(k);
        }
    }

    fn rearm(&mut self, i: usize) {
        let want = match &self.nodes[i] {
            Some(n) if !self.paused(i) => n.next_deadline().map(|t| t.max(self.now)),
            _ => None,
        };
        if self.timers[i].map(|k| k.at()) != want {
            self.disarm(i);
            if let Some(t) = want {
                self.timers[i] = Some(self.agenda.push(t, Ev::Timer(i)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::child;
    use crate::simnet::Latency;
    use std::time::Duration;

    /// Counts what it receives; answers "ping" with "pong"; ticks every
    /// second and then pings node 0.
    #[derive(Default)]
    struct Pinger {
        got: Vec<(Instant, String)>,
        next: Option<Instant>,
    }

    impl Machine for Pinger {
        type Msg = String;
        fn receive(&mut self, now: Instant, from: &NodeId, msg: String, out: &mut Outbox<String>) {
            if msg == "ping" {
                out.push(from.clone(), "pong".into());
            }
            self.got.push((now, msg));
        }
        fn tick(&mut self, now: Instant, out: &mut Outbox<String>) {
            out.push(NodeId::new("a"), "ping".into());
            self.next = Some(now + Duration::from_secs(1));
        }
        fn next_deadline(&self) -> Option<Instant> {
            self.next
        }
    }

    fn net() -> Network<Pinger> {
        let names = vec![NodeId::new("a"), NodeId::new("b")];
        let faults = Faults::new(Latency::Constant(Duration::from_millis(10)), child(1, "t"));
        let b = Pinger {
            next: Some(Instant::from_millis(1000)),
            ..Pinger::default()
        };
        Network::new(names, vec![Pinger::default(), b], faults)
    }

    #[test]
    fn messages_and_timers_run_in_time_order() {
        let mut n = net();
        let mut inputs = Vec::new();
        n.run_until(Instant::from_millis(2500), |t, i, _| {
            inputs.push((t.as_micros() / 1000, i))
        })
        .unwrap();
        assert_eq!(
            inputs,
            [
                (1000, 1),
                (1010, 0),
                (1020, 1),
                (2000, 1),
                (2010, 0),
                (2020, 1)
            ]
        );
        assert_eq!(n.now(), Instant::from_millis(2500));
        assert_eq!(n.sent(), 4);
    }

    #[test]
    fn a_paused_node_reads_its_socket_when_it_runs_again_and_a_crashed_one_loses_it() {
        let mut n = net();
        n.pause(0, Instant::from_millis(1500));
        n.run_until(Instant::from_millis(1400), |_, _, _| {})
            .unwrap();
        assert!(n.node(0).unwrap().got.is_empty(), "paused: nothing read");
        assert_eq!(n.in_flight(), 1, "the ping waits");
        n.run_until(Instant::from_millis(1600), |_, _, _| {})
            .unwrap();
        assert_eq!(n.node(0).unwrap().got[0].0, Instant::from_millis(1500));
        assert_eq!(n.node(1).unwrap().got[0].0, Instant::from_millis(1510));
        let a = n.crash(0).unwrap();
        assert_eq!(a.got.len(), 1);
        n.run_until(Instant::from_millis(3000), |_, _, _| {})
            .unwrap();
        assert_eq!(n.node(1).unwrap().got.len(), 1, "no pong from the crashed");
        n.start(0, Pinger::default());
        n.faults.cut_link(1, 0);
        n.run_until(Instant::from_millis(4000), |_, _, _| {})
            .unwrap();
        assert!(n.node(0).unwrap().got.is_empty(), "the link is cut");
        n.faults.heal();
        n.run_until(Instant::from_millis(5100), |_, _, _| {})
            .unwrap();
        assert_eq!(n.node(0).unwrap().got.len(), 1, "the ping at 5 s");
    }

    #[test]
    fn streams_are_never_lost_but_datagrams_are() {
        let mut n = net();
        n.faults.loss = 1.0;
        n.run_until(Instant::from_millis(5000), |_, _, _| {})
            .unwrap();
        assert!(n.node(0).unwrap().got.is_empty());
        n.stream = |m| m == "ping";
        n.run_until(Instant::from_millis(10_000), |_, _, _| {})
            .unwrap();
        // Pings at 6, 7, 8 and 9 s have arrived; the one at 10 s is on its way.
        assert_eq!(n.node(0).unwrap().got.len(), 4, "pings go over a stream");
        assert!(n.node(1).unwrap().got.is_empty(), "pongs are datagrams");
    }
}
