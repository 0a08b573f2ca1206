//! What every store's HTTP client reads from an answer the same way: its `Retry-After` seconds
//! and its body, bounded and wiped when dropped. The clients (Vault, AWS and the clouds on its
//! client, 1Password and Kubernetes on `rest`) differ in signing, errors and retries, not here.

use std::io::Read as _;

use zeroize::Zeroizing;

/// The answer's `Retry-After` header as whole seconds, if it is one.
pub(crate) fn retry_after_secs(response: &ureq::http::Response<ureq::Body>) -> Option<u64> {
    response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
}

/// The answer's body, at most `limit` bytes (more is an error), in memory that is wiped when
/// dropped (a body may hold secret values or tokens).
pub(crate) fn read_body(
    response: &mut ureq::http::Response<ureq::Body>,
    limit: u64,
) -> Result<Zeroizing<Vec<u8>>, ureq::Error> {
    let mut bytes = Zeroizing::new(Vec::new());
    response
        .body_mut()
        .with_config()
        .limit(limit)
        .reader()
        .read_to_end(&mut bytes)
        .map_err(ureq::Error::Io)?;
    Ok(bytes)
}
