//! `--resolve external-secrets`: ExternalSecrets rendered offline into the Secrets ESO would
//! create, reading the `SecretStore`/`ClusterSecretStore` objects of the same input for *what*
//! to read (provider `vault`: `path`, `version`, `namespace`) and kustodian's own configured
//! store and credentials for *where* and *how*.
//!
//! A store object is written by whoever writes the repository. Its `server` must be the Vault
//! the operator configured (`VAULT_ADDR`), and its `namespace` the configured one, or the
//! ExternalSecret fails naming the store object: kustodian never sends the operator's
//! credentials to an address a manifest chose.

use std::collections::BTreeMap;

use base64::Engine as _;
use kustodian_manifest::{Node, Object, ScalarStyle};
use kustodian_stores::{Request, Stores};
use serde_json::Value;

use super::template;
use crate::modifiers::{select_key, to_text, ValueError};

/// The group of ESO's kinds.
pub const GROUP: &str = "external-secrets.io";

/// Whether `o` is one of ESO's kinds named `kind`.
pub fn is_eso(o: &Object, kind: &str) -> bool {
    o.group() == GROUP && o.kind() == Some(kind)
}

/// A store object's identity: kind, namespace (none for a ClusterSecretStore), name.
type StoreKey = (String, Option<String>, String);

/// What an ExternalSecret's store object says about reading Vault, once checked against the
/// operator's configuration.
#[derive(Debug)]
pub(crate) struct VaultStore {
    /// The KV mount (`path`), if given.
    pub mount: Option<String>,
    /// KV version 2 (ESO's default) or 1.
    pub v2: bool,
}

impl VaultStore {
    /// The Vault API path ESO reads for `key` (ESO's own rules: a key that starts with the mount
    /// is not prefixed again; KV v2 reads under `data/`).
    pub fn api_path(&self, key: &str) -> String {
        let key = key.trim_matches('/');
        match &self.mount {
            Some(m) => {
                let m = m.trim_matches('/');
                let mut rest = key;
                if let Some(r) = key.strip_prefix(&format!("{m}/")) {
                    rest = r;
                    if self.v2 {
                        rest = rest.strip_prefix("data/").unwrap_or(rest);
                    }
                }
                if self.v2 {
                    format!("{m}/data/{rest}")
                } else {
                    format!("{m}/{rest}")
                }
            }
            None if self.v2 => match key.split_once('/') {
                Some((m, rest)) if !rest.starts_with("data/") => format!("{m}/data/{rest}"),
                _ => key.to_string(),
            },
            None => key.to_string(),
        }
    }

    /// The kustodian request for `key` at `version`.
    pub fn request(&self, key: &str, version: Option<&str>) -> Request {
        Request {
            path: self.api_path(key),
            version: version.map(str::to_string),
            params: vec![("kv-version".into(), if self.v2 { "2" } else { "1" }.into())],
        }
    }
}

/// What a store object says about reading, once checked against the operator's configuration.
#[derive(Debug)]
pub(crate) enum Provider {
    /// `spec.provider.vault`.
    Vault(VaultStore),
    /// `spec.provider.aws` with `service: SecretsManager`, in the configured region.
    AwsSecretsManager,
}

impl Provider {
    /// The kustodian store and request for a remote ref's `key` at `version`.
    pub fn request(&self, key: &str, version: Option<&str>) -> (&'static str, Request) {
        match self {
            Provider::Vault(v) => ("vault", v.request(key, version)),
            Provider::AwsSecretsManager => {
                // ESO: `uuid/ID` is a version id, anything else a version stage.
                let params = match version {
                    Some(v) => match v.strip_prefix("uuid/") {
                        Some(id) => vec![("version_id".to_string(), id.to_string())],
                        None => vec![("version_stage".to_string(), v.to_string())],
                    },
                    None => Vec::new(),
                };
                (
                    "aws",
                    Request {
                        path: key.to_string(),
                        version: None,
                        params,
                    },
                )
            }
        }
    }
}

