//! The HTTP side of the Vault store: one `ureq` agent (rustls, connection pool), the
//! `X-Vault-Token` and `X-Vault-Namespace` headers, timeouts, and bounded retries with
//! backoff on connection errors, 429 and 5xx.
//!
//! Answers come back as a status and a JSON body wrapped in [`SecretValue`], so that a
//! response holding secrets or a token is wiped when dropped. Error texts are taken from
//! Vault's `errors` array, cleaned up and shortened; they never include a request body.

use std::io::Read as _;
use std::path::Path;
use std::time::Duration;

use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};
use zeroize::Zeroizing;

use super::settings::{Settings, Tls};
use crate::{SecretValue, StoreError};

/// Largest response body read (a KV secret is at most a few MB).
const BODY_LIMIT: u64 = 32 * 1024 * 1024;
/// Longest Vault error text kept in a message.
const ERROR_TEXT_LIMIT: usize = 300;

/// The method of a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Post,
}

/// An answer from Vault.
pub(crate) struct Reply {
    pub status: u16,
    /// The JSON body (`null` when empty or not JSON).
    pub body: SecretValue,
}

impl Reply {
    /// Vault's `errors` (and, failing that, `warnings`), as one short line.
    pub(crate) fn error_text(&self) -> String {
        let v = self.body.expose();
        let mut parts: Vec<String> = Vec::new();
        for field in ["errors", "warnings"] {
            if let Some(list) = v.get(field).and_then(|e| e.as_array()) {
                parts.extend(
                    list.iter()
                        .filter_map(|e| e.as_str())
                        .map(clean_error)
                        .filter(|e| !e.is_empty()),
                );
            }
            if !parts.is_empty() {
                break;
            }
        }
        let mut text = parts.join("; ");
        if text.is_empty() {
            text = status_text(self.status).to_string();
        }
        shorten(&text, ERROR_TEXT_LIMIT)
    }

    /// `403: permission denied`.
    pub(crate) fn status_and_error(&self) -> String {
        format!("{}: {}", self.status, self.error_text())
    }
}

/// A failure to get any HTTP answer (after retries): connection, TLS, timeout.
#[derive(Debug)]
pub(crate) struct Unreachable(pub String);

/// A client bound to one Vault address and namespace.
pub(crate) struct Http {
    agent: ureq::Agent,
    addr: String,
    namespace: Option<String>,
    max_retries: u32,
    backoff: Duration,
}

impl Http {
    /// A client for the settings' address; fails when a CA or client certificate file is
    /// unreadable.
    pub(crate) fn new(s: &Settings) -> Result<Self, StoreError> {
        let tls = tls_config(&s.tls)?;
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(s.timeout))
            .timeout_connect(Some(s.timeout.min(Duration::from_secs(10))))
            .user_agent(concat!("kustodian/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls)
            .max_idle_connections_per_host(16)
            .build();
        Ok(Http {
            agent: config.new_agent(),
            addr: s.addr.clone(),
            namespace: s.namespace.clone().filter(|n| !n.is_empty()),
            max_retries: s.max_retries,
            backoff: Duration::from_millis(200),
        })
    }

    /// Calls `/v1/{path}` (path segments already encoded), retrying transient failures.
    pub(crate) fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        token: Option<&str>,
        body: Option<&serde_json::Value>,
    ) -> Result<Reply, Unreachable> {
        let mut url = format!("{}/v1/{}", self.addr, path);
        for (i, (k, v)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(&encode_segment(k));
            url.push('=');
            url.push_str(&encode_segment(v));
        }
        let payload = body.map(|b| Zeroizing::new(b.to_string()));
        let mut attempt = 0;
        loop {
            let result = self.once(method, &url, token, payload.as_ref().map(|p| p.as_str()));
            let retry_after = match &result {
                Ok((status, _, after)) if *status == 429 || *status >= 500 => Some(*after),
                Ok(_) => None,
                Err(e) if transient(e) => Some(None),
                Err(_) => None,
            };
            match retry_after {
                Some(after) if attempt < self.max_retries => {
                    std::thread::sleep(after.unwrap_or_else(|| self.backoff_for(attempt)));
                    attempt += 1;
                }
                _ => {
                    return match result {
                        Ok((status, text, _)) => {
                            let value =
                                serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
                            Ok(Reply {
                                status,
                                body: SecretValue::new(value),
                            })
                        }
                        Err(e) => Err(Unreachable(self.describe(&e, attempt))),
                    }
                }
            }
        }
    }

