//! Encrypted manifests: SOPS documents that are also Kubernetes objects.
//!
//! A file is decrypted as it is (MAC checked). An object that comes out of `kustomize build`
//! with its `sops` block is another matter: kustomize sorts the keys and may add labels, a
//! namespace or a name prefix, so the MAC no longer matches the object as printed. Such an
//! object is matched to its source file in the repository by its MAC (the `sops.mac` value is
//! carried through unchanged); that file is decrypted with its MAC checked, and each encrypted
//! value of the built object is replaced by the plaintext of the identical ciphertext in the
//! source (ciphertexts carry a random IV) at the same key path. An encrypted value found nowhere in
//! the source, or found at another path, fails the render.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use kustodian_manifest::read::{read_to_string_bounded, MANIFEST_LIMIT};
use kustodian_manifest::{parse_stream, Node, NodeKind};
use kustodian_sops::{is_encrypted_value, Format, Identities};

use super::InputError;

fn sops_err(name: &str, message: impl Into<String>) -> InputError {
    InputError::Sops {
        name: name.to_string(),
        message: message.into(),
    }
}

/// Every document of a SOPS file, decrypted (MAC checked), in order.
pub(super) fn decrypt_text(
    text: &str,
    format: Format,
    ids: &Identities,
    name: &str,
) -> Result<Vec<Node>, InputError> {
    let plain = kustodian_sops::decrypt(text, format, ids, name)
        .map_err(|e| sops_err(name, e.to_string()))?;
    let clear = plain
        .to_text(format, name)
        .map_err(|e| sops_err(name, e.to_string()))?;
    // The decrypted text is secret: a parse error must not quote it.
    let docs = parse_stream(&clear).map_err(|e| {
        sops_err(
            name,
            format!(
                "{name}: the decrypted text is not YAML (line {}, column {})",
                e.pos.line, e.pos.column
            ),
        )
    })?;
    Ok(docs.into_iter().map(|d| d.root).collect())
}

/// The `sops.mac` of a document.
pub(super) fn mac_of(d: &Node) -> Option<&str> {
    d.get("sops")?.get("mac")?.as_scalar()
}

/// `built` (an object kustomize printed) with its encrypted values taken from `source`, the
/// text of the SOPS file it came from, and its `sops` block dropped.
pub(super) fn from_source(
    built: &Node,
    source: &str,
    format: Format,
    ids: &Identities,
    name: &str,
) -> Result<Node, InputError> {
    let plain = decrypt_text(source, format, ids, name)?;
    let encrypted: Vec<Node> = parse_stream(source)
        .map_err(|e| sops_err(name, format!("{name}: {}", e.message)))?
        .into_iter()
        .map(|d| d.root)
        .collect();
    let mut clear = HashMap::new();
    for (enc, plain) in encrypted.iter().zip(&plain) {
        pair_values(enc, plain, &mut Vec::new(), &mut clear);
    }
    let mut out = built.clone();
    out.remove("sops");
    let mut missing = 0usize;
    replace_encrypted(&mut out, &clear, &mut Vec::new(), &mut missing);
    if missing > 0 {
        return Err(sops_err(
            name,
            format!("{name}: {missing} encrypted value(s) of the built object are not in the file at the same place; keep kustomize from changing or moving encrypted fields (encrypt only data and stringData: --encrypted-regex '^(data|stringData)$')"),
        ));
    }
    Ok(out)
}

/// The plaintext of each ciphertext, with the key path it was found at.
type Clear = HashMap<String, (Vec<String>, Node)>;

