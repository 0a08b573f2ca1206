//! Where credentials hide in GitOps documents, and what key each value is judged under: a
//! mapping key (ConfigMap `data`, Flux `HelmRelease` `spec.values`, Argo CD `valuesObject`,
//! Helm values files, Talos and kubeconfig documents, CRDs), the `name` of a `name`/`value`
//! pair (container `env` of every workload kind and pod template, Argo CD `plugin.env` and
//! `helm.parameters`), or the key of a `key = value` / `key: value` line inside a string
//! (config text, a Helm `values: |` block, a RabbitMQ `additionalConfig`). Secrets (judged by
//! [`crate::manifest`]), SealedSecrets (ciphertext) and SOPS metadata are not walked;
//! `valueFrom` and `secretKeyRef` name a place, not a value.

use std::sync::OnceLock;

use kustodian_manifest::{Node, NodeKind, Object};
use regex::Regex;

use super::{keys, CREDENTIAL_VALUE};
use crate::engine::{FileCx, Hit, KeyAt, Owner, ALLOW_ANNOTATION};
use crate::manifest::{is_secret, owner_of, Leaf};
use crate::rules::Rule;

/// Deepest nesting walked.
const MAX_DEPTH: usize = 64;

/// Kinds whose values are ciphertext or references by design.
const CIPHERTEXT_KINDS: &[&str] = &["SealedSecret"];

/// Keys whose subtree names where a value is, never the value.
const REFERENCE_KEYS: &[&str] = &["valueFrom", "secretKeyRef", "secretRef", "encryptedData"];

const BY_KEY: (Rule, &str) = (Rule::CredentialValue, "under a credential key name");
const ENCODED: (Rule, &str) = (Rule::KnownCredential, "(base64-encoded)");

/// Judges every value of one document outside its Secrets.
pub(crate) fn scan_document(cx: &mut FileCx<'_>, root: &Node) {
    let allowed = Object::new(root).annotation(ALLOW_ANNOTATION).is_some();
    let owner = owner_of(root, allowed);
    let mut path = Vec::new();
    walk(cx, root, &owner, &mut path, 0);
}

fn walk<'a>(
    cx: &mut FileCx<'_>,
    n: &'a Node,
    owner: &Owner<'_>,
    path: &mut Vec<&'a str>,
    depth: usize,
) {
    if depth > MAX_DEPTH {
        return;
    }
    match &n.kind {
        NodeKind::Map(entries) => {
            if is_secret(n, true)
                || n.get("kind")
                    .and_then(Node::as_scalar)
                    .is_some_and(|k| CIPHERTEXT_KINDS.contains(&k))
            {
                return;
            }
            // `{name: DB_PASSWORD, value: ...}`: the value's key is the name.
            let pair_name = match (n.get("name").and_then(Node::as_scalar), n.entry("value")) {
                (Some(name), Some(e)) if e.value.as_scalar().is_some() => Some((name, e)),
                _ => None,
            };
            if let Some((name, e)) = pair_name {
                path.push(name);
                let value = e.value.as_scalar().unwrap_or("");
                judge(
                    cx,
                    &Leaf::new(Some(&e.key), &e.value, path),
                    name,
                    value,
                    owner,
                );
                path.pop();
            }
            for e in entries {
                let Some(k) = e.key.as_scalar() else { continue };
                if (depth == 0 && k == "sops")
                    || REFERENCE_KEYS.contains(&k)
                    || (k == "value" && pair_name.is_some())
                {
                    continue;
                }
                path.push(k);
                match &e.value.kind {
                    NodeKind::Scalar { value, .. } => judge(
                        cx,
                        &Leaf::new(Some(&e.key), &e.value, path),
                        k,
                        value,
                        owner,
                    ),
                    _ => walk(cx, &e.value, owner, path, depth + 1),
                }
                path.pop();
            }
        }
        NodeKind::Seq(items) => {
            for it in items {
                match &it.kind {
                    NodeKind::Scalar { value, .. } => config_lines(cx, it, value, owner),
                    _ => walk(cx, it, owner, path, depth + 1),
                }
            }
        }
        NodeKind::Scalar { .. } => {}
    }
}

/// Whether the file already has a finding on `line` (a Secret's, a SOPS value's).
fn line_taken(cx: &FileCx<'_>, line: usize) -> bool {
    cx.findings.iter().any(|f| f.location.line == line)
}

/// Judges one scalar under `key`.
fn judge(cx: &mut FileCx<'_>, leaf: &Leaf<'_, '_>, key: &str, value: &str, owner: &Owner<'_>) {
    if leaf.node.is_null() || line_taken(cx, leaf.node.span.start.line) {
        return;
    }
    match judgement(key, value) {
        Judgement::Nothing => {}
        Judgement::Encoded(class) => leaf.push(cx, owner, ENCODED, class, value.as_bytes()),
        Judgement::ConfigText => config_lines(cx, leaf.node, value, owner),
        Judgement::ByKey => leaf.push(cx, owner, BY_KEY, CREDENTIAL_VALUE, value.as_bytes()),
    }
}

