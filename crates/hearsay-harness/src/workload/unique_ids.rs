//! The unique-ids workload (maelstrom-spec.md 4.5): every op is `generate`,
//! answered with `generate_ok {id}` (any JSON); no final phase. Judged by
//! Jepsen's unique-ids checker: no id may be acknowledged twice.

use super::schema::{Field, FieldType, Schema};
use super::{CheckWith, Client, Ctx, ErrorPolicy, Generator, OpSpec, Workload};
use crate::edn::{Edn, map};
use crate::history::{History, OpType};
use hearsay_core::rng::Rng;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

pub(super) fn workload() -> Workload {
    // Jepsen's unique-ids client is reusable: a crash keeps the client.
    let mut w = Workload::new("unique-ids", Generates, IdClient, CheckWith(check));
    w.reusable = true;
    w
}

struct Generates;

#[derive(Clone)]
struct IdClient;

const GENERATE_OK: Schema = Schema {
    reply_type: "generate_ok",
    fields: &[Field {
        name: "id",
        ty: FieldType::Any,
    }],
};

/// Duplicates listed in the results at most.
const MAX_LISTED: usize = 48;

impl Generator for Generates {
    fn next_op(&mut self, _ctx: Ctx, _rng: &mut Rng) -> OpSpec {
        OpSpec {
            f: "generate",
            value: Edn::Nil,
            final_: false,
        }
    }

    fn final_op(&self, _ctx: Ctx) -> Option<OpSpec> {
        None
    }
}

impl Client for IdClient {
    fn request(&mut self, _op: &OpSpec) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("type".into(), "generate".into());
        m
    }

    fn reply_schema(&self, _f: &str) -> Schema {
        GENERATE_OK
    }

    fn ok_value(&mut self, _op: &OpSpec, reply: &Value) -> Edn {
        reply.get("id").map_or(Edn::Nil, Edn::from_json)
    }

    fn errors(&self) -> ErrorPolicy {
        ErrorPolicy::WithErrors { idempotent: &[] }
    }
}

fn check(history: &History) -> Edn {
    let attempted = history
        .client_ops()
        .filter(|o| o.kind == OpType::Invoke && o.f == "generate")
        .count();
    let acked: Vec<&Edn> = history
        .client_ops()
        .filter(|o| o.kind == OpType::Ok && o.f == "generate")
        .map(|o| &o.value)
        .collect();
    // Ids compare by their printed EDN (1 and 1.0 and "1" differ).
    let mut counts: BTreeMap<String, (usize, &Edn)> = BTreeMap::new();
    for v in &acked {
        counts.entry(v.compact()).or_insert((0, v)).0 += 1;
    }
    let dups: Vec<(&Edn, usize)> = counts
        .values()
        .filter(|(n, _)| *n > 1)
        .map(|(n, v)| (*v, *n))
        .collect();
    let ints: Option<Vec<i64>> = acked
        .iter()
        .map(|v| if let Edn::Int(i) = v { Some(*i) } else { None })
        .collect();
    let range = match ints {
        Some(v) if !v.is_empty() => Edn::Vector(vec![
            Edn::Int(*v.iter().min().unwrap_or(&0)),
            Edn::Int(*v.iter().max().unwrap_or(&0)),
        ]),
        _ => match (counts.values().next(), counts.values().next_back()) {
            (Some(a), Some(b)) => Edn::Vector(vec![a.1.clone(), b.1.clone()]),
            _ => Edn::Nil,
        },
    };
    map([
        ("valid?", Edn::Bool(dups.is_empty())),
        ("attempted-count", Edn::from(attempted)),
        ("acknowledged-count", Edn::from(acked.len())),
        ("duplicated-count", Edn::from(dups.len())),
        (
            "duplicated",
            Edn::Map(
                dups.iter()
                    .take(MAX_LISTED)
                    .map(|(v, n)| ((*v).clone(), Edn::from(*n)))
                    .collect(),
            ),
        ),
        ("range", range),
    ])
}
