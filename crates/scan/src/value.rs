//! Judging one value: is it safe (a reference, a SOPS value, a template expression, empty), and
//! if not, what does it look like (a private key, a cloud token, ...) and so how severe is it.
//!
//! Values arrive as `&str` borrowed from the parsed document; decoded copies are kept in
//! [`Zeroizing`] buffers and dropped before the judgement returns. Nothing here keeps or returns
//! value text.

use std::sync::OnceLock;

use base64::Engine as _;
use regex::bytes::Regex;
use zeroize::Zeroizing;

use crate::finding::Severity;
use crate::sops;

/// What a value that is not safe looks like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Class {
    /// How bad.
    pub severity: Severity,
    /// A noun phrase for messages, such as "a PEM private key"; never value text.
    pub what: &'static str,
}

/// Why a value is safe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Safe {
    /// Empty or null.
    Empty,
    /// Nothing but references, or references among text that holds no recognisable secret.
    Reference,
    /// A SOPS `ENC[...]` value in a document with `sops` metadata.
    Encrypted,
    /// A template expression (`{{ ... }}`), possibly among text that holds no recognisable secret.
    Template,
    /// Nothing but PEM certificates or public keys (`ca.crt`, `tls.crt`): public by design.
    Public,
}

/// The judgement on one value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing to report.
    Safe(Safe),
    /// A SOPS `ENC[...]` value outside a SOPS document.
    EncryptedWithoutMetadata,
    /// Plaintext. `hash_input` is what the fingerprint hashes (the decoded bytes of a `data`
    /// value), kept zeroizing; `note` is an extra remark for the message (no value text).
    Plaintext {
        class: Class,
        hash_input: Zeroizing<Vec<u8>>,
        note: Option<&'static str>,
    },
}

/// What the judge needs to know about the value's surroundings.
#[derive(Clone, Copy, Debug, Default)]
pub struct Context<'a> {
    /// The document has `sops` metadata.
    pub sops_document: bool,
    /// Generic `<KEY>` placeholders count (the object is annotated `avp.kubernetes.io/path`).
    pub generic_placeholders: bool,
    /// The key the value is under (some detectors look at it, such as `.dockerconfigjson`).
    pub key: &'a str,
}

/// Judges a plain text value (`stringData`, a generator literal, an env file value, a SOPS leaf).
pub fn judge_text(value: &str, cx: Context<'_>) -> Verdict {
    match judge_shape(value, cx) {
        Shape::Judged(v) => v,
        Shape::Literal(text, _) => judge_plain(&text, cx.key),
        Shape::Plain => judge_plain(value, cx.key),
    }
}

/// Judges text that holds no reference and no template expression.
fn judge_plain(value: &str, key: &str) -> Verdict {
    if is_public_pem(value.as_bytes()) {
        return Verdict::Safe(Safe::Public);
    }
    let class = classify(value.as_bytes(), key);
    Verdict::Plaintext {
        class,
        hash_input: Zeroizing::new(value.as_bytes().to_vec()),
        note: None,
    }
}

/// Judges a `data` value of a Secret: base64, judged after decoding. A value whose decoded text
/// holds references is safe, as argocd-vault-plugin resolves those.
pub fn judge_base64(value: &str, cx: Context<'_>) -> Verdict {
    match judge_shape(value, cx) {
        Shape::Judged(v) => v,
        // `{{/* */}}BASE64` or `{{ "TEXT" | b64enc }}`: the literal, decoded if it is base64.
        Shape::Literal(text, false) => match decode_base64(&text) {
            Some(bytes) => judge_decoded(bytes, cx),
            None => judge_plain(&text, cx.key),
        },
        Shape::Literal(text, true) => judge_plain(&text, cx.key),
        Shape::Plain => match decode_base64(value) {
            Some(bytes) => judge_decoded(bytes, cx),
            None => {
                let class = classify(value.as_bytes(), cx.key);
                Verdict::Plaintext {
                    class,
                    hash_input: Zeroizing::new(value.as_bytes().to_vec()),
                    note: Some("it is not valid base64, so Kubernetes would reject it, but the text is still committed"),
                }
            }
        },
    }
}