/// The store objects of `docs` by identity.
pub(crate) fn store_objects(docs: &[Node]) -> BTreeMap<StoreKey, Node> {
    let mut out = BTreeMap::new();
    for d in docs {
        for obj in kustodian_manifest::objects(d) {
            let o = Object::new(obj);
            for kind in ["SecretStore", "ClusterSecretStore"] {
                if is_eso(&o, kind) {
                    let ns = (kind == "SecretStore")
                        .then(|| o.namespace().map(str::to_string))
                        .flatten();
                    out.insert(
                        (kind.to_string(), ns, o.name().unwrap_or("").to_string()),
                        obj.clone(),
                    );
                }
            }
        }
    }
    out
}

fn text(n: Option<&Node>) -> Option<String> {
    n.and_then(Node::as_scalar).map(str::to_string)
}

/// `scheme://host:port` in lower case without a trailing slash, for comparing addresses.
pub(crate) fn origin(addr: &str) -> String {
    let a = addr.trim().trim_end_matches('/').to_ascii_lowercase();
    let (scheme, rest) = a.split_once("://").unwrap_or(("https", &a));
    let host = rest.rsplit('@').next().unwrap_or(rest);
    let default_port = if scheme == "https" { ":443" } else { ":80" };
    let host = host.strip_suffix(default_port).unwrap_or(host);
    format!("{scheme}://{host}")
}

/// Whether `server` is the Vault the operator configured (`VAULT_ADDR`, else Vault's default):
/// same scheme, host and port.
pub(crate) fn is_configured_vault(server: &str, stores: &Stores) -> bool {
    let configured = stores
        .config()
        .var_any(&["VAULT_ADDR", "BAO_ADDR"])
        .unwrap_or("https://127.0.0.1:8200");
    origin(server) == origin(configured)
}

/// The store object an ExternalSecret names, checked against the operator's configuration: a
/// Vault `server` (and `namespace`) must be the configured Vault, an AWS `region` the configured
/// region.
pub(crate) fn provider_of(
    es_node: &Node,
    stores_in_input: &BTreeMap<StoreKey, Node>,
    stores: &Stores,
) -> Result<(String, Provider), String> {
    let es = Object::new(es_node);
    let spec = es_node.get("spec");
    let sref = spec.and_then(|s| s.get("secretStoreRef"));
    let name = text(sref.and_then(|r| r.get("name")))
        .ok_or("spec.secretStoreRef.name is missing; name the SecretStore or ClusterSecretStore")?;
    let kind = text(sref.and_then(|r| r.get("kind"))).unwrap_or_else(|| "SecretStore".into());
    let ns = (kind == "SecretStore")
        .then(|| es.namespace().map(str::to_string))
        .flatten();
    let store_name = match &ns {
        Some(ns) => format!("{kind}/{name} (namespace {ns})"),
        None => format!("{kind}/{name}"),
    };
    let obj = stores_in_input
        .get(&(kind.clone(), ns.clone(), name.clone()))
        .ok_or_else(|| format!("{store_name} is not in the input; render it together with the ExternalSecret so kustodian knows what to read"))?;
    let provider = obj.get_path(&["spec", "provider"]);
    if let Some(aws) = provider.and_then(|p| p.get("aws")) {
        return aws_provider(&store_name, aws, stores).map(|p| (store_name, p));
    }
    let Some(vault) = provider.and_then(|p| p.get("vault")) else {
        let names: Vec<&str> = provider
            .and_then(Node::as_map)
            .unwrap_or(&[])
            .iter()
            .filter_map(|e| e.key.as_scalar())
            .collect();
        return Err(format!(
            "{store_name}: provider {} is not one kustodian reads offline (vault, aws)",
            names.join(", ")
        ));
    };
    let server = text(vault.get("server")).unwrap_or_default();
    let config = stores.config();
    if !is_configured_vault(&server, stores) {
        return Err(format!(
            "{store_name}: its server {:?} is not the Vault kustodian is configured for (VAULT_ADDR); a store object comes from the repository, and kustodian never sends the operator's credentials to an address a manifest chose. Point `spec.provider.vault.server` at the operator's Vault",
            server.rsplit('@').next().unwrap_or("")
        ));
    }
    let want_ns = config
        .var_any(&["VAULT_NAMESPACE", "BAO_NAMESPACE"])
        .map(|n| n.trim().trim_matches('/').to_string());
    let ns_obj = text(vault.get("namespace")).map(|n| n.trim().trim_matches('/').to_string());
    if ns_obj.is_some() && ns_obj != want_ns {
        return Err(format!(
            "{store_name}: its Vault namespace {:?} is not the one kustodian is configured for (VAULT_NAMESPACE); fix the store object or the configuration",
            ns_obj.unwrap_or_default()
        ));
    }
    let version = text(vault.get("version")).unwrap_or_else(|| "v2".into());
    let v2 = match version.as_str() {
        "v2" => true,
        "v1" => false,
        other => {
            return Err(format!(
                "{store_name}: Vault KV version {other:?} is neither v1 nor v2"
            ))
        }
    };
    Ok((
        store_name,
        Provider::Vault(VaultStore {
            mount: text(vault.get("path")),
            v2,
        }),
    ))
}

