//! Where secret values come from: the [`Store`] trait and its backends.
//!
//! A store answers one question: "what is the secret document at this path (and version)?".
//! The answer is a JSON-like tree ([`SecretValue`]); picking a key, following a JSON pointer and
//! applying modifiers is the renderer's job, so every backend stays small and the renderer can
//! fetch each distinct `(store, path, version)` exactly once.
//!
//! Backends, one module each: [`sops_files`] (SOPS/age files in the repository, the default),
//! [`env`] (process environment, for `ref+env://` and `ref+envsubst://`), [`echo`] (vals'
//! `ref+echo://`, for tests and plumbing). Remote stores (Vault/OpenBao, AWS, [`onepassword`]
//! (1Password Connect), [`kubernetes`] (Kubernetes Secrets)) add a module and a [`config`]
//! entry; they log in inside `fetch` and keep their token in the store.
//!
//! Who may set what: [`Config`] keeps the operator's variables (the process environment) apart
//! from an Application's (`ARGOCD_ENV_*`, plugin `env:`); stores read connection and login
//! settings with [`Config::var`], which sees only the operator's. [`tenants`] maps Argo CD
//! projects to the Vault roles and path prefixes their Applications may ask for.
//!
//! This crate does not parse references and does not touch manifests.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod aws;
pub mod azure;
pub mod config;
pub mod echo;
pub mod env;
pub mod gcp;
mod http;
pub mod kubernetes;
pub mod masterkeys;
pub mod onepassword;
mod rest;
mod secret;
pub mod sops_files;
pub mod tenants;
pub mod vault;

use std::fmt;

pub use config::{Config, Stores};
pub use secret::SecretValue;
pub use tenants::TenantChoice;

/// What to fetch: a path in a store and an optional version.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Request {
    /// The path as written in the reference (`kv/data/app`, `secrets/app.enc.yaml`).
    pub path: String,
    /// A version (`<path:p#k#3>`, `?version=3`), if one was asked for.
    pub version: Option<String>,
    /// Per-request options a backend understands (`kv-version`, `region`, ...), sorted by key.
    pub params: Vec<(String, String)>,
}

impl Request {
    /// A request for the latest version, without options.
    pub fn new(path: impl Into<String>) -> Self {
        Request {
            path: path.into(),
            version: None,
            params: Vec::new(),
        }
    }

    /// The value of one option.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path)?;
        if let Some(v) = &self.version {
            write!(f, " (version {v})")?;
        }
        Ok(())
    }
}

/// A source of secret documents.
///
/// Implementations must be safe to call from several threads at once; the renderer calls
/// `fetch` once per distinct request, in parallel, with bounded concurrency.
pub trait Store: Send + Sync {
    /// A short name for messages: `sops`, `vault`, `aws`, ...
    fn name(&self) -> &str;

    /// Fetches the secret document at `req.path`.
    ///
    /// Returns the whole document (usually a map of keys to values); [`StoreError::NotFound`]
    /// when there is none. Errors never carry secret values.
    fn fetch(&self, req: &Request) -> Result<SecretValue, StoreError>;

    /// The names directly under `path` (a folder ends with `/`), for stores that can list
    /// (Vault KV's `metadata/` paths). The default: this store cannot list. Names are not
    /// secrets; no value is read.
    fn list(&self, path: &str) -> Result<Vec<String>, StoreError> {
        Err(StoreError::Invalid {
            path: path.to_string(),
            reason: format!("the {} store cannot list secrets", self.name()),
        })
    }
}

/// Why a fetch failed. Messages name paths and statuses, never values or tokens.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The path (or version) does not exist.
    #[error("{path}: not found in the {store} store")]
    NotFound {
        /// Store name.
        store: String,
        /// Path asked for.
        path: String,
    },
    /// The store refused access.
    #[error("{path}: permission denied by the {store} store{}", detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Denied {
        /// Store name.
        store: String,
        /// Path asked for.
        path: String,
        /// What the store said (status code, policy name), no secret text.
        detail: Option<String>,
    },
    /// Logging in to the store failed.
    #[error("login to the {store} store failed: {reason}")]
    Auth {
        /// Store name.
        store: String,
        /// Why, without any token or credential.
        reason: String,
    },
    /// The request is not valid for this store (bad path, path outside the repository, ...).
    #[error("{path}: {reason}")]
    Invalid {
        /// Path asked for.
        path: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The store could not be reached or answered with an error.
    #[error("{path}: the {store} store failed: {reason}")]
    Backend {
        /// Store name.
        store: String,
        /// Path asked for.
        path: String,
        /// Status or transport error, no secret text.
        reason: String,
    },
    /// Configuration is missing or wrong.
    #[error("configuration: {0}")]
    Config(String),
    /// The whole store cannot be used (unreachable, the token is invalid or expired, no
    /// identity to decrypt with): every reference to it fails the same way.
    #[error("the {store} store cannot be used: {reason}")]
    Unavailable {
        /// Store name.
        store: String,
        /// Why, and how to fix it; no secret text.
        reason: String,
    },
}

impl StoreError {
    /// Whether the failure concerns the whole store rather than one path, so that a render
    /// reports it once with the number of references it affected: logins, configuration and
    /// [`StoreError::Unavailable`].
    pub fn is_store_wide(&self) -> bool {
        matches!(
            self,
            StoreError::Auth { .. } | StoreError::Config(_) | StoreError::Unavailable { .. }
        )
    }

    /// The store the error is about, when it names one.
    pub fn store(&self) -> Option<&str> {
        match self {
            StoreError::NotFound { store, .. }
            | StoreError::Denied { store, .. }
            | StoreError::Auth { store, .. }
            | StoreError::Backend { store, .. }
            | StoreError::Unavailable { store, .. } => Some(store),
            StoreError::Invalid { .. } | StoreError::Config(_) => None,
        }
    }
}
