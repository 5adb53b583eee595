//! Reads EDN text (a `history.edn`, hearsay's or Jepsen's) into [`Edn`].
//!
//! Covers what Clojure's printer puts into histories: nil, booleans,
//! integers, floats (`##Inf`, `##NaN` too), strings, characters, keywords,
//! symbols, vectors, lists, sets, maps, `;` comments, commas as whitespace,
//! `#_` discards and tagged literals. It is not a Clojure reader: no
//! quoting, metadata, regexes or syntax-quote.
//!
//! Choices where EDN has no matching [`Edn`] variant:
//! - an integer beyond i64 (`18446744073709551615`, `5N`-style bigints too
//!   big for i64) is an [`Edn::Symbol`] of its digits, as hearsay prints
//!   big integers; `1/2` ratios are symbols too; `1.5M` is a float;
//! - a character (`\a`, `\newline`, `\u00e9`) is a one-character string;
//! - a tagged literal is its form with the tag dropped: `#inst "…"` is the
//!   string, `#object[…]` the vector, `#error {…}` and record tags such as
//!   `#jepsen.history.Op{…}` the map. One tag is understood:
//!   `#hearsay/ranges [[lo hi] …]` becomes [`Edn::IntRanges`] again.
//!
//! The reader is iterative with an explicit stack, so hostile nesting is an
//! error past [`MAX_DEPTH`], never a stack overflow; every error carries
//! its line and column.
//!
//! ```
//! use hearsay_harness::edn::{Edn, kw};
//! use hearsay_harness::edn_read::read_all;
//! let forms = read_all("{:f :read, :value [0 nil]} ; a comment\n#{1}").unwrap();
//! assert_eq!(forms[0].get("f"), Some(&kw("read")));
//! assert_eq!(forms[1], Edn::Set(vec![Edn::Int(1)]));
//! ```

use crate::edn::Edn;
use std::sync::Arc;

/// Collections and tags open at once; deeper input is refused.
pub const MAX_DEPTH: usize = 512;

