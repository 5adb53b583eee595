//! The sans-IO Maelstrom node: maps typed request bodies onto the core
//! [`Node`], and the core's envelopes onto Maelstrom messages.

use crate::wire::{Head, Item, Outgoing, PeerBody, Raw, Request, Tally, TallyBody};
use hearsay_core::dissemination;
use hearsay_core::id::{Epoch, NodeId};
use hearsay_core::link::LinkConfig;
use hearsay_core::node::{Input, Node, Outbox, Topology};
use hearsay_core::time::Instant;
use hearsay_core::wire::Tag;
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
    /// Keep every value a client gives this node (broadcast, g-set add)
    /// and its counter's totals after each add:
    /// the shell must store what [`MaelstromNode::take_kept`] returns
    /// before it writes the node's output (the acknowledgements), and hand
    /// it back through [`MaelstromNode::restore`] when the node asks after
    /// `init`. A node killed after acknowledging then loses nothing.
    pub keep: bool,
    /// Link timing once the workload is known to be replicated state
    /// (g-set, counters), where a partition's heal should show within a
    /// second ([`hearsay_core::link::LinkConfig::for_state`]); `None`
    /// keeps the dissemination config's for every workload.
    pub state_link: Option<LinkConfig>,
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
    /// The counter engine (g-counter, pn-counter): one tally per replica,
    /// made at the first add or the first tally from a peer.
    tally: Option<Node<Tally>>,
    tally_out: Outbox<TallyBody>,
    members: Vec<NodeId>,
    out: Vec<String>,
    stats: NodeStats,
    workload: Option<Workload>,
    /// The workload was only inferred from a peer's values (a g-set); a
    /// topology or a client request says for sure.
    guessed: bool,
    /// Reads that came before anything said which workload this is: each
    /// is answered once something does (in that workload's schema), or
    /// refused when its wait is over.
    waiting: Vec<Waiting>,
    /// This node's own running totals: increments, decrements.
    mine: (u64, u64),
    /// unique-ids: ids generated in this life.
    generated: u64,
    /// Values accepted since the shell last stored them (`keep`).
    kept: Vec<Value>,
    /// `init` happened and the shell has not restored kept values yet.
    restore_wanted: bool,
}

/// A read put off until the workload is known.
#[derive(Debug)]
struct Waiting {
    src: String,
    dest: String,
    msg_id: Option<u64>,
    until: Instant,
}

impl Waiting {
    fn req(&self) -> Req<'_> {
        Req {
            src: &self.src,
            dest: &self.dest,
            msg_id: self.msg_id,
        }
    }
}

/// How long a read waits for the workload to be known. In a run, an add
/// anywhere tells every node within a few batching intervals; if every
/// client began with a read, nothing will tell, and waiting longer only
/// stalls the clients.
const READ_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// How a kept counter total is written among the kept values: an object
/// no broadcast or g-set client sends (Maelstrom's send integers).
pub const TALLY_RECORD: &str = "hearsay-tally";

