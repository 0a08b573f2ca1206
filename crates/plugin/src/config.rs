//! Plugin configurations: the objects kustomize, kpt or a KSOPS user hands kustodian.
//!
//! - `kustodian.io/v1` `Resolver`: a transformer that resolves references in every resource.
//! - `kustodian.io/v1` `SecretGenerator`: a generator that builds one Secret from references
//!   (`data`, `stringData`) and SOPS files (`files`, `envs`), with kustomize's generator
//!   options (`behavior`, `options.disableNameSuffixHash`, labels, annotations, `immutable`).
//! - `viaduct.ai/v1` `ksops`: KSOPS's generator (`files`, `secretFrom`), read unchanged.
//! - A `v1` `ConfigMap` (what `kpt fn eval ... -- k=v` sends): a Resolver whose settings come
//!   from `data`.
//!
//! Every kind also takes `dir` (where relative store paths start, relative to the working
//! directory) and `env` (application choices such as `KUSTODIAN_STORE`; see
//! [`kustodian_stores::config::APP_CHOICES`]). `env` keys and ConfigMap keys that name operator
//! settings (`VAULT_ADDR`, `SOPS_AGE_KEY_FILE`, ...) are ignored with a warning: those come only
//! from the environment kustodian runs in. Parsing never echoes a value from `data`,
//! `stringData` or `env` in a message.

use kustodian_manifest::{Node, Object};
use kustodian_stores::config::{app_var, ignored_warning, AppVar, APP_CHOICES};

/// `apiVersion` of kustodian's own plugin kinds.
pub const API_VERSION: &str = "kustodian.io/v1";
/// `apiVersion` of KSOPS's generator.
pub const KSOPS_API_VERSION: &str = "viaduct.ai/v1";

/// Where a plugin runs against, and with which configuration variables.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// Where relative store paths start, relative to the working directory.
    pub dir: Option<String>,
    /// Application choices (allowed names only), on top of the process environment.
    pub env: Vec<(String, String)>,
    /// Most store requests in flight at once.
    pub concurrency: Option<usize>,
}

/// What kustodian was asked to do.
#[derive(Debug)]
pub enum PluginConfig {
    /// Resolve references in every resource.
    Resolver(Settings),
    /// Build a Secret.
    SecretGenerator(Box<SecretSpec>, Settings),
    /// Decrypt SOPS manifests and build Secrets, as KSOPS does.
    Ksops(KsopsSpec, Settings),
}

impl PluginConfig {
    /// The settings every kind carries.
    pub fn settings(&self) -> &Settings {
        match self {
            PluginConfig::Resolver(s)
            | PluginConfig::SecretGenerator(_, s)
            | PluginConfig::Ksops(_, s) => s,
        }
    }
}

/// kustomize's generator behaviour for a generated object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behavior {
    /// A new object (the default).
    Create,
    /// Merge into an object of the same name from a base.
    Merge,
    /// Replace an object of the same name from a base.
    Replace,
}

/// A file source: the key in the Secret and the SOPS file it comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSource {
    /// The key (the file's base name unless given as `KEY=path`).
    pub key: String,
    /// The path, relative to the working directory (or `dir`).
    pub path: String,
}

/// A `SecretGenerator`.
#[derive(Debug, Default)]
pub struct SecretSpec {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: Option<String>,
    /// `type` (`Opaque` when unset).
    pub secret_type: Option<String>,
    /// Labels from `metadata.labels` and `options.labels`.
    pub labels: Vec<(String, String)>,
    /// Annotations from `metadata.annotations` (without tool annotations) and `options.annotations`.
    pub annotations: Vec<(String, String)>,
    /// `behavior`.
    pub behavior: Option<Behavior>,
    /// Whether kustomize should add its content-hash suffix (off with `options.disableNameSuffixHash`).
    pub needs_hash: bool,
    /// `options.immutable`.
    pub immutable: bool,
    /// `data`: text with references, base64-encoded in the output.
    pub data: Vec<(String, String)>,
    /// `stringData`: text with references, kept as text.
    pub string_data: Vec<(String, String)>,
    /// `files`: decrypted file contents under a key each.
    pub files: Vec<FileSource>,
    /// `envs`: SOPS files whose top-level keys become the Secret's keys.
    pub envs: Vec<String>,
}

