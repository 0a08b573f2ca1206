//! `kustodian render [DIR|-]`: resolve references and print the finished manifests.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use kustodian_render::input::{self, InputError};
use kustodian_stores::Config;
use miette::{Diagnostic, NamedSource, SourceSpan};

/// Arguments of `render`.
#[derive(clap::Args)]
pub struct Args {
    /// A folder (kustomization, Helm chart, or plain manifests) or `-` for a stream on stdin.
    #[arg(default_value = ".")]
    pub input: String,
    /// Most store requests in flight at once.
    #[arg(long, default_value_t = 8, env = "KUSTODIAN_CONCURRENCY")]
    pub concurrency: usize,
    /// Print how many references and store requests the render took, on stderr.
    #[arg(long)]
    pub stats: bool,
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
            src: NamedSource::new(name, text),
            at: (offset, 0).into(),
        }
        .into(),
        other => miette::miette!(
            help = "see the message above; nothing was rendered",
            "{other}"
        ),
    }
}

/// The repository root: the nearest folder at or above `dir` holding `.git`, else `dir`.
pub fn repo_root(dir: &Path) -> PathBuf {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    dir.ancestors()
        .find(|a| a.join(".git").exists())
        .map(Path::to_path_buf)
        .unwrap_or(dir)
}

/// Renders documents against the stores for `base`: the YAML stream and the counts, or the errors.
pub fn render_with_stats(
    docs: Vec<kustodian_manifest::Node>,
    base: &Path,
    concurrency: usize,
) -> Result<(String, kustodian_render::Stats), Vec<kustodian_render::RenderError>> {
    let root = repo_root(base);
    let stores = crate::cmd::stores_for(Config::from_process_env(&root, base));
    match kustodian_render::render(docs, &stores, &kustodian_render::Options { concurrency }) {
        Ok(r) => Ok((kustodian_manifest::emit_stream(r.docs.iter()), r.stats)),
        Err(errs) => Err(errs),
    }
}

/// Runs `render`.
pub fn run(args: Args) -> miette::Result<ExitCode> {
    let (docs, base) = if args.input == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| miette::miette!("reading stdin: {e}"))?;
        let cwd = std::env::current_dir().map_err(|e| miette::miette!("{e}"))?;
        (
            input::load_stream(&text, "<stdin>").map_err(input_report)?,
            cwd,
        )
    } else {
        let dir = PathBuf::from(&args.input);
        if !dir.is_dir() {
            return Err(miette::miette!(
                help =
                    "give a folder (kustomization, Helm chart or manifests) or `-` to read stdin",
                "{}: not a folder",
                dir.display()
            ));
        }
        (input::load_dir(&dir).map_err(input_report)?, dir)
    };
    match render_with_stats(docs, &base, args.concurrency) {
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
