//! Building [`Node`] trees from saphyr-parser's event stream.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle as PStyle};

use crate::node::{Entry, Node, NodeKind, ScalarStyle};
use crate::span::{CharToByte, Pos, Span};

/// One document of a stream.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    /// The document's root node.
    pub root: Node,
    /// Zero-based position of the document in its stream.
    pub index: usize,
}

/// Bounds that keep hostile input from exhausting memory or the stack.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Most nodes an alias may copy in, summed over the stream ("billion laughs" guard).
    pub max_alias_nodes: usize,
    /// Deepest nesting of collections.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_alias_nodes: 100_000,
            max_depth: 256,
        }
    }
}

/// Why a stream could not be read; `pos` says where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    /// Where the problem is.
    pub pos: Pos,
    /// What was wrong, in the YAML parser's words or ours.
    pub message: String,
}

/// Parses a YAML (or JSON) stream with the default [`Limits`].
pub fn parse_stream(src: &str) -> Result<Vec<Document>, ParseError> {
    parse_stream_with(src, Limits::default())
}

enum Frame {
    Seq {
        items: Vec<Node>,
        start: Pos,
        tag: Option<String>,
        anchor: usize,
    },
    Map {
        entries: Vec<Entry>,
        key: Option<Node>,
        start: Pos,
        tag: Option<String>,
        anchor: usize,
    },
}

impl Frame {
    /// The finished collection ending at `end`, and its anchor id (0 for none).
    fn close(self, end: Pos) -> (Node, usize) {
        let (kind, start, tag, anchor) = match self {
            Frame::Seq {
                items,
                start,
                tag,
                anchor,
            } => (NodeKind::Seq(items), start, tag, anchor),
            Frame::Map {
                entries,
                start,
                tag,
                anchor,
                ..
            } => (NodeKind::Map(entries), start, tag, anchor),
        };
        let span = Span { start, end };
        (Node { kind, span, tag }, anchor)
    }
}

