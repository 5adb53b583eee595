//! What a machine gets to work with for one input, what it sends, and what
//! the node counts.

use crate::dissemination::{Config, Store};
use crate::id::{Epoch, NodeId};
use crate::link::Links;
use crate::membership::View;
use crate::rng::Rng;
use crate::time::Instant;
use crate::wire::{Envelope, Msg};
use std::collections::BTreeMap;

/// The operator's suggested topology (Maelstrom's `topology` message).
pub type Topology = BTreeMap<NodeId, Vec<NodeId>>;

/// Messages a machine wants sent, before the node puts them in envelopes.
#[derive(Debug)]
pub struct Sends<V>(Vec<(NodeId, Msg<V>)>);

impl<V> Default for Sends<V> {
    fn default() -> Self {
        Sends(Vec::new())
    }
}

impl<V> Sends<V> {
    pub fn push(&mut self, to: NodeId, msg: Msg<V>) {
        self.0.push((to, msg));
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn drain(&mut self) -> impl Iterator<Item = (NodeId, Msg<V>)> + '_ {
        self.0.drain(..)
    }
}

/// Messages to send, appended by `Node::handle`; the shell drains it.
#[derive(Debug)]
pub struct Outbox<V>(Vec<(NodeId, Envelope<V>)>);

impl<V> Default for Outbox<V> {
    fn default() -> Self {
        Outbox(Vec::new())
    }
}

impl<V> Outbox<V> {
    pub fn push(&mut self, to: NodeId, env: Envelope<V>) {
        self.0.push((to, env));
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn iter(&self) -> impl Iterator<Item = &(NodeId, Envelope<V>)> {
        self.0.iter()
    }
    pub fn drain(&mut self) -> impl Iterator<Item = (NodeId, Envelope<V>)> + '_ {
        self.0.drain(..)
    }
}

/// Counters, for logs and metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub broadcasts: u64,
    pub learned: u64,
    pub duplicates: u64,
    pub data_sent: u64,
    pub acks_sent: u64,
    pub acks_relayed: u64,
    pub retransmits: u64,
    pub values_sent: u64,
    pub grafts: u64,
    /// Input dropped: another strategy's message, an id outside the view,
    /// a message to ourselves.
    pub ignored: u64,
    /// Messages from a member's earlier life, dropped.
    pub stale: u64,
    /// Messages addressed to this node's earlier life (answered with a hello).
    pub misaddressed: u64,
    /// Members seen to come back in a new life (their sessions restarted).
    pub restarts: u64,
    /// Empty numbered batches sent to announce this node's life.
    pub greetings: u64,
}

/// What a dissemination machine gets for one input: the time, the view,
/// the value store and the links (lent), an outbox, the RNG, counters.
pub(crate) struct Ctx<'a, V> {
    pub now: Instant,
    pub epoch: Epoch,
    pub view: &'a View,
    pub topology: Option<&'a Topology>,
    pub cfg: &'a Config,
    pub store: &'a mut Store<V>,
    pub links: &'a mut Links<V>,
    pub out: &'a mut Sends<V>,
    pub rng: &'a mut Rng,
    pub stats: &'a mut Stats,
}

impl<V> Ctx<'_, V> {
    pub fn me(&self) -> &NodeId {
        self.view.me()
    }
}
