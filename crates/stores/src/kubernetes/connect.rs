//! Where the Kubernetes API is and how to log in to it, from the operator's settings only:
//! `KUBECONFIG` (its current context, or `KUSTODIAN_K8S_CONTEXT`), else the in-cluster
//! service account (`KUBERNETES_SERVICE_HOST`/`_PORT` and the mounted `token` and `ca.crt`),
//! else `~/.kube/config`.
//!
//! From a kubeconfig: the cluster's `server`, `certificate-authority(-data)`,
//! `insecure-skip-tls-verify`; the user's `token`/`tokenFile` or
//! `client-certificate(-data)`/`client-key(-data)`. Exec credential plugins, auth providers
//! and basic auth are not supported (each is a clear error).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::Value;
use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};
use zeroize::Zeroizing;

use crate::vault::files;
use crate::{Config, StoreError};

/// The largest kubeconfig, certificate, key or token file read.
const FILE_LIMIT: u64 = 1024 * 1024;
/// Where Kubernetes mounts a pod's service-account credentials.
const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// A resolved connection.
pub(crate) struct Connection {
    pub server: String,
    pub token: Option<Zeroizing<String>>,
    pub tls: TlsConfig,
    /// Where it came from, for messages (`kubeconfig /p (context c)`, `the in-cluster service account`).
    pub source: String,
}

fn config_err(msg: String) -> StoreError {
    StoreError::Config(msg)
}

/// The connection the operator configured.
pub(crate) fn resolve(c: &Config) -> Result<Connection, StoreError> {
    if let Some(list) = c.var("KUBECONFIG") {
        let files: Vec<PathBuf> = std::env::split_paths(list)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
        return from_kubeconfig(c, &files);
    }
    if let Some(host) = c.var("KUBERNETES_SERVICE_HOST") {
        return in_cluster(c, host);
    }
    if let Some(home) = c.var("HOME") {
        let f = Path::new(home).join(".kube/config");
        if f.is_file() {
            return from_kubeconfig(c, &[f]);
        }
    }
    Err(config_err(
        "no Kubernetes connection: run in a pod (the service account is used), or set KUBECONFIG in the \
         sidecar's environment (docs/kubernetes.md)"
            .into(),
    ))
}

pub(crate) fn read(path: &Path, what: &str) -> Result<Zeroizing<Vec<u8>>, StoreError> {
    files::read_bounded(path, FILE_LIMIT)
        .map_err(|e| config_err(format!("{what} {}: {e}", path.display())))
}

fn in_cluster(c: &Config, host: &str) -> Result<Connection, StoreError> {
    let dir = PathBuf::from(
        c.var("KUSTODIAN_K8S_SERVICE_ACCOUNT_DIR")
            .unwrap_or(SERVICE_ACCOUNT_DIR),
    );
    let port = c.var("KUBERNETES_SERVICE_PORT").unwrap_or("443");
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    let token = read(&dir.join("token"), "the service-account token")?;
    let token = String::from_utf8_lossy(&token).trim().to_string();
    let ca = read(&dir.join("ca.crt"), "the service-account CA")?;
    Ok(Connection {
        server: format!("https://{host}:{port}"),
        token: Some(Zeroizing::new(token)),
        tls: tls(Some(&ca), None, false, "the service-account ca.crt")?,
        source: "the in-cluster service account".into(),
    })
}

/// A kubeconfig file parsed as JSON.
fn load(path: &Path) -> Result<Value, StoreError> {
    let bytes = read(path, "KUBECONFIG")?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| config_err(format!("KUBECONFIG {}: not UTF-8 text", path.display())))?;
    let docs = kustodian_manifest::parse_stream(text).map_err(|e| {
        config_err(format!(
            "KUBECONFIG {}: not valid YAML ({})",
            path.display(),
            e.to_string().lines().next().unwrap_or("")
        ))
    })?;
    Ok(docs
        .first()
        .map(|d| d.root.to_json())
        .unwrap_or(Value::Null))
}