/// Judges the decoded bytes of a `data` value.
fn judge_decoded(bytes: Zeroizing<Vec<u8>>, cx: Context<'_>) -> Verdict {
    if bytes.is_empty() {
        return Verdict::Safe(Safe::Empty);
    }
    if is_public_pem(&bytes) {
        return Verdict::Safe(Safe::Public);
    }
    if let Ok(text) = std::str::from_utf8(&bytes) {
        match judge_shape(text, cx) {
            Shape::Judged(v @ Verdict::Safe(Safe::Reference)) => return v,
            Shape::Judged(Verdict::Plaintext { class, note, .. }) if refs_present(text, cx) => {
                return Verdict::Plaintext {
                    class,
                    hash_input: bytes,
                    note,
                }
            }
            _ => {}
        }
    }
    let class = classify(&bytes, cx.key);
    Verdict::Plaintext {
        class,
        hash_input: bytes,
        note: None,
    }
}

/// What the shape of a value says before its text is judged.
enum Shape {
    /// The shape decides: empty, SOPS, references or templates (with the literal text around them
    /// judged).
    Judged(Verdict),
    /// Templates or references that supply nothing (`{{/* */}}`, `ref+echo://`, `{{ "x" }}`):
    /// this literal text is the whole value, to be judged as a value.
    /// `true` when a template action base64-encodes it (`{{ "x" | b64enc }}`): it is text.
    Literal(Zeroizing<String>, bool),
    /// No reference and no template: judge the value itself.
    Plain,
}

/// The checks common to every value: empty, SOPS, template, references.
fn judge_shape(value: &str, cx: Context<'_>) -> Shape {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Shape::Judged(Verdict::Safe(Safe::Empty));
    }
    if sops::is_encrypted_value(trimmed) {
        return Shape::Judged(if cx.sops_document {
            Verdict::Safe(Safe::Encrypted)
        } else {
            Verdict::EncryptedWithoutMetadata
        });
    }
    let Some(parts) = take_apart(value, cx) else {
        return Shape::Plain;
    };
    let plaintext = |class, note| {
        Shape::Judged(Verdict::Plaintext {
            class,
            hash_input: Zeroizing::new(value.as_bytes().to_vec()),
            note: Some(note),
        })
    };
    if parts.malformed {
        return plaintext(
            classify(value.as_bytes(), cx.key),
            "it holds a malformed reference, so the whole value is judged as text",
        );
    }
    if !parts.computed {
        if parts.whole.trim().is_empty() {
            return Shape::Judged(Verdict::Safe(Safe::Template));
        }
        return Shape::Literal(parts.whole, parts.encodes);
    }
    let safe = if parts.template {
        Safe::Template
    } else {
        Safe::Reference
    };
    match literal_class(&parts.pieces, cx.key) {
        None => Shape::Judged(Verdict::Safe(safe)),
        Some(class) if parts.template => {
            plaintext(class, "it stands beside its template expressions")
        }
        Some(class) => plaintext(class, "it stands beside its references"),
    }
}

fn refs_present(value: &str, cx: Context<'_>) -> bool {
    if cx.generic_placeholders {
        kustodian_refs::contains_reference_with_generic(value)
    } else {
        kustodian_refs::contains_reference(value)
    }
}

/// A value with references or template expressions, taken apart.
#[derive(Default)]
struct Parts {
    /// The literal text, concatenated as it stands: what the value is when nothing is computed.
    whole: Zeroizing<String>,
    /// The literal pieces, separated by spaces: the text outside references and template
    /// actions, `ref+echo://` paths, and the string literals inside template actions.
    pieces: Zeroizing<String>,
    /// A reference or a template action supplies part of the value.
    computed: bool,
    /// It has template actions.
    template: bool,
    /// A reference is malformed.
    malformed: bool,
    /// A template action base64-encodes its literal (`b64enc`).
    encodes: bool,
}

impl Parts {
    /// Literal text that is part of the value as written.
    fn literal(&mut self, s: &str) {
        self.whole.push_str(s);
        self.piece(s);
    }

    /// Literal text that is judged, but is not the value itself (a template function's argument).
    fn piece(&mut self, s: &str) {
        self.pieces.push_str(s);
        self.pieces.push(' ');
    }
}

/// Takes a value apart into literal text and what references and template actions supply;
/// `None` when it has neither.
fn take_apart(value: &str, cx: Context<'_>) -> Option<Parts> {
    let has_template = value.find("{{").is_some_and(|i| value[i..].contains("}}"));
    let other = other_reference().is_match(value);
    if !has_template && !refs_present(value, cx) && !other {
        return None;
    }
    let mut parts = Parts {
        template: has_template,
        ..Parts::default()
    };
    let mut s = value;
    while let Some(open) = s.find("{{") {
        let Some(close) = s[open + 2..].find("}}") else {
            break;
        };
        outside(&s[..open], cx, &mut parts);
        action(&s[open + 2..open + 2 + close], &mut parts);
        s = &s[open + 2 + close + 2..];
    }
    outside(s, cx, &mut parts);
    Some(parts)
}

