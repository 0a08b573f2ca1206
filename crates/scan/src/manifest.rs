//! Judging a parsed document: its Secrets (at the top, in `List` items, or nested as whole
//! objects anywhere), its values if it is SOPS-encrypted, and its `secretGenerator` if it is a
//! kustomization.

use kustodian_manifest::{Document, Duplicate, Node, NodeKind, Object};

use crate::engine::{FileCx, Hit, KeyAt, Owner, SopsState, ALLOW_ANNOTATION};
use crate::rules::Rule;
use crate::sops::{self, Selection};
use crate::value::{self, Verdict};

/// Annotations that make generic `<KEY>` placeholders count (argocd-vault-plugin and kustodian).
const PATH_ANNOTATIONS: [&str; 2] = ["avp.kubernetes.io/path", "kustodian.io/path"];

/// Deepest nesting searched for Secrets.
const MAX_DEPTH: usize = 64;

/// Judges one document of a file, and reports the keys it repeats in Secrets and SOPS
/// documents (`duplicate-key`).
pub(crate) fn scan_parsed(cx: &mut FileCx<'_>, doc: &Document) {
    scan_document_with(cx, &doc.root, &doc.duplicates);
}

/// Judges one document of a file.
pub(crate) fn scan_document(cx: &mut FileCx<'_>, root: &Node) {
    scan_document_with(cx, root, &[]);
}

fn scan_document_with(cx: &mut FileCx<'_>, root: &Node, duplicates: &[Duplicate]) {
    let selection = sops::is_sops_document(root).then(|| Selection::of(root));
    let root_allowed = Object::new(root).annotation(ALLOW_ANNOTATION).is_some();

    let mut secrets = Vec::new();
    let mut path = Vec::new();
    find_secrets(root, &mut path, true, 0, &mut secrets);
    // A SOPS file encrypted with the default rules hides its kind; its `data`/`stringData` are
    // still judged as Secret data.
    if selection.is_some()
        && secrets.is_empty()
        && root
            .get("kind")
            .and_then(Node::as_scalar)
            .is_some_and(sops::is_encrypted_value)
        && (root.get("data").is_some() || root.get("stringData").is_some())
    {
        secrets.push((Vec::new(), root));
    }
    for (path, node) in &secrets {
        scan_secret(cx, node, path, selection.as_ref(), root_allowed);
    }
    report_duplicates(
        cx,
        root,
        &secrets,
        selection.is_some(),
        root_allowed,
        duplicates,
    );
    if let Some(sel) = &selection {
        scan_sops_leaves(cx, root, sel, &secrets, root_allowed);
        sops::scan_sops_file(cx, root, &owner_of(root, root_allowed));
    }
    if crate::generator::is_kustomization(root) {
        crate::generator::scan_kustomization(cx, root);
    }
    if cx.policy.scan_everywhere {
        let owner = owner_of(root, root_allowed);
        let mut path = Vec::new();
        scan_everywhere(cx, root, &secrets, &owner, &mut path, 0);
    }
}

/// A `duplicate-key` finding for each key repeated inside a Secret (every reading of the
/// repeated keys counts: a `kind` repeated as ConfigMap and Secret makes a Secret) or anywhere
/// in a SOPS document. Both values were judged already.
fn report_duplicates(
    cx: &mut FileCx<'_>,
    root: &Node,
    secrets: &[(Vec<&str>, &Node)],
    sops: bool,
    root_allowed: bool,
    duplicates: &[Duplicate],
) {
    for d in duplicates {
        let at = d.again.start.offset;
        let secret = secrets.iter().map(|(_, n)| *n).rfind(|n| {
            n.span.start.offset <= at && at < n.span.end.offset.max(n.span.start.offset + 1)
        });
        let owner = match (secret, sops) {
            (Some(n), _) => secret_owner(n, root_allowed),
            (None, true) => owner_of(root, root_allowed),
            (None, false) => continue,
        };
        let key = crate::engine::shown_key(&d.key);
        let message = format!(
            "{}: the key `{key}` is repeated in one mapping (first at line {}, column {}); kubectl and kustomize read the last one, other tools the first, so a reviewer may see a different object than the cluster gets",
            owner.display(),
            d.first.start.line,
            d.first.start.column
        );
        cx.push_structural(Rule::DuplicateKey, d.again.start, &owner, key, message);
    }
}

