//! `kustodian check`: every reference in a tree — argocd-vault-plugin placeholders, vals URIs,
//! and ExternalSecret remote refs (read through their SecretStore) — asked of its store, one
//! request per distinct `(store, path, version)`. Reports what is missing (path, key, version)
//! or refused, with the file, line and object; never a value: a fetched document is only looked
//! into for the key and dropped (it zeroes itself).
//!
//! Offline, only the grammar, the store objects and the stores' configuration are checked.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kustodian_manifest::{Node, Object, PathItem};
use kustodian_refs::{RefKind, Reference};
use kustodian_stores::{Config, Request, StoreError, Stores};

use crate::eso::resolve::{self as eso, VaultStore};
use crate::modifiers::{select_key, select_pointer};
use crate::pipeline::{parse, plan, DocSettings};

/// What a problem is. Each has a stable kebab-case code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Code {
    /// The reference does not parse.
    Invalid,
    /// The store has nothing at the path.
    PathMissing,
    /// The path exists, the key does not.
    KeyMissing,
    /// The path exists, the asked version does not.
    VersionMissing,
    /// The store refused the read.
    Denied,
    /// An ExternalSecret's store object is missing, or does not match the configured store.
    StoreObject,
}

impl Code {
    /// Every code, in the order of docs/check.md.
    pub const ALL: [Code; 6] = [
        Code::Invalid,
        Code::PathMissing,
        Code::KeyMissing,
        Code::VersionMissing,
        Code::Denied,
        Code::StoreObject,
    ];

    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            Code::Invalid => "reference-invalid",
            Code::PathMissing => "reference-path-missing",
            Code::KeyMissing => "reference-key-missing",
            Code::VersionMissing => "reference-version-missing",
            Code::Denied => "reference-denied",
            Code::StoreObject => "reference-store-object",
        }
    }

    /// One line: what the code means.
    pub fn summary(self) -> &'static str {
        match self {
            Code::Invalid => "A reference does not parse",
            Code::PathMissing => "A reference names a path its store does not have",
            Code::KeyMissing => "A reference names a key its secret does not have",
            Code::VersionMissing => "A reference names a version its secret does not have",
            Code::Denied => "The store refused to read a referenced path",
            Code::StoreObject => {
                "An ExternalSecret's SecretStore is missing or does not match the configured store"
            }
        }
    }
}

/// Where a reference is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    /// The file, as given.
    pub path: String,
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
    /// The object's kind, name and namespace.
    pub kind: Option<String>,
    /// The object's name.
    pub name: Option<String>,
    /// The object's namespace.
    pub namespace: Option<String>,
    /// The field, dotted (`stringData.password`, `spec.data[0].remoteRef`).
    pub field: String,
    /// The reference as written (or `key#property` for a remote ref). Never a value.
    pub reference: String,
}

/// One reference that does not resolve.
#[derive(Clone, Debug)]
pub struct Problem {
    /// Where.
    pub place: Place,
    /// What.
    pub code: Code,
    /// Why, and how to fix it; no value.
    pub message: String,
}

/// What a check found.
#[derive(Debug, Default)]
pub struct Outcome {
    /// References that do not resolve.
    pub problems: Vec<Problem>,
    /// Failures that kept the check from finishing (a store that cannot be used); exit 2.
    pub errors: Vec<String>,
    /// References found.
    pub references: usize,
    /// Store requests made.
    pub requests: usize,
}

/// One file to check: its name as reported, its folder (relative store paths start there) and
/// its text.
pub struct File {
    /// The name in reports.
    pub name: String,
    /// The folder relative references resolve against.
    pub dir: PathBuf,
    /// The text.
    pub text: String,
}

/// What to read for one reference, and what to look for in the answer.
struct Item {
    place: Place,
    store: String,
    /// The folder whose configuration the store is built from (SOPS paths are relative).
    dir: Option<PathBuf>,
    req: Request,
    pick: Pick,
}

enum Pick {
    Key(String),
    Pointer(Vec<String>),
    Whole,
}

