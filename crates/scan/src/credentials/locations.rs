//! Where credentials hide in GitOps documents, and what key each value is judged under: a
//! mapping key (ConfigMap `data`, Flux `HelmRelease` `spec.values`, Argo CD `valuesObject`,
//! Helm values files, Talos and kubeconfig documents, CRDs), the `name` of a `name`/`value`
//! pair (container `env` of every workload kind and pod template, Argo CD `plugin.env` and
//! `helm.parameters`), or the key of a `key = value` / `key: value` line inside a string
//! (config text, a Helm `values: |` block, a RabbitMQ `additionalConfig`). Secrets (judged by
//! [`crate::manifest`]), SealedSecrets (ciphertext) and SOPS metadata are not walked;
//! `valueFrom` and `secretKeyRef` name a place, not a value.

use std::sync::OnceLock;

use kustodian_manifest::{Node, NodeKind, Object, ScalarStyle};
use regex::Regex;

use super::{keys, CREDENTIAL_VALUE};
use crate::engine::{FileCx, FollowKind, Hit, KeyAt, Owner, ALLOW_ANNOTATION};
use crate::finding::Related;
use crate::generator;
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

/// Judges every value of one document outside its Secrets, and asks for the Helm values files
/// it names ([`values_files`]).
pub(crate) fn scan_document(cx: &mut FileCx<'_>, root: &Node) {
    let allowed = Object::new(root).annotation(ALLOW_ANNOTATION).is_some();
    let owner = owner_of(root, allowed);
    let mut path = Vec::new();
    walk(cx, root, &owner, &mut path, 0);
    values_files(cx, root, allowed);
}

/// Words of the fields that name Helm values files ([`values_files`]): a file holding none is
/// not parsed for them.
const VALUES_FILE_WORDS: [&[u8]; 3] = [b"configMapGenerator", b"valueFiles", b"aluesFile"];

/// Whether the text may name a Helm values file (see [`values_files`]).
pub(crate) fn names_values_files(bytes: &[u8]) -> bool {
    VALUES_FILE_WORDS
        .iter()
        .any(|w| memchr::memmem::find(bytes, w).is_some())
}

/// Asks for the local files a document reads as Helm values ([`FollowKind::HelmValues`]), so
/// that a values file is judged value by value whatever its name: a kustomization's
/// `configMapGenerator` `files:` (what a Flux `HelmRelease` `valuesFrom` reads) and `helmCharts`
/// `valuesFile` / `additionalValuesFiles`, relative to the kustomization; an Argo CD
/// `Application`'s (or `ApplicationSet` template's) `helm.valueFiles`, relative to the source's
/// `path`, or to the repository root after a `$ref/` prefix. Files with a manifest's name are
/// scanned as manifests already and are not asked for.
fn values_files(cx: &mut FileCx<'_>, root: &Node, allowed: bool) {
    let dir = cx.path.rsplit_once('/').map_or("", |(d, _)| d);
    let file = cx.path.rsplit('/').next().unwrap_or(cx.path);
    let o = Object::new(root);
    let namespace = o
        .namespace()
        .or_else(|| root.get("namespace").and_then(Node::as_scalar));
    let owner = |kind: &'static str, name| Owner {
        kind: Some(kind),
        name,
        namespace,
        secret_type: None,
        allowed,
        generic: false,
    };
    match o.kind() {
        Some("Kustomization" | "Component") => {}
        None if matches!(
            file,
            "kustomization.yaml" | "kustomization.yml" | "Kustomization"
        ) => {}
        Some("Application") => {
            let name = o.name();
            application_values(cx, root.get("spec"), &owner("Application", name));
            return;
        }
        Some("ApplicationSet") => {
            let name = o.name();
            let spec = root.get_path(&["spec", "template", "spec"]);
            application_values(cx, spec, &owner("ApplicationSet", name));
            return;
        }
        _ => return,
    }
    const BY_GENERATOR: FollowKind = FollowKind::HelmValues {
        by: "configMapGenerator",
    };
    for g in seq(root.get("configMapGenerator")) {
        let owner = owner(
            "configMapGenerator",
            g.get("name").and_then(Node::as_scalar),
        );
        for item in generator::scalars(g.get("files")) {
            generator::follow(cx, &owner, dir, "files", BY_GENERATOR, item);
        }
    }
    const BY_CHART: FollowKind = FollowKind::HelmValues { by: "helmCharts" };
    for c in seq(root.get("helmCharts")) {
        let name = c
            .get("releaseName")
            .or_else(|| c.get("name"))
            .and_then(Node::as_scalar);
        let owner = owner("helmCharts", name);
        for field in ["valuesFile", "additionalValuesFiles"] {
            for item in generator::scalars(c.get(field)) {
                generator::follow(cx, &owner, dir, field, BY_CHART, item);
            }
        }
    }
}

/// The `helm.valueFiles` of an Argo CD Application spec's `source` and `sources`.
fn application_values(cx: &mut FileCx<'_>, spec: Option<&Node>, owner: &Owner<'_>) {
    let Some(spec) = spec else { return };
    let sources: Vec<&Node> = spec
        .get("source")
        .into_iter()
        .chain(seq(spec.get("sources")))
        .collect();
    let kind = FollowKind::HelmValues {
        by: if owner.kind == Some("ApplicationSet") {
            "ApplicationSet"
        } else {
            "Application"
        },
    };
    for s in &sources {
        // Relative to the chart's `path` in this repository; `$values/envs/prod.yaml` names a
        // file of the source whose `ref` is `values`, taken as this repository.
        let dir = s.get("path").and_then(Node::as_scalar);
        for item in generator::scalars(s.get_path(&["helm", "valueFiles"])) {
            let by_ref = item.as_scalar().is_some_and(|t| t.starts_with('$'));
            if let Some(dir) = dir.or(by_ref.then_some("")) {
                generator::follow(cx, owner, dir, "valueFiles", kind, item);
            }
        }
    }
}

