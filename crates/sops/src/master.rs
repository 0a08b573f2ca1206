//! Master keys: what a file's data key is wrapped for, in key groups.
//!
//! A SOPS file wraps its data key once per master key. With one key group (the usual case)
//! every key wraps the whole data key and any one of them opens the file; with several groups
//! the data key is split with Shamir's scheme ([`crate::shamir`]), each group wraps one share,
//! and `shamir_threshold` groups must open to rebuild it.
//!
//! Age is done here (it is pure computation). PGP, AWS KMS, GCP KMS, Azure Key Vault and Vault
//! transit need programs or
//! the network, so this crate only describes them ([`MasterKey`]) and calls a
//! [`MasterKeyService`] the caller provides (the binary wires `kustodian-stores`'s).

use std::fmt;

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::value::{MapItem, SeqItem, Value};

/// An AWS KMS key as sops records it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct KmsKey {
    /// The key's ARN (`arn:aws:kms:REGION:ACCOUNT:key/ID` or an alias ARN).
    pub arn: String,
    /// A role to assume before calling KMS.
    pub role: Option<String>,
    /// The encryption context, sorted by key.
    pub context: Vec<(String, String)>,
    /// The AWS profile to use.
    pub aws_profile: Option<String>,
}

/// A Vault/OpenBao transit key as sops records it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct VaultKey {
    /// The server (`https://vault:8200`), as written in the file.
    pub address: String,
    /// The transit mount (`transit`).
    pub engine_path: String,
    /// The key's name.
    pub key_name: String,
}

impl VaultKey {
    /// Parses sops's `--hc-vault-transit` URI: `https://vault:8200/v1/transit/keys/NAME`
    /// (the engine path may have several segments).
    pub fn from_uri(uri: &str) -> Result<VaultKey> {
        let bad = || Error::BadMasterKey {
            key: uri.to_string(),
            what: "a Vault transit URI looks like https://vault:8200/v1/transit/keys/NAME".into(),
        };
        let uri = uri.trim();
        let scheme_end = uri.find("://").ok_or_else(bad)?;
        let after = &uri[scheme_end + 3..];
        let slash = after.find('/').ok_or_else(bad)?;
        let address = uri[..scheme_end + 3 + slash].to_string();
        let path = after[slash..].trim_matches('/');
        let path = path.strip_prefix("v1/").ok_or_else(bad)?;
        let (engine, name) = path.rsplit_once("/keys/").ok_or_else(bad)?;
        if engine.is_empty() || name.is_empty() || name.contains('/') {
            return Err(bad());
        }
        Ok(VaultKey {
            address,
            engine_path: engine.to_string(),
            key_name: name.to_string(),
        })
    }

    /// The URI form (`ADDRESS/v1/ENGINE/keys/NAME`).
    pub fn uri(&self) -> String {
        format!(
            "{}/v1/{}/keys/{}",
            self.address.trim_end_matches('/'),
            self.engine_path,
            self.key_name
        )
    }
}

/// An Azure Key Vault key as sops records it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct AzureKvKey {
    /// The vault (`https://NAME.vault.azure.net`), as written in the file.
    pub vault_url: String,
    /// The key's name.
    pub name: String,
    /// The key's version.
    pub version: String,
}

impl AzureKvKey {
    /// Parses sops's `--azure-kv` URL: `https://NAME.vault.azure.net/keys/KEY/VERSION`.
    pub fn from_url(url: &str) -> Result<AzureKvKey> {
        let bad = || {
            Error::BadMasterKey {
            key: url.to_string(),
            what: "an Azure Key Vault key URL looks like https://VAULT.vault.azure.net/keys/NAME/VERSION"
                .into(),
        }
        };
        let url = url.trim();
        let scheme_end = url.find("://").ok_or_else(bad)?;
        let slash = url[scheme_end + 3..].find('/').ok_or_else(bad)? + scheme_end + 3;
        let parts: Vec<&str> = url[slash..].trim_matches('/').split('/').collect();
        match parts.as_slice() {
            ["keys", name, version] if !name.is_empty() && !version.is_empty() => Ok(AzureKvKey {
                vault_url: url[..slash].to_string(),
                name: name.to_string(),
                version: version.to_string(),
            }),
            _ => Err(bad()),
        }
    }

