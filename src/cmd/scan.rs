//! `kustodian scan [PATH...]`, `kustodian scan --staged [PATH...]` and
//! `kustodian scan --since REV | --range A..B [PATH...]`: find plaintext Secret data before it
//! reaches Git, or in the commits that already did. Findings go to stdout in the chosen format, notes (skipped files) to
//! stderr. Exit 0: nothing blocks; 1: findings block; 2: the scan could not run or is incomplete.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use kustodian_scan::baseline::{self, Baseline};
use kustodian_scan::report::{Github, Human, Json, Report, Sarif};
use kustodian_scan::{Commits, Policy, ScanResult, Scanner, Source, StoreHint};

/// Arguments of `scan`.
#[derive(clap::Args)]
pub struct Args {
    /// Files and folders to scan (default: the current folder). Folders are walked, honouring
    /// .gitignore; .yaml, .yml, .json and kustomization files are read as manifests. Another file
    /// named here (an .env file) is judged through the kustomizations whose secretGenerator
    /// reads it.
    pub paths: Vec<PathBuf>,
    /// Scan the staged blobs in the git index (what the commit will hold), not the working tree.
    /// With PATHs, the staged version of those paths; without, every file the commit adds or
    /// changes.
    #[arg(long, conflicts_with_all = ["since", "range"])]
    pub staged: bool,
    /// Scan every blob added by the commits after REV up to HEAD (`REV..HEAD`), including values
    /// a later commit deleted; each finding names the commit that added it. With PATHs, only
    /// files at or under them.
    #[arg(long, value_name = "REV", conflicts_with = "range")]
    pub since: Option<String>,
    /// Like --since, for a range as git spells it: `A..B`, `A...B`, or one revision for its
    /// whole history.
    #[arg(long, value_name = "RANGE")]
    pub range: Option<String>,
    /// Scan the commits a `git push` sends, as a pre-push hook does: the updates git writes on
    /// standard input, or pre-commit's PRE_COMMIT_FROM_REF..PRE_COMMIT_TO_REF
    /// (PRE_COMMIT_LOCAL_BRANCH for a branch new to the remote).
    #[arg(long, conflicts_with_all = ["staged", "since", "range"])]
    pub pushed: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Report only findings whose fingerprint is not in this baseline file (see
    /// `--write-baseline`).
    #[arg(long, value_name = "FILE", conflicts_with = "write_baseline")]
    pub baseline: Option<PathBuf>,
    /// Write the current findings to FILE as a baseline and exit 0 (2 if the scan is incomplete)
    /// instead of reporting them.
    #[arg(long, value_name = "FILE")]
    pub write_baseline: Option<PathBuf>,
    /// The policy file (default: `.kustodian.yaml` at the repository root, or in the current
    /// folder outside a repository). A policy turns rules off, allowlists findings and sets
    /// the severity that blocks.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// `--only secrets`: judge only Secret data, secretGenerators and SOPS documents, as
    /// before the credential rules (for teams that run another general scanner). By default
    /// every file is also searched for known credential formats and every manifest value is
    /// judged by its key name.
    #[arg(long, value_enum, value_name = "WHAT")]
    pub only: Option<Only>,
}

/// What `--only` limits the scan to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Only {
    /// Secret data, secretGenerators and SOPS documents.
    Secrets,
}

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Diagnostics with the file, line, column and a redacted excerpt, then a summary.
    Human,
    /// `{"findings": [...]}` with paths relative to the repository root.
    Json,
    /// SARIF 2.1.0 for GitHub code scanning.
    Sarif,
    /// GitHub Actions workflow annotations (`::error file=...`).
    Github,
}

impl Format {
    /// Writes the report of `result` to stdout in this format; a reader that went away (a
    /// closed pipe) is not an error.
    pub fn write(self, result: &ScanResult, policy: &Policy) -> miette::Result<()> {
        let mut stdout = std::io::stdout().lock();
        match self
            .reporter()
            .report(result, policy, &mut stdout)
            .and_then(|()| stdout.flush())
        {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                Err(miette::miette!("could not write the report: {e}"))
            }
            _ => Ok(()),
        }
    }

    pub fn reporter(self) -> Box<dyn Report> {
        match self {
            Format::Human => {
                let color =
                    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
                let theme = if color {
                    miette::GraphicalTheme::unicode()
                } else {
                    miette::GraphicalTheme::unicode_nocolor()
                };
                let handler = miette::GraphicalReportHandler::new_themed(theme)
                    .with_links(false)
                    .with_urls(false)
                    .with_context_lines(0)
                    .with_show_related_as_nested(true)
                    .with_wrap_lines(false);
                let store = StoreHint::from_env(|k| std::env::var(k).ok());
                Box::new(Human::new(Box::new(handler)).with_store(store))
            }
            Format::Json => Box::new(Json),
            Format::Sarif => Box::new(Sarif),
            Format::Github => Box::new(Github),
        }
    }
}

