//! The Vault side of the shared HTTP client ([`crate::http`]): the `X-Vault-Token` and
//! `X-Vault-Namespace` headers, `VAULT_CLIENT_TIMEOUT` as one budget for every request of the
//! store, `VAULT_MAX_RETRIES`, the TLS settings, and how answers and failures read.
//!
//! Answers come back as a status and a JSON body wrapped in [`SecretValue`], so that a
//! response holding secrets or a token is wiped when dropped. What reaches a message:
//!
//! - Error texts come only from Vault's `errors` array (never a raw body), with every token
//!   and credential the store knows (and any long fragment of one) replaced by `[redacted]`,
//!   and shortened. An answer that is not JSON is reported by status and content type.
//! - URLs are shown without `user:password@`.
//! - Redirects are followed only within VAULT_ADDR's origin (scheme, host, port): a redirect
//!   elsewhere, or from https to http, is an error, so the token and login credentials are
//!   never sent to another server.
//! - `VAULT_CLIENT_TIMEOUT` is one budget for every request of the store (logins, reads,
//!   retries and their waits): a server that accepts connections and never answers costs
//!   that long once, not once per attempt and reference.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};
use zeroize::Zeroizing;

use super::files;
use super::settings::{Secret, Settings, Tls};
use crate::http::{
    display_url, encode_segment, is_tls, printable, redact_with, redirect_text, shorten,
    status_text, transport_text, Client, Deadline, Exchange, Failure, Headers, Limits, Request,
    Why,
};
use crate::{SecretValue, StoreError};

pub(crate) use crate::http::Method;

/// Largest response body read (a KV secret is at most a few MB).
const BODY_LIMIT: u64 = 32 * 1024 * 1024;
/// Largest CA bundle, certificate or key file read.
const PEM_LIMIT: u64 = 4 * 1024 * 1024;
/// Longest Vault error text kept in a message.
const ERROR_TEXT_LIMIT: usize = 300;

/// An answer from Vault.
pub(crate) struct Reply {
    pub status: u16,
    /// The JSON body (`null` when empty or not JSON).
    pub body: SecretValue,
    /// When the body is not JSON: the content type the server gave (`text/html`).
    pub malformed: Option<String>,
    /// Vault's `errors` (or `warnings`), redacted and shortened; the status text without.
    error: String,
}

impl Reply {
    /// `403: permission denied`.
    pub(crate) fn status_and_error(&self) -> String {
        format!("{}: {}", self.status, self.error)
    }

    /// Says that the answer is not JSON, with its status and content type but not its body.
    pub(crate) fn malformed_text(&self) -> Option<String> {
        self.malformed.as_ref().map(|ct| {
            format!(
                "the server's answer is not JSON (status {}, content type {ct}), so it is not a Vault answer; \
                 check that VAULT_ADDR points at Vault's API and not at a proxy or web page",
                self.status
            )
        })
    }
}

/// A failure to get any HTTP answer (after retries): connection, TLS, timeout, a redirect to
/// another origin.
#[derive(Debug)]
pub(crate) struct Unreachable(pub String);

/// A client bound to one Vault address and namespace.
pub(crate) struct Http {
    client: Client,
    addr: String,
    namespace: Option<String>,
    budget: Duration,
    /// VAULT_ADDR was not set and `addr` is Vault's default.
    addr_unset: bool,
    /// Tokens and credentials in use: redacted from every error text.
    secrets: Mutex<Vec<Secret>>,
}

/// The headers of one Vault call.
struct VaultHeaders<'a> {
    token: Option<&'a str>,
    namespace: Option<&'a str>,
    json: bool,
}

impl Exchange for VaultHeaders<'_> {
    fn headers(&self, _url: &str) -> Headers {
        let mut h: Headers = vec![("X-Vault-Request".into(), Zeroizing::new("true".into()))];
        if self.json {
            h.push((
                "Content-Type".into(),
                Zeroizing::new("application/json".into()),
            ));
        }
        if let Some(t) = self.token {
            h.push(("X-Vault-Token".into(), Zeroizing::new(t.to_string())));
        }
        if let Some(ns) = self.namespace {
            h.push(("X-Vault-Namespace".into(), Zeroizing::new(ns.to_string())));
        }
        h
    }
}

/// The client limits of the settings: `VAULT_CLIENT_TIMEOUT` for all requests,
/// `VAULT_MAX_RETRIES` retries after the first attempt.
fn limits(s: &Settings) -> Limits {
    Limits {
        attempts: s.max_retries.saturating_add(1),
        timeout: s.timeout,
        deadline: Deadline::Shared(s.timeout),
        backoff: Duration::from_millis(200),
        backoff_cap: Duration::from_secs(3),
        retry_after_cap: Duration::from_secs(5),
        body_limit: BODY_LIMIT,
    }
}

