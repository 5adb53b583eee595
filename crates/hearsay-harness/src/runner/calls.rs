//! Client RPCs: what each open client is waiting for, and how a reply, an
//! error or a timeout becomes an op outcome (Maelstrom's `with-errors`).

use crate::edn::{Edn, kw};
use crate::history::{Exception, OpType};
use crate::workload::{ErrorPolicy, OpSpec, Schema};
use serde_json::Value;

#[derive(Debug, Clone)]
pub enum Purpose {
    Init,
    /// The `init` a node restarted by the kill nemesis gets.
    Reinit,
    Setup {
        schema: Schema,
    },
    Op {
        thread: usize,
        op: OpSpec,
        invocation: usize,
        /// For an op's second request ([`crate::workload::Client::then`]):
        /// the value the first reply gave, and the second reply's schema.
        then: Option<(Edn, Schema)>,
    },
}

#[derive(Debug, Clone)]
pub struct Call {
    pub msg_id: u64,
    pub node: usize,
    pub request: Value,
    pub purpose: Purpose,
}

/// Maelstrom's error registry: (name, definite?).
pub fn error_name(code: Option<i64>) -> (&'static str, bool) {
    match code {
        Some(0) => ("timeout", false),
        Some(1) => ("node-not-found", true),
        Some(10) => ("not-supported", true),
        Some(11) => ("temporarily-unavailable", true),
        Some(12) => ("malformed-request", true),
        Some(13) => ("crash", false),
        Some(14) => ("abort", true),
        Some(20) => ("key-does-not-exist", true),
        Some(21) => ("key-already-exists", true),
        Some(22) => ("precondition-failed", true),
        Some(30) => ("txn-conflict", true),
        _ => ("unknown", false),
    }
}

/// How an op completed.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub kind: OpType,
    pub value: Option<Edn>,
    pub error: Option<Edn>,
    pub exception: Option<Exception>,
}

const CLASS: &str = "clojure.lang.ExceptionInfo";

fn crash(kind: &str, message: String) -> Outcome {
    Outcome {
        kind: OpType::Info,
        value: None,
        error: Some(Edn::Str(format!("indeterminate: {message}"))),
        exception: Some(Exception {
            class: CLASS.into(),
            kind: kind.into(),
            message,
        }),
    }
}

/// The outcome of an op given its reply, or `None` for a timeout.
pub fn outcome(
    policy: ErrorPolicy,
    op: &OpSpec,
    node: &str,
    request: &Value,
    schema: &Schema,
    reply: Option<&Value>,
    ok_value: impl FnOnce(&Value) -> Edn,
) -> Outcome {
    let idempotent = |f: &str| matches!(policy, ErrorPolicy::WithErrors { idempotent } if idempotent.contains(&f));
    let Some(body) = reply else {
        return match policy {
            ErrorPolicy::WithErrors { .. } => Outcome {
                kind: if idempotent(op.f) {
                    OpType::Fail
                } else {
                    OpType::Info
                },
                value: None,
                error: Some(kw("net-timeout")),
                exception: None,
            },
            ErrorPolicy::AllInfo => crash("timeout", "Client read timeout".into()),
        };
    };
    if body.get("type").and_then(Value::as_str) == Some("error") {
        let code = body.get("code").and_then(Value::as_i64);
        let (name, definite) = error_name(code);
        let text = body.get("text").map_or(Edn::Nil, Edn::from_json);
        return match policy {
            ErrorPolicy::WithErrors { .. } => Outcome {
                kind: if definite || idempotent(op.f) {
                    OpType::Fail
                } else {
                    OpType::Info
                },
                value: None,
                error: Some(Edn::Vector(vec![kw(name), text])),
                exception: None,
            },
            ErrorPolicy::AllInfo => {
                crash("rpc-error", format!("RPC error {name} from {node}: {body}"))
            }
        };
    }
    match schema.check(body) {
        Ok(()) => Outcome {
            kind: OpType::Ok,
            value: Some(ok_value(body)),
            error: None,
            exception: None,
        },
        Err(problems) => crash(
            "malformed-rpc-response",
            malformed_message(node, request, schema, body, &problems),
        ),
    }
}

