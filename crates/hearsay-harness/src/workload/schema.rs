//! Closed reply schemas, as Maelstrom's Prismatic schemas check them: the
//! declared fields plus `in_reply_to` (integer, required) and `msg_id`
//! (integer, optional); any other key is an error.

use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    Any,
    Array,
    Int,
    /// A transaction (maelstrom-spec-more.md 5.1, 6.1): an array (or null)
    /// of `[f, k, v]` triples whose `f` is one of these names.
    MicroOps(&'static [&'static str]),
    /// A list-append transaction (maelstrom-spec-more.md 5.1): as
    /// `MicroOps(["r", "append"])`, and each read's value an array or null.
    ListAppendOps,
    /// Prismatic's `{Key Offset}` (kafka, maelstrom-spec-more.md 3.1): an
    /// object (never null) whose values are integers.
    IntMap,
    /// Kafka's `{Key [[offset msg]]}`: an object whose values are arrays
    /// (or null, as sequence schemas allow) of exactly-two-element
    /// `[integer, any]` pairs.
    OffsetMsgsMap,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    pub ty: FieldType,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schema {
    pub reply_type: &'static str,
    pub fields: &'static [Field],
}

fn is_int(v: &Value) -> bool {
    v.as_i64().is_some() || v.as_u64().is_some()
}

/// The first value of `obj` that `ok` rejects, with its key.
fn bad_value(
    obj: &serde_json::Map<String, Value>,
    ok: impl Fn(&Value) -> bool,
) -> Option<(&String, &Value)> {
    obj.iter().find(|(_, v)| !ok(v))
}

/// `[offset, msg]`: Prismatic's `[(s/one Offset) (s/one Message)]`.
fn is_offset_msgs(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(pairs) => pairs
            .iter()
            .all(|p| matches!(p, Value::Array(p) if p.len() == 2 && is_int(&p[0]))),
        _ => false,
    }
}

/// `[f, k, v]` with `f` one of `fs`: Maelstrom's `(s/one (s/eq f))` and two
/// `(s/one s/Any)`, so exactly three elements.
fn is_micro_op(op: &Value, fs: &[&str]) -> bool {
    match op {
        Value::Array(m) if m.len() == 3 => {
            matches!(&m[0], Value::String(f) if fs.contains(&f.as_str()))
        }
        _ => false,
    }
}

impl Schema {
    /// `Ok` if `body` conforms; otherwise the problems, one per key, in
    /// Prismatic's words (`disallowed-key`, `missing-required-key`, ...).
    pub fn check(&self, body: &Value) -> Result<(), Vec<String>> {
        let Some(obj) = body.as_object() else {
            return Err(vec![format!("not a map: {body}")]);
        };
        let mut errs = Vec::new();
        match obj.get("type") {
            Some(Value::String(t)) if t == self.reply_type => {}
            Some(other) => errs.push(format!(":type (not (= {:?} {other}))", self.reply_type)),
            None => errs.push(":type missing-required-key".to_string()),
        }
        match obj.get("in_reply_to") {
            Some(v) if is_int(v) => {}
            Some(v) => errs.push(format!(":in_reply_to (not (integer? {v}))")),
            None => errs.push(":in_reply_to missing-required-key".to_string()),
        }
        if let Some(v) = obj.get("msg_id")
            && !is_int(v)
        {
            errs.push(format!(":msg_id (not (integer? {v}))"));
        }
        for f in self.fields {
            match (obj.get(f.name), f.ty) {
                (None, _) => errs.push(format!(":{} missing-required-key", f.name)),
                (Some(_), FieldType::Any) => {}
                // Prismatic's sequence schemas accept nil, so Maelstrom
                // takes `"messages": null` (a read of nothing).
                (Some(Value::Array(_) | Value::Null), FieldType::Array) => {}
                (Some(v), FieldType::Int) if is_int(v) => {}
                (Some(Value::Null), FieldType::MicroOps(_)) => {}
                (Some(Value::Array(ops)), FieldType::MicroOps(fs)) => {
                    if let Some((i, bad)) =
                        ops.iter().enumerate().find(|(_, op)| !is_micro_op(op, fs))
                    {
                        errs.push(format!(
                            ":{} element {i} (not (micro-op {fs:?} {bad}))",
                            f.name
                        ));
                    }
                }
                (Some(Value::Null), FieldType::ListAppendOps) => {}
                (Some(Value::Array(ops)), FieldType::ListAppendOps) => {
                    let fs = &["r", "append"];
                    let read_list = |op: &Value| match op {
                        Value::Array(m) if m[0] == "r" => {
                            matches!(m[2], Value::Array(_) | Value::Null)
                        }
                        _ => true,
                    };
                    if let Some((i, bad)) = ops
                        .iter()
                        .enumerate()
                        .find(|(_, op)| !is_micro_op(op, fs) || !read_list(op))
                    {
                        errs.push(format!(
                            ":{} element {i} (not (list-append-micro-op {bad}))",
                            f.name
                        ));
                    }
                }
                (Some(Value::Object(m)), FieldType::IntMap) => {
                    if let Some((k, v)) = bad_value(m, is_int) {
                        errs.push(format!(":{} {k:?} (not (integer? {v}))", f.name));
                    }
                }
                (Some(Value::Object(m)), FieldType::OffsetMsgsMap) => {
                    if let Some((k, v)) = bad_value(m, is_offset_msgs) {
                        errs.push(format!(":{} {k:?} (not ([offset msg]* {v}))", f.name));
                    }
                }
                (Some(v), ty) => errs.push(format!(":{} (not ({ty:?} {v}))", f.name)),
            }
        }
        for k in obj.keys() {
            let declared = matches!(k.as_str(), "type" | "in_reply_to" | "msg_id")
                || self.fields.iter().any(|f| f.name == k);
            if !declared {
                errs.push(format!(":{k} disallowed-key"));
            }
        }
        if errs.is_empty() { Ok(()) } else { Err(errs) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const READ_OK: Schema = Schema {
        reply_type: "read_ok",
        fields: &[Field {
            name: "messages",
            ty: FieldType::Array,
        }],
    };

    #[test]
    fn closed_schemas_reject_extra_keys_and_bad_ids() {
        assert!(
            READ_OK
                .check(&json!({"type":"read_ok","messages":[1],"in_reply_to":3}))
                .is_ok()
        );
        assert!(
            READ_OK
                .check(&json!({"type":"read_ok","messages":[],"in_reply_to":3,"msg_id":9}))
                .is_ok()
        );
        let extra =
            READ_OK.check(&json!({"type":"read_ok","messages":[],"in_reply_to":3,"extra":1}));
        assert_eq!(extra.unwrap_err(), vec![":extra disallowed-key"]);
        assert!(
            READ_OK
                .check(&json!({"type":"read_ok","messages":[],"in_reply_to":3,"msg_id":null}))
                .is_err()
        );
        assert!(
            READ_OK
                .check(&json!({"type":"read_ok","messages":{},"in_reply_to":3}))
                .is_err()
        );
        assert!(
            READ_OK
                .check(&json!({"type":"read_ok","messages":null,"in_reply_to":3}))
                .is_ok()
        );
        assert!(
            READ_OK
                .check(&json!({"type":"read_ok","in_reply_to":3}))
                .is_err()
        );
        assert!(
            READ_OK
                .check(&json!({"type":"read_ok","messages":[],"in_reply_to":3.0}))
                .is_err()
        );
    }
}
