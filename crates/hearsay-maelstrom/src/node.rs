//! The sans-IO Maelstrom node: maps typed request bodies onto the core
//! [`Node`], and the core's envelopes onto Maelstrom messages.

use crate::wire::{Head, Item, Outgoing, PeerBody, Raw, Request};
use hearsay_core::crdt::{Crdt, PNCounter};
use hearsay_core::dissemination;
use hearsay_core::id::{Epoch, NodeId};
use hearsay_core::node::{Input, Node, Outbox, Topology};
use hearsay_core::time::Instant;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

/// Maelstrom error codes the node uses.
const NOT_SUPPORTED: u64 = 10;
const TEMPORARILY_UNAVAILABLE: u64 = 11;
const MALFORMED_REQUEST: u64 = 12;

#[derive(Clone, Debug, Default)]
pub struct NodeConfig {
    pub dissemination: dissemination::Config,
    /// Seeds the node's random choices (combined with its id).
    pub seed: u64,
    /// This process's life. The shell picks a new one at every start (the
    /// wall clock) when this is 0, so peers tell a restarted node from its
    /// earlier life.
    pub epoch: u64,
    /// What `read` answers and `add` means; inferred from the first client
    /// request when not given.
    pub workload: Option<Workload>,
}

/// The Maelstrom workloads this node serves. Reads look alike on the wire,
/// so the node must know which answer (`messages`, or `value` as a set or
/// a number) the workload's schema expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    Broadcast,
    #[value(name = "g-set")]
    GSet,
    /// g-counter and pn-counter: the same PN-counter serves both.
    #[value(name = "g-counter", alias = "pn-counter")]
    Counter,
}

/// Why an input line was dropped. The node's state is unchanged.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("not a Maelstrom message: {0}")]
    Malformed(#[from] serde_json::Error),
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
    node: Option<Node<Item>>,
    outbox: Outbox<PeerBody>,
    out: Vec<String>,
    stats: NodeStats,
    workload: Option<Workload>,
    /// This node's own counter, from which each add's delta is cut.
    counter: PNCounter,
    /// (values held, counter value) at the last counter read.
    counted: Option<(usize, i64)>,
}

/// Where a request came from and went to, for the reply.
struct Req<'a> {
    src: &'a str,
    dest: &'a str,
    msg_id: Option<u64>,
}

impl MaelstromNode {
    pub fn new(cfg: NodeConfig) -> Self {
        MaelstromNode {
            me: String::new(),
            node: None,
            outbox: Outbox::default(),
            out: Vec::new(),
            stats: NodeStats::default(),
            workload: cfg.workload,
            counter: PNCounter::default(),
            counted: None,
            cfg,
        }
    }

    /// Handles one line from stdin. On `Err`, the line was dropped and nothing
    /// changed; the shell logs it and carries on.
    pub fn handle_line(&mut self, now: Instant, line: &str) -> Result<(), NodeError> {
        self.stats.lines_in += 1;
        self.route(now, line)
            .inspect_err(|_| self.stats.malformed += 1)
    }

    fn route(&mut self, now: Instant, line: &str) -> Result<(), NodeError> {
        let raw: Raw = serde_json::from_str(line)?;
        let body = raw.body.get();
        // Node-to-node traffic is most of the volume: parse it straight into
        // the core's envelope (hearsay writes "type" first).
        if body.starts_with(r#"{"type":"hs""#) {
            let env: PeerBody = serde_json::from_str(body).map_err(|e| NodeError::BadBody {
                kind: "hs".into(),
                reason: e.to_string(),
            })?;
            return self.peer(now, &raw.src, env);
        }
        let head: Head = serde_json::from_str(body)?;
        let req = Req {
            src: &raw.src,
            dest: &raw.dest,
            msg_id: head.msg_id,
        };
        if head.kind == "hs" {
            let env: PeerBody = serde_json::from_str(body).map_err(|e| NodeError::BadBody {
                kind: "hs".into(),
                reason: e.to_string(),
            })?;
            return self.peer(now, &raw.src, env);
        }
        if !Request::KINDS.contains(&head.kind.as_str()) {
            if head.in_reply_to.is_some() {
                // A reply to something we never asked (we send no RPCs): drop.
                return Ok(());
            }
            self.stats.unsupported += 1;
            let text = format!("hearsay-node does not support {:?} requests", head.kind);
            self.error(&req, NOT_SUPPORTED, &text);
            return Ok(());
        }
        let request: Request = match serde_json::from_str(body) {
            Ok(r) => r,
            Err(e) if head.kind == "init" => {
                return Err(NodeError::BadBody {
                    kind: head.kind,
                    reason: e.to_string(),
                });
            }
            Err(e) => {
                self.error(
                    &req,
                    MALFORMED_REQUEST,
                    &format!("malformed {}: {e}", head.kind),
                );
                return Ok(());
            }
        };
        self.request(now, &req, request);
        Ok(())
    }

