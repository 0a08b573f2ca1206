//! The pure core: one file's bytes and its repository-relative path in, findings out.
//!
//! [`Scanner::scan_file`] skips binary and oversized input, runs a byte prefilter so that only
//! files mentioning `Secret`, `secretGenerator` or `sops` are parsed, parses the YAML/JSON stream
//! and judges every Secret, SOPS document and kustomization in it ([`crate::manifest`],
//! [`crate::generator`]); a file that does not parse (a Helm template, broken YAML) but looks
//! like a Secret is read line by line instead ([`crate::template`]). Files that a
//! `secretGenerator` reads come back as [`FollowRequest`]s: the caller reads them from wherever
//! it reads files (the working tree, the git index) and hands them to
//! [`Scanner::scan_followed`].

use std::cell::OnceCell;
use std::sync::Arc;

use aho_corasick::AhoCorasick;

use crate::finding::{fingerprint, Excerpt, Finding, Location, Note, Related, Severity};
use crate::policy::Policy;
use crate::rules::Rule;
use crate::value::Verdict;

/// Files larger than this are skipped with a note.
pub const MAX_FILE_SIZE: usize = 8 * 1024 * 1024;

/// The line marker that lets one line through.
pub const ALLOW_MARKER: &str = "kustodian:allow";

/// The annotation that lets a whole object through; its value should say why.
pub const ALLOW_ANNOTATION: &str = "kustodian.io/allow";

/// Byte strings of which a file must hold one to be worth parsing.
const NEEDLES: [&str; 3] = ["Secret", "secretGenerator", "sops"];

/// The scanner: build once, share between threads.
#[derive(Clone, Debug)]
pub struct Scanner {
    prefilter: AhoCorasick,
    policy: Arc<Policy>,
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner::new()
    }
}

/// What scanning one file found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileScan {
    /// Values that are plaintext secrets.
    pub findings: Vec<Finding>,
    /// What was skipped, and why.
    pub notes: Vec<Note>,
    /// Files that a `secretGenerator` in this file reads, to be judged with
    /// [`Scanner::scan_followed`].
    pub follow: Vec<FollowRequest>,
}

/// How a `secretGenerator` reads a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FollowKind {
    /// `envs:` (or the old `env:`): `KEY=VALUE` lines, one Secret key each.
    Env,
    /// `files:`: the whole file is one Secret key.
    File,
    /// A kustomization's patch file (`patches`, `patchesStrategicMerge`, `patchesJson6902`
    /// `path:`), judged as a patch of a Secret when its target or its own kind is Secret.
    Patch {
        /// The patch's target selects kind Secret (`Some(true)`), another kind
        /// (`Some(false)`), or names no kind (`None`).
        target_secret: Option<bool>,
    },
}

/// A file read by a `secretGenerator`, to be judged once its bytes are at hand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FollowRequest {
    /// The file, relative to the repository root, `/`-separated and normalised (no `..`).
    pub path: String,
    /// How the generator reads it.
    pub kind: FollowKind,
    /// For `files:`, the Secret key (the file name, or the `KEY=` before the path).
    pub key: String,
    /// The generator entry that names the file.
    pub entry: Location,
    /// The entry's line, redacted (it holds a path, not a value, but stays uniform).
    pub entry_excerpt: Excerpt,
    /// The generator's name.
    pub generator: Option<String>,
    /// The generator's namespace.
    pub namespace: Option<String>,
    /// The entry's line or the generator carries an allow marker or annotation.
    pub allowed: bool,
}

impl Scanner {
    /// A scanner with its prefilter built.
    pub fn new() -> Scanner {
        Scanner::with_policy(Policy::default())
    }

    /// A scanner that applies `policy` (rules off, allowlists, safe values, custom rules,
    /// `scan_everywhere`).
    pub fn with_policy(policy: Policy) -> Scanner {
        Scanner {
            prefilter: AhoCorasick::new(NEEDLES).expect("fixed needles build"),
            policy: Arc::new(policy),
        }
    }

