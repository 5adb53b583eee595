//! The test history, in Jepsen's shape: invocations and completions with a
//! global index, a relative time in nanoseconds and a process.

use crate::edn::{Edn, kw};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpType {
    Invoke,
    Ok,
    Fail,
    Info,
}

impl OpType {
    pub fn name(self) -> &'static str {
        match self {
            OpType::Invoke => "invoke",
            OpType::Ok => "ok",
            OpType::Fail => "fail",
            OpType::Info => "info",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Process {
    Client(u64),
    Nemesis,
}

impl fmt::Display for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Process::Client(p) => write!(f, "{p}"),
            Process::Nemesis => f.write_str(":nemesis"),
        }
    }
}

/// As Jepsen prints it: the number, or `:nemesis`.
impl From<Process> for Edn {
    fn from(p: Process) -> Edn {
        match p {
            Process::Client(p) => Edn::from(p),
            Process::Nemesis => kw("nemesis"),
        }
    }
}

/// An exception that turned an op indeterminate (Jepsen's "process crashed").
#[derive(Clone, Debug, PartialEq)]
pub struct Exception {
    /// The class Maelstrom would report (its exceptions are `ExceptionInfo`).
    pub class: String,
    /// A keyword naming the cause, e.g. `malformed-rpc-response`.
    pub kind: String,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Op {
    pub index: usize,
    /// Nanoseconds since the start of client setup.
    pub time: u64,
    pub kind: OpType,
    pub process: Process,
    pub f: &'static str,
    pub value: Edn,
    pub error: Option<Edn>,
    pub final_: bool,
    pub exception: Option<Exception>,
    /// For a completion: the index of its invocation.
    pub invocation: Option<usize>,
}

impl Op {
    pub fn is_client(&self) -> bool {
        matches!(self.process, Process::Client(_))
    }

    pub fn to_edn(&self) -> Edn {
        self.to_edn_as(self.f)
    }

    /// With `:f` renamed (set-full sees broadcasts as `:add`).
    pub fn to_edn_as(&self, f: &str) -> Edn {
        let process = Edn::from(self.process);
        let mut m = vec![
            (kw("index"), Edn::from(self.index)),
            (kw("time"), Edn::from(self.time)),
            (kw("type"), kw(self.kind.name())),
            (kw("process"), process),
            (kw("f"), kw(f)),
            (kw("value"), self.value.clone()),
        ];
        if self.final_ {
            m.push((kw("final?"), Edn::Bool(true)));
        }
        if let Some(e) = &self.error {
            m.push((kw("error"), e.clone()));
        }
        if let Some(x) = &self.exception {
            m.push((
                kw("exception"),
                Edn::Map(vec![
                    (
                        kw("via"),
                        Edn::Vector(vec![Edn::Map(vec![
                            (kw("type"), Edn::Symbol(x.class.clone())),
                            (kw("message"), Edn::from(x.message.as_str())),
                            (kw("data"), Edn::Map(vec![(kw("type"), kw(&x.kind))])),
                        ])]),
                    ),
                    (kw("cause"), Edn::from(x.message.as_str())),
                ]),
            ));
        }
        Edn::Map(m)
    }

    /// One line of Jepsen's `history.txt`: process, type, f, value, error.
    pub fn txt_line(&self) -> String {
        let mut s = format!(
            "{}\t:{}\t:{}\t{}",
            self.process,
            self.kind.name(),
            self.f,
            self.value.compact()
        );
        if let Some(e) = &self.error {
            s.push('\t');
            match e {
                Edn::Str(text) => s.push_str(text),
                other => s.push_str(&other.compact()),
            }
        }
        s
    }
}

/// Append-only history with Jepsen indices.
#[derive(Debug, Default, Clone)]
pub struct History {
    ops: Vec<Op>,
}

impl History {
    /// Appends an op, assigning its index; returns the index.
    pub fn push(&mut self, mut op: Op) -> usize {
        op.index = self.ops.len();
        self.ops.push(op);
        self.ops.len() - 1
    }

    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    pub fn get(&self, i: usize) -> Option<&Op> {
        self.ops.get(i)
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn client_ops(&self) -> impl Iterator<Item = &Op> {
        self.ops.iter().filter(|o| o.is_client())
    }

    /// Number of client invocations: the denominator of msgs-per-op.
    pub fn client_invocations(&self) -> usize {
        self.client_ops()
            .filter(|o| o.kind == OpType::Invoke)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(kind: OpType, error: Option<Edn>) -> Op {
        Op {
            index: 0,
            time: 5,
            kind,
            process: Process::Client(3),
            f: "read",
            value: Edn::Vector(vec![Edn::Int(1), Edn::Int(2)]),
            error,
            final_: false,
            exception: None,
            invocation: None,
        }
    }

    #[test]
    fn history_txt_matches_jepsen() {
        assert_eq!(op(OpType::Ok, None).txt_line(), "3\t:ok\t:read\t[1 2]");
        assert_eq!(
            op(OpType::Fail, Some(kw("net-timeout"))).txt_line(),
            "3\t:fail\t:read\t[1 2]\t:net-timeout"
        );
        let info = op(OpType::Info, Some(Edn::from("indeterminate: boom")));
        assert_eq!(
            info.txt_line(),
            "3\t:info\t:read\t[1 2]\tindeterminate: boom"
        );
    }

    #[test]
    fn ops_print_in_jepsen_field_order() {
        let mut h = History::default();
        h.push(op(OpType::Invoke, None));
        let i = h.push(op(OpType::Ok, None));
        assert_eq!(i, 1);
        assert_eq!(
            h.get(1).unwrap().to_edn_as("add").compact(),
            "{:index 1, :time 5, :type :ok, :process 3, :f :add, :value [1 2]}"
        );
        assert_eq!(h.client_invocations(), 1);
    }
}