/// Runs `scan`.
pub fn run(args: Args) -> miette::Result<ExitCode> {
    let cwd = std::env::current_dir()
        .map_err(|e| miette::miette!("cannot read the current folder: {e}"))?;
    let history = match (&args.range, &args.since) {
        _ if args.pushed => Some(pushed_commits()?),
        (Some(range), _) => Some(Commits::Range(range.clone())),
        (None, Some(rev)) => Some(Commits::Range(format!("{rev}..HEAD"))),
        (None, None) => None,
    };
    let source = match (args.staged, history) {
        (_, Some(commits)) => Source::History {
            commits,
            paths: args.paths,
        },
        (true, None) => Source::Staged(args.paths),
        (false, None) => Source::Paths(args.paths),
    };
    let policy = match args.policy.clone().or_else(|| Policy::discover(&cwd)) {
        Some(file) => Policy::load(&file)?,
        None => Policy::default(),
    };
    let mut policy = policy;
    policy.only_secrets |= args.only == Some(Only::Secrets);
    let scanner = Scanner::with_policy(policy.clone());
    let known = args.baseline.as_deref().map(Baseline::load).transpose()?;
    let mut result = kustodian_scan::scan(&scanner, &source, &cwd)?;

    let mut stderr = std::io::stderr().lock();
    for note in &result.notes {
        let _ = writeln!(stderr, "{note}");
    }
    if let Some(file) = &args.write_baseline {
        return write_baseline(file, &result, &mut stderr);
    }
    if let Some(known) = &known {
        let dropped = known.filter(&mut result);
        if dropped > 0 {
            let _ = writeln!(
                stderr,
                "kustodian: note: {dropped} finding(s) already in the baseline not reported"
            );
        }
    }
    args.format.write(&result, &policy)?;
    Ok(if result.has_errors() {
        ExitCode::from(2)
    } else if result.findings.iter().any(|f| policy.blocks(f)) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// What `--pushed` scans: pre-commit's refs when it runs the hook, else the updates git writes
/// on a pre-push hook's standard input.
fn pushed_commits() -> miette::Result<Commits> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if let (Some(from), Some(to)) = (env("PRE_COMMIT_FROM_REF"), env("PRE_COMMIT_TO_REF")) {
        return Ok(Commits::Pushed(vec![(to, Some(from))]));
    }
    if let Some(branch) = env("PRE_COMMIT_LOCAL_BRANCH") {
        return Ok(Commits::Pushed(vec![(branch, None)]));
    }
    let mut stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Err(miette::miette!(
            help = "install it as a pre-push hook (`kustodian install-hook --pre-push`), or scan a range with `kustodian scan --range A..B`",
            "--pushed reads the updates `git push` writes to a pre-push hook's standard input"
        ));
    }
    let mut text = String::new();
    std::io::Read::read_to_string(&mut stdin, &mut text)
        .map_err(|e| miette::miette!("cannot read standard input: {e}"))?;
    Ok(Commits::from_pre_push_lines(&text))
}

/// `--write-baseline FILE`: records the findings of `result`.
fn write_baseline(
    file: &std::path::Path,
    result: &kustodian_scan::ScanResult,
    stderr: &mut dyn Write,
) -> miette::Result<ExitCode> {
    let mut out = Vec::new();
    baseline::write(&result.findings, &mut out)
        .and_then(|()| std::fs::write(file, &out))
        .map_err(|e| miette::miette!("cannot write the baseline {}: {e}", file.display()))?;
    let _ = writeln!(
        stderr,
        "kustodian: wrote {} finding(s) to the baseline {}",
        baseline::entries(&result.findings).len(),
        file.display()
    );
    Ok(if result.has_errors() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
