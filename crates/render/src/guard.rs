//! The leak guard: a Secret that leaves a render still carrying a reference marker (`<path:`,
//! `ref+SCHEME://`, a SOPS `ENC[AES256_GCM,` value) would ship a broken or raw value to the
//! cluster, as KSOPS and helm-secrets users find out after the sync. Whatever path renders
//! (CLI, KRM function, exec plugin, Argo CD), such output fails instead.
//!
//! Messages name the document, the field and the kind of marker, never the value.

use base64::Engine as _;
use kustodian_manifest::{Node, Object};

use crate::RenderError;

/// The kinds of marker the guard looks for.
const MARKERS: &[(&str, &str)] = &[
    ("<path:", "an argocd-vault-plugin placeholder (`<path:`)"),
    (
        "ENC[AES256_GCM,",
        "a SOPS-encrypted value (`ENC[AES256_GCM,`)",
    ),
];

/// What kind of unresolved marker `text` holds, if any.
pub fn marker_in(text: &str) -> Option<&'static str> {
    if let Some((_, what)) = MARKERS.iter().find(|(m, _)| text.contains(m)) {
        return Some(what);
    }
    // `ref+` counts only as the start of a vals URI: `ref+SCHEME://`.
    let mut rest = text;
    while let Some(i) = rest.find("ref+") {
        let after = &rest[i + 4..];
        let scheme = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .unwrap_or(after.len());
        if scheme > 0 && after[scheme..].starts_with("://") {
            return Some("a vals reference (`ref+SCHEME://`)");
        }
        rest = after;
    }
    None
}

/// One error per Secret field of `docs` whose value (in `data` after base64 decoding, or in
/// `stringData`) still holds a reference marker.
pub fn leaks(docs: &[Node]) -> Vec<RenderError> {
    let mut out = Vec::new();
    for doc in docs {
        for obj in kustodian_manifest::objects(doc) {
            let o = Object::new(obj);
            if !o.is_secret() {
                continue;
            }
            for field in ["data", "stringData"] {
                let Some(entries) = obj.get(field).and_then(Node::as_map) else {
                    continue;
                };
                for e in entries {
                    let Some(raw) = e.value.as_str() else {
                        continue;
                    };
                    let decoded = (field == "data")
                        .then(|| {
                            base64::engine::general_purpose::STANDARD
                                .decode(raw.trim())
                                .ok()
                        })
                        .flatten()
                        .map(|b| String::from_utf8_lossy(&b).into_owned());
                    let found = marker_in(raw).or_else(|| decoded.as_deref().and_then(marker_in));
                    if let Some(what) = found {
                        let key = e.key.as_str().unwrap_or("?");
                        out.push(RenderError {
                            document: o.display_name(),
                            reference: None,
                            reason: format!(
                                "`{field}.{key}` still holds {what} after rendering; the Secret would reach the cluster with a raw or broken value, so the render fails. Resolve it with kustodian (remove `avp.kubernetes.io/ignore`, give the store), or decrypt SOPS files before they become Secrets"
                            ),
                            store_wide: None,
                        });
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

    fn secret(yaml: &str) -> Vec<Node> {
        kustodian_manifest::parse_stream(yaml)
            .unwrap()
            .into_iter()
            .map(|d| d.root)
            .collect()
    }

    #[test]
    fn markers_are_found_but_lookalikes_are_not() {
        assert!(marker_in("x<path:kv/data/a#b>").is_some());
        assert!(marker_in("ref+vault://kv/a#/b").is_some());
        assert!(marker_in("ENC[AES256_GCM,data:abc,iv:x,tag:y,type:str]").is_some());
        assert!(marker_in("xref+abc").is_none());
        assert!(marker_in("ref+").is_none());
        assert!(marker_in("plain ENC[ text").is_none());
    }

    #[test]
    fn secrets_with_markers_fail_without_quoting_the_value() {
        // base64 of "<path:kv/data/a#b>"
        let docs = secret(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata:\n  a: PHBhdGg6a3YvZGF0YS9hI2I+\n  ok: aGk=\nstringData:\n  b: ENC[AES256_GCM,data:c2VjcmV0,iv:x,tag:y,type:str]\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: \"<path:kv/data/a#b>\"}\n",
        );
        let errs = leaks(&docs);
        assert_eq!(errs.len(), 2, "{errs:?}");
        let text = format!("{errs:?}");
        assert!(text.contains("data.a") && text.contains("stringData.b"));
        assert!(!text.contains("c2VjcmV0") && !text.contains("kv/data/a"));
    }
}
