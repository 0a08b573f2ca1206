//! Wrapping the data key for age recipients, as sops does: for each recipient, the raw 32-byte
//! data key is encrypted with age to that recipient alone and ASCII-armored.

use std::io::{Read, Write};
use std::iter;

use age::armor::{ArmoredReader, ArmoredWriter, Format};
use age::x25519;
use zeroize::Zeroizing;

#[cfg(test)]
use crate::cipher::DataKey;
use crate::error::{Error, Result};

/// Parses an age X25519 recipient (`age1...`).
pub fn parse_recipient(s: &str) -> Result<x25519::Recipient> {
    s.trim().parse().map_err(|_| Error::BadRecipient {
        recipient: s.trim().to_string(),
    })
}

/// Encrypts the data key to one recipient; returns the armored age file.
#[cfg(test)]
pub(crate) fn wrap(key: &DataKey, recipient: &x25519::Recipient) -> Result<String> {
    wrap_bytes(key.bytes(), recipient)
}

/// Encrypts a data key or a Shamir share to one recipient; returns the armored age file.
pub(crate) fn wrap_bytes(plain: &[u8], recipient: &x25519::Recipient) -> Result<String> {
    let crypto = |e: &dyn std::fmt::Display| Error::Crypto(e.to_string());
    let enc = age::Encryptor::with_recipients(iter::once(recipient as &dyn age::Recipient))
        .map_err(|e| crypto(&e))?;
    let mut out = Vec::new();
    let armor = ArmoredWriter::wrap_output(&mut out, Format::AsciiArmor).map_err(|e| crypto(&e))?;
    let mut w = enc.wrap_output(armor).map_err(|e| crypto(&e))?;
    w.write_all(plain).map_err(|e| crypto(&e))?;
    w.finish()
        .and_then(|a| a.finish())
        .map_err(|e| crypto(&e))?;
    let mut s = String::from_utf8(out).map_err(|e| crypto(&e))?;
    if !s.ends_with('\n') {
        s.push('\n');
    }
    Ok(s)
}

/// Decrypts an armored age file holding a data key with any of `ids`.
#[cfg(test)]
pub(crate) fn unwrap(enc: &str, ids: &[&x25519::Identity]) -> Option<DataKey> {
    DataKey::from_bytes(&unwrap_bytes(enc, ids)?)
}

/// Decrypts an armored age file holding a data key or a Shamir share with any of `ids`.
pub(crate) fn unwrap_bytes(enc: &str, ids: &[&x25519::Identity]) -> Option<Zeroizing<Vec<u8>>> {
    if ids.is_empty() {
        return None;
    }
    let dec = age::Decryptor::new_buffered(ArmoredReader::new(enc.trim().as_bytes())).ok()?;
    let mut r = dec
        .decrypt(ids.iter().map(|i| *i as &dyn age::Identity))
        .ok()?;
    let mut buf = Zeroizing::new(Vec::with_capacity(32));
    r.read_to_end(&mut buf).ok()?;
    (buf.len() <= 64).then_some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_and_unwrap() {
        let id = x25519::Identity::generate();
        let other = x25519::Identity::generate();
        let key = DataKey::generate();
        let enc = wrap(&key, &id.to_public()).unwrap();
        assert!(
            enc.starts_with("-----BEGIN AGE ENCRYPTED FILE-----\n"),
            "{enc}"
        );
        let back = unwrap(&enc, &[&other, &id]).unwrap();
        assert_eq!(back.bytes(), key.bytes());
        assert!(unwrap(&enc, &[&other]).is_none());
        assert!(parse_recipient("age1nope").is_err());
        assert!(parse_recipient(&id.to_public().to_string()).is_ok());
    }
}
