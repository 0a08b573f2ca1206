//! The HTTP side of the AWS stores: one `ureq` agent, requests signed with SigV4 (signed
//! again on every attempt), and retries with jittered exponential backoff on throttling
//! (`ThrottlingException`, HTTP 429), 5xx and connection failures, bounded by an attempt
//! count and a deadline.
//!
//! Answers keep their body in memory that is wiped on drop; error codes and messages are read
//! from AWS's JSON (`__type`, `message`) or XML (`<Code>`, `<Message>`) error shapes.

use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use zeroize::Zeroizing;

use super::credentials::Credentials;
use super::settings::{Service, Settings};
use super::sigv4;

/// Largest response body read (a secret is at most 64 KB; parameters 8 KB).
const BODY_LIMIT: u64 = 4 * 1024 * 1024;
/// Longest `Retry-After` honoured; a longer one waits this long (within the deadline).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);
/// Longest AWS error message kept.
const MESSAGE_LIMIT: usize = 300;

/// One request.
pub(crate) struct Call<'a> {
    pub method: &'a str,
    /// The full URL (endpoint and path, query included when `query` is empty).
    pub url: String,
    pub query: Vec<(&'a str, String)>,
    pub headers: Vec<(&'a str, String)>,
    pub body: Zeroizing<Vec<u8>>,
    /// Sign for this service and region with these credentials; `None`: send unsigned
    /// (`AssumeRoleWithWebIdentity`, the container credentials endpoint).
    pub sign: Option<(&'a Credentials, Service, &'a str)>,
}

/// An answer: status, body, and the AWS error when the status is not 2xx.
pub(crate) struct Answer {
    pub status: u16,
    pub body: Zeroizing<String>,
    pub error: Option<AwsError>,
    /// The server's `Retry-After` (in seconds), honoured before the next attempt.
    pub retry_after: Option<Duration>,
}

/// AWS's error code and message (`ResourceNotFoundException`, "Secrets Manager can't find ...").
#[derive(Clone, Debug)]
pub(crate) struct AwsError {
    pub code: String,
    pub message: String,
}

impl std::fmt::Display for AwsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.message.is_empty() {
            f.write_str(&self.code)
        } else {
            write!(f, "{}: {}", self.code, self.message)
        }
    }
}

/// The client shared by the AWS stores.
pub(crate) struct Http {
    agent: ureq::Agent,
    max_attempts: u32,
    deadline: Duration,
    backoff: Duration,
}

impl Http {
    pub(crate) fn new(s: &Settings) -> Self {
        Self::with_limits(s.timeout, s.max_attempts, s.retry_deadline, None)
    }

    /// A client with a per-request timeout, an attempt count, a deadline for all attempts and,
    /// when given, its own TLS trust (the GCP and Azure stores share this client).
    pub(crate) fn with_limits(
        timeout: Duration,
        max_attempts: u32,
        deadline: Duration,
        tls: Option<ureq::tls::TlsConfig>,
    ) -> Self {
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .timeout_connect(Some(timeout.min(Duration::from_secs(10))))
            .user_agent(concat!("kustodian/", env!("CARGO_PKG_VERSION")))
            .max_idle_connections_per_host(16);
        if let Some(tls) = tls {
            config = config.tls_config(tls);
        }
        Http {
            agent: config.build().new_agent(),
            max_attempts: max_attempts.max(1),
            deadline,
            backoff: Duration::from_millis(100),
        }
    }

    /// Sends `call`, retrying what is worth retrying. `Err` is a transport failure after the
    /// last attempt, described without the request.
    pub(crate) fn send(&self, call: &Call) -> Result<Answer, String> {
        let started = Instant::now();
        let mut attempt = 1;
        loop {
            let result = self.once(call);
            let retry = match &result {
                Ok(a) => {
                    a.status == 429 || a.status >= 500 || a.error.as_ref().is_some_and(throttled)
                }
                Err(e) => transient(e),
            };
            let mut wait = self.backoff_for(attempt);
            if let Ok(Answer {
                retry_after: Some(after),
                ..
            }) = &result
            {
                wait = wait.max((*after).min(MAX_RETRY_AFTER));
            }
            if retry && attempt < self.max_attempts && started.elapsed() + wait < self.deadline {
                std::thread::sleep(wait);
                attempt += 1;
                continue;
            }
            return result.map_err(|e| {
                let tries = if attempt > 1 {
                    format!(" (after {attempt} attempts)")
                } else {
                    String::new()
                };
                format!(
                    "cannot reach {}: {}{tries}",
                    origin(&call.url),
                    describe(&e)
                )
            });
        }
    }

