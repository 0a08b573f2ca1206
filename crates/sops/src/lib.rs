//! The SOPS file format over age: decrypt, encrypt, MAC.
//!
//! `kustodian-sops` reads and writes files in the format of [sops](https://github.com/getsops/sops)
//! so that files round-trip with the real `sops` binary: values become
//! `ENC[AES256_GCM,data:...,iv:...,tag:...,type:str|int|float|bool]` (AES-256-GCM, 32-byte IV,
//! the key path as additional data), comments become `#ENC[...,type:comment]`, a `sops:` block
//! holds the data key wrapped for each age recipient, `lastmodified`, the selection option
//! (`encrypted_regex`, `unencrypted_suffix`, ...) and the MAC (SHA-512 over the values, itself
//! encrypted). The MAC is checked on every decryption; a file without one is refused.
//!
//! Formats: YAML (several documents, comments kept), JSON, and sops's "binary" format (any
//! file, stored as JSON with one `data` value).
//!
//! To decrypt a file for rendering:
//! ```no_run
//! use kustodian_sops::{decrypt, Format, Identities};
//! let src = std::fs::read_to_string("secrets.enc.yaml")?;
//! let ids = Identities::from_env();
//! let plain = decrypt(&src, Format::Yaml, &ids, "secrets.enc.yaml")?;
//! let password = plain.lookup(&["db", "password"]).and_then(|v| v.to_text());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Master keys: age (done here), and PGP, AWS KMS, GCP KMS, Azure Key Vault and Vault/OpenBao
//! transit through a
//! [`MasterKeyService`] the caller gives in [`KeySources::master_keys`] (this crate does no
//! network or process I/O; `kustodian-stores` provides the service). Key groups with a Shamir
//! threshold are read and written as sops does ([`KeyPlan`]).
//!
//! What it does not do: HuaweiCloud KMS keys (kept in files, never used), age plugins or SSH keys as identities, the INI format. Its only I/O is in
//! [`keys`] (age identities from `SOPS_AGE_KEY`, `SOPS_AGE_KEY_FILE` and the default key files)
//! and [`config`] (finding and reading `.sops.yaml`); everything else takes and returns strings.
//! Secret values live in [`Text`] and [`DataKey`], which zero themselves on drop and never
//! print in `Debug`; no error message carries a value, a key or a comment.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod agekey;
mod cipher;
pub mod config;
mod dotenv;
mod error;
mod format;
pub mod keys;
mod master;
mod metadata;
mod shamir;
mod store;
mod tree;
mod value;

#[cfg(test)]
mod interop_tests;

use std::path::Path;

use kustodian_manifest::Node;

pub use agekey::parse_recipient;
pub use cipher::{is_encrypted_value, DataKey};
pub use error::{Error, Result};
pub use keys::{generate_identity_file, Identities, KeySources};
pub use master::{
    gcp_kms_keys_from_list, kms_keys_from_list, AzureKvKey, KeyEntry, KmsKey, MasterKey,
    MasterKeyService, VaultKey,
};
pub use metadata::{now_rfc3339, rfc3339, rfc3339_utc, AgeStanza, Metadata, SOPS_VERSION};
pub use tree::{Rules, Selection};
pub use value::{MapItem, SeqItem, Text, Value};
/// Re-exported so callers can hold plaintext the same way.
pub use zeroize::Zeroizing;

use tree::IvStash;

/// A file format sops can store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// YAML: one or more documents, each a mapping; comments are kept.
    Yaml,
    /// JSON: one object.
    Json,
    /// Any file: the whole content is one string, stored as JSON under `data`.
    Binary,
    /// `KEY=VALUE` lines (`.env`), string values; metadata as `sops_` keys.
    Dotenv,
}

impl Format {
    /// The format sops picks for a path: `.yaml`/`.yml` is YAML, `.json` is JSON, `.env` is
    /// dotenv, anything else binary.
    pub fn from_path(path: &Path) -> Format {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("yaml" | "yml") => Format::Yaml,
            Some("json") => Format::Json,
            Some("env") => Format::Dotenv,
            _ => Format::Binary,
        }
    }

    /// Parses `yaml`, `json`, `dotenv` or `binary` (the `--input-type` values).
    pub fn from_name(name: &str) -> Option<Format> {
        match name {
            "yaml" | "yml" => Some(Format::Yaml),
            "json" => Some(Format::Json),
            "binary" => Some(Format::Binary),
            "dotenv" => Some(Format::Dotenv),
            _ => None,
        }
    }
}

