//! Which store serves which reference, from the environment.
//!
//! `<path:...>` placeholders go to the store named by `KUSTODIAN_STORE` or argocd-vault-plugin's
//! `AVP_TYPE` (`sops` when neither is set); vals URIs go to the store of their scheme. Every
//! variable may also come as its `ARGOCD_ENV_` twin, which is how Argo CD passes an
//! Application's plugin environment to a config-management plugin.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::{echo, env, sops_files, Store, StoreError};

/// Everything a store needs to know about where it runs.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// The repository root; file references must stay inside it.
    pub root: PathBuf,
    /// The directory being rendered; relative file references start here.
    pub base: PathBuf,
    vars: BTreeMap<String, String>,
}

impl Config {
    /// A configuration from the process environment.
    pub fn from_process_env(root: &Path, base: &Path) -> Self {
        Self::from_vars(root, base, std::env::vars())
    }

    /// A configuration from explicit variables (tests, plugin parameters).
    pub fn from_vars(
        root: &Path,
        base: &Path,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Self {
        Config {
            root: root.to_path_buf(),
            base: base.to_path_buf(),
            vars: vars.into_iter().collect(),
        }
    }

    /// A variable, or its `ARGOCD_ENV_` twin. Empty values count as unset.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .or_else(|| self.vars.get(&format!("ARGOCD_ENV_{name}")))
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The first of several variable names that is set.
    pub fn var_any(&self, names: &[&str]) -> Option<&str> {
        names.iter().find_map(|n| self.var(n))
    }

    /// The name of the store for `<path:...>` placeholders.
    pub fn placeholder_store(&self) -> String {
        let t = self
            .var_any(&["KUSTODIAN_STORE", "AVP_TYPE"])
            .unwrap_or("sops")
            .to_ascii_lowercase();
        match t.as_str() {
            "openbao" => "vault".to_string(),
            "awssecretsmanager" | "awssecrets" | "awssm" => "aws".to_string(),
            _ => t,
        }
    }
}

/// A function that builds a store of one kind from the configuration.
pub type StoreFactory = fn(&Config) -> Result<Arc<dyn Store>, StoreError>;

/// The stores of one render, built lazily: a store that no reference uses is never built, so
/// a render without Vault references never logs in to Vault.
pub struct Stores {
    config: Config,
    factories: HashMap<String, StoreFactory>,
    built: std::sync::Mutex<HashMap<String, Arc<dyn Store>>>,
}

impl Stores {
    /// The built-in stores for this configuration.
    pub fn new(config: Config) -> Self {
        let mut s = Stores {
            config,
            factories: HashMap::new(),
            built: Default::default(),
        };
        s.register("sops", |c| Ok(Arc::new(sops_files::SopsFiles::new(c))));
        s.register("echo", |_| Ok(Arc::new(echo::Echo)));
        s.register("env", |c| Ok(Arc::new(env::Env::new(c))));
        s.register("vault", crate::vault::Vault::factory);
        s.register("aws", crate::aws::SecretsManager::factory);
        s.register("awsssm", crate::aws::Ssm::factory);
        s
    }

    /// Adds (or replaces) the factory for a store name.
    pub fn register(&mut self, name: &str, f: StoreFactory) {
        self.factories.insert(name.to_string(), f);
    }

    /// The configuration the stores were made from.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The store name for a vals scheme (`vault` for `ref+vault://`, ...).
    pub fn scheme_store(scheme: &str) -> &str {
        match scheme {
            "openbao" => "vault",
            "awssecrets" | "awssm" | "aws" => "aws",
            "envsubst" => "env",
            other => other,
        }
    }

    /// The store with this name, built on first use.
    pub fn get(&self, name: &str) -> Result<Arc<dyn Store>, StoreError> {
        let mut built = self.built.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = built.get(name) {
            return Ok(s.clone());
        }
        let f = self.factories.get(name).ok_or_else(|| {
            let mut known: Vec<_> = self.factories.keys().cloned().collect();
            known.sort();
            StoreError::Config(format!(
                "no store named {name:?}; known stores: {}",
                known.join(", ")
            ))
        })?;
        let s = f(&self.config)?;
        built.insert(name.to_string(), s.clone());
        Ok(s)
    }
}
