//! Finding age identities the way sops finds them. This module, with `.sops.yaml` lookup in
//! [`crate::config`], is the only place where this crate reads the environment or files.
//! It reads only the plain names (never an Argo CD `ARGOCD_ENV_` twin): identities are the
//! operator's, not an Application's.
//!
//! Every source that is set is read and the identities are merged, in this order:
//! 1. `SOPS_AGE_KEY`: one or more `AGE-SECRET-KEY-1...` lines;
//! 2. `SOPS_AGE_KEY_FILE`: the path of a key file;
//! 3. `$XDG_CONFIG_HOME/sops/age/keys.txt`;
//! 4. `~/.config/sops/age/keys.txt` (when different from 3).
//!
//! A key file holds one identity per line; blank lines and lines starting with `#` are
//! skipped (the format `age-keygen` and `kustodian keygen` write). A source that cannot be
//! read or holds a bad line is skipped and reported in [`Identities::looked`], never echoed.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use age::x25519;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::master::MasterKeyService;

/// The identities found, and where they were looked for.
#[derive(Clone, Default)]
pub struct Identities {
    ids: Vec<x25519::Identity>,
    looked: Vec<String>,
    services: Option<Arc<dyn MasterKeyService>>,
}

impl fmt::Debug for Identities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identities")
            .field("count", &self.ids.len())
            .field("looked", &self.looked)
            .field("master_keys", &self.services.is_some())
            .finish()
    }
}

/// Where identities may come from; [`KeySources::from_env`] fills it from the process.
#[derive(Clone, Default)]
pub struct KeySources {
    /// The value of `SOPS_AGE_KEY`.
    pub sops_age_key: Option<Zeroizing<String>>,
    /// The value of `SOPS_AGE_KEY_FILE`.
    pub sops_age_key_file: Option<PathBuf>,
    /// The value of `XDG_CONFIG_HOME`.
    pub xdg_config_home: Option<PathBuf>,
    /// The value of `HOME`.
    pub home: Option<PathBuf>,
    /// What unwraps and wraps data keys for PGP, AWS KMS and Vault transit master keys
    /// (`kustodian-stores` provides one); without it only age keys are used.
    pub master_keys: Option<Arc<dyn MasterKeyService>>,
}

impl fmt::Debug for KeySources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySources")
            .field(
                "sops_age_key",
                &self.sops_age_key.as_ref().map(|_| "<redacted>"),
            )
            .field("sops_age_key_file", &self.sops_age_key_file)
            .field("xdg_config_home", &self.xdg_config_home)
            .field("home", &self.home)
            .field("master_keys", &self.master_keys)
            .finish()
    }
}

impl KeySources {
    /// Reads `SOPS_AGE_KEY`, `SOPS_AGE_KEY_FILE`, `XDG_CONFIG_HOME` and `HOME` (empty values
    /// count as unset).
    pub fn from_env() -> KeySources {
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        KeySources {
            sops_age_key: std::env::var("SOPS_AGE_KEY")
                .ok()
                .filter(|v| !v.is_empty())
                .map(Zeroizing::new),
            sops_age_key_file: var("SOPS_AGE_KEY_FILE").map(PathBuf::from),
            xdg_config_home: var("XDG_CONFIG_HOME").map(PathBuf::from),
            home: var("HOME").map(PathBuf::from),
            master_keys: None,
        }
    }
}

impl Identities {
    /// Loads identities from the process environment and the default key files.
    pub fn from_env() -> Identities {
        Identities::load(&KeySources::from_env())
    }

    /// Loads identities from the given sources (see the module docs for the order).
    pub fn load(src: &KeySources) -> Identities {
        let mut out = Identities {
            services: src.master_keys.clone(),
            ..Identities::default()
        };
        match &src.sops_age_key {
            Some(v) => out.add_text(v, "SOPS_AGE_KEY"),
            None => out.looked.push("SOPS_AGE_KEY (not set)".into()),
        }
        match &src.sops_age_key_file {
            Some(p) => out.add_file(p, &format!("SOPS_AGE_KEY_FILE={}", p.display()), true),
            None => out.looked.push("SOPS_AGE_KEY_FILE (not set)".into()),
        }
        let rel = Path::new("sops").join("age").join("keys.txt");
        let mut defaults = Vec::new();
        if let Some(x) = &src.xdg_config_home {
            defaults.push(x.join(&rel));
        }
        if let Some(h) = &src.home {
            let p = h.join(".config").join(&rel);
            if !defaults.contains(&p) {
                defaults.push(p);
            }
        }
        for p in defaults {
            out.add_file(&p, &p.display().to_string(), false);
        }
        out
    }