/// KSOPS's generator.
#[derive(Debug, Default)]
pub struct KsopsSpec {
    /// SOPS-encrypted manifests, output decrypted.
    pub files: Vec<String>,
    /// Secrets built from SOPS files.
    pub secret_from: Vec<KsopsSecret>,
}

/// One `secretFrom` entry of a KSOPS generator.
#[derive(Debug)]
pub struct KsopsSecret {
    /// `metadata`, copied as it is.
    pub metadata: Node,
    /// `type`.
    pub secret_type: Option<String>,
    /// `files`: decrypted text under `stringData`.
    pub files: Vec<FileSource>,
    /// `binaryFiles`: decrypted bytes, base64 under `data`.
    pub binary_files: Vec<FileSource>,
    /// `envs`: decrypted dotenv or flat YAML/JSON, under `stringData`.
    pub envs: Vec<String>,
}

/// A configuration that cannot be used. Never holds a value from the configuration.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{what}")]
#[diagnostic(code(kustodian::krm::config), help("{help}"))]
pub struct ConfigError {
    what: String,
    help: String,
}

impl ConfigError {
    fn new(what: impl Into<String>, help: impl Into<String>) -> Self {
        ConfigError {
            what: what.into(),
            help: help.into(),
        }
    }

    /// What is wrong.
    pub fn what(&self) -> &str {
        &self.what
    }

    /// How to fix it.
    pub fn help(&self) -> &str {
        &self.help
    }
}

/// A parsed configuration and what was odd about it.
#[derive(Debug)]
pub struct Parsed {
    /// The configuration.
    pub config: PluginConfig,
    /// Things that did not stop the run (unknown fields, credentials in Git).
    pub warnings: Vec<String>,
}

/// Whether `node` is one of kustodian's plugin configurations (or a KSOPS generator).
pub fn is_plugin_config(node: &Node) -> bool {
    let o = Object::new(node);
    match (o.api_version(), o.kind()) {
        (Some(API_VERSION), Some("Resolver" | "SecretGenerator")) => true,
        (Some(KSOPS_API_VERSION), Some(k)) => k.eq_ignore_ascii_case("ksops"),
        _ => false,
    }
}

/// Reads a plugin configuration object.
pub fn parse(node: &Node) -> Result<Parsed, ConfigError> {
    let o = Object::new(node);
    let what = format!(
        "{} {}",
        o.api_version().unwrap_or("(no apiVersion)"),
        o.kind().unwrap_or("(no kind)")
    );
    if node.as_map().is_none() {
        return Err(ConfigError::new(
            "the plugin configuration is not a mapping",
            KINDS_HELP,
        ));
    }
    let mut warnings = Vec::new();
    let config = match (o.api_version(), o.kind()) {
        (Some(API_VERSION), Some("Resolver")) => {
            unknown_fields(
                node,
                &[
                    "apiVersion",
                    "kind",
                    "metadata",
                    "dir",
                    "env",
                    "concurrency",
                ],
                "Resolver",
                &mut warnings,
            );
            PluginConfig::Resolver(settings(node, &mut warnings)?)
        }
        (Some(API_VERSION), Some("SecretGenerator")) => {
            unknown_fields(
                node,
                SECRET_GENERATOR_FIELDS,
                "SecretGenerator",
                &mut warnings,
            );
            PluginConfig::SecretGenerator(
                Box::new(secret_spec(node, &mut warnings)?),
                settings(node, &mut warnings)?,
            )
        }
        (Some(KSOPS_API_VERSION), Some(k)) if k.eq_ignore_ascii_case("ksops") => {
            unknown_fields(
                node,
                &[
                    "apiVersion",
                    "kind",
                    "metadata",
                    "files",
                    "secretFrom",
                    "dir",
                    "env",
                    "concurrency",
                ],
                "ksops",
                &mut warnings,
            );
            PluginConfig::Ksops(ksops_spec(node)?, settings(node, &mut warnings)?)
        }
        (Some("v1"), Some("ConfigMap")) => return from_config_map(node),
        _ => {
            return Err(ConfigError::new(
                format!("kustodian does not handle {what}"),
                KINDS_HELP,
            ))
        }
    };
    Ok(Parsed { config, warnings })
}