/// Text outside template actions: references in it supply values; the rest is literal. A
/// `ref+echo://TEXT` reference is literal: its path is the value.
fn outside(text: &str, cx: Context<'_>, parts: &mut Parts) {
    let refs = if !refs_present(text, cx) {
        Vec::new()
    } else {
        let parsed = if cx.generic_placeholders {
            kustodian_refs::parse_all_with_generic(text)
        } else {
            kustodian_refs::parse_all(text)
        };
        match parsed {
            Ok(refs) => refs,
            Err(_) => {
                parts.malformed = true;
                parts.literal(text);
                return;
            }
        }
    };
    let mut last = 0;
    for r in &refs {
        if let Some(gap) = text.get(last..r.span.start) {
            gap_text(gap, cx, parts);
        }
        last = r.span.end.max(last);
        match &r.kind {
            kustodian_refs::RefKind::Vals(v) if v.scheme == "echo" => parts.literal(&v.path),
            _ => parts.computed = true,
        }
    }
    gap_text(text.get(last..).unwrap_or(""), cx, parts);
}

/// Literal text between references. `${VAR}` and `${VAR:=default}` (envsubst, Flux post-build
/// substitution), `op://VAULT/ITEM/FIELD` (1Password secret references), a whole value that
/// is one generic placeholder (`<password>`) and a whole bank-vaults reference
/// (`vault:secret/data/app#KEY`, `>>vault:...`, which its webhook resolves in Secrets and env)
/// also supply values, in every document.
fn gap_text(text: &str, _cx: Context<'_>, parts: &mut Parts) {
    let mut last = 0;
    for m in other_reference().find_iter(text) {
        parts.literal(&text[last..m.start()]);
        parts.computed = true;
        last = m.end();
    }
    parts.literal(&text[last..]);
}

fn other_reference() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(
            r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::?[-=+?][^}]*)?\}|\bop://[^\s/]+/[^\s/]+/[^\s]+|^\s*<[A-Za-z0-9_.\-]+>\s*$|^\s*(?:>>)?vault:[A-Za-z0-9_.\-/]+#[A-Za-z0-9_.\-]+(?:#[0-9]+)?\s*$",
        )
            .expect("compiles")
    })
}

/// The body of a template action (between `{{` and `}}`). A comment or an empty action supplies
/// nothing; an action that starts with a string literal and reads no variable or field
/// (`{{ "x" | b64enc }}`) supplies that literal; any other computes its value, and the string
/// literals among its arguments are judged as literal text.
fn action(body: &str, parts: &mut Parts) {
    let b = body
        .strip_prefix('-')
        .unwrap_or(body)
        .trim_start()
        .trim_end();
    let b = b.strip_suffix('-').unwrap_or(b).trim_end();
    if b.is_empty() || b.starts_with("/*") {
        return;
    }
    let mut code = String::new();
    let mut first = true;
    let mut leading = false;
    let mut rest = b;
    while !rest.is_empty() {
        let Some(i) = rest.find(['"', '`']) else {
            code.push_str(rest);
            break;
        };
        let (before, from) = rest.split_at(i);
        code.push_str(before);
        let quote = from.as_bytes()[0];
        let (lit, after) = string_literal(from, quote);
        if first && before.trim().is_empty() {
            parts.literal(&lit);
            leading = true;
        } else {
            parts.piece(&lit);
        }
        first = false;
        rest = after;
    }
    if !leading || code.contains(['.', '$']) {
        parts.computed = true;
    }
    parts.encodes |= leading && code.contains("b64enc");
}

/// A Go string literal at the start of `s` (`"..."` with escapes, or a raw `` `...` ``): its
/// text and what follows it.
fn string_literal(s: &str, quote: u8) -> (Zeroizing<String>, &str) {
    let mut out = Zeroizing::new(String::new());
    let mut chars = s[1..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            c if c as u32 == quote as u32 => return (out, &s[1 + i + 1..]),
            '\\' if quote == b'"' => match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                Some((_, o)) => out.push(o),
                None => {}
            },
            c => out.push(c),
        }
    }
    (out, "")
}

