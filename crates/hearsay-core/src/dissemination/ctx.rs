//! What a dissemination machine gets to work with for one input.

use super::{Config, Store, Value};
use crate::id::{Epoch, NodeId};
use crate::link::Links;
use crate::membership::View;
use crate::outbox::Outbox;
use crate::rng::Rng;
use crate::stats::Stats;
use crate::time::Instant;
use crate::wire::Msg;

use crate::overlay::Topology;

/// What a dissemination machine gets for one input: the time, the view,
/// the value store and the links (lent), an outbox, the RNG, counters.
pub(crate) struct Ctx<'a, V: Value> {
    pub now: Instant,
    pub epoch: Epoch,
    pub view: &'a View,
    pub topology: Option<&'a Topology>,
    pub cfg: &'a Config,
    pub store: &'a mut Store<V>,
    pub links: &'a mut Links<V>,
    pub out: &'a mut Outbox<Msg<V>>,
    pub rng: &'a mut Rng,
    pub stats: &'a mut Stats,
}

impl<V: Value> Ctx<'_, V> {
    pub fn me(&self) -> &NodeId {
        self.view.me()
    }
}
