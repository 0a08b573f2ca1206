//! The generators: kustodian's `SecretGenerator` and KSOPS's `ksops`.
//!
//! A `SecretGenerator` Secret is built in three steps: its `data` and `stringData` references
//! are resolved by the render pipeline (all or nothing, each distinct store path fetched once),
//! then the decrypted `files` and `envs` are added under `data` (base64, as kustomize's own
//! secretGenerator writes them), then kustomize's generator annotations are set:
//! `kustomize.config.k8s.io/needs-hash: "true"` unless `options.disableNameSuffixHash`, and
//! `kustomize.config.k8s.io/behavior` when `behavior` is given. kustomize reads and removes
//! both, appends the content hash to the name and rewrites references to the Secret.
//!
//! A KSOPS generator outputs its `files` decrypted (annotations such as `needs-hash` or
//! `behavior` are whatever the encrypted manifest carries) and builds each `secretFrom` Secret
//! with `files` and `envs` under `stringData` and `binaryFiles` under `data`, as KSOPS does.

use std::collections::BTreeSet;

use kustodian_manifest::{Node, ScalarStyle};

use super::config::{Behavior, KsopsSpec, SecretSpec};
use super::context::{Context, Problem};
use super::sopsfile::SopsFiles;

/// kustomize's annotation asking for a content-hash name suffix.
pub const NEEDS_HASH: &str = "kustomize.config.k8s.io/needs-hash";
/// kustomize's annotation saying how a generated object meets one of the same name.
pub const BEHAVIOR: &str = "kustomize.config.k8s.io/behavior";

fn string_map(pairs: impl IntoIterator<Item = (String, String)>) -> Node {
    let mut m = Node::map();
    for (k, v) in pairs {
        m.insert(&k, Node::string(v));
    }
    m
}

/// Whether `k` is a valid Secret key (`[-._a-zA-Z0-9]+`).
fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Keeps track of the keys a Secret already has.
struct Keys {
    doc: String,
    seen: BTreeSet<String>,
}

impl Keys {
    fn add(&mut self, key: &str, from: &str, problems: &mut Vec<Problem>) -> bool {
        let doc = Some(self.doc.clone());
        if !valid_key(key) {
            problems.push(Problem {
                document: doc,
                message: format!("{}: key {key:?} (from {from}) is not a valid Secret key; use letters, digits, `-`, `_` and `.`", self.doc),
            });
            return false;
        }
        if !self.seen.insert(key.to_string()) {
            problems.push(Problem {
                document: doc,
                message: format!("{}: key {key:?} is defined twice (again in {from}); each key may come from one place only", self.doc),
            });
            return false;
        }
        true
    }
}

fn document_name(name: &str, namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) => format!("Secret/{name} (namespace {ns})"),
        None => format!("Secret/{name}"),
    }
}