/// The entry called `name` in a kubeconfig list (`clusters`, `users`, `contexts`), with the
/// file it came from; the first file that has it wins, as kubectl merges.
fn entry<'a>(
    configs: &'a [(PathBuf, Value)],
    list: &str,
    name: &str,
) -> Option<(&'a Path, &'a Value)> {
    configs.iter().find_map(|(p, v)| {
        v[list]
            .as_array()?
            .iter()
            .find(|e| e["name"].as_str() == Some(name))
            .map(|e| (p.as_path(), &e[list.trim_end_matches('s')]))
    })
}

fn from_kubeconfig(c: &Config, paths: &[PathBuf]) -> Result<Connection, StoreError> {
    let mut configs = Vec::new();
    for p in paths {
        match load(p) {
            Err(_) if !p.exists() => continue,
            r => configs.push((p.clone(), r?)),
        }
    }
    let shown = paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":");
    let context = c
        .var("KUSTODIAN_K8S_CONTEXT")
        .map(str::to_string)
        .or_else(|| {
            configs
                .iter()
                .find_map(|(_, v)| v["current-context"].as_str().filter(|s| !s.is_empty()))
                .map(str::to_string)
        })
        .ok_or_else(|| {
            config_err(format!(
                "KUBECONFIG {shown}: no current-context; set one, or name the context in KUSTODIAN_K8S_CONTEXT"
            ))
        })?;
    let (_, ctx) = entry(&configs, "contexts", &context)
        .ok_or_else(|| config_err(format!("KUBECONFIG {shown}: no context {context:?}")))?;
    let cluster_name = ctx["cluster"].as_str().unwrap_or("");
    let user_name = ctx["user"].as_str().unwrap_or("");
    let (cluster_file, cluster) = entry(&configs, "clusters", cluster_name).ok_or_else(|| {
        config_err(format!(
            "KUBECONFIG {shown}: context {context:?} names cluster {cluster_name:?}, which is not defined"
        ))
    })?;
    let server = cluster["server"]
        .as_str()
        .map(|s| s.trim_end_matches('/').to_string())
        .filter(|s| s.starts_with("https://") || s.starts_with("http://"))
        .ok_or_else(|| {
            config_err(format!(
                "KUBECONFIG {shown}: cluster {cluster_name:?} has no https:// server"
            ))
        })?;
    let ca = pem(
        cluster_file,
        cluster,
        "certificate-authority",
        "the cluster's CA",
    )?;
    let insecure = cluster["insecure-skip-tls-verify"].as_bool() == Some(true);

    let none = Value::Null;
    let (user_file, user) = if user_name.is_empty() {
        (cluster_file, &none)
    } else {
        entry(&configs, "users", user_name).ok_or_else(|| {
            config_err(format!(
                "KUBECONFIG {shown}: context {context:?} names user {user_name:?}, which is not defined"
            ))
        })?
    };
    for (field, what) in [
        ("exec", "exec credential plugins"),
        ("auth-provider", "auth providers"),
        ("username", "basic auth"),
    ] {
        if !user[field].is_null() {
            return Err(config_err(format!(
                "KUBECONFIG {shown}: user {user_name:?} logs in with {what}, which kustodian does not run; \
                 give the sidecar a kubeconfig with a token, a tokenFile or a client certificate and key"
            )));
        }
    }
    let token = match (user["token"].as_str(), user["tokenFile"].as_str()) {
        (Some(t), _) if !t.is_empty() => Some(Zeroizing::new(t.trim().to_string())),
        (_, Some(f)) if !f.is_empty() => {
            let bytes = read(&relative(user_file, f), "the kubeconfig user's tokenFile")?;
            Some(Zeroizing::new(
                String::from_utf8_lossy(&bytes).trim().to_string(),
            ))
        }
        _ => None,
    };
    let cert = pem(
        user_file,
        user,
        "client-certificate",
        "the client certificate",
    )?;
    let key = pem(user_file, user, "client-key", "the client key")?;
    let client = match (&cert, &key) {
        (Some(c), Some(k)) => Some((&c[..], &k[..])),
        (None, None) => None,
        _ => {
            return Err(config_err(format!(
            "KUBECONFIG {shown}: user {user_name:?} needs both client-certificate and client-key"
        )))
        }
    };
    Ok(Connection {
        server,
        token,
        tls: tls(
            ca.as_deref().map(|v| &v[..]),
            client,
            insecure,
            "the kubeconfig",
        )?,
        source: format!("KUBECONFIG {shown} (context {context})"),
    })
}

