//! Collect, fetch once, substitute.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use base64::Engine as _;
use kustodian_manifest::{Node, NodeKind, Object, ScalarStyle};
use kustodian_refs::{RefKind, Reference};
use kustodian_stores::{Request, SecretValue, StoreError, Stores};
use serde_json::Value;

use crate::modifiers::{self, ValueError};
use crate::{RenderError, StoreWide};

/// How a render runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// Most store requests in flight at once.
    pub concurrency: usize,
    /// Turn Secrets of remote references into ExternalSecrets instead of resolving them.
    pub emit: Option<crate::eso::Emit>,
    /// Render ExternalSecrets (with their SecretStore) into Secrets offline.
    pub resolve_external_secrets: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            concurrency: 8,
            emit: None,
            resolve_external_secrets: false,
        }
    }
}

/// What a render counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// References found in all documents.
    pub references: usize,
    /// Store requests made (one per distinct store, path and version).
    pub requests: usize,
}

/// The finished documents and what it took.
#[derive(Debug)]
pub struct Rendered {
    /// The documents, in input order, references resolved.
    pub docs: Vec<Node>,
    /// Counts.
    pub stats: Stats,
}

/// The annotations that steer a document, under `avp.kubernetes.io/` or `kustodian.io/`.
pub(crate) struct DocSettings {
    pub(crate) name: String,
    pub(crate) ignore: bool,
    pub(crate) path: Option<String>,
    kv_version: Option<String>,
    pub(crate) secret_version: Option<String>,
    remove_missing: bool,
    is_secret: bool,
    is_configmap: bool,
}

impl DocSettings {
    pub(crate) fn of(doc: &Node) -> Self {
        let o = Object::new(doc);
        let ann = |k: &str| {
            o.annotation(&format!("kustodian.io/{k}"))
                .or_else(|| o.annotation(&format!("avp.kubernetes.io/{k}")))
        };
        let truthy = |v: Option<&str>| v.is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        let mut name = o.display_name();
        if let Some(ns) = o.namespace() {
            name = format!("{name} (namespace {ns})");
        }
        DocSettings {
            name,
            ignore: truthy(ann("ignore")),
            path: ann("path")
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty()),
            kv_version: ann("kv-version").map(|p| p.trim().to_string()),
            secret_version: ann("secret-version").map(|p| p.trim().to_string()),
            remove_missing: truthy(ann("remove-missing")),
            is_secret: o.is_secret(),
            is_configmap: o.kind() == Some("ConfigMap"),
        }
    }
}

/// Which store and request a reference needs, and how to pick the value from the answer.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    pub(crate) store: String,
    pub(crate) req: Request,
    pick: Pick,
}

#[derive(Clone, Debug)]
enum Pick {
    Key(String),
    Pointer(Option<Vec<String>>),
}

pub(crate) fn plan(r: &Reference, s: &DocSettings, stores: &Stores) -> Result<Plan, String> {
    let mut params = Vec::new();
    if let Some(kv) = &s.kv_version {
        params.push(("kv-version".to_string(), kv.clone()));
    }
    match &r.kind {
        RefKind::AvpPath { path, key, version } => Ok(Plan {
            store: stores.config().placeholder_store(),
            req: Request {
                path: path.clone(),
                version: version.clone(),
                params,
            },
            pick: Pick::Key(key.clone()),
        }),
        RefKind::AvpGeneric { key } => {
            let path = s
                .path
                .clone()
                .ok_or("generic placeholder without an avp.kubernetes.io/path annotation")?;
            Ok(Plan {
                store: stores.config().placeholder_store(),
                req: Request {
                    path,
                    version: s.secret_version.clone(),
                    params,
                },
                pick: Pick::Key(key.clone()),
            })
        }
        RefKind::Vals(v) => {
            let mut version = None;
            for (k, val) in &v.params {
                if k == "version" {
                    version = Some(val.clone());
                } else {
                    params.push((k.clone(), val.clone()));
                }
            }
            let store = Stores::scheme_store(&v.scheme).to_string();
            if matches!(store.as_str(), "vault" | "aws" | "awsssm") {
                // vals paths leave out KV v2's `data/`; the vault store adds it. The AWS stores
                // shape a secret for a JSON pointer rather than for a placeholder key.
                params.push(("syntax".to_string(), "vals".to_string()));
            }
            params.sort();
            Ok(Plan {
                store,
                req: Request {
                    path: v.path.clone(),
                    version,
                    params,
                },
                pick: Pick::Pointer(v.fragment.clone()),
            })
        }
    }
}

