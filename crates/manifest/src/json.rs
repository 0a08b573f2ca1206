//! Conversions between [`Node`] trees and `serde_json::Value`.

use serde_json::Value;

use crate::node::{Node, NodeKind, ScalarStyle, ScalarType};

impl Node {
    /// The node as JSON data under the core schema: plain numbers become numbers, quoted
    /// scalars strings, non-string keys their text.
    pub fn to_json(&self) -> Value {
        match &self.kind {
            NodeKind::Scalar { value, .. } => match self.scalar_type() {
                Some(ScalarType::Null) => Value::Null,
                Some(ScalarType::Bool) => Value::Bool(value.eq_ignore_ascii_case("true")),
                Some(ScalarType::Int) => parse_int(value)
                    .map(Value::from)
                    .unwrap_or_else(|| Value::String(value.clone())),
                Some(ScalarType::Float) => value
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
                    .unwrap_or_else(|| Value::String(value.clone())),
                _ => Value::String(value.clone()),
            },
            NodeKind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeKind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|e| {
                        (
                            e.key
                                .as_scalar()
                                .map(str::to_string)
                                .unwrap_or_else(|| e.key.to_json().to_string()),
                            e.value.to_json(),
                        )
                    })
                    .collect(),
            ),
        }
    }

    /// A node tree from JSON data; strings get a style the emitter quotes when needed.
    pub fn from_json(v: &Value) -> Node {
        match v {
            Value::Null => Node::scalar("null", ScalarStyle::Plain),
            Value::Bool(b) => Node::scalar(b.to_string(), ScalarStyle::Plain),
            Value::Number(n) => Node::scalar(n.to_string(), ScalarStyle::Plain),
            Value::String(s) => Node::string(s.clone()),
            Value::Array(a) => {
                let mut n = Node::seq();
                if let Some(items) = n.as_seq_mut() {
                    items.extend(a.iter().map(Node::from_json));
                }
                n
            }
            Value::Object(o) => {
                let mut n = Node::map();
                for (k, v) in o {
                    n.insert(k, Node::from_json(v));
                }
                n
            }
        }
    }
}

fn parse_int(v: &str) -> Option<i64> {
    if let Some(h) = v.strip_prefix("0x") {
        return i64::from_str_radix(h, 16).ok();
    }
    if let Some(o) = v.strip_prefix("0o") {
        return i64::from_str_radix(o, 8).ok();
    }
    v.parse().ok()
}

#[cfg(test)]
mod tests {
    use crate::parse_stream;

    #[test]
    fn json_round_trip() {
        let docs = parse_stream("a: 1\nb: \"1\"\nc: [true, null, 1.5]\nd: {e: x}\n").unwrap();
        let j = docs[0].root.to_json();
        assert_eq!(
            j,
            serde_json::json!({"a": 1, "b": "1", "c": [true, null, 1.5], "d": {"e": "x"}})
        );
        assert_eq!(crate::Node::from_json(&j).to_json(), j);
    }
}