    /// One attempt: status, body text, and `Retry-After` when the server gave one.
    fn once(
        &self,
        method: Method,
        url: &str,
        token: Option<&str>,
        payload: Option<&str>,
    ) -> Result<(u16, Zeroizing<String>, Option<Duration>), ureq::Error> {
        let mut headers: Vec<(&str, &str)> = vec![("X-Vault-Request", "true")];
        if let Some(t) = token {
            headers.push(("X-Vault-Token", t));
        }
        if let Some(ns) = &self.namespace {
            headers.push(("X-Vault-Namespace", ns));
        }
        let response = match method {
            Method::Get => {
                let mut rb = self.agent.get(url);
                for (k, v) in &headers {
                    rb = rb.header(*k, *v);
                }
                rb.call()
            }
            Method::Post => {
                let mut rb = self
                    .agent
                    .post(url)
                    .header("Content-Type", "application/json");
                for (k, v) in &headers {
                    rb = rb.header(*k, *v);
                }
                rb.send(payload.unwrap_or("{}").as_bytes())
            }
        };
        let mut response = response?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|s| Duration::from_secs(s.min(5)));
        let mut bytes = Zeroizing::new(Vec::new());
        response
            .body_mut()
            .with_config()
            .limit(BODY_LIMIT)
            .reader()
            .read_to_end(&mut bytes)
            .map_err(ureq::Error::Io)?;
        let text = Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned());
        Ok((status, text, retry_after))
    }

    /// Exponential backoff with a little jitter: 200 ms, 400 ms, 800 ms, ... at most 3 s.
    fn backoff_for(&self, attempt: u32) -> Duration {
        let base = self
            .backoff
            .saturating_mul(1 << attempt.min(4))
            .min(Duration::from_secs(3));
        let jitter = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() % 50)
            .unwrap_or(0);
        base + Duration::from_millis(u64::from(jitter))
    }

    fn describe(&self, e: &ureq::Error, retries: u32) -> String {
        let after = if retries > 0 {
            format!(" (after {} attempts)", retries + 1)
        } else {
            String::new()
        };
        let hint = if is_tls(e) {
            "; set VAULT_CACERT to the CA that signed the server's certificate (VAULT_SKIP_VERIFY=true turns checking off, which is unsafe)"
        } else if matches!(e, ureq::Error::ConnectionFailed | ureq::Error::HostNotFound) {
            "; check VAULT_ADDR"
        } else {
            ""
        };
        format!(
            "cannot reach {}: {}{after}{hint}",
            self.addr,
            transport_text(e)
        )
    }
}

/// Connection problems worth another try; TLS and protocol errors are not.
fn transient(e: &ureq::Error) -> bool {
    let io = matches!(e, ureq::Error::Io(io) if io.kind() != std::io::ErrorKind::InvalidData);
    io || matches!(
        e,
        ureq::Error::Timeout(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::HostNotFound
            | ureq::Error::BodyStalled
    )
}

/// A certificate or handshake failure (rustls reports them inside an `InvalidData` I/O error).
fn is_tls(e: &ureq::Error) -> bool {
    match e {
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) => true,
        ureq::Error::Io(io) => {
            io.kind() == std::io::ErrorKind::InvalidData && io.get_ref().is_some()
        }
        _ => false,
    }
}

fn transport_text(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Io(io) => match (io.kind(), io.get_ref()) {
            (std::io::ErrorKind::ConnectionRefused, _) => "connection refused".into(),
            (std::io::ErrorKind::ConnectionReset, _) => "connection reset".into(),
            (std::io::ErrorKind::InvalidData, Some(inner)) => {
                shorten(&format!("TLS: {inner}"), ERROR_TEXT_LIMIT)
            }
            (k, _) => format!("{k}"),
        },
        ureq::Error::Timeout(t) => format!("timed out ({t})"),
        ureq::Error::ConnectionFailed => "connection failed".into(),
        ureq::Error::HostNotFound => "host not found".into(),
        ureq::Error::Rustls(r) => format!("TLS: {r}"),
        ureq::Error::Tls(t) => format!("TLS: {t}"),
        other => shorten(&other.to_string(), ERROR_TEXT_LIMIT),
    }
}

