//! The document tree.

use crate::span::Span;

/// How a scalar was written in the source; the emitter uses it to keep plain numbers plain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScalarStyle {
    /// `value`
    Plain,
    /// `'value'`
    SingleQuoted,
    /// `"value"`
    DoubleQuoted,
    /// `|` block
    Literal,
    /// `>` block
    Folded,
}

/// What a scalar means under the YAML 1.2 core schema (what Kubernetes and sops read).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScalarType {
    /// `null`, `~` or empty
    Null,
    /// `true` / `false`
    Bool,
    /// An integer
    Int,
    /// A float
    Float,
    /// Anything else, or any quoted or block scalar
    Str,
}

/// One node of a document.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// What the node holds.
    pub kind: NodeKind,
    /// Where it was in the source (a default span for nodes built in code).
    pub span: Span,
    /// An explicit tag such as `!!binary`, if any.
    pub tag: Option<String>,
}

/// The three kinds of YAML node.
#[derive(Clone, Debug, PartialEq)]
pub enum NodeKind {
    /// A scalar with its decoded value and the style it was written in.
    Scalar {
        /// The decoded text.
        value: String,
        /// How it was written.
        style: ScalarStyle,
    },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in source order.
    Map(Vec<Entry>),
}

/// One key/value pair of a mapping.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The key node (usually a string scalar).
    pub key: Node,
    /// The value node.
    pub value: Node,
}

impl Node {
    /// A string scalar built in code; the emitter quotes it when needed.
    pub fn string(value: impl Into<String>) -> Node {
        Node::scalar(value, ScalarStyle::DoubleQuoted)
    }

    /// A scalar with an explicit style.
    pub fn scalar(value: impl Into<String>, style: ScalarStyle) -> Node {
        Node {
            kind: NodeKind::Scalar {
                value: value.into(),
                style,
            },
            span: Span::default(),
            tag: None,
        }
    }

    /// An empty mapping.
    pub fn map() -> Node {
        Node {
            kind: NodeKind::Map(Vec::new()),
            span: Span::default(),
            tag: None,
        }
    }

    /// An empty sequence.
    pub fn seq() -> Node {
        Node {
            kind: NodeKind::Seq(Vec::new()),
            span: Span::default(),
            tag: None,
        }
    }

