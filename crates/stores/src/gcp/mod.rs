//! GCP Secret Manager: `versions/V:access` over REST with a Google access token.
//!
//! - References: argocd-vault-plugin's `<path:projects/P/secrets/S#key>` and
//!   `<path:projects/P/secrets/S/versions/V#key>` (or `#key#V`), vals'
//!   `ref+gcpsecrets://P/S[?version=V][#/pointer]`.
//! - Credentials: [`auth`] (service-account key, workload identity federation, metadata
//!   server), from the operator's environment only; [`oauth`] holds the token pieces the Azure
//!   store shares.
//! - Endpoint: `https://secretmanager.googleapis.com`, or gcloud's
//!   `CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER` (private endpoints, emulators).
//!
//! One request per distinct (project, secret, version) per render; the payload is wiped when
//! dropped; messages name the secret, Google's status and what to grant, never a value.

pub(crate) mod auth;
pub(crate) mod oauth;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use self::auth::GcpAuth;
use crate::aws::http::{Call, Http};
use crate::aws::{lock, structured, Failure};
use crate::{Config, Request, SecretValue, Store, StoreError};

const DEFAULT_ENDPOINT: &str = "https://secretmanager.googleapis.com";
const ENDPOINT_VAR: &str = "CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER";

type Cell = Arc<OnceLock<Result<SecretValue, Failure>>>;

/// The GCP Secret Manager store.
pub struct GcpSecrets {
    endpoint: String,
    auth: Result<GcpAuth, Failure>,
    reads: Mutex<HashMap<(String, String, String), Cell>>,
}

/// The HTTP client of the Google and Azure stores, trusting `tls` (the platform's roots when
/// `None`): `KUSTODIAN_CLOUD_TIMEOUT` (seconds per request, 30) and
/// `KUSTODIAN_CLOUD_MAX_ATTEMPTS` (4), within a 20 s deadline.
pub(crate) fn cloud_http(
    c: &Config,
    tls: Option<ureq::tls::TlsConfig>,
) -> Result<Http, StoreError> {
    let num = |var: &str, default: u64| -> Result<u64, StoreError> {
        match c.var(var) {
            None => Ok(default),
            Some(v) => v.trim().trim_end_matches('s').parse().map_err(|_| {
                StoreError::Config(format!("{var} must be a whole number, such as {default}"))
            }),
        }
    };
    Ok(Http::with_limits(
        Duration::from_secs(num("KUSTODIAN_CLOUD_TIMEOUT", 30)?),
        num("KUSTODIAN_CLOUD_MAX_ATTEMPTS", 4)? as u32,
        Duration::from_secs(20),
        tls,
    ))
}

/// The Google API endpoint in `var` (`default` when unset), without a trailing `/` or `/v1`;
/// https only, but for a loopback address.
pub(crate) fn endpoint_setting(c: &Config, var: &str, default: &str) -> Result<String, Failure> {
    let endpoint = c
        .var(var)
        .unwrap_or(default)
        .trim()
        .trim_end_matches('/')
        .trim_end_matches("/v1")
        .to_string();
    oauth::check_transport(&endpoint, var)?;
    Ok(endpoint)
}

impl GcpSecrets {
    /// A store from the operator's settings. A bad credentials file fails every reference to
    /// the store with the same message.
    pub fn new(c: &Config) -> Result<Self, StoreError> {
        let http = cloud_http(c, None)?;
        let endpoint = endpoint_setting(c, ENDPOINT_VAR, DEFAULT_ENDPOINT)
            .map_err(|e| e.to_store_error("gcp"))?;
        Ok(GcpSecrets {
            endpoint,
            auth: GcpAuth::from_config(c, http),
            reads: Mutex::default(),
        })
    }

    /// The factory [`crate::Stores`] registers.
    pub fn factory(c: &Config) -> Result<Arc<dyn Store>, StoreError> {
        Ok(Arc::new(Self::new(c)?))
    }