/// An `aws` provider: Secrets Manager in the region kustodian is configured for.
fn aws_provider(store_name: &str, aws: &Node, stores: &Stores) -> Result<Provider, String> {
    let service = text(aws.get("service")).unwrap_or_default();
    if service != "SecretsManager" {
        return Err(format!(
            "{store_name}: AWS service {service:?} is not one kustodian reads offline (SecretsManager)"
        ));
    }
    let region = text(aws.get("region")).unwrap_or_default();
    let configured = stores
        .config()
        .var_any(&["AWS_REGION", "AWS_DEFAULT_REGION"]);
    if configured != Some(region.trim()) {
        return Err(format!(
            "{store_name}: its region {region:?} is not the region kustodian is configured for (AWS_REGION); a store object comes from the repository, and kustodian reads only where the operator's configuration points"
        ));
    }
    Ok(Provider::AwsSecretsManager)
}

/// Reads `property` (a top-level key, else a dotted path, as ESO does) of the document at
/// `key`, or the whole document as JSON without one.
fn read(
    stores: &Stores,
    provider: &Provider,
    key: &str,
    property: Option<&str>,
    version: Option<&str>,
) -> Result<Value, String> {
    let (name, req) = provider.request(key, version);
    let store = stores.get(name).map_err(|e| e.to_string())?;
    let doc = store.fetch(&req).map_err(|e| e.to_string())?;
    match property {
        None => Ok(doc.expose().clone()),
        Some(p) => select_key(doc.expose(), p).map_err(|e| match e {
            ValueError::Missing(m) | ValueError::Bad(m) => format!("{key}: {m}"),
        }),
    }
}

/// Most secrets a `find` lists, and how deep it goes, so a broad regex cannot walk a whole
/// Vault.
const FIND_LIMIT: usize = 1000;
const FIND_DEPTH: usize = 10;

