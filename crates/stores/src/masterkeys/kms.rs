//! AWS KMS master keys through the AWS stores' client: the operator's credential chain and
//! endpoint settings (`AWS_ENDPOINT_URL_KMS`, `AWS_ENDPOINT_URL`), SigV4, retries. The region
//! is the ARN's; the file's `aws_profile` is not used (credentials are the operator's), and
//! its `role` only when the operator allows it in `KUSTODIAN_AWS_ALLOWED_ROLE_ARNS`.

use base64::Engine as _;
use kustodian_sops::{KmsKey, Zeroizing};
use serde_json::{json, Map, Value};

use crate::aws::Aws;

fn region(arn: &str) -> Result<&str, String> {
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.as_slice() {
        ["arn", _, "kms", region, ..] if !region.is_empty() => Ok(region),
        _ => Err("not a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID)".into()),
    }
}

fn context(k: &KmsKey) -> Value {
    Value::Object(
        k.context
            .iter()
            .map(|(a, b)| (a.clone(), Value::String(b.clone())))
            .collect::<Map<_, _>>(),
    )
}

/// Encrypts a data key (or share); the base64 ciphertext blob.
pub(super) fn encrypt(aws: &Aws, k: &KmsKey, plaintext: &[u8]) -> Result<String, String> {
    let b64 = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(plaintext));
    let mut input = json!({ "KeyId": k.arn, "Plaintext": b64.as_str() });
    if !k.context.is_empty() {
        input["EncryptionContext"] = context(k);
    }
    let answer = aws.kms(region(&k.arn)?, k.role.as_deref(), "Encrypt", input, &k.arn)?;
    answer
        .expose()
        .get("CiphertextBlob")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| "KMS's answer has no CiphertextBlob".into())
}

/// Decrypts a stored ciphertext blob.
pub(super) fn decrypt(aws: &Aws, k: &KmsKey, enc: &str) -> Result<Zeroizing<Vec<u8>>, String> {
    let mut input = json!({ "KeyId": k.arn, "CiphertextBlob": enc.trim() });
    if !k.context.is_empty() {
        input["EncryptionContext"] = context(k);
    }
    let answer = aws.kms(region(&k.arn)?, k.role.as_deref(), "Decrypt", input, &k.arn)?;
    let b64 = answer
        .expose()
        .get("Plaintext")
        .and_then(Value::as_str)
        .ok_or("KMS's answer has no Plaintext")?;
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map(Zeroizing::new)
        .map_err(|_| "KMS's Plaintext is not base64".into())
}
