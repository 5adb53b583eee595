//! The g-set workload (maelstrom-spec.md 4.2): adds of 0, 1, 2, ... and
//! reads, 50/50; one final read per worker; judged by set-full with `:add`.
//! Errors are not mapped: every error, timeout or malformed reply is an
//! indeterminate `:info`.

use super::schema::{Field, FieldType, Schema};
use super::{
    ADD_OK, AddOrRead, Client, ErrorPolicy, OpSpec, SetFull, Workload, int_request, set_read_value,
};
use crate::edn::Edn;
use serde_json::{Map, Value};

pub(super) fn workload() -> Workload {
    // Maelstrom's g-set final reads carry no :final? flag.
    let generator = AddOrRead {
        add: "add",
        final_flag: false,
        next: 0,
    };
    Workload::new("g-set", generator, GSetClient, SetFull("add"))
}

#[derive(Clone)]
struct GSetClient;

const READ_OK: Schema = Schema {
    reply_type: "read_ok",
    fields: &[Field {
        name: "value",
        ty: FieldType::Array,
    }],
};

impl Client for GSetClient {
    fn request(&mut self, op: &OpSpec) -> Map<String, Value> {
        int_request(op, (op.f == "add").then_some("element"))
    }

    fn reply_schema(&self, f: &str) -> Schema {
        if f == "add" { ADD_OK } else { READ_OK }
    }

    fn ok_value(&mut self, op: &OpSpec, reply: &Value) -> Edn {
        match op.f {
            "read" => set_read_value(reply.get("value")),
            _ => op.value.clone(),
        }
    }

    fn errors(&self) -> ErrorPolicy {
        ErrorPolicy::AllInfo
    }
}
