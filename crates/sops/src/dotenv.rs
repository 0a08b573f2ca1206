//! sops's dotenv format: `KEY=VALUE` lines and `#` comments. Values are strings, with newlines
//! written as `\n`; blank lines are dropped. The `sops` metadata block is flattened into
//! `sops_`-prefixed keys, sorted, after the data: a mapping's key joins with `__map_`, a list
//! index with `__list_` (`sops_age__list_0__map_enc`).

use crate::error::{Error, Result};
use crate::format::{bool_plain, float_plain};
use crate::value::{MapItem, SeqItem, Text, Value};

const PREFIX: &str = "sops_";

/// Parses a dotenv file into one document; `sops_` keys become its `sops` block.
pub(crate) fn parse(src: &str, file: &str) -> Result<Value> {
    let mut items = Vec::new();
    let mut metadata = Value::Map(Vec::new());
    for (i, line) in src.lines().enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            items.push(MapItem::Comment(Text::new(comment)));
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(Error::Shape {
                file: file.into(),
                what: format!("line {}: expected KEY=VALUE or a # comment", i + 1),
            });
        };
        let value = value.replace("\\n", "\n");
        match key.strip_prefix(PREFIX) {
            Some(path) => unflatten(&mut metadata, path, value, file)?,
            None => items.push(MapItem::Entry(key.to_string(), Value::str(value))),
        }
    }
    if !matches!(&metadata, Value::Map(m) if m.is_empty()) {
        if let Some(v) = metadata.get_mut("mac_only_encrypted") {
            *v = Value::Bool(matches!(v, Value::Str(s) if s.as_str() == "true"));
        }
        items.push(MapItem::Entry("sops".into(), metadata));
    }
    Ok(Value::Map(items))
}

/// Puts `value` at the flattened `path` (`age__list_0__map_enc`) inside `root`.
fn unflatten(root: &mut Value, path: &str, value: String, file: &str) -> Result<()> {
    let bad = || Error::Shape {
        file: file.into(),
        what: format!("the metadata key {PREFIX}{path} is not one sops writes"),
    };
    let mut parts = path.split("__");
    let first = parts.next().filter(|p| !p.is_empty()).ok_or_else(bad)?;
    let mut node = map_child(root, first).ok_or_else(bad)?;
    for part in parts {
        node = if let Some(key) = part.strip_prefix("map_") {
            if matches!(node, Value::Null) {
                *node = Value::Map(Vec::new());
            }
            map_child(node, key).ok_or_else(bad)?
        } else if let Some(index) = part.strip_prefix("list_") {
            let index: usize = index.parse().map_err(|_| bad())?;
            if matches!(node, Value::Null) {
                *node = Value::Seq(Vec::new());
            }
            let Value::Seq(items) = node else {
                return Err(bad());
            };
            while items.len() <= index {
                items.push(SeqItem::Value(Value::Null));
            }
            match &mut items[index] {
                SeqItem::Value(v) => v,
                SeqItem::Comment(_) => return Err(bad()),
            }
        } else {
            return Err(bad());
        };
    }
    *node = Value::str(value);
    Ok(())
}

/// The value under `key` in the mapping `node` (added, as null, when missing).
fn map_child<'v>(node: &'v mut Value, key: &str) -> Option<&'v mut Value> {
    if node.get(key).is_none() {
        let Value::Map(items) = node else {
            return None;
        };
        items.push(MapItem::Entry(key.to_string(), Value::Null));
    }
    node.get_mut(key)
}

/// Writes one document as dotenv; its `sops` block, if any, flattened after the data.
pub(crate) fn emit(doc: &Value, file: &str) -> Result<String> {
    let Value::Map(items) = doc else {
        return Err(Error::Shape {
            file: file.into(),
            what: "dotenv output needs a mapping of keys to values".into(),
        });
    };
    let mut out = String::new();
    let mut flat = Vec::new();
    for item in items {
        match item {
            MapItem::Comment(t) => {
                out.push('#');
                out.push_str(t.as_str());
                out.push('\n');
            }
            MapItem::Entry(k, v) if k == "sops" => {
                flatten(v, PREFIX.trim_end_matches('_'), &mut flat)
            }
            MapItem::Entry(k, v) => {
                let text = scalar(v).ok_or_else(|| Error::Shape {
                    file: file.into(),
                    what: format!("dotenv values are strings; {k} holds a mapping or a list"),
                })?;
                out.push_str(&format!("{k}={}\n", text.replace('\n', "\\n")));
            }
        }
    }
    flat.sort();
    for (k, v) in flat {
        out.push_str(&format!("{k}={}\n", v.replace('\n', "\\n")));
    }
    Ok(out)
}

/// A scalar as dotenv text.
fn scalar(v: &Value) -> Option<String> {
    Some(match v {
        Value::Null => String::new(),
        Value::Bool(b) => bool_plain(*b).to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => float_plain(*f),
        Value::Str(s) => s.as_str().to_string(),
        Value::Map(_) | Value::Seq(_) => return None,
    })
}

/// The metadata block as `(flattened key, value)` pairs.
fn flatten(v: &Value, prefix: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::Map(items) => {
            for item in items {
                if let MapItem::Entry(k, v) = item {
                    let key = if prefix == "sops" {
                        format!("{PREFIX}{k}")
                    } else {
                        format!("{prefix}__map_{k}")
                    };
                    flatten(v, &key, out);
                }
            }
        }
        Value::Seq(items) => {
            let values = items.iter().filter_map(|i| match i {
                SeqItem::Value(v) => Some(v),
                SeqItem::Comment(_) => None,
            });
            for (i, v) in values.enumerate() {
                flatten(v, &format!("{prefix}__list_{i}"), out);
            }
        }
        // Go's `true`/`false` for the metadata's booleans (`mac_only_encrypted`).
        Value::Bool(b) => out.push((prefix.to_string(), b.to_string())),
        scalar_value => {
            out.push((prefix.to_string(), scalar(scalar_value).unwrap_or_default()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_metadata() {
        let src = "#c\nA=1\nB=x\\ny\nexport C=3\nsops_age__list_0__map_enc=-----BEGIN-----\\nabc\\n\nsops_age__list_0__map_recipient=age1x\nsops_lastmodified=2026-01-01T00:00:00Z\nsops_mac_only_encrypted=true\nsops_version=3.11.0\n";
        let doc = parse(src, "t.env").unwrap();
        assert_eq!(
            doc.lookup(&["B"]).and_then(Value::to_text).as_deref(),
            Some(&"x\ny".to_string())
        );
        assert_eq!(
            doc.lookup(&["sops", "age", "0", "enc"])
                .and_then(Value::to_text)
                .as_deref(),
            Some(&"-----BEGIN-----\nabc\n".to_string())
        );
        assert_eq!(
            doc.lookup(&["sops", "mac_only_encrypted"]),
            Some(&Value::Bool(true))
        );
        assert_eq!(emit(&doc, "t.env").unwrap(), src);
        assert!(parse("no equals sign\n", "t.env").is_err());
        assert!(parse("sops_a__bogus=1\n", "t.env").is_err());
    }
}
