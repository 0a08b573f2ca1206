//! SSM Parameter Store: `GetParameter` with decryption, for `String`, `StringList` and
//! `SecureString` parameters, by path (`ref+awsssm://team/db` reads `/team/db`, as vals
//! does), by name or by ARN; `?version=` / `#VERSION` picks a version (`NAME:VERSION`).
//!
//! The document is the value as text, or its JSON/YAML structure when a reference points into
//! it (`#/a/b`, `<path:/team/cfg#a>`). A `StringList` stays the comma-separated text.

use std::sync::Arc;

use serde_json::{json, Value};

use super::credentials::Identity;
use super::http::AwsError;
use super::{common_error, fetch_with, structured, Aws, Failure, Service};
use crate::{Config, Request, SecretValue, Store, StoreError};

const STORE: &str = "awsssm";

/// The Parameter Store store (`ref+awsssm://`).
pub struct Ssm(Aws);

impl Ssm {
    /// The factory registered under the name `awsssm`. Does not touch the network.
    pub fn factory(config: &Config) -> Result<Arc<dyn Store>, StoreError> {
        Ok(Arc::new(Ssm(Aws::new(config)?)))
    }
}

impl Store for Ssm {
    fn name(&self) -> &str {
        STORE
    }

    fn fetch(&self, req: &Request) -> Result<SecretValue, StoreError> {
        fetch_with(STORE, || {
            let name = parameter_name(&req.path).ok_or_else(|| Failure::Invalid {
                path: req.path.clone(),
                reason: "an SSM reference needs a parameter path or name".into(),
            })?;
            let version = req.version.as_deref().map(str::trim);
            if let Some(v) = version {
                if v.parse::<u64>().is_err() {
                    return Err(Failure::Invalid {
                        path: req.path.clone(),
                        reason: format!(
                            "SSM parameter versions are whole numbers, not {v:?} (labels are not \
                             supported)"
                        ),
                    });
                }
            }
            let target = self.0.target(req, None)?;
            let selector = match version {
                Some(v) => format!("{name}:{v}"),
                None => name.clone(),
            };
            let shown = format!("parameter {selector} in {}", target.region);
            let answer = self.0.call_once(
                Service::Ssm,
                &target,
                "AmazonSSM.GetParameter",
                json!({ "Name": selector, "WithDecryption": true }),
                &shown,
                |e, who| error(e, who, &shown),
            )?;
            let value = answer
                .expose()
                .pointer("/Parameter/Value")
                .and_then(Value::as_str)
                .ok_or_else(|| Failure::Backend {
                    path: shown.clone(),
                    reason: "SSM answered without Parameter.Value".into(),
                })?;
            Ok(SecretValue::new(structured(value)))
        })
    }
}

/// `team/db` -> `/team/db` (vals), `/team/db` and ARNs as written.
fn parameter_name(path: &str) -> Option<String> {
    let p = path.trim();
    if p.is_empty() || p == "/" {
        return None;
    }
    if p.starts_with('/') || p.starts_with("arn:") {
        Some(p.to_string())
    } else {
        Some(format!("/{p}"))
    }
}

fn error(e: &AwsError, who: &Identity, shown: &str) -> Failure {
    match e.code.as_str() {
        "ParameterNotFound" | "ParameterVersionNotFound" => Failure::NotFound(shown.to_string()),
        "AccessDeniedException" | "AccessDenied" => Failure::Denied {
            path: shown.to_string(),
            detail: format!(
                "{e}; grant ssm:GetParameter on this parameter (and kms:Decrypt on the key of a \
                 SecureString) to {}",
                who.who
            ),
        },
        "ValidationException" | "InvalidKeyId" => Failure::Invalid {
            path: shown.to_string(),
            reason: format!("SSM refused the request ({e})"),
        },
        _ => common_error(e, who, shown),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_get_a_leading_slash_like_vals() {
        assert_eq!(parameter_name("team/db").unwrap(), "/team/db");
        assert_eq!(parameter_name("/team/db").unwrap(), "/team/db");
        assert_eq!(
            parameter_name("arn:aws:ssm:eu-west-1:1:parameter/x").unwrap(),
            "arn:aws:ssm:eu-west-1:1:parameter/x"
        );
        assert!(parameter_name(" ").is_none());
    }
}
