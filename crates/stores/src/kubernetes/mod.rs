//! Kubernetes Secrets as a store: vals' `ref+k8s://v1/Secret/NAMESPACE/NAME/KEY` and
//! argocd-vault-plugin's `kubernetessecret` placeholders, `<path:NAMESPACE:NAME#KEY>`.
//!
//! A repository writer names the namespace, and the sidecar reads with its own identity, so
//! the namespaces a reference may read are an operator allow-list
//! (`KUSTODIAN_K8S_ALLOWED_NAMESPACES`, comma-separated, `*` matches any text); with none set
//! every reference is refused before any request. Each distinct Secret is read once per render
//! (`GET /api/v1/namespaces/NS/secrets/NAME`), whatever the number of keys used from it.
//! How to connect: [`connect`]. Messages name the Secret and the API's `Status` message,
//! never a value or a token.

pub(crate) mod connect;

use std::sync::Arc;

use base64::Engine as _;
use serde_json::Value;

use crate::rest::{seconds_setting, Endpoint, Memo, Rest};
use crate::{Config, Request, SecretValue, Store, StoreError};

/// The store name (`ref+k8s://`, `AVP_TYPE=kubernetessecret`).
pub const STORE: &str = "k8s";

/// The Kubernetes Secrets store.
pub struct Kubernetes {
    api: Rest,
    source: String,
    allowed: Vec<String>,
    secrets: Memo<(String, String), Arc<SecretValue>>,
}

impl Kubernetes {
    /// Builds the store from the operator's settings.
    pub fn factory(config: &Config) -> Result<Arc<dyn Store>, StoreError> {
        let allowed = allowed_namespaces(config);
        if config.var("KUSTODIAN_K8S_ALLOWED_NAMESPACES").is_none() {
            return Err(StoreError::Config(
                "KUSTODIAN_K8S_ALLOWED_NAMESPACES is not set: references may name any namespace, and the sidecar \
                 reads with its own identity, so the operator lists the namespaces they may read (comma-separated, \
                 * matches any text) in the sidecar's environment (docs/kubernetes.md)"
                    .into(),
            ));
        }
        let conn = connect::resolve(config)?;
        Ok(Arc::new(Kubernetes {
            api: Rest::new(Endpoint {
                base: conn.server,
                token: conn.token,
                tls: conn.tls,
                setting: "the cluster's server in the kubeconfig",
                budget: seconds_setting(config, "KUSTODIAN_K8S_TIMEOUT", 30)?,
                attempts: 4,
            }),
            source: conn.source,
            allowed,
            secrets: Memo::default(),
        }))
    }

    fn secret(&self, ns: &str, name: &str, what: &str) -> Result<Arc<SecretValue>, StoreError> {
        self.secrets.get((ns.to_string(), name.to_string()), || {
            let reply = self
                .api
                .get(&format!("/api/v1/namespaces/{ns}/secrets/{name}"))
                .map_err(|reason| StoreError::Unavailable {
                    store: STORE.into(),
                    reason,
                })?;
            let msg = || self.api.message(&reply);
            match reply.status {
                200 => Ok(Arc::new(SecretValue::new(decoded(reply.body.expose(), what)?))),
                401 => Err(StoreError::Unavailable {
                    store: STORE.into(),
                    reason: format!(
                        "the Kubernetes API at {} refused the credentials of {} ({}); renew the token or certificate",
                        self.api.address(),
                        self.source,
                        msg()
                    ),
                }),
                403 => Err(StoreError::Denied {
                    store: STORE.into(),
                    path: what.into(),
                    detail: Some(format!(
                        "{}; grant `get` on this Secret in namespace {ns} to the identity of {} (a Role and RoleBinding)",
                        msg(),
                        self.source
                    )),
                }),
                404 => Err(StoreError::NotFound {
                    store: STORE.into(),
                    path: what.into(),
                }),
                _ => Err(StoreError::Backend {
                    store: STORE.into(),
                    path: what.into(),
                    reason: format!("the Kubernetes API answered {}", msg()),
                }),
            }
        })
    }

    fn allowed(&self, ns: &str) -> bool {
        self.allowed.iter().any(|p| glob(p, ns))
    }
}

impl Store for Kubernetes {
    fn name(&self) -> &str {
        STORE
    }

