//! The cheap test that decides whether a file needs the credential rules at all, so that the
//! Deployments, Services and ConfigMaps of a tree are not parsed for nothing.
//!
//! It is built from the rule tables, never from a second list kept by hand:
//! - the line search ([`super::scan_lines`]) needs a line holding one of the literals that
//!   every match of a [`FORMATS`] pattern must contain, extracted from each pattern's syntax
//!   ([`format_literals`]);
//! - a value judged by its key needs a key name holding one of the words of
//!   [`keys::WORD_LISTS`] once lowercased and stripped of everything but letters and digits
//!   (exactly what [`keys::is_credential_key`] compares), so a file is squashed the same way
//!   before the words are searched (`pa_ss-WORD` is caught);
//! - a base64-encoded credential is a run of 24 base64 characters or more, decoded and judged
//!   here as the rules would.
//!
//! A file with a key word is still let through without parsing when every line holding one is
//! plain block YAML ([`simple_line`]) whose value the rules provably clear. Anything else takes
//! the slow path: a backslash anywhere (escapes can spell any word), `LS0t` (base64 PEM that
//! may span lines), a flow collection over several lines, quotes, anchors, aliases, tags, block
//! scalars, explicit keys, tabs, a value that may continue on the next line. The test
//! `prefilter_never_hides_a_finding` runs both paths over every fixture and generated input.
//!
//! [`FORMATS`]: super::formats::FORMATS

use std::cell::RefCell;
use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, MatchKind};
use regex_syntax::hir::literal::{ExtractKind, Extractor, Seq};
use regex_syntax::hir::{Hir, HirKind};

use super::{formats, keys, locations};

/// What a file needs from the credential rules.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Gate {
    /// Parse it and judge every value by its key and shape.
    pub parse: bool,
    /// Search its lines for known credential formats.
    pub lines: bool,
}

/// Whether `text` (a decoded manifest) needs the credential rules, and which.
pub(crate) fn gate(text: &str) -> Gate {
    Gate {
        parse: needs_parse(text),
        lines: text_may_hold_format(text.as_bytes()),
    }
}

/// The literals of which a line must hold one for a [`formats::FORMATS`] pattern to match it.
pub(crate) struct FormatLiterals {
    /// The literals, searched case-sensitively.
    pub searcher: AhoCorasick,
    /// Some pattern has no literal that every match holds: every line must be searched.
    pub every_line: bool,
}

/// [`FormatLiterals`] for [`formats::FORMATS`], built once.
pub(crate) fn format_literals() -> &'static FormatLiterals {
    static LITERALS: OnceLock<FormatLiterals> = OnceLock::new();
    LITERALS.get_or_init(|| {
        let mut all: Vec<Vec<u8>> = Vec::new();
        let mut every_line = false;
        for lits in formats::literals() {
            match lits {
                Some(lits) => all.extend(lits.iter().cloned()),
                None => every_line = true,
            }
        }
        // A literal spanning a line break would let a line through unsearched.
        every_line |= all.iter().any(|l| l.contains(&b'\n') || l.contains(&b'\r'));
        FormatLiterals {
            // Leftmost-first searches far faster than the standard semantics; a literal it
            // skips overlaps one it reports, on the same line (no literal spans lines).
            searcher: AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostFirst)
                .build(minimal(all))
                .expect("literals build"),
            every_line,
        }
    })
}

/// The literals of `all` that hold no other: a text holding any of `all` holds one of them
/// (fewer literals search faster).
fn minimal(mut all: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    all.sort_by_key(Vec::len);
    all.dedup();
    let mut kept: Vec<Vec<u8>> = Vec::new();
    for l in all {
        if !kept.iter().any(|k| memchr::memmem::find(&l, k).is_some()) {
            kept.push(l);
        }
    }
    kept
}

/// Whether a text may hold a known credential format on some line.
pub(crate) fn text_may_hold_format(bytes: &[u8]) -> bool {
    let lits = format_literals();
    lits.every_line || lits.searcher.is_match(bytes)
}

