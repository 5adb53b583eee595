//! The txn-list-append workload (maelstrom-spec-more.md 5; Maelstrom's
//! doc/05-datomic): each op is one `txn` of appends and reads on integer
//! keys, answered by `txn_ok` with the reads filled in as lists. Recorded as
//! Jepsen records it, `[[:r 1 nil] [:append 2 3]]`, with the reply's lists
//! on `:ok`. No idempotent ops (code 30, txn-conflict, is definite:
//! `:fail`), a 5 s timeout, a client kept across crashes, no final phase.
//! Judged by the Elle-style list-append checker against
//! `--consistency-models`.

use super::schema::{Field, FieldType, Schema};
use super::txn::{ConsistencyModels, TxnOptions, WrTxns};
use super::txn_rw_register::TxnClient;
use super::{Checker, Client, ErrorPolicy, OpSpec, Workload};
use crate::checker::list_append;
use crate::edn::Edn;
use crate::history::History;
use serde_json::{Map, Value};

pub(super) fn workload(opts: TxnOptions) -> Workload {
    let mut w = Workload::new(
        "txn-list-append",
        WrTxns::new(opts, "append"),
        AppendClient(TxnClient),
        ListAppend(opts.consistency_models),
    );
    w.reusable = true;
    w
}

/// rw-register's client with list-append's reply schema: the same `txn`
/// request and recording, micro-ops `"r"` and `"append"`.
#[derive(Clone)]
struct AppendClient(TxnClient);

/// Maelstrom's `txn_ok`: `txn` is a list (or null) of `["r", k, list or
/// null]` and `["append", k, v]`.
const TXN_OK: Schema = Schema {
    reply_type: "txn_ok",
    fields: &[Field {
        name: "txn",
        ty: FieldType::ListAppendOps,
    }],
};

impl Client for AppendClient {
    fn request(&mut self, op: &OpSpec) -> Map<String, Value> {
        self.0.request(op)
    }

    fn reply_schema(&self, _f: &str) -> Schema {
        TXN_OK
    }

    fn ok_value(&mut self, op: &OpSpec, reply: &Value) -> Edn {
        self.0.ok_value(op, reply)
    }

    fn errors(&self) -> ErrorPolicy {
        ErrorPolicy::WithErrors { idempotent: &[] }
    }
}

struct ListAppend(ConsistencyModels);

impl Checker for ListAppend {
    fn check(&self, history: &History) -> Edn {
        list_append::check(history, self.0.as_str())
    }

    fn check_files(&self, history: &History) -> (Edn, Vec<crate::checker::Artifact>) {
        list_append::check_files(history, self.0.as_str(), Default::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edn::kw;
    use serde_json::json;

    #[test]
    fn requests_and_recorded_values_are_maelstroms() {
        let mut c = AppendClient(TxnClient);
        let op = OpSpec::new(
            "txn",
            Edn::Vector(vec![
                Edn::Vector(vec![kw("r"), Edn::Int(1), Edn::Nil]),
                Edn::Vector(vec![kw("append"), Edn::Int(1), Edn::Int(6)]),
            ]),
            false,
        );
        assert_eq!(
            Value::Object(c.request(&op)),
            json!({"type": "txn", "txn": [["r", 1, null], ["append", 1, 6]]})
        );
        let reply = json!({"type": "txn_ok", "in_reply_to": 1,
                           "txn": [["r", 1, [8, 2]], ["append", 1, 6], ["r", 2, null]]});
        assert!(TXN_OK.check(&reply).is_ok());
        assert_eq!(
            c.ok_value(&op, &reply).compact(),
            "[[:r 1 [8 2]] [:append 1 6] [:r 2 nil]]"
        );
        assert!(
            TXN_OK
                .check(&json!({"type": "txn_ok", "in_reply_to": 1, "txn": null}))
                .is_ok()
        );
    }

    #[test]
    fn reads_must_be_lists_and_micro_ops_appends_or_reads() {
        for bad in [
            json!([["r", 1, 3]]),
            json!([["r", 1, {}]]),
            json!([["w", 1, 2]]),
            json!([["append", 1]]),
            json!([["r", 1, [], 4]]),
            json!({"r": 1}),
        ] {
            let reply = json!({"type": "txn_ok", "in_reply_to": 1, "txn": bad});
            assert!(TXN_OK.check(&reply).is_err(), "{reply}");
        }
    }

    #[test]
    fn the_generator_appends_and_nothing_is_idempotent() {
        let mut w = workload(TxnOptions::default());
        assert!(w.reusable);
        assert!(!w.has_final_phase());
        assert_eq!(
            w.timeout,
            super::super::Timeout::Fixed(std::time::Duration::from_secs(5))
        );
        let mut rng = hearsay_core::rng::child(3, "ops");
        let ctx = super::super::Ctx {
            thread: 0,
            process: 0,
            time_ns: 0,
        };
        let mut fs = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let op = w.generator.next_op(ctx, &mut rng);
            let Edn::Vector(mops) = op.value else {
                panic!()
            };
            for m in mops {
                let Edn::Vector(p) = m else { panic!() };
                fs.insert(p[0].compact());
            }
        }
        assert_eq!(fs, [":append", ":r"].map(String::from).into());
        assert_eq!(
            (w.open)("n0").errors(),
            ErrorPolicy::WithErrors { idempotent: &[] }
        );
    }
}