/// The items of a sequence, or nothing.
fn seq(n: Option<&Node>) -> &[Node] {
    n.and_then(Node::as_seq).unwrap_or(&[])
}

/// Judges a file read as Helm values ([`FollowKind::HelmValues`]): every value of its YAML by
/// key name, as a values file beside a `Chart.yaml` is, and its lines for known formats; each
/// finding names the entry that reads the file. A file that is not YAML holding a mapping is
/// left to the text search every file gets.
pub(crate) fn scan_values_file(cx: &mut FileCx<'_>, owner: &Owner<'_>, related: &Related) {
    let Ok(docs) = kustodian_manifest::parse_stream(cx.text) else {
        return;
    };
    if !docs.iter().any(|d| matches!(d.root.kind, NodeKind::Map(_))) {
        return;
    }
    let before = cx.findings.len();
    for d in &docs {
        walk(cx, &d.root, owner, &mut Vec::new(), 0);
    }
    super::scan_lines(cx);
    for f in &mut cx.findings[before..] {
        f.related = Some(related.clone());
    }
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
                    path,
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
                        path,
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

/// Judges one scalar under the last key of `path`.
fn judge(cx: &mut FileCx<'_>, leaf: &Leaf<'_, '_>, path: &[&str], value: &str, owner: &Owner<'_>) {
    let key = path.last().copied().unwrap_or("");
    if leaf.node.is_null() || value.len() < 10 || line_taken(cx, leaf.node.span.start.line) {
        return;
    }
    if let Some(class) = encoded_credential(value) {
        leaf.push(cx, owner, ENCODED, class, value.as_bytes());
        return;
    }
    if value.contains('\n') && embedded_yaml(cx, leaf.node, path, owner) {
        return;
    }
    if value.contains('\n') || !keys::is_credential_key(key) {
        config_lines(cx, leaf.node, value, owner);
        return;
    }
    if keys::looks_like_credential(value) {
        leaf.push(cx, owner, BY_KEY, CREDENTIAL_VALUE, value.as_bytes());
    }
}

/// Judges a literal block (`values.yaml: |` in a ConfigMap that a Flux `HelmRelease`
/// `valuesFrom` names, an Argo CD `helm.values: |`) as the YAML it holds when it holds a
/// mapping: every value by its key name, `name`/`value` pairs and `valueFrom` included, at its
/// own line and column in the file. False when the block is not YAML holding a mapping (INI,
/// properties, a script): its `key = value` lines are judged as config text instead.
fn embedded_yaml(cx: &mut FileCx<'_>, node: &Node, path: &[&str], owner: &Owner<'_>) -> bool {
    let NodeKind::Scalar {
        style: ScalarStyle::Literal,
        ..
    } = node.kind
    else {
        return false;
    };
    if path.len() >= MAX_DEPTH {
        return false;
    }
    // The block's lines as written, indentation included (the span starts at its text, or at
    // the `|` before it).
    let mut first = node.span.start.line;
    let line_start = cx.line_start(first);
    if !cx
        .text
        .get(line_start..node.span.start.offset)
        .is_some_and(|lead| lead.bytes().all(|b| b == b' ' || b == b'\t'))
    {
        first += 1;
    }
    let start = cx.line_start(first);
    if start < line_start {
        return false;
    }
    let Some(raw) = cx.text.get(start..node.span.end.offset.max(start)) else {
        return false;
    };
    let Ok(mut docs) = kustodian_manifest::parse_stream(raw) else {
        return false;
    };
    if !docs.iter().any(|d| matches!(d.root.kind, NodeKind::Map(_))) {
        return false;
    }
    let mut inner: Vec<&str> = path.to_vec();
    for d in &mut docs {
        shift(&mut d.root, start, first - 1);
    }
    for d in &docs {
        walk(cx, &d.root, owner, &mut inner, path.len() + 1);
    }
    true
}

/// Moves the spans of a tree parsed from a slice of the file to where the slice sits in it.
fn shift(n: &mut Node, offset: usize, lines: usize) {
    for p in [&mut n.span.start, &mut n.span.end] {
        p.offset += offset;
        p.line += lines;
    }
    match &mut n.kind {
        NodeKind::Map(entries) => {
            for e in entries {
                shift(&mut e.key, offset, lines);
                shift(&mut e.value, offset, lines);
            }
        }
        NodeKind::Seq(items) => items.iter_mut().for_each(|i| shift(i, offset, lines)),
        NodeKind::Scalar { .. } => {}
    }
}

/// A known credential format inside a base64 value (kubeconfig `client-key-data`, a Talos
/// `key:`), found only after decoding.
fn encoded_credential(value: &str) -> Option<crate::value::Class> {
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
        let Some(c) = config_line().captures(line) else {
            continue;
        };
        let (key, v) = (
            c.get(1).map_or("", |m| m.as_str()),
            c.get(2).map_or("", |m| m.as_str()),
        );
        // A trailing comment is not part of the value.
        let v = v.split(" #").next().unwrap_or(v).trim_end_matches(';');
        if !keys::is_credential_key(key) || !keys::looks_like_credential(v) {
            continue;
        }
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
