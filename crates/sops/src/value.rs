//! The plaintext tree: what a SOPS file holds once its values are decrypted.
//!
//! A document is a mapping; mappings and sequences keep their order and the comments between
//! their items, as sops keeps them. Strings and comments live in [`Text`], which zeroes its
//! bytes when dropped; `Debug` on every type here prints the shape of the tree, never a value.

use std::fmt;

use zeroize::{Zeroize, Zeroizing};

/// A secret string: zeroed on drop, redacted in `Debug`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Text(String);

impl Text {
    /// Wraps a string.
    pub fn new(s: impl Into<String>) -> Text {
        Text(s.into())
    }

    /// The string itself. Keep what you derive from it in zeroizing types too.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Drop for Text {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<String> for Text {
    fn from(s: String) -> Text {
        Text(s)
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text(s.to_string())
    }
}

/// One node of a plaintext (or, before decryption, encrypted) document.
#[derive(Clone, PartialEq)]
pub enum Value {
    /// `null`: never encrypted, and not part of the MAC (as in sops).
    Null,
    /// A boolean (sops type `bool`).
    Bool(bool),
    /// An integer (sops type `int`).
    Int(i64),
    /// A float (sops type `float`).
    Float(f64),
    /// A string (sops type `str`).
    Str(Text),
    /// A mapping with its comments, in order.
    Map(Vec<MapItem>),
    /// A sequence with its comments, in order.
    Seq(Vec<SeqItem>),
}

/// One item of a mapping.
#[derive(Clone, PartialEq)]
pub enum MapItem {
    /// `key: value`.
    Entry(String, Value),
    /// A comment line (the text after `#`).
    Comment(Text),
}

/// One item of a sequence.
#[derive(Clone, PartialEq)]
pub enum SeqItem {
    /// `- value`.
    Value(Value),
    /// A comment line (the text after `#`).
    Comment(Text),
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("Null"),
            Value::Bool(_) => f.write_str("Bool(<redacted>)"),
            Value::Int(_) => f.write_str("Int(<redacted>)"),
            Value::Float(_) => f.write_str("Float(<redacted>)"),
            Value::Str(_) => f.write_str("Str(<redacted>)"),
            Value::Map(items) => {
                let mut m = f.debug_map();
                for item in items {
                    if let MapItem::Entry(k, v) = item {
                        m.entry(k, v);
                    }
                }
                m.finish()
            }
            Value::Seq(items) => {
                let mut l = f.debug_list();
                for item in items {
                    if let SeqItem::Value(v) = item {
                        l.entry(v);
                    }
                }
                l.finish()
            }
        }
    }
}

impl fmt::Debug for MapItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MapItem::Entry(k, v) => f.debug_tuple("Entry").field(k).field(v).finish(),
            MapItem::Comment(_) => f.write_str("Comment(<redacted>)"),
        }
    }
}

impl fmt::Debug for SeqItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SeqItem::Value(v) => f.debug_tuple("Value").field(v).finish(),
            SeqItem::Comment(_) => f.write_str("Comment(<redacted>)"),
        }
    }
}

