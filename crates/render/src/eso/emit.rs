//! `--emit external-secrets`: a Secret whose values reference a remote store becomes an
//! `external-secrets.io/v1` ExternalSecret that makes the same Secret in the cluster, so no
//! value passes through Argo CD's repo-server or its cache.
//!
//! - Each distinct reference becomes one `spec.data` entry with a `remoteRef` (`key`,
//!   `property`, `version`). A value that is exactly one reference, without modifiers, maps
//!   straight to its Secret key; otherwise every value is written in `spec.target.template.data`
//!   (template engine v2) from the references and the literal text around them.
//! - Modifiers: `base64encode` (`b64enc`), `base64decode` (`b64dec`), `sha256sum`, `indent N`
//!   (`indent N | trimPrefix`), and a leading `jsonPath {.a.b}` (folded into the property as
//!   `key.a.b`). `jsonParse`, `yamlParse` and other JSONPath forms are errors naming the
//!   reference.
//! - SOPS (and env/echo) references stay resolved at render time, unless `strict`. References
//!   anywhere but a Secret's `data`/`stringData` are errors: their value would land in Argo CD's
//!   cache.

use std::collections::BTreeMap;

use base64::Engine as _;
use kustodian_manifest::{Node, NodeKind, Object, ScalarStyle};
use kustodian_refs::{Modifier, RefKind, Reference};
use kustodian_stores::Stores;

use super::template;
use crate::pipeline::{parse, plan, DocSettings};
use crate::RenderError;

/// The stores ESO reads for kustodian: references to them become ExternalSecrets.
pub const REMOTE_STORES: &[&str] = &["vault", "aws"];

/// How ExternalSecrets are written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Emit {
    /// `spec.secretStoreRef.name` (`--secret-store`); the Secret's
    /// `kustodian.io/secret-store` annotation wins.
    pub store: Option<String>,
    /// `SecretStore` or `ClusterSecretStore` (`--secret-store-kind`, default `SecretStore`);
    /// the `kustodian.io/secret-store-kind` annotation wins.
    pub store_kind: Option<String>,
    /// `spec.refreshInterval` (default `1h`).
    pub refresh_interval: Option<String>,
    /// Refuse SOPS (and other local) references instead of resolving them at render time.
    pub strict: bool,
}

impl Emit {
    /// The emit setting (`external-secrets`, `external-secrets,strict`) with the store it
    /// names; `None` for an empty setting, an error for an unknown one.
    pub fn from_setting(
        mode: Option<&str>,
        store: Option<String>,
        store_kind: Option<String>,
        refresh_interval: Option<String>,
    ) -> Result<Option<Emit>, String> {
        let Some(mode) = mode.map(str::trim).filter(|m| !m.is_empty()) else {
            return Ok(None);
        };
        let parts: Vec<&str> = mode.split(',').map(str::trim).collect();
        match parts.as_slice() {
            ["external-secrets"] | ["external-secrets", "strict"] => Ok(Some(Emit {
                store,
                store_kind,
                refresh_interval,
                strict: parts.len() == 2,
            })),
            _ => Err(format!(
                "emit mode {mode:?} is not known; use `external-secrets` or `external-secrets,strict`"
            )),
        }
    }

    /// The emit setting of a configuration (`KUSTODIAN_EMIT`, `KUSTODIAN_ESO_STORE`,
    /// `KUSTODIAN_ESO_STORE_KIND`: the operator's, else the Application's).
    pub fn from_config(c: &kustodian_stores::Config) -> Result<Option<Emit>, String> {
        let v = |n: &str| c.eso_var(n).map(str::to_string);
        Emit::from_setting(
            v("KUSTODIAN_EMIT").as_deref(),
            v("KUSTODIAN_ESO_STORE"),
            v("KUSTODIAN_ESO_STORE_KIND"),
            None,
        )
    }
}

