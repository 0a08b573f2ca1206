//! AWS Secrets Manager and SSM Parameter Store, with the AWS SDKs' credential chain (including
//! IRSA and EKS Pod Identity) and requests signed by a small SigV4 signer over `ureq`.
//!
//! - Settings from the operator's environment: [`settings`]; credentials and their disk
//!   cache: [`credentials`]; signing: [`sigv4`]; HTTP, retries and AWS error shapes: [`http`].
//! - The two services: [`secretsmanager`] (`GetSecretValue`) and [`ssm`] (`GetParameter`).
//!
//! Each store makes exactly one request per distinct (secret or parameter, version, region,
//! role) per render, whatever the number of references that use it, and resolves credentials
//! once. Messages name references, AWS error codes and what to grant, never values, keys or
//! tokens.

mod credentials;
pub(crate) mod http;
mod secretsmanager;
pub(crate) mod settings;
mod sigv4;
mod ssm;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use self::credentials::Identity;
use self::http::{AwsError, Http};
use self::settings::{Service, Settings};
use crate::{Config, Request, SecretValue, StoreError};

pub use self::secretsmanager::SecretsManager;
pub use self::ssm::Ssm;

/// Why a fetch failed, in a form that can be kept and handed to every reference that shares
/// the request. Converted to [`StoreError`] at the store's edge.
#[derive(Clone, Debug)]
pub(crate) enum Failure {
    NotFound(String),
    Denied {
        path: String,
        detail: String,
    },
    Auth(String),
    Invalid {
        path: String,
        reason: String,
    },
    Backend {
        path: String,
        reason: String,
    },
    Config(String),
    /// The whole store cannot be reached (the GCP and Azure stores use it for transport
    /// failures after the retries).
    Unavailable(String),
}

impl Failure {
    pub(crate) fn to_store_error(&self, store: &str) -> StoreError {
        let store = store.to_string();
        match self.clone() {
            Failure::NotFound(path) => StoreError::NotFound { store, path },
            Failure::Denied { path, detail } => StoreError::Denied {
                store,
                path,
                detail: Some(detail),
            },
            Failure::Auth(reason) => StoreError::Auth { store, reason },
            Failure::Invalid { path, reason } => StoreError::Invalid { path, reason },
            Failure::Backend { path, reason } => StoreError::Backend {
                store,
                path,
                reason,
            },
            Failure::Config(m) => StoreError::Config(m),
            Failure::Unavailable(reason) => StoreError::Unavailable { store, reason },
        }
    }
}

/// One call's identity: the service, endpoint, region, role and what is read.
type ReadKey = (Service, String, String, Option<String>, String);
type Cell<T> = Arc<OnceLock<Result<T, Failure>>>;

/// What both stores share: settings, the HTTP client, credentials and the reads of a render.
pub(crate) struct Aws {
    settings: Settings,
    http: Http,
    base: OnceLock<Result<Arc<Identity>, Failure>>,
    roles: Mutex<HashMap<String, Cell<Arc<Identity>>>>,
    reads: Mutex<HashMap<ReadKey, Cell<SecretValue>>>,
}

/// Where and as whom one reference is read.
pub(crate) struct Target {
    pub region: String,
    pub role: Option<String>,
}

impl Aws {
    fn new(config: &Config) -> Result<Self, StoreError> {
        let settings = Settings::from_config(config)?;
        let http = Http::new(&settings);
        Ok(Aws {
            settings,
            http,
            base: OnceLock::new(),
            roles: Mutex::default(),
            reads: Mutex::default(),
        })
    }

