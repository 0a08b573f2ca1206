//! Azure Key Vault secrets over REST (`api-version=7.4`) with an Entra ID token ([`auth`]).
//!
//! - References: vals' `ref+azurekeyvault://VAULT/SECRET[/VERSION][#/pointer]` (one request
//!   per distinct secret and version), argocd-vault-plugin's `<path:VAULT#SECRET[#VERSION]>`
//!   (as argocd-vault-plugin does, the vault's secrets are listed, then each enabled one read
//!   once).
//! - Vaults: a name (`VAULT.vault.azure.net`, or the sovereign cloud's suffix that
//!   `AZURE_AUTHORITY_HOST` implies) or a full Key Vault host name (`VAULT.vault.azure.cn`);
//!   any other host is refused, so a reference can never send the token elsewhere. The
//!   operator may route every vault to one address with `KUSTODIAN_AZURE_KEYVAULT_ENDPOINT`
//!   (a private endpoint or a test stand-in), and trust extra CAs with `AZURE_CA_BUNDLE`.
//!
//! Messages name the vault, the secret, Key Vault's error code and what to grant, never a value.

pub(crate) mod auth;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;
use zeroize::Zeroizing;

use self::auth::AzureAuth;
use crate::aws::http::Call;
use crate::aws::{lock, structured, Failure};
use crate::gcp::oauth;
use crate::{Config, Request, SecretValue, Store, StoreError};

const API_VERSION: &str = "7.4";
pub(crate) const ENDPOINT_VAR: &str = "KUSTODIAN_AZURE_KEYVAULT_ENDPOINT";
/// Key Vault's DNS suffixes: public cloud, China, US Government, Germany.
pub(crate) const SUFFIXES: &[&str] = &[
    "vault.azure.net",
    "vault.azure.cn",
    "vault.usgovcloudapi.net",
    "vault.microsoftazure.de",
];
/// Most pages of a vault's secret list followed.
const MAX_PAGES: usize = 50;

type Cell = Arc<OnceLock<Result<SecretValue, Failure>>>;

/// The Azure Key Vault store.
pub struct KeyVault {
    auth: Result<AzureAuth, Failure>,
    endpoint: Option<String>,
    default_suffix: &'static str,
    reads: Mutex<HashMap<(String, String, String), Cell>>,
    lists: Mutex<HashMap<(String, String), Cell>>,
}

/// Where one vault is and the token scope for it.
struct Vault {
    name: String,
    base: String,
    scope: String,
}

impl KeyVault {
    /// A store from the operator's settings.
    pub fn new(c: &Config) -> Result<Self, StoreError> {
        let http = crate::gcp::cloud_http(c, Some(tls(c)?))?;
        let endpoint = c
            .var(ENDPOINT_VAR)
            .map(|e| e.trim().trim_end_matches('/').to_string());
        if let Some(e) = &endpoint {
            oauth::check_transport(e, ENDPOINT_VAR).map_err(|e| e.to_store_error("azure"))?;
        }
        let authority = c.var("AZURE_AUTHORITY_HOST").unwrap_or("");
        let default_suffix = if authority.contains("chinacloudapi.cn") {
            SUFFIXES[1]
        } else if authority.contains("microsoftonline.us") {
            SUFFIXES[2]
        } else if authority.contains("microsoftonline.de") {
            SUFFIXES[3]
        } else {
            SUFFIXES[0]
        };
        Ok(KeyVault {
            auth: AzureAuth::from_config(c, http),
            endpoint,
            default_suffix,
            reads: Mutex::default(),
            lists: Mutex::default(),
        })
    }

    /// The factory [`crate::Stores`] registers.
    pub fn factory(c: &Config) -> Result<Arc<dyn Store>, StoreError> {
        Ok(Arc::new(Self::new(c)?))
    }

