//! The agent loop's side of queries ([`crate::query`]): sending them,
//! taking acknowledgements and answers, and answering those asked of this
//! agent through a handler or the application, off the loop.

use crate::query::{self, Answer, Asking, QueryMsg};
use crate::{Loop, Status, handlers, meta_addr, tags_from};
use hearsay_core::id::NodeId;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Answers coming back from handlers and the application: (asker, query
/// id, answer).
pub(crate) struct Answers {
    tx: mpsc::UnboundedSender<(NodeId, u64, Answer)>,
    pub rx: mpsc::UnboundedReceiver<(NodeId, u64, Answer)>,
    /// Answers in progress (each a task waiting for its handler).
    running: usize,
}

impl Answers {
    pub fn new() -> Answers {
        let (tx, rx) = mpsc::unbounded_channel();
        Answers { tx, rx, running: 0 }
    }
}

impl Loop {
    /// Starts a query: the members its filters choose, asked now.
    pub(crate) async fn start_ask(
        &mut self,
        q: query::Checked,
        updates: mpsc::Sender<query::Update>,
    ) -> Result<(), String> {
        if self.asking.len() >= query::MAX_ASKING {
            return Err(format!(
                "busy: {} queries are in progress; try again",
                query::MAX_ASKING
            ));
        }
        let swim = self.node.swim();
        let mut targets: BTreeMap<NodeId, Option<SocketAddr>> = BTreeMap::new();
        let mut unreachable = Vec::new();
        for (id, _, _, meta) in swim
            .members()
            .filter(|(_, _, st, _)| matches!(st, Status::Alive | Status::Suspect))
            .filter(|(id, _, _, meta)| q.wants(id.as_str(), &meta.tags))
        {
            match meta_addr(meta).or_else(|| self.addrs.get(id).copied()) {
                Some(a) => {
                    targets.insert(id.clone(), Some(a));
                }
                None => {
                    // Chosen, never reached: the summary names it missing.
                    tracing::warn!("query {}: no address known for {id}", q.name);
                    unreachable.push(id.to_string());
                }
            }
        }
        // The member table holds the others; this agent is asked in place.
        if q.wants(self.me.as_str(), &swim.meta().tags) {
            targets.insert(self.me.clone(), None);
        }
        self.asking_ids += 1;
        let id = self.asking_ids;
        let now = self.now();
        let local = targets.contains_key(&self.me);
        self.asking
            .push(Asking::new(id, &q, targets, unreachable, now, updates));
        if local {
            // Asked of itself as of anyone: acknowledged, then answered
            // when its handler finishes.
            let me = self.me.clone();
            let answers = self.can_answer(&q.name);
            if let Some(a) = self.asking.last_mut() {
                a.ack(&me, answers);
            }
            if answers {
                self.start_answer(me, id, q.name, q.payload, q.timeout);
            }
        }
        self.run_asks().await;
        Ok(())
    }

    /// Asks again those not heard from; ends the queries that are done.
    pub(crate) async fn run_asks(&mut self) {
        if self.asking.is_empty() {
            return;
        }
        let now = self.now();
        let mut sends = Vec::new();
        for a in &mut self.asking {
            let due = a.due(now);
            if !due.is_empty() {
                let m = a.ask(now);
                sends.extend(due.into_iter().map(|to| (to, m.clone())));
            }
        }
        for (to, m) in sends {
            self.send_qy(to, m).await;
        }
        let (done, waiting): (Vec<Asking>, Vec<Asking>) = std::mem::take(&mut self.asking)
            .into_iter()
            .partition(|a| a.done(now));
        self.asking = waiting;
        for a in done {
            let s = a.finish(now);
            tracing::info!(
                "query {}: {} asked, {} acknowledged, {} answered, {} failed, {} missing, {} ms",
                s.name,
                s.asked.len(),
                s.acked.len(),
                s.answered.len(),
                s.failed.len(),
                s.missing.len(),
                s.elapsed_ms
            );
        }
    }

    /// A query message from member `from` at `addr`. Only members are
    /// answered, each at the address it gossips from (no stranger can aim
    /// answers at a third party).
    pub(crate) async fn query_msg(&mut self, from: &NodeId, addr: SocketAddr, m: QueryMsg) {
        if self.gossip_addr(from) != Some(addr) {
            return;
        }
        match m {
            QueryMsg::Ask {
                id,
                name,
                payload,
                timeout_ms,
            } => {
                // Checked as the asker's own agent would have: a peer's
                // numbers and sizes are not taken on trust.
                if hearsay_core::cluster::check_event_name(&name).is_err()
                    || payload.len() > hearsay_core::cluster::MAX_PAYLOAD
                {
                    return;
                }
                let now = self.now();
                let timeout = Duration::from_millis(u64::from(timeout_ms)).min(query::MAX_TIMEOUT);
                let answers = self.can_answer(&name);
                match self.remembered.ask(now, from, id, timeout, answers) {
                    query::Seen::TooSoon => {}
                    query::Seen::Again(before) => {
                        self.send_qy(
                            addr,
                            QueryMsg::Ack {
                                id,
                                answers: before.answers,
                            },
                        )
                        .await;
                        if let Some(answer) = before.answer {
                            self.send_qy(addr, QueryMsg::Answer { id, answer }).await;
                        }
                    }
                    query::Seen::New => {
                        self.send_qy(addr, QueryMsg::Ack { id, answers }).await;
                        if answers && self.answers.running >= query::MAX_ANSWERING {
                            // Each answer in progress holds a task until its
                            // handler ends: past the bound, say so at once.
                            let answer = Answer::Failed(format!(
                                "busy: {} queries are being answered here",
                                query::MAX_ANSWERING
                            ));
                            self.remembered.answered(from, id, answer.clone());
                            self.send_qy(addr, QueryMsg::Answer { id, answer }).await;
                        } else if answers {
                            self.start_answer(from.clone(), id, name, payload, timeout);
                        }
                    }
                }
            }
            QueryMsg::Ack { id, answers } => {
                if let Some(a) = self.asking.iter_mut().find(|a| a.id == id) {
                    a.ack(from, answers);
                }
                self.run_asks().await;
            }
            QueryMsg::Answer { id, answer } => {
                if let Some(a) = self.asking.iter_mut().find(|a| a.id == id) {
                    a.answer(from, answer);
                }
                self.run_asks().await;
            }
        }
    }

    /// Does a handler or the application answer queries named `name`?
    fn can_answer(&self, name: &str) -> bool {
        self.handlers.as_ref().is_some_and(|h| h.answers(name))
            || self.answering.as_ref().is_some_and(|a| !a.is_closed())
    }

    /// Runs the handler (or asks the application) for a query; the answer
    /// comes back to the loop through [`Answers`], never blocking it.
    fn start_answer(
        &mut self,
        asker: NodeId,
        id: u64,
        name: String,
        payload: Arc<[u8]>,
        timeout: Duration,
    ) {
        let back = self.answers.tx.clone();
        self.answers.running += 1;
        if let Some(h) = self.handlers.as_ref().filter(|h| h.answers(&name)) {
            let mut env =
                handlers::self_env(self.me.as_str(), &tags_from(&self.node.swim().meta().tags));
            env.extend([
                ("HEARSAY_QUERY_NAME".to_string(), name.clone()),
                ("HEARSAY_QUERY_ORIGIN".to_string(), asker.to_string()),
            ]);
            let job = handlers::Job {
                kind: handlers::Kind::Query,
                name: Some(name),
                env,
                stdin: payload.to_vec(),
                coalesce: false,
            };
            let (tx, rx) = oneshot::channel();
            let a = if h.query(job, tx) {
                None
            } else {
                Some(Answer::Failed("the query handler queue is full".into()))
            };
            tokio::spawn(async move {
                let a = match a {
                    Some(a) => a,
                    // The handler's own timeout ends it.
                    None => match rx.await {
                        Ok(Ok(out)) => Answer::Ok(out.into()),
                        Ok(Err(e)) => Answer::Failed(query::short(e)),
                        Err(_) => Answer::Failed("the handler did not finish".into()),
                    },
                };
                let _ = back.send((asker, id, a));
            });
            return;
        }
        let (tx, rx) = oneshot::channel();
        let incoming = query::Incoming {
            name,
            payload: payload.to_vec(),
            from: asker.to_string(),
            reply: tx,
        };
        if let Some(app) = &self.answering
            && let Err(e) = app.try_send(incoming)
        {
            tracing::warn!("a query for the application was dropped: {e}");
        }
        tokio::spawn(async move {
            let a = match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(a)) => a,
                Ok(Err(_)) => Answer::Failed("the application did not answer".into()),
                Err(_) => Answer::Failed(format!("not answered within {timeout:?}")),
            };
            let _ = back.send((asker, id, a));
        });
    }

    /// An answer to a query asked of this agent is ready: kept for
    /// repeats, and sent (to this agent's own query, in place).
    pub(crate) async fn answered(&mut self, (asker, id, answer): (NodeId, u64, Answer)) {
        self.answers.running = self.answers.running.saturating_sub(1);
        if asker == self.me {
            let me = self.me.clone();
            if let Some(a) = self.asking.iter_mut().find(|a| a.id == id) {
                a.answer(&me, answer);
            }
            self.run_asks().await;
            return;
        }
        self.remembered.answered(&asker, id, answer.clone());
        if let Some(addr) = self.gossip_addr(&asker) {
            self.send_qy(addr, QueryMsg::Answer { id, answer }).await;
        }
    }

    /// Sends a query message: in a datagram, or on a stream when an
    /// answer or payload is larger.
    async fn send_qy(&mut self, to: SocketAddr, m: QueryMsg) {
        let env = crate::Datagram {
            qy: Some(m),
            ..self.head.clone()
        };
        self.send_frame(to, &env, "query").await;
    }
}