/// A kept counter total: (increments, decrements).
fn tally_record(v: &Value) -> Option<(u64, u64)> {
    let o = v.as_object().filter(|o| o.len() == 1)?;
    let t = o.get(TALLY_RECORD)?.as_array().filter(|a| a.len() == 2)?;
    Some((t[0].as_u64()?, t[1].as_u64()?))
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
            tally: None,
            tally_out: Outbox::default(),
            members: Vec::new(),
            out: Vec::new(),
            stats: NodeStats::default(),
            workload: cfg.workload,
            guessed: false,
            waiting: Vec::new(),
            mine: (0, 0),
            generated: 0,
            kept: Vec::new(),
            restore_wanted: false,
            cfg,
        }
    }

    /// Values to store before this step's output is written (with
    /// [`NodeConfig::keep`]).
    pub fn take_kept(&mut self) -> Vec<Value> {
        std::mem::take(&mut self.kept)
    }

    /// True once, right after `init`, when the node keeps values: the shell
    /// should then call [`MaelstromNode::restore`] with what it stored.
    pub fn take_restore_request(&mut self) -> bool {
        std::mem::take(&mut self.restore_wanted)
    }

    /// Values an earlier life of this node acknowledged: they count as
    /// this node's own again and spread as any new value does. A counter's
    /// kept totals ([`TALLY_RECORD`]; the largest: they only grow) are
    /// added to what this life counted before the restore (an add can come
    /// in the same burst as `init`, ahead of it), and the sum is kept.
    pub fn restore(&mut self, now: Instant, values: Vec<Value>) {
        if self.node.is_none() || values.is_empty() {
            return;
        }
        let mut totals: Option<(u64, u64)> = None;
        for v in values {
            match tally_record(&v) {
                Some((p, n)) => {
                    let (tp, tn) = totals.get_or_insert((0, 0));
                    (*tp, *tn) = ((*tp).max(p), (*tn).max(n));
                }
                None => self.input(now, Input::Broadcast(Item::from(v))),
            }
        }
        if let Some((p, n)) = totals {
            self.learn(Workload::Counter);
            let counted = self.mine != (0, 0);
            self.mine = (self.mine.0.saturating_add(p), self.mine.1.saturating_add(n));
            if counted && self.cfg.keep {
                self.kept
                    .push(json!({ TALLY_RECORD: [self.mine.0, self.mine.1] }));
            }
            let t = Tally(self.me.clone(), self.mine.0, self.mine.1);
            self.tally_input(now, Input::Broadcast(t));
        }
        self.emit();
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
        if body.starts_with(r#"{"type":"hc""#) {
            return self.tally_peer(now, &raw.src, peer_body("hc", body)?);
        }
        if body.starts_with(r#"{"type":"hs""#) {
            return self.peer(now, &raw.src, peer_body("hs", body)?);
        }
        let head: Head = serde_json::from_str(body)?;
        let req = Req {
            src: &raw.src,
            dest: &raw.dest,
            msg_id: head.msg_id,
        };
        if head.kind == "hs" {
            return self.peer(now, &raw.src, peer_body("hs", body)?);
        }
        if head.kind == "hc" {
            return self.tally_peer(now, &raw.src, peer_body("hc", body)?);
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
                // Only the broadcast workload sends a topology, and before
                // any client request.
                self.learn(Workload::Broadcast);
                self.reply(req, "topology_ok", Map::new());
                self.emit();
            }
            Request::Broadcast { message } => {
                self.learn(Workload::Broadcast);
                if self.cfg.keep {
                    self.kept.push(message.clone());
                }
                // Acknowledge on receipt: the value is ours to deliver now.
                self.reply(req, "broadcast_ok", Map::new());
                self.input(now, Input::Broadcast(Item::from(message)));
                self.emit();
            }
            Request::Add { element, delta } => self.add(now, req, element, delta),
            Request::Read {} => match self.workload {
                Some(w) => self.read(req, w),
                // Reads look alike in every workload, and an answer in the
                // wrong schema makes the operation indeterminate: the read
                // waits until a topology, an add or a peer's values say
                // which workload this is (a few milliseconds in a run).
                None => self.waiting.push(Waiting {
                    src: req.src.to_owned(),
                    dest: req.dest.to_owned(),
                    msg_id: req.msg_id,
                    until: now + READ_WAIT,
                }),
            },
            Request::Echo { echo } => {
                let mut body = Map::new();
                body.insert("echo".into(), echo);
                self.reply(req, "echo_ok", body);
            }
            Request::Generate {} => {
                // Unique without coordination: the node's name, its life
                // (a new one at every start) and a count within the life.
                self.generated += 1;
                let id = format!("{}-{}-{}", self.me, self.cfg.epoch.max(1), self.generated);
                let mut body = Map::new();
                body.insert("id".into(), Value::String(id));
                self.reply(req, "generate_ok", body);
            }
        }
    }

    /// g-set adds are broadcast as the element itself (the broadcast
    /// engine's value set is the G-Set, its digests its anti-entropy);
    /// counter adds move this replica's running totals, and the counter
    /// engine spreads the new tally, which replaces the old one everywhere.
    fn add(&mut self, now: Instant, req: &Req<'_>, element: Option<Value>, delta: Option<i64>) {
        match (element, delta) {
            (Some(e), _) => {
                self.learn(Workload::GSet);
                if self.cfg.keep {
                    self.kept.push(e.clone());
                }
                self.reply(req, "add_ok", Map::new());
                self.input(now, Input::Broadcast(Item::from(e)));
                self.emit();
            }
            (None, Some(d)) => {
                self.learn(Workload::Counter);
                self.reply(req, "add_ok", Map::new());
                if d == 0 {
                    return;
                }
                let (p, n) = &mut self.mine;
                if d > 0 {
                    *p = p.saturating_add(d.unsigned_abs());
                } else {
                    *n = n.saturating_add(d.unsigned_abs());
                }
                if self.cfg.keep {
                    self.kept
                        .push(json!({ TALLY_RECORD: [self.mine.0, self.mine.1] }));
                }
                let t = Tally(self.me.clone(), self.mine.0, self.mine.1);
                self.tally_input(now, Input::Broadcast(t));
            }
            (None, None) => {
                self.error(req, MALFORMED_REQUEST, "add needs an element or a delta");
            }
        }
    }

    /// The counter: the sum of the tallies held, one per replica.
    fn read_counter(&mut self, req: &Req<'_>) {
        let value: i64 = self
            .tally
            .as_ref()
            .map_or(0, |n| n.values().map(Tally::value).sum());
        let mut body = Map::new();
        body.insert("value".into(), value.into());
        self.reply(req, "read_ok", body);
    }

    /// A tally engine message from a peer (the engine is made if this node
    /// has not counted yet).
    fn tally_peer(&mut self, now: Instant, src: &str, env: TallyBody) -> Result<(), NodeError> {
        if self.node.is_none() {
            return Err(NodeError::BadBody {
                kind: "hc".into(),
                reason: "a peer message before init".into(),
            });
        }
        // Peers count: so does this workload.
        self.learn(Workload::Counter);
        let from = NodeId::new(src);
        self.tally_input(now, Input::Receive { from, env });
        Ok(())
    }

    fn tally_input(&mut self, now: Instant, input: Input<Tally>) {
        if self.tally.is_none() {
            match self.engine() {
                Ok(n) => self.tally = Some(n),
                Err(e) => tracing::error!("cannot start the counter engine: {e}"),
            }
        }
        if let Some(n) = self.tally.as_mut() {
            n.handle(now, input, &mut self.tally_out);
        }
        self.emit();
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
        // Values from a peer before any topology: a g-set (broadcast nodes
        // get their topology before any value exists; counters travel on
        // the tally engine).
        if carries_values(&env) && self.workload.is_none() {
            self.learn(Workload::GSet);
            self.guessed = true;
        }
        let from = NodeId::new(src);
        self.input(now, Input::Receive { from, env });
        self.emit();
        Ok(())
    }

    /// The workload is `w` (unless it was known already): reads that
    /// waited for it are answered now.
    fn learn(&mut self, w: Workload) {
        if self.workload.is_some() && !std::mem::take(&mut self.guessed) {
            return;
        }
        self.workload = Some(w);
        let link = self.link();
        if let Some(n) = self.node.as_mut()
            && n.config().link != link
            && let Err(e) = n.set_link(link)
        {
            tracing::error!("cannot retime the links: {e}");
        }
        for r in std::mem::take(&mut self.waiting) {
            self.read(&r.req(), w);
        }
    }

    /// A read, in `w`'s schema.
    fn read(&mut self, req: &Req<'_>, w: Workload) {
        match w {
            Workload::GSet => self.read_as(req, "value"),
            Workload::Counter => self.read_counter(req),
            Workload::Broadcast => self.read_as(req, "messages"),
        }
    }

    /// Reads whose wait is over are answered as a counter's (0 then): a
    /// workload without a topology that nobody has added to yet. Refusing
    /// would not help: the counter and set clients count every error
    /// reply indeterminate. Only a g-set read can be wrong this way (its
    /// schema wants a list), and only before any add in the whole run.
    fn expire_reads(&mut self, now: Instant) {
        let (due, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|r| r.until <= now);
        self.waiting = keep;
        for r in due {
            self.read_counter(&r.req());
        }
    }

    fn input(&mut self, now: Instant, input: Input<Item>) {
        if let Some(n) = self.node.as_mut() {
            n.handle(now, input, &mut self.outbox);
        }
    }

    /// An engine (the set's or the counter's) for this node's members.
    fn engine<V: hearsay_core::value::Value>(
        &self,
    ) -> Result<Node<V>, hearsay_core::dissemination::ConfigError> {
        Node::new(
            dissemination::Config {
                link: self.link(),
                ..self.cfg.dissemination.clone()
            },
            NodeId::new(&self.me),
            Epoch(self.cfg.epoch.max(1)),
            self.members.clone(),
            self.cfg.seed,
        )
    }

    /// The link timing for what this node serves, as far as it knows.
    fn link(&self) -> LinkConfig {
        match (self.workload, &self.cfg.state_link) {
            (Some(Workload::GSet | Workload::Counter), Some(l)) => l.clone(),
            _ => self.cfg.dissemination.link.clone(),
        }
    }

    fn init(&mut self, id: &str, ids: Vec<String>) {
        self.restore_wanted = self.cfg.keep && self.node.is_none();
        self.me = id.to_owned();
        self.members = ids.into_iter().map(NodeId::new).collect();
        match self.engine() {
            Ok(n) => self.node = Some(n),
            // The shell validated the config; keep serving echo if not.
            Err(e) => tracing::error!("cannot start the broadcast engine: {e}"),
        }
    }

    /// Timers: call at (or after) `next_deadline`.
    pub fn tick(&mut self, now: Instant) {
        self.expire_reads(now);
        self.input(now, Input::Tick);
        if let Some(t) = self.tally.as_mut() {
            t.handle(now, Input::Tick, &mut self.tally_out);
        }
        self.emit();
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        hearsay_core::node::timers::earliest([
            self.node.as_ref().and_then(Node::next_deadline),
            self.tally.as_ref().and_then(Node::next_deadline),
            self.waiting.iter().map(|r| r.until).min(),
        ])
    }

    /// Lines to write to stdout, in order.
    pub fn drain_output(&mut self) -> impl Iterator<Item = String> + '_ {
        self.out.drain(..)
    }

    pub fn stats(&self) -> NodeStats {
        self.stats
    }

    /// The busy engine's counters: the counter engine's once it runs.
    pub fn core_stats(&self) -> Option<hearsay_core::node::Stats> {
        match &self.tally {
            Some(t) => Some(t.stats()),
            None => self.node.as_ref().map(Node::stats),
        }
    }

    pub fn node_id(&self) -> &str {
        &self.me
    }

    /// The peers this node's strategy sends to now (its overlay), empty
    /// before `init`.
    pub fn neighbours(&self) -> Vec<String> {
        let ns = match &self.tally {
            Some(t) => t.neighbours(),
            None => self.node.as_ref().map_or_else(Vec::new, Node::neighbours),
        };
        ns.iter().map(|p| p.to_string()).collect()
    }

    fn emit(&mut self) {
        let sends: Vec<_> = self.outbox.drain().collect();
        let src = self.me.clone();
        for (to, env) in sends {
            self.send_from(&src, to.as_str(), &env);
        }
        let tallies: Vec<_> = self.tally_out.drain().collect();
        for (to, mut env) in tallies {
            env.tag = Tag::Hc;
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

/// A node-to-node body of type `kind`, or why it is not one.
fn peer_body<T: serde::de::DeserializeOwned>(kind: &str, body: &str) -> Result<T, NodeError> {
    serde_json::from_str(body).map_err(|e| NodeError::BadBody {
        kind: kind.into(),
        reason: e.to_string(),
    })
}

/// Does a set-engine message carry values (not just acks or greetings)?
fn carries_values(env: &PeerBody) -> bool {
    use hearsay_core::dissemination::DisMsg;
    use hearsay_core::link::LinkMsg;
    use hearsay_core::wire::Msg;
    match &env.msg {
        Msg::Link(LinkMsg::Data { values, .. }) => !values.is_empty(),
        Msg::Dis(DisMsg::Push { e } | DisMsg::Delta { e, .. }) => !e.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keeping_node_hands_values_over_before_its_ack_and_takes_them_back_after_a_restart() {
        let keep = NodeConfig {
            keep: true,
            workload: Some(Workload::Broadcast),
            ..NodeConfig::default()
        };
        let init = json!({"src":"c0","dest":"n0","body":{"type":"init","node_id":"n0","node_ids":["n0"],"msg_id":1}}).to_string();
        let mut first = MaelstromNode::new(keep.clone());
        first.handle_line(Instant::ZERO, &init).unwrap();
        assert!(first.take_restore_request(), "asks once, after init");
        assert!(!first.take_restore_request());
        first.drain_output().for_each(drop);
        let b = json!({"src":"c1","dest":"n0","body":{"type":"broadcast","message":7,"msg_id":2}});
        first.handle_line(Instant::ZERO, &b.to_string()).unwrap();
        // The value is handed over in the same step as its acknowledgement.
        let stored = first.take_kept();
        assert_eq!(stored, vec![json!(7)]);
        assert!(first.drain_output().any(|l| l.contains("broadcast_ok")));
        // A new life: empty until the shell gives the values back.
        let mut second = MaelstromNode::new(NodeConfig { epoch: 2, ..keep });
        second.handle_line(Instant::ZERO, &init).unwrap();
        assert!(second.take_restore_request());
        second.restore(Instant::ZERO, stored);
        second.drain_output().for_each(drop);
        let r = json!({"src":"c1","dest":"n0","body":{"type":"read","msg_id":3}});
        second.handle_line(Instant::ZERO, &r.to_string()).unwrap();
        let out: Vec<String> = second.drain_output().collect();
        assert!(
            out.iter().any(|l| l.contains(r#""messages":[7]"#)),
            "{out:?}"
        );
        // Restored values are not kept twice.
        assert!(second.take_kept().is_empty());
        // Without keep nothing is handed over.
        let mut plain = node("n0", &["n0"]);
        plain.handle_line(Instant::ZERO, &b.to_string()).unwrap();
        assert!(plain.take_kept().is_empty() && !plain.take_restore_request());
    }

    /// Counter totals kept by an earlier life come back added to what this
    /// life counted before the shell restored them (an add in the same
    /// burst as `init`), and the sum is kept.
    #[test]
    fn a_counter_restored_after_an_early_add_keeps_both() {
        let keep = NodeConfig {
            keep: true,
            ..NodeConfig::default()
        };
        let init = json!({"src":"c0","dest":"n0","body":{"type":"init","node_id":"n0","node_ids":["n0"],"msg_id":1}}).to_string();
        let mut first = MaelstromNode::new(keep.clone());
        first.handle_line(Instant::ZERO, &init).unwrap();
        call(&mut first, json!({"type":"add","delta":100,"msg_id":2}));
        call(&mut first, json!({"type":"add","delta":-3,"msg_id":3}));
        let stored = first.take_kept();
        assert_eq!(stored.last(), Some(&json!({TALLY_RECORD: [100, 3]})));
        let mut second = MaelstromNode::new(NodeConfig { epoch: 2, ..keep });
        second.handle_line(Instant::ZERO, &init).unwrap();
        call(&mut second, json!({"type":"add","delta":5,"msg_id":2}));
        second.take_kept();
        second.restore(Instant::ZERO, stored);
        second.drain_output().for_each(drop);
        let out = call(&mut second, json!({"type":"read","msg_id":3}));
        assert_eq!(out[0]["body"]["value"], 102, "{out:?}");
        assert_eq!(second.take_kept(), vec![json!({TALLY_RECORD: [105, 3]})]);
    }

    #[test]
    fn links_take_the_state_timing_once_the_workload_is_replicated_state() {
        let state = LinkConfig::default().for_state();
        let cfg = NodeConfig {
            state_link: Some(state.clone()),
            ..NodeConfig::default()
        };
        let init = |id: &str| {
            json!({"src":"c0","dest":id,"body":{"type":"init","node_id":id,"node_ids":["n0","n1"],"msg_id":1}}).to_string()
        };
        let link = |n: &MaelstromNode| n.node.as_ref().unwrap().config().link.clone();
        // Unknown workload: the broadcast timing; a g-set add: the state's.
        let mut set = MaelstromNode::new(cfg.clone());
        set.handle_line(Instant::ZERO, &init("n0")).unwrap();
        assert_eq!(link(&set), LinkConfig::default());
        call(&mut set, json!({"type":"add","element":1,"msg_id":2}));
        assert_eq!(link(&set), state);
        // A counter's engine is made with it.
        let mut counter = MaelstromNode::new(cfg.clone());
        counter.handle_line(Instant::ZERO, &init("n0")).unwrap();
        call(&mut counter, json!({"type":"add","delta":2,"msg_id":2}));
        assert_eq!(counter.tally.as_ref().unwrap().config().link, state);
        // Broadcast keeps its timing, also when told the workload up front.
        let mut cast = MaelstromNode::new(cfg.clone());
        cast.handle_line(Instant::ZERO, &init("n0")).unwrap();
        call(
            &mut cast,
            json!({"type":"broadcast","message":1,"msg_id":2}),
        );
        assert_eq!(link(&cast), LinkConfig::default());
        let mut told = MaelstromNode::new(NodeConfig {
            workload: Some(Workload::GSet),
            ..cfg
        });
        told.handle_line(Instant::ZERO, &init("n0")).unwrap();
        assert_eq!(link(&told), state);
    }

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
    fn generated_ids_are_unique_across_nodes_and_lives() {
        let ids = ["n0", "n1"];
        let mut seen = std::collections::BTreeSet::new();
        for (name, epoch) in [("n0", 1), ("n1", 1), ("n0", 2)] {
            let mut n = node(name, &ids);
            n.cfg.epoch = epoch;
            for k in 0..50u64 {
                let out = call(&mut n, json!({"type":"generate","msg_id":k}));
                assert_eq!(out.len(), 1, "{out:?}");
                let body = &out[0]["body"];
                assert_eq!(body["type"], "generate_ok");
                assert_eq!(body["in_reply_to"], k);
                assert!(seen.insert(body["id"].to_string()), "duplicate {body}");
            }
        }
    }

    #[test]
    fn a_read_before_the_workload_is_known_waits_for_it_not_guesses() {
        let ids = ["n0", "n1"];
        let mut n = node("n0", &ids);
        assert!(
            call(&mut n, json!({"type":"read","msg_id":1})).is_empty(),
            "it waits"
        );
        // The first add tells: the read is answered as a counter's.
        let out = call(&mut n, json!({"type":"add","delta":2,"msg_id":2}));
        assert_eq!(
            out[0]["body"],
            json!({"type":"read_ok","value":0,"in_reply_to":1})
        );
        assert_eq!(out[1]["body"], json!({"type":"add_ok","in_reply_to":2}));
        let out = call(&mut n, json!({"type":"read","msg_id":3}));
        assert_eq!(
            out[0]["body"],
            json!({"type":"read_ok","value":2,"in_reply_to":3})
        );
        // A g-set: so does an element.
        let mut g = node("n0", &ids);
        call(&mut g, json!({"type":"add","element":7,"msg_id":1}));
        let out = call(&mut g, json!({"type":"read","msg_id":2}));
        assert_eq!(
            out[0]["body"],
            json!({"type":"read_ok","value":[7],"in_reply_to":2})
        );
        // Broadcast: the topology comes first.
        let mut b = node("n0", &ids);
        call(
            &mut b,
            json!({"type":"topology","topology":{"n0":["n1"],"n1":["n0"]},"msg_id":1}),
        );
        let out = call(&mut b, json!({"type":"read","msg_id":2}));
        assert_eq!(
            out[0]["body"],
            json!({"type":"read_ok","messages":[],"in_reply_to":2})
        );
        // Nothing says (every client began with a read): answered as a
        // counter, 0, once the wait is over.
        let mut u = node("n0", &ids);
        assert!(call(&mut u, json!({"type":"read","msg_id":1})).is_empty());
        let at = u.next_deadline().expect("the wait's end");
        assert!(at <= Instant::ZERO + std::time::Duration::from_millis(500));
        u.tick(at);
        let out: Vec<Value> = u
            .drain_output()
            .map(|l| serde_json::from_str(&l).unwrap())
            .collect();
        assert_eq!(
            out[0]["body"],
            json!({"type":"read_ok","value":0,"in_reply_to":1})
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
        call(
            &mut n,
            json!({"type":"topology","topology":{"n0":[]},"msg_id":10}),
        );
        assert_eq!(
            call(&mut n, json!({"type":"read","msg_id":11}))[0]["body"]["messages"],
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

    /// Runs `nodes` for `secs` of 100 ms ticks, carrying their peer lines.
    fn exchange(nodes: &mut [MaelstromNode], secs: u64) -> Instant {
        let mut now = Instant::ZERO;
        let mut wire: Vec<String> = Vec::new();
        for _ in 0..secs * 10 {
            for n in nodes.iter_mut() {
                n.tick(now);
                wire.extend(n.drain_output().filter(|l| !l.contains(r#""dest":"c9""#)));
            }
            for l in wire.drain(..) {
                let dest = nodes
                    .iter()
                    .position(|n| l.contains(&format!(r#""dest":"{}""#, n.node_id())))
                    .unwrap();
                nodes[dest].handle_line(now, &l).unwrap();
            }
            now += std::time::Duration::from_millis(100);
        }
        now
    }

    #[test]
    fn a_counter_holds_one_tally_per_replica_whatever_the_number_of_adds() {
        let ids = ["n0", "n1", "n2"];
        let mut nodes = [node("n0", &ids), node("n1", &ids), node("n2", &ids)];
        for i in 0..1000 {
            let d = if i % 3 == 0 { -2 } else { 5 };
            call(&mut nodes[0], json!({"type":"add","delta":d,"msg_id":i}));
        }
        call(&mut nodes[1], json!({"type":"add","delta":7,"msg_id":1}));
        let held = |n: &MaelstromNode| n.tally.as_ref().map_or(0, |t| t.values().len());
        assert_eq!(held(&nodes[0]), 1, "1,000 adds, one tally");
        exchange(&mut nodes, 10);
        // 334 adds of -2 and 666 of 5 at n0, 7 at n1.
        let want = 666 * 5 - 334 * 2 + 7;
        for n in nodes.iter_mut() {
            assert_eq!(
                held(n),
                2,
                "{}: one tally per replica that added",
                n.node_id()
            );
            let r = call(n, json!({"type":"read","msg_id":99}));
            assert_eq!(r[0]["body"]["value"], want, "{}", n.node_id());
        }
        assert!(
            nodes.iter().all(|n| n.next_deadline().is_none()),
            "acked and quiet"
        );
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
        // Maelstrom's broadcast workload sends every node its topology first.
        call(
            &mut nodes[1],
            json!({"type":"topology","topology":{},"msg_id":8}),
        );
        let read = call(&mut nodes[1], json!({"type":"read","msg_id":9}));
        assert_eq!(read[0]["body"]["messages"], json!([42]));
        assert!(
            nodes.iter().all(|n| n.next_deadline().is_none()),
            "acked and quiet"
        );
    }
}