/// Parses a YAML (or JSON) stream.
///
/// Empty documents (a lone `---`, comments only) are skipped; the `index` of each returned
/// document still counts them, so it matches the document's position in the file.
pub fn parse_stream_with(src: &str, limits: Limits) -> Result<Vec<Document>, ParseError> {
    let (body, base) = match src.strip_prefix('\u{feff}') {
        Some(rest) => (rest, '\u{feff}'.len_utf8()),
        None => (src, 0),
    };
    let mut conv = CharToByte::new(body, base);
    let mut docs = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let mut alias_budget = limits.max_alias_nodes;
    let mut doc_index = 0usize;
    let mut root: Option<Node> = None;

    for ev in Parser::new_from_str(body) {
        let (ev, span) = ev.map_err(|e| {
            let pos = conv.pos(*e.marker());
            ParseError {
                pos,
                message: e.info().to_string(),
            }
        })?;
        let start = conv.pos(span.start);
        let end = conv.pos(span.end);
        let done: Option<(Node, usize)> = match ev {
            Event::StreamStart | Event::StreamEnd | Event::Nothing => None,
            Event::DocumentStart(_) => {
                root = None;
                anchors.clear();
                None
            }
            Event::DocumentEnd => {
                if let Some(r) = root.take() {
                    let empty = r.is_null();
                    if !empty {
                        docs.push(Document {
                            root: r,
                            index: doc_index,
                        });
                    }
                }
                doc_index += 1;
                None
            }
            Event::Alias(id) => {
                let Some(n) = anchors.get(&id) else {
                    return Err(ParseError {
                        pos: start,
                        message: "alias to an unknown anchor".into(),
                    });
                };
                let size = count_nodes(n);
                if size > alias_budget {
                    return Err(ParseError {
                        pos: start,
                        message: format!(
                            "aliases expand to more than {} nodes; this looks like an alias bomb",
                            limits.max_alias_nodes
                        ),
                    });
                }
                alias_budget -= size;
                let mut copy = n.clone();
                copy.span = Span { start, end };
                Some((copy, 0))
            }
            Event::Scalar(value, style, anchor, tag) => {
                let style = match style {
                    PStyle::Plain => ScalarStyle::Plain,
                    PStyle::SingleQuoted => ScalarStyle::SingleQuoted,
                    PStyle::DoubleQuoted => ScalarStyle::DoubleQuoted,
                    PStyle::Literal => ScalarStyle::Literal,
                    PStyle::Folded => ScalarStyle::Folded,
                };
                let tag = tag.map(|t| format!("{}{}", t.handle, t.suffix));
                let node = Node {
                    kind: NodeKind::Scalar {
                        value: value.into_owned(),
                        style,
                    },
                    span: Span { start, end },
                    tag,
                };
                Some((node, anchor))
            }
            Event::SequenceStart(anchor, tag) => {
                if stack.len() >= limits.max_depth {
                    return Err(depth_error(start, limits));
                }
                let tag = tag.map(|t| format!("{}{}", t.handle, t.suffix));
                stack.push(Frame::Seq {
                    items: Vec::new(),
                    start,
                    tag,
                    anchor,
                });
                None
            }
            Event::MappingStart(anchor, tag) => {
                if stack.len() >= limits.max_depth {
                    return Err(depth_error(start, limits));
                }
                let tag = tag.map(|t| format!("{}{}", t.handle, t.suffix));
                stack.push(Frame::Map {
                    entries: Vec::new(),
                    key: None,
                    start,
                    tag,
                    anchor,
                });
                None
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let closed = match (ev, stack.pop()) {
                    (Event::SequenceEnd, Some(f @ Frame::Seq { .. }))
                    | (Event::MappingEnd, Some(f @ Frame::Map { .. })) => f,
                    (ev, _) => {
                        let what = match ev {
                            Event::SequenceEnd => "sequence",
                            _ => "mapping",
                        };
                        return Err(ParseError {
                            pos: start,
                            message: format!("unbalanced {what} end"),
                        });
                    }
                };
                Some(closed.close(end))
            }
        };
        if let Some((node, anchor)) = done {
            if anchor != 0 {
                anchors.insert(anchor, node.clone());
            }
            match stack.last_mut() {
                None => root = Some(node),
                Some(Frame::Seq { items, .. }) => items.push(node),
                Some(Frame::Map { entries, key, .. }) => match key.take() {
                    None => *key = Some(node),
                    Some(k) => {
                        if k.as_scalar() == Some("<<") && k.tag.is_none() {
                            merge_into(entries, node);
                        } else {
                            entries.push(Entry {
                                key: k,
                                value: node,
                            });
                        }
                    }
                },
            }
        }
    }
    Ok(docs)
}

/// YAML merge keys (`<<: *base`): entries of the merged map(s) that the map does not set itself.
fn merge_into(entries: &mut Vec<Entry>, merged: Node) {
    let sources: Vec<Node> = match merged.kind {
        NodeKind::Seq(items) => items,
        _ => vec![merged],
    };
    for src in sources {
        if let NodeKind::Map(src_entries) = src.kind {
            for e in src_entries {
                let k = e.key.as_scalar();
                if !entries.iter().any(|x| x.key.as_scalar() == k) {
                    entries.push(e);
                }
            }
        }
    }
}

fn depth_error(pos: Pos, limits: Limits) -> ParseError {
    ParseError {
        pos,
        message: format!("nesting deeper than {} levels", limits.max_depth),
    }
}