impl Http {
    /// A client for the settings' address; fails when a CA or client certificate file is
    /// unreadable. The time budget starts now.
    pub(crate) fn new(s: &Settings) -> Result<Self, StoreError> {
        let tls = tls_config(&s.tls)?;
        Ok(Http {
            client: Client::new(limits(s), Some(tls)),
            addr: s.addr.clone(),
            namespace: s.namespace.clone().filter(|n| !n.is_empty()),
            budget: s.timeout,
            addr_unset: false,
            secrets: Mutex::new(Vec::new()),
        })
    }

    /// Marks the address as Vault's default, used because VAULT_ADDR is not set.
    pub(crate) fn with_default_addr(mut self, yes: bool) -> Self {
        self.addr_unset = yes;
        self
    }

    /// Redacts `secret` from every message from now on.
    pub(crate) fn protect(&self, secret: &str) {
        if secret.len() < 4 {
            return;
        }
        let mut list = self.secrets.lock().unwrap_or_else(|e| e.into_inner());
        if !list.iter().any(|s| s.as_str() == secret) {
            list.push(Zeroizing::new(secret.to_string()));
        }
    }

    /// `text` with every known token and credential (and long fragments of them) redacted and
    /// URL user info removed.
    pub(crate) fn redact(&self, text: &str, also: Option<&str>) -> String {
        let list = self.secrets.lock().unwrap_or_else(|e| e.into_inner());
        let mut secrets: Vec<&str> = list.iter().map(|s| s.as_str()).collect();
        secrets.extend(also);
        redact_with(text, &secrets)
    }

    /// Calls `/v1/{path}` (path segments already encoded), retrying transient failures and
    /// following redirects within VAULT_ADDR's origin, all within the store's time budget.
    pub(crate) fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        token: Option<&str>,
        body: Option<&serde_json::Value>,
    ) -> Result<Reply, Unreachable> {
        let url =
            crate::http::with_query(&format!("{}/v1/{}", self.addr, path), query, encode_segment);
        let payload = Zeroizing::new(body.map_or_else(|| "{}".to_string(), |b| b.to_string()));
        let request = Request {
            method,
            url,
            body: payload.as_bytes(),
        };
        let headers = VaultHeaders {
            token,
            namespace: self.namespace.as_deref(),
            json: method == Method::Post,
        };
        match self.client.send(&request, &headers) {
            Ok(a) => {
                let text = a.text();
                Ok(self.reply(a.status, &text, a.header("content-type"), token))
            }
            Err(f) => Err(Unreachable(self.failure(&f))),
        }
    }

    /// Turns an answer into a reply: the body parsed, the error text redacted.
    fn reply(
        &self,
        status: u16,
        text: &str,
        content_type: Option<&str>,
        token: Option<&str>,
    ) -> Reply {
        let (value, malformed) = if text.trim().is_empty() {
            (serde_json::Value::Null, None)
        } else {
            match serde_json::from_str(text) {
                Ok(v) => (v, None),
                Err(_) => (
                    serde_json::Value::Null,
                    Some(
                        content_type
                            .map(|c| shorten(&printable(c), 60))
                            .unwrap_or_else(|| "none".into()),
                    ),
                ),
            }
        };
        let error = self.redact(&vault_errors(&value, status), token);
        Reply {
            status,
            body: SecretValue::new(value),
            malformed,
            error: shorten(&error, ERROR_TEXT_LIMIT),
        }
    }

    /// How a request that got no answer reads: the address, never a path or a secret.
    fn failure(&self, f: &Failure) -> String {
        match &f.why {
            Why::OutOfTime | Why::Transport(ureq::Error::Timeout(_)) => self.out_of_time(f),
            Why::Transport(e) => self.describe(e, f),
            Why::Redirect(r) => redirect_text(
                &self.addr,
                r,
                "the Vault token and login credentials",
                &|shown| {
                    format!(
                        "if {shown} is your Vault (an active node behind a standby), set VAULT_ADDR to it"
                    )
                },
            ),
        }
    }

    fn out_of_time(&self, f: &Failure) -> String {
        format!(
            "no answer from {} within VAULT_CLIENT_TIMEOUT ({}), the time allowed for all Vault requests of a \
             render{}{}",
            display_url(&self.addr),
            seconds(self.budget),
            f.after(),
            self.addr_hint()
        )
    }

    fn describe(&self, e: &ureq::Error, f: &Failure) -> String {
        let hint = if is_tls(e) {
            "; set VAULT_CACERT to the CA that signed the server's certificate (VAULT_SKIP_VERIFY=true turns checking off, which is unsafe)".to_string()
        } else if self.addr_unset {
            self.addr_hint()
        } else if matches!(e, ureq::Error::ConnectionFailed | ureq::Error::HostNotFound) {
            "; check VAULT_ADDR".into()
        } else {
            String::new()
        };
        format!(
            "cannot reach {}: {}{}{hint}",
            display_url(&self.addr),
            self.redact(&transport_text(e), None),
            f.after()
        )
    }

    /// When VAULT_ADDR is unset: says so.
    fn addr_hint(&self) -> String {
        if self.addr_unset {
            format!(
                "; VAULT_ADDR (or BAO_ADDR) is not set, so Vault's default {} was tried: set VAULT_ADDR to your \
                 Vault's address",
                self.addr
            )
        } else {
            String::new()
        }
    }
}

