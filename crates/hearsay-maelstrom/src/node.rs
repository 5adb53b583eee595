//! The sans-IO Maelstrom node: routes workload RPCs onto core engines.

use crate::wire::{Incoming, Item, Outgoing, PeerBody, Raw};
use hearsay_core::broadcast::{self, Broadcast, Input, Outbox, Peer};
use hearsay_core::time::Instant;
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Maelstrom error codes the node uses.
const NOT_SUPPORTED: u64 = 10;
const TEMPORARILY_UNAVAILABLE: u64 = 11;
const MALFORMED_REQUEST: u64 = 12;

#[derive(Clone, Debug, Default)]
pub struct NodeConfig {
    pub broadcast: broadcast::Config,
}

/// Why an input line was dropped. The node's state is unchanged.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("not a Maelstrom message: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("body has no string \"type\"")]
    NoType,
    #[error("bad {kind} message: {reason}")]
    BadBody { kind: String, reason: String },
}

#[derive(Debug, Default, Clone, Copy)]
pub struct NodeStats {
    pub lines_in: u64,
    pub malformed: u64,
    pub lines_out: u64,
    pub unsupported: u64,
}

#[derive(Debug)]
pub struct MaelstromNode {
    cfg: NodeConfig,
    me: String,
    ids: Vec<String>,
    index: BTreeMap<String, Peer>,
    bcast: Option<Broadcast<Item>>,
    outbox: Outbox<Item>,
    out: Vec<String>,
    stats: NodeStats,
}

impl MaelstromNode {
    pub fn new(cfg: NodeConfig) -> Self {
        MaelstromNode {
            cfg,
            me: String::new(),
            ids: Vec::new(),
            index: BTreeMap::new(),
            bcast: None,
            outbox: Outbox::default(),
            out: Vec::new(),
            stats: NodeStats::default(),
        }
    }

    /// Handles one line from stdin. On `Err`, the line was dropped and nothing
    /// changed; the shell logs it and carries on.
    pub fn handle_line(&mut self, now: Instant, line: &str) -> Result<(), NodeError> {
        self.stats.lines_in += 1;
        let raw: Raw = serde_json::from_str(line).inspect_err(|_| self.stats.malformed += 1)?;
        // Node-to-node traffic is most of the volume: parse it straight into
        // the wire type (hearsay writes "type" first).
        if raw.body.get().starts_with(r#"{"type":"hs_"#)
            && let Ok(body) = serde_json::from_str::<PeerBody>(raw.body.get())
        {
            return self
                .peer(now, &raw.src, body)
                .inspect_err(|_| self.stats.malformed += 1);
        }
        let body: Value =
            serde_json::from_str(raw.body.get()).inspect_err(|_| self.stats.malformed += 1)?;
        let msg = Incoming {
            src: raw.src,
            dest: raw.dest,
            body,
        };
        self.handle(now, msg)
            .inspect_err(|_| self.stats.malformed += 1)
    }

    fn peer(&mut self, now: Instant, src: &str, body: PeerBody) -> Result<(), NodeError> {
        let (Some(from), Some(b)) = (self.index.get(src).copied(), self.bcast.as_mut()) else {
            return Err(NodeError::BadBody {
                kind: "hs".into(),
                reason: "a message from an unknown node, or before init".into(),
            });
        };
        b.handle(now, Input::Receive { from, msg: body }, &mut self.outbox);
        self.emit_gossip();
        Ok(())
    }

    fn handle(&mut self, now: Instant, msg: Incoming) -> Result<(), NodeError> {
        let Some(kind) = msg
            .body
            .get("type")
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            return Err(NodeError::NoType);
        };
        let msg_id = msg.body.get("msg_id").and_then(Value::as_u64);
        let bad = |reason: &str| NodeError::BadBody {
            kind: kind.clone(),
            reason: reason.into(),
        };
        match kind.as_str() {
            "init" => {
                let id = msg
                    .body
                    .get("node_id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad("no node_id"))?;
                let ids: Vec<String> = msg
                    .body
                    .get("node_ids")
                    .and_then(Value::as_array)
                    .ok_or_else(|| bad("no node_ids"))?
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| bad("node_ids must be strings"))
                    })
                    .collect::<Result<_, _>>()?;
                self.init(id, ids);
                self.reply(&msg, msg_id, "init_ok", Map::new());
            }
            k if k.starts_with("hs_") => {
                let body: PeerBody =
                    serde_json::from_value(msg.body).map_err(|e| bad(&e.to_string()))?;
                self.peer(now, &msg.src, body)?;
            }
            _ if msg.body.get("in_reply_to").is_some() => {
                // A reply to something we never asked (we send no RPCs): drop.
            }
            _ if self.bcast.is_none() => {
                self.error(
                    &msg,
                    msg_id,
                    TEMPORARILY_UNAVAILABLE,
                    "node has not received init yet",
                );
            }
            "topology" => {
                let Some(topo) = msg.body.get("topology").and_then(Value::as_object) else {
                    self.error(
                        &msg,
                        msg_id,
                        MALFORMED_REQUEST,
                        "topology must be an object",
                    );
                    return Ok(());
                };
                let topo = self.peer_topology(topo);
                if let Some(b) = self.bcast.as_mut() {
                    b.set_topology(topo);
                    b.handle(now, Input::Tick, &mut self.outbox);
                }
                self.reply(&msg, msg_id, "topology_ok", Map::new());
                self.emit_gossip();
            }
            "broadcast" => {
                let Some(value) = msg.body.get("message").cloned() else {
                    self.error(&msg, msg_id, MALFORMED_REQUEST, "broadcast needs a message");
                    return Ok(());
                };
                // Acknowledge on receipt: the value is ours to deliver now.
                self.reply(&msg, msg_id, "broadcast_ok", Map::new());
                if let Some(b) = self.bcast.as_mut() {
                    b.handle(now, Input::Broadcast(Item::from(value)), &mut self.outbox);
                }
                self.emit_gossip();
            }
            "read" => {
                // Written straight to text: a read can list tens of thousands
                // of values, and a JSON tree of them would be built per read.
                let mut text: Vec<u8> = br#"{"type":"read_ok","messages":["#.to_vec();
                if let Some(b) = self.bcast.as_ref() {
                    for (k, v) in b.values().enumerate() {
                        if k > 0 {
                            text.push(b',');
                        }
                        serde_json::to_writer(&mut text, v).map_err(NodeError::Malformed)?;
                    }
                }
                text.push(b']');
                if let Some(id) = msg_id {
                    text.extend_from_slice(format!(r#","in_reply_to":{id}"#).as_bytes());
                }
                text.push(b'}');
                let text = String::from_utf8(text).expect("serde_json writes UTF-8");
                let body =
                    serde_json::value::RawValue::from_string(text).map_err(NodeError::Malformed)?;
                let src = self.me.clone();
                self.send_from(&src, &msg.src, &body);
            }
            "echo" => {
                let mut body = Map::new();
                body.insert(
                    "echo".into(),
                    msg.body.get("echo").cloned().unwrap_or(Value::Null),
                );
                self.reply(&msg, msg_id, "echo_ok", body);
            }
            other => {
                self.stats.unsupported += 1;
                let text = format!("hearsay-node does not support {other:?} requests");
                self.error(&msg, msg_id, NOT_SUPPORTED, &text);
            }
        }
        Ok(())
    }

