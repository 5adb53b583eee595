//! The txn-rw-register workload (maelstrom-spec-more.md 6; Gossip Glomers
//! challenge 6): each op is one `txn` of reads and writes on integer keys,
//! answered by `txn_ok` with the reads filled in. Recorded as Jepsen records
//! it, `[[:r 1 nil] [:w 2 3]]`, with the reply's values on `:ok`. No
//! idempotent ops (code 30, txn-conflict, is definite: `:fail`), a 5 s
//! timeout, a client kept across crashes, no final phase. Judged by the
//! Elle-style rw-register checker against `--consistency-models`.

use super::schema::{Field, FieldType, Schema};
use super::txn::{ConsistencyModels, TxnOptions, WrTxns};
use super::{Checker, Client, ErrorPolicy, OpSpec, Workload};
use crate::checker::rw_register;
use crate::edn::{Edn, kw};
use crate::history::History;
use serde_json::{Map, Value};

pub(super) fn workload(opts: TxnOptions) -> Workload {
    let mut w = Workload::new(
        "txn-rw-register",
        WrTxns::new(opts, "w"),
        TxnClient,
        RwRegister(opts.consistency_models),
    );
    w.reusable = true;
    w
}

#[derive(Clone)]
pub(super) struct TxnClient;

/// Maelstrom's `txn_ok`: `txn` is a list (or null) of `["r", k, v]` and
/// `["w", k, v]`.
const TXN_OK: Schema = Schema {
    reply_type: "txn_ok",
    fields: &[Field {
        name: "txn",
        ty: FieldType::MicroOps(&["r", "w"]),
    }],
};

impl Client for TxnClient {
    fn request(&mut self, op: &OpSpec) -> Map<String, Value> {
        let mops: Vec<Value> = match &op.value {
            Edn::Vector(m) => m
                .iter()
                .map(|m| match m {
                    Edn::Vector(p) => Value::Array(
                        p.iter()
                            .map(|x| match x {
                                Edn::Keyword(f) => Value::String(f.clone()),
                                other => other.to_json(),
                            })
                            .collect(),
                    ),
                    other => other.to_json(),
                })
                .collect(),
            _ => Vec::new(),
        };
        let mut m = Map::new();
        m.insert("type".into(), "txn".into());
        m.insert("txn".into(), Value::Array(mops));
        m
    }

    fn reply_schema(&self, _f: &str) -> Schema {
        TXN_OK
    }

    /// The reply's transaction, `f`s as keywords (null: an empty one).
    fn ok_value(&mut self, _op: &OpSpec, reply: &Value) -> Edn {
        let Some(Value::Array(mops)) = reply.get("txn") else {
            return Edn::Vector(Vec::new());
        };
        Edn::Vector(
            mops.iter()
                .map(|m| match m {
                    Value::Array(p) => Edn::Vector(
                        p.iter()
                            .enumerate()
                            .map(|(i, x)| match (i, x) {
                                (0, Value::String(f)) => kw(f),
                                (_, x) => Edn::from_json(x),
                            })
                            .collect(),
                    ),
                    other => Edn::from_json(other),
                })
                .collect(),
        )
    }

    fn errors(&self) -> ErrorPolicy {
        ErrorPolicy::WithErrors { idempotent: &[] }
    }
}

struct RwRegister(ConsistencyModels);

impl Checker for RwRegister {
    fn check(&self, history: &History) -> Edn {
        rw_register::check(history, self.0.as_str())
    }

    fn check_files(&self, history: &History) -> (Edn, Vec<crate::checker::Artifact>) {
        rw_register::check_files(history, self.0.as_str(), Default::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn txn(mops: &[(&str, i64, Option<i64>)]) -> OpSpec {
        OpSpec::new(
            "txn",
            Edn::Vector(
                mops.iter()
                    .map(|(f, k, v)| {
                        Edn::Vector(vec![kw(f), Edn::Int(*k), v.map_or(Edn::Nil, Edn::Int)])
                    })
                    .collect(),
            ),
            false,
        )
    }

    #[test]
    fn requests_and_recorded_values_are_maelstroms() {
        let mut c = TxnClient;
        let op = txn(&[("r", 1, None), ("w", 1, Some(6)), ("w", 2, Some(9))]);
        assert_eq!(
            Value::Object(c.request(&op)),
            json!({"type": "txn", "txn": [["r", 1, null], ["w", 1, 6], ["w", 2, 9]]})
        );
        assert_eq!(op.value.compact(), "[[:r 1 nil] [:w 1 6] [:w 2 9]]");
        let reply = json!({"type": "txn_ok", "in_reply_to": 1,
                           "txn": [["r", 1, 3], ["w", 1, 6], ["w", 2, 9]]});
        assert!(TXN_OK.check(&reply).is_ok());
        assert_eq!(
            c.ok_value(&op, &reply).compact(),
            "[[:r 1 3] [:w 1 6] [:w 2 9]]"
        );
        let null = json!({"type": "txn_ok", "in_reply_to": 1, "txn": null});
        assert!(TXN_OK.check(&null).is_ok());
        assert_eq!(c.ok_value(&op, &null), Edn::Vector(vec![]));
    }

    #[test]
    fn malformed_micro_ops_are_refused() {
        for bad in [
            json!([["r", 1]]),
            json!([["x", 1, 2]]),
            json!([["r", 1, 2, 3]]),
            json!([[1, 1, 2]]),
            json!({"r": 1}),
            json!([1]),
        ] {
            let reply = json!({"type": "txn_ok", "in_reply_to": 1, "txn": bad});
            assert!(TXN_OK.check(&reply).is_err(), "{reply}");
        }
        let missing = json!({"type": "txn_ok", "in_reply_to": 1});
        assert!(TXN_OK.check(&missing).is_err());
    }

    #[test]
    fn txn_conflict_is_definite_and_nothing_is_idempotent() {
        assert_eq!(
            TxnClient.errors(),
            ErrorPolicy::WithErrors { idempotent: &[] }
        );
        let w = workload(TxnOptions::default());
        assert!(w.reusable);
        assert!(!w.has_final_phase());
        assert_eq!(
            w.timeout,
            super::super::Timeout::Fixed(std::time::Duration::from_secs(5))
        );
    }
}