/// Literals of which every match of the pattern `re` holds one; `None` when none can be
/// derived (the pattern then needs every line searched).
pub(crate) fn required_literals_of(re: &str) -> Option<Vec<Vec<u8>>> {
    let hir = regex_syntax::ParserBuilder::new()
        .utf8(false)
        .build()
        .parse(re)
        .ok()?;
    required(&hir).map(|seq| {
        seq.literals()
            .unwrap_or(&[])
            .iter()
            .map(|l| l.as_bytes().to_vec())
            .collect()
    })
}

/// The best literal set every match of `hir` holds: its own prefixes if they are useful, else
/// those of one part of a concatenation, the union over an alternation's branches, or those of
/// a repeated part that occurs at least once.
fn required(hir: &Hir) -> Option<Seq> {
    let prefixes = Extractor::new().kind(ExtractKind::Prefix).extract(hir);
    if useful(&prefixes) {
        return Some(prefixes);
    }
    match hir.kind() {
        HirKind::Concat(parts) => parts
            .iter()
            .filter_map(required)
            .max_by_key(|s| (s.min_literal_len(), std::cmp::Reverse(s.len()))),
        HirKind::Alternation(branches) => {
            let mut union = Seq::empty();
            for b in branches {
                union.union(&mut required(b)?);
            }
            useful(&union).then_some(union)
        }
        HirKind::Capture(c) => required(&c.sub),
        HirKind::Repetition(r) if r.min >= 1 => required(&r.sub),
        _ => None,
    }
}

/// A finite set of literals of two bytes or more (one byte would let nearly every line in).
fn useful(seq: &Seq) -> bool {
    seq.is_finite() && seq.len().is_some_and(|n| n > 0) && seq.min_literal_len() >= Some(2)
}

/// The words of [`keys::WORD_LISTS`] of which a squashed credential key holds one: the minimal
/// set (a word holding another is left out, as a text holding it holds the other).
fn key_words() -> &'static AhoCorasick {
    static WORDS: OnceLock<AhoCorasick> = OnceLock::new();
    WORDS.get_or_init(|| {
        let words: Vec<Vec<u8>> = keys::WORD_LISTS
            .iter()
            .flat_map(|l| l.iter())
            .map(|w| keys::squash(w).into_bytes())
            .collect();
        let words = minimal(words);
        assert!(
            words.iter().all(|w| !w.is_empty()),
            "a key word squashes to nothing"
        );
        AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostFirst)
            .build(words)
            .expect("words build")
    })
}

/// A key name [`keys::is_credential_key`] accepts: every such `name` judges its `value` alike.
const A_CREDENTIAL_NAME: &str = "password";

/// Base64 runs this long or longer are decoded and judged (the rules need 24 characters).
const MIN_ENCODED: usize = 24;

/// Per thread: the squashed text and where each line starts in it and in the file.
#[derive(Default)]
struct Scratch {
    squashed: Vec<u8>,
    /// Offset in `squashed` of each line's first byte.
    sq_lines: Vec<usize>,
    /// Offset in the text of each line's first byte.
    lines: Vec<usize>,
}