/// `30s`, `1.5s`.
fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Vault's `errors` (and, failing that, `warnings`) of a body, cleaned up; the status text
/// when there are none.
fn vault_errors(v: &serde_json::Value, status: u16) -> String {
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
    let text = parts.join("; ");
    if text.is_empty() {
        status_text(status).to_string()
    } else {
        text
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
            StoreError::Config(format!(
                "VAULT_CAPATH {}: {}",
                dir.display(),
                kustodian_manifest::read::describe_io(&e)
            ))
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

pub(crate) fn read_certs(file: &Path, var: &str) -> Result<Vec<Certificate<'static>>, StoreError> {
    let bytes = files::read_bounded(file, PEM_LIMIT)
        .map_err(|e| StoreError::Config(format!("{var} {}: {e}", file.display())))?;
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
    let bytes = files::read_bounded(file, PEM_LIMIT)
        .map_err(|e| StoreError::Config(format!("VAULT_CLIENT_KEY {}: {e}", file.display())))?;
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

/// `"1 error occurred:\n\t* permission denied\n\n"` -> `"permission denied"`.
fn clean_error(e: &str) -> String {
    e.split(['\n', '\r'])
        .map(printable)
        .map(|l| l.trim().trim_start_matches("* ").trim().to_string())
        .filter(|l| !l.is_empty())
        .filter(|l| !(l.ends_with("occurred:") && l.contains("error")))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::sync::atomic::Ordering;

    use super::*;

    fn serve(responses: Vec<&str>) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        crate::http::tests::serve(responses.into_iter().map(String::from).collect())
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
        h.client = Client::new(
            Limits {
                backoff: Duration::from_millis(5),
                ..limits(&s)
            },
            None,
        );
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

    fn reply(status: u16, body: serde_json::Value) -> Reply {
        http("http://127.0.0.1:9", 0).reply(
            status,
            &body.to_string(),
            Some("application/json"),
            Some("s.canary-token-0123456789"),
        )
    }

    #[test]
    fn error_text_is_cleaned() {
        let r = reply(
            403,
            serde_json::json!({"errors": ["1 error occurred:\n\t* permission denied\n\n"]}),
        );
        assert_eq!(r.status_and_error(), "403: permission denied");
        let r = reply(404, serde_json::json!({"errors": []}));
        assert_eq!(r.status_and_error(), "404: not found");
    }

    #[test]
    fn error_text_never_quotes_the_token_or_a_fragment_of_it() {
        let r = reply(
            400,
            serde_json::json!({"errors": [
                "bad token s.canary-token-0123456789; prefix canary-token-01 and http://u:pw@h:1/x"
            ]}),
        );
        let e = r.status_and_error();
        assert!(!e.contains("canary") && !e.contains("pw@"), "{e}");
        assert!(e.contains("http://h:1/x"), "{e}");
        let long = reply(500, serde_json::json!({"errors": ["x".repeat(5000)]}));
        assert!(long.error.len() < ERROR_TEXT_LIMIT + 10);
    }

    #[test]
    fn redirects_elsewhere_read_as_refusals_naming_vault_addr() {
        let h = http("https://vault:8200", 0);
        let elsewhere = |downgrade| Failure {
            why: Why::Redirect(crate::http::Redirect::Elsewhere {
                status: 307,
                target: crate::http::origin("http://evil:1/v1/x"),
                downgrade,
            }),
            attempts: 1,
        };
        let e = h.failure(&elsewhere(true));
        assert!(
            e.contains("from https to plain http") && e.contains("set VAULT_ADDR"),
            "{e}"
        );
        let e = h.failure(&elsewhere(false));
        assert!(
            e.contains("to another server (307 to http://evil:1)"),
            "{e}"
        );
    }
}
