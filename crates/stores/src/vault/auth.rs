//! Logging in: the request each auth method makes, the lease that comes back, token renewal,
//! and the identity that keys the token cache.

use std::path::Path;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::files;
use super::http::{Http, Method};
use super::settings::{Auth, Secret};
use crate::http::{encode_path, encode_segment};
use crate::{SecretValue, StoreError};

/// A token and how long it lasts.
pub(crate) struct Lease {
    pub token: Secret,
    /// Lease in ms; 0 means it does not expire.
    pub lease_ms: u64,
    pub renewable: bool,
}

/// Credentials read for one login method, kept only as long as the store.
pub(crate) struct Login {
    /// The path posted to (`auth/kubernetes/login`).
    path: String,
    /// The request body (holds the credential; wiped on drop).
    body: SecretValue,
    /// `kubernetes login as role "argocd" at auth/kubernetes`, for messages.
    pub what: String,
    /// What to do when Vault refuses.
    help: String,
    /// Cache key parts beyond address and namespace: method, mount, identity, and a
    /// fingerprint of the credential.
    pub key: [String; 4],
    /// Strings that must never appear in a message.
    pub secrets: Vec<Secret>,
}

impl Login {
    /// Reads the credentials for a login method (the JWT file for Kubernetes). `None` for
    /// token auth, which does not log in.
    pub(crate) fn prepare(auth: &Auth) -> Result<Option<Login>, StoreError> {
        Ok(Some(match auth {
            Auth::Token { .. } => return Ok(None),
            Auth::Kubernetes {
                mount,
                role,
                jwt_path,
            } => {
                let jwt =
                    read_secret_file(jwt_path, "the service-account token (AVP_K8S_TOKEN_PATH)")?;
                Login {
                    path: format!("{}/login", encode_path(mount)),
                    body: SecretValue::new(json!({"role": role, "jwt": jwt.as_str()})),
                    what: format!("kubernetes login as role {role:?} at {mount}"),
                    help: format!(
                        "check that the service account and namespace of the JWT in {} are bound to the role \
                         (bound_service_account_names, bound_service_account_namespaces)",
                        jwt_path.display()
                    ),
                    key: [auth.method().into(), mount.clone(), role.clone(), fingerprint(&jwt)],
                    secrets: vec![jwt],
                }
            }
            Auth::AppRole {
                mount,
                role_id,
                secret_id,
            } => {
                let mut body = json!({"role_id": role_id});
                if let Some(s) = secret_id {
                    body["secret_id"] = Value::String(s.to_string());
                }
                Login {
                    path: format!("{}/login", encode_path(mount)),
                    body: SecretValue::new(body),
                    what: format!("approle login at {mount}"),
                    help: "check AVP_ROLE_ID and AVP_SECRET_ID (secret IDs expire and may be single-use)".into(),
                    key: [
                        auth.method().into(),
                        mount.clone(),
                        role_id.clone(),
                        secret_id.as_ref().map(|s| fingerprint(s)).unwrap_or_default(),
                    ],
                    secrets: secret_id.iter().cloned().collect(),
                }
            }
            Auth::UserPass {
                mount,
                username,
                password,
            } => Login {
                path: format!("{}/login/{}", encode_path(mount), encode_segment(username)),
                body: SecretValue::new(json!({"password": password.as_str()})),
                what: format!("userpass login as {username:?} at {mount}"),
                help: "check AVP_USERNAME and AVP_PASSWORD".into(),
                key: [
                    auth.method().into(),
                    mount.clone(),
                    username.clone(),
                    fingerprint(password),
                ],
                secrets: vec![password.clone()],
            },
        }))
    }

    /// Logs in and returns the new token's lease.
    pub(crate) fn login(&self, http: &Http) -> Result<Lease, StoreError> {
        let reply = http
            .call(
                Method::Post,
                &self.path,
                &[],
                None,
                Some(self.body.expose()),
            )
            .map_err(|e| self.fail(e.0))?;
        if let Some(why) = reply.malformed_text() {
            return Err(self.fail(why));
        }
        if reply.status != 200 {
            let mut reason = format!("{} was refused ({})", self.what, reply.status_and_error());
            if matches!(reply.status, 400 | 401 | 403) {
                reason.push_str("; ");
                reason.push_str(&self.help);
            }
            return Err(self.fail_raw(reason));
        }
        lease_from(reply.body.expose())
            .ok_or_else(|| self.fail_raw(format!("{}: the answer holds no token", self.what)))
    }

    fn fail(&self, why: String) -> StoreError {
        self.fail_raw(format!("{}: {why}", self.what))
    }

