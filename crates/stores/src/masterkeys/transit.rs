//! Vault/OpenBao transit master keys, through the Vault store (its address, TLS, login
//! methods, token cache and redaction): `POST {engine}/encrypt/{key}` with the data key in
//! base64, `POST {engine}/decrypt/{key}` with the stored `vault:v1:...` ciphertext.
//!
//! The operator's token goes only to the operator's `VAULT_ADDR`: a file whose
//! `vault_address` names another server is refused, naming the file.

use base64::Engine as _;
use kustodian_sops::{VaultKey, Zeroizing};
use serde_json::json;

use crate::vault::{encode_path, Vault};

fn same_server(a: &str, b: &str) -> bool {
    a.trim()
        .trim_end_matches('/')
        .eq_ignore_ascii_case(b.trim().trim_end_matches('/'))
}

fn call(
    vault: &Vault,
    key: &VaultKey,
    op: &str,
    body: serde_json::Value,
    file: &str,
) -> Result<serde_json::Value, String> {
    if !same_server(&key.address, vault.addr()) {
        return Err(format!(
            "{file} names the Vault server {}, but kustodian's VAULT_ADDR is {}; the Vault token \
             is only sent to VAULT_ADDR: set VAULT_ADDR to {} if you trust that server",
            key.address,
            vault.addr(),
            key.address
        ));
    }
    let path = format!(
        "{}/{op}/{}",
        encode_path(key.engine_path.trim_matches('/')),
        encode_path(&key.key_name)
    );
    let reply = vault.post(&path, &body).map_err(|e| e.to_string())?;
    match reply.status {
        200 => Ok(reply.body.expose().clone()),
        401 | 403 => Err(format!(
            "access denied ({}): the token's policies must allow update on {path}",
            reply.status_and_error()
        )),
        404 => Err(format!(
            "no transit key {} at {} ({})",
            key.key_name,
            key.engine_path,
            reply.status_and_error()
        )),
        _ => Err(format!("Vault refused {op} ({})", reply.status_and_error())),
    }
}

/// Encrypts a data key (or share) with the transit key; the `vault:v1:...` ciphertext.
pub(super) fn encrypt(
    vault: &Vault,
    key: &VaultKey,
    plaintext: &[u8],
    file: &str,
) -> Result<String, String> {
    let b64 = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(plaintext));
    let body = call(
        vault,
        key,
        "encrypt",
        json!({ "plaintext": b64.as_str() }),
        file,
    )?;
    body.pointer("/data/ciphertext")
        .and_then(|c| c.as_str())
        .map(str::to_string)
        .ok_or_else(|| "Vault's answer has no data.ciphertext".into())
}

/// Decrypts a stored ciphertext with the transit key.
pub(super) fn decrypt(
    vault: &Vault,
    key: &VaultKey,
    enc: &str,
    file: &str,
) -> Result<Zeroizing<Vec<u8>>, String> {
    let body = Zeroizing::new(
        call(
            vault,
            key,
            "decrypt",
            json!({ "ciphertext": enc.trim() }),
            file,
        )?
        .pointer("/data/plaintext")
        .and_then(|c| c.as_str())
        .map(str::to_string)
        .ok_or("Vault's answer has no data.plaintext")?,
    );
    base64::engine::general_purpose::STANDARD
        .decode(body.as_bytes())
        .map(Zeroizing::new)
        .map_err(|_| "Vault's plaintext is not base64".into())
}
