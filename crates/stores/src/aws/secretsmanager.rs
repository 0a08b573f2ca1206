//! AWS Secrets Manager: `GetSecretValue` by name or ARN, at a version stage (`AWSCURRENT`,
//! `AWSPREVIOUS`, ...) or a version id.
//!
//! The document a reference sees:
//! - argocd-vault-plugin placeholders (`<path:NAME#key>`): the keys of a JSON `SecretString`,
//!   plus `SecretString` (the whole text, for secrets that are not JSON) and, for binary
//!   secrets, `SecretBinary` (the bytes, when they are UTF-8 text) and `SecretBinaryBase64`.
//! - vals URIs (`ref+awssecrets://NAME#/pointer`): the text, or its JSON/YAML structure for a
//!   pointer to follow; a binary secret's bytes as text.

use std::sync::Arc;

use base64::Engine as _;
use serde_json::{json, Map, Value};

use super::credentials::Identity;
use super::http::AwsError;
use super::{common_error, fetch_with, is_vals, structured, Aws, Failure, Service};
use crate::{Config, Request, SecretValue, Store, StoreError};

const STORE: &str = "aws";

/// The Secrets Manager store (`AVP_TYPE=awssecretsmanager`, `ref+awssecrets://`).
pub struct SecretsManager(Aws);

impl SecretsManager {
    /// The factory registered under the name `aws`. Does not touch the network.
    pub fn factory(config: &Config) -> Result<Arc<dyn Store>, StoreError> {
        Ok(Arc::new(SecretsManager(Aws::new(config)?)))
    }
}

/// Which version to read.
#[derive(Debug, PartialEq, Eq)]
enum Version {
    Stage(String),
    Id(String),
}

impl Store for SecretsManager {
    fn name(&self) -> &str {
        STORE
    }

    fn fetch(&self, req: &Request) -> Result<SecretValue, StoreError> {
        fetch_with(STORE, || {
            let id = req.path.trim();
            if id.is_empty() {
                return Err(Failure::Invalid {
                    path: req.path.clone(),
                    reason: "a Secrets Manager reference needs a secret name or ARN".into(),
                });
            }
            let version = version(req)?;
            let target = self.0.target(req, arn_region(id))?;
            let mut shown = format!("secret {id}");
            match &version {
                Some(Version::Stage(s)) => shown.push_str(&format!(" (version stage {s})")),
                Some(Version::Id(v)) => shown.push_str(&format!(" (version id {v})")),
                None => {}
            }
            shown.push_str(&format!(" in {}", target.region));
            let mut input = json!({ "SecretId": id });
            match &version {
                Some(Version::Stage(s)) => input["VersionStage"] = json!(s),
                Some(Version::Id(v)) => input["VersionId"] = json!(v),
                None => {}
            }
            let answer = self.0.call_once(
                Service::SecretsManager,
                &target,
                "secretsmanager.GetSecretValue",
                input,
                &shown,
                |e, who| error(e, who, &shown, version.is_some()),
            )?;
            document(answer.expose(), is_vals(req), &shown)
        })
    }
}

/// The version a request asks for: `?version_stage=`, `?version_id=`, or the placeholder's
/// `#VERSION` / vals `?version=` (a stage name, or an id when it looks like one).
fn version(req: &Request) -> Result<Option<Version>, Failure> {
    let stage = req.param("version_stage");
    let id = req.param("version_id");
    match (stage, id, req.version.as_deref()) {
        (Some(_), Some(_), _) => Err(Failure::Invalid {
            path: req.path.clone(),
            reason: "give either ?version_stage= or ?version_id=, not both".into(),
        }),
        (Some(s), None, _) => Ok(Some(Version::Stage(s.to_string()))),
        (None, Some(v), _) => Ok(Some(Version::Id(v.to_string()))),
        (None, None, Some(v)) if looks_like_id(v) => Ok(Some(Version::Id(v.to_string()))),
        (None, None, Some(v)) => Ok(Some(Version::Stage(v.to_string()))),
        (None, None, None) => Ok(None),
    }
}

