//! Reporters: one [`Report`] trait, one type per output format. Every format takes rule codes,
//! descriptions and help from [`crate::rules::RULES`], and none prints value text: findings do
//! not hold any.
//!
//! - [`Human`]: miette diagnostics (file:line:column, the redacted line, severity, help), then a
//!   summary line. The miette handler is injected, so the binary picks the graphical theme and
//!   this crate needs no terminal features.
//! - [`Json`]: `{"findings": [...]}` as `docs/scan.md` documents it.
//! - [`Sarif`]: SARIF 2.1.0 for GitHub code scanning.
//! - [`Github`]: GitHub Actions workflow annotations.

use std::fmt;
use std::io::{self, Write};

use miette::{
    Diagnostic, LabeledSpan, MietteError, MietteSpanContents, ReportHandler, SourceCode,
    SourceSpan, SpanContents,
};

use crate::finding::{Excerpt, Finding, Location, Severity};
use crate::policy::Policy;
use crate::rules::{finding_help, StoreHint};
use crate::source::ScanResult;

mod github;
mod sarif;

pub use github::Github;
pub use sarif::{Sarif, INFORMATION_URI};

/// An output format.
pub trait Report {
    /// Writes the report of a finished scan to `out`.
    fn report(&self, result: &ScanResult, policy: &Policy, out: &mut dyn Write) -> io::Result<()>;
}

/// `{"findings": [{"path", "line", "column", "rule", "kind", "name", "namespace", "key",
/// "severity", "fingerprint", "message"}...]}`, pretty-printed, one trailing newline; a history
/// scan adds `"commit"` (the full id), `"author"`, `"email"` and `"date"` to each finding.
#[derive(Clone, Copy, Debug, Default)]
pub struct Json;

#[derive(serde::Serialize)]
struct JsonFinding<'a> {
    path: &'a str,
    line: usize,
    column: usize,
    rule: &'a str,
    kind: Option<&'a str>,
    name: Option<&'a str>,
    namespace: Option<&'a str>,
    key: &'a str,
    severity: Severity,
    fingerprint: &'a str,
    message: std::borrow::Cow<'a, str>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    commit: Option<JsonCommit<'a>>,
}

/// The commit fields of a history finding.
#[derive(serde::Serialize)]
struct JsonCommit<'a> {
    commit: &'a str,
    author: &'a str,
    email: &'a str,
    date: &'a str,
}

#[derive(serde::Serialize)]
struct JsonReport<'a> {
    findings: Vec<JsonFinding<'a>>,
}

impl Report for Json {
    fn report(&self, result: &ScanResult, _policy: &Policy, out: &mut dyn Write) -> io::Result<()> {
        let findings = result
            .findings
            .iter()
            .map(|f| JsonFinding {
                path: &f.location.path,
                line: f.location.line,
                column: f.location.column,
                rule: f.rule_id(),
                kind: f.kind.as_deref(),
                name: f.name.as_deref(),
                namespace: f.namespace.as_deref(),
                key: &f.key,
                severity: f.severity,
                fingerprint: &f.fingerprint,
                // A finding from history also says what to do about a value already in it.
                message: match crate::rules::history_advice(f) {
                    Some(advice) => format!("{}; {advice}", f.message).into(),
                    None => f.message.as_str().into(),
                },
                commit: f.commit.as_ref().map(|c| JsonCommit {
                    commit: &c.id,
                    author: &c.author,
                    email: &c.email,
                    date: &c.date,
                }),
            })
            .collect();
        serde_json::to_writer_pretty(&mut *out, &JsonReport { findings })?;
        writeln!(out)
    }
}

/// Findings as miette diagnostics, then a summary line.
pub struct Human {
    handler: Box<dyn ReportHandler>,
    store: StoreHint,
}

