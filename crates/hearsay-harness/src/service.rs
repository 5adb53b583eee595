//! Maelstrom's services (maelstrom-spec.md 3.6, Maelstrom's `service.clj`):
//! nodes inside the harness, addressed by name, that answer RPCs from the
//! nodes under test. Their traffic crosses the network with its latency,
//! counts as server traffic, and is never partitioned.
//!
//! - `lin-kv`: a linearizable key-value store;
//! - `seq-kv`: the same store, sequentially consistent: an operation that
//!   changes nothing (a read, a failed cas) may see any of the last 32
//!   states not older than what that client saw last; one that changes the
//!   store applies to the newest;
//! - `lww-kv`: five replicas of a last-write-wins store under a Lamport
//!   clock; each request merges one random replica into another and runs on
//!   a third, so reads are stale and writes can be lost;
//! - `lin-tso`: a timestamp oracle, 0, 1, 2, ...

use hearsay_core::rng::{Rng, RngExt};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};

/// The ids Maelstrom gives its services.
pub const NAMES: [&str; 4] = ["lin-kv", "seq-kv", "lww-kv", "lin-tso"];

const SEQ_STATES: usize = 32;
const LWW_REPLICAS: usize = 5;

/// Keys are JSON values; two keys are the same key when they print the same.
fn key(body: &Map<String, Value>) -> String {
    body.get("key").map(Value::to_string).unwrap_or_default()
}

/// A value as printed: the order ties between equal stamps are broken by.
fn printed(v: &Value) -> String {
    v.to_string()
}

fn no_key() -> Value {
    json!({"type": "error", "code": 20, "text": "key does not exist"})
}

/// What Maelstrom's key-value services share: read / write / cas (with
/// `create_if_not_exists`) over some storage, answered as PersistentKV
/// answers. Returns the new state and the reply; `None` for an unknown type.
trait Store: Clone {
    fn get(&self, k: &str) -> Option<&Value>;
    fn put(&self, k: String, v: Value) -> Self;

    fn handle(&self, body: &Map<String, Value>) -> Option<(Self, Value)> {
        let k = key(body);
        let field = |f: &str| body.get(f).cloned().unwrap_or(Value::Null);
        Some(match body.get("type")?.as_str()? {
            "read" => match self.get(&k) {
                Some(v) => (self.clone(), json!({"type": "read_ok", "value": v})),
                None => (self.clone(), no_key()),
            },
            "write" => (self.put(k, field("value")), json!({"type": "write_ok"})),
            "cas" => match self.get(&k) {
                Some(cur) if *cur == field("from") => {
                    (self.put(k, field("to")), json!({"type": "cas_ok"}))
                }
                Some(cur) => (
                    self.clone(),
                    json!({"type": "error", "code": 22,
                           "text": format!("current value {cur} is not {}", field("from"))}),
                ),
                None if body.get("create_if_not_exists") == Some(&Value::Bool(true)) => {
                    (self.put(k, field("to")), json!({"type": "cas_ok"}))
                }
                None => (self.clone(), no_key()),
            },
            _ => return None,
        })
    }
}

/// A key-value state: what `lin-kv` and `seq-kv` hold.
#[derive(Clone, Debug, Default, PartialEq)]
struct Kv(BTreeMap<String, Value>);

impl Store for Kv {
    fn get(&self, k: &str) -> Option<&Value> {
        self.0.get(k)
    }
    fn put(&self, k: String, v: Value) -> Self {
        let mut next = self.clone();
        next.0.insert(k, v);
        next
    }
}

/// An LWW store replica: a Lamport clock and stamped values.
#[derive(Clone, Debug, Default, PartialEq)]
struct Lww {
    clock: u64,
    m: BTreeMap<String, (u64, Value)>,
}

impl Store for Lww {
    fn get(&self, k: &str) -> Option<&Value> {
        self.m.get(k).map(|(_, v)| v)
    }
    /// Stamped with the clock, which then ticks.
    fn put(&self, k: String, v: Value) -> Self {
        let mut next = self.clone();
        next.m.insert(k, (self.clock, v));
        next.clock += 1;
        next
    }
}