/// Builds the Secret of a `SecretGenerator`.
pub fn secret_generator(spec: &SecretSpec, ctx: &Context) -> Result<Vec<Node>, Vec<Problem>> {
    let doc = document_name(&spec.name, spec.namespace.as_deref());
    let mut problems = Vec::new();
    let mut keys = Keys {
        doc: doc.clone(),
        seen: BTreeSet::new(),
    };

    let mut meta = Node::map();
    meta.insert("name", Node::string(&spec.name));
    if let Some(ns) = &spec.namespace {
        meta.insert("namespace", Node::string(ns));
    }
    if !spec.labels.is_empty() {
        meta.insert("labels", string_map(spec.labels.iter().cloned()));
    }
    let mut annotations: Vec<(String, String)> = spec.annotations.clone();
    if spec.needs_hash {
        annotations.push((NEEDS_HASH.into(), "true".into()));
    }
    if let Some(b) = spec.behavior {
        let v = match b {
            Behavior::Create => "create",
            Behavior::Merge => "merge",
            Behavior::Replace => "replace",
        };
        annotations.push((BEHAVIOR.into(), v.into()));
    }
    if !annotations.is_empty() {
        meta.insert("annotations", string_map(annotations));
    }

    let mut secret = Node::map();
    secret.insert("apiVersion", Node::scalar("v1", ScalarStyle::Plain));
    secret.insert("kind", Node::scalar("Secret", ScalarStyle::Plain));
    secret.insert("metadata", meta);
    secret.insert(
        "type",
        Node::string(spec.secret_type.as_deref().unwrap_or("Opaque")),
    );
    if spec.immutable {
        secret.insert("immutable", Node::scalar("true", ScalarStyle::Plain));
    }
    // `data` values are text with references; the pipeline decodes base64 text that holds
    // references, resolves it and encodes the result, so literals stay literal too.
    let data: Vec<(String, String)> = spec
        .data
        .iter()
        .filter(|(k, _)| keys.add(k, "data", &mut problems))
        .map(|(k, v)| (k.clone(), base64(v.as_bytes())))
        .collect();
    let string_data: Vec<(String, String)> = spec
        .string_data
        .iter()
        .filter(|(k, _)| keys.add(k, "stringData", &mut problems))
        .cloned()
        .collect();
    if !data.is_empty() {
        secret.insert("data", string_map(data));
    }
    if !string_data.is_empty() {
        secret.insert("stringData", string_map(string_data));
    }

    // Decrypt the files even when a reference failed, so that one run reports everything.
    let files = SopsFiles::new(ctx);
    let mut from_files: Vec<(String, String)> = Vec::new();
    for f in &spec.files {
        match files.read(&f.path).and_then(|d| d.text()) {
            Ok(text) => {
                if keys.add(&f.key, &format!("files: {}", f.path), &mut problems) {
                    from_files.push((f.key.clone(), base64(text.as_bytes())));
                }
            }
            Err(e) => problems.push(Problem {
                document: Some(doc.clone()),
                message: format!("{doc}: files: {e}"),
            }),
        }
    }
    for path in &spec.envs {
        match files.read(path).and_then(|d| d.flat_entries()) {
            Ok(entries) => {
                for (k, v) in entries {
                    if keys.add(&k, &format!("envs: {path}"), &mut problems) {
                        from_files.push((k, base64(v.as_bytes())));
                    }
                }
            }
            Err(e) => problems.push(Problem {
                document: Some(doc.clone()),
                message: format!("{doc}: envs: {e}"),
            }),
        }
    }

    let mut secret = match ctx.resolve(vec![secret]) {
        Ok(mut docs) => docs.remove(0),
        Err(mut p) => {
            p.extend(problems);
            return Err(p);
        }
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    if !from_files.is_empty() {
        if secret.get("data").is_none() {
            secret.insert("data", Node::map());
        }
        if let Some(d) = secret.get_mut("data") {
            for (k, v) in from_files {
                d.insert(&k, Node::scalar(v, ScalarStyle::Plain));
            }
        }
    }
    Ok(vec![secret])
}

/// Runs a KSOPS generator.
pub fn ksops(spec: &KsopsSpec, ctx: &Context) -> Result<Vec<Node>, Vec<Problem>> {
    let files = SopsFiles::new(ctx);
    let mut problems = Vec::new();
    let mut out = Vec::new();
    for path in &spec.files {
        let text = match files.read(path).and_then(|d| d.text()) {
            Ok(t) => t,
            Err(e) => {
                problems.push(Problem::general(format!("files: {e}")));
                continue;
            }
        };
        match kustodian_manifest::parse_stream(&text) {
            Ok(docs) => out.extend(docs.into_iter().map(|d| d.root).filter(|n| n.as_map().is_some_and(|m| !m.is_empty()))),
            Err(e) => problems.push(Problem::general(format!(
                "files: {path}: the decrypted file is not a YAML manifest (line {}, column {}); list manifests under files, and other files under secretFrom",
                e.pos.line, e.pos.column
            ))),
        }
    }
    for s in &spec.secret_from {
        let name = s
            .metadata
            .get("name")
            .and_then(Node::as_scalar)
            .unwrap_or("");
        let doc = document_name(name, s.metadata.get("namespace").and_then(Node::as_scalar));
        let mut keys = Keys {
            doc: doc.clone(),
            seen: BTreeSet::new(),
        };
        let mut string_data = Node::map();
        let mut data = Node::map();
        for f in &s.files {
            match files.read(&f.path).and_then(|d| d.text()) {
                Ok(text) => {
                    if keys.add(&f.key, &format!("files: {}", f.path), &mut problems) {
                        string_data.insert(&f.key, Node::string(text.as_str()));
                    }
                }
                Err(e) => problems.push(Problem {
                    document: Some(doc.clone()),
                    message: format!("{doc}: files: {e}"),
                }),
            }
        }
        for f in &s.binary_files {
            match files.read(&f.path).and_then(|d| d.text()) {
                Ok(text) => {
                    if keys.add(&f.key, &format!("binaryFiles: {}", f.path), &mut problems) {
                        data.insert(
                            &f.key,
                            Node::scalar(base64(text.as_bytes()), ScalarStyle::Plain),
                        );
                    }
                }
                Err(e) => problems.push(Problem {
                    document: Some(doc.clone()),
                    message: format!("{doc}: binaryFiles: {e}"),
                }),
            }
        }
        for path in &s.envs {
            match files.read(path).and_then(|d| d.flat_entries()) {
                Ok(entries) => {
                    for (k, v) in entries {
                        if keys.add(&k, &format!("envs: {path}"), &mut problems) {
                            string_data.insert(&k, Node::string(v.as_str()));
                        }
                    }
                }
                Err(e) => problems.push(Problem {
                    document: Some(doc.clone()),
                    message: format!("{doc}: envs: {e}"),
                }),
            }
        }
        let mut secret = Node::map();
        secret.insert("apiVersion", Node::scalar("v1", ScalarStyle::Plain));
        secret.insert("kind", Node::scalar("Secret", ScalarStyle::Plain));
        secret.insert("metadata", s.metadata.clone());
        if let Some(t) = &s.secret_type {
            secret.insert("type", Node::string(t));
        }
        if data.as_map().is_some_and(|m| !m.is_empty()) {
            secret.insert("data", data);
        }
        secret.insert("stringData", string_data);
        out.push(secret);
    }
    if problems.is_empty() {
        // KSOPS output is not resolved, so the leak guard runs here on its own.
        problems = super::context::leak_problems(&out);
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// Standard base64 with padding, as Secret `data` wants it.
pub fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_vectors() {
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), want, "{input:?}");
        }
        assert_eq!(base64(&[0xff, 0xfe, 0x00]), "//4A");
    }

    #[test]
    fn secret_keys() {
        assert!(valid_key("app.conf") && valid_key("A_B-c"));
        assert!(!valid_key("") && !valid_key("a/b") && !valid_key("a b"));
    }
}