/// What a scalar under a mapping key (or a `name`) comes to.
pub(super) enum Judgement {
    /// Too short, or under a credential key without looking like one.
    Nothing,
    /// A known format once base64-decoded.
    Encoded(crate::value::Class),
    /// Not under a credential key (or several lines): its `key = value` lines are judged.
    ConfigText,
    /// A credential-looking literal under a credential key.
    ByKey,
}

/// Judges a scalar under `key`, without recording anything.
pub(super) fn judgement(key: &str, value: &str) -> Judgement {
    if value.len() < 10 {
        return Judgement::Nothing;
    }
    if let Some(class) = encoded_credential(value) {
        return Judgement::Encoded(class);
    }
    if value.contains('\n') || !keys::is_credential_key(key) {
        return Judgement::ConfigText;
    }
    if keys::looks_like_credential(value) {
        Judgement::ByKey
    } else {
        Judgement::Nothing
    }
}

/// Whether a scalar would give a finding: under a mapping `key` ([`judgement`]), or a sequence
/// item (`None`: its config text). For the prefilter, which reads plain one-line values.
pub(super) fn scalar_may_hold_credential(key: Option<&str>, value: &str) -> bool {
    let config_text = |v: &str| v.lines().any(|l| config_line_credential(l).is_some());
    match key.map(|k| judgement(k, value)) {
        None | Some(Judgement::ConfigText) => value.contains(['=', ':']) && config_text(value),
        Some(Judgement::Nothing) => false,
        Some(Judgement::Encoded(_) | Judgement::ByKey) => true,
    }
}

/// A known credential format inside a base64 value (kubeconfig `client-key-data`, a Talos
/// `key:`), found only after decoding.
pub(super) fn encoded_credential(value: &str) -> Option<crate::value::Class> {
    let v = value.trim();
    if v.len() < 24 || v.contains(char::is_whitespace) && !v.starts_with("LS0t") {
        return None;
    }
    let decoded = crate::value::decode_base64(v)?;
    crate::value::strong_class(&decoded, "")
}

fn config_line() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r#"^\s*(?:export\s+|-{1,2})?["']?([A-Za-z0-9_.\-]{2,80})["']?\s*(?:=|:)\s*(.*?)\s*$"#,
        )
        .expect("compiles")
    })
}

/// The key and value of a `key = value` / `key: value` / `--key=value` line of config text, if
/// the key is a credential's and the value looks like one.
pub(super) fn config_line_credential(line: &str) -> Option<(&str, &str)> {
    let c = config_line().captures(line)?;
    let (key, v) = (
        c.get(1).map_or("", |m| m.as_str()),
        c.get(2).map_or("", |m| m.as_str()),
    );
    // A trailing comment is not part of the value.
    let v = v.split(" #").next().unwrap_or(v).trim_end_matches(';');
    (keys::is_credential_key(key) && keys::looks_like_credential(v)).then_some((key, v))
}

/// Judges the `key = value` / `key: value` / `--key=value` lines of a string (config text in a
/// YAML value, a container argument) by their key names.
fn config_lines(cx: &mut FileCx<'_>, node: &Node, value: &str, owner: &Owner<'_>) {
    if !value.contains(['=', ':']) {
        return;
    }
    let span = cx
        .text
        .get(node.span.start.offset..node.span.end.offset.max(node.span.start.offset))
        .unwrap_or("");
    for line in value.lines() {
        let Some((key, v)) = config_line_credential(line) else {
            continue;
        };
        // The line's place in the file when the string is written as is (a block scalar).
        let offset = match span.find(line.trim()) {
            Some(i) if !line.trim().is_empty() => node.span.start.offset + i,
            _ => node.span.start.offset,
        };
        let (line_no, column) = cx.pos_at(offset);
        if line_taken(cx, line_no) {
            continue;
        }
        let shown = crate::engine::shown_key(key);
        let message = format!(
            "{}: `{shown}` in the text of a value holds {} under a credential key name",
            owner.display(),
            CREDENTIAL_VALUE.what
        );
        let fp_key = format!("text/{shown}");
        cx.push(Hit {
            rule: Rule::CredentialValue,
            owner,
            key: shown.to_string(),
            fp_key,
            at: KeyAt {
                line: line_no,
                column,
                offset,
                shown,
                sep: " = ",
            },
            severity: CREDENTIAL_VALUE.severity,
            message,
            hash_input: v.as_bytes(),
            related: None,
        });
    }
}
