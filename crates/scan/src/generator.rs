//! kustomize `secretGenerator`: `literals` are judged where they stand; `envs` and `files` that
//! point into the repository become [`FollowRequest`]s, and their contents are judged by
//! [`scan_followed`] once the caller has read them.

use kustodian_manifest::{Node, NodeKind, Object};

use crate::engine::{
    is_valid_key, FileCx, FollowKind, FollowRequest, Hit, KeyAt, Owner, Scanner, ALLOW_ANNOTATION,
};
use crate::finding::{Excerpt, Location, Note, Related, Severity};
use crate::rules::Rule;
use crate::value::{self, Verdict};

mod patch;

/// Whether a document is a kustomization (or component) with a `secretGenerator` or patches, or
/// a kustomize builtin generator config (`apiVersion: builtin`, `kind: SecretGenerator`, named
/// under a kustomization's `generators:`).
pub(crate) fn is_kustomization(root: &Node) -> bool {
    let kustomization = matches!(
        Object::new(root).kind(),
        None | Some("Kustomization") | Some("Component")
    );
    is_builtin_generator(root)
        || (kustomization
            && (root.get("secretGenerator").and_then(Node::as_seq).is_some()
                || patch::has_patches(root)))
}

/// `apiVersion: builtin`, `kind: SecretGenerator`: one generator's fields at the top level.
fn is_builtin_generator(root: &Node) -> bool {
    let o = Object::new(root);
    o.kind() == Some("SecretGenerator") && o.api_version() == Some("builtin")
}

/// Judges the literals of every generator, asks for the files they read, and judges the patches
/// that add Secret data.
pub(crate) fn scan_kustomization(cx: &mut FileCx<'_>, root: &Node) {
    let dir = cx.path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    if is_builtin_generator(root) {
        let name = root
            .get_path(&["metadata", "name"])
            .and_then(Node::as_scalar);
        let namespace = root
            .get_path(&["metadata", "namespace"])
            .and_then(Node::as_scalar);
        let allowed = root
            .get_path(&["metadata", "annotations", ALLOW_ANNOTATION])
            .is_some();
        scan_generator(cx, root, dir, name, namespace, allowed);
        return;
    }
    patch::scan_patches(cx, root, dir);
    let default_ns = root.get("namespace").and_then(Node::as_str);
    let all_allowed = root
        .get_path(&["generatorOptions", "annotations", ALLOW_ANNOTATION])
        .is_some();
    let Some(generators) = root.get("secretGenerator").and_then(Node::as_seq) else {
        return;
    };
    for g in generators {
        let name = g.get("name").and_then(Node::as_scalar);
        let namespace = g.get("namespace").and_then(Node::as_scalar).or(default_ns);
        scan_generator(cx, g, dir, name, namespace, all_allowed);
    }
}

/// One generator: a `secretGenerator` item or a builtin generator config.
fn scan_generator(
    cx: &mut FileCx<'_>,
    g: &Node,
    dir: &str,
    name: Option<&str>,
    namespace: Option<&str>,
    allowed: bool,
) {
    let owner = Owner {
        kind: Some("secretGenerator"),
        name,
        namespace,
        secret_type: None,
        allowed: allowed
            || g.get_path(&["options", "annotations", ALLOW_ANNOTATION])
                .is_some(),
        generic: false,
    };
    for item in scalars(g.get("literals")) {
        literal(cx, &owner, item);
    }
    for (field, kind) in [
        ("envs", FollowKind::Env),
        ("env", FollowKind::Env),
        ("files", FollowKind::File),
    ] {
        for item in scalars(g.get(field)) {
            follow(cx, &owner, dir, field, kind, item);
        }
    }
}

