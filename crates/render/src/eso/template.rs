//! The part of External Secrets Operator's template engine (v2: Go `text/template` with Sprig
//! functions) that the emitter writes and the offline resolver reads: literal text, `{{ .name }}`
//! and `{{ index . "name" }}`, string literals, and pipes through `b64enc`, `b64dec`,
//! `sha256sum`, `indent N`, `nindent N`, `trimPrefix S`, `trimSuffix S`, `trim`, `upper`,
//! `lower`. Anything else is an error that names the function, never a value.

use std::collections::BTreeMap;

use base64::Engine as _;
use sha2::Digest as _;

/// Writes `text` so that the template engine prints it unchanged.
pub fn escape(text: &str) -> String {
    text.replace("{{", "{{ \"{{\" }}")
}

/// A Go string literal for `s`.
pub fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Renders `tpl` with `data` (the ExternalSecret's secret keys). Errors describe the template,
/// never a value.
pub fn render(tpl: &str, data: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = tpl;
    while let Some(open) = rest.find("{{") {
        let mut text = &rest[..open];
        let mut action = &rest[open + 2..];
        if let Some(a) = action.strip_prefix('-') {
            text = text.trim_end();
            action = a;
        }
        out.push_str(text);
        let close = find_close(action).ok_or("a `{{` is never closed by `}}`")?;
        let mut body = &action[..close];
        let mut after = &action[close + 2..];
        if let Some(b) = body.strip_suffix('-') {
            body = b;
            after = after.trim_start();
        }
        out.push_str(&pipeline(body.trim(), data)?);
        rest = after;
    }
    out.push_str(rest);
    Ok(out)
}

/// The `}}` closing an action, skipping string literals.
fn find_close(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'}' if b.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

#[derive(Debug, PartialEq)]
enum Tok {
    Field(String),
    Str(String),
    Num(usize),
    Word(String),
    Dot,
    Pipe,
}

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let c: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < c.len() {
        match c[i] {
            ' ' | '\t' | '\n' => i += 1,
            '|' => {
                out.push(Tok::Pipe);
                i += 1;
            }
            '"' => {
                let mut v = String::new();
                i += 1;
                loop {
                    match c.get(i) {
                        None => return Err("a string literal is never closed".into()),
                        Some('"') => break,
                        Some('\\') => {
                            i += 1;
                            v.push(match c.get(i) {
                                Some('n') => '\n',
                                Some('t') => '\t',
                                Some('r') => '\r',
                                Some(&x) => x,
                                None => return Err("a string literal is never closed".into()),
                            });
                        }
                        Some(&x) => v.push(x),
                    }
                    i += 1;
                }
                i += 1;
                out.push(Tok::Str(v));
            }
            '.' => {
                let start = i + 1;
                i += 1;
                while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                    i += 1;
                }
                if i == start {
                    out.push(Tok::Dot);
                } else {
                    out.push(Tok::Field(c[start..i].iter().collect()));
                }
            }
            d if d.is_ascii_digit() => {
                let start = i;
                while i < c.len() && c[i].is_ascii_digit() {
                    i += 1;
                }
                let n: String = c[start..i].iter().collect();
                out.push(Tok::Num(n.parse().map_err(|_| "a number is too large")?));
            }
            w if w.is_alphabetic() => {
                let start = i;
                while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                    i += 1;
                }
                out.push(Tok::Word(c[start..i].iter().collect()));
            }
            other => return Err(format!("unexpected {other:?} in a template action")),
        }
    }
    Ok(out)
}

/// Evaluates one action: commands separated by `|`, each command's result passed as the last
/// argument of the next.
fn pipeline(body: &str, data: &BTreeMap<String, String>) -> Result<String, String> {
    let toks = lex(body)?;
    let mut value: Option<String> = None;
    for cmd in toks.split(|t| *t == Tok::Pipe) {
        value = Some(command(cmd, value, data)?);
    }
    value.ok_or_else(|| "an empty template action".into())
}

fn lookup(name: &str, data: &BTreeMap<String, String>) -> Result<String, String> {
    data.get(name).cloned().ok_or_else(|| {
        format!("the template reads `{name}`, which no `data` or `dataFrom` entry provides")
    })
}

