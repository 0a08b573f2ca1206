//! Reading and writing documents as YAML (with comments) and JSON.
//!
//! The YAML layer is `kustodian-manifest`, which drops comments; sops keeps them (and encrypts
//! them), so a light line scan finds comment lines outside every scalar and places each in the
//! mapping or sequence that holds it, the way go-yaml (and so sops) attaches them: a comment
//! before an item belongs to that item's collection; a comment after the last item of a nested
//! collection stays in it when it is indented deeper than the collection's parent; a trailing
//! `value # comment` becomes a comment line before its item, as sops writes it.
//!
//! Output follows sops's layout: four-space indentation, sequences indented under their key,
//! multi-line strings as literal blocks; JSON is tab-indented.

use std::collections::VecDeque;

use kustodian_manifest::{
    literal_block_ok, parse_stream, quote_if_needed, write_literal_block, Node, NodeKind,
    ScalarType,
};

use crate::error::{Error, Result};
use crate::format::{float_yaml, parse_yaml_float, parse_yaml_int};
use crate::value::{MapItem, SeqItem, Text, Value};

/// A comment line found in the source.
struct Comment {
    line: usize,
    /// Column (1-based) of the first non-blank character of its line.
    col: usize,
    /// The text after `#`.
    text: String,
}

fn parse_error(file: &str, format: &'static str, e: kustodian_manifest::ParseError) -> Error {
    Error::Parse {
        file: file.to_string(),
        format,
        message: e.message,
        line: e.pos.line,
        column: e.pos.column,
    }
}