type FetchKey = (String, Request);
type Fetched = BTreeMap<FetchKey, Result<SecretValue, Why>>;

/// Why a reference could not be resolved.
#[derive(Clone, Debug)]
enum Why {
    /// Not there (`remove-missing` may forgive it).
    Missing(String),
    /// Anything else about this reference.
    Bad(String),
    /// Its whole store could not be used; reported once per store and reason.
    Store { store: String, reason: String },
}

impl From<ValueError> for Why {
    fn from(e: ValueError) -> Self {
        match e {
            ValueError::Missing(m) => Why::Missing(m),
            ValueError::Bad(m) => Why::Bad(m),
        }
    }
}

/// Store-wide failures, one per store (parallel fetches may word the same failure differently,
/// the first is kept): store -> (reason, references affected, first document).
type Wide = BTreeMap<String, (String, usize, String)>;

/// Where a string sits, which decides how a resolved value is written back.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Site {
    Plain,
    /// A value of a Secret's `stringData` or a ConfigMap's `data`: always text.
    Text,
    /// A value of a Secret's `data`: base64 on the way out.
    SecretData,
}

/// Resolves every reference in `docs`, or explains every one that failed. With
/// [`Options::emit`], Secrets of remote references become ExternalSecrets first; with
/// [`Options::resolve_external_secrets`], ExternalSecrets become Secrets after the references
/// of the other documents are resolved (so a fetched value is never read as a reference).
/// Last, the leak guard checks every Secret.
pub fn render(
    mut docs: Vec<Node>,
    stores: &Stores,
    opts: &Options,
) -> Result<Rendered, Vec<RenderError>> {
    if let Some(emit) = &opts.emit {
        let errors = crate::eso::emit::emit(&mut docs, stores, emit);
        if !errors.is_empty() {
            return Err(errors);
        }
    }
    let mut r = resolve_references(docs, stores, opts)?;
    if opts.resolve_external_secrets {
        r.docs = crate::eso::resolve_external_secrets(r.docs, stores)?;
    }
    let leaks = crate::guard::leaks(&r.docs);
    if leaks.is_empty() {
        Ok(r)
    } else {
        Err(leaks)
    }
}

