//! Where the AWS stores' settings come from: the operator's environment only (the variables
//! the AWS SDKs and CLI read, plus a few of kustodian's own), read with [`Config::var`].
//!
//! Application authors choose nothing here that grants access: a reference may pick a region,
//! and may name a role only when the operator lists it in `KUSTODIAN_AWS_ALLOWED_ROLE_ARNS`.

use std::path::PathBuf;
use std::time::Duration;

use crate::{Config, StoreError};

/// A service kustodian calls, with the names its endpoint settings use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Service {
    SecretsManager,
    Ssm,
    Sts,
    Kms,
}

impl Service {
    /// The signing name and host prefix.
    pub(crate) fn id(self) -> &'static str {
        match self {
            Service::SecretsManager => "secretsmanager",
            Service::Ssm => "ssm",
            Service::Sts => "sts",
            Service::Kms => "kms",
        }
    }

    /// The SDKs' per-service endpoint variable.
    fn endpoint_var(self) -> &'static str {
        match self {
            Service::SecretsManager => "AWS_ENDPOINT_URL_SECRETS_MANAGER",
            Service::Ssm => "AWS_ENDPOINT_URL_SSM",
            Service::Sts => "AWS_ENDPOINT_URL_STS",
            Service::Kms => "AWS_ENDPOINT_URL_KMS",
        }
    }
}

/// The AWS stores' settings.
pub(crate) struct Settings {
    /// `AWS_REGION`, `AWS_DEFAULT_REGION` (the profile's `region` is read with the profile).
    pub region: Option<String>,
    endpoints: Vec<(Service, String)>,
    endpoint_all: Option<String>,
    /// Role ARN patterns a reference's `?role_arn=` may name (`*` matches any run of characters).
    pub allowed_roles: Vec<String>,
    /// Where temporary credentials are cached; `None`: no disk cache.
    pub cache_dir: Option<PathBuf>,
    pub timeout: Duration,
    /// Attempts per request, first included (`AWS_MAX_ATTEMPTS`, default 3).
    pub max_attempts: u32,
    /// No retry starts after this much time since the first attempt.
    pub retry_deadline: Duration,
    /// The variables the credential chain reads, copied once.
    pub vars: CredentialVars,
}

/// The operator's credential settings, in the standard AWS names.
#[derive(Default)]
pub(crate) struct CredentialVars {
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    pub profile: Option<String>,
    pub config_file: Option<PathBuf>,
    pub credentials_file: Option<PathBuf>,
    pub web_identity_token_file: Option<PathBuf>,
    pub role_arn: Option<String>,
    pub role_session_name: Option<String>,
    pub container_full_uri: Option<String>,
    pub container_relative_uri: Option<String>,
    pub container_token_file: Option<PathBuf>,
    pub container_token: Option<String>,
}

