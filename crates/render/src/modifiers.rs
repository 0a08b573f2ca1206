//! Picking a key out of a fetched document, and the placeholder modifiers.

use base64::Engine as _;
use kustodian_refs::Modifier;
use serde_json::Value;
use sha2::Digest as _;

/// Why a value could not be produced. `Missing` may be forgiven by `remove-missing`.
#[derive(Debug)]
pub(crate) enum ValueError {
    Missing(String),
    Bad(String),
}

/// The value under `key`: the key itself first, then a dotted path through nested maps. When
/// it is missing, the message lists the keys that do exist where the lookup stopped (names
/// only, never values).
pub(crate) fn select_key(doc: &Value, key: &str) -> Result<Value, ValueError> {
    if let Some(v) = doc.as_object().and_then(|o| o.get(key)) {
        return Ok(v.clone());
    }
    let mut cur = doc;
    for part in key.split('.') {
        cur = match cur {
            Value::Object(o) => o.get(part),
            Value::Array(a) => part.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        }
        .ok_or_else(|| {
            ValueError::Missing(format!("key {key:?} not found{}", existing_keys(cur)))
        })?;
    }
    Ok(cur.clone())
}

/// Most key names listed in a "not found" message.
const MAX_LISTED_KEYS: usize = 20;

/// `; the keys there are: a, b, c` for a map, or a note for anything else. Names only.
fn existing_keys(v: &Value) -> String {
    match v {
        Value::Object(o) if o.is_empty() => "; there are no keys there".into(),
        Value::Object(o) => {
            let mut names: Vec<&str> = o.keys().map(String::as_str).collect();
            names.sort_unstable();
            let more = names.len().saturating_sub(MAX_LISTED_KEYS);
            names.truncate(MAX_LISTED_KEYS);
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            format!("; the keys there are: {}{more}", names.join(", "))
        }
        Value::Array(a) => format!("; there is a list of {} items there", a.len()),
        _ => "; there is a single value there, not a map".into(),
    }
}

/// The value at a JSON pointer given as tokens; no tokens means the whole document.
pub(crate) fn select_pointer(doc: &Value, tokens: &[String]) -> Result<Value, ValueError> {
    let mut cur = doc;
    for t in tokens {
        cur = match cur {
            Value::Object(o) => o.get(t),
            Value::Array(a) => t.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        }
        .ok_or_else(|| {
            let ptr: String = tokens
                .iter()
                .map(|t| format!("/{}", t.replace('~', "~0").replace('/', "~1")))
                .collect();
            ValueError::Missing(format!("nothing at #{ptr}"))
        })?;
    }
    Ok(cur.clone())
}

/// A value as text: strings as they are, numbers and booleans printed, structures as JSON.
pub(crate) fn to_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Applies modifiers left to right.
pub(crate) fn apply(mut v: Value, mods: &[Modifier]) -> Result<Value, ValueError> {
    for m in mods {
        v = match m {
            Modifier::Base64Encode => {
                Value::String(base64::engine::general_purpose::STANDARD.encode(to_text(&v)))
            }
            Modifier::Base64Decode => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(to_text(&v).trim())
                    .map_err(|_| {
                        ValueError::Bad("base64decode: the value is not valid base64".into())
                    })?;
                Value::String(String::from_utf8(bytes).map_err(|_| {
                    ValueError::Bad("base64decode: the decoded value is not UTF-8 text".into())
                })?)
            }
            Modifier::JsonParse => match &v {
                Value::String(s) => serde_json::from_str(s).map_err(|e| {
                    ValueError::Bad(format!(
                        "jsonParse: the value is not JSON (line {}, column {})",
                        e.line(),
                        e.column()
                    ))
                })?,
                _ => v,
            },
            Modifier::YamlParse => match &v {
                Value::String(s) => {
                    let docs = kustodian_manifest::parse_stream(s).map_err(|e| {
                        ValueError::Bad(format!(
                            "yamlParse: the value is not YAML (line {}, column {})",
                            e.pos.line, e.pos.column
                        ))
                    })?;
                    docs.first()
                        .map(|d| d.root.to_json())
                        .unwrap_or(Value::Null)
                }
                _ => v,
            },
            Modifier::JsonPath(expr) => json_path(&v, expr)?,
            Modifier::Indent(n) => {
                let pad = " ".repeat(*n);
                let text = to_text(&v);
                let mut out = String::with_capacity(text.len());
                for (i, line) in text.split('\n').enumerate() {
                    if i > 0 {
                        out.push('\n');
                        if !line.is_empty() {
                            out.push_str(&pad);
                        }
                    }
                    out.push_str(line);
                }
                Value::String(out)
            }
            Modifier::Sha256Sum => {
                Value::String(hex::encode(sha2::Sha256::digest(to_text(&v).as_bytes())))
            }
        };
    }
    Ok(v)
}

