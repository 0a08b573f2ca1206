//! The scanner: one left-to-right pass over the string, each byte looked at a
//! bounded number of times, so time is linear in the input length.

use crate::ast::{Modifier, RefKind, Reference, ValsRef};
use crate::error::ParseError;

const PATH_OPEN: &[u8] = b"<path:";
const VALS_OPEN: &[u8] = b"ref+";
const SECRET: &[u8] = b"secret";
const OP_OPEN: &[u8] = b"op://";
/// The longest `{{ op://... }}` template looked for.
const OP_TEMPLATE_LIMIT: usize = 2048;

/// Finds every reference in `input`, left to right. References never
/// overlap: text inside one is not searched again.
pub(crate) fn parse(input: &str, generic: bool) -> Result<Vec<Reference>, ParseError> {
    let bytes = input.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    // End of the last reference: `secret` before `ref+` only counts when it
    // is not part of the previous reference.
    let mut consumed = 0;
    while i < bytes.len() {
        let found = match bytes[i] {
            b'<' if bytes[i..].starts_with(PATH_OPEN) => Some(parse_avp_path(input, i)?),
            b'<' if generic => parse_generic(input, i)?,
            b'r' if bytes[i..].starts_with(VALS_OPEN) => parse_vals(input, i, consumed)?,
            b'{' if bytes[i..].starts_with(b"{{") => parse_op_template(input, i)?,
            b'o' if bytes[i..].starts_with(OP_OPEN) && input[..i].trim().is_empty() => {
                let end = input.trim_end().len();
                parse_op(input, i, i, end, end)?
            }
            _ => None,
        };
        match found {
            Some(r) => {
                i = r.span.end;
                consumed = i;
                out.push(r);
            }
            None => i += 1,
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// argocd-vault-plugin placeholders

/// `<path:PATH#KEY[#VERSION][ | modifier ...]>` starting at `start`.
///
/// Like argocd-vault-plugin, the placeholder ends at the first `>` and
/// modifiers are split off at `|` before the `#` parts are read.
fn parse_avp_path(input: &str, start: usize) -> Result<Reference, ParseError> {
    let body_start = start + PATH_OPEN.len();
    let Some(len) = input[body_start..].find('>') else {
        return Err(ParseError::Unclosed { offset: start });
    };
    let body = &input[body_start..body_start + len];
    let (head, mods) = split_modifiers(body);
    if let Some(p) = head.find(['\n', '\r', '<']) {
        let found = if head.as_bytes()[p] == b'<' {
            "`<`"
        } else {
            "line break"
        };
        return Err(ParseError::UnexpectedInPlaceholder {
            offset: body_start + p,
            found,
        });
    }
    let kind = parse_path_head(head, body_start, start)?;
    let modifiers = match mods {
        Some(m) => parse_modifiers(m, body_start + head.len())?,
        None => Vec::new(),
    };
    Ok(Reference {
        span: start..body_start + len + 1,
        kind,
        modifiers,
    })
}

/// Splits a placeholder body at its first `|`: `(head, Some("| mod | mod"))`.
fn split_modifiers(body: &str) -> (&str, Option<&str>) {
    match body.find('|') {
        Some(p) => (&body[..p], Some(&body[p..])),
        None => (body, None),
    }
}

/// `PATH#KEY[#VERSION]` (the text after `path:`), at byte `offset`; `start`
/// is where the placeholder opens, for errors about the whole thing.
fn parse_path_head(head: &str, offset: usize, start: usize) -> Result<RefKind, ParseError> {
    let mut parts: Vec<(usize, &str)> = Vec::with_capacity(3);
    let mut from = 0;
    for (p, _) in head.match_indices('#') {
        if parts.len() == 2 {
            return Err(ParseError::TooManyHashes { offset: offset + p });
        }
        parts.push((from, &head[from..p]));
        from = p + 1;
    }
    parts.push((from, &head[from..]));
    if parts.len() == 1 {
        return Err(ParseError::MissingKey { offset: start });
    }
    let mut trimmed = parts
        .iter()
        .zip(["path", "key", "version"])
        .map(|(&(at, text), part)| {
            let t = text.trim();
            if t.is_empty() {
                Err(ParseError::EmptyPart {
                    offset: offset + at,
                    part,
                })
            } else {
                Ok(t.to_owned())
            }
        });
    // `parts` has two or three items, so the first two `next()`s are `Some`.
    let path = trimmed.next().transpose()?.unwrap_or_default();
    let key = trimmed.next().transpose()?.unwrap_or_default();
    let version = trimmed.next().transpose()?;
    Ok(RefKind::AvpPath { path, key, version })
}

/// Generic placeholder `<KEY[ | modifier ...]>` starting at `start`, or
/// `None` when the text there is not one.
///
/// argocd-vault-plugin takes any `<...>` on one line as a generic placeholder
/// (`<(.*)>`, lazy). This is narrower, so that ordinary text is less often
/// taken for a placeholder: the body ends at the first `>`, holds no `<` or
/// line break, and the key (before any `|`, trimmed) is non-empty with no
/// whitespace. A key starting with `path:` (as in `< path:a#b>`) is read as an
/// inline-path placeholder, as argocd-vault-plugin does.
fn parse_generic(input: &str, start: usize) -> Result<Option<Reference>, ParseError> {
    let bytes = input.as_bytes();
    let body_start = start + 1;
    let mut end = None;
    for (k, &b) in bytes[body_start..].iter().enumerate() {
        match b {
            b'>' => {
                end = Some(body_start + k);
                break;
            }
            b'<' | b'\n' => return Ok(None),
            _ => {}
        }
    }
    let Some(end) = end else { return Ok(None) };
    let body = &input[body_start..end];
    let (head, mods) = split_modifiers(body);
    let key = head.trim();
    if key.is_empty() || key.contains(char::is_whitespace) {
        return Ok(None);
    }
    let key_offset = body_start + (head.len() - head.trim_start().len());
    let kind = match key.strip_prefix("path:") {
        Some(rest) => parse_path_head(rest, key_offset + 5, start)?,
        None => RefKind::AvpGeneric {
            key: key.to_owned(),
        },
    };
    let modifiers = match mods {
        Some(m) => parse_modifiers(m, body_start + head.len())?,
        None => Vec::new(),
    };
    Ok(Some(Reference {
        span: start..end + 1,
        kind,
        modifiers,
    }))
}

/// `| name args | name args ...` starting at byte `offset` (the first `|`).
fn parse_modifiers(text: &str, offset: usize) -> Result<Vec<Modifier>, ParseError> {
    let mut out = Vec::new();
    // `text` starts with `|`; each round reads one `| name args` segment.
    let mut bar = 0;
    while bar < text.len() {
        let seg_start = bar + 1;
        let seg_end = text[seg_start..]
            .find('|')
            .map_or(text.len(), |p| seg_start + p);
        let seg = &text[seg_start..seg_end];
        let mut words = seg.split_whitespace();
        let Some(name) = words.next() else {
            return Err(ParseError::EmptyModifier {
                offset: offset + bar,
            });
        };
        let name_offset = offset + seg_start + (seg.len() - seg.trim_start().len());
        let args: Vec<&str> = words.collect();
        out.push(modifier(name, &args, name_offset)?);
        bar = seg_end;
    }
    Ok(out)
}

fn modifier(name: &str, args: &[&str], offset: usize) -> Result<Modifier, ParseError> {
    let no_args = |m: Modifier| {
        if args.is_empty() {
            Ok(m)
        } else {
            Err(ParseError::ModifierArguments {
                offset,
                modifier: m.name(),
                problem: "takes no arguments",
                usage: m.name(),
            })
        }
    };
    match name {
        "base64encode" => no_args(Modifier::Base64Encode),
        "base64decode" => no_args(Modifier::Base64Decode),
        "jsonParse" => no_args(Modifier::JsonParse),
        "yamlParse" => no_args(Modifier::YamlParse),
        "sha256sum" => no_args(Modifier::Sha256Sum),
        "jsonPath" if args.is_empty() => Err(ParseError::ModifierArguments {
            offset,
            modifier: "jsonPath",
            problem: "needs a JSONPath template",
            usage: "jsonPath {.a.b}",
        }),
        "jsonPath" => Ok(Modifier::JsonPath(args.join(" "))),
        "indent" => match args {
            [n] => n.parse::<usize>().map(Modifier::Indent).map_err(|_| {
                ParseError::ModifierArguments {
                    offset,
                    modifier: "indent",
                    problem: "needs a whole number of spaces",
                    usage: "indent 4",
                }
            }),
            _ => Err(ParseError::ModifierArguments {
                offset,
                modifier: "indent",
                problem: "takes exactly one argument",
                usage: "indent 4",
            }),
        },
        _ => Err(ParseError::UnknownModifier {
            offset,
            name: name.chars().take(40).collect(),
            suggestion: suggest(name),
        }),
    }
}

/// A known modifier that `name` probably meant: the same name in another
/// case, or the only one that it is a prefix of (ignoring case).
fn suggest(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    if let Some(m) = Modifier::NAMES
        .iter()
        .find(|m| m.eq_ignore_ascii_case(name))
    {
        return Some(m);
    }
    if lower.len() < 4 {
        return None;
    }
    let mut prefixed = Modifier::NAMES
        .iter()
        .filter(|m| m.to_ascii_lowercase().starts_with(&lower));
    match (prefixed.next(), prefixed.next()) {
        (Some(m), None) => Some(m),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// vals URIs

/// `[secret]ref+SCHEME://BODY[+]` with `ref+` at `at`, or `None` when `ref+`
/// is not followed by `SCHEME://` (then it is ordinary text).
///
/// Like vals, the URI runs to the first `+` (consumed as its explicit end),
/// line break or end of string. Unlike vals, it also ends at ASCII
/// whitespace: write a space in a key as `%20`.
fn parse_vals(input: &str, at: usize, consumed: usize) -> Result<Option<Reference>, ParseError> {
    let bytes = input.as_bytes();
    let secretref = at >= consumed + SECRET.len() && bytes[..at].ends_with(SECRET);
    let start = if secretref { at - SECRET.len() } else { at };

    // The scheme: vals takes anything up to `:` (`[^+:]*`); so do we, then
    // check it, so that a mistyped scheme is an error rather than text.
    let scheme_start = at + VALS_OPEN.len();
    let scheme_len = bytes[scheme_start..]
        .iter()
        .position(|&b| b == b':' || b == b'+' || b.is_ascii_whitespace())
        .unwrap_or(bytes.len() - scheme_start);
    let sep = scheme_start + scheme_len;
    if !bytes[sep..].starts_with(b"://") {
        return Ok(None);
    }
    let scheme = &input[scheme_start..sep];
    if scheme.is_empty() {
        return Err(ParseError::MissingScheme { offset: start });
    }
    let valid = scheme.as_bytes()[0].is_ascii_alphabetic()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    if !valid {
        return Err(ParseError::InvalidScheme {
            offset: scheme_start,
        });
    }

    let body_start = sep + 3;
    let body_len = bytes[body_start..]
        .iter()
        .position(|&b| b == b'+' || b.is_ascii_whitespace())
        .unwrap_or(bytes.len() - body_start);
    let body_end = body_start + body_len;
    let explicit_end = bytes.get(body_end) == Some(&b'+');
    let end = body_end + usize::from(explicit_end);
    let body = &input[body_start..body_end];
    if body.is_empty() {
        return Err(ParseError::EmptyValsPath { offset: start });
    }

    let (before_frag, frag) = match body.find('#') {
        Some(p) => (&body[..p], Some((body_start + p, &body[p + 1..]))),
        None => (body, None),
    };
    let (raw_path, query) = match before_frag.find('?') {
        Some(p) => (
            &before_frag[..p],
            Some((body_start + p + 1, &before_frag[p + 1..])),
        ),
        None => (before_frag, None),
    };
    // The path may be empty when parameters or a fragment follow, as in
    // vals' `ref+doppler://#FOO`; the store decides what that means. With
    // neither (`ref+vault://?`) there is nothing to resolve.
    let path = percent_decode(raw_path, body_start)?;
    let params = match query {
        Some((offset, q)) => parse_query(q, offset)?,
        None => Vec::new(),
    };
    let fragment = match frag {
        Some((hash, f)) => Some(parse_pointer(f, hash)?),
        None => None,
    };
    if path.is_empty() && params.is_empty() && fragment.is_none() {
        return Err(ParseError::EmptyValsPath { offset: start });
    }
    Ok(Some(Reference {
        span: start..end,
        kind: RefKind::Vals(ValsRef {
            secretref,
            scheme: scheme.to_ascii_lowercase(),
            path,
            params,
            fragment,
            explicit_end,
            bare: false,
        }),
        modifiers: Vec::new(),
    }))
}

// ---------------------------------------------------------------------------
// 1Password secret references

/// `{{ op://... }}` at `start` (an `op inject` template), or `None` when the
/// braces hold something else.
fn parse_op_template(input: &str, start: usize) -> Result<Option<Reference>, ParseError> {
    let inner = start + 2;
    let rest = &input[inner..];
    let lead = rest.len() - rest.trim_start_matches(' ').len();
    if !rest.as_bytes()[lead..].starts_with(OP_OPEN) {
        return Ok(None);
    }
    // A secret reference is short: looking for `}}` only this far keeps the
    // scan linear however many `{{ op://` a string holds.
    let mut window = rest.len().min(OP_TEMPLATE_LIMIT);
    while !rest.is_char_boundary(window) {
        window -= 1;
    }
    let Some(close) = rest[..window].find("}}") else {
        return Ok(None);
    };
    let body_end = inner + rest[..close].trim_end_matches(' ').len();
    parse_op(input, start, inner + lead, body_end, inner + close + 2)
}

/// `op://VAULT/ITEM[/SECTION]/FIELD[?PARAMS]` between `at` and `body_end`; the
/// reference spans `start..end`. A line break inside means it is ordinary text.
fn parse_op(
    input: &str,
    start: usize,
    at: usize,
    body_end: usize,
    end: usize,
) -> Result<Option<Reference>, ParseError> {
    let body_start = at + OP_OPEN.len();
    let body = &input[body_start..body_end];
    if body.contains(['\n', '\r']) {
        return Ok(None);
    }
    let (path, params) = match body.find('?') {
        Some(p) => (&body[..p], parse_query(&body[p + 1..], body_start + p + 1)?),
        None => (body, Vec::new()),
    };
    let parts: Vec<&str> = path.split('/').collect();
    if !(3..=4).contains(&parts.len()) || parts.iter().any(|p| p.trim().is_empty()) {
        return Err(ParseError::OpReference { offset: at });
    }
    Ok(Some(Reference {
        span: start..end,
        kind: RefKind::Vals(ValsRef {
            secretref: false,
            scheme: "op".into(),
            path: path.to_string(),
            params,
            fragment: None,
            explicit_end: false,
            bare: true,
        }),
        modifiers: Vec::new(),
    }))
}

/// `a=1&b=2` at byte `offset`. Empty items (`a=1&&b=2`) are skipped, as Go's
/// `url.ParseQuery` does; an item without `=` has an empty value.
fn parse_query(q: &str, offset: usize) -> Result<Vec<(String, String)>, ParseError> {
    let mut out = Vec::new();
    let mut at = offset;
    for item in q.split('&') {
        let item_offset = at;
        at += item.len() + 1;
        if item.is_empty() {
            continue;
        }
        let (k, v) = item.split_once('=').unwrap_or((item, ""));
        if k.is_empty() {
            return Err(ParseError::EmptyParamName {
                offset: item_offset,
            });
        }
        let v_offset = item_offset + k.len() + 1;
        out.push((
            percent_decode(k, item_offset)?,
            percent_decode(v, v_offset)?,
        ));
    }
    Ok(out)
}

/// The fragment after `#` (at byte `hash`) as JSON-pointer tokens: the
/// leading `/` is optional (as in vals), and empty tokens are kept, since
/// RFC 6901 allows empty keys and vals' `httpjson` fragments (`#///*[1]/name`)
/// use them.
fn parse_pointer(f: &str, hash: usize) -> Result<Vec<String>, ParseError> {
    if let Some(p) = f.find('?') {
        return Err(ParseError::ParamsAfterFragment {
            offset: hash + 1 + p,
        });
    }
    let decoded = percent_decode(f, hash + 1)?;
    let pointer = decoded.strip_prefix('/').unwrap_or(&decoded);
    if pointer.is_empty() {
        return Err(ParseError::EmptyFragment { offset: hash });
    }
    pointer
        .split('/')
        .map(|raw| unescape_token(raw).ok_or(ParseError::BadPointerEscape { offset: hash }))
        .collect()
}

/// RFC 6901 token unescaping: `~1` is `/`, `~0` is `~`, any other `~` is bad.
fn unescape_token(raw: &str) -> Option<String> {
    if !raw.contains('~') {
        return Some(raw.to_owned());
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// Decodes `%XX` escapes of `s` (at byte `offset`); the result must be UTF-8.
fn percent_decode(s: &str, offset: usize) -> Result<String, ParseError> {
    if !s.contains('%') {
        return Ok(s.to_owned());
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = |j: usize| b.get(j).and_then(|c| (*c as char).to_digit(16));
            match (hex(i + 1), hex(i + 2)) {
                (Some(h), Some(l)) => {
                    // Two hex digits are at most 0xFF.
                    out.push((h * 16 + l) as u8);
                    i += 3;
                }
                _ => return Err(ParseError::BadPercentEscape { offset: offset + i }),
            }
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ParseError::BadPercentEscape { offset })
}