/// Where reading stopped, and why.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{line}:{column}: {kind}")]
pub struct ReadError {
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    /// Byte offset into the text.
    pub offset: usize,
    pub kind: ReadErrorKind,
}

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ReadErrorKind {
    #[error("unexpected character {0:?}")]
    Unexpected(char),
    #[error("unexpected `{0}`: nothing is open")]
    UnbalancedClose(char),
    #[error("`{found}` cannot close `{open}` (opened at {line}:{column})")]
    Mismatched {
        open: &'static str,
        found: char,
        line: usize,
        column: usize,
    },
    #[error("end of input inside `{0}` opened here")]
    Unclosed(&'static str),
    #[error("end of input inside a string that starts here")]
    UnterminatedString,
    #[error("bad escape in string: {0}")]
    BadEscape(String),
    #[error("bad character literal \\{0}")]
    BadCharacter(String),
    #[error("bad keyword :{0}")]
    BadKeyword(String),
    #[error("bad number {0}")]
    BadNumber(String),
    #[error("bad symbolic value ##{0} (##Inf, ##-Inf or ##NaN)")]
    BadSymbolic(String),
    #[error("a map needs an even number of forms, this one has {0}")]
    OddMap(usize),
    #[error("{0} needs a form after it")]
    MissingForm(String),
    #[error("nested deeper than {0} levels")]
    TooDeep(usize),
    #[error("bad #hearsay/ranges: {0}")]
    BadRanges(&'static str),
    #[error("no form in the input")]
    Empty,
    #[error("a second form where one was expected")]
    Trailing,
}

/// Every top-level form of `text`.
pub fn read_all(text: &str) -> Result<Vec<Edn>, ReadError> {
    Reader::new(text).collect()
}

/// The one form of `text` (nothing but whitespace and comments around it).
pub fn read_one(text: &str) -> Result<Edn, ReadError> {
    let mut r = Reader::new(text);
    let first = r.next_form()?;
    let start = r.pos;
    match (first, r.next_form()?) {
        (Some(v), None) => Ok(v),
        (None, _) => Err(r.error_at(start, ReadErrorKind::Empty)),
        (Some(_), Some(_)) => Err(r.error_at(r.form_start, ReadErrorKind::Trailing)),
    }
}

/// Top-level forms one at a time; after an error it yields nothing more.
pub struct Reader<'a> {
    text: &'a str,
    pos: usize,
    /// Where the last top-level form began (for callers' messages).
    form_start: usize,
    failed: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Coll {
    Vector,
    List,
    Set,
    Map,
}

impl Coll {
    fn open(self) -> &'static str {
        match self {
            Coll::Vector => "[",
            Coll::List => "(",
            Coll::Set => "#{",
            Coll::Map => "{",
        }
    }

    fn close(self) -> u8 {
        match self {
            Coll::Vector => b']',
            Coll::List => b')',
            Coll::Set | Coll::Map => b'}',
        }
    }
}

enum Frame {
    Coll {
        coll: Coll,
        items: Vec<Edn>,
        start: usize,
    },
    /// `#tag`: applies to the next form.
    Tag { name: String, start: usize },
    /// `#_`: drops the next form.
    Discard { start: usize },
}

impl Frame {
    fn start(&self) -> usize {
        match self {
            Frame::Coll { start, .. } | Frame::Tag { start, .. } | Frame::Discard { start } => {
                *start
            }
        }
    }
}

/// What one scan step produced.
enum Step {
    Value(Edn),
    Open(Frame),
    Close(u8),
}

fn is_delimiter(b: u8) -> bool {
    matches!(
        b,
        b' ' | b'\t'
            | b'\n'
            | b'\r'
            | 0x0b
            | 0x0c
            | b','
            | b'('
            | b')'
            | b'['
            | b']'
            | b'{'
            | b'}'
            | b'"'
            | b';'
    )
}

fn is_symbol_start(c: char) -> bool {
    c.is_alphanumeric() || "*+!-_?<>=./&%$|".contains(c) || !c.is_ascii()
}

/// Tokens in messages stop here (hostile input can be one huge token).
fn shown(s: &str) -> String {
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

impl<'a> Reader<'a> {
    pub fn new(text: &'a str) -> Reader<'a> {
        Reader {
            text,
            pos: 0,
            form_start: 0,
            failed: false,
        }
    }

    /// Byte offset where the last form returned begins.
    pub fn form_offset(&self) -> usize {
        self.form_start
    }

    /// Line and column (1-based) of a byte offset; it scans the text up to
    /// there, so callers ask only when they report an error.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text.as_bytes()[..offset];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let column = self.text[line_start..offset].chars().count() + 1;
        (line, column)
    }

    fn error_at(&self, offset: usize, kind: ReadErrorKind) -> ReadError {
        let (line, column) = self.line_col(offset);
        ReadError {
            line,
            column,
            offset,
            kind,
        }
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.pos).copied()
    }

    /// Whitespace, commas and `;` comments.
    fn skip_blank(&mut self) {
        let b = self.bytes();
        while let Some(&c) = b.get(self.pos) {
            match c {
                b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | b',' => self.pos += 1,
                b';' => {
                    while self.pos < b.len() && b[self.pos] != b'\n' {
                        self.pos += 1;
                    }
                }
                _ => break,
            }
        }
    }

    /// From `pos` up to the next delimiter.
    fn token(&mut self) -> &'a str {
        let start = self.pos;
        let b = self.bytes();
        while self.pos < b.len() && !is_delimiter(b[self.pos]) {
            self.pos += 1;
        }
        // Delimiters are ASCII, so both ends are char boundaries.
        &self.text[start..self.pos]
    }

    /// The next top-level form; `None` at the end of the text.
    pub fn next_form(&mut self) -> Result<Option<Edn>, ReadError> {
        let mut stack: Vec<Frame> = Vec::new();
        loop {
            self.skip_blank();
            if stack.is_empty() {
                self.form_start = self.pos;
            }
            let Some(c) = self.peek() else {
                return match stack.last() {
                    None => Ok(None),
                    Some(f) => Err(self.error_at(f.start(), unclosed(f))),
                };
            };
            let mut value = match self.step(c)? {
                Step::Open(frame) => {
                    if stack.len() >= MAX_DEPTH {
                        return Err(self.error_at(frame.start(), ReadErrorKind::TooDeep(MAX_DEPTH)));
                    }
                    stack.push(frame);
                    continue;
                }
                Step::Close(found) => self.close(&mut stack, found)?,
                Step::Value(v) => v,
            };
            // Hand the value up: tags wrap it and pass it on, a discard
            // swallows it, a collection keeps it.
            loop {
                match stack.last_mut() {
                    None => return Ok(Some(value)),
                    Some(Frame::Coll { items, .. }) => {
                        items.push(value);
                        break;
                    }
                    Some(Frame::Discard { .. }) => {
                        stack.pop();
                        break;
                    }
                    Some(Frame::Tag { .. }) => {
                        let Some(Frame::Tag { name, start }) = stack.pop() else {
                            unreachable!("just matched a tag");
                        };
                        value = tagged(&name, value).map_err(|k| self.error_at(start, k))?;
                    }
                }
            }
        }
    }

    /// A closing delimiter at `pos`: the finished collection.
    fn close(&mut self, stack: &mut Vec<Frame>, found: u8) -> Result<Edn, ReadError> {
        let at = self.pos - 1;
        match stack.pop() {
            None => Err(self.error_at(at, ReadErrorKind::UnbalancedClose(found as char))),
            Some(Frame::Coll { coll, items, start }) if coll.close() == found => match coll {
                Coll::Vector => Ok(Edn::Vector(items)),
                Coll::List => Ok(Edn::List(items)),
                Coll::Set => Ok(Edn::Set(items)),
                Coll::Map if items.len() % 2 == 1 => {
                    Err(self.error_at(start, ReadErrorKind::OddMap(items.len())))
                }
                Coll::Map => {
                    let mut entries = Vec::with_capacity(items.len() / 2);
                    let mut it = items.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        entries.push((k, v));
                    }
                    Ok(Edn::Map(entries))
                }
            },
            Some(Frame::Coll { coll, start, .. }) => {
                let (line, column) = self.line_col(start);
                Err(self.error_at(
                    at,
                    ReadErrorKind::Mismatched {
                        open: coll.open(),
                        found: found as char,
                        line,
                        column,
                    },
                ))
            }
            Some(f @ (Frame::Tag { .. } | Frame::Discard { .. })) => {
                Err(self.error_at(f.start(), missing_form(&f)))
            }
        }
    }

    /// Reads one token or opening starting with `c` at `pos`.
    fn step(&mut self, c: u8) -> Result<Step, ReadError> {
        let start = self.pos;
        match c {
            b'[' | b'(' | b'{' => {
                self.pos += 1;
                let coll = match c {
                    b'[' => Coll::Vector,
                    b'(' => Coll::List,
                    _ => Coll::Map,
                };
                Ok(Step::Open(Frame::Coll {
                    coll,
                    items: Vec::new(),
                    start,
                }))
            }
            b']' | b')' | b'}' => {
                self.pos += 1;
                Ok(Step::Close(c))
            }
            b'"' => self.string().map(|s| Step::Value(Edn::Str(s))),
            b'\\' => self.character().map(Step::Value),
            b':' => self.keyword().map(Step::Value),
            b'#' => self.dispatch(),
            b'0'..=b'9' => self.number().map(Step::Value),
            b'+' | b'-' if matches!(self.bytes().get(self.pos + 1), Some(b'0'..=b'9')) => {
                self.number().map(Step::Value)
            }
            _ => {
                let ch = self.text[self.pos..].chars().next().unwrap_or('?');
                if !is_symbol_start(ch) {
                    return Err(self.error_at(start, ReadErrorKind::Unexpected(ch)));
                }
                Ok(Step::Value(match self.token() {
                    "nil" => Edn::Nil,
                    "true" => Edn::Bool(true),
                    "false" => Edn::Bool(false),
                    sym => Edn::Symbol(sym.to_string()),
                }))
            }
        }
    }

    /// `#{`, `#_`, `##Inf`, `#tag`.
    fn dispatch(&mut self) -> Result<Step, ReadError> {
        let start = self.pos;
        self.pos += 1;
        match self.peek() {
            Some(b'{') => {
                self.pos += 1;
                Ok(Step::Open(Frame::Coll {
                    coll: Coll::Set,
                    items: Vec::new(),
                    start,
                }))
            }
            Some(b'_') => {
                self.pos += 1;
                Ok(Step::Open(Frame::Discard { start }))
            }
            Some(b'#') => {
                self.pos += 1;
                match self.token() {
                    "Inf" => Ok(Step::Value(Edn::Float(f64::INFINITY))),
                    "-Inf" => Ok(Step::Value(Edn::Float(f64::NEG_INFINITY))),
                    "NaN" => Ok(Step::Value(Edn::Float(f64::NAN))),
                    other => Err(self.error_at(start, ReadErrorKind::BadSymbolic(shown(other)))),
                }
            }
            Some(c) if (c as char).is_ascii_alphabetic() => {
                let name = self.token().to_string();
                Ok(Step::Open(Frame::Tag { name, start }))
            }
            Some(_) => {
                let ch = self.text[self.pos..].chars().next().unwrap_or('?');
                Err(self.error_at(self.pos, ReadErrorKind::Unexpected(ch)))
            }
            None => Err(self.error_at(start, ReadErrorKind::MissingForm("#".into()))),
        }
    }

    fn keyword(&mut self) -> Result<Edn, ReadError> {
        let start = self.pos;
        self.pos += 1;
        let name = self.token();
        let bad = name.is_empty()
            || name.starts_with(':')
            || (name.len() > 1 && (name.starts_with('/') || name.ends_with('/')))
            || name.contains("//");
        if bad {
            return Err(self.error_at(start, ReadErrorKind::BadKeyword(shown(name))));
        }
        Ok(Edn::Keyword(name.to_string()))
    }

    fn number(&mut self) -> Result<Edn, ReadError> {
        let start = self.pos;
        let tok = self.token();
        number(tok).ok_or_else(|| self.error_at(start, ReadErrorKind::BadNumber(shown(tok))))
    }

    /// A string literal at `pos`; Java's escapes plus `\uXXXX` (with
    /// surrogate pairs, as JSON and Java write non-BMP characters).
    fn string(&mut self) -> Result<String, ReadError> {
        let start = self.pos;
        self.pos += 1;
        let b = self.bytes();
        let mut out = String::new();
        loop {
            let run = self.pos;
            while self.pos < b.len() && b[self.pos] != b'"' && b[self.pos] != b'\\' {
                self.pos += 1;
            }
            out.push_str(&self.text[run..self.pos]);
            match b.get(self.pos) {
                None => return Err(self.error_at(start, ReadErrorKind::UnterminatedString)),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                _ => {
                    let esc = self.pos;
                    self.pos += 1;
                    let c = self.escape().map_err(|k| self.error_at(esc, k))?;
                    out.push(c);
                }
            }
        }
    }

    /// After a backslash in a string.
    fn escape(&mut self) -> Result<char, ReadErrorKind> {
        let Some(c) = self.peek() else {
            return Err(ReadErrorKind::BadEscape("end of input".into()));
        };
        self.pos += 1;
        Ok(match c {
            b't' => '\t',
            b'n' => '\n',
            b'r' => '\r',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'u' => {
                let hi = self.hex4()?;
                if !(0xD800..0xDC00).contains(&hi) {
                    return char::from_u32(hi)
                        .ok_or_else(|| ReadErrorKind::BadEscape(format!("\\u{hi:04x}")));
                }
                // A high surrogate must be followed by `\u` and a low one.
                if self.bytes().get(self.pos..self.pos + 2) != Some(b"\\u") {
                    return Err(ReadErrorKind::BadEscape(format!(
                        "lone surrogate \\u{hi:04x}"
                    )));
                }
                self.pos += 2;
                let lo = self.hex4()?;
                if !(0xDC00..0xE000).contains(&lo) {
                    return Err(ReadErrorKind::BadEscape(format!(
                        "lone surrogate \\u{hi:04x}"
                    )));
                }
                let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                char::from_u32(c).ok_or_else(|| ReadErrorKind::BadEscape(format!("\\u{hi:04x}")))?
            }
            other => {
                let ch = self.text[self.pos - 1..]
                    .chars()
                    .next()
                    .unwrap_or(other as char);
                return Err(ReadErrorKind::BadEscape(format!("\\{ch}")));
            }
        })
    }

    fn hex4(&mut self) -> Result<u32, ReadErrorKind> {
        let digits = self
            .bytes()
            .get(self.pos..self.pos + 4)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| {
                d.bytes()
                    .all(|b| b.is_ascii_hexdigit())
                    .then(|| u32::from_str_radix(d, 16).ok())
                    .flatten()
            })
            .ok_or_else(|| ReadErrorKind::BadEscape("\\u needs four hex digits".into()))?;
        self.pos += 4;
        Ok(digits)
    }

    /// `\c`, `\newline`, `\uXXXX`: a one-character string.
    fn character(&mut self) -> Result<Edn, ReadError> {
        let start = self.pos;
        self.pos += 1;
        // The first character is taken whatever it is (`\(`, `\;`).
        let Some(first) = self.text[self.pos..].chars().next() else {
            return Err(self.error_at(start, ReadErrorKind::BadCharacter(String::new())));
        };
        self.pos += first.len_utf8();
        let rest = self.token();
        let name = &self.text[start + 1..self.pos];
        let c = if rest.is_empty() {
            Some(first)
        } else {
            match name {
                "newline" => Some('\n'),
                "space" => Some(' '),
                "tab" => Some('\t'),
                "return" => Some('\r'),
                "backspace" => Some('\u{8}'),
                "formfeed" => Some('\u{c}'),
                _ => name
                    .strip_prefix('u')
                    .filter(|h| h.len() == 4 && h.bytes().all(|b| b.is_ascii_hexdigit()))
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .and_then(char::from_u32),
            }
        };
        c.map(|c| Edn::Str(c.to_string()))
            .ok_or_else(|| self.error_at(start, ReadErrorKind::BadCharacter(shown(name))))
    }
}