/// Maps each encrypted value of `enc` (at `path`) to the plaintext node at the same place in
/// `plain`.
fn pair_values(enc: &Node, plain: &Node, path: &mut Vec<String>, out: &mut Clear) {
    match (&enc.kind, &plain.kind) {
        (NodeKind::Scalar { value, .. }, _) if is_encrypted_value(value) => {
            out.insert(value.clone(), (path.clone(), plain.clone()));
        }
        (NodeKind::Map(entries), NodeKind::Map(_)) => {
            for e in entries {
                let Some(k) = e.key.as_scalar() else { continue };
                if let Some(p) = plain.get(k) {
                    path.push(k.to_string());
                    pair_values(&e.value, p, path, out);
                    path.pop();
                }
            }
        }
        (NodeKind::Seq(a), NodeKind::Seq(b)) => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                path.push(i.to_string());
                pair_values(x, y, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

/// Replaces every encrypted value in `n` (at `path`) by its plaintext; counts those it has none
/// for at that path.
fn replace_encrypted(n: &mut Node, clear: &Clear, path: &mut Vec<String>, missing: &mut usize) {
    if let Some(v) = n.as_scalar().filter(|v| is_encrypted_value(v)) {
        match clear.get(v) {
            Some((at, p)) if at == path => *n = p.clone(),
            _ => *missing += 1,
        }
        return;
    }
    match &mut n.kind {
        NodeKind::Map(entries) => {
            for e in entries {
                path.push(e.key.as_scalar().unwrap_or("").to_string());
                replace_encrypted(&mut e.value, clear, path, missing);
                path.pop();
            }
        }
        NodeKind::Seq(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                path.push(i.to_string());
                replace_encrypted(item, clear, path, missing);
                path.pop();
            }
        }
        NodeKind::Scalar { .. } => {}
    }
}

/// The SOPS files under `root` (hidden folders skipped, symlinks not followed), by MAC.
pub(super) fn index_by_mac(root: &Path) -> HashMap<String, PathBuf> {
    let mut out = HashMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in rd.flatten() {
            let (path, Ok(ft)) = (entry.path(), entry.file_type()) else {
                continue;
            };
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            if ft.is_dir() {
                stack.push(path);
            } else if ft.is_file() && super::is_manifest_name(&path) {
                let Ok(text) = read_to_string_bounded(&path, MANIFEST_LIMIT) else {
                    continue;
                };
                if !text.contains("mac") {
                    continue;
                }
                for d in parse_stream(&text).into_iter().flatten() {
                    if let Some(mac) = mac_of(&d.root) {
                        out.entry(mac.to_string()).or_insert_with(|| path.clone());
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use kustodian_sops::{EncryptOptions, Plaintext, Selection};

    /// A Secret encrypted (data and stringData only) for a new key: (file text, identities).
    fn encrypted_secret() -> (String, Identities) {
        let (public, key) = kustodian_sops::generate_identity_file();
        let ids = Identities::parse(&key, "test").unwrap();
        let src = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  a: canary-a\n  b: canary-b\n";
        let plain = Plaintext::parse(src, Format::Yaml, "s.yaml").unwrap();
        let opts = EncryptOptions {
            recipients: vec![public],
            selection: Selection::EncryptedRegex("^(data|stringData)$".into()),
            mac_only_encrypted: false,
            lastmodified: None,
        };
        let text = kustodian_sops::encrypt(&plain, &opts, Format::Yaml, "s.yaml").unwrap();
        (text, ids)
    }

    fn parse(text: &str) -> Node {
        parse_stream(text).unwrap().remove(0).root
    }

    #[test]
    fn a_built_object_with_changed_plain_fields_takes_its_values_from_the_source() {
        let (source, ids) = encrypted_secret();
        let mut built = parse(&source);
        built
            .get_mut("metadata")
            .unwrap()
            .insert("namespace", Node::string("prod"));
        let out = from_source(&built, &source, Format::Yaml, &ids, "s.yaml").unwrap();
        assert!(out.get("sops").is_none());
        assert_eq!(
            out.get_path(&["stringData", "a"]).unwrap().as_scalar(),
            Some("canary-a")
        );
        assert_eq!(
            out.get_path(&["metadata", "namespace"])
                .unwrap()
                .as_scalar(),
            Some("prod")
        );
    }

    #[test]
    fn an_encrypted_value_moved_to_another_key_is_refused() {
        let (source, ids) = encrypted_secret();
        let mut built = parse(&source);
        let a = built.get_path(&["stringData", "a"]).unwrap().clone();
        built.get_mut("stringData").unwrap().insert("b", a);
        let e = from_source(&built, &source, Format::Yaml, &ids, "s.yaml").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("not in the file at the same place") && !msg.contains("canary"),
            "{msg}"
        );
    }
}