/// A path in a kubeconfig, relative to the file that names it.
fn relative(file: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        file.parent().unwrap_or(Path::new(".")).join(p)
    }
}

/// `FIELD-data` (base64 PEM) or `FIELD` (a file) of a kubeconfig entry.
fn pem(
    file: &Path,
    entry: &Value,
    field: &str,
    what: &str,
) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
    if let Some(data) = entry[format!("{field}-data")].as_str() {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .map_err(|_| config_err(format!("{field}-data in the kubeconfig is not base64")))?;
        return Ok(Some(Zeroizing::new(bytes)));
    }
    match entry[field].as_str() {
        Some(f) if !f.is_empty() => Ok(Some(read(&relative(file, f), what)?)),
        _ => Ok(None),
    }
}

/// A TLS configuration trusting `ca` (PEM; the system's roots when `None`), with a client
/// certificate and key (PEM) when given.
pub(crate) fn tls(
    ca: Option<&[u8]>,
    client: Option<(&[u8], &[u8])>,
    insecure: bool,
    from: &str,
) -> Result<TlsConfig, StoreError> {
    let mut b = TlsConfig::builder().disable_verification(insecure);
    if let Some(ca) = ca {
        let roots = certs(ca);
        if roots.is_empty() {
            return Err(config_err(format!(
                "{from}: the CA holds no PEM certificate"
            )));
        }
        b = b.root_certs(RootCerts::new_with_certs(&roots));
    }
    if let Some((cert, key)) = client {
        let chain = certs(cert);
        let key: Option<PrivateKey<'static>> = ureq::tls::parse_pem(key).find_map(|i| match i {
            Ok(PemItem::PrivateKey(k)) => Some(k),
            _ => None,
        });
        match (chain.is_empty(), key) {
            (false, Some(key)) => b = b.client_cert(Some(ClientCert::new_with_certs(&chain, key))),
            _ => {
                return Err(config_err(format!(
                    "{from}: the client certificate or key holds no PEM certificate or private key"
                )))
            }
        }
    }
    Ok(b.build())
}

fn certs(pem: &[u8]) -> Vec<Certificate<'static>> {
    ureq::tls::parse_pem(pem)
        .filter_map(|i| match i {
            Ok(PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Operator variables only (tests name no Application variable).
    fn operator(vars: &[(&str, &str)]) -> Config {
        let owned = vars.iter().map(|&(k, v)| (k.into(), v.into()));
        Config::from_vars(Path::new("/"), Path::new("/"), owned)
    }

    #[test]
    fn kubeconfig_lists_merge_and_the_operator_may_name_the_context() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::write(
            &a,
            "current-context: broken\ncontexts:\n- name: broken\n  context: {cluster: nowhere, user: u}\n\
             - name: good\n  context: {cluster: c, user: u}\n",
        )
        .unwrap();
        std::fs::write(
            &b,
            "clusters:\n- name: c\n  cluster: {server: 'https://k8s.example:6443/'}\n\
             users:\n- name: u\n  user: {tokenFile: tok}\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("tok"), "canary-token-file\n").unwrap();
        let list = format!(
            "{}:{}:{}",
            a.display(),
            dir.path().join("missing").display(),
            b.display()
        );
        let e = resolve(&operator(&[("KUBECONFIG", &list)])).err().unwrap();
        assert!(e.to_string().contains("cluster \"nowhere\""), "{e}");
        let c = resolve(&operator(&[
            ("KUBECONFIG", &list),
            ("KUSTODIAN_K8S_CONTEXT", "good"),
        ]))
        .unwrap();
        assert_eq!(c.server, "https://k8s.example:6443");
        assert_eq!(
            c.token.as_deref().map(|t| t.as_str()),
            Some("canary-token-file")
        );
        assert!(c.source.contains("context good"));
    }
}
