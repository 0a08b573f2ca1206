//! Writing trees back out as a deterministic, block-style YAML stream.
//!
//! Sequences under a mapping key are not indented (`key:\n- item`), as `kubectl kustomize`
//! writes them. Plain scalars that mean numbers, booleans or null stay plain; strings are written
//! plain when that is unambiguous (also for YAML 1.1 readers: `yes`, `on`, `0755` are quoted),
//! as a literal block when they span lines, and double-quoted otherwise.

use std::fmt::Write;

use crate::node::{plain_type, Node, NodeKind, ScalarStyle, ScalarType};

/// Writes documents as a YAML stream, `---` between them, ending in a newline.
pub fn emit_stream<'a>(docs: impl IntoIterator<Item = &'a Node>) -> String {
    let mut out = String::new();
    for (i, d) in docs.into_iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&emit_document(d));
    }
    out
}

/// Writes one document (without a `---` line), ending in a newline.
pub fn emit_document(root: &Node) -> String {
    let mut out = String::new();
    match &root.kind {
        NodeKind::Map(e) if !e.is_empty() => block_map(&mut out, root, 0),
        NodeKind::Seq(s) if !s.is_empty() => block_seq(&mut out, root, 0),
        _ => {
            out.push_str(&inline(root));
            out.push('\n');
        }
    }
    out
}

fn indent(out: &mut String, n: usize) {
    for _ in 0..n {
        out.push(' ');
    }
}

fn is_block(n: &Node) -> bool {
    match &n.kind {
        NodeKind::Map(e) => !e.is_empty(),
        NodeKind::Seq(s) => !s.is_empty(),
        NodeKind::Scalar { .. } => false,
    }
}

fn tag_prefix(n: &Node) -> String {
    match &n.tag {
        None => String::new(),
        Some(t) => match t.strip_prefix("tag:yaml.org,2002:") {
            Some(short) => format!("!!{short} "),
            None => format!("{t} "),
        },
    }
}

/// Writes the entries of a non-empty map, each line indented by `ind`.
fn block_map(out: &mut String, n: &Node, ind: usize) {
    let NodeKind::Map(entries) = &n.kind else {
        return;
    };
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            indent(out, ind);
        }
        out.push_str(&key(&e.key));
        out.push(':');
        value_after_key(out, &e.value, ind);
    }
}

fn value_after_key(out: &mut String, v: &Node, ind: usize) {
    match &v.kind {
        NodeKind::Map(e) if !e.is_empty() => {
            let t = tag_prefix(v);
            if !t.is_empty() {
                out.push(' ');
                out.push_str(t.trim_end());
            }
            out.push('\n');
            indent(out, ind + 2);
            block_map(out, v, ind + 2);
        }
        NodeKind::Seq(s) if !s.is_empty() => {
            let t = tag_prefix(v);
            if !t.is_empty() {
                out.push(' ');
                out.push_str(t.trim_end());
            }
            out.push('\n');
            indent(out, ind);
            block_seq(out, v, ind);
        }
        _ => {
            out.push(' ');
            scalar_or_empty(out, v, ind + 2);
        }
    }
}

fn block_seq(out: &mut String, n: &Node, ind: usize) {
    let NodeKind::Seq(items) = &n.kind else {
        return;
    };
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            indent(out, ind);
        }
        out.push_str("- ");
        match &item.kind {
            NodeKind::Map(e) if !e.is_empty() && item.tag.is_none() => {
                block_map(out, item, ind + 2)
            }
            NodeKind::Seq(s) if !s.is_empty() && item.tag.is_none() => {
                block_seq(out, item, ind + 2)
            }
            _ if is_block(item) => {
                out.push_str(tag_prefix(item).trim_end());
                out.push('\n');
                indent(out, ind + 2);
                if item.as_map().is_some() {
                    block_map(out, item, ind + 2)
                } else {
                    block_seq(out, item, ind + 2)
                }
            }
            _ => scalar_or_empty(out, item, ind + 2),
        }
    }
}

/// A scalar or empty collection after `key: ` or `- `, then the newline.
fn scalar_or_empty(out: &mut String, n: &Node, ind: usize) {
    if let NodeKind::Scalar { value, .. } = &n.kind {
        if value.contains('\n')
            && n.scalar_type() == Some(ScalarType::Str)
            && literal_block_ok(value)
        {
            out.push_str(&tag_prefix(n));
            write_literal_block(out, value, ind);
            return;
        }
    }
    out.push_str(&inline(n));
    out.push('\n');
}

/// Whether `v` can be written as a YAML literal block scalar (`|`) and read back unchanged: no
/// leading white space or blank first line, no trailing white space on a line, and no control
/// characters, byte-order marks or Unicode line separators.
pub fn literal_block_ok(v: &str) -> bool {
    !v.starts_with([' ', '\t', '\n'])
        && v.split('\n').all(|l| !l.ends_with([' ', '\t']))
        && v.chars().all(|c| {
            c == '\n' || !(c.is_control() || matches!(c, '\u{feff}' | '\u{2028}' | '\u{2029}'))
        })
}