/// The values of a mapping's key, every one when the key is repeated.
fn all_scalars<'a>(n: &'a Node, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    n.get_all(key).filter_map(Node::as_scalar)
}

/// Whether a mapping is a core-group Secret under any reading of its repeated keys.
pub(crate) fn is_secret(n: &Node, object_position: bool) -> bool {
    let kind_secret = all_scalars(n, "kind").any(|k| k == "Secret");
    if object_position {
        kind_secret
            && (n.get("apiVersion").is_none() || all_scalars(n, "apiVersion").any(|v| v == "v1"))
    } else {
        kind_secret
            && all_scalars(n, "apiVersion").any(|v| v == "v1")
            && n.get_all("metadata").any(|m| m.as_map().is_some())
    }
}

/// `scan_everywhere`: every scalar outside Secrets that is a private key or a cloud token (or
/// matches a custom rule) is a `token-outside-secret` finding.
fn scan_everywhere<'a>(
    cx: &mut FileCx<'_>,
    n: &'a Node,
    secrets: &[(Vec<&str>, &Node)],
    owner: &Owner<'_>,
    path: &mut Vec<&'a str>,
    depth: usize,
) {
    if depth > MAX_DEPTH || secrets.iter().any(|(_, s)| std::ptr::eq(*s, n)) {
        return;
    }
    match &n.kind {
        NodeKind::Map(entries) => {
            for e in entries {
                let Some(k) = e.key.as_scalar() else { continue };
                if depth == 0 && k == "sops" {
                    continue;
                }
                path.push(k);
                if let NodeKind::Scalar { value, .. } = &e.value.kind {
                    everywhere_leaf(cx, &Leaf::new(Some(&e.key), &e.value, path), value, owner);
                } else {
                    scan_everywhere(cx, &e.value, secrets, owner, path, depth + 1);
                }
                path.pop();
            }
        }
        NodeKind::Seq(items) => {
            for it in items {
                match &it.kind {
                    NodeKind::Scalar { value, .. } => {
                        everywhere_leaf(cx, &Leaf::new(None, it, path), value, owner)
                    }
                    _ => scan_everywhere(cx, it, secrets, owner, path, depth + 1),
                }
            }
        }
        NodeKind::Scalar { .. } => {}
    }
}

/// A value's key path as findings show it: `spec.source.helm.values`.
pub(crate) fn dotted(path: &[&str]) -> String {
    path.iter()
        .map(|k| crate::engine::shown_key(k))
        .collect::<Vec<_>>()
        .join(".")
}

/// Where a leaf's finding points: its key (shown as `shown_key`, the dotted path, when the key
/// cannot be shown as written), or the value itself for a sequence item.
fn leaf_at<'t>(
    cx: &FileCx<'t>,
    key_node: Option<&Node>,
    node: &Node,
    path: &[&str],
    shown_key: &'t str,
) -> KeyAt<'t> {
    match key_node {
        Some(k) => {
            let at = key_at(cx, k, ": ");
            if at.shown.is_empty() || !path.last().is_some_and(|k| crate::engine::is_valid_key(k)) {
                KeyAt {
                    shown: shown_key,
                    sep: " ",
                    ..at
                }
            } else {
                at
            }
        }
        None => KeyAt {
            line: node.span.start.line,
            column: node.span.start.column,
            offset: node.span.start.offset,
            shown: "",
            sep: "",
        },
    }
}

