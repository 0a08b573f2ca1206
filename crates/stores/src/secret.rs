//! A secret document that redacts itself and is wiped on drop.

use std::fmt;

use zeroize::Zeroize;

/// A JSON-like secret document. `Debug` prints `[REDACTED]`; strings are zeroed on drop.
#[derive(Clone, PartialEq)]
pub struct SecretValue(serde_json::Value);

impl SecretValue {
    /// Wraps a document.
    pub fn new(v: serde_json::Value) -> Self {
        SecretValue(v)
    }

    /// Reads the document. Callers must not print what they read.
    pub fn expose(&self) -> &serde_json::Value {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue([REDACTED])")
    }
}

fn wipe(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) => s.zeroize(),
        serde_json::Value::Array(a) => a.iter_mut().for_each(wipe),
        serde_json::Value::Object(o) => o.values_mut().for_each(wipe),
        _ => {}
    }
}

impl Drop for SecretValue {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn debug_is_redacted() {
        let s = super::SecretValue::new(serde_json::json!({"k": "canary-value"}));
        assert!(!format!("{s:?}").contains("canary"));
    }
}
