//! The client the bearer-token REST stores share (1Password Connect, the Kubernetes API):
//! JSON `GET`s against one base URL with `Authorization: Bearer`, bounded retries on
//! connection errors, 429 (honouring `Retry-After`) and 5xx, one time budget for every request
//! of a render, and no redirects (a token is never sent to another server).
//!
//! The transport details (what is worth a retry, how a TLS or connection failure reads, URL
//! and error-text redaction) are the Vault store's, reused from [`crate::vault::http`].
//! [`Memo`] gives each distinct lookup exactly one request per render, however many
//! references share it and however many threads ask at once.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use crate::vault::http::{
    display_url, is_tls, printable, redact_with, shorten, status_text, transient, transport_text,
};
use crate::{SecretValue, StoreError};

/// Largest answer read (an item or a Secret is at most a few MB).
const BODY_LIMIT: u64 = 8 * 1024 * 1024;
/// Longest server message kept.
const MESSAGE_LIMIT: usize = 300;
/// Longest wait a `Retry-After` may ask for.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(5);

/// How to reach one API.
pub(crate) struct Endpoint {
    /// `https://host:port` (a path prefix is allowed), without a trailing `/`.
    pub base: String,
    /// The bearer token, if the API takes one.
    pub token: Option<Zeroizing<String>>,
    /// TLS: trusted roots, client certificate.
    pub tls: ureq::tls::TlsConfig,
    /// The operator setting that names the address, for messages (`OP_CONNECT_HOST`).
    pub setting: &'static str,
    /// Time for all requests of a render, retries and waits included.
    pub budget: Duration,
    /// Attempts per request.
    pub attempts: u32,
}

/// An answer: its status and its JSON body (`null` when empty or not JSON), wiped on drop.
pub(crate) struct Reply {
    pub status: u16,
    pub body: SecretValue,
}

/// A client for one [`Endpoint`].
pub(crate) struct Rest {
    agent: ureq::Agent,
    end: Endpoint,
    deadline: Instant,
}

