//! Cycles as Elle reports them: the ops of the cycle, one step per edge
//! (`{:type :wr :key ... :value ...}`, `{:type :realtime :a' ... :b ...}`),
//! and, hearsay's addition, the whole argument in one line, in the words of
//! Elle's `elle/<type>.txt` ("T1 < T2, because T1 wrote 3 = 5, which was
//! read by T2").

use super::graph::{Local, Rels};
use super::search::Walk;
use super::{DataExplainer, DataStep, Txns};
use crate::edn::{Edn, kw, map};
use crate::history::Op;

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
    /// :explanation "..."}`.
    pub fn cycle(&self, kind: &'static str, walk: &Walk) -> Edn {
        let n = walk.verts.len();
        let name = |i: usize| format!("T{}", i % n + 1);
        let mut ops: Vec<Edn> = walk.verts.iter().map(|&v| self.op(v).to_edn()).collect();
        ops.push(ops[0].clone());
        let mut steps = Vec::with_capacity(n);
        let mut because = Vec::with_capacity(n);
        for i in 0..n {
            let (a, b, rel) = (walk.verts[i], walk.verts[(i + 1) % n], walk.rels[i]);
            let (step, why) = self.step(a, b, rel, &name(i), &name(i + 1));
            steps.push(step);
            because.push(format!(
                "{} < {} ({}), because {why}",
                name(i),
                name(i + 1),
                rel.name()
            ));
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
        let last = because.pop().unwrap_or_default();
        let mut text = format!("Let {}. Then: ", binding.join(", "));
        for b in because {
            text.push_str(&b);
            text.push_str("; ");
        }
        text.push_str(&format!("however, {last}: a contradiction!"));
        map([
            ("cycle", Edn::Vector(ops)),
            ("steps", Edn::Vector(steps)),
            ("type", kw(kind)),
            ("explanation", Edn::from(text)),
        ])
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
