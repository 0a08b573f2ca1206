//! The OAuth 2.0 pieces the GCP and Azure stores share: access tokens and their disk cache
//! (the Vault store's hardened 0600 cache slots), RS256 JWT assertions signed with `ring`,
//! form posts to a token endpoint over the AWS stores' HTTP client (one deadline, jittered
//! retries, `Retry-After`), and the rule that a bearer token or credential only travels over
//! https (plain http only to a loopback address: emulators and tests).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use zeroize::Zeroizing;

use crate::aws::http::{Answer, Call, Http};
use crate::aws::Failure;
use crate::http::shorten;
use crate::vault::cache::{now_ms, Entry, Refused, Slot};
use crate::vault::files;

/// A token is renewed when less than this is left of its life.
const REFRESH_MS: u64 = 5 * 60 * 1000;
/// Largest credential file read (a service-account key is about 2 KiB).
pub(crate) const CREDENTIAL_LIMIT: u64 = 64 * 1024;

/// An access token and when it stops working.
#[derive(Clone)]
pub(crate) struct Token {
    pub value: Zeroizing<String>,
    pub expires_at_ms: Option<u64>,
}

impl Token {
    /// A token that lives `expires_in` seconds from now (an hour when the server said nothing).
    pub(crate) fn new(value: String, expires_in: Option<u64>) -> Token {
        Token {
            value: Zeroizing::new(value),
            expires_at_ms: Some(now_ms() + expires_in.unwrap_or(3600) * 1000),
        }
    }

    /// The `Authorization` header value.
    pub(crate) fn bearer(&self) -> String {
        format!("Bearer {}", self.value.as_str())
    }
}

/// Where a cloud's tokens are cached: `<kustodian cache>/<name>` (off with `off_var=off`).
pub(crate) fn cache_dir(c: &crate::Config, name: &str, off_var: &str) -> Option<PathBuf> {
    let off = c.var(off_var).is_some_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "0" | "off" | "false" | "no"
        )
    });
    if off {
        return None;
    }
    Some(crate::aws::settings::cache_root(c)?.join(name))
}

/// The cached token under `parts`, or `fetch`'s, written to the cache (mode 0600). `what`
/// names the cache in a warning when it cannot be used (its path and why, never a token).
pub(crate) fn cached(
    dir: Option<&Path>,
    parts: &[&str],
    what: &str,
    fetch: impl FnOnce() -> Result<Token, Failure>,
) -> Result<Token, Failure> {
    let Some(dir) = dir else {
        return fetch();
    };
    let slot = Slot::new(dir, parts);
    let mut fetch = Some(fetch);
    let mut fresh = || {
        fetch.take().map_or_else(
            || Err(Failure::Auth("internal: token fetched twice".into())),
            |f| f(),
        )
    };
    let outcome = slot.locked(|slot| -> Result<Result<Token, Failure>, Refused> {
        if let Some(e) = slot.read()? {
            if e.expires_at_ms.is_some_and(|at| at > now_ms() + REFRESH_MS) {
                return Ok(Ok(Token {
                    value: Zeroizing::new(e.token.clone()),
                    expires_at_ms: e.expires_at_ms,
                }));
            }
        }
        let t = match fresh() {
            Ok(t) => t,
            Err(e) => return Ok(Err(e)),
        };
        let entry = Entry {
            token: t.value.to_string(),
            expires_at_ms: t.expires_at_ms,
            lease_ms: t.expires_at_ms.map_or(0, |at| at.saturating_sub(now_ms())),
            renewable: false,
        };
        if slot.write(&entry).is_err() {
            slot.remove();
        }
        Ok(Ok(t))
    });
    match outcome.and_then(|r| r) {
        Ok(r) => r,
        Err(refused) => {
            eprintln!(
                "kustodian: warning: the {what} token cache cannot be used ({refused}); continuing without it"
            );
            fresh()
        }
    }
}

/// Removes the cached token under `parts` (the server refused it: revoked or from another
/// tenant), so that the next render logs in anew.
pub(crate) fn forget(dir: Option<&Path>, parts: &[&str]) {
    if let Some(dir) = dir {
        let _ = Slot::new(dir, parts).locked(|slot| slot.remove());
    }
}

/// A fingerprint of a credential for a cache key: never the credential itself.
pub(crate) fn fingerprint(secret: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(secret)[..16])
}

/// Reads a small credential file named by an operator variable.
pub(crate) fn read_file(path: &Path, var: &str) -> Result<Zeroizing<Vec<u8>>, Failure> {
    files::read_bounded(path, CREDENTIAL_LIMIT)
        .map_err(|e| Failure::Config(format!("{var} {}: {e}", path.display())))
}

/// Whether a bearer token or credential may be sent to this URL: https anywhere, plain http
/// only to a loopback address.
pub(crate) fn check_transport(url: &str, var: &str) -> Result<(), Failure> {
    if url.starts_with("https://") {
        return Ok(());
    }
    if let Some(rest) = url.strip_prefix("http://") {
        let authority = rest.split(['/', '?']).next().unwrap_or("");
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host = match host.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(""),
            None => host.rsplit_once(':').map_or(host, |(h, _)| h),
        };
        if host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
        {
            return Ok(());
        }
    }
    Err(Failure::Config(format!(
        "{var} must be an https:// URL (plain http only to a loopback address), so that no \
         credential or token crosses the network in clear; it is {}",
        origin(url)
    )))
}

