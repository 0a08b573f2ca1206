//! The embedded default store: SOPS files encrypted with age, inside the repository.
//!
//! The request path is a file relative to the directory being rendered; it must resolve (after
//! following symlinks) to a file inside the repository root. The document returned is the
//! decrypted file as JSON-like data.

use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use crate::{Config, Request, SecretValue, Store, StoreError};

/// SOPS files in the repository.
pub struct SopsFiles {
    root: PathBuf,
    base: PathBuf,
    config: Config,
    identities: OnceLock<kustodian_sops::Identities>,
}

impl SopsFiles {
    /// A store reading files under the configuration's base directory.
    pub fn new(config: &Config) -> Self {
        SopsFiles {
            root: config.root.clone(),
            base: config.base.clone(),
            config: config.clone(),
            identities: OnceLock::new(),
        }
    }
}

/// Resolves `rel` against `base` and checks that it stays inside `root`: lexically first (so a
/// `..` out of the repository is refused whether or not the target exists), then after following
/// symlinks. A path that stays inside but does not exist is [`StoreError::NotFound`].
pub fn confine(root: &Path, base: &Path, rel: &str) -> Result<PathBuf, StoreError> {
    let invalid = |reason: &str| StoreError::Invalid {
        path: rel.to_string(),
        reason: reason.to_string(),
    };
    let p = Path::new(rel);
    if p.is_absolute()
        || p.components()
            .any(|c| matches!(c, Component::Prefix(_) | Component::RootDir))
    {
        return Err(invalid(
            "absolute paths are refused; write the path relative to the directory being rendered",
        ));
    }
    let root = root.canonicalize().map_err(|e| {
        invalid(&format!(
            "cannot resolve the repository root: {}",
            kustodian_manifest::read::describe_io(&e)
        ))
    })?;
    let base = base.canonicalize().map_err(|e| {
        invalid(&format!(
            "cannot resolve the folder being rendered: {}",
            kustodian_manifest::read::describe_io(&e)
        ))
    })?;
    if !normalize(&base.join(p)).starts_with(&root) {
        return Err(invalid(
            "the path leaves the repository; keep SOPS files inside the repository",
        ));
    }
    let real = match base.join(p).canonicalize() {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(StoreError::NotFound {
                store: "sops".into(),
                path: rel.to_string(),
            })
        }
        Err(e) => return Err(invalid(&format!("cannot resolve the path: {}", e.kind()))),
    };
    if !real.starts_with(&root) {
        return Err(invalid("the path leaves the repository (through a symlink); keep SOPS files inside the repository"));
    }
    Ok(real)
}

/// `p` with `.` and `..` applied lexically (no symlinks followed).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

impl Store for SopsFiles {
    fn name(&self) -> &str {
        "sops"
    }

    fn fetch(&self, req: &Request) -> Result<SecretValue, StoreError> {
        let file = confine(&self.root, &self.base, &req.path)?;
        let text = read_store_file(&file, &req.path)?;
        let ids = self
            .identities
            .get_or_init(|| kustodian_sops::Identities::load(&key_sources(&self.config)));
        let format = kustodian_sops::Format::from_path(&file);
        let plain = kustodian_sops::decrypt(&text, format, ids, &req.path).map_err(|e| {
            // No identity at all: every SOPS reference fails the same way (store-wide).
            if ids.is_empty() && matches!(e, kustodian_sops::Error::NoIdentity { .. }) {
                return StoreError::Unavailable {
                    store: "sops".into(),
                    reason: format!(
                        "no age identity to decrypt SOPS files with (looked in: {}); put the AGE-SECRET-KEY in \
                         SOPS_AGE_KEY, a file named by SOPS_AGE_KEY_FILE, or $XDG_CONFIG_HOME/sops/age/keys.txt",
                        ids.looked()
                    ),
                };
            }
            StoreError::Backend {
                store: "sops".into(),
                path: req.path.clone(),
                reason: e.to_string(),
            }
        })?;
        Ok(SecretValue::new(plain.root().to_json()))
    }
}

/// Reads a confined SOPS file: a regular file of at most [`MANIFEST_LIMIT`] bytes of UTF-8.
/// Errors name `rel` (the path as written), never the content.
///
/// [`MANIFEST_LIMIT`]: kustodian_manifest::read::MANIFEST_LIMIT
pub fn read_store_file(file: &Path, rel: &str) -> Result<String, StoreError> {
    use kustodian_manifest::read::{read_to_string_bounded, ReadError, MANIFEST_LIMIT};
    read_to_string_bounded(file, MANIFEST_LIMIT).map_err(|e| StoreError::Invalid {
        path: rel.to_string(),
        reason: match e {
            ReadError::NotUtf8 { .. } => {
                "not a text file; SOPS stores are YAML, JSON or .env".into()
            }
            other => other.reason(),
        },
    })
}

/// Where to look for age identities, the way sops does, from the operator's variables only (an
/// Application's `ARGOCD_ENV_SOPS_AGE_KEY_FILE` and the like are ignored), with the PGP, AWS KMS
/// and Vault transit master keys of [`crate::masterkeys`] set up from the same variables.
pub fn key_sources(config: &Config) -> kustodian_sops::KeySources {
    let var = |k: &str| config.var(k).map(str::to_string);
    kustodian_sops::KeySources {
        sops_age_key: var("SOPS_AGE_KEY").map(kustodian_sops::Zeroizing::new),
        sops_age_key_file: var("SOPS_AGE_KEY_FILE").map(PathBuf::from),
        xdg_config_home: var("XDG_CONFIG_HOME").map(PathBuf::from),
        home: var("HOME").map(PathBuf::from),
        master_keys: Some(crate::masterkeys::Services::new(config)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confinement() {
        let root = tempfile_dir();
        std::fs::create_dir_all(root.join("app")).unwrap();
        std::fs::write(root.join("app/s.yaml"), "a: 1").unwrap();
        std::fs::write(root.join("../outside-kustodian-test.yaml"), "a: 1").ok();
        let base = root.join("app");
        assert!(confine(&root, &base, "s.yaml").is_ok());
        assert!(matches!(
            confine(&root, &base, "/etc/passwd"),
            Err(StoreError::Invalid { .. })
        ));
        assert!(matches!(
            confine(&root, &base, "../../etc/passwd"),
            Err(StoreError::Invalid { .. })
        ));
        assert!(matches!(
            confine(&root, &base, "../../nope.yaml"),
            Err(StoreError::Invalid { .. })
        ));
        assert!(matches!(
            confine(&root, &base, "missing.yaml"),
            Err(StoreError::NotFound { .. })
        ));
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("/etc/hostname", base.join("link.yaml")).unwrap();
            assert!(matches!(
                confine(&root, &base, "link.yaml"),
                Err(StoreError::Invalid { .. })
            ));
        }
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("kustodian-confine-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
