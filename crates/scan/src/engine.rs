//! The pure core: one file's bytes and its repository-relative path in, findings out.
//!
//! [`Scanner::scan_file`] decodes the file (UTF-8, or UTF-16 with a byte-order mark), runs a
//! byte prefilter so that only files mentioning `Secret`, `secretGenerator` or `sops` (or
//! holding escapes that could spell them) are parsed, parses the YAML/JSON stream and judges
//! every Secret, SOPS document and kustomization in it ([`crate::manifest`],
//! [`crate::generator`]). The credential rules outside Secrets have their own prefilter, built
//! from their rule tables ([`crate::credentials::prefilter`]): a file none of them can fire on
//! is not parsed for them, and only lines holding a format's literal are searched. It never
//! fails open: whatever part of a file that may hold a Secret
//! cannot be read (bad YAML, too deep, an alias bomb, a NUL byte, not UTF-8, too large) is an
//! `unreadable-manifest` finding, and the documents that were read are judged as usual. A Helm
//! template (a file with `{{`) that does not parse is read line by line instead
//! ([`crate::template`]), as is broken YAML that looks like a Secret. Files that a
//! `secretGenerator` reads come back as [`FollowRequest`]s: the caller reads them from wherever
//! it reads files (the working tree, the git index) and hands them to
//! [`Scanner::scan_followed`].

use std::borrow::Cow;
use std::cell::OnceCell;
use std::io::Read;
use std::sync::Arc;

use aho_corasick::AhoCorasick;
use kustodian_manifest::{Document, Node, NodeKind, Pos};

use crate::credentials::prefilter::Gate;
use crate::finding::{fingerprint, Excerpt, Finding, Location, Note, Related, Severity};
use crate::policy::Policy;
use crate::rules::Rule;
use crate::value::Verdict;

/// Files larger than this are not parsed: one that may hold a Secret is an
/// `unreadable-manifest` finding, any other is skipped with a note.
pub const MAX_FILE_SIZE: usize = 8 * 1024 * 1024;

/// Findings listed per file; the rest are counted in one summary finding that still blocks.
pub const MAX_FINDINGS_PER_FILE: usize = 100;

/// The line marker that lets one line through.
pub const ALLOW_MARKER: &str = "kustodian:allow";

/// The annotation that lets a whole object through; its value should say why.
pub const ALLOW_ANNOTATION: &str = "kustodian.io/allow";

/// Byte strings of which a file must hold one to be worth parsing: the words, and the escapes
/// of double-quoted YAML and JSON strings that could spell them (`"\u0053ecret"`, a `\` line
/// continuation).
const NEEDLES: [&[u8]; 8] = [
    b"Secret",
    b"secretGenerator",
    b"sops",
    b"\\u",
    b"\\U",
    b"\\x",
    b"\\\n",
    b"\\\r\n",
];

/// The words of [`NEEDLES`] in UTF-16 (either byte order), to tell a UTF-16 file without a
/// byte-order mark that may hold a Secret from other binary files.
const WIDE_NEEDLES: [&[u8]; 4] = [b"S\0e\0c\0r\0e\0t", b"s\0o\0p\0s", b"\\\0u", b"\0\\\0u"];

/// The scanner: build once, share between threads.
#[derive(Clone, Debug)]
pub struct Scanner {
    prefilter: AhoCorasick,
    /// [`NEEDLES`] and [`WIDE_NEEDLES`]: whether raw bytes that cannot be read may hold a
    /// Secret.
    raw_prefilter: AhoCorasick,
    policy: Arc<Policy>,
    /// Whether [`crate::credentials::prefilter`] may skip the credential rules (off only to
    /// test it against the full rules).
    trust_prefilter: bool,
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
    /// A file read as Helm values (a `configMapGenerator` `files:` entry, a kustomize
    /// `helmCharts` `valuesFile`, an Argo CD `helm.valueFiles` entry) whose name is not a
    /// manifest's (`.yaml`, `.yml`, `.json`): judged value by value like YAML.
    HelmValues {
        /// What names the file: `configMapGenerator`, `helmCharts`, `Application`, ...
        by: &'static str,
    },
}