pub(crate) use crate::http::origin_text as origin;

/// `application/x-www-form-urlencoded` of `fields`.
pub(crate) fn form(fields: &[(&str, &str)]) -> Zeroizing<Vec<u8>> {
    let mut out = String::new();
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(&crate::http::encode_segment(k));
        out.push('=');
        out.push_str(&crate::http::encode_segment(v));
    }
    Zeroizing::new(out.into_bytes())
}

/// Sends `call`; a transport failure is an [`Failure::Auth`] naming `what`.
pub(crate) fn send(http: &Http, call: &Call, what: &str) -> Result<Answer, Failure> {
    http.send(call)
        .map_err(|e| Failure::Auth(format!("{what}: {e}")))
}

/// A JSON answer's body, or an error naming `what` (never quoting the body).
pub(crate) fn json(a: &Answer, what: &str) -> Result<serde_json::Value, Failure> {
    serde_json::from_str(&a.body).map_err(|_| {
        Failure::Auth(format!(
            "{what} answered HTTP {} with something that is not JSON",
            a.status
        ))
    })
}

/// A text field of an error answer, cleaned up and shortened (OAuth `error`, `error_description`).
pub(crate) fn text_field(v: &serde_json::Value, pointer: &str) -> Option<String> {
    let t = v.pointer(pointer)?.as_str()?;
    let t: String = t
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    Some(shorten(t.trim(), 300))
}

/// A number that may come as JSON number or string (`expires_in`, `expires_on`).
pub(crate) fn number(v: &serde_json::Value, key: &str) -> Option<u64> {
    match v.get(key)? {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Base64url without padding (JWT segments).
pub(crate) fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The DER bytes of the first PEM block whose label is one of `labels`.
pub(crate) fn pem_block(pem: &str, labels: &[&str]) -> Option<(String, Zeroizing<Vec<u8>>)> {
    for label in labels {
        let begin = format!("-----BEGIN {label}-----");
        let end = format!("-----END {label}-----");
        let Some(start) = pem.find(&begin) else {
            continue;
        };
        let body = &pem[start + begin.len()..];
        let stop = body.find(&end)?;
        let text: Zeroizing<String> = Zeroizing::new(
            body[..stop]
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect(),
        );
        let der = base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .ok()?;
        return Some((label.to_string(), Zeroizing::new(der)));
    }
    None
}

/// An RSA private key for RS256.
pub(crate) struct SigningKey(ring::signature::RsaKeyPair);

impl SigningKey {
    /// The first `PRIVATE KEY` (PKCS#8) or `RSA PRIVATE KEY` (PKCS#1) in a PEM text; `Err`
    /// says what is wrong without quoting the key.
    pub(crate) fn from_pem(pem: &str) -> Result<SigningKey, String> {
        let (label, der) = pem_block(pem, &["PRIVATE KEY", "RSA PRIVATE KEY"])
            .ok_or("no PEM RSA private key (BEGIN PRIVATE KEY or BEGIN RSA PRIVATE KEY)")?;
        let key = if label == "PRIVATE KEY" {
            ring::signature::RsaKeyPair::from_pkcs8(&der)
        } else {
            ring::signature::RsaKeyPair::from_der(&der)
        };
        key.map(SigningKey)
            .map_err(|e| format!("the private key is not a usable RSA key ({e})"))
    }

    /// A compact JWS: `header.claims.signature`, signed RS256.
    pub(crate) fn jwt(
        &self,
        header: &serde_json::Value,
        claims: &serde_json::Value,
    ) -> Result<Zeroizing<String>, String> {
        let mut out = Zeroizing::new(format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        ));
        let mut sig = vec![0; self.0.public().modulus_len()];
        self.0
            .sign(
                &ring::signature::RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                out.as_bytes(),
                &mut sig,
            )
            .map_err(|_| "signing the assertion failed".to_string())?;
        out.push('.');
        out.push_str(&b64url(&sig));
        Ok(out)
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn now_s() -> u64 {
    now_ms() / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_travel_over_https_or_loopback_only() {
        assert!(check_transport("https://oauth2.googleapis.com/token", "x").is_ok());
        assert!(check_transport("http://127.0.0.1:9/token", "x").is_ok());
        assert!(check_transport("http://[::1]:9/token", "x").is_ok());
        assert!(check_transport("http://localhost/token", "x").is_ok());
        let e = check_transport("http://u:canary@evil.example/token", "TOKEN_URL").unwrap_err();
        let m = format!("{e:?}");
        assert!(m.contains("TOKEN_URL") && !m.contains("canary"), "{m}");
        assert!(check_transport("http://127.0.0.1.evil.example/", "x").is_err());
    }

    #[test]
    fn form_encoding() {
        assert_eq!(
            &form(&[("a", "b c"), ("d", "e&f=")])[..],
            b"a=b%20c&d=e%26f%3D"
        );
    }
}