/// Whether a file must be parsed for the key-name and encoded-value rules.
fn needs_parse(text: &str) -> bool {
    let bytes = text.as_bytes();
    if memchr::memchr(b'\\', bytes).is_some() || memchr::memmem::find(bytes, b"LS0t").is_some() {
        return true;
    }
    thread_local! {
        static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
    }
    SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        let s = &mut *s;
        if squash(bytes, &mut s.squashed, &mut s.sq_lines) && encoded_runs(bytes) {
            return true;
        }
        let words = key_words();
        let sq = &s.squashed[..];
        let Some(mut m) = words.find(sq) else {
            return false;
        };
        s.lines.clear();
        s.lines.push(0);
        s.lines
            .extend(memchr::memchr_iter(b'\n', bytes).map(|i| i + 1));
        let mut marked = Vec::new();
        // Every position where a word starts, searching on from the one after each match: no
        // two words of the minimal set start at the same place (one would hold the other).
        loop {
            let first = s.sq_lines.partition_point(|&o| o <= m.start()) - 1;
            let last = s.sq_lines.partition_point(|&o| o < m.end()) - 1;
            marked.extend(first..=last);
            match words.find(aho_corasick::Input::new(sq).range(m.start() + 1..)) {
                Some(next) => m = next,
                None => break,
            }
        }
        marked.sort_unstable();
        marked.dedup();
        !word_lines_clear(text, &s.lines, &marked)
    })
}

/// Squashes `bytes` into `out` (ASCII letters and digits, lowercased, nothing else), noting in
/// `lines` where each line starts in it; `true` when the bytes hold a run of base64
/// characters long enough to be an encoded credential.
fn squash(bytes: &[u8], out: &mut Vec<u8>, lines: &mut Vec<usize>) -> bool {
    out.clear();
    out.resize(bytes.len() + 1, 0);
    lines.clear();
    lines.push(0);
    let (mut j, mut run, mut long_run) = (0, 0usize, false);
    // Every byte is written, and kept by moving on only for letters and digits.
    for &b in bytes {
        let class = CLASS[b as usize];
        out[j] = b.to_ascii_lowercase();
        j += usize::from(class & ALNUM);
        run = (run + 1) * usize::from(class >> 1);
        long_run |= run >= MIN_ENCODED;
        if b == b'\n' {
            lines.push(j);
        }
    }
    out.truncate(j);
    long_run
}

/// Whether some run of base64 characters of the text, as long as an encoded credential needs,
/// decodes to one (the rules would report it).
fn encoded_runs(bytes: &[u8]) -> bool {
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate().chain([(bytes.len(), &b' ')]) {
        if CLASS[b as usize] & BASE64 == 0 {
            let run = &bytes[start..i];
            if run.len() >= MIN_ENCODED && std::str::from_utf8(run).is_ok_and(encoded) {
                return true;
            }
            start = i + 1;
        }
    }
    false
}

/// Whether `text`, squashed, holds a key word: what [`keys::is_credential_key`] needs of a key
/// (a cheap test before it; long text is assumed to).
fn has_key_word(text: &str) -> bool {
    let mut buf = [0u8; 256];
    if text.len() > buf.len() {
        return true;
    }
    let mut j = 0;
    for &b in text.as_bytes() {
        buf[j] = b.to_ascii_lowercase();
        j += usize::from(CLASS[b as usize] & ALNUM);
    }
    key_words().is_match(&buf[..j])
}

/// [`keys::is_credential_key`], answered cheaply for a key without a key word.
fn is_credential_key(key: &str) -> bool {
    has_key_word(key) && keys::is_credential_key(key)
}

/// [`locations::config_line_credential`], answered cheaply for a line whose text before the
/// first `:` or `=` (where its key is) holds no key word.
fn config_line_credential(line: &str) -> bool {
    let key_part = line.find([':', '=']).map_or(line, |i| &line[..i]);
    has_key_word(key_part) && locations::config_line_credential(line).is_some()
}

/// Whether a whole scalar of base64 characters is reported as an encoded credential.
fn encoded(run: &str) -> bool {
    locations::encoded_credential(run).is_some()
}

/// [`CLASS`] bits: ASCII letters and digits (bit 0), base64 characters (bit 1).
const ALNUM: u8 = 1;
const BASE64: u8 = 2;

/// Byte classes: ASCII letters and digits (kept when squashing), and the characters of
/// standard and URL-safe base64.
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphanumeric() {
            t[b] = ALNUM | BASE64;
        } else if matches!(c, b'+' | b'/' | b'=' | b'-' | b'_') {
            t[b] = BASE64;
        }
        b += 1;
    }
    t
};