impl FollowKind {
    /// Whether the file becomes Secret data (so that one too large to read blocks): all but
    /// [`FollowKind::HelmValues`], which a ConfigMap or a chart reads.
    pub fn is_secret_data(self) -> bool {
        !matches!(self, FollowKind::HelmValues { .. })
    }
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
            // Leftmost-first: only whether one matches counts, and it searches far faster.
            prefilter: AhoCorasick::builder()
                .match_kind(aho_corasick::MatchKind::LeftmostFirst)
                .build(NEEDLES)
                .expect("fixed needles build"),
            raw_prefilter: AhoCorasick::new(NEEDLES.iter().chain(WIDE_NEEDLES.iter()))
                .expect("fixed needles build"),
            policy: Arc::new(policy),
            trust_prefilter: true,
        }
    }

    /// The same scanner with the credential prefilter off: every file is parsed and every line
    /// searched (to test that the prefilter never hides a finding).
    #[doc(hidden)]
    pub fn without_credential_prefilter(mut self) -> Scanner {
        self.trust_prefilter = false;
        self
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
    /// would be wasted): `Secret`, `secretGenerator`, `sops`, or an escape that could spell
    /// them once decoded.
    pub fn prefilter(&self, bytes: &[u8]) -> bool {
        self.policy.scan_everywhere || self.prefilter.is_match(bytes)
    }

    /// Whether raw bytes that cannot be read may hold a Secret: [`Scanner::prefilter`], also
    /// on UTF-16 text without a byte-order mark. Such a file is an `unreadable-manifest`
    /// finding; any other unreadable file is skipped with a note.
    pub fn may_hold_secret(&self, bytes: &[u8]) -> bool {
        self.policy.scan_everywhere || self.raw_prefilter.is_match(bytes)
    }

    /// Scans one file. `path` is what findings report (repository-relative).
    pub fn scan_file(&self, path: &str, bytes: &[u8]) -> FileScan {
        if bytes.len() > MAX_FILE_SIZE {
            return self.oversized(path, self.may_hold_secret(bytes));
        }
        // Undecodable text: the lines before the bad byte are still judged.
        let (text, bad) = match decode(bytes) {
            Ok(text) => (text, None),
            Err(bad) if self.may_hold_secret(bytes) => (bad.before.clone(), Some(bad)),
            Err(bad) => {
                // Not a Secret: not parsed, but still searched for known formats like any text file.
                let mut text = self.scan_text(path, bytes);
                text.notes
                    .push(Note::info(path, format!("skipped: {}", bad.reason)));
                return text;
            }
        };
        let secrets = bad.is_some() || self.prefilter(text.as_bytes());
        let gate = self.credentials_gate(&text, secrets || !self.trust_prefilter);
        if !secrets && !gate.parse {
            if !gate.lines {
                return FileScan::default();
            }
            // Nothing to parse for: known formats line by line.
            let mut cx = FileCx::new(path, &text, &self.policy);
            crate::credentials::scan_lines(&mut cx);
            return cx.finish();
        }
        let mut cx = FileCx::new(path, &text, &self.policy);
        let parsed =
            kustodian_manifest::parse_stream_partial(&text, kustodian_manifest::Limits::default());
        cx.find_comments(&parsed.docs);
        if secrets {
            for doc in &parsed.docs {
                crate::manifest::scan_parsed(&mut cx, doc);
            }
        }
        if gate.parse {
            for doc in &parsed.docs {
                crate::credentials::scan_document(&mut cx, &doc.root);
            }
            crate::credentials::scan_comments(&mut cx, &parsed.docs);
        }
        if gate.lines {
            crate::credentials::scan_lines(&mut cx);
        }
        if !secrets {
            // Not a file that may hold a Secret: what does not parse is not a finding.
            return cx.finish();
        }
        // Where the bytes stop being text, the reader stops too: that is reported below.
        let err = parsed
            .error
            .filter(|e| bad.as_ref().is_none_or(|b| e.pos.line < b.pos.line));
        if let Some(err) = err {
            let template = text.contains("{{");
            if crate::template::worth_reading(&text) {
                crate::template::scan(&mut cx);
            }
            // A Helm template is read line by line; anything else that does not parse blocks.
            if !template {
                cx.unreadable(
                    err.pos,
                    &format!("could not read this as YAML or JSON ({})", err.message),
                    "the documents before and after it were scanned, this one was not",
                );
            }
        }
        if let Some(bad) = bad {
            cx.unreadable(
                bad.pos,
                &format!("could not read this as text: {}", bad.reason),
                "the file was scanned up to that line only",
            );
        }
        cx.finish()
    }

    /// A file over [`MAX_FILE_SIZE`], read from `reader` in bounded memory to decide whether it
    /// may hold a Secret (an `unreadable-manifest` finding) or not (a note). A walk calls this
    /// instead of reading such a file whole.
    pub fn scan_oversized(&self, path: &str, reader: impl Read) -> FileScan {
        let may_hold = self.policy.scan_everywhere
            || match self.raw_prefilter.stream_find_iter(reader).next() {
                None => false,
                Some(Ok(_)) => true,
                Some(Err(e)) => {
                    let mut out = FileScan::default();
                    out.notes.push(Note::error(
                        Some(path.to_string()),
                        format!("could not read: {e}"),
                    ));
                    return out;
                }
            };
        self.oversized(path, may_hold)
    }

    /// A file too large to read: an `unreadable-manifest` finding when it may hold a Secret
    /// (a file a `secretGenerator` reads always may), else a note.
    pub(crate) fn oversized(&self, path: &str, may_hold_secret: bool) -> FileScan {
        if !may_hold_secret {
            let mut out = FileScan::default();
            out.notes.push(Note::too_large(path));
            return out;
        }
        let mut cx = FileCx::new(path, "", &self.policy);
        cx.unreadable(
            Pos {
                offset: 0,
                line: 1,
                column: 1,
            },
            &format!(
                "not read: larger than {} MiB, the most the scanner reads",
                MAX_FILE_SIZE >> 20
            ),
            "the file was not scanned",
        );
        cx.finish()
    }

    /// What the credential rules need of a file (nothing with `--only secrets`): a parse when
    /// some value may be judged a credential (always when `parsed` says the file is parsed
    /// anyway), a line search when some line may hold a known format
    /// ([`crate::credentials::prefilter`]).
    fn credentials_gate(&self, text: &str, parsed: bool) -> Gate {
        if self.policy.only_secrets {
            return Gate::default();
        }
        if parsed || !self.trust_prefilter {
            return Gate {
                parse: true,
                lines: true,
            };
        }
        let mut gate = crate::credentials::prefilter::gate(text);
        // A file naming Helm values files (a kustomization's generator or `helmCharts`, an
        // Argo CD Application) is parsed to find them.
        gate.parse |= crate::credentials::names_values_files(text.as_bytes());
        // An allow marker counts only as a real comment, which only the parse can tell (inside a
        // block scalar it is text).
        gate.parse |=
            gate.lines && memchr::memmem::find(text.as_bytes(), ALLOW_MARKER.as_bytes()).is_some();
        gate
    }

    /// Whether the scanner reads a file of this path at all: manifests and env files always,
    /// any other file unless `--only secrets` (only its known credential formats count).
    pub fn reads_path(&self, path: &str) -> bool {
        Scanner::is_candidate_path(path) || Scanner::is_env_path(path) || !self.policy.only_secrets
    }

    /// Scans a file by its path: a manifest with [`Scanner::scan_file`], an env file with
    /// [`Scanner::scan_env_file`], and any text file (env files too) for known credential
    /// formats ([`Scanner::scan_text`]).
    pub fn scan_path(&self, path: &str, bytes: &[u8]) -> FileScan {
        if Scanner::is_candidate_path(path) {
            return self.scan_file(path, bytes);
        }
        let mut r = if Scanner::is_env_path(path) {
            self.scan_env_file(path, bytes)
        } else {
            FileScan::default()
        };
        if r.findings.is_empty() {
            let t = self.scan_text(path, bytes);
            r.findings = t.findings;
        }
        r
    }

    /// Searches a text file that is not a manifest (a script, a Taskfile, Markdown,
    /// `.env.sample`) for known credential formats only: `known-credential` findings. Binary
    /// and oversized files, and everything with `--only secrets`, give nothing.
    pub fn scan_text(&self, path: &str, bytes: &[u8]) -> FileScan {
        if bytes.len() > MAX_FILE_SIZE
            || memchr::memchr(0, bytes).is_some()
            || self.policy.only_secrets
            || !(crate::credentials::prefilter::text_may_hold_format(bytes)
                || crate::credentials::keys::judges_assignments(path))
        {
            return FileScan::default();
        }
        let text = String::from_utf8_lossy(bytes);
        let mut cx = FileCx::new(path, &text, &self.policy);
        crate::credentials::scan_lines(&mut cx);
        cx.finish()
    }

    /// A blob of the history or the index that could not be read (missing from a partial or
    /// damaged clone): a blocking `unreadable-blob` finding naming the path and the blob.
    pub fn unreadable_blob(&self, path: &str, blob: &str) -> FileScan {
        let mut cx = FileCx::new(path, "", &self.policy);
        let message = format!(
            "{path}: blob {blob} could not be read (missing from this clone, and git could not fetch it); it was not scanned, so it may hide a credential; fetch it (`git fetch --refetch`, or a full clone) and scan again"
        );
        let at = Pos {
            offset: 0,
            line: 1,
            column: 1,
        };
        cx.push_structural(Rule::UnreadableBlob, at, &Owner::default(), "", message);
        cx.finish()
    }

    /// Judges a file that a `secretGenerator` reads (see [`FileScan::follow`]).
    pub fn scan_followed(&self, req: &FollowRequest, bytes: &[u8]) -> FileScan {
        let mut out = FileScan::default();
        if bytes.len() > MAX_FILE_SIZE {
            // Secret data by the generator's word: too large to judge, so it blocks.
            return self.oversized(&req.path, req.kind.is_secret_data());
        }
        let text = String::from_utf8_lossy(bytes);
        let mut cx = FileCx::new(&req.path, &text, &self.policy);
        crate::generator::scan_followed(&mut cx, req, bytes);
        let FileScan {
            findings, notes, ..
        } = cx.finish();
        out.findings = findings;
        out.notes = notes;
        out
    }
}