/// A scalar value found by walking a document: its key (none for a sequence item), its node
/// and its key path.
pub(crate) struct Leaf<'n, 'p> {
    key_node: Option<&'n Node>,
    pub(crate) node: &'n Node,
    path: &'p [&'p str],
}

/// The rule and message tail of a token found outside a Secret (`scan_everywhere`).
const OUTSIDE_SECRET: (Rule, &str) = (Rule::TokenOutsideSecret, "outside a Secret");

/// The rule and message tail of a plaintext value in a SOPS document.
const LEFT_PLAINTEXT: (Rule, &str) = (
    Rule::SopsPlaintextValue,
    "left plaintext in a SOPS-encrypted document whose rules encrypt it; it was probably added \
     after the file was encrypted",
);

impl<'n, 'p> Leaf<'n, 'p> {
    pub(crate) fn new(key_node: Option<&'n Node>, node: &'n Node, path: &'p [&'p str]) -> Self {
        Leaf {
            key_node,
            node,
            path,
        }
    }

    /// Records a finding on this leaf: "OWNER: a.b.c holds WHAT DETAIL".
    pub(crate) fn push(
        &self,
        cx: &mut FileCx<'_>,
        owner: &Owner<'_>,
        (rule, detail): (Rule, &str),
        class: value::Class,
        hash_input: &[u8],
    ) {
        let key = dotted(self.path);
        let shown_key = format!("{key}:");
        let at = leaf_at(cx, self.key_node, self.node, self.path, &shown_key);
        let message = format!("{}: {key} holds {} {detail}", owner.display(), class.what);
        cx.push(Hit {
            rule,
            owner,
            fp_key: key.clone(),
            key,
            at,
            severity: class.severity,
            message,
            hash_input,
            related: None,
        });
    }
}

fn everywhere_leaf(cx: &mut FileCx<'_>, leaf: &Leaf<'_, '_>, value: &str, owner: &Owner<'_>) {
    let path = leaf.path;
    if value.len() < 16 || sops::is_encrypted_value(value) {
        return;
    }
    let last = path.last().copied().unwrap_or("");
    let class = value::classify(value.as_bytes(), last);
    if class.severity != crate::finding::Severity::Critical
        && cx.policy.custom_match(value.as_bytes()).is_none()
    {
        return;
    }
    let line = leaf.node.span.start.line;
    if cx.findings.iter().any(|f| f.location.line == line) {
        return;
    }
    leaf.push(cx, owner, OUTSIDE_SECRET, class, value.as_bytes());
}

/// Every Secret in the document with the mapping keys leading to it (what sops's rules see).
/// In object position (the root, `List` items) a Secret is `kind: Secret` of the core group;
/// nested anywhere else it must look like a whole object (`apiVersion: v1`, `kind: Secret` and
/// `metadata`), so that policies and CRDs that merely mention Secrets do not count.
fn find_secrets<'a>(
    n: &'a Node,
    path: &mut Vec<&'a str>,
    object_position: bool,
    depth: usize,
    out: &mut Vec<(Vec<&'a str>, &'a Node)>,
) {
    if depth > MAX_DEPTH {
        return;
    }
    match &n.kind {
        NodeKind::Map(entries) => {
            if is_secret(n, object_position) {
                out.push((path.clone(), n));
                return;
            }
            let is_list = all_scalars(n, "kind").any(|k| k.ends_with("List"));
            for e in entries {
                let Some(k) = e.key.as_scalar() else { continue };
                if depth == 0 && k == "sops" {
                    continue;
                }
                path.push(k);
                find_secrets(&e.value, path, is_list && k == "items", depth + 1, out);
                path.pop();
            }
        }
        NodeKind::Seq(items) => {
            for it in items {
                find_secrets(it, path, object_position, depth + 1, out);
            }
        }
        NodeKind::Scalar { .. } => {}
    }
}