    fn request(&mut self, now: Instant, req: &Req<'_>, request: Request) {
        if let Request::Init { node_id, node_ids } = request {
            self.init(&node_id, node_ids);
            self.reply(req, "init_ok", Map::new());
            return;
        }
        if self.node.is_none() {
            self.error(
                req,
                TEMPORARILY_UNAVAILABLE,
                "node has not received init yet",
            );
            return;
        }
        match request {
            Request::Init { .. } => unreachable!("handled above"),
            Request::Topology { topology } => {
                let topo: Topology = topology
                    .into_iter()
                    .map(|(k, v)| (NodeId::new(k), v.into_iter().map(NodeId::new).collect()))
                    .collect();
                self.input(now, Input::Topology(topo));
                self.reply(req, "topology_ok", Map::new());
                self.emit();
            }
            Request::Broadcast { message } => {
                self.workload.get_or_insert(Workload::Broadcast);
                // Acknowledge on receipt: the value is ours to deliver now.
                self.reply(req, "broadcast_ok", Map::new());
                self.input(now, Input::Broadcast(Item::from(message)));
                self.emit();
            }
            Request::Add { element, delta } => self.add(now, req, element, delta),
            Request::Read {} => match self.workload {
                Some(Workload::GSet) => self.read_as(req, "value"),
                Some(Workload::Counter) => self.read_counter(req),
                _ => self.read_as(req, "messages"),
            },
            Request::Echo { echo } => {
                let mut body = Map::new();
                body.insert("echo".into(), echo);
                self.reply(req, "echo_ok", body);
            }
        }
    }

    /// g-set adds are broadcast as the element itself (the broadcast
    /// engine's value set is the G-Set, its digests its anti-entropy);
    /// counter adds as the PN-counter delta they produce, merged on read.
    fn add(&mut self, now: Instant, req: &Req<'_>, element: Option<Value>, delta: Option<i64>) {
        let item = match (element, delta) {
            (Some(e), _) => {
                self.workload.get_or_insert(Workload::GSet);
                Some(Item::from(e))
            }
            (None, Some(d)) => {
                self.workload.get_or_insert(Workload::Counter);
                let me = NodeId::new(&self.me);
                let delta = self.counter.add(&me, d);
                (delta != PNCounter::default()).then(|| counter_item(&delta))
            }
            (None, None) => {
                self.error(req, MALFORMED_REQUEST, "add needs an element or a delta");
                return;
            }
        };
        self.reply(req, "add_ok", Map::new());
        if let Some(item) = item {
            self.input(now, Input::Broadcast(item));
            self.emit();
        }
    }

    /// The counter: every delta held, merged (a replica's deltas carry its
    /// running totals, so merging any superset of them gives the same).
    fn read_counter(&mut self, req: &Req<'_>) {
        let held = self.node.as_ref().map_or(0, |n| n.values().len());
        let value = match self.counted {
            Some((n, v)) if n == held => v,
            _ => {
                let mut c = self.counter.clone();
                if let Some(n) = self.node.as_ref() {
                    for item in n.values() {
                        if let Some(d) = counter_delta(item) {
                            c.merge(&d);
                        }
                    }
                }
                self.counted = Some((held, c.value()));
                c.value()
            }
        };
        let mut body = Map::new();
        body.insert("value".into(), value.into());
        self.reply(req, "read_ok", body);
    }

