//! The SOPS checks of the scanner, from `kustodian-sops`, which holds the one definition of what
//! an encrypted value and a document's `sops` metadata look like, and of which values sops's
//! selection rules encrypt. The scanner never decrypts.

use kustodian_manifest::{Node, NodeKind};
use kustodian_sops::{EncryptedFile, Format, KeyPlan, Rules};

use crate::engine::{FileCx, FileScan, Hit, Owner, Scanner, MAX_FILE_SIZE};
use crate::finding::{Note, Severity};
use crate::rules::Rule;

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

/// Keys that identify a Kubernetes object rather than hold its values.
const OBJECT_KEYS: [&str; 3] = ["apiVersion", "kind", "metadata"];

/// What the walk of a SOPS document's values found.
#[derive(Default)]
struct Leaves<'a> {
    /// The key of the first non-empty plaintext value.
    first_plain: Option<&'a Node>,
    /// A value is `ENC[...]`.
    encrypted: bool,
    /// A plaintext value is one the selection says to encrypt (other rules report it).
    should_be_encrypted: bool,
}

/// Walks a SOPS document's values outside `sops` and the object keys.
fn walk<'a>(n: &'a Node, sel: &Selection, path: &mut Vec<&'a str>, out: &mut Leaves<'a>) {
    if path.len() > 64 {
        return;
    }
    let leaf = |key: Option<&'a Node>, value: &str, path: &[&str], out: &mut Leaves<'a>| {
        if is_encrypted_value(value) {
            out.encrypted = true;
        } else if !value.is_empty() {
            out.should_be_encrypted |= sel.encrypts(path) != Some(false);
            if out.first_plain.is_none() {
                out.first_plain = key;
            }
        }
    };
    match &n.kind {
        NodeKind::Map(entries) => {
            for e in entries {
                let k = e.key.as_scalar().unwrap_or("");
                if path.is_empty() && (k == "sops" || OBJECT_KEYS.contains(&k)) {
                    continue;
                }
                path.push(k);
                match &e.value.kind {
                    NodeKind::Scalar { value, .. } => leaf(Some(&e.key), value, path, out),
                    _ => walk(&e.value, sel, path, out),
                }
                path.pop();
            }
        }
        NodeKind::Seq(items) => {
            for i in items {
                match &i.kind {
                    NodeKind::Scalar { value, .. } => leaf(None, value, path, out),
                    _ => walk(i, sel, path, out),
                }
            }
        }
        _ => {}
    }
}

/// The `sops` metadata entry that names the selection (or the `sops` key itself).
fn selection_key(root: &Node) -> Option<&Node> {
    let sops = root
        .as_map()?
        .iter()
        .find(|e| e.key.as_scalar() == Some("sops"))?;
    let opt = sops.value.as_map().and_then(|m| {
        m.iter().find(|e| {
            e.key
                .as_scalar()
                .is_some_and(|k| kustodian_sops::Selection::KEYS.contains(&k))
        })
    });
    Some(opt.map_or(&sops.key, |e| &e.key))
}

/// The file-level checks of a SOPS document: `sops-encrypts-nothing` (its selection rules
/// leave every value in plaintext) and `sops-recipient-drift` (its master keys differ from
/// what its `.sops.yaml` creation rule says now; `.sops.yaml` is read from the working tree).
pub(crate) fn scan_sops_file(cx: &mut FileCx<'_>, root: &Node, owner: &Owner<'_>) {
    let Some(at_node) = selection_key(root) else {
        return;
    };
    let at = crate::manifest::key_at(cx, at_node, ": ");
    let sel = Selection::of(root);
    let mut found = Leaves::default();
    walk(root, &sel, &mut Vec::new(), &mut found);
    if let (false, false, Some(leaf)) = (
        found.encrypted,
        found.should_be_encrypted,
        found.first_plain,
    ) {
        let rule = sel.clear_rule();
        let key = leaf.as_scalar().unwrap_or("").to_string();
        cx.push(Hit {
            rule: Rule::SopsEncryptsNothing,
            owner,
            message: format!(
                "{}: the sops `{rule}` setting encrypts none of this file's values: `{key}` and \
                 the others are stored in plaintext",
                cx.path
            ),
            fp_key: format!("sops/{rule}"),
            key,
            at,
            severity: Severity::Medium,
            hash_input: b"sops-encrypts-nothing",
            related: None,
        });
        return;
    }
    if !cx.policy.rule_on(Rule::SopsRecipientDrift) {
        return;
    }
    if let Some(why) = drift(cx.path, cx.text) {
        let at = crate::manifest::key_at(cx, at_node, ": ");
        cx.push(Hit {
            rule: Rule::SopsRecipientDrift,
            owner,
            message: format!("{}: {why}", cx.path),
            key: "sops".into(),
            fp_key: "sops/keys".into(),
            at,
            severity: Severity::Low,
            hash_input: b"sops-recipient-drift",
            related: None,
        });
    }
}

/// The repository the scan runs in: the nearest folder at or above the working directory
/// holding `.git` (scan paths are relative to it), else the working directory.
fn repo_root() -> &'static std::path::Path {
    static ROOT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    ROOT.get_or_init(|| {
        let cwd = std::env::current_dir().unwrap_or_default();
        cwd.ancestors()
            .find(|d| d.join(".git").exists())
            .unwrap_or(&cwd)
            .to_path_buf()
    })
}

/// How a SOPS file's master keys differ from its `.sops.yaml` rule, when they do.
fn drift(path: &str, text: &str) -> Option<String> {
    let root = repo_root();
    let file = &root.join(path);
    let format = match Format::from_path(file) {
        Format::Json => Format::Json,
        _ => Format::Yaml,
    };
    let parsed = EncryptedFile::parse(text, format, path).ok()?;
    let (config, rule) = kustodian_sops::config::load_creation_rule(file).ok()??;
    let now = KeyPlan::of(parsed.metadata());
    if now.same_keys(&rule.keys) {
        return None;
    }
    let keys = |p: &KeyPlan| {
        p.groups
            .iter()
            .flatten()
            .map(|k| k.to_string())
            .collect::<Vec<_>>()
    };
    let (have, want) = (keys(&now), keys(&rule.keys));
    let mut diff: Vec<String> = want
        .iter()
        .filter(|k| !have.contains(k))
        .map(|k| format!("missing {k}"))
        .collect();
    diff.extend(
        have.iter()
            .filter(|k| !want.contains(k))
            .map(|k| format!("still wrapped for {k}")),
    );
    if diff.is_empty() {
        diff.push("key groups or threshold differ".into());
    }
    Some(format!(
        "its master keys differ from the creation rule of {} ({}); run `kustodian updatekeys`",
        config
            .strip_prefix(root)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| ".sops.yaml".into()),
        diff.join(", ")
    ))
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
