//! Hybrid logical clocks (Kulkarni et al. 2014): wall-clock milliseconds
//! plus a logical counter, so timestamps follow causality even when clocks
//! skew, and stay close to real time.

/// A timestamp; ordered by wall time, then the logical counter.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Hlc {
    pub wall_ms: u64,
    pub logical: u32,
}

impl Hlc {
    /// The timestamp of a local event at wall time `now_ms`, after `self`.
    pub fn tick(&mut self, now_ms: u64) -> Hlc {
        if now_ms > self.wall_ms {
            *self = Hlc {
                wall_ms: now_ms,
                logical: 0,
            };
        } else {
            self.bump();
        }
        *self
    }

    /// Takes in a remote timestamp (on receipt), so later local events
    /// order after it.
    pub fn observe(&mut self, remote: Hlc, now_ms: u64) -> Hlc {
        let wall = now_ms.max(self.wall_ms).max(remote.wall_ms);
        if wall == self.wall_ms && wall == remote.wall_ms {
            self.logical = self.logical.max(remote.logical);
            self.bump();
        } else if wall == self.wall_ms {
            self.bump();
        } else if wall == remote.wall_ms {
            *self = Hlc {
                wall_ms: wall,
                logical: remote.logical,
            };
            self.bump();
        } else {
            *self = Hlc {
                wall_ms: wall,
                logical: 0,
            };
        }
        *self
    }

    /// One logical step; past the counter's end, a millisecond (never a wrap).
    fn bump(&mut self) {
        match self.logical.checked_add(1) {
            Some(l) => self.logical = l,
            None => {
                self.wall_ms = self.wall_ms.saturating_add(1);
                self.logical = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_follow_causality_across_skewed_clocks() {
        let mut fast = Hlc::default();
        let mut slow = Hlc::default();
        let sent = fast.tick(1_000);
        // The receiver's clock is 900 ms behind: its next event still
        // orders after what it received.
        let got = slow.observe(sent, 100);
        assert!(got > sent);
        assert!(slow.tick(101) > got);
        assert_eq!(
            fast.tick(1_000),
            Hlc {
                wall_ms: 1_000,
                logical: 1
            }
        );
        let mut end = Hlc {
            wall_ms: 5,
            logical: u32::MAX,
        };
        assert_eq!(
            end.tick(0),
            Hlc {
                wall_ms: 6,
                logical: 0
            }
        );
    }
}