/// Whether the literal text around references and template actions looks like a credential: a
/// recognisable secret anywhere in it, or a run (text between white space and the glue
/// characters `/ : @ ? & = , ; # | ( ) [ ] < > " '`) that is
/// - at least 8 characters long and mixes three kinds of character out of lower-case letters,
///   upper-case letters, digits and symbols other than `-`, `.` and `_` (`Pa55word!x`), or
/// - holds a stretch of 16 or more characters without `-`, `.` or `_`
///   (`correcthorsebatterystaple`, a token, a hex digest).
///
/// Glue such as `postgres://`, `:5432/app`, `@db.prod.svc`, `https://`, `-`, `/` is not.
fn literal_class(pieces: &str, key: &str) -> Option<Class> {
    if let Some(c) = strong_class(pieces.as_bytes(), key) {
        return Some(c);
    }
    const GLUE: &[char] = &[
        '/', ':', '@', '?', '&', '=', ',', ';', '#', '|', '(', ')', '[', ']', '<', '>', '"', '\'',
    ];
    let credential_like = pieces
        .split(|c: char| c.is_whitespace() || GLUE.contains(&c))
        .any(|run| {
            let kinds = [
                run.bytes().any(|b| b.is_ascii_lowercase()),
                run.bytes().any(|b| b.is_ascii_uppercase()),
                run.bytes().any(|b| b.is_ascii_digit()),
                run.chars()
                    .any(|c| !c.is_ascii_alphanumeric() && !"-._".contains(c)),
            ];
            let mixed = run.chars().count() >= 8 && kinds.iter().filter(|k| **k).count() >= 3;
            let long = run
                .split(['-', '.', '_'])
                .any(|stretch| stretch.chars().count() >= 16);
            mixed || long
        });
    credential_like.then_some(Class {
        severity: Severity::Medium,
        what: "a credential-like literal",
    })
}

/// Whether `b` is one or more PEM blocks of public material (certificates, public keys,
/// certificate revocation lists) and nothing else but white space: a CA bundle or a `tls.crt` is
/// meant to be shared. The label alone does not decide: each body must be base64 of the DER
/// structure its label names (see [`der_is_public`]), so a private key or other text under a
/// `CERTIFICATE` label is not public.
fn is_public_pem(b: &[u8]) -> bool {
    const PUBLIC: [&str; 3] = ["CERTIFICATE", "PUBLIC KEY", "X509 CRL"];
    let Ok(mut s) = std::str::from_utf8(b) else {
        return false;
    };
    let mut blocks = 0;
    loop {
        s = s.trim_start();
        if s.is_empty() {
            return blocks > 0;
        }
        let Some(rest) = s.strip_prefix("-----BEGIN ") else {
            return false;
        };
        let Some((label, rest)) = rest.split_once("-----") else {
            return false;
        };
        if !PUBLIC.contains(&label) {
            return false;
        }
        let end = format!("-----END {label}-----");
        let Some((body, rest)) = rest.split_once(end.as_str()) else {
            return false;
        };
        let Some(der) = decode_base64(body) else {
            return false;
        };
        if !der_is_public(label, &der) {
            return false;
        }
        blocks += 1;
        s = rest;
    }
}

/// One DER element at the start of `b`: (tag, contents, what follows). `None` when `b` does
/// not start with a well-formed element (definite length, at most 4 length bytes).
fn der_element(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = b.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &d| (acc << 8) | d as usize);
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The tags of the elements that make up `contents` exactly; `None` if they do not.
fn der_children(mut contents: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    let mut out = Vec::new();
    while !contents.is_empty() {
        let (tag, inner, rest) = der_element(contents)?;
        out.push((tag, inner));
        contents = rest;
    }
    Some(out)
}

/// Whether `der` has the outline of what a public PEM label names:
/// - `PUBLIC KEY`: a SubjectPublicKeyInfo, `SEQUENCE { SEQUENCE { OID, ... }, BIT STRING }`;
/// - `CERTIFICATE` and `X509 CRL`: `SEQUENCE { SEQUENCE {...}, SEQUENCE { OID, ... }, BIT STRING }`
///   (the signed structure, its signature algorithm, the signature).
///
/// A private key (`SEQUENCE { INTEGER, ... }`) or random bytes have neither outline.
fn der_is_public(label: &str, der: &[u8]) -> bool {
    const SEQUENCE: u8 = 0x30;
    const BIT_STRING: u8 = 0x03;
    const OID: u8 = 0x06;
    let Some((SEQUENCE, contents, [])) = der_element(der) else {
        return false;
    };
    let Some(children) = der_children(contents) else {
        return false;
    };
    let algorithm_at = |i: usize| {
        children.get(i).is_some_and(|(tag, inner)| {
            *tag == SEQUENCE
                && der_children(inner).is_some_and(|c| c.first().is_some_and(|(t, _)| *t == OID))
        })
    };
    let tags: Vec<u8> = children.iter().map(|(t, _)| *t).collect();
    match label {
        "PUBLIC KEY" => tags == [SEQUENCE, BIT_STRING] && algorithm_at(0),
        _ => {
            tags == [SEQUENCE, SEQUENCE, BIT_STRING]
                && algorithm_at(1)
                && der_children(children[0].1).is_some_and(|c| c.len() >= 3)
        }
    }
}

