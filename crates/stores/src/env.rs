//! Values from the environment kustodian runs in: `ref+env://NAME` (and `ref+envsubst://$NAME`).
//!
//! Only variables with the `KUSTODIAN_SECRET_` prefix (or the bare name when the render was
//! given that variable explicitly) can be read, so a manifest in Git cannot pull arbitrary
//! variables such as tokens out of the Argo CD sidecar.

use crate::{Config, Request, SecretValue, Store, StoreError};

/// The environment store.
pub struct Env {
    config: Config,
}

impl Env {
    /// An environment store over the configuration's variables.
    pub fn new(config: &Config) -> Self {
        Env {
            config: config.clone(),
        }
    }
}

impl Store for Env {
    fn name(&self) -> &str {
        "env"
    }

    fn fetch(&self, req: &Request) -> Result<SecretValue, StoreError> {
        let name = req
            .path
            .trim_start_matches('$')
            .trim_matches(|c| c == '{' || c == '}');
        let prefixed = if name.starts_with("KUSTODIAN_SECRET_") {
            name.to_string()
        } else {
            format!("KUSTODIAN_SECRET_{name}")
        };
        match self.config.var(&prefixed) {
            Some(v) => Ok(SecretValue::new(serde_json::Value::String(v.to_string()))),
            None => Err(StoreError::NotFound {
                store: "env".into(),
                path: prefixed,
            }),
        }
    }
}
