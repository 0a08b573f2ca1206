//! What `kustodian render` reads: a kustomization, a Helm chart, a folder of manifests, a stream.
//!
//! - A folder with `kustomization.yaml` (`.yml`, `Kustomization`) is built with `kustomize build`
//!   when `kustomize` is on PATH, else `kubectl kustomize`; extra flags come from
//!   `KUSTODIAN_KUSTOMIZE_ARGS` (e.g. `--enable-helm --enable-alpha-plugins`).
//! - A folder with `Chart.yaml` is built with `helm template` (helm must be on PATH).
//! - Any other folder: every `.yaml`, `.yml` and `.json` file below it, recursively, in path
//!   order; hidden files and folders are skipped, and documents that are not Kubernetes objects
//!   (no `kind`) are left out.
//! - A single file: its documents, as for a file in a folder.
//!
//! Every file read here is confined: after following symlinks it must be a regular file inside
//! the repository root, of at most [`MANIFEST_LIMIT`] bytes (so a symlink to `/proc/self/environ`,
//! to a file outside the repository, or to `/dev/zero` fails the render, naming the file).
//!
//! SOPS: a document with a `sops` block that is also a Kubernetes object (`apiVersion` and
//! `kind`) is an encrypted manifest: it is decrypted (MAC checked) and emitted, in files and in
//! kustomize's or helm's output alike. A SOPS document without `apiVersion` and `kind` is a store,
//! read through references and never emitted.