    /// The URL form (`VAULT_URL/keys/NAME/VERSION`).
    pub fn url(&self) -> String {
        format!(
            "{}/keys/{}/{}",
            self.vault_url.trim_end_matches('/'),
            self.name,
            self.version
        )
    }
}

/// One master key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MasterKey {
    /// An age X25519 recipient (`age1...`).
    Age(String),
    /// A PGP key's fingerprint.
    Pgp(String),
    /// An AWS KMS key.
    Kms(KmsKey),
    /// A Vault/OpenBao transit key.
    Vault(VaultKey),
    /// A Google Cloud KMS key, by resource id
    /// (`projects/P/locations/L/keyRings/R/cryptoKeys/K`).
    GcpKms(String),
    /// An Azure Key Vault key.
    AzureKv(AzureKvKey),
    /// A key type kept as it is but not used here (`hckms`): its
    /// type and a short identification.
    Other(String, String),
}

impl MasterKey {
    /// The file's name for the key type: `age`, `pgp`, `kms`, `hc_vault`, ...
    pub fn kind(&self) -> &str {
        match self {
            MasterKey::Age(_) => "age",
            MasterKey::Pgp(_) => "pgp",
            MasterKey::Kms(_) => "kms",
            MasterKey::Vault(_) => "hc_vault",
            MasterKey::GcpKms(_) => "gcp_kms",
            MasterKey::AzureKv(_) => "azure_kv",
            MasterKey::Other(k, _) => k,
        }
    }

    /// How messages name the key: the recipient, fingerprint, ARN or transit URI.
    pub fn id(&self) -> String {
        match self {
            MasterKey::Age(r) => r.clone(),
            MasterKey::Pgp(fp) => fp.clone(),
            MasterKey::Kms(k) => match &k.role {
                Some(r) => format!("{}+{r}", k.arn),
                None => k.arn.clone(),
            },
            MasterKey::Vault(v) => v.uri(),
            MasterKey::GcpKms(r) => r.clone(),
            MasterKey::AzureKv(k) => k.url(),
            MasterKey::Other(_, id) => id.clone(),
        }
    }

    /// Whether two keys are the same master key for `updatekeys` (PGP fingerprints compare
    /// without case or spaces).
    pub fn same(&self, other: &MasterKey) -> bool {
        match (self, other) {
            (MasterKey::Pgp(a), MasterKey::Pgp(b)) => norm_fp(a) == norm_fp(b),
            (MasterKey::Age(a), MasterKey::Age(b)) => a.trim() == b.trim(),
            _ => self == other,
        }
    }
}

impl fmt::Display for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind(), self.id())
    }
}

fn norm_fp(fp: &str) -> String {
    fp.chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase()
}

/// Parses sops's KMS list syntax: ARNs separated by commas, each optionally `ARN+ROLE_ARN`.
pub fn kms_keys_from_list(
    list: &str,
    context: &[(String, String)],
    aws_profile: Option<&str>,
) -> Vec<KmsKey> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            let (arn, role) = match s.split_once('+') {
                Some((a, r)) => (a.to_string(), Some(r.to_string())),
                None => (s.to_string(), None),
            };
            KmsKey {
                arn,
                role,
                context: context.to_vec(),
                aws_profile: aws_profile.filter(|p| !p.is_empty()).map(str::to_string),
            }
        })
        .collect()
}

/// Parses sops's GCP KMS list syntax (`--gcp-kms`, `SOPS_GCP_KMS_IDS`, a rule's `gcp_kms`):
/// resource ids separated by commas; spaces are dropped, as sops drops them.
pub fn gcp_kms_keys_from_list(list: &str) -> Vec<MasterKey> {
    list.split(',')
        .map(|s| s.chars().filter(|c| !c.is_whitespace()).collect::<String>())
        .filter(|s| !s.is_empty())
        .map(MasterKey::GcpKms)
        .collect()
}

