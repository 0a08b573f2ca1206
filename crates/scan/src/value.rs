//! Judging one value: is it safe (a reference, a SOPS value, a template expression, empty), and
//! if not, what does it look like (a private key, a cloud token, ...) and so how severe is it.
//!
//! Values arrive as `&str` borrowed from the parsed document; decoded copies are kept in
//! [`Zeroizing`] buffers and dropped before the judgement returns. Nothing here keeps or returns
//! value text.

use std::sync::OnceLock;

use base64::Engine as _;
use regex::bytes::{Regex, RegexSet};
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
    if let Some(v) = judge_shape(value, cx) {
        return v;
    }
    if is_public_pem(value.as_bytes()) {
        return Verdict::Safe(Safe::Public);
    }
    let class = classify(value.as_bytes(), cx.key);
    Verdict::Plaintext {
        class,
        hash_input: Zeroizing::new(value.as_bytes().to_vec()),
        note: None,
    }
}

/// Judges a `data` value of a Secret: base64, judged after decoding. A value whose decoded text
/// holds references is safe, as argocd-vault-plugin resolves those.
pub fn judge_base64(value: &str, cx: Context<'_>) -> Verdict {
    if let Some(v) = judge_shape(value, cx) {
        return v;
    }
    match decode_base64(value) {
        Some(bytes) => {
            if bytes.is_empty() {
                return Verdict::Safe(Safe::Empty);
            }
            if is_public_pem(&bytes) {
                return Verdict::Safe(Safe::Public);
            }
            if let Ok(text) = std::str::from_utf8(&bytes) {
                if let Some(Safe::Reference) = references_only(text, cx) {
                    return Verdict::Safe(Safe::Reference);
                }
            }
            let class = classify(&bytes, cx.key);
            Verdict::Plaintext {
                class,
                hash_input: bytes,
                note: None,
            }
        }
        None => {
            let class = classify(value.as_bytes(), cx.key);
            Verdict::Plaintext {
                class,
                hash_input: Zeroizing::new(value.as_bytes().to_vec()),
                note: Some("it is not valid base64, so Kubernetes would reject it, but the text is still committed"),
            }
        }
    }
}

/// The checks common to every value: empty, SOPS, template, references.
fn judge_shape(value: &str, cx: Context<'_>) -> Option<Verdict> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Some(Verdict::Safe(Safe::Empty));
    }
    if sops::is_encrypted_value(trimmed) {
        return Some(if cx.sops_document {
            Verdict::Safe(Safe::Encrypted)
        } else {
            Verdict::EncryptedWithoutMetadata
        });
    }
    if let Some(rest) = strip_templates(value) {
        return match strong_class(rest.as_bytes(), cx.key) {
            None => Some(Verdict::Safe(Safe::Template)),
            Some(class) => Some(Verdict::Plaintext {
                class,
                hash_input: Zeroizing::new(value.as_bytes().to_vec()),
                note: Some("the text around its template expressions"),
            }),
        };
    }
    match references_only(value, cx) {
        Some(safe) => Some(Verdict::Safe(safe)),
        None if refs_present(value, cx) => {
            // References among text that holds a recognisable secret, or malformed references.
            let class = classify(value.as_bytes(), cx.key);
            Some(Verdict::Plaintext {
                class,
                hash_input: Zeroizing::new(value.as_bytes().to_vec()),
                note: Some("it holds a reference, but also text that is not one (or a malformed reference)"),
            })
        }
        None => None,
    }
}

fn refs_present(value: &str, cx: Context<'_>) -> bool {
    if cx.generic_placeholders {
        kustodian_refs::contains_reference_with_generic(value)
    } else {
        kustodian_refs::contains_reference(value)
    }
}

/// `Some(Safe::Reference)` when `text` holds at least one well-formed reference, no malformed one,
/// and the text around them holds no recognisable secret (`postgres://<path:db#user>:<path:db#pw>@db`).
fn references_only(text: &str, cx: Context<'_>) -> Option<Safe> {
    if !refs_present(text, cx) {
        return None;
    }
    let refs = if cx.generic_placeholders {
        kustodian_refs::parse_all_with_generic(text)
    } else {
        kustodian_refs::parse_all(text)
    }
    .ok()?;
    if refs.is_empty() {
        return None;
    }
    let mut rest = Zeroizing::new(String::with_capacity(text.len()));
    let mut last = 0;
    for r in &refs {
        if let Some(gap) = text.get(last..r.span.start) {
            rest.push_str(gap);
            rest.push(' ');
        }
        last = r.span.end.max(last);
    }
    rest.push_str(text.get(last..).unwrap_or(""));
    match strong_class(rest.as_bytes(), cx.key) {
        None => Some(Safe::Reference),
        Some(_) => None,
    }
}

/// Whether `b` is one or more PEM blocks of public material (certificates, public keys) and
/// nothing else but white space: a CA bundle or a `tls.crt` is meant to be shared.
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
        if !body
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"+/=\r\n\t ".contains(&c))
        {
            return false;
        }
        blocks += 1;
        s = rest;
    }
}

