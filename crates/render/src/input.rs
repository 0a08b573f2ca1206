//! What `kustodian render` reads: a kustomization, a Helm chart, a folder of manifests, a stream.
//!
//! - A folder with `kustomization.yaml` (`.yml`, `Kustomization`) is built with `kustomize build`
//!   when `kustomize` is on PATH, else `kubectl kustomize`; extra flags come from
//!   `KUSTODIAN_KUSTOMIZE_ARGS` (e.g. `--enable-helm --enable-alpha-plugins`).
//! - A folder with `Chart.yaml` is built with `helm template` (helm must be on PATH).
//! - Any other folder: every `.yaml`, `.yml` and `.json` file below it, recursively, in path
//!   order; hidden files and folders are skipped, SOPS-encrypted files are stores and never
//!   output, and documents that are not Kubernetes objects (no `kind`) are left out.

use std::path::{Path, PathBuf};
use std::process::Command;

use kustodian_manifest::{parse_stream, Node, Object};

/// Why input could not be read. Messages carry no file contents.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// A file or stream is not valid YAML/JSON.
    #[error("{name}:{line}:{column}: {message}")]
    Parse {
        /// File name (or `<stdin>`, `<kustomize output>`).
        name: String,
        /// The text, for a diagnostic with a source snippet (not secret: it is the input manifest).
        text: String,
        /// Byte offset of the problem.
        offset: usize,
        /// Line, from 1.
        line: usize,
        /// Column, from 1.
        column: usize,
        /// What the parser said.
        message: String,
    },
    /// A build tool failed or is missing.
    #[error("{tool}: {message}")]
    Tool {
        /// `kustomize`, `kubectl kustomize`, `helm`.
        tool: String,
        /// Its exit status and stderr, or why it could not start.
        message: String,
    },
    /// A file could not be read.
    #[error("{path}: {message}")]
    Io {
        /// The path.
        path: String,
        /// Why.
        message: String,
    },
}

/// Documents parsed from a stream; `name` is used in messages.
pub fn load_stream(text: &str, name: &str) -> Result<Vec<Node>, InputError> {
    let docs = parse_stream(text).map_err(|e| InputError::Parse {
        name: name.to_string(),
        text: text.to_string(),
        offset: e.pos.offset,
        line: e.pos.line,
        column: e.pos.column,
        message: e.message,
    })?;
    Ok(docs.into_iter().map(|d| d.root).collect())
}

/// Documents from a folder, built with kustomize or helm when it is one of theirs.
pub fn load_dir(dir: &Path) -> Result<Vec<Node>, InputError> {
    if ["kustomization.yaml", "kustomization.yml", "Kustomization"]
        .iter()
        .any(|f| dir.join(f).is_file())
    {
        let out = kustomize(dir)?;
        return load_stream(&out, "<kustomize output>");
    }
    if dir.join("Chart.yaml").is_file() {
        let out = helm(dir)?;
        return load_stream(&out, "<helm template output>");
    }
    let mut files = Vec::new();
    collect_files(dir, &mut files)?;
    files.sort();
    let mut docs = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|e| InputError::Io {
            path: f.display().to_string(),
            message: e.to_string(),
        })?;
        let name = f.strip_prefix(dir).unwrap_or(&f).display().to_string();
        for d in load_stream(&text, &name)? {
            if kustodian_sops::is_sops_document(&d) || Object::new(&d).kind().is_none() {
                continue;
            }
            docs.push(d);
        }
    }
    Ok(docs)
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), InputError> {
    let rd = std::fs::read_dir(dir).map_err(|e| InputError::Io {
        path: dir.display().to_string(),
        message: e.to_string(),
    })?;
    for entry in rd.flatten() {
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let p = entry.path();
        let ft = match entry.file_type() {
            Ok(t) => t,
            Err(_) => continue,
        };
        if ft.is_dir() {
            collect_files(&p, out)?;
        } else if matches!(
            p.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            out.push(p);
        }
    }
    Ok(())
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|p| p.join(tool).is_file()))
        .unwrap_or(false)
}

fn kustomize(dir: &Path) -> Result<String, InputError> {
    // Deliberately no ARGOCD_ENV_ twin: an Application must not be able to turn on kustomize
    // plugins or exec functions in the sidecar that holds the keys.
    let extra: Vec<String> = std::env::var("KUSTODIAN_KUSTOMIZE_ARGS")
        .map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    let (tool, mut cmd) = if on_path("kustomize") {
        let mut c = Command::new("kustomize");
        c.arg("build");
        ("kustomize build", c)
    } else if on_path("kubectl") {
        let mut c = Command::new("kubectl");
        c.arg("kustomize");
        ("kubectl kustomize", c)
    } else {
        return Err(InputError::Tool {
            tool: "kustomize".into(),
            message: "neither `kustomize` nor `kubectl` is on PATH; install one to render a kustomization".into(),
        });
    };
    cmd.args(&extra).arg(dir);
    run(tool, cmd)
}

fn helm(dir: &Path) -> Result<String, InputError> {
    if !on_path("helm") {
        return Err(InputError::Tool {
            tool: "helm".into(),
            message: format!("{} is a Helm chart but `helm` is not on PATH; install helm, or pipe `helm template` into `kustodian render -`", dir.display()),
        });
    }
    let release = std::env::var("ARGOCD_APP_NAME").unwrap_or_else(|_| "release".into());
    let mut cmd = Command::new("helm");
    cmd.arg("template").arg(release).arg(dir);
    if let Ok(ns) = std::env::var("ARGOCD_APP_NAMESPACE") {
        cmd.arg("--namespace").arg(ns);
    }
    if let Ok(extra) = std::env::var("KUSTODIAN_HELM_ARGS") {
        cmd.args(extra.split_whitespace());
    }
    run("helm template", cmd)
}

fn run(tool: &str, mut cmd: Command) -> Result<String, InputError> {
    let out = cmd.output().map_err(|e| InputError::Tool {
        tool: tool.to_string(),
        message: format!("could not start: {e}"),
    })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(InputError::Tool {
            tool: tool.to_string(),
            message: format!("{}: {}", out.status, err.trim()),
        });
    }
    String::from_utf8(out.stdout).map_err(|_| InputError::Tool {
        tool: tool.to_string(),
        message: "output is not UTF-8".into(),
    })
}
