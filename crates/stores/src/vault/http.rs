//! The HTTP side of the Vault store: one `ureq` agent (rustls, connection pool), the
//! `X-Vault-Token` and `X-Vault-Namespace` headers, one time budget, and bounded retries with
//! backoff on connection errors, 429 and 5xx.
//!
//! Answers come back as a status and a JSON body wrapped in [`SecretValue`], so that a
//! response holding secrets or a token is wiped when dropped. What reaches a message:
//!
//! - Error texts come only from Vault's `errors` array (never a raw body), with every token
//!   and credential the store knows (and any long fragment of one) replaced by `[redacted]`,
//!   and shortened. An answer that is not JSON is reported by status and content type.
//! - URLs are shown without `user:password@`.
//! - Redirects are followed by hand, only within VAULT_ADDR's origin (scheme, host, port):
//!   a redirect elsewhere, or from https to http, is an error, so the token and login
//!   credentials are never sent to another server.
//! - `VAULT_CLIENT_TIMEOUT` is one budget for every request of the store (logins, reads,
//!   retries and their waits): a server that accepts connections and never answers costs
//!   that long once, not once per attempt and reference.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};
use zeroize::Zeroizing;

use super::files;
use super::settings::{Secret, Settings, Tls};
use crate::{SecretValue, StoreError};

/// Largest response body read (a KV secret is at most a few MB).
const BODY_LIMIT: u64 = 32 * 1024 * 1024;
/// Largest CA bundle, certificate or key file read.
const PEM_LIMIT: u64 = 4 * 1024 * 1024;
/// Longest Vault error text kept in a message.
const ERROR_TEXT_LIMIT: usize = 300;
/// Most redirects followed for one request (all within VAULT_ADDR's origin).
const MAX_REDIRECTS: u32 = 5;
/// Shortest fragment of a token or credential that is redacted wherever it appears.
const FRAGMENT: usize = 8;

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
    agent: ureq::Agent,
    addr: String,
    origin: Option<Origin>,
    namespace: Option<String>,
    max_retries: u32,
    backoff: Duration,
    budget: Duration,
    deadline: Instant,
    /// VAULT_ADDR was not set and `addr` is Vault's default.
    addr_unset: bool,
    /// Tokens and credentials in use: redacted from every error text.
    secrets: Mutex<Vec<Secret>>,
}

/// One HTTP exchange's outcome.
struct Answer {
    status: u16,
    text: Zeroizing<String>,
    retry_after: Option<Duration>,
    content_type: Option<String>,
    location: Option<String>,
}

