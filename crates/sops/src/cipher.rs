//! One value: `ENC[AES256_GCM,data:<b64>,iv:<b64>,tag:<b64>,type:<t>]`.
//!
//! AES-256-GCM with a 32-byte IV; the additional data is the value's key path joined with `:`
//! plus a trailing `:` (or, for the MAC, the `lastmodified` string).

use std::fmt;

use aes_gcm::aead::generic_array::typenum::U32;
use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::aes::Aes256;
use aes_gcm::AesGcm;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use rand::RngCore;
use zeroize::Zeroizing;

type Aes256Gcm32 = AesGcm<Aes256, U32>;

const PREFIX: &str = "ENC[AES256_GCM,";
const TYPES: [&str; 7] = ["str", "int", "int64", "float", "bool", "bytes", "comment"];

/// A file's 32-byte data key. Zeroed on drop; `Debug` prints nothing of it.
#[derive(Clone)]
pub struct DataKey(Zeroizing<[u8; 32]>);

impl DataKey {
    /// A fresh random key.
    pub fn generate() -> DataKey {
        let mut k = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(&mut k[..]);
        DataKey(k)
    }

    /// A key from its 32 bytes (for tests and for keys unwrapped elsewhere).
    pub fn from_bytes(bytes: &[u8]) -> Option<DataKey> {
        let arr: [u8; 32] = bytes.try_into().ok()?;
        Some(DataKey(Zeroizing::new(arr)))
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn cipher(&self) -> Aes256Gcm32 {
        Aes256Gcm32::new(GenericArray::from_slice(&self.0[..]))
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

/// Whether `s` is a well-formed sops value: `ENC[AES256_GCM,data:...,iv:...,tag:...,type:...]`
/// with base64 fields and a known type. Cheap: no decoding, no allocation.
pub fn is_encrypted_value(s: &str) -> bool {
    split(s).is_some()
}

fn split(s: &str) -> Option<(&str, &str, &str, &str)> {
    let inner = s.strip_prefix(PREFIX)?.strip_suffix(']')?;
    let rest = inner.strip_prefix("data:")?;
    let (data, rest) = rest.split_once(",iv:")?;
    let (iv, rest) = rest.split_once(",tag:")?;
    let (tag, ty) = rest.split_once(",type:")?;
    let b64 = |f: &str| {
        f.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
    };
    // sops encrypts an empty string to an empty `data:` field.
    (b64(data) && !iv.is_empty() && b64(iv) && !tag.is_empty() && b64(tag) && TYPES.contains(&ty))
        .then_some((data, iv, tag, ty))
}

/// A parsed value, before decryption.
pub(crate) struct Sealed {
    data: Vec<u8>,
    pub(crate) iv: Vec<u8>,
    tag: Vec<u8>,
    pub(crate) ty: String,
}

pub(crate) fn parse(s: &str) -> Option<Sealed> {
    let (data, iv, tag, ty) = split(s)?;
    let sealed = Sealed {
        data: B64.decode(data).ok()?,
        iv: B64.decode(iv).ok()?,
        tag: B64.decode(tag).ok()?,
        ty: ty.to_string(),
    };
    (sealed.iv.len() == 32 && sealed.tag.len() == 16).then_some(sealed)
}

/// Authentication failed: wrong key, changed ciphertext, or wrong additional data.
#[derive(Debug)]
pub(crate) struct AuthFailed;

impl Sealed {
    pub(crate) fn open(&self, key: &DataKey, ad: &str) -> Result<Zeroizing<Vec<u8>>, AuthFailed> {
        let mut ct = Vec::with_capacity(self.data.len() + 16);
        ct.extend_from_slice(&self.data);
        ct.extend_from_slice(&self.tag);
        key.cipher()
            .decrypt(
                GenericArray::from_slice(&self.iv),
                Payload {
                    msg: &ct,
                    aad: ad.as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| AuthFailed)
    }
}

/// Encrypts `plaintext` as a value of type `ty`, with the given IV or a fresh random one.
pub(crate) fn seal(
    key: &DataKey,
    plaintext: &[u8],
    ty: &str,
    ad: &str,
    iv: Option<&[u8; 32]>,
) -> String {
    let iv = match iv {
        Some(iv) => *iv,
        None => {
            let mut iv = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut iv);
            iv
        }
    };
    let out = key
        .cipher()
        .encrypt(
            GenericArray::from_slice(&iv),
            Payload {
                msg: plaintext,
                aad: ad.as_bytes(),
            },
        )
        .expect("AES-GCM encryption of an in-memory buffer cannot fail");
    let (data, tag) = out.split_at(out.len() - 16);
    format!(
        "ENC[AES256_GCM,data:{},iv:{},tag:{},type:{ty}]",
        B64.encode(data),
        B64.encode(iv),
        B64.encode(tag)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open() {
        let key = DataKey::generate();
        let v = seal(&key, b"hunter2", "str", "a:b:", None);
        assert!(is_encrypted_value(&v), "{v}");
        let sealed = parse(&v).unwrap();
        assert_eq!(sealed.ty, "str");
        assert_eq!(&sealed.open(&key, "a:b:").unwrap()[..], b"hunter2");
        assert!(sealed.open(&key, "a:c:").is_err());
        assert!(sealed.open(&DataKey::generate(), "a:b:").is_err());
        assert!(format!("{key:?}").contains("redacted"));
    }

    #[test]
    fn well_formed_values() {
        let ok = "ENC[AES256_GCM,data:tQ1l,iv:o9MiMveNYO7T82yDab+4pAt17DO6B4wl8yGy3oFbDb8=,tag:0RjvUUtSQwaUc9SF3RSTZQ==,type:str]";
        assert!(is_encrypted_value(ok));
        // An empty string's ciphertext is empty.
        assert!(is_encrypted_value(
            "ENC[AES256_GCM,data:,iv:o9Mi,tag:0Rjv,type:str]"
        ));
        for bad in [
            "ENC[AES256_GCM,data:tQ1l,iv:o9Mi,tag:0Rjv,type:nope]",
            "ENC[AES256_GCM,data:tQ1l,iv:,tag:0Rjv,type:str]",
            "ENC[AES256_GCM,data:tQ1l,iv:o9Mi,tag:,type:str]",
            "ENC[AES256_GCM,data:t Q,iv:o9Mi,tag:0Rjv,type:str]",
            "ENC[AES256_GCM,data:tQ1l,iv:o9Mi,tag:0Rjv,type:str",
            "ENC[AES128,data:tQ1l,iv:o9Mi,tag:0Rjv,type:str]",
            "plain",
        ] {
            assert!(!is_encrypted_value(bad), "{bad}");
        }
    }
}
