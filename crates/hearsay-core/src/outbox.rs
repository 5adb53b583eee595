//! The one outbox every machine writes to: messages to send, in order,
//! each with its destination. The shell (or the machine above) drains it
//! after each call; nothing is sent from inside a machine.

use crate::id::NodeId;

/// Messages of type `M` to send, appended by a machine's `handle`.
#[derive(Debug, Clone, PartialEq)]
pub struct Outbox<M>(Vec<(NodeId, M)>);

impl<M> Default for Outbox<M> {
    fn default() -> Self {
        Outbox(Vec::new())
    }
}

impl<M> Outbox<M> {
    pub fn push(&mut self, to: NodeId, msg: M) {
        self.0.push((to, msg));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &(NodeId, M)> {
        self.0.iter()
    }

    pub fn drain(&mut self) -> impl Iterator<Item = (NodeId, M)> + '_ {
        self.0.drain(..)
    }

    /// The last message pushed, taken off.
    pub fn pop(&mut self) -> Option<(NodeId, M)> {
        self.0.pop()
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// Moves every message to `into`, wrapped by `wrap` (a layer's
    /// messages into the envelope of the layer above).
    pub fn drain_into<N>(&mut self, into: &mut Outbox<N>, mut wrap: impl FnMut(M) -> N) {
        for (to, m) in self.0.drain(..) {
            into.push(to, wrap(m));
        }
    }
}

impl<M: PartialEq> PartialEq<Vec<(NodeId, M)>> for Outbox<M> {
    fn eq(&self, other: &Vec<(NodeId, M)>) -> bool {
        self.0 == *other
    }
}

impl<M> IntoIterator for Outbox<M> {
    type Item = (NodeId, M);
    type IntoIter = std::vec::IntoIter<(NodeId, M)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<M> FromIterator<(NodeId, M)> for Outbox<M> {
    fn from_iter<I: IntoIterator<Item = (NodeId, M)>>(iter: I) -> Self {
        Outbox(iter.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drain_into_wraps_in_order_and_empties_the_source() {
        let mut inner: Outbox<u8> = Outbox::default();
        inner.push(NodeId::new("a"), 1);
        inner.push(NodeId::new("b"), 2);
        let mut outer: Outbox<(bool, u8)> = Outbox::default();
        inner.drain_into(&mut outer, |m| (true, m));
        assert!(inner.is_empty());
        let got: Vec<_> = outer.into_iter().collect();
        assert_eq!(
            got,
            vec![(NodeId::new("a"), (true, 1)), (NodeId::new("b"), (true, 2))]
        );
    }
}
