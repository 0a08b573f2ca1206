//! AWS Signature Version 4, written out from AWS's published algorithm: a canonical request
//! (method, path, sorted query, signed headers, payload hash), a string to sign scoped to
//! `date/region/service/aws4_request`, and an HMAC-SHA256 chain from the secret key.
//!
//! Only what kustodian sends is covered: header signing (no presigned URLs, no chunked
//! payloads, no SigV4a). Nothing here does I/O or keeps a key after the call.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

type HmacSha256 = Hmac<Sha256>;

/// What signs a request: the key pair and, for temporary credentials, the session token.
pub(crate) struct Key<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub session_token: Option<&'a str>,
}

/// One request to sign. Header names may be in any case; values are trimmed.
pub(crate) struct Unsigned<'a> {
    pub method: &'a str,
    /// The URI path, already percent-encoded (`/` for the services kustodian calls).
    pub path: &'a str,
    /// Query pairs, not yet encoded.
    pub query: &'a [(&'a str, &'a str)],
    /// Headers to sign; must include `host`.
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
    pub region: &'a str,
    pub service: &'a str,
    /// `YYYYMMDD'T'HHMMSS'Z'`.
    pub amz_date: &'a str,
}

/// The headers to add: `x-amz-date`, `x-amz-security-token` (with temporary credentials),
/// `x-amz-content-sha256` is not needed by JSON/query services, and `authorization`.
pub(crate) fn sign(key: &Key, req: &Unsigned) -> Vec<(&'static str, String)> {
    let mut headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), collapse(v)))
        .collect();
    headers.push(("x-amz-date".into(), req.amz_date.to_string()));
    if let Some(t) = key.session_token {
        headers.push(("x-amz-security-token".into(), t.to_string()));
    }
    headers.sort();
    let signed: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
    let signed = signed.join(";");
    let canonical = canonical_request(req, &headers, &signed);
    let date = &req.amz_date[..8.min(req.amz_date.len())];
    let scope = format!("{date}/{}/{}/aws4_request", req.region, req.service);
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{scope}\n{}",
        req.amz_date,
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let k = signing_key(key.secret_access_key, date, req.region, req.service);
    let signature = hex::encode(hmac(&k[..], to_sign.as_bytes()));
    let mut out = vec![("x-amz-date", req.amz_date.to_string())];
    if let Some(t) = key.session_token {
        out.push(("x-amz-security-token", t.to_string()));
    }
    out.push((
        "authorization",
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={signature}",
            key.access_key_id
        ),
    ));
    out
}

fn canonical_request(req: &Unsigned, headers: &[(String, String)], signed: &str) -> String {
    let mut query: Vec<(String, String)> = req
        .query
        .iter()
        .map(|(k, v)| (encode(k), encode(v)))
        .collect();
    query.sort();
    let query: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut out = format!("{}\n{}\n{}\n", req.method, req.path, query.join("&"));
    for (k, v) in headers {
        out.push_str(&format!("{k}:{v}\n"));
    }
    out.push_str(&format!(
        "\n{signed}\n{}",
        hex::encode(Sha256::digest(req.body))
    ));
    out
}

/// `kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Zeroizing<Vec<u8>> {
    let start = Zeroizing::new(format!("AWS4{secret}"));
    let mut k = Zeroizing::new(hmac(start.as_bytes(), date.as_bytes()));
    for part in [region, service, "aws4_request"] {
        k = Zeroizing::new(hmac(&k, part.as_bytes()));
    }
    k
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// Trims a header value and folds runs of spaces into one, as the canonical form wants.
fn collapse(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// SigV4's URI encoding: every byte but `A-Za-z0-9-_.~` as `%XX`, upper-case hex (the same
/// RFC 3986 rule the Vault store uses for path segments).
pub(crate) fn encode(s: &str) -> String {
    crate::http::encode_segment(s)
}

/// The `x-amz-date` form of a Unix time: `20150830T123600Z`.
pub(crate) fn amz_date(unix_secs: u64) -> String {
    let days = (unix_secs / 86_400) as i64;
    let rem = unix_secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: Key = Key {
        access_key_id: "AKIDEXAMPLE",
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        session_token: None,
    };

    /// The derived-key example of AWS's "Examples of how to derive a signing key" page.
    #[test]
    fn signing_key_matches_the_documented_example() {
        let k = signing_key(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "20120215",
            "us-east-1",
            "iam",
        );
        assert_eq!(
            hex::encode(&k[..]),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
    }

    /// `get-vanilla` and `get-vanilla-query-order-key-case` of AWS's SigV4 test suite.
    #[test]
    fn signatures_match_the_sigv4_test_suite() {
        let sig = |query: &[(&str, &str)]| {
            let out = sign(
                &KEY,
                &Unsigned {
                    method: "GET",
                    path: "/",
                    query,
                    headers: &[("Host", "example.amazonaws.com")],
                    body: b"",
                    region: "us-east-1",
                    service: "service",
                    amz_date: "20150830T123600Z",
                },
            );
            out.into_iter()
                .find(|(k, _)| *k == "authorization")
                .unwrap()
                .1
        };
        assert_eq!(
            sig(&[]),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
        assert_eq!(
            sig(&[("Param2", "value2"), ("Param1", "value1")]),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
        );
    }

    #[test]
    fn session_tokens_are_signed_and_sent() {
        let key = Key {
            session_token: Some("tok"),
            ..KEY
        };
        let out = sign(
            &key,
            &Unsigned {
                method: "POST",
                path: "/",
                query: &[],
                headers: &[("host", "h")],
                body: b"{}",
                region: "r",
                service: "s",
                amz_date: "20150830T123600Z",
            },
        );
        assert!(out.contains(&("x-amz-security-token", "tok".to_string())));
        assert!(out[2]
            .1
            .contains("SignedHeaders=host;x-amz-date;x-amz-security-token"));
    }

    #[test]
    fn dates_are_formatted_in_utc() {
        assert_eq!(amz_date(0), "19700101T000000Z");
        assert_eq!(amz_date(1_440_938_160), "20150830T123600Z");
        assert_eq!(amz_date(951_782_400), "20000229T000000Z");
    }
}