pub(crate) fn owner_of<'a>(node: &'a Node, allowed: bool) -> Owner<'a> {
    let o = Object::new(node);
    let clear = |v: Option<&'a str>| v.filter(|s| !sops::is_encrypted_value(s));
    Owner {
        kind: clear(o.kind()),
        name: clear(o.name()),
        namespace: clear(o.namespace()),
        secret_type: clear(o.secret_type()),
        allowed: allowed || o.annotation(ALLOW_ANNOTATION).is_some(),
        generic: PATH_ANNOTATIONS.iter().any(|a| o.annotation(a).is_some()),
    }
}

/// The owner of a Secret found by [`find_secrets`]: its kind is `Secret` even when a repeated
/// `kind` says something else first (it is a Secret for someone).
fn secret_owner(node: &Node, allowed: bool) -> Owner<'_> {
    let mut owner = owner_of(node, allowed);
    if owner.kind.is_some() {
        owner.kind = Some("Secret");
    }
    owner
}

/// Where a key node is, as a [`KeyAt`].
pub(crate) fn key_at<'t>(cx: &FileCx<'t>, key: &Node, sep: &'t str) -> KeyAt<'t> {
    let shown = cx
        .text
        .get(key.span.range())
        .filter(|s| !s.is_empty() && !s.contains('\n'))
        .unwrap_or("");
    KeyAt {
        line: key.span.start.line,
        column: key.span.start.column,
        offset: key.span.start.offset,
        shown,
        sep,
    }
}

fn scan_secret(
    cx: &mut FileCx<'_>,
    node: &Node,
    path: &[&str],
    selection: Option<&Selection>,
    root_allowed: bool,
) {
    let owner = secret_owner(node, root_allowed);
    let sections = ["data", "stringData"]
        .into_iter()
        .flat_map(|section| node.get_all(section).map(move |n| (section, n)));
    for (section, block) in sections {
        let Some(entries) = block.as_map() else {
            continue;
        };
        cx.judged_lines
            .push((block.span.start.line, block.span.end.line));
        for e in entries {
            let Some(key) = e.key.as_scalar() else {
                continue;
            };
            let NodeKind::Scalar { value, .. } = &e.value.kind else {
                continue;
            };
            if e.value.is_null() {
                continue;
            }
            let state = match selection {
                None => SopsState::None,
                Some(sel) => {
                    let mut p = path.to_vec();
                    p.extend([section, key]);
                    match sel.encrypts(&p) {
                        Some(false) => SopsState::LeavesClear(sel.clear_rule()),
                        _ => SopsState::Encrypts,
                    }
                }
            };
            let at = key_at(cx, &e.key, ": ");
            let at = if at.shown.is_empty() {
                KeyAt { shown: key, ..at }
            } else {
                at
            };
            cx.judge_secret_value(&owner, section, key, value, at, state);
        }
    }
}

/// Every value of a SOPS document that its rules say is encrypted must be `ENC[...]`.
fn scan_sops_leaves(
    cx: &mut FileCx<'_>,
    root: &Node,
    sel: &Selection,
    secrets: &[(Vec<&str>, &Node)],
    root_allowed: bool,
) {
    if sel.is_unknown() {
        return;
    }
    let owner = owner_of(root, root_allowed);
    let mut path = Vec::new();
    walk_leaves(cx, root, sel, secrets, &owner, &mut path, 0);
}