/// The scalar items of a sequence (or a lone scalar, as the old `env:` field allows).
pub(crate) fn scalars(n: Option<&Node>) -> Vec<&Node> {
    match n.map(|n| &n.kind) {
        Some(NodeKind::Seq(items)) => items
            .iter()
            .filter(|i| i.as_scalar().is_some() && !i.is_null())
            .collect(),
        Some(NodeKind::Scalar { .. }) if !n.is_some_and(Node::is_null) => n.into_iter().collect(),
        _ => Vec::new(),
    }
}

fn unquote(v: &str) -> &str {
    let v = v.trim();
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|s| s.strip_suffix(q)) {
            return inner;
        }
    }
    v
}

/// Judges the value of a `KEY=VALUE` assignment (a literal, an env file line): `None` when it
/// is safe, else the rule (`plaintext` for a plaintext value), severity, what it looks like and
/// what its fingerprint hashes.
fn judge_assignment(
    key: &str,
    raw: &str,
    is_sops: bool,
    plaintext: Rule,
) -> Option<(Rule, Severity, &'static str, zeroize::Zeroizing<Vec<u8>>)> {
    let vcx = value::Context {
        sops_document: is_sops,
        generic_placeholders: false,
        key,
    };
    Some(match value::judge_text(unquote(raw), vcx) {
        Verdict::Safe(_) => return None,
        Verdict::EncryptedWithoutMetadata => (
            Rule::SopsValueWithoutMetadata,
            Severity::Low,
            "a SOPS value that nothing can decrypt",
            zeroize::Zeroizing::new(raw.as_bytes().to_vec()),
        ),
        Verdict::Plaintext {
            class, hash_input, ..
        } => (plaintext, class.severity, class.what, hash_input),
    })
}

fn literal(cx: &mut FileCx<'_>, owner: &Owner<'_>, item: &Node) {
    let Some(text) = item.as_scalar() else { return };
    // `KEY=VALUE`; anything else is judged whole and shown as `?`.
    let (key, raw) = match text.split_once('=') {
        Some((k, v)) if is_valid_key(k.trim()) => (k.trim(), v),
        _ => ("?", text),
    };
    let Some((rule, class_sev, what, hash)) =
        judge_assignment(key, raw, false, Rule::GeneratorLiteral)
    else {
        return;
    };
    let at = KeyAt {
        line: item.span.start.line,
        column: item.span.start.column,
        offset: item.span.start.offset,
        shown: key,
        sep: "=",
    };
    let message = format!(
        "{}: literal {key} holds {what} in plain text in the kustomization",
        owner.display()
    );
    cx.push(Hit {
        rule,
        owner,
        key: key.to_string(),
        fp_key: format!("literals/{key}"),
        at,
        severity: class_sev,
        message,
        hash_input: &hash,
        related: None,
    });
}

