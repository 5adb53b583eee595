//! Dissemination: spread every value to every member, loss-free across
//! partitions and restarts.
//!
//! Each strategy is a small machine behind one trait, [`Strategy`]; the
//! core [`crate::node::Node`] routes inputs to it with a [`Ctx`] that lends
//! it the value store, the links and an outbox:
//!
//! | strategy | how values spread | what makes it loss-free |
//! |---|---|---|
//! | `flood` | every node forwards new values to its overlay neighbours (the operator's topology) | acked links |
//! | `tree` | forwarding over a tree: a hub, a k-ary tree, or a spanning tree of the topology | acked links |
//! | `direct` | the origin sends to every node; nobody forwards | acked links, tail acks relayed by a hub |
//! | `gossip` | each node pushes new values to `fanout` random peers, once | digest anti-entropy |
//! | `pull` | nodes announce digests; peers pull what they lack | digest anti-entropy |
//! | `push-pull` | digest exchanges in both directions | digest anti-entropy |
//! | `plumtree` | eager push on the overlay tree, lazy announcements (by key) to ring neighbours, grafts | acked links, a new tree neighbour gets everything; grafts repair a broken tree fast |
//!
//! Links ([`crate::link`]) batch values, piggyback cumulative acks on data
//! going the other way and retransmit whatever stays unacknowledged.
//! Anti-entropy keeps exchanging version-vector digests with mesh neighbours
//! until each has confirmed it holds everything this node holds. Either
//! way, nothing is sent when there is nothing new to say. A member that
//! comes back in a new life is a new neighbour: it gets everything again.

mod antientropy;
mod config;
mod ctx;
mod gossip;
mod lives;
mod plumtree;
mod relay;
mod seqset;
mod store;
#[cfg(test)]
mod tests;

pub use crate::value::Value;
pub use crate::wire::dis::{Clock, DisMsg, Entry, Mark};
pub use config::{Config, ConfigError, Overlay, Preset, Strategy as StrategyKind};
pub(crate) use ctx::Ctx;
pub use seqset::SeqSet;
pub use store::Retention;
pub(crate) use store::{Load, Store, pace};

use crate::id::NodeId;
use crate::link::Lane;
use crate::membership::ViewChange;
use crate::time::Instant;
use std::fmt;

/// Out-of-order sequence numbers a digest lists per origin.
pub const MAX_EXTRAS: usize = 256;

/// A dissemination strategy: decides who gets which value when. It owns no
/// values (the store is lent in [`Ctx`]) and sends only through the context.
pub(crate) trait Strategy<V: Value>: fmt::Debug + Send {
    /// A client's value, not known here yet.
    fn local(&mut self, ctx: &mut Ctx<'_, V>, v: V);
    /// Values that arrived on a link session from `from`.
    fn link_values(&mut self, ctx: &mut Ctx<'_, V>, from: &NodeId, lane: Lane, values: Vec<V>);
    /// One of the strategy's own messages.
    fn message(&mut self, ctx: &mut Ctx<'_, V>, from: &NodeId, msg: DisMsg<V>);
    /// Time passed; called after every input.
    fn tick(&mut self, ctx: &mut Ctx<'_, V>);
    /// Members joined, left or restarted, or the operator's topology
    /// arrived (an empty change): recompute neighbours, and give new ones
    /// (and new lives) what they cannot have.
    fn view_changed(&mut self, ctx: &mut Ctx<'_, V>, change: &ViewChange);
    /// When `tick` must run next.
    fn deadline(&self, cfg: &Config) -> Option<Instant>;
    /// The peers this node exchanges values with directly.
    fn neighbours(&self) -> Vec<NodeId>;
    /// The strategy's invariants, checked by tests after every input.
    fn check(&self, ctx: &Ctx<'_, V>) -> Result<(), String>;
}

/// The machine for a strategy.
pub(crate) fn machine<V: Value>(ctx: &mut Ctx<'_, V>) -> Box<dyn Strategy<V>> {
    use config::Strategy as S;
    match ctx.cfg.strategy {
        S::Flood | S::Tree | S::Direct => Box::new(relay::Relay::new(ctx)),
        S::Gossip => Box::new(gossip::Gossip::new(ctx)),
        S::Pull => Box::new(antientropy::AntiEntropy::new(ctx, false, true)),
        S::PushPull => Box::new(antientropy::AntiEntropy::new(ctx, true, true)),
        S::Plumtree => Box::new(plumtree::Plumtree::new(ctx)),
    }
}

/// Checks shared by every strategy: a neighbour is a member, never self.
pub(crate) fn check_peers<'a>(
    ctx: &Ctx<'_, impl Value>,
    what: &str,
    peers: impl IntoIterator<Item = &'a NodeId>,
) -> Result<(), String> {
    for p in peers {
        if p == ctx.view.me() {
            return Err(format!("{what} holds this node itself"));
        }
        if !ctx.view.contains(p) {
            return Err(format!("{what} holds {p}, which is not in the view"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod wire_tests {
    use super::*;
    use crate::id::Epoch;
    use crate::link::LinkMsg;
    use crate::wire::{Envelope, Msg};

    #[test]
    fn wire_is_compact_json() {
        let m: Envelope<u64> = Envelope::new(
            Epoch(5),
            Epoch(3),
            Msg::Link(LinkMsg::Data {
                lane: Lane::Eager,
                seq: Some(3),
                base: 1,
                ack: 2,
                values: vec![7],
                probe: false,
            }),
        );
        let text = serde_json::to_string(&m).unwrap();
        assert_eq!(
            text,
            r#"{"type":"hs","e":5,"to":3,"m":{"link":{"d":{"s":3,"b":1,"a":2,"v":[7]}}}}"#
        );
        assert_eq!(serde_json::from_str::<Envelope<u64>>(&text).unwrap(), m);
        let lazy: Envelope<u64> = Envelope::new(
            Epoch(1),
            Epoch::UNKNOWN,
            Msg::Link(LinkMsg::Data {
                lane: Lane::Lazy,
                seq: None,
                base: 1,
                ack: 0,
                values: vec![],
                probe: true,
            }),
        );
        let text = serde_json::to_string(&lazy).unwrap();
        assert_eq!(
            text,
            r#"{"type":"hs","e":1,"m":{"link":{"d":{"l":"l","b":1,"a":0,"p":true}}}}"#
        );
        assert_eq!(serde_json::from_str::<Envelope<u64>>(&text).unwrap(), lazy);
        let d: Msg<u64> = Msg::Dis(DisMsg::Delta {
            e: vec![Entry(NodeId::new("n1"), Epoch(2), 4, 9)],
            more: true,
            w: vec![Mark(NodeId::new("n1"), Epoch(2), 4, vec![6])].into(),
            d: vec![],
        });
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            r#"{"dis":{"delta":{"e":[["n1",2,4,9]],"more":true,"w":[["n1",2,4,[6]]]}}}"#
        );
        assert_eq!(
            serde_json::from_str::<Msg<u64>>(&serde_json::to_string(&d).unwrap()).unwrap(),
            d
        );
        let p: Msg<u64> = Msg::Dis(DisMsg::IHave { k: vec![3, 4] });
        assert_eq!(
            serde_json::from_str::<Msg<u64>>(&serde_json::to_string(&p).unwrap()).unwrap(),
            p
        );
    }
}
