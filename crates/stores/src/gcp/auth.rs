//! Google access tokens, the way Google's client libraries find them (Application Default
//! Credentials), from the operator's environment only:
//!
//! 1. `GOOGLE_APPLICATION_CREDENTIALS` names a JSON file:
//!    - `"type": "service_account"`: a JWT signed (RS256) with the key's `private_key`,
//!      exchanged at the file's own `token_uri` (grant `jwt-bearer`);
//!    - `"type": "external_account"` (workload identity federation, GKE or any OIDC issuer):
//!      the subject token read from `credential_source.file` (a projected service-account
//!      token) exchanged at the file's `token_url` (STS, RFC 8693), then, when the file has
//!      `service_account_impersonation_url`, a service account's token generated with it.
//! 2. Otherwise the metadata server (`GCE_METADATA_HOST`, else `metadata.google.internal`): on
//!    GKE with Workload Identity, the token of the Kubernetes service account's Google identity.
//!
//! Tokens are cached on disk (0600) per credential, until five minutes before they expire.
//! Messages name the file, the endpoint and Google's error code, never a key or token.

use std::path::PathBuf;
use std::sync::OnceLock;

use serde_json::{json, Value};
use zeroize::Zeroizing;

use super::oauth::{self, SigningKey, Token};
use crate::aws::http::{Call, Http};
use crate::aws::Failure;
use crate::Config;

/// The scope of every token: Secret Manager (and KMS) accept it.
pub(crate) const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
const DEFAULT_METADATA_HOST: &str = "metadata.google.internal";

/// Where the token comes from.
enum Source {
    ServiceAccount {
        email: String,
        key: SigningKey,
        key_id: Option<String>,
        token_uri: String,
        fingerprint: String,
    },
    External {
        audience: String,
        subject_token_type: String,
        token_url: String,
        subject_file: PathBuf,
        json_field: Option<String>,
        impersonation_url: Option<String>,
    },
    Metadata {
        host: String,
    },
}

/// The operator's Google credentials and the token they give, once per process.
pub(crate) struct GcpAuth {
    source: Source,
    http: Http,
    cache_dir: Option<PathBuf>,
    token: OnceLock<Result<Token, Failure>>,
}

impl GcpAuth {
    /// Reads the credentials the operator configured (the file is read now, the token fetched
    /// on first use).
    pub(crate) fn from_config(c: &Config, http: Http) -> Result<GcpAuth, Failure> {
        let source = match c.var("GOOGLE_APPLICATION_CREDENTIALS") {
            Some(path) => credentials_file(PathBuf::from(path))?,
            None => Source::Metadata {
                host: c
                    .var("GCE_METADATA_HOST")
                    .unwrap_or(DEFAULT_METADATA_HOST)
                    .trim()
                    .trim_end_matches('/')
                    .to_string(),
            },
        };
        Ok(GcpAuth {
            source,
            http,
            cache_dir: oauth::cache_dir(c, "gcp-tokens", "KUSTODIAN_GCP_TOKEN_CACHE"),
            token: OnceLock::new(),
        })
    }

    /// The operator's credentials with a client of their own (`KUSTODIAN_CLOUD_*` limits):
    /// what a SOPS `gcp_kms` key needs to call `access_token`.
    pub(crate) fn from_operator(c: &Config) -> Result<GcpAuth, crate::StoreError> {
        let http = super::cloud_http(c, None)?;
        Self::from_config(c, http).map_err(|e| e.to_store_error("gcp"))
    }

    /// The HTTP client the credentials use (the store shares it).
    pub(crate) fn http(&self) -> &Http {
        &self.http
    }

    /// Who the token is for, in messages: the service account, the federation audience, or
    /// the metadata server's default account.
    pub(crate) fn who(&self) -> String {
        match &self.source {
            Source::ServiceAccount { email, .. } => format!("service account {email}"),
            Source::External { audience, .. } => {
                format!(
                    "the workload identity pool of {}",
                    crate::http::shorten(audience, 160)
                )
            }
            Source::Metadata { host } => format!("the metadata server's account ({host})"),
        }
    }

    /// An access token for the `cloud-platform` scope: cached on disk, fetched once per
    /// process. The SOPS `gcp_kms` keys can use the same call.
    pub(crate) fn access_token(&self) -> Result<Token, Failure> {
        self.token
            .get_or_init(|| {
                let parts = self.cache_parts();
                let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
                oauth::cached(self.cache_dir.as_deref(), &parts, "GCP", || self.fetch())
            })
            .clone()
    }

    /// Drops the cached token after Google refused it, so that the next render logs in.
    pub(crate) fn forget(&self) {
        let parts = self.cache_parts();
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        oauth::forget(self.cache_dir.as_deref(), &parts);
    }

    fn cache_parts(&self) -> Vec<String> {
        let (kind, id) = self.cache_key();
        vec!["gcp-token-v1".into(), kind.into(), id, SCOPE.into()]
    }

