//! Azure Key Vault master keys through the Azure store's credentials and TLS settings: Key
//! Vault's `POST {vault}/keys/{name}/{version}/encrypt` and `/decrypt` (`api-version=7.4`,
//! `{"alg": "RSA-OAEP-256", "value": base64url}`), the operations sops uses, with an Entra ID
//! token for the vault's cloud.
//!
//! sops stores `enc` as the unpadded base64url of the RSA-OAEP ciphertext, which is Key Vault's
//! `value` field as it is.
//!
//! A file's `vault_url` is written by whoever writes the repository, so the token only goes
//! to Key Vault: the host must be `NAME.vault.azure.net` (or a sovereign cloud's Key Vault
//! suffix), over https. The operator's `KUSTODIAN_AZURE_KEYVAULT_ENDPOINT` (a private endpoint,
//! a test stand-in) receives every vault's requests, and a file may also name it exactly.

use base64::Engine as _;
use kustodian_sops::{AzureKvKey, Zeroizing};
use serde_json::{json, Value};

use crate::aws::http::Call;
use crate::azure::auth::AzureAuth;
use crate::azure::{ENDPOINT_VAR, SUFFIXES};
use crate::gcp::oauth;
use crate::http::shorten;
use crate::{Config, SecretValue};

const API_VERSION: &str = "7.4";

/// The operator's Azure credentials and Key Vault endpoint.
pub(super) struct AzureKv {
    auth: AzureAuth,
    endpoint: Option<String>,
}

impl AzureKv {
    /// The client for the operator's settings.
    pub(super) fn new(c: &Config) -> Result<AzureKv, String> {
        let endpoint = c
            .var(ENDPOINT_VAR)
            .map(|e| e.trim().trim_end_matches('/').to_string());
        if let Some(e) = &endpoint {
            oauth::check_transport(e, ENDPOINT_VAR)
                .map_err(|e| e.to_store_error("azure_kv").to_string())?;
        }
        let auth = AzureAuth::from_operator(c).map_err(|e| e.to_string())?;
        Ok(AzureKv { auth, endpoint })
    }

    /// Where the key's vault is reached and the token scope for it; refuses a `vault_url`
    /// outside Key Vault that is not the operator's endpoint.
    fn place(&self, k: &AzureKvKey, file: &str) -> Result<(String, String), String> {
        let url = k.vault_url.trim().trim_end_matches('/');
        let host = url
            .strip_prefix("https://")
            .filter(|h| !h.contains(['/', '?', '#', '@']))
            .map(str::to_ascii_lowercase);
        let suffix = host.as_deref().and_then(|h| {
            let (name, rest) = h.split_once('.')?;
            let ok = (3..=24).contains(&name.len())
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            SUFFIXES.iter().find(|s| ok && **s == rest)
        });
        match (suffix, &self.endpoint) {
            (Some(s), Some(e)) => Ok((e.clone(), format!("https://{s}/.default"))),
            (Some(s), None) => Ok((url.to_string(), format!("https://{s}/.default"))),
            (None, Some(e)) if e.eq_ignore_ascii_case(url) => {
                Ok((e.clone(), format!("https://{}/.default", SUFFIXES[0])))
            }
            _ => Err(format!(
                "{file} names the Key Vault {}, which is not a Key Vault host (https://NAME.{}); \
                 the Azure token is only sent to Key Vault or to the operator's {ENDPOINT_VAR}",
                shorten(url, 200),
                SUFFIXES[0]
            )),
        }
    }

    fn call(&self, k: &AzureKvKey, op: &str, value: &str, file: &str) -> Result<String, String> {
        let (base, scope) = self.place(k, file)?;
        let seg = crate::http::encode_segment;
        let token = self
            .auth
            .access_token(&scope)
            .map_err(|e| e.to_store_error("azure_kv").to_string())?;
        let call = Call {
            method: "POST",
            url: format!(
                "{base}/keys/{}/{}/{op}?api-version={API_VERSION}",
                seg(&k.name),
                seg(&k.version)
            ),
            query: Vec::new(),
            headers: vec![
                ("authorization", token.bearer()),
                ("content-type", "application/json".to_string()),
            ],
            body: Zeroizing::new(
                json!({ "alg": "RSA-OAEP-256", "value": value })
                    .to_string()
                    .into_bytes(),
            ),
            sign: None,
        };
        let a = self.auth.http().send(&call).map_err(|reason| {
            format!("Key Vault: {reason}; check the vault's address, {ENDPOINT_VAR} and AZURE_CA_BUNDLE")
        })?;
        let v = SecretValue::new(serde_json::from_str(&a.body).map_err(|_| {
            format!(
                "Key Vault answered HTTP {} with something that is not JSON",
                a.status
            )
        })?);
        if (200..300).contains(&a.status) {
            return v
                .expose()
                .get("value")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .ok_or_else(|| "Key Vault's answer has no value".into());
        }
        if a.status == 401 {
            self.auth.forget(&scope);
        }
        let code = oauth::text_field(v.expose(), "/error/code")
            .unwrap_or_else(|| format!("HTTP {}", a.status));
        let message = shorten(
            &oauth::text_field(v.expose(), "/error/message").unwrap_or_default(),
            200,
        );
        let who = self.auth.who();
        Err(match a.status {
            404 => format!(
                "Key Vault has no key {} version {} ({code})",
                k.name, k.version
            ),
            403 => format!(
                "{code}: grant {who} the Key Vault Crypto User role (keys {op}) on the vault"
            ),
            401 => format!(
                "Key Vault refused the token of {who} ({code}); the cached token was dropped, \
                 try again to log in anew"
            ),
            _ if message.is_empty() => format!("Key Vault refused {op} ({code})"),
            _ => format!("Key Vault refused {op} ({code}: {message})"),
        })
    }

    /// Encrypts a data key (or share); the base64url ciphertext sops stores as `enc`.
    pub(super) fn encrypt(
        &self,
        k: &AzureKvKey,
        plaintext: &[u8],
        file: &str,
    ) -> Result<String, String> {
        let b64 =
            Zeroizing::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(plaintext));
        self.call(k, "encrypt", &b64, file)
    }

    /// Decrypts a stored `enc`.
    pub(super) fn decrypt(
        &self,
        k: &AzureKvKey,
        enc: &str,
        file: &str,
    ) -> Result<Zeroizing<Vec<u8>>, String> {
        let enc = enc.trim().trim_end_matches('=');
        if base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(enc)
            .is_err()
        {
            return Err(
                "the enc of this azure_kv entry is not base64url (the file is damaged)".into(),
            );
        }
        let b64 = Zeroizing::new(self.call(k, "decrypt", enc, file)?);
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(b64.trim_end_matches('='))
            .map(Zeroizing::new)
            .map_err(|_| "Key Vault's value is not base64url".into())
    }
}