    /// The scalar's text, if this is a scalar.
    pub fn as_scalar(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    /// The scalar's text if it is a string under the core schema (not null, bool or number).
    pub fn as_str(&self) -> Option<&str> {
        match self.scalar_type() {
            Some(ScalarType::Str) => self.as_scalar(),
            _ => None,
        }
    }

    /// The mapping's entries, if this is a mapping.
    pub fn as_map(&self) -> Option<&[Entry]> {
        match &self.kind {
            NodeKind::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The mapping's entries, mutable.
    pub fn as_map_mut(&mut self) -> Option<&mut Vec<Entry>> {
        match &mut self.kind {
            NodeKind::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The sequence's items, if this is a sequence.
    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.kind {
            NodeKind::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// The sequence's items, mutable.
    pub fn as_seq_mut(&mut self) -> Option<&mut Vec<Node>> {
        match &mut self.kind {
            NodeKind::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// Whether this is a null scalar (`null`, `~`, empty plain).
    pub fn is_null(&self) -> bool {
        self.scalar_type() == Some(ScalarType::Null)
    }

    /// The entry whose key is the string `key`.
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.as_map()?
            .iter()
            .find(|e| e.key.as_scalar() == Some(key))
    }

    /// Every value under the string key `key`, in source order: a mapping that repeats a key
    /// has several (YAML forbids it, but readers disagree on which one wins).
    pub fn get_all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.as_map()
            .unwrap_or(&[])
            .iter()
            .filter(move |e| e.key.as_scalar() == Some(key))
            .map(|e| &e.value)
    }

    /// The value under the string key `key`, if this is a mapping that has it (the first, if
    /// the mapping repeats the key; see [`Node::get_all`]).
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|e| &e.value)
    }

    /// The value under `key`, mutable.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        self.as_map_mut()?
            .iter_mut()
            .find(|e| e.key.as_scalar() == Some(key))
            .map(|e| &mut e.value)
    }

    /// Follows a path of string keys through nested mappings.
    pub fn get_path(&self, path: &[&str]) -> Option<&Node> {
        path.iter().try_fold(self, |n, k| n.get(k))
    }

    /// Sets `key` to `value` in a mapping, replacing an existing entry or appending a new one.
    /// Does nothing on a node that is not a mapping.
    pub fn insert(&mut self, key: &str, value: Node) {
        if let Some(m) = self.as_map_mut() {
            if let Some(e) = m.iter_mut().find(|e| e.key.as_scalar() == Some(key)) {
                e.value = value;
            } else {
                m.push(Entry {
                    key: Node::scalar(key, ScalarStyle::Plain),
                    value,
                });
            }
        }
    }

    /// Removes the entry under `key` and returns its value.
    pub fn remove(&mut self, key: &str) -> Option<Node> {
        let m = self.as_map_mut()?;
        let i = m.iter().position(|e| e.key.as_scalar() == Some(key))?;
        Some(m.remove(i).value)
    }

    /// The meaning of a scalar under the YAML 1.2 core schema; `None` for collections.
    pub fn scalar_type(&self) -> Option<ScalarType> {
        let NodeKind::Scalar { value, style } = &self.kind else {
            return None;
        };
        if let Some(tag) = &self.tag {
            return Some(match tag.as_str() {
                "tag:yaml.org,2002:null" | "!!null" => ScalarType::Null,
                "tag:yaml.org,2002:bool" | "!!bool" => ScalarType::Bool,
                "tag:yaml.org,2002:int" | "!!int" => ScalarType::Int,
                "tag:yaml.org,2002:float" | "!!float" => ScalarType::Float,
                _ => ScalarType::Str,
            });
        }
        if *style != ScalarStyle::Plain {
            return Some(ScalarType::Str);
        }
        Some(plain_type(value))
    }

    /// Visits every scalar in document order, with the path of keys and indexes leading to it.
    pub fn walk_scalars<'a>(&'a self, f: &mut dyn FnMut(&[PathItem<'a>], &'a Node)) {
        let mut path = Vec::new();
        walk(self, &mut path, f);
    }
}

/// One step of a path from the root to a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathItem<'a> {
    /// A mapping key.
    Key(&'a str),
    /// A sequence index.
    Index(usize),
}

fn walk<'a>(
    n: &'a Node,
    path: &mut Vec<PathItem<'a>>,
    f: &mut dyn FnMut(&[PathItem<'a>], &'a Node),
) {
    match &n.kind {
        NodeKind::Scalar { .. } => f(path, n),
        NodeKind::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(PathItem::Index(i));
                walk(item, path, f);
                path.pop();
            }
        }
        NodeKind::Map(entries) => {
            for e in entries {
                path.push(PathItem::Key(e.key.as_scalar().unwrap_or("")));
                walk(&e.value, path, f);
                path.pop();
            }
        }
    }
}

/// The core-schema type of a plain scalar's text.
pub(crate) fn plain_type(v: &str) -> ScalarType {
    match v {
        "" | "~" | "null" | "Null" | "NULL" => return ScalarType::Null,
        "true" | "True" | "TRUE" | "false" | "False" | "FALSE" => return ScalarType::Bool,
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" | "-.inf" | "-.Inf" | "-.INF"
        | ".nan" | ".NaN" | ".NAN" => return ScalarType::Float,
        _ => {}
    }
    let b = v.as_bytes();
    let digits = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit);
    let body = match b[0] {
        b'+' | b'-' => &b[1..],
        _ => b,
    };
    if digits(body) {
        return ScalarType::Int;
    }
    if let Some(hex) = v.strip_prefix("0x") {
        if !hex.is_empty() && hex.bytes().all(|c| c.is_ascii_hexdigit()) {
            return ScalarType::Int;
        }
    }
    if let Some(oct) = v.strip_prefix("0o") {
        if !oct.is_empty() && oct.bytes().all(|c| (b'0'..=b'7').contains(&c)) {
            return ScalarType::Int;
        }
    }
    // [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?
    let (mant, exp) = match body.iter().position(|&c| c == b'e' || c == b'E') {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let mant_ok = match mant.iter().position(|&c| c == b'.') {
        Some(i) => {
            let (int, frac) = (&mant[..i], &mant[i + 1..]);
            (int.is_empty() && digits(frac)) || (digits(int) && (frac.is_empty() || digits(frac)))
        }
        None => digits(mant),
    };
    let exp_ok = match exp {
        None => true,
        Some(e) => {
            let e = match e.first() {
                Some(b'+') | Some(b'-') => &e[1..],
                _ => e,
            };
            digits(e)
        }
    };
    if mant_ok && exp_ok && (mant.contains(&b'.') || exp.is_some()) {
        return ScalarType::Float;
    }
    ScalarType::Str
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_schema_types() {
        for (v, t) in [
            ("", ScalarType::Null),
            ("~", ScalarType::Null),
            ("true", ScalarType::Bool),
            ("yes", ScalarType::Str),
            ("12", ScalarType::Int),
            ("-12", ScalarType::Int),
            ("0x1F", ScalarType::Int),
            ("1.5", ScalarType::Float),
            ("1e3", ScalarType::Float),
            (".5", ScalarType::Float),
            ("1.2.3", ScalarType::Str),
            ("c2VjcmV0", ScalarType::Str),
            ("+", ScalarType::Str),
            ("-", ScalarType::Str),
            ("e5", ScalarType::Str),
        ] {
            assert_eq!(plain_type(v), t, "{v:?}");
        }
    }
}