const KINDS_HELP: &str = "use apiVersion kustodian.io/v1 with kind Resolver or SecretGenerator, apiVersion viaduct.ai/v1 with kind ksops, or a ConfigMap of settings";

const SECRET_GENERATOR_FIELDS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "name",
    "namespace",
    "type",
    "behavior",
    "options",
    "data",
    "stringData",
    "files",
    "envs",
    "dir",
    "env",
    "concurrency",
];

/// Settings from a `ConfigMap` function config: `dir`, `concurrency`, and any key written like
/// an environment variable (`KUSTODIAN_STORE`, `SOPS_AGE_KEY_FILE`, `VAULT_ADDR`, ...).
pub fn from_config_map(node: &Node) -> Result<Parsed, ConfigError> {
    let mut warnings = Vec::new();
    let mut s = Settings::default();
    if let Some(data) = node.get("data") {
        let entries = data.as_map().ok_or_else(|| {
            ConfigError::new(
                "ConfigMap data is not a mapping",
                "write settings as `key: value` under data",
            )
        })?;
        for e in entries {
            let key = e.key.as_scalar().unwrap_or("").to_string();
            let value = e.value.as_scalar().unwrap_or("").to_string();
            match key.as_str() {
                "dir" => s.dir = Some(value),
                "concurrency" => s.concurrency = Some(parse_concurrency(&value)?),
                k if is_env_name(k) => app_choice(key, value, "ConfigMap key", &mut s, &mut warnings),
                _ => warnings.push(format!(
                    "ConfigMap key {key:?} is not a kustodian setting and was ignored (settings: dir, concurrency, and {})",
                    APP_CHOICES.join(", ")
                )),
            }
        }
    }
    Ok(Parsed {
        config: PluginConfig::Resolver(s),
        warnings,
    })
}

fn parse_concurrency(v: &str) -> Result<usize, ConfigError> {
    v.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            ConfigError::new(
                "concurrency is not a positive whole number",
                "write e.g. `concurrency: 8`",
            )
        })
}

fn is_env_name(k: &str) -> bool {
    !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        && !k.as_bytes()[0].is_ascii_digit()
}

fn credential_warning(k: &str, warnings: &mut Vec<String>) {
    let upper = k.to_ascii_uppercase();
    if upper == "SOPS_AGE_KEY"
        || ["TOKEN", "SECRET", "PASSWORD", "PRIVATE"]
            .iter()
            .any(|w| upper.contains(w))
    {
        warnings.push(format!(
            "{k} is set in a plugin configuration, which usually lives in Git; pass credentials through the environment (or a mounted Secret) instead"
        ));
    }
}

fn unknown_fields(node: &Node, known: &[&str], kind: &str, warnings: &mut Vec<String>) {
    for e in node.as_map().unwrap_or(&[]) {
        let k = e.key.as_scalar().unwrap_or("");
        if !known.contains(&k) {
            warnings.push(format!(
                "{kind}: unknown field {k:?} was ignored (known: {})",
                known.join(", ")
            ));
        }
    }
}

fn settings(node: &Node, warnings: &mut Vec<String>) -> Result<Settings, ConfigError> {
    let mut s = Settings {
        dir: opt_str(node, "dir")?,
        ..Settings::default()
    };
    if let Some(c) = node.get("concurrency") {
        s.concurrency = Some(parse_concurrency(c.as_scalar().unwrap_or(""))?);
    }
    for (k, v) in string_map(node, "env")? {
        if !is_env_name(&k) {
            return Err(ConfigError::new(
                format!("env: {k:?} is not a variable name"),
                "write configuration variables in upper case, e.g. KUSTODIAN_STORE: vault",
            ));
        }
        app_choice(k, v, "env:", &mut s, warnings);
    }
    Ok(s)
}

