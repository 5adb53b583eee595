//! The replicated map ([`hearsay_core::crdt::kv`]) as the agent runs it:
//! a full state goes as one frame (streamed over TCP when larger than a
//! datagram), so the map is bounded by its encoded size ([`MAX_STATE`]),
//! and a write past the bound is refused rather than accepted and never
//! replicated.

pub use hearsay_core::crdt::kv::{Bound, Changed, HOLD, Kv, KvMap, KvMsg, MAX_KEY};

/// Encoded bytes of the whole map, at most (a full state stays under the
/// largest stream frame with room for the envelope and the seal).
pub const MAX_STATE: usize = 2 * 1024 * 1024;

fn encoded_len(m: &KvMap) -> usize {
    rmp_serde::to_vec_named(m).map_or(usize::MAX, |v| v.len())
}

/// The agent's bound on the map.
pub const BOUND: Bound = Bound {
    max: MAX_STATE,
    size: encoded_len,
};

#[cfg(test)]
mod tests {
    use super::*;
    use hearsay_core::id::NodeId;
    use hearsay_core::outbox::Outbox;
    use hearsay_core::time::Instant;

    /// The refusal itself is the core's test; here, that the agent's bound
    /// is the encoded size.
    #[test]
    fn the_bound_is_on_encoded_bytes() {
        let a = NodeId::new("a");
        let mut kv = Kv::new(a.clone(), a, Instant::ZERO);
        kv.bound(BOUND);
        let mut out = Outbox::default();
        let half = "x".repeat(MAX_STATE / 2);
        assert!(
            kv.write(Instant::ZERO, 1, "a".into(), Some(half.clone()), &mut out)
                .is_ok()
        );
        let e = kv
            .write(Instant::ZERO, 1, "b".into(), Some(half), &mut out)
            .unwrap_err();
        assert!(e.contains(&MAX_STATE.to_string()), "{e}");
        assert!(encoded_len(kv.state()) <= MAX_STATE);
    }
}
