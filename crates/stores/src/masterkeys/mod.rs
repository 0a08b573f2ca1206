//! The SOPS master keys that need I/O: PGP through the `gpg` program ([`pgp`]), AWS KMS
//! through the AWS stores' signer and credential chain ([`kms`]), Vault/OpenBao transit
//! through the Vault store's client, login and settings ([`transit`]), Google Cloud KMS
//! through the GCP store's credentials ([`gcpkms`]), Azure Key Vault keys through the Azure
//! store's credentials ([`azkv`]).
//!
//! [`Services`] implements `kustodian_sops::MasterKeyService`; [`crate::sops_files::key_sources`]
//! puts it in the `KeySources` every decryption path loads, so render, the plugins and the
//! CLI verbs all use the same keys.
//!
//! Who controls what: endpoints and credentials come from the operator's environment only
//! ([`Config::var`]). A file's `hc_vault.vault_address` and `kms.role` are written by whoever
//! writes the repository: the Vault token is sent only when the file's address is the
//! operator's `VAULT_ADDR`, and a KMS role is assumed only when the operator allows it. A
//! `gcp_kms` entry's `resource_id` only chooses a key at the operator's Cloud KMS endpoint; an
//! `azure_kv` entry's `vault_url` must be a Key Vault host (or the operator's endpoint).
//! Messages say why a key could not be used, never a data key, a token or a value.

mod azkv;
mod gcpkms;
mod kms;
mod pgp;
mod transit;

use std::sync::{Arc, OnceLock};

use kustodian_sops::{MasterKey, MasterKeyService, Zeroizing};

use crate::aws::Aws;
use crate::vault::Vault;
use crate::Config;

/// The master-key service of one process (or render): clients are made on first use.
pub struct Services {
    config: Config,
    vault: OnceLock<Result<Vault, String>>,
    aws: OnceLock<Result<Aws, String>>,
    gcp: OnceLock<Result<gcpkms::GcpKms, String>>,
    azure: OnceLock<Result<azkv::AzureKv, String>>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("masterkeys::Services")
    }
}

impl Services {
    /// The service for the operator's settings in `config`.
    pub fn new(config: &Config) -> Arc<Services> {
        Arc::new(Services {
            config: config.clone(),
            vault: OnceLock::new(),
            aws: OnceLock::new(),
            gcp: OnceLock::new(),
            azure: OnceLock::new(),
        })
    }

    fn vault(&self) -> Result<&Vault, String> {
        self.vault
            .get_or_init(|| Vault::new(&self.config).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(Clone::clone)
    }

    fn aws(&self) -> Result<&Aws, String> {
        self.aws
            .get_or_init(|| Aws::from_config(&self.config).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(Clone::clone)
    }

    fn gcp(&self) -> Result<&gcpkms::GcpKms, String> {
        self.gcp
            .get_or_init(|| gcpkms::GcpKms::new(&self.config))
            .as_ref()
            .map_err(Clone::clone)
    }

    fn azure(&self) -> Result<&azkv::AzureKv, String> {
        self.azure
            .get_or_init(|| azkv::AzureKv::new(&self.config))
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl MasterKeyService for Services {
    fn wrap(&self, key: &MasterKey, plaintext: &[u8], file: &str) -> Result<String, String> {
        match key {
            MasterKey::Pgp(fp) => pgp::encrypt(&self.config, fp, plaintext),
            MasterKey::Kms(k) => kms::encrypt(self.aws()?, k, plaintext),
            MasterKey::Vault(k) => transit::encrypt(self.vault()?, k, plaintext, file),
            MasterKey::GcpKms(id) => self.gcp()?.encrypt(id, plaintext),
            MasterKey::AzureKv(k) => self.azure()?.encrypt(k, plaintext, file),
            other => Err(format!("{} keys are not supported", other.kind())),
        }
    }

    fn unwrap(&self, key: &MasterKey, enc: &str, file: &str) -> Result<Zeroizing<Vec<u8>>, String> {
        match key {
            MasterKey::Pgp(_) => pgp::decrypt(&self.config, enc),
            MasterKey::Kms(k) => kms::decrypt(self.aws()?, k, enc),
            MasterKey::Vault(k) => transit::decrypt(self.vault()?, k, enc, file),
            MasterKey::GcpKms(id) => self.gcp()?.decrypt(id, enc),
            MasterKey::AzureKv(k) => self.azure()?.decrypt(k, enc, file),
            other => Err(format!("{} keys are not supported", other.kind())),
        }
    }
}