/// `dataFrom.find` on Vault KV: every secret under `path` (relative to the mount) whose path
/// matches `name.regexp` becomes one key (its path, `/` turned into `_`) holding the whole
/// secret as JSON, as ESO's Vault provider does.
fn find(stores: &Stores, provider: &Provider, f: &Node) -> Result<Vec<(String, String)>, String> {
    let Provider::Vault(vs) = provider else {
        return Err("`find` is rendered offline for Vault stores only".into());
    };
    let mount = vs
        .mount
        .as_deref()
        .map(|m| m.trim_matches('/'))
        .ok_or("the SecretStore has no `path` (the KV mount) to list")?;
    if f.get("tags").is_some() {
        return Err("`tags` is not rendered offline; find by `name.regexp`".into());
    }
    let pattern = text(f.get_path(&["name", "regexp"])).ok_or("`name.regexp` is missing")?;
    let re =
        regex::Regex::new(&pattern).map_err(|e| format!("`name.regexp` is not a regex: {e}"))?;
    let store = stores.get("vault").map_err(|e| e.to_string())?;
    let base = text(f.get("path"))
        .unwrap_or_default()
        .trim_matches('/')
        .to_string();
    let list_path = |rel: &str| match vs.v2 {
        true => format!("{mount}/metadata/{rel}"),
        false => format!("{mount}/{rel}"),
    };
    let mut found = Vec::new();
    let mut folders = vec![(base.clone(), 0)];
    while let Some((folder, depth)) = folders.pop() {
        for name in store.list(&list_path(&folder)).map_err(|e| e.to_string())? {
            let rel = if folder.is_empty() {
                name.clone()
            } else {
                format!("{folder}/{name}")
            };
            if let Some(sub) = rel.strip_suffix('/') {
                if depth + 1 < FIND_DEPTH {
                    folders.push((sub.to_string(), depth + 1));
                }
            } else if re.is_match(&rel) {
                found.push(rel);
            }
            if found.len() > FIND_LIMIT {
                return Err(format!(
                    "more than {FIND_LIMIT} secrets match; narrow `path` or `name.regexp`"
                ));
            }
        }
    }
    found.sort();
    let mut out = Vec::new();
    for rel in found {
        let v = read(stores, provider, &format!("{mount}/{rel}"), None, None)?;
        out.push((rel.replace('/', "_"), whole_text(&v)));
    }
    Ok(out)
}

fn whole_text(v: &Value) -> String {
    match v {
        Value::Object(_) | Value::Array(_) => v.to_string(),
        other => to_text(other),
    }
}

