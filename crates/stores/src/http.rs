//! The one HTTP client every remote store sends its requests through (Vault/OpenBao, AWS, GCP,
//! Azure, 1Password Connect, Kubernetes).
//!
//! What it does the same way for all of them:
//!
//! - one `ureq` agent (rustls, connection pool), statuses returned rather than raised;
//! - bounded attempts with jittered exponential backoff on connection failures, 429 and 5xx
//!   (and whatever else a store's [`Exchange::retry`] says is worth another try), honouring a
//!   capped `Retry-After`;
//! - one deadline: the store's time for a whole render ([`Deadline::Shared`]), which every
//!   attempt and wait fits inside, or for one request's retries ([`Deadline::PerRequest`]),
//!   past which no wait starts;
//! - redirects followed by hand and only within the request's origin (scheme, host, port),
//!   never from https to http and never to a URL with user info, so that a token, a signed
//!   header or login credentials are never sent to another server;
//! - bodies read up to a limit into memory that is wiped when dropped;
//! - failures as data ([`Failure`]) with helpers that never print a path, a query, URL user
//!   info or a known secret ([`redact_with`], [`display_url`], [`transport_text`]).
//!
//! What each store keeps: its headers (signed again on every attempt, for AWS), which answers
//! are worth a retry, and how a status or a [`Failure`] reads in its messages.

use std::hash::{BuildHasher, Hasher};
use std::io::Read as _;
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

/// Most redirects followed for one request (all within its origin).
pub(crate) const MAX_REDIRECTS: u32 = 5;
/// Longest transport error text kept in a message.
const TEXT_LIMIT: usize = 300;
/// Shortest fragment of a token or credential that is redacted wherever it appears.
const FRAGMENT: usize = 8;

/// The method of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Post,
}

/// How long requests may take.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Deadline {
    /// One budget for every request of the client, counted from its creation (Vault's
    /// `VAULT_CLIENT_TIMEOUT`, the REST stores' timeout).
    Shared(Duration),
    /// A time for each request's retries (the clouds): no wait starts that would end past it,
    /// while each attempt has the whole [`Limits::timeout`].
    PerRequest(Duration),
}

/// The limits of a [`Client`].
#[derive(Clone, Debug)]
pub(crate) struct Limits {
    /// Attempts per request, the first included (at least 1).
    pub attempts: u32,
    /// Longest single attempt (connecting takes at most 10 s of it).
    pub timeout: Duration,
    /// The time for requests (or their retries) and waits.
    pub deadline: Deadline,
    /// The first backoff step, doubled after each attempt up to `backoff_cap`.
    pub backoff: Duration,
    pub backoff_cap: Duration,
    /// Longest `Retry-After` honoured.
    pub retry_after_cap: Duration,
    /// Largest body read; a longer one is an error.
    pub body_limit: u64,
}

/// One request. Its headers come from the store's [`Exchange`], on every attempt.
pub(crate) struct Request<'a> {
    pub method: Method,
    /// The full URL, query included.
    pub url: String,
    /// The body of a `POST`.
    pub body: &'a [u8],
}

/// Header name and value; values may be tokens, so they are wiped on drop.
pub(crate) type Headers = Vec<(String, Zeroizing<String>)>;

/// What a store adds to a request.
pub(crate) trait Exchange {
    /// The headers of one attempt at `url` (the request's, or a redirect's within its origin).
    fn headers(&self, url: &str) -> Headers;

    /// Whether `answer` is worth another attempt: 429 and 5xx unless the store knows better.
    fn retry(&self, answer: &Answer) -> bool {
        answer.status == 429 || answer.status >= 500
    }

    /// Whether a failure to get an answer is worth another attempt: see [`transient`].
    fn retry_failure(&self, e: &ureq::Error) -> bool {
        transient(e)
    }
}

/// An answer: its status, headers and body (bounded, wiped on drop).
pub(crate) struct Answer {
    pub status: u16,
    headers: ureq::http::HeaderMap,
    pub body: Zeroizing<Vec<u8>>,
}

impl Answer {
    /// A header's value, if it is text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as text (invalid UTF-8 replaced), wiped on drop.
    pub(crate) fn text(&self) -> Zeroizing<String> {
        Zeroizing::new(String::from_utf8_lossy(&self.body).into_owned())
    }

