//! Building [`Node`] trees from saphyr-parser's event stream.
//!
//! [`parse_stream_partial`] keeps every document read before a problem and says where the
//! problem is, so a caller that must not fail open (the scanner) can judge what was read and
//! report the rest; [`parse_stream`] is all or nothing.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

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
    /// Keys that a mapping of this document repeats, in source order (at most
    /// [`MAX_DUPLICATES`]; [`Document::duplicates_dropped`] counts the rest). YAML forbids
    /// them, and readers disagree on which one wins: this crate's [`Node::get`] reads the
    /// first, kubectl the last.
    pub duplicates: Vec<Duplicate>,
    /// Repeated keys beyond [`MAX_DUPLICATES`], not listed.
    pub duplicates_dropped: usize,
}

/// Most repeated keys listed per document.
pub const MAX_DUPLICATES: usize = 1000;

/// A key that a mapping repeats.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Duplicate {
    /// The key's text.
    pub key: String,
    /// Where the mapping first has it.
    pub first: Span,
    /// Where it comes again.
    pub again: Span,
}

/// What [`parse_stream_partial`] read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Parsed {
    /// Every document read in full.
    pub docs: Vec<Document>,
    /// The first problem, if any. After a syntax error nothing further is read; after a
    /// document over a [`Limits`] bound, that document is dropped and reading goes on with the
    /// next one.
    pub error: Option<ParseError>,
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

