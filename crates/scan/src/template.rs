//! The line-based reader for files that are not YAML: Helm templates (`{{ ... }}` lines) and
//! broken YAML that still looks like a Secret.
//!
//! It reads block-style YAML the way people write Secret templates: documents split at `---`,
//! top-level `kind`, `apiVersion`, `metadata`, and the entries of a top-level `data:` or
//! `stringData:` block (plain, quoted and block-scalar values, and a flow mapping on the same
//! line). Lines that hold only template actions (`{{- if ... }}`, `{{ toYaml .Values.x | nindent
//! 2 }}`) are skipped; a value with template expressions is a templated value. It never fails:
//! what it cannot read, it leaves alone.

use crate::engine::{FileCx, KeyAt, Owner, SopsState, ALLOW_ANNOTATION};

/// One line of the file.
#[derive(Clone, Copy)]
struct Line<'a> {
    /// 1-based.
    number: usize,
    /// Byte offset of `text` in the file.
    offset: usize,
    /// The line without its break (and without a BOM on the first line).
    text: &'a str,
}

impl Line<'_> {
    fn indent(&self) -> usize {
        self.text.len() - self.text.trim_start_matches(' ').len()
    }

    fn body(&self) -> &str {
        self.text.trim()
    }

    /// Blank, a comment, or nothing but template actions.
    fn is_filler(&self) -> bool {
        let b = self.body();
        b.is_empty() || b.starts_with('#') || is_template_only(b)
    }
}

/// Whether the text is nothing but `{{ ... }}` actions.
fn is_template_only(s: &str) -> bool {
    let mut rest = s.trim();
    if !rest.starts_with("{{") {
        return false;
    }
    while let Some(after) = rest.strip_prefix("{{") {
        let Some(close) = after.find("}}") else {
            return false;
        };
        rest = after[close + 2..].trim_start();
    }
    rest.is_empty()
}

/// Whether a file that did not parse is worth reading line by line: a template, or a line
/// `kind: Secret`.
pub(crate) fn worth_reading(text: &str) -> bool {
    text.contains("{{")
        || text
            .lines()
            .any(|l| top_level(l).is_some_and(|(k, v)| k == "kind" && scalar(v) == "Secret"))
}

/// `key: value` at indentation 0, as (key, raw rest).
fn top_level(line: &str) -> Option<(&str, &str)> {
    let line = line.strip_prefix('\u{feff}').unwrap_or(line);
    if line.starts_with([' ', '\t', '#', '-', '{']) {
        return None;
    }
    entry(line.trim_end_matches('\r'))
}

/// `key: rest` (key possibly quoted or a template expression), as (key text, rest).
fn entry(body: &str) -> Option<(&str, &str)> {
    let body = body.trim_start();
    let key_end = if body.starts_with('"') || body.starts_with('\'') {
        let q = body.as_bytes()[0] as char;
        body[1..].find(q)? + 2
    } else if body.starts_with("{{") {
        body.find("}}")? + 2
    } else {
        body.find(':')?
    };
    let rest = body.get(key_end..)?;
    let rest = rest.strip_prefix(':')?;
    if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
        return None;
    }
    Some((&body[..key_end], rest))
}

/// A plain or quoted scalar's text: quotes removed, a trailing ` # comment` dropped.
fn scalar(raw: &str) -> String {
    let t = raw.trim();
    if let Some(inner) = t.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => return out,
                '\\' => match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some(o) => out.push(o),
                    None => {}
                },
                c => out.push(c),
            }
        }
        return out;
    }
    if let Some(inner) = t.strip_prefix('\'') {
        return match inner.find('\'') {
            Some(end) => inner[..end].to_string(),
            None => inner.to_string(),
        };
    }
    let mut s = t;
    if let Some(i) = find_comment(s) {
        s = s[..i].trim_end();
    }
    s.to_string()
}

/// Where a ` #` comment starts in a plain scalar (not inside `{{ }}`).
fn find_comment(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut depth = 0usize;
    for i in 0..b.len() {
        if b[i..].starts_with(b"{{") {
            depth += 1;
        } else if b[i..].starts_with(b"}}") {
            depth = depth.saturating_sub(1);
        } else if b[i] == b'#' && depth == 0 && (i == 0 || b[i - 1] == b' ' || b[i - 1] == b'\t') {
            return Some(i);
        }
    }
    None
}

fn key_text(k: &str) -> String {
    scalar(k)
}

/// Reads the file line by line and judges every Secret document in it.
pub(crate) fn scan(cx: &mut FileCx<'_>) {
    let text = cx.text;
    let mut lines = Vec::new();
    let mut offset = 0;
    for (i, raw) in text.split('\n').enumerate() {
        let mut line = raw.strip_suffix('\r').unwrap_or(raw);
        let mut off = offset;
        // A BOM starts the file, or a document of files concatenated without care.
        if let Some(l) = line.strip_prefix('\u{feff}') {
            line = l;
            off += 3;
        }
        lines.push(Line {
            number: i + 1,
            offset: off,
            text: line,
        });
        offset += raw.len() + 1;
    }
    let mut start = 0;
    for i in 0..=lines.len() {
        let boundary = i == lines.len() || {
            let t = lines[i].text;
            (t.starts_with("---") && (t.len() == 3 || t[3..].starts_with([' ', '\t', '#'])))
                || t == "..."
        };
        if boundary {
            scan_doc(cx, &lines[start..i]);
            start = i + 1;
        }
    }
}

