//! The echo workload: every op sends `Please echo N` and expects it back.

use super::schema::{Field, FieldType, Schema};
use super::{CheckWith, Client, Ctx, ErrorPolicy, Generator, OpSpec, Workload};
use crate::edn::{Edn, map};
use crate::history::{History, OpType};
use hearsay_core::rng::{Rng, RngExt};
use serde_json::{Map, Value};

pub(super) fn workload() -> Workload {
    Workload::new("echo", Echoes, EchoClient, CheckWith(check))
}

struct Echoes;

#[derive(Clone)]
struct EchoClient;

const ECHO_OK: Schema = Schema {
    reply_type: "echo_ok",
    fields: &[Field {
        name: "echo",
        ty: FieldType::Any,
    }],
};

impl Generator for Echoes {
    fn next_op(&mut self, _ctx: Ctx, rng: &mut Rng) -> OpSpec {
        let n: u32 = rng.random_range(0..128);
        OpSpec {
            f: "echo",
            value: Edn::Str(format!("Please echo {n}")),
            final_: false,
        }
    }

    fn final_op(&self, _ctx: Ctx) -> Option<OpSpec> {
        None
    }
}

impl Client for EchoClient {
    fn request(&mut self, op: &OpSpec) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("type".into(), "echo".into());
        if let Edn::Str(s) = &op.value {
            m.insert("echo".into(), s.clone().into());
        }
        m
    }

    fn reply_schema(&self, _f: &str) -> Schema {
        ECHO_OK
    }

    /// Maelstrom records the whole reply body (keys keywordised).
    fn ok_value(&mut self, _op: &OpSpec, reply: &Value) -> Edn {
        Edn::from_json_body(reply)
    }

    fn errors(&self) -> ErrorPolicy {
        ErrorPolicy::WithErrors { idempotent: &[] }
    }
}

/// Every invocation's value must come back as the completion's `:echo`.
fn check(history: &History) -> Edn {
    let mut errors = Vec::new();
    let mut completion_of = vec![None; history.len()];
    for op in history.client_ops() {
        if let Some(inv) = op.invocation {
            completion_of[inv] = Some(op.index);
        }
    }
    for inv in history.client_ops().filter(|o| o.kind == OpType::Invoke) {
        let done = completion_of[inv.index].and_then(|i| history.get(i));
        let echoed = done
            .and_then(|c| c.value.get("echo"))
            .cloned()
            .unwrap_or(Edn::Nil);
        if echoed != inv.value {
            errors.push(Edn::Vector(vec![
                Edn::from("Expected a message with :echo"),
                inv.value.clone(),
                Edn::from("But received"),
                done.map_or(Edn::Nil, |c| c.value.clone()),
            ]));
        }
    }
    map([
        ("valid?", Edn::Bool(errors.is_empty())),
        ("errors", Edn::List(errors)),
    ])
}