/// Decodes standard or URL-safe base64, ignoring whitespace and line breaks; `None` if it is not
/// base64.
pub fn decode_base64(value: &str) -> Option<Zeroizing<Vec<u8>>> {
    let compact: Zeroizing<Vec<u8>> =
        Zeroizing::new(value.bytes().filter(|b| !b.is_ascii_whitespace()).collect());
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
        if let Ok(v) = engine.decode(&compact[..]) {
            return Some(Zeroizing::new(v));
        }
    }
    None
}

fn auths_key() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r#""auths"\s*:"#).expect("compiles"))
}

/// The most severe recognisable secret in `bytes` (High or Critical), if any.
pub(crate) fn strong_class(bytes: &[u8], key: &str) -> Option<Class> {
    let matches = crate::credentials::formats::set().matches(bytes);
    let mut best: Option<Class> = None;
    for i in matches.iter() {
        let d = &crate::credentials::formats::FORMATS[i];
        if best.is_none_or(|b| d.severity > b.severity) {
            best = Some(Class {
                severity: d.severity,
                what: d.what,
            });
        }
    }
    if best.is_none_or(|b| b.severity < Severity::High) && is_docker_config(bytes, key) {
        best = Some(Class {
            severity: Severity::High,
            what: "container registry credentials",
        });
    }
    best
}

/// Whether `bytes` is a docker config (`.dockerconfigjson` `auths`, or legacy `.dockercfg`) that
/// holds credentials.
fn is_docker_config(bytes: &[u8], key: &str) -> bool {
    let legacy = key == ".dockercfg";
    if !legacy && !auths_key().is_match(bytes) {
        return false;
    }
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return false;
    };
    let registries = if legacy { Some(&v) } else { v.get("auths") };
    let Some(map) = registries.and_then(|r| r.as_object()) else {
        return false;
    };
    map.values().any(|entry| {
        ["auth", "password", "identitytoken", "registrytoken"]
            .iter()
            .any(|k| {
                entry
                    .get(k)
                    .and_then(|x| x.as_str())
                    .is_some_and(|s| !s.is_empty())
            })
    })
}

const PLACEHOLDERS: &[&str] = &[
    "changeme",
    "change-me",
    "change_me",
    "changeit",
    "replaceme",
    "replace-me",
    "password",
    "secret",
    "example",
    "dummy",
    "todo",
    "xxxxxxxx",
];

