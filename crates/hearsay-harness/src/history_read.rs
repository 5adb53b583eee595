//! A recorded history back into a [`History`]: hearsay's `history.edn`
//! (one op map per line, as `report::write_history` writes it) or Jepsen's
//! and Maelstrom's (the same, sometimes as `#jepsen.history.Op{…}` records,
//! sometimes all in one top-level vector).
//!
//! Read per op: `:type`, `:process` (an integer or `:nemesis`), `:f`,
//! `:value`, `:error`, `:final?`, `:time` and `:exception`; other keys are
//! ignored. Ops are renumbered 0..n in file order (the file's `:index` is
//! not trusted), and each completion is paired with the latest unmatched
//! invocation of its process. Nemesis ops are `:info` on both sides, as
//! Jepsen records them: an `:info` of the nemesis with nothing open opens.
//!
//! ```
//! use hearsay_harness::history::{History, OpType};
//! let h = History::from_edn(
//!     "{:type :invoke, :process 0, :f :read, :value nil}\n\
//!      {:type :ok, :process 0, :f :read, :value 3}",
//! ).unwrap();
//! assert_eq!(h.get(1).unwrap().invocation, Some(0));
//! assert_eq!(h.get(1).unwrap().kind, OpType::Ok);
//! ```

use crate::edn::Edn;
use crate::edn_read::Reader;
use crate::history::{Exception, History, Op, OpType, Process};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// Distinct `:f` names outside [`KNOWN_F`] that one process will intern.
/// `Op::f` is `&'static str`, so each new name is leaked once; the bound
/// keeps a hostile file from leaking without end.
pub const MAX_EXTRA_F_NAMES: usize = 256;
/// Longer `:f` names are refused (they are never op names).
pub const MAX_F_LEN: usize = 64;

/// Every `:f` hearsay's workloads and nemesis record, and Jepsen's usual
/// others: these cost nothing to intern.
const KNOWN_F: &[&str] = &[
    "read",
    "write",
    "cas",
    "add",
    "broadcast",
    "echo",
    "generate",
    "start-partition",
    "stop-partition",
    "pause",
    "resume",
    "start",
    "stop",
    "kill",
    "txn",
    "send",
    "poll",
    "commit",
    "assoc",
    "inc",
];

/// `name` as a `&'static str`: a known name, or one leaked once per
/// process (at most [`MAX_EXTRA_F_NAMES`] of them).
pub fn intern_f(name: &str) -> Result<&'static str, String> {
    if let Some(k) = KNOWN_F.iter().find(|&&k| k == name) {
        return Ok(k);
    }
    if name.len() > MAX_F_LEN {
        return Err(format!("an :f name longer than {MAX_F_LEN} bytes"));
    }
    static EXTRA: OnceLock<Mutex<Vec<&'static str>>> = OnceLock::new();
    let mut extra = EXTRA
        .get_or_init(|| Mutex::new(Vec::new()))
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(k) = extra.iter().find(|&&k| k == name) {
        return Ok(k);
    }
    if extra.len() >= MAX_EXTRA_F_NAMES {
        return Err(format!(
            "more than {MAX_EXTRA_F_NAMES} distinct :f names (the process interns at most that many)"
        ));
    }
    let leaked: &'static str = Box::leak(name.to_string().into_boxed_str());
    extra.push(leaked);
    Ok(leaked)
}

impl History {
    /// Parses a recorded history; errors name the line and column (of the
    /// EDN text, or of the op that is not an op).
    pub fn from_edn(text: &str) -> Result<History, String> {
        let mut reader = Reader::new(text);
        let mut pairing = Pairing::default();
        let mut history = History::default();
        let mut first = true;
        while let Some(form) = reader.next_form().map_err(|e| e.to_string())? {
            let at = reader.form_offset();
            let wrapped = match form {
                Edn::Vector(ops) | Edn::List(ops) if first => Some(ops),
                other => {
                    pairing
                        .push(&mut history, other)
                        .map_err(|e| place(&reader, at, &e))?;
                    None
                }
            };
            first = false;
            if let Some(ops) = wrapped {
                for (i, op) in ops.into_iter().enumerate() {
                    pairing.push(&mut history, op).map_err(|e| {
                        place(
                            &reader,
                            at,
                            &format!("{e} (element {i} of the top-level collection)"),
                        )
                    })?;
                }
                if reader.next_form().map_err(|e| e.to_string())?.is_some() {
                    let at = reader.form_offset();
                    return Err(place(
                        &reader,
                        at,
                        "a form after the top-level collection of ops",
                    ));
                }
            }
        }
        Ok(history)
    }
}