fn tls_config(t: &Tls) -> Result<TlsConfig, StoreError> {
    let mut b = TlsConfig::builder().disable_verification(t.skip_verify);
    let mut roots: Vec<Certificate<'static>> = Vec::new();
    if let Some(file) = &t.cacert {
        roots.extend(read_certs(file, "VAULT_CACERT")?);
    }
    if let Some(dir) = &t.capath {
        let entries = std::fs::read_dir(dir).map_err(|e| {
            StoreError::Config(format!("VAULT_CAPATH {}: {}", dir.display(), e.kind()))
        })?;
        let mut files: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        for f in files {
            roots.extend(read_certs(&f, "VAULT_CAPATH").unwrap_or_default());
        }
    }
    if t.cacert.is_none() && t.capath.is_none() {
        // Like Vault's Go client: trust the system's CA bundle when there is one, so that a
        // company CA installed on the machine works without configuration.
        let system = t.ssl_cert_file.iter().cloned().chain(
            [
                "/etc/ssl/certs/ca-certificates.crt",
                "/etc/pki/tls/certs/ca-bundle.crt",
                "/etc/ssl/cert.pem",
            ]
            .map(Into::into),
        );
        for f in system {
            if let Ok(certs) = read_certs(&f, "SSL_CERT_FILE") {
                if !certs.is_empty() {
                    roots.extend(certs);
                    break;
                }
            }
        }
    }
    if !roots.is_empty() {
        b = b.root_certs(RootCerts::new_with_certs(&roots));
    } else if t.cacert.is_some() || t.capath.is_some() {
        return Err(StoreError::Config(
            "VAULT_CACERT / VAULT_CAPATH hold no PEM certificate".into(),
        ));
    }
    match (&t.client_cert, &t.client_key) {
        (Some(cert), Some(key)) => {
            let chain = read_certs(cert, "VAULT_CLIENT_CERT")?;
            let key = read_key(key)?;
            b = b.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
        }
        (None, None) => {}
        _ => {
            return Err(StoreError::Config(
                "VAULT_CLIENT_CERT and VAULT_CLIENT_KEY must be set together".into(),
            ))
        }
    }
    Ok(b.build())
}

fn read_certs(file: &Path, var: &str) -> Result<Vec<Certificate<'static>>, StoreError> {
    let bytes = std::fs::read(file)
        .map_err(|e| StoreError::Config(format!("{var} {}: {}", file.display(), e.kind())))?;
    let certs: Vec<_> = ureq::tls::parse_pem(&bytes)
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(StoreError::Config(format!(
            "{var} {}: no PEM certificate in the file",
            file.display()
        )));
    }
    Ok(certs)
}

fn read_key(file: &Path) -> Result<PrivateKey<'static>, StoreError> {
    let bytes = Zeroizing::new(std::fs::read(file).map_err(|e| {
        StoreError::Config(format!("VAULT_CLIENT_KEY {}: {}", file.display(), e.kind()))
    })?);
    let key = ureq::tls::parse_pem(&bytes).find_map(|item| match item {
        Ok(PemItem::PrivateKey(k)) => Some(k),
        _ => None,
    });
    key.ok_or_else(|| {
        StoreError::Config(format!(
            "VAULT_CLIENT_KEY {}: no PEM private key in the file",
            file.display()
        ))
    })
}

/// Percent-encodes one path segment or query part (RFC 3986 unreserved characters pass).
pub(crate) fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Encodes each segment of a `/`-separated path.
pub(crate) fn encode_path(path: &str) -> String {
    path.split('/')
        .map(encode_segment)
        .collect::<Vec<_>>()
        .join("/")
}

/// `"1 error occurred:\n\t* permission denied\n\n"` -> `"permission denied"`.
fn clean_error(e: &str) -> String {
    e.lines()
        .map(|l| l.trim().trim_start_matches("* ").trim())
        .filter(|l| !l.is_empty())
        .filter(|l| !(l.ends_with("occurred:") && l.contains("error")))
        .collect::<Vec<_>>()
        .join("; ")
}