/// Why the bytes of a file are not text the scanner can read.
struct Undecodable<'a> {
    /// Where the first bad byte is.
    pos: Pos,
    reason: String,
    /// The text of the lines before it.
    before: Cow<'a, str>,
}

impl<'a> Undecodable<'a> {
    /// `text` is everything decoded before the bad byte.
    fn at(text: Cow<'a, str>, reason: String) -> Self {
        let pos = end_pos(&text);
        // The start of the bad byte's line.
        let keep = text.rfind('\n').map_or(0, |i| i + 1);
        let before = match text {
            Cow::Borrowed(s) => Cow::Borrowed(&s[..keep]),
            Cow::Owned(mut s) => {
                s.truncate(keep);
                Cow::Owned(s)
            }
        };
        Undecodable {
            pos,
            reason,
            before,
        }
    }
}

/// The file's text: UTF-8 (a UTF-8 byte-order mark is left for the parser), or UTF-16 with a
/// byte-order mark, decoded. A NUL byte or invalid UTF-8 or UTF-16 makes it unreadable.
fn decode(bytes: &[u8]) -> Result<Cow<'_, str>, Undecodable<'_>> {
    let wide = match bytes {
        [0xFF, 0xFE, rest @ ..] => Some((rest, u16::from_le_bytes as fn([u8; 2]) -> u16, "LE")),
        [0xFE, 0xFF, rest @ ..] => Some((rest, u16::from_be_bytes as fn([u8; 2]) -> u16, "BE")),
        _ => None,
    };
    if let Some((rest, unit, order)) = wide {
        let units = rest.chunks(2).map(|c| match c {
            [a, b] => unit([*a, *b]),
            _ => 0xD800, // an odd trailing byte: as invalid as a lone surrogate
        });
        let mut text = String::with_capacity(rest.len() / 2);
        for c in char::decode_utf16(units) {
            match c {
                Ok('\0') | Err(_) => {
                    return Err(Undecodable::at(
                        Cow::Owned(text),
                        format!("not valid UTF-16{order} text (a NUL character, a lone surrogate or an odd byte)"),
                    ))
                }
                Ok(c) => text.push(c),
            }
        }
        return Ok(Cow::Owned(text));
    }
    let nul = memchr::memchr(0, bytes);
    let upto = nul.unwrap_or(bytes.len());
    let valid = match std::str::from_utf8(&bytes[..upto]) {
        Ok(s) if nul.is_none() => return Ok(Cow::Borrowed(s)),
        Ok(s) => s,
        Err(e) => std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or(""),
    };
    let reason = match nul {
        Some(_) => "binary file (it has a NUL byte)",
        None => "not UTF-8 text",
    };
    Err(Undecodable::at(Cow::Borrowed(valid), reason.into()))
}