/// Where a value of the Secret came from and what it is.
enum Item {
    /// Exactly one reference, no modifier left: maps straight to the key.
    Direct(RemoteRef),
    /// Text for `template.data`.
    Template(String),
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct RemoteRef {
    pub key: String,
    pub property: Option<String>,
    pub version: Option<String>,
}

/// Replaces each Secret of remote references in `docs` with an ExternalSecret. Documents without
/// references are left for the render; errors name the document and reference.
pub fn emit(docs: &mut [Node], stores: &Stores, opts: &Emit) -> Vec<RenderError> {
    let mut errors = Vec::new();
    for doc in docs.iter_mut() {
        let s = DocSettings::of(doc);
        if s.ignore {
            continue;
        }
        match emit_one(doc, &s, stores, opts) {
            Ok(Some(es)) => *doc = es,
            Ok(None) => {}
            Err(mut e) => errors.append(&mut e),
        }
    }
    errors
}

fn error(s: &DocSettings, r: Option<&Reference>, reason: impl Into<String>) -> RenderError {
    RenderError {
        document: s.name.clone(),
        reference: r.map(|r| r.to_string()),
        reason: reason.into(),
        store_wide: None,
    }
}

/// Every reference in a string scalar of `n` (keys never hold references).
fn refs_in(n: &Node, s: &DocSettings, out: &mut Vec<Reference>, errs: &mut Vec<RenderError>) {
    match &n.kind {
        NodeKind::Scalar { value, .. } if n.as_str().is_some() => match parse(value, s) {
            Ok(mut r) => out.append(&mut r),
            Err(e) => errs.push(error(s, None, e.to_string())),
        },
        NodeKind::Seq(items) => items.iter().for_each(|i| refs_in(i, s, out, errs)),
        NodeKind::Map(entries) => entries.iter().for_each(|e| refs_in(&e.value, s, out, errs)),
        NodeKind::Scalar { .. } => {}
    }
}

fn emit_one(
    doc: &Node,
    s: &DocSettings,
    stores: &Stores,
    opts: &Emit,
) -> Result<Option<Node>, Vec<RenderError>> {
    let o = Object::new(doc);
    let mut errs = Vec::new();
    let mut outside = Vec::new();
    let Some(entries) = doc.as_map() else {
        return Ok(None);
    };
    for e in entries {
        let key = e.key.as_scalar().unwrap_or("");
        if !(o.is_secret() && (key == "data" || key == "stringData")) {
            refs_in(&e.value, s, &mut outside, &mut errs);
        }
    }
    // The values of data/stringData, as text with their references.
    let mut values: Vec<(String, String, Vec<Reference>, bool)> = Vec::new();
    if o.is_secret() {
        for field in ["data", "stringData"] {
            for e in doc.get(field).and_then(Node::as_map).unwrap_or(&[]) {
                let (Some(k), Some(v)) = (e.key.as_scalar(), e.value.as_str()) else {
                    continue;
                };
                let (text, literal_b64) = secret_text(field, v);
                match parse(&text, s) {
                    Ok(r) => values.push((k.to_string(), text, r, literal_b64)),
                    Err(e) => errs.push(error(s, None, format!("{field}.{k}: {e}"))),
                }
            }
        }
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    let store_of = |r: &Reference| plan(r, s, stores).map(|p| p.store);
    for r in &outside {
        errs.push(error(
            s,
            Some(r),
            "with --emit external-secrets only a Secret's `data`/`stringData` may hold references: a value resolved here would land in Argo CD's cache; move it into a Secret",
        ));
    }
    let all: Vec<&Reference> = values.iter().flat_map(|v| v.2.iter()).collect();
    if all.is_empty() {
        return if errs.is_empty() { Ok(None) } else { Err(errs) };
    }
    let mut remote = 0;
    let mut remote_stores = std::collections::BTreeSet::new();
    for r in &all {
        match store_of(r) {
            Ok(st) if REMOTE_STORES.contains(&st.as_str()) => {
                remote += 1;
                remote_stores.insert(st);
            }
            Ok(st) if opts.strict => errs.push(error(
                s,
                Some(r),
                format!("--emit external-secrets,strict refuses references to the {st} store: ESO cannot read it, and resolving it here would put the value in Argo CD's cache; move the value to the remote store"),
            )),
            Ok(_) => {}
            Err(why) => errs.push(error(s, Some(r), why)),
        }
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    if remote == 0 {
        return Ok(None); // SOPS-only Secret: resolved at render time.
    }
    if remote != all.len() {
        return Err(vec![error(
            s,
            None,
            "mixes references to a remote store with SOPS (or env) references; ESO reads only the remote store and a resolved SOPS value would sit in the ExternalSecret, so split it into two Secrets",
        )]);
    }
    if remote_stores.len() > 1 {
        return Err(vec![error(
            s,
            None,
            format!(
                "references two remote stores ({}); an ExternalSecret reads one SecretStore, so split it into one Secret per store",
                remote_stores.into_iter().collect::<Vec<_>>().join(", ")
            ),
        )]);
    }
    let aws = remote_stores.contains("aws");
    build(doc, s, opts, &values, aws).map(Some)
}

/// The text of a Secret value to look for references in: `stringData` as is; `data` as is when it
/// holds a reference, else its base64-decoded text when that holds one. The flag says the value
/// is literal base64 data (no reference found either way).
fn secret_text(field: &str, v: &str) -> (String, bool) {
    if field != "data" || kustodian_refs::contains_reference_with_generic(v) {
        return (v.to_string(), false);
    }
    let compact: String = v.split_whitespace().collect();
    match base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
    {
        Some(t) if kustodian_refs::contains_reference_with_generic(&t) => (t, false),
        _ => (compact, true),
    }
}

/// The remote reference and the modifiers ESO must still apply.
fn remote_ref<'a>(
    r: &'a Reference,
    s: &DocSettings,
    aws: bool,
) -> Result<(RemoteRef, &'a [Modifier]), String> {
    let mut mods: &[Modifier] = &r.modifiers;
    let (key, mut property, version) = match &r.kind {
        RefKind::AvpPath { path, key, version } => {
            (path.clone(), Some(key.clone()), version.clone())
        }
        RefKind::AvpGeneric { key } => (
            s.path
                .clone()
                .ok_or("generic placeholder without an avp.kubernetes.io/path annotation")?,
            Some(key.clone()),
            s.secret_version.clone(),
        ),
        RefKind::Vals(v) => {
            let property = match &v.fragment {
                Some(tokens) => {
                    if tokens
                        .iter()
                        .any(|t| t.is_empty() || t.contains(['.', '*', '?', '|', '#', '@']))
                    {
                        return Err("a JSON pointer token that is empty or holds `.`, `*`, `?`, `|`, `#` or `@` has no ESO property form; name a plain key".into());
                    }
                    Some(tokens.join("."))
                }
                None => None,
            };
            if let Some((p, _)) = v.params.iter().find(|(p, _)| p != "version") {
                return Err(format!("the parameter `{p}` has no ESO remoteRef form; leave it out or render this Secret with kustodian"));
            }
            (
                v.path.clone(),
                property,
                v.param("version").map(str::to_string),
            )
        }
    };
    // ESO's AWS provider reads a version id as `uuid/ID`, anything else as a version stage.
    let version = match version {
        Some(v) if aws && looks_like_version_id(&v) => Some(format!("uuid/{v}")),
        other => other,
    };
    if let Some((Modifier::JsonPath(expr), rest)) = mods.split_first() {
        let path = simple_json_path(expr).ok_or_else(|| {
            format!("jsonPath {expr} has no ESO form: only a plain `{{.a.b}}` path (folded into the property) can be expressed")
        })?;
        property = Some(match property {
            Some(p) => format!("{p}.{path}"),
            None => path,
        });
        mods = rest;
    }
    Ok((
        RemoteRef {
            key,
            property,
            version,
        },
        mods,
    ))
}

/// AWS version ids are UUIDs (32 to 64 hex digits and dashes); stages are names.
fn looks_like_version_id(v: &str) -> bool {
    (32..=64).contains(&v.len()) && v.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

/// `{.a.b}` as `a.b`; `None` for any other JSONPath.
fn simple_json_path(expr: &str) -> Option<String> {
    let inner = expr.trim().strip_prefix("{.")?.strip_suffix('}')?;
    let ok = !inner.is_empty()
        && inner.split('.').all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        });
    ok.then(|| inner.to_string())
}

/// The template pipe for the modifiers left after the property.
fn pipe(mods: &[Modifier]) -> Result<String, String> {
    let mut out = String::new();
    for m in mods {
        out.push_str(&match m {
            Modifier::Base64Encode => " | b64enc".to_string(),
            Modifier::Base64Decode => " | b64dec".to_string(),
            Modifier::Sha256Sum => " | sha256sum".to_string(),
            Modifier::Indent(n) => {
                format!(" | indent {n} | trimPrefix {}", template::quote(&" ".repeat(*n)))
            }
            other => {
                return Err(format!(
                    "the modifier `{}` has no form in ESO's template functions; drop it, or render this Secret with kustodian",
                    other.name()
                ))
            }
        });
    }
    Ok(out)
}

fn string_map(pairs: impl IntoIterator<Item = (String, String)>) -> Node {
    let mut m = Node::map();
    for (k, v) in pairs {
        m.insert(&k, Node::string(v));
    }
    m
}

/// Labels or annotations of the Secret, without kustodian's and argocd-vault-plugin's own.
fn meta_map(doc: &Node, field: &str) -> Option<Node> {
    let entries = doc.get_path(&["metadata", field]).and_then(Node::as_map)?;
    let kept: Vec<(String, String)> = entries
        .iter()
        .filter_map(|e| {
            Some((
                e.key.as_scalar()?.to_string(),
                e.value.as_scalar()?.to_string(),
            ))
        })
        .filter(|(k, _)| !k.starts_with("kustodian.io/") && !k.starts_with("avp.kubernetes.io/"))
        .collect();
    (!kept.is_empty()).then(|| string_map(kept))
}

fn build(
    doc: &Node,
    s: &DocSettings,
    opts: &Emit,
    values: &[(String, String, Vec<Reference>, bool)],
    aws: bool,
) -> Result<Node, Vec<RenderError>> {
    let o = Object::new(doc);
    let mut errs = Vec::new();
    let store = o
        .annotation("kustodian.io/secret-store")
        .map(str::to_string)
        .or_else(|| opts.store.clone());
    let kind = o
        .annotation("kustodian.io/secret-store-kind")
        .map(str::to_string)
        .or_else(|| opts.store_kind.clone())
        .unwrap_or_else(|| "SecretStore".into());
    if !matches!(kind.as_str(), "SecretStore" | "ClusterSecretStore") {
        errs.push(error(
            s,
            None,
            format!("secret store kind {kind:?} is neither SecretStore nor ClusterSecretStore"),
        ));
    }
    let Some(store) = store.filter(|n| !n.trim().is_empty()) else {
        errs.push(error(s, None, "no secret store to name in the ExternalSecret: give --secret-store NAME (and --secret-store-kind), or annotate the Secret with kustodian.io/secret-store"));
        return Err(errs);
    };

    // Each value as a direct reference or template text.
    let mut items: Vec<(String, Item)> = Vec::new();
    let mut names: BTreeMap<RemoteRef, String> = BTreeMap::new();
    for (key, text, refs, literal_b64) in values {
        if *literal_b64 {
            items.push((
                key.clone(),
                Item::Template(format!("{{{{ {} | b64dec }}}}", template::quote(text))),
            ));
            continue;
        }
        let whole = refs.len() == 1 && refs[0].span == (0..text.len());
        let mut tpl = String::new();
        let mut at = 0;
        let mut direct = None;
        for r in refs {
            let (rr, mods) = match remote_ref(r, s, aws) {
                Ok(x) => x,
                Err(why) => {
                    errs.push(error(s, Some(r), why));
                    continue;
                }
            };
            let p = match pipe(mods) {
                Ok(p) => p,
                Err(why) => {
                    errs.push(error(s, Some(r), why));
                    continue;
                }
            };
            if whole && p.is_empty() {
                direct = Some(rr.clone());
            }
            let n = names.len();
            let name = names.entry(rr).or_insert_with(|| format!("ref{n}")).clone();
            tpl.push_str(&template::escape(&text[at..r.span.start]));
            tpl.push_str(&format!("{{{{ .{name}{p} }}}}"));
            at = r.span.end;
        }
        tpl.push_str(&template::escape(&text[at..]));
        items.push((
            key.clone(),
            direct.map_or(Item::Template(tpl), Item::Direct),
        ));
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    let all_direct = items.iter().all(|(_, i)| matches!(i, Item::Direct(_)));

    let mut es = Node::map();
    es.insert(
        "apiVersion",
        Node::scalar("external-secrets.io/v1", ScalarStyle::Plain),
    );
    es.insert("kind", Node::scalar("ExternalSecret", ScalarStyle::Plain));
    let name = o.name().unwrap_or("").to_string();
    let mut meta = Node::map();
    meta.insert("name", Node::string(&name));
    if let Some(ns) = o.namespace() {
        meta.insert("namespace", Node::string(ns));
    }
    let labels = meta_map(doc, "labels");
    let annotations = meta_map(doc, "annotations");
    if let Some(l) = &labels {
        meta.insert("labels", l.clone());
    }
    if let Some(a) = &annotations {
        meta.insert("annotations", a.clone());
    }
    es.insert("metadata", meta);

    let mut spec = Node::map();
    spec.insert(
        "refreshInterval",
        Node::string(opts.refresh_interval.clone().unwrap_or_else(|| "1h".into())),
    );
    let mut sref = Node::map();
    sref.insert("name", Node::string(store));
    sref.insert("kind", Node::string(kind));
    spec.insert("secretStoreRef", sref);

    let mut target = Node::map();
    target.insert("name", Node::string(&name));
    target.insert("creationPolicy", Node::string("Owner"));
    let mut tmpl = Node::map();
    tmpl.insert("engineVersion", Node::string("v2"));
    if let Some(t) = o.secret_type() {
        tmpl.insert("type", Node::string(t));
    }
    if labels.is_some() || annotations.is_some() {
        let mut m = Node::map();
        if let Some(l) = labels {
            m.insert("labels", l);
        }
        if let Some(a) = annotations {
            m.insert("annotations", a);
        }
        tmpl.insert("metadata", m);
    }
    let mut data = Node::seq();
    let entry = |secret_key: &str, r: &RemoteRef| {
        let mut rr = Node::map();
        rr.insert("key", Node::string(&r.key));
        if let Some(p) = &r.property {
            rr.insert("property", Node::string(p));
        }
        if let Some(v) = &r.version {
            rr.insert("version", Node::string(v));
        }
        let mut d = Node::map();
        d.insert("secretKey", Node::string(secret_key));
        d.insert("remoteRef", rr);
        d
    };
    let seq = data.as_seq_mut().expect("a sequence");
    if all_direct {
        for (k, i) in &items {
            if let Item::Direct(r) = i {
                seq.push(entry(k, r));
            }
        }
    } else {
        let mut by_name: Vec<(&String, &RemoteRef)> = names.iter().map(|(r, n)| (n, r)).collect();
        by_name.sort_by_key(|(n, _)| n[3..].parse::<usize>().unwrap_or(0));
        for (n, r) in by_name {
            seq.push(entry(n, r));
        }
        let tdata = string_map(items.into_iter().map(|(k, i)| {
            let t = match i {
                Item::Direct(r) => format!("{{{{ .{} }}}}", names[&r]),
                Item::Template(t) => t,
            };
            (k, t)
        }));
        tmpl.insert("data", tdata);
    }
    target.insert("template", tmpl);
    spec.insert("target", target);
    spec.insert("data", data);
    es.insert("spec", spec);
    Ok(es)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_json_paths_fold_into_the_property() {
        assert_eq!(simple_json_path("{.a.b}").as_deref(), Some("a.b"));
        assert_eq!(simple_json_path("{.a[0]}"), None);
        assert_eq!(simple_json_path("{.a}{':'}{.b}"), None);
    }

    #[test]
    fn modifiers_become_template_functions_or_errors() {
        assert_eq!(pipe(&[Modifier::Base64Encode]).unwrap(), " | b64enc");
        assert!(pipe(&[Modifier::Indent(2)])
            .unwrap()
            .contains("trimPrefix \"  \""));
        assert!(pipe(&[Modifier::JsonParse])
            .unwrap_err()
            .contains("jsonParse"));
    }
}