impl Settings {
    /// Reads the settings; fails on values that cannot be right.
    pub(crate) fn from_config(c: &Config) -> Result<Self, StoreError> {
        let mut endpoints = Vec::new();
        for s in [
            Service::SecretsManager,
            Service::Ssm,
            Service::Sts,
            Service::Kms,
        ] {
            if let Some(url) = c.var(s.endpoint_var()) {
                endpoints.push((s, endpoint(url, s.endpoint_var())?));
            }
        }
        let endpoint_all = c
            .var("AWS_ENDPOINT_URL")
            .map(|u| endpoint(u, "AWS_ENDPOINT_URL"))
            .transpose()?;
        let max_attempts = match c.var("AWS_MAX_ATTEMPTS") {
            None => 3,
            Some(v) => v
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| {
                    StoreError::Config(format!(
                        "AWS_MAX_ATTEMPTS must be a whole number of at least 1, not {v:?}"
                    ))
                })?,
        };
        let timeout = seconds(c, "KUSTODIAN_AWS_TIMEOUT", 30)?;
        let retry_deadline = seconds(c, "KUSTODIAN_AWS_RETRY_DEADLINE", 20)?;
        let home = c.var("HOME").map(PathBuf::from);
        let aws_dir = home.as_ref().map(|h| h.join(".aws"));
        let vars = CredentialVars {
            access_key_id: c.var("AWS_ACCESS_KEY_ID").map(str::to_string),
            secret_access_key: c.var("AWS_SECRET_ACCESS_KEY").map(str::to_string),
            session_token: c.var("AWS_SESSION_TOKEN").map(str::to_string),
            profile: c
                .var_any(&["AWS_PROFILE", "AWS_DEFAULT_PROFILE"])
                .map(str::to_string),
            config_file: c
                .var("AWS_CONFIG_FILE")
                .map(PathBuf::from)
                .or_else(|| aws_dir.as_ref().map(|d| d.join("config"))),
            credentials_file: c
                .var("AWS_SHARED_CREDENTIALS_FILE")
                .map(PathBuf::from)
                .or_else(|| aws_dir.as_ref().map(|d| d.join("credentials"))),
            web_identity_token_file: c.var("AWS_WEB_IDENTITY_TOKEN_FILE").map(PathBuf::from),
            role_arn: c.var("AWS_ROLE_ARN").map(str::to_string),
            role_session_name: c.var("AWS_ROLE_SESSION_NAME").map(str::to_string),
            container_full_uri: c
                .var("AWS_CONTAINER_CREDENTIALS_FULL_URI")
                .map(str::to_string),
            container_relative_uri: c
                .var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
                .map(str::to_string),
            container_token_file: c
                .var("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
                .map(PathBuf::from),
            container_token: c
                .var("AWS_CONTAINER_AUTHORIZATION_TOKEN")
                .map(str::to_string),
        };
        Ok(Settings {
            region: c
                .var_any(&["AWS_REGION", "AWS_DEFAULT_REGION"])
                .map(str::to_string),
            endpoints,
            endpoint_all,
            allowed_roles: c
                .var("KUSTODIAN_AWS_ALLOWED_ROLE_ARNS")
                .map(|v| {
                    v.split(',')
                        .map(|p| p.trim().to_string())
                        .filter(|p| !p.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            cache_dir: cache_dir(c),
            timeout,
            max_attempts,
            retry_deadline,
            vars,
        })
    }

    /// The base URL for a service in a region: the per-service variable, `AWS_ENDPOINT_URL`,
    /// or AWS's regional endpoint.
    pub(crate) fn endpoint(&self, s: Service, region: &str) -> String {
        if let Some((_, url)) = self.endpoints.iter().find(|(e, _)| *e == s) {
            return url.clone();
        }
        if let Some(url) = &self.endpoint_all {
            return url.clone();
        }
        let suffix = if region.starts_with("cn-") {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        };
        format!("https://{}.{region}.{suffix}", s.id())
    }

    /// Whether the operator allows references to name this role.
    pub(crate) fn role_allowed(&self, arn: &str) -> bool {
        self.allowed_roles.iter().any(|p| glob(p, arn))
    }
}

/// An endpoint URL without a trailing `/`; only http(s), no credentials in it.
fn endpoint(url: &str, var: &str) -> Result<String, StoreError> {
    let u = url.trim().trim_end_matches('/');
    let rest = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"));
    match rest {
        Some(r) if !r.is_empty() && !r.split('/').next().unwrap_or("").contains('@') => {
            Ok(u.to_string())
        }
        _ => Err(StoreError::Config(format!(
            "{var} must be an http:// or https:// URL without a user name or password, such as https://secretsmanager.eu-west-1.amazonaws.com"
        ))),
    }
}

fn seconds(c: &Config, var: &str, default: u64) -> Result<Duration, StoreError> {
    match c.var(var) {
        None => Ok(Duration::from_secs(default)),
        Some(v) => v
            .trim()
            .trim_end_matches('s')
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| {
                StoreError::Config(format!(
                    "{var} must be a number of seconds such as 30, not {v:?}"
                ))
            }),
    }
}

/// The credential cache folder: `$KUSTODIAN_CACHE_DIR/aws-credentials` (or under
/// `$XDG_CACHE_HOME/kustodian`, `~/.cache/kustodian`); off with
/// `KUSTODIAN_AWS_CREDENTIAL_CACHE=off`.
fn cache_dir(c: &Config) -> Option<PathBuf> {
    let off = c.var("KUSTODIAN_AWS_CREDENTIAL_CACHE").is_some_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "0" | "off" | "false" | "no"
        )
    });
    if off {
        return None;
    }
    Some(cache_root(c)?.join("aws-credentials"))
}

