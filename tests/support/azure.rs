//! Azure for the tests: a loopback stand-in for Key Vault's secrets REST API (`api-version=7.4`)
//! and for Microsoft Entra ID's token endpoint, served over HTTPS with a test CA made by
//! openssl (Key Vault clients require TLS), plus IMDS over plain HTTP, as each is documented:
//!
//! - `POST /{tenant}/oauth2/v2.0/token` (`grant_type=client_credentials`, `client_id`,
//!   `scope=https://vault.azure.net/.default`) with a `client_secret`, or a
//!   `client_assertion` (`urn:ietf:params:oauth:client-assertion-type:jwt-bearer`): a JWT
//!   signed RS256 by the certificate's key with the certificate's `x5t`, `aud` the token
//!   endpoint, `iss` = `sub` = the client id; or the projected service-account token (workload
//!   identity). Answers `{"token_type": "Bearer", "expires_in", "access_token"}`, or
//!   `{"error": "invalid_client", "error_description": "AADSTS...", "error_codes": [...]}`.
//! - `GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=...` with
//!   `Metadata: true` (IMDS managed identity).
//! - `GET /secrets/{name}/{version}?api-version=7.4` and `GET /secrets?api-version=7.4` with
//!   `Authorization: Bearer`: `{"value", "id", "attributes"}`; errors
//!   `{"error": {"code": "SecretNotFound" | "Forbidden" | "Throttled" | "Unauthorized", ...}}`
//!   with the statuses Key Vault uses (404, 403, 429 with `Retry-After`, 401 with a
//!   `WWW-Authenticate` challenge).
//! - `POST /keys/{name}/{version}/encrypt|decrypt?api-version=7.4` with
//!   `{"alg": "RSA-OAEP-256", "value": base64url}`: real RSA-OAEP with SHA-256 by openssl with
//!   the stand-in's RSA key (the server key); `{"kid", "value"}`, or `KeyNotFound` (404),
//!   `Forbidden` (403) on decrypt for a key in `locked`, `BadParameter` (400) when openssl
//!   refuses.
//!
//! The HTTPS front terminates TLS and hands each request to a recording [`Proxy`] (the moto
//! support's), so tests count requests and read headers the same way for every cloud.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use serde_json::{json, Value};

use crate::google::{field, json_response, verify_jwt};
use crate::moto::{response, Proxy, Rule, Seen};

/// A test CA and a server certificate for 127.0.0.1 signed by it.
pub struct Pki {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let ok = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(ok, "openssl {args:?} failed");
}

pub fn pki(dir: &Path) -> Pki {
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=kustodian test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
    );
    Pki {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
    }
}

/// A client certificate and key in one PEM file (AZURE_CLIENT_CERTIFICATE_PATH), with the
/// PKCS#1 DER public key and the SHA-1 thumbprint (`x5t`) the stand-in expects.
pub struct ClientCert {
    pub pem_file: PathBuf,
    pub public_der: Vec<u8>,
    pub x5t: String,
}

pub fn client_cert(dir: &Path) -> ClientCert {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "client.key",
            "-out",
            "client.crt",
            "-days",
            "2",
            "-subj",
            "/CN=kustodian-client",
        ],
    );
    openssl(
        dir,
        &[
            "rsa",
            "-in",
            "client.key",
            "-RSAPublicKey_out",
            "-outform",
            "DER",
            "-out",
            "client.pub.der",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-in",
            "client.crt",
            "-outform",
            "DER",
            "-out",
            "client.der",
        ],
    );
    let pem = std::fs::read_to_string(dir.join("client.crt")).unwrap()
        + &std::fs::read_to_string(dir.join("client.key")).unwrap();
    let pem_file = dir.join("client-cert.pem");
    std::fs::write(&pem_file, pem).unwrap();
    let der = std::fs::read(dir.join("client.der")).unwrap();
    let sha1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &der);
    ClientCert {
        pem_file,
        public_der: std::fs::read(dir.join("client.pub.der")).unwrap(),
        x5t: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha1.as_ref()),
    }
}

