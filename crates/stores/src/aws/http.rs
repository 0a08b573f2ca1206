//! The AWS side of the shared HTTP client ([`crate::http`]), which the GCP and Azure stores
//! use too: requests signed with SigV4 (signed again on every attempt), throttling codes
//! (`ThrottlingException`, ...) retried like 429 and 5xx, a deadline per request.
//!
//! Answers keep their body in memory that is wiped on drop; error codes and messages are read
//! from AWS's JSON (`__type`, `message`) or XML (`<Code>`, `<Message>`) error shapes.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use zeroize::Zeroizing;

use super::credentials::Credentials;
use super::settings::{Service, Settings};
use super::sigv4;
use crate::http::{
    origin_text, redirect_text, shorten, transport_text, Client, Deadline, Exchange, Failure,
    Headers, Limits, Method, Request, Why,
};

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

/// The client shared by the AWS stores (and the GCP and Azure ones).
pub(crate) struct Http {
    client: Client,
}

impl Exchange for Call<'_> {
    /// The call's headers, and its SigV4 signature for `url` when it is signed.
    fn headers(&self, url: &str) -> Headers {
        let mut headers: Headers = self
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), Zeroizing::new(v.clone())))
            .collect();
        if let Some((creds, service, region)) = self.sign {
            let host = host(url);
            let mut to_sign: Vec<(&str, &str)> = vec![("host", host.as_str())];
            to_sign.extend(self.headers.iter().map(|(k, v)| (*k, v.as_str())));
            let query: Vec<(&str, &str)> =
                self.query.iter().map(|(k, v)| (*k, v.as_str())).collect();
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
            let signed = sigv4::sign(
                &key,
                &sigv4::Unsigned {
                    method: self.method,
                    path: path_of(url),
                    query: &query,
                    headers: &to_sign,
                    body: &self.body,
                    region,
                    service: service.id(),
                    amz_date: &date,
                },
            );
            headers.extend(
                signed
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), Zeroizing::new(v))),
            );
        }
        headers
    }

    /// Connection failures, but not an unknown host (a wrong region or endpoint).
    fn retry_failure(&self, e: &ureq::Error) -> bool {
        !matches!(e, ureq::Error::HostNotFound) && crate::http::transient(e)
    }

    /// 429, 5xx and AWS's throttling codes.
    fn retry(&self, a: &crate::http::Answer) -> bool {
        a.status == 429
            || a.status >= 500
            || (!(200..300).contains(&a.status) && throttled(&error_of(a)))
    }
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
        let limits = Limits {
            attempts: max_attempts,
            timeout,
            deadline: Deadline::PerRequest(deadline),
            backoff: Duration::from_millis(100),
            backoff_cap: Duration::from_secs(5),
            retry_after_cap: MAX_RETRY_AFTER,
            body_limit: BODY_LIMIT,
        };
        Http {
            client: Client::new(limits, tls),
        }
    }

    /// Sends `call`, retrying what is worth retrying. `Err` is a transport failure after the
    /// last attempt, described without the request.
    pub(crate) fn send(&self, call: &Call) -> Result<Answer, String> {
        let mut url = call.url.clone();
        for (i, (k, v)) in call.query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(&format!("{}={}", sigv4::encode(k), sigv4::encode(v)));
        }
        let request = Request {
            method: if call.method == "GET" {
                Method::Get
            } else {
                Method::Post
            },
            url,
            body: &call.body,
        };
        match self.client.send(&request, call) {
            Ok(a) => {
                let error = (!(200..300).contains(&a.status)).then(|| error_of(&a));
                Ok(Answer {
                    status: a.status,
                    body: a.text(),
                    error,
                })
            }
            Err(f) => Err(self.describe(&call.url, &f)),
        }
    }

    fn describe(&self, url: &str, f: &Failure) -> String {
        let here = origin_text(url);
        let why = match &f.why {
            Why::Transport(ureq::Error::HostNotFound) => {
                "host not found; check the region and AWS_ENDPOINT_URL".to_string()
            }
            Why::Transport(e) => transport_text(e),
            Why::OutOfTime => "no answer in time".to_string(),
            Why::Redirect(r) => {
                return redirect_text(&here, r, "signed requests and tokens", &|shown| {
                    format!("if {shown} is the service, configure its address instead")
                })
            }
        };
        format!("cannot reach {here}: {why}{}", f.after())
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
fn error_of(a: &crate::http::Answer) -> AwsError {
    let header_code = a
        .header("x-amzn-errortype")
        .map(|v| v.split(':').next().unwrap_or("").to_string());
    error_parts(a.status, &a.text(), header_code)
}

/// [`error_of`] for a status, a body and the `x-amzn-ErrorType` code.
fn error_parts(status: u16, body: &str, header_code: Option<String>) -> AwsError {
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

/// The `Host` header ureq sends for a URL: the authority without a default port.
fn host(url: &str) -> String {
    let o = origin_text(url);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_shapes() {
        let e = error_parts(
            400,
            r#"{"__type":"com.amazonaws.secretsmanager#ResourceNotFoundException","message":"Secrets Manager can't find the specified secret."}"#,
            None,
        );
        assert_eq!(e.code, "ResourceNotFoundException");
        assert!(e.message.starts_with("Secrets Manager can't"));
        let e = error_parts(
            403,
            "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not &amp; allowed</Message></Error></ErrorResponse>",
            None,
        );
        assert_eq!(
            (e.code.as_str(), e.message.as_str()),
            ("AccessDenied", "not & allowed")
        );
        let e = error_parts(429, "", Some("ThrottlingException".into()));
        assert!(throttled(&e));
        assert_eq!(error_parts(503, "", None).code, "HTTP 503");
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
    }
}
