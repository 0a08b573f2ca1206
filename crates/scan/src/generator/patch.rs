//! kustomize patches that add Secret data: `patches` (inline `patch:` or a `path:` file),
//! `patchesStrategicMerge` (inline strings or objects, or files) and `patchesJson6902`.
//! `kubectl kustomize` puts what they add into the Secret it outputs, so a value there is Secret
//! data like any other.
//!
//! A patch is judged when it patches a Secret: its `target` selects kind `Secret` (kustomize
//! reads the target's kind as a regular expression), or, without a target kind, a
//! strategic-merge patch says `kind: Secret` itself. A JSON 6902 patch without a target kind is
//! not judged (it says nothing of the kind it patches). What is judged: a strategic-merge
//! patch's `data` and `stringData`; a JSON 6902 `add`/`replace` operation's `value` at
//! `/data/KEY`, `/stringData/KEY`, `/data` or `/stringData`.

use kustodian_manifest::{Node, NodeKind, Object};

use crate::engine::{FileCx, FollowKind, FollowRequest, KeyAt, Owner, SopsState, ALLOW_ANNOTATION};
use crate::manifest::key_at;

/// The kustomization fields that hold patches.
const FIELDS: [&str; 3] = ["patches", "patchesStrategicMerge", "patchesJson6902"];

/// Whether a kustomization has patches.
pub(super) fn has_patches(root: &Node) -> bool {
    FIELDS
        .iter()
        .any(|f| root.get(f).and_then(Node::as_seq).is_some())
}

/// What a patch's `target` says.
#[derive(Clone, Copy)]
struct Target<'a> {
    /// Selects kind Secret (`Some(true)`), another kind, or names no kind (`None`).
    secret: Option<bool>,
    name: Option<&'a str>,
    namespace: Option<&'a str>,
}

