//! `kustodian render [DIR|-]`: resolve references and print the finished manifests.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use kustodian_manifest::read::{read_stream_to_string_bounded, MANIFEST_LIMIT};
use kustodian_render::input::{self, repo_root, InputError};
use kustodian_stores::Config;
use miette::{Diagnostic, NamedSource, SourceSpan};

/// Arguments of `render`.
#[derive(clap::Args)]
pub struct Args {
    /// A folder (kustomization, Helm chart, or plain manifests), one manifest file, or `-` for a
    /// stream on stdin.
    #[arg(default_value = ".")]
    pub input: String,
    /// Most store requests in flight at once.
    #[arg(long, default_value_t = 8, env = "KUSTODIAN_CONCURRENCY")]
    pub concurrency: usize,
    /// Print how many references and store requests the render took, on stderr.
    #[arg(long)]
    pub stats: bool,
    /// `external-secrets`: turn Secrets of remote (Vault, AWS) references into ESO
    /// ExternalSecrets instead of resolving them; `external-secrets,strict` also refuses SOPS
    /// references. Default: $KUSTODIAN_EMIT (an Application may set ARGOCD_ENV_KUSTODIAN_EMIT).
    #[arg(long, value_name = "MODE")]
    pub emit: Option<String>,
    /// The SecretStore the emitted ExternalSecrets name (a Secret's
    /// `kustodian.io/secret-store` annotation wins). Default: $KUSTODIAN_ESO_STORE.
    #[arg(long, value_name = "NAME")]
    pub secret_store: Option<String>,
    /// `SecretStore` (default) or `ClusterSecretStore`. Default: $KUSTODIAN_ESO_STORE_KIND.
    #[arg(long, value_name = "KIND")]
    pub secret_store_kind: Option<String>,
    /// `spec.refreshInterval` of the emitted ExternalSecrets (default 1h).
    #[arg(long, value_name = "DURATION")]
    pub refresh_interval: Option<String>,
    /// `external-secrets`: render ExternalSecrets (with their SecretStore in the same input)
    /// into the Secrets ESO would create, with kustodian's configured store.
    #[arg(long, value_name = "KIND", value_parser = ["external-secrets"])]
    pub resolve: Option<String>,
}

#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{message}")]
#[diagnostic(
    code(kustodian::render::input),
    help("fix the YAML at this position; render reads Kubernetes manifests as YAML or JSON")
)]
struct ParseDiag {
    message: String,
    #[source_code]
    src: NamedSource<String>,
    #[label("here")]
    at: SourceSpan,
}

#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{0}")]
#[diagnostic(code(kustodian::render::reference), help("check that the path and key exist in the store and that kustodian can read them; nothing was printed because rendering is all or nothing"))]
struct RefDiag(String);

#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{0}")]
#[diagnostic(code(kustodian::render::store), help("the store itself could not be used, so no reference to it was resolved; fix what the message says (address, credentials, identity) and render again; nothing was printed"))]
struct StoreDiag(String);

/// The text of a manifest for an error excerpt, with every value masked: keys, indentation and
/// YAML punctuation stay (so the position still points at the problem), any other character of
/// a value or a comment becomes `*`. A manifest that does not parse may hold a secret in plain
/// text (or be a file that should never have been read), so excerpts never show values.
pub fn mask_values(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let body = line.trim_start_matches([' ', '\t', '-']);
        out.push_str(&line[..line.len() - body.len()]);
        let key_end = body
            .find(": ")
            .or_else(|| body.trim_end().strip_suffix(':').map(str::len))
            .filter(|&i| {
                body[..i]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-/\"'".contains(c))
            })
            .unwrap_or(0);
        out.push_str(&body[..key_end]);
        for c in body[key_end..].chars() {
            if c.is_ascii_whitespace() || ":-[]{},|>'\"".contains(c) {
                out.push(c);
            } else {
                // One `*` per byte, so the error's byte offset still points at the same place.
                out.extend(std::iter::repeat_n('*', c.len_utf8()));
            }
        }
    }
    out
}

/// Turns an input error into a diagnostic with a source snippet where there is one.
pub fn input_report(e: InputError) -> miette::Report {
    match e {
        InputError::Parse {
            name,
            text,
            offset,
            message,
            line,
            column,
        } => ParseDiag {
            message: format!("{name}:{line}:{column}: {message}"),
            src: NamedSource::new(name, mask_values(&text)),
            at: (offset, 0).into(),
        }
        .into(),
        e @ InputError::Sops { .. } => miette::miette!(
            help = "give kustodian an age identity for one of the file's recipients (SOPS_AGE_KEY_FILE, SOPS_AGE_KEY or ~/.config/sops/age/keys.txt); nothing was rendered",
            "{e}"
        ),
        other => miette::miette!(
            help = "fix what the error says and render again; nothing was rendered",
            "{other}"
        ),
    }
}

/// The repository root of a render: the git top level of the working directory (or the working
/// directory itself outside git). A path given on the command line outside the working
/// directory brings its own repository root. Nothing in a manifest or a config moves it.
pub fn root_for(cwd: &Path, target: &Path) -> PathBuf {
    let root = repo_root(cwd);
    let target = cwd.join(target);
    // The folder the target sits in: a file's own folder (its symlink not followed: the file is
    // confined to the root like any manifest), or the folder itself.
    let folder = match target.is_dir() {
        true => target.canonicalize(),
        false => target.parent().unwrap_or(&target).canonicalize(),
    };
    match folder {
        Ok(f) if !f.starts_with(&root) => repo_root(&f),
        _ => root,
    }
}