    /// The `Retry-After` header as whole seconds, if it is one.
    fn retry_after(&self) -> Option<Duration> {
        self.header("retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs)
    }
}

/// Why no answer came back.
#[derive(Debug)]
pub(crate) enum Why {
    /// The deadline passed before an attempt could start.
    OutOfTime,
    /// Connection, TLS, timeout or protocol failure of the last attempt.
    Transport(ureq::Error),
    /// A redirect that was not followed.
    Redirect(Redirect),
}

/// A redirect that was not followed.
#[derive(Debug)]
pub(crate) enum Redirect {
    /// A 3xx without a `Location`.
    NoLocation { status: u16 },
    /// A `Location` outside the request's origin; `target` is its origin, if it is http(s).
    Elsewhere {
        status: u16,
        target: Option<Origin>,
        /// From https to plain http.
        downgrade: bool,
    },
    /// More than [`MAX_REDIRECTS`] redirects.
    TooMany,
}

/// A request that got no answer, with the attempts made.
#[derive(Debug)]
pub(crate) struct Failure {
    pub why: Why,
    pub attempts: u32,
}

impl Failure {
    /// ` (after N attempts)` when there was more than one.
    pub(crate) fn after(&self) -> String {
        if self.attempts > 1 {
            format!(" (after {} attempts)", self.attempts)
        } else {
            String::new()
        }
    }
}

/// A client with its limits; see the module documentation.
pub(crate) struct Client {
    agent: ureq::Agent,
    limits: Limits,
    /// When [`Deadline::Shared`] runs out.
    shared_until: Option<Instant>,
}

impl Client {
    /// A client trusting `tls` (the platform's roots when `None`). A shared deadline starts now.
    pub(crate) fn new(limits: Limits, tls: Option<ureq::tls::TlsConfig>) -> Self {
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(limits.timeout))
            .timeout_connect(Some(limits.timeout.min(Duration::from_secs(10))))
            .user_agent(concat!("kustodian/", env!("CARGO_PKG_VERSION")))
            .max_idle_connections_per_host(16);
        if let Some(tls) = tls {
            config = config.tls_config(tls);
        }
        let shared_until = match limits.deadline {
            Deadline::Shared(d) => Some(Instant::now() + d),
            Deadline::PerRequest(_) => None,
        };
        Client {
            agent: config.build().new_agent(),
            limits: Limits {
                attempts: limits.attempts.max(1),
                ..limits
            },
            shared_until,
        }
    }

    /// Sends `req`, retrying what is worth it and following redirects within its origin, all
    /// before the deadline. An answer of any status is `Ok`.
    pub(crate) fn send(&self, req: &Request, store: &dyn Exchange) -> Result<Answer, Failure> {
        let until = match self.limits.deadline {
            Deadline::Shared(_) => self.shared_until.unwrap_or_else(Instant::now),
            Deadline::PerRequest(d) => Instant::now() + d,
        };
        let left = || {
            until
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero())
        };
        let home = origin(&req.url);
        let mut url = req.url.clone();
        let mut attempts = 0;
        let mut redirects = 0;
        loop {
            let fail = |why, attempts| Err(Failure { why, attempts });
            let timeout = match self.limits.deadline {
                Deadline::Shared(_) => match left() {
                    Some(remaining) => remaining.min(self.limits.timeout),
                    None => return fail(Why::OutOfTime, attempts),
                },
                Deadline::PerRequest(_) => self.limits.timeout,
            };
            let result = self.once(req, &url, timeout, store);
            attempts += 1;
            if let Ok(a) = &result {
                if matches!(a.status, 301 | 302 | 303 | 307 | 308) {
                    match follow(home.as_ref(), &url, a) {
                        Ok(next) if redirects < MAX_REDIRECTS => {
                            url = next;
                            redirects += 1;
                            attempts -= 1;
                            continue;
                        }
                        Ok(_) => return fail(Why::Redirect(Redirect::TooMany), attempts),
                        Err(r) => return fail(Why::Redirect(r), attempts),
                    }
                }
            }
            let after = match &result {
                Ok(a) if store.retry(a) => Some(a.retry_after()),
                Err(e) if store.retry_failure(e) => Some(None),
                _ => None,
            };
            if let Some(after) = after.filter(|_| attempts < self.limits.attempts) {
                let mut wait = self.backoff(attempts);
                if let Some(after) = after {
                    wait = wait.max(after.min(self.limits.retry_after_cap));
                }
                if left().is_some_and(|l| l > wait) {
                    std::thread::sleep(wait);
                    continue;
                }
            }
            return result.map_err(|e| Failure {
                why: Why::Transport(e),
                attempts,
            });
        }
    }

    fn once(
        &self,
        req: &Request,
        url: &str,
        timeout: Duration,
        store: &dyn Exchange,
    ) -> Result<Answer, ureq::Error> {
        let headers = store.headers(url);
        let response = match req.method {
            Method::Get => prepare(self.agent.get(url), timeout, &headers).call(),
            Method::Post => prepare(self.agent.post(url), timeout, &headers).send(req.body),
        };
        let mut response = response?;
        let mut body = Zeroizing::new(Vec::new());
        response
            .body_mut()
            .with_config()
            .limit(self.limits.body_limit)
            .reader()
            .read_to_end(&mut body)
            .map_err(ureq::Error::Io)?;
        Ok(Answer {
            status: response.status().as_u16(),
            headers: std::mem::take(response.headers_mut()),
            body,
        })
    }

    /// "Full jitter": a random wait up to `backoff`, `2 * backoff`, ... at most `backoff_cap`,
    /// after attempt `attempt` (1-based).
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        let cap = self
            .limits
            .backoff
            .saturating_mul(1 << attempt.saturating_sub(1).min(6))
            .min(self.limits.backoff_cap);
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(attempt);
        let r = h.finish() % 1000;
        cap.mul_f64((r as f64 + 1.0) / 1000.0)
    }
}