    fn cache_key(&self) -> (&'static str, String) {
        match &self.source {
            Source::ServiceAccount {
                email,
                token_uri,
                fingerprint,
                ..
            } => ("sa", format!("{email}\n{token_uri}\n{fingerprint}")),
            Source::External {
                audience,
                token_url,
                subject_file,
                impersonation_url,
                ..
            } => {
                // The subject token changes as Kubernetes rotates it; its fingerprint keeps
                // two identities apart.
                let subject = oauth::read_file(subject_file, "credential_source.file")
                    .map(|b| oauth::fingerprint(&b))
                    .unwrap_or_default();
                (
                    "external",
                    format!(
                        "{audience}\n{token_url}\n{}\n{subject}",
                        impersonation_url.as_deref().unwrap_or("")
                    ),
                )
            }
            Source::Metadata { host } => ("metadata", host.clone()),
        }
    }

    fn fetch(&self) -> Result<Token, Failure> {
        match &self.source {
            Source::ServiceAccount {
                email,
                key,
                key_id,
                token_uri,
                ..
            } => {
                let now = oauth::now_s();
                let mut header = json!({"alg": "RS256", "typ": "JWT"});
                if let Some(kid) = key_id {
                    header["kid"] = json!(kid);
                }
                let claims = json!({
                    "iss": email, "scope": SCOPE, "aud": token_uri,
                    "iat": now, "exp": now + 3600,
                });
                let jwt = key
                    .jwt(&header, &claims)
                    .map_err(|e| Failure::Auth(format!("service account {email}: {e}")))?;
                let body = oauth::form(&[
                    ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                    ("assertion", &jwt),
                ]);
                let v = self.post_form(token_uri, body, &format!("service account {email}"))?;
                token_of(&v, "access_token", "expires_in", token_uri)
            }
            Source::External {
                audience,
                subject_token_type,
                token_url,
                subject_file,
                json_field,
                impersonation_url,
            } => {
                let subject = subject_token(subject_file, json_field.as_deref())?;
                let body = oauth::form(&[
                    (
                        "grant_type",
                        "urn:ietf:params:oauth:grant-type:token-exchange",
                    ),
                    ("audience", audience),
                    ("scope", SCOPE),
                    (
                        "requested_token_type",
                        "urn:ietf:params:oauth:token-type:access_token",
                    ),
                    ("subject_token", &subject),
                    ("subject_token_type", subject_token_type),
                ]);
                let v = self.post_form(token_url, body, "the STS token exchange")?;
                let federated = token_of(&v, "access_token", "expires_in", token_url)?;
                let Some(url) = impersonation_url else {
                    return Ok(federated);
                };
                let body = json!({"scope": [SCOPE], "lifetime": "3600s"}).to_string();
                let call = Call {
                    method: "POST",
                    url: url.clone(),
                    query: Vec::new(),
                    headers: vec![
                        ("content-type", "application/json".to_string()),
                        ("authorization", federated.bearer()),
                    ],
                    body: Zeroizing::new(body.into_bytes()),
                    sign: None,
                };
                let a = oauth::send(&self.http, &call, "service account impersonation")?;
                let v = oauth::json(&a, "service account impersonation")?;
                if !(200..300).contains(&a.status) {
                    return Err(google_auth_error(
                        &v,
                        a.status,
                        "service account impersonation",
                        "grant the federated identity roles/iam.workloadIdentityUser (or \
                         serviceAccountTokenCreator) on the service account",
                    ));
                }
                let value = v
                    .get("accessToken")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        Failure::Auth(
                            "service account impersonation answered without accessToken".into(),
                        )
                    })?;
                Ok(Token::new(value.to_string(), Some(3600)))
            }
            Source::Metadata { host } => {
                let url = format!(
                    "http://{host}/computeMetadata/v1/instance/service-accounts/default/token"
                );
                let call = Call {
                    method: "GET",
                    url,
                    query: Vec::new(),
                    headers: vec![("metadata-flavor", "Google".to_string())],
                    body: Zeroizing::new(Vec::new()),
                    sign: None,
                };
                let what = format!("the metadata server {host}");
                let a = oauth::send(&self.http, &call, &format!(
                    "{what} (no GOOGLE_APPLICATION_CREDENTIALS is set, so kustodian asked the GKE/GCE metadata server; set GOOGLE_APPLICATION_CREDENTIALS outside Google Cloud)"
                ))?;
                if !(200..300).contains(&a.status) {
                    return Err(Failure::Auth(format!(
                        "{what} answered HTTP {}; on GKE, check that Workload Identity is enabled on the node pool and the Kubernetes service account is bound to a Google service account",
                        a.status
                    )));
                }
                let v = oauth::json(&a, &what)?;
                token_of(&v, "access_token", "expires_in", &what)
            }
        }
    }

    fn post_form(&self, url: &str, body: Zeroizing<Vec<u8>>, what: &str) -> Result<Value, Failure> {
        let call = Call {
            method: "POST",
            url: url.to_string(),
            query: Vec::new(),
            headers: vec![(
                "content-type",
                "application/x-www-form-urlencoded".to_string(),
            )],
            body,
            sign: None,
        };
        let a = oauth::send(&self.http, &call, what)?;
        let v = oauth::json(&a, what)?;
        if !(200..300).contains(&a.status) {
            return Err(google_auth_error(
                &v,
                a.status,
                what,
                "check that the key or identity pool provider is active and the clock is right",
            ));
        }
        Ok(v)
    }
}