/// An HTTPS front: terminates TLS with `pki`'s server certificate and passes each request to
/// `backend` (plain HTTP, one request per connection).
pub fn https_front(pki: &Pki, backend: &str) -> String {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&pki.cert)
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_file(&pki.key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let backend = backend.trim_start_matches("http://").to_string();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let (config, backend) = (config.clone(), backend.clone());
            std::thread::spawn(move || {
                let Ok(conn) = rustls::ServerConnection::new(config) else {
                    return;
                };
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                let Some(raw) = read_raw(&mut tls) else {
                    return;
                };
                let mut up = TcpStream::connect(&backend).unwrap();
                up.write_all(&raw).unwrap();
                let mut answer = Vec::new();
                let _ = up.read_to_end(&mut answer);
                let _ = tls.write_all(&answer);
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    url
}

/// One HTTP request's bytes, with `Connection: close`.
fn read_raw(s: &mut impl Read) -> Option<Vec<u8>> {
    let mut r = BufReader::new(s);
    let mut raw = Vec::new();
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" || line == "\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
        if !lower.starts_with("connection:") {
            raw.extend_from_slice(line.as_bytes());
        }
    }
    raw.extend_from_slice(b"Connection: close\r\n\r\n");
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    raw.extend_from_slice(&body);
    Some(raw)
}

/// How the Entra ID stand-in authenticates the client.
#[derive(Clone)]
pub enum Login {
    Secret(String),
    Certificate { public_der: Vec<u8>, x5t: String },
    Federated(String),
}

/// What the stand-in knows.
#[derive(Clone)]
pub struct Azure {
    pub tenant: String,
    pub client_id: String,
    pub login: Login,
    pub token: String,
    /// secret name -> versions (id, value), the last one current.
    pub secrets: BTreeMap<String, Vec<(String, String)>>,
    /// Secret names Key Vault refuses (403 ForbiddenByRbac).
    pub locked: Vec<String>,
    /// Secret names throttled (429, Retry-After: 1) on their first request.
    pub busy: Vec<String>,
    /// Keys (name, version) that encrypt and decrypt with `rsa_key` (a PEM file).
    pub keys: Vec<(String, String)>,
    pub rsa_key: Option<PathBuf>,
}

/// The running stand-in: `url` is its HTTPS address (Entra ID and Key Vault), `imds` its
/// plain-HTTP one, `seen` every request either got.
pub struct Stand {
    pub url: String,
    pub proxy: Proxy,
}

impl Stand {
    pub fn seen(&self) -> Vec<Seen> {
        self.proxy.seen()
    }

    pub fn logins(&self) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.path.contains("/oauth2/"))
            .count()
    }

    /// Key Vault requests for one secret (any version).
    pub fn reads(&self, secret: &str) -> usize {
        let p = format!("/secrets/{secret}/");
        self.seen()
            .iter()
            .filter(|s| s.path.starts_with(&p))
            .count()
    }
}

pub fn start(az: Azure, pki: &Pki) -> Stand {
    let base: Arc<OnceLock<String>> = Default::default();
    let b = base.clone();
    let throttled = Arc::new(AtomicUsize::new(0));
    let rule: Rule = Box::new(move |s: &Seen, _| {
        Some(answer(
            &az,
            b.get().map(String::as_str).unwrap_or(""),
            s,
            &throttled,
        ))
    });
    let proxy = Proxy::start(None, rule);
    let url = https_front(pki, &proxy.url);
    base.set(url.clone()).unwrap();
    Stand { url, proxy }
}

