//! The KRM function: a `config.kubernetes.io/v1` `ResourceList` in, the same out.
//!
//! - No `functionConfig`, a `Resolver`, or a `ConfigMap` (from `kpt fn eval ... -- k=v`):
//!   resolve references in every item, leaving plugin configs, Kptfiles and local-config
//!   objects alone. Relative store paths start from `dir` (relative to the working directory)
//!   when it is set, else from the item's kpt package (`internal.config.kubernetes.io/package-path`,
//!   set by `kpt fn render`), else from the working directory.
//! - A `SecretGenerator` or `ksops`: append the generated objects. An item with the same
//!   kind, name and namespace is replaced (keeping its file annotations, so `kpt fn render`
//!   writes it back where it was); when the config is the only item (kustomize's generator
//!   call), the output holds the generated objects alone.
//! - Problems become `results` (severity `error` or `warning`, never secret text), the items
//!   are returned unchanged, and the exit code is 1.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kustodian_manifest::{Node, Object, ScalarStyle};

use super::config::{self, PluginConfig};
use super::context::{is_tool_document, Context, Problem};
use super::generate;

const PACKAGE_PATH: &str = "internal.config.kubernetes.io/package-path";

/// One entry of `results`.
#[derive(Clone, Debug)]
struct Result_ {
    severity: &'static str,
    message: String,
    document: Option<String>,
}

/// What a function run returns: the ResourceList text and whether it succeeded.
pub struct Outcome {
    /// The ResourceList to print.
    pub output: String,
    /// Problems, one line each, for stderr.
    pub errors: Vec<String>,
}