/// An OAuth error answer (`{"error": "invalid_grant", "error_description": ...}`) or a Google
/// API error (`{"error": {"status": ..., "message": ...}}`) as a login failure.
fn google_auth_error(v: &Value, status: u16, what: &str, fix: &str) -> Failure {
    let code = oauth::text_field(v, "/error")
        .or_else(|| oauth::text_field(v, "/error/status"))
        .unwrap_or_else(|| format!("HTTP {status}"));
    let detail = oauth::text_field(v, "/error_description")
        .or_else(|| oauth::text_field(v, "/error/message"))
        .map(|d| format!(": {d}"))
        .unwrap_or_default();
    Failure::Auth(format!("{what} was refused ({code}{detail}); {fix}"))
}

fn token_of(v: &Value, field: &str, expires: &str, what: &str) -> Result<Token, Failure> {
    let value = v
        .get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| Failure::Auth(format!("{} answered without {field}", what)))?;
    Ok(Token::new(value.to_string(), oauth::number(v, expires)))
}

/// The projected token from `credential_source.file` (text, or a JSON field of it).
fn subject_token(
    file: &std::path::Path,
    field: Option<&str>,
) -> Result<Zeroizing<String>, Failure> {
    let bytes = oauth::read_file(file, "the external account's credential_source.file")?;
    let text = String::from_utf8_lossy(&bytes);
    let token = match field {
        None => text.trim().to_string(),
        Some(f) => serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get(f).and_then(Value::as_str).map(str::to_string))
            .ok_or_else(|| {
                Failure::Config(format!(
                    "{}: no JSON field {f:?} (credential_source.format.subject_token_field_name)",
                    file.display()
                ))
            })?,
    };
    if token.is_empty() {
        return Err(Failure::Config(format!(
            "{}: the subject token file is empty",
            file.display()
        )));
    }
    Ok(Zeroizing::new(token))
}

/// Parses the credentials file `GOOGLE_APPLICATION_CREDENTIALS` names.
fn credentials_file(path: PathBuf) -> Result<Source, Failure> {
    const VAR: &str = "GOOGLE_APPLICATION_CREDENTIALS";
    let bytes = oauth::read_file(&path, VAR)?;
    let bad = |why: &str| Failure::Config(format!("{VAR} {}: {why}", path.display()));
    let doc = crate::SecretValue::new(serde_json::from_slice(&bytes).map_err(|e| {
        bad(&format!(
            "not JSON (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?);
    let v = doc.expose();
    let field = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let need = |k: &str| field(k).ok_or_else(|| bad(&format!("the field {k:?} is missing")));
    match field("type").as_deref() {
        Some("service_account") => {
            let token_uri = field("token_uri")
                .unwrap_or_else(|| "https://oauth2.googleapis.com/token".to_string());
            oauth::check_transport(&token_uri, &format!("{VAR}'s token_uri"))?;
            let pem = Zeroizing::new(need("private_key")?);
            let key = SigningKey::from_pem(&pem).map_err(|e| bad(&format!("private_key: {e}")))?;
            Ok(Source::ServiceAccount {
                email: need("client_email")?,
                key,
                key_id: field("private_key_id"),
                token_uri,
                fingerprint: oauth::fingerprint(pem.as_bytes()),
            })
        }
        Some("external_account") => {
            let token_url = field("token_url")
                .unwrap_or_else(|| "https://sts.googleapis.com/v1/token".to_string());
            oauth::check_transport(&token_url, &format!("{VAR}'s token_url"))?;
            let impersonation_url = field("service_account_impersonation_url");
            if let Some(u) = &impersonation_url {
                oauth::check_transport(u, &format!("{VAR}'s service_account_impersonation_url"))?;
            }
            let source = v
                .get("credential_source")
                .ok_or_else(|| bad("the field \"credential_source\" is missing"))?;
            let file = source.get("file").and_then(Value::as_str).ok_or_else(|| {
                bad("credential_source must name a file (a projected Kubernetes service-account token); URL and executable sources are not supported")
            })?;
            let json_field = match source.pointer("/format/type").and_then(Value::as_str) {
                Some("json") => Some(
                    source
                        .pointer("/format/subject_token_field_name")
                        .and_then(Value::as_str)
                        .ok_or_else(|| {
                            bad("credential_source.format.subject_token_field_name is missing")
                        })?
                        .to_string(),
                ),
                _ => None,
            };
            Ok(Source::External {
                audience: need("audience")?,
                subject_token_type: field("subject_token_type")
                    .unwrap_or_else(|| "urn:ietf:params:oauth:token-type:jwt".to_string()),
                token_url,
                subject_file: PathBuf::from(file),
                json_field,
                impersonation_url,
            })
        }
        Some(other) => Err(bad(&format!(
            "credentials of type {:?} are not supported; use a service-account key \
             (service_account) or a workload identity federation file (external_account)",
            crate::http::shorten(other, 40)
        ))),
        None => Err(bad("the field \"type\" is missing")),
    }
}
