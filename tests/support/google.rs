//! Google Cloud for the tests: drongo's server (the real Secret Manager REST API, one per test
//! binary on a free 127.0.0.1 port), and a loopback stand-in for Google's token endpoints, as
//! Google documents them:
//!
//! - `POST /token` with `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=JWT`:
//!   the JWT's RS256 signature is checked with the service account's public key, and its
//!   `iss`, `aud` (this endpoint), `scope`, `iat` and `exp`; the answer is
//!   `{"access_token", "expires_in", "token_type": "Bearer"}`, an OAuth error otherwise
//!   (`{"error": "invalid_grant", "error_description": "Invalid JWT Signature."}`).
//! - `POST /v1/token` (STS, RFC 8693 token exchange): the `subject_token` must be the
//!   projected token the test wrote, `audience` the pool provider's;
//!   `{"access_token", "issued_token_type", "token_type", "expires_in"}`.
//! - `GET /computeMetadata/v1/instance/service-accounts/default/token` with
//!   `Metadata-Flavor: Google` (the GKE metadata server).
//! - `POST /v1/projects/-/serviceAccounts/EMAIL:generateAccessToken` (IAM Credentials, with the
//!   federated token as Bearer): `{"accessToken", "expireTime"}`.
//!
//! Keys are made with openssl; tokens are canaries the tests grep for.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};

use crate::moto::{response, Proxy, Rule, Seen};

/// A running drongo server.
pub struct Drongo {
    pub url: String,
    _server: crate::moto::PyServer,
}

const SERVE: &str = "import subprocess, sys\n\
p = subprocess.Popen([sys.argv[1], 'server', '--host', '127.0.0.1', '--port', sys.argv[2]],\n\
    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n\
sys.stdin.read()\np.terminate()\np.wait()\n";

/// The test binary's drongo server, started on first use.
pub fn drongo() -> &'static Drongo {
    static D: OnceLock<Drongo> = OnceLock::new();
    D.get_or_init(|| {
        let bin = crate::moto::python().with_file_name("drongo");
        assert!(
            bin.is_file(),
            "drongo is not installed: run tests/setup-tools.sh (pip install drongo)"
        );
        // drongo runs under a small Python parent that stops it when its stdin closes,
        // so the server goes away with the test binary.
        let (url, server) = crate::moto::serve_python(
            "drongo",
            SERVE,
            |port| vec![bin.to_string_lossy().into_owned(), port.to_string()],
            &[],
            Duration::from_secs(20),
        );
        Drongo {
            url,
            _server: server,
        }
    })
}

impl Drongo {
    /// Creates `projects/P/secrets/S` and adds one version per value (versions 1, 2, ...).
    pub fn secret(&self, project: &str, secret: &str, values: &[&str]) {
        let (s, b) = http(
            "POST",
            &format!(
                "{}/v1/projects/{project}/secrets?secretId={secret}",
                self.url
            ),
            r#"{"replication":{"automatic":{}}}"#,
        );
        assert!(s < 300, "create secret: {s} {b}");
        for v in values {
            let data = base64::engine::general_purpose::STANDARD.encode(v);
            let (s, b) = http(
                "POST",
                &format!(
                    "{}/v1/projects/{project}/secrets/{secret}:addVersion",
                    self.url
                ),
                &json!({"payload": {"data": data}}).to_string(),
            );
            assert!(s < 300, "add version: {s} {b}");
        }
    }
}

/// A minimal HTTP/1.1 exchange (one request per connection).
pub fn http(method: &str, url: &str, body: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut s = TcpStream::connect(host).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut r = BufReader::new(s);
    let mut status = String::new();
    r.read_line(&mut status).unwrap();
    let mut rest = String::new();
    r.read_to_string(&mut rest).unwrap();
    let body = rest.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (
        status.split_whitespace().nth(1).unwrap().parse().unwrap(),
        body.to_string(),
    )
}

/// An RSA key made with openssl: the PKCS#8 PEM and the PKCS#1 DER public key.
pub struct RsaKey {
    pub pem: String,
    pub public_der: Vec<u8>,
}

pub fn rsa_key(dir: &Path, name: &str) -> RsaKey {
    let pem_path = dir.join(format!("{name}.pem"));
    let der_path = dir.join(format!("{name}.pub.der"));
    let ok = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&pem_path)
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(ok, "openssl genpkey failed");
    let ok = Command::new("openssl")
        .args(["rsa", "-RSAPublicKey_out", "-outform", "DER", "-in"])
        .arg(&pem_path)
        .arg("-out")
        .arg(&der_path)
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(ok, "openssl rsa failed");
    RsaKey {
        pem: std::fs::read_to_string(&pem_path).unwrap(),
        public_der: std::fs::read(&der_path).unwrap(),
    }
}

/// A service-account key file's JSON for `email` with `key`, whose `token_uri` is the token
/// stand-in at `tokens_url`.
pub fn service_account_json(key: &RsaKey, email: &str, tokens_url: &str) -> String {
    json!({
        "type": "service_account", "project_id": "proj", "private_key_id": "key-1",
        "private_key": key.pem, "client_email": email, "client_id": "1",
        "token_uri": format!("{tokens_url}/token"),
    })
    .to_string()
}