/// Kubernetes JSONPath templates as argocd-vault-plugin takes them: `{.a.b}`, several
/// `{...}` parts with text between them, `{'literal'}`, and `{.items[0].name}`; each part is
/// evaluated as the RFC 9535 query `$` + part.
fn json_path(v: &Value, template: &str) -> Result<Value, ValueError> {
    let doc = match v {
        Value::String(s) => serde_json::from_str(s).unwrap_or_else(|_| v.clone()),
        other => other.clone(),
    };
    let bad = |why: &str| ValueError::Bad(format!("jsonPath {template}: {why}"));
    let t = template.trim();
    let mut parts: Vec<Value> = Vec::new();
    let mut rest = t;
    let mut literal = String::new();
    while !rest.is_empty() {
        if let Some(stripped) = rest.strip_prefix('{') {
            let end = stripped.find('}').ok_or_else(|| bad("missing `}`"))?;
            let expr = stripped[..end].trim();
            rest = &stripped[end + 1..];
            if !literal.is_empty() {
                parts.push(Value::String(std::mem::take(&mut literal)));
            }
            if let Some(l) = expr.strip_prefix('\'').and_then(|e| e.strip_suffix('\'')) {
                parts.push(Value::String(l.to_string()));
                continue;
            }
            let query = match expr.strip_prefix('$') {
                Some(_) => expr.to_string(),
                None if expr.starts_with('.') || expr.starts_with('[') => format!("${expr}"),
                None => format!("$.{expr}"),
            };
            let path = serde_json_path::JsonPath::parse(&query)
                .map_err(|_| bad("not a JSONPath expression"))?;
            let found = path.query(&doc).all();
            match found.as_slice() {
                [] => {
                    return Err(ValueError::Missing(format!(
                        "jsonPath {template}: nothing matched"
                    )))
                }
                [one] => parts.push((*one).clone()),
                many => parts.push(Value::String(
                    many.iter()
                        .map(|x| to_text(x))
                        .collect::<Vec<_>>()
                        .join(" "),
                )),
            }
        } else {
            let mut chars = rest.chars();
            if let Some(c) = chars.next() {
                literal.push(c);
            }
            rest = chars.as_str();
        }
    }
    if !literal.is_empty() {
        parts.push(Value::String(literal));
    }
    Ok(match parts.len() {
        0 => Value::Null,
        1 => parts.pop().unwrap_or(Value::Null),
        _ => Value::String(parts.iter().map(to_text).collect()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_missing_key_lists_the_key_names_there_never_values() {
        let d = json!({"password": "canary-v", "user": "canary-u", "db": {"host": "canary-h"}});
        let Err(ValueError::Missing(m)) = select_key(&d, "passwd") else {
            panic!("found")
        };
        assert_eq!(
            m,
            "key \"passwd\" not found; the keys there are: db, password, user"
        );
        let Err(ValueError::Missing(m)) = select_key(&d, "db.port") else {
            panic!("found")
        };
        assert!(
            m.ends_with("the keys there are: host") && !m.contains("canary"),
            "{m}"
        );
    }

    #[test]
    fn keys_and_dotted_paths() {
        let d = json!({"a.b": 1, "a": {"b": 2, "c": [5]}});
        assert_eq!(select_key(&d, "a.b").unwrap(), json!(1));
        assert_eq!(select_key(&d, "a.c.0").unwrap(), json!(5));
        assert!(matches!(
            select_key(&d, "nope"),
            Err(ValueError::Missing(_))
        ));
    }

    #[test]
    fn modifier_chain() {
        let v = json!(r#"{"user":"u","pass":"p"}"#);
        let out = apply(
            v.clone(),
            &[
                Modifier::JsonPath("{.user}{':'}{.pass}".into()),
                Modifier::Base64Encode,
            ],
        )
        .unwrap();
        assert_eq!(out, json!("dTpw"));
        assert_eq!(
            apply(json!("dTpw"), &[Modifier::Base64Decode]).unwrap(),
            json!("u:p")
        );
        assert_eq!(
            apply(v, &[Modifier::JsonParse]).unwrap(),
            json!({"user": "u", "pass": "p"})
        );
        assert_eq!(
            apply(json!("a: 1"), &[Modifier::YamlParse]).unwrap(),
            json!({"a": 1})
        );
        assert_eq!(
            apply(json!("x\ny\n"), &[Modifier::Indent(2)]).unwrap(),
            json!("x\n  y\n")
        );
        assert_eq!(
            apply(json!("abc"), &[Modifier::Sha256Sum]).unwrap(),
            json!("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
    }
}