mod encrypted;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use kustodian_manifest::read::{read_to_string_bounded, MANIFEST_LIMIT};
use kustodian_manifest::{emit_document, parse_stream, Node, Object};
use kustodian_sops::{Format, Identities, KeySources};

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
    /// A manifest (or a symlink's target) lies outside the repository root.
    #[error("{path}: outside the repository ({root}); manifests (and the targets of symlinks) must be files inside the repository")]
    Outside {
        /// The path as found.
        path: String,
        /// The repository root.
        root: String,
    },
    /// An encrypted manifest could not be decrypted.
    #[error("an encrypted manifest (SOPS) could not be decrypted: {message}")]
    Sops {
        /// The file (or `<kustomize output>`, with the object).
        name: String,
        /// Why, naming the file and the identities looked for; never a value.
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

/// Reads manifests inside one repository root, decrypting encrypted manifests with the age
/// identities sops would use.
pub struct Input {
    root: PathBuf,
    keys: KeySources,
    ids: OnceLock<Identities>,
    /// The repository's SOPS files by MAC, indexed on first need (see [`encrypted`]).
    by_mac: OnceLock<HashMap<String, PathBuf>>,
}

impl Input {
    /// Input confined to `root` (canonicalised here), decrypting with identities from `keys`.
    pub fn new(root: &Path, keys: KeySources) -> Input {
        Input {
            root: root.canonicalize().unwrap_or_else(|_| root.to_path_buf()),
            keys,
            ids: OnceLock::new(),
            by_mac: OnceLock::new(),
        }
    }

    fn identities(&self) -> &Identities {
        self.ids.get_or_init(|| Identities::load(&self.keys))
    }

    /// Documents from a folder, built with kustomize or helm when it is one of theirs.
    pub fn load_dir(&self, dir: &Path) -> Result<Vec<Node>, InputError> {
        if ["kustomization.yaml", "kustomization.yml", "Kustomization"]
            .iter()
            .any(|f| dir.join(f).is_file())
        {
            self.check_symlinks(dir, dir)?;
            let out = kustomize(dir)?;
            return self.load_stream(&out, "<kustomize output>");
        }
        if dir.join("Chart.yaml").is_file() {
            self.check_symlinks(dir, dir)?;
            let out = helm(dir)?;
            return self.load_stream(&out, "<helm template output>");
        }
        let mut files = Vec::new();
        collect_files(dir, &mut files)?;
        files.sort();
        let mut docs = Vec::new();
        for f in files {
            let name = f.strip_prefix(dir).unwrap_or(&f).display().to_string();
            docs.extend(self.load_named_file(&f, &name)?);
        }
        Ok(docs)
    }

    /// The Kubernetes objects in one file (confined, bounded; encrypted manifests decrypted,
    /// stores left out).
    pub fn load_file(&self, file: &Path) -> Result<Vec<Node>, InputError> {
        self.load_named_file(file, &file.display().to_string())
    }

    fn load_named_file(&self, file: &Path, name: &str) -> Result<Vec<Node>, InputError> {
        let text = self.read_manifest(file, name)?;
        let docs = load_stream(&text, name)?;
        if docs.iter().any(is_encrypted_manifest) {
            return self.decrypt(&text, format_of(file), name);
        }
        Ok(docs.into_iter().filter(is_manifest).collect())
    }

    /// A stream's Kubernetes objects, encrypted manifests decrypted one by one (kustomize and
    /// helm pass them through with their `sops` block), stores left out.
    pub fn load_stream(&self, text: &str, name: &str) -> Result<Vec<Node>, InputError> {
        let mut out = Vec::new();
        for d in load_stream(text, name)? {
            if is_encrypted_manifest(&d) {
                let o = Object::new(&d);
                let what = format!(
                    "{name} ({}/{})",
                    o.kind().unwrap_or(""),
                    o.name().unwrap_or("")
                );
                out.extend(self.decrypt_built(&d, &what)?);
            } else if is_manifest(&d) {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// An encrypted object from a stream: decrypted as it is when nothing changed it, else
    /// from its source file in the repository, found by its MAC.
    fn decrypt_built(&self, d: &Node, what: &str) -> Result<Vec<Node>, InputError> {
        let as_is = self.decrypt(&emit_document(d), Format::Yaml, what);
        let Err(first) = as_is else {
            return as_is;
        };
        let by_mac = self
            .by_mac
            .get_or_init(|| encrypted::index_by_mac(&self.root));
        let Some(file) = encrypted::mac_of(d).and_then(|m| by_mac.get(m)) else {
            return Err(first);
        };
        let name = file
            .strip_prefix(&self.root)
            .unwrap_or(file)
            .display()
            .to_string();
        let source = self.read_manifest(file, &name)?;
        let one = encrypted::from_source(d, &source, format_of(file), self.identities(), &name)?;
        Ok(vec![one].into_iter().filter(is_manifest).collect())
    }

    fn decrypt(&self, text: &str, format: Format, name: &str) -> Result<Vec<Node>, InputError> {
        let docs = encrypted::decrypt_text(text, format, self.identities(), name)?;
        Ok(docs.into_iter().filter(is_manifest).collect())
    }

    /// Refuses a folder handed to kustomize or helm (which read files themselves) when a symlink
    /// below it points out of the repository, as Argo CD's out-of-bounds symlink check does.
    fn check_symlinks(&self, top: &Path, dir: &Path) -> Result<(), InputError> {
        let rd = std::fs::read_dir(dir).map_err(|e| InputError::Io {
            path: dir.display().to_string(),
            message: e.to_string(),
        })?;
        for entry in rd.flatten() {
            let (p, Ok(ft)) = (entry.path(), entry.file_type()) else {
                continue;
            };
            if ft.is_symlink() {
                let inside = p.canonicalize().map_or(true, |t| t.starts_with(&self.root));
                if !inside {
                    return Err(InputError::Outside {
                        path: p.strip_prefix(top).unwrap_or(&p).display().to_string(),
                        root: self.root.display().to_string(),
                    });
                }
            } else if ft.is_dir() && entry.file_name() != ".git" {
                self.check_symlinks(top, &p)?;
            }
        }
        Ok(())
    }

    /// The text of a manifest file: canonicalised, inside the root, a regular file, bounded.
    fn read_manifest(&self, file: &Path, name: &str) -> Result<String, InputError> {
        let io = |message: String| InputError::Io {
            path: name.to_string(),
            message,
        };
        let real = file.canonicalize().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => io("no such file (or a symlink to nothing)".into()),
            _ => io(e.to_string()),
        })?;
        if !real.starts_with(&self.root) {
            return Err(InputError::Outside {
                path: name.to_string(),
                root: self.root.display().to_string(),
            });
        }
        read_to_string_bounded(&real, MANIFEST_LIMIT).map_err(|e| io(e.reason()))
    }
}

/// The SOPS format of a manifest file: JSON for `.json`, else YAML.
fn format_of(file: &Path) -> Format {
    match Format::from_path(file) {
        Format::Json => Format::Json,
        _ => Format::Yaml,
    }
}

/// Whether a file name is one render reads: `.yaml`, `.yml`, `.json`.
fn is_manifest_name(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

/// A Kubernetes object that is not a SOPS document.
fn is_manifest(d: &Node) -> bool {
    !kustodian_sops::is_sops_document(d) && Object::new(d).kind().is_some()
}

/// A SOPS document that is a Kubernetes object (`apiVersion` and `kind`): an encrypted manifest
/// to decrypt and emit, as opposed to a store.
pub fn is_encrypted_manifest(d: &Node) -> bool {
    kustodian_sops::is_sops_document(d) && d.get("apiVersion").is_some() && d.get("kind").is_some()
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
        } else if is_manifest_name(&p) {
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

/// The repository root for a run in `cwd`: the nearest folder at or above it holding `.git` (the
/// git top level), else `cwd` itself; canonical. Computed once per run, from the working
/// directory only: a plugin configuration's `dir` never moves it.
pub fn repo_root(cwd: &Path) -> PathBuf {
    let dir = cwd.canonicalize().unwrap_or_else(|_| cwd.to_path_buf());
    dir.ancestors()
        .find(|a| a.join(".git").exists())
        .map(Path::to_path_buf)
        .unwrap_or(dir)
}