/// Parses a YAML stream into documents, keeping comments.
pub(crate) fn parse_yaml(src: &str, file: &str) -> Result<Vec<Value>> {
    let docs = parse_stream(src).map_err(|e| parse_error(file, "YAML", e))?;
    let mut spans = Vec::new();
    for d in &docs {
        collect_scalar_spans(&d.root, &mut spans);
    }
    spans.sort_unstable();
    let (comments, markers) = scan_lines(src, &spans);
    // Each document owns the comments from its `---` marker (or the start) to the next one.
    let starts: Vec<usize> = docs
        .iter()
        .map(|d| {
            markers
                .iter()
                .copied()
                .filter(|&m| m <= d.root.span.start.line)
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut comments: VecDeque<Comment> = comments.into();
    let mut out = Vec::with_capacity(docs.len());
    for (i, d) in docs.iter().enumerate() {
        let end = starts.get(i + 1).copied().unwrap_or(usize::MAX);
        let mut mine: VecDeque<Comment> = VecDeque::new();
        while comments
            .front()
            .is_some_and(|c| c.line < end || i + 1 == docs.len())
        {
            mine.extend(comments.pop_front());
        }
        let mut b = Builder {
            comments: mine,
            file,
        };
        let root = match &d.root.kind {
            NodeKind::Map(_) => b.value(&d.root, usize::MAX, None)?,
            _ if d.root.is_null() => Value::Map(Vec::new()),
            _ => {
                return Err(Error::Shape {
                    file: file.into(),
                    what: "the top level of a document must be a mapping (sops does not support documents that are sequences or values)".into(),
                })
            }
        };
        let mut root = root;
        if let Value::Map(items) = &mut root {
            items.extend(
                b.comments
                    .drain(..)
                    .map(|c| MapItem::Comment(Text::new(c.text))),
            );
        }
        out.push(root);
    }
    if out.is_empty() {
        out.push(Value::Map(Vec::new()));
    }
    Ok(out)
}

/// Parses a JSON document (an object at the top level).
pub(crate) fn parse_json(src: &str, file: &str) -> Result<Value> {
    let docs = parse_stream(src).map_err(|e| parse_error(file, "JSON", e))?;
    if docs.len() > 1 {
        return Err(Error::Shape {
            file: file.into(),
            what: "a JSON file holds one object".into(),
        });
    }
    let Some(doc) = docs.first() else {
        return Ok(Value::Map(Vec::new()));
    };
    if !matches!(doc.root.kind, NodeKind::Map(_)) {
        return Err(Error::Shape {
            file: file.into(),
            what: "the top level of a JSON file must be an object".into(),
        });
    }
    let mut v = Builder {
        comments: VecDeque::new(),
        file,
    }
    .value(&doc.root, usize::MAX, None)?;
    ints_to_floats(&mut v);
    Ok(v)
}

/// sops reads every JSON number as a float (Go's `encoding/json` into `interface{}`).
fn ints_to_floats(v: &mut Value) {
    match v {
        Value::Int(i) => *v = Value::Float(*i as f64),
        Value::Map(items) => items.iter_mut().for_each(|i| {
            if let MapItem::Entry(_, v) = i {
                ints_to_floats(v)
            }
        }),
        Value::Seq(items) => items.iter_mut().for_each(|i| {
            if let SeqItem::Value(v) = i {
                ints_to_floats(v)
            }
        }),
        _ => {}
    }
}

/// A float as Go's `encoding/json` writes it.
fn json_float(f: f64) -> String {
    let a = f.abs();
    if a == 0.0 || (1e-6..1e21).contains(&a) {
        return format!("{f}");
    }
    let s = format!("{f:e}");
    match s.split_once('e') {
        Some((m, e)) if !e.starts_with('-') => format!("{m}e+{e}"),
        _ => s,
    }
}

fn collect_scalar_spans(n: &Node, out: &mut Vec<(usize, usize)>) {
    match &n.kind {
        NodeKind::Scalar { .. } => out.push((n.span.start.offset, n.span.end.offset)),
        NodeKind::Seq(items) => items.iter().for_each(|i| collect_scalar_spans(i, out)),
        NodeKind::Map(entries) => {
            for e in entries {
                collect_scalar_spans(&e.key, out);
                collect_scalar_spans(&e.value, out);
            }
        }
    }
}

fn inside(spans: &[(usize, usize)], pos: usize) -> bool {
    let i = spans.partition_point(|&(s, _)| s <= pos);
    i > 0 && pos < spans[i - 1].1
}

/// Finds comment lines and `---` markers (1-based line numbers) outside every scalar.
fn scan_lines(src: &str, spans: &[(usize, usize)]) -> (Vec<Comment>, Vec<usize>) {
    let mut comments = Vec::new();
    let mut markers = Vec::new();
    let mut offset = 0;
    for (idx, raw) in src.split_inclusive('\n').enumerate() {
        let line_no = idx + 1;
        let line = raw.trim_end_matches(['\n', '\r']);
        let start = offset;
        offset += raw.len();
        let body = line.trim_start_matches([' ', '\t']);
        let indent = line.len() - body.len();
        if body.is_empty() {
            continue;
        }
        if (body == "---" || body.starts_with("--- ")) && indent == 0 && !inside(spans, start) {
            markers.push(line_no);
        }
        let bytes = line.as_bytes();
        for (i, &b) in bytes.iter().enumerate().skip(indent) {
            if b == b'#'
                && (i == indent || matches!(bytes[i - 1], b' ' | b'\t'))
                && !inside(spans, start + i)
            {
                comments.push(Comment {
                    line: line_no,
                    col: indent + 1,
                    text: line[i + 1..].to_string(),
                });
                break;
            }
        }
    }
    (comments, markers)
}

struct Builder<'a> {
    comments: VecDeque<Comment>,
    file: &'a str,
}

impl Builder<'_> {
    /// Comments up to and including `line` (trailing comments sit on their item's line).
    fn take_before(&mut self, line: usize) -> Vec<Text> {
        let mut out = Vec::new();
        while self.comments.front().is_some_and(|c| c.line <= line) {
            out.extend(self.comments.pop_front().map(|c| Text::new(c.text)));
        }
        out
    }

    /// Comments after a collection's last item that still belong to it.
    fn take_foot(&mut self, next_line: usize, parent_col: Option<usize>) -> Vec<Text> {
        let mut out = Vec::new();
        while self
            .comments
            .front()
            .is_some_and(|c| c.line < next_line && parent_col.is_none_or(|p| c.col > p))
        {
            out.extend(self.comments.pop_front().map(|c| Text::new(c.text)));
        }
        out
    }

    fn value(&mut self, node: &Node, next_line: usize, parent_col: Option<usize>) -> Result<Value> {
        match &node.kind {
            NodeKind::Scalar { .. } => Ok(scalar(node)),
            NodeKind::Map(entries) => {
                let mut items = Vec::with_capacity(entries.len());
                for (i, e) in entries.iter().enumerate() {
                    let line = e.key.span.start.line;
                    items.extend(self.take_before(line).into_iter().map(MapItem::Comment));
                    let Some(key) = e.key.as_scalar() else {
                        return Err(Error::Shape {
                            file: self.file.into(),
                            what: format!("line {line}: mapping keys must be strings"),
                        });
                    };
                    let next = entries
                        .get(i + 1)
                        .map_or(next_line, |n| n.key.span.start.line);
                    let v = self.value(&e.value, next, Some(e.key.span.start.column))?;
                    items.push(MapItem::Entry(key.to_string(), v));
                }
                if !entries.is_empty() {
                    items.extend(
                        self.take_foot(next_line, parent_col)
                            .into_iter()
                            .map(MapItem::Comment),
                    );
                }
                Ok(Value::Map(items))
            }
            NodeKind::Seq(seq) => {
                let mut items = Vec::with_capacity(seq.len());
                for (i, item) in seq.iter().enumerate() {
                    let line = item.span.start.line;
                    items.extend(self.take_before(line).into_iter().map(SeqItem::Comment));
                    let next = seq.get(i + 1).map_or(next_line, |n| n.span.start.line);
                    let col = item.span.start.column.saturating_sub(2).max(1);
                    items.push(SeqItem::Value(self.value(item, next, Some(col))?));
                }
                if !seq.is_empty() {
                    items.extend(
                        self.take_foot(next_line, parent_col)
                            .into_iter()
                            .map(SeqItem::Comment),
                    );
                }
                Ok(Value::Seq(items))
            }
        }
    }
}