fn scan_doc(cx: &mut FileCx<'_>, lines: &[Line<'_>]) {
    let mut kind = None;
    let mut api = None;
    for l in lines {
        if let Some((k, v)) = top_level(l.text) {
            match key_text(k).as_str() {
                "kind" => kind = Some(scalar(v)),
                "apiVersion" => api = Some(scalar(v)),
                _ => {}
            }
        }
    }
    if kind.as_deref() != Some("Secret") {
        return;
    }
    if api
        .as_deref()
        .is_some_and(|a| a != "v1" && !a.contains("{{"))
    {
        return;
    }
    let (name, namespace) = metadata(lines);
    let owner = Owner {
        kind: Some("Secret"),
        name: name.as_deref(),
        namespace: namespace.as_deref(),
        secret_type: None,
        allowed: lines.iter().any(|l| {
            l.body().starts_with(&format!("{ALLOW_ANNOTATION}:"))
                || l.body().starts_with(&format!("\"{ALLOW_ANNOTATION}\":"))
        }),
        generic: lines.iter().any(|l| {
            let b = l.body();
            b.starts_with("avp.kubernetes.io/path:") || b.starts_with("kustodian.io/path:")
        }),
    };
    for (i, l) in lines.iter().enumerate() {
        let Some((k, rest)) = top_level(l.text) else {
            continue;
        };
        let section = key_text(k);
        if section != "data" && section != "stringData" {
            continue;
        }
        let inline = scalar(rest);
        if !inline.is_empty() {
            if inline.starts_with('{') && !inline.starts_with("{{") {
                flow_map(cx, &owner, &section, l, rest);
            }
            continue;
        }
        block(cx, &owner, &section, &lines[i + 1..]);
    }
}

/// The direct children of a top-level key, from the lines after it: up to the next top-level
/// line, those at the indentation of the first, each with its index in `lines`.
fn children<'l, 'a>(lines: &'l [Line<'a>]) -> impl Iterator<Item = (usize, Line<'a>)> + 'l {
    let mut child = None;
    lines
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, l)| !l.is_filler())
        .take_while(|(_, l)| l.indent() != 0)
        .filter(move |(_, l)| *child.get_or_insert(l.indent()) == l.indent())
}