/// If `value` holds Go template expressions (`{{ ... }}`), the text outside them; else `None`.
fn strip_templates(value: &str) -> Option<Zeroizing<String>> {
    let first = value.find("{{")?;
    value[first..].find("}}")?;
    let mut rest = Zeroizing::new(String::with_capacity(value.len()));
    let mut s = value;
    while let Some(open) = s.find("{{") {
        let Some(close) = s[open..].find("}}") else {
            break;
        };
        rest.push_str(&s[..open]);
        rest.push(' ');
        s = &s[open + close + 2..];
    }
    rest.push_str(s);
    Some(rest)
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

struct Detector {
    severity: Severity,
    what: &'static str,
}

const DETECTORS: &[(&str, Detector)] = &[
    (
        r"-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----|PuTTY-User-Key-File-",
        Detector {
            severity: Severity::Critical,
            what: "a private key",
        },
    ),
    (
        r"\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b",
        Detector {
            severity: Severity::Critical,
            what: "an AWS access key",
        },
    ),
    (
        r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,}\b|\bgithub_pat_[A-Za-z0-9_]{22,}",
        Detector {
            severity: Severity::Critical,
            what: "a GitHub token",
        },
    ),
    (
        r"\bgl(?:pat|rt|dt|ptt|soat|cbt|ft|imt)-[A-Za-z0-9_\-]{20,}",
        Detector {
            severity: Severity::Critical,
            what: "a GitLab token",
        },
    ),
    (
        r"\bxox[abeoprs]-[A-Za-z0-9\-]{10,}",
        Detector {
            severity: Severity::Critical,
            what: "a Slack token",
        },
    ),
    (
        r"\bAIza[0-9A-Za-z_\-]{35}",
        Detector {
            severity: Severity::Critical,
            what: "a Google API key",
        },
    ),
    (
        r"\b[sr]k_live_[0-9A-Za-z]{20,}",
        Detector {
            severity: Severity::Critical,
            what: "a Stripe live key",
        },
    ),
    (
        r"\bnpm_[A-Za-z0-9]{36}\b",
        Detector {
            severity: Severity::Critical,
            what: "an npm token",
        },
    ),
    (
        r"\bpypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,}",
        Detector {
            severity: Severity::Critical,
            what: "a PyPI token",
        },
    ),
    (
        r"AccountKey=[A-Za-z0-9+/]{80,}={0,2}",
        Detector {
            severity: Severity::Critical,
            what: "an Azure storage key",
        },
    ),
    (
        r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*",
        Detector {
            severity: Severity::High,
            what: "a JSON Web Token",
        },
    ),
    (
        r"https://hooks\.slack\.com/services/[A-Za-z0-9_/]{20,}",
        Detector {
            severity: Severity::High,
            what: "a Slack webhook URL",
        },
    ),
    (
        r"\b[A-Za-z][A-Za-z0-9+.\-]{1,20}://[^/\s:@]{1,256}:[^/\s@]{1,256}@",
        Detector {
            severity: Severity::High,
            what: "a URL with a password",
        },
    ),
];

fn detectors() -> &'static RegexSet {
    static SET: OnceLock<RegexSet> = OnceLock::new();
    SET.get_or_init(|| {
        RegexSet::new(DETECTORS.iter().map(|(re, _)| *re)).expect("detector patterns compile")
    })
}

fn auths_key() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r#""auths"\s*:"#).expect("compiles"))
}

/// The most severe recognisable secret in `bytes` (High or Critical), if any.
fn strong_class(bytes: &[u8], key: &str) -> Option<Class> {
    let matches = detectors().matches(bytes);
    let mut best: Option<Class> = None;
    for i in matches.iter() {
        let d = &DETECTORS[i].1;
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

    #[test]
    fn public_pem_is_safe_private_is_not() {
        let cert = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ2Fub3QgYmUgYSBzZWNyZXQ=\n-----END CERTIFICATE-----\n";
        let bundle = format!("{cert}\n{cert}-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n");
        let key =
            "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBVaxT2wq\n-----END EC PRIVATE KEY-----\n";
        let cx = Context {
            key: "ca.crt",
            ..Default::default()
        };
        assert_eq!(judge_text(cert, cx), Verdict::Safe(Safe::Public));
        assert_eq!(judge_text(&bundle, cx), Verdict::Safe(Safe::Public));
        let b64 = base64::engine::general_purpose::STANDARD.encode(&bundle);
        assert_eq!(judge_base64(&b64, cx), Verdict::Safe(Safe::Public));
        // A private key, or a certificate with a key or other text beside it, is not public.
        for v in [
            key.to_string(),
            format!("{cert}{key}"),
            format!("{cert}password=x\n"),
        ] {
            assert!(
                matches!(judge_text(&v, cx), Verdict::Plaintext { .. }),
                "{v}"
            );
        }
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
        // Generic placeholders only count when the document says so.
        assert!(matches!(
            judge_text("<password>", cx()),
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
}