/// Checks every reference in `files`. `vars` are the operator's variables (the process
/// environment); `root` the repository root.
pub fn check(files: &[File], root: &Path, vars: &[(String, String)], offline: bool) -> Outcome {
    let mut out = Outcome::default();
    let config_for = |dir: &Path| Config::from_vars(root, dir, vars.iter().cloned());
    let root_stores = Stores::new(config_for(root));
    let mut parsed: Vec<(&File, Vec<Node>)> = Vec::new();
    for f in files {
        match kustodian_manifest::parse_stream(&f.text) {
            Ok(docs) => parsed.push((f, docs.into_iter().map(|d| d.root).collect())),
            Err(e) => out.errors.push(format!(
                "{}:{}:{}: not YAML, so its references were not checked: {}",
                f.name, e.pos.line, e.pos.column, e.message
            )),
        }
    }
    let all: Vec<Node> = parsed.iter().flat_map(|(_, d)| d.iter().cloned()).collect();
    let store_objects = eso::store_objects(&all);

    let mut items = Vec::new();
    for (f, docs) in &parsed {
        for doc in docs {
            for obj in kustodian_manifest::objects(doc) {
                collect(f, obj, &root_stores, &store_objects, &mut items, &mut out);
            }
        }
    }
    out.references += items.len();

    // The stores' configuration, built once per store (and folder for SOPS).
    let mut by_dir: BTreeMap<PathBuf, Stores> = BTreeMap::new();
    let mut built: BTreeMap<(String, Option<PathBuf>), Result<(), String>> = BTreeMap::new();
    for it in &items {
        let key = (it.store.clone(), it.dir.clone());
        if built.contains_key(&key) {
            continue;
        }
        let stores = match &it.dir {
            Some(d) => by_dir
                .entry(d.clone())
                .or_insert_with(|| Stores::new(config_for(d))),
            None => &root_stores,
        };
        let r = stores.get(&it.store).map(|_| ()).map_err(|e| e.to_string());
        if let Err(e) = &r {
            out.errors
                .push(format!("the {} store cannot be used: {e}", it.store));
        }
        built.insert(key, r);
    }
    if offline || !out.errors.is_empty() {
        return out;
    }

    // One request per distinct (store, folder, request).
    let mut answers: BTreeMap<
        (String, Option<PathBuf>, Request),
        Result<kustodian_stores::SecretValue, StoreError>,
    > = BTreeMap::new();
    for it in &items {
        let key = (it.store.clone(), it.dir.clone(), it.req.clone());
        if answers.contains_key(&key) {
            continue;
        }
        let stores = match &it.dir {
            Some(d) => &by_dir[d],
            None => &root_stores,
        };
        let r = stores.get(&it.store).and_then(|s| s.fetch(&it.req));
        out.requests += 1;
        answers.insert(key, r);
    }
    let mut wide = std::collections::BTreeSet::new();
    for it in items {
        let key = (it.store.clone(), it.dir.clone(), it.req.clone());
        let problem = |code, message: String| Problem {
            place: it.place.clone(),
            code,
            message,
        };
        match &answers[&key] {
            Ok(doc) => {
                let found = match &it.pick {
                    Pick::Key(k) => select_key(doc.expose(), k).map(|_| ()),
                    Pick::Pointer(p) => select_pointer(doc.expose(), p).map(|_| ()),
                    Pick::Whole => Ok(()),
                };
                if let Err(
                    crate::modifiers::ValueError::Missing(m) | crate::modifiers::ValueError::Bad(m),
                ) = found
                {
                    out.problems
                        .push(problem(Code::KeyMissing, format!("{}: {m}", it.req.path)));
                }
            }
            Err(StoreError::NotFound { .. }) if it.req.version.is_some() => {
                out.problems.push(problem(
                    Code::VersionMissing,
                    format!(
                        "{}: version {} not found in the {} store (or the path does not exist); check the version",
                        it.req.path,
                        it.req.version.as_deref().unwrap_or(""),
                        it.store
                    ),
                ));
            }
            Err(e @ StoreError::NotFound { .. }) => {
                out.problems.push(problem(
                    Code::PathMissing,
                    format!("{e}; write the secret or fix the path"),
                ));
            }
            Err(e @ StoreError::Denied { .. }) => {
                out.problems.push(problem(
                    Code::Denied,
                    format!("{e}; grant kustodian's identity read access to it, or fix the path"),
                ));
            }
            Err(e) if e.is_store_wide() => {
                if wide.insert(it.store.clone()) {
                    out.errors
                        .push(format!("the {} store cannot be used: {e}", it.store));
                }
            }
            Err(e) => out.problems.push(problem(Code::Invalid, e.to_string())),
        }
    }
    out
}

