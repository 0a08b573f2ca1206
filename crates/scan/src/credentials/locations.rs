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
    scan_comments(cx, &docs);
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
            // A credential flag whose value is the next item (`args: ["--token", "..."]`).
            let mut flag = None;
            for it in items {
                match &it.kind {
                    NodeKind::Scalar { value, .. } => match flag.take() {
                        Some(name) if !value.starts_with('-') => {
                            path.push(name);
                            judge(cx, &Leaf::new(None, it, path), path, value, owner);
                            path.pop();
                        }
                        _ => {
                            config_lines(cx, it, value, owner);
                            flag = lone_credential_flag(value);
                        }
                    },
                    _ => {
                        flag = None;
                        walk(cx, it, owner, path, depth + 1);
                    }
                }
            }
        }
        NodeKind::Scalar { .. } => {}
    }
}

/// The name of a command-line flag that stands alone and names a credential (`--api-token`,
/// `-password`): its value is the next argument.
fn lone_credential_flag(arg: &str) -> Option<&str> {
    let name = arg.strip_prefix('-')?;
    let name = name.strip_prefix('-').unwrap_or(name);
    let plain = name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    (plain && keys::is_credential_key(name)).then_some(name)
}

/// Whether the file already has a finding on `line` (a Secret's, a SOPS value's).
fn line_taken(cx: &FileCx<'_>, line: usize) -> bool {
    cx.findings.iter().any(|f| f.location.line == line)
}

/// Judges one scalar under the last key of `path`.
fn judge(cx: &mut FileCx<'_>, leaf: &Leaf<'_, '_>, path: &[&str], value: &str, owner: &Owner<'_>) {
    let key = path.last().copied().unwrap_or("");
    if leaf.node.is_null() || line_taken(cx, leaf.node.span.start.line) {
        return;
    }
    match judgement(key, value) {
        Judgement::Nothing => {}
        Judgement::Encoded(class) => leaf.push(cx, owner, ENCODED, class, value.as_bytes()),
        Judgement::ConfigText => {
            // A literal block holding YAML is judged as YAML; other text line by line.
            if !(value.contains('\n') && embedded_yaml(cx, leaf.node, path, owner)) {
                config_lines(cx, leaf.node, value, owner);
            }
        }
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
    if keys::holds_credential(key, value) {
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
pub(super) fn encoded_credential(value: &str) -> Option<crate::value::Class> {
    let v = value.trim();
    if v.len() < 24 || v.contains(char::is_whitespace) && !v.starts_with("LS0t") {
        return None;
    }
    let decoded = crate::value::decode_base64(v)?;
    crate::value::strong_class(&decoded, "")
}

/// A Ruby or PHP pair (`:password => "..."`, `'secret' => '...',`, `gitlab_rails['db_password']
/// = "..."`): the key, and the quoted literal (key 1 and values 2-3, or key 4 and values 5-6).
fn code_pair() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(concat!(
            r#"^\s*(?::|["'])?([A-Za-z0-9_.\-]{2,80})["']?\s*=>\s*(?:"([^"]*)"|'([^']*)')"#,
            r#"\s*[,;]?\s*(?:(?:#|//).*)?$"#,
            r#"|^\s*[$@]?[A-Za-z_][A-Za-z0-9_]*\[\s*["']([A-Za-z0-9_.\-]{2,80})["']\s*\]\s*=\s*"#,
            r#"(?:"([^"]*)"|'([^']*)')\s*;?\s*(?:(?:#|//).*)?$"#,
        ))
        .expect("compiles")
    })
}