/// Renders one ExternalSecret into the Secret ESO would make (`None` for `creationPolicy:
/// None`).
pub(crate) fn resolve_one(
    es_node: &Node,
    stores_in_input: &BTreeMap<StoreKey, Node>,
    stores: &Stores,
) -> Result<Option<Node>, String> {
    let es = Object::new(es_node);
    let (_, vs) = provider_of(es_node, stores_in_input, stores)?;
    let spec = es_node.get("spec");
    let mut data: BTreeMap<String, String> = BTreeMap::new();
    for (i, d) in spec
        .and_then(|s| s.get("data"))
        .and_then(Node::as_seq)
        .unwrap_or(&[])
        .iter()
        .enumerate()
    {
        let sk = text(d.get("secretKey")).ok_or(format!("spec.data[{i}].secretKey is missing"))?;
        let rr = d.get("remoteRef");
        let key = text(rr.and_then(|r| r.get("key")))
            .ok_or(format!("spec.data[{i}].remoteRef.key is missing"))?;
        let v = read(
            stores,
            &vs,
            &key,
            text(rr.and_then(|r| r.get("property"))).as_deref(),
            text(rr.and_then(|r| r.get("version"))).as_deref(),
        )
        .map_err(|e| format!("spec.data[{i}] ({sk}): {e}"))?;
        let mut t = whole_text(&v);
        match text(rr.and_then(|r| r.get("decodingStrategy"))).as_deref() {
            None | Some("None") => {}
            Some("Base64") => {
                t = base64::engine::general_purpose::STANDARD
                    .decode(t.trim())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or(format!("spec.data[{i}] ({sk}): decodingStrategy Base64, but the value is not base64 of text"))?
            }
            Some(other) => {
                return Err(format!(
                    "spec.data[{i}] ({sk}): decodingStrategy {other} is not one kustodian renders offline (None, Base64)"
                ))
            }
        }
        data.insert(sk, t);
    }
    for (i, d) in spec
        .and_then(|s| s.get("dataFrom"))
        .and_then(Node::as_seq)
        .unwrap_or(&[])
        .iter()
        .enumerate()
    {
        if let Some(f) = d.get("find") {
            for (k, v) in
                find(stores, &vs, f).map_err(|e| format!("spec.dataFrom[{i}].find: {e}"))?
            {
                data.insert(k, v);
            }
            continue;
        }
        let Some(ex) = d.get("extract") else {
            return Err(format!(
                "spec.dataFrom[{i}]: only `extract` and `find` are rendered offline"
            ));
        };
        let key =
            text(ex.get("key")).ok_or(format!("spec.dataFrom[{i}].extract.key is missing"))?;
        let v = read(
            stores,
            &vs,
            &key,
            text(ex.get("property")).as_deref(),
            text(ex.get("version")).as_deref(),
        )
        .map_err(|e| format!("spec.dataFrom[{i}]: {e}"))?;
        let Value::Object(m) = v else {
            return Err(format!("spec.dataFrom[{i}]: {key} is not a map of keys"));
        };
        for (k, v) in m {
            data.insert(k, whole_text(&v));
        }
    }

    let target = spec.and_then(|s| s.get("target"));
    let policy =
        text(target.and_then(|t| t.get("creationPolicy"))).unwrap_or_else(|| "Owner".into());
    if policy == "None" {
        return Ok(None);
    }
    let tmpl = target.and_then(|t| t.get("template"));
    let merge = text(tmpl.and_then(|t| t.get("mergePolicy"))).as_deref() == Some("Merge");
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    match tmpl.and_then(|t| t.get("data")).and_then(Node::as_map) {
        Some(entries) => {
            if merge {
                out = data.clone();
            }
            for e in entries {
                let (Some(k), Some(t)) = (e.key.as_scalar(), e.value.as_str()) else {
                    continue;
                };
                let v = template::render(t, &data)
                    .map_err(|why| format!("spec.target.template.data.{k}: {why}"))?;
                out.insert(k.to_string(), v);
            }
        }
        None => out = data,
    }

    let mut secret = Node::map();
    secret.insert("apiVersion", Node::scalar("v1", ScalarStyle::Plain));
    secret.insert("kind", Node::scalar("Secret", ScalarStyle::Plain));
    let mut meta = Node::map();
    let name = text(target.and_then(|t| t.get("name")))
        .unwrap_or_else(|| es.name().unwrap_or("").to_string());
    meta.insert("name", Node::string(name));
    if let Some(ns) = es.namespace() {
        meta.insert("namespace", Node::string(ns));
    }
    for field in ["labels", "annotations"] {
        if let Some(m) = tmpl.and_then(|t| t.get_path(&["metadata", field])) {
            meta.insert(field, m.clone());
        }
    }
    secret.insert("metadata", meta);
    let ty = text(tmpl.and_then(|t| t.get("type"))).unwrap_or_else(|| "Opaque".into());
    secret.insert("type", Node::string(ty));
    let mut dn = Node::map();
    let b64 = base64::engine::general_purpose::STANDARD;
    for (k, v) in out {
        dn.insert(
            &k,
            Node::scalar(b64.encode(v.as_bytes()), ScalarStyle::Plain),
        );
    }
    secret.insert("data", dn);
    Ok(Some(secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_paths_follow_eso() {
        let v2 = VaultStore {
            mount: Some("kv".into()),
            v2: true,
        };
        assert_eq!(v2.api_path("app"), "kv/data/app");
        assert_eq!(v2.api_path("kv/app"), "kv/data/app");
        assert_eq!(v2.api_path("kv/data/app"), "kv/data/app");
        let v1 = VaultStore {
            mount: Some("kv1".into()),
            v2: false,
        };
        assert_eq!(v1.api_path("kv1/app"), "kv1/app");
        assert_eq!(v1.api_path("app"), "kv1/app");
        let bare = VaultStore {
            mount: None,
            v2: true,
        };
        assert_eq!(bare.api_path("kv/app"), "kv/data/app");
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        assert_eq!(origin("HTTP://Vault:80/"), origin("http://vault"));
        assert_ne!(origin("http://vault:8200"), origin("http://evil:8200"));
        assert_ne!(origin("https://vault:8200"), origin("http://vault:8200"));
    }
}