    /// The region and role of a request: `?region=`, then `region_hint` (an ARN's region),
    /// then the operator's `AWS_REGION`/profile; `?role_arn=` only when the operator allows it.
    fn target(&self, req: &Request, region_hint: Option<&str>) -> Result<Target, Failure> {
        let invalid = |reason: String| Failure::Invalid {
            path: req.path.clone(),
            reason,
        };
        for (k, _) in &req.params {
            if !matches!(
                k.as_str(),
                "region" | "role_arn" | "version_stage" | "version_id" | "syntax" | "kv-version"
            ) {
                return Err(invalid(format!(
                    "the AWS stores do not take ?{k}=; they take ?region=, ?role_arn=, \
                     ?version_stage= and ?version_id= (credentials and profiles are chosen by \
                     the operator's environment)"
                )));
            }
        }
        let region = req
            .param("region")
            .map(str::to_string)
            .or_else(|| region_hint.map(str::to_string))
            .or_else(|| self.settings.region.clone())
            .or_else(|| credentials::profile_region(&self.settings))
            .ok_or_else(|| {
                Failure::Config(
                    "no AWS region: set AWS_REGION in kustodian's environment, or add \
                     ?region= to the reference"
                        .into(),
                )
            })?;
        if region.is_empty()
            || !region
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(invalid(format!(
                "{region:?} is not an AWS region (such as eu-west-1)"
            )));
        }
        let role = req.param("role_arn").map(str::to_string);
        if let Some(r) = &role {
            if !self.settings.role_allowed(r) {
                return Err(invalid(format!(
                    "?role_arn={r} is not allowed: a reference may only name roles the \
                     operator lists in KUSTODIAN_AWS_ALLOWED_ROLE_ARNS (comma-separated, * \
                     matches any text)"
                )));
            }
        }
        Ok(Target { region, role })
    }

    /// The identity for a target: the operator's credentials, or a role assumed with them.
    fn identity(&self, t: &Target) -> Result<Arc<Identity>, Failure> {
        let base = self
            .base
            .get_or_init(|| {
                credentials::resolve(&self.settings, &self.http, &t.region).map(Arc::new)
            })
            .clone()?;
        let Some(role) = &t.role else {
            return Ok(base);
        };
        let cell = lock(&self.roles).entry(role.clone()).or_default().clone();
        cell.get_or_init(|| {
            credentials::assume_role(&self.settings, &self.http, &t.region, &base, role, None)
                .map(Arc::new)
        })
        .clone()
    }

    /// One JSON-protocol call (`X-Amz-Target`), made once per render for its key; the answer's
    /// body (which holds the value) as a document.
    fn call_once(
        &self,
        service: Service,
        target: &Target,
        action: &str,
        input: serde_json::Value,
        what: &str,
        on_error: impl FnOnce(&AwsError, &Identity) -> Failure,
    ) -> Result<SecretValue, Failure> {
        let endpoint = self.settings.endpoint(service, &target.region);
        let key = (
            service,
            endpoint.clone(),
            target.region.clone(),
            target.role.clone(),
            input.to_string(),
        );
        let cell = lock(&self.reads).entry(key).or_default().clone();
        cell.get_or_init(|| {
            let who = self.identity(target)?;
            let call = http::Call {
                method: "POST",
                url: endpoint.clone(),
                query: Vec::new(),
                headers: vec![
                    ("content-type", "application/x-amz-json-1.1".to_string()),
                    ("x-amz-target", action.to_string()),
                ],
                body: zeroize::Zeroizing::new(input.to_string().into_bytes()),
                sign: Some((&who.creds, service, &target.region)),
            };
            let answer = self.http.send(&call).map_err(|reason| Failure::Backend {
                path: what.to_string(),
                reason,
            })?;
            if let Some(e) = &answer.error {
                return Err(on_error(e, &who));
            }
            let body: serde_json::Value =
                serde_json::from_str(&answer.body).map_err(|_| Failure::Backend {
                    path: what.to_string(),
                    reason: format!("{} answered with something that is not JSON", service.id()),
                })?;
            Ok(SecretValue::new(body))
        })
        .clone()
    }
}

impl Aws {
    /// The operator's AWS client (settings, credential chain), for the SOPS KMS master keys.
    pub(crate) fn from_config(config: &Config) -> Result<Self, StoreError> {
        Aws::new(config)
    }

    /// One KMS call (`TrentService.Encrypt`/`Decrypt`) in `region`, as the operator or as
    /// `role` assumed with the operator's credentials (only a role the operator allows in
    /// KUSTODIAN_AWS_ALLOWED_ROLE_ARNS). `Err` says why, without the input.
    pub(crate) fn kms(
        &self,
        region: &str,
        role: Option<&str>,
        action: &str,
        input: serde_json::Value,
        what: &str,
    ) -> Result<SecretValue, String> {
        if let Some(r) = role {
            if !self.settings.role_allowed(r) {
                return Err(format!(
                    "the file asks to assume the role {r}, which the operator does not allow: \
                     list it in KUSTODIAN_AWS_ALLOWED_ROLE_ARNS"
                ));
            }
        }
        let target = Target {
            region: region.to_string(),
            role: role.map(str::to_string),
        };
        let result = self.call_once(
            Service::Kms,
            &target,
            &format!("TrentService.{action}"),
            input,
            what,
            |e, who| match e.code.as_str() {
                "AccessDeniedException" => Failure::Denied {
                    path: what.to_string(),
                    detail: format!("{e}; grant {} kms:{action} on the key", who.who),
                },
                "DisabledException" | "KMSInvalidStateException" => Failure::Backend {
                    path: what.to_string(),
                    reason: format!("the key is disabled or pending deletion ({e})"),
                },
                "NotFoundException" => Failure::NotFound(what.to_string()),
                _ => common_error(e, who, what),
            },
        );
        result.map_err(|f| match f {
            Failure::NotFound(_) => "the key does not exist in this account and region".into(),
            Failure::Denied { detail, .. } => format!("access denied: {detail}"),
            Failure::Auth(r) | Failure::Config(r) | Failure::Unavailable(r) => r,
            Failure::Invalid { reason, .. } | Failure::Backend { reason, .. } => reason,
        })
    }
}