    fn once(&self, call: &Call) -> Result<Answer, ureq::Error> {
        let mut url = call.url.clone();
        for (i, (k, v)) in call.query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(&format!("{}={}", sigv4::encode(k), sigv4::encode(v)));
        }
        let mut headers: Vec<(&str, String)> = call.headers.clone();
        if let Some((creds, service, region)) = call.sign {
            let host = host(&call.url);
            let mut to_sign: Vec<(&str, &str)> = vec![("host", host.as_str())];
            to_sign.extend(call.headers.iter().map(|(k, v)| (*k, v.as_str())));
            let query: Vec<(&str, &str)> =
                call.query.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let date = sigv4::amz_date(now);
            let key = sigv4::Key {
                access_key_id: &creds.access_key_id,
                secret_access_key: &creds.secret_access_key,
                session_token: creds.session_token.as_deref().map(|t| t.as_str()),
            };
            headers.extend(sigv4::sign(
                &key,
                &sigv4::Unsigned {
                    method: call.method,
                    path: path_of(&call.url),
                    query: &query,
                    headers: &to_sign,
                    body: &call.body,
                    region,
                    service: service.id(),
                    amz_date: &date,
                },
            ));
        }
        let response = if call.method == "GET" {
            let mut rb = self.agent.get(&url);
            for (k, v) in &headers {
                rb = rb.header(*k, v.as_str());
            }
            rb.call()
        } else {
            let mut rb = self.agent.post(&url);
            for (k, v) in &headers {
                rb = rb.header(*k, v.as_str());
            }
            rb.send(&call.body[..])
        };
        let mut response = response?;
        let status = response.status().as_u16();
        let header_code = response
            .headers()
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(':').next().unwrap_or("").to_string());
        let retry_after = crate::answer::retry_after_secs(&response).map(Duration::from_secs);
        let bytes = crate::answer::read_body(&mut response, BODY_LIMIT)?;
        let body = Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned());
        let error = (!(200..300).contains(&status)).then(|| error_of(status, &body, header_code));
        Ok(Answer {
            status,
            body,
            error,
            retry_after,
        })
    }

    /// "Full jitter": a random wait up to 100 ms, 200 ms, 400 ms, ... (at most 5 s).
    fn backoff_for(&self, attempt: u32) -> Duration {
        let cap = self
            .backoff
            .saturating_mul(1 << attempt.saturating_sub(1).min(6))
            .min(Duration::from_secs(5));
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(attempt);
        let r = h.finish() % 1000;
        cap.mul_f64((r as f64 + 1.0) / 1000.0)
    }
}

/// Throttling codes of the JSON and query protocols.
fn throttled(e: &AwsError) -> bool {
    matches!(
        e.code.as_str(),
        "ThrottlingException"
            | "Throttling"
            | "TooManyRequestsException"
            | "RequestLimitExceeded"
            | "ProvisionedThroughputExceededException"
            | "RequestThrottled"
            | "RequestThrottledException"
    )
}

/// The error in an AWS answer: JSON `__type`/`message`, XML `<Code>`/`<Message>`, or the
/// `x-amzn-ErrorType` header; the status when there is nothing else.
fn error_of(status: u16, body: &str, header_code: Option<String>) -> AwsError {
    let json: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let field = |names: &[&str]| {
        json.as_ref().and_then(|j| {
            names
                .iter()
                .find_map(|n| j.get(*n).and_then(|v| v.as_str()).map(str::to_string))
        })
    };
    let code = header_code
        .filter(|c| !c.is_empty())
        .or_else(|| field(&["__type", "code", "Code"]))
        .or_else(|| xml_tag(body, "Code"))
        .map(|c| c.rsplit('#').next().unwrap_or("").to_string())
        .unwrap_or_else(|| format!("HTTP {status}"));
    let message = field(&["message", "Message"])
        .or_else(|| xml_tag(body, "Message"))
        .unwrap_or_default();
    AwsError {
        code,
        message: shorten(message.trim(), MESSAGE_LIMIT),
    }
}