/// What `bytes` (a decoded value) looks like. Values that look like no known secret are still
/// secrets: Medium, or Low when short or placeholder-like.
pub fn classify(bytes: &[u8], key: &str) -> Class {
    if let Some(c) = strong_class(bytes, key) {
        return c;
    }
    // A plaintext value that is itself base64 of something recognisable (common in stringData).
    let trimmed = bytes.trim_ascii();
    if trimmed.len() >= 16 {
        if let Some(inner) = std::str::from_utf8(trimmed).ok().and_then(decode_base64) {
            if let Some(c) = strong_class(&inner, key) {
                return c;
            }
        }
    }
    if std::str::from_utf8(bytes).is_err() {
        return Class {
            severity: Severity::Medium,
            what: "binary data",
        };
    }
    let lower = String::from_utf8_lossy(trimmed).to_ascii_lowercase();
    if trimmed.len() < 8 || PLACEHOLDERS.contains(&lower.as_str()) {
        return Class {
            severity: Severity::Low,
            what: "a short or placeholder value",
        };
    }
    Class {
        severity: Severity::Medium,
        what: "a value",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT: &str =
        include_str!("../../../tests/fixtures/scan/pem-labels-checked/certificate.pem");
    const PUBLIC_KEY: &str =
        include_str!("../../../tests/fixtures/scan/pem-labels-checked/public-key.pem");

    #[test]
    fn public_pem_is_safe_private_is_not() {
        let bundle = format!("{CERT}\n{CERT}{PUBLIC_KEY}");
        let key =
            "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBVaxT2wq\n-----END EC PRIVATE KEY-----\n";
        let cx = Context {
            key: "ca.crt",
            ..Default::default()
        };
        assert_eq!(judge_text(CERT, cx), Verdict::Safe(Safe::Public));
        assert_eq!(judge_text(&bundle, cx), Verdict::Safe(Safe::Public));
        let b64 = base64::engine::general_purpose::STANDARD.encode(&bundle);
        assert_eq!(judge_base64(&b64, cx), Verdict::Safe(Safe::Public));
        // A private key, or a certificate with a key or other text beside it, is not public.
        for v in [
            key.to_string(),
            format!("{CERT}{key}"),
            format!("{CERT}password=x\n"),
        ] {
            assert!(
                matches!(judge_text(&v, cx), Verdict::Plaintext { .. }),
                "{v}"
            );
        }
    }

    #[test]
    fn a_public_label_does_not_make_a_body_public() {
        let cx = Context::default();
        let body = |label: &str, b: &[u8]| {
            let b64 = STANDARD.encode(b);
            format!("-----BEGIN {label}-----\n{b64}\n-----END {label}-----\n")
        };
        // PKCS#8 private key outline: SEQUENCE { INTEGER 0, SEQUENCE { OID }, OCTET STRING }.
        let pkcs8: &[u8] = &[
            0x30, 0x0e, 0x02, 0x01, 0x00, 0x30, 0x03, 0x06, 0x01, 0x2a, 0x04, 0x04, 1, 2, 3, 4,
        ];
        let truncated = &CERT.replace("\nM7wthIFy", "");
        for v in [
            body("CERTIFICATE", pkcs8),
            body("PUBLIC KEY", pkcs8),
            body("CERTIFICATE", b"not a certificate, just text"),
            body("X509 CRL", b"\x30\x03\x02\x01\x00"),
            "-----BEGIN PUBLIC KEY-----\nnot base64 at all!\n-----END PUBLIC KEY-----\n".into(),
            truncated.to_string(),
        ] {
            assert!(
                matches!(judge_text(&v, cx), Verdict::Plaintext { .. }),
                "{v}"
            );
        }
        assert_eq!(judge_text(PUBLIC_KEY, cx), Verdict::Safe(Safe::Public));
    }

    use base64::engine::general_purpose::STANDARD;

    fn cx() -> Context<'static> {
        Context::default()
    }

    fn severity(v: &Verdict) -> Option<Severity> {
        match v {
            Verdict::Plaintext { class, .. } => Some(class.severity),
            _ => None,
        }
    }

    #[test]
    fn recognises_secret_shapes() {
        let pem = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
        let cases: &[(&str, Severity, &str)] = &[
            (pem, Severity::Critical, "a private key"),
            ("-----BEGIN PRIVATE KEY-----\\nMIIE", Severity::Critical, "a private key"),
            ("AKIAIOSFODNN7EXAMPLE", Severity::Critical, "an AWS access key"),
            ("ghp_0123456789abcdefghijklmnopqrstuvwxyz", Severity::Critical, "a GitHub token"),
            ("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", Severity::Critical, "a GitHub token"),
            ("glpat-abcdefghij0123456789", Severity::Critical, "a GitLab token"),
            ("xoxb-123456789012-abcdefghijkl", Severity::Critical, "a Slack token"),
            ("AIzaSyA0123456789abcdefghijklmnopqrstuv", Severity::Critical, "a Google API key"),
            ("sk_live_0123456789abcdefghijklmn", Severity::Critical, "a Stripe live key"),
            (
                "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
                Severity::High,
                "a JSON Web Token",
            ),
            ("postgres://app:pa55word@db:5432/app", Severity::High, "a URL with a password"),
            ("correct-horse-battery-staple", Severity::Medium, "a value"),
            ("admin", Severity::Low, "a short or placeholder value"),
            ("changeme", Severity::Low, "a short or placeholder value"),
        ];
        for (v, sev, what) in cases {
            let c = classify(v.as_bytes(), "k");
            assert_eq!((c.severity, c.what), (*sev, *what), "{v}");
        }
    }

    #[test]
    fn docker_registry_auths() {
        let cfg = r#"{"auths":{"registry.example.com":{"auth":"dXNlcjpwYXNz"}}}"#;
        let c = classify(cfg.as_bytes(), ".dockerconfigjson");
        assert_eq!(
            (c.severity, c.what),
            (Severity::High, "container registry credentials")
        );
        let legacy = r#"{"registry.example.com":{"auth":"dXNlcjpwYXNz","email":"a@b"}}"#;
        assert_eq!(
            classify(legacy.as_bytes(), ".dockercfg").severity,
            Severity::High
        );
        let empty = r#"{"auths":{}}"#;
        assert_eq!(
            classify(empty.as_bytes(), ".dockerconfigjson").severity,
            Severity::Medium
        );
    }

    #[test]
    fn data_values_are_judged_after_decoding() {
        let key = STANDARD
            .encode("-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n");
        assert_eq!(
            severity(&judge_base64(&key, cx())),
            Some(Severity::Critical)
        );
        let plain = STANDARD.encode("s3cr3t-canary-value");
        assert_eq!(
            severity(&judge_base64(&plain, cx())),
            Some(Severity::Medium)
        );
        // Wrapped base64 (as `base64` prints it) still decodes.
        let wrapped = format!("{}\n{}", &key[..40], &key[40..]);
        assert_eq!(
            severity(&judge_base64(&wrapped, cx())),
            Some(Severity::Critical)
        );
        assert!(matches!(
            judge_base64("not base64 !!", cx()),
            Verdict::Plaintext { note: Some(_), .. }
        ));
    }

    #[test]
    fn references_are_safe_also_inside_base64() {
        assert_eq!(
            judge_text("<path:kv/data/app#password>", cx()),
            Verdict::Safe(Safe::Reference)
        );
        assert_eq!(
            judge_text("ref+vault://kv/app#/password", cx()),
            Verdict::Safe(Safe::Reference)
        );
        assert_eq!(
            judge_text("postgres://<path:kv/db#user>:<path:kv/db#pw>@db:5432", cx()),
            Verdict::Safe(Safe::Reference)
        );
        let b = STANDARD.encode("user=<path:kv/app#user>\npassword=<path:kv/app#password>\n");
        assert_eq!(judge_base64(&b, cx()), Verdict::Safe(Safe::Reference));
        assert_eq!(
            judge_base64("<path:kv/data/app#password>", cx()),
            Verdict::Safe(Safe::Reference)
        );
        // A whole-value generic placeholder is a reference anywhere; inside other text only
        // when the document says so.
        assert!(matches!(judge_text("<password>", cx()), Verdict::Safe(_)));
        assert!(matches!(
            judge_text("user:<password>", cx()),
            Verdict::Plaintext { .. }
        ));
        let generic = Context {
            generic_placeholders: true,
            ..cx()
        };
        assert_eq!(
            judge_text("<password>", generic),
            Verdict::Safe(Safe::Reference)
        );
        // A reference next to a recognisable secret does not launder it.
        let mixed = "<path:kv/app#user> ghp_0123456789abcdefghijklmnopqrstuvwxyz";
        assert_eq!(severity(&judge_text(mixed, cx())), Some(Severity::Critical));
        // A malformed reference is not a reference.
        assert!(matches!(
            judge_text("<path:kv/app>", cx()),
            Verdict::Plaintext { .. }
        ));
    }

    #[test]
    fn templates_sops_and_empty() {
        assert_eq!(
            judge_text("{{ .Values.password | b64enc }}", cx()),
            Verdict::Safe(Safe::Template)
        );
        assert_eq!(
            judge_base64("{{ .Values.password | b64enc }}", cx()),
            Verdict::Safe(Safe::Template)
        );
        assert_eq!(
            judge_text("postgres://{{ .Values.user }}:{{ .Values.pw }}@db", cx()),
            Verdict::Safe(Safe::Template)
        );
        assert!(matches!(
            judge_text("{{ .Values.x }} AKIAIOSFODNN7EXAMPLE", cx()),
            Verdict::Plaintext {
                class: Class {
                    severity: Severity::Critical,
                    ..
                },
                ..
            }
        ));
        let enc = "ENC[AES256_GCM,data:Tr7o=,iv:1=,tag:2=,type:str]";
        let sops_doc = Context {
            sops_document: true,
            ..cx()
        };
        assert_eq!(judge_text(enc, sops_doc), Verdict::Safe(Safe::Encrypted));
        assert_eq!(judge_text(enc, cx()), Verdict::EncryptedWithoutMetadata);
        assert_eq!(judge_text("  ", cx()), Verdict::Safe(Safe::Empty));
        assert_eq!(judge_base64("", cx()), Verdict::Safe(Safe::Empty));
    }

    #[test]
    fn echo_references_are_literal_values() {
        assert!(matches!(
            judge_text("ref+echo://Xk9-canary-Pa55word", cx()),
            Verdict::Plaintext { .. }
        ));
        assert_eq!(
            severity(&judge_text("ref+echo://AKIAIOSFODNN7EXAMPLE", cx())),
            Some(Severity::Critical)
        );
        let b = STANDARD.encode("ref+echo://hunter2");
        assert!(matches!(judge_base64(&b, cx()), Verdict::Plaintext { .. }));
        // Around a real reference, an echo path is literal text like any other.
        assert!(matches!(
            judge_text("<path:kv/app#user>:ref+echo://Xk9Pa55word!+", cx()),
            Verdict::Plaintext { .. }
        ));
    }

    #[test]
    fn literal_text_around_references_and_templates() {
        for v in [
            "Xk9Pa55word! <path:kv/app#password>",
            "correcthorsebatterystaple <path:kv/app#password>",
            "prefix-S3cretValue-{{ .Values.x }}",
            "{{ .Values.user }}:a1b2c3d4e5f6a7b8c9d0@db",
            r#"{{ .Values.x | default "Xk9Pa55word!" }}"#,
        ] {
            assert!(
                matches!(
                    judge_text(v, cx()),
                    Verdict::Plaintext { note: Some(_), .. }
                ),
                "{v}"
            );
        }
        for v in [
            "postgres://<path:kv/db#user>:<path:kv/db#pw>@db.prod.svc:5432/app",
            "https://{{ .Values.host }}/v1",
            "jdbc:postgresql://{{ .Values.host }}:5432/mydatabase_production",
            "{{ .Values.user }}@ip-10-0-0-1.ec2.internal",
            r#"{{ required "set password" .Values.password | b64enc | quote }}"#,
            r#"{{ include "app.fullname" . }}-creds"#,
            "{{- /* a comment */ -}}",
        ] {
            assert!(
                matches!(judge_text(v, cx()), Verdict::Safe(_)),
                "{v}: {:?}",
                judge_text(v, cx())
            );
        }
    }

    #[test]
    fn templates_that_supply_nothing_leave_the_literal_as_the_value() {
        // Short words: as a whole value they block, although as glue they would not.
        for v in [
            "{{/* */}}hunter2",
            "{{- /* x */ -}}hunter2{{/* y */}}",
            r#"{{ "hunter2" | b64enc }}"#,
            "{{ `hunter2` }}",
        ] {
            assert!(
                matches!(judge_text(v, cx()), Verdict::Plaintext { .. }),
                "{v}"
            );
        }
        let b = format!("{{{{/* */}}}}{}", STANDARD.encode("AKIAIOSFODNN7EXAMPLE"));
        assert_eq!(severity(&judge_base64(&b, cx())), Some(Severity::Critical));
        assert_eq!(
            severity(&judge_base64(r#"{{ "hunter2hunter2" | b64enc }}"#, cx())),
            Some(Severity::Medium)
        );
    }

    #[test]
    fn other_reference_forms_are_references_in_annotated_documents() {
        let annotated = Context {
            generic_placeholders: true,
            ..cx()
        };
        // A whole `op://` value is a reference everywhere (kustodian renders it): see
        // kustodian_refs; inside other text it counts only in annotated documents.
        assert!(matches!(
            judge_text("op://prod/db/password", cx()),
            Verdict::Safe(_)
        ));
        for v in [
            "${DB_PASSWORD}",
            "postgres://${DB_USER}:${DB_PASSWORD}@db/app",
            "op://prod/db/password",
            "${DB_PASSWORD:=fallback}",
            "<password>",
            "vault:secret/data/app#password",
            ">>vault:secret/data/app#token#2",
        ] {
            assert!(matches!(judge_text(v, annotated), Verdict::Safe(_)), "{v}");
            // Flux substitutions, 1Password references and whole-value placeholders are
            // references in every document (issue 15).
            assert!(matches!(judge_text(v, cx()), Verdict::Safe(_)), "{v}");
        }
        for v in [
            "${DB_USER}:Xk9Pa55word!",
            "vault:Xk9Pa55word!",
            "x vault:a/b#c",
        ] {
            assert!(
                matches!(judge_text(v, annotated), Verdict::Plaintext { .. }),
                "{v}"
            );
        }
    }

    #[test]
    fn never_panics_on_truncated_values() {
        let samples = [
            r#"{{- /* c */ -}}x{{ "a\"b" | b64enc }}`{{ `raw` }}{{ .V | default "Xk9Pa55word!" }}"#,
            "ref+echo://a+<path:kv/a#b> ${A} op://a/b/c <path:kv/x#y|base64encode>",
            CERT,
        ];
        let generic = Context {
            generic_placeholders: true,
            ..cx()
        };
        for sample in samples {
            for (i, _) in sample.char_indices() {
                for v in [&sample[..i], &sample[i..]] {
                    let _ = judge_text(v, generic);
                    let _ = judge_base64(v, cx());
                }
            }
        }
    }
}