/// The key and value of a config line: a Ruby or PHP pair ([`code_pair`]) or a `key = value`
/// / `key: value` / `--key=value` line, without a trailing comment. A double-quoted Ruby or
/// PHP string that interpolates (`"$x"`, `"#{x}"`) is no literal.
fn config_pair(line: &str) -> Option<(&str, &str)> {
    if let Some(c) = code_pair().captures(line) {
        let key = c.get(1).or_else(|| c.get(4))?.as_str();
        if let Some(v) = c.get(2).or_else(|| c.get(5)) {
            let v = v.as_str();
            let interpolates = v.contains("#{")
                || v.as_bytes()
                    .windows(2)
                    .any(|w| w[0] == b'$' && (w[1].is_ascii_alphabetic() || b"_{".contains(&w[1])));
            return (!interpolates).then_some((key, v));
        }
        return Some((key, c.get(3).or_else(|| c.get(6))?.as_str()));
    }
    let c = config_line().captures(line)?;
    let (key, v) = (
        c.get(1).map_or("", |m| m.as_str()),
        c.get(2).map_or("", |m| m.as_str()),
    );
    // A trailing comment is not part of the value.
    Some((key, v.split(" #").next().unwrap_or(v).trim_end_matches(';')))
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
    let item = line.trim_start();
    let item = item.strip_prefix("- ").unwrap_or(line);
    config_pair(item).filter(|(key, v)| keys::holds_credential(key, v))
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
    let place = format!("{}: `{{key}}` in the text of a value", owner.display());
    // The `name` of a `name`/`value` pair (an HTTP header of an Argo CD notifications webhook
    // or an Alertmanager receiver written as text): the key of the `value` line after it.
    let mut pair_name = None;
    for line in value.lines() {
        // The line's place in the file when the string is written as is (a block scalar).
        let at = || match span.find(line.trim()) {
            Some(i) if !line.trim().is_empty() => node.span.start.offset + i,
            _ => node.span.start.offset,
        };
        // A YAML list item's first key (`- name: Authorization`).
        let item = match line.trim_start().strip_prefix("- ") {
            Some(rest) => rest,
            None => line,
        };
        let Some((key, v)) = config_pair(item) else {
            continue;
        };
        match (key, pair_name.take()) {
            ("name", _) => pair_name = Some(v.trim().trim_matches(['"', '\''])),
            ("value", Some(name)) => config_line_hit(cx, owner, (name, v), &at, &place),
            _ => config_line_hit(cx, owner, (key, v), &at, &place),
        }
    }
}

/// Judges a line of YAML comment (`# password: hunter2-but-longer`) like a line of config text:
/// a credential commented out is still committed. Only whole-line comments count, and not the
/// lines of a block or multi-line scalar, which are text.
pub(crate) fn scan_comments(cx: &mut FileCx<'_>, docs: &[kustodian_manifest::Document]) {
    let mut text_lines = Vec::new();
    for d in docs {
        multi_line_scalars(&d.root, &mut text_lines, 0);
    }
    let owner = Owner::default();
    for (n, start, line) in super::lines(cx.text) {
        let body = line.trim_start();
        let Some(comment) = body.strip_prefix('#') else {
            continue;
        };
        let indent = line.len() - body.len();
        // A `#` line indented as deep as a block scalar's text is part of it.
        if !comment.contains([':', '='])
            || text_lines
                .iter()
                .any(|(a, b, deep)| *a <= n && n <= *b && indent >= *deep)
        {
            continue;
        }
        let lead = comment.len() - comment.trim_start().len();
        let at = || start + indent + 1 + lead;
        let Some(pair) = config_pair(comment) else {
            continue;
        };
        config_line_hit(
            cx,
            &owner,
            pair,
            &at,
            &format!("line {n}: `{{key}}` in a comment"),
        );
    }
}

/// The first and last line of every scalar that spans lines, and the indentation of its text.
fn multi_line_scalars(n: &Node, out: &mut Vec<(usize, usize, usize)>, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    match &n.kind {
        NodeKind::Scalar { .. } => {
            let (a, b) = (n.span.start.line, n.span.end.line);
            let b = if n.span.end.column == 1 { b - 1 } else { b };
            if b > a {
                out.push((a, b, n.span.start.column.saturating_sub(1)));
            }
        }
        NodeKind::Seq(items) => items
            .iter()
            .for_each(|i| multi_line_scalars(i, out, depth + 1)),
        NodeKind::Map(entries) => entries
            .iter()
            .for_each(|e| multi_line_scalars(&e.value, out, depth + 1)),
    }
}