/// Normalises `dir/rel` without touching the file system; `None` if it leaves the repository.
fn join_inside(dir: &str, rel: &str) -> Option<String> {
    if rel.starts_with('/') || rel.contains('\\') || rel.contains("://") {
        return None;
    }
    let mut parts: Vec<&str> = dir
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    for p in rel.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// Asks for the file that a generator's (or a Helm values) entry names, relative to `dir`; an
/// Argo CD `$ref/path` values entry names `path` from the repository root.
pub(crate) fn follow(
    cx: &mut FileCx<'_>,
    owner: &Owner<'_>,
    dir: &str,
    field: &str,
    kind: FollowKind,
    item: &Node,
) {
    let Some(mut text) = item.as_scalar() else {
        return;
    };
    let mut dir = dir;
    if let (FollowKind::HelmValues { .. }, Some(by_ref)) = (kind, text.strip_prefix('$')) {
        let Some((_, rel)) = by_ref.split_once('/') else {
            return;
        };
        (text, dir) = (rel, "");
    }
    let (key, rel) = match kind {
        FollowKind::File | FollowKind::HelmValues { .. } => match text.split_once('=') {
            Some((k, p)) => (k.trim().to_string(), p.trim()),
            None => (
                text.rsplit('/').next().unwrap_or(text).to_string(),
                text.trim(),
            ),
        },
        FollowKind::Env | FollowKind::Patch { .. } => (String::new(), text.trim()),
    };
    let entry = Location {
        path: cx.path.to_string(),
        line: item.span.start.line,
        column: item.span.start.column,
    };
    let Some(path) = join_inside(dir, rel) else {
        if matches!(kind, FollowKind::HelmValues { .. }) {
            return;
        }
        cx.notes.push(Note::info(
            cx.path,
            format!(
                "line {}: {field} entry `{rel}` is outside the repository; not scanned",
                entry.line
            ),
        ));
        return;
    };
    // A values file with a manifest's name is scanned as one already.
    if matches!(kind, FollowKind::HelmValues { .. }) && Scanner::is_candidate_path(&path) {
        return;
    }
    let lead_start = cx.line_start(entry.line);
    let prefix = cx
        .text
        .get(lead_start..item.span.start.offset.max(lead_start))
        .unwrap_or("");
    let lead = if prefix.bytes().all(|b| b == b' ' || b == b'-') && prefix.len() <= 40 {
        prefix
    } else {
        "… "
    };
    let shown = cx
        .text
        .get(item.span.range())
        .filter(|s| !s.contains('\n'))
        .unwrap_or(text);
    let entry_excerpt = Excerpt {
        text: format!("{lead}{shown}"),
        label: lead.len()..lead.len() + shown.len(),
    };
    cx.follow.push(FollowRequest {
        path,
        kind,
        key,
        allowed: owner.allowed || cx.line_allows(entry.line),
        entry,
        entry_excerpt,
        generator: owner.name.map(str::to_string),
        namespace: owner.namespace.map(str::to_string),
    });
}

/// Judges a file that a generator reads.
pub(crate) fn scan_followed(cx: &mut FileCx<'_>, req: &FollowRequest, bytes: &[u8]) {
    let owner = Owner {
        kind: Some("secretGenerator"),
        name: req.generator.as_deref(),
        namespace: req.namespace.as_deref(),
        secret_type: None,
        allowed: req.allowed,
        generic: false,
    };
    let field = match req.kind {
        FollowKind::Env => "envs",
        FollowKind::File => "files",
        FollowKind::Patch { target_secret } => {
            patch::scan_followed(cx, req, target_secret);
            return;
        }
        FollowKind::HelmValues { by } => {
            let owner = Owner {
                kind: Some(by),
                ..owner
            };
            let related = Related {
                location: req.entry.clone(),
                message: format!("{} reads this file as Helm values", owner.display()),
                excerpt: req.entry_excerpt.clone(),
            };
            crate::credentials::scan_values_file(cx, &owner, &related);
            return;
        }
    };
    let related = Related {
        location: req.entry.clone(),
        message: format!("{} reads this file ({field})", owner.display()),
        excerpt: req.entry_excerpt.clone(),
    };
    match req.kind {
        FollowKind::Env if memchr::memchr(0, bytes).is_none() => {
            env_file(cx, &owner, Some(&related), &|_| false)
        }
        _ => whole_file(cx, &owner, req, related, bytes),
    }
}

/// Judges the `KEY=VALUE` lines of an env file: one a generator reads (`related` names the
/// generator's entry), or a SOPS dotenv store on its own (`related` is `None`). In a SOPS file,
/// keys for which `left_clear` is true are not judged (its rules leave them plaintext).
pub(crate) fn env_file(
    cx: &mut FileCx<'_>,
    owner: &Owner<'_>,
    related: Option<&Related>,
    left_clear: &dyn Fn(&str) -> bool,
) {
    let text = cx.text;
    let is_sops = crate::sops::is_sops_dotenv(text);
    let mut offset = 0;
    for (i, raw_line) in text.split('\n').enumerate() {
        let line_offset = offset;
        offset += raw_line.len() + 1;
        let line = raw_line.strip_suffix('\r').unwrap_or(raw_line);
        let (line, bom) = if i == 0 {
            line.strip_prefix('\u{feff}').map_or((line, 0), |l| (l, 3))
        } else {
            (line, 0)
        };
        let body = line.trim_start();
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        // `KEY=VALUE`, or a lone `KEY` (read from the environment by kustomize); anything else
        // is judged whole and shown as `?`.
        let (key, raw) = match body.split_once('=') {
            Some((k, v)) if is_valid_key(k.trim()) => (k.trim(), v),
            None if is_valid_key(body.trim_end()) => continue,
            _ => ("?", body),
        };
        if is_sops && (key.starts_with("sops_") || left_clear(key)) {
            continue;
        }
        let indent = line.len() - body.len();
        let plaintext = if is_sops {
            Rule::SopsPlaintextValue
        } else {
            Rule::GeneratorFile
        };
        let Some((rule, severity, what, hash)) = judge_assignment(key, raw, is_sops, plaintext)
        else {
            continue;
        };
        let message = if related.is_none() {
            format!("{key} holds {what} left plaintext in this SOPS-encrypted env file; it was probably added after the file was encrypted")
        } else if is_sops {
            format!(
                "{}: {key} holds {what} left plaintext in this SOPS-encrypted env file",
                owner.display()
            )
        } else {
            format!("{}: {key} in this env file holds {what} in plain text, and the generated Secret gets it", owner.display())
        };
        let at = KeyAt {
            line: i + 1,
            column: indent + 1,
            offset: line_offset + bom + indent,
            shown: key,
            sep: "=",
        };
        cx.push(Hit {
            rule,
            owner,
            key: key.to_string(),
            fp_key: format!("envs/{key}"),
            at,
            severity,
            message,
            hash_input: &hash,
            related: related.cloned(),
        });
    }
}

fn whole_file(
    cx: &mut FileCx<'_>,
    owner: &Owner<'_>,
    req: &FollowRequest,
    related: Related,
    bytes: &[u8],
) {
    let binary = memchr::memchr(0, bytes).is_some();
    if !binary {
        // A SOPS-encrypted YAML/JSON file: judge it value by value.
        if let Ok(docs) = kustodian_manifest::parse_stream(cx.text) {
            if docs.iter().any(|d| crate::sops::is_sops_document(&d.root)) {
                for d in &docs {
                    crate::manifest::scan_document(cx, &d.root);
                }
                return;
            }
        }
    }
    let vcx = value::Context {
        sops_document: false,
        generic_placeholders: false,
        key: &req.key,
    };
    let (severity, what) = if binary {
        (Severity::Medium, "binary data")
    } else {
        match value::judge_text(cx.text, vcx) {
            Verdict::Safe(_) => return,
            Verdict::EncryptedWithoutMetadata => {
                (Severity::Low, "a SOPS value that nothing can decrypt")
            }
            Verdict::Plaintext { class, .. } => (class.severity, class.what),
        }
    };
    let key = req.key.as_str();
    let message = format!(
        "{}: this whole file becomes key {key} of the generated Secret, and it holds {what}, not encrypted",
        owner.display()
    );
    let at = KeyAt {
        line: 1,
        column: 1,
        offset: 0,
        shown: "",
        sep: "",
    };
    cx.push(Hit {
        rule: Rule::GeneratorFile,
        owner,
        key: key.to_string(),
        fp_key: format!("files/{key}"),
        at,
        severity,
        message,
        hash_input: bytes,
        related: Some(related),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Scanner;

    #[test]
    fn paths_stay_inside_the_repository() {
        assert_eq!(
            join_inside("overlays/prod", "secrets.env").as_deref(),
            Some("overlays/prod/secrets.env")
        );
        assert_eq!(
            join_inside("overlays/prod", "../../base/x").as_deref(),
            Some("base/x")
        );
        assert_eq!(join_inside("", "./a/./b").as_deref(), Some("a/b"));
        assert_eq!(join_inside("a", "../../x"), None);
        assert_eq!(join_inside("a", "/etc/passwd"), None);
    }

    #[test]
    fn literals_and_follow_requests() {
        let src = "namespace: prod\nsecretGenerator:\n- name: app\n  literals:\n  - password=correct-horse-battery\n  - url=<path:kv/app#url>\n  - user=admin # kustodian:allow\n  envs:\n  - secrets.env\n  files:\n  - tls.key=certs/tls.key\n  - ../../../outside.txt\n";
        let r = Scanner::new().scan_file("apps/x/kustomization.yaml", src.as_bytes());
        assert_eq!(r.findings.len(), 1);
        let f = &r.findings[0];
        assert_eq!(
            (f.location.line, f.location.column, f.rule, f.key.as_str()),
            (5, 5, Rule::GeneratorLiteral, "password")
        );
        assert_eq!(f.namespace.as_deref(), Some("prod"));
        assert_eq!(f.excerpt.text, "  - password=[REDACTED]");
        let paths: Vec<_> = r
            .follow
            .iter()
            .map(|f| (f.path.as_str(), f.kind, f.key.as_str()))
            .collect();
        assert_eq!(
            paths,
            vec![
                ("apps/x/secrets.env", FollowKind::Env, ""),
                ("apps/x/certs/tls.key", FollowKind::File, "tls.key")
            ]
        );
        assert_eq!(r.notes.len(), 1);
    }

    #[test]
    fn env_and_whole_files() {
        let s = Scanner::new();
        let src = "secretGenerator:\n- name: app\n  envs: [app.env]\n  files: [id_rsa]\n";
        let r = s.scan_file("kustomization.yaml", src.as_bytes());
        let env = s.scan_followed(&r.follow[0], b"# comment\nUSER=app-user-name\r\nPASSWORD=<path:kv/app#pw>\nTOKEN=ghp_0123456789abcdefghijklmnopqrstuvwxyz\nFROM_ENV\n");
        let got: Vec<_> = env
            .findings
            .iter()
            .map(|f| (f.location.line, f.key.as_str(), f.severity))
            .collect();
        assert_eq!(
            got,
            vec![
                (2, "USER", Severity::Medium),
                (4, "TOKEN", Severity::Critical)
            ]
        );
        assert_eq!(env.findings[0].related.as_ref().unwrap().location.line, 3);
        let key = s.scan_followed(
            &r.follow[1],
            b"-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n",
        );
        assert_eq!(key.findings[0].severity, Severity::Critical);
        assert_eq!(key.findings[0].excerpt.text, "[REDACTED]");
        let refs = s.scan_followed(&r.follow[1], b"<path:kv/app#id_rsa>\n");
        assert!(refs.findings.is_empty());
        let sops_env = s.scan_followed(&r.follow[0], b"A=ENC[AES256_GCM,data:q1,iv:MQ==,tag:Mg==,type:str]\nB=added-later-value\nsops_version=3.9.0\nsops_mac=ENC[AES256_GCM,data:q1,iv:MQ==,tag:Mg==,type:str]\n");
        let got: Vec<_> = sops_env
            .findings
            .iter()
            .map(|f| (f.key.as_str(), f.rule))
            .collect();
        assert_eq!(got, vec![("B", Rule::SopsPlaintextValue)]);
        let odd = s.scan_followed(
            &r.follow[0],
            b"my password is canary-odd=x\nVALID_FROM_ENV\nnot a key\n",
        );
        let got: Vec<_> = odd
            .findings
            .iter()
            .map(|f| (f.key.as_str(), f.excerpt.text.as_str()))
            .collect();
        assert_eq!(got, vec![("?", "?=[REDACTED]"), ("?", "?=[REDACTED]")]);
        assert!(odd
            .findings
            .iter()
            .all(|f| !f.message.contains("canary") && !f.message.contains("password")));
    }
}