/// A scalar under the YAML core schema, as go-yaml (and so sops) types it.
fn scalar(node: &Node) -> Value {
    let text = node.as_scalar().unwrap_or_default();
    match node.scalar_type() {
        Some(ScalarType::Null) => Value::Null,
        Some(ScalarType::Bool) => Value::Bool(text.eq_ignore_ascii_case("true")),
        Some(ScalarType::Int) => match parse_yaml_int(text) {
            Some(i) => Value::Int(i),
            None => parse_yaml_float(text).map_or_else(|| Value::str(text), Value::Float),
        },
        Some(ScalarType::Float) => {
            parse_yaml_float(text).map_or_else(|| Value::str(text), Value::Float)
        }
        _ => Value::str(text),
    }
}

/// Writes documents as a YAML stream in sops's layout.
pub(crate) fn emit_yaml(docs: &[&Value]) -> String {
    let mut out = String::new();
    for (i, d) in docs.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        match d {
            Value::Map(items) if !items.is_empty() => map_items(&mut out, items, 0, false),
            _ => out.push_str("{}\n"),
        }
    }
    out
}

fn pad(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

fn comment(out: &mut String, t: &Text) {
    out.push('#');
    out.push_str(t.as_str());
    out.push('\n');
}

fn has_content(v: &Value) -> bool {
    match v {
        Value::Map(m) => !m.is_empty(),
        Value::Seq(s) => !s.is_empty(),
        _ => false,
    }
}

/// The items of a mapping at `ind`; when `inline_first`, the first line's indentation is
/// already written (after `- `).
fn map_items(out: &mut String, items: &[MapItem], ind: usize, inline_first: bool) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 || !inline_first {
            pad(out, ind);
        }
        match item {
            MapItem::Comment(t) => comment(out, t),
            MapItem::Entry(k, v) => {
                out.push_str(&quote(k));
                out.push(':');
                match v {
                    Value::Map(m) if has_content(v) => {
                        out.push('\n');
                        map_items(out, m, ind + 4, false);
                    }
                    Value::Seq(s) if has_content(v) => {
                        out.push('\n');
                        seq_items(out, s, ind + 4, false);
                    }
                    _ => {
                        out.push(' ');
                        scalar_out(out, v, ind + 4);
                    }
                }
            }
        }
    }
}

