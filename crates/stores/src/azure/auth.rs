//! Microsoft Entra ID (Azure AD) access tokens, chosen the way Azure's `DefaultAzureCredential`
//! chooses them, from the operator's environment only:
//!
//! 1. `AZURE_TENANT_ID` + `AZURE_CLIENT_ID` + `AZURE_CLIENT_SECRET`: client credentials;
//! 2. ... + `AZURE_CLIENT_CERTIFICATE_PATH` (PEM, certificate and private key): a client
//!    assertion (RS256 JWT with the certificate's `x5t`) signed with the key;
//! 3. ... + `AZURE_FEDERATED_TOKEN_FILE` (Azure Workload Identity): the projected Kubernetes
//!    service-account token is the client assertion;
//! 4. otherwise managed identity from IMDS (`AZURE_POD_IDENTITY_AUTHORITY_HOST` overrides
//!    `http://169.254.169.254`), `AZURE_CLIENT_ID` picking a user-assigned identity.
//!
//! Tokens go to `AZURE_AUTHORITY_HOST` (default `https://login.microsoftonline.com`), one per
//! scope (`https://vault.azure.net/.default`, or a sovereign cloud's), cached on disk (0600)
//! per credential. Messages name the client id, the tenant and Entra's error code
//! (`AADSTS...`), never a secret, an assertion or a token.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::aws::http::{Answer, Call, Http};
use crate::aws::{lock, Failure};
use crate::gcp::oauth::{self, SigningKey, Token};
use crate::Config;

/// One scope's token, fetched once.
type TokenCell = Arc<OnceLock<Result<Token, Failure>>>;

const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";
const DEFAULT_IMDS: &str = "http://169.254.169.254";

enum Source {
    Secret(Zeroizing<String>),
    Certificate {
        key: Box<SigningKey>,
        thumbprint: String,
        fingerprint: String,
    },
    Federated(PathBuf),
    Imds {
        host: String,
        client_id: Option<String>,
    },
}

/// The operator's Azure credentials and the tokens they give, one per scope and process.
pub(crate) struct AzureAuth {
    source: Source,
    tenant: String,
    client_id: String,
    authority: String,
    http: Http,
    cache_dir: Option<PathBuf>,
    tokens: Mutex<HashMap<String, TokenCell>>,
}

impl AzureAuth {
    pub(crate) fn from_config(c: &Config, http: Http) -> Result<AzureAuth, Failure> {
        let authority = c
            .var("AZURE_AUTHORITY_HOST")
            .unwrap_or(DEFAULT_AUTHORITY)
            .trim()
            .trim_end_matches('/')
            .to_string();
        oauth::check_transport(&authority, "AZURE_AUTHORITY_HOST")?;
        let tenant = c.var("AZURE_TENANT_ID").unwrap_or("").trim().to_string();
        let client_id = c.var("AZURE_CLIENT_ID").unwrap_or("").trim().to_string();
        let source = if let Some(s) = c.var("AZURE_CLIENT_SECRET") {
            Source::Secret(Zeroizing::new(s.to_string()))
        } else if let Some(p) = c.var("AZURE_CLIENT_CERTIFICATE_PATH") {
            certificate(PathBuf::from(p))?
        } else if let Some(p) = c.var("AZURE_FEDERATED_TOKEN_FILE") {
            Source::Federated(PathBuf::from(p))
        } else {
            let host = c
                .var("AZURE_POD_IDENTITY_AUTHORITY_HOST")
                .unwrap_or(DEFAULT_IMDS)
                .trim()
                .trim_end_matches('/')
                .to_string();
            return Ok(AzureAuth {
                source: Source::Imds {
                    host,
                    client_id: (!client_id.is_empty()).then(|| client_id.clone()),
                },
                tenant,
                client_id,
                authority,
                http,
                cache_dir: oauth::cache_dir(c, "azure-tokens", "KUSTODIAN_AZURE_TOKEN_CACHE"),
                tokens: Mutex::default(),
            });
        };
        let id_ok = |v: &str| {
            !v.is_empty()
                && v.len() <= 100
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        };
        if !id_ok(&tenant) || !id_ok(&client_id) {
            return Err(Failure::Config(
                "AZURE_TENANT_ID and AZURE_CLIENT_ID must both be set (GUIDs or a tenant's \
                 domain name) to log in with a client secret, a certificate or a federated token"
                    .into(),
            ));
        }
        Ok(AzureAuth {
            source,
            tenant,
            client_id,
            authority,
            http,
            cache_dir: oauth::cache_dir(c, "azure-tokens", "KUSTODIAN_AZURE_TOKEN_CACHE"),
            tokens: Mutex::default(),
        })
    }