    /// Parses identities from text (a key file's content or `SOPS_AGE_KEY`); `location`
    /// names the source in errors.
    pub fn parse(text: &str, location: &str) -> Result<Identities> {
        let mut ids = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let id = line
                .parse::<x25519::Identity>()
                .map_err(|_| Error::BadIdentity {
                    location: location.to_string(),
                    line: i + 1,
                })?;
            ids.push(id);
        }
        let looked = vec![format!(
            "{location} ({} {})",
            ids.len(),
            if ids.len() == 1 {
                "identity"
            } else {
                "identities"
            }
        )];
        Ok(Identities {
            ids,
            looked,
            services: None,
        })
    }

    fn add_text(&mut self, text: &str, location: &str) {
        match Identities::parse(text, location) {
            Ok(mut found) => {
                self.ids.append(&mut found.ids);
                self.looked.append(&mut found.looked);
            }
            Err(e) => self.looked.push(format!("{location} (skipped: {e})")),
        }
    }

    fn add_file(&mut self, path: &Path, location: &str, must_exist: bool) {
        use kustodian_manifest::read::{read_to_string_bounded, SMALL_FILE_LIMIT};
        match read_to_string_bounded(path, SMALL_FILE_LIMIT) {
            Ok(text) => self.add_text(&Zeroizing::new(text), location),
            Err(e) if e.io_kind() == Some(std::io::ErrorKind::NotFound) && !must_exist => {
                self.looked.push(format!("{location} (not found)"))
            }
            // Bounded (a key file over 1 MiB, a FIFO or a device is refused); the message
            // names the path and the limit, never the content.
            Err(e) => self.looked.push(format!("{location} (cannot read: {e})")),
        }
    }

    /// Adds one identity (used by tests and by callers holding a key elsewhere).
    pub fn push(&mut self, id: x25519::Identity, location: &str) {
        self.ids.push(id);
        self.looked.push(format!("{location} (1 identity)"));
    }

    /// How many identities were found.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether none were found.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The public keys (`age1...`) of the identities found.
    pub fn recipients(&self) -> Vec<String> {
        self.ids.iter().map(|i| i.to_public().to_string()).collect()
    }

    /// Where identities were looked for and what was found, for error messages.
    pub fn looked(&self) -> String {
        self.looked.join("; ")
    }

    pub(crate) fn all(&self) -> &[x25519::Identity] {
        &self.ids
    }

    /// Uses `services` for PGP, AWS KMS and Vault transit master keys.
    pub fn with_master_keys(mut self, services: Arc<dyn MasterKeyService>) -> Identities {
        self.services = Some(services);
        self
    }

    /// The service for master keys other than age, if one was given.
    pub fn master_keys(&self) -> Option<&Arc<dyn MasterKeyService>> {
        self.services.as_ref()
    }
}

/// A new age identity as `age-keygen` writes it: `# created: ...`, `# public key: age1...`,
/// then the `AGE-SECRET-KEY-1...` line. Returns the public key and the file's text.
pub fn generate_identity_file() -> (String, Zeroizing<String>) {
    use age::secrecy::ExposeSecret;
    let id = x25519::Identity::generate();
    let public = id.to_public().to_string();
    let text = Zeroizing::new(format!(
        "# created: {}\n# public key: {public}\n{}\n",
        crate::now_rfc3339(),
        id.to_string().expose_secret()
    ));
    (public, text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use age::secrecy::ExposeSecret;

    #[test]
    fn sources_are_merged_in_order() {
        let a = x25519::Identity::generate();
        let b = x25519::Identity::generate();
        let c = x25519::Identity::generate();
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("k.txt");
        std::fs::write(
            &key_file,
            format!("# comment\n\n{}\n", b.to_string().expose_secret()),
        )
        .unwrap();
        let xdg = dir.path().join("xdg");
        std::fs::create_dir_all(xdg.join("sops/age")).unwrap();
        std::fs::write(xdg.join("sops/age/keys.txt"), c.to_string().expose_secret()).unwrap();
        let src = KeySources {
            sops_age_key: Some(Zeroizing::new(format!(
                "{}\n",
                a.to_string().expose_secret()
            ))),
            sops_age_key_file: Some(key_file),
            xdg_config_home: Some(xdg),
            home: Some(dir.path().join("home")),
            master_keys: None,
        };
        let ids = Identities::load(&src);
        let want: Vec<String> = [&a, &b, &c]
            .iter()
            .map(|i| i.to_public().to_string())
            .collect();
        assert_eq!(ids.recipients(), want);
        assert!(
            ids.looked()
                .contains("home/.config/sops/age/keys.txt (not found)"),
            "{}",
            ids.looked()
        );
        assert!(!format!("{ids:?} {src:?}").contains("AGE-SECRET-KEY"));
    }

    #[test]
    fn generated_identity_files_parse_back() {
        let (public, text) = generate_identity_file();
        let ids = Identities::parse(&text, "new").unwrap();
        assert_eq!(ids.recipients(), vec![public.clone()]);
        assert!(
            text.starts_with("# created: ")
                && text.contains(&format!("# public key: {public}\nAGE-SECRET-KEY-1"))
        );
    }

    #[test]
    fn bad_lines_are_reported_without_content() {
        let e = Identities::parse("AGE-SECRET-KEY-1NOTAKEY-hunter2\n", "SOPS_AGE_KEY").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("line 1") && !msg.contains("hunter2"), "{msg}");
        let ids = Identities::load(&KeySources {
            sops_age_key: Some(Zeroizing::new("garbage-hunter2".into())),
            sops_age_key_file: Some("/nonexistent/keys.txt".into()),
            ..KeySources::default()
        });
        assert!(ids.is_empty());
        assert!(!ids.looked().contains("hunter2"));
        assert!(
            ids.looked()
                .contains("SOPS_AGE_KEY_FILE=/nonexistent/keys.txt (cannot read"),
            "{}",
            ids.looked()
        );
    }
}