/// The selection rules a parsed document's `sops` metadata names (sops's default,
/// `unencrypted_suffix: _unencrypted`, when it names none); `None` when its regex does not
/// compile.
pub fn document_rules(root: &Node) -> Option<Rules> {
    let sops = root.get("sops")?;
    let sel = Selection::KEYS
        .iter()
        .find_map(|k| {
            let v = sops.get(k)?.as_scalar().filter(|v| !v.is_empty())?;
            Selection::from_key(k, v.to_string())
        })
        .unwrap_or_default();
    Rules::new(sel, false).ok()
}

/// Whether a parsed manifest document is a SOPS file: a top-level `sops` mapping with `mac`
/// or `version`, and at least one of `age`, `pgp`, `kms`, `gcp_kms`, `azure_kv`, `hc_vault`,
/// `key_groups` or `lastmodified`.
pub fn is_sops_document(root: &Node) -> bool {
    let Some(sops) = root.get("sops").filter(|s| s.as_map().is_some()) else {
        return false;
    };
    let has = |k: &str| sops.get(k).is_some();
    (has("mac") || has("version"))
        && [
            "age",
            "pgp",
            "kms",
            "gcp_kms",
            "azure_kv",
            "hc_vault",
            "key_groups",
            "lastmodified",
        ]
        .iter()
        .any(|k| has(k))
}

fn read_docs(src: &str, format: Format, name: &str) -> Result<Vec<Value>> {
    match format {
        Format::Yaml => store::parse_yaml(src, name),
        Format::Json | Format::Binary => store::parse_json(src, name).map(|d| vec![d]),
        Format::Dotenv => dotenv::parse(src, name).map(|d| vec![d]),
    }
}

/// A plaintext tree: what is encrypted, or what decryption returns.
#[derive(Clone, Debug, PartialEq)]
pub struct Plaintext {
    docs: Vec<Value>,
}

impl Plaintext {
    /// Reads a plaintext file. In [`Format::Binary`] the whole text becomes the `data` value.
    pub fn parse(src: &str, format: Format, name: &str) -> Result<Plaintext> {
        let docs = match format {
            Format::Binary => vec![Value::Map(vec![MapItem::Entry(
                "data".into(),
                Value::str(src),
            )])],
            _ => read_docs(src, format, name)?,
        };
        Ok(Plaintext { docs })
    }

    /// Wraps documents built in code (each should be a [`Value::Map`]).
    pub fn from_documents(docs: Vec<Value>) -> Plaintext {
        Plaintext { docs }
    }

    /// The documents, in order.
    pub fn documents(&self) -> &[Value] {
        &self.docs
    }

    /// The first document (an empty mapping when there is none).
    pub fn root(&self) -> &Value {
        static EMPTY: Value = Value::Map(Vec::new());
        self.docs.first().unwrap_or(&EMPTY)
    }

    /// [`Value::lookup`] on the first document: `&["db", "password"]`, `&["hosts", "0"]`.
    pub fn lookup<S: AsRef<str>>(&self, path: &[S]) -> Option<&Value> {
        self.root().lookup(path)
    }

    /// [`Value::pointer`] on the first document: `/db/password`.
    pub fn pointer(&self, pointer: &str) -> Option<&Value> {
        self.root().pointer(pointer)
    }

    /// Whether the first document has a top-level `sops` key (the file is already encrypted).
    pub fn has_sops_key(&self) -> bool {
        self.docs.iter().any(|d| d.get("sops").is_some())
    }

    /// Writes the tree out. [`Format::Binary`] writes the `data` value as it is.
    pub fn to_text(&self, format: Format, name: &str) -> Result<Zeroizing<String>> {
        Ok(Zeroizing::new(match format {
            Format::Yaml => store::emit_yaml(&self.docs.iter().collect::<Vec<_>>()),
            Format::Json => store::emit_json(self.single(name)?),
            Format::Dotenv => dotenv::emit(self.single(name)?, name)?,
            Format::Binary => match self.root().get("data") {
                Some(Value::Str(s)) => s.as_str().to_string(),
                _ => {
                    return Err(Error::Shape {
                        file: name.into(),
                        what: "binary output needs a single string value under `data`".into(),
                    })
                }
            },
        }))
    }