fn walk_leaves<'a>(
    cx: &mut FileCx<'_>,
    n: &'a Node,
    sel: &Selection,
    secrets: &[(Vec<&str>, &Node)],
    owner: &Owner<'_>,
    path: &mut Vec<&'a str>,
    depth: usize,
) {
    if depth > MAX_DEPTH {
        return;
    }
    match &n.kind {
        NodeKind::Map(entries) => {
            let is_secret = secrets.iter().any(|(_, s)| std::ptr::eq(*s, n));
            for e in entries {
                let Some(k) = e.key.as_scalar() else { continue };
                if (depth == 0 && k == "sops") || (is_secret && (k == "data" || k == "stringData"))
                {
                    continue;
                }
                path.push(k);
                if let NodeKind::Scalar { value, .. } = &e.value.kind {
                    judge_leaf(
                        cx,
                        &Leaf::new(Some(&e.key), &e.value, path),
                        value,
                        sel,
                        owner,
                    );
                } else {
                    walk_leaves(cx, &e.value, sel, secrets, owner, path, depth + 1);
                }
                path.pop();
            }
        }
        NodeKind::Seq(items) => {
            for it in items {
                match &it.kind {
                    NodeKind::Scalar { value, .. } => {
                        judge_leaf(cx, &Leaf::new(None, it, path), value, sel, owner)
                    }
                    _ => walk_leaves(cx, it, sel, secrets, owner, path, depth + 1),
                }
            }
        }
        NodeKind::Scalar { .. } => {}
    }
}

fn judge_leaf(
    cx: &mut FileCx<'_>,
    leaf: &Leaf<'_, '_>,
    value: &str,
    sel: &Selection,
    owner: &Owner<'_>,
) {
    let (node, path) = (leaf.node, leaf.path);
    if node.is_null() || sel.encrypts(path) != Some(true) {
        return;
    }
    let vcx = value::Context {
        sops_document: true,
        generic_placeholders: owner.generic,
        key: path.last().copied().unwrap_or(""),
    };
    let Verdict::Plaintext {
        class, hash_input, ..
    } = value::judge_text(value, vcx)
    else {
        return;
    };
    leaf.push(cx, owner, LEFT_PLAINTEXT, class, &hash_input);
}

#[cfg(test)]
mod tests {
    use crate::engine::Scanner;
    use crate::finding::{Finding, Severity};
    use crate::rules::Rule;

    fn scan(src: &str) -> Vec<Finding> {
        Scanner::new().scan_file("f.yaml", src.as_bytes()).findings
    }

    fn brief(f: &[Finding]) -> Vec<(usize, usize, Rule, String, Severity)> {
        f.iter()
            .map(|f| {
                (
                    f.location.line,
                    f.location.column,
                    f.rule,
                    f.key.clone(),
                    f.severity,
                )
            })
            .collect()
    }

    const SECRET: &str = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: prod\ndata:\n  password: Y29ycmVjdC1ob3JzZS1iYXR0ZXJ5\nstringData:\n  token: ghp_0123456789abcdefghijklmnopqrstuvwxyz\n  empty: \"\"\n  nothing:\n";

    #[test]
    fn one_finding_per_key_at_the_key() {
        let f = scan(SECRET);
        assert_eq!(
            brief(&f),
            vec![
                (
                    7,
                    3,
                    Rule::PlaintextSecretData,
                    "password".into(),
                    Severity::Medium
                ),
                (
                    9,
                    3,
                    Rule::PlaintextSecretData,
                    "token".into(),
                    Severity::Critical
                ),
            ]
        );
        assert_eq!(f[0].kind.as_deref(), Some("Secret"));
        assert_eq!(f[0].name.as_deref(), Some("db"));
        assert_eq!(f[0].namespace.as_deref(), Some("prod"));
        assert_eq!(f[0].excerpt.text, "  password: [REDACTED]");
        assert!(!f[0].message.contains("Y29y"));
    }

    #[test]
    fn nested_lists_and_whole_objects_nested_anywhere() {
        let src = "kind: List\nitems:\n- kind: List\n  items:\n  - kind: Secret\n    metadata: {name: a}\n    stringData: {k: plaintext-value}\n";
        assert_eq!(brief(&scan(src)).len(), 1);
        let tmpl = "apiVersion: template.openshift.io/v1\nkind: Template\nobjects:\n- apiVersion: v1\n  kind: Secret\n  metadata: {name: t}\n  stringData:\n    k: plaintext-value\n";
        assert_eq!(brief(&scan(tmpl))[0].0, 8);
        // A policy that mentions a Secret without being one is not judged.
        let policy = "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nspec:\n  rules:\n  - generate:\n      apiVersion: v1\n      kind: Secret\n      name: regcred\n      data:\n        type: kubernetes.io/dockerconfigjson\n        data:\n          .dockerconfigjson: '{{ request.object.data }}'\n";
        assert!(scan(policy).is_empty());
    }