/// Version ids are 32 to 64 characters of hex digits and dashes (UUIDs); stages are names.
fn looks_like_id(v: &str) -> bool {
    (32..=64).contains(&v.len()) && v.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

/// The region of `arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME`.
fn arn_region(id: &str) -> Option<&str> {
    let mut parts = id.split(':');
    (parts.next() == Some("arn") && parts.nth(1) == Some("secretsmanager"))
        .then(|| parts.next())
        .flatten()
        .filter(|r| !r.is_empty())
}

fn error(e: &AwsError, who: &Identity, shown: &str, versioned: bool) -> Failure {
    let path = shown.to_string();
    match e.code.as_str() {
        "ResourceNotFoundException" => Failure::NotFound(if versioned {
            format!("{shown}: no such secret or version")
        } else {
            shown.to_string()
        }),
        "AccessDeniedException" | "AccessDenied" => Failure::Denied {
            path,
            detail: format!(
                "{e}; grant secretsmanager:GetSecretValue on this secret (and kms:Decrypt on its \
                 KMS key) to {}",
                who.who
            ),
        },
        "DecryptionFailure" => Failure::Denied {
            path,
            detail: format!(
                "{e}; grant kms:Decrypt on the secret's KMS key to {}",
                who.who
            ),
        },
        "InvalidRequestException" | "InvalidParameterException" => Failure::Invalid {
            path,
            reason: format!("Secrets Manager refused the request ({e})"),
        },
        _ => common_error(e, who, shown),
    }
}

/// The document of a `GetSecretValue` answer, for one grammar.
fn document(answer: &Value, vals: bool, shown: &str) -> Result<SecretValue, Failure> {
    let text = answer.get("SecretString").and_then(Value::as_str);
    let binary = answer
        .get("SecretBinary")
        .and_then(Value::as_str)
        .map(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b)
                .map_err(|_| Failure::Backend {
                    path: shown.to_string(),
                    reason: "SecretBinary is not valid base64".into(),
                })
                .map(|bytes| (b, zeroize::Zeroizing::new(bytes)))
        })
        .transpose()?;
    if vals {
        return match (text, &binary) {
            (Some(t), _) => Ok(SecretValue::new(structured(t))),
            (None, Some((_, bytes))) => match std::str::from_utf8(bytes) {
                Ok(t) => Ok(SecretValue::new(structured(t))),
                Err(_) => Err(Failure::Invalid {
                    path: shown.to_string(),
                    reason: "the binary secret is not UTF-8 text, so it cannot be placed in a \
                             manifest as is; read it with <path:...#SecretBinaryBase64>"
                        .into(),
                }),
            },
            (None, None) => Err(Failure::NotFound(format!(
                "{shown}: the secret has no value"
            ))),
        };
    }
    let mut doc = Map::new();
    if let Some(t) = text {
        if let Ok(Value::Object(o)) = serde_json::from_str::<Value>(t) {
            doc = o;
        }
        doc.entry("SecretString").or_insert_with(|| json!(t));
    }
    if let Some((b64, bytes)) = &binary {
        if let Ok(t) = std::str::from_utf8(bytes) {
            doc.entry("SecretBinary").or_insert_with(|| json!(t));
        }
        doc.entry("SecretBinaryBase64")
            .or_insert_with(|| json!(b64));
    }
    Ok(SecretValue::new(Value::Object(doc)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(version: Option<&str>, params: &[(&str, &str)]) -> Request {
        Request {
            path: "app".into(),
            version: version.map(str::to_string),
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn versions_are_stages_or_ids() {
        assert_eq!(version(&req(None, &[])).unwrap(), None);
        assert_eq!(
            version(&req(Some("AWSPREVIOUS"), &[])).unwrap(),
            Some(Version::Stage("AWSPREVIOUS".into()))
        );
        let id = "93b5b190-c6c7-4041-ac7f-49d65bc4a9ba";
        assert_eq!(
            version(&req(Some(id), &[])).unwrap(),
            Some(Version::Id(id.into()))
        );
        assert_eq!(
            version(&req(None, &[("version_stage", "AWSCURRENT")])).unwrap(),
            Some(Version::Stage("AWSCURRENT".into()))
        );
        assert!(version(&req(None, &[("version_stage", "a"), ("version_id", "b")])).is_err());
    }

    #[test]
    fn arn_regions() {
        assert_eq!(
            arn_region("arn:aws:secretsmanager:eu-west-1:123456789012:secret:app-AbCdEf"),
            Some("eu-west-1")
        );
        assert_eq!(arn_region("app/db"), None);
        assert_eq!(arn_region("arn:aws:ssm:eu-west-1:1:parameter/x"), None);
    }

    #[test]
    fn documents_per_grammar() {
        let a = json!({"SecretString": "{\"password\":\"p\"}"});
        let avp = document(&a, false, "s").unwrap();
        assert_eq!(avp.expose()["password"], "p");
        assert_eq!(avp.expose()["SecretString"], "{\"password\":\"p\"}");
        assert_eq!(document(&a, true, "s").unwrap().expose()["password"], "p");
        let plain = json!({"SecretString": "just-text"});
        assert_eq!(
            document(&plain, false, "s").unwrap().expose()["SecretString"],
            "just-text"
        );
        assert_eq!(
            document(&plain, true, "s").unwrap().expose(),
            &json!("just-text")
        );
        let bin = json!({"SecretBinary": "/w=="});
        let d = document(&bin, false, "s").unwrap();
        assert!(d.expose().get("SecretBinary").is_none());
        assert_eq!(d.expose()["SecretBinaryBase64"], "/w==");
        let e = document(&bin, true, "s").err().unwrap();
        assert!(format!("{e:?}").contains("SecretBinaryBase64"));
    }
}
