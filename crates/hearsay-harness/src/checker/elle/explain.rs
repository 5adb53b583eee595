//! Cycles as Elle reports them: the ops of the cycle, one step per edge
//! (`{:type :wr :key ... :value ...}`, `{:type :realtime :a' ... :b ...}`),
//! and, hearsay's addition, the whole argument in one line, in the words of
//! Elle's `elle/<type>.txt` ("T1 < T2, because T1 wrote 3 = 5, which was
//! read by T2").

use super::graph::{Local, Rels};
use super::search::Walk;
use super::{DataExplainer, DataStep, Txns};
use crate::edn::{Edn, kw, map};
use crate::history::{Op, OpType};
use crate::report::pictures::digraph;

/// A cycle as Elle writes it to `elle/<type>.txt` (without the `<type> #i`
/// line), and what its picture shows (drawn only when files are written:
/// most cycles found are never listed).
#[derive(Clone, Debug)]
pub struct Drawing {
    pub text: String,
    pub vertices: Vec<digraph::Vertex>,
    pub arcs: Vec<digraph::Arc>,
}

impl Drawing {
    pub fn svg(&self) -> String {
        digraph::svg(&self.vertices, &self.arcs)
    }
}

/// A transaction's micro-ops, one per line, as Elle's plots label them
/// (`a k v` for an append).
fn mops(value: &Edn) -> Vec<String> {
    match value {
        Edn::Vector(ms) | Edn::List(ms) => ms
            .iter()
            .map(|m| match m {
                Edn::Vector(parts) | Edn::List(parts) if !parts.is_empty() => {
                    let f = match parts[0].compact().trim_start_matches(':') {
                        "append" => "a".to_string(),
                        other => other.to_string(),
                    };
                    let rest: Vec<String> = parts[1..].iter().map(Edn::compact).collect();
                    format!("{f} {}", rest.join(" "))
                }
                other => other.compact(),
            })
            .collect(),
        other => vec![other.compact()],
    }
}

/// Elle's `type->color`.
fn type_color(kind: OpType) -> &'static str {
    match kind {
        OpType::Ok => "#0058AD",
        OpType::Info => "#AC6E00",
        _ => "#A50053",
    }
}

/// Elle's `short-rel`.
fn short_rel(rel: Rels) -> &'static str {
    match rel {
        Rels::REALTIME => "rt",
        Rels::PROCESS => "p",
        r => r.name(),
    }
}

/// Elle's `rel->color`.
fn rel_color(rel: Rels) -> &'static str {
    match rel {
        Rels::WW => "#C02700",
        Rels::WR => "#C000A5",
        Rels::RW => "#5B00C0",
        Rels::REALTIME => "#0050C0",
        Rels::PROCESS => "#00C0C0",
        _ => "#585858",
    }
}

pub(super) struct Explain<'a> {
    pub txns: &'a Txns<'a>,
    pub local: &'a Local,
    pub data: &'a dyn DataExplainer,
}