impl Iterator for Reader<'_> {
    type Item = Result<Edn, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let r = self.next_form().transpose();
        self.failed = matches!(r, Some(Err(_)));
        r
    }
}

fn unclosed(f: &Frame) -> ReadErrorKind {
    match f {
        Frame::Coll { coll, .. } => ReadErrorKind::Unclosed(coll.open()),
        other => missing_form(other),
    }
}

fn missing_form(f: &Frame) -> ReadErrorKind {
    ReadErrorKind::MissingForm(match f {
        Frame::Tag { name, .. } => format!("#{}", shown(name)),
        _ => "#_".into(),
    })
}

/// A number token: i64, else a big integer as a symbol of its digits, a
/// ratio as a symbol, `0x` hex, `N`/`M` suffixes, floats.
fn number(tok: &str) -> Option<Edn> {
    let (sign, body) = match tok.as_bytes().first() {
        Some(b'-') => ("-", &tok[1..]),
        Some(b'+') => ("", &tok[1..]),
        _ => ("", tok),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let int_body = body.strip_suffix('N').unwrap_or(body);
    if all_digits(int_body) {
        let digits = format!("{sign}{int_body}");
        return Some(
            digits
                .parse::<i64>()
                .map_or_else(|_| Edn::Symbol(digits.clone()), Edn::Int),
        );
    }
    if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        let v = i64::from_str_radix(hex, 16).ok()?;
        return Some(Edn::Int(if sign == "-" { v.checked_neg()? } else { v }));
    }
    if let Some((n, d)) = body.split_once('/') {
        return (all_digits(n) && all_digits(d)).then(|| Edn::Symbol(format!("{sign}{body}")));
    }
    let float = body.strip_suffix('M').unwrap_or(body);
    // Rust also parses "inf" and "nan"; EDN floats are digits only.
    let ok = float
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    if !ok {
        return None;
    }
    format!("{sign}{float}").parse::<f64>().ok().map(Edn::Float)
}