/// Keeps an allowed application choice; warns (name only) about anything else.
fn app_choice(k: String, v: String, how: &str, s: &mut Settings, warnings: &mut Vec<String>) {
    match app_var(&k) {
        AppVar::Choice => {
            credential_warning(&k, warnings);
            s.env.push((k, v));
        }
        AppVar::Ignored => warnings.push(ignored_warning(&k, how)),
        AppVar::Unrelated => warnings.push(format!(
            "{how} {k} is not a kustodian setting and was ignored (settings: {})",
            APP_CHOICES.join(", ")
        )),
    }
}

fn opt_str(node: &Node, key: &str) -> Result<Option<String>, ConfigError> {
    match node.get(key) {
        None => Ok(None),
        Some(v) if v.is_null() => Ok(None),
        Some(v) => match v.as_scalar() {
            Some(s) => Ok(Some(s.to_string())),
            None => Err(ConfigError::new(
                format!("{key} must be a string"),
                format!("write `{key}: text`"),
            )),
        },
    }
}

fn opt_bool(node: &Node, key: &str) -> Result<Option<bool>, ConfigError> {
    match node.get(key).and_then(Node::as_scalar) {
        None => Ok(None),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(_) => Err(ConfigError::new(
            format!("{key} must be true or false"),
            format!("write `{key}: true`"),
        )),
    }
}

/// A `key: text` map; values are never quoted back in errors.
fn string_map(node: &Node, key: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let Some(m) = node.get(key).filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let entries = m.as_map().ok_or_else(|| {
        ConfigError::new(
            format!("{key} must be a mapping"),
            format!("write `{key}:` followed by `name: value` lines"),
        )
    })?;
    entries
        .iter()
        .map(|e| {
            let k = e.key.as_scalar().unwrap_or("").to_string();
            match e.value.as_scalar() {
                Some(v) => Ok((k, v.to_string())),
                None => Err(ConfigError::new(
                    format!("{key}.{k} must be a string"),
                    "write the value (or a reference such as <path:secrets.enc.yaml#key>) as text",
                )),
            }
        })
        .collect()
}

fn string_list(node: &Node, key: &str) -> Result<Vec<String>, ConfigError> {
    let Some(v) = node.get(key).filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let items = v.as_seq().ok_or_else(|| {
        ConfigError::new(
            format!("{key} must be a list"),
            format!("write `{key}:` followed by `- path` lines"),
        )
    })?;
    items
        .iter()
        .map(|i| {
            i.as_scalar().map(str::to_string).ok_or_else(|| {
                ConfigError::new(
                    format!("{key} holds an item that is not a string"),
                    format!("write each `{key}` item as a path"),
                )
            })
        })
        .collect()
}

/// `KEY=path` or `path` (the key is then the file's base name), as kustomize and KSOPS read them.
fn file_sources(node: &Node, key: &str) -> Result<Vec<FileSource>, ConfigError> {
    string_list(node, key)?
        .into_iter()
        .map(|item| {
            let (k, p) = match item.split_once('=') {
                Some((k, p)) => (k.trim().to_string(), p.trim().to_string()),
                None => {
                    let base = std::path::Path::new(item.trim())
                        .file_name()
                        .and_then(|n| n.to_str())
                        .unwrap_or("")
                        .to_string();
                    (base, item.trim().to_string())
                }
            };
            if k.is_empty() || p.is_empty() {
                return Err(ConfigError::new(
                    format!("{key}: {item:?} names no file"),
                    "write `path` or `KEY=path`",
                ));
            }
            Ok(FileSource { key: k, path: p })
        })
        .collect()
}

/// Annotations that belong to the tools, not to the generated object.
fn is_tool_annotation(k: &str) -> bool {
    k.starts_with("config.kubernetes.io/")
        || k.starts_with("internal.config.kubernetes.io/")
        || k.starts_with("config.k8s.io/")
        || k == "kustomize.config.k8s.io/id"
}