    fn single(&self, name: &str) -> Result<&Value> {
        match self.docs.as_slice() {
            [one] => Ok(one),
            [] => Ok(self.root()),
            _ => Err(Error::Shape {
                file: name.into(),
                what: "JSON output holds one document; this has several".into(),
            }),
        }
    }
}

/// What a new file is encrypted to, and how.
#[derive(Clone, Debug, Default)]
pub struct EncryptOptions {
    /// Age recipients (`age1...`); each gets the data key wrapped for it.
    pub recipients: Vec<String>,
    /// Which values to encrypt.
    pub selection: Selection,
    /// Whether the MAC covers only the encrypted values.
    pub mac_only_encrypted: bool,
    /// `lastmodified` to write; the current time when `None`.
    pub lastmodified: Option<String>,
}

/// Which master keys a file's data key is wrapped for: key groups and the Shamir threshold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyPlan {
    /// The key groups; one group means every key wraps the whole data key.
    pub groups: Vec<Vec<MasterKey>>,
    /// With several groups, how many must open (0: all of them, as sops does).
    pub shamir_threshold: usize,
}

impl KeyPlan {
    /// One group of age recipients.
    pub fn age(recipients: &[String]) -> KeyPlan {
        KeyPlan {
            groups: vec![recipients
                .iter()
                .map(|r| MasterKey::Age(r.trim().to_string()))
                .collect()],
            shamir_threshold: 0,
        }
    }

    /// The keys a file is wrapped for now.
    pub fn of(metadata: &Metadata) -> KeyPlan {
        KeyPlan {
            groups: metadata
                .key_groups
                .iter()
                .map(|g| g.iter().map(|e| e.key.clone()).collect())
                .collect(),
            shamir_threshold: metadata.shamir_threshold,
        }
    }

    /// Whether it names no key at all.
    pub fn is_empty(&self) -> bool {
        self.groups.iter().all(|g| g.is_empty())
    }

    /// Whether `other` names the same keys in the same groups (order inside a group aside)
    /// and the same threshold.
    pub fn same_keys(&self, other: &KeyPlan) -> bool {
        let threshold = |p: &KeyPlan| {
            if p.groups.len() > 1 {
                p.threshold()
            } else {
                0
            }
        };
        self.groups.len() == other.groups.len()
            && threshold(self) == threshold(other)
            && self.groups.iter().zip(&other.groups).all(|(a, b)| {
                a.len() == b.len()
                    && a.iter().all(|k| b.iter().any(|o| o.same(k)))
                    && b.iter().all(|k| a.iter().any(|o| o.same(k)))
            })
    }

    fn threshold(&self) -> usize {
        if self.shamir_threshold == 0 {
            self.groups.len()
        } else {
            self.shamir_threshold
        }
    }

    /// Wraps `key` for every master key (split into shares when there are several groups).
    fn wrap(&self, key: &DataKey, ids: &Identities, file: &str) -> Result<Vec<Vec<KeyEntry>>> {
        let groups: Vec<&Vec<MasterKey>> = self.groups.iter().filter(|g| !g.is_empty()).collect();
        if groups.is_empty() {
            return Err(Error::NoRecipients);
        }
        let shares: Vec<Zeroizing<Vec<u8>>> = if groups.len() == 1 {
            vec![Zeroizing::new(key.bytes().to_vec())]
        } else {
            let t = self.threshold();
            if t < 2 || t > groups.len() || groups.len() > 255 {
                return Err(Error::BadThreshold {
                    threshold: t,
                    groups: groups.len(),
                });
            }
            shamir::split(key.bytes(), groups.len(), t)
        };
        let now = now_rfc3339();
        let mut out = Vec::new();
        for (group, share) in groups.iter().zip(&shares) {
            let mut entries = Vec::new();
            for k in group.iter() {
                let enc = match k {
                    MasterKey::Age(r) => agekey::wrap_bytes(share, &parse_recipient(r)?)?,
                    MasterKey::Other(kind, _) => {
                        return Err(Error::Wrap {
                            key: k.to_string(),
                            why: format!("{kind} keys are not supported"),
                        })
                    }
                    _ => match ids.master_keys() {
                        Some(svc) => svc.wrap(k, share, file).map_err(|why| Error::Wrap {
                            key: k.to_string(),
                            why,
                        })?,
                        None => {
                            return Err(Error::Wrap {
                                key: k.to_string(),
                                why: "no master-key service was configured".into(),
                            })
                        }
                    },
                };
                entries.push(KeyEntry {
                    created_at: (!matches!(k, MasterKey::Age(_))).then(|| now.clone()),
                    key: k.clone(),
                    enc,
                    raw: None,
                });
            }
            out.push(entries);
        }
        Ok(out)
    }
}