/// Judges the key and value of one config line ([`config_pair`]) by its key name: a
/// `credential-value` finding at `at()` (its offset in the file) when the key is a
/// credential's and the value looks like one. `place` starts the message, `{key}` standing for
/// the key.
pub(super) fn config_line_hit(
    cx: &mut FileCx<'_>,
    owner: &Owner<'_>,
    (key, v): (&str, &str),
    at: &dyn Fn() -> usize,
    place: &str,
) {
    if !keys::holds_credential(key, v) {
        return;
    }
    let offset = at();
    let (line_no, column) = cx.pos_at(offset);
    if line_taken(cx, line_no) {
        return;
    }
    let shown = crate::engine::shown_key(key);
    let message = format!(
        "{} holds {} under a credential key name",
        place.replace("{key}", shown),
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

#[cfg(test)]
mod tests {
    use crate::engine::{FollowKind, Scanner};

    /// `(line, column, key)` of each finding.
    fn found(path: &str, src: &str) -> Vec<(usize, usize, String)> {
        Scanner::new()
            .scan_file(path, src.as_bytes())
            .findings
            .iter()
            .map(|f| (f.location.line, f.location.column, f.key.clone()))
            .collect()
    }

    #[test]
    fn a_literal_block_holding_yaml_is_judged_as_yaml_at_its_own_lines() {
        let src = "kind: ConfigMap\nmetadata:\n  name: v\ndata:\n  values.yaml: |\n    env:\n    - name: DB_PASSWORD\n      value: Tr0ub4dor-3xyz-Q9\n    ldap: {bindPassword: Tr0ub4dor-3xyz-Q8}\n  app.ini: |\n    [db]\n    password = Tr0ub4dor-3xyz-Q7\n";
        assert_eq!(
            found("cm.yaml", src),
            vec![
                (8, 7, "data.values.yaml.env.DB_PASSWORD".to_string()),
                (9, 12, "data.values.yaml.ldap.bindPassword".to_string()),
                (12, 5, "password".to_string()),
            ]
        );
    }

    #[test]
    fn ruby_and_php_pairs_in_config_text_are_judged_like_key_value_lines() {
        use super::config_pair;
        for (line, key) in [
            ("  'secret' => 'Tr0ub4dor-3xyz-Q9',", "secret"),
            ("  \"dbpassword\" => \"Tr0ub4dor-3xyz-Q9\",", "dbpassword"),
            ("  :password => \"Tr0ub4dor-3xyz-Q9\" # smtp", "password"),
            (
                "gitlab_rails['db_password'] = \"Tr0ub4dor-3xyz-Q9\"",
                "db_password",
            ),
            ("$CONFIG['secret'] = 'Tr0ub4dor-3xyz-Q9';", "secret"),
        ] {
            assert_eq!(
                config_pair(line),
                Some((key, "Tr0ub4dor-3xyz-Q9")),
                "{line}"
            );
        }
        // Not literals: a call, an interpolating string.
        assert_eq!(config_pair("  'secret' => \"$secretValue\","), None);
        assert_eq!(config_pair("  :token => \"#{ENV['T']}x\","), None);
        assert_eq!(
            config_pair("  :password => \"Tr0ub#4dor-3$\","),
            Some(("password", "Tr0ub#4dor-3$"))
        );
        let src = "kind: ConfigMap\ndata:\n  config.php: |\n    'dbpassword' => getenv('DB_PASSWORD_X'),\n    'secret' => 'Tr0ub4dor-3xyz-Q9',\n";
        assert_eq!(found("cm.yaml", src), vec![(5, 5, "secret".to_string())]);
    }

    #[test]
    fn a_credential_flag_judges_the_next_list_item() {
        let src = "kind: Deployment\nspec:\n  containers:\n  - args: [\"--api-token\", \"Tr0ub4dor-3xyz-Q9\", \"--token\", \"--verbose\"]\n    command:\n    - --password\n    - Tr0ub4dor-3xyz-Q8\n    - --password-file\n    - /run/secrets/Tr0ub4dor\n";
        assert_eq!(
            found("d.yaml", src),
            vec![
                (4, 27, "spec.containers.args.api-token".to_string()),
                (7, 7, "spec.containers.command.password".to_string()),
            ]
        );
    }

    #[test]
    fn name_value_lines_of_config_text_are_judged_with_the_name_as_key() {
        let src = "kind: ConfigMap\ndata:\n  service.webhook.x: |\n    url: {{.context.url}}/hook\n    headers:\n    - name: Content-Type\n      value: application/json-patch+json\n    - name: Authorization\n      value: Bearer Tr0ub4dor-3xyz-Q9\n";
        assert_eq!(
            found("cm.yaml", src),
            vec![(9, 7, "Authorization".to_string())]
        );
    }

    #[test]
    fn whole_line_comments_are_judged_but_not_hash_lines_of_a_block() {
        let src = "kind: ConfigMap\ndata:\n  run.sh: |\n    # token: Tr0ub4dor-3xyz-Q9\n  # api_key = Tr0ub4dor-3xyz-Q8\n  # password: changeme\nx: 1 # secret: Tr0ub4dor-3xyz-Q7\n";
        assert_eq!(found("cm.yaml", src), vec![(5, 5, "api_key".to_string())]);
    }

    #[test]
    fn values_files_are_asked_for_when_their_name_is_not_a_manifests() {
        let s = Scanner::new();
        let k = "configMapGenerator:\n- name: v\n  files:\n  - values.yaml=my.values\n  - other.yaml\nhelmCharts:\n- name: redis\n  valuesFile: redis.txt\n";
        let r = s.scan_file("apps/kustomization.yaml", k.as_bytes());
        let got: Vec<_> = r.follow.iter().map(|f| (f.path.as_str(), f.kind)).collect();
        assert_eq!(
            got,
            vec![
                (
                    "apps/my.values",
                    FollowKind::HelmValues {
                        by: "configMapGenerator"
                    }
                ),
                (
                    "apps/redis.txt",
                    FollowKind::HelmValues { by: "helmCharts" }
                ),
            ]
        );
        let app = "kind: Application\nmetadata:\n  name: web\nspec:\n  sources:\n  - path: charts/web\n    helm:\n      valueFiles: [prod.values, $values/envs/x.values, ../../../out.values]\n  - ref: values\n";
        let r = s.scan_file("apps/web.yaml", app.as_bytes());
        let got: Vec<_> = r.follow.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(got, vec!["charts/web/prod.values", "envs/x.values"]);
        // Judged value by value, naming the entry that reads it.
        let f = s.scan_followed(&r.follow[0], b"db:\n  password: Tr0ub4dor-3xyz-Q9\n");
        assert_eq!(f.findings.len(), 1);
        assert_eq!(f.findings[0].location.line, 2);
        assert!(f.findings[0].message.starts_with("Application/web:"));
        assert_eq!(f.findings[0].related.as_ref().unwrap().location.line, 8);
        // Not YAML: left to the text search.
        assert!(s
            .scan_followed(&r.follow[0], b"password = Tr0ub4dor-3xyz-Q9\n")
            .findings
            .is_empty());
        // Too large to read: a note, not a finding (a ConfigMap's data file is no Secret).
        let huge = vec![b'a'; crate::engine::MAX_FILE_SIZE + 1];
        let r = s.scan_followed(&r.follow[0], &huge);
        assert!(r.findings.is_empty() && !r.notes.is_empty());
    }
}
