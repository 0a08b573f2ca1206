//! Credentials outside Secret data: every value of every YAML/JSON document judged by its key
//! name and its shape ([`keys`]), and every line of every text file (comments, scripts,
//! Markdown, config text inside YAML strings) searched for known credential formats
//! ([`formats`]). Secrets themselves are judged by [`crate::manifest`]; `scan --only secrets`
//! turns this module off.
//!
//! Where a value sits decides what its key is ([`locations`]): a mapping key, the `name` of a
//! `name`/`value` pair (container `env`, Argo CD `plugin.env` and `helm.parameters`), or the
//! key of a `key = value` line inside a string (INI, properties, TOML, a Helm `values: |`).

pub(crate) mod formats;
pub(crate) mod keys;
mod locations;
pub(crate) mod prefilter;

use crate::engine::{FileCx, Hit, KeyAt, Owner};
use crate::finding::Severity;
use crate::rules::Rule;

pub(crate) use locations::{names_values_files, scan_comments, scan_document, scan_values_file};

/// Searches every line of the file for known credential formats, skipping lines that already
/// hold a finding: a `known-credential` finding per line, at the match.
pub(crate) fn scan_lines(cx: &mut FileCx<'_>) {
    let text = cx.text;
    let lits = prefilter::format_literals();
    // Config files and scripts: every line, for `KEY=literal` lines too.
    let assignments = keys::judges_assignments(cx.path);
    if lits.every_line || assignments {
        for (n, start, line) in lines(text) {
            scan_line(cx, n, start, line, assignments);
        }
        return;
    }
    // Only lines holding a literal of some format can match it.
    let (mut line_no, mut counted_to, mut next_line) = (1, 0, 0);
    for m in lits.searcher.find_iter(text.as_bytes()) {
        if m.start() < next_line {
            continue;
        }
        let start = memchr::memrchr(b'\n', &text.as_bytes()[..m.start()]).map_or(0, |i| i + 1);
        let end = memchr::memchr(b'\n', &text.as_bytes()[m.start()..])
            .map_or(text.len(), |i| m.start() + i + 1);
        line_no += memchr::memchr_iter(b'\n', &text.as_bytes()[counted_to..start]).count();
        counted_to = start;
        let line = text[start..end].trim_end_matches(['\n', '\r']);
        scan_line(cx, line_no, start, line, false);
        next_line = end;
    }
}

/// Each line of `text`: its number (from 1), the offset where it starts and its text without
/// the line break.
fn lines(text: &str) -> impl Iterator<Item = (usize, usize, &str)> {
    let mut offset = 0;
    text.split_inclusive('\n').enumerate().map(move |(i, raw)| {
        let start = offset;
        offset += raw.len();
        (i + 1, start, raw.trim_end_matches(['\n', '\r']))
    })
}

/// A `KEY=literal` line of a config file or script (`export RESTIC_PASSWORD=...`, a tfvars
/// `api_token = "..."`) whose key is a credential's: a `credential-value` finding.
fn assignment(cx: &mut FileCx<'_>, owner: &Owner<'_>, n: usize, start: usize, line: &str) {
    let Some((key, range)) = keys::find_assignment(line) else {
        return;
    };
    let at = || start + range.start;
    let place = format!("line {n}: `{{key}}`");
    locations::config_line_hit(cx, owner, (key, &line[range.clone()]), &at, &place);
}

/// Searches line `n` (`line`, at byte `start`, without its line break) for known credential
/// formats and, when `assignments`, for a `KEY=literal` credential.
fn scan_line(cx: &mut FileCx<'_>, n: usize, start: usize, line: &str, assignments: bool) {
    let Some((col, fmt, matched)) = formats::find_in_line(line.as_bytes()) else {
        if assignments {
            assignment(cx, &Owner::default(), n, start, line);
        }
        return;
    };
    if cx.findings.iter().any(|f| f.location.line == n)
        || cx.judged_lines.iter().any(|(a, b)| *a <= n && n <= *b)
    {
        return;
    }
    let column = 1 + line[..col - 1].chars().count();
    let message = format!(
        "line {n} holds {} in plain text; anyone who can read the repository or its history can use it",
        fmt.what
    );
    cx.push(Hit {
        rule: Rule::KnownCredential,
        owner: &Owner::default(),
        key: String::new(),
        fp_key: fmt.what.to_string(),
        at: KeyAt {
            line: n,
            column,
            offset: start + col - 1,
            shown: "",
            sep: "",
        },
        severity: fmt.severity,
        message,
        hash_input: matched,
        related: None,
    });
}

/// The class of a value found by key name.
const CREDENTIAL_VALUE: crate::value::Class = crate::value::Class {
    severity: Severity::Medium,
    what: "a credential-looking literal",
};
