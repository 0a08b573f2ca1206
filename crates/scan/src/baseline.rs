//! Baselines: the findings a repository already had when it adopted kustodian, so that CI
//! reports only new ones.
//!
//! A baseline file is `{"version": 1, "entries": [{"fingerprint", "path", "rule", "kind",
//! "name", "key"}...]}`, sorted. Only the fingerprint decides whether a finding is known; the
//! other fields are there for people reading the file. A fingerprint hashes the path, object,
//! key and a hash of the value but not the line ([`crate::fingerprint`]), so a baselined finding
//! stays known when lines move, and a new value on a baselined key is reported.

use std::collections::HashSet;
use std::io::{self, Write};
use std::path::Path;

use crate::finding::Finding;
use crate::source::ScanResult;

/// The format version this build writes and reads.
pub const VERSION: u32 = 1;

/// One known finding.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    /// [`Finding::fingerprint`].
    pub fingerprint: String,
    /// Path relative to the repository root.
    pub path: String,
    /// Rule code.
    pub rule: String,
    /// Object kind, if known.
    pub kind: Option<String>,
    /// Object name, if known.
    pub name: Option<String>,
    /// Key inside the object.
    pub key: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    version: u32,
    entries: Vec<Entry>,
}

/// A baseline file could not be used.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum BaselineError {
    /// The file could not be read.
    #[error("cannot read the baseline {path}")]
    #[diagnostic(
        code(kustodian::scan::baseline),
        help("write one with `kustodian scan --write-baseline FILE`")
    )]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: io::Error,
    },
    /// The file is not a baseline this build understands.
    #[error("{path} is not a kustodian baseline: {reason}")]
    #[diagnostic(
        code(kustodian::scan::baseline),
        help("regenerate it with `kustodian scan --write-baseline FILE`")
    )]
    Invalid {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// The fingerprints of a baseline file.
#[derive(Clone, Debug, Default)]
pub struct Baseline {
    fingerprints: HashSet<String>,
}

impl Baseline {
    /// Reads and checks a baseline file.
    pub fn load(path: &Path) -> Result<Baseline, BaselineError> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| BaselineError::Read {
            path: shown.clone(),
            source,
        })?;
        Baseline::parse(&bytes).map_err(|reason| BaselineError::Invalid {
            path: shown,
            reason,
        })
    }

    /// Parses the contents of a baseline file.
    pub fn parse(bytes: &[u8]) -> Result<Baseline, String> {
        let file: File = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if file.version != VERSION {
            return Err(format!(
                "version {} (this build reads version {VERSION})",
                file.version
            ));
        }
        Ok(Baseline {
            fingerprints: file.entries.into_iter().map(|e| e.fingerprint).collect(),
        })
    }

    /// Whether the finding is in the baseline.
    pub fn contains(&self, f: &Finding) -> bool {
        self.fingerprints.contains(&f.fingerprint)
    }

    /// Drops the findings in the baseline from `result`; returns how many were dropped.
    pub fn filter(&self, result: &mut ScanResult) -> usize {
        let before = result.findings.len();
        result.findings.retain(|f| !self.contains(f));
        before - result.findings.len()
    }
}

/// The baseline entries of `findings`, sorted by path, rule, object and key, one per
/// fingerprint.
pub fn entries(findings: &[Finding]) -> Vec<Entry> {
    let mut entries: Vec<Entry> = findings
        .iter()
        .map(|f| Entry {
            fingerprint: f.fingerprint.clone(),
            path: f.location.path.clone(),
            rule: f.rule.code().to_string(),
            kind: f.kind.clone(),
            name: f.name.clone(),
            key: f.key.clone(),
        })
        .collect();
    entries.sort_by(|a, b| {
        (&a.path, &a.rule, &a.kind, &a.name, &a.key, &a.fingerprint).cmp(&(
            &b.path,
            &b.rule,
            &b.kind,
            &b.name,
            &b.key,
            &b.fingerprint,
        ))
    });
    let mut seen = HashSet::new();
    entries.retain(|e| seen.insert(e.fingerprint.clone()));
    entries
}

/// Writes the baseline of `findings`, pretty-printed, with a trailing newline.
pub fn write(findings: &[Finding], out: &mut dyn Write) -> io::Result<()> {
    let file = File {
        version: VERSION,
        entries: entries(findings),
    };
    serde_json::to_writer_pretty(&mut *out, &file)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Scanner;

    fn findings(src: &str) -> Vec<Finding> {
        Scanner::new().scan_file("s.yaml", src.as_bytes()).findings
    }

    #[test]
    fn round_trips_and_survives_moved_lines() {
        let a = "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData:\n  password: canary-one-123\n";
        let mut out = Vec::new();
        write(&findings(a), &mut out).unwrap();
        let b = Baseline::parse(&out).unwrap();
        let moved = format!("# moved\n\n{a}");
        assert!(findings(&moved).iter().all(|f| b.contains(f)));
        let changed = a.replace("canary-one-123", "canary-two-456");
        assert!(findings(&changed).iter().all(|f| !b.contains(f)));
    }

    #[test]
    fn rejects_other_versions_and_garbage() {
        assert!(Baseline::parse(br#"{"version":2,"entries":[]}"#).is_err());
        assert!(Baseline::parse(b"nope").is_err());
        assert!(Baseline::parse(br#"{"version":1,"entries":[]}"#).is_ok());
    }
}
