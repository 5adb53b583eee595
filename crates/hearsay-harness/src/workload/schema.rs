//! Closed reply schemas, as Maelstrom's Prismatic schemas check them: the
//! declared fields plus `in_reply_to` (integer, required) and `msg_id`
//! (integer, optional); any other key is an error.

use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    Any,
    Array,
    Int,
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
