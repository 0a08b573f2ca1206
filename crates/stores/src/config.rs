//! Which store serves which reference, and who may choose what.
//!
//! `<path:...>` placeholders go to the store named by `KUSTODIAN_STORE` or argocd-vault-plugin's
//! `AVP_TYPE` (`sops` when neither is set); vals URIs go to the store of their scheme.
//!
//! Variables come from two parties that do not trust each other the same way:
//! - **Operator variables**: the process environment minus every `ARGOCD_ENV_*` name (in Argo
//!   CD, the sidecar's own `env`/`envFrom`). Where to connect, how to log in, TLS, identities,
//!   cache and limits come only from here: [`Config::var`] reads nothing else.
//! - **Application variables**: `ARGOCD_ENV_*` (an Argo CD Application's plugin `env`), a
//!   plugin config's `env:`, a KRM `ConfigMap`'s `data`. Only the choices in [`APP_CHOICES`]
//!   are read, each validated; one naming an operator setting is ignored with a warning that
//!   names the variable, never its value. Choices that grant access (a Vault role, a path
//!   prefix) go through the operator's tenant mapping ([`crate::tenants`]).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::tenants::{self, TenantChoice};
use crate::{echo, env, sops_files, Request, SecretValue, Store, StoreError};

/// The application variables kustodian reads, and why each is harmless.
///
/// - `KUSTODIAN_STORE`, `AVP_TYPE`: which of the stores the operator configured serves
///   `<path:...>` placeholders.
/// - `KUSTODIAN_VAULT_KV_VERSION`, `AVP_KV_VERSION`: `1` or `2`, how Vault paths are read; the
///   operator's credentials and Vault's policies decide what may be read.
/// - `KUSTODIAN_SECRET_*`: values for `ref+env://`; the Application supplies them itself, and an
///   operator variable of the same name wins.
/// - `AVP_K8S_ROLE`, `AVP_PATH_PREFIX`: only through the operator's tenant mapping
///   (`KUSTODIAN_TENANTS_FILE`); refused otherwise.
/// - `KUSTODIAN_EMIT`, `KUSTODIAN_ESO_STORE`, `KUSTODIAN_ESO_STORE_KIND`: emit ExternalSecrets
///   instead of values, and the store they name; emitting reads nothing, and an operator
///   setting wins ([`Config::eso_var`]).
pub const APP_CHOICES: &[&str] = &[
    "KUSTODIAN_STORE",
    "AVP_TYPE",
    "KUSTODIAN_VAULT_KV_VERSION",
    "AVP_KV_VERSION",
    "KUSTODIAN_SECRET_*",
    "AVP_K8S_ROLE",
    "AVP_PATH_PREFIX",
    "KUSTODIAN_EMIT",
    "KUSTODIAN_ESO_STORE",
    "KUSTODIAN_ESO_STORE_KIND",
];

/// The prefix Argo CD puts before an Application's plugin environment.
pub const ARGOCD_ENV: &str = "ARGOCD_ENV_";

/// Prefixes (and whole names) of settings that belong to the operator.
const OPERATOR_PREFIXES: &[&str] = &[
    "KUSTODIAN_",
    "AVP_",
    "VAULT_",
    "BAO_",
    "SOPS_",
    "AGE_",
    "AWS_",
    "GOOGLE_",
    "AZURE_",
    "XDG_",
    "SSL_",
    "ARGOCD_",
    "OP_",
    "KUBE",
    "HOME",
    "PATH",
];

/// What kustodian does with one application variable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppVar {
    /// An allowed choice (see [`APP_CHOICES`]).
    Choice,
    /// Names an operator setting: ignored, with a warning.
    Ignored,
    /// Not kustodian's business (another tool's variable): ignored silently.
    Unrelated,
}

/// Classifies an application variable name (without its `ARGOCD_ENV_` prefix).
pub fn app_var(name: &str) -> AppVar {
    if APP_CHOICES.contains(&name)
        || name
            .strip_prefix("KUSTODIAN_SECRET_")
            .is_some_and(|n| !n.is_empty())
    {
        AppVar::Choice
    } else if OPERATOR_PREFIXES.iter().any(|p| name.starts_with(p)) {
        AppVar::Ignored
    } else {
        AppVar::Unrelated
    }
}