/// One attempt's request: its time (connecting takes at most 10 s of it) and headers.
fn prepare<B>(
    rb: ureq::RequestBuilder<B>,
    timeout: Duration,
    headers: &Headers,
) -> ureq::RequestBuilder<B> {
    let mut rb = rb
        .config()
        .timeout_global(Some(timeout))
        .timeout_connect(Some(timeout.min(Duration::from_secs(10))))
        .build();
    for (k, v) in headers {
        rb = rb.header(k.as_str(), v.as_str());
    }
    rb
}

/// The next URL of a redirect, when it stays within `home`.
fn follow(home: Option<&Origin>, from: &str, a: &Answer) -> Result<String, Redirect> {
    let Some(location) = a.header("location") else {
        return Err(Redirect::NoLocation { status: a.status });
    };
    let next = resolve_location(from, location);
    let target = origin(&next);
    if target.is_some() && target.as_ref() == home && !has_userinfo(&next) {
        return Ok(next);
    }
    let downgrade = home.is_some_and(|o| o.scheme == "https")
        && target.as_ref().is_some_and(|t| t.scheme == "http");
    Err(Redirect::Elsewhere {
        status: a.status,
        target,
        downgrade,
    })
}

/// How a redirect that was not followed reads: `here` (the address, shown without user
/// info) redirected where, that `guarded` (what the request carries) is never sent elsewhere,
/// and `fix(target)`, what to do when the target is the right server after all.
pub(crate) fn redirect_text(
    here: &str,
    r: &Redirect,
    guarded: &str,
    fix: &dyn Fn(&str) -> String,
) -> String {
    let here = display_url(here);
    match r {
        Redirect::NoLocation { status } => {
            format!("{here} answered {status} (a redirect) without a Location")
        }
        Redirect::TooMany => format!("{here} redirected more than {MAX_REDIRECTS} times"),
        Redirect::Elsewhere {
            status,
            target,
            downgrade,
        } => {
            let shown = target
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_else(|| "an address that is not http(s)".into());
            let what = if *downgrade {
                "from https to plain http"
            } else {
                "to another server"
            };
            format!(
                "{here} redirected {what} ({status} to {shown}); kustodian follows redirects only within {here} so \
                 that {guarded} are never sent elsewhere; {}",
                fix(&shown)
            )
        }
    }
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

/// A transport failure in a few words (`connection refused`, `TLS: ...`), never a URL.
pub(crate) fn transport_text(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Io(io) => match (io.kind(), io.get_ref()) {
            (std::io::ErrorKind::ConnectionRefused, _) => "connection refused".into(),
            (std::io::ErrorKind::ConnectionReset, _) => "connection reset".into(),
            (std::io::ErrorKind::InvalidData, Some(inner)) => {
                shorten(&format!("TLS: {inner}"), TEXT_LIMIT)
            }
            (k, _) => format!("{k}"),
        },
        ureq::Error::Timeout(t) => format!("timed out ({t})"),
        ureq::Error::ConnectionFailed => "connection failed".into(),
        ureq::Error::HostNotFound => "host not found".into(),
        ureq::Error::Rustls(r) => format!("TLS: {r}"),
        ureq::Error::Tls(t) => format!("TLS: {t}"),
        // ureq's text of these two holds the whole URL, user info and query included.
        ureq::Error::BadUri(_) => "not a valid URL".into(),
        ureq::Error::RequireHttpsOnly(_) => "an https URL is required".into(),
        other => shorten(&other.to_string(), TEXT_LIMIT),
    }
}