    /// The policy this scanner applies.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Whether a path names a file the scanner reads when walking: `.yaml`, `.yml`, `.json`
    /// (any case) or a kustomization file.
    pub fn is_candidate_path(path: &str) -> bool {
        let name = path.rsplit(['/', '\\']).next().unwrap_or(path);
        if name == "Kustomization" {
            return true;
        }
        let Some((_, ext)) = name.rsplit_once('.') else {
            return false;
        };
        ext.eq_ignore_ascii_case("yaml")
            || ext.eq_ignore_ascii_case("yml")
            || ext.eq_ignore_ascii_case("json")
    }

    /// Whether the bytes hold anything worth parsing (cheap; used before reading a whole file
    /// would be wasted).
    pub fn prefilter(&self, bytes: &[u8]) -> bool {
        self.policy.scan_everywhere || self.prefilter.is_match(bytes)
    }

    /// Scans one file. `path` is what findings report (repository-relative).
    pub fn scan_file(&self, path: &str, bytes: &[u8]) -> FileScan {
        let mut out = FileScan::default();
        if bytes.len() > MAX_FILE_SIZE {
            out.notes.push(Note::too_large(path));
            return out;
        }
        if memchr::memchr(0, bytes).is_some() {
            out.notes
                .push(Note::info(path, "skipped: binary file (it has NUL bytes)"));
            return out;
        }
        if !self.prefilter(bytes) {
            return out;
        }
        let text = String::from_utf8_lossy(bytes);
        let mut cx = FileCx::new(path, &text, &self.policy);
        match kustodian_manifest::parse_stream(&text) {
            Ok(docs) => {
                for doc in &docs {
                    crate::manifest::scan_document(&mut cx, &doc.root);
                }
            }
            Err(_) => {
                if crate::template::worth_reading(&text) {
                    crate::template::scan(&mut cx);
                }
            }
        }
        out.findings = cx.findings;
        out.follow = cx.follow;
        out.notes.append(&mut cx.notes);
        out
    }

    /// Judges a file that a `secretGenerator` reads (see [`FileScan::follow`]).
    pub fn scan_followed(&self, req: &FollowRequest, bytes: &[u8]) -> FileScan {
        let mut out = FileScan::default();
        if bytes.len() > MAX_FILE_SIZE {
            out.notes.push(Note::too_large(&req.path));
            return out;
        }
        let text = String::from_utf8_lossy(bytes);
        let mut cx = FileCx::new(&req.path, &text, &self.policy);
        crate::generator::scan_followed(&mut cx, req, bytes);
        out.findings = cx.findings;
        out.notes = cx.notes;
        out
    }
}

/// The object a value belongs to, for messages and fingerprints.
#[derive(Clone, Debug, Default)]
pub(crate) struct Owner<'a> {
    pub kind: Option<&'a str>,
    pub name: Option<&'a str>,
    pub namespace: Option<&'a str>,
    /// The Secret's `type`, if known.
    pub secret_type: Option<&'a str>,
    /// Annotated `kustodian.io/allow`.
    pub allowed: bool,
    /// Generic `<KEY>` placeholders count.
    pub generic: bool,
}

impl Owner<'_> {
    /// `Secret/db (namespace prod)`, for messages.
    pub fn display(&self) -> String {
        let mut s = match (self.kind, self.name) {
            (Some(k), Some(n)) => format!("{k}/{n}"),
            (Some(k), None) => k.to_string(),
            (None, Some(n)) => n.to_string(),
            (None, None) => "document".to_string(),
        };
        if let Some(ns) = self.namespace {
            s.push_str(&format!(" (namespace {ns})"));
        }
        s
    }
}

/// Where a key is: its position and its source text (for the excerpt).
#[derive(Clone, Copy, Debug)]
pub(crate) struct KeyAt<'t> {
    pub line: usize,
    pub column: usize,
    /// Byte offset of the key in the file.
    pub offset: usize,
    /// What to show for the key in the excerpt.
    pub shown: &'t str,
    /// Between the key and `[REDACTED]`: `": "` in YAML, `"="` in env files and literals.
    pub sep: &'t str,
}