/// The errors every AWS service shares: credentials refused, throttling that outlasted the
/// retries, anything else named by its code.
fn common_error(e: &AwsError, who: &Identity, what: &str) -> Failure {
    match e.code.as_str() {
        "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "SignatureDoesNotMatch"
        | "InvalidClientTokenId"
        | "IncompleteSignature" => Failure::Auth(format!(
            "AWS refused the credentials of {} ({e}); check the key pair and the clock",
            who.who
        )),
        "ExpiredTokenException" | "ExpiredToken" => Failure::Auth(format!(
            "the temporary credentials of {} have expired ({e}); render again to refresh them",
            who.who
        )),
        "ThrottlingException" | "TooManyRequestsException" | "Throttling" => Failure::Backend {
            path: what.to_string(),
            reason: format!(
                "{e}: still throttled after the retries; lower the render concurrency or raise \
                 AWS_MAX_ATTEMPTS"
            ),
        },
        _ => Failure::Backend {
            path: what.to_string(),
            reason: e.to_string(),
        },
    }
}

/// A stored text as a document a reference can point into: a JSON object or array as
/// structure, a YAML mapping (several lines) as structure, anything else as the text itself.
pub(crate) fn structured(text: &str) -> serde_json::Value {
    if let Ok(v @ (serde_json::Value::Object(_) | serde_json::Value::Array(_))) =
        serde_json::from_str::<serde_json::Value>(text)
    {
        return v;
    }
    if text.trim().contains('\n') {
        if let Ok(docs) = kustodian_manifest::parse_stream(text) {
            if let [d] = docs.as_slice() {
                if d.root.as_map().is_some() {
                    return d.root.to_json();
                }
            }
        }
    }
    serde_json::Value::String(text.to_string())
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether a request was written as a vals URI (the renderer marks them).
fn is_vals(req: &Request) -> bool {
    req.param("syntax") == Some("vals")
}

/// The shared part of both stores' `Store` impls.
fn fetch_with(
    store: &str,
    f: impl FnOnce() -> Result<SecretValue, Failure>,
) -> Result<SecretValue, StoreError> {
    f().map_err(|e| e.to_store_error(store))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_text_shapes() {
        assert_eq!(structured(r#"{"a":1}"#)["a"], 1);
        assert_eq!(structured("plain"), "plain");
        assert_eq!(structured("a: 1\nb: x\n")["b"], "x");
        assert_eq!(structured("a: 1"), "a: 1");
        assert_eq!(structured("\"quoted\""), "\"quoted\"");
    }

    #[test]
    fn roles_need_the_operators_allow_list() {
        let c = Config::from_vars(
            std::path::Path::new("/"),
            std::path::Path::new("/"),
            [("AWS_REGION", "eu-west-1")].map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let aws = Aws::new(&c).unwrap();
        let mut req = Request::new("app");
        req.params = vec![("role_arn".into(), "arn:aws:iam::1:role/admin".into())];
        let e = aws.target(&req, None).err().unwrap();
        assert!(format!("{e:?}").contains("KUSTODIAN_AWS_ALLOWED_ROLE_ARNS"));
        req.params = vec![("profile".into(), "prod".into())];
        assert!(format!("{:?}", aws.target(&req, None).err().unwrap()).contains("?profile="));
        req.params = vec![("region".into(), "us-east-2".into())];
        assert_eq!(aws.target(&req, Some("x")).unwrap().region, "us-east-2");
        req.params.clear();
        assert_eq!(
            aws.target(&req, Some("ap-south-1")).unwrap().region,
            "ap-south-1"
        );
        assert_eq!(aws.target(&req, None).unwrap().region, "eu-west-1");
    }
}
