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
//! What it does not do: PGP, cloud KMS or Vault master keys, Shamir key groups, age plugins
//! or SSH keys as identities, the INI format. Its only I/O is in [`keys`] (age
//! identities from `SOPS_AGE_KEY`, `SOPS_AGE_KEY_FILE` and the default key files) and
//! [`config`] (finding and reading `.sops.yaml`); everything else takes and returns strings.
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
mod metadata;
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

/// Encrypts a plaintext tree for the given recipients with a new data key and returns the
/// file's text in `format`. Refuses a tree that already has `sops` metadata.
pub fn encrypt(
    plain: &Plaintext,
    opts: &EncryptOptions,
    format: Format,
    name: &str,
) -> Result<String> {
    if plain.has_sops_key() {
        return Err(Error::AlreadyEncrypted { file: name.into() });
    }
    if opts.recipients.is_empty() {
        return Err(Error::NoRecipients);
    }
    let parsed = opts
        .recipients
        .iter()
        .map(|r| parse_recipient(r))
        .collect::<Result<Vec<_>>>()?;
    let rules = Rules::new(opts.selection.clone(), opts.mac_only_encrypted)?;
    let key = DataKey::generate();
    let mut docs = plain.docs.clone();
    let mac = tree::encrypt_docs(&mut docs, &rules, &key, &IvStash::default())?;
    let lastmodified = opts.lastmodified.clone().unwrap_or_else(now_rfc3339);
    let stanzas = opts
        .recipients
        .iter()
        .zip(&parsed)
        .map(|(r, p)| {
            Ok(AgeStanza {
                recipient: r.trim().to_string(),
                enc: agekey::wrap(&key, p)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let mac_enc = cipher::seal(&key, mac.as_bytes(), "str", &lastmodified, None);
    let block = Metadata::new_block(
        &stanzas,
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

    /// Unwraps the data key with the first identity that can. Identities whose public key
    /// matches a recipient are tried first.
    pub fn data_key(&self, ids: &Identities) -> Result<DataKey> {
        if self.metadata.age.is_empty() {
            return Err(Error::NoAgeRecipients {
                file: self.name.clone(),
                others: if self.metadata.other_key_types.is_empty() {
                    "nothing".into()
                } else {
                    self.metadata.other_key_types.join(", ")
                },
            });
        }
        let publics = ids.recipients();
        for stanza in &self.metadata.age {
            let matching: Vec<_> = ids
                .all()
                .iter()
                .zip(&publics)
                .filter(|(_, p)| **p == stanza.recipient.trim())
                .map(|(i, _)| i)
                .collect();
            if let Some(k) = agekey::unwrap(&stanza.enc, &matching) {
                return Ok(k);
            }
        }
        let all: Vec<_> = ids.all().iter().collect();
        for stanza in &self.metadata.age {
            if let Some(k) = agekey::unwrap(&stanza.enc, &all) {
                return Ok(k);
            }
        }
        Err(Error::NoIdentity {
            file: self.name.clone(),
            recipients: self.recipients().iter().map(|s| s.to_string()).collect(),
            looked: ids.looked(),
        })
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