impl Value {
    /// A string value.
    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(Text::new(s))
    }

    /// The entries of a mapping (comments skipped).
    pub fn entries(&self) -> impl Iterator<Item = (&str, &Value)> {
        let items: &[MapItem] = match self {
            Value::Map(m) => m,
            _ => &[],
        };
        items.iter().filter_map(|i| match i {
            MapItem::Entry(k, v) => Some((k.as_str(), v)),
            MapItem::Comment(_) => None,
        })
    }

    /// The items of a sequence (comments skipped).
    pub fn items(&self) -> impl Iterator<Item = &Value> {
        let items: &[SeqItem] = match self {
            Value::Seq(s) => s,
            _ => &[],
        };
        items.iter().filter_map(|i| match i {
            SeqItem::Value(v) => Some(v),
            SeqItem::Comment(_) => None,
        })
    }

    /// The value under `key`, if this is a mapping that has it.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The value under `key`, mutable.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        match self {
            Value::Map(m) => m.iter_mut().find_map(|i| match i {
                MapItem::Entry(k, v) if k == key => Some(v),
                _ => None,
            }),
            _ => None,
        }
    }

    /// Follows `path` from this node: a step is a mapping key, or a decimal index into a
    /// sequence. `["data", "password"]`, `["hosts", "0"]`.
    pub fn lookup<S: AsRef<str>>(&self, path: &[S]) -> Option<&Value> {
        path.iter().try_fold(self, |node, step| {
            let step = step.as_ref();
            match node {
                Value::Map(_) => node.get(step),
                Value::Seq(_) => node.items().nth(step.parse::<usize>().ok()?),
                _ => None,
            }
        })
    }

    /// Follows an RFC 6901 JSON pointer (`""` is this node, `/a/b/0`, `~1` for `/`, `~0` for
    /// `~`). `None` when the pointer is malformed or leads nowhere.
    pub fn pointer(&self, pointer: &str) -> Option<&Value> {
        if pointer.is_empty() {
            return Some(self);
        }
        let rest = pointer.strip_prefix('/')?;
        let steps: Vec<String> = rest
            .split('/')
            .map(|s| s.replace("~1", "/").replace("~0", "~"))
            .collect();
        self.lookup(&steps)
    }

    /// A scalar as text, the way sops stores its plaintext: strings as they are, integers in
    /// decimal, floats in their shortest decimal form, booleans as `true`/`false`.
    /// `None` for null, mappings and sequences.
    pub fn to_text(&self) -> Option<Zeroizing<String>> {
        Some(Zeroizing::new(match self {
            Value::Str(s) => s.as_str().to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => crate::format::float_plain(*f),
            Value::Bool(b) => b.to_string(),
            Value::Null | Value::Map(_) | Value::Seq(_) => return None,
        }))
    }

    /// The value as JSON (comments dropped). The result holds secret text and does not zero
    /// itself: keep it short-lived.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(J::Number)
                .unwrap_or(J::Null),
            Value::Str(s) => J::String(s.as_str().to_string()),
            Value::Map(_) => J::Object(
                self.entries()
                    .map(|(k, v)| (k.to_string(), v.to_json()))
                    .collect(),
            ),
            Value::Seq(_) => J::Array(self.items().map(Value::to_json).collect()),
        }
    }

    /// Whether this is a mapping.
    pub fn is_map(&self) -> bool {
        matches!(self, Value::Map(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Value {
        Value::Map(vec![
            MapItem::Comment(Text::new(" hello")),
            MapItem::Entry(
                "a/b".into(),
                Value::Map(vec![MapItem::Entry("c".into(), Value::str("s3cr3t"))]),
            ),
            MapItem::Entry(
                "list".into(),
                Value::Seq(vec![
                    SeqItem::Value(Value::Int(5)),
                    SeqItem::Value(Value::Bool(true)),
                ]),
            ),
        ])
    }

    #[test]
    fn debug_never_prints_values() {
        let v = sample();
        let d = format!("{v:?} {:?}", MapItem::Comment(Text::new("hush")));
        assert!(
            !d.contains("s3cr3t")
                && !d.contains("hush")
                && !d.contains('5')
                && !d.contains("hello"),
            "{d}"
        );
        assert!(d.contains("a/b"), "{d}");
    }

    #[test]
    fn lookups() {
        let v = sample();
        assert_eq!(
            v.lookup(&["a/b", "c"])
                .and_then(Value::to_text)
                .as_deref()
                .map(String::as_str),
            Some("s3cr3t")
        );
        assert_eq!(v.pointer("/a~1b/c"), v.lookup(&["a/b", "c"]));
        assert_eq!(v.pointer("/list/1"), Some(&Value::Bool(true)));
        assert_eq!(v.pointer("/list/2"), None);
        assert_eq!(v.pointer("list"), None);
        assert_eq!(
            v.to_json(),
            serde_json::json!({"a/b": {"c": "s3cr3t"}, "list": [5, true]})
        );
    }
}
