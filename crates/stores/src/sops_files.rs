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

/// Resolves `rel` against `base` and checks that it stays inside `root`.
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
    let joined = base.join(p);
    let root = root
        .canonicalize()
        .map_err(|e| invalid(&format!("cannot resolve the repository root: {e}")))?;
    let real = match joined.canonicalize() {
        Ok(r) => r,
        Err(_) => {
            // Still refuse an escaping path before saying it is missing.
            if escapes(&joined, &root) {
                return Err(invalid(
                    "the path leaves the repository; keep SOPS files inside the repository",
                ));
            }
            return Err(StoreError::NotFound {
                store: "sops".into(),
                path: rel.to_string(),
            });
        }
    };
    if !real.starts_with(&root) {
        return Err(invalid("the path leaves the repository (through `..`, or a symlink); keep SOPS files inside the repository"));
    }
    Ok(real)
}

fn escapes(p: &Path, root: &Path) -> bool {
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
    let out = out.canonicalize().unwrap_or(out);
    !out.starts_with(root)
}

impl Store for SopsFiles {
    fn name(&self) -> &str {
        "sops"
    }

    fn fetch(&self, req: &Request) -> Result<SecretValue, StoreError> {
        let file = confine(&self.root, &self.base, &req.path)?;
        let bytes = std::fs::read(&file).map_err(|e| StoreError::Backend {
            store: "sops".into(),
            path: req.path.clone(),
            reason: format!("cannot read the file: {}", e.kind()),
        })?;
        let text = String::from_utf8(bytes).map_err(|_| StoreError::Invalid {
            path: req.path.clone(),
            reason: "not a text file; SOPS stores are YAML or JSON".into(),
        })?;
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

/// Where to look for age identities, the way sops does, from the operator's variables only (an
/// Application's `ARGOCD_ENV_SOPS_AGE_KEY_FILE` and the like are ignored).
pub fn key_sources(config: &Config) -> kustodian_sops::KeySources {
    let var = |k: &str| config.var(k).map(str::to_string);
    kustodian_sops::KeySources {
        sops_age_key: var("SOPS_AGE_KEY").map(kustodian_sops::Zeroizing::new),
        sops_age_key_file: var("SOPS_AGE_KEY_FILE").map(PathBuf::from),
        xdg_config_home: var("XDG_CONFIG_HOME").map(PathBuf::from),
        home: var("HOME").map(PathBuf::from),
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
