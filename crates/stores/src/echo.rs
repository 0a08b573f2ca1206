//! vals' `ref+echo://TEXT`: the path itself is the value. For tests and plumbing.

use crate::{Request, SecretValue, Store, StoreError};

/// The echo store.
pub struct Echo;

impl Store for Echo {
    fn name(&self) -> &str {
        "echo"
    }

    fn fetch(&self, req: &Request) -> Result<SecretValue, StoreError> {
        Ok(SecretValue::new(serde_json::Value::String(
            req.path.clone(),
        )))
    }
}
