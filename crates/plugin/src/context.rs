//! Where a plugin run resolves against: the working directory kustomize or kpt gave it, the
//! folder relative store paths start from, and the configuration variables: the operator's
//! (the process environment) and the application's (`ARGOCD_ENV_*`, a plugin config's `env`,
//! a KRM ConfigMap's `data`), kept apart by [`Config`].

use std::path::{Path, PathBuf};

use kustodian_manifest::Node;
use kustodian_stores::Config;

use super::config::Settings;

/// Something that kept a plugin run from finishing: which document, and why. Never holds a
/// secret value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The document (`Kind/name`, with the namespace when it has one), if the problem is about one.
    pub document: Option<String>,
    /// What went wrong and how to fix it.
    pub message: String,
}

impl Problem {
    /// A problem that is not about one document.
    pub fn general(message: impl Into<String>) -> Self {
        Problem {
            document: None,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The place and configuration of one run.
#[derive(Clone, Debug)]
pub struct Context {
    /// The repository root, fixed once from the working directory (see [`kustodian_render::input::repo_root`]); no
    /// configuration moves it.
    root: PathBuf,
    /// The folder relative store paths and files start from; always inside `root`.
    pub base: PathBuf,
    /// The process environment (operator variables and `ARGOCD_ENV_*`).
    vars: Vec<(String, String)>,
    /// The plugin config's `env` / the ConfigMap's `data`: application variables.
    app: Vec<(String, String)>,
    /// Most store requests in flight at once.
    pub concurrency: usize,
}

impl Context {
    /// A context for a run in `cwd` with a configuration's settings: the root is the repository
    /// root of `cwd`, and `dir` (relative to `cwd`) must stay inside it.
    pub fn new(cwd: &Path, s: &Settings) -> Result<Context, Problem> {
        let base = match &s.dir {
            Some(d) if !d.is_empty() => cwd.join(d),
            _ => cwd.to_path_buf(),
        };
        // Warns on stderr (names only) about `ARGOCD_ENV_*` variables that name operator
        // settings; the plugin config's own `env` is checked when it is parsed.
        let vars: Vec<(String, String)> = kustodian_stores::config::process_vars().collect();
        let operator = Config::from_vars(cwd, cwd, vars.iter().cloned());
        operator.print_warnings();
        // The operator's limit (default 8); a plugin config may ask for less, never more.
        let limit = operator
            .var("KUSTODIAN_CONCURRENCY")
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(8);
        let concurrency = s.concurrency.filter(|n| *n > 0).unwrap_or(limit).min(limit);
        Context {
            root: kustodian_render::input::repo_root(cwd),
            base: cwd.to_path_buf(),
            vars,
            app: s.env.clone(),
            concurrency,
        }
        .with_base(&base)
    }

    /// The same configuration and root against another folder, which must be inside the root.
    pub fn with_base(&self, base: &Path) -> Result<Context, Problem> {
        let base = confine_dir(&self.root, base)?;
        Ok(Context {
            base,
            ..self.clone()
        })
    }

    /// The store configuration for this run.
    pub fn config(&self) -> Config {
        Config::from_vars(&self.root, &self.base, self.vars.iter().cloned())
            .with_app_vars(self.app.iter().cloned())
    }

    /// Resolves every reference in `docs`; all or nothing.
    pub fn resolve(&self, docs: Vec<Node>) -> Result<Vec<Node>, Vec<Problem>> {
        let config = self.config();
        // The emit setting (`KUSTODIAN_EMIT`, or the Application's `ARGOCD_ENV_` twin, a
        // plugin config's `env`, a KRM ConfigMap's `data`).
        let emit = kustodian_render::eso::Emit::from_config(&config)
            .map_err(|e| vec![Problem::general(e)])?;
        let stores = kustodian_stores::Stores::new(config);
        match kustodian_render::render(
            docs,
            &stores,
            &kustodian_render::Options {
                concurrency: self.concurrency,
                emit,
                ..Default::default()
            },
        ) {
            Ok(r) => Ok(r.docs),
            Err(errs) => Err(problems(errs)),
        }
    }

    /// Resolves the documents for which `skip` is false, leaving the others as they are.
    pub fn resolve_except(
        &self,
        docs: &mut [Node],
        skip: impl Fn(&Node) -> bool,
    ) -> Result<(), Vec<Problem>> {
        let picked: Vec<usize> = (0..docs.len()).filter(|&i| !skip(&docs[i])).collect();
        let taken: Vec<Node> = picked
            .iter()
            .map(|&i| std::mem::replace(&mut docs[i], Node::map()))
            .collect();
        let originals = taken.clone();
        match self.resolve(taken) {
            Ok(done) => {
                for (i, d) in picked.into_iter().zip(done) {
                    docs[i] = d;
                }
                Ok(())
            }
            Err(p) => {
                for (i, d) in picked.into_iter().zip(originals) {
                    docs[i] = d;
                }
                Err(p)
            }
        }
    }
}

/// `dir`, canonical, if it is a folder inside `root`; else a problem saying how to fix it.
fn confine_dir(root: &Path, dir: &Path) -> Result<PathBuf, Problem> {
    let real = dir.canonicalize().map_err(|_| {
        Problem::general(format!(
            "{}: not a folder; set `dir` in the plugin configuration to a folder (relative to the kustomization) your references are relative to",
            dir.display()
        ))
    })?;
    if !real.is_dir() {
        return Err(Problem::general(format!(
            "{}: not a folder; set `dir` in the plugin configuration to the folder your references are relative to",
            dir.display()
        )));
    }
    if !real.starts_with(root) {
        return Err(Problem::general(format!(
            "{}: `dir` leaves the repository ({}); the repository root is fixed by the working directory and no configuration can move it, so keep `dir` inside the repository",
            dir.display(),
            root.display()
        )));
    }
    Ok(real)
}

/// Documents a resolve must leave alone: plugin configurations (resolving their references
/// would write secrets into a config file that `kpt fn render` writes back), Kptfiles, and
/// objects marked `config.kubernetes.io/local-config`.
pub fn is_tool_document(d: &Node) -> bool {
    let o = kustodian_manifest::Object::new(d);
    super::config::is_plugin_config(d)
        || (o.kind() == Some("Kptfile") && o.group() == "kpt.dev")
        || o.annotation("config.kubernetes.io/local-config")
            .is_some_and(|v| v.trim() == "true")
}

fn problems(errs: Vec<kustodian_render::RenderError>) -> Vec<Problem> {
    errs.into_iter()
        .map(|e| Problem {
            document: Some(e.document.clone()),
            message: e.to_string(),
        })
        .collect()
}

/// The leak guard over documents that did not pass through the render pipeline: one problem
/// per Secret value still carrying a reference marker.
pub fn leak_problems(docs: &[Node]) -> Vec<Problem> {
    problems(kustodian_render::guard::leaks(docs))
}