fn field_name(path: &[PathItem]) -> String {
    let mut s = String::new();
    for p in path {
        match p {
            PathItem::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            PathItem::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

fn place(f: &File, o: &Object, n: &Node, field: String, reference: String) -> Place {
    Place {
        path: f.name.clone(),
        line: n.span.start.line,
        column: n.span.start.column,
        kind: o.kind().map(str::to_string),
        name: o.name().map(str::to_string),
        namespace: o.namespace().map(str::to_string),
        field,
        reference,
    }
}

fn collect(
    f: &File,
    obj: &Node,
    stores: &Stores,
    store_objects: &BTreeMap<(String, Option<String>, String), Node>,
    items: &mut Vec<Item>,
    out: &mut Outcome,
) {
    let o = Object::new(obj);
    let s = DocSettings::of(obj);
    if s.ignore {
        return;
    }
    if eso::is_eso(&o, "ExternalSecret") {
        external_secret(f, obj, stores, store_objects, items, out);
        return;
    }
    if o.group() == "secrets-store.csi.x-k8s.io" && o.kind() == Some("SecretProviderClass") {
        secret_provider_class(f, obj, stores, items, out);
        return;
    }
    if o.group() == "secrets.hashicorp.com" && o.kind() == Some("VaultStaticSecret") {
        vault_static_secret(f, obj, items);
        return;
    }
    obj.walk_scalars(&mut |path, n| {
        // Vault agent injector: `vault.hashicorp.com/agent-inject-secret-NAME: API_PATH`.
        if let [.., PathItem::Key("annotations"), PathItem::Key(k)] = path {
            if k.starts_with(AGENT_PREFIX) {
                if let Some(p) = n.as_str().map(str::trim).filter(|p| !p.is_empty()) {
                    items.push(Item {
                        place: place(f, &o, n, field_name(path), p.to_string()),
                        store: "vault".into(),
                        dir: None,
                        req: Request::new(p),
                        pick: Pick::Whole,
                    });
                }
                return;
            }
        }
        let Some(text) = n.as_str() else { return };
        let field = field_name(path);
        let in_data = o.is_secret() && matches!(path.first(), Some(PathItem::Key("data")));
        let mut text = text.to_string();
        if in_data && !kustodian_refs::contains_reference_with_generic(&text) {
            use base64::Engine as _;
            let compact: String = text.split_whitespace().collect();
            if let Some(t) = base64::engine::general_purpose::STANDARD
                .decode(compact)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
            {
                text = t;
            }
        }
        let refs = match parse(&text, &s) {
            Ok(r) => r,
            Err(e) => {
                out.problems.push(Problem {
                    place: place(f, &o, n, field, String::new()),
                    code: Code::Invalid,
                    message: e.to_string(),
                });
                return;
            }
        };
        for r in refs {
            add(f, &o, n, &field, &r, &s, stores, items, out);
        }
    });
}

#[allow(clippy::too_many_arguments)]
fn add(
    f: &File,
    o: &Object,
    n: &Node,
    field: &str,
    r: &Reference,
    s: &DocSettings,
    stores: &Stores,
    items: &mut Vec<Item>,
    out: &mut Outcome,
) {
    let at = place(f, o, n, field.to_string(), r.to_string());
    match plan(r, s, stores) {
        Ok(p) => {
            let pick = match &r.kind {
                RefKind::AvpPath { key, .. } | RefKind::AvpGeneric { key } => {
                    Pick::Key(key.clone())
                }
                RefKind::Vals(v) => v.fragment.clone().map_or(Pick::Whole, Pick::Pointer),
            };
            let dir = (p.store == "sops").then(|| f.dir.clone());
            items.push(Item {
                place: at,
                store: p.store,
                dir,
                req: p.req,
                pick,
            });
        }
        Err(why) => out.problems.push(Problem {
            place: at,
            code: Code::Invalid,
            message: why,
        }),
    }
}

fn external_secret(
    f: &File,
    obj: &Node,
    stores: &Stores,
    store_objects: &BTreeMap<(String, Option<String>, String), Node>,
    items: &mut Vec<Item>,
    out: &mut Outcome,
) {
    let o = Object::new(obj);
    let spec_at = obj.get_path(&["spec", "secretStoreRef"]).unwrap_or(obj);
    let provider = match eso::provider_of(obj, store_objects, stores) {
        Ok((_, p)) => p,
        Err(why) => {
            out.problems.push(Problem {
                place: place(f, &o, spec_at, "spec.secretStoreRef".into(), String::new()),
                code: Code::StoreObject,
                message: why,
            });
            return;
        }
    };
    let text = |n: Option<&Node>| n.and_then(Node::as_scalar).map(str::to_string);
    // (field, node, key, property, version) of each remote ref.
    type Remote<'a> = (String, &'a Node, String, Option<String>, Option<String>);
    let mut refs: Vec<Remote> = Vec::new();
    for (list, inner) in [("data", "remoteRef"), ("dataFrom", "extract")] {
        let entries = obj.get_path(&["spec", list]).and_then(Node::as_seq);
        for (i, d) in entries.unwrap_or(&[]).iter().enumerate() {
            let Some(r) = d.get(inner) else { continue };
            if let Some(k) = text(r.get("key")) {
                let (p, v) = (text(r.get("property")), text(r.get("version")));
                refs.push((format!("spec.{list}[{i}].{inner}"), r, k, p, v));
            }
        }
    }
    for (field, n, key, property, version) in refs {
        let (store, req) = provider.request(&key, version.as_deref());
        let shown = match &property {
            Some(p) => format!("{key}#{p}"),
            None => key.clone(),
        };
        items.push(Item {
            place: place(f, &o, n, field, shown),
            store: store.into(),
            dir: None,
            req,
            pick: property.map_or(Pick::Whole, Pick::Key),
        });
    }
}

/// The Vault agent injector's annotation naming a secret to render into the pod.
const AGENT_PREFIX: &str = "vault.hashicorp.com/agent-inject-secret-";

/// A Secrets Store CSI `SecretProviderClass` of the Vault provider: each of
/// `spec.parameters.objects` names a `secretPath` (the API path) and a `secretKey`. Its
/// `vaultAddress` must be the configured Vault.
fn secret_provider_class(
    f: &File,
    obj: &Node,
    stores: &Stores,
    items: &mut Vec<Item>,
    out: &mut Outcome,
) {
    let o = Object::new(obj);
    if obj
        .get_path(&["spec", "provider"])
        .and_then(Node::as_scalar)
        != Some("vault")
    {
        return;
    }
    let params = obj.get_path(&["spec", "parameters"]);
    let param = |k: &str| params.and_then(|p| p.get(k));
    if let Some(addr) = param("vaultAddress").and_then(Node::as_scalar) {
        if !eso::is_configured_vault(addr, stores) {
            out.problems.push(Problem {
                place: place(f, &o, param("vaultAddress").unwrap_or(obj), "spec.parameters.vaultAddress".into(), String::new()),
                code: Code::StoreObject,
                message: format!("its vaultAddress {:?} is not the Vault kustodian is configured for (VAULT_ADDR); kustodian never sends its credentials to an address a manifest chose, so its objects were not checked", addr.rsplit('@').next().unwrap_or("")),
            });
            return;
        }
    }
    let Some(objects_node) = param("objects") else {
        return;
    };
    let parsed = objects_node
        .as_str()
        .and_then(|t| kustodian_manifest::parse_stream(t).ok())
        .and_then(|d| d.into_iter().next())
        .map(|d| d.root);
    let Some(list) = parsed.as_ref().and_then(Node::as_seq) else {
        out.problems.push(Problem {
            place: place(f, &o, objects_node, "spec.parameters.objects".into(), String::new()),
            code: Code::Invalid,
            message: "spec.parameters.objects is not a YAML list of objects (objectName, secretPath, secretKey)".into(),
        });
        return;
    };
    for (i, entry) in list.iter().enumerate() {
        let text = |k: &str| entry.get(k).and_then(Node::as_scalar).map(str::to_string);
        let Some(path) = text("secretPath") else {
            continue;
        };
        let key = text("secretKey");
        let shown = match &key {
            Some(k) => format!("{path}#{k}"),
            None => path.clone(),
        };
        items.push(Item {
            place: place(
                f,
                &o,
                objects_node,
                format!("spec.parameters.objects[{i}]"),
                shown,
            ),
            store: "vault".into(),
            dir: None,
            req: Request::new(path),
            pick: key.map_or(Pick::Whole, Pick::Key),
        });
    }
}

/// A Vault Secrets Operator `VaultStaticSecret`: `spec.mount`, `spec.path`, `spec.type`
/// (`kv-v1`, `kv-v2`), `spec.version`.
fn vault_static_secret(f: &File, obj: &Node, items: &mut Vec<Item>) {
    let o = Object::new(obj);
    let spec = obj.get("spec");
    let text = |k: &str| {
        spec.and_then(|s| s.get(k))
            .and_then(Node::as_scalar)
            .map(str::to_string)
    };
    let (Some(mount), Some(path)) = (text("mount"), text("path")) else {
        return;
    };
    let vs = VaultStore {
        mount: Some(mount.clone()),
        v2: text("type").as_deref() != Some("kv-v1"),
    };
    let version = text("version").filter(|v| v != "0");
    items.push(Item {
        place: place(
            f,
            &o,
            spec.and_then(|s| s.get("path")).unwrap_or(obj),
            "spec.path".into(),
            format!("{mount}/{path}"),
        ),
        store: "vault".into(),
        dir: None,
        req: vs.request(&path, version.as_deref()),
        pick: Pick::Whole,
    });
}

/// The value of a finding's fingerprint: the reference text (never a value).
pub fn fingerprint_text(p: &Problem) -> Vec<u8> {
    format!("{}\0{}", p.code.code(), p.place.reference).into_bytes()
}