/// `name` and `namespace` under a top-level `metadata:`.
fn metadata(lines: &[Line<'_>]) -> (Option<String>, Option<String>) {
    let (mut name, mut ns) = (None, None);
    let Some(start) = lines
        .iter()
        .position(|l| top_level(l.text).is_some_and(|(k, _)| key_text(k) == "metadata"))
    else {
        return (None, None);
    };
    for (_, l) in children(&lines[start + 1..]) {
        if let Some((k, v)) = entry(l.text) {
            match key_text(k).as_str() {
                "name" => name = Some(scalar(v)),
                "namespace" => ns = Some(scalar(v)),
                _ => {}
            }
        }
    }
    (name.filter(|s| !s.is_empty()), ns.filter(|s| !s.is_empty()))
}

/// The entries of a block mapping under `data:`/`stringData:`.
fn block(cx: &mut FileCx<'_>, owner: &Owner<'_>, section: &str, lines: &[Line<'_>]) {
    for (at_line, l) in children(lines) {
        let indent = l.indent();
        let Some((k, rest)) = entry(l.text) else {
            continue;
        };
        let key = key_text(k);
        let rest_t = rest.trim();
        let value = if is_block_indicator(rest_t) {
            let mut body: Vec<&str> = lines[at_line + 1..]
                .iter()
                .take_while(|b| b.body().is_empty() || b.indent() > indent)
                .map(|b| b.text)
                .collect();
            while body.last().is_some_and(|b| b.trim().is_empty()) {
                body.pop();
            }
            let min = body
                .iter()
                .filter(|b| !b.trim().is_empty())
                .map(|b| b.len() - b.trim_start().len())
                .min()
                .unwrap_or(0);
            body.iter()
                .map(|b| b.get(min..).unwrap_or(""))
                .collect::<Vec<_>>()
                .join("\n")
        } else {
            scalar(rest)
        };
        if value.is_empty() {
            continue;
        }
        let at = KeyAt {
            line: l.number,
            column: indent + 1,
            offset: l.offset + indent,
            shown: k,
            sep: ": ",
        };
        cx.judge_secret_value(owner, section, &key, &value, at, SopsState::None);
    }
}

fn is_block_indicator(s: &str) -> bool {
    let s = match find_comment(s) {
        Some(i) => s[..i].trim_end(),
        None => s,
    };
    let mut chars = s.chars();
    matches!(chars.next(), Some('|') | Some('>'))
        && chars.all(|c| c == '-' || c == '+' || c.is_ascii_digit())
}

/// `data: {a: x, b: y}` on one line.
fn flow_map(cx: &mut FileCx<'_>, owner: &Owner<'_>, section: &str, l: &Line<'_>, rest: &str) {
    let Some(start) = l.text.len().checked_sub(rest.len()) else {
        return;
    };
    let Ok(docs) = kustodian_manifest::parse_stream(rest) else {
        return;
    };
    let Some(entries) = docs.first().and_then(|d| d.root.as_map()) else {
        return;
    };
    for e in entries {
        let (Some(key), Some(value)) = (e.key.as_scalar(), e.value.as_scalar()) else {
            continue;
        };
        if e.value.is_null() {
            continue;
        }
        let shown = rest.get(e.key.span.range()).unwrap_or(key);
        let at = KeyAt {
            line: l.number,
            column: start + e.key.span.start.column,
            offset: l.offset + start + e.key.span.start.offset,
            shown,
            sep: ": ",
        };
        cx.judge_secret_value(owner, section, key, value, at, SopsState::None);
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::Scanner;
    use crate::finding::Severity;

    /// What the line reader finds (a file that does not parse is also an
    /// `unreadable-manifest` finding, left out here).
    fn scan(src: &str) -> Vec<(usize, usize, String, Severity, Option<String>)> {
        Scanner::new()
            .scan_file("t.yaml", src.as_bytes())
            .findings
            .into_iter()
            .filter(|f| f.rule != crate::rules::Rule::UnreadableManifest)
            .map(|f| {
                (
                    f.location.line,
                    f.location.column,
                    f.key,
                    f.severity,
                    f.name,
                )
            })
            .collect()
    }

    #[test]
    fn helm_template_with_a_literal_and_templated_values() {
        let src = r#"{{- if .Values.enabled }}
apiVersion: v1
kind: Secret
metadata:
  name: {{ include "app.fullname" . }}-creds
  labels:
    {{- include "app.labels" . | nindent 4 }}
type: Opaque
data:
  password: Y29ycmVjdC1ob3JzZS1iYXR0ZXJ5
  token: {{ .Values.token | b64enc | quote }}
  {{- if .Values.extra }}
  extra: {{ .Values.extra | b64enc }}
  {{- end }}
  {{- range $k, $v := .Values.more }}
  {{ $k }}: {{ $v | b64enc }}
  {{- end }}
stringData:
  config.yaml: |
    url: https://{{ .Values.host }}
    key: AKIAIOSFODNN7EXAMPLE
  quoted: "{{ .Values.q }}"
  other: 'literal-plaintext-value' # trailing comment
{{- end }}
"#;
        let got = scan(src);
        let keys: Vec<_> = got.iter().map(|g| (g.0, g.1, g.2.as_str(), g.3)).collect();
        assert_eq!(
            keys,
            vec![
                (10, 3, "password", Severity::Medium),
                (19, 3, "config.yaml", Severity::Critical),
                (23, 3, "other", Severity::Medium),
            ]
        );
        assert_eq!(
            got[0].4.as_deref(),
            Some("{{ include \"app.fullname\" . }}-creds")
        );
    }

    #[test]
    fn safe_template_has_no_finding() {
        let src = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n{{ toYaml .Values.secretData | indent 2 }}\n  password: {{ .Values.password | b64enc }}\nstringData: {{ .Values.stringData | toYaml | nindent 2 }}\n";
        assert!(scan(src).is_empty());
    }

    #[test]
    fn broken_yaml_secret_is_still_read() {
        let src = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: broken\n   bad: indent: here\nstringData: {password: plaintext-value-here, empty: ''}\n---\nkind: ConfigMap\ndata:\n  a: [unclosed\n";
        let got = scan(src);
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].0, got[0].1), (6, 14));
    }

    #[test]
    fn broken_non_secret_yaml_is_no_finding() {
        assert!(scan("kind: ConfigMap\nmetadata: {name: x\ndata:\n  sops: [\n").is_empty());
    }

    #[test]
    fn a_bom_inside_the_stream_falls_back_to_lines() {
        let got = scan(
            "---\nkind: ConfigMap\n---\n\u{feff}kind: Secret\nstringData:\n  a: plaintext-value\n",
        );
        assert_eq!((got[0].0, got[0].1), (6, 3));
    }

    #[test]
    fn allow_in_templates() {
        let src = "kind: Secret\nmetadata:\n  name: {{ .Release.Name }}\nstringData:\n  a: plaintext-value # kustodian:allow\n  b: plaintext-value\n";
        assert_eq!(scan(src).len(), 1);
        let src = "kind: Secret\nmetadata:\n  name: {{ .Release.Name }}\n  annotations:\n    kustodian.io/allow: \"demo chart\"\nstringData:\n  b: plaintext-value\n";
        assert!(scan(src).is_empty());
    }
}