/// One line of block YAML in the plain shape the fast path reads: `key: value`, `key:`,
/// `- value`, `- key: value` (any number of `- `), with a trailing comment allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Simple<'a> {
    /// The mapping key, if the line has one.
    pub key: Option<&'a str>,
    /// The value on the line (empty when it is below), without a comment.
    pub value: &'a str,
    /// The column (0-based) that a continuation of the value must be indented past: the key's,
    /// or for `- value` the dash's.
    pub col: usize,
}

/// Reads one line as [`Simple`] block YAML; `None` for anything else (quotes, flow
/// collections, anchors, aliases, tags, block scalars, explicit keys, tabs, non-ASCII).
pub(crate) fn simple_line(line: &str) -> Option<Simple<'_>> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    if !line.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return None;
    }
    let mut col = line.len() - line.trim_start_matches(' ').len();
    let mut dash = None;
    while line[col..].starts_with("- ") {
        dash = Some(col);
        col += 1;
        col += line[col..].len() - line[col..].trim_start_matches(' ').len();
    }
    let rest = &line[col..];
    let key_len = rest
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || b"_./-".contains(b))
        .count();
    let after = &rest[key_len..];
    let keyed =
        key_len > 0 && rest.as_bytes()[0] != b'-' && (after == ":" || after.starts_with(": "));
    let (key, value, col) = if keyed {
        (Some(&rest[..key_len]), &after[1..], col)
    } else {
        (None, rest, dash?)
    };
    let value = value.trim_start_matches(' ');
    // A comment starts at `#` after a space (or at the start of the value).
    let comment = memchr::memchr_iter(b'#', value.as_bytes())
        .find(|&i| i == 0 || value.as_bytes()[i - 1] == b' ');
    let value = value[..comment.unwrap_or(value.len())].trim_end_matches(' ');
    if value.is_empty() {
        return key.map(|_| Simple { key, value, col });
    }
    let first = value.as_bytes()[0];
    let plain_start = first.is_ascii_alphanumeric()
        || b"_./$<(~=+".contains(&first)
        || (first == b'-'
            && value
                .as_bytes()
                .get(1)
                .is_some_and(u8::is_ascii_alphanumeric));
    let mapping = memchr::memchr_iter(b':', value.as_bytes())
        .any(|i| value.as_bytes().get(i + 1).is_none_or(|&b| b == b' '));
    if !plain_start || mapping || value.contains(['{', '}', '[', ']']) {
        return None;
    }
    Some(Simple { key, value, col })
}

/// The indentation of a line, or `None` when it starts with a tab.
fn indent(line: &str) -> Option<usize> {
    let n = line.len() - line.trim_start_matches(' ').len();
    (!line[n..].starts_with('\t')).then_some(n)
}

/// Whether a line is blank or only a comment.
fn blank_or_comment(line: &str) -> bool {
    let t = line.trim_start_matches([' ', '\t']).trim_end_matches('\r');
    t.is_empty() || t.starts_with('#')
}