/// The warning for an ignored application variable: its name, never its value.
pub fn ignored_warning(name: &str, how: &str) -> String {
    format!(
        "{how} {name} was ignored: it names an operator setting, which only the sidecar's own environment may set; \
         an application may choose only {}",
        APP_CHOICES.join(", ")
    )
}

/// Everything a store needs to know about where it runs.
#[derive(Clone, Default)]
pub struct Config {
    /// The repository root; file references must stay inside it.
    pub root: PathBuf,
    /// The directory being rendered; relative file references start here.
    pub base: PathBuf,
    /// Operator variables.
    vars: BTreeMap<String, String>,
    /// Allowed application choices, by name (without `ARGOCD_ENV_`).
    app: BTreeMap<String, String>,
    warnings: Vec<String>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("root", &self.root)
            .field("base", &self.base)
            .field("operator_vars", &self.vars.keys().collect::<Vec<_>>())
            .field("app_vars", &self.app.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Config {
    /// A configuration from the process environment: `ARGOCD_ENV_*` names are application
    /// variables, every other name an operator variable. Warns on stderr (names only) about
    /// application variables that were ignored.
    pub fn from_process_env(root: &Path, base: &Path) -> Self {
        let c = Self::from_vars(root, base, process_vars());
        c.print_warnings();
        c
    }

    /// A configuration from explicit variables, split the way [`Config::from_process_env`]
    /// splits the environment: `ARGOCD_ENV_*` are application variables, the rest operator
    /// variables (tests and the CLI pass operator settings this way).
    pub fn from_vars(
        root: &Path,
        base: &Path,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Self {
        let mut c = Config {
            root: root.to_path_buf(),
            base: base.to_path_buf(),
            ..Config::default()
        };
        let mut app = Vec::new();
        for (k, v) in vars {
            match k.strip_prefix(ARGOCD_ENV) {
                Some(name) => app.push((name.to_string(), v)),
                None => {
                    c.vars.insert(k, v);
                }
            }
        }
        c.add_app_vars(app, Some("the Application's plugin env (ARGOCD_ENV_)"));
        c
    }

    /// Adds application variables from a plugin config's `env:` or a KRM `ConfigMap`'s
    /// `data`; later ones win. Names that are not allowed choices are dropped (the plugin
    /// config parser warns about them).
    pub fn with_app_vars(mut self, vars: impl IntoIterator<Item = (String, String)>) -> Self {
        self.add_app_vars(vars, None);
        self
    }

    /// Keeps the allowed choices; `warn_as` names the source in a warning about each ignored
    /// setting name (`None`: the caller has warned already).
    fn add_app_vars(
        &mut self,
        vars: impl IntoIterator<Item = (String, String)>,
        warn_as: Option<&str>,
    ) {
        for (k, v) in vars {
            match (app_var(&k), warn_as) {
                (AppVar::Choice, _) => {
                    self.app.insert(k, v);
                }
                (AppVar::Ignored, Some(how)) => self.warnings.push(ignored_warning(&k, how)),
                _ => {}
            }
        }
    }

    /// Application variables that were ignored, as warnings (names only).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Prints [`Config::warnings`] on stderr.
    pub fn print_warnings(&self) {
        for w in &self.warnings {
            eprintln!("kustodian: warning: {w}");
        }
    }

    /// An operator variable. Empty values count as unset. Never an application variable.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The first of several operator variable names that is set.
    pub fn var_any(&self, names: &[&str]) -> Option<&str> {
        names.iter().find_map(|n| self.var(n))
    }

    /// An allowed application choice (see [`APP_CHOICES`]). Empty values count as unset.
    fn app_choice(&self, names: &[&str]) -> Option<(&str, &str)> {
        names.iter().find_map(|n| {
            self.app
                .get_key_value(*n)
                .map(|(k, v)| (k.as_str(), v.trim()))
                .filter(|(_, v)| !v.is_empty())
        })
    }

    /// A `KUSTODIAN_SECRET_*` value for the env store: the operator's, else the Application's.
    pub fn secret_var(&self, name: &str) -> Option<&str> {
        if !name.starts_with("KUSTODIAN_SECRET_") {
            return None;
        }
        self.var(name).or_else(|| {
            self.app
                .get(name)
                .map(String::as_str)
                .filter(|v| !v.is_empty())
        })
    }

    /// An ExternalSecrets setting (`KUSTODIAN_EMIT`, `KUSTODIAN_ESO_STORE`,
    /// `KUSTODIAN_ESO_STORE_KIND`): the operator's, else the Application's.
    pub fn eso_var(&self, name: &str) -> Option<&str> {
        if !matches!(
            name,
            "KUSTODIAN_EMIT" | "KUSTODIAN_ESO_STORE" | "KUSTODIAN_ESO_STORE_KIND"
        ) {
            return None;
        }
        self.var(name)
            .or_else(|| self.app_choice(&[name]).map(|(_, v)| v))
    }

    /// The KV version an Application chose (`AVP_KV_VERSION`), validated by the vault store.
    pub fn app_kv_version(&self) -> Option<(&str, &str)> {
        self.app_choice(&["KUSTODIAN_VAULT_KV_VERSION", "AVP_KV_VERSION"])
    }

    /// The Vault role, path prefix and auth mount for this Application, from the operator's
    /// tenant mapping; an error when the Application asks for something its project is not
    /// given.
    /// The operator's own `AVP_PATH_PREFIX` applies when the mapping gives none.
    pub fn tenant(&self) -> Result<TenantChoice, StoreError> {
        let mut t = tenants::choose(
            self.var("KUSTODIAN_TENANTS_FILE").map(Path::new),
            self.var("ARGOCD_APP_PROJECT_NAME"),
            self.var("ARGOCD_APP_NAMESPACE"),
            self.app_choice(&["AVP_K8S_ROLE"]).map(|(_, v)| v),
            self.app_choice(&["AVP_PATH_PREFIX"]).map(|(_, v)| v),
        )?;
        if t.path_prefix.is_none() {
            t.path_prefix = self
                .var("AVP_PATH_PREFIX")
                .map(|p| p.trim().trim_matches('/').to_string())
                .filter(|p| !p.is_empty());
        }
        Ok(t)
    }

    fn operator_store(&self) -> String {
        normalize_store(
            self.var_any(&["KUSTODIAN_STORE", "AVP_TYPE"])
                .unwrap_or("sops"),
        )
    }

    /// The stores an Application may pick: `sops`, `env`, `echo`, the operator's own store,
    /// `vault` when the operator set `VAULT_ADDR` or `BAO_ADDR`, and `aws` when the operator set
    /// a region (`AWS_REGION` / `AWS_DEFAULT_REGION`), `gcp` when the operator set
    /// `GOOGLE_APPLICATION_CREDENTIALS` or `GCE_METADATA_HOST`, `azure` when the operator
    /// set `AZURE_CLIENT_ID` or `AZURE_FEDERATED_TOKEN_FILE`,
    /// `onepassword` when the operator set `OP_CONNECT_HOST`, and `k8s` when the operator set
    /// `KUSTODIAN_K8S_ALLOWED_NAMESPACES`.
    fn app_may_pick(&self, store: &str) -> bool {
        matches!(store, "sops" | "env" | "echo")
            || store == self.operator_store()
            || (store == "vault" && self.var_any(&["VAULT_ADDR", "BAO_ADDR"]).is_some())
            || (store == "aws"
                && self
                    .var_any(&["AWS_REGION", "AWS_DEFAULT_REGION"])
                    .is_some())
            || (store == "gcp"
                && self
                    .var_any(&["GOOGLE_APPLICATION_CREDENTIALS", "GCE_METADATA_HOST"])
                    .is_some())
            || (store == "azure"
                && self
                    .var_any(&["AZURE_CLIENT_ID", "AZURE_FEDERATED_TOKEN_FILE"])
                    .is_some())
            || (store == "onepassword" && self.var("OP_CONNECT_HOST").is_some())
            || (store == "k8s" && self.var("KUSTODIAN_K8S_ALLOWED_NAMESPACES").is_some())
    }

    /// The Application's store choice, when it made one: `Ok(name)` or why it is refused.
    fn app_store(&self) -> Option<Result<String, String>> {
        let (name, v) = self.app_choice(&["KUSTODIAN_STORE", "AVP_TYPE"])?;
        let store = normalize_store(v);
        Some(if !KNOWN_STORES.contains(&store.as_str()) {
            // A short store-like word is quoted back to help; anything else is not.
            let simple = store.len() <= 32
                && store
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            Err(format!(
                "the application variable {name} does not name a store{}; use one of {}",
                if simple {
                    format!(" ({store:?})")
                } else {
                    String::new()
                },
                KNOWN_STORES.join(", ")
            ))
        } else if !self.app_may_pick(&store) {
            Err(format!(
                "the application variable {name} asks for the {store} store, which the operator has not configured; \
                 ask the operator to set it up in the sidecar's environment (docs/security.md), or remove {name}"
            ))
        } else {
            Ok(store)
        })
    }

    /// Why this configuration cannot render, if an application choice is invalid.
    pub fn app_error(&self) -> Option<String> {
        if let Some(Err(e)) = self.app_store() {
            return Some(e);
        }
        if let Some((name, v)) = self.app_kv_version() {
            if !matches!(v, "1" | "2") {
                return Some(format!("the application variable {name} must be 1 or 2"));
            }
        }
        None
    }

    /// The name of the store for `<path:...>` placeholders: the Application's valid choice,
    /// else the operator's, else `sops`.
    pub fn placeholder_store(&self) -> String {
        match self.app_store() {
            Some(Ok(s)) => s,
            _ => self.operator_store(),
        }
    }
}

/// The process environment; a variable whose name or value is not UTF-8 is skipped (no
/// setting kustodian reads has such a name, and a panic is no answer to odd input).
pub fn process_vars() -> impl Iterator<Item = (String, String)> {
    std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
}

/// Store names an Application may write in `KUSTODIAN_STORE`/`AVP_TYPE`.
const KNOWN_STORES: &[&str] = &[
    "sops",
    "vault",
    "env",
    "echo",
    "aws",
    "gcp",
    "azure",
    "onepassword",
    "k8s",
];

/// argocd-vault-plugin's and vals' spellings of a store name.
fn normalize_store(v: &str) -> String {
    let t = v.trim().to_ascii_lowercase();
    match t.as_str() {
        "openbao" => "vault".to_string(),
        "awssecretsmanager" | "awssecrets" | "awssm" => "aws".to_string(),
        "gcpsecretmanager" | "gcpsecrets" | "gcpsm" => "gcp".to_string(),
        "azurekeyvault" | "azurekv" => "azure".to_string(),
        "1passwordconnect" | "1password" => "onepassword".to_string(),
        "kubernetessecret" | "kubernetes" => "k8s".to_string(),
        _ => t,
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
        s.register("vault", vault_factory);
        s.register("aws", crate::aws::SecretsManager::factory);
        s.register("awsssm", crate::aws::Ssm::factory);
        s.register("gcp", crate::gcp::GcpSecrets::factory);
        s.register("azure", crate::azure::KeyVault::factory);
        s.register("onepassword", crate::onepassword::OnePassword::factory);
        s.register("op", crate::onepassword::OnePassword::op_factory);
        s.register("k8s", crate::kubernetes::Kubernetes::factory);
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
            "gcpsecrets" | "gcpsm" => "gcp",
            "azurekeyvault" | "azurekv" => "azure",
            "kubernetes" => "k8s",
            "envsubst" => "env",
            other => other,
        }
    }

    /// The store with this name, built on first use. Fails for every store while an
    /// application choice is invalid, so a bad choice never falls back to a default.
    pub fn get(&self, name: &str) -> Result<Arc<dyn Store>, StoreError> {
        if let Some(e) = self.config.app_error() {
            return Err(StoreError::Config(e));
        }
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

/// The Vault store, behind the tenant's path prefix when there is one.
fn vault_factory(c: &Config) -> Result<Arc<dyn Store>, StoreError> {
    let prefix = c.tenant()?.path_prefix;
    let inner = crate::vault::Vault::factory(c)?;
    Ok(match prefix {
        Some(prefix) => Arc::new(Prefixed { prefix, inner }),
        None => inner,
    })
}

/// argocd-vault-plugin's `AVP_PATH_PREFIX`: the prefix goes before the path of every
/// `<path:...>` placeholder (vals URIs name their whole path and are left as written).
struct Prefixed {
    prefix: String,
    inner: Arc<dyn Store>,
}

impl Store for Prefixed {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn list(&self, path: &str) -> Result<Vec<String>, StoreError> {
        let path = path.trim_matches('/');
        if path.split('/').any(|s| s == ".." || s == ".") {
            return Err(StoreError::Invalid {
                path: path.to_string(),
                reason: "`.` and `..` are not allowed in a path under AVP_PATH_PREFIX".into(),
            });
        }
        self.inner.list(&format!("{}/{}", self.prefix, path))
    }

    fn fetch(&self, req: &Request) -> Result<SecretValue, StoreError> {
        if req.param("syntax") == Some("vals") {
            return self.inner.fetch(req);
        }
        let path = req.path.trim_matches('/');
        if path.split('/').any(|s| s == ".." || s == ".") {
            return Err(StoreError::Invalid {
                path: req.path.clone(),
                reason: "`.` and `..` are not allowed in a path under AVP_PATH_PREFIX; write the path below the prefix".into(),
            });
        }
        let mut req = req.clone();
        req.path = format!("{}/{}", self.prefix, path);
        self.inner.fetch(&req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Config {
        Config::from_vars(
            Path::new("/"),
            Path::new("/"),
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn argocd_env_twins_never_reach_operator_settings() {
        let c = config(&[
            ("BAO_ADDR", "https://operator"),
            ("ARGOCD_ENV_VAULT_ADDR", "http://attacker"),
            ("ARGOCD_ENV_SOPS_AGE_KEY_FILE", "/tmp/k"),
            ("ARGOCD_ENV_HOME", "/tmp"),
        ]);
        assert_eq!(c.var("VAULT_ADDR"), None);
        assert_eq!(
            c.var_any(&["VAULT_ADDR", "BAO_ADDR"]),
            Some("https://operator")
        );
        assert_eq!(c.var("SOPS_AGE_KEY_FILE"), None);
        assert_eq!(c.var("HOME"), None);
        assert_eq!(c.warnings().len(), 3);
        for w in c.warnings() {
            assert!(!w.contains("attacker") && !w.contains("/tmp"), "{w}");
        }
    }

    #[test]
    fn store_choice_is_limited_to_configured_stores() {
        let c = config(&[("ARGOCD_ENV_AVP_TYPE", "vault")]);
        assert_eq!(c.placeholder_store(), "sops");
        assert!(c.app_error().unwrap().contains("not configured"));
        let c = config(&[
            ("VAULT_ADDR", "https://v"),
            ("ARGOCD_ENV_AVP_TYPE", "vault"),
        ]);
        assert_eq!(c.placeholder_store(), "vault");
        assert!(c.app_error().is_none());
        let c = config(&[
            ("AVP_TYPE", "vault"),
            ("ARGOCD_ENV_KUSTODIAN_STORE", "sops"),
        ]);
        assert_eq!(c.placeholder_store(), "sops");
        let c = config(&[("ARGOCD_ENV_KUSTODIAN_STORE", "gopher")]);
        let e = c.app_error().unwrap();
        assert!(
            e.contains("KUSTODIAN_STORE") && e.contains("\"gopher\""),
            "{e}"
        );
        let c = config(&[("ARGOCD_ENV_KUSTODIAN_STORE", "canary value/x")]);
        let e = c.app_error().unwrap();
        assert!(!e.contains("canary"), "{e}");
        let c = config(&[("ARGOCD_ENV_AVP_KV_VERSION", "3")]);
        assert!(c.app_error().unwrap().contains("1 or 2"));
    }

    #[test]
    fn secret_values_operator_first_then_application() {
        let c = config(&[
            ("KUSTODIAN_SECRET_A", "op"),
            ("ARGOCD_ENV_KUSTODIAN_SECRET_A", "app"),
            ("ARGOCD_ENV_KUSTODIAN_SECRET_B", "app-b"),
            ("VAULT_TOKEN", "t"),
        ]);
        assert_eq!(c.secret_var("KUSTODIAN_SECRET_A"), Some("op"));
        assert_eq!(c.secret_var("KUSTODIAN_SECRET_B"), Some("app-b"));
        assert_eq!(c.secret_var("VAULT_TOKEN"), None);
        let c = config(&[]).with_app_vars([("VAULT_ADDR".into(), "http://x".into())]);
        assert_eq!(c.var("VAULT_ADDR"), None);
        assert!(c.warnings().is_empty(), "the parser warns about env: keys");
    }

    #[test]
    fn debug_prints_names_only() {
        let c = config(&[("VAULT_TOKEN", "canary-debug-token")]);
        let d = format!("{c:?}");
        assert!(d.contains("VAULT_TOKEN") && !d.contains("canary"), "{d}");
    }
}
