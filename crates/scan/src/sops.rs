//! The SOPS checks of the scanner, from `kustodian-sops`, which holds the one definition of what
//! an encrypted value and a document's `sops` metadata look like, and of which values sops's
//! selection rules encrypt. The scanner never decrypts.

use kustodian_manifest::Node;
use kustodian_sops::Rules;

pub use kustodian_sops::{is_encrypted_value, is_sops_document};

/// Which values of a SOPS document its selection rules encrypt.
#[derive(Debug)]
pub struct Selection(Option<Rules>);

impl Selection {
    /// The selection of a SOPS document's metadata.
    pub fn of(root: &Node) -> Selection {
        Selection(kustodian_sops::document_rules(root))
    }

    /// Whether sops encrypts the value at `path` (the mapping keys from the root). `None` when
    /// the scanner cannot tell: comment-based selection, or a regex that does not compile.
    pub fn encrypts(&self, path: &[&str]) -> Option<bool> {
        self.0.as_ref()?.encrypts_key_path(path)
    }

    /// Whether [`Selection::encrypts`] never answers (then only Secret data is judged).
    pub fn is_unknown(&self) -> bool {
        self.encrypts(&[]).is_none()
    }

    /// The metadata option that leaves a value clear, for messages.
    pub fn clear_rule(&self) -> &'static str {
        self.0
            .as_ref()
            .map_or("comment rules", |r| r.selection().key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kustodian_manifest::parse_stream;

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
        assert_eq!(sel.clear_rule(), "encrypted_regex");
        let d = doc("a: 1\nsops:\n  version: 3.9.0\n  age: []\n");
        assert!(is_sops_document(&d));
        let sel = Selection::of(&d);
        assert_eq!(sel.encrypts(&["a"]), Some(true));
        assert_eq!(sel.encrypts(&["x_unencrypted", "b"]), Some(false));
        assert!(is_sops_document(&doc(
            "a: 1\nsops:\n  mac: x\n  key_groups: []\n"
        )));
        assert!(!is_sops_document(&doc("sops: yes\n")));
        assert!(!is_sops_document(&doc("sops:\n  note: hi\n")));
        let d =
            doc("a: 1\nsops:\n  mac: x\n  lastmodified: y\n  unencrypted_comment_regex: clear\n");
        assert!(Selection::of(&d).is_unknown());
        let d = doc("a: 1\nsops:\n  mac: x\n  lastmodified: y\n  encrypted_regex: '('\n");
        assert!(Selection::of(&d).is_unknown());
        assert!(!Selection::of(&doc("a: 1\nsops:\n  mac: x\n  lastmodified: y\n")).is_unknown());
    }
}