/// Every line of `text` and the lines marked as holding a key word, judged: `true` when none
/// of them can give a finding, so that the file need not be parsed.
fn word_lines_clear(text: &str, starts: &[usize], marked: &[usize]) -> bool {
    let line = |i: usize| -> &str {
        let start = starts[i];
        let end = starts.get(i + 1).map_or(text.len(), |e| e - 1);
        &text[start..end]
    };
    let n = starts.len();
    // Only lines with an opening bracket can open a flow collection.
    let mut last = usize::MAX;
    for i in memchr::memchr2_iter(b'{', b'[', text.as_bytes()) {
        let at = starts.partition_point(|&s| s <= i) - 1;
        if at != last && !flow_collections_close_on_their_line(line(at)) {
            return false;
        }
        last = at;
    }
    // The next line that is not blank nor a comment must not continue this one: indented at
    // most `col` (a comment or blank line in between counts too when indented further).
    let ends_here = |i: usize, col: usize| -> bool {
        for j in i + 1..n {
            let l = line(j);
            if l.trim_start_matches([' ', '\r']).is_empty() {
                continue;
            }
            match indent(l) {
                Some(ind) if ind <= col => {}
                _ => return false,
            }
            if !blank_or_comment(l) {
                return true;
            }
        }
        true
    };
    let mut pairs = false;
    for &i in marked {
        let l = line(i);
        // Inside a block scalar, the line is config text judged on its own.
        if config_line_credential(l) {
            return false;
        }
        if blank_or_comment(l) {
            // A whole-line comment is judged like a line of config text (`# password: ...`).
            let body = l.trim_start_matches([' ', '\t']);
            if body.strip_prefix('#').is_some_and(config_line_credential) {
                return false;
            }
            continue;
        }
        let Some(s) = simple_line(l) else {
            return false;
        };
        // A list item that is a flag (`- -client-secret`) may take the next item as its value.
        if s.key.is_none() && s.value.starts_with('-') {
            return false;
        }
        if s.value.is_empty() {
            // `password:` with its value below: a nested mapping or sequence is fine, a scalar
            // is not.
            if s.key.is_some_and(is_credential_key) && !nested_below(&line, n, i, s.col) {
                return false;
            }
            continue;
        }
        if !ends_here(i, s.col) || locations::scalar_may_hold_credential(s.key, s.value) {
            return false;
        }
        pairs |= s.key == Some("name") && is_credential_key(s.value);
    }
    // `name: DB_PASSWORD` judges a sibling `value:` under that name: every `value` key of the
    // file must be a plain one too short to judge.
    if pairs {
        for i in memchr::memmem::find_iter(text.as_bytes(), b"value") {
            let at = starts.partition_point(|&s| s <= i) - 1;
            let l = line(at);
            if blank_or_comment(l) {
                continue;
            }
            let Some(s) = simple_line(l) else {
                return false;
            };
            if s.key == Some("value")
                && (s.value.is_empty()
                    || !ends_here(at, s.col)
                    || locations::scalar_may_hold_credential(Some(A_CREDENTIAL_NAME), s.value))
            {
                return false;
            }
        }
    }
    true
}

/// Whether the value of the key at line `i` (column `col`, nothing after the colon) is a
/// nested mapping or sequence, or nothing: the next line that is not blank nor a comment is a
/// `- ` item or a plain `key:`, or is not indented past `col`.
fn nested_below<'t>(line: &impl Fn(usize) -> &'t str, n: usize, i: usize, col: usize) -> bool {
    let Some(j) = (i + 1..n).find(|&j| !blank_or_comment(line(j))) else {
        return true;
    };
    let l = line(j);
    let Some(ind) = indent(l) else { return false };
    if ind <= col {
        return true;
    }
    let t = l[ind..].trim_end_matches('\r');
    t == "-" || t.starts_with("- ") || simple_line(l).is_some_and(|s| s.key.is_some())
}

