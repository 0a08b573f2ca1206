//! Just enough of the SOPS format to judge values: the shape of an encrypted value, the shape of
//! a document's `sops` metadata, and which values its selection rules encrypt.
//!
//! `kustodian-sops` does the real work (decrypting, encrypting); the scanner only needs these
//! checks and keeps them here so it does not pull in the cryptography.

use kustodian_manifest::Node;
use regex::Regex;

const TYPES: [&str; 5] = ["str", "int", "float", "bool", "bytes"];

/// Whether `s` is a well-formed SOPS value: `ENC[AES256_GCM,data:...,iv:...,tag:...,type:...]`
/// with base64 fields and a known type.
pub fn is_encrypted_value(s: &str) -> bool {
    let Some(inner) = s
        .strip_prefix("ENC[AES256_GCM,")
        .and_then(|r| r.strip_suffix(']'))
    else {
        return false;
    };
    let Some(rest) = inner.strip_prefix("data:") else {
        return false;
    };
    let Some((data, rest)) = rest.split_once(",iv:") else {
        return false;
    };
    let Some((iv, rest)) = rest.split_once(",tag:") else {
        return false;
    };
    let Some((tag, ty)) = rest.split_once(",type:") else {
        return false;
    };
    let b64 = |f: &str| {
        f.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
    };
    // sops encrypts an empty string to an empty `data:` field.
    b64(data) && !iv.is_empty() && b64(iv) && !tag.is_empty() && b64(tag) && TYPES.contains(&ty)
}

/// Whether a document carries SOPS metadata: a top-level `sops` mapping with `mac` or `version`
/// and `lastmodified` or a key group.
pub fn is_sops_document(root: &Node) -> bool {
    let Some(sops) = root.get("sops").filter(|s| s.as_map().is_some()) else {
        return false;
    };
    let has = |k: &str| sops.get(k).is_some();
    (has("mac") || has("version"))
        && [
            "lastmodified",
            "age",
            "pgp",
            "kms",
            "gcp_kms",
            "azure_kv",
            "hc_vault",
            "key_groups",
        ]
        .iter()
        .any(|k| has(k))
}

/// Which values of a SOPS document its selection rules encrypt.
#[derive(Debug)]
pub enum Selection {
    /// Values under a key ending with the suffix stay clear (sops's default `_unencrypted`).
    UnencryptedSuffix(String),
    /// Only values under a key ending with the suffix are encrypted.
    EncryptedSuffix(String),
    /// Values under a key matching the regex stay clear.
    UnencryptedRegex(Regex),
    /// Only values under a key matching the regex are encrypted.
    EncryptedRegex(Regex),
    /// Comment-based selection (or a regex that does not compile): the scanner cannot tell which
    /// values were meant to be clear, so only Secret data is judged.
    Unknown,
}

impl Selection {
    /// The selection of a SOPS document's metadata.
    pub fn of(root: &Node) -> Selection {
        let Some(sops) = root.get("sops") else {
            return Selection::Unknown;
        };
        let text = |k: &str| {
            sops.get(k)
                .and_then(Node::as_scalar)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let regex = |s: String| Regex::new(&s).ok();
        if let Some(s) = text("unencrypted_suffix") {
            return Selection::UnencryptedSuffix(s);
        }
        if let Some(s) = text("encrypted_suffix") {
            return Selection::EncryptedSuffix(s);
        }
        if let Some(s) = text("unencrypted_regex") {
            return regex(s).map_or(Selection::Unknown, Selection::UnencryptedRegex);
        }
        if let Some(s) = text("encrypted_regex") {
            return regex(s).map_or(Selection::Unknown, Selection::EncryptedRegex);
        }
        if text("unencrypted_comment_regex").is_some() || text("encrypted_comment_regex").is_some()
        {
            return Selection::Unknown;
        }
        Selection::UnencryptedSuffix("_unencrypted".into())
    }

    /// Whether sops encrypts the value at `path` (the mapping keys from the root), as sops
    /// decides it: a rule that matches any key on the path applies to everything below it.
    /// `None` when the selection is [`Selection::Unknown`].
    pub fn encrypts(&self, path: &[&str]) -> Option<bool> {
        Some(match self {
            Selection::UnencryptedSuffix(s) => !path.iter().any(|k| k.ends_with(s.as_str())),
            Selection::EncryptedSuffix(s) => path.iter().any(|k| k.ends_with(s.as_str())),
            Selection::UnencryptedRegex(re) => !path.iter().any(|k| re.is_match(k)),
            Selection::EncryptedRegex(re) => path.iter().any(|k| re.is_match(k)),
            Selection::Unknown => return None,
        })
    }

    /// The metadata option that leaves a value clear, for messages.
    pub fn clear_rule(&self) -> &'static str {
        match self {
            Selection::UnencryptedSuffix(_) => "unencrypted_suffix",
            Selection::EncryptedSuffix(_) => "encrypted_suffix",
            Selection::UnencryptedRegex(_) => "unencrypted_regex",
            Selection::EncryptedRegex(_) => "encrypted_regex",
            Selection::Unknown => "comment rules",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kustodian_manifest::parse_stream;

    #[test]
    fn encrypted_value_shape() {
        assert!(is_encrypted_value(
            "ENC[AES256_GCM,data:abc=,iv:MTIz,tag:NDU2,type:str]"
        ));
        assert!(is_encrypted_value(
            "ENC[AES256_GCM,data:,iv:MTIz,tag:NDU2,type:str]"
        ));
        assert!(!is_encrypted_value(
            "ENC[AES256_GCM,data:abc,iv:,tag:x,type:str]"
        ));
        assert!(!is_encrypted_value(
            "ENC[AES256_GCM,data:abc,iv:a,tag:b,type:weird]"
        ));
        assert!(!is_encrypted_value(
            "ENC[AES256_GCM,data:a b,iv:a,tag:b,type:str]"
        ));
        assert!(!is_encrypted_value("hunter2"));
    }

    #[test]
    fn sops_document_and_selection() {
        let doc = |s: &str| parse_stream(s).unwrap().remove(0).root;
        let d = doc(
            "a: 1\nsops:\n  mac: x\n  lastmodified: y\n  encrypted_regex: ^(data|stringData)$\n",
        );
        assert!(is_sops_document(&d));
        let sel = Selection::of(&d);
        assert_eq!(sel.encrypts(&["data", "k"]), Some(true));
        assert_eq!(sel.encrypts(&["metadata", "name"]), Some(false));
        let d = doc("a: 1\nsops:\n  version: 3.9.0\n  age: []\n");
        assert!(is_sops_document(&d));
        let sel = Selection::of(&d);
        assert_eq!(sel.encrypts(&["a"]), Some(true));
        assert_eq!(sel.encrypts(&["x_unencrypted", "b"]), Some(false));
        assert!(!is_sops_document(&doc("sops: yes\n")));
        assert!(!is_sops_document(&doc("sops:\n  note: hi\n")));
        let d =
            doc("a: 1\nsops:\n  mac: x\n  lastmodified: y\n  unencrypted_comment_regex: clear\n");
        assert_eq!(Selection::of(&d).encrypts(&["a"]), None);
    }
}
