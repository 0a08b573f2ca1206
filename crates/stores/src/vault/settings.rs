//! Where the Vault store's settings come from: kustodian's own variables first, then
//! argocd-vault-plugin's (`AVP_*`), then the Vault CLI's (`VAULT_*`, and OpenBao's `BAO_*`).
//! All of them are the operator's ([`Config::var`] never returns an Application's
//! `ARGOCD_ENV_*` variable). An Application may choose only the KV version
//! ([`Config::app_kv_version`]) and, through the operator's tenant mapping, the Kubernetes
//! role and auth mount ([`Config::tenant`]).
//!
//! Nothing here touches the network; files named by variables (the service-account JWT, a
//! token file) are read when the store first logs in, so that a render without Vault
//! references never needs them.

use std::path::PathBuf;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::{Config, StoreError};

/// A credential kept in memory: wiped on drop, never printed.
pub(crate) type Secret = Zeroizing<String>;

/// The KV secrets engine version, when configuration fixes it instead of asking the mount.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KvVersion {
    V1,
    V2,
}

impl KvVersion {
    /// `1` or `2`; anything else is refused with the name of the setting.
    pub(crate) fn parse(v: &str, from: &str) -> Result<Self, String> {
        match v.trim() {
            "1" => Ok(KvVersion::V1),
            "2" => Ok(KvVersion::V2),
            other => Err(format!("{from} must be 1 or 2, not {other:?}")),
        }
    }
}

/// How the store gets a Vault token.
pub(crate) enum Auth {
    /// A token given directly (`VAULT_TOKEN`) or read from a file; never cached, never renewed.
    Token {
        given: Option<Secret>,
        file: Option<PathBuf>,
    },
    /// AppRole: `role_id` and (unless the role does not bind one) `secret_id`.
    AppRole {
        mount: String,
        role_id: String,
        secret_id: Option<Secret>,
    },
    /// Kubernetes: the pod's service-account JWT, checked by Vault with the TokenReview API.
    Kubernetes {
        mount: String,
        role: String,
        jwt_path: PathBuf,
    },
    /// Username and password.
    UserPass {
        mount: String,
        username: String,
        password: Secret,
    },
}

impl Auth {
    /// The name used in messages, in cache keys and in `AVP_AUTH_TYPE`.
    pub(crate) fn method(&self) -> &'static str {
        match self {
            Auth::Token { .. } => "token",
            Auth::AppRole { .. } => "approle",
            Auth::Kubernetes { .. } => "k8s",
            Auth::UserPass { .. } => "userpass",
        }
    }
}

/// TLS settings for the connection to Vault.
#[derive(Clone, Debug, Default)]
pub(crate) struct Tls {
    /// `VAULT_CACERT`: a PEM file of CA certificates to trust instead of the system's.
    pub cacert: Option<PathBuf>,
    /// `VAULT_CAPATH`: a folder of PEM files of CA certificates.
    pub capath: Option<PathBuf>,
    /// `VAULT_CLIENT_CERT` and `VAULT_CLIENT_KEY`: a client certificate for mutual TLS.
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    /// `VAULT_SKIP_VERIFY`: accept any server certificate (warned about on stderr).
    pub skip_verify: bool,
    /// `SSL_CERT_FILE`, the system bundle when no CA is configured.
    pub ssl_cert_file: Option<PathBuf>,
}

/// Everything the Vault store needs, read once from the configuration.
pub(crate) struct Settings {
    /// `https://vault.example:8200`, without a trailing slash.
    pub addr: String,
    /// `VAULT_NAMESPACE`, sent as `X-Vault-Namespace`.
    pub namespace: Option<String>,
    pub auth: Auth,
    /// `AVP_KV_VERSION`; `None`: ask the mount.
    pub kv_version: Option<KvVersion>,
    pub tls: Tls,
    /// Most time one HTTP call may take.
    pub timeout: Duration,
    /// Retries after the first attempt, on connection errors, 429 and 5xx.
    pub max_retries: u32,
    /// Where tokens obtained by logging in are cached; `None`: no disk cache.
    pub cache_dir: Option<PathBuf>,
}

/// The argocd-vault-plugin default for the service-account token.
pub(crate) const DEFAULT_JWT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
/// Vault's default address when `VAULT_ADDR` is not set.
const DEFAULT_ADDR: &str = "https://127.0.0.1:8200";