/// Appends `v` as a literal block scalar whose lines are indented by `ind` spaces: the `|`
/// header (with `-` or `+` for the trailing newlines), a newline, then the lines. The caller
/// checks [`literal_block_ok`] first.
pub fn write_literal_block(out: &mut String, v: &str, ind: usize) {
    let trailing = v.len() - v.trim_end_matches('\n').len();
    out.push_str(match trailing {
        0 => "|-",
        1 => "|",
        _ => "|+",
    });
    out.push('\n');
    for line in v.trim_end_matches('\n').split('\n') {
        if !line.is_empty() {
            indent(out, ind);
            out.push_str(line);
        }
        out.push('\n');
    }
    for _ in 1..trailing {
        out.push('\n');
    }
}

fn key(k: &Node) -> String {
    match &k.kind {
        NodeKind::Scalar { .. } => inline(k),
        _ => format!("? {}\n", inline(k)).trim_end().to_string() + "\n",
    }
}

/// A node on one line: scalars as described in the module docs, collections in flow style.
fn inline(n: &Node) -> String {
    let mut s = tag_prefix(n);
    match &n.kind {
        NodeKind::Scalar { value, style } => {
            let keep_plain = *style == ScalarStyle::Plain
                && n.tag.is_none()
                && plain_type(value) != ScalarType::Str;
            if keep_plain {
                s.push_str(if value.is_empty() { "null" } else { value });
            } else if n.tag.is_some() && !matches!(n.scalar_type(), Some(ScalarType::Str)) {
                s.push_str(value);
            } else {
                s.push_str(&quote_if_needed(value));
            }
        }
        NodeKind::Seq(items) => {
            s.push('[');
            for (i, it) in items.iter().enumerate() {
                if i > 0 {
                    s.push_str(", ");
                }
                s.push_str(&inline(it));
            }
            s.push(']');
        }
        NodeKind::Map(entries) => {
            s.push('{');
            for (i, e) in entries.iter().enumerate() {
                if i > 0 {
                    s.push_str(", ");
                }
                s.push_str(&inline(&e.key));
                s.push_str(": ");
                s.push_str(&inline(&e.value));
            }
            s.push('}');
        }
    }
    s
}

/// A string as a YAML scalar: plain when unambiguous, else double-quoted with escapes.
pub fn quote_if_needed(v: &str) -> String {
    if plain_safe(v) {
        return v.to_string();
    }
    let mut s = String::with_capacity(v.len() + 2);
    s.push('"');
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\t' => s.push_str("\\t"),
            '\r' => s.push_str("\\r"),
            '\0' => s.push_str("\\0"),
            c if c.is_control() || c == '\u{feff}' || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(s, "\\u{:04x}", c as u32);
            }
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

fn plain_safe(v: &str) -> bool {
    if v.is_empty() || plain_type(v) != ScalarType::Str || v != v.trim() {
        return false;
    }
    let first = v.chars().next().unwrap_or(' ');
    if "-?:,[]{}#&*!|>'\"%@`".contains(first) {
        return false;
    }
    if v.contains(": ") || v.contains(" #") || v.ends_with(':') {
        return false;
    }
    if v.chars().any(|c| {
        c.is_control() || c == '\u{feff}' || c == '\u{2028}' || c == '\u{2029}' || c == '\u{85}'
    }) {
        return false;
    }
    // YAML 1.1 readers (go-yaml v2, PyYAML) see these as booleans or numbers.
    let lower = v.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "y" | "n" | "yes" | "no" | "on" | "off" | "="
    ) {
        return false;
    }
    let numberish = v.starts_with(|c: char| c.is_ascii_digit() || c == '+' || c == '.')
        && v.chars()
            .all(|c| c.is_ascii_hexdigit() || "xXoObB_:.+-".contains(c));
    !numberish
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_stream;

    fn roundtrip(src: &str) -> String {
        let docs = parse_stream(src).unwrap();
        emit_stream(docs.iter().map(|d| &d.root))
    }

    #[test]
    fn kubernetes_shapes() {
        let src = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: a\n  labels: {}\ndata:\n  k: \"123\"\n  num: 5\nlist:\n- a\n- b: 1\n  c: [x]\n";
        let out = roundtrip(src);
        assert_eq!(out, "apiVersion: v1\nkind: Secret\nmetadata:\n  name: a\n  labels: {}\ndata:\n  k: \"123\"\n  num: 5\nlist:\n- a\n- b: 1\n  c:\n  - x\n");
        assert_eq!(roundtrip(&out), out);
    }

    #[test]
    fn strings_quote_when_needed() {
        for v in [
            "yes", "on", "0755", "1:20", "true", "null", "", " x", "a: b", "#x", "-x", "a\tb",
            "10", "1e3",
        ] {
            let q = quote_if_needed(v);
            assert!(q.starts_with('"'), "{v:?} -> {q}");
            let back = parse_stream(&format!("k: {q}\n")).unwrap();
            assert_eq!(back[0].root.get("k").unwrap().as_str(), Some(v));
        }
        assert_eq!(quote_if_needed("hello-world"), "hello-world");
        assert_eq!(quote_if_needed("<path:kv/data/a#b>"), "<path:kv/data/a#b>");
    }

    #[test]
    fn multiline_strings_round_trip() {
        for v in ["a\nb\n", "a\nb", "a\n\n", "  lead\nx", "x \ny"] {
            let mut n = crate::Node::map();
            n.insert("k", crate::Node::string(v));
            let out = emit_document(&n);
            let back = parse_stream(&out).unwrap();
            assert_eq!(back[0].root.get("k").unwrap().as_str(), Some(v), "{out}");
        }
    }
}