impl Lww {
    /// By timestamp, then the larger value (by its printed form).
    fn merge(&mut self, o: &Lww) {
        self.clock = self.clock.max(o.clock);
        for (k, (t, v)) in &o.m {
            let take = match self.m.get(k) {
                None => true,
                Some((mt, mv)) => t > mt || (t == mt && printed(v) > printed(mv)),
            };
            if take {
                self.m.insert(k.clone(), (*t, v.clone()));
            }
        }
    }
}

#[derive(Debug)]
pub struct Service(Kind);

#[derive(Debug)]
enum Kind {
    Linearizable(Kv),
    Sequential {
        /// The last states, oldest first; the newest has index `last`.
        states: VecDeque<Kv>,
        last: u64,
        seen: HashMap<String, u64>,
    },
    Eventual(Vec<Lww>),
    Tso(u64),
}

impl Service {
    pub fn new(name: &str) -> Option<Service> {
        Some(Service(match name {
            "lin-kv" => Kind::Linearizable(Kv::default()),
            "seq-kv" => Kind::Sequential {
                states: VecDeque::from([Kv::default()]),
                last: 0,
                seen: HashMap::new(),
            },
            "lww-kv" => Kind::Eventual(vec![Lww::default(); LWW_REPLICAS]),
            "lin-tso" => Kind::Tso(0),
            _ => return None,
        }))
    }

