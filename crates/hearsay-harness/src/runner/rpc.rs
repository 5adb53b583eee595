//! Client RPC bookkeeping (what Jepsen's clients and Maelstrom's client
//! code do for the runner): open clients, the one call each waits on, msg
//! ids, timeouts, and matching replies to calls.

use super::calls::{Call, Purpose};
use crate::edn::Edn;
use crate::net::{Addr, Envelope, Network};
use serde_json::{Map, Value};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

/// Replies longer than this may take a workload's fast path.
const FAST_PATH_BYTES: usize = 1024;

#[derive(Debug, Default)]
struct Pending {
    next_msg_id: u64,
    call: Option<Call>,
}

/// How a call was answered.
#[derive(Debug)]
pub enum Reply {
    Body(Value),
    /// An `:ok` value the workload parsed straight from a large reply.
    Fast(Edn),
}

#[derive(Debug, Default)]
pub struct Rpcs {
    clients: HashMap<Addr, Pending>,
    /// (deadline, client, msg_id); stale entries are skipped when popped.
    timeouts: BinaryHeap<Reverse<(u64, u32, u64)>>,
}

impl Rpcs {
    pub fn open(&mut self, net: &mut Network) -> Addr {
        let a = net.open_client();
        self.clients.insert(a, Pending::default());
        a
    }

    pub fn close(&mut self, net: &mut Network, a: Addr) {
        net.close(a);
        self.clients.remove(&a);
    }

    pub fn close_all(&mut self, net: &mut Network) {
        for a in self.clients.keys().copied().collect::<Vec<_>>() {
            self.close(net, a);
        }
    }

    /// Sends `body` (given a fresh `msg_id`) from `client` to node `node`.
    #[allow(clippy::too_many_arguments)]
    pub fn call(
        &mut self,
        net: &mut Network,
        now: u64,
        client: Addr,
        node: usize,
        mut body: Map<String, Value>,
        purpose: Purpose,
        timeout_ns: u64,
    ) {
        let c = self.clients.get_mut(&client).expect("open client");
        c.next_msg_id += 1;
        let msg_id = c.next_msg_id;
        body.insert("msg_id".into(), msg_id.into());
        let request = Value::Object(body);
        let raw = serde_json::value::to_raw_value(&request).expect("JSON values serialise");
        c.call = Some(Call {
            msg_id,
            node,
            request,
            purpose,
        });
        net.send(now, client, Addr(node as u32), raw)
            .expect("client and node are open");
        net.set_accepting(client, true);
        self.timeouts
            .push(Reverse((now + timeout_ns, client.0, msg_id)));
    }

    /// A call whose deadline is at or before `now`, taken off its client.
    pub fn expired(&mut self, net: &mut Network, now: u64) -> Option<(Addr, Call)> {
        while let Some(&Reverse((deadline, client, msg_id))) = self.timeouts.peek() {
            if deadline > now {
                return None;
            }
            self.timeouts.pop();
            let client = Addr(client);
            let Some(p) = self.clients.get_mut(&client) else {
                continue;
            };
            if p.call.as_ref().is_some_and(|c| c.msg_id == msg_id) {
                net.set_accepting(client, false);
                return p.call.take().map(|c| (client, c));
            }
        }
        None
    }

    pub fn next_deadline(&self) -> Option<u64> {
        self.timeouts.peek().map(|Reverse((d, _, _))| *d)
    }

    /// A message delivered to a client: the call it answers, if it answers
    /// one. Anything else (late, duplicate, unsolicited) is dropped and the
    /// client keeps waiting. `fast` may parse a large reply to an op.
    pub fn reply(
        &mut self,
        net: &mut Network,
        env: &Envelope,
        fast: impl FnOnce(&Purpose, &str) -> Option<(u64, Edn)>,
    ) -> Option<(Addr, Call, Reply)> {
        let client = self.clients.get_mut(&env.dest)?;
        let call = client.call.as_ref()?;
        let msg_id = call.msg_id;
        let raw = env.body.get();
        let answer = match fast_parse(raw, &call.purpose, fast) {
            Some((in_reply_to, value)) => (in_reply_to == msg_id).then_some(Reply::Fast(value)),
            None => {
                let body: Value = serde_json::from_str(raw).unwrap_or(Value::Null);
                // Clojure's `=`: the integer 3 matches, 3.0 and "3" do not.
                (body.get("in_reply_to").and_then(Value::as_u64) == Some(msg_id))
                    .then_some(Reply::Body(body))
            }
        };
        match answer {
            Some(r) => {
                let call = client.call.take().expect("checked");
                Some((env.dest, call, r))
            }
            None => {
                net.set_accepting(env.dest, true);
                None
            }
        }
    }
}

fn fast_parse(
    raw: &str,
    purpose: &Purpose,
    fast: impl FnOnce(&Purpose, &str) -> Option<(u64, Edn)>,
) -> Option<(u64, Edn)> {
    if raw.len() > FAST_PATH_BYTES && matches!(purpose, Purpose::Op { .. }) {
        fast(purpose, raw)
    } else {
        None
    }
}