    /// Written straight to text: a read can list tens of thousands of
    /// values, and a JSON tree of them would be built per read.
    fn read_as(&mut self, req: &Req<'_>, key: &str) {
        let mut text: Vec<u8> = format!(r#"{{"type":"read_ok","{key}":["#).into_bytes();
        if let Some(n) = self.node.as_ref() {
            for (k, v) in n.values().enumerate() {
                if k > 0 {
                    text.push(b',');
                }
                if let Err(e) = serde_json::to_writer(&mut text, v) {
                    tracing::error!("cannot encode a value: {e}");
                }
            }
        }
        text.push(b']');
        if let Some(id) = req.msg_id {
            text.extend_from_slice(format!(r#","in_reply_to":{id}"#).as_bytes());
        }
        text.push(b'}');
        match String::from_utf8(text).map(RawValue::from_string) {
            Ok(Ok(body)) => {
                let src = self.me.clone();
                self.send_from(&src, req.src, &body);
            }
            _ => tracing::error!("cannot encode a read reply"),
        }
    }

    fn peer(&mut self, now: Instant, src: &str, env: PeerBody) -> Result<(), NodeError> {
        if self.node.is_none() {
            return Err(NodeError::BadBody {
                kind: "hs".into(),
                reason: "a peer message before init".into(),
            });
        }
        let from = NodeId::new(src);
        self.input(now, Input::Receive { from, env });
        self.emit();
        Ok(())
    }

    fn input(&mut self, now: Instant, input: Input<Item>) {
        if let Some(n) = self.node.as_mut() {
            n.handle(now, input, &mut self.outbox);
        }
    }

    fn init(&mut self, id: &str, ids: Vec<String>) {
        self.me = id.to_owned();
        let members: Vec<NodeId> = ids.into_iter().map(NodeId::new).collect();
        let epoch = Epoch(self.cfg.epoch.max(1));
        match Node::new(
            self.cfg.dissemination.clone(),
            NodeId::new(id),
            epoch,
            members,
            self.cfg.seed,
        ) {
            Ok(n) => self.node = Some(n),
            // The shell validated the config; keep serving echo if not.
            Err(e) => tracing::error!("cannot start the broadcast engine: {e}"),
        }
    }

    /// Timers: call at (or after) `next_deadline`.
    pub fn tick(&mut self, now: Instant) {
        if self.node.is_some() {
            self.input(now, Input::Tick);
            self.emit();
        }
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.node.as_ref().and_then(Node::next_deadline)
    }

    /// Lines to write to stdout, in order.
    pub fn drain_output(&mut self) -> impl Iterator<Item = String> + '_ {
        self.out.drain(..)
    }

    pub fn stats(&self) -> NodeStats {
        self.stats
    }

    pub fn core_stats(&self) -> Option<hearsay_core::node::Stats> {
        self.node.as_ref().map(Node::stats)
    }

    pub fn node_id(&self) -> &str {
        &self.me
    }

    /// The peers this node's strategy sends to now (its overlay), empty
    /// before `init`.
    pub fn neighbours(&self) -> Vec<String> {
        self.node.as_ref().map_or_else(Vec::new, |n| {
            n.neighbours().iter().map(|p| p.to_string()).collect()
        })
    }

    fn emit(&mut self) {
        let sends: Vec<_> = self.outbox.drain().collect();
        let src = self.me.clone();
        for (to, env) in sends {
            self.send_from(&src, to.as_str(), &env);
        }
    }

    fn reply(&mut self, req: &Req<'_>, kind: &str, mut body: Map<String, Value>) {
        let mut full = Map::new();
        full.insert("type".into(), kind.into());
        full.append(&mut body);
        if let Some(id) = req.msg_id {
            full.insert("in_reply_to".into(), id.into());
        }
        let src = if self.me.is_empty() {
            req.dest.to_owned()
        } else {
            self.me.clone()
        };
        self.send_from(&src, req.src, &Value::Object(full));
    }

    fn error(&mut self, req: &Req<'_>, code: u64, text: &str) {
        let body = json!({"code": code, "text": text});
        let Value::Object(body) = body else {
            unreachable!("json! object")
        };
        self.reply(req, "error", body);
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

/// A PN-counter delta as a broadcast value: `{"pn": <delta>}`.
fn counter_item(d: &PNCounter) -> Item {
    let v = serde_json::json!({ "pn": d });
    Item::Json(v.to_string().into_boxed_str())
}

fn counter_delta(item: &Item) -> Option<PNCounter> {
    #[derive(serde::Deserialize)]
    struct Tagged {
        pn: PNCounter,
    }
    match item {
        Item::Json(text) => serde_json::from_str::<Tagged>(text).ok().map(|t| t.pn),
        Item::Int(_) => None,
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
        // A known request with a malformed body gets error 12 and changes nothing.
        let out = call(&mut n, json!({"type":"topology","topology":[1],"msg_id":8}));
        assert_eq!(out[0]["body"]["code"], 12);
        let out = call(&mut n, json!({"type":"broadcast","msg_id":9}));
        assert_eq!(out[0]["body"]["code"], 12);
        assert!(
            n.handle_line(Instant::ZERO, r#"{"src":"c1","dest":"n0","body":{}}"#)
                .is_err()
        );
        assert_eq!(n.stats().malformed, 2);
        // Still alive and answering.
        assert_eq!(
            call(&mut n, json!({"type":"read","msg_id":10}))[0]["body"]["messages"],
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
        // 6 s: the greetings of the node with nothing to send go out after
        // an ack delay and are acknowledged after another.
        for _ in 0..60 {
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
