//! `kustodian check [PATH...]`: ask the stores whether every reference in the tree resolves,
//! without printing or keeping a value; report in the scanner's formats. Exit 0: everything
//! resolves; 1: something is missing or refused; 2: the check could not run (a store that
//! cannot be used, a file that is not YAML).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use kustodian_render::check::{self, Code, File};
use kustodian_scan::{CustomRule, Excerpt, Finding, Location, Policy, Rule, ScanResult, Severity};

use crate::cmd::scan::Format;

/// Arguments of `check`.
#[derive(clap::Args)]
pub struct Args {
    /// Files or folders to check (default `.`); folders are walked respecting `.gitignore`.
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Check only the reference grammar, the SecretStore objects and the stores' configuration;
    /// send no request.
    #[arg(long)]
    pub offline: bool,
}

/// The YAML and JSON files under `paths`, in path order.
fn files(paths: &[PathBuf]) -> miette::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_file() {
            out.push(p.clone());
            continue;
        }
        if !p.is_dir() {
            return Err(miette::miette!(
                help = "give files or folders that exist",
                "{}: no such file or folder",
                p.display()
            ));
        }
        for entry in ignore::WalkBuilder::new(p).build() {
            let entry = entry.map_err(|e| miette::miette!("walking {}: {e}", p.display()))?;
            let path = entry.path();
            let yaml = path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"));
            if yaml && entry.file_type().is_some_and(|t| t.is_file()) {
                out.push(path.to_path_buf());
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// A policy that knows check's codes, so every reporter describes them.
fn policy() -> Policy {
    let mut p = Policy::default();
    // Matches nothing: check's findings are not found by a regex.
    let never = regex::bytes::Regex::new("[^\\s\\S]").expect("a valid regex");
    for c in Code::ALL {
        p.custom_rules.push(CustomRule {
            id: c.code().to_string(),
            regex: never.clone(),
            severity: Severity::High,
            message: c.summary().to_string(),
        });
    }
    p
}

fn finding(p: &check::Problem) -> Finding {
    let pl = &p.place;
    let text = if pl.reference.is_empty() {
        pl.field.clone()
    } else {
        format!("{}: {}", pl.field, pl.reference)
    };
    Finding {
        location: Location {
            path: pl.path.clone(),
            line: pl.line,
            column: pl.column,
        },
        rule: Rule::CustomRule,
        kind: pl.kind.clone(),
        name: pl.name.clone(),
        namespace: pl.namespace.clone(),
        key: pl.field.clone(),
        severity: Severity::High,
        fingerprint: kustodian_scan::fingerprint(
            &pl.path,
            pl.kind.as_deref(),
            pl.namespace.as_deref(),
            pl.name.as_deref(),
            &pl.field,
            &check::fingerprint_text(p),
        ),
        message: match &pl.reference {
            r if r.is_empty() => p.message.clone(),
            r => format!("{r}: {}", p.message),
        },
        excerpt: Excerpt {
            label: 0..pl.field.len(),
            text,
        },
        related: None,
        custom_rule: Some(p.code.code().to_string()),
        commit: None,
    }
}

fn relative(root: &Path, cwd: &Path, p: &Path) -> String {
    let abs = cwd.join(p);
    let abs = abs.canonicalize().unwrap_or(abs);
    abs.strip_prefix(root)
        .unwrap_or(&abs)
        .to_string_lossy()
        .replace('\\', "/")
}

/// Runs `check`.
pub fn run(args: Args) -> miette::Result<ExitCode> {
    let cwd = std::env::current_dir().map_err(|e| miette::miette!("no working directory: {e}"))?;
    let root = kustodian_render::input::repo_root(&cwd);
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.paths.clone()
    };
    let mut inputs = Vec::new();
    for p in files(&paths)? {
        let text = kustodian_manifest::read::read_to_string_bounded(
            &p,
            kustodian_manifest::read::MANIFEST_LIMIT,
        )
        .map_err(|e| miette::miette!("{e}"))?;
        let dir = cwd
            .join(&p)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| cwd.clone());
        inputs.push(File {
            name: relative(&root, &cwd, &p),
            dir,
            text,
        });
    }
    let vars: Vec<(String, String)> = kustodian_stores::config::process_vars().collect();
    let outcome = check::check(&inputs, &root, &vars, args.offline);
    let mut stderr = std::io::stderr().lock();
    for e in &outcome.errors {
        let _ = writeln!(stderr, "kustodian: error: {e}");
    }
    let mut result = ScanResult {
        findings: outcome.problems.iter().map(finding).collect(),
        files_scanned: inputs.len(),
        ..Default::default()
    };
    result.finish();
    let policy = policy();
    args.format.write(&result, &policy)?;
    let _ = writeln!(
        stderr,
        "kustodian: {} reference(s) checked, {} store request(s){}",
        outcome.references,
        outcome.requests,
        if args.offline { " (offline)" } else { "" }
    );
    Ok(if !outcome.errors.is_empty() {
        ExitCode::from(2)
    } else if !result.findings.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
