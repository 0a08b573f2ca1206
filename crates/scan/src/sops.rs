//! The SOPS checks of the scanner, from `kustodian-sops`, which holds the one definition of what
//! an encrypted value and a document's `sops` metadata look like, and of which values sops's
//! selection rules encrypt. The scanner never decrypts.

use kustodian_manifest::Node;
use kustodian_sops::{EncryptedFile, Format, Rules};

use crate::engine::{FileCx, FileScan, Owner, Scanner, MAX_FILE_SIZE};
use crate::finding::Note;

pub use kustodian_sops::{is_encrypted_value, is_sops_document};

/// Whether env-file text has sops's metadata lines (`sops_mac=`, `sops_version=`,
/// `sops_lastmodified=`): a SOPS-encrypted dotenv store.
pub(crate) fn is_sops_dotenv(text: &str) -> bool {
    text.lines().any(|l| {
        ["sops_mac=", "sops_version=", "sops_lastmodified="]
            .iter()
            .any(|m| l.starts_with(m))
    })
}

impl Scanner {
    /// Whether a path names an env file (`.env`, `app.env`, `secrets.enc.env`, `.env.prod`),
    /// which the scanner reads to see whether it is a SOPS dotenv store.
    pub fn is_env_path(path: &str) -> bool {
        let name = path.rsplit(['/', '\\']).next().unwrap_or(path);
        let lower = name.to_ascii_lowercase();
        lower == ".env" || lower.ends_with(".env") || lower.starts_with(".env.")
    }

    /// Scans an env file on its own: when it is a SOPS dotenv store (it has `sops_` metadata
    /// lines), every value its rules encrypt (all but keys with the `unencrypted_suffix`, or
    /// those its regexes leave clear) must be `ENC[...]`; a `KEY=plain` line is a
    /// `sops-plaintext-value` finding. Any other env file gives nothing: only the
    /// `secretGenerator`s that read it make it Secret data ([`Scanner::scan_followed`]).
    pub fn scan_env_file(&self, path: &str, bytes: &[u8]) -> FileScan {
        let mut out = FileScan::default();
        if bytes.len() > MAX_FILE_SIZE {
            out.notes.push(Note::too_large(path));
            return out;
        }
        let text = String::from_utf8_lossy(bytes);
        if memchr::memchr(0, bytes).is_some() || !is_sops_dotenv(&text) {
            return out;
        }
        let rules = EncryptedFile::parse(&text, Format::Dotenv, path)
            .ok()
            .and_then(|f| {
                let m = f.metadata();
                Rules::new(m.selection.clone(), m.mac_only_encrypted).ok()
            });
        let left_clear = |key: &str| {
            rules
                .as_ref()
                .is_some_and(|r| r.encrypts_key_path(&[key]) == Some(false))
        };
        let mut cx = FileCx::new(path, &text, self.policy());
        crate::generator::env_file(&mut cx, &Owner::default(), None, &left_clear);
        out.findings = cx.findings;
        out.notes = cx.notes;
        out
    }
}

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

    const STORE: &str = include_str!(
        "../../../tests/fixtures/scan/sops-dotenv-plaintext-line/repo/secrets.enc.env"
    );

    #[test]
    fn env_paths() {
        for p in [
            "a/.env",
            "app.env",
            "x/secrets.enc.env",
            ".env.prod",
            "A.ENV",
        ] {
            assert!(Scanner::is_env_path(p), "{p}");
        }
        for p in ["env", "a.yaml", "envs/x.txt", "a.environment"] {
            assert!(!Scanner::is_env_path(p), "{p}");
        }
    }

    #[test]
    fn sops_dotenv_values_its_rules_encrypt_must_be_encrypted() {
        let s = Scanner::new();
        let keys = |text: &str| -> Vec<String> {
            s.scan_env_file("s.enc.env", text.as_bytes())
                .findings
                .into_iter()
                .map(|f| f.key)
                .collect()
        };
        assert_eq!(keys(STORE), ["API_TOKEN"]);
        // With an encrypted_regex, keys it does not match are meant to stay clear.
        let regex = STORE
            .replace(
                "sops_unencrypted_suffix=_unencrypted",
                "sops_encrypted_regex=^(DB_|API_)",
            )
            .replace("LOG_LEVEL_unencrypted=debug", "LOG_LEVEL=debug");
        assert_eq!(keys(&regex), ["API_TOKEN"]);
        // Without sops metadata an env file is no store: nothing (generators judge it).
        assert!(keys("API_TOKEN=plain-value\n").is_empty());
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