impl Outcome {
    /// Whether the run succeeded.
    pub fn ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Runs the function on a ResourceList, in working directory `cwd`.
pub fn process(input: &str, cwd: &Path) -> Outcome {
    let fail = |items: Vec<Node>, message: String| {
        finish(
            items,
            vec![Result_ {
                severity: "error",
                message,
                document: None,
            }],
        )
    };
    let docs = match kustodian_manifest::parse_stream(input) {
        Ok(d) => d,
        Err(e) => {
            return fail(
                Vec::new(),
                format!("the input is not YAML (line {}, column {}): {}; a KRM function reads a ResourceList on stdin", e.pos.line, e.pos.column, e.message),
            )
        }
    };
    let Some(list) = docs.into_iter().next().map(|d| d.root) else {
        return fail(
            Vec::new(),
            "no input; a KRM function reads a ResourceList on stdin".into(),
        );
    };
    let o = Object::new(&list);
    if o.kind() != Some("ResourceList")
        || !o
            .api_version()
            .is_some_and(|v| v.starts_with("config.kubernetes.io/"))
    {
        return fail(
            Vec::new(),
            "the input is not a config.kubernetes.io/v1 ResourceList; run `kustodian krm` from kustomize or kpt, or use `kustodian render` for plain manifests".into(),
        );
    }
    let items: Vec<Node> = list
        .get("items")
        .and_then(Node::as_seq)
        .map(<[Node]>::to_vec)
        .unwrap_or_default();
    if let Some(why) = super::kpt::in_place_refusal(&items) {
        return fail(items, why);
    }
    let function_config = list
        .get("functionConfig")
        .filter(|f| f.as_map().is_some_and(|m| !m.is_empty()));

    let parsed = match function_config {
        None => config::Parsed {
            config: PluginConfig::Resolver(Default::default()),
            warnings: Vec::new(),
        },
        Some(fc) => match config::parse(fc) {
            Ok(p) => p,
            Err(e) => return fail(items, format!("functionConfig: {}; {}", e.what(), e.help())),
        },
    };
    let mut results: Vec<Result_> = parsed
        .warnings
        .iter()
        .map(|w| Result_ {
            severity: "warning",
            message: w.clone(),
            document: None,
        })
        .collect();
    let settings = parsed.config.settings().clone();

    let outcome = match &parsed.config {
        PluginConfig::Resolver(_) => resolve_items(items.clone(), cwd, &settings),
        PluginConfig::SecretGenerator(spec, _) => {
            generator_context(cwd, &settings, function_config, &items)
                .and_then(|ctx| generate::secret_generator(spec, &ctx))
                .map(|g| merge_generated(items.clone(), function_config, g))
        }
        PluginConfig::Ksops(spec, _) => generator_context(cwd, &settings, function_config, &items)
            .and_then(|ctx| generate::ksops(spec, &ctx))
            .map(|g| merge_generated(items.clone(), function_config, g)),
    };
    match outcome {
        Ok(out) => finish(out, results),
        Err(problems) => {
            results.extend(problems.into_iter().map(|p| Result_ {
                severity: "error",
                message: p.message,
                document: p.document,
            }));
            finish(items, results)
        }
    }
}

/// The context a generator runs in: files are read from `dir`, else the config's (or the
/// items') kpt package, else the working directory; inside the repository root of the working
/// directory in every case.
fn generator_context(
    cwd: &Path,
    s: &config::Settings,
    fc: Option<&Node>,
    items: &[Node],
) -> Result<Context, Vec<Problem>> {
    let ctx = Context::new(cwd, s).map_err(|p| vec![p])?;
    if s.dir.as_deref().is_some_and(|d| !d.is_empty()) {
        return Ok(ctx);
    }
    match fc
        .into_iter()
        .chain(items.iter())
        .find_map(|n| Object::new(n).annotation(PACKAGE_PATH).map(PathBuf::from))
    {
        Some(package) => ctx.with_base(&cwd.join(package)).map_err(|p| vec![p]),
        None => Ok(ctx),
    }
}

fn resolve_items(
    mut items: Vec<Node>,
    cwd: &Path,
    s: &config::Settings,
) -> Result<Vec<Node>, Vec<Problem>> {
    let ctx = Context::new(cwd, s).map_err(|p| vec![p])?;
    let mut groups: BTreeMap<PathBuf, Vec<usize>> = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        if is_tool_document(item) {
            continue;
        }
        let base = match s.dir.as_deref().filter(|d| !d.is_empty()) {
            Some(_) => ctx.base.clone(),
            None => Object::new(item)
                .annotation(PACKAGE_PATH)
                .map(|p| cwd.join(p))
                .unwrap_or_else(|| cwd.to_path_buf()),
        };
        groups.entry(base).or_default().push(i);
    }
    let mut problems = Vec::new();
    let mut done: Vec<(usize, Node)> = Vec::new();
    for (base, idx) in groups {
        let taken: Vec<Node> = idx.iter().map(|&i| items[i].clone()).collect();
        match ctx
            .with_base(&base)
            .map_err(|p| vec![p])
            .and_then(|c| c.resolve(taken))
        {
            Ok(out) => done.extend(idx.into_iter().zip(out)),
            Err(p) => problems.extend(p),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    for (i, n) in done {
        items[i] = n;
    }
    Ok(items)
}

fn identity(n: &Node) -> (String, String, String, String) {
    let o = Object::new(n);
    (
        o.group().to_string(),
        o.kind().unwrap_or("").to_string(),
        o.name().unwrap_or("").to_string(),
        o.namespace().unwrap_or("").to_string(),
    )
}

/// Adds generated objects to the items (see the module docs).
fn merge_generated(mut items: Vec<Node>, fc: Option<&Node>, generated: Vec<Node>) -> Vec<Node> {
    if let (Some(fc), [only]) = (fc, items.as_slice()) {
        if identity(only) == identity(fc) {
            items.clear();
        }
    }
    for mut g in generated {
        let id = identity(&g);
        match items.iter().position(|i| identity(i) == id) {
            Some(pos) => {
                let keep: Vec<(String, Node)> = items[pos]
                    .get_path(&["metadata", "annotations"])
                    .and_then(Node::as_map)
                    .unwrap_or(&[])
                    .iter()
                    .filter_map(|e| {
                        let k = e.key.as_scalar()?;
                        (k.starts_with("config.kubernetes.io/")
                            || k.starts_with("internal.config.kubernetes.io/"))
                        .then(|| (k.to_string(), e.value.clone()))
                    })
                    .collect();
                if !keep.is_empty() {
                    if let Some(meta) = g.get_mut("metadata") {
                        if meta.get("annotations").is_none() {
                            meta.insert("annotations", Node::map());
                        }
                        if let Some(a) = meta.get_mut("annotations") {
                            for (k, v) in keep {
                                a.insert(&k, v);
                            }
                        }
                    }
                }
                items[pos] = g;
            }
            None => items.push(g),
        }
    }
    items
}

fn display(n: &Node) -> String {
    let o = Object::new(n);
    match o.namespace() {
        Some(ns) => format!("{} (namespace {ns})", o.display_name()),
        None => o.display_name(),
    }
}

fn finish(items: Vec<Node>, results: Vec<Result_>) -> Outcome {
    let by_name: BTreeMap<String, &Node> = items.iter().map(|i| (display(i), i)).collect();
    let mut list = Node::map();
    list.insert(
        "apiVersion",
        Node::scalar("config.kubernetes.io/v1", ScalarStyle::Plain),
    );
    list.insert("kind", Node::scalar("ResourceList", ScalarStyle::Plain));
    let mut seq = Node::seq();
    if let Some(s) = seq.as_seq_mut() {
        s.extend(items.iter().cloned());
    }
    list.insert("items", seq);
    let errors: Vec<String> = results
        .iter()
        .filter(|r| r.severity == "error")
        .map(|r| r.message.clone())
        .collect();
    if !results.is_empty() {
        let mut rs = Node::seq();
        for r in &results {
            let mut n = Node::map();
            n.insert("message", Node::string(&r.message));
            n.insert("severity", Node::scalar(r.severity, ScalarStyle::Plain));
            if let Some(item) = r.document.as_ref().and_then(|d| by_name.get(d)) {
                let o = Object::new(item);
                let mut rr = Node::map();
                for (k, v) in [
                    ("apiVersion", o.api_version()),
                    ("kind", o.kind()),
                    ("name", o.name()),
                    ("namespace", o.namespace()),
                ] {
                    if let Some(v) = v {
                        rr.insert(k, Node::string(v));
                    }
                }
                n.insert("resourceRef", rr);
                if let Some(p) = o
                    .annotation("config.kubernetes.io/path")
                    .or_else(|| o.annotation("internal.config.kubernetes.io/path"))
                {
                    let mut f = Node::map();
                    f.insert("path", Node::string(p));
                    n.insert("file", f);
                }
            }
            if let Some(s) = rs.as_seq_mut() {
                s.push(n);
            }
        }
        list.insert("results", rs);
    }
    Outcome {
        output: kustodian_manifest::emit_document(&list),
        errors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items_of(out: &str) -> Vec<Node> {
        let list = kustodian_manifest::parse_stream(out)
            .unwrap()
            .remove(0)
            .root;
        list.get("items")
            .and_then(Node::as_seq)
            .map(<[Node]>::to_vec)
            .unwrap_or_default()
    }

    #[test]
    fn resolves_items_and_keeps_tool_annotations() {
        let cwd = std::env::current_dir().unwrap();
        let input = "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: c\n    annotations: {config.kubernetes.io/index: '0', config.k8s.io/id: '1'}\n  data: {a: 'ref+echo://hello'}\n";
        let out = process(input, &cwd);
        assert!(out.ok(), "{:?}", out.errors);
        let items = items_of(&out.output);
        assert_eq!(
            items[0].get_path(&["data", "a"]).and_then(Node::as_scalar),
            Some("hello")
        );
        assert_eq!(
            Object::new(&items[0]).annotation("config.k8s.io/id"),
            Some("1")
        );
    }

    #[test]
    fn errors_become_results_and_items_stay() {
        let cwd = std::env::current_dir().unwrap();
        let input = "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: c, annotations: {config.kubernetes.io/path: c.yaml}}\n  data: {a: 'ref+nosuchstore://x'}\n";
        let out = process(input, &cwd);
        assert!(!out.ok());
        let list = kustodian_manifest::parse_stream(&out.output)
            .unwrap()
            .remove(0)
            .root;
        let r = &list.get("results").and_then(Node::as_seq).unwrap()[0];
        assert_eq!(r.get("severity").and_then(Node::as_scalar), Some("error"));
        assert_eq!(
            r.get_path(&["resourceRef", "name"])
                .and_then(Node::as_scalar),
            Some("c")
        );
        assert_eq!(
            r.get_path(&["file", "path"]).and_then(Node::as_scalar),
            Some("c.yaml")
        );
        assert_eq!(
            items_of(&out.output)[0]
                .get_path(&["data", "a"])
                .and_then(Node::as_scalar),
            Some("ref+nosuchstore://x")
        );
    }

    #[test]
    fn generator_with_config_as_only_item() {
        let cwd = std::env::current_dir().unwrap();
        let fc = "apiVersion: kustodian.io/v1\n  kind: SecretGenerator\n  metadata: {name: gen}\n  stringData: {a: 'ref+echo://x'}";
        let input = format!("apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n- {fc}\nfunctionConfig:\n  {fc}\n");
        let out = process(&input, &cwd);
        assert!(out.ok(), "{:?}", out.errors);
        let items = items_of(&out.output);
        assert_eq!(items.len(), 1);
        assert_eq!(Object::new(&items[0]).kind(), Some("Secret"));
        assert_eq!(
            Object::new(&items[0]).annotation(generate::NEEDS_HASH),
            Some("true")
        );
    }

    #[test]
    fn not_a_resource_list() {
        let out = process("apiVersion: v1\nkind: ConfigMap\n", Path::new("."));
        assert!(!out.ok());
    }
}