fn resolve_references(
    mut docs: Vec<Node>,
    stores: &Stores,
    opts: &Options,
) -> Result<Rendered, Vec<RenderError>> {
    let mut errors = Vec::new();
    let mut wanted: BTreeMap<FetchKey, ()> = BTreeMap::new();
    let mut stats = Stats::default();

    // 1. Collect.
    for doc in docs.iter_mut() {
        let s = DocSettings::of(doc);
        if s.ignore {
            continue;
        }
        visit(doc, &s, &mut |text, _site, _| {
            match parse(text, &s) {
                Ok(refs) => {
                    for r in &refs {
                        stats.references += 1;
                        match plan(r, &s, stores) {
                            Ok(p) => {
                                wanted.insert((p.store, p.req), ());
                            }
                            Err(why) => errors.push(err(&s, Some(r), why)),
                        }
                    }
                }
                Err(e) => errors.push(RenderError {
                    document: s.name.clone(),
                    reference: None,
                    reason: e.to_string(),
                    store_wide: None,
                }),
            }
            Visit::Keep
        });
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    // 2. Fetch each distinct request once, in parallel.
    let keys: Vec<FetchKey> = wanted.into_keys().collect();
    stats.requests = keys.len();
    let fetched = fetch_all(&keys, stores, opts.concurrency.max(1));

    // 3. Substitute. A store that could not be used at all is reported once, with the
    // number of references it left unresolved, not once per reference.
    let mut wide: Wide = BTreeMap::new();
    for doc in docs.iter_mut() {
        let s = DocSettings::of(doc);
        if s.ignore {
            continue;
        }
        visit(doc, &s, &mut |text, site, removable| {
            let refs = match parse(text, &s) {
                Ok(r) if !r.is_empty() => r,
                _ => return Visit::Keep,
            };
            match resolve_string(text, &refs, site, &s, stores, &fetched).map_err(|e| *e) {
                Ok(node) => Visit::Replace(node),
                Err((_, Why::Missing(_))) if removable && s.remove_missing => Visit::Remove,
                Err((_, Why::Store { store, reason })) => {
                    let n = refs
                        .iter()
                        .filter(|r| {
                            plan(r, &s, stores).is_ok_and(|p| {
                                p.store == store
                                    && matches!(
                                        fetched.get(&(p.store.clone(), p.req)),
                                        Some(Err(Why::Store { .. }))
                                    )
                            })
                        })
                        .count();
                    let entry = wide.entry(store).or_insert((reason, 0, s.name.clone()));
                    entry.1 += n.max(1);
                    Visit::Keep
                }
                Err((r, Why::Missing(why) | Why::Bad(why))) => {
                    errors.push(err(&s, Some(&r), why));
                    Visit::Keep
                }
            }
        });
    }
    let wide_errors = wide
        .into_iter()
        .map(|(store, (reason, references, document))| RenderError {
            document,
            reference: None,
            reason,
            store_wide: Some(StoreWide { store, references }),
        });
    errors.splice(0..0, wide_errors);
    if errors.is_empty() {
        Ok(Rendered { docs, stats })
    } else {
        Err(errors)
    }
}

fn err(s: &DocSettings, r: Option<&Reference>, reason: String) -> RenderError {
    RenderError {
        document: s.name.clone(),
        reference: r.map(|r| r.to_string()),
        reason,
        store_wide: None,
    }
}

pub(crate) fn parse(
    text: &str,
    s: &DocSettings,
) -> Result<Vec<Reference>, kustodian_refs::ParseError> {
    if s.path.is_some() {
        kustodian_refs::parse_all_with_generic(text)
    } else {
        kustodian_refs::parse_all(text)
    }
}

fn fetch_all(keys: &[FetchKey], stores: &Stores, concurrency: usize) -> Fetched {
    let results: Mutex<Fetched> = Mutex::new(BTreeMap::new());
    let next = AtomicUsize::new(0);
    let workers = concurrency.min(keys.len());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(key) = keys.get(i) else { break };
                let r = stores
                    .get(&key.0)
                    .and_then(|st| st.fetch(&key.1))
                    .map_err(|e| why(&key.0, &e));
                results
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key.clone(), r);
            });
        }
    });
    results.into_inner().unwrap_or_else(|e| e.into_inner())
}

/// A store error as a reason: store-wide, "not there" (which `remove-missing` forgives), or
/// about this reference.
fn why(store: &str, e: &StoreError) -> Why {
    if e.is_store_wide() {
        Why::Store {
            store: e.store().unwrap_or(store).to_string(),
            reason: e.to_string(),
        }
    } else if matches!(e, StoreError::NotFound { .. }) {
        Why::Missing(e.to_string())
    } else {
        Why::Bad(e.to_string())
    }
}

/// A reference that could not be resolved, and why (boxed: it is large and rare).
type Failed = Box<(Reference, Why)>;

/// Resolves one string: the node to put in its place, or the first failing reference.
fn resolve_string(
    text: &str,
    refs: &[Reference],
    site: Site,
    s: &DocSettings,
    stores: &Stores,
    fetched: &Fetched,
) -> Result<Node, Failed> {
    let value_of = |r: &Reference| -> Result<Value, Failed> {
        let fail = |e: Why| Box::new((r.clone(), e));
        let p = plan(r, s, stores).map_err(|e| fail(Why::Bad(e)))?;
        let doc = match fetched.get(&(p.store, p.req)) {
            Some(Ok(doc)) => doc,
            Some(Err(e)) => return Err(fail(e.clone())),
            None => return Err(fail(Why::Bad("internal: reference was not fetched".into()))),
        };
        let v = match &p.pick {
            Pick::Key(k) => modifiers::select_key(doc.expose(), k),
            Pick::Pointer(Some(t)) => modifiers::select_pointer(doc.expose(), t),
            Pick::Pointer(None) => Ok(doc.expose().clone()),
        }
        .map_err(|e| fail(e.into()))?;
        modifiers::apply(v, &r.modifiers).map_err(|e| fail(e.into()))
    };

    // A string that is one reference and nothing else keeps the value's type (a map from
    // `jsonParse`, a number), except in a Secret's data, which is always text.
    let whole = refs.len() == 1 && text.trim() == &text[refs[0].span.clone()];
    if whole && site == Site::Plain {
        let v = value_of(&refs[0])?;
        return Ok(match v {
            Value::String(s) => Node::scalar(s, ScalarStyle::DoubleQuoted),
            other => Node::from_json(&other),
        });
    }
    let out =
        kustodian_refs::substitute(text, refs, |r| value_of(r).map(|v| modifiers::to_text(&v)))?;
    Ok(Node::scalar(out, ScalarStyle::DoubleQuoted))
}