    fn fetch(&self, req: &Request) -> Result<SecretValue, StoreError> {
        let invalid = |reason: String| StoreError::Invalid {
            path: req.path.clone(),
            reason,
        };
        if req.version.is_some() {
            return Err(invalid(
                "Kubernetes Secrets have no versions; remove the version".into(),
            ));
        }
        if let Some((k, _)) = req.params.iter().find(|(k, _)| k != "kv-version") {
            return Err(invalid(format!(
                "ref+k8s:// takes no ?{k}= here: the cluster and context are chosen by the operator \
                 (KUBECONFIG, KUSTODIAN_K8S_CONTEXT)"
            )));
        }
        let (ns, name, key) =
            match req.path.split_once(':') {
                Some((ns, name)) => (ns.trim(), name.trim(), None),
                None => match req.path.trim_matches('/').split('/').collect::<Vec<_>>()[..] {
                    ["v1", "Secret", ns, name, key] => (ns, name, Some(key)),
                    _ => return Err(invalid(
                        "a Kubernetes reference reads ref+k8s://v1/Secret/NAMESPACE/NAME/KEY, or \
                         <path:NAMESPACE:NAME#KEY> with AVP_TYPE=kubernetessecret"
                            .into(),
                    )),
                },
            };
        for (part, v) in [("namespace", ns), ("name", name)] {
            if !is_dns_name(v) {
                return Err(invalid(format!(
                    "{v:?} is not a Kubernetes {part} (lower-case letters, digits, '-' and '.')"
                )));
            }
        }
        if !self.allowed(ns) {
            return Err(StoreError::Denied {
                store: STORE.into(),
                path: req.path.clone(),
                detail: Some(format!(
                    "namespace {ns} is not in KUSTODIAN_K8S_ALLOWED_NAMESPACES ({}); the operator decides which \
                     namespaces references may read",
                    if self.allowed.is_empty() {
                        "which allows none here".to_string()
                    } else {
                        self.allowed.join(",")
                    }
                )),
            });
        }
        let doc = self.secret(ns, name, &req.path)?;
        match key {
            None => Ok(SecretValue::new(doc.expose().clone())),
            Some(key) => match doc.expose().get(key) {
                Some(v) => Ok(SecretValue::new(v.clone())),
                None => Err(StoreError::NotFound {
                    store: STORE.into(),
                    path: format!("{} (the Secret has no key {key:?})", req.path),
                }),
            },
        }
    }
}

/// The operator's allow-list. The entry `$ARGOCD_APP_NAMESPACE` stands for the namespace Argo
/// CD deploys the Application to (which its AppProject's destinations bound), so that each
/// Application reads only its own namespace's Secrets; without that variable it matches nothing.
fn allowed_namespaces(config: &Config) -> Vec<String> {
    config
        .var("KUSTODIAN_K8S_ALLOWED_NAMESPACES")
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .filter_map(|s| match s {
            "$ARGOCD_APP_NAMESPACE" => config
                .var("ARGOCD_APP_NAMESPACE")
                .map(|n| n.trim().to_string())
                .filter(|n| is_dns_name(n)),
            _ => Some(s.to_string()),
        })
        .collect()
}

/// A Secret's `data`, each value base64-decoded to text.
fn decoded(secret: &Value, what: &str) -> Result<Value, StoreError> {
    let mut out = serde_json::Map::new();
    for (k, v) in secret["data"].as_object().into_iter().flatten() {
        let bytes = zeroize::Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap_or(""))
                .map_err(|_| StoreError::Backend {
                    store: STORE.into(),
                    path: what.into(),
                    reason: format!("the value of key {k:?} is not base64"),
                })?,
        );
        let text = String::from_utf8(bytes.to_vec()).map_err(|e| {
            let mut b = e.into_bytes();
            zeroize::Zeroize::zeroize(&mut b);
            StoreError::Invalid {
                path: what.into(),
                reason: format!("the value of key {k:?} is binary, not text"),
            }
        })?;
        out.insert(k.clone(), Value::String(text));
    }
    Ok(Value::Object(out))
}

/// A DNS-1123 name or subdomain, as namespaces and Secret names are.
fn is_dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && !s.starts_with(['-', '.'])
        && !s.ends_with(['-', '.'])
}

/// `*` matches any text, everything else itself.
fn glob(pattern: &str, s: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == s,
        Some((head, rest)) => {
            let Some(tail) = s.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len())
                .filter(|i| tail.is_char_boundary(*i))
                .any(|i| glob(rest, &tail[i..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_patterns() {
        assert!(glob("team-*", "team-a"));
        assert!(!glob("team-*", "kube-system"));
        assert!(glob("*", "argocd"));
        assert!(glob("a*b*c", "axxbyyc"));
        assert!(!glob("apps", "apps2"));
    }

    #[test]
    fn the_applications_own_namespace_as_an_allow_list_entry() {
        let c = |vars: &[(&str, &str)]| {
            Config::from_vars(
                std::path::Path::new("/"),
                std::path::Path::new("/"),
                vars.iter().map(|(k, v)| (k.to_string(), v.to_string())),
            )
        };
        let list = "$ARGOCD_APP_NAMESPACE, shared";
        let with = c(&[
            ("KUSTODIAN_K8S_ALLOWED_NAMESPACES", list),
            ("ARGOCD_APP_NAMESPACE", "team-a"),
        ]);
        assert_eq!(allowed_namespaces(&with), ["team-a", "shared"]);
        let without = c(&[("KUSTODIAN_K8S_ALLOWED_NAMESPACES", list)]);
        assert_eq!(allowed_namespaces(&without), ["shared"]);
        let app = c(&[
            ("KUSTODIAN_K8S_ALLOWED_NAMESPACES", "$ARGOCD_APP_NAMESPACE"),
            ("ARGOCD_ENV_ARGOCD_APP_NAMESPACE", "kube-system"),
        ]);
        assert!(allowed_namespaces(&app).is_empty());
    }

    #[test]
    fn names_cannot_escape_the_path() {
        assert!(is_dns_name("my-app.v1"));
        for bad in ["", "..", "a/b", "A", "a?b", "-a", "a%2f"] {
            assert!(!is_dns_name(bad), "{bad}");
        }
    }

    #[test]
    fn data_is_decoded_and_binary_refused_without_its_bytes() {
        let v = decoded(&serde_json::json!({"data": {"k": "dmFsdWU="}}), "x").unwrap();
        assert_eq!(v["k"], "value");
        let e = decoded(&serde_json::json!({"data": {"k": "//79"}}), "x").unwrap_err();
        assert!(e.to_string().contains("binary"));
    }
}
