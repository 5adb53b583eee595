//! Convergence probes (hearsay's, not Maelstrom's; off unless asked for):
//! from the end of the main phase until the final reads, every node is read
//! at a fixed interval by a client of its own, and each answer is kept with
//! the time the node gave it. The history does not see these reads; the
//! analysis turns them into "every node read the final value N ms after the
//! last update". Probe traffic is client traffic: it adds to `:net :all`,
//! never to `:net :servers`.

use crate::edn::Edn;
use crate::net::{Addr, Network};
use crate::workload::{Client, OpSpec, Workload};
use serde_json::Value;
use std::collections::HashMap;

/// A node's probe answers change: node index, history time (ns) at which
/// the node printed the first answer with this value, and the value (sets
/// in one canonical form, so equal sets compare equal whatever the order).
/// Only changes are kept, so a long run of equal answers costs one entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeRead {
    pub node: usize,
    pub time_ns: u64,
    pub value: Edn,
}

pub(super) struct Probe {
    every_ns: u64,
    next_ns: u64,
    op: OpSpec,
    clients: Vec<(Addr, Box<dyn Client>)>,
    by_name: HashMap<String, usize>,
    by_addr: HashMap<Addr, usize>,
    msg_id: u64,
    pub reads: Vec<ProbeRead>,
    /// Answers received, changed or not.
    pub answers: u64,
    last: Vec<Option<Edn>>,
}

/// Integer lists as sorted ranges; anything else as it is.
fn canonical(v: Edn) -> Edn {
    match v {
        Edn::Vector(items) => {
            let ints: Option<Vec<i64>> = items
                .iter()
                .map(|e| if let Edn::Int(i) = e { Some(*i) } else { None })
                .collect();
            match ints {
                Some(xs) => crate::edn::int_ranges(xs),
                None => Edn::Vector(items),
            }
        }
        other => other,
    }
}

impl Probe {
    /// `None` when the workload has no final read to probe with.
    pub fn start(
        net: &mut Network,
        workload: &Workload,
        nodes: &[String],
        every_ns: u64,
        now: u64,
    ) -> Option<Probe> {
        let op = workload.generator.final_op(crate::workload::Ctx {
            thread: 0,
            process: 0,
            time_ns: 0,
        })?;
        let mut by_name = HashMap::new();
        let mut by_addr = HashMap::new();
        let clients = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let a = net.open_client();
                by_name.insert(net.name(a).to_string(), i);
                by_addr.insert(a, i);
                (a, (workload.open)(n))
            })
            .collect();
        Some(Probe {
            every_ns: every_ns.max(1),
            next_ns: now,
            op,
            clients,
            by_name,
            by_addr,
            msg_id: 0,
            reads: Vec::new(),
            answers: 0,
            last: vec![None; nodes.len()],
        })
    }

    /// Sends a round of reads if one is due; when the next is due.
    pub fn tick(&mut self, net: &mut Network, now: u64) -> u64 {
        if now >= self.next_ns {
            for (node, (addr, client)) in self.clients.iter_mut().enumerate() {
                self.msg_id += 1;
                let mut body = client.request(&self.op);
                body.insert("msg_id".into(), self.msg_id.into());
                if let Ok(raw) = serde_json::value::to_raw_value(&Value::Object(body)) {
                    let _ = net.send(now, *addr, Addr(node as u32), raw);
                }
            }
            // Skip rounds missed while the executor was late.
            self.next_ns = (self.next_ns + self.every_ns).max(now + 1);
        }
        self.next_ns
    }

    pub fn is_probe(&self, addr: Addr) -> bool {
        self.by_addr.contains_key(&addr)
    }

    pub fn is_probe_name(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// A line a node printed to `dest`: kept if it answers a probe.
    pub fn on_node_line(&mut self, dest: &str, body: &Value, history_ns: u64) {
        let Some(&node) = self.by_name.get(dest) else {
            return;
        };
        let client = &mut self.clients[node].1;
        let schema = client.reply_schema(self.op.f);
        if schema.check(body).is_ok() {
            self.answers += 1;
            let value = canonical(client.ok_value(&self.op, body));
            if self.last[node].as_ref() != Some(&value) {
                self.last[node] = Some(value.clone());
                self.reads.push(ProbeRead {
                    node,
                    time_ns: history_ns,
                    value,
                });
            }
        }
    }

    pub fn close(&self, net: &mut Network) {
        for (a, _) in &self.clients {
            net.close(*a);
        }
    }
}