impl Rest {
    pub(crate) fn new(end: Endpoint) -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(end.budget))
            .timeout_connect(Some(end.budget.min(Duration::from_secs(10))))
            .user_agent(concat!("kustodian/", env!("CARGO_PKG_VERSION")))
            .tls_config(end.tls.clone())
            .max_idle_connections_per_host(16)
            .build();
        Rest {
            agent: config.new_agent(),
            deadline: Instant::now() + end.budget,
            end,
        }
    }

    /// `GET base + path` (path and query already encoded), retried while worth it and while the
    /// budget lasts. `Err` says why no answer came, naming the address but no path.
    pub(crate) fn get(&self, path: &str) -> Result<Reply, String> {
        let url = format!("{}{path}", self.end.base);
        let mut attempt = 1;
        loop {
            let left = self
                .deadline
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero())
                .ok_or_else(|| self.out_of_time(attempt))?;
            let result = self.once(&url, left);
            let again = match &result {
                Ok((status, after, _)) if *status == 429 || *status >= 500 => Some(*after),
                Err(e) if transient(e) => Some(None),
                _ => None,
            };
            if let Some(after) = again.filter(|_| attempt < self.end.attempts) {
                let wait = after.unwrap_or_else(|| backoff(attempt));
                if Instant::now() + wait < self.deadline {
                    std::thread::sleep(wait);
                    attempt += 1;
                    continue;
                }
            }
            return match result {
                Ok((status, _, body)) => Ok(Reply { status, body }),
                Err(e) => Err(self.describe(&e, attempt)),
            };
        }
    }

    fn once(
        &self,
        url: &str,
        left: Duration,
    ) -> Result<(u16, Option<Duration>, SecretValue), ureq::Error> {
        let mut rb = self
            .agent
            .get(url)
            .config()
            .timeout_global(Some(left))
            .build()
            .header("Accept", "application/json");
        let bearer = self
            .end
            .token
            .as_ref()
            .map(|t| Zeroizing::new(format!("Bearer {}", t.as_str())));
        if let Some(b) = &bearer {
            rb = rb.header("Authorization", b.as_str());
        }
        let mut response = rb.call()?;
        let status = response.status().as_u16();
        let retry_after = crate::answer::retry_after_secs(&response)
            .map(|s| Duration::from_secs(s).min(RETRY_AFTER_CAP));
        let bytes = crate::answer::read_body(&mut response, BODY_LIMIT)?;
        let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        Ok((status, retry_after, SecretValue::new(body)))
    }

    /// The server's `message` (1Password Connect's error body, a Kubernetes `Status`),
    /// without control characters, the token or URL passwords, shortened; the status's
    /// meaning when there is none.
    pub(crate) fn message(&self, reply: &Reply) -> String {
        let text = reply
            .body
            .expose()
            .get("message")
            .and_then(|m| m.as_str())
            .map(printable)
            .filter(|m| !m.trim().is_empty())
            .unwrap_or_else(|| status_text(reply.status).to_string());
        let token: Vec<&str> = self.end.token.iter().map(|t| t.as_str()).collect();
        format!(
            "{}: {}",
            reply.status,
            shorten(&redact_with(text.trim(), &token), MESSAGE_LIMIT)
        )
    }

    /// The address, without user info, for messages.
    pub(crate) fn address(&self) -> String {
        display_url(&self.end.base)
    }

    fn out_of_time(&self, attempt: u32) -> String {
        format!(
            "no answer from {} within {}s, the time allowed for all its requests of a render{}",
            self.address(),
            self.end.budget.as_secs(),
            attempts(attempt)
        )
    }

    fn describe(&self, e: &ureq::Error, attempt: u32) -> String {
        if matches!(e, ureq::Error::Timeout(_)) {
            return self.out_of_time(attempt);
        }
        let hint = if is_tls(e) {
            " (check the CA the operator configured for it)"
        } else {
            ""
        };
        let token: Vec<&str> = self.end.token.iter().map(|t| t.as_str()).collect();
        format!(
            "cannot reach {}: {}{}{hint}; check {}",
            self.address(),
            redact_with(&transport_text(e), &token),
            attempts(attempt),
            self.end.setting
        )
    }
}

fn attempts(n: u32) -> String {
    if n > 1 {
        format!(" (after {n} attempts)")
    } else {
        String::new()
    }
}

/// 100 ms, 200 ms, 400 ms, ... at most 2 s, with a little jitter.
fn backoff(attempt: u32) -> Duration {
    let base = Duration::from_millis(100)
        .saturating_mul(1 << attempt.saturating_sub(1).min(5))
        .min(Duration::from_secs(2));
    let jitter = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() % 40)
        .unwrap_or(0);
    base + Duration::from_millis(u64::from(jitter))
}

type Slot<V> = Arc<OnceLock<Result<V, StoreError>>>;

/// Each key computed once; concurrent askers of the same key wait for the first.
pub(crate) struct Memo<K, V>(Mutex<HashMap<K, Slot<V>>>);

impl<K, V> Default for Memo<K, V> {
    fn default() -> Self {
        Memo(Mutex::new(HashMap::new()))
    }
}

impl<K: Hash + Eq, V: Clone> Memo<K, V> {
    pub(crate) fn get(
        &self,
        key: K,
        f: impl FnOnce() -> Result<V, StoreError>,
    ) -> Result<V, StoreError> {
        let slot = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_default()
            .clone();
        slot.get_or_init(f).clone()
    }
}

/// A number of seconds from an operator setting, or the default.
pub(crate) fn seconds_setting(
    c: &crate::Config,
    name: &str,
    default: u64,
) -> Result<Duration, StoreError> {
    match c.var(name) {
        None => Ok(Duration::from_secs(default)),
        Some(v) => v
            .trim()
            .trim_end_matches('s')
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=3600).contains(n))
            .map(Duration::from_secs)
            .ok_or_else(|| {
                StoreError::Config(format!(
                    "{name} must be a number of seconds between 1 and 3600"
                ))
            }),
    }
}