/// Parses a YAML (or JSON) stream; all or nothing: the first problem is the error.
pub fn parse_stream_with(src: &str, limits: Limits) -> Result<Vec<Document>, ParseError> {
    let parsed = parse_stream_partial(src, limits);
    match parsed.error {
        Some(e) => Err(e),
        None => Ok(parsed.docs),
    }
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
        /// Hash of each scalar key -> index of its first entry, to find repeated keys.
        seen: HashMap<u64, usize>,
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

/// Parses a YAML (or JSON) stream, keeping what could be read.
///
/// Empty documents (a lone `---`, comments only) are skipped; the `index` of each returned
/// document still counts them, so it matches the document's position in the file.
pub fn parse_stream_partial(src: &str, limits: Limits) -> Parsed {
    let (body, base) = match src.strip_prefix('\u{feff}') {
        Some(rest) => (rest, '\u{feff}'.len_utf8()),
        None => (src, 0),
    };
    let mut b = Builder {
        limits,
        docs: Vec::new(),
        stack: Vec::new(),
        anchors: HashMap::new(),
        alias_budget: limits.max_alias_nodes,
        doc_index: 0,
        root: None,
        duplicates: Vec::new(),
        duplicates_dropped: 0,
        skipping: false,
        error: None,
    };
    // After a syntax error the parser cannot go on: read on from the next `---` line.
    let (mut rest, mut offset, mut line_base) = (body, base, 0usize);
    loop {
        let mut conv = CharToByte::new(rest, offset).with_line_base(line_base);
        let mut failed_at = None;
        for ev in Parser::new_from_str(rest) {
            let (ev, span) = match ev {
                Ok(x) => x,
                Err(e) => {
                    let pos = conv.pos(*e.marker());
                    b.fail(ParseError {
                        pos,
                        message: plain_message(e.info()),
                    });
                    failed_at = Some(pos);
                    break;
                }
            };
            let start = conv.pos(span.start);
            let end = conv.pos(span.end);
            if let Err(e) = b.event(ev, start, end) {
                // A document over a bound: drop it, read on from the next one.
                b.fail(e);
                b.skipping = true;
                b.stack.clear();
                b.root = None;
            }
        }
        let Some(at) = failed_at else { break };
        let Some(skip) = next_document(rest, at.offset - offset) else {
            break;
        };
        b.stack.clear();
        b.root = None;
        b.skipping = false;
        b.doc_index += 1;
        line_base += rest.as_bytes()[..skip]
            .iter()
            .filter(|&&c| c == b'\n')
            .count();
        rest = &rest[skip..];
        offset += skip;
    }
    Parsed {
        docs: b.docs,
        error: b.error,
    }
}

/// Where the next document starts after byte `from` of `text`: the start of the next line
/// that is a `---` marker.
fn next_document(text: &str, from: usize) -> Option<usize> {
    let mut at = from.min(text.len());
    loop {
        at += text[at..].find('\n')? + 1;
        let line = &text[at..];
        if let Some(after) = line.strip_prefix("---") {
            if after
                .chars()
                .next()
                .is_none_or(|c| c == ' ' || c == '\t' || c == '\r' || c == '\n')
            {
                return Some(at);
            }
        }
    }
}

/// The parser's message without the text it quotes (it may quote a character of a value).
fn plain_message(info: &str) -> String {
    match info.find('`') {
        Some(i) => info[..i].trim_end().trim_end_matches(':').to_string(),
        None => info.to_string(),
    }
}

/// The state of building one stream's documents.
struct Builder {
    limits: Limits,
    docs: Vec<Document>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    alias_budget: usize,
    doc_index: usize,
    root: Option<Node>,
    duplicates: Vec<Duplicate>,
    duplicates_dropped: usize,
    /// The current document went over a bound: ignore events until it ends.
    skipping: bool,
    error: Option<ParseError>,
}

impl Builder {
    fn fail(&mut self, e: ParseError) {
        if self.error.is_none() {
            self.error = Some(e);
        }
    }

    fn event(&mut self, ev: Event<'_>, start: Pos, end: Pos) -> Result<(), ParseError> {
        let limits = self.limits;
        match ev {
            Event::DocumentStart(_) => {
                self.root = None;
                self.anchors.clear();
                self.duplicates.clear();
                self.duplicates_dropped = 0;
                self.skipping = false;
                return Ok(());
            }
            Event::DocumentEnd => {
                if let Some(r) = self.root.take() {
                    if !r.is_null() && !self.skipping {
                        self.docs.push(Document {
                            root: r,
                            index: self.doc_index,
                            duplicates: std::mem::take(&mut self.duplicates),
                            duplicates_dropped: self.duplicates_dropped,
                        });
                    }
                }
                self.skipping = false;
                self.doc_index += 1;
                return Ok(());
            }
            _ if self.skipping => return Ok(()),
            _ => {}
        }
        let done: Option<(Node, usize)> = match ev {
            Event::StreamStart
            | Event::StreamEnd
            | Event::Nothing
            | Event::DocumentStart(_)
            | Event::DocumentEnd => None,
            Event::Alias(id) => {
                let Some(n) = self.anchors.get(&id) else {
                    return Err(ParseError {
                        pos: start,
                        message: "alias to an unknown anchor".into(),
                    });
                };
                let size = count_nodes(n);
                if size > self.alias_budget {
                    return Err(ParseError {
                        pos: start,
                        message: format!(
                            "aliases expand to more than {} nodes; this looks like an alias bomb",
                            limits.max_alias_nodes
                        ),
                    });
                }
                self.alias_budget -= size;
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
                if self.stack.len() >= limits.max_depth {
                    return Err(depth_error(start, limits));
                }
                let tag = tag.map(|t| format!("{}{}", t.handle, t.suffix));
                self.stack.push(Frame::Seq {
                    items: Vec::new(),
                    start,
                    tag,
                    anchor,
                });
                None
            }
            Event::MappingStart(anchor, tag) => {
                if self.stack.len() >= limits.max_depth {
                    return Err(depth_error(start, limits));
                }
                let tag = tag.map(|t| format!("{}{}", t.handle, t.suffix));
                self.stack.push(Frame::Map {
                    entries: Vec::new(),
                    key: None,
                    start,
                    tag,
                    anchor,
                    seen: HashMap::new(),
                });
                None
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let closed = match (ev, self.stack.pop()) {
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
                self.anchors.insert(anchor, node.clone());
            }
            self.attach(node);
        }
        Ok(())
    }

    /// Puts a finished node where it belongs: the root, a sequence item, a key or a value.
    fn attach(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                entries, key, seen, ..
            }) => match key.take() {
                None => *key = Some(node),
                Some(k) => {
                    if k.as_scalar() == Some("<<") && k.tag.is_none() {
                        merge_into(entries, node);
                        return;
                    }
                    if let Some(text) = k.as_scalar() {
                        let mut h = DefaultHasher::new();
                        text.hash(&mut h);
                        let first = match seen.entry(h.finish()) {
                            std::collections::hash_map::Entry::Vacant(v) => {
                                v.insert(entries.len());
                                None
                            }
                            std::collections::hash_map::Entry::Occupied(o) => {
                                // Equal hashes: the same key unless a rare collision.
                                let i = *o.get();
                                (entries[i].key.as_scalar() == Some(text))
                                    .then(|| entries[i].key.span)
                                    .or_else(|| {
                                        entries
                                            .iter()
                                            .find(|e| e.key.as_scalar() == Some(text))
                                            .map(|e| e.key.span)
                                    })
                            }
                        };
                        if let Some(first) = first {
                            if self.duplicates.len() < MAX_DUPLICATES {
                                self.duplicates.push(Duplicate {
                                    key: text.to_string(),
                                    first,
                                    again: k.span,
                                });
                            } else {
                                self.duplicates_dropped += 1;
                            }
                        }
                    }
                    entries.push(Entry {
                        key: k,
                        value: node,
                    });
                }
            },
        }
    }
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
    fn partial_parse_keeps_documents_before_a_problem() {
        let deep = format!("{}{}", "[".repeat(300), "]".repeat(300));
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..7 {
            let prev = if i == 1 {
                "a".to_string()
            } else {
                format!("a{}", i - 1)
            };
            bomb.push_str(&format!("a{i}: &a{i} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
        }
        for bad in [
            deep.as_str(),
            bomb.as_str(),
            "a: b\n  c: [\n",
            "k: \"\\ud800\"\n",
        ] {
            let src = format!("kind: A\n---\n{bad}\n---\nkind: C\n");
            let p = parse_stream_partial(&src, Limits::default());
            let err = p.error.expect("an error");
            assert!(err.pos.line >= 3, "{bad}: {err:?}");
            assert_eq!(p.docs[0].root.get("kind").unwrap().as_str(), Some("A"));
            // Reading goes on with the next document, at its real line.
            let c = p.docs.last().unwrap().root.get("kind").unwrap();
            assert_eq!(c.as_str(), Some("C"), "{bad}");
            assert_eq!(c.span.start.line, src.lines().count(), "{bad}");
            assert_eq!(&src[c.span.range()], "C");
            assert!(parse_stream(&src).is_err());
        }
    }

    #[test]
    fn repeated_keys_are_listed_and_all_kept() {
        let src = "kind: ConfigMap\ndata:\n  a: x\n  a: y\nkind: Secret\n";
        let docs = parse_stream(src).unwrap();
        let d = &docs[0];
        let dups: Vec<_> = d
            .duplicates
            .iter()
            .map(|x| (x.key.as_str(), x.first.start.line, x.again.start.line))
            .collect();
        assert_eq!(dups, [("a", 3, 4), ("kind", 1, 5)]);
        let kinds: Vec<_> = d.root.get_all("kind").filter_map(Node::as_str).collect();
        assert_eq!(kinds, ["ConfigMap", "Secret"]);
    }

    #[test]
    fn parser_messages_do_not_quote_the_input() {
        assert_eq!(
            plain_message("unexpected character: `@'"),
            "unexpected character"
        );
        assert_eq!(plain_message("invalid indentation"), "invalid indentation");
    }

    #[test]
    fn syntax_error_has_position() {
        let err = parse_stream("a: b\n  c: [\n").unwrap_err();
        assert!(err.pos.line >= 1);
    }
}
