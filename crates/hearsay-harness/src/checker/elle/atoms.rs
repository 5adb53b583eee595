//! Keys and values numbered in order of first appearance, equal as Clojure
//! compares them here: integers by value, anything else by its printed form.

use crate::edn::Edn;
use std::cmp::Ordering;
use std::collections::HashMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Atom(pub u32);

/// nil, in tables made [`Atoms::with_nil`].
pub const NIL: Atom = Atom(0);

pub struct Atoms {
    ints: HashMap<i64, Atom>,
    texts: HashMap<String, Atom>,
    edn: Vec<Edn>,
    nil_first: bool,
}

impl Atoms {
    /// nil numbered like any other value.
    pub fn new() -> Atoms {
        Atoms {
            ints: HashMap::new(),
            texts: HashMap::new(),
            edn: Vec::new(),
            nil_first: false,
        }
    }

    /// nil is always [`NIL`] (a register's initial state).
    pub fn with_nil() -> Atoms {
        Atoms {
            edn: vec![Edn::Nil],
            nil_first: true,
            ..Atoms::new()
        }
    }

    pub fn id(&mut self, v: &Edn) -> Atom {
        let next = Atom(self.edn.len() as u32);
        let a = match v {
            Edn::Nil if self.nil_first => return NIL,
            Edn::Int(i) => *self.ints.entry(*i).or_insert(next),
            other => *self.texts.entry(other.compact()).or_insert(next),
        };
        if a == next {
            self.edn.push(v.clone());
        }
        a
    }

    pub fn edn(&self, a: Atom) -> Edn {
        self.edn[a.0 as usize].clone()
    }

    pub fn list(&self, l: &[Atom]) -> Edn {
        Edn::Vector(l.iter().map(|a| self.edn(*a)).collect())
    }

    /// Integers by value, before anything else by printed form (sorted
    /// maps in cases, key order in reports).
    pub fn cmp(&self, a: Atom, b: Atom) -> Ordering {
        crate::edn::jepsen_order(&self.edn[a.0 as usize], &self.edn[b.0 as usize])
    }
}

impl Default for Atoms {
    fn default() -> Self {
        Atoms::new()
    }
}