/// One finding about to be recorded.
pub(crate) struct Hit<'o, 't> {
    pub rule: Rule,
    pub owner: &'o Owner<'o>,
    /// The key as reported.
    pub key: String,
    /// What the fingerprint calls the key (`data/password`).
    pub fp_key: String,
    pub at: KeyAt<'t>,
    pub severity: Severity,
    pub message: String,
    pub hash_input: &'t [u8],
    pub related: Option<Related>,
}

/// The state of scanning one file.
pub(crate) struct FileCx<'a> {
    pub path: &'a str,
    pub text: &'a str,
    line_starts: OnceCell<Vec<usize>>,
    pub findings: Vec<Finding>,
    pub notes: Vec<Note>,
    pub follow: Vec<FollowRequest>,
    pub policy: &'a Policy,
}

impl<'a> FileCx<'a> {
    pub fn new(path: &'a str, text: &'a str, policy: &'a Policy) -> Self {
        FileCx {
            path,
            text,
            policy,
            line_starts: OnceCell::new(),
            findings: Vec::new(),
            notes: Vec::new(),
            follow: Vec::new(),
        }
    }

    fn starts(&self) -> &[usize] {
        self.line_starts.get_or_init(|| {
            let mut v = vec![0];
            v.extend(memchr::memchr_iter(b'\n', self.text.as_bytes()).map(|i| i + 1));
            v
        })
    }

