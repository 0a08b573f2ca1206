//! Values from the environment kustodian runs in: `ref+env://NAME` (and `ref+envsubst://$NAME`,
//! `${NAME}`).
//!
//! Only `KUSTODIAN_SECRET_*` variables can be read: `NAME` is looked up as
//! `KUSTODIAN_SECRET_NAME` (unless it already carries the prefix), so a manifest in Git cannot
//! pull other variables such as `VAULT_TOKEN`, `SOPS_AGE_KEY` or `AWS_*` out of the Argo CD
//! sidecar, whatever the spelling. The operator's variable wins over an Application's
//! `ARGOCD_ENV_KUSTODIAN_SECRET_*` of the same name ([`Config::secret_var`]).

use crate::{Config, Request, SecretValue, Store, StoreError};

/// The prefix every readable variable carries.
pub const PREFIX: &str = "KUSTODIAN_SECRET_";

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

/// `NAME`, `$NAME`, `${NAME}` -> `KUSTODIAN_SECRET_NAME`; anything that is not a plain
/// variable name is refused.
fn variable(path: &str) -> Result<String, StoreError> {
    let p = path.trim();
    let name = match p.strip_prefix("${") {
        Some(rest) => rest.strip_suffix('}').unwrap_or("\u{0}"),
        None => p.strip_prefix('$').unwrap_or(p),
    };
    let plain = !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit();
    if !plain {
        return Err(StoreError::Invalid {
            path: path.to_string(),
            reason: format!(
                "not a variable name; write ref+env://NAME for the variable {PREFIX}NAME"
            ),
        });
    }
    Ok(if name.starts_with(PREFIX) {
        name.to_string()
    } else {
        format!("{PREFIX}{name}")
    })
}

impl Store for Env {
    fn name(&self) -> &str {
        "env"
    }

    fn fetch(&self, req: &Request) -> Result<SecretValue, StoreError> {
        let name = variable(&req.path)?;
        match self.config.secret_var(&name) {
            Some(v) => Ok(SecretValue::new(serde_json::Value::String(v.to_string()))),
            None => Err(StoreError::NotFound {
                store: "env".into(),
                path: name,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn only_prefixed_variables_whatever_the_spelling() {
        let c = Config::from_vars(
            Path::new("/"),
            Path::new("/"),
            [
                ("VAULT_TOKEN", "canary-vault-token"),
                ("SOPS_AGE_KEY", "canary-age-key"),
                ("AWS_SECRET_ACCESS_KEY", "canary-aws"),
                ("ARGOCD_ENV_VAULT_TOKEN", "canary-app-token"),
                ("KUSTODIAN_SECRET_DB", "db-value"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let env = Env::new(&c);
        let get = |p: &str| env.fetch(&Request::new(p)).map(|v| format!("{v:?}"));
        assert!(get("DB").is_ok());
        assert!(get("$DB").is_ok());
        assert!(get("${KUSTODIAN_SECRET_DB}").is_ok());
        for p in [
            "VAULT_TOKEN",
            "$VAULT_TOKEN",
            "${VAULT_TOKEN}",
            "vault_token",
            "ARGOCD_ENV_VAULT_TOKEN",
            "SOPS_AGE_KEY",
            "AWS_SECRET_ACCESS_KEY",
            "${VAULT_TOKEN:-x}",
            "../VAULT_TOKEN",
            "KUSTODIAN_SECRET_../../VAULT_TOKEN",
        ] {
            let e = get(p).unwrap_err();
            assert!(!e.to_string().contains("canary"), "{p}: {e}");
        }
    }
}