/// Encrypts a plaintext tree for the given age recipients with a new data key and returns the
/// file's text in `format`. Refuses a tree that already has `sops` metadata.
pub fn encrypt(
    plain: &Plaintext,
    opts: &EncryptOptions,
    format: Format,
    name: &str,
) -> Result<String> {
    if opts.recipients.is_empty() {
        return Err(Error::NoRecipients);
    }
    encrypt_for(
        plain,
        opts,
        &KeyPlan::age(&opts.recipients),
        &Identities::default(),
        format,
        name,
    )
}

/// Encrypts a plaintext tree for the master keys of `plan` (age keys are done here, the
/// others with `ids`'s [`MasterKeyService`]); `opts.recipients` is ignored.
pub fn encrypt_for(
    plain: &Plaintext,
    opts: &EncryptOptions,
    plan: &KeyPlan,
    ids: &Identities,
    format: Format,
    name: &str,
) -> Result<String> {
    if plain.has_sops_key() {
        return Err(Error::AlreadyEncrypted { file: name.into() });
    }
    if plan.is_empty() {
        return Err(Error::NoRecipients);
    }
    for k in plan.groups.iter().flatten() {
        if let MasterKey::Age(r) = k {
            parse_recipient(r)?;
        }
    }
    let rules = Rules::new(opts.selection.clone(), opts.mac_only_encrypted)?;
    let key = DataKey::generate();
    let groups = plan.wrap(&key, ids, name)?;
    let mut docs = plain.docs.clone();
    let mac = tree::encrypt_docs(&mut docs, &rules, &key, &IvStash::default())?;
    let lastmodified = opts.lastmodified.clone().unwrap_or_else(now_rfc3339);
    let mac_enc = cipher::seal(&key, mac.as_bytes(), "str", &lastmodified, None);
    let block = Metadata::new_block(
        &groups,
        plan.shamir_threshold,
        &lastmodified,
        &mac_enc,
        &opts.selection,
        opts.mac_only_encrypted,
    );
    emit_encrypted(docs, block, format, name)
}

fn emit_encrypted(
    mut docs: Vec<Value>,
    block: Value,
    format: Format,
    name: &str,
) -> Result<String> {
    for d in docs.iter_mut() {
        if let Value::Map(items) = d {
            items.push(MapItem::Entry("sops".into(), block.clone()));
        }
    }
    match format {
        Format::Yaml => Ok(store::emit_yaml(&docs.iter().collect::<Vec<_>>())),
        Format::Json | Format::Binary | Format::Dotenv => match docs.as_slice() {
            [one] if format == Format::Dotenv => dotenv::emit(one, name),
            [one] => Ok(store::emit_json(one)),
            _ => Err(Error::Shape {
                file: name.into(),
                what: "JSON output holds one document; this has several".into(),
            }),
        },
    }
}

/// A parsed SOPS file: encrypted documents and their metadata.
#[derive(Clone, Debug)]
pub struct EncryptedFile {
    name: String,
    docs: Vec<Value>,
    metadata: Metadata,
}

impl EncryptedFile {
    /// Parses an encrypted file (YAML, or JSON for [`Format::Json`] and [`Format::Binary`]).
    /// `name` is how errors refer to the file.
    pub fn parse(src: &str, format: Format, name: &str) -> Result<EncryptedFile> {
        let mut docs = read_docs(src, format, name)?;
        let block = docs.iter().find_map(|d| d.get("sops").cloned());
        let Some(block) = block else {
            return Err(Error::NotEncrypted { file: name.into() });
        };
        let metadata = Metadata::parse(&block, name)?;
        for d in docs.iter_mut() {
            if let Value::Map(items) = d {
                items.retain(|i| !matches!(i, MapItem::Entry(k, _) if k == "sops"));
            }
        }
        Ok(EncryptedFile {
            name: name.into(),
            docs,
            metadata,
        })
    }

    /// The display name given to [`EncryptedFile::parse`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `sops` metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The age recipients the data key is wrapped for.
    pub fn recipients(&self) -> Vec<&str> {
        self.metadata
            .age
            .iter()
            .map(|a| a.recipient.as_str())
            .collect()
    }

