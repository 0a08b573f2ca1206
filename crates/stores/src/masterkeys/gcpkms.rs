//! Google Cloud KMS master keys through the GCP store's credentials: Cloud KMS's REST
//! `POST {endpoint}/v1/{resource_id}:encrypt` with `{"plaintext": base64}` and `:decrypt` with
//! `{"ciphertext": base64}`, a cloud-platform token from [`GcpAuth`].
//!
//! The `enc` sops stores for a `gcp_kms` key is the base64 of KMS's ciphertext bytes, which is
//! exactly REST's `ciphertext` field: it is stored and sent back as it is.
//!
//! The endpoint (`https://cloudkms.googleapis.com`, or gcloud's
//! `CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDKMS`) and the credentials are the operator's; the
//! file's `resource_id` only chooses a key there, and must have the shape
//! `projects/P/locations/L/keyRings/R/cryptoKeys/K`.

use base64::Engine as _;
use kustodian_sops::Zeroizing;
use serde_json::{json, Value};

use crate::aws::http::Call;
use crate::gcp::auth::GcpAuth;
use crate::gcp::oauth;
use crate::http::shorten;
use crate::{Config, SecretValue};

const DEFAULT_ENDPOINT: &str = "https://cloudkms.googleapis.com";
pub(super) const ENDPOINT_VAR: &str = "CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDKMS";

/// The operator's Cloud KMS endpoint and Google credentials.
pub(super) struct GcpKms {
    endpoint: String,
    auth: GcpAuth,
}

impl GcpKms {
    /// The client for the operator's settings; a bad endpoint or credentials file is refused.
    pub(super) fn new(c: &Config) -> Result<GcpKms, String> {
        let endpoint = crate::gcp::endpoint_setting(c, ENDPOINT_VAR, DEFAULT_ENDPOINT)
            .map_err(|e| e.to_store_error("gcp_kms").to_string())?;
        let auth = GcpAuth::from_operator(c).map_err(|e| e.to_string())?;
        Ok(GcpKms { endpoint, auth })
    }

    /// `POST {endpoint}/v1/{resource_id}:{op}`; the JSON answer, or why the key could not be
    /// used (Google's status and what to grant, never the body's secrets).
    fn call(&self, resource_id: &str, op: &str, body: Value) -> Result<SecretValue, String> {
        let id = check_resource_id(resource_id)?;
        let token = self
            .auth
            .access_token()
            .map_err(|e| e.to_store_error("gcp_kms").to_string())?;
        let call = Call {
            method: "POST",
            url: format!("{}/v1/{id}:{op}", self.endpoint),
            query: Vec::new(),
            headers: vec![
                ("authorization", token.bearer()),
                ("content-type", "application/json".to_string()),
            ],
            body: Zeroizing::new(body.to_string().into_bytes()),
            sign: None,
        };
        let a = self.auth.http().send(&call).map_err(|reason| {
            format!("Cloud KMS: {reason}; check {ENDPOINT_VAR} and the network")
        })?;
        let v = SecretValue::new(serde_json::from_str(&a.body).map_err(|_| {
            format!(
                "Cloud KMS answered HTTP {} with something that is not JSON",
                a.status
            )
        })?);
        if (200..300).contains(&a.status) {
            return Ok(v);
        }
        let v = v.expose();
        if a.status == 401 {
            self.auth.forget();
        }
        let code =
            oauth::text_field(v, "/error/status").unwrap_or_else(|| format!("HTTP {}", a.status));
        let message = shorten(
            &oauth::text_field(v, "/error/message").unwrap_or_default(),
            200,
        );
        let who = self.auth.who();
        Err(match (a.status, code.as_str()) {
            (404, _) | (_, "NOT_FOUND") => {
                format!("Cloud KMS has no key {id} ({code}); check the resource id")
            }
            (403, _) | (_, "PERMISSION_DENIED") => {
                format!("{code}: grant {who} roles/cloudkms.cryptoKeyEncrypterDecrypter on {id}")
            }
            (401, _) | (_, "UNAUTHENTICATED") => format!(
                "Cloud KMS refused the token of {who} ({code}); the cached token was dropped, \
                 try again to log in anew"
            ),
            _ if message.is_empty() => format!("Cloud KMS refused {op} ({code})"),
            _ => format!("Cloud KMS refused {op} ({code}: {message})"),
        })
    }

    /// Encrypts a data key (or share); the base64 ciphertext sops stores as `enc`.
    pub(super) fn encrypt(&self, resource_id: &str, plaintext: &[u8]) -> Result<String, String> {
        let b64 = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(plaintext));
        let body = json!({ "plaintext": b64.as_str() });
        let answer = self.call(resource_id, "encrypt", body)?;
        answer
            .expose()
            .get("ciphertext")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .ok_or_else(|| "Cloud KMS's answer has no ciphertext".into())
    }

    /// Decrypts a stored `enc`.
    pub(super) fn decrypt(
        &self,
        resource_id: &str,
        enc: &str,
    ) -> Result<Zeroizing<Vec<u8>>, String> {
        let enc = enc.trim();
        if base64::engine::general_purpose::STANDARD
            .decode(enc)
            .is_err()
        {
            return Err("the enc of this gcp_kms entry is not base64 (the file is damaged)".into());
        }
        let answer = self.call(resource_id, "decrypt", json!({ "ciphertext": enc }))?;
        let b64 = answer
            .expose()
            .get("plaintext")
            .and_then(Value::as_str)
            .ok_or("Cloud KMS's answer has no plaintext")?;
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map(Zeroizing::new)
            .map_err(|_| "Cloud KMS's plaintext is not base64".into())
    }
}

/// The resource id, trimmed, when it is `projects/P/locations/L/keyRings/R/cryptoKeys/K` with
/// plain segments (letters, digits, `-`, `_`, `.`; never `.` or `..`), so that it cannot reach
/// another path of the API.
fn check_resource_id(id: &str) -> Result<&str, String> {
    let id = id.trim();
    let parts: Vec<&str> = id.split('/').collect();
    let plain = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    match parts.as_slice() {
        ["projects", p, "locations", l, "keyRings", r, "cryptoKeys", k]
            if [p, l, r, k].iter().all(|s| plain(s)) =>
        {
            Ok(id)
        }
        _ => Err(format!(
            "{:?} is not a Cloud KMS key: a resource id looks like \
             projects/PROJECT/locations/LOCATION/keyRings/RING/cryptoKeys/KEY",
            shorten(id, 200)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::check_resource_id;

    #[test]
    fn resource_ids_must_name_a_crypto_key() {
        let ok = "projects/p-1/locations/global/keyRings/ring_a/cryptoKeys/k.1";
        assert_eq!(check_resource_id(&format!(" {ok} ")), Ok(ok));
        for bad in [
            "projects/p/locations/global/keyRings/r",
            "projects/p/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1",
            "projects/../locations/global/keyRings/r/cryptoKeys/k",
            "projects/p/locations/global/keyRings/r/cryptoKeys/k?x=1",
            "projects/p/locations/g%2F/keyRings/r/cryptoKeys/k",
            "",
        ] {
            let e = check_resource_id(bad).unwrap_err();
            assert!(e.contains("projects/PROJECT/locations"), "{e}");
        }
    }
}