/// kustodian's cache folder: `$KUSTODIAN_CACHE_DIR`, else `$XDG_CACHE_HOME/kustodian`, else
/// `~/.cache/kustodian` (the GCP and Azure token caches live beside the AWS one).
pub(crate) fn cache_root(c: &Config) -> Option<PathBuf> {
    Some(
        match (
            c.var("KUSTODIAN_CACHE_DIR"),
            c.var("XDG_CACHE_HOME"),
            c.var("HOME"),
        ) {
            (Some(d), _, _) => PathBuf::from(d),
            (None, Some(x), _) => PathBuf::from(x).join("kustodian"),
            (None, None, Some(h)) => PathBuf::from(h).join(".cache/kustodian"),
            (None, None, None) => return None,
        },
    )
}

/// `*` matches any run of characters (including `/` and `:`); everything else literally.
pub(crate) fn glob(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == s;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !s.starts_with(first) || s.len() < first.len() + last.len() || !s.ends_with(last) {
        return false;
    }
    let mut rest = &s[first.len()..s.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, StoreError> {
        let c = Config::from_vars(
            std::path::Path::new("/"),
            std::path::Path::new("/"),
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        );
        Settings::from_config(&c)
    }

    #[test]
    fn endpoints_per_service_then_global_then_regional() {
        let s = settings(&[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000/"),
            ("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:6000"),
        ])
        .unwrap();
        assert_eq!(s.endpoint(Service::Sts, "x"), "http://127.0.0.1:6000");
        assert_eq!(s.endpoint(Service::Ssm, "x"), "http://127.0.0.1:5000");
        let s = settings(&[]).unwrap();
        assert_eq!(
            s.endpoint(Service::SecretsManager, "eu-west-1"),
            "https://secretsmanager.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            s.endpoint(Service::Ssm, "cn-north-1"),
            "https://ssm.cn-north-1.amazonaws.com.cn"
        );
        let e = settings(&[("AWS_ENDPOINT_URL", "http://u:canary-pw@h")])
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("AWS_ENDPOINT_URL") && !e.contains("canary"),
            "{e}"
        );
    }

    #[test]
    fn role_patterns() {
        let s = settings(&[(
            "KUSTODIAN_AWS_ALLOWED_ROLE_ARNS",
            "arn:aws:iam::111:role/team-*, arn:aws:iam::222:role/exact",
        )])
        .unwrap();
        assert!(s.role_allowed("arn:aws:iam::111:role/team-a"));
        assert!(s.role_allowed("arn:aws:iam::222:role/exact"));
        assert!(!s.role_allowed("arn:aws:iam::222:role/exact2"));
        assert!(!s.role_allowed("arn:aws:iam::333:role/team-a"));
        assert!(!settings(&[])
            .unwrap()
            .role_allowed("arn:aws:iam::111:role/team-a"));
        assert!(glob("a*b*c", "axxbyyc") && !glob("a*b*c", "axxc") && glob("*", ""));
    }

    #[test]
    fn bad_numbers_are_refused() {
        let e = settings(&[("AWS_MAX_ATTEMPTS", "0")])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("AWS_MAX_ATTEMPTS"), "{e}");
    }
}
