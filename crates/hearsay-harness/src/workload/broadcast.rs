//! The broadcast workload: a 50/50 mix of broadcasts of 0, 1, 2, ... and
//! reads, a `topology` message at setup, one final read per worker, judged
//! by set-full with `:broadcast` as `:add`.

use super::schema::{Field, FieldType, Schema};
use super::topology::TopologyMap;
use super::{
    AddOrRead, Client, ErrorPolicy, OpSpec, SetFull, Workload, int_request, set_read_value,
};
use crate::edn::{self, Edn};
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// Exactly `read_ok`'s closed schema with integer messages; anything else
/// fails to parse and takes the generic path.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadOk {
    #[serde(rename = "type")]
    kind: String,
    messages: Vec<i64>,
    in_reply_to: u64,
    #[serde(default, rename = "msg_id", deserialize_with = "integer")]
    _msg_id: Option<u64>,
}

fn integer<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    <u64 as serde::Deserialize>::deserialize(d).map(Some)
}

pub(super) fn workload(topology: TopologyMap) -> Workload {
    let generator = AddOrRead {
        add: "broadcast",
        final_flag: true,
        next: 0,
    };
    let client = BroadcastClient {
        topology: Arc::new(topology),
    };
    Workload::new("broadcast", generator, client, SetFull("broadcast"))
}

#[derive(Clone)]
struct BroadcastClient {
    topology: Arc<TopologyMap>,
}

const TOPOLOGY_OK: Schema = Schema {
    reply_type: "topology_ok",
    fields: &[],
};
const BROADCAST_OK: Schema = Schema {
    reply_type: "broadcast_ok",
    fields: &[],
};
const READ_OK: Schema = Schema {
    reply_type: "read_ok",
    fields: &[Field {
        name: "messages",
        ty: FieldType::Array,
    }],
};

impl Client for BroadcastClient {
    fn setup(&mut self) -> Option<(Map<String, Value>, Schema)> {
        let topo: Map<String, Value> = self
            .topology
            .iter()
            .map(|(n, nb)| (n.clone(), json!(nb)))
            .collect();
        let mut body = Map::new();
        body.insert("type".into(), "topology".into());
        body.insert("topology".into(), Value::Object(topo));
        Some((body, TOPOLOGY_OK))
    }

    fn request(&mut self, op: &OpSpec) -> Map<String, Value> {
        int_request(op, (op.f == "broadcast").then_some("message"))
    }

    fn reply_schema(&self, f: &str) -> Schema {
        if f == "broadcast" {
            BROADCAST_OK
        } else {
            READ_OK
        }
    }

    fn ok_value(&mut self, op: &OpSpec, reply: &Value) -> Edn {
        match op.f {
            "read" => set_read_value(reply.get("messages")),
            _ => op.value.clone(),
        }
    }

    fn fast_ok(&self, f: &str, raw: &str) -> Option<(u64, Edn)> {
        if f != "read" {
            return None;
        }
        let r: ReadOk = serde_json::from_str(raw).ok()?;
        (r.kind == "read_ok").then(|| (r.in_reply_to, edn::ints(r.messages)))
    }

    fn errors(&self) -> ErrorPolicy {
        ErrorPolicy::WithErrors {
            idempotent: &["read"],
        }
    }
}