    fn fail_raw(&self, reason: String) -> StoreError {
        let mut reason = reason;
        for s in &self.secrets {
            if s.len() >= 4 {
                reason = reason.replace(s.as_str(), "[redacted]");
            }
        }
        StoreError::Auth {
            store: "vault".into(),
            reason,
        }
    }
}

/// Renews a token (`auth/token/renew-self`); `None` when Vault refuses or is unreachable.
pub(crate) fn renew(http: &Http, token: &str) -> Option<Lease> {
    let reply = http
        .call(
            Method::Post,
            "auth/token/renew-self",
            &[],
            Some(token),
            Some(&json!({})),
        )
        .ok()?;
    (reply.status == 200)
        .then(|| lease_from(reply.body.expose()))
        .flatten()
}

/// Reads `auth.client_token`, `auth.lease_duration` and `auth.renewable`.
fn lease_from(body: &Value) -> Option<Lease> {
    let auth = body.get("auth")?;
    let token = auth
        .get("client_token")?
        .as_str()
        .filter(|t| !t.is_empty())?;
    Some(Lease {
        token: Zeroizing::new(token.to_string()),
        lease_ms: auth
            .get("lease_duration")
            .and_then(Value::as_u64)
            .unwrap_or(0)
            .saturating_mul(1000),
        renewable: auth
            .get("renewable")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

/// A file holding a credential (a JWT, a token), trimmed: a regular file of at most 64 KiB
/// (a FIFO, `/dev/zero` or a huge file is refused, never read to the end).
pub(crate) fn read_secret_file(path: &Path, what: &str) -> Result<Secret, StoreError> {
    let bytes = files::read_bounded(path, files::LIMIT).map_err(|e| {
        StoreError::Config(format!("cannot read {what} at {}: {e}", path.display()))
    })?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| StoreError::Config(format!("{what} at {} is not text", path.display())))?;
    let trimmed = Zeroizing::new(text.trim().to_string());
    if trimmed.is_empty() {
        return Err(StoreError::Config(format!(
            "{what} at {} is empty",
            path.display()
        )));
    }
    Ok(trimmed)
}

/// A short one-way fingerprint of a credential for the cache key.
fn fingerprint(s: &str) -> String {
    hex::encode(&Sha256::digest(s.as_bytes())[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_are_keyed_by_role_and_credential() {
        let dir = tempfile::tempdir().unwrap();
        let jwt = dir.path().join("token");
        std::fs::write(&jwt, "header.payload.sig\n").unwrap();
        let k8s = |role: &str| Auth::Kubernetes {
            mount: "auth/kubernetes".into(),
            role: role.into(),
            jwt_path: jwt.clone(),
        };
        let a = Login::prepare(&k8s("a")).unwrap().unwrap();
        let b = Login::prepare(&k8s("b")).unwrap().unwrap();
        assert_ne!(a.key, b.key);
        assert_eq!(a.path, "auth/kubernetes/login");
        std::fs::write(&jwt, "other.payload.sig").unwrap();
        let a2 = Login::prepare(&k8s("a")).unwrap().unwrap();
        assert_ne!(
            a.key, a2.key,
            "a different service account JWT must not reuse the token"
        );
        assert!(!a.key.iter().any(|k| k.contains("payload")));
    }

    #[test]
    fn userpass_path_and_redaction() {
        let auth = Auth::UserPass {
            mount: "auth/userpass".into(),
            username: "ci bot".into(),
            password: Zeroizing::new("canary-pw".into()),
        };
        let l = Login::prepare(&auth).unwrap().unwrap();
        assert_eq!(l.path, "auth/userpass/login/ci%20bot");
        let e = l.fail_raw("server said canary-pw".into()).to_string();
        assert!(!e.contains("canary-pw"), "{e}");
    }

    #[test]
    fn missing_jwt_file_is_a_config_error() {
        let auth = Auth::Kubernetes {
            mount: "auth/kubernetes".into(),
            role: "r".into(),
            jwt_path: "/nonexistent/token".into(),
        };
        let e = Login::prepare(&auth).err().unwrap().to_string();
        assert!(
            e.contains("/nonexistent/token") && e.contains("AVP_K8S_TOKEN_PATH"),
            "{e}"
        );
    }

    #[test]
    fn leases_are_read() {
        let l = lease_from(
            &json!({"auth": {"client_token": "s.x", "lease_duration": 60, "renewable": true}}),
        )
        .unwrap();
        assert_eq!(
            (l.token.as_str(), l.lease_ms, l.renewable),
            ("s.x", 60_000, true)
        );
        assert!(lease_from(&json!({"auth": null})).is_none());
    }
}