enum Visit {
    Keep,
    Replace(Node),
    Remove,
}

/// Calls `f` on every string value (never keys) that may hold references, with its site and
/// whether the entry could be dropped by `remove-missing`; applies what `f` answers.
fn visit(doc: &mut Node, s: &DocSettings, f: &mut dyn FnMut(&str, Site, bool) -> Visit) {
    let NodeKind::Map(entries) = &mut doc.kind else {
        walk(doc, f);
        return;
    };
    let mut i = 0;
    while i < entries.len() {
        let key = entries[i].key.as_scalar().unwrap_or("").to_string();
        let data_map = (s.is_secret && (key == "data" || key == "stringData"))
            || (s.is_configmap && key == "data");
        if data_map {
            let site = if s.is_secret && key == "data" {
                Site::SecretData
            } else {
                Site::Text
            };
            if let NodeKind::Map(items) = &mut entries[i].value.kind {
                let mut j = 0;
                while j < items.len() {
                    let action = match &items[j].value.kind {
                        NodeKind::Scalar { value, .. } if site == Site::SecretData => {
                            secret_data(value, f)
                        }
                        NodeKind::Scalar { value, .. } if items[j].value.as_str().is_some() => {
                            f(value, site, true)
                        }
                        _ => {
                            walk(&mut items[j].value, f);
                            Visit::Keep
                        }
                    };
                    match action {
                        Visit::Keep => j += 1,
                        Visit::Replace(n) => {
                            items[j].value = n;
                            j += 1;
                        }
                        Visit::Remove => {
                            items.remove(j);
                        }
                    }
                }
                i += 1;
                continue;
            }
        }
        walk(&mut entries[i].value, f);
        i += 1;
    }
}

/// A `data` value of a Secret: references written directly, or inside base64 text.
fn secret_data(value: &str, f: &mut dyn FnMut(&str, Site, bool) -> Visit) -> Visit {
    let b64 = base64::engine::general_purpose::STANDARD;
    let encode = |v: Visit| match v {
        Visit::Replace(n) => Visit::Replace(Node::scalar(
            b64.encode(n.as_scalar().unwrap_or("")),
            ScalarStyle::Plain,
        )),
        other => other,
    };
    if kustodian_refs::contains_reference_with_generic(value) {
        return encode(f(value, Site::SecretData, true));
    }
    let compact: String = value.split_whitespace().collect();
    if let Ok(bytes) = b64.decode(compact.as_bytes()) {
        if let Ok(text) = String::from_utf8(bytes) {
            if kustodian_refs::contains_reference_with_generic(&text) {
                return encode(f(&text, Site::SecretData, true));
            }
        }
    }
    Visit::Keep
}

fn walk(n: &mut Node, f: &mut dyn FnMut(&str, Site, bool) -> Visit) {
    if n.as_str().is_some() {
        let action = match &n.kind {
            NodeKind::Scalar { value, .. } => f(value, Site::Plain, false),
            _ => Visit::Keep,
        };
        if let Visit::Replace(new) = action {
            let span = n.span;
            *n = new;
            n.span = span;
        }
        return;
    }
    match &mut n.kind {
        NodeKind::Seq(items) => items.iter_mut().for_each(|i| walk(i, f)),
        NodeKind::Map(entries) => entries.iter_mut().for_each(|e| walk(&mut e.value, f)),
        NodeKind::Scalar { .. } => {}
    }
}