fn command(
    cmd: &[Tok],
    piped: Option<String>,
    data: &BTreeMap<String, String>,
) -> Result<String, String> {
    let (head, args) = cmd
        .split_first()
        .ok_or("an empty command in a template pipe")?;
    let name = match head {
        Tok::Field(f) if args.is_empty() && piped.is_none() => return lookup(f, data),
        Tok::Str(s) if args.is_empty() && piped.is_none() => return Ok(s.clone()),
        Tok::Word(w) => w.as_str(),
        _ => return Err("a template command must start with a function name".into()),
    };
    let mut strs: Vec<String> = Vec::new();
    let mut nums: Vec<usize> = Vec::new();
    for a in args {
        match a {
            Tok::Str(s) => strs.push(s.clone()),
            Tok::Num(n) => nums.push(*n),
            Tok::Field(f) => strs.push(lookup(f, data)?),
            Tok::Dot if name == "index" => {}
            _ => return Err(format!("`{name}`: unexpected argument")),
        }
    }
    strs.extend(piped);
    let one = |strs: &[String]| -> Result<String, String> {
        match strs {
            [s] => Ok(s.clone()),
            _ => Err(format!("`{name}` takes one text argument")),
        }
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    match name {
        "index" => match strs.as_slice() {
            [k] => lookup(k, data),
            _ => Err("`index . \"name\"` takes one name".into()),
        },
        "b64enc" => Ok(b64.encode(one(&strs)?)),
        "b64dec" => b64
            .decode(one(&strs)?.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| "`b64dec`: the value is not base64 of UTF-8 text".into()),
        "sha256sum" => Ok(hex::encode(sha2::Sha256::digest(one(&strs)?.as_bytes()))),
        "indent" | "nindent" => {
            let n = *nums.first().ok_or(format!("`{name}` takes a width"))?;
            let pad = " ".repeat(n);
            let s = one(&strs)?;
            let body = s
                .split('\n')
                .map(|l| format!("{pad}{l}"))
                .collect::<Vec<_>>()
                .join("\n");
            Ok(if name == "nindent" {
                format!("\n{body}")
            } else {
                body
            })
        }
        "trimPrefix" | "trimSuffix" => match strs.as_slice() {
            [p, s] if name == "trimPrefix" => Ok(s.strip_prefix(p.as_str()).unwrap_or(s).into()),
            [p, s] => Ok(s.strip_suffix(p.as_str()).unwrap_or(s).into()),
            _ => Err(format!("`{name}` takes two text arguments")),
        },
        "trim" => Ok(one(&strs)?.trim().into()),
        "upper" => Ok(one(&strs)?.to_uppercase()),
        "lower" => Ok(one(&strs)?.to_lowercase()),
        other => Err(format!(
            "the template function `{other}` is not one kustodian evaluates offline (b64enc, b64dec, sha256sum, indent, nindent, trimPrefix, trimSuffix, trim, upper, lower, index)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> BTreeMap<String, String> {
        [("user", "ann"), ("pem", "a\nb"), ("b", "aGk=")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn renders_fields_pipes_and_literals() {
        let d = data();
        assert_eq!(render("u={{ .user }}!", &d).unwrap(), "u=ann!");
        assert_eq!(render("{{ .user | b64enc }}", &d).unwrap(), "YW5u");
        assert_eq!(render("{{ .b | b64dec }}", &d).unwrap(), "hi");
        assert_eq!(
            render("k: {{ .pem | indent 2 | trimPrefix \"  \" }}", &d).unwrap(),
            "k: a\n  b"
        );
        assert_eq!(render("{{ index . \"user\" }}", &d).unwrap(), "ann");
        assert_eq!(render(&escape("a {{ b"), &d).unwrap(), "a {{ b");
        assert_eq!(
            render(&format!("{{{{ {} }}}}", quote("x\"y\n")), &d).unwrap(),
            "x\"y\n"
        );
    }

    #[test]
    fn unknown_functions_and_fields_are_errors_without_values() {
        let d = data();
        let e = render("{{ .user | pkcs12key }}", &d).unwrap_err();
        assert!(e.contains("pkcs12key") && !e.contains("ann"));
        assert!(render("{{ .nope }}", &d).unwrap_err().contains("nope"));
        assert!(render("{{ .user ", &d).is_err());
    }
}