/// Renders documents against the stores for `base` inside `root`: the YAML stream and the
/// counts, or the errors.
pub fn render_with_stats(
    docs: Vec<kustodian_manifest::Node>,
    config: Config,
    opts: &kustodian_render::Options,
) -> Result<(String, kustodian_render::Stats), Vec<kustodian_render::RenderError>> {
    let stores = crate::cmd::stores_for(config);
    match kustodian_render::render(docs, &stores, opts) {
        Ok(r) => Ok((kustodian_manifest::emit_stream(r.docs.iter()), r.stats)),
        Err(errs) => Err(errs),
    }
}

/// Runs `render`.
pub fn run(args: Args) -> miette::Result<ExitCode> {
    let cwd = std::env::current_dir().map_err(|e| miette::miette!("no working directory: {e}"))?;
    let path = PathBuf::from(&args.input);
    let stdin = args.input == "-";
    let root = if stdin {
        repo_root(&cwd)
    } else {
        root_for(&cwd, &path)
    };
    let meta = if stdin {
        None
    } else {
        Some(std::fs::metadata(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                miette::miette!(
                    help = "give a folder (kustomization, Helm chart or manifests), a manifest file, or `-` to read stdin",
                    "{}: no such file or folder",
                    path.display()
                )
            } else {
                miette::miette!("{}: {e}", path.display())
            }
        })?)
    };
    let base = match &meta {
        Some(m) if m.is_file() => path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| cwd.clone(), |p| cwd.join(p)),
        Some(_) => cwd.join(&path),
        None => cwd.clone(),
    };
    let config = Config::from_process_env(&root, &base);
    let input = input::Input::new(&root, kustodian_stores::sops_files::key_sources(&config));
    let docs = match &meta {
        None => {
            let text =
                read_stream_to_string_bounded(std::io::stdin().lock(), MANIFEST_LIMIT, "<stdin>")
                    .map_err(|e| miette::miette!("{e}"))?;
            input.load_stream(&text, "<stdin>")
        }
        Some(m) if m.is_dir() => input.load_dir(&path),
        Some(_) => input.load_file(&path),
    }
    .map_err(input_report)?;
    if docs.is_empty() {
        eprintln!(
            "kustodian: {}: no Kubernetes manifests found (no .yaml, .yml or .json document with a `kind`); nothing to render",
            if stdin { "<stdin>".into() } else { path.display().to_string() }
        );
    }
    let setting = |v: &Option<String>, name: &str| {
        v.clone()
            .or_else(|| config.eso_var(name).map(str::to_string))
    };
    let emit = kustodian_render::eso::Emit::from_setting(
        setting(&args.emit, "KUSTODIAN_EMIT").as_deref(),
        setting(&args.secret_store, "KUSTODIAN_ESO_STORE"),
        setting(&args.secret_store_kind, "KUSTODIAN_ESO_STORE_KIND"),
        args.refresh_interval.clone(),
    )
    .map_err(|e| miette::miette!(help = "see `kustodian render --help`", "{e}"))?;
    let opts = kustodian_render::Options {
        concurrency: args.concurrency,
        emit,
        resolve_external_secrets: args.resolve.is_some(),
    };
    match render_with_stats(docs, config, &opts) {
        Ok((out, stats)) => {
            if args.stats {
                eprintln!(
                    "kustodian: {} references, {} store request{}",
                    stats.references,
                    stats.requests,
                    if stats.requests == 1 { "" } else { "s" }
                );
            }
            let mut stdout = std::io::stdout().lock();
            if let Err(e) = stdout
                .write_all(out.as_bytes())
                .and_then(|_| stdout.flush())
            {
                if e.kind() != std::io::ErrorKind::BrokenPipe {
                    return Err(miette::miette!("writing output: {e}"));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(errs) => {
            let mut unresolved = 0;
            for e in &errs {
                let report = match &e.store_wide {
                    Some(w) => {
                        unresolved += w.references;
                        miette::Report::new(StoreDiag(e.to_string()))
                    }
                    None => {
                        unresolved += 1;
                        miette::Report::new(RefDiag(e.to_string()))
                    }
                };
                eprintln!("{report:?}");
            }
            eprintln!(
                "kustodian: {unresolved} reference(s) could not be resolved; nothing was rendered"
            );
            Ok(ExitCode::from(1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::mask_values;

    #[test]
    fn masked_excerpts_keep_keys_and_offsets_but_no_values() {
        let text = "apiVersion: v1\nkind: Secret\nstringData:\n  password: \"hunter2-é\n  - item: [a, b]\n# note s3cret\n";
        let masked = mask_values(text);
        assert_eq!(masked.len(), text.len());
        assert!(
            !masked.contains("hunter2") && !masked.contains("s3cret") && !masked.contains("Secret")
        );
        assert!(
            masked.contains("stringData:") && masked.contains("  password: \"*******-**"),
            "{masked}"
        );
    }
}