/// A master key with the data key (or its share) wrapped for it.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyEntry {
    /// The key.
    pub key: MasterKey,
    /// The wrapped data key, as stored (`enc`).
    pub enc: String,
    /// When it was wrapped (`created_at`; age entries have none).
    pub created_at: Option<String>,
    /// For [`MasterKey::Other`], the entry as read, written back unchanged.
    pub(crate) raw: Option<Value>,
}

/// Wraps and unwraps data keys for master keys that need I/O (PGP, AWS KMS, Vault transit).
///
/// Implementations say why a key could not be used in their `Err` text: no identity,
/// access denied, key disabled, server unreachable. The text must hold no key material and
/// no token.
pub trait MasterKeyService: Send + Sync + fmt::Debug {
    /// Encrypts `plaintext` (a data key or a Shamir share) for `key`; returns the `enc` text
    /// to store. `file` is how messages name the file.
    fn wrap(
        &self,
        key: &MasterKey,
        plaintext: &[u8],
        file: &str,
    ) -> std::result::Result<String, String>;

    /// Decrypts an `enc` text wrapped for `key`. `Err` says why this key could not be used.
    fn unwrap(
        &self,
        key: &MasterKey,
        enc: &str,
        file: &str,
    ) -> std::result::Result<Zeroizing<Vec<u8>>, String>;
}

fn text(v: &Value) -> Option<String> {
    v.to_text().map(|t| t.to_string())
}

/// The map keys under which sops lists each key type.
pub(crate) const KEY_TYPES: [&str; 7] = [
    "age", "pgp", "kms", "hc_vault", "gcp_kms", "azure_kv", "hckms",
];

/// Reads the key lists of a `sops` block or of one entry of its `key_groups`.
pub(crate) fn parse_group(v: &Value, file: &str) -> Result<Vec<KeyEntry>> {
    let bad = |what: String| Error::Metadata {
        file: file.into(),
        what,
    };
    let mut out = Vec::new();
    for kind in KEY_TYPES {
        let Some(list) = v.get(kind) else { continue };
        for item in list.items() {
            let get = |k: &str| item.get(k).and_then(text).filter(|s| !s.is_empty());
            let need = |k: &str| get(k).ok_or_else(|| bad(format!("a {kind} entry has no {k}")));
            let key = match kind {
                "age" => MasterKey::Age(need("recipient")?),
                "pgp" => MasterKey::Pgp(need("fp")?),
                "kms" => MasterKey::Kms(KmsKey {
                    arn: need("arn")?,
                    role: get("role"),
                    context: item
                        .get("context")
                        .map(|c| {
                            let mut v: Vec<_> = c
                                .entries()
                                .filter_map(|(k, v)| Some((k.to_string(), text(v)?)))
                                .collect();
                            v.sort();
                            v
                        })
                        .unwrap_or_default(),
                    aws_profile: get("aws_profile"),
                }),
                "hc_vault" => MasterKey::Vault(VaultKey {
                    address: need("vault_address")?,
                    engine_path: need("engine_path")?,
                    key_name: need("key_name")?,
                }),
                "gcp_kms" => MasterKey::GcpKms(need("resource_id")?),
                "azure_kv" => MasterKey::AzureKv(AzureKvKey {
                    vault_url: need("vault_url")?,
                    name: need("name")?,
                    version: need("version")?,
                }),
                other => MasterKey::Other(
                    other.to_string(),
                    ["key_id", "vaultUrl"]
                        .iter()
                        .find_map(|k| get(k))
                        .unwrap_or_else(|| "?".into()),
                ),
            };
            out.push(KeyEntry {
                raw: matches!(key, MasterKey::Other(..)).then(|| item.clone()),
                key,
                enc: need("enc")?,
                created_at: get("created_at"),
            });
        }
    }
    Ok(out)
}

/// The lists of one group, by key type, in sops's alphabetical order.
pub(crate) fn group_items(group: &[KeyEntry]) -> Vec<MapItem> {
    let entry = |k: &str, v: Value| MapItem::Entry(k.to_string(), v);
    let mut kinds: Vec<&str> = Vec::new();
    for e in group {
        if !kinds.contains(&e.key.kind()) {
            kinds.push(e.key.kind());
        }
    }
    kinds.sort_unstable();
    kinds
        .into_iter()
        .map(|kind| {
            let items = group
                .iter()
                .filter(|e| e.key.kind() == kind)
                .map(|e| SeqItem::Value(entry_value(e)))
                .collect();
            entry(kind, Value::Seq(items))
        })
        .collect()
}