impl Default for Human {
    /// Plain-text diagnostics ([`miette::NarratableReportHandler`]); the binary passes a
    /// graphical handler instead.
    fn default() -> Self {
        Human {
            handler: Box::new(miette::NarratableReportHandler::new()),
            store: StoreHint::default(),
        }
    }
}

impl Human {
    /// A reporter that renders each finding with `handler`.
    pub fn new(handler: Box<dyn ReportHandler>) -> Self {
        Human {
            handler,
            store: StoreHint::default(),
        }
    }

    /// Help lines give reference examples for `store`.
    pub fn with_store(mut self, store: StoreHint) -> Self {
        self.store = store;
        self
    }
}

struct Rendered<'a> {
    handler: &'a dyn ReportHandler,
    diag: &'a FindingDiagnostic,
}

impl fmt::Display for Rendered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.handler.debug(self.diag, f)
    }
}

impl Report for Human {
    fn report(&self, result: &ScanResult, policy: &Policy, out: &mut dyn Write) -> io::Result<()> {
        for f in &result.findings {
            let diag = FindingDiagnostic::new(f, policy.blocks(f)).with_store(f, self.store);
            writeln!(
                out,
                "{}",
                Rendered {
                    handler: self.handler.as_ref(),
                    diag: &diag
                }
            )?;
        }
        writeln!(out, "{}", summary(result, policy))
    }
}

/// The closing line of the human report.
pub fn summary(result: &ScanResult, policy: &Policy) -> String {
    let mut scanned = match result.files_scanned {
        1 => "1 file".to_string(),
        n => format!("{n} files"),
    };
    match result.commits_scanned {
        0 => {}
        1 => scanned.push_str(" in 1 commit"),
        n => scanned.push_str(&format!(" in {n} commits")),
    }
    scanned.push_str(" scanned");
    let blocking: Vec<&Finding> = result
        .findings
        .iter()
        .filter(|f| policy.blocks(f))
        .collect();
    if blocking.is_empty() {
        let rest = result.findings.len();
        return if rest == 0 {
            format!("kustodian: no plaintext Secret data ({scanned})")
        } else {
            format!("kustodian: nothing blocks; {rest} finding(s) below the blocking severity ({scanned})")
        };
    }
    let mut by_sev = Vec::new();
    for s in Severity::ALL.iter().rev() {
        let n = blocking.iter().filter(|f| f.severity == *s).count();
        if n > 0 {
            by_sev.push(format!("{n} {s}"));
        }
    }
    let mut files: Vec<&str> = blocking.iter().map(|f| f.location.path.as_str()).collect();
    files.dedup();
    let files = match files.len() {
        1 => "1 file".to_string(),
        n => format!("{n} files"),
    };
    let noun = if blocking.len() == 1 {
        "finding blocks"
    } else {
        "findings block"
    };
    format!(
        "kustodian: {} {noun} ({}) in {files} ({scanned})",
        blocking.len(),
        by_sev.join(", ")
    )
}

/// One finding as a miette diagnostic. Its source is the redacted excerpt, placed at the real
/// line and column, so no value text can reach the output.
#[derive(Debug)]
pub struct FindingDiagnostic {
    message: String,
    code: String,
    help: String,
    blocking: bool,
    label: String,
    source: Excerpted,
    related: Vec<RelatedDiagnostic>,
}

impl FindingDiagnostic {
    /// The diagnostic for `f`; `blocking` chooses error or warning.
    pub fn new(f: &Finding, blocking: bool) -> Self {
        let related = f
            .related
            .iter()
            .map(|r| RelatedDiagnostic {
                message: r.message.clone(),
                source: Excerpted::new(&r.location, &r.excerpt),
            })
            .collect();
        FindingDiagnostic {
            message: f.full_message(),
            code: f.rule_id().to_string(),
            help: finding_help(f, StoreHint::default()),
            blocking,
            label: format!("{} severity", f.severity),
            source: Excerpted::new(&f.location, &f.excerpt),
            related,
        }
    }
}