/// A URL's scheme, host and port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Origin {
    pub scheme: String,
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// The origin of an absolute http(s) URL.
pub(crate) fn origin(url: &str) -> Option<Origin> {
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

/// `scheme://host[:port]` of a URL as written, for messages: never a path or query (they may
/// name a secret), nor a user name and password.
pub(crate) fn origin_text(url: &str) -> String {
    let scheme_end = url.find("://").map(|i| i + 3).unwrap_or(0);
    let end = url[scheme_end..]
        .find(['/', '?', '#'])
        .map(|i| scheme_end + i)
        .unwrap_or(url.len());
    let authority = &url[scheme_end..end];
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{}{host}", &url[..scheme_end])
}

/// A redirect's target as an absolute URL.
pub(crate) fn resolve_location(from: &str, location: &str) -> String {
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

/// At most `max` bytes of `s` (on a character boundary), `...` marking a cut.
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

/// What a status means, for messages without a server text.
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

/// `url` with `?k=v&...` appended, each part encoded with `encode`.
pub(crate) fn with_query(url: &str, query: &[(&str, &str)], encode: fn(&str) -> String) -> String {
    let mut url = url.to_string();
    for (i, (k, v)) in query.iter().enumerate() {
        url.push(if i == 0 { '?' } else { '&' });
        url.push_str(&encode(k));
        url.push('=');
        url.push_str(&encode(v));
    }
    url
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;

    /// A server answering each connection's request with the next canned response; the
    /// count is of requests read.
    pub(crate) fn serve(responses: Vec<String>) -> (String, Arc<AtomicUsize>) {
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

    struct Plain;
    impl Exchange for Plain {
        fn headers(&self, _url: &str) -> Headers {
            vec![("x-token".into(), Zeroizing::new("canary-token".into()))]
        }
    }

    fn client(attempts: u32, deadline: Deadline) -> Client {
        Client::new(
            Limits {
                attempts,
                timeout: Duration::from_secs(5),
                deadline,
                backoff: Duration::from_millis(5),
                backoff_cap: Duration::from_millis(20),
                retry_after_cap: Duration::from_secs(5),
                body_limit: 1024,
            },
            None,
        )
    }

    fn get(url: String) -> Request<'static> {
        Request {
            method: Method::Get,
            url,
            body: &[],
        }
    }

    fn reply(status: &str, headers: &str, body: &str) -> String {
        format!(
            "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    #[test]
    fn retries_5xx_and_429_then_answers() {
        let (addr, hits) = serve(vec![
            reply("503 Service Unavailable", "", "{}"),
            reply("429 Too Many Requests", "", "{}"),
            reply("200 OK", "", "{\"k\":1}"),
        ]);
        let c = client(3, Deadline::Shared(Duration::from_secs(10)));
        let a = c.send(&get(format!("{addr}/x")), &Plain).unwrap();
        assert_eq!((a.status, a.text().as_str()), (200, "{\"k\":1}"));
        assert_eq!(hits.load(Ordering::SeqCst), 3);
    }

    /// The status `send` returns with `attempts` and `deadline` from a server giving
    /// `responses`, and how many requests it read.
    fn status_and_hits(responses: Vec<String>, attempts: u32, deadline: Deadline) -> (u16, usize) {
        let (addr, hits) = serve(responses);
        let a = client(attempts, deadline)
            .send(&get(format!("{addr}/x")), &Plain)
            .unwrap();
        (a.status, hits.load(Ordering::SeqCst))
    }

    #[test]
    fn attempts_are_bounded_and_the_last_answer_returned() {
        let r503 = reply("503 Service Unavailable", "", "{}");
        let responses = vec![r503.clone(), r503.clone(), r503];
        let ten = Deadline::PerRequest(Duration::from_secs(10));
        assert_eq!(status_and_hits(responses, 2, ten), (503, 2));
    }

    #[test]
    fn retry_after_is_waited_for() {
        let responses = vec![
            reply("429 Too Many Requests", "Retry-After: 1\r\n", ""),
            reply("200 OK", "", ""),
        ];
        let started = Instant::now();
        let ten = Deadline::PerRequest(Duration::from_secs(10));
        assert_eq!(status_and_hits(responses, 2, ten), (200, 2));
        assert!(started.elapsed() >= Duration::from_secs(1));
    }

    #[test]
    fn a_retry_after_beyond_the_deadline_is_not_waited_for() {
        let responses = vec![
            reply("429 Too Many Requests", "Retry-After: 3\r\n", ""),
            reply("200 OK", "", ""),
        ];
        let two = Deadline::PerRequest(Duration::from_secs(2));
        assert_eq!(status_and_hits(responses, 2, two), (429, 1));
    }

    #[test]
    fn a_spent_shared_deadline_sends_nothing() {
        let c = client(2, Deadline::Shared(Duration::from_millis(1)));
        std::thread::sleep(Duration::from_millis(5));
        let f = c
            .send(&get("http://127.0.0.1:9/x".into()), &Plain)
            .err()
            .unwrap();
        assert!(matches!(f.why, Why::OutOfTime) && f.attempts == 0);
    }

    #[test]
    fn connection_refused_is_retried_then_reported() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = format!("http://{}", l.local_addr().unwrap());
        drop(l);
        let f = client(3, Deadline::PerRequest(Duration::from_secs(10)))
            .send(&get(format!("{addr}/secret/name")), &Plain)
            .err()
            .unwrap();
        let Why::Transport(e) = &f.why else {
            panic!("{f:?}")
        };
        assert_eq!(transport_text(e), "connection refused");
        assert_eq!(f.after(), " (after 3 attempts)");
    }

    #[test]
    fn bodies_over_the_limit_are_errors() {
        let big = "x".repeat(2048);
        let (addr, _) = serve(vec![reply("200 OK", "", &big)]);
        let c = client(1, Deadline::PerRequest(Duration::from_secs(10)));
        assert!(c.send(&get(format!("{addr}/x")), &Plain).is_err());
    }

    #[test]
    fn redirects_are_followed_only_within_the_origin() {
        let (addr, hits) = serve(vec![
            reply("307 Temporary Redirect", "Location: /v1/b\r\n", ""),
            reply("200 OK", "", "b"),
        ]);
        let c = client(1, Deadline::PerRequest(Duration::from_secs(10)));
        let a = c.send(&get(format!("{addr}/v1/a")), &Plain).unwrap();
        assert_eq!((a.status, a.text().as_str()), (200, "b"));
        assert_eq!(hits.load(Ordering::SeqCst), 2);

        let home = origin("https://vault:8200").unwrap();
        let to = |location: &str| {
            let mut headers = ureq::http::HeaderMap::new();
            headers.insert("location", location.parse().unwrap());
            Answer {
                status: 307,
                headers,
                body: Zeroizing::new(Vec::new()),
            }
        };
        let from = "https://vault:8200/v1/kv/data/a";
        assert_eq!(
            follow(Some(&home), from, &to("/v1/kv/data/b")).unwrap(),
            "https://vault:8200/v1/kv/data/b"
        );
        assert_eq!(
            follow(Some(&home), from, &to("https://VAULT:8200/v1/x")).unwrap(),
            "https://VAULT:8200/v1/x"
        );
        assert!(matches!(
            follow(Some(&home), from, &to("http://vault:8200/v1/x")),
            Err(Redirect::Elsewhere {
                downgrade: true,
                ..
            })
        ));
        for elsewhere in [
            "https://evil:8200/v1/x",
            "https://vault:8201/v1/x",
            "//evil/v1/x",
            "https://u:canary@vault:8200/v1/x",
        ] {
            assert!(matches!(
                follow(Some(&home), from, &to(elsewhere)),
                Err(Redirect::Elsewhere {
                    downgrade: false,
                    ..
                })
            ));
        }
    }

    #[test]
    fn a_redirect_to_another_origin_sends_it_nothing() {
        let elsewhere = TcpListener::bind("127.0.0.1:0").unwrap();
        elsewhere.set_nonblocking(true).unwrap();
        let target = format!("http://{}/steal", elsewhere.local_addr().unwrap());
        let (addr, _) = serve(vec![reply(
            "307 Temporary Redirect",
            &format!("Location: {target}\r\n"),
            "",
        )]);
        let c = client(3, Deadline::PerRequest(Duration::from_secs(10)));
        let f = c.send(&get(format!("{addr}/x")), &Plain).err().unwrap();
        let Why::Redirect(r) = &f.why else {
            panic!("{f:?}")
        };
        let text = redirect_text(&addr, r, "its token", &|_| "check the address".into());
        assert!(
            text.contains("redirected to another server") && !text.contains("/steal"),
            "{text}"
        );
        assert!(
            elsewhere.accept().is_err(),
            "the other origin was contacted"
        );
    }

    #[test]
    fn a_redirect_loop_stops() {
        let loop_reply = reply("302 Found", "Location: /again\r\n", "");
        let (addr, hits) = serve(vec![loop_reply; 10]);
        let c = client(1, Deadline::PerRequest(Duration::from_secs(10)));
        let f = c.send(&get(format!("{addr}/x")), &Plain).err().unwrap();
        assert!(matches!(f.why, Why::Redirect(Redirect::TooMany)));
        assert_eq!(hits.load(Ordering::SeqCst), MAX_REDIRECTS as usize + 1);
    }

    #[test]
    fn backoff_is_jittered_below_a_doubling_cap() {
        let c = Client::new(
            Limits {
                attempts: 4,
                timeout: Duration::from_secs(1),
                deadline: Deadline::PerRequest(Duration::from_secs(1)),
                backoff: Duration::from_millis(100),
                backoff_cap: Duration::from_secs(5),
                retry_after_cap: Duration::from_secs(1),
                body_limit: 1,
            },
            None,
        );
        for (attempt, cap_ms) in [(1, 100), (2, 200), (3, 400), (30, 5000)] {
            let waits: Vec<Duration> = (0..20).map(|_| c.backoff(attempt)).collect();
            assert!(waits
                .iter()
                .all(|w| *w > Duration::ZERO && *w <= Duration::from_millis(cap_ms)));
            assert!(waits.iter().any(|w| *w != waits[0]), "no jitter: {waits:?}");
        }
    }

    #[test]
    fn urls() {
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
        assert_eq!(origin_text("http://h:1/secret/name"), "http://h:1");
        assert_eq!(origin_text("https://u:canary-pw@h/x"), "https://h");
        assert_eq!(
            encode_path("kv/data/my app?x#y"),
            "kv/data/my%20app%3Fx%23y"
        );
        assert_eq!(encode_segment("a.b-c_d~"), "a.b-c_d~");
        assert_eq!(
            with_query("http://h/p", &[("a b", "c&d")], encode_segment),
            "http://h/p?a%20b=c%26d"
        );
    }

    #[test]
    fn transport_text_never_holds_the_url() {
        let url = "https://user:canary-pass@vault.example/v1/kv?token=canary-q";
        for e in [
            ureq::Error::BadUri(url.to_string()),
            ureq::Error::RequireHttpsOnly(url.to_string()),
        ] {
            let t = transport_text(&e);
            assert!(!t.contains("canary"), "{t}");
        }
    }

    #[test]
    fn redaction_removes_secrets_their_fragments_and_url_passwords() {
        let t = redact_with(
            "bad token s.canary-token-0123456789; prefix canary-token-01 and http://u:pw@h:1/x",
            &["s.canary-token-0123456789"],
        );
        assert!(!t.contains("canary") && !t.contains("pw@"), "{t}");
        assert!(t.contains("http://h:1/x"), "{t}");
    }
}