impl Http {
    /// A client for the settings' address; fails when a CA or client certificate file is
    /// unreadable. The time budget starts now.
    pub(crate) fn new(s: &Settings) -> Result<Self, StoreError> {
        let tls = tls_config(&s.tls)?;
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(s.timeout))
            .timeout_connect(Some(s.timeout.min(Duration::from_secs(10))))
            .user_agent(concat!("kustodian/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls)
            .max_idle_connections_per_host(16)
            .build();
        Ok(Http {
            agent: config.new_agent(),
            addr: s.addr.clone(),
            origin: origin(&s.addr),
            namespace: s.namespace.clone().filter(|n| !n.is_empty()),
            max_retries: s.max_retries,
            backoff: Duration::from_millis(200),
            budget: s.timeout,
            deadline: Instant::now() + s.timeout,
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
        let mut url = format!("{}/v1/{}", self.addr, path);
        for (i, (k, v)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(&encode_segment(k));
            url.push('=');
            url.push_str(&encode_segment(v));
        }
        let payload = body.map(|b| Zeroizing::new(b.to_string()));
        let mut attempt = 0;
        let mut redirects = 0;
        loop {
            let Some(remaining) = self.remaining() else {
                return Err(Unreachable(self.out_of_time(attempt)));
            };
            let result = self.once(
                method,
                &url,
                token,
                payload.as_ref().map(|p| p.as_str()),
                remaining,
            );
            if let Ok(a) = &result {
                if matches!(a.status, 301 | 302 | 303 | 307 | 308) {
                    url = self.follow(&url, a)?;
                    redirects += 1;
                    if redirects > MAX_REDIRECTS {
                        return Err(Unreachable(format!(
                            "{} redirected more than {MAX_REDIRECTS} times",
                            display_url(&self.addr)
                        )));
                    }
                    continue;
                }
            }
            let retry_after = match &result {
                Ok(a) if a.status == 429 || a.status >= 500 => Some(a.retry_after),
                Ok(_) => None,
                Err(e) if transient(e) => Some(None),
                Err(_) => None,
            };
            match retry_after {
                Some(after) if attempt < self.max_retries => {
                    let wait = after.unwrap_or_else(|| self.backoff_for(attempt));
                    match self.remaining() {
                        Some(left) if left > wait => std::thread::sleep(wait),
                        _ => return self.finish(result, attempt, token),
                    }
                    attempt += 1;
                }
                _ => return self.finish(result, attempt, token),
            }
        }
    }

    fn finish(
        &self,
        result: Result<Answer, ureq::Error>,
        attempt: u32,
        token: Option<&str>,
    ) -> Result<Reply, Unreachable> {
        match result {
            Ok(a) => Ok(self.reply(a, token)),
            Err(e) => Err(Unreachable(self.describe(&e, attempt))),
        }
    }

    /// Turns an answer into a reply: the body parsed, the error text redacted.
    fn reply(&self, a: Answer, token: Option<&str>) -> Reply {
        let (value, malformed) = if a.text.trim().is_empty() {
            (serde_json::Value::Null, None)
        } else {
            match serde_json::from_str(&a.text) {
                Ok(v) => (v, None),
                Err(_) => (
                    serde_json::Value::Null,
                    Some(
                        a.content_type
                            .as_deref()
                            .map(|c| shorten(&printable(c), 60))
                            .unwrap_or_else(|| "none".into()),
                    ),
                ),
            }
        };
        let error = self.redact(&vault_errors(&value, a.status), token);
        Reply {
            status: a.status,
            body: SecretValue::new(value),
            malformed,
            error: shorten(&error, ERROR_TEXT_LIMIT),
        }
    }

    /// The next URL of a redirect, when it stays within VAULT_ADDR's origin.
    fn follow(&self, from: &str, a: &Answer) -> Result<String, Unreachable> {
        let here = display_url(&self.addr);
        let Some(location) = a.location.as_deref() else {
            return Err(Unreachable(format!(
                "{here} answered {} (a redirect) without a Location",
                a.status
            )));
        };
        let next = resolve_location(from, location);
        let target = origin(&next);
        if target.is_some() && target == self.origin && !has_userinfo(&next) {
            return Ok(next);
        }
        let shown = target
            .as_ref()
            .map(Origin::to_string)
            .unwrap_or_else(|| "an address that is not http(s)".into());
        let downgrade = self.origin.as_ref().is_some_and(|o| o.scheme == "https")
            && target.as_ref().is_some_and(|t| t.scheme == "http");
        let what = if downgrade {
            "from https to plain http"
        } else {
            "to another server"
        };
        Err(Unreachable(format!(
            "{here} redirected {what} ({} to {shown}); kustodian follows redirects only within {here} so that the \
             Vault token and login credentials are never sent elsewhere; if {shown} is your Vault (an active node \
             behind a standby), set VAULT_ADDR to it",
            a.status
        )))
    }

    /// Time left in the budget, if any.
    fn remaining(&self) -> Option<Duration> {
        self.deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
    }

    fn out_of_time(&self, retries: u32) -> String {
        let after = if retries > 0 {
            format!(" (after {} attempts)", retries + 1)
        } else {
            String::new()
        };
        format!(
            "no answer from {} within VAULT_CLIENT_TIMEOUT ({}), the time allowed for all Vault requests of a \
             render{after}{}",
            display_url(&self.addr),
            seconds(self.budget),
            self.addr_hint()
        )
    }

    /// One attempt: status, body text, and the headers that matter.
    fn once(
        &self,
        method: Method,
        url: &str,
        token: Option<&str>,
        payload: Option<&str>,
        remaining: Duration,
    ) -> Result<Answer, ureq::Error> {
        let mut headers: Vec<(&str, &str)> = vec![("X-Vault-Request", "true")];
        if let Some(t) = token {
            headers.push(("X-Vault-Token", t));
        }
        if let Some(ns) = &self.namespace {
            headers.push(("X-Vault-Namespace", ns));
        }
        let connect = remaining.min(Duration::from_secs(10));
        let response = match method {
            Method::Get => {
                let mut rb = self
                    .agent
                    .get(url)
                    .config()
                    .timeout_global(Some(remaining))
                    .timeout_connect(Some(connect))
                    .build();
                for (k, v) in &headers {
                    rb = rb.header(*k, *v);
                }
                rb.call()
            }
            Method::Post => {
                let mut rb = self
                    .agent
                    .post(url)
                    .config()
                    .timeout_global(Some(remaining))
                    .timeout_connect(Some(connect))
                    .build()
                    .header("Content-Type", "application/json");
                for (k, v) in &headers {
                    rb = rb.header(*k, *v);
                }
                rb.send(payload.unwrap_or("{}").as_bytes())
            }
        };
        let mut response = response?;
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let retry_after =
            crate::answer::retry_after_secs(&response).map(|s| Duration::from_secs(s.min(5)));
        let content_type = header("content-type");
        let location = header("location");
        let bytes = crate::answer::read_body(&mut response, BODY_LIMIT)?;
        let text = Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned());
        Ok(Answer {
            status,
            text,
            retry_after,
            content_type,
            location,
        })
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
        if matches!(e, ureq::Error::Timeout(_)) {
            return self.out_of_time(retries);
        }
        let after = if retries > 0 {
            format!(" (after {} attempts)", retries + 1)
        } else {
            String::new()
        };
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
            "cannot reach {}: {}{after}{hint}",
            display_url(&self.addr),
            self.redact(&transport_text(e), None)
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

/// A URL's scheme, host and port.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// The origin of an absolute http(s) URL.
fn origin(url: &str) -> Option<Origin> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = match hostport.strip_prefix('[') {
        Some(v6) => {
            let (h, after) = v6.split_once(']')?;
            (format!("[{h}]"), after.strip_prefix(':'))
        }
        None => match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (hostport.to_string(), None),
        },
    };
    if host.is_empty() {
        return None;
    }
    let port = match port.filter(|p| !p.is_empty()) {
        Some(p) => p.parse().ok()?,
        None => default_port,
    };
    Some(Origin {
        scheme,
        host: host.to_ascii_lowercase(),
        port,
    })
}

/// A redirect's target as an absolute URL.
fn resolve_location(from: &str, location: &str) -> String {
    let location = location.trim();
    if location.contains("://") {
        return location.to_string();
    }
    let (scheme, rest) = from.split_once("://").unwrap_or(("http", from));
    if let Some(net) = location.strip_prefix("//") {
        return format!("{scheme}://{net}");
    }
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let base = format!("{scheme}://{}", &rest[..authority_end]);
    if location.starts_with('/') {
        return format!("{base}{location}");
    }
    let path = rest[authority_end..].split(['?', '#']).next().unwrap_or("");
    let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    let dir = if dir.is_empty() { "/" } else { dir };
    format!("{base}{dir}{location}")
}

/// `http://user:pw@host:8200/x` -> `http://host:8200/x`.
pub(crate) fn display_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// Whether a URL carries `user:password@`.
pub(crate) fn has_userinfo(url: &str) -> bool {
    display_url(url) != url
}

/// Replaces each secret, and each run of 8 or more token characters found inside a secret,
/// with `[redacted]`; removes user info from URLs.
pub(crate) fn redact_with(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(s, "[redacted]");
    }
    let is_word = |c: char| c.is_ascii_alphanumeric() || "._-+/=~".contains(c);
    let mut result = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while !rest.is_empty() {
        let start = rest.find(is_word).unwrap_or(rest.len());
        result.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest.find(|c: char| !is_word(c)).unwrap_or(rest.len());
        let word = &rest[..end];
        if word.len() >= FRAGMENT && secrets.iter().any(|s| s.contains(word)) {
            result.push_str("[redacted]");
        } else {
            result.push_str(word);
        }
        rest = &rest[end..];
    }
    result
        .split(' ')
        .map(|w| {
            if w.contains("://") {
                display_url(w)
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Control characters replaced, so a server cannot forge lines in our messages.
pub(crate) fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Connection problems worth another try; TLS and protocol errors are not.
pub(crate) fn transient(e: &ureq::Error) -> bool {
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
pub(crate) fn is_tls(e: &ureq::Error) -> bool {
    match e {
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) => true,
        ureq::Error::Io(io) => {
            io.kind() == std::io::ErrorKind::InvalidData && io.get_ref().is_some()
        }
        _ => false,
    }
}

pub(crate) fn transport_text(e: &ureq::Error) -> String {
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
    e.split(['\n', '\r'])
        .map(printable)
        .map(|l| l.trim().trim_start_matches("* ").trim().to_string())
        .filter(|l| !l.is_empty())
        .filter(|l| !(l.ends_with("occurred:") && l.contains("error")))
        .collect::<Vec<_>>()
        .join("; ")
}

pub(crate) fn shorten(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

pub(crate) fn status_text(status: u16) -> &'static str {
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

    fn reply(status: u16, body: serde_json::Value) -> Reply {
        http("http://127.0.0.1:9", 0).reply(
            Answer {
                status,
                text: Zeroizing::new(body.to_string()),
                retry_after: None,
                content_type: Some("application/json".into()),
                location: None,
            },
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
    fn origins_and_redirect_targets() {
        let o = |u: &str| origin(u).map(|o| o.to_string());
        assert_eq!(
            o("http://Vault:8200/v1/x").as_deref(),
            Some("http://vault:8200")
        );
        assert_eq!(o("https://u:p@v/x").as_deref(), Some("https://v:443"));
        assert_eq!(o("http://[::1]:9/").as_deref(), Some("http://[::1]:9"));
        assert_eq!(o("ftp://v/"), None);
        let from = "http://v:1/v1/kv/data/app?version=2";
        assert_eq!(resolve_location(from, "/v1/other"), "http://v:1/v1/other");
        assert_eq!(resolve_location(from, "//w:2/v1/x"), "http://w:2/v1/x");
        assert_eq!(resolve_location(from, "app2"), "http://v:1/v1/kv/data/app2");
        assert_eq!(resolve_location(from, "https://w/v1"), "https://w/v1");
        assert_eq!(display_url("http://user:pw@v:1/x@y"), "http://v:1/x@y");
        assert!(has_userinfo("https://a:b@v") && !has_userinfo("https://v/a@b"));
    }

    #[test]
    fn redirects_are_followed_only_within_the_origin() {
        let h = http("https://vault:8200", 0);
        let to = |location: &str| Answer {
            status: 307,
            text: Zeroizing::new(String::new()),
            retry_after: None,
            content_type: None,
            location: Some(location.into()),
        };
        let from = "https://vault:8200/v1/kv/data/a";
        assert_eq!(
            h.follow(from, &to("/v1/kv/data/b")).unwrap(),
            "https://vault:8200/v1/kv/data/b"
        );
        assert_eq!(
            h.follow(from, &to("https://VAULT:8200/v1/x")).unwrap(),
            "https://VAULT:8200/v1/x"
        );
        let e = h.follow(from, &to("http://vault:8200/v1/x")).unwrap_err().0;
        assert!(e.contains("from https to plain http"), "{e}");
        for elsewhere in [
            "https://evil:8200/v1/x",
            "https://vault:8201/v1/x",
            "//evil/v1/x",
            "https://u:canary@vault:8200/v1/x",
        ] {
            let e = h.follow(from, &to(elsewhere)).unwrap_err().0;
            assert!(
                e.contains("to another server") && !e.contains("canary"),
                "{e}"
            );
        }
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