/// Whether every `{`/`[` of a line closes on it (brackets anywhere, quoted or not, counted), so
/// that no line sits inside a flow collection, where plain scalars fold differently.
fn flow_collections_close_on_their_line(line: &str) -> bool {
    let mut depth = 0i32;
    for b in line.bytes() {
        match b {
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => {}
        }
    }
    depth == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_has_literals() {
        for f in formats::FORMATS {
            let lits = required_literals_of(f.re);
            assert!(
                lits.as_ref().is_some_and(|l| !l.is_empty()),
                "no literal derived from `{}` ({}): every line would be searched; add a literal part",
                f.re,
                f.what
            );
        }
        assert!(!format_literals().every_line);
    }

    #[test]
    fn simple_lines() {
        let s = |l| simple_line(l);
        assert_eq!(
            s("  - name: DB_PASSWORD"),
            Some(Simple {
                key: Some("name"),
                value: "DB_PASSWORD",
                col: 4
            })
        );
        assert_eq!(
            s("key: password # a comment"),
            Some(Simple {
                key: Some("key"),
                value: "password",
                col: 0
            })
        );
        assert_eq!(
            s("  secretKeyRef:"),
            Some(Simple {
                key: Some("secretKeyRef"),
                value: "",
                col: 2
            })
        );
        assert_eq!(
            s("- - x"),
            Some(Simple {
                key: None,
                value: "x",
                col: 2
            })
        );
        for no in [
            "password: \"x\"",
            "password: 'x'",
            "\"password\": x",
            "password: &a x",
            "password: *a",
            "password: !!str x",
            "password: |",
            "password: >-",
            "? password",
            "password:\tx",
            "{password: x}",
            "password: [x]",
            "password: a: b",
            "p\u{e4}ssword: x",
            "plain scalar line",
            "password: x\ry",
        ] {
            assert_eq!(s(no), None, "{no}");
        }
    }

    #[test]
    fn squashed_key_words_are_found() {
        for yes in [
            "data:\n  pa_ss-WO_rd: Xk9vQ2aLmP7rT3zW\n",
            "data:\n  connectionString: Xk9vQ2aLmP7rT3zW\n",
            "data:\n  app.ini: |\n    password = Xk9vQ2aLmP7rT3zW\n",
            "data:\n  x: a\n  password:\n    Xk9vQ2aLmP7rT3zW\n",
            "data:\n  password: Xk9vQ2a\n    LmP7rT3zW\n",
            "env:\n  - name: DB_PASSWORD\n    \"value\": Xk9vQ2aLmP7rT3zW\n",
            "env:\n  - {name: x, value: y}\n  - name: TOKEN\n    value: Xk9vQ2aLmP7rT3zW\n",
            "a: {\n  password: Xk9vQ2aLmP7rT3zW }\n",
            "a: \"p\\x61ssword=Xk9vQ2aLmP7rT3zW\"\n",
        ] {
            assert!(needs_parse(yes), "{yes}");
        }
        for no in [
            "env:\n  - name: DB_PASSWORD\n    valueFrom:\n      secretKeyRef:\n        name: db\n        key: password\n  - name: LOG\n    value: info\n",
            "data:\n  key0: value-abcdefgh\n",
            "spec:\n  secretName: tls-cert\n",
        ] {
            assert!(!needs_parse(no), "{no}");
        }
    }

    /// Both paths over one file: the findings must be the same.
    fn same_findings(path: &str, bytes: &[u8]) -> Result<(), String> {
        let fast = crate::Scanner::new().scan_path(path, bytes).findings;
        let full = crate::Scanner::new()
            .without_credential_prefilter()
            .scan_path(path, bytes)
            .findings;
        if fast == full {
            return Ok(());
        }
        Err(format!(
            "{path}: the prefilter changed the findings\nfast: {:?}\nfull: {:?}",
            fast.iter()
                .map(|f| (f.location.line, f.rule))
                .collect::<Vec<_>>(),
            full.iter()
                .map(|f| (f.location.line, f.rule))
                .collect::<Vec<_>>()
        ))
    }

    /// Every file under tests/fixtures and examples/, through the prefilter and without it.
    #[test]
    fn prefilter_never_hides_a_finding_in_fixtures() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut stack = vec![root.join("tests/fixtures"), root.join("examples")];
        let (mut files, mut errors) = (0, Vec::new());
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir)
                .expect("fixtures readable")
                .flatten()
            {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if let Ok(bytes) = std::fs::read(&p) {
                    files += 1;
                    let rel = p.strip_prefix(&root).unwrap_or(&p).to_string_lossy();
                    errors.extend(same_findings(&rel, &bytes).err());
                }
            }
        }
        assert!(files > 100, "only {files} fixture files found");
        assert!(errors.is_empty(), "{}", errors.join("\n"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(3000))]

        /// Generated manifests built from the pieces that hide credentials (squashed and
        /// escaped key words, quotes, flow collections, anchors, merges, block scalars, values
        /// on the next line, `name`/`value` pairs, base64): the prefilter never changes what
        /// is found.
        #[test]
        fn prefilter_never_hides_a_finding(
            lines in proptest::collection::vec(
                (
                    proptest::sample::select(&[
                        "", "  ", "    ", "- ", "  - ", "      ", "\t", "? ", ": ", "{", "[", "  # ",
                    ][..]),
                    proptest::sample::select(&[
                        "password", "pa_ss-word", "DB_PASS", "connectionString", "apiKey",
                        "name", "value", "valueFrom", "secretKeyRef", "key", "data", "cfg",
                        "\"password\"", "'token'", "p\\x61ssword", "secretName", "<<",
                        "pass", "word", "x.token", "WORD",
                    ][..]),
                    proptest::sample::select(&[
                        ": ", ":", "=", ": |", ": >-", ": &a ", ": *a", ": !!str ", ": {", ": [",
                        " = ", ": \"", ": '", ", ", "",
                    ][..]),
                    proptest::sample::select(&[
                        "", "Xk9vQ2aLmP7rT3zW", "DB_PASSWORD", "info", "password=Xk9vQ2aLmP7rT3zW",
                        "Z2hwX0FiM2RFZjdoSWo5a0xtMW5PcDNxUnM1dFV2N3dYeTl6QWIxY0Rl",
                        "ghp_Ab3dEf7hIj9kLm1nOp3qRs5tUv7wXy9zAb1cDe", "}", "]", "\"", "'",
                        "Xk9vQ2aL", "mP7rT3zW", "# c", " # c", "abc, def", "--token=Xk9vQ2aLmP7rT3zW",
                        "valueFrom", "value", "*a", "&a",
                    ][..]),
                ),
                1..14,
            ),
        ) {
            let mut text = String::new();
            for (lead, key, sep, value) in &lines {
                text.push_str(&format!("{lead}{key}{sep}{value}\n"));
            }
            if let Err(e) = same_findings("gen.yaml", text.as_bytes()) {
                proptest::prop_assert!(false, "{}\n{}", e, text);
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(1500))]

        /// Real manifests with characters that change how YAML reads them put in at random
        /// places (a quote, a bracket, a colon, a tab, a backslash, a line break, an
        /// indentation change): the prefilter never changes what is found.
        #[test]
        fn prefilter_never_hides_a_finding_in_mutated_manifests(
            which in 0usize..5,
            edits in proptest::collection::vec(
                (proptest::num::usize::ANY, proptest::sample::select(
                    b"{}[]:#'\"|>-\n \t&*!\\_.,?=".to_vec())),
                1..6,
            ),
        ) {
            let samples = [
                include_str!("../../../../tests/fixtures/scan/location-container-env-every-workload-kind/repo/apps/workloads.yaml"),
                include_str!("../../../../tests/fixtures/scan/location-configmap-data/repo/apps/configmap.yaml"),
                include_str!("../../../../tests/fixtures/scan/location-helm-values-beside-chart/repo/chart/values.yaml"),
                include_str!("../../../../tests/fixtures/scan/safe-secret-key-refs/repo/deploy.yaml"),
                include_str!("../../../../tests/fixtures/scan/safe-placeholders/repo/values.yaml"),
            ];
            let mut bytes = samples[which].as_bytes().to_vec();
            for (at, c) in edits {
                let at = at % bytes.len();
                if at.is_multiple_of(2) {
                    bytes[at] = c;
                } else {
                    bytes.insert(at, c);
                }
            }
            if let Err(e) = same_findings("mutated.yaml", &bytes) {
                proptest::prop_assert!(false, "{}\n{}", e, String::from_utf8_lossy(&bytes));
            }
        }
    }
}