    fn require_mac(&self) -> Result<&str> {
        self.metadata
            .mac
            .as_deref()
            .ok_or_else(|| Error::MissingMac {
                file: self.name.clone(),
            })
    }

    /// Unwraps the data key. In each key group, age keys are tried first (identities whose
    /// public key matches a recipient before the others), then PGP, then the rest in file
    /// order, as sops does; with several groups, shares from `shamir_threshold` groups are
    /// combined. The error names, for each master key, why it could not be used.
    pub fn data_key(&self, ids: &Identities) -> Result<DataKey> {
        let groups: Vec<&Vec<KeyEntry>> = self
            .metadata
            .key_groups
            .iter()
            .filter(|g| !g.is_empty())
            .collect();
        if groups.is_empty() {
            return Err(Error::NoAgeRecipients {
                file: self.name.clone(),
                others: "nothing".into(),
            });
        }
        let age_only =
            groups.len() == 1 && groups[0].iter().all(|e| matches!(e.key, MasterKey::Age(_)));
        let mut parts: Vec<Zeroizing<Vec<u8>>> = Vec::new();
        let mut report = Vec::new();
        let threshold = match self.metadata.shamir_threshold {
            0 => groups.len(),
            t => t,
        };
        for (i, group) in groups.iter().enumerate() {
            match self.open_group(group, ids) {
                Ok(p) => parts.push(p),
                Err(why) if groups.len() == 1 => report.push(why.join("\n")),
                Err(why) => report.push(format!(
                    "key group {} of {}: FAILED\n{}",
                    i + 1,
                    groups.len(),
                    why.join("\n")
                )),
            }
            if groups.len() > 1 && parts.len() >= threshold {
                break;
            }
        }
        let key = if groups.len() == 1 {
            parts.pop().and_then(|p| DataKey::from_bytes(&p))
        } else if parts.len() >= threshold {
            let refs: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
            shamir::combine(&refs).and_then(|k| DataKey::from_bytes(&k))
        } else {
            None
        };
        if let Some(k) = key {
            return Ok(k);
        }
        if age_only {
            return Err(Error::NoIdentity {
                file: self.name.clone(),
                recipients: self.recipients().iter().map(|s| s.to_string()).collect(),
                looked: ids.looked(),
            });
        }
        let needed = if groups.len() == 1 {
            "no master key could be used".to_string()
        } else if parts.len() >= threshold {
            "the key groups' shares do not combine into a data key".to_string()
        } else {
            format!(
                "{threshold} of {} key groups are needed (Shamir threshold), {} opened",
                groups.len(),
                parts.len()
            )
        };
        Err(Error::DataKey {
            file: self.name.clone(),
            needed,
            report: report.join("\n"),
        })
    }

    /// One group's share (or the whole data key), or for each key why it could not be used.
    fn open_group(
        &self,
        group: &[KeyEntry],
        ids: &Identities,
    ) -> std::result::Result<Zeroizing<Vec<u8>>, Vec<String>> {
        let rank = |e: &KeyEntry| match e.key {
            MasterKey::Age(_) => 0,
            MasterKey::Pgp(_) => 1,
            _ => 2,
        };
        let mut order: Vec<&KeyEntry> = group.iter().collect();
        order.sort_by_key(|e| rank(e));
        let publics = ids.recipients();
        let mut why = Vec::new();
        for e in order {
            let result = match &e.key {
                MasterKey::Age(r) => {
                    let matching: Vec<_> = ids
                        .all()
                        .iter()
                        .zip(&publics)
                        .filter(|(_, p)| **p == r.trim())
                        .map(|(i, _)| i)
                        .collect();
                    let all: Vec<_> = ids.all().iter().collect();
                    agekey::unwrap_bytes(&e.enc, &matching)
                        .or_else(|| agekey::unwrap_bytes(&e.enc, &all))
                        .ok_or_else(|| {
                            format!("no age identity matches (looked in: {})", ids.looked())
                        })
                }
                MasterKey::Other(kind, _) => Err(format!("{kind} keys are not supported")),
                k => match ids.master_keys() {
                    Some(svc) => svc.unwrap(k, &e.enc, &self.name),
                    None => Err("no master-key service was configured".into()),
                },
            };
            match result {
                Ok(p) => return Ok(p),
                Err(reason) => why.push(format!("  {}: {reason}", e.key)),
            }
        }
        Err(why)
    }