fn seq_items(out: &mut String, items: &[SeqItem], ind: usize, inline_first: bool) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 || !inline_first {
            pad(out, ind);
        }
        match item {
            SeqItem::Comment(t) => comment(out, t),
            SeqItem::Value(v) => {
                out.push_str("- ");
                match v {
                    Value::Map(m) if has_content(v) => map_items(out, m, ind + 2, true),
                    Value::Seq(s) if has_content(v) => seq_items(out, s, ind + 2, true),
                    _ => scalar_out(out, v, ind + 4),
                }
            }
        }
    }
}

/// A scalar (or empty collection) after `key: ` or `- `, then the newline; literal blocks
/// are indented to `ind`.
fn scalar_out(out: &mut String, v: &Value, ind: usize) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::Float(f) => out.push_str(&float_yaml(*f)),
        Value::Str(s) if s.as_str().contains('\n') && literal_block_ok(s.as_str()) => {
            return write_literal_block(out, s.as_str(), ind)
        }
        Value::Str(s) => out.push_str(&quote(s.as_str())),
        Value::Map(_) => out.push_str("{}"),
        Value::Seq(_) => out.push_str("[]"),
    }
    out.push('\n');
}

/// Quotes a string when plain style would change its meaning (also for YAML 1.1 readers,
/// which read dates as timestamps).
fn quote(s: &str) -> String {
    let b = s.as_bytes();
    let date_like = b.len() >= 8 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-';
    if date_like {
        return serde_json::to_string(s).unwrap_or_default();
    }
    quote_if_needed(s)
}

/// Writes a document as tab-indented JSON (comments dropped), ending in a newline.
pub(crate) fn emit_json(doc: &Value) -> String {
    let mut out = String::new();
    json_value(&mut out, doc, 0);
    out.push('\n');
    out
}

fn tabs(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n('\t', n));
}

