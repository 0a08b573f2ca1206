//! A stand-in for the one Kubernetes API call the k8s store makes,
//! `GET /api/v1/namespaces/{ns}/secrets/{name}`, over HTTPS with a test CA (see
//! [`super::standin::TlsFront`]). It authenticates a bearer token or a client certificate
//! (its CN), authorizes by namespace like an RBAC Role would, and answers like the API server:
//! a `Secret` with base64 `data`, or a `Status` (401 Unauthorized, 403 Forbidden, 404 NotFound,
//! 429 TooManyRequests with `Retry-After`).

#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use base64::Engine as _;
use serde_json::{json, Value};

use super::standin::{Pki, Reply, Req, Server, TlsFront};

/// Who may call, and where they may read Secrets.
#[derive(Clone)]
pub struct Identity {
    /// A bearer token that authenticates as `user`.
    pub token: Option<String>,
    /// A client-certificate CN that authenticates as `user`.
    pub cn: Option<String>,
    pub user: String,
    /// Namespaces where `user` may get Secrets.
    pub namespaces: Vec<String>,
}

/// A Secret: namespace, name, and its data as text.
pub type Secret = (
    &'static str,
    &'static str,
    Vec<(&'static str, &'static str)>,
);

/// The running API.
pub struct KubeApi {
    pub server: Server,
    pub front: TlsFront,
    pub pki: Pki,
    /// Requests still to answer with 429.
    pub throttle: Arc<AtomicUsize>,
}

impl KubeApi {
    pub fn start(identities: Vec<Identity>, secrets: Vec<Secret>) -> KubeApi {
        let pki = Pki::new("kustodian-client");
        let throttle = Arc::new(AtomicUsize::new(0));
        let left = throttle.clone();
        let server = Server::start(move |req| {
            let who = identities.iter().find(|i| {
                let bearer = i.token.as_ref().map(|t| format!("Bearer {t}"));
                (bearer.is_some() && req.header("authorization") == bearer.as_deref())
                    || (i.cn.is_some() && req.header("x-remote-user") == i.cn.as_deref())
            });
            let Some(who) = who else {
                return status(401, "Unauthorized", "Unauthorized", None);
            };
            if left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return status(
                    429,
                    "TooManyRequests",
                    "Too many requests, please try again later.",
                    None,
                )
                .with_header("Retry-After", "1");
            }
            answer(req, who, &secrets)
        });
        let front = TlsFront::start(&pki, &server);
        KubeApi {
            server,
            front,
            pki,
            throttle,
        }
    }

    /// GETs of one Secret.
    pub fn count(&self, ns: &str, name: &str) -> usize {
        self.server
            .count(&format!("/api/v1/namespaces/{ns}/secrets/{name}"))
    }

    /// The CA certificate, base64 (for `certificate-authority-data`).
    pub fn ca_data(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.pki.read("ca.crt"))
    }
}

fn status(code: u16, reason: &str, message: &str, details: Option<Value>) -> Reply {
    let mut v = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code,
    });
    if let Some(d) = details {
        v["details"] = d;
    }
    Reply::json(code, v)
}

fn answer(req: &Req, who: &Identity, secrets: &[Secret]) -> Reply {
    let path = req.path();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let ["api", "v1", "namespaces", ns, "secrets", name] = parts.as_slice() else {
        return status(
            404,
            "NotFound",
            "the server could not find the requested resource",
            None,
        );
    };
    if req.method != "GET" {
        return status(
            405,
            "MethodNotAllowed",
            "the server does not allow this method",
            None,
        );
    }
    let details = json!({"name": name, "kind": "secrets"});
    if !who.namespaces.iter().any(|n| n == ns) {
        return status(
            403,
            "Forbidden",
            &format!(
                "secrets \"{name}\" is forbidden: User \"{}\" cannot get resource \"secrets\" in API group \"\" in the namespace \"{ns}\"",
                who.user
            ),
            Some(details),
        );
    }
    let Some((_, _, data)) = secrets.iter().find(|(n, s, _)| n == ns && s == name) else {
        return status(
            404,
            "NotFound",
            &format!("secrets \"{name}\" not found"),
            Some(details),
        );
    };
    let data: serde_json::Map<String, Value> = data
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                Value::String(base64::engine::general_purpose::STANDARD.encode(v)),
            )
        })
        .collect();
    Reply::json(
        200,
        json!({
            "kind": "Secret", "apiVersion": "v1",
            "metadata": {"name": name, "namespace": ns, "uid": "7e1f", "resourceVersion": "1"},
            "data": data, "type": "Opaque",
        }),
    )
}
