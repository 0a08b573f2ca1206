//! The bearer-token REST stores (1Password Connect, the Kubernetes API) on the shared client
//! ([`crate::http`]): JSON `GET`s against one base URL with `Authorization: Bearer`, bounded
//! retries on connection errors, 429 (honouring `Retry-After`) and 5xx, one time budget for
//! every request of a render, and redirects only within the base URL's origin (a token is
//! never sent to another server).
//!
//! [`Memo`] gives each distinct lookup exactly one request per render, however many
//! references share it and however many threads ask at once.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use zeroize::Zeroizing;

use crate::http::{
    display_url, is_tls, printable, redact_with, redirect_text, shorten, status_text,
    transport_text, Client, Deadline, Exchange, Failure, Headers, Limits, Method, Request, Why,
};
use crate::{SecretValue, StoreError};

/// Largest answer read (an item or a Secret is at most a few MB).
const BODY_LIMIT: u64 = 8 * 1024 * 1024;
/// Longest server message kept.
const MESSAGE_LIMIT: usize = 300;

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

impl Exchange for Endpoint {
    fn headers(&self, _url: &str) -> Headers {
        let mut h: Headers = vec![("Accept".into(), Zeroizing::new("application/json".into()))];
        if let Some(t) = &self.token {
            h.push((
                "Authorization".into(),
                Zeroizing::new(format!("Bearer {}", t.as_str())),
            ));
        }
        h
    }
}

/// An answer: its status and its JSON body (`null` when empty or not JSON), wiped on drop.
pub(crate) struct Reply {
    pub status: u16,
    pub body: SecretValue,
}

/// A client for one [`Endpoint`].
pub(crate) struct Rest {
    client: Client,
    end: Endpoint,
}

impl Rest {
    pub(crate) fn new(end: Endpoint) -> Self {
        let limits = Limits {
            attempts: end.attempts,
            timeout: end.budget,
            deadline: Deadline::Shared(end.budget),
            backoff: Duration::from_millis(100),
            backoff_cap: Duration::from_secs(2),
            retry_after_cap: Duration::from_secs(5),
            body_limit: BODY_LIMIT,
        };
        Rest {
            client: Client::new(limits, Some(end.tls.clone())),
            end,
        }
    }

    /// `GET base + path` (path and query already encoded), retried while worth it and while the
    /// budget lasts. `Err` says why no answer came, naming the address but no path.
    pub(crate) fn get(&self, path: &str) -> Result<Reply, String> {
        let request = Request {
            method: Method::Get,
            url: format!("{}{path}", self.end.base),
            body: &[],
        };
        let answer = self
            .client
            .send(&request, &self.end)
            .map_err(|f| self.describe(&f))?;
        let body = serde_json::from_slice(&answer.body).unwrap_or(serde_json::Value::Null);
        Ok(Reply {
            status: answer.status,
            body: SecretValue::new(body),
        })
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
        format!(
            "{}: {}",
            reply.status,
            shorten(&redact_with(text.trim(), &self.token()), MESSAGE_LIMIT)
        )
    }

    /// The address, without user info, for messages.
    pub(crate) fn address(&self) -> String {
        display_url(&self.end.base)
    }

    fn token(&self) -> Vec<&str> {
        self.end.token.iter().map(|t| t.as_str()).collect()
    }

    fn describe(&self, f: &Failure) -> String {
        let e = match &f.why {
            Why::OutOfTime | Why::Transport(ureq::Error::Timeout(_)) => {
                return format!(
                "no answer from {} within {}s, the time allowed for all its requests of a render{}",
                self.address(),
                self.end.budget.as_secs(),
                f.after()
            )
            }
            Why::Redirect(r) => {
                let setting = self.end.setting;
                return redirect_text(&self.end.base, r, "its token and requests", &|_| {
                    format!("check {setting}")
                });
            }
            Why::Transport(e) => e,
        };
        let hint = if is_tls(e) {
            " (check the CA the operator configured for it)"
        } else {
            ""
        };
        format!(
            "cannot reach {}: {}{}{hint}; check {}",
            self.address(),
            redact_with(&transport_text(e), &self.token()),
            f.after(),
            self.end.setting
        )
    }
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