    /// The text of a 1-based line, without its line break.
    pub fn line(&self, line: usize) -> &'a str {
        let starts = self.starts();
        let Some(&start) = starts.get(line.wrapping_sub(1)) else {
            return "";
        };
        let end = starts.get(line).copied().unwrap_or(self.text.len());
        let s = &self.text[start..end];
        s.strip_suffix('\n')
            .map(|s| s.strip_suffix('\r').unwrap_or(s))
            .unwrap_or(s)
    }

    /// Byte offset where a 1-based line starts.
    pub fn line_start(&self, line: usize) -> usize {
        self.starts()
            .get(line.wrapping_sub(1))
            .copied()
            .unwrap_or(0)
    }

    /// Whether the line carries `# kustodian:allow`.
    pub fn line_allows(&self, line: usize) -> bool {
        has_allow_marker(self.line(line))
    }

    /// A redacted excerpt for a key: the line's indentation (or `… ` when other text precedes the
    /// key on its line), the key, the separator and `[REDACTED]`.
    pub fn excerpt(&self, at: &KeyAt<'_>) -> Excerpt {
        let line_start = self.line_start(at.line);
        let prefix = self
            .text
            .get(line_start..at.offset.max(line_start))
            .unwrap_or("");
        let lead =
            if prefix.len() <= 40 && prefix.bytes().all(|b| b == b' ' || b == b'\t' || b == b'-') {
                prefix.to_string()
            } else {
                "… ".to_string()
            };
        excerpt(&lead, at.shown, at.sep)
    }

    /// Records a finding unless its line or object allows it.
    pub fn push(&mut self, mut hit: Hit<'_, '_>) {
        if hit.owner.allowed || self.line_allows(hit.at.line) {
            return;
        }
        let policy = self.policy;
        if policy.safe_value(hit.hash_input) {
            return;
        }
        let mut custom_rule = None;
        if let Some(c) = policy.custom_match(hit.hash_input) {
            custom_rule = Some(c.id.clone());
            hit.rule = Rule::CustomRule;
            hit.severity = c.severity;
            hit.message = format!("{}: {}: {}", c.id, hit.owner.display(), c.message);
        }
        if !policy.rule_on(hit.rule)
            || policy.allows(
                self.path,
                hit.owner.namespace,
                hit.owner.name,
                hit.owner.secret_type,
                &hit.key,
            )
        {
            return;
        }
        let excerpt = self.excerpt(&hit.at);
        self.findings.push(Finding {
            location: Location {
                path: self.path.to_string(),
                line: hit.at.line,
                column: hit.at.column,
            },
            rule: hit.rule,
            kind: hit.owner.kind.map(str::to_string),
            name: hit.owner.name.map(str::to_string),
            namespace: hit.owner.namespace.map(str::to_string),
            fingerprint: fingerprint(
                self.path,
                hit.owner.kind,
                hit.owner.namespace,
                hit.owner.name,
                &hit.fp_key,
                hit.hash_input,
            ),
            key: hit.key,
            severity: hit.severity,
            message: hit.message,
            excerpt,
            related: hit.related,
            custom_rule,
            commit: None,
        });
    }

    /// Judges one value of a Secret (`section` is `data` or `stringData`) and records a finding if
    /// it is plaintext. `in_sops` says the document has sops metadata; `sops_clear_rule` names the
    /// sops setting that leaves this value clear, if one does.
    pub fn judge_secret_value(
        &mut self,
        owner: &Owner<'_>,
        section: &str,
        key: &str,
        value: &str,
        at: KeyAt<'_>,
        sops: SopsState,
    ) {
        // A key that is not a valid Secret key (a template expression, a value written in the
        // wrong place) is not shown.
        let (key, at) = if is_valid_key(key) {
            (key, at)
        } else {
            ("?", KeyAt { shown: "?", ..at })
        };
        let vcx = crate::value::Context {
            sops_document: sops.is_document(),
            generic_placeholders: owner.generic,
            key,
        };
        let verdict = if section == "data" {
            crate::value::judge_base64(value, vcx)
        } else {
            crate::value::judge_text(value, vcx)
        };
        let who = owner.display();
        let place = key_place(section, key);
        let (rule, severity, message, hash): (Rule, Severity, String, &[u8]) = match &verdict {
            Verdict::Safe(_) => return,
            Verdict::EncryptedWithoutMetadata => (
                Rule::SopsValueWithoutMetadata,
                Severity::Low,
                format!("{who}: {place} looks SOPS-encrypted, but the document has no sops metadata, so nothing can decrypt it"),
                value.as_bytes(),
            ),
            Verdict::Plaintext { class, hash_input, note } => {
                let mut message = match sops {
                    SopsState::None if section == "data" => {
                        format!("{who}: {place} holds {}, only base64-encoded, not encrypted", class.what)
                    }
                    SopsState::None => format!("{who}: {place} holds {} in plain text", class.what),
                    SopsState::Encrypts => format!(
                        "{who}: {place} holds {} left plaintext in a SOPS-encrypted document; it was probably added after the file was encrypted",
                        class.what
                    ),
                    SopsState::LeavesClear(rule) => format!(
                        "{who}: {place} holds {} that the document's sops `{rule}` setting leaves plaintext, but Secret data must be encrypted",
                        class.what
                    ),
                };
                if let Some(note) = note {
                    message.push_str(&format!("; {note}"));
                }
                let rule = if sops.is_document() { Rule::SopsPlaintextValue } else { Rule::PlaintextSecretData };
                (rule, class.severity, message, &hash_input[..])
            }
        };
        self.push(Hit {
            rule,
            owner,
            key: key.to_string(),
            fp_key: format!("{section}/{key}"),
            at,
            severity,
            message,
            hash_input: hash,
            related: None,
        });
    }
}

/// Where a value stands with SOPS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SopsState {
    /// The document is not SOPS-encrypted.
    None,
    /// The document is SOPS-encrypted and its rules encrypt this value (or cannot tell).
    Encrypts,
    /// The document is SOPS-encrypted and the named setting leaves this value clear.
    LeavesClear(&'static str),
}

impl SopsState {
    pub fn is_document(self) -> bool {
        self != SopsState::None
    }
}

/// An excerpt from its parts; with no key, the label covers `[REDACTED]` (a whole file, a
/// sequence item).
pub(crate) fn excerpt(lead: &str, key: &str, sep: &str) -> Excerpt {
    let key: String = key.chars().take(80).collect();
    let text = format!("{lead}{key}{sep}[REDACTED]");
    let label = if key.is_empty() {
        text.len() - "[REDACTED]".len()..text.len()
    } else {
        lead.len()..lead.len() + key.len()
    };
    Excerpt { label, text }
}