fn entry_value(e: &KeyEntry) -> Value {
    let entry = |k: &str, v: &str| MapItem::Entry(k.to_string(), Value::str(v));
    let created = e.created_at.clone().unwrap_or_default();
    let items = match &e.key {
        MasterKey::Age(r) => vec![entry("recipient", r), entry("enc", &e.enc)],
        MasterKey::Pgp(fp) => vec![
            entry("created_at", &created),
            entry("enc", &e.enc),
            entry("fp", fp),
        ],
        MasterKey::Kms(k) => {
            let mut v = vec![entry("arn", &k.arn)];
            if let Some(r) = &k.role {
                v.push(entry("role", r));
            }
            if !k.context.is_empty() {
                v.push(MapItem::Entry(
                    "context".into(),
                    Value::Map(k.context.iter().map(|(a, b)| entry(a, b)).collect()),
                ));
            }
            v.push(entry("created_at", &created));
            v.push(entry("enc", &e.enc));
            v.push(entry("aws_profile", k.aws_profile.as_deref().unwrap_or("")));
            v
        }
        MasterKey::Vault(k) => vec![
            entry("vault_address", &k.address),
            entry("engine_path", &k.engine_path),
            entry("key_name", &k.key_name),
            entry("created_at", &created),
            entry("enc", &e.enc),
        ],
        MasterKey::GcpKms(r) => vec![
            entry("resource_id", r),
            entry("created_at", &created),
            entry("enc", &e.enc),
        ],
        MasterKey::AzureKv(k) => vec![
            entry("vault_url", &k.vault_url),
            entry("name", &k.name),
            entry("version", &k.version),
            entry("created_at", &created),
            entry("enc", &e.enc),
        ],
        MasterKey::Other(..) => return e.raw.clone().unwrap_or(Value::Map(Vec::new())),
    };
    Value::Map(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transit_uris() {
        let k = VaultKey::from_uri("http://127.0.0.1:8200/v1/sops/transit/keys/app").unwrap();
        assert_eq!(k.address, "http://127.0.0.1:8200");
        assert_eq!(k.engine_path, "sops/transit");
        assert_eq!(k.key_name, "app");
        assert_eq!(k.uri(), "http://127.0.0.1:8200/v1/sops/transit/keys/app");
        assert!(VaultKey::from_uri("http://x/transit/keys/a").is_err());
        assert!(VaultKey::from_uri("http://x/v1/transit/a").is_err());
    }

    #[test]
    fn cloud_key_lists_and_urls() {
        let ids = gcp_kms_keys_from_list(" projects/p/locations/l/keyRings/r/cryptoKeys/a , ,b");
        assert_eq!(
            ids,
            [
                MasterKey::GcpKms("projects/p/locations/l/keyRings/r/cryptoKeys/a".into()),
                MasterKey::GcpKms("b".into())
            ]
        );
        let k = AzureKvKey::from_url("https://v1.vault.azure.net/keys/sops/abc/").unwrap();
        assert_eq!(
            (k.vault_url.as_str(), k.name.as_str(), k.version.as_str()),
            ("https://v1.vault.azure.net", "sops", "abc")
        );
        assert_eq!(k.url(), "https://v1.vault.azure.net/keys/sops/abc");
        for bad in [
            "https://v.vault.azure.net/keys/sops",
            "https://v.vault.azure.net/secrets/a/b",
            "v.vault.azure.net/keys/a/b",
        ] {
            assert!(AzureKvKey::from_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn kms_lists() {
        let ks = kms_keys_from_list("arn:a, arn:b+arn:role", &[], Some("p"));
        assert_eq!(ks.len(), 2);
        assert_eq!(ks[1].role.as_deref(), Some("arn:role"));
        assert_eq!(ks[0].aws_profile.as_deref(), Some("p"));
    }
}
