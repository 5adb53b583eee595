//! The g-set workload (maelstrom-spec.md 4.2): adds of 0, 1, 2, ... and
//! reads, 50/50; one final read per worker; judged by set-full with `:add`.
//! Errors are not mapped: every error, timeout or malformed reply is an
//! indeterminate `:info`.

use super::schema::{Field, FieldType, Schema};
use super::{ErrorPolicy, OpSpec, Workload};
use crate::checker::set_full;
use crate::edn::{self, Edn};
use crate::history::History;
use hearsay_core::rng::{Rng, RngExt};
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
        if rng.random_range(0..2) == 0 {
            let v = self.next;
            self.next += 1;
            OpSpec {
                f: "add",
                value: Edn::Int(v),
                final_: false,
            }
        } else {
            OpSpec {
                f: "read",
                value: Edn::Nil,
                final_: false,
            }
        }
    }

    fn final_op(&self) -> Option<OpSpec> {
        // Maelstrom's g-set final reads carry no :final? flag.
        Some(OpSpec {
            f: "read",
            value: Edn::Nil,
            final_: false,
        })
    }

    fn request(&self, op: &OpSpec) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("type".into(), op.f.into());
        if let ("add", Edn::Int(v)) = (op.f, &op.value) {
            m.insert("element".into(), (*v).into());
        }
        m
    }

    fn reply_schema(&self, f: &str) -> Schema {
        if f == "add" { ADD_OK } else { READ_OK }
    }

    fn ok_value(&self, op: &OpSpec, reply: &Value) -> Edn {
        match (op.f, reply.get("value")) {
            ("read", Some(Value::Array(items))) => {
                let ints: Option<Vec<i64>> = items
                    .iter()
                    .map(|v| v.as_i64().filter(|_| !v.is_f64()))
                    .collect();
                ints.map(edn::ints)
                    .unwrap_or_else(|| Edn::from_json(&Value::Array(items.clone())))
            }
            ("read", other) => other.map(Edn::from_json).unwrap_or(Edn::Nil),
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