impl Explain<'_> {
    fn op(&self, local: u32) -> &Op {
        let v = self.local.global[local as usize];
        let i = self.txns.ops[v as usize];
        &self.txns.history.ops()[i]
    }

    /// A cycle case: `{:cycle [T1 ... T1] :steps [...] :type t
    /// :explanation "..."}`, and how Elle writes it out and draws it.
    pub fn cycle(&self, kind: &'static str, walk: &Walk) -> (Edn, Drawing) {
        let n = walk.verts.len();
        let name = |i: usize| format!("T{}", i % n + 1);
        let mut ops: Vec<Edn> = walk.verts.iter().map(|&v| self.op(v).to_edn()).collect();
        let printed: Vec<String> = ops.iter().map(Edn::compact).collect();
        ops.push(ops[0].clone());
        let mut steps = Vec::with_capacity(n);
        let mut because = Vec::with_capacity(n);
        for i in 0..n {
            let (a, b, rel) = (walk.verts[i], walk.verts[(i + 1) % n], walk.rels[i]);
            let (step, why) = self.step(a, b, rel, &name(i), &name(i + 1));
            steps.push(step);
            because.push((rel, format!("{} < {}", name(i), name(i + 1)), why));
        }
        let binding: Vec<String> = walk
            .verts
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let op = self.op(v);
                format!(
                    "{} = index {} by process {} {}",
                    name(i),
                    op.index,
                    op.process,
                    op.value.compact()
                )
            })
            .collect();
        let mut text = format!("Let {}. Then: ", binding.join(", "));
        for (i, (rel, order, why)) in because.iter().enumerate() {
            if i + 1 == n {
                text.push_str(&format!(
                    "however, {order} ({}), because {why}: a contradiction!",
                    rel.name()
                ));
            } else {
                text.push_str(&format!("{order} ({}), because {why}; ", rel.name()));
            }
        }
        // Elle's `render-cycle-explanation`, as `elle/<type>.txt` holds it.
        let mut elle = String::from("Let:\n");
        for (i, p) in printed.iter().enumerate() {
            elle.push_str(&format!("  {} = {p}\n", name(i)));
        }
        elle.push_str("\nThen:\n");
        for (i, (_, order, why)) in because.iter().enumerate() {
            if i + 1 == n {
                elle.push_str(&format!(
                    "  - However, {order}, because {why}: a contradiction!"
                ));
            } else {
                elle.push_str(&format!("  - {order}, because {why}.\n"));
            }
        }
        let vertices = walk
            .verts
            .iter()
            .zip(&printed)
            .enumerate()
            .map(|(i, (&v, p))| {
                let op = self.op(v);
                digraph::Vertex {
                    name: name(i),
                    lines: mops(&op.value),
                    color: type_color(op.kind),
                    title: p.clone(),
                }
            })
            .collect::<Vec<_>>();
        let arcs: Vec<digraph::Arc> = because
            .iter()
            .enumerate()
            .map(|(i, (rel, ..))| digraph::Arc {
                from: i,
                to: (i + 1) % n,
                label: short_rel(*rel).to_string(),
                color: rel_color(*rel),
            })
            .collect();
        let case = map([
            ("cycle", Edn::Vector(ops)),
            ("steps", Edn::Vector(steps)),
            ("type", kw(kind)),
            ("explanation", Edn::from(text)),
        ]);
        let drawing = Drawing {
            text: elle,
            vertices,
            arcs,
        };
        (case, drawing)
    }

    /// One step as data, and Elle's sentence for it.
    fn step(&self, a: u32, b: u32, rel: Rels, an: &str, bn: &str) -> (Edn, String) {
        let (oa, ob) = (self.op(a), self.op(b));
        match rel {
            Rels::PROCESS => (
                map([("type", kw("process")), ("process", process(oa))]),
                format!("process {} executed {an} before {bn}", oa.process),
            ),
            Rels::REALTIME => {
                let inv = ob
                    .invocation
                    .and_then(|i| self.txns.history.get(i))
                    .unwrap_or(ob);
                let dt = inv.time as i128 - oa.time as i128;
                let gap = if dt > 0 {
                    format!(" {:.3} seconds", dt as f64 / 1e9)
                } else {
                    " just".to_string()
                };
                (
                    map([
                        ("type", kw("realtime")),
                        ("a'", oa.to_edn()),
                        ("b", inv.to_edn()),
                    ]),
                    format!(
                        "{an} completed at index {},{gap} before the invocation of {bn}, at index {}",
                        oa.index, inv.index
                    ),
                )
            }
            data => {
                let (ga, gb) = (self.local.global[a as usize], self.local.global[b as usize]);
                match self.data.explain(data, ga, gb) {
                    Some(s) => (data_step(data, &s), self.data.render(data, &s, an, bn)),
                    None => (
                        map([("type", kw(data.name()))]),
                        format!("{an} precedes {bn} by {}", data.name()),
                    ),
                }
            }
        }
    }
}

fn process(op: &Op) -> Edn {
    match op.to_edn().get("process") {
        Some(p) => p.clone(),
        None => Edn::Nil,
    }
}

fn data_step(rel: Rels, s: &DataStep) -> Edn {
    let mut m = vec![
        ("type", kw(rel.name())),
        ("key", s.key.clone()),
        ("value", s.value.clone()),
    ];
    if let Some(v2) = &s.value2 {
        m.push(("value'", v2.clone()));
    }
    m.push(("a-mop-index", s.a_mop.map_or(Edn::Nil, Edn::from)));
    m.push(("b-mop-index", s.b_mop.map_or(Edn::Nil, Edn::from)));
    map(m)
}

/// Elle's rw-register `render-explanation` for ww, wr and rw.
pub(super) fn register_sentence(rel: Rels, s: &DataStep, an: &str, bn: &str) -> String {
    let (k, v) = (s.key.compact(), s.value.compact());
    let v2 = s.value2.as_ref().map_or("nil".into(), Edn::compact);
    match rel {
        Rels::WR => format!("{an} wrote {k} = {v}, which was read by {bn}"),
        Rels::WW => format!(
            "{an} set key {k} to {v}, and {bn} set it to {v2}, which came later in the version order"
        ),
        _ => format!(
            "{an} read key {k} = {v}, and {bn} set it to {v2}, which came later in the version order"
        ),
    }
}