fn secret_spec(node: &Node, warnings: &mut Vec<String>) -> Result<SecretSpec, ConfigError> {
    let meta = node.get("metadata");
    let meta_str = |k: &str| {
        meta.and_then(|m| m.get(k))
            .and_then(Node::as_scalar)
            .map(str::to_string)
    };
    let name = opt_str(node, "name")?
        .or_else(|| meta_str("name"))
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ConfigError::new(
                "SecretGenerator has no name",
                "set metadata.name to the name of the Secret to generate",
            )
        })?;
    let mut spec = SecretSpec {
        name,
        namespace: opt_str(node, "namespace")?.or_else(|| meta_str("namespace")),
        secret_type: opt_str(node, "type")?,
        needs_hash: true,
        ..SecretSpec::default()
    };
    if let Some(m) = meta {
        spec.labels = string_map(m, "labels")?;
        spec.annotations = string_map(m, "annotations")?
            .into_iter()
            .filter(|(k, _)| !is_tool_annotation(k))
            .collect();
    }
    spec.behavior = match opt_str(node, "behavior")?.as_deref() {
        None | Some("") => None,
        Some("create") => Some(Behavior::Create),
        Some("merge") => Some(Behavior::Merge),
        Some("replace") => Some(Behavior::Replace),
        Some(other) => {
            return Err(ConfigError::new(
                format!("behavior {other:?} is not create, merge or replace"),
                "use one of create, merge, replace",
            ))
        }
    };
    if let Some(opts) = node.get("options").filter(|o| !o.is_null()) {
        if opts.as_map().is_none() {
            return Err(ConfigError::new(
                "options must be a mapping",
                "see kustomize's generatorOptions",
            ));
        }
        unknown_fields(
            opts,
            &[
                "labels",
                "annotations",
                "disableNameSuffixHash",
                "immutable",
            ],
            "SecretGenerator options",
            warnings,
        );
        spec.labels.extend(string_map(opts, "labels")?);
        spec.annotations.extend(string_map(opts, "annotations")?);
        if opt_bool(opts, "disableNameSuffixHash")? == Some(true) {
            spec.needs_hash = false;
        }
        spec.immutable = opt_bool(opts, "immutable")?.unwrap_or(false);
    }
    spec.data = string_map(node, "data")?;
    spec.string_data = string_map(node, "stringData")?;
    spec.files = file_sources(node, "files")?;
    spec.envs = string_list(node, "envs")?;
    if spec.data.is_empty()
        && spec.string_data.is_empty()
        && spec.files.is_empty()
        && spec.envs.is_empty()
    {
        warnings.push(format!(
            "SecretGenerator {}: no data, stringData, files or envs; the Secret will be empty",
            spec.name
        ));
    }
    Ok(spec)
}