    fn read(&self, req: &Request) -> Result<SecretValue, Failure> {
        let (project, secret, version, avp) = parse(req)?;
        let shown = format!("projects/{project}/secrets/{secret}/versions/{version}");
        let key = (project.clone(), secret.clone(), version.clone());
        let cell = lock(&self.reads).entry(key).or_default().clone();
        let payload = cell
            .get_or_init(|| self.access(&project, &secret, &version, &shown))
            .clone()?;
        let text = payload.expose().as_str().unwrap_or_default();
        if !avp {
            return Ok(SecretValue::new(structured(text)));
        }
        // argocd-vault-plugin's keys: a JSON object's fields, and the secret's id for the
        // whole payload.
        let mut doc = match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(o)) => o,
            _ => serde_json::Map::new(),
        };
        doc.entry(secret).or_insert_with(|| json!(text));
        Ok(SecretValue::new(Value::Object(doc)))
    }

    /// `GET /v1/projects/P/secrets/S/versions/V:access`, once per render for its key.
    fn access(
        &self,
        project: &str,
        secret: &str,
        version: &str,
        shown: &str,
    ) -> Result<SecretValue, Failure> {
        let auth = self.auth.as_ref().map_err(Clone::clone)?;
        let token = auth.access_token()?;
        let enc = crate::http::encode_segment;
        let call = Call {
            method: "GET",
            url: format!(
                "{}/v1/projects/{}/secrets/{}/versions/{}:access",
                self.endpoint,
                enc(project),
                enc(secret),
                enc(version)
            ),
            query: Vec::new(),
            headers: vec![("authorization", token.bearer())],
            body: Zeroizing::new(Vec::new()),
            sign: None,
        };
        let a = auth.http().send(&call).map_err(|reason| {
            Failure::Unavailable(format!(
                "Secret Manager: {reason}; check {ENDPOINT_VAR} and the network"
            ))
        })?;
        let v: Value = serde_json::from_str(&a.body).map_err(|_| Failure::Backend {
            path: shown.to_string(),
            reason: format!(
                "Secret Manager answered HTTP {} with something that is not JSON",
                a.status
            ),
        })?;
        let v = SecretValue::new(v);
        if a.status == 401 {
            auth.forget();
        }
        if !(200..300).contains(&a.status) {
            return Err(api_error(v.expose(), a.status, shown, &auth.who()));
        }
        let data = v
            .expose()
            .pointer("/payload/data")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let bytes = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(data)
                .map_err(|_| Failure::Backend {
                    path: shown.to_string(),
                    reason: "the payload is not valid base64".into(),
                })?,
        );
        let text = std::str::from_utf8(&bytes).map_err(|_| Failure::Invalid {
            path: shown.to_string(),
            reason: "the secret's payload is not UTF-8 text, so it cannot be placed in a manifest"
                .into(),
        })?;
        Ok(SecretValue::new(Value::String(text.to_string())))
    }
}

impl Store for GcpSecrets {
    fn name(&self) -> &str {
        "gcp"
    }

    fn fetch(&self, req: &Request) -> Result<SecretValue, StoreError> {
        self.read(req).map_err(|e| e.to_store_error("gcp"))
    }
}

