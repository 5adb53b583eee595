//! Maelstrom's `:net` checker: message counts for everything, for traffic
//! touching a client, and for the rest (servers), with msgs-per-op over
//! client invocations (final reads included) as a single-precision float.

use crate::edn::{Edn, map};
use crate::net::{Counts, NetStats};

pub fn check(stats: &NetStats, op_count: usize) -> Edn {
    let part = |c: &Counts, per_op: bool| {
        let mut m = vec![
            ("send-count", Edn::from(c.send)),
            ("recv-count", Edn::from(c.recv)),
            ("msg-count", Edn::from(c.msg)),
        ];
        if per_op && op_count > 0 {
            m.push(("msgs-per-op", Edn::Float32(msgs_per_op(c.msg, op_count))));
        }
        map(m)
    };
    map([
        ("all", part(&stats.all, true)),
        ("clients", part(&stats.clients, false)),
        ("servers", part(&stats.servers, true)),
        ("valid?", Edn::Bool(true)),
    ])
}

pub fn msgs_per_op(msgs: u64, op_count: usize) -> f32 {
    (msgs as f64 / op_count as f64) as f32
}