fn ksops_spec(node: &Node) -> Result<KsopsSpec, ConfigError> {
    let mut spec = KsopsSpec {
        files: string_list(node, "files")?,
        secret_from: Vec::new(),
    };
    if let Some(list) = node.get("secretFrom").filter(|v| !v.is_null()) {
        let items = list
            .as_seq()
            .ok_or_else(|| ConfigError::new("secretFrom must be a list", "see the KSOPS README"))?;
        for item in items {
            let metadata = item.get("metadata").cloned().unwrap_or_else(Node::map);
            if metadata
                .get("name")
                .and_then(Node::as_scalar)
                .is_none_or(str::is_empty)
            {
                return Err(ConfigError::new(
                    "a secretFrom entry has no metadata.name",
                    "give each secretFrom entry metadata.name",
                ));
            }
            spec.secret_from.push(KsopsSecret {
                metadata,
                secret_type: opt_str(item, "type")?,
                files: file_sources(item, "files")?,
                binary_files: file_sources(item, "binaryFiles")?,
                envs: string_list(item, "envs")?,
            });
        }
    }
    if spec.files.is_empty() && spec.secret_from.is_empty() {
        return Err(ConfigError::new(
            "the ksops generator has neither files nor secretFrom",
            "list SOPS-encrypted manifests under files, or Secrets to build under secretFrom",
        ));
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(src: &str) -> Node {
        kustodian_manifest::parse_stream(src)
            .unwrap()
            .remove(0)
            .root
    }

    #[test]
    fn resolver_with_settings() {
        let p = parse(&node("apiVersion: kustodian.io/v1\nkind: Resolver\nmetadata: {name: r}\ndir: ../prod\nenv: {KUSTODIAN_STORE: sops}\n")).unwrap();
        let PluginConfig::Resolver(s) = p.config else {
            panic!()
        };
        assert_eq!(s.dir.as_deref(), Some("../prod"));
        assert_eq!(
            s.env,
            vec![("KUSTODIAN_STORE".to_string(), "sops".to_string())]
        );
        assert!(p.warnings.is_empty());
    }

    #[test]
    fn secret_generator_fields() {
        let p = parse(&node(
            "apiVersion: kustodian.io/v1\nkind: SecretGenerator\nmetadata:\n  name: db\n  namespace: ns\n  annotations: {config.kubernetes.io/function: x, team: a}\ntype: kubernetes.io/basic-auth\nbehavior: merge\noptions: {disableNameSuffixHash: true, labels: {app: x}}\ndata: {password: '<path:s.enc.yaml#pw>'}\nfiles: [conf.enc.yaml, app.conf=other.enc.yaml]\nbogus: 1\n",
        ))
        .unwrap();
        let PluginConfig::SecretGenerator(s, _) = p.config else {
            panic!()
        };
        assert_eq!(s.name, "db");
        assert_eq!(s.namespace.as_deref(), Some("ns"));
        assert_eq!(s.behavior, Some(Behavior::Merge));
        assert!(!s.needs_hash);
        assert_eq!(s.annotations, vec![("team".to_string(), "a".to_string())]);
        assert_eq!(
            s.files[0],
            FileSource {
                key: "conf.enc.yaml".into(),
                path: "conf.enc.yaml".into()
            }
        );
        assert_eq!(
            s.files[1],
            FileSource {
                key: "app.conf".into(),
                path: "other.enc.yaml".into()
            }
        );
        assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
    }

    #[test]
    fn errors_never_quote_values() {
        let e = parse(&node("apiVersion: kustodian.io/v1\nkind: SecretGenerator\nmetadata: {name: x}\ndata: {k: [canary-value]}\n")).unwrap_err();
        assert!(!e.to_string().contains("canary"), "{e}");
        assert!(e.to_string().contains("data.k"));
    }

    #[test]
    fn ksops_config_reads_unchanged() {
        let p = parse(&node(
            "apiVersion: viaduct.ai/v1\nkind: ksops\nmetadata:\n  name: g\n  annotations:\n    config.kubernetes.io/function: |\n      exec:\n        path: ksops\nfiles: [./secret.enc.yaml]\nsecretFrom:\n- metadata: {name: s}\n  type: Opaque\n  files: [./a.enc.yaml]\n  binaryFiles: [b=./b.enc]\n",
        ))
        .unwrap();
        let PluginConfig::Ksops(k, _) = p.config else {
            panic!()
        };
        assert_eq!(k.files, vec!["./secret.enc.yaml"]);
        assert_eq!(k.secret_from[0].files[0].key, "a.enc.yaml");
        assert_eq!(k.secret_from[0].binary_files[0].key, "b");
    }

    #[test]
    fn config_map_settings() {
        let p = from_config_map(&node("apiVersion: v1\nkind: ConfigMap\ndata: {dir: app, AVP_TYPE: sops, VAULT_TOKEN: canary-x, VAULT_ADDR: http://attacker, other: y}\n")).unwrap();
        let PluginConfig::Resolver(s) = p.config else {
            panic!()
        };
        assert_eq!(s.dir.as_deref(), Some("app"));
        assert_eq!(s.env, vec![("AVP_TYPE".to_string(), "sops".to_string())]);
        assert_eq!(p.warnings.len(), 3, "{:?}", p.warnings);
        for w in &p.warnings {
            assert!(!w.contains("canary") && !w.contains("attacker"), "{w}");
        }
        assert!(
            p.warnings[1].contains("VAULT_ADDR was ignored"),
            "{:?}",
            p.warnings
        );
    }

    #[test]
    fn other_kinds_are_refused() {
        assert!(parse(&node("apiVersion: v1\nkind: Secret\n")).is_err());
        assert!(is_plugin_config(&node(
            "apiVersion: viaduct.ai/v1\nkind: ksops\n"
        )));
        assert!(!is_plugin_config(&node(
            "apiVersion: v1\nkind: ConfigMap\n"
        )));
    }
}