    /// The reply body to a request from `client` (without `in_reply_to`),
    /// or `None` for a request the service cannot handle (Maelstrom's
    /// service thread logs the exception and answers nothing).
    pub fn handle(&mut self, client: &str, body: &Value, rng: &mut Rng) -> Option<Value> {
        let body = body.as_object()?;
        match &mut self.0 {
            Kind::Linearizable(kv) => {
                let (next, reply) = kv.handle(body)?;
                *kv = next;
                Some(reply)
            }
            Kind::Sequential { states, last, seen } => {
                let mine = seen.get(client).copied().unwrap_or(0);
                let oldest = *last + 1 - states.len() as u64;
                // Maelstrom draws in [mine, last) (the newest only when the
                // client is already there); never older than the buffer.
                let span = *last - mine.min(*last);
                let index = (mine
                    + if span > 0 {
                        rng.random_range(0..span)
                    } else {
                        0
                    })
                .max(oldest);
                let state = &states[(index - oldest) as usize];
                let (next, reply) = state.handle(body)?;
                if next == *state {
                    seen.insert(client.to_string(), index);
                    return Some(reply);
                }
                let newest = states.back().cloned().unwrap_or_default();
                let (next, reply) = newest.handle(body)?;
                *last += 1;
                states.push_back(next);
                if states.len() > SEQ_STATES {
                    states.pop_front();
                }
                seen.insert(client.to_string(), *last);
                Some(reply)
            }
            Kind::Eventual(replicas) => {
                let n = replicas.len();
                let (src, dest) = (rng.random_range(0..n), rng.random_range(0..n));
                let from = replicas[src].clone();
                replicas[dest].merge(&from);
                let i = rng.random_range(0..n);
                let (next, reply) = replicas[i].handle(body)?;
                replicas[i] = next;
                Some(reply)
            }
            Kind::Tso(ts) => {
                if body.get("type")?.as_str()? != "ts" {
                    return None;
                }
                let reply = json!({"type": "ts_ok", "ts": *ts});
                *ts += 1;
                Some(reply)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearsay_core::rng::child;

    fn call(s: &mut Service, client: &str, body: Value, rng: &mut Rng) -> Value {
        s.handle(client, &body, rng).expect("a reply")
    }

    #[test]
    fn lin_kv_reads_writes_and_compares_and_sets_with_maelstroms_error_codes() {
        let mut s = Service::new("lin-kv").unwrap();
        let r = &mut child(1, "t");
        assert_eq!(
            call(&mut s, "n0", json!({"type":"read","key":"x"}), r)["code"],
            20
        );
        assert_eq!(
            call(
                &mut s,
                "n0",
                json!({"type":"cas","key":"x","from":1,"to":2}),
                r
            )["code"],
            20
        );
        assert_eq!(
            call(
                &mut s,
                "n0",
                json!({"type":"cas","key":"x","from":0,"to":5,"create_if_not_exists":true}),
                r
            )["type"],
            "cas_ok"
        );
        assert_eq!(
            call(&mut s, "n1", json!({"type":"read","key":"x"}), r)["value"],
            5
        );
        let e = call(
            &mut s,
            "n0",
            json!({"type":"cas","key":"x","from":4,"to":6}),
            r,
        );
        assert_eq!(e["code"], 22);
        assert!(
            e["text"]
                .as_str()
                .unwrap()
                .contains("current value 5 is not 4")
        );
        assert_eq!(
            call(
                &mut s,
                "n0",
                json!({"type":"write","key":"x","value":[1]}),
                r
            )["type"],
            "write_ok"
        );
        assert_eq!(
            call(&mut s, "n0", json!({"type":"read","key":"x"}), r)["value"],
            json!([1])
        );
        // The key 1 and the key "1" are different keys.
        assert_eq!(
            call(&mut s, "n0", json!({"type":"read","key":"1"}), r)["code"],
            20
        );
        assert!(s.handle("n0", &json!({"type":"frobnicate"}), r).is_none());
    }

    #[test]
    fn seq_kv_reads_may_be_stale_but_never_go_back_for_a_client() {
        let mut s = Service::new("seq-kv").unwrap();
        let r = &mut child(2, "t");
        for v in 0..20 {
            call(
                &mut s,
                "writer",
                json!({"type":"write","key":"k","value":v}),
                r,
            );
        }
        // A reader that saw nothing may read old values, but each read is
        // at least as new as its last.
        let mut last = -1;
        let mut stale = 0;
        for _ in 0..200 {
            let v = call(&mut s, "reader", json!({"type":"read","key":"k"}), r);
            let v = v["value"].as_i64().unwrap_or(-1);
            assert!(v >= last, "went back from {last} to {v}");
            stale += i64::from(v < 19);
            last = v;
        }
        assert!(stale > 0, "seq-kv must be able to return stale reads");
        // The writer's own read sees its last write (it is at the newest).
        assert_eq!(
            call(&mut s, "writer", json!({"type":"read","key":"k"}), r)["value"],
            19
        );
        // A cas runs first on a state the client may see: on a stale one
        // it fails (code 22) without changing anything, as in Maelstrom;
        // from the newest it succeeds.
        let mut kinds = std::collections::BTreeSet::new();
        for i in 0..20 {
            let c = format!("stranger{i}");
            let v = call(
                &mut s,
                &c,
                json!({"type":"cas","key":"k","from":19,"to":19}),
                r,
            );
            kinds.insert(v["type"].as_str().unwrap().to_string());
        }
        assert!(kinds.contains("error"), "{kinds:?}");
        let v = call(
            &mut s,
            "writer",
            json!({"type":"cas","key":"k","from":19,"to":20}),
            r,
        );
        assert_eq!(v["type"], "cas_ok");
    }

    #[test]
    fn lin_tso_counts_from_zero_and_lww_kv_answers() {
        let mut t = Service::new("lin-tso").unwrap();
        let r = &mut child(3, "t");
        assert_eq!(call(&mut t, "n0", json!({"type":"ts"}), r)["ts"], 0);
        assert_eq!(call(&mut t, "n1", json!({"type":"ts"}), r)["ts"], 1);
        let mut l = Service::new("lww-kv").unwrap();
        assert_eq!(
            call(&mut l, "n0", json!({"type":"write","key":"a","value":1}), r)["type"],
            "write_ok"
        );
        let mut seen = false;
        for _ in 0..50 {
            seen |= call(&mut l, "n0", json!({"type":"read","key":"a"}), r)["value"] == 1;
        }
        assert!(seen, "the write spreads to the replicas");
    }
}