fn shorten(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

fn status_text(status: u16) -> &'static str {
    match status {
        400 => "bad request",
        401 => "unauthorized",
        403 => "permission denied",
        404 => "not found",
        405 => "method not allowed",
        412 => "precondition failed",
        429 => "too many requests",
        500 => "internal server error",
        502 => "bad gateway",
        503 => "service unavailable (sealed, or in standby)",
        _ => "unexpected status",
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;

    /// A server answering each connection's request with the next canned response.
    fn serve(responses: Vec<&'static str>) -> (String, Arc<AtomicUsize>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = format!("http://{}", l.local_addr().unwrap());
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        std::thread::spawn(move || {
            for (stream, resp) in l.incoming().zip(responses) {
                let mut stream = stream.unwrap();
                let mut r = BufReader::new(stream.try_clone().unwrap());
                let mut len = 0;
                loop {
                    let mut line = String::new();
                    r.read_line(&mut line).unwrap();
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap();
                    }
                    if line == "\r\n" || line.is_empty() {
                        break;
                    }
                }
                let mut body = vec![0; len];
                std::io::Read::read_exact(&mut r, &mut body).unwrap();
                h.fetch_add(1, Ordering::SeqCst);
                stream.write_all(resp.as_bytes()).unwrap();
            }
        });
        (addr, hits)
    }

    fn http(addr: &str, retries: u32) -> Http {
        let s = Settings {
            addr: addr.to_string(),
            namespace: Some("team-a".into()),
            auth: super::super::settings::Auth::Token {
                given: None,
                file: None,
            },
            kv_version: None,
            tls: Tls::default(),
            timeout: Duration::from_secs(5),
            max_retries: retries,
            cache_dir: None,
        };
        let mut h = Http::new(&s).unwrap();
        h.backoff = Duration::from_millis(5);
        h
    }

    const R503: &str = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 30\r\nConnection: close\r\n\r\n{\"errors\":[\"Vault is sealed\"]}";
    const R429: &str =
        "HTTP/1.1 429 Too Many Requests\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
    const R200: &str = "HTTP/1.1 200 OK\r\nContent-Length: 20\r\nConnection: close\r\n\r\n{\"data\":{\"k\":\"v1\"}}\n";

    #[test]
    fn retries_5xx_and_429_then_succeeds() {
        let (addr, hits) = serve(vec![R503, R429, R200]);
        let r = http(&addr, 2)
            .call(Method::Get, "kv/app", &[], Some("t"), None)
            .unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body.expose()["data"]["k"], "v1");
        assert_eq!(hits.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn retries_are_bounded() {
        let (addr, hits) = serve(vec![R503, R503, R503, R200]);
        let r = http(&addr, 1)
            .call(Method::Get, "kv/app", &[], None, None)
            .unwrap();
        assert_eq!(r.status, 503);
        assert_eq!(r.status_and_error(), "503: Vault is sealed");
        assert_eq!(hits.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn connection_refused_names_the_address() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = format!("http://{}", l.local_addr().unwrap());
        drop(l);
        let e = http(&addr, 1)
            .call(
                Method::Post,
                "auth/approle/login",
                &[],
                None,
                Some(&serde_json::json!({"secret_id": "canary-sid"})),
            )
            .err()
            .unwrap();
        assert!(
            e.0.contains(&addr) && e.0.contains("connection refused") && e.0.contains("2 attempts"),
            "{}",
            e.0
        );
        assert!(!e.0.contains("canary"));
    }

    #[test]
    fn error_text_is_cleaned() {
        let r = Reply {
            status: 403,
            body: SecretValue::new(
                serde_json::json!({"errors": ["1 error occurred:\n\t* permission denied\n\n"]}),
            ),
        };
        assert_eq!(r.status_and_error(), "403: permission denied");
        let r = Reply {
            status: 404,
            body: SecretValue::new(serde_json::json!({"errors": []})),
        };
        assert_eq!(r.status_and_error(), "404: not found");
    }

    #[test]
    fn segments_are_encoded() {
        assert_eq!(
            encode_path("kv/data/my app?x#y"),
            "kv/data/my%20app%3Fx%23y"
        );
        assert_eq!(encode_segment("a.b-c_d~"), "a.b-c_d~");
    }
}