fn json_value(out: &mut String, v: &Value, depth: usize) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::Float(f) if f.is_finite() => out.push_str(&json_float(*f)),
        Value::Float(_) => out.push_str("null"),
        Value::Str(s) => out.push_str(&serde_json::to_string(s.as_str()).unwrap_or_default()),
        Value::Map(_) => {
            let entries: Vec<(&str, &Value)> = v.entries().collect();
            if entries.is_empty() {
                return out.push_str("{}");
            }
            out.push_str("{\n");
            for (i, (k, val)) in entries.iter().enumerate() {
                tabs(out, depth + 1);
                out.push_str(&serde_json::to_string(k).unwrap_or_default());
                out.push_str(": ");
                json_value(out, val, depth + 1);
                out.push_str(if i + 1 < entries.len() { ",\n" } else { "\n" });
            }
            tabs(out, depth);
            out.push('}');
        }
        Value::Seq(_) => {
            let items: Vec<&Value> = v.items().collect();
            if items.is_empty() {
                return out.push_str("[]");
            }
            out.push_str("[\n");
            for (i, val) in items.iter().enumerate() {
                tabs(out, depth + 1);
                json_value(out, val, depth + 1);
                out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
            }
            tabs(out, depth);
            out.push(']');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(v: &Value) -> Vec<String> {
        let mut out = Vec::new();
        fn walk(v: &Value, path: &str, out: &mut Vec<String>) {
            match v {
                Value::Map(m) => {
                    for i in m {
                        match i {
                            MapItem::Comment(t) => out.push(format!("{path}#{}", t.as_str())),
                            MapItem::Entry(k, v) => walk(v, &format!("{path}{k}:"), out),
                        }
                    }
                }
                Value::Seq(s) => {
                    for i in s {
                        match i {
                            SeqItem::Comment(t) => out.push(format!("{path}#{}", t.as_str())),
                            SeqItem::Value(v) => walk(v, path, out),
                        }
                    }
                }
                _ => {}
            }
        }
        walk(v, ":", &mut out);
        out
    }

    #[test]
    fn comments_land_in_their_collections() {
        let src = "# top\na:\n  # head of b\n  b: |\n    # not a comment\n    x\n  c: \"q # no\"\n  d: 1 # trailing\n  # foot of a\n# root again\ne:\n  - 1\n  # in list\n  - 2\nf: [1, 2] # tr\n";
        let docs = parse_yaml(src, "t.yaml").unwrap();
        assert_eq!(
            texts(&docs[0]),
            vec![
                ":# top",
                ":a:# head of b",
                ":a:# trailing",
                ":a:# foot of a",
                ":# root again",
                ":e:# in list",
                ":# tr"
            ]
        );
        let out = emit_yaml(&[&docs[0]]);
        let again = parse_yaml(&out, "t.yaml").unwrap();
        assert_eq!(texts(&again[0]), texts(&docs[0]), "{out}");
        assert_eq!(again, docs, "{out}");
    }

    #[test]
    fn types_round_trip_through_yaml_and_json() {
        let src = "s: \"1\"\ni: 0x1F\nf: 1.5e9\nb: TRUE\nn: ~\nm: |\n  two\n  lines\nl:\n- {a: 1}\n- [x, y]\n- []\nd: \"2024-01-01\"\n";
        let docs = parse_yaml(src, "t").unwrap();
        let v = &docs[0];
        assert_eq!(v.get("i"), Some(&Value::Int(31)));
        assert_eq!(v.get("f"), Some(&Value::Float(1.5e9)));
        assert_eq!(v.get("b"), Some(&Value::Bool(true)));
        assert_eq!(v.get("n"), Some(&Value::Null));
        let y = emit_yaml(&[v]);
        assert!(y.contains("d: \"2024-01-01\""), "{y}");
        assert_eq!(&parse_yaml(&y, "t").unwrap()[0], v, "{y}");
        let j = emit_json(v);
        let back = parse_json(&j, "t").unwrap();
        assert_eq!(
            back.get("i"),
            Some(&Value::Float(31.0)),
            "JSON numbers are floats, as in sops: {j}"
        );
        assert_eq!(back.get("s"), v.get("s"));
        assert_eq!(
            back.get("l"),
            v.get("l")
                .map(|l| {
                    let mut l = l.clone();
                    ints_to_floats(&mut l);
                    l
                })
                .as_ref()
        );
        assert!(
            j.contains("\"f\": 1500000000,") && j.contains("\"i\": 31,"),
            "{j}"
        );
        assert_eq!(json_float(1e21), "1e+21");
        assert_eq!(json_float(1e-7), "1e-7");
    }

    #[test]
    fn multiple_documents_keep_their_comments() {
        let src = "a: 1\n# one\n---\n# two\nb: 2\n";
        let docs = parse_yaml(src, "t").unwrap();
        assert_eq!(texts(&docs[0]), vec![":# one"]);
        assert_eq!(texts(&docs[1]), vec![":# two"]);
    }

    #[test]
    fn non_mapping_documents_are_refused() {
        assert!(matches!(parse_yaml("- a\n", "t"), Err(Error::Shape { .. })));
        assert!(matches!(parse_json("[1]", "t"), Err(Error::Shape { .. })));
    }
}