/// The text of the first `<tag>...</tag>`, XML entities decoded.
pub(crate) fn xml_tag(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&format!("</{tag}>"))?;
    Some(
        xml[start..end]
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

fn transient(e: &ureq::Error) -> bool {
    match e {
        ureq::Error::Io(io) => io.kind() != std::io::ErrorKind::InvalidData,
        _ => matches!(
            e,
            ureq::Error::Timeout(_) | ureq::Error::ConnectionFailed | ureq::Error::BodyStalled
        ),
    }
}

fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            "connection refused".into()
        }
        ureq::Error::Io(io) => match (io.kind(), io.get_ref()) {
            // rustls reports certificate and handshake failures inside InvalidData.
            (std::io::ErrorKind::InvalidData, Some(inner)) => {
                shorten(&format!("TLS: {inner}"), MESSAGE_LIMIT)
            }
            (k, _) => k.to_string(),
        },
        ureq::Error::Timeout(t) => format!("timed out ({t})"),
        ureq::Error::HostNotFound => "host not found; check the region and AWS_ENDPOINT_URL".into(),
        other => shorten(&other.to_string(), MESSAGE_LIMIT),
    }
}

/// `https://host:port` of a URL: never a path or query (they may name a secret), nor a user
/// name and password.
fn origin(url: &str) -> String {
    let scheme_end = url.find("://").map(|i| i + 3).unwrap_or(0);
    let end = url[scheme_end..]
        .find(['/', '?'])
        .map(|i| scheme_end + i)
        .unwrap_or(url.len());
    let authority = &url[scheme_end..end];
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{}{host}", &url[..scheme_end])
}

/// The `Host` header ureq sends for a URL: the authority without a default port.
fn host(url: &str) -> String {
    let o = origin(url);
    let https = o.starts_with("https://");
    let h = o.split("://").nth(1).unwrap_or("");
    match (https, h.rsplit_once(':')) {
        (true, Some((name, "443"))) | (false, Some((name, "80"))) => name.to_string(),
        _ => h.to_string(),
    }
}

fn path_of(url: &str) -> &str {
    let scheme_end = url.find("://").map(|i| i + 3).unwrap_or(0);
    let rest = &url[scheme_end..];
    let p = rest.find(['/', '?']).map_or("", |i| &rest[i..]);
    let p = p.split('?').next().unwrap_or("");
    if p.is_empty() {
        "/"
    } else {
        p
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_shapes() {
        let e = error_of(
            400,
            r#"{"__type":"com.amazonaws.secretsmanager#ResourceNotFoundException","message":"Secrets Manager can't find the specified secret."}"#,
            None,
        );
        assert_eq!(e.code, "ResourceNotFoundException");
        assert!(e.message.starts_with("Secrets Manager can't"));
        let e = error_of(
            403,
            "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not &amp; allowed</Message></Error></ErrorResponse>",
            None,
        );
        assert_eq!(
            (e.code.as_str(), e.message.as_str()),
            ("AccessDenied", "not & allowed")
        );
        let e = error_of(429, "", Some("ThrottlingException".into()));
        assert!(throttled(&e));
        assert_eq!(error_of(503, "", None).code, "HTTP 503");
    }

    #[test]
    fn backoff_is_jittered_below_a_doubling_cap() {
        let c = crate::Config::from_vars(std::path::Path::new("/"), std::path::Path::new("/"), []);
        let http = Http::new(&Settings::from_config(&c).unwrap());
        for (attempt, cap_ms) in [(1, 100), (2, 200), (3, 400), (30, 5000)] {
            let waits: Vec<Duration> = (0..20).map(|_| http.backoff_for(attempt)).collect();
            assert!(waits
                .iter()
                .all(|w| *w > Duration::ZERO && *w <= Duration::from_millis(cap_ms)));
            assert!(waits.iter().any(|w| *w != waits[0]), "no jitter: {waits:?}");
        }
    }

    #[test]
    fn urls() {
        assert_eq!(
            host("https://ssm.eu-west-1.amazonaws.com"),
            "ssm.eu-west-1.amazonaws.com"
        );
        assert_eq!(host("https://h:443/x"), "h");
        assert_eq!(host("http://127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(path_of("http://127.0.0.1:5000"), "/");
        assert_eq!(path_of("http://h?x=1"), "/");
        assert_eq!(path_of("https://u:p@h/v1/c"), "/v1/c");
        assert_eq!(path_of("http://127.0.0.1:5000/v1/creds?x=1"), "/v1/creds");
        assert_eq!(origin("http://h:1/secret/name"), "http://h:1");
        assert_eq!(origin("https://u:canary-pw@h/x"), "https://h");
    }
}