    fn init(&mut self, id: &str, ids: Vec<String>) {
        let mut ids = ids;
        if !ids.iter().any(|i| i == id) {
            ids.push(id.to_owned());
        }
        self.me = id.to_owned();
        self.index = ids
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), Peer(i as u32)))
            .collect();
        let members: Vec<Peer> = (0..ids.len() as u32).map(Peer).collect();
        let me = self.index[id];
        self.ids = ids;
        self.bcast = Some(Broadcast::new(self.cfg.broadcast.clone(), me, members));
    }

    fn peer_topology(&self, topo: &Map<String, Value>) -> BTreeMap<Peer, Vec<Peer>> {
        let peer = |v: &str| self.index.get(v).copied();
        topo.iter()
            .filter_map(|(k, v)| {
                let list = v
                    .as_array()?
                    .iter()
                    .filter_map(|n| peer(n.as_str()?))
                    .collect();
                Some((peer(k)?, list))
            })
            .collect()
    }

    /// Timers: call at (or after) `next_deadline`.
    pub fn tick(&mut self, now: Instant) {
        if let Some(b) = self.bcast.as_mut() {
            b.handle(now, Input::Tick, &mut self.outbox);
            self.emit_gossip();
        }
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.bcast.as_ref().and_then(Broadcast::next_deadline)
    }

    /// Lines to write to stdout, in order.
    pub fn drain_output(&mut self) -> impl Iterator<Item = String> + '_ {
        self.out.drain(..)
    }

    pub fn stats(&self) -> NodeStats {
        self.stats
    }

    pub fn broadcast_stats(&self) -> Option<broadcast::Stats> {
        self.bcast.as_ref().map(Broadcast::stats)
    }

    pub fn node_id(&self) -> &str {
        &self.me
    }

    fn emit_gossip(&mut self) {
        let sends: Vec<_> = self.outbox.drain().collect();
        for (peer, body) in sends {
            let Some(dest) = self.ids.get(peer.0 as usize).cloned() else {
                continue;
            };
            self.send(&dest, &body);
        }
    }

    fn reply(
        &mut self,
        req: &Incoming,
        msg_id: Option<u64>,
        kind: &str,
        mut body: Map<String, Value>,
    ) {
        let mut full = Map::new();
        full.insert("type".into(), kind.into());
        full.append(&mut body);
        if let Some(id) = msg_id {
            full.insert("in_reply_to".into(), id.into());
        }
        let src = if self.me.is_empty() {
            req.dest.clone()
        } else {
            self.me.clone()
        };
        self.send_from(&src, &req.src, &Value::Object(full));
    }

    fn error(&mut self, req: &Incoming, msg_id: Option<u64>, code: u64, text: &str) {
        let body = json!({"code": code, "text": text});
        let Value::Object(body) = body else {
            unreachable!("json! object")
        };
        self.reply(req, msg_id, "error", body);
    }

    fn send<B: Serialize>(&mut self, dest: &str, body: &B) {
        let src = self.me.clone();
        self.send_from(&src, dest, body);
    }

    fn send_from<B: Serialize>(&mut self, src: &str, dest: &str, body: &B) {
        match serde_json::to_string(&Outgoing { src, dest, body }) {
            Ok(line) => {
                self.stats.lines_out += 1;
                self.out.push(line);
            }
            Err(e) => tracing::error!("cannot encode a message to {dest}: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, ids: &[&str]) -> MaelstromNode {
        let mut n = MaelstromNode::new(NodeConfig::default());
        let init = json!({"src":"c0","dest":id,"body":{"type":"init","node_id":id,"node_ids":ids,"msg_id":1}});
        n.handle_line(Instant::ZERO, &init.to_string()).unwrap();
        n.drain_output().for_each(drop);
        n
    }

    fn call(n: &mut MaelstromNode, body: Value) -> Vec<Value> {
        let line = json!({"id": 4, "src": "c9", "dest": n.node_id().to_string(), "body": body});
        n.handle_line(Instant::ZERO, &line.to_string()).unwrap();
        n.drain_output()
            .map(|l| serde_json::from_str(&l).unwrap())
            .collect()
    }

    #[test]
    fn replies_follow_the_closed_schemas() {
        let mut n = node("n0", &["n0"]);
        assert_eq!(
            call(
                &mut n,
                json!({"type":"topology","topology":{"n0":[]},"msg_id":2})
            ),
            vec![json!({"src":"n0","dest":"c9","body":{"type":"topology_ok","in_reply_to":2}})]
        );
        assert_eq!(
            call(&mut n, json!({"type":"broadcast","message":5,"msg_id":3})),
            vec![json!({"src":"n0","dest":"c9","body":{"type":"broadcast_ok","in_reply_to":3}})]
        );
        assert_eq!(
            call(&mut n, json!({"type":"read","msg_id":4})),
            vec![
                json!({"src":"n0","dest":"c9","body":{"type":"read_ok","messages":[5],"in_reply_to":4}})
            ]
        );
        assert_eq!(
            call(&mut n, json!({"type":"echo","echo":"hi","msg_id":5})),
            vec![
                json!({"src":"n0","dest":"c9","body":{"type":"echo_ok","echo":"hi","in_reply_to":5}})
            ]
        );
    }

    #[test]
    fn unknown_requests_get_error_10_and_bad_lines_are_skipped() {
        let mut n = node("n0", &["n0"]);
        let out = call(&mut n, json!({"type":"txn","msg_id":7}));
        assert_eq!(out[0]["body"]["type"], "error");
        assert_eq!(out[0]["body"]["code"], 10);
        assert_eq!(out[0]["body"]["in_reply_to"], 7);
        assert!(n.handle_line(Instant::ZERO, "not json").is_err());
        assert!(
            n.handle_line(Instant::ZERO, r#"{"src":"c1","dest":"n0","body":{}}"#)
                .is_err()
        );
        assert_eq!(n.stats().malformed, 2);
        // Still alive and answering.
        assert_eq!(
            call(&mut n, json!({"type":"read","msg_id":8}))[0]["body"]["messages"],
            json!([])
        );
    }

    #[test]
    fn requests_before_init_are_refused_not_dropped() {
        let mut n = MaelstromNode::new(NodeConfig::default());
        let line = json!({"src":"c1","dest":"n0","body":{"type":"read","msg_id":3}});
        n.handle_line(Instant::ZERO, &line.to_string()).unwrap();
        let out: Vec<Value> = n
            .drain_output()
            .map(|l| serde_json::from_str(&l).unwrap())
            .collect();
        assert_eq!(out[0]["body"]["code"], 11);
        assert_eq!(out[0]["src"], "n0");
    }

    #[test]
    fn two_nodes_exchange_values_over_the_wire_format() {
        let ids = ["n0", "n1"];
        let mut nodes = [node("n0", &ids), node("n1", &ids)];
        let line =
            json!({"src":"c9","dest":"n0","body":{"type":"broadcast","message":42,"msg_id":2}});
        nodes[0]
            .handle_line(Instant::ZERO, &line.to_string())
            .unwrap();
        let mut now = Instant::ZERO;
        let mut wire: Vec<String> = Vec::new();
        for _ in 0..20 {
            for n in nodes.iter_mut() {
                n.tick(now);
                wire.extend(n.drain_output().filter(|l| !l.contains(r#""dest":"c9""#)));
            }
            for l in wire.drain(..) {
                let dest = if l.contains(r#""dest":"n0""#) { 0 } else { 1 };
                nodes[dest].handle_line(now, &l).unwrap();
            }
            now += std::time::Duration::from_millis(100);
        }
        let read = call(&mut nodes[1], json!({"type":"read","msg_id":9}));
        assert_eq!(read[0]["body"]["messages"], json!([42]));
        assert!(
            nodes.iter().all(|n| n.next_deadline().is_none()),
            "acked and quiet"
        );
    }
}