fn kv_error(status: u16, code: &str, message: &str, extra: &str) -> String {
    let body = json!({"error": {"code": code, "message": message}}).to_string();
    format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json; charset=utf-8\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn aad_error(code: &str, aadsts: u32, text: &str) -> String {
    json_response(
        401,
        &json!({"error": code, "error_description": format!("AADSTS{aadsts}: {text}"), "error_codes": [aadsts]}),
    )
}

fn answer(az: &Azure, base: &str, s: &Seen, throttled: &AtomicUsize) -> String {
    let (path, query) = s.path.split_once('?').unwrap_or((&s.path, ""));
    let token_ok = || {
        json_response(
            200,
            &json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": az.token}),
        )
    };
    if path == format!("/{}/oauth2/v2.0/token", az.tenant) && s.method == "POST" {
        let f = |k| field(&s.body, k).unwrap_or_default();
        if f("grant_type") != "client_credentials"
            || f("scope") != "https://vault.azure.net/.default"
        {
            return json_response(
                400,
                &json!({"error": "invalid_request", "error_description": "AADSTS900144: bad request"}),
            );
        }
        if f("client_id") != az.client_id {
            return aad_error(
                "unauthorized_client",
                700016,
                "Application not found in the directory.",
            );
        }
        let assertion_type = f("client_assertion_type");
        let assertion = f("client_assertion");
        let ok = match &az.login {
            Login::Secret(secret) => f("client_secret") == *secret,
            Login::Federated(projected) => {
                assertion_type == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
                    && assertion == *projected
            }
            Login::Certificate { public_der, x5t } => {
                assertion_type == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
                    && verify_jwt(&assertion, public_der).is_ok_and(|(h, c)| {
                        h["x5t"] == x5t.as_str()
                            && c["aud"] == format!("{base}/{}/oauth2/v2.0/token", az.tenant)
                            && c["iss"] == az.client_id.as_str()
                            && c["sub"] == az.client_id.as_str()
                            && c["jti"].is_string()
                            && c["exp"].as_u64() > c["nbf"].as_u64()
                    })
            }
        };
        return if ok {
            token_ok()
        } else {
            aad_error("invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value.")
        };
    }
    if path == "/metadata/identity/oauth2/token" && s.method == "GET" {
        if s.header("metadata") != Some("true") {
            return json_response(
                400,
                &json!({"error": "invalid_request", "error_description": "Required metadata header not specified"}),
            );
        }
        if !query.contains("api-version=2018-02-01")
            || !query.contains("resource=https%3A%2F%2Fvault.azure.net")
        {
            return json_response(
                400,
                &json!({"error": "invalid_request", "error_description": "bad query"}),
            );
        }
        return json_response(
            200,
            &json!({"access_token": az.token, "expires_in": "3599", "expires_on": "1900000000", "resource": "https://vault.azure.net", "token_type": "Bearer"}),
        );
    }
    if !path.starts_with("/keys/") && !path.starts_with("/secrets") {
        return response(404, "text/plain", "");
    }
    if query != "api-version=7.4" {
        return kv_error(
            400,
            "BadParameter",
            "The specified version of the API is not supported.",
            "",
        );
    }
    if s.header("authorization") != Some(&*format!("Bearer {}", az.token)) {
        return kv_error(401, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.", "WWW-Authenticate: Bearer authorization=\"https://login.microsoftonline.com/tenant\", resource=\"https://vault.azure.net\"\r\n");
    }
    if let Some(rest) = path.strip_prefix("/keys/") {
        return key_operation(az, base, s, rest);
    }
    let rest = path.strip_prefix("/secrets").unwrap_or_default();
    if rest.is_empty() {
        let value: Vec<Value> = az
            .secrets
            .keys()
            .map(|n| json!({"id": format!("{base}/secrets/{n}"), "attributes": {"enabled": true}}))
            .collect();
        return json_response(200, &json!({"value": value, "nextLink": null}));
    }
    let mut parts = rest.trim_start_matches('/').splitn(2, '/');
    let name = parts.next().unwrap_or("");
    let version = parts.next().unwrap_or("");
    if az.locked.iter().any(|l| l == name) {
        let body = json!({"error": {"code": "Forbidden", "message": "Caller is not authorized to perform action on resource.", "innererror": {"code": "ForbiddenByRbac"}}});
        return json_response(403, &body);
    }
    if az.busy.iter().any(|b| b == name) && throttled.fetch_add(1, Ordering::SeqCst) == 0 {
        return kv_error(
            429,
            "Throttled",
            "Request was not processed because too many requests were received.",
            "Retry-After: 1\r\n",
        );
    }
    let found = az.secrets.get(name).and_then(|versions| {
        if version.is_empty() {
            versions.last()
        } else {
            versions.iter().find(|(id, _)| id == version)
        }
    });
    match found {
        Some((id, value)) => json_response(
            200,
            &json!({"value": value, "id": format!("{base}/secrets/{name}/{id}"), "attributes": {"enabled": true, "created": 1700000000, "updated": 1700000000, "recoveryLevel": "Recoverable+Purgeable"}, "tags": {}}),
        ),
        None => kv_error(
            404,
            "SecretNotFound",
            &format!("A secret with (name/id) {name}/{version} was not found in this key vault."),
            "",
        ),
    }
}

/// Key Vault's `encrypt`/`decrypt` on a key (RSA-OAEP-256 only).
fn key_operation(az: &Azure, base: &str, s: &Seen, rest: &str) -> String {
    if s.method != "POST" {
        return kv_error(405, "MethodNotAllowed", "use POST", "");
    }
    let parts: Vec<&str> = rest.split('/').collect();
    let [name, version, op] = parts.as_slice() else {
        return kv_error(404, "NotFound", "no such operation", "");
    };
    if *op == "decrypt" && az.locked.iter().any(|l| l == name) {
        let body = json!({"error": {"code": "Forbidden", "message": format!("The user does not have keys {op} permission on key vault"), "innererror": {"code": "ForbiddenByRbac"}}});
        return json_response(403, &body);
    }
    if !az.keys.iter().any(|(n, v)| n == name && v == version) {
        return kv_error(
            404,
            "KeyNotFound",
            &format!("A key with (name/id) {name}/{version} was not found in this key vault."),
            "",
        );
    }
    let body: Value = serde_json::from_str(&s.body).unwrap_or_default();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let input = match (
        body["alg"].as_str(),
        body["value"].as_str().map(|v| b64.decode(v)),
    ) {
        (Some("RSA-OAEP-256"), Some(Ok(v))) => v,
        _ => {
            return kv_error(
                400,
                "BadParameter",
                "alg must be RSA-OAEP-256 and value base64url",
                "",
            )
        }
    };
    let flag = match *op {
        "encrypt" => "-encrypt",
        "decrypt" => "-decrypt",
        _ => return kv_error(400, "BadParameter", "unknown operation", ""),
    };
    let key = az.rsa_key.as_ref().expect("the stand-in has no RSA key");
    let mut child = Command::new("openssl")
        .args(["pkeyutl", flag, "-inkey"])
        .arg(key)
        .args([
            "-pkeyopt",
            "rsa_padding_mode:oaep",
            "-pkeyopt",
            "rsa_oaep_md:sha256",
            "-pkeyopt",
            "rsa_mgf1_md:sha256",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    if !out.status.success() {
        return kv_error(
            400,
            "BadParameter",
            "Bad Request: the ciphertext cannot be decrypted",
            "",
        );
    }
    json_response(
        200,
        &json!({"kid": format!("{base}/keys/{name}/{version}"), "value": b64.encode(out.stdout)}),
    )
}