    /// The operator's credentials with a client of their own (`KUSTODIAN_CLOUD_*` limits,
    /// `AZURE_CA_BUNDLE`): what a SOPS `azure_kv` key needs to call `access_token` with the
    /// scope `https://vault.azure.net/.default`.
    pub(crate) fn from_operator(c: &Config) -> Result<AzureAuth, crate::StoreError> {
        let http = crate::gcp::cloud_http(c, Some(super::tls(c)?))?;
        Self::from_config(c, http).map_err(|e| e.to_store_error("azure"))
    }

    /// The HTTP client the credentials and the store share.
    pub(crate) fn http(&self) -> &Http {
        &self.http
    }

    /// Who asks, in messages: the application (client id) and tenant, or the managed identity.
    pub(crate) fn who(&self) -> String {
        match &self.source {
            Source::Imds { client_id, .. } => match client_id {
                Some(id) => format!("the managed identity {id}"),
                None => "the managed identity".to_string(),
            },
            _ => format!(
                "the application {} (tenant {})",
                self.client_id, self.tenant
            ),
        }
    }

    /// A token for `scope` (`https://vault.azure.net/.default`): cached on disk, fetched once
    /// per process. The SOPS `azure_kv` keys can use the same call.
    pub(crate) fn access_token(&self, scope: &str) -> Result<Token, Failure> {
        let cell = lock(&self.tokens)
            .entry(scope.to_string())
            .or_default()
            .clone();
        cell.get_or_init(|| {
            let parts = self.cache_parts(scope);
            let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
            oauth::cached(self.cache_dir.as_deref(), &parts, "Azure", || {
                self.fetch(scope)
            })
        })
        .clone()
    }

    /// Drops the cached token for `scope` after Key Vault refused it, so that the next render
    /// logs in.
    pub(crate) fn forget(&self, scope: &str) {
        let parts = self.cache_parts(scope);
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        oauth::forget(self.cache_dir.as_deref(), &parts);
    }

    fn cache_parts(&self, scope: &str) -> Vec<String> {
        let (kind, id) = self.cache_key();
        vec![
            "azure-token-v1".into(),
            kind.into(),
            id,
            self.authority.clone(),
            self.tenant.clone(),
            self.client_id.clone(),
            scope.into(),
        ]
    }

    fn cache_key(&self) -> (&'static str, String) {
        match &self.source {
            Source::Secret(s) => ("secret", oauth::fingerprint(s.as_bytes())),
            Source::Certificate { fingerprint, .. } => ("certificate", fingerprint.clone()),
            Source::Federated(f) => (
                "federated",
                oauth::read_file(f, "AZURE_FEDERATED_TOKEN_FILE")
                    .map(|b| oauth::fingerprint(&b))
                    .unwrap_or_default(),
            ),
            Source::Imds { host, client_id } => (
                "imds",
                format!("{host}\n{}", client_id.as_deref().unwrap_or("")),
            ),
        }
    }