/// A Google API error (`{"error": {"code": 404, "status": "NOT_FOUND", "message": ...}}`).
fn api_error(v: &Value, status: u16, shown: &str, who: &str) -> Failure {
    let code = oauth::text_field(v, "/error/status").unwrap_or_else(|| format!("HTTP {status}"));
    let message = oauth::text_field(v, "/error/message").unwrap_or_default();
    match (status, code.as_str()) {
        (404, _) | (_, "NOT_FOUND") => Failure::NotFound(format!("{shown}: no such secret or version")),
        (403, _) | (_, "PERMISSION_DENIED") => Failure::Denied {
            path: shown.to_string(),
            detail: format!(
                "{code}; grant {who} roles/secretmanager.secretAccessor on the secret"
            ),
        },
        (401, _) | (_, "UNAUTHENTICATED") => Failure::Auth(format!(
            "Secret Manager refused the token of {who} ({code}: {message}); the cached token was dropped, render again to log in anew"
        )),
        (429, _) | (_, "RESOURCE_EXHAUSTED") => Failure::Backend {
            path: shown.to_string(),
            reason: format!("{code}: still throttled after the retries; lower the render concurrency or raise KUSTODIAN_CLOUD_MAX_ATTEMPTS"),
        },
        (_, "FAILED_PRECONDITION") => Failure::Backend {
            path: shown.to_string(),
            reason: format!("{code}: the version is disabled or destroyed ({message})"),
        },
        _ => Failure::Backend {
            path: shown.to_string(),
            reason: if message.is_empty() { code } else { format!("{code}: {message}") },
        },
    }
}

/// (project, secret, version, written as an AVP placeholder) of a request.
fn parse(req: &Request) -> Result<(String, String, String, bool), Failure> {
    let invalid = |reason: &str| Failure::Invalid {
        path: req.path.clone(),
        reason: reason.to_string(),
    };
    for (k, _) in &req.params {
        if !matches!(k.as_str(), "syntax" | "kv-version") {
            return Err(invalid(&format!(
                "the gcp store takes no ?{k}=; it takes ?version= (credentials and endpoints \
                 are the operator's)"
            )));
        }
    }
    let parts: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    let (project, secret, path_version, avp) = match parts.as_slice() {
        ["projects", p, "secrets", s] => (*p, *s, None, true),
        ["projects", p, "secrets", s, "versions", v] => (*p, *s, Some(*v), true),
        [p, s] => (*p, *s, None, false),
        _ => {
            return Err(invalid(
                "a GCP secret is written projects/PROJECT/secrets/SECRET[/versions/VERSION] \
                 (argocd-vault-plugin) or ref+gcpsecrets://PROJECT/SECRET[?version=V] (vals)",
            ))
        }
    };
    let version = match (path_version, req.version.as_deref()) {
        (Some(a), Some(b)) if a != b => {
            return Err(invalid(
                "the path and the placeholder name two different versions; keep one",
            ))
        }
        (Some(v), _) | (None, Some(v)) => v,
        (None, None) => "latest",
    };
    let ok = |s: &str, extra: &[u8]| {
        !s.is_empty()
            && s.len() <= 255
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || extra.contains(&b))
    };
    if !ok(project, b".:") || !ok(secret, b"") || !ok(version, b"") {
        return Err(invalid(
            "project, secret and version names are letters, digits, - and _ (a project may also hold . and :)",
        ));
    }
    Ok((
        project.to_string(),
        secret.to_string(),
        version.to_string(),
        avp,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(path: &str, version: Option<&str>) -> Request {
        Request {
            path: path.into(),
            version: version.map(str::to_string),
            params: Vec::new(),
        }
    }

    #[test]
    fn reference_forms() {
        let p = |r: Request| parse(&r).map(|(p, s, v, avp)| format!("{p} {s} {v} {avp}"));
        assert_eq!(
            p(req("projects/p1/secrets/db", None)).unwrap(),
            "p1 db latest true"
        );
        assert_eq!(
            p(req("projects/p1/secrets/db/versions/3", None)).unwrap(),
            "p1 db 3 true"
        );
        assert_eq!(
            p(req("projects/p1/secrets/db", Some("2"))).unwrap(),
            "p1 db 2 true"
        );
        assert_eq!(p(req("p1/db", Some("4"))).unwrap(), "p1 db 4 false");
        assert!(p(req("projects/p1/secrets/db/versions/3", Some("4"))).is_err());
        assert!(p(req("p1/db/x", None)).is_err());
        assert!(p(req("projects/p1/secrets/..", None)).is_err());
        assert!(p(req("p1/a%2Fb", None)).is_err());
    }
}