impl FindingDiagnostic {
    /// The help line of `f` with reference examples for `store`.
    pub fn with_store(mut self, f: &Finding, store: StoreHint) -> Self {
        self.help = finding_help(f, store);
        self
    }
}

impl fmt::Display for FindingDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for FindingDiagnostic {}

impl Diagnostic for FindingDiagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(&self.code))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(if self.blocking {
            miette::Severity::Error
        } else {
            miette::Severity::Warning
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(&self.help))
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(&self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(std::iter::once(
            LabeledSpan::new_primary_with_span(Some(self.label.clone()), self.source.label),
        )))
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        if self.related.is_empty() {
            return None;
        }
        Some(Box::new(self.related.iter().map(|r| r as &dyn Diagnostic)))
    }
}

/// The second place of a finding (the generator entry that reads a file).
#[derive(Debug)]
struct RelatedDiagnostic {
    message: String,
    source: Excerpted,
}

impl fmt::Display for RelatedDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RelatedDiagnostic {}

impl Diagnostic for RelatedDiagnostic {
    fn severity(&self) -> Option<miette::Severity> {
        Some(miette::Severity::Advice)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(&self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(std::iter::once(
            LabeledSpan::new_primary_with_span(Some("here".into()), self.source.label),
        )))
    }
}

/// A one-line source: the redacted excerpt, reported at its real path, line and column.
#[derive(Debug)]
struct Excerpted {
    name: String,
    text: String,
    line: usize,
    column: usize,
    label: SourceSpan,
}

impl Excerpted {
    fn new(loc: &Location, e: &Excerpt) -> Self {
        let end = e.label.end.min(e.text.len());
        let start = e.label.start.min(end);
        Excerpted {
            name: loc.path.clone(),
            text: e.text.clone(),
            line: loc.line,
            column: loc.column,
            label: SourceSpan::new(start.into(), end - start),
        }
    }
}

impl SourceCode for Excerpted {
    fn read_span<'a>(
        &'a self,
        _span: &SourceSpan,
        _before: usize,
        _after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            self.text.as_bytes(),
            SourceSpan::new(0.into(), self.text.len()),
            self.line.saturating_sub(1),
            self.column.saturating_sub(1),
            1,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Scanner;

    fn result(src: &str) -> ScanResult {
        let mut r = ScanResult {
            files_scanned: 1,
            ..Default::default()
        };
        r.findings = Scanner::new()
            .scan_file("deploy/db.yaml", src.as_bytes())
            .findings;
        r.finish();
        r
    }

    const SRC: &str = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ndata:\n  password: Y2FuYXJ5LXZhbHVlLTEyMzQ1\n";

    #[test]
    fn json_has_exactly_the_documented_fields() {
        let mut out = Vec::new();
        Json.report(&result(SRC), &Policy::default(), &mut out)
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let f = &v["findings"][0];
        let mut keys: Vec<_> = f.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "column",
                "fingerprint",
                "key",
                "kind",
                "line",
                "message",
                "name",
                "namespace",
                "path",
                "rule",
                "severity"
            ]
        );
        assert_eq!(f["rule"], "plaintext-secret-data");
        assert_eq!(f["namespace"], serde_json::Value::Null);
        assert_eq!(v.as_object().unwrap().len(), 1);
    }

    #[test]
    fn human_report_names_the_place_and_redacts() {
        let mut out = Vec::new();
        Human::default()
            .report(&result(SRC), &Policy::default(), &mut out)
            .unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(
            s.contains("deploy/db.yaml starting at line 6, column 3"),
            "{s}"
        );
        assert!(s.contains("[REDACTED]"), "{s}");
        assert!(!s.contains("Y2FuYXJ5") && !s.contains("canary"), "{s}");
        assert!(s.contains("plaintext-secret-data"), "{s}");
        assert!(
            s.trim_end()
                .ends_with("kustodian: 1 finding blocks (1 medium) in 1 file (1 file scanned)"),
            "{s}"
        );
    }
}