/// `line:column: message` for the form at byte `offset`.
fn place(reader: &Reader, offset: usize, message: &str) -> String {
    let (line, column) = reader.line_col(offset);
    format!("{line}:{column}: {message}")
}

/// Open invocations by process, as the ops go by.
#[derive(Default)]
struct Pairing {
    open: HashMap<Process, usize>,
}

impl Pairing {
    fn push(&mut self, h: &mut History, form: Edn) -> Result<(), String> {
        let mut op = op_of(form)?;
        // The nemesis records :info on both sides: with nothing open, an
        // :info opens.
        let opens = op.kind == OpType::Invoke
            || (op.process == Process::Nemesis
                && op.kind == OpType::Info
                && !self.open.contains_key(&op.process));
        if opens {
            let i = h.push(op);
            self.open.insert(h.ops()[i].process, i);
        } else {
            op.invocation = self.open.remove(&op.process);
            h.push(op);
        }
        Ok(())
    }
}

fn op_of(form: Edn) -> Result<Op, String> {
    let Edn::Map(entries) = form else {
        return Err(format!("an op is a map, not {}", short(&form)));
    };
    let mut op = Op {
        index: 0,
        time: 0,
        kind: OpType::Info,
        process: Process::Nemesis,
        f: "",
        value: Edn::Nil,
        error: None,
        final_: false,
        exception: None,
        invocation: None,
    };
    let (mut kind, mut process, mut f) = (None, None, None);
    for (k, v) in entries {
        let Edn::Keyword(k) = k else { continue };
        match k.as_str() {
            "type" => kind = Some(op_type(&v)?),
            "process" => process = Some(process_of(&v)?),
            "f" => {
                f = Some(match &v {
                    Edn::Keyword(s) | Edn::Str(s) | Edn::Symbol(s) => intern_f(s)?,
                    other => return Err(format!(":f must be a keyword, not {}", short(other))),
                })
            }
            "time" => {
                op.time = match v {
                    Edn::Int(t) if t >= 0 => t as u64,
                    Edn::Nil => 0,
                    other => {
                        return Err(format!(
                            ":time must be a non-negative integer, not {}",
                            short(&other)
                        ));
                    }
                }
            }
            "value" => op.value = v,
            "error" => op.error = (v != Edn::Nil).then_some(v),
            "final?" => op.final_ = v == Edn::Bool(true),
            "exception" => op.exception = exception(&v),
            _ => {}
        }
    }
    op.kind = kind.ok_or("an op without :type")?;
    op.process = process.ok_or("an op without :process")?;
    op.f = f.ok_or("an op without :f")?;
    Ok(op)
}

fn op_type(v: &Edn) -> Result<OpType, String> {
    match v {
        Edn::Keyword(k) => match k.as_str() {
            "invoke" => Ok(OpType::Invoke),
            "ok" => Ok(OpType::Ok),
            "fail" => Ok(OpType::Fail),
            "info" => Ok(OpType::Info),
            _ => Err(format!(
                ":type must be :invoke, :ok, :fail or :info, not :{k}"
            )),
        },
        other => Err(format!(
            ":type must be :invoke, :ok, :fail or :info, not {}",
            short(other)
        )),
    }
}

fn process_of(v: &Edn) -> Result<Process, String> {
    match v {
        Edn::Int(p) if *p >= 0 => Ok(Process::Client(*p as u64)),
        Edn::Keyword(k) if k == "nemesis" => Ok(Process::Nemesis),
        other => Err(format!(
            ":process must be a non-negative integer or :nemesis, not {}",
            short(other)
        )),
    }
}

/// hearsay's and Clojure's printed exception (`{:via [{:type …, :message
/// …, :data {:type …}}], :cause …}`), as far as it has those fields.
fn exception(v: &Edn) -> Option<Exception> {
    if !matches!(v, Edn::Map(_)) {
        return None;
    }
    let via = match v.get("via") {
        Some(Edn::Vector(via)) => via.first(),
        _ => None,
    };
    let text = |e: Option<&Edn>| match e {
        Some(Edn::Str(s) | Edn::Symbol(s) | Edn::Keyword(s)) => s.clone(),
        _ => String::new(),
    };
    let message = match via.and_then(|x| x.get("message")) {
        Some(m) => text(Some(m)),
        None => text(v.get("cause")),
    };
    Some(Exception {
        class: text(via.and_then(|x| x.get("type"))),
        kind: text(via.and_then(|x| x.get("data")).and_then(|d| d.get("type"))),
        message,
    })
}

