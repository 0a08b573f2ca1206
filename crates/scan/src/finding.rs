//! Findings, their severity and fingerprint, and notes (things the scan skipped).
//!
//! A [`Finding`] never holds the value it is about: only where it is, what object and key it
//! belongs to, a message naming what the value looks like, and a fingerprint derived from a hash
//! of the value.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

use crate::rules::Rule;

/// How bad a finding is, from what the value turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Short or placeholder-like values, and encrypted values that lost their metadata.
    Low,
    /// A plaintext value with no recognisable shape.
    Medium,
    /// Registry credentials, JSON Web Tokens, URLs with a password.
    High,
    /// Private keys and cloud or VCS tokens.
    Critical,
}

impl Severity {
    /// Every severity, lowest first.
    pub const ALL: [Severity; 4] = [
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// Lower-case name, as in JSON output and policies.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                format!("unknown severity `{s}` (expected low, medium, high or critical)")
            })
    }
}

impl serde::Serialize for Severity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A place in a file, 1-based.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// Path relative to the repository root (or the working directory outside a repository),
    /// with `/` separators.
    pub path: String,
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.path, self.line, self.column)
    }
}

/// One value that blocks (or, under a laxer policy, would be reported).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// Where the key is.
    pub location: Location,
    /// Which rule found it.
    pub rule: Rule,
    /// The object's kind (`Secret`, `secretGenerator`, the kind of a SOPS document), if known.
    pub kind: Option<String>,
    /// The object's name, if known.
    pub name: Option<String>,
    /// The object's namespace, if known.
    pub namespace: Option<String>,
    /// The key, as a dotted path inside the object (`data.password`, `literals.token`).
    pub key: String,
    /// From what the value looks like.
    pub severity: Severity,
    /// Stable identity for baselines: a hash of the path, kind/name, key and a hash of the
    /// value, never the value.
    pub fingerprint: String,
    /// What is wrong, with no value text.
    pub message: String,
    /// The source line as shown to people, with the value replaced by `[REDACTED]`.
    pub excerpt: Excerpt,
    /// A second place that belongs to the finding (the `secretGenerator` entry of a file).
    pub related: Option<Related>,
    /// The custom policy rule that matched, for [`Rule::CustomRule`] findings.
    pub custom_rule: Option<String>,
    /// For a history scan (`--since`, `--range`): the commit that added the value.
    pub commit: Option<Commit>,
}

/// A commit, as a history scan names it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Commit {
    /// The full object id, lower-case hex.
    pub id: String,
    /// The author's name.
    pub author: String,
    /// The author's e-mail address.
    pub email: String,
    /// The author date, RFC 3339 with the author's UTC offset.
    pub date: String,
}

impl Commit {
    /// The first 12 hex digits of the id.
    pub fn short_id(&self) -> &str {
        &self.id[..self.id.len().min(12)]
    }
}

/// A redacted rendering of the finding's line: `text` holds no value text, `label` is the byte
/// range of the key inside it, `line_start_column` the real column at which `text` starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Excerpt {
    /// The line with the value replaced by `[REDACTED]`.
    pub text: String,
    /// The key inside `text`.
    pub label: std::ops::Range<usize>,
}

/// A place related to a finding, with what it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Related {
    /// Where.
    pub location: Location,
    /// What is there.
    pub message: String,
    /// The line there, redacted like [`Finding::excerpt`].
    pub excerpt: Excerpt,
}

impl Finding {
    /// Sort key: path, line, column, then rule, key and commit so output is deterministic.
    pub fn sort_key(&self) -> (&str, usize, usize, Rule, &str, Option<&str>) {
        (
            &self.location.path,
            self.location.line,
            self.location.column,
            self.rule,
            &self.key,
            self.commit.as_ref().map(|c| c.id.as_str()),
        )
    }

    /// The message, followed for a history finding by the commit that added the value and
    /// what to do about a value already in history.
    pub fn full_message(&self) -> String {
        let mut m = match &self.commit {
            Some(c) => format!(
                "{} (added in commit {} by {} <{}>, {})",
                self.message, c.id, c.author, c.email, c.date
            ),
            None => self.message.clone(),
        };
        if let Some(advice) = crate::rules::history_advice(self) {
            m.push_str("; ");
            m.push_str(advice);
        }
        m
    }

    /// The rule id as reports print it: the custom rule's id for a custom-rule finding, else
    /// the built-in rule's code.
    pub fn rule_id(&self) -> &str {
        self.custom_rule.as_deref().unwrap_or(self.rule.code())
    }
}

/// The fingerprint of a finding: SHA-256 over the path, kind, namespace, name, key and the
/// SHA-256 of the value, each separated, as lower-case hex. The value hash never leaves this
/// function, and mixing it with the place means a fingerprint cannot be looked up in a table of
/// hashes of common passwords.
pub fn fingerprint(
    path: &str,
    kind: Option<&str>,
    namespace: Option<&str>,
    name: Option<&str>,
    key: &str,
    value: &[u8],
) -> String {
    let value_hash = Sha256::digest(value);
    let mut h = Sha256::new();
    h.update(b"kustodian-finding-v1\0");
    for part in [
        path,
        kind.unwrap_or(""),
        namespace.unwrap_or(""),
        name.unwrap_or(""),
        key,
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    h.update(value_hash);
    let out = h.finalize();
    let mut s = String::with_capacity(64);
    for b in out {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Why something was not scanned or not fully judged. Notes go to stderr; they never hold
/// file contents.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Note {
    /// The file concerned, if any.
    pub path: Option<String>,
    /// What happened.
    pub message: String,
    /// Whether this note means the scan is incomplete (an error: exit code 2).
    pub is_error: bool,
}

impl Note {
    /// A note that does not make the scan fail.
    pub fn info(path: impl Into<String>, message: impl Into<String>) -> Note {
        Note {
            path: Some(path.into()),
            message: message.into(),
            is_error: false,
        }
    }

    /// A file skipped because it is larger than [`crate::MAX_FILE_SIZE`].
    pub fn too_large(path: impl Into<String>) -> Note {
        Note::info(
            path,
            format!("skipped: larger than {} MiB", crate::MAX_FILE_SIZE >> 20),
        )
    }

    /// A note that makes the scan incomplete.
    pub fn error(path: Option<String>, message: impl Into<String>) -> Note {
        Note {
            path,
            message: message.into(),
            is_error: true,
        }
    }
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = if self.is_error { "error" } else { "note" };
        match &self.path {
            Some(p) => write!(f, "kustodian: {level}: {p}: {}", self.message),
            None => write!(f, "kustodian: {level}: {}", self.message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_orders_and_parses() {
        assert!(Severity::Critical > Severity::High && Severity::Medium > Severity::Low);
        for s in Severity::ALL {
            assert_eq!(s.as_str().parse::<Severity>(), Ok(s));
        }
    }

    #[test]
    fn fingerprint_depends_on_place_and_value_but_not_line() {
        let a = fingerprint("a.yaml", Some("Secret"), None, Some("x"), "data.k", b"v1");
        assert_eq!(a.len(), 64);
        assert_eq!(
            a,
            fingerprint("a.yaml", Some("Secret"), None, Some("x"), "data.k", b"v1")
        );
        assert_ne!(
            a,
            fingerprint("a.yaml", Some("Secret"), None, Some("x"), "data.k", b"v2")
        );
        assert_ne!(
            a,
            fingerprint("b.yaml", Some("Secret"), None, Some("x"), "data.k", b"v1")
        );
        assert_ne!(
            a,
            fingerprint("a.yaml", Some("Secret"), Some("x"), None, "data.k", b"v1")
        );
    }
}