    fn fetch(&self, scope: &str) -> Result<Token, Failure> {
        let token_url = format!("{}/{}/oauth2/v2.0/token", self.authority, self.tenant);
        const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
        let mut fields: Vec<(&str, &str)> = vec![
            ("grant_type", "client_credentials"),
            ("client_id", &self.client_id),
            ("scope", scope),
        ];
        let assertion: Zeroizing<String>;
        match &self.source {
            Source::Secret(s) => fields.push(("client_secret", s)),
            Source::Certificate {
                key, thumbprint, ..
            } => {
                let now = oauth::now_s();
                let mut jti = [0u8; 16];
                ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut jti)
                    .map_err(|_| Failure::Auth("no randomness for the client assertion".into()))?;
                assertion = key
                    .jwt(
                        &json!({"alg": "RS256", "typ": "JWT", "x5t": thumbprint}),
                        &json!({
                            "aud": token_url, "iss": self.client_id, "sub": self.client_id,
                            "jti": hex::encode(jti), "nbf": now, "iat": now, "exp": now + 600,
                        }),
                    )
                    .map_err(|e| Failure::Auth(format!("AZURE_CLIENT_CERTIFICATE_PATH: {e}")))?;
                fields.push(("client_assertion_type", ASSERTION_TYPE));
                fields.push(("client_assertion", &assertion));
            }
            Source::Federated(file) => {
                let bytes = oauth::read_file(file, "AZURE_FEDERATED_TOKEN_FILE")?;
                assertion = Zeroizing::new(String::from_utf8_lossy(&bytes).trim().to_string());
                if assertion.is_empty() {
                    return Err(Failure::Config(format!(
                        "AZURE_FEDERATED_TOKEN_FILE {}: the file is empty",
                        file.display()
                    )));
                }
                fields.push(("client_assertion_type", ASSERTION_TYPE));
                fields.push(("client_assertion", &assertion));
            }
            Source::Imds { host, client_id } => {
                return self.imds(host, client_id.as_deref(), scope)
            }
        }
        let call = Call {
            method: "POST",
            url: token_url,
            query: Vec::new(),
            headers: vec![(
                "content-type",
                "application/x-www-form-urlencoded".to_string(),
            )],
            body: oauth::form(&fields),
            sign: None,
        };
        let what = format!("login of {} at {}", self.who(), self.authority);
        let a = oauth::send(&self.http, &call, &what).map_err(tls_hint)?;
        token_of(&a, &what, |code, v| {
            let detail = oauth::text_field(v, "/error_description")
                .map(|d| format!(": {}", d.lines().next().unwrap_or("")))
                .unwrap_or_default();
            format!(
                "{what} was refused ({code}{detail}); check AZURE_TENANT_ID, AZURE_CLIENT_ID and \
                 the credential (for workload identity, the federated credential's issuer and subject)"
            )
        })
    }

    /// A managed identity's token from IMDS (`resource` is the scope without `/.default`).
    fn imds(&self, host: &str, client_id: Option<&str>, scope: &str) -> Result<Token, Failure> {
        let resource = scope.trim_end_matches("/.default");
        let mut query = vec![
            ("api-version", "2018-02-01".to_string()),
            ("resource", resource.to_string()),
        ];
        if let Some(id) = client_id {
            query.push(("client_id", id.to_string()));
        }
        let call = Call {
            method: "GET",
            url: format!("{host}/metadata/identity/oauth2/token"),
            query,
            headers: vec![("metadata", "true".to_string())],
            body: Zeroizing::new(Vec::new()),
            sign: None,
        };
        let what = format!(
            "the managed identity endpoint {} (no AZURE_CLIENT_SECRET, AZURE_CLIENT_CERTIFICATE_PATH or AZURE_FEDERATED_TOKEN_FILE is set)",
            oauth::origin(host)
        );
        let a = oauth::send(&self.http, &call, &what)?;
        token_of(&a, &what, |code, _| {
            format!(
                "{what} refused ({code}); assign a managed identity to the node or pod, or set AZURE_CLIENT_ID to the user-assigned one"
            )
        })
    }
}

/// The access token of an answer from Entra ID or IMDS about `what`; when its status is not
/// 2xx, `refused(code, body)` says why (`code` is the OAuth `error`, or the status).
fn token_of(
    a: &Answer,
    what: &str,
    refused: impl FnOnce(&str, &Value) -> String,
) -> Result<Token, Failure> {
    let v = oauth::json(a, what)?;
    if !(200..300).contains(&a.status) {
        let code = oauth::text_field(&v, "/error").unwrap_or_else(|| format!("HTTP {}", a.status));
        return Err(Failure::Auth(refused(&code, &v)));
    }
    let value = v
        .get("access_token")
        .and_then(Value::as_str)
        .ok_or_else(|| Failure::Auth(format!("{what}: the answer has no access_token")))?;
    Ok(Token::new(
        value.to_string(),
        oauth::number(&v, "expires_in"),
    ))
}

/// A TLS failure names the setting that adds a private CA.
pub(crate) fn tls_hint(f: Failure) -> Failure {
    const HINT: &str = "; if the server's certificate comes from a private CA, add the CA to \
                        AZURE_CA_BUNDLE (a PEM file)";
    match f {
        Failure::Auth(m) if m.contains("TLS:") => Failure::Auth(m + HINT),
        Failure::Unavailable(m) if m.contains("TLS:") => Failure::Unavailable(m + HINT),
        other => other,
    }
}

/// The key and certificate thumbprint of `AZURE_CLIENT_CERTIFICATE_PATH`.
fn certificate(path: PathBuf) -> Result<Source, Failure> {
    const VAR: &str = "AZURE_CLIENT_CERTIFICATE_PATH";
    let bytes = oauth::read_file(&path, VAR)?;
    let pem = Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned());
    let bad = |why: &str| Failure::Config(format!("{VAR} {}: {why}", path.display()));
    let key = SigningKey::from_pem(&pem).map_err(|e| bad(&e))?;
    let (_, cert) = oauth::pem_block(&pem, &["CERTIFICATE"]).ok_or_else(|| {
        bad("no PEM certificate (the file must hold the certificate and its private key)")
    })?;
    let sha1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &cert);
    Ok(Source::Certificate {
        key: Box::new(key),
        thumbprint: oauth::b64url(sha1.as_ref()),
        fingerprint: oauth::fingerprint(pem.as_bytes()),
    })
}