    fn vault(&self, name: &str, path: &str) -> Result<Vault, Failure> {
        let invalid = |reason: String| Failure::Invalid {
            path: path.to_string(),
            reason,
        };
        let name = name.to_ascii_lowercase();
        let (short, suffix) = match name.split_once('.') {
            None => (name.as_str(), self.default_suffix),
            Some((short, rest)) => match SUFFIXES.iter().find(|s| **s == rest) {
                Some(s) => (short, *s),
                None => {
                    return Err(invalid(format!(
                    "{name:?} is not a Key Vault host: write the vault's name, or a host under {}",
                    SUFFIXES.join(", ")
                )))
                }
            },
        };
        if !(3..=24).contains(&short.len())
            || !short
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(invalid(
                "a Key Vault name is 3 to 24 letters, digits and dashes".to_string(),
            ));
        }
        Ok(Vault {
            name: short.to_string(),
            base: self
                .endpoint
                .clone()
                .unwrap_or_else(|| format!("https://{short}.{suffix}")),
            scope: format!("https://{suffix}/.default"),
        })
    }

    /// One Key Vault GET (`/secrets/...?api-version=7.4`) with the vault's token.
    fn get(&self, vault: &Vault, path: &str, shown: &str) -> Result<SecretValue, Failure> {
        let auth = self.auth.as_ref().map_err(Clone::clone)?;
        let token = auth.access_token(&vault.scope)?;
        let url = if path.starts_with("https://") || path.starts_with("http://") {
            path.to_string()
        } else {
            format!("{}{path}", vault.base)
        };
        let call = Call {
            method: "GET",
            url,
            query: Vec::new(),
            headers: vec![("authorization", token.bearer())],
            body: Zeroizing::new(Vec::new()),
            sign: None,
        };
        let a = auth.http().send(&call).map_err(|reason| {
            auth::tls_hint(Failure::Unavailable(format!(
                "Key Vault {}: {reason}",
                vault.name
            )))
        })?;
        let v: Value = serde_json::from_str(&a.body).map_err(|_| Failure::Backend {
            path: shown.to_string(),
            reason: format!(
                "Key Vault answered HTTP {} with something that is not JSON",
                a.status
            ),
        })?;
        let v = SecretValue::new(v);
        if a.status == 401 {
            auth.forget(&vault.scope);
        }
        if !(200..300).contains(&a.status) {
            return Err(api_error(v.expose(), a.status, shown, &auth.who()));
        }
        Ok(v)
    }

    /// A secret's value at a version (`""`: the current one), once per render.
    fn secret(&self, vault: &Vault, secret: &str, version: &str) -> Result<SecretValue, Failure> {
        let shown = if version.is_empty() {
            format!("{}/{secret}", vault.name)
        } else {
            format!("{}/{secret} (version {version})", vault.name)
        };
        let key = (
            vault.base.clone() + "|" + &vault.name,
            secret.to_string(),
            version.to_string(),
        );
        let cell = lock(&self.reads).entry(key).or_default().clone();
        cell.get_or_init(|| {
            let enc = crate::http::encode_segment;
            let v = self.get(
                vault,
                &format!(
                    "/secrets/{}/{}?api-version={API_VERSION}",
                    enc(secret),
                    enc(version)
                ),
                &shown,
            )?;
            let value = v
                .expose()
                .get("value")
                .and_then(Value::as_str)
                .unwrap_or_default();
            Ok(SecretValue::new(Value::String(value.to_string())))
        })
        .clone()
    }

    /// argocd-vault-plugin's view of a vault: every enabled secret by name.
    fn all(&self, vault: &Vault, version: &str) -> Result<SecretValue, Failure> {
        let key = (vault.base.clone() + "|" + &vault.name, version.to_string());
        let cell = lock(&self.lists).entry(key).or_default().clone();
        cell.get_or_init(|| {
            let shown = format!("{} (the vault's secret list)", vault.name);
            let mut names = Vec::new();
            let mut next = Some(format!("/secrets?api-version={API_VERSION}"));
            let mut pages = 0;
            while let Some(page) = next.take() {
                pages += 1;
                if pages > MAX_PAGES {
                    break;
                }
                let v = self.get(vault, &page, &shown)?;
                let v = v.expose();
                for item in v
                    .get("value")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let enabled =
                        item.pointer("/attributes/enabled").and_then(Value::as_bool) != Some(false);
                    let name = item
                        .get("id")
                        .and_then(Value::as_str)
                        .and_then(|id| id.trim_end_matches('/').rsplit('/').next())
                        .map(str::to_string);
                    if let (true, Some(n)) = (enabled, name) {
                        names.push(n);
                    }
                }
                // Follow nextLink only within the vault's own address: the token goes with it.
                next = v
                    .get("nextLink")
                    .and_then(Value::as_str)
                    .filter(|l| oauth::origin(l) == oauth::origin(&vault.base))
                    .map(str::to_string);
            }
            let mut doc = serde_json::Map::new();
            for n in names {
                match self.secret(vault, &n, version) {
                    Ok(v) => {
                        doc.insert(n, v.expose().clone());
                    }
                    Err(Failure::NotFound(_)) if !version.is_empty() => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(SecretValue::new(Value::Object(doc)))
        })
        .clone()
    }

    fn read(&self, req: &Request) -> Result<SecretValue, Failure> {
        for (k, _) in &req.params {
            if !matches!(k.as_str(), "syntax" | "kv-version") {
                return Err(Failure::Invalid {
                    path: req.path.clone(),
                    reason: format!("the azure store takes no ?{k}=; write the version as ref+azurekeyvault://VAULT/SECRET/VERSION"),
                });
            }
        }
        let parts: Vec<&str> = req.path.trim_matches('/').split('/').collect();
        let version = req.version.as_deref().unwrap_or("");
        let (vault, secret, version) = match parts.as_slice() {
            [v] => {
                let vault = self.vault(v, &req.path)?;
                check_name(version, &req.path, "version")?;
                return self.all(&vault, version);
            }
            [v, s] => (*v, *s, version),
            [v, s, ver] if version.is_empty() || version == *ver => (*v, *s, *ver),
            _ => {
                return Err(Failure::Invalid {
                    path: req.path.clone(),
                    reason: "an Azure Key Vault secret is written ref+azurekeyvault://VAULT/SECRET[/VERSION] (vals) or <path:VAULT#SECRET[#VERSION]> (argocd-vault-plugin)".into(),
                })
            }
        };
        let vault = self.vault(vault, &req.path)?;
        check_name(secret, &req.path, "secret")?;
        check_name(version, &req.path, "version")?;
        if secret.is_empty() {
            return Err(Failure::Invalid {
                path: req.path.clone(),
                reason: "the secret name is empty".into(),
            });
        }
        let value = self.secret(&vault, secret, version)?;
        Ok(SecretValue::new(structured(
            value.expose().as_str().unwrap_or_default(),
        )))
    }
}