    #[test]
    fn lets_through_what_is_not_plaintext() {
        for src in [
            "kind: Secret\ntype: kubernetes.io/service-account-token\nmetadata:\n  annotations:\n    kubernetes.io/service-account.name: app\n",
            "kind: Secret\ndata: {}\nstringData: {}\n",
            "kind: Secret\nstringData:\n  password: <path:kv/data/app#password>\n  url: ref+vault://kv/app#/url\n",
            "kind: Secret\nmetadata:\n  annotations:\n    avp.kubernetes.io/path: kv/data/app\nstringData:\n  password: <password>\n",
            "kind: Secret\nmetadata:\n  annotations:\n    kustodian.io/allow: test fixture, not a real password\nstringData:\n  password: plaintext-value\n",
            "kind: Secret\nstringData:\n  password: plaintext-value # kustodian:allow\n",
            "apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nspec:\n  encryptedData:\n    password: AgBy3i4OJSWK+PiTySYZZA==\n",
            "apiVersion: external-secrets.io/v1beta1\nkind: ExternalSecret\nspec:\n  data:\n  - secretKey: password\n",
            "apiVersion: v1\nkind: ConfigMap\ndata:\n  note: every Secret is mounted\n",
            "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n      - env:\n        - name: P\n          valueFrom:\n            secretKeyRef: {name: db, key: password}\n      volumes:\n      - secret:\n          secretName: Secret\n",
        ] {
            assert!(scan(src).is_empty(), "{src}");
        }
    }

    #[test]
    fn sops_values_are_judged_one_by_one() {
        let enc = "ENC[AES256_GCM,data:q1w2,iv:MTIz,tag:NDU2,type:str]";
        let src = format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ndata:\n  password: {enc}\nstringData:\n  added_later: plaintext-value\n  note_unencrypted: also-plaintext\nsops:\n  mac: {enc}\n  lastmodified: '2024-01-01T00:00:00Z'\n  encrypted_regex: ^(data|stringData)$\n"
        );
        let f = scan(&src);
        assert_eq!(
            brief(&f),
            vec![
                (
                    8,
                    3,
                    Rule::SopsPlaintextValue,
                    "added_later".into(),
                    Severity::Medium
                ),
                (
                    9,
                    3,
                    Rule::SopsPlaintextValue,
                    "note_unencrypted".into(),
                    Severity::Medium
                ),
            ]
        );
        // A store file: every value its rules encrypt must be encrypted.
        let store = format!("db:\n  password: {enc}\n  user: plaintext-value\ncomment_unencrypted: fine\nsops:\n  mac: {enc}\n  version: 3.9.0\n  lastmodified: x\n");
        let f = scan(&store);
        assert_eq!(
            brief(&f),
            vec![(
                3,
                3,
                Rule::SopsPlaintextValue,
                "db.user".into(),
                Severity::Medium
            )]
        );
        // An ENC value outside a SOPS document cannot be decrypted.
        let orphan = format!("kind: Secret\nstringData:\n  password: {enc}\n");
        assert_eq!(scan(&orphan)[0].rule, Rule::SopsValueWithoutMetadata);
    }

    #[test]
    fn json_flow_and_anchors() {
        let json = r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"j"},"data":{"a":"cGxhaW50ZXh0LXZhbHVl"}}"#;
        let f = scan(json);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].excerpt.text, "… \"a\": [REDACTED]");
        let anchors = "x: &pw plaintext-value\n---\nkind: Secret\nstringData:\n  a: &v plaintext-value\n  b: *v\n";
        assert_eq!(scan(anchors).len(), 2);
    }
}