impl Settings {
    /// Reads the settings; fails on missing or contradictory values, naming the variable.
    pub(crate) fn from_config(c: &Config) -> Result<Self, StoreError> {
        let cfg = |m: String| StoreError::Config(m);
        let addr = c
            .var_any(&["VAULT_ADDR", "BAO_ADDR"])
            .unwrap_or(DEFAULT_ADDR)
            .trim()
            .trim_end_matches('/')
            .to_string();
        if !(addr.starts_with("http://") || addr.starts_with("https://")) {
            return Err(cfg(format!(
                "VAULT_ADDR must start with http:// or https://, not {:?}",
                addr.rsplit('@').next().unwrap_or("")
            )));
        }
        let namespace = c
            .var_any(&["VAULT_NAMESPACE", "BAO_NAMESPACE"])
            .map(|n| n.trim().trim_matches('/').to_string());
        let kv_version = match c.app_kv_version().or_else(|| {
            c.var_any(&["KUSTODIAN_VAULT_KV_VERSION", "AVP_KV_VERSION"])
                .map(|v| ("AVP_KV_VERSION", v))
        }) {
            Some((name, v)) => Some(KvVersion::parse(v, name).map_err(cfg)?),
            None => None,
        };
        let path = |names: &[&str]| c.var_any(names).map(PathBuf::from);
        let tls = Tls {
            cacert: path(&["VAULT_CACERT", "BAO_CACERT"]),
            capath: path(&["VAULT_CAPATH", "BAO_CAPATH"]),
            client_cert: path(&["VAULT_CLIENT_CERT", "BAO_CLIENT_CERT"]),
            client_key: path(&["VAULT_CLIENT_KEY", "BAO_CLIENT_KEY"]),
            skip_verify: match c.var_any(&["VAULT_SKIP_VERIFY", "BAO_SKIP_VERIFY"]) {
                Some(v) => truthy(v).ok_or_else(|| {
                    cfg(format!(
                        "VAULT_SKIP_VERIFY must be true or false, not {v:?}"
                    ))
                })?,
                None => false,
            },
            ssl_cert_file: path(&["SSL_CERT_FILE"]),
        };
        let timeout = match c.var_any(&["VAULT_CLIENT_TIMEOUT", "BAO_CLIENT_TIMEOUT"]) {
            Some(v) => parse_duration(v).ok_or_else(|| {
                cfg(format!(
                    "VAULT_CLIENT_TIMEOUT must be a duration such as 30 or 30s, not {v:?}"
                ))
            })?,
            None => Duration::from_secs(30),
        };
        let max_retries = match c.var_any(&["VAULT_MAX_RETRIES", "BAO_MAX_RETRIES"]) {
            Some(v) => v
                .trim()
                .parse::<u32>()
                .map_err(|_| {
                    cfg(format!(
                        "VAULT_MAX_RETRIES must be a whole number, not {v:?}"
                    ))
                })?
                .min(10),
            None => 2,
        };
        Ok(Settings {
            addr,
            namespace,
            auth: auth_from(c)?,
            kv_version,
            tls,
            timeout,
            max_retries,
            cache_dir: cache_dir(c),
        })
    }
}

/// The auth method from `KUSTODIAN_VAULT_AUTH` / `AVP_AUTH_TYPE`, or guessed from which
/// credentials are set.
fn auth_from(c: &Config) -> Result<Auth, StoreError> {
    let tenant = c.tenant()?;
    let explicit = c
        .var_any(&["KUSTODIAN_VAULT_AUTH", "AVP_AUTH_TYPE"])
        .map(|v| v.trim().to_ascii_lowercase());
    let method = match explicit.as_deref() {
        Some(m) => m.to_string(),
        None if c.var_any(&["VAULT_TOKEN", "BAO_TOKEN"]).is_some() => "token".into(),
        None if c.var("AVP_ROLE_ID").is_some() => "approle".into(),
        None if c.var("AVP_K8S_ROLE").is_some() || tenant.role.is_some() => "k8s".into(),
        None if c.var("AVP_USERNAME").is_some() => "userpass".into(),
        None => "token".into(),
    };
    let mount = |default: &str, own: &[&str]| -> String {
        let m = c
            .var_any(own)
            .or_else(|| c.var("AVP_MOUNT_PATH"))
            .unwrap_or(default);
        normalize_mount(m)
    };
    let required = |name: &str, why: &str| -> Result<String, StoreError> {
        c.var(name)
            .map(str::to_string)
            .ok_or_else(|| StoreError::Config(format!("{name} must be set {why}")))
    };
    if tenant.role.is_some() && !matches!(method.as_str(), "k8s" | "kubernetes") {
        return Err(StoreError::Config(format!(
            "the tenant mapping gives this Application a Kubernetes role, but the operator's login method is {method}; \
             set AVP_AUTH_TYPE=k8s in the sidecar or remove the role from the mapping"
        )));
    }
    Ok(match method.as_str() {
        "token" => {
            let given = c.var_any(&["VAULT_TOKEN", "BAO_TOKEN"]).map(|t| Zeroizing::new(t.trim().to_string()));
            let file = c
                .var("KUSTODIAN_VAULT_TOKEN_FILE")
                .map(PathBuf::from)
                .or_else(|| c.var("HOME").map(|h| PathBuf::from(h).join(".vault-token")));
            if given.is_none() && !file.as_ref().is_some_and(|f| f.is_file()) {
                return Err(StoreError::Config(
                    "no Vault credentials: set VAULT_TOKEN (or KUSTODIAN_VAULT_TOKEN_FILE), or choose a login method with \
                     AVP_AUTH_TYPE=k8s|approle|userpass and its variables (AVP_K8S_ROLE; AVP_ROLE_ID and AVP_SECRET_ID; AVP_USERNAME and AVP_PASSWORD)"
                        .into(),
                ));
            }
            Auth::Token { given, file }
        }
        "approle" => Auth::AppRole {
            mount: mount("auth/approle", &[]),
            role_id: required("AVP_ROLE_ID", "for AppRole login (AVP_AUTH_TYPE=approle)")?,
            secret_id: c.var("AVP_SECRET_ID").map(|s| Zeroizing::new(s.to_string())),
        },
        "k8s" | "kubernetes" => Auth::Kubernetes {
            mount: match &tenant.auth_mount {
                Some(m) => normalize_mount(m),
                None => mount("auth/kubernetes", &["AVP_K8S_MOUNT_PATH"]),
            },
            role: match tenant.role {
                Some(r) => r,
                None => required("AVP_K8S_ROLE", "for Kubernetes login (AVP_AUTH_TYPE=k8s)")?,
            },
            jwt_path: PathBuf::from(c.var("AVP_K8S_TOKEN_PATH").unwrap_or(DEFAULT_JWT_PATH)),
        },
        "userpass" => Auth::UserPass {
            mount: mount("auth/userpass", &[]),
            username: required("AVP_USERNAME", "for userpass login (AVP_AUTH_TYPE=userpass)")?,
            password: Zeroizing::new(required("AVP_PASSWORD", "for userpass login (AVP_AUTH_TYPE=userpass)")?),
        },
        other => {
            return Err(StoreError::Config(format!(
                "AVP_AUTH_TYPE {other:?} is not supported by kustodian's vault store; use token, approle, k8s or userpass"
            )))
        }
    })
}