fn count_nodes(n: &Node) -> usize {
    match &n.kind {
        NodeKind::Scalar { .. } => 1,
        NodeKind::Seq(items) => 1 + items.iter().map(count_nodes).sum::<usize>(),
        NodeKind::Map(entries) => {
            1 + entries
                .iter()
                .map(|e| count_nodes(&e.key) + count_nodes(&e.value))
                .sum::<usize>()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{objects, Object};

    fn data_key(src: &str) -> (usize, usize) {
        let docs = parse_stream(src).unwrap();
        let e = docs[0].root.get("data").unwrap().as_map().unwrap()[0].clone();
        (e.key.span.start.line, e.key.span.start.column)
    }

    #[test]
    fn multi_document_with_comment_after_separator_and_trailing_spaces() {
        let src = "--- # first\nkind: A\n---   \n# only a comment\n---\nkind: B\n...\n";
        let docs = parse_stream(src).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].root.get("kind").unwrap().as_str(), Some("B"));
        assert_eq!(docs[1].index, 2);
    }

    #[test]
    fn crlf_and_bom_keep_positions() {
        let src = "\u{feff}kind: Secret\r\ndata:\r\n  password: c2VjcmV0\r\n";
        let docs = parse_stream(src).unwrap();
        let v = docs[0].root.get_path(&["data", "password"]).unwrap();
        assert_eq!(v.as_str(), Some("c2VjcmV0"));
        assert_eq!((v.span.start.line, v.span.start.column), (3, 13));
        assert_eq!(&src[v.span.range()], "c2VjcmV0");
        assert_eq!(data_key(src), (3, 3));
    }

    #[test]
    fn non_ascii_offsets_are_bytes() {
        let src = "a: \"héllo wörld\"\ndata:\n  k: vålue\n";
        let docs = parse_stream(src).unwrap();
        let v = docs[0].root.get_path(&["data", "k"]).unwrap();
        assert_eq!(&src[v.span.range()], "vålue");
    }

    #[test]
    fn flow_style_quoted_keys_and_block_scalars() {
        let src = "{\"kind\": \"Secret\", data: {k: v}}\n---\nstringData:\n  a: |\n    line1\n    line2\n  b: >\n    folded\n    text\n";
        let docs = parse_stream(src).unwrap();
        assert_eq!(Object::new(&docs[0].root).kind(), Some("Secret"));
        assert_eq!(
            docs[0].root.get_path(&["data", "k"]).unwrap().as_str(),
            Some("v")
        );
        assert_eq!(
            docs[1]
                .root
                .get_path(&["stringData", "a"])
                .unwrap()
                .as_str(),
            Some("line1\nline2\n")
        );
        assert_eq!(
            docs[1]
                .root
                .get_path(&["stringData", "b"])
                .unwrap()
                .as_str(),
            Some("folded text\n")
        );
    }

    #[test]
    fn json_manifest() {
        let src =
            r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"x"},"data":{"k":"dg=="}}"#;
        let docs = parse_stream(src).unwrap();
        let o = Object::new(&docs[0].root);
        assert!(o.is_secret());
        assert_eq!(o.name(), Some("x"));
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let src = "base: &b {user: admin}\nuse: *b\nmerged:\n  <<: *b\n  extra: 1\n";
        let docs = parse_stream(src).unwrap();
        assert_eq!(
            docs[0].root.get_path(&["use", "user"]).unwrap().as_str(),
            Some("admin")
        );
        assert_eq!(
            docs[0].root.get_path(&["merged", "user"]).unwrap().as_str(),
            Some("admin")
        );
    }

    #[test]
    fn billion_laughs_is_an_error_not_a_hang() {
        let mut src = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let prev = if i == 1 {
                "a".to_string()
            } else {
                format!("a{}", i - 1)
            };
            src.push_str(&format!("a{i}: &a{i} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
        }
        let err = parse_stream(&src).unwrap_err();
        assert!(err.message.contains("alias"), "{err}");
    }

    #[test]
    fn deep_nesting_is_an_error() {
        let src = "[".repeat(10_000);
        assert!(parse_stream(&src).is_err());
    }

    #[test]
    fn list_items_are_objects() {
        let src = "kind: List\nitems:\n- kind: Secret\n  metadata: {name: a}\n- kind: ConfigMap\n";
        let docs = parse_stream(src).unwrap();
        let objs = objects(&docs[0].root);
        assert_eq!(objs.len(), 2);
        assert_eq!(Object::new(objs[0]).name(), Some("a"));
    }

    #[test]
    fn syntax_error_has_position() {
        let err = parse_stream("a: b\n  c: [\n").unwrap_err();
        assert!(err.pos.line >= 1);
    }
}
