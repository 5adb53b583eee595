//! The g-set workload (maelstrom-spec.md 4.2): adds of 0, 1, 2, ... and
//! reads, 50/50; one final read per worker; judged by set-full with `:add`.
//! Errors are not mapped: every error, timeout or malformed reply is an
//! indeterminate `:info`.

use super::schema::{Field, FieldType, Schema};
use super::{ErrorPolicy, OpSpec, Workload, add_or_read, int_request, set_read_value};
use crate::checker::set_full;
use crate::edn::Edn;
use crate::history::History;
use hearsay_core::rng::Rng;
use serde_json::{Map, Value};

#[derive(Default)]
pub struct GSet {
    next: i64,
}

const ADD_OK: Schema = Schema {
    reply_type: "add_ok",
    fields: &[],
};
const READ_OK: Schema = Schema {
    reply_type: "read_ok",
    fields: &[Field {
        name: "value",
        ty: FieldType::Array,
    }],
};

impl Workload for GSet {
    fn name(&self) -> &'static str {
        "g-set"
    }

    fn setup(&self, _node: &str) -> Option<(Map<String, Value>, Schema)> {
        None
    }

    fn next_op(&mut self, rng: &mut Rng) -> OpSpec {
        add_or_read(rng, "add", &mut self.next)
    }

    fn final_op(&self) -> Option<OpSpec> {
        // Maelstrom's g-set final reads carry no :final? flag.
        Some(OpSpec::new("read", Edn::Nil, false))
    }

    fn request(&self, op: &OpSpec) -> Map<String, Value> {
        int_request(op, (op.f == "add").then_some("element"))
    }

    fn reply_schema(&self, f: &str) -> Schema {
        if f == "add" { ADD_OK } else { READ_OK }
    }

    fn ok_value(&self, op: &OpSpec, reply: &Value) -> Edn {
        match op.f {
            "read" => set_read_value(reply.get("value")),
            _ => op.value.clone(),
        }
    }

    fn errors(&self) -> ErrorPolicy {
        ErrorPolicy::AllInfo
    }

    fn check(&self, history: &History) -> Edn {
        set_full::check(history, "add")
    }
}