/// `kubernetes`, `/auth/kubernetes/` -> `auth/kubernetes`.
pub(crate) fn normalize_mount(m: &str) -> String {
    let m = m.trim().trim_matches('/');
    if m.starts_with("auth/") {
        m.to_string()
    } else {
        format!("auth/{m}")
    }
}

/// The token cache folder: `KUSTODIAN_CACHE_DIR`, `$XDG_CACHE_HOME/kustodian`,
/// `~/.cache/kustodian`; `None` when disabled with `KUSTODIAN_VAULT_TOKEN_CACHE=off` or when
/// there is no home.
fn cache_dir(c: &Config) -> Option<PathBuf> {
    if c.var("KUSTODIAN_VAULT_TOKEN_CACHE")
        .is_some_and(|v| truthy(v) == Some(false))
    {
        return None;
    }
    let base = c
        .var("KUSTODIAN_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            c.var("XDG_CACHE_HOME")
                .map(|x| PathBuf::from(x).join("kustodian"))
        })
        .or_else(|| {
            c.var("HOME")
                .map(|h| PathBuf::from(h).join(".cache").join("kustodian"))
        })?;
    Some(base.join("vault-tokens"))
}

/// Go's `strconv.ParseBool`, plus `yes`/`no`/`on`/`off`.
pub(crate) fn truthy(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "t" | "true" | "yes" | "on" => Some(true),
        "0" | "f" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// `30`, `30s`, `1500ms`, `2m`.
fn parse_duration(v: &str) -> Option<Duration> {
    let v = v.trim();
    let (num, unit) = v
        .find(|c: char| !c.is_ascii_digit())
        .map(|i| v.split_at(i))
        .unwrap_or((v, "s"));
    let n: u64 = num.parse().ok()?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" | "" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        _ => return None,
    };
    (!d.is_zero()).then_some(d)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, StoreError> {
        let c = Config::from_vars(
            Path::new("/"),
            Path::new("/"),
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        );
        Settings::from_config(&c)
    }

    #[test]
    fn avp_names_pick_the_method_and_mounts() {
        let s = settings(&[
            ("AVP_AUTH_TYPE", "k8s"),
            ("AVP_K8S_ROLE", "argocd"),
            ("VAULT_ADDR", "http://v:8200/"),
        ])
        .unwrap();
        assert_eq!(s.addr, "http://v:8200");
        match s.auth {
            Auth::Kubernetes {
                mount,
                role,
                jwt_path,
            } => {
                assert_eq!(mount, "auth/kubernetes");
                assert_eq!(role, "argocd");
                assert_eq!(jwt_path, Path::new(DEFAULT_JWT_PATH));
            }
            _ => panic!("expected kubernetes"),
        }
        let s = settings(&[
            ("AVP_AUTH_TYPE", "k8s"),
            ("AVP_K8S_ROLE", "r"),
            ("AVP_MOUNT_PATH", "auth/generic"),
            ("AVP_K8S_MOUNT_PATH", "k8s-prod"),
        ])
        .unwrap();
        assert!(matches!(s.auth, Auth::Kubernetes { ref mount, .. } if mount == "auth/k8s-prod"));
        let s = settings(&[
            ("AVP_AUTH_TYPE", "approle"),
            ("AVP_ROLE_ID", "id"),
            ("AVP_MOUNT_PATH", "/approle-ci/"),
        ])
        .unwrap();
        assert!(matches!(s.auth, Auth::AppRole { ref mount, .. } if mount == "auth/approle-ci"));
    }

    #[test]
    fn missing_credentials_name_the_variable() {
        let e = settings(&[("AVP_AUTH_TYPE", "approle")])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("AVP_ROLE_ID"), "{e}");
        let e = settings(&[("AVP_AUTH_TYPE", "userpass"), ("AVP_USERNAME", "u")])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("AVP_PASSWORD"), "{e}");
        let e = settings(&[("AVP_AUTH_TYPE", "github")])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("not supported"), "{e}");
        let e = settings(&[("HOME", "/nonexistent")])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("VAULT_TOKEN"), "{e}");
        let e = settings(&[("VAULT_TOKEN", "t"), ("AVP_KV_VERSION", "3")])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("AVP_KV_VERSION"), "{e}");
    }

    #[test]
    fn application_twins_change_no_connection_setting() {
        let s = settings(&[
            ("BAO_ADDR", "https://operator:8200"),
            ("VAULT_TOKEN", "t"),
            ("ARGOCD_ENV_VAULT_ADDR", "http://attacker"),
            ("ARGOCD_ENV_VAULT_SKIP_VERIFY", "true"),
            ("ARGOCD_ENV_AVP_AUTH_TYPE", "k8s"),
            ("ARGOCD_ENV_AVP_K8S_TOKEN_PATH", "/age/keys.txt"),
            ("ARGOCD_ENV_KUSTODIAN_CACHE_DIR", "/tmp/x"),
            ("ARGOCD_ENV_AVP_KV_VERSION", "1"),
        ])
        .unwrap();
        assert_eq!(s.addr, "https://operator:8200");
        assert!(!s.tls.skip_verify);
        assert_eq!(s.auth.method(), "token");
        assert!(s.cache_dir.is_none());
        assert_eq!(s.kv_version, Some(KvVersion::V1));
        let e = settings(&[("VAULT_TOKEN", "t"), ("ARGOCD_ENV_AVP_K8S_ROLE", "admin")])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("KUSTODIAN_TENANTS_FILE"), "{e}");
    }

    #[test]
    fn method_is_guessed_from_credentials() {
        let s = settings(&[("VAULT_TOKEN", "t")]).unwrap();
        assert_eq!(s.auth.method(), "token");
        let s = settings(&[("AVP_USERNAME", "u"), ("AVP_PASSWORD", "p")]).unwrap();
        assert_eq!(s.auth.method(), "userpass");
    }

    #[test]
    fn cache_dir_precedence_and_switch() {
        let s = settings(&[
            ("VAULT_TOKEN", "t"),
            ("HOME", "/h"),
            ("XDG_CACHE_HOME", "/x"),
        ])
        .unwrap();
        assert_eq!(s.cache_dir.unwrap(), Path::new("/x/kustodian/vault-tokens"));
        let s = settings(&[("VAULT_TOKEN", "t"), ("HOME", "/h")]).unwrap();
        assert_eq!(
            s.cache_dir.unwrap(),
            Path::new("/h/.cache/kustodian/vault-tokens")
        );
        let s = settings(&[
            ("VAULT_TOKEN", "t"),
            ("HOME", "/h"),
            ("KUSTODIAN_CACHE_DIR", "/c"),
        ])
        .unwrap();
        assert_eq!(s.cache_dir.unwrap(), Path::new("/c/vault-tokens"));
        let s = settings(&[
            ("VAULT_TOKEN", "t"),
            ("HOME", "/h"),
            ("KUSTODIAN_VAULT_TOKEN_CACHE", "off"),
        ])
        .unwrap();
        assert!(s.cache_dir.is_none());
    }

    #[test]
    fn durations_and_flags() {
        assert_eq!(parse_duration("30"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("1500ms"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(truthy("TRUE"), Some(true));
        assert_eq!(truthy("0"), Some(false));
        assert!(settings(&[("VAULT_TOKEN", "t"), ("VAULT_SKIP_VERIFY", "maybe")]).is_err());
        assert!(settings(&[("VAULT_TOKEN", "t"), ("VAULT_ADDR", "vault:8200")]).is_err());
    }
}