impl<'a> Target<'a> {
    fn of(item: &'a Node) -> Target<'a> {
        let t = item.get("target");
        let field = |k: &str| t.and_then(|t| t.get(k)).and_then(Node::as_scalar);
        Target {
            secret: field("kind").map(selects_secret),
            name: field("name"),
            namespace: field("namespace"),
        }
    }
}

/// Whether a target's `kind` (a regular expression to kustomize) selects `Secret`.
fn selects_secret(kind: &str) -> bool {
    regex::Regex::new(&format!("^(?:{kind})$")).map_or(kind == "Secret", |re| re.is_match("Secret"))
}

/// Judges the inline patches of a kustomization and asks for its patch files.
pub(super) fn scan_patches(cx: &mut FileCx<'_>, root: &Node, dir: &str) {
    for field in FIELDS {
        let Some(items) = root.get(field).and_then(Node::as_seq) else {
            continue;
        };
        for item in items {
            let (target, patch, path) = match &item.kind {
                // `patchesStrategicMerge`: a file name, or the patch itself as a string.
                NodeKind::Scalar { value, .. } if value.contains('\n') || value.contains(':') => {
                    (Target::of(item), Some(item), None)
                }
                NodeKind::Scalar { .. } => (Target::of(item), None, Some(item)),
                NodeKind::Map(_) if field == "patchesStrategicMerge" => {
                    (Target::of(item), Some(item), None)
                }
                NodeKind::Map(_) => (Target::of(item), item.get("patch"), item.get("path")),
                NodeKind::Seq(_) => continue,
            };
            if let Some(patch) = patch {
                inline(cx, patch, target);
            }
            if let Some(path) = path.filter(|p| p.as_scalar().is_some()) {
                let owner = owner(None, target);
                let kind = FollowKind::Patch {
                    target_secret: target.secret,
                };
                super::follow(cx, &owner, dir, field, kind, path);
            }
        }
    }
}

/// The Secret a patch patches, for messages.
fn owner<'a>(doc: Option<&'a Node>, target: Target<'a>) -> Owner<'a> {
    let o = doc.map(Object::new);
    let allowed = o.is_some_and(|o| o.annotation(ALLOW_ANNOTATION).is_some());
    Owner {
        kind: Some("Secret"),
        name: o.and_then(|o| o.name()).or(target.name),
        namespace: o.and_then(|o| o.namespace()).or(target.namespace),
        secret_type: None,
        allowed,
        generic: o.is_some_and(|o| {
            ["avp.kubernetes.io/path", "kustodian.io/path"]
                .iter()
                .any(|a| o.annotation(a).is_some())
        }),
    }
}

/// An inline patch: a string holding YAML or JSON (judged in a reading of its own, with findings
/// moved to where the string stands in the file), or an object written in place.
fn inline(cx: &mut FileCx<'_>, patch: &Node, target: Target<'_>) {
    let NodeKind::Scalar { value, style } = &patch.kind else {
        judge(cx, patch, target);
        return;
    };
    let Ok(docs) = kustodian_manifest::parse_stream(value) else {
        return;
    };
    let mut sub = FileCx::new(cx.path, value, cx.policy);
    for d in &docs {
        judge(&mut sub, &d.root, target);
    }
    let block = matches!(
        style,
        kustodian_manifest::ScalarStyle::Literal | kustodian_manifest::ScalarStyle::Folded
    );
    let start = patch.span.start;
    // A block scalar's span starts at its first line of text; its indentation is that line's.
    let indent = if block {
        let first = cx.line(start.line);
        first.len() - first.trim_start().len()
    } else {
        0
    };
    let quoted = !matches!(style, kustodian_manifest::ScalarStyle::Plain) as usize;
    for mut f in sub.findings {
        let (line, column) = (f.location.line, f.location.column);
        (f.location.line, f.location.column) = if block {
            (start.line + line - 1, indent + column)
        } else if !value.contains('\n') {
            (start.line, start.column + quoted + column - 1)
        } else {
            (start.line, start.column)
        };
        // The excerpt's lead: what precedes the key on its line in the file.
        let line = cx.line(f.location.line);
        let lead = line
            .get(..f.location.column.saturating_sub(1))
            .filter(|p| p.len() <= 40 && p.bytes().all(|b| b == b' ' || b == b'-'))
            .unwrap_or("… ");
        let old = f.excerpt.label.start;
        if let Some(rest) = f.excerpt.text.get(old..) {
            let width = f.excerpt.label.len();
            f.excerpt.text = format!("{lead}{rest}");
            f.excerpt.label = lead.len()..lead.len() + width;
        }
        cx.findings.push(f);
    }
}

/// A patch file named by `path:`.
pub(super) fn scan_followed(cx: &mut FileCx<'_>, req: &FollowRequest, target_secret: Option<bool>) {
    let Ok(docs) = kustodian_manifest::parse_stream(cx.text) else {
        return;
    };
    let target = Target {
        secret: target_secret,
        name: req.generator.as_deref(),
        namespace: req.namespace.as_deref(),
    };
    for d in &docs {
        judge(cx, &d.root, target);
    }
}

/// Judges one patch document: a strategic-merge patch (a mapping) or JSON 6902 operations (a
/// sequence).
fn judge(cx: &mut FileCx<'_>, root: &Node, target: Target<'_>) {
    match &root.kind {
        NodeKind::Map(_) => {
            let secret = match Object::new(root).kind() {
                Some(kind) => kind == "Secret",
                None => target.secret == Some(true),
            };
            if secret {
                let owner = owner(Some(root), target);
                for section in ["data", "stringData"] {
                    if let Some(values) = root.get(section) {
                        sections(cx, &owner, section, values);
                    }
                }
            }
        }
        NodeKind::Seq(ops) if target.secret == Some(true) => {
            let owner = owner(None, target);
            for op in ops {
                operation(cx, &owner, op);
            }
        }
        _ => {}
    }
}

/// The entries of a `data` or `stringData` mapping.
fn sections(cx: &mut FileCx<'_>, owner: &Owner<'_>, section: &str, values: &Node) {
    for e in values.as_map().unwrap_or_default() {
        let (Some(key), Some(value)) = (e.key.as_scalar(), e.value.as_scalar()) else {
            continue;
        };
        if e.value.is_null() {
            continue;
        }
        let at = key_at(cx, &e.key, ": ");
        let at = if at.shown.is_empty() {
            KeyAt { shown: key, ..at }
        } else {
            at
        };
        cx.judge_secret_value(owner, section, key, value, at, SopsState::None);
    }
}

/// One JSON 6902 operation: `add` or `replace` of Secret data.
fn operation(cx: &mut FileCx<'_>, owner: &Owner<'_>, op: &Node) {
    if !matches!(
        op.get("op").and_then(Node::as_scalar),
        Some("add" | "replace")
    ) {
        return;
    }
    let (Some(path), Some(value)) = (op.get("path").and_then(Node::as_scalar), op.entry("value"))
    else {
        return;
    };
    let tokens: Vec<String> = path
        .split('/')
        .skip(1)
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect();
    match tokens.as_slice() {
        [section] if section == "data" || section == "stringData" => {
            sections(cx, owner, section, &value.value);
        }
        [section, key] if section == "data" || section == "stringData" => {
            let Some(text) = value.value.as_scalar().filter(|_| !value.value.is_null()) else {
                return;
            };
            let at = key_at(cx, &value.key, ": ");
            cx.judge_secret_value(owner, section, key, text, at, SopsState::None);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::Scanner;

    fn scan(src: &str) -> Vec<(usize, usize, String)> {
        Scanner::new()
            .scan_file("k/kustomization.yaml", src.as_bytes())
            .findings
            .into_iter()
            .map(|f| (f.location.line, f.location.column, f.key))
            .collect()
    }

    #[test]
    fn target_kinds_are_regular_expressions() {
        assert!(super::selects_secret("Secret"));
        assert!(super::selects_secret("Secret|ConfigMap"));
        assert!(super::selects_secret("Sec.*"));
        assert!(!super::selects_secret("ConfigMap"));
        assert!(!super::selects_secret("SecretStore"));
    }

    #[test]
    fn inline_patches_point_into_the_kustomization() {
        let src = "resources: [a.yaml]\npatches:\n- target: {kind: Secret, name: db}\n  patch: |\n    - op: add\n      path: /data/password\n      value: aHVudGVyMmh1bnRlcjI=\n- patch: |-\n    apiVersion: v1\n    kind: Secret\n    metadata: {name: db}\n    stringData:\n      token: hunter2hunter2\n- target: {kind: ConfigMap}\n  patch: '[{\"op\": \"add\", \"path\": \"/data/x\", \"value\": \"not-a-secret\"}]'\n- target: {kind: Secret}\n  patch: '[{\"op\": \"add\", \"path\": \"/stringData/y\", \"value\": \"hunter2hunter2\"}]'\n";
        assert_eq!(
            scan(src),
            vec![
                (7, 7, "password".into()),
                (13, 7, "token".into()),
                (17, 51, "y".into()),
            ]
        );
    }

    #[test]
    fn legacy_fields_and_files() {
        let src = "patchesStrategicMerge:\n- secret-patch.yaml\n- |-\n  kind: Secret\n  metadata: {name: x}\n  stringData: {a: hunter2hunter2}\n- kind: Secret\n  metadata: {name: y}\n  data: {b: aHVudGVyMmh1bnRlcjI=}\npatchesJson6902:\n- target: {version: v1, kind: Secret, name: z}\n  path: ops.yaml\n";
        let s = Scanner::new();
        let r = s.scan_file("k/kustomization.yaml", src.as_bytes());
        let got: Vec<_> = r
            .findings
            .iter()
            .map(|f| (f.location.line, f.key.as_str()))
            .collect();
        assert_eq!(got, vec![(6, "a"), (9, "b")]);
        let files: Vec<_> = r.follow.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(files, vec!["k/secret-patch.yaml", "k/ops.yaml"]);
        let ops = s.scan_followed(
            &r.follow[1],
            b"- op: replace\n  path: /data\n  value:\n    c: aHVudGVyMmh1bnRlcjI=\n- op: remove\n  path: /data/d\n",
        );
        let got: Vec<_> = ops
            .findings
            .iter()
            .map(|f| (f.location.line, f.key.as_str(), f.name.as_deref()))
            .collect();
        assert_eq!(got, vec![(4, "c", Some("z"))]);
        // A strategic-merge file without a kind patches whatever its target says.
        let smp = s.scan_followed(
            &r.follow[0],
            b"metadata:\n  name: x\nstringData:\n  e: hunter2hunter2\n",
        );
        assert!(smp.findings.is_empty());
    }

    #[test]
    fn an_inline_object_patch_is_judged_in_place() {
        let src = "patches:\n- target: {kind: Secret, name: db}\n  patch:\n    stringData:\n      password: hunter2hunter2\n";
        assert_eq!(scan(src), vec![(5, 7, "password".into())]);
    }

    #[test]
    fn never_panics_on_truncated_patches() {
        let sample = include_str!(
            "../../../../tests/fixtures/scan/kustomize-patches-add-secret-data/repo/app/kustomization.yaml"
        );
        let s = Scanner::new();
        for (i, _) in sample.char_indices() {
            let r = s.scan_file("k/kustomization.yaml", &sample.as_bytes()[..i]);
            for req in &r.follow {
                let _ = s.scan_followed(req, &sample.as_bytes()[i..]);
            }
        }
    }
}