fn check_name(s: &str, path: &str, what: &str) -> Result<(), Failure> {
    if s.len() <= 127 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        Ok(())
    } else {
        Err(Failure::Invalid {
            path: path.to_string(),
            reason: format!("a Key Vault {what} name is letters, digits and dashes"),
        })
    }
}

impl Store for KeyVault {
    fn name(&self) -> &str {
        "azure"
    }

    fn fetch(&self, req: &Request) -> Result<SecretValue, StoreError> {
        self.read(req).map_err(|e| e.to_store_error("azure"))
    }
}

/// Key Vault's error (`{"error": {"code": "SecretNotFound", "message": ...}}`).
fn api_error(v: &Value, status: u16, shown: &str, who: &str) -> Failure {
    let code = oauth::text_field(v, "/error/code").unwrap_or_else(|| format!("HTTP {status}"));
    let inner = oauth::text_field(v, "/error/innererror/code")
        .map(|c| format!("/{c}"))
        .unwrap_or_default();
    match status {
        404 => Failure::NotFound(format!("{shown}: no such secret or version ({code})")),
        403 => Failure::Denied {
            path: shown.to_string(),
            detail: format!(
                "{code}{inner}; give {who} the Key Vault Secrets User role on the vault (RBAC), or a Get secret permission in its access policies"
            ),
        },
        401 => Failure::Auth(format!(
            "Key Vault refused the token of {who} ({code}); check that the token's tenant is the vault's (the cached token was dropped: the next render logs in anew)"
        )),
        429 => Failure::Backend {
            path: shown.to_string(),
            reason: format!("{code}: still throttled after the retries; lower the render concurrency or raise KUSTODIAN_CLOUD_MAX_ATTEMPTS"),
        },
        _ => Failure::Backend {
            path: shown.to_string(),
            reason: match oauth::text_field(v, "/error/message") {
                Some(m) => format!("HTTP {status} {code}: {m}"),
                None => format!("HTTP {status} {code}"),
            },
        },
    }
}

/// TLS trust: the operator's `AZURE_CA_BUNDLE` (PEM), added to the system's CA bundle
/// (`SSL_CERT_FILE` or the usual paths); the built-in roots when neither is there.
fn tls(c: &Config) -> Result<ureq::tls::TlsConfig, StoreError> {
    let mut roots = Vec::new();
    if let Some(f) = c.var("AZURE_CA_BUNDLE") {
        roots.extend(crate::vault::http::read_certs(
            std::path::Path::new(f),
            "AZURE_CA_BUNDLE",
        )?);
        let system = c
            .var("SSL_CERT_FILE")
            .map(str::to_string)
            .into_iter()
            .chain(
                [
                    "/etc/ssl/certs/ca-certificates.crt",
                    "/etc/pki/tls/certs/ca-bundle.crt",
                    "/etc/ssl/cert.pem",
                ]
                .map(str::to_string),
            );
        for f in system {
            if let Ok(certs) =
                crate::vault::http::read_certs(std::path::Path::new(&f), "SSL_CERT_FILE")
            {
                roots.extend(certs);
                break;
            }
        }
    }
    let b = ureq::tls::TlsConfig::builder();
    Ok(if roots.is_empty() {
        b.build()
    } else {
        b.root_certs(ureq::tls::RootCerts::new_with_certs(&roots))
            .build()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(vars: &[(&str, &str)]) -> KeyVault {
        let c = Config::from_vars(
            std::path::Path::new("/"),
            std::path::Path::new("/"),
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        );
        KeyVault::new(&c).unwrap()
    }

    #[test]
    fn vault_hosts_are_key_vault_hosts_only() {
        let kv = store(&[]);
        let v = kv.vault("myvault", "p").unwrap();
        assert_eq!(v.base, "https://myvault.vault.azure.net");
        assert_eq!(v.scope, "https://vault.azure.net/.default");
        let v = kv.vault("cnvault.vault.azure.cn", "p").unwrap();
        assert_eq!(v.base, "https://cnvault.vault.azure.cn");
        assert_eq!(v.scope, "https://vault.azure.cn/.default");
        assert!(kv.vault("evil.example.com", "p").is_err());
        assert!(kv.vault("x.vault.azure.net.evil.com", "p").is_err());
        assert!(kv.vault("a", "p").is_err());
        let kv = store(&[("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.us")]);
        assert_eq!(
            kv.vault("gov", "p").unwrap().base,
            "https://gov.vault.usgovcloudapi.net"
        );
    }
}
