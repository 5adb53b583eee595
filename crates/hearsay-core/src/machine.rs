//! The contract every protocol machine keeps, so one driver (a shell, or
//! the simulator in [`crate::simnet`]) runs any of them: messages in, time
//! in, messages out, and when to be called again.

use crate::id::NodeId;
use crate::outbox::Outbox;
use crate::time::Instant;

pub trait Machine {
    type Msg;
    /// One message from `from`, at `now` (which never goes backwards).
    fn receive(&mut self, now: Instant, from: &NodeId, msg: Self::Msg, out: &mut Outbox<Self::Msg>);
    /// Timers: called at (or after) [`Machine::next_deadline`]; extra calls
    /// are harmless.
    fn tick(&mut self, now: Instant, out: &mut Outbox<Self::Msg>);
    fn next_deadline(&self) -> Option<Instant>;
}