/// Whether `key` is a valid Secret key (`[-._a-zA-Z0-9]+`). Anything else is not shown in
/// output, as it may be a value written where a key belongs.
pub(crate) fn is_valid_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
}

/// `key` if it is a valid key, else `?`.
pub(crate) fn shown_key(key: &str) -> &str {
    if is_valid_key(key) {
        key
    } else {
        "?"
    }
}

/// `data.password`, or `data[".dockerconfigjson"]` when the key has dots, for messages.
pub(crate) fn key_place(section: &str, key: &str) -> String {
    if key.contains('.') {
        format!("{section}[\"{key}\"]")
    } else {
        format!("{section}.{key}")
    }
}

/// Whether a line carries the allow marker after a `#`.
pub(crate) fn has_allow_marker(line: &str) -> bool {
    let Some(i) = memchr::memmem::find(line.as_bytes(), ALLOW_MARKER.as_bytes()) else {
        return false;
    };
    line[..i].trim_end().ends_with('#')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidate_paths() {
        for p in [
            "a.yaml",
            "b/c.YML",
            "x.json",
            "k/Kustomization",
            "kustomization.yaml",
        ] {
            assert!(Scanner::is_candidate_path(p), "{p}");
        }
        for p in ["a.txt", "yaml", "b/.env", "x.yaml.bak"] {
            assert!(!Scanner::is_candidate_path(p), "{p}");
        }
    }

    #[test]
    fn allow_marker_needs_a_hash() {
        assert!(has_allow_marker(
            "  password: x # kustodian:allow test fixture"
        ));
        assert!(has_allow_marker("#kustodian:allow"));
        assert!(!has_allow_marker("  password: kustodian:allow"));
    }

    #[test]
    fn skips_binary_and_large_files_with_a_note() {
        let s = Scanner::new();
        let r = s.scan_file("a.yaml", b"kind: Secret\0\x01");
        assert!(r.findings.is_empty());
        assert!(r.notes[0].message.contains("binary"));
        let big = vec![b'a'; MAX_FILE_SIZE + 1];
        let r = s.scan_file("b.yaml", &big);
        assert!(r.notes[0].message.contains("larger"));
    }

    #[test]
    fn never_panics_on_truncated_or_mangled_input() {
        let samples = [
            include_str!("../../../tests/fixtures/scan/helm-template-literal/repo/chart/templates/secret.yaml"),
            include_str!("../../../tests/fixtures/scan/flow-style-and-quoted-keys/repo/flow.yaml"),
            include_str!("../../../tests/fixtures/scan/sops-value-left-plaintext/repo/secret.enc.yaml"),
            include_str!("../../../tests/fixtures/scan/generator-literals/repo/kustomization.yaml"),
            "kind: Secret\nstringData:\n  \"k\u{e9}y\": '\u{1F600} v\u{e4}lue' # c\n  b: |\n    x\n  'c': \"a\\\"b\n",
        ];
        let s = Scanner::new();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for sample in samples {
            for (i, _) in sample.char_indices() {
                let _ = s.scan_file("t.yaml", &sample.as_bytes()[..i]);
            }
            let mut bytes = sample.as_bytes().to_vec();
            for _ in 0..300 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let at = (seed as usize) % bytes.len();
                let alphabet = b"{}[]:#'\"|>-\n \r&*!%@`";
                bytes[at] = alphabet[(seed >> 32) as usize % alphabet.len()];
                let r = s.scan_file("t.yaml", &bytes);
                for req in &r.follow {
                    let _ = s.scan_followed(req, &bytes);
                }
            }
        }
    }

    #[test]
    fn lines_handle_crlf_and_the_last_line() {
        let text = "a\r\nb\nc";
        let policy = Policy::default();
        let cx = FileCx::new("x", text, &policy);
        assert_eq!(
            (cx.line(1), cx.line(2), cx.line(3), cx.line(4)),
            ("a", "b", "c", "")
        );
    }
}