/// The value a tagged literal reads as: the form itself, except
/// `#hearsay/ranges`, which rebuilds the range set hearsay printed.
fn tagged(name: &str, form: Edn) -> Result<Edn, ReadErrorKind> {
    if name != "hearsay/ranges" {
        return Ok(form);
    }
    let Edn::Vector(pairs) = form else {
        return Err(ReadErrorKind::BadRanges(
            "expected a vector of [lo hi] pairs",
        ));
    };
    let mut ranges = Vec::with_capacity(pairs.len());
    for p in pairs {
        match p {
            Edn::Vector(v) => match v.as_slice() {
                [Edn::Int(lo), Edn::Int(hi)] if lo <= hi => ranges.push((*lo, *hi)),
                _ => {
                    return Err(ReadErrorKind::BadRanges(
                        "each range is [lo hi] with lo <= hi",
                    ));
                }
            },
            _ => {
                return Err(ReadErrorKind::BadRanges(
                    "each range is [lo hi] with lo <= hi",
                ));
            }
        }
    }
    Ok(Edn::IntRanges(Arc::new(ranges)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edn::{kw, map};
    use proptest::prelude::*;

    fn one(s: &str) -> Edn {
        read_one(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    fn err(s: &str) -> ReadError {
        match read_all(s) {
            Ok(v) => panic!("{s:?} read as {v:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn scalars() {
        assert_eq!(one("nil"), Edn::Nil);
        assert_eq!(one("true"), Edn::Bool(true));
        assert_eq!(one("false"), Edn::Bool(false));
        assert_eq!(one("-42"), Edn::Int(-42));
        assert_eq!(one("+7"), Edn::Int(7));
        assert_eq!(one("7N"), Edn::Int(7));
        assert_eq!(one("0x1F"), Edn::Int(31));
        assert_eq!(one("1.5"), Edn::Float(1.5));
        assert_eq!(one("1.5E7"), Edn::Float(1.5e7));
        assert_eq!(one("-1.0E-4"), Edn::Float(-1.0e-4));
        assert_eq!(one("2.5M"), Edn::Float(2.5));
        assert_eq!(one("##-Inf"), Edn::Float(f64::NEG_INFINITY));
        assert!(matches!(one("##NaN"), Edn::Float(f) if f.is_nan()));
        assert_eq!(one(":foo"), kw("foo"));
        assert_eq!(one(":valid?"), kw("valid?"));
        assert_eq!(one(":foo/bar"), kw("foo/bar"));
        assert_eq!(
            one("java.lang.Exception"),
            Edn::Symbol("java.lang.Exception".into())
        );
        assert_eq!(one("/"), Edn::Symbol("/".into()));
        assert_eq!(one("-"), Edn::Symbol("-".into()));
        assert_eq!(one("\\a"), Edn::from("a"));
        assert_eq!(one("\\newline"), Edn::from("\n"));
        assert_eq!(one("\\u00e9"), Edn::from("é"));
        assert_eq!(one("\\("), Edn::from("("));
    }

    #[test]
    fn big_integers_are_symbols_of_their_digits() {
        assert_eq!(
            one("18446744073709551615"),
            Edn::Symbol("18446744073709551615".into())
        );
        assert_eq!(
            one("-99999999999999999999N"),
            Edn::Symbol("-99999999999999999999".into())
        );
        assert_eq!(one("9223372036854775807"), Edn::Int(i64::MAX));
        assert_eq!(one("-9223372036854775808"), Edn::Int(i64::MIN));
        assert_eq!(one("1/3"), Edn::Symbol("1/3".into()));
        // What hearsay prints for a u64 past i64 reads back the same.
        let big = Edn::from(u64::MAX);
        assert_eq!(one(&big.compact()), big);
    }

    #[test]
    fn strings_and_escapes() {
        assert_eq!(one(r#""a\"b\\c\n\t""#), Edn::from("a\"b\\c\n\t"));
        assert_eq!(one(r#""\u00e9\ud83d\ude00""#), Edn::from("é😀"));
        assert_eq!(one("\"multi\nline\""), Edn::from("multi\nline"));
        assert_eq!(one("\"ünïcode\""), Edn::from("ünïcode"));
        assert!(matches!(err(r#""\q""#).kind, ReadErrorKind::BadEscape(_)));
        assert!(matches!(
            err(r#""\ud83d""#).kind,
            ReadErrorKind::BadEscape(_)
        ));
        assert!(matches!(err(r#""\u12""#).kind, ReadErrorKind::BadEscape(_)));
    }

    #[test]
    fn collections_commas_comments() {
        assert_eq!(
            one("{:a 1, :b [1 2 (3)] ; note\n :c #{:x}}"),
            map([
                ("a", Edn::Int(1)),
                (
                    "b",
                    Edn::Vector(vec![Edn::Int(1), Edn::Int(2), Edn::List(vec![Edn::Int(3)])])
                ),
                ("c", Edn::Set(vec![kw("x")])),
            ])
        );
        assert_eq!(one("[]"), Edn::Vector(vec![]));
        assert_eq!(one("{}"), Edn::Map(vec![]));
        assert_eq!(
            one("[1 #_ 2 #_ #_ 3 4 5]"),
            Edn::Vector(vec![Edn::Int(1), Edn::Int(5)])
        );
        assert_eq!(read_all("#_ 1").unwrap(), vec![]);
        assert_eq!(read_all(" ;; only\n, ,").unwrap(), vec![]);
    }

    #[test]
    fn tags_keep_their_form() {
        assert_eq!(
            one("#jepsen.history.Op{:index 0, :f :read}"),
            map([("index", Edn::Int(0)), ("f", kw("read"))])
        );
        assert_eq!(
            one("#inst \"2024-01-01T00:00:00.000-00:00\""),
            Edn::from("2024-01-01T00:00:00.000-00:00")
        );
        assert_eq!(
            one("#object[java.lang.Object 0x1f \"x\"]"),
            Edn::Vector(vec![
                Edn::Symbol("java.lang.Object".into()),
                Edn::Int(31),
                Edn::from("x")
            ])
        );
        assert_eq!(
            one("#error {:cause \"boom\"}"),
            map([("cause", Edn::from("boom"))])
        );
        assert_eq!(one("#a #b 1"), Edn::Int(1));
        let ranges = Edn::IntRanges(Arc::new(vec![(0, 4999), (7000, 7000)]));
        assert_eq!(one(&ranges.compact()), ranges);
    }

    #[test]
    fn errors_say_where() {
        let e = err("{:a 1}\n[1 2\n  {:b}]");
        assert_eq!((e.line, e.column), (3, 3));
        assert_eq!(e.kind, ReadErrorKind::OddMap(1));
        assert_eq!(
            e.to_string(),
            "3:3: a map needs an even number of forms, this one has 1"
        );
        let e = err("[1 2");
        assert_eq!(
            (e.line, e.column, e.kind),
            (1, 1, ReadErrorKind::Unclosed("["))
        );
        let e = err("[1 2)");
        assert_eq!((e.line, e.column), (1, 5));
        assert!(
            e.to_string().contains("cannot close `[` (opened at 1:1)"),
            "{e}"
        );
        assert_eq!(err(" }").kind, ReadErrorKind::UnbalancedClose('}'));
        assert_eq!(err("\"abc").kind, ReadErrorKind::UnterminatedString);
        assert!(matches!(err(":").kind, ReadErrorKind::BadKeyword(_)));
        assert!(matches!(err("::auto").kind, ReadErrorKind::BadKeyword(_)));
        assert!(matches!(err(":a/").kind, ReadErrorKind::BadKeyword(_)));
        assert!(matches!(err("12abc").kind, ReadErrorKind::BadNumber(_)));
        assert!(matches!(err("1.2.3").kind, ReadErrorKind::BadNumber(_)));
        assert!(matches!(err("##Foo").kind, ReadErrorKind::BadSymbolic(_)));
        assert!(matches!(err("[#tag]").kind, ReadErrorKind::MissingForm(_)));
        assert!(matches!(err("#tag").kind, ReadErrorKind::MissingForm(_)));
        assert!(matches!(err("#_").kind, ReadErrorKind::MissingForm(_)));
        assert!(matches!(err("#").kind, ReadErrorKind::MissingForm(_)));
        assert!(matches!(err("\\").kind, ReadErrorKind::BadCharacter(_)));
        assert!(matches!(err("\\foo").kind, ReadErrorKind::BadCharacter(_)));
        assert!(matches!(err("'a").kind, ReadErrorKind::Unexpected('\'')));
        assert!(matches!(
            err("#hearsay/ranges [[2 1]]").kind,
            ReadErrorKind::BadRanges(_)
        ));
        assert!(read_one("1 2").is_err());
        assert!(read_one("").is_err());
    }

    #[test]
    fn a_depth_bomb_is_an_error_not_a_stack_overflow() {
        for open in ["[", "(", "{", "#{", "#a ", "#_ "] {
            let bomb = open.repeat(100_000);
            let e = err(&bomb);
            assert_eq!(e.kind, ReadErrorKind::TooDeep(MAX_DEPTH), "{open}");
        }
        let fine = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(read_one(&fine).is_ok());
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(err(&deep).kind, ReadErrorKind::TooDeep(MAX_DEPTH));
    }

    #[test]
    fn the_iterator_stops_after_an_error() {
        let mut r = Reader::new("1 ] 2");
        assert_eq!(r.next(), Some(Ok(Edn::Int(1))));
        assert!(matches!(r.next(), Some(Err(_))));
        assert_eq!(r.next(), None);
    }

    /// Values hearsay prints (no NaN, no f32, no range sets that print as
    /// vectors): what `compact` writes, the reader reads back equal.
    fn edn_value() -> impl Strategy<Value = Edn> {
        let leaf = prop_oneof![
            Just(Edn::Nil),
            any::<bool>().prop_map(Edn::Bool),
            any::<i64>().prop_map(Edn::Int),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Edn::Float),
            ".*".prop_map(Edn::Str),
            "[a-z][a-z0-9?!*-]{0,8}(/[a-z][a-z0-9-]{0,5})?".prop_map(Edn::Keyword),
            "[a-z][a-z0-9.]{0,8}"
                .prop_filter("reserved", |s| !matches!(
                    s.as_str(),
                    "nil" | "true" | "false"
                ))
                .prop_map(Edn::Symbol),
            (any::<u64>()).prop_map(Edn::from),
        ];
        leaf.prop_recursive(4, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Edn::Vector),
                prop::collection::vec(inner.clone(), 0..6).prop_map(Edn::List),
                prop::collection::vec(inner.clone(), 0..6).prop_map(Edn::Set),
                prop::collection::vec((inner.clone(), inner), 0..4).prop_map(Edn::Map),
            ]
        })
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(s in ".*") {
            let _ = read_all(&s);
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = read_all(&String::from_utf8_lossy(&b));
        }

        #[test]
        fn edn_like_text_never_panics(
            parts in prop::collection::vec(
                prop_oneof![
                    Just("["), Just("]"), Just("("), Just(")"), Just("{"), Just("}"),
                    Just("#{"), Just("#_"), Just("#tag "), Just("##"), Just(":"), Just("\\"),
                    Just("\""), Just("\\u"), Just(";"), Just("\n"), Just(" "), Just(","),
                    Just("1"), Just("-"), Just("."), Just("e"), Just("N"), Just("/"),
                    Just("a"), Just("nil"), Just("é"), Just("#hearsay/ranges"),
                ],
                0..40,
            )
        ) {
            let _ = read_all(&parts.concat());
        }

        #[test]
        fn compact_then_read_is_identity(v in edn_value()) {
            let text = v.compact();
            prop_assert_eq!(read_one(&text), Ok(v), "{}", text);
        }
    }
}
