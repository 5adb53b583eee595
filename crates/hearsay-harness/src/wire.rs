//! The node side of the wire: validating what a node prints on stdout, and
//! framing what it reads on stdin.

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// A message a node printed, validated against Maelstrom's closed envelope
/// schema: `src` and `dest` strings, any `body`, an optional integer `id`,
/// nothing else.
#[derive(Debug, Clone)]
pub struct NodeLine {
    pub src: String,
    pub dest: String,
    pub body: Box<RawValue>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("printed a line to STDOUT which was not well-formed JSON ({0})")]
    NotJson(String),
    #[error(
        "tried to send a malformed network message ({0}); a message is a JSON object with exactly \"src\" (string), \"dest\" (string), \"body\", and optionally \"id\" (integer)"
    )]
    Malformed(String),
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope<'a> {
    #[serde(default, borrow, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    src: String,
    dest: String,
    #[serde(borrow)]
    body: &'a RawValue,
}

pub fn parse_node_line(line: &str) -> Result<NodeLine, LineError> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.trim_start().starts_with('[') {
        // serde would read a struct from a positional array; Maelstrom won't.
        return Err(LineError::Malformed(
            "a message must be a JSON object, not an array".into(),
        ));
    }
    let env: Envelope = serde_json::from_str(line).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => LineError::Malformed(e.to_string()),
        _ => LineError::NotJson(e.to_string()),
    })?;
    if let Some(id) = env.id
        && serde_json::from_str::<i64>(id.get()).is_err()
        && serde_json::from_str::<u64>(id.get()).is_err()
    {
        return Err(LineError::Malformed(format!(
            "\"id\" must be an integer, not {}",
            id.get()
        )));
    }
    Ok(NodeLine {
        src: env.src,
        dest: env.dest,
        body: env.body.to_owned(),
    })
}

/// The line a node reads: `{"id":..,"src":..,"dest":..,"body":..}`.
pub fn envelope_line(id: u64, src: &str, dest: &str, body: &RawValue) -> String {
    let q = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
    format!(
        r#"{{"id":{id},"src":{},"dest":{},"body":{}}}"#,
        q(src),
        q(dest),
        body.get()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_exactly_the_envelope_schema() {
        let ok = parse_node_line(r#"{"src":"n0","dest":"c1","body":{"type":"x"}}"#).unwrap();
        assert_eq!(
            (ok.src.as_str(), ok.dest.as_str(), ok.body.get()),
            ("n0", "c1", r#"{"type":"x"}"#)
        );
        assert!(parse_node_line(r#"{"id":3,"src":"n0","dest":"c1","body":1}"#).is_ok());
        assert!(parse_node_line("{\"src\":\"n0\",\"dest\":\"c1\",\"body\":null}\r").is_ok());
        let bad = [
            r#"{"src":"n0","dest":"c1","body":{},"extra":1}"#,
            r#"{"id":null,"src":"n0","dest":"c1","body":{}}"#,
            r#"{"id":1.5,"src":"n0","dest":"c1","body":{}}"#,
            r#"{"src":1,"dest":"c1","body":{}}"#,
            r#"{"src":"n0","body":{}}"#,
            r#"[1,2]"#,
        ];
        for b in bad {
            assert!(
                matches!(parse_node_line(b), Err(LineError::Malformed(_))),
                "{b}"
            );
        }
        for b in ["", "hello", r#"{"src":"n0""#] {
            assert!(
                matches!(parse_node_line(b), Err(LineError::NotJson(_))),
                "{b:?}"
            );
        }
    }

    #[test]
    fn frames_envelopes_like_maelstrom() {
        let body = RawValue::from_string(r#"{"type":"init","msg_id":1}"#.into()).unwrap();
        assert_eq!(
            envelope_line(0, "c0", "n0", &body),
            r#"{"id":0,"src":"c0","dest":"n0","body":{"type":"init","msg_id":1}}"#
        );
    }
}