/// The claims of a JWT whose RS256 signature `public_der` verifies; `Err` says why not.
pub fn verify_jwt(jwt: &str, public_der: &[u8]) -> Result<(Value, Value), String> {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = jwt.split('.').collect();
    let [h, c, s] = parts.as_slice() else {
        return Err("not a JWT".into());
    };
    let sig = b64.decode(s).map_err(|_| "bad signature encoding")?;
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        public_der,
    )
    .verify(format!("{h}.{c}").as_bytes(), &sig)
    .map_err(|_| "Invalid JWT Signature.".to_string())?;
    let header: Value = serde_json::from_slice(&b64.decode(h).map_err(|_| "bad header")?)
        .map_err(|_| "bad header")?;
    let claims: Value = serde_json::from_slice(&b64.decode(c).map_err(|_| "bad claims")?)
        .map_err(|_| "bad claims")?;
    if header["alg"] != "RS256" {
        return Err("alg must be RS256".into());
    }
    Ok((header, claims))
}

/// The fields of a form body.
pub fn form(body: &str) -> Vec<(String, String)> {
    body.split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

pub fn field(body: &str, name: &str) -> Option<String> {
    form(body)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What the Google token stand-in accepts.
#[derive(Clone, Default)]
pub struct Google {
    /// Service account email and its public key (PKCS#1 DER).
    pub service_account: Option<(String, Vec<u8>)>,
    /// STS: the audience and the subject token it accepts.
    pub federation: Option<(String, String)>,
    /// Token given by every endpoint.
    pub token: String,
}

pub fn json_response(status: u16, v: &Value) -> String {
    response(status, "application/json", &v.to_string())
}

/// Starts the token stand-in; `url` + `/token`, `/v1/token` and the metadata path are served.
pub fn token_server(g: Google) -> Proxy {
    let url_cell: std::sync::Arc<OnceLock<String>> = Default::default();
    let url_seen = url_cell.clone();
    let rule: Rule = Box::new(move |s: &Seen, _| {
        let url = url_seen.get().cloned().unwrap_or_default();
        Some(answer(&g, &url, s))
    });
    let p = Proxy::start(None, rule);
    url_cell.set(p.url.clone()).unwrap();
    p
}

fn oauth_error(code: &str, description: &str) -> String {
    json_response(
        400,
        &json!({"error": code, "error_description": description}),
    )
}

fn answer(g: &Google, base: &str, s: &Seen) -> String {
    let ok = |t: &str| {
        json_response(
            200,
            &json!({"access_token": t, "expires_in": 3599, "token_type": "Bearer"}),
        )
    };
    match (s.method.as_str(), s.path.as_str()) {
        ("POST", "/token") => {
            let Some((email, key)) = &g.service_account else {
                return oauth_error("invalid_client", "no service account");
            };
            if field(&s.body, "grant_type").as_deref()
                != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
            {
                return oauth_error("unsupported_grant_type", "Invalid grant_type");
            }
            let jwt = field(&s.body, "assertion").unwrap_or_default();
            let claims = match verify_jwt(&jwt, key) {
                Ok((_, c)) => c,
                Err(e) => return oauth_error("invalid_grant", &e),
            };
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64;
            let iat = claims["iat"].as_i64().unwrap_or(0);
            let exp = claims["exp"].as_i64().unwrap_or(0);
            if claims["iss"] != email.as_str()
                || claims["aud"] != format!("{base}/token")
                || claims["scope"] != "https://www.googleapis.com/auth/cloud-platform"
                || (iat - now).abs() > 300
                || exp - iat > 3600
            {
                return oauth_error("invalid_grant", "Invalid JWT: claims");
            }
            ok(&g.token)
        }
        ("POST", "/v1/token") => {
            let Some((audience, subject)) = &g.federation else {
                return oauth_error("invalid_request", "no pool");
            };
            let f = |k| field(&s.body, k).unwrap_or_default();
            if f("grant_type") != "urn:ietf:params:oauth:grant-type:token-exchange"
                || f("requested_token_type") != "urn:ietf:params:oauth:token-type:access_token"
                || f("subject_token_type") != "urn:ietf:params:oauth:token-type:jwt"
            {
                return oauth_error("invalid_request", "bad token exchange request");
            }
            if f("audience") != *audience || f("subject_token") != *subject {
                return oauth_error("invalid_grant", "The audience or subject token is invalid.");
            }
            json_response(
                200,
                &json!({"access_token": g.token, "issued_token_type": "urn:ietf:params:oauth:token-type:access_token", "token_type": "Bearer", "expires_in": 3600}),
            )
        }
        ("POST", p)
            if p.starts_with("/v1/projects/-/serviceAccounts/")
                && p.ends_with(":generateAccessToken") =>
        {
            // IAM Credentials: the federated token generates the service account's.
            if s.header("authorization") != Some(&*format!("Bearer {}", g.token)) {
                return json_response(
                    401,
                    &json!({"error": {"code": 401, "message": "Request had invalid authentication credentials.", "status": "UNAUTHENTICATED"}}),
                );
            }
            let body: Value = serde_json::from_str(&s.body).unwrap_or_default();
            if body["scope"][0] != "https://www.googleapis.com/auth/cloud-platform" {
                return json_response(
                    400,
                    &json!({"error": {"code": 400, "message": "scope", "status": "INVALID_ARGUMENT"}}),
                );
            }
            json_response(
                200,
                &json!({"accessToken": format!("{}-impersonated", g.token), "expireTime": "2099-01-01T00:00:00Z"}),
            )
        }
        ("GET", "/computeMetadata/v1/instance/service-accounts/default/token") => {
            if s.header("metadata-flavor") != Some("Google") {
                return response(403, "text/html", "Missing Metadata-Flavor:Google header.");
            }
            ok(&g.token)
        }
        _ => response(404, "text/html", "not found"),
    }
}