/// The position just after `text`.
fn end_pos(text: &str) -> Pos {
    let line_start = text.rfind('\n').map_or(0, |i| i + 1);
    Pos {
        offset: text.len(),
        line: 1 + memchr::memchr_iter(b'\n', text.as_bytes()).count(),
        column: 1 + text[line_start..].chars().count(),
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
    /// Byte offsets of `#`s that look like an allow marker's comment but sit inside a scalar
    /// (a block scalar's line, a multi-line quoted string): not comments.
    not_comments: Vec<usize>,
    /// Findings past [`MAX_FINDINGS_PER_FILE`].
    more: More,
    /// Line ranges (first, last) of Secret data already judged as such: the credential line
    /// search leaves them to the Secret's findings.
    pub judged_lines: Vec<(usize, usize)>,
}

/// The findings of a file past [`MAX_FINDINGS_PER_FILE`]: how many, the worst, the first.
#[derive(Default)]
struct More {
    count: usize,
    /// Severity, rule and custom rule id of the worst.
    worst: Option<(Severity, Rule, Option<String>)>,
    first: Option<Location>,
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
            not_comments: Vec::new(),
            more: More::default(),
            judged_lines: Vec::new(),
        }
    }

    /// What the file came to: its findings (at most [`MAX_FINDINGS_PER_FILE`], then one
    /// summary), notes and follow requests.
    pub fn finish(mut self) -> FileScan {
        self.findings
            .sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        self.findings.dedup_by(|a, b| a.sort_key() == b.sort_key());
        if let (Some((severity, rule, custom_rule)), Some(location)) =
            (self.more.worst.take(), self.more.first.take())
        {
            let n = self.more.count;
            let id = custom_rule.as_deref().unwrap_or(rule.code()).to_string();
            self.findings.push(Finding {
                message: format!(
                    "{n} more finding{} in this file not listed (at most {MAX_FINDINGS_PER_FILE} are listed per file; the worst of the rest is {severity} {id}); fix the ones above and scan again",
                    if n == 1 { "" } else { "s" },
                ),
                fingerprint: fingerprint(self.path, None, None, None, "more", id.as_bytes()),
                location,
                rule,
                kind: None,
                name: None,
                namespace: None,
                key: String::new(),
                severity,
                excerpt: line_not_shown(),
                related: None,
                custom_rule,
                commit: None,
            });
        }
        FileScan {
            findings: self.findings,
            notes: self.notes,
            follow: self.follow,
        }
    }

    /// Whether the file already has [`MAX_FINDINGS_PER_FILE`] findings; if so, counts one more
    /// (at `at`, of `rule` and `severity`) instead of recording it.
    fn counted_past_cap(
        &mut self,
        at: &KeyAt<'_>,
        rule: Rule,
        severity: Severity,
        custom: Option<&str>,
    ) -> bool {
        if self.findings.len() < MAX_FINDINGS_PER_FILE {
            return false;
        }
        self.more.count += 1;
        if self.more.first.is_none() {
            self.more.first = Some(Location {
                path: self.path.to_string(),
                line: at.line,
                column: at.column,
            });
        }
        if self.more.worst.as_ref().is_none_or(|w| severity > w.0) {
            self.more.worst = Some((severity, rule, custom.map(str::to_string)));
        }
        true
    }

    /// Records a finding, or counts it once the file has [`MAX_FINDINGS_PER_FILE`].
    fn record(&mut self, f: Finding) {
        let at = KeyAt {
            line: f.location.line,
            column: f.location.column,
            offset: 0,
            shown: "",
            sep: "",
        };
        if !self.counted_past_cap(&at, f.rule, f.severity, f.custom_rule.as_deref()) {
            self.findings.push(f);
        }
    }

    /// Records a finding about the file itself (no value, no object): `unreadable-manifest`,
    /// `duplicate-key`. A policy may turn the rule off or allowlist the path; an allow marker
    /// does not cover it.
    pub fn push_structural(
        &mut self,
        rule: Rule,
        at: Pos,
        owner: &Owner<'_>,
        key: &str,
        message: String,
    ) {
        if !self.policy.rule_on(rule)
            || self.policy.allows(
                self.path,
                owner.namespace,
                owner.name,
                owner.secret_type,
                key,
            )
        {
            return;
        }
        let line = self.line(at.line);
        let lead: String = line
            .chars()
            .take_while(|c| *c == ' ' || *c == '-')
            .collect();
        let excerpt = if key.is_empty() {
            line_not_shown()
        } else {
            excerpt(&lead, key, ": ")
        };
        self.record(Finding {
            location: Location {
                path: self.path.to_string(),
                line: at.line,
                column: at.column,
            },
            rule,
            kind: owner.kind.map(str::to_string),
            name: owner.name.map(str::to_string),
            namespace: owner.namespace.map(str::to_string),
            fingerprint: fingerprint(
                self.path,
                owner.kind,
                owner.namespace,
                owner.name,
                rule.code(),
                format!("{key}\0{message}").as_bytes(),
            ),
            key: key.to_string(),
            severity: Severity::High,
            message,
            excerpt,
            related: None,
            custom_rule: None,
            commit: None,
        });
    }

    /// An `unreadable-manifest` finding: where (file:line:column), what could not be read
    /// (`reason`, no file text), what that left unscanned, and how to fix it.
    pub fn unreadable(&mut self, at: Pos, reason: &str, unscanned: &str) {
        let message = format!(
            "{}:{}:{}: {reason}; {unscanned}, so it may hide a plaintext Secret; fix the file there so it reads as UTF-8 YAML or JSON (or rename it if it is not a manifest)",
            self.path, at.line, at.column
        );
        self.push_structural(Rule::UnreadableManifest, at, &Owner::default(), "", message);
    }

    /// Finds the allow markers that look like comments on their line but sit inside a scalar of
    /// the parsed documents (a block scalar, a multi-line quoted string).
    pub fn find_comments(&mut self, docs: &[Document]) {
        let mut hashes = Vec::new();
        for i in memchr::memmem::find_iter(self.text.as_bytes(), ALLOW_MARKER.as_bytes()) {
            let start = self.text[..i].rfind('\n').map_or(0, |j| j + 1);
            let end = self.text[i..].find('\n').map_or(self.text.len(), |j| i + j);
            if let Some(h) = comment_marker(&self.text[start..end]) {
                hashes.push(start + h);
            }
        }
        if hashes.is_empty() {
            return;
        }
        fn walk(n: &Node, hashes: &[usize], out: &mut Vec<usize>) {
            let inside = |n: &Node| {
                hashes
                    .iter()
                    .filter(|h| n.span.start.offset <= **h && **h < n.span.end.offset)
                    .copied()
                    .collect::<Vec<_>>()
            };
            match &n.kind {
                NodeKind::Scalar { .. } => out.extend(inside(n)),
                NodeKind::Seq(items) => items.iter().for_each(|i| walk(i, hashes, out)),
                NodeKind::Map(entries) => {
                    for e in entries {
                        out.extend(inside(&e.key));
                        walk(&e.value, hashes, out);
                    }
                }
            }
        }
        for d in docs {
            walk(&d.root, &hashes, &mut self.not_comments);
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

    /// The 1-based line and column (in characters) of a byte offset.
    pub fn pos_at(&self, offset: usize) -> (usize, usize) {
        let starts = self.starts();
        let line = starts.partition_point(|s| *s <= offset).max(1);
        let start = starts[line - 1];
        let column = 1 + self
            .text
            .get(start..offset)
            .map_or(0, |s| s.chars().count());
        (line, column)
    }

    /// Byte offset where a 1-based line starts.
    pub fn line_start(&self, line: usize) -> usize {
        self.starts()
            .get(line.wrapping_sub(1))
            .copied()
            .unwrap_or(0)
    }

    /// Whether the line carries `# kustodian:allow` in a real comment: a `#` at the start of
    /// the line or after a space or tab, outside quotes and outside any scalar the parser read.
    pub fn line_allows(&self, line: usize) -> bool {
        match comment_marker(self.line(line)) {
            Some(h) => !self.not_comments.contains(&(self.line_start(line) + h)),
            None => false,
        }
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
        if self.counted_past_cap(&hit.at, hit.rule, hit.severity, custom_rule.as_deref()) {
            return;
        }
        let excerpt = self.excerpt(&hit.at);
        self.record(Finding {
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

/// The excerpt of a finding about a place rather than a value: the line is not shown (it
/// may hold anything).
fn line_not_shown() -> Excerpt {
    let text = "[line not shown]".to_string();
    Excerpt {
        label: 0..text.len(),
        text,
    }
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

/// Where the comment holding the allow marker starts on a line (the byte index of its `#`), if
/// it has one: the first `#` outside single and double quotes that starts the line or follows
/// a space or tab, followed by `kustodian:allow`. A `#` glued to a value (`v#kustodian:allow`)
/// or inside quotes is part of the value in YAML, not a comment.
pub(crate) fn comment_marker(line: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut prev: Option<char> = None;
    let mut chars = line.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match quote {
            Some('"') if c == '\\' => {
                chars.next();
            }
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '"' | '\'' if prev.is_none_or(|p| " \t:[{,-=".contains(p)) => quote = Some(c),
                '#' if prev.is_none_or(|p| p == ' ' || p == '\t') => {
                    let rest = line[i + 1..].trim_start_matches([' ', '\t']);
                    return rest.starts_with(ALLOW_MARKER).then_some(i);
                }
                _ => {}
            },
        }
        prev = Some(c);
    }
    None
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
    fn allow_marker_must_be_a_comment() {
        for yes in [
            "  password: x # kustodian:allow test fixture",
            "#kustodian:allow",
            "  password: 'it''s' # kustodian:allow",
            "  password: \"a\\\"b\" #kustodian:allow",
            "KEY=value\t# kustodian:allow",
        ] {
            assert!(comment_marker(yes).is_some(), "{yes}");
        }
        for no in [
            "  password: kustodian:allow",
            "  password: v#kustodian:allow",
            "  password: \"v # kustodian:allow\"",
            "  password: 'v # kustodian:allow'",
            "  password: v # a comment, then kustodian:allow",
        ] {
            assert!(comment_marker(no).is_none(), "{no}");
        }
    }

    #[test]
    fn skips_binary_and_large_files_with_a_note_unless_they_may_hold_a_secret() {
        let s = Scanner::new();
        let r = s.scan_file("a.yaml", b"kind: ConfigMap\0\x01");
        assert!(r.findings.is_empty());
        assert!(r.notes[0].message.contains("binary"));
        let big = vec![b'a'; MAX_FILE_SIZE + 1];
        let r = s.scan_file("b.yaml", &big);
        assert!(r.notes[0].message.contains("larger"));
        let r = s.scan_file("a.yaml", b"kind: Secret\0\x01");
        assert_eq!(r.findings[0].rule, Rule::UnreadableManifest);
        assert_eq!(
            (r.findings[0].location.line, r.findings[0].location.column),
            (1, 13)
        );
        let mut big = b"kind: Secret\n".to_vec();
        big.resize(MAX_FILE_SIZE + 1, b'#');
        let r = s.scan_file("b.yaml", &big);
        assert_eq!(r.findings[0].rule, Rule::UnreadableManifest);
        let r = s.scan_oversized("b.yaml", &big[..]);
        assert_eq!(r.findings[0].rule, Rule::UnreadableManifest);
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

    /// Whether `scan_file` must have found `bytes` unreadable: undecodable bytes that may hold
    /// a Secret, or text the prefilter lets through that does not parse and is not a template.
    fn could_not_read(s: &Scanner, bytes: &[u8]) -> bool {
        if bytes.len() > MAX_FILE_SIZE {
            return s.may_hold_secret(bytes);
        }
        match decode(bytes) {
            Err(_) => s.may_hold_secret(bytes),
            Ok(text) => {
                s.prefilter(text.as_bytes())
                    && !text.contains("{{")
                    && kustodian_manifest::parse_stream(&text).is_err()
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(400))]

        /// The scanner never reports clean on input it could not read, and a Secret before the
        /// part it could not read is still reported.
        #[test]
        fn never_clean_on_input_it_could_not_read(
            tail in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::sample::select(b"{}[]:#'\"|>-\n \t&*!%@`\\,?\0".to_vec()),
                    proptest::sample::select(b"Secretkindsopdau0".to_vec()),
                    proptest::num::u8::ANY,
                ],
                0..200,
            ),
            depth in 0usize..300,
        ) {
            let s = Scanner::new();
            let mut file = b"kind: Secret\nstringData:\n  password: plaintext-value\n---\n".to_vec();
            file.extend(std::iter::repeat_n(b'[', depth));
            file.extend(&tail);
            let r = s.scan_file("p.yaml", &file);
            if could_not_read(&s, &file) {
                proptest::prop_assert!(
                    r.findings.iter().any(|f| f.rule == Rule::UnreadableManifest),
                    "no unreadable-manifest finding: {:?}", r.findings
                );
            }
            if !String::from_utf8_lossy(&tail).contains("{{") {
                proptest::prop_assert!(
                    r.findings.iter().any(|f| f.rule == Rule::PlaintextSecretData && f.location.line == 3),
                    "the Secret before the tail was not reported: {:?}", r.findings
                );
            }
            proptest::prop_assert!(!r.findings.is_empty());
        }
    }

    #[test]
    fn invalid_bytes_after_multibyte_text_do_not_panic() {
        let r = Scanner::new().scan_file("u.yaml", b"kind: Secret\n\xc2\x80{\x80");
        assert_eq!(r.findings[0].rule, Rule::UnreadableManifest);
        assert_eq!(
            (r.findings[0].location.line, r.findings[0].location.column),
            (2, 3)
        );
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
