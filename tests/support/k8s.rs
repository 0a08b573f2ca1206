//! A stand-in for the one Kubernetes API call Vault's kubernetes auth makes:
//! `POST /apis/authentication.k8s.io/v1/tokenreviews`. It answers like the API server does
//! (a `TokenReview` with `status.authenticated`, `status.user.username`
//! `system:serviceaccount:NS:NAME`, `status.user.uid`, groups), accepting only the JWTs it
//! was given. Plain HTTP on a free 127.0.0.1 port, one thread.
//!
//! JWTs are made here without a real signature: with no `pem_keys` configured, OpenBao does not
//! check the signature itself and relies on the TokenReview answer (and requires the JWT's
//! `kubernetes.io/serviceaccount/service-account.uid` claim to match the answer's uid).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};

/// A Kubernetes service account.
#[derive(Clone, Debug)]
pub struct ServiceAccount {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

impl ServiceAccount {
    pub fn new(namespace: &str, name: &str, uid: &str) -> Self {
        ServiceAccount {
            namespace: namespace.into(),
            name: name.into(),
            uid: uid.into(),
        }
    }

    /// A legacy service-account token JWT for this account (unsigned-ish: the signature is
    /// not a real one).
    pub fn jwt(&self) -> String {
        let header = json!({"alg": "RS256", "kid": "kustodian-test", "typ": "JWT"});
        let claims = json!({
            "iss": "kubernetes/serviceaccount",
            "sub": format!("system:serviceaccount:{}:{}", self.namespace, self.name),
            "kubernetes.io/serviceaccount/namespace": self.namespace,
            "kubernetes.io/serviceaccount/secret.name": format!("{}-token-test", self.name),
            "kubernetes.io/serviceaccount/service-account.name": self.name,
            "kubernetes.io/serviceaccount/service-account.uid": self.uid,
        });
        format!(
            "{}.{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes()),
            b64url(format!("not-a-signature-{}", self.uid).as_bytes())
        )
    }
}

/// The running stand-in.
pub struct TokenReviewer {
    /// `http://127.0.0.1:PORT`, for `kubernetes_host`.
    pub url: String,
    /// Reviews answered.
    pub reviews: Arc<AtomicUsize>,
}

/// Serves TokenReview, authenticating exactly the given accounts' JWTs.
pub fn serve(accepted: Vec<ServiceAccount>) -> TokenReviewer {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let reviews = Arc::new(AtomicUsize::new(0));
    let counter = reviews.clone();
    let known: Vec<(String, ServiceAccount)> =
        accepted.into_iter().map(|sa| (sa.jwt(), sa)).collect();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let Some((request_line, body)) = read_request(&mut stream) else {
                continue;
            };
            let (status, answer) = if request_line
                .starts_with("POST /apis/authentication.k8s.io/v1/tokenreviews")
            {
                counter.fetch_add(1, Ordering::SeqCst);
                review(&body, &known)
            } else {
                (
                    404,
                    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}),
                )
            };
            let text = answer.to_string();
            let reason = if status == 201 {
                "Created"
            } else {
                "Not Found"
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                text.len()
            );
        }
    });
    TokenReviewer { url, reviews }
}

fn review(body: &str, known: &[(String, ServiceAccount)]) -> (u16, Value) {
    let req: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let token = req["spec"]["token"].as_str().unwrap_or("");
    let audiences = req["spec"]["audiences"].clone();
    let status = match known.iter().find(|(jwt, _)| jwt == token) {
        Some((_, sa)) => json!({
            "authenticated": true,
            "user": {
                "username": format!("system:serviceaccount:{}:{}", sa.namespace, sa.name),
                "uid": sa.uid,
                "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{}", sa.namespace), "system:authenticated"],
            },
            "audiences": if audiences.is_array() { audiences } else { json!([]) },
        }),
        None => json!({"user": {}, "error": "[invalid bearer token, token lookup failed]"}),
    };
    (
        201,
        json!({"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1", "metadata": {}, "spec": {}, "status": status}),
    )
}

fn read_request(stream: &mut std::net::TcpStream) -> Option<(String, String)> {
    let mut r = BufReader::new(stream.try_clone().ok()?);
    let mut request_line = String::new();
    r.read_line(&mut request_line).ok()?;
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
        if line == "\r\n" || line == "\n" {
            break;
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some((request_line, String::from_utf8_lossy(&body).into_owned()))
}

/// Base64url without padding.
fn b64url(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}