    /// The file wrapped for `plan`'s master keys (`updatekeys`, `rotate --add-*/--rm-*`):
    /// with `rotate`, a new data key and every value encrypted again; otherwise the same data
    /// key and ciphertexts. `lastmodified` and the MAC are renewed either way.
    pub fn rekey(
        &self,
        key: &DataKey,
        plan: &KeyPlan,
        ids: &Identities,
        rotate: bool,
        format: Format,
    ) -> Result<String> {
        for k in plan.groups.iter().flatten() {
            if let MasterKey::Age(r) = k {
                parse_recipient(r)?;
            }
        }
        let mut stash = IvStash::default();
        let plain = self.open(key, (!rotate).then_some(&mut stash))?;
        let new_key;
        let key = if rotate {
            new_key = DataKey::generate();
            &new_key
        } else {
            key
        };
        let rules = Rules::new(
            self.metadata.selection.clone(),
            self.metadata.mac_only_encrypted,
        )?;
        let groups = plan.wrap(key, ids, &self.name)?;
        let mut docs = plain;
        let mac = tree::encrypt_docs(&mut docs, &rules, key, &stash)?;
        let lastmodified = now_rfc3339();
        let mac_enc = cipher::seal(key, mac.as_bytes(), "str", &lastmodified, None);
        let block =
            self.metadata
                .rekeyed_block(&groups, plan.shamir_threshold, &lastmodified, &mac_enc);
        emit_encrypted(docs, block, format, &self.name)
    }

    fn open(&self, key: &DataKey, stash: Option<&mut IvStash>) -> Result<Vec<Value>> {
        let mac_enc = self.require_mac()?;
        let rules = Rules::new(
            self.metadata.selection.clone(),
            self.metadata.mac_only_encrypted,
        )?;
        let mut docs = self.docs.clone();
        let computed = tree::decrypt_docs(&mut docs, &rules, key, &self.name, stash)?;
        let mismatch = || Error::MacMismatch {
            file: self.name.clone(),
        };
        let stored = cipher::parse(mac_enc).ok_or_else(mismatch)?;
        let stored = stored
            .open(key, &self.metadata.lastmodified)
            .map_err(|_| mismatch())?;
        if stored.as_slice() != computed.as_bytes() {
            return Err(mismatch());
        }
        Ok(docs)
    }

    /// Decrypts with a known data key and checks the MAC.
    pub fn decrypt_with_key(&self, key: &DataKey) -> Result<Plaintext> {
        Ok(Plaintext {
            docs: self.open(key, None)?,
        })
    }

    /// Unwraps the data key with `ids`, decrypts and checks the MAC. A missing MAC is refused
    /// before any key is used.
    pub fn decrypt(&self, ids: &Identities) -> Result<Plaintext> {
        self.require_mac()?;
        let key = self.data_key(ids)?;
        self.decrypt_with_key(&key)
    }

    /// Encrypts `edited` again with this file's data key, recipients and selection option
    /// (what `sops edit` does): values that did not change keep their ciphertext, and
    /// `lastmodified` and the MAC are renewed. Other master keys (PGP, KMS) stay as they are.
    pub fn reencrypt(&self, key: &DataKey, edited: &Plaintext, format: Format) -> Result<String> {
        if edited.has_sops_key() {
            return Err(Error::AlreadyEncrypted {
                file: self.name.clone(),
            });
        }
        let mut stash = IvStash::default();
        self.open(key, Some(&mut stash))?;
        let rules = Rules::new(
            self.metadata.selection.clone(),
            self.metadata.mac_only_encrypted,
        )?;
        let mut docs = edited.docs.clone();
        let mac = tree::encrypt_docs(&mut docs, &rules, key, &stash)?;
        let lastmodified = now_rfc3339();
        let mac_enc = cipher::seal(key, mac.as_bytes(), "str", &lastmodified, None);
        emit_encrypted(
            docs,
            self.metadata.updated_block(&lastmodified, &mac_enc),
            format,
            &self.name,
        )
    }
}

/// Parses, decrypts and MAC-checks a SOPS file in one call. `name` is how errors refer to it.
pub fn decrypt(src: &str, format: Format, ids: &Identities, name: &str) -> Result<Plaintext> {
    EncryptedFile::parse(src, format, name)?.decrypt(ids)
}