pub fn malformed_message(
    node: &str,
    request: &Value,
    schema: &Schema,
    body: &Value,
    problems: &[String],
) -> String {
    let fields: Vec<String> = schema
        .fields
        .iter()
        .map(|f| format!(":{} {:?}", f.name, f.ty))
        .collect();
    format!(
        "Malformed RPC response. Maelstrom sent node {node} the following request: {request} And expected a response of the form: {{:type (eq {:?}){}, :in_reply_to Int, (optional-key :msg_id) Int}} ... but instead received {body} This is malformed because: {{{}}}",
        schema.reply_type,
        if fields.is_empty() {
            String::new()
        } else {
            format!(", {}", fields.join(", "))
        },
        problems.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{Field, FieldType};
    use serde_json::json;

    const BOK: Schema = Schema {
        reply_type: "broadcast_ok",
        fields: &[],
    };
    const ROK: Schema = Schema {
        reply_type: "read_ok",
        fields: &[Field {
            name: "messages",
            ty: FieldType::Array,
        }],
    };
    const POLICY: ErrorPolicy = ErrorPolicy::WithErrors {
        idempotent: &["read"],
    };

    fn bcast() -> OpSpec {
        OpSpec {
            f: "broadcast",
            value: Edn::Int(3),
            final_: false,
        }
    }
    fn read() -> OpSpec {
        OpSpec {
            f: "read",
            value: Edn::Nil,
            final_: false,
        }
    }

    fn run(op: &OpSpec, schema: &Schema, reply: Option<Value>) -> Outcome {
        outcome(POLICY, op, "n0", &json!({}), schema, reply.as_ref(), |b| {
            Edn::from_json(b)
        })
    }

    #[test]
    fn timeouts_fail_idempotent_ops_and_leave_others_indeterminate() {
        assert_eq!(run(&read(), &ROK, None).kind, OpType::Fail);
        let b = run(&bcast(), &BOK, None);
        assert_eq!((b.kind, b.error), (OpType::Info, Some(kw("net-timeout"))));
    }

    #[test]
    fn errors_map_by_definiteness() {
        let e = |code| Some(json!({"type":"error","in_reply_to":1,"code":code,"text":"no"}));
        assert_eq!(run(&bcast(), &BOK, e(11)).kind, OpType::Fail);
        assert_eq!(run(&bcast(), &BOK, e(13)).kind, OpType::Info);
        assert_eq!(run(&bcast(), &BOK, e(1000)).kind, OpType::Info);
        assert_eq!(run(&read(), &ROK, e(13)).kind, OpType::Fail);
        assert_eq!(
            run(&bcast(), &BOK, e(10)).error.unwrap().compact(),
            r#"[:not-supported "no"]"#
        );
        // Error bodies may carry extra keys.
        let extra = Some(json!({"type":"error","in_reply_to":1,"code":11,"extra":true}));
        assert_eq!(run(&bcast(), &BOK, extra).kind, OpType::Fail);
    }

    #[test]
    fn an_extra_key_in_broadcast_ok_makes_the_op_indeterminate_with_an_exception() {
        let o = run(
            &bcast(),
            &BOK,
            Some(json!({"type":"broadcast_ok","in_reply_to":1,"note":"hi"})),
        );
        assert_eq!(o.kind, OpType::Info);
        let x = o.exception.unwrap();
        assert_eq!(x.kind, "malformed-rpc-response");
        assert!(x.message.contains(":note disallowed-key"), "{}", x.message);
        let ok = run(
            &bcast(),
            &BOK,
            Some(json!({"type":"broadcast_ok","in_reply_to":1,"msg_id":4})),
        );
        assert_eq!(ok.kind, OpType::Ok);
    }
}