/// A value in a message, cut short.
fn short(v: &Edn) -> String {
    let s = v.compact();
    match s.char_indices().nth(60) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edn::{kw, map};
    use proptest::prelude::*;

    fn op(kind: OpType, process: Process, f: &'static str, value: Edn) -> Op {
        Op {
            index: 0,
            time: 0,
            kind,
            process,
            f,
            value,
            error: None,
            final_: false,
            exception: None,
            invocation: None,
        }
    }

    fn kv(k: i64, v: Edn) -> Edn {
        Edn::Vector(vec![Edn::Int(k), v])
    }

    /// A history as the runner builds one: clients, a nemesis pair, a
    /// crashed op with an exception, a final read, big and odd values.
    fn recorded() -> History {
        let mut h = History::default();
        let mut add = |mut o: Op, t: u64, inv: Option<usize>| {
            o.time = t;
            o.invocation = inv;
            h.push(o)
        };
        let c = Process::Client;
        let i0 = add(op(OpType::Invoke, c(0), "read", kv(0, Edn::Nil)), 0, None);
        let i1 = add(
            op(OpType::Invoke, c(1), "write", kv(0, Edn::Int(3))),
            5,
            None,
        );
        add(op(OpType::Ok, c(0), "read", kv(0, Edn::Nil)), 9, Some(i0));
        let n = add(
            op(
                OpType::Info,
                Process::Nemesis,
                "start-partition",
                kw("majority"),
            ),
            10,
            None,
        );
        let healed = Edn::Vector(vec![
            kw("isolated"),
            map([("n1", Edn::Set(vec![Edn::from("n2")]))]),
        ]);
        add(
            op(OpType::Info, Process::Nemesis, "start-partition", healed),
            10,
            Some(n),
        );
        let mut crashed = op(OpType::Info, c(1), "write", kv(0, Edn::Int(3)));
        crashed.error = Some(Edn::from("indeterminate: boom \"quoted\"\n"));
        crashed.exception = Some(Exception {
            class: "clojure.lang.ExceptionInfo".into(),
            kind: "malformed-rpc-response".into(),
            message: "boom".into(),
        });
        add(crashed, 1_000_000_000_000, Some(i1));
        let i2 = add(
            op(
                OpType::Invoke,
                c(7),
                "cas",
                kv(1, Edn::Vector(vec![Edn::Int(1), Edn::Int(2)])),
            ),
            20,
            None,
        );
        let mut failed = op(
            OpType::Fail,
            c(7),
            "cas",
            kv(1, Edn::Vector(vec![Edn::Int(1), Edn::Int(2)])),
        );
        failed.error = Some(Edn::Vector(vec![
            kw("precondition-failed"),
            Edn::from("no"),
        ]));
        add(failed, 21, Some(i2));
        let mut fin = op(OpType::Invoke, c(9), "read", Edn::Nil);
        fin.final_ = true;
        let i3 = add(fin.clone(), 30, None);
        fin.kind = OpType::Ok;
        fin.value = crate::edn::ints((0..5000).collect());
        add(fin, 31, Some(i3));
        add(
            op(OpType::Invoke, c(u64::MAX >> 1), "echo", Edn::from("é\t")),
            40,
            None,
        );
        h
    }

    /// What `report::write_history` puts in `history.edn`.
    fn written(h: &History) -> String {
        h.ops()
            .iter()
            .map(|o| o.to_edn().compact() + "\n")
            .collect()
    }

    #[test]
    fn hearsay_history_round_trips() {
        let h = recorded();
        let back = History::from_edn(&written(&h)).unwrap();
        assert_eq!(back.ops(), h.ops());
    }

    #[test]
    fn nemesis_info_pairs_open_then_close() {
        let text = "{:type :info, :process :nemesis, :f :start-partition, :value :majority}\n\
                    {:type :info, :process :nemesis, :f :start-partition, :value [:isolated {}]}\n\
                    {:type :info, :process :nemesis, :f :stop-partition, :value nil}";
        let h = History::from_edn(text).unwrap();
        let inv: Vec<_> = h.ops().iter().map(|o| o.invocation).collect();
        assert_eq!(inv, vec![None, Some(0), None]);
    }

    #[test]
    fn jepsen_style_history_reads() {
        let text = r#"[#jepsen.history.Op{:index 0, :time 10, :type :invoke, :process 0, :f :read, :value [0 nil]}
 #jepsen.history.Op{:index 1, :time 20, :type :invoke, :process 1, :f :write, :value [0 4]}
 #jepsen.history.Op{:index 2, :time 1000, :type :info, :process 0, :f :read, :value [0 nil],
   :error [:net-timeout "timed out after 1000 ms"],
   :exception {:via [{:type clojure.lang.ExceptionInfo, :message "timeout",
                      :data {:type :jepsen.client/timeout}, :at [jepsen.client$fn invoke "client.clj" 12]}],
               :trace [], :cause "timeout"}}
 {:index 3, :time 1500, :type :ok, :process 1, :f :write, :value [0 4], :extra #object[java.lang.Object 0x5 "o"]}
 {:index 4, :time 1600, :type :invoke, :process :nemesis, :f :kill, :value :all, :when #inst "2024-05-01T00:00:00Z"}
 {:index 5, :time 1700, :type :info, :process :nemesis, :f :kill, :value nil, :error nil}
 ; a comment
 {:index 9, :time 1800, :type :invoke, :process 2, :f :frobnicate, :value nil}]"#;
        let h = History::from_edn(text).unwrap();
        assert_eq!(h.len(), 7);
        let o = h.get(2).unwrap();
        assert_eq!(o.kind, OpType::Info);
        assert_eq!(o.invocation, Some(0));
        assert_eq!(
            o.error,
            Some(Edn::Vector(vec![
                kw("net-timeout"),
                Edn::from("timed out after 1000 ms")
            ]))
        );
        let x = o.exception.as_ref().unwrap();
        assert_eq!(
            (x.class.as_str(), x.kind.as_str(), x.message.as_str()),
            (
                "clojure.lang.ExceptionInfo",
                "jepsen.client/timeout",
                "timeout"
            )
        );
        assert_eq!(h.get(3).unwrap().invocation, Some(1));
        assert_eq!(h.get(5).unwrap().invocation, Some(4));
        assert_eq!(h.get(5).unwrap().error, None);
        let last = h.get(6).unwrap();
        assert_eq!((last.index, last.f), (6, "frobnicate"));
        assert_eq!(h.client_invocations(), 3);
    }

    #[test]
    fn bad_histories_say_where() {
        let cases = [
            (
                "{:type :ok, :process 0, :f :read}\n[1 2",
                "2:1: end of input inside `[`",
            ),
            (
                "{:type :ok, :process 0, :f :read}\n  {:type :done, :process 0, :f :read}",
                "2:3: :type must be",
            ),
            ("{:process 0, :f :read}", "1:1: an op without :type"),
            ("{:type :ok, :f :read}", "an op without :process"),
            ("{:type :ok, :process 0}", "an op without :f"),
            ("{:type :ok, :process -1, :f :read}", ":process must be"),
            ("{:type :ok, :process 0, :f 3}", ":f must be a keyword"),
            (
                "{:type :ok, :process 0, :f :read, :time -4}",
                ":time must be",
            ),
            (
                "[{:type :ok, :process 0, :f :read} 7]",
                "element 1 of the top-level",
            ),
            (
                "[{:type :ok, :process 0, :f :read}] {}",
                "a form after the top-level",
            ),
            ("1 2", "an op is a map"),
            ("{:type :ok :process}", "even number"),
            ("{:type : ok}", "bad keyword"),
        ];
        for (text, want) in cases {
            let e = History::from_edn(text).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
        }
        let bomb = "[".repeat(100_000);
        assert!(
            History::from_edn(&bomb)
                .unwrap_err()
                .contains("nested deeper")
        );
        assert!(History::from_edn("").unwrap().is_empty());
    }

    #[test]
    fn f_names_intern_once_and_stay_bounded() {
        let a = intern_f("history-read-test-f").unwrap();
        let b = intern_f(&String::from("history-read-test-f")).unwrap();
        assert!(std::ptr::eq(a, b));
        assert!(std::ptr::eq(intern_f("read").unwrap(), KNOWN_F[0]));
        assert!(intern_f(&"x".repeat(MAX_F_LEN + 1)).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(s in ".*") {
            let _ = History::from_edn(&s);
        }

        #[test]
        fn mangled_histories_never_panic(cut in 0usize..2000, junk in "[\\[\\]{}():#\" a-z0-9]{0,8}") {
            let text = written(&recorded());
            let mut at = cut.min(text.len());
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            let mangled = format!("{}{junk}{}", &text[..at], &text[at..]);
            let _ = History::from_edn(&mangled);
        }
    }
}
